"""The Outlook side of the fake Graph: what tdhook needs to turn bookings
people make in Outlook into TOPdesk reservations.  Imported by graph.py.

With the shapes of /work/shared/specs/graph/graph-notifications-v1.0.json
and the webhook rules of the Graph docs (validation round, 3 s answers,
clientState, lifecycle events):

  POST|GET           /v1.0/subscriptions
  GET|PATCH|DELETE   /v1.0/subscriptions/{id}
  POST               /v1.0/subscriptions/{id}/reauthorize        -> 204
  GET                /v1.0/users/{mbx}/calendarView/delta        paging,
                     @removed, deltaLink; 410 SyncStateNotFound after
                     /__fake/outlook/expire-delta
  POST               /v1.0/users/{mbx}/events/{id}/decline       -> 202

A subscription is validated as Graph does it: the fake POSTs
?validationToken=... to the notification and lifecycle URLs (through
nginx, in the tests) and wants the token back within 10 s.  Every change
of an event in a subscribed mailbox is then delivered as a change
notification, from a thread of its own, with faults on demand (drop,
duplicate, delay, reorder, hold).

Control endpoints (no auth), for the tests:

  POST /__fake/outlook/book      {room, organizer:{name,address}, subject,
                                  start, end, ical?, rewrite?: true}
       a person books a room in Outlook: the room's copy appears
       (tentative), then, after --room-processing-ms, the room accepts and
       (rewrite) replaces the subject with the organizer's name
  POST /__fake/outlook/change    {room, ical, start?, end?, subject?}
  POST /__fake/outlook/cancel    {room, ical, delete?: false}
       a cancellation: the room's copy kept with isCancelled (Exchange
       Online's default), or deleted
  POST /__fake/outlook/notify    {drop?, duplicate?, delay_ms?, reorder?,
                                  hold?}    delivery faults
  POST /__fake/outlook/flush     deliver what is held (reversed: reorder)
  POST /__fake/outlook/lifecycle {subscriptionId, event}
  POST /__fake/outlook/expire-delta {mailbox}
  GET  /__fake/outlook/state     subscriptions, declines, deliveries
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
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakebase  # noqa: E402

MAX_SUB_MINUTES = 10080
DELTA_PAGE = 10


def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(tok):
    try:
        pad = "=" * (-len(tok) % 4)
        return json.loads(base64.urlsafe_b64decode(tok + pad))
    except (ValueError, TypeError):
        return None


def stamp(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def parse_utc(s):
    s = s.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(s[:26] + s[-6:] if "." in s and "+" in s[19:]
                                else s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


class Outlook:
    """The fake's subscriptions, change log and notification delivery."""

    def __init__(self, state, args):
        self.state = state
        self.max_minutes = args.max_sub_minutes
        self.processing = args.room_processing_ms / 1000.0
        self.outbox = queue.Queue()
        self.delivery = fakebase.Delivery(state.lock)
        self.reset_locked()
        threading.Thread(target=self.deliver_loop, daemon=True).start()

    def reset_locked(self):
        self.subs = OrderedDict()
        self.seq = 0
        self.tombs = {}        # mailbox -> {id: seq}
        self.gen = {}          # mailbox -> delta generation
        self.declined = []
        self.delivery.reset_locked()
        self.delivered = []    # (status, ms) of each delivery
        self.validations = 0

    # -- the change log (caller holds state.lock) ----------------------------

    def touch(self, mailbox, ev, change):
        self.seq += 1
        if change == "deleted":
            self.tombs.setdefault(mailbox, {})[ev["id"]] = self.seq
        else:
            ev["seq"] = self.seq
        for sub in self.subs.values():
            if sub["mailbox"] == mailbox and change in sub["changeType"]:
                self.outbox.put((sub["id"], change, mailbox, ev["id"],
                                 ev["changeKey"]))

    # -- delivery ---------------------------------------------------------------

    def deliver_loop(self):
        while True:
            item = self.outbox.get()
            with self.state.lock:
                if self.subs.get(item[0]) is None:
                    continue
            self.delivery.pass_on(item, self.post_change)

    def notification(self, item):
        sub_id, change, mailbox, ev_id, ck = item
        sub = self.subs[sub_id]
        return {
            "subscriptionId": sub_id,
            "subscriptionExpirationDateTime": stamp(sub["expiration"]),
            "changeType": change,
            "resource": "Users/%s/Events/%s" % (sub["userId"], ev_id),
            "clientState": sub["clientState"],
            "tenantId": sub["tenantId"],
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": "Users/%s/Events/%s" % (sub["userId"], ev_id),
                "@odata.etag": 'W/"%s"' % ck,
                "id": ev_id,
            },
        }

    def post_change(self, item):
        with self.state.lock:
            sub = self.subs.get(item[0])
            if sub is None:
                return
            url = sub["notificationUrl"]
            body = {"value": [self.notification(item)]}
        self.post(url, body)

    def post(self, url, body):
        t0 = time.monotonic()
        req = urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except (OSError, ValueError):
            status = 0
        with self.state.lock:
            self.delivered.append((status, (time.monotonic() - t0) * 1000))
        return status

    def flush(self):
        return self.delivery.flush(self.post_change)

    # -- subscriptions -----------------------------------------------------------

    def validate_url(self, url):
        """Graph's validation round: the URL must echo the token."""
        token = "Validation: Testing client application reachability for " \
                "subscription Request-Id: %s" % uuid.uuid4()
        sep = "&" if "?" in url else "?"
        req = urllib.request.Request(
            url + sep + "validationToken=" + quote(token, safe=""),
            data=b"", method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8"})
        with self.state.lock:
            self.validations += 1
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                got = r.read().decode("utf-8", "replace")
                ctype = r.headers.get("Content-Type", "")
                return r.status == 200 and got == token and \
                    ctype.startswith("text/plain")
        except (OSError, ValueError):
            return False

    def render_sub(self, sub):
        return OrderedDict([
            ("@odata.context",
             "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity"),
            ("id", sub["id"]), ("resource", sub["resource"]),
            ("applicationId", sub["applicationId"]),
            ("changeType", ",".join(sub["changeType"])),
            ("clientState", sub["clientState"]),
            ("notificationUrl", sub["notificationUrl"]),
            ("notificationQueryOptions", None),
            ("lifecycleNotificationUrl", sub["lifecycleNotificationUrl"]),
            ("expirationDateTime", stamp(sub["expiration"])),
            ("creatorId", sub["applicationId"]),
            ("includeResourceData", False),
            ("latestSupportedTlsVersion", "v1_2"),
            ("encryptionCertificate", None),
            ("encryptionCertificateId", None),
            ("notificationUrlAppId", None),
        ])

    def check_expiry(self, value, err):
        if not isinstance(value, str):
            raise err(400, "InvalidRequest",
                      "expirationDateTime is required.")
        try:
            when = parse_utc(value)
        except ValueError:
            raise err(400, "InvalidRequest",
                      "expirationDateTime is not a valid date.")
        now = datetime.now(timezone.utc)
        if when <= now:
            raise err(400, "InvalidRequest",
                      "Subscription expiration must be in the future.")
        if when > now + timedelta(minutes=self.max_minutes, seconds=60):
            raise err(400, "InvalidRequest",
                      "Subscription expiration can only be %d minutes in "
                      "the future." % self.max_minutes)
        return when

    def create(self, obj, err, known_mailbox):
        if not isinstance(obj, dict):
            raise err(400, "InvalidRequest", "A subscription object is "
                      "required.")
        ct = obj.get("changeType")
        kinds = [c.strip() for c in ct.split(",")] if isinstance(ct, str) \
            else []
        if not kinds or any(k not in ("created", "updated", "deleted")
                            for k in kinds):
            raise err(400, "InvalidRequest", "changeType must be created, "
                      "updated and/or deleted.")
        urls = {}
        for k in ("notificationUrl", "lifecycleNotificationUrl"):
            u = obj.get(k)
            if u is None and k == "lifecycleNotificationUrl":
                continue
            parts = urlsplit(u) if isinstance(u, str) else None
            local = parts is not None and parts.hostname in ("127.0.0.1",
                                                             "localhost")
            if parts is None or not (parts.scheme == "https" or
                                     (local and parts.scheme == "http")):
                raise err(400, "InvalidRequest", "%s must be an https URL." % k)
            urls[k] = u
        res = obj.get("resource")
        segs = res.strip("/").split("/") if isinstance(res, str) else []
        if len(segs) != 3 or segs[0].lower() != "users" or \
                segs[2].lower() != "events":
            raise err(400, "InvalidRequest", "resource must be "
                      "users/{id}/events for this fake.")
        mailbox = segs[1].lower()
        if not known_mailbox(mailbox):
            raise err(404, "ResourceNotFound", "The user '%s' is invalid."
                      % segs[1])
        cs = obj.get("clientState")
        if cs is not None and (not isinstance(cs, str) or len(cs) > 128):
            raise err(400, "InvalidRequest", "clientState must be a string "
                      "of at most 128 characters.")
        when = self.check_expiry(obj.get("expirationDateTime"), err)
        for u in urls.values():
            if not self.validate_url(u):
                raise err(400, "InvalidRequest", "Subscription validation "
                          "request failed. Notification endpoint must "
                          "respond with 200 OK to validation request.")
        sub = {"id": str(uuid.uuid4()), "resource": res, "mailbox": mailbox,
               "userId": str(uuid.uuid5(uuid.NAMESPACE_DNS, mailbox)),
               "changeType": kinds, "clientState": cs,
               "notificationUrl": urls["notificationUrl"],
               "lifecycleNotificationUrl":
                   urls.get("lifecycleNotificationUrl"),
               "expiration": when,
               "applicationId": self.state.client_id,
               "tenantId": str(uuid.uuid5(uuid.NAMESPACE_DNS,
                                          self.state.tenant))}
        with self.state.lock:
            self.subs[sub["id"]] = sub
        return sub

    def lifecycle(self, sub_id, event):
        with self.state.lock:
            sub = self.subs.get(sub_id)
            if sub is None:
                return None
            url = sub["lifecycleNotificationUrl"] or sub["notificationUrl"]
            body = {"value": [{
                "subscriptionId": sub_id,
                "subscriptionExpirationDateTime": stamp(sub["expiration"]),
                "tenantId": sub["tenantId"],
                "clientState": sub["clientState"],
                "lifecycleEvent": event}]}
            if event == "subscriptionRemoved":
                del self.subs[sub_id]
        return self.post(url, body)

    # -- delta ---------------------------------------------------------------------

    def delta_page(self, mailbox, window, since, upto, offset, page_size):
        """-> (entries, more).  Caller holds state.lock."""
        box = self.state.boxes.get(mailbox, {})
        s, e = window
        items = []
        for ev in box.values():
            seq = ev.get("seq", 0)
            if seq <= since or seq > upto:
                continue
            inside = ev["start"] < e and ev["end"] > s
            if inside:
                items.append((seq, "ev", ev))
            elif since > 0:
                items.append((seq, "rm", ev["id"]))
        if since > 0:
            for ev_id, seq in self.tombs.get(mailbox, {}).items():
                if since < seq <= upto:
                    items.append((seq, "rm", ev_id))
        items.sort(key=lambda x: x[0])
        return items[offset:offset + page_size], \
            len(items) > offset + page_size


def to_dt(s):
    return datetime.fromtimestamp(int(s), timezone.utc)
