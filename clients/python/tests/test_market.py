"""MACD and indicator rows from dataport.market.v1 ComputeIndicators,
checked against TA-Lib (the PyPI wheel, 0.8.2) over the symbol's whole
stored history, as the server computes them; DataFrames with pandas."""

from __future__ import annotations

import datetime
import math
import sys

import grpc
import numpy as np
import pandas as pd
import pytest
import talib
from helpers import expect_status

import dataport_client
from dataport_client.dataport.market.v1 import market_pb2

# What "equal to TA-Lib" means here, as in tests/interop/python.
RTOL = 1e-9


def history(client: dataport_client.Client, symbol: str) -> tuple[list[datetime.date], dict[str, np.ndarray]]:
    bars = client.market.GetBars(market_pb2.GetBarsRequest(symbol=symbol), timeout=10).bars
    dates = [datetime.date.fromisoformat(b.date) for b in bars]
    return dates, {k: np.array([getattr(b, k) for b in bars]) for k in ("high", "low", "close")}


def assert_equal_to_talib(got: list[float], want: np.ndarray, what: str) -> None:
    got_a = np.array(got)
    assert np.array_equal(np.isnan(got_a), np.isnan(want)), f"{what}: NaN where TA-Lib has none, or the reverse"
    np.testing.assert_allclose(got_a, want, rtol=RTOL, atol=0, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("periods", [(12, 26, 9), (5, 13, 4)])
def test_macd_rows_equal_talib(client: dataport_client.Client, periods: tuple[int, int, int]) -> None:
    fast, slow, signal = periods
    dates, h = history(client, "IBM")
    line, sig, hist = talib.MACD(h["close"], fast, slow, signal)
    rows = client.macd("IBM", "2010-01-04", datetime.date(2010, 12, 31), fast=fast, slow=slow, signal=signal)
    want = [i for i, d in enumerate(dates) if datetime.date(2010, 1, 4) <= d <= datetime.date(2010, 12, 31)]
    assert len(rows) == len(want) == 252
    assert [r.date for r in rows] == [dates[i] for i in want]
    assert all(isinstance(r, dataport_client.MacdRow) for r in rows)
    assert_equal_to_talib([r.macd for r in rows], line[want], "macd")
    assert_equal_to_talib([r.signal for r in rows], sig[want], "signal")
    assert_equal_to_talib([r.histogram for r in rows], hist[want], "histogram")


def test_macd_rows_of_the_whole_history_start_with_the_warm_up(client: dataport_client.Client) -> None:
    dates, h = history(client, "GOOG")
    line, sig, _ = talib.MACD(h["close"], 12, 26, 9)
    rows = client.macd("GOOG")
    assert [r.date for r in rows] == dates
    # MACD(12, 26, 9) has a lookback of 33 bars: NaN there, as in TA-Lib.
    assert all(math.isnan(r.macd) and math.isnan(r.signal) for r in rows[:33])
    assert not any(math.isnan(r.signal) for r in rows[33:])
    assert_equal_to_talib([r.signal for r in rows], sig, "signal")
    assert rows.without_warmup() == rows[33:]


def test_macd_as_a_dataframe(client: dataport_client.Client) -> None:
    rows = client.macd("AAPL", "2012-01-01", "2012-03-31")
    df = rows.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert df.shape == (len(rows), 3) and len(rows) == 62
    assert list(df.columns) == ["macd", "signal", "histogram"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "date"
    assert df.index[0] == pd.Timestamp("2012-01-03") and df.index[-1] == pd.Timestamp("2012-03-30")
    assert df["signal"].tolist() == [r.signal for r in rows]


def test_indicator_specs_give_talib_columns_and_rows(client: dataport_client.Client) -> None:
    dates, h = history(client, "MSFT")
    table = client.indicators("MSFT", ["sma:20", "rsi", "atr:10", "bollinger:20,2,2"], "2013-01-02", "2013-03-01")
    assert list(table.columns) == [
        "sma_20",
        "rsi_14",
        "atr_10",
        "bollinger_20_2_2_upper",
        "bollinger_20_2_2_middle",
        "bollinger_20_2_2_lower",
    ]
    want = [i for i, d in enumerate(dates) if d in set(table.dates)]
    assert len(want) == len(table.dates) == 41
    assert_equal_to_talib(table.columns["sma_20"], talib.SMA(h["close"], 20)[want], "sma_20")
    assert_equal_to_talib(table.columns["rsi_14"], talib.RSI(h["close"], 14)[want], "rsi_14")
    assert_equal_to_talib(table.columns["atr_10"], talib.ATR(h["high"], h["low"], h["close"], 10)[want], "atr_10")
    upper, _, _ = talib.BBANDS(h["close"], 20, 2.0, 2.0, 0)
    assert_equal_to_talib(table.columns["bollinger_20_2_2_upper"], upper[want], "bollinger upper")
    rows = table.rows
    assert rows[0].date == datetime.date(2013, 1, 2)
    assert rows[-1].values["rsi_14"] == table.columns["rsi_14"][-1]
    df = table.to_dataframe()
    assert df.shape == (41, 6)
    assert df["atr_10"].tolist() == table.columns["atr_10"]


def test_a_bad_indicator_spec_is_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="expected sma, ema"):
        dataport_client.market.parse_indicator("vwap")
    with pytest.raises(ValueError, match="whole numbers"):
        dataport_client.market.parse_indicator("sma:x")


def test_an_unknown_symbol_is_not_found(client: dataport_client.Client) -> None:
    with expect_status(grpc.StatusCode.NOT_FOUND, "NOPE"):
        client.macd("NOPE")


def test_a_reversed_range_is_invalid_argument(client: dataport_client.Client) -> None:
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT):
        client.macd("AAPL", "2012-12-31", "2012-01-01")


def test_to_dataframe_without_pandas_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    rows = dataport_client.MacdRows([dataport_client.MacdRow(datetime.date(2020, 1, 2), 1.0, 0.5, 0.5)])
    with pytest.raises(ImportError, match=r"pip install 'dataport-client\[pandas\]'"):
        rows.to_dataframe()
