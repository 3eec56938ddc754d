#!/usr/bin/env bash
# Runs the Autobahn TestSuite (cases 1.* to 10.*, via the PyPI package kosoku, pinned)
# against the release binary. Passes only if every selected case ran and ended OK or
# INFORMATIONAL in both its exchange and its close (scripts/autobahn_verdict.py, which
# takes the selection from kosoku's own case list and checks itself first).
# Usage: scripts/autobahn.sh [--tls] [--deflate | --deflate-window BITS] [CASES...]
#   CASES: globs such as 5.* or 7.1.1; default: all of 1-10 (all 517 with --deflate).
#   --tls: the server speaks wss:// (a throwaway self-signed certificate made with
#     openssl) and kosoku, which speaks only ws://, reaches it through socat (plain in,
#     TLS out).
#   --deflate: the server runs with `--deflate`, and the permessage-deflate cases (12.*,
#     13.*) run too.
#   --deflate-window BITS: the same with `--deflate-window BITS` (context takeover);
#     e.g. `scripts/autobahn.sh --deflate-window 9 '12.*' '13.*'`.
# Reports: reports/autobahn/index.json (reports/autobahn-deflate/ with --deflate,
# reports/autobahn-deflate-window-BITS/ with --deflate-window) and one HTML page per case.
set -euo pipefail
cd "$(dirname "$0")/.."

tls=
server_flags=()
excludes=('12.*' '13.*')
out=reports/autobahn
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) tls=1 ;;
    --deflate) server_flags+=(--deflate) excludes=() out=reports/autobahn-deflate ;;
    --deflate-window)
      [ $# -ge 2 ] || { echo "--deflate-window needs BITS" >&2; exit 2; }
      server_flags+=(--deflate-window "$2") excludes=() out=reports/autobahn-deflate-window-$2
      shift
      ;;
    *) break ;;
  esac
  shift
done

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
tmp=$(mktemp -d)
server_pid=
shim_pid=
cleanup() {
  for pid in "$shim_pid" "$server_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$log" "$tmp"
}
trap cleanup EXIT INT TERM

tls_args=()
if [ -n "$tls" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  tls_args=(--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
fi
./target/release/wsreactor --listen 127.0.0.1:0 "${tls_args[@]}" "${server_flags[@]}" 2>"$log" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'listening on [0-9.:]*' "$log" | head -n1 | cut -d' ' -f3) || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start:"; cat "$log"; exit 1; }
if [ -n "$tls" ]; then
  # The shim: kosoku connects to it in plain TCP, and it speaks TLS to the server,
  # verifying the certificate against itself.
  shim_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  socat "TCP-LISTEN:$shim_port,bind=127.0.0.1,reuseaddr,fork,nodelay" \
    "OPENSSL:$addr,cafile=$tmp/cert.pem,commonname=localhost,nodelay" 2>>"$log" &
  shim_pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$shim_port") 2>/dev/null && break
    sleep 0.1
  done
  echo "autobahn over TLS: kosoku -> socat 127.0.0.1:$shim_port -> wss://$addr"
  addr=127.0.0.1:$shim_port
fi

rm -rf "$out"
# The selection, given to kosoku and to the verdict alike. 12.* and 13.* need
# permessage-deflate, which wsreactor offers only with --deflate.
selection=()
for case in "$@"; do selection+=(--include "$case"); done
for case in "${excludes[@]}"; do selection+=(--exclude "$case"); done
status=0
"$venv/bin/kosoku" -p 2 "${selection[@]}" -o "$out" "$addr" || status=$?

kill -0 "$server_pid" 2>/dev/null || { echo "the server died during the suite:"; cat "$log"; exit 1; }

verdict=0
"$venv/bin/python" scripts/autobahn_verdict.py "$out/index.json" "${selection[@]}" || verdict=$?
# kosoku exits non-zero when a case fails; the verdict says which, and why.
[ "$verdict" -eq 0 ] || exit "$verdict"
exit "$status"
