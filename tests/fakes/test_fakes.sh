#!/bin/bash
# Self-test of the test fakes: tests/fakes/topdesk.py and tests/fakes/smtp_sink.py.
#
# Starts each fake on a free port and checks what tdhook's tests rely on:
# auth, media types, paging, counts, stock quantities, fault injection,
# stats, the control endpoints; and for the sink: storage, refusals,
# tempfail, AUTH and bare-LF rejection.
#
# Exit 0 when every check passes, 1 otherwise, 77 (skip) when /usr/bin/python3
# or curl is missing.  KEEP_TMP=1 keeps the temporary directory.

set -u

PY=/usr/bin/python3
CAP=dad98dad-054b-41ae-a727-3e3b37342739

if [ ! -x "$PY" ]; then echo "SKIP: $PY missing"; exit 77; fi
if ! command -v curl >/dev/null 2>&1; then echo "SKIP: curl missing"; exit 77; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/test_fakes.XXXXXX")
PIDS=()
FAILS=0
CHECKS=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $*"; }

# check DESC ACTUAL EXPECTED
check() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        bad "$1: got '$2', expected '$3'"
    fi
}

# jv FILE EXPR: evaluates the Python expression EXPR with d = the JSON in FILE.
jv() {
    "$PY" -c 'import json,sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
r = eval(sys.argv[2])
print(json.dumps(r, ensure_ascii=False) if not isinstance(r, str) else r)' "$1" "$2" 2>&1
}

