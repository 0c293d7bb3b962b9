"""The crash part of the reliability suite: SIGKILL the server in the middle
of real client work, then check that what it acknowledged survived.

Each round starts `dataport serve` on one data dir that every round shares,
runs concurrent clients (FileSrv.UploadFile, FilesService.Upload,
FileTransfer.FileService.Upload, uploads replacing stored files, resumable
ByteStream Writes with QueryWriteStatus between their pieces, ImportBars of
CSV text and of Bar messages, Publish) and SIGKILLs the server at a random
moment. Every call the server answered OK before the kill is recorded, client
side, as acknowledged. Then:

* `dataport fsck DATA_DIR` must find no damage (a stored file unlike its
  index entry, or an unsound bar store). Temporaries of uploads the kill cut
  off are reported by fsck as "not in the index" (exit 1); they are counted
  apart, and `--strict-fsck` fails on them. The next server sweeps them at
  start, so fsck after its clean stop must exit 0.
* A second server on the same dir must show every acknowledged upload with
  its sha256 (List, then Download of every file the round touched, hashed
  here), every acknowledged import's bars (ListSymbols, GetBars), and no file
  or bars that are not exactly the whole of something a client sent (a
  replaced file is its old content or the whole new one; an import is all or
  nothing).
* Every resumable upload still unfinished is resumed: QueryWriteStatus
  answers a committed_size no smaller than the last one acknowledged, and a
  Write of the rest from there with finish_write stores the right sha256.
* Positions live in memory only (crates/dataport-server/src/position/hub.rs):
  each acknowledged Publish is read back (Get) before the kill; after the
  restart an entity must be absent or hold a position that was published.
  `--durable-positions` requires the acknowledged ones to survive instead.

Markdown table rows go to stdout; progress and failures to stderr. The run
stops at the first failing round, leaves the data dir as it is, with a copy
of it taken right after the kill (objects excepted), the servers' logs,
fsck's output and a journal of every call the clients made and when
(logs/round-NNN-client.jsonl), and exits 1.

It found one server bug, since fixed: a SIGKILL while a resumable upload
committed (its data renamed into objects/ before the index transaction)
lost the bytes it had acknowledged; the commit now links the data and
removes the upload's own file only once the index names it.
"""

import argparse
import collections
import dataclasses
import datetime
import hashlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
GEN_DIR = REPO_ROOT / "tests/interop/python/gen"
if str(GEN_DIR) not in sys.path:
    sys.path.insert(0, str(GEN_DIR))

import file_pb2 as fsrv  # noqa: E402  (FileSrv, the seed file service)
import file_pb2_grpc as fsrv_grpc  # noqa: E402
import uploadfile_pb2 as transfer  # noqa: E402  (FileTransfer.FileService)
import uploadfile_pb2_grpc as transfer_grpc  # noqa: E402
from dataport.files.v1 import files_pb2 as files  # noqa: E402
from dataport.files.v1 import files_pb2_grpc as files_grpc  # noqa: E402
from dataport.market.v1 import market_pb2 as market  # noqa: E402
from dataport.market.v1 import market_pb2_grpc as market_grpc  # noqa: E402
from dataport.position.v1 import position_pb2 as position  # noqa: E402
from dataport.position.v1 import position_pb2_grpc as position_grpc  # noqa: E402
from google.bytestream import bytestream_pb2 as bs  # noqa: E402
from google.bytestream import bytestream_pb2_grpc as bs_grpc  # noqa: E402

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0
FSCK_TIMEOUT_S = 300.0
# Every call carries a deadline, so a server that never answers fails a
# round instead of hanging the run.
WORK_RPC_TIMEOUT_S = 15.0
CHECK_RPC_TIMEOUT_S = 60.0
# The file store is pruned (Delete, on the checking server) back to
# KEEP_FILES once it holds more than MAX_FILES, so 100 rounds stay small.
MAX_FILES = 150
KEEP_FILES = 100
MAX_SYMBOLS = 400
KEEP_SYMBOLS = 300
SAMPLE_ROUNDS = 5


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Problems:
    """What went wrong in a round, by the kind the summary counts."""

    KINDS = ("lost", "half_visible", "not_resumable", "fsck", "unexpected")

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, kind, message, area=""):
        assert kind in self.KINDS, kind
        with self.lock:
            self.items.append((kind, message, area))

    def count(self, kind=None, area=None):
        with self.lock:
            return sum(1 for k, _, a in self.items if kind in (None, k) and area in (None, a))

    def __bool__(self):
        with self.lock:
            return bool(self.items)


# ---------------------------------------------------------------------------
# The server process


