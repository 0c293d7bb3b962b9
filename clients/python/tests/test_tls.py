"""TLS, mutual TLS and tokens as the Client takes them (ca=, cert=, key=,
token=, DATAPORT_TOKEN), against real servers: one with TLS and a token
file, one that also asks for client certificates, and one on plaintext
loopback with a token file, where the token goes through an interceptor.

The certificates are made with the openssl commands the README shows."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from conftest import STARTUP_TIMEOUT_S, DataportServer
from helpers import TRANSFER_TIMEOUT, expect_status

import dataport_client
from dataport_client.compat import helloworld_pb2, route_guide_pb2
from dataport_client.dataport.market.v1 import market_pb2

RPC_TIMEOUT = 10.0


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # CN=collector, signed by ca
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> Pki:
    """A CA, a server certificate for localhost and 127.0.0.1, and a client
    certificate named "collector", exactly as README.md makes them."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for name in ("ca", "other-ca"):
        openssl(d, "req", "-x509", *ec, "-days", "3650", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.pem")
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "collector")):
        openssl(d, "req", *ec, "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "365",
                "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return Pki(d, d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key", d / "other-ca.pem")


@dataclass(frozen=True)
class Tokens:
    file: Path
    # greeter:read, route:read, files:write
    caller: str
    # market:read only
    market_reader: str


def new_token(binary: str, name: str, scopes: str) -> tuple[str, str]:
    """`dataport token new`: the secret (its second line) and the entry
    (after the line that ends "changes):")."""
    out = subprocess.run([binary, "token", "new", name, "--scope", scopes], check=True, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("changes):")) + 1
    return lines[1], "\n".join(lines[start:]) + "\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tokens(dataport_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    caller, caller_entry = new_token(dataport_bin, "caller", "greeter:read,route:read,files:write")
    market, market_entry = new_token(dataport_bin, "market-reader", "market:read")
    client_entry = '[[client]]\nname = "collector"\nscopes = ["greeter:read"]\n'
    path = tmp_path_factory.mktemp("auth") / "tokens.toml"
    path.write_text(caller_entry + "\n" + market_entry + "\n" + client_entry)
    return Tokens(path, caller, market)


def serve(binary: str, tmp: pytest.TempPathFactory, *args: str) -> Iterator[DataportServer]:
    srv = DataportServer(binary, tmp.mktemp("data"), args)
    try:
        yield srv
    finally:
        srv.stop()


def tls_flags(pki: Pki) -> tuple[str, ...]:
    return ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))


@pytest.fixture(scope="module")
def tls_server(
    dataport_bin: str, tmp_path_factory: pytest.TempPathFactory, pki: Pki, tokens: Tokens
) -> Iterator[DataportServer]:
    yield from serve(dataport_bin, tmp_path_factory, *tls_flags(pki), "--auth-tokens", str(tokens.file))


@pytest.fixture(scope="module")
def mtls_server(
    dataport_bin: str, tmp_path_factory: pytest.TempPathFactory, pki: Pki, tokens: Tokens
) -> Iterator[DataportServer]:
    yield from serve(
        dataport_bin, tmp_path_factory, *tls_flags(pki), "--tls-client-ca", str(pki.ca), "--auth-tokens", str(tokens.file)
    )


@pytest.fixture(scope="module")
def plaintext_auth_server(
    dataport_bin: str, tmp_path_factory: pytest.TempPathFactory, tokens: Tokens
) -> Iterator[DataportServer]:
    yield from serve(dataport_bin, tmp_path_factory, "--auth-tokens", str(tokens.file))


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dataport_client.TOKEN_ENV, raising=False)


def port(server: DataportServer) -> str:
    return server.addr.rsplit(":", 1)[1]


def symbols(client: dataport_client.Client) -> list[str]:
    return [s.symbol for s in client.market.ListSymbols(market_pb2.ListSymbolsRequest(), timeout=RPC_TIMEOUT).symbols]


def hello(client: dataport_client.Client, name: str = "tls") -> str:
    return client.greeter.SayHello(helloworld_pb2.HelloRequest(name=name), timeout=RPC_TIMEOUT).message


