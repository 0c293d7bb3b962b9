"""dataport.market.v1.MarketService: ImportBars, ListSymbols, GetBars,
ComputeIndicators, RenderChart and DeleteSymbol, against the sample bars the
server loads into an empty store and against bars the tests import.
Indicators are checked against TA-Lib itself. Prices are split- and
dividend-adjusted unless a request says `adjusted=False`: tests that compare
with the sample file's prices ask for prices as traded, and the adjusted
series is checked against the sample's adj_close column.

The session server is shared, so every test that imports (or deletes) uses
symbols of its own (`new_symbol`), which sort after the sample symbols."""

import asyncio
import csv
import datetime
import gzip
import io
import math
import time
import uuid
import xml.etree.ElementTree as ET

import grpc
import indicator_pb2
import indicator_pb2_grpc
import numpy as np
import pytest
import talib
from dataport.market.v1 import market_pb2 as m
from dataport.market.v1 import market_pb2_grpc as m_grpc
from PIL import Image

from interop import REPO_ROOT, RPC_TIMEOUT, expect_status

SAMPLE_BARS = REPO_ROOT / "data/sample/bars.csv.gz"
SAMPLE = {
    "AAPL": (3270, "2000-03-01", "2013-03-01"),
    "GOOG": (2148, "2004-08-19", "2013-03-01"),
    "IBM": (3270, "2000-03-01", "2013-03-01"),
    "MSFT": (3270, "2000-03-01", "2013-03-01"),
}
MAX_CHUNK = 64 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What "matches TA-Lib" means here.
RTOL = 1e-9


@pytest.fixture
def stub(channel):
    return m_grpc.MarketServiceStub(channel)


@pytest.fixture
def any_stub(api):
    """The stub through grpcio's synchronous API or through grpc.aio."""
    return api.stub(m_grpc.MarketServiceStub)


def new_symbol(tag):
    """A symbol no other test uses, upper-case as the server stores and
    answers symbols; 'X' keeps it after the sample symbols."""
    return f"X{tag}-{uuid.uuid4().hex[:10]}".upper()


def bar(date, o, h, l, c, v=None):
    return m.Bar(date=date, open=o, high=h, low=l, close=c, volume=v)


def import_csv(stub, symbol, text, piece=7):
    """Sends `text` in pieces of `piece` bytes, so lines and numbers are cut
    anywhere; the symbol in the first message only."""
    data = text.encode()
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)] or [b""]
    requests = [m.ImportBarsRequest(symbol=symbol, csv=pieces[0])]
    requests += [m.ImportBarsRequest(csv=p) for p in pieces[1:]]
    return stub.ImportBars(iter(requests), timeout=RPC_TIMEOUT)


def import_bars(stub, symbol, bars, per_message=50):
    requests = [
        m.ImportBarsRequest(symbol=symbol if i == 0 else "", bars=bars[i : i + per_message])
        for i in range(0, max(len(bars), 1), per_message)
    ]
    return stub.ImportBars(iter(requests), timeout=RPC_TIMEOUT)


def get_bars_reply(stub, symbol, start="", end="", adjusted=None):
    """GetBars; `adjusted` None leaves the field unset (the server's default,
    adjusted)."""
    request = m.GetBarsRequest(symbol=symbol, start_date=start, end_date=end)
    if adjusted is not None:
        request.adjusted = adjusted
    return stub.GetBars(request, timeout=RPC_TIMEOUT)


def get_bars(stub, symbol, start="", end="", adjusted=None):
    return list(get_bars_reply(stub, symbol, start, end, adjusted).bars)


def summaries(stub):
    return {s.symbol: s for s in stub.ListSymbols(m.ListSymbolsRequest(), timeout=RPC_TIMEOUT).symbols}


def as_tuple(b):
    return (b.date, b.open, b.high, b.low, b.close, b.volume if b.HasField("volume") else None)


def with_adj_close(b):
    """as_tuple and the bar's adjusted close (None when absent)."""
    return (*as_tuple(b), b.adj_close if b.HasField("adj_close") else None)


def synthetic_bars(n, start_year=2020):
    """n weekdays of made-up but well-formed bars, as pb Bars."""
    out = []
    day = 0
    d = datetime.date(start_year, 1, 1)
    while len(out) < n:
        if d.weekday() < 5:
            close = 50 + 10 * math.sin(day / 5) + 0.3 * day
            out.append(bar(d.isoformat(), close - 0.5, close + 1 + day % 3, close - 1.5, close, 1000.0 + day))
            day += 1
        d += datetime.timedelta(days=1)
    return out


def load_sample():
    """The sample file, as {symbol: [(date, open, high, low, close, volume,
    adj_close)]}: prices as traded, and Quandl's adjusted close."""
    out = {}
    with gzip.open(SAMPLE_BARS, "rt", newline="") as f:
        for r in csv.DictReader(f):
            optional = tuple(float(r[k]) if r[k] else None for k in ("volume", "adj_close"))
            out.setdefault(r["symbol"], []).append((r["date"], *(float(r[k]) for k in ("open", "high", "low", "close")), *optional))
    return out


@pytest.fixture(scope="module")
def sample():
    return load_sample()


# ImportBars


CSV_TEXT = """Date,Open,High,Low,Close,Adj Close,Volume
2021-03-02,10.5,11.25,10,11,0.1,1200
2021-03-01,10,10.75,9.5,10.5,0.1,1000
2021-03-03,11,12,10.75,11.75,0.1,
"""


def test_import_of_csv_pieces_cut_mid_line_stores_every_bar(stub):
    symbol = new_symbol("csv")
    reply = import_csv(stub, symbol, CSV_TEXT, piece=5)
    assert reply.symbol == symbol
    assert reply.imported == 3
    assert (reply.summary.symbol, reply.summary.bars, reply.summary.first_date, reply.summary.last_date) == (
        symbol,
        3,
        "2021-03-01",
        "2021-03-03",
    )
    # "Adj Close" is the adjusted close: the bars carry it, and the prices
    # as traded are what the file says.
    assert reply.summary.adjusted
    assert [with_adj_close(b) for b in get_bars(stub, symbol, adjusted=False)] == [
        ("2021-03-01", 10.0, 10.75, 9.5, 10.5, 1000.0, 0.1),
        ("2021-03-02", 10.5, 11.25, 10.0, 11.0, 1200.0, 0.1),
        ("2021-03-03", 11.0, 12.0, 10.75, 11.75, None, 0.1),
    ]
    # Adjusted (the default), every close is its adjusted close.
    adjusted = get_bars_reply(stub, symbol)
    assert adjusted.adjusted
    assert [b.close for b in adjusted.bars] == pytest.approx([0.1] * 3, rel=1e-12)
    assert summaries(stub)[symbol] == reply.summary


