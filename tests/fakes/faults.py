"""Fault injection shared by the HTTP fakes (topdesk.py and graph.py).

A fake keeps a Rules (set and listed through POST and GET /__fake/faults)
and asks it, for each request it serves, which fault applies; its request
handler takes FaultMixin, which acts on that fault: waits, drops the
connection, answers an error status (with Retry-After) or sends the answer
slowly.  The rules are those of tests/fakes/README.md ("A fault rule"):

    {"path": "/tas/api/assetmgmt/assets", "method": "GET", "status": 503,
     "times": 2, "retry_after": "1", "delay_ms": 0, "drop": false,
     "slow_body_ms": 0, "ratio": 1.0, "body": null}

Python standard library only.  Imported by the fakes, never run.
"""

import json
import random
import socket
import threading
import time


def dump_json(obj):
    return json.dumps(obj, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def parse_rules(obj, fold=str, texts=()):
    """The rules of a POST /__fake/faults body {"rules": [...]}.

    fold turns a path into the form requests are matched in (kept as the
    rule's "match"); texts names the extra string keys a fake reads for its
    error body (graph.py: code, message).  ValueError on a bad rule.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("rules"), list):
        raise ValueError("expected {\"rules\":[...]}")
    rules = []
    for r in obj["rules"]:
        if not isinstance(r, dict):
            raise ValueError("each rule must be an object")
        status = r.get("status")
        if status is not None and (isinstance(status, bool) or
                                   not isinstance(status, int)
                                   or not 100 <= status <= 599):
            raise ValueError("status must be an HTTP status code")
        times = r.get("times")
        if times is not None and (isinstance(times, bool) or
                                  not isinstance(times, int) or times < 0):
            raise ValueError("times must be an int >= 0")
        ra = r.get("retry_after")
        path = str(r.get("path", "/"))
        try:
            ratio = float(1.0 if r.get("ratio") is None else r["ratio"])
            delay = float(r.get("delay_ms") or 0)
            slow = float(r.get("slow_body_ms") or 0)
        except (TypeError, ValueError):
            raise ValueError("ratio, delay_ms and slow_body_ms must be "
                             "numbers")
        rule = {
            "path": path,
            "match": fold(path),
            "method": (str(r["method"]).upper() if r.get("method") else None),
            "status": status,
            "times": times,
            "retry_after": None if ra is None else str(ra),
        }
        for k in texts:
            rule[k] = None if r.get(k) is None else str(r[k])
        rule.update({
            "delay_ms": delay,
            "drop": bool(r.get("drop", False)),
            "slow_body_ms": slow,
            "ratio": ratio,
            "body": r.get("body"),
        })
        rules.append(rule)
    return rules


class Rules:
    """The fault rules of one fake, and the seeded dice of their "ratio".

    fold (default: none) is applied to a rule's path and to the path of
    each request before the prefix match: graph.py matches URL-decoded and
    case-insensitive, topdesk.py the path as sent.
    """

    def __init__(self, seed, fold=str, texts=()):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.fold = fold
        self.texts = texts
        self.rules = []

    def clear(self):
        with self.lock:
            self.rules = []

    def control(self, method, obj):
        """POST /__fake/faults (replace the rules with obj's) or GET (list
        them): the JSON answer.  ValueError on a bad rule."""
        if method == "POST":
            rules = parse_rules(obj, self.fold, self.texts)
            with self.lock:
                self.rules = rules
            return {"ok": True, "rules": len(rules)}
        with self.lock:
            return {"rules": [{k: v for k, v in r.items() if k != "match"}
                              for r in self.rules]}

    def pick(self, method, path):
        """The fault for this request (a copy of its rule), or None.

        The first rule whose path is a prefix of path, whose method is
        method (or none) and that has times left is used up by one; it
        then fires with the probability of its ratio.
        """
        key = self.fold(path)
        with self.lock:
            for rule in self.rules:
                if not key.startswith(rule["match"]):
                    continue
                if rule["method"] and rule["method"] != method:
                    continue
                if rule["times"] is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                if self.rng.random() < rule["ratio"]:
                    return dict(rule)
                return None
        return None


class FaultMixin:
    """For a fake's BaseHTTPRequestHandler: writes answers (at once or
    slowly), drops connections and acts on the fault Rules.pick chose.

    The handler sets status_text ({status: reason}) and server_version.
    """

    status_text = {}

    def send_all(self, status, body, content_type=None, headers=(),
                 slow_ms=0.0):
        """One whole answer with Content-Length; with slow_ms, the body
        goes in small pieces spread over that long."""
        self.log_request(status)
        lines = ["HTTP/1.1 %d %s" % (status, self.status_text.get(status,
                                                                  "Status")),
                 "Server: " + self.server_version,
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

    def drop(self):
        """Closes the connection without an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def fault_headers(self, status):
        """Headers a fault's answer with this status carries besides
        Retry-After, whatever its body."""
        return []

    def answer_fault(self, fault, error):
        """Acts on fault (from Rules.pick): sleeps its delay_ms, then drops
        the connection or answers its status, with Retry-After and its body
        (a string as text/plain, anything else as JSON).  Without a body,
        error(status, headers, slow_ms) sends the fake's own error answer.

        Returns (answered, status, slow_ms): status None when dropped; when
        not answered, the fake serves the request, its body over slow_ms.
        """
        if fault["delay_ms"] > 0:
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault["drop"]:
            self.drop()
            return True, None, 0.0
        slow = fault["slow_body_ms"]
        st = fault["status"]
        if st is None:
            return False, None, slow
        headers = []
        if fault["retry_after"] is not None:
            headers.append(("Retry-After", fault["retry_after"]))
        headers += self.fault_headers(st)
        b = fault["body"]
        if b is None:
            error(st, headers, slow)
        elif isinstance(b, str):
            self.send_all(st, b.encode("utf-8"), "text/plain", headers, slow)
        else:
            self.send_all(st, dump_json(b), "application/json", headers,
                          slow)
        return True, st, slow
