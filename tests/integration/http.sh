#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # helpers with optional args; callbacks
# The HTTP front through a real nginx: auth, every error status, both
# location prefixes, /healthz, /metrics, and what the log shows.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"
need_test_seams

t_setup nginx
# What a job attempt does: "echo" completes it at once with what it
# received, so this test never depends on TOPdesk or Exchange.
export TDHOOK_TEST_JOB=echo
write_config "queue={runners: 1, retry_base: 100ms}"
start_tdhook
start_nginx

# --- auth -----------------------------------------------------------------
req POST /hooks/stock-check -H 'Content-Type: application/json' --data-binary '{}'
assert_json_error 401 "no token"
assert_header WWW-Authenticate '.' "401 names the auth scheme"

req POST /hooks/stock-check -H "Authorization: Bearer wrong-$TOKEN1" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_json_error 401 "wrong Bearer token"

req POST /hooks/stock-check -u "someone:wrong" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_json_error 401 "wrong Basic password"

req POST /hooks/stock-check -H "Authorization: Bearer" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_json_error 401 "empty Bearer"

req POST /hooks/stock-check -H "Authorization: Basic !!!notbase64" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_json_error 401 "broken Basic"

for tok in "$TOKEN1" "$TOKEN2"; do
    n=${tok%%-*}
    req POST /hooks/stock-check -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' --data-binary '{}'
    assert_status 202 "Bearer $n"
    assert_eq "Bearer $n: status queued" queued "$(json_str status)"
    id=$(json_str job)
    assert_match "Bearer $n: job id" "$id" '^[0-9a-f-]{8,}$'

    req POST /hooks/stock-check -u "topdesk:$tok" \
        -H 'Content-Type: application/json' --data-binary '{"dry_run": true}'
    assert_status 202 "Basic $n as password"
    req POST /hooks/stock-check -u ":$tok" \
        -H 'Content-Type: application/json' --data-binary '{}'
    assert_status 202 "Basic $n with an empty user name"
done

# --- each hook --------------------------------------------------------------
post_hook /hooks/reservation '{"id": "0b1c2d3e-aaaa-bbbb-cccc-000000000001", "event": "created"}'
assert_status 202 "reservation by id"
res_id=$(json_str job)
post_hook /hooks/reservation '{"number": "R 2406 012"}'
assert_status 202 "reservation by number"
post_hook /hooks/reconcile '{"days": 3}'
assert_status 202 "reconcile"
post_hook /hooks/reconcile ''
assert_status 202 "reconcile with an empty body"
post_hook /hooks/stock-check ''
assert_status 202 "stock-check with an empty body"
assert_header Content-Type 'application/json' "202 is JSON"

get_auth "/jobs/$res_id"
assert_status 200 "GET /jobs/<id>"
assert_eq "GET /jobs/<id>: job" "$res_id" "$(json_str job)"
assert_eq "GET /jobs/<id>: kind" reservation "$(json_str kind)"
assert_match "GET /jobs/<id>: status" "$(json_str status)" '^(queued|running|done|retrying)$'
assert_match "GET /jobs/<id>: attempts" "$(json_num attempts)" '^[0-9]+$'

req GET "/jobs/$res_id"
assert_json_error 401 "GET /jobs/<id> without token"

# --- errors -----------------------------------------------------------------
get_auth /hooks/stock-check
assert_json_error 405 "GET on a hook"
assert_header Allow '^POST$' "405 on a hook says Allow: POST"

req GET /hooks/reservation
assert_status 405 "GET on a hook without token"
assert_header Allow 'POST' "Allow: POST without token too"

req POST /healthz --data-binary ''
assert_json_error 405 "POST /healthz"
assert_header Allow 'GET' "405 on /healthz says Allow: GET"

head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big.json"
post_hook /hooks/stock-check "@$T/big.json"
assert_json_error 413 "2 MiB body (nginx, in tdhook's JSON shape)"
# The test's /unbuffered/ location lets a larger body through to tdhook,
# which refuses it from Content-Length alone.
post_hook /unbuffered/hooks/stock-check "@$T/big.json"
assert_json_error 413 "2 MiB body (tdhook's own limit)"
# A body just under the limit is fine (JSON padded with spaces).
{
    printf '{"dry_run": true}'
    head -c $((1024 * 1024 - 100)) /dev/zero | tr '\0' ' '
} >"$T/near.json"
post_hook /hooks/stock-check "@$T/near.json"
assert_status 202 "a body just under max_body"

post_hook /hooks/stock-check '{'
assert_json_error 400 "malformed JSON"
post_hook /hooks/stock-check '{"dry_run": tru'
assert_json_error 400 "truncated JSON"
post_hook /hooks/stock-check '[1, 2]'
assert_json_error 400 "a JSON array"
post_hook /hooks/reservation '{}'
assert_json_error 400 "reservation without id or number"
post_hook /hooks/reservation '{"id": 42}'
assert_json_error 400 "reservation id of the wrong type"
deep=$(head -c 5000 /dev/zero | tr '\0' '[')
post_hook /hooks/stock-check "$deep"
assert_json_error 400 "JSON nested 5000 deep"

