#!/usr/bin/env bash
# The front benchmark: what one nginx on loopback gets through tdhook,
# compared with the two limits on the same machine in the same run:
#
#   nginx-204   nginx answering `return 204` itself (the limit of nginx)
#   bare-fcgi   tests/bench/bare_fcgi.c, a libfcgi responder that only
#               answers 200, prefork with as many workers and threads as
#               tdhook (the
#               limit of any FastCGI front here)
#   bare-1t     the same responder with one thread a worker
#   bare-fast   the same responder (threads as tdhook) closing each
#               connection as tdhook does, without libfcgi's wait for nginx
#               to hang up: the limit once that wait is gone
#   bare-post, bare-1t-post
#               the two with the POST below (nginx passes its body on):
#               the limit for that very request (throughput only)
#   healthz     GET /healthz through tdhook
#   post        POST /hooks/reservation with a token and a JSON body: auth,
#               JSON, and the job durably stored before the 202
#
# For each: the maximum rate (wrk -t2 -c32 for DURATION s), then the latency
# at a fixed rate of 25 %, 50 % and 75 % of that maximum (tests/bench/rate.c,
# open loop, p50 and p99 counted from each request's due time), then the
# ratios tdhook/bare-fcgi and tdhook/nginx-204, and the RSS of each
# tdhook-http worker idle, after a warm-up and after every request of the
# run (topped up with /healthz and POSTs until the workers have served
# MEM_REQUESTS together, for at most MEM_SECONDS).
#
#   TDHOOK=build/release/tdhook bash tests/bench/front.sh
#
# Settings (environment): DURATION (10 s, throughput), LAT_SECONDS (10 s,
# each fixed-rate run), WORKERS (2, tdhook's default), THREADS (16, tdhook's
# default: requests each worker serves at once), CONNS (32),
# NGINX_WORKERS (auto), MEM_REQUESTS (100000), MEM_SECONDS (60), KEEP_TMP=1.
# tdhook runs with queue.runners 0, so the queue only fills; the job files
# are removed between runs.  Exit 77 when wrk, nginx, a C compiler or the
# libfcgi header is missing.  Takes about four minutes.  Manual: not in
# make check (its figures depend on the machine).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

DURATION=${DURATION:-10}
LAT_SECONDS=${LAT_SECONDS:-10}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-16}
CONNS=${CONNS:-32}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
MEM_REQUESTS=${MEM_REQUESTS:-100000}
MEM_SECONDS=${MEM_SECONDS:-60}
CC=${CC:-cc}

command -v wrk >/dev/null 2>&1 || skip "wrk is not installed (Debian: apt-get install wrk)"
need_cmd "$CC"
[ -r /usr/include/fcgiapp.h ] || skip "no libfcgi headers (libfcgi-dev)"

t_setup nginx
BENCH_START=$(date +%s)

# --- the machine ----------------------------------------------------------------
say "== machine"
say "cpus: $(nproc), $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
say "kernel: $(uname -r); state_dir on $(df -T "$T" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
say "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'); $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
say "tdhook and bare-fcgi: $WORKERS workers of $THREADS threads each; nginx workers: $NGINX_WORKERS; wrk -t2 -c$CONNS"

# --- build the two helpers ------------------------------------------------------
"$CC" -O2 -pthread -o "$T/bare_fcgi" "$top_srcdir/tests/bench/bare_fcgi.c" -lfcgi ||
    die "cannot build bare_fcgi.c"
"$CC" -O2 -o "$T/rate" "$top_srcdir/tests/bench/rate.c" ||
    die "cannot build rate.c"

# --- tdhook, the bare responder, nginx -------------------------------------------
write_config "queue={runners: 0, max_jobs: 10000000}"
start_tdhook --socket "unix:$T/tdhook.sock" --workers "$WORKERS" --threads "$THREADS"
"$T/bare_fcgi" "$T/bare.sock" "$WORKERS" "$THREADS" >>"$T/bare.log" 2>&1 &
EXTRA_PIDS+=("$!")
# The same with one thread a worker (as tdhook was before it had threads).
"$T/bare_fcgi" "$T/bare1.sock" "$WORKERS" 1 >>"$T/bare.log" 2>&1 &
EXTRA_PIDS+=("$!")
# The same closing as tdhook does (see bare_fcgi.c).
"$T/bare_fcgi" "$T/bare-fast.sock" "$WORKERS" "$THREADS" fast >>"$T/bare.log" 2>&1 &
EXTRA_PIDS+=("$!")
wait_until 5 test -S "$T/bare1.sock" || die "bare_fcgi (1 thread) does not listen"
wait_until 5 test -S "$T/bare-fast.sock" || die "bare_fcgi (fast close) does not listen"
wait_until 5 test -S "$T/bare.sock" || die "bare_fcgi does not listen"

