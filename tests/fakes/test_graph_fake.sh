#!/bin/bash
# Self-test of the fake Microsoft Graph (tests/fakes/graph.py), driven with
# curl.  Runs from any directory; exits 0 when every check passes, 1 when one
# fails, 77 (automake's "skipped") when /usr/bin/python3 or curl is missing.
# KEEP_TMP=1 keeps the temporary directory (fake's log, last bodies).

set -u

PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: $PY is missing"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is missing"; exit 77; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FAKE=$HERE/graph.py
T=$(mktemp -d "${TMPDIR:-/tmp}/graph-fake-test.XXXXXX") || exit 1
PIDS=()
FAILS=0
CHECKS=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $1"; }
bad() {
    CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1))
    echo "not ok $CHECKS - $1"
    [ -n "${2:-}" ] && echo "#   $2"
    echo "#   last status $ST, body: $(head -c 600 "$T/body" 2>/dev/null)"
}

# check NAME ACTUAL EXPECTED
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}

# start_fake NAME [ARGS...]: starts a fake, sets its base URL in BASE_<NAME>.
start_fake() {
    local name=$1 i
    shift
    rm -f "$T/$name.port"
    "$PY" "$FAKE" --port 0 --port-file "$T/$name.port" "$@" \
        >"$T/$name.log" 2>&1 &
    PIDS+=($!)
    for i in $(seq 100); do
        [ -s "$T/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$T/$name.port" ] || { echo "FAIL: fake $name did not start";
                                cat "$T/$name.log"; exit 1; }
    printf -v "BASE_$name" 'http://127.0.0.1:%s' "$(cat "$T/$name.port")"
}

# req METHOD URL [curl args...]: ST = status, body in $T/body,
# headers in $T/hdrs.
ST=
req() {
    local m=$1 u=$2
    shift 2
    ST=$(curl -s -o "$T/body" -D "$T/hdrs" -w '%{http_code}' -X "$m" \
        "$@" "$u")
}

# jv EXPR: evaluates a Python expression over the last body (as d).
jv() {
    "$PY" - "$T/body" "$1" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1], encoding="utf-8"))
except ValueError:
    d = None
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

header() {
    tr -d '\r' <"$T/hdrs" | awk -v h="$1" 'BEGIN{IGNORECASE=1}
        index(tolower($0), tolower(h) ":") == 1 {
            sub(/^[^:]*:[ \t]*/, ""); print; exit }'
}

SECRET='s3cr&t+x=y'
TENANT=contoso.onmicrosoft.com
start_fake G --tenant "$TENANT" --client-id cid --client-secret "$SECRET" \
    --mailboxes 'room@x,Room2@Example.org'
B=$BASE_G
PROP='String {00020329-0000-0000-C000-000000000046} Name TopdeskReservationId'
PROP_OUT='String {00020329-0000-0000-c000-000000000046} Name TopdeskReservationId'

get_token() {
    req POST "$B/$TENANT/oauth2/v2.0/token" \
        --data-urlencode "client_id=cid" \
        --data-urlencode "client_secret=$SECRET" \
        --data-urlencode "scope=https://graph.microsoft.com/.default" \
        --data-urlencode "grant_type=client_credentials"
    TOKEN=$(jv 'd.get("access_token", "") if isinstance(d, dict) else ""')
}

# --- token endpoint ----------------------------------------------------------
get_token
check "token: 200" "$ST" 200
check "token: type and ttl" "$(jv '[d["token_type"], d["expires_in"], d["ext_expires_in"]]')" '["Bearer", 3599, 3599]'
check "token: looks like a JWT" "$(jv 'd["access_token"].count(".")')" 2

req POST "$B/$TENANT/oauth2/v2.0/token" -d client_id=cid -d client_secret=nope \
    -d scope=https%3A%2F%2Fgraph.microsoft.com%2F.default -d grant_type=client_credentials
