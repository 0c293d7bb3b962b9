"""Server reflection, both versions, as grpcurl, Postman and grpcio-reflection
users ask it."""

import grpc
import outliers_pb2 as seed_outliers_pb2
import pytest
from dataport.outliers.v1 import outliers_pb2 as outliers_v1_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from interop import RPC_TIMEOUT

SERVICES = [
    "helloworld.Greeter",
    "routeguide.RouteGuide",
    "posXYZ.PositionService",
    "dataport.position.v1.PositionService",
    "idc.Indicator",
    "idc.IndicatorGraph",
    "dataport.market.v1.MarketService",
    "pb.Outliers",
    "dataport.outliers.v1.OutliersService",
    "FileSrv",
    "FileTransfer.FileService",
    "google.bytestream.ByteStream",
    "dataport.files.v1.FilesService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
]
REFLECTION_VERSIONS = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]


class ReflectionClient:
    """One request per ServerReflectionInfo call. v1 and v1alpha messages are
    the same on the wire, so grpcio-reflection's v1alpha classes serve both."""

    def __init__(self, channel, service):
        self._info = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

    def ask(self, **request):
        responses = list(self._info(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=RPC_TIMEOUT))
        assert len(responses) == 1
        return responses[0]

    def _ask(self, **request):
        response = self.ask(**request)
        assert not response.HasField("error_response"), f"{request}: {response.error_response}"
        return response

    def list_services(self):
        return [s.name for s in self._ask(list_services="").list_services_response.service]

    def files(self, **request):
        """The FileDescriptorProtos answered to a file_* request, by name."""
        raw = self._ask(**request).file_descriptor_response.file_descriptor_proto
        files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in raw]
        return {f.name: f for f in files}


@pytest.fixture(params=REFLECTION_VERSIONS, ids=["v1", "v1alpha"])
def reflection(request, channel):
    return ReflectionClient(channel, request.param)


def test_list_services_names_every_served_service(reflection):
    listed = reflection.list_services()
    assert set(SERVICES) <= set(listed)
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("service", SERVICES)
def test_every_listed_service_resolves_to_the_file_that_defines_it(reflection, service):
    package, _, name = service.rpartition(".")
    files = reflection.files(file_containing_symbol=service)
    defining = [f for f in files.values() if f.package == package and any(s.name == name for s in f.service)]
    assert len(defining) == 1, sorted(files)


def test_position_v1_resolves_with_its_timestamp_dependency(reflection):
    files = reflection.files(file_containing_symbol="dataport.position.v1.PositionService")
    (position,) = [f for f in files.values() if f.package == "dataport.position.v1"]
    assert position.name == "dataport/position/v1/position.proto"
    assert [m.name for m in position.service[0].method] == ["Publish", "Get", "Watch"]
    assert "google/protobuf/timestamp.proto" in position.dependency

    timestamp = reflection.files(file_by_filename="google/protobuf/timestamp.proto")
    assert "google/protobuf/timestamp.proto" in timestamp
    assert "Timestamp" in [m.name for m in timestamp["google/protobuf/timestamp.proto"].message_type]


def test_grpcio_reflection_client_builds_position_v1_descriptors(channel):
    # What a dynamic Python client does: a DescriptorPool fed by reflection,
    # which fetches the dependencies itself.
    db = ProtoReflectionDescriptorDatabase(channel)
    assert set(SERVICES) <= set(db.get_services())
    pool = descriptor_pool.DescriptorPool(db)
    service = pool.FindServiceByName("dataport.position.v1.PositionService")
    watch = service.methods_by_name["Watch"]
    assert watch.input_type.full_name == "dataport.position.v1.WatchRequest"
    update_time = pool.FindMessageTypeByName("dataport.position.v1.EntityPosition").fields_by_name["update_time"]
    assert update_time.message_type.full_name == "google.protobuf.Timestamp"


def test_indicator_graph_resolves_to_its_seed_file_with_a_server_streaming_method(reflection):
    files = reflection.files(file_containing_symbol="idc.IndicatorGraph")
    graph = files["indicator_graph.proto"]
    assert graph.package == "idc"
    (service,) = graph.service
    (method,) = service.method
    assert (method.name, method.input_type, method.output_type) == (
        "GetMACDGraph",
        ".idc.MACDGraphRequest",
        ".idc.MACDGraphReply",
    )
    assert method.server_streaming and not method.client_streaming
    request = {m.name: m for m in graph.message_type}["MACDGraphRequest"]
    assert [(f.name, f.number) for f in request.field] == [("start_date", 1), ("end_date", 2), ("symbol", 3)]


