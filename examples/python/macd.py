"""MACD as the seed indicator clients ask for it: idc.Indicator GetMACD for
the rows, idc.IndicatorGraph GetMACDGraph for the chart (a PNG streamed in
chunks, saved to a file), both over prices as traded. Then the same MACD
from dataport.market.v1 through dataport_client's helper (adjusted=False),
and the MACD of split- and dividend-adjusted closes that dataport.market.v1
answers by default, as rows and (with pandas) a DataFrame.

    python macd.py --addr 127.0.0.1:50051 --symbol AAPL --start 2012-01-03 --end 2012-12-31 --out macd.png
"""

from __future__ import annotations

import argparse

import grpc

import dataport_client
from dataport_client.compat import indicator_graph_pb2, indicator_graph_pb2_grpc, indicator_pb2, indicator_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the server, host:port")
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--start", default="2012-01-03")
    parser.add_argument("--end", default="2012-12-31")
    parser.add_argument("--out", default="macd.png", help="where to save the chart")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        request = indicator_pb2.MACDRequest(start_date=args.start, end_date=args.end, symbol=args.symbol)
        reply = indicator_pb2_grpc.IndicatorStub(channel).GetMACD(request, timeout=10)
        print(f"{'date':<10} {'close':>9} {'macd':>9} {'signal':>9} {'hist':>9}")
        for row in reply.macd[-5:]:
            print(f"{row.date:<10} {row.close:9.2f} {row.macd:9.4f} {row.signal:9.4f} {row.histogram:9.4f}")
        print(f"GetMACD: {len(reply.macd)} days of {args.symbol}")

        graph = indicator_graph_pb2.MACDGraphRequest(start_date=args.start, end_date=args.end, symbol=args.symbol)
        size = 0
        with open(args.out, "wb") as f:
            for chunk in indicator_graph_pb2_grpc.IndicatorGraphStub(channel).GetMACDGraph(graph, timeout=30):
                f.write(chunk.macd_chunk)
                size += len(chunk.macd_chunk)
        print(f"GetMACDGraph: saved {args.out} ({size} bytes)")

    with dataport_client.Client(args.addr) as client:
        traded = client.macd(args.symbol, args.start, args.end, adjusted=False)
        last = traded[-1]
        print(f"ComputeIndicators: {len(traded)} rows, last {last.date} macd {last.macd:.4f} signal {last.signal:.4f}")
        rows = client.macd(args.symbol, args.start, args.end)
        last = rows[-1]
        prices = "adjusted" if rows.adjusted else "as traded"
        print(f"ComputeIndicators ({prices}): last {last.date} macd {last.macd:.4f} signal {last.signal:.4f}")
        try:
            print(rows.to_dataframe().tail(3))
        except ImportError as e:
            print(f"(no DataFrame: {e})")


if __name__ == "__main__":
    main()
