"""Three replicas sharing one PostgreSQL database behind nginx, driven by
grpcio clients as users drive them (see tests/scenario/run).

Each part works through the balancer and through single replicas, and kills
a replica in the middle: imports stay acknowledged (every one is found after),
GetMACD and the charts agree with TA-Lib on every replica, a publish on one
replica reaches watchers on another within 100 ms, and a client that lost its
replica carries on through the balancer. Prints one line per check and exits
1 if any failed."""

import argparse
import io
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import grpc
import hashlib
import indicator_graph_pb2
import indicator_graph_pb2_grpc
import indicator_pb2
import indicator_pb2_grpc
import numpy as np
import talib
from dataport.files.v1 import files_pb2 as f
from dataport.files.v1 import files_pb2_grpc as f_grpc
from dataport.market.v1 import market_pb2 as m
from dataport.market.v1 import market_pb2_grpc as m_grpc
from dataport.position.v1 import position_pb2 as p
from dataport.position.v1 import position_pb2_grpc as p_grpc
from google.bytestream import bytestream_pb2 as bs
from google.bytestream import bytestream_pb2_grpc as bs_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

TIMEOUT = 10
FAILED = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        FAILED.append(name)


class Replica:
    """One `dataport serve` on its own port and data directory."""

    def __init__(self, index, port, work, database, files):
        self.index, self.addr = index, f"127.0.0.1:{port}"
        self.data = os.path.join(work, f"replica-{index}")
        self.log = os.path.join(work, f"replica-{index}.log")
        self.database, self.files = database, files
        self.process = None

    def start(self):
        # Both stores shared: no data directory is made (checked at the end).
        cmd = [os.environ["DATAPORT_BIN"], "serve", "--listen", self.addr, "--data-dir", self.data,
               "--bars-url", self.database, "--files-url", self.files]
        self.process = subprocess.Popen(cmd, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with grpc.insecure_channel(self.addr) as ch:
                    reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.05)
        raise RuntimeError(f"replica {self.index} did not start; see {self.log}")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def cut(e):
    """Whether a call failed because its reply was cut: a replica that dies
    while its reply is on the way leaves nginx only a reset stream to send,
    which grpcio reports as INTERNAL "Stream removed"."""
    return e.code() == grpc.StatusCode.INTERNAL and "RST_STREAM" in (e.details() or "")


def retrying(call, request, repeatable=False, **kwargs):
    """Calls until an answer, retrying UNAVAILABLE (a replica gone, the
    balancer moving on) as gRPC clients should, and, for a call that is safe
    to send again (`repeatable`: a read, or a write that replaces), a reply
    cut by its replica's death; answers (reply, retries)."""
    for attempt in range(20):
        try:
            return call(request, timeout=TIMEOUT, **kwargs), attempt
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE and not (repeatable and cut(e)):
                raise
            time.sleep(0.1)
    raise RuntimeError("still failing after 20 tries")


def walk(n, seed):
    """n daily bars of a random walk: (dates, closes, csv)."""
    rng = random.Random(seed)
    day = np.datetime64("2015-01-01")
    dates, closes, close = [], [], 100.0
    while len(dates) < n:
        if day.astype("datetime64[D]").view("int64") % 7 not in (2, 3):  # skip Saturday and Sunday
            close *= 1 + rng.gauss(0, 0.01)
            dates.append(str(day))
            closes.append(round(close, 4))
        day += 1
    rows = "".join(f"{d},{c},{c * 1.01:.4f},{c * 0.99:.4f},{c},1000\n" for d, c in zip(dates, closes))
    return dates, closes, "date,open,high,low,close,volume\n" + rows


def import_bars(stub, symbol, csv):
    return stub.ImportBars(iter([m.ImportBarsRequest(symbol=symbol, csv=csv.encode())]), timeout=TIMEOUT)


