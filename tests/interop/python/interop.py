"""What the interop tests share: paths, the deadline every call carries, the
built-in RouteGuide features and a way to check a refusal."""

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