def test_market_v1_resolves_with_its_streaming_shapes(reflection):
    files = reflection.files(file_containing_symbol="dataport.market.v1.MarketService")
    market = files["dataport/market/v1/market.proto"]
    assert market.package == "dataport.market.v1"
    methods = {m.name: (m.client_streaming, m.server_streaming) for m in market.service[0].method}
    assert methods == {
        "ImportBars": (True, False),
        "ListSymbols": (False, False),
        "GetBars": (False, False),
        "ComputeIndicators": (False, False),
        "RenderChart": (False, True),
        "DeleteSymbol": (False, False),
    }
    # A message of the file resolves to the same file.
    by_message = reflection.files(file_containing_symbol="dataport.market.v1.ComputeIndicatorsRequest")
    assert "dataport/market/v1/market.proto" in by_message


def test_grpcio_reflection_client_builds_market_v1_descriptors(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)
    service = pool.FindServiceByName("dataport.market.v1.MarketService")
    render = service.methods_by_name["RenderChart"]
    assert render.output_type.full_name == "dataport.market.v1.RenderChartResponse"
    indicator = pool.FindMessageTypeByName("dataport.market.v1.Indicator")
    assert [f.name for f in indicator.oneofs_by_name["kind"].fields] == ["sma", "ema", "macd", "rsi", "bollinger", "atr"]
    volume = pool.FindMessageTypeByName("dataport.market.v1.Bar").fields_by_name["volume"]
    assert volume.has_presence
    panel = pool.FindEnumTypeByName("dataport.market.v1.Panel")
    assert [v.name for v in panel.values] == ["PANEL_UNSPECIFIED", "PANEL_PRICE", "PANEL_VOLUME", "PANEL_MACD"]
    graph = pool.FindServiceByName("idc.IndicatorGraph").methods_by_name["GetMACDGraph"]
    assert graph.output_type.fields_by_name["macd_chunk"].type == graph.output_type.fields_by_name["macd_chunk"].TYPE_BYTES


def shape(file):
    """What a client compiles against in a FileDescriptorProto: every
    message's fields and oneofs, every service's methods."""
    messages = {
        m.name: (
            [(f.name, f.number, f.label, f.type, f.type_name, f.oneof_index if f.HasField("oneof_index") else None) for f in m.field],
            [o.name for o in m.oneof_decl],
        )
        for m in file.message_type
    }
    services = {
        s.name: [(m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming) for m in s.method]
        for s in file.service
    }
    return file.package, list(file.dependency), messages, services


def local_file(module):
    """The FileDescriptorProto the Python stubs were generated from."""
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    return proto


def test_seed_outliers_resolves_to_its_frozen_file_as_the_seed_clients_compile_it(reflection):
    files = reflection.files(file_containing_symbol="pb.Outliers")
    served = files["outliers.proto"]
    assert shape(served) == shape(local_file(seed_outliers_pb2))
    (service,) = served.service
    (detect,) = service.method
    assert (detect.name, detect.input_type, detect.output_type) == ("Detect", ".pb.OutliersRequest", ".pb.OutliersResponse")
    assert not detect.client_streaming and not detect.server_streaming
    metric = {m.name: m for m in served.message_type}["Metric"]
    F = descriptor_pb2.FieldDescriptorProto
    assert [(f.name, f.number, f.type) for f in metric.field] == [
        ("time", 1, F.TYPE_MESSAGE),
        ("name", 2, F.TYPE_STRING),
        ("value", 3, F.TYPE_DOUBLE),
    ]
    # The messages resolve to the same file.
    assert "outliers.proto" in reflection.files(file_containing_symbol="pb.OutliersResponse")