@pytest.mark.parametrize("form", ["str", "path", "bytes"])
def test_https_with_the_ca_and_a_token_reaches_the_server(
    tls_server: DataportServer, pki: Pki, tokens: Tokens, form: str
) -> None:
    ca = {"str": str(pki.ca), "path": pki.ca, "bytes": pki.ca.read_bytes()}[form]
    # By name, as the certificate says (localhost), and by address (its IP SAN).
    for host in ("localhost", "127.0.0.1"):
        with dataport_client.Client(f"https://{host}:{port(tls_server)}", ca=ca, token=tokens.caller) as client:
            assert client.secure
            client.wait_ready(timeout=STARTUP_TIMEOUT_S)
            assert hello(client) == "Hello, tls!"


def test_a_bare_address_with_a_ca_speaks_tls(tls_server: DataportServer, pki: Pki, tokens: Tokens) -> None:
    with dataport_client.Client(tls_server.addr, ca=pki.ca, token=tokens.caller) as client:
        assert client.secure
        assert hello(client) == "Hello, tls!"


def every_kind_of_call(client: dataport_client.Client, tmp_path: Path) -> None:
    """A call of each shape: unary, server stream, client stream (the
    upload), both (RouteChat); each fails UNAUTHENTICATED without the token."""
    assert hello(client) == "Hello, tls!"
    box = route_guide_pb2.Rectangle(
        lo=route_guide_pb2.Point(latitude=400000000, longitude=-750000000),
        hi=route_guide_pb2.Point(latitude=420000000, longitude=-730000000),
    )
    assert isinstance(list(client.route_guide.ListFeatures(box, timeout=RPC_TIMEOUT)), list)
    source = tmp_path / "token.txt"
    source.write_bytes(b"sent with a token\n")
    info = client.upload_file(source, timeout=TRANSFER_TIMEOUT)
    assert info.size == source.stat().st_size
    client.download_file("token.txt", tmp_path / "back.txt", timeout=TRANSFER_TIMEOUT)
    assert (tmp_path / "back.txt").read_bytes() == source.read_bytes()
    # A place of this call's own: RouteChat answers the notes left there before.
    here = route_guide_pb2.Point(latitude=random.randrange(10**8), longitude=random.randrange(10**8))
    notes = [route_guide_pb2.RouteNote(location=here, message=m) for m in "ab"]
    answered = list(client.route_guide.RouteChat(iter(notes), timeout=RPC_TIMEOUT))
    assert [n.message for n in answered] == ["a"]


def test_every_kind_of_call_carries_the_token_over_tls(
    tls_server: DataportServer, pki: Pki, tokens: Tokens, tmp_path: Path
) -> None:
    with dataport_client.Client(f"https://localhost:{port(tls_server)}", ca=pki.ca, token=tokens.caller) as client:
        every_kind_of_call(client, tmp_path)


def test_every_kind_of_call_carries_the_token_over_plaintext(
    plaintext_auth_server: DataportServer, tokens: Tokens, tmp_path: Path
) -> None:
    # grpcio refuses call credentials on an insecure channel; the Client's
    # interceptor sends the same metadata.
    with dataport_client.Client(f"http://{plaintext_auth_server.addr}", token=tokens.caller) as client:
        assert not client.secure
        every_kind_of_call(client, tmp_path)
    with dataport_client.Client(plaintext_auth_server.addr) as client, expect_status(
        grpc.StatusCode.UNAUTHENTICATED, "authorization"
    ):
        hello(client)


