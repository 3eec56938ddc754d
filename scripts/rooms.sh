#!/usr/bin/env bash
# Rooms past one process, side by side: one room of MEMBERS members, one sender of
# MESSAGES messages (`wsreactor load --chat`), served by
#   one     one process (the room in one reactor),
#   mesh    `--workers W` (the workers relay the room over Unix sockets),
#   redis   `--workers W --pubsub redis://...` (through a redis-server of this script's),
# interleaved over ROUNDS rounds (default 3), with the medians of each.
#
#   scripts/rooms.sh [MEMBERS] [MESSAGES]      (default 2000 members, 2000 messages)
#
# Environment: WORKERS (W, default 2), ROUNDS, WINDOW (messages in flight, default 16),
# SIZE (bytes a message, default 32), SERVER_CPUS / LOAD_CPUS (taskset lists; default 0
# and 1: the servers and Redis share one core, the load generator has the other), OUT
# (report directory, default scale-results). Every server process and Redis share this machine's cores and
# kernel, so this measures what the bus costs, not what more hosts would add.
# Reports deliveries/s, delivery latency p50/p99 (the load generator's), the server's
# CPU per delivery (every process of it) and Redis's CPU per message published.
# Targets 127.0.0.1 only; stops every process it started, on exit or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${1:-2000}
MESSAGES=${2:-2000}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-2}
WINDOW=${WINDOW:-16}
SIZE=${SIZE:-32}
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
OUT=${OUT:-scale-results}
for n in "$MEMBERS" "$MESSAGES" "$ROUNDS" "$WORKERS"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "usage: $0 [MEMBERS] [MESSAGES]" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "needs redis-server (Debian: apt-get install redis-server)" >&2; exit 1; }

cargo build --release --quiet
bin=./target/release/wsreactor

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
redis_pid=
stop_redis() {
  [ -n "$redis_pid" ] || return 0
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
}
trap 'stop_redis; cleanup' EXIT

redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c "$SERVER_CPUS" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
  --appendonly no --daemonize no --protected-mode no --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" PING >/dev/null

# ticks PID...: CPU time (user + system, clock ticks) of the processes and their children.
ticks() {
  local total=0 pid
  for pid in "$@" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

server_wrap=(taskset -c "$SERVER_CPUS")
echo "== rooms past one process: $MEMBERS members, $MESSAGES messages of $SIZE bytes, window $WINDOW, $WORKERS workers, $ROUNDS rounds"
echo "   servers and redis-server on CPU $SERVER_CPUS, load on CPU $LOAD_CPUS; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$work/rows.jsonl"
for round in $(seq "$ROUNDS"); do
  for setup in one mesh redis; do
    case $setup in
      one) args=() ;;
      mesh) args=(--workers "$WORKERS") ;;
      redis) args=(--workers "$WORKERS" --pubsub "redis://127.0.0.1:$redis_port") ;;
    esac
    start_server --stats-interval 0 "${args[@]}"
    # The workers' first subscriptions and the mesh's streams come up within a second.
    sleep 1
    server_before=$(ticks "$server_pid")
    redis_before=$(ticks "$redis_pid")
    status=0
    taskset -c "$LOAD_CPUS" "$bin" load --addr "$addr" --connections "$MEMBERS" --chat "r$round" \
      --chat-messages "$MESSAGES" --chat-window "$WINDOW" --message-size "$SIZE" --json \
      >"$work/load.json" 2>"$work/load.log" || status=$?
    server_ticks=$(( $(ticks "$server_pid") - server_before ))
    redis_ticks=$(( $(ticks "$redis_pid") - redis_before ))
    # Workers report their counters once a second.
    sleep 1.5
    curl -s --max-time 30 "http://$addr/stats" >"$work/stats.json" || echo '{}' >"$work/stats.json"
    stop_server
    rticks=-
    [ "$setup" = redis ] && rticks=$redis_ticks
    python3 scripts/rooms_rows.py row "$setup" "$round" "$status" "$server_ticks" "$rticks" \
      "$(getconf CLK_TCK)" "$work/load.json" "$work/stats.json" >>"$work/rows.jsonl"
    tail -n1 "$work/rows.jsonl"
  done
done

mkdir -p "$OUT"
report="$OUT/rooms-$MEMBERS-$(date -u +%Y%m%dT%H%M%SZ).json"
WSREACTOR_VERSION=$(version_stamp) python3 scripts/rooms_rows.py summary "$work/rows.jsonl" "$report" one mesh redis
