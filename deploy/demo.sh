#!/usr/bin/env bash
# tdhook demo: nginx on 127.0.0.1:8080 in front of `tdhook serve`.
#
#   bash deploy/demo.sh          build, start (again), fire two hooks, show
#   bash deploy/demo.sh stop     stop the demo
#
# As root on Debian 12 it installs the packages that are missing.  It builds
# into build/release, keeps everything else under $TDHOOK_DEMO_DIR (default
# /tmp/tdhook-demo) and listens on 127.0.0.1:$DEMO_PORT (default 8080).
# Running it again stops the previous demo first.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=${TDHOOK_DEMO_DIR:-/tmp/tdhook-demo}
PORT=${DEMO_PORT:-8080}
NGINX=${NGINX:-/usr/sbin/nginx}
BUILD=$top/build/release
TDHOOK=$BUILD/tdhook
BASE=http://127.0.0.1:$PORT
PACKAGES="autoconf automake libtool pkg-config make gcc clang libfcgi-dev
libcurl4-openssl-dev libjson-c-dev libyaml-dev libxml2-dev libcmocka-dev
nginx-light curl spawn-fcgi python3-aiosmtpd"

say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
die() {
    say "demo: $*" >&2
    exit 1
}

# alive_as PIDFILE NAME: prints the pid in PIDFILE when that process runs
# and its name starts with NAME (a stale pid file never kills a stranger).
alive_as() {
    local pid comm
    [ -r "$1" ] || return 1
    pid=$(head -n 1 "$1" 2>/dev/null | tr -dc '0-9')
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    case $comm in "$2"*) say "$pid" ;; *) return 1 ;; esac
}

