#!/bin/bash
# Self-test of tests/fakes/ews.py with curl: the NTLM handshake (curl
# --ntlm), Basic, wrong passwords, impersonation, CreateItem, FindItem by
# property and by CalendarView, GetItem, UpdateItem with a stale ChangeKey,
# DeleteItem, ErrorServerBusy, HTTP 503, unknown mailboxes and the control
# endpoints.
#
# Exit 0 when every check passes, 1 otherwise, 77 (skip) when /usr/bin/python3
# or curl is missing.  KEEP_TMP=1 keeps the temporary directory.

set -u

PY=/usr/bin/python3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T_NS=http://schemas.microsoft.com/exchange/services/2006/types
M_NS=http://schemas.microsoft.com/exchange/services/2006/messages
S_NS=http://schemas.xmlsoap.org/soap/envelope/

if [ ! -x "$PY" ]; then echo "SKIP: $PY missing"; exit 77; fi
if ! command -v curl >/dev/null 2>&1; then echo "SKIP: curl missing"; exit 77; fi

T=$(mktemp -d "${TMPDIR:-/tmp}/test_ews_fake.XXXXXX")
PID=
FAILS=0
CHECKS=0

cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $*"; }
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', expected '$3'"; fi
}

# jv FILE EXPR: the Python expression EXPR with d = the JSON in FILE.
jv() {
    "$PY" -c 'import json,sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
r = eval(sys.argv[2])
print(json.dumps(r) if not isinstance(r, str) else r)' "$1" "$2" 2>&1
}

# xv FILE XPATH-ish: a value from a SOAP answer, by a Python expression on
# r (the root element) with the helpers f(path) (first match) and a(path, attr).
xv() {
    "$PY" -c 'import sys, xml.etree.ElementTree as ET
ns = {"s": "'$S_NS'", "t": "'$T_NS'", "m": "'$M_NS'"}
r = ET.parse(sys.argv[1]).getroot()
def f(p):
    e = r.find(p, ns)
    return "" if e is None else (e.text or "")
def a(p, n):
    e = r.find(p, ns)
    return "" if e is None else (e.get(n) or "")
def c(p):
    return len(r.findall(p, ns))
print(eval(sys.argv[2]))' "$1" "$2" 2>&1
}

start_fake() {
    rm -f "$T/port"
    "$PY" "$HERE/ews.py" --port 0 --port-file "$T/port" --user 'CONTOSO\tdhook' \
        --password 'S3cret!' "$@" &
    PID=$!
    for _ in $(seq 1 100); do
        [ -s "$T/port" ] && break
        sleep 0.05
    done
    PORT=$(cat "$T/port" 2>/dev/null)
    BASE="http://127.0.0.1:$PORT"
    URL="$BASE/EWS/Exchange.asmx"
}

stop_fake() {
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=
}

# envelope MAILBOX BODY-XML
envelope() {
    local imp=""
    if [ -n "$1" ]; then
        imp="<t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>$1</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
    fi
    printf '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="%s" xmlns:t="%s" xmlns:m="%s"><soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/>%s</soap:Header><soap:Body>%s</soap:Body></soap:Envelope>' \
        "$S_NS" "$T_NS" "$M_NS" "$imp" "$2"
}

# ews OUT AUTH-ARGS MAILBOX BODY: POSTs one request; prints the HTTP status.
ews() {
    local out=$1 mb=$3 body=$4
    local -a auth
    read -r -a auth <<<"$2"
    envelope "$mb" "$body" >"$T/req.xml"
    curl -s -o "$out" -w '%{http_code}' "${auth[@]}" -u 'CONTOSO\tdhook:S3cret!' \
        -H 'Content-Type: text/xml; charset=utf-8' -H "X-AnchorMailbox: $mb" \
        --data-binary @"$T/req.xml" "$URL"
}

