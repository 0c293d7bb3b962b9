"""dataport.files.v1.FilesService from grpcio, sync and grpc.aio: uploads
with a header, chunks and a trailer, multi-file downloads, List, Stat,
Delete, and the status of every refusal."""

import asyncio
import hashlib
import os
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from dataport.files.v1 import files_pb2 as pb
from dataport.files.v1 import files_pb2_grpc as pb_grpc
from interop import RPC_TIMEOUT, expect_status


@pytest.fixture
def stub(channel):
    return pb_grpc.FilesServiceStub(channel)


def new_name(tag):
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def uploads(name, data, chunk=64 * 1024, header_sha256="", trailer_sha256=None):
    """A header, the data in chunks and, unless None, a trailer."""
    yield pb.UploadRequest(header=pb.UploadHeader(name=name, sha256=header_sha256))
    for i in range(0, len(data), chunk):
        yield pb.UploadRequest(chunk=data[i : i + chunk])
    if trailer_sha256 is not None:
        yield pb.UploadRequest(trailer=pb.UploadTrailer(sha256=trailer_sha256))


def hashing_uploads(name, data, chunk=100_003):
    """What a client that hashes while it sends does: the digest goes in the
    trailer."""
    digest = hashlib.sha256()
    yield pb.UploadRequest(header=pb.UploadHeader(name=name))
    for i in range(0, len(data), chunk):
        piece = data[i : i + chunk]
        digest.update(piece)
        yield pb.UploadRequest(chunk=piece)
    yield pb.UploadRequest(trailer=pb.UploadTrailer(sha256=digest.hexdigest()))


def collect(replies):
    """(File, bytes) for each file of a download, checking the order."""
    files = []
    for reply in replies:
        kind = reply.WhichOneof("kind")
        if kind == "file":
            files.append((reply.file, bytearray()))
        else:
            assert kind == "chunk" and files, "a chunk before any file message"
            files[-1][1].extend(reply.chunk)
    for file, data in files:
        assert len(data) == file.size and sha256(data) == file.sha256, file.name
    return [(file, bytes(data)) for file, data in files]


def download(stub, *names):
    return collect(stub.Download(pb.DownloadRequest(names=names), timeout=RPC_TIMEOUT))


def list_all(stub, prefix, page_size):
    """Every page of a listing: the names and the size of each page."""
    names, sizes, token = [], [], ""
    while True:
        page = stub.List(pb.ListRequest(prefix=prefix, page_size=page_size, page_token=token), timeout=RPC_TIMEOUT)
        names += [f.name for f in page.files]
        sizes.append(len(page.files))
        token = page.next_page_token
        if not token:
            return names, sizes


def test_upload_stat_list_and_a_multi_file_download_round_trip(stub):
    big, small = new_name("big"), new_name("small")
    big_data, small_data = os.urandom(3 * 1024 * 1024 + 4321), os.urandom(1000)
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    stored = stub.Upload(hashing_uploads(big, big_data), timeout=RPC_TIMEOUT).file
    assert (stored.name, stored.size, stored.sha256) == (big, len(big_data), sha256(big_data))
    created = stored.create_time.ToDatetime(tzinfo=timezone.utc)
    assert before <= created <= datetime.now(timezone.utc) + timedelta(seconds=5)
    assert stored.update_time == stored.create_time
    stub.Upload(uploads(small, small_data, header_sha256=sha256(small_data)), timeout=RPC_TIMEOUT)

    assert stub.Stat(pb.StatRequest(name=big), timeout=RPC_TIMEOUT).file == stored
    listed = stub.List(pb.ListRequest(prefix=big), timeout=RPC_TIMEOUT)
    assert list(listed.files) == [stored] and listed.next_page_token == ""

    got = download(stub, small, big, small)
    assert [f.name for f, _ in got] == [small, big, small]
    assert got[1][0] == stored
    assert got[0][1] == small_data and got[1][1] == big_data and got[2][1] == small_data


def test_a_trailer_sha256_mismatch_is_data_loss_and_keeps_the_old_file(stub):
    name = new_name("trailer")
    old = os.urandom(10_000)
    old_file = stub.Upload(uploads(name, old), timeout=RPC_TIMEOUT).file
    wrong = sha256(b"not the data")
    with expect_status(grpc.StatusCode.DATA_LOSS, wrong):
        stub.Upload(uploads(name, os.urandom(300_000), trailer_sha256=wrong), timeout=RPC_TIMEOUT)
    assert stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT).file == old_file
    assert download(stub, name)[0][1] == old


