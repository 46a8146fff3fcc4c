#!/usr/bin/env python3
# The checker of tests/integration/stock.sh (run by it, never alone).
"""Computes what the stock check must find and checks reports and mails.

Prints "ok WHAT" or "FAIL WHAT" lines, and values for the `value` command."""
import csv
import os
import email
import html.parser
import io
import json
import re
import sys
from email import policy


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def flat(s):
    """tdhook turns control characters in TOPdesk's names into spaces, so no
    name can break a line of the digest."""
    if s is None:
        return None
    return "".join(" " if ord(c) < 0x20 or c == "\x7f" else c for c in s)


def expected(data, base):
    """The rooms as tdhook must report them, in its order."""
    rooms = []
    has_field = data.get("field") is not None
    for s in data["stocks"]:
        if s.get("archived"):
            continue
        bulk = sum(b.get("quantity", 0) for b in (s.get("bulk") or []) if b.get("quantity", 0) > 0)
        count = s.get("assets", 0) + bulk
        m = s.get("minimum") if has_field else None
        short = max(0, m - count) if m is not None else 0
        rank = 0 if short > 0 else (2 if m is not None else 1)
        rooms.append({
            "id": s["id"], "name": flat(s["name"]),
            "location": flat((s.get("location") or {}).get("name")),
            "branch": flat((s.get("branch") or {}).get("name")),
            "assets": s.get("assets", 0), "bulk_items": bulk, "count": count,
            "minimum": m, "shortfall": short,
            "status": ["short", "no minimum", "ok"][rank], "rank": rank,
            "url": base + "/tas/secure/assetmgmt/card.html?unid=" + s["id"],
        })
    # tdhook: largest shortfall first, then without minimum, then the rest;
    # ties by strcasecmp() of the name (ASCII case folding), then by id.
    rooms.sort(key=lambda r: (r["rank"], -r["shortfall"], r["name"].encode().lower(),
                              r["id"].encode()))
    return rooms


OUT = []


def check(what, cond, detail=""):
    OUT.append(("ok " if cond else "FAIL ") + what + ("" if cond or not detail else ": " + detail))
    return cond


def cmd_report(data_path, report_path, base, label):
    """Compares a report JSON (CLI --json or a job result) with the data."""
    rooms = expected(load(data_path), base)
    rep = load(report_path)
    if "result" in rep and "rooms" not in rep:
        rep = rep["result"]
    got = rep.get("rooms", [])
    check(f"{label}: {len(rooms)} stock rooms", rep.get("stock_rooms") == len(rooms),
          f"got {rep.get('stock_rooms')}")
    nshort = sum(r["rank"] == 0 for r in rooms)
    nnomin = sum(r["rank"] == 1 for r in rooms)
    check(f"{label}: {nshort} under their minimum", rep.get("short") == nshort,
          f"got {rep.get('short')}")
    check(f"{label}: {nnomin} without a minimum", rep.get("without_minimum") == nnomin,
          f"got {rep.get('without_minimum')}")
    check(f"{label}: the rooms in the right order",
          [r["id"] for r in got] == [r["id"] for r in rooms],
          "got " + ", ".join(r.get("name", "?") for r in got[:12]) +
          "; want " + ", ".join(r["name"] for r in rooms[:12]))
    bad = []
    byid = {r.get("id"): r for r in got}
    for want in rooms:
        g = byid.get(want["id"])
        if g is None:
            bad.append(want["name"] + " missing")
            continue
        for k in ("name", "location", "branch", "assets", "bulk_items", "count", "minimum",
                  "shortfall", "status", "url"):
            if g.get(k) != want[k]:
                bad.append(f"{want['name']}.{k}: {g.get(k)!r} != {want[k]!r}")
    check(f"{label}: names, places, counts, minimums, shortfalls and links as the data say",
          not bad, "; ".join(bad[:8]))


