#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # t_setup without args; functions run from traps
# The README's first command, the way CI can run it: `bash deploy/demo.sh`
# with the binary under test (DEMO_SKIP_BUILD=1 TDHOOK=...), no apt-get
# (DEMO_SKIP_INSTALL=1), its files in a temporary directory and nginx on a
# free port.  Checks that it shows what it promises (doctor's lines, a
# digest mail with its CSV, a room appointment made and then moved, the
# curl lines to try next), that the demo keeps running afterwards, that a
# second run replaces the first, that no secret is printed, and that
# `bash deploy/demo.sh stop` leaves no process behind.
#
# Exit 77 (skipped) without nginx, curl, /usr/bin/python3 or aiosmtpd.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$NGINX" ] || skip "nginx is not installed ($NGINX)"
need_cmd curl
[ -x "$PY" ] || skip "$PY is not installed"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "aiosmtpd is missing (Debian: python3-aiosmtpd)"
unset TDHOOK_TEST_JOB

t_setup
# nginx's workers (www-data when run as root) must reach the socket.
chmod 755 "$T"
DEMO=$T/demo
PORT=$(free_port) || die "no free port"

# demo [ARGS]: deploy/demo.sh as the test runs it; output in $T/demo-N.out.
RUNS=0
demo() {
    RUNS=$((RUNS + 1))
    OUT=$T/demo-$RUNS.out
    TDHOOK_DEMO_DIR=$DEMO DEMO_PORT=$PORT DEMO_SKIP_BUILD=1 DEMO_SKIP_INSTALL=1 \
        TDHOOK=$TDHOOK timeout 180 bash "$top_srcdir/deploy/demo.sh" "$@" \
        >"$OUT" 2>&1
    DEMO_RC=$?
}

# demo_procs: the pids of processes whose command line names the demo dir.
demo_procs() {
    local f pid cmd
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" = "$$" ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        case $cmd in *"$DEMO/"*) say "$pid" ;; esac
    done
    return 0
}

