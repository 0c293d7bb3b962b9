"""Deadlines and cancellation on every RPC the server serves, through grpcio's
synchronous API and through grpc.aio, checked on both ends: the status the
client gets and the line the server logs for the call.

A call is in flight at its deadline or its cancellation when the server has
its headers but not yet its request: so a slow link delivers a large request.
Each call here is started that way, its request stream held open (on the
wire, a unary request is a request stream of one message, which is why these
calls go through the channel rather than the unary stubs), so every method is
caught with its handler waiting. The streams that answer while their request
stream is open (health Watch, RouteChat, DetectStream, reflection; position
Watch in test_deadlines.py) are also ended after a first answer, through their
generated stubs, and so are the three downloads after their first chunk.
Last, every RPC refuses a request that does not decode."""

import asyncio
import queue
import threading
import time
import uuid
from typing import NamedTuple

import file_pb2
import grpc
import helloworld_pb2
import indicator_graph_pb2
import indicator_pb2
import outliers_pb2
import position_pb2
import pytest
import route_guide_pb2
import route_guide_pb2_grpc
import uploadfile_pb2
from dataport.files.v1 import files_pb2, files_pb2_grpc
from dataport.market.v1 import market_pb2
from dataport.outliers.v1 import outliers_pb2 as outliers_v1_pb2
from dataport.outliers.v1 import outliers_pb2_grpc as outliers_v1_grpc
from dataport.position.v1 import position_pb2 as position_v1_pb2
from google.bytestream import bytestream_pb2
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from interop import RPC_TIMEOUT, AioApi, expect_status

# Short, so that 36 calls cost one wait; long enough to tell "at the
# deadline" from "at once".
DEADLINE = 0.3


class Rpc(NamedTuple):
    path: str
    request: type
    response: type
    client_streaming: bool
    server_streaming: bool

    def __str__(self):
        return self.path


def rpcs_of(module):
    """Every method of every service a generated _pb2 module defines."""
    out = []
    for service in module.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            out.append(
                Rpc(
                    f"/{service.full_name}/{method.name}",
                    message_factory.GetMessageClass(method.input_type),
                    message_factory.GetMessageClass(method.output_type),
                    method.client_streaming,
                    method.server_streaming,
                )
            )
    return out


def reflection_v1(rpc):
    # v1 and v1alpha are the same messages on the wire.
    return rpc._replace(path=rpc.path.replace(".v1alpha.", ".v1."))


RPCS = [
    rpc
    for module in (
        helloworld_pb2,
        route_guide_pb2,
        position_pb2,
        position_v1_pb2,
        indicator_pb2,
        indicator_graph_pb2,
        market_pb2,
        outliers_pb2,
        outliers_v1_pb2,
        file_pb2,
        uploadfile_pb2,
        files_pb2,
        bytestream_pb2,
        health_pb2,
        reflection_pb2,
    )
    for rpc in rpcs_of(module)
]
RPCS += [reflection_v1(rpc) for rpc in RPCS if ".v1alpha." in rpc.path]


def test_the_table_holds_every_method_the_server_serves(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)
    served = {f"/{name}/{m.name}" for name in db.get_services() for m in pool.FindServiceByName(name).methods}
    assert sorted(served) == sorted(str(rpc) for rpc in RPCS)
    assert len(RPCS) == 38


# Held-back calls


def server_lines(server, since, peer, paths):
    """The line the server logged for each of `paths` on this peer after
    log position `since`, once there is one for each."""

    def ours(calls):
        return {c["method"]: c for c in calls if c["peer"] == peer and c["method"] in paths}

    return ours(server.calls_since(since, lambda calls: len(ours(calls)) == len(paths)))


def first_line(server, since, path):
    """The first line the server logged for `path` after `since`."""
    calls = server.calls_since(since, lambda cs: any(c["method"] == path for c in cs))
    return next(c for c in calls if c["method"] == path)


def health_check_is_serving(reply):
    return reply.status == health_pb2.HealthCheckResponse.SERVING


