#!/usr/bin/python3
"""Fake TOPdesk server for tdhook's tests, demo and benchmarks.

Serves the parts of the TOPdesk Asset Management API that tdhook uses, with
the shapes of the official Assets API specification 1.91.1, on 127.0.0.1.
Python standard library only.  See tests/fakes/README.md for the flags, the
data sets and the control endpoints (/__fake/...).

Run:  /usr/bin/python3 tests/fakes/topdesk.py --port 0 --port-file FILE
"""

import argparse
import base64
import bisect
import json
import os
import random
import re
import socket
import sys
import threading
import time
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

# faults.py lies beside this file; no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import faults  # noqa: E402
import fakebase  # noqa: E402

# The link type (capability) "asset is in stock".
STOCK_CAPABILITY = "dad98dad-054b-41ae-a727-3e3b37342739"

MT_ASSETS = "application/x.topdesk-am-assets-v2+json"
MT_FIELDS = "application/x.topdesk-am-fields-v2+json"
MT_ASSIGNMENTS = "application/x.topdesk-am-assignments-v1+json"
MT_STOCK_QUANTITIES = "application/x.topdesk-am-stock-quantities-v0+json"
MT_JSON = "application/json"

MAX_PAGE_SIZE = 1000
API_PREFIX = "/tas/api/"
AM_PREFIX = "/tas/api/assetmgmt"

DEFAULT_FIELD = {"id": "minimale-voorraad", "name": "Minimale voorraad"}
DEFAULT_BULK_TEMPLATE = {"name": "Verbruiksartikelen", "icon": "bulk_item"}
STOCK_TEMPLATE = {"name": "Voorraad", "icon": "stock"}
ASSET_TEMPLATE = {"name": "Hardware", "icon": "hardware"}

