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
#   --server COMMAND    benchmark another WebSocket echo server instead (below)
#   --server-procs N    --server: run N copies of COMMAND on the one port (default 1)
#   --load-hosts HOSTS  run the load from these hosts: NAME=A-B,... (`wsreactor load
#                       --hosts`: each NAME's source addresses A-B), an equal share each
#   --remote CMD        how to run a program on a host, {host} its NAME (default
#                       'ssh {host}'; simulated hosts: 'ip netns exec wsr-{host}')
#   --server-host NAME=ADDR  run the server on host NAME too (through --remote),
#                       listening on ADDR, one of its addresses; just ADDR: on this
#                       host, listening on ADDR (where the load hosts reach it)
#   --deflate           permessage-deflate: `serve --deflate` and `load --deflate` (below)
#   --deflate-window B  also `serve --deflate-window B` and `load --deflate-window B`
#                       (9-15; implies --deflate): context takeover offered both ways
#
# --deflate: every connection negotiates permessage-deflate; the load offers no context
# takeover either way, so each message is compressed on its own and neither end keeps a
# zlib stream per connection. With --deflate-window B the load offers context takeover
# with windows of B bits both ways, and both ends keep each connection's last windows. Warm each connection up with --load-args '--warmup-bytes
# 64KiB' (text echoed before the hold) so that what a session costs once it has talked
# is measured, not a fresh connection. The report says deflate was used.
#
# --server 'COMMAND with {PORT}': COMMAND (run as `bash -c "exec COMMAND"`, {PORT}
# replaced by a free port) must start a WebSocket echo server on 127.0.0.1:{PORT}; with
# --server-procs N, N copies share the port, which only a server that sets SO_REUSEPORT
# can do. The server's processes are the COMMAND's and their descendants. The load is
# sized as for wsreactor; the report is the same, with the server's command and name.
#
# A run stops short when established connections stop growing for 10 s or a server
# process exits, and says why with the evidence (descriptors against RLIMIT_NOFILE,
# memory, the load's refusals and timeouts, the exit status and connections dropped):
# `stopped` in the JSON, the summary and the HTML page; it then exits 1.
# scripts/scale_compare.py puts several reports side by side.
#
# --load-hosts: the binary must be at this checkout's path on every host. The report is
# one: the hosts' results and timelines merged by the load generator on this host's
# clock. Server RSS, CPU and the load's RSS and CPU are read from this machine's /proc,
# so they are right when --remote keeps processes on it (ip netns exec); over ssh, run
# this script on the server's host (--server-host ADDR, without NAME=), and the load's
# CPU is each worker's own report (the timeline's load_cpu). With --server-host, the
# socket counts and buffers are the server host's.
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
# by scripts/scale_sample.py; figures computed by scripts/scale_result.py, rendered by
# scripts/scale_report.py). Every process it starts is stopped on exit, Ctrl-C or
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
server_cmd=
server_procs=1
load_hosts=
remote='ssh {host}'
server_host=
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
    --server) server_cmd=${2:?--server needs a command with {PORT\}}; shift 2 ;;
    --server-procs) server_procs=${2:?--server-procs needs a number}; shift 2 ;;
    --load-hosts) load_hosts=${2:?--load-hosts needs NAME=A-B,...}; shift 2 ;;
    --remote) remote=${2:?--remote needs a command prefix}; shift 2 ;;
    --server-host) server_host=${2:?--server-host needs NAME=ADDR}; shift 2 ;;
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
[[ "$server_procs" =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: --server-procs must be a positive number, not $server_procs" >&2; exit 2; }
if [ -n "$server_cmd" ]; then
  [[ "$server_cmd" == *"{PORT}"* ]] || { echo "scale.sh: the --server command must say where to listen: 127.0.0.1:{PORT}" >&2; exit 2; }
  [ ${#server_extra[@]} -eq 0 ] || { echo "scale.sh: --server-args are wsreactor's; put the server's options in its --server command" >&2; exit 2; }
  ! $tls || { echo "scale.sh: --tls runs wsreactor with its own certificate; it does not apply to --server" >&2; exit 2; }
elif [ "$server_procs" -ne 1 ]; then
  echo "scale.sh: --server-procs goes with --server (wsreactor's workers are sized by \`wsreactor limits\`)" >&2; exit 2
fi

# The evidence needs these: without them the counts and charts would be empty, not wrong
# in a way anyone would see.
tools="ss pgrep"
$tls && tools="$tools openssl"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "scale.sh needs $tool (Debian: iproute2, procps, openssl)" >&2; exit 1; }
done
# The report's arithmetic proves itself on a synthetic run first (each figure against
# the raw samples it comes from; the comparison page likewise), so that a wrong figure
# cannot ride on a good run.
checked=$(python3 -m unittest -q tests/scripts/test_scale_result.py tests/scripts/test_scale_compare.py 2>&1) || { echo "$checked" >&2; exit 1; }
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
      s["descriptors_needed"], free, r["nofile"]["hard"])
PY
)
read -r workers procs source_range sources ports per_source per_process reserve \
  need_fds file_free hard <<<"$sizing"
if [ "$file_free" -ge 0 ] && [ "$need_fds" -gt "$file_free" ]; then
  echo "warning: $N connections need about $need_fds descriptors (server + client), fs.file-max leaves $file_free" >&2
fi

server_name=wsreactor
if [ -n "$server_cmd" ]; then
  # The program's name (the first word that is not an assignment or a wrapper's option).
  server_name=$(basename "$(awk '{ for (i = 1; i <= NF; i++) if ($i !~ /=/ && $i !~ /^-/ && $i != "taskset" && $i != "prlimit" && $i != "env") { print $i; exit } }' <<<"$server_cmd")")
  workers=$server_procs
fi
echo "== $server_name scale: $N connections"
if [ -n "$server_cmd" ]; then
  echo "   server: $workers process(es) of: $server_cmd"
else
  echo "   server: $workers worker processes x ~$per_process connections (RLIMIT_NOFILE hard $hard, $reserve reserved)"
fi
if [ -n "$load_hosts" ]; then
  echo "   client: $procs processes or more (an equal number per host) over the hosts $load_hosts (through: $remote)"
else
  echo "   client: $procs processes, source addresses $source_range ($sources x $ports ephemeral ports each, at most $per_source used)"
fi
# on_server CMD...: CMD on the server's host (its sockets, its /proc/net).
on_server=()
if [ -n "$server_host" ] && [ -n "$server_cmd" ]; then
  echo "scale.sh: --server-host runs wsreactor's server; --server runs another here: not both" >&2
  exit 2
fi
if [[ "$server_host" == *=* ]]; then
  read -r -a on_server <<<"${remote//\{host\}/${server_host%%=*}}"
  server_wrap=("${on_server[@]}")
  server_listen=${server_host#*=}:0
  echo "   server host: ${server_host%%=*} ($server_listen, through: ${on_server[*]})"
elif [ -n "$server_host" ]; then
  server_listen=$server_host:0
  echo "   server: this host, on $server_listen"
fi

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
  load_extra=(--deflate ${deflate_window:+--deflate-window "$deflate_window"} "${load_extra[@]}")
  echo "   deflate: permessage-deflate on every connection${deflate_window:+, serve and load --deflate-window $deflate_window}"
fi

# --- server ---------------------------------------------------------------------------
# start_command_server: $server_procs copies of the --server command on one free port;
# $server_pid lists them (lib.sh's cleanup stops each). Returns once the port has a
# listening socket per copy (SO_REUSEPORT gives each its own), or fails with the log of
# a copy that exited (a second copy of a server without SO_REUSEPORT cannot bind).
start_command_server() {
  local i pid cmd listening
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cmd=${server_cmd//\{PORT\}/$port}
  server_pid=
  for i in $(seq "$server_procs"); do
    "${server_wrap[@]}" bash -c "exec $cmd" >"$work/server-$i.log" 2>&1 &
    server_pid+="${server_pid:+ }$!"
  done
  for _ in $(seq 600); do
    listening=$(ss -Hltn "( sport = :$port )" | wc -l)
    [ "$listening" -ge "$server_procs" ] && break
    i=0
    for pid in $server_pid; do
      i=$((i + 1))
      kill -0 "$pid" 2>/dev/null && continue
      echo "server copy $i of $server_procs exited before $server_procs listened on port $port:" >&2
      cat "$work/server-$i.log" >&2
      exit 1
    done
    sleep 0.1
  done
  [ "$listening" -ge "$server_procs" ] || { echo "$listening of $server_procs copies listen on port $port after 60 s" >&2; exit 1; }
  addr=127.0.0.1:$port
}
# The server's processes: each started process and its descendants (wsreactor's
# supervisor and its workers). pgrep's status 1 is "no children"; any other failure ends
# the run.
server_pids() {
  local -a todo all=() more
  local pid kids
  read -r -a todo <<<"$server_pid"
  while [ ${#todo[@]} -gt 0 ]; do
    pid=${todo[0]}
    todo=("${todo[@]:1}")
    all+=("$pid")
    kids=$(pgrep -P "$pid") || [ $? -eq 1 ] || { echo "pgrep failed" >&2; return 1; }
    # pgrep prints one pid a line.
    [ -z "$kids" ] || { mapfile -t more <<<"$kids"; todo+=("${more[@]}"); }
  done
  echo "${all[*]}"
}
if [ -n "$server_cmd" ]; then
  start_command_server
else
  start_server --workers "$workers" --idle-timeout 0 --ping-interval 0 "${server_extra[@]}"
  # The supervisor says "listening on" once every worker accepts: take the baseline now.
  found=$(server_pids | wc -w)
  if [ "$workers" -gt 1 ] && [ "$found" -ne $((workers + 1)) ]; then
    echo "found $((found - 1)) of the server's $workers workers" >&2
    exit 1
  fi
fi
port=${addr##*:}
host=${addr%:*}
rss_total() {
  local total=0 pid kb pids
  pids=${1:-$(server_pids)} || return 1
  for pid in $pids; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $((total * 1024))
}
sockstat_tcp() { "${on_server[@]}" awk -v f="$1" '$1 == "TCP:" { for (i = 2; i < NF; i += 2) if ($i == f) print $(i + 1) }' /proc/net/sockstat; }
page_size=$(getconf PAGESIZE)
rss_before=$(rss_total)
tcp_mem_before=$(sockstat_tcp mem)
slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
slab_before=$(slab_kib)

# --- load -----------------------------------------------------------------------------
load_args=(load --addr "$addr" --connections "$N" --procs "$procs"
  --hold "$HOLD" --echo-every "$ECHO_EVERY" --timeline "$work/timeline.jsonl" --json)
if [ -n "$load_hosts" ]; then
  load_args+=(--hosts "$load_hosts" --remote "$remote")
else
  load_args+=(--sources "$source_range")
fi
[ -n "$RATE" ] && load_args+=(--rate "$RATE")
load_args+=("${load_extra[@]}")
echo "   running: $bin ${load_args[*]}"
# The sampler first: the server's CPU counts from its start, and the load's pid reaches
# it through a file (the load's CPU counts from its birth, so none is missed).
"${on_server[@]}" python3 scripts/scale_sample.py "${server_pid// /,}" "$work/load.pid" "$work/samples.jsonl" &
sampler_pid=$!
sleep 0.5
started=$(date +%s.%N)
"$bin" "${load_args[@]}" >"$work/load.json" 2>"$work/load.log" &
load_pid=$!
echo "$load_pid" >"$work/load.pid"

# The load generator's timeline says, each second, how many connections it holds: all
# N are up when it says so (the OS count is taken next, with ss). The run stops short
# when that count has not grown for 10 s (the evidence is taken, then the load is
# stopped), or when a server process exits (a crash: its status and the connections it
# held are the evidence); scale_result.py says why from what the sampler saw. Not
# sockstat's TCP count: other programs' sockets come and go in it.
timeline_field() { tail -n1 "$work/timeline.jsonl" 2>/dev/null | grep -o "\"$1\":[0-9]*" | cut -d: -f2 || true; }
established_at=
stop_kind=none server_exit_status="" server_exited="" stop_at=""
best=0 still=0 moved=0
while kill -0 "$load_pid" 2>/dev/null; do
  held=$(timeline_field established)
  held=${held:-0}
  verified=$(timeline_field verified)
  # And none still pending: a --warmup-bytes warm-up runs between the 101 and the
  # verification echo, and its messages in flight are not what an idle connection holds.
  if [ "$held" -ge "$N" ] && [ "$(timeline_field pending)" = 0 ]; then
    established_at=$(date +%s.%N)
    break
  fi
  for pid in $server_pid; do
    kill -0 "$pid" 2>/dev/null && continue
    server_exit_status=0
    wait "$pid" || server_exit_status=$?
    server_exited=$pid stop_kind=server_exited stop_at=$(date +%s.%N)
    echo "   the server (pid $pid) exited with status $server_exit_status holding $best connections: stopping the run" >&2
    break 2
  done
  # Progress is a connection established or verified (a warm-up verifies late).
  if [ "$held" -gt "$best" ] || [ "$((held + ${verified:-0}))" -gt "$moved" ]; then
    best=$((held > best ? held : best)) still=0
    moved=$((held + ${verified:-0}))
  elif [ $((still += 1)) -ge 20 ]; then
    stop_kind=stalled stop_at=$(date +%s.%N)
    echo "   connections stopped growing at $best for 10 s: taking the evidence, then stopping the run" >&2
    break
  fi
  sleep 0.5
done
if [ "$stop_kind" = none ] && [ -z "$established_at" ]; then
  stop_kind=load_ended
fi

# --- evidence, sampled while every connection is held ----------------------------------
ss_established=0 distinct_pairs=0 source_count=0 max_per_source=0 rss_during=0 load_rss_during=0
sockets_used=0 slab_during=$slab_before tcp_buffer_server=0 tcp_buffer_client=0
: >"$work/peers"
if kill -0 "$load_pid" 2>/dev/null; then
  [ "$stop_kind" != none ] || sleep 2  # let the verification echoes settle
  rss_during=$(rss_total)
  # The load generator and its workers (pgrep's status 1: no workers, one process).
  load_pids="$load_pid $(pgrep -P "$load_pid" || true)"
  load_rss_during=$(rss_total "$load_pids")
  slab_during=$(slab_kib)
  sockets_used=$("${on_server[@]}" awk '$1 == "sockets:" {print $3}' /proc/net/sockstat)
  # At a million, ss walks two million sockets for seconds: at the lowest priority, so
  # that the echoes of the hold it runs in go first. The counting waits for the end.
  # Filtered on the address too: another program's sockets on the same port number at
  # another local address must not count. With -m: each socket's buffer memory (skmem
  # r + w + f: receive queue, send queue, reserve), summed; the server's end first (the
  # count), then the client's.
  skmem_sum() {
    awk -v peers="$1" '
      /^[^ \t]/ { if (peers != "") print $4 >peers; next }
      /skmem:/ {
        match($0, /skmem:\([^)]*\)/)
        n = split(substr($0, RSTART + 6, RLENGTH - 7), f, ",")
        for (i = 1; i <= n; i++) if (f[i] ~ /^[rwf][0-9]/) bytes += substr(f[i], 2)
      }
      END { print bytes + 0 }'
  }
  tcp_buffer_server=$("${on_server[@]}" nice -n 19 ss -Htnm state established "( src $host and sport = :$port )" | skmem_sum "$work/peers")
  tcp_buffer_client=$("${on_server[@]}" nice -n 19 ss -Htnm state established "( dst $host and dport = :$port )" | skmem_sum "")
fi
# A server that exited as the load ended (the load's last attempts refused at once) is
# the reason, not the load's end.
for pid in $server_pid; do
  [ "$stop_kind" = load_ended ] || break
  kill -0 "$pid" 2>/dev/null && continue
  server_exit_status=0
  wait "$pid" || server_exit_status=$?
  server_exited=$pid stop_kind=server_exited stop_at=$(date +%s.%N)
  echo "   the server (pid $pid) exited with status $server_exit_status" >&2
done
# A run stopped short ends here: the load's report says what it had (it exits 130).
[ "$stop_kind" = none ] || kill -TERM "$load_pid" 2>/dev/null || true

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
# A server that exits in its first second leaves nothing to sample: the crash is the
# finding then, not a failure of the sampler.
if [ "$sampler_status" -ne 0 ] || { ! [ -s "$work/samples.jsonl" ] && [ "$stop_kind" != server_exited ]; }; then
  echo "the sampler (scripts/scale_sample.py) failed (exit $sampler_status) or sampled nothing" >&2
  exit 1
fi
cp "$work/peers" "$work/peer_addrs"
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
log_tail=
if [ -n "$server_cmd" ]; then
  i=1
  for pid in $server_pid; do
    { [ "$pid" = "$server_exited" ] || [ -z "$server_exited" ]; } && break
    i=$((i + 1))
  done
  log_tail=$(tail -n 3 "$work/server-$i.log" 2>/dev/null || true)
elif [ -n "$server_exited" ]; then
  log_tail=$(tail -n 3 "$work/server.log" 2>/dev/null || true)
fi
# What the shell measured goes to scale_result.py as data (run.json, every value a
# string), which computes the figures, writes the JSON report and prints the summary.
python3 -c 'import json, sys; json.dump(dict(a.split("=", 1) for a in sys.argv[2:]), open(sys.argv[1], "w"))' \
  "$work/run.json" command="$command" version="$(version_stamp)" addr="$addr" \
  server_name="$server_name" server_command="$server_cmd" \
  started="$started" finished="$finished" established_at="$established_at" \
  n="$N" hold="$HOLD" echo_every="$ECHO_EVERY" port="$port" workers="$workers" page_size="$page_size" \
  ss_established="$ss_established" distinct_pairs="$distinct_pairs" source_count="$source_count" \
  max_per_source="$max_per_source" rss_before="$rss_before" rss_during="$rss_during" \
  load_rss_during="$load_rss_during" slab_before_kib="$slab_before" slab_during_kib="$slab_during" \
  tcp_mem_before_pages="$tcp_mem_before" sockets_used="$sockets_used" \
  tcp_buffer_server="$tcp_buffer_server" tcp_buffer_client="$tcp_buffer_client" \
  load_status="$load_status" stop_kind="$stop_kind" stop_at="$stop_at" server_exit_status="$server_exit_status" \
  held_at_stop="$best" server_log_tail="$log_tail" deflate_window="$deflate_window"
python3 scripts/scale_result.py "$work" "$report"
python3 scripts/scale_report.py "$report" "${report%.json}.html"
echo "  charts: ${report%.json}.html"

if [ "$load_status" -ne 0 ] || [ "$ss_established" -lt "$N" ]; then
  echo "FAILED: load exit $load_status, $ss_established of $N established on the port (stopped: $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stopped"]["reason"])' "$report"))" >&2
  tail -5 "$work/load.log" >&2
  exit 1
fi
echo "OK: $N connections on one port, every one echo-verified"
