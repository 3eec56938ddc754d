# shellcheck shell=bash disable=SC2154,SC2034  # $bin is the sourcing script's; servers and ports are for it
# Sourced by the TLS benchmarks (tls_bench.sh, nginx_bench.sh, handshake_bench.sh), which
# run several servers side by side: a work directory ($tmp) and every process they start
# (in $pids) ended on exit, Ctrl-C or failure; throwaway certificates; pinned servers.
# Expects $bin (the wsreactor binary).

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# make_cert NAME ec|rsa: a self-signed certificate for localhost and 127.0.0.1 with a
# P-256 or RSA-2048 key, as $tmp/NAME.pem and $tmp/NAME.key. CA:FALSE: webpki refuses a CA
# certificate as the server's own (CaUsedAsEndEntity), and openssl's self-signed
# certificates are CAs unless told otherwise.
make_cert() {
  local newkey
  case $2 in
    ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa) newkey=(-newkey rsa:2048) ;;
    *) echo "a key is ec or rsa, not $2" >&2; exit 2 ;;
  esac
  openssl req -x509 "${newkey[@]}" -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>/dev/null
}

# start_pinned NAME ARGS...: `serve --listen 127.0.0.1:0 ARGS...` pinned to core 0 (no
# idle timeout, no status lines), logging to $tmp/NAME.log; sets servers[NAME] and
# ports[NAME] once it listens. Not in a subshell: the server must not hold a command
# substitution's pipe open.
declare -A servers ports
start_pinned() {
  local name=$1 port=
  shift
  taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --idle-timeout 0 --stats-interval 0 "$@" \
    2>"$tmp/$name.log" >/dev/null &
  pids+=("$!")
  servers[$name]=$!
  for _ in $(seq 100); do
    port=$(grep -o 'listening on [0-9.:]*' "$tmp/$name.log" | head -n1 | cut -d: -f2) || true
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  ports[$name]=$port
}
