"""pb.Outliers.Detect, called as the Go collector and the seed client call it,
and dataport.outliers.v1.OutliersService (Detect and DetectStream), against
numpy computations written here.

The seed Python service answered, for a request:

    data = np.fromiter((m.value for m in request.metrics), dtype=np.float64)
    indices = np.where(np.abs(data - data.mean()) > 2 * data.std())[0]

Dataport groups the metrics into series by name and judges each series with
exactly that rule, to numpy's last bit, answering positions in the request.
The v1 rules are checked against the definitions in
proto/dataport/outliers/v1/outliers.proto, computed with numpy's mean, std,
median and (linear) percentile."""

import asyncio
import collections
import contextlib
import math
import queue
import signal
import time
import warnings
import zlib
from typing import NamedTuple

import grpc
import numpy as np
import outliers_pb2 as seed
import outliers_pb2_grpc as seed_grpc
import pytest
from dataport.outliers.v1 import outliers_pb2 as v1
from dataport.outliers.v1 import outliers_pb2_grpc as v1_grpc
from google.protobuf import timestamp_pb2

from conftest import DataportServer, open_channel
from interop import RPC_TIMEOUT, expect_status

DEFAULT_MAX_DETECT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_STREAM_WINDOW = 10_000
DEFAULT_MAX_STREAM_SERIES = 10_000
DEFAULT_WINDOW = 100
# The limits of the module's own server (`limited`).
SMALL_DETECT_BYTES = 64 * 1024
SMALL_STREAM_SERIES = 3
SMALL_STREAM_WINDOW = 50

# The proto's constants and the defaults a parameter left at 0 takes.
MAD_FACTOR = 0.6745
MEAN_AD_FACTOR = 1.253314
DEFAULTS = {"z_score": 2.0, "modified_z_score": 3.5, "iqr": 1.5}
PARAMETER = {"z_score": "threshold", "modified_z_score": "threshold", "iqr": "k"}


@pytest.fixture
def seed_stub(channel):
    return seed_grpc.OutliersStub(channel)


@pytest.fixture
def stub(channel):
    return v1_grpc.OutliersServiceStub(channel)


@pytest.fixture(scope="module")
def limited(dataport_bin, tmp_path_factory):
    """A server of the module's own with small limits, set through the
    DATAPORT_* variables (which the flags of the same names override; the
    session server is started with neither)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAPORT_MAX_DETECT_BYTES", str(SMALL_DETECT_BYTES))
        mp.setenv("DATAPORT_MAX_STREAM_SERIES", str(SMALL_STREAM_SERIES))
        mp.setenv("DATAPORT_MAX_STREAM_WINDOW", str(SMALL_STREAM_WINDOW))
        srv = DataportServer(dataport_bin, tmp_path_factory.mktemp("outliers-data")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def limited_channel(limited):
    with open_channel(limited.addr) as ch:
        yield ch


# The references


@contextlib.contextmanager
def quiet():
    """numpy's warnings for an empty series or a 0/0 say what the seed's
    answer already shows (nothing flagged)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def seed_rule(values):
    """The seed service, verbatim: positions of the outliers of one series."""
    data = np.fromiter(values, dtype=np.float64)
    with quiet():
        return np.where(np.abs(data - data.mean()) > 2 * data.std())[0]


def per_series(names, values, rule=seed_rule):
    """`rule` applied to each name's values on their own, answering positions
    in the whole request, ascending."""
    positions = collections.defaultdict(list)
    for i, name in enumerate(names):
        positions[name].append(i)
    values = np.asarray(values, dtype=np.float64)
    out = []
    for pos in positions.values():
        pos = np.array(pos)
        out.extend(pos[rule(values[pos])].tolist())
    return sorted(out)


class M(NamedTuple):
    """A v1 method as a test asks for it: the parameter as sent (0 means
    the default)."""

    kind: str = "z_score"
    param: float = 0.0
    sample: bool = False

    @property
    def value(self):
        return self.param or DEFAULTS[self.kind]

    def proto(self):
        if self.kind == "z_score":
            return v1.Method(z_score=v1.ZScore(threshold=self.param, sample=self.sample))
        if self.kind == "modified_z_score":
            return v1.Method(modified_z_score=v1.ModifiedZScore(threshold=self.param))
        return v1.Method(iqr=v1.Iqr(k=self.param))

    def __str__(self):
        extra = "-sample" if self.sample else ""
        return f"{self.kind}{extra}-{self.param:g}"


def stats_of(x, m):
    """What a series is judged against, by the proto's definitions."""
    x = np.asarray(x, dtype=np.float64)
    with quiet():
        if m.kind == "z_score":
            ddof = 1 if m.sample else 0
            # numpy's std of a single point with ddof 1 is 0/0; the server
            # answers 0 (and so scores 0), which flags nothing either way.
            sigma = x.std(ddof=ddof) if len(x) > ddof else 0.0
            return {"mean": x.mean(), "sigma": sigma}
        if m.kind == "modified_z_score":
            median = np.median(x)
            deviations = np.abs(x - median)
            return {"median": median, "mad": np.median(deviations), "mean_absolute_deviation": deviations.mean()}
        q1, q3 = np.percentile(x, [25, 75])
        iqr = q3 - q1
        return {"q1": q1, "q3": q3, "lower_fence": q1 - m.value * iqr, "upper_fence": q3 + m.value * iqr}


def score_against(stats, m, points):
    """(scores, outlier flags) of `points` against `stats`."""
    x = np.asarray(points, dtype=np.float64)
    with quiet():
        if m.kind == "z_score":
            d = x - stats["mean"]
            # +-inf off the mean when sigma is 0, 0 on it.
            scores = np.where(d == 0, 0.0, d / stats["sigma"]) if stats["sigma"] == 0 else d / stats["sigma"]
            # The seed's comparison, bit for bit, also when sigma is 0.
            return scores, np.abs(d) > m.value * stats["sigma"]
        if m.kind == "modified_z_score":
            median, mad, mean_ad = stats["median"], stats["mad"], stats["mean_absolute_deviation"]
            if mad != 0:
                scores = MAD_FACTOR * (x - median) / mad
            elif mean_ad != 0:
                scores = (x - median) / (MEAN_AD_FACTOR * mean_ad)
            else:
                scores = np.zeros_like(x)
            return scores, np.abs(scores) > m.value
        q1, q3 = stats["q1"], stats["q3"]
        iqr = q3 - q1
        scores = np.where(x > q3, (x - q3) / iqr, np.where(x < q1, (x - q1) / iqr, 0.0))
        return scores, (x < stats["lower_fence"]) | (x > stats["upper_fence"])


