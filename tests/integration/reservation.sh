#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # helpers with optional args; scenarios called through a table
# The reservation sync end to end: one table of scenarios, run against the
# Exchange backend that BACKEND names (graph, the default, or ews).
#
# nginx + `tdhook serve` in front, the fake TOPdesk (reservations,
# locations with the room mailbox in optionalFields1.text1), the fake Graph
# or the fake EWS, and the SMTP sink behind.  Each scenario books in its own
# time slot, drives tdhook through POST /hooks/reservation and
# /hooks/reconcile (the CLI only for --dry-run), and asserts the final state
# both in the fake room calendars and in the fake TOPdesk.  One PASS/FAIL
# line per scenario (the details of a failed one below it; VERBOSE=1 shows
# them all), a summary, exit 1 on any failure, 77 when python3, aiosmtpd,
# a fake or the EWS backend is missing.
#
# tests/integration/reservation-graph.sh and reservation-ews.sh are the two
# wrappers that make check runs.  SCENARIOS="create cancel" runs a subset.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

BACKEND=${BACKEND:-graph}
# The mails' language and zone: the EWS run speaks Dutch in Amsterdam's time
# (reservation-ews.sh), the Graph run English in UTC.
MAIL_LANGUAGE=${MAIL_LANGUAGE:-en}
MAIL_TIMEZONE=${MAIL_TIMEZONE:-UTC}
PY=/usr/bin/python3
FAKES=$top_srcdir/tests/fakes
FACILITIES=facilities@example.com
LINK_TYPE=8347

case $BACKEND in
graph | ews) ;;
*)
    say "BACKEND must be graph or ews, not '$BACKEND'"
    exit 99
    ;;
esac

[ -x "$PY" ] || skip "no /usr/bin/python3"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "python3-aiosmtpd is not installed"
for f in topdesk.py smtp_sink.py "$BACKEND.py"; do
    [ -r "$FAKES/$f" ] || skip "tests/fakes/$f is missing"
done
grep -q '/__fake/reservations' "$FAKES/topdesk.py" ||
    skip "the fake TOPdesk serves no reservations yet"

t_setup nginx
say "# backend $BACKEND"
EWS_SECRET=ewspw-$(rand_hex 10)
GRAPH_CLIENT=5f0c3a52-7d3e-4b8e-9a41-$(rand_hex 6)
TENANT=contoso.onmicrosoft.com

# The helpers that read JSON, the calendars and the mails live in one Python
# process that answers requests on two FIFOs (see h below): starting Python
# for every check would cost more than the whole sync.  Its settings are the
# H_* variables exported before it starts; it lives beside this file.
HELPER_PY=$top_srcdir/tests/integration/reservation_helper.py

# --- the fakes ---------------------------------------------------------------

mkdir -p "$T/mail"
start_py fake-topdesk topdesk.py --user tdhook-api --password "$TD_SECRET"
TD=http://127.0.0.1:$PY_PORT
start_py fake-smtp_sink smtp_sink.py --maildir "$T/mail"
SMTP_PORT=$PY_PORT
if [ "$BACKEND" = graph ]; then
    start_py fake-graph graph.py --tenant "$TENANT" --client-id "$GRAPH_CLIENT" --client-secret "$GRAPH_SECRET"
    EX=http://127.0.0.1:$PY_PORT
    EXCHANGE_YAML="graph={tenant: $TENANT, client_id: $GRAPH_CLIENT, client_secret: $GRAPH_SECRET, login_url: '$EX', graph_url: '$EX/v1.0'}"
else
    start_py fake-ews ews.py --user 'CONTOSO\tdhook' --password "$EWS_SECRET" --auth ntlm
    EX=http://127.0.0.1:$PY_PORT
    EXCHANGE_YAML="ews={url: '$EX/EWS/Exchange.asmx', username: 'CONTOSO\\tdhook', password: $EWS_SECRET, auth: ntlm}"
fi

write_config "hooks={tokens: [$TOKEN1, $TOKEN2]}" "admin_mail=[tdhook-admin@example.com]" \
    "topdesk={url: '$TD', username: tdhook-api, application_password: $TD_SECRET, timeout: 10s}" \
    "mail={smtp_url: 'smtp://127.0.0.1:$SMTP_PORT', starttls: off, from: tdhook@example.com, language: $MAIL_LANGUAGE, timezone: $MAIL_TIMEZONE}" \
    "reservations={exchange: $BACKEND, reconcile_days: 30, notify: {requester: true, to: [$FACILITIES]}}" \
    "graph=" "$EXCHANGE_YAML" "queue={runners: 2, retry_base: 200ms, retry_max: 1s, max_attempts: 8}"

if [ "$BACKEND" = ews ]; then
    probe=$("$TDHOOK" -c "$T/tdhook.yaml" sync-reservation probe-0 --dry-run 2>&1)
    case $probe in
    *"no EWS backend"*) skip "EWS backend not built yet ($(printf '%s' "$probe" | head -n 1))" ;;
    esac
fi

start_tdhook
start_nginx
H_BACKEND=$BACKEND H_EX=$EX H_BASE=$BASE H_TOKEN=$TOKEN1 H_MAILDIR=$T/mail
export H_BACKEND H_EX H_BASE H_TOKEN H_MAILDIR
mkfifo "$T/helper.in" "$T/helper.out" || die "mkfifo failed"
"$PY" "$HELPER_PY" "$T/helper.in" "$T/helper.out" 2>>"$T/helper.log" &
EXTRA_PIDS+=("$!")
# Opened read-write, so neither open waits for the other end; a read
# times out instead of waiting for a helper that died.
exec 7<>"$T/helper.in" 8<>"$T/helper.out"
unset H_TOKEN

