#!/usr/bin/env bash
# (start_server's arguments are the server's extra flags; this script passes none.)
# shellcheck disable=SC2119
# The attack probe: starts a wsreactor server on 127.0.0.1 (default flags, an ephemeral
# port) and measures how it holds up against two denial-of-service patterns, with the
# clients of scripts/attack.py. A measurement, not a test: it prints figures and exits
# nonzero only on its own errors.
#
#   scripts/attack.sh [--bin PATH] [--nofile N] [--mode one-shot|reconnect|both]
#                     [slots|flood|all] [attack.py options for that scenario]
#
# slots  a slowloris that takes every descriptor slot: 20 established echo connections,
#        then (server's RLIMIT_NOFILE + 500) connections from 127.0.0.2, 127.0.0.3, ...
#        that send half a request head and stall; newcomers from 127.0.0.1 time their
#        handshake (10 over 10 s, 15 s timeout), one asks GET /stats; the established ones
#        must still echo. --mode: attackers that give up once closed (one-shot), that
#        reconnect at once at up to 2,000/s in all (reconnect), or one run of each (both,
#        the default), each against a fresh server. About 40 s a mode.
# flood  memory after floods of half-sent messages: 300 clients each send a frame header
#        declaring 16 MiB and 8 MiB of it, then stall; server VmRSS before, peak (100 ms
#        samples) and 10 s after closing, three floods against the same server. Up to
#        about 2 minutes.
# all    slots (both modes), then flood; no attack.py options.
#
# --bin PATH   the server binary (default target/release/wsreactor, built if absent)
# --nofile N   run the server under `prlimit --nofile=N:N` (it raises its soft limit to
#              the hard one; the default is the machine's, 20,000 here): a smaller slowloris.
# Options after the scenario go to `scripts/attack.py SCENARIO` (see its --help), e.g.
# `slots --spread 30 --newcomers 15`, `flood --floods 1 --clients 100`.
#
# Every process it starts (server, probe, the probe's attacker processes) is stopped on
# exit, Ctrl-C or failure. Targets 127.0.0.0/8 only.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '/^# The attack probe/,/^set -e/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

bin=target/release/wsreactor
bin_given=
nofile=
mode=both
scenario=
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) [ $# -ge 2 ] || usage; bin=$2; bin_given=1; shift 2 ;;
    --nofile) [ $# -ge 2 ] || usage; nofile=$2; shift 2 ;;
    --mode) [ $# -ge 2 ] || usage; mode=$2; shift 2 ;;
    -h | --help) usage ;;
    slots | flood | all)
      [ -z "$scenario" ] || usage
      scenario=$1; shift ;;
    *)
      [ -n "$scenario" ] || { echo "unknown option $1 (scenario options come after the scenario)" >&2; usage; }
      extra+=("$1"); shift ;;
  esac
done
scenario=${scenario:-all}
case "$mode" in one-shot | reconnect | both) ;; *) echo "--mode is one-shot, reconnect or both" >&2; exit 2 ;; esac
if [ -n "$nofile" ] && ! { [[ "$nofile" =~ ^[0-9]+$ ]] && [ "$nofile" -ge 64 ]; }; then
  echo "--nofile needs a number >= 64" >&2; exit 2
fi
[ "$scenario" != all ] || [ ${#extra[@]} -eq 0 ] || { echo "'all' takes no attack.py options" >&2; exit 2; }

if [ ! -x "$bin" ]; then
  [ -z "$bin_given" ] || { echo "no executable at $bin" >&2; exit 2; }
  echo "== building $bin (cargo build --release)" >&2
  cargo build --release --quiet
fi

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
[ -z "$nofile" ] || server_wrap=(prlimit "--nofile=$nofile:$nofile" --)

echo "== wsreactor attack probe: $scenario"
echo "   $(date -u +%Y-%m-%dT%H:%M:%SZ), tree $(version_stamp), kernel $(uname -r), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   binary $bin ($("$bin" --version 2>/dev/null || echo 'no --version'), sha256 $(sha256sum "$bin" | cut -c1-12))"
echo "   server: ${server_wrap[*]:+${server_wrap[*]} }$bin serve --listen 127.0.0.1:0 (default flags)"

# probe SCENARIO ARGS...: runs attack.py against the running server; its exit status.
probe() {
  local status=0
  python3 scripts/attack.py "$1" --addr "$addr" --server-pid "$server_pid" "${@:2}" &
  load_pid=$!
  wait "$load_pid" || status=$?
  load_pid=
  return "$status"
}

# server_warnings: how many warnings the server logged, and the last two.
server_warnings() {
  local n
  n=$(grep -ac ' WARN ' "$work/server.log" || true)
  echo "   server log: $n warnings (at most one a second is logged)"
  grep -a ' WARN ' "$work/server.log" | tail -n 2 | cut -c1-220 | sed 's/^/     /' || true
}

run_slots() {
  local m modes=()
  case "$mode" in both) modes=(one-shot reconnect) ;; *) modes=("$mode") ;; esac
  for m in "${modes[@]}"; do
    start_server
    local args=()
    [ "$m" = one-shot ] || args=(--reconnect)
    probe slots "${args[@]}" "${extra[@]}"
    server_warnings
    stop_server
  done
}

run_flood() {
  start_server
  probe flood "${extra[@]}"
  server_warnings
  stop_server
}

case "$scenario" in
  slots) run_slots ;;
  flood) run_flood ;;
  all) run_slots; run_flood ;;
esac
