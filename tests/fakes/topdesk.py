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
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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
                 empty=False, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.applies_to = applies_to or []
        self.empty = empty
        self.headers = headers or []

    def body(self):
        if self.empty:
            return b""
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


def gen_demo(seed):
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
    return {"field": dict(DEFAULT_FIELD), "stocks": stocks}


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


def generate(name, seed):
    if name == "demo":
        return gen_demo(seed)
    if name == "small":
        return gen_synthetic(seed, 10, 10)
    if name == "1k":
        return gen_synthetic(seed, 100, 1000)
    if name == "100k":
        return gen_synthetic(seed, 1000, 100000)
    with open(name, "r", encoding="utf-8") as f:
        return json.load(f)


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
    def __init__(self, dataset, args):
        self.lock = threading.Lock()
        self.dataset = dataset
        self.cache = {}
        self.user = args.user
        self.password = args.password
        self.latency = args.latency_ms / 1000.0
        self.max_page = args.max_page
        self.verbose = args.verbose
        self.faults = []
        self.fault_rng = random.Random(args.seed)
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

    def begin(self, path):
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
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
            }

    def pick_fault(self, method, path):
        """The rule that applies to this request, or None."""
        with self.lock:
            for rule in self.faults:
                if not path.startswith(rule["path"]):
                    continue
                if rule["method"] and rule["method"] != method:
                    continue
                if rule["times"] is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                if self.fault_rng.random() < rule["ratio"]:
                    return dict(rule)
                return None
        return None


def parse_rules(obj):
    if not isinstance(obj, dict) or not isinstance(obj.get("rules"), list):
        raise ValueError("expected {\"rules\":[...]}")
    rules = []
    for r in obj["rules"]:
        if not isinstance(r, dict):
            raise ValueError("each rule must be an object")
        status = r.get("status")
        if status is not None and (not isinstance(status, int)
                                   or not 100 <= status <= 599):
            raise ValueError("status must be an HTTP status code")
        times = r.get("times")
        if times is not None and (not isinstance(times, int) or times < 0):
            raise ValueError("times must be an int >= 0")
        ra = r.get("retry_after")
        rules.append({
            "path": str(r.get("path", "/")),
            "method": (str(r["method"]).upper() if r.get("method") else None),
            "status": status,
            "times": times,
            "retry_after": None if ra is None else str(ra),
            "delay_ms": float(r.get("delay_ms") or 0),
            "drop": bool(r.get("drop", False)),
            "slow_body_ms": float(r.get("slow_body_ms") or 0),
            "ratio": float(1.0 if r.get("ratio") is None else r["ratio"]),
            "body": r.get("body"),
        })
    return rules


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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-topdesk"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120

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

    def send_all(self, status, body, content_type=None, headers=(),
                 slow_ms=0.0):
        self.log_request(status)
        lines = ["HTTP/1.1 %d %s" % (status, STATUS_TEXT.get(status, "Status")),
                 "Server: fake-topdesk",
                 "Date: " + self.date_time_string(),
                 "Content-Length: %d" % len(body)]
        if content_type and body:
            lines.append("Content-Type: " + content_type)
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if slow_ms <= 0 or not body:
            self.wfile.write(head + body)
            return
        self.wfile.write(head)
        chunks = max(1, min(len(body), int(slow_ms // 10)))
        step = -(-len(body) // chunks)
        pause = slow_ms / 1000.0 / chunks
        for i in range(0, len(body), step):
            time.sleep(pause)
            self.wfile.write(body[i:i + step])

    def send_json(self, status, obj, headers=()):
        self.send_all(status, dump_json(obj), MT_JSON, headers)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

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
                self.api(method, path, url.query)
            else:
                self.send_all(404, b"")
        except (ConnectionError, BrokenPipeError, socket.timeout):
            self.close_connection = True

    # -- control endpoints (no auth) -----------------------------------------

    def control(self, method, path, body):
        state = self.server.state
        obj = None
        if method == "POST" and body:
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
            elif path == "/__fake/faults" and method == "POST":
                rules = parse_rules(obj)
                with state.lock:
                    state.faults = rules
                self.send_json(200, {"ok": True, "rules": len(rules)})
            elif path == "/__fake/faults" and method == "GET":
                with state.lock:
                    rules = [dict(r) for r in state.faults]
                self.send_json(200, {"rules": rules})
            elif path == "/__fake/data" and method == "GET":
                self.send_json(200, state.dataset.to_json())
            elif path == "/__fake/data" and method == "POST":
                ds = Dataset(obj, state.dataset.tag)
                state.set_dataset(ds)
                self.send_json(200, {"ok": True, "stocks": len(ds.stocks),
                                     "assets": ds.n_assets})
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

    # -- the API ---------------------------------------------------------------

    def api(self, method, path, query):
        state = self.server.state
        state.begin(path)
        status = None
        try:
            status = self.api_answer(state, method, path, query)
        finally:
            state.end(status)

    def api_answer(self, state, method, path, query):
        """Answers one API request; returns the status sent (None: dropped)."""
        fault = state.pick_fault(method, path)
        if state.latency > 0:
            time.sleep(state.latency)
        slow = 0.0
        if fault is not None:
            if fault["delay_ms"] > 0:
                time.sleep(fault["delay_ms"] / 1000.0)
            if fault["drop"]:
                self.drop()
                return None
            slow = fault["slow_body_ms"]
            if fault["status"] is not None:
                st = fault["status"]
                headers = []
                if fault["retry_after"] is not None:
                    headers.append(("Retry-After", fault["retry_after"]))
                b = fault["body"]
                if b is None:
                    err = ApiError(st, "fake_fault",
                                   "injected fault: HTTP %d" % st,
                                   empty=(st == 401 or st < 200 or
                                          st in (204, 304)))
                    data, ctype = err.body(), MT_JSON
                elif isinstance(b, str):
                    data, ctype = b.encode("utf-8"), "text/plain"
                else:
                    data, ctype = dump_json(b), MT_JSON
                if st == 401:
                    headers.append(("WWW-Authenticate",
                                    'Basic realm="TOPdesk"'))
                self.send_all(st, data, ctype, headers, slow)
                return st

        try:
            if not self.authorised(state):
                raise ApiError(401, empty=True, headers=[
                    ("WWW-Authenticate", 'Basic realm="TOPdesk"')])
            r = route(path)
            if r is None:
                raise ApiError(404, "not_found", "no such endpoint")
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


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def server_bind(self):
        # Skip HTTPServer.server_bind: its getfqdn() may wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


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
    args = p.parse_args(argv)

    if args.dump_dataset:
        ds = Dataset(generate(args.dump_dataset, args.seed), 0)
        sys.stdout.write(json.dumps(ds.to_json(), ensure_ascii=False,
                                    indent=1) + "\n")
        return 0

    tag = zlib.crc32(("%s/%d" % (args.dataset, args.seed)).encode()) | 1
    try:
        ds = Dataset(generate(args.dataset, args.seed), tag)
    except (OSError, ValueError) as e:
        sys.stderr.write("fake-topdesk: cannot load data set %s: %s\n"
                         % (args.dataset, e))
        return 2
    state = State(ds, args)

    server = Server(("127.0.0.1", args.port), Handler)
    server.state = state

    def on_signal(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        sys.stderr.write("fake-topdesk: listening on 127.0.0.1:%d, data set "
                         "%s (%d stocks, %d assets)\n"
                         % (port, args.dataset, len(ds.stocks), ds.n_assets))
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
