"""Misuse of dataport_client that mypy --strict must report, each on the
line marked `# error`: the stubs type fields, requests and replies."""

from __future__ import annotations

import dataport_client
from dataport_client.compat import helloworld_pb2, route_guide_pb2
from dataport_client.dataport.market.v1 import market_pb2


def misuse(client: dataport_client.Client) -> None:
    helloworld_pb2.HelloRequest(name=1)  # error
    helloworld_pb2.HelloRequest(nmae="x")  # error
    reply = client.greeter.SayHello(route_guide_pb2.Point())  # error
    reply.mesage  # error
    text: int = client.greeter.SayHelloAgain(helloworld_pb2.HelloRequest()).message  # error
    client.route_guide.GetFeature(route_guide_pb2.Point()).location.latitude.upper()  # error
    market_pb2.Indicator(macd=market_pb2.Sma())  # error
    client.macd("AAPL", start=20120103)  # error
    client.indicators("AAPL", ["rsi"], adjusted="no")  # error
    client.detect_outliers([1.0], method="median")  # error
    client.upload_file("a.bin", progress=lambda done: None)  # error
    dataport_client.Client("https://localhost:50051", ca=1)  # error
    dataport_client.Client("https://localhost:50051", token=b"secret")  # error
