# shellcheck shell=bash
# Shared helpers of the integration tests: sourced, never run.
#
# A test sources this file, then calls t_setup, writes a config with
# write_config, starts `tdhook serve` with start_tdhook and nginx with
# start_nginx, and drives it with req/post_hook and the assert_* helpers.
# It ends with `finish`, which exits 1 when any check failed.  Everything the
# test started is stopped, and its temporary directory removed, on exit.
#
# Environment: TDHOOK (the binary; make check sets it), top_srcdir,
# KEEP_TMP=1 keeps the temporary directory for a look afterwards.
# Exit 77 (automake's "skipped") when nginx or curl is missing.

set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
if [ -z "${TDHOOK:-}" ]; then
    if [ -x "$top_srcdir/tdhook" ]; then
        TDHOOK=$top_srcdir/tdhook
    else
        TDHOOK=$top_srcdir/build/release/tdhook
    fi
fi
NGINX=${NGINX:-/usr/sbin/nginx}

T=                 # the test's temporary directory
FAILS=0            # failed checks
CHECKS=0           # checks made
TDHOOK_PID=        # master of `tdhook serve`
NGINX_PID=
NGINX_PORT=
FCGI_TCP_PORT=${FCGI_TCP_PORT:-}
BASE=              # http://127.0.0.1:NGINX_PORT
EXTRA_PIDS=()      # other processes to stop on exit
PY_PORT=           # port and pid of the fake start_py started last
PY_PID=
TOKEN1=
TOKEN2=
TD_SECRET=         # the TOPdesk application password in the config
GRAPH_SECRET=

# RES_*: the last answer of req().
RES_STATUS=
RES_BODY=
RES_HEADERS=

say() { printf '%s\n' "$*"; }

# skip REASON: the whole test is skipped (exit 77).
skip() {
    say "SKIP: $*"
    exit 77
}

# die REASON: the test cannot go on (counts as a failure).
die() {
    say "FAIL: $*"
    FAILS=$((FAILS + 1))
    exit 1
}

ok() {
    CHECKS=$((CHECKS + 1))
    say "ok - $*"
}

fail() {
    CHECKS=$((CHECKS + 1))
    FAILS=$((FAILS + 1))
    say "FAIL: $*"
}

# need_test_seams: the suite sets TDHOOK_TEST_* variables, which only a
# build configured with --enable-test-seams reads (as tests/run.sh does).
need_test_seams() {
    "$TDHOOK" --version 2>/dev/null | grep -q 'test build' ||
        skip "$TDHOOK is not a test build: configure with --enable-test-seams (tests/run.sh does)"
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"
}