@pytest.mark.parametrize("piece", [1, 3, 64, 1 << 20], ids=["1-byte", "3-bytes", "64-bytes", "whole"])
def test_any_cut_of_the_csv_stores_the_same_bars(stub, piece):
    symbol = new_symbol(f"cut{piece}")
    assert import_csv(stub, symbol, CSV_TEXT, piece=piece).imported == 3
    assert [b.date for b in get_bars(stub, symbol)] == ["2021-03-01", "2021-03-02", "2021-03-03"]


def test_csv_columns_in_any_order_and_case_with_crlf_lines_and_no_volume(stub):
    symbol = new_symbol("order")
    text = "CLOSE,low,Ticker,DATE,high,OPEN\r\n2.5,1,Z,2019-12-31,3,2\r\n\r\n3.5,2,Z,2020-01-02,4,3\r\n"
    assert import_csv(stub, symbol, text, piece=4).imported == 2
    assert [as_tuple(b) for b in get_bars(stub, symbol)] == [
        ("2019-12-31", 2.0, 3.0, 1.0, 2.5, None),
        ("2020-01-02", 3.0, 4.0, 2.0, 3.5, None),
    ]


def test_import_of_bar_messages_in_any_order_over_several_messages(stub):
    symbol = new_symbol("bars")
    bars = synthetic_bars(120)
    shuffled = bars[::2] + bars[1::2][::-1]
    shuffled[5].ClearField("volume")
    reply = import_bars(stub, symbol, shuffled, per_message=17)
    assert reply.imported == 120
    assert (reply.summary.bars, reply.summary.first_date, reply.summary.last_date) == (120, bars[0].date, bars[-1].date)
    stored = get_bars(stub, symbol)
    assert [b.date for b in stored] == [b.date for b in bars]
    by_date = {b.date: b for b in shuffled}
    assert [as_tuple(b) for b in stored] == [as_tuple(by_date[b.date]) for b in stored]
    assert not stored[[b.date for b in stored].index(shuffled[5].date)].HasField("volume")


def test_later_messages_may_repeat_the_symbol(stub):
    symbol = new_symbol("repeat")
    requests = [
        m.ImportBarsRequest(symbol=symbol, bars=[bar("2020-01-02", 1, 2, 1, 2)]),
        m.ImportBarsRequest(symbol=symbol, bars=[bar("2020-01-03", 1, 2, 1, 2)]),
        m.ImportBarsRequest(bars=[bar("2020-01-06", 1, 2, 1, 2)]),
    ]
    assert stub.ImportBars(iter(requests), timeout=RPC_TIMEOUT).imported == 3


def test_reimport_replaces_a_stored_date_and_adds_new_ones(stub):
    symbol = new_symbol("replace")
    import_bars(stub, symbol, [bar("2020-01-02", 1, 2, 0.5, 1.5, 10), bar("2020-01-03", 2, 3, 1, 2.5, 20), bar("2020-01-06", 3, 4, 2, 3.5, 30)])
    reply = import_csv(stub, symbol, "date,open,high,low,close,volume\n2020-01-03,9,9.5,8,9.25,99\n2020-01-07,4,5,3,4.5,40\n")
    assert reply.imported == 2  # replaced dates count
    assert (reply.summary.bars, reply.summary.first_date, reply.summary.last_date) == (4, "2020-01-02", "2020-01-07")
    assert [as_tuple(b) for b in get_bars(stub, symbol)] == [
        ("2020-01-02", 1.0, 2.0, 0.5, 1.5, 10.0),
        ("2020-01-03", 9.0, 9.5, 8.0, 9.25, 99.0),
        ("2020-01-06", 3.0, 4.0, 2.0, 3.5, 30.0),
        ("2020-01-07", 4.0, 5.0, 3.0, 4.5, 40.0),
    ]


def test_import_over_grpc_aio_from_an_async_generator(server):
    symbol = new_symbol("aio")
    bars = synthetic_bars(40)

    async def requests():
        yield m.ImportBarsRequest(symbol=symbol)
        for i in range(0, len(bars), 10):
            await asyncio.sleep(0)
            yield m.ImportBarsRequest(bars=bars[i : i + 10])

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            s = m_grpc.MarketServiceStub(ch)
            reply = await s.ImportBars(requests(), timeout=RPC_TIMEOUT)
            got = await s.GetBars(m.GetBarsRequest(symbol=symbol), timeout=RPC_TIMEOUT)
            return reply, list(got.bars)

    reply, stored = asyncio.run(main())
    assert (reply.symbol, reply.imported, reply.summary.bars) == (symbol, 40, 40)
    assert [as_tuple(b) for b in stored] == [as_tuple(b) for b in bars]


HEAD = "date,open,high,low,close\n"
GOOD_ROW = "2020-01-02,1,2,1,2\n"


@pytest.mark.parametrize(
    "text,words",
    [
        (HEAD + GOOD_ROW + "2020-01-03,1,x,1,2\n", ["csv", "line 3", "high", '"x"']),
        (HEAD + "2020-01-02,1,1,2,1\n", ["line 2", "high", "below", "low"]),
        (HEAD + GOOD_ROW + GOOD_ROW, ["line 3", "2020-01-02", "already", "line 2"]),
        (HEAD + GOOD_ROW + "2020-02-30,1,2,1,2\n", ["line 3", '"2020-02-30"']),
        (HEAD + GOOD_ROW + "2020-01-03,1,2,1,NaN\n", ["line 3", "close"]),
        (HEAD + GOOD_ROW + "2020-01-03,1,inf,1,2\n", ["line 3", "high"]),
        (HEAD + "2020-01-02,1,2\n", ["line 2"]),
        ("date,open,high,low\n" + "2020-01-02,1,2,1\n", ["csv", "close", "column"]),
        # The second name as the header writes it.
        ("date,open,high,low,close,Close\n", ["csv", "`Close`", "twice"]),
        ("\n", ["csv", "empty"]),
    ],
    ids=["not-a-number", "high-below-low", "date-twice", "no-such-day", "nan", "inf", "short-row", "no-close-column", "close-twice", "empty-file"],
)
def test_a_bad_csv_is_refused_whole_naming_line_and_reason(stub, text, words):
    symbol = new_symbol("badcsv")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT) as info:
        import_csv(stub, symbol, text)
    for word in words:
        assert word in info.value.details(), info.value.details()
    assert symbol not in summaries(stub)
    with expect_status(grpc.StatusCode.NOT_FOUND, symbol):
        get_bars(stub, symbol)


