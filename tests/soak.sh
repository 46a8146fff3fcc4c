#!/usr/bin/env bash
# The soak test: reservation webhooks through nginx while things break, and
# at the end nothing is lost and nothing is duplicated.
#
# Behind nginx and `tdhook serve`: the fake TOPdesk holding RESERVATIONS
# reservations (non-overlapping, in 16 mapped and 4 unmapped rooms, a few
# cancelled, a few requested by a person without an e-mail address), the
# fake Graph and the SMTP sink.  While WEBHOOKS webhooks go in (every
# reservation once, then repeats as "changed"), the test
#
#   - kills a random tdhook worker or job runner with kill -9, KILLS times;
#   - stops the SMTP sink for SMTP_DOWN seconds and starts it again on the
#     same port;
#   - has the fake TOPdesk and the fake Graph answer 20 % of the requests
#     with 503 or 429 (fault rules with ratio 0.2; 429 with Retry-After: 1).
#
# A webhook answered other than 202 (a worker killed mid-request: nginx
# says 502) is sent again, as a sender with retries would.  Then the test
# waits (at most DRAIN_MAX seconds) until no job is pending, and checks:
#
#   - every accepted webhook (202) has its job done, or dead with a reason;
#   - every active reservation in a mapped room has exactly one appointment
#     in that room's calendar (by the TopdeskReservationId property), no
#     reservation has two, and nothing else carries the property;
#   - every mail job that is done arrived in the sink (.eml files), and
#     none is still pending;
#   - every dead letter carries a reason.
#
# It prints the counts.  The jobs are the real ones (TDHOOK_TEST_JOB is
# never set).  Queue settings make retries quick: retry_base 100ms,
# retry_max RETRY_MAX, max_attempts 20 (a job's retries must outlast the
# SMTP outage: with retry_max 2s, 20 attempts last about 33 s).
#
#   long (documented, 30 minutes or so):  bash tests/soak.sh
#   short (make check, under a minute):   bash tests/integration/soak-short.sh
#
# Settings: WEBHOOKS (10000), KILLS (20), SMTP_DOWN (120 s), RATE (webhooks
# per second, 50), RUNNERS (8), WORKERS (2), RETRY_MAX (10s), DRAIN_MAX
# (2400 s), KEEP_TMP=1.  Exit 1 when a check fails, 77 when nginx, curl,
# python3 or aiosmtpd is missing.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"
need_test_seams

WEBHOOKS=${WEBHOOKS:-10000}
KILLS=${KILLS:-20}
SMTP_DOWN=${SMTP_DOWN:-120}
RATE=${RATE:-50}
RUNNERS=${RUNNERS:-8}
WORKERS=${WORKERS:-2}
RETRY_MAX=${RETRY_MAX:-10s}
DRAIN_MAX=${DRAIN_MAX:-2400}
# Every reservation gets one webhook, a fifth of them a second one.
RESERVATIONS=${RESERVATIONS:-$((WEBHOOKS * 5 / 6))}
[ "$RESERVATIONS" -ge 1 ] || RESERVATIONS=1
PY=/usr/bin/python3
FAKES=$top_srcdir/tests/fakes
FACILITIES=facilities@example.com

[ -x "$PY" ] || skip "no /usr/bin/python3"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "python3-aiosmtpd is not installed"
for f in topdesk.py graph.py smtp_sink.py; do
    [ -r "$FAKES/$f" ] || skip "tests/fakes/$f is missing"
done
t_setup nginx
SOAK_START=$(date +%s)
GRAPH_CLIENT=5f0c3a52-7d3e-4b8e-9a41-$(rand_hex 6)
TENANT=contoso.onmicrosoft.com
say "# soak: $WEBHOOKS webhooks over $RESERVATIONS reservations at $RATE/s, $KILLS kills," \
    "SMTP down ${SMTP_DOWN}s, 20 % faults, $WORKERS workers, $RUNNERS runners"

# --- the helper: seeding, sending, verifying (one Python file) -----------------
cat >"$T/soak.py" <<'PYEOF'
import glob, http.client, json, os, random, sys, time, urllib.request
from datetime import datetime, timedelta, timezone

