#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util/address.h"
#include "core/clients/mime.h"
#include "core/jobs/reservation_private.h"
#include "core/util/buf.h"
#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

json_object *
rsv_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return json_object_is_type(v, json_type_null) ? NULL : v;
}

const char *
rsv_str(json_object *o, const char *key)
{
    json_object *v = rsv_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A dotted path such as "optionalFields1.text1"; borrowed. */
json_object *
rsv_path(json_object *o, const char *path)
{
    char *copy = xstrdup(path), *part = copy, *dot;

    while (o && part) {
        dot = strchr(part, '.');
        if (dot)
            *dot = '\0';
        o = rsv_get(o, part);
        part = dot ? dot + 1 : NULL;
    }
    free(copy);
    return o;
}

uint64_t
rsv_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

const char *
rsv_number(json_object *r)
{
    return rsv_str(r, "number") ? rsv_str(r, "number") : "?";
}

int
rsv_code_topdesk(int rc)
{
    return rc == TOPDESK_ERETRY ? RESERVATION_ERETRY : RESERVATION_EFAIL;
}

/* UTC with a Z, as TOPdesk's date-times want. */
static void
rsv_iso(time_t t, char *buf, size_t size)
{
    exchange_format_time(t, buf, size);
    strncat(buf, "Z", size - strlen(buf) - 1);
}

/* --- templates --------------------------------------------------------- */

char *
reservation_template(const char *tmpl, json_object *r, const char *room)
{
    buf_t b;
    json_object *v;

    buf_init(&b, RSV_TEMPLATE_MAX);
    for (const char *p = tmpl; *p; p++) {
        const char *end;
        char name[32];
        size_t n;

        if (*p != '{' || !(end = strchr(p, '}')) || (n = (size_t)(end - p - 1)) >= sizeof name) {
            buf_append(&b, p, 1);
            continue;
        }
        memcpy(name, p + 1, n);
        name[n] = '\0';
        if (strcmp(name, "number") == 0) {
            buf_puts(&b, rsv_str(r, "number") ? rsv_str(r, "number") : "");
        } else if (strcmp(name, "description") == 0) {
            buf_puts(&b, rsv_str(r, "briefDescription") ? rsv_str(r, "briefDescription") : "");
        } else if (strcmp(name, "requester") == 0) {
            json_object *req = rsv_get(r, "requester");
            buf_puts(&b, rsv_str(req, "name") ? rsv_str(req, "name") : "");
        } else if (strcmp(name, "persons") == 0) {
            v = rsv_get(r, "numberOfPersons");
            buf_printf(&b, "%lld", v ? (long long)json_object_get_int64(v) : 0LL);
        } else if (strcmp(name, "room") == 0) {
            buf_puts(&b, room ? room : "");
        } else if (strcmp(name, "services") == 0) {
            json_object *fac = rsv_get(r, "reservedFacilities");
            size_t nserv = 0;
            for (size_t i = 0; fac && i < json_object_array_length(fac); i++) {
                json_object *s = rsv_get(json_object_array_get_idx(fac, i), "reservedServices");
                nserv += s && json_object_is_type(s, json_type_array) ? json_object_array_length(s) : 0;
            }
            if (nserv)
                buf_printf(&b, "%zu service%s", nserv, nserv == 1 ? "" : "s");
            else
                buf_puts(&b, "no services");
        } else {
            buf_append(&b, p, n + 2);
        }
        p = end;
    }
    return buf_steal(&b);
}

/* --- state: which rooms tdhook booked for a reservation ----------------- */

static char *
rsv_state_path(const config_t *cfg, const char *resid, const char *ext)
{
    return xasprintf("%s/reservations/%016llx.%s", cfg->state_dir,
                     (unsigned long long)rsv_hash(resid), ext);
}

static json_object *
rsv_state_load(const config_t *cfg, const char *resid)
{
    char *path = rsv_state_path(cfg, resid, "json");
    json_object *o = json_object_from_file(path);

    free(path);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = json_object_new_object();
    }
    if (!rsv_get(o, "rooms"))
        json_object_object_add(o, "rooms", json_object_new_object());
    return o;
}

static void
rsv_state_save(const config_t *cfg, const char *resid, json_object *state)
{
    char *path = rsv_state_path(cfg, resid, "json");
    const char *s;

    json_object_object_add(state, "reservation", json_object_new_string(resid));
    s = json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN);
    if (file_replace(path, s, strlen(s), 1) != 0)
        log_warn("could not save %s: %s", path, strerror(errno));
    free(path);
}

