// The demo page in a real browser: headless Debian Chromium driven by playwright-core
// (no downloaded browser). It loads `/`, echoes a message and shows its round trip, and
// two tabs in one chat room both show a message one of them sent; `/dashboard` of a
// server with two workers shows the numbers of live traffic as they change. The pages
// must load nothing from anywhere but the server.
// Run: node --test tests/clients/browser.test.mjs

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { once } from "node:events";
import { chromium } from "playwright-core";
import WebSocket from "ws";

import { startServer, within } from "./server.mjs";

import { chromiumPath } from "./chromium.mjs";

const UI_MS = 10_000;
const CHROMIUM = chromiumPath();
// The flags the issue names: no sandbox (root in CI), and no background traffic to hosts
// this machine cannot reach.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

let server;
let context;
let profile;
const foreignRequests = [];
const pageErrors = [];
// The http:// and ws:// origins of the servers the tests started: the pages' own.
const ownOrigins = new Set();

before(async () => {
  server = await startServer();
  profile = await mkdtemp(join(tmpdir(), "wsreactor-chromium-"));
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
  } catch (e) {
    await server.stop();
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
  context.setDefaultTimeout(UI_MS);
  allowOrigins(server);
  const own = (url) => url.startsWith("data:") || [...ownOrigins].some((o) => url.startsWith(o + "/"));
  // Anything else the page asks for is recorded and aborted before it leaves the
  // browser, so even a broken page never sends traffic off this machine.
  await context.route(
    (url) => !own(url.href),
    (route) => {
      foreignRequests.push(route.request().url());
      return route.abort("blockedbyclient");
    },
  );
  context.on("page", (page) => page.on("pageerror", (e) => pageErrors.push(String(e))));
});

after(async () => {
  try {
    await context?.close();
  } finally {
    await server?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  }
});

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 12)}`;

/** Lets pages talk to `srv` (and nothing else that is not already allowed). */
function allowOrigins(srv) {
  const origin = srv.httpUrl("").replace(/\/$/, "");
  ownOrigins.add(origin);
  ownOrigins.add(origin.replace(/^http/, "ws"));
}

/** Everything the page's log shows, for failure messages. */
const logText = (page) => page.locator("#log").innerText();

/** Waits for a log line of `kind` (sent, received, event) containing `text`. */
async function expectLogLine(page, kind, text, who = "the page") {
  const line = page.locator(`#log li.${kind}`, { hasText: text });
  try {
    await line.first().waitFor();
  } catch (e) {
    throw new Error(`${who} shows no ${kind} line with ${JSON.stringify(text)}; its log:\n${await logText(page)}`, {
      cause: e,
    });
  }
  return line.first();
}

async function expectOpen(page, endpoint) {
  try {
    await page.locator("#status[data-state=open]").waitFor();
  } catch (e) {
    throw new Error(`the page never showed an open connection; its log:\n${await logText(page)}`, { cause: e });
  }
  assert.equal(await page.locator("#endpoint").innerText(), endpoint);
}

/** Opens the demo page and joins `room` in chat mode through the controls. */
async function joinRoom(room, submit) {
  const page = await context.newPage();
  await page.goto(server.httpUrl("/"));
  await page.locator("#mode-chat").check();
  await page.locator("#room").fill(room);
  await submit(page);
  await expectOpen(page, `/chat?room=${room}`);
  await expectLogLine(page, "event", `joined room ${room}`);
  return page;
}