@pytest.mark.parametrize(
    "bad,words",
    [
        (bar("2020-01-06", 1, 2, 1, math.nan), ["bars[2]", "close", "finite"]),
        (bar("2020-01-06", 1, math.inf, 1, 2), ["bars[2]", "high", "finite"]),
        (bar("2020-01-06", 1, 2, 1, 2, math.nan), ["bars[2]", "volume", "finite"]),
        (bar("2020-01-06", 1, 1, 2, 1), ["bars[2]", "high", "below", "low"]),
        (bar("2020-1-6", 1, 2, 1, 2), ["bars[2]", '"2020-1-6"', "YYYY-MM-DD"]),
        (bar("", 1, 2, 1, 2), ["bars[2]", "YYYY-MM-DD"]),
        (bar("2020-01-02", 1, 2, 1, 2), ["bars[2]", "2020-01-02", "bars[0]"]),
    ],
    ids=["nan-close", "inf-high", "nan-volume", "high-below-low", "short-date", "no-date", "date-twice"],
)
def test_a_bad_bar_refuses_the_whole_stream_and_keeps_what_was_stored(stub, bad, words):
    symbol = new_symbol("badbar")
    stored = [bar("2020-01-02", 1, 2, 1, 1.5, 10), bar("2020-01-03", 2, 3, 1, 2.5, 20)]
    import_bars(stub, symbol, stored)
    before = summaries(stub)[symbol]
    # Would replace both stored dates and add one, had the third bar been good.
    attempt = [bar("2020-01-02", 7, 8, 6, 7), bar("2020-01-03", 7, 8, 6, 7), bad, bar("2020-01-07", 7, 8, 6, 7)]
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT) as info:
        import_bars(stub, symbol, attempt, per_message=1)
    for word in words:
        assert word in info.value.details(), info.value.details()
    assert summaries(stub)[symbol] == before
    assert [as_tuple(b) for b in get_bars(stub, symbol)] == [as_tuple(b) for b in stored]


def test_a_bad_line_late_in_a_large_csv_stores_nothing(stub):
    symbol = new_symbol("late")
    rows = [f"{b.date},{b.open},{b.high},{b.low},{b.close}" for b in synthetic_bars(500)]
    rows[497] = rows[497].rsplit(",", 1)[0] + ",oops"
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "line 499", "close"):
        import_csv(stub, symbol, HEAD + "\n".join(rows) + "\n", piece=1000)
    assert symbol not in summaries(stub)


@pytest.mark.parametrize(
    "requests,words",
    [
        (lambda sym: [], ["empty"]),
        (lambda sym: [m.ImportBarsRequest(csv=HEAD.encode())], ["symbol"]),
        (lambda sym: [m.ImportBarsRequest(symbol="A B", csv=HEAD.encode())], ["symbol", '"A B"']),
        (lambda sym: [m.ImportBarsRequest(symbol="X" * 33, csv=HEAD.encode())], ["symbol", "32"]),
        (lambda sym: [m.ImportBarsRequest(symbol=sym)], ["csv", "bars"]),
        (
            lambda sym: [m.ImportBarsRequest(symbol=sym, csv=HEAD.encode()), m.ImportBarsRequest(symbol="OTHER", csv=GOOD_ROW.encode())],
            ["symbol", '"OTHER"'],
        ),
        (
            lambda sym: [m.ImportBarsRequest(symbol=sym, csv=HEAD.encode()), m.ImportBarsRequest(bars=[bar("2020-01-02", 1, 2, 1, 2)])],
            ["csv", "bars"],
        ),
    ],
    ids=["no-messages", "no-symbol", "bad-symbol", "33-byte-symbol", "nothing-to-import", "two-symbols", "csv-and-bars"],
)
def test_ill_formed_import_streams_are_invalid_argument(stub, requests, words):
    symbol = new_symbol("stream")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT) as info:
        stub.ImportBars(iter(requests(symbol)), timeout=RPC_TIMEOUT)
    for word in words:
        assert word in info.value.details(), info.value.details()
    assert symbol not in summaries(stub)


def test_imported_bars_are_what_the_seed_indicator_service_reads(stub, channel):
    symbol = new_symbol("seed")
    bars = synthetic_bars(40)
    import_bars(stub, symbol, bars)
    reply = indicator_pb2_grpc.IndicatorStub(channel).GetMACD(
        indicator_pb2.MACDRequest(start_date=bars[0].date, end_date=bars[-1].date, symbol=symbol), timeout=RPC_TIMEOUT
    )
    # MACD(12, 26, 9) has a 33-bar warm-up; the seed service leaves those rows out.
    assert [d.date for d in reply.macd] == [b.date for b in bars[33:]]
    want, _, _ = talib.MACD(np.array([b.close for b in bars]), 12, 26, 9)
    assert [d.macd for d in reply.macd] == pytest.approx(list(want[33:]), rel=1e-6)


# ListSymbols


def test_list_symbols_names_the_sample_with_counts_and_spans_in_symbol_order(any_stub):
    listed = any_stub.ListSymbols(m.ListSymbolsRequest(), timeout=RPC_TIMEOUT).symbols
    names = [s.symbol for s in listed]
    assert names == sorted(names)
    by = {s.symbol: (s.bars, s.first_date, s.last_date) for s in listed}
    for symbol, want in SAMPLE.items():
        assert by[symbol] == want


def test_list_symbols_shows_an_import_at_once(stub):
    symbol = new_symbol("list")
    assert symbol not in summaries(stub)
    import_bars(stub, symbol, synthetic_bars(3))
    listed = summaries(stub)[symbol]
    assert (listed.bars, listed.first_date, listed.last_date) == (3, "2020-01-01", "2020-01-03")


# GetBars


def test_get_bars_as_traded_without_dates_answers_the_whole_stored_history(stub, sample):
    for symbol in SAMPLE:
        reply = get_bars_reply(stub, symbol, adjusted=False)
        assert not reply.adjusted
        got = [with_adj_close(b) for b in reply.bars]
        assert got == sample[symbol], symbol


@pytest.mark.parametrize(
    "start,end,first,last,count",
    [
        ("2010-01-04", "2010-01-08", "2010-01-04", "2010-01-08", 5),
        ("2010-01-02", "2010-01-10", "2010-01-04", "2010-01-08", 5),  # weekend bounds
        ("2013-02-25", "", "2013-02-25", "2013-03-01", 5),
        ("", "2000-03-07", "2000-03-01", "2000-03-07", 5),
        ("2012-06-01", "2012-06-01", "2012-06-01", "2012-06-01", 1),
        ("1999-01-01", "2030-12-31", "2000-03-01", "2013-03-01", 3270),
    ],
    ids=["week", "weekend-bounds", "open-end", "open-start", "one-day", "beyond-history"],
)
def test_get_bars_ranges_are_inclusive_and_open_when_empty(stub, sample, start, end, first, last, count):
    got = get_bars(stub, "AAPL", start, end, adjusted=False)
    assert (got[0].date, got[-1].date, len(got)) == (first, last, count)
    dates = [b.date for b in got]
    assert dates == sorted(dates)
    i = [r[0] for r in sample["AAPL"]].index(first)
    assert [with_adj_close(b) for b in got] == sample["AAPL"][i : i + count]
    # The adjusted range is the same days.
    assert [b.date for b in get_bars(stub, "AAPL", start, end)] == dates


