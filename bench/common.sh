# bench/common.sh — shared by bench/rpc.sh and bench/profile.sh (sourced, not run).
# Expects the caller to have cd'ed to the repository root and set BENCH_NAME.

SCRATCH=.build-release
AGENTD=$SCRATCH/release/agentd
RPCLOAD=bench/rpcload
STOP_DEADLINE=${STOP_DEADLINE:-20}   # seconds for agentd to exit after SIGTERM (its drain timeout is 10 s)

# The benchmarks drive one caller far past any sane rate on purpose: no rate limits.
export AGENTD_RATE_LIMITING=off

log() { printf '%s\n' "$*" >&2; }
fail() { log "$BENCH_NAME: $*"; exit 1; }

require() {
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null || fail "$tool is required"; done
}

# Release build in its own scratch path (does not fight debug builds in .build). BENCH_SKIP_BUILD=1
# reuses the binary as it is; BENCH_AGENTD=path measures another binary (an A/B build) instead.
build_agentd() {
    if [[ -n ${BENCH_AGENTD:-} ]]; then
        AGENTD=$BENCH_AGENTD
    elif [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        log "== building agentd (release, scratch path $SCRATCH)"
        swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product agentd --scratch-path "$SCRATCH" >&2
    fi
    [[ -x $AGENTD ]] || fail "$AGENTD not found (build failed, or BENCH_SKIP_BUILD=1 without a build)"
}

# The load generator, bench/rpcload.c, compiled beside it (not committed).
build_rpcload() {
    local src=bench/rpcload.c
    if [[ ! -x $RPCLOAD || $src -nt $RPCLOAD ]]; then
        log "== compiling $RPCLOAD from $src"
        gcc -O2 -Wall -o "$RPCLOAD" "$src" -lpthread
    fi
}

# Waits until the server on SOCKET (process PID) answers a ping, within DEADLINE seconds: polls, never
# a fixed sleep.
wait_ready() {   # socket pid name deadline-seconds
    local sock=$1 pid=$2 name=$3 deadline=$((SECONDS + $4))
    until "$RPCLOAD" -s "$sock" -n 1 -D 5 -E >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || fail "$name exited before accepting connections"
        (( SECONDS < deadline )) || fail "$name did not accept connections within $4 s"
        sleep 0.05
    done
}

# Sends SIGTERM and waits for the exit; sets STOP_RC to the exit status (124 when it had to be
# killed). Not for $(...): only this shell can wait for its children.
STOP_RC=0
stop_pid() {
    local pid=$1 waited=0
    STOP_RC=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && (( waited < STOP_DEADLINE * 10 )); do
        sleep 0.1; waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        STOP_RC=124; return
    fi
    wait "$pid" 2>/dev/null || STOP_RC=$?
}

# A temporary folder, TMP, for the daemon's socket and database; at exit (also on INT/TERM) the
# daemon AGENTD_PID, when set, is stopped and the folder removed.
make_temporary_folder() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentd-bench.XXXXXX")
    AGENTD_PID=
    trap cleanup_temporary_folder EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup_temporary_folder() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n ${AGENTD_PID:-} ]]; then stop_pid "$AGENTD_PID"; fi
    rm -rf "$TMP"
    exit "$status"
}
