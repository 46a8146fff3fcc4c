#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util/address.h"
#include "core/util/buf.h"
#include "core/jobs/doctor.h"
#include "core/jobs/doctor_private.h"
#include "core/jobs/texts.h"
#include "core/clients/exchange.h"
#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/jobs/mailjob.h"
#include "core/queue/queue.h"
#include "core/jobs/stock.h"
#include "core/clients/topdesk.h"
#include "core/util/xalloc.h"

#define DOCTOR_PERSONS_PAGE 1000

void
doctor_add(doctor_list_t *l, doctor_level_t level, const char *check, const char *fmt, ...)
{
    va_list ap;
    buf_t b;

    if (l->n == DOCTOR_MAX)
        return;
    buf_init(&b, 4096);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    l->f[l->n].level = level;
    l->f[l->n].check = xstrdup(check);
    l->f[l->n].message = buf_steal(&b);
    l->n++;
}

const char *
doctor_level_name(doctor_level_t level)
{
    return level == DOCTOR_OK ? "OK" : level == DOCTOR_WARN ? "WARN" : "FAIL";
}

void
doctor_free(doctor_finding_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].check);
        free(f[i].message);
    }
    free(f);
}

static const char *
doctor_str(json_object *o, const char *key)
{
    json_object *v;

    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* One read that needs a right; returns the TOPDESK_* code. */
static int
doctor_read(doctor_list_t *l, topdesk_t *td, const char *check, const char *path,
            const char *accept, const char *right, json_object **keep)
{
    json_object *body = NULL;
    char *err = NULL;
    long retry;
    int status, rc = topdesk_get(td, path, accept, &body, &status, &err, &retry);

    if (rc == TOPDESK_OK)
        doctor_add(l, DOCTOR_OK, check, "the operator can read %s", right);
    else if (rc == TOPDESK_EPERM)
        doctor_add(l, DOCTOR_FAIL, check,
                   "403: the operator may not read %s; give its permission group read rights "
                   "for %s", right, right);
    else if (rc == TOPDESK_EAUTH)
        doctor_add(l, DOCTOR_FAIL, check, "%s", err ? err : "login refused");
    else
        doctor_add(l, DOCTOR_FAIL, check, "%s", err ? err : "request failed");
    if (keep && rc == TOPDESK_OK)
        *keep = body;
    else
        json_object_put(body);
    free(err);
    return rc;
}

/* Persons: the right to read them, and how many lack an e-mail address. */
static void
doctor_persons(doctor_list_t *l, topdesk_t *td)
{
    json_object *body;
    char *err = NULL;
    long retry;
    int status, rc = TOPDESK_OK;
    size_t total = 0, missing = 0;
    buf_t names;

    buf_init(&names, 4096);
    for (size_t start = 0;; start += DOCTOR_PERSONS_PAGE) {
        char *path = xasprintf("/tas/api/persons?pageStart=%zu&pageSize=%d&query=archived%%3D%%3Dfalse"
                               "&fields=dynamicName,email", start, DOCTOR_PERSONS_PAGE);
        json_object *items;
        size_t n;

        body = NULL;
        rc = topdesk_get(td, path, "application/x.topdesk-collection-person-v2+json", &body,
                         &status, &err, &retry);
        free(path);
        if (rc != TOPDESK_OK)
            break;
        if (!body || !json_object_object_get_ex(body, "item", &items) ||
            !json_object_is_type(items, json_type_array)) {
            json_object_put(body);
            break;
        }
        n = json_object_array_length(items);
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(items, i);
            const char *email = doctor_str(p, "email");
            total++;
            if (!email || !address_ok(email)) {
                missing++;
                if (missing <= 5)
                    buf_printf(&names, "%s%s", missing > 1 ? ", " : "",
                               doctor_str(p, "dynamicName") ? doctor_str(p, "dynamicName") : "?");
            }
        }
        json_object_put(body);
        if (status != 206 || n == 0)
            break;
    }
    if (rc == TOPDESK_EPERM)
        doctor_add(l, DOCTOR_FAIL, "topdesk.persons",
                   "403: the operator may not read persons; give its permission group read "
                   "rights for persons");
    else if (rc != TOPDESK_OK)
        doctor_add(l, DOCTOR_FAIL, "topdesk.persons", "%s", err ? err : "request failed");
    else if (missing)
        doctor_add(l, DOCTOR_WARN, "topdesk.persons",
                   "%zu of %zu persons have no e-mail address (%s%s); they cannot be told "
                   "about their bookings: fill in their Exchange address on the person card",
                   missing, total, buf_str(&names), missing > 5 ? ", ..." : "");
    else
        doctor_add(l, DOCTOR_OK, "topdesk.persons", "all %zu persons have an e-mail address", total);
    free(err);
    buf_free(&names);
}