def judge(x, m):
    stats = stats_of(x, m)
    scores, flags = score_against(stats, m, x)
    return stats, scores, flags


class Found(NamedTuple):
    index: int
    name: str
    value: float
    window_points: int
    warm_up: bool
    score: float


ROUNDING_MARGIN = 1e-9


def min_points(m):
    """The fewest points of a series with which the method can flag anything,
    by the proto's comments: the smallest n whose largest possible |score|
    reaches the threshold, where within 1e-9 (relative) counts as reaching
    it, since rounding tips a point at the bound over it."""
    t = m.value * (1 - ROUNDING_MARGIN)
    if m.kind == "z_score":
        n = 2
        while ((n - 1) / math.sqrt(n) if m.sample else math.sqrt(n - 1)) < t:
            n += 1
        return n
    if m.kind == "modified_z_score":
        return 2 if 0.6745 >= t else 3
    return next((n for n, bound in ((2, 0.5), (3, 1.0), (4, 3.0)) if bound >= t), 5)


def stream_reference(messages, m, window):
    """The trailing-window rule: each point judged against the last `window`
    points of its series before it; while the series has fewer, against all
    of them (a warm-up) once there are min_points(m). `messages` are lists of
    (name, value)."""
    judged_from = min(min_points(m), window)
    windows = {}
    found = []
    index = 0
    for message in messages:
        for name, value in message:
            w = windows.setdefault(name, collections.deque(maxlen=window))
            if len(w) >= judged_from:
                stats = stats_of(np.fromiter(w, dtype=np.float64), m)
                (score,), (flag,) = score_against(stats, m, [value])
                if flag:
                    found.append(Found(index, name, value, len(w), len(w) < window, float(score)))
            w.append(value)
            index += 1
    return found


# Requests


def ts(i):
    return timestamp_pb2.Timestamp(seconds=1_700_000_000 + i, nanos=(i * 7919) % 1_000_000_000)


def seed_request(values, names="cpu", times=True):
    """An OutliersRequest as the Go collector builds one: a time, a name and a
    value per metric. `names` is one name for every metric or one per metric."""
    request = seed.OutliersRequest()
    add = request.metrics.add
    values = np.asarray(values, dtype=np.float64).tolist()
    names = [names] * len(values) if isinstance(names, str) else list(names)
    for i, (name, value) in enumerate(zip(names, values)):
        if times:
            add(time=ts(i), name=name, value=value)
        else:
            add(name=name, value=value)
    return request


def v1_metrics(names, values, start=0):
    return [v1.Metric(time=ts(start + i), name=n, value=v) for i, (n, v) in enumerate(zip(names, np.asarray(values, dtype=np.float64).tolist()))]


def v1_request(names, values, m=None):
    request = v1.DetectRequest(metrics=v1_metrics(names, values))
    if m is not None:
        request.method.CopyFrom(m.proto())
    return request


# Series