# rand_hex N: N random bytes as hex.
rand_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# alive PID: true when the process exists and is not a zombie.
alive() {
    local state
    [ -n "$1" ] || return 1
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -e 's/^.*) //' -e 's/ .*$//' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s; false on timeout.
wait_until() {
    local limit=$(($1 * 10)) i=0
    shift
    while [ "$i" -lt "$limit" ]; do
        if "$@"; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# port_or_exit FILE PID: true once FILE has the port, or PID has exited.
port_or_exit() {
    [ -s "$1" ] || ! alive "$2"
}

# start_py NAME SCRIPT ARGS...: starts a fake of tests/fakes/ with $PY
# (default /usr/bin/python3) and --port 0 (log in $T/NAME.log, stopped at
# exit) and waits for its port file; sets PY_PORT and PY_PID.  ARGS come
# after --port 0, so a --port N among them (a restart on the same port)
# wins: the fakes' argparse keeps the last.  Call it in the test's own
# shell, not in $(...), or the cleanup never learns the pid.
start_py() {
    local name=$1 script=$2 pid
    shift 2
    rm -f "$T/$name.port"
    "${PY:-/usr/bin/python3}" "$top_srcdir/tests/fakes/$script" --port 0 --port-file "$T/$name.port" "$@" \
        >>"$T/$name.log" 2>&1 &
    pid=$!
    EXTRA_PIDS+=("$pid")
    wait_until 15 port_or_exit "$T/$name.port" "$pid" || true
    if [ ! -s "$T/$name.port" ]; then
        alive "$pid" || die "$script ($name) exited at start (see $name.log)"
        die "$script ($name) does not listen within 15 s (see $name.log)"
    fi
    # shellcheck disable=SC2034  # read by the tests
    PY_PORT=$(tr -d ' \n' <"$T/$name.port")
    # shellcheck disable=SC2034
    PY_PID=$pid
}

# fake METHOD PATH [JSON] [PORT]: a control request to a fake (the fake
# TOPdesk at $TD_PORT unless PORT is given); the answer body on stdout.
fake() {
    local method=$1 path=$2 body=${3:-} port=${4:-${TD_PORT:-}}
    if [ -n "$body" ]; then
        curl -sS --max-time 30 -X "$method" -H 'Content-Type: application/json' \
            --data-binary "$body" "http://127.0.0.1:$port$path"
    else
        curl -sS --max-time 30 -X "$method" "http://127.0.0.1:$port$path"
    fi
}

# free_port: prints a TCP port that nobody listens on at the moment.
free_port() {
    local p i
    if command -v python3 >/dev/null 2>&1; then
        p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) && [ -n "$p" ] && { say "$p"; return 0; }
    fi
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM % 30000) + i))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            say "$p"
            return 0
        fi
    done
    return 1
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 5).
stop_pid() {
    local pid=$1 secs=${2:-5}
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "$secs" gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_until 2 gone "$pid" || true
    fi
}

# queued_jobs DIR: the jobs waiting in a queue/ directory: its job files
# (ID.job) and the jobs its group files hold (ID.N.jobs, N of them).
queued_jobs() {
    find "$1" -maxdepth 1 \( -name '*.job' -o -name '*.jobs' \) -printf '%f\n' 2>/dev/null |
        awk -F. '/\.jobs$/ { n += $2; next } { n++ } END { print n + 0 }'
}

# children PID: the direct children of PID, one a line.
children() {
    pgrep -P "$1" 2>/dev/null || true
}

has_children() {
    [ -n "$(children "$1")" ]
}

# gone PID: true once PID has exited (or is a zombie).
gone() {
    ! alive "$1"
}

t_cleanup() {
    local rc=$? pid kids=()
    trap - EXIT INT TERM
    if [ -n "$TDHOOK_PID" ]; then
        mapfile -t kids < <(children "$TDHOOK_PID")
        stop_pid "$TDHOOK_PID" 10
        for pid in "${kids[@]}"; do
            stop_pid "$pid" 2
        done
    fi
    if [ -n "$NGINX_PID" ]; then
        stop_pid "$NGINX_PID" 5
    fi
    for pid in "${EXTRA_PIDS[@]}"; do
        mapfile -t kids < <(children "$pid")
        stop_pid "$pid" 5
        for k in "${kids[@]}"; do
            stop_pid "$k" 2
        done
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$T" ] && [ -d "$T" ]; then
        local f
        for f in "$T"/*.log; do
            [ -s "$f" ] || continue
            say "---- last lines of ${f##*/} ----"
            tail -n 40 "$f"
        done
    fi
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "${KEEP_TMP:-0}" = 1 ]; then
            say "kept $T"
        else
            # A test may have made state_dir unwritable: undo before rm.
            chmod -R u+rwX "$T" 2>/dev/null || true
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}

# t_setup [nginx]: temp dir, cleanup trap, tokens.  With "nginx" the test
# needs nginx and curl (skipped when missing).
t_setup() {
    if [ "${1:-}" = nginx ]; then
        [ -x "$NGINX" ] || skip "nginx is not installed ($NGINX)"
        need_cmd curl
    fi
    [ -x "$TDHOOK" ] || die "no tdhook binary at $TDHOOK (set TDHOOK)"
    T=$(mktemp -d "${TMPDIR:-/tmp}/tdhook-test.XXXXXX") || die "mktemp failed"
    trap t_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    TOKEN1=tok1-$(rand_hex 12)
    TOKEN2=tok2-$(rand_hex 12)
    TD_SECRET=tdpw-$(rand_hex 10)
    GRAPH_SECRET=gsec-$(rand_hex 10)
    say "# test dir $T, tdhook $TDHOOK"
}

