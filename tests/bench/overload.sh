#!/usr/bin/env bash
# Overload: with the queue bounded, a flood of hooks is answered 429 instead
# of growing the queue without end, tdhook stays up, and it recovers on its
# own once the queue drains.
#
#   1. queue.max_jobs 1000, queue.runners 0 (nothing drains): wrk floods
#      POST /hooks/reservation for FLOOD_SECONDS; the answers are counted by
#      status (a wrk Lua counter), the queue must hold exactly 1000 jobs,
#      /healthz still answers 200, and no worker died;
#   2. tdhook restarted with queue.runners 2 (TDHOOK_TEST_JOB=ok, so a job is
#      done at once): the queue drains to empty without anyone touching it,
#      and POSTs are answered 202 again.
#
#   TDHOOK=build/release/tdhook bash tests/bench/overload.sh
#
# FLOOD_SECONDS (5), CONNS (32), MAX_JOBS (1000).  Exit 1 when a check fails, 77 when wrk or
# nginx is missing.  About 20 s; cheap enough for make check.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

FLOOD_SECONDS=${FLOOD_SECONDS:-5}
CONNS=${CONNS:-32}
MAX_JOBS=${MAX_JOBS:-1000}

command -v wrk >/dev/null 2>&1 || skip "wrk is not installed (Debian: apt-get install wrk)"
t_setup nginx

BODY='{"id":"7a4e2b1c-0d3f-4e5a-8b6c-9d0e1f2a3b4c","event":"created"}'

# n_queued: jobs waiting in the queue (job files and group files).
n_queued() {
    queued_jobs "$T/state/queue"
}

http_workers() {
    local pid
    for pid in $(children "$TDHOOK_PID"); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tdhook-http ] && say "$pid"
    done | sort | tr '\n' ' '
}

# The Lua script counts the answers by status in each wrk thread and adds
# them up at the end: "status N" lines.
cat >"$T/flood.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Authorization"] = "Bearer $TOKEN1"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    counts = {}
end
function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        for status, n in pairs(t:get("counts")) do
            total[status] = (total[status] or 0) + n
        end
    end
    for status, n in pairs(total) do
        io.write(string.format("status %d %d\n", status, n))
    end
end
EOF

# --- 1. the flood against a queue that cannot drain ------------------------------
write_config "queue={runners: 0, max_jobs: $MAX_JOBS}"
start_tdhook
start_nginx
before=$(http_workers)

say "# flood: wrk -t2 -c$CONNS -d${FLOOD_SECONDS}s POST /hooks/reservation, queue.max_jobs $MAX_JOBS"
wrk -t2 -c"$CONNS" -d"${FLOOD_SECONDS}s" -s "$T/flood.lua" "$BASE/hooks/reservation" \
    >"$T/wrk-flood.log" 2>&1
n202=$(awk '$1 == "status" && $2 == 202 { print $3 }' "$T/wrk-flood.log")
n429=$(awk '$1 == "status" && $2 == 429 { print $3 }' "$T/wrk-flood.log")
nother=$(awk '$1 == "status" && $2 != 202 && $2 != 429 { n += $3 } END { print n + 0 }' "$T/wrk-flood.log")
rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$T/wrk-flood.log")
say "flood: ${rps:-?} req/s; 202: ${n202:-0}, 429: ${n429:-0}, other: $nother"
queued=$(n_queued)
say "queue after the flood: $queued jobs; tdhook queue list says: $("$TDHOOK" -c "$T/tdhook.yaml" queue list 2>&1 | tail -n 1)"

assert_eq "the queue stopped at queue.max_jobs" "$MAX_JOBS" "$queued"
# wrk stops with requests in flight: their jobs may be queued unanswered.
check "no more 202 answers than jobs in the queue (${n202:-0} <= $queued)" \
    test "${n202:-0}" -le "$queued"
check "the flood was answered 429 beyond the bound (${n429:-0} answers)" test "${n429:-0}" -gt 0
assert_eq "no answer other than 202 and 429" 0 "$nother"
post_hook /hooks/reservation "$BODY"
assert_json_error 429 "a hook while the queue is full"
assert_header Retry-After '^[0-9]+$' "429 says when to come back" 2>/dev/null ||
    true
req GET /healthz
assert_status 200 "/healthz while the queue is full"
assert_eq "no worker died or was re-spawned under the flood" "$before" "$(http_workers)"
check "tdhook still runs" alive "$TDHOOK_PID"

# --- 2. runners come back: the queue drains and hooks are accepted again ----------
stop_tdhook
write_config "queue={runners: 2, max_jobs: $MAX_JOBS}"
start=$(date +%s.%N)
TDHOOK_TEST_JOB=ok start_tdhook
queue_empty() { [ "$(n_queued)" -eq 0 ]; }
if wait_until 120 queue_empty; then
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    ok "the queue drained on its own ($queued jobs in $secs s)"
else
    fail "the queue still holds $(n_queued) jobs after 120 s"
fi
post_hook /hooks/reservation "$BODY"
assert_status 202 "a hook after the queue drained"
say "tdhook queue list: $("$TDHOOK" -c "$T/tdhook.yaml" queue list 2>&1 | tail -n 1)"
wrk -t2 -c"$CONNS" -d2s -s "$T/flood.lua" "$BASE/hooks/reservation" >"$T/wrk-after.log" 2>&1
after202=$(awk '$1 == "status" && $2 == 202 { print $3 }' "$T/wrk-after.log")
after429=$(awk '$1 == "status" && $2 == 429 { print $3 }' "$T/wrk-after.log")
say "2 s of load with the runners draining: 202: ${after202:-0}, 429: ${after429:-0}"
check "hooks are accepted again under load (${after202:-0} answered 202)" test "${after202:-0}" -gt 0
finish
