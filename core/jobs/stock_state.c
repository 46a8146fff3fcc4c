/* The repeat state of the stock check: which stock rooms the last report
 * had short or without a minimum ({state_dir}/stock-state.json), so that
 * stock_check.repeat: only_new mails only what is new. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "core/jobs/stock.h"
#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define STOCK_STATE_FILE "stock-state.json"

/* The state: {"short":{"<id>":shortfall},"no_minimum":{"<id>":true}}. */
size_t
stock_mark_new(const config_t *cfg, stock_report_t *r, int save)
{
    char *path = xasprintf("%s/%s", cfg->state_dir, STOCK_STATE_FILE);
    json_object *old = json_object_from_file(path), *old_short = NULL, *old_nomin = NULL;
    json_object *state, *now_short, *now_nomin;
    size_t nnew = 0;

    if (old) {
        json_object_object_get_ex(old, "short", &old_short);
        json_object_object_get_ex(old, "no_minimum", &old_nomin);
    }
    state = json_object_new_object();
    now_short = json_object_new_object();
    now_nomin = json_object_new_object();
    for (size_t i = 0; i < r->n; i++) {
        stock_room_t *room = &r->rooms[i];
        json_object *v;

        if (room->shortfall > 0) {
            room->is_new = !old_short || !json_object_object_get_ex(old_short, room->id, &v);
            json_object_object_add(now_short, room->id, json_object_new_int64(room->shortfall));
        } else if (!room->has_minimum) {
            room->is_new = !old_nomin || !json_object_object_get_ex(old_nomin, room->id, &v);
            json_object_object_add(now_nomin, room->id, json_object_new_boolean(1));
        } else {
            room->is_new = 0;
        }
        nnew += room->is_new && room->shortfall > 0;
    }
    json_object_object_add(state, "generated", json_object_new_string(r->generated));
    json_object_object_add(state, "short", now_short);
    json_object_object_add(state, "no_minimum", now_nomin);
    if (save) {
        const char *s = json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN);

        mkdir(cfg->state_dir, 0700);   /* the CLI may run before any server made it */
        if (file_replace(path, s, strlen(s), 1) != 0)
            log_warn("could not save %s: %s", path, strerror(errno));
    }
    json_object_put(state);
    json_object_put(old);
    free(path);
    return nnew;
}
