#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # helpers with optional args; callbacks
# The durable queue through nginx: a job end to end, idempotency keys,
# retries with backoff, dead letters and `tdhook queue`, a full queue (429),
# an unwritable state_dir (503), unknown jobs (404).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"
need_test_seams

t_setup nginx
# What a job attempt does: "echo" completes it at once with what it
# received, so this test never depends on TOPdesk or Exchange.
export TDHOOK_TEST_JOB=echo
QUEUE_YAML="queue={runners: 1, retry_base: 100ms, retry_max: 200ms, max_attempts: 5}"
write_config "$QUEUE_YAML"
start_tdhook
start_nginx

# restart_with VALUE: restarts `tdhook serve` with TDHOOK_TEST_JOB=VALUE
# (empty: echo).
restart_with() {
    stop_tdhook
    TDHOOK_TEST_JOB=${1:-echo} start_tdhook
}

tq() {
    "$TDHOOK" -c "$T/tdhook.yaml" queue "$@" 2>&1
}

# --- a job end to end ---------------------------------------------------
post_hook /hooks/reservation '{"number": "R 2406 012", "event": "changed"}'
assert_status 202 "reservation queued"
id=$(json_str job)
if wait_job "$id" "done" 15; then
    ok "job $id done"
else
    fail "job $id not done in 15 s: $RES_BODY"
fi
assert_eq "done after one attempt" 1 "$(json_num attempts)"
assert_match "a done job has a result" "$RES_BODY" '"result"[[:space:]]*:'
assert_contains "the result tells what was received" "$RES_BODY" "R 2406 012"
check "nothing left in tmp/" test -z "$(find "$T/state/tmp" -type f 2>/dev/null)"

# --- idempotency ----------------------------------------------------------
key=key-$(rand_hex 8)
post_hook /hooks/stock-check '{}' -H "Idempotency-Key: $key"
assert_status 202 "first request with an Idempotency-Key"
first=$(json_str job)
post_hook /hooks/stock-check '{}' -H "Idempotency-Key: $key"
assert_status 202 "the same key again"
assert_eq "the same key gives the same job" "$first" "$(json_str job)"
req POST /hooks/stock-check -u "x:$TOKEN2" -H 'Content-Type: application/json' \
    --data-binary '{}' -H "Idempotency-Key: $key"
assert_eq "the same key with the other token: same job" "$first" "$(json_str job)"
post_hook /hooks/stock-check '{}' -H "Idempotency-Key: other-$key"
assert_status 202 "another key"
check "another key gives another job" test "$(json_str job)" != "$first"
wh=msg_$(rand_hex 8)
post_hook /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e01"}' -H "webhook-id: $wh"
w1=$(json_str job)
post_hook /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e01"}' -H "webhook-id: $wh"
assert_status 202 "webhook-id repeated"
assert_eq "webhook-id de-duplicates" "$w1" "$(json_str job)"
njobs=$(tq list | grep -cE "$first|$w1" || true)
assert_eq "each key queued one job" 2 "$njobs"

# --- retries -------------------------------------------------------------
restart_with retry=2
post_hook /hooks/stock-check '{}'
assert_status 202 "job that fails twice"
rid=$(json_str job)
if wait_job "$rid" "done" 20; then
    ok "retried job ends done"
else
    fail "retried job not done in 20 s: $RES_BODY"
fi
assert_eq "done after 3 attempts" 3 "$(json_num attempts)"

# --- dead letters and tdhook queue ------------------------------------------
restart_with fail
post_hook /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3dead1"}'
did=$(json_str job)
post_hook /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3dead2"}'
did2=$(json_str job)
if wait_job "$did" dead 15; then
    ok "a failing job becomes a dead letter"
else
    fail "job $did not dead in 15 s: $RES_BODY"
fi
assert_match "a dead job has its error" "$RES_BODY" '"error"[[:space:]]*:[[:space:]]*"[^"]+'
wait_job "$did2" dead 15 || fail "job $did2 not dead: $RES_BODY"
req GET /metrics
assert_match "metrics: dead letters" "$RES_BODY" '^tdhook_dead_letters [1-9]'
assert_match "metrics: jobs by outcome" "$RES_BODY" \
    '^tdhook_jobs_total\{[^}]*outcome="dead"[^}]*\} [1-9]'
stop_tdhook

