#!/usr/bin/env bash
# shellcheck disable=SC2317  # helpers called indirectly
# The stock check end to end, against the fake TOPdesk (tests/fakes/topdesk.py)
# and a real SMTP server on loopback (tests/fakes/smtp_sink.py):
#
#  1. the exact digest of a known data set: `stock-check --dry-run --json`
#     against values computed here from the fake's data, then the same check
#     through nginx and `tdhook serve` (POST /hooks/stock-check), the digest
#     parsed back from the received MIME: subject, text, HTML and CSV carry
#     the same facts, CRLF throughout, the stock card links;
#  2. many pages: the 1k data set, and again with the fake serving at most 7
#     items a page; requests grow with stock rooms, not with assets;
#  3. 429 with Retry-After, then success (CLI and hook);
#  4. TOPdesk down: the job retries, ends dead after max_attempts, and a
#     dead-letter mail goes to admin_mail; `tdhook queue list` shows it;
#  5. the "Minimale voorraad" field missing: an error that tells the admin
#     what to create; the job is dead at once;
#  6. a header injection attempt in a stock room's name;
#  7. repeat: only_new, and no mail when nothing is short unless always_mail;
#  8. no secret in tdhook's log, the CLI's output, a job result or a mail.
#
# Needs /usr/bin/python3 with aiosmtpd (Debian: python3-aiosmtpd) and curl;
# exit 77 (skip) without them.  Without nginx the hook parts are skipped and
# the CLI parts still run.  KEEP_TMP=1 keeps the temporary directory.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "aiosmtpd is missing (Debian: python3-aiosmtpd)"
need_cmd curl
# The test hook of the job runner would replace the real stock check.
unset TDHOOK_TEST_JOB

t_setup
HOOKS=1
[ -x "$NGINX" ] || { HOOKS=0; say "# nginx is missing: the hook parts are skipped"; }

TD_USER=tdhook-api
BUYER=inkoop@example.com
ADMIN=tdhook-admin@example.com
MAILDIR=$T/mail
mkdir -p "$MAILDIR"
: >"$T/results.txt"    # every job answer, for the secrets check
: >"$T/cli-all.txt"    # every CLI output, likewise

# --- the fakes ------------------------------------------------------------

start_py topdesk topdesk.py --dataset demo --user "$TD_USER" --password "$TD_SECRET"
TD_PORT=$PY_PORT
TD_URL=http://127.0.0.1:$TD_PORT
start_py smtp smtp_sink.py --maildir "$MAILDIR"
SMTP_PORT=$PY_PORT

# set_data FILE: replaces the fake's data set with the JSON in FILE.
set_data() {
    local out
    out=$(curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' \
        --data-binary "@$1" "http://127.0.0.1:$TD_PORT/__fake/data") ||
        die "POST /__fake/data failed"
    case $out in *'"error"'*) die "the fake refused ${1##*/}: $out" ;; esac
}

# get_data FILE [PORT]: the fake's current data set into FILE.
get_data() {
    fake GET /__fake/data "" "${2:-$TD_PORT}" >"$1" || die "GET /__fake/data failed"
}

# --- the config -------------------------------------------------------------

REPEAT=daily
ALWAYS=false
# write_stock_config [TOPDESK_URL]: the config at $T/tdhook.yaml.
write_stock_config() {
    write_config "hooks={tokens: [$TOKEN1, $TOKEN2]}" "admin_mail=[$ADMIN]" \
        "topdesk={url: '${1:-$TD_URL}', username: $TD_USER, application_password: $TD_SECRET, timeout: 20s, max_parallel: 4}" \
        "mail={smtp_url: 'smtp://127.0.0.1:$SMTP_PORT', starttls: auto, from: tdhook@example.com}" \
        "stock_check={minimum_field: Minimale voorraad, count: [assets, bulk_items], to: [$BUYER], repeat: $REPEAT, always_mail: $ALWAYS}" \
        "queue={runners: 2, retry_base: 2s, retry_max: 2s, max_attempts: 3}"
}