class HeldBack:
    """Every RPC, started on one channel with its request stream held open
    until `release()`; `deadline_all()` and `cancel_all()` run them all at
    once. `probe()` calls a method no other call uses, which the server
    answers UNIMPLEMENTED and logs: its line names this channel's peer, and
    once it is answered the server has read every call started before it on
    the connection."""

    def probe(self, server):
        """(this channel's peer, the log position after the probe's line)."""
        path = f"/helloworld.Greeter/Probe{uuid.uuid4().hex}"
        mark = server.mark()
        self.call_unimplemented(path)
        calls = server.calls_since(mark, lambda cs: any(c["method"] == path for c in cs))
        i = [c["method"] for c in calls].index(path)
        return calls[i]["peer"], mark + i + 1


class HeldBackSync(HeldBack):
    def __init__(self, channel):
        self.channel = channel
        self._release = threading.Event()

    def _requests(self):
        self._release.wait(RPC_TIMEOUT)
        yield from ()

    def start(self, rpc, timeout):
        serialize, parse = rpc.request.SerializeToString, rpc.response.FromString
        if rpc.server_streaming:
            return self.channel.stream_stream(rpc.path, serialize, parse)(self._requests(), timeout=timeout)
        return self.channel.stream_unary(rpc.path, serialize, parse).future(self._requests(), timeout=timeout)

    def start_all(self, timeout):
        calls, ended = {}, {}
        for rpc in RPCS:
            call = calls[rpc.path] = self.start(rpc, timeout)
            call.add_done_callback(lambda _, path=rpc.path: ended.setdefault(path, time.monotonic()))
        return calls, ended

    def call_unimplemented(self, path):
        with expect_status(grpc.StatusCode.UNIMPLEMENTED):
            self.channel.unary_unary(path)(b"", timeout=RPC_TIMEOUT)

    def deadline_all(self):
        started = time.monotonic()
        calls, ended = self.start_all(DEADLINE)
        codes = {path: call.code() for path, call in calls.items()}
        return codes, {path: ended[path] - started for path in calls}

    def cancel_all(self):
        calls, _ = self.start_all(RPC_TIMEOUT)
        self.call_unimplemented(f"/helloworld.Greeter/Barrier{uuid.uuid4().hex}")
        for call in calls.values():
            call.cancel()
        return {path: call.code() for path, call in calls.items()}

    def check(self):
        return health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)

    def release(self):
        self._release.set()


class HeldBackAio(HeldBack):
    """The same on a grpc.aio.Channel, on an event loop of its own."""

    def __init__(self, addr):
        self.aio = AioApi(addr)
        self.channel = self.aio.channel
        self._release = asyncio.Event()

    async def _requests(self):
        await self._release.wait()
        return
        yield

    def start(self, rpc, timeout):
        serialize, parse = rpc.request.SerializeToString, rpc.response.FromString
        kind = self.channel.stream_stream if rpc.server_streaming else self.channel.stream_unary
        return kind(rpc.path, serialize, parse)(self._requests(), timeout=timeout)

    async def _unimplemented(self, path):
        with expect_status(grpc.StatusCode.UNIMPLEMENTED):
            await self.channel.unary_unary(path)(b"", timeout=RPC_TIMEOUT)

    def call_unimplemented(self, path):
        self.aio.run(self._unimplemented(path))

    def deadline_all(self):
        async def run():
            started = time.monotonic()

            async def end(call):
                code = await call.code()
                return code, time.monotonic() - started

            ends = await asyncio.gather(*(end(self.start(rpc, DEADLINE)) for rpc in RPCS))
            return {rpc.path: e[0] for rpc, e in zip(RPCS, ends)}, {rpc.path: e[1] for rpc, e in zip(RPCS, ends)}

        return self.aio.run(run())

    def cancel_all(self):
        async def run():
            calls = {rpc.path: self.start(rpc, RPC_TIMEOUT) for rpc in RPCS}
            await self._unimplemented(f"/helloworld.Greeter/Barrier{uuid.uuid4().hex}")
            for call in calls.values():
                call.cancel()
            return {path: await call.code() for path, call in calls.items()}

        return self.aio.run(run())

    def check(self):
        async def check():
            return await health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)

        return self.aio.run(check())

    def release(self):
        self._release.set()
        self.aio.close()