stop_one() { # stop_one PIDFILE NAME
    local pid i
    pid=$(alive_as "$1" "$2") || { rm -f "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    say "stopped $2 (pid $pid, ${i}00 ms)"
    rm -f "$1"
}

stop_demo() {
    stop_one "$DEMO/nginx.pid" nginx
    stop_one "$DEMO/tdhook.pid" tdhook
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if [ "${1:-}" = stop ]; then
    stop_demo
    say "demo stopped (its files stay in $DEMO)"
    exit 0
elif [ $# -gt 0 ]; then
    die "usage: bash deploy/demo.sh [stop]"
fi

# --- packages and build -------------------------------------------------------
install_packages() {
    local missing=() p
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages, run as root: apt-get install ${missing[*]}"
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
install_packages
command -v curl >/dev/null 2>&1 || die "curl is missing"
[ -x "$NGINX" ] || die "nginx is missing ($NGINX)"

step "building tdhook into build/release"
mkdir -p "$BUILD" "$DEMO"
if [ ! -x "$top/configure" ]; then
    (cd "$top" && ./autogen.sh) >"$DEMO/build.log" 2>&1 || { cat "$DEMO/build.log"; die "autogen failed"; }
fi
if [ ! -f "$BUILD/Makefile" ]; then
    (cd "$BUILD" && "$top/configure") >"$DEMO/build.log" 2>&1 ||
        { tail -n 40 "$DEMO/build.log"; die "configure failed"; }
fi
(cd "$BUILD" && make -j"$(nproc 2>/dev/null || echo 2)") >"$DEMO/build.log" 2>&1 ||
    { tail -n 40 "$DEMO/build.log"; die "make failed"; }
rm -f "$DEMO/build.log"
say "$("$TDHOOK" --version)"

# --- stop a previous demo, check the port -----------------------------------------
mkdir -p "$DEMO"
stop_demo
if port_taken; then
    say "demo: 127.0.0.1:$PORT is taken by another program:" >&2
    ss -ltnp "sport = :$PORT" 2>/dev/null >&2 || true
    die "stop it, or choose another port: DEMO_PORT=$((PORT + 1)) bash deploy/demo.sh"
fi

# --- config --------------------------------------------------------------------------
step "writing the demo config $DEMO/tdhook.yaml"
umask 077
mkdir -p "$DEMO/state" "$DEMO/run" "$DEMO/nginx-tmp"
TOKEN=demo-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$DEMO/token"
cat >"$DEMO/tdhook.yaml" <<EOF
# tdhook demo configuration (deploy/demo.sh).  TOPdesk, mail and Graph are
# placeholders: nothing contacts them yet.
state_dir: $DEMO/state
log: {level: info, format: text}
hooks:
  tokens: ["$TOKEN"]
  max_body: 1MiB
topdesk:
  url: http://127.0.0.1:9
  username: demo
  application_password: demo-not-a-secret
mail:
  from: tdhook@example.com
graph:
  tenant: example.onmicrosoft.com
  client_id: 00000000-0000-0000-0000-000000000000
  client_secret: demo-not-a-secret
queue:
  retry_base: 1s
  runners: 1
EOF
umask 022
chmod 755 "$DEMO" "$DEMO/run" "$DEMO/nginx-tmp"
"$TDHOOK" -c "$DEMO/tdhook.yaml" check-config >/dev/null 2>"$DEMO/check-config.err" ||
    { cat "$DEMO/check-config.err"; die "the demo config is refused"; }

# --- tdhook ----------------------------------------------------------------------------
step "starting tdhook serve (log: $DEMO/tdhook.log)"
rm -f "$DEMO/run/tdhook.sock"
setsid "$TDHOOK" -c "$DEMO/tdhook.yaml" serve \
    --socket "unix:$DEMO/run/tdhook.sock" --workers 2 \
    </dev/null >>"$DEMO/tdhook.log" 2>&1 &
echo $! >"$DEMO/tdhook.pid"
for _ in $(seq 1 100); do
    [ -S "$DEMO/run/tdhook.sock" ] && break
    alive_as "$DEMO/tdhook.pid" tdhook >/dev/null || { tail -n 20 "$DEMO/tdhook.log"; die "tdhook serve exited"; }
    sleep 0.1
done
[ -S "$DEMO/run/tdhook.sock" ] || die "tdhook made no socket within 10 s"
say "tdhook serve: pid $(cat "$DEMO/tdhook.pid"), socket $DEMO/run/tdhook.sock"
ps -o pid=,comm= --ppid "$(cat "$DEMO/tdhook.pid")" | sed 's/^/  child /'

# --- nginx -------------------------------------------------------------------------------
step "starting nginx on $BASE (log: $DEMO/nginx-error.log)"
user_line=
if [ "$(id -u)" -eq 0 ] && id www-data >/dev/null 2>&1; then
    user_line="user www-data;"
    chgrp www-data "$DEMO/run/tdhook.sock"
    chmod 660 "$DEMO/run/tdhook.sock"
fi
cp /etc/nginx/fastcgi_params "$DEMO/fastcgi_params"
sed "s|unix:/run/tdhook/tdhook.sock|unix:$DEMO/run/tdhook.sock|g" \
    "$top/deploy/nginx/tdhook.conf" >"$DEMO/tdhook-nginx.conf"
cat >"$DEMO/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $DEMO/nginx.pid;
error_log $DEMO/nginx-error.log;
events { worker_connections 64; }
http {
    access_log $DEMO/nginx-access.log;
    client_body_temp_path $DEMO/nginx-tmp/body;
    fastcgi_temp_path $DEMO/nginx-tmp/fastcgi;
    proxy_temp_path $DEMO/nginx-tmp/proxy;
    uwsgi_temp_path $DEMO/nginx-tmp/uwsgi;
    scgi_temp_path $DEMO/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;
        include $DEMO/tdhook-nginx.conf;
    }
}
EOF
"$NGINX" -p "$DEMO/" -e "$DEMO/nginx-error.log" -c "$DEMO/nginx.conf" ||
    { tail -n 20 "$DEMO/nginx-error.log"; die "nginx did not start"; }
for _ in $(seq 1 50); do
    curl -s -o /dev/null --max-time 1 "$BASE/healthz" && break
    sleep 0.1
done

# --- fire the hooks --------------------------------------------------------------------------
# show CURL-ARGS...: prints the curl line, runs it, prints the answer.
show() {
    local shown=() a
    for a in "$@"; do
        a=${a//$TOKEN/\$TOKEN}
        case $a in *" "* | *'"'* | *'{'*) shown+=("'$a'") ;; *) shown+=("$a") ;; esac
    done
    say "\$ curl ${shown[*]}"
    curl -sS --max-time 10 -w '  [HTTP %{http_code}]\n' "$@" || true
}
auth=(-H "Authorization: Bearer $TOKEN")
json=(-H 'Content-Type: application/json')

step "a hook without the token is refused"
show -X POST "${json[@]}" -d '{}' "$BASE/hooks/stock-check"

step "POST /hooks/stock-check (what TOPdesk's scheduled action sends)"
out=$(curl -sS --max-time 10 "${auth[@]}" "${json[@]}" -d '{"dry_run": true}' "$BASE/hooks/stock-check")
say "\$ curl -H 'Authorization: Bearer \$TOKEN' -H 'Content-Type: application/json' -d '{\"dry_run\": true}' $BASE/hooks/stock-check"
say "$out"
stock_job=$(printf '%s' "$out" | sed -n -E 's/.*"job"[[:space:]]*:[[:space:]]*"([^"]+)".*/\1/p')

step "POST /hooks/reservation (what the reservation action sends), with an Idempotency-Key"
key=demo-$(date +%s)
for _ in 1 2; do
    out=$(curl -sS --max-time 10 "${auth[@]}" "${json[@]}" -H "Idempotency-Key: $key" \
        -d '{"number": "R 2406 012", "event": "created"}' "$BASE/hooks/reservation")
    say "$out"
done
say "(sent twice with the same key: one job)"
res_job=$(printf '%s' "$out" | sed -n -E 's/.*"job"[[:space:]]*:[[:space:]]*"([^"]+)".*/\1/p')

step "the job states at GET /jobs/<id>"
sleep 1
for id in $stock_job $res_job; do
    show "${auth[@]}" "$BASE/jobs/$id"
done

step "tdhook queue list"
"$TDHOOK" -c "$DEMO/tdhook.yaml" queue list 2>&1 | head -n 20

step "GET /healthz"
show "$BASE/healthz"

step "a few lines of GET /metrics"
curl -sS --max-time 10 "$BASE/metrics" |
    grep -E '^tdhook_(http_requests_total|jobs_total|queue_depth|dead_letters)' |
    grep -vE '^tdhook_[a-z_]+_total\{.*\} 0$' | head -n 14

cat <<EOF

==> the demo runs
    nginx $BASE  ->  tdhook serve (pid $(cat "$DEMO/tdhook.pid"))  ->  queue in $DEMO/state

Until the next releases a job only records what it received: the stock
digest (TOPdesk stock rooms under their minimum, mailed) and the booking of
TOPdesk reservations in Exchange room calendars come with them, and this
demo will grow with them.  What works now: the FastCGI front behind nginx,
token auth, the input checks, the durable queue with retries and dead
letters, /healthz and /metrics.

Try next:
    TOKEN=\$(cat $DEMO/token)
    curl -i -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
         -d '{"id": "0b1c2d3e-0000-0000-0000-000000000001"}' $BASE/hooks/reservation
    curl -i -u "topdesk:\$TOKEN" -H 'Content-Type: application/json' -d '{}' $BASE/tdhook/hooks/reconcile
    curl -i -H "Authorization: Bearer \$TOKEN" $BASE/jobs/$res_job
    curl -i -H 'Content-Type: application/json' -d '{' -H "Authorization: Bearer \$TOKEN" $BASE/hooks/stock-check
    curl -s $BASE/metrics
    $TDHOOK -c $DEMO/tdhook.yaml queue list
    $TDHOOK -c $DEMO/tdhook.yaml check-config
    tail -f $DEMO/tdhook.log

Stop it with:
    bash deploy/demo.sh stop
EOF