# new_day: the repeat state as if the last digest went out yesterday.
new_day() {
    "$PY" -c 'import json, sys
p = sys.argv[1]
d = json.load(open(p, encoding="utf-8"))
d["mailed_day"] = "2000-01-01"
json.dump(d, open(p, "w", encoding="utf-8"))' "$T/state/stock-state.json"
}

# cli ARGS...: `tdhook stock-check ARGS`; sets CLI_RC, CLI_OUT, CLI_ERR.
cli() {
    "$TDHOOK" -c "$T/tdhook.yaml" stock-check "$@" >"$T/cli.out" 2>"$T/cli.err"
    CLI_RC=$?
    CLI_OUT=$(cat "$T/cli.out")
    CLI_ERR=$(cat "$T/cli.err")
    cat "$T/cli.out" "$T/cli.err" >>"$T/cli-all.txt"
}

# restart_serve: (re)starts `tdhook serve` with the current config.
restart_serve() {
    [ "$HOOKS" = 1 ] || return 0
    stop_tdhook
    start_tdhook
}

# --- mail -------------------------------------------------------------------

mail_count() {
    find "$MAILDIR" -maxdepth 1 -name '*.eml' | wc -l
}

mail_more_than() {
    [ "$(mail_count)" -gt "$1" ]
}

# new_mails BEFORE: the .eml files after the first BEFORE, oldest first.
new_mails() {
    find "$MAILDIR" -maxdepth 1 -name '*.eml' | sort | tail -n +"$(($1 + 1))"
}

# mail_to ADDR BEFORE: the first mail after BEFORE whose envelope has ADDR.
mail_to() {
    local f
    for f in $(new_mails "$2"); do
        if grep -qF "\"$1\"" "${f%.eml}.json" 2>/dev/null; then
            say "$f"
            return 0
        fi
    done
    return 1
}

# wait_mail_to ADDR BEFORE SECONDS: waits for mail_to; sets MAIL.
wait_mail_to() {
    local end=$((SECONDS + $3))
    MAIL=
    while :; do
        if MAIL=$(mail_to "$1" "$2"); then
            return 0
        fi
        [ "$SECONDS" -lt "$end" ] || break
        sleep 0.1
    done
    MAIL=
    return 1
}

# --- the checker (python) ---------------------------------------------------

# What the stock check must find, and the reports and mails checked against
# it, are computed in Python beside this file.
CHECK_PY=$top_srcdir/tests/integration/stock_check.py

# pycheck ARGS...: runs the checker; its "ok"/"FAIL" lines become checks.
pycheck() {
    local out rc line
    out=$("$PY" "$CHECK_PY" "$@" 2>&1)
    rc=$?
    while IFS= read -r line; do
        case $line in
        "ok "*) ok "${line#ok }" ;;
        "FAIL "*) fail "${line#FAIL }" ;;
        "") ;;
        *) say "# $line" ;;
        esac
    done <<<"$out"
    [ "$rc" -eq 0 ] || fail "the checker failed on: $*"
}

# value FILE EXPR: a Python expression over the JSON in FILE (as d).
value() {
    "$PY" "$CHECK_PY" value "$1" "$2" 2>/dev/null
}

# job_answer ID: GET /jobs/ID into $T/job.json (and the secrets file).
job_answer() {
    get_auth "/jobs/$1"
    printf '%s\n' "$RES_BODY" >"$T/job.json"
    printf '%s\n' "$RES_BODY" >>"$T/results.txt"
}

# top_status: "STATUS ATTEMPTS" of the job answer in $T/job.json.  (lib.sh's
# json_str finds the last "status" of a body, and a stock report has one
# per room.)
top_status() {
    "$PY" -c 'import json, sys
try:
    d = json.load(open(sys.argv[1], encoding="utf-8"))
    print(d.get("status", "?"), d.get("attempts", "?"))
except ValueError:
    print("? ?")' "$T/job.json"
}

