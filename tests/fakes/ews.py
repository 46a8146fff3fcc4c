#!/usr/bin/python3
"""Fake Exchange Web Services (Exchange 2013 SP1) for tdhook's tests.

Answers SOAP 1.1 requests on POST /EWS/Exchange.asmx the way Exchange 2013
SP1 does for what tdhook sends: CreateItem, FindItem (IsEqualTo on an
extended property, or a CalendarView), GetItem, GetFolder, UpdateItem and
DeleteItem, in per-mailbox calendars chosen by the ExchangeImpersonation
header.  Auth is Basic and/or a real NTLM handshake (NEGOTIATE, CHALLENGE,
AUTHENTICATE with the NTLMv2 proof verified); an NTLM-authenticated
connection stays authenticated (HTTP/1.1 keep-alive).  Python standard
library only.

And, for bookings people make in Outlook (ews_outlook.py): SyncFolderItems,
push Subscribe with SendNotification delivery and heartbeats, DeclineItem,
a room's processing, and the /__fake/outlook/... controls of the fake Graph.

Control endpoints (no auth):
  POST   /__fake/faults  {"rules": [{"op": "CreateItem", "server_busy_ms": 500,
                          "times": 1}, {"op": "UpdateItem", "stale": true},
                          {"http_status": 503}, {"op": "GetItem",
                          "response_code": "ErrorInternalServerError"}]}
  GET    /__fake/items   every item by mailbox, with its property
  POST   /__fake/items   {"mailbox", "subject", "start", "end", "property"?,
                          "body"?} seeds an appointment (e.g. a foreign one)
  DELETE /__fake/items/<mailbox>/<id>   removes one item (as a user would)
  POST   /__fake/reset   clears items, rules and stats
  GET    /__fake/stats   {"requests", "ntlm_handshakes", "basic_auths",
                          "auth_failures", "missing_anchor",
                          "missing_impersonation", "bad_version", "by_op"}

Run:  /usr/bin/python3 tests/fakes/ews.py --port 0 --port-file FILE
          [--user 'DOMAIN\\user'] [--password P] [--auth ntlm|basic|both]
          [--mailboxes a@x,b@x] [--verbose]
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import struct
import sys
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

# fakebase.py lies beside this file; no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakebase  # noqa: E402
import ews_outlook  # noqa: E402

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
NS_E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("s", NS_SOAP)
ET.register_namespace("t", NS_T)
ET.register_namespace("m", NS_M)
ET.register_namespace("e", NS_E)

EWS_PATH = "/EWS/Exchange.asmx"
PROPERTY_NAME = "TopdeskReservationId"
PS_PUBLIC_STRINGS = "00020329-0000-0000-C000-000000000046"
KNOWN_VERSIONS = {"Exchange2007", "Exchange2007_SP1", "Exchange2010",
                  "Exchange2010_SP1", "Exchange2010_SP2", "Exchange2013",
                  "Exchange2013_SP1"}


def t(name):
    return "{%s}%s" % (NS_T, name)


def m(name):
    return "{%s}%s" % (NS_M, name)


# --- MD4 (RFC 1320), for the NT hash when hashlib has no md4 -------------

def _md4_pure(data):
    def rol(x, n):
        x &= 0xFFFFFFFF
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    msg = bytearray(data)
    bitlen = (8 * len(data)) & 0xFFFFFFFFFFFFFFFF
    msg.append(0x80)
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", bitlen)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", bytes(msg[off:off + 64]))
        aa, bb, cc, dd = a, b, c, d

        def f(x_, y, z):
            return (x_ & y) | (~x_ & z)

        def g(x_, y, z):
            return (x_ & y) | (x_ & z) | (y & z)

        def h(x_, y, z):
            return x_ ^ y ^ z

        for i in (0, 4, 8, 12):
            a = rol(a + f(b, c, d) + x[i], 3)
            d = rol(d + f(a, b, c) + x[i + 1], 7)
            c = rol(c + f(d, a, b) + x[i + 2], 11)
            b = rol(b + f(c, d, a) + x[i + 3], 19)
        for i in (0, 1, 2, 3):
            a = rol(a + g(b, c, d) + x[i] + 0x5A827999, 3)
            d = rol(d + g(a, b, c) + x[i + 4] + 0x5A827999, 5)
            c = rol(c + g(d, a, b) + x[i + 8] + 0x5A827999, 9)
            b = rol(b + g(c, d, a) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):
            a = rol(a + h(b, c, d) + x[i] + 0x6ED9EBA1, 3)
            d = rol(d + h(a, b, c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = rol(c + h(d, a, b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = rol(b + h(c, d, a) + x[i + 12] + 0x6ED9EBA1, 15)
        a = (a + aa) & 0xFFFFFFFF
        b = (b + bb) & 0xFFFFFFFF
        c = (c + cc) & 0xFFFFFFFF
        d = (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)


def md4(data):
    try:
        return hashlib.new("md4", data).digest()
    except ValueError:
        return _md4_pure(data)


# --- NTLM ----------------------------------------------------------------

NTLMSSP = b"NTLMSSP\x00"
F_UNICODE = 0x00000001
F_OEM = 0x00000002
F_REQUEST_TARGET = 0x00000004
F_NTLM = 0x00000200
F_ALWAYS_SIGN = 0x00008000
F_TARGET_TYPE_DOMAIN = 0x00010000
F_EXTENDED_SESSION = 0x00080000
F_TARGET_INFO = 0x00800000
F_VERSION = 0x02000000
F_128 = 0x20000000
F_56 = 0x80000000


def ntlm_type(msg):
    if len(msg) < 12 or msg[:8] != NTLMSSP:
        return 0
    return struct.unpack("<I", msg[8:12])[0]


def ntlm_challenge(domain, server_challenge, client_flags):
    """A CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) with target info."""
    unicode_ = bool(client_flags & F_UNICODE) or not client_flags & F_OEM
    enc = "utf-16-le" if unicode_ else "ascii"
    target = domain.upper().encode(enc)

    def av(av_id, value):
        return struct.pack("<HH", av_id, len(value)) + value

    ts = int((datetime.datetime.now(datetime.timezone.utc).timestamp()
              + 11644473600) * 10000000)
    info = (av(2, domain.upper().encode("utf-16-le"))
            + av(1, b"E\x00X\x00C\x00H\x00")
            + av(4, (domain.lower() + ".example").encode("utf-16-le"))
            + av(3, ("exch." + domain.lower() + ".example").encode("utf-16-le"))
            + av(7, struct.pack("<Q", ts))
            + av(0, b""))
    flags = (F_REQUEST_TARGET | F_NTLM | F_ALWAYS_SIGN | F_TARGET_TYPE_DOMAIN
             | F_TARGET_INFO | F_VERSION
             | (F_UNICODE if unicode_ else F_OEM)
             | (client_flags & (F_EXTENDED_SESSION | F_128 | F_56)))
    header_len = 56
    target_off = header_len
    info_off = target_off + len(target)
    msg = (NTLMSSP + struct.pack("<I", 2)
           + struct.pack("<HHI", len(target), len(target), target_off)
           + struct.pack("<I", flags)
           + server_challenge
           + b"\x00" * 8
           + struct.pack("<HHI", len(info), len(info), info_off)
           + bytes([6, 1]) + struct.pack("<H", 7601) + b"\x00\x00\x00\x0f")
    assert len(msg) == header_len
    return msg + target + info


def _field(msg, off):
    ln, _maxln, where = struct.unpack("<HHI", msg[off:off + 8])
    if where + ln > len(msg):
        raise ValueError("field out of range")
    return msg[where:where + ln]


def ntlm_verify(msg, server_challenge, user, domain, password):
    """Checks an AUTHENTICATE_MESSAGE; returns (ok, why)."""
    if ntlm_type(msg) != 3 or len(msg) < 64:
        return False, "not an AUTHENTICATE_MESSAGE"
    try:
        nt_resp = _field(msg, 20)
        dom_b = _field(msg, 28)
        user_b = _field(msg, 36)
        flags = struct.unpack("<I", msg[60:64])[0]
    except (ValueError, struct.error) as exc:
        return False, "malformed: %s" % exc
    enc = "utf-16-le" if flags & F_UNICODE else "latin-1"
    try:
        got_user = user_b.decode(enc)
        got_dom = dom_b.decode(enc)
    except UnicodeDecodeError:
        return False, "undecodable names"
    if got_user.lower() != user.lower() or (domain and got_dom.lower() != domain.lower()):
        return False, "user %s\\%s is not %s\\%s" % (got_dom, got_user, domain, user)
    if len(nt_resp) <= 24:
        return False, "only NTLMv2 responses are accepted"
    nt_hash = md4(password.encode("utf-16-le"))
    owf = hmac.new(nt_hash, (got_user.upper() + got_dom).encode("utf-16-le"),
                   "md5").digest()
    proof, blob = nt_resp[:16], nt_resp[16:]
    want = hmac.new(owf, server_challenge + blob, "md5").digest()
    if not hmac.compare_digest(proof, want):
        return False, "wrong password (NTLMv2 proof mismatch)"
    return True, ""


# --- times and ids -------------------------------------------------------

def parse_time(s):
    if not s:
        raise ValueError("empty time")
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    dt = datetime.datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def fmt_time(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def folder_id(mailbox, folder):
    raw = ("%s:%s" % (folder, mailbox.lower())).encode()
    return "AQMkF" + base64.b64encode(raw).decode()


class Fault(Exception):
    """A SOAP fault (HTTP 500)."""

    def __init__(self, code, text, backoff_ms=None):
        super().__init__(text)
        self.code = code
        self.text = text
        self.backoff_ms = backoff_ms


class ItemError(Exception):
    """A ResponseClass="Error" message (HTTP 200)."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


