"""TLS, mutual TLS and tokens, as grpcio's own credentials speak them
(`ssl_channel_credentials`, `access_token_call_credentials`), against
servers run with `--tls-cert`, `--tls-key`, `--tls-client-ca` and
`--auth-tokens`.

The scope table is driven by what the server's reflection lists: every
method is called with an empty request, as raw bytes, by callers of each
access class (no token, an unknown one, `*:read`, `*:write`, each area's
`read` and `write`, client certificates), and the answer must be what the
caller's scopes say: UNAUTHENTICATED without a known caller,
PERMISSION_DENIED naming the scope for a known caller without it, and
anything else (INVALID_ARGUMENT for an empty request, say) for one with it.
Health is open to all; reflection to any known caller.

The certificates are made here (certs.py), the tokens by `dataport token
new`. Every server this module starts keeps its whole output, and the last
test asserts that no secret the tests used appears in any of it."""

import concurrent.futures
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import certs
import grpc
import helloworld_pb2
import helloworld_pb2_grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import DataportServer
from interop import RPC_TIMEOUT, expect_status

AREAS = ("greeter", "route", "position", "market", "outliers", "files")

# The area of every service the server serves, as its scopes name it.
SERVICE_AREA = {
    "helloworld.Greeter": "greeter",
    "routeguide.RouteGuide": "route",
    "posXYZ.PositionService": "position",
    "dataport.position.v1.PositionService": "position",
    "idc.Indicator": "market",
    "idc.IndicatorGraph": "market",
    "dataport.market.v1.MarketService": "market",
    "pb.Outliers": "outliers",
    "dataport.outliers.v1.OutliersService": "outliers",
    "FileSrv": "files",
    "FileTransfer.FileService": "files",
    "dataport.files.v1.FilesService": "files",
    "google.bytestream.ByteStream": "files",
}
HEALTH = "grpc.health.v1.Health"
REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")

# The methods that change stored state, which need `write`; every other
# method of SERVICE_AREA needs `read`.
WRITE_METHODS = {
    "/dataport.market.v1.MarketService/ImportBars",
    "/dataport.market.v1.MarketService/DeleteSymbol",
    "/dataport.position.v1.PositionService/Publish",
    "/posXYZ.PositionService/PositionPub",
    "/FileSrv/UploadFile",
    "/FileTransfer.FileService/Upload",
    "/dataport.files.v1.FilesService/Upload",
    "/dataport.files.v1.FilesService/Delete",
    "/google.bytestream.ByteStream/Write",
    "/google.bytestream.ByteStream/QueryWriteStatus",
}

class Rpc(NamedTuple):
    path: str
    service: str
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True)
class Token:
    name: str
    secret: str
    scopes: tuple
    entry: str  # its [[token]] entry


