#!/usr/bin/env bash
# The HTTP workers' write-ahead journal: a job answered 202 survives a crash
# of the whole server that loses the job files the workers wrote without
# fsync; the master's checkpoint bounds what a start replays; many requests
# at once on the workers' threads all land, each once.
#
# A crash that loses the page cache is played by kill -9 of every process
# and removing the files that had not reached the disk yet.  For that the
# master's checkpoint is switched off (TDHOOK_TEST_CHECKPOINT_MS=0) where a
# test needs the files to be the journal's alone.  max_jobs is set so that
# the burst below comes near it, where the shared count of queue/ is
# recounted every second.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"
need_test_seams

t_setup nginx
write_config "queue={runners: 0, max_jobs: 1100}"

# crash: kill -9 the master and every child, as a power cut would.
crash() {
    local kids=() pid
    mapfile -t kids < <(children "$TDHOOK_PID")
    kill -9 "$TDHOOK_PID" "${kids[@]}" 2>/dev/null
    wait "$TDHOOK_PID" 2>/dev/null || true
    for pid in "${kids[@]}"; do
        wait_until 5 gone "$pid" || true
    done
    TDHOOK_PID=
}

# job_file ID: where a pending job lives.
job_file() { printf '%s/state/queue/%s.job\n' "$T" "$1"; }

restored_lines() { grep -c 'restored from the journal' "$T/tdhook.log" || true; }

# --- a crash loses the unsynced files; the journal brings them back ------------
# crash_replay LABEL: five hooks with keys, a crash that loses three job files
# and every key, a start that restores them.  The caller's environment goes
# to tdhook (TDHOOK_TEST_NO_TMPFILE=1 plays a file system without O_TMPFILE).
crash_replay() {
    local label=$1 ids=() i id before keys_before keys
    rm -f "$T/state/queue/"*.job "$T/state/idem/"*
    TDHOOK_TEST_CHECKPOINT_MS=0 start_tdhook
    [ -n "${NGINX_PID:-}" ] || start_nginx
    for i in 1 2 3 4 5; do
        post_hook /hooks/reservation "{\"number\": \"R 2412 00$i\", \"event\": \"changed\"}" \
            -H "Idempotency-Key: $label-key-$i"
        assert_status 202 "$label: POST $i with an Idempotency-Key"
        ids+=("$(json_str job)")
    done
    check "$label: five distinct job ids" test "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" -eq 5
    check "$label: the workers keep journals" \
        test -s "$T/state/journal/0.wal" -a -s "$T/state/journal/1.wal"
    check "$label: a journal is preallocated (4 MiB)" \
        test "$(stat -c %s "$T/state/journal/0.wal")" -eq 4194304
    check "$label: no temporary file is left in queue/" \
        test "$(find "$T/state/queue" -name '.*' | wc -l)" -eq 0
    crash
    rm -f "$(job_file "${ids[0]}")" "$(job_file "${ids[1]}")" "$(job_file "${ids[2]}")"
    rm -f "$T/state/idem/"*
    before=$(restored_lines)
    keys_before=$(grep -c 'idempotency keys restored' "$T/tdhook.log")
    start_tdhook
    for id in "${ids[@]}"; do
        get_auth "/jobs/$id"
        assert_status 200 "$label: job $id is there after the crash"
        assert_eq "$label: job $id is queued" queued "$(json_str status)"
    done
    assert_eq "$label: three jobs restored from the journal" 3 "$(($(restored_lines) - before))"
    # Each worker replays its own journal and says what it restored.
    keys=$(grep 'idempotency keys restored' "$T/tdhook.log" | tail -n +"$((keys_before + 1))" |
        sed -n 's/.*: [0-9]* jobs and \([0-9]*\) idempotency keys restored.*/\1/p' |
        awk '{ n += $1 } END { print n + 0 }')
    assert_eq "$label: the workers say they restored the 5 idempotency keys" 5 "$keys"
    post_hook /hooks/reservation '{"number": "R 2412 001", "event": "changed"}' \
        -H "Idempotency-Key: $label-key-1"
    assert_eq "$label: a restored idempotency key still answers with the first job" \
        "${ids[0]}" "$(json_str job)"
    check "$label: no job is restored twice" \
        test "$(find "$T/state/queue" -name '*.job' | wc -l)" -eq 5
    check "$label: no temporary file is left in queue/ after the replay" \
        test "$(find "$T/state/queue" -name '.*' | wc -l)" -eq 0
}
crash_replay crash
stop_tdhook
TDHOOK_TEST_NO_TMPFILE=1 crash_replay no-tmpfile
stop_tdhook
start_tdhook

