/* Claims: a runner flock()s lock/ID; done, failed and retried jobs, dead
 * letters, backoff with jitter. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util/log.h"
#include "core/util/xalloc.h"
#include "core/queue/queue_private.h"

/* --- claims --------------------------------------------------------------- */

/* Takes the claim lock of id.  QUEUE_OK with *fd_out, LOCK_BUSY, QUEUE_EIO. */
int
lock_acquire(const queue_t *q, const char *id, int *fd_out)
{
    char *path = lock_path(q, id);
    int tries, rc = LOCK_BUSY;

    for (tries = 0; tries < 8; tries++) {
        struct stat a, b;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0) {
            log_error("queue: cannot open %s: %s", path, strerror(errno));
            rc = QUEUE_EIO;
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB)) {
            int e = errno;
            close(fd);
            if (e == EINTR)
                continue;
            if (e != EWOULDBLOCK) {
                log_error("queue: cannot lock %s: %s", path, strerror(e));
                rc = QUEUE_EIO;
            }
            break;
        }
        /* A holder unlinks lock/ID before it lets go: make sure the file we
         * locked is still the one of that name. */
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0
            && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            *fd_out = fd;
            rc = QUEUE_OK;
            break;
        }
        close(fd);
    }
    free(path);
    return rc;
}

void
lock_release(const queue_t *q, const char *id, int fd, int remove)
{
    if (remove) {
        char *path = lock_path(q, id);
        unlink(path);
        free(path);
    }
    close(fd);
}