class Server:
    """One `dataport serve` on a loopback port of its choosing, its stdout and
    stderr copied to a log file by threads that drain them for its whole
    life (so it never blocks on a full pipe)."""

    def __init__(self, binary, data_dir, log_path):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.process = None
        self.addr = None
        self.recent = collections.deque(maxlen=60)
        self._lines = queue.Queue()
        self._announced = threading.Event()
        self._log_lock = threading.Lock()
        self._log = None
        self._drains = []

    def start(self):
        argv = [
            str(self.binary), "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            "--log-format", "json",
            # Every symbol in the bar store is then one this run imported.
            "--no-sample-data",
        ]
        self._log = open(self.log_path, "a", encoding="utf-8")
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace",
        )
        self._drain(self.process.stdout, "stdout")
        self._drain(self.process.stderr, "stderr")
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"dataport did not announce its address within {STARTUP_TIMEOUT_S}s\n{self.output()}")
            if line is None:
                code = self.process.wait()
                raise RuntimeError(f"dataport exited with {code} before announcing its address\n{self.output()}")
            try:
                fields = json.loads(line).get("fields", {})
            except (ValueError, AttributeError):
                continue
            if isinstance(fields, dict) and fields.get("message") == "listening":
                self._announced.set()
                self.addr = str(fields["addr"])
                return self

    def _drain(self, pipe, name):
        def run():
            for line in pipe:
                self.recent.append(f"[{name}] {line.rstrip()}")
                with self._log_lock:
                    self._log.write(line)
                if name == "stdout" and not self._announced.is_set():
                    self._lines.put(line)
            pipe.close()
            if name == "stdout":
                self._lines.put(None)

        thread = threading.Thread(target=run, name=f"dataport-{name}", daemon=True)
        thread.start()
        self._drains.append(thread)

    def _close_log(self):
        for thread in self._drains:
            thread.join(timeout=10)
        with self._log_lock:
            if self._log and not self._log.closed:
                self._log.close()

    def kill(self):
        """SIGKILL: no drain, no flush, no goodbye."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process:
            self.process.wait()
        self._close_log()

    def stop(self):
        """SIGTERM; answers the exit status (None when it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        self._close_log()
        return code

    def output(self):
        return "\n".join(self.recent)


def open_channel(addr):
    channel = grpc.insecure_channel(addr, options=[
        ("grpc.max_receive_message_length", 16 * 1024 * 1024),
        ("grpc.use_local_subchannel_pool", 1),
    ])
    grpc.channel_ready_future(channel).result(timeout=STARTUP_TIMEOUT_S)
    return channel


def run_fsck(binary, data_dir, out_path):
    """Runs `dataport fsck`; answers (exit code, damage lines, leftover lines)."""
    done = subprocess.run(
        [str(binary), "fsck", str(data_dir)], capture_output=True, text=True,
        errors="replace", timeout=FSCK_TIMEOUT_S,
    )
    with open(out_path, "a", encoding="utf-8") as out:
        out.write(f"$ dataport fsck {data_dir}\n{done.stdout}{done.stderr}exit {done.returncode}\n\n")
    damage, leftovers = [], []
    for line in done.stdout.splitlines():
        if line.startswith("damaged:"):
            damage.append(line)
        elif line.startswith("not in the index:"):
            leftovers.append(line)
        elif line.startswith("bars:") and line != "bars: the database is sound":
            damage.append(line)
    if done.returncode not in (0, 1) or done.stderr.strip():
        damage.append(f"exit {done.returncode}: {done.stderr.strip()}")
    elif done.returncode == 1 and not leftovers and not damage:
        damage.append(f"exit 1 without a line saying why:\n{done.stdout}")
    return done.returncode, damage, leftovers


# ---------------------------------------------------------------------------
# What the clients sent and what the server acknowledged


@dataclasses.dataclass
class FileEntry:
    """One stored name. `acked` is the (sha256, size) the server last
    acknowledged (or found on a check); `maybe` holds what was sent to it
    since, without an answer: a check may find any of those, whole."""

    name: str
    order: int
    acked: tuple = None
    maybe: set = dataclasses.field(default_factory=set)
    acked_by: str = ""
    touched: bool = True


@dataclasses.dataclass
class Resumable:
    upload_id: str
    name: str
    data: bytes
    digest: str
    acked_committed: int = -1  # the committed_size of the last Write answered OK
    finish_sent: bool = False
    finished_acked: bool = False
    done: bool = False

    @property
    def resource(self):
        return f"uploads/{self.upload_id}/files/{self.name}/sha256/{self.digest}"


@dataclasses.dataclass
class SymbolEntry:
    """One symbol's bars as date -> (open, high, low, close, volume)."""

    symbol: str
    order: int
    acked: dict = None
    maybe: list = dataclasses.field(default_factory=list)
    touched: bool = True


class Model:
    """Everything every round sent, acknowledged or not; shared by the
    workers of a round (under `lock`) and kept across rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.files = {}
        # (sha256, size) -> how many FileTransfer uploads of it went unanswered.
        self.transfer_maybe = collections.Counter()
        self.resumables = []
        self.symbols = {}
        self.positions = {}  # entity -> {"acked": [(revision, xyz)], "sent": set(xyz)}
        self.order = 0

    def _next(self):
        self.order += 1
        return self.order

    # files
    def file_sent(self, name, digest, size):
        with self.lock:
            entry = self.files.get(name)
            if entry is None:
                entry = self.files[name] = FileEntry(name, self._next())
            entry.maybe.add((digest, size))
            entry.touched = True

    def file_acked(self, name, digest, size, by):
        with self.lock:
            entry = self.files.get(name)
            if entry is None:
                entry = self.files[name] = FileEntry(name, self._next())
            entry.acked = (digest, size)
            entry.maybe.clear()
            entry.acked_by = by
            entry.touched = True

    def transfer_sent(self, digest, size):
        with self.lock:
            self.transfer_maybe[(digest, size)] += 1

    def transfer_acked(self, name, digest, size):
        with self.lock:
            self.transfer_maybe[(digest, size)] -= 1
        self.file_acked(name, digest, size, "FileTransfer.Upload")

    def settled_files(self):
        """Names nobody is writing: stored, acknowledged, from an earlier round."""
        busy = {r.name for r in self.resumables if not r.done}
        with self.lock:
            return [e.name for e in self.files.values() if e.acked and not e.maybe and not e.touched and e.name not in busy]

    # bars
    def import_sent(self, symbol, bars):
        with self.lock:
            entry = self.symbols.get(symbol)
            if entry is None:
                entry = self.symbols[symbol] = SymbolEntry(symbol, self._next())
            entry.maybe.append(bars)
            entry.touched = True

    def import_acked(self, symbol, bars):
        with self.lock:
            entry = self.symbols[symbol]
            entry.acked = {**(entry.acked or {}), **bars}
            entry.maybe.clear()
            return dict(entry.acked)

    def settled_symbols(self):
        with self.lock:
            return [e.symbol for e in self.symbols.values() if e.acked and not e.maybe and not e.touched]


class Tally:
    """Counts over the whole run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n

    def __getitem__(self, key):
        return self.c[key]


# ---------------------------------------------------------------------------
# The client work of one round


class Round:
    def __init__(self, number, seed, model, tally, problems):
        self.number = number
        self.seed = seed
        self.model = model
        self.tally = tally
        self.problems = problems
        # Set just before the SIGKILL: from then on a failed call is expected,
        # and no worker starts another.
        self.killing = threading.Event()
        self.acked = collections.Counter()
        self.lock = threading.Lock()
        # What each client did and when, for whoever inspects a failure.
        self.journal = []
        self.t0 = time.monotonic()

    def note(self, event, **fields):
        entry = {"ms": round((time.monotonic() - self.t0) * 1000, 1), "thread": threading.current_thread().name, "event": event, **fields}
        with self.lock:
            self.journal.append(entry)

    def write_journal(self, path):
        with self.lock, open(path, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(e) + "\n" for e in self.journal)

    def rng(self, worker):
        return random.Random(f"{self.seed}/{self.number}/{worker}")

    def ack(self, kind):
        with self.lock:
            self.acked[kind] += 1
        self.tally.add(f"acked {kind}")

    def failed(self, what, error):
        """An RPC failed. After the kill that is what we expect; before it,
        it is a server or client problem."""
        self.note("failed", what=what, code=str(error.code()) if isinstance(error, grpc.RpcError) else repr(error))
        if self.killing.is_set():
            return
        code = error.code() if isinstance(error, grpc.RpcError) else None
        details = error.details() if isinstance(error, grpc.RpcError) else repr(error)
        self.problems.add("unexpected", f"round {self.number}: {what} failed before the kill: {code} {details}")

    def wrong(self, message, area=""):
        """An answer (necessarily from before the kill) that is not right."""
        self.problems.add("unexpected", f"round {self.number}: {message}", area)


def file_size(rng):
    pick = rng.random()
    if pick < 0.05:
        return 0
    if pick < 0.35:
        return rng.randint(1, 16 * 1024)
    if pick < 0.85:
        return rng.randint(16 * 1024, 1024 * 1024)
    return rng.randint(1024 * 1024, 4 * 1024 * 1024)


def pieces(data, rng):
    size = rng.choice([16 * 1024, 64 * 1024, 100_003, 256 * 1024, 1024 * 1024])
    return [data[i : i + size] for i in range(0, len(data), size)]


def upload_file_srv(ctx, channel, rng, name, data):
    """FileSrv.UploadFile; `name` is stored as filename + extension."""
    stem, dot, ext = name.rpartition(".")
    filename, extension = (stem, dot + ext) if dot else (name, "")
    digest = sha256(data)

    def requests():
        yield fsrv.UploadRequest(header=fsrv.FileHeader(filename=filename, extension=extension))
        for piece in pieces(data, rng):
            yield fsrv.UploadRequest(chunk_data=piece)

    ctx.model.file_sent(name, digest, len(data))
    ctx.note("FileSrv.UploadFile sent", name=name, sha256=digest, size=len(data))
    reply = fsrv_grpc.FileSrvStub(channel).UploadFile(requests(), timeout=WORK_RPC_TIMEOUT_S)
    want = f'stored "{name}": {len(data)} bytes, sha256 {digest}'
    if reply.code != 0 or reply.message != want:
        ctx.wrong(f"FileSrv.UploadFile of {name!r} answered code {reply.code} {reply.message!r}, expected 0 {want!r}")
        return False
    ctx.model.file_acked(name, digest, len(data), "FileSrv.UploadFile")
    ctx.note("FileSrv.UploadFile acked", name=name)
    ctx.ack("FileSrv.UploadFile")
    return True


def upload_files_v1(ctx, channel, rng, name, data):
    """FilesService.Upload; the sha256 in the header, the trailer or neither."""
    digest = sha256(data)
    where = rng.choice(["header", "trailer", "none"])

    def requests():
        yield files.UploadRequest(header=files.UploadHeader(name=name, sha256=digest if where == "header" else ""))
        for piece in pieces(data, rng):
            yield files.UploadRequest(chunk=piece)
        if where == "trailer":
            yield files.UploadRequest(trailer=files.UploadTrailer(sha256=digest))

    ctx.model.file_sent(name, digest, len(data))
    ctx.note("FilesService.Upload sent", name=name, sha256=digest, size=len(data))
    reply = files_grpc.FilesServiceStub(channel).Upload(requests(), timeout=WORK_RPC_TIMEOUT_S)
    got = (reply.file.name, reply.file.size, reply.file.sha256)
    if got != (name, len(data), digest):
        ctx.wrong(f"FilesService.Upload answered {got}, expected {(name, len(data), digest)}")
        return False
    ctx.model.file_acked(name, digest, len(data), "FilesService.Upload")
    ctx.note("FilesService.Upload acked", name=name)
    ctx.ack("FilesService.Upload")
    return True


def upload_transfer(ctx, channel, rng, data):
    """FileTransfer.FileService.Upload: the server names the file."""
    digest = sha256(data)
    ctx.model.transfer_sent(digest, len(data))
    ctx.note("FileTransfer.Upload sent", sha256=digest, size=len(data))
    chunks = (transfer.Chunk(data=p) for p in pieces(data, rng))
    reply = transfer_grpc.FileServiceStub(channel).Upload(chunks, timeout=WORK_RPC_TIMEOUT_S)
    parts = reply.message.split('"')
    name = parts[1] if len(parts) == 3 else ""
    if reply.message != f'stored "{name}": {len(data)} bytes, sha256 {digest}' or not name:
        ctx.wrong(f"FileTransfer.Upload answered {reply.message!r} for {len(data)} bytes of sha256 {digest}")
        return
    ctx.model.transfer_acked(name, digest, len(data))
    ctx.note("FileTransfer.Upload acked", name=name)
    ctx.ack("FileTransfer.Upload")


def worker_loop(ctx, what, step):
    """Runs `step()` until the kill; any failure ends the worker."""
    try:
        while not ctx.killing.is_set():
            step()
    except grpc.RpcError as e:
        ctx.failed(what, e)
    except Exception as e:  # a bug here must not pass for a server failure
        ctx.problems.add("unexpected", f"round {ctx.number}: {what} client raised {e!r}")


def plain_worker(ctx, channel, kind, index):
    rng = ctx.rng(f"{kind}-{index}")

    def step():
        data = rng.randbytes(file_size(rng))
        tag = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
        if kind == "FileSrv.UploadFile":
            upload_file_srv(ctx, channel, rng, f"fs-r{ctx.number}-{tag}.bin", data)
        elif kind == "FilesService.Upload":
            upload_files_v1(ctx, channel, rng, f"v1-r{ctx.number}-{tag}", data)
        else:
            upload_transfer(ctx, channel, rng, data)

    worker_loop(ctx, kind, step)


def replace_worker(ctx, channel, candidates):
    """Replaces files stored in earlier rounds: a check must find the old
    content or the whole new one."""
    rng = ctx.rng("replace")
    rng.shuffle(candidates)

    def step():
        if not candidates:
            ctx.killing.wait()
            return
        name = candidates.pop()
        data = rng.randbytes(file_size(rng))
        upload = upload_file_srv if name.endswith(".bin") and rng.random() < 0.5 else upload_files_v1
        if upload(ctx, channel, rng, name, data):
            ctx.ack("replacement")

    worker_loop(ctx, "replacing a file", step)


def write_requests(resource, data, offset, finish, chunk=64 * 1024):
    """`data` written from `offset`; the first message names the upload."""
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    at = offset
    for i, part in enumerate(parts):
        yield bs.WriteRequest(
            resource_name=resource if i == 0 else "",
            write_offset=at,
            finish_write=finish and i == len(parts) - 1,
            data=part,
        )
        at += len(part)


def resumable_worker(ctx, channel, index):
    """ByteStream Writes of 1 to 4 pieces each, QueryWriteStatus before
    every piece but the first; some uploads are left paused."""
    rng = ctx.rng(f"bytestream-{index}")
    stub = bs_grpc.ByteStreamStub(channel)

    def step():
        size = rng.randint(64 * 1024, 4 * 1024 * 1024)
        data = rng.randbytes(size)
        tag = uuid.UUID(int=rng.getrandbits(128)).hex
        up = Resumable(upload_id=f"crash-{tag}", name=f"bs-r{ctx.number}-{tag[:16]}.bin", data=data, digest=sha256(data))
        with ctx.model.lock:
            ctx.model.resumables.append(up)
        cuts = sorted(rng.sample(range(1, size), rng.randint(0, 3)))
        bounds = list(zip([0, *cuts], [*cuts, size]))
        abandon = len(bounds) > 1 and rng.random() < 0.2
        for i, (start, end) in enumerate(bounds):
            last = i == len(bounds) - 1
            if last and abandon:
                ctx.note("Write left paused", upload_id=up.upload_id, committed_size=up.acked_committed)
                break  # left paused: the check after the kill resumes it
            if i > 0:
                ctx.note("QueryWriteStatus sent", upload_id=up.upload_id)
                reply = stub.QueryWriteStatus(bs.QueryWriteStatusRequest(resource_name=up.resource), timeout=WORK_RPC_TIMEOUT_S)
                ctx.note("QueryWriteStatus answered", upload_id=up.upload_id, committed_size=reply.committed_size, complete=reply.complete)
                if (reply.committed_size, reply.complete) != (up.acked_committed, False):
                    ctx.wrong(
                        f"QueryWriteStatus of {up.resource} answered ({reply.committed_size}, {reply.complete}) "
                        f"after a Write answered committed_size {up.acked_committed}"
                    )
                    return
                ctx.ack("QueryWriteStatus")
            if last:
                up.finish_sent = True
                ctx.model.file_sent(up.name, up.digest, size)
            ctx.note("Write sent", upload_id=up.upload_id, name=up.name, start=start, end=end, size=size, finish=last)
            reply = stub.Write(write_requests(up.resource, data[start:end], start, last), timeout=WORK_RPC_TIMEOUT_S)
            ctx.note("Write acked", upload_id=up.upload_id, committed_size=reply.committed_size)
            if reply.committed_size != end:
                ctx.wrong(f"Write of {up.resource} [{start}, {end}) answered committed_size {reply.committed_size}")
                return
            up.acked_committed = end
            if last:
                up.finished_acked = True
                ctx.model.file_acked(up.name, up.digest, size, "ByteStream.Write")
                ctx.ack("ByteStream.Write finished")
            else:
                ctx.ack("ByteStream.Write partial")
            if ctx.killing.is_set():
                return

    worker_loop(ctx, "ByteStream", step)


def make_bars(rng, dates):
    out = {}
    for d in dates:
        low = round(rng.uniform(1, 500), 2)
        high = round(low + rng.uniform(0, 20), 2)
        o = round(rng.uniform(low, high), 2)
        c = round(rng.uniform(low, high), 2)
        volume = float(rng.randint(0, 10**9)) if rng.random() < 0.9 else None
        out[d] = (o, high, low, c, volume)
    return out


EPOCH = datetime.date(1970, 1, 1)


def day(n):
    return (EPOCH + datetime.timedelta(days=n)).isoformat()


def import_worker(ctx, channel, candidates):
    """ImportBars of new symbols (CSV text or Bar messages) and of more bars
    for symbols of earlier rounds (some dates replaced, some added)."""
    rng = ctx.rng("bars")
    stub = market_grpc.MarketServiceStub(channel)
    rng.shuffle(candidates)

    def step():
        if candidates and rng.random() < 0.3:
            symbol = candidates.pop()
            with ctx.model.lock:
                old = sorted(ctx.model.symbols[symbol].acked)
            last = (datetime.date.fromisoformat(old[-1]) - EPOCH).days + 1
            dates = rng.sample(old, min(len(old), rng.randint(1, 20))) + [day(last + i) for i in range(rng.randint(0, 50))]
        else:
            symbol = f"CR{ctx.number}X{uuid.UUID(int=rng.getrandbits(128)).hex[:10].upper()}"
            first = rng.randint(7000, 18000)  # 1989 to 2019
            dates = [day(first + i) for i in range(rng.randint(1, 300))]
        bars = make_bars(rng, dates)
        as_csv = rng.random() < 0.5
        if as_csv:
            bars = {d: (*b[:4], b[4] if b[4] is not None else 0.0) for d, b in bars.items()}
            text = "Date,Open,High,Low,Close,Volume\n" + "".join(
                f"{d},{o!r},{h!r},{lo!r},{c!r},{v!r}\n" for d, (o, h, lo, c, v) in bars.items()
            )
            raw = text.encode()
            step_size = rng.choice([7, 100, 4096, 1 << 20])
            requests = [market.ImportBarsRequest(symbol=symbol if i == 0 else "", csv=raw[i : i + step_size]) for i in range(0, len(raw), step_size)]
        else:
            messages = [
                market.Bar(date=d, open=o, high=h, low=lo, close=c, **({"volume": v} if v is not None else {}))
                for d, (o, h, lo, c, v) in bars.items()
            ]
            rng.shuffle(messages)
            requests = [market.ImportBarsRequest(symbol=symbol if i == 0 else "", bars=messages[i : i + 50]) for i in range(0, len(messages), 50)]
        ctx.model.import_sent(symbol, bars)
        ctx.note("ImportBars sent", symbol=symbol, bars=len(bars), csv=as_csv)
        reply = stub.ImportBars(iter(requests), timeout=WORK_RPC_TIMEOUT_S)
        ctx.note("ImportBars acked", symbol=symbol)
        merged = ctx.model.import_acked(symbol, bars)
        want = (symbol, len(bars), len(merged), min(merged), max(merged))
        got = (reply.symbol, reply.imported, reply.summary.bars, reply.summary.first_date, reply.summary.last_date)
        if got != want:
            ctx.wrong(f"ImportBars of {symbol} answered {got}, expected {want}")
            return
        ctx.ack("ImportBars")

    worker_loop(ctx, "ImportBars", step)


def publish_worker(ctx, channel):
    """Publish to a few entities of the round, each acknowledged one read
    back at once (Get) while the server lives."""
    rng = ctx.rng("positions")
    stub = position_grpc.PositionServiceStub(channel)
    entities = [f"crash-r{ctx.number}-{k}" for k in range(4)]

    def step():
        entity = rng.choice(entities)
        xyz = (rng.uniform(-1e3, 1e3), rng.uniform(-1e3, 1e3), rng.uniform(-1e3, 1e3))
        with ctx.model.lock:
            record = ctx.model.positions.setdefault(entity, {"acked": [], "sent": set()})
            record["sent"].add(xyz)
        reply = stub.Publish(position.PublishRequest(entity=entity, position=position.Vector3(x=xyz[0], y=xyz[1], z=xyz[2])), timeout=WORK_RPC_TIMEOUT_S)
        revision = reply.position.revision
        with ctx.model.lock:
            previous = record["acked"][-1][0] if record["acked"] else 0
            record["acked"].append((revision, xyz))
        if revision != previous + 1:
            ctx.wrong(f"Publish to {entity} answered revision {revision} after {previous}", "positions")
            return
        ctx.ack("Publish")
        got = stub.Get(position.GetRequest(entity=entity), timeout=WORK_RPC_TIMEOUT_S).position
        seen = (got.position.x, got.position.y, got.position.z)
        if (got.revision, seen) != (revision, xyz):
            ctx.wrong(f"Get of {entity} answered revision {got.revision} {seen} right after Publish answered {revision} {xyz}", "positions")
            return
        ctx.tally.add("positions read back live")
        time.sleep(0.005)  # a tight loop of tiny calls would only burn the shared cores

    worker_loop(ctx, "Publish", step)


def run_work(ctx, server, kill_after_s):
    """Starts the workers, SIGKILLs the server `kill_after_s` later, and
    waits for the workers to see it."""
    channel = open_channel(server.addr)
    model = ctx.model
    workers = [
        lambda: plain_worker(ctx, channel, "FileSrv.UploadFile", 0),
        lambda: plain_worker(ctx, channel, "FileSrv.UploadFile", 1),
        lambda: plain_worker(ctx, channel, "FilesService.Upload", 0),
        lambda: plain_worker(ctx, channel, "FilesService.Upload", 1),
        lambda: plain_worker(ctx, channel, "FileTransfer.Upload", 0),
        lambda: replace_worker(ctx, channel, model.settled_files()),
        lambda: resumable_worker(ctx, channel, 0),
        lambda: resumable_worker(ctx, channel, 1),
        lambda: import_worker(ctx, channel, model.settled_symbols()),
        lambda: publish_worker(ctx, channel),
    ]
    threads = [threading.Thread(target=w, name=f"worker-{i}", daemon=True) for i, w in enumerate(workers)]
    started = ctx.t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(max(0.0, started + kill_after_s - time.monotonic()))
    ctx.killing.set()
    killed_after = time.monotonic() - started
    ctx.note("SIGKILL", pid=server.process.pid)
    server.kill()
    ctx.note("SIGKILL done")
    for t in threads:
        t.join(timeout=WORK_RPC_TIMEOUT_S + 10)
        if t.is_alive():
            ctx.problems.add("unexpected", f"round {ctx.number}: {t.name} still running {WORK_RPC_TIMEOUT_S + 10}s after the kill")
    channel.close()
    return killed_after


# ---------------------------------------------------------------------------
# The check after the restart


def list_files(stub):
    out, token = {}, ""
    while True:
        reply = stub.List(files.ListRequest(page_size=1000, page_token=token), timeout=CHECK_RPC_TIMEOUT_S)
        for f in reply.files:
            out[f.name] = (f.sha256, f.size)
        token = reply.next_page_token
        if not token:
            return out


def download(stub, name):
    """The bytes of `name` as (sha256, size) hashed here, and the File
    message the download started with."""
    h, size, header = hashlib.sha256(), 0, None
    for reply in stub.Download(files.DownloadRequest(names=[name]), timeout=CHECK_RPC_TIMEOUT_S):
        if reply.HasField("file"):
            header = (reply.file.sha256, reply.file.size)
        else:
            h.update(reply.chunk)
            size += len(reply.chunk)
    return (h.hexdigest(), size), header


def check_files(rnd, channel, model, problems, tally):
    stub = files_grpc.FilesServiceStub(channel)
    listed = list_files(stub)
    to_download = []
    for name, entry in list(model.files.items()):
        allowed = set(entry.maybe) | ({entry.acked} if entry.acked else set())
        seen = listed.get(name)
        if entry.acked:
            tally.add("acknowledged files checked")
        if seen is None:
            if entry.acked:
                problems.add("lost", f"round {rnd}: {name!r}, acknowledged by {entry.acked_by} with sha256 {entry.acked[0]} ({entry.acked[1]} bytes), is gone")
        elif seen not in allowed:
            if entry.acked:
                problems.add("lost", f"round {rnd}: {name!r}, acknowledged by {entry.acked_by} with sha256 {entry.acked[0]} ({entry.acked[1]} bytes), now holds {seen}; sent since: {sorted(entry.maybe)}")
            else:
                problems.add("half_visible", f"round {rnd}: {name!r} is visible as {seen}, which is none of the uploads sent: {sorted(allowed)}")
        if seen is not None and (entry.touched or seen != entry.acked):
            to_download.append(name)
        if entry.maybe:
            committed = seen in entry.maybe and seen != entry.acked
            tally.add("in flight at the kill, found committed" if committed else "in flight at the kill, not committed")
    # Names the server chose (FileTransfer) whose answer the kill cut off.
    for name, seen in listed.items():
        if name in model.files:
            continue
        if model.transfer_maybe[seen] > 0:
            model.transfer_maybe[seen] -= 1
            model.files[name] = FileEntry(name, model._next(), acked=None, maybe={seen})
            to_download.append(name)
            tally.add("in flight at the kill, found committed")
        else:
            problems.add("half_visible", f"round {rnd}: {name!r} is visible as {seen} but no client ever sent that name or that content")
    for name in to_download:
        got, header = download(stub, name)
        if header != listed[name] or got != listed[name]:
            problems.add("half_visible", f"round {rnd}: {name!r} is listed as {listed[name]}, its download starts as {header} and its bytes are {got}")
    tally.add("files downloaded and hashed", len(to_download))
    # What the server holds now is the truth the next round starts from.
    for name, entry in list(model.files.items()):
        seen = listed.get(name)
        if seen is None:
            del model.files[name]
        else:
            entry.acked, entry.maybe, entry.touched = seen, set(), False
            entry.acked_by = entry.acked_by or "an upload cut by the kill, found whole"
    model.transfer_maybe.clear()


def check_resumables(rnd, channel, model, problems, tally):
    """Every unfinished upload: QueryWriteStatus, then the rest from there."""
    stub = bs_grpc.ByteStreamStub(channel)
    fstub = files_grpc.FilesServiceStub(channel)
    for up in model.resumables:
        if up.done:
            continue
        size = len(up.data)
        try:
            reply = stub.QueryWriteStatus(bs.QueryWriteStatusRequest(resource_name=up.resource), timeout=CHECK_RPC_TIMEOUT_S)
            committed, complete = reply.committed_size, reply.complete
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                problems.add("not_resumable", f"round {rnd}: QueryWriteStatus of {up.resource} failed: {e.code()} {e.details()}")
                up.done = True
                continue
            if up.acked_committed > 0:
                cut_finish = up.finish_sent and not up.finished_acked
                message = (
                    f"round {rnd}: upload {up.upload_id} had a Write answered committed_size {up.acked_committed}, "
                    f"now QueryWriteStatus says NOT_FOUND: {e.details()}"
                    + ("; its finishing Write (finish_write) was cut by the kill" if cut_finish else "")
                )
                problems.add("lost", message)
                up.acked_committed = 0  # reported once; it resumes from 0
            committed, complete = 0, False
        if up.acked_committed > 0:
            tally.add("acknowledged resumable prefixes checked")
        if complete:
            stored = model.files.get(up.name)
            if committed != size or not stored or stored.acked != (up.digest, size):
                problems.add("half_visible", f"round {rnd}: upload {up.upload_id} is complete with committed_size {committed} of {size}, yet {up.name!r} is stored as {stored.acked if stored else None}")
            elif not up.finished_acked:
                tally.add("resumable finished by the kill's last Write")
            up.done = True
            continue
        if up.finished_acked:
            problems.add("lost", f"round {rnd}: upload {up.upload_id} had its finish_write answered, now QueryWriteStatus says committed_size {committed}, not complete")
        if committed < up.acked_committed:
            problems.add("lost", f"round {rnd}: upload {up.upload_id} had a Write answered committed_size {up.acked_committed}, now QueryWriteStatus says {committed}")
        if committed > size:
            problems.add("not_resumable", f"round {rnd}: upload {up.upload_id} of {size} bytes has committed_size {committed}")
            up.done = True
            continue
        if up.name in model.files:
            problems.add("half_visible", f"round {rnd}: {up.name!r} is visible while its upload {up.upload_id} is at {committed} of {size} bytes")
        try:
            reply = stub.Write(write_requests(up.resource, up.data[committed:], committed, True), timeout=CHECK_RPC_TIMEOUT_S)
            if reply.committed_size != size:
                problems.add("not_resumable", f"round {rnd}: resuming {up.resource} at {committed} answered committed_size {reply.committed_size}, expected {size}")
            got, header = download(fstub, up.name)
            if got != (up.digest, size) or header != (up.digest, size):
                problems.add("not_resumable", f"round {rnd}: {up.name!r} resumed at {committed} holds {got} (download header {header}), expected {(up.digest, size)}")
        except grpc.RpcError as e:
            problems.add("not_resumable", f"round {rnd}: resuming {up.resource} at {committed} failed: {e.code()} {e.details()}")
        else:
            tally.add("resumable uploads resumed after the kill")
            if committed == 0:
                tally.add("resumed from 0")
            entry = model.files.setdefault(up.name, FileEntry(up.name, model._next()))
            entry.acked, entry.maybe, entry.touched, entry.acked_by = (up.digest, size), set(), False, "ByteStream.Write (resumed)"
        up.done = True
    model.resumables = [u for u in model.resumables if not u.done]


def bars_of(reply):
    return {b.date: (b.open, b.high, b.low, b.close, b.volume if b.HasField("volume") else None) for b in reply.bars}


def same_bars(a, b):
    if a.keys() != b.keys():
        return False
    for d in a:
        for x, y in zip(a[d], b[d]):
            if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-9 * max(1.0, abs(x))):
                return False
    return True


