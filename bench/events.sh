#!/usr/bin/env bash
# bench/events.sh — the event fan-out figures of BENCHMARKS.md: one writer appending messages to a
# chat, 100 connections subscribed to chat.message.created, with the release daemon on a fresh
# socket and database file for every run. bench/eventload.c is the load (one thread, epoll):
#   max       the writer unthrottled (16 appends in flight): notifications delivered per second
#   paced     the writer paced at BENCH_RATE appends/s (2,000 x 100 readers = 200,000
#             notifications/s): publish-to-receive latency p50/p99
#   max-stall, paced-stall   the same with BENCH_STALLED of the 100 subscribers never reading
#             (they subscribe, then never read; the daemon ends them with events.overflow once
#             more than events.queue_capacity events wait, and eventload reports when)
#   paced-stall-bigq (BENCH_BIGQ=1)   paced-stall with events.queue_capacity = BENCH_BIGQ_CAPACITY,
#             so the stalled subscription stays open through the whole window
# The raw outputs (BENCH_OUT/raw/events-*.txt) also hold the latency of each second of the window,
# the append's own round trip, the per-reader worst case, and when a stalled subscriber overflowed.
# Rounds interleave the configurations (max, max-stall, paced, paced-stall, ...), so the machine's
# drift hits each pair alike. Every connection is the benchmark user's own uid (peer credentials).
# eventload fails the run unless every reading subscriber received every append's notification once,
# in seq order; latency includes the append's commit (an upper bound for the bus's part).
#
# Usage: bench/events.sh
# Environment:
#   BENCH_SECONDS=10       measured seconds per run
#   BENCH_WARMUP=2         warm-up seconds before measuring
#   BENCH_RUNS=3           rounds (the median of each configuration is reported)
#   BENCH_SUBSCRIBERS=100  subscribed connections
#   BENCH_STALLED=1        of which never read, in the -stall configurations
#   BENCH_RATE=2000        appends/s of the paced configurations
#   BENCH_DEPTH=16         appends in flight, unthrottled writer (paced: 64, a cap only)
#   BENCH_TOPIC=chat.message.created   the subscribers' topic pattern ("*" works too)
#   BENCH_BIGQ=1           also run paced-stall with a queue that does not overflow in the window
#   BENCH_BIGQ_CAPACITY=100000
#   BENCH_SKIP_BUILD=0     1: reuse .build-release/release/agentd as it is
#   BENCH_OUT=bench/out    raw eventload outputs and daemon logs
#   TMPDIR=/tmp            where the socket and the database go (TMPDIR=/dev/shm: tmpfs, no disk syncs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-100}
BENCH_STALLED=${BENCH_STALLED:-1}
BENCH_RATE=${BENCH_RATE:-2000}
BENCH_DEPTH=${BENCH_DEPTH:-16}
BENCH_TOPIC=${BENCH_TOPIC:-chat.message.created}
BENCH_BIGQ=${BENCH_BIGQ:-1}
BENCH_BIGQ_CAPACITY=${BENCH_BIGQ_CAPACITY:-100000}
OUT=${BENCH_OUT:-bench/out}
START_DEADLINE=60
DEFAULT_CAPACITY=4096

BENCH_NAME=events.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require cc gcc
mkdir -p "$OUT/raw"
build_agentd
build_rpcload   # wait_ready pings with it
EVENTLOAD=bench/eventload
if [[ ! -x $EVENTLOAD || bench/eventload.c -nt $EVENTLOAD ]]; then
    log "== compiling $EVENTLOAD"
    cc -O2 -Wall -o "$EVENTLOAD" bench/eventload.c
fi

make_temporary_folder   # TMP, removed at exit after stopping AGENTD_PID
SOCK=$TMP/agentd.sock