@pytest.mark.parametrize(
    "start,end",
    [("2012-01-01", "2012-01-01"), ("2012-01-07", "2012-01-08"), ("1990-01-01", "1999-12-31"), ("2013-03-02", "")],
    ids=["holiday", "weekend", "before-history", "after-history"],
)
def test_a_range_without_trading_days_answers_no_bars(stub, start, end):
    assert get_bars(stub, "IBM", start, end) == []


def test_get_bars_refusals(any_stub):
    with expect_status(grpc.StatusCode.NOT_FOUND, "TSLA"):
        get_bars(any_stub, "TSLA")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol"):
        get_bars(any_stub, "")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol"):
        get_bars(any_stub, "IBM IBM")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "start_date") as info:
        get_bars(any_stub, "IBM", "2012-13-01")
    assert '"2012-13-01"' in info.value.details()
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "end_date"):
        get_bars(any_stub, "IBM", "", "20120101")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "start_date", "end_date", "after"):
        get_bars(any_stub, "IBM", "2012-02-01", "2012-01-31")


# ComputeIndicators


def compute(stub, symbol, indicators, start="", end="", adjusted=None):
    """ComputeIndicators; `adjusted` None leaves the field unset (the
    server's default, adjusted)."""
    request = m.ComputeIndicatorsRequest(symbol=symbol, start_date=start, end_date=end, indicators=indicators)
    if adjusted is not None:
        request.adjusted = adjusted
    reply = stub.ComputeIndicators(request, timeout=RPC_TIMEOUT)
    assert reply.symbol == symbol.upper()
    for column in reply.columns:
        assert len(column.values) == len(reply.dates), column.name
    return reply


def columns(reply):
    return {c.name: np.array(c.values) for c in reply.columns}


def history(stub, symbol, adjusted=None):
    """The whole stored history as TA-Lib wants it, adjusted unless
    adjusted=False."""
    bars = get_bars(stub, symbol, adjusted=adjusted)
    dates = [b.date for b in bars]
    arrays = {k: np.array([getattr(b, k) for b in bars]) for k in ("open", "high", "low", "close")}
    return dates, arrays


def talib_columns(indicator, h):
    """What TA-Lib 0.8.2 answers for one Indicator message over a history,
    with TA-Lib's defaults where the message leaves 0."""
    c = h["close"]
    kind = indicator.WhichOneof("kind")
    p = getattr(indicator, kind)
    if kind == "sma":
        n = p.period or 30
        return {f"sma_{n}": talib.SMA(c, n)}
    if kind == "ema":
        n = p.period or 30
        return {f"ema_{n}": talib.EMA(c, n)}
    if kind == "rsi":
        n = p.period or 14
        return {f"rsi_{n}": talib.RSI(c, n)}
    if kind == "atr":
        n = p.period or 14
        return {f"atr_{n}": talib.ATR(h["high"], h["low"], c, n)}
    if kind == "macd":
        f, s, g = p.fast_period or 12, p.slow_period or 26, p.signal_period or 9
        line, signal, hist = talib.MACD(c, f, s, g)
        base = f"macd_{f}_{s}_{g}"
        return {base: line, f"{base}_signal": signal, f"{base}_hist": hist}
    if kind == "bollinger":
        n, up, down = p.period or 5, p.dev_up or 2.0, p.dev_down or 2.0
        upper, middle, lower = talib.BBANDS(c, n, up, down, 0)
        base = f"bollinger_{n}_{up:g}_{down:g}"
        return {f"{base}_upper": upper, f"{base}_middle": middle, f"{base}_lower": lower}
    raise ValueError(kind)


def assert_matches_talib(got, want, name):
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{name}: NaN where TA-Lib has none, or the reverse"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, equal_nan=True, err_msg=name)


DEFAULTS = [
    m.Indicator(macd=m.Macd()),
    m.Indicator(sma=m.Sma()),
    m.Indicator(rsi=m.Rsi()),
    m.Indicator(atr=m.Atr()),
    m.Indicator(ema=m.Ema()),
    m.Indicator(bollinger=m.Bollinger()),
]
DEFAULT_NAMES = [
    "macd_12_26_9",
    "macd_12_26_9_signal",
    "macd_12_26_9_hist",
    "sma_30",
    "rsi_14",
    "atr_14",
    "ema_30",
    "bollinger_5_2_2_upper",
    "bollinger_5_2_2_middle",
    "bollinger_5_2_2_lower",
]
# Bars without a value from the first stored bar on, per default column.
DEFAULT_WARM_UP = {"macd": 33, "sma": 29, "rsi": 14, "atr": 14, "ema": 29, "bollinger": 4}


def test_parameters_left_at_0_take_talib_defaults_named_in_the_columns(any_stub):
    reply = compute(any_stub, "AAPL", DEFAULTS, "2010-01-04", "2010-01-08")
    assert [c.name for c in reply.columns] == DEFAULT_NAMES
    assert list(reply.dates) == ["2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"]


@pytest.mark.parametrize("symbol", sorted(SAMPLE))
def test_default_indicators_over_the_whole_history_match_talib(stub, symbol):
    dates, h = history(stub, symbol)
    reply = compute(stub, symbol, DEFAULTS)
    assert list(reply.dates) == dates
    got = columns(reply)
    for indicator in DEFAULTS:
        for name, want in talib_columns(indicator, h).items():
            assert_matches_talib(got[name], want, name)


def test_warm_up_is_nan_and_counted_from_the_first_stored_bar(stub):
    reply = compute(stub, "GOOG", DEFAULTS)
    for column in reply.columns:
        values = np.array(column.values)
        lead = DEFAULT_WARM_UP[column.name.split("_")[0]]
        assert np.isnan(values[:lead]).all(), column.name
        assert not np.isnan(values[lead:]).any(), column.name
    # A range starting 10 bars in keeps only the rest of the warm-up...
    dates = list(reply.dates)
    later = compute(stub, "GOOG", [m.Indicator(sma=m.Sma())], dates[10], dates[40])
    assert np.isnan(later.columns[0].values[:19]).all()
    assert not np.isnan(later.columns[0].values[19:]).any()
    # ...and one starting after it has none: values come from the whole history.
    inside = compute(stub, "GOOG", DEFAULTS, "2010-01-04", "2010-12-31")
    full = columns(reply)
    i = dates.index("2010-01-04")
    for column in inside.columns:
        assert not np.isnan(column.values).any(), column.name
        assert list(column.values) == list(full[column.name][i : i + len(inside.dates)]), column.name