/* The stock minimum field, and on how many stock rooms it is filled in. */
static void
doctor_stock_field(doctor_list_t *l, const config_t *cfg)
{
    char *err = NULL;
    int rc;
    size_t rooms = 0, filled = 0;
    char *field = NULL;

    rc = stock_minimums(cfg, &rooms, &filled, &field, &err);
    if (rc != TOPDESK_OK)
        doctor_add(l, DOCTOR_FAIL, "stock.minimum-field", "%s", err ? err : "request failed");
    else if (rooms == 0)
        doctor_add(l, DOCTOR_WARN, "stock.minimum-field",
                   "field \"%s\" found (%s), but there are no stock rooms: create them under "
                   "Asset Management > Stock rooms", cfg->stock_check.minimum_field, field);
    else if (filled < rooms)
        doctor_add(l, DOCTOR_WARN, "stock.minimum-field",
                   "field \"%s\" (%s) is filled in on %zu of %zu stock rooms: fill it in on the "
                   "others, or they are reported as having no minimum",
                   cfg->stock_check.minimum_field, field, filled, rooms);
    else
        doctor_add(l, DOCTOR_OK, "stock.minimum-field",
                   "field \"%s\" (%s) is filled in on all %zu stock rooms",
                   cfg->stock_check.minimum_field, field, rooms);
    free(field);
    free(err);
}

static void
doctor_topdesk(doctor_list_t *l, const config_t *cfg, json_object **locations)
{
    topdesk_t *td = topdesk_new(cfg);
    json_object *body = NULL;
    char *err = NULL;
    long retry;
    int status, rc;

    rc = topdesk_get(td, "/tas/api/version", TOPDESK_ACCEPT_JSON, &body, &status, &err, &retry);
    if (rc != TOPDESK_OK) {
        doctor_add(l, DOCTOR_FAIL, "topdesk.login", "%s%s", err ? err : "TOPdesk cannot be reached",
                   rc == TOPDESK_EAUTH ? "" : "; check topdesk.url and that this host reaches it");
        free(err);
        topdesk_free(td);
        return;
    }
    doctor_add(l, DOCTOR_OK, "topdesk.login", "logged in to %s as %s (TOPdesk %s)", cfg->topdesk.url,
               cfg->topdesk.username, doctor_str(body, "version") ? doctor_str(body, "version") : "?");
    json_object_put(body);
    if (cfg->reservations.exchange == EXCHANGE_NONE)
        goto stock;
    doctor_read(l, td, "topdesk.reservations", "/tas/api/reservations?$top=1", TOPDESK_ACCEPT_JSON,
                "reservations", NULL);
    if (doctor_read(l, td, "topdesk.reservable-rooms", "/tas/api/reservableLocations?$top=10000",
                    TOPDESK_ACCEPT_JSON, "reservable locations", locations) == TOPDESK_OK) {
        /* The room mapping is read from the location card itself, which
         * needs the right to read locations. */
        json_object *results, *first;
        const char *id;

        if (json_object_object_get_ex(*locations, "results", &results) &&
            json_object_is_type(results, json_type_array) && json_object_array_length(results) > 0 &&
            (first = json_object_array_get_idx(results, 0)) && (id = doctor_str(first, "id"))) {
            char *eid = topdesk_escape(id), *path = xasprintf("/tas/api/locations/id/%s", eid);
            doctor_read(l, td, "topdesk.locations", path, TOPDESK_ACCEPT_JSON, "locations", NULL);
            free(path);
            free(eid);
        }
    }
    doctor_read(l, td, "topdesk.cancellation-reasons",
                "/tas/api/reservationCancellationReasons?archived=false", TOPDESK_ACCEPT_JSON,
                "cancellation reasons", NULL);

    doctor_persons(l, td);

stock:
    doctor_stock_field(l, cfg);
    topdesk_free(td);
}