/* Records, before an appointment is created in mailbox, that tdhook may
 * have booked there (write-ahead): the id is not known yet, so the entry is
 * "" and the room is searched by the reservation's property.  A create
 * followed by a failed step or a kill leaves the room on record, so a later
 * sync removes the appointment once the reservation has left the room.
 * The entry stays until the appointment is known to be gone. */
void
rsv_state_record(const config_t *cfg, const char *resid, json_object *state,
                 const char *mailbox)
{
    json_object *rooms = rsv_get(state, "rooms"), *hint = json_object_get(rsv_get(state, "hint"));

    if (rsv_get(rooms, mailbox))
        return;
    json_object_object_add(rooms, mailbox, json_object_new_string(""));
    json_object_object_del(state, "hint");   /* a hint is this run's, never kept */
    rsv_state_save(cfg, resid, state);
    if (hint)
        json_object_object_add(state, "hint", hint);
}

/* Serialises the jobs of one reservation; returns the lock fd or -1. */
static int
rsv_lock(const config_t *cfg, const char *resid)
{
    char *dir = xasprintf("%s/reservations", cfg->state_dir);
    char *path = rsv_state_path(cfg, resid, "lock");
    int fd;

    mkdir(dir, 0700);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
        close(fd);
        fd = -1;
    }
    free(dir);
    free(path);
    return fd;
}

/* --- the match key ------------------------------------------------------- */

/* The match key as stored on the reservation, or NULL; borrowed. */
static const char *
rsv_match_key(const config_t *cfg, json_object *r)
{
    if (strcmp(cfg->reservations.match_key, "externalLink") == 0)
        return rsv_link(r, RSV_LINK_TYPE);
    json_object *v = rsv_path(r, cfg->reservations.match_key);
    return v && json_object_is_type(v, json_type_string) && *json_object_get_string(v)
               ? json_object_get_string(v) : NULL;
}

/* Writes the match key when it is not there yet (externalLink: TOPdesk
 * refuses to change one) or differs (a text field). */
static int
rsv_write_match_key(rsv_t *rs, json_object *r, const char *event_id, json_object *result,
                    char **errstr, long *retry)
{
    const config_t *cfg = rs->cfg;
    const char *current = rsv_match_key(cfg, r);
    json_object *body, *out = NULL;
    char *eid, *path;
    int status, rc;

    if (current && strcmp(current, event_id) == 0)
        return RESERVATION_OK;
    body = json_object_new_object();
    if (strcmp(cfg->reservations.match_key, "externalLink") == 0) {
        json_object *links = rsv_get(r, "externalLinks"), *link;
        char now[24];

        if (current || (links && json_object_is_type(links, json_type_array) &&
                        json_object_array_length(links) > 0)) {
            /* Set once; a later appointment id is found by the property. */
            json_object_object_add(result, "match_key",
                                   json_object_new_string("externalLink already set; kept"));
            json_object_put(body);
            return RESERVATION_OK;
        }
        rsv_iso(time(NULL), now, sizeof now);
        link = json_object_new_object();
        json_object_object_add(link, "id", json_object_new_string(event_id));
        json_object_object_add(link, "type", json_object_new_string(RSV_LINK_TYPE));
        json_object_object_add(link, "date", json_object_new_string_len(now, (int)strlen(now)));
        json_object_object_add(body, "externalLink", link);
    } else {
        /* "optionalFields1.text5" → {"optionalFields1":{"text5":id}} */
        const char *dot = strchr(cfg->reservations.match_key, '.');
        json_object *inner = json_object_new_object();
        char *outer = dot ? xstrndup(cfg->reservations.match_key,
                                     (size_t)(dot - cfg->reservations.match_key))
                          : xstrdup(cfg->reservations.match_key);

        json_object_object_add(inner, dot ? dot + 1 : "text1", json_object_new_string(event_id));
        json_object_object_add(body, outer, inner);
        free(outer);
    }
    if (rs->dry_run) {
        json_object_object_add(result, "match_key", json_object_new_string("dry run: not written"));
        json_object_put(body);
        return RESERVATION_OK;
    }
    eid = topdesk_escape(rsv_str(r, "id"));
    path = xasprintf("/tas/api/reservations/%s", eid);
    rc = topdesk_send(rs->td, "PATCH", path, TOPDESK_ACCEPT_JSON, body, &out, &status, errstr, retry);
    free(path);
    free(eid);
    json_object_put(body);
    json_object_put(out);
    if (rc == TOPDESK_ERETRY)
        return RESERVATION_ERETRY;
    if (rc != TOPDESK_OK) {
        /* The booking stands; the key only speeds up the next lookup. */
        log_warn("could not write the match key to reservation %s: %s", rsv_str(r, "number"),
                 *errstr ? *errstr : "");
        json_object_object_add(result, "match_key", json_object_new_string(*errstr ? *errstr : "not written"));
        free(*errstr);
        *errstr = NULL;
        return RESERVATION_OK;
    }
    json_object_object_add(result, "match_key", json_object_new_string("written"));
    return RESERVATION_OK;
}

