#!/usr/bin/env bash
# The short soak for make check (well under a minute): tests/soak.sh with
# 300 reservation webhooks, 5 kill -9 of workers and runners, the SMTP sink
# down for 10 s and 20 % faults from the fakes; then tests/bench/overload.sh
# with a 2 s flood (429 at queue.max_jobs, recovery), which is skipped when
# wrk is missing.  Exit 1 when either fails, 77 when the soak is skipped.
# The long soak is `bash tests/soak.sh` (10,000 webhooks; see its header).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

WEBHOOKS=${WEBHOOKS:-300} KILLS=${KILLS:-5} SMTP_DOWN=${SMTP_DOWN:-10} RATE=${RATE:-40} \
    RUNNERS=${RUNNERS:-8} RETRY_MAX=${RETRY_MAX:-2s} DRAIN_MAX=${DRAIN_MAX:-40} \
    bash "$here/../soak.sh"
soak=$?
# A small bound, so even a loaded CI machine fills it within the flood.
MAX_JOBS=${MAX_JOBS:-200} FLOOD_SECONDS=${FLOOD_SECONDS:-3} bash "$here/../bench/overload.sh"
overload=$?
echo "# soak: exit $soak, overload: exit $overload"
if [ "$soak" -eq 1 ] || [ "$overload" -eq 1 ]; then
    exit 1
fi
if [ "$soak" -ne 0 ] && [ "$soak" -ne 77 ]; then
    exit "$soak"
fi
if [ "$overload" -ne 0 ] && [ "$overload" -ne 77 ]; then
    exit "$overload"
fi
exit "$soak"