@pytest.fixture(params=["sync", "aio"])
def held_back(request, server, channel):
    calls = HeldBackSync(channel) if request.param == "sync" else HeldBackAio(server.addr)
    try:
        yield calls
    finally:
        calls.release()


def test_every_rpc_still_waiting_at_its_deadline_ends_deadline_exceeded_on_both_ends(server, held_back):
    peer, since = held_back.probe(server)
    codes, elapsed = held_back.deadline_all()
    assert codes == {rpc.path: grpc.StatusCode.DEADLINE_EXCEEDED for rpc in RPCS}
    early = {path: t for path, t in elapsed.items() if t < DEADLINE * 0.9}
    assert not early, f"ended before the {DEADLINE}s deadline: {early}"
    late = {path: t for path, t in elapsed.items() if t > DEADLINE + 5}
    assert not late, f"ended long after the {DEADLINE}s deadline: {late}"
    # The server ended each call too, none as a success. Which side's timer
    # fires first is a race (the server's starts when the headers arrive,
    # from what the header says is left, and fires 1 ms early); a line
    # saying DEADLINE_EXCEEDED is the server's own answer.
    lines = server_lines(server, since, peer, {rpc.path for rpc in RPCS})
    assert not [path for path, line in lines.items() if line["code"] == "OK"]
    assert all("deadline" in line["message"] for line in lines.values() if line["code"] == "DEADLINE_EXCEEDED"), lines
    # It does win for most of them (all but the four whose answer begins at
    # once: the bidirectional streams), so a server that ignored deadlines,
    # leaving every call to the client's reset, shows here.
    assert any(line["code"] == "DEADLINE_EXCEEDED" for line in lines.values()), lines
    assert health_check_is_serving(held_back.check())


def test_every_rpc_cancelled_in_flight_ends_cancelled_and_the_server_drops_it(server, held_back):
    peer, since = held_back.probe(server)
    codes = held_back.cancel_all()
    assert codes == {rpc.path: grpc.StatusCode.CANCELLED for rpc in RPCS}
    # The server ended every call, none as a success...
    lines = server_lines(server, since, peer, {rpc.path for rpc in RPCS})
    assert not [path for path, line in lines.items() if line["code"] == "OK"]
    # ...and goes on serving the channel.
    assert health_check_is_serving(held_back.check())


def test_every_rpc_cancelled_in_flight_is_logged_cancelled(server, held_back):
    peer, since = held_back.probe(server)
    held_back.cancel_all()
    lines = server_lines(server, since, peer, {rpc.path for rpc in RPCS})
    wrong = {path: (line["code"], line.get("message")) for path, line in lines.items() if line["code"] != "CANCELLED"}
    assert not wrong, "\n".join(f"{p}: {w}" for p, w in sorted(wrong.items()))


# Streams ended while they answer


def outliers_first_message():
    steady = [outliers_v1_pb2.Metric(name="a", value=v) for v in [0.0, 1.0] * 5]
    return outliers_v1_pb2.DetectStreamRequest(window=10, metrics=[*steady, outliers_v1_pb2.Metric(name="a", value=50.0)])


class LiveStream(NamedTuple):
    """An RPC whose response stream stays open while its request stream
    does: its path, the stub and method, the first messages, and a check of
    the first answer."""

    path: str
    stub: type
    method: str
    opening: list
    first_answer_ok: object
    server_streaming_only: bool = False


P = route_guide_pb2.Point(latitude=1, longitude=1)
REFLECTION_PATHS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}


class ReflectionStub:
    """grpcio-reflection ships only v1alpha stubs; v1 is the same on the wire."""

    def __init__(self, channel, version):
        self.ServerReflectionInfo = channel.stream_stream(
            REFLECTION_PATHS[version],
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )


LIVE_STREAMS = {
    "health-watch": LiveStream(
        "/grpc.health.v1.Health/Watch",
        health_pb2_grpc.HealthStub,
        "Watch",
        [health_pb2.HealthCheckRequest(service="helloworld.Greeter")],
        lambda r: r.status == health_pb2.HealthCheckResponse.SERVING,
        server_streaming_only=True,
    ),
    "route-chat": LiveStream(
        "/routeguide.RouteGuide/RouteChat",
        route_guide_pb2_grpc.RouteGuideStub,
        "RouteChat",
        [route_guide_pb2.RouteNote(location=P, message="first"), route_guide_pb2.RouteNote(location=P, message="second")],
        lambda r: r.message == "first",
    ),
    "detect-stream": LiveStream(
        "/dataport.outliers.v1.OutliersService/DetectStream",
        outliers_v1_grpc.OutliersServiceStub,
        "DetectStream",
        [outliers_first_message()],
        lambda r: [(a.index, a.metric.value) for a in r.anomalies] == [(10, 50.0)],
    ),
    **{
        f"reflection-{version}": LiveStream(
            path,
            lambda ch, version=version: ReflectionStub(ch, version),
            "ServerReflectionInfo",
            [reflection_pb2.ServerReflectionRequest(list_services="")],
            lambda r: "helloworld.Greeter" in [s.name for s in r.list_services_response.service],
        )
        for version, path in REFLECTION_PATHS.items()
    },
}


def run_live_sync(channel, live, timeout, end):
    """Opens the stream, checks its first answer, then `end(call)`; answers
    the status the call ended with."""
    method = getattr(live.stub(channel), live.method)
    if live.server_streaming_only:
        call = method(live.opening[0], timeout=timeout)
    else:
        outgoing = queue.Queue()
        for message in live.opening:
            outgoing.put(message)
        call = method(iter(outgoing.get, None), timeout=timeout)
    try:
        assert live.first_answer_ok(next(call))
        end(call)
        with pytest.raises(grpc.RpcError) as info:
            next(call)
        return info.value.code()
    finally:
        if not live.server_streaming_only:
            outgoing.put(None)


def run_live_aio(aio, live, timeout, cancel):
    async def run():
        method = getattr(live.stub(aio.channel), live.method)
        done = asyncio.Event()

        async def requests():
            for message in live.opening:
                yield message
            await done.wait()

        call = method(live.opening[0] if live.server_streaming_only else requests(), timeout=timeout)
        try:
            assert live.first_answer_ok(await call.read())
            if cancel:
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call.read()
            else:
                with pytest.raises(grpc.RpcError):
                    await call.read()
            return await call.code()
        finally:
            done.set()

    return aio.run(run())


@pytest.fixture(params=["sync", "aio"])
def live_api(request, server, channel):
    if request.param == "sync":
        yield "sync", channel, None
    else:
        aio = AioApi(server.addr)
        try:
            yield "aio", None, aio
        finally:
            aio.close()


@pytest.mark.parametrize("name", LIVE_STREAMS)
def test_an_answering_stream_ends_deadline_exceeded_at_its_deadline(server, live_api, name):
    kind, channel, aio = live_api
    live = LIVE_STREAMS[name]
    mark = server.mark()
    started = time.monotonic()
    if kind == "sync":
        code = run_live_sync(channel, live, DEADLINE, end=lambda call: None)
    else:
        code = run_live_aio(aio, live, DEADLINE, cancel=False)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert DEADLINE * 0.9 <= time.monotonic() - started < DEADLINE + 5
    # The answer had begun, so the client's deadline ends the call: the
    # server stops the stream when the client resets it.
    line = first_line(server, mark, live.path)
    assert line["code"] in ("CANCELLED", "DEADLINE_EXCEEDED"), line
    assert line["duration_us"] >= DEADLINE * 0.9 * 1e6, line


@pytest.mark.parametrize("name", LIVE_STREAMS)
def test_an_answering_stream_cancelled_by_the_client_ends_cancelled_on_both_ends(server, live_api, name):
    kind, channel, aio = live_api
    live = LIVE_STREAMS[name]
    mark = server.mark()
    if kind == "sync":
        code = run_live_sync(channel, live, RPC_TIMEOUT, end=lambda call: call.cancel())
    else:
        code = run_live_aio(aio, live, RPC_TIMEOUT, cancel=True)
    assert code == grpc.StatusCode.CANCELLED
    line = first_line(server, mark, live.path)
    assert line["code"] == "CANCELLED", line



