#!/usr/bin/env bash
# shellcheck disable=SC2317  # helpers called indirectly
# `tdhook doctor` against the fakes (fake TOPdesk, fake Graph, SMTP sink),
# with each broken preparation that issue 5 lists:
#
#  1. all good on the demo data: exit 0, one line per check, the demo's
#     known gaps (an unmapped room, a person without e-mail, a stock room
#     without minimum) are WARN with their fix, and the test mail arrives;
#  2. a missing right (403) on persons, then on reservations: FAIL, exit 69;
#  3. the "Minimale voorraad" field removed: FAIL stock.minimum-field;
#  4. every reservable room unmapped: WARN rooms.mapping;
#  5. a wrong Graph secret: FAIL exchange.login, the secret shown nowhere;
#  6. a mapped mailbox the fake Graph does not serve: FAIL exchange.mailboxes;
#  7. an SMTP server that refuses the sender: FAIL mail.sender.
#
# Needs /usr/bin/python3 with aiosmtpd (Debian: python3-aiosmtpd) and curl;
# exit 77 (skip) without them.  KEEP_TMP=1 keeps the temporary directory.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "aiosmtpd is missing (Debian: python3-aiosmtpd)"
need_cmd curl

# shellcheck disable=SC2119  # t_setup takes no argument here
t_setup

TD_USER=tdhook-api
TENANT=contoso.onmicrosoft.com
GRAPH_CLIENT=11111111-2222-3333-4444-555555555555
FROM=tdhook@example.com
ADMIN=tdhook-admin@example.com
MAILDIR=$T/mail
mkdir -p "$MAILDIR" "$T/mail-refuse"
: >"$T/all-out.txt"    # every doctor output, for the secrets check

# --- the fakes ------------------------------------------------------------

start_py topdesk topdesk.py --dataset demo --user "$TD_USER" --password "$TD_SECRET"
TD_PORT=$PY_PORT
start_py graph graph.py --tenant "$TENANT" --client-id "$GRAPH_CLIENT" --client-secret "$GRAPH_SECRET"
GRAPH_PORT=$PY_PORT
start_py smtp smtp_sink.py --maildir "$MAILDIR"
SMTP_PORT=$PY_PORT
start_py smtp-refuse smtp_sink.py --maildir "$T/mail-refuse" --refuse-sender "$FROM"
SMTP_REFUSE_PORT=$PY_PORT

# --- the config -------------------------------------------------------------

# write_doctor_config [GRAPH_SECRET_VALUE] [SMTP_PORT]
write_doctor_config() {
    write_config "hooks={tokens: [$TOKEN1, $TOKEN2]}" "admin_mail=[$ADMIN]" \
        "topdesk={url: 'http://127.0.0.1:$TD_PORT', username: $TD_USER, application_password: $TD_SECRET, timeout: 10s}" \
        "mail={smtp_url: 'smtp://127.0.0.1:${2:-$SMTP_PORT}', starttls: auto, from: $FROM}" \
        "stock_check={minimum_field: Minimale voorraad, to: [inkoop@example.com]}" \
        "reservations={exchange: graph, room_mapping: {topdesk_field: optionalFields1.text1}}" \
        "graph={tenant: $TENANT, client_id: $GRAPH_CLIENT, client_secret: ${1:-$GRAPH_SECRET}, login_url: 'http://127.0.0.1:$GRAPH_PORT', graph_url: 'http://127.0.0.1:$GRAPH_PORT/v1.0'}"
}

# doctor [ARGS...]: runs `tdhook doctor`; sets DR_RC and DR_OUT (stdout and
# stderr together).
doctor() {
    "$TDHOOK" -c "$T/tdhook.yaml" doctor "$@" >"$T/doctor.out" 2>&1
    DR_RC=$?
    DR_OUT=$(cat "$T/doctor.out")
    {
        say "==== doctor $*"
        cat "$T/doctor.out"
    } >>"$T/all-out.txt"
}

# line CHECK: the doctor line of CHECK (the first one).
line() {
    printf '%s\n' "$DR_OUT" | awk -v c="$1" '$2 == c { print; exit }'
}

# level CHECK: OK, WARN or FAIL of CHECK's line (empty without one).
level() {
    line "$1" | awk '{ print $1 }'
}

