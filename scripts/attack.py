#!/usr/bin/env python3
"""The attack probe's clients: measures how a running wsreactor holds up against two
denial-of-service patterns, and prints what it saw. Driven by scripts/attack.sh, which
starts the server; this only attacks and measures it (a measurement, not a test: it exits
nonzero only on its own errors). Targets 127.0.0.0/8 only. Stdlib only.

    attack.py slots --addr 127.0.0.1:PORT --server-pid PID [--reconnect] [options]
    attack.py flood --addr 127.0.0.1:PORT --server-pid PID [options]

slots: a slowloris that takes every descriptor slot. First K established WebSocket
  echo connections from 127.0.0.1 (handshake and one echo each; they answer the server's
  Pings meanwhile, as a real client does). Then attacker processes (each under its own
  descriptor limit) open, from 127.0.0.2, 127.0.0.3, ..., the server's RLIMIT_NOFILE plus
  a surplus of TCP connections that each send half a request head and stall. With
  --reconnect, an attacker connection the server closes (408, 503, reset) is opened
  again at once, at a bounded total rate. Once the fill is done, newcomers from 127.0.0.1
  try the WebSocket handshake, spread over a window: the time from connect() to the full
  response head, and the status (or timeout / reset / eof); one newcomer asks GET /stats.
  Then the established connections must still echo; the server's shedding counters last.

flood: memory after floods of half-sent messages. Per flood, N clients do the handshake,
  send a masked binary frame header declaring a D-byte payload (FIN, opcode 2, 64-bit
  length) and S bytes of it, then stall without reading. The payload bytes are random,
  so they stand for the masked form of some payload under each client's random key
  (the server unmasks whatever comes; nothing checks what it unmasks to). Sending is
  nonblocking, through one selector, in 1 MiB writes. VmRSS of the server is sampled every
  100 ms. Once every client has sent and the server has read it all (its bytes_in_total),
  or the send window ends, all close; after a settle time the RSS and /stats are read
  again.
"""

import argparse
import base64
import collections
import ctypes
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import statistics
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HALF_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n"
# IP_BIND_ADDRESS_NO_PORT (Linux 4.2, not named by Python before 3.12): the port of a
# bound socket is picked at connect(), per (source, destination), so binding many
# sockets to one source address does not use up its ports.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
MIB = 1024 * 1024


def log(*parts):
    print(*parts, flush=True)


# --- small helpers --------------------------------------------------------------------


def parse_addr(text):
    host, _, port = text.rpartition(":")
    if not host.startswith("127."):
        sys.exit(f"attack.py: {text} is not on loopback (127.0.0.0/8 only)")
    return host, int(port)


def vmrss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def nofile_limit(pid):
    """The process's RLIMIT_NOFILE soft limit, from /proc/PID/limits."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise RuntimeError(f"no open-files limit for pid {pid}")


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def get_stats(addr, timeout=5.0):
    """GET /stats: (status, seconds, parsed JSON or None); status is a string, as for
    newcomers ('200', '503', 'timeout', ...)."""
    t0 = time.monotonic()
    try:
        conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
        conn.request("GET", "/stats")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        data = None
        if resp.status == 200:
            data = json.loads(body)
        return str(resp.status), time.monotonic() - t0, data
    except socket.timeout:
        return "timeout", time.monotonic() - t0, None
    except ConnectionResetError:
        return "reset", time.monotonic() - t0, None
    except (http.client.RemoteDisconnected, http.client.BadStatusLine):
        return "eof", time.monotonic() - t0, None
    except OSError as e:
        return type(e).__name__, time.monotonic() - t0, None


def stats_retry(addr, seconds):
    """/stats, retried for up to `seconds` until it answers 200."""
    end = time.monotonic() + seconds
    while True:
        status, took, data = get_stats(addr, timeout=max(0.5, min(5.0, end - time.monotonic())))
        if data is not None or time.monotonic() >= end:
            return status, took, data
        time.sleep(0.2)


def upgrade_request(host, port, path="/"):
    key = base64.b64encode(os.urandom(16)).decode()
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    return req.encode(), accept


def read_head(sock, deadline):
    """Reads up to the end of a response head. Returns (status, head, rest); status is
    the status code, or 'timeout', 'reset', 'eof' (closed before a whole head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", buf, b""
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "timeout", buf, b""
        except ConnectionResetError:
            return "reset", buf, b""
        if not chunk:
            return "eof", buf, b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].split()
    status = line[1].decode() if len(line) > 1 and line[0].startswith(b"HTTP/") else "garbage"
    return status, head, rest


