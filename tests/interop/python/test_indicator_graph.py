"""idc.IndicatorGraph.GetMACDGraph, called as the seed chart client calls it:
iterate the stream, join the chunks, write a .png. Over the sample bars the
server loads into an empty store, and over stores of a test's own where the
symbol a request leaves empty matters."""

import asyncio

import grpc
import indicator_graph_pb2 as graph_pb2
import indicator_graph_pb2_grpc as graph_grpc
import pytest
from dataport.market.v1 import market_pb2 as market
from dataport.market.v1 import market_pb2_grpc as market_grpc
from PIL import Image

from conftest import DataportServer, open_channel
from interop import RPC_TIMEOUT, expect_status

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNK = 64 * 1024
SEED_SIZE = (1000, 700)


@pytest.fixture
def graph(channel):
    return graph_grpc.IndicatorGraphStub(channel)


def request(start="2012-01-03", end="2012-12-31", symbol="GOOG"):
    return graph_pb2.MACDGraphRequest(start_date=start, end_date=end, symbol=symbol)


def save_graph(stub, req, path):
    """The seed client: every chunk in order, into one file. Returns the
    chunk sizes."""
    sizes = []
    with path.open("wb") as f:
        for reply in stub.GetMACDGraph(req, timeout=RPC_TIMEOUT):
            sizes.append(len(reply.macd_chunk))
            f.write(reply.macd_chunk)
    return sizes


