"""google.bytestream.ByteStream from grpcio, sync and grpc.aio: writes in one
go and in pieces, offset reads, checksums, and uploads resumed after the
client or the server died mid-upload."""

import asyncio
import hashlib
import os
import threading
import time
import uuid

import grpc
import pytest

from conftest import open_channel
from google.bytestream import bytestream_pb2 as pb
from google.bytestream import bytestream_pb2_grpc as pb_grpc
from interop import RPC_TIMEOUT, expect_status

CHUNK = 256 * 1024


@pytest.fixture
def stub(channel):
    return pb_grpc.ByteStreamStub(channel)


def new_upload(name_tag):
    """A fresh upload id and file name."""
    tag = uuid.uuid4().hex[:8]
    return f"up-{tag}", f"{name_tag}-{tag}.bin"


def resource(upload_id, name, sha256=None):
    base = f"uploads/{upload_id}/files/{name}"
    return f"{base}/sha256/{sha256}" if sha256 else base


def requests(res, data, offset=0, chunk=CHUNK, finish=True):
    """`data` written from `offset`: the first message names the resource,
    the last one finishes the upload if `finish`."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    at = offset
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        yield pb.WriteRequest(
            resource_name=res if i == 0 else "",
            write_offset=at,
            finish_write=finish and last,
            data=piece,
        )
        at += len(piece)


def read(stub, name, offset=0, limit=0):
    replies = stub.Read(pb.ReadRequest(resource_name=f"files/{name}", read_offset=offset, read_limit=limit), timeout=RPC_TIMEOUT)
    return b"".join(r.data for r in replies)


def status(stub, res):
    reply = stub.QueryWriteStatus(pb.QueryWriteStatusRequest(resource_name=res), timeout=RPC_TIMEOUT)
    return reply.committed_size, reply.complete


def resume_point(stub, res):
    """Where a client continues after its Write was cut off: the committed
    size, confirmed by an empty Write there. The server may still be winding
    the old call down (ABORTED, or a size that still grows: OUT_OF_RANGE)."""
    deadline = time.monotonic() + RPC_TIMEOUT
    while True:
        size, complete = status(stub, res)
        assert not complete, "a cut-off upload must not be finished"
        try:
            confirmed = stub.Write(requests(res, b"", offset=size, finish=False), timeout=RPC_TIMEOUT)
            assert confirmed.committed_size == size
            return size
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def wait_for_data_file(data_dir, upload_id):
    """Waits until the server has written part of upload `upload_id` to disk."""
    path = data_dir / "files" / ".tmp" / "resumable" / upload_id
    deadline = time.monotonic() + RPC_TIMEOUT
    while not (path.exists() and path.stat().st_size > 0):
        assert time.monotonic() < deadline, f"upload {upload_id} never reached {path}"
        time.sleep(0.01)


def test_a_write_in_one_go_reads_back_and_is_complete(stub):
    upload_id, name = new_upload("one-go")
    data = os.urandom(3 * 1024 * 1024 + 777)
    res = resource(upload_id, name, hashlib.sha256(data).hexdigest())
    reply = stub.Write(requests(res, data, chunk=100_003), timeout=RPC_TIMEOUT)
    assert reply.committed_size == len(data)
    assert read(stub, name) == data
    assert status(stub, res) == (len(data), True)
    # A finished upload answers its size again without writing.
    again = stub.Write(requests(res, b"other"), timeout=RPC_TIMEOUT)
    assert again.committed_size == len(data)
    assert read(stub, name) == data


def test_reads_take_offsets_and_limits(stub):
    upload_id, name = new_upload("read")
    data = os.urandom(600_000)
    stub.Write(requests(resource(upload_id, name), data), timeout=RPC_TIMEOUT)
    for offset, limit in [(0, 0), (1, 0), (10, 20), (300_000, 299_999), (599_999, 0), (600_000, 0), (0, 10**9)]:
        end = len(data) if limit == 0 else min(len(data), offset + limit)
        assert read(stub, name, offset, limit) == data[offset:end], (offset, limit)
    with expect_status(grpc.StatusCode.OUT_OF_RANGE, "read_offset", "600001"):
        read(stub, name, 600_001)
    with expect_status(grpc.StatusCode.OUT_OF_RANGE, "read_offset", "negative"):
        read(stub, name, -1)
    with expect_status(grpc.StatusCode.OUT_OF_RANGE, "read_limit", "negative"):
        read(stub, name, 0, -1)
    with expect_status(grpc.StatusCode.NOT_FOUND):
        read(stub, f"missing-{uuid.uuid4().hex}")


def test_a_checksum_mismatch_is_data_loss_and_stores_nothing(stub):
    upload_id, name = new_upload("mismatch")
    res = resource(upload_id, name, hashlib.sha256(b"not this").hexdigest())
    with expect_status(grpc.StatusCode.DATA_LOSS, "sha256", "mismatch"):
        stub.Write(requests(res, os.urandom(100_000)), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND):
        read(stub, name)
    with expect_status(grpc.StatusCode.NOT_FOUND, "start", "Write", "offset"):
        status(stub, res)


def test_bad_offsets_and_names_are_refused(stub):
    upload_id, name = new_upload("bad")
    res = resource(upload_id, name)
    stub.Write(requests(res, b"0123456789", finish=False), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.OUT_OF_RANGE, "offset", "3", "10"):
        stub.Write(requests(res, b"x", offset=3), timeout=RPC_TIMEOUT)
    for bad in ["", "files/x", "uploads/../files/x", "uploads/u/files/a/b", "uploads/u/files/x/sha256/12"]:
        with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "resource_name"):
            stub.Write(requests(bad, b"x"), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "resource_name", "expected"):
        status(stub, "uploads/../files/x")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "resource_name", "expected"):
        read(stub, "../etc/passwd")
    assert status(stub, res) == (10, False)


def test_grpc_aio_writes_in_pieces_resuming_from_query_write_status(server):
    upload_id, name = new_upload("aio")
    res = resource(upload_id, name)
    data = os.urandom(2 * 1024 * 1024 + 5)

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = pb_grpc.ByteStreamStub(ch)
            with expect_status(grpc.StatusCode.NOT_FOUND, "start", "Write"):
                await stub.QueryWriteStatus(pb.QueryWriteStatusRequest(resource_name=res), timeout=RPC_TIMEOUT)
            cuts = [0, 1, 700_000, 1_500_000, len(data)]
            for start, end in zip(cuts, cuts[1:]):
                reply = await stub.QueryWriteStatus(pb.QueryWriteStatusRequest(resource_name=res), timeout=RPC_TIMEOUT) if start else None
                assert reply is None or (reply.committed_size, reply.complete) == (start, False)

                async def pieces(start=start, end=end):
                    for r in requests(res, data[start:end], offset=start, chunk=65_536, finish=end == len(data)):
                        yield r

                written = await stub.Write(pieces(), timeout=RPC_TIMEOUT)
                assert written.committed_size == end
            final = await stub.QueryWriteStatus(pb.QueryWriteStatusRequest(resource_name=res), timeout=RPC_TIMEOUT)
            back = [r.data async for r in stub.Read(pb.ReadRequest(resource_name=f"files/{name}"), timeout=RPC_TIMEOUT)]
            return final, b"".join(back)

    final, back = asyncio.run(main())
    assert (final.committed_size, final.complete) == (len(data), True)
    assert back == data


def test_an_upload_resumes_after_the_client_cancels_mid_upload(stub, server, tmp_path):
    upload_id, name = new_upload("cancelled")
    data = os.urandom(4 * 1024 * 1024)
    res = resource(upload_id, name, hashlib.sha256(data).hexdigest())
    sent = threading.Event()
    release = threading.Event()

    def first_half():
        yield from requests(res, data[: 2 * 1024 * 1024], finish=False)
        sent.set()
        release.wait(RPC_TIMEOUT)  # the client "dies" here

    future = stub.Write.future(first_half(), timeout=RPC_TIMEOUT)
    assert sent.wait(RPC_TIMEOUT)
    wait_for_data_file(server.data_dir, upload_id)
    future.cancel()
    release.set()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()
    with expect_status(grpc.StatusCode.NOT_FOUND):
        read(stub, name)

    at = resume_point(stub, res)
    assert 0 < at <= 2 * 1024 * 1024
    reply = stub.Write(requests(res, data[at:], offset=at), timeout=RPC_TIMEOUT)
    assert reply.committed_size == len(data)
    assert hashlib.sha256(read(stub, name)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_an_upload_resumes_after_the_server_is_killed_and_restarted(servers_on_one_data_dir):
    upload_id, name = new_upload("killed")
    data = os.urandom(4 * 1024 * 1024 + 12_345)
    digest = hashlib.sha256(data).hexdigest()
    res = resource(upload_id, name, digest)
    first = servers_on_one_data_dir()
    release = threading.Event()

    def until_killed():
        yield from requests(res, data[: 3 * 1024 * 1024], finish=False)
        release.wait(RPC_TIMEOUT)

    with open_channel(first.addr) as ch:
        future = pb_grpc.ByteStreamStub(ch).Write.future(until_killed(), timeout=RPC_TIMEOUT)
        wait_for_data_file(first.data_dir, upload_id)
        first.kill()  # SIGKILL: no drain, no flush, no goodbye
        with pytest.raises(grpc.RpcError) as failed:
            future.result()
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        release.set()

    second = servers_on_one_data_dir()
    with open_channel(second.addr) as ch:
        stub = pb_grpc.ByteStreamStub(ch)
        at, complete = status(stub, res)
        assert not complete and 0 < at <= 3 * 1024 * 1024, at
        with expect_status(grpc.StatusCode.NOT_FOUND):
            read(stub, name)
        reply = stub.Write(requests(res, data[at:], offset=at), timeout=RPC_TIMEOUT)
        assert reply.committed_size == len(data)
        assert status(stub, res) == (len(data), True)
        back = read(stub, name)
    assert len(back) == len(data)
    assert hashlib.sha256(back).hexdigest() == digest
