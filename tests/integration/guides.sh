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
example=$(cat "$top_srcdir/config/tdhook.yaml.example")
assert_contains "the example config names ApplicationImpersonation" "$example" \
    "ApplicationImpersonation"
assert_contains "and that Full Access is not enough" "$example" "Full Access on the"
finish