# Requests that are not protobuf

# A field 1 whose length runs past the end of the message: no message type
# reads it.
CUT_SHORT = b"\x0a\x05ab"


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_every_rpc_refuses_a_request_that_does_not_decode(channel, rpc):
    # As grpcio servers do (INTERNAL), or as a refusal of the request
    # (INVALID_ARGUMENT); never an answer.
    parse = rpc.response.FromString
    call = (channel.stream_stream if rpc.server_streaming else channel.stream_unary)(rpc.path, None, parse)
    with pytest.raises(grpc.RpcError) as info:
        response = call(iter([CUT_SHORT]), timeout=RPC_TIMEOUT)
        if rpc.server_streaming:
            list(response)
    assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT), info.value
    assert "message" in info.value.details(), info.value.details()
    assert health_check_is_serving(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT))


# Downloads cancelled after their first chunk

BIG = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(channel):
    """A file much larger than what HTTP/2 flow control lets the server send
    ahead: (name, its bytes)."""
    name = f"big-{uuid.uuid4().hex[:8]}.bin"
    data = bytes(range(256)) * (BIG // 256)

    def requests():
        yield files_pb2.UploadRequest(header=files_pb2.UploadHeader(name=name))
        for i in range(0, len(data), 1 << 20):
            yield files_pb2.UploadRequest(chunk=data[i : i + (1 << 20)])

    assert files_pb2_grpc.FilesServiceStub(channel).Upload(requests(), timeout=RPC_TIMEOUT).file.size == BIG
    return name, data


def download_calls(name):
    """For each download RPC: its path, request and the bytes of a reply."""
    stem, _, ext = name.rpartition(".")
    return {
        "FileSrv.DownloadFile": ("/FileSrv/DownloadFile", file_pb2.FileHeader(filename=stem, extension=f".{ext}"), file_pb2.FileResponse, lambda r: r.chunk_data),
        "FilesService.Download": ("/dataport.files.v1.FilesService/Download", files_pb2.DownloadRequest(names=[name]), files_pb2.DownloadResponse, lambda r: r.chunk),
        "ByteStream.Read": ("/google.bytestream.ByteStream/Read", bytestream_pb2.ReadRequest(resource_name=f"files/{name}"), bytestream_pb2.ReadResponse, lambda r: r.data),
    }


@pytest.mark.parametrize("rpc", ["FileSrv.DownloadFile", "FilesService.Download", "ByteStream.Read"])
def test_a_download_cancelled_after_its_first_chunk_ends_cancelled_on_both_ends(server, live_api, big_file, rpc):
    kind, channel, aio = live_api
    name, data = big_file
    path, request, response, payload = download_calls(name)[rpc]
    mark = server.mark()
    if kind == "sync":
        call = channel.unary_stream(path, request.SerializeToString, response.FromString)(request, timeout=RPC_TIMEOUT)
        first = next(call)
        call.cancel()
        with expect_status(grpc.StatusCode.CANCELLED):
            next(call)
        code = call.code()
        again = b"".join(payload(r) for r in channel.unary_stream(path, request.SerializeToString, response.FromString)(request, timeout=RPC_TIMEOUT))
    else:

        async def run():
            method = aio.channel.unary_stream(path, request.SerializeToString, response.FromString)
            call = method(request, timeout=RPC_TIMEOUT)
            first = await call.read()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call.read()
            code = await call.code()
            again = b"".join([payload(r) async for r in method(request, timeout=RPC_TIMEOUT)])
            return first, code, again

        first, code, again = aio.run(run())
    assert code == grpc.StatusCode.CANCELLED
    # FilesService.Download starts with the File message; the others with data.
    assert payload(first) == b"" or data.startswith(payload(first))
    line = first_line(server, mark, path)
    assert line["code"] == "CANCELLED", line
    # The same download, whole, right after.
    assert again == data
