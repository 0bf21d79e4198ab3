#!/usr/bin/env bash
# bench/rpc.sh — throughput and latency of agentd's JSON-RPC core (system.ping) on a Unix socket.
#
# Builds the release daemon, compiles the load generator (bench/rpcload.c) and a minimal C
# echo server (the ceiling), pins everything to one core and measures:
#   1x1   (1 connection, 1 request in flight)   latency
#   16x16 (16 connections, 16 in flight each)   throughput
#   16x16 with Content-Length (LSP) framing     one run
# Each agentd run is followed by the same run against the C baseline, so ratios compare figures
# taken minutes apart on the same machine. Prints every run and the medians; exits non-zero when
# rpcload reports a failure (missing, malformed, unmatched or error replies) or agentd does not
# stop cleanly.
#
# Usage: bench/rpc.sh            (from any directory)
# Environment:
#   BENCH_SECONDS=10     measured seconds per run
#   BENCH_WARMUP=1       warm-up seconds before measuring
#   BENCH_RUNS=3         runs per configuration (the median is reported)
#   BENCH_LSP_RUNS=1     runs of the Content-Length 16x16 configuration
#   BENCH_CPU=0          the core the daemon and rpcload are pinned to
#   BENCH_BASELINE=1     0: skip the C echo baseline
#   BENCH_SKIP_BUILD=0   1: reuse .build-release/release/agentd as it is
#   BENCH_AGENTD=        path of another agentd binary to measure (no build), e.g. an A/B build
#   BENCH_OUT=bench/out  where raw rpcload outputs and the daemon log go
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_LSP_RUNS=${BENCH_LSP_RUNS:-1}
BENCH_CPU=${BENCH_CPU:-0}
BENCH_BASELINE=${BENCH_BASELINE:-1}
BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
OUT=${BENCH_OUT:-bench/out}

BASELINE_BIN=$OUT/echo-baseline
START_DEADLINE=60   # seconds for a server to accept connections

BENCH_NAME=rpc.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require taskset gcc
mkdir -p "$OUT/raw"

# ---------------------------------------------------------------- build

# What is being measured, taken before the build (the sources may change while it runs).
if [[ -n ${BENCH_AGENTD:-} ]]; then
    SOURCES="not built here (BENCH_AGENTD)"
elif ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
    SOURCES="not a git checkout"
elif git diff --quiet HEAD -- Sources Package.swift; then
    SOURCES=$(git rev-parse --short HEAD)
else
    SOURCES="$(git rev-parse --short HEAD) + uncommitted changes (diff sha1 $(git diff HEAD -- Sources Package.swift | sha1sum | cut -c1-10))"
fi
build_agentd
build_rpcload
if [[ $BENCH_BASELINE == 1 && ( ! -x $BASELINE_BIN || bench/echo_baseline.c -nt $BASELINE_BIN ) ]]; then
    log "== compiling $BASELINE_BIN"
    gcc -O2 -Wall -o "$BASELINE_BIN" bench/echo_baseline.c
fi

# ---------------------------------------------------------------- servers

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentd-bench.XXXXXX")
AGENTD_SOCK=$TMP/agentd.sock
BASELINE_SOCK=$TMP/baseline.sock
AGENTD_PID=
BASELINE_PID=

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $AGENTD_PID ]]; then
        log "== stopping agentd (pid $AGENTD_PID) after an early exit"
        stop_pid "$AGENTD_PID"
    fi
    if [[ -n $BASELINE_PID ]]; then stop_pid "$BASELINE_PID"; fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "== starting agentd on $AGENTD_SOCK (pinned to cpu $BENCH_CPU)"
taskset -c "$BENCH_CPU" "$AGENTD" --socket "$AGENTD_SOCK" --database "$OUT/agentd.sqlite" --log-level warning >"$OUT/agentd.log" 2>&1 &
AGENTD_PID=$!
wait_ready "$AGENTD_SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"

if [[ $BENCH_BASELINE == 1 ]]; then
    log "== starting the C echo baseline on $BASELINE_SOCK (pinned to cpu $BENCH_CPU)"
    taskset -c "$BENCH_CPU" "$BASELINE_BIN" "$BASELINE_SOCK" >"$OUT/echo-baseline.log" 2>&1 &
    BASELINE_PID=$!
    wait_ready "$BASELINE_SOCK" "$BASELINE_PID" echo-baseline "$START_DEADLINE"
fi

# ---------------------------------------------------------------- runs

