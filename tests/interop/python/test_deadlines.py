"""Deadlines and cancellation on a stream that would otherwise never end."""

import asyncio
import time

import grpc
import pytest
from dataport.position.v1 import position_pb2 as v1
from dataport.position.v1 import position_pb2_grpc as v1_grpc

from interop import RPC_TIMEOUT, expect_status
from positions import new_entity, publish, watching


@pytest.fixture
def positions(channel):
    return v1_grpc.PositionServiceStub(channel)


def test_watch_with_a_half_second_deadline_ends_deadline_exceeded(positions):
    start = time.monotonic()
    call = positions.Watch(v1.WatchRequest(entities=[new_entity("deadline")]), timeout=0.5)
    with expect_status(grpc.StatusCode.DEADLINE_EXCEEDED):
        list(call)
    assert 0.4 <= time.monotonic() - start < 5


def test_cancelled_watch_ends_cancelled_and_the_entity_can_still_be_watched(positions):
    e = new_entity("cancel")
    with watching(positions, [e]) as call:
        call.cancel()
        with expect_status(grpc.StatusCode.CANCELLED):
            next(call)
        assert call.cancelled()

    with watching(positions, [e]) as again:
        published = publish(positions, e, 1.0, 1.0, 1.0)
        assert next(again).position == published


def test_cancelled_watch_over_grpc_aio_ends_cancelled(server):
    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = v1_grpc.PositionServiceStub(ch)
            call = stub.Watch(v1.WatchRequest(entities=[new_entity("aio-cancel")]), timeout=RPC_TIMEOUT)
            await call.initial_metadata()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call.read()
            return await call.code()

    assert asyncio.run(main()) == grpc.StatusCode.CANCELLED
