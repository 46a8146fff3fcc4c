#!/usr/bin/python3
"""Fake Microsoft Graph (token endpoint + room calendars) for tdhook's tests.

Serves, on 127.0.0.1, the parts of Microsoft Graph v1.0 that tdhook uses to
keep room calendars in step with TOPdesk reservations, with the shapes of the
OpenAPI fragment in /work/shared/specs/graph/graph-calendar-v1.0.json:

  POST /{tenant}/oauth2/v2.0/token                  client credentials
  POST|GET              /v1.0/users/{mbx}/events     create, $filter lookup
  GET|PATCH|DELETE      /v1.0/users/{mbx}/events/{id}
  POST                  /v1.0/users/{mbx}/events/{id}/cancel
  GET                   /v1.0/users/{mbx}/calendarView

and, for bookings people make in Outlook (graph_outlook.py): subscriptions
with change and lifecycle notifications, calendarView/delta, decline;
plus control endpoints under /__fake/ (faults, token expiry, seeding,
inspection, stats).  Events live in memory, per lower-cased mailbox.
Python standard library only.

Run:  /usr/bin/python3 tests/fakes/graph.py --port 0 --port-file FILE
"""

import argparse
import base64
import html
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, \
    urlsplit

# faults.py lies beside this file; no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import faults  # noqa: E402
import fakebase  # noqa: E402
import graph_outlook  # noqa: E402

try:
    import zoneinfo
except ImportError:          # Python < 3.9: UTC only
    zoneinfo = None

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CT_GRAPH = ("application/json;odata.metadata=minimal;odata.streaming=true;"
            "IEEE754Compatible=false;charset=utf-8")
CT_AAD = "application/json; charset=utf-8"
CT_JSON = "application/json"
GRAPH_ORIGIN = "https://graph.microsoft.com/v1.0"
DEFAULT_TOP = 10
MAX_TOP = 1000
MIN_DATE = "0001-01-01T00:00:00Z"

TOKEN_PATH_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/token/?$")

STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    412: "Precondition Failed", 413: "Payload Too Large",
    415: "Unsupported Media Type", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

# The Graph error code an injected fault answers with when the rule names none.
FAULT_CODES = {
    400: "BadRequest", 401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied", 404: "ErrorItemNotFound",
    409: "ErrorIrresolvableConflict", 412: "ErrorIrresolvableConflict",
    429: "TooManyRequests", 500: "InternalServerError",
    502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
}
FAULT_MESSAGES = {
    429: "Please retry again later.",
    503: "The service is currently unavailable.",
    504: "The request timed out.",
}

# Every property of microsoft.graph.event (with outlookItem and entity).
EVENT_PROPS = {
    "id", "categories", "changeKey", "createdDateTime", "lastModifiedDateTime",
    "allowNewTimeProposals", "attendees", "body", "bodyPreview", "end",
    "hasAttachments", "hideAttendees", "iCalUId", "importance", "isAllDay",
    "isCancelled", "isDraft", "isOnlineMeeting", "isOrganizer",
    "isReminderOn", "location", "locations", "onlineMeeting",
    "onlineMeetingProvider", "onlineMeetingUrl", "organizer",
    "originalEndTimeZone", "originalStart", "originalStartTimeZone",
    "recurrence", "reminderMinutesBeforeStart", "responseRequested",
    "responseStatus", "sensitivity", "seriesMasterId", "showAs", "start",
    "subject", "transactionId", "type", "webLink", "attachments", "calendar",
    "extensions", "instances", "multiValueExtendedProperties",
    "singleValueExtendedProperties",
}
# Server-set properties: accepted in a request body and ignored, as Graph
# does for most of them.
READ_ONLY_PROPS = {
    "id", "changeKey", "createdDateTime", "lastModifiedDateTime",
    "bodyPreview", "hasAttachments", "iCalUId", "isCancelled", "isDraft",
    "isOrganizer", "originalEndTimeZone", "originalStart",
    "originalStartTimeZone", "responseStatus", "seriesMasterId", "type",
    "webLink", "onlineMeeting", "onlineMeetingUrl",
}
# Properties kept as given (after a type check) and echoed back.
ENUMS = {
    "showAs": ("unknown", "free", "tentative", "busy", "oof",
               "workingElsewhere"),
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "onlineMeetingProvider": ("unknown", "teamsForBusiness", "skypeForBusiness",
                              "skypeForConsumer"),
}
BOOL_PROPS = ("allowNewTimeProposals", "hideAttendees", "isAllDay",
              "isOnlineMeeting", "isReminderOn", "responseRequested")
UNSUPPORTED_NAV = ("attachments", "calendar", "extensions", "instances",
                   "multiValueExtendedProperties")

EXT_PROP_TYPES = {t.lower(): t for t in (
    "Binary", "BinaryArray", "Boolean", "CLSID", "CLSIDArray", "Currency",
    "CurrencyArray", "Double", "DoubleArray", "Float", "FloatArray",
    "Integer", "IntegerArray", "Long", "LongArray", "Short", "ShortArray",
    "SystemTime", "SystemTimeArray", "String", "StringArray")}

# A few Windows time zone names mapped to IANA, for events seeded the way
# Outlook would store them.  UTC needs no tz database at all.
UTC_NAMES = {"utc", "etc/utc", "gmt", "etc/gmt", "z",
             "coordinated universal time", "greenwich standard time"}
WINDOWS_ZONES = {
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "central europe standard time": "Europe/Budapest",
    "gmt standard time": "Europe/London",
    "eastern standard time": "America/New_York",
    "pacific standard time": "America/Los_Angeles",
}


class GraphError(Exception):
    """An answer other than success, with an ODataError body."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


class AadError(Exception):
    """An error of the token endpoint, shaped like Microsoft Entra's."""

    def __init__(self, status, error, aadsts, text):
        super().__init__(text)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.text = text

    def body(self):
        trace = str(uuid.uuid4())
        corr = str(uuid.uuid4())
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: "
                                 "%s Timestamp: %s" % (self.aadsts, self.text,
                                                       trace, corr, stamp),
            "error_codes": [self.aadsts],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=%d"
                         % self.aadsts,
        }


def bad_request(message, code="ErrorInvalidRequest"):
    return GraphError(400, code, message)


def dump_json(obj):
    return json.dumps(obj, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_event_id():
    # Immutable ids are long, URL-safe base64 and case-sensitive; '-' and '_'
    # occur in them, so a client must not mangle either.
    return "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + b64url(
        secrets.token_bytes(78)) + "AAA="


def new_change_key():
    return base64.b64encode(secrets.token_bytes(22)).decode("ascii")


def new_ical_uid():
    return ("040000008200E00074C5B7101A82E00800000000"
            + secrets.token_hex(28).upper())


# ---------------------------------------------------------------------------
# Time.

def utc_now():
    return datetime.now(timezone.utc)


def fmt_stamp(dt):
    """createdDateTime form: 2025-03-10T08:12:34.1234567Z."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%07dZ" % (dt.microsecond * 10)


def fmt_local(dt):
    """dateTimeTimeZone.dateTime form: 2025-03-10T09:00:00.0000000."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%07d" % (dt.microsecond * 10)


_zone_cache = {}


def find_zone(name):
    """The tzinfo for a time zone name, or None when unknown."""
    if name is None:
        return timezone.utc
    key = name.strip().lower()
    if key in UTC_NAMES:
        return timezone.utc
    if key in _zone_cache:
        return _zone_cache[key]
    zone = None
    iana = WINDOWS_ZONES.get(key, name.strip())
    if zoneinfo is not None and iana and not iana.startswith(("/", ".")):
        try:
            zone = zoneinfo.ZoneInfo(iana)
        except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
            zone = None
    _zone_cache[key] = zone
    return zone


LOCAL_DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})"
                         r"(?::(\d{2})(?:\.(\d{1,7}))?)?$")
OFFSET_DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})"
                          r"(?::(\d{2})(?:\.(\d{1,7}))?)?"
                          r"(Z|[+-]\d{2}:\d{2})?$")


def _dt_from_match(m):
    frac = (m.group(7) or "0").ljust(7, "0")
    return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)),
                    int(m.group(4)), int(m.group(5)), int(m.group(6) or 0),
                    int(frac[:6]))


def parse_dtz(obj, what):
    """A dateTimeTimeZone object -> (aware UTC datetime, zone name)."""
    if not isinstance(obj, dict):
        raise bad_request("'%s' must be a dateTimeTimeZone object "
                          "{dateTime, timeZone}." % what)
    for k in obj:
        if k not in ("dateTime", "timeZone") and not k.startswith("@odata."):
            raise GraphError(400, "RequestBodyRead",
                             "The property '%s' does not exist on type "
                             "'microsoft.graph.dateTimeTimeZone'." % k)
    value = obj.get("dateTime")
    tzname = obj.get("timeZone")
    if not isinstance(value, str):
        raise bad_request("'%s.dateTime' must be a string." % what)
    if tzname is not None and not isinstance(tzname, str):
        raise bad_request("'%s.timeZone' must be a string." % what)
    m = LOCAL_DT_RE.match(value)
    if not m:
        raise bad_request("Cannot convert the literal '%s' to the expected "
                          "type: '%s.dateTime' must look like "
                          "2025-03-10T09:00:00.0000000 (no offset)."
                          % (value, what))
    try:
        local = _dt_from_match(m)
    except ValueError:
        raise bad_request("'%s.dateTime' is not a valid date and time: '%s'."
                          % (what, value))
    zone = find_zone(tzname)
    if zone is None:
        raise GraphError(400, "TimeZoneNotSupportedException",
                         "A valid TimeZone value must be specified. The "
                         "following TimeZone value is not supported: '%s'."
                         % tzname)
    return local.replace(tzinfo=zone).astimezone(timezone.utc), \
        (tzname if tzname is not None else "UTC")


