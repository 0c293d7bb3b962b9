"""File transfers: dataport.files.v1 for plain uploads and downloads,
google.bytestream for uploads that survive a cut.

Nothing here holds a whole file in memory: data moves in chunks of
`chunk_size` bytes (1 MiB by default), hashed as it goes.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Generic, Literal, TypeVar

import grpc

from dataport_client.dataport.files.v1 import files_pb2, files_pb2_grpc
from dataport_client.google.bytestream import bytestream_pb2, bytestream_pb2_grpc

Progress = Callable[[int, int], None]
"""Called as progress(done, total) in bytes: once before the first byte
moves (done is where the transfer starts: 0, or the offset a resumed upload
continues from), then after each chunk. During an upload grpc calls it from
the thread that sends the request stream, not the caller's."""

# How long a resumed upload waits for the server to wind down an earlier
# Write of the same upload (a Write it still runs is ABORTED, and its
# committed size may still grow: OUT_OF_RANGE).
RESUME_RETRY_S = 10.0
# The most finished uploads of one name and content to step over, as the
# dataport CLI does (each one a time the file was uploaded, then deleted or
# replaced).
MAX_GENERATIONS = 1000


class TransferError(Exception):
    """A transfer whose data is not what the server said it would be (size
    or sha256), or a server answer out of protocol. The destination is left
    untouched."""


@dataclass(frozen=True)
class FileInfo:
    """A stored file, as the server describes it."""

    name: str
    size: int
    sha256: str
    create_time: datetime.datetime | None
    update_time: datetime.datetime | None

    @classmethod
    def from_pb(cls, f: files_pb2.File) -> FileInfo:
        def when(field: Literal["create_time", "update_time"]) -> datetime.datetime | None:
            if not f.HasField(field):
                return None
            ts = getattr(f, field)
            return datetime.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=datetime.timezone.utc)

        return cls(f.name, f.size, f.sha256, when("create_time"), when("update_time"))


def upload_id(name: str, sha256: str, generation: int = 0) -> str:
    """The id of the `generation`th resumable upload of `name` with this
    content (lowercase hex sha256): the same name and content always give
    the same ids, so rerunning an upload continues it, from any machine. The
    dataport CLI's `upload --resume` derives the same ids, so either can
    continue what the other started."""
    h = hashlib.sha256(f"dataport upload\n{name}\n{sha256}\n{generation}".encode())
    return h.hexdigest()[:32]


def write_resource(name: str, sha256: str, generation: int = 0) -> str:
    """The ByteStream resource a resumable upload writes:
    uploads/{upload_id}/files/{name}/sha256/{sha256}."""
    return f"uploads/{upload_id(name, sha256, generation)}/files/{name}/sha256/{sha256}"


