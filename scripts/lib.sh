# shellcheck shell=bash disable=SC2154  # $bin is the sourcing script's
# Sourced by scripts/scale.sh, chat.sh, dashboard.sh, peers.sh and attack.sh: a work directory,
# the cleanup of the processes a run starts (on exit, Ctrl-C, failure), and starting the server.
# Expects $bin (the wsreactor binary). Sets $work, and $server_pid and $addr through
# start_server; a script that runs the load generator in the background sets $load_pid,
# and one that samples the run in the background sets $sampler_pid.

work=$(mktemp -d)
server_pid=
load_pid=
sampler_pid=
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in $sampler_pid $load_pid $server_pid; do
    # SIGTERM lets the load generator reap its workers and the supervisor stop its own.
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $sampler_pid $load_pid $server_pid; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_listening LOG NAME: waits until the server started as $server_pid writes
# "listening on ADDR" to LOG (with --workers: once every worker accepts) and sets $addr;
# exits with LOG shown if it dies first or takes over 60 s. Only $server_listen's address
# is accepted (127.0.0.1 unless the script set another).
wait_listening() {
  local log=$1 name=$2
  addr=
  for _ in $(seq 600); do
    addr=$(grep -aso 'listening on [0-9.:]*' "$log" | head -n1 | cut -d' ' -f3) || true
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "$name did not start:" >&2; cat "$log" >&2; exit 1; }
  case "$addr" in "${server_listen%:*}":*) ;; *) echo "$name listens on $addr, not ${server_listen%:*}" >&2; exit 1 ;; esac
}

# start_server ARGS...: `serve --listen $server_listen ARGS...` (127.0.0.1:0 unless set),
# logging to $work/server.log; returns once it is listening. A command in the array
# $server_wrap, if set, runs the server (it must exec it, so that $server_pid is the
# server: e.g. prlimit, taskset, ip netns exec).
server_wrap=()
server_listen=127.0.0.1:0
start_server() {
  # Emptied here, not by the child's redirection: the child may open the file after
  # wait_listening has read it, which would then find the previous server's address.
  : >"$work/server.log"
  "${server_wrap[@]}" "$bin" serve --listen "$server_listen" "$@" 2>>"$work/server.log" &
  server_pid=$!
  wait_listening "$work/server.log" "the server"
}

# stop_server: SIGTERM to $server_pid, SIGKILL after 10 s; clears $server_pid, so that a
# script can start another server (and cleanup does not wait on this one again).
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# version_stamp: the build a report describes (a commit, "-dirty" when the tree has
# uncommitted changes).
version_stamp() { git describe --always --dirty 2>/dev/null || echo unknown; }