STATUS_TEXT = {
    200: "OK", 206: "Partial Content", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
    429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


class ApiError(Exception):
    """An answer other than success, with a TOPdesk-shaped body."""

    def __init__(self, status, code="", message="", applies_to=None,
                 empty=False, headers=None, shape=None):
        super().__init__(message)
        # "errors" {"errors":[...]} (default) or "messages" [{"message"}]
        # (Supporting Files).
        self.shape = shape
        self.status = status
        self.code = code
        self.message = message
        self.applies_to = applies_to or []
        self.empty = empty
        self.headers = headers or []

    def body(self):
        if self.empty:
            return b""
        if self.shape == "messages":
            return dump_json([{"message": self.message}])
        return dump_json({"errors": [{
            "errorCode": self.code,
            "appliesTo": self.applies_to,
            "errorMessage": self.message,
        }]})


def dump_json(obj):
    return json.dumps(obj, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def sort_key(name):
    return (name.casefold(), name)


def fake_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def derived_uuid(*parts):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tdhook-fake:" + "/".join(parts)))


def fake_etag(rng):
    return "2024-%02d-%02dT%02d:%02d:%02d.%03d" % (
        rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
        rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999))


# ---------------------------------------------------------------------------
# Data set generators.  Each returns the JSON form documented in README.md.

DEMO_BRANCHES = {
    "utrecht": "Hoofdkantoor Utrecht",
    "amsterdam": "Vestiging Amsterdam",
    "antwerpen": "Vestiging Antwerpen",
}
DEMO_LOCATIONS = {
    "magazijn-utrecht": ("Magazijn Utrecht", "utrecht"),
    "servicedesk-amsterdam": ("Servicedesk Amsterdam", "amsterdam"),
    "magazijn-antwerpen": ("Magazijn Antwerpen", "antwerpen"),
}


def gen_demo(seed, now):
    """A small, realistic Dutch organisation."""
    rng = random.Random(seed)
    branches = {k: {"id": fake_uuid(rng), "name": v}
                for k, v in DEMO_BRANCHES.items()}
    locations = {k: ({"id": fake_uuid(rng), "name": v[0]}, branches[v[1]])
                 for k, v in DEMO_LOCATIONS.items()}
    bulk = {}

    def bulk_item(name):
        if name not in bulk:
            bulk[name] = fake_uuid(rng)
        return bulk[name]

    # (name, archived, minimum, location key | ("branch", key) | None,
    #  assets, [(bulk item, quantity)])
    rows = [
        ("Laptops", False, 10, "magazijn-utrecht", 7, []),
        ("Monitoren", False, 8, "magazijn-utrecht", 12, []),
        ("Toners HP 26A", False, 5, "servicedesk-amsterdam", 0,
         [("Toner HP 26A zwart", 3)]),
        ("Muizen en toetsenborden", False, None, "servicedesk-amsterdam", 0,
         [("Muis Logitech M185", 14), ("Toetsenbord Logitech K120", 9)]),
        ("Headsets", False, 6, ("branch", "utrecht"), 6, []),
        ("Dockingstations", True, 4, "magazijn-utrecht", 1, []),
        ("Kabels & adapters — België", False, 20, "magazijn-antwerpen", 0,
         [("USB-C naar HDMI adapter", 4), ("HDMI-kabel 2 m", 11)]),
        ("Überwachung", False, 2, None, 3, []),
        ("Toners HP 05A", False, 4, "magazijn-utrecht", 0,
         [("Toner HP 26A zwart", 2), ("Toner HP 05A zwart", 6)]),
    ]
    stocks = []
    for name, archived, minimum, where, assets, items in rows:
        location = branch = None
        if isinstance(where, tuple):
            branch = branches[where[1]]
        elif where is not None:
            location, branch = locations[where]
        stocks.append({
            "id": fake_uuid(rng),
            "name": name,
            "archived": archived,
            "minimum": minimum,
            "location": location,
            "branch": branch,
            "assets": assets,
            "bulk": [{"id": bulk_item(b), "name": b, "quantity": q}
                     for b, q in items],
        })
    data = {"field": dict(DEFAULT_FIELD), "stocks": stocks}
    data.update(demo_org(seed, branches, now, locations))
    return data


GEN_KINDS = [
    "Laptops", "Monitoren", "Toners", "Headsets", "Dockingstations",
    "Kabels & adapters", "Muizen", "Toetsenborden", "Telefoons", "Tablets",
    "Printers", "Beamers", "Webcams", "Überwachung", "Reserveonderdelen",
]
GEN_PLACES = [
    "Utrecht", "Amsterdam", "Rotterdam", "Den Haag", "Groningen",
    "Eindhoven", "Zwolle", "België", "Zürich", "Malmö", "Maastricht", "Kraków",
]
GEN_BULK = [
    "Toner HP 26A zwart", "Toner HP 05A zwart", "Muis Logitech M185",
    "Toetsenbord Logitech K120", "USB-C naar HDMI adapter", "HDMI-kabel 2 m",
    "Netwerkkabel Cat6 3 m", "Batterijen AA", "Oordopjes headset",
    "USB-stick 32 GB", "Laptoptas 15 inch", "Voedingsadapter 65 W",
    "Displayreiniger", "Kabelbinders", "Papier A4 (doos)", "Nietjes 24/6",
    "Adaptateur DisplayPort – VGA", "Ladekabel Lightning", "SIM-kaart",
    "Privacyfilter 14 inch",
]


def gen_synthetic(seed, n_stocks, n_assets):
    """n_stocks stock rooms holding n_assets linked assets in total."""
    rng = random.Random(seed)
    branches = [{"id": fake_uuid(rng), "name": "Vestiging " + p}
                for p in GEN_PLACES]
    locations = []
    for i, p in enumerate(GEN_PLACES):
        for room in ("Magazijn", "Servicedesk"):
            locations.append(({"id": fake_uuid(rng), "name": room + " " + p},
                              branches[i]))
    bulk = [{"id": fake_uuid(rng), "name": n} for n in GEN_BULK]

    weights = [rng.random() ** 2 for _ in range(n_stocks)]
    total_w = sum(weights) or 1.0
    counts = [int(n_assets * w / total_w) for w in weights]
    for i in range(n_assets - sum(counts)):
        counts[i % n_stocks] += 1

    seen = {}
    stocks = []
    for i in range(n_stocks):
        base = "%s — %s" % (rng.choice(GEN_KINDS), rng.choice(GEN_PLACES))
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else "%s %d" % (base, seen[base])
        where = rng.random()
        location = branch = None
        if where < 0.75:
            location, branch = rng.choice(locations)
        elif where < 0.9:
            branch = rng.choice(branches)
        items = []
        if rng.random() < 0.3:
            for b in rng.sample(bulk, rng.randint(1, 4)):
                items.append({"id": b["id"], "name": b["name"],
                              "quantity": rng.randint(0, 40)})
        total = counts[i] + sum(b["quantity"] for b in items)
        r = rng.random()
        if r < 0.15:
            minimum = None
        elif r < 0.45:
            minimum = total + rng.randint(1, 10)     # under its minimum
        else:
            minimum = rng.randint(0, total)          # at or above it
        stocks.append({
            "id": fake_uuid(rng),
            "name": name,
            "archived": rng.random() < 0.05,
            "minimum": minimum,
            "location": location,
            "branch": branch,
            "assets": counts[i],
            "bulk": items,
        })
    return {"field": dict(DEFAULT_FIELD), "stocks": stocks}


# Sizes of the reservations side of the generated data sets:
# (rooms, persons, reservations).
ORG_SIZES = {"small": (6, 10, 8), "1k": (12, 250, 100),
             "100k": (40, 2500, 1000)}


def generate(name, seed, now):
    """The JSON form of data set name; now places the reservations."""
    if name == "demo":
        return gen_demo(seed, now)
    if name in ORG_SIZES:
        sizes = {"small": (10, 10), "1k": (100, 1000), "100k": (1000, 100000)}
        data = gen_synthetic(seed, *sizes[name])
        data.update(synthetic_org(seed, *ORG_SIZES[name], now))
        return data
    with open(name, "r", encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and "stocks" not in data and any(
            k in data for k in Org.KEYS):
        data["stocks"] = []
    return data


# ---------------------------------------------------------------------------
# The loaded data set, indexed for fast paging.  Immutable once built: a
# replacement (POST /__fake/data, /__fake/field) builds a new one.

class DataError(ValueError):
    pass


def _check_ref(obj, what):
    if obj is None:
        return None
    if (not isinstance(obj, dict) or not isinstance(obj.get("id"), str)
            or not isinstance(obj.get("name"), str)):
        raise DataError(what + " must be null or {\"id\",\"name\"}")
    return {"id": obj["id"], "name": obj["name"]}


class Dataset:
    def __init__(self, data, tag):
        if not isinstance(data, dict) or not isinstance(data.get("stocks"),
                                                         list):
            raise DataError("data set must be an object with \"stocks\"")
        self.tag = tag
        self.field = _check_ref(data.get("field"), "field")
        stocks = []
        ids = set()
        for s in data["stocks"]:
            if not isinstance(s, dict):
                raise DataError("each stock must be an object")
            sid, name = s.get("id"), s.get("name")
            if not isinstance(sid, str) or not isinstance(name, str):
                raise DataError("each stock needs string \"id\" and \"name\"")
            if sid in ids:
                raise DataError("duplicate stock id " + sid)
            ids.add(sid)
            minimum = s.get("minimum")
            if minimum is not None and (isinstance(minimum, bool) or
                                        not isinstance(minimum, (int, float))):
                raise DataError("stock %s: minimum must be a number or null"
                                % sid)
            assets = s.get("assets", 0)
            if isinstance(assets, bool) or not isinstance(assets, int) \
                    or assets < 0:
                raise DataError("stock %s: assets must be an int >= 0" % sid)
            bulk = []
            for b in s.get("bulk", []) or []:
                if (not isinstance(b, dict) or not isinstance(b.get("id"), str)
                        or not isinstance(b.get("name"), str)
                        or isinstance(b.get("quantity"), bool)
                        or not isinstance(b.get("quantity"), int)):
                    raise DataError("stock %s: bulk entries need id, name, "
                                    "quantity" % sid)
                template = b.get("template") or DEFAULT_BULK_TEMPLATE
                if (not isinstance(template, dict)
                        or not isinstance(template.get("name"), str)):
                    raise DataError("stock %s: a bulk template needs a name"
                                    % sid)
                bulk.append({"id": b["id"], "name": b["name"],
                             "quantity": b["quantity"], "template": template})
            rng = random.Random(zlib.crc32(sid.encode("utf-8")))
            location = _check_ref(s.get("location"), "location")
            branch = _check_ref(s.get("branch"), "branch")
            stocks.append({
                "id": sid, "name": name, "archived": bool(s.get("archived")),
                "minimum": minimum, "location": location, "branch": branch,
                "assets": assets, "bulk": bulk,
                "etag": fake_etag(rng),
                "link_id": derived_uuid("link", sid),
                # An empty number field is left out of some items and null
                # in others, so a client must handle both.
                "omit_empty": zlib.crc32(sid.encode("utf-8")) & 1 == 1,
            })
        stocks.sort(key=lambda s: (sort_key(s["name"]), s["id"]))
        if len(stocks) > 0xffff:
            raise DataError("at most 65535 stocks")
        self.stocks = stocks
        self.stock_index = {s["id"]: i for i, s in enumerate(stocks)}

        # Linked assets are synthesised on demand: asset k (0-based over all
        # stocks in name order) belongs to stock si with cum[si] <= k <
        # cum[si+1].
        self.cum = [0]
        for s in stocks:
            self.cum.append(self.cum[-1] + s["assets"])
        self.n_assets = self.cum[-1]
        self.w_stock = max(4, len(str(len(stocks))))
        self.w_asset = max(5, len(str(max([s["assets"] for s in stocks]
                                          or [0]))))

        # Bulk items and the stock quantity relations.
        self.bulk_items = {}
        self.rel_by_stock = {}
        self.rel_by_bulk = {}
        for s in stocks:
            rels = []
            for b in s["bulk"]:
                self.bulk_items.setdefault(b["id"], {
                    "id": b["id"], "name": b["name"],
                    "template": b["template"],
                    "etag": fake_etag(random.Random(b["id"])),
                })
                rel = {
                    "id": derived_uuid("sq", s["id"], b["id"]),
                    "quantity": b["quantity"],
                    "etag": "%08x" % zlib.crc32(("%s/%s/%d" % (
                        s["id"], b["id"], b["quantity"])).encode("utf-8")),
                    "stock": s,
                    "bulk": self.bulk_items[b["id"]],
                }
                rels.append(rel)
                self.rel_by_bulk.setdefault(b["id"], []).append(rel)
            rels.sort(key=lambda r: (sort_key(r["bulk"]["name"]), r["id"]))
            self.rel_by_stock[s["id"]] = rels
        for rels in self.rel_by_bulk.values():
            rels.sort(key=lambda r: (sort_key(r["stock"]["name"]), r["id"]))
        self.bulk_list = sorted(self.bulk_items.values(),
                                key=lambda b: (sort_key(b["name"]), b["id"]))

    def to_json(self):
        """The data set in the form POST /__fake/data accepts."""
        return {
            "field": dict(self.field) if self.field else None,
            "stocks": [{
                "id": s["id"], "name": s["name"], "archived": s["archived"],
                "minimum": s["minimum"],
                "location": dict(s["location"]) if s["location"] else None,
                "branch": dict(s["branch"]) if s["branch"] else None,
                "assets": s["assets"],
                "bulk": [self._bulk_json(b) for b in s["bulk"]],
            } for s in self.stocks],
        }

    @staticmethod
    def _bulk_json(b):
        out = {"id": b["id"], "name": b["name"], "quantity": b["quantity"]}
        if b["template"] is not DEFAULT_BULK_TEMPLATE:
            out["template"] = b["template"]
        return out

    def with_field(self, field):
        data = self.to_json()
        data["field"] = field
        return Dataset(data, self.tag)

    # Assets: k is the global index, (si, j) the stock index and position.
    def asset_locate(self, k):
        si = bisect.bisect_right(self.cum, k) - 1
        return si, k - self.cum[si]

    def asset_id(self, si, j):
        return "%08x-%04x-4000-a000-%012x" % (self.tag, si, j)

    def asset_name(self, si, j):
        return "OBJ-%0*d-%0*d" % (self.w_stock, si + 1, self.w_asset, j + 1)

    def asset_by_id(self, aid):
        parts = aid.split("-")
        if (len(parts) != 5 or parts[0] != "%08x" % self.tag
                or parts[2] != "4000" or parts[3] != "a000"):
            return None
        try:
            si, j = int(parts[1], 16), int(parts[4], 16)
        except ValueError:
            return None
        if si >= len(self.stocks) or j >= self.stocks[si]["assets"]:
            return None
        return si, j


# ---------------------------------------------------------------------------
# Record sequences for GET /assets.  Each is sorted by name and indexable,
# so paging and lastSeenName stay cheap with 100k synthesised assets.

class AssetRanges:
    """The assets whose global index lies in one of the given ranges."""

    def __init__(self, ds, ranges):
        self.ds = ds
        self.ranges = [(lo, hi) for lo, hi in ranges if hi > lo]
        self.starts = []
        n = 0
        for lo, hi in self.ranges:
            self.starts.append(n)
            n += hi - lo
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i < 0 or i >= self.n:
            raise IndexError(i)
        r = bisect.bisect_right(self.starts, i) - 1
        return ("asset",) + self.ds.asset_locate(
            self.ranges[r][0] + i - self.starts[r])


class Reversed:
    def __init__(self, seq):
        self.seq = seq

    def __len__(self):
        return len(self.seq)

    def __getitem__(self, i):
        if i < 0 or i >= len(self.seq):
            raise IndexError(i)
        return self.seq[len(self.seq) - 1 - i]


# ---------------------------------------------------------------------------
# Shared server state.

class State:
    def __init__(self, dataset, args, org=None):
        self.lock = threading.Lock()
        self.dataset = dataset
        self.org = org if org is not None else Org({})
        self.denied = []
        self.cache = {}
        self.user = args.user
        self.password = args.password
        self.latency = args.latency_ms / 1000.0
        self.max_page = args.max_page
        self.verbose = args.verbose
        self.faults = faults.Rules(args.seed)
        self.conflicts = "refuse"    # or "conflicting": see ep_create_reservation
        self.reset_stats()

    def set_dataset(self, ds):
        with self.lock:
            self.dataset = ds
            self.cache = {}

    def answer(self, path, query, handler, extra):
        """Runs an endpoint on one consistent data set snapshot.

        The data set is immutable, so answers are cached by path and query
        until it is replaced: repeated pages (benchmarks) cost nothing.
        ApiError passes through uncached.
        """
        key = (path, query)
        with self.lock:
            ds = self.dataset
            hit = self.cache.get(key)
        if hit is not None and hit[0] is ds:
            return hit[1]
        st, ctype, obj = handler(self, ds, Query(query), *extra)
        result = (st, ctype, dump_json(obj))
        with self.lock:
            if self.dataset is ds:
                if len(self.cache) >= 1024:
                    self.cache = {}
                self.cache[key] = (ds, result)
        return result

    def reset_stats(self):
        with self.lock:
            self.requests = 0
            self.by_path = {}
            self.statuses = {}
            self.dropped = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.by_method = {}
            self.patches = []
            self.writes = []

    def begin(self, path, method="GET"):
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
            self.by_method[method] = self.by_method.get(method, 0) + 1
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight

    def end(self, status):
        with self.lock:
            self.in_flight -= 1
            if status is None:
                self.dropped += 1
            else:
                key = str(status)
                self.statuses[key] = self.statuses.get(key, 0) + 1

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight,
                "statuses": dict(self.statuses),
                "dropped": self.dropped,
                "by_method": dict(self.by_method),
                "patches": [dict(p) for p in self.patches],
                "writes": [dict(p) for p in self.writes],
            }

    def record_write(self, method, path, body, status):
        """Keeps the last 1000 writes (POST, PATCH, ...) for /__fake/stats."""
        try:
            obj = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            obj = body.decode("utf-8", "replace")
        with self.lock:
            self.writes.append({"method": method, "path": unquote(path),
                                "body": obj, "status": status})
            del self.writes[:-1000]

    def record_patch(self, path, body, status):
        """Keeps the last 1000 PATCH requests for GET /__fake/stats."""
        try:
            obj = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            obj = body.decode("utf-8", "replace")
        with self.lock:
            self.patches.append({"path": unquote(path), "body": obj,
                                 "status": status})
            del self.patches[:-1000]


# ---------------------------------------------------------------------------
# Request helpers.

def accepts(accept_header, offered):
    """True when the Accept header admits one of the offered media types."""
    if accept_header is None or not accept_header.strip():
        return True
    for part in accept_header.split(","):
        bits = [b.strip() for b in part.split(";")]
        mt = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.lower().startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if mt == "*/*":
            return True
        for o in offered:
            if mt == o or (mt.endswith("/*") and o.startswith(mt[:-1])):
                return True
    return False


class Query:
    """The query string, with the typed getters the endpoints need."""

    def __init__(self, qs):
        self.params = parse_qs(qs, keep_blank_values=True)

    def has(self, name):
        return name in self.params

    def get(self, name, default=None):
        v = self.params.get(name)
        return v[-1] if v else default

    def getall(self, name):
        return self.params.get(name, [])

    def boolean(self, name, default):
        v = self.get(name)
        if v is None:
            return default
        if v.lower() == "true":
            return True
        if v.lower() == "false":
            return False
        raise ApiError(400, "invalid_value", "%s must be true or false" % name,
                       [name])

    def integer(self, name, default, lo, hi):
        v = self.get(name)
        if v is None:
            return default
        try:
            n = int(v.strip())
        except ValueError:
            raise ApiError(400, "invalid_number",
                           "%s must be a number" % name, [name]) from None
        if n < lo:
            raise ApiError(400, "value_too_small",
                           "%s must be between %d and %d, both inclusive"
                           % (name, lo, hi), [name])
        if n > hi:
            raise ApiError(400, "value_too_big",
                           "%s must be between %d and %d, both inclusive"
                           % (name, lo, hi), [name])
        return n

    def check_known(self, known):
        for name in self.params:
            if name not in known:
                raise ApiError(400, "unknown_parameter",
                               "the fake does not know the query parameter "
                               "'%s'" % name, [name])


# ---------------------------------------------------------------------------
# Endpoint family: /assetmgmt/fields

FIELD_CATALOGUE = [
    ("serienummer", "Serienummer", "textField",
     {"maxLength": 255, "multilineSupport": False}, "asset"),
    ("aanschafdatum", "Aanschafdatum", "dateTimeField",
     {"showTime": False}, "asset"),
    ("maximale-voorraad", "Maximale voorraad", "numberField",
     {"decimals": 0, "isCurrency": False, "minValue": 0, "maxValue": None},
     "stock"),
    ("leverancier", "Leverancier", "suggestField",
     {"ownOptions": False, "optionProperties": {"optionListType": "supplier"}},
     "asset"),
]


def field_list(ds):
    fields = []
    if ds.field is not None:
        fields.append((ds.field["id"], ds.field["name"], "numberField",
                       {"decimals": 0, "isCurrency": False, "minValue": 0,
                        "maxValue": None}, "stock"))
    fields.extend(FIELD_CATALOGUE)
    return fields


def ep_fields(state, ds, q):
    q.check_known({"searchTerm", "resourceCategory", "templateId",
                   "excludedTemplateId", "includeFromVisibleTemplatesOnly",
                   "includeInUse"})
    term = (q.get("searchTerm") or "").casefold()
    category = q.get("resourceCategory", "asset")
    if category not in ("asset", "stock", "bulkItem"):
        raise ApiError(400, "invalid_value",
                       "resourceCategory must be asset, stock or bulkItem",
                       ["resourceCategory"])
    include_in_use = q.boolean("includeInUse", False)
    q.boolean("includeFromVisibleTemplatesOnly", False)
    out = []
    for fid, name, ftype, props, cat in field_list(ds):
        if term and term not in name.casefold():
            continue
        item = {"id": fid, "name": name, "fieldType": ftype,
                "etag": "2024-10-07T12:44:14.%03d" % (zlib.crc32(
                    fid.encode("utf-8")) % 1000),
                "properties": props}
        if include_in_use:
            item["inUse"] = (cat == category)
        out.append(item)
    return 200, MT_FIELDS, {"fields": out}


# ---------------------------------------------------------------------------
# Endpoint family: /assetmgmt/assets and /assetmgmt/assets/{id}/assignments

ASSETS_PARAMS = {
    "nameFragment", "searchTerm", "templateId", "templateName",
    "includeTemplates", "archived", "fields", "showAssignments", "linkedTo",
    "notLinkedTo", "filterInherited", "assetStatus", "$filter", "$orderby",
    "lastSeenName", "lastSeenOrderbyValue", "linkableToAsset",
    "linkableWithDirection", "linkableWithCapability", "linkedToAsset",
    "linkedWithDirection", "linkedWithCapability", "resourceCategory",
    "includeInherited", "pageStart", "pageSize", "limit", "fetchData",
    "fetchCount", "resolveDropdownOptions",
}
# Parameters the fake cannot honour: a 400 beats a silently wrong answer.
ASSETS_UNSUPPORTED = {"$filter", "linkedTo", "notLinkedTo", "searchTerm",
                      "linkableToAsset", "linkableWithDirection",
                      "linkableWithCapability", "assetStatus"}


def stock_assignments(s):
    locations = []
    if s["location"] is not None:
        link = {"linkId": s["link_id"], "linkedObjectType": "location",
                "location": {"id": s["location"]["id"],
                             "name": s["location"]["name"],
                             "roomNumber": "", "archived": False,
                             "specification": ""}}
        if s["branch"] is not None:
            link["branch"] = {"id": s["branch"]["id"],
                              "name": s["branch"]["name"],
                              "archived": False, "specification": ""}
        locations.append(link)
    elif s["branch"] is not None:
        locations.append({"linkId": s["link_id"], "linkedObjectType": "branch",
                          "branch": {"id": s["branch"]["id"],
                                     "name": s["branch"]["name"],
                                     "archived": False, "specification": ""}})
    return {"locations": locations, "persons": []}


def record_name(ds, rec):
    if rec[0] == "asset":
        return ds.asset_name(rec[1], rec[2])
    return rec[1]["name"]


def render_record(ds, rec, fields, assignments):
    kind = rec[0]
    if kind == "asset":
        si, j = rec[1], rec[2]
        item = {"id": ds.asset_id(si, j), "name": ds.asset_name(si, j),
                "archived": False,
                "@etag": "2024-06-%02dT10:%02d:%02d.000" % (
                    1 + j % 28, j % 60, si % 60)}
        template, value = ASSET_TEMPLATE, None
    else:
        obj = rec[1]
        item = {"id": obj["id"], "name": obj["name"],
                "archived": bool(obj.get("archived", False)),
                "@etag": obj["etag"]}
        if kind == "stock":
            template, value = STOCK_TEMPLATE, obj
        else:
            template, value = obj["template"], None
    for f in fields:
        if f in item:
            continue
        if f == "@type":
            item[f] = {"name": template["name"], "icon": template["icon"]}
        elif f == "@@summary":
            item[f] = item["name"]
        elif f in ("modificationDate", "creationDate"):
            item[f] = item["@etag"]
        elif f == "@assignments":
            pass
        elif (kind == "stock" and ds.field is not None
              and f == ds.field["id"]):
            if value["minimum"] is not None:
                item[f] = value["minimum"]
            elif not value["omit_empty"]:
                item[f] = None
        # Any other field is not on this template: left out.
    if assignments:
        if kind == "stock":
            item["@assignments"] = stock_assignments(rec[1])
        else:
            item["@assignments"] = {"locations": [], "persons": []}
    return item


def columns_for(ds, fields, assignments):
    cols = [{"fieldName": "name", "displayName": "Naam", "fieldType": "text",
             "valueType": "TEXT", "sortable": True}]
    for f in fields:
        if f in ("name", "id", "archived", "@assignments"):
            continue
        if ds.field is not None and f == ds.field["id"]:
            cols.append({"fieldName": f, "displayName": ds.field["name"],
                         "fieldType": "number", "valueType": "NUMBER",
                         "sortable": True, "properties": {"decimals": 0}})
        elif f == "@type":
            cols.append({"fieldName": f, "displayName": "Type",
                         "fieldType": "type", "valueType": "COMPLEX",
                         "sortable": False})
        elif f in ("modificationDate", "creationDate"):
            cols.append({"fieldName": f, "displayName": f,
                         "fieldType": "date", "valueType": "DATE",
                         "sortable": True})
    if assignments:
        cols.append({"fieldName": "@assignments", "displayName": "Toewijzingen",
                     "fieldType": "assignments", "valueType": "COMPLEX",
                     "sortable": False})
    return cols


def link_filter(ds, q, category):
    """Applies linkedToAsset/linkedWithDirection/linkedWithCapability.

    Returns None (no link filter), or for assets a list of index ranges, or
    for stocks/bulk items True (keep all) / False (keep none).
    """
    target = q.get("linkedToAsset")
    direction = q.get("linkedWithDirection")
    cap = q.get("linkedWithCapability")
    if target is None and direction is None and cap is None:
        return None
    if target is None or direction is None:
        raise ApiError(400, "missing_parameter",
                       "linkedToAsset and linkedWithDirection go together",
                       ["linkedToAsset", "linkedWithDirection"])
    direction = direction.lower()
    if direction not in ("source", "target", "any", "none"):
        raise ApiError(400, "invalid_value",
                       "linkedWithDirection must be source, target, any or "
                       "none", ["linkedWithDirection"])
    # The only links in the fake: stock (source, parent) -> asset (target),
    # link type STOCK_CAPABILITY.  So relative to a stock, its assets are
    # found with direction source (or any).
    cap_ok = cap is not None and (cap == STOCK_CAPABILITY or cap == "any")
    linked_dir = direction in ("source", "any")
    if category != "asset":
        return direction == "none"
    everything = [(0, ds.n_assets)]
    if target == "any":
        # Every asset is linked to some stock.
        if direction == "none":
            return [] if cap_ok else everything
        return everything if (cap_ok and linked_dir) else []
    if target == "none":
        return [] if (cap_ok and linked_dir) else everything
    si = ds.stock_index.get(target)
    if si is None:
        return everything if direction == "none" else []
    own = (ds.cum[si], ds.cum[si + 1])
    if direction == "none":
        if not cap_ok:
            return everything
        return [(0, own[0]), (own[1], ds.n_assets)]
    return [own] if (cap_ok and linked_dir) else []


def ep_assets(state, ds, q):
    q.check_known(ASSETS_PARAMS)
    for name in ASSETS_UNSUPPORTED:
        if q.has(name):
            raise ApiError(400, "unsupported_by_fake",
                           "the fake TOPdesk does not implement '%s'" % name,
                           [name])
    category = q.get("resourceCategory", "asset")
    if category not in ("asset", "stock", "bulkItem"):
        raise ApiError(400, "invalid_value",
                       "resourceCategory must be asset, stock or bulkItem",
                       ["resourceCategory"])
    archived = q.boolean("archived", None)
    fetch_data = q.boolean("fetchData", True)
    fetch_count = q.boolean("fetchCount", False)
    show_assign = q.boolean("showAssignments", False)
    q.boolean("includeInherited", False)
    q.boolean("resolveDropdownOptions", False)
    page_size = q.integer("pageSize", 50, 0, MAX_PAGE_SIZE)
    if not q.has("pageSize") and q.has("limit"):
        limit = q.integer("limit", 50, 0, 1 << 62)
        page_size = limit if limit <= 50 else 50
    page_start = q.integer("pageStart", 0, 0, 1 << 62)
    last_name = q.get("lastSeenName")
    last_value = q.get("lastSeenOrderbyValue")
    if (last_name is None) != (last_value is None):
        raise ApiError(400, "missing_parameter",
                       "lastSeenName and lastSeenOrderbyValue go together",
                       ["lastSeenName", "lastSeenOrderbyValue"])
    if last_name is not None and q.has("pageStart"):
        raise ApiError(400, "invalid_combination",
                       "pageStart cannot be used with lastSeenName",
                       ["pageStart", "lastSeenName"])
    order = " ".join((q.get("$orderby") or "name asc").split()).lower()
    if order not in ("name", "name asc", "name desc"):
        raise ApiError(400, "unsupported_by_fake",
                       "the fake only orders by name", ["$orderby"])
    descending = order == "name desc"

    fields = []
    for v in q.getall("fields"):
        fields.extend(f.strip() for f in v.split(",") if f.strip())
    assignments = show_assign or "@assignments" in fields

    links = link_filter(ds, q, category)
    fragment = (q.get("nameFragment") or "").casefold()
    if category == "asset":
        if archived is True:
            seq = []
        else:
            seq = AssetRanges(ds, [(0, ds.n_assets)] if links is None
                              else links)
            if fragment:
                seq = [r for r in (seq[i] for i in range(len(seq)))
                       if fragment in record_name(ds, r).casefold()]
    else:
        source = ds.stocks if category == "stock" else ds.bulk_list
        kind = "stock" if category == "stock" else "bulkItem"
        if links is False:
            source = []
        seq = [(kind, o) for o in source
               if (archived is None or bool(o.get("archived")) == archived)
               and (not fragment or fragment in o["name"].casefold())]
    if descending:
        seq = Reversed(seq)
    start = page_start
    if last_name is not None:
        probe = sort_key(last_name)
        if descending:
            # Names in descending order: skip those >= lastSeenName.
            lo, hi = 0, len(seq)
            while lo < hi:
                mid = (lo + hi) // 2
                if sort_key(record_name(ds, seq[mid])) >= probe:
                    lo = mid + 1
                else:
                    hi = mid
            start = lo
        else:
            start = bisect.bisect_right(
                seq, probe, key=lambda r: sort_key(record_name(ds, r)))
    total = len(seq)
    effective = page_size
    if state.max_page is not None:
        effective = min(effective, state.max_page)
    end = min(total, start + effective)
    body = {"columns": columns_for(ds, fields, assignments), "dataSet": []}
    if fetch_data:
        body["dataSet"] = [render_record(ds, seq[i], fields, assignments)
                           for i in range(start, end)]
    if fetch_count:
        body["count"] = total
    status = 206 if end < total else 200
    return status, MT_ASSETS, body


def ep_assignments(state, ds, q, asset_id):
    q.check_known({"includeInherited", "limit"})
    q.boolean("includeInherited", False)
    if q.has("limit"):
        q.integer("limit", 1, 1, 1 << 62)
    si = ds.stock_index.get(asset_id)
    if si is not None:
        return 200, MT_ASSIGNMENTS, stock_assignments(ds.stocks[si])
    if asset_id in ds.bulk_items or ds.asset_by_id(asset_id) is not None:
        return 200, MT_ASSIGNMENTS, {"locations": [], "persons": []}
    raise ApiError(404, "not_found", "asset not found", ["assetId"])


# ---------------------------------------------------------------------------
# Endpoint family: /assetmgmt/stockQuantities

def sq_item(rel):
    s = rel["stock"]
    b = rel["bulk"]
    branch = s["branch"]
    return {
        "id": rel["id"],
        "quantity": rel["quantity"],
        "etag": rel["etag"],
        "bulkItem": {"id": b["id"], "name": b["name"],
                     "template": {"name": b["template"]["name"],
                                  "icon": b["template"].get("icon")}},
        "stock": {"id": s["id"], "name": s["name"], "icon": "stock",
                  "location": dict(s["location"]) if s["location"] else None,
                  "branch": dict(branch) if branch else None},
    }


def ep_stock_quantities(state, ds, q):
    q.check_known({"stockId", "bulkItemId", "pageSize", "lastSeenName"})
    stock_id = q.get("stockId")
    bulk_id = q.get("bulkItemId")
    if (stock_id is None) == (bulk_id is None):
        raise ApiError(400, "invalid_combination",
                       "exactly one of stockId and bulkItemId must be given",
                       ["stockId", "bulkItemId"])
    page_size = q.integer("pageSize", 100, 0, MAX_PAGE_SIZE)
    if stock_id is not None:
        if stock_id not in ds.stock_index:
            raise ApiError(400, "not_found", "stock does not exist",
                           ["stockId"])
        rels = ds.rel_by_stock[stock_id]
        name_of = lambda r: sort_key(r["bulk"]["name"])   # noqa: E731
    else:
        if bulk_id not in ds.bulk_items:
            raise ApiError(400, "not_found", "bulk item does not exist",
                           ["bulkItemId"])
        rels = ds.rel_by_bulk[bulk_id]
        name_of = lambda r: sort_key(r["stock"]["name"])  # noqa: E731
    start = 0
    last = q.get("lastSeenName")
    if last is not None:
        start = bisect.bisect_right(rels, sort_key(last), key=name_of)
    if state.max_page is not None:
        page_size = min(page_size, state.max_page)
    page = rels[start:start + page_size]
    return 200, MT_STOCK_QUANTITIES, {"dataSet": [sq_item(r) for r in page],
                                      "total": len(rels)}


# ---------------------------------------------------------------------------
# The reservations side: branches, locations, persons, cancellation reasons,
# operators and reservations ("org" data).  Unlike the stock data set this is
# mutable (PATCH, control endpoints), small, and always read and changed
# under State.lock; its answers are not cached.

DATE_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})"
    r"(?:[.,](\d{1,9}))?)?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$")