# expect LEVEL CHECK ERE WHAT: CHECK's line has LEVEL and matches ERE.
expect() {
    local want=$1 chk=$2 re=$3 what=$4 l
    l=$(line "$chk")
    if [ -z "$l" ]; then
        fail "$what: no line for $chk in: $(printf '%s' "$DR_OUT" | head -c 1500)"
    elif [ "$(level "$chk")" != "$want" ]; then
        fail "$what: $chk is not $want: $l"
    elif ! printf '%s' "$l" | grep -qE -- "$re"; then
        fail "$what: $chk line does not match /$re/: $l"
    else
        ok "$what"
    fi
}

mail_count() {
    find "$1" -maxdepth 1 -name '*.eml' | wc -l
}

mail_more_than() {
    [ "$(mail_count "$1")" -gt "$2" ]
}

write_doctor_config

# === 1. all good on the demo data ==========================================
say "# 1. the demo data"
before=$(mail_count "$MAILDIR")
doctor
say "$DR_OUT" | sed 's/^/#   /'
assert_eq "demo: doctor exits 0" 0 "$DR_RC"
bad=$(printf '%s\n' "$DR_OUT" | grep -E '^[A-Z]+ ' | grep -vE '^(OK  |WARN|FAIL)  [a-z_.-]+ +[^ ]' || true)
assert_eq "demo: every check line is 'OK|WARN|FAIL  <check>  <message>'" "" "$bad"
assert_eq "demo: no FAIL" "" "$(printf '%s\n' "$DR_OUT" | grep -E '^FAIL ' || true)"
for c in config state_dir topdesk.login topdesk.reservations topdesk.reservable-rooms \
    topdesk.locations topdesk.cancellation-reasons topdesk.persons stock.minimum-field \
    rooms.mapping exchange.login exchange.mailboxes mail.sender; do
    n=$(printf '%s\n' "$DR_OUT" | awk -v c="$c" '$2 == c' | wc -l)
    assert_eq "demo: one line for $c" 1 "$n"
done
expect OK topdesk.login "logged in" "demo: TOPdesk login OK"
expect WARN rooms.mapping 'Stilteruimte 2\.14' "demo: the unmapped room is a WARN naming it"
expect WARN rooms.mapping 'optionalFields1\.text1' "demo: rooms.mapping names where to fill in the mailbox"
expect WARN topdesk.persons 'Dijk, Kees van' "demo: the person without e-mail is a WARN naming him"
expect WARN topdesk.persons 'person card' "demo: topdesk.persons tells where to fill in the address"
expect WARN stock.minimum-field '"Minimale voorraad"' "demo: a stock room without minimum is a WARN"
expect WARN stock.minimum-field 'fill it in' "demo: stock.minimum-field tells to fill in the minimum"
expect OK exchange.login 'login works' "demo: Graph login OK"
expect OK exchange.mailboxes 'all 3 mapped mailboxes' "demo: the 3 mapped mailboxes are reachable"
expect OK mail.sender "accepted a test mail from $FROM" "demo: mail.sender OK"
assert_match "demo: a summary line" "$DR_OUT" '^[0-9]+ checks: [0-9]+ OK, [0-9]+ WARN, 0 FAIL$'
if wait_until 10 mail_more_than "$MAILDIR" "$before"; then
    ok "demo: the test mail arrived in the maildir"
    m=$(find "$MAILDIR" -maxdepth 1 -name '*.eml' | sort | tail -n 1)
    assert_contains "demo: the test mail went to admin_mail" "$(cat "${m%.eml}.json")" "\"$ADMIN\""
    assert_contains "demo: the test mail came from mail.from" "$(cat "${m%.eml}.json")" "\"$FROM\""
    assert_contains "demo: the test mail's subject" "$(cat "$m")" "tdhook doctor: test mail"
else
    fail "demo: no test mail in $MAILDIR within 10 s"
fi
# --no-mail: no mail.sender line and no mail.
before=$(mail_count "$MAILDIR")
doctor --no-mail
assert_eq "--no-mail: exit 0" 0 "$DR_RC"
assert_eq "--no-mail: no mail.sender line" "" "$(line mail.sender)"
sleep 0.5
assert_eq "--no-mail: no mail sent" "$before" "$(mail_count "$MAILDIR")"