# write_config [SECTION=YAML ...]: the test config at $T/tdhook.yaml (mode
# 600), one line a top-level section.  Each argument replaces the default
# of its section (or adds one) with YAML in flow style, e.g.
#   write_config "queue={runners: 1, retry_base: 100ms}" \
#       "mail={smtp_url: smtp://127.0.0.1:$SMTP_PORT, starttls: off, from: a@example.com}"
# SECTION= (empty) leaves a section out.  The defaults: a state_dir in $T,
# both test tokens, a TOPdesk nobody answers on, a sender, a Graph backend.
write_config() {
    local -A sec=(
        [state_dir]="$T/state"
        [log]="{level: info, format: text}"
        [hooks]="{tokens: [$TOKEN1, $TOKEN2], max_body: 1MiB}"
        [topdesk]="{url: 'http://127.0.0.1:9', username: u, application_password: $TD_SECRET}"
        [mail]="{from: tdhook@example.com}"
        [graph]="{tenant: t, client_id: c, client_secret: $GRAPH_SECRET}"
    )
    local order=(state_dir log hooks admin_mail topdesk mail stock_check reservations graph ews
        queue) a k
    for a in "$@"; do
        case $a in
        [a-z]*=*) ;;
        *)
            say "write_config: expected SECTION=YAML, got '$a'" >&2
            return 1
            ;;
        esac
        k=${a%%=*}
        sec[$k]=${a#*=}
        [[ " ${order[*]} " == *" $k "* ]] || order+=("$k")
    done
    mkdir -p "$T/state"
    {
        say "# written by tests/lib.sh (write_config)"
        for k in "${order[@]}"; do
            [ -n "${sec[$k]:-}" ] && printf '%s: %s\n' "$k" "${sec[$k]}"
        done
    } >"$T/tdhook.yaml"
    chmod 600 "$T/tdhook.yaml"
}

# start_tdhook [serve args...]: starts `tdhook serve` on $T/tdhook.sock with
# two workers (unless args say otherwise), logs to $T/tdhook.log, and waits
# for the socket.  TDHOOK_TEST_JOB in the environment (sleep=MS, retry=N,
# fail, echo) changes what a job attempt does.
start_tdhook() {
    local args=("$@")
    if [ "${#args[@]}" -eq 0 ]; then
        args=(--socket "unix:$T/tdhook.sock" --workers 2)
    fi
    local a listen=unix:$T/tdhook.sock
    for a in "${args[@]}"; do
        case $a in unix:* | tcp:*) listen=$a ;; esac
    done
    [ "${listen#unix:}" = "$listen" ] || rm -f "${listen#unix:}"
    "$TDHOOK" -c "$T/tdhook.yaml" serve "${args[@]}" >>"$T/tdhook.log" 2>&1 &
    TDHOOK_PID=$!
    if ! wait_until 10 listening "$listen"; then
        alive "$TDHOOK_PID" || die "tdhook serve exited at start (see tdhook.log)"
        die "tdhook serve does not listen on $listen within 10 s"
    fi
    # The workers need a moment to reach FCGX_Accept_r; the socket listens
    # already, so a request would only wait, but give the children a start.
    wait_until 5 has_children "$TDHOOK_PID" ||
        die "tdhook serve started no worker within 5 s"
}

# listening unix:PATH|tcp:HOST:PORT: true when something listens there.
listening() {
    local hp
    case $1 in
    unix:*) test -S "${1#unix:}" ;;
    tcp:*)
        hp=${1#tcp:}
        (exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}") 2>/dev/null
        ;;
    *) return 1 ;;
    esac
}

