"""grpc.health.v1.Health, as load balancers and `grpc_health_probe` ask it:
Check and List through grpcio's synchronous API and through grpc.aio, and
Watch."""

import signal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from interop import RPC_TIMEOUT, expect_status

SERVED = [
    "",  # the server as a whole
    "helloworld.Greeter",
    "routeguide.RouteGuide",
    "posXYZ.PositionService",
    "dataport.position.v1.PositionService",
    "idc.Indicator",
    "idc.IndicatorGraph",
    "dataport.market.v1.MarketService",
    "pb.Outliers",
    "dataport.outliers.v1.OutliersService",
    "FileSrv",
    "FileTransfer.FileService",
    "google.bytestream.ByteStream",
    "dataport.files.v1.FilesService",
]


@pytest.fixture
def health(api):
    return api.stub(health_pb2_grpc.HealthStub)


@pytest.mark.parametrize("service", SERVED, ids=lambda s: s or "<server>")
def test_every_served_service_is_serving(health, service):
    reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unknown_service_is_not_found(health):
    with expect_status(grpc.StatusCode.NOT_FOUND, "no.such.Service"):
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT)


def test_list_answers_every_served_service_serving(health):
    reply = health.List(health_pb2.HealthListRequest(), timeout=RPC_TIMEOUT)
    assert sorted(reply.statuses) == sorted(SERVED)
    assert {r.status for r in reply.statuses.values()} == {health_pb2.HealthCheckResponse.SERVING}


# Watch


def test_watch_answers_serving_at_once_and_not_serving_when_the_server_drains(fresh_channel, fresh_server):
    health = health_pb2_grpc.HealthStub(fresh_channel)
    whole = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT)
    greeter = health.Watch(health_pb2.HealthCheckRequest(service="helloworld.Greeter"), timeout=RPC_TIMEOUT)
    assert next(whole).status == next(greeter).status == health_pb2.HealthCheckResponse.SERVING
    fresh_server.process.send_signal(signal.SIGTERM)
    # Told before the streams end, so a balancer moves away at once.
    assert next(whole).status == next(greeter).status == health_pb2.HealthCheckResponse.NOT_SERVING
    for call in (whole, greeter):
        with expect_status(grpc.StatusCode.UNAVAILABLE):
            next(call)
    # fresh_server's teardown checks that the server then exits 0 in time.


def test_watch_of_an_unknown_service_answers_service_unknown_and_stays_open(channel):
    call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT)
    try:
        assert next(call).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        assert call.is_active()
    finally:
        call.cancel()