# h CMD ARGS...: one request to the helper (commands in reservation_helper.py's run());
# its output on stdout, its errors on stderr, its status returned.
h() {
    local line="" x rc nout nerr i l
    for x in "$@"; do
        line+=${x//$'\n'/$'\x1e'}$'\x1f'
    done
    printf '%s\n' "${line%$'\x1f'}" >&7 || return 1
    IFS=' ' read -r -t 60 rc nout nerr <&8 || { say "the helper does not answer" >&2; return 1; }
    for ((i = 0; i < nout; i++)); do
        IFS= read -r l <&8
        printf '%s\n' "$l"
    done
    for ((i = 0; i < nerr; i++)); do
        IFS= read -r l <&8
        printf '%s\n' "$l" >&2
    done
    return "$rc"
}

# --- JSON and control requests -----------------------------------------------

# pyj CODE [ARGS...]: runs CODE with the JSON of stdin as `d` and the
# arguments as `a` (a list); CODE prints what it wants.
pyj() {
    local code=$1 input
    shift
    input=$(cat)
    h py "$input" "$code" "$@"
}

# ctl METHOD URL [JSON]: a control request; prints the body, fails on a
# status other than 2xx.
ctl() {
    local method=$1 url=$2 data=${3-} st
    if [ -n "$data" ]; then
        st=$(curl -sS --max-time 10 -o "$T/ctl-body" -w '%{http_code}' -X "$method" \
            -H 'Content-Type: application/json' --data-binary "$data" "$url") || st=000
    else
        st=$(curl -sS --max-time 10 -o "$T/ctl-body" -w '%{http_code}' -X "$method" "$url") ||
            st=000
    fi
    cat "$T/ctl-body"
    case $st in
    2??) return 0 ;;
    *)
        say "control request $method $url answered $st: $(head -c 300 "$T/ctl-body")" >&2
        return 1
        ;;
    esac
}

