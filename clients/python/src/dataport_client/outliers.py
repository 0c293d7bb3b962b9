"""Outlier detection of one series of values (a list, or a numpy array
with `pip install 'dataport-client[numpy]'`), through
dataport.outliers.v1 Detect or the seed's pb.Outliers Detect.

A million values are 24 MB on the wire; building a million Metric messages
in Python takes seconds, so the request is encoded here directly (with
numpy, in one pass): `encode_metrics` gives exactly the bytes of a
DetectRequest (or pb.OutliersRequest, the same fields) listing the values.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dataport_client.dataport.outliers.v1 import outliers_pb2

Method = Literal["zscore", "modified", "iqr"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_metrics(values: Iterable[float], name: str = "") -> bytes:
    """The field `repeated Metric metrics = 1` of a DetectRequest (or a
    pb.OutliersRequest) holding `values`, each a Metric of this name and no
    time. A numpy array (or anything numpy takes) is encoded without a
    Python loop when numpy is installed."""
    name_bytes = name.encode()
    inner = (b"\x12" + _varint(len(name_bytes)) + name_bytes if name_bytes else b"") + b"\x19"
    prefix = b"\x0a" + _varint(len(inner) + 8) + inner
    try:
        import numpy as np
    except ImportError:
        return b"".join(prefix + struct.pack("<d", float(v)) for v in values)
    arr = np.asarray(values if not _is_iterator(values) else list(values), dtype="<f8")
    if arr.ndim != 1:
        raise ValueError(f"expected one series of values, got an array of shape {arr.shape}")
    rows = np.empty((arr.shape[0], len(prefix) + 8), dtype=np.uint8)
    rows[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    rows[:, len(prefix) :] = np.ascontiguousarray(arr).view(np.uint8).reshape(-1, 8)
    return rows.tobytes()


def _is_iterator(values: Iterable[float]) -> bool:
    return iter(values) is values


def method_message(
    method: Method, threshold: float | None, sample: bool
) -> outliers_pb2.Method:
    """The Method of a DetectRequest. threshold is the z-score or modified
    z-score threshold, or Tukey's k for "iqr"; None takes the server's
    default (2, 3.5, 1.5). sample divides by n - 1 (z-score only)."""
    t = threshold or 0.0
    if method == "zscore":
        return outliers_pb2.Method(z_score=outliers_pb2.ZScore(threshold=t, sample=sample))
    if sample:
        raise ValueError("sample applies to the zscore method only")
    if method == "modified":
        return outliers_pb2.Method(modified_z_score=outliers_pb2.ModifiedZScore(threshold=t))
    if method == "iqr":
        return outliers_pb2.Method(iqr=outliers_pb2.Iqr(k=t))
    raise ValueError(f"method {method!r}: expected zscore, modified or iqr")


@dataclass(frozen=True)
class SeriesStats:
    """What a series was judged against: for zscore mean and sigma; for
    modified median, mad and mean_absolute_deviation; for iqr q1, q3,
    lower_fence and upper_fence."""

    name: str
    count: int
    outliers: int
    stats: dict[str, float]


@dataclass(frozen=True)
class OutlierResult:
    """Positions of the outliers (ascending), the score of every value, and
    the statistics of each series."""

    indices: list[int]
    scores: list[float]
    series: list[SeriesStats]

    @classmethod
    def from_pb(cls, reply: outliers_pb2.DetectResponse) -> OutlierResult:
        series = []
        for s in reply.series:
            kind = s.WhichOneof("stats")
            stats: dict[str, float] = {}
            if kind is not None:
                msg = getattr(s, kind)
                stats = {f.name: float(getattr(msg, f.name)) for f in msg.DESCRIPTOR.fields}
            series.append(SeriesStats(s.name, s.count, s.outliers, stats))
        return cls(list(reply.indices), list(reply.scores), series)
