#!/usr/bin/env bash
# wss:// against ws:// on this machine, server side only, side by side in one run: two
# release servers (one plain, one with a throwaway certificate) pinned to core 0, the
# Python `websockets` client (tests/clients/.venv) pinned to core 1.
# Usage: scripts/tls_bench.sh idle N | echo SECONDS ROUNDS [BYTES] | handshake N ROUNDS
#   KEY=ec (P-256, default) or KEY=rsa (RSA-2048) picks the certificate's key.
# Prints one JSON line per measurement (see scripts/tls_bench.py) after a stamp.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=tests/clients/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
cargo build --release --quiet

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

case "${KEY:-ec}" in
  ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa) newkey=(-newkey rsa:2048) ;;
  *) echo "KEY is ec or rsa" >&2; exit 2 ;;
esac
openssl req -x509 "${newkey[@]}" -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

start() { # name, extra args...; sets port and pid (not in a subshell: the server must
  # not hold a command substitution's pipe open)
  local name=$1
  shift
  taskset -c 0 ./target/release/wsreactor serve --listen 127.0.0.1:0 --idle-timeout 0 \
    --stats-interval 0 "$@" 2>"$tmp/$name.log" >/dev/null &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 100); do
    port=$(grep -o 'listening on [0-9.:]*' "$tmp/$name.log" | head -n1 | cut -d: -f2) || true
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$name server did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
}
start plain
plain_port=$port plain_pid=$pid
start tls --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
tls_port=$port tls_pid=$pid

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) key ${KEY:-ec} $(uname -r) $(nproc) cores; $*"
taskset -c 1 "$venv/bin/python" scripts/tls_bench.py "$plain_pid" "$plain_port" "$tls_pid" \
  "$tls_port" "$tmp/cert.pem" "$@"
