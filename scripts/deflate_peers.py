"""Drives an echo server with Python `websockets` clients (compression offered, as by
default) and prints messages per second and the server's CPU time per message, for three
payloads: short text, 64 KiB of varied text, 16 KiB of random binary. Run by
scripts/deflate_peers.sh, which starts each server.

    python deflate_peers.py URL SERVER_PID CONNECTIONS MESSAGES
"""

import asyncio
import json
import os
import random
import sys
import time

import websockets

from deflate_memory import varied_text


def cpu_seconds(pid):
    """CPU time of every thread of the process (Node compresses on its thread pool), in
    nanoseconds from schedstat rather than clock ticks."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended
    return total / 1e9


def payloads(kind, rng):
    if kind == "text-32B":
        return lambda: varied_text(rng, 32)
    if kind == "text-64KiB":
        return lambda: varied_text(rng, 65536)
    return lambda: rng.randbytes(16384)


async def run(url, pid, conns, messages, kind):
    clients = [await websockets.connect(url, max_size=None, ping_interval=None) for _ in range(conns)]
    agreed = clients[0].response.headers.get("Sec-WebSocket-Extensions")

    async def drive(i, ws):
        make = payloads(kind, random.Random(i))
        batch = [make() for _ in range(16)]
        for n in range(messages):
            message = batch[n % 16]
            await ws.send(message)
            assert await ws.recv() == message

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(drive(i, ws) for i, ws in enumerate(clients)))
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    for ws in clients:
        await ws.close()
    total = conns * messages
    return {"payload": kind, "compressed": bool(agreed), "msgs_per_s": round(total / wall),
            "server_cpu_us_per_msg": round(cpu / total * 1e6, 1)}


async def main():
    url, pid, conns, messages = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    for kind in ["text-32B", "text-64KiB", "binary-16KiB"]:
        n = {"text-32B": messages, "text-64KiB": max(1, messages // 40)}.get(kind, max(1, messages // 10))
        print(json.dumps(await run(url, pid, conns, n, kind)), flush=True)


asyncio.run(main())