check "token: wrong secret is 401" "$ST" 401
check "token: invalid_client 7000215" "$(jv '[d["error"], d["error_codes"], d["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")]')" '["invalid_client", [7000215], true]'

req POST "$B/$TENANT/oauth2/v2.0/token" -d client_id=other \
    --data-urlencode "client_secret=$SECRET" \
    -d scope=https%3A%2F%2Fgraph.microsoft.com%2F.default -d grant_type=client_credentials
check "token: wrong client is 401 invalid_client" "$ST/$(jv 'd["error"]')" 401/invalid_client

req POST "$B/fabrikam.com/oauth2/v2.0/token" -d client_id=cid \
    --data-urlencode "client_secret=$SECRET" \
    -d scope=https%3A%2F%2Fgraph.microsoft.com%2F.default -d grant_type=client_credentials
check "token: wrong tenant is 400 invalid_request" "$ST/$(jv 'd["error"]')" 400/invalid_request

req POST "$B/$TENANT/oauth2/v2.0/token" -d client_id=cid \
    --data-urlencode "client_secret=$SECRET" -d scope=Calendars.ReadWrite \
    -d grant_type=client_credentials
check "token: scope without /.default is 400 invalid_scope" "$ST/$(jv 'd["error"]')" 400/invalid_scope

# --- auth ----------------------------------------------------------------------
AUTH=(-H "Authorization: Bearer $TOKEN")
PREFER=(-H 'Prefer: outlook.timezone="UTC"' -H 'Prefer: IdType="ImmutableId"')
JSON=(-H "Content-Type: application/json")
EV=$B/v1.0/users/room%40x/events

req GET "$EV"
check "graph: no token is 401" "$ST/$(jv 'd["error"]["code"]')" 401/InvalidAuthenticationToken
req GET "$EV" -H "Authorization: Bearer bogus"
check "graph: unknown token is 401" "$ST/$(jv 'd["error"]["message"]')" "401/Access token has expired or is not yet valid."
req GET "$B/v1.0/users/nobody%40x/events" "${AUTH[@]}"
check "graph: unknown mailbox is 404 ErrorInvalidUser" "$ST/$(jv 'd["error"]["code"]')" 404/ErrorInvalidUser
req GET "$B/v1.0/users/someone%40contoso.onmicrosoft.com/events" "${AUTH[@]}"
check "graph: a mailbox in the tenant's domain is served" "$ST" 200

# --- create --------------------------------------------------------------------
create_body() {   # create_body SUBJECT START END TXID VALUE
    cat <<EOF
{"subject":"$1",
 "body":{"contentType":"Text","content":"Booked via TOPdesk"},
 "start":{"dateTime":"$2","timeZone":"UTC"},
 "end":{"dateTime":"$3","timeZone":"UTC"},
 "location":{"displayName":"Room 1.01","locationEmailAddress":"room@x"},
 "showAs":"busy",
 "transactionId":"$4",
 "singleValueExtendedProperties":[{"id":"$PROP","value":"$5"}]}
EOF
}
create_body "Project meeting" 2025-03-10T09:00:00 2025-03-10T10:00:00 tx-1 R-2025-0042 >"$T/ev1.json"
req POST "$EV" "${AUTH[@]}" "${PREFER[@]}" "${JSON[@]}" --data-binary @"$T/ev1.json"
check "create: 201" "$ST" 201
ID1=$(jv 'd["id"]')
CK1=$(jv 'd["changeKey"]')
check "create: long url-safe id" "$(jv 'len(d["id"]) > 100 and all(c.isalnum() or c in "-_=" for c in d["id"])')" true
check "create: start/end in UTC, 7 fraction digits" "$(jv '[d["start"], d["end"]]')" '[{"dateTime": "2025-03-10T09:00:00.0000000", "timeZone": "UTC"}, {"dateTime": "2025-03-10T10:00:00.0000000", "timeZone": "UTC"}]'
check "create: type, isCancelled, transactionId" "$(jv '[d["type"], d["isCancelled"], d["transactionId"], d["subject"], d["showAs"]]')" '["singleInstance", false, "tx-1", "Project meeting", "busy"]'
check "create: location" "$(jv '[d["location"]["displayName"], d["location"]["locationEmailAddress"]]')" '["Room 1.01", "room@x"]'
check "create: body is an itemBody" "$(jv 'sorted(d["body"]) == ["content", "contentType"] and d["body"]["contentType"] in ("text", "html")')" true
check "create: extended properties not returned" "$(jv '"singleValueExtendedProperties" in d')" false
check "create: timestamps and iCalUId" "$(jv 'd["createdDateTime"].endswith("Z") and len(d["iCalUId"]) > 40 and d["@odata.etag"] == "W/\"%s\"" % d["changeKey"]')" true
check "create: Content-Length always" "$(header Content-Length | grep -c '^[0-9]')" 1