def test_a_trailer_crc32c_is_checked_and_a_mismatch_keeps_the_old_file(stub):
    # 0xE3069283 is the CRC-32C (Castagnoli) check value, the CRC of b"123456789".
    name = new_name("crc")
    check = [_h(name), _c(b"1234"), _c(b"56789"), pb.UploadRequest(trailer=pb.UploadTrailer(crc32c=0xE3069283))]
    stored = stub.Upload(iter(check), timeout=RPC_TIMEOUT).file
    assert (stored.size, stored.sha256) == (9, sha256(b"123456789"))
    wrong = [_h(name), _c(b"123456780"), pb.UploadRequest(trailer=pb.UploadTrailer(crc32c=0xE3069283))]
    with expect_status(grpc.StatusCode.DATA_LOSS, "trailer.crc32c", "0xe3069283", "nothing"):
        stub.Upload(iter(wrong), timeout=RPC_TIMEOUT)
    assert stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT).file == stored
    assert download(stub, name)[0][1] == b"123456789"


def test_a_header_sha256_mismatch_is_data_loss_and_stores_nothing(stub):
    name = new_name("header-sha")
    with expect_status(grpc.StatusCode.DATA_LOSS, "nothing"):
        stub.Upload(uploads(name, b"data", header_sha256=sha256(b"other")), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND, name):
        stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "header.sha256", "xyz"):
        stub.Upload(uploads(name, b"data", header_sha256="xyz"), timeout=RPC_TIMEOUT)


def _h(name, digest=""):
    return pb.UploadRequest(header=pb.UploadHeader(name=name, sha256=digest))


def _c(data):
    return pb.UploadRequest(chunk=data)


def _t(digest):
    return pb.UploadRequest(trailer=pb.UploadTrailer(sha256=digest))


ORDER_CASES = [
    ([], ["empty stream"]),
    ([_c(b"x"), _h("N")], ["message 1 is a chunk"]),
    ([_t(sha256(b"")), _h("N")], ["message 1 is a trailer"]),
    ([pb.UploadRequest(), _h("N")], ["message 1 is empty"]),
    ([_h("N"), _c(b"x"), _h("N")], ["message 3", "second header"]),
    ([_h("N"), _c(b"x"), _t(sha256(b"x")), _c(b"y")], ["message 4 is a chunk", "after the trailer"]),
    ([_h("N"), _t(""), _t("")], ["message 3 is a trailer", "after the trailer"]),
    ([_h("N", sha256(b"x")), _c(b"x"), _t(sha256(b"y"))], ["message 3", "trailer.sha256", "header.sha256"]),
    ([_h("N"), _c(b"x"), _t("nothex")], ["message 3", "trailer.sha256", "nothex"]),
]


@pytest.mark.parametrize("messages,words", ORDER_CASES, ids=range(len(ORDER_CASES)))
def test_messages_out_of_order_are_invalid_argument_and_store_nothing(stub, messages, words):
    name = new_name("order")
    for m in messages:
        if m.HasField("header"):
            m.header.name = name
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, *words):
        stub.Upload(iter(messages), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND):
        stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b", "../etc/passwd", "a\\b", "x\x00y", "\x07", "a\nb", "n" * 256],
    ids=["empty", "dot", "dotdot", "slash", "traversal", "backslash", "nul", "bell", "newline", "256-bytes"],
)
def test_hostile_names_are_invalid_argument_everywhere(stub, name):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "header.name"):
        stub.Upload(uploads(name, b"data"), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        stub.Delete(pb.DeleteRequest(name=name), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "names"):
        download(stub, name)


def test_list_pages_in_name_order_within_a_prefix(stub):
    prefix = new_name("list") + "-"
    names = sorted(f"{prefix}{i:02}" for i in range(23))
    for name in reversed(names):
        stub.Upload(uploads(name, name.encode()), timeout=RPC_TIMEOUT)
    assert list_all(stub, prefix, 10) == (names, [10, 10, 3])
    # A last page that is exactly full has no next token.
    assert list_all(stub, prefix, 23) == (names, [23])
    assert list_all(stub, prefix + "1", 0) == ([n for n in names if n.startswith(prefix + "1")], [10])
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "page_size"):
        stub.List(pb.ListRequest(page_size=-5), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "page_token"):
        stub.List(pb.ListRequest(page_token="not a token"), timeout=RPC_TIMEOUT)


def test_delete_answers_the_file_and_then_it_is_not_found(stub):
    name = new_name("delete")
    stored = stub.Upload(uploads(name, b"bye"), timeout=RPC_TIMEOUT).file
    assert stub.Delete(pb.DeleteRequest(name=name), timeout=RPC_TIMEOUT).file == stored
    for call in (
        lambda: stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT),
        lambda: stub.Delete(pb.DeleteRequest(name=name), timeout=RPC_TIMEOUT),
        lambda: download(stub, name),
    ):
        with expect_status(grpc.StatusCode.NOT_FOUND, name):
            call()