def check_bars(rnd, channel, model, problems, tally):
    stub = market_grpc.MarketServiceStub(channel)
    summaries = {s.symbol: s for s in stub.ListSymbols(market.ListSymbolsRequest(), timeout=CHECK_RPC_TIMEOUT_S).symbols}
    for symbol in summaries:
        if symbol not in model.symbols:
            problems.add("half_visible", f"round {rnd}: symbol {symbol} is stored but was never imported")
    for symbol, entry in list(model.symbols.items()):
        summary = summaries.get(symbol)
        if entry.acked:
            tally.add("acknowledged symbols checked")
        if not entry.touched:
            want = (len(entry.acked), min(entry.acked), max(entry.acked))
            got = (summary.bars, summary.first_date, summary.last_date) if summary else None
            if got != want:
                problems.add("lost", f"round {rnd}: symbol {symbol}, untouched this round, is summarised as {got}, expected {want}")
            continue
        allowed = ([entry.acked] if entry.acked else []) + [{**(entry.acked or {}), **m} for m in entry.maybe]
        if summary is None:
            observed = None
        else:
            observed = bars_of(stub.GetBars(market.GetBarsRequest(symbol=symbol, adjusted=False), timeout=CHECK_RPC_TIMEOUT_S))
            if (summary.bars, summary.first_date, summary.last_date) != (len(observed), min(observed), max(observed)):
                problems.add("half_visible", f"round {rnd}: symbol {symbol} is summarised as {summary.bars} bars {summary.first_date}..{summary.last_date}, GetBars answers {len(observed)}")
        ok = (observed is None and not entry.acked) or (observed is not None and any(same_bars(observed, a) for a in allowed))
        if not ok:
            if entry.acked and (observed is None or not set(entry.acked) <= set(observed)):
                problems.add("lost", f"round {rnd}: symbol {symbol} had {len(entry.acked)} bars acknowledged, now holds {len(observed) if observed else 0}")
            else:
                sizes = [len(a) for a in allowed]
                problems.add("half_visible", f"round {rnd}: symbol {symbol} holds {len(observed) if observed else 0} bars, which is none of the imports sent (would be {sizes})")
        if entry.maybe:
            committed = observed is not None and any(same_bars(observed, {**(entry.acked or {}), **m}) for m in entry.maybe) and not (entry.acked and same_bars(observed, entry.acked))
            tally.add("in flight at the kill, found committed" if committed else "in flight at the kill, not committed")
        if observed is None:
            del model.symbols[symbol]
        else:
            entry.acked, entry.maybe, entry.touched = observed, [], False


