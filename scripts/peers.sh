#!/usr/bin/env bash
# The comparison: the workloads servers are compared by, run against wsreactor and
# against peer echo servers, side by side, with the server's CPU time per operation.
#
#   scripts/peers.sh [ROUNDS]        (default 3)
#
# Peers (benches/peers/, each its own crate, workspace and Cargo.lock, dependencies from
# crates.io): fastwebsockets 0.10 and tokio-tungstenite (each on tokio's current-thread
# runtime, so one thread like wsreactor), and a minimal mio echo (one read per readable
# event, all replies of a read in one writev, frames unmasked in place and streamed
# through, no validation): the floor the others are measured against.
#
# Workloads, each measured by `wsreactor load` (the client for every server) with
# --server-pid over DURATION seconds after WARMUP seconds:
#   small      100 connections x 32 B, 1 message in flight each   (--echo-window 1)
#   pipelined  100 connections x 32 B, 16 in flight each          (--echo-window 16)
#   64k        10 connections x 64 KiB, 1 in flight each          (--echo-window 1)
#   churn      64 slots looping connect, 101, one echo, close     (--churn)
# Every server gets a fresh process for every measurement, pinned to core SERVER_CPU
# with taskset; the load is pinned to LOAD_CPU. Rounds are interleaved (for each round,
# each workload, each server in turn: A B C D, A B C D, ...), so that a change in the
# machine's load falls on every server alike. Then each server holds IDLE idle
# connections (verified with one echo) and its RSS growth per connection is taken.
#
# Prints server CPU per operation (median of the rounds, and its ratio to wsreactor's),
# throughput, bytes per idle connection and a machine stamp; writes the same, with every
# run's full report, as JSON (and the table as text) to OUT. Every process it starts is
# stopped on exit, Ctrl-C or failure. Servers listen on 127.0.0.1 only.
#
# Environment: ROUNDS, DURATION (5), WARMUP (1), IDLE (10000; 0 skips it), OUT
# (peers-results), PEERS (servers to run, default "wsreactor fastwebsockets
# tokio-tungstenite mio-echo"; wsreactor first, as the ratios' base), WORKLOADS (default
# "small pipelined 64k churn"), SERVER_CPU (0), LOAD_CPU (1). A PEERS entry NAME=PATH runs
# another wsreactor binary (another build of it) under NAME.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-${ROUNDS:-3}}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
IDLE=${IDLE:-10000}
OUT=${OUT:-peers-results}
PEERS=${PEERS:-wsreactor fastwebsockets tokio-tungstenite mio-echo}
WORKLOADS=${WORKLOADS:-small pipelined 64k churn}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -gt 0 ] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }
[[ "$IDLE" =~ ^[0-9]+$ ]] || { echo "IDLE must be a number" >&2; exit 2; }
read -r -a peer_list <<<"$PEERS"
# A PEERS entry NAME=PATH is another build of wsreactor (e.g. with another allocator),
# run with wsreactor's flags under NAME.
declare -A variant_bin=()
names=()
for p in "${peer_list[@]}"; do
  if [[ "$p" == *=* ]]; then
    variant_bin[${p%%=*}]=${p#*=}
    [ -x "${p#*=}" ] || { echo "no executable at ${p#*=}" >&2; exit 2; }
  fi
  names+=("${p%%=*}")
done
peer_list=("${names[@]}")
is_wsreactor() { [ "$1" = wsreactor ] || [ -n "${variant_bin[$1]:-}" ]; }
read -r -a workload_list <<<"$WORKLOADS"
for w in "${workload_list[@]}"; do
  case "$w" in small | pipelined | 64k | churn) ;; *) echo "unknown workload $w" >&2; exit 2 ;; esac
done

# --- build --------------------------------------------------------------------------
echo "== building wsreactor and the peers (release)" >&2
cargo build --release --quiet
bin=./target/release/wsreactor
peer_bin() { echo "target/peers/release/peer-$1"; }
for peer in "${peer_list[@]}"; do
  is_wsreactor "$peer" && continue
  [ -f "benches/peers/$peer/Cargo.toml" ] || { echo "no peer named $peer in benches/peers/" >&2; exit 2; }
  cargo build --release --quiet --locked --manifest-path "benches/peers/$peer/Cargo.toml" \
    --target-dir target/peers