req POST "$EV" "${AUTH[@]}" "${PREFER[@]}" "${JSON[@]}" --data-binary @"$T/ev1.json"
check "create: same transactionId gives the same event (201)" "$ST/$(jv 'd["id"]')" "201/$ID1"
req GET "$B/__fake/events"
check "create: one event stored, props and transactionId visible" "$(jv '[len(d["room@x"]), d["room@x"][0]["transactionId"], d["room@x"][0]["singleValueExtendedProperties"][0]["value"]]')" '[1, "tx-1", "R-2025-0042"]'

printf '{"subject":' >"$T/bad.json"
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary @"$T/bad.json"
check "create: malformed JSON is 400 BadRequest" "$ST/$(jv 'd["error"]["code"]')" 400/BadRequest
create_body X 2025-03-10T25:00:00 2025-03-10T26:00:00 tx-bad V >"$T/bad.json"
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary @"$T/bad.json"
check "create: bad dateTime is 400" "$ST/$(jv 'd["error"]["code"]')" 400/ErrorInvalidRequest
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"start":{"dateTime":"2025-03-10T09:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-10T10:00:00","timeZone":"UTC"}}'
check "create: missing subject is 400" "$ST" 400
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"subject":"x","start":{"dateTime":"2025-03-10T09:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-10T10:00:00","timeZone":"UTC"},"colour":"red"}'
check "create: unknown property is 400" "$ST/$(jv 'd["error"]["code"]')" 400/RequestBodyRead

# A second event whose value has a quote in it.
create_body "Other" 2025-03-10T11:00:00 2025-03-10T12:00:00 tx-2 "O'Brien-7" >"$T/ev2.json"
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary @"$T/ev2.json"
check "create: second event" "$ST" 201
ID2=$(jv 'd["id"]')

# --- get, $expand, $filter -----------------------------------------------------
req GET "$EV/$ID1" "${AUTH[@]}" "${PREFER[@]}"
check "get: 200 same event" "$ST/$(jv 'd["id"]')" "200/$ID1"
check "get: no extended properties without \$expand" "$(jv '"singleValueExtendedProperties" in d')" false
req GET "$EV/$ID1" "${AUTH[@]}" -G --data-urlencode "\$expand=singleValueExtendedProperties(\$filter=id eq '$PROP')"
check "get: \$expand returns the property" "$(jv 'd["singleValueExtendedProperties"]')" "[{\"id\": \"$PROP_OUT\", \"value\": \"R-2025-0042\"}]"
req GET "$EV/AAkALgAAnosuchid" "${AUTH[@]}"
check "get: unknown id is 404 ErrorItemNotFound" "$ST/$(jv 'd["error"]["code"]')/$(jv 'd["error"]["message"]')" "404/ErrorItemNotFound/The specified object was not found in the store."

