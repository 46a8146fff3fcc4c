#!/bin/bash
# Self-test of the test fakes: tests/fakes/topdesk.py and tests/fakes/smtp_sink.py.
#
# Starts each fake on a free port and checks what tdhook's tests rely on:
# auth, media types, paging, counts, stock quantities, fault injection,
# stats, the control endpoints; the reservations side (reservations with
# FIQL, $top paging and PATCH, reservable locations, locations, persons,
# cancellation reasons, denied rights); and for the sink: storage,
# refusals, tempfail, AUTH and bare-LF rejection.
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

# ---------------------------------------------------------------------------
# Reservations side: general, reservations, reservable locations, locations,
# cancellation reasons, persons, rights, control endpoints.

echo "# fake TOPdesk: reservations, locations, persons"
API="$B/tas/api"
H_JSON=(-H 'Accept: application/json')
H_PERSONS=(-H 'Accept: application/x.topdesk-collection-person-v2+json')
# enc STRING: percent-encodes like tdhook's topdesk_escape (all but A-Za-z0-9-._~)
enc() { "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="-._~"))' "$1"; }
# iso OFFSET_SECONDS: UTC time now + offset as yyyy-mm-ddTHH:MM:SSZ
iso() { "$PY" -c 'import sys, time; print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + int(sys.argv[1]))))' "$1"; }
patch() { curl -s -o "$T/p" -w '%{http_code}' "${AUTH[@]}" -H 'Accept: application/json' -X PATCH -H 'Content-Type: application/json' --data-binary "$2" "$B$1"; }

st=$(get "$T/r" "$API/version" "${AUTH[@]}" "${H_JSON[@]}")
check "version: 200 {version}" "$st $(jv "$T/r" 'sorted(d) + [isinstance(d["version"], str)]')" '200 ["version", true]'
st=$(get "$T/r" "$API/version" "${H_JSON[@]}")
check "version without credentials: 401" "$st" 401
st=$(get "$T/r" "$API/productVersion" "${AUTH[@]}" "${H_JSON[@]}")
check "productVersion: {major,minor,patch}" "$st $(jv "$T/r" 'sorted(d)')" '200 ["major", "minor", "patch"]'

# Reservable locations and their mapping
st=$(get "$T/r" "$API/reservableLocations?\$top=10000" "${AUTH[@]}" "${H_JSON[@]}")
check "reservableLocations: the four rooms, by name" "$st $(jv "$T/r" '[l["name"] for l in d["results"]]')" \
    '200 ["Boardroom", "Stilteruimte 2.14", "Vergaderzaal 1.01", "Vergaderzaal 1.02"]'
check "reservableLocations: item keys" "$(jv "$T/r" 'sorted(d["results"][0]) + sorted(d["results"][0]["branch"])')" \
    '["branch", "capacity", "id", "name", "roomNumber", "id", "name"]'
V101=$(jv "$T/r" '[l["id"] for l in d["results"] if l["name"]=="Vergaderzaal 1.01"][0]')
V102=$(jv "$T/r" '[l["id"] for l in d["results"] if l["name"]=="Vergaderzaal 1.02"][0]')
STILTE=$(jv "$T/r" '[l["id"] for l in d["results"] if l["name"]=="Stilteruimte 2.14"][0]')
UTRECHT=$(jv "$T/r" '[l["branch"]["id"] for l in d["results"] if l["name"]=="Vergaderzaal 1.01"][0]')
st=$(get "$T/r" "$API/reservableLocations?\$top=1&branchId=$UTRECHT&\$fields=name" "${AUTH[@]}" "${H_JSON[@]}")
check "reservableLocations: branchId, \$top, \$fields" "$st $(jv "$T/r" 'd["results"]')" '200 [{"name": "Stilteruimte 2.14"}]'
mapping=""
for id in $(curl -s "${AUTH[@]}" "$API/reservableLocations" | "$PY" -c 'import json,sys; print(" ".join(l["id"] for l in json.load(sys.stdin)["results"]))'); do
    get "$T/loc" "$API/locations/id/$id" "${AUTH[@]}" "${H_JSON[@]}" >/dev/null
    mapping="$mapping$(jv "$T/loc" 'd["name"] + "=" + d["optionalFields1"]["text1"]');"
done
check "locations/id: room mailboxes in optionalFields1.text1" "$mapping" \
    "Boardroom=boardroom@contoso.onmicrosoft.com;Stilteruimte 2.14=;Vergaderzaal 1.01=vergaderzaal-1.01@contoso.onmicrosoft.com;Vergaderzaal 1.02=vergaderzaal-1.02@contoso.onmicrosoft.com;"
st=$(get "$T/r" "$API/locations/id/$V101" "${AUTH[@]}" "${H_JSON[@]}")
check "locations/id: ExtendedLocationDto keys" "$st $(jv "$T/r" '[len(d), d["reservationManagement"]["reservable"], len(d["optionalFields1"]), len(d["optionalFields2"])]')" '200 [24, true, 30, 30]'
st=$(get "$T/r" "$API/locations/id/00000000-0000-4000-8000-000000000000" "${AUTH[@]}" "${H_JSON[@]}")
check "locations/id unknown: 404 [{message}]" "$st $(cat "$T/r")" '404 [{"message":"Entity not found"}]'
st=$(get "$T/r" "$API/locations" "${AUTH[@]}" "${H_JSON[@]}")
check "locations: bare array, default \$fields" "$st $(jv "$T/r" '[len(d), sorted(d[0])]')" '200 [7, ["branch", "id", "name", "roomNumber"]]'
st=$(get "$T/r" "$API/locations?pageSize=2&\$fields=name,optionalFields1.text1" "${AUTH[@]}" "${H_JSON[@]}")
check "locations: pageSize, dotted \$fields" "$st $(jv "$T/r" 'd')" \
    '200 [{"name": "Boardroom", "optionalFields1": {"text1": "boardroom@contoso.onmicrosoft.com"}}, {"name": "Magazijn Antwerpen", "optionalFields1": {"text1": ""}}]'
st=$(get "$T/r" "$API/locations?query=$(enc 'reservationManagement.reservable==true;optionalFields1.text1==""')" "${AUTH[@]}" "${H_JSON[@]}")
check "locations: FIQL query (unmapped reservable rooms)" "$st $(jv "$T/r" '[l["name"] for l in d]')" '200 ["Stilteruimte 2.14"]'
st=$(get "$T/r" "$API/locations?pageSize=x" "${AUTH[@]}" "${H_JSON[@]}")
check "locations pageSize=x: 400 errors shape" "$st $(jv "$T/r" 'd["errors"][0]["appliesTo"]')" '400 ["pageSize"]'

# Cancellation reasons
st=$(get "$T/r" "$API/reservationCancellationReasons?archived=false" "${AUTH[@]}" "${H_JSON[@]}")
check "cancellation reasons: active ones" "$st $(jv "$T/r" '[sorted(d["results"][0]), len(d["results"])]')" '200 [["id", "name"], 3]'
st=$(get "$T/r" "$API/reservationCancellationReasons?archived=true" "${AUTH[@]}" "${H_JSON[@]}")
check "cancellation reasons: archived=true" "$st $(jv "$T/r" '[r["name"] for r in d["results"]]')" '200 ["Verkeerde ruimte gekozen (oud)"]'

# Persons (v2)
st=$(get "$T/r" "$API/persons?pageSize=10" "${AUTH[@]}" "${H_JSON[@]}")
check "persons with Accept application/json: 406" "$st" 406
st=$(get "$T/r" "$API/persons?pageStart=0&pageSize=4&query=archived%3D%3Dfalse&fields=dynamicName,email" "${AUTH[@]}" "${H_PERSONS[@]}")
check "persons page 1: 206, 4 items, next" "$st $(jv "$T/r" '[d["size"], len(d["item"]), "pageStart=4" in d["next"]]')" '206 [4, 4, true]'
check "persons: Content-Type is the vendor type" \
    "$(grep -i '^Content-Type:' "$T/r.h" | tr -d '\r' | cut -d' ' -f2)" "application/x.topdesk-collection-person-v2+json"
check "persons: fields=dynamicName,email (+ id), by dynamicName" "$(jv "$T/r" '[sorted(d["item"][0]), [p["dynamicName"] for p in d["item"]]]')" \
    '[["dynamicName", "email", "id"], ["Amrani, Fatima el", "Bakker, Jeroen", "Dijk, Kees van", "Jansen, Piet"]]'
check "persons: Kees van Dijk has no e-mail address" "$(jv "$T/r" '[p["email"] for p in d["item"] if p["dynamicName"]=="Dijk, Kees van"]')" '[""]'
NEXT=$(jv "$T/r" 'd["next"]')
st=$(get "$T/r" "$NEXT" "${AUTH[@]}" "${H_PERSONS[@]}")
check "persons: the next URL gives the last page (200, next null)" "$st $(jv "$T/r" '[d["size"], d["next"]]')" '200 [2, null]'
st=$(get "$T/r" "$API/persons?pageSize=5000" "${AUTH[@]}" "${H_PERSONS[@]}")
check "persons without query: archived ones too" "$st $(jv "$T/r" 'd["size"]')" '200 7'
st=$(get "$T/r" "$API/persons?query=$(enc "email=='sanne.devries@contoso.nl'")&fields=all" "${AUTH[@]}" "${H_PERSONS[@]}")
check "persons: query by e-mail, fields=all" "$st $(jv "$T/r" '[p["dynamicName"] for p in d["item"]] + [len(d["item"][0]) > 40]')" '200 ["Vries, Sanne de", true]'
st=$(get "$T/r" "$API/persons?pageSize=0" "${AUTH[@]}" "${H_PERSONS[@]}")
check "persons pageSize=0: 400 [{message}]" "$st $(jv "$T/r" 'list(d[0])')" '400 ["message"]'

# Reservations: list, FIQL, paging
st=$(get "$T/r" "$API/reservations?\$top=1" "${AUTH[@]}" "${H_JSON[@]}")
check "reservations \$top=1 (doctor): 206, 1 result" "$st $(jv "$T/r" 'len(d["results"])')" '206 1'
st=$(get "$T/r" "$API/reservations" "${AUTH[@]}" "${H_JSON[@]}")
check "reservations: all 8, sorted by plannedStartDate" "$st $(jv "$T/r" '[len(d["results"]), [r["plannedStartDate"] for r in d["results"]] == sorted(r["plannedStartDate"] for r in d["results"])]')" '200 [8, true]'
check "reservations: ReservationDto keys" "$(jv "$T/r" 'sorted(d["results"][0])')" \
    '["archived", "briefDescription", "event", "externalLinks", "id", "modificationDate", "notes", "number", "numberOfPersons", "operator", "operatorGroup", "optionalFields1", "optionalFields2", "participants", "plannedEndDate", "plannedStartDate", "processingStatus", "requester", "reservedFacilities", "reservedForOther", "series", "status"]'
check "reservations: facility and requester keys, dates with Z" "$(jv "$T/r" '[sorted(d["results"][0]["reservedFacilities"][0]), sorted(d["results"][0]["reservedFacilities"][0]["location"]), sorted(d["results"][0]["requester"]), d["results"][0]["plannedStartDate"].endswith(":00Z")]')" \
    '[["asset", "endDateBlock", "id", "issueDate", "location", "object", "plannedEndDate", "plannedStartDate", "reservedServices", "returnDate", "startDateBlock"], ["branch", "id", "name", "roomNumber", "roomType"], ["branch", "email", "id", "name", "telephone"], true]'
FROM=$(iso 0)
TO=$(iso $((14 * 86400)))
q=$(enc "reservedFacilities.location.id==$V101;plannedEndDate=gt=$FROM;plannedStartDate=lt=$TO")
st=$(get "$T/r" "$API/reservations?query=$q&\$top=10000" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL as tdhook sends it: Vergaderzaal 1.01, next 14 days" "$st $(jv "$T/r" '[(r["briefDescription"], r["status"]) for r in d["results"]]')" \
    '200 [["Teamoverleg ICT", "planned"], ["Stand-up", "cancelled"], ["Heisessie afdeling", "planned"]]'
q=$(enc "reservedFacilities.location.id==$V101;plannedEndDate=gt=$FROM;plannedStartDate=lt=$TO;status=out=(cancelled,rejectedRequest);archived==false")
st=$(get "$T/r" "$API/reservations?query=$q" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL: =out= and archived==false" "$st $(jv "$T/r" '[r["briefDescription"] for r in d["results"]]')" '200 ["Teamoverleg ICT", "Heisessie afdeling"]'
st=$(get "$T/r" "$API/reservations?query=$(enc 'status=in=(cancelled,request)')" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL: =in=" "$st $(jv "$T/r" '[r["briefDescription"] for r in d["results"]]')" '200 ["Stand-up"]'
st=$(get "$T/r" "$API/reservations?query=$(enc "status!=planned,reservedFacilities.location.id==$STILTE")" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL: != and ',' (OR)" "$st $(jv "$T/r" 'sorted(r["briefDescription"] for r in d["results"])')" '200 ["Focusblok", "Stand-up"]'
get "$T/all" "$API/reservations" "${AUTH[@]}" "${H_JSON[@]}" >/dev/null
S3=$(jv "$T/all" 'd["results"][3]["plannedStartDate"]')
S3P=$("$PY" -c 'import sys, datetime as dt; t = dt.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(hours=1); print(t.strftime("%Y-%m-%dT%H:%M:%S+01:00"))' "$S3")
S3C=$(echo "$S3P" | sed 's/+01:00$/+0100/')
n1=$(curl -s "${AUTH[@]}" "$API/reservations?query=$(enc "plannedStartDate=ge=$S3")" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
n2=$(curl -s "${AUTH[@]}" "$API/reservations?query=$(enc "plannedStartDate=ge=$S3P")" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
n3=$(curl -s "${AUTH[@]}" "$API/reservations?query=$(enc "plannedStartDate=ge=$S3C")" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
check "FIQL dates: Z, +01:00 and +0100 agree" "$n1 $n2 $n3" "5 5 5"
st=$(get "$T/r" "$API/reservations?query=$(enc "plannedStartDate=ge=${S3%Z}")" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL: a date without a zone is a 400" "$st" 400
# Paging on $top: 206, then continue from the last plannedStartDate seen.
st=$(get "$T/r" "$API/reservations?query=$(enc "plannedStartDate=ge=$S3")&\$top=3" "${AUTH[@]}" "${H_JSON[@]}")
check "\$top=3 of 5: 206" "$st $(jv "$T/r" 'len(d["results"])')" '206 3'
LAST=$(jv "$T/r" 'd["results"][-1]["plannedStartDate"]')
st=$(get "$T/r2" "$API/reservations?query=$(enc "plannedStartDate=ge=$LAST")&\$top=3" "${AUTH[@]}" "${H_JSON[@]}")
check "continuing from the last plannedStartDate: 200, the rest" "$st $("$PY" -c 'import json,sys; a = json.load(open(sys.argv[1]))["results"]; b = json.load(open(sys.argv[2]))["results"]; print(len({r["id"] for r in a + b}))' "$T/r" "$T/r2")" '200 5'
st=$(get "$T/r" "$API/reservations?\$top=10001" "${AUTH[@]}" "${H_JSON[@]}")
check "\$top=10001: 400 errors shape" "$st $(jv "$T/r" '[d["errors"][0]["errorCode"], d["errors"][0]["appliesTo"]]')" '400 ["value_too_big", ["$top"]]'
st=$(get "$T/r" "$API/reservations?query=$(enc 'modificationDate=gt=2024-01-01T00:00:00Z')" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL on modificationDate (not filterable): 400" "$st $(jv "$T/r" 'd["errors"][0]["appliesTo"]')" '400 ["query"]'
st=$(get "$T/r" "$API/reservations?query=$(enc 'status==planned;(')" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL syntax error: 400" "$st" 400
st=$(get "$T/r" "$API/reservations?locationId=$V101" "${AUTH[@]}" "${H_JSON[@]}")
check "old filter parameters: 400 unsupported_by_fake" "$st $(jv "$T/r" 'd["errors"][0]["errorCode"]')" '400 unsupported_by_fake'

# One reservation, by id and by number
R1=$(jv "$T/all" '[r["id"] for r in d["results"] if r["briefDescription"]=="Teamoverleg ICT"][0]')
N1=$(jv "$T/all" '[r["number"] for r in d["results"] if r["briefDescription"]=="Teamoverleg ICT"][0]')
st=$(get "$T/r" "$API/reservations/$R1" "${AUTH[@]}" "${H_JSON[@]}")
check "reservation by id" "$st $(jv "$T/r" '[d["briefDescription"], d["requester"]["email"], d["reservedFacilities"][0]["location"]["name"]]')" \
    '200 ["Teamoverleg ICT", "piet.jansen@contoso.nl", "Vergaderzaal 1.01"]'
check "reservation: Last-Modified" "$(grep -ci '^Last-Modified: .* GMT' "$T/r.h")" 1
st=$(get "$T/r" "$API/reservations/$(enc "$N1")" "${AUTH[@]}" "${H_JSON[@]}")
check "reservation by number ($N1, URL-encoded)" "$st $(jv "$T/r" 'd["id"]')" "200 $R1"
st=$(get "$T/r" "$API/reservations/$(enc 'R 9999 999')" "${AUTH[@]}" "${H_JSON[@]}")
check "unknown reservation: 404 errors shape" "$st $(jv "$T/r" 'd["errors"][0]["errorCode"]')" '404 not_found'
st=$(get "$T/r" "$API/reservations/$R1?\$fields=number,reservedFacilities.location.id" "${AUTH[@]}" "${H_JSON[@]}")
check "reservation \$fields" "$st $(jv "$T/r" 'd')" "200 {\"number\": \"$N1\", \"reservedFacilities\": [{\"location\": {\"id\": \"$V101\"}}]}"

# PATCH (UpdateReservationDto)
post /__fake/reset '' >/dev/null
check "PATCH externalLink: 200" "$(patch "/tas/api/reservations/$R1" '{"externalLink":{"id":"AAMkAGI2=","type":"8347","date":"2030-01-01T10:00:00Z"}}')" 200
check "PATCH answer carries the link" "$(jv "$T/p" 'd["externalLinks"]')" '[{"id": "AAMkAGI2=", "type": "8347", "date": "2030-01-01T10:00:00Z"}]'
check "PATCH externalLink again: 400 (set once)" "$(patch "/tas/api/reservations/$R1" '{"externalLink":{"id":"other","type":"8347","date":"2030-01-01T10:00:00Z"}}')" 400
check "set-once error body" "$(jv "$T/p" '[d["errors"][0]["errorCode"], d["errors"][0]["appliesTo"]]')" '["external_link_already_set", ["externalLink"]]'
st=$(get "$T/r" "$API/reservations?query=$(enc "externalLinks.id=='AAMkAGI2=';externalLinks.type=='8347'")" "${AUTH[@]}" "${H_JSON[@]}")
check "FIQL on externalLinks finds it" "$st $(jv "$T/r" '[r["id"] for r in d["results"]]')" "200 [\"$R1\"]"
check "PATCH a field the spec does not allow (status): 400" "$(patch "/tas/api/reservations/$R1" '{"status":"cancelled"}')" 400
check "PATCH plannedStartDate: 400" "$(patch "/tas/api/reservations/$R1" '{"plannedStartDate":"2030-01-01T10:00:00Z"}')" 400
check "PATCH externalLink.date without a zone: 400" "$(patch "/tas/api/reservations/$(enc "$N1")" '{"externalLink":{"id":"x","type":"8347","date":"2030-01-01T10:00:00"}}')" 400
check "PATCH briefDescription of 101 characters: 400" "$(patch "/tas/api/reservations/$R1" "{\"briefDescription\":\"$(printf 'x%.0s' $(seq 1 101))\"}")" 400
check "PATCH by number, optionalFields1.text5: 200" "$(patch "/tas/api/reservations/$(enc "$N1")" '{"optionalFields1":{"text5":"evt-1"},"notes":"via tdhook"}')" 200
st=$(get "$T/r" "$API/reservations/$R1" "${AUTH[@]}" "${H_JSON[@]}")
check "PATCHed fields are kept" "$(jv "$T/r" '[d["optionalFields1"]["text5"], d["notes"], d["status"]]')" '["evt-1", "via tdhook", "planned"]'
check "PATCH unknown reservation: 404" "$(patch "/tas/api/reservations/nope" '{"notes":"x"}')" 404
check "PATCH with a body that is not JSON: 400" "$(patch "/tas/api/reservations/$R1" 'nope')" 400
post /__fake/faults '{"rules":[{"path":"/tas/api/reservations/","method":"PATCH","status":503,"retry_after":"2","times":1}]}' >/dev/null
check "fault rule on PATCH: 503" "$(patch "/tas/api/reservations/$R1" '{"notes":"x"}')" 503
post /__fake/faults '{"rules":[]}' >/dev/null
st=$(curl -s -o "$T/p" -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' --data-binary '{"notes":"x"}' "$API/reservations/$R1")
check "PATCH without credentials: 401" "$st" 401
st=$(curl -s -o "$T/p" -D "$T/p.h" -w '%{http_code}' "${AUTH[@]}" -X DELETE "$API/reservations/$R1")
check "DELETE a reservation: 405 with Allow" "$st $(grep -i '^Allow:' "$T/p.h" | tr -d '\r' | cut -d' ' -f2-)" '405 GET, PATCH'
curl -s -o "$T/stats" "$B/__fake/stats"
check "stats: PATCHes counted and recorded" "$(jv "$T/stats" '[d["by_method"]["PATCH"], [p["status"] for p in d["patches"]], d["patches"][0]["body"]["externalLink"]["id"], d["patches"][0]["path"]]')" \
    "[11, [200, 400, 400, 400, 400, 400, 200, 404, 400, 503, 401], \"AAMkAGI2=\", \"/tas/api/reservations/$R1\"]"

# Rights: deny a family
check "deny persons and reservations" "$(post /__fake/deny '{"paths":["/tas/api/persons","/tas/api/reservations"]}')" 200
st=$(get "$T/r" "$API/persons?pageSize=1" "${AUTH[@]}" "${H_PERSONS[@]}")
check "denied persons: 403 [{message}]" "$st $(cat "$T/r")" '403 [{"message":"No permission to access the data"}]'
st=$(get "$T/r" "$API/reservations?\$top=1" "${AUTH[@]}" "${H_JSON[@]}")
check "denied reservations: 403 errors shape" "$st $(jv "$T/r" 'd["errors"][0]["errorCode"]')" '403 forbidden'
st=$(get "$T/r" "$API/reservableLocations" "${AUTH[@]}" "${H_JSON[@]}")
check "not denied: reservableLocations 200" "$st" 200
st=$(get "$T/r" "$API/reservations?\$top=1" "${H_JSON[@]}")
check "denied but no credentials: still 401" "$st" 401
check "clear the denials" "$(post /__fake/deny '{"paths":[]}')" 200
st=$(get "$T/r" "$API/persons?pageSize=1" "${AUTH[@]}" "${H_PERSONS[@]}")
check "after clearing: persons 206" "$st" 206
check "bad deny body: 400" "$(post /__fake/deny '{"paths":"x"}')" 400

# Control endpoints for reservations and locations
check "POST /__fake/reservations: 200" "$(post /__fake/reservations "{\"briefDescription\":\"Nieuw overleg\",\"rooms\":[\"$V102\"],\"plannedStartDate\":\"$(iso 7200)\",\"plannedEndDate\":\"$(iso 10800)\"}")" 200
RN=$(jv "$T/p" 'd["id"]')
NN=$(jv "$T/p" 'd["number"]')
check "created: defaults filled in" "$(jv "$T/p" '[d["status"], d["requester"]["name"], d["reservedFacilities"][0]["location"]["name"], d["number"].startswith("R "), d["archived"], d["externalLinks"]]')" \
    '["planned", "Jansen, Piet", "Vergaderzaal 1.02", true, false, []]'
st=$(get "$T/r" "$API/reservations/$(enc "$NN")" "${AUTH[@]}" "${H_JSON[@]}")
check "created: served by the API" "$st $(jv "$T/r" 'd["id"]')" "200 $RN"
st=$(curl -s -o "$T/p" -w '%{http_code}' -X PATCH --data-binary "{\"status\":\"cancelled\",\"rooms\":[\"$STILTE\"],\"requester\":{\"email\":null},\"plannedStartDate\":\"2030-05-01T10:00:00+02:00\",\"plannedEndDate\":\"2030-05-01T11:30:00+02:00\"}" "$B/__fake/reservations/$RN")
check "PATCH /__fake/reservations: status, rooms, requester, dates" "$st $(jv "$T/p" '[d["status"], d["reservedFacilities"][0]["location"]["name"], d["requester"]["email"], d["requester"]["name"], d["plannedStartDate"], d["reservedFacilities"][0]["plannedEndDate"]]')" \
    '200 ["cancelled", "Stilteruimte 2.14", null, "Jansen, Piet", "2030-05-01T08:00:00Z", "2030-05-01T09:30:00Z"]'
st=$(get "$T/r" "$API/reservations?query=$(enc "reservedFacilities.location.id==$STILTE;status==cancelled")" "${AUTH[@]}" "${H_JSON[@]}")
check "changed reservation is found by FIQL" "$st $(jv "$T/r" '[r["id"] for r in d["results"]]')" "200 [\"$RN\"]"
st=$(curl -s -o "$T/p" -w '%{http_code}' -X PATCH --data-binary '{"rooms":["no-such-room"]}' "$B/__fake/reservations/$RN")
check "PATCH /__fake/reservations with an unknown room: 400" "$st" 400
st=$(curl -s -o "$T/p" -w '%{http_code}' -X PATCH --data-binary '{"archived":true,"externalLinks":[]}' "$B/__fake/reservations/$(enc "$N1")")
check "PATCH /__fake/reservations by number: archive, remove the link" "$st $(jv "$T/p" '[d["archived"], d["externalLinks"]]')" '200 [true, []]'
curl -s -o "$T/r" "$B/__fake/reservations"
check "GET /__fake/reservations: all, rendered" "$(jv "$T/r" '[len(d["reservations"]), "reservedFacilities" in d["reservations"][0]]')" '[9, true]'
st=$(curl -s -o "$T/p" -w '%{http_code}' -X DELETE "$B/__fake/reservations/$RN")
check "DELETE /__fake/reservations/{id}" "$st" 200
st=$(get "$T/r" "$API/reservations/$RN" "${AUTH[@]}" "${H_JSON[@]}")
check "deleted reservation: 404" "$st" 404
check "unmap a room: POST /__fake/locations/{id}" "$(post "/__fake/locations/$V102" '{"text1":""}')" 200
get "$T/r" "$API/locations/id/$V102" "${AUTH[@]}" "${H_JSON[@]}" >/dev/null
check "unmapped room has an empty text1" "$(jv "$T/r" 'd["optionalFields1"]["text1"]')" ""
post "/__fake/locations/$V102" '{"text1":"zaal-1.02@contoso.onmicrosoft.com"}' >/dev/null
get "$T/r" "$API/locations/id/$V102" "${AUTH[@]}" "${H_JSON[@]}" >/dev/null
check "map it again" "$(jv "$T/r" 'd["optionalFields1"]["text1"]')" "zaal-1.02@contoso.onmicrosoft.com"
check "POST /__fake/locations for an unknown id: 404" "$(post /__fake/locations/nope '{"text1":""}')" 404
curl -s -o "$T/data3.json" "$B/__fake/data"
check "GET /__fake/data has the reservations side" "$(jv "$T/data3.json" '[k in d for k in ("stocks", "reservations", "locations", "persons", "cancellationReasons")] + [len(d["reservations"]), len(d["persons"])]')" \
    '[true, true, true, true, true, 8, 7]'
"$PY" - "$T/data3.json" "$T/data4.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
out = {"persons": [p for p in d["persons"] if p["surName"] != "Boer"],
       "reservations": d["reservations"][:2]}
json.dump(out, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
st=$(curl -s -o "$T/p" -w '%{http_code}' -X POST --data-binary "@$T/data4.json" "$B/__fake/data")
check "POST /__fake/data with persons and reservations only" "$st $(jv "$T/p" '[d["stocks"], d["persons"], d["reservations"], d["locations"]]')" '200 [2, 6, 2, 7]'
st=$(get "$T/r" "$API/persons?pageSize=100" "${AUTH[@]}" "${H_PERSONS[@]}")
check "replaced persons are served" "$st $(jv "$T/r" 'd["size"]')" '200 6'
st=$(curl -s -o "$T/p" -w '%{http_code}' -X POST --data-binary '{"reservations":[{"rooms":["nope"]}]}' "$B/__fake/data")
check "POST /__fake/data with a bad reservation: 400" "$st" 400

# Generated data sets: the demo organisation, dates, determinism
"$PY" "$HERE/topdesk.py" --dump-dataset demo --now 2030-03-14T12:34:56Z > "$T/demo.json"
check "demo: branches of the rooms" "$(jv "$T/demo.json" 'sorted({l["branch"]["name"] for l in d["locations"] if l["reservable"]})')" \
    '["Hoofdkantoor Utrecht", "Vestiging Amsterdam"]'
check "demo: mapped rooms" "$(jv "$T/demo.json" 'sorted((l["name"], l["optionalFields1"].get("text1", "")) for l in d["locations"] if l["reservable"])')" \
    '[["Boardroom", "boardroom@contoso.onmicrosoft.com"], ["Stilteruimte 2.14", ""], ["Vergaderzaal 1.01", "vergaderzaal-1.01@contoso.onmicrosoft.com"], ["Vergaderzaal 1.02", "vergaderzaal-1.02@contoso.onmicrosoft.com"]]'
check "demo: persons, one without e-mail, one archived" "$(jv "$T/demo.json" '[len(d["persons"]), [p["dynamicName"] for p in d["persons"] if not p["email"]], [p["dynamicName"] for p in d["persons"] if p["archived"]]]')" \
    '[7, ["Dijk, Kees van"], ["Boer, Henk de"]]'
check "demo: first booking tomorrow 09:00-10:00 UTC (--now)" "$(jv "$T/demo.json" '[[r["number"], r["plannedStartDate"], r["plannedEndDate"]] for r in d["reservations"] if r["briefDescription"]=="Teamoverleg ICT"]')" \
    '[["R 3003 001", "2030-03-15T09:00:00Z", "2030-03-15T10:00:00Z"]]'
check "demo: stock locations are TOPdesk locations too" "$(jv "$T/demo.json" 'sorted({s["location"]["id"] for s in d["stocks"] if s["location"]} - {l["id"] for l in d["locations"]})')" '[]'
"$PY" "$HERE/topdesk.py" --dump-dataset demo --now 2030-03-14T12:34:56Z --date-format offset > "$T/demo-offset.json"
check "--date-format offset" "$(jv "$T/demo-offset.json" 'd["reservations"][1]["plannedStartDate"]')" "2030-03-15T09:00:00.000+0000"
"$PY" "$HERE/topdesk.py" --dump-dataset small --now 2030-03-14T12:34:56Z > "$T/small-org.json"
check "small: rooms, persons, reservations" "$(jv "$T/small-org.json" '[len(d["locations"]), len(d["persons"]), len(d["reservations"])]')" '[6, 10, 8]'

# --dump-dataset, and the 100k data set's speed
"$PY" "$HERE/topdesk.py" --dump-dataset small > "$T/small.json"
check "--dump-dataset small: 10 stocks, 10 assets" "$(jv "$T/small.json" '[len(d["stocks"]), sum(s["assets"] for s in d["stocks"])]')" '[10, 10]'
"$PY" "$HERE/topdesk.py" --dump-dataset 1k --now 2030-03-14T12:00:00Z > "$T/1k.json"
check "--dump-dataset 1k: 100 stocks, 1000 assets" "$(jv "$T/1k.json" '[len(d["stocks"]), sum(s["assets"] for s in d["stocks"])]')" '[100, 1000]'
"$PY" "$HERE/topdesk.py" --dump-dataset 1k --seed 42 --now 2030-03-14T12:00:00Z > "$T/1k-again.json"
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
API100="http://127.0.0.1:$P100/tas/api"
st=$(get "$T/r" "$API100/persons?pageStart=0&pageSize=1000&query=archived%3D%3Dfalse&fields=dynamicName,email" "${AUTH[@]}" -H 'Accept: application/x.topdesk-collection-person-v2+json')
check "100k: persons page capped by --max-page, 206" "$st $(jv "$T/r" 'd["size"]')" "206 400"
st=$(get "$T/r" "$API100/reservations?\$top=10000" "${AUTH[@]}" -H 'Accept: application/json')
check "100k: reservations capped by --max-page, 206" "$st $(jv "$T/r" 'len(d["results"])')" "206 400"

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