def test_a_download_naming_a_missing_file_sends_nothing(stub):
    present, missing = new_name("present"), new_name("missing")
    stub.Upload(uploads(present, b"here"), timeout=RPC_TIMEOUT)
    replies = stub.Download(pb.DownloadRequest(names=[present, missing]), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND, missing):
        next(replies)
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "names"):
        download(stub)


def test_a_cancelled_upload_stores_nothing(server, stub):
    # grpcio resets the stream (RST_STREAM CANCEL), which tonic reports to a
    # handler as a clean end: the part received must not be committed.
    name = new_name("cancelled")
    code = server.cancel_mid_stream(
        lambda ch, requests: pb_grpc.FilesServiceStub(ch).Upload.future(requests, timeout=RPC_TIMEOUT),
        "/dataport.files.v1.FilesService/Upload",
        uploads(name, os.urandom(100_000), chunk=10_000),
    )
    assert code == "CANCELLED"
    with expect_status(grpc.StatusCode.NOT_FOUND, name):
        stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT)


def test_every_call_over_grpc_aio(server):
    name, other = new_name("aio"), new_name("aio-other")
    data = os.urandom(500_000)

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = pb_grpc.FilesServiceStub(ch)

            async def requests(messages):
                for m in messages:
                    yield m
                    await asyncio.sleep(0)

            stored = (await stub.Upload(requests(hashing_uploads(name, data)), timeout=RPC_TIMEOUT)).file
            await stub.Upload(requests(uploads(other, b"x")), timeout=RPC_TIMEOUT)
            stat = (await stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT)).file
            page = await stub.List(pb.ListRequest(prefix="aio-", page_size=10_000), timeout=RPC_TIMEOUT)
            replies = [r async for r in stub.Download(pb.DownloadRequest(names=[other, name]), timeout=RPC_TIMEOUT)]
            deleted = (await stub.Delete(pb.DeleteRequest(name=other), timeout=RPC_TIMEOUT)).file

            codes = {}
            for label, call in {
                "missing": stub.Stat(pb.StatRequest(name=other), timeout=RPC_TIMEOUT),
                "bad name": stub.Delete(pb.DeleteRequest(name="a/b"), timeout=RPC_TIMEOUT),
                "mismatch": stub.Upload(
                    requests(uploads(name, b"changed", trailer_sha256=sha256(b"other"))), timeout=RPC_TIMEOUT
                ),
                "second header": stub.Upload(requests([_h(name), _h(name)]), timeout=RPC_TIMEOUT),
            }.items():
                try:
                    await call
                    codes[label] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as e:
                    codes[label] = e.code()
            after = (await stub.Stat(pb.StatRequest(name=name), timeout=RPC_TIMEOUT)).file
            return stored, stat, page, replies, deleted, codes, after

    stored, stat, page, replies, deleted, codes, after = asyncio.run(main())
    assert stored == stat == after and stored.sha256 == sha256(data)
    assert {name, other} <= {f.name for f in page.files}
    got = collect(replies)
    assert [(f.name, d) for f, d in got] == [(other, b"x"), (name, data)]
    assert deleted.name == other
    assert codes == {
        "missing": grpc.StatusCode.NOT_FOUND,
        "bad name": grpc.StatusCode.INVALID_ARGUMENT,
        "mismatch": grpc.StatusCode.DATA_LOSS,
        "second header": grpc.StatusCode.INVALID_ARGUMENT,
    }


def test_a_size_limited_server_refuses_larger_files_and_stores_nothing(start_server):
    limited = start_server("--max-file-size", "1MiB")
    fits, over = os.urandom(1 << 20), os.urandom((1 << 20) + 1)
    with grpc.insecure_channel(limited.addr) as ch:
        stub = pb_grpc.FilesServiceStub(ch)
        assert stub.Upload(uploads("fits", fits), timeout=RPC_TIMEOUT).file.size == len(fits)
        for name in ("fits", "over"):
            with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "1048576"):
                stub.Upload(uploads(name, over, chunk=100_000), timeout=RPC_TIMEOUT)
        assert download(stub, "fits")[0][1] == fits
        with expect_status(grpc.StatusCode.NOT_FOUND, "over"):
            stub.Stat(pb.StatRequest(name="over"), timeout=RPC_TIMEOUT)
        assert [f.name for f in stub.List(pb.ListRequest(), timeout=RPC_TIMEOUT).files] == ["fits"]

    async def aio_over():
        async with grpc.aio.insecure_channel(limited.addr) as ch:
            try:
                await pb_grpc.FilesServiceStub(ch).Upload(uploads("aio-over", over), timeout=RPC_TIMEOUT)
            except grpc.aio.AioRpcError as e:
                return e.code()
            return grpc.StatusCode.OK

    assert asyncio.run(aio_over()) == grpc.StatusCode.RESOURCE_EXHAUSTED