def check_positions(rnd, channel, model, problems, tally, durable):
    stub = position_grpc.PositionServiceStub(channel)
    for entity, record in model.positions.items():
        try:
            got = stub.Get(position.GetRequest(entity=entity), timeout=CHECK_RPC_TIMEOUT_S).position
            seen = (got.revision, (got.position.x, got.position.y, got.position.z))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                problems.add("unexpected", f"round {rnd}: Get of {entity} failed: {e.code()} {e.details()}", "positions")
                continue
            seen = None
        if record["acked"]:
            tally.add("acknowledged positions checked")
        if seen is None:
            if record["acked"]:
                tally.add("positions gone after the restart")
                if durable:
                    problems.add("lost", f"round {rnd}: {entity} had revision {record['acked'][-1][0]} acknowledged, Get after the restart is NOT_FOUND", "positions")
            continue
        tally.add("positions kept over the restart")
        if seen[1] not in record["sent"]:
            problems.add("half_visible", f"round {rnd}: {entity} holds {seen}, a position never published", "positions")
        elif durable and record["acked"] and seen[0] < record["acked"][-1][0]:
            problems.add("lost", f"round {rnd}: {entity} had revision {record['acked'][-1][0]} acknowledged, holds {seen[0]} after the restart", "positions")
    model.positions.clear()