PROP='<t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="TopdeskReservationId" PropertyType="String"/>'
SHAPE="<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI=\"item:Subject\"/><t:FieldURI FieldURI=\"calendar:Start\"/><t:FieldURI FieldURI=\"calendar:End\"/>$PROP</t:AdditionalProperties></m:ItemShape>"
CREATE="<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Overleg</t:Subject><t:Body BodyType=\"Text\">b</t:Body><t:ExtendedProperty>$PROP<t:Value>res-1</t:Value></t:ExtendedProperty><t:Start>2030-03-10T09:00:00Z</t:Start><t:End>2030-03-10T10:00:00Z</t:End><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus><t:Location>Room 1</t:Location></t:CalendarItem></m:Items></m:CreateItem>"
FIND="<m:FindItem Traversal=\"Shallow\">$SHAPE<m:IndexedPageItemView MaxEntriesReturned=\"10\" Offset=\"0\" BasePoint=\"Beginning\"/><m:Restriction><t:IsEqualTo>$PROP<t:FieldURIOrConstant><t:Constant Value=\"res-1\"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id=\"calendar\"/></m:ParentFolderIds></m:FindItem>"
VIEW="<m:FindItem Traversal=\"Shallow\">$SHAPE<m:CalendarView MaxEntriesReturned=\"1000\" StartDate=\"2030-03-10T00:00:00Z\" EndDate=\"2030-03-11T00:00:00Z\"/><m:ParentFolderIds><t:DistinguishedFolderId Id=\"calendar\"/></m:ParentFolderIds></m:FindItem>"
MB=room-1@contoso.com

# --- NTLM and Basic --------------------------------------------------------
start_fake --auth both
check "fake started" "$([ -n "$PORT" ] && echo yes)" yes

code=$(ews "$T/r.xml" "--ntlm" "$MB" "$CREATE")
check "CreateItem over NTLM: HTTP" "$code" 200
check "CreateItem: ResponseClass" \
    "$(xv "$T/r.xml" 'a(".//m:CreateItemResponseMessage", "ResponseClass")')" Success
ID=$(xv "$T/r.xml" 'a(".//m:Items/t:CalendarItem/t:ItemId", "Id")')
CK=$(xv "$T/r.xml" 'a(".//m:Items/t:CalendarItem/t:ItemId", "ChangeKey")')
check "CreateItem: ItemId and ChangeKey" "$([ -n "$ID" ] && [ -n "$CK" ] && echo yes)" yes

curl -s "$BASE/__fake/stats" >"$T/s.json"
check "one NTLM handshake counted" "$(jv "$T/s.json" 'd["ntlm_handshakes"]')" 1

code=$(ews "$T/r.xml" "--basic" "$MB" "$FIND")
check "FindItem over Basic: HTTP" "$code" 200
check "FindItem by property finds it" \
    "$(xv "$T/r.xml" 'a(".//m:RootFolder/t:Items/t:CalendarItem/t:ItemId", "Id")')" "$ID"
check "FindItem: TotalItemsInView" "$(xv "$T/r.xml" 'a(".//m:RootFolder", "TotalItemsInView")')" 1
check "FindItem: the property comes back" \
    "$(xv "$T/r.xml" 'f(".//t:ExtendedProperty/t:Value")')" res-1

code=$(ews "$T/r.xml" "--ntlm" "$MB" "$VIEW")
check "CalendarView: HTTP" "$code" 200
check "CalendarView: one overlapping item" "$(xv "$T/r.xml" 'c(".//t:Items/t:CalendarItem")')" 1

# a wrong password, both ways
code=$(curl -s -o /dev/null -w '%{http_code}' --ntlm -u 'CONTOSO\tdhook:wrong' \
    --data-binary @"$T/req.xml" "$URL")
check "NTLM with a wrong password: 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' --basic -u 'CONTOSO\tdhook:wrong' \
    --data-binary @"$T/req.xml" "$URL")
check "Basic with a wrong password: 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' --ntlm -u 'OTHER\tdhook:S3cret!' \
    --data-binary @"$T/req.xml" "$URL")
check "NTLM with another domain: 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/req.xml" "$URL")
check "no credentials: 401" "$code" 401
curl -s -D "$T/h.txt" -o /dev/null --data-binary @"$T/req.xml" "$URL"
check "401 offers NTLM" "$(grep -ci '^WWW-Authenticate: NTLM' "$T/h.txt")" 1

# one connection, two requests: the second needs no new handshake
envelope "$MB" "$FIND" >"$T/req.xml"
curl -s "$BASE/__fake/stats" >"$T/s.json"
curl -s -o "$T/h1.xml" -o "$T/h2.xml" --ntlm -u 'CONTOSO\tdhook:S3cret!' \
    -H "X-AnchorMailbox: $MB" -H 'Content-Type: text/xml; charset=utf-8' \
    --data-binary @"$T/req.xml" "$URL" "$URL"