PROP = "String {00020329-0000-0000-C000-000000000046} Name TopdeskReservationId".lower()


def call(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read().decode() or "null")


def seed(td, n, out):
    """n reservations in 20 rooms (16 mapped), back to back, none overlapping."""
    rnd = random.Random(7)
    data = call(td + "/__fake/data")
    persons = [p for p in data["persons"] if not p.get("archived")]
    with_mail = [p for p in persons if p.get("email")]
    without = [p for p in persons if not p.get("email")]
    branch = data["locations"][0].get("branch")
    locs = []
    for i in range(20):
        mapped = i % 5 != 4
        locs.append({"id": "5a0c0000-0000-4000-8000-%012d" % i, "name": "Soakzaal %02d" % i,
                     "roomNumber": "S.%02d" % i, "capacity": 10, "branch": branch,
                     "reservable": True, "archived": False, "blockTime": 0,
                     "optionalFields1": {"text1": "soakzaal-%02d@contoso.onmicrosoft.com" % i}
                     if mapped else {}, "optionalFields2": {}})
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    res = []
    for k in range(n):
        room = k % 20
        slot = k // 20                       # each room: one booking an hour
        t0 = start + timedelta(hours=slot)
        who = without[0] if without and k % 25 == 3 else with_mail[k % len(with_mail)]
        res.append({"id": "5a0c%04x-%04x-4%03x-8%03x-%012x" % (k >> 16, k & 0xffff, k % 4096, k % 4096, k),
                    "briefDescription": "Soak %d" % k, "numberOfPersons": 2,
                    "requester": {"id": who["id"]},
                    "status": "cancelled" if k % 17 == 5 else "planned",
                    "plannedStartDate": t0.strftime("%Y-%m-%dT%H:%M:00Z"),
                    "plannedEndDate": (t0 + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:00Z"),
                    "rooms": [locs[room]["id"]]})
    call(td + "/__fake/data", "POST", {"locations": locs, "reservations": res})
    with open(out, "w") as f:
        for r in res:
            f.write(r["id"] + "\n")
    print(len(res))


def send(base, token, ids_file, n, rate, out):
    """n webhooks at rate/s, keep-alive; a non-202 is sent again (10 tries)."""
    ids = [x.strip() for x in open(ids_file) if x.strip()]
    host, port = base.split("//")[1].split(":")
    conn = None
    start = time.monotonic()
    retried = 0
    with open(out, "w") as f:
        for i in range(n):
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            rid = ids[i % len(ids)]
            body = json.dumps({"id": rid, "event": "created" if i < len(ids) else "changed"})
            status, job = 0, ""
            for attempt in range(10):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=30)
                    conn.request("POST", "/hooks/reservation", body,
                                 {"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
                    r = conn.getresponse()
                    text = r.read().decode("utf-8", "replace")
                    status = r.status
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    status = 0
                    conn = None
                if status == 202:
                    job = json.loads(text)["job"]
                    break
                retried += 1
                time.sleep(0.2)
            f.write("%s\t%d\t%s\n" % (rid, status, job))
            f.flush()
    print("sent %d webhooks in %.1f s, %d sent again after a non-202" %
          (n, time.monotonic() - start, retried))


def verify(td, graph, maildir, sent_file, list_file):
    fails = []
    # tdhook queue list: ID STATUS KIND ATTEMPTS CREATED LAST ERROR
    jobs = {}
    for line in open(list_file):
        parts = line.split(None, 5)
        if len(parts) < 5 or parts[0] == "ID" or "-" not in parts[0] or \
                parts[1] not in ("queued", "running", "retrying", "dead", "done"):
            continue
        err = parts[5].strip() if len(parts) > 5 else ""
        jobs[parts[0]] = (parts[1], parts[2], err)
    sent = [l.rstrip("\n").split("\t") for l in open(sent_file)]
    accepted = [(rid, job) for rid, st, job in sent if st == "202"]
    refused = len(sent) - len(accepted)
    st = {"done": 0, "dead": 0, "missing": 0, "pending": 0}
    rid_done = set()
    rid_dead = set()
    for rid, job in accepted:
        s = jobs.get(job, ("missing",))[0]
        if s in ("done", "dead"):
            st[s] += 1
            (rid_done if s == "done" else rid_dead).add(rid)
        elif s == "missing":
            st["missing"] += 1
        else:
            st["pending"] += 1
    print("webhooks: %d sent, %d accepted (202), %d never accepted" %
          (len(sent), len(accepted), refused))
    print("their jobs: %d done, %d dead, %d pending, %d missing" %
          (st["done"], st["dead"], st["pending"], st["missing"]))
    if refused:
        fails.append("%d webhooks were never accepted" % refused)
    if st["missing"] or st["pending"]:
        fails.append("%d accepted webhooks have no job, %d are still pending" %
                     (st["missing"], st["pending"]))

    dead = [(j, v) for j, v in jobs.items() if v[0] == "dead"]
    no_reason = [j for j, v in dead if not v[2] or v[2] == "-"]
    by_kind = {}
    for j, v in jobs.items():
        by_kind.setdefault(v[1], {}).setdefault(v[0], 0)
        by_kind[v[1]][v[0]] += 1
    for kind in sorted(by_kind):
        print("jobs of kind %-12s %s" % (kind, ", ".join(
            "%s %d" % (k, n) for k, n in sorted(by_kind[kind].items()))))
    print("dead letters: %d, %d without a reason" % (len(dead), len(no_reason)))
    for j, v in dead[:10]:
        print("  dead %s %s: %s" % (j, v[1], v[2][:160]))
    if no_reason:
        fails.append("dead letters without a reason: %s" % " ".join(no_reason[:5]))

    # The calendars against TOPdesk.
    reservations = call(td + "/__fake/reservations")["reservations"]
    locs = {l["id"]: ((l.get("optionalFields1") or {}).get("text1") or "").lower()
            for l in call(td + "/__fake/data")["locations"]}
    events = call(graph + "/__fake/events")
    have = {}
    for mbx, evs in events.items():
        for e in evs:
            if e.get("isCancelled"):
                continue
            rid = next((p.get("value") for p in e.get("singleValueExtendedProperties") or []
                        if (p.get("id") or "").lower() == PROP), None)
            if rid:
                have.setdefault((rid.lower(), mbx.lower()), []).append(e["id"])
    want = set()
    hooked = {rid.lower() for rid, _ in accepted}
    for r in reservations:
        rid = r["id"].lower()
        if rid not in hooked or r.get("status") == "cancelled":
            continue
        for f in r.get("reservedFacilities") or []:
            mbx = locs.get(((f.get("location") or {}).get("id")) or "", "")
            if mbx:
                want.add((rid, mbx))
    dup = [k for k, v in have.items() if len(v) > 1]
    missing = [k for k in want if k not in have]
    missing_done = [k for k in missing if k[0] in {x.lower() for x in rid_done}]
    extra = [k for k in have if k not in want]
    print("appointments: %d wanted (active reservations in mapped rooms), %d present, "
          "%d duplicated, %d missing (%d of them with a job done), %d not wanted" %
          (len(want), len(have), len(dup), len(missing), len(missing_done), len(extra)))
    if dup:
        fails.append("duplicated appointments: %s" % dup[:5])
    if missing:
        # Allowed only where every job of the reservation is a dead letter.
        really = [k for k in missing if k[0] in {x.lower() for x in rid_done} or
                  k[0] not in {x.lower() for x in rid_dead}]
        if really:
            fails.append("missing appointments: %s" % really[:5])
    if extra:
        fails.append("appointments of cancelled or unknown reservations: %s" % extra[:5])

    emls = glob.glob(os.path.join(maildir, "*.eml"))
    mail = by_kind.get("mail", {})
    print("mail: %d mail jobs done, %d dead, %d pending; %d messages arrived" %
          (mail.get("done", 0), mail.get("dead", 0),
           sum(n for s, n in mail.items() if s not in ("done", "dead")), len(emls)))
    if len(emls) < mail.get("done", 0):
        fails.append("%d mail jobs are done but only %d messages arrived" %
                     (mail.get("done", 0), len(emls)))
    if mail.get("dead", 0):
        fails.append("%d mail jobs are dead letters (mail lost)" % mail["dead"])
    for f in fails:
        print("FAIL: " + f)
    return 1 if fails else 0


cmd = sys.argv[1]
if cmd == "seed":
    seed(sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif cmd == "send":
    send(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]), sys.argv[7])
elif cmd == "verify":
    sys.exit(verify(*sys.argv[2:7]))
PYEOF

# --- the fakes --------------------------------------------------------------------

start_py fake-topdesk topdesk.py --user tdhook-api --password "$TD_SECRET"
TD=http://127.0.0.1:$PY_PORT
start_py fake-graph graph.py --tenant "$TENANT" --client-id "$GRAPH_CLIENT" \
    --client-secret "$GRAPH_SECRET"
EX=http://127.0.0.1:$PY_PORT
mkdir -p "$T/mail"
# start_smtp [PORT]: the SMTP sink on PORT (default a free one); sets
# SMTP_PID (and PY_PORT).
start_smtp() {
    start_py fake-smtp_sink smtp_sink.py --port "${1:-0}" --maildir "$T/mail"
    SMTP_PID=$PY_PID
}
start_smtp 0
SMTP_PORT=$PY_PORT

n=$("$PY" "$T/soak.py" seed "$TD" "$RESERVATIONS" "$T/ids") || die "cannot seed the fake TOPdesk"
say "# seeded $n reservations in 20 rooms (16 mapped)"

write_config "log={level: warn, format: text}" "hooks={tokens: [$TOKEN1]}" \
    "admin_mail=[tdhook-admin@example.com]" \
    "topdesk={url: '$TD', username: tdhook-api, application_password: $TD_SECRET, timeout: 10s}" \
    "mail={smtp_url: 'smtp://127.0.0.1:$SMTP_PORT', starttls: off, from: tdhook@example.com}" \
    "reservations={exchange: graph, notify: {requester: true, to: [$FACILITIES]}}" \
    "graph={tenant: $TENANT, client_id: $GRAPH_CLIENT, client_secret: $GRAPH_SECRET, login_url: '$EX', graph_url: '$EX/v1.0'}" \
    "queue={runners: $RUNNERS, max_jobs: 1000000, retry_base: 100ms, retry_max: $RETRY_MAX, max_attempts: 20}"
unset TDHOOK_TEST_JOB
start_tdhook --socket "unix:$T/tdhook.sock" --workers "$WORKERS"
start_nginx

# 20 % of the requests to each fake fail: 429 with Retry-After on writes,
# 503 on everything else.
curl -sS -o /dev/null --max-time 10 -X POST "$TD/__fake/faults" -d '{"rules": [
  {"path": "/tas/api/", "method": "PATCH", "status": 429, "retry_after": "1", "ratio": 0.2},
  {"path": "/tas/api/", "status": 503, "ratio": 0.2}]}' || die "cannot set TOPdesk faults"
