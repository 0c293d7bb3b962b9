"""Outliers as the seed's Go and Python clients ask for them: pb.Outliers
Detect over metrics with times, names and values. Then
dataport.outliers.v1 through dataport_client's helper, straight from a
numpy array, with the modified z-score.

    python outliers.py --addr 127.0.0.1:50051
"""

from __future__ import annotations

import argparse
import datetime

import grpc
import numpy as np
from google.protobuf import timestamp_pb2

import dataport_client
from dataport_client.compat import outliers_pb2, outliers_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the server, host:port")
    args = parser.parse_args()

    # A minute of CPU readings, one a second, with two spikes.
    rng = np.random.default_rng(1)
    values = rng.normal(40.0, 2.0, 60)
    values[[7, 42]] = [97.0, 3.0]
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    metrics = []
    for i, value in enumerate(values):
        time = timestamp_pb2.Timestamp()
        time.FromDatetime(start + datetime.timedelta(seconds=i))
        metrics.append(outliers_pb2.Metric(time=time, name="cpu", value=float(value)))
    with grpc.insecure_channel(args.addr) as channel:
        stub = outliers_pb2_grpc.OutliersStub(channel)
        response = stub.Detect(outliers_pb2.OutliersRequest(metrics=metrics), timeout=10)
    print(f"pb.Outliers: outliers at {list(response.indices)}")
    for i in response.indices:
        print(f"  {metrics[i].time.ToDatetime(datetime.timezone.utc).isoformat()} {metrics[i].value:.1f}")

    with dataport_client.Client(args.addr) as client:
        result = client.detect_outliers(values, name="cpu", method="modified")
    stats = result.series[0].stats
    print(f"v1 modified z-score: outliers at {result.indices} (median {stats['median']:.2f}, MAD {stats['mad']:.2f})")
    for i in result.indices:
        print(f"  index {i}: value {values[i]:.1f}, score {result.scores[i]:.1f}")


if __name__ == "__main__":
    main()
