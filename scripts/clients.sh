#!/usr/bin/env bash
# Runs wsreactor against real clients that no one here wrote, using the release binary:
#   python   Python `websockets`     (tests/clients/test_websockets_interop.py, pytest)
#   node     Node `ws`               (tests/clients/ws_interop.test.mjs, node --test)
#   browser  headless Chromium + the demo page (tests/clients/browser.test.mjs, playwright-core)
#   nginx    nginx as a reverse proxy (tests/clients/test_nginx_proxy.py, pytest)
#   metrics  /metrics through Prometheus' own Python text parser, with --workers 2
#            (tests/clients/test_metrics.py, pytest, prometheus_client)
#   report   headless Chromium renders the scale report's HTML page
#            (tests/clients/scale_report.test.mjs, playwright-core)
#   tls      wss:// and https:// (serve --tls-cert/--tls-key, a throwaway certificate
#            made with openssl): Python websockets (tests/clients/test_tls.py), Node ws
#            and headless Chromium (tests/clients/tls.test.mjs)
# Usage: scripts/clients.sh [python|node|browser|nginx|metrics|report|tls]...   (default: all seven)
# Installs its own Python venv (tests/clients/.venv) and npm packages (npm ci), pinned.
# Needs Python 3, Node 20+, and for the browser and nginx suites Debian's `chromium` and
# `nginx` packages (.ci/run installs them). Exits non-zero if any suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=tests/clients
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(python node browser nginx metrics report tls)
for s in "${suites[@]}"; do
  case "$s" in python | node | browser | nginx | metrics | report | tls) ;; *) echo "unknown suite: $s" >&2; exit 2 ;; esac
done
wants() { [[ " ${suites[*]} " == *" $1 "* ]]; }

missing=()
{ wants browser || wants report || wants tls; } && ! command -v "${CHROMIUM:-chromium}" >/dev/null && missing+=(chromium)
wants nginx && ! command -v "${NGINX:-nginx}" >/dev/null && [ ! -x /usr/sbin/nginx ] && missing+=(nginx)
wants tls && ! command -v openssl >/dev/null && missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi

if wants python || wants nginx || wants metrics || wants tls; then
  venv=$dir/.venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # Already-satisfied pins install nothing and need no network.
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
fi
if wants node || wants browser || wants report || wants tls; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo build --release --quiet
WSREACTOR_BIN=$PWD/target/release/wsreactor
export WSREACTOR_BIN

# Every wait inside the suites has its own timeout, so a stuck server fails a test rather
# than hanging it; each suite kills the processes it started, on failure too.
passed=()
failed=()
run_suite() {
  local name=$1
  shift
  echo "== clients: $name"
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
}
pytest=("$dir/.venv/bin/python" -m pytest -p no:cacheprovider -v)
node_test=(node --test --test-timeout=180000)
wants python && run_suite "python-websockets" "${pytest[@]}" "$dir/test_websockets_interop.py"
wants node && run_suite "node-ws" "${node_test[@]}" "$dir/ws_interop.test.mjs"
wants browser && run_suite "browser-chromium" "${node_test[@]}" "$dir/browser.test.mjs"
wants nginx && run_suite "nginx-proxy" "${pytest[@]}" "$dir/test_nginx_proxy.py"
wants metrics && run_suite "metrics-prometheus" "${pytest[@]}" "$dir/test_metrics.py"
wants report && run_suite "scale-report-chromium" "${node_test[@]}" "$dir/scale_report.test.mjs"
wants tls && run_suite "tls-python-websockets" "${pytest[@]}" "$dir/test_tls.py"
wants tls && run_suite "tls-node-ws-chromium" "${node_test[@]}" "$dir/tls.test.mjs"

echo "== clients: suites passed: ${passed[*]:-none}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== clients: suites FAILED: ${failed[*]}" >&2
  exit 1
fi