# stop_tdhook: SIGTERM to the master; prints nothing, waits up to 10 s.
stop_tdhook() {
    local kids=() pid
    [ -n "$TDHOOK_PID" ] || return 0
    mapfile -t kids < <(children "$TDHOOK_PID")
    stop_pid "$TDHOOK_PID" 10
    wait "$TDHOOK_PID" 2>/dev/null || true
    for pid in "${kids[@]}"; do
        stop_pid "$pid" 2
    done
    TDHOOK_PID=
}

# start_nginx [SOCKET]: nginx on a free loopback port, serving
# deploy/nginx/tdhook.conf with the socket path replaced; sets BASE.
# NGINX_EXTRA: more directives for the server block (a benchmark's baseline).
start_nginx() {
    local sock=${1:-$T/tdhook.sock} user_line=
    [ -r "$top_srcdir/deploy/nginx/tdhook.conf" ] || die "no deploy/nginx/tdhook.conf"
    NGINX_PORT=$(free_port) || die "no free port"
    # For `serve --socket tcp:...`: nginx forwards /tcp/... there.
    while [ -z "$FCGI_TCP_PORT" ] || [ "$FCGI_TCP_PORT" = "$NGINX_PORT" ]; do
        FCGI_TCP_PORT=$(free_port) || die "no free port"
    done
    BASE=http://127.0.0.1:$NGINX_PORT
    mkdir -p "$T/nginx-tmp"
    cp /etc/nginx/fastcgi_params "$T/fastcgi_params" 2>/dev/null ||
        die "no /etc/nginx/fastcgi_params"
    sed "s|unix:/run/tdhook/tdhook.sock|unix:$sock|g" \
        "$top_srcdir/deploy/nginx/tdhook.conf" >"$T/tdhook.conf"
    # nginx workers drop to "nobody" when started as root; they must reach
    # the socket in our private temp dir.
    if [ "$(id -u)" -eq 0 ]; then
        user_line="user root root;"
    fi
    cat >"$T/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log info;
events { worker_connections 128; }
http {
    access_log $T/nginx-access.log;
    client_body_temp_path $T/nginx-tmp/body;
    fastcgi_temp_path $T/nginx-tmp/fastcgi;
    proxy_temp_path $T/nginx-tmp/proxy;
    uwsgi_temp_path $T/nginx-tmp/uwsgi;
    scgi_temp_path $T/nginx-tmp/scgi;
    default_type application/octet-stream;
    # The snippet's rate limit, set high: the tests flood on purpose.
    limit_req_zone \$binary_remote_addr zone=tdhook:1m rate=100000r/s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name localhost;
        location = /nginx-ping { return 204; }
        # For the SIGTERM test: the body streams through to tdhook while
        # the client still sends it, so the request is really in flight.
        location /unbuffered/ {
            fastcgi_split_path_info ^(/unbuffered)(/.*)\$;
            include fastcgi_params;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_request_buffering off;
            client_max_body_size 4m;
            fastcgi_pass unix:$sock;
        }
        location /tcp/ {
            fastcgi_split_path_info ^(/tcp)(/.*)\$;
            include fastcgi_params;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_pass 127.0.0.1:$FCGI_TCP_PORT;
        }
        ${NGINX_EXTRA:-}
        include $T/tdhook.conf;
    }
}
EOF
    "$NGINX" -t -q -p "$T/" -e "$T/nginx-error.log" -c "$T/nginx.conf" >"$T/nginx-t.log" 2>&1 ||
        { cat "$T/nginx-t.log"; die "nginx -t refused the test config"; }
    "$NGINX" -p "$T/" -e "$T/nginx-error.log" -c "$T/nginx.conf" >>"$T/nginx-stderr.log" 2>&1 &
    NGINX_PID=$!
    wait_until 10 curl -s -o /dev/null --max-time 1 "$BASE/nginx-ping" ||
        die "nginx does not answer on $BASE within 10 s"
}

