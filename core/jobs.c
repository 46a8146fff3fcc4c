#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jobs.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"

static const char *const jobs_kinds[] = {"stock-check", "reservation", "reconcile", "mail"};

int
jobs_kind_known(const char *kind)
{
    for (size_t i = 0; i < sizeof jobs_kinds / sizeof *jobs_kinds; i++)
        if (strcmp(kind, jobs_kinds[i]) == 0)
            return 1;
    return 0;
}

/* Reads a whole number after prefix in spec; -1 when absent or bad. */
static long
jobs_test_number(const char *spec, const char *prefix)
{
    size_t n = strlen(prefix);
    char *end;
    long v;

    if (strncmp(spec, prefix, n) != 0)
        return -1;
    errno = 0;
    v = strtol(spec + n, &end, 10);
    if (errno || end == spec + n || *end || v < 0)
        return -1;
    return v;
}

/* TDHOOK_TEST_JOB lets the integration tests make an attempt slow or make it
 * fail: "sleep=MS", "retry=N" (the first N attempts fail for now), "fail"
 * (fails for good).  Returns 1 when it decided the attempt. */
static int
jobs_test_hook(const job_t *job, job_outcome_t *out, job_rc_t *rc)
{
    const char *spec = getenv("TDHOOK_TEST_JOB");
    long v;

    if (!spec || !*spec)
        return 0;
    if ((v = jobs_test_number(spec, "sleep=")) >= 0) {
        struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return 0;
    }
    if ((v = jobs_test_number(spec, "retry=")) >= 0 && job->attempts <= v) {
        out->error = xasprintf("test: attempt %d fails for now", job->attempts);
        *rc = JOB_RC_RETRY;
        return 1;
    }
    if (strcmp(spec, "fail") == 0) {
        out->error = xstrdup("test: this job fails for good");
        *rc = JOB_RC_FAIL;
        return 1;
    }
    return 0;
}

job_rc_t
jobs_run(const config_t *cfg, const job_t *job, job_outcome_t *out)
{
    job_rc_t rc = JOB_RC_OK;

    (void)cfg;
    out->result = NULL;
    out->error = NULL;
    out->retry_after_ms = -1;
    if (!jobs_kind_known(job->kind)) {
        out->error = xasprintf("unknown job kind \"%s\"", job->kind);
        return JOB_RC_FAIL;
    }
    if (jobs_test_hook(job, out, &rc))
        return rc;
    /* The handlers of the jobs arrive with their own modules; until then an
     * attempt records what was received. */
    out->result = json_object_new_object();
    json_object_object_add(out->result, "received", json_object_get(job->payload));
    json_object_object_add(out->result, "note",
                           json_object_new_string("accepted; this build does not run this kind of job yet"));
    return JOB_RC_OK;
}

int
jobs_run_next(const config_t *cfg, queue_t *q, long *wait_ms)
{
    job_t *job = NULL;
    job_outcome_t out;
    job_status_t status = JOB_RETRYING;
    job_rc_t rc;
    char kind[sizeof job->kind];
    char id[QUEUE_ID_MAX];
    int qrc;

    qrc = queue_claim(q, &job, wait_ms);
    if (qrc == QUEUE_EMPTY)
        return 0;
    if (qrc != QUEUE_OK)
        return -1;
    snprintf(kind, sizeof kind, "%s", job->kind);
    snprintf(id, sizeof id, "%s", job->id);
    log_set_request(id);
    log_info("%s job: attempt %d", kind, job->attempts);
    rc = jobs_run(cfg, job, &out);
    switch (rc) {
    case JOB_RC_OK:
        qrc = queue_done(q, job, out.result);
        metrics_job(kind, OUTCOME_DONE);
        log_info("%s job done", kind);
        break;
    case JOB_RC_RETRY:
        qrc = queue_retry(q, job, out.error, out.retry_after_ms, &status);
        if (status == JOB_DEAD) {
            metrics_job(kind, OUTCOME_DEAD);
            log_error("%s job failed and has no attempts left, now a dead letter: %s", kind, out.error);
        } else {
            metrics_job(kind, OUTCOME_RETRY);
            log_warn("%s job failed, will retry: %s", kind, out.error);
        }
        break;
    default:
        qrc = queue_fail(q, job, out.error);
        metrics_job(kind, OUTCOME_DEAD);
        log_error("%s job failed for good, now a dead letter: %s", kind, out.error);
        break;
    }
    if (qrc != QUEUE_OK)
        log_error("could not record the outcome of job %s (it will run again)", id);
    json_object_put(out.result);
    free(out.error);
    log_set_request(NULL);
    return 1;
}