# --- the server's state --------------------------------------------------

class State:
    def __init__(self, mailboxes):
        self.lock = threading.Lock()
        self.mailboxes = mailboxes
        self.outlook = None
        self.reset()

    def reset(self):
        self.items = {}     # mailbox -> {id: item}
        self.rules = []
        self.seq = 0
        self.stats = {"requests": 0, "ntlm_handshakes": 0, "basic_auths": 0,
                      "auth_failures": 0, "missing_anchor": 0,
                      "missing_impersonation": 0, "bad_version": 0,
                      "by_op": {}}
        if self.outlook is not None:
            self.outlook.reset_locked()

    def new_id(self):
        self.seq += 1
        raw = os.urandom(12) + struct.pack(">I", self.seq)
        return "AAMkA" + base64.b64encode(raw).decode()

    def new_ck(self):
        self.seq += 1
        return "DwAAABYAAA" + base64.b64encode(struct.pack(">IH", self.seq,
                                                            os.getpid() & 0xFFFF)).decode()

    def calendar(self, mailbox):
        return self.items.setdefault(mailbox.lower(), {})

    def add(self, mailbox, subject, start, end, prop=None, body="", location=""):
        item = {"id": self.new_id(), "change_key": self.new_ck(),
                "subject": subject or "", "body": body or "",
                "start": start, "end": end, "property": prop,
                "location": location or "", "folder": "calendar",
                "cancelled": False, "uid": ews_outlook.new_uid(),
                "organizer": {"name": mailbox.split("@")[0], "address": mailbox.lower()},
                "response": "Organizer", "modified": time.time()}
        self.calendar(mailbox)[item["id"]] = item
        return item

    def touch(self, mailbox, item, kind):
        """A change for SyncFolderItems and the push subscriptions."""
        if self.outlook is not None:
            self.outlook.touch(mailbox.lower(), item, kind)

    def take_rule(self, op, mailbox):
        for rule in self.rules:
            if rule.get("op") not in (None, op):
                continue
            if rule.get("mailbox") not in (None, mailbox):
                continue
            if rule.get("times", 1) <= 0:
                continue
            rule["times"] = rule.get("times", 1) - 1
            return rule
        return None


