#!/usr/bin/env bash
# fuzz/run.sh — builds the libFuzzer targets and runs each for a bounded time.
#
#   FuzzFraming   RPCFrameDecoder: newline and Content-Length framing, the size limit, skipping,
#                 input cut into reads at arbitrary points
#   FuzzJSON      JSONScanner and RPCMessageParser: validation, depth, batches, ids, the id finder
#                 of oversized messages
#   FuzzRequest   the request decoder: a message through the parser and the dispatcher into every
#                 v1/v2 method's Params type (by name and by position), no socket, no store
#   FuzzJournal   the journal fields of a log line (escaping what a client chose) and the one buffer
#                 sd_journal_sendv reads them from: every vector exactly its field's bytes
#   FuzzSSE       the provider stream: SSEParser and OpenAIChatStreamDecoder, the input cut into
#                 reads at points it chooses (the same events wherever the cut falls)
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# Each target starts from its seed corpus (fuzz/corpus/<name>, read only) plus what earlier runs
# found (.build-fuzz/corpus/<name>, kept between runs, not committed). A crash fails the script;
# the input that crashed is left in the crash folder it prints (replay it with
# `.build-fuzz/debug/<Target> <file>`, or without sanitizers `swift run <Target> <file>`), and
# every crash fixed gets a regression test with that input (Tests/RPCTests/FuzzRegressionTests.swift).
# Environment: FUZZ_SKIP_BUILD=1 (reuse the built targets), FUZZ_MAX_LEN=65536.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=(FuzzFraming FuzzJSON FuzzRequest FuzzJournal FuzzSSE)
if (( $# > 0 )); then TARGETS=("$@"); fi
SCRATCH=.build-fuzz
CRASHES=$SCRATCH/crashes
MAX_LEN=${FUZZ_MAX_LEN:-65536}

declare -A CORPUS=([FuzzFraming]=framing [FuzzJSON]=json [FuzzRequest]=request [FuzzJournal]=journal [FuzzSSE]=sse)

if [[ ${FUZZ_SKIP_BUILD:-0} != 1 ]]; then
    for target in "${TARGETS[@]}"; do
        echo "== building $target (fuzzer + address sanitizers, $SCRATCH)" >&2
        # -DFUZZING removes the replay main: libFuzzer provides main. --disable-dead-strip keeps the
        # coverage counters, and -sanitize-coverage puts them in every module (SwiftPM's
        # `--sanitize fuzzer` alone instruments none of the Swift code: libFuzzer then runs blind).
        # The linker's "Cannot export local symbol '__asan_…'" warnings are harmless: filtered.
        swift build --sanitize fuzzer --sanitize address --disable-dead-strip -Xswiftc -DFUZZING \
            -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
            --scratch-path "$SCRATCH" --product "$target" 2>&1 | grep -v "Cannot export local symbol '__asan" >&2
    done
fi

mkdir -p "$CRASHES"
failed=()
for target in "${TARGETS[@]}"; do
    name=${CORPUS[$target]:-$target}
    seeds=fuzz/corpus/$name
    found=$SCRATCH/corpus/$name
    mkdir -p "$found" "$CRASHES/$target"
    echo "== $target: ${SECONDS_PER_TARGET}s, seeds $seeds, crashes in $CRASHES/$target/" >&2
    # SWIFT_BACKTRACE=enable=no: under ASan the Swift crash handler prints a bogus report instead of
    # the real one. -rss_limit_mb: a leak or a blow-up fails like a crash.
    if ! SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$SCRATCH/debug/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 \
        -artifact_prefix="$CRASHES/$target/" "$found" "$seeds" 2>"$SCRATCH/$target.log"; then
        failed+=("$target")
        tail -n 60 "$SCRATCH/$target.log" >&2
        echo "!! $target crashed: inputs in $CRASHES/$target/" >&2
    else
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$SCRATCH/$target.log" | tr '\n' ' ' >&2 || true
        echo >&2
    fi
done
if (( ${#failed[@]} > 0 )); then
    echo "fuzz/run.sh: crashes in ${failed[*]} (inputs in $CRASHES/)" >&2
    exit 1
fi
echo "fuzz/run.sh: ${TARGETS[*]} ran ${SECONDS_PER_TARGET}s each without a crash" >&2
