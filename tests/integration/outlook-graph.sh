#!/usr/bin/env bash
# The Outlook → TOPdesk scenario table (outlook.sh) against the fake Graph.
BACKEND=graph exec bash "$(dirname "$0")/outlook.sh"
