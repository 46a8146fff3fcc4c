#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # helpers with optional args; callbacks
# The process model of `tdhook serve` behind nginx: kill -9 of a job runner
# mid-job and of an HTTP worker, SIGTERM with a request in flight, a TCP
# socket, and an inherited socket (spawn-fcgi, systemd socket activation).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"
need_test_seams

need_cmd pgrep
t_setup nginx
write_config "queue={runners: 1, retry_base: 100ms, retry_max: 200ms}"
# Slow enough that a loaded machine still sees the job running when it kills.
TDHOOK_TEST_JOB=sleep=8000 start_tdhook
# From here on a job completes at once ("echo": it records what it got).
export TDHOOK_TEST_JOB=echo
start_nginx

procs() { # procs NAME: children of the master named NAME, one a line
    pgrep -P "$TDHOOK_PID" -x "$1" 2>/dev/null || true
}
count_procs() {
    procs "$1" | grep -c . || true
}
at_least() { # at_least N NAME: N or more children named NAME
    [ "$(count_procs "$2")" -ge "$1" ]
}

assert_eq "two HTTP workers (tdhook-http)" 2 "$(count_procs tdhook-http)"
assert_eq "one job runner (tdhook-runner)" 1 "$(count_procs tdhook-runner)"

# --- kill -9 of the runner mid-job --------------------------------------
post_hook /hooks/stock-check '{}'
assert_status 202 "a slow job queued"
id=$(json_str job)
if wait_job "$id" running 10; then
    ok "the job is running"
else
    fail "the job is not running within 10 s: $RES_BODY"
fi
mapfile -t runners < <(procs tdhook-runner)
check "kill -9 runner ${runners[*]}" kill -KILL "${runners[@]}"
respawned() {
    local p
    p=$(procs tdhook-runner | head -n 1)
    [ -n "$p" ] && [[ " ${runners[*]} " != *" $p "* ]]
}
if wait_until 10 respawned; then
    ok "the runner is re-spawned ($(procs tdhook-runner | tr '\n' ' '))"
else
    fail "no new runner within 10 s"
fi
if wait_job "$id" "done" 20; then
    ok "the interrupted job ends done"
else
    fail "the interrupted job is not done within 20 s: $RES_BODY"
fi
assert_eq "the interrupted job took 2 attempts" 2 "$(json_num attempts)"

# --- kill -9 of HTTP workers ------------------------------------------------
mapfile -t http < <(procs tdhook-http)
check "kill -9 http worker ${http[0]}" kill -KILL "${http[0]}"
http_back() {
    [ "$(count_procs tdhook-http)" -eq 2 ] && ! procs tdhook-http | grep -qx "${http[0]}"
}
if wait_until 10 http_back; then
    ok "the http worker is re-spawned"
else
    fail "no new http worker within 10 s: $(procs tdhook-http | tr '\n' ' ')"
fi
n200=0
for _ in 1 2 3 4 5 6 7 8; do
    req GET /healthz
    [ "$RES_STATUS" = 200 ] && n200=$((n200 + 1))
done
assert_eq "requests answered after the re-spawn" 8 "$n200"

mapfile -t http < <(procs tdhook-http)
kill -KILL "${http[@]}"
wait_until 10 at_least 2 tdhook-http ||
    fail "the workers are not all back within 10 s"
req GET /healthz
assert_status 200 "answered after every worker was killed"
post_hook /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e03"}'
assert_status 202 "a hook after every worker was killed"

# --- SIGTERM with a request in flight -----------------------------------
# The body trickles in at 40 KB/s through a location without request
# buffering, so a worker is reading it when the master gets SIGTERM.
{
    printf '{"dry_run": true}'
    head -c 160000 /dev/zero | tr '\0' ' '
} >"$T/slow.json"
mapfile -t kids < <(children "$TDHOOK_PID")
curl -sS --max-time 30 -o "$T/slow-body" -w '%{http_code}' --limit-rate 40k \
    -H 'Expect:' -H "Authorization: Bearer $TOKEN1" -H 'Content-Type: application/json' \
    --data-binary "@$T/slow.json" "$BASE/unbuffered/hooks/stock-check" \
    >"$T/slow-status" 2>"$T/slow-err" &