# http_workers: the pids of tdhook's HTTP workers, one a line.
http_workers() {
    local pid
    for pid in $(children "$TDHOOK_PID"); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tdhook-http ] && say "$pid"
    done
}

# rss_line: "PID=KB ..." of every HTTP worker (VmRSS).
rss_line() {
    local pid out=""
    for pid in $(http_workers); do
        out+="$pid=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")kB "
    done
    say "${out% }"
}

wait_until 5 test "$(http_workers | wc -l)" -eq "$WORKERS" || die "tdhook has not $WORKERS workers"
RSS_IDLE=$(rss_line)
WORKERS_AT_START=$(http_workers | sort | tr '\n' ' ')

NGINX_PORT=$(free_port) || die "no free port"
BASE=http://127.0.0.1:$NGINX_PORT
mkdir -p "$T/nginx-tmp"
cp /etc/nginx/fastcgi_params "$T/fastcgi_params" || die "no /etc/nginx/fastcgi_params"
sed "s|unix:/run/tdhook/tdhook.sock|unix:$T/tdhook.sock|g" \
    "$top_srcdir/deploy/nginx/tdhook.conf" >"$T/tdhook.conf"
user_line=
[ "$(id -u)" -ne 0 ] || user_line="user root root;"
cat >"$T/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $T/nginx.pid;
error_log $T/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    # The snippet's rate limit, set out of the way of the benchmark.
    limit_req_zone \$binary_remote_addr zone=tdhook:1m rate=1000000r/s;
    client_body_temp_path $T/nginx-tmp/body;
    fastcgi_temp_path $T/nginx-tmp/fastcgi;
    proxy_temp_path $T/nginx-tmp/proxy;
    uwsgi_temp_path $T/nginx-tmp/uwsgi;
    scgi_temp_path $T/nginx-tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        server_name localhost;
        location = /nginx-204 { return 204; }
        location = /bare {
            include fastcgi_params;
            fastcgi_pass unix:$T/bare.sock;
        }
        location = /bare1 {
            include fastcgi_params;
            fastcgi_pass unix:$T/bare1.sock;
        }
        location = /bare-fast {
            include fastcgi_params;
            fastcgi_pass unix:$T/bare-fast.sock;
        }
        include $T/tdhook.conf;
    }
}
EOF
"$NGINX" -t -q -p "$T/" -e "$T/nginx-error.log" -c "$T/nginx.conf" >"$T/nginx-t.log" 2>&1 ||
    { cat "$T/nginx-t.log"; die "nginx -t refused the benchmark config"; }
"$NGINX" -p "$T/" -e "$T/nginx-error.log" -c "$T/nginx.conf" >>"$T/nginx-stderr.log" 2>&1 &
# shellcheck disable=SC2034  # lib.sh's cleanup stops it
NGINX_PID=$!
wait_until 10 curl -s -o /dev/null --max-time 1 "$BASE/nginx-204" ||
    die "nginx does not answer on $BASE"

BODY='{"id":"2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b","event":"changed"}'
req GET /healthz
assert_status 200 "GET /healthz through nginx"
req GET /bare
assert_status 200 "GET /bare (bare libfcgi responder)"
req GET /bare-fast
assert_status 200 "GET /bare-fast (the same, closing as tdhook does)"
post_hook /hooks/reservation "$BODY"
assert_status 202 "POST /hooks/reservation"
[ "$FAILS" -eq 0 ] || die "the targets do not answer as expected"

cat >"$T/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Authorization"] = "Bearer $TOKEN1"
wrk.headers["Content-Type"] = "application/json"
EOF

# clear_jobs: removes the queued job files (runners 0: nothing else uses them).
# clear_jobs: empties the queue between runs by moving queue/ aside (all is
# removed at the end).  Deleting tens of thousands of files would slow the
# next run: ext4 without a journal does not reuse an inode freed in the last
# minute (five while its block is dirty), and every new file then searches
# past them.
CLEARED=0
clear_jobs() {
    CLEARED=$((CLEARED + 1))
    mkdir -p "$T/cleared"
    mv "$T/state/queue" "$T/cleared/queue.$CLEARED" 2>/dev/null || true
    mkdir -p "$T/state/queue"
}