def _read_chunks(f: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    while chunk := f.read(chunk_size):
        yield chunk


_T = TypeVar("_T")


class _Requests(Generic[_T]):
    """Wraps a request generator so an exception raised inside it (by the
    file, or by a progress callback) is re-raised to the caller instead of
    the CANCELLED or UNKNOWN that grpc makes of it."""

    def __init__(self, gen: Iterator[_T]) -> None:
        self._gen = gen
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[_T]:
        try:
            yield from self._gen
        except BaseException as e:
            self.error = e
            raise


def upload(
    stub: files_pb2_grpc.FilesServiceStub,
    path: Path,
    name: str,
    *,
    progress: Progress | None,
    chunk_size: int,
    timeout: float | None,
) -> FileInfo:
    """FilesService.Upload: a header, the chunks, and a trailer with the
    sha256 computed while reading them."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        hasher = hashlib.sha256()

        def gen() -> Iterator[files_pb2.UploadRequest]:
            yield files_pb2.UploadRequest(header=files_pb2.UploadHeader(name=name))
            sent = 0
            if progress:
                progress(0, size)
            for chunk in _read_chunks(f, chunk_size):
                hasher.update(chunk)
                yield files_pb2.UploadRequest(chunk=chunk)
                sent += len(chunk)
                if progress:
                    progress(sent, max(size, sent))
            yield files_pb2.UploadRequest(trailer=files_pb2.UploadTrailer(sha256=hasher.hexdigest()))

        requests = _Requests(gen())
        try:
            reply = stub.Upload(iter(requests), timeout=timeout)
        except grpc.RpcError:
            if requests.error is not None:
                raise requests.error from None
            raise
    info = FileInfo.from_pb(reply.file)
    if info.sha256 != hasher.hexdigest():
        raise TransferError(f"the server stored {name} with sha256 {info.sha256}, but sent data has {hasher.hexdigest()}")
    return info


def _hash_file(path: Path, chunk_size: int) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in _read_chunks(f, chunk_size):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


def _stat(files: files_pb2_grpc.FilesServiceStub, name: str, timeout: float | None) -> FileInfo | None:
    try:
        return FileInfo.from_pb(files.Stat(files_pb2.StatRequest(name=name), timeout=timeout).file)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def _resume_point(
    bytestream: bytestream_pb2_grpc.ByteStreamStub,
    files: files_pb2_grpc.FilesServiceStub,
    name: str,
    sha256: str,
    timeout: float | None,
) -> tuple[str, int] | None:
    """The resource to write and the offset to continue from, or None when
    the server already holds `name` with this content. The upload is the
    first generation not finished; a finished one counts only while the file
    it stored is still there."""
    stored: FileInfo | None | bool = False  # False: not asked yet
    for generation in range(MAX_GENERATIONS):
        resource = write_resource(name, sha256, generation)
        try:
            status = bytestream.QueryWriteStatus(
                bytestream_pb2.QueryWriteStatusRequest(resource_name=resource), timeout=timeout
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return resource, 0
            raise
        if not status.complete:
            return resource, status.committed_size
        if stored is False:
            stored = _stat(files, name, timeout)
        if isinstance(stored, FileInfo) and stored.sha256 == sha256:
            return None
    raise TransferError(f"{name} was uploaded with this content {MAX_GENERATIONS} times; upload it without resume")


def upload_resumable(
    bytestream: bytestream_pb2_grpc.ByteStreamStub,
    files: files_pb2_grpc.FilesServiceStub,
    path: Path,
    name: str,
    *,
    progress: Progress | None,
    chunk_size: int,
    timeout: float | None,
) -> FileInfo:
    """ByteStream.Write from what the server already holds of this upload
    (QueryWriteStatus), committed with finish_write. The file is hashed
    first: the sha256 names the upload and is checked at commit."""
    size, sha256 = _hash_file(path, chunk_size)
    retry_until = time.monotonic() + RESUME_RETRY_S
    while True:
        point = _resume_point(bytestream, files, name, sha256, timeout)
        if point is None:
            if progress:
                progress(size, size)
            break
        resource, start = point
        if start > size:
            raise TransferError(f"the server holds {start} bytes of {name}, but {path} has {size}")
        with open(path, "rb") as f:
            f.seek(start)

            def gen(f: BinaryIO = f, resource: str = resource, offset: int = start) -> Iterator[bytestream_pb2.WriteRequest]:
                first = resource
                if progress:
                    progress(offset, size)
                for chunk in _read_chunks(f, chunk_size):
                    yield bytestream_pb2.WriteRequest(resource_name=first, write_offset=offset, data=chunk)
                    first = ""
                    offset += len(chunk)
                    if progress:
                        progress(offset, max(size, offset))
                yield bytestream_pb2.WriteRequest(resource_name=first, write_offset=offset, finish_write=True)

            requests = _Requests(gen())
            try:
                reply = bytestream.Write(iter(requests), timeout=timeout)
            except grpc.RpcError as e:
                if requests.error is not None:
                    raise requests.error from None
                # An earlier Write of this upload is still being wound down.
                if e.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE) and time.monotonic() < retry_until:
                    time.sleep(0.05)
                    continue
                raise
        if reply.committed_size != size:
            raise TransferError(f"the server committed {reply.committed_size} bytes of {name}, which has {size}")
        break
    info = _stat(files, name, timeout)
    if info is None or info.sha256 != sha256:
        raise TransferError(f"{name} is not stored with the uploaded content (sha256 {sha256}) after its upload")
    return info


def download(
    stub: files_pb2_grpc.FilesServiceStub,
    name: str,
    dest: Path,
    *,
    progress: Progress | None,
    timeout: float | None,
) -> FileInfo:
    """FilesService.Download into a temporary file beside `dest`, checked
    against the size and sha256 the server announced, fsynced, then renamed
    over `dest` (and the folder fsynced): `dest` is the old file or the whole
    new one, never a part."""
    if dest.is_dir():
        dest = dest / name
    # os.open applies the umask as any new file gets it; the random part
    # keeps concurrent downloads to one folder apart.
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    replies = stub.Download(files_pb2.DownloadRequest(names=[name]), timeout=timeout)
    try:
        with os.fdopen(fd, "wb") as out:
            info: FileInfo | None = None
            hasher = hashlib.sha256()
            got = 0
            for reply in replies:
                kind = reply.WhichOneof("kind")
                if kind == "file":
                    if info is not None:
                        raise TransferError(f"the server sent a second file ({reply.file.name}) for {name}")
                    info = FileInfo.from_pb(reply.file)
                    if progress:
                        progress(0, info.size)
                elif kind == "chunk":
                    if info is None:
                        raise TransferError(f"the server sent data of {name} before describing it")
                    out.write(reply.chunk)
                    hasher.update(reply.chunk)
                    got += len(reply.chunk)
                    if got > info.size:
                        raise TransferError(f"the server sent more than the {info.size} bytes of {name}")
                    if progress:
                        progress(got, info.size)
            if info is None:
                raise TransferError(f"the server ended the download of {name} without sending it")
            if got != info.size:
                raise TransferError(f"the download of {name} ended at {got} of its {info.size} bytes")
            if hasher.hexdigest() != info.sha256:
                raise TransferError(f"{name} arrived with sha256 {hasher.hexdigest()}, not the {info.sha256} the server announced")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        replies.cancel()
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return info
