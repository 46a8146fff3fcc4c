#!/usr/bin/env bash
# The reservation scenario table (reservation.sh) against the fake EWS (Exchange 2013 SP1),
# with every mail in Dutch and in Amsterdam's time.
BACKEND=ews MAIL_LANGUAGE=nl MAIL_TIMEZONE=Europe/Amsterdam exec bash "$(dirname "$0")/reservation.sh"