PARAMETERISED = [
    m.Indicator(sma=m.Sma(period=5)),
    m.Indicator(sma=m.Sma(period=200)),
    m.Indicator(ema=m.Ema(period=12)),
    m.Indicator(ema=m.Ema(period=2)),
    m.Indicator(macd=m.Macd(fast_period=5, slow_period=35, signal_period=5)),
    m.Indicator(macd=m.Macd(fast_period=26, slow_period=12, signal_period=9)),
    m.Indicator(macd=m.Macd(signal_period=1)),
    m.Indicator(rsi=m.Rsi(period=2)),
    m.Indicator(rsi=m.Rsi(period=100)),
    m.Indicator(atr=m.Atr(period=1)),
    m.Indicator(atr=m.Atr(period=50)),
    m.Indicator(bollinger=m.Bollinger(period=20, dev_up=1.5, dev_down=2.5)),
    m.Indicator(bollinger=m.Bollinger(period=10, dev_up=1)),
]


def test_chosen_parameters_match_talib_over_a_range(stub):
    dates, h = history(stub, "MSFT")
    reply = compute(stub, "MSFT", PARAMETERISED, "2008-01-02", "2009-12-31")
    i, n = dates.index("2008-01-02"), len(reply.dates)
    assert list(reply.dates) == dates[i : i + n]
    assert reply.dates[-1] == "2009-12-31"
    want = {}
    for indicator in PARAMETERISED:
        want.update(talib_columns(indicator, h))
    assert [c.name for c in reply.columns] == list(want)
    assert "bollinger_20_1.5_2.5_upper" in want and "macd_26_12_9" in want and "bollinger_10_1_2_lower" in want
    for column in reply.columns:
        assert_matches_talib(np.array(column.values), want[column.name][i : i + n], column.name)


def test_a_history_shorter_than_the_warm_up_is_all_nan(stub):
    symbol = new_symbol("short")
    bars = synthetic_bars(20)
    import_bars(stub, symbol, bars)
    _, h = history(stub, symbol)
    indicators = [m.Indicator(macd=m.Macd()), m.Indicator(sma=m.Sma(period=5)), m.Indicator(atr=m.Atr(period=19)), m.Indicator(rsi=m.Rsi(period=20))]
    got = columns(compute(stub, symbol, indicators))
    assert all(np.isnan(got[n]).all() for n in ("macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist", "rsi_20"))
    assert np.isnan(got["sma_5"][:4]).all() and not np.isnan(got["sma_5"][4:]).any()
    assert np.isnan(got["atr_19"][:19]).all() and not np.isnan(got["atr_19"][19])
    for indicator in indicators:
        for name, want in talib_columns(indicator, h).items():
            assert_matches_talib(got[name], want, name)


def test_indicators_follow_a_reimport(stub):
    symbol = new_symbol("follow")
    bars = synthetic_bars(60)
    import_bars(stub, symbol, bars)
    sma3 = [m.Indicator(sma=m.Sma(period=3))]
    before = columns(compute(stub, symbol, sma3))["sma_3"]
    import_bars(stub, symbol, [bar(bars[30].date, 1, 500, 0.5, 400)])
    after = columns(compute(stub, symbol, sma3))["sma_3"]
    # Only the windows holding the replaced close move (beyond the rounding
    # of the rolling sum, which TA-Lib shares)...
    moved = [i for i in range(3, len(bars)) if not after[i] == pytest.approx(before[i], rel=1e-12)]
    assert moved == [30, 31, 32]
    # ...and the new values are TA-Lib's over the new history.
    _, h = history(stub, symbol)
    assert h["close"][30] == 400
    assert_matches_talib(after, talib.SMA(h["close"], 3), "sma_3")


def test_a_range_without_trading_days_answers_empty_columns(stub):
    reply = compute(stub, "IBM", [m.Indicator(sma=m.Sma()), m.Indicator(macd=m.Macd())], "2012-01-07", "2012-01-08")
    assert list(reply.dates) == []
    assert [(c.name, list(c.values)) for c in reply.columns] == [
        ("sma_30", []),
        ("macd_12_26_9", []),
        ("macd_12_26_9_signal", []),
        ("macd_12_26_9_hist", []),
    ]


@pytest.mark.parametrize(
    "indicators,words",
    [
        ([], ["indicators", "empty"]),
        ([m.Indicator()], ["indicators[0]"]),
        ([m.Indicator(sma=m.Sma()), m.Indicator(sma=m.Sma(period=100_001))], ["indicators[1].sma.period", "100001"]),
        ([m.Indicator(ema=m.Ema(period=1_000_000))], ["indicators[0].ema.period"]),
        ([m.Indicator(rsi=m.Rsi(period=4_000_000_000))], ["indicators[0].rsi.period"]),
        ([m.Indicator(atr=m.Atr(period=100_001))], ["indicators[0].atr.period"]),
        ([m.Indicator(macd=m.Macd(slow_period=100_001))], ["indicators[0].macd.slow_period"]),
        ([m.Indicator(macd=m.Macd(fast_period=100_001))], ["indicators[0].macd.fast_period"]),
        ([m.Indicator(macd=m.Macd(signal_period=100_001))], ["indicators[0].macd.signal_period"]),
        ([m.Indicator(bollinger=m.Bollinger(period=100_001))], ["indicators[0].bollinger.period"]),
        ([m.Indicator(bollinger=m.Bollinger(dev_up=-1))], ["indicators[0].bollinger.dev_up"]),
        ([m.Indicator(bollinger=m.Bollinger(dev_down=math.nan))], ["indicators[0].bollinger.dev_down"]),
        ([m.Indicator(bollinger=m.Bollinger(dev_up=math.inf))], ["indicators[0].bollinger.dev_up"]),
        ([m.Indicator(sma=m.Sma())] * 65, ["indicators", "64"]),
    ],
    ids=[
        "none",
        "no-kind",
        "sma-period",
        "ema-period",
        "rsi-period-huge",
        "atr-period",
        "macd-slow",
        "macd-fast",
        "macd-signal",
        "bollinger-period",
        "negative-dev",
        "nan-dev",
        "inf-dev",
        "too-many",
    ],
)
def test_bad_indicators_are_invalid_argument_naming_the_field(any_stub, indicators, words):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT) as info:
        compute(any_stub, "AAPL", indicators)
    for word in words:
        assert word in info.value.details(), info.value.details()


def test_sixty_four_indicators_are_accepted(stub):
    reply = compute(stub, "AAPL", [m.Indicator(sma=m.Sma(period=n)) for n in range(1, 65)], "2012-01-03", "2012-01-31")
    assert [c.name for c in reply.columns] == [f"sma_{n}" for n in range(1, 65)]


def test_compute_indicators_refusals(any_stub):
    sma = [m.Indicator(sma=m.Sma())]
    with expect_status(grpc.StatusCode.NOT_FOUND, "TSLA"):
        compute(any_stub, "TSLA", sma)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol"):
        compute(any_stub, "", sma)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "start_date"):
        compute(any_stub, "AAPL", sma, "2012-00-01")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "end_date"):
        compute(any_stub, "AAPL", sma, "", "tomorrow")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "start_date", "end_date", "after"):
        compute(any_stub, "AAPL", sma, "2012-02-01", "2012-01-31")


