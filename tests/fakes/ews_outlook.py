"""The Outlook side of the fake EWS: what tdhook needs to turn bookings
people make in Outlook into TOPdesk reservations on Exchange 2013 SP1.
Imported by ews.py.

  SyncFolderItems   the calendar's changes since a SyncState (Create,
                    Update, Delete), MaxChangesReturned pages; an expired
                    state answers ErrorInvalidSyncStateData
  Subscribe         push subscriptions: every change of the mailbox's
                    calendar is POSTed as a SendNotification to the URL,
                    with StatusEvent heartbeats every StatusFrequency
                    (one "minute" lasts --minute-seconds); an answer of
                    Unsubscribe ends the subscription
  CreateItem with a DeclineItem: the room declines a meeting

Control endpoints (no auth), the same as the fake Graph's so one scenario
table drives both:

  POST /__fake/outlook/book|change|cancel   what people do in Outlook
  POST /__fake/outlook/notify {drop, duplicate, delay_ms, reorder, hold,
                               silence}   delivery faults (silence: no
                               push and no heartbeat at all)
  POST /__fake/outlook/flush
  POST /__fake/outlook/expire-delta {mailbox}
  GET  /__fake/outlook/state
  GET  /__fake/events    every item, in the fake Graph's event shape
"""

import base64
import json
import os
import sys
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakebase  # noqa: E402

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
PROP_ID = ("String {00020329-0000-0000-C000-000000000046} Name "
           "TopdeskReservationId")


def t(name):
    return "{%s}%s" % (NS_T, name)


def m(name):
    return "{%s}%s" % (NS_M, name)


def new_uid():
    return "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper()


