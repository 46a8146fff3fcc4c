/* One reserved room against its room calendar: find tdhook's appointment
 * there, look for a conflict, then create, move or remove it. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/jobs/reservation_private.h"
#include "core/jobs/texts.h"
#include "core/util/xalloc.h"

/* --- one room ----------------------------------------------------------- */

json_object *
rsv_room_result(const char *room, const char *mailbox, const char *action)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "room", json_object_new_string(room ? room : "?"));
    json_object_object_add(o, "mailbox", mailbox ? json_object_new_string(mailbox) : NULL);
    json_object_object_add(o, "action", json_object_new_string(action));
    return o;
}

int
rsv_code_exchange(int rc)
{
    return rc == EXCHANGE_ERETRY ? RESERVATION_ERETRY : RESERVATION_EFAIL;
}

/* Finds tdhook's appointment for the reservation in mailbox: by the id
 * remembered (checking it still carries the reservation), else by the
 * property. */
int
rsv_find(rsv_t *rs, const char *mailbox, const char *known_id, const char *resid,
         exchange_event_t **ev, char **errstr, long *retry)
{
    int rc;

    *ev = NULL;
    if (known_id && *known_id) {   /* "": recorded before its create, id not known */
        rc = exchange_get(rs->ex, mailbox, known_id, ev, errstr, retry);
        if (rc == EXCHANGE_OK && (*ev)->reservation_id && strcasecmp((*ev)->reservation_id, resid) == 0)
            return EXCHANGE_OK;
        exchange_event_free(*ev);
        *ev = NULL;
        if (rc != EXCHANGE_OK && rc != EXCHANGE_ENOTFOUND)
            return rc;
        free(*errstr);
        *errstr = NULL;
    }
    return exchange_find(rs->ex, mailbox, resid, ev, errstr, retry);
}

/* What overlaps [start, end) in mailbox that is not this reservation's;
 * allocated description or NULL. */
static int
rsv_conflict(rsv_t *rs, const char *mailbox, const char *resid, time_t start, time_t end,
             char **what, char **errstr, long *retry)
{
    exchange_event_t *evs = NULL;
    size_t n = 0;
    int rc = exchange_view(rs->ex, mailbox, start, end, &evs, &n, errstr, retry);

    *what = NULL;
    if (rc != EXCHANGE_OK)
        return rc;
    for (size_t i = 0; i < n && !*what; i++) {
        char when[TEXT_TIME_SIZE * 2];

        if (evs[i].cancelled || evs[i].end <= start || evs[i].start >= end)
            continue;
        if (evs[i].reservation_id && strcasecmp(evs[i].reservation_id, resid) == 0)
            continue;
        *what = text_format(evs[i].reservation_id ? T_NOTICE_CLASH_TOPDESK : T_NOTICE_CLASH,
                            "subject", evs[i].subject ? evs[i].subject : text_get(T_NO_SUBJECT),
                            "when", text_span(when, evs[i].start, evs[i].end), NULL);
    }
    exchange_events_free(evs, n);
    return EXCHANGE_OK;
}

static int
rsv_same(const exchange_event_t *ev, const exchange_booking_t *b)
{
    return ev->start == b->start && ev->end == b->end && ev->subject &&
           strcmp(ev->subject, b->subject) == 0 &&
           (!ev->body || strcmp(ev->body, b->body) == 0);
}

/* Exchange refused for good to write mailbox's calendar: the people are
 * told, the room's result says so, and *errstr is taken. */
static void
rsv_room_refused(rsv_t *rs, json_object *r, json_object *rooms, const char *room,
                 const char *mailbox, const char *room_name, char **errstr)
{
    json_object *res = rsv_room_result(room, mailbox, "failed");

    notice_refused(rs, r, mailbox, room_name, *errstr);
    json_object_object_add(res, "error", json_object_new_string(*errstr ? *errstr : ""));
    json_object_array_add(rooms, res);
    free(*errstr);
    *errstr = NULL;
}

/* Brings one reserved room in line.  Adds its result to rooms; sets
 * *event_id (allocated) to the appointment that stands. */
