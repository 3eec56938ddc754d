// Node `ws` echo server with permessage-deflate at its defaults (context takeover, zlib
// window 15), for scripts/deflate_peers.sh. Prints "listening on 127.0.0.1:PORT".
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: true, maxPayload: 64 << 20 });
wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on("listening", () => console.error(`listening on 127.0.0.1:${wss.address().port}`));
