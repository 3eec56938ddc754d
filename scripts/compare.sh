#!/usr/bin/env bash
# Echo throughput of two wsreactor binaries, side by side:
#
#   scripts/compare.sh BIN_A BIN_B [ROUNDS]        (ROUNDS default 5)
#
# Runs benches/echo_throughput.rs (fresh servers pinned to core 0 with taskset, the client
# on core 1, 100 connections, 32-byte binary messages) for each echo window (messages in
# flight per connection: 1, then 16 pipelined), ROUNDS times, interleaving A and B:
#   MODE=alternate (the default): each round is one run with both servers up and the load
#     switching between them every ECHO_SLICE (0.5) s, A B A B ..., for ECHO_SECS (10) s,
#     so each is measured for half of it; which one goes first alternates each round.
#     A change in the machine's load then falls on both nearly alike.
#   MODE=runs: each round is a run against A and then one against B (B then A in even
#     rounds), ECHO_SECS (5) s each, a fresh server each.
# Prints every run, then per window the medians of messages/s and of the server's CPU
# microseconds per message for A and B, the ratio B/A of the medians, and the median and
# range of the per-round B/A ratios (their spread is the noise: run A against A to see
# it). A machine stamp (date, kernel, CPU, load, rustc, the binaries' hashes) comes first.
#
# Other work on the machine is the main noise. Before each round the script waits (up to
# QUIET_WAIT seconds, default 120; 0 = never) until other processes use at most QUIET
# cores (default 0.2, sampled over 1 s from /proc/stat); each run reports what other
# processes (and the hypervisor's steal) used during its window ("other"), and the medians
# are printed over all rounds and again over the quiet ones (other at most QUIET).
#
# Environment: MODE, WINDOWS (default "1 16"), QUIET, QUIET_WAIT, and for the bench (see
# its header): ECHO_CONNS (100), ECHO_SECS, ECHO_SLICE, ECHO_WARMUP (1), ECHO_SIZE (32),
# ECHO_SERVER_CPU (0), ECHO_CLIENT_CPU (1), ECHO_SERVER_ARGS. ECHO_BENCH: a bench
# executable built earlier (skips building it here, e.g. while this tree does not
# compile). RAW: also write the raw results to this file.
# Exits non-zero if any run failed (a failed run is reported and left out of the medians).
# Targets 127.0.0.1 only; every server is started and stopped by the bench, by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ] || [ $# -gt 3 ]; then echo "usage: $0 BIN_A BIN_B [ROUNDS]" >&2; exit 2; fi
bin_a=$(realpath "$1")
bin_b=$(realpath "$2")
rounds=${3:-5}
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then echo "ROUNDS must be a positive integer" >&2; exit 2; fi
for b in "$bin_a" "$bin_b"; do
  [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "taskset is missing (apt-get install util-linux)" >&2; exit 2; }
read -r -a windows <<<"${WINDOWS:-1 16}"
mode=${MODE:-alternate}
case $mode in
  alternate) export ECHO_SECS=${ECHO_SECS:-10} ECHO_SLICE=${ECHO_SLICE:-0.5} ;;
  runs) export ECHO_SECS=${ECHO_SECS:-5} ;;
  *) echo "MODE is alternate or runs" >&2; exit 2 ;;
esac
export ECHO_CONNS=${ECHO_CONNS:-100} ECHO_WARMUP=${ECHO_WARMUP:-1} ECHO_SIZE=${ECHO_SIZE:-32}
quiet=${QUIET:-0.2}
quiet_wait=${QUIET_WAIT:-120}
hz=$(getconf CLK_TCK)