/* The id of r's external link of type `type`, or NULL; borrowed. */
const char *
rsv_link(json_object *r, const char *type)
{
    json_object *links = rsv_get(r, "externalLinks");

    for (size_t i = 0; links && json_object_is_type(links, json_type_array) &&
                       i < json_object_array_length(links); i++) {
        json_object *l = json_object_array_get_idx(links, i);

        if (rsv_str(l, "type") && strcmp(rsv_str(l, "type"), type) == 0)
            return rsv_str(l, "id");
    }
    return NULL;
}

/* 1 when r was booked in Outlook (its external link has tdhook's Outlook type). */
int
rsv_from_outlook(json_object *r)
{
    return r && rsv_link(r, RSV_OUTLOOK_LINK_TYPE) != NULL;
}

/* --- one reservation ------------------------------------------------------ */

static int
rsv_active(json_object *r)
{
    const char *status = rsv_str(r, "status");
    json_object *archived = rsv_get(r, "archived");

    if (archived && json_object_get_boolean(archived))
        return 0;
    return status && (strcmp(status, "planned") == 0 || strcmp(status, "conflictingPlanned") == 0);
}

int
rsv_get_reservation(rsv_t *rs, const char *key, json_object **r, char **errstr, long *retry)
{
    char *ekey = topdesk_escape(key), *path = xasprintf("/tas/api/reservations/%s", ekey);
    int status, rc = topdesk_get(rs->td, path, TOPDESK_ACCEPT_JSON, r, &status, errstr, retry);

    free(path);
    free(ekey);
    if (rc == TOPDESK_OK && (!*r || !rsv_str(*r, "id"))) {
        json_object_put(*r);
        *r = NULL;
        *errstr = xasprintf("TOPdesk's answer for reservation %s has no id", key);
        return RESERVATION_EFAIL;
    }
    if (rc == TOPDESK_ENOTFOUND) {
        free(*errstr);
        *errstr = xasprintf("TOPdesk has no reservation \"%s\"", key);
    }
    return rc == TOPDESK_OK ? RESERVATION_OK : rsv_code_topdesk(rc);
}

