#!/usr/bin/env bash
# Benchmark of the stock check (issue 3, point 7): 1,000 stock rooms and
# 100,000 assets behind the fake TOPdesk with 30 ms latency per request.
#
# Runs `tdhook stock-check --dry-run --json` with topdesk.max_parallel 4, 1
# and 8, then tests/bench/naive_stock.py (a sequential Python client) in two
# modes, all against the same fake in the same run, and prints requests
# issued, wall time and peak RSS with the ratios.  See tests/bench/README.md.
#
# Environment: TDHOOK (default build/release/tdhook, else ./tdhook),
# BENCH_DATASET (100k), BENCH_LATENCY_MS (30), BENCH_PARALLEL ("4 1 8"),
# BENCH_NAIVE ("same listing"; empty skips the baselines).
# Builds nothing, installs nothing; the RSS column needs /usr/bin/time
# (Debian package "time") and is left out without it.
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -z "${TDHOOK:-}" ]; then
    TDHOOK=$top_srcdir/build/release/tdhook
    [ -x "$TDHOOK" ] || TDHOOK=$top_srcdir/tdhook
fi
PY=/usr/bin/python3
DATASET=${BENCH_DATASET:-100k}
LATENCY=${BENCH_LATENCY_MS:-30}
PARALLEL=${BENCH_PARALLEL:-4 1 8}
NAIVE=${BENCH_NAIVE-same listing}
TIME=/usr/bin/time
SECRET=bench-$$-secret

[ -x "$TDHOOK" ] || { echo "bench: no tdhook binary at $TDHOOK (set TDHOOK)" >&2; exit 2; }
[ -x "$PY" ] || { echo "bench: $PY is missing" >&2; exit 2; }
command -v curl >/dev/null 2>&1 || { echo "bench: curl is missing" >&2; exit 2; }
HAVE_TIME=1
[ -x "$TIME" ] || { HAVE_TIME=0; echo "# $TIME is missing (Debian package \"time\"): no RSS column"; }

