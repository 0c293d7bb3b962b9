"""The Python baseline for bench/run: helloworld.Greeter on grpcio, written the
way such servers usually are (grpc.server over a ThreadPoolExecutor).

Usage: greeter_server.py LISTEN_ADDR. The helloworld_pb2*.py stubs are generated
by bench/run into bench/out/ and found through PYTHONPATH.
"""

import sys
from concurrent import futures

import grpc

import helloworld_pb2
import helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message=f"Hello, {request.name}!")

    def SayHelloAgain(self, request, context):
        return helloworld_pb2.HelloReply(message=f"Hello again, {request.name}!")


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    if server.add_insecure_port(sys.argv[1]) == 0:
        sys.exit(f"cannot listen on {sys.argv[1]}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