class HtmlFacts(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self.items, self.hrefs = [], [], []
        self.row = self.cell = self.item = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""
        elif tag == "li":
            self.item = ""
        elif tag == "a":
            self.hrefs.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None
        elif tag == "li" and self.item is not None:
            self.items.append(self.item.strip())
            self.item = None

    def handle_data(self, d):
        if self.cell is not None:
            self.cell += d
        if self.item is not None:
            self.item += d


def bare_lf(b):
    return re.search(rb"(?<!\r)\n", b) is not None


def bare_cr(b):
    return re.search(rb"\r(?!\n)", b) is not None


def mail_parts(msg):
    text = htmlp = csvp = None
    for part in msg.walk():
        ct = part.get_content_type()
        if part.is_multipart():
            continue
        if ct == "text/csv" or (part.get_filename() or "").endswith(".csv"):
            csvp = part
        elif ct == "text/plain" and part.get_content_disposition() != "attachment":
            text = part
        elif ct == "text/html":
            htmlp = part
    return text, htmlp, csvp


def cmd_mail(eml, data_path, base, mode, to):
    """Checks a digest mail.  mode: "daily", or "only:ID,ID,..." (the rooms
    only_new must show), or "none" (nothing short, always_mail)."""
    raw = open(eml, "rb").read()
    env = load(eml[:-4] + ".json")
    rooms = expected(load(data_path), base)
    if mode == "daily":
        shown = [r for r in rooms if r["rank"] < 2]
    elif mode == "none":
        shown = [r for r in rooms if r["rank"] == 1]
    else:
        ids = mode[5:].split(",")
        shown = [r for r in rooms if r["id"] in ids]
    hidden = [r for r in rooms if r not in shown]
    short = [r for r in shown if r["rank"] == 0]
    nomin = [r for r in shown if r["rank"] == 1]

    check("mail: CRLF line ends only (no bare LF)", not bare_lf(raw))
    check("mail: no bare CR", not bare_cr(raw))
    head = raw.split(b"\r\n\r\n", 1)[0]
    check("mail: the header block is ASCII (RFC 2047 for the rest)", max(head) < 128)
    check("mail: envelope recipients are exactly stock_check.to",
          env.get("rcpt_tos") == [to], f"got {env.get('rcpt_tos')}")
    msg = email.message_from_bytes(raw, policy=policy.default)
    check("mail: To is stock_check.to", to in str(msg["to"]), str(msg["to"]))
    check("mail: no Bcc, Cc header", msg["bcc"] is None and msg["cc"] is None)
    for line in head.split(b"\r\n"):
        if re.match(rb"(?i)bcc\s*:", line):
            check("mail: no Bcc line in the header block", False, line.decode("ascii", "replace"))
    subject = str(msg["subject"])
    check("mail: the subject has no CR or LF", "\r" not in subject and "\n" not in subject)
    if mode == "daily" and short:
        top = short[0]
        want = [str(len(short)), top["name"].replace("\r", " ").replace("\n", " ")[:8],
                str(top["shortfall"])]
        check(f"mail: subject names the most short room ({subject})",
              all(w in subject for w in want) and "minimum" in subject,
              f"want {want}")
        if len(short) > 1:
            check("mail: subject counts the short rooms",
                  f"{len(short)} stock rooms" in subject, subject)
    elif mode == "none":
        check(f"mail: subject says nothing is short ({subject})", "no stock room" in subject)
    else:
        check(f"mail: subject says {len(short)} newly short ({subject})",
              str(len(short)) in subject and "new" in subject)
    check("mail: multipart/mixed", msg.get_content_type() == "multipart/mixed",
          msg.get_content_type())
    alt = [p for p in msg.walk() if p.get_content_type() == "multipart/alternative"]
    check("mail: a multipart/alternative inside", len(alt) == 1)
    text, htmlp, csvp = mail_parts(msg)
    if not (check("mail: a text part", text is not None) and
            check("mail: an HTML part", htmlp is not None) and
            check("mail: a CSV attachment", csvp is not None)):
        return
    check("mail: the CSV is an attachment named stock-check.csv",
          csvp.get_content_disposition() == "attachment" and csvp.get_filename() == "stock-check.csv",
          f"{csvp.get_content_disposition()} {csvp.get_filename()}")
    for name, p in (("text", text), ("HTML", htmlp), ("CSV", csvp)):
        body = p.get_payload(decode=True)
        check(f"mail: the {name} part decodes to CRLF lines", not bare_lf(body))
        check(f"mail: the {name} part is UTF-8", p.get_content_charset() in ("utf-8", None),
              str(p.get_content_charset()))
    t = text.get_content()
    lines = t.replace("\r\n", "\n").split("\n")
    h = HtmlFacts()
    h.feed(htmlp.get_content())
    raw = csvp.get_content()
    # A byte order mark first, so that Excel reads UTF-8 (not "BelgiÃ«").
    check("mail: the CSV starts with a UTF-8 byte order mark", raw.startswith("\ufeff"),
          repr(raw[:8]))
    c = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"), newline=""),
                        delimiter=os.environ.get("CSV_SEPARATOR", ",")))

    def clean(s):
        return s.replace("\r", " ").replace("\n", " ")

    # text: a row per short room ending with count, minimum, shortfall; a line
    # per room without minimum; a link line per shown room.
    tn = t.replace("\r\n", "\n")
    for r in short:
        nums = [str(r["count"]), str(r["minimum"]), str(r["shortfall"])]
        place = ("%s / %s" % (r["location"], r["branch"]) if r["location"] and r["branch"]
                 else r["location"] or r["branch"] or "-")
        # A row: name, place, count, minimum, shortfall (a CR LF inside a
        # name from TOPdesk may break the row; the facts must still be there).
        row = (r"(?m)^" + re.escape(r["name"].replace("\r\n", "\n")) + r" +" +
               re.escape(place.replace("\r\n", "\n")) + r" +" + r" +".join(nums) + r"$")
        check(f"text: {clean(r['name'])} {'/'.join(nums)} at {clean(place)}",
              re.search(row, tn) is not None)
    for r in nomin:
        check(f"text: {r['name']} without minimum, {r['count']} in stock",
              any(r["name"] in l and f"{r['count']} in stock" in l for l in lines))
    for r in shown:
        check(f"text: link to the stock card of {clean(r['name'])}", r["url"] in t)
    for r in hidden:
        check(f"text: nothing about {r['name']}", r["url"] not in t)
    if mode == "none":
        check("text: says that no stock room is under its minimum", "No stock room is under" in t)
    # HTML: a table row per short room, a list item per room without one.
    for r in short:
        want = [r["name"], r["location"] or "-", r["branch"] or "-", str(r["count"]),
                str(r["minimum"]), str(r["shortfall"])]
        check(f"HTML: row of {clean(r['name'])}", want in h.rows or
              [clean(x) for x in want] in [[clean(x) for x in row] for row in h.rows],
              f"rows {h.rows[:6]}")
    for r in nomin:
        check(f"HTML: {r['name']} without minimum",
              any(r["name"] in i and f"{r['count']} in stock" in i for i in h.items), str(h.items))
    for r in shown:
        check(f"HTML: link to the stock card of {clean(r['name'])}", r["url"] in h.hrefs)
    for r in hidden:
        check(f"HTML: nothing about {r['name']}", r["url"] not in h.hrefs)
    check("HTML: as many table rows as short rooms (plus the header)",
          len(h.rows) == (len(short) + 1 if short else 0), str(len(h.rows)))
    # CSV: a header, then exactly the shown rooms in the report's order.
    want_rows = [["stock_room", "location", "branch", "count", "minimum", "shortfall", "status", "url"]]
    for r in shown:
        if r["rank"] == 0:
            want_rows.append([r["name"], r["location"] or "", r["branch"] or "", str(r["count"]),
                              str(r["minimum"]), str(r["shortfall"]), "short", r["url"]])
        else:
            want_rows.append([r["name"], r["location"] or "", r["branch"] or "", str(r["count"]),
                              "", "", "no minimum", r["url"]])
    check("CSV: exactly the shown rooms, in order, with the same facts", c == want_rows,
          f"got {c[:5]} want {want_rows[:5]}")


def cmd_dead(eml, admin, job, needle):
    """Checks a dead-letter mail."""
    raw = open(eml, "rb").read()
    env = load(eml[:-4] + ".json")
    msg = email.message_from_bytes(raw, policy=policy.default)
    check("dead letter: sent to admin_mail", env.get("rcpt_tos") == [admin],
          str(env.get("rcpt_tos")))
    check("dead letter: the subject names the job", job in str(msg["subject"]),
          str(msg["subject"]))
    body = msg.get_body(("plain",))
    t = body.get_content() if body else ""
    check("dead letter: the body names the job", job in t, t[:300])
    check(f"dead letter: the body tells the error ({needle})", needle in t, t[:400])
    check("dead letter: CRLF only", not bare_lf(raw))


def cmd_value(path, expr):
    d = load(path)
    v = eval(expr, {"d": d})
    print(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    return


def main():
    cmd = sys.argv[1]
    if cmd == "report":
        cmd_report(*sys.argv[2:6])
    elif cmd == "mail":
        cmd_mail(*sys.argv[2:7])
    elif cmd == "dead":
        cmd_dead(*sys.argv[2:6])
    elif cmd == "value":
        cmd_value(*sys.argv[2:4])
        return
    for line in OUT:
        print(line)


main()