/* Synchronises the reservation r (borrowed) in every room; appends to out. */
static int
rsv_sync_one(rsv_t *rs, json_object *r, json_object *out, char **errstr, long *retry)
{
    const char *resid = rsv_str(r, "id");
    json_object *facs = rsv_get(r, "reservedFacilities"), *state, *state_rooms, *rooms, *seen;
    int active = rsv_active(r), rc = RESERVATION_OK, lock;
    char *primary = NULL;

    if (rsv_from_outlook(r))
        return outlook_from_topdesk(rs, r, out, errstr, retry);
    lock = rsv_lock(rs->cfg, resid);
    state = rsv_state_load(rs->cfg, resid);
    state_rooms = rsv_get(state, "rooms");
    rooms = json_object_new_array();
    seen = json_object_new_object();
    json_object_object_add(out, "reservation", json_object_new_string(resid));
    json_object_object_add(out, "number", rsv_str(r, "number") ? json_object_new_string(rsv_str(r, "number")) : NULL);
    json_object_object_add(out, "status", rsv_str(r, "status") ? json_object_new_string(rsv_str(r, "status")) : NULL);
    json_object_object_add(out, "active", json_object_new_boolean(active));
    json_object_object_add(out, "rooms", rooms);

    /* The match key on the reservation stands for the first room's
     * appointment when this machine has no state for it. */
    if (json_object_object_length(state_rooms) == 0 && rsv_match_key(rs->cfg, r))
        json_object_object_add(state, "hint", json_object_new_string(rsv_match_key(rs->cfg, r)));

    for (size_t i = 0; facs && json_object_is_type(facs, json_type_array) &&
                       i < json_object_array_length(facs) && i < RSV_MAX_ROOMS; i++) {
        json_object *fac = json_object_array_get_idx(facs, i), *loc = rsv_get(fac, "location");
        char *mailbox = NULL, *event_id = NULL;

        if (!loc || !rsv_str(loc, "id"))
            continue;   /* an asset or object, not a room */
        if (rsv_get(seen, rsv_str(loc, "id")))
            continue;
        json_object_object_add(seen, rsv_str(loc, "id"), json_object_new_boolean(1));
        rc = rsv_mailbox(rs, loc, &mailbox, errstr, retry);
        if (rc != TOPDESK_OK) {
            rc = rsv_code_topdesk(rc);
            break;
        }
        if (mailbox) {
            json_object_object_add(seen, mailbox, json_object_new_boolean(1));
            if (!rsv_get(state_rooms, mailbox) && rsv_get(state, "hint") && !primary)
                json_object_object_add(state_rooms, mailbox,
                                       json_object_get(rsv_get(state, "hint")));
        }
        free(mailbox);
        rc = rsv_room(rs, r, fac, active, state, rooms, &event_id, errstr, retry);
        if (rc != RESERVATION_OK) {
            free(event_id);
            break;
        }
        if (event_id && !primary)
            primary = event_id;
        else
            free(event_id);
    }
    json_object_object_del(state, "hint");

    /* Rooms taken off the reservation (or no longer mapped): remove what
     * tdhook made there. */
    if (rc == RESERVATION_OK) {
        json_object_object_foreach(state_rooms, mb, idv) {
            exchange_event_t *ev = NULL;
            int erc;

            if (rsv_get(seen, mb))
                continue;   /* handled per room above */
            erc = rsv_find(rs, mb, json_object_get_string(idv), resid, &ev, errstr, retry);
            if (erc == EXCHANGE_OK && ev && !rs->dry_run)
                erc = exchange_delete(rs->ex, mb, ev, errstr, retry);
            exchange_event_free(ev);
            if (erc == EXCHANGE_ERETRY) {
                rc = RESERVATION_ERETRY;
                break;
            }
            if (erc != EXCHANGE_OK) {
                log_warn("could not remove the appointment in %s: %s", mb, *errstr ? *errstr : "");
                free(*errstr);
                *errstr = NULL;
            }
            json_object_array_add(rooms, rsv_room_result(mb, mb, "removed: room no longer reserved"));
        }
        {
            /* Keep only the rooms that still stand. */
            json_object *keep = json_object_new_object();
            json_object_object_foreach(state_rooms, mb2, idv2) {
                if (rsv_get(seen, mb2) && active)
                    json_object_object_add(keep, mb2, json_object_get(idv2));
            }
            json_object_object_add(state, "rooms", keep);
        }
    }

    if (rc == RESERVATION_OK && active) {
        json_object *req = rsv_get(r, "requester");
        const char *email = rsv_str(req, "email");

        if (!email || !address_ok(email))
            notice_no_email(rs, r);
        if (primary)
            rc = rsv_write_match_key(rs, r, primary, out, errstr, retry);
    }
    if (rc == RESERVATION_OK && !rs->dry_run)
        rsv_state_save(rs->cfg, resid, state);
    json_object_put(state);
    json_object_put(seen);
    free(primary);
    if (lock >= 0)
        close(lock);
    return rc;
}

int
rsv_open(rsv_t *rs, const config_t *cfg, queue_t *q, int dry_run, char **errstr)
{
    memset(rs, 0, sizeof *rs);
    rs->cfg = cfg;
    rs->q = q;
    rs->dry_run = dry_run;
    rs->notes = json_object_new_array();
    rs->ex = exchange_open(cfg, errstr);
    if (!rs->ex) {
        json_object_put(rs->notes);
        return RESERVATION_EFAIL;
    }
    rs->td = topdesk_new(cfg);
    return RESERVATION_OK;
}

void
rsv_close(rsv_t *rs)
{
    for (size_t i = 0; i < rs->ncache; i++) {
        free(rs->cache[i].location_id);
        free(rs->cache[i].mailbox);
    }
    free(rs->cache);
    topdesk_free(rs->td);
    exchange_close(rs->ex);
    json_object_put(rs->notes);
}