def client_frame(opcode, payload):
    """One masked, final client frame (small payloads: the mask is applied in Python)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def parse_frame(buf):
    """(opcode, payload, consumed) of the first whole server frame in buf, or None."""
    if len(buf) < 2:
        return None
    opcode, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack("!Q", buf[2:10])[0], 10
    if buf[1] & 0x80:  # a masked server frame is a protocol error; skip its key anyway
        off += 4
    if len(buf) < off + n:
        return None
    return opcode, buf[off : off + n], off + n


# --- slots: the established connections -----------------------------------------------


class Established:
    """A WebSocket echo connection from 127.0.0.1 that must survive the attack."""

    def __init__(self, addr, timeout=10.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        req, accept = upgrade_request(*addr)
        self.sock.sendall(req)
        status, head, self.buf = read_head(self.sock, time.monotonic() + timeout)
        if status != "101" or accept.encode() not in head:
            raise RuntimeError(f"established connection: handshake got {status}")
        self.dropped = None  # why it was lost, once it is
        self.pings = 0
        if not self.echo(b"hello before the attack", timeout):
            raise RuntimeError(f"established connection: first echo failed ({self.dropped})")
        self.dropped = None

    def pump(self):
        """Reads what is there (the socket is readable): answers Pings, notes a Close or
        the end. Returns False once the connection is lost."""
        try:
            chunk = self.sock.recv(65536)
        except (BlockingIOError, socket.timeout):
            return True
        except OSError as e:
            self.dropped = type(e).__name__
            return False
        if not chunk:
            self.dropped = "eof"
            return False
        self.buf += chunk
        return self._frames(None) is None

    def _frames(self, want):
        """Handles the whole frames buffered; returns the payload of a text frame equal
        to `want` when one comes, 'lost' on a Close, None otherwise."""
        while (f := parse_frame(self.buf)) is not None:
            opcode, payload, used = f
            self.buf = self.buf[used:]
            if opcode == 0x9:
                self.pings += 1
                self.sock.sendall(client_frame(0xA, payload))
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.dropped = f"close {code}"
                return "lost"
            elif opcode == 0x1 and payload == want:
                return payload
        return None

    def echo(self, text, timeout):
        """Sends text and waits for its echo. True when it came back."""
        deadline = time.monotonic() + timeout
        try:
            self.sock.sendall(client_frame(0x1, text))
            while True:
                got = self._frames(text)
                if got == "lost":
                    return False
                if got is not None:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    self.dropped = "echo timeout"
                    return False
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.dropped = "eof"
                    return False
                self.buf += chunk
        except socket.timeout:
            self.dropped = "echo timeout"
        except OSError as e:
            self.dropped = type(e).__name__
        return False


def keep_alive(conns, stop):
    """Until stop is set: answers the server's Pings on the established connections."""
    sel = selectors.DefaultSelector()
    for c in conns:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.1):
            if not key.data.pump():
                sel.unregister(key.fileobj)
    sel.close()
    for c in conns:
        c.sock.setblocking(True)


# --- slots: the attackers -------------------------------------------------------------


def source_address(index, per_address):
    """127.0.0.2, 127.0.0.3, ...: per_address connections each (never 127.0.0.1)."""
    n = 2 + index // per_address
    if n > 0xFFFF:
        raise ValueError("too many attacker connections for 127.0.x.y sources")
    return f"127.0.{n >> 8}.{n & 0xFF}"


