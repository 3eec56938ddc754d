#!/usr/bin/env bash
# The connection-scaling benchmark: far more than 65,535 concurrent WebSocket
# connections to ONE server port, each verified with an echo, and what they cost.
#
#   scripts/scale.sh [OPTIONS] [CONNECTIONS]        (default 100000)
#
# Options (one command line: every setting is a flag):
#   --hold S            seconds to hold once all are established (default 60; or $HOLD)
#   --echo-every S      each connection echoes this often while held (default 60; 0 = only
#                       the verification echo; or $ECHO_EVERY)
#   --rate R            connection attempts per second (default: as fast as the handshakes
#                       stay quick)
#   --out DIR           report directory (default scale-results)
#   --server-args ARGS  extra options for `wsreactor serve` (one string, split on spaces)
#   --load-args ARGS    extra options for `wsreactor load` (one string, split on spaces)
#   --tls               wss:// end to end (below)
#   --deflate           permessage-deflate: `serve --deflate` and `load --deflate` (below)
#   --deflate-window B  also `serve --deflate-window B` (9-15; implies --deflate)
#
# --deflate: every connection negotiates permessage-deflate; the load offers no context
# takeover either way, so each message is compressed on its own and neither end keeps a
# zlib stream per connection. Warm each connection up with --load-args '--warmup-bytes
# 64KiB' (text echoed before the hold) so that what a session costs once it has talked
# is measured, not a fresh connection. The report says deflate was used.
#
# --tls: a throwaway self-signed P-256 certificate for 127.0.0.1 is made (openssl) in the
# work directory, the server is started with it (--tls-cert/--tls-key) and the load
# trusts it (--tls --ca). The report then says TLS (version, cipher suite, key exchange
# group) and gives each end's CPU per connection over the ramp: the handshakes, TLS and
# WebSocket, and the verification echo.
#
# The defaults carry a million connections on this project's two-core machine: one echo
# per connection a minute is 16,700 echoes a second at a million (every 10 s, as before,
# was 100,000 a second: both cores and then some), and a hold of one period echoes every
# connection once while all are open.
#
# Takes the server's worker count, the client's processes and source addresses from
# `wsreactor limits --json --connections N`, starts the server, runs `wsreactor load`,
# samples the evidence while every connection is held, prints a report and writes it as
# JSON and as one self-contained HTML page with per-second charts (the load generator's
# --timeline, and server RSS, server CPU and kernel socket memory sampled once a second
# by scripts/scale_sample.py; rendered by scripts/scale_report.py). Every process it starts is stopped on exit, Ctrl-C or
# failure. Targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '/^#   scripts\/scale.sh/,/^# --tls:/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-2}"
}
# Settings that were environment variables before the flags: refused, not ignored, so
# that an old command line does not silently run with the defaults.
for v in RATE OUT SERVER_ARGS LOAD_ARGS; do
  [ -z "${!v+x}" ] || { echo "scale.sh: $v is now a flag (see --help)" >&2; exit 2; }
done
# The command as typed, for the report's stamp (HOLD and ECHO_EVERY may still come from
# the environment, so they are part of it).
command=scripts/scale.sh
for arg in "$@"; do
  case $arg in
    *[!A-Za-z0-9_./:=,+-]* | '') command+=" ${arg@Q}" ;;
    *) command+=" $arg" ;;
  esac
done
for v in HOLD ECHO_EVERY; do
  [ -n "${!v:-}" ] && command="$v=\"${!v}\" $command"
done
HOLD=${HOLD:-60}
ECHO_EVERY=${ECHO_EVERY:-60}
RATE=
OUT=scale-results
server_extra=()
load_extra=()
tls=false
deflate=false
deflate_window=
N=100000
while [ $# -gt 0 ]; do
  case $1 in
    --hold) HOLD=${2:?--hold needs seconds}; shift 2 ;;
    --echo-every) ECHO_EVERY=${2:?--echo-every needs seconds}; shift 2 ;;
    --rate) RATE=${2:?--rate needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --server-args) read -r -a server_extra <<<"${2?--server-args needs a string}"; shift 2 ;;
    --load-args) read -r -a load_extra <<<"${2?--load-args needs a string}"; shift 2 ;;
    --tls) tls=true; shift ;;
    --deflate) deflate=true; shift ;;
    --deflate-window) deflate_window=${2:?--deflate-window needs bits}; deflate=true; shift 2 ;;
    -h | --help) usage 0 ;;
    -*) echo "scale.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) N=$1; shift ;;
  esac
