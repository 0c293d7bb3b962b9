"""The RouteGuide client, as grpc's route_guide_client.py writes it: the
four RPCs (simple, server streaming, client streaming, bidirectional), with
the stubs from dataport_client. The server's features are its built-in
landmarks unless it runs with --features.

    python route_guide.py --addr 127.0.0.1:50051
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator

import grpc

from dataport_client.compat import route_guide_pb2, route_guide_pb2_grpc


def make_route_note(message: str, latitude: int, longitude: int) -> route_guide_pb2.RouteNote:
    return route_guide_pb2.RouteNote(
        message=message, location=route_guide_pb2.Point(latitude=latitude, longitude=longitude)
    )


def format_point(point: route_guide_pb2.Point) -> str:
    return f"latitude: {point.latitude}, longitude: {point.longitude}"


def guide_get_one_feature(stub: route_guide_pb2_grpc.RouteGuideStub, point: route_guide_pb2.Point) -> None:
    feature = stub.GetFeature(point, timeout=10)
    if not feature.HasField("location"):
        print("Server returned incomplete feature")
        return
    if feature.name:
        print(f"Feature called {feature.name} at {format_point(feature.location)}")
    else:
        print(f"Found no feature at {format_point(feature.location)}")


def guide_get_feature(stub: route_guide_pb2_grpc.RouteGuideStub) -> None:
    guide_get_one_feature(stub, route_guide_pb2.Point(latitude=488583701, longitude=22944813))
    guide_get_one_feature(stub, route_guide_pb2.Point(latitude=0, longitude=0))


def guide_list_features(stub: route_guide_pb2_grpc.RouteGuideStub) -> None:
    rectangle = route_guide_pb2.Rectangle(
        lo=route_guide_pb2.Point(latitude=350000000, longitude=-100000000),
        hi=route_guide_pb2.Point(latitude=600000000, longitude=400000000),
    )
    print("Looking for features between 35, -10 and 60, 40")
    for feature in stub.ListFeatures(rectangle, timeout=10):
        print(f"Feature called {feature.name} at {format_point(feature.location)}")


def generate_route(feature_list: list[route_guide_pb2.Feature]) -> Iterator[route_guide_pb2.Point]:
    for _ in range(10):
        random_feature = random.choice(feature_list)
        print(f"Visiting point {format_point(random_feature.location)}")
        yield random_feature.location


def guide_record_route(stub: route_guide_pb2_grpc.RouteGuideStub) -> None:
    # grpc's example reads route_guide_db.json; here the server's own
    # features stand in for it.
    world = route_guide_pb2.Rectangle(
        lo=route_guide_pb2.Point(latitude=-900000000, longitude=-1800000000),
        hi=route_guide_pb2.Point(latitude=900000000, longitude=1800000000),
    )
    feature_list = list(stub.ListFeatures(world, timeout=10))
    route_summary = stub.RecordRoute(generate_route(feature_list), timeout=10)
    print(f"Finished trip with {route_summary.point_count} points ")
    print(f"Passed {route_summary.feature_count} features ")
    print(f"Travelled {route_summary.distance} meters ")
    print(f"It took {route_summary.elapsed_time} seconds ")


def say(line: str) -> None:
    """Prints `line` in one write: during RouteChat, grpc's thread sending
    the notes and the main thread receiving them print at once, and print()
    writes the text and its newline separately, so their lines could mix."""
    sys.stdout.write(line + "\n")


def generate_messages() -> Iterator[route_guide_pb2.RouteNote]:
    messages = [
        make_route_note("First message", 0, 0),
        make_route_note("Second message", 0, 1),
        make_route_note("Third message", 1, 0),
        make_route_note("Fourth message", 0, 0),
        make_route_note("Fifth message", 1, 0),
    ]
    for msg in messages:
        say(f"Sending {msg.message} at {format_point(msg.location)}")
        yield msg


def guide_route_chat(stub: route_guide_pb2_grpc.RouteGuideStub) -> None:
    for response in stub.RouteChat(generate_messages(), timeout=10):
        say(f"Received message {response.message} at {format_point(response.location)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the server, host:port")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        stub = route_guide_pb2_grpc.RouteGuideStub(channel)
        print("-------------- GetFeature --------------")
        guide_get_feature(stub)
        print("-------------- ListFeatures --------------")
        guide_list_features(stub)
        print("-------------- RecordRoute --------------")
        guide_record_route(stub)
        print("-------------- RouteChat --------------")
        guide_route_chat(stub)


if __name__ == "__main__":
    main()
