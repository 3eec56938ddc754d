"""Holds N Python `websockets` clients open against a wsreactor server and reports the
server's resident memory per connection: after each client's handshake and one short
echo (idle), and again after each has sent and received WARM bytes of varied text in
messages of 1 KiB to 8 KiB (a window's worth of history). Run by scripts/deflate_memory.sh,
which starts the server and passes its address and PID.

    python deflate_memory.py ADDR PID N WARM MODE     (MODE: plain, deflate, deflate-window-BITS)
"""

import asyncio
import json
import random
import sys

import websockets


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


WORDS = ("the of and to in is was that for it with as on be at by this had not are but from or "
         "have an they which one you were her all she there would their we him been has when who "
         "will more no if out so said what up its about into than them can only other new some "
         "could time these two may then do first any my now such like our over man me even most "
         "made after also did many before must through back years where much your way well down "
         "κόσμε 🦀 wsreactor deflate window context takeover").split()


def varied_text(rng, size):
    out, n = [], 0
    while n < size:
        word = rng.choice(WORDS)
        out.append(word)
        n += len(word.encode()) + 1
    return " ".join(out).encode()[:size].decode("utf-8", "ignore")


async def main():
    addr, pid, n, warm, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    compression = None if mode == "plain" else "deflate"
    url = f"ws://{addr}/echo"
    before = rss(pid)
    conns = []
    sem = asyncio.Semaphore(200)

    async def open_one(i):
        async with sem:
            ws = await websockets.connect(url, compression=compression, max_size=None,
                                          ping_interval=None, open_timeout=60)
            await ws.send("hello, idle world")
            assert await ws.recv() == "hello, idle world"
            conns.append(ws)

    await asyncio.gather(*(open_one(i) for i in range(n)))
    agreed = conns[0].response.headers.get("Sec-WebSocket-Extensions")
    await asyncio.sleep(1)
    idle = rss(pid)

    async def warm_one(i, ws):
        rng = random.Random(i)
        sent = 0
        async with sem:
            while sent < warm:
                text = varied_text(rng, rng.randint(1024, 8192))
                await ws.send(text)
                assert await ws.recv() == text
                sent += len(text.encode())

    if warm:
        await asyncio.gather(*(warm_one(i, ws) for i, ws in enumerate(conns)))
    await asyncio.sleep(1)
    warmed = rss(pid)
    print(json.dumps({
        "mode": mode, "connections": n, "agreed": agreed, "warm_bytes_each_way": warm,
        "rss_before": before, "rss_idle": idle, "rss_warmed": warmed,
        "bytes_per_conn_idle": round((idle - before) / n, 1),
        "bytes_per_conn_warmed": round((warmed - before) / n, 1),
    }))
    for ws in conns:
        ws.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
