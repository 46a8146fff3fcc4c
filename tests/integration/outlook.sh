#!/usr/bin/env bash
# shellcheck disable=SC2119  # start_nginx and start_tdhook take optional args
# Bookings made in Outlook become TOPdesk reservations, against the Exchange
# backend that BACKEND names (graph, the default, or ews): nginx + `tdhook
# serve` with reservations.direction: both, the fake TOPdesk (reservation
# writes, persons by e-mail, a taken room refused), the fake Graph
# (subscriptions validated through nginx, change and lifecycle
# notifications with faults, calendarView/delta, decline) or the fake EWS
# (push subscriptions with heartbeats, SendNotification through nginx with
# the same faults, SyncFolderItems, DeclineItem, NTLM), each with a room
# mailbox's processing, and the SMTP sink.  The scenario table is
# tests/integration/outlook_scenarios.py, the same for both backends: one
# PASS/FAIL line each, every write on both sides counted.
# outlook-graph.sh and outlook-ews.sh are the wrappers make check runs;
# SCENARIOS="create cancel" runs a subset.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "no /usr/bin/python3"
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "python3-aiosmtpd is not installed"
need_test_seams
t_setup nginx

BACKEND=${BACKEND:-graph}
GRAPH_CLIENT=5f0c3a52-7d3e-4b8e-9a41-$(rand_hex 6)
EWS_SECRET=ewspw-$(rand_hex 10)
TENANT=contoso.onmicrosoft.com
mkdir -p "$T/mail"
start_py fake-topdesk topdesk.py --user tdhook-api --password "$TD_SECRET"
TD=http://127.0.0.1:$PY_PORT
start_py fake-smtp_sink smtp_sink.py --maildir "$T/mail"
SMTP_PORT=$PY_PORT
if [ "$BACKEND" = graph ]; then
    # Graph grants 4,230 minutes here, as older tenants do: tdhook asks for
    # its 10,020 first and must fall back.
    start_py fake-graph graph.py --tenant "$TENANT" --client-id "$GRAPH_CLIENT" \
        --client-secret "$GRAPH_SECRET" --max-sub-minutes 4230 --room-processing-ms 300
    EX=http://127.0.0.1:$PY_PORT
    EXCHANGE_YAML="graph={tenant: $TENANT, client_id: $GRAPH_CLIENT, client_secret: $GRAPH_SECRET, login_url: '$EX', graph_url: '$EX/v1.0'}"
else
    # One "minute" of the heartbeat lasts a second here, in the fake and in
    # tdhook (TDHOOK_TEST_EWS_MINUTE_S).
    start_py fake-ews ews.py --user 'CONTOSO\tdhook' --password "$EWS_SECRET" --auth ntlm \
        --minute-seconds 1 --room-processing-ms 300
    EX=http://127.0.0.1:$PY_PORT
    EXCHANGE_YAML="ews={url: '$EX/EWS/Exchange.asmx', username: 'CONTOSO\\tdhook', password: $EWS_SECRET, auth: ntlm, status_frequency: 1m}"
    export TDHOOK_TEST_EWS_MINUTE_S=1
fi

# nginx first: the callback URL names its port.
start_nginx
# outlook_config WHEN_REFUSED: the configuration, with when_refused as given.
outlook_config() {
    write_config "hooks={tokens: [$TOKEN1, $TOKEN2]}" "admin_mail=[tdhook-admin@example.com]" \
        "topdesk={url: '$TD', username: tdhook-api, application_password: $TD_SECRET, timeout: 10s}" \
        "mail={smtp_url: 'smtp://127.0.0.1:$SMTP_PORT', starttls: off, from: tdhook@example.com, language: ${MAIL_LANGUAGE:-en}, timezone: Europe/Amsterdam}" \
        "reservations={exchange: $BACKEND, direction: both, reconcile_days: 30, notify: {requester: true, to: [facilities@example.com]}, outlook: {callback_url: '$BASE', resync: 10s, window_days: 60, fallback_requester: jeroen.bakker@contoso.nl, cancellation_reason: Vergadering gaat niet door, when_refused: $1}}" \
        "graph=" "$EXCHANGE_YAML" \
        "queue={runners: 2, retry_base: 200ms, retry_max: 1s, max_attempts: 30}"
}
outlook_config report
export TDHOOK_TEST_OUTLOOK_SETTLE_MS=1000
start_tdhook

say "# backend $BACKEND"
O_BACKEND=$BACKEND O_TD=$TD O_EX=$EX O_BASE=$BASE O_MAILDIR=$T/mail O_TDHOOK=$TDHOOK O_CONFIG=$T/tdhook.yaml \
    O_STATE=$T/state O_TOKEN=$TOKEN1 O_PID=$TDHOOK_PID O_SCENARIOS=${SCENARIOS:-} \
    O_VERBOSE=${VERBOSE:-} O_FIGURES=${FIGURES:-} \
    "$PY" "$top_srcdir/tests/integration/outlook_scenarios.py" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    say "# tdhook.log (last 40 lines):"
    tail -n 40 "$T/tdhook.log" | sed 's/^/#   /'
fi
assert_no_secrets "tdhook serve" "$T/tdhook.log"
if [ "$rc" -eq 0 ]; then ok "every scenario passed"; else fail "scenarios failed"; fi
finish