/* The mailbox of a reservable location, as the reservation sync finds it. */
static char *
doctor_mailbox(const config_t *cfg, topdesk_t *td, json_object *loc)
{
    const char *id = doctor_str(loc, "id"), *name = doctor_str(loc, "name");
    char *mailbox = NULL;

    if (!id)
        return NULL;
    if (cfg->reservations.room_field && *cfg->reservations.room_field) {
        char *eid = topdesk_escape(id), *path = xasprintf("/tas/api/locations/id/%s", eid);
        json_object *full = NULL, *v = NULL;
        char *err = NULL, *field = xstrdup(cfg->reservations.room_field), *part = field, *dot;
        long retry;
        int status;

        if (topdesk_get(td, path, TOPDESK_ACCEPT_JSON, &full, &status, &err, &retry) == TOPDESK_OK) {
            v = full;
            while (v && part) {
                json_object *next = NULL;
                dot = strchr(part, '.');
                if (dot)
                    *dot = '\0';
                if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, part, &next))
                    next = NULL;
                v = next;
                part = dot ? dot + 1 : NULL;
            }
            if (v && json_object_is_type(v, json_type_string) && address_ok(json_object_get_string(v)))
                mailbox = xstrdup(json_object_get_string(v));
        }
        json_object_put(full);
        free(field);
        free(err);
        free(path);
        free(eid);
    }
    for (size_t i = 0; !mailbox && i < cfg->reservations.room_static.n; i++) {
        const config_pair_t *p = &cfg->reservations.room_static.v[i];
        if (strcmp(p->key, id) == 0 || (name && strcasecmp(p->key, name) == 0))
            mailbox = xstrdup(p->value);
    }
    return mailbox;
}

static void
doctor_rooms(doctor_list_t *l, const config_t *cfg, json_object *locations)
{
    topdesk_t *td = topdesk_new(cfg);
    json_object *results;
    size_t n = 0, mapped = 0, reachable = 0;
    char **boxes = NULL;
    buf_t unmapped, broken;
    exchange_t *ex;
    char *err = NULL;

    buf_init(&unmapped, 4096);
    buf_init(&broken, 8192);
    if (locations && json_object_object_get_ex(locations, "results", &results) &&
        json_object_is_type(results, json_type_array))
        n = json_object_array_length(results);
    boxes = xcalloc(n ? n : 1, sizeof *boxes);
    for (size_t i = 0; i < n; i++) {
        json_object *loc = json_object_array_get_idx(results, i);
        boxes[i] = doctor_mailbox(cfg, td, loc);
        if (boxes[i])
            mapped++;
        else if (n - mapped <= 5 + 0 && unmapped.len < 2000)
            buf_printf(&unmapped, "%s%s", unmapped.len ? ", " : "",
                       doctor_str(loc, "name") ? doctor_str(loc, "name") : "?");
    }
    if (!locations)
        ;   /* already reported as a failed read */
    else if (n == 0)
        doctor_add(l, DOCTOR_WARN, "rooms.mapping", "TOPdesk lists no reservable rooms");
    else if (mapped < n)
        doctor_add(l, DOCTOR_WARN, "rooms.mapping",
                   "%zu of %zu reservable rooms are mapped to a mailbox; not mapped: %s. Fill in "
                   "the room mailbox in location field %s (or room_mapping.static)",
                   mapped, n, buf_str(&unmapped), cfg->reservations.room_field);
    else
        doctor_add(l, DOCTOR_OK, "rooms.mapping", "all %zu reservable rooms are mapped to a mailbox", n);

    ex = exchange_open(cfg, &err);
    if (!ex) {
        doctor_add(l, DOCTOR_FAIL, "exchange.login", "%s", err ? err : "cannot open the backend");
    } else {
        int login_ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (!boxes[i])
                continue;
            free(err);
            err = NULL;
            int rc = exchange_check(ex, boxes[i], &err);
            if (rc == EXCHANGE_OK) {
                reachable++;
            } else if (rc == EXCHANGE_EAUTH) {
                doctor_add(l, DOCTOR_FAIL, "exchange.login", "%s", err ? err : "login refused");
                login_ok = 0;
                break;
            } else if (broken.len < 4000) {
                buf_printf(&broken, "%s%s: %s", broken.len ? "; " : "", boxes[i], err ? err : "?");
            }
        }
        if (login_ok && mapped) {
            doctor_add(l, DOCTOR_OK, "exchange.login", "%s login works", exchange_name(ex));
            if (reachable < mapped)
                doctor_add(l, DOCTOR_FAIL, "exchange.mailboxes",
                           "%zu of %zu mapped mailboxes cannot be reached: %s", mapped - reachable,
                           mapped, buf_str(&broken));
            else
                doctor_add(l, DOCTOR_OK, "exchange.mailboxes", "all %zu mapped mailboxes are reachable",
                           mapped);
        } else if (login_ok) {
            doctor_add(l, DOCTOR_WARN, "exchange.login", "no mapped mailbox to try the %s login on",
                       exchange_name(ex));
        }
        exchange_close(ex);
    }
    for (size_t i = 0; i < n; i++)
        free(boxes[i]);
    free(boxes);
    free(err);
    buf_free(&unmapped);
    buf_free(&broken);
    topdesk_free(td);
}