def item_json(mailbox, it):
    return {"mailbox": mailbox, "id": it["id"], "change_key": it["change_key"],
            "subject": it["subject"], "body": it["body"],
            "start": fmt_time(it["start"]), "end": fmt_time(it["end"]),
            "property": it["property"], "location": it["location"],
            "folder": it["folder"]}


# --- SOAP ----------------------------------------------------------------

def envelope():
    env = ET.Element("{%s}Envelope" % NS_SOAP)
    hdr = ET.SubElement(env, "{%s}Header" % NS_SOAP)
    ET.SubElement(hdr, t("ServerVersionInfo"), {
        "MajorVersion": "15", "MinorVersion": "0", "MajorBuildNumber": "847",
        "MinorBuildNumber": "32", "Version": "V2_8"})
    body = ET.SubElement(env, "{%s}Body" % NS_SOAP)
    return env, body


def serialize(env):
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(env, encoding="utf-8",
                                                                    xml_declaration=False)


def fault_xml(f):
    env, body = envelope()
    fl = ET.SubElement(body, "{%s}Fault" % NS_SOAP)
    code = ET.SubElement(fl, "faultcode")
    code.text = "a:" + f.code
    code.set("xmlns:a", NS_T)
    fs = ET.SubElement(fl, "faultstring")
    fs.text = f.text
    fs.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    detail = ET.SubElement(fl, "detail")
    ET.SubElement(detail, "{%s}ResponseCode" % NS_E).text = f.code
    ET.SubElement(detail, "{%s}Message" % NS_E).text = f.text
    if f.backoff_ms is not None:
        mx = ET.SubElement(detail, t("MessageXml"))
        ET.SubElement(mx, t("Value"), {"Name": "BackOffMilliseconds"}).text = str(f.backoff_ms)
    return serialize(env)


def response_message(op, body):
    resp = ET.SubElement(body, m(op + "Response"))
    msgs = ET.SubElement(resp, m("ResponseMessages"))
    return ET.SubElement(msgs, m(op + "ResponseMessage"))


def success(op):
    env, body = envelope()
    msg = response_message(op, body)
    msg.set("ResponseClass", "Success")
    ET.SubElement(msg, m("ResponseCode")).text = "NoError"
    return env, msg


def error_xml(op, err):
    env, body = envelope()
    msg = response_message(op, body)
    msg.set("ResponseClass", "Error")
    ET.SubElement(msg, m("MessageText")).text = err.text
    ET.SubElement(msg, m("ResponseCode")).text = err.code
    ET.SubElement(msg, m("DescriptiveLinkKey")).text = "0"
    return serialize(env)


def is_our_uri(el):
    return (el is not None and el.get("PropertyName") == PROPERTY_NAME
            and (el.get("DistinguishedPropertySetId") == "PublicStrings"
                 or (el.get("PropertySetId") or "").upper() == PS_PUBLIC_STRINGS)
            and el.get("PropertyType") == "String")


def requested(shape):
    """(field URIs, wants the property, body type) of an ItemShape."""
    if shape is None:
        raise ItemError("ErrorSchemaValidation", "ItemShape is missing.")
    base = shape.findtext(t("BaseShape"))
    fields, prop = set(), False
    if base in ("Default", "AllProperties"):
        fields |= {"item:Subject", "calendar:Start", "calendar:End", "calendar:Location"}
    extra = shape.find(t("AdditionalProperties"))
    if extra is not None:
        for el in extra:
            if el.tag == t("FieldURI"):
                fields.add(el.get("FieldURI"))
            elif el.tag == t("ExtendedFieldURI"):
                if is_our_uri(el):
                    prop = True
    return fields, prop, shape.findtext(t("BodyType")) or "Best"


