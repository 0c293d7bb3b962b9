"""FileSrv (the seed file service, no package), called as the seed client
calls it: UploadFile with a header and then chunks, DownloadFile appending
each chunk to a file."""

import asyncio
import hashlib
import os
import uuid

import file_pb2 as f
import file_pb2_grpc as f_grpc
import grpc
import pytest

from interop import RPC_TIMEOUT, expect_status


@pytest.fixture
def stub(channel):
    return f_grpc.FileSrvStub(channel)


def uploads(filename, extension, data, chunk=64 * 1024):
    yield f.UploadRequest(header=f.FileHeader(filename=filename, extension=extension))
    for i in range(0, len(data), chunk):
        yield f.UploadRequest(chunk_data=data[i : i + chunk])


def download(stub, filename, extension, path):
    with open(path, "wb") as out:
        for reply in stub.DownloadFile(f.FileHeader(filename=filename, extension=extension), timeout=RPC_TIMEOUT):
            out.write(reply.chunk_data)
    return path.read_bytes()


def test_an_uploaded_file_downloads_unchanged_and_the_answer_names_it(stub, tmp_path):
    name = f"report-{uuid.uuid4().hex[:8]}"
    data = os.urandom(3 * 1024 * 1024 + 4321)
    reply = stub.UploadFile(uploads(name, ".pdf", data, chunk=100_003), timeout=RPC_TIMEOUT)
    assert reply.code == 0
    assert reply.message == f'stored "{name}.pdf": {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}'
    assert download(stub, name, ".pdf", tmp_path / "copy.pdf") == data
    # A second upload replaces the first.
    stub.UploadFile(uploads(name, ".pdf", b"short"), timeout=RPC_TIMEOUT)
    assert download(stub, name, ".pdf", tmp_path / "again.pdf") == b"short"


def test_an_upload_from_grpc_aio_is_stored(server, tmp_path):
    name = f"aio-{uuid.uuid4().hex[:8]}"
    data = os.urandom(200_000)

    async def main():
        async with grpc.aio.insecure_channel(server.addr) as ch:
            stub = f_grpc.FileSrvStub(ch)

            async def requests():
                for r in uploads(name, ".bin", data, chunk=7_000):
                    yield r

            reply = await stub.UploadFile(requests(), timeout=RPC_TIMEOUT)
            chunks = [r.chunk_data async for r in stub.DownloadFile(f.FileHeader(filename=name, extension=".bin"))]
            return reply, b"".join(chunks)

    reply, back = asyncio.run(main())
    assert reply.code == 0 and back == data


def test_a_missing_file_is_not_found(stub, tmp_path):
    with expect_status(grpc.StatusCode.NOT_FOUND, "nothing-here.txt"):
        download(stub, "nothing-here", ".txt", tmp_path / "x")


@pytest.mark.parametrize("filename", ["../etc/passwd", "a/b", "a\\b", "", ".", "..", "x\x00y", "\x07"])
def test_hostile_names_are_refused(stub, filename):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "header"):
        stub.UploadFile(uploads(filename, "", b"data"), timeout=RPC_TIMEOUT)


def test_a_chunk_before_the_header_or_a_second_header_is_refused(stub, tmp_path):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "message 1 is chunk_data"):
        stub.UploadFile(iter([f.UploadRequest(chunk_data=b"x")]), timeout=RPC_TIMEOUT)
    name = f"twice-{uuid.uuid4().hex[:8]}"
    twice = list(uploads(name, ".txt", b"abc")) + [f.UploadRequest(header=f.FileHeader(filename=name))]
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "second header"):
        stub.UploadFile(iter(twice), timeout=RPC_TIMEOUT)
    with expect_status(grpc.StatusCode.NOT_FOUND):
        download(stub, name, ".txt", tmp_path / "x")


def test_a_cancelled_upload_stores_nothing(server, stub, tmp_path):
    # grpcio resets the stream (RST_STREAM CANCEL); tonic reports that to a
    # handler as a clean end, which must not commit the part received.
    name = f"cancelled-{uuid.uuid4().hex[:8]}"
    code = server.cancel_mid_stream(
        lambda ch, requests: f_grpc.FileSrvStub(ch).UploadFile.future(requests, timeout=RPC_TIMEOUT),
        "/FileSrv/UploadFile",
        uploads(name, ".bin", os.urandom(100_000), chunk=10_000),
    )
    assert code == "CANCELLED"
    with expect_status(grpc.StatusCode.NOT_FOUND):
        download(stub, name, ".bin", tmp_path / "x")


