"""The disk-full part of the reliability suite: the server's data dir on a
small tmpfs, filled for real, then freed through the API.

Each round, on one server whose data dir is a 64 MiB tmpfs:

1. A few files are stored and a symbol imported: what must survive.
2. A flood: one upload of 24 MiB on each upload path at once
   (FileSrv.UploadFile, FilesService.Upload, FileTransfer.FileService.Upload
   and two resumable ByteStream Writes), more than the disk holds. Each must
   be stored whole or refused RESOURCE_EXHAUSTED saying the disk is full.
   Then a 64 MiB ByteStream Write fills what is left (it cannot fit).
3. On the full disk: a small upload and an import are refused (or, if they
   fit, stored whole); the stored files list and download with their
   sha256, the bars are as imported, and no refused plain upload left a
   temporary. A prober calls health and SayHello every 50 ms from the
   start of the flood to the end of this step: every call must answer.
4. Space is freed as a user would (Delete of the flood's files), the cut
   resumable uploads are finished from QueryWriteStatus's committed_size
   and must store exactly what was sent, then every upload path and an
   import must work again.
5. Everything of the round is deleted: files/ must then hold no byte.

After the last round the server stops on SIGTERM and `dataport fsck` must
exit 0. Markdown table rows go to stdout, progress to stderr; exit 1 on
any failure.
"""

import argparse
import datetime
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc

from crash import Server, open_channel, run_fsck, sha256, write_requests

import file_pb2 as fsrv  # noqa: E402
import file_pb2_grpc as fsrv_grpc  # noqa: E402
import helloworld_pb2 as hello  # noqa: E402
import helloworld_pb2_grpc as hello_grpc  # noqa: E402
import uploadfile_pb2 as transfer  # noqa: E402
import uploadfile_pb2_grpc as transfer_grpc  # noqa: E402
from dataport.files.v1 import files_pb2 as files  # noqa: E402
from dataport.files.v1 import files_pb2_grpc as files_grpc  # noqa: E402
from dataport.market.v1 import market_pb2 as market  # noqa: E402
from dataport.market.v1 import market_pb2_grpc as market_grpc  # noqa: E402
from google.bytestream import bytestream_pb2 as bs  # noqa: E402
from google.bytestream import bytestream_pb2_grpc as bs_grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

MIB = 1024 * 1024
DISK = 64 * MIB
FLOOD = 24 * MIB
FILLER = 64 * MIB
SMALL = 2 * MIB
RPC_TIMEOUT_S = 60.0
PROBE_EVERY_S = 0.05
FLOOD_PATHS = ("FileSrv.UploadFile", "FilesService.Upload", "FileTransfer.Upload", "ByteStream.Write", "ByteStream.Write")


class Failures(list):
    def add(self, message):
        print(f"diskfull: FAIL {message}", file=sys.stderr, flush=True)
        self.append(message)


def refused_for_disk(error):
    """Whether an RpcError is the full disk's RESOURCE_EXHAUSTED."""
    details = (error.details() or "").lower()
    return error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "disk" in details and "full" in details


def pieces(data, size=MIB):
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