def prune(channel, model):
    """Deletes the oldest files and symbols once there are too many, so that
    fsck and the checks stay quick over 100 rounds."""
    if len(model.files) > MAX_FILES:
        stub = files_grpc.FilesServiceStub(channel)
        for entry in sorted(model.files.values(), key=lambda e: e.order)[: len(model.files) - KEEP_FILES]:
            stub.Delete(files.DeleteRequest(name=entry.name), timeout=CHECK_RPC_TIMEOUT_S)
            del model.files[entry.name]
    if len(model.symbols) > MAX_SYMBOLS:
        stub = market_grpc.MarketServiceStub(channel)
        for entry in sorted(model.symbols.values(), key=lambda e: e.order)[: len(model.symbols) - KEEP_SYMBOLS]:
            stub.DeleteSymbol(market.DeleteSymbolRequest(symbol=entry.symbol), timeout=CHECK_RPC_TIMEOUT_S)
            del model.symbols[entry.symbol]


def snapshot(data_dir, to):
    """A copy of the data dir as the kill left it, but for the stored
    objects (which never change once written)."""
    if to.exists():
        shutil.rmtree(to)

    def ignore(directory, names):
        if Path(directory) == data_dir:
            return ["dataport.lock"]
        return ["objects"] if Path(directory) == data_dir / "files" else []

    shutil.copytree(data_dir, to, ignore=ignore)
    objects = data_dir / "files" / "objects"
    if objects.is_dir():
        listing = "".join(f"{p.name} {p.stat().st_size}\n" for p in sorted(objects.iterdir()))
        (to / "files" / "objects.ls").write_text(listing)