curl -s "$BASE/__fake/stats" >"$T/s2.json"
check "keep-alive: two requests, one handshake" \
    "$(( $(jv "$T/s2.json" 'd["ntlm_handshakes"]') - $(jv "$T/s.json" 'd["ntlm_handshakes"]') ))" 1
check "keep-alive: the second answer is served" \
    "$(xv "$T/h2.xml" 'a(".//m:FindItemResponseMessage", "ResponseClass")')" Success

# --- GetItem, UpdateItem, stale ChangeKey, DeleteItem -----------------------
GET="<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:BodyType>Text</t:BodyType><t:AdditionalProperties><t:FieldURI FieldURI=\"item:Subject\"/><t:FieldURI FieldURI=\"item:Body\"/><t:FieldURI FieldURI=\"item:ParentFolderId\"/><t:FieldURI FieldURI=\"calendar:Start\"/><t:FieldURI FieldURI=\"calendar:End\"/>$PROP</t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id=\"$ID\"/></m:ItemIds></m:GetItem>"
ews "$T/r.xml" --ntlm "$MB" "$GET" >/dev/null
check "GetItem: body" "$(xv "$T/r.xml" 'f(".//t:CalendarItem/t:Body")')" b
check "GetItem: start" "$(xv "$T/r.xml" 'f(".//t:CalendarItem/t:Start")')" 2030-03-10T09:00:00Z

update() {  # update CHANGEKEY SUBJECT
    echo "<m:UpdateItem MessageDisposition=\"SaveOnly\" ConflictResolution=\"AutoResolve\" SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges><t:ItemChange><t:ItemId Id=\"$ID\" ChangeKey=\"$1\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"item:Subject\"/><t:CalendarItem><t:Subject>$2</t:Subject></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI=\"calendar:Start\"/><t:CalendarItem><t:Start>2030-03-10T11:00:00Z</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI=\"calendar:End\"/><t:CalendarItem><t:End>2030-03-10T12:00:00Z</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
}
ews "$T/r.xml" --ntlm "$MB" "$(update "$CK" Moved)" >/dev/null
check "UpdateItem: success" \
    "$(xv "$T/r.xml" 'a(".//m:UpdateItemResponseMessage", "ResponseClass")')" Success
CK2=$(xv "$T/r.xml" 'a(".//t:CalendarItem/t:ItemId", "ChangeKey")')
check "UpdateItem: a new ChangeKey" "$([ -n "$CK2" ] && [ "$CK2" != "$CK" ] && echo yes)" yes
ews "$T/r.xml" --ntlm "$MB" "$(update "$CK" Again)" >/dev/null
check "UpdateItem with the old ChangeKey: conflict" \
    "$(xv "$T/r.xml" 'f(".//m:ResponseCode")')" ErrorIrresolvableConflict
curl -s -X POST -d '{"rules":[{"op":"UpdateItem","stale":true,"times":1}]}' \
    "$BASE/__fake/faults" >/dev/null
ews "$T/r.xml" --ntlm "$MB" "$(update "$CK2" Again)" >/dev/null
check "stale rule: the current ChangeKey is refused once" \
    "$(xv "$T/r.xml" 'f(".//m:ResponseCode")')" ErrorIrresolvableConflict
curl -s "$BASE/__fake/items" >"$T/i.json"
check "the moved item in /__fake/items" \
    "$(jv "$T/i.json" 'd["'$MB'"][0]["subject"] + " " + d["'$MB'"][0]["start"]')" \
    "Moved 2030-03-10T11:00:00Z"

DEL="<m:DeleteItem DeleteType=\"MoveToDeletedItems\" SendMeetingCancellations=\"SendToNone\"><m:ItemIds><t:ItemId Id=\"$ID\"/></m:ItemIds></m:DeleteItem>"
ews "$T/r.xml" --ntlm "$MB" "$DEL" >/dev/null
check "DeleteItem: success" \
    "$(xv "$T/r.xml" 'a(".//m:DeleteItemResponseMessage", "ResponseClass")')" Success
