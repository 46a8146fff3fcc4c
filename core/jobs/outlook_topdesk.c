/* TOPdesk → Outlook for bookings made in Outlook: an operator's cancel or
 * move in TOPdesk is told to the organizer (a cancellation also declines
 * the room's copy); and the mails to organizers. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clients/mime.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/outlook_private.h"
#include "core/jobs/texts.h"
#include "core/util/address.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* --- mails to the organizer -------------------------------------------------- */

/* Queues one mail to the organizer of meeting m: subject and body texts
 * with the facts (name, value pairs, NULL-ended). */
void
mail_organizer(pull_t *p, json_object *m, text_id_t subject, text_id_t body, ...)
{
    const char *to = meeting_str(m, "organizer");
    char when[TEXT_TIME_SIZE * 2], *subj, *message, *rcpt[1];
    const char *f[20] = {0};
    buf_t b;
    mime_msg_t msg;
    va_list ap;
    size_t nf = 0;

    if (!to || !address_ok(to) || p->rs->dry_run)
        return;
    /* the caller's facts first: the first of a name wins */
    va_start(ap, body);
    for (const char *s; nf < 12 && (s = va_arg(ap, const char *)); )
        f[nf++] = s;
    va_end(ap);
    text_span(when, meeting_time(m, "start"), meeting_time(m, "end"));
    f[nf++] = "when";
    f[nf++] = when;
    f[nf++] = "subject";
    f[nf++] = meeting_str(m, "subject") ? meeting_str(m, "subject") : "";
    f[nf++] = "room";
    f[nf++] = meeting_str(m, "room_name") ? meeting_str(m, "room_name") : meeting_str(m, "room");
    subj = text_format(subject, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10],
                       f[11], f[12], f[13], f[14], f[15], f[16], f[17], NULL);
    buf_init(&b, (size_t)-1 / 4);
    text_append(&b, body, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11],
                f[12], f[13], f[14], f[15], f[16], f[17], NULL);
    text_append(&b, T_OUTLOOK_FOOTER, NULL);
    rcpt[0] = (char *)to;
    msg = (mime_msg_t){p->rs->cfg->mail.from, rcpt, 1, subj, buf_str(&b), NULL, NULL, 0};
    message = mime_build(&msg);
    if (mailjob_enqueue(p->rs->q, rcpt, 1, message, NULL) != QUEUE_OK)
        log_warn("outlook: could not queue the mail to the organizer of %s",
                 meeting_str(m, "ical") ? meeting_str(m, "ical") : "?");
    free(message);
    buf_free(&b);
    free(subj);
}

/* --- TOPdesk → Outlook, for bookings made in Outlook ------------------------- */

int
outlook_from_topdesk(rsv_t *rs, json_object *r, json_object *out, char **errstr, long *retry)
{
    const char *ical = rsv_link(r, RSV_OUTLOOK_LINK_TYPE), *resid = rsv_str(r, "id");
    pull_t p = {.rs = rs, .out = out};
    json_object *m, *tdo;
    td_state_t now, was;
    int lock, cancelled;
    const char *action = "unchanged: tdhook's own write";

    json_object_object_add(out, "reservation", json_object_new_string(resid ? resid : ""));
    json_object_object_add(out, "origin", json_object_new_string("outlook"));
    if (!outlook_enabled(rs->cfg)) {
        json_object_object_add(out, "action",
                               json_object_new_string("booked in Outlook; direction is not both"));
        return RESERVATION_OK;
    }
    lock = store_lock(rs->cfg, "meetings", ical, 1);
    m = store_load(rs->cfg, "meetings", ical);
    if (!m || !meeting_str(m, "reservation") || !resid ||
        strcmp(meeting_str(m, "reservation"), resid) != 0) {
        action = "booked in Outlook, not known here";
        goto out;
    }
    td_state_of(r, &now);
    tdo = rsv_get(m, "td");
    was = (td_state_t){meeting_str(tdo, "status"), meeting_time(tdo, "start"), meeting_time(tdo, "end"),
                       meeting_str(tdo, "location")};
    cancelled = !td_status_live(now.status) && td_status_live(was.status);
    if (cancelled) {
        char *comment = text_format(T_OUTLOOK_TD_CANCELLED_DECLINE, NULL);
        int rc = EXCHANGE_OK;

        if (!rs->dry_run && meeting_str(m, "room") && meeting_str(m, "event"))
            rc = exchange_decline(rs->ex, meeting_str(m, "room"), meeting_str(m, "event"), comment, errstr,
                                  retry);
        free(comment);
        if (rc == EXCHANGE_ERETRY)
            goto retry;
        if (rc != EXCHANGE_OK) {
            log_warn("outlook: could not decline %s: %s", ical, *errstr ? *errstr : "");
            free(*errstr);
            *errstr = NULL;
        }
        mail_organizer(&p, m, T_OUTLOOK_TD_CANCELLED_SUBJECT, T_OUTLOOK_TD_CANCELLED_BODY,
                       "number", rsv_number(r), NULL);
        json_object_object_add(m, "state", json_object_new_string(MEETING_TD_CANCELLED));
        action = "cancelled in TOPdesk: organizer told, room declined";
    } else if (td_status_live(now.status) &&
               (now.start != was.start || now.end != was.end ||
                (now.location && was.location && strcmp(now.location, was.location) != 0))) {
        char when[TEXT_TIME_SIZE * 2];
        const rsv_mapped_t *room;
        const char *roomname = NULL;
        pull_t q = {.rs = rs};

        if (store_mapping(&q, 0, errstr, retry) == OUTLOOK_OK &&
            (room = store_room_at(&q, now.location)))
            roomname = room->name;
        free(*errstr);
        *errstr = NULL;
        text_span(when, now.start, now.end);
        mail_organizer(&p, m, T_OUTLOOK_TD_MOVED_SUBJECT, T_OUTLOOK_TD_MOVED_BODY, "number",
                       rsv_number(r), "new", when, "room", roomname ? roomname : "?", NULL);
        rsv_mapped_free(q.rooms, q.nrooms);
        action = "changed in TOPdesk: organizer told";
    }
    meeting_set_td(m, &now);
    if (!rs->dry_run)
        store_save(rs->cfg, "meetings", ical, m);
out:
    json_object_object_add(out, "action", json_object_new_string(action));
    json_object_put(m);
    if (lock >= 0)
        close(lock);
    return RESERVATION_OK;
retry:
    json_object_put(m);
    if (lock >= 0)
        close(lock);
    return RESERVATION_ERETRY;
}