def test_file_transfer_upload_answers_the_generated_name_and_file_srv_downloads_it(channel, stub, tmp_path):
    import uploadfile_pb2 as u
    import uploadfile_pb2_grpc as u_grpc

    data = os.urandom(300_000)
    transfer = u_grpc.FileServiceStub(channel)
    chunks = (u.Chunk(data=data[i : i + 50_000]) for i in range(0, len(data), 50_000))
    reply = transfer.Upload(chunks, timeout=RPC_TIMEOUT)
    name = reply.message.split('"')[1]
    assert reply.message == f'stored "{name}": {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}'
    assert download(stub, name, "", tmp_path / "copy") == data


def test_file_transfer_upload_through_either_api_is_stored_whole(api):
    import uploadfile_pb2 as u
    import uploadfile_pb2_grpc as u_grpc

    data = os.urandom(250_001)
    reply = api.stub(u_grpc.FileServiceStub).Upload((u.Chunk(data=data[i : i + 65_536]) for i in range(0, len(data), 65_536)), timeout=RPC_TIMEOUT)
    name = reply.message.split('"')[1]
    assert name.startswith("upload-")
    assert reply.message == f'stored "{name}": {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}'
    chunks = api.stub(f_grpc.FileSrvStub).DownloadFile(f.FileHeader(filename=name), timeout=RPC_TIMEOUT)
    assert b"".join(c.chunk_data for c in chunks) == data
    # Each upload gets a name of its own.
    again = api.stub(u_grpc.FileServiceStub).Upload(iter([u.Chunk(data=b"x")]), timeout=RPC_TIMEOUT)
    assert again.message.split('"')[1] != name


def test_uploads_over_the_size_limit_are_resource_exhausted_and_store_nothing(start_server, tmp_path):
    import uploadfile_pb2 as u
    import uploadfile_pb2_grpc as u_grpc

    limited = start_server("--max-file-size", "1MiB")
    over = os.urandom((1 << 20) + 1)
    with grpc.insecure_channel(limited.addr) as ch:
        transfer, srv = u_grpc.FileServiceStub(ch), f_grpc.FileSrvStub(ch)
        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "1048576"):
            transfer.Upload((u.Chunk(data=over[i : i + 100_000]) for i in range(0, len(over), 100_000)), timeout=RPC_TIMEOUT)
        with expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "1048576"):
            srv.UploadFile(uploads("over", ".bin", over, chunk=100_000), timeout=RPC_TIMEOUT)
        with expect_status(grpc.StatusCode.NOT_FOUND, "over.bin"):
            download(srv, "over", ".bin", tmp_path / "x")
        # At the limit, both store.
        fits = over[:-1]
        assert transfer.Upload(iter([u.Chunk(data=fits)]), timeout=RPC_TIMEOUT).message.endswith(f"{len(fits)} bytes, sha256 {hashlib.sha256(fits).hexdigest()}")
        assert srv.UploadFile(uploads("fits", ".bin", fits), timeout=RPC_TIMEOUT).code == 0
        assert download(srv, "fits", ".bin", tmp_path / "fits") == fits


def test_download_of_a_hostile_name_is_refused(api):
    with expect_status(grpc.StatusCode.INVALID_ARGUMENT, "header"):
        api.stub(f_grpc.FileSrvStub).DownloadFile(f.FileHeader(filename="../etc/passwd"), timeout=RPC_TIMEOUT)


def test_a_cancelled_file_transfer_upload_stores_nothing(channel, server):
    import uploadfile_pb2 as u
    import uploadfile_pb2_grpc as u_grpc
    from dataport.files.v1 import files_pb2 as pb
    from dataport.files.v1 import files_pb2_grpc as pb_grpc

    files = pb_grpc.FilesServiceStub(channel)

    def generated():
        return {f.name for f in files.List(pb.ListRequest(prefix="upload-", page_size=10_000), timeout=RPC_TIMEOUT).files}

    before = generated()
    code = server.cancel_mid_stream(
        lambda ch, requests: u_grpc.FileServiceStub(ch).Upload.future(requests, timeout=RPC_TIMEOUT),
        "/FileTransfer.FileService/Upload",
        (u.Chunk(data=os.urandom(10_000)) for _ in range(10)),
    )
    # Once the server has ended the call, nothing new is listed.
    assert code == "CANCELLED"
    assert generated() == before
