# shellcheck shell=bash disable=SC2154  # $bin and $work are the sourcing script's
# Sourced after scripts/lib.sh by the scripts that run servers on simulated hosts
# (rooms_hosts.sh, pubsub_faults.sh): their own namespaces (scripts/hosts.sh, three
# server hosts, a Redis host, a client host), a Redis on its host, servers on theirs, and
# the cleanup of all of it on exit or failure. Needs root, iproute2 and redis-server.
# Each background process is started with `ip netns exec` itself, never through a shell
# function: a function run in the background is a subshell, and $! would be that.

[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "$0: needs redis-server (Debian: apt-get install redis-server)" >&2; exit 1; }
export HOSTS_PREFIX="wsrr$$" HOSTS_NET=10.205
NET=$HOSTS_NET
REDIS=$NET.0.2:6379
servers=() redis_pid=

# on HOST CMD...: CMD on HOST, in the foreground.
on() { local host=$1; shift; ip netns exec "$HOSTS_PREFIX-$host" "$@"; }

# stop PID...: SIGTERM, SIGKILL after 5 s, reaped.
stop() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
stop_servers() { stop "${servers[@]}"; servers=(); }
trap 'status=$?; stop_servers; stop $redis_pid; scripts/hosts.sh down; (exit $status); cleanup' EXIT
scripts/hosts.sh up 3 1 >/dev/null

# start_redis: redis-server on its host (CPU 0), once it answers.
start_redis() {
  ip netns exec "$HOSTS_PREFIX-redis" taskset -c 0 redis-server --bind "${REDIS%:*}" \
    --port "${REDIS#*:}" --save '' --appendonly no --protected-mode no --loglevel warning \
    >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do on redis redis-cli -h "${REDIS%:*}" PING >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server did not answer:" >&2; cat "$work/redis.log" >&2; exit 1
}

# ticks PID...: user + system CPU of the processes, in clock ticks (`ip netns exec` and
# taskset exec their program, so these are the servers' and Redis's own pids).
ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# serve HOST ARGS...: a server on HOST (CPU 0), port 9001 of its address; waits until it
# listens.
serve() {
  local host=$1 i=${1#s} log="$work/$1.log"
  shift
  : >"$log"
  ip netns exec "$HOSTS_PREFIX-$host" taskset -c 0 "$bin" serve --listen "$NET.0.$((10 + i)):9001" \
    --stats-interval 0 "$@" 2>>"$log" &
  servers+=($!)
  for _ in $(seq 100); do grep -q 'listening on' "$log" && return; sleep 0.1; done
  echo "server on $host did not start:" >&2; cat "$log" >&2; exit 1
}

# stats HOST FIELD...: the server's /stats fields on HOST, space-separated (0 if absent).
stats() {
  local host=$1 i=${1#s}
  shift
  on "$host" curl -s --max-time 10 "http://$NET.0.$((10 + i)):9001/stats" \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print(*(s.get(k, 0) for k in sys.argv[1:]))' "$@"
}

# chat_load SERVERS ARGS...: `wsreactor load` from client host c1 (CPU 1), its members
# dealt in turn to server hosts s1..SERVERS (1 or 3; the first connection, a chat's
# sender, on s1), then ARGS.
chat_load() {
  local spread=$1 also=()
  shift
  [ "$spread" = 3 ] && also=(--also-addr "$NET.0.12:9001,$NET.0.13:9001")
  taskset -c 1 "$bin" load --addr "$NET.0.11:9001" "${also[@]}" \
    --hosts "c1=$NET.101.1-$NET.101.4" --remote "ip netns exec $HOSTS_PREFIX-{host} taskset -c 1" "$@"
}
