#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/clients/transport.h"
#include "core/jobs/jobs.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/outlook.h"
#include "core/jobs/reservation.h"
#include "core/jobs/stock.h"
#include "core/jobs/texts.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"

/* How long a mail is tried before it becomes a dead letter: 5 days. */
#define JOBS_MAIL_LIFETIME_MS (5LL * 24 * 3600 * 1000)
#define JOBS_LATER_LIFETIME_MS (3600LL * 1000)   /* a job that is not due yet, at most */

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

/* TDHOOK_TEST_JOB (a test seam) stands in for the real work in the queue's own tests:
 * "ok" (done at once), "sleep=MS" (done after MS), "retry=N" (the first N
 * attempts fail for now, then done), "fail" (fails for good).  Set, it
 * decides every attempt; returns 1 then. */
static int
jobs_test_hook(const job_t *job, job_outcome_t *out, job_rc_t *rc)
{
    const char *spec = testseam_str("TDHOOK_TEST_JOB");
    long v;

    if (!spec || !*spec)
        return 0;
    *rc = JOB_RC_OK;
    if ((v = jobs_test_number(spec, "sleep=")) >= 0) {
        transport_sleep_ms(v);
    } else if ((v = jobs_test_number(spec, "retry=")) >= 0 && job->attempts <= v) {
        out->error = xasprintf("test: attempt %d fails for now", job->attempts);
        *rc = JOB_RC_RETRY;
        return 1;
    } else if (strcmp(spec, "fail") == 0) {
        out->error = xstrdup("test: this job fails for good");
        *rc = JOB_RC_FAIL;
        return 1;
    }
    out->result = json_object_new_object();
    json_object_object_add(out->result, "test", json_object_new_string(spec));
    json_object_object_add(out->result, "received", json_object_get(job->payload));
    return 1;
}

/* Each kind's run returns its module's own code (STOCK_*, RESERVATION_*,
 * SMTP_*); the kind table says what that code is worth to the queue. */
typedef int (*jobs_run_fn)(const config_t *cfg, queue_t *q, const job_t *job,
                           job_outcome_t *out);

static int
jobs_stock_check(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    return stock_job(cfg, q, job->payload, &out->result, &out->error, &out->retry_after_ms);
}

static int
jobs_reservation(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    json_object *v;
    const char *key = NULL;

    if (json_object_object_get_ex(job->payload, "id", &v))
        key = json_object_get_string(v);
    else if (json_object_object_get_ex(job->payload, "number", &v))
        key = json_object_get_string(v);
    if (!key || !*key) {
        out->error = xstrdup("the job names no reservation");
        return RESERVATION_EFAIL;
    }
    return reservation_sync(cfg, q, key, 0, &out->result, &out->error, &out->retry_after_ms);
}

static int
jobs_reconcile(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    json_object *v;
    int days = cfg->reservations.reconcile_days;

    if (json_object_object_get_ex(job->payload, "days", &v))
        days = json_object_get_int(v);
    return reservation_reconcile(cfg, q, days, 0, &out->result, &out->error,
                                 &out->retry_after_ms);
}

static int
jobs_mail(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    char *err = NULL;
    int rc = mailjob_send(cfg, job->payload, &err);

    (void)q;
    if (rc == SMTP_OK) {
        out->result = json_object_new_object();
        json_object_object_add(out->result, "sent", json_object_new_boolean(1));
        if (err)
            json_object_object_add(out->result, "warning", json_object_new_string(err));
        free(err);
        return rc;
    }
    out->error = err ? err : xstrdup("mail could not be sent");
    return rc;
}

static int
jobs_outlook_pull(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    json_object *v;
    const char *room = NULL;
    int full = 0;

    if (json_object_object_get_ex(job->payload, "room", &v))
        room = json_object_get_string(v);
    if (json_object_object_get_ex(job->payload, "full", &v))
        full = json_object_get_boolean(v);
    return outlook_pull(cfg, q, room && *room ? room : NULL, full, 0, &out->result, &out->error,
                        &out->retry_after_ms);
}

static int
jobs_outlook_subs(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    (void)job;
    return outlook_subs_sync(cfg, q, &out->result, &out->error, &out->retry_after_ms);
}

static int
jobs_outlook_lifecycle(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    json_object *id, *event;

    if (!json_object_object_get_ex(job->payload, "subscription", &id) ||
        !json_object_object_get_ex(job->payload, "event", &event)) {
        out->error = xstrdup("the job names no subscription or event");
        return OUTLOOK_EFAIL;
    }
    return outlook_lifecycle(cfg, q, json_object_get_string(id), json_object_get_string(event),
                             &out->result, &out->error, &out->retry_after_ms);
}

/* The kinds of job: what runs them, which of their codes is done and which
 * is worth another try (any other gives up: a dead letter). */