done

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
mkdir -p "$work/runs"

# The pinning prefixes (taskset execs the command, so `$!` is the process itself).
pin_to() { if command -v taskset >/dev/null && [ "$1" != none ]; then echo "taskset -c $1"; fi; }
read -r -a pin_server <<<"$(pin_to "$SERVER_CPU")"
read -r -a pin_load <<<"$(pin_to "$LOAD_CPU")"

# start_peer NAME: starts that server on 127.0.0.1:0 pinned to SERVER_CPU; sets
# $server_pid and $addr once it says "listening on".
start_peer() {
  local name=$1 log="$work/server.log"
  # A fresh log: the previous server's "listening on" line must not be read again.
  rm -f "$log"
  if is_wsreactor "$name"; then
    "${pin_server[@]}" "${variant_bin[$name]:-$bin}" serve --listen 127.0.0.1:0 --stats-interval 0 2>"$log" &
  else
    "${pin_server[@]}" "$(peer_bin "$name")" --listen 127.0.0.1:0 2>"$log" &
  fi
  server_pid=$!
  wait_listening "$log" "$name"
}

workload_args() {
  case "$1" in
    small) echo "--connections 100 --echo-window 1 --message-size 32" ;;
    pipelined) echo "--connections 100 --echo-window 16 --message-size 32" ;;
    64k) echo "--connections 10 --echo-window 1 --message-size 65536" ;;
    churn) echo "--connections 64 --churn" ;;
    *) echo "unknown workload $1" >&2; exit 2 ;;
  esac
}

rss_bytes() { echo $(( $(awk '/^VmRSS:/ {print $2}' "/proc/$1/status") * 1024 )); }
established() { ss -Htn state established "( src ${addr%:*} and sport = :${addr##*:} )" | wc -l; }