# === 2. a missing right (403) ==============================================
say "# 2. 403"
fake POST /__fake/deny '{"paths":["/tas/api/persons"]}' >/dev/null
doctor --no-mail
assert_eq "persons denied: exit 69" 69 "$DR_RC"
expect FAIL topdesk.persons '403' "persons denied: FAIL topdesk.persons with 403"
expect FAIL topdesk.persons 'give its permission group read rights for persons' \
    "persons denied: the fix is named"
expect OK topdesk.reservations '' "persons denied: reservations still OK"
fake POST /__fake/deny '{"paths":["/tas/api/reservations"]}' >/dev/null
doctor --no-mail
assert_eq "reservations denied: exit 69" 69 "$DR_RC"
expect FAIL topdesk.reservations '403.*read rights for reservations' \
    "reservations denied: FAIL topdesk.reservations with 403 and the fix"
expect WARN topdesk.persons '' "reservations denied: persons back to the demo's WARN"
fake POST /__fake/deny '{"paths":["/tas/api/locations"]}' >/dev/null
doctor --no-mail
assert_eq "locations denied: exit 69" 69 "$DR_RC"
expect FAIL topdesk.locations '403.*read rights for locations' \
    "locations denied: FAIL topdesk.locations with 403 and the fix"
fake POST /__fake/deny '{"paths":[]}' >/dev/null

# === 3. the minimum field ===================================================
say "# 3. the field"
fake POST /__fake/field '{"remove":true}' >/dev/null
doctor --no-mail
assert_eq "no field: exit 69" 69 "$DR_RC"
expect FAIL stock.minimum-field '[Cc]reate.*number field' \
    "no field: FAIL stock.minimum-field tells to create the number field"
expect FAIL stock.minimum-field 'Minimale voorraad' "no field: the line names the field"
fake POST /__fake/field '{"id":"minimale-voorraad","name":"Minimale voorraad"}' >/dev/null
doctor --no-mail
expect WARN stock.minimum-field 'on [0-9]+ of [0-9]+ stock rooms' \
    "field back: WARN with how many stock rooms have it filled in"