def test_outliers_v1_resolves_with_its_streaming_shapes_as_the_stubs_compile_it(reflection):
    files = reflection.files(file_containing_symbol="dataport.outliers.v1.OutliersService")
    served = files["dataport/outliers/v1/outliers.proto"]
    assert shape(served) == shape(local_file(outliers_v1_pb2))
    methods = {m.name: (m.client_streaming, m.server_streaming) for m in served.service[0].method}
    assert methods == {"Detect": (False, False), "DetectStream": (True, True)}
    assert "google/protobuf/timestamp.proto" in served.dependency
    by_message = reflection.files(file_containing_symbol="dataport.outliers.v1.DetectStreamRequest")
    assert "dataport/outliers/v1/outliers.proto" in by_message


def test_grpcio_reflection_client_builds_outliers_descriptors(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)
    seed = pool.FindServiceByName("pb.Outliers").methods_by_name["Detect"]
    assert seed.input_type.fields_by_name["metrics"].message_type.full_name == "pb.Metric"
    stream = pool.FindServiceByName("dataport.outliers.v1.OutliersService").methods_by_name["DetectStream"]
    assert stream.output_type.full_name == "dataport.outliers.v1.DetectStreamResponse"
    method = pool.FindMessageTypeByName("dataport.outliers.v1.Method")
    assert [f.name for f in method.oneofs_by_name["kind"].fields] == ["z_score", "modified_z_score", "iqr"]
    stats = pool.FindMessageTypeByName("dataport.outliers.v1.SeriesStats")
    assert [f.name for f in stats.oneofs_by_name["stats"].fields] == ["z_score", "modified_z_score", "iqr"]
    time = pool.FindMessageTypeByName("dataport.outliers.v1.Metric").fields_by_name["time"]
    assert time.message_type.full_name == "google.protobuf.Timestamp"


def test_unknown_symbol_is_not_found(reflection):
    # The reflection protocol answers a failed lookup in-band (error_response)
    # and keeps the stream open; tonic-reflection 0.14 ends the call with the
    # status instead. Either way a client learns NOT_FOUND, which is what
    # this pins.
    try:
        response = reflection.ask(file_containing_symbol="no.such.Symbol")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e.details()
    else:
        assert response.HasField("error_response"), response
        assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


# One stream, several requests, as grpcurl and grpcui keep one open


class ReflectionStub:
    """What grpcio-tools would generate for either version (grpcio-reflection
    ships v1alpha's only; the messages are the same on the wire)."""

    def __init__(self, channel, service):
        self.ServerReflectionInfo = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )


@pytest.mark.parametrize("service", REFLECTION_VERSIONS, ids=["v1", "v1alpha"])
def test_one_stream_answers_each_request_in_order(api, service):
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="routeguide.RouteGuide"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="helloworld.proto"),
        reflection_pb2.ServerReflectionRequest(all_extension_numbers_of_type="helloworld.HelloRequest"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
    ]
    stub = api.stub(lambda channel: ReflectionStub(channel, service))
    responses = stub.ServerReflectionInfo(requests, timeout=RPC_TIMEOUT)
    assert [r.original_request for r in responses] == requests
    assert [r.WhichOneof("message_response") for r in responses] == [
        "list_services_response",
        "file_descriptor_response",
        "file_descriptor_response",
        "all_extension_numbers_response",
        "list_services_response",
    ]
    assert set(SERVICES) <= {s.name for s in responses[0].list_services_response.service}
    names = [descriptor_pb2.FileDescriptorProto.FromString(b).name for b in responses[1].file_descriptor_response.file_descriptor_proto]
    assert "route_guide.proto" in names
    (hello,) = responses[2].file_descriptor_response.file_descriptor_proto
    assert descriptor_pb2.FileDescriptorProto.FromString(hello).package == "helloworld"
    assert list(responses[3].all_extension_numbers_response.extension_number) == []  # proto3 has none
    assert responses[4] == responses[0]


@pytest.mark.parametrize("service", REFLECTION_VERSIONS, ids=["v1", "v1alpha"])
def test_a_failed_lookup_is_answered_in_the_stream_which_goes_on(api, service):
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
    ]
    stub = api.stub(lambda channel: ReflectionStub(channel, service))
    missing, listed = stub.ServerReflectionInfo(requests, timeout=RPC_TIMEOUT)
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no.such.Symbol" in missing.error_response.error_message
    assert set(SERVICES) <= {s.name for s in listed.list_services_response.service}