int
reservation_sync(const config_t *cfg, queue_t *q, const char *key, int dry_run,
                 json_object **result, char **errstr, long *retry_after_ms)
{
    rsv_t rs;
    json_object *r = NULL, *out;
    int rc;

    *result = NULL;
    *retry_after_ms = -1;
    if (rsv_open(&rs, cfg, q, dry_run, errstr))
        return RESERVATION_EFAIL;
    rc = rsv_get_reservation(&rs, key, &r, errstr, retry_after_ms);
    if (rc == RESERVATION_OK) {
        out = json_object_new_object();
        rc = rsv_sync_one(&rs, r, out, errstr, retry_after_ms);
        json_object_object_add(out, "notifications", json_object_get(rs.notes));
        if (dry_run)
            json_object_object_add(out, "dry_run", json_object_new_boolean(1));
        if (rc == RESERVATION_OK)
            *result = out;
        else
            json_object_put(out);
    }
    json_object_put(r);
    rsv_close(&rs);
    return rc;
}

/* Adds the ids of the reservations in room loc over [from, to) to ids.
 * TOPdesk returns at most 10,000 a call and no offset: on 206 ask again from
 * the last plannedStartDate seen. */
static int
rsv_list_room(rsv_t *rs, const char *loc, time_t from, time_t to, json_object *ids, char **errstr,
              long *retry)
{
    char start[32], end[32];
    time_t after = from;

    rsv_iso(to, end, sizeof end);
    for (int page = 0; page < 1000; page++) {
        json_object *body = NULL, *results;
        char *q, *eq, *path;
        int status, rc;
        size_t n;
        time_t last = after;

        rsv_iso(after, start, sizeof start);
        /* The first page also takes reservations already running; the next
         * ones go on from the last start seen. */
        if (page == 0)
            q = xasprintf("reservedFacilities.location.id==%s;plannedEndDate=gt=%s;plannedStartDate=lt=%s",
                          loc, start, end);
        else
            q = xasprintf("reservedFacilities.location.id==%s;plannedStartDate=ge=%s;plannedStartDate=lt=%s",
                          loc, start, end);
        eq = topdesk_escape(q);
        path = xasprintf("/tas/api/reservations?query=%s&$top=10000", eq);
        rc = topdesk_get(rs->td, path, TOPDESK_ACCEPT_JSON, &body, &status, errstr, retry);
        free(path);
        free(eq);
        free(q);
        if (rc != TOPDESK_OK)
            return rsv_code_topdesk(rc);
        results = rsv_get(body, "results");
        n = results && json_object_is_type(results, json_type_array) ? json_object_array_length(results) : 0;
        for (size_t i = 0; i < n; i++) {
            json_object *r = json_object_array_get_idx(results, i);
            time_t t = exchange_parse_time(rsv_str(r, "plannedStartDate"));

            if (rsv_str(r, "id"))
                json_object_object_add(ids, rsv_str(r, "id"), json_object_new_boolean(1));
            if (t > last)
                last = t;
        }
        json_object_put(body);
        if (status != 206 || n == 0)
            return RESERVATION_OK;
        if (last <= after) {
            *errstr = xasprintf("more than 10,000 reservations start at %s in one room", start);
            return RESERVATION_EFAIL;
        }
        after = last;
    }
    return RESERVATION_OK;
}

/* 1 when the reservation r (may be NULL) is active and holds location_id. */
static int
rsv_holds(json_object *r, const char *location_id)
{
    json_object *facs = rsv_get(r, "reservedFacilities");

    for (size_t k = 0; r && rsv_active(r) && facs && json_object_is_type(facs, json_type_array) &&
                       k < json_object_array_length(facs); k++) {
        const char *lid = rsv_str(rsv_get(json_object_array_get_idx(facs, k), "location"), "id");

        if (lid && strcmp(lid, location_id) == 0)
            return 1;
    }
    return 0;
}

/* Removes from one mapped room the appointments tdhook made in [now,
 * until) whose reservation does not hold the room; adds each to removed. */