filter() { # filter ID VALUE
    req GET "$EV" "${AUTH[@]}" -G --data-urlencode \
        "\$filter=singleValueExtendedProperties/Any(ep: ep/id eq '$1' and ep/value eq '$2')" "${@:3}"
}
filter "$PROP" r-2025-0042
check "filter: value matches case-insensitively" "$ST/$(jv '[e["id"] for e in d["value"]]')" "200/[\"$ID1\"]"
filter "$PROP" "o''brien-7" --data-urlencode "\$expand=singleValueExtendedProperties(\$filter=id eq '$PROP')"
check "filter: doubled '' inside a value, with \$expand" "$(jv '[[e["id"] for e in d["value"]], d["value"][0]["singleValueExtendedProperties"][0]["value"]]')" "[[\"$ID2\"], \"O'Brien-7\"]"
filter "String {00020329-0000-0000-c000-000000000046} Name topdeskreservationid" R-2025-0042
check "filter: Name part is case-sensitive" "$ST/$(jv 'd["value"]')" "200/[]"
req GET "$EV" "${AUTH[@]}" -G --data-urlencode "\$filter=subject eq 'x'"
check "filter: other forms are 400" "$ST" 400
# Hand-encoded, no spaces after ':' and keyword case mixed.
req GET "$EV?%24filter=singleValueExtendedProperties%2Fany(x%3Ax%2Fvalue%20EQ%20%27R-2025-0042%27%20AND%20x%2Fid%20eq%20%27String%20%7B00020329-0000-0000-C000-000000000046%7D%20Name%20TopdeskReservationId%27)" "${AUTH[@]}"
check "filter: hand-encoded form, clauses swapped" "$ST/$(jv 'len(d["value"])')" 200/1

# --- patch ---------------------------------------------------------------------
req PATCH "$EV/$ID1" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"start":{"dateTime":"2025-03-10T10:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-10T11:30:00.0000000","timeZone":"UTC"}}'
check "patch: 200" "$ST" 200
check "patch: only given properties change" "$(jv '[d["subject"], d["start"]["dateTime"], d["end"]["dateTime"], d["transactionId"]]')" '["Project meeting", "2025-03-10T10:00:00.0000000", "2025-03-10T11:30:00.0000000", "tx-1"]'
check "patch: changeKey changes" "$(jv 'd["changeKey"] != "'"$CK1"'" and d["lastModifiedDateTime"] >= d["createdDateTime"]')" true
req PATCH "$EV/$ID1" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"transactionId":"tx-9"}'
check "patch: transactionId is 400" "$ST" 400
req PATCH "$EV/$ID1" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"end":{"dateTime":"2025-03-10T09:00:00","timeZone":"UTC"}}'
check "patch: end before start is 400" "$ST" 400
req PATCH "$EV/nosuch" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"subject":"x"}'
check "patch: unknown id is 404" "$ST" 404

# --- calendarView and paging ---------------------------------------------------
CV=$B/v1.0/users/Room2%40Example.org/calendarView
seed() { # seed MAILBOX SUBJECT START END
    req POST "$B/__fake/events" "${JSON[@]}" --data-binary "{\"mailbox\":\"$1\",\"event\":{\"subject\":\"$2\",\"start\":{\"dateTime\":\"$3\",\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\"$4\",\"timeZone\":\"UTC\"}}}"
}
# Window 2025-04-01T08:00Z .. 2025-04-01T20:00Z.  Seeded in reverse order so
# sorting shows.
for h in 19 18 17 16 15 14 13 12 11 10 09; do
    seed ROOM2@example.org "slot $h" "2025-04-01T$h:00:00" "2025-04-01T$h:30:00"
done
seed room2@example.org "ends at window start" 2025-04-01T07:00:00 2025-04-01T08:00:00
seed room2@example.org "starts at window end" 2025-04-01T20:00:00 2025-04-01T21:00:00
seed room2@example.org "spans the start" 2025-04-01T07:30:00 2025-04-01T08:15:00
check "seed: 201" "$ST/$(jv 'd["subject"]')" "201/spans the start"
SEEDED=$(jv 'd["id"]')