def parse_query_dt(value, name):
    """startDateTime/endDateTime: ISO 8601, offset optional (UTC if none)."""
    m = OFFSET_DT_RE.match(value.strip())
    if not m:
        raise bad_request("The parameter '%s' does not represent a valid "
                          "date and time: '%s'." % (name, value),
                          code="ErrorInvalidParameter")
    try:
        dt = _dt_from_match(m)
    except ValueError:
        raise bad_request("The parameter '%s' is not a valid date: '%s'."
                          % (name, value), code="ErrorInvalidParameter")
    off = m.group(8)
    if off is None or off == "Z":
        return dt.replace(tzinfo=timezone.utc)
    sign = 1 if off[0] == "+" else -1
    delta = timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
    return dt.replace(tzinfo=timezone(sign * delta)).astimezone(timezone.utc)


# ---------------------------------------------------------------------------
# Extended property ids: "{type} {guid} Name {name}", "{type} {guid} Id
# {0x8000}" or "{type} {proptag}".  Type and GUID compare case-insensitively,
# the Name part case-sensitively; Graph answers with the GUID lower-cased.

def ext_prop_id(raw):
    """-> (match key, canonical id).  Raises GraphError 400 when malformed."""
    if not isinstance(raw, str):
        raise bad_request("An extended property 'id' must be a string.",
                          code="ErrorInvalidProperty")
    parts = raw.strip().split(None, 3)
    err = GraphError(400, "ErrorInvalidProperty",
                     "The extended property id '%s' is not valid: expected "
                     "'{type} {guid} Name {name}', '{type} {guid} Id {id}' "
                     "or '{type} {proptag}'." % raw)
    if not parts or parts[0].lower() not in EXT_PROP_TYPES:
        raise err
    typ = EXT_PROP_TYPES[parts[0].lower()]
    if len(parts) == 2:
        try:
            tag = int(parts[1], 16)
        except ValueError:
            raise err
        return (typ.lower(), tag), "%s 0x%x" % (typ, tag)
    if len(parts) != 4:
        raise err
    guid = parts[1]
    if not (guid.startswith("{") and guid.endswith("}")):
        raise err
    try:
        guid = "{%s}" % uuid.UUID(guid[1:-1])
    except ValueError:
        raise err
    kind = parts[2].lower()
    if kind == "name":
        name = parts[3]
        return (typ.lower(), guid, "name", name), \
            "%s %s Name %s" % (typ, guid, name)
    if kind == "id":
        try:
            num = int(parts[3], 16) if parts[3].lower().startswith("0x") \
                else int(parts[3])
        except ValueError:
            raise err
        return (typ.lower(), guid, "id", num), "%s %s Id 0x%x" % (typ, guid,
                                                                  num)
    raise err


# ---------------------------------------------------------------------------
# OData expressions: the $filter and $expand forms tdhook sends.

TOKEN_RE = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[():,=])"
                      r"|(?P<word>[A-Za-z0-9_$./@\-]+))")


def tokenize(text, what):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request("Invalid %s: syntax error at position %d in "
                              "'%s'." % (what, pos, text), code="BadRequest")
        pos = m.end()
        if m.group("str") is not None:
            out.append(("str", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("punct") is not None:
            out.append(("p", m.group("punct")))
        else:
            out.append(("w", m.group("word")))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class Tokens:
    def __init__(self, toks, what, text):
        self.toks = toks
        self.i = 0
        self.what = what
        self.text = text

    def fail(self, why):
        return bad_request("Invalid %s '%s': %s." % (self.what, self.text,
                                                     why), code="BadRequest")

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, kind, value=None, ci=True):
        k, v = self.peek()
        if k != kind:
            raise self.fail("expected %s" % (value or kind))
        if value is not None and (v.lower() != value.lower() if ci
                                  else v != value):
            raise self.fail("expected '%s', found '%s'" % (value, v))
        self.i += 1
        return v

    def at(self, kind, value):
        k, v = self.peek()
        return k == kind and v.lower() == value.lower()

    def end(self):
        if self.i != len(self.toks):
            raise self.fail("unexpected '%s'" % self.peek()[1])


def parse_ext_filter(text):
    """singleValueExtendedProperties/Any(ep: ep/id eq 'ID' and ep/value eq
    'V') -> (match key of ID, V).  Any other form -> GraphError 400."""
    t = Tokens(tokenize(text, "$filter"), "$filter", text)
    head = t.take("w")
    if head.lower() != "singlevalueextendedproperties/any":
        raise GraphError(400, "ErrorInvalidUrlQueryFilter",
                         "The fake only supports $filter="
                         "singleValueExtendedProperties/Any(ep: ep/id eq "
                         "'...' and ep/value eq '...'), not '%s'." % text)
    t.take("p", "(")
    var = t.take("w")
    t.take("p", ":")
    got = {}

    def comparison():
        opened = False
        if t.at("p", "("):
            t.take("p", "(")
            opened = True
        lhs = t.take("w")
        if "/" not in lhs or lhs.split("/", 1)[0] != var:
            raise t.fail("expected %s/id or %s/value" % (var, var))
        field = lhs.split("/", 1)[1].lower()
        if field not in ("id", "value") or field in got:
            raise t.fail("unexpected '%s'" % lhs)
        t.take("w", "eq")
        got[field] = t.take("str")
        if opened:
            t.take("p", ")")

    comparison()
    t.take("w", "and")
    comparison()
    t.take("p", ")")
    t.end()
    key, _ = ext_prop_id(got["id"])
    return key, got["value"]


def parse_expand(text):
    """singleValueExtendedProperties[($filter=id eq 'ID' [or id eq ...])]
    -> list of match keys, or None for all properties."""
    t = Tokens(tokenize(text, "$expand"), "$expand", text)
    name = t.take("w")
    if name.lower() != "singlevalueextendedproperties":
        raise bad_request("Parsing OData Select and Expand failed: the fake "
                          "can only expand singleValueExtendedProperties, "
                          "not '%s'." % name, code="BadRequest")
    if t.peek()[0] is None:
        return None
    t.take("p", "(")
    t.take("w", "$filter")
    t.take("p", "=")
    keys = []
    while True:
        t.take("w", "id")
        t.take("w", "eq")
        keys.append(ext_prop_id(t.take("str"))[0])
        if not t.at("w", "or"):
            break
        t.take("w", "or")
    t.take("p", ")")
    t.end()
    return keys


class Query:
    """The OData query options of one request."""

    SYSTEM = {"filter", "expand", "select", "top", "skip", "skiptoken",
              "deltatoken"}

    def __init__(self, raw):
        self.params = OrderedDict()
        self.plain = OrderedDict()
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False,
                              errors="strict")
        except UnicodeDecodeError:
            raise bad_request("The query string is not valid UTF-8.",
                              code="BadRequest")
        for k, v in pairs:
            if k.startswith("$") or k.lower() in self.SYSTEM:
                name = k.lstrip("$").lower()
                if name not in self.SYSTEM:
                    raise bad_request("Query option '%s' is not supported by "
                                      "the fake." % k, code="BadRequest")
                if name in self.params:
                    raise bad_request("Query option '$%s' was specified more "
                                      "than once, it must be specified at "
                                      "most once." % name, code="BadRequest")
                self.params[name] = v
            else:
                if k in self.plain:
                    raise bad_request("Query parameter '%s' was specified "
                                      "more than once." % k,
                                      code="BadRequest")
                self.plain[k] = v

    def get(self, name):
        return self.params.get(name)

    def integer(self, name, default, lo, hi):
        v = self.params.get(name)
        if v is None:
            return default
        try:
            n = int(v)
        except ValueError:
            n = None
        if n is None or not lo <= n <= hi:
            raise bad_request("Invalid value '%s' for query option '$%s'."
                              % (v, name), code="BadRequest")
        return n

    def select(self):
        v = self.params.get("select")
        if v is None:
            return None
        names = [s.strip() for s in v.split(",") if s.strip()]
        for n in names:
            if n not in EVENT_PROPS:
                raise bad_request("Parsing OData Select and Expand failed: "
                                  "Could not find a property named '%s' on "
                                  "type 'microsoft.graph.event'." % n,
                                  code="BadRequest")
        return set(names)


# ---------------------------------------------------------------------------
# Event validation.  A request body becomes a dict of changes to apply.

def check_type(name, value, ok, what):
    if not ok:
        raise bad_request("Invalid value for property '%s': expected %s."
                          % (name, what))
    return value