def item_xml(parent, mailbox, it, fields, prop, id_only=False):
    ci = ET.SubElement(parent, t("CalendarItem"))
    ET.SubElement(ci, t("ItemId"), {"Id": it["id"], "ChangeKey": it["change_key"]})
    if id_only:
        return ci
    if "item:ParentFolderId" in fields:
        ET.SubElement(ci, t("ParentFolderId"), {"Id": folder_id(mailbox, it["folder"]),
                                                "ChangeKey": "AQAAAA=="})
    if "item:Subject" in fields:
        ET.SubElement(ci, t("Subject")).text = it["subject"]
    if "item:Body" in fields:
        ET.SubElement(ci, t("Body"), {"BodyType": "Text"}).text = it["body"]
    if prop and it["property"] is not None:
        ep = ET.SubElement(ci, t("ExtendedProperty"))
        ET.SubElement(ep, t("ExtendedFieldURI"), {
            "DistinguishedPropertySetId": "PublicStrings",
            "PropertyName": PROPERTY_NAME, "PropertyType": "String"})
        ET.SubElement(ep, t("Value")).text = it["property"]
    if "item:LastModifiedTime" in fields:
        ET.SubElement(ci, t("LastModifiedTime")).text = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(it.get("modified", time.time())))
    if "calendar:UID" in fields:
        ET.SubElement(ci, t("UID")).text = it.get("uid") or it["id"]
    if "calendar:Start" in fields:
        ET.SubElement(ci, t("Start")).text = fmt_time(it["start"])
    if "calendar:End" in fields:
        ET.SubElement(ci, t("End")).text = fmt_time(it["end"])
    if "calendar:Location" in fields:
        ET.SubElement(ci, t("Location")).text = it["location"]
    if "calendar:IsCancelled" in fields:
        ET.SubElement(ci, t("IsCancelled")).text = "true" if it["cancelled"] else "false"
    if "calendar:CalendarItemType" in fields:
        ET.SubElement(ci, t("CalendarItemType")).text = "Single"
    if "calendar:MyResponseType" in fields:
        ET.SubElement(ci, t("MyResponseType")).text = it.get("response", "Organizer")
    if "calendar:Organizer" in fields:
        org = it.get("organizer") or {"name": mailbox, "address": mailbox}
        mb = ET.SubElement(ET.SubElement(ci, t("Organizer")), t("Mailbox"))
        ET.SubElement(mb, t("Name")).text = org["name"]
        ET.SubElement(mb, t("EmailAddress")).text = org["address"]
        ET.SubElement(mb, t("RoutingType")).text = "SMTP"
    return ci


def need_attr(el, name):
    v = el.get(name)
    if v is None:
        raise Fault("ErrorSchemaValidation",
                    "The request failed schema validation: The required attribute '%s' "
                    "is missing." % name)
    return v


def folder_of(el):
    """The distinguished folder an element names (calendar only)."""
    if el is None:
        raise Fault("ErrorSchemaValidation", "A folder id is missing.")
    d = el.find(t("DistinguishedFolderId"))
    if d is None:
        raise ItemError("ErrorFolderNotFound", "The specified folder could not be found in "
                        "the store.")
    return d.get("Id")


