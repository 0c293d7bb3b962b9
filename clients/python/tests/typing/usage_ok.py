"""Typed use of dataport_client: mypy --strict must pass this file, and
assert_type pins the types the .pyi stubs give (not Any)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, assert_type

import grpc
import pandas

import dataport_client
from dataport_client.compat import helloworld_pb2, route_guide_pb2
from dataport_client.dataport.files.v1 import files_pb2
from dataport_client.dataport.market.v1 import market_pb2
from dataport_client.google.bytestream import bytestream_pb2


def points() -> Iterator[route_guide_pb2.Point]:
    yield route_guide_pb2.Point(latitude=1, longitude=2)


def use(client: dataport_client.Client) -> None:
    reply = client.greeter.SayHello(helloworld_pb2.HelloRequest(name="you"), timeout=5)
    assert_type(reply, helloworld_pb2.HelloReply)
    assert_type(reply.message, str)

    for feature in client.route_guide.ListFeatures(route_guide_pb2.Rectangle()):
        assert_type(feature, route_guide_pb2.Feature)
        assert_type(feature.location.latitude, int)
    summary = client.route_guide.RecordRoute(points())
    assert_type(summary, route_guide_pb2.RouteSummary)

    bars = client.market.GetBars(market_pb2.GetBarsRequest(symbol="AAPL"))
    assert_type(bars.bars[0].close, float)
    status = client.bytestream.QueryWriteStatus(bytestream_pb2.QueryWriteStatusRequest(resource_name="x"))
    assert_type(status.committed_size, int)
    for piece in client.files.Download(files_pb2.DownloadRequest(names=["a"])):
        assert_type(piece.WhichOneof("kind"), Literal["file", "chunk"] | None)

    info = client.upload_file("a.bin", progress=lambda done, total: None, resume=True)
    assert_type(info, dataport_client.FileInfo)
    assert_type(info.size, int)
    assert_type(client.download_file("a.bin", "out/"), dataport_client.FileInfo)

    rows = client.macd("AAPL", datetime.date(2012, 1, 3), "2012-12-31")
    assert_type(rows, dataport_client.MacdRows)
    assert_type(rows[0].signal, float)
    assert_type(rows.to_dataframe(), pandas.DataFrame)
    table = client.indicators("AAPL", ["sma:20", market_pb2.Indicator(rsi=market_pb2.Rsi(period=14))])
    assert_type(table.columns, dict[str, list[float]])
    assert_type(table.adjusted, bool)
    traded = client.macd("AAPL", adjusted=False)
    assert_type(traded.adjusted, bool)
    assert_type(traded.without_warmup(), dataport_client.MacdRows)

    found = client.detect_outliers([1.0, 2.0, 30.0], method="iqr")
    assert_type(found.indices, list[int])
    assert_type(client.detect_outliers_compat([1.0]), list[int])

    try:
        client.stat_file("nothing")
    except grpc.RpcError as e:
        assert isinstance(e, grpc.Call)
        assert_type(e.code(), grpc.StatusCode)


def connect(ca_pem: bytes) -> None:
    # ca, cert and key: paths or PEM bytes; token a str.
    with dataport_client.Client("https://localhost:50051", ca=ca_pem, cert=Path("c.pem"), key="c.key", token="t") as c:
        assert_type(c.secure, bool)
    assert_type(dataport_client.tls_credentials(ca="ca.pem"), grpc.ChannelCredentials)
