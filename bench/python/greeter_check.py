"""Checks what a Greeter under benchmark answers (bench/run; see bench/README.md).

    greeter_check.py [--ca CA_PEM] ADDR N

h2load counts reply bytes but never looks at them. This makes N SayHello
calls to ADDR with names of different lengths (and the benchmark's own
"world"), without generated code, and compares each reply's bytes exactly
with the protobuf HelloReply{message: "Hello, NAME!"}; the first difference
fails the run (exit status 1, naming the call). Prints `replies N checked`.

With --ca, the calls go over TLS, the server's certificate checked against
CA_PEM. With GREETER_TOKEN in the environment, every call sends
`authorization: Bearer GREETER_TOKEN`, and one more call without it must be
refused with UNAUTHENTICATED (a server that lets it through is not checking
tokens, and its figures would not be those of a server that does); then it
prints `replies N checked, 1 call without the token refused`.
"""

import os
import sys

import grpc


def field1(text):
    """A protobuf message with string field 1 = text (text under 128 bytes)."""
    data = text.encode()
    assert len(data) < 128
    return b"\x0a" + bytes([len(data)]) + data


def main():
    args = sys.argv[1:]
    ca = None
    if args[:1] == ["--ca"]:
        ca, args = args[1], args[2:]
    addr, n = args[0], int(args[1])
    token = os.environ.get("GREETER_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else None
    names = ["world"] + [f"caller-{i}-" + "x" * (i % 50) for i in range(1, n)]
    if ca is None:
        channel = grpc.insecure_channel(addr)
    else:
        with open(ca, "rb") as f:
            channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f.read()))
    with channel:
        say_hello = channel.unary_unary("/helloworld.Greeter/SayHello")
        for name in names:
            try:
                got = say_hello(field1(name), timeout=10, metadata=metadata)
            except grpc.RpcError as e:
                sys.exit(f"SayHello({name!r}) failed: {e.code().name}: {e.details()}")
            want = field1(f"Hello, {name}!")
            if got != want:
                sys.exit(f"SayHello({name!r}) answered {got!r}, want {want!r}")
        refused = ""
        if token:
            try:
                got = say_hello(field1("no token"), timeout=10)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                    sys.exit(f"SayHello without a token failed with {e.code().name}, want UNAUTHENTICATED")
            else:
                sys.exit(f"SayHello without a token answered {got!r}, want UNAUTHENTICATED")
            refused = ", 1 call without the token refused"
    print(f"replies {len(names)} checked{refused}")


if __name__ == "__main__":
    main()