def validate_event(obj, creating):
    if not isinstance(obj, dict):
        raise GraphError(400, "BadRequest",
                         "Empty Payload. JSON content expected.")
    ch = {}
    for k, v in obj.items():
        if k.startswith("@odata."):
            continue
        if k not in EVENT_PROPS:
            raise GraphError(400, "RequestBodyRead",
                             "The property '%s' does not exist on type "
                             "'microsoft.graph.event'. Make sure to only use "
                             "property names that are defined by the type or "
                             "mark the type as open type." % k)
        if k in READ_ONLY_PROPS:
            continue
        if k in UNSUPPORTED_NAV:
            raise bad_request("The fake does not support '%s'." % k)
        if k == "subject":
            ch[k] = check_type(k, v, v is None or isinstance(v, str),
                               "a string")
            if ch[k] is None:
                ch[k] = ""
        elif k == "body":
            ch[k] = validate_body(v)
        elif k in ("start", "end"):
            ch[k] = parse_dtz(v, k)
        elif k == "location":
            ch[k] = validate_location(v)
        elif k == "locations":
            check_type(k, v, isinstance(v, list), "an array")
            ch[k] = [validate_location(x) for x in v]
        elif k in ENUMS:
            check_type(k, v, isinstance(v, str) and v in ENUMS[k],
                       "one of " + ", ".join(ENUMS[k]))
            ch[k] = v
        elif k in BOOL_PROPS:
            ch[k] = check_type(k, v, isinstance(v, bool), "a boolean")
        elif k == "reminderMinutesBeforeStart":
            ch[k] = check_type(k, v, isinstance(v, int) and
                               not isinstance(v, bool), "an integer")
        elif k == "categories":
            check_type(k, v, isinstance(v, list) and
                       all(isinstance(x, str) for x in v), "strings")
            ch[k] = list(v)
        elif k == "attendees":
            check_type(k, v, isinstance(v, list) and all(
                isinstance(a, dict) and isinstance(a.get("emailAddress"), dict)
                for a in v), "attendee objects with emailAddress")
            ch[k] = json.loads(json.dumps(v))
        elif k == "organizer":
            check_type(k, v, isinstance(v, dict) and
                       isinstance(v.get("emailAddress"), dict),
                       "{\"emailAddress\":{...}}")
            ch[k] = json.loads(json.dumps(v))
        elif k == "recurrence":
            if v is not None:
                raise bad_request("The fake does not support recurring "
                                  "events.")
        elif k == "transactionId":
            if not creating:
                raise bad_request("The property 'transactionId' cannot be "
                                  "changed after the event was created.",
                                  code="ErrorInvalidPropertyUpdate")
            ch[k] = check_type(k, v, v is None or (isinstance(v, str) and v),
                               "a non-empty string")
        elif k == "singleValueExtendedProperties":
            check_type(k, v, isinstance(v, list), "an array")
            props = []
            for p in v:
                if not isinstance(p, dict) or set(p) - {"id", "value"} \
                        or "id" not in p:
                    raise bad_request("Each extended property needs 'id' and "
                                      "'value' and nothing else.",
                                      code="ErrorInvalidProperty")
                val = p.get("value")
                if val is not None and not isinstance(val, str):
                    raise bad_request("An extended property 'value' must be "
                                      "a string.", code="ErrorInvalidProperty")
                key, canon = ext_prop_id(p["id"])
                props.append({"key": key, "id": canon, "value": val})
            ch[k] = props
    if creating:
        for req in ("subject", "start", "end"):
            if req not in ch:
                raise bad_request("Required property '%s' is missing." % req)
    return ch


def validate_body(v):
    if v is None:
        return {"contentType": "text", "content": ""}
    if not isinstance(v, dict) or set(v) - {"contentType", "content"}:
        raise bad_request("'body' must be an itemBody {contentType, "
                          "content}.")
    ctype = v.get("contentType", "text")
    if not isinstance(ctype, str) or ctype.lower() not in ("text", "html"):
        raise bad_request("'body.contentType' must be 'text' or 'html'.")
    content = v.get("content")
    if content is not None and not isinstance(content, str):
        raise bad_request("'body.content' must be a string.")
    return {"contentType": ctype.lower(), "content": content or ""}


LOCATION_KEYS = {"displayName", "locationEmailAddress", "locationUri",
                 "address", "coordinates", "locationType", "uniqueId",
                 "uniqueIdType"}


def validate_location(v):
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise bad_request("'location' must be an object.")
    for k, x in v.items():
        if k.startswith("@odata."):
            continue
        if k not in LOCATION_KEYS:
            raise GraphError(400, "RequestBodyRead",
                             "The property '%s' does not exist on type "
                             "'microsoft.graph.location'." % k)
        if k in ("displayName", "locationEmailAddress", "locationUri",
                 "uniqueId") and x is not None and not isinstance(x, str):
            raise bad_request("'location.%s' must be a string." % k)
    return {k: x for k, x in v.items() if not k.startswith("@odata.")}


# ---------------------------------------------------------------------------
# Event rendering.

def text_to_html(text):
    esc = html.escape(text, quote=False).replace("\r\n", "\n")
    return "<div>" + esc.replace("\n", "<br>\r\n") + "</div>"


def html_page(inner):
    """Graph's default: the body as a whole HTML document."""
    return ("<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" "
            "content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n"
            + inner + "\r\n</body>\r\n</html>\r\n")


TAG_RE = re.compile(r"<[^>]*>")


def html_to_text(content):
    return html.unescape(TAG_RE.sub(" ", content))


def render_location(loc):
    out = OrderedDict()
    out["displayName"] = loc.get("displayName") or ""
    if loc.get("locationEmailAddress"):
        out["locationEmailAddress"] = loc["locationEmailAddress"]
    if loc.get("locationUri"):
        out["locationUri"] = loc["locationUri"]
    out["locationType"] = loc.get("locationType") or "default"
    if out["displayName"]:
        out["uniqueId"] = loc.get("uniqueId") or out["displayName"]
        out["uniqueIdType"] = "private"
    else:
        out["uniqueIdType"] = "unknown"
    out["address"] = loc.get("address") or {}
    out["coordinates"] = loc.get("coordinates") or {}
    return out


class View:
    """How events are rendered for one request."""

    def __init__(self, zone_name="UTC", zone=timezone.utc, body_type=None,
                 select=None, expand=False, expand_keys=None,
                 all_props=False, raw_body=False):
        self.zone_name = zone_name
        self.zone = zone
        self.body_type = body_type   # None: html, as Graph's default
        self.select = select
        self.expand = expand
        self.expand_keys = expand_keys
        self.all_props = all_props   # /__fake/events: props and transactionId
        self.raw_body = raw_body


def render_event(ev, view):
    """Event JSON as Graph returns it.  Caller holds the state lock."""
    x = ev["extra"]
    out = OrderedDict()
    out["@odata.etag"] = 'W/"%s"' % ev["changeKey"]
    out["id"] = ev["id"]
    out["createdDateTime"] = fmt_stamp(ev["created"])
    out["lastModifiedDateTime"] = fmt_stamp(ev["modified"])
    out["changeKey"] = ev["changeKey"]
    out["categories"] = list(x.get("categories", []))
    if ev["transactionId"] is not None or view.all_props:
        out["transactionId"] = ev["transactionId"]
    out["originalStartTimeZone"] = ev["startTz"]
    out["originalEndTimeZone"] = ev["endTz"]
    out["iCalUId"] = ev["iCalUId"]
    out["reminderMinutesBeforeStart"] = x.get("reminderMinutesBeforeStart", 15)
    out["isReminderOn"] = x.get("isReminderOn", True)
    out["hasAttachments"] = False
    out["subject"] = ev["subject"]
    body = ev["body"]
    plain = body["content"] if body["contentType"] == "text" \
        else html_to_text(body["content"])
    out["bodyPreview"] = " ".join(plain.split())[:255]
    out["importance"] = x.get("importance", "normal")
    out["sensitivity"] = x.get("sensitivity", "normal")
    out["isAllDay"] = x.get("isAllDay", False)
    out["isCancelled"] = bool(x.get("isCancelled", False))
    organizer = x.get("organizer") or {"emailAddress": {
        "name": ev["mailbox"].split("@", 1)[0], "address": ev["mailbox"]}}
    org_addr = str(organizer.get("emailAddress", {}).get("address") or "")
    out["isOrganizer"] = org_addr.lower() == ev["mailbox"]
    out["responseRequested"] = x.get("responseRequested", True)
    out["seriesMasterId"] = None
    out["showAs"] = x.get("showAs", "busy")
    out["type"] = "singleInstance"
    out["webLink"] = ("https://outlook.office365.com/owa/?itemid=%s"
                      "&exvsurl=1&path=/calendar/item"
                      % quote(ev["id"], safe=""))
    out["onlineMeetingUrl"] = None
    out["isOnlineMeeting"] = x.get("isOnlineMeeting", False)
    out["onlineMeetingProvider"] = x.get("onlineMeetingProvider", "unknown")
    out["allowNewTimeProposals"] = x.get("allowNewTimeProposals", True)
    out["isDraft"] = False
    out["hideAttendees"] = x.get("hideAttendees", False)
    out["responseStatus"] = {"response": "organizer" if out["isOrganizer"]
                             else x.get("response", "none"),
                             "time": MIN_DATE}
    if view.raw_body:
        out["body"] = dict(body)
    elif view.body_type == "text":
        out["body"] = {"contentType": "text", "content": plain.strip()}
    elif body["contentType"] == "html":
        c = body["content"]
        if not c.lstrip().lower().startswith("<html"):
            c = html_page(c)
        out["body"] = {"contentType": "html", "content": c}
    else:
        out["body"] = {"contentType": "html",
                       "content": html_page(text_to_html(body["content"]))}
    out["start"] = {"dateTime": fmt_local(ev["start"].astimezone(view.zone)),
                    "timeZone": view.zone_name}
    out["end"] = {"dateTime": fmt_local(ev["end"].astimezone(view.zone)),
                  "timeZone": view.zone_name}
    out["location"] = render_location(ev["location"])
    locs = x.get("locations")
    if locs is None:
        locs = [ev["location"]] if ev["location"].get("displayName") else []
    out["locations"] = [render_location(l) for l in locs]
    out["recurrence"] = None
    attendees = []
    for a in x.get("attendees", []):
        a = dict(a)
        a.setdefault("type", "required")
        a.setdefault("status", {"response": "none", "time": MIN_DATE})
        attendees.append(a)
    out["attendees"] = attendees
    out["organizer"] = organizer
    if view.select is not None:
        out = OrderedDict((k, v) for k, v in out.items()
                          if k in ("@odata.etag", "id") or k in view.select)
    if view.all_props:
        out["singleValueExtendedProperties"] = [
            {"id": p["id"], "value": p["value"]} for p in ev["props"]]
    elif view.expand:
        props = [{"id": p["id"], "value": p["value"]} for p in ev["props"]
                 if view.expand_keys is None or p["key"] in view.expand_keys]
        # Graph leaves the collection out when no property matches.
        if props:
            out["singleValueExtendedProperties@odata.context"] = (
                GRAPH_ORIGIN + "/$metadata#users('%s')/events('%s')/"
                "singleValueExtendedProperties" % (
                    quote(ev["mailbox"], safe=""), ev["id"]))
            out["singleValueExtendedProperties"] = props
    return out