def attacker(worker, first, count, addr, args, pipe):
    """One attacker process: `count` stalled half-head connections (global indexes
    first..first+count), reopened when closed if args.reconnect, until told to stop.
    Reports its counters through pipe every 0.2 s and once at the end."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the probe
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_nofile()
    procs = max(1, args.procs)
    fill_rate, rate = args.fill_rate / procs, args.rate / procs
    sel = selectors.DefaultSelector()
    counts = {
        "worker": worker, "started": 0, "initial_pending": 0,
        "connecting": 0, "held": 0, "connect_errors": 0, "reconnects": 0,
        "closed": {}, "first_408": None,
    }
    todo = collections.deque()  # global indexes waiting to be (re)opened
    next_initial = first
    fill_tokens = rate_tokens = 0.0
    last = last_report = time.monotonic()

    def closed(index, why, initial):
        counts["closed"][why] = counts["closed"].get(why, 0) + 1
        if why == "408" and counts["first_408"] is None:
            counts["first_408"] = time.time()
        if initial:
            counts["initial_pending"] -= 1
        if args.reconnect:
            todo.append(index)

    def open_one(index, initial):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source_address(index, args.per_address), 0))
        s.setblocking(False)
        counts["started"] += 1
        if initial:
            counts["initial_pending"] += 1
        else:
            counts["reconnects"] += 1
        err = s.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            s.close()
            counts["connect_errors"] += 1
            closed(index, f"connect errno {err}", initial)
            return
        counts["connecting"] += 1
        sel.register(s, selectors.EVENT_WRITE, [index, initial, "connecting"])

    stopping = False
    while not stopping:
        now = time.monotonic()
        dt, last = now - last, now
        fill_tokens = min(fill_tokens + fill_rate * dt, max(1.0, fill_rate * 0.02))
        # Reconnect bursts up to 0.1 s worth: a slow turn of this loop does not lose rate.
        rate_tokens = min(rate_tokens + rate * dt, max(1.0, rate * 0.1))
        while next_initial < first + count and fill_tokens >= 1:
            fill_tokens -= 1
            open_one(next_initial, True)
            next_initial += 1
        while todo and rate_tokens >= 1:
            rate_tokens -= 1
            open_one(todo.popleft(), False)
        busy = next_initial < first + count or todo
        for key, _ in sel.select(timeout=0.005 if busy else 0.05):
            s, state = key.fileobj, key.data
            index, initial, phase = state
            if phase == "connecting":
                counts["connecting"] -= 1
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    try:
                        s.send(HALF_HEAD)
                    except OSError:
                        err = -1
                if err != 0:
                    sel.unregister(s)
                    s.close()
                    counts["connect_errors"] += 1
                    closed(index, "connect failed", initial)
                    continue
                state[2] = "held"
                counts["held"] += 1
                if initial:
                    counts["initial_pending"] -= 1
                    state[1] = initial = False
                sel.modify(s, selectors.EVENT_READ, state)
            else:
                try:
                    data = s.recv(4096)
                    why = data[9:12].decode(errors="replace") if data.startswith(b"HTTP/") else (
                        "eof" if not data else "data")
                except ConnectionResetError:
                    why = "reset"
                except OSError as e:
                    why = type(e).__name__
                sel.unregister(s)
                s.close()
                counts["held"] -= 1
                closed(index, why, False)
        if pipe.poll():
            stopping = pipe.recv() == "stop"
        if stopping or now - last_report >= 0.2:
            last_report = now
            pipe.send(dict(counts, closed=dict(counts["closed"]), pending_initial=first + count - next_initial))
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    pipe.close()


class Fleet:
    """The attacker processes and their latest counters."""

    def __init__(self, total, addr, args):
        self.procs = []
        self.status = {}
        ctx = multiprocessing.get_context("fork")
        per = math.ceil(total / args.procs)
        first = 0
        for w in range(args.procs):
            n = min(per, total - first)
            parent, child = ctx.Pipe()
            p = ctx.Process(target=attacker, args=(w, first, n, addr, args, child), daemon=True)
            p.start()
            child.close()
            self.procs.append((p, parent))
            first += n

    def poll(self):
        for p, pipe in self.procs:
            try:
                while pipe.poll():
                    st = pipe.recv()
                    self.status[st["worker"]] = st
            except (EOFError, OSError):
                pass

    def total(self, field):
        return sum(st[field] for st in self.status.values())

    def closed(self):
        out = {}
        for st in self.status.values():
            for k, v in st["closed"].items():
                out[k] = out.get(k, 0) + v
        return out

    def first_408(self):
        times = [st["first_408"] for st in self.status.values() if st["first_408"]]
        return min(times) if times else None

    def filled(self):
        return len(self.status) == len(self.procs) and all(
            st["pending_initial"] == 0 and st["initial_pending"] == 0 for st in self.status.values())

    def stop(self):
        for _, pipe in self.procs:
            try:
                pipe.send("stop")
            except OSError:
                pass
        end = time.monotonic() + 10
        for p, _ in self.procs:
            p.join(max(0.1, end - time.monotonic()))
        self.poll()
        for p, _ in self.procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
                p.join()


def newcomer(addr, timeout, path="/", upgrade=True):
    """One client from 127.0.0.1: (outcome, seconds from connect() to the whole
    response head or to the failure)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = socket.create_connection(addr, timeout=timeout)
    except socket.timeout:
        return "connect timeout", time.monotonic() - t0
    except OSError as e:
        return type(e).__name__, time.monotonic() - t0
    with s:
        if upgrade:
            req, _ = upgrade_request(*addr, path)
        else:
            req = f"GET {path} HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n\r\n".encode()
        try:
            s.sendall(req)
        except OSError as e:
            return type(e).__name__, time.monotonic() - t0
        status, _, _ = read_head(s, deadline)
        return status, time.monotonic() - t0


