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
    python3 - "$setup" "$round" "$status" "$server_ticks" "$redis_ticks" "$(getconf CLK_TCK)" \
      "$work/load.json" "$work/stats.json" >>"$work/rows.jsonl" <<'PY'
import json, sys
setup, rnd, status, sticks, rticks, hz, load, stats = sys.argv[1:]
chat = json.load(open(load))["chat"]
stats = json.load(open(stats))
got = chat["deliveries_received"]
print(json.dumps({
    "setup": setup, "round": int(rnd), "ok": status == "0" and chat["deliveries_missing"] == 0,
    "deliveries": got, "expected": chat["deliveries_expected"],
    "deliveries_per_sec": chat["deliveries_per_sec"],
    "p50_us": chat["delivery_us"]["p50"], "p99_us": chat["delivery_us"]["p99"],
    "server_cpu_us_per_delivery": int(sticks) / int(hz) * 1e6 / got if got else None,
    "redis_cpu_us_per_message": (int(rticks) / int(hz) * 1e6 / chat["messages_sent"]
                                 if setup == "redis" and chat["messages_sent"] else None),
    "published": stats.get("pubsub_published_total", 0),
    "received": stats.get("pubsub_received_total", 0),
    "unpublished": stats.get("pubsub_unpublished_total", 0),
}))
PY
    tail -n1 "$work/rows.jsonl"
  done
done

mkdir -p "$OUT"
report="$OUT/rooms-$MEMBERS-$(date -u +%Y%m%dT%H%M%SZ).json"
WSREACTOR_VERSION=$(version_stamp) python3 - "$work/rows.jsonl" "$report" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
print(f"\n  {'setup':<6} {'deliveries/s':>12} {'p50 ms':>7} {'p99 ms':>7} {'server us/deliv':>15} {'redis us/msg':>12}  ok")
for setup in ("one", "mesh", "redis"):
    rs = [r for r in rows if r["setup"] == setup]
    m = lambda k: statistics.median(r[k] for r in rs) if all(r[k] is not None for r in rs) else None
    med[setup] = {k: m(k) for k in ("deliveries_per_sec", "p50_us", "p99_us",
                                    "server_cpu_us_per_delivery", "redis_cpu_us_per_message")}
    x = med[setup]
    redis = f"{x['redis_cpu_us_per_message']:.1f}" if x["redis_cpu_us_per_message"] is not None else "-"
    print(f"  {setup:<6} {x['deliveries_per_sec']:>12,.0f} {x['p50_us'] / 1000:>7.1f} {x['p99_us'] / 1000:>7.1f}"
          f" {x['server_cpu_us_per_delivery']:>15.2f} {redis:>12}  {all(r['ok'] for r in rs)}")
json.dump({"machine": {"kernel": os.uname().release, "cpus": os.cpu_count(),
                       "wsreactor": os.environ["WSREACTOR_VERSION"]},
           "rows": rows, "medians": med}, open(sys.argv[2], "w"), indent=2)
print(f"\n  report: {sys.argv[2]}")
sys.exit(0 if all(r["ok"] for r in rows) else 1)
PY
