#!/usr/bin/env bash
# Runs each libFuzzer target of a --enable-fuzz build for a bounded time.
#
#   bash tests/fuzz/run.sh [BUILDDIR]     (default: build/debug)
#
# FUZZ_SECONDS (default 30) per target.  Each target starts from a copy of
# its seed corpus tests/fuzz/corpus/NAME, so the tree is never written.
# Prints "fuzz: NAME: N executions in S s" per target; exits 1 when a
# target crashed, leaked or timed out (the input is kept in
# BUILDDIR/fuzz-artifacts/).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
builddir=${1:-${FUZZ_BUILDDIR:-$top_srcdir/build/debug}}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
case $FUZZ_SECONDS in '' | *[!0-9]*) echo "FUZZ_SECONDS must be a number" >&2; exit 64 ;; esac

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

artifacts=$builddir/fuzz-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/tdhook-fuzz.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT

rc=0
total=0
for name in fuzz_request fuzz_config; do
    bin=$builddir/tests/fuzz/$name
    if [ ! -x "$bin" ]; then
        echo "fuzz: $name: FAIL: no binary at $bin (configure --enable-fuzz with CC=clang)"
        rc=1
        continue
    fi
    mkdir -p "$work/$name"
    for c in "$top_srcdir/tests/fuzz/corpus/$name" "$top_srcdir/tests/fuzz/corpus/${name#fuzz_}"; do
        if [ -d "$c" ]; then
            cp -R "$c/." "$work/$name/"
            break
        fi
    done
    seeds=$(find "$work/$name" -type f | wc -l)
    log=$builddir/fuzz-$name.log
    start=$(date +%s)
    # The outer timeout is a guard only: libFuzzer stops by itself.
    timeout $((FUZZ_SECONDS + 120)) "$bin" -max_total_time="$FUZZ_SECONDS" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$name-" "$work/$name" >"$log" 2>&1
    frc=$?
    secs=$(($(date +%s) - start))
    runs=$(sed -n -E 's/^stat::number_of_executed_units:[[:space:]]*([0-9]+).*/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -n -E 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=0
    total=$((total + runs))
    if [ "$frc" -eq 0 ]; then
        echo "fuzz: $name: $runs executions in $secs s (from $seeds seeds)"
    else
        echo "fuzz: $name: FAIL (exit $frc) after $runs executions in $secs s; log $log:"
        tail -n 60 "$log"
        rc=1
    fi
done
echo "fuzz: total $total executions"
exit "$rc"