# --- the rounds -----------------------------------------------------------------------
runs=$((ROUNDS * ${#workload_list[@]} * ${#peer_list[@]}))
echo "== $ROUNDS rounds x ${#workload_list[@]} workloads x ${#peer_list[@]} servers = $runs runs of ${WARMUP}+${DURATION} s (server on core $SERVER_CPU, load on core $LOAD_CPU)" >&2
n=0
for round in $(seq "$ROUNDS"); do
  for w in "${workload_list[@]}"; do
    read -r -a wargs <<<"$(workload_args "$w")"
    for peer in "${peer_list[@]}"; do
      n=$((n + 1))
      start_peer "$peer"
      out="$work/runs/$round-$w-$peer.json"
      # The load's exit status says whether every echo was verified; a failed run is
      # kept (its report says why) and shown as failed in the table.
      "${pin_load[@]}" "$bin" load --addr "$addr" --procs 1 --json --warmup "$WARMUP" \
        --duration "$DURATION" --server-pid "$server_pid" "${wargs[@]}" \
        >"$out" 2>"$work/load.log" || {
        echo "   ($peer $w round $round: the load run failed; see its report)" >&2
        tail -n 3 "$work/load.log" >&2 || true
      }
      stop_server
      python3 - "$out" "$n" "$runs" "$round" "$w" "$peer" >&2 <<'PY' || true
import json, sys
path, n, runs, rnd, w, peer = sys.argv[1:]
try:
    r = json.load(open(path)); wl = r["workload"]
    print(f"   [{n}/{runs}] round {rnd} {w:<9} {peer:<18} {wl['server_cpu_us_per_op'] or 0:8.3f} us/op"
          f"  {wl['ops_per_sec']:>10.0f} ops/s  server {100 * (wl['server_cpu_util'] or 0):3.0f}% "
          f" {'ok' if r['ok'] else 'FAILED'}")
    if not r["ok"]:
        why = {k: r[k] for k in ["failures", "verified", "attempted", "close_timeout", "close_unclean",
                                  "interrupted"]}
        why.update({k: wl.get(k) for k in ["measured", "ops", "server_error"]})
        print(f"     why: {json.dumps(why)}")
except Exception as e:
    print(f"   [{n}/{runs}] round {rnd} {w} {peer}: no report ({e})")
PY
    done
  done
done

# --- bytes per idle connection ----------------------------------------------------------
if [ "$IDLE" -gt 0 ]; then
  echo "== idle connections: $IDLE per server" >&2
  for peer in "${peer_list[@]}"; do
    start_peer "$peer"
    sleep 0.2
    before=$(rss_bytes "$server_pid")
    "${pin_load[@]}" "$bin" load --addr "$addr" --json --connections "$IDLE" --hold 4 \
      >"$work/runs/idle-$peer.json" 2>"$work/load.log" &
    load_pid=$!
    held=0
    for _ in $(seq 600); do
      if [ "$(established)" -ge "$IDLE" ]; then held=1; break; fi
      kill -0 "$load_pid" 2>/dev/null || break
      sleep 0.1
    done
    sleep 1
    after=$(rss_bytes "$server_pid")
    open=$(established)
    wait "$load_pid" || true
    load_pid=
    stop_server
    echo "{\"server\": \"$peer\", \"connections\": $open, \"held_all\": $held, \"rss_before\": $before, \"rss_after\": $after}" \
      >"$work/runs/idle-$peer.rss.json"
    echo "   $peer: $open connections, RSS $before -> $after bytes" >&2
  done
fi

# --- report -------------------------------------------------------------------------------
mkdir -p "$OUT"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
versions() { # crate versions from a peer's lock file
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
pkgs = dict(re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text))
print(" ".join(f"{k} {pkgs[k]}" for k in ["fastwebsockets", "tokio-tungstenite", "tungstenite", "hyper", "tokio", "mio"] if k in pkgs))
PY
}
{
  echo "kernel=$(uname -r)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "cores=$(nproc)"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "rustc=$(rustc -V)"
  echo "wsreactor=$(version_stamp)"
  for peer in "${peer_list[@]}"; do
    is_wsreactor "$peer" && continue
    echo "peer.$peer=$(versions "benches/peers/$peer/Cargo.lock")"
  done
} >"$work/stamp.txt"

python3 - "$work" "$OUT/peers-$stamp" "$ROUNDS" "$DURATION" "$WARMUP" "$IDLE" "$SERVER_CPU" "$LOAD_CPU" \
  "${#peer_list[@]}" "${peer_list[@]}" "${workload_list[@]}" <<'PY'
import glob, json, os, statistics, sys

work, base, rounds, duration, warmup, idle, server_cpu, load_cpu, npeers = sys.argv[1:10]
peers = sys.argv[10:10 + int(npeers)]
workloads = sys.argv[10 + int(npeers):]
titles = {
    "small": "small echo: 100 conns x 32 B, 1 in flight",
    "pipelined": "pipelined: 100 conns x 32 B, 16 in flight",
    "64k": "64 KiB echo: 10 conns",
    "churn": "handshake cycle: 64 at once",
}
stamp = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(work, "stamp.txt")))

runs = []
for rnd in range(1, int(rounds) + 1):
    for w in workloads:
        for p in peers:
            path = os.path.join(work, "runs", f"{rnd}-{w}-{p}.json")
            try:
                report = json.load(open(path))
            except Exception as e:
                report = {"ok": False, "error": f"no report: {e}"}
            runs.append({"round": rnd, "workload": w, "server": p, "report": report})

def figures(w, p, key):
    out = []
    for r in runs:
        if r["workload"] == w and r["server"] == p and r["report"].get("ok"):
            v = r["report"]["workload"].get(key)
            if v is not None:
                out.append(v)
    return out

summary = {}
for w in workloads:
    summary[w] = {}
    for p in peers:
        cpu = figures(w, p, "server_cpu_us_per_op")
        rate = figures(w, p, "ops_per_sec")
        util = figures(w, p, "server_cpu_util")
        p99 = [r["report"]["workload"]["latency_us"]["p99"] for r in runs
               if r["workload"] == w and r["server"] == p and r["report"].get("ok")]
        summary[w][p] = {
            "ok_runs": len(cpu),
            "runs": sum(1 for r in runs if r["workload"] == w and r["server"] == p),
            "server_cpu_us_per_op": cpu,
            "server_cpu_us_per_op_median": statistics.median(cpu) if cpu else None,
            "ops_per_sec_median": statistics.median(rate) if rate else None,
            "server_cpu_util_median": statistics.median(util) if util else None,
            "latency_p99_us_median": statistics.median(p99) if p99 else None,
        }
    base_cpu = summary[w].get(peers[0], {}).get("server_cpu_us_per_op_median")
    for p in peers:
        m = summary[w][p]["server_cpu_us_per_op_median"]
        summary[w][p]["ratio_to_" + peers[0]] = m / base_cpu if m and base_cpu else None

