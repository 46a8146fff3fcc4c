/* The durable job queue: one JSON file per job, moved between directories
 * by write+fsync+rename, claimed with flock() on a per-job lock file.
 *
 * The HTTP workers of a server take a faster way in: each writes a new job
 * (and its idempotency key) ahead into its own journal (core/queue/journal.c),
 * where the jobs arriving together share one durable write, and then the
 * files without any fsync.  The
 * master makes those files durable with one syncfs() about once a second
 * and records how far that reaches in journal/checkpoint; a worker that
 * starts replays what its journal holds beyond that point, so a job that
 * was answered 202 survives a crash of the worker or of the machine.
 *
 * The claim protocol: a runner opens lock/ID, takes LOCK_EX|LOCK_NB and then
 * checks that the file it locked is still the one named lock/ID (a finishing
 * runner unlinks lock/ID while it holds it, so a process that opened the old
 * file just before would otherwise lock an orphan).  The kernel drops the
 * lock of a runner that dies, and the job, still in queue/, is claimed
 * again. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>

#include "core/util/log.h"
#include "core/util/xalloc.h"

#include "core/queue/queue_private.h"

int
inotify_ensure(queue_t *q)
{
    if (q->inotify_fd >= 0)
        return 0;
    q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (q->inotify_fd < 0)
        return -1;
    if (inotify_add_watch(q->inotify_fd, q->dirs[QDIR_QUEUE], IN_MOVED_TO | IN_CREATE) < 0) {
        log_warn("queue: cannot watch %s: %s", q->dirs[QDIR_QUEUE], strerror(errno));
        close(q->inotify_fd);
        q->inotify_fd = -1;
        return -1;
    }
    return 0;
}

/* --- the public functions ------------------------------------------------- */

queue_t *
queue_open(const char *state_dir, const queue_limits_t *limits, char **errstr)
{
    queue_t *q = NULL;
    int i;

    if (!state_dir || !*state_dir) {
        *errstr = xstrdup("queue: no state_dir");
        return NULL;
    }
    if (mkdir_p(state_dir)) {
        *errstr = xasprintf("queue: cannot create %s: %s", state_dir, strerror(errno));
        return NULL;
    }
    q = xcalloc(1, sizeof *q);
    q->root = xstrdup(state_dir);
    q->limits = *limits;
    q->inotify_fd = -1;
    q->sync_fd = -1;
    q->depth_fd = -1;
    for (i = 0; i < QDIR_COUNT; i++) {
        struct stat st;

        q->dirs[i] = xasprintf("%s/%s", state_dir, qdir_names[i]);
        if (mkdir(q->dirs[i], 0700) && errno != EEXIST) {
            *errstr = xasprintf("queue: cannot create %s: %s", q->dirs[i], strerror(errno));
            queue_close(q);
            return NULL;
        }
        if (stat(q->dirs[i], &st) || !S_ISDIR(st.st_mode)) {
            *errstr = xasprintf("queue: %s is not a directory", q->dirs[i]);
            queue_close(q);
            return NULL;
        }
    }
    if (queue_sync) {
        char *path = xasprintf("%s/sync.lock", q->root);
        q->sync_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        free(path);
        path = xasprintf("%s/depth.lock", q->root);
        q->depth_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        free(path);
    }
    return q;
}

void
queue_close(queue_t *q)
{
    size_t i;
    int d;

    if (!q)
        return;
    /* Claims still held end here; their jobs stay in queue/ and run again. */
    for (i = 0; i < q->nclaims; i++)
        close(q->claims[i].fd);
    free(q->claims);
    if (q->inotify_fd >= 0)
        close(q->inotify_fd);
    if (q->sync_fd >= 0)
        close(q->sync_fd);
    if (q->depth_fd >= 0)
        close(q->depth_fd);
    free(q->checkpoint);
    for (d = 0; d < QDIR_COUNT; d++)
        free(q->dirs[d]);
    free(q->root);
    free(q);
}

