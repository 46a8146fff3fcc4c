/* What each kind of job does.  The queue stores and schedules jobs; this
 * module runs one attempt and says how it went. */
#ifndef TDHOOK_JOBS_H
#define TDHOOK_JOBS_H

#include "config/config.h"
#include "core/queue/queue.h"

typedef enum {
    JOB_RC_OK,      /* done; result set */
    JOB_RC_RETRY,   /* failed for now (network, 429, 5xx): try again */
    JOB_RC_LATER,   /* not failed, not due yet (a room still settling): again at retry_after */
    JOB_RC_FAIL     /* failed for good (4xx that retrying cannot fix) */
} job_rc_t;

typedef struct {
    json_object *result;   /* JOB_RC_OK: allocated, put once */
    char *error;           /* RETRY/FAIL: allocated, no secrets */
    long retry_after_ms;   /* RETRY: from Retry-After etc., -1 for backoff */
} job_outcome_t;

/* 1 when kind is one the hooks may queue ("stock-check", "reservation",
 * "reconcile", "mail"). */
int jobs_kind_known(const char *kind);
/* What a kind's own code (STOCK_*, RESERVATION_*, SMTP_*) is worth to the
 * queue: done, another try later, or a dead letter.  An unknown kind or
 * code gives up. */
job_rc_t jobs_verdict(const char *kind, int code);

/* Runs one attempt of job; q is where follow-up jobs (mail) go.  out is
 * filled; the caller frees its members. */
job_rc_t jobs_run(const config_t *cfg, queue_t *q, const job_t *job, job_outcome_t *out);

/* Claims one due job, runs one attempt and records the outcome in the
 * queue, the log and the metrics.  A job that becomes a dead letter is
 * mailed to admin_mail (through the queue).  Returns 1 when a job ran, 0 when none was
 * due (then *wait_ms as queue_claim() says), -1 on a queue error. */
int jobs_run_next(const config_t *cfg, queue_t *q, long *wait_ms);

#endif
