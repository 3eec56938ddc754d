#!/usr/bin/env bash
# One chat room over three server hosts on Redis, against the same room in one process,
# side by side: simulated hosts (network namespaces, scripts/hosts.sh) with a Redis host,
# three server hosts and a client host, interleaved rounds, medians.
#
#   scripts/rooms_hosts.sh [--rounds R] [--window W] [--out DIR] [MEMBERS] [MESSAGES]
#                                           (default 3 rounds, window 16, 10000 members, 500 messages)
#
#   one     `serve` on host s1: the whole room in one reactor
#   hosts   `serve --pubsub redis://REDIS` on s1, s2 and s3; the members dealt in turn
#           to the three (`load --also-addr`), the sender on s1
#
# Both run the load (`wsreactor load --chat`, one process) on client host c1, started
# through `load --hosts c1=... --remote 'ip netns exec ...'`. Every server process and
# redis-server are pinned to CPU 0, the load generator to CPU 1 (taskset): the simulated
# hosts share this machine's two cores and one kernel, so this measures what the bus
# costs, not what more hosts would add. Reports deliveries/s, delivery latency p50/p99
# (the load generator's, send to receipt), the servers' CPU per delivery (every server
# process) and Redis's own CPU per message (utime + stime of redis-server from
# /proc/PID/stat, in clock ticks). Needs root, iproute2 and redis-server; removes its
# namespaces and stops every process it started, on exit or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3 WINDOW=16 OUT=scale-results MEMBERS=10000 MESSAGES=500
positional=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --window) WINDOW=${2:?--window needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "rooms_hosts.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
MEMBERS=${positional[0]:-$MEMBERS}
MESSAGES=${positional[1]:-$MESSAGES}
for n in "$MEMBERS" "$MESSAGES" "$ROUNDS" "$WINDOW"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "rooms_hosts.sh: want positive numbers (see --help)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "rooms_hosts.sh: needs root (network namespaces)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (Debian: apt-get install redis-server)" >&2; exit 1; }

cargo build --release --quiet
bin=$PWD/target/release/wsreactor

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
export HOSTS_PREFIX="wsrr$$" HOSTS_NET=10.205
NET=$HOSTS_NET
on() { local host=$1; shift; ip netns exec "$HOSTS_PREFIX-$host" "$@"; }
servers=() redis_pid=
# stop PID...: SIGTERM, SIGKILL after 5 s, reaped.
stop() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
stop_servers() { stop "${servers[@]}"; servers=(); }
trap 'status=$?; stop_servers; stop $redis_pid; scripts/hosts.sh down; (exit $status); cleanup' EXIT
scripts/hosts.sh up 3 1 >/dev/null

# Not through on(): a function run in the background is a subshell, and $! would be it.
ip netns exec "$HOSTS_PREFIX-redis" taskset -c 0 redis-server --bind "$NET.0.2" --port 6379 --save '' --appendonly no \
  --protected-mode no --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do on redis redis-cli -h "$NET.0.2" PING >/dev/null 2>&1 && break; sleep 0.1; done
on redis redis-cli -h "$NET.0.2" PING >/dev/null

# ticks PID...: user + system CPU of the processes, in clock ticks (each `ip netns exec`
# and taskset execs its program, so these are the servers' and Redis's own pids).
ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# serve HOST ARGS...: a server on HOST, port 9001 of its address; waits until it listens.
serve() {
  local host=$1 i=${1#s} log="$work/$1.log"
  shift
  : >"$log"
  ip netns exec "$HOSTS_PREFIX-$host" taskset -c 0 "$bin" serve --listen "$NET.0.$((10 + i)):9001" --stats-interval 0 \
    "$@" 2>>"$log" &
  servers+=($!)
  for _ in $(seq 100); do grep -q 'listening on' "$log" && return; sleep 0.1; done
  echo "server on $host did not start:" >&2; cat "$log" >&2; exit 1
}

echo "== a room over three hosts: $MEMBERS members, $MESSAGES messages of 32 bytes, window $WINDOW, $ROUNDS rounds"
echo "   servers and redis-server on CPU 0, load on CPU 1; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
hz=$(getconf CLK_TCK)
: >"$work/rows.jsonl"
for round in $(seq "$ROUNDS"); do
  for setup in one hosts; do
    also=()
    case $setup in
      one) serve s1 ;;
      hosts)
        for s in s1 s2 s3; do serve "$s" --pubsub "redis://$NET.0.2:6379"; done
        also=(--also-addr "$NET.0.12:9001,$NET.0.13:9001")
        ;;
    esac
    # The first subscriptions come up with the first members; give the servers a moment.
    sleep 1
    server_before=$(ticks "${servers[@]}")
    redis_before=$(ticks "$redis_pid")
    status=0
    taskset -c 1 "$bin" load --addr "$NET.0.11:9001" "${also[@]}" --connections "$MEMBERS" \
      --hosts "c1=$NET.101.1-$NET.101.4" --remote "ip netns exec $HOSTS_PREFIX-{host} taskset -c 1" \
      --chat "r$round" --chat-messages "$MESSAGES" --chat-window "$WINDOW" --json \
      >"$work/load.json" 2>"$work/load.log" || status=$?
    server_ticks=$(($(ticks "${servers[@]}") - server_before))
    redis_ticks=$(($(ticks "$redis_pid") - redis_before))
    # What the bus did: messages that could not be published, and messages each server
    # took from Redis (s2 and s3 each get every message the sender on s1 sent).
    unpublished=0 received=0
    if [ "$setup" = hosts ]; then
      for i in 1 2 3; do
        read -r u r < <(on "s$i" curl -s --max-time 10 "http://$NET.0.$((10 + i)):9001/stats" \
          | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s.get("pubsub_unpublished_total", 0), s.get("pubsub_received_total", 0))' \
          || echo "0 0")
        unpublished=$((unpublished + u)) received=$((received + r))
      done
    fi
    stop_servers
    [ "$status" -eq 0 ] || { echo "load failed ($setup, round $round):" >&2; tail -5 "$work/load.log" >&2; }
    python3 - "$setup" "$round" "$status" "$server_ticks" "$redis_ticks" "$hz" "$unpublished" "$received" \
      "$work/load.json" >>"$work/rows.jsonl" <<'PY'
