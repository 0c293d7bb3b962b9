"""routeguide.RouteGuide over the built-in landmarks, called as the seed's
route_guide_client.py calls it."""

import asyncio
import contextlib
import queue

import grpc
import pytest
import route_guide_pb2 as rg
import route_guide_pb2_grpc

from interop import RPC_TIMEOUT, expect_status, haversine_m, load_features

FEATURES = load_features()
BY_NAME = {name: (lat, lon) for name, lat, lon in FEATURES}

MAX_LAT = 900_000_000
MAX_LON = 1_800_000_000


def point(lat, lon):
    return rg.Point(latitude=lat, longitude=lon)


def at(name):
    return point(*BY_NAME[name])


def as_tuples(features):
    return sorted((f.name, f.location.latitude, f.location.longitude) for f in features)


def inside(lat_bounds, lon_bounds):
    """The built-in features in the closed box, computed here from the JSON."""
    (lat_lo, lat_hi), (lon_lo, lon_hi) = sorted(lat_bounds), sorted(lon_bounds)
    return sorted(f for f in FEATURES if lat_lo <= f[1] <= lat_hi and lon_lo <= f[2] <= lon_hi)


@pytest.fixture
def route_guide(channel):
    return route_guide_pb2_grpc.RouteGuideStub(channel)


@pytest.fixture
def any_route_guide(api):
    """The stub through grpcio's synchronous API or through grpc.aio."""
    return api.stub(route_guide_pb2_grpc.RouteGuideStub)


def test_builtin_features_are_the_24_landmarks():
    # Guards the fixtures below: they assume the file the server compiles in.
    assert len(FEATURES) == 24
    assert len(set((lat, lon) for _, lat, lon in FEATURES)) == 24


# GetFeature


@pytest.mark.parametrize("name,lat,lon", FEATURES, ids=[f[0] for f in FEATURES])
def test_get_feature_at_a_landmark_returns_it(any_route_guide, name, lat, lon):
    feature = any_route_guide.GetFeature(point(lat, lon), timeout=RPC_TIMEOUT)
    assert feature == rg.Feature(name=name, location=point(lat, lon))


@pytest.mark.parametrize(
    "lat,lon",
    [
        (1, 1),
        (123_456_789, -98_765_432),
        # One unit (1e-7 degree) off the Eiffel Tower: only exact matches count.
        (BY_NAME["Eiffel Tower, Paris, France"][0] + 1, BY_NAME["Eiffel Tower, Paris, France"][1]),
        # The edges of the Earth are still on it.
        (MAX_LAT, MAX_LON),
        (-MAX_LAT, -MAX_LON),
    ],
)
def test_get_feature_elsewhere_returns_an_unnamed_feature_at_the_point(any_route_guide, lat, lon):
    feature = any_route_guide.GetFeature(point(lat, lon), timeout=RPC_TIMEOUT)
    assert feature.HasField("location")
    assert feature == rg.Feature(name="", location=point(lat, lon))


@pytest.mark.parametrize(
    "lat,lon,field",
    [
        (MAX_LAT + 1, 0, "latitude"),
        (-MAX_LAT - 1, 0, "latitude"),
        (2**31 - 1, 0, "latitude"),
        (0, MAX_LON + 1, "longitude"),
        (0, -MAX_LON - 1, "longitude"),
        (0, -(2**31), "longitude"),
    ],
)
def test_get_feature_off_the_earth_is_invalid_argument_naming_the_coordinate(any_route_guide, lat, lon, field):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, field):
        any_route_guide.GetFeature(point(lat, lon), timeout=RPC_TIMEOUT)


# ListFeatures

# A box whose edges run exactly through landmarks: Acropolis sits on its
# south-east corner, Tower Bridge on its west edge, Brandenburg Gate on its
# north edge. Closed bounds keep all three.
SOUTH = BY_NAME["Acropolis, Athens, Greece"][0]
NORTH = BY_NAME["Brandenburg Gate, Berlin, Germany"][0]
WEST = BY_NAME["Tower Bridge, London, United Kingdom"][1]
EAST = BY_NAME["Acropolis, Athens, Greece"][1]
EUROPE = inside((SOUTH, NORTH), (WEST, EAST))


def test_europe_box_has_landmarks_on_its_edges():
    names = {f[0] for f in EUROPE}
    assert {"Acropolis, Athens, Greece", "Tower Bridge, London, United Kingdom", "Brandenburg Gate, Berlin, Germany"} <= names
    assert "Kremlin, Moscow, Russia" not in names
    assert len(EUROPE) < len(FEATURES)