SHED_FIELDS = ("connections", "websockets", "accepted_total", "handshakes_total",
               "accept_emfile_total", "shed_total", "memory_shed_total", "timeouts_total",
               "handshake_failures", "closes_by_code")


def run_slots(args):
    addr = parse_addr(args.addr)
    limit = nofile_limit(args.server_pid)
    total = limit + args.surplus
    args.procs = args.procs or math.ceil(total / args.per_proc)
    mode = "reconnecting" if args.reconnect else "one-shot"
    log(f"== slots ({mode}): server pid {args.server_pid} on {args.addr}, RLIMIT_NOFILE {limit}, "
        f"{open_fds(args.server_pid)} descriptors open")
    log(f"   attackers: {total} connections ({limit} + {args.surplus} surplus) in {args.procs} "
        f"processes, from {source_address(0, args.per_address)}..{source_address(total - 1, args.per_address)}, "
        f"half a head each ({HALF_HEAD!r}); fill at {args.fill_rate}/s"
        + (f", reopened when closed at {args.rate}/s in all" if args.reconnect else ""))

    est = [Established(addr) for _ in range(args.established)]
    log(f"   established: {len(est)} WebSocket echo connections from 127.0.0.1 (handshake and one echo each)")
    stop_keep = threading.Event()
    keeper = threading.Thread(target=keep_alive, args=(est, stop_keep), daemon=True)
    keeper.start()

    t_start, wall_start = time.monotonic(), time.time()
    fleet = Fleet(total, addr, args)
    try:
        while True:
            fleet.poll()
            if fleet.filled() or time.monotonic() - t_start > args.fill_timeout:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # the server's turn to accept the last ones (and shed the surplus)
        fleet.poll()
        t_full = time.monotonic()
        log(f"   fill: {'done' if fleet.filled() else 'NOT done (fill timeout)'} at t={t_full - t_start:.1f} s "
            "(t: seconds since the attack began): "
            f"{fleet.total('held')} held, {fleet.total('connecting')} still connecting, closed so far "
            f"{fleet.closed() or '{}'}; server descriptors {open_fds(args.server_pid)}/{limit}")

        results = [None] * args.newcomers
        step = args.spread / max(1, args.newcomers - 1)

        def run_newcomer(i):
            time.sleep(max(0.0, t_full + i * step - time.monotonic()))
            fds, held = open_fds(args.server_pid), fleet.total("held")
            at = time.monotonic() - t_start
            results[i] = (at, fds, held) + newcomer(addr, args.timeout)

        stats_result = []

        def run_stats():
            time.sleep(max(0.0, t_full + args.spread / 2 + step / 2 - time.monotonic()))
            at = time.monotonic() - t_start
            stats_result.append((at,) + newcomer(addr, args.timeout, "/stats", upgrade=False))

        reconnects0 = fleet.total("reconnects")
        threads = [threading.Thread(target=run_newcomer, args=(i,), daemon=True)
                   for i in range(args.newcomers)]
        threads.append(threading.Thread(target=run_stats, daemon=True))
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            fleet.poll()  # keeps the attackers' pipes drained and the held counts fresh
            time.sleep(0.1)

        fleet.poll()
        window = time.monotonic() - t_full
        if args.reconnect:
            n = fleet.total("reconnects") - reconnects0
            log(f"   attackers reconnected {n} times in the {window:.1f} s since the fill ({n / window:.0f}/s)")
        log(f"   newcomers from 127.0.0.1 (WebSocket handshake, {args.timeout:.0f} s timeout), "
            "each with the server's descriptors and the attackers' held connections as it began:")
        for i, (at, fds, held, outcome, took) in enumerate(results):
            log(f"     #{i + 1:<2} t={at:5.1f} s  {outcome:<16} in {took * 1000:8.1f} ms"
                f"   (server descriptors {fds}, attackers holding {held})")
        times = [r[4] * 1000 for r in results]
        outcomes = {}
        for r in results:
            outcomes[r[3]] = outcomes.get(r[3], 0) + 1
        log(f"   newcomers: min {min(times):.1f} / median {statistics.median(times):.1f} / "
            f"max {max(times):.1f} ms; outcomes {outcomes}")
        at, outcome, took = stats_result[0]
        log(f"   GET /stats newcomer at t={at:.1f} s: {outcome} in {took * 1000:.1f} ms")
        first_408 = fleet.first_408()
        log(f"   attackers: first 408 at t={first_408 - wall_start:.1f} s" if first_408
            else "   attackers: no 408 seen")

        stop_keep.set()
        keeper.join()
        ok = sum(1 for c in est if c.dropped is None and c.echo(b"hello after the attack", 5.0))
        reasons = {}
        for c in est:
            if c.dropped is not None:
                reasons[c.dropped] = reasons.get(c.dropped, 0) + 1
        log(f"   established: {ok}/{len(est)} still echo, {len(est) - ok} dropped {reasons or ''}"
            f" ({sum(c.pings for c in est)} server Pings answered)")
    finally:
        fleet.stop()
    log(f"   attackers at the end: {fleet.total('started')} connects ({fleet.total('reconnects')} "
        f"reconnects), {fleet.total('held')} still held, closed by the server: {fleet.closed()}")
    for c in est:
        c.sock.close()
    status, took, data = stats_retry(addr, 10)
    if data is None:
        log(f"   /stats after the attack: unreachable ({status})")
    else:
        log("   /stats after the attack: " + ", ".join(
            f"{k} {json.dumps(data[k])}" for k in SHED_FIELDS if k in data))


