#!/usr/bin/env bash
# Simulated hosts on this machine: Linux network namespaces, each with its own network
# stack and addresses, joined by a bridge that lives in a namespace of its own (so the
# machine's own network never sees their addresses). For tests and benchmarks that need
# more than one host; on real hosts the same commands run over ssh instead.
#
#   scripts/hosts.sh up [SERVERS] [CLIENTS]   create them (default 3 server hosts, 3 client hosts)
#   scripts/hosts.sh down                     remove every namespace of the prefix
#   scripts/hosts.sh exec HOST CMD...         run CMD on HOST (ip netns exec PREFIX-HOST CMD...)
#   scripts/hosts.sh list                     the hosts and their addresses
#
# Hosts, with NET=10.203 by default (a private range, on no wire: it exists only inside
# these namespaces):
#   redis    NET.0.2                the Redis host
#   s1..sN   NET.0.11, NET.0.12...  server hosts
#   c1..cM   NET.(100+i).1-K        client hosts, K addresses each (each source address
#                                   gives 28,232 ports toward one server port)
# Environment: HOSTS_PREFIX (namespace names, default wsr; tests use their own so that
# runs never meet), HOSTS_NET (default 10.203), CLIENT_ADDRS (K, default 4). Needs root
# and iproute2. `down` is safe to run any time; `up` runs `down` first.
set -euo pipefail

PREFIX=${HOSTS_PREFIX:-wsr}
NET=${HOSTS_NET:-10.203}
CLIENT_ADDRS=${CLIENT_ADDRS:-4}
SWITCH="$PREFIX-sw"

usage() { sed -n '7,10p' "$0" | sed 's/^# //' >&2; exit 2; }

# add_host NAME ADDR...: a namespace with loopback up and eth0 on the bridge.
add_host() {
  local name=$1 ns="$PREFIX-$1" n
  shift
  n=$(ls /run/netns 2>/dev/null | grep -c "^$PREFIX-" || true)
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "p$n" netns "$SWITCH" type veth peer name eth0 netns "$ns"
  ip -n "$SWITCH" link set "p$n" master br0 up
  for addr in "$@"; do
    ip -n "$ns" addr add "$addr/16" dev eth0
  done
  ip -n "$ns" link set eth0 up
  # The whole client port range, as on a real load host.
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="32768 60999"
  echo "$name $*"
}

down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
    # Anything still running in a namespace keeps it alive after `ip netns del`: end it.
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  local servers=${1:-3} clients=${2:-3} i k addrs
  [ "$(id -u)" = 0 ] || { echo "hosts.sh: needs root (network namespaces)" >&2; exit 1; }
  command -v ip >/dev/null || { echo "hosts.sh: needs iproute2 (ip)" >&2; exit 1; }
  down
  ip netns add "$SWITCH"
  ip -n "$SWITCH" link add br0 type bridge
  ip -n "$SWITCH" link set br0 up
  add_host redis "$NET.0.2"
  for i in $(seq "$servers"); do add_host "s$i" "$NET.0.$((10 + i))"; done
  for i in $(seq "$clients"); do
    addrs=()
    for k in $(seq "$CLIENT_ADDRS"); do addrs+=("$NET.$((100 + i)).$k"); done
    add_host "c$i" "${addrs[@]}"
  done
}

list() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" | grep -v -- "-sw$" || true); do
    echo "${ns#"$PREFIX"-} $(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | tr '\n' ' ')"
  done
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  list) list ;;
  exec) [ $# -ge 3 ] || usage; host=$2; shift 2; exec ip netns exec "$PREFIX-$host" "$@" ;;
  *) usage ;;
esac
