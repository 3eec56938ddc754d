#!/usr/bin/env bash
# The chat fan-out benchmark: MEMBERS connections in one room of one server process,
# one of them sending MESSAGES numbered messages; every member must receive every one.
#
#   scripts/chat.sh [MEMBERS] [MESSAGES]      (default 10000 members, 1000 messages)
#
# Environment: RUNS (runs against the same server, default 3), WINDOW (messages in
# flight, default 16), RATE (messages per second, default unpaced), SIZE (bytes per
# message, default 32), OUT (report directory, default scale-results), SERVER_ARGS and
# LOAD_ARGS (extra options for `serve` and `load`).
#
# Starts `wsreactor serve --listen 127.0.0.1:0`, and for each run reads /stats before,
# samples it while the load runs (peak RSS), runs `wsreactor load --chat`, reads /stats
# after, and checks the server's message counters against the load generator's
# deliveries. Prints every run and the medians; writes them as JSON. Stops the server
# on exit, Ctrl-C or failure. Targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${1:-10000}
MESSAGES=${2:-1000}
RUNS=${RUNS:-3}
WINDOW=${WINDOW:-16}
RATE=${RATE:-}
SIZE=${SIZE:-32}
OUT=${OUT:-scale-results}
read -r -a server_extra <<<"${SERVER_ARGS:-}"
read -r -a load_extra <<<"${LOAD_ARGS:-}"
for n in "$MEMBERS" "$MESSAGES" "$RUNS"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "usage: $0 [MEMBERS] [MESSAGES]" >&2; exit 2; }
done

cargo build --release --quiet
bin=./target/release/wsreactor

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

start_server --stats-interval 0 "${server_extra[@]}"
stats() { curl -s --max-time 30 "http://$addr/stats"; }
# The server's CPU time (user + system), in clock ticks: the fan-out's cost, which the
# other processes on a shared machine slow down less than they do the wall clock.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

echo "== wsreactor chat fan-out: $MEMBERS members, $MESSAGES messages of $SIZE bytes, window $WINDOW${RATE:+, $RATE messages/s}, $RUNS runs"
echo "   server: $bin serve --listen 127.0.0.1:0 (pid $server_pid, $addr), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
failed=0
for run in $(seq "$RUNS"); do
  stats >"$work/before-$run.json"
  cpu_ticks >"$work/cpu-before-$run"
  load_args=(load --addr "$addr" --connections "$MEMBERS" --chat "run-$run"
    --chat-messages "$MESSAGES" --chat-window "$WINDOW" --message-size "$SIZE" --json)
  [ -n "$RATE" ] && load_args+=(--chat-rate "$RATE")
  load_args+=("${load_extra[@]}")
  [ "$run" = 1 ] && echo "   load:   $bin ${load_args[*]}"
  "$bin" "${load_args[@]}" >"$work/load-$run.json" 2>"$work/load-$run.log" &
  load_pid=$!
  # The peak: the server's RSS while every member is in the room.
  : >"$work/during-$run.jsonl"
  while kill -0 "$load_pid" 2>/dev/null; do
    stats | tr -d '\n' >>"$work/during-$run.jsonl" || true
    echo >>"$work/during-$run.jsonl"
    sleep 0.5
  done
  status=0
  wait "$load_pid" || status=$?
  load_pid=
  stats >"$work/after-$run.json"
  cpu_ticks >"$work/cpu-after-$run"
  [ "$status" -eq 0 ] || { failed=1; echo "   run $run: load exit $status" >&2; tail -5 "$work/load-$run.log" >&2; }
  echo "$(cut -d' ' -f1 /proc/loadavg)" >"$work/loadavg-$run"
done

