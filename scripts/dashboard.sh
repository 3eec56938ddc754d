#!/usr/bin/env bash
# The live dashboard under load, as a picture: starts `wsreactor serve --workers WORKERS`,
# opens /dashboard in headless Chromium (playwright-core from tests/clients), ramps
# `wsreactor load` to CONNECTIONS echoing connections while the page watches, and takes
# a screenshot once the load has held them for a while.
#
#   scripts/dashboard.sh [OUT.png]        (default static/screenshots/dashboard.png)
#
# Environment: CONNECTIONS (default 5000), WORKERS (2), RATE (connection attempts per
# second, 250), ECHO_EVERY (seconds between echoes per connection, 1), WATCH (seconds
# from the start of the load to the screenshot, 45). Needs Node 20+ and Debian's
# chromium; runs `npm ci` in tests/clients. Stops every process it started on exit,
# Ctrl-C or failure. Targets 127.0.0.1 only. On a shared machine, run it under the lock
# other load runs take (`flock LOCKFILE scripts/dashboard.sh`): it is a load run.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-static/screenshots/dashboard.png}
CONNECTIONS=${CONNECTIONS:-5000}
WORKERS=${WORKERS:-2}
RATE=${RATE:-250}
ECHO_EVERY=${ECHO_EVERY:-1}
WATCH=${WATCH:-45}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
for n in "$CONNECTIONS" "$WORKERS" "$RATE" "$WATCH"; do
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -eq 0 ]; then echo "usage: $0 [OUT.png]" >&2; exit 2; fi
done
[ -x "$CHROMIUM" ] || { echo "no chromium at $CHROMIUM (Debian: apt-get install chromium)" >&2; exit 1; }

cargo build --release --quiet
bin=./target/release/wsreactor
(cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
shot_pid=
stop_shot() { [ -z "$shot_pid" ] || kill -TERM "$shot_pid" 2>/dev/null || true; }
trap 'stop_shot; cleanup' EXIT

start_server --workers "$WORKERS" --stats-interval 0
echo "== server: $bin serve --workers $WORKERS on $addr (pid $server_pid)"

# The page opens first, so its two-minute history shows the ramp from zero. The hold
# outlasts the screenshot; the cleanup stops the load once the picture is taken.
mkdir -p "$(dirname "$OUT")"
out_abs=$(realpath "$OUT")
(cd tests/clients && node --input-type=module -e '
import { chromium } from "playwright-core";
const [url, out, watchMs, chromium_path] = process.argv.slice(1);
const browser = await chromium.launch({ executablePath: chromium_path, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 480 }, colorScheme: "light" });
  await page.route((u) => !u.href.startsWith(url.replace(/\/dashboard$/, "/")), (r) => r.abort());
  await page.goto(url);
  await page.locator("#state[data-state=live]").waitFor({ timeout: 10000 });
  console.log("page open; watching for", watchMs / 1000, "s");
  await page.waitForTimeout(Number(watchMs));
  await page.screenshot({ path: out, fullPage: true });
  console.log("screenshot:", out);
} finally {
  await browser.close();
}' "http://$addr/dashboard" "$out_abs" "$((WATCH * 1000 + 2000))" "$CHROMIUM") &
shot_pid=$!
sleep 2

hold=$((WATCH + 30))
echo "== load: $CONNECTIONS connections at $RATE/s, an echo each every ${ECHO_EVERY}s, held ${hold}s"
"$bin" load --addr "$addr" --connections "$CONNECTIONS" --rate "$RATE" --hold "$hold" \
  --echo-every "$ECHO_EVERY" --json >"$work/load.json" 2>"$work/load.log" &
load_pid=$!
wait "$shot_pid"
shot_pid=
echo "== /stats when the picture was taken:"
curl -s --max-time 10 "http://$addr/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
workers = ", ".join("%d: %s" % (w["worker"], format(w["websockets"], ",")) for w in s["workers"])
print("   %s WebSockets, %s messages in, %.1f MiB RSS; WebSockets by worker: %s" % (
    format(s["websockets"], ","), format(s["messages_in_total"], ","), s["rss_bytes"] / 2**20, workers))'
echo "   machine: $(uname -srm), $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
