/* tdhook subscriptions [list|sync] and tdhook pull [--room MAILBOX] [--full]
 * [--dry-run]: bookings made in Outlook. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "cgi/cmd.h"
#include "core/jobs/outlook.h"
#include "core/queue/queue.h"

/* The table of `subscriptions list`, for people. */
static void
cmd_subs_print(json_object *result)
{
    json_object *list = NULL;

    json_object_object_get_ex(result, "subscriptions", &list);
    printf("%-32s %-8s %-38s %-20s %s\n", "ROOM", "BACKEND", "SUBSCRIPTION", "EXPIRES",
           "LAST NOTIFICATION");
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i), *v;
        char exp[32] = "-", seen[32] = "-";
        const char *id = "(none)";

        if (json_object_object_get_ex(o, "id", &v))
            id = json_object_get_string(v);
        if (json_object_object_get_ex(o, "expires", &v)) {
            time_t t = (time_t)json_object_get_int64(v);
            strftime(exp, sizeof exp, "%Y-%m-%d %H:%M", localtime(&t));
        } else if (json_object_object_get_ex(o, "id", &v)) {
            snprintf(exp, sizeof exp, "(heartbeat)");
        }
        if (json_object_object_get_ex(o, "last_notification", &v)) {
            time_t t = (time_t)json_object_get_int64(v);
            strftime(seen, sizeof seen, "%Y-%m-%d %H:%M:%S", localtime(&t));
        }
        {
            json_object *mb = NULL, *be = NULL;

            json_object_object_get_ex(o, "mailbox", &mb);
            json_object_object_get_ex(o, "backend", &be);
            printf("%-32s %-8s %-38s %-20s %s\n", json_object_get_string(mb),
                   be ? json_object_get_string(be) : "-", id, exp, seen);
        }
    }
}

int
cmd_subscriptions(const config_t *cfg, int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "list";
    int json = 0, rc;
    json_object *result = NULL;
    char *err = NULL;
    long retry;
    queue_t *q;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else
            what = argv[i];
    if (!outlook_enabled(cfg)) {
        fprintf(stderr, "tdhook: subscriptions: bookings made in Outlook are not synced; set "
                        "reservations.direction: both\n");
        return EX_CONFIG;
    }
    if (strcmp(what, "list") == 0) {
        rc = outlook_subs_list(cfg, &result, &err);
        if (rc == OUTLOOK_OK && !json) {
            cmd_subs_print(result);
            json_object_put(result);
            return EX_OK;
        }
        return cmd_finish(rc, result, err, "subscriptions list");
    }
    if (strcmp(what, "sync") != 0) {
        fprintf(stderr, "usage: tdhook subscriptions [list|sync] [--json]\n");
        return EX_USAGE;
    }
    if (!(q = cmd_open_queue(cfg)))
        return EX_CANTCREAT;
    rc = outlook_subs_sync(cfg, q, &result, &err, &retry);
    queue_close(q);
    return cmd_finish(rc, result, err, "subscriptions sync");
}

int
cmd_pull(const config_t *cfg, int argc, char **argv)
{
    const char *room = NULL;
    int full = 0, dry_run = 0, rc;
    json_object *result = NULL;
    char *err = NULL;
    long retry;
    queue_t *q;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0)
            full = 1;
        else if (strcmp(argv[i], "--dry-run") == 0)
            dry_run = 1;
        else if (strcmp(argv[i], "--room") == 0 && i + 1 < argc)
            room = argv[++i];
        else if (strncmp(argv[i], "--room=", 7) == 0)
            room = argv[i] + 7;
    }
    if (!(q = cmd_open_queue(cfg)))
        return EX_CANTCREAT;
    /* a booking its room is still processing: wait, as a job would */
    for (int round = 0;; round++) {
        rc = outlook_pull(cfg, q, room, full, dry_run, &result, &err, &retry);
        if (rc != OUTLOOK_ELATER || round >= 10)
            break;
        fprintf(stderr, "tdhook: pull: %s\n", err ? err : "waiting");
        free(err);
        err = NULL;
        nanosleep(&(struct timespec){retry > 0 ? retry / 1000 : 1,
                                     retry > 0 ? (retry % 1000) * 1000000L : 0}, NULL);
    }
    queue_close(q);
    return cmd_finish(rc, result, err, "pull");
}