# wait_st ID STATUS SECONDS: polls GET /jobs/ID until the job has STATUS;
# its answer stays in $T/job.json and RES_BODY.  False on timeout.
wait_st() {
    local end=$((SECONDS + $3)) st
    while :; do
        job_answer "$1"
        st=$(top_status)
        [ "${st%% *}" = "$2" ] && return 0
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# run_hook [BODY]: POST /hooks/stock-check; sets JOB (empty on failure).
run_hook() {
    post_hook /hooks/stock-check "$1"
    JOB=
    if [ "$RES_STATUS" = 202 ]; then
        JOB=$(json_str job)
    else
        fail "POST /hooks/stock-check: status $RES_STATUS: $RES_BODY"
    fi
}

write_stock_config
if [ "$HOOKS" = 1 ]; then
    start_tdhook
    start_nginx
fi

# === 1. the exact digest of a known data set ==================================
say "# 1. a known data set"
# Under, at and over the minimum; without a minimum; archived; non-ASCII;
# places with location and branch, branch only, nothing; a tie on shortfall
# ordered by name without regard to case; bulk items and assets together.
cat >"$T/known.json" <<'EOF'
{"field": {"id": "minimale-voorraad", "name": "Minimale voorraad"},
 "stocks": [
  {"id": "0a1b2c3d-0000-4000-a000-000000000001", "name": "Kabels & adapters — België",
   "archived": false, "minimum": 20,
   "location": {"id": "10000000-0000-4000-a000-000000000001", "name": "Magazijn Antwerpen"},
   "branch": {"id": "20000000-0000-4000-a000-000000000001", "name": "Vestiging Antwerpen"},
   "assets": 2,
   "bulk": [{"id": "30000000-0000-4000-a000-000000000001", "name": "USB-C naar HDMI adapter", "quantity": 4},
            {"id": "30000000-0000-4000-a000-000000000002", "name": "HDMI-kabel 2 m", "quantity": 3}]},
  {"id": "0a1b2c3d-0000-4000-a000-000000000002", "name": "Laptops", "archived": false, "minimum": 10,
   "location": {"id": "10000000-0000-4000-a000-000000000002", "name": "Magazijn Utrecht"},
   "branch": {"id": "20000000-0000-4000-a000-000000000002", "name": "Hoofdkantoor Utrecht"},
   "assets": 7, "bulk": []},
  {"id": "0a1b2c3d-0000-4000-a000-000000000003", "name": "beamers", "archived": false, "minimum": 5,
   "location": null,
   "branch": {"id": "20000000-0000-4000-a000-000000000003", "name": "Vestiging Zürich"},
   "assets": 2, "bulk": []},
  {"id": "0a1b2c3d-0000-4000-a000-000000000004", "name": "Überwachung", "archived": false, "minimum": 4,
   "location": null, "branch": null, "assets": 0, "bulk": []},
  {"id": "0a1b2c3d-0000-4000-a000-000000000005", "name": "Toners HP 26A", "archived": false, "minimum": 5,
   "location": {"id": "10000000-0000-4000-a000-000000000005", "name": "Servicedesk Amsterdam"},
   "branch": {"id": "20000000-0000-4000-a000-000000000005", "name": "Vestiging Amsterdam"},
   "assets": 0,
   "bulk": [{"id": "30000000-0000-4000-a000-000000000005", "name": "Toner HP 26A zwart", "quantity": 5}]},
  {"id": "0a1b2c3d-0000-4000-a000-000000000006", "name": "Monitoren", "archived": false, "minimum": 8,
   "location": {"id": "10000000-0000-4000-a000-000000000002", "name": "Magazijn Utrecht"},
   "branch": {"id": "20000000-0000-4000-a000-000000000002", "name": "Hoofdkantoor Utrecht"},
   "assets": 12, "bulk": []},
  {"id": "0a1b2c3d-0000-4000-a000-000000000007", "name": "Muizen en toetsenborden", "archived": false,
   "minimum": null,
   "location": {"id": "10000000-0000-4000-a000-000000000005", "name": "Servicedesk Amsterdam"},
   "branch": {"id": "20000000-0000-4000-a000-000000000005", "name": "Vestiging Amsterdam"},
   "assets": 1,
   "bulk": [{"id": "30000000-0000-4000-a000-000000000007", "name": "Muis Logitech M185", "quantity": 14}]},
  {"id": "0a1b2c3d-0000-4000-a000-000000000008", "name": "Dockingstations", "archived": true, "minimum": 4,
   "location": {"id": "10000000-0000-4000-a000-000000000002", "name": "Magazijn Utrecht"},
   "branch": null, "assets": 1, "bulk": []},
  {"id": "0a1b2c3d-0000-4000-a000-000000000009", "name": "Kluis", "archived": false, "minimum": 0,
   "location": null, "branch": null, "assets": 0, "bulk": []}
 ]}
EOF
set_data "$T/known.json"
get_data "$T/data.json"
assert_eq "the fake serves the known data set" 9 "$(value "$T/data.json" 'len(d["stocks"])')"

fake POST /__fake/reset >/dev/null
cli --dry-run --json
assert_eq "stock-check --dry-run --json exits 0" 0 "$CLI_RC"
cp "$T/cli.out" "$T/dry.json"
check "the dry run prints JSON" is_json "$CLI_OUT"
pycheck report "$T/data.json" "$T/dry.json" "$TD_URL" "dry run"
assert_eq "dry run: the report counts its TOPdesk requests as the fake does" \
    "$(fake GET /__fake/stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])')" \
    "$(value "$T/dry.json" 'd["requests"]')"
assert_eq "a dry run mails nothing" 0 "$(mail_count)"

cli --dry-run
assert_eq "stock-check --dry-run (text) exits 0" 0 "$CLI_RC"
assert_contains "the text report names the non-ASCII room" "$CLI_OUT" "Kabels & adapters — België"
assert_contains "the text report has the summary line" "$CLI_OUT" "4 of 8 stock rooms are under their minimum"
assert_not_contains "the text report leaves out the archived room" "$CLI_OUT" "Dockingstations"
assert_eq "a dry run (text) mails nothing" 0 "$(mail_count)"

if [ "$HOOKS" = 1 ]; then
    before=$(mail_count)
    run_hook '{}'
    if [ -n "$JOB" ] && wait_st "$JOB" "done" 30; then
        ok "stock-check job $JOB done"
    else
        fail "stock-check job not done in 30 s: $RES_BODY"
    fi
    job_answer "$JOB"
    assert_eq "the job's result says the mail is queued" queued "$(value "$T/job.json" 'd["result"]["mail"]')"
    pycheck report "$T/data.json" "$T/job.json" "$TD_URL" "hook job"
    if wait_mail_to "$BUYER" "$before" 20; then
        ok "the digest arrived at the SMTP server (${MAIL##*/})"
        cp "$MAIL" "$T/digest-1.eml"
        pycheck mail "$MAIL" "$T/data.json" "$TD_URL" daily "$BUYER"
        assert_eq "one digest, not more" $((before + 1)) "$(mail_count)"
    else
        fail "no digest for $BUYER within 20 s"
    fi
    mj=$(value "$T/job.json" 'd["result"].get("mail_job", "")')
    if [ -n "$mj" ] && wait_st "$mj" "done" 10; then
        ok "the mail job $mj is done"
        printf '%s\n' "$RES_BODY" >>"$T/results.txt"
    else
        fail "the mail job '$mj' is not done: $RES_BODY"
    fi
    # daily: the action fires again the same day, nothing new fell short:
    # no second digest.
    before=$(mail_count)
    run_hook '{}'
    wait_st "$JOB" "done" 30 || fail "daily, second run: job not done: $RES_BODY"
    job_answer "$JOB"
    assert_match "daily, second run the same day: no second digest" \
        "$(value "$T/job.json" 'd["result"]["mail"]')" "^not needed: today's digest went out already"
    sleep 0.5
    assert_eq "daily, second run the same day: nothing mailed" "$before" "$(mail_count)"
    # The dry run through the hook: the report, no mail.
    before=$(mail_count)
    run_hook '{"dry_run": true}'
    if [ -n "$JOB" ] && wait_st "$JOB" "done" 30; then
        job_answer "$JOB"
        assert_match "a dry-run job does not mail" "$(value "$T/job.json" 'd["result"]["mail"]')" '^dry run'
        pycheck report "$T/data.json" "$T/job.json" "$TD_URL" "dry-run job"
    else
        fail "dry-run job not done: $RES_BODY"
    fi
    sleep 1
    assert_eq "a dry-run job mails nothing" "$before" "$(mail_count)"
fi

# === 2. many pages ===========================================================
say "# 2. many pages"
"$PY" "$top_srcdir/tests/fakes/topdesk.py" --dump-dataset 1k >"$T/1k.json" ||
    die "the fake cannot dump the 1k data set"
set_data "$T/1k.json"
get_data "$T/data-1k.json"
fake POST /__fake/reset >/dev/null
cli --dry-run --json
assert_eq "1k: stock-check --dry-run --json exits 0" 0 "$CLI_RC"
cp "$T/cli.out" "$T/dry-1k.json"
pycheck report "$T/data-1k.json" "$T/dry-1k.json" "$TD_URL" "1k"
fake GET /__fake/stats >"$T/stats-1k.json"
req1k=$(value "$T/stats-1k.json" 'd["requests"]')
nrooms=$(value "$T/data-1k.json" 'sum(not s["archived"] for s in d["stocks"])')
# One field lookup, one page of the stock room list, then per stock room one
# count of its assets and one page of its stock quantities.
assert_eq "1k: requests = 1 field lookup + 1 list page + 2 per stock room" \
    $((2 + 2 * nrooms)) "$req1k"
assert_eq "1k: every answer was 200 or 206" '[]' \
    "$(value "$T/stats-1k.json" 'sorted(k for k in d["statuses"] if k not in ("200", "206"))')"
assert_eq "1k: at most topdesk.max_parallel (4) requests in flight" 1 \
    "$(value "$T/stats-1k.json" 'int(d["max_in_flight"] <= 4)')"

# Ten times the assets, same stock rooms: the same number of requests.
"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
for s in d["stocks"]:
    s["assets"] *= 10
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)' \
    "$T/data-1k.json" "$T/10k.json"
