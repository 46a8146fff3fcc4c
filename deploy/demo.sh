#!/usr/bin/env bash
# tdhook demo: the whole product on one machine, against a simulated
# organisation.
#
#   bash deploy/demo.sh          build, start (again), show a stock check and
#                                a reservation reaching a room calendar
#   bash deploy/demo.sh stop     stop everything the demo started
#
# It starts, all on 127.0.0.1: the fake TOPdesk of tests/fakes with the
# "demo" data set (a small Dutch organisation), the fake Microsoft Graph
# (tenant contoso.onmicrosoft.com), an SMTP server that stores each mail as
# a file, `tdhook serve`, and nginx in front of it on port 8080.  Then it
# runs `tdhook doctor`, fires the webhooks TOPdesk would send with curl, and
# prints the digest mail and the room appointment they lead to.  Everything
# keeps running afterwards, so you can try the curl lines it prints last.
#
# Files: $TDHOOK_DEMO_DIR (default /tmp/tdhook-demo).  Port: $DEMO_PORT
# (default 8080).  As root on Debian 12 it installs the packages that are
# missing; it builds into build/release.  Running it again stops the
# previous demo first and starts afresh.
#
# For tests: DEMO_SKIP_INSTALL=1 never calls apt-get; DEMO_SKIP_BUILD=1 with
# TDHOOK=/path/to/tdhook uses that binary instead of building; NGINX names
# the nginx binary (default /usr/sbin/nginx).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=${TDHOOK_DEMO_DIR:-/tmp/tdhook-demo}
DEMO_LANGUAGE=${DEMO_LANGUAGE:-en}   # the language of the mails: en or nl
PORT=${DEMO_PORT:-8080}
# NGINX names the binary; nginx itself must not see that variable (it
# would take it for a list of inherited sockets).
NGINX_BIN=${NGINX:-/usr/sbin/nginx}
export -n NGINX
PY=/usr/bin/python3
FAKES=$top/tests/fakes
BUILD=$top/build/release
BASE=http://127.0.0.1:$PORT
TENANT=contoso.onmicrosoft.com
PACKAGES="autoconf automake libtool pkg-config make gcc clang libfcgi-dev
libcurl4-openssl-dev libjson-c-dev libyaml-dev libxml2-dev libcmocka-dev
nginx-light curl spawn-fcgi python3-aiosmtpd systemd groff-base time"
# The processes the demo starts, in the order `stop` stops them.
SERVICES="nginx tdhook topdesk graph smtp"
# The real work runs in the demo, never the queue tests' stand-in.
unset TDHOOK_TEST_JOB

say() { printf '%s\n' "$*"; }
title() { printf '\n==> %s\n' "$*"; }
die() {
    say "demo: $*" >&2
    exit 1
}

