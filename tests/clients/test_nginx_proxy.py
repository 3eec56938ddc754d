"""wsreactor behind a real nginx with the usual WebSocket proxy configuration (the block
docs/operations.md#behind-nginx shows): the demo page, echo and a chat room, all through
the proxy.

nginx runs as a child of this test from a config in a temporary directory, with every
path it writes (pid, logs, temp files) inside that directory, and is killed in the
fixture's teardown whatever happened.
"""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import IO_TIMEOUT, client, recv, unique

# The location block is docs/operations.md#behind-nginx's configuration, word for word.
NGINX_CONF = """\
daemon off;
# One process, so the test can stop nginx by the one PID it started.
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


def nginx_binary():
    found = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        pytest.fail("nginx is not installed (Debian: apt-get install nginx)")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, log_path, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen on {port} in {timeout}s:\n{Path(log_path).read_text()}")


@pytest.fixture
def proxy(server, tmp_path):
    """nginx on a free loopback port, proxying everything to `server`; yields its port."""
    binary = nginx_binary()
    # A port picked here may be taken by someone else before nginx binds it: try again.
    for _ in range(5):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp_path, port=port, upstream=server.port))
        log_path = tmp_path / "stderr.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [binary, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            if wait_listening(proc, port, log_path):
                break
            proc.wait(timeout=10)
            if "Address already in use" not in (tmp_path / "error.log").read_text():
                pytest.fail(f"nginx exited with {proc.returncode}:\n{log_path.read_text()}"
                            f"\n{(tmp_path / 'error.log').read_text()}")
        except BaseException:
            proc.kill()
            proc.wait(timeout=10)
            raise
    else:
        pytest.fail("no free port for nginx after 5 tries")
    try:
        yield port
        assert proc.poll() is None, f"nginx exited:\n{(tmp_path / 'error.log').read_text()}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_demo_page_and_stats_come_through_the_proxy(proxy):
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy}/", timeout=IO_TIMEOUT) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b"<title>wsreactor" in resp.read()
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy}/stats", timeout=IO_TIMEOUT) as resp:
        assert resp.status == 200
        assert isinstance(json.load(resp), dict)


def test_echo_through_the_proxy(proxy):
    with client(f"ws://127.0.0.1:{proxy}/echo", ping_interval=None) as ws:
        ws.send("through nginx κόσμε")
        assert recv(ws, "echo through nginx") == "through nginx κόσμε"
        payload = os.urandom(1 << 20)
        ws.send(payload)
        assert recv(ws, "1 MiB echo through nginx", timeout=60) == payload
        assert ws.ping(b"proxied ping").wait(IO_TIMEOUT), "no pong through the proxy"
        ws.close(1000, "bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=IO_TIMEOUT)
    # nginx passes frames through, so the Close reply is wsreactor's own.
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_chat_through_the_proxy(proxy):
    room = unique("proxied-room")
    url = f"ws://127.0.0.1:{proxy}/chat?room={room}"
    with client(url) as a, client(url) as b:
        message = unique("hello through nginx")
        a.send(message)
        assert recv(b, "message in another member of the room") == message
        assert recv(a, "message back in the sender (a member too)") == message