pages=0
url="$CV?startDateTime=2025-04-01T08%3A00%3A00Z&endDateTime=2025-04-01T21%3A00%3A00%2B01%3A00&%24top=5"
: >"$T/subjects"
while [ -n "$url" ] && [ $pages -lt 10 ]; do
    req GET "$url" "${AUTH[@]}" "${PREFER[@]}"
    [ "$ST" = 200 ] || break
    pages=$((pages + 1))
    jv '"\n".join(e["subject"] for e in d["value"])' >>"$T/subjects"
    url=$(jv 'd.get("@odata.nextLink", "")')
done
check "calendarView: 3 pages of 5" "$pages" 3
check "calendarView: overlapping events, sorted by start" "$(tr '\n' ',' <"$T/subjects")" "spans the start,slot 09,slot 10,slot 11,slot 12,slot 13,slot 14,slot 15,slot 16,slot 17,slot 18,slot 19,"
req GET "$CV?startDateTime=2025-04-01T08:00:00" "${AUTH[@]}"
check "calendarView: missing endDateTime is 400" "$ST" 400
req GET "$CV?startDateTime=2025-04-01T09:10:00&endDateTime=2025-04-01T09:20:00" "${AUTH[@]}"
check "calendarView: default \$top and a narrow window" "$ST/$(jv '[e["subject"] for e in d["value"]]')" '200/["slot 09"]'

# --- delete, cancel, out-of-band delete ------------------------------------------
req DELETE "$EV/$ID2" "${AUTH[@]}"
check "delete: 204, empty body" "$ST/$(header Content-Length)" 204/0
req DELETE "$EV/$ID2" "${AUTH[@]}"
check "delete: again is 404" "$ST/$(jv 'd["error"]["code"]')" 404/ErrorItemNotFound
req POST "$EV/$ID1/cancel" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"comment":"Cancelled in TOPdesk"}'
check "cancel: 202" "$ST" 202
req GET "$EV/$ID1" "${AUTH[@]}"
check "cancel: event removed" "$ST" 404
req POST "$EV/$ID1/cancel" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"comment":"x"}'
check "cancel: unknown is 404" "$ST" 404
req GET "$B/__fake/cancelled"
check "cancel: comment recorded" "$(jv 'd["cancelled"][0]["comment"]')" "Cancelled in TOPdesk"
req DELETE "$B/__fake/events/room2%40example.org/$SEEDED"
check "fake delete: 204" "$ST" 204
req GET "$B/v1.0/users/room2@example.org/events/$SEEDED" "${AUTH[@]}"
check "fake delete: gone for the client" "$ST" 404

# --- faults --------------------------------------------------------------------
req POST "$B/__fake/faults" "${JSON[@]}" --data-binary '{"rules":[{"path":"/v1.0/users/room@x/events","method":"POST","status":429,"times":1,"retry_after":"2"}]}'
check "faults: set" "$ST" 200
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary @"$T/ev1.json"
check "faults: 429 TooManyRequests with Retry-After" "$ST/$(jv 'd["error"]["code"]')/$(header Retry-After)" 429/TooManyRequests/2
req POST "$EV" "${AUTH[@]}" "${JSON[@]}" --data-binary @"$T/ev1.json"
check "faults: times:1 fires once" "$ST" 201
req POST "$B/__fake/faults" "${JSON[@]}" --data-binary '{"rules":[{"path":"/v1.0/users/room@x","drop":true,"times":1},{"path":"/'"$TENANT"'/oauth2","status":503,"times":1}]}'
curl -s -o /dev/null "${AUTH[@]}" "$EV"
check "faults: drop closes the connection (curl 52)" "$?" 52
get_token
check "faults: token endpoint 503" "$ST/$(jv 'd["error"]')" 503/temporarily_unavailable
req POST "$B/__fake/faults" "${JSON[@]}" --data-binary '{"rules":[]}'
req GET "$EV" "${AUTH[@]}"
check "faults: cleared" "$ST" 200

