"""grpc.health.v1.Health, as load balancers and `grpc_health_probe` ask it."""

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
def health(channel):
    return health_pb2_grpc.HealthStub(channel)


@pytest.mark.parametrize("service", SERVED, ids=lambda s: s or "<server>")
def test_every_served_service_is_serving(health, service):
    reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unknown_service_is_not_found(health):
    with expect_status(grpc.StatusCode.NOT_FOUND):
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT)