case $DEMO in
/*) ;;
*) die "TDHOOK_DEMO_DIR must be an absolute path, not '$DEMO'" ;;
esac
case $PORT in
'' | *[!0-9]*) die "DEMO_PORT must be a port number, not '$PORT'" ;;
esac

# --- stopping ---------------------------------------------------------------

# demo_pid NAME: prints the pid in $DEMO/pids/NAME.pid when that process
# still runs and its command line names the demo directory, so a stale pid
# file never makes the demo kill a stranger.
demo_pid() {
    local file=$DEMO/pids/$1.pid pid cmd
    [ -r "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file" 2>/dev/null) || return 1
    [ -n "$pid" ] && running "$pid" || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *"$DEMO/"* ]] || return 1
    say "$pid"
}

# running PID: true while PID exists and is not a zombie.
running() {
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -e 's/^.*) //' -e 's/ .*$//' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# children PID: the pids whose parent is PID, one a line (no procps needed).
children() {
    local f line fields
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        read -r -a fields <<<"${line##*) }"
        if [ "${fields[1]:-}" = "$1" ]; then say "${line%% *}"; fi
    done
    return 0
}

# wait_gone SECONDS PID...: true once none of the PIDs runs.
wait_gone() {
    local tenths=$(($1 * 10)) p left
    shift
    while :; do
        left=0
        for p in "$@"; do
            if running "$p"; then left=1; fi
        done
        [ "$left" -eq 0 ] && return 0
        [ "$tenths" -gt 0 ] || return 1
        sleep 0.1
        tenths=$((tenths - 1))
    done
}

# stop_service NAME: SIGTERM (nginx: SIGQUIT, its graceful stop) to the
# process of NAME.pid, waits for it and for the children it had, SIGKILL
# after 10 s (tdhook: 40 s, it gives jobs in flight 30 s).
stop_service() {
    local name=$1 pid sig=TERM secs=10 kids=() k
    if ! pid=$(demo_pid "$name"); then
        rm -f "$DEMO/pids/$name.pid"
        return 0
    fi
    [ "$name" = nginx ] && sig=QUIT
    [ "$name" = tdhook ] && secs=40
    mapfile -t kids < <(children "$pid")
    kill -"$sig" "$pid" 2>/dev/null || true
    if ! wait_gone "$secs" "$pid" "${kids[@]}"; then
        kill -KILL "$pid" 2>/dev/null || true
        for k in "${kids[@]}"; do
            running "$k" && kill -KILL "$k" 2>/dev/null
        done
        wait_gone 2 "$pid" "${kids[@]}" || true
        say "  $name (pid $pid) did not stop in time: killed"
    else
        say "  stopped $name (pid $pid)"
    fi
    rm -f "$DEMO/pids/$name.pid"
}

# The demo of release 0.1 kept its pid files at the top of $DEMO.
adopt_old_pids() {
    local s
    for s in nginx tdhook; do
        if [ -f "$DEMO/$s.pid" ]; then
            mkdir -p "$DEMO/pids"
            mv -f "$DEMO/$s.pid" "$DEMO/pids/$s.pid"
        fi
    done
}

stop_demo() {
    local s
    adopt_old_pids
    [ -d "$DEMO/pids" ] || return 0
    for s in $SERVICES; do
        stop_service "$s"
    done
}

if [ "${1:-}" = stop ]; then
    [ $# -eq 1 ] || die "usage: bash deploy/demo.sh [stop]"
    say "stopping the tdhook demo in $DEMO"
    stop_demo
    say "demo stopped; its files stay in $DEMO"
    exit 0
elif [ $# -gt 0 ]; then
    die "usage: bash deploy/demo.sh [stop]"
fi

# --- packages and build -------------------------------------------------------

install_packages() {
    local missing=() p
    [ "${DEMO_SKIP_INSTALL:-0}" = 1 ] && return 0
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] ||
        die "missing packages; as root: apt-get install ${missing[*]}"
    title "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        >"$DEMO/apt.log" 2>&1; then
        tail -n 20 "$DEMO/apt.log"
        die "apt-get failed (log: $DEMO/apt.log)"
    fi
    say "  done"
}

# build_step NAME CMD...: runs CMD in build/release quietly, one line.
build_step() {
    local name=$1 t0
    shift
    t0=$(date +%s)
    printf '  %-10s ' "$name"
    if ! (cd "$BUILD" && "$@") >"$DEMO/build-$name.log" 2>&1; then
        say "FAILED"
        tail -n 30 "$DEMO/build-$name.log"
        die "$name failed (log: $DEMO/build-$name.log)"
    fi
    say "ok ($(($(date +%s) - t0)) s)"
}

build() {
    if [ "${DEMO_SKIP_BUILD:-0}" = 1 ]; then
        TDHOOK=${TDHOOK:-$BUILD/tdhook}
        [ -x "$TDHOOK" ] || die "DEMO_SKIP_BUILD=1, but there is no tdhook at $TDHOOK (set TDHOOK)"
        title "using $TDHOOK ($("$TDHOOK" --version))"
        return 0
    fi
    TDHOOK=$BUILD/tdhook
    [ -f "$top/config.status" ] &&
        die "the source tree is configured in place; run 'make distclean' at the top first"
    title "building tdhook into build/release (logs: $DEMO/build-*.log)"
    mkdir -p "$BUILD"
    if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
        build_step autogen "$top/autogen.sh"
    fi
    if [ ! -f "$BUILD/Makefile" ]; then
        build_step configure "$top/configure"
    fi
    build_step make make -j"$(nproc 2>/dev/null || echo 2)"
    say "  $("$TDHOOK" --version)"
}

# The demo removes what it wrote in $DEMO before each start: never in a
# directory that holds anything else.
if [ -d "$DEMO" ] && [ ! -e "$DEMO/.tdhook-demo" ] &&
    ! grep -qs 'deploy/demo\.sh' "$DEMO/tdhook.yaml" &&
    [ -n "$(ls -A "$DEMO" 2>/dev/null)" ]; then
    die "$DEMO is not empty and not a demo directory; choose another TDHOOK_DEMO_DIR"
fi
mkdir -p "$DEMO"
printf 'made by tdhook deploy/demo.sh\n' >"$DEMO/.tdhook-demo"
install_packages
command -v curl >/dev/null 2>&1 || die "curl is missing (apt-get install curl)"
[ -x "$NGINX_BIN" ] || die "nginx is missing at $NGINX_BIN (apt-get install nginx-light)"
[ -x "$PY" ] || die "$PY is missing (apt-get install python3)"
"$PY" -c 'import aiosmtpd' 2>/dev/null ||
    die "the SMTP sink needs aiosmtpd (apt-get install python3-aiosmtpd)"
build
t_begin=$(date +%s)

# --- a fresh start ---------------------------------------------------------------
adopt_old_pids
for s in $SERVICES; do
    if demo_pid "$s" >/dev/null; then
        title "stopping the previous demo"
        stop_demo
        break
    fi
done
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    say "demo: 127.0.0.1:$PORT is taken by another program:" >&2
    ss -ltnp "sport = :$PORT" 2>/dev/null | sed 's/^/  /' >&2 || true
    die "stop it, or pick another port: DEMO_PORT=$((PORT + 1)) bash deploy/demo.sh"
fi
# Only what the demo itself writes goes, never the directory as a whole.
rm -rf "$DEMO/state" "$DEMO/mail" "$DEMO/run" "$DEMO/nginx-tmp" "$DEMO/secrets" \
    "$DEMO/pids" "$DEMO/logs"
mkdir -p "$DEMO/state" "$DEMO/mail" "$DEMO/run" "$DEMO/nginx-tmp" "$DEMO/secrets" \
    "$DEMO/pids" "$DEMO/logs"
chmod 755 "$DEMO" "$DEMO/run"
# A demo that fails half-way stops what it started; the logs stay.
demo_started=0
on_exit() {
    local rc=$?
    if [ "$demo_started" -eq 0 ]; then
        say "demo: stopping what it started (logs: $DEMO/logs/)" >&2
        stop_demo >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 700 "$DEMO/state" "$DEMO/secrets"

# --- the simulated organisation -------------------------------------------------------
title "starting the simulated organisation: TOPdesk, Microsoft Graph, a mail server"

# start_fake NAME SCRIPT ARGS...: a fake from tests/fakes in the background,
# in its own session (it outlives this script); prints its port.
start_fake() {
    local name=$1 script=$2 pid
    shift 2
    setsid "$PY" "$FAKES/$script" --port 0 --port-file "$DEMO/run/$name.port" "$@" \
        </dev/null >>"$DEMO/logs/$name.log" 2>&1 &
    echo $! >"$DEMO/pids/$name.pid"
}

# wait_port NAME: waits for the fake's port file; prints the port.
wait_port() {
    for _ in $(seq 1 150); do
        if [ -s "$DEMO/run/$1.port" ]; then
            tr -dc '0-9' <"$DEMO/run/$1.port"
            return 0
        fi
        demo_pid "$1" >/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$DEMO/logs/$1.log" >&2
    die "the fake $1 did not start (log: $DEMO/logs/$1.log)"
}

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# The secrets, each in a file only its owner reads: the practice to follow.
(
    umask 077
    printf 'demo-%s\n' "$(rand_hex 16)" >"$DEMO/secrets/tokens"
    printf 'td-%s\n' "$(rand_hex 12)" >"$DEMO/secrets/topdesk.secret"
    printf 'graph-%s\n' "$(rand_hex 16)" >"$DEMO/secrets/graph.secret"
)
TOKEN=$(head -n 1 "$DEMO/secrets/tokens")
CLIENT_ID=$(rand_hex 4)-5e7d-4b8e-9a41-$(rand_hex 6)

# The fakes read their secrets from the same files (the command line of a
# process is visible to every user).
start_fake topdesk topdesk.py --dataset demo --user tdhook-api \
    --password "$(cat "$DEMO/secrets/topdesk.secret")"
start_fake graph graph.py --tenant "$TENANT" --client-id "$CLIENT_ID" \
    --client-secret "$(cat "$DEMO/secrets/graph.secret")"
start_fake smtp smtp_sink.py --maildir "$DEMO/mail"
TD_PORT=$(wait_port topdesk)
GRAPH_PORT=$(wait_port graph)
SMTP_PORT=$(wait_port smtp)
TD=http://127.0.0.1:$TD_PORT
GRAPH=http://127.0.0.1:$GRAPH_PORT
say "  fake TOPdesk         $TD  (data set \"demo\", user tdhook-api)"
say "  fake Microsoft Graph $GRAPH  (tenant $TENANT)"
say "  SMTP server          127.0.0.1:$SMTP_PORT  (stores each mail in $DEMO/mail)"

# --- config, tdhook, nginx ---------------------------------------------------------------
cat >"$DEMO/tdhook.yaml" <<EOF
# tdhook configuration of the demo (written by deploy/demo.sh).  The same
# keys as a real installation: only the URLs point at the simulators.
# Secrets live in files of mode 600 under $DEMO/secrets.
state_dir: $DEMO/state
log: {level: info, format: text}
hooks:
  tokens_file: $DEMO/secrets/tokens
admin_mail: [tdhook-admin@contoso.nl]
topdesk:
  url: $TD
  username: tdhook-api
  application_password_file: $DEMO/secrets/topdesk.secret
mail:
  smtp_url: smtp://127.0.0.1:$SMTP_PORT
  from: "TOPdesk Contoso <tdhook@contoso.nl>"
  language: $DEMO_LANGUAGE          # en | nl: every mail, digest and notices
  timezone: Europe/Amsterdam        # the times in mails, as people read them
stock_check:
  minimum_field: Minimale voorraad
  to: [inkoop@contoso.nl]
reservations:
  exchange: graph
  room_mapping: {topdesk_field: optionalFields1.text1}
  match_key: externalLink
  notify: {requester: true, to: [facilitair@contoso.nl]}
graph:
  tenant: $TENANT
  client_id: $CLIENT_ID
  client_secret_file: $DEMO/secrets/graph.secret
  login_url: $GRAPH
  graph_url: $GRAPH/v1.0
queue: {runners: 2, retry_base: 1s, retry_max: 10s}
EOF
chmod 600 "$DEMO/tdhook.yaml"
"$TDHOOK" -c "$DEMO/tdhook.yaml" check-config >"$DEMO/logs/check-config.out" 2>&1 ||
    { cat "$DEMO/logs/check-config.out"; die "tdhook refuses the demo config"; }
say "  config               $DEMO/tdhook.yaml  (secrets: $DEMO/secrets/, mode 600)"

setsid "$TDHOOK" -c "$DEMO/tdhook.yaml" serve --socket "unix:$DEMO/run/tdhook.sock" --workers 2 \
    </dev/null >>"$DEMO/logs/tdhook.log" 2>&1 &
echo $! >"$DEMO/pids/tdhook.pid"
for _ in $(seq 1 100); do
    [ -S "$DEMO/run/tdhook.sock" ] && break
    demo_pid tdhook >/dev/null || { tail -n 20 "$DEMO/logs/tdhook.log"; die "tdhook serve exited"; }
    sleep 0.1
done
[ -S "$DEMO/run/tdhook.sock" ] || die "tdhook serve made no socket within 10 s"
say "  tdhook serve         pid $(cat "$DEMO/pids/tdhook.pid"), socket $DEMO/run/tdhook.sock"

# nginx runs its workers as www-data, as a packaged nginx does; the socket
# is theirs to use (group www-data, mode 660), as tdhook.socket makes it.
# When www-data cannot reach the demo directory (a parent of mode 700), the
# workers run as root instead.
user_line=
if [ "$(id -u)" -eq 0 ] && id www-data >/dev/null 2>&1; then
    if runuser -u www-data -- test -x "$DEMO/run" 2>/dev/null; then
        user_line="user www-data;"
        chgrp www-data "$DEMO/run/tdhook.sock"
        chmod 660 "$DEMO/run/tdhook.sock"
    else
        user_line="user root root;"
    fi
fi
cp /etc/nginx/fastcgi_params "$DEMO/fastcgi_params" || die "no /etc/nginx/fastcgi_params"
sed "s|unix:/run/tdhook/tdhook.sock|unix:$DEMO/run/tdhook.sock|g" \
    "$top/deploy/nginx/tdhook.conf" >"$DEMO/nginx-tdhook.conf"
cat >"$DEMO/nginx.conf" <<EOF
# nginx of the tdhook demo (written by deploy/demo.sh): the server block
# includes deploy/nginx/tdhook.conf with the socket path of the demo.
$user_line
worker_processes 1;
pid $DEMO/pids/nginx.pid;
error_log $DEMO/logs/nginx-error.log;
events { worker_connections 64; }
http {
    access_log $DEMO/logs/nginx-access.log;
    client_body_temp_path $DEMO/nginx-tmp/body;
    fastcgi_temp_path $DEMO/nginx-tmp/fastcgi;
    proxy_temp_path $DEMO/nginx-tmp/proxy;
    uwsgi_temp_path $DEMO/nginx-tmp/uwsgi;
    scgi_temp_path $DEMO/nginx-tmp/scgi;
    default_type application/octet-stream;
    limit_req_zone \$binary_remote_addr zone=tdhook:1m rate=20r/s;
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;
        include $DEMO/nginx-tdhook.conf;
    }
}
EOF
if ! "$NGINX_BIN" -p "$DEMO/" -e "$DEMO/logs/nginx-error.log" -c "$DEMO/nginx.conf" \
    >"$DEMO/logs/nginx-start.log" 2>&1; then
    cat "$DEMO/logs/nginx-start.log"
    tail -n 20 "$DEMO/logs/nginx-error.log" 2>/dev/null
    die "nginx did not start"
fi
for _ in $(seq 1 50); do
    curl -s -o /dev/null --max-time 1 "$BASE/healthz" && break
    sleep 0.1
done
health=$(curl -s --max-time 5 "$BASE/healthz" || true)
[ "$health" = ok ] || die "GET $BASE/healthz answers '$health' (logs: $DEMO/logs/)"
say "  nginx                $BASE  (GET /healthz: $health)"

# --- helpers for the show ------------------------------------------------------------------

# The Python half of the demo: reads the fakes' control endpoints and the
# stored mails.  Standard library only.
HELPER=$(
    cat <<'PYEOF'
import email, email.policy, json, os, sys, urllib.request
from datetime import datetime, timedelta, timezone
try:
    from zoneinfo import ZoneInfo
    LOCAL = ZoneInfo("Europe/Amsterdam")
except Exception:             # no tz database: UTC
    LOCAL = timezone.utc

PROP = "TopdeskReservationId"


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def when(s):
    return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def short(x):
    return x if len(x) <= 40 else "%s...%s (%d characters)" % (x[:16], x[-12:], len(x))


def hm(d):
    return d.astimezone(LOCAL).strftime("%a %d %b %Y %H:%M")


def local_hm(d):
    return d.astimezone(LOCAL).strftime("%H:%M")


def event_of(graph, resid):
    for mailbox, events in get(graph + "/__fake/events").items():
        for ev in events:
            for p in ev.get("singleValueExtendedProperties") or []:
                if (p.get("id") or "").endswith("Name " + PROP) and p.get("value") == resid:
                    return mailbox, ev, p
    return None, None, None


def main(cmd, a):
    if cmd == "mail":                      # mail FILE.eml: the mail, readably
        with open(a[0], "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        for h in ("Subject", "From", "To", "Date"):
            print("  %-8s %s" % (h + ":", msg[h]))
        text = msg.get_body(("plain",))
        if text is not None:
            print("  ---- text part " + "-" * 56)
            for line in text.get_content().rstrip().splitlines():
                print("  | " + line)
            print("  " + "-" * 72)
        for part in msg.iter_attachments():
            data = part.get_payload(decode=True) or b""
            print("  attachment: %s (%s, %d bytes, %d lines)" % (
                part.get_filename(), part.get_content_type(), len(data),
                len(data.splitlines())))
        # The HTML part and the CSV beside the mail, to open in a browser
        # and a spreadsheet.
        base = a[0][:-4]
        html = msg.get_body(("html",))
        if html is not None:
            with open(base + ".html", "w", encoding="utf-8") as f:
                f.write(html.get_content())
            print("  the HTML part, saved: " + base + ".html")
        for part in msg.iter_attachments():
            if (part.get_filename() or "").endswith(".csv"):
                with open(base + ".csv", "wb") as f:
                    f.write(part.get_payload(decode=True) or b"")
                print("  the CSV attachment, saved: " + base + ".csv")
    elif cmd == "pick":                    # pick TOPDESK: an upcoming booking to sync
        data = get(a[0] + "/__fake/data")
        mapped = {l["id"]: (l.get("optionalFields1") or {}).get("text1")
                  for l in data.get("locations", [])}
        now = datetime.now(timezone.utc)
        best = None
        for r in get(a[0] + "/__fake/reservations")["reservations"]:
            rooms = [f["location"] for f in r["reservedFacilities"] if f.get("location")]
            if (r["status"] != "planned" or r["archived"] or len(rooms) != 1
                    or not mapped.get(rooms[0]["id"])
                    or not (r.get("requester") or {}).get("email")
                    or when(r["plannedStartDate"]) <= now):
                continue
            if best is None or r["plannedStartDate"] < best[0]["plannedStartDate"]:
                best = (r, rooms[0])
        if best is None:
            return 1
        r, room = best
        print("\t".join([r["id"], r["number"], r["briefDescription"], room["name"],
                         hm(when(r["plannedStartDate"])),
                         local_hm(when(r["plannedEndDate"])),
                         r["requester"]["name"]]))
    elif cmd == "event":                   # event GRAPH RESID: the appointment
        mailbox, ev, p = event_of(a[0], a[1])
        if ev is None:
            print("  (no appointment carries %s %s)" % (PROP, a[1]))
            return 1
        print("  mailbox   %s" % mailbox)
        print("  subject   %s" % ev.get("subject"))
        for k in ("start", "end"):
            t = when(ev[k]["dateTime"])
            print("  %-9s %s %s (%s Amsterdam time)" % (k, ev[k]["dateTime"][:16].replace("T", " "),
                                                     ev[k]["timeZone"], hm(t)))
        print("  %s  %s" % (PROP, p["value"]))
        print("  event id  %s" % short(ev["id"]))
    elif cmd == "event-id":                # event-id GRAPH RESID
        _, ev, _ = event_of(a[0], a[1])
        print(ev["id"] if ev else "")
    elif cmd == "key":                     # key TOPDESK RESID: the stored match key
        r = get(a[0] + "/__fake/reservations/" + a[1])
        links = r.get("externalLinks") or []
        if not links:
            print("  (no match key on the reservation)")
        for l in links:
            print("  externalLink %s, type %s, written %s" % (short(l["id"]), l["type"], l["date"]))
    elif cmd == "move":                    # move TOPDESK RESID MINUTES: PATCH the times
        r = get(a[0] + "/__fake/reservations/" + a[1])
        d = timedelta(minutes=int(a[2]))
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        start = when(r["plannedStartDate"]) + d
        end = when(r["plannedEndDate"]) + d
        body = json.dumps({"plannedStartDate": start.strftime(fmt),
                           "plannedEndDate": end.strftime(fmt)}).encode()
        req = urllib.request.Request(a[0] + "/__fake/reservations/" + a[1], data=body,
                                     method="PATCH",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        print("%s-%s" % (hm(start), local_hm(end)))
    elif cmd == "book":                    # book TOPDESK ROOM: a new reservation there
        data = get(a[0] + "/__fake/data")
        room = next(l for l in data["locations"] if l["name"] == a[1])
        person = next(p for p in data["persons"] if p.get("email") and not p.get("archived"))
        body = json.dumps({"briefDescription": "Teamoverleg", "numberOfPersons": 6,
                           "requester": {"id": person["id"]}, "rooms": [room["id"]]}).encode()
        req = urllib.request.Request(a[0] + "/__fake/reservations", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            r = json.loads(resp.read().decode("utf-8"))
        print("\t".join([r["id"], r["number"], person["email"]]))
    elif cmd == "cancel":                  # cancel TOPDESK RESID: the status cancelled
        req = urllib.request.Request(a[0] + "/__fake/reservations/" + a[1],
                                     data=b'{"status": "cancelled"}', method="PATCH",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    elif cmd == "job":                     # job JSON: one line about a job
        j = json.loads(a[0])
        res = j.get("result") or {}
        bits = ["%s job %s: %s after %s attempt(s)" % (j.get("kind"), j.get("job"),
                                                     j.get("status"), j.get("attempts"))]
        if j.get("kind") == "stock-check" and "stock_rooms" in res:
            bits.append("%s stock rooms, %s under their minimum, %s without one" % (
                res["stock_rooms"], res.get("short"), res.get("without_minimum")))
        elif j.get("kind") == "reservation":
            for room in res.get("rooms") or []:
                bits.append("%s: %s" % (room.get("room"), room.get("action")))
        if j.get("error"):
            bits.append("error: " + j["error"])
        print("  " + "; ".join(bits))
    return 0


sys.exit(main(sys.argv[1], sys.argv[2:]))
PYEOF
)
helper() { "$PY" -c "$HELPER" "$@"; }

# hook PATH BODY: POSTs like a TOPdesk automated action; shows the curl line
# (with $TOKEN for the token) and the answer; sets JOB.
hook() {
    local out
    say "\$ curl -sS -H \"Authorization: Bearer \$TOKEN\" -H 'Content-Type: application/json' \\"
    say "       -d '$2' $BASE$1"
    out=$(curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "$2" "$BASE$1") || die "POST $1 failed"
    say "$out"
    JOB=$(printf '%s' "$out" | sed -n -E 's/.*"job"[[:space:]]*:[[:space:]]*"([^"]+)".*/\1/p')
    [ -n "$JOB" ] || die "POST $1 queued no job"
}

