# Sourced by scripts/scale.sh and scripts/chat.sh: a work directory, the cleanup of the
# processes a run starts (on exit, Ctrl-C, failure), and starting the server.
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

# start_server ARGS...: `serve --listen 127.0.0.1:0 ARGS...`, logging to $work/server.log;
# returns once it says "listening on" (with --workers: once every worker accepts).
start_server() {
  "$bin" serve --listen 127.0.0.1:0 "$@" 2>"$work/server.log" &
  server_pid=$!
  addr=
  for _ in $(seq 600); do
    addr=$(grep -o 'listening on [0-9.:]*' "$work/server.log" | head -n1 | cut -d' ' -f3) || true
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
}