def assert_seed_png(path):
    """A whole, decodable 1000x700 PNG that is not a blank canvas."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), data[:16]
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == SEED_SIZE
        img.load()  # decodes every row: a truncated or corrupt stream fails here
        colors = img.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 4, "the chart looks blank"


@pytest.mark.parametrize(
    "req",
    [request(), request("2000-03-01", "2013-03-01", symbol="AAPL")],
    ids=["goog-2012", "aapl-whole-history"],
)
def test_chart_streams_chunks_of_at_most_64_kib_that_join_into_a_1000x700_png(graph, tmp_path, req):
    path = tmp_path / "chart.png"
    sizes = save_graph(graph, req, path)
    assert sizes and all(0 < s <= MAX_CHUNK for s in sizes), sizes
    # Every chunk but the last is full: the server does not dribble bytes.
    assert all(s == MAX_CHUNK for s in sizes[:-1]), sizes
    assert_seed_png(path)


def test_charts_of_different_ranges_and_symbols_differ(graph, tmp_path):
    images = {}
    for name, req in {
        "goog-2012": request(),
        "goog-2010": request("2010-01-04", "2010-12-31"),
        "ibm-2012": request(symbol="IBM"),
    }.items():
        path = tmp_path / f"{name}.png"
        save_graph(graph, req, path)
        assert_seed_png(path)
        images[name] = path.read_bytes()
    assert len(set(images.values())) == 3


@pytest.mark.parametrize(
    "start,end",
    [("2012-01-01", "2012-01-01"), ("1990-01-02", "1990-12-31"), ("2013-03-02", "2020-01-01")],
    ids=["new-years-day", "before-history", "after-history"],
)
def test_a_range_without_bars_still_answers_a_png(graph, tmp_path, start, end):
    path = tmp_path / "empty.png"
    save_graph(graph, request(start, end, symbol="AAPL"), path)
    assert_seed_png(path)


def test_a_one_day_range_answers_a_png(graph, tmp_path):
    path = tmp_path / "one-day.png"
    save_graph(graph, request("2012-06-01", "2012-06-01", symbol="MSFT"), path)
    assert_seed_png(path)


def test_chart_over_grpc_aio(server, tmp_path):
    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = graph_grpc.IndicatorGraphStub(ch)
            chunks = [r.macd_chunk async for r in stub.GetMACDGraph(request(symbol="MSFT"), timeout=RPC_TIMEOUT)]
            # The same request twice at once, as a dashboard refreshing two tiles.
            twice = await asyncio.gather(
                *(
                    _collect(stub.GetMACDGraph(request(symbol="IBM"), timeout=RPC_TIMEOUT))
                    for _ in range(2)
                )
            )
            return chunks, twice

    chunks, (first, second) = asyncio.run(main())
    assert all(len(c) <= MAX_CHUNK for c in chunks)
    path = tmp_path / "msft.png"
    path.write_bytes(b"".join(chunks))
    assert_seed_png(path)
    assert first == second
    path.write_bytes(first)
    assert_seed_png(path)


async def _collect(call):
    return b"".join([r.macd_chunk async for r in call])


# Refusals


@pytest.mark.parametrize(
    "start,end,words",
    [
        ("2012-13-01", "2012-12-31", ["start_date", '"2012-13-01"']),
        ("2012-01-03", "2012-13-01", ["end_date", '"2012-13-01"']),
        ("2012-02-30", "2012-12-31", ["start_date"]),
        ("2012/01/03", "2012-12-31", ["start_date"]),
        ("", "2012-12-31", ["start_date"]),
        ("2012-01-03", "", ["end_date"]),
    ],
    ids=["month-13-start", "month-13-end", "feb-30", "slashes", "no-start", "no-end"],
)
def test_a_bad_or_missing_date_is_invalid_argument_naming_the_field(graph, start, end, words):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT) as info:
        list(graph.GetMACDGraph(request(start, end), timeout=RPC_TIMEOUT))
    details = info.value.details()
    for word in words:
        assert word in details, details
    assert "YYYY-MM-DD" in details


def test_start_after_end_is_invalid_argument(graph):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "start_date", "end_date", "after") as info:
        list(graph.GetMACDGraph(request("2012-02-01", "2012-01-31"), timeout=RPC_TIMEOUT))
    assert "2012-02-01" in info.value.details() and "2012-01-31" in info.value.details()


def test_an_unknown_symbol_is_not_found_naming_it_and_the_stored_ones(graph):
    with expect_status(grpc.StatusCode.NOT_FOUND, "TSLA") as info:
        list(graph.GetMACDGraph(request(symbol="TSLA"), timeout=RPC_TIMEOUT))
    assert "AAPL, GOOG, IBM, MSFT" in info.value.details()


def test_an_ill_formed_symbol_is_invalid_argument(graph):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol"):
        list(graph.GetMACDGraph(request(symbol="GOOG/../x"), timeout=RPC_TIMEOUT))


def test_a_seed_request_without_a_symbol_is_told_which_to_choose(graph):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "symbol") as info:
        list(graph.GetMACDGraph(request(symbol=""), timeout=RPC_TIMEOUT))
    assert "AAPL, GOOG, IBM, MSFT" in info.value.details()


def test_refusals_over_grpc_aio_carry_the_same_status(server):
    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = graph_grpc.IndicatorGraphStub(ch)
            call = stub.GetMACDGraph(request(end="2012-13-01"), timeout=RPC_TIMEOUT)
            with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "end_date"):
                async for _ in call:
                    pass
            return await call.code()

    assert asyncio.run(main()) == grpc.StatusCode.INVALID_ARGUMENT


# Deadlines and cancellation


def test_a_cancelled_stream_ends_cancelled_and_the_next_call_still_answers(graph, tmp_path):
    call = graph.GetMACDGraph(request("2000-03-01", "2013-03-01", symbol="AAPL"), timeout=RPC_TIMEOUT)
    call.cancel()
    with expect_status(grpc.StatusCode.CANCELLED):
        list(call)
    assert call.cancelled()
    path = tmp_path / "after-cancel.png"
    save_graph(graph, request(), path)
    assert_seed_png(path)


def test_a_cancelled_stream_over_grpc_aio_ends_cancelled(server):
    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = graph_grpc.IndicatorGraphStub(ch)
            # The whole history: the chart takes a while to draw, so the call
            # is still waiting for its first chunk when it is cancelled.
            call = stub.GetMACDGraph(request("2000-03-01", "2013-03-01", symbol="AAPL"), timeout=RPC_TIMEOUT)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call.read()
            code = await call.code()
            # The channel and the server carry on.
            chunks = [r.macd_chunk async for r in stub.GetMACDGraph(request(), timeout=RPC_TIMEOUT)]
            return code, b"".join(chunks)

    code, png = asyncio.run(main())
    assert code == grpc.StatusCode.CANCELLED
    assert png.startswith(PNG_SIGNATURE)


# The symbol an empty request means, on stores of the test's own


@pytest.fixture
def start_server(dataport_bin, tmp_path_factory, monkeypatch):
    """Starts servers configured through DATAPORT_* variables (the flags the
    session server is started with do not set these keys); stops them after
    the test."""
    started = []

    def start(**env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        srv = DataportServer(dataport_bin, tmp_path_factory.mktemp("graph-data")).start()
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


def test_an_empty_symbol_means_the_configured_default_symbol(start_server, tmp_path):
    srv = start_server(DATAPORT_DEFAULT_SYMBOL="IBM")
    with open_channel(srv.addr) as ch:
        stub = graph_grpc.IndicatorGraphStub(ch)
        implicit, explicit = tmp_path / "implicit.png", tmp_path / "explicit.png"
        save_graph(stub, request(symbol=""), implicit)
        save_graph(stub, request(symbol="IBM"), explicit)
    assert_seed_png(implicit)
    assert implicit.read_bytes() == explicit.read_bytes()


def test_an_empty_symbol_means_the_only_stored_symbol(start_server, tmp_path):
    srv = start_server(DATAPORT_SAMPLE_DATA="false")
    with open_channel(srv.addr) as ch:
        stub = graph_grpc.IndicatorGraphStub(ch)
        with expect_status(grpc.StatusCode.FAILED_PRECONDITION, "symbol"):
            list(stub.GetMACDGraph(request(symbol=""), timeout=RPC_TIMEOUT))

        bars = [
            market.Bar(date=f"2012-{1 + i // 28:02d}-{1 + i % 28:02d}", open=100 + i, high=102 + i, low=99 + i, close=101 + i, volume=1e6)
            for i in range(60)
        ]
        reply = market_grpc.MarketServiceStub(ch).ImportBars(
            iter([market.ImportBarsRequest(symbol="ONLY", bars=bars)]), timeout=RPC_TIMEOUT
        )
        assert reply.imported == 60

        implicit, explicit = tmp_path / "implicit.png", tmp_path / "explicit.png"
        save_graph(stub, request(symbol=""), implicit)
        save_graph(stub, request(symbol="ONLY"), explicit)
    assert_seed_png(implicit)
    assert implicit.read_bytes() == explicit.read_bytes()
