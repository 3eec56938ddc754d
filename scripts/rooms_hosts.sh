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
cargo build --release --quiet
bin=$PWD/target/release/wsreactor

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/hosts_lib.sh
source scripts/hosts_lib.sh
start_redis

echo "== a room over three hosts: $MEMBERS members, $MESSAGES messages of 32 bytes, window $WINDOW, $ROUNDS rounds"
echo "   servers and redis-server on CPU 0, load on CPU 1; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
hz=$(getconf CLK_TCK)
: >"$work/rows.jsonl"
for round in $(seq "$ROUNDS"); do
  for setup in one hosts; do
    case $setup in
      one) serve s1; spread=1 ;;
      hosts) for s in s1 s2 s3; do serve "$s" --pubsub "redis://$REDIS"; done; spread=3 ;;
    esac
    # The first subscriptions come up with the first members; give the servers a moment.
    sleep 1
    server_before=$(ticks "${servers[@]}")
    redis_before=$(ticks "$redis_pid")
    status=0
    chat_load "$spread" --connections "$MEMBERS" --chat "r$round" --chat-messages "$MESSAGES" \
      --chat-window "$WINDOW" --json >"$work/load.json" 2>"$work/load.log" || status=$?
    server_ticks=$(($(ticks "${servers[@]}") - server_before))
    redis_ticks=$(($(ticks "$redis_pid") - redis_before))
    # What the bus did: messages that could not be published, and messages each server
    # took from Redis (s2 and s3 each get every message the sender on s1 sent).
    unpublished=0 received=0
    if [ "$setup" = hosts ]; then
      for s in s1 s2 s3; do
        read -r u r < <(stats "$s" pubsub_unpublished_total pubsub_received_total || echo "0 0")
        unpublished=$((unpublished + u)) received=$((received + r))
      done
    fi
    stop_servers
    [ "$status" -eq 0 ] || { echo "load failed ($setup, round $round):" >&2; tail -5 "$work/load.log" >&2; }
    rticks=-
    [ "$setup" = hosts ] && rticks=$redis_ticks
    echo "{\"pubsub_unpublished_total\": $unpublished, \"pubsub_received_total\": $received}" >"$work/stats.json"
    python3 scripts/rooms_rows.py row "$setup" "$round" "$status" "$server_ticks" "$rticks" "$hz" \
      "$work/load.json" "$work/stats.json" >>"$work/rows.jsonl"
    tail -n1 "$work/rows.jsonl"
  done
done

mkdir -p "$OUT"
report="$OUT/rooms-hosts-$MEMBERS-$(date -u +%Y%m%dT%H%M%SZ).json"
WSREACTOR_VERSION=$(version_stamp) python3 scripts/rooms_rows.py summary "$work/rows.jsonl" "$report" one hosts
