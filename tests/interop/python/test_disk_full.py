"""A full disk, for real: the server's data dir on a small tmpfs. Every
upload path answers RESOURCE_EXHAUSTED saying the disk is full, stores
nothing, leaves no plain temp data behind, and the server keeps serving
(the file stored before is intact, and a small upload still works once
there is room)."""

import hashlib
import os
import subprocess
import uuid

import file_pb2 as f
import file_pb2_grpc as f_grpc
import grpc
import pytest

from conftest import DataportServer, open_channel
from dataport.files.v1 import files_pb2 as pb
from dataport.files.v1 import files_pb2_grpc as pb_grpc
from google.bytestream import bytestream_pb2 as bs
from google.bytestream import bytestream_pb2_grpc as bs_grpc
from interop import RPC_TIMEOUT, expect_status

DISK = 48 * 1024 * 1024
CHUNK = 1024 * 1024
TOO_BIG = 64 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB tmpfs (needs root, as the test machines give)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        # Not a skip: a machine that cannot run the test must not pass it.
        pytest.fail(f"cannot mount a tmpfs (the test needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def full_disk_server(dataport_bin, small_disk):
    srv = DataportServer(dataport_bin, small_disk / "data", extra_args=["--no-sample-data"]).start()
    try:
        yield srv
    finally:
        srv.stop()


def chunks(total):
    """`total` bytes of random data in 1 MiB pieces, made as they are sent."""
    for offset in range(0, total, CHUNK):
        yield os.urandom(min(CHUNK, total - offset))


def plain_temp_files(data_dir):
    tmp = data_dir / "files" / ".tmp"
    return [p for p in tmp.iterdir() if p.name != "resumable"]


def test_every_upload_path_answers_a_full_disk_and_the_server_keeps_serving(full_disk_server):
    data_dir = full_disk_server.data_dir
    with open_channel(full_disk_server.addr) as channel:
        files = pb_grpc.FilesServiceStub(channel)
        compat = f_grpc.FileSrvStub(channel)
        stream = bs_grpc.ByteStreamStub(channel)

        kept = os.urandom(100_000)
        files.Upload(
            iter([pb.UploadRequest(header=pb.UploadHeader(name="kept.bin")), pb.UploadRequest(chunk=kept)]),
            timeout=RPC_TIMEOUT,
        )

        def v1_upload():
            yield pb.UploadRequest(header=pb.UploadHeader(name="kept.bin"))
            for piece in chunks(TOO_BIG):
                yield pb.UploadRequest(chunk=piece)

        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "disk", "full"):
            files.Upload(v1_upload(), timeout=RPC_TIMEOUT)

        def compat_upload():
            yield f.UploadRequest(header=f.FileHeader(filename="big", extension=".bin"))
            for piece in chunks(TOO_BIG):
                yield f.UploadRequest(chunk_data=piece)

        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "disk", "full"):
            compat.UploadFile(compat_upload(), timeout=RPC_TIMEOUT)

        upload_id = uuid.uuid4().hex
        resource = f"uploads/{upload_id}/files/big.bin"

        def writes():
            offset = 0
            for piece in chunks(TOO_BIG):
                yield bs.WriteRequest(resource_name=resource, write_offset=offset, data=piece)
                offset += len(piece)
            yield bs.WriteRequest(write_offset=offset, finish_write=True)

        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "disk", "full"):
            stream.Write(writes(), timeout=RPC_TIMEOUT)

        # Nothing was stored over the old file, and no plain upload left data.
        assert plain_temp_files(data_dir) == []
        listed = {file.name: file for file in files.List(pb.ListRequest(), timeout=RPC_TIMEOUT).files}
        assert set(listed) == {"kept.bin"}
        assert listed["kept.bin"].sha256 == hashlib.sha256(kept).hexdigest()
        got = b"".join(r.data for r in stream.Read(bs.ReadRequest(resource_name="files/kept.bin"), timeout=RPC_TIMEOUT))
        assert got == kept

        # The cut-off resumable upload keeps its durable part for a resume;
        # dropping it (as its age limit would) makes room again.
        status = stream.QueryWriteStatus(bs.QueryWriteStatusRequest(resource_name=resource), timeout=RPC_TIMEOUT)
        assert not status.complete and status.committed_size < TOO_BIG
        for leftover in (data_dir / "files" / ".tmp" / "resumable").iterdir():
            leftover.unlink()

        small = os.urandom(2 * CHUNK)
        reply = files.Upload(
            iter([pb.UploadRequest(header=pb.UploadHeader(name="after.bin")), pb.UploadRequest(chunk=small)]),
            timeout=RPC_TIMEOUT,
        )
        assert reply.file.size == len(small)
