/* tdhook queue list|show ID|retry ID|drop ID: the operator's view of the
 * durable queue and its dead letters. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "cgi/cmd.h"
#include "core/queue/queue.h"
#include "core/util/xalloc.h"

#define CMD_QUEUE_ERROR_MAX 60

typedef struct {
    size_t count[5];   /* by job_status_t */
} cmd_queue_tally_t;

static void
cmd_queue_usage(void)
{
    fputs("usage: tdhook queue list\n"
          "       tdhook queue show ID\n"
          "       tdhook queue retry ID\n"
          "       tdhook queue drop ID\n", stderr);
}

static void
cmd_queue_time(long long ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "-");
}

/* The first CMD_QUEUE_ERROR_MAX bytes of an error on one line, cut at a
 * UTF-8 character boundary, "..." when cut. */
static void
cmd_queue_short_error(const char *error, char *out, size_t size)
{
    size_t n = 0, i;

    if (!error) {
        snprintf(out, size, "-");
        return;
    }
    while (error[n] && n < CMD_QUEUE_ERROR_MAX && n + 4 < size)
        n++;
    if (error[n])
        while (n > 0 && ((unsigned char)error[n] & 0xC0) == 0x80)
            n--;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)error[i];
        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (error[n] && i + 3 < size) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static int
cmd_queue_list_one(const job_t *job, void *arg)
{
    cmd_queue_tally_t *tally = arg;
    char created[32], error[CMD_QUEUE_ERROR_MAX + 8];

    if ((size_t)job->status < sizeof tally->count / sizeof tally->count[0])
        tally->count[job->status]++;
    cmd_queue_time(job->created_ms, created, sizeof created);
    cmd_queue_short_error(job->last_error, error, sizeof error);
    printf("%-24s  %-8s  %-14s  %8d  %-20s  %s\n", job->id, job_status_name(job->status),
           job->kind, job->attempts, created, error);
    return 0;
}

static int
cmd_queue_list(queue_t *q)
{
    cmd_queue_tally_t tally;

    memset(&tally, 0, sizeof tally);
    printf("%-24s  %-8s  %-14s  %8s  %-20s  %s\n", "ID", "STATUS", "KIND", "ATTEMPTS",
           "CREATED", "LAST ERROR");
    if (queue_foreach(q, cmd_queue_list_one, &tally) != QUEUE_OK) {
        fprintf(stderr, "tdhook: cannot read the queue\n");
        return EX_IOERR;
    }
    printf("%zu queued, %zu running, %zu retrying, %zu dead, %zu done\n",
           tally.count[JOB_QUEUED], tally.count[JOB_RUNNING], tally.count[JOB_RETRYING],
           tally.count[JOB_DEAD], tally.count[JOB_DONE]);
    return EX_OK;
}

/* The sysexits code and message for a failed queue_get(). */
static int
cmd_queue_get_error(int rc, const char *id)
{
    if (rc == QUEUE_ENOENT || rc == QUEUE_EINVAL) {
        fprintf(stderr, "tdhook: no job %s\n", id);
        return EX_DATAERR;
    }
    fprintf(stderr, "tdhook: cannot read job %s\n", id);
    return EX_IOERR;
}

static int
cmd_queue_show(queue_t *q, const char *id)
{
    job_t *job = NULL;
    json_object *o;
    int rc = queue_get(q, id, &job);

    if (rc != QUEUE_OK)
        return cmd_queue_get_error(rc, id);
    o = job_to_json(job);
    json_object_object_add(o, "payload", json_object_get(job->payload));
    if (job->status == JOB_QUEUED || job->status == JOB_RETRYING) {
        char when[32];
        cmd_queue_time(job->not_before_ms, when, sizeof when);
        json_object_object_add(o, "not_before", json_object_new_string(when));
    }
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                           | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    job_free(job);
    return EX_OK;
}

static int
cmd_queue_retry(queue_t *q, const char *id)
{
    job_t *job = NULL;
    int rc = queue_get(q, id, &job);

    if (rc != QUEUE_OK)
        return cmd_queue_get_error(rc, id);
    if (job->status == JOB_DONE || job->status == JOB_RUNNING) {
        rc = job->status == JOB_RUNNING ? EX_TEMPFAIL : EX_DATAERR;
        fprintf(stderr, "tdhook: job %s is %s; only dead or waiting jobs can be queued again\n",
                id, job_status_name(job->status));
        job_free(job);
        return rc;
    }
    job_free(job);
    rc = queue_requeue(q, id);
    if (rc == QUEUE_ENOENT)
        return cmd_queue_get_error(rc, id);
    if (rc == QUEUE_EINVAL) {
        fprintf(stderr, "tdhook: job %s is running or done; not queued again\n", id);
        return EX_TEMPFAIL;
    }
    if (rc != QUEUE_OK) {
        fprintf(stderr, "tdhook: cannot queue job %s again\n", id);
        return EX_IOERR;
    }
    printf("job %s queued again\n", id);
    return EX_OK;
}

static int
cmd_queue_drop(queue_t *q, const char *id)
{
    int rc = queue_drop(q, id);

    if (rc == QUEUE_ENOENT) {
        fprintf(stderr, "tdhook: no job %s\n", id);
        return EX_DATAERR;
    }
    if (rc == QUEUE_EINVAL) {
        job_t *job = NULL;
        if (queue_get(q, id, &job) != QUEUE_OK) {
            fprintf(stderr, "tdhook: no job %s\n", id);
            return EX_DATAERR;
        }
        job_free(job);
        fprintf(stderr, "tdhook: job %s is running; stop its runner first\n", id);
        return EX_TEMPFAIL;
    }
    if (rc != QUEUE_OK) {
        fprintf(stderr, "tdhook: cannot drop job %s\n", id);
        return EX_IOERR;
    }
    printf("job %s dropped\n", id);
    return EX_OK;
}

int
cmd_queue(const config_t *cfg, int argc, char **argv)
{
    queue_limits_t limits;
    queue_t *q;
    char *err = NULL;
    const char *sub = argc > 0 ? argv[0] : NULL;
    int takes_id, rc;

    if (!sub) {
        cmd_queue_usage();
        return EX_USAGE;
    }
    if (strcmp(sub, "list") == 0) {
        takes_id = 0;
    } else if (strcmp(sub, "show") == 0 || strcmp(sub, "retry") == 0
               || strcmp(sub, "drop") == 0) {
        takes_id = 1;
    } else {
        fprintf(stderr, "tdhook: unknown queue command '%s'\n", sub);
        cmd_queue_usage();
        return EX_USAGE;
    }
    if (argc != 1 + takes_id) {
        cmd_queue_usage();
        return EX_USAGE;
    }

    limits.max_jobs = cfg->queue.max_jobs;
    limits.max_attempts = cfg->queue.max_attempts;
    limits.retry_base_ms = cfg->queue.retry_base_ms;
    limits.retry_max_ms = cfg->queue.retry_max_ms;
    limits.keep_done_ms = cfg->queue.keep_done_ms;
    q = queue_open(cfg->state_dir, &limits, &err);
    if (!q) {
        fprintf(stderr, "tdhook: %s\n", err);
        free(err);
        return EX_CANTCREAT;
    }
    if (!takes_id)
        rc = cmd_queue_list(q);
    else if (strcmp(sub, "show") == 0)
        rc = cmd_queue_show(q, argv[1]);
    else if (strcmp(sub, "retry") == 0)
        rc = cmd_queue_retry(q, argv[1]);
    else
        rc = cmd_queue_drop(q, argv[1]);
    queue_close(q);
    return rc;
}
