#!/usr/bin/python3
"""The scenario table of tests/integration/outlook.sh: bookings made in
Outlook, through nginx and `tdhook serve`, against the fake TOPdesk and
the fake Graph.  Each scenario books in its own time slot, acts as a
person in Outlook or an operator in TOPdesk would, waits for the outcome,
and counts the writes on both sides: a step that needs no write must
make none.  Prints one PASS/FAIL line a scenario; exit 1 on a failure.

Settings come from O_* environment variables (outlook.sh sets them).
"""

import email
import email.policy
import glob
import json
import os
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

E = os.environ
TD, EX, BASE = E["O_TD"], E["O_EX"], E["O_BASE"]
EWS = E.get("O_BACKEND", "graph") == "ews"
# The Exchange writes each fake counts (by_op).
EX_WRITES = ({"CreateItem", "UpdateItem", "DeleteItem"} if EWS else
             {"createEvent", "updateEvent", "deleteEvent", "cancelEvent", "declineEvent"})
ROOMS = {"v101": "vergaderzaal-1.01@contoso.onmicrosoft.com",
         "v102": "vergaderzaal-1.02@contoso.onmicrosoft.com",
         "board": "boardroom@contoso.onmicrosoft.com"}
PIET = {"name": "Piet Jansen", "address": "piet.jansen@contoso.nl"}
SANNE = {"name": "Sanne de Vries", "address": "Sanne.deVries@contoso.nl"}
GUEST = {"name": "Gast van Partner", "address": "gast@partner.example"}
LINK = "8348"
REASON = "Vergadering gaat niet door"
FIGURES = {}


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def http(method, url, obj=None, headers=None, raw=None, timeout=30):
    data = raw if raw is not None else (json.dumps(obj).encode()
                                        if obj is not None else None)
    h = {"Content-Type": "application/json"} if data is not None else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return r.status, body, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def j(method, url, obj=None):
    st, body, _ = http(method, url, obj)
    if st // 100 != 2:
        raise Failed("%s %s: %d %s" % (method, url, st, body[:300]))
    return json.loads(body) if body else None


def wait(pred, what, timeout=30):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise Failed("waited %d s for %s" % (timeout, what))


def quiet(seconds=3.0):
    """Lets notifications, pulls and webhooks settle."""
    time.sleep(seconds)


# --- the two sides -------------------------------------------------------------

def td_data():
    return j("GET", TD + "/__fake/data")


def location_id(key):
    name = {"v101": "Vergaderzaal 1.01", "v102": "Vergaderzaal 1.02",
            "board": "Boardroom"}[key]
    for loc in td_data()["locations"]:
        if loc["name"] == name:
            return loc["id"]
    raise Failed("no location " + name)


def person_id(address):
    for p in td_data()["persons"]:
        if (p.get("email") or "").lower() == address.lower():
            return p["id"]
    raise Failed("no person " + address)


def reservations_of(ical):
    out = []
    for r in j("GET", TD + "/__fake/reservations")["reservations"]:
        if any(l["type"] == LINK and l["id"] == ical
               for l in r["externalLinks"]):
            out.append(r)
    return out


def live_reservation(ical):
    rs = [r for r in reservations_of(ical) if r["status"] != "cancelled"]
    return rs[0] if len(rs) == 1 else None


def td_writes(ical=None, res_id=None):
    """The TOPdesk writes about one meeting: its create (by the link) and
    every write on its reservation(s)."""
    writes = j("GET", TD + "/__fake/stats")["writes"]
    ids = {r["id"] for r in reservations_of(ical)} if ical else set()
    if res_id:
        ids.add(res_id)
    out = []
    for w in writes:
        if w["status"] is None or w["status"] >= 300:
            continue
        body = w.get("body") if isinstance(w.get("body"), dict) else {}
        link = body.get("externalLink") or {}
        if w["path"] == "/tas/api/reservations" and ical and \
                link.get("id") == ical:
            out.append(("create", w))
        for rid in ids:
            prefix = "/tas/api/reservations/" + rid
            if w["path"].startswith(prefix):
                out.append((w["path"][len(prefix):].strip("/") or "patch", w))
    return out


def kinds(writes):
    return sorted(k for k, _ in writes)


def graph_stats():
    return j("GET", EX + "/__fake/stats")


def exchange_writes():
    """The writes the fake Exchange counted, by operation."""
    return {k: v for k, v in graph_stats()["by_op"].items() if k in EX_WRITES}


def outlook_state():
    return j("GET", EX + "/__fake/outlook/state")


def room_copy(room, ical):
    for ev in j("GET", EX + "/__fake/events").get(ROOMS[room], []):
        if ev["iCalUId"] == ical:
            return ev
    return None