curl_pid=$!
sleep 1.5
alive "$curl_pid" || fail "the slow upload ended before SIGTERM: $(cat "$T/slow-status" "$T/slow-err")"
t0=$(date +%s)
kill -TERM "$TDHOOK_PID"
wait "$curl_pid"
assert_eq "the request in flight gets its 202" 202 "$(cat "$T/slow-status")"
assert_match "and its job id" "$(cat "$T/slow-body")" '"job"'
if wait_until 10 gone "$TDHOOK_PID"; then
    wait "$TDHOOK_PID"
    rc=$?
    ok "the master exits after SIGTERM ($(($(date +%s) - t0)) s)"
    assert_eq "the master exits 0" 0 "$rc"
else
    fail "the master still runs 10 s after SIGTERM"
fi
left=
for p in "${kids[@]}"; do
    alive "$p" && left="$left $p"
done
assert_eq "no child left after SIGTERM" "" "$left"
TDHOOK_PID=
req GET /healthz
assert_match "nothing answers once stopped" "$RES_STATUS" '^(502|504)$'

# SIGTERM on an idle server: fast.
start_tdhook
mapfile -t kids < <(children "$TDHOOK_PID")
t0=$(date +%s%N)
kill -TERM "$TDHOOK_PID"
if wait_until 5 gone "$TDHOOK_PID"; then
    wait "$TDHOOK_PID"
    assert_eq "an idle master exits 0 on SIGTERM" 0 "$?"
    ok "idle stop took $((($(date +%s%N) - t0) / 1000000)) ms"
else
    fail "an idle master still runs 5 s after SIGTERM"
fi
left=
for p in "${kids[@]}"; do
    alive "$p" && left="$left $p"
done
assert_eq "no child left after an idle SIGTERM" "" "$left"
TDHOOK_PID=

# --- a TCP socket ------------------------------------------------------------
start_tdhook --socket "tcp:127.0.0.1:$FCGI_TCP_PORT" --workers 1
req GET /tcp/healthz
assert_status 200 "serve --socket tcp: /healthz"
req POST /tcp/hooks/stock-check -H "Authorization: Bearer $TOKEN2" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_status 202 "serve --socket tcp: a hook"
assert_eq "--workers 1: one http worker" 1 "$(count_procs tdhook-http)"
stop_tdhook

# --- an inherited socket -----------------------------------------------------
# run_inherited NAME CMD...: CMD leaves tdhook serving on $T/tdhook.sock.
run_inherited() {
    local name=$1
    shift
    rm -f "$T/tdhook.sock"
    "$@" >>"$T/tdhook.log" 2>&1 &
    TDHOOK_PID=$!
    if ! wait_until 10 test -S "$T/tdhook.sock"; then
        fail "$name: no socket within 10 s"
        stop_tdhook
        return
    fi
    # systemd-socket-activate execs tdhook on the first connection only.
    req GET /healthz
    assert_status 200 "$name: /healthz"
    wait_until 5 at_least 1 tdhook-http ||
        fail "$name: no tdhook-http under pid $TDHOOK_PID"
    post_hook /hooks/reservation '{"number": "R 1"}'
    assert_status 202 "$name: a hook"
    kill -TERM "$TDHOOK_PID"
    if wait_until 10 gone "$TDHOOK_PID"; then
        wait "$TDHOOK_PID"
        assert_eq "$name: exit 0 on SIGTERM" 0 "$?"
    else
        fail "$name: still running 10 s after SIGTERM"
    fi
    stop_tdhook
}

if command -v spawn-fcgi >/dev/null 2>&1; then
    # -n: spawn-fcgi binds the socket and execs tdhook in its place, with
    # the listening socket as fd 0.
    run_inherited "spawn-fcgi" spawn-fcgi -n -s "$T/tdhook.sock" -- \
        "$TDHOOK" -c "$T/tdhook.yaml" serve --workers 2
else
    say "# spawn-fcgi is not installed: inherited fd 0 not tested"
fi

if command -v systemd-socket-activate >/dev/null 2>&1; then
    run_inherited "systemd socket activation" systemd-socket-activate \
        -l "$T/tdhook.sock" "$TDHOOK" -c "$T/tdhook.yaml" serve --workers 2
else
    say "# systemd-socket-activate is not installed: LISTEN_FDS not tested"
fi

assert_no_secrets "tdhook log" "$T/tdhook.log"
assert_not_contains "no sanitizer report" "$(cat "$T/tdhook.log")" "Sanitizer"
finish