def random_series(rng, n=None):
    """A series of one of several shapes, n points (random when None)."""
    if n is None:
        n = int(rng.choice([rng.integers(0, 8), rng.integers(8, 200), rng.integers(200, 3000)]))
    scale = 10.0 ** rng.uniform(-6, 6)
    offset = rng.normal() * 10.0 ** rng.uniform(-3, 6)
    shape = int(rng.integers(7))
    if shape == 0:
        x = offset + scale * rng.uniform(-1, 1, n)
    elif shape == 1:
        x = rng.normal(offset, scale, n)
    elif shape == 2:  # planted outliers
        x = rng.normal(offset, scale, n)
        if n:
            at = rng.choice(n, size=max(1, n // 50), replace=False)
            x[at] += rng.choice([-1, 1], size=len(at)) * scale * rng.uniform(2, 8, len(at))
    elif shape == 3:  # constant
        x = np.full(n, offset)
    elif shape == 4:  # small integers: many ties and exact means
        x = rng.integers(-5, 6, n).astype(np.float64)
    elif shape == 5:  # heavy tails
        x = offset + scale * rng.standard_cauchy(n)
    else:  # a level shift
        x = rng.normal(offset, scale, n)
        x[n // 2 :] += 3 * scale
    return x


def samuelson_series(rng):
    """4m copies of a and m of b, shuffled: every b is exactly 2 sigma from
    the mean, so the answer is decided by rounding."""
    mult = int(rng.integers(1, 40))
    a, b = rng.normal(0, 10.0 ** rng.uniform(-3, 4), 2)
    if rng.integers(2):
        a, b = float(rng.integers(-100, 100)), float(rng.integers(-100, 100))
    x = np.array([a] * (4 * mult) + [b] * mult)
    rng.shuffle(x)
    return x


def boundary_series(rng):
    """n - 1 random points and one point x whose exact z-score in the whole
    series is 2, nudged a few ulps either way: (n - 1) u^2 = 4 (n v + u^2)
    for u = x - mean and v the variance of the other points."""
    n = int(rng.choice([rng.integers(6, 9), rng.integers(9, 130), rng.integers(130, 2000)]))
    if rng.integers(2):
        y = rng.integers(-50, 50, n - 1).astype(np.float64)
    else:
        y = rng.normal(rng.normal() * 10.0 ** rng.uniform(0, 4), 10.0 ** rng.uniform(-2, 2), n - 1)
    u = math.sqrt(4 * n * float(y.var()) / (n - 5))
    x = float(y.mean()) + (u if rng.integers(2) else -u)
    for _ in range(abs(steps := int(rng.integers(-3, 4)))):
        x = math.nextafter(x, math.inf if steps > 0 else -math.inf)
    return np.insert(y, int(rng.integers(0, n)), x)


def on_the_boundary(x):
    """Whether some point's |x - mean| is within a few ulps (of the point or
    of 2 * std) of 2 * std: where rounding decides."""
    x = np.asarray(x, dtype=np.float64)
    with quiet():
        d = np.abs(x - x.mean())
        bound = 2 * x.std()
        ulps = np.maximum(np.spacing(bound), np.spacing(np.abs(x)))
        return bool(bound > 0 and (np.abs(d - bound) <= 4 * ulps).any())


def crafted_cases(seed_value, count):
    rng = np.random.default_rng(seed_value)
    return [samuelson_series(rng) if i % 3 == 0 else boundary_series(rng) for i in range(count)]


TINY = [
    [],
    [1.0],
    [-0.0],
    [3.0, 3.0],
    [1.0, 2.0],
    [1e16, 1e16 + 2],
    [0.1, 0.2, 0.3],
    [-1.0, 0.0, 1e300],
    [5.0, 5.0, 5.0, 5.0],
    [1.0, 1.0, 1.0, 9.0],
    [-49.0, -49.0, -49.0, -68.0, -49.0],
    [1.0, 1.0, 1.0, 1.0, 1.0, 7.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    [1.7976931348623157e308, -1.7976931348623157e308, 1.0],
    [1e308, 1e308, 1e308, -5.0, 2.0],
    [1e-150, 2e-150, 3e-150, 1e-150, 9e-150],
]

# Deviations so small that their squares underflow to 0: numpy's std is 0 and
# the seed flags every point off the mean.
UNDERFLOWING = [
    [5e-324, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [1e-200, 2e-200, 3e-200],
    [1.0e-170, 1.0e-170, 1.0e-170, 1.0e-170, 4.0e-170],
]


# pb.Outliers.Detect


def test_single_series_requests_answer_what_numpy_answers(seed_stub):
    rng = np.random.default_rng(20240611)
    cases = [np.array(t) for t in TINY]
    cases += [rng.normal(size=n) for n in range(8)]
    cases += [random_series(rng) for _ in range(300)]
    flagged = 0
    for x in cases:
        reply = seed_stub.Detect(seed_request(x), timeout=RPC_TIMEOUT)
        want = seed_rule(x).tolist()
        assert list(reply.indices) == want, f"series {x.tolist()[:20]}... ({len(x)} points)"
        flagged += bool(want)
    assert flagged > 50  # the series do have outliers to find


@pytest.mark.parametrize("values", UNDERFLOWING, ids=["subnormal", "1e-200", "1e-170"])
def test_squared_deviations_that_underflow_answer_what_numpy_answers(seed_stub, values):
    assert seed_rule(values).tolist()  # numpy does flag something
    assert list(seed_stub.Detect(seed_request(values), timeout=RPC_TIMEOUT).indices) == seed_rule(values).tolist()


def test_boundary_cases_within_ulps_of_two_sigma_answer_exactly_what_numpy_answers(seed_stub):
    cases = crafted_cases(7, 400)
    close = [on_the_boundary(x) for x in cases]
    flagged = [bool(len(seed_rule(x))) for x in cases]
    # The cases do sit on the boundary, and numpy falls either way.
    assert sum(close) > 300
    assert 50 < sum(f for f, c in zip(flagged, close) if c) < sum(close) - 50
    for x in cases:
        reply = seed_stub.Detect(seed_request(x), timeout=RPC_TIMEOUT)
        assert list(reply.indices) == seed_rule(x).tolist(), f"{len(x)} points: {x.tolist()}"


def test_the_seed_client_without_times_gets_the_same_answer(seed_stub):
    x = random_series(np.random.default_rng(3), 500)
    with_times = seed_stub.Detect(seed_request(x), timeout=RPC_TIMEOUT)
    without = seed_stub.Detect(seed_request(x, times=False), timeout=RPC_TIMEOUT)
    assert list(with_times.indices) == list(without.indices) == seed_rule(x).tolist()


def test_an_empty_request_answers_no_indices(seed_stub):
    assert list(seed_stub.Detect(seed.OutliersRequest(), timeout=RPC_TIMEOUT).indices) == []


def interleaved(rng, series_by_name):
    """The points of every series in a random interleaving that keeps each
    series' own order: (names, values)."""
    owners = np.concatenate([np.full(len(v), i) for i, v in enumerate(series_by_name.values())]).astype(int)
    rng.shuffle(owners)
    names = list(series_by_name)
    cursors = [0] * len(names)
    out_names, out_values = [], []
    for o in owners:
        out_names.append(names[o])
        out_values.append(series_by_name[names[o]][cursors[o]])
        cursors[o] += 1
    return out_names, np.array(out_values, dtype=np.float64)


NAMES = ["cpu", "CPU", "cpu ", "", "mem/used", "température", "😀", "host-7/disk.io", "a", "b"]


@pytest.mark.parametrize("seed_value", range(4))
def test_multi_series_requests_judge_each_name_on_its_own_with_positions_in_the_request(seed_stub, seed_value):
    rng = np.random.default_rng(100 + seed_value)
    series = {name: random_series(rng) for name in NAMES}
    crafted = crafted_cases(seed_value, 60)
    series.update({f"boundary-{i}": x for i, x in enumerate(crafted)})
    names, values = interleaved(rng, series)
    reply = seed_stub.Detect(seed_request(values, names), timeout=RPC_TIMEOUT)
    want = per_series(names, values)
    assert list(reply.indices) == want
    # Judged together, the same points give a different answer: the grouping matters.
    assert want != seed_rule(values).tolist()


def test_series_grouping_does_not_depend_on_order_or_runs(seed_stub):
    # Runs of one name, then the names alternating: the same series.
    a = [10.0, 11, 9, 10, 12, 10, 11, 9, 10, 45, 10, 11]
    b = [5.0, 5.1, 4.9, 5.0, 20.0, 5.2, 4.8, 5.0]
    runs = seed_stub.Detect(seed_request(a + b, ["a"] * 12 + ["b"] * 8), timeout=RPC_TIMEOUT)
    assert list(runs.indices) == [9, 16]
    names = ["a", "b"] * 8 + ["a"] * 4
    values = [v for pair in zip(a, b) for v in pair] + a[8:]
    alternating = seed_stub.Detect(seed_request(values, names), timeout=RPC_TIMEOUT)
    assert list(alternating.indices) == per_series(names, values) == [9, 17]


def test_a_million_metrics_in_one_series_answer_what_numpy_answers_in_reasonable_time(seed_stub):
    rng = np.random.default_rng(1_000_000)
    x = rng.normal(50.0, 3.0, 1_000_000)
    x[rng.choice(len(x), 500, replace=False)] += rng.choice([-30.0, 30.0], 500)
    request = seed_request(x, times=False)
    assert request.ByteSize() < DEFAULT_MAX_DETECT_BYTES
    started = time.monotonic()
    reply = seed_stub.Detect(request, timeout=30)
    elapsed = time.monotonic() - started
    want = seed_rule(x)
    assert len(want) > 40_000
    assert np.array_equal(np.asarray(reply.indices), want)
    # Sending 16 MB and judging a million points: well under a second on a
    # laptop; 5 s leaves room for a loaded CI machine.
    assert elapsed < 5, f"{elapsed:.2f}s"


def test_many_series_of_a_large_request_answer_what_numpy_answers(seed_stub):
    rng = np.random.default_rng(99)
    series = {f"host-{i}": random_series(rng, int(rng.integers(0, 2000))) for i in range(300)}
    names, values = interleaved(rng, series)
    reply = seed_stub.Detect(seed_request(values, names, times=False), timeout=RPC_TIMEOUT)
    assert list(reply.indices) == per_series(names, values)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -math.nan], ids=["nan", "inf", "-inf", "-nan"])
@pytest.mark.parametrize("at", [0, 3, 4999])
def test_a_value_that_is_not_finite_is_invalid_argument_naming_its_index(seed_stub, bad, at):
    values = np.arange(5000, dtype=np.float64)
    values[at] = bad
    names = ["a", "b"] * 2500
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, f"metrics[{at}].value"):
        seed_stub.Detect(seed_request(values, names), timeout=RPC_TIMEOUT)


def test_the_first_of_several_values_that_are_not_finite_is_named(seed_stub):
    values = [1.0, 2.0, math.inf, 3.0, math.nan]
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "metrics[2].value") as info:
        seed_stub.Detect(seed_request(values), timeout=RPC_TIMEOUT)
    assert "metrics[4]" not in info.value.details()


def request_of_size(size, value=1.0):
    """An OutliersRequest of exactly `size` bytes on the wire: one metric
    whose name takes up the room."""
    length = size
    while True:
        request = seed.OutliersRequest(metrics=[seed.Metric(name="x" * length, value=value)])
        over = request.ByteSize() - size
        if over == 0:
            return request
        length -= over


def test_a_request_over_the_default_limit_is_resource_exhausted_and_one_at_it_is_answered(seed_stub):
    at_limit = request_of_size(DEFAULT_MAX_DETECT_BYTES)
    assert list(seed_stub.Detect(at_limit, timeout=RPC_TIMEOUT).indices) == []
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(DEFAULT_MAX_DETECT_BYTES)):
        seed_stub.Detect(request_of_size(DEFAULT_MAX_DETECT_BYTES + 1), timeout=RPC_TIMEOUT)


