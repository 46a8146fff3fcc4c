#!/usr/bin/env bash
# The setup guides walk TOPdesk's own steps, so that an application manager
# finds each screen by the name TOPdesk gives it: each step named in the
# guide, in its English and its Dutch half.  And the example config names
# the Exchange role the code needs.
#
# Environment (make check sets it): top_srcdir.  Exit 0 passed, 1 failed.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

guide=$top_srcdir/deploy/topdesk/stock-check.md
en=$(sed -n '1,/<a id="nederlands"><\/a>/p' "$guide" | tr '\n' ' ' | tr -s ' ')
nl=$(sed -n '/<a id="nederlands"><\/a>/,$p' "$guide" | tr '\n' ' ' | tr -s ' ')
for step in "Modules → Asset Management → Voorraadruimtes" "Nieuw → Voorraad" \
    "Ontwerpmodus openen" "Widget toevoegen" "Minimale voorraad" "Ontwerpmodus sluiten" \
    "Middelenbeheer: Voorraad – Lezen" "Middelenbeheer: Assets – Lezen" "KI 9632" "KI 7899" \
    "Actiebeheer → Geautomatiseerde acties" "Webhooks en ingeplande acties" \
    "Volgens een planning" "topdesk_user" "topdesk_applicationpassword" "mail_from" "mail_to" \
    "exchange: none"; do
    assert_contains "stock-check.md (English) names \"$step\"" "$en" "$step"
    assert_contains "stock-check.md (Nederlands) names \"$step\"" "$nl" "$step"
done
# The reservations guide, whole in both languages.
guide=$top_srcdir/deploy/topdesk/reservations.md
en=$(sed -n '1,/<a id="nederlands"><\/a>/p' "$guide" | tr '\n' ' ' | tr -s ' ')
nl=$(sed -n '/<a id="nederlands"><\/a>/,$p' "$guide" | tr '\n' ' ' | tr -s ' ')
for want in "## Requirements" "February 2018" "SaaS" "Action Management" \
    "Reservations Management" "Property Management" "Exchange 2013 SP1" "Exchange Online" \
    "## Part 7: testing" "External persons" "Branch filters" "ApplicationImpersonation" \
    "## Part 8: bookings made in Outlook" "Calendars.Read" "callback_url" "HTTPS" \
    "fallback_requester" "cancellation_reason" "Set-CalendarProcessing" "when_refused: decline" \
    "create, reschedule, move" "subscriptions list" "### 8.4 On-premises Exchange (EWS)" \
    "/hooks/ews/<key>" "status_frequency" "Mailbox servers"; do
    assert_contains "reservations.md (English) has \"$want\"" "$en" "$want"
done
for want in "## Vereisten" "februari 2018" "SaaS" "Actiebeheer" "Reserveringen" \
    "Vastgoedbeheer" "Exchange on-premises 2013 SP1" "Exchange Online" "## Deel 7: testen" \
    "Externe personen" "Vestigingsfilters" "ApplicationImpersonation" \
    "## Deel 2: Exchange Online" "## Deel 3: Exchange on-premises" "## Deel 4:" "## Deel 5:" \
    "## Deel 8: boekingen uit Outlook" "Calendars.Read" "callback-URL" "HTTPS" \
    "fallback_requester" "annuleringsreden" "Set-CalendarProcessing" "when_refused: decline" \
    "aan te maken, te verzetten, te verplaatsen en te annuleren" "subscriptions list" \
    "### 8.4 Exchange on-premises (EWS)" "/hooks/ews/<sleutel>" "status_frequency" \
    "Mailbox-servers"; do
    assert_contains "reservations.md (Nederlands) has \"$want\"" "$nl" "$want"
done

example=$(cat "$top_srcdir/config/tdhook.yaml.example")
assert_contains "the example config names ApplicationImpersonation" "$example" \
    "ApplicationImpersonation"
assert_contains "and that Full Access is not enough" "$example" "Full Access on the"
finish
