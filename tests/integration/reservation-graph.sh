#!/usr/bin/env bash
# The reservation scenario table (reservation.sh) against the fake Microsoft Graph.
BACKEND=graph exec bash "$(dirname "$0")/reservation.sh"