@pytest.mark.parametrize(
    "lo,hi",
    [
        ((SOUTH, WEST), (NORTH, EAST)),
        ((NORTH, EAST), (SOUTH, WEST)),
        ((NORTH, WEST), (SOUTH, EAST)),
        ((SOUTH, EAST), (NORTH, WEST)),
    ],
    ids=["sw-ne", "ne-sw", "nw-se", "se-nw"],
)
def test_list_features_streams_the_box_inclusively_whichever_corners_are_given(any_route_guide, lo, hi):
    features = any_route_guide.ListFeatures(rg.Rectangle(lo=point(*lo), hi=point(*hi)), timeout=RPC_TIMEOUT)
    assert as_tuples(features) == EUROPE


def test_list_features_excludes_landmarks_just_outside_the_box(any_route_guide):
    box = rg.Rectangle(lo=point(SOUTH + 1, WEST + 1), hi=point(NORTH - 1, EAST - 1))
    expected = inside((SOUTH + 1, NORTH - 1), (WEST + 1, EAST - 1))
    assert len(expected) == len(EUROPE) - 3
    assert as_tuples(any_route_guide.ListFeatures(box, timeout=RPC_TIMEOUT)) == expected


def test_list_features_in_a_box_that_is_one_landmark_returns_that_landmark(any_route_guide):
    eiffel = at("Eiffel Tower, Paris, France")
    features = list(any_route_guide.ListFeatures(rg.Rectangle(lo=eiffel, hi=eiffel), timeout=RPC_TIMEOUT))
    assert features == [rg.Feature(name="Eiffel Tower, Paris, France", location=eiffel)]


def test_list_features_over_the_whole_earth_returns_every_landmark(any_route_guide):
    world = rg.Rectangle(lo=point(-MAX_LAT, -MAX_LON), hi=point(MAX_LAT, MAX_LON))
    assert as_tuples(any_route_guide.ListFeatures(world, timeout=RPC_TIMEOUT)) == sorted(FEATURES)


def test_list_features_in_an_empty_box_ends_with_no_feature(any_route_guide):
    pacific = rg.Rectangle(lo=point(-100_000_000, -1_600_000_000), hi=point(100_000_000, -1_500_000_000))
    assert list(any_route_guide.ListFeatures(pacific, timeout=RPC_TIMEOUT)) == []


@pytest.mark.parametrize(
    "rect,field",
    [
        (rg.Rectangle(hi=point(1, 1)), "lo"),
        (rg.Rectangle(lo=point(1, 1)), "hi"),
    ],
    ids=["no-lo", "no-hi"],
)
def test_list_features_without_a_corner_is_invalid_argument_naming_it(any_route_guide, rect, field):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, field):
        list(any_route_guide.ListFeatures(rect, timeout=RPC_TIMEOUT))


# RecordRoute


def test_record_route_counts_points_features_and_haversine_distance(any_route_guide):
    route = [
        BY_NAME["Eiffel Tower, Paris, France"],
        BY_NAME["Brandenburg Gate, Berlin, Germany"],
        (480_000_000, 110_000_000),  # somewhere in Bavaria: no landmark
        BY_NAME["Colosseum, Rome, Italy"],
        BY_NAME["Colosseum, Rome, Italy"],  # a second visit counts again
        BY_NAME["Tower Bridge, London, United Kingdom"],
    ]
    # Summed as floats, truncated once.
    distance = sum(haversine_m(a, b) for a, b in zip(route, route[1:]))
    summary = any_route_guide.RecordRoute(iter(point(*p) for p in route), timeout=RPC_TIMEOUT)
    assert summary == rg.RouteSummary(point_count=6, feature_count=5, distance=int(distance), elapsed_time=0)


def test_record_route_of_one_point_has_no_distance(any_route_guide):
    summary = any_route_guide.RecordRoute(iter([point(1, 1)]), timeout=RPC_TIMEOUT)
    assert summary == rg.RouteSummary(point_count=1, feature_count=0, distance=0, elapsed_time=0)


def test_record_route_of_no_points_is_all_zeros(any_route_guide):
    summary = any_route_guide.RecordRoute(iter([]), timeout=RPC_TIMEOUT)
    assert summary == rg.RouteSummary(point_count=0, feature_count=0, distance=0, elapsed_time=0)


