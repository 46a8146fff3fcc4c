/* A pull: each room's change feed read and applied to TOPdesk, one reader
 * per room at a time; then the meetings whose room copy went away this
 * pull, decided once every other room has been read (the organizer may
 * have moved the meeting to another room).  Also what the edge needs: the
 * subscription check of a notification, and queueing a pull. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/jobs/outlook_private.h"
#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"

#define OUTLOOK_SETTLE_MS 5000L        /* a room rewrites a new booking within seconds */
#define OUTLOOK_PENDING_MAX_S 600      /* an older pending mark is stale: queue again */
#define OUTLOOK_ALL_ROOMS "*"          /* the pending mark of a pull of every room */

int
outlook_enabled(const config_t *cfg)
{
    return cfg->reservations.direction == DIRECTION_BOTH &&
           cfg->reservations.exchange != EXCHANGE_NONE;
}

/* How long a booking must have been quiet before it is applied. */
static long
settle_ms(void)
{
    static long cache = -1;

    return testseam_number("TDHOOK_TEST_OUTLOOK_SETTLE_MS", 600000, OUTLOOK_SETTLE_MS, &cache);
}

/* --- the edge ---------------------------------------------------------------- */

static int
same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = na != nb;

    for (size_t i = 0; i < nb; i++)
        d |= (unsigned char)(a[i % (na ? na : 1)] ^ b[i]);
    return d == 0;
}

int
outlook_sub_check(const config_t *cfg, const char *sub_id, const char *client_state,
                  char **mailbox)
{
    json_object *o;
    const char *cs, *mb;
    int ok;

    *mailbox = NULL;
    if (!sub_id || !client_state || !store_id_ok(sub_id))
        return 0;
    o = store_load(cfg, "subs", sub_id);
    cs = o ? rsv_str(o, "client_state") : NULL;
    mb = o ? rsv_str(o, "mailbox") : NULL;
    ok = cs && mb && same_secret(cs, client_state);
    if (ok) {
        char *seen = store_path(cfg, "seen", mb, "");
        int fd = open(seen, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        if (fd >= 0) {
            futimens(fd, NULL);   /* when this room was last notified */
            close(fd);
        }
        free(seen);
        *mailbox = xstrdup(mb);
    }
    json_object_put(o);
    return ok;
}

int
outlook_push_gap(const config_t *cfg, const char *key, const char *previous, const char *last)
{
    char *path = store_path(cfg, "seen", key, "wm"), was[256] = "";
    FILE *fp = fopen(path, "re");
    int gap;

    if (fp) {
        if (!fgets(was, sizeof was, fp))
            was[0] = '\0';
        fclose(fp);
    }
    /* the first push of a subscription has nothing to compare with */
    gap = was[0] && previous && *previous && strcmp(was, previous) != 0;
    if (last && *last && file_replace(path, last, strlen(last), 0) != 0)
        log_warn("outlook: could not keep a watermark: %s", strerror(errno));
    free(path);
    return gap;
}

/* Queues a job of kind with payload unless the one marked `key` is queued
 * and has not started (the job removes its mark when it starts). */
static int
outlook_want(const config_t *cfg, queue_t *q, const char *kind, const char *key,
             json_object *payload, int *queued)
{
    char *mark = store_path(cfg, "pending", key, ""), id[QUEUE_ID_MAX];
    struct stat st;
    int rc, dup = 0, fd;

    *queued = 0;
    /* The mark is made before the job is queued: a runner that starts the
     * job at once removes it, so it never outlives the job.  O_EXCL: of
     * two notifications at once, one queues. */
    fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && stat(mark, &st) == 0 &&
        time(NULL) - st.st_mtime >= OUTLOOK_PENDING_MAX_S) {
        unlink(mark);   /* stale: its job is long gone */
        fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0 && errno == EEXIST) {
        free(mark);
        return QUEUE_OK;   /* queued and not started: this one is covered */
    }
    if (fd >= 0)
        close(fd);
    rc = queue_enqueue(q, kind, payload, NULL, id, &dup);
    if (rc == QUEUE_OK)
        *queued = 1;
    else
        unlink(mark);
    free(mark);
    return rc;
}

