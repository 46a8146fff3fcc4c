/* The durable job queue under state_dir.
 *
 * Layout (all under state_dir):
 *   tmp/          jobs being written; renamed into queue/ once fsync'ed
 *   queue/ID.job  pending jobs, JSON, rewritten by write+fsync+rename
 *   queue/ID.N.jobs  a group file: N new jobs an HTTP worker's journal
 *                 stored at once, split into job files by whoever reads
 *                 queue/ (claim, get, foreach, requeue, drop, a replay)
 *   lock/ID       a job's claim: flock(LOCK_EX) held by the runner while it
 *                 works; the kernel drops it when the runner dies, so a
 *                 crashed job is claimed again
 *   done/ID.job   finished jobs with their result, kept for keep_done
 *   dead/ID.job   dead letters with their last error
 *   idem/HASH     idempotency keys (Idempotency-Key, webhook-id), 24 h
 *   journal/N.wal the write-ahead journal of HTTP worker N of a server
 *   journal/checkpoint  per worker, the last commit known to be durable
 *                 in the files above
 *
 * Job ids are 24 characters [0-9a-f-], time-ordered, so a directory listing
 * sorted by name is the order of arrival.  Every function is safe to call
 * from several processes on the same state_dir at once. */
#ifndef TDHOOK_QUEUE_H
#define TDHOOK_QUEUE_H

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

#define QUEUE_ID_MAX 40
#define QUEUE_SLOTS 256   /* journals of one server at most */

typedef enum {
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_DONE,
    JOB_RETRYING,
    JOB_DEAD
} job_status_t;

typedef struct {
    char id[QUEUE_ID_MAX];
    char kind[32];
    json_object *payload;   /* owned by the job */
    int attempts;           /* attempts started so far */
    job_status_t status;
    long long created_ms;   /* unix time in ms */
    long long not_before_ms;
    char *last_error;       /* allocated or NULL */
    json_object *result;    /* owned by the job or NULL */
} job_t;

typedef struct {
    int max_jobs;            /* pending jobs at most; more is QUEUE_EFULL */
    int max_attempts;        /* then a failing job becomes a dead letter */
    long retry_base_ms;      /* first backoff; doubled each attempt */
    long retry_max_ms;       /* backoff cap */
    long keep_done_ms;       /* how long finished jobs stay readable */
} queue_limits_t;

typedef struct queue queue_t;

#define QUEUE_OK 0
#define QUEUE_EIO 1       /* state_dir not writable, disk full, fsync failed */
#define QUEUE_EFULL 2     /* max_jobs pending */
#define QUEUE_ENOENT 3    /* no such job */
#define QUEUE_EMPTY 4     /* queue_claim: nothing is due */
#define QUEUE_EINVAL 5    /* a malformed id, a job in the wrong state */

/* Opens (and creates) the queue directories.  Allocated, free with
 * queue_close(); on failure NULL and *errstr allocated. */
queue_t *queue_open(const char *state_dir, const queue_limits_t *limits, char **errstr);
void queue_close(queue_t *q);

/* Stores a new job durably (written, fsync'ed, renamed, directory fsync'ed;
 * or committed to the worker's journal) before it returns (see
 * queue_enqueue_async() for the worker's way).  payload is
 * borrowed.  With an idempotency key seen in the last 24 h nothing is
 * queued, *duplicate is set to 1 and id is the first job's.  id must hold
 * QUEUE_ID_MAX bytes.  QUEUE_EFULL, QUEUE_EIO. */
int queue_enqueue(queue_t *q, const char *kind, json_object *payload,
                  const char *idem_key, char *id, int *duplicate);

/* What an enqueue's end is told: QUEUE_OK with the job's id (the first
 * job's, duplicate 1, for a key seen before), or QUEUE_EFULL, QUEUE_EIO,
 * QUEUE_EINVAL with id NULL.  id is valid during the call only. */
typedef void (*queue_done_fn)(int rc, const char *id, int duplicate, void *arg);

/* As queue_enqueue(), but in an HTTP worker with a journal the calling
 * thread does not wait for the disk: done is called once the job is
 * durable, by whichever thread writes its journal group, maybe this one
 * before it returns.  Everywhere else done is called before it returns.
 * done is always called, exactly once. */
