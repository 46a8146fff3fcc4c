/* Mails to the people concerned when a reservation cannot be synced, once
 * per problem, whatever the number of runs: the requester in plain words
 * about their booking, reservations.notify.to with what to fix (field
 * names, configuration keys).  Every sentence from core/jobs/texts.c, in
 * mail.language, times in mail.timezone. */
#include "autoconf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util/address.h"
#include "core/clients/mime.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/reservation_private.h"
#include "core/jobs/texts.h"
#include "core/util/xalloc.h"

/* One notice: the texts of the requester's mail (subject 0: none goes to
 * the requester) and of the staff's mail, and the facts they are filled
 * with (name, value pairs ended by NULL). */
typedef struct {
    const char *key;             /* names the problem: the same key never mails twice */
    text_id_t subject, body;     /* to the requester */
    text_id_t staff_subject, staff_body;   /* to reservations.notify.to */
    const char *facts[12];
} rsv_notice_t;

/* Queues one mail to[0..nto) with the subject and body of the texts, and
 * the footer; 0, or -1 when it could not be queued. */
static int
rsv_mail(rsv_t *rs, json_object *r, char **to, size_t nto, const rsv_notice_t *n,
         text_id_t subject, text_id_t body, text_id_t footer)
{
    const char *const *f = n->facts;
    char when[TEXT_TIME_SIZE * 2], *subj, *message;
    buf_t b;
    mime_msg_t msg;
    int rc;

    text_span(when, exchange_parse_time(rsv_str(r, "plannedStartDate")),
              exchange_parse_time(rsv_str(r, "plannedEndDate")));
    subj = text_format(subject, "number", rsv_number(r), "when", when, f[0], f[1], f[2], f[3],
                       f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], NULL);
    buf_init(&b, (size_t)-1 / 4);
    text_append(&b, body, "number", rsv_number(r), "when", when, f[0], f[1], f[2], f[3], f[4],
                f[5], f[6], f[7], f[8], f[9], f[10], f[11], NULL);
    text_append(&b, footer, "number", rsv_number(r), "description",
                rsv_str(r, "briefDescription"), "when", when, NULL);
    msg = (mime_msg_t){rs->cfg->mail.from, to, nto, subj, buf_str(&b), NULL, NULL, 0};
    message = mime_build(&msg);
    rc = mailjob_enqueue(rs->q, to, nto, message, NULL) == QUEUE_OK ? 0 : -1;
    free(message);
    buf_free(&b);
    free(subj);
    return rc;
}

/* Mails one problem once: the requester (when the notice has a text for
 * them, notify.requester is on and their address is known) and
 * reservations.notify.to, each their own mail. */
static void
rsv_notify(rsv_t *rs, json_object *r, const rsv_notice_t *n)
{
    const config_t *cfg = rs->cfg;
    const char *resid = rsv_str(r, "id"), *email = rsv_str(rsv_get(r, "requester"), "email");
    char *dir = xasprintf("%s/notified", cfg->state_dir), *mark;
    char *requester[1] = {(char *)email};
    int to_requester = n->subject && cfg->reservations.notify_requester && email &&
                       address_ok(email);
    json_object *note = json_object_new_object();
    struct stat st;
    int fd, failed = 0;

    mark = xasprintf("%s/%016llx-%016llx", dir, (unsigned long long)rsv_hash(resid ? resid : ""),
                     (unsigned long long)rsv_hash(n->key));
    json_object_object_add(note, "problem", json_object_new_string(n->key));
    json_object_array_add(rs->notes, note);
    if (!to_requester && cfg->reservations.notify_to.n == 0) {
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
    if (to_requester)
        failed |= rsv_mail(rs, r, requester, 1, n, n->subject, n->body, T_NOTICE_FOOTER);
    if (cfg->reservations.notify_to.n)
        failed |= rsv_mail(rs, r, cfg->reservations.notify_to.v, cfg->reservations.notify_to.n,
                           n, n->staff_subject, n->staff_body, T_NOTICE_STAFF_FOOTER);
    if (!failed) {
        mkdir(dir, 0700);
        fd = open(mark, O_WRONLY | O_CREAT, 0600);
        if (fd >= 0)
            close(fd);
    }
    json_object_object_add(note, "mail",
                           json_object_new_string(failed ? "could not be queued" : "queued"));
out:
    free(mark);
    free(dir);
}

void
notice_unmapped(rsv_t *rs, json_object *r, json_object *loc)
{
    const char *room = rsv_str(loc, "name") ? rsv_str(loc, "name") : "?";
    char *key = xasprintf("unmapped:%s", rsv_str(loc, "id") ? rsv_str(loc, "id") : "?");
    rsv_notice_t n = {key, T_NOTICE_UNMAPPED_SUBJECT, T_NOTICE_UNMAPPED_BODY,
                      T_NOTICE_UNMAPPED_STAFF_SUBJECT, T_NOTICE_UNMAPPED_STAFF,
                      {"room", room, "field", rs->cfg->reservations.room_field, NULL}};

    rsv_notify(rs, r, &n);
    free(key);
}

void
notice_conflict(rsv_t *rs, json_object *r, const char *mailbox, const char *room, time_t start,
                time_t end, const char *what)
{
    char *key = xasprintf("conflict:%s:%lld:%lld", mailbox, (long long)start, (long long)end);
    rsv_notice_t n = {key, T_NOTICE_CONFLICT_SUBJECT, T_NOTICE_CONFLICT_BODY,
                      T_NOTICE_CONFLICT_STAFF_SUBJECT, T_NOTICE_CONFLICT_STAFF,
                      {"room", room, "what", what, NULL}};

    rsv_notify(rs, r, &n);
    free(key);
}

void
notice_refused(rsv_t *rs, json_object *r, const char *mailbox, const char *room,
               const char *error)
{
    char *key = xasprintf("exchange:%s:%s", mailbox, error ? error : "");
    rsv_notice_t n = {key, T_NOTICE_REFUSED_SUBJECT, T_NOTICE_REFUSED_BODY,
                      T_NOTICE_REFUSED_STAFF_SUBJECT, T_NOTICE_REFUSED_STAFF,
                      {"room", room ? room : mailbox, "mailbox", mailbox, "error",
                       error ? error : "?", NULL}};

    rsv_notify(rs, r, &n);
    free(key);
}

void
notice_no_email(rsv_t *rs, json_object *r)
{
    const char *name = rsv_str(rsv_get(r, "requester"), "name");
    rsv_notice_t n = {"requester-email", 0, 0, T_NOTICE_NO_EMAIL_STAFF_SUBJECT,
                      T_NOTICE_NO_EMAIL_STAFF,
                      {"requester", name ? name : text_get(T_UNKNOWN_PERSON), NULL}};

    rsv_notify(rs, r, &n);
}