class Ops:
    """The EWS operations on the state; each returns the answer's bytes."""

    def __init__(self, state):
        self.st = state

    def find_item(self, mailbox, ident):
        cal = self.st.calendar(mailbox)
        if not ident or not ident.startswith("AAMkA"):
            raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")
        it = cal.get(ident)
        if it is None:
            raise ItemError("ErrorItemNotFound",
                            "The specified object was not found in the store.")
        return it

    def CreateItem(self, mailbox, op):
        items = op.find(m("Items"))
        decline = items.find(t("DeclineItem")) if items is not None else None
        if decline is not None:
            return self.decline(mailbox, op, decline)
        need_attr(op, "SendMeetingInvitations")
        if folder_of(op.find(m("SavedItemFolderId"))) != "calendar":
            raise ItemError("ErrorInvalidOperation", "tdhook only writes calendars.")
        items = op.find(m("Items"))
        ci = items.find(t("CalendarItem")) if items is not None else None
        if ci is None:
            raise Fault("ErrorSchemaValidation", "CalendarItem is missing.")
        prop = None
        for ep in ci.findall(t("ExtendedProperty")):
            if is_our_uri(ep.find(t("ExtendedFieldURI"))):
                prop = ep.findtext(t("Value"))
        try:
            start = parse_time(ci.findtext(t("Start")))
            end = parse_time(ci.findtext(t("End")))
        except ValueError:
            raise Fault("ErrorSchemaValidation", "Start or End is not a dateTime.")
        if end < start:
            raise ItemError("ErrorCalendarEndDateIsEarlierThanStartDate",
                            "EndDate is earlier than StartDate")
        it = self.st.add(mailbox, ci.findtext(t("Subject")), start, end, prop,
                         ci.findtext(t("Body")), ci.findtext(t("Location")))
        self.st.touch(mailbox, it, "created")
        env, msg = success("CreateItem")
        item_xml(ET.SubElement(msg, m("Items")), mailbox, it, set(), False, id_only=True)
        return serialize(env)

    def decline(self, mailbox, op, decline):
        """The room declines a meeting (a t:DeclineItem response object)."""
        if need_attr(op, "MessageDisposition") not in ("SendOnly", "SendAndSaveCopy"):
            raise ItemError("ErrorInvalidOperation", "A response must be sent.")
        ref = decline.find(t("ReferenceItemId"))
        if ref is None:
            raise Fault("ErrorSchemaValidation", "ReferenceItemId is missing.")
        it = self.find_item(mailbox, ref.get("Id"))
        if it.get("response") == "Organizer":
            raise ItemError("ErrorInvalidOperation", "The organizer cannot decline.")
        it["response"] = "Decline"
        it["change_key"] = self.st.new_ck()
        self.st.outlook.declined.append({
            "mailbox": mailbox, "id": it["id"], "iCalUId": it.get("uid"),
            "comment": decline.findtext(t("Body")) or "", "sendResponse": True})
        self.st.touch(mailbox, it, "updated")
        env, msg = success("CreateItem")
        ET.SubElement(msg, m("Items"))
        return serialize(env)

    def SyncFolderItems(self, mailbox, op):
        fields, _prop, _bt = requested(op.find(m("ItemShape")))
        if folder_of(op.find(m("SyncFolderId"))) != "calendar":
            raise ItemError("ErrorInvalidOperation", "tdhook only reads calendars.")
        limit = int(op.findtext(m("MaxChangesReturned")) or 0)
        if not 1 <= limit <= 512:
            raise Fault("ErrorSchemaValidation", "MaxChangesReturned must be 1 to 512.")
        changes, state, last = self.st.outlook.sync(mailbox, op.findtext(m("SyncState")),
                                                    limit)
        if changes is None:
            raise ItemError("ErrorInvalidSyncStateData", "Synchronization state data is "
                            "corrupt or otherwise invalid.")
        env, msg = success("SyncFolderItems")
        ET.SubElement(msg, m("SyncState")).text = state
        ET.SubElement(msg, m("IncludesLastItemInRange")).text = "true" if last else "false"
        ch = ET.SubElement(msg, m("Changes"))
        for kind, iid, ck in changes:
            c = ET.SubElement(ch, t(kind))
            if kind == "Delete":
                ET.SubElement(c, t("ItemId"), {"Id": iid})
            else:
                ET.SubElement(ET.SubElement(c, t("CalendarItem")), t("ItemId"),
                              {"Id": iid, "ChangeKey": ck})
        return serialize(env)

    def Subscribe(self, mailbox, op):
        req = op.find(m("PushSubscriptionRequest"))
        if req is None:
            raise ItemError("ErrorInvalidSubscriptionRequest", "The fake serves push "
                            "subscriptions only.")
        if folder_of(req.find(t("FolderIds"))) != "calendar":
            raise ItemError("ErrorInvalidSubscriptionRequest", "tdhook subscribes calendars.")
        freq = int(req.findtext(t("StatusFrequency")) or 30)
        url = req.findtext(t("URL")) or ""
        if not 1 <= freq <= 1440 or not url.startswith(("http://", "https://")):
            raise ItemError("ErrorInvalidPushSubscriptionUrl", "Invalid URL or frequency.")
        sid = self.st.outlook.subscribe(mailbox, url, freq)
        env, msg = success("Subscribe")
        ET.SubElement(msg, m("SubscriptionId")).text = sid
        ET.SubElement(msg, m("Watermark")).text = "AQAAAA=="
        return serialize(env)

    def FindItem(self, mailbox, op):
        need_attr(op, "Traversal")
        fields, prop, _bt = requested(op.find(m("ItemShape")))
        if "item:Body" in fields:
            raise ItemError("ErrorInvalidPropertyRequest",
                            "The property Body is not valid for this operation.")
        if folder_of(op.find(m("ParentFolderIds"))) != "calendar":
            raise ItemError("ErrorInvalidOperation", "tdhook only reads calendars.")
        cview = op.find(m("CalendarView"))
        iview = op.find(m("IndexedPageItemView"))
        restr = op.find(m("Restriction"))
        cal = [it for it in self.st.calendar(mailbox).values() if it["folder"] == "calendar"]
        if cview is not None:
            if restr is not None:
                raise ItemError("ErrorInvalidRestriction", "Restrictions and sort order may "
                                "not be specified for a CalendarView.")
            try:
                vs = parse_time(need_attr(cview, "StartDate"))
                ve = parse_time(need_attr(cview, "EndDate"))
            except ValueError:
                raise Fault("ErrorSchemaValidation", "StartDate or EndDate is not a dateTime.")
            if ve < vs:
                raise ItemError("ErrorInvalidRequest", "EndDate is earlier than StartDate.")
            hits = [it for it in cal if it["start"] < ve and it["end"] > vs]
            limit = int(cview.get("MaxEntriesReturned") or 1000)
            offset = 0
        else:
            hits = cal
            if restr is not None:
                eq = restr.find(t("IsEqualTo"))
                if eq is None or not is_our_uri(eq.find(t("ExtendedFieldURI"))):
                    raise ItemError("ErrorUnsupportedPathForQuery",
                                    "The property path is not supported for a query.")
                const = eq.find(t("FieldURIOrConstant") + "/" + t("Constant"))
                value = const.get("Value") if const is not None else None
                hits = [it for it in cal if it["property"] is not None
                        and it["property"] == value]
            limit, offset = 1000, 0
            if iview is not None:
                limit = int(iview.get("MaxEntriesReturned") or 1000)
                offset = int(need_attr(iview, "Offset"))
        hits.sort(key=lambda it: (it["start"], it["id"]))
        page = hits[offset:offset + limit]
        env, msg = success("FindItem")
        root = ET.SubElement(msg, m("RootFolder"), {
            "TotalItemsInView": str(len(hits)),
            "IncludesLastItemInRange": "true" if offset + len(page) >= len(hits) else "false"})
        if cview is None:
            root.set("IndexedPagingOffset", str(offset + len(page)))
        items = ET.SubElement(root, t("Items"))
        for it in page:
            item_xml(items, mailbox, it, fields, prop)
        return serialize(env)

    def GetItem(self, mailbox, op):
        fields, prop, _bt = requested(op.find(m("ItemShape")))
        ids = op.find(m("ItemIds"))
        iids = ids.findall(t("ItemId")) if ids is not None else []
        if not iids:
            raise Fault("ErrorSchemaValidation", "ItemIds is missing.")
        if len(iids) == 1:
            it = self.find_item(mailbox, iids[0].get("Id"))
            env, msg = success("GetItem")
            item_xml(ET.SubElement(msg, m("Items")), mailbox, it, fields, prop)
            return serialize(env)
        # several: one message each, in order, an error for a missing one
        env, body = envelope()
        msgs = ET.SubElement(ET.SubElement(body, m("GetItemResponse")), m("ResponseMessages"))
        for iid in iids:
            msg = ET.SubElement(msgs, m("GetItemResponseMessage"))
            try:
                it = self.find_item(mailbox, iid.get("Id"))
            except ItemError as e:
                msg.set("ResponseClass", "Error")
                ET.SubElement(msg, m("MessageText")).text = e.text
                ET.SubElement(msg, m("ResponseCode")).text = e.code
                ET.SubElement(msg, m("DescriptiveLinkKey")).text = "0"
                ET.SubElement(msg, m("Items"))
                continue
            msg.set("ResponseClass", "Success")
            ET.SubElement(msg, m("ResponseCode")).text = "NoError"
            item_xml(ET.SubElement(msg, m("Items")), mailbox, it, fields, prop)
        return serialize(env)

    def GetFolder(self, mailbox, op):
        ids = op.find(m("FolderIds"))
        d = ids.find(t("DistinguishedFolderId")) if ids is not None else None
        if d is None or d.get("Id") not in ("calendar", "deleteditems"):
            raise ItemError("ErrorFolderNotFound",
                            "The specified folder could not be found in the store.")
        env, msg = success("GetFolder")
        folders = ET.SubElement(msg, m("Folders"))
        tag = "CalendarFolder" if d.get("Id") == "calendar" else "Folder"
        f = ET.SubElement(folders, t(tag))
        ET.SubElement(f, t("FolderId"), {"Id": folder_id(mailbox, d.get("Id")),
                                         "ChangeKey": "AQAAAA=="})
        return serialize(env)

    def UpdateItem(self, mailbox, op, stale=False):
        for a in ("ConflictResolution", "SendMeetingInvitationsOrCancellations"):
            need_attr(op, a)
        ch = op.find(m("ItemChanges") + "/" + t("ItemChange"))
        iid = ch.find(t("ItemId")) if ch is not None else None
        if iid is None:
            raise Fault("ErrorSchemaValidation", "ItemChange is missing.")
        it = self.find_item(mailbox, iid.get("Id"))
        ck = iid.get("ChangeKey")
        if not ck:
            raise ItemError("ErrorChangeKeyRequiredForWriteOperations",
                            "When making a write request, a change key is required.")
        if stale:
            it["change_key"] = self.st.new_ck()  # somebody else saved it meanwhile
        if ck != it["change_key"]:
            raise ItemError("ErrorIrresolvableConflict",
                            "The send or update operation could not be performed because "
                            "the change key passed in the request does not match the current "
                            "change key for the item.")
        new = dict(it)
        updates = ch.find(t("Updates"))
        for set_ in (list(updates) if updates is not None else []):
            if set_.tag != t("SetItemField"):
                continue
            uri = set_.find(t("FieldURI"))
            ci = set_.find(t("CalendarItem"))
            if ci is not None and is_our_uri(set_.find(t("ExtendedFieldURI"))):
                for ep in ci.findall(t("ExtendedProperty")):
                    if is_our_uri(ep.find(t("ExtendedFieldURI"))):
                        new["property"] = ep.findtext(t("Value"))
                continue
            if uri is None or ci is None:
                continue
            field = uri.get("FieldURI")
            try:
                if field == "item:Subject":
                    new["subject"] = ci.findtext(t("Subject")) or ""
                elif field == "item:Body":
                    new["body"] = ci.findtext(t("Body")) or ""
                elif field == "calendar:Start":
                    new["start"] = parse_time(ci.findtext(t("Start")))
                elif field == "calendar:End":
                    new["end"] = parse_time(ci.findtext(t("End")))
                elif field == "calendar:Location":
                    new["location"] = ci.findtext(t("Location")) or ""
            except ValueError:
                raise Fault("ErrorSchemaValidation", "Start or End is not a dateTime.")
        if new["end"] < new["start"]:
            raise ItemError("ErrorCalendarEndDateIsEarlierThanStartDate",
                            "EndDate is earlier than StartDate")
        new["change_key"] = self.st.new_ck()
        it.update(new)
        self.st.touch(mailbox, it, "updated")
        env, msg = success("UpdateItem")
        item_xml(ET.SubElement(msg, m("Items")), mailbox, it, set(), False, id_only=True)
        ET.SubElement(ET.SubElement(msg, m("ConflictResults")), t("Count")).text = "0"
        return serialize(env)

    def DeleteItem(self, mailbox, op):
        dtype = need_attr(op, "DeleteType")
        need_attr(op, "SendMeetingCancellations")
        ids = op.find(m("ItemIds"))
        iid = ids.find(t("ItemId")) if ids is not None else None
        if iid is None:
            raise Fault("ErrorSchemaValidation", "ItemIds is missing.")
        it = self.find_item(mailbox, iid.get("Id"))
        if dtype == "MoveToDeletedItems" and it["folder"] == "calendar":
            it["folder"] = "deleteditems"
            it["change_key"] = self.st.new_ck()
            self.st.touch(mailbox, it, "updated")
        else:
            del self.st.calendar(mailbox)[it["id"]]
            self.st.touch(mailbox, it, "deleted")
        env, _msg = success("DeleteItem")
        return serialize(env)