set_data "$T/10k.json"
get_data "$T/data-10k.json"
fake POST /__fake/reset >/dev/null
cli --dry-run --json
cp "$T/cli.out" "$T/dry-10k.json"
pycheck report "$T/data-10k.json" "$T/dry-10k.json" "$TD_URL" "10x assets"
fake GET /__fake/stats >"$T/stats-10k.json"
assert_eq "10x the assets in the same stock rooms: the same number of requests" \
    "$req1k" "$(value "$T/stats-10k.json" 'd["requests"]')"

# A TOPdesk that serves at most 7 items a page, whatever pageSize says.
start_py topdesk7 topdesk.py --dataset 1k --max-page 7 --user "$TD_USER" --password "$TD_SECRET"
TD7_PORT=$PY_PORT
get_data "$T/data-7.json" "$TD7_PORT"
cp "$T/tdhook.yaml" "$T/tdhook.yaml.main"
write_stock_config "http://127.0.0.1:$TD7_PORT"
cli --dry-run --json
assert_eq "pages of 7: stock-check exits 0" 0 "$CLI_RC"
cp "$T/cli.out" "$T/dry-7.json"
pycheck report "$T/data-7.json" "$T/dry-7.json" "http://127.0.0.1:$TD7_PORT" "pages of 7"
write_stock_config
set_data "$T/known.json"

