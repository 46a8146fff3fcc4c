/* What the Outlook direction keeps in state_dir/outlook (see
 * outlook_private.h for the layout).  Every file is replaced whole
 * (file_replace), mode 0600: a room's file holds its subscription's
 * clientState, a secret. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/jobs/outlook_private.h"
#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* state_dir/outlook/<dir>, made when missing; allocated. */
static char *
store_dir(const config_t *cfg, const char *dir)
{
    char *top = xasprintf("%s/outlook", cfg->state_dir), *sub;

    mkdir(top, 0700);
    sub = xasprintf("%s/%s", top, dir);
    mkdir(sub, 0700);
    free(top);
    return sub;
}

char *
store_path(const config_t *cfg, const char *dir, const char *key, const char *ext)
{
    char *d = store_dir(cfg, dir);
    char *path = xasprintf("%s/%016llx%s%s", d, (unsigned long long)rsv_hash(key),
                           *ext ? "." : "", ext);

    free(d);
    return path;
}

/* An exclusive lock on <dir>/<h>.lock; wait 0: -1 at once when it is held.
 * The fd, or -1. */
int
store_lock(const config_t *cfg, const char *dir, const char *key, int wait)
{
    char *path = store_path(cfg, dir, key, "lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd >= 0 && flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        close(fd);
        fd = -1;
    }
    free(path);
    return fd;
}

json_object *
store_load(const config_t *cfg, const char *dir, const char *key)
{
    char *path = store_path(cfg, dir, key, "json");
    json_object *o = NULL;

    if (access(path, F_OK) == 0) {
        o = json_object_from_file(path);
        if (!o || !json_object_is_type(o, json_type_object)) {
            log_warn("outlook: %s is not readable; starting it afresh", path);
            json_object_put(o);
            o = NULL;
        }
    }
    free(path);
    return o;
}

int
store_save(const config_t *cfg, const char *dir, const char *key, json_object *o)
{
    char *path = store_path(cfg, dir, key, "json");
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    int rc = file_replace(path, s, strlen(s), 1);

    if (rc != 0)
        log_error("outlook: could not save %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

void
store_remove(const config_t *cfg, const char *dir, const char *key)
{
    char *path = store_path(cfg, dir, key, "json");

    unlink(path);
    free(path);
}

/* 1 when s can be a subscription id: 1 to 128 of letters, digits, "-_.=". */
int
store_id_ok(const char *s)
{
    size_t n = 0;

    for (; s && *s; s++, n++)
        if (!isalnum((unsigned char)*s) && !strchr("-_.=", *s))
            return 0;
    return n > 0 && n <= 128;
}

int
store_sub_index(const config_t *cfg, const char *sub_id, const char *mailbox,
                const char *client_state)
{
    json_object *o;
    int rc;

    if (!mailbox) {
        store_remove(cfg, "subs", sub_id);
        return 0;
    }
    o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(sub_id));
    json_object_object_add(o, "mailbox", json_object_new_string(mailbox));
    json_object_object_add(o, "client_state", json_object_new_string(client_state));
    rc = store_save(cfg, "subs", sub_id, o);
    json_object_put(o);
    return rc;
}

/* --- the mapped rooms ------------------------------------------------------- */

static void
store_mapping_from(pull_t *p, json_object *list)
{
    size_t n = json_object_array_length(list);

    p->rooms = xcalloc(n ? n : 1, sizeof *p->rooms);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        const char *loc = rsv_str(o, "location_id"), *mb = rsv_str(o, "mailbox");

        if (!loc || !mb)
            continue;
        p->rooms[p->nrooms].location_id = xstrdup(loc);
        p->rooms[p->nrooms].name = xstrdup(rsv_str(o, "name") ? rsv_str(o, "name") : loc);
        p->rooms[p->nrooms].mailbox = xstrdup(mb);
        for (char *c = p->rooms[p->nrooms].mailbox; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        p->nrooms++;
    }
}

/* The mapped rooms into p: from mapping.json when it is younger than
 * outlook.resync and fresh is 0, else read from TOPdesk and kept. */
int
store_mapping(pull_t *p, int fresh, char **errstr, long *retry)
{
    const config_t *cfg = p->rs->cfg;
    char *path = xasprintf("%s/outlook/mapping.json", cfg->state_dir);
    json_object *o = fresh ? NULL : json_object_from_file(path), *list;
    rsv_mapped_t *m = NULL;
    size_t n = 0;
    int rc;

    if (o && rsv_get(o, "at") &&
        time(NULL) - json_object_get_int64(rsv_get(o, "at")) < cfg->reservations.outlook.resync_ms / 1000 &&
        (list = rsv_get(o, "rooms")) && json_object_is_type(list, json_type_array)) {
        store_mapping_from(p, list);
        json_object_put(o);
        free(path);
        return OUTLOOK_OK;
    }
    json_object_put(o);
    rc = rsv_mapped_rooms(p->rs, &m, &n, errstr, retry);
    if (rc != RESERVATION_OK) {
        free(path);
        return rc;
    }
    o = json_object_new_object();
    list = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object();

        json_object_object_add(r, "location_id", json_object_new_string(m[i].location_id));
        json_object_object_add(r, "name", json_object_new_string(m[i].name));
        json_object_object_add(r, "mailbox", json_object_new_string(m[i].mailbox));
        json_object_array_add(list, r);
    }
    rsv_mapped_free(m, n);
    json_object_object_add(o, "at", json_object_new_int64(time(NULL)));
    json_object_object_add(o, "rooms", list);
    free(store_dir(cfg, "rooms"));
    if (!p->rs->dry_run) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

        if (file_replace(path, s, strlen(s), 0) != 0)
            log_warn("outlook: could not save %s: %s", path, strerror(errno));
    }
    store_mapping_from(p, list);
    json_object_put(o);
    free(path);
    return OUTLOOK_OK;
}

const rsv_mapped_t *
store_room(const pull_t *p, const char *mailbox)
{
    for (size_t i = 0; mailbox && i < p->nrooms; i++)
        if (strcasecmp(p->rooms[i].mailbox, mailbox) == 0)
            return &p->rooms[i];
    return NULL;
}

const rsv_mapped_t *
store_room_at(const pull_t *p, const char *location_id)
{
    for (size_t i = 0; location_id && i < p->nrooms; i++)
        if (strcmp(p->rooms[i].location_id, location_id) == 0)
            return &p->rooms[i];
    return NULL;
}