/* The job that starts removes its mark: what comes after queues anew. */
static void
outlook_started(const config_t *cfg, const char *key)
{
    char *mark = store_path(cfg, "pending", key, "");

    unlink(mark);
    free(mark);
}

int
outlook_want_pull(const config_t *cfg, queue_t *q, const char *mailbox, int *queued)
{
    json_object *payload = json_object_new_object();
    int rc;

    if (mailbox)
        json_object_object_add(payload, "room", json_object_new_string(mailbox));
    rc = outlook_want(cfg, q, OUTLOOK_KIND_PULL, mailbox ? mailbox : OUTLOOK_ALL_ROOMS, payload,
                      queued);
    json_object_put(payload);
    return rc;
}

void
outlook_tick(const config_t *cfg, queue_t *q)
{
    json_object *payload = json_object_new_object();
    int queued;

    /* with notifications off, the upkeep removes what subscriptions are left */
    if (outlook_want(cfg, q, OUTLOOK_KIND_SUBS, OUTLOOK_KIND_SUBS, payload, &queued) != QUEUE_OK)
        log_warn("outlook: could not queue the subscriptions' upkeep");
    if (outlook_want_pull(cfg, q, NULL, &queued) != QUEUE_OK)
        log_warn("outlook: could not queue the resync of the rooms");
    json_object_put(payload);
}

void
outlook_subs_started(const config_t *cfg)
{
    outlook_started(cfg, OUTLOOK_KIND_SUBS);
}

/* --- one room ------------------------------------------------------------------ */

/* Reads room's feed into *evs; afresh when its state has expired. */
static int
pull_feed(pull_t *p, const rsv_mapped_t *room, json_object *st, int *full,
          exchange_event_t **evs, size_t *n, char **link, char **errstr, long *retry)
{
    time_t now = time(NULL);
    time_t start = now - 86400, end = now + (time_t)p->rs->cfg->reservations.outlook.window_days * 86400;
    const char *state = *full ? NULL : rsv_str(st, "delta");
    int rc;

    if (!state)
        *full = 1;
    rc = exchange_feed(p->rs->ex, room->mailbox, state, start, end, evs, n, link, errstr, retry);
    if (rc == EXCHANGE_EGONE && state) {
        log_info("outlook: the change feed of %s has expired (%s); reading it afresh",
                 room->mailbox, *errstr ? *errstr : "");
        free(*errstr);
        *errstr = NULL;
        *full = 1;
        rc = exchange_feed(p->rs->ex, room->mailbox, NULL, start, end, evs, n, link, errstr,
                           retry);
    }
    return rc;
}

/* One entry of a room's feed. */
static int
pull_event(pull_t *p, const rsv_mapped_t *room, const exchange_event_t *ev, json_object *events,
           json_object *seen, char **errstr, long *retry)
{
    const char *known;

    if (ev->removed) {
        known = rsv_str(events, ev->id);
        if (!known)
            return OUTLOOK_OK;
        char *ical = xstrdup(known);
        int rc;

        json_object_object_del(events, ev->id);
        rc = apply_gone(p, room, ical, errstr, retry);
        free(ical);
        return rc;
    }
    if (ev->is_organizer || !ev->ical_uid || !ev->organizer)
        return OUTLOOK_OK;   /* the room's own item, e.g. one tdhook made from TOPdesk */
    if (ev->recurring) {
        apply_note(p, ev->ical_uid, room->mailbox, "recurring meeting: not synced yet");
        return OUTLOOK_OK;
    }
    json_object_object_add(events, ev->id, json_object_new_string(ev->ical_uid));
    if (ev->cancelled || ev->declined)
        return apply_gone(p, room, ev->ical_uid, errstr, retry);
    json_object_object_add(seen, ev->ical_uid, json_object_new_boolean(1));
    return apply_live(p, room, ev, errstr, retry);
}

/* 1 when an event of the feed changed so recently that the room may still
 * be processing it; *until then says when to look again. */