# RenderChart


def render(stub, **fields):
    """The chunks and content types of one RenderChart call."""
    fields.setdefault("symbol", "AAPL")
    fields.setdefault("start_date", "2012-01-03")
    fields.setdefault("end_date", "2012-12-31")
    replies = list(stub.RenderChart(m.RenderChartRequest(**fields), timeout=RPC_TIMEOUT))
    assert replies
    assert all(len(r.chunk) <= MAX_CHUNK for r in replies), [len(r.chunk) for r in replies]
    assert all(r.content_type == "" for r in replies[1:]), "content_type belongs in the first message only"
    return replies[0].content_type, b"".join(r.chunk for r in replies), len(replies)


def decode_png(data):
    assert data.startswith(PNG_SIGNATURE)
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    img.load()
    return img


def test_render_chart_defaults_to_a_1000x700_png_of_all_panels(stub):
    content_type, data, _ = render(stub)
    assert content_type == "image/png"
    assert decode_png(data).size == (1000, 700)
    explicit = render(
        stub,
        format=m.FORMAT_PNG,
        width=1000,
        height=700,
        panels=[m.PANEL_PRICE, m.PANEL_VOLUME, m.PANEL_MACD],
        macd=m.Macd(fast_period=12, slow_period=26, signal_period=9),
    )
    assert explicit == (content_type, data, explicit[2])


@pytest.mark.parametrize("width,height", [(200, 200), (640, 480), (4000, 300), (300, 4000)])
def test_render_chart_png_has_the_size_asked(stub, width, height):
    content_type, data, count = render(stub, width=width, height=height)
    assert content_type == "image/png"
    assert decode_png(data).size == (width, height)
    assert count == max(1, math.ceil(len(data) / MAX_CHUNK))


def test_render_chart_svg_is_xml_of_the_size_asked(stub):
    content_type, data, _ = render(stub, symbol="GOOG", format=m.FORMAT_SVG, width=800, height=600)
    assert content_type == "image/svg+xml"
    root = ET.fromstring(data.decode("utf-8"))
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    assert (float(root.get("width")), float(root.get("height"))) == (800, 600)
    assert len(list(root.iter())) > 100, "the chart looks empty"


def test_render_chart_panels_and_macd_periods_change_the_picture(stub):
    _, all_panels, _ = render(stub)
    _, price_only, _ = render(stub, panels=[m.PANEL_PRICE])
    _, macd_price, _ = render(stub, panels=[m.PANEL_MACD, m.PANEL_PRICE])
    _, price_macd, _ = render(stub, panels=[m.PANEL_PRICE, m.PANEL_MACD, m.PANEL_PRICE])
    _, other_macd, _ = render(stub, macd=m.Macd(fast_period=5, slow_period=35, signal_period=5))
    for data in (price_only, macd_price, other_macd):
        assert decode_png(data).size == (1000, 700)
    # The panels are drawn price, volume, MACD whatever the order given.
    assert macd_price == price_macd
    assert len({all_panels, price_only, macd_price, other_macd}) == 4


@pytest.mark.parametrize("fmt", [m.FORMAT_PNG, m.FORMAT_SVG], ids=["png", "svg"])
def test_render_chart_of_a_range_without_bars_still_answers_an_image(stub, fmt):
    content_type, data, _ = render(stub, start_date="2012-01-07", end_date="2012-01-08", format=fmt)
    if fmt == m.FORMAT_PNG:
        assert decode_png(data).size == (1000, 700)
    else:
        assert ET.fromstring(data.decode("utf-8")).get("width") == "1000"


def test_render_chart_of_an_imported_symbol_and_open_range(stub):
    symbol = new_symbol("chart")
    import_bars(stub, symbol, synthetic_bars(80))
    content_type, data, _ = render(stub, symbol=symbol, start_date="", end_date="", width=500, height=400)
    assert content_type == "image/png"
    assert decode_png(data).size == (500, 400)


def test_render_chart_over_grpc_aio(server):
    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            s = m_grpc.MarketServiceStub(ch)
            call = s.RenderChart(
                m.RenderChartRequest(symbol="IBM", start_date="2005-01-03", end_date="2012-12-31", width=2400, height=1600),
                timeout=RPC_TIMEOUT,
            )
            return [r async for r in call], await call.code()

    replies, code = asyncio.run(main())
    assert code == grpc.StatusCode.OK
    assert replies[0].content_type == "image/png"
    assert all(r.content_type == "" for r in replies[1:])
    assert all(len(r.chunk) <= MAX_CHUNK for r in replies)
    assert decode_png(b"".join(r.chunk for r in replies)).size == (2400, 1600)


@pytest.mark.parametrize(
    "fields,code,words",
    [
        ({"width": 199}, grpc.StatusCode.INVALID_ARGUMENT, ["width", "199"]),
        ({"width": 4001}, grpc.StatusCode.INVALID_ARGUMENT, ["width", "4001"]),
        ({"height": 100}, grpc.StatusCode.INVALID_ARGUMENT, ["height", "100"]),
        ({"height": 4_294_967_295}, grpc.StatusCode.INVALID_ARGUMENT, ["height", "4294967295"]),
        ({"format": 7}, grpc.StatusCode.INVALID_ARGUMENT, ["format", "7"]),
        ({"panels": [m.PANEL_UNSPECIFIED]}, grpc.StatusCode.INVALID_ARGUMENT, ["panels[0]"]),
        ({"panels": [m.PANEL_PRICE, 9]}, grpc.StatusCode.INVALID_ARGUMENT, ["panels[1]", "9"]),
        ({"macd": m.Macd(slow_period=100_001)}, grpc.StatusCode.INVALID_ARGUMENT, ["macd.slow_period"]),
        ({"symbol": "TSLA"}, grpc.StatusCode.NOT_FOUND, ["TSLA"]),
        ({"symbol": ""}, grpc.StatusCode.INVALID_ARGUMENT, ["symbol"]),
        ({"symbol": "a b"}, grpc.StatusCode.INVALID_ARGUMENT, ["symbol"]),
        ({"start_date": "2012-13-01"}, grpc.StatusCode.INVALID_ARGUMENT, ["start_date", '"2012-13-01"']),
        ({"end_date": "2012-12-32"}, grpc.StatusCode.INVALID_ARGUMENT, ["end_date", '"2012-12-32"']),
        ({"start_date": "2013-01-01"}, grpc.StatusCode.INVALID_ARGUMENT, ["start_date", "after", "end_date"]),
    ],
    ids=[
        "width-199",
        "width-4001",
        "height-100",
        "height-max-u32",
        "unknown-format",
        "unspecified-panel",
        "unknown-panel",
        "macd-period",
        "unknown-symbol",
        "no-symbol",
        "bad-symbol",
        "bad-start",
        "bad-end",
        "start-after-end",
    ],
)
def test_render_chart_refusals_name_the_field_and_value(stub, fields, code, words):
    with expect_status(code) as info:
        render(stub, **fields)
    for word in words:
        assert word in info.value.details(), info.value.details()


