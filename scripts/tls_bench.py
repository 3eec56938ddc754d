"""Measures wsreactor over wss:// against ws://, from the outside (scripts/tls_bench.sh
runs it): the server's RSS per idle connection, its CPU time per small echo, and per
full handshake. The client is Python `websockets` (asyncio) over the standard library's
ssl (OpenSSL); only the server's numbers count (/proc/PID), so the client's own speed
sets the pace but not the result.

Usage: tls_bench.py PLAIN_PID PLAIN_PORT TLS_PID TLS_PORT CA_FILE
           idle N | echo SECONDS ROUNDS [BYTES] | handshake N ROUNDS
(two servers, one plain and one TLS, each measured by its own PID)
"""

import asyncio
import json
import os
import resource
import ssl
import sys
import time

from websockets.asyncio.client import connect

TICK = os.sysconf("SC_CLK_TCK")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def url(port, tls):
    return f"{'wss' if tls else 'ws'}://localhost:{port}/echo"


def options(ctx, tls):
    return dict(ssl=ctx if tls else None, compression=None, open_timeout=60,
                ping_interval=None, proxy=None, max_queue=4)


async def open_verified(port, ctx, tls):
    ws = await connect(url(port, tls), **options(ctx, tls))
    await ws.send("verify")
    assert await ws.recv() == "verify"
    return ws


async def idle(pid, port, ctx, tls, n):
    """RSS growth of the server while it holds n verified idle connections."""
    before = rss(pid)
    conns = []
    sem = asyncio.Semaphore(64)

    async def one():
        async with sem:
            conns.append(await open_verified(port, ctx, tls))

    await asyncio.gather(*(one() for _ in range(n)))
    await asyncio.sleep(2)
    after = rss(pid)
    for ws in conns:
        await ws.close()
    return {"connections": n, "rss_before": before, "rss_after": after,
            "bytes_per_connection": (after - before) / n}


async def echo(pid, port, ctx, tls, seconds, size, clients=32):
    """Server CPU seconds per echo of `size` bytes, clients each with one in flight."""
    conns = [await open_verified(port, ctx, tls) for _ in range(clients)]
    count = 0
    stop = time.monotonic() + seconds
    c0 = cpu(pid)

    async def loop(ws):
        nonlocal count
        msg = b"x" * size
        while time.monotonic() < stop:
            await ws.send(msg)
            assert await ws.recv() == msg
            count += 1

    await asyncio.gather(*(loop(ws) for ws in conns))
    used = cpu(pid) - c0
    for ws in conns:
        await ws.close()
    return {"bytes": size, "echoes": count, "server_cpu_s": used, "us_per_echo": used / count * 1e6}


async def handshake(pid, port, ctx, tls, n, concurrency=8):
    """Server CPU seconds per connection: connect, handshake(s), one echo, close."""
    sem = asyncio.Semaphore(concurrency)
    c0 = cpu(pid)

    async def one():
        async with sem:
            ws = await open_verified(port, ctx, tls)
            await ws.close()

    await asyncio.gather(*(one() for _ in range(n)))
    used = cpu(pid) - c0
    return {"connections": n, "server_cpu_s": used, "us_per_connection": used / n * 1e6,
            "per_second_per_core": n / used if used else None}


async def main():
    plain_pid, plain, tls_pid, secure, ca, what, *args = sys.argv[1:]
    servers = {False: (int(plain_pid), int(plain)), True: (int(tls_pid), int(secure))}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context(cafile=ca)
    # A fresh context per run would resume nothing anyway; tickets off keeps every
    # handshake a full one.
    ctx.options |= ssl.OP_NO_TICKET
    results = []
    if what == "idle":
        n = int(args[0])
        for tls in (False, True):
            r = await idle(*servers[tls], ctx, tls, n)
            results.append({"tls": tls, **r})
            await asyncio.sleep(2)
    elif what == "echo":
        seconds, rounds = float(args[0]), int(args[1])
        size = int(args[2]) if len(args) > 2 else 32
        for i in range(rounds):
            for tls in (False, True) if i % 2 == 0 else (True, False):
                r = await echo(*servers[tls], ctx, tls, seconds, size)
                results.append({"tls": tls, "round": i, **r})
    elif what == "handshake":
        n, rounds = int(args[0]), int(args[1])
        for i in range(rounds):
            for tls in (False, True) if i % 2 == 0 else (True, False):
                r = await handshake(*servers[tls], ctx, tls, n)
                results.append({"tls": tls, "round": i, **r})
    for r in results:
        print(json.dumps(r))


asyncio.run(main())
