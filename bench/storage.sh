#!/usr/bin/env bash
# bench/storage.sh — the storage figures of BENCHMARKS.md, over the socket with the release daemon
# on a fresh database file:
#   append   chats.messages.append per second, 16 connections (1 and 16 requests in flight each),
#            every reply sent only after its message is committed (group commit, see
#            Sources/Storage/GroupCommitWriter.swift); the row count is checked against the replies.
#   list     modules.list latency (page of 50) with 10,000 modules: 1 connection, 1 in flight
#            (p50/p99), then 16x1.
# Every connection is the benchmark user's own uid, so the daemon recognizes it (peer credentials)
# without a login. Prints every run and the medians; exits non-zero when rpcload reports a failure.
#
# Usage: bench/storage.sh
# Environment:
#   BENCH_SECONDS=10     measured seconds per run
#   BENCH_WARMUP=1       warm-up seconds before measuring
#   BENCH_RUNS=3         runs per configuration (the median is reported)
#   BENCH_MODULES=10000  modules created before the list runs
#   BENCH_SKIP_BUILD=0   1: reuse .build-release/release/agentd as it is
#   BENCH_OUT=bench/out  where raw rpcload outputs and the daemon log go
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_MODULES=${BENCH_MODULES:-10000}
OUT=${BENCH_OUT:-bench/out}
START_DEADLINE=60

BENCH_NAME=storage.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require gcc socat sqlite3
mkdir -p "$OUT/raw"
build_agentd
build_rpcload

make_temporary_folder   # TMP, removed at exit after stopping AGENTD_PID
SOCK=$TMP/agentd.sock
DB=$TMP/agentd.sqlite

"$AGENTD" --socket "$SOCK" --database "$DB" --log-level warning >"$OUT/agentd-storage.log" 2>&1 &
AGENTD_PID=$!
wait_ready "$SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"

call() {   # one request through socat; prints the reply line
    printf '%s\n' "$1" | socat -t 30 - "UNIX-CONNECT:$SOCK"
}

declare -A RESULTS=()
run_once() {   # key run-number rpcload-flags...
    local key=$1 n=$2; shift 2
    local raw="$OUT/raw/storage-$key-$n.txt" rc=0
    "$RPCLOAD" -s "$SOCK" -E -L "$key" "$@" >"$raw" 2>&1 || rc=$?
    if (( rc != 0 )); then
        sed 's/^/    /' "$raw" >&2
        fail "rpcload failed (exit $rc) for $key run $n"
    fi
    local fields
    local completed
    completed=$(sed -n 's/^requests: sent [0-9]*, completed \([0-9]*\).*/\1/p' "$raw")
    fields="$(grep '^RESULT ' "$raw" | awk '{for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } print v["rps"], v["p50_us"], v["p99_us"]}') $completed"
    RESULTS[$key]+="$fields"$'\n'
    read -r rps p50 p99 _ <<<"$fields"
    printf '  %-22s run %d: %9.0f req/s   p50 %7.1f us   p99 %7.1f us\n' "$key" "$n" "$rps" "$p50" "$p99"
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
med() { printf '%s' "${RESULTS[$1]}" | awk -v c="$2" 'NF {print $c}' | median; }
print_median() {
    printf '  %-22s median: %9.0f req/s   p50 %7.1f us   p99 %7.1f us\n' "$1" "$(med "$1" 1)" "$(med "$1" 2)" "$(med "$1" 3)"
}

echo "agentd storage benchmark"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' + uncommitted changes')"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); nothing pinned"
echo

# ---------------------------------------------------------------- appends
CHAT=$(call '{"jsonrpc":"2.0","id":1,"method":"chats.create","params":{"title":"bench"}}' | grep -o '"id":"cht_[0-9a-f]*"' | head -1 | cut -d'"' -f4)
[[ -n $CHAT ]] || fail "chats.create failed"
APPEND='{"jsonrpc":"2.0","id":%ID%,"method":"chats.messages.append","params":{"chatId":"'$CHAT'","role":"user","content":"benchmark message %ID%: a sentence of ordinary length."}}'
before=$(sqlite3 "$DB" "SELECT count(*) FROM messages")
for depth in 1 16; do
    echo "== append 16x$depth: rpcload -c 16 -d $depth -T $BENCH_SECONDS -W $BENCH_WARMUP, $BENCH_RUNS run(s)"
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        run_once "append-16x$depth" "$i" -c 16 -d "$depth" -t 2 -T "$BENCH_SECONDS" -W "$BENCH_WARMUP" -b "$APPEND"
    done
    print_median "append-16x$depth"
done
# Every successful reply (warm-up included) stands for a committed row: the counts must match.
replied=$(printf '%s' "${RESULTS[append-16x1]}${RESULTS[append-16x16]}" | awk 'NF {s += $4} END {print s}')
after=$(sqlite3 "$DB" "SELECT count(*) FROM messages")
echo "  replies: $replied; rows added: $((after - before))"
(( after - before == replied )) || fail "replies and committed rows differ"
echo

# ---------------------------------------------------------------- modules.list
echo "== seeding $BENCH_MODULES modules"
"$RPCLOAD" -s "$SOCK" -E -c 4 -d 16 -n "$BENCH_MODULES" -L seed \
    -b '{"jsonrpc":"2.0","id":%ID%,"method":"modules.create","params":{"title":"Module %ID%","description":"seeded","content":"Some content for module %ID%.","tags":["bench"]}}' >"$OUT/raw/storage-seed.txt" 2>&1 \
    || { cat "$OUT/raw/storage-seed.txt" >&2; fail "seeding failed"; }
echo "  modules: $(sqlite3 "$DB" "SELECT count(*) FROM modules")"
LIST='{"jsonrpc":"2.0","id":%ID%,"method":"modules.list","params":{"limit":50}}'
echo "== modules.list 1x1 (first page of 50): rpcload -c 1 -d 1, $BENCH_RUNS run(s)"
for ((i = 1; i <= BENCH_RUNS; i++)); do run_once "list-1x1" "$i" -c 1 -d 1 -T "$BENCH_SECONDS" -W "$BENCH_WARMUP" -b "$LIST"; done
print_median "list-1x1"
echo "== modules.list 16x1: rpcload -c 16 -d 1 -t 2, $BENCH_RUNS run(s)"
for ((i = 1; i <= BENCH_RUNS; i++)); do run_once "list-16x1" "$i" -c 16 -d 1 -t 2 -T "$BENCH_SECONDS" -W "$BENCH_WARMUP" -b "$LIST"; done
print_median "list-16x1"

stop_pid "$AGENTD_PID"
AGENTD_PID=
(( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC"
