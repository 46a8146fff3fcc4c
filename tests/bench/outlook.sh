#!/usr/bin/env bash
# shellcheck disable=SC2119  # start_nginx and start_tdhook take optional args
# Bookings made in Outlook: what Graph's side costs and how fast it is.
#
#   1. A burst of BURST (5,000) change notifications through nginx to
#      POST /hooks/graph at RATE a second (tests/bench/rate.c, open loop),
#      while the fake Graph answers every change-feed read 2 s late and the
#      fake TOPdesk every call 300 ms late: p50, p99 and max of the answers,
#      none may near Graph's 3 s.  Baseline: the same burst, same nginx, to
#      a bare libfcgi responder (tests/bench/bare_fcgi.c).
#   2. An idle resync of ROOMS (200) mapped rooms: the Graph requests it
#      costs ($batch of 20), against the naive one request a room.
#   3. The time from a booking in Outlook to its TOPdesk reservation, with
#      notifications on, and with every notification lost (the timed
#      resync, 10 s here, finds it), tdhook's default settle time (5 s).
#
#   TDHOOK=/tmp/b/tdhook tests/bench/outlook.sh      # about 2.5 minutes
#   BACKEND=ews TDHOOK=/tmp/b/tdhook tests/bench/outlook.sh
#
# With BACKEND=ews the fake EWS stands in for Graph: the burst is of push
# notifications (SendNotification) to /hooks/ews/<key>, Exchange is not
# slowed (only TOPdesk), and an idle resync costs one SyncFolderItems a room
# (EWS has no batches).
#
# Needs nginx, curl, cc, libfcgi-dev, /usr/bin/python3 with aiosmtpd.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TDHOOK=${TDHOOK:-$top_srcdir/build/release/tdhook}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

BACKEND=${BACKEND:-graph}
BURST=${BURST:-5000}
RATE=${RATE:-1000}
ROOMS=${ROOMS:-200}
BOOKINGS=${BOOKINGS:-5}
CC=${CC:-cc}
PY=/usr/bin/python3
[ -x "$PY" ] || skip "no /usr/bin/python3"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "python3-aiosmtpd is not installed"
t_setup nginx

"$CC" -O2 -pthread -o "$T/bare_fcgi" "$top_srcdir/tests/bench/bare_fcgi.c" -lfcgi ||
    die "cannot build bare_fcgi.c"
"$CC" -O2 -o "$T/rate" "$top_srcdir/tests/bench/rate.c" || die "cannot build rate.c"
"$T/bare_fcgi" "$T/bare.sock" 2 16 >>"$T/bare.log" 2>&1 &
EXTRA_PIDS+=("$!")
wait_until 5 test -S "$T/bare.sock" || die "bare_fcgi does not listen"

GRAPH_CLIENT=5f0c3a52-7d3e-4b8e-9a41-$(rand_hex 6)
TENANT=contoso.onmicrosoft.com
mkdir -p "$T/mail"
start_py fake-topdesk topdesk.py --user tdhook-api --password "$TD_SECRET"
TD=http://127.0.0.1:$PY_PORT
start_py fake-smtp_sink smtp_sink.py --maildir "$T/mail"
SMTP_PORT=$PY_PORT
EWS_SECRET=ewspw-$(rand_hex 10)
if [ "$BACKEND" = graph ]; then
    start_py fake-graph graph.py --tenant "$TENANT" --client-id "$GRAPH_CLIENT" \
        --client-secret "$GRAPH_SECRET" --room-processing-ms 300 --mailbox-concurrency 0
    EX=http://127.0.0.1:$PY_PORT
    EXCHANGE_YAML="graph={tenant: $TENANT, client_id: $GRAPH_CLIENT, client_secret: $GRAPH_SECRET, login_url: '$EX', graph_url: '$EX/v1.0'}"
else
    start_py fake-ews ews.py --user 'CONTOSO\tdhook' --password "$EWS_SECRET" --auth ntlm \
        --room-processing-ms 300
    EX=http://127.0.0.1:$PY_PORT
    EXCHANGE_YAML="ews={url: '$EX/EWS/Exchange.asmx', username: 'CONTOSO\\tdhook', password: $EWS_SECRET, auth: ntlm}"
fi

# ROOMS reservable rooms, each mapped to a room mailbox, besides the demo's.
"$PY" - "$TD" "$ROOMS" <<'EOF' || die "cannot seed the rooms"
import json, sys, urllib.request, uuid
td, n = sys.argv[1], int(sys.argv[2])
data = json.load(urllib.request.urlopen(td + "/__fake/data"))
for i in range(n):
    data["locations"].append({
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "bench-room-%d" % i)),
        "name": "Bench room %03d" % i, "roomNumber": "B%03d" % i, "capacity": 6,
        "branch": data["locations"][0]["branch"], "roomType": None,
        "reservable": True, "archived": False, "blockTime": 0,
        "optionalFields1": {"text1": "bench-%03d@contoso.onmicrosoft.com" % i},
        "optionalFields2": {}})
