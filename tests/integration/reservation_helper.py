#!/usr/bin/env python3
# The helper of tests/integration/reservation.sh (run by it, never alone).
import contextlib, email, email.policy, glob, io, json, os, re, sys, time
import urllib.error, urllib.request

E = os.environ
PROP = "String {00020329-0000-0000-C000-000000000046} Name TopdeskReservationId".lower()


def fetch(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def graph_time(x):
    return re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", x["dateTime"]).group(1) + "Z"


def appointments():
    """{mailbox: [{id, subject, start, end, body, reservation_id}]}, live only."""
    out = {}
    if E["H_BACKEND"] == "graph":
        for mb, evs in json.loads(fetch(E["H_EX"] + "/__fake/events")[1]).items():
            out[mb.lower()] = [{
                "id": e["id"], "subject": e.get("subject") or "",
                "start": graph_time(e["start"]), "end": graph_time(e["end"]),
                "body": (e.get("body") or {}).get("content") or "",
                "reservation_id": next((p.get("value") for p in
                                        e.get("singleValueExtendedProperties") or []
                                        if (p.get("id") or "").lower() == PROP), None)}
                for e in evs if not e.get("isCancelled")]
    else:
        for mb, items in json.loads(fetch(E["H_EX"] + "/__fake/items")[1]).items():
            out[mb.lower()] = [{
                "id": i["id"], "subject": i.get("subject") or "",
                "start": i["start"], "end": i["end"], "body": i.get("body") or "",
                "reservation_id": i.get("property")}
                for i in items if i.get("folder", "calendar") == "calendar"]
    return out


def mails(needle):
    """(recipients, text) of each message in the sink about needle."""
    for eml in sorted(glob.glob(os.path.join(E["H_MAILDIR"], "*.eml"))):
        with open(eml[:-4] + ".json") as f:
            meta = json.load(f)
        with open(eml, "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        text = str(msg["subject"] or "")
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                text += "\n" + part.get_content()
        if needle in " ".join(text.split()):
            yield [r.lower() for r in meta["rcpt_tos"]], text


def run(cmd, args):
    """One request; prints its answer, returns the exit status."""
    if cmd == "py":                      # py JSON CODE ARGS...: CODE sees d and a
        code = "import json, sys\n" + args[1]
        exec(code, {"d": json.loads(args[0]), "a": args[2:]})
    elif cmd == "appts":
        d = appointments()
        print(json.dumps(d.get(args[0].lower(), []) if args else d))
    elif cmd == "of":
        for mb, evs in sorted(appointments().items()):
            if len(args) > 1 and mb != args[1].lower():
                continue
            for e in evs:
                if (e["reservation_id"] or "").lower() == args[0].lower():
                    print("\t".join([mb, e["id"], e["start"], e["end"], e["subject"]]))
    elif cmd == "get":                   # get URL EXPR: EXPR sees d (also as r)
        st, body = fetch(args[0])
        if st // 100 != 2:
            sys.stderr.write("GET %s: %d %s\n" % (args[0], st, body[:300]))
            return 1
        d = json.loads(body)
        print(eval(args[1], {"d": d, "r": d, "json": json}))
    elif cmd == "wait":                  # wait ID SECONDS: until the job is done
        end = time.monotonic() + float(args[1])
        while True:
            st, body = fetch("%s/jobs/%s" % (E["H_BASE"], args[0]), E["H_TOKEN"])
            status = json.loads(body).get("status") if st == 200 else None
            if status in ("done", "dead") or time.monotonic() > end:
                print(body)
                return 0 if status == "done" else 1
            time.sleep(0.1)
    elif cmd == "mails":
        print(sum(1 for rcpts, _ in mails(args[1]) if args[0].lower() in rcpts))
    elif cmd == "rcpts":
        for rcpts, _ in mails(args[0]):
            print(",".join(sorted(rcpts)))
    elif cmd == "text":                  # text RCPT NEEDLE: the mails to RCPT about NEEDLE
        for rcpts, text in mails(args[1]):
            if args[0].lower() in rcpts:
                print(" ".join(text.split()))
    elif cmd == "localspan":             # localspan ZONE START END: "11:00–12:00" there
        import zoneinfo
        from datetime import datetime
        z = zoneinfo.ZoneInfo(args[0])
        a, b = (datetime.fromisoformat(x.replace("Z", "+00:00")).astimezone(z) for x in args[1:3])
        print("%02d:%02d\u2013%02d:%02d" % (a.hour, a.minute, b.hour, b.minute))
    else:
        sys.stderr.write("reservation_helper.py: unknown command %s\n" % cmd)
        return 2
    return 0


# A request is one line: the arguments separated by \x1f, newlines inside
# them sent as \x1e.  The answer: "STATUS NOUT NERR", then NOUT lines of
# output and NERR lines of errors.
fin, fout = open(sys.argv[1]), open(sys.argv[2], "w")
for line in fin:
    argv = [x.replace("\x1e", "\n") for x in line.rstrip("\n").split("\x1f")]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = run(argv[0], argv[1:])
        except Exception as e:           # a failed check, not a dead helper
            sys.stderr.write("helper %s: %s: %s\n" % (argv[0], type(e).__name__, e))
            rc = 1
    o, e = out.getvalue().splitlines(), err.getvalue().splitlines()
    fout.write("%d %d %d\n" % (rc, len(o), len(e)))
    fout.write("".join(x + "\n" for x in o + e))
    fout.flush()
