#!/usr/bin/env bash
# tdhook under valgrind: memcheck with --leak-check=full on the CGI mode
# (requests of each kind, errors included) and the CLI commands
# (check-config, queue list/show/retry/drop, stock-check --dry-run and
# sync-reservation --dry-run against the fakes, doctor --no-mail, usage
# and config errors).  One line per run, "clean" or what valgrind found,
# then "no leaks, no errors" or the findings (the first stacks of each
# log).  With ALSO_TESTS=1 it then runs tests/integration/cgi.sh and
# cli.sh with TDHOOK pointing at the same valgrind wrapper.
#
#   TDHOOK=build/release/tdhook bash tests/valgrind.sh
#
# Build without ASan (valgrind and ASan do not mix): build/release is right.
# Exit 1 on any finding, 77 when valgrind, python3 or aiosmtpd is missing.
# Manual (a few minutes): not in make check.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

VALGRIND=${VALGRIND:-/usr/bin/valgrind}
PY=/usr/bin/python3
[ -x "$VALGRIND" ] || skip "valgrind is not installed"
[ -x "$PY" ] || skip "no /usr/bin/python3"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "python3-aiosmtpd is not installed"
t_setup
if nm -D "$TDHOOK" 2>/dev/null | grep -q __asan_init; then
    skip "$TDHOOK is built with ASan; use a build without --enable-debug"
fi
REAL_TDHOOK=$TDHOOK
mkdir -p "$T/vg"

# The wrapper: every tdhook run leaves its own log in $T/vg.
cat >"$T/vg-tdhook" <<EOF
#!/bin/sh
exec $VALGRIND -q --leak-check=full --show-leak-kinds=definite,indirect,possible \\
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 \\
    --track-origins=yes --num-callers=30 --log-file=$T/vg/vg.%p.log $REAL_TDHOOK "\$@"
EOF
chmod +x "$T/vg-tdhook"

start_py fake-topdesk topdesk.py --user tdhook-api --password "$TD_SECRET"
TD=http://127.0.0.1:$PY_PORT
start_py fake-graph graph.py --tenant t --client-id c --client-secret "$GRAPH_SECRET"
EX=http://127.0.0.1:$PY_PORT
mkdir -p "$T/mail"
start_py fake-smtp_sink smtp_sink.py --maildir "$T/mail"
SMTP_PORT=$PY_PORT

write_config "hooks={tokens: [$TOKEN1, $TOKEN2], max_body: 4KiB}" \
    "admin_mail=[tdhook-admin@example.com]" \
    "topdesk={url: '$TD', username: tdhook-api, application_password: $TD_SECRET, timeout: 10s}" \
    "mail={smtp_url: 'smtp://127.0.0.1:$SMTP_PORT', starttls: off, from: tdhook@example.com}" \
    "stock_check={to: [inkoop@example.com]}" \
    "reservations={exchange: graph, notify: {requester: true, to: [facilities@example.com]}}" \
    "graph={tenant: t, client_id: c, client_secret: $GRAPH_SECRET, login_url: '$EX', graph_url: '$EX/v1.0'}" \
    "queue={runners: 0, max_jobs: 6}"
printf 'state_dir: %s\nhooks: {tokens: [x]}\nbogus_key: 1\n' "$T/state" >"$T/bad.yaml"

RUNS=0
# vg NAME CMD...: one run under valgrind (stdin from $T/in if it exists);
# its log files are renamed after NAME.
vg() {
    local name=$1 rc f
    shift
    RUNS=$((RUNS + 1))
    rm -f "$T"/vg/vg.*.log
    timeout 300 "$@" <"${VG_IN:-/dev/null}" >"$T/out" 2>"$T/err"
    rc=$?
    for f in "$T"/vg/vg.*.log; do
        [ -e "$f" ] || continue
        mv "$f" "$T/vg/$RUNS-$name.${f##*/vg.}"
    done
    printf '%-40s exit %-3s %s\n' "$name" "$rc" "$(head -c 100 "$T/out" | tr '\n\r' '  ')"
}

# cgi NAME METHOD PATH BODY [VAR=VALUE...]: one CGI request.
cgi() {
    local name=$1 method=$2 path=$3 body=$4
    shift 4
    printf '%s' "$body" >"$T/in"
    VG_IN=$T/in vg "cgi $name" env -i PATH="$PATH" TDHOOK_CONFIG="$T/tdhook.yaml" \
        GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD="$method" \
        PATH_INFO="$path" SCRIPT_NAME=/tdhook CONTENT_TYPE=application/json \
        CONTENT_LENGTH="${#body}" HTTP_AUTHORIZATION="Bearer $TOKEN1" "$@" "$T/vg-tdhook"
}

say "== CGI mode"
cgi healthz GET /healthz ""
cgi metrics GET /metrics ""
cgi reservation POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f"}'
cgi reservation-number POST /hooks/reservation '{"number":"R 2406 001","event":"changed"}' \
    HTTP_IDEMPOTENCY_KEY=k-1
cgi idempotent-repeat POST /hooks/reservation '{"number":"R 2406 001","event":"changed"}' \
    HTTP_IDEMPOTENCY_KEY=k-1
