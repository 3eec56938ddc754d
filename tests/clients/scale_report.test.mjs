// The scale report's HTML page in a real browser: headless Debian Chromium driven by
// playwright-core renders what scripts/scale_report.py writes for a scripts/scale.sh
// report, and every chart must be there with its lines drawn, the headline figures and
// the machine stamp on top, no script errors, and nothing loaded from anywhere (the
// page is one self-contained file).
//
// The report is a real run's (tests/clients/fixtures/scale-70000.json, from
// `scripts/scale.sh --hold 10 --echo-every 5 70000` at e5c16e8), or $SCALE_REPORT to
// check another.
// With $SCALE_SCREENSHOT the rendered page is also saved there as a PNG.
// Run: node --test tests/clients/scale_report.test.mjs

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { chromiumPath } from "./chromium.mjs";

const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"];
const root = fileURLToPath(new URL("../../", import.meta.url));
const reportJson = process.env.SCALE_REPORT ?? join(root, "tests/clients/fixtures/scale-70000.json");

// The charts scale_report.py draws, by element id, and the series each one must show.
const CHARTS = {
  established: ["established"],
  handshakes: ["handshakes", "failed"],
  echoes: ["echoes"],
  "handshake-latency": ["handshake_p50_ms", "handshake_p99_ms"],
  "echo-latency": ["echo_p50_ms", "echo_p99_ms"],
  "server-rss": ["server_rss_mib"],
  cpu: ["server_cpu", "load_cpu", "host_cpu", "other_cpu"],
  "kernel-memory": ["slab_mib", "tcp_mem_mib"],
};

let dir;
let browser;
let page;
const requests = [];
const pageErrors = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "wsreactor-report-"));
  const html = join(dir, "report.html");
  execFileSync("python3", [join(root, "scripts/scale_report.py"), reportJson, html]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  page = await browser.newPage({ viewport: { width: 960, height: 900 } });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("request", (r) => requests.push(r.url()));
  // Anything but the page itself is aborted before it leaves the browser.
  const own = pathToFileURL(html).href;
  await page.route((url) => url.href !== own, (route) => route.abort("blockedbyclient"));
  await page.goto(own);
});

after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the headline figures and the machine stamp come first", async () => {
  const report = JSON.parse(await readFile(reportJson, "utf8"));
  assert.match(await page.title(), /WebSocket connections on one port/);
  const cards = page.locator(".card");
  assert.ok((await cards.count()) >= 8, "headline cards");
  const text = await page.locator(".cards").innerText();
  for (const label of [
    "established on one port",
    "ramp",
    "handshake p99",
    "echo RTT p99",
    "server RSS per connection",
    "stopped",
    "hold CPU per echo",
    "processes, server / load",
  ]) {
    assert.ok(text.toLowerCase().includes(label.toLowerCase()), `no "${label}" card in:\n${text}`);
  }
  const established = report.os.established_on_port.toLocaleString("en-US");
  assert.ok(text.includes(established), `the established count ${established} is not shown`);
  const stamp = await page.locator("dl").innerText();
  assert.ok(stamp.includes(report.machine.kernel), "kernel in the stamp");
  assert.ok(stamp.includes(report.machine.rustc), "rustc in the stamp");
  // Above the first chart.
  const cardsBox = await page.locator(".cards").boundingBox();
  const chartBox = await page.locator(".chart").first().boundingBox();
  assert.ok(cardsBox.y < chartBox.y, "the figures are above the charts");
});

test("every chart is drawn with a line per series", async () => {
  for (const [id, series] of Object.entries(CHARTS)) {
    const svg = page.locator(`#${id} svg`);
    await svg.waitFor();
    const box = await svg.boundingBox();
    assert.ok(box && box.width > 400 && box.height > 100, `#${id} is not laid out: ${JSON.stringify(box)}`);
    for (const key of series) {
      const points = await page
        .locator(`#${id} polyline[data-series="${key}"]`)
        .evaluateAll((lines) => lines.reduce((n, l) => n + l.points.numberOfItems, 0));
      assert.ok(points >= 2, `#${id} has no line for ${key}`);
    }
    // Axis labels: a value scale and a time scale.
    const labels = await page.locator(`#${id} text.axis`).allTextContents();
    assert.ok(labels.some((l) => l.endsWith(" s")), `#${id} has no time axis`);
  }
  // The hold is marked on the charts.
  assert.ok((await page.locator("#established rect.phase").count()) === 1, "the hold is shaded");
});

test("the page is self-contained: no script, nothing fetched, no errors", async () => {
  assert.equal(await page.locator("script").count(), 0);
  assert.deepEqual(
    requests.filter((u) => !u.startsWith("file:")),
    [],
    "the page asked for something other than itself",
  );
  assert.equal(requests.length, 1, `requests: ${requests}`);
  assert.deepEqual(pageErrors, []);
  const shot = process.env.SCALE_SCREENSHOT ?? join(dir, "report.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok((await stat(shot)).size > 50_000, "the screenshot is nearly empty");
});
