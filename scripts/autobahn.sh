#!/usr/bin/env bash
# Runs the Autobahn TestSuite (cases 1.* to 10.*, via the PyPI package kosoku) against
# the release binary and fails on any FAILED case. Usage: scripts/autobahn.sh [--deflate]
# [CASES...]. With --deflate the server runs with `--deflate` and all 517 cases run,
# the permessage-deflate ones (12.*, 13.*) included.
# Reports: reports/autobahn/index.json (reports/autobahn-deflate/ with --deflate) and
# one HTML page per case.
set -euo pipefail
cd "$(dirname "$0")/.."

server_flags=()
excludes=(-x '12.*' -x '13.*')
out=reports/autobahn
if [ "${1:-}" = "--deflate" ]; then
  shift
  server_flags=(--deflate)
  excludes=()
  out=reports/autobahn-deflate
fi

venv=.venv
if [ ! -x "$venv/bin/kosoku" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kosoku
fi
cargo build --release --quiet

log=$(mktemp)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT INT TERM

./target/release/wsreactor --listen 127.0.0.1:0 "${server_flags[@]}" 2>"$log" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'listening on [0-9.:]*' "$log" | head -n1 | cut -d' ' -f3) || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start:"; cat "$log"; exit 1; }

rm -rf "$out"
includes=()
for case in "${@:-}"; do [ -n "$case" ] && includes+=(-i "$case"); done
# 12.* and 13.* need permessage-deflate, which wsreactor offers only with --deflate.
status=0
"$venv/bin/kosoku" -p 2 "${excludes[@]}" "${includes[@]}" -o "$out" "$addr" || status=$?

kill -0 "$server_pid" 2>/dev/null || { echo "the server died during the suite:"; cat "$log"; exit 1; }

"$venv/bin/python" - "$out/index.json" <<'PY'
import collections, json, sys
cases = next(iter(json.load(open(sys.argv[1])).values()))
tally = collections.Counter(c["behavior"] for c in cases.values())
print("autobahn:", len(cases), "cases:", ", ".join(f"{n} {b}" for b, n in sorted(tally.items())))
for cid, c in sorted(cases.items()):
    if c["behavior"] != "OK":
        print(f"  {cid}: {c['behavior']} / close {c['behaviorClose']}")
sys.exit(1 if tally.get("FAILED") or tally.get("UNIMPLEMENTED") else 0)
PY
exit "$status"