@pytest.mark.parametrize("timeout", [0.001, 0.005, 0.02])
def test_an_expired_deadline_is_deadline_exceeded_whichever_side_sees_it_first(stub, timeout):
    # A 4000x4000 chart of the whole history takes far longer than these
    # deadlines to draw. The client's timer and the server's race; whichever
    # answers, the status is DEADLINE_EXCEEDED (tonic alone would answer
    # CANCELLED "Timeout expired"; dataport's deadline layer answers first).
    request = m.RenderChartRequest(symbol="AAPL", width=4000, height=4000)
    for _ in range(5):
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            list(stub.RenderChart(request, timeout=timeout))
        assert time.monotonic() - start < 5
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (info.value.code(), info.value.details())


def test_a_cancelled_import_stores_nothing(server, stub):
    # grpcio's cancel resets the stream; tonic reports that as a clean end,
    # which must not import the bars received so far.
    symbol = new_symbol("cancel")
    bars = [bar("2024-01-02", 1, 2, 1, 1.5), bar("2024-01-03", 1, 2, 1, 1.6)]
    code = server.cancel_mid_stream(
        lambda ch, requests: m_grpc.MarketServiceStub(ch).ImportBars.future(requests, timeout=RPC_TIMEOUT),
        "/dataport.market.v1.MarketService/ImportBars",
        [m.ImportBarsRequest(symbol=symbol, bars=bars)],
    )
    assert code == "CANCELLED"
    assert symbol not in summaries(stub)


# Adjusted prices

# The sample's MSFT split 2:1 between these days (zcat data/sample/bars.csv.gz
# | grep -E 'MSFT,2003-02-1[48]'): closes as traded, and its adj_close column.
MSFT_SPLIT_DAYS = ("2003-02-14", "2003-02-18")
MSFT_TRADED = [48.3, 24.96]
MSFT_ADJUSTED = [16.076442938105, 16.61565282547]


def test_get_bars_answers_adjusted_prices_unless_asked_for_prices_as_traded(any_stub):
    default = any_stub.GetBars(m.GetBarsRequest(symbol="MSFT", start_date=MSFT_SPLIT_DAYS[0], end_date=MSFT_SPLIT_DAYS[1]), timeout=RPC_TIMEOUT)
    assert default.adjusted
    assert [b.date for b in default.bars] == list(MSFT_SPLIT_DAYS)
    assert [b.close for b in default.bars] == pytest.approx(MSFT_ADJUSTED, rel=1e-12)
    asked = any_stub.GetBars(
        m.GetBarsRequest(symbol="MSFT", start_date=MSFT_SPLIT_DAYS[0], end_date=MSFT_SPLIT_DAYS[1], adjusted=True), timeout=RPC_TIMEOUT
    )
    assert asked == default
    traded = any_stub.GetBars(
        m.GetBarsRequest(symbol="MSFT", start_date=MSFT_SPLIT_DAYS[0], end_date=MSFT_SPLIT_DAYS[1], adjusted=False), timeout=RPC_TIMEOUT
    )
    assert not traded.adjusted
    assert [b.close for b in traded.bars] == MSFT_TRADED
    # Both carry the adjusted close.
    assert [b.adj_close for b in traded.bars] == [b.adj_close for b in default.bars] == MSFT_ADJUSTED


@pytest.mark.parametrize("symbol", sorted(SAMPLE))
def test_adjusted_bars_are_the_sample_scaled_by_adj_close_over_close(stub, sample, symbol):
    got = get_bars(stub, symbol)
    assert len(got) == len(sample[symbol]) == SAMPLE[symbol][0]
    for b, (date, o, h, l, c, v, adj) in zip(got, sample[symbol]):
        factor = adj / c
        assert b.date == date
        assert (b.open, b.high, b.low, b.close) == pytest.approx((o * factor, h * factor, l * factor, adj), rel=1e-12), date
        assert b.volume == pytest.approx(v / factor, rel=1e-12), date
        assert b.adj_close == adj


def test_list_symbols_says_which_symbols_carry_adjusted_closes(stub):
    plain, adjusted = new_symbol("plain"), new_symbol("adj")
    import_bars(stub, plain, synthetic_bars(3))
    import_csv(stub, adjusted, CSV_TEXT)
    listed = summaries(stub)
    assert all(listed[s].adjusted for s in SAMPLE)
    assert not listed[plain].adjusted
    assert listed[adjusted].adjusted
    # Asked for adjusted prices, a symbol without adjusted closes answers
    # its prices as traded, and says so.
    reply = get_bars_reply(stub, plain)
    assert not reply.adjusted
    assert [as_tuple(b) for b in reply.bars] == [as_tuple(b) for b in synthetic_bars(3)]


def test_default_indicators_are_talib_over_the_adjusted_bars(stub):
    dates, h = history(stub, "AAPL")
    reply = compute(stub, "AAPL", DEFAULTS)
    assert reply.adjusted
    assert list(reply.dates) == dates
    # Adjusted closes are the sample's adj_close, so not the closes as traded.
    assert h["close"][dates.index("2010-01-04")] == pytest.approx(27.503267796595, rel=1e-12)
    got = columns(reply)
    for indicator in DEFAULTS:
        for name, want in talib_columns(indicator, h).items():
            assert_matches_talib(got[name], want, name)


@pytest.mark.parametrize("symbol", sorted(SAMPLE))
def test_indicators_as_traded_are_talib_over_the_sample_file(stub, sample, symbol):
    rows = sample[symbol]
    h = {k: np.array([r[i] for r in rows]) for i, k in ((1, "open"), (2, "high"), (3, "low"), (4, "close"))}
    reply = compute(stub, symbol, DEFAULTS, adjusted=False)
    assert not reply.adjusted
    assert list(reply.dates) == [r[0] for r in rows]
    got = columns(reply)
    for indicator in DEFAULTS:
        for name, want in talib_columns(indicator, h).items():
            assert_matches_talib(got[name], want, name)