idle_rows = {}
for p in peers:
    path = os.path.join(work, "runs", f"idle-{p}.rss.json")
    if os.path.exists(path):
        d = json.load(open(path))
        n = d["connections"]
        d["bytes_per_connection"] = (d["rss_after"] - d["rss_before"]) / n if n else None
        idle_rows[p] = d

def fmt_us(v):
    return "-" if v is None else (f"{v:.2f} µs" if v < 10 else f"{v:.1f} µs")

lines = []
lines.append(f"Server CPU time per operation (utime + stime of the server process; median of {rounds} "
             f"interleaved rounds; ratio to {peers[0]}):")
lines.append("")
head = "| server | " + " | ".join(titles[w] for w in workloads) + " | bytes per idle connection |"
lines.append(head)
lines.append("|---|" + "---:|" * (len(workloads) + 1))
for p in peers:
    cells = []
    for w in workloads:
        s = summary[w][p]
        m = s["server_cpu_us_per_op_median"]
        ratio = s["ratio_to_" + peers[0]]
        cell = fmt_us(m)
        if m is not None and p != peers[0] and ratio is not None:
            cell += f" ({ratio:.2f}x)"
        if s["ok_runs"] < s["runs"]:
            cell += f" [{s['runs'] - s['ok_runs']} failed]"
        cells.append(cell)
    idle_cell = "-"
    if p in idle_rows and idle_rows[p]["bytes_per_connection"] is not None:
        d = idle_rows[p]
        idle_cell = f"{d['bytes_per_connection']:,.0f}"
        if not d["held_all"]:
            idle_cell += f" ({d['connections']} held)"
    lines.append(f"| {p} | " + " | ".join(cells) + f" | {idle_cell} |")
lines.append("")
lines.append("Throughput (operations per second, median) and the server's core use (median):")
lines.append("")
lines.append("| server | " + " | ".join(w for w in workloads) + " |")
lines.append("|---|" + "---:|" * len(workloads))
for p in peers:
    cells = []
    for w in workloads:
        s = summary[w][p]
        r, u = s["ops_per_sec_median"], s["server_cpu_util_median"]
        cells.append("-" if r is None else f"{r:,.0f}/s ({100 * (u or 0):.0f}%)")
    lines.append(f"| {p} | " + " | ".join(cells) + " |")
lines.append("")
lines.append("Every round, server CPU µs per operation:")
for w in workloads:
    for p in peers:
        vals = " ".join(f"{v:.3f}" for v in summary[w][p]["server_cpu_us_per_op"])
        lines.append(f"  {w:<10} {p:<18} {vals}")
lines.append("")
lines.append(f"Machine: {stamp['cpu']} ({stamp['cores']} cores), Linux {stamp['kernel']}, {stamp['rustc']}, "
             f"{stamp['date']}; wsreactor {stamp['wsreactor']}")
for k, v in stamp.items():
    if k.startswith("peer."):
        lines.append(f"  {k[5:]}: {v}")
lines.append(f"Each run: {warmup} s warm-up, {duration} s measured; server on core {server_cpu}, "
             f"load (wsreactor load) on core {load_cpu}; idle: {idle} connections per server.")
text = "\n".join(lines) + "\n"
print(text)
open(base + ".txt", "w").write(text)
json.dump({
    "stamp": stamp,
    "rounds": int(rounds), "duration_secs": float(duration), "warmup_secs": float(warmup),
    "server_cpu": server_cpu, "load_cpu": load_cpu,
    "servers": peers, "workloads": workloads,
    "summary": summary, "idle": idle_rows, "runs": runs,
}, open(base + ".json", "w"), indent=1)
print(f"written: {base}.json and {base}.txt", file=sys.stderr)
PY