done
for v in HOLD ECHO_EVERY; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "scale.sh: ${v,,} must be whole seconds, not ${!v}" >&2; exit 2; }
done
[ -z "$deflate_window" ] || [[ "$deflate_window" =~ ^(9|1[0-5])$ ]] || { echo "scale.sh: --deflate-window must be 9 to 15, not $deflate_window" >&2; exit 2; }
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -gt 0 ] || { echo "scale.sh: CONNECTIONS must be a positive number, not $N (see --help)" >&2; exit 2; }

# The evidence needs these: without them the counts and charts would be empty, not wrong
# in a way anyone would see.
tools="ss pgrep"
$tls && tools="$tools openssl"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "scale.sh needs $tool (Debian: iproute2, procps, openssl)" >&2; exit 1; }
done
cargo build --release --quiet
bin=./target/release/wsreactor

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# --- sizing ---------------------------------------------------------------------------
# One source of truth: `wsreactor limits --connections N` sizes the run (server workers
# and load processes from RLIMIT_NOFILE less a descriptor reserve, source addresses
# from the ephemeral port range, each at most a quarter full); this script only reads it.
"$bin" limits --json --connections "$N" >"$work/limits.json"
sizing=$(python3 - "$work/limits.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["sizing"]
# -1: fs.file-max unknown (every field must print, or the ones after it would shift).
free = r["file_max"] - (r["file_nr"] or 0) if r.get("file_max") else -1
print(s["server_workers"], s["load_procs"], s["sources"], s["source_count"],
      s["ports_per_source"], s["max_per_source"], s["per_process"], s["fd_reserve"],
      s["descriptors_needed"], free, r["nofile"]["hard"],
      r["port_range"]["low"], r["port_range"]["high"])
PY
)
read -r workers procs source_range sources ports per_source per_process reserve \
  need_fds file_free hard port_lo port_hi <<<"$sizing"
if [ "$file_free" -ge 0 ] && [ "$need_fds" -gt "$file_free" ]; then
  echo "warning: $N connections need about $need_fds descriptors (server + client), fs.file-max leaves $file_free" >&2
fi

echo "== wsreactor scale: $N connections"
echo "   server: $workers worker processes x ~$per_process connections (RLIMIT_NOFILE hard $hard, $reserve reserved)"
echo "   client: $procs processes, source addresses $source_range ($sources x $ports ephemeral ports each, at most $per_source used)"

# --- TLS ------------------------------------------------------------------------------
if $tls; then
  # CA:FALSE: webpki refuses a CA certificate as the server's own (CaUsedAsEndEntity),
  # and openssl's self-signed certificates are CAs unless told otherwise.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.log" \
    || { cat "$work/openssl.log" >&2; exit 1; }
  server_extra+=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  load_extra=(--tls --ca "$work/cert.pem" "${load_extra[@]}")
  echo "   TLS: a self-signed P-256 certificate for 127.0.0.1 ($work/cert.pem)"
fi

# --- permessage-deflate -----------------------------------------------------------------
if $deflate; then
  server_extra+=(--deflate ${deflate_window:+--deflate-window "$deflate_window"})
  load_extra=(--deflate "${load_extra[@]}")
  echo "   deflate: permessage-deflate on every connection${deflate_window:+, server --deflate-window $deflate_window}"
fi

