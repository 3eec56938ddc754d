// Interop with Node's `ws` (an implementation no one here wrote) against the real binary:
// text, binary, a 1 MiB message, ping/pong, the closing handshake with a code and a
// reason, and a chat room; and against `serve --deflate`, with `perMessageDeflate` on
// (every message compressed), text and binary, small and 1 MiB.
// Run: node --test tests/clients/ws_interop.test.mjs

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { after, before, test } from "node:test";
import WebSocket from "ws";

import { startServer, within } from "./server.mjs";

const IO_MS = 10_000;
const BIG_MS = 60_000;
let server;
let deflateServer;

before(async () => {
  server = await startServer();
  deflateServer = await startServer(["--deflate"]);
});
after(async () => {
  try {
    server?.assertRunning();
    deflateServer?.assertRunning();
  } finally {
    await server?.stop();
    await deflateServer?.stop();
  }
});

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 12)}`;

/** Opens a `ws` client on `path`; next() resolves with the next message or fails in time. */
async function open(path = "/echo", srv = server, options = {}) {
  const ws = new WebSocket(srv.wsUrl(path), { handshakeTimeout: IO_MS, ...options });
  const inbox = [];
  const waiting = [];
  // ws names the extensions it agreed to only; the 101 says their parameters.
  ws.on("upgrade", (res) => (ws.agreed = res.headers["sec-websocket-extensions"]));
  ws.on("message", (data, isBinary) => {
    const message = { data, isBinary };
    if (waiting.length) waiting.shift()(message);
    else inbox.push(message);
  });
  ws.next = (what = "a message", ms = IO_MS) =>
    within(ms, what, new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : waiting.push(resolve))));
  await within(IO_MS, `the opening handshake on ${path}`, once(ws, "open"));
  return ws;
}

/** Ends a client whatever state it is in (for finally blocks). */
function drop(ws) {
  if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
}

test("text messages are echoed as text", async () => {
  const ws = await open();
  try {
    for (const text of ["hello", "κόσμε", "a€b𝄞c 🦀", ""]) {
      ws.send(text);
      const { data, isBinary } = await ws.next(`the echo of ${JSON.stringify(text)}`);
      assert.equal(isBinary, false, "text came back as binary");
      assert.equal(data.toString("utf8"), text);
    }
  } finally {
    drop(ws);
  }
});

test("binary messages are echoed as binary", async () => {
  const ws = await open();
  try {
    for (const payload of [Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(0), randomBytes(70_000)]) {
      ws.send(payload, { binary: true });
      const { data, isBinary } = await ws.next(`the echo of ${payload.length} bytes`);
      assert.equal(isBinary, true, "binary came back as text");
      assert.ok(payload.equals(data), `the ${payload.length}-byte echo differs`);
    }
  } finally {
    drop(ws);
  }
});

test("1 MiB messages are echoed byte for byte", async () => {
  const ws = await open();
  try {
    const payload = randomBytes(1 << 20);
    ws.send(payload, { binary: true });
    const echo = await ws.next("the 1 MiB binary echo", BIG_MS);
    assert.equal(echo.isBinary, true);
    assert.equal(echo.data.length, payload.length);
    assert.ok(payload.equals(echo.data), "the 1 MiB binary echo differs");

    // Exactly 1 MiB of text with multi-byte code points.
    const unit = "κόσμε 🦀 ascii ";
    let text = unit.repeat(Math.floor((1 << 20) / Buffer.byteLength(unit)));
    text += "x".repeat((1 << 20) - Buffer.byteLength(text));
    assert.equal(Buffer.byteLength(text), 1 << 20);
    ws.send(text);
    const textEcho = await ws.next("the 1 MiB text echo", BIG_MS);
    assert.equal(textEcho.isBinary, false);
    assert.ok(textEcho.data.toString("utf8") === text, "the 1 MiB text echo differs");
  } finally {
    drop(ws);
  }
});

test("a ping gets a pong with the same payload", async () => {
  const ws = await open();
  try {
    const payload = Buffer.from(unique("ping"));
    const pong = once(ws, "pong");
    ws.ping(payload);
    const [data] = await within(IO_MS, "the pong", pong);
    assert.ok(payload.equals(data), `pong payload ${data} differs from ping payload ${payload}`);
    ws.send("after ping");
    assert.equal((await ws.next("the echo after the ping")).data.toString(), "after ping");
  } finally {
    drop(ws);
  }
});

for (const [code, reason] of [
  [1000, "bye"],
  [4001, "application-defined: κόσμε"],
]) {
  test(`the closing handshake with ${code} and a reason`, async () => {
    const ws = await open();
    try {
      ws.send("before close");
      assert.equal((await ws.next("the echo before closing")).data.toString(), "before close");
      const closed = once(ws, "close");
      ws.close(code, reason);
      // `ws` emits close once the TCP connection is gone, with the code of the Close
      // frame it received (1006 if none came). RFC 6455 §5.5.1: the reply "typically
      // echos the status code it received"; its reason is the server's own (any UTF-8,
      // which `ws` validates), so only the code is compared.
      const [gotCode, gotReason] = await within(IO_MS, "the close handshake", closed);
      assert.equal(gotCode, code);
      assert.ok(Buffer.isBuffer(gotReason));
    } finally {
      drop(ws);
    }
  });
}

test("every member of a chat room gets a message, and no one outside it", async () => {
  const room = unique("room");
  const clients = [];
  try {
    const a = await open(`/chat?room=${room}`);
    clients.push(a);
    const b = await open(`/chat?room=${room}`);
    clients.push(b);
    const other = await open(`/chat?room=${unique("other")}`);
    clients.push(other);
    const message = unique("hello from a");
    a.send(message);
    assert.equal((await b.next("the message in another member")).data.toString(), message);
    assert.equal((await a.next("the message back in the sender")).data.toString(), message);
    // Delivery to every member happens before b got it, so if the other room had been
    // sent it, it would come before the other client's own message.
    const mine = unique("other room");
    other.send(mine);
    assert.equal((await other.next("the other room's own message")).data.toString(), mine);
  } finally {
    clients.forEach(drop);
  }
});

test("with --deflate and perMessageDeflate, text and binary echo, small and 1 MiB", async () => {
  // threshold 0: ws compresses every message it sends, however small.
  const ws = await open("/echo", deflateServer, { perMessageDeflate: { threshold: 0 } });
  try {
    // ws names the extensions it agreed to (its `extensions` getter lists names only).
    assert.equal(ws.extensions, "permessage-deflate");
    const unit = "κόσμε 🦀 ascii ";
    let big = unit.repeat(Math.floor((1 << 20) / Buffer.byteLength(unit)));
    big += "x".repeat((1 << 20) - Buffer.byteLength(big));
    for (const text of ["hello", "", big]) {
      ws.send(text);
      const echo = await ws.next(`the echo of ${Buffer.byteLength(text)} bytes of text`, BIG_MS);
      assert.equal(echo.isBinary, false, "text came back as binary");
      assert.ok(echo.data.toString("utf8") === text, "the text echo differs");
    }
    for (const payload of [Buffer.from([1, 2, 3]), randomBytes(1 << 20), Buffer.alloc(1 << 20, 7)]) {
      ws.send(payload, { binary: true });
      const echo = await ws.next(`the echo of ${payload.length} bytes of binary`, BIG_MS);
      assert.equal(echo.isBinary, true, "binary came back as text");
      assert.ok(payload.equals(echo.data), "the binary echo differs");
    }
  } finally {
    drop(ws);
  }
});

/** Varied text in which each message repeats much of the ones before. */
const chatter = (i) =>
  `{"seq":${i},"user":"user-${i % 7}","text":"the quick brown fox ${(i * 31) % 101} jumps κόσμε"}`.repeat(1 + (i % 4));

for (const window of [9, 15]) {
  test(`with --deflate-window ${window}, context takeover both ways over a long session`, async () => {
    const srv = await startServer(["--deflate-window", String(window)]);
    const offers = [
      // ws's default offer (client_max_window_bits without a value).
      [{ threshold: 0 }, `permessage-deflate; server_max_window_bits=${window}; client_max_window_bits=${window}`],
      [
        { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 11 },
        `permessage-deflate; server_max_window_bits=${Math.min(10, window)}; client_max_window_bits=${Math.min(11, window)}`,
      ],
      // No client_max_window_bits offered: the client is asked to keep no context.
      [
        { threshold: 0, clientMaxWindowBits: false },
        `permessage-deflate; client_no_context_takeover; server_max_window_bits=${window}`,
      ],
    ];
    try {
      for (const [perMessageDeflate, expected] of offers) {
        const ws = await open("/echo", srv, { perMessageDeflate });
        try {
          assert.equal(ws.agreed, expected);
          for (let i = 0; i < 300; i++) {
            ws.send(chatter(i));
            const echo = await ws.next(`echo ${i}`);
            assert.equal(echo.isBinary, false);
            assert.ok(echo.data.toString("utf8") === chatter(i), `echo ${i} differs`);
          }
          const big = Array.from({ length: 3000 }, (_, i) => chatter(i)).join("");
          ws.send(big);
          assert.ok((await ws.next("the large echo", BIG_MS)).data.toString("utf8") === big, "the large echo differs");
          const payload = randomBytes(100_000);
          ws.send(payload, { binary: true });
          assert.ok(payload.equals((await ws.next("the binary echo")).data), "the binary echo differs");
        } finally {
          drop(ws);
        }
      }
      srv.assertRunning();
    } finally {
      await srv.stop();
    }
  });
}

test("a plain server declines ws's permessage-deflate offer", async () => {
  const ws = await open("/echo", server, { perMessageDeflate: true });
  try {
    assert.equal(ws.extensions, "");
    ws.send("plain");
    assert.equal((await ws.next("the echo")).data.toString("utf8"), "plain");
  } finally {
    drop(ws);
  }
});