# Appends "rps p50 p99" of one run to $RESULTS; fails the script when rpcload fails.
declare -A RESULTS=()
run_once() {   # key socket run-number rpcload-flags...
    local key=$1 sock=$2 n=$3; shift 3
    local raw="$OUT/raw/$key-$n.txt" rc=0
    taskset -c "$BENCH_CPU" "$RPCLOAD" -s "$sock" -T "$BENCH_SECONDS" -W "$BENCH_WARMUP" -E -L "$key" "$@" >"$raw" 2>&1 || rc=$?
    if (( rc != 0 )); then
        sed 's/^/    /' "$raw" >&2
        fail "rpcload failed (exit $rc) for $key run $n: $*"
    fi
    local line
    line=$(grep '^RESULT ' "$raw") || fail "no RESULT line in $raw"
    local fields
    fields=$(awk '{for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } print v["rps"], v["p50_us"], v["p99_us"]}' <<<"$line")
    RESULTS[$key]+="$fields"$'\n'
    read -r rps p50 p99 <<<"$fields"
    printf '  %-22s run %d: %9.0f req/s   p50 %6.1f us   p99 %7.1f us\n' "$key" "$n" "$rps" "$p50" "$p99"
}

median() {   # reads numbers on stdin
    sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# Median of column $2 (1 rps, 2 p50, 3 p99) of key $1.
med() { printf '%s' "${RESULTS[$1]}" | awk -v c="$2" 'NF {print $c}' | median; }

print_median() {
    local key=$1
    printf '  %-22s median: %9.0f req/s   p50 %6.1f us   p99 %7.1f us\n' "$key" "$(med "$key" 1)" "$(med "$key" 2)" "$(med "$key" 3)"
}

bench_config() {   # name runs with-baseline(0/1) rpcload-flags...
    local name=$1 runs=$2 baseline=$3; shift 3
    (( runs > 0 )) || return 0
    [[ $BENCH_BASELINE == 1 ]] || baseline=0
    echo "== $name: rpcload $* -T $BENCH_SECONDS -W $BENCH_WARMUP -E, $runs run(s)"
    for ((i = 1; i <= runs; i++)); do
        run_once "agentd-$name" "$AGENTD_SOCK" "$i" "$@"
        if [[ $baseline == 1 ]]; then run_once "baseline-$name" "$BASELINE_SOCK" "$i" "$@"; fi
    done
    print_median "agentd-$name"
    if [[ $baseline == 1 ]]; then print_median "baseline-$name"; fi
}

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "agentd JSON-RPC core benchmark (system.ping)"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $SOURCES"
echo "machine: nproc $(nproc), ${CPU_MODEL:-unknown CPU}, $(uname -sr)"
echo "swift:   $(swift --version 2>/dev/null | head -1)"
echo "binary:  $AGENTD"
echo "pinning: agentd, baseline and rpcload on cpu $BENCH_CPU; $BENCH_SECONDS s measured after $BENCH_WARMUP s warm-up"

bench_config 1x1 "$BENCH_RUNS" 1 -c 1 -d 1
bench_config 16x16 "$BENCH_RUNS" 1 -c 16 -d 16
bench_config 16x16-lsp "$BENCH_LSP_RUNS" 0 -H -c 16 -d 16   # the C baseline speaks newline framing only

# ---------------------------------------------------------------- stop and summary

stop_pid "$AGENTD_PID"; AGENTD_PID=
(( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC after SIGTERM (see $OUT/agentd.log)"
[[ ! -e $AGENTD_SOCK ]] || fail "agentd left its socket behind after SIGTERM"
if [[ -n $BASELINE_PID ]]; then stop_pid "$BASELINE_PID"; BASELINE_PID=; fi
echo "== agentd stopped cleanly (exit 0, socket removed)"

echo
echo "Summary (medians of each metric over the runs; ratio = agentd / C echo baseline of this run):"
echo
echo "| configuration | agentd req/s | agentd p50 µs | agentd p99 µs | baseline req/s | baseline p50 µs | req/s ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in 1x1 16x16 16x16-lsp; do
    a="agentd-$name" b="baseline-$name"
    [[ -n ${RESULTS[$a]:-} ]] || continue
    if [[ -n ${RESULTS[$b]:-} ]]; then
        brps=$(med "$b" 1) bp50=$(med "$b" 2)
        ratio=$(awk -v a="$(med "$a" 1)" -v b="$brps" 'BEGIN {printf "%.2f", a / b}')
        brps=$(printf '%.0f' "$brps")
    else
        brps="—" bp50="—" ratio="—"
    fi
    printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$name" "$(med "$a" 1)" "$(med "$a" 2)" "$(med "$a" 3)" "$brps" "$bp50" "$ratio"
done