# ---------------------------------------------------------------------------
# Shared state.

class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.verbose = args.verbose
        self.tenant = args.tenant
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.token_ttl = args.token_ttl
        self.concurrency = args.mailbox_concurrency
        self.mailboxes = None
        if args.mailboxes:
            self.mailboxes = {m.strip().lower() for m in
                              args.mailboxes.split(",") if m.strip()}
        self.domain = args.tenant.lower() if "." in args.tenant else None
        # Matched URL-decoded and case-insensitive; "code" and "message"
        # name the Graph error.
        self.faults = faults.Rules(args.seed,
                                   fold=lambda p: unquote(p).lower(),
                                   texts=("code", "message"))
        self.outlook = None
        self.reset()
        self.outlook = graph_outlook.Outlook(self, args)

    def reset(self):
        with self.lock:
            self.boxes = {}          # mailbox -> OrderedDict id -> event
            self.tokens = {}         # access token -> monotonic expiry
            self.faults.clear()
            self.cancelled = []
            self.reset_stats_locked()
            if self.outlook is not None:
                self.outlook.reset_locked()

    def reset_stats_locked(self):
        self.requests = 0
        self.by_path = {}
        self.by_op = {}
        self.token_requests = 0
        self.statuses = {}
        self.prefer = {}
        self.dropped = 0
        self.throttled = 0
        self.in_flight = {}
        self.max_in_flight = {}

    def known_mailbox(self, mbx):
        if "@" not in mbx:
            return False
        if self.mailboxes is not None and mbx in self.mailboxes:
            return True
        if self.domain is not None:
            return mbx.endswith("@" + self.domain)
        return self.mailboxes is None

    # -- accounting -----------------------------------------------------

    def begin(self, path, mailbox, prefer):
        """Counts a request; returns False when the mailbox is over its
        concurrency limit."""
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
            for p in prefer:
                self.prefer[p] = self.prefer.get(p, 0) + 1
            if mailbox is None:
                return True
            n = self.in_flight.get(mailbox, 0) + 1
            self.in_flight[mailbox] = n
            if n > self.max_in_flight.get(mailbox, 0):
                self.max_in_flight[mailbox] = n
            return self.concurrency <= 0 or n <= self.concurrency

    def end(self, mailbox, status, op=None):
        with self.lock:
            if mailbox is not None:
                self.in_flight[mailbox] -= 1
            if status is None:
                self.dropped += 1
            else:
                key = str(status)
                self.statuses[key] = self.statuses.get(key, 0) + 1
            if op is not None:
                self.by_op[op] = self.by_op.get(op, 0) + 1

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_op": dict(self.by_op),
                "token_requests": self.token_requests,
                "max_in_flight_per_mailbox": dict(self.max_in_flight),
                "in_flight_per_mailbox": {k: v for k, v in
                                          self.in_flight.items() if v},
                "prefer": dict(self.prefer),
                "statuses": dict(self.statuses),
                "dropped": self.dropped,
                "throttled": self.throttled,
                "tokens_valid": sum(1 for e in self.tokens.values()
                                    if e > time.monotonic()),
                "events": sum(len(b) for b in self.boxes.values()),
            }

    # -- tokens -----------------------------------------------------------

    def issue_token(self):
        now = int(time.time())
        head = b64url(dump_json({"typ": "JWT", "alg": "RS256",
                                 "kid": "fake-graph"}))
        claims = b64url(dump_json({
            "aud": "https://graph.microsoft.com",
            "iss": "https://sts.windows.net/%s/" % self.tenant,
            "iat": now, "nbf": now, "exp": now + self.token_ttl,
            "appid": self.client_id, "roles": ["Calendars.ReadWrite"],
            "tid": self.tenant, "uti": secrets.token_hex(8)}))
        token = "%s.%s.%s" % (head, claims, b64url(secrets.token_bytes(64)))
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
        return token

    def token_valid(self, token):
        with self.lock:
            exp = self.tokens.get(token)
            return exp is not None and time.monotonic() < exp

    # -- events -----------------------------------------------------------

    def create(self, mailbox, ch):
        """-> (event JSON, created?).  A known transactionId returns the
        event it made."""
        with self.lock:
            box = self.boxes.setdefault(mailbox, OrderedDict())
            tid = ch.get("transactionId")
            if tid is not None:
                for ev in box.values():
                    if ev["transactionId"] == tid:
                        return ev, False
            if ch["end"][0] < ch["start"][0]:
                raise end_before_start()
            now = utc_now()
            ev = {
                "id": new_event_id(), "mailbox": mailbox,
                "changeKey": new_change_key(), "iCalUId": new_ical_uid(),
                "created": now, "modified": now,
                "subject": "", "body": {"contentType": "text", "content": ""},
                "location": {}, "transactionId": None, "props": [],
                "extra": {},
            }
            apply_changes(ev, ch)
            box[ev["id"]] = ev
            self.touch(mailbox, ev, "created")
            return ev, True

    def touch(self, mailbox, ev, change):
        """Logs a change for delta and notifications; caller holds lock."""
        if self.outlook is not None:
            self.outlook.touch(mailbox, ev, change)

    def find(self, mailbox, event_id):
        box = self.boxes.get(mailbox)
        ev = box.get(event_id) if box else None
        if ev is None:
            raise not_found()
        return ev

    def update(self, mailbox, event_id, ch, if_match):
        with self.lock:
            ev = self.find(mailbox, event_id)
            check_if_match(ev, if_match)
            start = ch["start"][0] if "start" in ch else ev["start"]
            end = ch["end"][0] if "end" in ch else ev["end"]
            if end < start:
                raise end_before_start()
            apply_changes(ev, ch)
            ev["modified"] = utc_now()
            ev["changeKey"] = new_change_key()
            self.touch(mailbox, ev, "updated")
            return ev

    def remove(self, mailbox, event_id, if_match=None, comment=None):
        with self.lock:
            ev = self.find(mailbox, event_id)
            check_if_match(ev, if_match)
            del self.boxes[mailbox][event_id]
            self.touch(mailbox, ev, "deleted")
            if comment is not None:
                self.cancelled.append({"mailbox": mailbox, "id": event_id,
                                       "subject": ev["subject"],
                                       "comment": comment})
            return ev


def not_found():
    return GraphError(404, "ErrorItemNotFound",
                      "The specified object was not found in the store.")


def end_before_start():
    return GraphError(400, "ErrorCalendarEndDateIsEarlierThanStartDate",
                      "The end date occurs before the start date.")


def check_if_match(ev, if_match):
    if if_match is None or if_match.strip() == "*":
        return
    tags = [t.strip() for t in if_match.split(",")]
    want = 'W/"%s"' % ev["changeKey"]
    if want not in tags and '"%s"' % ev["changeKey"] not in tags:
        raise GraphError(412, "ErrorIrresolvableConflict",
                         "The change key passed in the request does not "
                         "match the current change key for the item.")


