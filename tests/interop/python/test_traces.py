"""Spans over OTLP/gRPC (`--otlp-endpoint`), received by a collector made
of the protocol's own service (the opentelemetry-proto package's
TraceService stubs, served by grpcio): a grpcio call's `traceparent` is
continued, and a call without one has its new trace id in its line."""

import queue
import uuid
from concurrent import futures

import grpc
import helloworld_pb2
import helloworld_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from conftest import open_channel
from interop import RPC_TIMEOUT

PARENT = "00f067aa0ba902b7"


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.exports = queue.Queue()

    def Export(self, request, context):
        self.exports.put(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_spans_continue_the_callers_trace_and_lines_name_their_trace(start_server):
    collector = Collector()
    receiver = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, receiver)
    port = receiver.add_insecure_port("127.0.0.1:0")
    receiver.start()
    try:
        srv = start_server("--otlp-endpoint", f"http://127.0.0.1:{port}")
        trace = uuid.uuid4().hex
        mark = srv.mark()
        with open_channel(srv.addr) as channel:
            greeter = helloworld_pb2_grpc.GreeterStub(channel)
            parent = f"00-{trace}-{PARENT}-01"
            greeter.SayHello(helloworld_pb2.HelloRequest(name="a"), metadata=(("traceparent", parent),), timeout=RPC_TIMEOUT)
            greeter.SayHello(helloworld_pb2.HelloRequest(name="b"), timeout=RPC_TIMEOUT)
        lines = srv.calls_since(mark, lambda cs: len(cs) >= 2)
        srv.stop()  # sends what is queued

        spans = []
        while not collector.exports.empty():
            for resource in collector.exports.get().resource_spans:
                for scope in resource.scope_spans:
                    spans.extend(scope.spans)
        assert [s.name for s in spans] == ["helloworld.Greeter/SayHello"] * 2, spans
        continued = next(s for s in spans if s.trace_id.hex() == trace)
        assert continued.parent_span_id.hex() == PARENT
        fresh = next(s for s in spans if s.trace_id.hex() != trace)
        assert fresh.parent_span_id == b""
        # Each line names its span's trace: the caller's, or the new one.
        assert sorted(line["trace_id"] for line in lines) == sorted(s.trace_id.hex() for s in spans)
    finally:
        receiver.stop(0)