static int
pull_unsettled(const exchange_event_t *evs, size_t n, time_t *until)
{
    long ms = settle_ms();
    time_t now = time(NULL), latest = -1;

    for (size_t i = 0; i < n; i++)
        if (!evs[i].removed && evs[i].modified > latest)
            latest = evs[i].modified;
    if (latest < 0 || (latest + ms / 1000) < now || ms == 0)
        return 0;
    *until = latest + (ms + 999) / 1000;
    return 1;
}

int
pull_room(pull_t *p, const rsv_mapped_t *room, int full, char **errstr, long *retry)
{
    const config_t *cfg = p->rs->cfg;
    int lock = store_lock(cfg, "rooms", room->mailbox, 1), rc;
    char *link = NULL;
    exchange_event_t *evs = NULL;
    size_t n = 0, changes = 0;
    json_object *st, *events, *seen = json_object_new_object(), *note;

    outlook_started(cfg, room->mailbox);   /* from now on a notification queues another pull */
    st = store_load(cfg, "rooms", room->mailbox);
    if (!st) {
        st = json_object_new_object();
        json_object_object_add(st, "mailbox", json_object_new_string(room->mailbox));
    }
    if (!(events = rsv_get(st, "events")) || !json_object_is_type(events, json_type_object)) {
        events = json_object_new_object();
        json_object_object_add(st, "events", events);
    }
    rc = pull_feed(p, room, st, &full, &evs, &n, &link, errstr, retry);
    if (rc != EXCHANGE_OK) {
        rc = rsv_code_exchange(rc == EXCHANGE_EGONE ? EXCHANGE_ERETRY : rc);
        goto out;
    }
    if (pull_unsettled(evs, n, &p->settle_until)) {
        note = json_object_new_object();
        json_object_object_add(note, "room", json_object_new_string(room->mailbox));
        json_object_object_add(note, "settling", json_object_new_boolean(1));
        json_object_array_add(rsv_get(p->out, "rooms"), note);
        rc = OUTLOOK_ELATER;   /* applied once quiet: the feed is not advanced */
        goto out;
    }
    for (size_t i = 0; i < n && rc == OUTLOOK_OK; i++) {
        rc = pull_event(p, room, &evs[i], events, seen, errstr, retry);
        changes++;
    }
    if (rc == OUTLOOK_OK && full) {
        /* a fresh feed lists what is there: a meeting it no longer has is gone */
        json_object *gone = json_object_new_array();

        json_object_object_foreach(events, eid, icalv) {
            if (!rsv_get(seen, json_object_get_string(icalv)))
                json_object_array_add(gone, json_object_new_string(eid));
        }
        for (size_t i = 0; i < json_object_array_length(gone) && rc == OUTLOOK_OK; i++) {
            const char *gid = json_object_get_string(json_object_array_get_idx(gone, i));
            char *ical = xstrdup(rsv_str(events, gid));

            json_object_object_del(events, gid);
            rc = apply_gone(p, room, ical, errstr, retry);
            free(ical);
        }
        json_object_put(gone);
    }
    if (rc == OUTLOOK_OK) {
        json_object_object_add(st, "delta", json_object_new_string(link));
        json_object_object_add(st, "pulled", json_object_new_int64(time(NULL)));
        if (!p->rs->dry_run && store_save(cfg, "rooms", room->mailbox, st) != 0) {
            *errstr = xasprintf("could not save the state of %s", room->mailbox);
            rc = OUTLOOK_ERETRY;
        }
    }
    note = json_object_new_object();
    json_object_object_add(note, "room", json_object_new_string(room->mailbox));
    json_object_object_add(note, "changes", json_object_new_int64((int64_t)changes));
    json_object_object_add(note, "fresh", json_object_new_boolean(full));
    json_object_array_add(rsv_get(p->out, "rooms"), note);
out:
    exchange_events_free(evs, n);
    json_object_put(st);
    json_object_put(seen);
    free(link);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* --- a pull --------------------------------------------------------------------- */

/* A quiet room's round, settled from a probe: its new state kept, if no
 * other pull moved it on meanwhile.  1 when kept. */
static int
pull_quiet(pull_t *p, const rsv_mapped_t *room, const char *was, const char *next)
{
    const config_t *cfg = p->rs->cfg;
    int lock = store_lock(cfg, "rooms", room->mailbox, 1), kept = 0;
    json_object *st = store_load(cfg, "rooms", room->mailbox), *note;

    if (st && rsv_str(st, "delta") && strcmp(rsv_str(st, "delta"), was) == 0) {
        outlook_started(cfg, room->mailbox);
        json_object_object_add(st, "delta", json_object_new_string(next));
        json_object_object_add(st, "pulled", json_object_new_int64(time(NULL)));
        kept = p->rs->dry_run || store_save(cfg, "rooms", room->mailbox, st) == 0;
    }
    if (kept) {
        note = json_object_new_object();
        json_object_object_add(note, "room", json_object_new_string(room->mailbox));
        json_object_object_add(note, "changes", json_object_new_int64(0));
        json_object_object_add(note, "batched", json_object_new_boolean(1));
        json_object_array_add(rsv_get(p->out, "rooms"), note);
    }
    json_object_put(st);
    if (lock >= 0)
        close(lock);
    return kept;
}

/* Asks every room with a stored feed state at once (Graph: one $batch per
 * 20 rooms) whether anything changed; done[i] is set for the quiet ones,
 * so a timed resync of idle rooms costs rooms / 20 requests.  A failed
 * probe only means every room is read on its own. */
static void
pull_probe(pull_t *p, int *done)
{
    size_t n = p->nrooms, k = 0;
    char **mb = xcalloc(n + 1, sizeof *mb), **st = xcalloc(n + 1, sizeof *st);
    char **next = xcalloc(n + 1, sizeof *next), *err = NULL;
    int *idle = xcalloc(n + 1, sizeof *idle);
    size_t *idx = xcalloc(n + 1, sizeof *idx);
    long ra;

    for (size_t i = 0; i < n; i++) {
        json_object *o = store_load(p->rs->cfg, "rooms", p->rooms[i].mailbox);

        if (rsv_str(o, "delta")) {
            mb[k] = p->rooms[i].mailbox;
            st[k] = xstrdup(rsv_str(o, "delta"));
            idx[k++] = i;
        }
        json_object_put(o);
    }
    if (exchange_feed_probe(p->rs->ex, k, mb, st, next, idle, &err, &ra) != EXCHANGE_OK) {
        log_info("outlook: the rooms are read one by one (%s)", err ? err : "probe failed");
        free(err);
    } else {
        for (size_t j = 0; j < k; j++)
            if (idle[j] && next[j])
                done[idx[j]] = pull_quiet(p, &p->rooms[idx[j]], st[j], next[j]);
    }
    for (size_t j = 0; j < k; j++) {
        free(st[j]);
        free(next[j]);
    }
    free(mb);
    free(st);
    free(next);
    free(idle);
    free(idx);
}

/* Every room but `except` once, so a meeting that left one room for another
 * is found there before it is cancelled. */
static int
pull_others(pull_t *p, const char *except, json_object *done, char **errstr, long *retry)
{
    int rc = OUTLOOK_OK;

    for (size_t i = 0; i < p->nrooms && rc == OUTLOOK_OK; i++) {
        const rsv_mapped_t *r = &p->rooms[i];

        if ((except && strcasecmp(r->mailbox, except) == 0) || rsv_get(done, r->mailbox))
            continue;
        json_object_object_add(done, r->mailbox, json_object_new_boolean(1));
        rc = pull_room(p, r, 0, errstr, retry);   /* ELATER: decide once it settled */
    }
    return rc;
}

/* The meetings whose room copy went away during this pull. */
static int
pull_leaving(pull_t *p, int all, const char *mailbox, char **errstr, long *retry)
{
    json_object *done = json_object_new_object();
    int rc = OUTLOOK_OK;

    if (!all && json_object_object_length(p->leaving) > 0)
        rc = pull_others(p, mailbox, done, errstr, retry);
    json_object_put(done);
    if (rc != OUTLOOK_OK)
        return rc;
    json_object_object_foreach(p->leaving, ical, roomv) {
        rc = apply_left(p, ical, json_object_get_string(roomv), errstr, retry);
        if (rc != OUTLOOK_OK)
            break;
    }
    return rc;
}

int
outlook_pull(const config_t *cfg, queue_t *q, const char *mailbox, int full, int dry_run,
             json_object **result, char **errstr, long *retry_after_ms)
{
    rsv_t rs;
    pull_t p = {0};
    const rsv_mapped_t *room = NULL;
    int rc, failed = 0;

    *result = NULL;
    *retry_after_ms = -1;
    if (!outlook_enabled(cfg)) {
        *errstr = xstrdup("bookings made in Outlook are not synced: set reservations.direction "
                          "to both");
        return OUTLOOK_EFAIL;
    }
    if (rsv_open(&rs, cfg, q, dry_run, errstr))
        return OUTLOOK_EFAIL;
    if (!mailbox)
        outlook_started(cfg, OUTLOOK_ALL_ROOMS);
    p.rs = &rs;
    p.out = json_object_new_object();
    p.leaving = json_object_new_object();
    json_object_object_add(p.out, "rooms", json_object_new_array());
    rc = store_mapping(&p, mailbox == NULL, errstr, retry_after_ms);
    if (rc == OUTLOOK_OK && mailbox && !(room = store_room(&p, mailbox))) {
        rsv_mapped_free(p.rooms, p.nrooms);
        p.rooms = NULL;
        p.nrooms = 0;
        rc = store_mapping(&p, 1, errstr, retry_after_ms);   /* mapped since the last read? */
        if (rc == OUTLOOK_OK && !(room = store_room(&p, mailbox))) {
            *errstr = xasprintf("%s is not the mailbox of a mapped room", mailbox);
            rc = OUTLOOK_EFAIL;
        }
    }
    if (rc == OUTLOOK_OK && room) {
        rc = pull_room(&p, room, full, errstr, retry_after_ms);
    } else if (rc == OUTLOOK_OK) {
        int *done = xcalloc(p.nrooms + 1, sizeof *done);

        if (!full)
            pull_probe(&p, done);
        for (size_t i = 0; i < p.nrooms; i++) {
            int one = done[i] ? OUTLOOK_OK
                              : pull_room(&p, &p.rooms[i], full, errstr, retry_after_ms);

            if (one == OUTLOOK_ELATER) {
                if (!failed)
                    failed = OUTLOOK_ELATER;
            } else if (one != OUTLOOK_OK) {
                /* one room's trouble does not stop the others */
                log_warn("outlook: %s: %s", p.rooms[i].mailbox, *errstr ? *errstr : "failed");
                free(*errstr);
                *errstr = NULL;
                failed = one == OUTLOOK_EFAIL && failed != OUTLOOK_ERETRY ? OUTLOOK_EFAIL
                                                                          : OUTLOOK_ERETRY;
            }
            if ((i + 1) % 50 == 0 && i + 1 < p.nrooms)
                log_info("outlook: %zu of %zu rooms read", i + 1, p.nrooms);
        }
        free(done);
    }
    if (rc == OUTLOOK_OK)
        rc = pull_leaving(&p, room == NULL, mailbox, errstr, retry_after_ms);
    if (rc == OUTLOOK_OK && failed) {
        rc = failed;
        if (failed != OUTLOOK_ELATER)
            *errstr = xstrdup("some rooms could not be read; see the log");
    }
    if (rc == OUTLOOK_ELATER && !*errstr) {
        long ms = (long)(p.settle_until - time(NULL)) * 1000;

        *errstr = xstrdup("a booking is still being processed by its room; reading it again "
                          "once it is quiet");
        *retry_after_ms = ms > 0 ? ms : 1000;
    }
    if (rc == OUTLOOK_OK) {
        json_object_object_add(p.out, "mapped_rooms", json_object_new_int64((int64_t)p.nrooms));
        if (dry_run)
            json_object_object_add(p.out, "dry_run", json_object_new_boolean(1));
        json_object_object_add(p.out, "notifications", json_object_get(rs.notes));
        *result = json_object_get(p.out);
    }
    json_object_put(p.out);
    json_object_put(p.leaving);
    rsv_mapped_free(p.rooms, p.nrooms);
    free(p.requester_id);
    rsv_close(&rs);
    return rc;
}
