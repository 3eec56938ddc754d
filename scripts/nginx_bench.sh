#!/usr/bin/env bash
# Native wss:// against what users run today: Debian's nginx terminating TLS in front of
# plain wsreactor (the README's proxy block, plus `listen ... ssl` and the same key
# exchange group on both sides: X25519), side by side in one run. Server side: nginx
# (one process: master_process off, worker_processes 1), the plain wsreactor behind it
# and the native wss:// wsreactor, all pinned to core 0; `wsreactor load --tls --ca`
# pinned to core 1. Every figure is the server side's: RSS and CPU time (utime + stime,
# /proc) summed over nginx and its wsreactor, against the native server's.
#
# Usage: scripts/nginx_bench.sh [--key ec|rsa] [--rounds R] [--seconds S] N
#   N             idle connections held by each setup in turn (at most 9,000: nginx needs
#                 two descriptors per connection and the hard limit here is 20,000)
#   --key         the certificate's key: ec (P-256, default) or rsa (RSA-2048)
#   --rounds R    rounds of the CPU measurements, interleaved (default 3)
#   --seconds S   seconds of each CPU measurement (default 5)
# Per round and setup: small echo (32 connections, one 32-byte message in flight each,
# `load --echo-window 1`) and churn (8 slots of connect, full TLS handshake, upgrade, one
# echo, close: `load --churn`). Prints one JSON line per measurement after a stamp line.
set -euo pipefail
cd "$(dirname "$0")/.."

key=ec rounds=3 seconds=5
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --key) key=${2:?--key needs ec or rsa}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a count}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs seconds}; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "unknown flag: $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
N=$1
[ "$N" -le 9000 ] || { echo "N is at most 9000 (nginx: two descriptors per connection)" >&2; exit 2; }
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "needs nginx (Debian: apt-get install nginx)" >&2; exit 1; }

cargo build --release --quiet
bin=./target/release/wsreactor
# shellcheck source=scripts/tls_lib.sh
source scripts/tls_lib.sh
make_cert cert "$key"
start_pinned plain
upstream_port=${ports[plain]} upstream_pid=${servers[plain]}
start_pinned native --tls-cert "$tmp/cert.pem" --tls-key "$tmp/cert.key"
native_port=${ports[native]} native_pid=${servers[native]}

# The README's "Behind nginx" block, on a TLS listener. No access log: wsreactor keeps
# none per connection either.
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 19000;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 19000; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port ssl;
        ssl_certificate $tmp/cert.pem;
        ssl_certificate_key $tmp/cert.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ecdh_curve X25519;
        location / {
            proxy_pass http://127.0.0.1:$upstream_port;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
EOF
taskset -c 0 "$nginx" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
  >"$tmp/nginx/stdout.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break
  sleep 0.1
done

ports=([nginx]=$nginx_port [native]=$native_port)
servers=([nginx]="$nginx_pid $upstream_pid" [native]=$native_pid)
rss() { # pids: summed VmRSS in bytes
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"))); done
  echo $((total * 1024))
}
cpu() { # pids: summed utime + stime in clock ticks
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}
tick=$(getconf CLK_TCK)
load() { # setup, args...: the load's JSON report
  local setup=$1
  shift
  taskset -c 1 "$bin" load --addr "127.0.0.1:${ports[$setup]}" --tls --ca "$tmp/cert.pem" \
    --json "$@" 2>>"$tmp/load.log"
}
field() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) key $key $("$nginx" -v 2>&1 | cut -d/ -f2)" \
  "$(openssl version | cut -d' ' -f1-2) $(uname -r) $(nproc) cores; N=$N rounds=$rounds seconds=$seconds"

# Idle: RSS growth of the setup's processes while the load holds N verified connections
# (sampled once its timeline says all are up, and the verification echoes have settled).
for setup in nginx native; do
  # shellcheck disable=SC2086
  before=$(rss ${servers[$setup]})
  : >"$tmp/timeline.jsonl"
  load "$setup" --connections "$N" --hold 6 --timeline "$tmp/timeline.jsonl" >"$tmp/idle.json" &
  load_pid=$!
  during=
  while kill -0 "$load_pid" 2>/dev/null; do
    held=$(tail -n1 "$tmp/timeline.jsonl" 2>/dev/null | grep -o '"established":[0-9]*' | cut -d: -f2 || true)
    if [ "${held:-0}" -ge "$N" ]; then
      sleep 2
      # shellcheck disable=SC2086
      during=$(rss ${servers[$setup]})
      break
    fi
    sleep 0.5
  done
  wait "$load_pid" || true
  ok=$(field 'r["ok"]' <"$tmp/idle.json")
  if [ -z "$during" ] || [ "$ok" != True ]; then
    echo "$setup: the hold failed:" >&2
    cat "$tmp/idle.json" "$tmp/load.log" >&2
    exit 1
  fi
  # Per process, too: nginx's own share and its wsreactor's.
  parts=
  # shellcheck disable=SC2086
  for pid in ${servers[$setup]}; do parts="$parts, \"rss_$pid\": $(rss "$pid")"; done
  echo "{\"setup\": \"$setup\", \"measure\": \"idle\", \"connections\": $N, \"rss_before\": $before," \
    "\"rss_during\": $during, \"bytes_per_connection\": $(((during - before) / N))$parts}"
  sleep 3
done

# CPU: interleaved rounds, the setups' order alternating.
for round in $(seq "$rounds"); do
  order=(nginx native)
  [ $((round % 2)) -eq 0 ] && order=(native nginx)
  for measure in echo churn; do
    for setup in "${order[@]}"; do
      case $measure in
        echo) args=(--connections 32 --echo-window 1) ;;
        churn) args=(--connections 8 --churn) ;;
      esac
      # The whole run's CPU: the warm-up's operations are not counted, so there is none;
      # the 32 connections' own handshakes add well under 1% to the echo's.
      # shellcheck disable=SC2086
      c0=$(cpu ${servers[$setup]})
      load "$setup" "${args[@]}" --duration "$seconds" --warmup 0 >"$tmp/run.json"
      # shellcheck disable=SC2086
      c1=$(cpu ${servers[$setup]})
      ops=$(field 'r["workload"]["ops"]' <"$tmp/run.json")
      failed=$(field 'r["failed"]' <"$tmp/run.json")
      python3 -c 'import json,sys; s,m,r,o,f,c,t = sys.argv[1:]; c=int(c)/int(t); o=int(o)
print(json.dumps({"setup": s, "measure": m, "round": int(r), "ops": o, "failed": int(f),
  "server_cpu_s": c, "server_us_per_op": c / o * 1e6 if o else None}))' \
        "$setup" "$measure" "$round" "$ops" "$failed" $((c1 - c0)) "$tick"
    done
  done
done