def test_a_request_over_a_configured_limit_is_resource_exhausted_naming_the_limit(limited_channel):
    stub = seed_grpc.OutliersStub(limited_channel)
    x = np.arange(10_000, dtype=np.float64)
    big = seed_request(x)
    assert big.ByteSize() > SMALL_DETECT_BYTES
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(SMALL_DETECT_BYTES)) as info:
        stub.Detect(big, timeout=RPC_TIMEOUT)
    assert "limit" in info.value.details()
    # At the limit, and under it, the same server answers.
    assert list(stub.Detect(request_of_size(SMALL_DETECT_BYTES), timeout=RPC_TIMEOUT).indices) == []
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(SMALL_DETECT_BYTES)):
        stub.Detect(request_of_size(SMALL_DETECT_BYTES + 1), timeout=RPC_TIMEOUT)
    small = x[:1000].copy()
    small[10] = 1e6
    assert list(stub.Detect(seed_request(small), timeout=RPC_TIMEOUT).indices) == seed_rule(small).tolist() == [10]
    # The v1 service has the same limit.
    v1_stub = v1_grpc.OutliersServiceStub(limited_channel)
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(SMALL_DETECT_BYTES)):
        v1_stub.Detect(v1_request(["cpu"] * len(x), x), timeout=RPC_TIMEOUT)


def test_seed_detect_over_grpc_aio_answers_concurrent_requests(server):
    rng = np.random.default_rng(5)
    cases = [random_series(rng) for _ in range(40)] + crafted_cases(11, 40)
    bad = np.array([1.0, 2.0, math.nan])

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            s = seed_grpc.OutliersStub(ch)
            replies = await asyncio.gather(*(s.Detect(seed_request(x), timeout=RPC_TIMEOUT) for x in cases))
            with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "metrics[2].value"):
                await s.Detect(seed_request(bad), timeout=RPC_TIMEOUT)
            return [list(r.indices) for r in replies]

    got = asyncio.run(main())
    assert got == [seed_rule(x).tolist() for x in cases]


# dataport.outliers.v1 Detect


def v1_cases(rng):
    """Series of every shape, including the ones the definitions single out:
    MAD 0 with a mean absolute deviation (more than half the points equal),
    everything equal, an IQR of 0 with points outside it, and 1..5 points."""
    series = {name: random_series(rng) for name in NAMES}
    series.update(
        {
            "mad-zero": np.array([5.0] * 9 + [5.1, 7.0, 4.0, 5.0]),
            "all-equal": np.full(12, 3.25),
            "iqr-zero": np.array([1.0] * 10 + [3.0, -2.0]),
            "one": np.array([42.0]),
            "two": np.array([1.0, 2.0]),
            "three": np.array([1.0, 2.0, 30.0]),
            "four": np.array([1.0, 2.0, 3.0, 30.0]),
            "five": np.array([-49.0, -49.0, -49.0, -68.0, -49.0]),
            "planted": np.r_[rng.normal(0, 1, 200), [9.0, -7.0]],
            "integers": rng.integers(0, 4, 300).astype(np.float64),
        }
    )
    return series


METHODS = [
    M(),
    M("z_score", 2.5),
    M("z_score", 0, True),
    M("z_score", 1.5, True),
    M("modified_z_score"),
    M("modified_z_score", 2.0),
    M("modified_z_score", 0.5),
    M("iqr"),
    M("iqr", 3.0),
    M("iqr", 0.25),
]