# wait_job ID: polls GET /jobs/ID until the job is done or dead (30 s);
# prints a line about it.  False unless done.
wait_job() {
    local body status
    for _ in $(seq 1 150); do
        body=$(curl -sS --max-time 5 -H "Authorization: Bearer $TOKEN" "$BASE/jobs/$1") || body=
        # The first "status": the job's own, before its result.
        status=
        if [[ $body =~ \"status\"[[:space:]]*:[[:space:]]*\"([a-z]+)\" ]]; then
            status=${BASH_REMATCH[1]}
        fi
        case $status in done | dead) break ;; esac
        sleep 0.2
    done
    helper job "$body" || say "  $body"
    [ "$status" = "done" ]
}

# new_mail_to ADDR: the first .eml in the mail directory whose envelope
# names ADDR (the sink writes the .json before the .eml).
new_mail_to() {
    local f
    for f in "$DEMO"/mail/*.eml; do
        [ -e "$f" ] || continue
        if grep -qF "\"$1\"" "${f%.eml}.json" 2>/dev/null; then
            say "$f"
            return 0
        fi
    done
    return 1
}

# --- doctor -------------------------------------------------------------------------------------
title "tdhook doctor --no-mail: is TOPdesk prepared, is Exchange reachable?"
"$TDHOOK" -c "$DEMO/tdhook.yaml" doctor --no-mail 2>>"$DEMO/logs/doctor.log" | sed 's/^./  &/' ||
    say "  (doctor found a FAIL above)"
say "  The WARNs are in the demo data on purpose: Kees van Dijk has no e-mail"
say "  address, the stock room \"Muizen en toetsenborden\" has no minimum, and the"
say "  room Stilteruimte 2.14 has no mailbox."

# --- stock check ------------------------------------------------------------------------------
title "1. Stock check: what TOPdesk's scheduled automated action sends"
hook /hooks/stock-check '{}'
wait_job "$JOB" || die "the stock check did not finish (log: $DEMO/logs/tdhook.log)"
mail=
for _ in $(seq 1 150); do
    mail=$(new_mail_to inkoop@contoso.nl) && break
    sleep 0.2
done
[ -n "$mail" ] || die "no digest mail arrived within 30 s (log: $DEMO/logs/tdhook.log)"
say "  The digest mail, as the SMTP server received it: $mail"
helper mail "$mail"

# --- reservation --------------------------------------------------------------------------------
title "2. A room reservation reaches the room calendar in Exchange"
pick=$(helper pick "$TD") || die "the demo data has no upcoming reservation in a mapped room"
IFS=$'\t' read -r RES_ID RES_NUMBER RES_WHAT RES_ROOM RES_START RES_END RES_BY <<<"$pick"
say "  TOPdesk reservation $RES_NUMBER \"$RES_WHAT\" by $RES_BY:"
say "  $RES_ROOM, $RES_START-$RES_END Amsterdam time (id $RES_ID)"
hook /hooks/reservation "{\"id\": \"$RES_ID\"}"
wait_job "$JOB" || die "the reservation job did not finish (log: $DEMO/logs/tdhook.log)"
say "  The appointment in the room's calendar (fake Graph, GET /__fake/events):"
helper event "$GRAPH" "$RES_ID" || die "no appointment was made"
say "  The match key tdhook wrote back on the reservation (the event id):"
helper key "$TD" "$RES_ID"
EVENT_ID=$(helper event-id "$GRAPH" "$RES_ID")

title "3. The reservation moves in TOPdesk; the appointment follows"
moved=$(helper move "$TD" "$RES_ID" 90) || die "could not change the reservation in the fake TOPdesk"
say "  In TOPdesk, $RES_NUMBER now runs $moved (PATCH $TD/__fake/reservations/{id})."
say "  TOPdesk's \"reservation changed\" action sends the same hook again:"
hook /hooks/reservation "{\"id\": \"$RES_ID\"}"
wait_job "$JOB" || die "the reservation job did not finish (log: $DEMO/logs/tdhook.log)"
say "  The appointment now:"
helper event "$GRAPH" "$RES_ID" || die "the appointment is gone"
if [ "$(helper event-id "$GRAPH" "$RES_ID")" = "$EVENT_ID" ]; then
    say "  The same appointment (same event id), moved: no duplicate."
else
    say "  NOTE: the event id changed (was $EVENT_ID)"
fi

title "4. The reservation is cancelled in TOPdesk; the appointment goes"
helper cancel "$TD" "$RES_ID" || die "could not cancel the reservation in the fake TOPdesk"
say "  In TOPdesk, $RES_NUMBER is cancelled; the \"reservation cancelled\" action sends:"
hook /hooks/reservation "{\"id\": \"$RES_ID\", \"event\": \"cancelled\"}"
wait_job "$JOB" || die "the reservation job did not finish (log: $DEMO/logs/tdhook.log)"
if helper event-id "$GRAPH" "$RES_ID" | grep -q .; then
    die "the appointment of the cancelled reservation is still there"
fi
say "  The room's calendar no longer has it: the room is free again in Outlook."

title "5. A room that is not linked to a room calendar: the people are told"
book=$(helper book "$TD" "Stilteruimte 2.14") || die "could not book in the fake TOPdesk"
IFS=$'\t' read -r NOTE_ID NOTE_NUMBER NOTE_TO <<<"$book"
say "  $NOTE_NUMBER books Stilteruimte 2.14, which has no room mailbox in TOPdesk."
hook /hooks/reservation "{\"id\": \"$NOTE_ID\", \"event\": \"created\"}"
wait_job "$JOB" || die "the reservation job did not finish (log: $DEMO/logs/tdhook.log)"
for who in "$NOTE_TO" facilitair@contoso.nl; do
    mail=
    for _ in $(seq 1 150); do
        mail=$(new_mail_to "$who") && break
        sleep 0.2
    done
    [ -n "$mail" ] || die "no notice for $who within 30 s (log: $DEMO/logs/tdhook.log)"
    say "  The notice to $who ($mail):"
    helper mail "$mail"
done

demo_started=1

# --- what next ----------------------------------------------------------------------------------
title "The demo keeps running (shown in $(($(date +%s) - t_begin)) s). Try next:"
cat <<EOF
  TOKEN=\$(head -n 1 $DEMO/secrets/tokens)
  curl -sS -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
       -d '{"dry_run": true}' $BASE/hooks/stock-check
  curl -sS -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
       -d '{"number": "$RES_NUMBER"}' $BASE/hooks/reservation
  curl -sS -u "topdesk:\$TOKEN" -H 'Content-Type: application/json' \\
       -d '{"days": 14}' $BASE/hooks/reconcile
  curl -sS -H "Authorization: Bearer \$TOKEN" $BASE/jobs/$JOB
  curl -sS $BASE/healthz
  curl -sS $BASE/metrics | grep '^tdhook_jobs_total'
  $TDHOOK -c $DEMO/tdhook.yaml queue list
  $TDHOOK -c $DEMO/tdhook.yaml reconcile --dry-run

  Change the simulated TOPdesk with its control endpoints, e.g. cancel:
  curl -sS -X PATCH -d '{"plannedStartDate": "..."}' $TD/__fake/reservations/$RES_ID
  (and fire the reservation hook again).  DEMO_LANGUAGE=nl bash deploy/demo.sh
  runs it with every mail in Dutch.

  logs     $DEMO/logs/  (tdhook.log, nginx-*.log, topdesk.log, graph.log, smtp.log)
  mails    $DEMO/mail/  (NNNN.eml as received, NNNN.json with the envelope)
  config   $DEMO/tdhook.yaml, secrets in $DEMO/secrets/
  stop     bash deploy/demo.sh stop
EOF