# urlenc TEXT: TEXT percent-encoded for one path segment.
urlenc() {
    "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# at DAYS HH:MM: UTC time DAYS days after the day the test started,
# "YYYY-MM-DDTHH:MM:00Z" (fixed at start, so a run across midnight agrees
# with itself).
DAY0=$(date -u +%Y-%m-%d)
at() {
    date -u -d "$DAY0 $2 UTC + $1 days" +%Y-%m-%dT%H:%M:00Z
}

# --- the fake TOPdesk -----------------------------------------------------------

DATA=$(ctl GET "$TD/__fake/data") || die "the fake TOPdesk gives no data"

# loc_id NAME / loc_mailbox NAME / person_id FIRSTNAME
loc_id() {
    printf '%s' "$DATA" | pyj '
print(next(l["id"] for l in d["locations"] if l["name"] == a[0]))' "$1"
}
loc_mailbox() {
    printf '%s' "$DATA" | pyj '
print(next((l.get("optionalFields1") or {}).get("text1", "") for l in d["locations"]
           if l["name"] == a[0]).lower())' "$1"
}
person_id() {
    printf '%s' "$DATA" | pyj '
print(next(p["id"] for p in d["persons"] if p["firstName"] == a[0]))' "$1"
}

V101=$(loc_id "Vergaderzaal 1.01") || die "no Vergaderzaal 1.01 in the fake TOPdesk"
V102=$(loc_id "Vergaderzaal 1.02") || die "no Vergaderzaal 1.02"
BOARD=$(loc_id "Boardroom") || die "no Boardroom"
STILTE=$(loc_id "Stilteruimte 2.14") || die "no Stilteruimte 2.14"
MB101=$(loc_mailbox "Vergaderzaal 1.01")
MB102=$(loc_mailbox "Vergaderzaal 1.02")
MBBOARD=$(loc_mailbox "Boardroom")
PIET=$(person_id Piet) || die "no person Piet"
KEES=$(person_id Kees) || die "no person Kees"
PIET_MAIL=$(printf '%s' "$DATA" | pyj '
print(next(p["email"] for p in d["persons"] if p["firstName"] == "Piet").lower())')
if [ -z "$MB101" ] || [ -z "$MB102" ] || [ -z "$MBBOARD" ]; then
    die "the demo rooms have no mailbox"
fi

# Start from an empty reservation book: the demo's own bookings would fill
# the calendars at every reconcile.
for id in $(ctl GET "$TD/__fake/reservations" | pyj '
for r in d["reservations"]: print(r["id"])'); do
    ctl DELETE "$TD/__fake/reservations/$id" >/dev/null || die "cannot clear the demo reservations"
done

# new_res JSON: a reservation in the fake TOPdesk (no webhook); prints its id.
new_res() {
    ctl POST "$TD/__fake/reservations" "$1" | pyj 'print(d["id"])'
}

# res_patch ID JSON: changes a reservation behind tdhook's back.
res_patch() {
    ctl PATCH "$TD/__fake/reservations/$1" "$2" >/dev/null
}

# res_field ID EXPR: EXPR evaluated on the reservation r (Python).
res_field() {
    h get "$TD/__fake/reservations/$1" "$2"
}

# res_number ID
res_number() {
    res_field "$1" 'r["number"]'
}

# match_key ID: the id of tdhook's external link on the reservation, or "".
match_key() {
    res_field "$1" "next((l['id'] for l in r['externalLinks'] if l['type'] == '$LINK_TYPE'), '')"
}

# n_links ID: how many external links the reservation has.
n_links() {
    res_field "$1" 'len(r["externalLinks"])'
}

# booking SLOT ROOM_ID [EXTRA_JSON]: the JSON of a new reservation on day
# SLOT (each scenario its own day), 10:00-11:00 UTC, requested by Piet;
# EXTRA_JSON comes last, so its keys win over the defaults.
booking() {
    local extra=${3:+, $3}
    printf '{"briefDescription": "Overleg %s", "numberOfPersons": 4, "requester": {"id": "%s"}, "plannedStartDate": "%s", "plannedEndDate": "%s", "rooms": ["%s"]%s}' \
        "$1" "$PIET" "$(at "$1" 10:00)" "$(at "$1" 11:00)" "$2" "$extra"
}

# --- the room calendars, whatever the backend ----------------------------------

# all_appointments: JSON {mailbox: [{id, subject, start, end, reservation_id,
# body}]} of every live appointment in the fake calendars.
all_appointments() {
    h appts
}

# appointments MAILBOX: JSON list of the live appointments in MAILBOX.
appointments() {
    h appts "$1"
}

# appts_of RID [MAILBOX]: tab-separated "mailbox id start end subject" lines
# of the appointments carrying reservation RID (in MAILBOX or anywhere).
appts_of() {
    h of "$@"
}

# n_appts RID [MAILBOX]
n_appts() {
    appts_of "$@" | grep -c . || true
}

# seed_foreign MAILBOX START END SUBJECT: an appointment tdhook did not
# make (no property); prints its id.
seed_foreign() {
    if [ "$BACKEND" = graph ]; then
        ctl POST "$EX/__fake/events" "$(printf '{"mailbox": "%s", "event": {"subject": "%s", "start": {"dateTime": "%s", "timeZone": "UTC"}, "end": {"dateTime": "%s", "timeZone": "UTC"}}}' \
            "$1" "$4" "${2%Z}" "${3%Z}")" | pyj 'print(d["id"])'
    else
        ctl POST "$EX/__fake/items" "$(printf '{"mailbox": "%s", "subject": "%s", "start": "%s", "end": "%s"}' \
            "$1" "$4" "$2" "$3")" | pyj 'print(d["id"])'
    fi
}

# delete_behind_back MAILBOX ID: a user removes the appointment in Outlook.
delete_behind_back() {
    if [ "$BACKEND" = graph ]; then
        ctl DELETE "$EX/__fake/events/$(urlenc "$1")/$(urlenc "$2")" >/dev/null
    else
        ctl DELETE "$EX/__fake/items/$(urlenc "$1")/$(urlenc "$2")" >/dev/null
    fi
}

# move_behind_back MAILBOX ID START END: a user drags the appointment to
# another time (through the backend's own API, so its id stays).
move_behind_back() {
    local mb=$1 id=$2 start=$3 end=$4 tok ck
    if [ "$BACKEND" = graph ]; then
        tok=$(curl -sS --max-time 10 -X POST "$EX/$TENANT/oauth2/v2.0/token" \
            --data-urlencode grant_type=client_credentials \
            --data-urlencode "client_id=$GRAPH_CLIENT" \
            --data-urlencode "client_secret=$GRAPH_SECRET" \
            --data-urlencode scope=https://graph.microsoft.com/.default |
            pyj 'print(d["access_token"])') || return 1
        curl -sS --max-time 10 -o "$T/move-body" -w '%{http_code}' -X PATCH \
            -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
            --data-binary "$(printf '{"start": {"dateTime": "%s", "timeZone": "UTC"}, "end": {"dateTime": "%s", "timeZone": "UTC"}}' \
                "${start%Z}" "${end%Z}")" \
            "$EX/v1.0/users/$(urlenc "$mb")/events/$(urlenc "$id")" | grep -q '^200$'
    else
        ck=$(ctl GET "$EX/__fake/items" | pyj '
print(next(i["change_key"] for i in d.get(a[0].lower(), []) if i["id"] == a[1]))' "$mb" "$id") ||
            return 1
        cat >"$T/move.xml" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
 <soap:Header>
  <t:RequestServerVersion Version="Exchange2013_SP1"/>
  <t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>$mb</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>
 </soap:Header>
 <soap:Body>
  <m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone">
   <m:ItemChanges><t:ItemChange>
    <t:ItemId Id="$id" ChangeKey="$ck"/>
    <t:Updates>
     <t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>$start</t:Start></t:CalendarItem></t:SetItemField>
     <t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>$end</t:End></t:CalendarItem></t:SetItemField>
    </t:Updates>
   </t:ItemChange></m:ItemChanges>
  </m:UpdateItem>
 </soap:Body>
</soap:Envelope>
EOF
        curl -sS --max-time 10 --ntlm -u "CONTOSO\\tdhook:$EWS_SECRET" -o "$T/move-body" \
            -H 'Content-Type: text/xml; charset=utf-8' -H "X-AnchorMailbox: $mb" \
            --data-binary "@$T/move.xml" "$EX/EWS/Exchange.asmx" &&
            grep -q 'ResponseClass="Success"' "$T/move-body"
    fi
}

# fault_exchange create_throttled_once MAILBOX: the next appointment creation
# in MAILBOX is throttled once (Graph 429 + Retry-After, EWS ErrorServerBusy
# with BackOffMilliseconds).  fault_exchange clear: no faults.
fault_exchange() {
    case $1 in
    create_throttled_once)
        if [ "$BACKEND" = graph ]; then
            ctl POST "$EX/__fake/faults" "$(printf '{"rules": [{"path": "/v1.0/users/%s/events", "method": "POST", "status": 429, "retry_after": "1", "times": 1}]}' "$2")" >/dev/null
        else
            ctl POST "$EX/__fake/faults" "$(printf '{"rules": [{"op": "CreateItem", "mailbox": "%s", "server_busy_ms": 400, "times": 1}]}' "$2")" >/dev/null
        fi
        ;;
    clear) ctl POST "$EX/__fake/faults" '{"rules": []}' >/dev/null ;;
    esac
}

# ex_stat EXPR: EXPR on the fake Exchange's stats `d` (Python).
ex_stat() {
    h get "$EX/__fake/stats" "$1"
}

# td_requests: requests the fake TOPdesk served under /tas/api.
td_requests() {
    h get "$TD/__fake/stats" 'd["requests"]'
}

# --- mail ------------------------------------------------------------------------

# mails_to ADDR NEEDLE: messages in the sink for ADDR whose subject or text
# contains NEEDLE.
mails_to() {
    h mails "$1" "$2"
}

# mail_rcpts NEEDLE: the recipients of the messages about NEEDLE, sorted,
# one message a line.
mail_rcpts() {
    h rcpts "$1"
}

# mail_text RCPT NEEDLE: the text (subject and body, white space folded) of
# the mails to RCPT about NEEDLE.
mail_text() {
    h text "$1" "$2"
}

# requester_plain WHAT TEXT: a mail to a requester speaks of their booking
# in plain words: no configuration key or field name, not the name tdhook.
requester_plain() {
    local what=$1 text=$2 word
    for word in tdhook optionalFields room_mapping notify.to reservations. Exchange; do
        assert_not_contains "$what: no \"$word\" in the requester's mail" "$text" "$word"
    done
}

# local_span START END: "11:00–12:00" in the zone of the mails.
local_span() {
    h localspan "$MAIL_TIMEZONE" "$1" "$2"
}

# queue_idle: nothing queued, running or retrying (mail jobs included).
queue_idle() {
    "$TDHOOK" -c "$T/tdhook.yaml" queue list 2>/dev/null | tail -n 1 |
        grep -q '^0 queued, 0 running, 0 retrying'
}

# settle: waits (up to 15 s) until the queue is idle, so every mail that a
# job queued has reached the sink.
settle() {
    wait_until 15 queue_idle || fail "the queue is not idle after 15 s: $("$TDHOOK" -c "$T/tdhook.yaml" queue list 2>&1 | tail -n 5)"
}

# --- hooks -------------------------------------------------------------------------

JOB_BODY=

# hook PATH JSON [WHAT]: posts the webhook, expects 202 and the job done
# within 20 s; JOB_BODY is GET /jobs/<id>.  False when not done.
hook() {
    local path=$1 body=$2 what=${3:-$1 $2} id
    post_hook "$path" "$body"
    if [ "$RES_STATUS" != 202 ]; then
        fail "$what: expected 202, got $RES_STATUS: $(printf '%s' "$RES_BODY" | head -c 300)"
        return 1
    fi
    id=$(json_str job)
    if wait_done "$id" 20; then
        ok "$what: job $id done"
        return 0
    fi
    fail "$what: job $id not done within 20 s: $(printf '%s' "$JOB_BODY" | head -c 600)"
    return 1
}

# wait_done ID SECONDS: polls GET /jobs/ID until done; JOB_BODY is its last
# answer.  False on timeout or when the job is dead.  (Not lib.sh's wait_job:
# its json_str finds the reservation's own "status" inside the result.)
wait_done() {
    JOB_BODY=$(h wait "$1" "$2")
}

# sync RID [EVENT]: POST /hooks/reservation {"id": RID, "event": EVENT}.
sync() {
    hook /hooks/reservation "{\"id\": \"$1\", \"event\": \"${2:-changed}\"}" "webhook ${2:-changed} $1"
}

# reconcile: POST /hooks/reconcile {"days": 30}.
reconcile() {
    hook /hooks/reconcile '{"days": 30}' "reconcile"
}

# job_result EXPR: EXPR on the last job's result `r` (Python).
job_result() {
    printf '%s' "$JOB_BODY" | pyj "r = d.get('result') or {}
print($1)"
}

# expect_one RID MAILBOX START END WHAT: exactly one appointment for RID, in
# MAILBOX, at START-END, and none elsewhere.
expect_one() {
    local rid=$1 mb=$2 start=$3 end=$4 what=$5 lines
    lines=$(appts_of "$rid")
    assert_eq "$what: one appointment in all calendars" 1 "$(printf '%s' "$lines" | grep -c .)"
    assert_eq "$what: in $mb at $start-$end" "$mb $start $end" \
        "$(printf '%s' "$lines" | awk -F '\t' 'NR == 1 { print $1, $3, $4 }')"
}

# appt_id RID MAILBOX: the id of RID's appointment in MAILBOX.
appt_id() {
    appts_of "$1" "$2" | awk -F '\t' 'NR == 1 { print $2 }'
}

# --- the scenarios ---------------------------------------------------------------
# Each sc_NAME books on its own day (SLOT) so they never clash.

SLOT=0

# setup_failed: a scenario could not even book what it needs.
setup_failed() {
    fail "${FUNCNAME[1]}: could not set up the scenario (line ${BASH_LINENO[0]})"
}

sc_create() {
    local rid num subj aid
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    num=$(res_number "$rid")
    sync "$rid" created
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "create"
    subj=$(appts_of "$rid" | cut -f 5)
    assert_eq "create: subject from the template" "Overleg $SLOT ($num)" "$subj"
    assert_eq "create: job result says created" created "$(job_result 'r["rooms"][0]["action"]')"
    aid=$(appt_id "$rid" "$MB101")
    assert_eq "create: match key (externalLink type $LINK_TYPE) is the appointment id" \
        "$aid" "$(match_key "$rid")"
    assert_eq "create: one external link" 1 "$(n_links "$rid")"
    assert_contains "create: body from the template" \
        "$(appointments "$MB101" | pyj 'print([e["body"] for e in d if e["id"] == a[0]][0])' "$aid")" \
        "for 4 persons"
}

sc_reschedule() {
    local rid aid
    rid=$(new_res "$(booking "$SLOT" "$V102")") || { setup_failed; return; }
    sync "$rid" created
    aid=$(appt_id "$rid" "$MB102")
    res_patch "$rid" "{\"plannedStartDate\": \"$(at "$SLOT" 14:00)\", \"plannedEndDate\": \"$(at "$SLOT" 15:30)\"}"
    sync "$rid" changed
    expect_one "$rid" "$MB102" "$(at "$SLOT" 14:00)" "$(at "$SLOT" 15:30)" "reschedule"
    assert_eq "reschedule: the same appointment was moved" "$aid" "$(appt_id "$rid" "$MB102")"
    assert_eq "reschedule: job result says updated" updated "$(job_result 'r["rooms"][0]["action"]')"
    assert_eq "reschedule: match key unchanged" "$aid" "$(match_key "$rid")"
}

sc_room_swap() {
    local rid aid
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    sync "$rid" created
    aid=$(appt_id "$rid" "$MB101")
    res_patch "$rid" "{\"rooms\": [\"$BOARD\"]}"
    sync "$rid" changed
    expect_one "$rid" "$MBBOARD" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "room swap"
    assert_eq "room swap: nothing left in the old room" 0 "$(n_appts "$rid" "$MB101")"
    assert_eq "room swap: externalLink is set once, kept" "$aid" "$(match_key "$rid")"
    assert_eq "room swap: still one external link" 1 "$(n_links "$rid")"
    # And back, with a second room added: both rooms booked.
    res_patch "$rid" "{\"rooms\": [\"$V101\", \"$V102\"]}"
    sync "$rid" changed
    assert_eq "room swap: back to two rooms: one in 1.01" 1 "$(n_appts "$rid" "$MB101")"
    assert_eq "room swap: one in 1.02" 1 "$(n_appts "$rid" "$MB102")"
    assert_eq "room swap: none left in the boardroom" 0 "$(n_appts "$rid" "$MBBOARD")"
}

sc_cancel() {
    local rid rid2
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    sync "$rid" created
    assert_eq "cancel: booked first" 1 "$(n_appts "$rid")"
    res_patch "$rid" '{"status": "cancelled"}'
    sync "$rid" cancelled
    assert_eq "cancel: the appointment is gone" 0 "$(n_appts "$rid")"
    assert_eq "cancel: job result says deleted" deleted "$(job_result 'r["rooms"][0]["action"]')"
    sync "$rid" cancelled
    assert_eq "cancel: a repeated cancel changes nothing" none "$(job_result 'r["rooms"][0]["action"]')"
    # Archived counts as gone too.
    rid2=$(new_res "$(booking "$SLOT" "$V102" '"briefDescription": "Archief"')") || { setup_failed; return; }
    sync "$rid2" created
    res_patch "$rid2" '{"archived": true}'
    sync "$rid2" changed
    assert_eq "cancel: an archived reservation's appointment is gone" 0 "$(n_appts "$rid2")"
}

# The steady state of one webhook: upstream requests it costs.
STEADY=

sc_same_twice() {
    local rid a1 a2 td0 ex0 td1 ex1
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    post_hook /hooks/reservation "{\"id\": \"$rid\", \"event\": \"created\"}"
    a1=$(json_str job)
    post_hook /hooks/reservation "{\"id\": \"$rid\", \"event\": \"created\"}"
    a2=$(json_str job)
    check "same webhook twice: two jobs" test -n "$a1" -a -n "$a2" -a "$a1" != "$a2"
    wait_done "$a1" 20 || fail "same webhook twice: job $a1 not done: $JOB_BODY"
    wait_done "$a2" 20 || fail "same webhook twice: job $a2 not done: $JOB_BODY"
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "same webhook twice"
    # A third time, counted: nothing changes, and what does it cost?
    td0=$(td_requests)
    ex0=$(ex_stat 'd["requests"]')
    sync "$rid" changed
    td1=$(td_requests)
    ex1=$(ex_stat 'd["requests"]')
    assert_eq "same webhook again: unchanged" unchanged "$(job_result 'r["rooms"][0]["action"]')"
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "same webhook again"
    STEADY="$((td1 - td0)) TOPdesk + $((ex1 - ex0)) $BACKEND requests"
}

sc_out_of_order() {
    local rid c1 c2
    rid=$(new_res "$(booking "$SLOT" "$V102")") || { setup_failed; return; }
    res_patch "$rid" "{\"plannedStartDate\": \"$(at "$SLOT" 12:00)\", \"plannedEndDate\": \"$(at "$SLOT" 13:00)\"}"
    # "changed" arrives first, "created" after it, both queued at once.
    post_hook /hooks/reservation "{\"id\": \"$rid\", \"event\": \"changed\"}"
    c1=$(json_str job)
    post_hook /hooks/reservation "{\"id\": \"$rid\", \"event\": \"created\"}"
    c2=$(json_str job)
    wait_done "$c1" 20 || fail "out of order: job $c1 not done: $JOB_BODY"
    wait_done "$c2" 20 || fail "out of order: job $c2 not done: $JOB_BODY"
    expect_one "$rid" "$MB102" "$(at "$SLOT" 12:00)" "$(at "$SLOT" 13:00)" "out of order"
    # A late "created" after a cancel does not bring it back.
    res_patch "$rid" '{"status": "cancelled"}'
    sync "$rid" cancelled
    sync "$rid" created
    assert_eq "out of order: a late 'created' after the cancel books nothing" 0 "$(n_appts "$rid")"
}

sc_token_expiry() {
    local rid t0 t1
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    sync "$rid" created
    t0=$(ex_stat 'd["token_requests"]')
    ctl POST "$EX/__fake/expire-tokens" >/dev/null
    res_patch "$rid" "{\"plannedStartDate\": \"$(at "$SLOT" 16:00)\", \"plannedEndDate\": \"$(at "$SLOT" 17:00)\"}"
    sync "$rid" changed
    t1=$(ex_stat 'd["token_requests"]')
    expect_one "$rid" "$MB101" "$(at "$SLOT" 16:00)" "$(at "$SLOT" 17:00)" "token expiry"
    check "token expiry: a new token was fetched ($t0 -> $t1)" test "$t1" -gt "$t0"
}

sc_ntlm() {
    local rid
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    sync "$rid" created
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "ntlm"
    check "ntlm: NTLM handshakes made" test "$(ex_stat 'd["ntlm_handshakes"]')" -gt 0
    assert_eq "ntlm: never Basic" 0 "$(ex_stat 'd["basic_auths"]')"
    assert_eq "ntlm: every request impersonates with X-AnchorMailbox" 0 \
        "$(ex_stat 'd["missing_anchor"] + d["missing_impersonation"] + d["bad_version"]')"
}

sc_throttling() {
    local rid before after
    rid=$(new_res "$(booking "$SLOT" "$BOARD")") || { setup_failed; return; }
    if [ "$BACKEND" = graph ]; then
        before=$(ex_stat 'd["statuses"].get("429", 0)')
    else
        before=$(ex_stat 'd["by_op"].get("CreateItem", 0)')
    fi
    fault_exchange create_throttled_once "$MBBOARD"
    sync "$rid" created
    if [ "$BACKEND" = graph ]; then
        after=$(ex_stat 'd["statuses"].get("429", 0)')
        assert_eq "throttling: one 429 answered" $((before + 1)) "$after"
    else
        after=$(ex_stat 'd["by_op"].get("CreateItem", 0)')
        assert_eq "throttling: CreateItem tried twice (ErrorServerBusy, then done)" \
            $((before + 2)) "$after"
    fi
    fault_exchange clear
    expect_one "$rid" "$MBBOARD" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "throttling"
}

sc_conflict() {
    local rid num fid txt
    fid=$(seed_foreign "$MB102" "$(at "$SLOT" 09:30)" "$(at "$SLOT" 10:30)" "Sollicitatie (Outlook)") ||
        { setup_failed; return; }
    rid=$(new_res "$(booking "$SLOT" "$V102")") || { setup_failed; return; }
    num=$(res_number "$rid")
    sync "$rid" created
    assert_eq "conflict: not booked" 0 "$(n_appts "$rid")"
    assert_match "conflict: job result says so" "$(job_result 'r["rooms"][0]["action"]')" '^conflict'
    assert_eq "conflict: the foreign appointment stands" 1 \
        "$(appointments "$MB102" | pyj 'print(sum(1 for e in d if e["id"] == a[0]))' "$fid")"
    settle
    assert_eq "conflict: the requester got one mail" 1 "$(mails_to "$PIET_MAIL" "$num")"
    assert_eq "conflict: $FACILITIES got one mail" 1 "$(mails_to "$FACILITIES" "$num")"
    assert_eq "conflict: the mail names the clash" 1 "$(mails_to "$FACILITIES" "Sollicitatie (Outlook)")"
    txt=$(mail_text "$PIET_MAIL" "$num")
    requester_plain "conflict" "$txt"
    assert_contains "conflict: the requester's mail names the clash" "$txt" "Sollicitatie (Outlook)"
    assert_contains "conflict: the requester's mail gives the time in $MAIL_TIMEZONE" "$txt" \
        "$(local_span "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)")"
    if [ "$MAIL_LANGUAGE" = nl ]; then
        assert_contains "conflict: the requester's mail is Dutch" "$txt" "Je reservering $num"
    else
        assert_contains "conflict: the requester's mail is English" "$txt" "Your reservation $num"
    fi
    assert_eq "conflict: the match key stays empty" 0 "$(n_links "$rid")"
    sync "$rid" changed
    assert_eq "conflict: the second webhook knows it mailed before" "sent before" \
        "$(job_result 'r["notifications"][0]["mail"]')"
    settle
    assert_eq "conflict: no second mail to the requester" 1 "$(mails_to "$PIET_MAIL" "$num")"
    assert_eq "conflict: no second mail to $FACILITIES" 1 "$(mails_to "$FACILITIES" "$num")"
    assert_eq "conflict: still not booked" 0 "$(n_appts "$rid")"
}

sc_unmapped_room() {
    local rid num
    ctl POST "$TD/__fake/locations/$STILTE" '{"text1": ""}' >/dev/null
    rid=$(new_res "$(booking "$SLOT" "$STILTE")") || { setup_failed; return; }
    num=$(res_number "$rid")
    sync "$rid" created
    assert_eq "unmapped room: no appointment anywhere" 0 "$(n_appts "$rid")"
    assert_match "unmapped room: skipped" "$(job_result 'r["rooms"][0]["action"]')" '^skipped'
    sync "$rid" changed
    settle
    assert_eq "unmapped room: one mail to the requester" 1 "$(mails_to "$PIET_MAIL" "$num")"
    assert_eq "unmapped room: one mail to $FACILITIES" 1 "$(mails_to "$FACILITIES" "$num")"
    assert_eq "unmapped room: the mail names the room" 1 "$(mails_to "$FACILITIES" "Stilteruimte 2.14")"
    assert_contains "unmapped room: $FACILITIES are told which field to fill in" \
        "$(mail_text "$FACILITIES" "$num")" "optionalFields1.text1"
    requester_plain "unmapped room" "$(mail_text "$PIET_MAIL" "$num")"
    # Mapped and unmapped in one reservation: the mapped one is booked.
    rid=$(new_res "$(booking "$SLOT" "$STILTE" "\"rooms\": [\"$STILTE\", \"$V101\"]")") || { setup_failed; return; }
    num=$(res_number "$rid")
    sync "$rid" created
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "mapped next to unmapped"
    settle
    assert_eq "mapped next to unmapped: one mail to $FACILITIES" 1 "$(mails_to "$FACILITIES" "$num")"
}

sc_requester_without_email() {
    local rid num
    rid=$(new_res "$(booking "$SLOT" "$V101" "\"requester\": {\"id\": \"$KEES\"}")") || { setup_failed; return; }
    num=$(res_number "$rid")
    sync "$rid" created
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "requester without e-mail"
    sync "$rid" changed
    settle
    assert_eq "requester without e-mail: $FACILITIES told once" 1 "$(mails_to "$FACILITIES" "$num")"
    assert_eq "requester without e-mail: only $FACILITIES is mailed" "$FACILITIES" "$(mail_rcpts "$num")"
    if [ "$MAIL_LANGUAGE" = nl ]; then
        assert_eq "requester without e-mail: the mail says why" 1 "$(mails_to "$FACILITIES" "geen geldig e-mailadres")"
    else
        assert_eq "requester without e-mail: the mail says why" 1 "$(mails_to "$FACILITIES" "no valid e-mail address")"
    fi
}

sc_reconcile_deleted() {
    local rid aid
    rid=$(new_res "$(booking "$SLOT" "$V102")") || { setup_failed; return; }
    sync "$rid" created
    aid=$(appt_id "$rid" "$MB102")
    delete_behind_back "$MB102" "$aid" || { fail "reconcile deleted: cannot delete $aid"; return; }
    assert_eq "reconcile deleted: gone from the calendar" 0 "$(n_appts "$rid")"
    reconcile
    expect_one "$rid" "$MB102" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "reconcile deleted: recreated"
}

sc_reconcile_moved() {
    local rid aid c0 c1
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    sync "$rid" created
    aid=$(appt_id "$rid" "$MB101")
    move_behind_back "$MB101" "$aid" "$(at "$SLOT" 18:00)" "$(at "$SLOT" 19:00)" ||
        { fail "reconcile moved: cannot move $aid: $(head -c 300 "$T/move-body")"; return; }
    expect_one "$rid" "$MB101" "$(at "$SLOT" 18:00)" "$(at "$SLOT" 19:00)" "reconcile moved: moved in the calendar"
    reconcile
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "reconcile moved: put back"
    assert_eq "reconcile moved: the same appointment" "$aid" "$(appt_id "$rid" "$MB101")"
    # Moved in TOPdesk without a webhook: reconcile follows.
    res_patch "$rid" "{\"plannedStartDate\": \"$(at "$SLOT" 07:00)\", \"plannedEndDate\": \"$(at "$SLOT" 08:00)\"}"
    reconcile
    expect_one "$rid" "$MB101" "$(at "$SLOT" 07:00)" "$(at "$SLOT" 08:00)" "reconcile moved: follows TOPdesk"
    # A reconcile with nothing to do writes nothing.
    if [ "$BACKEND" = graph ]; then
        c0=$(ex_stat 'sum(d["by_op"].get(k, 0) for k in ("createEvent", "updateEvent", "deleteEvent", "cancelEvent"))')
    else
        c0=$(ex_stat 'sum(d["by_op"].get(k, 0) for k in ("CreateItem", "UpdateItem", "DeleteItem"))')
    fi
    reconcile
    if [ "$BACKEND" = graph ]; then
        c1=$(ex_stat 'sum(d["by_op"].get(k, 0) for k in ("createEvent", "updateEvent", "deleteEvent", "cancelEvent"))')
    else
        c1=$(ex_stat 'sum(d["by_op"].get(k, 0) for k in ("CreateItem", "UpdateItem", "DeleteItem"))')
    fi
    assert_eq "reconcile moved: a second reconcile writes nothing" "$c0" "$c1"
}

sc_reconcile_foreign() {
    local fid rid before after
    fid=$(seed_foreign "$MBBOARD" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "Directieoverleg (Outlook)") ||
        { setup_failed; return; }
    # A stray: tdhook's appointment for a reservation cancelled without a webhook.
    rid=$(new_res "$(booking "$SLOT" "$V102")") || { setup_failed; return; }
    sync "$rid" created
    res_patch "$rid" '{"status": "cancelled"}'
    before=$(appointments "$MBBOARD" | pyj '
print(json.dumps([e for e in d if e["id"] == a[0]], sort_keys=True))' "$fid")
    reconcile
    after=$(appointments "$MBBOARD" | pyj '
print(json.dumps([e for e in d if e["id"] == a[0]], sort_keys=True))' "$fid")
    check "reconcile foreign: the foreign appointment is there" test "$after" != "[]"
    assert_eq "reconcile foreign: and untouched" "$before" "$after"
    assert_eq "reconcile foreign: the cancelled reservation's appointment is removed" 0 "$(n_appts "$rid")"
}

sc_dry_run() {
    local rid booked num out rc aid
    rid=$(new_res "$(booking "$SLOT" "$V101")") || { setup_failed; return; }
    num=$(res_number "$rid")
    out=$(dry sync-reservation "$rid")
    rc=$?
    assert_eq "dry run: exit 0" 0 "$rc"
    assert_eq "dry run: would create" "created True" \
        "$(printf '%s' "$out" | pyj 'print(d["rooms"][0]["action"], d.get("dry_run"))' 2>&1)"
    assert_eq "dry run: nothing in the calendar" 0 "$(n_appts "$rid")"
    assert_eq "dry run: no match key written" 0 "$(n_links "$rid")"
    out=$(dry sync-reservation "$num")
    assert_eq "dry run by number: would create" created \
        "$(printf '%s' "$out" | pyj 'print(d["rooms"][0]["action"])' 2>&1)"
    # Booked for real, then moved and cancelled in TOPdesk: dry runs leave it.
    sync "$rid" created
    booked=$rid
    aid=$(appt_id "$rid" "$MB101")
    res_patch "$rid" "{\"plannedStartDate\": \"$(at "$SLOT" 15:00)\", \"plannedEndDate\": \"$(at "$SLOT" 16:00)\"}"
    out=$(dry sync-reservation "$rid")
    assert_eq "dry run: would update" updated "$(printf '%s' "$out" | pyj 'print(d["rooms"][0]["action"])' 2>&1)"
    res_patch "$rid" '{"status": "cancelled"}'
    out=$(dry sync-reservation "$rid")
    assert_eq "dry run: would delete" deleted "$(printf '%s' "$out" | pyj 'print(d["rooms"][0]["action"])' 2>&1)"
    out=$(dry reconcile --days 30)
    rc=$?
    assert_eq "reconcile --dry-run: exit 0, says dry run" "0 True" \
        "$rc $(printf '%s' "$out" | pyj 'print(d.get("dry_run"))' 2>&1)"
    expect_one "$booked" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "dry runs: appointment untouched"
    assert_eq "dry runs: the same appointment" "$aid" "$(appt_id "$booked" "$MB101")"
    # A problem in a dry run is reported, not mailed.
    rid=$(new_res "$(booking "$SLOT" "$STILTE")") || { setup_failed; return; }
    num=$(res_number "$rid")
    out=$(dry sync-reservation "$rid")
    assert_eq "dry run: the unmapped room is not mailed" "dry run: not sent" \
        "$(printf '%s' "$out" | pyj 'print(d["notifications"][0]["mail"])' 2>&1)"
    settle
    assert_eq "dry run: no mail in the sink" 0 "$(mails_to "$FACILITIES" "$num")"
}

# dry COMMAND ARGS...: tdhook COMMAND ARGS --dry-run; stderr to dry.err.
dry() {
    "$TDHOOK" -c "$T/tdhook.yaml" "$@" --dry-run 2>>"$T/dry.err"
}

# job_retrying ID: GET /jobs/ID says the job failed for now.
job_retrying() {
    get_auth "/jobs/$1"
    [ "$(json_str status)" = retrying ]
}

# has_appts N RID MAILBOX: RID has N appointments in MAILBOX.
has_appts() {
    [ "$(n_appts "$2" "$3")" = "$1" ]
}

# A room is on record before its appointment is made there (write-ahead):
# the create succeeds, the step after it (the match key, a PATCH of the
# reservation) fails for now, and the reservation moves to another room
# before the job's next attempt.  The next attempt must remove the
# appointment it made in the first room.
sc_write_ahead_fail() {
    local rid id
    rid=$(new_res "$(booking "$SLOT" "$BOARD")") || { setup_failed; return; }
    ctl POST "$TD/__fake/faults" "{\"rules\": [{\"path\": \"/tas/api/reservations/$rid\", \"method\": \"PATCH\", \"status\": 503, \"times\": 1000}]}" >/dev/null
    post_hook /hooks/reservation "{\"id\": \"$rid\", \"event\": \"created\"}"
    assert_status 202 "write-ahead, failed step: hook accepted"
    id=$(json_str job)
    check "write-ahead, failed step: the boardroom got its appointment" \
        wait_until 15 has_appts 1 "$rid" "$MBBOARD"
    res_patch "$rid" "{\"rooms\": [\"$V101\"]}"
    check "write-ahead, failed step: the attempt failed after the create" \
        wait_until 15 job_retrying "$id"
    ctl POST "$TD/__fake/faults" '{"rules": []}' >/dev/null
    if wait_done "$id" 30; then
        ok "write-ahead, failed step: the job is done after its retries"
    else
        fail "write-ahead, failed step: job $id not done: $(printf '%s' "$JOB_BODY" | head -c 400)"
    fi
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "write-ahead, failed step"
    assert_eq "write-ahead, failed step: nothing left in the boardroom" 0 "$(n_appts "$rid" "$MBBOARD")"
}

# The same with the runner killed (kill -9) between the create and the
# match key: the job runs again after the restart, in the new room.
sc_write_ahead_kill() {
    local rid id pids
    rid=$(new_res "$(booking "$SLOT" "$BOARD")") || { setup_failed; return; }
    ctl POST "$TD/__fake/faults" "{\"rules\": [{\"path\": \"/tas/api/reservations/$rid\", \"method\": \"PATCH\", \"delay_ms\": 5000, \"status\": 503, \"times\": 1}]}" >/dev/null
    post_hook /hooks/reservation "{\"id\": \"$rid\", \"event\": \"created\"}"
    assert_status 202 "write-ahead, kill: hook accepted"
    id=$(json_str job)
    check "write-ahead, kill: the boardroom got its appointment" \
        wait_until 15 has_appts 1 "$rid" "$MBBOARD"
    # The attempt now waits 5 s for its match key: move the reservation,
    # then kill the runner in the middle of it.
    res_patch "$rid" "{\"rooms\": [\"$V101\"]}"
    pids=$(pgrep -P "$TDHOOK_PID" -x tdhook-runner | tr '\n' ' ')
    # shellcheck disable=SC2086  # one pid a word
    check "write-ahead, kill: kill -9 of the runners ($pids) during the match key" \
        kill -KILL $pids
    if wait_done "$id" 30; then
        ok "write-ahead, kill: the job ran again and is done"
    else
        fail "write-ahead, kill: job $id not done: $(printf '%s' "$JOB_BODY" | head -c 400)"
    fi
    expect_one "$rid" "$MB101" "$(at "$SLOT" 10:00)" "$(at "$SLOT" 11:00)" "write-ahead, kill"
    assert_eq "write-ahead, kill: nothing left in the boardroom" 0 "$(n_appts "$rid" "$MBBOARD")"
    ctl POST "$TD/__fake/faults" '{"rules": []}' >/dev/null
}

# --- the table -------------------------------------------------------------------
# NAME or NAME:BACKEND (that backend only).  Reconcile covers every
# reservation in the window, so it comes after the webhook scenarios, and
# dry_run (whose reservation no webhook announces) after reconcile.

TABLE=(create reschedule room_swap cancel same_twice out_of_order token_expiry:graph ntlm:ews
    throttling conflict unmapped_room requester_without_email write_ahead_fail write_ahead_kill
    reconcile_deleted reconcile_moved reconcile_foreign dry_run)

passed=0
failed=0
skipped=0
failed_names=()
t0=$(date +%s)
for entry in "${TABLE[@]}"; do
    name=${entry%%:*}
    only=
    [ "$name" = "$entry" ] || only=${entry#*:}
    SLOT=$((SLOT + 1))
    if [ -n "${SCENARIOS:-}" ] && ! printf ' %s ' "$SCENARIOS" | grep -qF " $name "; then
        continue
    fi
    if [ -n "$only" ] && [ "$only" != "$BACKEND" ]; then
        say "SKIP  $name ($only only)"
        skipped=$((skipped + 1))
        continue
    fi
    before=$FAILS
    s0=$(date +%s%N)
    "sc_$name" >"$T/scenario.out" 2>&1
    ms=$((($(date +%s%N) - s0) / 1000000))
    secs=$((ms / 1000)).$((ms % 1000 / 100))
    if [ "$FAILS" -eq "$before" ]; then
        say "PASS  $name (${secs} s)"
        passed=$((passed + 1))
        [ "${VERBOSE:-0}" = 1 ] && sed 's/^/      /' "$T/scenario.out"
    else
        say "FAIL  $name (${secs} s)"
        failed=$((failed + 1))
        failed_names+=("$name")
        sed 's/^/      /' "$T/scenario.out"
    fi
done

# Across all scenarios: nothing dead, no secret in the log.
{
    settle
    dead=$("$TDHOOK" -c "$T/tdhook.yaml" queue list 2>/dev/null | tail -n 1 |
        sed -n -E 's/.* ([0-9]+) dead.*/\1/p')
    assert_eq "no dead letters" 0 "${dead:-?}"
    assert_no_secrets "the server log" "$T/tdhook.log"
    if grep -qF -- "$EWS_SECRET" "$T/tdhook.log"; then
        fail "the EWS password is in the server log"
    fi
} >"$T/scenario.out" 2>&1
if grep -q '^FAIL' "$T/scenario.out"; then
    say "FAIL  afterwards"
    sed 's/^/      /' "$T/scenario.out"
    failed=$((failed + 1))
    failed_names+=(afterwards)
fi

[ -n "$STEADY" ] && say "# steady state: a webhook that changes nothing costs $STEADY"
say "# $BACKEND: $passed passed, $failed failed, $skipped skipped in $(($(date +%s) - t0)) s ($CHECKS checks)"
if [ "$failed" -gt 0 ]; then
    say "# failed: ${failed_names[*]}"
    exit 1
fi
exit 0
