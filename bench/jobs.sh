#!/usr/bin/env bash
# bench/jobs.sh — the job queue's figures of BENCHMARKS.md (issue 19), with the release daemon on a
# fresh database file of its own run folder:
#   latency      enqueue-to-start on an idle daemon: one no-op job at a time, each enqueued once the
#                previous one's end is stored; the time from calling enqueue to its handler
#                starting, p50/p99 (target: p50 <= 2 ms).
#   throughput   no-op jobs per second with 4 workers: BENCH_JOBS jobs enqueued by 16 tasks at
#                once; from the first enqueue to the last job's end (target: >= 5,000/s).
# Both through `test.jobs` (the daemon started with --enable-test-methods): the daemon's own queue,
# writer and workers as the composition root wires them, timed inside the daemon, so the socket's
# round trips (not part of enqueue-to-start) are left out. The jobs belong to the benchmark user
# and write their job.* events as a user's jobs do. Prints every run and the medians; fails unless
# every job enqueued succeeded after exactly one attempt.
#
# Usage: bench/jobs.sh
# Environment:
#   BENCH_LATENCY_JOBS=2000  jobs per latency run
#   BENCH_JOBS=50000         jobs per throughput run
#   BENCH_ENQUEUERS=16       tasks enqueueing at once in a throughput run
#   BENCH_WARMUP_JOBS=500    jobs of a throughput and a latency run before measuring (0: none)
#   BENCH_RUNS=3             runs per measurement (the median is reported)
#   BENCH_SKIP_BUILD=0       1: reuse .build-release/release/agentd as it is
#   BENCH_OUT=bench/out      where the raw replies and the daemon log go
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_LATENCY_JOBS=${BENCH_LATENCY_JOBS:-2000}
BENCH_JOBS=${BENCH_JOBS:-50000}
BENCH_ENQUEUERS=${BENCH_ENQUEUERS:-16}
BENCH_WARMUP_JOBS=${BENCH_WARMUP_JOBS:-500}
BENCH_RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-bench/out}
START_DEADLINE=60

BENCH_NAME=jobs.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require gcc socat python3 sqlite3
mkdir -p "$OUT/raw"
build_agentd
build_rpcload   # wait_ready pings with it

make_temporary_folder   # TMP, removed at exit after stopping AGENTD_PID
SOCK=$TMP/agentd.sock
DB=$TMP/agentd.sqlite

"$AGENTD" --socket "$SOCK" --database "$DB" --log-level warning --enable-test-methods >"$OUT/agentd-jobs.log" 2>&1 &
AGENTD_PID=$!
wait_ready "$SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"

# One test.jobs call (the benchmark user's own uid: recognised by its peer credentials); prints the
# result's fields as "key=value" words, or fails with the reply.
test_jobs() {   # raw-name params-json
    local raw="$OUT/raw/jobs-$1.json"
    printf '{"jsonrpc":"2.0","id":1,"method":"test.jobs","params":%s}\n' "$2" | socat -t 3600 - "UNIX-CONNECT:$SOCK" >"$raw"
    python3 - "$raw" <<'PY' || { sed 's/^/    /' "$raw" >&2; fail "test.jobs failed ($1)"; }
import json, sys
reply = json.load(open(sys.argv[1]))
if "result" not in reply:
    sys.exit(1)
print(" ".join(f"{k}={v}" for k, v in reply["result"].items() if v is not None))
PY
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "agentd job queue benchmark"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' + uncommitted changes')"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load: $(cut -d' ' -f1-3 /proc/loadavg); nothing pinned"
echo

if (( BENCH_WARMUP_JOBS > 0 )); then
    echo "== warm-up: $BENCH_WARMUP_JOBS jobs (throughput), $BENCH_WARMUP_JOBS jobs (latency)"
    test_jobs warmup-throughput '{"count":'"$BENCH_WARMUP_JOBS"',"mode":"throughput"}' >/dev/null
    test_jobs warmup-latency '{"count":'"$BENCH_WARMUP_JOBS"',"mode":"latency"}' >/dev/null
fi

# ---------------------------------------------------------------- latency
echo "== enqueue-to-start on an idle daemon: $BENCH_LATENCY_JOBS jobs one at a time, $BENCH_RUNS run(s)"
P50S=() P99S=()
for ((i = 1; i <= BENCH_RUNS; i++)); do
    r=$(test_jobs "latency-$i" '{"count":'"$BENCH_LATENCY_JOBS"',"mode":"latency"}')
    p50=$(field "$r" p50Us) p99=$(field "$r" p99Us) max=$(field "$r" maxUs)
    printf '  latency    run %d: p50 %8.1f us   p99 %8.1f us   max %9.1f us\n' "$i" "$p50" "$p99" "$max"
    P50S+=("$p50") P99S+=("$p99")
done
LAT_P50=$(printf '%s\n' "${P50S[@]}" | median)
LAT_P99=$(printf '%s\n' "${P99S[@]}" | median)
printf '  latency    median: p50 %8.1f us   p99 %8.1f us\n' "$LAT_P50" "$LAT_P99"

# ---------------------------------------------------------------- throughput
echo "== no-op jobs per second, 4 workers: $BENCH_JOBS jobs, $BENCH_ENQUEUERS enqueuers, $BENCH_RUNS run(s)"
RATES=()
for ((i = 1; i <= BENCH_RUNS; i++)); do
    r=$(test_jobs "throughput-$i" '{"count":'"$BENCH_JOBS"',"mode":"throughput","enqueuers":'"$BENCH_ENQUEUERS"'}')
    rate=$(field "$r" jobsPerSecond) seconds=$(field "$r" seconds) enqueue=$(field "$r" enqueueSeconds)
    printf '  throughput run %d: %9.0f jobs/s   (%.2f s; enqueueing took %.2f s)\n' "$i" "$rate" "$seconds" "$enqueue"
    RATES+=("$rate")
done
RATE=$(printf '%s\n' "${RATES[@]}" | median)
printf '  throughput median: %9.0f jobs/s\n' "$RATE"

# Every job enqueued ran once and succeeded.
expected=$(( (BENCH_WARMUP_JOBS > 0 ? 2 * BENCH_WARMUP_JOBS : 0) + BENCH_RUNS * (BENCH_LATENCY_JOBS + BENCH_JOBS) ))
read -r total succeeded attempts <<<"$(sqlite3 -separator ' ' "$DB" \
    "SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'), ifnull(sum(attempt), 0) FROM jobs WHERE kind = 'bench.noop'")"
echo "  jobs: $total enqueued, $succeeded succeeded, $attempts attempts (expected $expected each)"
(( total == expected && succeeded == expected && attempts == expected )) || fail "jobs lost, failed or run twice"

echo
verdict() { if awk -v a="$1" -v b="$2" "BEGIN {exit !(a $3 b)}"; then echo PASS; else echo FAIL; fi; }
printf 'enqueue-to-start p50 %.2f ms (p99 %.2f ms): target <= 2 ms: %s\n' \
    "$(awk -v x="$LAT_P50" 'BEGIN {print x / 1000}')" "$(awk -v x="$LAT_P99" 'BEGIN {print x / 1000}')" "$(verdict "$LAT_P50" 2000 '<=')"
printf 'no-op jobs with 4 workers %.0f/s: target >= 5,000/s: %s\n' "$RATE" "$(verdict "$RATE" 5000 '>=')"

stop_pid "$AGENTD_PID"
AGENTD_PID=
(( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC"