def mails_to(address, needle=""):
    out = []
    for eml in sorted(glob.glob(os.path.join(E["O_MAILDIR"], "*.eml"))):
        with open(eml[:-4] + ".json") as f:
            meta = json.load(f)
        if address.lower() not in [r.lower() for r in meta["rcpt_tos"]]:
            continue
        with open(eml, "rb") as f:
            msg = email.message_from_bytes(f.read(),
                                           policy=email.policy.default)
        text = str(msg["subject"] or "")
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                text += "\n" + part.get_content()
        if needle in " ".join(text.split()):
            out.append(text)
    return out


# --- what people do ---------------------------------------------------------------

SLOT = [0]


def slot(hours=1):
    """A fresh time slot, whole minutes, in the coming weeks."""
    SLOT[0] += 1
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0,
                                             microsecond=0)
    start = day + timedelta(days=7 + SLOT[0] // 6, hours=7 + 2 * (SLOT[0] % 6))
    return start, start + timedelta(hours=hours)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def book(room, organizer, subject, start, end, ical=None, rewrite=True):
    obj = {"room": ROOMS[room], "organizer": organizer, "subject": subject,
           "start": iso(start), "end": iso(end), "rewrite": rewrite}
    if ical:
        obj["ical"] = ical
    return j("POST", EX + "/__fake/outlook/book", obj)["iCalUId"]


def change(room, ical, **kw):
    obj = {"room": ROOMS[room], "ical": ical}
    for k, v in kw.items():
        obj[k] = iso(v) if isinstance(v, datetime) else v
    return j("POST", EX + "/__fake/outlook/change", obj)


def cancel(room, ical, delete=False):
    return j("POST", EX + "/__fake/outlook/cancel",
             {"room": ROOMS[room], "ical": ical, "delete": delete})


def booked(ical, what="its reservation", timeout=30):
    return wait(lambda: live_reservation(ical), what, timeout)


def td_time(s):
    return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=timezone.utc)


def hook_reservation(res_id):
    st, body, _ = http("POST", BASE + "/hooks/reservation", {"id": res_id},
                       {"Authorization": "Bearer " + E["O_TOKEN"]})
    check(st == 202, "POST /hooks/reservation: %d %s" % (st, body[:200]))
    job = json.loads(body)["job"]

    def done():
        st2, b2, _ = http("GET", BASE + "/jobs/" + job, None,
                          {"Authorization": "Bearer " + E["O_TOKEN"]})
        d = json.loads(b2) if st2 == 200 else {}
        return d if d.get("status") in ("done", "dead") else None
    return wait(done, "job " + job)