# --- past the checkpoint nothing is replayed ------------------------------------
# The master syncs about once a second; a job dropped after that stays dropped
# when the journal is read again.
post_hook /hooks/reservation '{"number": "R 2412 006", "event": "changed"}'
assert_status 202 "POST after the restart"
id6=$(json_str job)
wait_until 10 grep -q . "$T/state/journal/checkpoint" || true
sleep 2
crash
rm -f "$(job_file "$id6")"
before=$(restored_lines)
start_tdhook
get_auth "/jobs/$id6"
assert_status 404 "a job gone after the checkpoint stays gone"
assert_eq "nothing restored past the checkpoint" 0 "$(($(restored_lines) - before))"

# --- a clean stop checkpoints last ------------------------------------------------
post_hook /hooks/reservation '{"number": "R 2412 007", "event": "changed"}'
id7=$(json_str job)
stop_tdhook
rm -f "$(job_file "$id7")"
before=$(restored_lines)
TDHOOK_TEST_CHECKPOINT_MS=0 start_tdhook
get_auth "/jobs/$id7"
assert_status 404 "after a clean stop the journal holds nothing to replay"

# --- many requests at once, a worker killed among them ---------------------------
# Every 202 names a job that is in the queue afterwards (restored if need be),
# each id once.  The workers run with the default 16 threads each.
rm -f "$T/state/queue/"*.job
seq 1 1000 | xargs -P 24 -I{} curl -s -o "$T/b.{}" -w '%{http_code} {}\n' \
    -H "Authorization: Bearer $TOKEN1" -H 'Content-Type: application/json' \
    -X POST --data-binary '{"number": "R 2412 {}", "event": "changed"}' \
    "$BASE/hooks/reservation" >"$T/burst.txt" &
burst=$!
sleep 0.2
for pid in $(children "$TDHOOK_PID"); do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tdhook-http ]; then
        kill -9 "$pid"
        say "# worker $pid killed after $(wc -l <"$T/burst.txt") answers"
        break
    fi
done
wait "$burst"
crash
start_tdhook
accepted=$(awk '$1 == 202' "$T/burst.txt" | wc -l)
say "# burst: $accepted of 1000 answered 202, the rest $(awk '$1 != 202 { print $1 }' "$T/burst.txt" | sort | uniq -c | tr '\n' ' ')"
check "most of the burst was accepted" test "$accepted" -ge 900
assert_contains "a worker was killed during the burst" "$(cat "$T/tdhook.log")" "killed by signal 9"
# The ids of the 202 answers, read in one pass (the body is {"job":"ID",...}).
for n in $(awk '$1 == 202 { print $2 }' "$T/burst.txt"); do
    sed -n 's/.*"job":"\([0-9a-f-]*\)".*/\1/p' "$T/b.$n"
done >"$T/burst-ids.txt"
assert_eq "every 202 of the burst names a job" "$accepted" "$(wc -l <"$T/burst-ids.txt")"
missing=0
while read -r id; do
    [ -f "$(job_file "$id")" ] || missing=$((missing + 1))
done <"$T/burst-ids.txt"
assert_eq "every 202 of the burst left its job" 0 "$missing"
assert_eq "no id was answered twice" 0 "$(sort "$T/burst-ids.txt" | uniq -d | wc -l)"

# --- a worker killed with an enqueue in flight ----------------------------------
# An enqueue holds its place in the shared count of queue/ (in its worker's
# slot) until its job is stored; a recount waits for those.  A worker killed
# there must not hold the recounts up: the master lets go of its slot when
# it reaps it.  Each enqueue waits 1.5 s in that place here; the queue holds
# the burst's jobs, near max_jobs, so a recount is due every second.
stop_tdhook
TDHOOK_TEST_ENQUEUE_DELAY_MS=1500 start_tdhook
held_workers=$(for pid in $(children "$TDHOOK_PID"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tdhook-http ] && echo "$pid"
done)
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN1" \
    -H 'Content-Type: application/json' -X POST \
    --data-binary '{"number": "R 2412 1002", "event": "changed"}' \
    "$BASE/hooks/reservation" >"$T/held.txt" &
held=$!
sleep 0.5
# shellcheck disable=SC2086  # one pid a word
kill -9 $held_workers
wait "$held"
say "# the held hook was answered $(cat "$T/held.txt") when its worker died"
respawned() {
    local n=0 pid
    for pid in $(children "$TDHOOK_PID"); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tdhook-http ] && n=$((n + 1))
    done
    [ "$n" -eq 2 ]
}
check "the master started the workers again" wait_until 10 respawned
sleep 1.2
t0=$(date +%s%N)
post_hook /hooks/reservation '{"number": "R 2412 1003", "event": "changed"}'
took=$((($(date +%s%N) - t0) / 1000000))
assert_status 202 "a hook after the killed enqueue is accepted"
check "it took the enqueue's 1.5 s and no recount wait ($took ms)" test "$took" -lt 4000
assert_not_contains "no recount waited for the dead worker's enqueue" \
    "$(cat "$T/tdhook.log")" "still in flight"