req = urllib.request.Request(td + "/__fake/data", method="POST",
    data=json.dumps({"locations": data["locations"]}).encode(),
    headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
EOF

NGINX_EXTRA="location = /bare { include fastcgi_params; fastcgi_pass unix:$T/bare.sock; }"
start_nginx
write_config "hooks={tokens: [$TOKEN1]}" "admin_mail=[tdhook-admin@example.com]" \
    "log={level: warn}" \
    "topdesk={url: '$TD', username: tdhook-api, application_password: $TD_SECRET, timeout: 30s}" \
    "mail={smtp_url: 'smtp://127.0.0.1:$SMTP_PORT', starttls: off, from: tdhook@example.com}" \
    "reservations={exchange: $BACKEND, direction: both, outlook: {callback_url: '$BASE', resync: 10s, fallback_requester: jeroen.bakker@contoso.nl, cancellation_reason: Vergadering gaat niet door}}" \
    "graph=" "$EXCHANGE_YAML" \
    "queue={runners: 2, retry_base: 200ms, retry_max: 2s, max_attempts: 30}"
unset TDHOOK_TEST_OUTLOOK_SETTLE_MS
start_tdhook --socket "unix:$T/tdhook.sock" --workers 2

say "== machine: $(nproc) cpus, $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
ALL=$((ROOMS + 3))
wait_until 120 "$PY" -c "
import json, sys, urllib.request
s = json.load(urllib.request.urlopen('$EX/__fake/outlook/state'))
sys.exit(0 if len(s['subscriptions']) >= $ALL else 1)" || die "not every room got a subscription"
say "subscriptions: $ALL rooms subscribed"

# --- 1. the burst ------------------------------------------------------------------
if [ "$BACKEND" = graph ]; then
    NOTE=$("$PY" -c "
import json, urllib.request
s = json.load(urllib.request.urlopen('$EX/__fake/outlook/state'))['subscriptions'][0]
print(json.dumps({'value': [{'subscriptionId': s['id'], 'clientState': s['clientState'],
    'changeType': 'updated', 'resource': 'Users/x/Events/y', 'tenantId': 't',
    'subscriptionExpirationDateTime': s['expiration'],
    'resourceData': {'@odata.type': '#Microsoft.Graph.Event', 'id': 'y'}}]}))")
    NOTE_PATH=/hooks/graph
    NOTE_LABEL=/hooks/graph
    NOTE_TYPE=application/json
    fake POST /__fake/faults '{"rules": [{"path": "/v1.0/users/", "method": "GET", "delay_ms": 2000}]}' \
        "${EX##*:}" >/dev/null
    SLOW="Graph's feed 2 s late, TOPdesk 300 ms late"
else
    read -r NOTE_PATH NOTE < <("$PY" -c "
import json, urllib.request
s = json.load(urllib.request.urlopen('$EX/__fake/outlook/state'))['subscriptions'][0]
path = '/hooks/ews/' + s['notificationUrl'].rsplit('/', 1)[1]
print(path, '<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><m:SendNotification xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>' + s['id'] + '</t:SubscriptionId><t:PreviousWatermark>AA==</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents><t:ModifiedEvent><t:Watermark>AB==</t:Watermark><t:TimeStamp>2026-12-08T09:00:00Z</t:TimeStamp><t:ItemId Id=\"AAMk\" ChangeKey=\"Dw\"/><t:ParentFolderId Id=\"AQMk\"/></t:ModifiedEvent></m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></soap:Body></soap:Envelope>')")
    NOTE_TYPE="text/xml; charset=utf-8"
    NOTE_LABEL="/hooks/ews/<key>"
    SLOW="TOPdesk 300 ms late"
fi
fake POST /__fake/faults '{"rules": [{"path": "/tas/api/", "delay_ms": 300}]}' \
    "${TD##*:}" >/dev/null
secs=$(( (BURST + RATE - 1) / RATE ))
say "== 1. a burst of $BURST notifications at $RATE/s ($secs s), $SLOW"
TDL=$("$T/rate" -c 64 -X POST -H "Content-Type: $NOTE_TYPE" -d "$NOTE" \
    "$BASE$NOTE_PATH" "$RATE" "$secs" 2>&1)
BARE=$("$T/rate" -c 64 -X POST -H "Content-Type: $NOTE_TYPE" -d "$NOTE" \
    "$BASE/bare" "$RATE" "$secs" 2>&1)
say "tdhook $NOTE_LABEL: $TDL"
say "bare libfcgi:        $BARE"
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
for k in p50_ms p99_ms max_ms; do
    say "$k: tdhook $(field "$k" "$TDL") bare $(field "$k" "$BARE") ratio $(awk -v a="$(field "$k" "$TDL")" -v b="$(field "$k" "$BARE")" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
done
curl -s "$BASE/metrics" | grep '^tdhook_notifications_total' | sed 's/^/  /'
fake POST /__fake/faults '{"rules": []}' "${EX##*:}" >/dev/null
fake POST /__fake/faults '{"rules": []}' "${TD##*:}" >/dev/null

# --- 2. an idle resync -----------------------------------------------------------------
say "== 2. an idle resync of $ALL rooms"
# tdhook serve stops meanwhile: its own resync (every 10 s here) would count too
stop_tdhook
"$TDHOOK" -c "$T/tdhook.yaml" pull >/dev/null 2>"$T/pull1.err" || die "first pull failed: $(cat "$T/pull1.err")"
curl -s "$EX/__fake/stats" >"$T/ex-before.json"
fake POST /__fake/reset "" "${TD##*:}" >/dev/null
"$TDHOOK" -c "$T/tdhook.yaml" pull >"$T/pull2.json" 2>"$T/pull2.err" || die "pull failed: $(cat "$T/pull2.err")"
"$PY" - "$EX" "$TD" "$T/pull2.json" "$ALL" "$T/ex-before.json" "$BACKEND" <<'EOF'
import json, sys, urllib.request
g = json.load(urllib.request.urlopen(sys.argv[1] + "/__fake/stats"))
t = json.load(urllib.request.urlopen(sys.argv[2] + "/__fake/stats"))
g0 = json.load(open(sys.argv[5]))
res = json.load(open(sys.argv[3]))
rooms = int(sys.argv[4])
if sys.argv[6] == "graph":
    diff = {p: n - g0["by_path"].get(p, 0) for p, n in g["by_path"].items()
            if not p.startswith("inner:") and n - g0["by_path"].get(p, 0) > 0}
    batches = diff.get("/v1.0/$batch", 0)
    print("rooms settled by the batch: %d of %d"
          % (sum(1 for r in res["rooms"] if r.get("batched")), rooms))
    print("Graph requests: %d ($batch %d, others %s); naive, one delta read a room: %d; "
          "ratio %.3f" % (sum(diff.values()), batches,
                          {p: n for p, n in diff.items() if p != "/v1.0/$batch"}, rooms,
                          sum(diff.values()) / rooms))
else:
    diff = {o: n - g0["by_op"].get(o, 0) for o, n in g["by_op"].items()
            if n - g0["by_op"].get(o, 0) > 0}
    print("EWS requests: %d (%s); a room each, EWS has no batches; ratio %.3f"
          % (sum(diff.values()), diff, sum(diff.values()) / rooms))
print("TOPdesk requests: %d (the room mapping read afresh)" % t["requests"])
EOF
start_tdhook --socket "unix:$T/tdhook.sock" --workers 2
sleep 3

# --- 3. booking to reservation ----------------------------------------------------------
say "== 3. booking in Outlook to TOPdesk reservation ($BOOKINGS bookings each, settle 5 s)"
"$PY" - "$EX" "$TD" "$BOOKINGS" <<'EOF'
import json, sys, time, urllib.request
from datetime import datetime, timedelta, timezone
ex, td, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post(url, obj):
    r = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST",
                               headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(r))
def booked(ical):
    for r in json.load(urllib.request.urlopen(td + "/__fake/reservations"))["reservations"]:
        if any(l["type"] == "8348" and l["id"] == ical for l in r["externalLinks"]):
            return True
    return False
day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
k = 0
for mode in ("on", "lost"):
    post(ex + "/__fake/outlook/notify", {"drop": True} if mode == "lost" else {})
    times = []
    for i in range(n):
        k += 1
        s = day + timedelta(days=3 + k // 8, hours=7 + k % 8)
        t0 = time.monotonic()
        ical = post(ex + "/__fake/outlook/book", {
            "room": "bench-%03d@contoso.onmicrosoft.com" % k,
            "organizer": {"name": "Piet Jansen", "address": "piet.jansen@contoso.nl"},
            "subject": "Bench", "start": s.strftime("%Y-%m-%dT%H:%M:%S"),
            "end": (s + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")})["iCalUId"]
        while not booked(ical):
            if time.monotonic() - t0 > 60:
                raise SystemExit("booking %d not reserved within 60 s" % k)
            time.sleep(0.1)
        times.append(time.monotonic() - t0)
    times.sort()
    print("notifications %-4s: median %.1f s, min %.1f s, max %.1f s"
          % (mode, times[len(times) // 2], times[0], times[-1]))
post(ex + "/__fake/outlook/notify", {})
EOF
finish
