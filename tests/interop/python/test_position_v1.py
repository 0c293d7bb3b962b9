"""dataport.position.v1.PositionService: Publish, Get and Watch, and its
"default" entity, which is the seed posXYZ service's one position. Publish
and Get through grpcio's synchronous API and through grpc.aio."""

import asyncio
import concurrent.futures
import math
import signal
import time

import grpc
import position_pb2 as compat
import position_pb2_grpc as compat_grpc
import pytest
from dataport.position.v1 import position_pb2 as v1
from dataport.position.v1 import position_pb2_grpc as v1_grpc

from conftest import open_channel
from interop import RPC_TIMEOUT, expect_status
from positions import get, new_entity, publish, vec, watching


@pytest.fixture
def positions(channel):
    return v1_grpc.PositionServiceStub(channel)


@pytest.fixture
def any_positions(api):
    """The stub through grpcio's synchronous API or through grpc.aio."""
    return api.stub(v1_grpc.PositionServiceStub)


@pytest.fixture
def pos_xyz(channel):
    return compat_grpc.PositionServiceStub(channel)


# Publish and Get


def test_publish_creates_the_entity_at_revision_one_and_get_returns_it(any_positions):
    e = new_entity("create")
    published = publish(any_positions, e, 1.25, -2.5, 1e-9)
    assert published.entity == e
    assert published.position == vec(1.25, -2.5, 1e-9)
    assert published.revision == 1
    assert get(any_positions, e) == published


def test_revision_increases_by_one_per_publish(any_positions):
    e = new_entity("revisions")
    revisions = [publish(any_positions, e, float(i), 0.0, 0.0).revision for i in range(5)]
    assert revisions == [1, 2, 3, 4, 5]
    latest = get(any_positions, e)
    assert (latest.revision, latest.position) == (5, vec(4.0, 0.0, 0.0))


def test_update_time_is_when_the_server_accepted_the_position(any_positions):
    before = time.time()
    published = publish(any_positions, new_entity("clock"), 0.0, 0.0, 0.0)
    after = time.time()
    assert published.HasField("update_time")
    accepted = published.update_time.ToNanoseconds() / 1e9
    # Same machine, same clock; a second of slack for rounding.
    assert before - 1 <= accepted <= after + 1


def test_get_of_an_unknown_entity_is_not_found(any_positions):
    with expect_status(grpc.StatusCode.NOT_FOUND):
        get(any_positions, new_entity("never-published"))


def test_get_of_an_empty_entity_is_invalid_argument(any_positions):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "entity"):
        get(any_positions, "")


@pytest.mark.parametrize("entity", ["", "a" * 129, "line\nbreak"], ids=["empty", "129-bytes", "control-char"])
def test_publish_to_an_ill_formed_entity_is_invalid_argument(any_positions, entity):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "entity"):
        publish(any_positions, entity, 0.0, 0.0, 0.0)


def test_publish_to_a_128_byte_entity_is_accepted(any_positions):
    e = new_entity("long").ljust(128, "x")
    assert publish(any_positions, e, 0.0, 0.0, 0.0).entity == e


def test_publish_without_a_position_is_invalid_argument(any_positions):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "position"):
        any_positions.Publish(v1.PublishRequest(entity=new_entity("no-position")), timeout=RPC_TIMEOUT)


@pytest.mark.parametrize(
    "coords,axis",
    [((math.nan, 0.0, 0.0), "x"), ((0.0, math.inf, 0.0), "y"), ((0.0, 0.0, -math.inf), "z")],
    ids=["nan-x", "inf-y", "minus-inf-z"],
)
def test_publish_of_a_non_finite_coordinate_is_invalid_argument_naming_the_axis(any_positions, coords, axis):
    e = new_entity("finite")
    publish(any_positions, e, 1.0, 2.0, 3.0)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, axis):
        publish(any_positions, e, *coords)
    kept = get(any_positions, e)
    assert (kept.revision, kept.position) == (1, vec(1.0, 2.0, 3.0))


# "default" is the seed service's position


def test_default_exists_at_revision_zero_before_any_publish(fresh_channel):
    initial = get(v1_grpc.PositionServiceStub(fresh_channel), "default")
    assert initial.entity == "default"
    assert (initial.revision, initial.position) == (0, vec(1.0, 0.0, 0.0))


def test_publish_past_the_entity_limit_is_resource_exhausted_and_keeps_the_known_ones(start_server):
    # "default" is one of the 3.
    srv = start_server("--max-entities", "3")
    with open_channel(srv.addr) as ch:
        stub = v1_grpc.PositionServiceStub(ch)
        publish(stub, "first", 1.0, 0.0, 0.0)
        publish(stub, "second", 2.0, 0.0, 0.0)
        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "3", "entities"):
            publish(stub, "third", 3.0, 0.0, 0.0)
        # Entities already known still take new positions.
        assert publish(stub, "first", 1.5, 0.0, 0.0).revision == 2
        with expect_status(grpc.StatusCode.NOT_FOUND, "third"):
            get(stub, "third")


def test_publish_past_the_entity_limit_names_the_entity_refused(start_server):
    srv = start_server("--max-entities", "1")
    with open_channel(srv.addr) as ch:
        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "entity", "refused"):
            publish(v1_grpc.PositionServiceStub(ch), "refused", 0.0, 0.0, 0.0)


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


@pytest.mark.parametrize(
    "entities,words",
    [([""], ["entity", "empty"]), (["ok", "a" * 129], ["129", "128"]), (["tab\there"], ["control"])],
    ids=["empty", "129-bytes", "control-char"],
)
def test_watch_of_an_ill_formed_entity_is_invalid_argument_naming_it(positions, entities, words):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, *words):
        list(positions.Watch(v1.WatchRequest(entities=entities), timeout=RPC_TIMEOUT))


def test_watch_ends_unavailable_when_the_server_drains(fresh_channel, fresh_server):
    stub = v1_grpc.PositionServiceStub(fresh_channel)
    with watching(stub, ["default"]) as call:
        published = publish(stub, "default", 0.0, 1.0, 0.0)
        assert next(call).position == published
        fresh_server.process.send_signal(signal.SIGTERM)
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            next(call)
    # fresh_server's teardown checks that the server then exits 0 in time.


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
