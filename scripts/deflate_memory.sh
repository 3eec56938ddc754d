#!/usr/bin/env bash
# Server memory per connection with and without permessage-deflate: N Python `websockets`
# clients (which offer permessage-deflate by default) held open against `serve`,
# `serve --deflate` and `serve --deflate-window BITS` (context takeover), side by side,
# ROUNDS times interleaved. Reports the server's RSS growth per connection after each
# client's handshake and one short echo, and again after each sent and received WARM
# bytes of varied text (default 64 KiB): a context's window is touched only once text
# has filled it.
#
#   scripts/deflate_memory.sh [--modes 'MODE...'] [N] [ROUNDS]
#     (default 10000 connections, 3 rounds, modes 'plain deflate deflate-window-9
#     deflate-window-15'; a mode is plain, deflate or deflate-window-BITS)
#
# Server pinned to CPU 0, clients to CPU 1 (taskset). Targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

modes=(plain deflate deflate-window-9 deflate-window-15)
while [ $# -gt 0 ]; do
  case "$1" in
    --modes) read -r -a modes <<<"$2"; shift 2 ;;
    *) break ;;
  esac
done
for mode in "${modes[@]}"; do
  case "$mode" in plain | deflate | deflate-window-9 | deflate-window-1[0-5]) ;; *) echo "unknown mode: $mode" >&2; exit 2 ;; esac
done
N=${1:-10000}
ROUNDS=${2:-3}
WARM=${WARM:-65536}
cargo build --release --quiet
bin=./target/release/wsreactor
venv=tests/clients/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
server_wrap=(taskset -c 0)
echo "# $(uname -sr), $(nproc) CPUs, wsreactor $(version_stamp), websockets $("$venv/bin/python" -c 'import websockets; print(websockets.__version__)')"
for round in $(seq "$ROUNDS"); do
  for mode in "${modes[@]}"; do
    flags=(--stats-interval 0 --idle-timeout 0 --ping-interval 0)
    case "$mode" in
      deflate) flags+=(--deflate) ;;
      deflate-window-*) flags+=(--deflate-window "${mode#deflate-window-}") ;;
    esac
    start_server "${flags[@]}"
    echo -n "round $round: "
    taskset -c 1 "$venv/bin/python" scripts/deflate_memory.py "$addr" "$server_pid" "$N" "$WARM" "$mode"
    stop_server
  done
done