# req METHOD PATH [curl args...]: one request through nginx; sets
# RES_STATUS, RES_BODY and RES_HEADERS (raw header block, CR removed).
req() {
    local method=$1 path=$2
    shift 2
    : >"$T/res-body"
    : >"$T/res-headers"
    RES_STATUS=$(curl -sS --max-time 20 -X "$method" -H 'Expect:' \
        -o "$T/res-body" -D "$T/res-headers" -w '%{http_code}' \
        "$@" "$BASE$path" 2>"$T/curl-err") || RES_STATUS=000
    RES_BODY=$(cat "$T/res-body")
    RES_HEADERS=$(tr -d '\r' <"$T/res-headers")
}

# post_hook PATH BODY [curl args...]: POST with token 1 and a JSON body.
post_hook() {
    local path=$1 body=$2
    shift 2
    req POST "$path" -H "Authorization: Bearer $TOKEN1" \
        -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

# get_auth PATH [curl args...]: GET with token 1.
get_auth() {
    local path=$1
    shift
    req GET "$path" -H "Authorization: Bearer $TOKEN1" "$@"
}

# res_header NAME: the value of header NAME of the last answer (first one).
res_header() {
    printf '%s\n' "$RES_HEADERS" | awk -v n="$1" '
        BEGIN { n = tolower(n) ":" }
        tolower(substr($0, 1, length(n))) == n {
            v = substr($0, length(n) + 1); sub(/^[ \t]+/, "", v); print v; exit
        }'
}

# json_first TYPE KEY [JSON]: the value of the first "KEY" in document
# order (default RES_BODY) whose value is of TYPE (str or num): a job's own
# "status" comes before the one in its result, an error's "code" is found
# inside "error".  Nothing when there is none.
json_first() {
    local type=$1 key=$2 json=${3-$RES_BODY}
    if command -v python3 >/dev/null 2>&1; then
        printf '%s' "$json" | python3 -c '
import json, sys
want = sys.argv[1]
def fits(x):
    if want == "str":
        return isinstance(x, str)
    return isinstance(x, (int, float)) and not isinstance(x, bool)
def first(v, k):
    if isinstance(v, dict):
        for name, x in v.items():
            if name == k and fits(x):
                return x
            r = first(x, k)
            if r is not None:
                return r
    elif isinstance(v, list):
        for x in v:
            r = first(x, k)
            if r is not None:
                return r
    return None
try:
    r = first(json.load(sys.stdin), sys.argv[2])
except Exception:
    r = None
if r is not None:
    print(r)' "$type" "$key"
        return
    fi
    # Without python3: the first match in the text, which is document order
    # for the flat answers of tdhook.
    if [ "$type" = str ]; then
        printf '%s' "$json" | tr '\n' ' ' | grep -o "\"$key\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" |
            head -n 1 | sed -E 's/.*:[[:space:]]*"([^"]*)"/\1/'
    else
        printf '%s' "$json" | tr '\n' ' ' | grep -o -E "\"$key\"[[:space:]]*:[[:space:]]*-?[0-9]+" |
            head -n 1 | sed -E 's/.*:[[:space:]]*//'
    fi
}

# json_str KEY [JSON]: the string value of the first "KEY" (json_first).
json_str() {
    json_first str "$@"
}

# json_num KEY [JSON]: the numeric value of the first "KEY" (json_first).
json_num() {
    json_first num "$@"
}

# is_json TEXT: true when TEXT parses as JSON (python3), or looks like an
# object when python3 is missing.
is_json() {
    if command -v python3 >/dev/null 2>&1; then
        printf '%s' "$1" | python3 -c 'import json, sys; json.load(sys.stdin)' 2>/dev/null
    else
        case $1 in "{"*"}" | "{"*"}"$'\n') return 0 ;; *) return 1 ;; esac
    fi
}

# --- assertions: each prints "ok - WHAT" or "FAIL: WHAT ..." --------------

# check WHAT CMD...: ok when CMD succeeds.
check() {
    local what=$1
    shift
    if "$@"; then
        ok "$what"
    else
        fail "$what"
    fi
}

