#!/usr/bin/env bash
# bench/files.sh — storing a file in agentd (issue 20), with the release daemon on a fresh database
# and blob folder of its own run folder, each figure beside `cp` of the same file in the same run:
#   upload   a BENCH_FILE_MIB file over the socket: files.upload.begin, files.upload.chunk (base64,
#            chunkSize = 4 MiB at a time, one in flight; the next chunk is encoded while the daemon
#            handles the last), files.upload.commit. MB/s of file content (MB = 10^6 bytes), the
#            base64 and JSON included (target: >= 100 MB/s).
#   import   files.import {path} of another file of the same size (target: >= 500 MB/s).
#   cp       `cp FILE` to the run folder, and `cp` then `sync FILE` (the daemon's writes are durable
#            when it answers: fdatasync of each chunk, fsync and a link at commit).
# Every file is fresh random bytes (no content stored twice, so every run writes its blob) and is
# in the page cache when measured, for `cp` and the daemon alike. The sha256 given to begin is
# computed before the clock starts, as a client that checks its upload does. Prints every run and
# the medians; fails when a call fails or a stored file's size or sha256 is not the file's.
#
# Usage: bench/files.sh
# Environment:
#   BENCH_FILE_MIB=64     file size in MiB
#   BENCH_RUNS=3          runs (the median is reported)
#   BENCH_SKIP_BUILD=0    1: reuse .build-release/release/agentd as it is
#   BENCH_OUT=bench/out   where the daemon log goes
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_FILE_MIB=${BENCH_FILE_MIB:-64}
BENCH_RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-bench/out}
START_DEADLINE=60
FILESLOAD=bench/filesload

BENCH_NAME=files.sh
# shellcheck source=bench/common.sh
source bench/common.sh

require gcc sha256sum sqlite3
mkdir -p "$OUT"
build_agentd
build_rpcload   # wait_ready pings with it
if [[ ! -x $FILESLOAD || bench/filesload.c -nt $FILESLOAD ]]; then
    log "== compiling $FILESLOAD from bench/filesload.c"
    gcc -O2 -Wall -o "$FILESLOAD" bench/filesload.c
fi

make_temporary_folder   # TMP, removed at exit after stopping AGENTD_PID
SOCK=$TMP/agentd.sock
DB=$TMP/agentd.sqlite

"$AGENTD" --socket "$SOCK" --database "$DB" --log-level warning >"$OUT/agentd-files.log" 2>&1 &
AGENTD_PID=$!
wait_ready "$SOCK" "$AGENTD_PID" agentd "$START_DEADLINE"

now_ns() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.1f", b / (ns / 1e9) / 1e6}'; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# A fresh file of random bytes, on disk (its writeback would otherwise compete with the measured
# writes: it made imports 3x slower) and in the page cache.
fresh_file() { head -c $((BENCH_FILE_MIB << 20)) /dev/urandom >"$1"; sync "$1"; cat "$1" >/dev/null; }
# Prints the MB/s of `cp FILE` and of `cp FILE; sync COPY`.
time_cp() {
    local file=$1 copy=$TMP/copy t0 t1 t2
    t0=$(now_ns); cp "$file" "$copy"; t1=$(now_ns); rm -f "$copy"
    cp "$file" "$copy"; sync "$copy"; t2=$(now_ns); rm -f "$copy"; sync -f "$file"
    echo "$(mbps "$BYTES" $((t1 - t0))) $(mbps "$BYTES" $((t2 - t1)))"
}
BYTES=$((BENCH_FILE_MIB << 20))
# The stored file has the file's size and sha256.
check_stored() {   # sha256
    local rows
    rows=$(sqlite3 "$DB" "SELECT count(*) FROM files WHERE sha256 = '$1' AND size = $BYTES")
    [[ $rows == 1 ]] || fail "no file of $BYTES bytes with sha256 $1 in the database"
}

echo "agentd files benchmark"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "sources: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' + uncommitted changes')"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load: $(cut -d' ' -f1-3 /proc/loadavg); nothing pinned"
echo "file:    $BENCH_FILE_MIB MiB ($BYTES bytes) of random bytes, $BENCH_RUNS run(s); run folder on $(df --output=source,fstype "$TMP" | tail -1)"
echo

UP=() IMP=() CP=() CPS=()
for ((i = 1; i <= BENCH_RUNS; i++)); do
    fresh_file "$TMP/upload.bin"
    sha=$(sha256sum "$TMP/upload.bin" | cut -d' ' -f1)
    read -r cp_rate cps_rate <<<"$(time_cp "$TMP/upload.bin")"
    r=$("$FILESLOAD" -s "$SOCK" -f "$TMP/upload.bin" -S "$sha" upload) || fail "upload failed"
    check_stored "$sha"
    up=$(field "$r" mbps)
    printf '  run %d upload: %7.1f MB/s  (%.3f s: begin %.3f, %d chunks %.3f, commit %.3f; client encoding %.3f)   cp %7.1f MB/s, cp+sync %7.1f MB/s\n' \
        "$i" "$up" "$(field "$r" seconds)" "$(field "$r" beginSeconds)" $(( $(field "$r" calls) - 2 )) "$(field "$r" chunksSeconds)" \
        "$(field "$r" commitSeconds)" "$(field "$r" encodeSeconds)" "$cp_rate" "$cps_rate"
    UP+=("$up") CP+=("$cp_rate") CPS+=("$cps_rate")
    rm -f "$TMP/upload.bin"

    fresh_file "$TMP/import.bin"
    sha=$(sha256sum "$TMP/import.bin" | cut -d' ' -f1)
    read -r cp_rate cps_rate <<<"$(time_cp "$TMP/import.bin")"
    r=$("$FILESLOAD" -s "$SOCK" -f "$TMP/import.bin" import) || fail "import failed"
    check_stored "$sha"
    imp=$(field "$r" mbps)
    printf '  run %d import: %7.1f MB/s  (%.3f s)                                                  cp %7.1f MB/s, cp+sync %7.1f MB/s\n' \
        "$i" "$imp" "$(field "$r" seconds)" "$cp_rate" "$cps_rate"
    IMP+=("$imp") CP+=("$cp_rate") CPS+=("$cps_rate")
    rm -f "$TMP/import.bin"
done

UP_M=$(printf '%s\n' "${UP[@]}" | median)
IMP_M=$(printf '%s\n' "${IMP[@]}" | median)
CP_M=$(printf '%s\n' "${CP[@]}" | median)
CPS_M=$(printf '%s\n' "${CPS[@]}" | median)
echo
verdict() { if awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= b)}'; then echo PASS; else echo FAIL; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf 'cp of the same files (median): %.1f MB/s; cp + sync: %.1f MB/s\n' "$CP_M" "$CPS_M"
printf 'upload over the socket %.1f MB/s (%sx cp, %sx cp+sync): target >= 100 MB/s: %s\n' \
    "$UP_M" "$(ratio "$UP_M" "$CP_M")" "$(ratio "$UP_M" "$CPS_M")" "$(verdict "$UP_M" 100)"
printf 'files.import %.1f MB/s (%sx cp, %sx cp+sync): target >= 500 MB/s: %s\n' \
    "$IMP_M" "$(ratio "$IMP_M" "$CP_M")" "$(ratio "$IMP_M" "$CPS_M")" "$(verdict "$IMP_M" 500)"

stop_pid "$AGENTD_PID"
AGENTD_PID=
(( STOP_RC == 0 )) || fail "agentd exited with status $STOP_RC"
