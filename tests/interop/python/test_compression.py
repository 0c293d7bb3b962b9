"""Compressed calls from grpcio, as users turn them on: for a whole channel
(`grpc.insecure_channel(addr, compression=...)`) or per call
(`stub.Method(request, compression=...)`), gzip and deflate, on every
service the server serves. Each call checks its real answer, and a file sent
compressed downloads byte for byte. Then the server's own side: a message
that inflates past the limit, and responses compressed when the server is
told to. (grpcio cannot send an encoding it does not know; the Go suite sends
one.)"""

import hashlib
import os
import uuid

import file_pb2 as f
import file_pb2_grpc as f_grpc
import grpc
import helloworld_pb2
import helloworld_pb2_grpc
import indicator_graph_pb2
import indicator_graph_pb2_grpc
import indicator_pb2
import indicator_pb2_grpc
import outliers_pb2
import outliers_pb2_grpc
import position_pb2
import position_pb2_grpc
import pytest
import route_guide_pb2
import route_guide_pb2_grpc
import uploadfile_pb2
import uploadfile_pb2_grpc
from dataport.files.v1 import files_pb2, files_pb2_grpc
from dataport.market.v1 import market_pb2, market_pb2_grpc
from dataport.outliers.v1 import outliers_pb2 as outliers_v1
from dataport.outliers.v1 import outliers_pb2_grpc as outliers_v1_grpc
from dataport.position.v1 import position_pb2 as position_v1
from dataport.position.v1 import position_pb2_grpc as position_v1_grpc
from google.bytestream import bytestream_pb2, bytestream_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from interop import RPC_TIMEOUT, expect_status

# numpy: a = np.array(SERIES); np.where(np.abs(a - a.mean()) > 2 * a.std())[0] -> [9]
SERIES = [10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 11.0, 9.0, 10.0, 45.0, 10.0, 11.0]
DATA = os.urandom(300_000) + bytes(300_000)  # half incompressible, half zeros


def greeter(ch, kw):
    reply = helloworld_pb2_grpc.GreeterStub(ch).SayHello(helloworld_pb2.HelloRequest(name="zip"), **kw)
    assert reply.message == "Hello, zip!"


def route_guide(ch, kw):
    stub = route_guide_pb2_grpc.RouteGuideStub(ch)
    point = route_guide_pb2.Point(latitude=409146138, longitude=-746188906)
    assert stub.GetFeature(point, **kw).location == point
    points = [route_guide_pb2.Point(latitude=0, longitude=0), route_guide_pb2.Point(latitude=10_000_000, longitude=0)]
    summary = stub.RecordRoute(iter(points), **kw)
    assert summary.point_count == 2 and summary.distance > 0


def position_compat(ch, kw):
    stub = position_pb2_grpc.PositionServiceStub(ch)
    reply = stub.PositionReq(position_pb2.Msg(), **kw)
    assert reply.HasField("position")


def position_service_v1(ch, kw):
    stub = position_v1_grpc.PositionServiceStub(ch)
    entity = f"zip-{uuid.uuid4().hex[:8]}"
    stub.Publish(
        position_v1.PublishRequest(entity=entity, position=position_v1.Vector3(x=1.5, y=2.5, z=3.5)), **kw
    )
    got = stub.Get(position_v1.GetRequest(entity=entity), **kw).position
    assert (got.position.x, got.position.y, got.position.z) == (1.5, 2.5, 3.5)


def indicator(ch, kw):
    stub = indicator_pb2_grpc.IndicatorStub(ch)
    request = indicator_pb2.MACDRequest(symbol="AAPL", start_date="2010-01-04", end_date="2010-03-31")
    reply = stub.GetMACD(request, **kw)
    assert len(reply.macd) > 30 and reply.macd[0].date == "2010-01-04"


def indicator_graph(ch, kw):
    stub = indicator_graph_pb2_grpc.IndicatorGraphStub(ch)
    request = indicator_graph_pb2.MACDGraphRequest(symbol="MSFT", start_date="2010-01-04", end_date="2010-06-30")
    png = b"".join(r.macd_chunk for r in stub.GetMACDGraph(request, **kw))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def market_service_v1(ch, kw):
    stub = market_pb2_grpc.MarketServiceStub(ch)
    symbols = [s.symbol for s in stub.ListSymbols(market_pb2.ListSymbolsRequest(), **kw).symbols]
    assert {"AAPL", "MSFT"} <= set(symbols)


def outliers_compat(ch, kw):
    stub = outliers_pb2_grpc.OutliersStub(ch)
    metrics = [outliers_pb2.Metric(name="cpu", value=v) for v in SERIES]
    assert list(stub.Detect(outliers_pb2.OutliersRequest(metrics=metrics), **kw).indices) == [9]