def assert_same_floats(got, want, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        i = int(np.argmin(same))
        pytest.fail(f"{what}: {int((~same).sum())} differ, first at {i}: {got[i]!r} != {want[i]!r}")


def check_v1_reply(reply, names, values, m):
    values = np.asarray(values, dtype=np.float64)
    positions = collections.defaultdict(list)
    for i, name in enumerate(names):
        positions[name].append(i)
    want_scores = np.zeros(len(values))
    want_indices = []
    want_series = {}
    for name, pos in positions.items():
        pos = np.array(pos)
        stats, scores, flags = judge(values[pos], m)
        want_scores[pos] = scores
        want_indices.extend(pos[flags].tolist())
        want_series[name] = (len(pos), int(flags.sum()), stats)

    assert list(reply.indices) == sorted(want_indices)
    # Exact: the scores are the definitions' arithmetic on numpy's statistics.
    assert_same_floats(reply.scores, want_scores, "scores")
    got_names = [s.name for s in reply.series]
    assert got_names == sorted(want_series, key=lambda n: n.encode())  # by name
    for s in reply.series:
        count, outliers, stats = want_series[s.name]
        assert (s.count, s.outliers) == (count, outliers), s.name
        assert s.WhichOneof("stats") == m.kind, s.name
        got = getattr(s, m.kind)
        for field, want in stats.items():
            assert_same_floats([getattr(got, field)], [want], f"{s.name}: {m.kind}.{field}")


@pytest.mark.parametrize("m", METHODS, ids=str)
def test_v1_detect_answers_indices_scores_and_stats_by_the_definitions(stub, m):
    rng = np.random.default_rng(zlib.crc32(str(m).encode()))
    names, values = interleaved(rng, v1_cases(rng))
    reply = stub.Detect(v1_request(names, values, m), timeout=RPC_TIMEOUT)
    check_v1_reply(reply, names, values, m)
    assert reply.indices  # something to find in every case


def test_v1_special_series_score_as_the_proto_defines(stub):
    # MAD 0: the mean absolute deviation stands in.
    x = [5.0] * 9 + [5.1, 7.0, 4.0, 5.0]
    reply = stub.Detect(v1_request(["s"] * len(x), x, M("modified_z_score")), timeout=RPC_TIMEOUT)
    stats = reply.series[0].modified_z_score
    assert (stats.median, stats.mad) == (5.0, 0.0)
    assert stats.mean_absolute_deviation == pytest.approx(3.1 / 13, rel=1e-15)
    assert reply.scores[10] == pytest.approx(2.0 / (MEAN_AD_FACTOR * (3.1 / 13)), rel=1e-12)
    assert reply.scores[11] == pytest.approx(-1.0 / (MEAN_AD_FACTOR * (3.1 / 13)), rel=1e-12)
    assert list(reply.indices) == [10]  # 7.0 scores 6.7, 4.0 only -3.35
    # Everything equal: every score 0 with any method.
    for m in (M(), M("z_score", 0, True), M("modified_z_score"), M("iqr")):
        reply = stub.Detect(v1_request(["s"] * 6, [2.5] * 6, m), timeout=RPC_TIMEOUT)
        assert (list(reply.indices), list(reply.scores)) == ([], [0.0] * 6), m
    # IQR 0: +-infinity outside the quartiles, 0 inside.
    x = [1.0] * 10 + [3.0, -2.0]
    reply = stub.Detect(v1_request(["s"] * len(x), x, M("iqr")), timeout=RPC_TIMEOUT)
    assert list(reply.scores) == [0.0] * 10 + [math.inf, -math.inf]
    assert list(reply.indices) == [10, 11]
    iqr = reply.series[0].iqr
    assert (iqr.q1, iqr.q3, iqr.lower_fence, iqr.upper_fence) == (1.0, 1.0, 1.0, 1.0)


def test_v1_iqr_fences_decide_where_the_score_rounds_to_k(stub):
    # q1 = -0.4, q3 = 0.6, lower fence -0.4 - 1.5 * 1.0 = -1.9, and
    # -1.9000000000000001 is below it, while its score rounds to -1.5
    # exactly: the fences decide, as the proto's first definition says (its
    # "|score| > k" is the same rule up to rounding).
    x = [1.0, 1.3, -0.5, 0.2, -0.30000000000000004, -0.30000000000000004, -1.9000000000000001]
    reply = stub.Detect(v1_request(["s"] * len(x), x, M("iqr")), timeout=RPC_TIMEOUT)
    assert list(reply.indices) == [6]
    assert reply.scores[6] == -1.5
    iqr = reply.series[0].iqr
    assert (iqr.q1, iqr.q3, iqr.lower_fence) == (-0.4, 0.6, -1.9)
    check_v1_reply(reply, ["s"] * len(x), x, M("iqr"))


def test_v1_default_method_is_the_seed_rule(stub, seed_stub):
    rng = np.random.default_rng(8)
    series = {f"b{i}": x for i, x in enumerate(crafted_cases(8, 150))}
    series.update({name: random_series(rng) for name in NAMES})
    names, values = interleaved(rng, series)
    want = per_series(names, values)
    unset = stub.Detect(v1_request(names, values), timeout=RPC_TIMEOUT)
    assert list(unset.indices) == want
    assert list(seed_stub.Detect(seed_request(values, names), timeout=RPC_TIMEOUT).indices) == want
    for m in (M(), M("z_score", 2.0)):
        assert stub.Detect(v1_request(names, values, m), timeout=RPC_TIMEOUT) == unset, m
    # An empty Method (no kind set) is the seed's rule too.
    request = v1_request(names, values)
    request.method.SetInParent()
    assert stub.Detect(request, timeout=RPC_TIMEOUT) == unset


@pytest.mark.parametrize(
    "zero,explicit",
    [(M("z_score", 0, True), M("z_score", 2.0, True)), (M("modified_z_score"), M("modified_z_score", 3.5)), (M("iqr"), M("iqr", 1.5))],
    ids=["z_score-sample", "modified_z_score", "iqr"],
)
def test_v1_a_parameter_left_at_0_takes_its_default(stub, zero, explicit):
    rng = np.random.default_rng(21)
    names, values = interleaved(rng, v1_cases(rng))
    assert stub.Detect(v1_request(names, values, zero), timeout=RPC_TIMEOUT) == stub.Detect(
        v1_request(names, values, explicit), timeout=RPC_TIMEOUT
    )


def test_v1_empty_request_answers_nothing(stub):
    for m in (None, M("modified_z_score"), M("iqr")):
        reply = stub.Detect(v1_request([], [], m), timeout=RPC_TIMEOUT)
        assert (list(reply.indices), list(reply.scores), list(reply.series)) == ([], [], [])


@pytest.mark.parametrize("kind", ["z_score", "modified_z_score", "iqr"])
@pytest.mark.parametrize("bad", [-1.0, -1e-300, math.nan, math.inf, -math.inf], ids=["negative", "tiny-negative", "nan", "inf", "-inf"])
def test_v1_a_bad_parameter_is_invalid_argument_naming_the_field(stub, kind, bad):
    m = M(kind, bad, sample=(kind == "z_score"))
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, f"method.{kind}.{PARAMETER[kind]}"):
        stub.Detect(v1_request(["a"] * 10, np.arange(10.0), m), timeout=RPC_TIMEOUT)


