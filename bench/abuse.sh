#!/usr/bin/env bash
# bench/abuse.sh — the release daemon under every abuse of issue 17 at once while a well-behaved
# client appends and reads (bench/abuse.py says what runs and what is measured; every hostile role runs
# in one process, bench/abuse_hostile.py).
#
# Usage: bench/abuse.sh          (as root, so that the clients can act as other local users)
# Environment: BENCH_SKIP_BUILD=1 reuses the release build, BENCH_AGENTD=path measures another
# binary; ABUSE_PHASE, ABUSE_BRANCH, ABUSE_AMPLIFIERS, ABUSE_SUBSCRIBERS, ABUSE_PACE, ABUSE_ROLES (see
# abuse.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_NAME=abuse
source bench/common.sh
require python3
build_agentd
echo "binary: $AGENTD"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
exec python3 bench/abuse.py "$AGENTD"
