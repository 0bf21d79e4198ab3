#!/usr/bin/env bash
# Start-to-READY=1 on an existing database and idle RSS (release build). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=startup.sh
source bench/common.sh
# Measures the binary `make install` installs: release, Swift runtime linked statically.
if [[ -z ${BENCH_AGENTD:-} ]]; then
    log "== building agentd (release, static Swift runtime, scratch path .build-static)"
    swift build -c release --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --product agentd --scratch-path .build-static >&2
    AGENTD=.build-static/release/agentd
else
    AGENTD=$BENCH_AGENTD
fi
python3 bench/startup.py "$AGENTD" "${BENCH_RUNS:-10}"
