"""Starts the real dataport binary and hands its address to the tests.

The server picks its own port (`--listen 127.0.0.1:0`) and announces it in a
JSON log line on stdout; we wait for that line rather than for a guessed
amount of time. Threads keep draining stdout and stderr for the server's
whole life, so it never blocks on a full pipe, and the last lines are kept
for the failure message when it misbehaves. The call lines (one per finished
call: method, status code, message, peer) are kept whole, so a test can see
how the server itself ended a call.
"""

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import grpc
import pytest

from interop import GEN_DIR, REPO_ROOT, AioApi, SyncApi

if not (GEN_DIR / "helloworld_pb2.py").exists():
    raise pytest.UsageError(f"no generated stubs in {GEN_DIR}: start the suite with tests/interop/python/run")
# The stubs import each other as top-level modules (helloworld_pb2,
# dataport.position.v1.position_pb2), as the seed clients' did.
sys.path.insert(0, str(GEN_DIR))

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0


class DataportServer:
    """One `dataport serve` process on a loopback port of its choosing."""

    def __init__(self, binary, data_dir, extra_args=(), keep_output=False):
        self.binary = binary
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        # Every line of stdout and stderr, when asked for (the auth tests
        # look for secrets in it); otherwise only the last ones are kept.
        self.everything = [] if keep_output else None
        self.addr = None
        self.listening = {}
        self.process = None
        self._recent = collections.deque(maxlen=200)
        self._stdout_lines = queue.Queue()
        self._announced = threading.Event()
        self._drains = []
        self._calls = []
        self._calls_changed = threading.Condition()

    def start(self):
        argv = [
            str(self.binary),
            "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            "--log-format", "json",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._drain(self.process.stdout, "stdout", forward=True)
        self._drain(self.process.stderr, "stderr", forward=False)
        self.addr = self._wait_for_listening()
        return self

    def _drain(self, pipe, name, forward):
        def run():
            for line in pipe:
                self._recent.append(f"[{name}] {line.rstrip()}")
                if self.everything is not None:
                    self.everything.append(line)
                if forward and not self._announced.is_set():
                    self._stdout_lines.put(line)
                if forward and '"dataport::call"' in line:
                    self._record_call(line)
            pipe.close()
            if forward:
                self._stdout_lines.put(None)  # end of stdout

        thread = threading.Thread(target=run, name=f"dataport-{name}", daemon=True)
        thread.start()
        self._drains.append(thread)

    def _wait_for_listening(self):
        """Reads stdout until the line whose fields.message is "listening"."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                line = self._stdout_lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                pytest.fail(f"dataport did not announce its address within {STARTUP_TIMEOUT_S}s\n{self.output()}")
            if line is None:
                code = self.process.wait()
                pytest.fail(f"dataport exited with {code} before announcing its address\n{self.output()}")
            try:
                record = json.loads(line)
            except ValueError:
                continue
            fields = record.get("fields", {}) if isinstance(record, dict) else {}
            if fields.get("message") == "listening":
                self._announced.set()
                # Every address the line gives (health_listen, metrics_listen).
                self.listening = fields
                return str(fields["addr"])

    def _record_call(self, line):
        try:
            fields = json.loads(line)["fields"]
        except (ValueError, KeyError, TypeError):
            return
        with self._calls_changed:
            self._calls.append(fields)
            self._calls_changed.notify_all()

    def mark(self):
        """A point in the call log: `calls_since` answers the calls whose
        lines were written after it."""
        with self._calls_changed:
            return len(self._calls)

    def calls_since(self, mark, until=lambda calls: True, timeout=10.0):
        """The call lines (dicts with method, code, message, peer, ...) written
        after `mark`, once `until(lines)` holds; lines are written in batches
        (every 100 ms), so this waits for them. Fails after `timeout`."""
        with self._calls_changed:
            done = self._calls_changed.wait_for(lambda: until(self._calls[mark:]), timeout=timeout)
            calls = list(self._calls[mark:])
        if not done:
            pytest.fail(f"the server's call log never showed what was awaited; lines since: {calls}")
        return calls

    def peer_of(self, channel):
        """The address the server logs `channel`'s calls with (a channel of
        its own connection: `own_channel`), found by a health check for a
        service of a unique name, whose NOT_FOUND line names it. That answer
        also means the server has read every message sent on the channel
        before it: HTTP/2 frames on one connection arrive in order."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        probe = f"probe-{uuid.uuid4().hex}"
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=probe), timeout=10.0)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
        else:
            pytest.fail(f"a health check of {probe} answered")
        calls = self.calls_since(0, lambda cs: any(probe in c.get("message", "") for c in cs))
        return next(c["peer"] for c in calls if probe in c.get("message", ""))

    def ended(self, peer, method, timeout=10.0):
        """The code of the call to `method` from `peer`, once its line is
        there (the server writes it when the call ends, in batches every
        100 ms: CANCELLED for a call the client cancelled)."""

        def mine(cs):
            return [c for c in cs if c.get("method") == method and c.get("peer") == peer]

        return mine(self.calls_since(0, lambda cs: bool(mine(cs)), timeout=timeout))[0]["code"]

    def cancel_mid_stream(self, start, method, messages):
        """Starts a client-streaming call to `method` on a channel of its own
        (`start(channel, requests)` answers the call's future), sends
        `messages` and holds the stream open, cancels the call once the
        server has read them (grpcio resets the stream: RST_STREAM CANCEL),
        and answers the code the server logged for the call."""
        sent, release = threading.Event(), threading.Event()

        def requests():
            yield from messages
            sent.set()
            release.wait(10.0)  # the stream stays open until the call is cancelled

        with own_channel(self.addr) as ch:
            future = start(ch, requests())
            try:
                assert sent.wait(10.0), f"grpcio never sent the messages of {method}"
                peer = self.peer_of(ch)  # and the server holds them, uncommitted
                future.cancel()
                with pytest.raises(grpc.FutureCancelledError):
                    future.result()
            finally:
                release.set()
        return self.ended(peer, method)

    def stop(self):
        """SIGTERM, then the exit status; asserts a clean exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"dataport was still running {SHUTDOWN_TIMEOUT_S}s after SIGTERM\n{self.output()}")
        for thread in self._drains:
            thread.join(timeout=5)
        assert code == 0, f"dataport exited with {code} after SIGTERM\n{self.output()}"

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def output(self):
        return "\n".join(self._recent)


@pytest.fixture(scope="session")
def dataport_bin():
    binary = os.environ.get("DATAPORT_BIN") or str(REPO_ROOT / "target/release/dataport")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no executable dataport at {binary}: set DATAPORT_BIN or run tests/interop/python/run")
    return binary


@pytest.fixture(scope="session")
def server(dataport_bin, tmp_path_factory):
    """The server the whole session shares."""
    srv = DataportServer(dataport_bin, tmp_path_factory.mktemp("data")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fresh_server(dataport_bin, tmp_path_factory):
    """A server of the test's own, for state nobody else may have touched."""
    srv = DataportServer(dataport_bin, tmp_path_factory.mktemp("fresh-data")).start()
    try:
        yield srv
    finally:
        srv.stop()


