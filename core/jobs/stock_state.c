/* The repeat state of the stock check ({state_dir}/stock-state.json):
 * which stock rooms the last report had short or without a minimum, so that
 * stock_check.repeat: only_new mails only what is new, and the calendar day
 * (in mail.timezone) a digest last went out, so that daily mails at most
 * once a day unless something new fell short. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "core/jobs/stock.h"
#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define STOCK_STATE_FILE "stock-state.json"

/* Today in the zone of the mails, "2026-12-08", into day[16]. */
static const char *
stock_today(char *day)
{
    time_t now = time(NULL);
    struct tm tm;

    if (!localtime_r(&now, &tm) || strftime(day, 16, "%Y-%m-%d", &tm) == 0)
        day[0] = '\0';
    return day;
}

int
stock_mailed_today(const config_t *cfg)
{
    char *path = xasprintf("%s/%s", cfg->state_dir, STOCK_STATE_FILE), day[16];
    json_object *state = json_object_from_file(path), *v;
    int today = state && json_object_object_get_ex(state, "mailed_day", &v) &&
                json_object_is_type(v, json_type_string) &&
                strcmp(json_object_get_string(v), stock_today(day)) == 0;

    json_object_put(state);
    free(path);
    return today;
}

/* The state: {"short":{"<id>":shortfall},"no_minimum":{"<id>":true},
 * "mailed_day":"2026-12-08"}. */
size_t
stock_mark_new(const config_t *cfg, stock_report_t *r, stock_save_t save)
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
    if (save == STOCK_SAVE_MAILED) {
        char day[16];

        json_object_object_add(state, "mailed_day", json_object_new_string(stock_today(day)));
    } else if (old) {
        json_object *day;

        if (json_object_object_get_ex(old, "mailed_day", &day))
            json_object_object_add(state, "mailed_day", json_object_get(day));
    }
    json_object_object_add(state, "short", now_short);
    json_object_object_add(state, "no_minimum", now_nomin);
    if (save != STOCK_SAVE_NOT) {
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