class Client:
    """The round's calls, one stub per service on one channel."""

    def __init__(self, channel):
        self.files = files_grpc.FilesServiceStub(channel)
        self.fsrv = fsrv_grpc.FileSrvStub(channel)
        self.transfer = transfer_grpc.FileServiceStub(channel)
        self.stream = bs_grpc.ByteStreamStub(channel)
        self.market = market_grpc.MarketServiceStub(channel)

    def upload(self, path, name, data):
        """Uploads by `path`; answers the stored name (FileTransfer picks
        it), or raises the call's RpcError."""
        if path == "FilesService.Upload":
            head = [files.UploadRequest(header=files.UploadHeader(name=name, sha256=sha256(data)))]
            reply = self.files.Upload(iter(head + [files.UploadRequest(chunk=p) for p in pieces(data)]), timeout=RPC_TIMEOUT_S)
            return reply.file.name
        if path == "FileSrv.UploadFile":
            stem, _, ext = name.rpartition(".")
            head = [fsrv.UploadRequest(header=fsrv.FileHeader(filename=stem, extension="." + ext))]
            reply = self.fsrv.UploadFile(iter(head + [fsrv.UploadRequest(chunk_data=p) for p in pieces(data)]), timeout=RPC_TIMEOUT_S)
            if reply.code != 0:
                raise AssertionError(f"FileSrv.UploadFile answered code {reply.code} {reply.message!r}")
            return name
        if path == "FileTransfer.Upload":
            reply = self.transfer.Upload(iter([transfer.Chunk(data=p) for p in pieces(data)]), timeout=RPC_TIMEOUT_S)
            return reply.message.split('"')[1]
        assert path == "ByteStream.Write", path
        self.write(f"uploads/{uuid.uuid4()}/files/{name}", data, 0)
        return name

    def write(self, resource, data, offset):
        self.stream.Write(write_requests(resource, data[offset:], offset, True, chunk=MIB), timeout=RPC_TIMEOUT_S)

    def committed(self, resource):
        return self.stream.QueryWriteStatus(bs.QueryWriteStatusRequest(resource_name=resource), timeout=RPC_TIMEOUT_S).committed_size

    def listed(self):
        return {f.name: f.sha256 for f in self.files.List(files.ListRequest(), timeout=RPC_TIMEOUT_S).files}

    def download(self, name):
        digest = hashlib.sha256()
        for reply in self.files.Download(files.DownloadRequest(names=[name]), timeout=RPC_TIMEOUT_S):
            digest.update(reply.chunk)
        return digest.hexdigest()

    def delete(self, name):
        self.files.Delete(files.DeleteRequest(name=name), timeout=RPC_TIMEOUT_S)

    def import_bars(self, symbol, first_day, count):
        bars = [market.Bar(date=day(first_day + i), open=1.0 + i, high=2.0 + i, low=0.5 + i, close=1.5 + i, volume=10.0) for i in range(count)]
        requests = [market.ImportBarsRequest(symbol=symbol if i == 0 else "", bars=bars[i : i + 500]) for i in range(0, len(bars), 500)]
        self.market.ImportBars(iter(requests), timeout=RPC_TIMEOUT_S)
        return {b.date for b in bars}

    def bar_dates(self, symbol):
        return {b.date for b in self.market.GetBars(market.GetBarsRequest(symbol=symbol), timeout=RPC_TIMEOUT_S).bars}


def day(n):
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=n)).isoformat()


class Prober:
    """Health and SayHello every PROBE_EVERY_S on its own channel."""

    def __init__(self, addr):
        self.addr = addr
        self.calls = self.failed = 0
        self.first_failure = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def _run(self):
        with open_channel(self.addr) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            greeter = hello_grpc.GreeterStub(channel)
            while not self._stop.wait(PROBE_EVERY_S):
                for call in (
                    lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING,
                    lambda: greeter.SayHello(hello.HelloRequest(name="full"), timeout=2).message == "Hello, full!",
                ):
                    self.calls += 1
                    try:
                        ok = call()
                    except grpc.RpcError as e:
                        ok, e_text = False, f"{e.code()} {e.details()}"
                    else:
                        e_text = "a wrong answer"
                    if not ok:
                        self.failed += 1
                        self.first_failure = self.first_failure or e_text


def mount_tmpfs(where):
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(where)], capture_output=True, text=True)
    if made.returncode != 0:
        sys.exit(f"diskfull: cannot mount a tmpfs at {where} (the part needs root): {made.stderr.strip()}")


def fill(path):
    """Writes `path` until the disk has no room left."""
    block = b"\0" * (256 * 1024)
    with open(path, "wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError:
            pass
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return path


def files_bytes(data_dir):
    """Bytes under files/ (objects and temporaries), the index excepted."""
    root = data_dir / "files"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.name.startswith("index"))


def plain_temporaries(data_dir):
    tmp = data_dir / "files" / ".tmp"
    return [p.name for p in tmp.iterdir() if p.name != "resumable"] if tmp.exists() else []


