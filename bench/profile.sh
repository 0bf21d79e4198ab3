#!/usr/bin/env bash
# bench/profile.sh — where the time of a system.ping goes, at 16 connections x 16 in flight.
#
# 1. callgrind: instructions executed in user space (agentd, the Swift runtime, NIO, libc), per
#    function, inclusive and exclusive, over a bounded load (rpcload for PROFILE_SECONDS). Start-up
#    is excluded: the counters are zeroed once the daemon answers, and dumped right after the load.
# 2. perf (software cpu-clock sampling; this VM has no hardware counters), when it works: the whole
#    pinned core during a real-speed run, split by process, library and user/kernel, so the syscall
#    and scheduler share that callgrind cannot see is known too.
#
# Outputs go to bench/out/profile/ (gitignored; PROFILE_OUT changes it):
#   callgrind.out              raw callgrind data of the load phase (callgrind_annotate it again at will)
#   callgrind-inclusive.txt    callgrind_annotate --inclusive=yes, demangled
#   callgrind-exclusive.txt    callgrind_annotate (self cost), demangled
#   callgrind-rpcload.txt      what rpcload reported under valgrind (requests, for instructions/request)
#   callgrind-summary.md       bench/callgrind_summary.py: instructions/request, top functions, cost by kind
#   perf-{16x16,1x1}-*.txt     perf reports (by process and library, by symbol, with callees), when
#                              sampling works; also the core's user/kernel split and syscalls/request
#
# Usage: bench/profile.sh        (from any directory)
# Environment: PROFILE_SECONDS=5 (load under callgrind), PROFILE_CONNS=16 and PROFILE_DEPTH=16 (its
# shape), PERF_SECONDS=5, PROFILE_PERF=1 (0: callgrind only), PROFILE_OUT=bench/out/profile, BENCH_CPU=0, BENCH_SKIP_BUILD=0, BENCH_AGENTD= (profile another
# binary, e.g. an A/B build: callgrind's instructions per request are exact where timings are noisy)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROFILE_SECONDS=${PROFILE_SECONDS:-5}
PERF_SECONDS=${PERF_SECONDS:-5}
BENCH_CPU=${BENCH_CPU:-0}
OUT=${PROFILE_OUT:-bench/out/profile}
PROFILE_PERF=${PROFILE_PERF:-1}
PROFILE_CONNS=${PROFILE_CONNS:-16}
PROFILE_DEPTH=${PROFILE_DEPTH:-16}

BENCH_NAME=profile.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require valgrind callgrind_annotate callgrind_control objcopy taskset gcc swift
mkdir -p "$OUT"
build_agentd
build_rpcload

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentd-profile.XXXXXX")
SOCK=$TMP/agentd.sock
DAEMON_PID=
LOAD_PID=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $LOAD_PID ]]; then kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; fi
    if [[ -n $DAEMON_PID ]]; then stop_pid "$DAEMON_PID"; fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

demangle() { swift demangle --simplified; }

# ---------------------------------------------------------------- callgrind

# Valgrind 3.19 (Debian 12) cannot read the DWARF that Swift 6.3 emits ("Possibly corrupted debuginfo
# file ... Giving up"), so profile a copy without debug sections: the symbol table is enough for
# per-function costs (no per-line costs). It also crashes on libdispatch's sigsuspend() of a
# read-only mask: bench/sigsuspend_shim.c works around that.
PROFILED=$OUT/agentd-nodebug
objcopy --strip-debug "$AGENTD" "$PROFILED"
SHIM=$OUT/sigsuspend_shim.so
gcc -O2 -Wall -shared -fPIC -o "$SHIM" bench/sigsuspend_shim.c

rm -f "$OUT"/callgrind.out "$OUT"/callgrind.raw*
log "== callgrind: starting agentd under valgrind"
LD_PRELOAD=$PWD/$SHIM valgrind --tool=callgrind --callgrind-out-file="$PWD/$OUT/callgrind.raw" \
    "$PROFILED" --socket "$SOCK" --database "$OUT/agentd.sqlite" --log-level warning >"$OUT/valgrind.log" 2>&1 &
DAEMON_PID=$!
wait_ready "$SOCK" "$DAEMON_PID" "agentd under valgrind (see $OUT/valgrind.log)" 300

callgrind_control --zero "$DAEMON_PID" >/dev/null 2>&1
log "== callgrind: rpcload -c $PROFILE_CONNS -d $PROFILE_DEPTH -T $PROFILE_SECONDS"
rc=0
"$RPCLOAD" -s "$SOCK" -c "$PROFILE_CONNS" -d "$PROFILE_DEPTH" -T "$PROFILE_SECONDS" -D 30 -E -L callgrind \
    >"$OUT/callgrind-rpcload.txt" 2>&1 || rc=$?
cat "$OUT/callgrind-rpcload.txt" >&2
(( rc == 0 )) || fail "rpcload failed under callgrind (exit $rc)"
callgrind_control --dump=load "$DAEMON_PID" >/dev/null 2>&1
stop_pid "$DAEMON_PID"; DAEMON_PID=
(( STOP_RC == 0 )) || fail "agentd under valgrind exited with status $STOP_RC"

# The dump requested above is part 1; the file without a number holds the shutdown (not wanted).
DUMP=$OUT/callgrind.out
[[ -s $OUT/callgrind.raw.1 ]] || fail "no callgrind dump of the load in $OUT"
mv "$OUT/callgrind.raw.1" "$DUMP"
rm -f "$OUT/callgrind.raw"

# --threshold=100: list every function (the reports are cut to the top entries when read).
callgrind_annotate --inclusive=yes --threshold=100 "$DUMP" | demangle >"$OUT/callgrind-inclusive.txt"
callgrind_annotate --threshold=100 "$DUMP" | demangle >"$OUT/callgrind-exclusive.txt"