@pytest.mark.parametrize("m", [None, M("modified_z_score"), M("iqr")], ids=["default", "modified_z_score", "iqr"])
def test_v1_a_value_that_is_not_finite_is_invalid_argument_naming_its_index(stub, m):
    values = np.arange(20.0)
    values[13] = math.nan
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "metrics[13].value"):
        stub.Detect(v1_request(["a", "b"] * 10, values, m), timeout=RPC_TIMEOUT)


def test_v1_detect_over_grpc_aio(server):
    rng = np.random.default_rng(31)
    names, values = interleaved(rng, v1_cases(rng))

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            s = v1_grpc.OutliersServiceStub(ch)
            replies = await asyncio.gather(*(s.Detect(v1_request(names, values, m), timeout=RPC_TIMEOUT) for m in METHODS))
            with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "method.iqr.k"):
                await s.Detect(v1_request(names, values, M("iqr", -2.0)), timeout=RPC_TIMEOUT)
            return replies

    for reply, m in zip(asyncio.run(main()), METHODS):
        check_v1_reply(reply, names, values, m)


# dataport.outliers.v1 DetectStream


class Requests:
    """A request iterator the test feeds while the call is open."""

    def __init__(self):
        self._queue = queue.Queue()

    def send(self, metrics=(), m=None, window=0):
        request = v1.DetectStreamRequest(metrics=list(metrics), window=window)
        if m is not None:
            request.method.CopyFrom(m.proto())
        self._queue.put(request)

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        while (request := self._queue.get()) is not None:
            yield request