def apply_changes(ev, ch):
    for k, v in ch.items():
        if k in ("start", "end"):
            ev[k], ev[k + "Tz"] = v
        elif k in ("subject", "body", "transactionId"):
            ev[k] = v
        elif k == "location":
            ev["location"] = v
            ev["extra"].pop("locations", None)
        elif k == "locations":
            ev["extra"]["locations"] = v
            ev["location"] = dict(v[0]) if v else {}
        elif k == "singleValueExtendedProperties":
            for p in v:
                for i, old in enumerate(ev["props"]):
                    if old["key"] == p["key"]:
                        ev["props"][i] = dict(p)
                        break
                else:
                    ev["props"].append(dict(p))
        else:
            ev["extra"][k] = v


def ext_filter_match(ev, key, value):
    want = value.casefold()
    return any(p["key"] == key and p["value"] is not None
               and p["value"].casefold() == want for p in ev["props"])


def prefer_tokens(headers):
    """The preferences of all Prefer headers, spaces around '=' removed."""
    out = []
    for h in headers.get_all("Prefer") or []:
        for part in h.split(","):
            part = part.strip()
            if not part:
                continue
            name, eq, value = part.partition("=")
            out.append(name.strip() + eq + value.strip() if eq
                       else name.strip())
    return out


def prefer_values(tokens):
    out = {}
    for t in tokens:
        name, _, value = t.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[name.strip().lower()] = value
    return out


# ---------------------------------------------------------------------------
# HTTP.