completed=$(sed -n 's/.*completed \([0-9]*\).*/\1/p' "$OUT/callgrind-rpcload.txt")
total_ir=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$OUT/callgrind-exclusive.txt")
[[ -n $completed && -n $total_ir ]] || fail "could not read the request count or the instruction total"
echo "callgrind: $total_ir instructions for $completed requests = $(awk -v i="$total_ir" -v n="$completed" 'BEGIN {printf "%.0f", i / n}') instructions/request (agentd, user space)"
echo "           $OUT/callgrind-inclusive.txt, $OUT/callgrind-exclusive.txt"
if command -v python3 >/dev/null; then
    python3 bench/callgrind_summary.py "$OUT" "$completed" 25 >"$OUT/callgrind-summary.md"
    echo "           $OUT/callgrind-summary.md (top 25 inclusive and exclusive, cost by kind of work)"
fi

# ---------------------------------------------------------------- perf (cpu-clock sampling)

if [[ $PROFILE_PERF != 1 ]]; then exit 0; fi
if ! command -v perf >/dev/null || ! perf record -e cpu-clock -o "$TMP/probe.data" -- true >/dev/null 2>&1; then
    log "== perf sampling unavailable: skipping the time profile"
    exit 0
fi

# One real-speed run of CONNS x DEPTH with the whole pinned core sampled; also counts the daemon's
# read and write system calls (/proc/PID/io) per request.
perf_pass() {   # name conns depth
    local name=$1 conns=$2 depth=$3 rc=0
    log "== perf: agentd and rpcload pinned to cpu $BENCH_CPU at ${conns}x$depth, sampling cpu $BENCH_CPU for $PERF_SECONDS s"
    taskset -c "$BENCH_CPU" "$AGENTD" --socket "$SOCK" --database "$OUT/agentd-perf.sqlite" --log-level warning >"$OUT/agentd-perf.log" 2>&1 &
    DAEMON_PID=$!
    wait_ready "$SOCK" "$DAEMON_PID" agentd 60
    local io_before io_after
    io_before=$(awk '/^sysc[rw]:/ {printf "%s ", $2}' "/proc/$DAEMON_PID/io")
    taskset -c "$BENCH_CPU" "$RPCLOAD" -s "$SOCK" -c "$conns" -d "$depth" -T "$((PERF_SECONDS + 1))" -W 1 -E -L "perf-$name" \
        >"$OUT/perf-$name-rpcload.txt" 2>&1 &
    LOAD_PID=$!
    # Sample inside the load's measured window: it opens after rpcload's 1 s warm-up and lasts
    # PERF_SECONDS + 1 s, so starting 1 s in keeps the whole sample within it.
    sleep 1
    perf record -e cpu-clock -F 2999 -g -C "$BENCH_CPU" -o "$OUT/perf-$name.data" -- sleep "$PERF_SECONDS" >/dev/null 2>&1
    wait "$LOAD_PID" || rc=$?; LOAD_PID=
    (( rc == 0 )) || { cat "$OUT/perf-$name-rpcload.txt" >&2; fail "rpcload failed during the perf run (exit $rc)"; }
    io_after=$(awk '/^sysc[rw]:/ {printf "%s ", $2}' "/proc/$DAEMON_PID/io")
    stop_pid "$DAEMON_PID"; DAEMON_PID=
    (( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC"

    local sent
    sent=$(sed -n 's/^requests: sent \([0-9]*\).*/\1/p' "$OUT/perf-$name-rpcload.txt")
    perf report -i "$OUT/perf-$name.data" --stdio --no-children --sort comm,dso -g none 2>/dev/null | grep -v '^$' >"$OUT/perf-$name-by-dso.txt"
    perf report -i "$OUT/perf-$name.data" --stdio --no-children --sort dso,sym -g none --percent-limit 0.2 2>/dev/null \
        | grep -v '^$' | demangle >"$OUT/perf-$name-by-symbol.txt"
    perf report -i "$OUT/perf-$name.data" --stdio --children --sort sym -g none --percent-limit 0.5 2>/dev/null \
        | grep -v '^$' | demangle >"$OUT/perf-$name-children.txt"
    echo "perf ${conns}x$depth: $(grep -m1 throughput "$OUT/perf-$name-rpcload.txt")"
    awk -v b="$io_before" -v a="$io_after" -v n="$sent" 'BEGIN {
        split(b, x, " "); split(a, y, " ");
        printf "           agentd system calls per request: %.2f reads, %.2f writes (%d requests)\n", (y[1] - x[1]) / n, (y[2] - x[2]) / n, n }'
    awk '!/^#/ && NF >= 3 {
            split($1, p, "%"); share = p[1];
            who = ($2 == "rpcload") ? "rpcload" : ($2 == "swapper") ? "idle" : ($2 ~ /^(NIO-|agentd)/) ? "agentd" : "other";
            where = ($3 == "[kernel.kallsyms]") ? "kernel" : "user";
            sum[who " " where] += share }
         END { printf "           core time: agentd user %.1f%%, agentd kernel %.1f%%, rpcload user %.1f%%, rpcload kernel %.1f%%, idle %.1f%%, other %.1f%%\n",
                      sum["agentd user"], sum["agentd kernel"], sum["rpcload user"], sum["rpcload kernel"],
                      sum["idle user"] + sum["idle kernel"], sum["other user"] + sum["other kernel"] }' \
        "$OUT/perf-$name-by-dso.txt"
}

perf_pass 16x16 16 16
perf_pass 1x1 1 1
echo "           reports: $OUT/perf-{16x16,1x1}-{by-dso,by-symbol,children}.txt"