def macd_matches(channel, symbol, dates, closes, start, end):
    """Whether GetMACD over [start, end] equals TA-Lib's MACD of every close."""
    reply = indicator_pb2_grpc.IndicatorStub(channel).GetMACD(
        indicator_pb2.MACDRequest(start_date=start, end_date=end, symbol=symbol), timeout=TIMEOUT)
    macd, _, _ = talib.MACD(np.array(closes, dtype=float), 12, 26, 9)
    want = {d: v for d, v in zip(dates, macd) if start <= d <= end}
    got = {r.date: r.macd for r in reply.macd}
    return (set(got) == set(want) and len(got) > 0
            and all(math.isclose(got[d], float(np.float32(want[d])), rel_tol=1e-6, abs_tol=1e-6) for d in got))


def market(replicas, balancer):
    symbol = f"SCN{uuid.uuid4().hex[:6].upper()}"
    dates, closes, csv = walk(400, 1)
    via = [grpc.insecure_channel(r.addr) for r in replicas]
    import_bars(m_grpc.MarketServiceStub(via[0]), symbol, csv)
    start, end = dates[100], dates[-1]
    for i, ch in enumerate(via[1:] + [balancer], 1):
        name = "the balancer" if ch is balancer else f"replica {i}"
        check(f"market: imported via replica 0, GetMACD via {name} equals TA-Lib",
              macd_matches(ch, symbol, dates, closes, start, end))
    # A re-import through one replica is seen at once through another, whose
    # cache held the old bars.
    closes[-1] *= 1.5
    c = closes[-1]
    import_bars(m_grpc.MarketServiceStub(via[2]), symbol, f"date,open,high,low,close\n{dates[-1]},{c},{c},{c},{c}\n")
    check("market: a re-import via replica 2 is read at once via replica 1 (its cache checked)",
          macd_matches(via[1], symbol, dates, closes, start, end))
    chunks = indicator_graph_pb2_grpc.IndicatorGraphStub(via[2]).GetMACDGraph(
        indicator_graph_pb2.MACDGraphRequest(start_date=dates[150], end_date=end, symbol=symbol), timeout=TIMEOUT)
    png = b"".join(c.macd_chunk for c in chunks)
    image = Image.open(io.BytesIO(png))
    check("market: GetMACDGraph via replica 2 draws the imported symbol", image.format == "PNG",
          f"{image.size[0]}x{image.size[1]} PNG, {len(png)} bytes")

    # Imports through the balancer, eight at a time, while a replica is
    # killed under them: every one acknowledged is stored.
    stub = m_grpc.MarketServiceStub(balancer)
    names = [f"K{uuid.uuid4().hex[:6].upper()}" for _ in range(80)]
    retries = under_load(lambda i: retrying(lambda req, timeout: import_bars(stub, names[i], csv_small(i)), None, repeatable=True),
                         len(names), kill_at=20, kill=replicas[1].kill)
    summaries = {s.symbol: s.bars for s in stub.ListSymbols(m.ListSymbolsRequest(), timeout=TIMEOUT).symbols}
    lost = [n for n in names if summaries.get(n) != 3]
    check("market: 80 imports via the balancer, 8 at a time, replica 1 killed after 20: none lost",
          not lost, f"{len(names)} acknowledged, {retries} retried (UNAVAILABLE, or a cut reply), lost {lost}")

    # GetMACD through the balancer while another is killed: every call
    # answered, right.
    want = len([d for d in dates if start <= d <= end])
    request = indicator_pb2.MACDRequest(start_date=start, end_date=end, symbol=symbol)

    right = []

    def get_macd(_):
        reply, tried = retrying(indicator_pb2_grpc.IndicatorStub(balancer).GetMACD, request, repeatable=True)
        right.append(len(reply.macd) == want)
        return reply, tried

    retries = under_load(get_macd, 300, kill_at=100, kill=replicas[2].kill)
    check("market: 300 GetMACD via the balancer, 8 at a time, replica 2 killed after 100: all answered right",
          right.count(True) == 300, f"{right.count(True)} right, {retries} retried (UNAVAILABLE, or a cut reply)")
    replicas[1].start()
    replicas[2].start()
    check("market: the restarted replicas answer what the others do",
          all(macd_matches(grpc.insecure_channel(r.addr), symbol, dates, closes, start, end) for r in replicas[1:]))