# === 3. 429 with Retry-After, then success ==================================
say "# 3. 429 then success"
RULE429='{"rules":[{"path":"/tas/api/assetmgmt/assets","status":429,"retry_after":"1","times":2}]}'
fake POST /__fake/faults "$RULE429" >/dev/null
fake POST /__fake/reset >/dev/null
cli --dry-run --json
assert_eq "429 twice: the CLI still succeeds" 0 "$CLI_RC"
cp "$T/cli.out" "$T/dry-429.json"
pycheck report "$T/data.json" "$T/dry-429.json" "$TD_URL" "after 429"
fake GET /__fake/stats >"$T/stats-429.json"
assert_eq "the fake answered 429 twice" 2 "$(value "$T/stats-429.json" 'd["statuses"].get("429", 0)')"
if [ "$HOOKS" = 1 ]; then
    fake POST /__fake/faults "$RULE429" >/dev/null
    fake POST /__fake/reset >/dev/null
    run_hook '{"dry_run": true}'
    if [ -n "$JOB" ] && wait_st "$JOB" "done" 30; then
        job_answer "$JOB"
        ok "429 twice: the job still ends done"
        assert_eq "429 twice: within the job's first attempt" 1 "$(value "$T/job.json" 'd["attempts"]')"
        pycheck report "$T/data.json" "$T/job.json" "$TD_URL" "job after 429"
    else
        fail "429 twice: job not done: $RES_BODY"
    fi
    assert_eq "the fake answered 429 twice (hook)" 2 \
        "$(fake GET /__fake/stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["statuses"].get("429", 0))')"