static int
rsv_sweep_room(rsv_t *rs, const rsv_mapped_t *room, time_t now, time_t until,
               json_object *removed, char **errstr, long *retry)
{
    exchange_event_t *evs = NULL;
    size_t n = 0;
    int rc = RESERVATION_OK;
    int erc = exchange_view(rs->ex, room->mailbox, now, until, &evs, &n, errstr, retry);

    if (erc != EXCHANGE_OK)
        return rsv_code_exchange(erc);
    for (size_t j = 0; j < n && rc == RESERVATION_OK; j++) {
        json_object *r = NULL, *o;
        int holds;

        if (!evs[j].reservation_id)
            continue;   /* not made by tdhook: never touched */
        if (evs[j].organizer && !evs[j].is_organizer)
            continue;   /* a person's meeting, booked in Outlook: only ever declined */
        if (rsv_get_reservation(rs, evs[j].reservation_id, &r, errstr, retry) ==
            RESERVATION_ERETRY) {
            rc = RESERVATION_ERETRY;
            break;
        }
        free(*errstr);
        *errstr = NULL;
        holds = rsv_holds(r, room->location_id) || rsv_from_outlook(r);
        json_object_put(r);
        if (holds)
            continue;
        if (!rs->dry_run) {
            erc = exchange_delete(rs->ex, room->mailbox, &evs[j], errstr, retry);
            if (erc == EXCHANGE_ERETRY) {
                rc = RESERVATION_ERETRY;
                break;
            }
            if (erc != EXCHANGE_OK) {
                log_warn("reconcile: could not remove %s from %s: %s", evs[j].id, room->mailbox,
                         *errstr ? *errstr : "");
                free(*errstr);
                *errstr = NULL;
                continue;
            }
        }
        o = json_object_new_object();
        json_object_object_add(o, "mailbox", json_object_new_string(room->mailbox));
        json_object_object_add(o, "reservation", json_object_new_string(evs[j].reservation_id));
        json_object_object_add(o, "subject",
                               json_object_new_string(evs[j].subject ? evs[j].subject : ""));
        json_object_array_add(removed, o);
    }
    exchange_events_free(evs, n);
    return rc;
}

int
reservation_reconcile(const config_t *cfg, queue_t *q, int days, int dry_run,
                      json_object **result, char **errstr, long *retry_after_ms)
{
    rsv_t rs;
    rsv_mapped_t *rooms = NULL;
    size_t nrooms = 0;
    json_object *ids = json_object_new_object(), *done = json_object_new_array();
    json_object *removed = json_object_new_array(), *out;
    time_t now = time(NULL), until = now + (time_t)days * 86400;
    int rc;

    *result = NULL;
    *retry_after_ms = -1;
    if (rsv_open(&rs, cfg, q, dry_run, errstr)) {
        json_object_put(ids);
        json_object_put(done);
        json_object_put(removed);
        return RESERVATION_EFAIL;
    }
    rc = rsv_mapped_rooms(&rs, &rooms, &nrooms, errstr, retry_after_ms);
    for (size_t i = 0; rc == RESERVATION_OK && i < nrooms; i++)
        rc = rsv_list_room(&rs, rooms[i].location_id, now, until, ids, errstr, retry_after_ms);

    /* Every reservation in a mapped room: the same sync as a webhook. */
    if (rc == RESERVATION_OK) {
        json_object_object_foreach(ids, resid, unused) {
            json_object *r = NULL, *one;
            (void)unused;
            rc = rsv_get_reservation(&rs, resid, &r, errstr, retry_after_ms);
            if (rc != RESERVATION_OK)
                break;
            one = json_object_new_object();
            rc = rsv_sync_one(&rs, r, one, errstr, retry_after_ms);
            json_object_put(r);
            if (rc != RESERVATION_OK) {
                json_object_put(one);
                break;
            }
            json_object_array_add(done, one);
        }
    }

    /* Appointments tdhook made whose reservation does not hold the room
     * (any more): cancelled, moved elsewhere, or gone from TOPdesk. */
    for (size_t i = 0; rc == RESERVATION_OK && i < nrooms; i++)
        rc = rsv_sweep_room(&rs, &rooms[i], now, until, removed, errstr, retry_after_ms);

    if (rc == RESERVATION_OK) {
        out = json_object_new_object();
        json_object_object_add(out, "days", json_object_new_int(days));
        json_object_object_add(out, "mapped_rooms", json_object_new_int64((int64_t)nrooms));
        json_object_object_add(out, "reservations", json_object_get(done));
        json_object_object_add(out, "removed", json_object_get(removed));
        json_object_object_add(out, "notifications", json_object_get(rs.notes));
        if (dry_run)
            json_object_object_add(out, "dry_run", json_object_new_boolean(1));
        *result = out;
        log_info("reconcile: %zu mapped rooms, %zu reservations, %zu stray appointments removed",
                 nrooms, json_object_array_length(done), json_object_array_length(removed));
    }
    rsv_mapped_free(rooms, nrooms);
    json_object_put(ids);
    json_object_put(done);
    json_object_put(removed);
    rsv_close(&rs);
    return rc;
}
