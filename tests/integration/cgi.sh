#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # helpers with optional args; callbacks
# tdhook run as a CGI program: the environment and stdin a web server gives
# it, one answer ("Status: NNN", headers, body) on stdout.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

t_setup
write_config "queue={runners: 0}"
export LC_ALL=C

# cgi METHOD PATH BODY [VAR=VALUE...]: runs one CGI request with token 1,
# JSON content and CONTENT_LENGTH from BODY unless the VARs say otherwise
# (VAR= with no value unsets VAR).  Sets RES_STATUS/RES_HEADERS/RES_BODY
# and CGI_RC.
cgi() {
    local method=$1 path=$2 body=$3 kv
    shift 3
    local -A env=(
        [PATH]=$PATH
        [TDHOOK_CONFIG]=$T/tdhook.yaml
        [GATEWAY_INTERFACE]=CGI/1.1
        [SERVER_PROTOCOL]=HTTP/1.1
        [REQUEST_METHOD]=$method
        [PATH_INFO]=$path
        [SCRIPT_NAME]=/cgi-bin/tdhook
        [CONTENT_TYPE]=application/json
        [CONTENT_LENGTH]=${#body}
        [HTTP_AUTHORIZATION]="Bearer $TOKEN1"
        [REMOTE_ADDR]=127.0.0.1
    )
    for kv in "$@"; do
        if [ -z "${kv#*=}" ]; then
            unset "env[${kv%%=*}]"
        else
            env[${kv%%=*}]=${kv#*=}
        fi
    done
    local args=() k
    for k in "${!env[@]}"; do
        args+=("$k=${env[$k]}")
    done
    printf '%s' "$body" >"$T/cgi-in"
    timeout 10 env -i "${args[@]}" "$TDHOOK" <"$T/cgi-in" >"$T/cgi-out" 2>>"$T/cgi.log"
    CGI_RC=$?
    parse_cgi_out
}

# parse_cgi_out: splits $T/cgi-out into RES_STATUS, RES_HEADERS, RES_BODY.
parse_cgi_out() {
    RES_HEADERS=$(tr -d '\r' <"$T/cgi-out" | sed '/^$/q')
    RES_BODY=$(tr -d '\r' <"$T/cgi-out" | sed '1,/^$/d')
    RES_STATUS=$(printf '%s\n' "$RES_HEADERS" | sed -n -E 's/^Status:[[:space:]]*([0-9]{3}).*/\1/p' | head -n 1)
    [ -n "$RES_STATUS" ] || RES_STATUS=none
}

assert_clean_exit() {
    if [ "$CGI_RC" -eq 124 ]; then
        fail "$1: the CGI hung (killed by timeout after 10 s)"
    elif [ "$CGI_RC" -ge 128 ]; then
        fail "$1: the CGI died of signal $((CGI_RC - 128))"
    else
        ok "$1: the CGI exited by itself ($CGI_RC)"
    fi
}

cgi POST /hooks/stock-check '{}'
assert_status 202 "CGI: POST /hooks/stock-check"
assert_clean_exit "CGI 202"
assert_header Content-Type '^application/json' "CGI 202 is JSON"
id=$(json_str job)
assert_match "CGI: a job id" "$id" '^[0-9a-f-]{8,}$'
check "the job is on disk under state/queue" \
    test -n "$(find "$T/state/queue" -type f -name '*.job' 2>/dev/null)"

cgi GET "/jobs/$id" ''
assert_status 200 "CGI: GET /jobs/<id>"
assert_eq "CGI: the job waits (no runner)" queued "$(json_str status)"

cgi POST /hooks/reservation '{"id": "3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e01"}' HTTP_AUTHORIZATION="Basic $(printf 'user:%s' "$TOKEN2" | base64 -w0)"
assert_status 202 "CGI: Basic auth with token 2"

# The path after the prefix, from DOCUMENT_URI minus SCRIPT_NAME.
cgi POST '' '{}' PATH_INFO= DOCUMENT_URI=/tdhook/hooks/reconcile SCRIPT_NAME=/tdhook
assert_status 202 "CGI: route from DOCUMENT_URI minus SCRIPT_NAME"
cgi POST '' '{}' PATH_INFO= DOCUMENT_URI=/hooks/reconcile SCRIPT_NAME=/hooks/reconcile
assert_status 202 "CGI: SCRIPT_NAME equal to DOCUMENT_URI (location /)"

cgi POST /hooks/stock-check '{}' HTTP_AUTHORIZATION=
assert_json_error 401 "CGI: no token"
assert_header WWW-Authenticate '.' "CGI 401 names the scheme"
cgi POST /hooks/stock-check '{}' HTTP_AUTHORIZATION="Bearer nope"
assert_json_error 401 "CGI: wrong token"

cgi POST /hooks/nothing-here '{}'
assert_json_error 404 "CGI: unknown route"
cgi GET /hooks/stock-check ''
assert_json_error 405 "CGI: GET on a hook"
assert_header Allow '^POST$' "CGI 405 says Allow: POST"

cgi POST /hooks/stock-check '{'
assert_json_error 400 "CGI: malformed JSON"
cgi POST /hooks/reservation '"just a string"'
assert_json_error 400 "CGI: a JSON string"
cgi POST /hooks/stock-check '{}' CONTENT_TYPE=text/plain
assert_json_error 415 "CGI: text/plain"
cgi POST /hooks/stock-check '{}' CONTENT_TYPE=
assert_json_error 415 "CGI: no Content-Type with a body"

# 413 from CONTENT_LENGTH alone: nothing is sent, nothing must be read.
cgi POST /hooks/stock-check '' CONTENT_LENGTH=2097152
assert_json_error 413 "CGI: CONTENT_LENGTH over max_body"
assert_clean_exit "CGI 413"
cgi POST /hooks/stock-check '' CONTENT_LENGTH=99999999999999999999999
assert_match "CGI: an absurd CONTENT_LENGTH is refused" "$RES_STATUS" '^(400|413)$'

# A body shorter than announced: an error, not a hang.
cgi POST /hooks/stock-check '{}' CONTENT_LENGTH=100
assert_json_error 400 "CGI: body shorter than CONTENT_LENGTH"
assert_clean_exit "CGI short body"
cgi POST /hooks/stock-check '{}' CONTENT_LENGTH=-5
assert_match "CGI: a negative CONTENT_LENGTH is a 4xx" "$RES_STATUS" '^4[0-9][0-9]$'
cgi POST /hooks/stock-check '{}' CONTENT_LENGTH=abc
assert_match "CGI: a non-numeric CONTENT_LENGTH is a 4xx" "$RES_STATUS" '^4[0-9][0-9]$'

cgi GET /healthz '' HTTP_AUTHORIZATION= CONTENT_TYPE= CONTENT_LENGTH=
assert_status 200 "CGI: /healthz"
assert_eq "CGI: /healthz says ok" ok "$(printf '%s' "$RES_BODY" | tr -d '\n')"
cgi GET /metrics '' HTTP_AUTHORIZATION= CONTENT_TYPE= CONTENT_LENGTH=
assert_status 200 "CGI: /metrics"
assert_match "CGI: /metrics shows the queue depth" "$RES_BODY" '^tdhook_queue_depth [0-9]+'

# A state_dir that cannot hold the queue: 503, never a 500 or a crash.
sed "s|^state_dir: .*|state_dir: /dev/null/tdhook-state|" "$T/tdhook.yaml" >"$T/bad-state.yaml"
chmod 600 "$T/bad-state.yaml"
cgi POST /hooks/stock-check '{}' TDHOOK_CONFIG="$T/bad-state.yaml"
assert_json_error 503 "CGI: POST with state_dir under /dev/null"
assert_clean_exit "CGI 503"
cgi GET /healthz '' TDHOOK_CONFIG="$T/bad-state.yaml" HTTP_AUTHORIZATION= CONTENT_LENGTH=
assert_status 503 "CGI: /healthz with state_dir under /dev/null"

assert_no_secrets "CGI log" "$T/cgi.log"
assert_not_contains "no sanitizer report" "$(cat "$T/cgi.log")" "Sanitizer"
finish