void
queue_enqueue_async(queue_t *q, const char *kind, json_object *payload, const char *idem_key,
                    queue_done_fn done, void *arg)
{
    char idem_name[17], id[QUEUE_ID_MAX];
    enqueue_t e = {done, arg, q, 0, -1, ""}, *later;
    job_t job;
    long long now = now_ms();
    char *idem_text = NULL;
    int rc;

    if (!kind || !*kind || strlen(kind) >= sizeof job.kind) {
        done(QUEUE_EINVAL, NULL, 0, arg);
        return;
    }
    if (idem_key && *idem_key) {
        snprintf(idem_name, sizeof idem_name, "%016llx", fnv1a64(idem_key));
        if (idem_lookup(q, idem_name, idem_key, id)) {
            done(QUEUE_OK, id, 1, arg);
            return;
        }
    }
    if (q->limits.max_jobs > 0 && queue_sync) {
        /* One count for every worker of the server; each enqueue takes its
         * place in it first.  A recount (which shuts out every enqueue
         * while it lists queue/) corrects what others changed: once a
         * second near the bound, where it matters, else once a minute. */
        int64_t seen = __atomic_load_n(&queue_sync->depth, __ATOMIC_ACQUIRE);
        long long every = seen + DEPTH_RECOUNT_MARGIN >= q->limits.max_jobs
                              ? DEPTH_CACHE_MS : DEPTH_RECOUNT_FAR_MS;

        if (now - __atomic_load_n(&queue_sync->depth_ms, __ATOMIC_ACQUIRE) > every) {
            depth_lock(q, LOCK_EX);
            if (now - __atomic_load_n(&queue_sync->depth_ms, __ATOMIC_ACQUIRE) > every) {
                recount_begin();
                __atomic_store_n(&queue_sync->depth, (int64_t)ids_count(q, QDIR_QUEUE),
                                 __ATOMIC_RELEASE);
                __atomic_store_n(&queue_sync->depth_ms, (int64_t)now, __ATOMIC_RELEASE);
                recount_end();
            }
            depth_lock(q, LOCK_UN);
        }
        if (q->journal) {
            e.slot = wal.slot;
            count_enter(e.slot);
        } else {
            depth_lock(q, LOCK_SH);
        }
        e.counted = 1;
        if (__atomic_add_fetch(&queue_sync->depth, 1, __ATOMIC_ACQ_REL) > q->limits.max_jobs) {
            rc = QUEUE_EFULL;
            goto end;
        }
        if (test_enqueue_delay_ms() > 0)
            nap_us(test_enqueue_delay_ms() * 1000);
    } else if (q->limits.max_jobs > 0) {
        /* Other processes enqueue too, so the cached count may be low: near
         * the limit, count again, so the bound holds exactly there. */
        if (q->depth_ms == 0 || now - q->depth_ms > DEPTH_CACHE_MS ||
            q->depth + DEPTH_RECOUNT_MARGIN >= (size_t)q->limits.max_jobs) {
            q->depth = ids_count(q, QDIR_QUEUE);
            q->depth_ms = now;
        }
        if (q->depth >= (size_t)q->limits.max_jobs) {
            done(QUEUE_EFULL, NULL, 0, arg);
            return;
        }
    }

    memset(&job, 0, sizeof job);
    id_new(job.id);
    snprintf(job.kind, sizeof job.kind, "%s", kind);
    job.payload = payload;
    job.created_ms = now;
    job.not_before_ms = now;
    job.status = JOB_QUEUED;
    if (idem_key && *idem_key)
        idem_text = xasprintf("%s\t%s", job.id, idem_key);
    memcpy(e.id, job.id, JOB_ID_LEN + 1);
    if (q->journal) {
        later = xmalloc(sizeof *later);
        *later = e;
        rc = journal_store(q, &job, idem_text ? idem_name : NULL, idem_text, later);
        if (rc == QUEUE_PENDING) {
            free(idem_text);
            return;
        }
        free(later);
        goto end;
    }
    rc = job_store(q, QDIR_QUEUE, &job, 0);
    /* Two requests with the same key at the same instant may both miss the
     * lookup above and queue two jobs; that is acceptable because every
     * job's side effects are idempotent.  The job is stored already, so a
     * failure to remember the key is only logged: answering an error now
     * would make the sender retry and queue the job once more. */
    if (rc == QUEUE_OK && idem_text &&
        write_durable(q, QDIR_IDEM, idem_name, idem_text, strlen(idem_text)))
        log_warn("queue: job %s: idempotency key not stored", job.id);
    if (rc == QUEUE_OK && q->depth_ms)
        q->depth++;
end:
    free(idem_text);
    enqueue_end(&e, rc);
}

