#!/usr/bin/env bash
# The reservation scenario table (reservation.sh) against the fake EWS (Exchange 2013 SP1).
BACKEND=ews exec bash "$(dirname "$0")/reservation.sh"