fi
fake POST /__fake/faults '{"rules":[]}' >/dev/null

# === 4. TOPdesk down ========================================================
say "# 4. TOPdesk down"
fake POST /__fake/faults '{"rules":[{"path":"/tas/api/","status":503}]}' >/dev/null
cli --dry-run --json
assert_eq "TOPdesk 503: the CLI exits EX_TEMPFAIL (75)" 75 "$CLI_RC"
assert_contains "TOPdesk 503: the CLI says so" "$CLI_ERR" "503"
if [ "$HOOKS" = 1 ]; then
    before=$(mail_count)
    run_hook '{}'
    seen_retrying=0 attempts_seen=
    final=
    end=$((SECONDS + 40))
    while [ "$SECONDS" -lt "$end" ]; do
        job_answer "$JOB"
        read -r st at < <(top_status)
        [ "$st" = retrying ] && seen_retrying=1
        if [ "$st" != dead ]; then
            case " $attempts_seen " in *" $at "*) ;; *) attempts_seen="$attempts_seen $at" ;; esac
        fi
        if [ "$st" = dead ]; then
            final=$st
            break
        fi
        sleep 0.2
    done
    assert_eq "TOPdesk down: GET /jobs showed the job retrying" 1 "$seen_retrying"
    say "# attempts seen before the end:$attempts_seen"
    check "TOPdesk down: GET /jobs showed the attempts growing" test "$(wc -w <<<"$attempts_seen")" -ge 2
    assert_eq "TOPdesk down: the job ends dead" dead "$final"
    assert_eq "TOPdesk down: dead after max_attempts (3)" 3 "$(value "$T/job.json" 'd["attempts"]')"
    assert_contains "TOPdesk down: the job's error names the 503" "$(value "$T/job.json" 'd.get("error", "")')" 503
    if wait_mail_to "$ADMIN" "$before" 20; then
        ok "TOPdesk down: a dead-letter mail arrived for admin_mail"
        pycheck dead "$MAIL" "$ADMIN" "$JOB" 503
    else
        fail "TOPdesk down: no dead-letter mail for $ADMIN within 20 s"
    fi
    ql=$("$TDHOOK" -c "$T/tdhook.yaml" queue list 2>&1)
    printf '%s\n' "$ql" >>"$T/cli-all.txt"
    assert_match "tdhook queue list shows the job dead" "$ql" "^$JOB +dead +stock-check"
fi
fake POST /__fake/faults '{"rules":[]}' >/dev/null
# Nobody listening at all (the fake's port 9 stand-in).
write_stock_config http://127.0.0.1:9
cli --dry-run --json
assert_eq "TOPdesk unreachable: the CLI exits EX_TEMPFAIL (75)" 75 "$CLI_RC"
write_stock_config

# === 5. the field missing ===================================================
say "# 5. the field missing"
fake POST /__fake/field '{"remove":true}' >/dev/null
cli --dry-run --json
check "no field: the CLI exits non-zero" test "$CLI_RC" -ne 0
assert_eq "no field: EX_UNAVAILABLE (69): retrying will not help" 69 "$CLI_RC"
assert_contains "no field: the message names the field" "$CLI_ERR" '"Minimale voorraad"'
assert_match "no field: the message tells the admin to create a number field" "$CLI_ERR" \
    '[Cc]reate.*number field'