static void
enqueue_wake(int rc, const char *id, int duplicate, void *arg)
{
    enqueue_wait_t *w = arg;

    w->rc = rc;
    w->duplicate = duplicate;
    if (id)
        memcpy(w->id, id, JOB_ID_LEN + 1);
    /* w may be gone once the store is seen; a wake on a word that is gone
     * is harmless. */
    __atomic_store_n(&w->state, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int
queue_enqueue(queue_t *q, const char *kind, json_object *payload,
              const char *idem_key, char *id, int *duplicate)
{
    enqueue_wait_t w = {0, 0, "", 0};

    queue_enqueue_async(q, kind, payload, idem_key, enqueue_wake, &w);
    while (__atomic_load_n(&w.state, __ATOMIC_ACQUIRE) == 0)
        syscall(SYS_futex, &w.state, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    if (duplicate)
        *duplicate = w.duplicate;
    if (w.rc == QUEUE_OK)
        memcpy(id, w.id, JOB_ID_LEN + 1);
    return w.rc;
}

int
queue_writable(queue_t *q)
{
    /* A health check may come often: the probe (with its fsync) runs at
     * most once a second per process and state_dir, whichever of the
     * process's threads asks. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char *root;
    static long long when;
    static int ok;
    long long now = now_ms();
    int rc;

    pthread_mutex_lock(&mu);
    if (!root || strcmp(root, q->root) != 0 || now - when >= WRITABLE_CACHE_MS) {
        char *path = xasprintf("%s/probe.%ld.%08llx", q->dirs[QDIR_TMP], (long)getpid(),
                               random_u64() & 0xffffffffULL);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        ok = 0;
        if (fd >= 0) {
            ok = write(fd, "x", 1) == 1 && fsync(fd) == 0;
            close(fd);
            if (unlink(path))
                ok = 0;
        }
        free(path);
        free(root);
        root = xstrdup(q->root);
        when = now;
    }
    rc = ok;
    pthread_mutex_unlock(&mu);
    return rc;
}

int
queue_get(queue_t *q, const char *id, job_t **out)
{
    static const int order[] = { QDIR_QUEUE, QDIR_DONE, QDIR_DEAD };
    size_t i;
    int rc = QUEUE_ENOENT, split = 0;

    *out = NULL;
    if (!id_valid(id))
        return QUEUE_EINVAL;
    /* queue/ before done/ and dead/: a job is written to its new folder
     * before it leaves the old one, so this order never misses it.  Not
     * found: it may be in a group file, to be split first. */
again:
    for (i = 0; i < sizeof order / sizeof order[0]; i++) {
        rc = job_load(q, order[i], id, out);
        if (rc == QUEUE_ENOENT)
            continue;
        if (rc == LOAD_CORRUPT)
            rc = QUEUE_EIO;
        if (rc == QUEUE_OK && order[i] == QDIR_QUEUE && lock_held(q, id))
            (*out)->status = JOB_RUNNING;
        break;
    }
    if (rc == QUEUE_ENOENT && !split) {
        split = 1;
        if (groups_split_all(q) > 0)
            goto again;
    }
    return rc;
}

int
queue_foreach(queue_t *q, int (*fn)(const job_t *job, void *arg), void *arg)
{
    static const int order[] = { QDIR_QUEUE, QDIR_DEAD, QDIR_DONE };
    size_t d;
    int rc = QUEUE_OK;

    /* every job, also those still in the journal's group files */
    groups_split_all(q);
    for (d = 0; d < sizeof order / sizeof order[0] && rc == QUEUE_OK; d++) {
        char **ids;
        size_t n, i;

        if (ids_list(q, order[d], &ids, &n))
            return QUEUE_EIO;
        for (i = 0; i < n; i++) {
            job_t *job = NULL;

            if (job_load(q, order[d], ids[i], &job))
                continue;
            if (order[d] == QDIR_QUEUE && lock_held(q, ids[i]))
                job->status = JOB_RUNNING;
            rc = fn(job, arg);
            job_free(job);
            if (rc)
                break;
        }
        ids_free(ids, n);
    }
    return rc;
}

int
queue_requeue(queue_t *q, const char *id)
{
    job_t *job = NULL;
    int fd = -1, from, rc;

    if (!id_valid(id))
        return QUEUE_EINVAL;
    groups_split_all(q);
    from = QDIR_DEAD;
    rc = job_load(q, QDIR_DEAD, id, &job);
    if (rc == QUEUE_ENOENT) {
        /* A pending job: hold its claim so no runner starts it meanwhile. */
        from = QDIR_QUEUE;
        rc = lock_acquire(q, id, &fd);
        if (rc == LOCK_BUSY) {
            rc = QUEUE_EINVAL;
            goto out;
        }
        if (rc)
            goto out;
        rc = job_load(q, QDIR_QUEUE, id, &job);
        if (rc == QUEUE_ENOENT) {
            char *done = job_path(q, QDIR_DONE, id);
            if (path_exists(done))
                rc = QUEUE_EINVAL;
            free(done);
        }
    }
    if (rc == LOAD_CORRUPT)
        rc = QUEUE_EIO;
    if (rc)
        goto out;
    json_object_put(job->result);
    job->result = NULL;
    job->attempts = 0;
    job->not_before_ms = now_ms();
    rc = job_store(q, QDIR_QUEUE, job, 0);
    if (rc)
        goto out;
    if (from == QDIR_DEAD && job_unlink(q, QDIR_DEAD, id) && errno != ENOENT)
        rc = QUEUE_EIO;
    q->depth_ms = 0;
out:
    if (fd >= 0)
        lock_release(q, id, fd, 1);
    job_free(job);
    return rc;
}

int
queue_drop(queue_t *q, const char *id)
{
    static const int dirs[] = { QDIR_QUEUE, QDIR_DEAD, QDIR_DONE };
    size_t i;
    int fd = -1, removed = 0, rc;

    if (!id_valid(id))
        return QUEUE_EINVAL;
    groups_split_all(q);
    rc = lock_acquire(q, id, &fd);
    if (rc == LOCK_BUSY) {
        char *path = job_path(q, QDIR_QUEUE, id);
        int running = path_exists(path);
        free(path);
        if (running)
            return QUEUE_EINVAL;    /* a runner is at it */
    } else if (rc) {
        return rc;
    }
    rc = QUEUE_OK;
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (job_unlink(q, dirs[i], id) == 0)
            removed = 1;
        else if (errno != ENOENT)
            rc = QUEUE_EIO;
    }
    if (fd >= 0)
        lock_release(q, id, fd, 1);
    q->depth_ms = 0;
    if (rc == QUEUE_OK && !removed)
        rc = QUEUE_ENOENT;
    return rc;
}

/* Removes regular files in dir older than max_age_ms (by mtime). */
static void
prune_dir(const queue_t *q, int dir, long long max_age_ms, int dots)
{
    DIR *d = opendir(q->dirs[dir]);
    struct dirent *de;
    long long now = now_ms();

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        /* dots: only the dot files that write_quick() left half written */
        if ((de->d_name[0] == '.') != dots || strcmp(de->d_name, ".") == 0 ||
            strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
            continue;
        if (now - mtime_ms(&st) < max_age_ms)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) && errno != ENOENT)
            log_warn("queue: cannot remove %s/%s: %s", q->dirs[dir], de->d_name, strerror(errno));
    }
    closedir(d);
}