import json, sys
setup, rnd, status, sticks, rticks, hz, unpublished, received, load = sys.argv[1:]
chat = json.load(open(load))["chat"]
got = chat["deliveries_received"]
print(json.dumps({
    "setup": setup, "round": int(rnd),
    "ok": status == "0" and chat["deliveries_missing"] == 0 and unpublished == "0",
    "deliveries": got, "expected": chat["deliveries_expected"],
    "deliveries_per_sec": chat["deliveries_per_sec"],
    "p50_us": chat["delivery_us"]["p50"], "p99_us": chat["delivery_us"]["p99"],
    "server_cpu_us_per_delivery": int(sticks) / int(hz) * 1e6 / got if got else None,
    "redis_cpu_us_per_message": (int(rticks) / int(hz) * 1e6 / chat["messages_sent"]
                                 if setup == "hosts" and chat["messages_sent"] else None),
    "unpublished": int(unpublished),
    "received_from_redis": int(received),
}))
PY
    tail -n1 "$work/rows.jsonl"
  done
done

mkdir -p "$OUT"
report="$OUT/rooms-hosts-$MEMBERS-$(date -u +%Y%m%dT%H%M%SZ).json"
WSREACTOR_VERSION=$(version_stamp) python3 - "$work/rows.jsonl" "$report" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
print(f"\n  {'setup':<6} {'deliveries/s':>12} {'p50 ms':>7} {'p99 ms':>7} {'server us/deliv':>15} {'redis us/msg':>12}  ok")
for setup in ("one", "hosts"):
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
