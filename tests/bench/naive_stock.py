#!/usr/bin/python3
"""The stock check the way a TOPdesk admin's script would do it: the baseline
of tests/bench/stock.sh.

Python's urllib, one request at a time, a new connection per request, no
parallelism.  Two modes:

  same     the same requests as tdhook (field lookup, the stock room list,
           per stock room one asset count and its stock quantities), but
           strictly one after the other;
  listing  what a script written from the API docs usually does: list the
           fields, page through the stock rooms, then per stock room page
           through every linked asset with pageSize=1000 and count the rows,
           and page through its stock quantities.

Prints one line of JSON: stock_rooms, short, without_minimum, requests,
bytes (response bodies received), seconds.  Exit 1 on an HTTP error.
"""

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CAPABILITY = "dad98dad-054b-41ae-a727-3e3b37342739"
ASSETS = "application/x.topdesk-am-assets-v2+json"
FIELDS = "application/x.topdesk-am-fields-v2+json"
QUANTITIES = "application/x.topdesk-am-stock-quantities-v0+json"


class Client:
    def __init__(self, url, user, password):
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.auth = "Basic " + token
        self.requests = 0
        self.bytes = 0

    def get(self, path, params, accept):
        """GET with retries on 429/5xx (Retry-After or 1 s), as scripts do."""
        url = self.url + path + "?" + urllib.parse.urlencode(params)
        for attempt in range(5):
            req = urllib.request.Request(url, headers={"Authorization": self.auth,
                                                       "Accept": accept})
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=60) as res:
                    body = res.read()
                    self.bytes += len(body)
                    return res.status, (json.loads(body) if body else None)
            except urllib.error.HTTPError as e:
                if e.code in (429, 500, 502, 503, 504) and attempt < 4:
                    time.sleep(float(e.headers.get("Retry-After") or 1))
                    continue
                raise
        raise RuntimeError("unreachable")


def find_field(c, name, search):
    params = {"searchTerm": name} if search else {}
    _, body = c.get("/tas/api/assetmgmt/fields", params, FIELDS)
    for f in body.get("fields", []):
        if f.get("id") == name or (f.get("name") or "").lower() == name.lower():
            return f["id"]
    sys.exit(f"naive_stock: no field {name!r}")


def stock_rooms(c, field, with_count):
    """All non-archived stock rooms, page by page (pageStart)."""
    rooms, start = [], 0
    while True:
        params = {"resourceCategory": "stock", "archived": "false",
                  "fields": "name," + field, "pageStart": start, "pageSize": 1000}
        if with_count and start == 0:
            params["fetchCount"] = "true"
        status, body = c.get("/tas/api/assetmgmt/assets", params, ASSETS)
        data = body.get("dataSet", [])
        for item in data:
            rooms.append({"id": item.get("id") or item.get("unid"), "name": item.get("name"),
                          "minimum": item.get(field)})
        if status != 206 or not data:
            return rooms
        start += len(data)


def count_assets(c, stock_id):
    params = {"resourceCategory": "asset", "archived": "false", "linkedToAsset": stock_id,
              "linkedWithDirection": "any", "linkedWithCapability": CAPABILITY,
              "fetchCount": "true", "fetchData": "false", "pageSize": 1}
    _, body = c.get("/tas/api/assetmgmt/assets", params, ASSETS)
    return int(body.get("count", 0))


def list_assets(c, stock_id):
    n, start = 0, 0
    while True:
        params = {"resourceCategory": "asset", "archived": "false", "linkedToAsset": stock_id,
                  "linkedWithDirection": "source", "linkedWithCapability": CAPABILITY,
                  "fields": "name", "pageStart": start, "pageSize": 1000}
        status, body = c.get("/tas/api/assetmgmt/assets", params, ASSETS)
        data = body.get("dataSet", [])
        n += len(data)
        if status != 206 or not data:
            return n
        start += len(data)


def bulk_quantity(c, stock_id):
    total, last = 0, None
    while True:
        params = {"stockId": stock_id, "pageSize": 1000}
        if last is not None:
            params["lastSeenName"] = last
        _, body = c.get("/tas/api/assetmgmt/stockQuantities", params, QUANTITIES)
        data = body.get("dataSet", [])
        for row in data:
            q = row.get("quantity") or 0
            if q > 0:
                total += q
            last = (row.get("bulkItem") or {}).get("name", last)
        if len(data) < 1000:
            return total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--user", default="tdhook-api")
    p.add_argument("--password", required=True)
    p.add_argument("--mode", choices=("same", "listing"), default="same")
    p.add_argument("--minimum-field", default="Minimale voorraad")
    a = p.parse_args()

    t0 = time.monotonic()
    c = Client(a.url, a.user, a.password)
    same = a.mode == "same"
    field = find_field(c, a.minimum_field, search=same)
    rooms = stock_rooms(c, field, with_count=same)
    short = nomin = 0
    for r in rooms:
        count = count_assets(c, r["id"]) if same else list_assets(c, r["id"])
        count += bulk_quantity(c, r["id"])
        m = r["minimum"]
        if m is None or m == "":
            nomin += 1
        elif float(m) > count:
            short += 1
    print(json.dumps({"mode": a.mode, "stock_rooms": len(rooms), "short": short,
                      "without_minimum": nomin, "requests": c.requests, "bytes": c.bytes,
                      "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
