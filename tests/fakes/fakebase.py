"""What every fake of tdhook's tests shares: the threaded HTTP server, the
port file the tests wait for, and the run until SIGTERM or SIGINT.

topdesk.py, graph.py and ews.py serve HTTP through Server and serve();
smtp_sink.py, an aiosmtpd server, shares write_port_file() and
run_until_signal().  Python standard library only.  Imported by the fakes,
never run.
"""

import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer for a fake: daemon threads, a long listen
    queue, no DNS look-up when it binds, and silent about clients that
    hang up (tdhook's tests kill clients on purpose)."""

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


class Delivery:
    """The faults of a fake's outgoing notifications (Graph's change
    notifications, EWS's pushes), as POST /__fake/outlook/notify sets them:
    drop (true: every one; a number: that many), hold, reorder (held, then
    flushed in reverse), delay_ms, duplicate.  The fake's delivery thread
    hands each item to pass_on(); lock is the fake's state lock."""

    KEYS = ("drop", "duplicate", "delay_ms", "reorder", "hold")

    def __init__(self, lock):
        self.lock = lock
        self.modes = {}
        self.held = []

    def reset_locked(self):
        self.modes = {}
        self.held = []

    def set_locked(self, obj, extra=()):
        self.modes = {k: obj[k] for k in self.KEYS + tuple(extra) if k in obj}

    def pass_on(self, item, post):
        with self.lock:
            modes = dict(self.modes)
            if modes.get("drop"):
                if type(modes["drop"]) is int:
                    self.modes["drop"] = modes["drop"] - 1
                return
            if modes.get("hold") or modes.get("reorder"):
                self.held.append(item)
                return
        if modes.get("delay_ms"):
            time.sleep(modes["delay_ms"] / 1000.0)
        for _ in range(max(1, int(modes.get("duplicate", 1)))):
            post(item)

    def flush(self, post):
        with self.lock:
            items = list(self.held)
            self.held = []
            if self.modes.get("reorder"):
                items.reverse()
            self.modes.pop("hold", None)
            self.modes.pop("reorder", None)
        for it in items:
            post(it)
        return len(items)


def write_port_file(path, port):
    """Writes port to path at once (a reader never sees half a file)."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def run_until_signal(port, port_file=None, banner=None):
    """Writes the port file, says banner on stderr (when given) and waits
    for SIGTERM or SIGINT; for a server that runs in threads of its own."""
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if port_file:
        write_port_file(port_file, port)
    if banner:
        sys.stderr.write(banner + "\n")
    while not stop.is_set():
        stop.wait(0.2)


def serve(server, port_file=None, banner=None):
    """Serves server (a Server) until SIGTERM or SIGINT, after writing its
    port file and saying banner (when given; "%d" becomes the port)."""
    def on_signal(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = server.server_address[1]
    if port_file:
        write_port_file(port_file, port)
    if banner:
        sys.stderr.write((banner % port if "%d" in banner else banner) + "\n")
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0