def test_the_token_is_dataport_token_unless_given(
    tls_server: DataportServer, pki: Pki, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"https://localhost:{port(tls_server)}"
    monkeypatch.setenv("DATAPORT_TOKEN", tokens.caller)
    with dataport_client.Client(address, ca=pki.ca) as client:
        assert hello(client) == "Hello, tls!"
    # A token given wins over the environment's...
    with dataport_client.Client(address, ca=pki.ca, token=tokens.market_reader) as client:
        with expect_status(grpc.StatusCode.PERMISSION_DENIED, "market-reader", "greeter:read"):
            hello(client)
    # ... and "" sends none.
    with dataport_client.Client(address, ca=pki.ca, token="") as client:
        with expect_status(grpc.StatusCode.UNAUTHENTICATED, "authorization"):
            hello(client)


def test_refusals_name_what_is_missing(tls_server: DataportServer, pki: Pki, tokens: Tokens) -> None:
    address = f"https://localhost:{port(tls_server)}"
    with dataport_client.Client(address, ca=pki.ca) as client:
        with expect_status(grpc.StatusCode.UNAUTHENTICATED, "authorization"):
            hello(client)
    with dataport_client.Client(address, ca=pki.ca, token="dp_" + "0" * 64) as client:
        with expect_status(grpc.StatusCode.UNAUTHENTICATED, "not", "known"):
            hello(client)
    with dataport_client.Client(address, ca=pki.ca, token=tokens.market_reader) as client:
        assert "AAPL" in symbols(client)
        with expect_status(grpc.StatusCode.PERMISSION_DENIED, "market:write"):
            client.market.DeleteSymbol(market_pb2.DeleteSymbolRequest(symbol="AAPL"), timeout=RPC_TIMEOUT)


def test_a_server_certificate_of_another_ca_is_refused(tls_server: DataportServer, pki: Pki, tokens: Tokens) -> None:
    with dataport_client.Client(f"https://localhost:{port(tls_server)}", ca=pki.other_ca, token=tokens.caller) as client:
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            hello(client)


@pytest.mark.parametrize("form", ["path", "bytes"])
def test_mutual_tls_with_cert_and_key(mtls_server: DataportServer, pki: Pki, tokens: Tokens, form: str) -> None:
    cert, key = (pki.client_cert, pki.client_key) if form == "path" else (pki.client_cert.read_bytes(), pki.client_key.read_bytes())
    address = f"https://localhost:{port(mtls_server)}"
    # No token: the certificate's [[client]] entry (collector, greeter:read).
    with dataport_client.Client(address, ca=pki.ca, cert=cert, key=key) as client:
        assert hello(client) == "Hello, tls!"
        with expect_status(grpc.StatusCode.PERMISSION_DENIED, "collector", "market:read"):
            symbols(client)
    # A token wins over the certificate.
    with dataport_client.Client(address, ca=pki.ca, cert=cert, key=key, token=tokens.market_reader) as client:
        assert "AAPL" in symbols(client)
    # Without a certificate the handshake fails.
    with dataport_client.Client(address, ca=pki.ca, token=tokens.caller) as client:
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            hello(client)


def test_tls_arguments_are_checked(pki: Pki) -> None:
    with pytest.raises(ValueError, match="use https://"):
        dataport_client.Client("http://127.0.0.1:1", ca=pki.ca)
    with pytest.raises(ValueError, match="cert needs key"):
        dataport_client.Client("https://127.0.0.1:1", cert=pki.client_cert)
    with pytest.raises(ValueError, match="key needs cert"):
        dataport_client.Client("https://127.0.0.1:1", key=pki.client_key)
    with pytest.raises(ValueError, match="not both"):
        dataport_client.Client("https://127.0.0.1:1", ca=pki.ca, credentials=grpc.ssl_channel_credentials())
    with pytest.raises(ValueError, match=r"a str is a path; pass the PEM itself as bytes"):
        dataport_client.Client("https://127.0.0.1:1", ca=pki.ca.read_text())
    with pytest.raises(FileNotFoundError, match=r"ca='/nonexistent/ca.pem': cannot read it"):
        dataport_client.Client("https://127.0.0.1:1", ca="/nonexistent/ca.pem")


def test_a_token_that_cannot_be_sent_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="^token: a token is printable ASCII") as raised:
        dataport_client.Client("127.0.0.1:1", token="sécret")
    assert "sécret" not in str(raised.value)
    monkeypatch.setenv("DATAPORT_TOKEN", "two words\n")
    with pytest.raises(ValueError, match="^DATAPORT_TOKEN: a token is printable ASCII") as raised:
        dataport_client.Client("127.0.0.1:1")
    assert "two words" not in str(raised.value)
