/* tdhook sync-reservation ID|NUMBER [--dry-run] and tdhook reconcile */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cgi/cmd.h"
#include "core/queue/queue.h"
#include "core/jobs/outlook.h"
#include "core/jobs/reservation.h"

queue_t *
cmd_open_queue(const config_t *cfg)
{
    queue_limits_t limits = {cfg->queue.max_jobs, cfg->queue.max_attempts, cfg->queue.retry_base_ms,
                             cfg->queue.retry_max_ms, cfg->queue.keep_done_ms};
    char *err = NULL;
    queue_t *q = queue_open(cfg->state_dir, &limits, &err);

    if (!q) {
        fprintf(stderr, "tdhook: %s\n", err);
        free(err);
    }
    return q;
}

int
cmd_finish(int rc, json_object *result, char *err, const char *what)
{
    if (rc != RESERVATION_OK) {
        fprintf(stderr, "tdhook: %s failed: %s\n", what, err ? err : "unknown error");
        free(err);
        return rc == RESERVATION_ERETRY || rc == OUTLOOK_ELATER ? EX_TEMPFAIL : EX_UNAVAILABLE;
    }
    puts(json_object_to_json_string_ext(result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(result);
    return EX_OK;
}

int
cmd_sync_reservation(const config_t *cfg, int argc, char **argv)
{
    const char *key = NULL;
    int dry_run = 0, rc;
    json_object *result = NULL;
    char *err = NULL;
    long retry;
    queue_t *q;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry_run = 1;
        else if (!key && argv[i][0] != '-')
            key = argv[i];
        else
            key = NULL, i = argc;
    }
    if (!key) {
        fprintf(stderr, "usage: tdhook sync-reservation ID|NUMBER [--dry-run]\n");
        return EX_USAGE;
    }
    /* Notification mails go through the queue, so a running server (or the
     * next one) sends them. */
    if (!(q = cmd_open_queue(cfg)))
        return EX_CANTCREAT;
    rc = reservation_sync(cfg, q, key, dry_run, &result, &err, &retry);
    queue_close(q);
    return cmd_finish(rc, result, err, "sync");
}

int
cmd_reconcile(const config_t *cfg, int argc, char **argv)
{
    int dry_run = 0, days = cfg->reservations.reconcile_days, rc;
    json_object *result = NULL;
    char *err = NULL;
    long retry;
    queue_t *q;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
            char *end;
            long d;
            errno = 0;
            d = strtol(argv[++i], &end, 10);
            if (errno || *end || d < 1 || d > 366) {
                fprintf(stderr, "tdhook: --days takes a number from 1 to 366\n");
                return EX_USAGE;
            }
            days = (int)d;
        } else {
            fprintf(stderr, "usage: tdhook reconcile [--days N] [--dry-run]\n");
            return EX_USAGE;
        }
    }
    if (!(q = cmd_open_queue(cfg)))
        return EX_CANTCREAT;
    rc = reservation_reconcile(cfg, q, days, dry_run, &result, &err, &retry);
    queue_close(q);
    return cmd_finish(rc, result, err, "reconcile");
}