# --- flood ----------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples the server's VmRSS every interval; keeps the peak."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, vmrss_bytes(self.pid))
            except OSError:
                return
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def flood_once(addr, args, payload):
    """One flood. Returns a dict of what it measured."""
    pid = args.server_pid
    _, _, st0 = stats_retry(addr, 5)
    rss0 = vmrss_bytes(pid)
    sampler = RssSampler(pid)
    sampler.start()
    t0 = time.monotonic()
    clients, refused = [], {}
    for _ in range(args.clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        req, accept = upgrade_request(*addr)
        try:
            s.settimeout(10)
            s.connect(addr)
            s.sendall(req)
            status, head, _ = read_head(s, time.monotonic() + 10)
            if status == "101" and accept.encode() not in head:
                status = "101 with a wrong accept key"
        except OSError as e:
            status = type(e).__name__
        if status != "101":
            refused[status] = refused.get(status, 0) + 1
            s.close()
            continue
        s.setblocking(False)
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, args.declare) + os.urandom(4)
        clients.append({"sock": s, "header": header, "sent": 0, "state": "sending"})
    t_hs = time.monotonic() - t0
    total_len = 14 + args.send
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c["sock"], selectors.EVENT_WRITE, c)
    deadline = time.monotonic() + args.send_window
    view = memoryview(payload)
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            try:
                while c["sent"] < total_len:
                    if c["sent"] < 14:
                        n = c["sock"].send(c["header"][c["sent"]:])
                    else:
                        off = c["sent"] - 14
                        n = c["sock"].send(view[off : off + min(MIB, args.send - off)])
                    c["sent"] += n
            except BlockingIOError:
                continue
            except OSError as e:
                c["state"] = f"send {type(e).__name__}"
                sel.unregister(c["sock"])
                continue
            c["state"] = "sent"
            sel.unregister(c["sock"])
    sel.close()
    t_sent = time.monotonic() - t0
    # "Sent" is into the kernel's buffers: before closing, wait (within the same window)
    # until the server has read it all, by its bytes_in_total, so it holds the flood.
    want = (st0 or {}).get("bytes_in_total", 0) + sum(c["sent"] for c in clients)
    read = None
    while st0 and time.monotonic() < deadline:
        _, _, st = get_stats(addr, timeout=max(0.1, deadline - time.monotonic()))
        if st:
            read = st["bytes_in_total"] - st0["bytes_in_total"]
            if st["bytes_in_total"] >= want:
                break
        time.sleep(0.1)
    t_read = time.monotonic() - t0
    # What became of each client, peeked (nothing is consumed) just before closing.
    states = {}
    for c in clients:
        state = c["state"]
        if state in ("sent", "sending"):
            try:
                got = c["sock"].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                state += ", closed by the server" if not got else ", server sent data"
            except BlockingIOError:
                pass
            except OSError as e:
                state += f", {type(e).__name__}"
        states[state] = states.get(state, 0) + 1
        c["sock"].close()
    sent_mib = sum(max(0, c["sent"] - 14) for c in clients) / MIB
    short = sorted(c["sent"] / MIB for c in clients if c["sent"] < total_len)
    if short:
        states[f"short of {args.send / MIB:.0f} MiB (MiB sent)"] = [round(x, 1) for x in short[:10]]
    time.sleep(args.settle)
    rss1 = vmrss_bytes(pid)
    peak = sampler.stop()
    _, _, st1 = stats_retry(addr, 5)
    return {"rss0": rss0, "peak": peak, "rss1": rss1, "t_hs": t_hs, "t_sent": t_sent,
            "sent_mib": sent_mib, "t_read": t_read,
            "read_mib": None if read is None else read / MIB, "clients": len(clients), "refused": refused,
            "states": states, "st0": st0, "st1": st1}


