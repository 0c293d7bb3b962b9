"""Starts the real dataport binary for the tests and hands them a Client.

The server picks its own port (`--listen 127.0.0.1:0`) and announces it in
a JSON log line on stdout; the fixture waits for that line, never for a
guessed time. Threads drain stdout and stderr for the server's whole life
and keep the last lines for the failure message.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dataport_client

REPO_ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0


class DataportServer:
    """One `dataport serve` on a loopback port of its choosing."""

    def __init__(self, binary: str, data_dir: Path, args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.addr = ""
        self._recent: collections.deque[str] = collections.deque(maxlen=200)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._announced = threading.Event()
        argv = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--log-format", "json", *args]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
        )
        self._drains = [self._drain(self.process.stdout, "stdout"), self._drain(self.process.stderr, "stderr")]
        self.addr = self._wait_for_listening()

    def _drain(self, pipe: object, name: str) -> threading.Thread:
        def run() -> None:
            for line in pipe:  # type: ignore[attr-defined]
                self._recent.append(f"[{name}] {line.rstrip()}")
                if name == "stdout" and not self._announced.is_set():
                    self._lines.put(line)
            if name == "stdout":
                self._lines.put(None)

        thread = threading.Thread(target=run, name=f"dataport-{name}", daemon=True)
        thread.start()
        return thread

    def _wait_for_listening(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"dataport did not announce its address within {STARTUP_TIMEOUT_S}s\n{self.output()}")
            if line is None:
                code = self.process.wait()
                pytest.fail(f"dataport exited with {code} before announcing its address\n{self.output()}")
            try:
                fields = json.loads(line).get("fields", {})
            except (ValueError, AttributeError):
                continue
            if fields.get("message") == "listening":
                self._announced.set()
                return str(fields["addr"])

    def stop(self) -> None:
        """SIGTERM; asserts a clean exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"dataport was still running {SHUTDOWN_TIMEOUT_S}s after SIGTERM\n{self.output()}")
        for thread in self._drains:
            thread.join(timeout=5)
        assert code == 0, f"dataport exited with {code} after SIGTERM\n{self.output()}"

    def output(self) -> str:
        return "\n".join(self._recent)


@pytest.fixture(scope="session")
def dataport_bin() -> str:
    binary = os.environ.get("DATAPORT_BIN") or str(REPO_ROOT / "target/release/dataport")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no executable dataport at {binary}: set DATAPORT_BIN or start the tests with clients/python/run")
    return binary


@pytest.fixture(scope="session")
def server(dataport_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataportServer]:
    srv = DataportServer(dataport_bin, tmp_path_factory.mktemp("data"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def client(server: DataportServer) -> Iterator[dataport_client.Client]:
    # A deadline on every unary call, so a server that never answers fails
    # one test instead of hanging the run.
    with dataport_client.Client(server.addr, timeout=10.0) as c:
        c.wait_ready(timeout=STARTUP_TIMEOUT_S)
        yield c