if [ "$HOOKS" = 1 ]; then
    before=$(mail_count)
    run_hook '{}'
    if [ -n "$JOB" ] && wait_st "$JOB" dead 20; then
        job_answer "$JOB"
        ok "no field: the job is dead"
        assert_eq "no field: dead at once (one attempt)" 1 "$(value "$T/job.json" 'd["attempts"]')"
        assert_contains "no field: GET /jobs tells what to create" \
            "$(value "$T/job.json" 'd.get("error", "")')" 'number field named "Minimale voorraad"'
    else
        fail "no field: the job is not dead within 20 s: $RES_BODY"
    fi
    if wait_mail_to "$ADMIN" "$before" 20; then
        pycheck dead "$MAIL" "$ADMIN" "$JOB" "Minimale voorraad"
    else
        fail "no field: no dead-letter mail for $ADMIN"
    fi
fi
fake POST /__fake/field '{"id":"minimale-voorraad","name":"Minimale voorraad"}' >/dev/null
set_data "$T/known.json"

# === 6. header injection ====================================================
say "# 6. header injection"
"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
d["stocks"].append({"id": "0a1b2c3d-0000-4000-a000-0000000000ee",
    "name": "Toner\r\nBcc: evil@example.com", "archived": False, "minimum": 50,
    "location": {"id": "10000000-0000-4000-a000-0000000000ee", "name": "Kelder\r\nCc: evil2@example.com"},
    "branch": None, "assets": 1, "bulk": []})
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"))' "$T/known.json" "$T/inject.json"
set_data "$T/inject.json"
get_data "$T/data-inject.json"
cli --dry-run --json
cp "$T/cli.out" "$T/dry-inject.json"
pycheck report "$T/data-inject.json" "$T/dry-inject.json" "$TD_URL" "injection data"
if [ "$HOOKS" = 1 ]; then
    before=$(mail_count)
    run_hook '{}'
    if [ -n "$JOB" ] && wait_st "$JOB" "done" 30; then
        job_answer "$JOB"
        ok "injection: the job is done"
    else
        fail "injection: job not done: $RES_BODY"
    fi
    if wait_mail_to "$BUYER" "$before" 20; then
        pycheck mail "$MAIL" "$T/data-inject.json" "$TD_URL" daily "$BUYER"
        assert_not_contains "injection: evil@example.com is not a recipient" \
            "$(cat "${MAIL%.eml}.json")" evil
        check "injection: no header line starts with Bcc: or Cc:" \
            test -z "$(tr -d '\r' <"$MAIL" | sed '/^$/q' | grep -iE '^(bcc|cc):')"
    else
        fail "injection: no digest for $BUYER"
    fi
    sleep 0.5
    for f in $(new_mails "$before"); do
        assert_not_contains "injection: nothing was sent to the injected address (${f##*/})" \
            "$(cat "${f%.eml}.json")" evil
    done
fi
set_data "$T/known.json"