# wait_port FILE: waits until FILE holds a port, prints it.
wait_port() {
    local i
    for i in $(seq 1 100); do
        if [ -s "$1" ]; then
            cat "$1"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------
# Fake TOPdesk

echo "# fake TOPdesk"
"$PY" "$HERE/topdesk.py" --port 0 --port-file "$T/td.port" --dataset demo &
TD_PID=$!
PIDS+=("$TD_PID")
TD_PORT=$(wait_port "$T/td.port") || { bad "topdesk.py did not start"; exit 1; }
B="http://127.0.0.1:$TD_PORT"
AM="$B/tas/api/assetmgmt"
AUTH=(-u tdhook-api:secret)
H_ASSETS=(-H 'Accept: application/x.topdesk-am-assets-v2+json')
H_FIELDS=(-H 'Accept: application/x.topdesk-am-fields-v2+json')
H_SQ=(-H 'Accept: application/x.topdesk-am-stock-quantities-v0+json')
H_ASSIGN=(-H 'Accept: application/x.topdesk-am-assignments-v1+json')

# get OUT URL [curl args...]: prints the status; body in OUT, headers in OUT.h
get() {
    local out=$1 url=$2
    shift 2
    curl -s -o "$out" -D "$out.h" -w '%{http_code}' "$@" "$url"
}

curl -s "$B/__fake/data" -o "$T/data.json"
LAPTOPS=$(jv "$T/data.json" '[s["id"] for s in d["stocks"] if s["name"]=="Laptops"][0]')
MUIZEN=$(jv "$T/data.json" '[s["id"] for s in d["stocks"] if s["name"]=="Muizen en toetsenborden"][0]')
TONER=$(jv "$T/data.json" '[b["id"] for s in d["stocks"] for b in s["bulk"] if b["name"]=="Toner HP 26A zwart"][0]')
check "demo data set has 9 stock rooms" "$(jv "$T/data.json" 'len(d["stocks"])')" 9
check "demo data set has a non-ASCII name" \
    "$(jv "$T/data.json" 'any(s["name"]=="Kabels & adapters — België" for s in d["stocks"])')" true

# Auth
st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${H_ASSETS[@]}")
check "no credentials: 401" "$st" 401
check "401 has an empty body" "$(wc -c < "$T/r" | tr -d ' ')" 0
st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${H_ASSETS[@]}" -u tdhook-api:wrong)
check "wrong password: 401" "$st" 401

# Media types
st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${AUTH[@]}" -H 'Accept: application/json')
check "assets with Accept application/json: 406" "$st" 406
st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${AUTH[@]}" -H 'Accept: application/x.topdesk-am-assets-v1+json')
check "assets with the dropped v1 media type: 406" "$st" 406
st=$(get "$T/r" "$AM/fields" "${AUTH[@]}" -H 'Accept: text/html')
check "fields with Accept text/html: 406" "$st" 406
st=$(get "$T/r" "$AM/stockQuantities?stockId=$MUIZEN" "${AUTH[@]}" -H 'Accept: application/json')
check "stockQuantities with Accept application/json: 406" "$st" 406
st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${AUTH[@]}" -H 'Accept: */*')
check "assets with Accept */*: 200" "$st" 200
check "Content-Type is the vendor type" \
    "$(grep -i '^Content-Type:' "$T/r.h" | tr -d '\r' | cut -d' ' -f2)" \
    "application/x.topdesk-am-assets-v2+json"

# Fields
st=$(get "$T/r" "$AM/fields?searchTerm=Minimale%20voorraad&resourceCategory=stock&includeInUse=true" "${AUTH[@]}" "${H_FIELDS[@]}")
check "fields: 200" "$st" 200
check "fields: the minimum field" "$(jv "$T/r" '[(f["id"],f["name"],f["fieldType"],f["inUse"]) for f in d["fields"]]')" \
    '[["minimale-voorraad", "Minimale voorraad", "numberField", true]]'
st=$(get "$T/r" "$AM/fields?searchTerm=voorraad&resourceCategory=asset&includeInUse=true" "${AUTH[@]}" -H 'Accept: application/json')
check "fields with Accept application/json: 200" "$st" 200
check "fields: inUse false outside the stock category" "$(jv "$T/r" '[f["inUse"] for f in d["fields"]]')" '[false, false]'
st=$(get "$T/r" "$AM/fields?searchTerm=Minimale%20voorraad" "${AUTH[@]}" "${H_FIELDS[@]}")
check "fields: no inUse without includeInUse" "$(jv "$T/r" '"inUse" in d["fields"][0]')" false

# Stock list paging
st=$(get "$T/r" "$AM/assets?resourceCategory=stock&fields=minimale-voorraad&pageSize=4&fetchCount=true" "${AUTH[@]}" "${H_ASSETS[@]}")
check "stocks page 1 of 3: 206" "$st" 206
check "stocks page 1: 4 items, count 9" "$(jv "$T/r" '[len(d["dataSet"]), d["count"]]')" '[4, 9]'
check "stocks page 1: sorted by name" "$(jv "$T/r" '[i["name"] for i in d["dataSet"]]')" \
    '["Dockingstations", "Headsets", "Kabels & adapters — België", "Laptops"]'
check "stocks: default keys and the minimum" "$(jv "$T/r" 'sorted(d["dataSet"][3].keys())')" \
    '["@etag", "archived", "id", "minimale-voorraad", "name"]'
check "stocks: Laptops minimum 10" "$(jv "$T/r" 'd["dataSet"][3]["minimale-voorraad"]')" 10
check "stocks: columns name the field" "$(jv "$T/r" '[c["fieldName"] for c in d["columns"]]')" '["name", "minimale-voorraad"]'
st=$(get "$T/r" "$AM/assets?resourceCategory=stock&fields=minimale-voorraad&pageSize=4&pageStart=8" "${AUTH[@]}" "${H_ASSETS[@]}")
check "stocks last page: 200" "$st" 200
check "stocks last page: 1 item, no count" "$(jv "$T/r" '[len(d["dataSet"]), "count" in d]')" '[1, false]'
st=$(get "$T/r" "$AM/assets?resourceCategory=stock&archived=false&fields=minimale-voorraad&pageSize=1000" "${AUTH[@]}" "${H_ASSETS[@]}")
check "stocks archived=false: 200, 8 items" "$st $(jv "$T/r" 'len(d["dataSet"])')" "200 8"
check "stocks: no minimum -> null or absent" \
    "$(jv "$T/r" '[i.get("minimale-voorraad") for i in d["dataSet"] if i["name"]=="Muizen en toetsenborden"]')" '[null]'
st=$(get "$T/r" "$AM/assets?resourceCategory=stock&fields=@assignments&pageSize=1000" "${AUTH[@]}" "${H_ASSETS[@]}")
check "stocks with @assignments: location and branch" \
    "$(jv "$T/r" '[(a["linkedObjectType"],a["location"]["name"],a["branch"]["name"]) for i in d["dataSet"] if i["name"]=="Laptops" for a in i["@assignments"]["locations"]]')" \
    '[["location", "Magazijn Utrecht", "Hoofdkantoor Utrecht"]]'
check "stocks with @assignments: branch only" \
    "$(jv "$T/r" '[(a["linkedObjectType"],a["branch"]["name"], "location" in a) for i in d["dataSet"] if i["name"]=="Headsets" for a in i["@assignments"]["locations"]]')" \
    '[["branch", "Hoofdkantoor Utrecht", false]]'
st=$(get "$T/r" "$AM/assets?resourceCategory=stock&pageSize=1001" "${AUTH[@]}" "${H_ASSETS[@]}")
check "pageSize 1001: 400" "$st" 400
check "pageSize 1001: error body" "$(jv "$T/r" '[d["errors"][0]["errorCode"], d["errors"][0]["appliesTo"]]')" '["value_too_big", ["pageSize"]]'
st=$(get "$T/r" "$AM/assets?resourceCategory=stock&start=10" "${AUTH[@]}" "${H_ASSETS[@]}")
check "unknown parameter 'start': 400" "$st" 400

# Linked assets of one stock room (fetchCount, no data)
q="linkedToAsset=$LAPTOPS&linkedWithCapability=$CAP&linkedWithDirection=source&fetchCount=true&fetchData=false"
st=$(get "$T/r" "$AM/assets?$q" "${AUTH[@]}" "${H_ASSETS[@]}")
check "Laptops linked assets: count 7, no data" "$st $(jv "$T/r" '[d["count"], d["dataSet"]]')" "200 [7, []]"
st=$(get "$T/r" "$AM/assets?linkedToAsset=$LAPTOPS&linkedWithCapability=$CAP&linkedWithDirection=source&pageSize=5" "${AUTH[@]}" "${H_ASSETS[@]}")
check "Laptops linked assets, page of 5: 206" "$st $(jv "$T/r" 'len(d["dataSet"])')" "206 5"
st=$(get "$T/r" "$AM/assets?linkedToAsset=$LAPTOPS&linkedWithCapability=$CAP&linkedWithDirection=target&fetchCount=true" "${AUTH[@]}" "${H_ASSETS[@]}")
check "Laptops with direction target: count 0" "$(jv "$T/r" 'd["count"]')" 0
st=$(get "$T/r" "$AM/assets?linkedToAsset=$LAPTOPS&fetchCount=true" "${AUTH[@]}" "${H_ASSETS[@]}")
check "linkedToAsset without linkedWithDirection: 400" "$st" 400
st=$(get "$T/r" "$AM/assets?fetchCount=true&pageSize=0" "${AUTH[@]}" "${H_ASSETS[@]}")
check "all assets: count 29" "$(jv "$T/r" 'd["count"]')" 29

# Assignments
st=$(get "$T/r" "$AM/assets/$LAPTOPS/assignments" "${AUTH[@]}" "${H_ASSIGN[@]}")
check "assignments of Laptops" "$st $(jv "$T/r" '[d["locations"][0]["location"]["name"], d["persons"]]')" '200 ["Magazijn Utrecht", []]'
st=$(get "$T/r" "$AM/assets/00000000-0000-4000-8000-000000000000/assignments" "${AUTH[@]}" "${H_ASSIGN[@]}")
check "assignments of an unknown asset: 404" "$st" 404

# Stock quantities
st=$(get "$T/r" "$AM/stockQuantities?stockId=$MUIZEN&pageSize=1" "${AUTH[@]}" "${H_SQ[@]}")
check "stockQuantities page 1" "$st $(jv "$T/r" '[[i["bulkItem"]["name"], i["quantity"]] for i in d["dataSet"]] + [d["total"]]')" \
    '200 [["Muis Logitech M185", 14], 2]'
check "stockQuantities item keys" "$(jv "$T/r" '[sorted(d["dataSet"][0]), sorted(d["dataSet"][0]["stock"]), sorted(d["dataSet"][0]["bulkItem"])]')" \
    '[["bulkItem", "etag", "id", "quantity", "stock"], ["branch", "icon", "id", "location", "name"], ["id", "name", "template"]]'
st=$(get "$T/r" "$AM/stockQuantities?stockId=$MUIZEN&pageSize=1&lastSeenName=Muis%20Logitech%20M185" "${AUTH[@]}" "${H_SQ[@]}")
check "stockQuantities after lastSeenName" "$st $(jv "$T/r" '[[i["bulkItem"]["name"], i["quantity"]] for i in d["dataSet"]] + [d["total"]]')" \
    '200 [["Toetsenbord Logitech K120", 9], 2]'
st=$(get "$T/r" "$AM/stockQuantities?stockId=$MUIZEN&lastSeenName=Toetsenbord%20Logitech%20K120" "${AUTH[@]}" "${H_SQ[@]}")
check "stockQuantities past the end: empty" "$st $(jv "$T/r" 'd["dataSet"]')" '200 []'
st=$(get "$T/r" "$AM/stockQuantities?bulkItemId=$TONER" "${AUTH[@]}" "${H_SQ[@]}")
check "stockQuantities by bulk item: sorted by stock" "$st $(jv "$T/r" '[i["stock"]["name"] for i in d["dataSet"]]')" \
    '200 ["Toners HP 05A", "Toners HP 26A"]'
st=$(get "$T/r" "$AM/stockQuantities?pageSize=5" "${AUTH[@]}" "${H_SQ[@]}")
check "stockQuantities without stockId/bulkItemId: 400" "$st $(jv "$T/r" 'd["errors"][0]["appliesTo"]')" '400 ["stockId", "bulkItemId"]'
st=$(get "$T/r" "$AM/stockQuantities?stockId=$MUIZEN&pageSize=abc" "${AUTH[@]}" "${H_SQ[@]}")
check "stockQuantities pageSize=abc: 400" "$st" 400

# Keep-alive: the second transfer reuses the connection.
n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' "${AUTH[@]}" "${H_FIELDS[@]}" "$AM/fields" "$AM/fields")
check "keep-alive: one connection for two requests" "$n" "1 0 "

# Faults
post() { curl -s -o "$T/p" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$2" "$B$1"; }
check "set a 503 fault" "$(post /__fake/faults '{"rules":[{"path":"/tas/api/assetmgmt/assets","method":"GET","status":503,"times":2,"retry_after":"1"}]}')" 200
for i in 1 2; do
    st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${AUTH[@]}" "${H_ASSETS[@]}")
    check "fault $i: 503" "$st" 503
    check "fault $i: Retry-After" "$(grep -i '^Retry-After:' "$T/r.h" | tr -d '\r' | cut -d' ' -f2)" 1
    check "fault $i: TOPdesk error body" "$(jv "$T/r" '"errors" in d')" true
done
st=$(get "$T/r" "$AM/assets?resourceCategory=stock" "${AUTH[@]}" "${H_ASSETS[@]}")
check "after 'times' faults: 200" "$st" 200
st=$(get "$T/r" "$AM/fields" "${AUTH[@]}" "${H_FIELDS[@]}")
check "fault path prefix does not match fields" "$st" 200

post /__fake/faults '{"rules":[{"path":"/tas/api/assetmgmt/fields","drop":true,"times":1}]}' >/dev/null
curl -s -o /dev/null "${AUTH[@]}" "${H_FIELDS[@]}" "$AM/fields"
check "drop: curl gets an empty reply (52)" "$?" 52
st=$(get "$T/r" "$AM/fields" "${AUTH[@]}" "${H_FIELDS[@]}")
check "after the drop: 200" "$st" 200

post /__fake/faults '{"rules":[{"path":"/tas/api/","delay_ms":1500,"times":1}]}' >/dev/null
curl -s -o /dev/null --max-time 0.5 "${AUTH[@]}" "${H_FIELDS[@]}" "$AM/fields"
check "delay: client times out (28)" "$?" 28

post /__fake/faults '{"rules":[{"path":"/tas/api/","slow_body_ms":600}]}' >/dev/null
tt=$(curl -s -o "$T/r" -w '%{time_total}' "${AUTH[@]}" "${H_ASSETS[@]}" "$AM/assets?resourceCategory=stock")
check "slow body: takes >= 0.5 s" "$("$PY" -c "print($tt >= 0.5)")" True
check "slow body: complete JSON" "$(jv "$T/r" 'len(d["dataSet"])')" 9

post /__fake/faults '{"rules":[{"path":"/tas/api/","status":500,"ratio":0.5,"times":40}]}' >/dev/null
n500=0
for i in $(seq 1 40); do
    st=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "${H_FIELDS[@]}" "$AM/fields")
    [ "$st" = 500 ] && n500=$((n500 + 1))
done
check "ratio 0.5 over 40 requests: between 8 and 32 faults" "$([ $n500 -ge 8 ] && [ $n500 -le 32 ] && echo yes)" yes

st=$(post /__fake/faults '{"rules":[{"path":"/tas/api/","status":"x"}]}')
check "bad fault rule: 400" "$st" 400
check "clear faults" "$(post /__fake/faults '{"rules":[]}')" 200

# Stats
check "reset stats" "$(post /__fake/reset '')" 200
for i in 1 2 3; do
    curl -s -o /dev/null "${AUTH[@]}" "${H_FIELDS[@]}" "$AM/fields?searchTerm=x"
done
curl -s -o /dev/null "$AM/fields"
curl -s -o "$T/stats" "$B/__fake/stats"
check "stats: requests, by_path, statuses" \
    "$(jv "$T/stats" '[d["requests"], d["by_path"], d["statuses"]]')" \
    '[4, {"/tas/api/assetmgmt/fields": 4}, {"200": 3, "401": 1}]'
post /__fake/faults '{"rules":[{"path":"/tas/api/","delay_ms":400}]}' >/dev/null
post /__fake/reset '' >/dev/null
cpids=()
for i in 1 2 3 4 5; do
    curl -s -o /dev/null "${AUTH[@]}" "${H_FIELDS[@]}" "$AM/fields" &
    cpids+=($!)
done
wait "${cpids[@]}"
post /__fake/faults '{"rules":[]}' >/dev/null
curl -s -o "$T/stats" "$B/__fake/stats"
check "stats: max_in_flight of 5 parallel slow requests" "$(jv "$T/stats" 'd["max_in_flight"]')" 5

# Field changes
post /__fake/field '{"remove":true}' >/dev/null
get "$T/r" "$AM/fields?searchTerm=Minimale%20voorraad" "${AUTH[@]}" "${H_FIELDS[@]}" >/dev/null
check "field removed: not listed" "$(jv "$T/r" 'd["fields"]')" '[]'
get "$T/r" "$AM/assets?resourceCategory=stock&fields=minimale-voorraad&pageSize=1000" "${AUTH[@]}" "${H_ASSETS[@]}" >/dev/null
check "field removed: no values" "$(jv "$T/r" 'any("minimale-voorraad" in i for i in d["dataSet"])')" false
post /__fake/field '{"id":"minimale-voorraad-1","name":"Minimale voorraad"}' >/dev/null
get "$T/r" "$AM/fields?searchTerm=Minimale%20voorraad" "${AUTH[@]}" "${H_FIELDS[@]}" >/dev/null
check "field renamed: new id" "$(jv "$T/r" '[f["id"] for f in d["fields"]]')" '["minimale-voorraad-1"]'
get "$T/r" "$AM/assets?resourceCategory=stock&fields=minimale-voorraad-1&pageSize=1000" "${AUTH[@]}" "${H_ASSETS[@]}" >/dev/null
check "field renamed: values under the new id" "$(jv "$T/r" '[i["minimale-voorraad-1"] for i in d["dataSet"] if i["name"]=="Laptops"]')" '[10]'

# Replace the data set
cat > "$T/mine.json" <<'EOF'
{"field":{"id":"min","name":"Minimale voorraad"},
 "stocks":[
  {"id":"11111111-1111-4111-8111-111111111111","name":"Zeta","archived":false,"minimum":3,
   "location":null,"branch":null,"assets":2,"bulk":[]},
  {"id":"22222222-2222-4222-8222-222222222222","name":"Alpha","archived":false,"minimum":null,
   "location":{"id":"l1","name":"Kamer 1"},"branch":{"id":"b1","name":"Vestiging X"},"assets":0,
   "bulk":[{"id":"33333333-3333-4333-8333-333333333333","name":"Pennen","quantity":12}]}]}
EOF
st=$(curl -s -o "$T/p" -w '%{http_code}' -X POST --data-binary "@$T/mine.json" "$B/__fake/data")
check "POST /__fake/data: 200" "$st" 200
get "$T/r" "$AM/assets?resourceCategory=stock&fields=min&fetchCount=true" "${AUTH[@]}" "${H_ASSETS[@]}" >/dev/null
check "new data set is served" "$(jv "$T/r" '[[i["name"], i.get("min")] for i in d["dataSet"]] + [d["count"]]')" '[["Alpha", null], ["Zeta", 3], 2]'
curl -s -o "$T/data2.json" "$B/__fake/data"
check "GET /__fake/data returns it" "$(jv "$T/data2.json" '[s["name"] for s in d["stocks"]]')" '["Alpha", "Zeta"]'
st=$(curl -s -o "$T/p" -w '%{http_code}' -X POST --data-binary '{"stocks":[{"id":1}]}' "$B/__fake/data")
check "POST /__fake/data with a bad data set: 400" "$st" 400

# --dump-dataset, and the 100k data set's speed
"$PY" "$HERE/topdesk.py" --dump-dataset small > "$T/small.json"
check "--dump-dataset small: 10 stocks, 10 assets" "$(jv "$T/small.json" '[len(d["stocks"]), sum(s["assets"] for s in d["stocks"])]')" '[10, 10]'
"$PY" "$HERE/topdesk.py" --dump-dataset 1k > "$T/1k.json"
check "--dump-dataset 1k: 100 stocks, 1000 assets" "$(jv "$T/1k.json" '[len(d["stocks"]), sum(s["assets"] for s in d["stocks"])]')" '[100, 1000]'
"$PY" "$HERE/topdesk.py" --dump-dataset 1k --seed 42 > "$T/1k-again.json"
check "data sets are deterministic" "$(cmp -s "$T/1k.json" "$T/1k-again.json" && echo same)" same

t0=$("$PY" -c 'import time; print(time.time())')
"$PY" "$HERE/topdesk.py" --port 0 --port-file "$T/td100k.port" --dataset 100k --max-page 400 &
PIDS+=("$!")
P100=$(wait_port "$T/td100k.port") || { bad "100k fake did not start"; P100=0; }
t1=$("$PY" -c 'import time; print(time.time())')
load=$("$PY" -c "print(round($t1 - $t0, 3))")
check "100k data set: listening within 2 s (took ${load}s)" "$("$PY" -c "print($load < 2.0)")" True
B100="http://127.0.0.1:$P100/tas/api/assetmgmt"
tt=$(curl -s -o "$T/r" -w '%{http_code} %{time_total}' "${AUTH[@]}" "${H_ASSETS[@]}" \
    "$B100/assets?pageSize=1000&pageStart=99000&fetchCount=true")
read -r st tt <<< "$tt"
check "100k: --max-page 400 caps the page, 206" "$st $(jv "$T/r" '[len(d["dataSet"]), d["count"]]')" "206 [400, 100000]"
tt=$(curl -s -o "$T/r" -w '%{http_code} %{time_total}' "${AUTH[@]}" "${H_ASSETS[@]}" \
    "$B100/assets?resourceCategory=stock&fields=minimale-voorraad,@assignments&pageSize=1000")
read -r st tt <<< "$tt"
check "100k: 400 stock rooms with assignments in ${tt}s (< 0.25 s)" "$st $("$PY" -c "print($tt < 0.25)")" "206 True"
tt=$(curl -s -o "$T/r" -w '%{http_code} %{time_total}' "${AUTH[@]}" "${H_ASSETS[@]}" \
    "$B100/assets?pageSize=400&lastSeenName=OBJ-0500-00001&lastSeenOrderbyValue=OBJ-0500-00001")
read -r st tt <<< "$tt"
check "100k: seek paging with lastSeenName in ${tt}s" "$st $(jv "$T/r" 'd["dataSet"][0]["name"] > "OBJ-0500-00001"')" "206 true"

kill "$TD_PID"
wait "$TD_PID"
check "topdesk.py exits 0 on SIGTERM" "$?" 0

# ---------------------------------------------------------------------------
# SMTP sink

echo "# SMTP sink"
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    echo "skip: aiosmtpd not importable by $PY, sink not tested"
else
    M="$T/mail"
    "$PY" "$HERE/smtp_sink.py" --port 0 --port-file "$T/sm.port" --maildir "$M" \
        --refuse-rcpt bad@example.com --tempfail-first 1 &
    SM_PID=$!
    PIDS+=("$SM_PID")
    SM_PORT=$(wait_port "$T/sm.port") || { bad "smtp_sink.py did not start"; exit 1; }
    printf 'From: tdhook@example.com\r\nTo: inkoop@example.com\r\nSubject: Voorraad =?utf-8?q?=C3=A9?=\r\n\r\nLaptops: 7 / 10\r\n.leading dot\r\n' > "$T/msg.eml"
    "$PY" - "$SM_PORT" "$T/msg.eml" > "$T/smtp.out" 2>&1 <<'EOF'
import smtplib, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = open(path, "rb").read()
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.ehlo()
print("auth offered:", s.has_extn("auth"))
try:
    s.sendmail("tdhook@example.com", ["inkoop@example.com"], msg)
    print("first: accepted")
except smtplib.SMTPDataError as e:
    print("first:", e.smtp_code)
refused = s.sendmail("tdhook@example.com", ["inkoop@example.com", "bad@example.com"], msg)
print("second refused:", sorted((k, v[0]) for k, v in refused.items()))
try:
    s.sendmail("tdhook@example.com", ["inkoop@example.com"], b"Subject: x\r\n\r\nbare\nLF\r\n")
    print("bare LF: accepted")
except smtplib.SMTPDataError as e:
    print("bare LF:", e.smtp_code, e.smtp_error.decode())
try:
    s.sendmail("tdhook@example.com", ["bad@example.com"], msg)
except smtplib.SMTPRecipientsRefused as e:
    print("all refused:", [v[0] for v in e.recipients.values()])
s.quit()
EOF
    check "sink: no AUTH offered without --auth" "$(grep '^auth offered' "$T/smtp.out")" "auth offered: False"
    check "sink: first DATA answered 451" "$(grep '^first' "$T/smtp.out")" "first: 451"
    check "sink: refused recipient 550" "$(grep '^second' "$T/smtp.out")" "second refused: [('bad@example.com', 550)]"
    check "sink: bare LF rejected" "$(grep '^bare' "$T/smtp.out")" "bare LF: 550 5.6.11 bare LF"
    check "sink: every recipient refused" "$(grep '^all' "$T/smtp.out")" "all refused: [550]"
    check "sink: exactly one message stored" "$(cd "$M" && ls)" "$(printf '0001.eml\n0001.json')"
    check "sink: .eml is the DATA as sent (CRLF, dot-unstuffed)" "$(cmp "$T/msg.eml" "$M/0001.eml" && echo same)" same
    check "sink: .json envelope" "$(jv "$M/0001.json" '[d["mail_from"], d["rcpt_tos"], d["bare_lf"]]')" \
        '["tdhook@example.com", ["inkoop@example.com"], false]'
    kill "$SM_PID"
    wait "$SM_PID"
    check "smtp_sink.py exits 0 on SIGTERM" "$?" 0

    "$PY" "$HERE/smtp_sink.py" --port 0 --port-file "$T/sm2.port" --maildir "$M" \
        --auth tdhook:pw --require-auth --refuse-sender evil@example.com &
    SM_PID=$!
    PIDS+=("$SM_PID")
    SM_PORT=$(wait_port "$T/sm2.port") || { bad "smtp_sink.py (auth) did not start"; exit 1; }
    "$PY" - "$SM_PORT" "$T/msg.eml" > "$T/smtp2.out" 2>&1 <<'EOF'
import smtplib, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = open(path, "rb").read()
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.ehlo()
print("auth offered:", s.has_extn("auth"))
try:
    s.sendmail("tdhook@example.com", ["inkoop@example.com"], msg)
    print("no auth: accepted")
except smtplib.SMTPSenderRefused as e:
    print("no auth:", e.smtp_code)
try:
    s.login("tdhook", "wrong")
except smtplib.SMTPAuthenticationError as e:
    print("bad login:", e.smtp_code)
s.login("tdhook", "pw")
print("login: ok")
try:
    s.sendmail("evil@example.com", ["inkoop@example.com"], msg)
except smtplib.SMTPSenderRefused as e:
    print("refused sender:", e.smtp_code)
s.sendmail("tdhook@example.com", ["a@example.com", "b@example.com"], msg)
print("sent: ok")
s.quit()
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.ehlo()
s.esmtp_features["auth"] = "LOGIN"
s.login("tdhook", "pw")
print("login with LOGIN: ok")
s.quit()
EOF
    check "sink --auth: AUTH offered" "$(grep '^auth offered' "$T/smtp2.out")" "auth offered: True"
    check "sink --require-auth: MAIL without AUTH 530" "$(grep '^no auth' "$T/smtp2.out")" "no auth: 530"
    check "sink --auth: wrong password 535" "$(grep '^bad login' "$T/smtp2.out")" "bad login: 535"
    check "sink --auth: AUTH PLAIN works" "$(grep '^login:' "$T/smtp2.out")" "login: ok"
    check "sink --auth: AUTH LOGIN works" "$(grep '^login with LOGIN' "$T/smtp2.out")" "login with LOGIN: ok"
    check "sink --refuse-sender: 550" "$(grep '^refused sender' "$T/smtp2.out")" "refused sender: 550"
    check "sink: numbering continues in an existing maildir" "$(jv "$M/0002.json" '[d["rcpt_tos"], d["auth_login"]]')" \
        '[["a@example.com", "b@example.com"], "tdhook"]'
    check "sink: no temporary files left" "$(find "$M" -name '.*' -type f | wc -l | tr -d ' ')" 0
    kill "$SM_PID"
    wait "$SM_PID"
    check "smtp_sink.py (auth) exits 0 on SIGTERM" "$?" 0
fi

echo "# $CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