/* 1 when some open file description holds the claim of id. */
int
lock_held(const queue_t *q, const char *id)
{
    char *path = lock_path(q, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int held = 0;

    free(path);
    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
        flock(fd, LOCK_UN);
    else if (errno == EWOULDBLOCK)
        held = 1;
    close(fd);
    return held;
}

static void
claim_add(queue_t *q, const char *id, int fd)
{
    if (q->nclaims == q->aclaims) {
        q->aclaims = q->aclaims ? 2 * q->aclaims : 4;
        q->claims = xrealloc(q->claims, q->aclaims * sizeof *q->claims);
    }
    snprintf(q->claims[q->nclaims].id, QUEUE_ID_MAX, "%s", id);
    q->claims[q->nclaims].fd = fd;
    q->nclaims++;
}

/* Removes the claim of id from q; its lock fd, or -1 when q holds none. */
static int
claim_take(queue_t *q, const char *id)
{
    size_t i;

    for (i = 0; i < q->nclaims; i++) {
        if (strcmp(q->claims[i].id, id) == 0) {
            int fd = q->claims[i].fd;
            q->claims[i] = q->claims[q->nclaims - 1];
            q->nclaims--;
            return fd;
        }
    }
    return -1;
}

/* Moves an unreadable job file out of queue/ so it stops blocking. */
static void
quarantine(const queue_t *q, const char *id)
{
    char *from = job_path(q, QDIR_QUEUE, id);
    char *to = xasprintf("%s/%s.corrupt", q->dirs[QDIR_DEAD], id);

    if (rename(from, to) == 0)
        log_error("queue: job %s is corrupt, moved to %s", id, to);
    free(from);
    free(to);
}

int
queue_claim(queue_t *q, job_t **out, long *wait_ms)
{
    char **ids = NULL;
    size_t n = 0, i;
    long long now = now_ms(), next = -1;
    int busy = 0, rc = QUEUE_EMPTY;

    *out = NULL;
    /* Watch before scanning, so a job that arrives after the scan wakes the
     * queue_wait() that follows. */
    inotify_ensure(q);
    groups_split(q);
    if (ids_list(q, QDIR_QUEUE, &ids, &n))
        return QUEUE_EIO;
    for (i = 0; i < n; i++) {
        job_t *job = NULL;
        int fd = -1, r;

        r = job_load(q, QDIR_QUEUE, ids[i], &job);
        if (r == LOAD_CORRUPT)
            quarantine(q, ids[i]);
        if (r)
            continue;
        if (job->not_before_ms > now) {
            if (next < 0 || job->not_before_ms < next)
                next = job->not_before_ms;
            job_free(job);
            continue;
        }
        job_free(job);
        job = NULL;

        r = lock_acquire(q, ids[i], &fd);
        if (r == LOCK_BUSY) {
            busy = 1;
            continue;
        }
        if (r) {
            rc = r;
            break;
        }
        /* Read again under the lock: the previous runner may have finished
         * or rescheduled it since. */
        r = job_load(q, QDIR_QUEUE, ids[i], &job);
        if (r == QUEUE_ENOENT) {
            lock_release(q, ids[i], fd, 1);
            continue;
        }
        if (r) {
            lock_release(q, ids[i], fd, 1);
            if (r == LOAD_CORRUPT)
                quarantine(q, ids[i]);
            continue;
        }
        if (job->not_before_ms > now_ms()) {
            if (next < 0 || job->not_before_ms < next)
                next = job->not_before_ms;
            lock_release(q, ids[i], fd, 1);
            job_free(job);
            continue;
        }
        /* Count the attempt before it starts, so a kill -9 counts too. */
        job->attempts++;
        if (job_store(q, QDIR_QUEUE, job, 0)) {
            lock_release(q, ids[i], fd, 1);
            job_free(job);
            rc = QUEUE_EIO;
            break;
        }
        job->status = JOB_RUNNING;
        claim_add(q, job->id, fd);
        *out = job;
        rc = QUEUE_OK;
        break;
    }
    ids_free(ids, n);
    if (rc == QUEUE_EMPTY && wait_ms) {
        long long w = -1;
        if (next >= 0)
            w = next > now ? next - now : 0;
        /* Jobs claimed by others come back without an event when their
         * runner dies: look again now and then. */
        if (busy && (w < 0 || w > BUSY_RECHECK_MS))
            w = BUSY_RECHECK_MS;
        *wait_ms = w > LONG_MAX ? LONG_MAX : (long)w;
    }
    return rc;
}

/* Ends a claim by moving the job to done/ or dead/.  Frees job. */
static int
claim_finish(queue_t *q, job_t *job, int dir, const char *error,
             json_object *result)
{
    int fd = claim_take(q, job->id);
    int rc = QUEUE_OK;

    if (fd < 0) {
        log_error("queue: job %s is not claimed here", job->id);
        rc = QUEUE_EINVAL;
        goto out;
    }
    if (error) {
        free(job->last_error);
        job->last_error = xstrdup(error);
    }
    if (result) {
        json_object_put(job->result);
        job->result = json_object_get(result);
    }
    rc = job_store(q, dir, job, now_ms());
    if (rc == QUEUE_EINVAL && job->result) {
        /* Keep the outcome without the oversized result. */
        json_object_put(job->result);
        job->result = NULL;
        free(job->last_error);
        job->last_error = xstrdup("result too large to keep");
        rc = job_store(q, dir, job, now_ms());
    }
    if (rc) {
        /* Still in queue/: the next claim runs it again. */
        lock_release(q, job->id, fd, 1);
        goto out;
    }
    depth_lock(q, LOCK_SH);
    if (job_unlink(q, QDIR_QUEUE, job->id) && errno != ENOENT)
        rc = QUEUE_EIO;
    else if (queue_sync)
        __atomic_sub_fetch(&queue_sync->depth, 1, __ATOMIC_ACQ_REL);
    depth_lock(q, LOCK_UN);
    lock_release(q, job->id, fd, 1);
    q->depth_ms = 0;
out:
    job_free(job);
    return rc;
}

int
queue_done(queue_t *q, job_t *job, json_object *result)
{
    if (!job)
        return QUEUE_EINVAL;
    return claim_finish(q, job, QDIR_DONE, NULL, result);
}

int
queue_fail(queue_t *q, job_t *job, const char *error)
{
    if (!job)
        return QUEUE_EINVAL;
    return claim_finish(q, job, QDIR_DEAD, error ? error : "failed", NULL);
}

/* Full jitter between half and all of base * 2^(attempts-1), capped. */
static long
backoff_ms(const queue_limits_t *l, int attempts)
{
    long base = l->retry_base_ms > 0 ? l->retry_base_ms : 1;
    long max = l->retry_max_ms > 0 ? l->retry_max_ms : base;
    long d = base, lo;
    int i;

    for (i = 1; i < attempts && d < max; i++)
        d = d > LONG_MAX / 2 ? LONG_MAX : 2 * d;
    if (d > max)
        d = max;
    lo = d / 2;
    return lo + (long)(random_u64() % ((unsigned long long)(d - lo) + 1));
}

static int
retry_job(queue_t *q, job_t *job, const char *error, long retry_after_ms, int exhausted,
          job_status_t *status)
{
    long delay;
    int fd, rc;

    if (exhausted) {
        rc = claim_finish(q, job, QDIR_DEAD, error ? error : "failed", NULL);
        if (status && rc == QUEUE_OK)
            *status = JOB_DEAD;
        return rc;
    }
    fd = claim_take(q, job->id);
    if (fd < 0) {
        log_error("queue: job %s is not claimed here", job->id);
        job_free(job);
        return QUEUE_EINVAL;
    }
    if (retry_after_ms < 0)
        delay = backoff_ms(&q->limits, job->attempts);
    else
        delay = retry_after_ms < RETRY_AFTER_MAX_MS ? retry_after_ms : RETRY_AFTER_MAX_MS;
    job->not_before_ms = now_ms() + delay;
    if (error) {
        free(job->last_error);
        job->last_error = xstrdup(error);
    }
    rc = job_store(q, QDIR_QUEUE, job, 0);
    lock_release(q, job->id, fd, 1);
    if (status && rc == QUEUE_OK)
        *status = JOB_RETRYING;
    job_free(job);
    return rc;
}

int
queue_retry(queue_t *q, job_t *job, const char *error, long retry_after_ms,
            job_status_t *status)
{
    if (!job)
        return QUEUE_EINVAL;
    return retry_job(q, job, error, retry_after_ms, job->attempts >= q->limits.max_attempts,
                     status);
}

int
queue_retry_for(queue_t *q, job_t *job, const char *error, long retry_after_ms,
                long long lifetime_ms, job_status_t *status)
{
    if (!job)
        return QUEUE_EINVAL;
    return retry_job(q, job, error, retry_after_ms, now_ms() - job->created_ms > lifetime_ms,
                     status);
}
