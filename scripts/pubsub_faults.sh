#!/usr/bin/env bash
# What `serve --pubsub` does when Redis fails, measured on simulated hosts (network
# namespaces: three server hosts, a Redis host, a client host; scripts/hosts_lib.sh):
#
#   lost     a chat over the three hosts; Redis killed (SIGKILL) 3 s in, restarted 3 s
#            later
#   slow     the same chat; Redis stopped (SIGSTOP) 3 s in, continued (SIGCONT) 5 s later;
#            meanwhile s1's /stats is read every 0.2 s (how long it takes to answer: the
#            reactor is not waiting for Redis) with its queue toward Redis
#   full     Redis stopped the same way under a tenth of the members sending 4 KiB
#            messages five times as fast, into servers with --memory-budget 64MiB (so
#            the queue toward Redis is bounded at 4 MiB): past the bound, messages go to
#            local members only and are counted
#   absent   `serve --pubsub` with no Redis listening: its exit status, time and message
#
#   scripts/pubsub_faults.sh [MEMBERS] [MESSAGES] [RATE]   (default 300, 2000, 200/s)
#
# The chat (`wsreactor load --chat`, window large enough never to hold the sender back)
# says which deliveries arrived and which connections failed; each server's /stats says
# how often it reconnected and what it could not publish. Needs root, iproute2 and
# redis-server; removes its namespaces and stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${1:-300}
MESSAGES=${2:-2000}
RATE=${3:-200}
for n in "$MEMBERS" "$MESSAGES" "$RATE"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "usage: $0 [MEMBERS] [MESSAGES] [RATE]" >&2; exit 2; }
done
cargo build --release --quiet
bin=$PWD/target/release/wsreactor
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/hosts_lib.sh
source scripts/hosts_lib.sh

fields="pubsub_up pubsub_reconnects_total pubsub_unpublished_total pubsub_published_total pubsub_received_total slow_members_dropped_total memory_shed_total"
echo "== Redis faults under a chat: $MEMBERS members over 3 server hosts, $MESSAGES messages at $RATE/s"
for fault in lost slow full; do
  start_redis
  budget=() chat=(--connections "$MEMBERS" --chat-messages "$MESSAGES" --chat-rate "$RATE")
  if [ "$fault" = full ]; then
    budget=(--memory-budget 64MiB)
    chat=(--connections $((MEMBERS / 10 + 1)) --chat-messages $((MESSAGES * 5))
      --chat-rate $((RATE * 5)) --message-size 4096)
  fi
  for s in s1 s2 s3; do serve "$s" --pubsub "redis://$REDIS" "${budget[@]}"; done
  sleep 1
  status=0
  chat_load 3 --chat "$fault" "${chat[@]}" --chat-window 100000 --echo-timeout 30 --json \
    >"$work/load.json" 2>"$work/load.log" &
  load=$!
  sleep 3
  : >"$work/probe"
  case $fault in
    lost)
      kill -KILL "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
      sleep 3
      start_redis
      ;;
    slow | full)
      kill -STOP "$redis_pid"
      end=$((SECONDS + 5))
      while [ "$SECONDS" -lt "$end" ]; do
        # How long s1's /stats takes, and its bytes queued toward Redis (no Python
        # here: on a busy machine its start-up alone takes most of a period).
        rc=0
        t=$(on s1 curl -s -o "$work/s1.json" -w '%{time_total}' --max-time 5 "http://$NET.0.11:9001/stats") || rc=$?
        q=$(grep -o '"pubsub_queued_bytes": *[0-9]*' "$work/s1.json" | grep -o '[0-9]*$' | head -n1 || true)
        echo "${t:-5} ${q:-0} $rc" >>"$work/probe"
        sleep 0.2
      done
      kill -CONT "$redis_pid"
      ;;
  esac
  wait "$load" || status=$?
  sleep 1.5
  for s in s1 s2 s3; do echo "$s $(stats "$s" $fields)"; done >"$work/stats"
  stop_servers
  stop "$redis_pid"; redis_pid=
  python3 - "$fault" "$status" "$work/load.json" "$work/stats" "$work/probe" "$fields" <<'PY'
import json, sys
fault, status, load, stats, probe, fields = sys.argv[1:]
r = json.load(open(load))
chat = r["chat"]
print(f"\n-- Redis {fault} (load exit {status})")
print(f"   connections: {r['established']} established, {r['failed']} failed {r['failures'] or ''}, {r['closed_clean']} closed cleanly")
print(f"   deliveries: {chat['deliveries_received']:,} of {chat['deliveries_expected']:,} ({chat['deliveries_missing']:,} missing);"
      f" members with every message: {chat['members_complete']} of {chat['members']}")
print(f"   per server: " + " ".join(fields.split()))
for line in open(stats):
    print("     " + line.strip())
rows = [l.split() for l in open(probe) if l.strip()]
if rows:
    ok = [r for r in rows if r[2] == "0"]
    times = sorted(float(r[0]) * 1000 for r in ok) or [float("nan")]
    queued = [int(r[1]) for r in ok] or [0]
    print(f"   while stopped: s1's /stats answered {len(ok)} of {len(rows)} times (curl exit codes"
          f" {sorted(set(r[2] for r in rows))}), slowest {times[-1]:.1f} ms, median"
          f" {times[len(times) // 2]:.1f} ms; queued toward Redis up to {max(queued):,} bytes")
PY
done

# Redis absent at start: nothing listens on its address.
echo
echo "-- Redis absent at start"
started=$(date +%s.%N)
status=0
on s1 "$bin" serve --listen "$NET.0.11:9001" --pubsub "redis://$REDIS" >"$work/absent.log" 2>&1 || status=$?
echo "   exit status $status after $(python3 -c "import time; print(f'{time.time() - $started:.2f}')") s: $(grep -m1 -o 'pubsub.*' "$work/absent.log")"
