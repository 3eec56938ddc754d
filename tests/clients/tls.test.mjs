// wss:// and https:// with Node's `ws` and headless Chromium: the server runs with
// `--tls-cert/--tls-key` and a throwaway self-signed certificate made with openssl.
// `ws` trusts it as its CA; Chromium is told to accept it by its SPKI hash
// (--ignore-certificate-errors-spki-list), loads https://127.0.0.1:PORT/ and echoes
// over the wss:// connection the page opens back.
// Run: node --test tests/clients/tls.test.mjs

import assert from "node:assert/strict";
import { execFileSync, execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import WebSocket from "ws";

import { chromiumPath } from "./chromium.mjs";
import { startServer, within } from "./server.mjs";

const IO_MS = 10_000;
const CHROMIUM = chromiumPath();

let dir;
let server;
let ca;
let spki;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "wsreactor-tls-"));
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  // The base64 SHA-256 of the certificate's SubjectPublicKeyInfo, as Chromium wants it.
  spki = execSync(
    `openssl x509 -pubkey -noout -in ${cert} | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ).toString().trim();
  ca = await readFile(cert);
  server = await startServer(["--tls-cert", cert, "--tls-key", key]);
});

after(async () => {
  try {
    server?.assertRunning();
  } finally {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
});

async function echo(ws, data, isBinary) {
  const reply = once(ws, "message");
  ws.send(data, { binary: isBinary });
  const [got, gotBinary] = await within(IO_MS, "the echo", reply);
  assert.equal(gotBinary, isBinary);
  assert.ok(Buffer.from(got).equals(Buffer.from(data)), "the echo, byte for byte");
}

test("ws echoes text and binary over wss with the certificate as its CA", async () => {
  const ws = new WebSocket(`wss://localhost:${server.addr.split(":")[1]}/echo`, {
    ca,
    handshakeTimeout: IO_MS,
  });
  await within(IO_MS, "the wss handshake", once(ws, "open"));
  await echo(ws, "héllo over TLS ✓", false);
  await echo(ws, randomBytes(200_000), true);
  const closed = once(ws, "close");
  ws.close(1000, "done");
  const [code] = await within(IO_MS, "the close", closed);
  assert.equal(code, 1000);
});

test("Chromium loads the demo page over https and echoes over wss", async () => {
  const profile = await mkdtemp(join(tmpdir(), "wsreactor-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", `--ignore-certificate-errors-spki-list=${spki}`,
      ],
      timeout: 60_000,
    });
    context.setDefaultTimeout(IO_MS);
    const page = await context.newPage();
    const response = await page.goto(`https://${server.addr}/`);
    assert.equal(response.status(), 200);
    await page.locator("#status[data-state=open]").waitFor();
    const text = `hello wss ${randomBytes(6).toString("hex")}`;
    await page.locator("#message").fill(text);
    await page.locator("#send").click();
    await page.locator("#log li.received", { hasText: text }).first().waitFor();
    // The page's own connection went back over wss://.
    const url = await page.evaluate(() => location.protocol);
    assert.equal(url, "https:");
  } finally {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
  }
});