def stream_messages(rng, names, count, spikes=0.02):
    """`count` points over `names` (noisy levels of their own, with spikes
    and a flat stretch each), cut into messages of 0..40 points: a list of
    lists of (name, value)."""
    level = {n: rng.normal(0, 100) for n in names}
    scale = {n: 10.0 ** rng.uniform(-1, 1) for n in names}
    per_series = count // len(names)
    flat_from = {n: int(rng.integers(per_series // 4, per_series // 2)) for n in names}
    seen = collections.Counter()
    points = []
    for _ in range(count):
        n = names[int(rng.integers(len(names)))]
        k = seen[n]
        seen[n] += 1
        if flat_from[n] <= k < flat_from[n] + 40:
            v = round(level[n], 1) + (5 * scale[n] if rng.random() < 0.08 else 0.0)
        else:
            v = rng.normal(level[n], scale[n])
            if rng.random() < spikes:
                v += rng.choice([-1, 1]) * scale[n] * rng.uniform(3, 10)
        points.append((n, float(v)))
    messages = []
    while points:
        size = int(rng.integers(0, 41))
        messages.append(points[:size])
        points = points[size:]
    return messages


def stream_requests(messages, m, window):
    """The requests of `messages`: method and window in the first only, and
    each metric's time made from its index in the stream."""
    index = 0
    for i, message in enumerate(messages):
        request = v1.DetectStreamRequest()
        for name, value in message:
            request.metrics.add(time=ts(index), name=name, value=value)
            index += 1
        if i == 0:
            request.window = window
            if m is not None:
                request.method.CopyFrom(m.proto())
        yield request


def as_found(anomaly):
    return Found(
        anomaly.index, anomaly.metric.name, anomaly.metric.value, anomaly.window_points, anomaly.warm_up, anomaly.score
    )


def assert_same_anomalies(got, want):
    assert [a[:5] for a in got] == [w[:5] for w in want]
    assert_same_floats([a.score for a in got], [w.score for w in want], "scores")


STREAM_CASES = [
    (None, 0),
    (M(), 20),
    (M("z_score", 2.5, True), 30),
    (M("z_score", 3.0), 10),
    (M("modified_z_score"), 0),
    (M("modified_z_score"), 3),
    (M("modified_z_score", 0.5), 2),
    (M("iqr"), 12),
    (M("iqr"), 4),
    (M("iqr", 3.5), 5),
]


@pytest.mark.parametrize("m,window", STREAM_CASES, ids=[f"{m or 'unset'}-w{w}" for m, w in STREAM_CASES])
def test_stream_anomalies_match_the_trailing_window_rule(stub, m, window):
    rng = np.random.default_rng(zlib.crc32(f"{m}-{window}".encode()))
    messages = stream_messages(rng, ["a", "b", "", "température"], 900)
    want = stream_reference(messages, m or M(), window or DEFAULT_WINDOW)
    assert len(want) > 5
    if min_points(m or M()) < (window or DEFAULT_WINDOW):
        assert any(w.warm_up for w in want) and not all(w.warm_up for w in want)
    if m is not None and m.kind == "iqr":
        # The flat stretches give windows with an IQR of 0.
        assert any(math.isinf(w.score) for w in want)
    got = []
    for reply in stub.DetectStream(stream_requests(messages, m, window), timeout=RPC_TIMEOUT):
        assert reply.anomalies  # nothing is sent without an anomaly
        got.extend(reply.anomalies)
    assert_same_anomalies([as_found(a) for a in got], want)
    # The metric comes back whole, its time included.
    assert all(a.metric.time == ts(a.index) for a in got)


def test_stream_anomalies_arrive_while_the_stream_is_open_with_indices_across_messages(stub):
    requests = Requests()
    call = stub.DetectStream(iter(requests), timeout=RPC_TIMEOUT)
    wave = [10.0, 10.1, 10.2, 10.3, 10.4]
    steady = [(n, wave[i % 5] + (100 if n == "b" else 0)) for i in range(20) for n in ("a", "b")]
    requests.send([v1.Metric(name=n, value=v) for n, v in steady], m=M(), window=10)
    requests.send([])  # an empty message counts nothing
    requests.send([v1.Metric(name="b", value=110.2), v1.Metric(name="a", value=50.0, time=ts(7))])
    reply = next(call)  # before the stream is closed
    (anomaly,) = reply.anomalies
    assert (anomaly.index, anomaly.metric.name, anomaly.metric.value, anomaly.window_points) == (41, "a", 50.0, 10)
    assert anomaly.metric.time == ts(7)
    stats = stats_of(([wave[i % 5] for i in range(10, 20)]), M())
    assert anomaly.score == score_against(stats, M(), [50.0])[0][0]

    # The spike is in a's window now; b's spike goes out on its own.
    requests.send([v1.Metric(name="a", value=10.1), v1.Metric(name="b", value=0.0), v1.Metric(name="b", value=110.0)])
    (anomaly,) = next(call).anomalies
    assert (anomaly.index, anomaly.metric.name, anomaly.metric.value, anomaly.window_points) == (43, "b", 0.0, 10)
    # A new series' 11th point is judged against a full window; its earlier
    # ones, from the 6th, against fewer (none of them stands out).
    requests.send([v1.Metric(name="c", value=v) for v in [1.0, 2.0] * 5 + [9.0]])
    (anomaly,) = next(call).anomalies
    assert (anomaly.index, anomaly.metric.name, anomaly.window_points, anomaly.score) == (55, "c", 10, 15.0)
    requests.close()
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_stream_judges_a_point_once_its_window_is_full_when_the_method_needs_all_of_it(stub):
    # Window 3 and the seed rule, which needs 5 points to flag anything: no
    # warm-up. 1000 after two points of a is not judged, 1000 after three of b is.
    metrics = [v1.Metric(name="a", value=v) for v in (0.0, 1.0, 1000.0)]
    metrics += [v1.Metric(name="b", value=v) for v in (0.0, 1.0, 0.0, 1000.0)]
    replies = stub.DetectStream(iter([first(window=3, metrics=metrics)]), timeout=RPC_TIMEOUT)
    assert [(a.index, a.window_points) for r in replies for a in r.anomalies] == [(6, 3)]


def test_a_stream_without_metrics_ends_ok_with_nothing(stub):
    assert list(stub.DetectStream(iter([]), timeout=RPC_TIMEOUT)) == []
    first_only = [v1.DetectStreamRequest(window=7, method=M("iqr").proto()), v1.DetectStreamRequest()]
    assert list(stub.DetectStream(iter(first_only), timeout=RPC_TIMEOUT)) == []


def stream_error(stub, requests):
    """Runs a stream that must fail: (the error, the anomalies before it)."""
    got = []
    with pytest.raises(grpc.RpcError) as info:
        for reply in stub.DetectStream(iter(requests), timeout=RPC_TIMEOUT):
            got.extend(reply.anomalies)
    return info.value, got


def first(m=None, window=0, metrics=()):
    request = v1.DetectStreamRequest(window=window, metrics=list(metrics))
    if m is not None:
        request.method.CopyFrom(m.proto())
    return request


def test_stream_window_up_to_the_default_limit_is_accepted_and_beyond_it_refused(stub):
    n = DEFAULT_MAX_STREAM_WINDOW
    metrics = [v1.Metric(name="a", value=float(i % 3)) for i in range(n)] + [v1.Metric(name="a", value=99.0)]
    found = list(stub.DetectStream(iter([first(window=n, metrics=metrics)]), timeout=RPC_TIMEOUT))
    assert [a.index for r in found for a in r.anomalies] == [n]
    for window in (DEFAULT_MAX_STREAM_WINDOW + 1, 2**32 - 1):
        with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "window", str(window), str(DEFAULT_MAX_STREAM_WINDOW)):
            list(stub.DetectStream(iter([first(window=window, metrics=metrics)]), timeout=RPC_TIMEOUT))


def test_stream_window_over_a_configured_limit_is_refused(limited_channel):
    stub = v1_grpc.OutliersServiceStub(limited_channel)
    assert list(stub.DetectStream(iter([first(window=SMALL_STREAM_WINDOW)]), timeout=RPC_TIMEOUT)) == []
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "window", str(SMALL_STREAM_WINDOW)):
        list(stub.DetectStream(iter([first(window=SMALL_STREAM_WINDOW + 1)]), timeout=RPC_TIMEOUT))


def test_stream_default_window_is_the_configured_limit_when_that_is_smaller(limited_channel):
    stub = v1_grpc.OutliersServiceStub(limited_channel)
    metrics = [v1.Metric(name="a", value=float(i % 2)) for i in range(80)] + [v1.Metric(name="a", value=50.0)]
    replies = list(stub.DetectStream(iter([first(metrics=metrics)]), timeout=RPC_TIMEOUT))
    assert [(a.index, a.window_points) for r in replies for a in r.anomalies] == [(80, SMALL_STREAM_WINDOW)]


@pytest.mark.parametrize("m", [None, M("z_score", 0, True), M("modified_z_score"), M("iqr", 3.5)], ids=str)
def test_stream_window_of_one_point_is_refused_and_two_accepted(stub, m):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "window 1", "too small"):
        list(stub.DetectStream(iter([first(m, 1)]), timeout=RPC_TIMEOUT))
    # Two earlier points [0, 1] are a window with a spread: 100 after them stands out.
    metrics = [v1.Metric(name="a", value=v) for v in (0.0, 1.0, 100.0)]
    found = [a for r in stub.DetectStream(iter([first(m, 2, metrics)]), timeout=RPC_TIMEOUT) for a in r.anomalies]
    assert [(a.index, a.window_points) for a in found] == [(2, 2)]


@pytest.mark.parametrize(
    "later",
    [
        v1.DetectStreamRequest(window=10),
        v1.DetectStreamRequest(method=M("iqr").proto()),
        v1.DetectStreamRequest(method=M().proto(), window=DEFAULT_WINDOW),
        v1.DetectStreamRequest(method=v1.Method()),
    ],
    ids=["window", "method", "same-method-and-window", "empty-method"],
)
def test_stream_method_or_window_in_a_later_message_is_refused(stub, later):
    later = v1.DetectStreamRequest.FromString(later.SerializeToString())
    later.metrics.add(name="a", value=1.0)
    metrics = [v1.Metric(name="a", value=v) for v in [0.0, 1.0] * 5 + [50.0]]
    error, found = stream_error(stub, [first(M(), 10, metrics), later])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "first message only" in error.details()
    assert [a.index for a in found] == [10]