def new_token(binary, name, *scopes):
    """A token from `dataport token new`: the secret is its second line,
    the entry what follows the line ending "changes):"."""
    out = subprocess.run(
        [binary, "token", "new", name, "--scope", ",".join(scopes)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line.endswith("changes):")) + 1
    entry = "\n".join(out[start:]) + "\n"
    assert out[1] not in entry, "the entry never holds the secret"
    return Token(name, out[1], tuple(scopes), entry)


def allows(scopes, area, access):
    """Whether `scopes` let a caller do `access` in `area` (write includes read)."""
    for scope in scopes:
        a, _, acc = scope.partition(":")
        if a in (area, "*") and (acc == access or acc == "write"):
            return True
    return False


def needs(rpc):
    """What a method asks: "open", "known", or (area, access)."""
    if rpc.service == HEALTH:
        return "open"
    if rpc.service in REFLECTION:
        return "known"
    return SERVICE_AREA[rpc.service], "write" if rpc.path in WRITE_METHODS else "read"


def expected(rpc, caller):
    """(code class, details) a call of rpc by `caller` must get: caller is
    None for no known caller, else (name, scopes)."""
    need = needs(rpc)
    if need == "open":
        return "let in", None
    if caller is None:
        return "UNAUTHENTICATED", None
    if need == "known":
        return "let in", None
    name, scopes = caller
    area, access = need
    if allows(scopes, area, access):
        return "let in", None
    return "PERMISSION_DENIED", f"{name} may not call {rpc.path}: it needs the scope {area}:{access}"


def _raw(b):
    return b


def answer(channel, rpc):
    """How the server answers an empty request to rpc: (code, details);
    code None for a response stream it kept open, which it let in."""
    if rpc.server_streaming:
        if rpc.client_streaming:
            call = channel.stream_stream(rpc.path, request_serializer=_raw, response_deserializer=_raw)(
                iter([b""]), timeout=RPC_TIMEOUT
            )
        else:
            call = channel.unary_stream(rpc.path, request_serializer=_raw, response_deserializer=_raw)(
                b"", timeout=RPC_TIMEOUT
            )
        # A refusal is a trailers-only response: grpcio sees no headers
        # (the status is trailing metadata), and the call ends with them.
        # Headers (hyper's date, say) mean the server let the call in; it
        # is cancelled there, as a Watch may have nothing to say for long.
        if call.initial_metadata():
            call.cancel()
            return None, "let in (headers sent)"
        over = threading.Event()
        call.add_done_callback(lambda _: over.set())
        if not over.wait(RPC_TIMEOUT):
            call.cancel()
            return None, "kept open without headers"
        return call.code(), call.details()
    try:
        if rpc.client_streaming:
            channel.stream_unary(rpc.path, request_serializer=_raw, response_deserializer=_raw)(
                iter([b""]), timeout=RPC_TIMEOUT
            )
        else:
            channel.unary_unary(rpc.path, request_serializer=_raw, response_deserializer=_raw)(b"", timeout=RPC_TIMEOUT)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def code_class(code):
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return code.name
    return "let in"


def secure_channel(server, ca, token=None, client=None, target=None):
    """A channel of its own (not sharing a connection with another) to
    server over TLS, checking its certificate against `ca` (a certs.Pair),
    presenting `client` (a certs.Pair) if given, and sending `token`."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    if token is not None:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(target or server.addr, creds, options=[("grpc.use_local_subchannel_pool", 1)])


# Servers and callers


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tokens(dataport_bin):
    """A token of each access class, by label."""
    made = {
        "*:read": new_token(dataport_bin, "all-read", "*:read"),
        "*:write": new_token(dataport_bin, "all-write", "*:write"),
    }
    for area in AREAS:
        for access in ("read", "write"):
            made[f"{area}:{access}"] = new_token(dataport_bin, f"{area}-{access}", f"{area}:{access}")
    return made


# The client certificate the token file names, and its scopes.
COLLECTOR_SCOPES = ("files:write", "outliers:read")


@pytest.fixture(scope="module")
def token_file(tmp_path_factory, tokens):
    path = tmp_path_factory.mktemp("auth") / "tokens.toml"
    entries = [t.entry for t in tokens.values()]
    entries.append('[[client]]\nname = "collector"\nscopes = [%s]\n' % ", ".join(f'"{s}"' for s in COLLECTOR_SCOPES))
    path.write_text("\n".join(entries))
    return path


class Started:
    """The servers this module started, whose output the last test reads,
    and the secrets made along the way besides the `tokens` fixture's."""

    servers = []
    secrets = []


def start_auth_server(binary, data_dir, *args):
    srv = DataportServer(binary, data_dir, extra_args=args, keep_output=True).start()
    Started.servers.append(srv)
    return srv


@pytest.fixture(scope="module")
def tls_server(dataport_bin, tmp_path_factory, pki, token_file):
    srv = start_auth_server(
        dataport_bin, tmp_path_factory.mktemp("tls-data"),
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key), "--auth-tokens", str(token_file),
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def mtls_server(dataport_bin, tmp_path_factory, pki, token_file):
    srv = start_auth_server(
        dataport_bin, tmp_path_factory.mktemp("mtls-data"),
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
        "--tls-client-ca", str(pki.ca.cert), "--auth-tokens", str(token_file),
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def served(tls_server, pki, tokens):
    """Every method the server serves, as its reflection lists them (asked
    with a token: reflection needs a known caller)."""
    with secure_channel(tls_server, pki.ca, tokens["*:read"].secret) as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        pool = descriptor_pool.DescriptorPool(db)
        rpcs = [
            Rpc(f"/{name}/{m.name}", name, m.client_streaming, m.server_streaming)
            for name in db.get_services()
            for m in pool.FindServiceByName(name).methods
        ]
    return sorted(rpcs)


def test_the_table_classifies_every_method_reflection_lists(served):
    services = {rpc.service for rpc in served}
    assert services == set(SERVICE_AREA) | {HEALTH, *REFLECTION}, "a service the table does not know, or one gone"
    assert WRITE_METHODS <= {rpc.path for rpc in served}, "a write method that is not served"
    assert len(served) == 38


# The scope table


def check_every_method(channel, served, caller):
    """Calls every method on channel, all at once, and answers the lines of
    those whose answer is not what `caller` (None or (name, scopes)) must
    get."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(zip(served, pool.map(lambda rpc: answer(channel, rpc), served)))
    wrong = []
    for rpc, (code, details) in answers.items():
        want, want_details = expected(rpc, caller)
        got = "let in" if code is None else code_class(code)
        if got != want or (want_details is not None and details != want_details):
            wrong.append(f"{rpc.path}: want {want} {want_details or ''}, got {code and code.name}: {details!r}")
    return wrong


@pytest.mark.parametrize(
    "label",
    [None, "unknown", "*:read", "*:write", *(f"{a}:{acc}" for a in AREAS for acc in ("read", "write"))],
)
def test_every_method_answers_a_token_as_its_scopes_say(tls_server, pki, tokens, served, label):
    if label is None:
        secret, caller = None, None
    elif label == "unknown":
        secret, caller = "dp_" + uuid.uuid4().hex * 2, None
        Started.secrets.append(secret)
    else:
        token = tokens[label]
        secret, caller = token.secret, (token.name, token.scopes)
    with secure_channel(tls_server, pki.ca, secret) as ch:
        wrong = check_every_method(ch, served, caller)
    assert not wrong, f"{len(wrong)} of {len(served)} methods answered {label} wrongly:\n" + "\n".join(wrong)


@pytest.mark.parametrize("label", ["collector", "stranger", "collector with *:read"])
def test_every_method_answers_a_client_certificate_as_its_entry_says(mtls_server, pki, tokens, served, label):
    if label == "collector":
        client, secret, caller = pki.collector, None, ("collector", COLLECTOR_SCOPES)
    elif label == "stranger":
        # Signed by the CA, so let through TLS, but named in no [[client]] entry.
        client, secret, caller = pki.stranger, None, None
    else:
        # A token wins over the certificate.
        token = tokens["*:read"]
        client, secret, caller = pki.collector, token.secret, (token.name, token.scopes)
    with secure_channel(mtls_server, pki.ca, secret, client=client) as ch:
        wrong = check_every_method(ch, served, caller)
    assert not wrong, f"{len(wrong)} of {len(served)} methods answered {label} wrongly:\n" + "\n".join(wrong)


def test_a_refusal_says_what_is_missing(tls_server, pki, tokens):
    hello = helloworld_pb2.HelloRequest(name="auth")
    with secure_channel(tls_server, pki.ca) as ch:
        with expect_status(grpc.StatusCode.UNAUTHENTICATED, "needs", "token", "authorization"):
            helloworld_pb2_grpc.GreeterStub(ch).SayHello(hello, timeout=RPC_TIMEOUT)
    with secure_channel(tls_server, pki.ca, "dp_not-a-token") as ch:
        with expect_status(grpc.StatusCode.UNAUTHENTICATED, "not", "known"):
            helloworld_pb2_grpc.GreeterStub(ch).SayHello(hello, timeout=RPC_TIMEOUT)
    with secure_channel(tls_server, pki.ca, tokens["market:write"].secret) as ch:
        with expect_status(grpc.StatusCode.PERMISSION_DENIED, "market-write", "greeter:read"):
            helloworld_pb2_grpc.GreeterStub(ch).SayHello(hello, timeout=RPC_TIMEOUT)


# TLS


def say_hello(channel, **kw):
    return helloworld_pb2_grpc.GreeterStub(channel).SayHello(
        helloworld_pb2.HelloRequest(name="tls"), timeout=RPC_TIMEOUT, **kw
    ).message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_with_the_ca_answers(tls_server, pki, tokens, host):
    port = tls_server.addr.rsplit(":", 1)[1]
    with secure_channel(tls_server, pki.ca, tokens["greeter:read"].secret, target=f"{host}:{port}") as ch:
        assert say_hello(ch) == "Hello, tls!"


def test_a_server_certificate_of_another_ca_is_refused_by_the_client(tls_server, pki, tokens):
    with secure_channel(tls_server, pki.other_ca, tokens["greeter:read"].secret) as ch:
        with expect_status(grpc.StatusCode.UNAVAILABLE) as info:
            say_hello(ch)
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.details()


def test_a_server_certificate_for_another_name_is_refused_by_the_client(tls_server, pki, tokens):
    creds = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(pki.ca.cert_pem), grpc.access_token_call_credentials(tokens["*:read"].secret)
    )
    options = [("grpc.ssl_target_name_override", "dataport.example.com"), ("grpc.use_local_subchannel_pool", 1)]
    with grpc.secure_channel(tls_server.addr, creds, options=options) as ch:
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            say_hello(ch)


def test_plaintext_to_the_tls_port_fails(tls_server, tokens):
    with grpc.insecure_channel(tls_server.addr, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            say_hello(ch, metadata=[("authorization", f"Bearer {tokens['*:read'].secret}")])


@pytest.mark.parametrize("client", [None, "foreign", "expired", "self_signed"])
def test_mutual_tls_refuses_a_client_without_a_certificate_its_ca_signed_in_date(mtls_server, pki, tokens, client):
    pair = getattr(pki, client) if client else None
    mark = mtls_server.mark()
    # all-write: a token no other test sends to this server.
    with secure_channel(mtls_server, pki.ca, tokens["*:write"].secret, client=pair) as ch:
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            say_hello(ch)
    # And the server let no call through. A call that ended before the
    # probe began is logged no later than the probe.
    probe = f"probe-{uuid.uuid4().hex}"
    with secure_channel(mtls_server, pki.ca, client=pki.collector) as ch:
        with expect_status(grpc.StatusCode.NOT_FOUND):
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=probe), timeout=RPC_TIMEOUT)
    calls = mtls_server.calls_since(mark, lambda cs: any(probe in c.get("message", "") for c in cs))
    assert not [c for c in calls if c.get("caller") == "all-write"], calls


def test_mutual_tls_lets_in_a_certificate_of_its_ca(mtls_server, pki):
    with secure_channel(mtls_server, pki.ca, client=pki.collector) as ch:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)


def test_call_lines_name_the_caller(tls_server, mtls_server, pki, tokens):
    def logged(server, secret=None, client=None, code=grpc.StatusCode.OK):
        """The call line of a SayHello on a connection of its own (found by
        its peer address): code and caller."""
        with secure_channel(server, pki.ca, secret, client=client) as ch:
            peer = server.peer_of(ch)
            if code == grpc.StatusCode.OK:
                say_hello(ch)
            else:
                with expect_status(code):
                    say_hello(ch)

        def mine(cs):
            return [c for c in cs if c.get("peer") == peer and c.get("method") == "/helloworld.Greeter/SayHello"]

        line = mine(server.calls_since(0, lambda cs: bool(mine(cs))))[0]
        return line["code"], line["caller"]

    assert logged(tls_server, tokens["greeter:read"].secret) == ("OK", "greeter-read")
    # Refused, and still named.
    denied = logged(tls_server, tokens["route:read"].secret, code=grpc.StatusCode.PERMISSION_DENIED)
    assert denied == ("PERMISSION_DENIED", "route-read")
    assert logged(tls_server, code=grpc.StatusCode.UNAUTHENTICATED) == ("UNAUTHENTICATED", "anonymous")
    denied = logged(mtls_server, client=pki.collector, code=grpc.StatusCode.PERMISSION_DENIED)
    assert denied == ("PERMISSION_DENIED", "collector")


# The token file, read again


def replace_file(path, text, mtime_ns=None):
    """Writes path whole and at once (a temporary file renamed over it),
    with the modification time given, if one is."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    if mtime_ns is not None:
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
    os.replace(tmp, path)


def poll(what, check, timeout=15.0):
    """Calls check() until it answers true; fails naming `what` after
    `timeout` (the server looks at the file every 2 s)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def test_the_token_file_is_read_again_when_it_changes_and_on_sighup(dataport_bin, tmp_path, pki):
    first = new_token(dataport_bin, "first", "greeter:read")
    second = new_token(dataport_bin, "second", "greeter:read")
    third = new_token(dataport_bin, "third", "greeter:read")
    Started.secrets.extend(t.secret for t in (first, second, third))
    path = tmp_path / "tokens.toml"
    path.write_text(first.entry)
    srv = start_auth_server(
        dataport_bin, tmp_path / "data",
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key), "--auth-tokens", str(path),
    )
    try:

        def code(token):
            with secure_channel(srv, pki.ca, token.secret) as ch:
                try:
                    say_hello(ch)
                except grpc.RpcError as e:
                    return e.code()
                return grpc.StatusCode.OK

        assert code(first) == grpc.StatusCode.OK
        assert code(second) == grpc.StatusCode.UNAUTHENTICATED

        replace_file(path, first.entry + "\n" + second.entry)
        poll("a token added to the file works", lambda: code(second) == grpc.StatusCode.OK)
        assert code(first) == grpc.StatusCode.OK

        replace_file(path, second.entry)
        poll("a token taken out of the file is refused", lambda: code(first) == grpc.StatusCode.UNAUTHENTICATED)
        assert code(second) == grpc.StatusCode.OK

        # A file that does not load is logged, and the entries loaded before stay.
        mark = len(srv.everything)
        replace_file(path, second.entry + "\n[[token]]\nname = 3\n")
        poll(
            "a broken file is logged",
            lambda: any("auth_tokens" in line and '"ERROR"' in line for line in srv.everything[mark:]),
        )
        assert code(second) == grpc.StatusCode.OK

        # SIGHUP reads the file whatever its modification time says.
        before = path.stat().st_mtime_ns
        replace_file(path, second.entry + "\n" + third.entry, mtime_ns=before)
        srv.process.send_signal(signal.SIGHUP)
        poll("SIGHUP reads the file again", lambda: code(third) == grpc.StatusCode.OK)
    finally:
        srv.stop()


# Last: nothing secret in any server's output


def test_no_secret_appears_in_any_server_output(tls_server, mtls_server, pki, tokens):
    """Every server this module started, stopped, and its whole stdout and
    stderr read: no token secret (known, unknown, reloaded) and no private
    key is in it. Run last (pytest runs a module's tests in order); run
    alone, it still calls each server with every secret first."""
    secrets = [t.secret for t in tokens.values()] + Started.secrets
    for srv in (tls_server, mtls_server):
        for secret in secrets:
            with secure_channel(srv, pki.ca, secret, client=pki.collector) as ch:
                try:
                    say_hello(ch)
                except grpc.RpcError:
                    pass
    for srv in Started.servers:
        srv.stop()
    assert Started.servers and all(srv.everything for srv in Started.servers)
    key_lines = {
        line for key in pki.keys() for line in key.decode().splitlines() if line and not line.startswith("-----")
    }
    for srv in Started.servers:
        output = "".join(srv.everything)
        assert '"message":"listening"' in output and '"caller":' in output, "the output was not kept whole"
        leaked = [s for s in secrets if s in output] + [line for line in key_lines if line in output]
        assert not leaked, f"{len(leaked)} secrets in the output of the server with {srv.extra_args}"