T=$(mktemp -d "${TMPDIR:-/tmp}/tdhook-bench.XXXXXX") || exit 2
FAKE_PID=
cleanup() {
    if [ -n "$FAKE_PID" ]; then
        kill "$FAKE_PID" 2>/dev/null
        wait "$FAKE_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$PY" "$top_srcdir/tests/fakes/topdesk.py" --port 0 --port-file "$T/port" --dataset "$DATASET" \
    --latency-ms "$LATENCY" --user tdhook-api --password "$SECRET" >"$T/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 100); do
    [ -s "$T/port" ] && break
    kill -0 "$FAKE_PID" 2>/dev/null || break
    sleep 0.1
done
[ -s "$T/port" ] || { cat "$T/fake.log" >&2; echo "bench: the fake did not start" >&2; exit 2; }
PORT=$(cat "$T/port")
URL=http://127.0.0.1:$PORT

# jget FILE EXPR: a Python expression over the JSON in FILE (as d).
jget() {
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(eval(sys.argv[2]))' "$1" "$2"
}

fake_reset() {
    curl -sS -X POST "$URL/__fake/reset" >/dev/null
}

fake_requests() {
    curl -sS "$URL/__fake/stats" >"$T/stats.json" && jget "$T/stats.json" 'd["requests"]'
}

# measure NAME CMD...: runs CMD with stdout to $T/NAME.out, sets WALL (s),
# RSS (MiB or "-") and REQS (counted by the fake).
measure() {
    local name=$1 t0 t1
    shift
    fake_reset
    t0=$(date +%s.%N)
    if [ "$HAVE_TIME" = 1 ]; then
        "$TIME" -v -o "$T/$name.time" "$@" >"$T/$name.out" 2>"$T/$name.err"
    else
        "$@" >"$T/$name.out" 2>"$T/$name.err"
    fi
    local rc=$?
    t1=$(date +%s.%N)
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RSS=-
    if [ "$HAVE_TIME" = 1 ]; then
        RSS=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.1f", $2 / 1024 }' \
            "$T/$name.time")
    fi
    REQS=$(fake_requests)
    if [ "$rc" -ne 0 ]; then
        echo "bench: $name failed (exit $rc):" >&2
        tail -n 5 "$T/$name.err" >&2
        exit 1
    fi
}

ROWS=()
# row CLIENT PARALLEL ROOMS SHORT [KIB]: one line of the table from the last
# measure; KIB is the response bodies received (known for the baselines).
row() {
    ROWS+=("$(printf '%-32s %8s %9s %9s %10s %8s %6s %9s' "$1" "$2" "$REQS" "$WALL" "$RSS" \
        "$3" "$4" "${5:--}")")
}

echo "# fake TOPdesk: --dataset $DATASET --latency-ms $LATENCY on $URL"
echo "# tdhook: $TDHOOK"
declare -A T_WALL T_REQS T_RSS
for par in $PARALLEL; do
    cat >"$T/tdhook.yaml" <<EOF
state_dir: $T/state
log: {level: warn}
hooks: {tokens: [bench-token]}
topdesk:
  url: $URL
  username: tdhook-api
  application_password: $SECRET
  timeout: 60s
  max_parallel: $par
mail: {from: tdhook@example.com}
stock_check: {to: [inkoop@example.com]}
graph: {tenant: t, client_id: c, client_secret: s}
EOF
    chmod 600 "$T/tdhook.yaml"
    echo "# tdhook stock-check --dry-run --json, max_parallel $par ..."
    measure "tdhook-$par" "$TDHOOK" -c "$T/tdhook.yaml" stock-check --dry-run --json
    rooms=$(jget "$T/tdhook-$par.out" 'd["stock_rooms"]')
    short=$(jget "$T/tdhook-$par.out" 'd["short"]')
    T_WALL[$par]=$WALL T_REQS[$par]=$REQS T_RSS[$par]=$RSS
    TD_ROOMS=$rooms TD_SHORT=$short
    row "tdhook" "$par" "$rooms" "$short"
done

declare -A N_WALL N_REQS N_RSS
for mode in $NAIVE; do
    echo "# naive_stock.py --mode $mode ..."
    measure "naive-$mode" "$PY" "$top_srcdir/tests/bench/naive_stock.py" --url "$URL" \
        --user tdhook-api --password "$SECRET" --mode "$mode"
    rooms=$(jget "$T/naive-$mode.out" 'd["stock_rooms"]')
    short=$(jget "$T/naive-$mode.out" 'd["short"]')
    N_WALL[$mode]=$WALL N_REQS[$mode]=$REQS N_RSS[$mode]=$RSS
    case $mode in
    same) label="naive sequential (same requests)" ;;
    *) label="naive listing of all assets" ;;
    esac
    row "$label" 1 "$rooms" "$short" "$(jget "$T/naive-$mode.out" 'd["bytes"] // 1024')"
    if [ "$rooms" != "${TD_ROOMS:-$rooms}" ] || [ "$short" != "${TD_SHORT:-$short}" ]; then
        echo "# WARNING: $label found $rooms rooms / $short short, tdhook $TD_ROOMS / $TD_SHORT"
    fi
done

echo
printf '%-32s %8s %9s %9s %10s %8s %6s %9s\n' client parallel requests "wall s" "RSS MiB" rooms \
    short "body KiB"
for r in "${ROWS[@]}"; do
    printf '%s\n' "$r"
done

# ratio A B: A / B with two decimals, or "-".
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

echo
for par in $PARALLEL; do
    for mode in $NAIVE; do
        printf 'tdhook (max_parallel %s) vs naive %-8s time %sx  requests %sx  RSS %sx\n' \
            "$par" "$mode:" \
            "$(ratio "${T_WALL[$par]}" "${N_WALL[$mode]}")" \
            "$(ratio "${T_REQS[$par]}" "${N_REQS[$mode]}")" \
            "$(ratio "${T_RSS[$par]}" "${N_RSS[$mode]}")"
    done
done