def run_round(number, rng, client, server, data_dir, tally, failures):
    log = lambda m: print(f"diskfull: round {number}: {m}", file=sys.stderr, flush=True)  # noqa: E731
    symbol = f"DF{number}"
    stored = {}  # name -> sha256 the server must show

    def upload_expecting(path, name, data, must_refuse=False):
        """An upload that must be stored whole or refused for the disk."""
        try:
            got = client.upload(path, name, data)
        except grpc.RpcError as e:
            if refused_for_disk(e):
                tally["refused"] += 1
            else:
                tally["other"] += 1
                failures.add(f"round {number}: {path} of {len(data)} bytes answered {e.code()} {e.details()!r}")
            return
        if must_refuse:
            failures.add(f"round {number}: {path} of {len(data)} bytes was stored on a {DISK // MIB} MiB disk")
        tally["stored whole"] += 1
        stored[got] = sha256(data)

    # 1. What must survive.
    for i in range(3):
        data = rng.randbytes(rng.randint(MIB // 4, 3 * MIB))
        stored[client.upload("FilesService.Upload", f"kept-{number}-{i}.bin", data)] = sha256(data)
    bars = client.import_bars(symbol, 10_000, 200)

    # 2. The flood, then the filler; 3. the full disk, probed throughout.
    cut = []  # (resource, data) of ByteStream writes refused part way
    with Prober(server.addr) as prober:
        threads = []
        for k, path in enumerate(FLOOD_PATHS):
            data = rng.randbytes(FLOOD)
            name = f"flood-{number}-{k}.bin"
            if path == "ByteStream.Write":
                resource = f"uploads/{uuid.uuid4()}/files/{name}"
                cut.append((resource, data))

                def go(resource=resource, data=data, name=name):
                    try:
                        client.write(resource, data, 0)
                    except grpc.RpcError as e:
                        ok = refused_for_disk(e)
                        tally["refused" if ok else "other"] += 1
                        if not ok:
                            failures.add(f"round {number}: ByteStream.Write answered {e.code()} {e.details()!r}")
                        return
                    tally["stored whole"] += 1
                    stored[name] = sha256(data)
                    cut.remove((resource, data))
            else:

                def go(path=path, name=name, data=data):
                    upload_expecting(path, name, data)

            threads.append(threading.Thread(target=go))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        flooded = [n for n in stored if n.startswith("flood-")]
        filler = (f"uploads/{uuid.uuid4()}/files/filler-{number}.bin", rng.randbytes(FILLER))
        try:
            client.write(*filler, 0)
            failures.add(f"round {number}: a {FILLER // MIB} MiB ByteStream Write was stored on a {DISK // MIB} MiB disk")
        except grpc.RpcError as e:
            if not refused_for_disk(e):
                failures.add(f"round {number}: the filler answered {e.code()} {e.details()!r}")
            tally["refused"] += 1
            cut.append(filler)
        if tally["refused"] == 0:
            failures.add(f"round {number}: the disk never filled")
        # A refused resumable upload keeps only what it had made durable:
        # something else on the machine takes the rest, as it fills disks.
        free = shutil.disk_usage(data_dir).free
        tally["free when full"] = max(tally["free when full"], free)
        ballast = fill(data_dir.parent / "ballast")

        # 3. On the full disk.
        upload_expecting("FilesService.Upload", f"small-{number}.bin", rng.randbytes(SMALL), must_refuse=True)
        try:
            bars |= client.import_bars(symbol, 20_000, 3000)
            tally["imports stored"] += 1
        except grpc.RpcError as e:
            if not refused_for_disk(e):
                failures.add(f"round {number}: ImportBars on the full disk answered {e.code()} {e.details()!r}")
            tally["imports refused"] += 1
        if client.bar_dates(symbol) != bars:
            failures.add(f"round {number}: {symbol}'s bars are not what was imported")
        if left := plain_temporaries(data_dir):
            failures.add(f"round {number}: refused plain uploads left temporaries {left}")
            tally["partial"] += len(left)
        check_listed(number, client, stored, tally, failures)
    tally["probes"] += prober.calls
    tally["probes failed"] += prober.failed
    if prober.failed:
        failures.add(f"round {number}: {prober.failed} of {prober.calls} health and SayHello calls failed: {prober.first_failure}")
    log(f"flood: {len(flooded)} of {len(FLOOD_PATHS)} stored, {len(cut)} resumable cut, {free // 1024} KiB free when full")

    # 4. Room again: the ballast goes, the flood's files are deleted and the
    # cut uploads finished, those needing least room first.
    ballast.unlink()
    for name in flooded:
        client.delete(name)
        del stored[name]
    def room_needed(upload):
        resource, data = upload
        return 0 if "/filler-" in resource else len(data) - client.committed(resource)

    cut.sort(key=room_needed)
    for resource, data in cut:
        committed = client.committed(resource)
        name = resource.rsplit("/", 1)[1]
        if not 0 <= committed <= len(data):
            failures.add(f"round {number}: {resource} kept {committed} of the {len(data)} bytes sent")
            continue
        # The filler stops where it was cut; the others send the rest.
        end = committed if name.startswith("filler-") else len(data)
        client.stream.Write(write_requests(resource, data[committed:end], committed, True, chunk=MIB), timeout=RPC_TIMEOUT_S)
        if client.download(name) != sha256(data[:end]):
            failures.add(f"round {number}: {resource} resumed at {committed} stored other bytes than were sent")
        tally["resumed"] += 1
        client.delete(name)
    for k, path in enumerate(("FileSrv.UploadFile", "FilesService.Upload", "FileTransfer.Upload", "ByteStream.Write")):
        data = rng.randbytes(SMALL)
        try:
            stored[client.upload(path, f"after-{number}-{k}.bin", data)] = sha256(data)
            tally["after stored"] += 1
        except grpc.RpcError as e:
            failures.add(f"round {number}: {path} after the space was freed answered {e.code()} {e.details()!r}")
    try:
        bars |= client.import_bars(symbol, 30_000, 3000)
        tally["after imports"] += 1
    except grpc.RpcError as e:
        failures.add(f"round {number}: ImportBars after the space was freed answered {e.code()} {e.details()!r}")
    check_listed(number, client, stored, tally, failures)

    # 5. Back to empty.
    for name in stored:
        client.delete(name)
    client.market.DeleteSymbol(market.DeleteSymbolRequest(symbol=symbol), timeout=RPC_TIMEOUT_S)
    left = files_bytes(data_dir)
    tally["bytes left"] += left
    if left:
        failures.add(f"round {number}: files/ holds {left} bytes after every file was deleted")


def check_listed(number, client, stored, tally, failures):
    """The stored files, and only they, listed and downloaded whole."""
    listed = client.listed()
    if listed != stored:
        failures.add(f"round {number}: listed {sorted(listed)}, expected {sorted(stored)} with their sha256")
        tally["partial"] += 1
    for name, digest in stored.items():
        tally["downloads"] += 1
        if client.download(name) != digest:
            failures.add(f"round {number}: {name} downloads other bytes than were stored")
            tally["partial"] += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of fill, check and free [20]")
    parser.add_argument("--smoke", action="store_true", help="three rounds")
    parser.add_argument("--seed", type=int, default=None, help="seeds the data (default: random, printed)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (logs) after a pass too")
    parser.add_argument("--bin", type=Path, default=Path(os.environ.get("DATAPORT_BIN", "target/release/dataport")))
    args = parser.parse_args()
    rounds = 3 if args.smoke else args.rounds
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    binary = args.bin.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="dataport-diskfull."))
    disk = workdir / "disk"
    disk.mkdir()
    mount_tmpfs(disk)
    data_dir = disk / "data"
    print(f"diskfull: {rounds} rounds, seed {seed}, a {DISK // MIB} MiB tmpfs at {disk}", file=sys.stderr, flush=True)

    tally = dict.fromkeys(
        ["refused", "stored whole", "other", "partial", "free when full", "imports refused", "imports stored", "probes",
         "probes failed", "downloads", "resumed", "after stored", "after imports", "bytes left"], 0)
    failures = Failures()
    rng = random.Random(seed)
    started = time.monotonic()
    server = Server(binary, data_dir, workdir / "server.log").start()
    fsck_code = None
    try:
        with open_channel(server.addr) as channel:
            client = Client(channel)
            for number in range(1, rounds + 1):
                run_round(number, rng, client, server, data_dir, tally, failures)
                if failures:
                    break
        stopped = server.stop()
        if stopped != 0:
            failures.add(f"the server exited {stopped} after SIGTERM")
        fsck_code, damage, leftovers = run_fsck(binary, data_dir, workdir / "fsck.txt")
        if fsck_code != 0:
            failures.add(f"fsck after the run exits {fsck_code}: {damage + leftovers}")
    except Exception as e:  # the run itself broke: a failure, with where
        import traceback

        traceback.print_exc()
        failures.add(f"the run broke: {e!r}")
    finally:
        server.kill()
        subprocess.run(["umount", "-l", str(disk)], check=False)

    t, verdict = tally, "FAIL" if failures else "PASS"
    rows = [
        f"| disk full: uploads past the space | refused RESOURCE_EXHAUSTED naming the full disk, stored whole, other answers "
        f"| {t['refused']}, {t['stored whole']}, {t['other']} | each refused or stored whole; the {DISK // MIB} MiB disk filled "
        f"every round (at most {t['free when full'] // 1024} KiB free after the refusals) | {verdict} |",
        f"| disk full: nothing partial | temporaries or files unlike what was sent, bytes left in files/ after the deletes "
        f"| {t['partial']}, {t['bytes left']} | 0, 0 ({t['downloads']} downloads hashed) | {verdict} |",
        f"| disk full: serving while full | health and SayHello calls failed during the floods and on the full disks "
        f"| {t['probes failed']} of {t['probes']} | 0 | {verdict} |",
        f"| disk full: imports on the full disk | refused RESOURCE_EXHAUSTED (bars unchanged), stored whole "
        f"| {t['imports refused']}, {t['imports stored']} | no other answer | {verdict} |",
        f"| disk full: after space was freed (Delete) | cut resumable uploads finished, uploads on every path, imports "
        f"| {t['resumed']}, {t['after stored']}, {t['after imports']} | all stored whole, fsck exit 0 at the end (exit {fsck_code}) | {verdict} |",
    ]
    print("\n".join(rows), flush=True)
    print(f"diskfull: {rounds} rounds in {time.monotonic() - started:.0f} s, seed {seed}", file=sys.stderr, flush=True)
    if failures:
        print(f"diskfull: server log and fsck output kept in {workdir}", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