static void
doctor_mail(doctor_list_t *l, const config_t *cfg, int send_mail)
{
    mime_msg_t msg;
    char *message, *err = NULL;
    int rc;

    if (!send_mail)
        return;
    if (cfg->admin_mail.n == 0) {
        doctor_add(l, DOCTOR_WARN, "mail.sender",
                   "admin_mail is empty: nobody hears of dead letters, and doctor cannot send its "
                   "test mail; set admin_mail");
        return;
    }
    msg = (mime_msg_t){cfg->mail.from, cfg->admin_mail.v, cfg->admin_mail.n,
                       text_get(T_DOCTOR_SUBJECT), text_get(T_DOCTOR_BODY), NULL, NULL, 0};
    message = mime_build(&msg);
    rc = smtp_send(cfg, cfg->admin_mail.v, cfg->admin_mail.n, message, &err);
    if (rc == SMTP_OK)
        doctor_add(l, err ? DOCTOR_WARN : DOCTOR_OK, "mail.sender", "%s accepted a test mail from %s to "
                   "admin_mail%s%s", cfg->mail.smtp_url, cfg->mail.from, err ? "; " : "", err ? err : "");
    else
        doctor_add(l, DOCTOR_FAIL, "mail.sender", "%s; check mail.smtp_url, mail.from and that the "
                   "server lets this host send as %s", err ? err : "sending failed", cfg->mail.from);
    free(err);
    free(message);
}

/* What doctor_dead() gathers from the dead letters. */
typedef struct {
    size_t dead, mail;
    char first_mail[QUEUE_ID_MAX];   /* the oldest dead mail job's id */
    char *mail_error;                /* its error; allocated */
} doctor_dead_t;

static int
doctor_dead_one(const job_t *job, void *arg)
{
    doctor_dead_t *d = arg;

    if (job->status != JOB_DEAD)
        return 0;
    d->dead++;
    if (strcmp(job->kind, "mail") == 0 && d->mail++ == 0) {
        snprintf(d->first_mail, sizeof d->first_mail, "%s", job->id);
        d->mail_error = xstrdup(job->last_error ? job->last_error : "");
    }
    return 0;
}

/* Dead letters: a dead mail job is a digest or a notice that nobody got,
 * and nobody hears of it by mail (mailing about it could loop). */
static void
doctor_dead(doctor_list_t *l, queue_t *q)
{
    doctor_dead_t d = {0, 0, "", NULL};

    if (queue_foreach(q, doctor_dead_one, &d) != QUEUE_OK)
        return;
    if (d.mail)
        doctor_add(l, DOCTOR_FAIL, "queue.dead-mail",
                   "%zu mail%s could not be sent and will not be tried again (the oldest: job "
                   "%s, %.200s); fix the cause, then: tdhook queue retry %s", d.mail,
                   d.mail == 1 ? "" : "s", d.first_mail, d.mail_error, d.first_mail);
    else if (d.dead)
        doctor_add(l, DOCTOR_WARN, "queue.dead-letters",
                   "%zu job%s failed for good (admin_mail was told); see tdhook queue list",
                   d.dead, d.dead == 1 ? "" : "s");
    else
        doctor_add(l, DOCTOR_OK, "queue.dead-letters", "no job failed for good");
    free(d.mail_error);
}

void
doctor_run(const config_t *cfg, int send_mail, doctor_finding_t **out, size_t *n)
{
    doctor_list_t l = {xcalloc(DOCTOR_MAX, sizeof(doctor_finding_t)), 0};
    queue_limits_t limits = {cfg->queue.max_jobs, cfg->queue.max_attempts, cfg->queue.retry_base_ms,
                             cfg->queue.retry_max_ms, cfg->queue.keep_done_ms};
    json_object *locations = NULL;
    char *err = NULL;
    queue_t *q = queue_open(cfg->state_dir, &limits, &err);

    doctor_add(&l, DOCTOR_OK, "config", "%s is valid", cfg->path);
    if (q && queue_writable(q))
        doctor_add(&l, DOCTOR_OK, "state_dir", "%s is writable", cfg->state_dir);
    else
        doctor_add(&l, DOCTOR_FAIL, "state_dir", "%s is not writable%s%s: create it for the user "
                   "tdhook runs as", cfg->state_dir, err ? ": " : "", err ? err : "");
    if (q) {
        doctor_dead(&l, q);
        queue_close(q);
    }
    free(err);
    doctor_topdesk(&l, cfg, &locations);
    if (cfg->reservations.exchange == EXCHANGE_NONE)
        doctor_add(&l, DOCTOR_OK, "reservations", "switched off (reservations.exchange: none)");
    else
        doctor_rooms(&l, cfg, locations);
    json_object_put(locations);
    if (cfg->reservations.direction == DIRECTION_BOTH)
        doctor_outlook(&l, cfg);
    doctor_mail(&l, cfg, send_mail);
    *out = l.f;
    *n = l.n;
}