def under_load(call, n, kill_at, kill):
    """Runs call(0..n) eight at a time, killing a replica once kill_at have
    been answered; answers how many retries they took."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    retries, done = 0, 0
    with ThreadPoolExecutor(8) as pool:
        for future in as_completed([pool.submit(call, i) for i in range(n)]):
            retries += future.result()[1]
            done += 1
            if done == kill_at:
                kill()
    return retries


def csv_small(i):
    return f"date,open,high,low,close\n2020-01-02,{i},{i},{i},{i}\n2020-01-03,{i},{i},{i},{i}\n2020-01-06,1,1,1,1\n"


def positions(replicas, balancer):
    entity = f"drone-{uuid.uuid4().hex[:8]}"
    one = p_grpc.PositionServiceStub(grpc.insecure_channel(replicas[0].addr))
    two = grpc.insecure_channel(replicas[1].addr)
    heard, lateness = [], []
    watch = p_grpc.PositionServiceStub(two).Watch(p.WatchRequest(entities=[entity]), timeout=60)
    watch.initial_metadata()  # registered: every later publish reaches it

    def read():
        try:
            for r in watch:
                heard.append((r.position, time.monotonic()))
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    sent = []
    for i in range(50):
        t = time.monotonic()
        ack = one.Publish(p.PublishRequest(entity=entity, position=p.Vector3(x=i, y=0.5, z=-i)), timeout=TIMEOUT)
        sent.append((ack.position.revision, t))
        got = p_grpc.PositionServiceStub(grpc.insecure_channel(replicas[2].addr)).Get(
            p.GetRequest(entity=entity), timeout=TIMEOUT).position
        if got.revision != ack.position.revision:
            check("positions: a Get via replica 2 after an acknowledged publish sees it", False,
                  f"revision {got.revision}, published {ack.position.revision}")
            break
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while len(heard) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.cancel()
    reader.join()
    at = {pos.revision: when for pos, when in heard}
    for revision, t in sent:
        if revision in at:
            lateness.append((at[revision] - t) * 1000)
    check("positions: 50 publishes via replica 0, each read at once via replica 2 and heard by a Watch on replica 1",
          len(lateness) == len(sent) and max(lateness) < 100,
          f"heard {len(lateness)}/{len(sent)}, from publish to watcher p50 {np.percentile(lateness, 50):.1f} ms, "
          f"max {max(lateness):.1f} ms (within 100 ms)" if lateness else "none heard")

    # A watcher whose replica is killed watches again through the balancer
    # and misses nothing of the latest position.
    watch = p_grpc.PositionServiceStub(grpc.insecure_channel(replicas[1].addr)).Watch(
        p.WatchRequest(entities=[entity]), timeout=60)
    watch.initial_metadata()
    replicas[1].kill()
    try:
        for _ in watch:
            pass
        ended = "ended cleanly"
    except grpc.RpcError as e:
        ended = e.code().name
    last = one.Publish(p.PublishRequest(entity=entity, position=p.Vector3(x=99, y=99, z=99)), timeout=TIMEOUT)
    stub = p_grpc.PositionServiceStub(balancer)
    current, _ = retrying(stub.Get, p.GetRequest(entity=entity), repeatable=True)
    again = stub.Watch(p.WatchRequest(entities=[entity]), timeout=10)
    again.initial_metadata()
    after = one.Publish(p.PublishRequest(entity=entity, position=p.Vector3(x=100, y=0, z=0)), timeout=TIMEOUT)
    seen = next(iter(again)).position
    again.cancel()
    check("positions: a watcher whose replica was killed watches again via the balancer, nothing missed",
          current.position.revision == last.position.revision and seen.revision == after.position.revision,
          f"its stream: {ended}; Get saw revision {current.position.revision}, the new watch {seen.revision}")
    replicas[1].start()


CHUNK = 1 << 20


def writes(resource, data, offset, finish):
    """ByteStream Write requests of `data` from `offset`, 1 MiB each."""
    for i, at in enumerate(range(offset, offset + max(len(data), 1), CHUNK)):
        piece = data[at - offset:at - offset + CHUNK]
        last = at + CHUNK >= offset + len(data)
        yield bs.WriteRequest(resource_name=resource if i == 0 else "", write_offset=at,
                              finish_write=finish and last, data=piece)


def download(channel, name):
    stub = f_grpc.FilesServiceStub(channel)
    return b"".join(r.chunk for r in stub.Download(f.DownloadRequest(names=[name]), timeout=60))


def files(replicas, balancer):
    via = [grpc.insecure_channel(r.addr) for r in replicas]
    data = os.urandom(40 << 20)
    digest = hashlib.sha256(data).hexdigest()
    name = f"scenario-{uuid.uuid4().hex[:8]}.bin"
    upload_id = f"up-{uuid.uuid4().hex[:8]}"
    resource = f"uploads/{upload_id}/files/{name}/sha256/{digest}"

    # A resumable upload sent to replica 0, which is killed once 25 MiB of
    # the 40 went out; the client asks the balancer where to go on and
    # finishes through it; replica 1 serves the file whole.
    sent = threading.Event()

    def requests():
        for i, request in enumerate(writes(resource, data, 0, True)):
            if i == 25:
                sent.set()
                time.sleep(5)  # replica 0 dies meanwhile
            yield request

    def kill_after_sent():
        sent.wait()
        time.sleep(0.3)
        replicas[0].kill()

    killer = threading.Thread(target=kill_after_sent)
    killer.start()
    try:
        bs_grpc.ByteStreamStub(via[0]).Write(requests(), timeout=60)
        cut = "not cut"
    except grpc.RpcError as e:
        cut = e.code().name
    killer.join()
    stub = bs_grpc.ByteStreamStub(balancer)
    status, _ = retrying(stub.QueryWriteStatus, bs.QueryWriteStatusRequest(resource_name=resource), repeatable=True)
    committed = status.committed_size
    reply, _ = retrying(lambda r, timeout: stub.Write(writes(resource, data[committed:], committed, True),
                                                      timeout=timeout), None)
    got = download(via[1], name)
    check("files: a resumable upload cut by killing its replica is finished through the balancer, read whole via replica 1",
          cut != "not cut" and reply.committed_size == len(data) and hashlib.sha256(got).hexdigest() == digest,
          f"cut {cut} at 25 of 40 MiB, {committed >> 20} MiB kept, the rest sent through the balancer")
    replicas[0].start()

    # A plain upload through the balancer replaces the file; every replica
    # serves the new one.
    newer = os.urandom(3 << 20)
    upload = f_grpc.FilesServiceStub(balancer).Upload(iter([
        f.UploadRequest(header=f.UploadHeader(name=name)),
        f.UploadRequest(chunk=newer[:2 << 20]),
        f.UploadRequest(chunk=newer[2 << 20:]),
    ]), timeout=60).file
    same = [hashlib.sha256(download(ch, name)).digest() == hashlib.sha256(newer).digest() for ch in via]
    check("files: a replacement uploaded through the balancer is what every replica serves",
          upload.size == len(newer) and all(same), f"{same}")


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--work", required=True)
    args.add_argument("--database", required=True)
    args.add_argument("--replicas", nargs=3, required=True)
    args.add_argument("--balancer", required=True)
    args.add_argument("--files", required=True)
    opts = args.parse_args()
    replicas = [Replica(i, port, opts.work, opts.database, opts.files) for i, port in enumerate(opts.replicas)]
    try:
        for r in replicas:
            r.start()
        balancer = grpc.insecure_channel(opts.balancer)
        market(replicas, balancer)
        positions(replicas, balancer)
        files(replicas, balancer)
        made = [r.data for r in replicas if os.path.exists(r.data)]
        check("replicas with both stores shared keep nothing in a data directory", not made, f"made: {made}")
    finally:
        for r in replicas:
            r.stop()
    if FAILED:
        for r in replicas:
            with open(r.log, errors="replace") as log:
                print(f"--- replica {r.index}, the end of its log:", *log.readlines()[-15:], sep="", file=sys.stderr)
        print(f"scenario: {len(FAILED)} failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
