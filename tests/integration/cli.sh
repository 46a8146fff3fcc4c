#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # helpers with optional args; callbacks
# The command line: check-config masking every form of secret, config
# errors naming file:line:key (exit 78), the permission warning, --help,
# --version, usage errors (exit 64).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

t_setup
write_config

# run CMD...: runs tdhook; OUT (stdout), ERR (stderr), RC.
run() {
    timeout 20 "$TDHOOK" "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

no_secret_in() { # no_secret_in WHAT TEXT SECRET...
    local what=$1 text=$2 s
    shift 2
    for s in "$@"; do
        if printf '%s' "$text" | grep -qF -- "$s"; then
            fail "$what: shows the secret ${s:0:5}..."
            return
        fi
    done
    ok "$what: no secret shown"
}

# --- check-config, inline secrets ---------------------------------------
run -c "$T/tdhook.yaml" check-config
assert_eq "check-config exits 0" 0 "$RC"
assert_contains "check-config masks secrets" "$OUT" "********"
assert_match "check-config prints the config" "$OUT" "state_dir: *\"?$T/state"
assert_match "check-config prints defaults" "$OUT" 'max_parallel: 4'
no_secret_in "check-config (inline)" "$OUT$ERR" "$TOKEN1" "$TOKEN2" "$TD_SECRET" "$GRAPH_SECRET"
assert_not_contains "no permission warning at mode 600" "$ERR" "readable"
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
    check "check-config output is YAML" python3 -c 'import sys, yaml; yaml.safe_load(sys.stdin)' <"$T/out"
fi

# -c after the command, and $TDHOOK_CONFIG.
run check-config -c "$T/tdhook.yaml"
assert_eq "-c after the command" 0 "$RC"
TDHOOK_CONFIG=$T/tdhook.yaml run check-config
assert_eq "\$TDHOOK_CONFIG is used" 0 "$RC"

# --- ${ENV} and *_file secrets ----------------------------------------------
env_tok=envtok-$(rand_hex 10)
file_pw=filepw-$(rand_hex 10)
file_gs=filegs-$(rand_hex 10)
mail_pw=mailpw-$(rand_hex 10)
printf '%s\n' "$file_pw" >"$T/topdesk.secret"
printf '%s' "$file_gs" >"$T/graph.secret"
chmod 600 "$T/topdesk.secret" "$T/graph.secret"
cat >"$T/env.yaml" <<EOF
state_dir: $T/state
hooks:
  tokens: ["\${TDHOOK_TEST_TOKEN}", "second-\${TDHOOK_TEST_TOKEN}"]
topdesk:
  url: \${TDHOOK_TEST_URL}
  username: u
  application_password_file: $T/topdesk.secret
mail:
  from: tdhook@example.com
  username: mailer
  password: \${TDHOOK_TEST_MAILPW}
graph:
  tenant: t
  client_id: c
  client_secret_file: $T/graph.secret
EOF
chmod 600 "$T/env.yaml"
TDHOOK_TEST_TOKEN=$env_tok TDHOOK_TEST_URL=http://topdesk.invalid TDHOOK_TEST_MAILPW=$mail_pw \
    run -c "$T/env.yaml" check-config
assert_eq "check-config with \${ENV} and *_file exits 0" 0 "$RC"
no_secret_in "check-config (\${ENV}, *_file)" "$OUT$ERR" "$env_tok" "$file_pw" "$file_gs" "$mail_pw"
assert_contains "\${ENV} in a plain string is expanded" "$OUT" "http://topdesk.invalid"
assert_contains "secrets from env and files are masked" "$OUT" "********"

TDHOOK_TEST_URL=http://topdesk.invalid TDHOOK_TEST_MAILPW=$mail_pw run -c "$T/env.yaml" check-config
assert_eq "an unset \${ENV} is a config error (78)" 78 "$RC"
assert_contains "the error names the variable" "$ERR" "TDHOOK_TEST_TOKEN"

rm "$T/graph.secret"
TDHOOK_TEST_TOKEN=$env_tok TDHOOK_TEST_URL=http://x.invalid TDHOOK_TEST_MAILPW=$mail_pw \
    run -c "$T/env.yaml" check-config
assert_eq "a missing *_file is a config error (78)" 78 "$RC"
assert_contains "the error names the file" "$ERR" "graph.secret"

# --- config errors name file:line:key -----------------------------------------
# bad_config NAME WHAT LINE KEY: the YAML on stdin must give exit 78 and a
# message with NAME.yaml:LINE and KEY, and no secret.
bad_config() {
    local name=$1 what=$2 line=$3 key=$4
    cat >"$T/$name.yaml"
    chmod 600 "$T/$name.yaml"
    run -c "$T/$name.yaml" check-config
    assert_eq "$what: exit 78" 78 "$RC"
    assert_match "$what: names $name.yaml:$line" "$ERR" "$name\.yaml:$line\b"
    assert_contains "$what: names the key $key" "$ERR" "$key"
    no_secret_in "$what" "$OUT$ERR" "$TOKEN1" "$TD_SECRET"
}

bad_config unknown "unknown key" 4 tokenz <<EOF
state_dir: $T/state
hooks:
  tokens: [$TOKEN1]
  tokenz: [$TOKEN2]
topdesk: {url: http://x.invalid, username: u, application_password: $TD_SECRET}
mail: {from: a@example.com}
graph: {tenant: t, client_id: c, client_secret: s}
EOF

bad_config wrongtype "wrong type" 3 max_body <<EOF
state_dir: $T/state
hooks:
  max_body: [1, 2]
  tokens: [$TOKEN1]
topdesk: {url: http://x.invalid, username: u, application_password: $TD_SECRET}
mail: {from: a@example.com}
graph: {tenant: t, client_id: c, client_secret: s}
EOF

bad_config secrettype "a secret of the wrong type" 3 tokens <<EOF
state_dir: $T/state
hooks:
  tokens: {x: $TOKEN1}
topdesk: {url: http://x.invalid, username: u, application_password: $TD_SECRET}
mail: {from: a@example.com}
graph: {tenant: t, client_id: c, client_secret: s}
EOF

cat >"$T/missing.yaml" <<EOF
state_dir: $T/state
hooks: {tokens: [$TOKEN1]}
topdesk: {username: u, application_password: $TD_SECRET}
mail: {from: a@example.com}
graph: {tenant: t, client_id: c, client_secret: s}
EOF
chmod 600 "$T/missing.yaml"
run -c "$T/missing.yaml" check-config
assert_eq "missing topdesk.url: exit 78" 78 "$RC"
assert_match "missing topdesk.url: names the file and the key" "$ERR" 'missing\.yaml:[0-9]+.*url'
no_secret_in "missing key" "$OUT$ERR" "$TOKEN1" "$TD_SECRET"

cat >"$T/alias.yaml" <<EOF
state_dir: $T/state
hooks: {tokens: &t [$TOKEN1]}
admin_mail: *t
topdesk: {url: http://x.invalid, username: u, application_password: $TD_SECRET}
mail: {from: a@example.com}
graph: {tenant: t, client_id: c, client_secret: s}
EOF
chmod 600 "$T/alias.yaml"
run -c "$T/alias.yaml" check-config
assert_eq "a YAML alias: exit 78" 78 "$RC"
assert_match "a YAML alias: names the file and line" "$ERR" 'alias\.yaml:[23]'

printf 'state_dir: [unclosed\n' >"$T/syntax.yaml"
chmod 600 "$T/syntax.yaml"
run -c "$T/syntax.yaml" check-config
assert_eq "a YAML syntax error: exit 78" 78 "$RC"
assert_contains "a YAML syntax error names the file" "$ERR" "syntax.yaml"

# --- permissions and missing files ------------------------------------------
cp "$T/tdhook.yaml" "$T/open.yaml"
chmod 644 "$T/open.yaml"
run -c "$T/open.yaml" check-config
assert_eq "a world-readable config still loads" 0 "$RC"
assert_match "a world-readable config gives a warning" "$ERR" '[Rr]eadable|chmod|permission|mode'
no_secret_in "the permission warning" "$ERR" "$TOKEN1" "$TD_SECRET"

run -c "$T/does-not-exist.yaml" check-config
check "a missing config file fails ($RC)" test "$RC" -ne 0
assert_match "a missing config file: exit 66 or 78" "$RC" '^(66|78)$'
assert_contains "a missing config file is named" "$ERR" "$T/does-not-exist.yaml"

TDHOOK_CONFIG=$T/nope.yaml run check-config
check "a missing \$TDHOOK_CONFIG fails ($RC)" test "$RC" -ne 0
assert_contains "the missing \$TDHOOK_CONFIG is named" "$ERR" "$T/nope.yaml"

# --- help, version, usage -------------------------------------------------------
run --help
assert_eq "--help exits 0" 0 "$RC"
for word in serve check-config queue; do
    assert_contains "--help mentions $word" "$OUT$ERR" "$word"
done
run --version
assert_eq "--version exits 0" 0 "$RC"
assert_match "--version prints a version" "$OUT" 'tdhook.*[0-9]+\.[0-9]+'
run -c "$T/tdhook.yaml" frobnicate
assert_eq "an unknown command: exit 64" 64 "$RC"
assert_contains "an unknown command is named" "$ERR" "frobnicate"
run
assert_eq "no command: exit 64" 64 "$RC"
run --no-such-option
assert_eq "an unknown option: exit 64" 64 "$RC"
run -c
assert_eq "-c without a file: exit 64" 64 "$RC"
run -c "$T/tdhook.yaml" serve --workers 0 --socket "unix:$T/x.sock"
assert_eq "serve --workers 0: exit 64" 64 "$RC"
run -c "$T/tdhook.yaml" serve --workers many --socket "unix:$T/x.sock"
assert_eq "serve --workers many: exit 64" 64 "$RC"
run -c "$T/tdhook.yaml" serve --socket "udp:1.2.3.4" --workers 1
assert_eq "serve with a bad --socket: exit 64" 64 "$RC"
run -c "$T/tdhook.yaml" queue
assert_eq "queue without a subcommand: exit 64" 64 "$RC"
run -c "$T/tdhook.yaml" queue show
assert_eq "queue show without an id: exit 64" 64 "$RC"
run -c "$T/tdhook.yaml" queue list
assert_eq "queue list on an empty queue exits 0" 0 "$RC"

# --- every command explains itself; a wrong option needs no config ----------
for cmd in serve check-config queue doctor stock-check sync-reservation reconcile; do
    run -c "$T/no-such.yaml" "$cmd" --help
    assert_eq "$cmd --help: exit 0 without a config" 0 "$RC"
    assert_contains "$cmd --help: its usage" "$OUT" "usage: tdhook [-c FILE] $cmd"
done
run -c "$T/no-such.yaml" stock-check --dryrun
assert_eq "stock-check --dryrun (a typo): exit 64, no config read" 64 "$RC"
assert_contains "the typo is named" "$ERR" 'stock-check: unknown option "--dryrun"'
assert_contains "with the usage" "$ERR" "usage: tdhook stock-check [--dry-run] [--json]"
run -c "$T/no-such.yaml" reconcile --days
assert_eq "reconcile --days without a value: exit 64" 64 "$RC"
assert_contains "it says so" "$ERR" "--days needs a value"
run -c "$T/no-such.yaml" sync-reservation
assert_eq "sync-reservation without an id: exit 64" 64 "$RC"
run -c "$T/no-such.yaml" check-config extra
assert_eq "check-config with an argument: exit 64" 64 "$RC"
mkdir -p "$T/confdir"
run -c "$T/confdir" check-config
assert_eq "-c on a directory: exit 78" 78 "$RC"
assert_contains "-c on a directory says so" "$ERR" \
    "$T/confdir is a directory; -c takes the configuration file"

finish
