#!/usr/bin/env bash
# SIGHUP reloads the configuration of `tdhook serve` behind nginx: a new
# token is taken and the old one refused, a request in flight still gets its
# answer, and a broken configuration is refused with its reason while the
# running one stays.
#
# Environment (make check sets it): top_srcdir, TDHOOK.  Exit 0 passed,
# 1 failed, 77 skipped (no nginx, curl or test build).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"
need_test_seams

t_setup nginx
write_config "queue={runners: 1, retry_base: 100ms}"
export TDHOOK_TEST_JOB=echo
start_tdhook
start_nginx

# status_with TOKEN: the status of a stock-check hook with TOKEN.
status_with() {
    curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' --data-binary '{"dry_run": true}' \
        "$BASE/hooks/stock-check"
}
takes() { [ "$(status_with "$1")" = "$2" ]; }

assert_eq "before: the first token is taken" 202 "$(status_with "$TOKEN1")"
NEW_TOKEN=tok3-$(rand_hex 12)
assert_eq "before: the new token is refused" 401 "$(status_with "$NEW_TOKEN")"

# A request in flight while the configuration changes (see lifecycle.sh).
{
    printf '{"dry_run": true}'
    head -c 160000 /dev/zero | tr '\0' ' '
} >"$T/slow.json"
curl -sS --max-time 30 -o "$T/slow-body" -w '%{http_code}' --limit-rate 40k \
    -H 'Expect:' -H "Authorization: Bearer $TOKEN1" -H 'Content-Type: application/json' \
    --data-binary "@$T/slow.json" "$BASE/unbuffered/hooks/stock-check" \
    >"$T/slow-status" 2>"$T/slow-err" &
curl_pid=$!
sleep 1.5
alive "$curl_pid" || fail "the slow upload ended before SIGHUP: $(cat "$T/slow-status")"

write_config "hooks={tokens: [$NEW_TOKEN]}" "queue={runners: 1, retry_base: 100ms}"
check "SIGHUP to the master" kill -HUP "$TDHOOK_PID"
wait "$curl_pid"
assert_eq "the request in flight during the reload gets its 202" 202 "$(cat "$T/slow-status")"
check "the new token is taken after the reload" wait_until 15 takes "$NEW_TOKEN" 202
assert_eq "the old token is refused after the reload" 401 "$(status_with "$TOKEN1")"
assert_contains "the log says the configuration was loaded" "$(cat "$T/tdhook.log")" \
    "SIGHUP: $T/tdhook.yaml loaded"
check "the master still runs" alive "$TDHOOK_PID"

# A broken configuration: refused with its reason, the running one stays.
cp "$T/tdhook.yaml" "$T/good.yaml"
printf 'hooks: {tokens: [x]}\nbogus_key: 1\n' >"$T/tdhook.yaml"
check "SIGHUP with a broken configuration" kill -HUP "$TDHOOK_PID"
check "the log names what is wrong" wait_until 5 grep -q \
    "was not loaded, the running configuration stays: .*bogus_key: unknown key" "$T/tdhook.log"
assert_eq "the running configuration stays: the token still works" 202 \
    "$(status_with "$NEW_TOKEN")"
# What only a restart may change.
sed "s|^state_dir: .*|state_dir: $T/other-state|" "$T/good.yaml" >"$T/tdhook.yaml"
check "SIGHUP with another state_dir" kill -HUP "$TDHOOK_PID"
check "another state_dir needs a restart, and says so" wait_until 5 grep -q \
    "state_dir and queue.runners change only with a restart" "$T/tdhook.log"
assert_eq "and the running configuration stays" 202 "$(status_with "$NEW_TOKEN")"
cp "$T/good.yaml" "$T/tdhook.yaml"
assert_no_secrets "the server log" "$T/tdhook.log"
finish
