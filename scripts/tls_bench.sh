#!/usr/bin/env bash
# wss:// against ws:// on this machine, server side only, side by side in one run: two
# release servers (one plain, one with a throwaway certificate) pinned to core 0, the
# Python `websockets` client (tests/clients/.venv) pinned to core 1.
# Usage: scripts/tls_bench.sh idle N | echo SECONDS ROUNDS [BYTES] | handshake N ROUNDS
#   KEY=ec (P-256, default) or KEY=rsa (RSA-2048) picks the certificate's key.
# Prints one JSON line per measurement (see scripts/tls_bench.py) after a stamp.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=tests/clients/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
cargo build --release --quiet
bin=./target/release/wsreactor
# shellcheck source=scripts/tls_lib.sh
source scripts/tls_lib.sh
make_cert cert "${KEY:-ec}"
start_pinned plain
start_pinned tls --tls-cert "$tmp/cert.pem" --tls-key "$tmp/cert.key"
plain_port=${ports[plain]} plain_pid=${servers[plain]}
tls_port=${ports[tls]} tls_pid=${servers[tls]}

echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) key ${KEY:-ec} $(uname -r) $(nproc) cores; $*"
taskset -c 1 "$venv/bin/python" scripts/tls_bench.py "$plain_pid" "$plain_port" "$tls_pid" \
  "$tls_port" "$tmp/cert.pem" "$@"