# --- group files: one file for a group's jobs, split by whoever reads -----------
# A group of commits writes its jobs as one file, queue/ID.N.jobs; a lookup
# that misses, a listing, a runner's claim and a replay split it into job
# files.  TDHOOK_TEST_GROUP_FILES=1 makes a group of one a group file too.
group_files() { find "$T/state/queue" -name '*.jobs' | wc -l; }
stop_tdhook
rm -f "$T/state/queue/"*
TDHOOK_TEST_GROUP_FILES=1 TDHOOK_TEST_CHECKPOINT_MS=0 start_tdhook
gids=()
for i in 1 2 3; do
    post_hook /hooks/reservation "{\"number\": \"R 2412 20$i\", \"event\": \"changed\"}"
    assert_status 202 "group files: POST $i"
    gids+=("$(json_str job)")
done
assert_eq "group files: each job is in a group file" 3 "$(group_files)"
check "group files: no job file yet" test "$(find "$T/state/queue" -name '*.job' | wc -l)" -eq 0
get_auth /metrics
assert_contains "group files: the queue's depth counts the jobs in them" "$RES_BODY" \
    "tdhook_queue_depth 3"
get_auth "/jobs/${gids[1]}"
assert_status 200 "group files: a job in a group file is found"
assert_eq "group files: it is queued" queued "$(json_str status)"
assert_eq "group files: the lookup split every group file" 0 "$(group_files)"
for id in "${gids[@]}"; do
    check "group files: job ${id} has its job file" test -f "$(job_file "$id")"
done
# A crash that loses group files: the journal brings their jobs back.
for i in 4 5; do
    post_hook /hooks/reservation "{\"number\": \"R 2412 20$i\", \"event\": \"changed\"}"
    gids+=("$(json_str job)")
done
crash
assert_eq "group files: two group files before the crash" 2 "$(group_files)"
rm -f "$T/state/queue/"*.jobs
before=$(restored_lines)
TDHOOK_TEST_GROUP_FILES=1 TDHOOK_TEST_CHECKPOINT_MS=0 start_tdhook
assert_eq "group files: the lost group files' two jobs restored from the journal" 2 \
    "$(($(restored_lines) - before))"
for id in "${gids[@]}"; do
    get_auth "/jobs/$id"
    assert_status 200 "group files: job $id is there after the crash"
done
# A crash that keeps a group file: its job is split, not restored twice.
post_hook /hooks/reservation '{"number": "R 2412 206", "event": "changed"}'
gids+=("$(json_str job)")
crash
before=$(restored_lines)
TDHOOK_TEST_GROUP_FILES=1 TDHOOK_TEST_CHECKPOINT_MS=0 start_tdhook
assert_eq "group files: a kept group file is split, nothing restored" 0 \
    "$(($(restored_lines) - before))"
check "group files: six jobs, each once" \
    test "$(find "$T/state/queue" -name '*.job' | wc -l)" -eq 6
# A listing shows every job, however many group files hold them: more than
# one batch of the split (256 group files).
for i in $(seq 1 300); do
    post_hook /hooks/reservation "{\"number\": \"R 2412 $((3000 + i))\", \"event\": \"changed\"}"
    [ "$RES_STATUS" = 202 ] || break
done
assert_status 202 "group files: 300 more hooks accepted"
check "group files: 300 group files before the listing" test "$(group_files)" -ge 300
listed=$("$TDHOOK" -c "$T/tdhook.yaml" queue list 2>&1 | grep -c ' reservation ')
assert_eq "group files: queue list shows every job (6 + 300)" 306 "$listed"
assert_eq "group files: the listing split every group file" 0 "$(group_files)"
# A group file that is not one goes to dead/ instead of blocking the queue.
printf 'not a group file' >"$T/state/queue/${gids[0]%???}fff.2.jobs"
get_auth /jobs/000000000000-00000000000
check "group files: a corrupt group file is moved to dead/" \
    test -f "$T/state/dead/${gids[0]%???}fff.2.jobs.corrupt"
assert_contains "group files: and the log says so" "$(cat "$T/tdhook.log")" \
    "group file ${gids[0]%???}fff.2.jobs is corrupt"

finish
