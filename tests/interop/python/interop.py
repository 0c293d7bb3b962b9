"""What the interop tests share: paths, the deadline every call carries, the
built-in RouteGuide features, a way to check a refusal, and the two client
APIs behind one face."""

import asyncio
import contextlib
import json
import math
import re
from pathlib import Path

import grpc
import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
GEN_DIR = HERE / "gen"
BUILTIN_FEATURES_JSON = REPO_ROOT / "crates/dataport-core/src/route/builtin_features.json"

# Every call carries a deadline, so a server that never answers fails one
# test instead of hanging the suite.
RPC_TIMEOUT = 10.0


EARTH_RADIUS_M = 6_371_000.0
COORD_FACTOR = 1e7


def load_features():
    """The landmarks the server serves when it is given no features file, as
    (name, latitude, longitude) tuples in file order."""
    with BUILTIN_FEATURES_JSON.open(encoding="utf-8") as f:
        raw = json.load(f)
    return [(r["name"], r["location"]["latitude"], r["location"]["longitude"]) for r in raw]


def haversine_m(a, b):
    """Great-circle distance in metres between two (latitude, longitude)
    pairs in degrees x 1e7."""
    lat1, lat2 = math.radians(a[0] / COORD_FACTOR), math.radians(b[0] / COORD_FACTOR)
    dlat = lat2 - lat1
    dlon = math.radians(b[1] / COORD_FACTOR - a[1] / COORD_FACTOR)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.atan2(math.sqrt(h), math.sqrt(1 - h))


@contextlib.contextmanager
def expect_status(code, *words):
    """Asserts that the block raises grpc.RpcError (sync or aio) with `code`
    and details that contain each of `words` as a whole word."""
    with pytest.raises(grpc.RpcError) as info:
        yield info
    got = info.value.code()
    details = info.value.details() or ""
    assert got == code, f"expected {code.name}, got {got.name}: {details!r}"
    for word in words:
        assert re.search(rf"\b{re.escape(word)}\b", details), (
            f"{code.name} details should mention {word!r}: {details!r}"
        )


# One test body, both client APIs. A stub from `api.stub(SomeStub)` completes
# each call before it returns: a unary response is returned, a response
# stream is returned as the list of its messages, and a request stream is
# taken from any iterable. Through SyncApi that is the generated stub on a
# grpc.Channel; through AioApi it is the same generated stub on a
# grpc.aio.Channel, awaited on an event loop of its own (request iterables
# become async generators). A refusal raises grpc.RpcError either way
# (grpc.aio.AioRpcError is one), so `expect_status` works for both. Calls
# carry RPC_TIMEOUT unless given a timeout.

_STREAMING_REQUEST = (grpc.StreamUnaryMultiCallable, grpc.StreamStreamMultiCallable)
_STREAMING_RESPONSE = (grpc.UnaryStreamMultiCallable, grpc.StreamStreamMultiCallable)
_AIO_STREAMING_REQUEST = (grpc.aio.StreamUnaryMultiCallable, grpc.aio.StreamStreamMultiCallable)
_AIO_STREAMING_RESPONSE = (grpc.aio.UnaryStreamMultiCallable, grpc.aio.StreamStreamMultiCallable)


class SyncApi:
    name = "sync"

    def __init__(self, channel):
        self.channel = channel

    def stub(self, stub_class):
        return _Stub(stub_class(self.channel), self._call)

    @staticmethod
    def _call(multicallable, request, kwargs):
        kwargs.setdefault("timeout", RPC_TIMEOUT)
        if isinstance(multicallable, _STREAMING_REQUEST):
            request = iter(request)
        response = multicallable(request, **kwargs)
        return list(response) if isinstance(multicallable, _STREAMING_RESPONSE) else response


class AioApi:
    name = "aio"

    def __init__(self, addr):
        self.loop = asyncio.new_event_loop()
        self.channel = self.run(self._open(addr))

    @staticmethod
    async def _open(addr):
        channel = grpc.aio.insecure_channel(addr)
        await asyncio.wait_for(channel.channel_ready(), RPC_TIMEOUT)
        return channel

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def stub(self, stub_class):
        return _Stub(stub_class(self.channel), self._call)

    def _call(self, multicallable, request, kwargs):
        kwargs.setdefault("timeout", RPC_TIMEOUT)

        async def call():
            message_or_messages = _async_iter(request) if isinstance(multicallable, _AIO_STREAMING_REQUEST) else request
            response = multicallable(message_or_messages, **kwargs)
            if isinstance(multicallable, _AIO_STREAMING_RESPONSE):
                return [message async for message in response]
            return await response

        return self.run(call())

    def close(self):
        self.run(self.channel.close())
        self.loop.close()


async def _async_iter(messages):
    for message in messages:
        yield message
        await asyncio.sleep(0)  # as a real producer would, between messages


class _Stub:
    def __init__(self, stub, call):
        self._stub = stub
        self._do = call

    def __getattr__(self, method):
        multicallable = getattr(self._stub, method)
        return lambda request, **kwargs: self._do(multicallable, request, kwargs)
