"""Calls a server on a network, as it wants to be called: over TLS, the
server's certificate checked against --ca, with a token on every call
(--token, else DATAPORT_TOKEN); --cert and --key add a client certificate
for a server that asks for one (mutual TLS).

    export DATAPORT_TOKEN=dp_...     # from `dataport token new`
    python secure.py --addr https://dataport.example.com:50051 --ca ca.pem

A method outside the token's scopes is refused with PERMISSION_DENIED,
naming the scope it needs.
"""

from __future__ import annotations

import argparse

import grpc

from dataport_client import Client
from dataport_client.compat import helloworld_pb2
from dataport_client.dataport.files.v1 import files_pb2
from dataport_client.dataport.market.v1 import market_pb2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="https://localhost:50051", help="the server, https://host:port")
    parser.add_argument("--ca", help="CA certificates (PEM) to check the server's against, instead of grpcio's roots")
    parser.add_argument("--cert", help="a client certificate (PEM), for mutual TLS; with --key")
    parser.add_argument("--key", help="the private key (PEM) of --cert")
    parser.add_argument("--token", help="the token (default: DATAPORT_TOKEN)")
    parser.add_argument("--name", default="you")
    args = parser.parse_args()

    with Client(args.addr, ca=args.ca, cert=args.cert, key=args.key, token=args.token, timeout=10) as client:
        reply = client.greeter.SayHello(helloworld_pb2.HelloRequest(name=args.name), timeout=10)
        print("Greeter client received: " + reply.message)
        symbols = client.market.ListSymbols(market_pb2.ListSymbolsRequest(), timeout=10)
        print("symbols: " + ", ".join(s.symbol for s in symbols.symbols))
        try:
            listed = client.files.List(files_pb2.ListRequest(), timeout=10)
            print(f"files: {len(listed.files)} stored")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            print(f"files: refused, {e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
