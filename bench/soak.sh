#!/usr/bin/env bash
# bench/soak.sh — does agentd stay flat under long mixed load? The release daemon on a fresh socket
# and database, loopback only, for MINUTES (default 10):
#   events    bench/eventload for the whole run: one writer appending chats.messages.append at
#             SOAK_APPEND_RATE/s (paced), SOAK_SUBSCRIBERS connections subscribed to
#             chat.message.created; it fails unless every subscriber got every event, in order
#   cycles    bench/rpcload in turn, each for SOAK_CYCLE seconds then as long idle (bounded: at most
#             half the time busy): system.ping (4 connections x 4 in flight), modules.create,
#             modules.list, a new connection per call (connect/close churn), rpc.discover
# Every SOAK_SAMPLE seconds the daemon's VmRSS (/proc/PID/status), open file descriptors
# (/proc/PID/fd) and threads are sampled. At the end the series is printed, and the verdict: after
# the warm-up (the first fifth of the samples), the mean of the last quarter of the samples must be
# within SOAK_RSS_PCT % of the mean of the first quarter (RSS), and FDs within SOAK_FD_SLACK.
# Exit status: 0 flat, 1 not flat or a load generator failed.
#
# Usage: bench/soak.sh [MINUTES]
# Environment:
#   SOAK_APPEND_RATE=500  SOAK_SUBSCRIBERS=20  SOAK_CYCLE=5  SOAK_SAMPLE=5
#   SOAK_RSS_PCT=10       SOAK_FD_SLACK=4
#   BENCH_SKIP_BUILD=0    1: reuse .build-release/release/agentd as it is
#   BENCH_OUT=bench/out   the samples (soak-samples.tsv), raw outputs and the daemon log
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MINUTES=${1:-10}
SOAK_APPEND_RATE=${SOAK_APPEND_RATE:-500}
SOAK_SUBSCRIBERS=${SOAK_SUBSCRIBERS:-20}
SOAK_CYCLE=${SOAK_CYCLE:-5}
SOAK_SAMPLE=${SOAK_SAMPLE:-5}
SOAK_RSS_PCT=${SOAK_RSS_PCT:-10}
SOAK_FD_SLACK=${SOAK_FD_SLACK:-4}
OUT=${BENCH_OUT:-bench/out}
EVENTLOAD=bench/eventload

BENCH_NAME=soak.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require gcc socat
mkdir -p "$OUT/raw"
build_agentd
build_rpcload
if [[ ! -x $EVENTLOAD || bench/eventload.c -nt $EVENTLOAD ]]; then
    cc -O2 -Wall -o "$EVENTLOAD" bench/eventload.c
fi

make_temporary_folder
SOCK=$TMP/agentd.sock
"$AGENTD" --socket "$SOCK" --database "$TMP/agentd.sqlite" --log-level warning >"$OUT/agentd-soak.log" 2>&1 &
AGENTD_PID=$!
wait_ready "$SOCK" "$AGENTD_PID" agentd 60

DURATION=$((MINUTES * 60))
END=$((SECONDS + DURATION))
log "== soak: $MINUTES min, daemon pid $AGENTD_PID, appends ${SOAK_APPEND_RATE}/s to $SOAK_SUBSCRIBERS subscribers, rpcload cycles of ${SOAK_CYCLE}s"

"$EVENTLOAD" -s "$SOCK" -S "$SOAK_SUBSCRIBERS" -r "$SOAK_APPEND_RATE" -d 16 -W 1 -T "$((DURATION - 1))" -L soak \
    >"$OUT/raw/soak-eventload.txt" 2>&1 &
EVENTLOAD_PID=$!

cycles() {
    local templates=(
        '-c 4 -d 4'
        '-c 2 -d 2 -b {"jsonrpc":"2.0","id":%ID%,"method":"modules.create","params":{"title":"soak %ID%","content":"x"}}'
        '-c 2 -d 1 -b {"jsonrpc":"2.0","id":%ID%,"method":"modules.list","params":{"limit":50}}'
        '-c 2 -d 1 -R'
        '-c 1 -d 1 -b {"jsonrpc":"2.0","id":%ID%,"method":"rpc.discover"}'
    )
    local i=0 failures=0
    while (( SECONDS + 2 * SOAK_CYCLE < END )); do
        local flags=${templates[i % ${#templates[@]}]}
        # Word-split the flags, but keep the -b template whole.
        local args=() template=
        if [[ $flags == *' -b '* ]]; then template=${flags#* -b }; flags=${flags%% -b *}; fi
        read -r -a args <<<"$flags"
        if [[ -n $template ]]; then args+=(-b "$template"); fi
        "$RPCLOAD" -s "$SOCK" -E -T "$SOAK_CYCLE" -D 10 "${args[@]}" >>"$OUT/raw/soak-rpcload.txt" 2>&1 || failures=$((failures + 1))
        sleep "$SOAK_CYCLE"
        i=$((i + 1))
    done
    echo "$failures" >"$TMP/cycle-failures"
}
cycles &
CYCLES_PID=$!

SAMPLES=$OUT/soak-samples.tsv
printf 'seconds\trss_kb\tfds\tthreads\n' >"$SAMPLES"
START=$SECONDS
while (( SECONDS < END )); do
    kill -0 "$AGENTD_PID" 2>/dev/null || fail "agentd died during the soak (see $OUT/agentd-soak.log)"
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENTD_PID/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$AGENTD_PID/status")
    fds=$(find "/proc/$AGENTD_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    printf '%d\t%d\t%d\t%d\n' "$((SECONDS - START))" "$rss" "$fds" "$threads" >>"$SAMPLES"
    sleep "$SOAK_SAMPLE"
done

EVENTLOAD_RC=0
wait "$EVENTLOAD_PID" || EVENTLOAD_RC=$?
wait "$CYCLES_PID" || true
CYCLE_FAILURES=$(cat "$TMP/cycle-failures" 2>/dev/null || echo "?")

log "== samples (seconds, VmRSS kB, open fds, threads): $SAMPLES"
column -t "$SAMPLES" >&2 || cat "$SAMPLES" >&2
grep -h '^RESULT' "$OUT/raw/soak-eventload.txt" >&2 || true
log "eventload exit $EVENTLOAD_RC; rpcload cycles that failed: $CYCLE_FAILURES (see $OUT/raw/soak-rpcload.txt)"

# Verdict: warm-up = first fifth; compare the first and the last quarter of the rest.
verdict=$(awk -v pct="$SOAK_RSS_PCT" -v slack="$SOAK_FD_SLACK" '
    NR > 1 { n++; rss[n] = $2; fds[n] = $3 }
    END {
        warm = int(n / 5); m = n - warm; q = int(m / 4); if (q < 1) { print "TOO-SHORT"; exit }
        for (i = 1; i <= q; i++) { r1 += rss[warm + i]; f1 += fds[warm + i] }
        for (i = n - q + 1; i <= n; i++) { r2 += rss[i]; f2 += fds[i] }
        r1 /= q; r2 /= q; f1 /= q; f2 /= q
        drift = (r2 - r1) * 100 / r1
        flat = (drift <= pct && f2 - f1 <= slack) ? "FLAT" : "GROWING"
        printf "%s rss_first_quarter_kb=%.0f rss_last_quarter_kb=%.0f drift=%+.1f%% fds_first=%.1f fds_last=%.1f samples=%d warmup_samples=%d\n", flat, r1, r2, drift, f1, f2, n, warm
    }' "$SAMPLES")
log "verdict: $verdict"
[[ $verdict == FLAT* && $EVENTLOAD_RC == 0 && $CYCLE_FAILURES == 0 ]] || exit 1