# n_jobs: jobs in the queue (job files and group files).
n_jobs() {
    queued_jobs "$T/state/queue"
}

declare -A RPS LAT50 LAT99
SERVED=0   # requests answered by tdhook in this run (for the memory figures)

# throughput NAME PATH [WRK ARGS...]: the maximum rate of one target.
throughput() {
    local name=$1 path=$2 out rps n non2xx errs
    shift 2
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "$@" "$BASE$path" 2>&1)
    printf '%s\n' "$out" >>"$T/wrk.log"
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
    n=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
    non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ { print $NF }')
    errs=$(printf '%s\n' "$out" | sed -n 's/^ *Socket errors: *//p')
    RPS[$name]=${rps:-0}
    case $name in healthz | post) SERVED=$((SERVED + ${n:-0})) ;; esac
    printf '%-10s %8s req/s  (%s requests in %s s%s%s)\n' "$name" "${rps:-?}" "${n:-?}" \
        "$DURATION" "${non2xx:+, $non2xx non-2xx}" "${errs:+, socket errors: $errs}"
    if [ -z "$rps" ] || [ "${non2xx:-0}" -ne 0 ]; then
        fail "$name: wrk measured no clean rate (see wrk.log)"
    fi
}

# latency NAME PATH [RATE ARGS...]: p50/p99 at 25, 50 and 75 % of the maximum.
latency() {
    local name=$1 path=$2 pct r out p50 p99
    shift 2
    for pct in 25 50 75; do
        r=$((RPS[$name] * pct / 100))
        [ "$r" -ge 1 ] || r=1
        out=$("$T/rate" -c "$CONNS" "$@" "$BASE$path" "$r" "$LAT_SECONDS" 2>&1)
        printf '%s %s%%: %s\n' "$name" "$pct" "$out" >>"$T/rate.log"
        p50=$(printf '%s\n' "$out" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
        p99=$(printf '%s\n' "$out" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
        LAT50[$name.$pct]=${p50:-?}
        LAT99[$name.$pct]=${p99:-?}
        case $name in healthz | post)
            SERVED=$((SERVED + $(printf '%s\n' "$out" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')))
            ;;
        esac
        printf '%-10s at %3s%% = %6s req/s: p50 %7s ms  p99 %7s ms  (%s)\n' "$name" "$pct" "$r" \
            "${p50:-?}" "${p99:-?}" "$(printf '%s' "$out" | grep -oE 'ok=[0-9]+ non2xx=[0-9]+ errors=[0-9]+')"
        case $out in *" non2xx=0 errors=0 "*) ;; *) fail "$name at $pct %: $out" ;; esac
    done
}

# A warm-up, so that the idle figure is followed by one after the first
# requests have faulted in what a worker touches.
wrk -t1 -c2 -d1s "$BASE/healthz" >/dev/null 2>&1
wrk -t1 -c2 -d1s -s "$T/post.lua" "$BASE/hooks/reservation" >/dev/null 2>&1
RSS_WARM=$(rss_line)
clear_jobs

say "== throughput (wrk -t2 -c$CONNS -d${DURATION}s)"
throughput nginx-204 /nginx-204
throughput bare-fcgi /bare
throughput bare-1t /bare1
throughput bare-fast /bare-fast
throughput bare-post /bare -s "$T/post.lua"
throughput bare-1t-post /bare1 -s "$T/post.lua"
throughput healthz /healthz
clear_jobs
throughput post /hooks/reservation -s "$T/post.lua"
jobs_after=$(n_jobs)
post_ok=$(awk '/requests in/ { n = $1 } END { print n }' "$T/wrk.log")
say "post: $jobs_after jobs durable in the queue ($(find "$T/state/queue" -name '*.jobs' | wc -l) group files, $(find "$T/state/queue" -name '*.job' | wc -l) job files) after $post_ok answered POSTs (a few more: requests cut off when wrk stopped)"
if [ "$jobs_after" -ge "$post_ok" ]; then
    ok "every answered POST left a job in the queue"
else
    fail "fewer jobs in the queue ($jobs_after) than answered POSTs ($post_ok)"
fi
clear_jobs

say "== latency at a fixed rate (tests/bench/rate.c, $LAT_SECONDS s each, $CONNS connections)"
latency nginx-204 /nginx-204
latency bare-fcgi /bare
latency healthz /healthz
latency post /hooks/reservation -X POST -d "$BODY" \
    -H "Authorization: Bearer $TOKEN1" -H 'Content-Type: application/json'
clear_jobs

# --- memory -----------------------------------------------------------------------
# Top up until the workers have served MEM_REQUESTS (all of them together),
# half /healthz and half POSTs, for at most MEM_SECONDS.
if [ "$SERVED" -lt "$MEM_REQUESTS" ]; then
    say "== memory: $SERVED requests so far; topping up to $MEM_REQUESTS (at most ${MEM_SECONDS}s)"
    mem_start=$(date +%s)
    what=healthz
    while [ "$SERVED" -lt "$MEM_REQUESTS" ] && [ $(($(date +%s) - mem_start)) -lt "$MEM_SECONDS" ]; do
        if [ "$what" = healthz ]; then
            n=$(wrk -t2 -c"$CONNS" -d5s "$BASE/healthz" 2>&1 | awk '/requests in/ { print $1 }')
            what=post
        else
            n=$(wrk -t2 -c"$CONNS" -d5s -s "$T/post.lua" "$BASE/hooks/reservation" 2>&1 |
                awk '/requests in/ { print $1 }')
            clear_jobs
            what=healthz
        fi
        if [ -z "$n" ] || [ "$n" -le 0 ]; then
            die "wrk made no request in the memory phase"
        fi
        SERVED=$((SERVED + n))
    done
    [ "$SERVED" -ge "$MEM_REQUESTS" ] ||
        say "(MEM_REQUESTS not reached within MEM_SECONDS: the figure below is after $SERVED)"
fi
RSS_AFTER=$(rss_line)
WORKERS_AT_END=$(http_workers | sort | tr '\n' ' ')

# --- the report ---------------------------------------------------------------------
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'
}
say ""
say "== summary ($(nproc) cpus, $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1))"
printf '%-10s %9s %22s %22s %22s\n' target "max req/s" "p50/p99 ms at 25%" "p50/p99 ms at 50%" "p50/p99 ms at 75%"
for name in nginx-204 bare-fcgi healthz post; do
    printf '%-10s %9s %22s %22s %22s\n' "$name" "${RPS[$name]}" \
        "${LAT50[$name.25]}/${LAT99[$name.25]}" "${LAT50[$name.50]}/${LAT99[$name.50]}" \
        "${LAT50[$name.75]}/${LAT99[$name.75]}"
done
say "ratio healthz/bare-fcgi: $(ratio "${RPS[healthz]}" "${RPS[bare-fcgi]}")   healthz/nginx-204: $(ratio "${RPS[healthz]}" "${RPS[nginx-204]}")"
say "ratio post/bare-fcgi:    $(ratio "${RPS[post]}" "${RPS[bare-fcgi]}")   post/nginx-204:    $(ratio "${RPS[post]}" "${RPS[nginx-204]}")"
say "bare-1t (one thread a worker): ${RPS[bare-1t]} req/s; ratio post/bare-1t: $(ratio "${RPS[post]}" "${RPS[bare-1t]}")"
say "bare-fast (closing as tdhook does): ${RPS[bare-fast]} req/s; ratio post/bare-fast: $(ratio "${RPS[post]}" "${RPS[bare-fast]}"), healthz/bare-fast: $(ratio "${RPS[healthz]}" "${RPS[bare-fast]}")"
say "the same POST to the bare responders: bare-post ${RPS[bare-post]}, bare-1t-post ${RPS[bare-1t-post]} req/s; ratio post/bare-post: $(ratio "${RPS[post]}" "${RPS[bare-post]}"), post/bare-1t-post: $(ratio "${RPS[post]}" "${RPS[bare-1t-post]}")"
say "memory (VmRSS of each tdhook-http worker, pid=size):"
say "  idle:                          $RSS_IDLE"
say "  after the warm-up:             $RSS_WARM"
say "  after $SERVED requests ($((SERVED / WORKERS)) a worker on average): $RSS_AFTER"
if [ "$WORKERS_AT_START" = "$WORKERS_AT_END" ]; then
    ok "the same workers served the whole run (no re-spawn)"
else
    fail "workers changed during the run: $WORKERS_AT_START -> $WORKERS_AT_END"
fi
say "took $(($(date +%s) - BENCH_START)) s; details in wrk.log and rate.log (KEEP_TMP=1 keeps $T)"
finish
