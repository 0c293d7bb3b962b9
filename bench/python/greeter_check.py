"""Checks what a Greeter under benchmark answers (bench/run; see bench/README.md).

    greeter_check.py ADDR N

h2load counts reply bytes but never looks at them. This makes N SayHello
calls to ADDR with names of different lengths (and the benchmark's own
"world"), without generated code, and compares each reply's bytes exactly
with the protobuf HelloReply{message: "Hello, NAME!"}; the first difference
fails the run (exit status 1, naming the call). Prints `replies N checked`.
"""

import sys

import grpc


def field1(text):
    """A protobuf message with string field 1 = text (text under 128 bytes)."""
    data = text.encode()
    assert len(data) < 128
    return b"\x0a" + bytes([len(data)]) + data


def main():
    addr, n = sys.argv[1], int(sys.argv[2])
    names = ["world"] + [f"caller-{i}-" + "x" * (i % 50) for i in range(1, n)]
    with grpc.insecure_channel(addr) as channel:
        say_hello = channel.unary_unary("/helloworld.Greeter/SayHello")
        for name in names:
            got = say_hello(field1(name), timeout=10)
            want = field1(f"Hello, {name}!")
            if got != want:
                sys.exit(f"SayHello({name!r}) answered {got!r}, want {want!r}")
    print(f"replies {len(names)} checked")


if __name__ == "__main__":
    main()