@pytest.mark.parametrize("kind", ["z_score", "modified_z_score", "iqr"])
def test_stream_a_bad_parameter_is_refused_naming_the_field(stub, kind):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, f"method.{kind}.{PARAMETER[kind]}"):
        list(stub.DetectStream(iter([first(M(kind, -3.0), 10, [v1.Metric(name="a", value=1.0)])]), timeout=RPC_TIMEOUT))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_stream_a_value_that_is_not_finite_ends_the_stream_after_what_was_found_naming_its_index(stub, bad):
    steady = [v1.Metric(name="a", value=v) for v in [0.0, 1.0] * 5]
    requests = [
        first(M(), 10, steady + [v1.Metric(name="a", value=40.0)]),
        v1.DetectStreamRequest(metrics=[v1.Metric(name="b", value=1.0), v1.Metric(name="a", value=-40.0), v1.Metric(name="b", value=bad), v1.Metric(name="a", value=90.0)]),
        v1.DetectStreamRequest(metrics=[v1.Metric(name="a", value=90.0)]),
    ]
    error, found = stream_error(stub, requests)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "metric 13" in error.details(), error.details()
    # Both anomalies before the bad value, the one of its own message included.
    assert [a.index for a in found] == [10, 12]


def test_stream_more_series_than_the_default_limit_is_resource_exhausted(stub):
    metrics = [v1.Metric(name=f"s{i}", value=1.0) for i in range(DEFAULT_MAX_STREAM_SERIES)]
    assert list(stub.DetectStream(iter([first(metrics=metrics)]), timeout=RPC_TIMEOUT)) == []
    error, found = stream_error(stub, [first(metrics=metrics), v1.DetectStreamRequest(metrics=[v1.Metric(name="one-more", value=1.0)])])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert f"metric {DEFAULT_MAX_STREAM_SERIES}" in error.details()
    assert str(DEFAULT_MAX_STREAM_SERIES) in error.details()


def test_stream_more_series_than_a_configured_limit_is_resource_exhausted_after_the_anomalies_before(limited_channel):
    stub = v1_grpc.OutliersServiceStub(limited_channel)
    steady = lambda n: [v1.Metric(name=n, value=v) for v in [0.0, 1.0] * 5]  # noqa: E731
    requests = Requests()
    call = stub.DetectStream(iter(requests), timeout=RPC_TIMEOUT)
    requests.send(steady("a") + steady("b") + [v1.Metric(name="a", value=60.0)], m=M(), window=10)
    (anomaly,) = next(call).anomalies
    assert anomaly.index == 20
    # Points of the series already held go on being judged; the 4th series ends the stream.
    requests.send(steady("c") + [v1.Metric(name="b", value=-60.0), v1.Metric(name="d", value=1.0), v1.Metric(name="c", value=70.0)])
    (anomaly,) = next(call).anomalies
    assert (anomaly.index, anomaly.metric.name) == (31, "b")
    with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "metric 32", str(SMALL_STREAM_SERIES)):
        next(call)
    requests.close()


def test_stream_message_over_the_size_limit_is_resource_exhausted(limited_channel):
    stub = v1_grpc.OutliersServiceStub(limited_channel)
    metrics = [v1.Metric(name="a", value=float(i % 5)) for i in range(10)] + [v1.Metric(name="a", value=99.0)]
    big = v1.DetectStreamRequest(metrics=[v1.Metric(name="b", value=float(i)) for i in range(10_000)])
    assert big.ByteSize() > SMALL_DETECT_BYTES
    error, found = stream_error(stub, [first(M(), 10, metrics), big])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert str(SMALL_DETECT_BYTES) in error.details()
    assert [a.index for a in found] == [10]


def test_stream_ends_unavailable_when_the_server_drains(fresh_channel, fresh_server):
    stub = v1_grpc.OutliersServiceStub(fresh_channel)
    requests = Requests()
    call = stub.DetectStream(iter(requests), timeout=RPC_TIMEOUT)
    requests.send([v1.Metric(name="a", value=v) for v in [0.0, 1.0] * 5 + [50.0]], m=M(), window=10)
    assert [a.index for a in next(call).anomalies] == [10]
    fresh_server.process.send_signal(signal.SIGTERM)
    with expect_status(grpc.StatusCode.UNAVAILABLE):
        next(call)
    requests.close()
    # fresh_server's teardown checks that the server then exits 0 in time.


def test_stream_over_grpc_aio_from_an_async_generator(server):
    rng = np.random.default_rng(77)
    m, window = M("modified_z_score"), 25
    messages = stream_messages(rng, ["x", "y", "z"], 600)
    want = stream_reference(messages, m, window)
    assert len(want) > 5
    requests = list(stream_requests(messages, m, window))
    # The message that holds the first anomaly: the generator waits there
    # until the test has read it.
    ends = np.cumsum([len(msg) for msg in messages])
    first_at = int(np.searchsorted(ends, want[0].index, side="right"))

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            s = v1_grpc.OutliersServiceStub(ch)
            read_first = asyncio.Event()

            async def gen():
                for i, request in enumerate(requests):
                    if i == first_at + 1:
                        await read_first.wait()
                    await asyncio.sleep(0)
                    yield request

            call = s.DetectStream(gen(), timeout=RPC_TIMEOUT)
            got = list((await call.read()).anomalies)
            read_first.set()
            while (reply := await call.read()) is not grpc.aio.EOF:
                got.extend(reply.anomalies)
            code = await call.code()

            # A refusal over aio: a window past the limit.
            async def bad():
                yield first(window=DEFAULT_MAX_STREAM_WINDOW + 1)

            with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "window"):
                async for _ in s.DetectStream(bad(), timeout=RPC_TIMEOUT):
                    pass
            return got, code

    got, code = asyncio.run(main())
    assert code == grpc.StatusCode.OK
    assert got[0].index == want[0].index
    assert_same_anomalies([as_found(a) for a in got], want)
