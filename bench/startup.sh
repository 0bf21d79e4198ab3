#!/usr/bin/env bash
# Start-to-READY=1 on an existing database and idle RSS (release build). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=startup.sh
source bench/common.sh
build_agentd
python3 bench/startup.py "$AGENTD" "${BENCH_RUNS:-10}"
