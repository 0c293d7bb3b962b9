"""idc.Indicator.GetMACD, called as the Go trading system calls it, over the
sample bars the server loads into an empty store, through grpcio's
synchronous API and through grpc.aio."""

import grpc
import indicator_pb2
import indicator_pb2_grpc
import pytest

from interop import RPC_TIMEOUT


@pytest.fixture
def indicator(api):
    return api.stub(indicator_pb2_grpc.IndicatorStub)


def test_macd_rows_cover_the_range_in_date_order(indicator):
    request = indicator_pb2.MACDRequest(start_date="2010-01-04", end_date="2010-01-08", symbol="AAPL")
    reply = indicator.GetMACD(request, timeout=RPC_TIMEOUT)
    assert [d.date for d in reply.macd] == ["2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"]
    first = reply.macd[0]
    # TA-Lib 0.8.2's MACD over AAPL's whole stored history, at 2010-01-04.
    assert first.macd == pytest.approx(3.926500332345171, rel=1e-6)
    assert first.signal == pytest.approx(2.1483999269706064, rel=1e-6)
    assert first.histogram == pytest.approx(first.macd - first.signal, rel=1e-5)
    assert (first.open, first.close) == (pytest.approx(213.43), pytest.approx(214.01))


def test_a_seed_request_without_a_symbol_is_told_which_to_choose(indicator):
    request = indicator_pb2.MACDRequest(start_date="2010-01-04", end_date="2010-01-08")
    with pytest.raises(grpc.RpcError) as err:
        indicator.GetMACD(request, timeout=RPC_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "AAPL, GOOG, IBM, MSFT" in err.value.details()


def test_bad_dates_and_unknown_symbols_are_refused_by_name(indicator):
    bad = indicator_pb2.MACDRequest(start_date="2010-13-01", end_date="2010-01-08", symbol="AAPL")
    with pytest.raises(grpc.RpcError) as err:
        indicator.GetMACD(bad, timeout=RPC_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_date" in err.value.details()
    unknown = indicator_pb2.MACDRequest(start_date="2010-01-04", end_date="2010-01-08", symbol="TSLA")
    with pytest.raises(grpc.RpcError) as err:
        indicator.GetMACD(unknown, timeout=RPC_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "TSLA" in err.value.details()