static const struct {
    const char *kind;
    jobs_run_fn run;
    int ok;
    int retry;
    int later;       /* -1: none */
} jobs_kinds[] = {
    {"stock-check", jobs_stock_check, STOCK_OK, STOCK_ERETRY, -1},
    {"reservation", jobs_reservation, RESERVATION_OK, RESERVATION_ERETRY, -1},
    {"reconcile", jobs_reconcile, RESERVATION_OK, RESERVATION_ERETRY, -1},
    {"mail", jobs_mail, SMTP_OK, SMTP_ERETRY, -1},
    {OUTLOOK_KIND_PULL, jobs_outlook_pull, OUTLOOK_OK, OUTLOOK_ERETRY, OUTLOOK_ELATER},
    {OUTLOOK_KIND_SUBS, jobs_outlook_subs, OUTLOOK_OK, OUTLOOK_ERETRY, -1},
    {OUTLOOK_KIND_LIFECYCLE, jobs_outlook_lifecycle, OUTLOOK_OK, OUTLOOK_ERETRY, -1},
};

/* The row of kind, or -1. */
static int
jobs_kind_index(const char *kind)
{
    for (size_t i = 0; i < sizeof jobs_kinds / sizeof *jobs_kinds; i++)
        if (strcmp(kind, jobs_kinds[i].kind) == 0)
            return (int)i;
    return -1;
}

int
jobs_kind_known(const char *kind)
{
    return jobs_kind_index(kind) >= 0;
}

job_rc_t
jobs_verdict(const char *kind, int code)
{
    int k = jobs_kind_index(kind);

    if (k < 0)
        return JOB_RC_FAIL;
    if (code == jobs_kinds[k].ok)
        return JOB_RC_OK;
    if (code == jobs_kinds[k].later)
        return JOB_RC_LATER;
    return code == jobs_kinds[k].retry ? JOB_RC_RETRY : JOB_RC_FAIL;
}

job_rc_t
jobs_run(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out)
{
    job_rc_t rc = JOB_RC_OK;
    int k = jobs_kind_index(job->kind);

    out->result = NULL;
    out->error = NULL;
    out->retry_after_ms = -1;
    if (k < 0) {
        out->error = xasprintf("unknown job kind \"%s\"", job->kind);
        return JOB_RC_FAIL;
    }
    if (jobs_test_hook(job, out, &rc))
        return rc;
    return jobs_verdict(job->kind, jobs_kinds[k].run(cfg, q, job, out));
}

/* Tells admin_mail about a dead letter, through the queue like any mail.
 * A dead mail job is only logged: mailing about it could loop. */
static void
jobs_mail_dead(const config_t *cfg, queue_t *q, const char *kind, const char *id,
               const char *error)
{
    char *subject, *text, *message;
    mime_msg_t msg;

    if (strcmp(kind, "mail") == 0 || cfg->admin_mail.n == 0)
        return;
    subject = text_format(T_DEAD_SUBJECT, "kind", kind, "id", id, NULL);
    text = text_format(T_DEAD_BODY, "kind", kind, "id", id, "error",
                       error ? error : text_get(T_DEAD_NO_REASON), NULL);
    msg = (mime_msg_t){cfg->mail.from, cfg->admin_mail.v, cfg->admin_mail.n, subject, text,
                       NULL, NULL, 0};
    message = mime_build(&msg);
    if (mailjob_enqueue(q, cfg->admin_mail.v, cfg->admin_mail.n, message, NULL) != QUEUE_OK)
        log_error("could not queue the dead-letter mail for job %s", id);
    free(message);
    free(text);
    free(subject);
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
    rc = jobs_run(cfg, q, job, &out);
    switch (rc) {
    case JOB_RC_OK:
        qrc = queue_done(q, job, out.result);
        metrics_job(kind, OUTCOME_DONE);
        log_info("%s job done", kind);
        break;
    case JOB_RC_LATER:
        /* not a failure: due again when the hint says, for up to an hour */
        qrc = queue_retry_for(q, job, out.error, out.retry_after_ms, JOBS_LATER_LIFETIME_MS,
                              &status);
        log_info("%s job: not yet: %s", kind, out.error ? out.error : "");
        break;
    case JOB_RC_RETRY:
        /* Mail is tried for days, as an MTA would; the rest by attempts. */
        if (strcmp(kind, "mail") == 0)
            qrc = queue_retry_for(q, job, out.error, out.retry_after_ms, JOBS_MAIL_LIFETIME_MS,
                                  &status);
        else
            qrc = queue_retry(q, job, out.error, out.retry_after_ms, &status);
        if (status == JOB_DEAD) {
            metrics_job(kind, OUTCOME_DEAD);
            log_error("%s job failed and has no attempts left, now a dead letter: %s", kind, out.error);
            jobs_mail_dead(cfg, q, kind, id, out.error);
        } else {
            metrics_job(kind, OUTCOME_RETRY);
            log_warn("%s job failed, will retry: %s", kind, out.error);
        }
        break;
    default:
        qrc = queue_fail(q, job, out.error);
        metrics_job(kind, OUTCOME_DEAD);
        log_error("%s job failed for good, now a dead letter: %s", kind, out.error);
        jobs_mail_dead(cfg, q, kind, id, out.error);
        break;
    }
    if (qrc != QUEUE_OK)
        log_error("could not record the outcome of job %s (it will run again)", id);
    json_object_put(out.result);
    free(out.error);
    log_set_request(NULL);
    return 1;
}
