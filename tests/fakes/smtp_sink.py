#!/usr/bin/python3
"""SMTP sink for tdhook's tests and demo.

Accepts mail on 127.0.0.1 and stores each message as DIR/NNNN.eml (the DATA
bytes as received, after dot-unstuffing) plus DIR/NNNN.json with the
envelope.  Can refuse a sender or recipients, answer 451 to the first N
DATA commands, require AUTH, and rejects bare LFs like Exchange Online.
Built on Debian 12's python3-aiosmtpd (1.4.x); run it with /usr/bin/python3.
See tests/fakes/README.md.

Exit status: 0 after SIGTERM/SIGINT, 2 on bad usage or a start failure,
77 when aiosmtpd cannot be imported (automake's "skip").
"""

import argparse
import json
import logging
import os
import re
import socket
import sys
import threading
import warnings

# fakebase.py lies beside this file; no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakebase  # noqa: E402

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    sys.stderr.write("smtp_sink: aiosmtpd is not available "
                     "(Debian: apt-get install python3-aiosmtpd)\n")
    sys.exit(77)

BARE_LF = re.compile(rb"(?<!\r)\n")
FILE_NAME = re.compile(r"^(\d+)\.(?:eml|json)$")


class SinkHandler:
    """aiosmtpd handler: the hooks decide each answer, DATA stores."""

    def __init__(self, args):
        self.maildir = args.maildir
        self.refuse_sender = (args.refuse_sender or "").lower()
        self.refuse_rcpt = {a.lower() for a in args.refuse_rcpt}
        self.tempfail_left = args.tempfail_first
        self.require_auth = args.require_auth
        self.allow_bare_lf = args.allow_bare_lf
        self.verbose = args.verbose
        self.lock = threading.Lock()
        self.counter = 0
        for name in os.listdir(self.maildir):
            m = FILE_NAME.match(name)
            if m:
                self.counter = max(self.counter, int(m.group(1)))

    def note(self, msg):
        if self.verbose:
            sys.stderr.write("smtp_sink: %s\n" % msg)

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        if self.require_auth and not session.authenticated:
            self.note("MAIL FROM %s refused: no AUTH" % address)
            return "530 5.7.0 Authentication required"
        if self.refuse_sender and address.lower() == self.refuse_sender:
            self.note("MAIL FROM %s refused" % address)
            return "550 5.7.1 Sender refused by the sink"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if address.lower() in self.refuse_rcpt:
            self.note("RCPT TO %s refused" % address)
            return "550 5.1.1 Recipient refused by the sink"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or b""
        with self.lock:
            if self.tempfail_left > 0:
                self.tempfail_left -= 1
                self.note("DATA answered 451 (%d more)" % self.tempfail_left)
                return "451 4.3.0 Temporary failure, try again later"
        bare_lf = BARE_LF.search(data) is not None
        if bare_lf and not self.allow_bare_lf:
            self.note("DATA refused: bare LF")
            return "550 5.6.11 bare LF"
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "bare_lf": bare_lf,
            "auth_login": (session.login_data.decode("utf-8", "replace")
                           if isinstance(session.login_data, bytes)
                           else None),
            "size": len(data),
        }
        with self.lock:
            self.counter += 1
            n = self.counter
        base = os.path.join(self.maildir, "%04d" % n)
        # Both files are written under hidden temporary names and renamed:
        # the .json first, then the .eml, so whoever sees the .eml finds
        # both complete.
        self.write_atomic(base + ".json",
                          (json.dumps(meta, ensure_ascii=False, indent=1)
                           + "\n").encode("utf-8"))
        self.write_atomic(base + ".eml", data)
        self.note("stored %04d from %s to %s" % (n, envelope.mail_from,
                                                 ",".join(envelope.rcpt_tos)))
        return "250 2.0.0 OK: queued as %04d" % n

    @staticmethod
    def write_atomic(path, data):
        d, name = os.path.split(path)
        tmp = os.path.join(d, ".%s.tmp" % name)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
        os.replace(tmp, path)


class SinkController(Controller):
    """A Controller that binds its own socket first, so --port 0 works.

    aiosmtpd 1.4's Controller connects to (hostname, port) after starting
    to trigger the server factory; with port 0 it would connect to port 0.
    Binding here gives the real port before start().
    """

    def __init__(self, handler, port, **kwargs):
        self.sink_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sink_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sink_socket.bind(("127.0.0.1", port))
        real_port = self.sink_socket.getsockname()[1]
        super().__init__(handler, hostname="127.0.0.1", port=real_port,
                         **kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker,
                                       sock=self.sink_socket,
                                       ssl=self.ssl_context)


def main(argv=None):
    p = argparse.ArgumentParser(description="SMTP sink for tests.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--maildir", required=True)
    p.add_argument("--refuse-sender", metavar="ADDR")
    p.add_argument("--refuse-rcpt", metavar="ADDR", action="append",
                   default=[])
    p.add_argument("--tempfail-first", type=int, default=0, metavar="N")
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--require-auth", action="store_true")
    p.add_argument("--allow-bare-lf", action="store_true",
                   help="store messages with bare LFs (bare_lf: true) "
                        "instead of refusing them")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    if args.require_auth and not args.auth:
        p.error("--require-auth needs --auth USER:PASS")
    os.makedirs(args.maildir, exist_ok=True)
    if not args.verbose:
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
        warnings.simplefilter("ignore")

    smtp_kwargs = {
        "server_hostname": "smtp-sink.localhost",
        "ident": "tdhook smtp_sink",
    }
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep:
            p.error("--auth wants USER:PASS")
        want = LoginPassword(user.encode("utf-8"), password.encode("utf-8"))

        def authenticator(server, session, envelope, mechanism, auth_data):
            if (isinstance(auth_data, LoginPassword)
                    and auth_data.login == want.login
                    and auth_data.password == want.password):
                return AuthResult(success=True, auth_data=auth_data)
            return AuthResult(success=False, handled=False)

        # Plain-text AUTH is fine here: the sink only listens on loopback.
        smtp_kwargs["authenticator"] = authenticator
        smtp_kwargs["auth_require_tls"] = False
    # Without --auth, AUTH stays unadvertised (it would need TLS).

    handler = SinkHandler(args)
    try:
        controller = SinkController(handler, args.port, **smtp_kwargs)
        controller.start()
    except (OSError, RuntimeError, TimeoutError) as e:
        sys.stderr.write("smtp_sink: cannot start: %s\n" % e)
        return 2

    fakebase.run_until_signal(
        controller.port, args.port_file,
        "smtp_sink: listening on 127.0.0.1:%d, maildir %s" % (controller.port, args.maildir)
        if args.verbose else None)
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