def delta(st0, st1, field):
    if not st0 or not st1 or field not in st1:
        return None
    a, b = st0.get(field), st1[field]
    if isinstance(b, dict):
        return {k: v - a.get(k, 0) for k, v in b.items() if v - a.get(k, 0)}
    return b - a


def run_flood(args):
    addr = parse_addr(args.addr)
    log(f"== flood: server pid {args.server_pid} on {args.addr}; {args.floods} floods of {args.clients} "
        f"clients, each a binary frame declaring {args.declare} bytes and sending {args.send} "
        f"({args.send / MIB:.0f} MiB) of it, then stalling; send window {args.send_window:.0f} s, "
        f"settle {args.settle:.0f} s")
    payload = os.urandom(args.send)
    _, _, st = stats_retry(addr, 5)
    if st:
        log("   /stats fields: " + " ".join(k for k in st if k not in ("workers", "retired")))
    rows = []
    for f in range(1, args.floods + 1):
        r = flood_once(addr, args, payload)
        rows.append(r)
        st0, st1 = r["st0"], r["st1"]
        log(f"   flood {f}: RSS before {r['rss0'] / MIB:7.1f} MiB, peak {r['peak'] / MIB:7.1f} MiB, "
            f"{args.settle:.0f} s after {r['rss1'] / MIB:7.1f} MiB; /stats then: "
            + (f"websockets {st1.get('websockets')}, connections {st1.get('connections')} "
               "(the /stats request's own included)" if st1 else "unreachable"))
        log(f"      {r['clients']} handshakes in {r['t_hs']:.2f} s (refused: {r['refused'] or 'none'}); "
            f"{r['sent_mib']:.0f} MiB sent by t={r['t_sent']:.1f} s, "
            + (f"{r['read_mib']:.0f} MiB read by the server by t={r['t_read']:.1f} s; "
               if r["read_mib"] is not None else "")
            + f"clients at close: {r['states']}")
        log("      during the flood (/stats deltas): " + ", ".join(
            f"{k} {json.dumps(delta(st0, st1, k))}" for k in
            ("memory_shed_total", "shed_total", "accept_emfile_total", "timeouts_total",
             "protocol_errors_total", "closes_by_code", "handshake_failures")))
    # Connections the server still holds after its clients closed: how long they linger.
    st = rows[-1]["st1"]
    if st and st.get("websockets"):
        n, t0 = st["websockets"], time.monotonic()
        while st and st.get("websockets") and time.monotonic() - t0 < args.linger:
            time.sleep(0.5)
            _, _, st = get_stats(addr)
        left = st.get("websockets") if st else "unknown"
        log(f"   {n} websockets still open {args.settle:.0f} s after their clients closed; "
            f"{left} left {args.settle + time.monotonic() - t0:.0f} s after")
    log("   summary (MiB, before -> peak -> after): " + "; ".join(
        f"{r['rss0'] / MIB:.0f} -> {r['peak'] / MIB:.0f} -> {r['rss1'] / MIB:.0f}" for r in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="scenario", required=True)
    for name in ("slots", "flood"):
        p = sub.add_parser(name)
        p.add_argument("--addr", required=True, help="the server, 127.x.y.z:PORT")
        p.add_argument("--server-pid", type=int, required=True)
    p = sub.choices["slots"]
    p.add_argument("--reconnect", action="store_true",
                   help="reopen every attacker connection the server closes")
    p.add_argument("--surplus", type=int, default=500,
                   help="attacker connections beyond the server's RLIMIT_NOFILE (default 500)")
    p.add_argument("--per-proc", type=int, default=8000,
                   help="attacker connections per process, at most (default 8000)")
    p.add_argument("--procs", type=int, default=0, help="attacker processes (default: from --per-proc)")
    p.add_argument("--per-address", type=int, default=2000,
                   help="attacker connections per source address (default 2000)")
    p.add_argument("--fill-rate", type=float, default=10000.0,
                   help="connects per second while filling, all processes together (default 10000)")
    p.add_argument("--rate", type=float, default=2000.0,
                   help="reconnects per second, all processes together (default 2000)")
    p.add_argument("--fill-timeout", type=float, default=60.0)
    p.add_argument("--established", type=int, default=20, help="K established connections (default 20)")
    p.add_argument("--newcomers", type=int, default=None,
                   help="newcomer handshakes (default 10; with --reconnect 20)")
    p.add_argument("--spread", type=float, default=None,
                   help="seconds they are spread over (default 10, the handshake timeout; with "
                   "--reconnect 30, to see past the first wave of 408s)")
    p.add_argument("--timeout", type=float, default=15.0, help="a newcomer's timeout (default 15 s)")
    p = sub.choices["flood"]
    p.add_argument("--floods", type=int, default=3)
    p.add_argument("--clients", type=int, default=300)
    p.add_argument("--declare", type=int, default=16 * MIB, help="payload length declared (default 16 MiB)")
    p.add_argument("--send", type=int, default=8 * MIB, help="payload bytes sent (default 8 MiB)")
    p.add_argument("--send-window", type=float, default=30.0,
                   help="seconds the clients get to send before all close anyway (default 30)")
    p.add_argument("--settle", type=float, default=10.0, help="seconds after closing (default 10)")
    p.add_argument("--linger", type=float, default=30.0,
                   help="after the last flood, seconds to wait for websockets the server still "
                   "holds to go (default 30)")
    args = ap.parse_args()
    # SIGTERM (attack.sh's cleanup): unwind, so that the attackers are stopped and reaped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_nofile()
    if args.scenario == "slots":
        if args.newcomers is None:
            args.newcomers = 20 if args.reconnect else 10
        if args.spread is None:
            args.spread = 30.0 if args.reconnect else 10.0
        if args.established + args.newcomers + 8 > 1000 or args.newcomers < 1:
            sys.exit("attack.py: --newcomers must be 1..~990")
        run_slots(args)
    else:
        run_flood(args)


if __name__ == "__main__":
    main()