/* Removes lock files of jobs that are no longer pending and not held. */
static void
prune_locks(const queue_t *q)
{
    DIR *d = opendir(q->dirs[QDIR_LOCK]);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char *path;
        int fd, pending;

        if (!id_valid(de->d_name))
            continue;
        path = job_path(q, QDIR_QUEUE, de->d_name);
        pending = path_exists(path);
        free(path);
        if (pending || lock_acquire(q, de->d_name, &fd) != QUEUE_OK)
            continue;
        path = job_path(q, QDIR_QUEUE, de->d_name);
        pending = path_exists(path);
        free(path);
        lock_release(q, de->d_name, fd, !pending);
    }
    closedir(d);
}

void
queue_prune(queue_t *q)
{
    long long keep = q->limits.keep_done_ms > 0 ? q->limits.keep_done_ms : 0;

    prune_dir(q, QDIR_DONE, keep, 0);
    prune_dir(q, QDIR_IDEM, IDEM_TTL_MS, 0);
    prune_dir(q, QDIR_TMP, TMP_TTL_MS, 0);
    prune_dir(q, QDIR_QUEUE, TMP_TTL_MS, 1);
    prune_dir(q, QDIR_IDEM, TMP_TTL_MS, 1);
    prune_locks(q);
}

void
queue_wait(queue_t *q, long max_ms)
{
    int timeout = max_ms < 0 ? -1 : max_ms > INT_MAX ? INT_MAX : (int)max_ms;
    struct pollfd p;

    if (inotify_ensure(q)) {
        poll(NULL, 0, timeout);    /* no inotify: just sleep */
        return;
    }
    p.fd = q->inotify_fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, timeout) > 0) {
        char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(q->inotify_fd, ev, sizeof ev) > 0)
            ;
    }
}