# ---------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="rounds of work, SIGKILL, fsck and checks [100]")
    parser.add_argument("--smoke", action="store_true", help=f"{SAMPLE_ROUNDS} rounds")
    parser.add_argument("--seed", type=int, default=None, help="seeds the data and the kill times (default: random, printed)")
    parser.add_argument("--kill-after-ms", default="50-800", help="the SIGKILL comes uniformly in this range after the work starts")
    parser.add_argument("--workdir", type=Path, default=None, help="for the data dir, logs and fsck output (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir after a pass too")
    parser.add_argument("--strict-fsck", action="store_true", help="fail when fsck right after the kill exits 1 for crash leftovers alone")
    parser.add_argument("--durable-positions", action="store_true", help="require acknowledged positions to survive the restart")
    parser.add_argument("--bin", type=Path, default=Path(os.environ.get("DATAPORT_BIN") or REPO_ROOT / "target/release/dataport"))
    args = parser.parse_args()
    rounds = SAMPLE_ROUNDS if args.smoke else args.rounds
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    lo_ms, _, hi_ms = args.kill_after_ms.partition("-")
    kill_lo, kill_hi = float(lo_ms) / 1000, float(hi_ms or lo_ms) / 1000
    binary = args.bin.resolve()
    if not os.access(binary, os.X_OK):
        sys.exit(f"crash: no executable dataport at {binary} (set DATAPORT_BIN or build it: cargo build --release -p dataport)")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dataport-crash."))
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    logs = workdir / "logs"
    if data_dir.exists() and any(data_dir.iterdir()):
        sys.exit(f"crash: {data_dir} is not empty; give a new --workdir")
    logs.mkdir(exist_ok=True)
    log = lambda message: print(f"crash: {message}", file=sys.stderr, flush=True)  # noqa: E731
    log(f"{rounds} rounds, seed {seed}, SIGKILL {kill_lo * 1000:.0f}-{kill_hi * 1000:.0f} ms into the work, workdir {workdir}")

    model, tally, problems = Model(), Tally(), Problems()
    kill_rng = random.Random(f"{seed}/kills")
    fsck_exit0 = fsck_leftovers = fsck_clean_rounds = rounds_done = 0
    kill_times = []
    started_at = time.monotonic()
    current = None
    try:
        for number in range(1, rounds + 1):
            ctx = Round(number, seed, model, tally, problems)
            fsck_out = logs / f"round-{number:03d}-fsck.txt"
            # 1. Work, and the kill.
            current = Server(binary, data_dir, logs / f"round-{number:03d}-killed.log").start()
            killed_after = run_work(ctx, current, kill_rng.uniform(kill_lo, kill_hi))
            kill_times.append(killed_after)
            ctx.write_journal(logs / f"round-{number:03d}-client.jsonl")
            # 2. fsck on what the kill left.
            code, damage, leftovers = run_fsck(binary, data_dir, fsck_out)
            snapshot(data_dir, workdir / "after-kill")
            for line in damage:
                problems.add("fsck", f"round {number}: fsck right after the kill: {line}")
            if code == 0:
                fsck_exit0 += 1
            elif not damage:
                fsck_leftovers += 1
                if args.strict_fsck:
                    problems.add("fsck", f"round {number}: fsck right after the kill exits 1 for crash leftovers: {leftovers}")
            # 3. Restart and check.
            current = Server(binary, data_dir, logs / f"round-{number:03d}-check.log").start()
            with open_channel(current.addr) as channel:
                check_files(number, channel, model, problems, tally)
                check_resumables(number, channel, model, problems, tally)
                check_bars(number, channel, model, problems, tally)
                check_positions(number, channel, model, problems, tally, args.durable_positions)
                if not problems:
                    prune(channel, model)
            stopped = current.stop()
            current = None
            if stopped != 0:
                problems.add("unexpected", f"round {number}: the checking server exited {stopped} after SIGTERM (see {logs})")
            # 4. After a clean stop nothing may be left over.
            code2, damage2, leftovers2 = run_fsck(binary, data_dir, fsck_out)
            if code2 != 0:
                problems.add("fsck", f"round {number}: fsck after the restarted server stopped cleanly exits {code2}: {damage2 + leftovers2}")
            if not damage and code2 == 0:
                fsck_clean_rounds += 1
            rounds_done += 1
            acked = ", ".join(f"{k} {v}" for k, v in sorted(ctx.acked.items())) or "nothing"
            log(f"round {number}/{rounds}: SIGKILL after {killed_after * 1000:.0f} ms; acknowledged: {acked}; "
                f"fsck exit {code} ({len(leftovers)} left over), after the restart exit {code2}; "
                f"{'FAILED' if problems else 'checked'}")
            if problems:
                break
    except Exception as e:  # the run itself broke: say where, keep everything
        problems.add("unexpected", f"round {rounds_done + 1}: the run broke: {e!r}")
        import traceback

        traceback.print_exc()
    finally:
        if current is not None:
            current.kill()

    failed = bool(problems)
    verdict = "FAIL" if failed else "PASS"
    lost, half, unres = problems.count("lost"), problems.count("half_visible"), problems.count("not_resumable")
    fsck_verdict = "FAIL" if problems.count("fsck") else "PASS"
    positions_verdict = "FAIL" if problems.count(area="positions") else "PASS"
    elapsed = time.monotonic() - started_at
    t = tally
    rows = [
        f"| crash: SIGKILLs | rounds, fsck clean, acknowledged lost, half-visible, resumable not resumable "
        f"| {rounds_done}, {fsck_clean_rounds}, {lost}, {half}, {unres} "
        f"| {'see the failures on stderr' if failed else 'all clean, nothing lost'} | {verdict} |",
        "| crash: acknowledged operations checked | FileSrv.UploadFile, FilesService.Upload, FileTransfer.Upload, "
        "(of those, replacements), ByteStream.Write finished, ByteStream.Write partial, QueryWriteStatus, ImportBars, Publish "
        f"| {t['acked FileSrv.UploadFile']}, {t['acked FilesService.Upload']}, {t['acked FileTransfer.Upload']}, "
        f"({t['acked replacement']}), {t['acked ByteStream.Write finished']}, {t['acked ByteStream.Write partial']}, "
        f"{t['acked QueryWriteStatus']}, {t['acked ImportBars']}, {t['acked Publish']} "
        f"| after the restarts: {t['acknowledged files checked']} file, {t['acknowledged resumable prefixes checked']} resumable "
        f"and {t['acknowledged symbols checked']} symbol checks, {t['files downloaded and hashed']} downloads hashed | {verdict} |",
        f"| crash: cut by the SIGKILL | uploads and imports found committed whole, not committed; resumable uploads resumed (of those from 0) "
        f"| {t['in flight at the kill, found committed']}, {t['in flight at the kill, not committed']}; "
        f"{t['resumable uploads resumed after the kill']} ({t['resumed from 0']}) "
        f"| all or nothing; kills {min(kill_times, default=0) * 1000:.0f}-{max(kill_times, default=0) * 1000:.0f} ms into the work | {verdict} |",
        f"| crash: fsck right after the SIGKILL | exit 0, exit 1 for crash leftovers alone, damage "
        f"| {fsck_exit0}, {fsck_leftovers}, {problems.count('fsck')} "
        f"| leftovers swept at the next start: fsck exit 0 after each clean stop"
        f"{'; leftovers fail (--strict-fsck)' if args.strict_fsck else ''} | {fsck_verdict} |",
        f"| crash: positions over a restart | acknowledged and read back live, entities kept after the restart "
        f"| {t['positions read back live']}, {t['positions kept over the restart']} of {t['acknowledged positions checked']} "
        f"| {'acknowledged ones must survive (--durable-positions)' if args.durable_positions else 'kept in memory only (position/hub.rs), not durable by design; none published-never'} "
        f"| {positions_verdict} |",
    ]
    print("\n".join(rows), flush=True)
    log(f"{rounds_done} rounds in {elapsed:.0f} s, seed {seed}")
    if failed:
        with problems.lock:
            for kind, message, _ in problems.items:
                log(f"FAIL [{kind}] {message}")
        log(f"the data dir is kept for inspection: {data_dir}")
        log(f"as the last kill left it (objects listed, not copied): {workdir / 'after-kill'}; server logs and fsck output: {logs}")
        log(f"to run the same data and kill times again: tests/reliability/crash --rounds {rounds} --seed {seed}")
        return 1
    if args.keep:
        log(f"workdir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