int
rsv_room(rsv_t *rs, json_object *r, json_object *fac, int active, json_object *state,
         json_object *rooms, char **event_id, char **errstr, long *retry)
{
    json_object *loc = rsv_get(fac, "location"), *known, *state_rooms = rsv_get(state, "rooms");
    const char *resid = rsv_str(r, "id"), *room = rsv_str(loc, "name");
    const char *start_s = rsv_str(fac, "plannedStartDate"), *end_s = rsv_str(fac, "plannedEndDate");
    char *mailbox = NULL, *subject = NULL, *body = NULL, *what = NULL, *txid = NULL;
    exchange_event_t *ev = NULL, *made = NULL;
    exchange_booking_t b;
    int rc;

    *event_id = NULL;
    rc = rsv_mailbox(rs, loc, &mailbox, errstr, retry);
    if (rc != TOPDESK_OK)
        return rsv_code_topdesk(rc);
    if (!mailbox) {
        json_object_array_add(rooms, rsv_room_result(room, NULL, "skipped: room not mapped"));
        if (active)
            notice_unmapped(rs, r, loc);
        return RESERVATION_OK;
    }

    memset(&b, 0, sizeof b);
    b.start = exchange_parse_time(start_s ? start_s : rsv_str(r, "plannedStartDate"));
    b.end = exchange_parse_time(end_s ? end_s : rsv_str(r, "plannedEndDate"));
    if (active && (b.start < 0 || b.end <= b.start)) {
        *errstr = xasprintf("reservation %s has no valid planned dates", resid);
        free(mailbox);
        return RESERVATION_EFAIL;
    }
    subject = reservation_template(rs->cfg->reservations.subject, r, room);
    body = reservation_template(rs->cfg->reservations.body, r, room);
    txid = xasprintf("tdhook-%016llx", (unsigned long long)rsv_hash(resid) ^
                     rsv_hash(mailbox) ^ (uint64_t)b.start * 31u ^ (uint64_t)b.end);
    b.reservation_id = resid;
    b.transaction_id = txid;
    b.subject = subject;
    b.body = body;
    b.room_name = room ? room : mailbox;

    known = rsv_get(state_rooms, mailbox);
    rc = rsv_find(rs, mailbox, known ? json_object_get_string(known) : NULL, resid, &ev, errstr, retry);
    if (rc != EXCHANGE_OK)
        goto exchange_error;

    if (!active) {
        if (ev && !rs->dry_run)
            rc = exchange_delete(rs->ex, mailbox, ev, errstr, retry);
        if (rc != EXCHANGE_OK)
            goto exchange_error;
        json_object_array_add(rooms, rsv_room_result(room, mailbox, ev ? "deleted" : "none"));
        json_object_object_del(state_rooms, mailbox);
        goto out;
    }
    if (ev && rsv_same(ev, &b)) {
        json_object_array_add(rooms, rsv_room_result(room, mailbox, "unchanged"));
        *event_id = xstrdup(ev->id);
        goto out;
    }
    if (!ev || ev->start != b.start || ev->end != b.end) {
        rc = rsv_conflict(rs, mailbox, resid, b.start, b.end, &what, errstr, retry);
        if (rc != EXCHANGE_OK)
            goto exchange_error;
        if (what) {
            json_object *res = rsv_room_result(room, mailbox, "conflict: not booked");

            notice_conflict(rs, r, mailbox, b.room_name, b.start, b.end, what);
            json_object_object_add(res, "conflict", json_object_new_string(what));
            json_object_array_add(rooms, res);
            if (ev)
                *event_id = xstrdup(ev->id);
            goto out;
        }
    }
    if (!ev) {
        if (!rs->dry_run) {
            rsv_state_record(rs->cfg, resid, state, mailbox);
            rc = exchange_create(rs->ex, mailbox, &b, &made, errstr, retry);
            if (rc != EXCHANGE_OK)
                goto exchange_error;
            *event_id = xstrdup(made->id);
        }
        json_object_array_add(rooms, rsv_room_result(room, mailbox, "created"));
    } else {
        if (!rs->dry_run) {
            rc = exchange_update(rs->ex, mailbox, ev, &b, errstr, retry);
            if (rc != EXCHANGE_OK)
                goto exchange_error;
        }
        *event_id = xstrdup(ev->id);
        json_object_array_add(rooms, rsv_room_result(room, mailbox, "updated"));
    }
    if (*event_id)
        json_object_object_add(state_rooms, mailbox, json_object_new_string(*event_id));
    rc = EXCHANGE_OK;
    goto out;

exchange_error:
    if (rc == EXCHANGE_EFAIL || rc == EXCHANGE_ENOTFOUND) {
        /* Permanent for this room: tell the people, go on with the others. */
        rsv_room_refused(rs, r, rooms, room, mailbox, b.room_name, errstr);
        goto out;
    }
    rc = rsv_code_exchange(rc);
    goto done;
out:
    rc = RESERVATION_OK;
done:
    exchange_event_free(ev);
    exchange_event_free(made);
    free(what);
    free(txid);
    free(subject);
    free(body);
    free(mailbox);
    return rc;
}
