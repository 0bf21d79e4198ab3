#!/usr/bin/env bash
# bench/agent.sh — what agentd adds to a streamed answer (issue 6's target: ≤ 1 ms added at p50,
# and 50 concurrent streaming runs without a delta delayed by another run).
#
# A release agentd talks to the fake provider (fake-llm-server, model fake-timestamped: deltas
# stamped with CLOCK_MONOTONIC when written) over loopback HTTP through libcurl. bench/agentload.c
# sends the same chat request (a) straight to the fake provider and (b) as v2.agent.act through
# agentd's socket, and reads every delta's latency (read time − stamp) and the time to first token
# (first delta − request sent). "Added" is (b) − (a). curl's time_starttransfer for the direct
# request is printed as a second baseline.
#
#   bench/agent.sh                       # 1 run at a time x BENCH_ROUNDS, then 50 concurrent x BENCH_CONCURRENT_ROUNDS
#   BENCH_SKIP_BUILD=1 bench/agent.sh    # reuse the release binaries
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_ROUNDS=${BENCH_ROUNDS:-200}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-50}
BENCH_CONCURRENT_ROUNDS=${BENCH_CONCURRENT_ROUNDS:-5}
BENCH_MODEL=${BENCH_MODEL:-fake-timestamped-20x10}
START_DEADLINE=60
BENCH_NAME=agent.sh
source bench/common.sh

require cc gcc curl
build_agentd
build_rpcload   # wait_ready pings with it
FAKE=$SCRATCH/release/fake-llm-server
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "== building fake-llm-server (release)"
    swift build -c release --product fake-llm-server --scratch-path "$SCRATCH" >&2
fi
[[ -x $FAKE ]] || fail "$FAKE not found"
AGENTLOAD=bench/agentload
if [[ ! -x $AGENTLOAD || bench/agentload.c -nt $AGENTLOAD ]]; then
    log "== compiling $AGENTLOAD"
    cc -O2 -Wall -o "$AGENTLOAD" bench/agentload.c
fi

make_temporary_folder   # TMP, removed at exit after stopping AGENTD_PID
FAKE_PID=
stop_fake() { [[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null || true; }
trap 'status=$?; stop_fake; (exit $status); cleanup_temporary_folder' EXIT

"$FAKE" --port 0 >"$TMP/fake.out" 2>&1 &
FAKE_PID=$!
deadline=$((SECONDS + START_DEADLINE))
until grep -q '^listening on ' "$TMP/fake.out"; do
    kill -0 "$FAKE_PID" 2>/dev/null || fail "fake-llm-server exited: $(cat "$TMP/fake.out")"
    (( SECONDS < deadline )) || fail "fake-llm-server did not start"
    sleep 0.05
done
ADDRESS=$(sed -n 's/^listening on //p' "$TMP/fake.out")
SOCK=$TMP/agentd.sock
AGENTD_LLM_PROVIDER=openai-compatible AGENTD_LLM_BASE_URL="http://$ADDRESS/v1" AGENTD_LLM_MODEL=$BENCH_MODEL \
AGENTD_LLM_MAX_RETRIES=0 \
    "$AGENTD" --socket "$SOCK" --database "$TMP/agentd.sqlite" --log-level warning >"$TMP/agentd.log" 2>&1 &
AGENTD_PID=$!
wait_ready "$SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"

echo "agentd agent benchmark: what agentd adds to a streamed answer"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' + uncommitted changes')"
echo "machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model:   $BENCH_MODEL (deltas x ms apart), provider on 127.0.0.1 (fake-llm-server), agentd release build"
echo

# Warm both paths (connections, statement caches, first chat).
"$AGENTLOAD" -H "$ADDRESS" -m "$BENCH_MODEL" -c 1 -R 3 >/dev/null
"$AGENTLOAD" -s "$SOCK" -m "$BENCH_MODEL" -c 1 -R 3 >/dev/null

field() { sed -n "s/.*$1 p50=\([0-9.]*\) p90=\([0-9.]*\) p99=\([0-9.]*\) max=\([0-9.]*\).*/\\$2/p"; }
report() {   # label direct-line agentd-line
    local d=$2 a=$3
    echo "$1"
    echo "  direct: $d"
    echo "  agentd: $a"
    local dt da lt la dt99 da99 lt99 la99
    dt=$(field ttft_us 1 <<<"$d"); da=$(field ttft_us 1 <<<"$a")
    lt=$(field delta_us 1 <<<"$d"); la=$(field delta_us 1 <<<"$a")
    dt99=$(field ttft_us 3 <<<"$d"); da99=$(field ttft_us 3 <<<"$a")
    lt99=$(field delta_us 3 <<<"$d"); la99=$(field delta_us 3 <<<"$a")
    awk -v dt="$dt" -v da="$da" -v lt="$lt" -v la="$la" -v dt99="$dt99" -v da99="$da99" -v lt99="$lt99" -v la99="$la99" 'BEGIN {
        printf "  added by agentd: time to first token p50 %+.3f ms (p99 %+.3f ms); per delta p50 %+.3f ms (p99 %+.3f ms)\n",
            (da - dt) / 1000, (da99 - dt99) / 1000, (la - lt) / 1000, (la99 - lt99) / 1000 }'
}

one_direct=$("$AGENTLOAD" -H "$ADDRESS" -m "$BENCH_MODEL" -c 1 -R "$BENCH_ROUNDS")
one_agentd=$("$AGENTLOAD" -s "$SOCK" -m "$BENCH_MODEL" -c 1 -R "$BENCH_ROUNDS")
report "one run at a time, $BENCH_ROUNDS runs:" "$one_direct" "$one_agentd"

body="{\"model\":\"$BENCH_MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"benchmark\"}],\"stream\":true}"
curl_ttft=$(for _ in $(seq 20); do
    curl -s -o /dev/null -N -w '%{time_starttransfer}\n' -H 'Content-Type: application/json' -d "$body" "http://$ADDRESS/v1/chat/completions"
done | sort -g | awk '{a[NR] = $1} END {printf "%.3f", a[int((NR + 1) / 2)] * 1000}')
echo "  curl straight to the provider: time_starttransfer p50 ${curl_ttft} ms (first byte of the head, 20 requests)"
echo

many_direct=$("$AGENTLOAD" -H "$ADDRESS" -m "$BENCH_MODEL" -c "$BENCH_CONCURRENCY" -R "$BENCH_CONCURRENT_ROUNDS")
many_agentd=$("$AGENTLOAD" -s "$SOCK" -m "$BENCH_MODEL" -c "$BENCH_CONCURRENCY" -R "$BENCH_CONCURRENT_ROUNDS")
report "$BENCH_CONCURRENCY concurrent runs, $BENCH_CONCURRENT_ROUNDS times:" "$many_direct" "$many_agentd"

stop_pid "$AGENTD_PID"
AGENTD_PID=
(( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC"
