"""upload_file and download_file against the real server: sha256 checked,
progress reported, resumable uploads continuing where the server stands,
atomic downloads."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import DataportServer
from helpers import TRANSFER_TIMEOUT, expect_status

import dataport_client
from dataport_client.dataport.files.v1 import files_pb2
from dataport_client.files import download
from dataport_client.google.bytestream import bytestream_pb2

MiB = 1024 * 1024


class Cut(Exception):
    """What a progress callback raises to cut an upload off."""


def new_name(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}.bin"


def random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def recorder() -> tuple[list[tuple[int, int]], dataport_client.Progress]:
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def assert_progress(calls: list[tuple[int, int]], start: int, size: int, chunk: int = MiB) -> None:
    """From start to size by whole chunks (the last one shorter), every call
    with the total."""
    want = [start, *range(start + chunk, size, chunk)]
    if size > start:
        want.append(size)
    assert [done for done, _ in calls] == want
    assert {total for _, total in calls} == {size}


def test_a_file_uploads_and_downloads_whole_with_its_sha256_and_progress(client: dataport_client.Client, tmp_path: Path) -> None:
    size = 2 * MiB + 12_345
    src = tmp_path / "src.bin"
    digest = random_file(src, size)
    name = new_name("round-trip")

    calls, progress = recorder()
    info = client.upload_file(src, name, progress=progress, timeout=TRANSFER_TIMEOUT)
    assert (info.name, info.size, info.sha256) == (name, size, digest)
    assert info.create_time is not None and info.update_time is not None
    assert_progress(calls, 0, size)
    assert client.stat_file(name) == info

    out = tmp_path / "out"
    out.mkdir()
    calls, progress = recorder()
    got = client.download_file(name, out, progress=progress, timeout=TRANSFER_TIMEOUT)
    assert got == info
    assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert os.listdir(out) == [name], "the temporary file must be gone"


def test_the_name_defaults_to_the_base_name_and_an_empty_file_round_trips(client: dataport_client.Client, tmp_path: Path) -> None:
    src = tmp_path / new_name("empty")
    src.write_bytes(b"")
    calls, progress = recorder()
    info = client.upload_file(src, progress=progress, timeout=TRANSFER_TIMEOUT)
    assert (info.name, info.size, info.sha256) == (src.name, 0, hashlib.sha256(b"").hexdigest())
    assert calls == [(0, 0)]
    dest = tmp_path / "copy"
    assert client.download_file(src.name, dest, timeout=TRANSFER_TIMEOUT) == info
    assert dest.read_bytes() == b""


def test_a_download_replaces_the_destination_whole(client: dataport_client.Client, tmp_path: Path) -> None:
    name = new_name("replace")
    src = tmp_path / "src.bin"
    digest = random_file(src, MiB + 1)
    client.upload_file(src, name, timeout=TRANSFER_TIMEOUT)
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"old content")
    client.download_file(name, dest, timeout=TRANSFER_TIMEOUT)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest


def test_a_missing_file_is_not_found_and_leaves_the_destination_alone(client: dataport_client.Client, tmp_path: Path) -> None:
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"old content")
    with expect_status(grpc.StatusCode.NOT_FOUND):
        client.download_file(new_name("missing"), dest, timeout=TRANSFER_TIMEOUT)
    assert dest.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["dest.bin"], "no temporary file may be left"
    with expect_status(grpc.StatusCode.NOT_FOUND):
        client.stat_file(new_name("missing"))


@pytest.mark.parametrize("name", ["a/b", "..", ""])
def test_a_bad_name_is_invalid_argument(client: dataport_client.Client, tmp_path: Path, name: str) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT):
        client.upload_file(src, name, timeout=TRANSFER_TIMEOUT)


def test_an_upload_cut_off_stores_nothing_and_raises_what_cut_it(client: dataport_client.Client, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    random_file(src, 3 * MiB)
    name = new_name("cut")

    def progress(done: int, total: int) -> None:
        if done >= 2 * MiB:
            raise Cut()

    with pytest.raises(Cut):
        client.upload_file(src, name, progress=progress, timeout=TRANSFER_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND):
        client.stat_file(name)


def cut_once_stored(server: DataportServer, upload_id: str, at: int) -> dataport_client.Progress:
    """A progress callback that cuts the upload once `at` bytes are sent and
    the server has written some of them to its resumable file (the interop
    suite waits for the same file), so the cut leaves something to resume
    from even when grpc drops data still queued at the cancel."""
    path = server.data_dir / "files" / ".tmp" / "resumable" / upload_id

    def progress(done: int, total: int) -> None:
        if done < at:
            return
        deadline = time.monotonic() + 10
        while not (path.exists() and path.stat().st_size > 0):
            assert time.monotonic() < deadline, f"upload {upload_id} never reached {path}"
            time.sleep(0.01)
        raise Cut()

    return progress


def status(client: dataport_client.Client, resource: str) -> tuple[int, bool]:
    s = client.bytestream.QueryWriteStatus(bytestream_pb2.QueryWriteStatusRequest(resource_name=resource), timeout=10)
    return s.committed_size, s.complete


def committed(client: dataport_client.Client, resource: str) -> int:
    """Where a cut-off upload stands once the server has wound its Write
    down: the committed size, confirmed by an empty Write there. Until then
    the old Write holds the upload (ABORTED) and the size may still grow
    (OUT_OF_RANGE)."""
    deadline = time.monotonic() + 10
    while True:
        size, complete = status(client, resource)
        assert not complete, "a cut-off upload must not be finished"
        try:
            empty = bytestream_pb2.WriteRequest(resource_name=resource, write_offset=size)
            assert client.bytestream.Write(iter([empty]), timeout=10).committed_size == size
            return size
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            if code not in (grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_a_resumable_upload_cut_off_continues_from_the_committed_offset(
    client: dataport_client.Client, server: DataportServer, tmp_path: Path
) -> None:
    size = 6 * MiB + 4321
    src = tmp_path / "src.bin"
    digest = random_file(src, size)
    name = new_name("resume")
    resource = dataport_client.write_resource(name, digest)
    assert resource == f"uploads/{dataport_client.upload_id(name, digest)}/files/{name}/sha256/{digest}"

    cut = cut_once_stored(server, dataport_client.upload_id(name, digest), 4 * MiB)
    with pytest.raises(Cut):
        client.upload_file(src, name, resume=True, progress=cut, timeout=TRANSFER_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND):
        client.stat_file(name)
    at = committed(client, resource)
    assert 0 < at <= 4 * MiB, at

    calls, progress = recorder()
    info = client.upload_file(src, name, resume=True, progress=progress, timeout=TRANSFER_TIMEOUT)
    # It sent only what the server did not hold.
    assert_progress(calls, at, size)
    assert (info.name, info.size, info.sha256) == (name, size, digest)
    assert status(client, resource) == (size, True)
    dest = tmp_path / "back.bin"
    client.download_file(name, dest, timeout=TRANSFER_TIMEOUT)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest

    # Once stored, a rerun sends nothing and answers the stored file.
    calls, progress = recorder()
    assert client.upload_file(src, name, resume=True, progress=progress, timeout=TRANSFER_TIMEOUT) == info
    assert calls == [(size, size)]


def test_a_resumable_upload_rerun_at_once_after_a_cut_completes(client: dataport_client.Client, tmp_path: Path) -> None:
    # The server may still be winding the cut Write down when the rerun
    # starts (its QueryWriteStatus can answer less than it ends up holding):
    # the rerun waits that out and stores the file whole.
    size = 3 * MiB + 5
    src = tmp_path / "src.bin"
    digest = random_file(src, size)
    name = new_name("rerun")

    def cut_at_2_mib(done: int, total: int) -> None:
        if done >= 2 * MiB:
            raise Cut()

    for _ in range(3):
        with pytest.raises(Cut):
            client.upload_file(src, name, resume=True, progress=cut_at_2_mib, timeout=TRANSFER_TIMEOUT)
    info = client.upload_file(src, name, resume=True, timeout=TRANSFER_TIMEOUT)
    assert (info.size, info.sha256) == (size, digest)
    dest = tmp_path / "back.bin"
    client.download_file(name, dest, timeout=TRANSFER_TIMEOUT)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest


def test_a_resumable_upload_of_a_deleted_file_stores_it_again(client: dataport_client.Client, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    digest = random_file(src, MiB + 3)
    name = new_name("again")
    client.upload_file(src, name, resume=True, timeout=TRANSFER_TIMEOUT)
    client.files.Delete(files_pb2.DeleteRequest(name=name), timeout=10)
    calls, progress = recorder()
    info = client.upload_file(src, name, resume=True, progress=progress, timeout=TRANSFER_TIMEOUT)
    assert (info.size, info.sha256) == (MiB + 3, digest)
    assert_progress(calls, 0, MiB + 3)
    # The second upload went under the next generation's id.
    assert status(client, dataport_client.write_resource(name, digest, generation=1)) == (MiB + 3, True)


def test_the_dataport_cli_continues_an_upload_this_client_started(
    client: dataport_client.Client, server: DataportServer, dataport_bin: str, tmp_path: Path
) -> None:
    # Both derive the upload id from the name and the content, so the CLI's
    # `upload --resume` finishes the very upload cut off here.
    size = 3 * MiB + 99
    src = tmp_path / "src.bin"
    digest = random_file(src, size)
    name = new_name("cli")
    resource = dataport_client.write_resource(name, digest)

    cut = cut_once_stored(server, dataport_client.upload_id(name, digest), 2 * MiB)
    with pytest.raises(Cut):
        client.upload_file(src, name, resume=True, progress=cut, timeout=TRANSFER_TIMEOUT)
    assert committed(client, resource) > 0
    done = subprocess.run(
        [dataport_bin, "upload", "--server", f"http://{server.addr}", "--resume", "--name", name, str(src)],
        capture_output=True, text=True, timeout=TRANSFER_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert status(client, resource) == (size, True)
    assert client.stat_file(name).sha256 == digest


class FakeDownload:
    """A Download reply stream that says one thing and sends another, as no
    sound server does; only the client's own checks stand between it and
    the destination."""

    def __init__(self, replies: list[files_pb2.DownloadResponse]) -> None:
        self.replies = replies
        self.cancelled = False

    def Download(self, request: files_pb2.DownloadRequest, timeout: float | None = None) -> FakeDownload:
        return self

    def __iter__(self) -> Iterator[files_pb2.DownloadResponse]:
        return iter(self.replies)

    def cancel(self) -> bool:
        self.cancelled = True
        return True


@pytest.mark.parametrize(
    "announced, chunks, complaint",
    [
        (files_pb2.File(name="x", size=5, sha256=hashlib.sha256(b"hello").hexdigest()), [b"hellO"], "sha256"),
        (files_pb2.File(name="x", size=5, sha256=hashlib.sha256(b"hello").hexdigest()), [b"hel"], "ended at 3"),
        (files_pb2.File(name="x", size=3, sha256=hashlib.sha256(b"hel").hexdigest()), [b"hello"], "more than"),
        (None, [b"hello"], "before describing"),
    ],
)
def test_a_download_that_is_not_what_was_announced_leaves_the_destination_alone(
    tmp_path: Path, announced: files_pb2.File | None, chunks: list[bytes], complaint: str
) -> None:
    replies = [files_pb2.DownloadResponse(file=announced)] if announced else []
    replies += [files_pb2.DownloadResponse(chunk=c) for c in chunks]
    fake = FakeDownload(replies)
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"old content")
    with pytest.raises(dataport_client.TransferError, match=complaint):
        download(fake, "x", dest, progress=None, timeout=None)  # type: ignore[arg-type]
    assert fake.cancelled
    assert dest.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["dest.bin"], "no temporary file may be left"
