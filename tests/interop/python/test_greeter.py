"""helloworld.Greeter, called exactly as the seed's quickstart client calls it,
through grpcio's synchronous API and through grpc.aio."""

import uuid

import grpc
import helloworld_pb2
import helloworld_pb2_grpc
import pytest

from interop import RPC_TIMEOUT, expect_status

# tonic's default for a decoded request message, which the Greeter keeps.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@pytest.fixture
def greeter(api):
    return api.stub(helloworld_pb2_grpc.GreeterStub)


def test_say_hello_greets_by_name(greeter):
    reply = greeter.SayHello(helloworld_pb2.HelloRequest(name="world"), timeout=RPC_TIMEOUT)
    assert reply.message == "Hello, world!"


def test_say_hello_again_greets_again(greeter):
    reply = greeter.SayHelloAgain(helloworld_pb2.HelloRequest(name="world"), timeout=RPC_TIMEOUT)
    assert reply.message == "Hello again, world!"


def test_greeting_keeps_non_ascii_names_verbatim(greeter):
    reply = greeter.SayHello(helloworld_pb2.HelloRequest(name="Zoë 🚀"), timeout=RPC_TIMEOUT)
    assert reply.message == "Hello, Zoë 🚀!"


@pytest.mark.parametrize("method", ["SayHello", "SayHelloAgain"])
def test_a_name_over_the_request_limit_is_resource_exhausted_naming_size_and_limit(greeter, method):
    name = "n" * MAX_REQUEST_BYTES  # plus the field's tag and length
    size = helloworld_pb2.HelloRequest(name=name).ByteSize()
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(size), str(MAX_REQUEST_BYTES)):
        getattr(greeter, method)(helloworld_pb2.HelloRequest(name=name), timeout=RPC_TIMEOUT)
    # A name just under the limit is greeted (with room for the greeting in
    # the reply, which the client limits to the same 4 MiB).
    name = "n" * (MAX_REQUEST_BYTES - 32)
    assert getattr(greeter, method)(helloworld_pb2.HelloRequest(name=name), timeout=RPC_TIMEOUT).message.endswith(f"{name}!")


def test_metadata_past_the_limit_is_resource_exhausted_naming_it_and_the_connection_serves_on(greeter):
    hello = helloworld_pb2.HelloRequest(name="m")
    # More than grpcio's own server takes (16 KiB), within Dataport's 64 KiB.
    assert greeter.SayHello(hello, metadata=[("x-big", "a" * 20_000)], timeout=RPC_TIMEOUT).message == "Hello, m!"
    # HTTP/2 would answer 431 (UNKNOWN here) or close the connection.
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "x-big", "100000 bytes", "limit of 65536"):
        greeter.SayHello(hello, metadata=[("x-big", "a" * 100_000)], timeout=RPC_TIMEOUT)
    assert greeter.SayHello(hello, timeout=RPC_TIMEOUT).message == "Hello, m!"


@pytest.mark.parametrize("method", ["SayHello", "SayHelloAgain"])
def test_a_name_that_is_not_utf8_is_refused_naming_the_field(channel, method):
    # grpcio's stubs cannot send such a name, so the bytes go raw: field 1,
    # length 2, 0xff 0xfe. A protobuf string must be UTF-8, and grpcio
    # servers refuse a request that does not parse with INTERNAL too.
    raw = channel.unary_unary(f"/helloworld.Greeter/{method}", response_deserializer=helloworld_pb2.HelloReply.FromString)
    with expect_status(grpc.StatusCode.INTERNAL, "HelloRequest.name", "UTF-8"):
        raw(b"\x0a\x02\xff\xfe", timeout=RPC_TIMEOUT)


def test_the_call_line_names_the_trace_the_client_sent_and_ignores_an_invalid_one(server, channel):
    greeter = helloworld_pb2_grpc.GreeterStub(channel)
    zeros = "0" * 32

    def say(trace):
        parent = f"00-{trace}-00f067aa0ba902b7-01"
        request = helloworld_pb2.HelloRequest(name="traced")
        greeter.SayHello(request, metadata=(("traceparent", parent),), timeout=RPC_TIMEOUT)

    mark = server.mark()
    say(zeros)  # an all-zero trace id is invalid: the line names no trace
    trace = uuid.uuid4().hex
    say(trace)
    calls = server.calls_since(mark, lambda cs: any(c.get("trace_id") == trace for c in cs))
    line = next(c for c in calls if c.get("trace_id") == trace)
    assert (line["method"], line["code"]) == ("/helloworld.Greeter/SayHello", "OK")
    assert not any(c.get("trace_id") == zeros for c in calls), calls