declare -A RESULTS=()
run_once() {   # key run-number queue-capacity eventload-flags...
    local key=$1 n=$2 capacity=$3; shift 3
    local raw="$OUT/raw/events-$key-$n.txt" rc=0
    rm -f "$TMP"/agentd.sqlite*
    AGENTD_EVENTS_QUEUE_CAPACITY=$capacity "$AGENTD" --socket "$SOCK" --database "$TMP/agentd.sqlite" --log-level warning \
        >"$OUT/agentd-events-$key-$n.log" 2>&1 &
    AGENTD_PID=$!
    wait_ready "$SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$EVENTLOAD" -s "$SOCK" -P "$AGENTD_PID" -Q "$capacity" -S "$BENCH_SUBSCRIBERS" -t "$BENCH_TOPIC" \
        -W "$BENCH_WARMUP" -T "$BENCH_SECONDS" -L "$key" -v "$@" >"$raw" 2>&1 || rc=$?
    stop_pid "$AGENTD_PID"
    AGENTD_PID=
    if (( rc != 0 )); then
        sed 's/^/    /' "$raw" >&2
        fail "eventload failed (exit $rc) for $key run $n"
    fi
    (( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC after $key run $n"
    local fields
    fields=$(grep '^RESULT ' "$raw" | awk '{for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["published_per_s"], v["delivered_per_s"], v["p50_ms"], v["p99_ms"], v["max_ms"], v["tool_cpu_pct"], v["agentd_cpu_pct"], v["machine_cpu_pct"], v["stalled_overflowed"], v["rtt_p50_ms"], v["rtt_p99_ms"], v["after_reply_p50_ms"], v["after_reply_p99_ms"]}')
    RESULTS[$key]+="$fields $load"$'\n'
    local pub del p50 p99 max tool agentd machine stalled rtt50 rtt99 after50 after99
    read -r pub del p50 p99 max tool agentd machine stalled rtt50 rtt99 after50 after99 <<<"$fields"
    printf '  %-16s run %d: %4.0f events/s %6.0f notif/s  p50 %5.2f p99 %6.2f max %7.2f ms  (append rtt p50 %5.2f p99 %6.2f; after reply p50 %5.2f p99 %5.2f)  cpu: agentd %3.0f%% eventload %3.0f%% machine %3.0f%%  load %s' \
        "$key" "$n" "$pub" "$del" "$p50" "$p99" "$max" "$rtt50" "$rtt99" "$after50" "$after99" "$agentd" "$tool" "$machine" "$load"
    if [[ $stalled != 0/0 ]]; then
        local when
        when=$(grep -o 'overflowed at ~seq [0-9]*, [^ ]* s after the start' "$raw" | head -1 | sed 's/.*, \(.*\) s after.*/\1/' || true)
        printf '  stalled overflowed %s%s' "$stalled" "${when:+ at ${when} s}"
    fi
    printf '\n'
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
med() { printf '%s' "${RESULTS[$1]}" | awk -v c="$2" 'NF {print $c}' | median; }

echo "agentd event fan-out benchmark"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' + uncommitted changes')"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); nothing pinned; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load:    1 writer, $BENCH_SUBSCRIBERS subscribers to \"$BENCH_TOPIC\", ${BENCH_WARMUP} s warm-up + ${BENCH_SECONDS} s measured, fresh daemon and database per run"
echo

PACED_DEPTH=64
CONFIGS=(max max-stall paced paced-stall)
if [[ $BENCH_BIGQ == 1 ]]; then CONFIGS+=(paced-stall-bigq); fi
for ((i = 1; i <= BENCH_RUNS; i++)); do
    echo "== round $i"
    run_once max "$i" "$DEFAULT_CAPACITY" -d "$BENCH_DEPTH"
    run_once max-stall "$i" "$DEFAULT_CAPACITY" -d "$BENCH_DEPTH" -k "$BENCH_STALLED"
    run_once paced "$i" "$DEFAULT_CAPACITY" -d "$PACED_DEPTH" -r "$BENCH_RATE"
    run_once paced-stall "$i" "$DEFAULT_CAPACITY" -d "$PACED_DEPTH" -r "$BENCH_RATE" -k "$BENCH_STALLED"
    if [[ $BENCH_BIGQ == 1 ]]; then
        run_once paced-stall-bigq "$i" "$BENCH_BIGQ_CAPACITY" -d "$PACED_DEPTH" -r "$BENCH_RATE" -k "$BENCH_STALLED"
    fi
done

echo
echo "== medians of $BENCH_RUNS run(s) (each column's median taken separately)"
printf '| %-16s | %8s | %15s | %6s | %6s | %7s | %10s | %12s | %6s | %9s | %7s |\n' config "events/s" "notifications/s" "p50 ms" "p99 ms" "max ms" "rtt p99 ms" "after p99 ms" "agentd" "eventload" "machine"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------ ---------: ----------------: -------: -------: --------: -----------: -------------: -------: ----------: --------:
for key in "${CONFIGS[@]}"; do
    printf '| %-16s | %8.0f | %15.0f | %6.2f | %6.2f | %7.2f | %10.2f | %12.2f | %5.0f%% | %8.0f%% | %6.0f%% |\n' "$key" \
        "$(med "$key" 1)" "$(med "$key" 2)" "$(med "$key" 3)" "$(med "$key" 4)" "$(med "$key" 5)" "$(med "$key" 11)" "$(med "$key" 13)" "$(med "$key" 7)" "$(med "$key" 6)" "$(med "$key" 8)"
done
echo "(p50/p99/max: publish-to-receive, from the append's send to a subscriber's read, commit included;"
echo " rtt: the writer's own append round trip, send to reply, i.e. the commit's share;"
echo " after: a notification's read minus its append's reply read, both sent once the commit is done: the fan-out's own delay)"
echo "(cpu: % of one core over the measured window; the machine has $(nproc) cores = $(( $(nproc) * 100 ))%)"
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", (a / b - 1) * 100}'; }
echo "== against the targets"
max_del=$(med max 2); paced_del=$(med paced 2); paced_p99=$(med paced 4)
printf '  delivered/s, unthrottled:      %.0f  (target >= 200,000: %s)\n' "$max_del" "$(awk -v v="$max_del" 'BEGIN {print (v >= 200000) ? "met" : "NOT met"}')"
printf '  p99 at %s appends/s:         %.2f ms  (target <= 5 ms: %s)\n' "$BENCH_RATE" "$paced_p99" "$(awk -v v="$paced_p99" 'BEGIN {print (v <= 5) ? "met" : "NOT met"}')"
printf '  stalled client, delivered/s:   %s unthrottled, %s paced  (target within 10%%)\n' \
    "$(ratio "$(med max-stall 2)" "$max_del")" "$(ratio "$(med paced-stall 2)" "$paced_del")"
printf '  stalled client, p99:           %s unthrottled, %s paced' "$(ratio "$(med max-stall 4)" "$(med max 4)")" "$(ratio "$(med paced-stall 4)" "$paced_p99")"
if [[ $BENCH_BIGQ == 1 ]]; then printf ', %s paced with queue %s (no overflow in the window)' "$(ratio "$(med paced-stall-bigq 4)" "$paced_p99")" "$BENCH_BIGQ_CAPACITY"; fi
printf '\n'
echo "  (stalled/not-stalled readers: $((BENCH_SUBSCRIBERS - BENCH_STALLED))/$BENCH_SUBSCRIBERS, so delivered/s is expected to be $(awk -v s="$BENCH_SUBSCRIBERS" -v k="$BENCH_STALLED" 'BEGIN {printf "%.1f%%", -k / s * 100}') at equal events/s)"
echo "raw outputs: $OUT/raw/events-*.txt"
