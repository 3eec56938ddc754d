#!/usr/bin/env bash
# Echo throughput and server CPU per message with and without permessage-deflate:
# wsreactor (serve, serve --deflate), Node `ws` (perMessageDeflate at its defaults) and
# Python `websockets` (compression at its defaults), each driven by the same Python
# `websockets` clients (scripts/deflate_peers.py: short text, 64 KiB text, 16 KiB random
# binary), ROUNDS times interleaved. The clients are the bottleneck for msgs/s; the
# server's CPU time per message is the figure to compare.
#
#   scripts/deflate_peers.sh [--servers 'SERVER...'] [ROUNDS] [CONNECTIONS] [MESSAGES]
#     (default 3, 8, 2000; servers: wsreactor wsreactor-deflate node-ws python-websockets,
#     and wsreactor-deflate-window-9, serve --deflate-window 9, if named)
#
# Server pinned to CPU 0, clients to CPU 1 (taskset). Targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

servers=(wsreactor wsreactor-deflate node-ws python-websockets)
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) read -r -a servers <<<"$2"; shift 2 ;;
    *) break ;;
  esac
done
for server in "${servers[@]}"; do
  case "$server" in wsreactor | wsreactor-deflate | wsreactor-deflate-window-9 | node-ws | python-websockets) ;; *) echo "unknown server: $server" >&2; exit 2 ;; esac
done
ROUNDS=${1:-3}
CONNS=${2:-8}
MESSAGES=${3:-2000}
cargo build --release --quiet
bin=./target/release/wsreactor
venv=tests/clients/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
(cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
echo "# $(uname -sr), $(nproc) CPUs, wsreactor $(version_stamp), node $(node --version), websockets $("$venv/bin/python" -c 'import websockets; print(websockets.__version__)')"
peer() {
  # A fresh log: wait_listening must not read the previous server's address.
  rm -f "$work/server.log"
  taskset -c 0 "$@" 2>"$work/server.log" &
  server_pid=$!
  wait_listening "$work/server.log" "$1"
}
for round in $(seq "$ROUNDS"); do
  for server in "${servers[@]}"; do
    case $server in
      wsreactor) peer "$bin" serve --listen 127.0.0.1:0 --stats-interval 0 ;;
      wsreactor-deflate) peer "$bin" serve --listen 127.0.0.1:0 --stats-interval 0 --deflate ;;
      wsreactor-deflate-window-9) peer "$bin" serve --listen 127.0.0.1:0 --stats-interval 0 --deflate-window 9 ;;
      node-ws) peer node tests/clients/deflate_peer_node.mjs ;;
      python-websockets) peer "$venv/bin/python" tests/clients/deflate_peer_python.py ;;
    esac
    PYTHONPATH=scripts taskset -c 1 "$venv/bin/python" scripts/deflate_peers.py "ws://$addr/echo" "$server_pid" "$CONNS" "$MESSAGES" |
      sed "s/^/round $round $server: /"
    stop_server
  done
done