def open_channel(addr):
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=STARTUP_TIMEOUT_S)
    return channel


def own_channel(addr):
    """A channel on a connection of its own (grpcio shares connections
    between channels to one address unless told not to), so that the
    server's call log tells its calls apart by peer address."""
    channel = grpc.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(channel).result(timeout=STARTUP_TIMEOUT_S)
    return channel


@pytest.fixture(scope="session")
def channel(server):
    with open_channel(server.addr) as ch:
        yield ch


@pytest.fixture(params=["sync", "aio"])
def api(request, server):
    """The same calls through grpcio's synchronous API or through grpc.aio:
    `api.stub(GreeterStub).SayHello(request)` completes the call either way
    (see interop.SyncApi and interop.AioApi)."""
    if request.param == "sync":
        yield SyncApi(request.getfixturevalue("channel"))
    else:
        aio = AioApi(server.addr)
        try:
            yield aio
        finally:
            aio.close()


@pytest.fixture
def fresh_channel(fresh_server):
    with open_channel(fresh_server.addr) as ch:
        yield ch


@pytest.fixture
def start_server(dataport_bin, tmp_path_factory):
    """Starts servers of the test's own with extra `serve` flags:
    `start_server("--max-file-size", "1MiB")`. Each has a fresh data dir
    and is stopped, cleanly, after the test."""
    started = []

    def start(*args):
        srv = DataportServer(dataport_bin, tmp_path_factory.mktemp("args-data"), extra_args=args).start()
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def servers_on_one_data_dir(dataport_bin, tmp_path_factory):
    """Starts servers one after another on one data dir of the test's own,
    as a restart does: `start()` gives a running server (`.data_dir`,
    `.kill()` for SIGKILL); start the next once the last is gone. Those still
    running after the test are stopped cleanly."""
    data_dir = tmp_path_factory.mktemp("restart-data")
    started = []

    def start():
        srv = DataportServer(dataport_bin, data_dir).start()
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            if srv.process.poll() is None:
                srv.stop()