@pytest.mark.parametrize(
    "bad,field",
    [(point(MAX_LAT + 1, 0), "latitude"), (point(0, -MAX_LON - 1), "longitude")],
    ids=["latitude", "longitude"],
)
def test_record_route_through_a_point_off_the_earth_is_invalid_argument_naming_it(any_route_guide, bad, field):
    # The bad point comes last: grpc.aio reports a refusal that reaches it
    # while it is still writing as its own INTERNAL "Internal error from Core".
    route = [P1, P2, bad]
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "point 2", field) as info:
        any_route_guide.RecordRoute(iter(route), timeout=RPC_TIMEOUT)
    assert str(bad.latitude if field == "latitude" else bad.longitude) in info.value.details()


# RouteChat

P1 = point(*BY_NAME["Eiffel Tower, Paris, France"])
P2 = point(10, 20)


def note(location, message):
    return rg.RouteNote(location=location, message=message)


class Chat:
    """A RouteChat call fed one note at a time, so every answer can be tied
    to the note that caused it."""

    def __init__(self, route_guide):
        self._outgoing = queue.Queue()
        self.responses = route_guide.RouteChat(iter(self._outgoing.get, None), timeout=RPC_TIMEOUT)

    def send(self, n):
        self._outgoing.put(n)

    def read(self, count):
        return [(r.location.latitude, r.location.longitude, r.message) for r in (next(self.responses) for _ in range(count))]

    def close(self):
        """Ends our side; answers the server sent afterwards, if any."""
        self._outgoing.put(None)
        return list(self.responses)

    def abandon(self):
        self._outgoing.put(None)
        self.responses.cancel()


@contextlib.contextmanager
def open_chat(route_guide):
    c = Chat(route_guide)
    try:
        yield c
    finally:
        c.abandon()


@pytest.fixture
def chat(route_guide):
    with open_chat(route_guide) as c:
        yield c


def test_route_chat_answers_each_note_with_earlier_notes_at_its_location_in_order(chat):
    p1 = (P1.latitude, P1.longitude)
    chat.send(note(P1, "first"))
    chat.send(note(P2, "elsewhere"))
    chat.send(note(P1, "second"))
    assert chat.read(1) == [(*p1, "first")]
    chat.send(note(P1, "third"))
    assert chat.read(2) == [(*p1, "first"), (*p1, "second")]
    assert chat.close() == []


def test_route_chat_notes_belong_to_one_call(route_guide):
    with open_chat(route_guide) as first:
        first.send(note(P1, "from the first call"))
        first.send(note(P1, "again"))
        assert first.read(1) == [(P1.latitude, P1.longitude, "from the first call")]
        assert first.close() == []

    with open_chat(route_guide) as second:
        second.send(note(P1, "a new call"))
        assert second.close() == []


def test_route_chat_note_without_location_is_invalid_argument(chat):
    chat.send(rg.RouteNote(message="nowhere"))
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "location"):
        chat.read(1)


def test_route_chat_past_16_mib_of_notes_is_resource_exhausted_naming_the_limit(chat):
    # Each note at a place of its own, so nothing is echoed; the fifth takes
    # the call's notes past 16 MiB.
    note_bytes = 3_500_000
    for i in range(5):
        chat.send(note(point(i, i), "n" * note_bytes))
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(16 * 1024 * 1024)):
        chat.read(1)


# grpc.aio: the same contract from an asyncio client.


def test_list_features_over_grpc_aio(server):
    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = route_guide_pb2_grpc.RouteGuideStub(ch)
            world = rg.Rectangle(lo=point(MAX_LAT, MAX_LON), hi=point(-MAX_LAT, -MAX_LON))
            return [f async for f in stub.ListFeatures(world, timeout=RPC_TIMEOUT)]

    assert as_tuples(asyncio.run(main())) == sorted(FEATURES)


def test_route_chat_over_grpc_aio(server):
    notes = [note(P1, "a"), note(P2, "b"), note(P1, "c"), note(P1, "d")]

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = route_guide_pb2_grpc.RouteGuideStub(ch)

            async def outgoing():
                for n in notes:
                    yield n

            call = stub.RouteChat(outgoing(), timeout=RPC_TIMEOUT)
            return [r.message async for r in call]

    assert asyncio.run(main()) == ["a", "a", "c"]