void queue_enqueue_async(queue_t *q, const char *kind, json_object *payload,
                         const char *idem_key, queue_done_fn done, void *arg);

/* Called once by a server before it forks: its processes share the count
 * of queue/ (so max_jobs holds exactly) and what queue_journal() and
 * queue_checkpoint() need.  CGI and the CLI go without. */
void queue_share_sync(void);

/* HTTP worker `slot` (0 to QUEUE_SLOTS-1) of a server, after
 * queue_share_sync(): from now on an enqueue commits each new job to
 * state_dir/journal/<slot>.wal, in one durable write with the jobs that
 * arrive with it, and writes their files (one group file for several)
 * without fsync; the job is still durable before it is reported.  First it
 * splits any group files and writes again whatever the journal holds past
 * the last checkpoint and the disk does not (a crash of this worker or of
 * the machine).  0, or -1 when the journal cannot be used (logged; enqueue
 * then fsyncs every file). */
int queue_journal(queue_t *q, int slot);

/* The server's master, once it has reaped HTTP worker `slot` (pid): the
 * enqueues that worker had in flight no longer hold a recount up. */
void queue_worker_gone(int slot, pid_t pid);

/* The server's master, about once a second and once more at the end: when
 * workers have stored jobs since the last time, one syncfs() makes their
 * files durable and journal/checkpoint records how far, so a worker that
 * starts replays only what came later.  0 or -1 (logged). */
int queue_checkpoint(queue_t *q);

/* 1 when a job can be written now (for /healthz). */
int queue_writable(queue_t *q);

/* Reads a job wherever it is; status says where (and JOB_RUNNING while a
 * runner holds its claim).  *out allocated, free with job_free().
 * QUEUE_ENOENT, QUEUE_EINVAL (bad id). */
int queue_get(queue_t *q, const char *id, job_t **out);

/* Claims the oldest due job for this process and counts the attempt.
 * QUEUE_EMPTY when none is due; then *wait_ms (if not NULL) is how long until
 * the next one is, or -1 when the queue is empty. */
int queue_claim(queue_t *q, job_t **out, long *wait_ms);

/* Ends a claimed attempt.  Each frees job.
 *  done:  the result (borrowed) is kept in done/.
 *  retry: back to queue/ after retry_after_ms (< 0: exponential backoff with
 *         jitter), or to dead/ when max_attempts are used up; returns the new
 *         status (JOB_RETRYING or JOB_DEAD) in *status if not NULL.
 *  fail:  straight to dead/ with the error. */
int queue_done(queue_t *q, job_t *job, json_object *result);
int queue_retry(queue_t *q, job_t *job, const char *error, long retry_after_ms,
                job_status_t *status);
int queue_fail(queue_t *q, job_t *job, const char *error);
/* As queue_retry(), but the job keeps being tried until it is lifetime_ms
 * old, however many attempts that takes (mail: an SMTP outage delays mail,
 * never loses it). */
int queue_retry_for(queue_t *q, job_t *job, const char *error, long retry_after_ms,
                    long long lifetime_ms, job_status_t *status);

/* Calls fn for each job (pending, then dead, then done), oldest first. */
int queue_foreach(queue_t *q, int (*fn)(const job_t *job, void *arg), void *arg);
/* A dead (or pending) job back to the queue, due now, attempts reset. */
int queue_requeue(queue_t *q, const char *id);
/* Removes a job wherever it is; QUEUE_ENOENT. */
int queue_drop(queue_t *q, const char *id);

size_t queue_depth(queue_t *q);
size_t queue_dead_count(queue_t *q);
/* Removes finished jobs older than keep_done and idempotency keys older than
 * 24 h.  Cheap enough to call once a minute. */
void queue_prune(queue_t *q);
/* Sleeps until a job may have arrived (inotify on queue/) or max_ms passed,
 * or a signal arrived. */
void queue_wait(queue_t *q, long max_ms);

const char *job_status_name(job_status_t status);
/* {"job","kind","status","attempts","result"|"error"}; allocated, put once. */
json_object *job_to_json(const job_t *job);
void job_free(job_t *job);

#endif