bench=${ECHO_BENCH:-}
if [ -z "$bench" ]; then
  echo "building benches/echo_throughput.rs ..."
  bench=$(cargo bench --bench echo_throughput --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "echo_throughput" and m.get("executable"):
        print(m["executable"])') || true
  [ -n "$bench" ] || { echo "building the bench failed: cargo bench --bench echo_throughput --no-run" >&2; exit 1; }
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT

echo "== machine: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs"
echo "   date: $(date -u +%Y-%m-%dT%H:%M:%SZ); load average: $(cut -d' ' -f1-3 /proc/loadavg); $(rustc -V 2>/dev/null || echo 'rustc: n/a')"
echo "   A: $bin_a (sha256 $(sha256sum "$bin_a" | cut -c1-12), $(date -u -r "$bin_a" +%Y-%m-%dT%H:%M:%SZ))"
echo "   B: $bin_b (sha256 $(sha256sum "$bin_b" | cut -c1-12), $(date -u -r "$bin_b" +%Y-%m-%dT%H:%M:%SZ))"
echo "   bench: $bench"
echo "   $ECHO_CONNS connections, $ECHO_SIZE B binary messages, windows ${windows[*]}, $ECHO_WARMUP s warm-up + $ECHO_SECS s measured per run, $rounds rounds; servers on CPU ${ECHO_SERVER_CPU:-0}, client on CPU ${ECHO_CLIENT_CPU:-1}"
if [ "$mode" = alternate ]; then
  echo "   mode: alternate (both servers up, the load switching every $ECHO_SLICE s; each measured for half the window)"
else
  echo "   mode: runs (one server per run, A and B in turn)"
fi

failed=0
host_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# wait_quiet: until other processes use at most $quiet cores over 1 s, or $quiet_wait s.
wait_quiet() {
  local start=$SECONDS b0 b1
  while [ $((SECONDS - start)) -lt "$quiet_wait" ]; do
    b0=$(host_busy); sleep 1; b1=$(host_busy)
    awk -v d=$((b1 - b0)) -v hz="$hz" -v q="$quiet" 'BEGIN { exit !(d / hz <= q) }' && return 0
  done
  [ "$quiet_wait" -gt 0 ] && echo "   (the machine stayed busy for $quiet_wait s: running anyway)"
  return 0
}
record() { # LABEL ROUND WINDOW RESULT-LINE
  echo "$1 round=$2 $4" >>"$results"
  printf '   round %d  W=%-3s %s  %s\n' "$2" "$3" "$1" "$(sed -E 's/.*msgs_per_sec=([0-9.]+).*server_us_per_msg=([0-9.]+).*server_util=([0-9.]+).*client_util=([0-9.]+).*other_util=([0-9.]+).*/\1 msgs\/s  server \2 us\/msg  (util: server \3, client \4, other \5)/' <<<"$4")"
}
fail() { # WHAT OUTPUT
  failed=$((failed + 1))
  echo "   $1 FAILED:" >&2
  # shellcheck disable=SC2001
  sed 's/^/      /' <<<"$2" >&2
}
run_one() { # LABEL BIN WINDOW ROUND
  local out
  if out=$(WSREACTOR_BIN=$2 ECHO_WINDOW=$3 "$bench" --bench 2>&1); then
    record "$1" "$4" "$3" "$(grep '^RESULT server=0 ' <<<"$out" | tail -n1)"
  else
    fail "round $4  W=$3 $1" "$out"
  fi
}
run_both() { # LABEL0 BIN0 LABEL1 BIN1 WINDOW ROUND: one run, the load alternating
  local out
  if out=$(WSREACTOR_BIN=$2 WSREACTOR_BIN_B=$4 ECHO_WINDOW=$5 "$bench" --bench 2>&1); then
    record "$1" "$6" "$5" "$(grep '^RESULT server=0 ' <<<"$out" | tail -n1)"
    record "$3" "$6" "$5" "$(grep '^RESULT server=1 ' <<<"$out" | tail -n1)"
  else
    fail "round $6  W=$5 $1+$3" "$out"
  fi
}

echo "== runs"
for ((r = 1; r <= rounds; r++)); do
  for w in "${windows[@]}"; do
    wait_quiet
    if [ "$mode" = alternate ]; then
      if ((r % 2)); then
        run_both A "$bin_a" B "$bin_b" "$w" "$r"
      else
        run_both B "$bin_b" A "$bin_a" "$w" "$r"
      fi
    elif ((r % 2)); then
      run_one A "$bin_a" "$w" "$r"; run_one B "$bin_b" "$w" "$r"
    else
      run_one B "$bin_b" "$w" "$r"; run_one A "$bin_a" "$w" "$r"
    fi
  done
done
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${RAW:-}" ]; then cp "$results" "$RAW"; fi

echo "== medians (B/A < 1 for msgs/s, > 1 for us/msg: B is slower; n = runs of A/B)"
python3 - "$results" "$quiet" <<'PY'
import statistics, sys
runs = []
for line in open(sys.argv[1]):
    f = line.split()
    d = dict(kv.split("=", 1) for kv in f[1:] if "=" in kv)
    d["label"] = f[0]
    runs.append(d)
quiet = float(sys.argv[2])
def med(xs):
    return statistics.median(xs) if xs else float("nan")
def table(title, keep):
    print(f"   {title}")
    print(f"   {'W':>3}  {'metric':<16} {'A median':>10} {'B median':>10} {'B/A':>7}   {'per-round B/A: median [min, max]':<34} n")
    for w in sorted({int(r["window"]) for r in runs}):
        sel = [r for r in runs if int(r["window"]) == w]
        by_round = {}
        for r in sel:
            by_round.setdefault(r["round"], []).append(r)
        rounds = {k for k, v in by_round.items() if keep(v)}
        for key, name, fmt in (("msgs_per_sec", "msgs/s", "{:10.0f}"), ("server_us_per_msg", "server us/msg", "{:10.3f}"),
                               ("client_us_per_msg", "client us/msg", "{:10.3f}"), ("other_util", "other (cores)", "{:10.2f}")):
            a = {r["round"]: float(r[key]) for r in sel if r["label"] == "A" and r["round"] in rounds}
            b = {r["round"]: float(r[key]) for r in sel if r["label"] == "B" and r["round"] in rounds}
            if not a or not b:
                print(f"   {w:>3}  {name:<16} {'(none)':>10}")
                continue
            ma, mb = med(list(a.values())), med(list(b.values()))
            ratios = key != "other_util"
            paired = sorted(b[k] / a[k] for k in a if k in b and a[k] > 0)
            pr = f"{med(paired):.3f} [{paired[0]:.3f}, {paired[-1]:.3f}]" if paired and ratios else ""
            ratio = f"{mb / ma:7.3f}" if ma > 0 and ratios else ""
            print(f"   {w:>3}  {name:<16} {fmt.format(ma)} {fmt.format(mb)} {ratio:>7}   {pr:<34} {len(a)}/{len(b)}")
table("all rounds:", lambda v: True)
table(f"quiet rounds only (other processes at most {quiet} cores during both A and B):",
      lambda v: len(v) == 2 and all(float(r["other_util"]) <= quiet for r in v))
PY
if [ "$failed" -gt 0 ]; then
  echo "$failed run(s) FAILED (left out of the medians)" >&2
  exit 1
fi