# How dates are written: "z" 2024-06-12T08:00:00Z, "offset"
# 2024-06-12T08:00:00.000+0000 (--date-format).
DATE_STYLE = ["z"]

RESERVATION_STATUSES = ("request", "rejectedRequest", "planned", "cancelled",
                        "conflictingPlanned", "conflictingRequest")

OPT_KINDS = (("boolean", False), ("number", 0), ("date", None), ("text", ""),
             ("memo", ""), ("searchlist", None))
OPT_KEYS = ["%s%d" % (k, i) for k, _ in OPT_KINDS for i in range(1, 6)]


def parse_date(s, zone_required=False):
    """An ISO date-time (zone Z, +0100 or +01:00; none means UTC unless
    zone_required) as an aware UTC datetime.  ValueError when it is not
    one.  What tdhook sends to the API must carry a zone (RFC 3339
    date-time, as the specs' "format: date-time" says); the control
    endpoints are lenient."""
    if not isinstance(s, str):
        raise ValueError("not a date-time")
    m = DATE_RE.match(s.strip())
    if not m:
        raise ValueError("not a date-time: %r" % s)
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    if zone_required and (not zone or h is None):
        raise ValueError("a date-time needs a time and a zone (Z or "
                         "+01:00): %r" % s)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0),
                  int(sec or 0), micro, tzinfo=timezone.utc)
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        off = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2
                                      else 0)
        dt -= timedelta(minutes=sign * off)
    return dt


