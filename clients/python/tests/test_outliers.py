"""detect_outliers (dataport.outliers.v1 Detect) and detect_outliers_compat
(pb.Outliers Detect) from lists and numpy arrays, with known answers and
numpy's own arithmetic as the reference."""

from __future__ import annotations

import builtins
import math
from typing import Any

import grpc
import numpy as np
import pytest
from helpers import expect_status

import dataport_client
from dataport_client.compat import outliers_pb2 as compat_pb2
from dataport_client.dataport.outliers.v1 import outliers_pb2

SPIKE = [1.0] * 9 + [50.0]


def test_a_spike_in_a_list_is_the_outlier(client: dataport_client.Client) -> None:
    got = client.detect_outliers(SPIKE, name="cpu")
    assert got.indices == [9]
    # mean 5.9, population sigma 14.7: scores (x - 5.9) / 14.7.
    assert got.scores == pytest.approx([(x - 5.9) / 14.7 for x in SPIKE], rel=1e-12)
    [series] = got.series
    assert (series.name, series.count, series.outliers) == ("cpu", 10, 1)
    assert series.stats == pytest.approx({"mean": 5.9, "sigma": 14.7}, rel=1e-12)
    assert client.detect_outliers_compat(SPIKE) == [9]


def test_a_numpy_array_is_judged_as_numpy_judges_it(client: dataport_client.Client) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(100.0, 5.0, 20_000)
    x[[17, 4_000, 19_999]] += [60.0, -45.0, 80.0]
    # The seed service's rule, literally.
    want = np.flatnonzero(np.abs(x - x.mean()) > 2 * x.std()).tolist()
    assert {17, 4_000, 19_999} <= set(want)
    got = client.detect_outliers(x)
    assert got.indices == want
    np.testing.assert_allclose(got.scores, (x - x.mean()) / x.std(), rtol=1e-9)
    assert got.series[0].stats["mean"] == x.mean()
    assert client.detect_outliers_compat(x) == want
    # float32 and integer arrays are widened to float64, as numpy would.
    assert client.detect_outliers(x.astype(np.float32)).indices == np.flatnonzero(
        np.abs(x.astype(np.float32).astype(np.float64) - x.astype(np.float32).astype(np.float64).mean())
        > 2 * x.astype(np.float32).astype(np.float64).std()
    ).tolist()
    assert client.detect_outliers(np.array([3, 3, 3, 3, 3, 3, 3, 3, 3, 90])).indices == [9]


def test_tukey_fences_and_modified_z_scores(client: dataport_client.Client) -> None:
    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], dtype=float)
    iqr = client.detect_outliers(x, method="iqr")
    # numpy's linear percentiles: q1 3.25, q3 7.75, IQR 4.5, fences -3.5 and 14.5.
    assert iqr.indices == [9]
    assert iqr.series[0].stats == {"q1": 3.25, "q3": 7.75, "lower_fence": -3.5, "upper_fence": 14.5}
    assert iqr.scores[9] == pytest.approx((100 - 7.75) / 4.5)
    # k = 20 moves the upper fence to 97.75: 100 is still beyond it.
    assert client.detect_outliers(x, method="iqr", threshold=20).indices == [9]
    assert client.detect_outliers(x, method="iqr", threshold=21).indices == []

    modified = client.detect_outliers(x, method="modified")
    # median 5.5, MAD 2.5: 100 scores 0.6745 * 94.5 / 2.5 = 25.5.
    assert modified.indices == [9]
    assert modified.scores[9] == pytest.approx(0.6745 * 94.5 / 2.5)
    assert modified.series[0].stats["median"] == 5.5 and modified.series[0].stats["mad"] == 2.5


def test_a_lower_threshold_and_the_sample_sigma(client: dataport_client.Client) -> None:
    x = np.array([10.0, 11.0, 9.0, 10.0, 12.0, 8.0, 10.0, 15.0])
    for threshold in (1.0, 1.5, 2.0):
        for sample in (False, True):
            sigma = x.std(ddof=1 if sample else 0)
            want = np.flatnonzero(np.abs(x - x.mean()) > threshold * sigma).tolist()
            got = client.detect_outliers(x, threshold=threshold, sample=sample)
            assert got.indices == want, (threshold, sample)
    # mean 10.625, sigma 1.996: 8 and 15 lie more than one sigma off.
    assert client.detect_outliers(x, threshold=1.0).indices == [5, 7]


def test_the_encoded_request_is_the_generated_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, 3.0]
    want = outliers_pb2.DetectRequest(metrics=[outliers_pb2.Metric(name="disk", value=v) for v in values])
    with_numpy = dataport_client.encode_metrics(np.array(values), "disk")
    assert outliers_pb2.DetectRequest.FromString(with_numpy) == want
    assert compat_pb2.OutliersRequest.FromString(with_numpy) == compat_pb2.OutliersRequest(
        metrics=[compat_pb2.Metric(name="disk", value=v) for v in values]
    )
    # Without numpy: the same bytes.
    real_import = builtins.__import__

    def no_numpy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "numpy":
            raise ImportError("no numpy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    assert dataport_client.encode_metrics(values, "disk") == with_numpy
    assert dataport_client.encode_metrics(iter(values)) == dataport_client.encode_metrics(values, "")


def test_a_long_name_encodes_its_length_in_several_bytes() -> None:
    name = "n" * 300
    raw = dataport_client.encode_metrics(np.array([1.0, 2.0]), name)
    assert outliers_pb2.DetectRequest.FromString(raw) == outliers_pb2.DetectRequest(
        metrics=[outliers_pb2.Metric(name=name, value=1.0), outliers_pb2.Metric(name=name, value=2.0)]
    )


def test_a_non_finite_value_is_invalid_argument(client: dataport_client.Client) -> None:
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT):
        client.detect_outliers([1.0, math.nan, 2.0])
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT):
        client.detect_outliers_compat(np.array([1.0, math.inf]))


def test_a_bad_method_or_shape_is_refused_before_any_call(client: dataport_client.Client) -> None:
    with pytest.raises(ValueError, match="one series"):
        client.detect_outliers(np.ones((3, 3)))
    with pytest.raises(ValueError, match="zscore method only"):
        client.detect_outliers([1.0, 2.0], method="iqr", sample=True)


def test_a_detect_past_grpcs_default_message_limit_goes_through(client: dataport_client.Client) -> None:
    # 600,000 values: a 14 MB request and a reply of 4.8 MB of scores, past
    # the 4 MiB grpc takes by default; the Client's channel allows them.
    x = np.zeros(600_000)
    x[123_456] = 1.0
    got = client.detect_outliers(x, name="big")
    assert got.indices == [123_456]
    assert len(got.scores) == 600_000
    assert got.series[0].count == 600_000
