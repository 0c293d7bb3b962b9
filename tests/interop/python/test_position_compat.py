"""posXYZ.PositionService, called as the seed's publisher and viewer call it,
through grpcio's synchronous API and through grpc.aio."""

import math

import grpc
import position_pb2 as pos
import position_pb2_grpc
import pytest

from interop import RPC_TIMEOUT, expect_status


@pytest.fixture
def pos_xyz(api):
    return api.stub(position_pb2_grpc.PositionServiceStub)


def pub(stub, x, y, z, msg="interop"):
    return stub.PositionPub(pos.Position(position=pos.Pos(x=x, y=y, z=z), msg=msg), timeout=RPC_TIMEOUT)


def req(stub):
    return stub.PositionReq(pos.Msg(), timeout=RPC_TIMEOUT)


def test_position_starts_at_x1_before_any_publish(fresh_channel):
    reply = req(position_pb2_grpc.PositionServiceStub(fresh_channel))
    assert reply.status == 0
    assert reply.position == pos.Pos(x=1.0, y=0.0, z=0.0)


def test_position_pub_is_acknowledged_with_status_zero(pos_xyz):
    assert pub(pos_xyz, 1.0, 2.0, 3.0).status == 0


def test_position_req_returns_the_latest_published_position(pos_xyz):
    # Values a float32 holds exactly, since Pos is float.
    pub(pos_xyz, 10.5, 20.25, -30.125)
    pub(pos_xyz, -0.5, 0.75, 1024.0)
    reply = req(pos_xyz)
    assert reply.status == 0
    assert reply.position == pos.Pos(x=-0.5, y=0.75, z=1024.0)


@pytest.mark.parametrize(
    "coords,axis",
    [((math.nan, 0.0, 0.0), "x"), ((0.0, math.inf, 0.0), "y"), ((0.0, 0.0, -math.inf), "z")],
    ids=["nan-x", "inf-y", "minus-inf-z"],
)
def test_position_pub_of_a_non_finite_coordinate_is_invalid_argument_naming_the_axis(pos_xyz, coords, axis):
    pub(pos_xyz, 4.0, 5.0, 6.0)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, axis):
        pub(pos_xyz, *coords)
    assert req(pos_xyz).position == pos.Pos(x=4.0, y=5.0, z=6.0)