def test_macd_as_traded_is_the_pinned_seed_value_and_adjusted_macd_differs(stub, channel):
    # TA-Lib 0.8.2's MACD(12, 26, 9) over AAPL's whole history in the sample,
    # at 2010-01-04: talib.MACD(closes, 12, 26, 9) over the close column (as
    # tests/interop/python/test_indicator.py pins for GetMACD) and over the
    # adj_close column.
    macd = [m.Indicator(macd=m.Macd())]
    traded = columns(compute(stub, "AAPL", macd, "2010-01-04", "2010-01-08", adjusted=False))
    assert traded["macd_12_26_9"][0] == pytest.approx(3.926500332345171, rel=1e-12)
    assert traded["macd_12_26_9_signal"][0] == pytest.approx(2.1483999269706064, rel=1e-12)
    adjusted = columns(compute(stub, "AAPL", macd, "2010-01-04", "2010-01-08"))
    assert adjusted["macd_12_26_9"][0] == pytest.approx(0.504610018895864, rel=1e-12)
    assert adjusted["macd_12_26_9_signal"][0] == pytest.approx(0.27609933426313843, rel=1e-12)
    # The seed GetMACD answers over prices as traded (the server runs
    # without compat_adjusted), in float32.
    seed = indicator_pb2_grpc.IndicatorStub(channel).GetMACD(
        indicator_pb2.MACDRequest(start_date="2010-01-04", end_date="2010-01-08", symbol="AAPL"), timeout=RPC_TIMEOUT
    )
    assert [d.macd for d in seed.macd] == pytest.approx(list(traded["macd_12_26_9"]), rel=1e-6)
    assert [d.signal for d in seed.macd] == pytest.approx(list(traded["macd_12_26_9_signal"]), rel=1e-6)
    assert [d.close for d in seed.macd] == pytest.approx([214.01, 214.38, 210.97, 210.58, 211.98])


def render_replies(stub, **fields):
    return list(stub.RenderChart(m.RenderChartRequest(**fields), timeout=RPC_TIMEOUT))


def test_render_chart_says_in_its_first_message_whether_its_prices_are_adjusted(stub):
    fields = {"symbol": "MSFT", "start_date": "2003-01-02", "end_date": "2003-03-31", "width": 640, "height": 480}
    default = render_replies(stub, **fields)
    traded = render_replies(stub, adjusted=False, **fields)
    assert default[0].adjusted and not traded[0].adjusted
    assert not any(r.adjusted for r in default[1:]), "adjusted belongs in the first message only"
    images = [b"".join(r.chunk for r in replies) for replies in (default, traded)]
    for image in images:
        assert decode_png(image).size == (640, 480)
    # The split halves the price as traded, not the adjusted one; the title
    # says which prices too.
    assert images[0] != images[1]
    # A symbol without adjusted closes is drawn as traded, and says so.
    symbol = new_symbol("plainchart")
    import_bars(stub, symbol, synthetic_bars(60))
    plain = render_replies(stub, symbol=symbol, width=640, height=480)
    assert not plain[0].adjusted


def test_an_imported_split_is_adjusted_away(stub):
    # A 2:1 split after 20 days: closes halve, adjusted closes do not move;
    # the bars before the split take the factor of theirs.
    symbol = new_symbol("split")
    bars = synthetic_bars(40)
    for i, b in enumerate(bars):
        if i < 20:
            b.open, b.high, b.low, b.close = (2 * x for x in (b.open, b.high, b.low, b.close))
        b.adj_close = b.close / 2 if i < 20 else b.close
    # One bar without an adjusted close, before the split: it takes the
    # factor of the next bar that has one.
    bars[5].ClearField("adj_close")
    import_bars(stub, symbol, bars)
    traded = get_bars(stub, symbol, adjusted=False)
    assert [b.close for b in traded] == [b.close for b in bars]
    adjusted = get_bars(stub, symbol)
    assert [b.close for b in adjusted] == pytest.approx([b.close / 2 if i < 20 else b.close for i, b in enumerate(bars)], rel=1e-12)
    assert adjusted[5].close == pytest.approx(bars[5].close / 2, rel=1e-12)
    assert adjusted[5].volume == pytest.approx(bars[5].volume * 2, rel=1e-12)
    reply = compute(stub, symbol, [m.Indicator(sma=m.Sma(period=5))])
    assert reply.adjusted
    assert_matches_talib(np.array(reply.columns[0].values), talib.SMA(np.array([b.close for b in adjusted]), 5), "sma_5")


# Symbols in any case


def test_symbols_are_one_symbol_in_any_case_and_answered_upper_case(stub, channel):
    assert get_bars(stub, "aapl", "2010-01-04", "2010-01-08") == get_bars(stub, "AAPL", "2010-01-04", "2010-01-08")
    reply = stub.ComputeIndicators(m.ComputeIndicatorsRequest(symbol="Msft", indicators=[m.Indicator(sma=m.Sma())]), timeout=RPC_TIMEOUT)
    assert reply.symbol == "MSFT"
    content_type, data, _ = render(stub, symbol="goog", width=300, height=300)
    assert content_type == "image/png" and decode_png(data).size == (300, 300)
    seed = indicator_pb2_grpc.IndicatorStub(channel).GetMACD(
        indicator_pb2.MACDRequest(start_date="2010-01-04", end_date="2010-01-08", symbol="ibm"), timeout=RPC_TIMEOUT
    )
    assert len(seed.macd) == 5

    symbol = new_symbol("case")
    first = import_bars(stub, symbol.lower(), synthetic_bars(3))
    assert first.symbol == first.summary.symbol == symbol
    # Another case of the same symbol adds to it.
    again = import_bars(stub, symbol.title(), [bar("2020-01-06", 1, 2, 1, 2)])
    assert (again.symbol, again.summary.bars) == (symbol, 4)
    listed = [s for s in summaries(stub) if s.upper() == symbol]
    assert listed == [symbol]
    assert len(get_bars(stub, symbol.lower())) == 4


# DeleteSymbol


def test_delete_symbol_removes_every_bar_of_an_imported_symbol(any_stub):
    symbol = new_symbol("delete")
    import_bars(any_stub, symbol, synthetic_bars(30))
    assert symbol in summaries(any_stub)
    reply = any_stub.DeleteSymbol(m.DeleteSymbolRequest(symbol=symbol.lower()), timeout=RPC_TIMEOUT)
    assert (reply.symbol, reply.deleted) == (symbol, 30)
    assert symbol not in summaries(any_stub)
    with expect_status(grpc.StatusCode.NOT_FOUND, symbol):
        get_bars(any_stub, symbol)
    with expect_status(grpc.StatusCode.NOT_FOUND, symbol):
        compute(any_stub, symbol, [m.Indicator(sma=m.Sma())])
    # Deleted, it can be imported afresh.
    assert import_bars(any_stub, symbol, synthetic_bars(2)).summary.bars == 2
    assert any_stub.DeleteSymbol(m.DeleteSymbolRequest(symbol=symbol), timeout=RPC_TIMEOUT).deleted == 2
    # The sample is untouched.
    assert all(s in summaries(any_stub) for s in SAMPLE)


def test_delete_symbol_refusals(any_stub):
    unknown = new_symbol("never")
    with expect_status(grpc.StatusCode.NOT_FOUND, unknown):
        any_stub.DeleteSymbol(m.DeleteSymbolRequest(symbol=unknown), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol"):
        any_stub.DeleteSymbol(m.DeleteSymbolRequest(symbol=""), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol"):
        any_stub.DeleteSymbol(m.DeleteSymbolRequest(symbol="A B"), timeout=RPC_TIMEOUT)
