"""Python `websockets` echo server with permessage-deflate at its defaults, for
scripts/deflate_peers.sh. Prints "listening on 127.0.0.1:PORT"."""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    async with serve(echo, "127.0.0.1", 0, max_size=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        await asyncio.Future()


asyncio.run(main())