def tdhook(*args):
    p = subprocess.run([E["O_TDHOOK"], "-c", E["O_CONFIG"]] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


# --- the scenarios ------------------------------------------------------------------

def sc_subscribed():
    """serve subscribed every mapped room: Graph after a validation round
    through nginx, asking for 10,020 minutes and falling back to what it
    grants; EWS with a push URL whose last part is a secret key."""
    subs = wait(lambda: len(outlook_state()["subscriptions"]) == 3 and
                outlook_state()["subscriptions"], "three subscriptions")
    if EWS:
        return ews_subscribed(subs)
    check(sorted(s["mailbox"] for s in subs) == sorted(ROOMS.values()),
          "subscribed rooms: %s" % [s["mailbox"] for s in subs])
    st = outlook_state()
    check(st["validations"] >= 6, "validations: %d" % st["validations"])
    for s in subs:
        check(s["notificationUrl"] == BASE + "/hooks/graph", s["notificationUrl"])
        check(s["lifecycleNotificationUrl"] == BASE + "/hooks/graph/lifecycle",
              str(s["lifecycleNotificationUrl"]))
        check(len(s["clientState"]) == 64, "clientState length")
    exp = datetime.strptime(subs[0]["expiration"][:19], "%Y-%m-%dT%H:%M:%S")
    left = (exp.replace(tzinfo=timezone.utc) -
            datetime.now(timezone.utc)).total_seconds() / 60
    check(4100 < left < 4231, "granted %d minutes" % left)
    rc, out, err = tdhook("subscriptions", "list")
    check(rc == 0 and out.count("graph") == 3, "subscriptions list: %s %s" % (out, err))
    for s in subs:
        check(s["id"] in out, "list shows " + s["id"])
    logs = open(os.path.join(os.path.dirname(E["O_STATE"]), "tdhook.log")).read()
    for s in subs:
        check(s["clientState"] not in logs, "a clientState is in the log")


def ews_subscribed(subs):
    check(sorted(s["mailbox"] for s in subs) == sorted(ROOMS.values()),
          "subscribed rooms: %s" % [s["mailbox"] for s in subs])
    keys = []
    for s in subs:
        prefix = BASE + "/hooks/ews/"
        check(s["notificationUrl"].startswith(prefix), s["notificationUrl"])
        keys.append(s["notificationUrl"][len(prefix):])
        check(len(keys[-1]) == 64, "key length")
        check(s["statusFrequency"] == 1, "StatusFrequency %s" % s["statusFrequency"])
    # heartbeats arrive and are answered OK: the subscriptions stay
    quiet(3)
    st = outlook_state()
    check(len(st["subscriptions"]) == 3, "still three after heartbeats")
    check(any(d["status"] == 200 for d in st["deliveries"]), "pushes answered")
    rc, out, err = tdhook("subscriptions", "list")
    check(rc == 0 and out.count(" ews ") == 3, "subscriptions list: %s %s" % (out, err))
    logs = open(os.path.join(os.path.dirname(E["O_STATE"]), "tdhook.log")).read()
    for k in keys:
        check(k not in logs, "a push key is in the log")


def sc_create():
    """A booking in Outlook becomes one reservation: the room, the times,
    the organizer as requester, the subject the room left ("Outlook: name"),
    the meeting's iCalUId as external link; the room's copy is tagged."""
    s, e = slot()
    t0 = time.monotonic()
    ical = book("v101", PIET, "Projectoverleg", s, e)
    r = booked(ical)
    FIGURES["booking_to_reservation_s"] = round(time.monotonic() - t0, 2)
    check(r["status"] == "planned", "status " + r["status"])
    check(r["reservedFacilities"][0]["location"]["id"] == location_id("v101"),
          "room")
    check(td_time(r["plannedStartDate"]) == s and
          td_time(r["plannedEndDate"]) == e, "times")
    check(r["requester"]["id"] == person_id(PIET["address"]), "requester")
    check(r["briefDescription"] == "Outlook: Piet Jansen",
          "description %r" % r["briefDescription"])
    quiet()
    check(kinds(td_writes(ical)) == ["create"],
          "TOPdesk writes %s" % kinds(td_writes(ical)))
    ev = room_copy("v101", ical)
    props = {p["id"].split()[-1]: p["value"]
             for p in ev.get("singleValueExtendedProperties", [])}
    check(props.get("TopdeskReservationId") == r["id"], "tag %s" % props)
    # the TOPdesk webhook that tdhook's own create fires writes nothing
    before = exchange_writes()
    job = hook_reservation(r["id"])
    check(job["status"] == "done", "job %s" % job)
    check(exchange_writes() == before, "Exchange writes after the echo")
    check(kinds(td_writes(ical)) == ["create"], "TOPdesk writes after echo")


def sc_fallback():
    """An organizer who is no TOPdesk person books through the fallback
    requester; a person matched case-insensitively books as themselves."""
    s, e = slot()
    ical = book("v102", GUEST, "Leveranciersoverleg", s, e, rewrite=False)
    r = booked(ical)
    check(r["requester"]["id"] == person_id("jeroen.bakker@contoso.nl"),
          "fallback requester")
    check(r["briefDescription"] == "Leveranciersoverleg", "kept subject")
    s, e = slot()
    ical = book("v102", SANNE, "Sollicitatie", s, e)
    r = booked(ical)
    check(r["requester"]["id"] == person_id("sanne.devries@contoso.nl"),
          "requester matched in lower case")


def sc_move_time():
    """Moved in Outlook: the reservation is rescheduled, one write."""
    s, e = slot()
    ical = book("v101", PIET, "Budgetoverleg", s, e)
    r = booked(ical)
    quiet(2)
    s2, e2 = s + timedelta(minutes=30), e + timedelta(minutes=60)
    change("v101", ical, start=s2, end=e2)
    wait(lambda: td_time(live_reservation(ical)["plannedStartDate"]) == s2,
         "the reschedule")
    r = live_reservation(ical)
    check(td_time(r["plannedEndDate"]) == e2, "new end")
    quiet()
    check(kinds(td_writes(ical)) == ["create", "reschedule"],
          "writes %s" % kinds(td_writes(ical)))


def sc_move_room():
    """Another room: the same reservation moves; nothing is cancelled,
    nothing booked twice."""
    s, e = slot()
    ical = book("v101", PIET, "Heidag", s, e)
    r = booked(ical)
    quiet(2)
    cancel("v101", ical)
    book("v102", PIET, "Heidag", s, e, ical=ical)
    wait(lambda: (live_reservation(ical) or {}).get("reservedFacilities",
                                                    [{}])[0].get("location", {})
         .get("id") == location_id("v102"), "the move to 1.02")
    quiet(4)
    r2 = live_reservation(ical)
    check(r2 and r2["id"] == r["id"], "the same reservation")
    check(len(reservations_of(ical)) == 1, "one reservation")
    check(kinds(td_writes(ical)) == ["create", "reservedFacilities/move"],
          "writes %s" % kinds(td_writes(ical)))


def sc_cancel():
    """Cancelled in Outlook (an update with isCancelled), or deleted: the
    reservation is cancelled with the configured reason, once."""
    for delete in (False, True):
        s, e = slot()
        ical = book("board", SANNE, "Directieoverleg", s, e)
        r = booked(ical)
        quiet(2)
        cancel("board", ical, delete=delete)
        wait(lambda: reservations_of(ical)[0]["status"] == "cancelled",
             "the cancellation")
        quiet()
        check(kinds(td_writes(ical)) == ["cancel", "create"],
              "writes %s" % kinds(td_writes(ical)))
        cw = [w for k, w in td_writes(ical) if k == "cancel"][0]
        check(cw["body"] == {"name": REASON}, "reason %s" % cw["body"])
        check(r["id"] == reservations_of(ical)[0]["id"], "same reservation")


def sc_refused():
    """TOPdesk refuses a taken room: the organizer is told why, in plain
    words; with when_refused: report nothing else happens."""
    s, e = slot()
    j("POST", TD + "/__fake/reservations", {
        "plannedStartDate": iso(s) + "Z", "plannedEndDate": iso(e) + "Z",
        "rooms": [location_id("v102")], "briefDescription": "Al geboekt"})
    ical = book("v102", PIET, "Overleg", s, e)
    wait(lambda: mails_to(PIET["address"], "is not confirmed"),
         "the organizer's mail")
    quiet()
    check(reservations_of(ical) == [], "no reservation")
    text = mails_to(PIET["address"], "is not confirmed")[-1]
    check("already taken" in text, text)
    check("tdhook" not in text.lower(), "no tool names for the organizer")
    check(not any(d["iCalUId"] == ical for d in outlook_state()["declined"]),
          "not declined with report")
    check(len(mails_to(PIET["address"], "is not confirmed")) == 1, "one mail")


def sc_td_cancel():
    """An operator cancels in TOPdesk a booking that came from Outlook: the
    organizer is told, the room declines; no resync books it again."""
    s, e = slot()
    ical = book("v101", SANNE, "Klantbezoek", s, e)
    r = booked(ical)
    quiet(2)
    j("PATCH", TD + "/__fake/reservations/" + r["id"], {"status": "cancelled"})
    hook_reservation(r["id"])
    wait(lambda: any(d["iCalUId"] == ical for d in outlook_state()["declined"]),
         "the room's decline")
    wait(lambda: mails_to("sanne.devries@contoso.nl", "has been cancelled"),
         "the organizer's mail")
    rc, out, err = tdhook("pull")
    check(rc == 0, "pull: %s" % err)
    quiet()
    check(len(reservations_of(ical)) == 1, "not booked again")
    check(kinds(td_writes(ical)) == ["create"], "writes %s" % kinds(td_writes(ical)))


def sc_td_move():
    """An operator moves it in TOPdesk: the organizer is told; TOPdesk's
    change stands until the meeting changes in Outlook."""
    s, e = slot()
    ical = book("board", PIET, "Evaluatie", s, e)
    r = booked(ical)
    quiet(2)
    s2 = s + timedelta(hours=1)
    j("PATCH", TD + "/__fake/reservations/" + r["id"],
      {"plannedStartDate": iso(s2) + "Z", "plannedEndDate": iso(e + timedelta(hours=1)) + "Z"})
    hook_reservation(r["id"])
    wait(lambda: mails_to(PIET["address"], "has been changed"),
         "the organizer's mail")
    rc, out, err = tdhook("pull", "--full")
    check(rc == 0, "pull --full: %s" % err)
    quiet()
    check(td_time(live_reservation(ical)["plannedStartDate"]) == s2,
          "TOPdesk's time stands")
    check(kinds(td_writes(ical)) == ["create"], "writes %s" % kinds(td_writes(ical)))


def sc_notifications_faulty():
    """Repeated and reordered notifications end as clean ones do."""
    j("POST", EX + "/__fake/outlook/notify", {"duplicate": 3, "reorder": True})
    try:
        s, e = slot()
        ical = book("v102", PIET, "Dubbel", s, e)
        quiet(1.5)
        j("POST", EX + "/__fake/outlook/flush", {})
        booked(ical)
        quiet(3)
        j("POST", EX + "/__fake/outlook/flush", {})
        quiet(3)
    finally:
        j("POST", EX + "/__fake/outlook/notify", {})
    check(len(reservations_of(ical)) == 1, "one reservation")
    check(kinds(td_writes(ical)) == ["create"], "writes %s" % kinds(td_writes(ical)))


def sc_late():
    """A late notification (3 s behind) ends as a prompt one: the move is
    applied once."""
    s, e = slot()
    ical = book("v101", SANNE, "Laat", s, e)
    booked(ical)
    quiet(2)
    j("POST", EX + "/__fake/outlook/notify", {"delay_ms": 3000})
    try:
        s2 = s + timedelta(minutes=15)
        change("v101", ical, start=s2)
        wait(lambda: td_time(live_reservation(ical)["plannedStartDate"]) == s2,
             "the late move")
        quiet(4)
    finally:
        j("POST", EX + "/__fake/outlook/notify", {})
    check(kinds(td_writes(ical)) == ["create", "reschedule"],
          "writes %s" % kinds(td_writes(ical)))


def sc_refused_move():
    """TOPdesk refuses a move (the new time is taken): the organizer is
    told, and with report the reservation stays at its old time."""
    s, e = slot()
    ical = book("board", PIET, "Verschuift", s, e)
    r = booked(ical)
    quiet(2)
    s2, e2 = slot()
    j("POST", TD + "/__fake/reservations", {
        "plannedStartDate": iso(s2) + "Z", "plannedEndDate": iso(e2) + "Z",
        "rooms": [location_id("board")], "briefDescription": "Al bezet"})
    before = len(mails_to(PIET["address"], "is not confirmed"))
    change("board", ical, start=s2, end=e2)
    wait(lambda: len(mails_to(PIET["address"], "is not confirmed")) > before,
         "the organizer's mail")
    quiet()
    r2 = live_reservation(ical)
    check(r2["id"] == r["id"] and td_time(r2["plannedStartDate"]) == s,
          "the old time stands")
    check("already taken" in mails_to(PIET["address"], "is not confirmed")[-1], "reason")
    check(kinds(td_writes(ical)) == ["create"], "writes %s" % kinds(td_writes(ical)))


def sc_conflicting():
    """TOPdesk books a taken room as conflictingPlanned: the organizer is
    told; with report the conflicting reservation stays."""
    s, e = slot()
    j("POST", TD + "/__fake/reservations", {
        "plannedStartDate": iso(s) + "Z", "plannedEndDate": iso(e) + "Z",
        "rooms": [location_id("v102")], "briefDescription": "Eerder geboekt"})
    j("POST", TD + "/__fake/conflicts", {"mode": "conflicting"})
    before = len(mails_to("sanne.devries@contoso.nl", "is not confirmed"))
    try:
        ical = book("v102", SANNE, "Tweede", s, e)
        wait(lambda: reservations_of(ical), "the reservation")
        wait(lambda: len(mails_to("sanne.devries@contoso.nl", "is not confirmed")) > before,
             "the mail")
    finally:
        j("POST", TD + "/__fake/conflicts", {"mode": "refuse"})
    quiet()
    rs = reservations_of(ical)
    check(len(rs) == 1 and rs[0]["status"] == "conflictingPlanned", "one conflicting")
    check("already taken" in mails_to("sanne.devries@contoso.nl", "is not confirmed")[-1],
          "reason")
    check(kinds(td_writes(ical)) == ["create"], "writes %s" % kinds(td_writes(ical)))
    # cancelled in Outlook, the conflicting reservation goes too
    cancel("v102", ical)
    wait(lambda: reservations_of(ical)[0]["status"] == "cancelled", "the cancel")


def sc_notifications_lost():
    """Every notification lost: the timed resync (10 s here) books it."""
    j("POST", EX + "/__fake/outlook/notify", {"drop": True})
    try:
        s, e = slot()
        t0 = time.monotonic()
        ical = book("board", SANNE, "Zonder melding", s, e)
        booked(ical, timeout=40)
        FIGURES["booking_to_reservation_lost_s"] = round(time.monotonic() - t0, 2)
    finally:
        j("POST", EX + "/__fake/outlook/notify", {})
    check(kinds(td_writes(ical)) == ["create"], "writes")


def sc_delta_gone():
    """The room's change feed expires (410): read afresh, no duplicates,
    and a meeting deleted meanwhile is cancelled."""
    s, e = slot()
    keep = book("v101", PIET, "Blijft", s, e)
    booked(keep)
    s, e = slot()
    gone = book("v101", SANNE, "Verdwijnt", s, e)
    booked(gone)
    quiet(2)
    j("POST", EX + "/__fake/outlook/notify", {"drop": True})
    try:
        j("POST", EX + "/__fake/outlook/expire-delta", {"mailbox": ROOMS["v101"]})
        cancel("v101", gone, delete=True)
        rc, out, err = tdhook("pull", "--room", ROOMS["v101"])
        check(rc == 0, "pull: %s %s" % (out, err))
    finally:
        j("POST", EX + "/__fake/outlook/notify", {})
    # the pull, or one that a heartbeat's watermark gap started meanwhile (EWS)
    wait(lambda: reservations_of(gone)[0]["status"] == "cancelled", "the deleted one cancelled")
    check(len(reservations_of(keep)) == 1 and live_reservation(keep), "kept one")
    check(kinds(td_writes(keep)) == ["create"], "no duplicate")


def sc_lifecycle():
    """subscriptionRemoved: subscribed anew; reauthorizationRequired and
    missed: the room is read again; all answered 202."""
    old = {s["mailbox"]: s["id"] for s in outlook_state()["subscriptions"]}
    sid = old[ROOMS["v102"]]
    st = j("POST", EX + "/__fake/outlook/lifecycle",
           {"subscriptionId": sid, "event": "reauthorizationRequired"})
    check(st["status"] == 202, "reauthorizationRequired: %s" % st)
    st = j("POST", EX + "/__fake/outlook/lifecycle",
           {"subscriptionId": sid, "event": "missed"})
    check(st["status"] == 202, "missed: %s" % st)
    st = j("POST", EX + "/__fake/outlook/lifecycle",
           {"subscriptionId": sid, "event": "subscriptionRemoved"})
    check(st["status"] == 202, "subscriptionRemoved: %s" % st)
    new = wait(lambda: {s["mailbox"]: s["id"] for s in
                        outlook_state()["subscriptions"]}.get(ROOMS["v102"]),
               "a new subscription of 1.02")
    check(new != sid, "a new id")
    s, e = slot()
    ical = book("v102", PIET, "Na verlies", s, e)
    booked(ical, "a booking through the new subscription")


def sc_renew():
    """A subscription past half its life is renewed (PATCH), not made anew."""
    path = None
    for f in glob.glob(os.path.join(E["O_STATE"], "outlook", "rooms", "*.json")):
        d = json.load(open(f))
        if d.get("mailbox") == ROOMS["board"] and d.get("sub"):
            path, doc = f, d
    check(path, "the boardroom's state")
    doc["sub"]["created"] -= 3 * 86400
    json.dump(doc, open(path, "w"))
    before = graph_stats()["by_op"].get("subscription-patch", 0)
    rc, out, err = tdhook("subscriptions", "sync")
    check(rc == 0, "sync: %s" % err)
    check(graph_stats()["by_op"].get("subscription-patch", 0) == before + 1,
          "one renewal")
    check("renewed" in out, out)


def sc_edge():
    """The route: the validation round, a wrong clientState, bad bodies (EWS:
    an unknown key or subscription answered Unsubscribe, a bad body a SOAP
    fault)."""
    if EWS:
        return ews_edge()
    token = "Validation: Testing client application reachability <b>&x"
    st, body, h = http("POST", BASE + "/hooks/graph?validationToken=" +
                       urllib.parse.quote(token, safe=""), raw=b"",
                       headers={"Content-Type": "text/plain"})
    check(st == 200 and body.decode() == token, "validation: %d %r" % (st, body))
    check(h.get("Content-Type", "").startswith("text/plain"), "text/plain")
    sub = outlook_state()["subscriptions"][0]
    note = {"value": [{"subscriptionId": sub["id"], "clientState": "wrong",
                       "changeType": "created", "resource": "x"}]}
    st, body, _ = http("POST", BASE + "/hooks/graph", note)
    check(st == 403 and b'"forbidden"' in body, "wrong clientState: %d" % st)
    note["value"][0]["subscriptionId"] = "../../etc/passwd"
    st, body, _ = http("POST", BASE + "/hooks/graph", note)
    check(st == 403, "bad subscription id: %d" % st)
    st, body, _ = http("POST", BASE + "/hooks/graph", raw=b'{"value": [',
                       headers={"Content-Type": "application/json"})
    check(st == 400 and b'"error"' in body, "malformed: %d" % st)
    st, body, _ = http("POST", BASE + "/hooks/graph", {"nothing": 1})
    check(st == 400, "no value: %d" % st)
    st, body, _ = http("GET", BASE + "/hooks/graph")
    check(st == 405, "GET: %d" % st)
    st, body, _ = http("GET", BASE + "/metrics")
    text = body.decode()
    check('tdhook_notifications_total{outcome="queued"}' in text, "metrics")
    check("tdhook_subscription_oldest_expiry_seconds " in text and
          "tdhook_subscription_oldest_expiry_seconds 0\n" not in text,
          "expiry gauge")


PUSH = ('<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap='
        '"http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><m:SendNotification '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        '<m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success">'
        '<m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>%s'
        '</t:SubscriptionId><t:PreviousWatermark>AA==</t:PreviousWatermark><t:MoreEvents>'
        'false</t:MoreEvents><t:StatusEvent><t:Watermark>AB==</t:Watermark></t:StatusEvent>'
        '</m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages>'
        '</m:SendNotification></soap:Body></soap:Envelope>')


def ews_edge():
    xml = {"Content-Type": "text/xml; charset=utf-8"}
    sub = outlook_state()["subscriptions"][0]
    st, body, h = http("POST", sub["notificationUrl"], raw=(PUSH % sub["id"]).encode(),
                       headers=xml)
    check(st == 200 and b">OK<" in body, "a heartbeat: %d %r" % (st, body[:200]))
    check(h.get("Content-Type", "").startswith("text/xml"), "text/xml")
    st, body, _ = http("POST", sub["notificationUrl"], raw=(PUSH % "another").encode(),
                       headers=xml)
    check(st == 200 and b">Unsubscribe<" in body, "another subscription: %d" % st)
    st, body, _ = http("POST", BASE + "/hooks/ews/" + "0" * 64,
                       raw=(PUSH % sub["id"]).encode(), headers=xml)
    check(st == 200 and b">Unsubscribe<" in body, "an unknown key: %d" % st)
    st, body, _ = http("POST", sub["notificationUrl"], raw=b"<not-soap/>", headers=xml)
    check(st == 400 and b"Fault" in body, "not a SendNotification: %d" % st)
    st, body, _ = http("POST", sub["notificationUrl"],
                       raw=b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                           b'"file:///etc/passwd">]><x>&e;</x>', headers=xml)
    check(st == 400 and b"root:" not in body, "an entity: %d" % st)
    st, body, _ = http("GET", sub["notificationUrl"])
    check(st == 405, "GET: %d" % st)
    st, body, _ = http("GET", BASE + "/metrics")
    check('tdhook_notifications_total{outcome="heartbeat"}' in body.decode(), "metrics")
    check(len(outlook_state()["subscriptions"]) == 3, "no subscription lost")


def sc_silent():
    """A push subscription that stays silent for twice its heartbeat is
    replaced, and what happened meanwhile is read."""
    old = {s["mailbox"]: s["id"] for s in outlook_state()["subscriptions"]}
    j("POST", EX + "/__fake/outlook/notify", {"silence": True})
    try:
        s, e = slot()
        ical = book("v102", PIET, "In de stilte", s, e)
        # twice the heartbeat (1 s here), then the next upkeep (every 10 s)
        new = wait(lambda: {x["mailbox"]: x["id"] for x in outlook_state()["subscriptions"]
                            if x["id"] not in old.values()}.get(ROOMS["v102"]),
                   "a new subscription of 1.02", timeout=40)
    finally:
        j("POST", EX + "/__fake/outlook/notify", {})
    check(new != old[ROOMS["v102"]], "a new id")
    booked(ical, "the booking made during the silence")
    # the old subscription's next push is answered Unsubscribe: it ends
    wait(lambda: old[ROOMS["v102"]] not in [x["id"] for x in outlook_state()["subscriptions"]],
         "the old subscription to end")
    wait(lambda: len(outlook_state()["subscriptions"]) == 3, "one subscription a room again")


def metric(name):
    st, body, _ = http("GET", BASE + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def sc_gap():
    """Pushes lost (Exchange gave up on them): the next heartbeat's
    watermark shows the gap, and the room is read."""
    quiet(3)     # what earlier scenarios still push goes first: the drops are the booking's
    gaps = metric('tdhook_notifications_total{outcome="gap"}')
    j("POST", EX + "/__fake/outlook/notify", {"drop": 2})   # the booking's two pushes
    s, e = slot()
    ical = book("board", SANNE, "Verloren push", s, e)
    booked(ical, "the booking whose pushes were lost")
    wait(lambda: metric('tdhook_notifications_total{outcome="gap"}') > gaps, "a gap counted")
    j("POST", EX + "/__fake/outlook/notify", {})


def sc_topdesk_made():
    """A reservation made in TOPdesk still gets its appointment, and that
    appointment never comes back as an Outlook booking."""
    s, e = slot()
    r = j("POST", TD + "/__fake/reservations", {
        "plannedStartDate": iso(s) + "Z", "plannedEndDate": iso(e) + "Z",
        "rooms": [location_id("board")], "briefDescription": "Uit TOPdesk",
        "requester": {"id": person_id(PIET["address"])}})
    job = hook_reservation(r["id"])
    check(job["status"] == "done", "job %s" % job)
    evs = [ev for ev in j("GET", EX + "/__fake/events").get(ROOMS["board"], [])
           if any(p["value"] == r["id"] for p in
                  ev.get("singleValueExtendedProperties", []))]
    check(len(evs) == 1, "its appointment")
    quiet(3)
    rc, out, err = tdhook("pull")
    check(rc == 0, err)
    links = [x for x in j("GET", TD + "/__fake/reservations")["reservations"]
             if any(l["type"] == LINK and l["id"] == evs[0]["iCalUId"]
                    for l in x["externalLinks"])]
    check(links == [], "not booked back")


def sc_decline():
    """With when_refused: decline the room's copy is declined with the
    reason (config reloaded with SIGHUP)."""
    cfg = E["O_CONFIG"]
    text = open(cfg).read().replace("when_refused: report",
                                    "when_refused: decline")
    open(cfg, "w").write(text)
    os.kill(int(E["O_PID"]), 1)
    quiet(2)
    s, e = slot()
    j("POST", TD + "/__fake/reservations", {
        "plannedStartDate": iso(s) + "Z", "plannedEndDate": iso(e) + "Z",
        "rooms": [location_id("v101")], "briefDescription": "Bezet"})
    ical = book("v101", SANNE, "Te laat", s, e)
    d = wait(lambda: [x for x in outlook_state()["declined"]
                      if x["iCalUId"] == ical], "the decline")
    check("already taken" in d[0]["comment"], d[0]["comment"])
    check(d[0]["sendResponse"] is True, "the organizer gets the answer")
    wait(lambda: mails_to("sanne.devries@contoso.nl", "declined your meeting"),
         "the organizer's mail")
    quiet()
    check(reservations_of(ical) == [], "no reservation")


def sc_doctor():
    """doctor checks the two-way preparations: the callback's validation
    round through nginx, live subscriptions, the change feed, the fallback
    requester and the cancellation reason."""
    rc, out, err = tdhook("doctor", "--no-mail")
    lines = {l.split()[1]: l.split()[0] for l in out.splitlines()
             if len(l.split()) > 1}
    want = {"outlook.callback": "OK" if EWS else "WARN",  # http:// here; Graph wants https
            "outlook.subscriptions": "OK", "outlook.fallback-requester": "OK",
            "outlook.cancellation-reason": "OK"}
    if not EWS:
        want["outlook.read"] = "OK"
    for k, v in want.items():
        check(lines.get(k) == v, "%s: %s\n%s" % (k, lines.get(k), out))
    check(("answers Exchange's push" if EWS else "answers the validation round") in out, out)
    # and what it says when they are wrong
    bad = E["O_CONFIG"] + ".bad"
    text = open(E["O_CONFIG"]).read()
    text = text.replace("cancellation_reason: " + REASON,
                        "cancellation_reason: Bestaat niet")
    text = text.replace("fallback_requester: jeroen.bakker@contoso.nl",
                        "fallback_requester: niemand@contoso.nl")
    text = text.replace("callback_url: '" + BASE, "callback_url: '" + BASE + "/elders")
    with open(bad, "w") as f:
        f.write(text)
    os.chmod(bad, 0o600)
    p = subprocess.run([E["O_TDHOOK"], "-c", bad, "doctor", "--no-mail"],
                       capture_output=True, text=True, timeout=60)
    lines = {l.split()[1]: l for l in p.stdout.splitlines() if len(l.split()) > 1}
    check(p.returncode != 0, "doctor exits non-zero on FAIL")
    for k in ("outlook.callback", "outlook.fallback-requester",
              "outlook.cancellation-reason"):
        check(lines.get(k, "").startswith("FAIL"), "%s: %s" % (k, lines.get(k)))
    check("callback_url" in lines["outlook.callback"], lines["outlook.callback"])


def sc_batch():
    """A resync of quiet rooms asks Graph once per 20 rooms ($batch), not
    once per room."""
    quiet(3)
    rc, out, err = tdhook("pull")
    check(rc == 0, "pull: %s" % err)
    rooms = json.loads(out)["rooms"]
    check(len(rooms) == 3 and all(r.get("batched") for r in rooms),
          "every quiet room settled by the batch: %s" % rooms)
    check(graph_stats()["by_path"].get("/v1.0/$batch", 0) >= 1, "a $batch")


def sc_notifications_off():
    """notifications: false (config reloaded with SIGHUP): the
    subscriptions go, and the timed resync alone books."""
    cfg = E["O_CONFIG"]
    text = open(cfg).read().replace("outlook: {callback_url:",
                                    "outlook: {notifications: false, callback_url:")
    open(cfg, "w").write(text)
    os.kill(int(E["O_PID"]), 1)
    wait(lambda: outlook_state()["subscriptions"] == [], "no subscription left",
         timeout=40)
    s, e = slot()
    ical = book("v101", SANNE, "Zonder abonnement", s, e)
    booked(ical, "the booking, by the resync", timeout=40)


SCENARIOS = [
    ("subscribed", sc_subscribed), ("doctor", sc_doctor), ("edge", sc_edge),
    ("create", sc_create),
    ("fallback", sc_fallback), ("move_time", sc_move_time),
    ("move_room", sc_move_room), ("cancel", sc_cancel),
    ("refused", sc_refused), ("td_cancel", sc_td_cancel),
    ("td_move", sc_td_move), ("faulty", sc_notifications_faulty),
    ("late", sc_late), ("refused_move", sc_refused_move),
    ("conflicting", sc_conflicting),
    ("lost", sc_notifications_lost), ("delta_gone", sc_delta_gone),
    ("lifecycle", sc_lifecycle), ("renew", sc_renew), ("silent", sc_silent),
    ("gap", sc_gap),
    ("topdesk_made", sc_topdesk_made), ("batch", sc_batch),
    ("decline", sc_decline), ("notifications_off", sc_notifications_off),
]


# What only one backend has: Graph's lifecycle events, renewals and
# $batch; EWS's heartbeats.
GRAPH_ONLY = {"lifecycle", "renew", "batch"}
EWS_ONLY = {"silent", "gap"}


def main():
    want = E.get("O_SCENARIOS", "").split()
    failed = 0
    for name, fn in SCENARIOS:
        if want and name not in want and name != "subscribed":
            continue
        if name in (EWS_ONLY if not EWS else GRAPH_ONLY):
            continue
        t0 = time.monotonic()
        try:
            fn()
            print("PASS %-14s %5.1f s  %s" % (name, time.monotonic() - t0,
                                              fn.__doc__.split("\n")[0]))
        except Failed as e:
            failed += 1
            print("FAIL %-14s %s" % (name, e))
        except Exception:
            failed += 1
            print("FAIL %-14s %s" % (name, traceback.format_exc()))
        sys.stdout.flush()
    if FIGURES:
        print("# figures: " + json.dumps(FIGURES))
    print("# %d of %d scenarios failed" % (failed, len(SCENARIOS)) if failed
          else "# all scenarios passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