# === 4. every room unmapped =================================================
say "# 4. unmapped rooms"
fake GET /__fake/data >"$T/data.json" || die "GET /__fake/data failed"
mapfile -t ROOMS < <("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
for l in d["locations"]:
    if l.get("reservable") and not l.get("archived"):
        print(l["id"] + "\t" + ((l.get("optionalFields1") or {}).get("text1") or ""))' "$T/data.json")
assert_eq "the demo has 4 reservable rooms" 4 "${#ROOMS[@]}"
for r in "${ROOMS[@]}"; do
    fake POST "/__fake/locations/${r%%$'\t'*}" '{"text1":""}' >/dev/null
done
doctor --no-mail
expect WARN rooms.mapping '0 of 4 reservable rooms' "all unmapped: WARN rooms.mapping"
expect WARN rooms.mapping 'Vergaderzaal 1\.01' "all unmapped: the rooms are named"
assert_eq "all unmapped: no exchange.mailboxes FAIL" "" "$(printf '%s\n' "$DR_OUT" | grep -E '^FAIL +exchange' || true)"
for r in "${ROOMS[@]}"; do
    fake POST "/__fake/locations/${r%%$'\t'*}" "{\"text1\":\"${r#*$'\t'}\"}" >/dev/null
done
doctor --no-mail
expect OK exchange.mailboxes 'all 3 mapped' "mapping restored: all 3 mailboxes reachable again"

# === 5. a wrong Graph secret ================================================
say "# 5. wrong Graph secret"
BAD_SECRET=wrong-$(rand_hex 10)
write_doctor_config "$BAD_SECRET"
# The earlier runs left a valid token in state_dir/graph-token.  A secret
# that was changed (or mistyped) in the config must fail all the same: the
# service would fail as soon as that token expires.
check "a Graph token is cached in state_dir from the earlier runs" test -s "$T/state/graph-token"
doctor --no-mail
assert_eq "bad secret, token cached: exit 69" 69 "$DR_RC"
expect FAIL exchange.login 'invalid_client|secret|401' "bad secret, token cached: FAIL exchange.login"
assert_not_contains "bad secret, token cached: the wrong secret is not shown" "$DR_OUT" "$BAD_SECRET"
# And without any cached token.
rm -f "$T/state/graph-token" "$T/state/graph-token.lock"
doctor --no-mail
say "$DR_OUT" | grep -E '^[A-Z]+ +exchange' | sed 's/^/#   /'
assert_eq "bad secret: exit 69" 69 "$DR_RC"
expect FAIL exchange.login 'invalid_client|secret|401' "bad secret: FAIL exchange.login"
expect FAIL exchange.login 'graph\.client_secret' "bad secret: the fix names graph.client_secret"
assert_not_contains "bad secret: the wrong secret is not shown" "$DR_OUT" "$BAD_SECRET"
assert_not_contains "bad secret: the real secret is not shown" "$DR_OUT" "$GRAPH_SECRET"
assert_eq "bad secret: no exchange.mailboxes line (nothing to try without a login)" "" \
    "$(line exchange.mailboxes)"
write_doctor_config

# === 6. a mailbox the fake Graph does not serve =============================
say "# 6. unknown mailbox"
UNKNOWN=zaal-weg@fabrikam.example
first=${ROOMS[0]%%$'\t'*}
fake POST "/__fake/locations/$first" "{\"text1\":\"$UNKNOWN\"}" >/dev/null
doctor --no-mail
assert_eq "unknown mailbox: exit 69" 69 "$DR_RC"
expect FAIL exchange.mailboxes "$UNKNOWN" "unknown mailbox: FAIL exchange.mailboxes naming it"
expect FAIL exchange.mailboxes 'check the room mapping' "unknown mailbox: the fix is named"
expect FAIL exchange.mailboxes '1 of 3' "unknown mailbox: 1 of 3 cannot be reached"
expect OK exchange.login '' "unknown mailbox: the login itself is OK"
fake POST "/__fake/locations/$first" "{\"text1\":\"${ROOMS[0]#*$'\t'}\"}" >/dev/null

# === 7. SMTP refuses the sender =============================================
say "# 7. SMTP refuses the sender"
write_doctor_config "" "$SMTP_REFUSE_PORT"
doctor
assert_eq "sender refused: exit 69" 69 "$DR_RC"
expect FAIL mail.sender '550' "sender refused: FAIL mail.sender with the server's answer"
expect FAIL mail.sender "$FROM" "sender refused: the line names the sender"
assert_eq "sender refused: nothing stored" 0 "$(mail_count "$T/mail-refuse")"
write_doctor_config
before=$(mail_count "$MAILDIR")
doctor
assert_eq "good sink again: exit 0" 0 "$DR_RC"
expect OK mail.sender '' "good sink again: OK mail.sender"
if wait_until 10 mail_more_than "$MAILDIR" "$before"; then
    ok "good sink again: the test mail arrived"
else
    fail "good sink again: no test mail"
fi

# === a mail that died ========================================================
# A dead mail job (a digest nobody got) is never mailed about: doctor names
# it.  The job file is the queue's own format (tdhook(8), FILES).
say "# dead mail"
expect OK queue.dead-letters '' "no dead letter: OK queue.dead-letters"
mkdir -p "$T/state/dead"
now_ms=$(($(date +%s) * 1000))
printf '{"id":"%s","kind":"mail","payload":{"to":["inkoop@example.com"],"message":"x"},"attempts":1,"created_ms":%s,"not_before_ms":0,"last_error":"smtp 127.0.0.1: 550 mailbox unavailable","finished_ms":%s}' \
    0123456789ab-0123456789a "$now_ms" "$now_ms" >"$T/state/dead/0123456789ab-0123456789a.job"
doctor --no-mail
assert_eq "dead mail: exit 69" 69 "$DR_RC"
expect FAIL queue.dead-mail '1 mail could not be sent' "dead mail: FAIL queue.dead-mail"
expect FAIL queue.dead-mail '550 mailbox unavailable' "dead mail: with the reason"
expect FAIL queue.dead-mail 'tdhook queue retry 0123456789ab-0123456789a' "dead mail: the fix"
rm -f "$T/state/dead/0123456789ab-0123456789a.job"

# === secrets =================================================================
assert_no_secrets "doctor output" "$T/all-out.txt"

finish