test("the page connects in echo mode, echoes a message and shows its round trip", async () => {
  const page = await context.newPage();
  try {
    const response = await page.goto(server.httpUrl("/"));
    assert.equal(response.status(), 200);
    assert.match(await page.title(), /wsreactor/);
    assert.ok(await page.locator("#mode-echo").isChecked(), "echo is the default mode");
    await expectOpen(page, "/echo");
    assert.equal(await page.locator("#extensions").innerText(), "none", "no extension without --deflate");
    assert.equal(await page.locator("#rtt").innerText(), "–", "no round trip before any echo");

    const text = unique("hello browser κόσμε");
    await page.locator("#message").fill(text);
    await page.locator("#send").click();
    await expectLogLine(page, "sent", text);
    const echo = await expectLogLine(page, "received", text);
    // The echo's line carries its round trip, and the summary shows the same one.
    const rtt = Number(await echo.getAttribute("data-rtt-ms"));
    assert.ok(Number.isFinite(rtt) && rtt >= 0, `round trip ${rtt}`);
    assert.match(await echo.innerText(), /round trip \d+(\.\d+)? ms/);
    assert.match(await page.locator("#rtt").innerText(), /^\d+(\.\d+)? ms$/);
  } finally {
    await page.close();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
  assert.deepEqual(foreignRequests, [], "the page loaded something from elsewhere");
});

test("against serve --deflate the page negotiates permessage-deflate and echoes", async () => {
  const deflate = await startServer(["--deflate"]);
  allowOrigins(deflate);
  const page = await context.newPage();
  try {
    await page.goto(deflate.httpUrl("/"));
    await expectOpen(page, "/echo");
    const shown = await page.locator("#extensions").innerText();
    assert.match(shown, /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
    for (const text of [unique("compressed κόσμε"), unique("x".repeat(100_000))]) {
      await page.locator("#message").fill(text);
      await page.locator("#send").click();
      await expectLogLine(page, "received", text.slice(0, 40));
    }
  } finally {
    await page.close();
    await deflate.stop();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
});

test("against serve --deflate-window 9 Chromium keeps its context and reads a long session", async () => {
  const kept = await startServer(["--deflate-window", "9"]);
  allowOrigins(kept);
  const page = await context.newPage();
  try {
    await page.goto(kept.httpUrl("/"));
    await expectOpen(page, "/echo");
    const shown = await page.locator("#extensions").innerText();
    assert.equal(shown, "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9");
    // Messages repeating each other's text, echoed in one session by the browser's own
    // WebSocket: compressed after the wrong context, an echo would not match.
    const mismatches = await page.evaluate(async (url) => {
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
      const bad = [];
      for (let i = 0; i < 300; i++) {
        const text = `{"seq":${i},"user":"user-${i % 7}","text":"the quick brown fox ${(i * 31) % 101} κόσμε"}`.repeat(1 + (i % 4));
        // A server that could not inflate it closes (1007): that ends the session.
        const echo = new Promise((resolve) => {
          ws.onmessage = (event) => resolve(event.data);
          ws.onclose = (event) => resolve(`closed with ${event.code}`);
        });
        ws.send(text);
        const got = await echo;
        if (got !== text) bad.push(`${i}: ${got.slice(0, 40)}`);
        if (ws.readyState !== WebSocket.OPEN) break;
      }
      ws.close();
      return bad;
    }, kept.wsUrl("/echo"));
    assert.deepEqual(mismatches, [], "echoes that differ from what was sent");
  } finally {
    await page.close();
    await kept.stop();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
});

test("two tabs in the same chat room both show a message one of them sent", async () => {
  const room = unique("room");
  // One tab joins with the Connect button, the other by pressing Enter in the room field.
  const alice = await joinRoom(room, (page) => page.locator("#connect").click());
  const bob = await joinRoom(room, (page) => page.locator("#room").press("Enter"));
  try {
    // Joining keeps the room in the address, so the URL opens the same room elsewhere.
    assert.ok(alice.url().endsWith(`/?mode=chat&room=${room}`), alice.url());

    const text = unique("hello from alice");
    await alice.locator("#message").fill(text);
    await alice.locator("#send").click();
    await expectLogLine(alice, "sent", text, "alice's tab");
    await expectLogLine(bob, "received", text, "bob's tab (the other member)");
    await expectLogLine(alice, "received", text, "alice's tab (the sender is a member)");

    const reply = unique("hi alice, bob here");
    await bob.locator("#message").fill(reply);
    await bob.locator("#message").press("Enter");
    await expectLogLine(alice, "received", reply, "alice's tab");
  } finally {
    await alice.close();
    await bob.close();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
  assert.deepEqual(foreignRequests, [], "the page loaded something from elsewhere");
});

test("a room name the server would refuse is caught on the page", async () => {
  const page = await context.newPage();
  try {
    await page.goto(server.httpUrl("/"));
    await expectOpen(page, "/echo");
    await page.locator("#mode-chat").check();
    await expectOpen(page, "/chat?room=lobby");
    await page.locator("#room").fill("two words");
    await page.locator("#connect").click();
    await expectLogLine(page, "event", "room names are 1 to 64 letters");
    // The page stayed where it was rather than trying a connection that gets a 400.
    assert.equal(await page.locator("#endpoint").innerText(), "/chat?room=lobby");
    assert.equal(await page.locator("#status").getAttribute("data-state"), "open");
  } finally {
    await page.close();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
});

/** A number as the dashboard shows it ("1,234", "12.5"). */
const shown = (page, id) => page.locator(`#${id}`).innerText().then((t) => Number(t.replace(/,/g, "")));

/** Waits until the dashboard's number `id` passes `check`, naming `what` if it never does. */
async function expectShown(page, id, check, what) {
  const deadline = Date.now() + 20_000;
  let last;
  while (Date.now() < deadline) {
    last = await shown(page, id);
    if (check(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`the dashboard's #${id} never showed ${what}; last ${last}`);
}

test("the dashboard of a two-worker server shows live traffic as it changes", async () => {
  const workers = await startServer(["--workers", "2"]);
  allowOrigins(workers);
  const clients = [];
  let sending;
  let churn;
  const page = await context.newPage();
  try {
    const response = await page.goto(workers.httpUrl("/dashboard"));
    assert.equal(response.status(), 200);
    assert.match(await page.title(), /wsreactor/);
    await page.locator("#state[data-state=live]").waitFor();
    await page.locator("#workers tbody tr").nth(1).waitFor();
    assert.equal(await page.locator("#workers tbody tr").count(), 2, "one row per worker");
    assert.equal(await shown(page, "connections"), 0);

    // Handshakes while the page watches: a client connecting and leaving every 100 ms
    // keeps the rate above zero for as long as the check may take.
    churn = setInterval(() => {
      const ws = new WebSocket(workers.wsUrl("/echo"));
      ws.on("open", () => ws.close(1000));
      ws.on("error", () => {});
    }, 100);
    await expectShown(page, "handshakes-rate", (n) => n > 0, "handshakes going on (about 10/s)");
    clearInterval(churn);
    // Eight echo clients, each sending a message every 50 ms while the page watches.
    for (let i = 0; i < 8; i++) {
      const ws = new WebSocket(workers.wsUrl("/echo"));
      clients.push(ws);
      await within(10_000, "a client's opening handshake", once(ws, "open"));
    }
    sending = setInterval(() => {
      for (const ws of clients) if (ws.readyState === WebSocket.OPEN) ws.send("tick");
    }, 50);
    await expectShown(page, "connections", (n) => n === 8, "8 connections");
    await expectShown(page, "messages-rate", (n) => n > 20, "messages flowing (8 × 20/s)");
    await expectShown(page, "handshakes-rate", (n) => n === 0, "the handshakes stopped");
    assert.match(await page.locator("#rss").innerText(), /^\d[\d,]*\.\d MiB$/);
    // It keeps updating, once a second.
    const before = await shown(page, "updates");
    await expectShown(page, "updates", (n) => n >= before + 2, "two more updates");
    const sparkline = await page.locator("#t-messages polyline").getAttribute("points");
    assert.ok(sparkline.split(" ").length >= 2, `a messages/s line: ${sparkline}`);

    // The clients leave: the page follows.
    clearInterval(sending);
    for (const ws of clients) ws.close(1000);
    await expectShown(page, "connections", (n) => n === 0, "the clients gone");
    await expectShown(page, "messages-rate", (n) => n === 0, "the messages stopped");
    workers.assertRunning();
  } finally {
    clearInterval(churn);
    clearInterval(sending);
    for (const ws of clients) ws.terminate();
    await page.close();
    await workers.stop();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
  assert.deepEqual(foreignRequests, [], "the page loaded something from elsewhere");
});

test("the demo page links to the dashboard", async () => {
  const page = await context.newPage();
  try {
    await page.goto(server.httpUrl("/"));
    await page.locator("#dashboard-link").click();
    await page.waitForURL(server.httpUrl("/dashboard"));
    await page.locator("#state[data-state=live]").waitFor();
    assert.equal(await page.locator("#workers tbody tr").count(), 1, "a lone process is one worker");
  } finally {
    await page.close();
  }
  assert.deepEqual(pageErrors, [], "script errors on the page");
  assert.deepEqual(foreignRequests, [], "the page loaded something from elsewhere");
});