# === 7. repeat: only_new, always_mail ======================================
say "# 7. only_new and always_mail"
if [ "$HOOKS" = 1 ]; then
    REPEAT=only_new
    write_stock_config
    rm -f "$T/state/stock-state.json"
    restart_serve
    # First run: everything short is new.
    before=$(mail_count)
    run_hook '{}'
    wait_st "$JOB" "done" 30 || fail "only_new run 1 not done: $RES_BODY"
    job_answer "$JOB"
    assert_eq "only_new run 1: mail queued" queued "$(value "$T/job.json" 'd["result"]["mail"]')"
    if wait_mail_to "$BUYER" "$before" 20; then
        ok "only_new run 1: a digest arrived"
        # Everything short or without minimum is new on the first run.
        pycheck mail "$MAIL" "$T/data.json" "$TD_URL" \
            "only:$(value "$T/data.json" '",".join(s["id"] for s in d["stocks"] if not s["archived"] and (s["minimum"] is None or s["minimum"] > s["assets"] + sum(b["quantity"] for b in s["bulk"])))')" \
            "$BUYER"
    else
        fail "only_new run 1: no digest"
    fi
    # Second run: nothing new.
    sleep 0.5
    before=$(mail_count)
    run_hook '{}'
    wait_st "$JOB" "done" 30 || fail "only_new run 2 not done: $RES_BODY"
    job_answer "$JOB"
    assert_match "only_new run 2: the result says no mail was needed" \
        "$(value "$T/job.json" 'd["result"]["mail"]')" '^not needed'
    assert_eq "only_new run 2: no mail job" "" "$(value "$T/job.json" 'd["result"].get("mail_job", "")')"
    sleep 1.5
    assert_eq "only_new run 2: nothing mailed" "$before" "$(mail_count)"
    # Monitoren falls short (12 assets, minimum 8 -> 30).
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
for s in d["stocks"]:
    if s["name"] == "Monitoren":
        s["minimum"] = 30
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)' "$T/known.json" "$T/monitoren.json"
    set_data "$T/monitoren.json"
    get_data "$T/data-mon.json"
    before=$(mail_count)
    run_hook '{}'
    wait_st "$JOB" "done" 30 || fail "only_new run 3 not done: $RES_BODY"
    job_answer "$JOB"
    assert_eq "only_new run 3: mail queued" queued "$(value "$T/job.json" 'd["result"]["mail"]')"
    if wait_mail_to "$BUYER" "$before" 20; then
        ok "only_new run 3: a digest arrived"
        pycheck mail "$MAIL" "$T/data-mon.json" "$TD_URL" \
            "only:0a1b2c3d-0000-4000-a000-000000000006" "$BUYER"
    else
        fail "only_new run 3: no digest"
    fi
    sleep 0.5
    assert_eq "only_new run 3: one mail" $((before + 1)) "$(mail_count)"

    # Nothing short at all: no mail (daily), unless always_mail.
    REPEAT=daily
    write_stock_config
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
for s in d["stocks"]:
    if s["minimum"] is not None:
        s["minimum"] = 0
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)' "$T/known.json" "$T/allok.json"
    set_data "$T/allok.json"
    get_data "$T/data-ok.json"
    restart_serve
    before=$(mail_count)
    run_hook '{}'
    wait_st "$JOB" "done" 30 || fail "nothing short: job not done: $RES_BODY"
    job_answer "$JOB"
    assert_match "nothing short: the result says no mail was needed" \
        "$(value "$T/job.json" 'd["result"]["mail"]')" '^not needed'
    cli
    assert_eq "nothing short: the CLI (mailing) exits 0" 0 "$CLI_RC"
    assert_contains "nothing short: the CLI says it sends no mail" "$CLI_ERR" "no mail"
    sleep 1
    assert_eq "nothing short: nothing mailed" "$before" "$(mail_count)"
    ALWAYS=true
    write_stock_config
    restart_serve
    new_day
    run_hook '{}'
    wait_st "$JOB" "done" 30 || fail "always_mail: job not done: $RES_BODY"
    job_answer "$JOB"
    assert_eq "always_mail: mail queued" queued "$(value "$T/job.json" 'd["result"]["mail"]')"
    if wait_mail_to "$BUYER" "$before" 20; then
        ok "always_mail: a digest arrived although nothing is short"
        pycheck mail "$MAIL" "$T/data-ok.json" "$TD_URL" none "$BUYER"
    else
        fail "always_mail: no digest"
    fi
    ALWAYS=false
else
    say "# (skipped without nginx)"
fi

# The CLI mails itself too: one run without --dry-run on the known data.
REPEAT=daily
ALWAYS=false
write_stock_config
set_data "$T/known.json"
before=$(mail_count)
cli
assert_eq "stock-check (mailing) exits 0" 0 "$CLI_RC"
assert_contains "stock-check (mailing) says it mailed" "$CLI_ERR" "digest mailed to 1 recipient"
if wait_mail_to "$BUYER" "$before" 10; then
    pycheck mail "$MAIL" "$T/data.json" "$TD_URL" daily "$BUYER"
else
    fail "stock-check (mailing): no digest"
fi

# === 8. secrets =============================================================
say "# 8. secrets"
if [ "$HOOKS" = 1 ]; then
    stop_tdhook
    assert_no_secrets "tdhook serve's log" "$T/tdhook.log"
    check "the job answers were collected" test -s "$T/results.txt"
    assert_no_secrets "job results" "$T/results.txt"
fi
assert_no_secrets "CLI output" "$T/cli-all.txt"
cat "$MAILDIR"/*.eml >"$T/all-mail.txt" 2>/dev/null
assert_no_secrets "the mails" "$T/all-mail.txt"

finish
