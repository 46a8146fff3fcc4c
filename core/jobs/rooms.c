/* Room mapping: the room mailbox of a TOPdesk location (its mapping field,
 * else reservations.room_mapping.static), and the mapped rooms for reconcile. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util/address.h"
#include "core/clients/mime.h"
#include "core/jobs/reservation_private.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* --- room mapping ------------------------------------------------------- */

/* Remembers id's mailbox (NULL: unmapped) for the rest of the job. */
static void
rsv_cache_add(rsv_t *rs, const char *id, const char *mailbox)
{
    if (rs->ncache == rs->acache) {
        rs->acache = rs->acache ? 2 * rs->acache : 64;
        rs->cache = xrealloc(rs->cache, rs->acache * sizeof *rs->cache);
    }
    rs->cache[rs->ncache].location_id = xstrdup(id);
    rs->cache[rs->ncache].mailbox = mailbox ? xstrdup(mailbox) : NULL;
    rs->ncache++;
}

/* The mailbox of location loc (with its mapping field read, or NULL),
 * else the static map by id or name; allocated or NULL. */
static char *
rsv_mailbox_of(rsv_t *rs, json_object *full, const char *id, const char *name)
{
    const config_t *cfg = rs->cfg;
    json_object *v = full ? rsv_path(full, cfg->reservations.room_field) : NULL;
    char *mailbox = NULL;

    if (v && json_object_is_type(v, json_type_string) && address_ok(json_object_get_string(v)))
        mailbox = xstrdup(json_object_get_string(v));
    else if (v && json_object_is_type(v, json_type_string) && *json_object_get_string(v))
        log_warn("location %s: \"%s\" in %s is not a mail address", name ? name : id,
                 json_object_get_string(v), cfg->reservations.room_field);
    for (size_t i = 0; !mailbox && i < cfg->reservations.room_static.n; i++) {
        const config_pair_t *p = &cfg->reservations.room_static.v[i];
        if (strcmp(p->key, id) == 0 || (name && strcasecmp(p->key, name) == 0))
            mailbox = xstrdup(p->value);
    }
    return mailbox;
}

/* The mailbox of a location: its mapping field in TOPdesk, else the static
 * map by id or name.  *mailbox allocated or NULL (unmapped). */
int
rsv_mailbox(rsv_t *rs, json_object *loc, char **mailbox, char **errstr, long *retry)
{
    const config_t *cfg = rs->cfg;
    const char *id = rsv_str(loc, "id"), *name = rsv_str(loc, "name");
    const char *field = cfg->reservations.room_field;
    json_object *full = NULL;

    *mailbox = NULL;
    if (!id)
        return TOPDESK_OK;
    for (size_t i = 0; i < rs->ncache; i++)
        if (strcmp(rs->cache[i].location_id, id) == 0) {
            *mailbox = rs->cache[i].mailbox ? xstrdup(rs->cache[i].mailbox) : NULL;
            return TOPDESK_OK;
        }
    if (field && *field) {
        char *eid = topdesk_escape(id), *path = xasprintf("/tas/api/locations/id/%s", eid);
        int status, rc = topdesk_get(rs->td, path, TOPDESK_ACCEPT_JSON, &full, &status, errstr, retry);

        free(path);
        free(eid);
        if (rc != TOPDESK_OK)
            return rc;
    }
    *mailbox = rsv_mailbox_of(rs, full, id, name);
    json_object_put(full);
    rsv_cache_add(rs, id, *mailbox);
    return TOPDESK_OK;
}

/* Reads the mapping field of every location in one request (the locations
 * list has no paging by default), so that listing the mapped rooms costs
 * two requests, not one a room.  Quietly nothing when TOPdesk will not
 * list the field: the rooms are then read one by one. */
static void
rsv_mailboxes_prefetch(rsv_t *rs)
{
    const char *field = rs->cfg->reservations.room_field;
    const char *dot = field ? strchr(field, '.') : NULL;
    char *top, *q, *path, *err = NULL;
    json_object *list = NULL;
    int status;
    long ra;

    if (!field || !*field || rs->ncache)
        return;
    top = dot ? xstrndup(field, (size_t)(dot - field)) : xstrdup(field);
    q = topdesk_escape(top);
    path = xasprintf("/tas/api/locations?$fields=id,name,%s", q);
    if (topdesk_get(rs->td, path, TOPDESK_ACCEPT_JSON, &list, &status, &err, &ra) == TOPDESK_OK &&
        list && json_object_is_type(list, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *loc = json_object_array_get_idx(list, i);
            const char *id = rsv_str(loc, "id");
            char *mb;

            if (!id)
                continue;
            mb = rsv_mailbox_of(rs, loc, id, rsv_str(loc, "name"));
            rsv_cache_add(rs, id, mb);
            free(mb);
        }
    }
    json_object_put(list);
    free(err);
    free(top);
    free(q);
    free(path);
}

/* --- reconcile ------------------------------------------------------------- */

/* The reservable rooms that have a mailbox. */
int
rsv_mapped_rooms(rsv_t *rs, rsv_mapped_t **out, size_t *n, char **errstr, long *retry)
{
    json_object *body = NULL, *results;
    int status, rc;
    size_t alloc = 0;

    *out = NULL;
    *n = 0;
    rsv_mailboxes_prefetch(rs);
    rc = topdesk_get(rs->td, "/tas/api/reservableLocations?$top=10000", TOPDESK_ACCEPT_JSON, &body,
                     &status, errstr, retry);
    if (rc != TOPDESK_OK)
        return rsv_code_topdesk(rc);
    results = rsv_get(body, "results");
    for (size_t i = 0; results && json_object_is_type(results, json_type_array) &&
                       i < json_object_array_length(results); i++) {
        json_object *loc = json_object_array_get_idx(results, i);
        char *mailbox = NULL;

        rc = rsv_mailbox(rs, loc, &mailbox, errstr, retry);
        if (rc != TOPDESK_OK) {
            json_object_put(body);
            return rsv_code_topdesk(rc);
        }
        if (!mailbox)
            continue;
        if (*n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            *out = xrealloc(*out, alloc * sizeof **out);
        }
        (*out)[*n].location_id = xstrdup(rsv_str(loc, "id"));
        (*out)[*n].name = xstrdup(rsv_str(loc, "name") ? rsv_str(loc, "name") : rsv_str(loc, "id"));
        (*out)[*n].mailbox = mailbox;
        (*n)++;
    }
    json_object_put(body);
    return RESERVATION_OK;
}

void
rsv_mapped_free(rsv_mapped_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].location_id);
        free(m[i].name);
        free(m[i].mailbox);
    }
    free(m);
}
