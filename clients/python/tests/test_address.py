"""The Client takes the addresses the CLI takes, and says where it looked."""

from __future__ import annotations

import socket

import pytest

import dataport_client
from dataport_client import parse_address
from dataport_client.compat import helloworld_pb2


@pytest.mark.parametrize(
    ("address", "target", "secure"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
        ("http://localhost:7000/", "localhost:7000", False),
        ("https://dataport.example.com:8443", "dataport.example.com:8443", True),
        ("https://dataport.example.com", "dataport.example.com:443", True),
        ("http://[::1]:50051", "[::1]:50051", False),
    ],
)
def test_addresses_parse_as_the_cli_takes_them(address: str, target: str, secure: bool) -> None:
    assert parse_address(address) == (target, secure)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("ftp://host:1", "the scheme must be http:// or https://"),
        ("http://host:1/v1/x", "expected http://HOST:PORT and nothing more"),
        ("http://host:port", "server address 'http://host:port'"),
        ("", "the server address is empty"),
    ],
)
def test_bad_addresses_are_named(address: str, words: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_address(address)
    assert words in str(raised.value)


def test_an_http_url_and_the_environment_reach_the_server(server: object, monkeypatch: pytest.MonkeyPatch) -> None:
    addr = server.addr  # type: ignore[attr-defined]
    with dataport_client.Client(f"http://{addr}") as client:
        assert client.greeter.SayHello(helloworld_pb2.HelloRequest(name="url"), timeout=10).message == "Hello, url!"
    monkeypatch.setenv("DATAPORT_SERVER", f"http://{addr}")
    with dataport_client.Client() as client:
        assert client.address == f"http://{addr}"
        client.wait_ready(timeout=10)


def test_wait_ready_names_the_address_and_the_timeout() -> None:
    # A port nothing listens on: bound, then closed.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with dataport_client.Client(f"127.0.0.1:{port}") as client:
        with pytest.raises(dataport_client.NotReady) as raised:
            client.wait_ready(timeout=0.5)
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message and "0.5 s" in message, message
    assert isinstance(raised.value, TimeoutError)
