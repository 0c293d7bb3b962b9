"""helloworld.Greeter, called exactly as the seed's quickstart client calls it."""

import helloworld_pb2
import helloworld_pb2_grpc
import pytest

from interop import RPC_TIMEOUT


@pytest.fixture
def greeter(channel):
    return helloworld_pb2_grpc.GreeterStub(channel)


def test_say_hello_greets_by_name(greeter):
    reply = greeter.SayHello(helloworld_pb2.HelloRequest(name="world"), timeout=RPC_TIMEOUT)
    assert reply.message == "Hello, world!"


def test_say_hello_again_greets_again(greeter):
    reply = greeter.SayHelloAgain(helloworld_pb2.HelloRequest(name="world"), timeout=RPC_TIMEOUT)
    assert reply.message == "Hello again, world!"


def test_greeting_keeps_non_ascii_names_verbatim(greeter):
    reply = greeter.SayHello(helloworld_pb2.HelloRequest(name="Zoë 🚀"), timeout=RPC_TIMEOUT)
    assert reply.message == "Hello, Zoë 🚀!"