class Handler(faults.FaultMixin, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-graph"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120
    status_text = STATUS_TEXT

    # -- plumbing ---------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.state.verbose:
            sys.stderr.write("fake-graph: %s %s\n" % (self.address_string(),
                                                      fmt % args))

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    size = 0
                if size <= 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        n = self.headers.get("Content-Length")
        try:
            n = int(n) if n is not None else 0
        except ValueError:
            n = 0
        return self.rfile.read(n) if n > 0 else b""

    def graph_headers(self):
        rid = str(uuid.uuid4())
        crid = self.headers.get("client-request-id") or rid
        return [("request-id", rid), ("client-request-id", crid),
                ("OData-Version", "4.0"), ("Cache-Control", "private")]

    def send_graph(self, status, obj, headers=(), slow_ms=0.0):
        hs = self.graph_headers() + list(headers)
        if obj is None:
            self.send_all(status, b"", None, hs, slow_ms)
        else:
            self.send_all(status, dump_json(obj), CT_GRAPH, hs, slow_ms)

    def send_graph_error(self, e, slow_ms=0.0):
        hs = self.graph_headers()
        rid = hs[0][1]
        obj = {"error": OrderedDict([
            ("code", e.code), ("message", e.message),
            ("innerError", OrderedDict([
                ("date", utc_now().strftime("%Y-%m-%dT%H:%M:%S")),
                ("request-id", rid), ("client-request-id", hs[1][1])]))])}
        self.send_all(e.status, dump_json(obj), CT_GRAPH,
                      hs + list(e.headers), slow_ms)

    def send_json(self, status, obj):
        self.send_all(status, dump_json(obj), CT_JSON)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        try:
            body = self.read_body()
            url = urlsplit(self.path)
            path = url.path
            if path.startswith("/__fake/"):
                self.control(method, path, body)
            elif TOKEN_PATH_RE.match(path):
                self.token(method, path, body)
            elif path == "/v1.0" or path.startswith("/v1.0/"):
                self.graph(method, path, url.query, body)
            else:
                self.send_graph_error(GraphError(
                    404, "ResourceNotFound",
                    "The fake serves /{tenant}/oauth2/v2.0/token and /v1.0/ "
                    "only, not '%s'." % path))
        except (ConnectionError, BrokenPipeError, socket.timeout):
            self.close_connection = True

    # -- faults, shared by the token endpoint and Graph ---------------------

    def apply_fault(self, fault, token_endpoint):
        """Acts on an injected fault.  Returns (handled, status, slow_ms)."""

        def error(st, headers, slow):
            message = fault["message"] or FAULT_MESSAGES.get(
                st, "Injected fault: HTTP %d." % st)
            if token_endpoint:
                if st < 400:
                    self.send_all(st, b"", None, headers, slow)
                    return
                err = fault["code"] or ("invalid_client" if st == 401 else
                                        "temporarily_unavailable"
                                        if st == 429 or st >= 500
                                        else "invalid_request")
                obj = AadError(st, err, 50000 + st % 1000, message).body()
                self.send_all(st, dump_json(obj), CT_AAD, headers, slow)
                return
            if st < 400:
                self.send_graph(st, None, headers, slow)
                return
            e = GraphError(st, fault["code"] or
                           FAULT_CODES.get(st, "UnknownError"),
                           message, headers)
            if st == 401:
                e.headers.append(("WWW-Authenticate", 'Bearer realm=""'))
            self.send_graph_error(e, slow)

        return self.answer_fault(fault, error)

    # -- token endpoint -----------------------------------------------------

    def token(self, method, path, body):
        state = self.server.state
        prefer = []
        state.begin(path, None, prefer)
        status = None
        try:
            with state.lock:
                state.token_requests += 1
            fault = state.faults.pick(method, path)
            if fault is not None:
                handled, status, _ = self.apply_fault(fault, True)
                if handled:
                    return
            status = self.token_answer(method, path, body)
        finally:
            state.end(None, status, "token")

    def token_answer(self, method, path, body):
        state = self.server.state
        headers = [("Cache-Control", "no-store, no-cache"),
                   ("Pragma", "no-cache")]
        try:
            if method != "POST":
                raise AadError(405, "invalid_request", 900561,
                               "The endpoint only accepts POST requests.")
            tenant = unquote(TOKEN_PATH_RE.match(path).group(1))
            if tenant.lower() != state.tenant.lower():
                raise AadError(400, "invalid_request", 90002,
                               "Tenant '%s' not found. Check to make sure "
                               "you have the correct tenant ID and are "
                               "signing into the correct cloud." % tenant)
            ctype = (self.headers.get("Content-Type") or "").lower()
            form = {}
            if "application/x-www-form-urlencoded" in ctype:
                try:
                    form = parse_qs(body.decode("utf-8"),
                                    keep_blank_values=True)
                except UnicodeDecodeError:
                    form = {}
            form = {k: v[-1] for k, v in form.items()}
            auth = self.headers.get("Authorization", "")
            if auth[:6].lower() == "basic ":
                try:
                    raw = base64.b64decode(auth[6:].strip(), validate=True)
                    cid, _, sec = raw.decode("utf-8").partition(":")
                    form.setdefault("client_id", unquote(cid))
                    form.setdefault("client_secret", unquote(sec))
                except (ValueError, UnicodeDecodeError):
                    pass
            for name in ("grant_type", "client_id", "scope"):
                if not form.get(name):
                    raise AadError(400, "invalid_request", 900144,
                                   "The request body must contain the "
                                   "following parameter: '%s'." % name)
            if form["grant_type"] != "client_credentials":
                raise AadError(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant "
                               "type '%s'." % form["grant_type"])
            if form["scope"].strip().lower() != GRAPH_SCOPE:
                raise AadError(400, "invalid_scope", 1002012,
                               "The provided value for scope %s is not "
                               "valid. Client credential flows must have a "
                               "scope value with /.default suffixed to the "
                               "resource identifier (application ID URI)."
                               % form["scope"])
            if not form.get("client_secret") and \
                    not form.get("client_assertion"):
                raise AadError(401, "invalid_client", 7000218,
                               "The request body must contain the following "
                               "parameter: 'client_assertion' or "
                               "'client_secret'.")
            if form["client_id"] != state.client_id or \
                    form.get("client_secret") != state.client_secret:
                raise AadError(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the "
                               "secret being sent in the request is the "
                               "client secret value, not the client secret "
                               "ID, for a secret added to app '%s'."
                               % form["client_id"])
            token = state.issue_token()
            obj = OrderedDict([("token_type", "Bearer"),
                               ("expires_in", state.token_ttl),
                               ("ext_expires_in", state.token_ttl),
                               ("access_token", token)])
            self.send_all(200, dump_json(obj), CT_AAD, headers)
            return 200
        except AadError as e:
            self.send_all(e.status, dump_json(e.body()), CT_AAD, headers)
            return e.status

    # -- Graph ----------------------------------------------------------------

    def graph(self, method, path, query, body):
        state = self.server.state
        raw_segs = path.split("/")[1:]           # ['v1.0', 'users', mbx, ...]
        segs = [unquote(s) for s in raw_segs]
        mailbox = None
        if len(segs) >= 3 and segs[1].lower() == "users" and segs[2]:
            mailbox = segs[2].lower()
        if len(segs) >= 2 and segs[1].lower() == "subscriptions":
            return self.subscriptions(method, segs[2:], body)
        if len(segs) == 2 and segs[1] == "$batch":
            return self.batch(method, body)
        prefer = prefer_tokens(self.headers)
        dpath = unquote(path)
        if self.headers.get("X-Fake-Inner") == "1":
            dpath = "inner:" + dpath     # a request of a $batch
        ok = state.begin(dpath, mailbox, prefer)
        status = None
        op = None
        try:
            if not ok:
                with state.lock:
                    state.throttled += 1
                status = 429
                self.send_graph_error(GraphError(
                    429, "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    [("Retry-After", "1")]))
                return
            fault = state.faults.pick(method, path)
            slow = 0.0
            if fault is not None:
                handled, status, slow = self.apply_fault(fault, False)
                if handled:
                    return
            try:
                self.check_auth()
                op, status = self.graph_answer(method, raw_segs, segs,
                                               mailbox, query, body, prefer,
                                               slow)
            except GraphError as e:
                status = e.status
                self.send_graph_error(e, slow)
            except (ConnectionError, BrokenPipeError, socket.timeout):
                raise
            except Exception:        # a bug in the fake: say so, answer 500
                traceback.print_exc()
                status = 500
                self.send_graph_error(GraphError(
                    500, "InternalServerError",
                    "The fake failed; see its stderr."))
        finally:
            state.end(mailbox, status, op)

    def check_auth(self):
        h = self.headers.get("Authorization", "")
        scheme, _, token = h.strip().partition(" ")
        hdr = [("WWW-Authenticate",
                'Bearer realm="", authorization_uri="https://login.'
                'microsoftonline.com/common/oauth2/authorize", '
                'client_id="00000003-0000-0000-c000-000000000000"')]
        if not h.strip() or scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token is empty.", hdr)
        if not self.server.state.token_valid(token.strip()):
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token has expired or is not yet valid.",
                             hdr)

    def json_body(self, body, allow_empty=False):
        if not body.strip():
            if allow_empty:
                return {}
            raise GraphError(400, "BadRequest",
                             "Empty Payload. JSON content expected.")
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "application/json" not in ctype:
            raise GraphError(400, "BadRequest",
                             "Unable to read JSON request payload. Please "
                             "ensure Content-Type header is set and payload "
                             "is of valid JSON format.")
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise GraphError(400, "BadRequest",
                             "Unable to read JSON request payload. Please "
                             "ensure Content-Type header is set and payload "
                             "is of valid JSON format.")

    def make_view(self, q, prefer):
        pv = prefer_values(prefer)
        zone_name, zone = "UTC", timezone.utc
        want = pv.get("outlook.timezone")
        if want:
            z = find_zone(want)
            if z is not None:
                zone_name, zone = want, z
        expand = q.get("expand")
        keys = parse_expand(expand) if expand is not None else None
        body_type = pv.get("outlook.body-content-type", "").lower() or None
        return View(zone_name, zone, body_type, q.select(),
                    expand is not None, keys)

    def graph_answer(self, method, raw_segs, segs, mailbox, query, body,
                     prefer, slow):
        """Answers one authorised Graph call.  Returns (op, status)."""
        state = self.server.state
        if len(segs) >= 2 and segs[1].lower() == "me":
            raise GraphError(400, "BadRequest",
                             "/me request is only valid with delegated "
                             "authentication flow.")
        if mailbox is None:
            raise GraphError(400, "BadRequest", "Resource not found for the "
                             "segment '%s'." % (segs[1] if len(segs) > 1
                                                else "v1.0"))
        if not state.known_mailbox(mailbox):
            raise GraphError(404, "ErrorInvalidUser",
                             "The requested user '%s' is invalid." % segs[2])
        rest = segs[3:]
        if rest and rest[-1] == "":
            rest = rest[:-1]
        low = [s.lower() for s in rest]
        if len(low) >= 2 and low[0] == "calendar" and \
                low[1] in ("events", "calendarview"):
            rest, low = rest[1:], low[1:]
        if len(low) == 3 and low[2] == "microsoft.graph.cancel":
            low[2] = "cancel"
        if low == ["calendarview", "delta"] and method == "GET":
            return self.delta(mailbox, raw_segs, Query(query), prefer, slow)
        if len(low) == 3 and low[0] == "events" and low[2] == "decline":
            if method != "POST":
                raise GraphError(405, "BadRequest", "Specified HTTP method is "
                                 "not allowed for the request target.",
                                 [("Allow", "POST")])
            return self.decline(mailbox, rest[1], body, slow)
        q = Query(query)
        base = "http://%s%s" % (self.headers.get("Host") or "127.0.0.1:%d"
                                % self.server.server_address[1],
                                "/".join([""] + raw_segs[:3]))
        ctx_user = GRAPH_ORIGIN + "/$metadata#users('%s')" % quote(mailbox,
                                                                   safe="")
        allowed = None
        if low == ["events"]:
            allowed = ("GET", "POST")
        elif len(low) == 2 and low[0] == "events":
            allowed = ("GET", "PATCH", "DELETE")
        elif len(low) == 3 and low[0] == "events" and low[2] == "cancel":
            allowed = ("POST",)
        elif low == ["calendarview"]:
            allowed = ("GET",)
        if allowed is None:
            raise GraphError(400, "BadRequest", "Resource not found for the "
                             "segment '%s'." % (rest[0] if rest else
                                                segs[2]))
        if method not in allowed:
            raise GraphError(405, "BadRequest", "Specified HTTP method is not "
                             "allowed for the request target.",
                             [("Allow", ", ".join(allowed))])
        pv_headers = []
        pv = prefer_values(prefer)
        if "outlook.timezone" in pv:
            pv_headers.append(("Preference-Applied",
                               'outlook.timezone="%s"'
                               % pv["outlook.timezone"]))

        if low == ["events"] and method == "POST":
            ch = validate_event(self.json_body(body), True)
            view = self.make_view(q, prefer)
            ev, _ = state.create(mailbox, ch)
            with state.lock:
                obj = render_event(ev, view)
            out = OrderedDict([("@odata.context", ctx_user + "/events/$entity")])
            out.update(obj)
            hs = pv_headers + [("Location", "%s/events/%s" % (
                base, quote(ev["id"], safe="")))]
            self.send_graph(201, out, hs, slow)
            return "createEvent", 201

        if low == ["events"] or low == ["calendarview"]:
            view = self.make_view(q, prefer)
            flt = q.get("filter")
            key = value = None
            if flt is not None:
                key, value = parse_ext_filter(flt)
            top = q.integer("top", DEFAULT_TOP, 1, MAX_TOP)
            window = None
            if low == ["calendarview"]:
                s, e = q.plain.get("startDateTime"), q.plain.get("endDateTime")
                if not s or not e:
                    raise GraphError(400, "ErrorInvalidParameter",
                                     "This request requires a time window "
                                     "specified by the query string "
                                     "parameters StartDateTime and "
                                     "EndDateTime.")
                window = (parse_query_dt(s, "startDateTime"),
                          parse_query_dt(e, "endDateTime"))
                if window[1] < window[0]:
                    raise GraphError(400, "ErrorInvalidParameter",
                                     "The parameter 'EndDateTime' must be "
                                     "later than 'StartDateTime'.")
                skip = self.skiptoken(q)
            else:
                if q.get("skiptoken") is not None:
                    raise bad_request("$skiptoken is not valid here.",
                                      code="BadRequest")
                skip = q.integer("skip", 0, 0, 1 << 30)
            with state.lock:
                box = state.boxes.get(mailbox, {})
                evs = [ev for ev in box.values()
                       if (key is None or ext_filter_match(ev, key, value))
                       and (window is None or (ev["start"] < window[1] and
                                               ev["end"] > window[0]))]
                if window is not None:
                    evs.sort(key=lambda ev: (ev["start"], ev["end"],
                                             ev["created"]))
                page = [render_event(ev, view) for ev in
                        evs[skip:skip + top]]
                total = len(evs)
            out = OrderedDict([("@odata.context", ctx_user + (
                "/calendarView" if window else "/events"))])
            out["value"] = page
            if skip + top < total:
                out["@odata.nextLink"] = self.next_link(
                    base + ("/calendarView" if window else "/events"), query,
                    skip + top, window is not None)
            self.send_graph(200, out, pv_headers, slow)
            return ("calendarView" if window else "listEvents"), 200

        event_id = rest[1]
        if low[0] == "events" and len(low) == 2 and method == "GET":
            view = self.make_view(q, prefer)
            with state.lock:
                obj = render_event(state.find(mailbox, event_id), view)
            out = OrderedDict([("@odata.context",
                                ctx_user + "/events/$entity")])
            out.update(obj)
            self.send_graph(200, out, pv_headers, slow)
            return "getEvent", 200

        if method == "PATCH":
            ch = validate_event(self.json_body(body), False)
            view = self.make_view(q, prefer)
            ev = state.update(mailbox, event_id, ch,
                              self.headers.get("If-Match"))
            with state.lock:
                obj = render_event(ev, view)
            out = OrderedDict([("@odata.context",
                                ctx_user + "/events/$entity")])
            out.update(obj)
            self.send_graph(200, out, pv_headers, slow)
            return "updateEvent", 200

        if method == "DELETE":
            state.remove(mailbox, event_id, self.headers.get("If-Match"))
            self.send_graph(204, None, (), slow)
            return "deleteEvent", 204

        # POST .../cancel
        obj = self.json_body(body, allow_empty=True)
        if not isinstance(obj, dict) or set(obj) - {"comment", "Comment"}:
            raise GraphError(400, "RequestBodyRead",
                             "The cancel action takes {\"comment\": "
                             "\"...\"} only.")
        comment = obj.get("comment", obj.get("Comment", ""))
        if comment is not None and not isinstance(comment, str):
            raise bad_request("'comment' must be a string.")
        state.remove(mailbox, event_id, None, comment or "")
        self.send_graph(202, None, (), slow)
        return "cancelEvent", 202

    # -- Outlook bookings: subscriptions, delta, decline (graph_outlook.py) --

    def subscriptions(self, method, rest, body):
        state = self.server.state
        ol = state.outlook
        state.begin("/v1.0/subscriptions", None, [])
        status = None
        try:
            self.check_auth()
            sub_id = rest[0] if rest and rest[0] else None
            action = rest[1].lower() if len(rest) > 1 else None
            if sub_id is None and method == "POST":
                sub = ol.create(self.json_body(body), GraphError,
                                state.known_mailbox)
                status = 201
                self.send_graph(201, ol.render_sub(sub))
                return
            if sub_id is None and method == "GET":
                with state.lock:
                    out = {"value": [ol.render_sub(x)
                                     for x in ol.subs.values()]}
                status = 200
                self.send_graph(200, out)
                return
            with state.lock:
                sub = ol.subs.get(sub_id)
            if sub is None:
                raise GraphError(404, "ResourceNotFound",
                                 "The object was not found.")
            if action == "reauthorize" and method == "POST":
                status = 204
                self.send_graph(204, None)
            elif action is None and method == "GET":
                status = 200
                self.send_graph(200, ol.render_sub(sub))
            elif action is None and method == "PATCH":
                obj = self.json_body(body)
                if not isinstance(obj, dict) or set(obj) - {
                        "expirationDateTime", "notificationUrl"}:
                    raise GraphError(400, "InvalidRequest", "Only "
                                     "expirationDateTime can be changed.")
                when = ol.check_expiry(obj.get("expirationDateTime"),
                                       GraphError)
                with state.lock:
                    sub["expiration"] = when
                status = 200
                self.send_graph(200, ol.render_sub(sub))
            elif action is None and method == "DELETE":
                with state.lock:
                    ol.subs.pop(sub_id, None)
                status = 204
                self.send_graph(204, None)
            else:
                raise GraphError(405, "BadRequest", "Specified HTTP method "
                                 "is not allowed for the request target.")
        except GraphError as e:
            status = e.status
            self.send_graph_error(e)
        finally:
            state.end(None, status, "subscription-" + method.lower())

    def batch(self, method, body):
        """POST /v1.0/$batch: JSON batching, at most 20 requests, each
        answered as if sent alone (the fake asks itself)."""
        state = self.server.state
        state.begin("/v1.0/$batch", None, [])
        status = None
        try:
            if method != "POST":
                raise GraphError(405, "BadRequest", "Use POST.",
                                 [("Allow", "POST")])
            self.check_auth()
            obj = self.json_body(body)
            reqs = obj.get("requests") if isinstance(obj, dict) else None
            if not isinstance(reqs, list) or not reqs or len(reqs) > 20:
                raise GraphError(400, "BadRequest", "A batch holds 1 to 20 "
                                 "requests.")
            out = []
            for r in reqs:
                if not isinstance(r, dict) or not isinstance(r.get("url"), str) \
                        or not r["url"].startswith("/") or \
                        r.get("method", "GET") != "GET":
                    raise GraphError(400, "BadRequest", "Each request needs "
                                     "an id, GET and a relative url.")
                hs = {"Authorization": self.headers.get("Authorization", ""),
                      "X-Fake-Inner": "1"}
                hs.update(r.get("headers") or {})
                req = urllib.request.Request(
                    "http://127.0.0.1:%d/v1.0%s" % (
                        self.server.server_address[1], r["url"]),
                    headers=hs, method="GET")
                try:
                    with urllib.request.urlopen(req, timeout=30) as a:
                        st, raw = a.status, a.read()
                except urllib.error.HTTPError as e:
                    st, raw = e.code, e.read()
                out.append({"id": str(r.get("id")), "status": st,
                            "headers": {"Content-Type": "application/json"},
                            "body": json.loads(raw) if raw else None})
            status = 200
            self.send_graph(200, {"responses": out})
        except GraphError as e:
            status = e.status
            self.send_graph_error(e)
        finally:
            state.end(None, status, "batch")

    def delta(self, mailbox, raw_segs, q, prefer, slow):
        state = self.server.state
        ol = state.outlook
        base = "http://%s%s/calendarView/delta" % (
            self.headers.get("Host") or "127.0.0.1",
            "/".join([""] + raw_segs[:3]))
        page_size = graph_outlook.DELTA_PAGE
        pv = prefer_values(prefer)
        if pv.get("odata.maxpagesize", "").isdigit():
            page_size = max(1, int(pv["odata.maxpagesize"]))
        dtok, stok = q.get("deltatoken"), q.get("skiptoken")
        with state.lock:
            gen = ol.gen.get(mailbox, 0)
            if dtok is not None or stok is not None:
                t = graph_outlook.unb64(dtok if dtok is not None else stok)
                if not isinstance(t, dict) or t.get("m") != mailbox or \
                        t.get("g") != gen:
                    raise GraphError(410, "SyncStateNotFound",
                                     "The sync state generation is not "
                                     "found; generation=%s;[highest=%d]"
                                     % (t.get("g") if isinstance(t, dict)
                                        else "?", gen),
                                     [("Location", base + "?$deltatoken=")])
                window = (graph_outlook.to_dt(t["s"]),
                          graph_outlook.to_dt(t["e"]))
                since = t["q"]
                upto = t.get("u", ol.seq) if stok is not None else ol.seq
                offset = t.get("o", 0) if stok is not None else 0
            else:
                s, e = q.plain.get("startDateTime"), q.plain.get("endDateTime")
                if not s or not e:
                    raise GraphError(400, "ErrorInvalidParameter",
                                     "This request requires a time window "
                                     "specified by the query string "
                                     "parameters StartDateTime and "
                                     "EndDateTime.")
                window = (parse_query_dt(s, "startDateTime"),
                          parse_query_dt(e, "endDateTime"))
                since, upto, offset = 0, ol.seq, 0
            entries, more = ol.delta_page(mailbox, window, since, upto,
                                          offset, page_size)
            view = View()
            value = []
            for _, kind, x in entries:
                if kind == "ev":
                    value.append(render_event(x, view))
                else:
                    value.append(OrderedDict([
                        ("@odata.type", "#microsoft.graph.event"),
                        ("id", x), ("@removed", {"reason": "deleted"})]))
        tok = {"m": mailbox, "g": gen, "s": int(window[0].timestamp()),
               "e": int(window[1].timestamp()), "q": since}
        out = OrderedDict([("@odata.context", GRAPH_ORIGIN +
                            "/$metadata#Collection(event)")])
        if more:
            tok.update({"u": upto, "o": offset + len(entries)})
            out["@odata.nextLink"] = base + "?$skiptoken=" + \
                graph_outlook.b64(tok)
        else:
            tok["q"] = upto
            out["@odata.deltaLink"] = base + "?$deltatoken=" + \
                graph_outlook.b64(tok)
        out["value"] = value
        self.send_graph(200, out, (), slow)
        return "delta", 200

    def decline(self, mailbox, event_id, body, slow):
        state = self.server.state
        obj = self.json_body(body, allow_empty=True)
        if not isinstance(obj, dict) or set(obj) - {"comment",
                                                    "sendResponse",
                                                    "proposedNewTime"}:
            raise GraphError(400, "RequestBodyRead", "decline takes comment, "
                             "sendResponse and proposedNewTime.")
        with state.lock:
            ev = state.find(mailbox, event_id)
            ev["extra"]["response"] = "declined"
            ev["modified"] = utc_now()
            ev["changeKey"] = new_change_key()
            state.outlook.declined.append({
                "mailbox": mailbox, "id": event_id, "iCalUId": ev["iCalUId"],
                "comment": obj.get("comment", ""),
                "sendResponse": obj.get("sendResponse", True)})
            state.touch(mailbox, ev, "updated")
        self.send_graph(202, None, (), slow)
        return "declineEvent", 202

    def outlook_control(self, method, path, obj):
        """/__fake/outlook/...: what people do in Outlook, and faults."""
        state = self.server.state
        ol = state.outlook
        what = path[len("/__fake/outlook/"):]
        if what == "state" and method == "GET":
            with state.lock:
                out = {"subscriptions": [
                    {"id": x["id"], "mailbox": x["mailbox"],
                     "clientState": x["clientState"],
                     "expiration": graph_outlook.stamp(x["expiration"]),
                     "notificationUrl": x["notificationUrl"],
                     "lifecycleNotificationUrl":
                         x["lifecycleNotificationUrl"]}
                    for x in ol.subs.values()],
                    "declined": list(ol.declined),
                    "held": len(ol.delivery.held), "queued": ol.outbox.qsize(),
                    "validations": ol.validations,
                    "deliveries": [{"status": st, "ms": round(ms, 2)}
                                   for st, ms in ol.delivered]}
            self.send_json(200, out)
            return
        if method != "POST" or not isinstance(obj, dict):
            raise ValueError("POST a JSON object")
        if what == "notify":
            with state.lock:
                ol.delivery.set_locked(obj)
            self.send_json(200, {"ok": True})
        elif what == "flush":
            self.send_json(200, {"delivered": ol.flush()})
        elif what == "lifecycle":
            st = ol.lifecycle(obj.get("subscriptionId"), obj.get("event"))
            if st is None:
                self.send_json(404, {"error": "no such subscription"})
            else:
                self.send_json(200, {"status": st})
        elif what == "expire-delta":
            mbx = str(obj.get("mailbox", "")).lower()
            with state.lock:
                ol.gen[mbx] = ol.gen.get(mbx, 0) + 1
            self.send_json(200, {"ok": True})
        elif what == "book":
            self.send_json(201, self.outlook_book(obj))
        elif what in ("change", "cancel"):
            self.send_json(200, self.outlook_change(what, obj))
        else:
            self.send_json(404, {"error": "no such control endpoint"})

    def outlook_copy(self, room, ical):
        state = self.server.state
        for ev in state.boxes.get(room, {}).values():
            if ev["iCalUId"] == ical:
                return ev
        raise ValueError("no copy of %s in %s" % (ical, room))

    def outlook_book(self, obj):
        """A person books a room: the room's copy, then its processing."""
        state = self.server.state
        room = str(obj.get("room", "")).lower()
        org = obj.get("organizer") or {}
        if not state.known_mailbox(room) or not isinstance(org, dict) or \
                "address" not in org:
            raise ValueError("expected {room, organizer:{name,address}, "
                             "subject, start, end}")
        ch = validate_event({
            "subject": obj.get("subject", ""),
            "start": {"dateTime": obj["start"], "timeZone": "UTC"},
            "end": {"dateTime": obj["end"], "timeZone": "UTC"},
            "organizer": {"emailAddress": org},
            "attendees": [{"type": "resource", "emailAddress": {
                "address": room, "name": room.split("@")[0]}}],
            "location": {"displayName": room.split("@")[0],
                         "locationEmailAddress": room}}, True)
        try:
            ev, _ = state.create(room, ch)
        except GraphError as e:
            raise ValueError(e.message)
        with state.lock:
            if obj.get("ical"):
                ev["iCalUId"] = obj["ical"]
            ev["extra"]["response"] = "tentativelyAccepted"
            ical = ev["iCalUId"]
        rewrite = obj.get("rewrite", True)

        def process():
            time.sleep(self.server.state.outlook.processing)
            with state.lock:
                box = state.boxes.get(room, {})
                cur = box.get(ev["id"])
                if cur is None:
                    return
                cur["extra"]["response"] = "accepted"
                if rewrite:
                    cur["subject"] = org.get("name") or org["address"]
                cur["modified"] = utc_now()
                cur["changeKey"] = new_change_key()
                state.touch(room, cur, "updated")
        threading.Thread(target=process, daemon=True).start()
        return {"id": ev["id"], "iCalUId": ical, "room": room}

    def outlook_change(self, what, obj):
        state = self.server.state
        room = str(obj.get("room", "")).lower()
        with state.lock:
            ev = self.outlook_copy(room, obj.get("ical"))
        if what == "cancel" and obj.get("delete"):
            state.remove(room, ev["id"])
            return {"deleted": ev["id"]}
        if what == "cancel":
            with state.lock:
                ev["extra"]["isCancelled"] = True
                ev["subject"] = "Canceled: " + ev["subject"]
                ev["modified"] = utc_now()
                ev["changeKey"] = new_change_key()
                state.touch(room, ev, "updated")
            return {"cancelled": ev["id"]}
        ch = {}
        for k in ("start", "end"):
            if k in obj:
                ch[k] = parse_dtz({"dateTime": obj[k], "timeZone": "UTC"}, k)
        if "subject" in obj:
            ch["subject"] = obj["subject"]
        state.update(room, ev["id"], ch, None)
        return {"changed": ev["id"]}

    @staticmethod
    def skiptoken(q):
        tok = q.get("skiptoken")
        if q.get("skip") is not None:
            raise bad_request("$skip is not supported on calendarView; "
                              "follow @odata.nextLink.", code="BadRequest")
        if tok is None:
            return 0
        try:
            raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
            kind, _, n = raw.decode("ascii").partition(":")
            n = int(n)
            if kind != "fake-cv" or n < 0:
                raise ValueError
            return n
        except (ValueError, UnicodeDecodeError):
            raise bad_request("The $skiptoken '%s' is not valid." % tok,
                              code="BadRequest")

    @staticmethod
    def next_link(base, query, offset, view):
        pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                 if k.lstrip("$").lower() not in ("skip", "skiptoken")]
        if view:
            pairs.append(("$skiptoken",
                          b64url(("fake-cv:%d" % offset).encode("ascii"))))
        else:
            pairs.append(("$skip", str(offset)))
        return base + "?" + urlencode(pairs, quote_via=quote, safe="")

    # -- control endpoints (no auth) ---------------------------------------

    def control(self, method, path, body):
        state = self.server.state
        obj = None
        if method == "POST" and body.strip():
            try:
                obj = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                self.send_json(400, {"error": "invalid JSON: %s" % e})
                return
        try:
            if path == "/__fake/stats" and method == "GET":
                self.send_json(200, state.stats())
            elif path == "/__fake/reset" and method == "POST":
                state.reset()
                self.send_json(200, {"ok": True})
            elif path == "/__fake/reset-stats" and method == "POST":
                with state.lock:
                    state.reset_stats_locked()
                self.send_json(200, {"ok": True})
            elif path == "/__fake/faults" and method in ("GET", "POST"):
                self.send_json(200, state.faults.control(method, obj))
            elif path == "/__fake/expire-tokens" and method == "POST":
                with state.lock:
                    n = len(state.tokens)
                    state.tokens = {}
                self.send_json(200, {"ok": True, "expired": n})
            elif path == "/__fake/events" and method == "GET":
                view = View(all_props=True, raw_body=True)
                with state.lock:
                    out = {m: [render_event(ev, view) for ev in box.values()]
                           for m, box in sorted(state.boxes.items())}
                self.send_json(200, out)
            elif path == "/__fake/events" and method == "POST":
                self.control_seed(obj)
            elif path.startswith("/__fake/events/") and method == "DELETE":
                parts = path[len("/__fake/events/"):].split("/")
                if len(parts) != 2 or not all(parts):
                    raise ValueError("expected /__fake/events/MAILBOX/ID")
                try:
                    state.remove(unquote(parts[0]).lower(), unquote(parts[1]))
                except GraphError:
                    self.send_json(404, {"error": "no such event"})
                    return
                self.send_all(204, b"")
            elif path.startswith("/__fake/outlook/"):
                self.outlook_control(method, path, obj)
            elif path == "/__fake/cancelled" and method == "GET":
                with state.lock:
                    self.send_json(200, {"cancelled": list(state.cancelled)})
            else:
                self.send_json(404, {"error": "no such control endpoint"})
        except ValueError as e:
            self.send_json(400, {"error": str(e)})

    def control_seed(self, obj):
        state = self.server.state
        if not isinstance(obj, dict) or not isinstance(obj.get("mailbox"),
                                                       str):
            raise ValueError("expected {\"mailbox\":..,\"event\":{..}}")
        mailbox = obj["mailbox"].strip().lower()
        if not state.known_mailbox(mailbox):
            raise ValueError("mailbox %s is not served (see --tenant and "
                             "--mailboxes)" % mailbox)
        try:
            ch = validate_event(obj.get("event"), True)
            ev, _ = state.create(mailbox, ch)
        except GraphError as e:
            raise ValueError(e.message)
        with state.lock:
            out = render_event(ev, View(all_props=True, raw_body=True))
        self.send_json(201, out)


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Fake Microsoft Graph (token endpoint and room "
                    "calendars) for tdhook's tests.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--tenant", default="contoso.onmicrosoft.com")
    p.add_argument("--client-id", default="00000000-0000-0000-0000-000000000000")
    p.add_argument("--client-secret", default="secret")
    p.add_argument("--token-ttl", type=int, default=3599)
    p.add_argument("--mailboxes", default=None,
                   help="comma-separated mailboxes served besides those in "
                        "the tenant's domain")
    p.add_argument("--mailbox-concurrency", type=int, default=4,
                   help="requests in flight per mailbox before 429 "
                        "(0: no limit)")
    p.add_argument("--max-sub-minutes", type=int,
                   default=graph_outlook.MAX_SUB_MINUTES,
                   help="the longest subscription life Graph grants")
    p.add_argument("--room-processing-ms", type=int, default=300,
                   help="how long a room takes to accept a booking and "
                        "rewrite its subject")
    p.add_argument("--seed", type=int, default=42,
                   help="seed of the fault 'ratio' dice")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.token_ttl < 1:
        p.error("--token-ttl must be at least 1")

    state = State(args)
    server = fakebase.Server(("127.0.0.1", args.port), Handler)
    server.state = state
    return fakebase.serve(server, args.port_file,
                          "fake-graph: listening on 127.0.0.1:%%d, tenant %s" % args.tenant
                          if args.verbose else None)

if __name__ == "__main__":
    sys.exit(main())