assert_eq() {
    local what=$1 want=$2 got=$3
    if [ "$want" = "$got" ]; then
        ok "$what"
    else
        fail "$what: expected '$want', got '$got'"
    fi
}

# assert_status WANT WHAT: the last answer's status.
assert_status() {
    local want=$1 what=$2
    if [ "$RES_STATUS" = "$want" ]; then
        ok "$what -> $want"
    else
        fail "$what: expected status $want, got $RES_STATUS; body: $(printf '%s' "$RES_BODY" | head -c 300)"
    fi
}

# assert_contains WHAT HAYSTACK NEEDLE: fixed-string search.
assert_contains() {
    local what=$1 hay=$2 needle=$3
    if printf '%s' "$hay" | grep -qF -- "$needle"; then
        ok "$what"
    else
        fail "$what: '$needle' not found in: $(printf '%s' "$hay" | head -c 400)"
    fi
}

assert_not_contains() {
    local what=$1 hay=$2 needle=$3
    if printf '%s' "$hay" | grep -qF -- "$needle"; then
        fail "$what: '$needle' found"
    else
        ok "$what"
    fi
}

# assert_match WHAT TEXT ERE: extended regular expression search.
assert_match() {
    local what=$1 text=$2 re=$3
    if printf '%s' "$text" | grep -qE -- "$re"; then
        ok "$what"
    else
        fail "$what: /$re/ does not match: $(printf '%s' "$text" | head -c 400)"
    fi
}

# assert_header NAME ERE WHAT: a header of the last answer matches ERE.
assert_header() {
    local name=$1 re=$2 what=$3 v
    v=$(res_header "$name")
    if [ -n "$v" ] && printf '%s' "$v" | grep -qE -- "$re"; then
        ok "$what ($name: $v)"
    else
        fail "$what: header $name is '$v', wanted /$re/"
    fi
}

# assert_json_error STATUS WHAT: status, a JSON body and error.code set.
assert_json_error() {
    local want=$1 what=$2 code
    assert_status "$want" "$what"
    code=$(json_str code)
    if is_json "$RES_BODY" && printf '%s' "$RES_BODY" | grep -qE '"error"[[:space:]]*:[[:space:]]*\{' &&
        [ -n "$code" ]; then
        ok "$what: JSON error body, code $code"
    else
        fail "$what: not a JSON error body: $(printf '%s' "$RES_BODY" | head -c 300)"
    fi
}

# job_status ID: prints the status of job ID via GET /jobs/ID (or "?").
job_status() {
    get_auth "/jobs/$1"
    if [ "$RES_STATUS" = 200 ]; then
        json_str status
    else
        say "?$RES_STATUS"
    fi
}

# wait_job ID STATUS SECONDS: polls GET /jobs/ID until its status is
# STATUS; the last answer stays in RES_*.  False on timeout.
wait_job() {
    local id=$1 want=$2 secs=$3 i=0 st
    while [ "$i" -lt $((secs * 5)) ]; do
        st=$(job_status "$id")
        # job_status ran in a subshell: fetch the body again for the caller.
        if [ "$st" = "$want" ]; then
            get_auth "/jobs/$id"
            return 0
        fi
        sleep 0.2
        i=$((i + 1))
    done
    get_auth "/jobs/$id"
    return 1
}

# log_has_secret FILE: fails the check when a secret of the config shows in FILE.
assert_no_secrets() {
    local what=$1 file=$2 s found=
    for s in "$TOKEN1" "$TOKEN2" "$TD_SECRET" "$GRAPH_SECRET"; do
        if grep -qF -- "$s" "$file"; then
            found="$found ${s%%-*}-..."
        fi
    done
    if [ -z "$found" ]; then
        ok "$what: no secret in ${file##*/}"
    else
        fail "$what: secrets in ${file##*/}:$found"
    fi
}

# finish: the test's exit status from the checks made.
finish() {
    if [ "$FAILS" -gt 0 ]; then
        say "# $FAILS of $CHECKS checks failed"
        exit 1
    fi
    say "# all $CHECKS checks passed"
    exit 0
}