# Whatever happens, the demo is stopped before lib.sh removes $T.
on_exit() {
    local rc=$?
    if [ -d "$DEMO/pids" ]; then
        TDHOOK_DEMO_DIR=$DEMO bash "$top_srcdir/deploy/demo.sh" stop >/dev/null 2>&1 || true
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -d "$DEMO/logs" ]; then
        cp "$DEMO"/logs/*.log "$T/" 2>/dev/null || true
        [ -n "${OUT:-}" ] && [ -r "$OUT" ] && { say "---- demo output ----"; cat "$OUT"; }
    fi
    (exit "$rc")
    t_cleanup
}
trap on_exit EXIT

# --- the first run ------------------------------------------------------------
t0=$SECONDS
demo
assert_eq "the demo exits 0" 0 "$DEMO_RC"
say "# the demo took $((SECONDS - t0)) s"
out=$(cat "$OUT")

assert_match "doctor's lines are shown" "$out" '^  OK +topdesk\.login'
assert_match "doctor warns about the unmapped room" "$out" '^  WARN +rooms\.mapping .*Stilteruimte 2\.14'
assert_match "doctor warns about the person without e-mail" "$out" '^  WARN +topdesk\.persons .*Dijk'
assert_contains "the stock hook's curl line" "$out" "/hooks/stock-check"
assert_match "the stock check job is done" "$out" 'stock-check job [^ ]+: done'
assert_match "the digest mail's subject" "$out" '^  Subject: +.*[Ss]tock'
assert_match "the digest goes to the buyer" "$out" '^  To: +inkoop@contoso\.nl'
assert_match "the text part is decoded" "$out" '\| Laptops +Magazijn Utrecht'
assert_match "the CSV attachment is named" "$out" 'attachment: [^ ]+\.csv \(text/csv'
eml=$(sed -n -E 's/.*received it: (.*\.eml)$/\1/p' "$OUT" | head -n 1)
check "the .eml file it names exists in the demo's mail directory" \
    test -s "$eml" -a "${eml%/*}" = "$DEMO/mail"
assert_match "the appointment is created" "$out" 'Vergaderzaal 1\.01: created'
assert_match "the appointment's mailbox" "$out" '^  mailbox +vergaderzaal-1\.01@contoso\.onmicrosoft\.com'
assert_match "the appointment carries the reservation id" "$out" '^  TopdeskReservationId +[0-9a-f-]{36}'
assert_match "the match key is written back" "$out" '^  externalLink .*type 8347'
assert_match "the changed reservation updates it" "$out" 'Vergaderzaal 1\.01: updated'
assert_contains "the same appointment, moved" "$out" "same event id"
assert_match "the digest's time is local" "$out" 'Stock check of [A-Z][a-z]{2} [0-9]+ [A-Z][a-z]{2} 20[0-9]{2}, [0-9]{2}:[0-9]{2}:'
html=$(printf '%s\n' "$out" | sed -n 's/^  the HTML part, saved: //p' | head -n 1)
csv=$(printf '%s\n' "$out" | sed -n 's/^  the CSV attachment, saved: //p' | head -n 1)
check "the HTML digest is saved beside the mail ($html)" test -s "$html"
check "the CSV is saved beside the mail ($csv)" test -s "$csv"
assert_match "the cancelled reservation's appointment goes" "$out" 'Vergaderzaal 1\.01: deleted'
assert_contains "and the demo says the room is free" "$out" "the room is free again"
assert_match "an unmapped room is skipped" "$out" 'Stilteruimte 2\.14: skipped: room not mapped'
assert_match "its requester is told in plain words" "$out" \
    '^  Subject: +Your reservation R [0-9 ]+: Stilteruimte 2\.14 is not in the room calendar'
assert_match "and facilities with the field to fill in" "$out" 'location field optionalFields1\.text1'
assert_contains "the curl lines to try next" "$out" "/hooks/reconcile"
assert_contains "how to stop" "$out" "bash deploy/demo.sh stop"
assert_not_contains "no FAIL from doctor" "$out" "FAIL  "

# No secret on the screen: the token is shown as $TOKEN.
for f in tokens topdesk.secret graph.secret; do
    secret=$(head -n 1 "$DEMO/secrets/$f" 2>/dev/null)
    if [ -n "$secret" ]; then
        assert_not_contains "the secret of $f is not printed" "$out" "$secret"
    else
        fail "no secret in $DEMO/secrets/$f"
    fi
    assert_eq "$f is mode 600" 600 "$(stat -c %a "$DEMO/secrets/$f" 2>/dev/null)"
done
assert_eq "the config is mode 600" 600 "$(stat -c %a "$DEMO/tdhook.yaml" 2>/dev/null)"

# --- it keeps running ------------------------------------------------------------
BASE=http://127.0.0.1:$PORT
req GET /healthz
assert_status 200 "GET /healthz after the demo"
TOKEN=$(head -n 1 "$DEMO/secrets/tokens")
req POST /hooks/stock-check -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"dry_run": true}'
assert_status 202 "a hook with the token the demo printed the path of"
first_pids=$(demo_procs | sort | tr '\n' ' ')

# --- a second run replaces the first --------------------------------------------------
demo
assert_eq "the second run exits 0" 0 "$DEMO_RC"
out=$(cat "$OUT")
assert_contains "the second run stops the first" "$out" "stopping the previous demo"
assert_match "the second run makes the appointment again" "$out" 'Vergaderzaal 1\.01: created'
assert_match "the second run mails a digest" "$out" '^  Subject: +.*[Ss]tock'
still=
for pid in $first_pids; do
    if alive "$pid" && grep -qxF "$pid" <<<"$(demo_procs)"; then still="$still $pid"; fi
done
assert_eq "no process of the first run is left" "" "$still"

# --- stop -------------------------------------------------------------------------------
demo stop
assert_eq "stop exits 0" 0 "$DEMO_RC"
assert_contains "stop names what it stopped" "$(cat "$OUT")" "stopped tdhook"
wait_until 5 test -z "$(demo_procs)" || true
left=$(demo_procs | tr '\n' ' ')
assert_eq "stop leaves no process" "" "${left% }"
port_free() { ! listening "tcp:127.0.0.1:$PORT"; }
check "the port is free again" port_free
demo stop
assert_eq "a second stop is harmless" 0 "$DEMO_RC"

finish