ews "$T/r.xml" --ntlm "$MB" "$FIND" >/dev/null
check "FindItem after the delete: nothing" "$(xv "$T/r.xml" 'c(".//t:Items/t:CalendarItem")')" 0
ews "$T/r.xml" --ntlm "$MB" "$GET" >/dev/null
check "GetItem after the delete: in another folder" \
    "$([ "$(xv "$T/r.xml" 'a(".//t:ParentFolderId", "Id")')" != "" ] && echo yes)" yes
ews "$T/r.xml" --ntlm "$MB" "<m:DeleteItem DeleteType=\"HardDelete\" SendMeetingCancellations=\"SendToNone\"><m:ItemIds><t:ItemId Id=\"$ID\"/></m:ItemIds></m:DeleteItem>" >/dev/null
ews "$T/r.xml" --ntlm "$MB" "$GET" >/dev/null
check "GetItem after a hard delete: ErrorItemNotFound" \
    "$(xv "$T/r.xml" 'f(".//m:ResponseCode")')" ErrorItemNotFound

# --- faults ------------------------------------------------------------------
curl -s -X POST -d '{"rules":[{"op":"CreateItem","server_busy_ms":500,"times":1},{"http_status":503,"times":1}]}' \
    "$BASE/__fake/faults" >/dev/null
code=$(ews "$T/r.xml" --ntlm "$MB" "$CREATE")
check "ErrorServerBusy: HTTP 500" "$code" 500
check "ErrorServerBusy: fault code" "$(xv "$T/r.xml" 'f(".//faultcode")')" a:ErrorServerBusy
check "ErrorServerBusy: BackOffMilliseconds" "$(xv "$T/r.xml" 'f(".//detail/t:MessageXml/t:Value")')" 500
code=$(ews "$T/r.xml" --ntlm "$MB" "$FIND")
check "http_status rule: 503" "$code" 503
code=$(ews "$T/r.xml" --ntlm "$MB" "$FIND")
check "rules used up: 200" "$code" 200

code=$(ews "$T/r.xml" --ntlm "" "$FIND")
check "no impersonation: ErrorImpersonateUserDenied" \
    "$code $(xv "$T/r.xml" 'f(".//faultcode")')" "500 a:ErrorImpersonateUserDenied"

# seeding, deleting, stats
curl -s -X POST -d '{"mailbox":"'$MB'","subject":"Outlook","start":"2030-03-10T09:30:00Z","end":"2030-03-10T10:30:00Z"}' \
    "$BASE/__fake/items" >"$T/seed.json"
SID=$(jv "$T/seed.json" 'd["id"]')
ews "$T/r.xml" --ntlm "$MB" "$VIEW" >/dev/null
check "a seeded item shows in the CalendarView" "$(xv "$T/r.xml" 'c(".//t:Items/t:CalendarItem")')" 1
check "a seeded item has no property" "$(xv "$T/r.xml" 'c(".//t:ExtendedProperty")')" 0
ESID=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$SID")
check "DELETE /__fake/items/MB/ID" \
    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/__fake/items/$MB/$ESID")" 204
curl -s "$BASE/__fake/stats" >"$T/s.json"
check "stats: impersonation missing once" "$(jv "$T/s.json" 'd["missing_impersonation"]')" 1
check "stats: by_op counts CreateItem" "$(jv "$T/s.json" 'd["by_op"]["CreateItem"]')" 2
check "stats: basic auths" "$(jv "$T/s.json" 'd["basic_auths"] >= 1')" true
curl -s -X POST "$BASE/__fake/reset" >/dev/null
curl -s "$BASE/__fake/stats" >"$T/s.json"
check "reset clears stats" "$(jv "$T/s.json" 'd["requests"]')" 0
stop_fake

# --- NTLM only, known mailboxes ----------------------------------------------
start_fake --auth ntlm --mailboxes "$MB"
code=$(ews "$T/r.xml" --basic "$MB" "$FIND")
check "--auth ntlm refuses Basic" "$code" 401
code=$(ews "$T/r.xml" --ntlm other@contoso.com "$FIND")
check "unknown mailbox: ErrorNonExistentMailbox" \
    "$code $(xv "$T/r.xml" 'f(".//m:ResponseCode")')" "200 ErrorNonExistentMailbox"
code=$(ews "$T/r.xml" --ntlm "$MB" "$FIND")
check "known mailbox over NTLM" "$code" 200
stop_fake

echo "$CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