# --- HTTP ----------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/8.5"
    sys_version = ""

    def setup(self):
        super().setup()
        self.ntlm_challenge = None
        self.ntlm_authed = False

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("ews.py: %s\n" % (fmt % args))

    def send(self, status, body=b"", ctype="text/xml; charset=utf-8", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj).encode(), "application/json")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # control endpoints -------------------------------------------------
    def outlook_control(self, method, path, body):
        st = self.server.state
        ol = st.outlook
        what = path[len("/__fake/outlook/"):]
        try:
            obj = json.loads(body or b"{}") if method == "POST" else None
            if what == "state" and method == "GET":
                with st.lock:
                    return self.send_json(200, ol.state_json())
            if method != "POST" or not isinstance(obj, dict):
                raise ValueError("POST a JSON object")
            if what == "notify":
                with st.lock:
                    ol.delivery.set_locked(obj, ("silence",))
                return self.send_json(200, {"ok": True})
            if what == "flush":
                return self.send_json(200, {"delivered": ol.flush()})
            if what == "expire-delta":
                with st.lock:
                    mbx = str(obj.get("mailbox", "")).lower()
                    ol.gen[mbx] = ol.gen.get(mbx, 0) + 1
                return self.send_json(200, {"ok": True})
            if what == "book":
                return self.send_json(201, ol.book(obj, parse_time))
            if what in ("change", "cancel"):
                return self.send_json(200, ol.change_or_cancel(what, obj, parse_time))
        except ValueError as e:
            return self.send_json(400, {"error": str(e)})
        return self.send_json(404, {"error": "unknown control endpoint"})

    def control(self, method, body):
        st = self.server.state
        path = self.path.split("?", 1)[0]
        if path.startswith("/__fake/outlook/"):
            return self.outlook_control(method, path, body)
        with st.lock:
            if path == "/__fake/events" and method == "GET":
                return self.send_json(200, st.outlook.events_json(fmt_time))
            if path == "/__fake/reset" and method == "POST":
                st.reset()
                return self.send_json(200, {"ok": True})
            if path == "/__fake/stats" and method == "GET":
                return self.send_json(200, st.stats)
            if path == "/__fake/faults" and method == "POST":
                st.rules = [dict(r) for r in json.loads(body or b"{}").get("rules", [])]
                return self.send_json(200, {"rules": st.rules})
            if path == "/__fake/items" and method == "GET":
                out = {mb: [item_json(mb, it) for it in cal.values()]
                       for mb, cal in st.items.items()}
                return self.send_json(200, out)
            if path == "/__fake/items" and method == "POST":
                d = json.loads(body or b"{}")
                it = st.add(d["mailbox"], d.get("subject", ""), parse_time(d["start"]),
                            parse_time(d["end"]), d.get("property"), d.get("body", ""),
                            d.get("location", ""))
                st.touch(d["mailbox"], it, "created")
                return self.send_json(201, item_json(d["mailbox"].lower(), it))
            if path.startswith("/__fake/items/") and method == "DELETE":
                # The id is base64 and may hold '/': split at the first one.
                parts = path[len("/__fake/items/"):].split("/", 1)
                if len(parts) == 2:
                    cal = st.calendar(unquote(parts[0]))
                    gone = cal.pop(unquote(parts[1]), None)
                    if gone is not None:
                        st.touch(unquote(parts[0]), gone, "deleted")
                        return self.send(204)
                return self.send_json(404, {"error": "no such item"})
        return self.send_json(404, {"error": "unknown control endpoint"})

    def do_GET(self):
        if self.path.startswith("/__fake/"):
            return self.control("GET", b"")
        self.send(404, b"not found", "text/plain")

    def do_DELETE(self):
        if self.path.startswith("/__fake/"):
            return self.control("DELETE", self.read_body())
        self.send(404, b"not found", "text/plain")

    # auth ---------------------------------------------------------------
    def challenge_headers(self):
        mode = self.server.opts.auth
        h = []
        if mode in ("ntlm", "both"):
            h.append(("WWW-Authenticate", "NTLM"))
            h.append(("WWW-Authenticate", "Negotiate"))
        if mode in ("basic", "both"):
            h.append(("WWW-Authenticate", 'Basic realm="mail.example.com"'))
        return h

    def refuse(self):
        st = self.server.state
        with st.lock:
            st.stats["auth_failures"] += 1
        self.ntlm_authed = False
        self.send(401, b"401 - Unauthorized: Access is denied due to invalid credentials.",
                  "text/html", self.challenge_headers())

    def authenticate(self):
        """True when the request may proceed; otherwise it was answered."""
        opts, st = self.server.opts, self.server.state
        auth = self.headers.get("Authorization") or ""
        scheme, _, cred = auth.partition(" ")
        scheme = scheme.lower()
        if scheme in ("ntlm", "negotiate") and opts.auth in ("ntlm", "both"):
            try:
                msg = base64.b64decode(cred.strip(), validate=True)
            except ValueError:
                self.refuse()
                return False
            kind = ntlm_type(msg)
            if kind == 1:
                flags = struct.unpack("<I", msg[12:16])[0] if len(msg) >= 16 else 0
                self.ntlm_challenge = os.urandom(8)
                self.ntlm_authed = False
                ch = ntlm_challenge(opts.domain or "EXAMPLE", self.ntlm_challenge, flags)
                self.send(401, b"", headers=[("WWW-Authenticate",
                                              "NTLM " + base64.b64encode(ch).decode())])
                return False
            if kind == 3 and self.ntlm_challenge is not None:
                ok, why = ntlm_verify(msg, self.ntlm_challenge, opts.username, opts.domain,
                                      opts.password)
                self.ntlm_challenge = None
                if not ok:
                    self.log_message("NTLM refused: %s", why)
                    self.refuse()
                    return False
                self.ntlm_authed = True
                with st.lock:
                    st.stats["ntlm_handshakes"] += 1
                return True
            self.refuse()
            return False
        if scheme == "basic" and opts.auth in ("basic", "both"):
            try:
                raw = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                self.refuse()
                return False
            user, _, pw = raw.partition(":")
            if "\\" in user:
                dom, _, user = user.partition("\\")
            else:
                dom = opts.domain
            if (user.lower() == opts.username.lower() and (dom or "").lower() ==
                    (opts.domain or "").lower() and hmac.compare_digest(pw, opts.password)):
                with st.lock:
                    st.stats["basic_auths"] += 1
                return True
            self.refuse()
            return False
        if not auth and self.ntlm_authed:
            return True
        self.refuse()
        return False

    # EWS ----------------------------------------------------------------
    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/__fake/"):
            return self.control("POST", body)
        if self.path.split("?", 1)[0].lower() != EWS_PATH.lower():
            return self.send(404, b"not found", "text/plain")
        if not self.authenticate():
            return
        status, answer = self.soap(body)
        self.send(status, answer)

    def soap(self, body):
        st = self.server.state
        op_name = "?"
        try:
            try:
                env = ET.fromstring(body)
            except ET.ParseError:
                raise Fault("ErrorSchemaValidation", "The request is not well-formed XML.")
            if env.tag != "{%s}Envelope" % NS_SOAP:
                raise Fault("ErrorSchemaValidation", "The root element is not a SOAP 1.1 "
                            "Envelope.")
            sbody = env.find("{%s}Body" % NS_SOAP)
            if sbody is None or len(sbody) == 0:
                raise Fault("ErrorSchemaValidation", "The SOAP Body is empty.")
            op = sbody[0]
            op_name = op.tag.split("}", 1)[-1]
            hdr = env.find("{%s}Header" % NS_SOAP)
            ver = hdr.find(t("RequestServerVersion")) if hdr is not None else None
            mailbox = None
            if hdr is not None:
                mailbox = hdr.findtext(t("ExchangeImpersonation") + "/" + t("ConnectingSID")
                                       + "/" + t("SmtpAddress"))
            anchor = self.headers.get("X-AnchorMailbox")
            with st.lock:
                st.stats["requests"] += 1
                st.stats["by_op"][op_name] = st.stats["by_op"].get(op_name, 0) + 1
                if ver is None or ver.get("Version") not in KNOWN_VERSIONS:
                    st.stats["bad_version"] += 1
                if not mailbox:
                    st.stats["missing_impersonation"] += 1
                if not anchor or not mailbox or anchor.lower() != mailbox.lower():
                    st.stats["missing_anchor"] += 1
                if ver is not None and ver.get("Version") not in KNOWN_VERSIONS:
                    raise Fault("ErrorInvalidServerVersion", "The specified server version "
                                "is invalid.")
                if not mailbox:
                    raise Fault("ErrorImpersonateUserDenied", "The account does not have "
                                "permission to impersonate the requested user.")
                mailbox = mailbox.strip().lower()
                rule = st.take_rule(op_name, mailbox)
                stale = False
                if rule:
                    if rule.get("http_status"):
                        return rule["http_status"], (
                            "<html><body>HTTP %d</body></html>" % rule["http_status"]).encode()
                    if rule.get("server_busy_ms") is not None:
                        raise Fault("ErrorServerBusy", "The server cannot service this "
                                    "request right now. Try again later.",
                                    int(rule["server_busy_ms"]))
                    if rule.get("response_code"):
                        raise ItemError(rule["response_code"], "Injected by the fake.")
                    if rule.get("impersonation_denied"):
                        raise Fault("ErrorImpersonateUserDenied", "The account does not have "
                                    "permission to impersonate the requested user.")
                    stale = bool(rule.get("stale"))
                if st.mailboxes is not None and mailbox not in st.mailboxes:
                    raise ItemError("ErrorNonExistentMailbox", "The SMTP address has no "
                                    "mailbox associated with it.")
                ops = Ops(st)
                fn = getattr(ops, op_name, None) if op.tag.startswith("{%s}" % NS_M) else None
                if fn is None:
                    raise Fault("ErrorInvalidRequest", "The fake does not serve %s." % op_name)
                if op_name == "UpdateItem":
                    return 200, fn(mailbox, op, stale=stale)
                return 200, fn(mailbox, op)
        except Fault as f:
            return 500, fault_xml(f)
        except ItemError as e:
            return 200, error_xml(op_name, e)
        except (ValueError, TypeError, KeyError) as exc:
            return 500, fault_xml(Fault("ErrorSchemaValidation", "Bad request: %s" % exc))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--user", default="CONTOSO\\tdhook")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--auth", choices=("ntlm", "basic", "both"), default="both")
    ap.add_argument("--mailboxes", help="comma-separated; others are ErrorNonExistentMailbox")
    ap.add_argument("--minute-seconds", type=float, default=60.0,
                    help="how long one minute of a StatusFrequency lasts (tests: shorter)")
    ap.add_argument("--room-processing-ms", type=int, default=300,
                    help="how long a room takes to accept a booking")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()
    if "\\" in opts.user:
        opts.domain, _, opts.username = opts.user.partition("\\")
    else:
        opts.domain, opts.username = "", opts.user
    mailboxes = None
    if opts.mailboxes:
        mailboxes = {x.strip().lower() for x in opts.mailboxes.split(",") if x.strip()}

    srv = fakebase.Server((opts.host, opts.port), Handler)
    srv.opts = opts
    srv.state = State(mailboxes)
    srv.state.outlook = ews_outlook.Outlook(srv.state, opts.minute_seconds,
                                            opts.room_processing_ms)
    return fakebase.serve(srv, opts.port_file,
                          "ews.py: listening on %s:%%d" % opts.host if opts.verbose else None)

if __name__ == "__main__":
    sys.exit(main())