class Outlook:
    """Change log, push subscriptions and their delivery."""

    def __init__(self, st, minute_seconds, processing_ms):
        self.st = st
        self.minute = minute_seconds
        self.processing = processing_ms / 1000.0
        self.outbox = queue.Queue()
        self.delivery = fakebase.Delivery(st.lock)
        self.reset_locked()
        threading.Thread(target=self.deliver_loop, daemon=True).start()
        threading.Thread(target=self.heartbeat_loop, daemon=True).start()

    def reset_locked(self):
        self.change = 0
        self.tombs = {}          # mailbox -> {id: change}
        self.gen = {}            # mailbox -> SyncState generation
        self.subs = {}           # id -> {id, mailbox, url, freq, watermark, last}
        self.declined = []
        self.delivery.reset_locked()
        self.delivered = []

    # -- the change log (caller holds st.lock) --------------------------------

    def touch(self, mailbox, it, kind):
        self.change += 1
        if kind == "deleted":
            self.tombs.setdefault(mailbox, {})[it["id"]] = self.change
        else:
            it["seq"] = self.change
            it["modified"] = time.time()
            if kind == "created":
                it["created_seq"] = self.change
        event = {"created": "CreatedEvent", "updated": "ModifiedEvent",
                 "deleted": "DeletedEvent"}[kind]
        for sub in self.subs.values():
            if sub["mailbox"] == mailbox:
                # the watermark moves on whether or not the push arrives
                sub["watermark"] += 1
                self.outbox.put((sub["id"], event, it["id"], it.get("change_key", ""),
                                 sub["watermark"]))

    def sync(self, mailbox, state, limit):
        """-> (changes [(kind, id, ck)], new state, last?).  Lock held."""
        gen = self.gen.get(mailbox, 0)
        since = 0
        if state:
            try:
                d = json.loads(base64.b64decode(state))
            except (ValueError, TypeError):
                d = None
            if not isinstance(d, dict) or d.get("m") != mailbox or d.get("g") != gen:
                return None, None, None
            since = d["q"]
        cal = self.st.calendar(mailbox)
        items = []
        for it in cal.values():
            seq = it.get("seq", 0)
            if seq <= since:
                continue
            if it["folder"] != "calendar":
                if since:
                    items.append((seq, "Delete", it["id"], None))
                continue
            new = not since or it.get("created_seq", 0) > since
            items.append((seq, "Create" if new else "Update", it["id"], it["change_key"]))
        if since:
            for iid, seq in self.tombs.get(mailbox, {}).items():
                if seq > since:
                    items.append((seq, "Delete", iid, None))
        items.sort()
        page = items[:limit]
        last = len(items) <= limit
        upto = page[-1][0] if page and not last else self.change
        tok = base64.b64encode(json.dumps(
            {"m": mailbox, "g": gen, "q": upto}).encode()).decode()
        return [(k, i, ck) for _, k, i, ck in page], tok, last

    # -- push -----------------------------------------------------------------

    def subscribe(self, mailbox, url, freq):
        sid = base64.b64encode(uuid.uuid4().bytes + b"push").decode()
        self.subs[sid] = {"id": sid, "mailbox": mailbox, "url": url, "freq": freq,
                          "watermark": 0, "last": time.monotonic()}
        return sid

    def envelope(self, sub, events):
        """SendNotification of events [(tag, item id, change key, watermark)]."""
        env = ET.Element("{%s}Envelope" % NS_SOAP)
        body = ET.SubElement(env, "{%s}Body" % NS_SOAP)
        sn = ET.SubElement(body, m("SendNotification"))
        msg = ET.SubElement(ET.SubElement(sn, m("ResponseMessages")),
                            m("SendNotificationResponseMessage"), {"ResponseClass": "Success"})
        ET.SubElement(msg, m("ResponseCode")).text = "NoError"
        n = ET.SubElement(msg, m("Notification"))
        ET.SubElement(n, t("SubscriptionId")).text = sub["id"]
        ET.SubElement(n, t("PreviousWatermark")).text = base64.b64encode(
            b"wm%d" % (events[0][3] - 1)).decode()
        ET.SubElement(n, t("MoreEvents")).text = "false"
        for tag, iid, ck, wm in events:
            ev = ET.SubElement(n, t(tag))
            ET.SubElement(ev, t("Watermark")).text = base64.b64encode(b"wm%d" % wm).decode()
            if tag != "StatusEvent":
                ET.SubElement(ev, t("TimeStamp")).text = time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                ET.SubElement(ev, t("ItemId"), {"Id": iid, "ChangeKey": ck or "AA=="})
                ET.SubElement(ev, t("ParentFolderId"), {"Id": "AQMkFcalendar",
                                                         "ChangeKey": "AQAAAA=="})
        return (b'<?xml version="1.0" encoding="utf-8"?>' +
                ET.tostring(env, encoding="utf-8", xml_declaration=False))

    def post(self, sid, events):
        with self.st.lock:
            sub = self.subs.get(sid)
            if sub is None or self.delivery.modes.get("silence"):
                return None
            url, data = sub["url"], self.envelope(sub, events)
        t0 = time.monotonic()
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": NS_M + "/SendNotification"})
        answer = b""
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, answer = r.status, r.read()
        except urllib.error.HTTPError as e:
            status = e.code
        except (OSError, ValueError):
            status = 0
        with self.st.lock:
            self.delivered.append((status, (time.monotonic() - t0) * 1000))
            if status == 200 and b">Unsubscribe<" in answer:
                self.subs.pop(sid, None)     # the subscriber ended it
            elif sid in self.subs and status == 200:
                self.subs[sid]["last"] = time.monotonic()
        return status

    def deliver_loop(self):
        while True:
            self.delivery.pass_on(self.outbox.get(), self.post_one)

    def post_one(self, item):
        self.post(item[0], [item[1:]])

    def heartbeat_loop(self):
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            due = []
            with self.st.lock:
                for sub in self.subs.values():
                    if now - sub["last"] >= sub["freq"] * self.minute:
                        sub["last"] = now
                        sub["watermark"] += 1
                        due.append((sub["id"], sub["watermark"]))
            for sid, wm in due:
                self.post(sid, [("StatusEvent", None, None, wm)])

    def flush(self):
        return self.delivery.flush(self.post_one)

    # -- what people do in Outlook ---------------------------------------------

    def copy(self, room, uid):
        for it in self.st.calendar(room).values():
            if it.get("uid") == uid and it["folder"] == "calendar":
                return it
        raise ValueError("no copy of %s in %s" % (uid, room))

    def book(self, obj, parse_time):
        room = str(obj.get("room", "")).lower()
        org = obj.get("organizer") or {}
        if "@" not in room or "address" not in org:
            raise ValueError("expected {room, organizer:{name,address}, subject, start, end}")
        with self.st.lock:
            it = self.st.add(room, obj.get("subject", ""), parse_time(obj["start"] + "Z"),
                             parse_time(obj["end"] + "Z"), None, "", room.split("@")[0])
            it["uid"] = obj.get("ical") or new_uid()
            it["organizer"] = {"name": org.get("name") or org["address"],
                               "address": org["address"]}
            it["response"] = "Tentative"
            self.touch(room, it, "created")
            uid, iid = it["uid"], it["id"]
        rewrite = obj.get("rewrite", True)

        def process():
            time.sleep(self.processing)
            with self.st.lock:
                cur = self.st.calendar(room).get(iid)
                if cur is None:
                    return
                cur["response"] = "Accept"
                if rewrite:
                    cur["subject"] = org.get("name") or org["address"]
                cur["change_key"] = self.st.new_ck()
                self.touch(room, cur, "updated")
        threading.Thread(target=process, daemon=True).start()
        return {"id": iid, "iCalUId": uid, "room": room}

    def change_or_cancel(self, what, obj, parse_time):
        room = str(obj.get("room", "")).lower()
        with self.st.lock:
            it = self.copy(room, obj.get("ical"))
            if what == "cancel" and obj.get("delete"):
                del self.st.calendar(room)[it["id"]]
                self.touch(room, it, "deleted")
                return {"deleted": it["id"]}
            if what == "cancel":
                it["cancelled"] = True
                it["subject"] = "Canceled: " + it["subject"]
            else:
                for k in ("start", "end"):
                    if k in obj:
                        it[k] = parse_time(obj[k] + "Z")
                if "subject" in obj:
                    it["subject"] = obj["subject"]
            it["change_key"] = self.st.new_ck()
            self.touch(room, it, "updated")
            return {"changed": it["id"]}

    def events_json(self, fmt_time):
        """Every calendar item in the fake Graph's event shape."""
        out = {}
        for mb, cal in self.st.items.items():
            out[mb] = [{
                "id": it["id"], "iCalUId": it.get("uid") or it["id"],
                "subject": it["subject"], "start": fmt_time(it["start"]),
                "end": fmt_time(it["end"]), "isCancelled": it["cancelled"],
                "singleValueExtendedProperties": (
                    [{"id": PROP_ID, "value": it["property"]}]
                    if it["property"] is not None else [])}
                for it in cal.values() if it["folder"] == "calendar"]
        return out

    def state_json(self):
        return {"subscriptions": [
            {"id": s["id"], "mailbox": s["mailbox"], "notificationUrl": s["url"],
             "statusFrequency": s["freq"]} for s in self.subs.values()],
            "declined": list(self.declined), "held": len(self.delivery.held),
            "queued": self.outbox.qsize(),
            "deliveries": [{"status": st, "ms": round(ms, 2)}
                           for st, ms in self.delivered]}
