#!/usr/bin/env bash
# bench/cache.sh — what the result cache buys (README "Result cache", BENCHMARKS.md): modules.get of
# one module with ~4 KiB of content, with the cache on and off (AGENTD_CACHE), on the release daemon
# and a fresh database: 1 connection x 1 in flight (latency) and 16 x 1 (throughput). The caller is
# the benchmark user's own uid (peer credentials), the case the cache serves.
#
# Usage: bench/cache.sh
# Environment: BENCH_SECONDS=8, BENCH_WARMUP=1, BENCH_RUNS=3, BENCH_SKIP_BUILD=0, BENCH_OUT=bench/out
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_SECONDS=${BENCH_SECONDS:-8}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-bench/out}
START_DEADLINE=60

BENCH_NAME=cache.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require gcc socat
mkdir -p "$OUT/raw"
build_agentd
build_rpcload

make_temporary_folder   # TMP, removed at exit after stopping AGENTD_PID

echo "agentd result cache benchmark"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

CONTENT=$(head -c 3000 /dev/zero | tr '\0' 'x')
for mode in off on; do
    SOCK=$TMP/agentd-$mode.sock
    AGENTD_CACHE=$mode "$AGENTD" --socket "$SOCK" --database "$TMP/agentd-$mode.sqlite" --log-level warning >"$OUT/agentd-cache-$mode.log" 2>&1 &
    AGENTD_PID=$!
    wait_ready "$SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"
    MODULE=$(printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"modules.create","params":{"title":"Cached","description":"a module read often","content":"'"$CONTENT"'","tags":["a","b"]}}' \
        | socat -t 30 - "UNIX-CONNECT:$SOCK" | grep -o '"id":"mod_[0-9a-f]*"' | head -1 | cut -d'"' -f4)
    [[ -n $MODULE ]] || fail "modules.create failed"
    GET='{"jsonrpc":"2.0","id":%ID%,"method":"modules.get","params":{"id":"'$MODULE'"}}'
    for shape in "1 1" "16 1"; do
        read -r conns depth <<<"$shape"
        for ((i = 1; i <= BENCH_RUNS; i++)); do
            raw="$OUT/raw/cache-$mode-${conns}x$depth-$i.txt"
            "$RPCLOAD" -s "$SOCK" -E -L "get" -c "$conns" -d "$depth" -t 2 -T "$BENCH_SECONDS" -W "$BENCH_WARMUP" -b "$GET" >"$raw" 2>&1 \
                || { cat "$raw" >&2; fail "rpcload failed"; }
            grep '^RESULT ' "$raw" | awk -v m="$mode" -v s="${conns}x$depth" -v n="$i" \
                '{for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } printf "  cache %-3s %-5s run %d: %9.0f req/s   p50 %7.1f us   p99 %7.1f us\n", m, s, n, v["rps"], v["p50_us"], v["p99_us"]}'
        done
    done
    stop_pid "$AGENTD_PID"
    AGENTD_PID=
done