def fmt_date(dt):
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    if DATE_STYLE[0] == "offset":
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (
            dt.microsecond // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(dt):
    return dt.astimezone(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def utcnow():
    return datetime.now(timezone.utc).replace(microsecond=0)


def optional_fields(sparse):
    """The full optionalFieldsN object (spec order) from its sparse form."""
    out = {}
    for kind, default in OPT_KINDS:
        for i in range(1, 6):
            key = "%s%d" % (kind, i)
            v = (sparse or {}).get(key, default)
            if kind == "date" and isinstance(v, datetime):
                v = fmt_date(v)
            out[key] = v
    return out


def check_optional_fields(obj, what):
    """Validates an optionalFieldsN object; returns its sparse form (dates
    as datetimes).  Raises DataError naming the offending key."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise DataError(what + " must be an object")
    out = {}
    for k, v in obj.items():
        if k not in OPT_KEYS:
            raise DataError("%s.%s is not an optional field" % (what, k))
        kind = k[:-1]
        if v is None:
            if kind in ("boolean", "number"):
                raise DataError("%s.%s cannot be null" % (what, k))
            out[k] = None
        elif kind == "boolean" and not isinstance(v, bool):
            raise DataError("%s.%s must be a boolean" % (what, k))
        elif kind == "number" and (isinstance(v, bool)
                                   or not isinstance(v, (int, float))):
            raise DataError("%s.%s must be a number" % (what, k))
        elif kind in ("text", "memo") and not isinstance(v, str):
            raise DataError("%s.%s must be a string" % (what, k))
        elif kind == "date":
            try:
                out[k] = parse_date(v)
            except ValueError:
                raise DataError("%s.%s must be a date-time" % (what, k)) \
                    from None
            continue
        elif kind == "searchlist" and not (
                isinstance(v, dict) and isinstance(v.get("id"), str)):
            raise DataError("%s.%s must be {\"id\",\"name\"}" % (what, k))
        out[k] = v
    return out


def sparse_json(sparse):
    return {k: (fmt_date(v) if isinstance(v, datetime) else v)
            for k, v in (sparse or {}).items()}


def ref_or_none(obj, what):
    if obj is None:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise DataError(what + " must be null or {\"id\",\"name\"}")
    return {"id": obj["id"], "name": obj.get("name") or ""}


def _str(obj, key, what, default="", null_ok=False):
    v = obj.get(key, default)
    if v is None and null_ok:
        return None
    if not isinstance(v, str):
        raise DataError("%s: %s must be a string" % (what, key))
    return v


def _int(obj, key, what, default, lo, hi):
    v = obj.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise DataError("%s: %s must be an integer %d..%d" % (what, key,
                                                             lo, hi))
    return v


def _date(obj, key, what):
    try:
        return parse_date(obj.get(key))
    except ValueError:
        raise DataError("%s: %s must be a date-time" % (what, key)) from None


def truncate_minute(dt):
    return dt.replace(second=0, microsecond=0)


def person_dynamic_name(p):
    first = p.get("firstName") or ""
    prefixes = p.get("prefixes") or ""
    sur = p.get("surName") or ""
    tail = " ".join(x for x in (first, prefixes) if x)
    return "%s, %s" % (sur, tail) if tail else sur


class Org:
    """Branches, locations, persons, reasons, operators and reservations."""

    KEYS = ("locations", "persons", "reservations", "cancellationReasons",
            "operators", "operatorGroups")

    def __init__(self, data):
        data = data or {}
        self.locations = [self._location(x) for x in
                          self._list(data, "locations")]
        self.loc_index = {}
        for loc in self.locations:
            if loc["id"] in self.loc_index:
                raise DataError("duplicate location id " + loc["id"])
            self.loc_index[loc["id"]] = loc
        self.persons = [self._person(x) for x in self._list(data, "persons")]
        self.person_index = {}
        for p in self.persons:
            if p["id"] in self.person_index:
                raise DataError("duplicate person id " + p["id"])
            self.person_index[p["id"]] = p
        self.reasons = []
        for r in self._list(data, "cancellationReasons"):
            if not isinstance(r, dict):
                raise DataError("each cancellation reason must be an object")
            self.reasons.append({"id": _str(r, "id", "reason", None),
                                 "name": _str(r, "name", "reason", None),
                                 "archived": bool(r.get("archived", False))})
        self.operators = [ref_or_none(x, "operator")
                          for x in self._list(data, "operators")]
        self.operator_groups = [ref_or_none(x, "operator group")
                                for x in self._list(data, "operatorGroups")]
        self.reservations = []
        self.res_index = {}
        self.seq = 0
        for r in self._list(data, "reservations"):
            self.add_reservation(r, utcnow(), strict_ids=True)

    @staticmethod
    def _list(data, key):
        v = data.get(key, [])
        if v is None:
            return []
        if not isinstance(v, list):
            raise DataError("\"%s\" must be a list" % key)
        return v

    # -- records ---------------------------------------------------------

    def _location(self, x):
        if not isinstance(x, dict):
            raise DataError("each location must be an object")
        what = "location %s" % x.get("id")
        return {
            "id": _str(x, "id", what, None),
            "name": _str(x, "name", what, None),
            "roomNumber": _str(x, "roomNumber", what),
            "capacity": _int(x, "capacity", what, 0, 0, 1 << 31),
            "branch": ref_or_none(x.get("branch"), what + ": branch"),
            "roomType": ref_or_none(x.get("roomType"), what + ": roomType"),
            "reservable": bool(x.get("reservable", False)),
            "archived": bool(x.get("archived", False)),
            "blockTime": _int(x, "blockTime", what, 0, 0, 24 * 60),
            "optionalFields1": check_optional_fields(
                x.get("optionalFields1"), what + ": optionalFields1"),
            "optionalFields2": check_optional_fields(
                x.get("optionalFields2"), what + ": optionalFields2"),
        }

    def _person(self, x):
        if not isinstance(x, dict):
            raise DataError("each person must be an object")
        what = "person %s" % x.get("id")
        p = {"id": _str(x, "id", what, None)}
        for k in ("firstName", "surName", "prefixes", "phoneNumber",
                  "mobileNumber", "jobTitle", "employeeNumber",
                  "networkLoginName", "tasLoginName", "city"):
            p[k] = _str(x, k, what)
        p["email"] = _str(x, "email", what, null_ok=True)
        p["dynamicName"] = (_str(x, "dynamicName", what)
                            or person_dynamic_name(p))
        p["archived"] = bool(x.get("archived", False))
        p["branch"] = ref_or_none(x.get("branch"), what + ": branch")
        p["location"] = ref_or_none(x.get("location"), what + ": location")
        return p

    def person_snapshot(self, p):
        """The requester object a reservation copies from a person."""
        return {"id": p["id"], "name": p["dynamicName"], "email": p["email"],
                "telephone": p["phoneNumber"],
                "branch": dict(p["branch"]) if p["branch"] else None}

    def next_number(self, when):
        """The next free number "R YYMM NNN" (NNNN past 999)."""
        taken = {r["number"] for r in self.reservations}
        while True:
            self.seq += 1
            number = "R %02d%02d %03d" % (when.year % 100, when.month,
                                          self.seq)
            if number not in taken:
                return number

    def _requester(self, v, what, current=None):
        """A requester: {"id"} of a known person copies the person; other
        keys given override (e.g. "email": null); without "id" they change
        the current one."""
        if v is None:
            return None
        if not isinstance(v, dict):
            raise DataError(what + ": requester must be an object or null")
        p = self.person_index.get(v.get("id"))
        if p is None and current is not None and v.get("id") in (
                None, current["id"]):
            out = dict(current)
        elif p is not None:
            out = self.person_snapshot(p)
        else:
            out = {"id": v.get("id") or derived_uuid(
                       "person", json.dumps(v, sort_keys=True)),
                   "name": "", "email": None, "telephone": "",
                   "branch": None}
        for k in ("name", "email", "telephone", "branch"):
            if k in v:
                out[k] = v[k]
        return out

    def _rooms(self, x, what):
        rooms = x.get("rooms")
        if rooms is None and "reservedFacilities" in x:
            facs = x["reservedFacilities"]
            if not isinstance(facs, list):
                raise DataError(what + ": reservedFacilities must be a list")
            rooms = [((f or {}).get("location") or {}).get("id")
                     for f in facs]
        if not isinstance(rooms, list):
            raise DataError(what + ": rooms must be a list of location ids")
        for lid in rooms:
            if lid not in self.loc_index:
                raise DataError("%s: no location %s" % (what, lid))
        return list(rooms)

    def add_reservation(self, x, now, strict_ids=False):
        """Adds a reservation from its JSON form; missing fields get
        defaults (tomorrow 09:00-10:00 UTC, the first reservable room, the
        first active person).  Returns the stored record."""
        if not isinstance(x, dict):
            raise DataError("each reservation must be an object")
        x = dict(x)
        rid = x.get("id") or str(uuid.uuid4())
        if not isinstance(rid, str):
            raise DataError("reservation id must be a string")
        if rid in self.res_index:
            raise DataError("duplicate reservation id " + rid)
        what = "reservation " + rid
        if "plannedStartDate" not in x:
            day = (now + timedelta(days=1)).replace(hour=9, minute=0,
                                                    second=0, microsecond=0)
            x["plannedStartDate"] = fmt_date(day)
            x.setdefault("plannedEndDate", fmt_date(day + timedelta(hours=1)))
        elif "plannedEndDate" not in x:
            x["plannedEndDate"] = fmt_date(
                _date(x, "plannedStartDate", what) + timedelta(hours=1))
        if "rooms" not in x and "reservedFacilities" not in x:
            x["rooms"] = [l["id"] for l in self.locations
                          if l["reservable"] and not l["archived"]][:1]
        if "requester" not in x:
            first = [p for p in self.persons if not p["archived"]][:1]
            x["requester"] = {"id": first[0]["id"]} if first else None
        r = {"id": rid}
        self._apply(r, x, what, now, creating=True)
        number = x.get("number")
        if number is None:
            number = self.next_number(now)
        elif not isinstance(number, str):
            raise DataError(what + ": number must be a string")
        if any(o["number"] == number for o in self.reservations):
            raise DataError("duplicate reservation number " + number)
        r["number"] = number
        self.reservations.append(r)
        self.res_index[rid] = r
        return r

    def _apply(self, r, x, what, now, creating=False):
        """Changes record r from the (partial) JSON form x.  Validates
        everything before changing anything."""
        new = {}
        known = {"id", "number", "status", "briefDescription", "notes",
                 "archived", "requester", "reservedForOther", "operator",
                 "operatorGroup", "numberOfPersons", "plannedStartDate",
                 "plannedEndDate", "rooms", "reservedFacilities",
                 "processingStatus", "externalLinks", "optionalFields1",
                 "optionalFields2", "modificationDate", "participants",
                 "event", "series"}
        for k in x:
            if k not in known:
                raise DataError("%s: unknown key %s" % (what, k))
        if not creating and "id" in x and x["id"] != r["id"]:
            raise DataError(what + ": the id cannot change")
        if "status" in x or creating:
            st = x.get("status", "planned")
            if st not in RESERVATION_STATUSES:
                raise DataError("%s: status must be one of %s"
                                % (what, ", ".join(RESERVATION_STATUSES)))
            new["status"] = st
        for k in ("briefDescription", "notes"):
            if k in x or creating:
                new[k] = _str(x, k, what)
        if "archived" in x or creating:
            new["archived"] = bool(x.get("archived", False))
        if "numberOfPersons" in x or creating:
            new["numberOfPersons"] = _int(x, "numberOfPersons", what, 1, 0,
                                          99999)
        for k in ("requester", "reservedForOther"):
            if k in x or creating:
                new[k] = self._requester(x.get(k), what, r.get(k))
        for k in ("operator", "operatorGroup", "processingStatus", "event",
                  "series"):
            if k in x or creating:
                new[k] = ref_or_none(x.get(k), "%s: %s" % (what, k))
        for k in ("plannedStartDate", "plannedEndDate"):
            if k in x:
                new[k] = truncate_minute(_date(x, k, what))
        start = new.get("plannedStartDate", r.get("plannedStartDate"))
        end = new.get("plannedEndDate", r.get("plannedEndDate"))
        if start is not None and end is not None and end <= start:
            raise DataError(what + ": plannedEndDate must be after "
                            "plannedStartDate")
        if "rooms" in x or "reservedFacilities" in x:
            new["rooms"] = self._rooms(x, what)
        if "externalLinks" in x or creating:
            links = x.get("externalLinks") or []
            if not isinstance(links, list):
                raise DataError(what + ": externalLinks must be a list")
            out = []
            for link in links:
                if not isinstance(link, dict) or not isinstance(
                        link.get("id"), str) or not isinstance(
                        link.get("type"), str):
                    raise DataError(what + ": an external link needs string "
                                    "id and type")
                out.append({"id": link["id"], "type": link["type"],
                            "date": (parse_date(link["date"])
                                     if link.get("date") else None)})
            new["externalLinks"] = out
        for k in ("optionalFields1", "optionalFields2"):
            if k in x:
                merged = dict(r.get(k) or {})
                merged.update(check_optional_fields(x[k], "%s: %s"
                                                    % (what, k)))
                new[k] = merged
            elif creating:
                new[k] = {}
        if "participants" in x or creating:
            parts = x.get("participants") or {}
            if not isinstance(parts, dict):
                raise DataError(what + ": participants must be an object")
            new["participants"] = {"persons": list(parts.get("persons", [])),
                                   "visitors": list(parts.get("visitors",
                                                              []))}
        new["modificationDate"] = (_date(x, "modificationDate", what)
                                   if x.get("modificationDate") else now)
        r.update(new)

    def change_reservation(self, r, x, now):
        self._apply(r, x, "reservation " + r["id"], now)
        if "number" in x:
            if not isinstance(x["number"], str):
                raise DataError("number must be a string")
            r["number"] = x["number"]

    def find_reservation(self, key):
        r = self.res_index.get(key)
        if r is not None:
            return r
        for r in self.reservations:
            if r["number"] == key:
                return r
        return None

    def delete_reservation(self, r):
        self.reservations.remove(r)
        del self.res_index[r["id"]]

    # -- rendering -----------------------------------------------------

    def location_ref(self, loc):
        return {"id": loc["id"], "name": loc["name"],
                "roomNumber": loc["roomNumber"],
                "branch": dict(loc["branch"]) if loc["branch"] else None,
                "roomType": dict(loc["roomType"]) if loc["roomType"]
                else None}

    def render_reservation(self, r):
        facilities = []
        for lid in r["rooms"]:
            loc = self.loc_index.get(lid)
            block = timedelta(minutes=loc["blockTime"] if loc else 0)
            facilities.append({
                "id": derived_uuid("facility", r["id"], lid),
                "plannedStartDate": fmt_date(r["plannedStartDate"]),
                "plannedEndDate": fmt_date(r["plannedEndDate"]),
                "startDateBlock": fmt_date(r["plannedStartDate"] - block),
                "endDateBlock": fmt_date(r["plannedEndDate"] + block),
                "issueDate": None,
                "returnDate": None,
                "location": self.location_ref(loc) if loc else {
                    "id": lid, "name": None, "roomNumber": None,
                    "branch": None, "roomType": None},
                "object": None,
                "asset": None,
                "reservedServices": [],
            })
        return {
            "id": r["id"],
            "status": r["status"],
            "number": r["number"],
            "briefDescription": r["briefDescription"],
            "notes": r["notes"],
            "archived": r["archived"],
            "requester": dict(r["requester"]) if r["requester"] else None,
            "reservedForOther": (dict(r["reservedForOther"])
                                 if r["reservedForOther"] else None),
            "operator": r["operator"],
            "operatorGroup": r["operatorGroup"],
            "participants": {"persons": list(r["participants"]["persons"]),
                             "visitors": list(r["participants"]["visitors"])},
            "numberOfPersons": r["numberOfPersons"],
            "plannedStartDate": fmt_date(r["plannedStartDate"]),
            "plannedEndDate": fmt_date(r["plannedEndDate"]),
            "reservedFacilities": facilities,
            "event": r["event"],
            "processingStatus": r["processingStatus"],
            "series": r["series"],
            "externalLinks": [{"id": l["id"], "type": l["type"],
                               "date": fmt_date(l["date"])}
                              for l in r["externalLinks"]],
            "optionalFields1": optional_fields(r["optionalFields1"]),
            "optionalFields2": optional_fields(r["optionalFields2"]),
            "modificationDate": fmt_date(r["modificationDate"]),
        }

    def render_location(self, loc):
        """ExtendedLocationDto."""
        branch = dict(loc["branch"]) if loc["branch"] else None
        created = datetime(2023, 1, 9, 8, 30, tzinfo=timezone.utc)
        return {
            "id": loc["id"],
            "status": "locationArchived" if loc["archived"] else "firstLine",
            "name": loc["name"],
            "roomNumber": loc["roomNumber"],
            "functionalUse": None,
            "type": dict(loc["roomType"]) if loc["roomType"] else None,
            "capacity": loc["capacity"],
            "specification": "",
            "budgetHolder": None,
            "branch": branch,
            "buildingZone": None,
            "roomStatus": None,
            "roomSetup": "",
            "majorLocation": None,
            "area": {k: 0.0 for k in (
                "length", "width", "height", "grossFloorArea",
                "netFloorArea", "tareFloorArea", "functionalArea",
                "lettableArea", "communalArea", "horizontalCirculationArea",
                "verticalCirculationArea", "grossVolume", "netVolume")},
            "finishing": {"ceilingArea": 0.0, "ceilingCovering": None,
                          "floorArea": 0.0, "floorCovering": None,
                          "glassArea": 0.0, "glassMaterial": None,
                          "wallArea": 0.0, "wallCovering": None},
            "reservationManagement": {
                "reservable": loc["reservable"], "issuable": False,
                "blockTime": loc["blockTime"], "visibleInSsd": loc["reservable"],
                "reservableInSsd": loc["reservable"],
                "requiresApproval": False, "reservableBy": "everybody",
                "reservableByPersonGroup": None,
                "serviceWindowAppliesTo": "reservations",
                "serviceWindow": None, "price": 0, "highRate": 0,
                "pricePer": "hour", "deposit": 0, "extraInformation": "",
                "leaseText": ""},
            "optionalFields1": optional_fields(loc["optionalFields1"]),
            "optionalFields2": optional_fields(loc["optionalFields2"]),
            "notes": "",
            "creator": None,
            "creationDate": fmt_date(created),
            "modifier": None,
            "modificationDate": fmt_date(created),
        }

    def render_person(self, p):
        """PersonV2Dto with every field."""
        created = datetime(2022, 3, 1, 7, 0, tzinfo=timezone.utc)
        first = p["firstName"]
        branch = None
        if p["branch"]:
            branch = {"id": p["branch"]["id"], "name": p["branch"]["name"],
                      "phoneNumber": "", "clientReferenceNumber": ""}
        out = {
            "id": p["id"], "principalId": derived_uuid("principal", p["id"]),
            "firstName": first, "surName": p["surName"],
            "dynamicName": p["dynamicName"], "archived": p["archived"],
            "modifier": None, "creator": None,
            "creationDate": fmt_date(created),
            "modificationDate": fmt_date(created),
            "firstInitials": (first[:1] + ".") if first else "",
            "prefixes": p["prefixes"], "birthName": "", "title": "",
            "language": None, "phoneNumber": p["phoneNumber"],
            "mobileNumber": p["mobileNumber"], "fax": "",
            "email": p["email"], "jobTitle": p["jobTitle"],
            "department": None, "budgetHolder": None,
            "employeeNumber": p["employeeNumber"],
            "networkLoginName": p["networkLoginName"],
            "mainframeLoginName": "", "city": p["city"],
            "tasLoginName": p["tasLoginName"], "hasSspAccess": True,
        }
        for k in ("showAllBranches", "showBranch", "showBudgetholder",
                  "showDepartment", "showSubsidiaries", "showObjectsOfBranch",
                  "showObjectsOfSubsidiaries", "authorizeAll",
                  "authorizeBranch", "authorizeBudgetHolder",
                  "authorizeDepartment", "authorizeSubsidiaryBranches"):
            out[k] = False
        out.update({
            "isCaller": True, "isManager": False, "manager": None,
            "hasAttention": False, "attention": None, "branch": branch,
            "location": dict(p["location"]) if p["location"] else None,
            "personExtraFieldA": None, "personExtraFieldB": None,
            "optionalFields1": optional_fields({}),
            "optionalFields2": optional_fields({}),
        })
        return out

    # -- JSON form -----------------------------------------------------

    def to_json(self):
        def loc_json(l):
            out = {k: l[k] for k in ("id", "name", "roomNumber", "capacity",
                                     "branch", "roomType", "reservable",
                                     "archived", "blockTime")}
            out["optionalFields1"] = sparse_json(l["optionalFields1"])
            out["optionalFields2"] = sparse_json(l["optionalFields2"])
            return out

        def res_json(r):
            out = {"id": r["id"], "number": r["number"]}
            for k in ("status", "briefDescription", "notes", "archived",
                      "requester", "reservedForOther", "operator",
                      "operatorGroup", "participants", "numberOfPersons"):
                out[k] = r[k]
            out["plannedStartDate"] = fmt_date(r["plannedStartDate"])
            out["plannedEndDate"] = fmt_date(r["plannedEndDate"])
            out["rooms"] = list(r["rooms"])
            for k in ("processingStatus", "event", "series"):
                out[k] = r[k]
            out["externalLinks"] = [{"id": l["id"], "type": l["type"],
                                     "date": fmt_date(l["date"])}
                                    for l in r["externalLinks"]]
            out["optionalFields1"] = sparse_json(r["optionalFields1"])
            out["optionalFields2"] = sparse_json(r["optionalFields2"])
            out["modificationDate"] = fmt_date(r["modificationDate"])
            return out

        return {
            "locations": [loc_json(l) for l in self.locations],
            "persons": [dict(p) for p in self.persons],
            "cancellationReasons": [dict(r) for r in self.reasons],
            "operators": [dict(o) for o in self.operators],
            "operatorGroups": [dict(o) for o in self.operator_groups],
            "reservations": [res_json(r) for r in self.sorted_reservations()],
        }

    def sorted_reservations(self):
        return sorted(self.reservations,
                      key=lambda r: (r["plannedStartDate"], r["number"],
                                     r["id"]))


# ---------------------------------------------------------------------------
# Org data generators (deterministic; "now" only moves the reservations).

def demo_org(seed, branches, now, stock_locations):
    """Rooms, people and bookings of the demo organisation.  branches maps
    "utrecht"/"amsterdam"/"antwerpen" to {"id","name"}, stock_locations
    the stock rooms' location keys to ({"id","name"}, branch): both shared
    with the stock data."""
    rng = random.Random("org/demo/%d" % seed)
    ut, am = branches["utrecht"], branches["amsterdam"]
    mtype = {"id": fake_uuid(rng), "name": "Vergaderruimte"}
    qtype = {"id": fake_uuid(rng), "name": "Stilteruimte"}
    wtype = {"id": fake_uuid(rng), "name": "Magazijn"}
    mbx = "@contoso.onmicrosoft.com"
    rooms = [
        # key, name, number, capacity, branch, type, reservable, mailbox
        ("v101", "Vergaderzaal 1.01", "1.01", 8, ut, mtype, True,
         "vergaderzaal-1.01" + mbx),
        ("v102", "Vergaderzaal 1.02", "1.02", 12, ut, mtype, True,
         "vergaderzaal-1.02" + mbx),
        ("board", "Boardroom", "0.05", 16, am, mtype, True,
         "boardroom" + mbx),
        ("stilte", "Stilteruimte 2.14", "2.14", 2, ut, qtype, True, ""),
        ("magazijn-utrecht", None, "-1.02", 0, ut, wtype, False, ""),
        ("servicedesk-amsterdam", None, "0.12", 0, am, wtype, False, ""),
        ("magazijn-antwerpen", None, "0.01", 0, branches["antwerpen"],
         wtype, False, ""),
    ]
    loc = {}
    locations = []
    for key, name, number, cap, branch, rtype, reservable, mailbox in rooms:
        if name is None:                 # a stock room's location
            loc[key] = stock_locations[key][0]["id"]
            name = stock_locations[key][0]["name"]
        else:
            loc[key] = fake_uuid(rng)
        locations.append({
            "id": loc[key], "name": name, "roomNumber": number,
            "capacity": cap, "branch": dict(branch), "roomType": dict(rtype),
            "reservable": reservable, "archived": False,
            "blockTime": 15 if key == "board" else 0,
            "optionalFields1": {"text1": mailbox} if mailbox else {},
            "optionalFields2": {}})
    people = [
        # key, first, prefixes, surname, e-mail, branch, archived
        ("piet", "Piet", "", "Jansen", "piet.jansen", ut, False),
        ("fatima", "Fatima", "el", "Amrani", "fatima.elamrani", am, False),
        ("sanne", "Sanne", "de", "Vries", "sanne.devries", ut, False),
        ("jeroen", "Jeroen", "", "Bakker", "jeroen.bakker", ut, False),
        ("anouk", "Anouk", "", "Visser", "anouk.visser", am, False),
        ("kees", "Kees", "van", "Dijk", None, ut, False),
        ("henk", "Henk", "de", "Boer", "henk.deboer", ut, True),
    ]
    pid = {}
    persons = []
    for i, (key, first, pre, sur, mail, branch, archived) in \
            enumerate(people):
        pid[key] = fake_uuid(rng)
        login = (first[0] + (pre + sur).replace(" ", "")).lower()
        persons.append({
            "id": pid[key], "firstName": first, "prefixes": pre,
            "surName": sur, "email": (mail + "@contoso.nl") if mail else "",
            "phoneNumber": "%s %03d %04d" % (
                "020" if branch is am else "030", 200 + i, 1000 + 37 * i),
            "mobileNumber": "", "jobTitle": "", "city": branch["name"]
            .split()[-1], "employeeNumber": "%05d" % (10001 + i),
            "networkLoginName": "CONTOSO\\" + login,
            "tasLoginName": login, "archived": archived,
            "branch": dict(branch)})
    reasons = [{"id": fake_uuid(rng), "name": n, "archived": a} for n, a in (
        ("Vergadering gaat niet door", False),
        ("Dubbele reservering", False),
        ("Ruimte niet beschikbaar", False),
        ("Verkeerde ruimte gekozen (oud)", True))]
    operator = {"id": fake_uuid(rng), "name": "Mulder, Lotte"}
    group = {"id": fake_uuid(rng), "name": "Facilitaire dienst"}
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def at(days, hh, mm=0):
        return fmt_date(day + timedelta(days=days, hours=hh, minutes=mm))

    bookings = [
        # days, start, end (hours), rooms, requester, description, persons,
        # status
        (1, (9, 0), (10, 0), ["v101"], "piet", "Teamoverleg ICT", 6,
         "planned"),
        (1, (11, 0), (12, 0), ["v102"], "sanne", "Sollicitatiegesprek", 3,
         "planned"),
        (2, (13, 0), (15, 30), ["board"], "fatima",
         "Kwartaalcijfers Q3 — directie", 10, "planned"),
        (2, (10, 0), (11, 0), ["stilte"], "jeroen", "Focusblok", 1,
         "planned"),
        (3, (9, 30), (10, 0), ["v101"], "anouk", "Stand-up", 5,
         "cancelled"),
        (3, (14, 0), (15, 0), ["v102"], "kees", "Overleg leverancier", 4,
         "planned"),
        (4, (9, 0), (17, 0), ["v101", "v102"], "piet", "Heisessie afdeling",
         18, "planned"),
        (-1, (15, 0), (16, 0), ["board"], "fatima", "Evaluatie project", 8,
         "planned"),
    ]
    reservations = []
    for i, (d, s, e, rms, who, desc, n, status) in enumerate(bookings):
        reservations.append({
            "id": fake_uuid(rng),
            "number": "R %02d%02d %03d" % (now.year % 100, now.month, i + 1),
            "status": status, "briefDescription": desc, "notes": "",
            "requester": {"id": pid[who]}, "numberOfPersons": n,
            "operator": dict(operator) if i % 2 == 0 else None,
            "operatorGroup": dict(group),
            "plannedStartDate": at(d, *s), "plannedEndDate": at(d, *e),
            "rooms": [loc[k] for k in rms],
            "modificationDate": fmt_date(now - timedelta(days=2, hours=i)),
        })
    return {"locations": locations, "persons": persons,
            "cancellationReasons": reasons, "operators": [operator],
            "operatorGroups": [group], "reservations": reservations}


GEN_FIRST = ["Emma", "Daan", "Julia", "Bram", "Sophie", "Lucas", "Zoë",
             "Mohammed", "Noor", "Sem", "Lieke", "Thijs", "Aylin", "Jan",
             "Åsa", "Zofia", "Jürgen", "Eva"]
GEN_SUR = [("", "Jong"), ("de", "Groot"), ("van", "Leeuwen"), ("", "Smit"),
           ("", "Meijer"), ("van den", "Berg"), ("", "Yılmaz"),
           ("", "Kowalski"), ("", "Müller"), ("", "Lindqvist"),
           ("", "Hendriks"), ("van der", "Linden")]


def synthetic_org(seed, n_rooms, n_persons, n_res, now):
    rng = random.Random("org/%d/%d/%d/%d" % (seed, n_rooms, n_persons, n_res))
    branches = [{"id": fake_uuid(rng), "name": "Vestiging " + p}
                for p in GEN_PLACES[:4]]
    rtype = {"id": fake_uuid(rng), "name": "Vergaderruimte"}
    locations = []
    for i in range(n_rooms):
        b = branches[i % len(branches)]
        place = b["name"].split(" ", 1)[1]
        mapped = i % 5 != 4           # every fifth room is unmapped
        slug = "zaal-%s-%d" % (place.lower().replace(" ", ""), i + 1)
        locations.append({
            "id": fake_uuid(rng), "name": "Zaal %s %d" % (place, i + 1),
            "roomNumber": "%d.%02d" % (1 + i // 20, i % 20 + 1),
            "capacity": rng.choice([4, 6, 8, 10, 12, 20]), "branch": b,
            "roomType": rtype, "reservable": True, "archived": False,
            "blockTime": 0,
            "optionalFields1": ({"text1": slug + "@contoso.onmicrosoft.com"}
                                if mapped else {})})
    persons = []
    for i in range(n_persons):
        first = rng.choice(GEN_FIRST)
        pre, sur = rng.choice(GEN_SUR)
        login = "p%05d" % (i + 1)
        persons.append({
            "id": fake_uuid(rng), "firstName": first, "prefixes": pre,
            "surName": sur, "tasLoginName": login,
            "email": "" if i % 10 == 9 else "%s@contoso.nl" % login,
            "employeeNumber": "%05d" % (i + 1),
            "archived": i % 25 == 24, "branch": rng.choice(branches)})
    reasons = [{"id": fake_uuid(rng), "name": "Gaat niet door",
                "archived": False},
               {"id": fake_uuid(rng), "name": "Dubbel geboekt",
                "archived": False}]
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    reservations = []
    for i in range(n_res):
        start = day + timedelta(days=rng.randint(-2, 20),
                                hours=rng.randint(7, 17),
                                minutes=rng.choice([0, 15, 30, 45]))
        reservations.append({
            "id": fake_uuid(rng),
            "number": "R %02d%02d %03d" % (now.year % 100, now.month,
                                           (i + 1) % 1000),
            "status": "cancelled" if i % 12 == 11 else "planned",
            "briefDescription": "Overleg %d" % (i + 1),
            "requester": {"id": rng.choice(persons)["id"]} if persons
            else None,
            "numberOfPersons": rng.randint(1, 12),
            "plannedStartDate": fmt_date(start),
            "plannedEndDate": fmt_date(start + timedelta(
                minutes=rng.choice([30, 60, 90, 120]))),
            "rooms": [rng.choice(locations)["id"]] if locations else [],
            "modificationDate": fmt_date(now - timedelta(hours=i + 1)),
        })
    # Unique numbers even past 999 reservations.
    for i, r in enumerate(reservations):
        if i >= 999:
            r["number"] = "R %02d%02d %04d" % (now.year % 100, now.month,
                                               i + 1)
    return {"locations": locations, "persons": persons,
            "cancellationReasons": reasons,
            "operators": [{"id": fake_uuid(rng), "name": "Beheer, Facilitair"}],
            "operatorGroups": [{"id": fake_uuid(rng), "name": "Facilitair"}],
            "reservations": reservations}


# ---------------------------------------------------------------------------
# FIQL (the query= parameter): ';' AND, ',' OR, parentheses; ==, !=, =gt=,
# =ge=, =lt=, =le=, =sw=, =in=(..), =out=(..); values bare or quoted.

class FiqlError(ValueError):
    pass


FIQL_OPS = ("==", "!=", "=gt=", "=ge=", "=lt=", "=le=", "=sw=", "=in=",
            "=out=")
FIQL_SEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
FIQL_OP = re.compile(r"==|!=|=[a-z]+=")
FIQL_BARE = re.compile(r"[^;,()'\"]+")


class FiqlParser:
    def __init__(self, text):
        self.s = text
        self.i = 0

    def parse(self):
        node = self.or_()
        if self.i != len(self.s):
            raise FiqlError("unexpected %r at position %d"
                            % (self.s[self.i], self.i))
        return node

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ""

    def or_(self):
        items = [self.and_()]
        while self.peek() == ",":
            self.i += 1
            items.append(self.and_())
        return items[0] if len(items) == 1 else ("or", items)

    def and_(self):
        items = [self.primary()]
        while self.peek() == ";":
            self.i += 1
            items.append(self.primary())
        return items[0] if len(items) == 1 else ("and", items)

    def primary(self):
        if self.peek() == "(":
            self.i += 1
            node = self.or_()
            if self.peek() != ")":
                raise FiqlError("missing ')' at position %d" % self.i)
            self.i += 1
            return node
        m = FIQL_SEL.match(self.s, self.i)
        if not m:
            raise FiqlError("expected a field name at position %d" % self.i)
        sel = m.group(0)
        self.i = m.end()
        m = FIQL_OP.match(self.s, self.i)
        if not m or m.group(0) not in FIQL_OPS:
            raise FiqlError("expected an operator after %s" % sel)
        op = m.group(0)
        self.i = m.end()
        if op in ("=in=", "=out="):
            if self.peek() != "(":
                raise FiqlError("%s needs a list in parentheses" % op)
            self.i += 1
            values = [self.value()]
            while self.peek() == ",":
                self.i += 1
                values.append(self.value())
            if self.peek() != ")":
                raise FiqlError("missing ')' after the %s list" % op)
            self.i += 1
            return ("cmp", sel, op, values)
        return ("cmp", sel, op, self.value())

    def value(self):
        q = self.peek()
        if q in ("'", '"'):
            self.i += 1
            out = []
            while True:
                if self.i >= len(self.s):
                    raise FiqlError("unterminated quoted value")
                c = self.s[self.i]
                self.i += 1
                if c == "\\" and self.i < len(self.s):
                    out.append(self.s[self.i])
                    self.i += 1
                elif c == q:
                    return ("quoted", "".join(out))
                else:
                    out.append(c)
        m = FIQL_BARE.match(self.s, self.i)
        if not m:
            raise FiqlError("expected a value at position %d" % self.i)
        self.i = m.end()
        return ("bare", m.group(0))


def fiql_type(sel):
    last = sel.rsplit(".", 1)[-1]
    if last in ("plannedStartDate", "plannedEndDate", "date",
                "modificationDate", "creationDate") or re.fullmatch(
                    r"date[1-5]", last):
        return "date"
    if last in ("archived", "reservable", "issuable", "hasSspAccess",
                "isManager", "isCaller") or re.fullmatch(r"boolean[1-5]",
                                                          last):
        return "bool"
    if last in ("numberOfPersons", "capacity", "blockTime") or \
            re.fullmatch(r"number[1-5]", last):
        return "num"
    return "str"


def fiql_literal(kind, value, sel):
    tag, text = value
    if tag == "bare" and text == "null":
        return None
    try:
        if kind == "date":
            return parse_date(text, zone_required=True)
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError("not a boolean")
            return text.lower() == "true"
        if kind == "num":
            return float(text)
    except ValueError:
        raise FiqlError("%s: %r is not a valid %s" % (
            sel, text, {"date": "date-time", "bool": "boolean",
                        "num": "number"}[kind])) from None
    return text


def fiql_compile(text, allowed):
    """Parses a FIQL expression into a predicate over a values function.

    allowed(sel) is true for the selectors the endpoint supports.  The
    predicate takes get(sel) -> list of the field's values in one record
    (several for fields inside lists: any of them may match).
    """
    tree = FiqlParser(text).parse()

    def build(node):
        if node[0] in ("and", "or"):
            parts = [build(n) for n in node[1]]
            if node[0] == "and":
                return lambda get: all(p(get) for p in parts)
            return lambda get: any(p(get) for p in parts)
        _, sel, op, value = node
        if not allowed(sel):
            raise FiqlError("the field %s cannot be used in a query" % sel)
        kind = fiql_type(sel)
        if op in ("=in=", "=out="):
            lits = [fiql_literal(kind, v, sel) for v in value]
        else:
            lit = fiql_literal(kind, value, sel)
            if lit is None and op not in ("==", "!="):
                raise FiqlError("%s: null only works with == and !=" % sel)
            if op == "=sw=" and kind != "str":
                raise FiqlError("%s: =sw= only works on text" % sel)

        def conv(v):
            if v is None or v == "":
                return None if kind != "str" or v is None else v
            try:
                if kind == "date":
                    return v if isinstance(v, datetime) else parse_date(v)
                if kind == "num":
                    return float(v)
            except (TypeError, ValueError):
                return None
            return v

        def pred(get):
            vals = [conv(v) for v in get(sel)]
            present = [v for v in vals if v is not None]
            if op == "==":
                return (not present) if lit is None else lit in present
            if op == "!=":
                return bool(present) if lit is None else lit not in present
            if op == "=in=":
                return any(v in lits for v in present)
            if op == "=out=":
                return not any(v in lits for v in present)
            if op == "=sw=":
                return any(isinstance(v, str) and v.startswith(lit)
                           for v in present)
            cmp = {"=gt=": lambda a: a > lit, "=ge=": lambda a: a >= lit,
                   "=lt=": lambda a: a < lit, "=le=": lambda a: a <= lit}[op]
            try:
                return any(cmp(v) for v in present)
            except TypeError:
                return False
        return pred

    return build(tree)


def dotted_values(obj, sel):
    """The values at a dotted path, through lists."""
    cur = [obj]
    for part in sel.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, list):
                c_items = c
            else:
                c_items = [c]
            for it in c_items:
                if isinstance(it, dict) and part in it:
                    v = it[part]
                    if isinstance(v, list):
                        nxt.extend(v)
                    else:
                        nxt.append(v)
        cur = nxt
    return cur


RES_QUERY_FIELDS = {
    "status", "archived", "number", "briefDescription", "notes",
    "numberOfPersons", "plannedStartDate", "plannedEndDate", "series.id",
    "operatorGroup.id", "operatorGroup.name", "operator.id", "operator.name",
    "event.id", "event.number", "processingStatus.id",
    "processingStatus.name", "reservedFacilities.location.id",
    "reservedFacilities.location.roomNumber", "reservedFacilities.object.id",
    "reservedFacilities.object.name", "reservedFacilities.asset.id",
    "reservedFacilities.asset.name", "participants.visitors.id",
    "participants.visitors.number", "externalLinks.id", "externalLinks.type",
    "externalLinks.date",
}
PERSON_KEYS = ("id", "email", "loginName", "networkLoginName",
               "employeeNumber")
for _who in ("requester", "reservedForOther", "participants.persons"):
    for _k in PERSON_KEYS:
        RES_QUERY_FIELDS.add("%s.%s" % (_who, _k))
for _n in (1, 2):
    for _k in OPT_KEYS:
        if _k.startswith("searchlist"):
            RES_QUERY_FIELDS.add("optionalFields%d.%s.id" % (_n, _k))
            RES_QUERY_FIELDS.add("optionalFields%d.%s.name" % (_n, _k))
        else:
            RES_QUERY_FIELDS.add("optionalFields%d.%s" % (_n, _k))


def template_paths(obj, prefix=""):
    """Every dotted path of a fully rendered template object."""
    out = set()
    for k, v in obj.items():
        path = prefix + k
        out.add(path)
        if isinstance(v, dict):
            out |= template_paths(v, path + ".")
    return out


def select_fields(obj, spec):
    """Applies a $fields list ("a,b.c") to an object or a list of them."""
    tree = {}
    for f in spec.split(","):
        f = f.strip()
        if not f:
            continue
        node = tree
        for part in f.split("."):
            node = node.setdefault(part, {})

    def apply(o, t):
        if isinstance(o, list):
            return [apply(x, t) for x in o]
        if not isinstance(o, dict):
            return o
        out = {}
        for k, sub in t.items():
            if k in o:
                out[k] = apply(o[k], sub) if sub else o[k]
        return out
    return apply(obj, tree) if tree else obj


# ---------------------------------------------------------------------------
# Endpoint families on the org data: general, reservations, locations,
# persons.  Each handler runs under State.lock and returns
# (status, content type, body object, extra headers).

FAKE_API_VERSION = "3.8.1"
FAKE_PRODUCT_VERSION = {"major": 14, "minor": 28, "patch": 3}

MT_PERSONS = "application/x.topdesk-collection-person-v2+json"


class Req:
    """What an org endpoint gets to see of one request."""

    def __init__(self, method, q, body, arg, base_url):
        self.method = method
        self.q = q
        self.body = body
        self.arg = arg
        self.base_url = base_url


def ep_version(state, org, req):
    req.q.check_known(set())
    return 200, MT_JSON, {"version": FAKE_API_VERSION}, []


def ep_product_version(state, org, req):
    req.q.check_known(set())
    return 200, MT_JSON, dict(FAKE_PRODUCT_VERSION), []


RES_OLD_FILTERS = {"plannedFrom", "plannedTo", "requesterId",
                   "reservedForOtherId", "locationId", "objectId", "seriesId",
                   "operatorGroupId", "operatorId", "participantPersonId",
                   "participantVisitorId", "externalLinkId",
                   "externalLinkType", "archived", "cancelled", "conflicting",
                   "rejected"}


def reservation_getter(org, dto):
    """get(sel) for FIQL over a rendered reservation; person sub-fields
    that the DTO does not carry come from the person card."""
    def get(sel):
        for who in ("requester", "reservedForOther"):
            if sel.startswith(who + ".") and sel.split(".", 1)[1] in (
                    "loginName", "networkLoginName", "employeeNumber"):
                ref = dto.get(who)
                p = org.person_index.get(ref["id"]) if ref else None
                key = sel.split(".", 1)[1]
                if p is None:
                    return []
                return [p["tasLoginName"] if key == "loginName" else p[key]]
        return dotted_values(dto, sel)
    return get


def ep_reservations(state, org, req):
    q = req.q
    q.check_known({"$fields", "$top", "query"} | RES_OLD_FILTERS)
    if not q.has("query"):
        for name in RES_OLD_FILTERS:
            if q.has(name):
                raise ApiError(400, "unsupported_by_fake",
                               "the fake TOPdesk only filters with query=",
                               [name])
    top = q.integer("$top", 1000, 1, 10000)
    if state.max_page is not None:
        top = min(top, state.max_page)
    pred = None
    if q.get("query"):
        try:
            pred = fiql_compile(q.get("query"),
                                lambda s: s in RES_QUERY_FIELDS)
        except FiqlError as e:
            raise ApiError(400, "invalid_query", str(e), ["query"]) from None
    matches = []
    for r in org.sorted_reservations():
        dto = org.render_reservation(r)
        if pred is None or pred(reservation_getter(org, dto)):
            matches.append(dto)
    page = matches[:top]
    if q.get("$fields"):
        page = select_fields(page, q.get("$fields"))
    return (206 if len(matches) > top else 200), MT_JSON, \
        {"results": page}, []


def ep_reservation(state, org, req):
    q = req.q
    r = org.find_reservation(req.arg)
    if req.method == "GET":
        q.check_known({"$fields"})
        if r is None:
            raise ApiError(404, "not_found", "Reservation could not be found",
                           ["identifier"])
        dto = org.render_reservation(r)
        if q.get("$fields"):
            dto = select_fields(dto, q.get("$fields"))
        return 200, MT_JSON, dto, [("Last-Modified",
                                    http_date(r["modificationDate"]))]
    # PATCH: UpdateReservationDto.
    q.check_known({"occurrences", "allowPassedLeadTimes"})
    if q.get("occurrences", "current") not in ("current", "future"):
        raise ApiError(400, "invalid_value",
                       "occurrences must be current or future",
                       ["occurrences"])
    q.boolean("allowPassedLeadTimes", False)
    try:
        body = json.loads(req.body.decode("utf-8")) if req.body else None
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON",
                       ["body"]) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object",
                       ["body"])
    if r is None:
        raise ApiError(404, "not_found", "Reservation could not be found",
                       ["identifier"])
    allowed = ("briefDescription", "notes", "numberOfPersons", "requester",
               "operatorGroup", "operator", "processingStatus",
               "externalLink", "optionalFields1", "optionalFields2")
    for k in body:
        if k not in allowed:
            raise ApiError(400, "unknown_field",
                           "'%s' cannot be changed with this endpoint; "
                           "status, planned dates and facilities have "
                           "their own endpoints" % k, [k])
    change = {}

    def bad(field, msg, code="invalid_value"):
        return ApiError(400, code, msg, [field])

    if "briefDescription" in body:
        v = body["briefDescription"]
        if not isinstance(v, str) or len(v) > 100:
            raise bad("briefDescription",
                      "briefDescription must be a string of at most 100 "
                      "characters")
        change["briefDescription"] = v
    if "notes" in body:
        if not isinstance(body["notes"], str):
            raise bad("notes", "notes must be a string")
        change["notes"] = body["notes"]
    if "numberOfPersons" in body:
        v = body["numberOfPersons"]
        if isinstance(v, bool) or not isinstance(v, int) or \
                not 0 <= v <= 99999:
            raise bad("numberOfPersons",
                      "numberOfPersons must be between 0 and 99999")
        change["numberOfPersons"] = v
    if "requester" in body:
        v = body["requester"]
        p = org.person_index.get(v.get("id")) if isinstance(v, dict) else None
        if p is None:
            raise bad("requester", "requester must be {\"id\"} of an "
                      "existing person", "not_found")
        change["requester"] = {"id": p["id"]}
    for k, pool in (("operator", org.operators),
                    ("operatorGroup", org.operator_groups)):
        if k in body:
            v = body[k]
            hit = [o for o in pool if isinstance(v, dict)
                   and o["id"] == v.get("id")]
            if not hit:
                raise bad(k, "%s must be {\"id\"} of an existing %s"
                          % (k, k), "not_found")
            change[k] = dict(hit[0])
    if "processingStatus" in body:
        v = body["processingStatus"]
        if not isinstance(v, dict) or not (isinstance(v.get("id"), str) or
                                           isinstance(v.get("name"), str)):
            raise bad("processingStatus",
                      "processingStatus must be {\"id\"} or {\"name\"}")
        change["processingStatus"] = {
            "id": v.get("id") or derived_uuid("status", v["name"]),
            "name": v.get("name") or ""}
    if "externalLink" in body:
        v = body["externalLink"]
        if not isinstance(v, dict) or not isinstance(v.get("id"), str) \
                or not v["id"] or len(v["id"]) > 450:
            raise bad("externalLink.id",
                      "externalLink.id must be a string of 1..450 characters")
        t = v.get("type")
        if not isinstance(t, str) or not re.fullmatch(r"-?[0-9]+", t) \
                or int(t) == 0:
            raise bad("externalLink.type",
                      "externalLink.type must be a non-zero integer as a "
                      "string")
        date = v.get("date")
        if date is not None:
            try:
                date = parse_date(date, zone_required=True)
            except ValueError as e:
                raise bad("externalLink.date",
                          "externalLink.date: %s" % e) from None
        if r["externalLinks"]:
            raise ApiError(400, "external_link_already_set",
                           "Currently, only one external link can be set. "
                           "Trying to update an existing external link "
                           "gives an error.", ["externalLink"])
        change["externalLinks"] = [{"id": v["id"], "type": t,
                                    "date": fmt_date(date or utcnow())}]
    for k in ("optionalFields1", "optionalFields2"):
        if k in body:
            try:
                check_optional_fields(body[k], k)
                for dk, dv in (body[k] or {}).items():
                    if dk.startswith("date") and dv is not None:
                        parse_date(dv, zone_required=True)
            except (DataError, ValueError) as e:
                raise bad(k, str(e)) from None
            change[k] = body[k]
    try:
        org.change_reservation(r, change, utcnow())
    except DataError as e:
        raise ApiError(400, "invalid_value", str(e), []) from None
    return 200, MT_JSON, org.render_reservation(r), [
        ("Last-Modified", http_date(r["modificationDate"]))]


# -- reservation writes (reservations-2.0.0.json): create, reschedule, move
# a room, cancel.  A room already held over the same time is refused with
# 400, or, with POST /__fake/conflicts {"mode":"conflicting"}, booked as
# conflictingPlanned.

ACTIVE_STATUSES = ("planned", "conflictingPlanned", "request",
                   "conflictingRequest")


def write_body(req, required=True):
    try:
        body = json.loads(req.body.decode("utf-8")) if req.body else None
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON",
                       ["body"]) from None
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object",
                       ["body"])
    return body


def write_date(body, key):
    v = body.get(key)
    if not isinstance(v, str):
        raise ApiError(400, "required_field", "%s is required" % key, [key])
    try:
        return truncate_minute(parse_date(v, zone_required=True))
    except ValueError as e:
        raise ApiError(400, "invalid_value", "%s: %s" % (key, e),
                       [key]) from None


def lookup_id(v, what):
    if not isinstance(v, dict) or not isinstance(v.get("id"), str):
        raise ApiError(400, "invalid_value", "%s must be {\"id\"}" % what,
                       [what])
    return v["id"]


def room_clash(org, lid, start, end, skip=None):
    """The active reservation holding room lid over [start, end)."""
    for r in org.reservations:
        if r is skip or r["status"] not in ACTIVE_STATUSES or r["archived"]:
            continue
        if lid in r["rooms"] and r["plannedStartDate"] < end and \
                r["plannedEndDate"] > start:
            return r
    return None


def clash_error(org, r, lid):
    loc = org.loc_index.get(lid) or {"name": lid}
    return ApiError(400, "facility_not_available",
                    "%s is not available in the requested period (reserved "
                    "in %s)" % (loc["name"], r["number"]),
                    ["reservedFacilities"])


def ep_create_reservation(state, org, req):
    req.q.check_known({"allowPassedLeadTimes",
                       "allowServicesOutsideServiceWindow",
                       "rescheduleVisitors"})
    body = write_body(req)
    known = {"briefDescription", "notes", "status", "requester",
             "operatorGroup", "operator", "processingStatus",
             "numberOfPersons", "participants", "plannedStartDate",
             "plannedEndDate", "reservedFacilities", "externalLink",
             "optionalFields1", "optionalFields2", "reservedForOther",
             "event"}
    for k in body:
        if k not in known:
            raise ApiError(400, "unknown_field", "unknown field " + k, [k])
    start = write_date(body, "plannedStartDate")
    end = write_date(body, "plannedEndDate")
    if end <= start:
        raise ApiError(400, "invalid_value", "plannedEndDate must be after "
                       "plannedStartDate", ["plannedEndDate"])
    requester = lookup_id(body.get("requester"), "requester")
    if requester not in org.person_index:
        raise ApiError(400, "not_found", "requester must be an existing "
                       "person", ["requester"])
    facs = body.get("reservedFacilities")
    if not isinstance(facs, list) or not facs:
        raise ApiError(400, "required_field", "reservedFacilities needs at "
                       "least one facility", ["reservedFacilities"])
    rooms = []
    for f in facs:
        lid = lookup_id((f or {}).get("location"),
                        "reservedFacilities.location")
        loc = org.loc_index.get(lid)
        if loc is None or not loc["reservable"] or loc["archived"]:
            raise ApiError(400, "not_found", "location %s is not a "
                           "reservable room" % lid, ["reservedFacilities"])
        rooms.append(lid)
    status = body.get("status", "planned")
    if status not in ("planned", "request"):
        raise ApiError(400, "invalid_value", "status must be planned or "
                       "request", ["status"])
    desc = body.get("briefDescription", "")
    if not isinstance(desc, str) or len(desc) > 100:
        raise ApiError(400, "invalid_value", "briefDescription must be at "
                       "most 100 characters", ["briefDescription"])
    for lid in rooms:
        other = room_clash(org, lid, start, end)
        if other is not None:
            if state.conflicts != "conflicting":
                raise clash_error(org, other, lid)
            status = "conflicting" + status[0].upper() + status[1:]
    links = []
    link = body.get("externalLink")
    if link is not None:
        if not isinstance(link, dict) or not isinstance(link.get("id"), str) \
                or not isinstance(link.get("type"), str) or \
                not re.fullmatch(r"-?[0-9]+", link["type"]) or \
                int(link["type"]) == 0 or not link["id"] or \
                len(link["id"]) > 450:
            raise ApiError(400, "invalid_value", "externalLink needs id (1 to "
                           "450 characters) and a non-zero integer type",
                           ["externalLink"])
        links.append({"id": link["id"], "type": link["type"],
                      "date": fmt_date(utcnow())})
    now = utcnow()
    x = {"status": status, "briefDescription": desc,
         "plannedStartDate": fmt_date(start), "plannedEndDate": fmt_date(end),
         "rooms": rooms, "requester": {"id": requester},
         "externalLinks": links}
    for k in ("notes", "numberOfPersons"):
        if k in body:
            x[k] = body[k]
    try:
        r = org.add_reservation(x, now)
    except DataError as e:
        raise ApiError(400, "invalid_value", str(e), []) from None
    dto = org.render_reservation(r)
    return 201, MT_JSON, dto, [
        ("Location", "%s/tas/api/reservations/%s" % (req.base_url, r["id"])),
        ("Last-Modified", http_date(r["modificationDate"]))]


def writable_reservation(org, key, what, allowed=ACTIVE_STATUSES):
    r = org.find_reservation(key)
    if r is None:
        raise ApiError(404, "not_found", "Reservation could not be found",
                       ["identifier"])
    if r["archived"] or r["status"] not in allowed:
        raise ApiError(400, "invalid_status", "a %s reservation cannot be %s"
                       % (r["status"], what), ["status"])
    return r


def ep_reschedule(state, org, req):
    req.q.check_known({"allowServicesOutsideReservation",
                       "allowReservationOutsideEvent", "allowPassedLeadTimes",
                       "allowServicesOutsideServiceWindow",
                       "rescheduleVisitors"})
    r = writable_reservation(org, req.arg, "rescheduled",
                             ("planned", "request"))
    body = write_body(req)
    start = write_date(body, "plannedStartDate")
    end = write_date(body, "plannedEndDate")
    if end <= start:
        raise ApiError(400, "invalid_value", "plannedEndDate must be after "
                       "plannedStartDate", ["plannedEndDate"])
    for lid in r["rooms"]:
        other = room_clash(org, lid, start, end, skip=r)
        if other is not None:
            raise clash_error(org, other, lid)
    org.change_reservation(r, {"plannedStartDate": fmt_date(start),
                               "plannedEndDate": fmt_date(end)}, utcnow())
    return 200, MT_JSON, org.render_reservation(r), [
        ("Last-Modified", http_date(r["modificationDate"]))]


def ep_move_facility(state, org, req):
    req.q.check_known({"allowPassedLeadTimes",
                       "allowServicesOutsideServiceWindow",
                       "allowServicesNotAvailableForNewFacility"})
    r = writable_reservation(org, req.arg, "changed",
                             ("planned", "request", "conflictingPlanned",
                              "conflictingRequest"))
    if r["series"]:
        raise ApiError(400, "invalid_status", "an occurrence of a series "
                       "cannot move to another facility", ["identifier"])
    body = write_body(req)
    src = lookup_id((body.get("from") or {}).get("location"),
                    "from.location")
    dst = lookup_id((body.get("to") or {}).get("location"), "to.location")
    if src not in r["rooms"]:
        raise ApiError(400, "invalid_value", "the reservation does not hold "
                       "location " + src, ["from"])
    loc = org.loc_index.get(dst)
    if loc is None or not loc["reservable"] or loc["archived"]:
        raise ApiError(400, "not_found", "location %s is not a reservable "
                       "room" % dst, ["to"])
    other = room_clash(org, dst, r["plannedStartDate"], r["plannedEndDate"],
                       skip=r)
    if other is not None:
        raise clash_error(org, other, dst)
    rooms = [dst if lid == src else lid for lid in r["rooms"]]
    org.change_reservation(r, {"rooms": rooms}, utcnow())
    return 200, MT_JSON, org.render_reservation(r), [
        ("Last-Modified", http_date(r["modificationDate"]))]


def ep_cancel(state, org, req):
    req.q.check_known({"allowPassedLeadTimes"})
    r = writable_reservation(org, req.arg, "cancelled",
                             ("planned", "conflictingPlanned"))
    body = write_body(req, required=False)
    if not body:
        raise ApiError(400, "required_field", "no default cancellation "
                       "reason is configured: give one", ["body"])
    hits = [x for x in org.reasons if not x["archived"] and
            (x["id"] == body.get("id") or x["name"] == body.get("name"))]
    if len(hits) != 1:
        raise ApiError(400, "invalid_value", "the cancellation reason %s"
                       % ("is ambiguous" if hits else "does not exist"),
                       ["id" if "id" in body else "name"])
    org.change_reservation(r, {"status": "cancelled"}, utcnow())
    r["cancellationReason"] = hits[0]["name"]
    return 204, MT_JSON, None, []


def ep_reservable_locations(state, org, req):
    q = req.q
    q.check_known({"$fields", "$top", "branchId"})
    top = q.integer("$top", 1000, 1, 10000)
    if state.max_page is not None:
        top = min(top, state.max_page)
    branches = set(q.getall("branchId"))
    rooms = sorted((l for l in org.locations
                    if l["reservable"] and not l["archived"]
                    and (not branches or (l["branch"] and
                                          l["branch"]["id"] in branches))),
                   key=lambda l: (sort_key(l["name"]), l["id"]))
    results = [{"id": l["id"], "name": l["name"],
                "roomNumber": l["roomNumber"], "capacity": l["capacity"],
                "branch": dict(l["branch"]) if l["branch"] else None}
               for l in rooms[:top]]
    if q.get("$fields"):
        results = select_fields(results, q.get("$fields"))
    # The spec has no 206 here: a longer list is cut at $top.
    return 200, MT_JSON, {"results": results}, []


def ep_cancellation_reasons(state, org, req):
    q = req.q
    q.check_known({"archived"})
    archived = q.boolean("archived", False)
    return 200, MT_JSON, {"results": [
        {"id": r["id"], "name": r["name"]} for r in org.reasons
        if r["archived"] == archived]}, []


LOCATION_TEMPLATE_PATHS = None
PERSON_TEMPLATE_PATHS = None


def _template_paths(kind, org):
    """The selectors FIQL may use on locations / persons: every path of a
    fully filled record (searchlists as {id,name})."""
    global LOCATION_TEMPLATE_PATHS, PERSON_TEMPLATE_PATHS
    ref = {"id": "", "name": ""}
    if kind == "location":
        if LOCATION_TEMPLATE_PATHS is None:
            dto = org.render_location(Org({}).  _location({
                "id": "x", "name": "x", "branch": ref, "roomType": ref}))
            for k in ("functionalUse", "budgetHolder", "buildingZone",
                      "roomStatus", "majorLocation", "creator", "modifier"):
                dto[k] = ref
            for k in ("ceilingCovering", "floorCovering", "glassMaterial",
                      "wallCovering"):
                dto["finishing"][k] = ref
            for k in ("reservableByPersonGroup", "serviceWindow"):
                dto["reservationManagement"][k] = ref
            for n in (1, 2):
                for i in range(1, 6):
                    dto["optionalFields%d" % n]["searchlist%d" % i] = ref
            paths = template_paths(dto)
            paths |= {"archived", "externalLink.id", "externalLink.type",
                      "externalLink.date"}
            LOCATION_TEMPLATE_PATHS = paths
        return LOCATION_TEMPLATE_PATHS
    if PERSON_TEMPLATE_PATHS is None:
        dto = org.render_person(Org({})._person({"id": "x"}))
        for k in ("modifier", "creator", "department", "budgetHolder",
                  "manager", "location", "personExtraFieldA",
                  "personExtraFieldB"):
            dto[k] = ref
        dto["language"] = {"id": "", "name": "", "code": ""}
        dto["attention"] = {"id": "", "name": ""}
        dto["branch"] = {"id": "", "name": "", "phoneNumber": "",
                         "clientReferenceNumber": ""}
        for n in (1, 2):
            for i in range(1, 6):
                dto["optionalFields%d" % n]["searchlist%d" % i] = ref
                del dto["optionalFields%d" % n]["memo%d" % i]
        PERSON_TEMPLATE_PATHS = template_paths(dto)
    return PERSON_TEMPLATE_PATHS


def ep_locations(state, org, req):
    q = req.q
    q.check_known({"query", "$fields", "pageSize"})
    page_size = q.integer("pageSize", None, 1, 1 << 31)
    pred = None
    if q.get("query"):
        paths = _template_paths("location", org)
        try:
            pred = fiql_compile(q.get("query"), lambda s: s in paths)
        except FiqlError as e:
            raise ApiError(400, "invalid_query", str(e), ["query"]) from None
    out = []
    for loc in sorted(org.locations,
                      key=lambda l: (sort_key(l["name"]), l["id"])):
        if pred is None and loc["archived"]:
            continue
        dto = org.render_location(loc)
        if pred is not None:
            dto_q = dict(dto, archived=loc["archived"])
            if not pred(lambda s: dotted_values(dto_q, s)):
                continue
        out.append(dto)
    if page_size is not None:
        out = out[:page_size]
    out = select_fields(out, q.get("$fields") or "id,name,roomNumber,branch")
    return 200, MT_JSON, out, []


def ep_location(state, org, req):
    req.q.check_known({"$fields"})
    loc = org.loc_index.get(req.arg)
    if loc is None:
        raise ApiError(404, message="Entity not found", shape="messages")
    dto = org.render_location(loc)
    if req.q.get("$fields"):
        dto = select_fields(dto, req.q.get("$fields"))
    return 200, MT_JSON, dto, []


PERSON_DEFAULT_FIELDS = ("id", "dynamicName", "firstName", "surName",
                         "email", "archived", "branch")


def ep_persons(state, org, req):
    q = req.q
    q.check_known({"pageStart", "pageSize", "fields", "sort", "query"})
    start = q.integer("pageStart", 0, 0, 1 << 31)
    size = q.integer("pageSize", 50, 1, 5000)
    effective = size if state.max_page is None else min(size,
                                                         state.max_page)
    paths = _template_paths("person", org)
    fields = None
    spec = q.get("fields")
    if spec and spec.strip() not in ("*", "all"):
        fields = ["id"]
        for f in spec.split(","):
            f = f.strip()
            if not f:
                continue
            if f.split(".", 1)[0] not in paths:
                raise ApiError(400, message="Unknown field: " + f,
                               shape="messages")
            if f.split(".", 1)[0] not in fields:
                fields.append(f.split(".", 1)[0])
    elif not spec:
        fields = list(PERSON_DEFAULT_FIELDS)
    pred = None
    if q.get("query"):
        try:
            pred = fiql_compile(q.get("query"), lambda s: s in paths)
        except FiqlError as e:
            raise ApiError(400, message=str(e), shape="messages") from None
    dtos = [org.render_person(p) for p in org.persons]
    if pred is not None:
        dtos = [d for d in dtos if pred(lambda s, d=d: dotted_values(d, s))]
    sort = q.get("sort") or "dynamicName:asc"
    keys = []
    for part in sort.split(","):
        name, _, direction = part.strip().partition(":")
        direction = (direction or "asc").lower()
        if name not in paths or direction not in ("asc", "desc"):
            raise ApiError(400, message="Invalid sort: " + part,
                           shape="messages")
        keys.append((name, direction == "desc"))
    for name, desc in reversed(keys):
        def key(d, name=name):
            v = (dotted_values(d, name) or [None])[0]
            return (v is None, str(v).casefold() if v is not None else "")
        dtos.sort(key=key, reverse=desc)
    page = dtos[start:start + effective]
    if fields is not None:
        page = [{k: d[k] for k in fields} for d in page]
    more = start + effective < len(dtos)
    nxt = None
    if more:
        params = [("pageStart", str(start + effective)),
                  ("pageSize", str(size))]
        for name in ("fields", "sort", "query"):
            if q.has(name):
                params.append((name, q.get(name)))
        nxt = req.base_url + "/tas/api/persons?" + urlencode(params)
    return (206 if more else 200), MT_PERSONS, \
        {"item": page, "size": len(page), "next": nxt}, []


# Routes on the org data: (offered media types, {method: handler}, arg,
# error shape of the family's 403 when denied).

def org_route(path):
    p = path[len(API_PREFIX) - 1:]          # keeps the leading '/'
    if p == "/version":
        return [MT_JSON], {"GET": ep_version}, None, "errors"
    if p == "/productVersion":
        return [MT_JSON], {"GET": ep_product_version}, None, "errors"
    if p == "/reservations":
        return [MT_JSON], {"GET": ep_reservations,
                           "POST": ep_create_reservation}, None, "errors"
    for action, ep in (("/reschedule", ep_reschedule),
                       ("/reservedFacilities/move", ep_move_facility),
                       ("/cancel", ep_cancel)):
        if p.startswith("/reservations/") and p.endswith(action) and \
                p.count("/") == 2 + action.count("/"):
            return [MT_JSON], {"POST": ep}, \
                unquote(p[len("/reservations/"):-len(action)]), "errors"
    if p.startswith("/reservations/") and p.count("/") == 2 and \
            len(p) > len("/reservations/"):
        return [MT_JSON], {"GET": ep_reservation, "PATCH": ep_reservation}, \
            unquote(p[len("/reservations/"):]), "errors"
    if p == "/reservableLocations":
        return [MT_JSON], {"GET": ep_reservable_locations}, None, "errors"
    if p == "/reservationCancellationReasons":
        return [MT_JSON], {"GET": ep_cancellation_reasons}, None, "errors"
    if p == "/locations":
        return [MT_JSON], {"GET": ep_locations}, None, "messages"
    if p.startswith("/locations/id/") and p.count("/") == 3 and \
            len(p) > len("/locations/id/"):
        return [MT_JSON], {"GET": ep_location}, \
            unquote(p[len("/locations/id/"):]), "messages"
    if p == "/persons":
        return [MT_PERSONS], {"GET": ep_persons}, None, "messages"
    return None


def deny_shape(path):
    """The 403 body shape of a denied path: Supporting Files answers with
    a bare [{"message"}] array, the other APIs with {"errors":[...]}."""
    p = path[len(API_PREFIX) - 1:]
    for prefix in ("/persons", "/locations", "/branches", "/operators"):
        if p == prefix or p.startswith(prefix + "/"):
            return "messages"
    return "errors"


# ---------------------------------------------------------------------------
# Routing.  Each route: (method, media types offered, handler).  The first
# offered media type is the Content-Type of the answer.

def route(path):
    """Returns (offered media types, handler, extra args) or None."""
    if not path.startswith(AM_PREFIX + "/"):
        return None
    rest = path[len(AM_PREFIX):]
    if rest == "/fields":
        return [MT_FIELDS, MT_JSON], ep_fields, ()
    if rest == "/assets":
        return [MT_ASSETS], ep_assets, ()
    if rest == "/stockQuantities":
        return [MT_STOCK_QUANTITIES], ep_stock_quantities, ()
    parts = rest.split("/")
    if len(parts) == 4 and parts[1] == "assets" and parts[3] == "assignments" \
            and parts[2]:
        return [MT_ASSIGNMENTS], ep_assignments, (parts[2],)
    return None


class Handler(faults.FaultMixin, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-topdesk"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120
    status_text = STATUS_TEXT

    # -- plumbing ----------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.state.verbose:
            sys.stderr.write("fake-topdesk: %s %s\n" % (
                self.address_string(), fmt % args))

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        try:
            n = int(n)
        except ValueError:
            n = 0
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, headers=()):
        self.send_all(status, dump_json(obj), MT_JSON, headers)

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
        body = self.read_body()
        url = urlsplit(self.path)
        path = url.path
        try:
            if path.startswith("/__fake/"):
                self.control(method, path, body)
            elif path.startswith(API_PREFIX) or path == API_PREFIX[:-1]:
                self.api(method, path, url.query, body)
            else:
                self.send_all(404, b"")
        except (ConnectionError, BrokenPipeError, socket.timeout):
            self.close_connection = True

    # -- control endpoints (no auth) -----------------------------------------

    def control(self, method, path, body):
        state = self.server.state
        obj = None
        if method in ("POST", "PATCH") and body:
            try:
                obj = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                self.send_json(400, {"error": "invalid JSON: %s" % e})
                return
        try:
            if path == "/__fake/stats" and method == "GET":
                self.send_json(200, state.stats())
            elif path == "/__fake/reset" and method == "POST":
                state.reset_stats()
                self.send_json(200, {"ok": True})
            elif path == "/__fake/faults" and method in ("GET", "POST"):
                self.send_json(200, state.faults.control(method, obj))
            elif path == "/__fake/data" and method == "GET":
                data = state.dataset.to_json()
                with state.lock:
                    data.update(state.org.to_json())
                self.send_json(200, data)
            elif path == "/__fake/data" and method == "POST":
                self.control_data(state, obj)
            elif path == "/__fake/deny" and method == "POST":
                if not isinstance(obj, dict) or not isinstance(
                        obj.get("paths"), list) or not all(
                        isinstance(x, str) and x for x in obj["paths"]):
                    raise ValueError("expected {\"paths\":[\"/tas/api/...\"]}")
                with state.lock:
                    state.denied = list(obj["paths"])
                self.send_json(200, {"ok": True, "paths": obj["paths"]})
            elif path == "/__fake/deny" and method == "GET":
                with state.lock:
                    self.send_json(200, {"paths": list(state.denied)})
            elif path == "/__fake/reservations" or path.startswith(
                    "/__fake/reservations/"):
                self.control_reservations(state, method, path, obj)
            elif path == "/__fake/conflicts" and method == "POST":
                if not isinstance(obj, dict) or obj.get("mode") not in (
                        "refuse", "conflicting"):
                    raise ValueError("expected {\"mode\":\"refuse\"|"
                                     "\"conflicting\"}")
                with state.lock:
                    state.conflicts = obj["mode"]
                self.send_json(200, {"ok": True})
            elif path.startswith("/__fake/locations/") and method == "POST":
                self.control_location(state, path, obj)
            elif path == "/__fake/field" and method == "POST":
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                cur = state.dataset
                if obj.get("remove"):
                    field = None
                else:
                    field = dict(cur.field or DEFAULT_FIELD)
                    for k in ("id", "name"):
                        if k in obj:
                            if not isinstance(obj[k], str) or not obj[k]:
                                raise ValueError(k + " must be a string")
                            field[k] = obj[k]
                state.set_dataset(cur.with_field(field))
                self.send_json(200, {"ok": True, "field": field})
            else:
                self.send_json(404, {"error": "no such control endpoint"})
        except ValueError as e:   # DataError is a ValueError
            self.send_json(400, {"error": str(e)})

    def control_data(self, state, obj):
        """POST /__fake/data: each part given replaces that part; a part
        left out stays as it is."""
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        org_given = [k for k in Org.KEYS if k in obj]
        if "stocks" not in obj and not org_given:
            raise DataError("data set must be an object with \"stocks\" "
                            "and/or " + ", ".join(Org.KEYS))
        ds = None
        if "stocks" in obj:
            ds = Dataset(obj, state.dataset.tag)
        with state.lock:
            if org_given:
                merged = state.org.to_json()
                for k in org_given:
                    merged[k] = obj[k]
                org = Org(merged)
                org.seq = state.org.seq
                state.org = org
            org = state.org
        if ds is not None:
            state.set_dataset(ds)
        ds = state.dataset
        self.send_json(200, {"ok": True, "stocks": len(ds.stocks),
                             "assets": ds.n_assets,
                             "locations": len(org.locations),
                             "persons": len(org.persons),
                             "reservations": len(org.reservations)})

    def control_reservations(self, state, method, path, obj):
        key = unquote(path[len("/__fake/reservations/"):]) \
            if path.startswith("/__fake/reservations/") else None
        with state.lock:
            org = state.org
            if key is None and method == "GET":
                self.send_json(200, {"reservations": [
                    org.render_reservation(r)
                    for r in org.sorted_reservations()]})
                return
            if key is None and method == "POST":
                r = org.add_reservation(obj if obj is not None else {},
                                        utcnow())
                self.send_json(200, org.render_reservation(r))
                return
            if key is None:
                self.send_json(405, {"error": "GET or POST"})
                return
            r = org.find_reservation(key)
            if r is None:
                self.send_json(404, {"error": "no reservation " + key})
            elif method == "GET":
                self.send_json(200, org.render_reservation(r))
            elif method == "PATCH":
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                org.change_reservation(r, obj, utcnow())
                self.send_json(200, org.render_reservation(r))
            elif method == "DELETE":
                org.delete_reservation(r)
                self.send_json(200, {"ok": True})
            else:
                self.send_json(405, {"error": "GET, PATCH or DELETE"})

    def control_location(self, state, path, obj):
        """POST /__fake/locations/{id}: {"text1": "mailbox"|""|null} maps
        or unmaps the room; also optionalFields1/2 (merged), name,
        roomNumber, capacity, reservable, archived, blockTime."""
        lid = unquote(path[len("/__fake/locations/"):])
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        with state.lock:
            org = state.org
            loc = org.loc_index.get(lid)
            if loc is None:
                self.send_json(404, {"error": "no location " + lid})
                return
            x = {k: v for k, v in loc.items()}
            x["optionalFields1"] = dict(loc["optionalFields1"])
            x["optionalFields2"] = dict(loc["optionalFields2"])
            for k, v in obj.items():
                if k == "text1":
                    x["optionalFields1"]["text1"] = v if v is not None else ""
                elif k in ("optionalFields1", "optionalFields2"):
                    if not isinstance(v, dict):
                        raise ValueError(k + " must be an object")
                    x[k].update(v)
                elif k in ("name", "roomNumber", "capacity", "reservable",
                           "archived", "blockTime", "branch", "roomType"):
                    x[k] = v
                else:
                    raise ValueError("cannot change " + k)
            for k in ("optionalFields1", "optionalFields2"):
                x[k] = sparse_json(x[k])
            new = org._location(x)
            loc.clear()
            loc.update(new)
            self.send_json(200, org.render_location(loc))

    # -- the API ---------------------------------------------------------------

    def api(self, method, path, query, body=b""):
        state = self.server.state
        state.begin(path, method)
        status = None
        try:
            status = self.api_answer(state, method, path, query, body)
        finally:
            state.end(status)
            if method == "PATCH":
                state.record_patch(path, body, status)
            if method != "GET":
                state.record_write(method, path, body, status)

    def api_answer(self, state, method, path, query, body=b""):
        """Answers one API request; returns the status sent (None: dropped)."""
        fault = state.faults.pick(method, path)
        if state.latency > 0:
            time.sleep(state.latency)
        slow = 0.0
        if fault is not None:
            answered, st, slow = self.answer_fault(fault, self.fault_error)
            if answered:
                return st

        try:
            if not self.authorised(state):
                raise ApiError(401, empty=True, headers=[
                    ("WWW-Authenticate", 'Basic realm="TOPdesk"')])
            with state.lock:
                denied = any(path.startswith(d) for d in state.denied)
            if denied:
                raise ApiError(403, "forbidden",
                               "No permission to access the data",
                               shape=deny_shape(path))
            r = route(path)
            if r is None:
                r = org_route(path)
                if r is None:
                    raise ApiError(404, "not_found", "no such endpoint")
                return self.api_org(state, method, path, query, body, r,
                                    slow)
            offered, handler, extra = r
            if method != "GET":
                raise ApiError(405, "method_not_allowed",
                               "the fake only serves GET here",
                               headers=[("Allow", "GET")])
            if not accepts(self.headers.get("Accept"), offered):
                raise ApiError(406, "not_acceptable",
                               "Accept must allow " + " or ".join(offered))
            st, ctype, data = state.answer(path, query, handler, extra)
            self.send_all(st, data, ctype, (), slow)
            return st
        except ApiError as e:
            self.send_all(e.status, e.body(), MT_JSON, e.headers, slow)
            return e.status

    def api_org(self, state, method, path, query, body, r, slow):
        """Serves one request on the org data (not cached)."""
        offered, handlers, arg, shape = r
        try:
            handler = handlers.get(method)
            if handler is None:
                allow = ", ".join(sorted(handlers))
                raise ApiError(405, "method_not_allowed",
                               "allowed: " + allow,
                               headers=[("Allow", allow)])
            if not accepts(self.headers.get("Accept"), offered):
                raise ApiError(406, "not_acceptable",
                               "Accept must allow " + " or ".join(offered))
            host = self.headers.get("Host") or "%s:%d" % (
                self.server.server_name, self.server.server_port)
            req = Req(method, Query(query), body, arg, "http://" + host)
            with state.lock:
                st, ctype, obj, headers = handler(state, state.org, req)
            self.send_all(st, b"" if obj is None else dump_json(obj), ctype,
                          headers, slow)
            return st
        except ApiError as e:
            if e.shape is None and e.status != 401:
                e.shape = shape if e.status != 400 or shape != "messages" \
                    or path != "/tas/api/locations" else "errors"
            self.send_all(e.status, e.body(), MT_JSON, e.headers, slow)
            return e.status

    def fault_headers(self, status):
        if status == 401:
            return [("WWW-Authenticate", 'Basic realm="TOPdesk"')]
        return []

    def fault_error(self, st, headers, slow):
        """The answer of a fault rule without a body: a TOPdesk error."""
        err = ApiError(st, "fake_fault", "injected fault: HTTP %d" % st,
                       empty=(st == 401 or st < 200 or st in (204, 304)))
        self.send_all(st, err.body(), MT_JSON, headers, slow)

    def authorised(self, state):
        h = self.headers.get("Authorization", "")
        if not h[:6].lower() == "basic ":
            return False
        try:
            raw = base64.b64decode(h[6:].strip(), validate=True)
            user, _, password = raw.decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == state.user and password == state.password


def main(argv=None):
    p = argparse.ArgumentParser(description="Fake TOPdesk server for tests.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--dataset", default="demo",
                   help="demo, small, 1k, 100k or PATH.json")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--user", default="tdhook-api")
    p.add_argument("--password", default="secret")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--max-page", type=int, default=None,
                   help="serve at most N items per page whatever pageSize")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--dump-dataset", metavar="NAME",
                   help="print data set NAME as JSON and exit")
    p.add_argument("--now", metavar="DATETIME",
                   help="the time the generated reservations are placed "
                        "around (default: the current time)")
    p.add_argument("--date-format", choices=("z", "offset"), default="z",
                   help="z: 2024-06-12T08:00:00Z, offset: "
                        "2024-06-12T08:00:00.000+0000")
    args = p.parse_args(argv)
    DATE_STYLE[0] = args.date_format
    try:
        now = parse_date(args.now) if args.now else utcnow()
    except ValueError as e:
        p.error("--now: %s" % e)

    if args.dump_dataset:
        data = generate(args.dump_dataset, args.seed, now)
        out = Dataset(data, 0).to_json()
        out.update(Org(data).to_json())
        sys.stdout.write(json.dumps(out, ensure_ascii=False,
                                    indent=1) + "\n")
        return 0

    tag = zlib.crc32(("%s/%d" % (args.dataset, args.seed)).encode()) | 1
    try:
        data = generate(args.dataset, args.seed, now)
        ds = Dataset(data, tag)
        org = Org(data)
    except (OSError, ValueError) as e:
        sys.stderr.write("fake-topdesk: cannot load data set %s: %s\n"
                         % (args.dataset, e))
        return 2
    state = State(ds, args, org)

    server = fakebase.Server(("127.0.0.1", args.port), Handler)
    server.state = state
    banner = None
    if args.verbose:
        banner = ("fake-topdesk: listening on 127.0.0.1:%%d, data set %s (%d stocks, "
                  "%d assets, %d rooms, %d persons, %d reservations)"
                  % (args.dataset, len(ds.stocks), ds.n_assets, len(org.locations),
                     len(org.persons), len(org.reservations)))
    return fakebase.serve(server, args.port_file, banner)

if __name__ == "__main__":
    sys.exit(main())
