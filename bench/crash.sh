#!/usr/bin/env bash
# bench/crash.sh — crash consistency, the long run: ROUNDS (default 20) rounds of 4 writers doing
# chats.messages.append / modules.create / update / delete, agentd killed with SIGKILL at a random
# moment in each, restarted and checked (every acknowledged write present, nothing half-written, no
# gap in the event seqs). The checks are in bench/crash.py; SecurityTests runs 3 rounds in `make test`.
#
# Usage: bench/crash.sh [ROUNDS] [SEED]
# Environment: CRASH_CLIENTS=4, CRASH_ROUND_MIN=0.3, CRASH_ROUND_MAX=2.0 (seconds before the kill),
#              CRASH_AGENTD=path (a binary to test instead of building the debug one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:-20}
SEED=${2:-$(date +%s)}
AGENTD=${CRASH_AGENTD:-}
if [[ -z $AGENTD ]]; then
    swift build --product agentd >&2
    AGENTD=$(swift build --show-bin-path)/agentd
fi
exec python3 bench/crash.py "$AGENTD" "$ROUNDS" "$SEED"
