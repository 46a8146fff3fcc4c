/* Mails to the people concerned when a reservation cannot be synced: the
 * requester and reservations.notify.to, once per problem, whatever the
 * number of runs; every sentence from core/jobs/texts.c. */
#include "autoconf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clients/mime.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/reservation_private.h"
#include "core/jobs/texts.h"
#include "core/util/xalloc.h"

/* Mails one problem once: the requester (when to_requester and known) and
 * reservations.notify.to.  key names the problem; the same key never mails
 * twice, however often the job runs. */
static void
rsv_notify(rsv_t *rs, json_object *r, const char *key, int to_requester, const char *subject,
           const char *text)
{
    const config_t *cfg = rs->cfg;
    const char *resid = rsv_str(r, "id"), *email = rsv_str(rsv_get(r, "requester"), "email");
    char *dir = xasprintf("%s/notified", cfg->state_dir), *mark, *full, *message;
    char *to[64];
    size_t nto = 0;
    json_object *note = json_object_new_object();
    mime_msg_t msg;
    struct stat st;
    int fd;

    mark = xasprintf("%s/%016llx-%016llx", dir, (unsigned long long)rsv_hash(resid ? resid : ""),
                     (unsigned long long)rsv_hash(key));
    json_object_object_add(note, "problem", json_object_new_string(key));
    json_object_array_add(rs->notes, note);
    if (to_requester && cfg->reservations.notify_requester && email && mime_address_ok(email))
        to[nto++] = (char *)email;
    for (size_t i = 0; i < cfg->reservations.notify_to.n && nto < 64; i++)
        to[nto++] = cfg->reservations.notify_to.v[i];
    if (nto == 0) {
        json_object_object_add(note, "mail", json_object_new_string("nobody to tell"));
        goto out;
    }
    if (stat(mark, &st) == 0) {
        json_object_object_add(note, "mail", json_object_new_string("sent before"));
        goto out;
    }
    if (rs->dry_run) {
        json_object_object_add(note, "mail", json_object_new_string("dry run: not sent"));
        goto out;
    }
    {
        buf_t b;

        buf_init(&b, (size_t)-1 / 4);
        buf_puts(&b, text);
        text_append(&b, T_NOTICE_FOOTER, "number", rsv_number(r), "description",
                    rsv_str(r, "briefDescription"), "start",
                    rsv_str(r, "plannedStartDate") ? rsv_str(r, "plannedStartDate") : "?", "end",
                    rsv_str(r, "plannedEndDate") ? rsv_str(r, "plannedEndDate") : "?", NULL);
        full = buf_steal(&b);
    }
    msg = (mime_msg_t){cfg->mail.from, to, nto, subject, full, NULL, NULL, 0};
    message = mime_build(&msg);
    if (mailjob_enqueue(rs->q, to, nto, message, NULL) == QUEUE_OK) {
        mkdir(dir, 0700);
        fd = open(mark, O_WRONLY | O_CREAT, 0600);
        if (fd >= 0)
            close(fd);
        json_object_object_add(note, "mail", json_object_new_string("queued"));
    } else {
        json_object_object_add(note, "mail", json_object_new_string("could not be queued"));
    }
    free(message);
    free(full);
out:
    free(mark);
    free(dir);
}

/* rsv_notify() with the subject and the body of a notice, filled. */
static void
rsv_notice(rsv_t *rs, json_object *r, const char *key, int to_requester, text_id_t subject,
           text_id_t body, const char *room, const char *other, const char *other_value)
{
    char *subj = text_format(subject, "number", rsv_number(r), "room", room, NULL);
    char *text = text_format(body, "room", room, other, other_value, NULL);

    rsv_notify(rs, r, key, to_requester, subj, text);
    free(subj);
    free(text);
}

void
notice_unmapped(rsv_t *rs, json_object *r, json_object *loc)
{
    const char *room = rsv_str(loc, "name") ? rsv_str(loc, "name") : "?";
    char *key = xasprintf("unmapped:%s", rsv_str(loc, "id") ? rsv_str(loc, "id") : "?");

    rsv_notice(rs, r, key, 1, T_NOTICE_UNMAPPED_SUBJECT, T_NOTICE_UNMAPPED_BODY, room, "field",
               rs->cfg->reservations.room_field);
    free(key);
}

void
notice_conflict(rsv_t *rs, json_object *r, const char *mailbox, const char *room, time_t start,
                time_t end, const char *what)
{
    char *key = xasprintf("conflict:%s:%lld:%lld", mailbox, (long long)start, (long long)end);

    rsv_notice(rs, r, key, 1, T_NOTICE_CONFLICT_SUBJECT, T_NOTICE_CONFLICT_BODY, room, "what",
               what);
    free(key);
}

void
notice_refused(rsv_t *rs, json_object *r, const char *mailbox, const char *room,
               const char *error)
{
    char *key = xasprintf("exchange:%s:%s", mailbox, error ? error : "");
    char *subj = text_format(T_NOTICE_REFUSED_SUBJECT, "number", rsv_number(r), "room",
                             room ? room : mailbox, NULL);
    char *text = text_format(T_NOTICE_REFUSED_BODY, "room", room ? room : "?", "mailbox", mailbox,
                             "error", error ? error : "unknown error", NULL);

    rsv_notify(rs, r, key, 1, subj, text);
    free(subj);
    free(text);
    free(key);
}

void
notice_no_email(rsv_t *rs, json_object *r)
{
    const char *name = rsv_str(rsv_get(r, "requester"), "name");
    char *subj = text_format(T_NOTICE_NO_EMAIL_SUBJECT, "number", rsv_number(r), NULL);
    char *text = text_format(T_NOTICE_NO_EMAIL_BODY, "requester", name ? name : "(unknown)", NULL);

    rsv_notify(rs, r, "requester-email", 0, subj, text);
    free(subj);
    free(text);
}
