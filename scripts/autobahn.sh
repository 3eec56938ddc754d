#!/usr/bin/env bash
# Runs the Autobahn TestSuite (cases 1.* to 10.*, via the PyPI package kosoku, pinned)
# against the release binary. Passes only if every selected case ran and ended OK or
# INFORMATIONAL in both its exchange and its close (scripts/autobahn_verdict.py, which
# takes the selection from kosoku's own case list and checks itself first).
# Usage: scripts/autobahn.sh [CASES...]   (globs such as 5.* or 7.1.1; default: all of 1-10)
# Reports: reports/autobahn/index.json and one HTML page per case.
set -euo pipefail
cd "$(dirname "$0")/.."

kosoku_version=0.1.0
venv=.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kosoku"))' 2>/dev/null || true)
if [ "$installed" != "$kosoku_version" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kosoku==$kosoku_version"
fi
# A verdict that could not fail would make every run a pass: it proves otherwise first.
checked=$("$venv/bin/python" -m unittest -q tests/scripts/test_autobahn_verdict.py 2>&1) || {
  echo "$checked"
  exit 1
}
cargo build --release --quiet

log=$(mktemp)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT INT TERM

./target/release/wsreactor --listen 127.0.0.1:0 2>"$log" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'listening on [0-9.:]*' "$log" | head -n1 | cut -d' ' -f3) || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start:"; cat "$log"; exit 1; }

out=reports/autobahn
rm -rf "$out"
# The selection, given to kosoku and to the verdict alike. 12.* and 13.* need
# permessage-deflate, which wsreactor does not offer.
selection=()
for case in "$@"; do selection+=(--include "$case"); done
for case in '12.*' '13.*'; do selection+=(--exclude "$case"); done
status=0
"$venv/bin/kosoku" -p 2 "${selection[@]}" -o "$out" "$addr" || status=$?

kill -0 "$server_pid" 2>/dev/null || { echo "the server died during the suite:"; cat "$log"; exit 1; }

verdict=0
"$venv/bin/python" scripts/autobahn_verdict.py "$out/index.json" "${selection[@]}" || verdict=$?
# kosoku exits non-zero when a case fails; the verdict says which, and why.
[ "$verdict" -eq 0 ] || exit "$verdict"
exit "$status"