def outliers_service_v1(ch, kw):
    stub = outliers_v1_grpc.OutliersServiceStub(ch)
    metrics = [outliers_v1.Metric(name="cpu", value=v) for v in SERIES]
    reply = stub.Detect(outliers_v1.DetectRequest(metrics=metrics), **kw)
    assert list(reply.indices) == [9] and len(reply.scores) == len(SERIES)


def file_srv(ch, kw):
    stub = f_grpc.FileSrvStub(ch)
    name = f"zip-{uuid.uuid4().hex[:8]}"

    def uploads():
        yield f.UploadRequest(header=f.FileHeader(filename=name, extension=".bin"))
        for i in range(0, len(DATA), 100_000):
            yield f.UploadRequest(chunk_data=DATA[i : i + 100_000])

    reply = stub.UploadFile(uploads(), **kw)
    assert hashlib.sha256(DATA).hexdigest() in reply.message
    got = b"".join(r.chunk_data for r in stub.DownloadFile(f.FileHeader(filename=name, extension=".bin"), **kw))
    assert got == DATA


def file_transfer(ch, kw):
    stub = uploadfile_pb2_grpc.FileServiceStub(ch)
    reply = stub.Upload(iter([uploadfile_pb2.Chunk(data=DATA[:1000]), uploadfile_pb2.Chunk(data=DATA[1000:2000])]), **kw)
    assert reply.message


def files_service_v1(ch, kw):
    stub = files_pb2_grpc.FilesServiceStub(ch)
    name = f"zip-{uuid.uuid4().hex[:8]}.bin"

    def uploads():
        yield files_pb2.UploadRequest(header=files_pb2.UploadHeader(name=name, sha256=hashlib.sha256(DATA).hexdigest()))
        for i in range(0, len(DATA), 65_536):
            yield files_pb2.UploadRequest(chunk=DATA[i : i + 65_536])

    assert stub.Upload(uploads(), **kw).file.size == len(DATA)
    got = b"".join(r.chunk for r in stub.Download(files_pb2.DownloadRequest(names=[name]), **kw) if r.HasField("chunk"))
    assert got == DATA
    assert stub.Stat(files_pb2.StatRequest(name=name), **kw).file.sha256 == hashlib.sha256(DATA).hexdigest()


def byte_stream(ch, kw):
    stub = bytestream_pb2_grpc.ByteStreamStub(ch)
    name = f"zip-{uuid.uuid4().hex[:8]}.bin"
    resource = f"uploads/{uuid.uuid4()}/files/{name}"
    writes = [
        bytestream_pb2.WriteRequest(resource_name=resource, write_offset=0, data=DATA[:200_000]),
        bytestream_pb2.WriteRequest(write_offset=200_000, data=DATA[200_000:], finish_write=True),
    ]
    assert stub.Write(iter(writes), **kw).committed_size == len(DATA)
    got = b"".join(r.data for r in stub.Read(bytestream_pb2.ReadRequest(resource_name=f"files/{name}"), **kw))
    assert got == DATA


def health(ch, kw):
    stub = health_pb2_grpc.HealthStub(ch)
    reply = stub.Check(health_pb2.HealthCheckRequest(service="helloworld.Greeter"), **kw)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def reflection(ch, kw):
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = list(stub.ServerReflectionInfo(iter([request]), **kw))
    assert "pb.Outliers" in {s.name for s in reply.list_services_response.service}


SERVICES = [
    greeter,
    route_guide,
    position_compat,
    position_service_v1,
    indicator,
    indicator_graph,
    market_service_v1,
    outliers_compat,
    outliers_service_v1,
    file_srv,
    file_transfer,
    files_service_v1,
    byte_stream,
    health,
    reflection,
]
COMPRESSIONS = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.__name__)
def test_every_service_answers_a_channel_that_compresses(server, service, compression):
    with grpc.insecure_channel(server.addr, compression=COMPRESSIONS[compression]) as ch:
        service(ch, {"timeout": RPC_TIMEOUT})


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.__name__)
def test_every_service_answers_calls_that_compress(channel, service, compression):
    service(channel, {"timeout": RPC_TIMEOUT, "compression": COMPRESSIONS[compression]})


def test_a_message_that_inflates_past_the_limit_is_resource_exhausted_naming_it(server):
    # 6 MiB of one letter: a few KiB sent, over the 4 MiB limit once inflated.
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(server.addr, options=options, compression=grpc.Compression.Gzip) as ch:
        stub = helloworld_pb2_grpc.GreeterStub(ch)
        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "limit of 4194304 bytes"):
            stub.SayHello(helloworld_pb2.HelloRequest(name="a" * (6 << 20)), timeout=RPC_TIMEOUT)


def test_responses_are_compressed_when_the_server_is_told_to(start_server):
    server = start_server("--response-compression", "gzip")
    with grpc.insecure_channel(server.addr) as ch:
        for service in SERVICES:
            service(ch, {"timeout": RPC_TIMEOUT})
