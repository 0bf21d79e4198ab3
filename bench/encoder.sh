#!/usr/bin/env bash
# bench/encoder.sh — ns per encode of a modules.list page (and a single module): JSONEncoder, as
# results were encoded before, against RPCJSONEncoder. Builds bench/EncoderBenchmark in release with
# the daemon's flags (scratch path .build-release) and runs it; no daemon, no socket.
#
# Usage: bench/encoder.sh [rounds]     (default 15; the median round is reported)
# Environment:
#   BENCH_SKIP_BUILD=0   1: reuse the binary as it is
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_NAME=encoder.sh
# shellcheck source=bench/common.sh
source bench/common.sh

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "== building EncoderBenchmark (release, scratch path $SCRATCH)"
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product EncoderBenchmark --scratch-path "$SCRATCH" >&2
fi
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$SCRATCH/release/EncoderBenchmark" "$@"
