"""MACD and indicator rows from dataport.market.v1 ComputeIndicators,
checked against TA-Lib (the PyPI wheel, 0.8.2) over the symbol's whole
stored history, as the server computes them: over split- and
dividend-adjusted prices by default, over prices as traded with
adjusted=False; DataFrames with pandas."""

from __future__ import annotations

import datetime
import math
import sys
import uuid

import grpc
import numpy as np
import pandas as pd
import pytest
import talib
from helpers import expect_status

import dataport_client
from dataport_client.compat import indicator_pb2
from dataport_client.dataport.market.v1 import market_pb2

# What "equal to TA-Lib" means here, as in tests/interop/python.
RTOL = 1e-9


def history(
    client: dataport_client.Client, symbol: str, adjusted: bool = True
) -> tuple[list[datetime.date], dict[str, np.ndarray]]:
    """The whole stored history, adjusted or as traded, as TA-Lib wants it."""
    reply = client.market.GetBars(market_pb2.GetBarsRequest(symbol=symbol, adjusted=adjusted), timeout=10)
    assert reply.adjusted == adjusted, "every sample symbol carries adjusted closes"
    bars = reply.bars
    dates = [datetime.date.fromisoformat(b.date) for b in bars]
    return dates, {k: np.array([getattr(b, k) for b in bars]) for k in ("high", "low", "close")}