# --- server ---------------------------------------------------------------------------
start_server --workers "$workers" --idle-timeout 0 --ping-interval 0 "${server_extra[@]}"
port=${addr##*:}
host=${addr%:*}
# The supervisor says "listening on" once every worker accepts: take the baseline now.
# pgrep's status 1 is "no children" (one worker runs in the supervisor's process); any
# other failure ends the run.
server_pids() {
  local workers_found
  workers_found=$(pgrep -P "$server_pid") || [ $? -eq 1 ] || { echo "pgrep failed" >&2; return 1; }
  echo "$server_pid" $workers_found
}
found=$(server_pids | wc -w)
if [ "$workers" -gt 1 ] && [ "$found" -ne $((workers + 1)) ]; then
  echo "found $((found - 1)) of the server's $workers workers" >&2
  exit 1
fi
rss_total() {
  local total=0 pid kb pids
  pids=${1:-$(server_pids)} || return 1
  for pid in $pids; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $((total * 1024))
}
sockstat_tcp() { awk -v f="$1" '$1 == "TCP:" { for (i = 2; i < NF; i += 2) if ($i == f) print $(i + 1) }' /proc/net/sockstat; }
page_size=$(getconf PAGESIZE)
rss_before=$(rss_total)
tcp_mem_before=$(sockstat_tcp mem)
slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
slab_before=$(slab_kib)

# --- load -----------------------------------------------------------------------------
load_args=(load --addr "$addr" --connections "$N" --sources "$source_range" --procs "$procs"
  --hold "$HOLD" --echo-every "$ECHO_EVERY" --timeline "$work/timeline.jsonl" --json)
[ -n "$RATE" ] && load_args+=(--rate "$RATE")
load_args+=("${load_extra[@]}")
echo "   running: $bin ${load_args[*]}"
started=$(date +%s.%N)
"$bin" "${load_args[@]}" >"$work/load.json" 2>"$work/load.log" &
load_pid=$!
python3 scripts/scale_sample.py "$server_pid" "$load_pid" "$work/samples.jsonl" &
sampler_pid=$!

# The load generator's timeline says, each second, how many connections it holds: all
# N are up when it says so (the OS count is taken next, with ss). If some fail, sample
# once the count has stopped growing for a while (the load generator is then holding
# what it has). Not sockstat's TCP count: other programs' sockets come and go in it.
timeline_field() { tail -n1 "$work/timeline.jsonl" 2>/dev/null | grep -o "\"$1\":[0-9]*" | cut -d: -f2 || true; }
established_at=
best=0 still=0
while kill -0 "$load_pid" 2>/dev/null; do
  held=$(timeline_field established)
  held=${held:-0}
  # And none still pending: a --warmup-bytes warm-up runs between the 101 and the
  # verification echo, and its messages in flight are not what an idle connection holds.
  if [ "$held" -ge "$N" ] && [ "$(timeline_field pending)" = 0 ]; then
    established_at=$(date +%s.%N)
    break
  fi
  if [ "$held" -gt "$best" ]; then
    best=$held still=0
  elif [ "$best" -gt 0 ] && [ $((still += 1)) -ge 20 ]; then
    echo "   connections stopped growing at $best; sampling what is held" >&2
    break
  fi
  sleep 0.5
done

# --- evidence, sampled while every connection is held ----------------------------------
ss_established=0 distinct_pairs=0 source_count=0 max_per_source=0 rss_during=0 load_rss_during=0
tcp_mem_during=$tcp_mem_before sockets_used=0 slab_during=$slab_before
: >"$work/peers"
if kill -0 "$load_pid" 2>/dev/null; then
  sleep 2  # let the verification echoes settle
  rss_during=$(rss_total)
  # The load generator and its workers (pgrep's status 1: no workers, one process).
  load_pids="$load_pid $(pgrep -P "$load_pid" || true)"
  load_rss_during=$(rss_total "$load_pids")
  tcp_mem_during=$(sockstat_tcp mem)
  slab_during=$(slab_kib)
  sockets_used=$(awk '$1 == "sockets:" {print $3}' /proc/net/sockstat)
  # At a million, ss walks two million sockets for seconds: at the lowest priority, so
  # that the echoes of the hold it runs in go first. The counting waits for the end.
  # Filtered on the address too: another program's sockets on the same port number at
  # another local address must not count.
  nice -n 19 ss -Htn state established "( src $host and sport = :$port )" >"$work/peers"
fi

load_status=0
wait "$load_pid" || load_status=$?
load_pid=
finished=$(date +%s.%N)
# The sampler stops cleanly on SIGTERM (exit 0); any other end (a crash) fails the run,
# since its charts and figures would be missing behind an OK.
sampler_status=0
kill -TERM "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" || sampler_status=$?
sampler_pid=
if [ "$sampler_status" -ne 0 ] || ! [ -s "$work/samples.jsonl" ]; then
  echo "the sampler (scripts/scale_sample.py) failed (exit $sampler_status) or sampled nothing" >&2
  exit 1
fi
awk '{print $4}' "$work/peers" >"$work/peer_addrs"
ss_established=$(wc -l <"$work/peer_addrs")
distinct_pairs=$(sort -u "$work/peer_addrs" | wc -l)
sed 's/:[0-9]*$//' "$work/peer_addrs" | sort | uniq -c | sort -rn >"$work/per_source"
source_count=$(wc -l <"$work/per_source")
max_per_source=$(awk 'NR == 1 {print $1}' "$work/per_source")
max_per_source=${max_per_source:-0}
if ! [ -s "$work/load.json" ]; then
  echo "the load generator wrote no report (exit $load_status):" >&2
  tail -20 "$work/load.log" >&2
  exit 1
fi

# --- report ---------------------------------------------------------------------------
mkdir -p "$OUT"
report="$OUT/scale-$N-$(date -u +%Y%m%dT%H%M%SZ).json"
ok=false
[ "$load_status" -eq 0 ] && [ "$ss_established" -ge "$N" ] && ok=true
SCALE_COMMAND=$command python3 - "$work/load.json" "$report" "$work/timeline.jsonl" "$work/samples.jsonl" <<PY
import json, math, os, platform, subprocess, sys, time
load = json.load(open(sys.argv[1]))
def lines(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except OSError:
        return []
# One row per second: the load generator's timeline and the samples, by Unix second.
start = math.floor($started)
rows = {}
for r in lines(sys.argv[3]):
    row = rows.setdefault(r["t"], {"t": r["t"]})
    for k in ("established", "pending", "handshakes", "verified", "echoes", "failed", "closed"):
        row[k] = r[k]
    for name, key in (("handshake", "handshake_us"), ("echo", "echo_rtt_us")):
        for q in ("p50", "p99"):
            row[f"{name}_{q}_us"] = r[key][q]
for r in lines(sys.argv[4]):
    rows.setdefault(r["t"], {"t": r["t"]}).update(r)
timeline = [dict(rows[t], elapsed=t - start) for t in sorted(rows) if t >= start]
hold_start = $started - start + load["ramp_secs"]
hold_end = hold_start + $HOLD
in_hold = [r.get("echo_p99_us") for r in timeline
           if r["elapsed"] >= hold_start and r["elapsed"] + 1 <= hold_end]
n = $N
established = $ss_established
# CPU over the ramp (start to every connection verified), each end, per connection: the
# handshakes (TCP, TLS if any, WebSocket) and the verification echo. By the sampler's
# whole seconds, up to the one the ramp ends in (so a second of the hold's start may be
# in it: meaningful for ramps of many seconds); host_cpu says whether the cores bound it.
ramp = [r for r in timeline if r["elapsed"] <= math.ceil($started - start + load["ramp_secs"])]
def per_conn(key):
    total = sum(r.get(key) or 0 for r in ramp)
    return round(total * 1e6 / load["verified"], 1) if load["verified"] else None
ramp_cpu = {"server_us_per_connection": per_conn("server_cpu"),
            "load_us_per_connection": per_conn("load_cpu"),
            "host_cores_busy_avg": round(sum(r.get("host_cpu") or 0 for r in ramp) / len(ramp), 2) if ramp else None,
            "cpus": os.cpu_count()}
rss_delta = $rss_during - $rss_before
kernel_delta = ($tcp_mem_during - $tcp_mem_before) * $page_size
slab_delta = ($slab_during - $slab_before) * 1024
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
report = {
    "command": os.environ["SCALE_COMMAND"],
    "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime($started)),
    "ok": "$ok" == "true",
    "sizing": json.load(open("$work/limits.json"))["sizing"],
    "machine": {
        "kernel": platform.release(), "cpus": os.cpu_count(),
        "mem_total_kib": int(open("/proc/meminfo").readline().split()[1]),
        "rustc": sh("rustc --version"), "wsreactor": "$(version_stamp)",
        "nofile_hard": $hard, "ip_local_port_range": [$port_lo, $port_hi],
    },
    "requested": n,
    "server": {"address": "$addr", "port": $port, "workers": $workers,
               "rss_bytes_before": $rss_before, "rss_bytes_during": $rss_during,
               "rss_bytes_per_connection": rss_delta / established if established else None},
    "os": {"established_on_port": established, "distinct_client_pairs": $distinct_pairs,
           "source_addresses": $source_count, "max_ports_from_one_source": $max_per_source,
           "ports_per_source_pair": $ports,
           "tcp_socket_buffer_bytes": kernel_delta, "sockets_used": $sockets_used,
           "kernel_slab_bytes": slab_delta,
           "kernel_slab_bytes_per_socket": slab_delta / (2 * established) if established else None},
    "time_to_establish_secs": round($established_at - $started, 2) if "$established_at" else None,
    "total_secs": round($finished - $started, 2),
    "load": load,
    # The load's RSS over every one of its processes while all are held, per connection:
    # an upper bound (each process's own baseline, a few MiB, is in it).
    "load_rss_bytes_during": $load_rss_during,
    "load_rss_bytes_per_connection": $load_rss_during / established if established else None,
    "tls": load.get("tls"),
    "deflate": {"window_bits": int("$deflate_window") if "$deflate_window" else None,
                "payload": load.get("payload"), "warmup_bytes": load.get("warmup_bytes")}
               if load.get("deflate") else None,
    "ramp_cpu": ramp_cpu,
    "hold": {"secs": $HOLD, "echo_every": $ECHO_EVERY,
             "start_elapsed": round(hold_start, 2), "end_elapsed": round(hold_end, 2),
             # Every second's p99 bounds the p99 of the seconds together.
             "echo_p99_worst_second_us": max((v for v in in_hold if v is not None), default=None)},
    "baseline": {"rss_bytes": $rss_before, "slab_bytes": $slab_before * 1024,
                 "tcp_mem_bytes": $tcp_mem_before * $page_size},
    "timeline": timeline,
}
json.dump(report, open(sys.argv[2], "w"), indent=2)

def pct(h, k):
    v = (h or {}).get(k)
    return f"{v / 1000:.2f} ms" if isinstance(v, (int, float)) else "n/a"
L = load
print()
print(f"  server port                         {report['server']['address']}  (one port, {$workers} SO_REUSEPORT workers)")
print(f"  established on that port (ss)       {established:,}")
print(f"  distinct client (address, port)     {$distinct_pairs:,}")
print(f"  client source addresses             {$source_count}, at most {$max_per_source:,} ports from one (range allows {$ports:,})")
if report["tls"]:
    t = report["tls"]
    print(f"  TLS                                 {t['version']} {t['cipher_suite']} {t['group']}"
          f" ({t.get('full', 0):,} full handshakes, {t.get('resumed', 0):,} resumed)")
if report["deflate"]:
    d = report["deflate"]
    print(f"  permessage-deflate                  no context takeover offered; server window {d['window_bits'] or 'shared mode'},"
          f" {d['payload']} payload, {d['warmup_bytes']:,} bytes of warm-up per connection")
if established:
    print(f"  server RSS                          {$rss_during / 2**20:,.1f} MiB in all, {rss_delta / established:,.1f} B per connection")
    print(f"  load RSS                            {$load_rss_during / 2**20:,.1f} MiB in all, {$load_rss_during / established:,.1f} B per connection (an upper bound)")
    print(f"  kernel slab memory (/proc/meminfo)  {slab_delta / 2**20:,.1f} MiB for {2 * established:,} sockets"
          f" (both ends), {slab_delta / (2 * established):,.0f} B per socket")
    print(f"  kernel socket buffers (sockstat)    {kernel_delta / 2**20:,.1f} MiB")
print(f"  time to establish all               {report['time_to_establish_secs']} s")
print(f"  ramp CPU per connection             server {ramp_cpu['server_us_per_connection']} µs, load {ramp_cpu['load_us_per_connection']} µs"
      f" (host {ramp_cpu['host_cores_busy_avg']} of {ramp_cpu['cpus']} cores busy on average)")
print(f"  load: established / verified        {L['established']:,} / {L['verified']:,} of {L['requested']:,}"
      f" ({L['processes']} client processes, ramp {L['ramp_secs']:.1f} s)")
print(f"  load: echoes verified (all rounds)  {L['echoes']:,}")
print(f"  load: closed cleanly                {L['closed_clean']:,}")
print(f"  load: failed                        {L['failed']:,} {L['failures'] or ''}")
for name in ("handshake_us", "echo_rtt_us", "hold_echo_rtt_us"):
    h = L[name]
    if not h.get("count"):
        print(f"  {name:<35} n/a (none measured)")
        continue
    print(f"  {name:<35} p50 {pct(h,'p50')}  p99 {pct(h,'p99')}  p999 {pct(h,'p999')}  max {pct(h,'max')}")
hp = report["hold"]["echo_p99_worst_second_us"]
print(f"  hold: the worst second's echo p99   {pct({'v': hp}, 'v')}")
print(f"\n  report: {sys.argv[2]}")
PY
python3 scripts/scale_report.py "$report" "${report%.json}.html"
echo "  charts: ${report%.json}.html"

if [ "$load_status" -ne 0 ] || [ "$ss_established" -lt "$N" ]; then
  echo "FAILED: load exit $load_status, $ss_established of $N established on the port" >&2
  tail -5 "$work/load.log" >&2
  exit 1
fi
echo "OK: $N connections on one port, every one echo-verified"