curl -sS -o /dev/null --max-time 10 -X POST "$EX/__fake/faults" -d '{"rules": [
  {"path": "/v1.0/", "method": "POST", "status": 429, "retry_after": "1", "ratio": 0.2},
  {"path": "/", "status": 503, "ratio": 0.2}]}' || die "cannot set Graph faults"

# --- the havoc: kills and the SMTP outage, in the background ----------------------
SEND_SECONDS=$(((WEBHOOKS + RATE - 1) / RATE))
KILL_EVERY=$((SEND_SECONDS / (KILLS + 1)))
[ "$KILL_EVERY" -ge 1 ] || KILL_EVERY=1
# kills: every KILL_EVERY s one random child of the master (worker or runner).
(
    for ((k = 1; k <= KILLS; k++)); do
        sleep "$KILL_EVERY"
        mapfile -t kids < <(children "$TDHOOK_PID")
        [ "${#kids[@]}" -gt 0 ] || continue
        victim=${kids[RANDOM % ${#kids[@]}]}
        printf '%s kill -9 %s (%s)\n' "$(date +%T)" "$victim" \
            "$(cat "/proc/$victim/comm" 2>/dev/null)" >>"$T/kills.log"
        kill -KILL "$victim" 2>/dev/null || true
    done
) &
KILLER=$!
EXTRA_PIDS+=("$KILLER")
# The SMTP sink goes down SMTP_DOWN s, starting a little into the run.
SMTP_AT=$((SEND_SECONDS / 10 + 1))
(
    sleep "$SMTP_AT"
    stop_pid "$SMTP_PID" 5
    printf '%s smtp down\n' "$(date +%T)" >>"$T/smtp-outage.log"
    sleep "$SMTP_DOWN"
    start_smtp "$SMTP_PORT" >/dev/null 2>&1
    printf '%s smtp up again (pid %s)\n' "$(date +%T)" "$SMTP_PID" >>"$T/smtp-outage.log"
    # Keep this subshell alive while the sink runs, so the cleanup stops it.
    while alive "$SMTP_PID"; do sleep 1; done
) &
OUTAGE=$!
EXTRA_PIDS+=("$OUTAGE")

# --- the webhooks --------------------------------------------------------------------
"$PY" "$T/soak.py" send "$BASE" "$TOKEN1" "$T/ids" "$WEBHOOKS" "$RATE" "$T/sent" ||
    die "the sender failed"
say "# sent in $(($(date +%s) - SOAK_START)) s since the start"

# Let the havoc finish: all kills done, the sink back.
wait "$KILLER" 2>/dev/null
wait_until $((SMTP_AT + SMTP_DOWN + 30)) grep -q "up again" "$T/smtp-outage.log" ||
    fail "the SMTP sink did not come back"
say "# kills: $(grep -c 'kill -9' "$T/kills.log" 2>/dev/null || echo 0) ($(grep -o '(tdhook-[a-z]*)' "$T/kills.log" | sort | uniq -c | tr -s ' ' | tr '\n' ' '))"
say "# $(tr '\n' ';' <"$T/smtp-outage.log")"

# Wait until nothing is pending: only done jobs and dead letters remain.
# queued, running and retrying jobs all live in state/queue/; counting its
# files is cheap, where `tdhook queue list` reads every job.
n_pending() {
    queued_jobs "$T/state/queue"
}
drain_start=$(date +%s)
while [ "$(n_pending)" -gt 0 ] && [ $(($(date +%s) - drain_start)) -lt "$DRAIN_MAX" ]; do
    sleep 1
done
if [ "$(n_pending)" -eq 0 ]; then
    ok "the queue drained $(($(date +%s) - drain_start)) s after the last webhook and the outage"
else
    fail "$(n_pending) jobs still pending after $DRAIN_MAX s"
fi
# Faults off for the look at the end.
curl -sS -o /dev/null --max-time 10 -X POST "$TD/__fake/faults" -d '{"rules": []}'
curl -sS -o /dev/null --max-time 10 -X POST "$EX/__fake/faults" -d '{"rules": []}'
"$TDHOOK" -c "$T/tdhook.yaml" queue list >"$T/queue-list" 2>&1
say "# tdhook queue list: $(tail -n 1 "$T/queue-list")"
say "# TOPdesk fake: $(curl -sS --max-time 10 "$TD/__fake/stats" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"], "requests,", d["statuses"])')"
say "# Graph fake: $(curl -sS --max-time 10 "$EX/__fake/stats" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("requests"), "requests,", d.get("statuses"))' 2>/dev/null)"

if "$PY" "$T/soak.py" verify "$TD" "$EX" "$T/mail" "$T/sent" "$T/queue-list" >"$T/verify.out" 2>&1; then
    ok "nothing lost, nothing duplicated"
else
    fail "the end state is wrong"
fi
cat "$T/verify.out"
check "tdhook is still up" alive "$TDHOOK_PID"
say "# took $(($(date +%s) - SOAK_START)) s"
finish
