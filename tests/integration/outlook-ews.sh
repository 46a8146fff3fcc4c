#!/usr/bin/env bash
# The Outlook → TOPdesk scenario table (outlook.sh) against the fake EWS
# (Exchange 2013 SP1 push notifications and SyncFolderItems).
BACKEND=ews exec bash "$(dirname "$0")/outlook.sh"
