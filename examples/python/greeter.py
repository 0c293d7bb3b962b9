"""The helloworld Greeter client, as grpc's greeter_client.py writes it,
with the stubs from dataport_client.

    python greeter.py --addr 127.0.0.1:50051 --name you
"""

from __future__ import annotations

import argparse

import grpc

from dataport_client.compat import helloworld_pb2, helloworld_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the server, host:port")
    parser.add_argument("--name", default="you")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        response = stub.SayHello(helloworld_pb2.HelloRequest(name=args.name), timeout=10)
        print("Greeter client received: " + response.message)
        response = stub.SayHelloAgain(helloworld_pb2.HelloRequest(name=args.name), timeout=10)
        print("Greeter client received: " + response.message)


if __name__ == "__main__":
    main()