req POST /hooks/stock-check -H "Authorization: Bearer $TOKEN1" \
    -H 'Content-Type: text/plain' --data-binary '{}'
assert_json_error 415 "text/plain"
req POST /hooks/stock-check -H "Authorization: Bearer $TOKEN1" \
    -H 'Content-Type: application/json; charset=utf-8' --data-binary '{}'
assert_status 202 "application/json with charset"

post_hook /hooks/no-such-hook '{}'
assert_json_error 404 "unknown hook"
get_auth /jobs/ffffffffffffffffffffffff
assert_json_error 404 "unknown job"
get_auth /jobs/..%2F..%2Fetc%2Fpasswd
assert_match "a job id with slashes is refused" "$RES_STATUS" '^(400|404)$'

# --- healthz and the /tdhook/ prefix ------------------------------------
req GET /healthz
assert_status 200 "/healthz"
assert_eq "/healthz body" ok "$(printf '%s' "$RES_BODY" | tr -d '\n')"
assert_header Content-Type '^text/plain' "/healthz is text/plain"

req GET /tdhook/healthz
assert_status 200 "/tdhook/healthz"
req POST /tdhook/hooks/stock-check -H "Authorization: Bearer $TOKEN2" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_status 202 "/tdhook/hooks/stock-check"
pid=$(json_str job)
req GET "/tdhook/jobs/$pid" -u "x:$TOKEN2"
assert_status 200 "/tdhook/jobs/<id>"
assert_eq "/tdhook/jobs/<id> kind" stock-check "$(json_str kind)"
req POST /tdhook/hooks/nope -H "Authorization: Bearer $TOKEN1" \
    -H 'Content-Type: application/json' --data-binary '{}'
assert_json_error 404 "/tdhook/ unknown route"
req GET /tdhook/
assert_json_error 404 "/tdhook/ itself"
req GET /tdhook/hooks/reconcile -H "Authorization: Bearer $TOKEN1"
assert_json_error 405 "/tdhook/ GET on a hook"

# --- metrics ----------------------------------------------------------------
req GET /metrics
assert_status 200 "/metrics"
metrics=$RES_BODY
assert_header Content-Type '^text/plain' "/metrics is text/plain"
assert_match "metrics count the 401s" "$metrics" \
    '^tdhook_http_requests_total\{[^}]*status="401"[^}]*\} [1-9]'
assert_match "metrics count the 202s of stock-check" "$metrics" \
    '^tdhook_http_requests_total\{[^}]*route="[^"]*stock[^"]*"[^}]*\} [1-9]'
assert_match "metrics count the 413" "$metrics" \
    '^tdhook_http_requests_total\{[^}]*status="413"[^}]*\} 1'
assert_match "metrics count the 415" "$metrics" \
    '^tdhook_http_requests_total\{[^}]*status="415"[^}]*\} 1'
assert_match "metrics: queue depth" "$metrics" '^tdhook_queue_depth [0-9]+'
assert_match "metrics: dead letters" "$metrics" '^tdhook_dead_letters [0-9]+'
assert_match "metrics: upstream histogram" "$metrics" '^# TYPE tdhook_upstream_request_duration_seconds histogram'
assert_match "metrics: jobs" "$metrics" '^# TYPE tdhook_jobs_total counter'
req GET /tdhook/metrics
assert_status 200 "/tdhook/metrics"

# --- the log ---------------------------------------------------------------
# The jobs of this test have run meanwhile (echo: at once).
wait_job "$res_id" "done" 10 || fail "reservation job did not finish: $RES_BODY"
stop_tdhook
log=$(cat "$T/tdhook.log")
assert_no_secrets "tdhook log" "$T/tdhook.log"
assert_no_secrets "nginx error log" "$T/nginx-error.log"
# Every line logged while a request is handled carries its id.
nreq=$(grep -cE ' (GET|POST|PUT|DELETE|HEAD) /' "$T/tdhook.log" || true)
if [ "$nreq" -ge 40 ]; then
    ok "the requests are logged ($nreq lines)"
else
    fail "only $nreq request lines in the log"
fi
noid=$(grep -E ' (GET|POST|PUT|DELETE|HEAD) /|unauthori|malformed|too large' "$T/tdhook.log" |
    grep -vE 'req(uest)?[_ -]?(id)?[=:" ]+[0-9a-zA-Z]' || true)
if [ -z "$noid" ]; then
    ok "request log lines carry a request id"
else
    fail "request log lines without a request id: $(printf '%s' "$noid" | head -n 5)"
fi
n401=$(grep -cE ' 401 ' "$T/tdhook.log" || true)
ids=$(grep -E ' 401 ' "$T/tdhook.log" | grep -oE 'req(uest)?[_ -]?(id)?[=:" ]+[0-9a-zA-Z-]+' | sort -u | wc -l)
assert_eq "each of the 6 logged 401s has its own request id" "6 6" "$n401 $ids"
assert_not_contains "no crash in the log" "$log" "AddressSanitizer"
assert_not_contains "no 500 answered" "$(cat "$T/nginx-access.log")" '" 500 '
assert_not_contains "no 502 answered" "$(cat "$T/nginx-access.log")" '" 502 '

finish