# --- concurrency per mailbox -----------------------------------------------------
req POST "$B/__fake/faults" "${JSON[@]}" --data-binary '{"rules":[{"path":"/v1.0/users/room@x/events","method":"GET","delay_ms":800}]}'
par=()
for i in 1 2 3 4 5 6; do
    curl -s -o "$T/par$i.body" -D "$T/par$i.hdrs" -w '%{http_code}\n' "${AUTH[@]}" "$EV" >"$T/par$i.st" &
    par+=($!)
done
wait "${par[@]}"
n429=$(cat "$T"/par*.st | grep -c '^429$')
n200=$(cat "$T"/par*.st | grep -c '^200$')
check "concurrency: 4 served, 2 throttled" "$n200/$n429" 4/2
f429=$(grep -l '^429$' "$T"/par*.st | head -1)
cp "${f429%.st}.body" "$T/body"
cp "${f429%.st}.hdrs" "$T/hdrs"
check "concurrency: ApplicationThrottled, Retry-After 1" "$(jv 'd["error"]["code"]')/$(header Retry-After)" ApplicationThrottled/1
req POST "$B/__fake/faults" "${JSON[@]}" --data-binary '{"rules":[]}'

# --- stats ---------------------------------------------------------------------
req GET "$B/__fake/stats"
check "stats: max in flight for room@x (the 5th may be gone before the 6th)" "$(jv 'd["max_in_flight_per_mailbox"]["room@x"] >= 5')" true
check "stats: Prefer headers recorded" "$(jv '[d["prefer"].get("outlook.timezone=\"UTC\"", 0) > 3, d["prefer"].get("IdType=\"ImmutableId\"", 0) > 3]')" '[true, true]'
check "stats: token requests and statuses" "$(jv '[d["token_requests"] == 6, d["statuses"]["429"] >= 3, d["requests"] > 40]')" '[true, true, true]'

# --- keep-alive ----------------------------------------------------------------
curl -sv -o /dev/null -o /dev/null "${AUTH[@]}" "$EV" "$EV" 2>"$T/keepalive"
check "keep-alive: second request reuses the connection" "$(grep -ci 're-using existing connection' "$T/keepalive")" 1

# --- token expiry --------------------------------------------------------------
req POST "$B/__fake/expire-tokens"
req GET "$EV" "${AUTH[@]}"
check "expire-tokens: old token is 401" "$ST/$(jv 'd["error"]["code"]')" 401/InvalidAuthenticationToken
get_token
req GET "$EV" -H "Authorization: Bearer $TOKEN"
check "expire-tokens: a new token works" "$ST" 200

start_fake S --tenant "$TENANT" --client-id cid --client-secret "$SECRET" --token-ttl 1
B=$BASE_S
get_token
check "token-ttl: expires_in follows --token-ttl" "$(jv 'd["expires_in"]')" 1
sleep 1.2
req GET "$B/v1.0/users/r%40contoso.onmicrosoft.com/events" -H "Authorization: Bearer $TOKEN"
check "token-ttl: token expires" "$ST" 401
B=$BASE_G

# --- reset ---------------------------------------------------------------------
req POST "$B/__fake/reset"
req GET "$B/__fake/events"
check "reset: no events" "$(jv 'sum(len(v) for v in d.values())')" 0
req GET "$B/__fake/stats"
check "reset: stats cleared" "$(jv '[d["requests"], d["token_requests"]]')" '[0, 0]'
req GET "$EV" -H "Authorization: Bearer $TOKEN"
check "reset: tokens cleared" "$ST" 401

check "quiet without --verbose" "$(cat "$T/G.log")" ""

echo "# $CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
