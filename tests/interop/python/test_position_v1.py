"""dataport.position.v1.PositionService: Publish, Get and Watch, and its
"default" entity, which is the seed posXYZ service's one position."""

import asyncio
import concurrent.futures
import math
import time

import grpc
import position_pb2 as compat
import position_pb2_grpc as compat_grpc
import pytest
from dataport.position.v1 import position_pb2 as v1
from dataport.position.v1 import position_pb2_grpc as v1_grpc

from interop import RPC_TIMEOUT, expect_status
from positions import get, new_entity, publish, vec, watching


@pytest.fixture
def positions(channel):
    return v1_grpc.PositionServiceStub(channel)


@pytest.fixture
def pos_xyz(channel):
    return compat_grpc.PositionServiceStub(channel)


# Publish and Get


def test_publish_creates_the_entity_at_revision_one_and_get_returns_it(positions):
    e = new_entity("create")
    published = publish(positions, e, 1.25, -2.5, 1e-9)
    assert published.entity == e
    assert published.position == vec(1.25, -2.5, 1e-9)
    assert published.revision == 1
    assert get(positions, e) == published


def test_revision_increases_by_one_per_publish(positions):
    e = new_entity("revisions")
    revisions = [publish(positions, e, float(i), 0.0, 0.0).revision for i in range(5)]
    assert revisions == [1, 2, 3, 4, 5]
    latest = get(positions, e)
    assert (latest.revision, latest.position) == (5, vec(4.0, 0.0, 0.0))


def test_update_time_is_when_the_server_accepted_the_position(positions):
    before = time.time()
    published = publish(positions, new_entity("clock"), 0.0, 0.0, 0.0)
    after = time.time()
    assert published.HasField("update_time")
    accepted = published.update_time.ToNanoseconds() / 1e9
    # Same machine, same clock; a second of slack for rounding.
    assert before - 1 <= accepted <= after + 1


def test_get_of_an_unknown_entity_is_not_found(positions):
    with expect_status(grpc.StatusCode.NOT_FOUND):
        get(positions, new_entity("never-published"))


def test_get_of_an_empty_entity_is_invalid_argument(positions):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "entity"):
        get(positions, "")


@pytest.mark.parametrize("entity", ["", "a" * 129, "line\nbreak"], ids=["empty", "129-bytes", "control-char"])
def test_publish_to_an_ill_formed_entity_is_invalid_argument(positions, entity):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "entity"):
        publish(positions, entity, 0.0, 0.0, 0.0)


def test_publish_to_a_128_byte_entity_is_accepted(positions):
    e = new_entity("long").ljust(128, "x")
    assert publish(positions, e, 0.0, 0.0, 0.0).entity == e


def test_publish_without_a_position_is_invalid_argument(positions):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "position"):
        positions.Publish(v1.PublishRequest(entity=new_entity("no-position")), timeout=RPC_TIMEOUT)


@pytest.mark.parametrize(
    "coords,axis",
    [((math.nan, 0.0, 0.0), "x"), ((0.0, math.inf, 0.0), "y"), ((0.0, 0.0, -math.inf), "z")],
    ids=["nan-x", "inf-y", "minus-inf-z"],
)
def test_publish_of_a_non_finite_coordinate_is_invalid_argument_naming_the_axis(positions, coords, axis):
    e = new_entity("finite")
    publish(positions, e, 1.0, 2.0, 3.0)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, axis):
        publish(positions, e, *coords)
    kept = get(positions, e)
    assert (kept.revision, kept.position) == (1, vec(1.0, 2.0, 3.0))


# "default" is the seed service's position


def test_default_exists_at_revision_zero_before_any_publish(fresh_channel):
    initial = get(v1_grpc.PositionServiceStub(fresh_channel), "default")
    assert initial.entity == "default"
    assert (initial.revision, initial.position) == (0, vec(1.0, 0.0, 0.0))


def test_position_pub_publishes_to_default(positions, pos_xyz):
    before = get(positions, "default").revision
    # Values a float32 holds exactly, since posXYZ.Pos is float.
    ack = pos_xyz.PositionPub(compat.Position(position=compat.Pos(x=0.5, y=-1.75, z=3.0), msg="seed"), timeout=RPC_TIMEOUT)
    assert ack.status == 0
    after = get(positions, "default")
    assert (after.revision, after.position) == (before + 1, vec(0.5, -1.75, 3.0))


def test_publish_to_default_is_what_position_req_answers(positions, pos_xyz):
    publish(positions, "default", -4.5, 0.25, 8.0)
    reply = pos_xyz.PositionReq(compat.Msg(), timeout=RPC_TIMEOUT)
    assert reply.status == 0
    assert reply.position == compat.Pos(x=-4.5, y=0.25, z=8.0)


# Watch


def test_watch_streams_each_new_position_of_the_watched_entity(positions):
    e, other = new_entity("watched"), new_entity("unwatched")
    publish(positions, e, 9.0, 9.0, 9.0)  # before the call: not replayed
    with watching(positions, [e]) as call:
        for i in range(1, 4):
            publish(positions, other, float(i), 0.0, 0.0)
            published = publish(positions, e, float(i), 0.0, 0.0)
            received = next(call).position
            assert received == published
            assert received.revision == i + 1


def test_watch_without_entities_streams_every_entity_even_new_ones(positions):
    first, second = new_entity("all-a"), new_entity("all-b")
    with watching(positions, []) as call:
        for e in (first, second, first):
            published = publish(positions, e, 1.0, 2.0, 3.0)
            assert next(call).position == published


def test_watch_of_several_entities_streams_only_those(positions):
    a, b, c = new_entity("some-a"), new_entity("some-b"), new_entity("some-c")
    with watching(positions, [a, c]) as call:
        seen = []
        for e in (a, b, c):
            published = publish(positions, e, 0.0, 0.0, 0.0)
            if e != b:
                seen.append(published)
        assert [next(call).position for _ in seen] == seen


def test_watch_of_a_burst_ends_on_the_newest_position_with_rising_revisions(positions):
    # Published from another thread while this one reads; a slow reader may
    # skip positions, but never reorders them and always gets the last.
    e, count = new_entity("burst"), 50
    with watching(positions, [e]) as call, concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(lambda: [publish(positions, e, float(i), 0.0, 0.0) for i in range(count)])
        revisions = []
        for response in call:
            revisions.append(response.position.revision)
            if response.position.revision == count:
                assert response.position == done.result(timeout=RPC_TIMEOUT)[-1]
                break
    assert revisions == sorted(set(revisions))
    assert revisions[-1] == count


def test_watch_over_grpc_aio(server):
    e = new_entity("aio")

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = v1_grpc.PositionServiceStub(ch)
            call = stub.Watch(v1.WatchRequest(entities=[e]), timeout=RPC_TIMEOUT)
            try:
                await call.initial_metadata()
                pairs = []
                for i in range(3):
                    published = await stub.Publish(v1.PublishRequest(entity=e, position=vec(0.0, float(i), 0.0)), timeout=RPC_TIMEOUT)
                    received = await call.read()
                    pairs.append((published.position, received.position))
                return pairs
            finally:
                call.cancel()

    for published, received in asyncio.run(main()):
        assert received == published
