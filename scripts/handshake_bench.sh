#!/usr/bin/env bash
# TLS handshakes per second per core on the server, full and resumed, with an ECDSA
# P-256 and an RSA-2048 certificate, side by side in one run: a plain wsreactor and one
# native wss:// wsreactor per key, all pinned to core 0; `wsreactor load --churn` (8
# slots of connect, handshake, upgrade, one echo, close) pinned to core 1, its report
# giving the server's CPU per cycle (`--server-pid`). Rounds interleave the setups, the
# order alternating. A TLS cycle's CPU less the plain cycle's in the same round is the
# TLS handshake's own (and its records' and close_notify's); its inverse is the
# handshakes a core would make per second.
#
# Usage: scripts/handshake_bench.sh [--rounds R] [--seconds S] [--features F] [--groups 'G...']
#   --rounds R     rounds (default 3)
#   --seconds S    seconds of each measurement (default 5)
#   --features F   cargo features of the release build, e.g. aws-lc (aws-lc-rs for ring:
#                  its post-quantum hybrid group X25519MLKEM768)
#   --groups 'G'   key exchange groups to measure each wss:// setup with, one after the
#                  other (`load --tls-group`), e.g. 'X25519 X25519MLKEM768'; default: the
#                  load's own offer (X25519 first)
# Prints one JSON line per measurement after a stamp line.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 seconds=5 features='' groups=(default)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a count}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs seconds}; shift 2 ;;
    --features) features=${2:?--features needs a feature}; shift 2 ;;
    --groups) read -r -a groups <<<"${2:?--groups needs group names}"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

cargo build --release --quiet ${features:+--features "$features"}
bin=./target/release/wsreactor
# shellcheck source=scripts/tls_lib.sh
source scripts/tls_lib.sh
start_pinned plain
for key in ec rsa; do
  make_cert "$key" "$key"
  start_pinned "$key" --tls-cert "$tmp/$key.pem" --tls-key "$tmp/$key.key"
done

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) $(uname -r) $(nproc) cores;" \
  "rounds=$rounds seconds=$seconds features=${features:-none} groups=${groups[*]}"
# server-mode-group
setups=(plain)
for key in ec rsa; do
  for mode in full resumed; do
    for group in "${groups[@]}"; do setups+=("$key-$mode-$group"); done
  done
done
for round in $(seq "$rounds"); do
  order=("${setups[@]}")
  if [ $((round % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#setups[@]} - 1; i >= 0; i--)); do order+=("${setups[i]}"); done
  fi
  for setup in "${order[@]}"; do
    IFS=- read -r server mode group <<<"$setup"
    args=()
    if [ "$server" != plain ]; then
      args=(--tls --ca "$tmp/$server.pem")
      [ "$mode" = resumed ] && args+=(--tls-resume)
      [ "$group" != default ] && args+=(--tls-group "$group")
    fi
    taskset -c 1 "$bin" load --addr "127.0.0.1:${ports[$server]}" --connections 8 --churn \
      --duration "$seconds" --warmup 1 --server-pid "${servers[$server]}" --json \
      "${args[@]}" >"$tmp/run.json" 2>>"$tmp/load.log"
    python3 - "$setup" "$round" "$tmp/run.json" <<'EOF'
import json, sys
setup, round_, path = sys.argv[1:]
r = json.load(open(path))
w, tls = r["workload"], r.get("tls") or {}
print(json.dumps({"setup": setup, "round": int(round_), "cycles": w["ops"], "failed": r["failed"],
                  "server_us_per_cycle": w["server_cpu_us_per_op"],
                  "full": tls.get("full"), "resumed": tls.get("resumed"),
                  "group": tls.get("group"), "version": tls.get("version")}))
EOF
  done
done