out=$(tq list)
rc=$?
assert_eq "queue list exits 0" 0 "$rc"
assert_match "queue list shows the dead job" "$(printf '%s\n' "$out" | grep -F "$did")" 'dead'
assert_match "queue list shows the done job" "$(printf '%s\n' "$out" | grep -F "$id")" 'done'
out=$(tq show "$did")
rc=$?
assert_eq "queue show exits 0" 0 "$rc"
assert_contains "queue show shows the job" "$out" "$did"
assert_contains "queue show shows the kind" "$out" "reservation"
assert_contains "queue show shows the payload" "$out" "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3dead1"
assert_match "queue show shows the status" "$out" 'dead'

tq retry "$did" >"$T/out" 2>&1
assert_eq "queue retry exits 0" 0 "$?"
assert_match "after retry the job is queued" "$(tq list | grep -F "$did")" 'queued'
tq drop "$did2" >"$T/out" 2>&1
assert_eq "queue drop exits 0" 0 "$?"
assert_eq "a dropped job is gone from the list" 0 "$(tq list | grep -cF "$did2")"
tq show ffffffffffffffffffffffff >"$T/out" 2>&1
rc=$?
check "queue show of an unknown job fails ($rc)" test "$rc" -ne 0
tq drop ffffffffffffffffffffffff >"$T/out" 2>&1
rc=$?
check "queue drop of an unknown job fails ($rc)" test "$rc" -ne 0
tq frobnicate >"$T/out" 2>&1
assert_eq "queue with an unknown subcommand: 64" 64 "$?"

restart_with ""
if wait_job "$did" "done" 15; then
    ok "the retried dead letter runs and ends done"
else
    fail "retried job $did not done: $RES_BODY"
fi
get_auth "/jobs/$did2"
assert_json_error 404 "a dropped job is 404"
get_auth /jobs/0123456789abcdef01234567
assert_json_error 404 "an unknown job is 404"

# --- an unwritable state_dir --------------------------------------------------
stop_tdhook
write_config "queue={runners: 0}"
start_tdhook
req GET /healthz
assert_status 200 "/healthz with a writable queue"
# chmod does not stop root: replace tmp/ by a regular file, and queue/
# (where the workers write new jobs) by a link to nowhere, instead.
mv "$T/state/tmp" "$T/state/tmp.saved"
mv "$T/state/queue" "$T/state/queue.saved"
: >"$T/state/tmp"
ln -s "$T/nowhere" "$T/state/queue"
# A worker probes at most once a second: the answer changes within that.
healthz_is() { req GET /healthz; [ "$RES_STATUS" = "$1" ]; }
wait_until 5 healthz_is 503 || true
assert_status 503 "/healthz with the queue not writable"
post_hook /hooks/reconcile '{}'
assert_json_error 503 "POST with the queue not writable"
get_auth "/jobs/$id"
assert_status 200 "finished jobs stay readable meanwhile"
rm -f "$T/state/tmp" "$T/state/queue"
mv "$T/state/tmp.saved" "$T/state/tmp"
mv "$T/state/queue.saved" "$T/state/queue"
wait_until 5 healthz_is 200 || true
assert_status 200 "/healthz once the queue is writable again"
post_hook /hooks/reconcile '{}'
assert_status 202 "POST once the queue is writable again"

# --- a full queue ----------------------------------------------------------
stop_tdhook
rm -rf "$T/state"
write_config "queue={runners: 0, max_jobs: 2}"
start_tdhook
post_hook /hooks/stock-check '{}'
assert_status 202 "full queue: first job"
post_hook /hooks/stock-check '{}'
assert_status 202 "full queue: second job"
post_hook /hooks/stock-check '{}'
assert_json_error 429 "full queue: third job"
post_hook /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e02"}'
assert_json_error 429 "full queue: a fourth job"
req GET /healthz
assert_status 200 "a full queue is still healthy"
req GET /metrics
assert_match "metrics: queue depth 2" "$RES_BODY" '^tdhook_queue_depth 2$'
assert_eq "two job files in queue/" 2 "$(find "$T/state/queue" -name '*.job' | wc -l)"

# --- a state_dir that cannot exist: serve refuses to start -------------------
stop_tdhook
sed "s|^state_dir: .*|state_dir: /dev/null/tdhook-state|" "$T/tdhook.yaml" >"$T/bad-state.yaml"
chmod 600 "$T/bad-state.yaml"
timeout 20 "$TDHOOK" -c "$T/bad-state.yaml" serve --socket "unix:$T/bad.sock" --workers 1 \
    >"$T/bad-state.out" 2>&1
rc=$?
assert_eq "serve with state_dir under /dev/null: exit 73 (EX_CANTCREAT)" 73 "$rc"
assert_contains "and says which directory" "$(cat "$T/bad-state.out")" "/dev/null/tdhook-state"

stop_tdhook
assert_no_secrets "tdhook log" "$T/tdhook.log"
finish
