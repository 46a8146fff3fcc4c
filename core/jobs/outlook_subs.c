/* The change notification subscriptions on the mapped rooms' calendars:
 * one per room, asking for the documented maximum life and renewed at half
 * of it; made anew (and the room read again) when Graph removed it or it
 * lapsed; removed when its room is no longer mapped or notifications are
 * off.  Each has its own clientState, a random secret kept in the room's
 * file and in the index the notification route reads. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/jobs/outlook_private.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"

#define SUB_MINUTES 10020L   /* under Graph's 10,080 for Outlook events */

/* 64 hex digits from the kernel's generator (a secret, so not random.c). */
static int
sub_secret(char out[65])
{
    unsigned char raw[32];
    size_t got = 0;

    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static long
sub_minutes(void)
{
    static long cache = -1;

    return testseam_number("TDHOOK_TEST_SUB_MINUTES", 100000, SUB_MINUTES, &cache);
}

/* 1 when the backend's subscriptions are EWS push ones: they do not
 * expire; a heartbeat (StatusEvent) tells they live, and the URL's key
 * says which one a push is for. */
static int
sub_push(const exchange_t *ex)
{
    return strcmp(exchange_name(ex), "ews") == 0;
}

/* What a subscription is found by when something arrives: Graph's
 * subscription id, or EWS's URL key (kept as client_state). */
static const char *
sub_index_key(json_object *sub)
{
    const char *backend = rsv_str(sub, "backend");

    return backend && strcmp(backend, "ews") == 0 ? rsv_str(sub, "client_state")
                                                 : rsv_str(sub, "id");
}

/* EWS: the minutes between two heartbeats. */
static long
sub_frequency(const config_t *cfg)
{
    long m = cfg->ews.status_frequency_ms / 60000;

    return m < 1 ? 1 : m > 1440 ? 1440 : m;
}

/* Seconds in a minute of ews.status_frequency (a test seam shortens it,
 * with the fake EWS's --minute-seconds). */
static long
sub_minute_s(void)
{
    static long cache = -1;

    return testseam_number("TDHOOK_TEST_EWS_MINUTE_S", 60, 60, &cache);
}

/* EWS: 1 when room's push subscription has been silent for twice its
 * heartbeat (no notification, not even a StatusEvent). */
static int
sub_silent(const config_t *cfg, const char *mailbox, json_object *sub, time_t now)
{
    char *seen = store_path(cfg, "seen", mailbox, "");
    struct stat sb;
    time_t last = (time_t)json_object_get_int64(rsv_get(sub, "created"));

    if (stat(seen, &sb) == 0 && sb.st_mtime > last)
        last = sb.st_mtime;
    free(seen);
    return now - last > 2 * sub_minute_s() * sub_frequency(cfg);
}

/* Forgets room st's subscription (and its index entry). */
static void
sub_forget(const config_t *cfg, json_object *st)
{
    const char *key = sub_index_key(rsv_get(st, "sub"));

    if (key)
        store_sub_index(cfg, key, NULL, NULL);
    json_object_object_del(st, "sub");
}

/* A new subscription for room; st updated.  Queues a pull of the room:
 * what changed while it had none is read now. */
static int
sub_create(pull_t *p, const rsv_mapped_t *room, json_object *st, char **errstr, long *retry)
{
    const config_t *cfg = p->rs->cfg;
    char secret[65], *url, *life;
    exchange_sub_t sub;
    json_object *o;
    int rc, queued;

    if (sub_secret(secret) != 0) {
        *errstr = xstrdup("no random numbers for a clientState");
        return OUTLOOK_ERETRY;
    }
    if (sub_push(p->rs->ex)) {
        /* Exchange does not sign its pushes: the URL's secret key is the proof */
        url = xasprintf("%s/hooks/ews/%s", cfg->reservations.outlook.callback_url, secret);
        life = NULL;
    } else {
        url = xasprintf("%s/hooks/graph", cfg->reservations.outlook.callback_url);
        life = xasprintf("%s/hooks/graph/lifecycle", cfg->reservations.outlook.callback_url);
    }
    rc = exchange_subscribe(p->rs->ex, room->mailbox, url, life, secret,
                            sub_push(p->rs->ex) ? sub_frequency(cfg) : sub_minutes(), &sub,
                            errstr, retry);
    free(url);
    free(life);
    if (rc != EXCHANGE_OK)
        return rsv_code_exchange(rc);
    o = json_object_new_object();
    json_object_object_add(o, "backend", json_object_new_string(exchange_name(p->rs->ex)));
    json_object_object_add(o, "id", json_object_new_string(sub.id));
    json_object_object_add(o, "client_state", json_object_new_string(secret));
    json_object_object_add(o, "created", json_object_new_int64(time(NULL)));
    json_object_object_add(o, "expires", json_object_new_int64(sub.expires));
    /* what Graph granted is what the renewals ask for */
    json_object_object_add(o, "minutes", json_object_new_int64(
                                             (int64_t)(sub.expires - time(NULL) + 59) / 60));
    sub_forget(cfg, st);
    json_object_object_add(st, "sub", o);
    if (sub_push(p->rs->ex))
        store_sub_index(cfg, secret, room->mailbox, sub.id);
    else
        store_sub_index(cfg, sub.id, room->mailbox, secret);
    explicit_bzero(secret, sizeof secret);
    free(sub.id);
    if (outlook_want_pull(cfg, p->rs->q, room->mailbox, &queued) != QUEUE_OK)
        log_warn("outlook: could not queue a pull of %s", room->mailbox);
    apply_note(p, NULL, room->mailbox, "subscribed");
    return OUTLOOK_OK;
}

/* One room: subscribed, renewed, or left alone. */
static int
sub_room(pull_t *p, const rsv_mapped_t *room, char **errstr, long *retry)
{
    const config_t *cfg = p->rs->cfg;
    int lock = store_lock(cfg, "rooms", room->mailbox, 1), rc = OUTLOOK_OK;
    json_object *st = store_load(cfg, "rooms", room->mailbox), *sub;
    time_t now = time(NULL), created, expires;

    if (!st) {
        st = json_object_new_object();
        json_object_object_add(st, "mailbox", json_object_new_string(room->mailbox));
    }
    sub = rsv_get(st, "sub");
    created = sub ? (time_t)json_object_get_int64(rsv_get(sub, "created")) : 0;
    expires = sub ? (time_t)json_object_get_int64(rsv_get(sub, "expires")) : 0;
    if (!cfg->reservations.outlook.notifications) {
        if (sub) {
            rc = exchange_unsubscribe(p->rs->ex, rsv_str(sub, "id"), errstr, retry);
            rc = rc == EXCHANGE_OK ? OUTLOOK_OK : rsv_code_exchange(rc);
            if (rc == OUTLOOK_OK) {
                sub_forget(cfg, st);
                apply_note(p, NULL, room->mailbox, "unsubscribed: notifications are off");
            }
        }
    } else if (sub_push(p->rs->ex)) {
        if (!sub || sub_silent(cfg, room->mailbox, sub, now)) {
            if (sub)
                apply_note(p, NULL, room->mailbox, "silent: subscribing anew");
            rc = sub_create(p, room, st, errstr, retry);
        }
    } else if (!sub || expires <= now + 60) {
        rc = sub_create(p, room, st, errstr, retry);
    } else if (now >= created + (expires - created) / 2) {
        time_t until = 0;
        long minutes = rsv_get(sub, "minutes") ? (long)json_object_get_int64(rsv_get(sub, "minutes"))
                                               : 0;
        int erc = exchange_renew(p->rs->ex, rsv_str(sub, "id"),
                                 minutes > 0 && minutes < sub_minutes() ? minutes : sub_minutes(),
                                 &until, errstr, retry);

        if (erc == EXCHANGE_ENOTFOUND) {
            free(*errstr);
            *errstr = NULL;
            rc = sub_create(p, room, st, errstr, retry);
        } else if (erc == EXCHANGE_OK) {
            json_object_object_add(sub, "created", json_object_new_int64(now));
            json_object_object_add(sub, "expires", json_object_new_int64(until));
            apply_note(p, NULL, room->mailbox, "renewed");
        } else {
            rc = rsv_code_exchange(erc);
        }
    }
    if (rc == OUTLOOK_OK && !p->rs->dry_run)
        store_save(cfg, "rooms", room->mailbox, st);
    json_object_put(st);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* Subscriptions of rooms that are no longer mapped go. */
static void
sub_strays(pull_t *p)
{
    const config_t *cfg = p->rs->cfg;
    char *dir = xasprintf("%s/outlook/subs", cfg->state_dir);
    DIR *d = opendir(dir);
    struct dirent *e;

    while (d && (e = readdir(d))) {
        char *path;
        json_object *o;
        const char *mb, *id;

        if (e->d_name[0] == '.' || !strstr(e->d_name, ".json"))
            continue;
        path = xasprintf("%s/%s", dir, e->d_name);
        o = json_object_from_file(path);
        mb = rsv_str(o, "mailbox");
        id = rsv_str(o, "id");
        if (mb && id && !store_room(p, mb)) {
            char *err = NULL;
            long ra;

            if (exchange_unsubscribe(p->rs->ex, id, &err, &ra) == EXCHANGE_OK) {
                unlink(path);
                apply_note(p, NULL, mb, "unsubscribed: the room is no longer mapped");
            } else {
                log_warn("outlook: could not remove the subscription of %s: %s", mb,
                         err ? err : "");
            }
            free(err);
        }
        json_object_put(o);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* The earliest expiry of the stored subscriptions, for /metrics. */
static void
sub_gauge(pull_t *p)
{
    long long first = 0;

    for (size_t i = 0; i < p->nrooms; i++) {
        json_object *st = store_load(p->rs->cfg, "rooms", p->rooms[i].mailbox);
        json_object *e = rsv_get(rsv_get(st, "sub"), "expires");

        if (e && (!first || json_object_get_int64(e) < first))
            first = json_object_get_int64(e);
        json_object_put(st);
    }
    metrics_subscription_expiry(first);
}

int
outlook_subs_sync(const config_t *cfg, queue_t *q, json_object **result, char **errstr,
                  long *retry_after_ms)
{
    rsv_t rs;
    pull_t p = {0};
    int rc, failed = OUTLOOK_OK;

    *result = NULL;
    *retry_after_ms = -1;
    if (!outlook_enabled(cfg)) {
        *errstr = xstrdup("bookings made in Outlook are not synced: set reservations.direction "
                          "to both");
        return OUTLOOK_EFAIL;
    }
    outlook_subs_started(cfg);
    if (rsv_open(&rs, cfg, q, 0, errstr))
        return OUTLOOK_EFAIL;
    p.rs = &rs;
    p.out = json_object_new_object();
    rc = store_mapping(&p, 1, errstr, retry_after_ms);
    for (size_t i = 0; rc == OUTLOOK_OK && i < p.nrooms; i++) {
        int one = sub_room(&p, &p.rooms[i], errstr, retry_after_ms);

        if (one != OUTLOOK_OK) {
            log_warn("outlook: subscription of %s: %s", p.rooms[i].mailbox,
                     *errstr ? *errstr : "failed");
            apply_note(&p, NULL, p.rooms[i].mailbox, *errstr ? *errstr : "failed");
            free(*errstr);
            *errstr = NULL;
            failed = one == OUTLOOK_ERETRY || failed == OUTLOOK_ERETRY ? OUTLOOK_ERETRY : one;
        }
    }
    if (rc == OUTLOOK_OK) {
        sub_strays(&p);
        sub_gauge(&p);
        if (failed != OUTLOOK_OK) {
            rc = failed;
            *errstr = xstrdup("some rooms could not be subscribed; see the log");
        }
    }
    if (rc == OUTLOOK_OK)
        *result = json_object_get(p.out);
    json_object_put(p.out);
    rsv_mapped_free(p.rooms, p.nrooms);
    rsv_close(&rs);
    return rc;
}

int
outlook_subs_list(const config_t *cfg, json_object **result, char **errstr)
{
    rsv_t rs;
    pull_t p = {0};
    long ra = -1;
    json_object *list;
    int rc;

    *result = NULL;
    if (rsv_open(&rs, cfg, NULL, 1, errstr))
        return OUTLOOK_EFAIL;
    p.rs = &rs;
    rc = store_mapping(&p, 0, errstr, &ra);
    list = json_object_new_array();
    for (size_t i = 0; rc == OUTLOOK_OK && i < p.nrooms; i++) {
        json_object *st = store_load(cfg, "rooms", p.rooms[i].mailbox), *sub = rsv_get(st, "sub");
        json_object *o = json_object_new_object();
        char *seen = store_path(cfg, "seen", p.rooms[i].mailbox, "");
        struct stat sb;

        json_object_object_add(o, "room", json_object_new_string(p.rooms[i].name));
        json_object_object_add(o, "mailbox", json_object_new_string(p.rooms[i].mailbox));
        json_object_object_add(o, "backend", json_object_new_string(exchange_name(rs.ex)));
        if (sub) {
            time_t exp = (time_t)json_object_get_int64(rsv_get(sub, "expires"));

            json_object_object_add(o, "id", json_object_get(rsv_get(sub, "id")));
            if (exp > 0)
                json_object_object_add(o, "expires", json_object_new_int64(exp));
            json_object_object_add(o, "live", json_object_new_boolean(
                sub_push(rs.ex) ? !sub_silent(cfg, p.rooms[i].mailbox, sub, time(NULL))
                                : exp > time(NULL)));
        }
        if (stat(seen, &sb) == 0)
            json_object_object_add(o, "last_notification", json_object_new_int64(sb.st_mtime));
        if (rsv_get(st, "pulled"))
            json_object_object_add(o, "last_pull", json_object_get(rsv_get(st, "pulled")));
        json_object_array_add(list, o);
        json_object_put(st);
        free(seen);
    }
    if (rc == OUTLOOK_OK) {
        *result = json_object_new_object();
        json_object_object_add(*result, "subscriptions", list);
    } else {
        json_object_put(list);
    }
    rsv_mapped_free(p.rooms, p.nrooms);
    rsv_close(&rs);
    return rc;
}

int
outlook_lifecycle(const config_t *cfg, queue_t *q, const char *id, const char *event,
                  json_object **result, char **errstr, long *retry_after_ms)
{
    json_object *idx = store_id_ok(id) ? store_load(cfg, "subs", id) : NULL;
    const char *mailbox = rsv_str(idx, "mailbox");
    rsv_t rs;
    pull_t p = {0};
    const rsv_mapped_t *room;
    int rc = OUTLOOK_OK, queued;

    *result = NULL;
    *retry_after_ms = -1;
    if (!mailbox) {
        *result = json_object_new_object();
        json_object_object_add(*result, "action",
                               json_object_new_string("unknown subscription: nothing to do"));
        json_object_put(idx);
        return OUTLOOK_OK;
    }
    if (rsv_open(&rs, cfg, q, 0, errstr)) {
        json_object_put(idx);
        return OUTLOOK_EFAIL;
    }
    p.rs = &rs;
    p.out = json_object_new_object();
    rc = store_mapping(&p, 0, errstr, retry_after_ms);
    room = rc == OUTLOOK_OK ? store_room(&p, mailbox) : NULL;
    if (rc == OUTLOOK_OK && room && strcmp(event, "reauthorizationRequired") == 0) {
        int erc = exchange_reauthorize(rs.ex, id, errstr, retry_after_ms);

        if (erc != EXCHANGE_OK && erc != EXCHANGE_ERETRY) {
            /* cannot reauthorize: a renewal (PATCH) serves as well */
            time_t until;

            free(*errstr);
            *errstr = NULL;
            erc = exchange_renew(rs.ex, id, sub_minutes(), &until, errstr, retry_after_ms);
        }
        rc = erc == EXCHANGE_OK ? OUTLOOK_OK : rsv_code_exchange(erc);
        apply_note(&p, NULL, mailbox, "reauthorized");
    } else if (rc == OUTLOOK_OK && room && strcmp(event, "subscriptionRemoved") == 0) {
        int lock = store_lock(cfg, "rooms", room->mailbox, 1);
        json_object *st = store_load(cfg, "rooms", room->mailbox);

        if (!st)
            st = json_object_new_object();
        sub_forget(cfg, st);
        rc = sub_create(&p, room, st, errstr, retry_after_ms);
        if (rc == OUTLOOK_OK)
            store_save(cfg, "rooms", room->mailbox, st);
        json_object_put(st);
        if (lock >= 0)
            close(lock);
    } else if (rc == OUTLOOK_OK) {
        apply_note(&p, NULL, mailbox, event);
    }
    /* whatever the event: changes may have been missed, so read the room */
    if (rc == OUTLOOK_OK && outlook_want_pull(cfg, q, mailbox, &queued) != QUEUE_OK) {
        *errstr = xasprintf("could not queue a pull of %s", mailbox);
        rc = OUTLOOK_ERETRY;
    }
    if (rc == OUTLOOK_OK)
        *result = json_object_get(p.out);
    json_object_put(p.out);
    json_object_put(idx);
    rsv_mapped_free(p.rooms, p.nrooms);
    rsv_close(&rs);
    return rc;
}