cgi stock-check POST /hooks/stock-check '{"dry_run":true}'
cgi reconcile POST /hooks/reconcile '{"days":3}'
cgi empty-body POST /hooks/stock-check ""
JOB=$(sed -n 's/.*"job":"\([^"]*\)".*/\1/p' "$T/out" | head -n 1)
cgi job GET "/jobs/${JOB:-none}" ""
cgi job-unknown GET /jobs/0123456789ab-0123456789a ""
cgi job-bad-id GET /jobs/../../etc ""
cgi bad-json POST /hooks/reservation '{"id": '
cgi not-object POST /hooks/reservation '[1,2]'
cgi missing-field POST /hooks/reservation '{"event":"created"}'
cgi no-token POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e02"}' HTTP_AUTHORIZATION=
cgi wrong-token POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e02"}' HTTP_AUTHORIZATION="Bearer nope"
cgi basic-auth POST /hooks/stock-check '{}' HTTP_AUTHORIZATION="Basic $(printf 'u:%s' "$TOKEN2" | base64 -w0)"
cgi wrong-method GET /hooks/reservation ""
cgi unknown-route GET /nope ""
cgi not-json POST /hooks/reservation 'id=1' CONTENT_TYPE=text/plain
cgi too-big POST /hooks/reservation "{\"id\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}"
cgi short-body POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e02"}' CONTENT_LENGTH=50
cgi bad-length POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e02"}' CONTENT_LENGTH=1x
cgi queue-full POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f"}'
cgi queue-full-2 POST /hooks/reservation '{"id":"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f"}'

say "== CLI"
C=(-c "$T/tdhook.yaml")
vg "check-config" "$T/vg-tdhook" "${C[@]}" check-config
vg "check-config (errors)" "$T/vg-tdhook" -c "$T/bad.yaml" check-config
vg "check-config (no file)" "$T/vg-tdhook" -c "$T/missing.yaml" check-config
vg "usage" "$T/vg-tdhook" "${C[@]}" no-such-command
vg "--help" "$T/vg-tdhook" --help
vg "queue list" "$T/vg-tdhook" "${C[@]}" queue list
vg "queue show" "$T/vg-tdhook" "${C[@]}" queue show "${JOB:-none}"
vg "queue show (unknown)" "$T/vg-tdhook" "${C[@]}" queue show 0123456789ab-0123456789a
vg "queue retry" "$T/vg-tdhook" "${C[@]}" queue retry "${JOB:-none}"
vg "queue drop" "$T/vg-tdhook" "${C[@]}" queue drop "${JOB:-none}"
vg "stock-check --dry-run" "$T/vg-tdhook" "${C[@]}" stock-check --dry-run
vg "stock-check --dry-run --json" "$T/vg-tdhook" "${C[@]}" stock-check --dry-run --json
vg "sync-reservation --dry-run" "$T/vg-tdhook" "${C[@]}" sync-reservation "R $(date -u +%y%m) 001" --dry-run
vg "sync-reservation (unknown) --dry-run" "$T/vg-tdhook" "${C[@]}" sync-reservation "R 0000 999" --dry-run
vg "reconcile --dry-run" "$T/vg-tdhook" "${C[@]}" reconcile --days 7 --dry-run
vg "doctor --no-mail" "$T/vg-tdhook" "${C[@]}" doctor --no-mail
curl -sS -o /dev/null -X POST "$TD/__fake/faults" -d '{"rules":[{"path":"/tas/api/","status":503}]}'
vg "stock-check --dry-run (TOPdesk 503)" "$T/vg-tdhook" "${C[@]}" stock-check --dry-run
vg "sync-reservation (TOPdesk 503)" "$T/vg-tdhook" "${C[@]}" sync-reservation "R $(date -u +%y%m) 001" --dry-run
curl -sS -o /dev/null -X POST "$TD/__fake/faults" -d '{"rules":[]}'

# --- the findings ------------------------------------------------------------------
say ""
findings=0
for f in "$T"/vg/*.log; do
    [ -s "$f" ] || continue
    findings=$((findings + 1))
    name=${f##*/}
    say "---- ${name%.*.log}: $(grep -cE '^==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and destination)' "$f") errors; $(grep -E 'definitely lost|indirectly lost|possibly lost' "$f" | sed 's/^==[0-9]*== *//' | tr '\n' ';')"
    sed 's/^==[0-9]*== //' "$f" | head -n 60
done
say "valgrind: $RUNS runs, $findings with findings"
if [ "$findings" -eq 0 ]; then
    ok "no leaks, no errors"
else
    fail "valgrind found leaks or errors in $findings runs (logs above; KEEP_TMP=1 keeps $T/vg)"
fi

if [ "${ALSO_TESTS:-0}" = 1 ]; then
    for t in cgi cli; do
        rm -f "$T"/vg/vg.*.log
        TDHOOK=$T/vg-tdhook bash "$top_srcdir/tests/integration/$t.sh" >"$T/it-$t.log" 2>&1
        rc=$?
        n=$(find "$T/vg" -name 'vg.*.log' -size +0 | wc -l)
        say "tests/integration/$t.sh under valgrind: exit $rc, $n runs with findings"
        if [ "$n" -eq 0 ]; then
            ok "$t.sh: no leaks, no errors"
        else
            fail "$t.sh: findings in $n runs"
            find "$T/vg" -name 'vg.*.log' -size +0 | head -n 3 | xargs -r head -n 40
        fi
    done
fi
finish