mkdir -p "$OUT"
report="$OUT/chat-$MEMBERS-$(date -u +%Y%m%dT%H%M%SZ).json"
WSREACTOR_VERSION=$(version_stamp) python3 - "$work" "$RUNS" "$report" "$(getconf CLK_TCK)" <<'PY'
import json, os, statistics, sys
work, runs, out, hz = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rows, problems = [], []
for r in range(1, runs + 1):
    try:
        load = json.load(open(f"{work}/load-{r}.json"))
    except (OSError, ValueError):
        problems.append(f"run {r}: no report from the load generator")
        continue
    before = json.load(open(f"{work}/before-{r}.json"))
    after = json.load(open(f"{work}/after-{r}.json"))
    during = []
    for line in open(f"{work}/during-{r}.jsonl"):
        try:
            during.append(json.loads(line))
        except ValueError:
            pass
    chat = load["chat"]
    delta = lambda k: after[k] - before[k]
    row = {
        "run": r,
        "ok": load["ok"],
        "members": chat["members"],
        "messages_sent": chat["messages_sent"],
        "deliveries_expected": chat["deliveries_expected"],
        "deliveries_received": chat["deliveries_received"],
        "deliveries_missing": chat["deliveries_missing"],
        "secs": chat["secs"],
        "deliveries_per_sec": chat["deliveries_per_sec"],
        "messages_per_sec": chat["messages_per_sec"],
        "latency_p50_us": chat["delivery_us"]["p50"],
        "latency_p99_us": chat["delivery_us"]["p99"],
        "latency_max_us": chat["delivery_us"]["max"],
        "rss_before": before["rss_bytes"],
        "rss_peak": max([d["rss_bytes"] for d in during] + [after["rss_bytes"]]),
        "rss_after": after["rss_bytes"],
        "server_messages_in": delta("messages_in_total"),
        "server_messages_out": delta("messages_out_total"),
        "server_slow_members_dropped": delta("slow_members_dropped_total"),
        "rooms_after": after["rooms"],
        "load_average": float(open(f"{work}/loadavg-{r}").read()),
    }
    ticks = int(open(f"{work}/cpu-after-{r}").read()) - int(open(f"{work}/cpu-before-{r}").read())
    row["server_cpu_secs"] = ticks / hz
    row["server_cpu_us_per_delivery"] = (
        ticks / hz * 1e6 / row["deliveries_received"] if row["deliveries_received"] else None
    )
    row["server_counters_agree"] = (
        row["server_messages_in"] == row["messages_sent"]
        and row["server_messages_out"] == row["deliveries_received"]
        and row["server_slow_members_dropped"] == 0
    )
    if not row["ok"] or not row["server_counters_agree"]:
        problems.append(f"run {r}: ok={row['ok']} server counters agree={row['server_counters_agree']}")
    rows.append(row)

mib = lambda b: f"{b / 2**20:.1f}"
print()
print(f"  {'run':>3} {'deliveries/s':>12} {'messages/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
      f" {'delivered':>16} {'RSS MiB before/peak/after':>26} {'server in/out':>18}"
      f" {'CPU us/deliv':>12} {'load':>5}")
for x in rows:
    print(f"  {x['run']:>3} {x['deliveries_per_sec']:>12,.0f} {x['messages_per_sec']:>10,.1f}"
          f" {x['latency_p50_us'] / 1000:>8.1f} {x['latency_p99_us'] / 1000:>8.1f}"
          f" {x['deliveries_received']:>8,}/{x['deliveries_expected']:<8,}"
          f" {mib(x['rss_before']):>8}/{mib(x['rss_peak'])}/{mib(x['rss_after']):<8}"
          f" {x['server_messages_in']:>7,}/{x['server_messages_out']:<10,}"
          f" {x['server_cpu_us_per_delivery'] or 0:>12.2f} {x['load_average']:>5.1f}")
medians = {}
if rows:
    for k in ("deliveries_per_sec", "messages_per_sec", "latency_p50_us", "latency_p99_us",
              "rss_before", "rss_peak", "rss_after", "server_cpu_us_per_delivery"):
        medians[k] = statistics.median(x[k] for x in rows)
    print(f"  median: {medians['deliveries_per_sec']:,.0f} deliveries/s, "
          f"{medians['messages_per_sec']:,.1f} messages/s, latency p50 "
          f"{medians['latency_p50_us'] / 1000:.1f} ms p99 {medians['latency_p99_us'] / 1000:.1f} ms, "
          f"RSS {mib(medians['rss_before'])} MiB before, {mib(medians['rss_peak'])} peak, "
          f"{mib(medians['rss_after'])} after, server CPU "
          f"{medians['server_cpu_us_per_delivery']:.2f} us per delivery")
json.dump({"machine": {"kernel": os.uname().release, "cpus": os.cpu_count(),
                       "wsreactor": os.environ["WSREACTOR_VERSION"]},
           "runs": rows, "medians": medians, "problems": problems},
          open(out, "w"), indent=2)
print(f"\n  report: {out}")
for p in problems:
    print(f"  PROBLEM: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
[ "$failed" -eq 0 ] || exit 1
echo "OK: every member received every message in every run, and the server's counters agree"