def assert_equal_to_talib(got: list[float], want: np.ndarray, what: str) -> None:
    got_a = np.array(got)
    assert np.array_equal(np.isnan(got_a), np.isnan(want)), f"{what}: NaN where TA-Lib has none, or the reverse"
    np.testing.assert_allclose(got_a, want, rtol=RTOL, atol=0, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("adjusted", [True, False], ids=["adjusted", "as-traded"])
@pytest.mark.parametrize("periods", [(12, 26, 9), (5, 13, 4)])
def test_macd_rows_equal_talib(client: dataport_client.Client, periods: tuple[int, int, int], adjusted: bool) -> None:
    fast, slow, signal = periods
    dates, h = history(client, "IBM", adjusted)
    line, sig, hist = talib.MACD(h["close"], fast, slow, signal)
    rows = client.macd(
        "IBM", "2010-01-04", datetime.date(2010, 12, 31), fast=fast, slow=slow, signal=signal, adjusted=adjusted
    )
    assert rows.adjusted is adjusted
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
    assert rows.adjusted and rows.without_warmup().adjusted


# The sample's MSFT split 2:1 between these days (zcat data/sample/bars.csv.gz
# | grep -E 'MSFT,2003-02-1[48]'): closes as traded, and its adj_close column.
MSFT_SPLIT_DAYS = [datetime.date(2003, 2, 14), datetime.date(2003, 2, 18)]
MSFT_TRADED = [48.3, 24.96]
MSFT_ADJUSTED = [16.076442938105, 16.61565282547]


def test_indicators_are_over_adjusted_prices_unless_asked_for_prices_as_traded(client: dataport_client.Client) -> None:
    # SMA(1) is the close itself.
    default = client.indicators("MSFT", ["sma:1"], *MSFT_SPLIT_DAYS)
    assert default.adjusted is True
    assert default.dates == MSFT_SPLIT_DAYS
    np.testing.assert_allclose(default.columns["sma_1"], MSFT_ADJUSTED, rtol=1e-12)
    traded = client.indicators("MSFT", ["sma:1"], *MSFT_SPLIT_DAYS, adjusted=False)
    assert traded.adjusted is False
    assert traded.columns["sma_1"] == MSFT_TRADED
    assert client.indicators("MSFT", ["sma:1"], *MSFT_SPLIT_DAYS, adjusted=True) == default


def test_macd_pinned_over_adjusted_closes_and_over_closes_as_traded(client: dataport_client.Client) -> None:
    # TA-Lib 0.8.2's MACD(12, 26, 9) over AAPL's whole history in the sample,
    # at 2010-01-04: over its adj_close column, and over its close column:
    #   talib.MACD(np.array(adj_closes or closes), 12, 26, 9)
    adjusted = client.macd("AAPL", "2010-01-04", "2010-01-04")
    assert adjusted.adjusted is True
    assert adjusted[0].macd == pytest.approx(0.504610018895864, rel=1e-12)
    assert adjusted[0].signal == pytest.approx(0.27609933426313843, rel=1e-12)
    traded = client.macd("AAPL", "2010-01-04", "2010-01-04", adjusted=False)
    assert traded.adjusted is False
    assert traded[0].macd == pytest.approx(3.926500332345171, rel=1e-12)
    assert traded[0].signal == pytest.approx(2.1483999269706064, rel=1e-12)


def test_macd_as_traded_is_what_the_seed_getmacd_answers(client: dataport_client.Client) -> None:
    request = indicator_pb2.MACDRequest(symbol="GOOG", start_date="2012-01-03", end_date="2012-12-31")
    seed = client.indicator.GetMACD(request, timeout=10).macd
    rows = client.macd("GOOG", "2012-01-03", "2012-12-31", adjusted=False)
    assert [d.date for d in seed] == [r.date.isoformat() for r in rows] and len(rows) == 250
    # The seed answers float32.
    np.testing.assert_allclose([d.macd for d in seed], [r.macd for r in rows], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([d.signal for d in seed], [r.signal for r in rows], rtol=1e-5, atol=1e-6)


def test_symbols_are_found_in_any_case_and_answered_upper_case(client: dataport_client.Client) -> None:
    lower = client.indicators("msft", ["rsi"], "2012-01-03", "2012-01-31")
    assert lower.symbol == "MSFT"
    assert lower == client.indicators("MSFT", ["rsi"], "2012-01-03", "2012-01-31")
    assert client.macd("Ibm", "2012-01-03", "2012-01-31") == client.macd("IBM", "2012-01-03", "2012-01-31")


def import_bars(
    client: dataport_client.Client, symbol: str, closes: list[float], adj_closes: list[float] | None = None
) -> None:
    """Imports one bar a day from 2020-01-01 with these closes (and adjusted
    closes, when given)."""
    bars = []
    for i, close in enumerate(closes):
        bar = market_pb2.Bar(
            date=(datetime.date(2020, 1, 1) + datetime.timedelta(days=i)).isoformat(),
            open=close,
            high=close + 1,
            low=close - 1,
            close=close,
        )
        if adj_closes is not None:
            bar.adj_close = adj_closes[i]
        bars.append(bar)
    reply = client.market.ImportBars(iter([market_pb2.ImportBarsRequest(symbol=symbol, bars=bars)]), timeout=10)
    assert reply.imported == len(closes)


def test_a_symbol_without_adjusted_closes_answers_prices_as_traded(client: dataport_client.Client) -> None:
    symbol = f"XRAW-{uuid.uuid4().hex[:10].upper()}"
    closes = [10.0 + i for i in range(40)]
    import_bars(client, symbol, closes)
    table = client.indicators(symbol, ["sma:1"])
    assert table.adjusted is False
    assert table.columns["sma_1"] == closes
    assert client.indicators(symbol, ["sma:1"], adjusted=False) == table


def test_an_imported_split_is_adjusted_away(client: dataport_client.Client) -> None:
    # A 2:1 split after day 20: closes halve, adjusted closes do not move.
    symbol = f"XSPLIT-{uuid.uuid4().hex[:10].upper()}"
    closes = [100.0] * 20 + [50.0] * 20
    import_bars(client, symbol, closes, [50.0] * 40)
    adjusted = client.indicators(symbol, ["sma:1"])
    assert adjusted.adjusted is True
    assert adjusted.columns["sma_1"] == [50.0] * 40
    traded = client.indicators(symbol, ["sma:1"], adjusted=False)
    assert traded.adjusted is False
    assert traded.columns["sma_1"] == closes


def test_delete_symbol_removes_an_imported_symbol(client: dataport_client.Client) -> None:
    symbol = f"xdel-{uuid.uuid4().hex[:10]}"
    import_bars(client, symbol, [1.0, 2.0, 3.0])
    reply = client.market.DeleteSymbol(market_pb2.DeleteSymbolRequest(symbol=symbol), timeout=10)
    assert (reply.symbol, reply.deleted) == (symbol.upper(), 3)
    with expect_status(grpc.StatusCode.NOT_FOUND, symbol.upper()):
        client.indicators(symbol, ["sma:1"])
    with expect_status(grpc.StatusCode.NOT_FOUND, symbol.upper()):
        client.market.DeleteSymbol(market_pb2.DeleteSymbolRequest(symbol=symbol), timeout=10)


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
