"""Shared fixtures for the Python client tests: the real wsreactor binary on an ephemeral
loopback port, and Python `websockets` clients that never wait without a timeout.

The binary is $WSREACTOR_BIN, else target/release/wsreactor (scripts/clients.sh builds it
and sets the variable). Every process a fixture starts is killed in its teardown, which
pytest runs whether the test passed or failed.
"""

import os
import queue
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30  # seconds for the server to print `listening on ADDR`
IO_TIMEOUT = 10  # seconds for any one receive, ping or handshake


def binary_path():
    path = Path(os.environ.get("WSREACTOR_BIN", REPO / "target/release/wsreactor"))
    if not path.is_file():
        pytest.fail(f"no wsreactor binary at {path}: run `cargo build --release` or set WSREACTOR_BIN")
    return path


class Server:
    """A running `wsreactor serve`; `stop()` kills and reaps it."""

    def __init__(self, args=()):
        self.log = []
        self.proc = subprocess.Popen(
            [str(binary_path()), "serve", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": "info"},
        )
        found = queue.Queue()
        # Drain stderr for the server's whole life so it never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(found,), daemon=True).start()
        try:
            self.addr = found.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.stop()
            pytest.fail(f"wsreactor printed no `listening on` line:\n{self.log_text()}")
        host, _, port = self.addr.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0, self.addr
        self.port = int(port)

    def _drain(self, found):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            if "listening on " in line:
                found.put(line.split("listening on ", 1)[1].split()[0])

    def url(self, path="/echo"):
        return f"ws://{self.addr}{path}"

    def log_text(self):
        return "\n".join(self.log[-50:])

    def assert_running(self):
        code = self.proc.poll()
        assert code is None, f"wsreactor exited with {code}:\n{self.log_text()}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def server():
    srv = Server()
    try:
        yield srv
        # Whatever a test did, the server must have survived it.
        srv.assert_running()
    finally:
        srv.stop()


def client(url, **kwargs):
    """A `websockets` client with bounded waits. proxy=None: loopback is always direct,
    whatever *_proxy variables the environment has. Everything else is the library's
    default, including its permessage-deflate offer, which wsreactor must decline."""
    options = dict(
        open_timeout=IO_TIMEOUT,
        close_timeout=IO_TIMEOUT,
        max_size=4 * 2**20,
        proxy=None,
    )
    options.update(kwargs)
    return connect(url, **options)


def recv(ws, what="a message", timeout=IO_TIMEOUT):
    """The next message; fails the test, naming `what`, if none arrives in time."""
    try:
        return ws.recv(timeout=timeout)
    except TimeoutError:
        pytest.fail(f"no {what} within {timeout} s")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"

