#!/usr/bin/env bash
# Runs one fuzz target on the stable toolchain: fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags]
#
# cargo-fuzz passes -Z flags (-Zsanitizer=address and others), which stable rustc takes
# only with RUSTC_BOOTSTRAP=1. New inputs go to a working corpus outside the repository
# (FUZZ_WORK, default /tmp/wsreactor-fuzz/TARGET); the checked-in seeds in
# fuzz/corpus/TARGET are read, never written. Crashes land in fuzz/artifacts/TARGET.
# Memory is capped so that unbounded growth is a reported failure, not a slow machine:
# -malloc_limit_mb fails any single allocation over 256 MiB, -rss_limit_mb the process
# over 512 MiB; AddressSanitizer's quarantine is cut to 64 MiB to leave room under it.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags...]}
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
case $target in
  # Past the 8 KiB head bound from the start (libFuzzer otherwise grows lengths slowly).
  http_head) max_len=20000; set -- -len_control=0 "$@" ;;
  *) max_len=8192 ;;
esac
work=${FUZZ_WORK:-/tmp/wsreactor-fuzz}/$target
mkdir -p "$work"
export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}
exec cargo +stable fuzz run -O -a "$target" "$work" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
  -rss_limit_mb=512 -malloc_limit_mb=256 -print_final_stats=1 "$@"
