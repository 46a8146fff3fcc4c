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
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "core/util/buf.h"
#include "core/util/fileio.h"
#include "core/queue/journal.h"
#include "core/util/log.h"
#include "core/queue/queue.h"
#include "core/util/random.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"

#define JOB_ID_LEN 24
#define JOB_FILE_CAP (4u * 1024 * 1024)
#define JOB_JSON_DEPTH 64              /* a payload may nest 32 deep itself */
#define IDEM_TTL_MS (24LL * 3600 * 1000)
#define TMP_TTL_MS (3600LL * 1000)
#define RETRY_AFTER_MAX_MS (24L * 3600 * 1000)
#define DEPTH_CACHE_MS 1000
#define WRITABLE_CACHE_MS 1000
#define DEPTH_RECOUNT_MARGIN 256   /* recount when this close to max_jobs */
#define DEPTH_RECOUNT_FAR_MS 60000L /* and only this often further from it */
#define BUSY_RECHECK_MS 5000L          /* rescan while others hold claims */

/* Internal result of reading a job file: parse error or oversized. */
#define LOAD_CORRUPT 100
/* Internal result of lock_acquire(): someone else holds the claim. */
#define LOCK_BUSY 101

enum { QDIR_TMP, QDIR_QUEUE, QDIR_LOCK, QDIR_DONE, QDIR_DEAD, QDIR_IDEM, QDIR_JOURNAL, QDIR_COUNT };

static const char *const qdir_names[QDIR_COUNT] = {
    "tmp", "queue", "lock", "done", "dead", "idem", "journal"
};

typedef struct {
    char id[QUEUE_ID_MAX];
    int fd;                  /* the flock()ed lock/ID */
} queue_claim_t;

struct queue {
    char *root;
    char *dirs[QDIR_COUNT];
    queue_limits_t limits;
    int inotify_fd;          /* -1 until queue_claim() or queue_wait() */
    size_t depth;            /* cached count of queue/ */
    long long depth_ms;      /* when depth was counted; 0: not valid */
    queue_claim_t *claims;   /* jobs this queue_t has claimed */
    size_t nclaims;
    size_t aclaims;
    int sync_fd;             /* sync.lock: the file syncfs() is called on */
    int depth_fd;            /* depth.lock: shared while queue/ changes, exclusive to count it */
    int journal;             /* enqueue through the process's journal (wal) */
    uint64_t *checkpoint;    /* the master's: per slot, durable up to this seq */
};

/* What the processes of one server share.  NULL outside a server (CGI,
 * the CLI): there every write fsyncs its own file and directory. */
typedef struct {
    int64_t depth;       /* jobs in queue/, shared so the bound holds across workers */
    int64_t depth_ms;    /* when depth was last counted */
    /* Per journal slot: the last commit whose files are written, and the
     * last one the master's syncfs() has made durable. */
    uint64_t written[QUEUE_SLOTS];
    uint64_t synced[QUEUE_SLOTS];
    /* A recount must not run while an enqueue has taken its place in the
     * count but not yet written its file.  The HTTP workers' enqueues say
     * so here, per worker slot (no syscall); everyone else with a shared
     * flock() on depth.lock.  A recount holds depth.lock exclusive, sets
     * `recounting` to its pid and waits for the slots to drain. */
    int32_t readers[QUEUE_SLOTS];
    int32_t recounting;
} queue_sync_t;

static queue_sync_t *queue_sync;

/* What commit_files() works with. */
typedef struct {
    queue_t *q;
    int replay;          /* restore only what the disk lacks, and count it */
    uint64_t durable;    /* replay: the checkpoint, commits up to here need nothing */
    int jobs;            /* replay: job files written again */
    int keys;            /* replay: idempotency keys written again */
    /* Not replaying: the group being applied (see group_write()). */
    buf_t group;         /* a group file's head, then the jobs' entries */
    size_t njobs;
    uint64_t seq0;       /* the group's first commit; they follow one another */
    size_t nseqs;
} commit_files_t;

/* The journal of an HTTP worker process, shared by its threads.  The
 * thread that writes a group of commits also writes their files (apply and
 * group_end, through a queue handle of its own), so one thread at a time
 * creates files: the directory's lock is a spinning one, and threads that
 * spin on it burn the CPU the others need.  A new round starts only when
 * no commit is in flight (journal_make_room()).  `done` marks, by seq, the
 * commits whose files are written (or given up), so `written` (published
 * to the master) only moves past commits that have their files. */
#define WAL_RING 4096            /* far more than threads in flight */

static struct {
    pthread_mutex_t mu;          /* guards slot, written, done */
    journal_t *j;                /* NULL: no journal in this process */
    commit_files_t apply;        /* what the journal applies commits with */
    int slot;
    uint64_t written;
    unsigned char done[WAL_RING];
} wal = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

/* --- small helpers -------------------------------------------------------- */

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
mtime_ms(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static unsigned long long
random_u64(void)
{
    unsigned long long v;

    random_bytes(&v, sizeof v);
    return v;
}

/* Exactly 24 characters of [0-9a-f-]: nothing that can name another path. */
static int
id_valid(const char *id)
{
    size_t i;

    if (!id)
        return 0;
    for (i = 0; i < JOB_ID_LEN; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'))
            return 0;
    }
    return id[JOB_ID_LEN] == '\0';
}

/* Ids from one process are strictly increasing, even within a millisecond
 * or when the clock steps back: the random part then grows by a random step
 * instead of being drawn afresh.  A forked child starts its own sequence. */
static void
id_new(char *id)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static unsigned long long last_ms, last_rand;
    static pid_t last_pid;
    unsigned long long ms = (unsigned long long)now_ms() & 0xffffffffffffULL;
    unsigned long long r;

    pthread_mutex_lock(&mu);
    if (last_pid == log_pid() && ms <= last_ms) {
        ms = last_ms;
        r = last_rand + 1 + (random_u64() & 0xffffffULL);
        if (r > 0xfffffffffffULL) {
            ms++;
            r = random_u64() & 0x7ffffffffffULL;
        }
    } else {
        r = random_u64() & 0x7ffffffffffULL;    /* room to count up */
    }
    last_pid = log_pid();
    last_ms = ms;
    last_rand = r;
    pthread_mutex_unlock(&mu);
    snprintf(id, QUEUE_ID_MAX, "%012llx-%011llx", ms, r);
}

static char *
job_path(const queue_t *q, int dir, const char *id)
{
    return xasprintf("%s/%s.job", q->dirs[dir], id);
}

static char *
lock_path(const queue_t *q, const char *id)
{
    return xasprintf("%s/%s", q->dirs[QDIR_LOCK], id);
}

static int
fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    if (rc) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

static int
path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* Writes data to dir/name through a temporary file renamed into place, so
 * readers never see it half written.  durable: the file is in tmp/ and is
 * fsync'ed, and so is dir after the rename; else (a journal holds the data)
 * it is a dot file beside the name and nothing is synced.  0 or -1 (logged,
 * the temporary file removed). */
static int
write_file(const queue_t *q, int dir, const char *name, const char *data, size_t len,
           int durable)
{
    unsigned long long r = random_u64() & 0xffffffffULL;
    char *tmp = durable ? xasprintf("%s/%s.%ld.%08llx", q->dirs[QDIR_TMP], name,
                                    (long)log_pid(), r)
                        : xasprintf("%s/.%s.%08llx", q->dirs[dir], name, r);
    char *dest = xasprintf("%s/%s", q->dirs[dir], name);
    const char *what = "create";
    const char *where = tmp;
    int fd, created = 0, rc = -1;

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    created = 1;
    what = "write";
    if (fd_pwrite_all(fd, data, len, 0))
        goto out;
    what = "fsync";
    if (durable && fsync(fd))
        goto out;
    what = "close";
    rc = close(fd);
    fd = -1;
    if (rc) {
        rc = -1;
        goto out;
    }
    rc = -1;
    what = "rename";
    where = dest;
    if (rename(tmp, dest))
        goto out;
    created = 0;
    what = "fsync";
    where = q->dirs[dir];
    if (durable && fsync_dir(q->dirs[dir]))
        goto out;
    rc = 0;
out:
    if (rc)
        log_error("queue: cannot %s %s: %s", what, where, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    free(dest);
    return rc;
}

static int
write_durable(const queue_t *q, int dir, const char *name, const char *data, size_t len)
{
    return write_file(q, dir, name, data, len, 1);
}

/* Links the unnamed file fd (O_TMPFILE) in as path.  AT_EMPTY_PATH would
 * need CAP_DAC_READ_SEARCH; the file's /proc link needs only /proc. */
static int
link_tmpfile(int fd, const char *path)
{
    char proc[64];

    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/* Writes data to dir/name without any fsync (a journal holds the data):
 * an unnamed file in dir, linked in when complete, so readers never see it
 * half written.  Where the file system or /proc cannot do that, a dot file
 * renamed into place.  0 or -1 (logged).  Never replaces an existing file:
 * EEXIST is an error, as the names are new ones. */
static int
write_quick(const queue_t *q, int dir, const char *name, const char *data, size_t len)
{
    /* -1: not known yet; 1: O_TMPFILE or the link is not to be had here
     * (or TDHOOK_TEST_NO_TMPFILE=1 plays that, for the tests). */
    static int no_tmpfile = -1;
    char *dest;
    const char *what = "write";
    int fd, rc = -1;

    if (testseam_flag("TDHOOK_TEST_NO_TMPFILE", &no_tmpfile))
        return write_file(q, dir, name, data, len, 0);
    fd = open(q->dirs[dir], O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
            log_error("queue: cannot create a file in %s: %s", q->dirs[dir], strerror(errno));
            return -1;
        }
        /* The file system has no O_TMPFILE (some overlay and network
         * file systems): the other way, from now on. */
        __atomic_store_n(&no_tmpfile, 1, __ATOMIC_RELAXED);
        return write_file(q, dir, name, data, len, 0);
    }
    dest = xasprintf("%s/%s", q->dirs[dir], name);
    if (fd_pwrite_all(fd, data, len, 0) == 0) {
        what = "link";
        if (link_tmpfile(fd, dest) == 0) {
            rc = 0;
        } else if (errno == ENOENT || errno == EPERM || errno == EACCES || errno == EXDEV ||
                   errno == EOPNOTSUPP) {
            /* No /proc, or a link it does not allow: the other way. */
            __atomic_store_n(&no_tmpfile, 1, __ATOMIC_RELAXED);
            close(fd);
            free(dest);
            return write_file(q, dir, name, data, len, 0);
        }
    }
    if (rc)
        log_error("queue: cannot %s %s: %s", what, dest, strerror(errno));
    close(fd);
    free(dest);
    return rc;
}

/* The shared count of queue/ (servers only) is exact because queue/
 * changes under a shared lock and is counted under an exclusive one. */
static void
depth_lock(const queue_t *q, int how)
{
    if (q->depth_fd >= 0)
        while (flock(q->depth_fd, how) < 0 && errno == EINTR)
            ;
}

#define RECOUNT_WAIT_MS 5000   /* a slot that does not drain by then is a dead worker's */

static void
nap_us(long us)
{
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};

    nanosleep(&ts, NULL);
}

/* TDHOOK_TEST_ENQUEUE_DELAY_MS (a test seam): an enqueue of a server waits
 * this long once it holds its place in the shared count, so that a test can
 * kill a worker there.  0 in a production build. */
static long
test_enqueue_delay_ms(void)
{
    static long ms = -1;

    return testseam_number("TDHOOK_TEST_ENQUEUE_DELAY_MS", 60000, 0, &ms);
}

/* An HTTP worker's enqueue (slot) enters the count: it waits while a
 * recount runs, and clears the mark of a recounting process that died. */
static void
count_enter(int slot)
{
    for (int naps = 0;; naps++) {
        pid_t pid;

        __atomic_add_fetch(&queue_sync->readers[slot], 1, __ATOMIC_SEQ_CST);
        pid = __atomic_load_n(&queue_sync->recounting, __ATOMIC_SEQ_CST);
        if (!pid)
            return;
        __atomic_sub_fetch(&queue_sync->readers[slot], 1, __ATOMIC_SEQ_CST);
        nap_us(200);
        if (naps % 500 == 499 && kill(pid, 0) && errno == ESRCH)
            __atomic_compare_exchange_n(&queue_sync->recounting, &pid, 0, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
    }
}

static void
count_leave(int slot)
{
    __atomic_sub_fetch(&queue_sync->readers[slot], 1, __ATOMIC_SEQ_CST);
}

/* With depth.lock held exclusive: keeps the HTTP workers' enqueues out
 * until recount_end(). */
static void
recount_begin(void)
{
    long long deadline = now_ms() + RECOUNT_WAIT_MS;

    __atomic_store_n(&queue_sync->recounting, (int32_t)log_pid(), __ATOMIC_SEQ_CST);
    for (;;) {
        int64_t busy = 0;

        for (int i = 0; i < QUEUE_SLOTS; i++)
            busy += __atomic_load_n(&queue_sync->readers[i], __ATOMIC_SEQ_CST);
        if (busy == 0)
            return;
        if (now_ms() > deadline) {
            log_warn("queue: enqueues still in flight after %d ms; counting queue/ anyway",
                     RECOUNT_WAIT_MS);
            return;
        }
        nap_us(100);
    }
}

static void
recount_end(void)
{
    __atomic_store_n(&queue_sync->recounting, 0, __ATOMIC_SEQ_CST);
}

void
queue_worker_gone(int slot, pid_t pid)
{
    int32_t was = (int32_t)pid;

    if (!queue_sync || slot < 0 || slot >= QUEUE_SLOTS)
        return;
    __atomic_store_n(&queue_sync->readers[slot], 0, __ATOMIC_SEQ_CST);
    __atomic_compare_exchange_n(&queue_sync->recounting, &was, 0, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
}

/* Reads what is left of fd, at most cap bytes, into b.  QUEUE_OK,
 * QUEUE_EIO, LOAD_CORRUPT (too big); b is freed unless QUEUE_OK. */
static int
read_fd(int fd, size_t cap, buf_t *b)
{
    char chunk[16384];
    int rc = QUEUE_OK;

    buf_init(b, cap);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = QUEUE_EIO;
            break;
        }
        if (n == 0)
            break;
        if (buf_append(b, chunk, (size_t)n) != BUF_OK) {
            rc = LOAD_CORRUPT;
            break;
        }
    }
    if (rc)
        buf_free(b);
    return rc;
}

/* Reads a whole file of at most cap bytes into b.  QUEUE_OK, QUEUE_ENOENT,
 * QUEUE_EIO, LOAD_CORRUPT (too big). */
static int
read_file(const char *path, size_t cap, buf_t *b)
{
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        buf_init(b, cap);
        return errno == ENOENT ? QUEUE_ENOENT : QUEUE_EIO;
    }
    rc = read_fd(fd, cap, b);
    close(fd);
    return rc;
}

/* --- job files ------------------------------------------------------------ */

/* The file form of a job; allocated, free with free(), NULL when json-c
 * cannot serialise it. */
static char *
job_serialize(const job_t *job, long long finished_ms)
{
    json_object *o = json_object_new_object();
    const char *s;
    char *text = NULL;

    json_object_object_add(o, "id", json_object_new_string(job->id));
    json_object_object_add(o, "kind", json_object_new_string(job->kind));
    json_object_object_add(o, "payload", json_object_get(job->payload));
    json_object_object_add(o, "attempts", json_object_new_int(job->attempts));
    json_object_object_add(o, "created_ms", json_object_new_int64(job->created_ms));
    json_object_object_add(o, "not_before_ms", json_object_new_int64(job->not_before_ms));
    if (job->last_error)
        json_object_object_add(o, "last_error", json_object_new_string(job->last_error));
    if (job->result)
        json_object_object_add(o, "result", json_object_get(job->result));
    if (finished_ms > 0)
        json_object_object_add(o, "finished_ms", json_object_new_int64(finished_ms));
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (s)
        text = xstrdup(s);
    json_object_put(o);
    return text;
}

static int
json_get_int64(json_object *o, const char *key, long long *out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    *out = (long long)json_object_get_int64(v);
    return 0;
}

/* Parses a job file; QUEUE_OK with *out allocated, or LOAD_CORRUPT. */
static int
job_parse(const char *text, size_t len, const char *id, job_t **out)
{
    json_tokener *tok = json_tokener_new_ex(JOB_JSON_DEPTH);
    json_object *o = NULL, *v;
    job_t *job = NULL;
    long long n;
    int rc = LOAD_CORRUPT;

    if (!tok)
        goto out;
    if (len > INT_MAX)
        goto out;
    o = json_tokener_parse_ex(tok, text, (int)len);
    if (!o || json_tokener_get_error(tok) != json_tokener_success
        || !json_object_is_type(o, json_type_object))
        goto out;
    job = xcalloc(1, sizeof *job);
    if (!json_object_object_get_ex(o, "id", &v) || !json_object_is_type(v, json_type_string)
        || strcmp(json_object_get_string(v), id) != 0)
        goto out;
    snprintf(job->id, sizeof job->id, "%s", id);
    if (!json_object_object_get_ex(o, "kind", &v) || !json_object_is_type(v, json_type_string)
        || (size_t)json_object_get_string_len(v) >= sizeof job->kind)
        goto out;
    snprintf(job->kind, sizeof job->kind, "%s", json_object_get_string(v));
    if (json_get_int64(o, "attempts", &n) || n < 0 || n > INT_MAX)
        goto out;
    job->attempts = (int)n;
    if (json_get_int64(o, "created_ms", &job->created_ms)
        || json_get_int64(o, "not_before_ms", &job->not_before_ms))
        goto out;
    if (json_object_object_get_ex(o, "payload", &v))
        job->payload = json_object_get(v);
    if (json_object_object_get_ex(o, "result", &v))
        job->result = json_object_get(v);
    if (json_object_object_get_ex(o, "last_error", &v) && v) {
        if (!json_object_is_type(v, json_type_string))
            goto out;
        job->last_error = xstrdup(json_object_get_string(v));
    }
    job->status = job->attempts > 0 ? JOB_RETRYING : JOB_QUEUED;
    *out = job;
    job = NULL;
    rc = QUEUE_OK;
out:
    job_free(job);
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return rc;
}

/* Reads dir/ID.job.  QUEUE_OK (*out allocated, status by folder but never
 * JOB_RUNNING), QUEUE_ENOENT, QUEUE_EIO, LOAD_CORRUPT. */
static int
job_load(const queue_t *q, int dir, const char *id, job_t **out)
{
    char *path = job_path(q, dir, id);
    buf_t b;
    int rc;

    rc = read_file(path, JOB_FILE_CAP, &b);
    if (rc == QUEUE_EIO)
        log_warn("queue: cannot read %s: %s", path, strerror(errno));
    if (rc)
        goto out;
    rc = job_parse(buf_str(&b), b.len, id, out);
    buf_free(&b);
    if (rc == QUEUE_OK) {
        if (dir == QDIR_DONE)
            (*out)->status = JOB_DONE;
        else if (dir == QDIR_DEAD)
            (*out)->status = JOB_DEAD;
    } else {
        log_warn("queue: %s is not a valid job file", path);
    }
out:
    free(path);
    return rc;
}

static int
job_store(const queue_t *q, int dir, const job_t *job, long long finished_ms)
{
    char *data = job_serialize(job, finished_ms);
    char *name = xasprintf("%s.job", job->id);
    int rc = QUEUE_EIO;

    if (!data) {
        log_error("queue: cannot serialise job %s", job->id);
        goto out;
    }
    if (strlen(data) > JOB_FILE_CAP) {
        log_error("queue: job %s is too large to store", job->id);
        rc = QUEUE_EINVAL;
        goto out;
    }
    if (write_durable(q, dir, name, data, strlen(data)) == 0)
        rc = QUEUE_OK;
out:
    free(data);
    free(name);
    return rc;
}

/* Removes dir/ID.job durably.  0, or -1 with errno (ENOENT included). */
static int
job_unlink(const queue_t *q, int dir, const char *id)
{
    char *path = job_path(q, dir, id);
    int rc = unlink(path);

    if (rc == 0)
        fsync_dir(q->dirs[dir]);
    else if (errno != ENOENT)
        log_error("queue: cannot remove %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

/* --- claims --------------------------------------------------------------- */

/* Takes the claim lock of id.  QUEUE_OK with *fd_out, LOCK_BUSY, QUEUE_EIO. */
static int
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

static void
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
static int
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

/* --- directories ---------------------------------------------------------- */

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids of dir's ID.job files, sorted; allocated array of allocated
 * strings (free with ids_free()), NULL with *n = 0 when there are none.
 * -1 when dir cannot be read. */
static int
ids_list(const queue_t *q, int dir, char ***out, size_t *n)
{
    DIR *d = opendir(q->dirs[dir]);
    struct dirent *de;
    char **v = NULL;
    size_t len = 0, alloc = 0;

    *out = NULL;
    *n = 0;
    if (!d) {
        log_error("queue: cannot read %s: %s", q->dirs[dir], strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != JOB_ID_LEN + 4 || strcmp(de->d_name + JOB_ID_LEN, ".job") != 0)
            continue;
        if (len == alloc) {
            alloc = alloc ? 2 * alloc : 64;
            v = xrealloc(v, alloc * sizeof *v);
        }
        v[len] = xstrndup(de->d_name, JOB_ID_LEN);
        if (!id_valid(v[len])) {
            free(v[len]);
            continue;
        }
        len++;
    }
    closedir(d);
    if (len > 1)
        qsort(v, len, sizeof *v, name_cmp);
    *out = v;
    *n = len;
    return 0;
}

static void
ids_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static size_t group_count(const char *name);

/* The jobs in dir: its job files, and those group files hold. */
static size_t
ids_count(const queue_t *q, int dir)
{
    DIR *d = opendir(q->dirs[dir]);
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".job") == 0)
            n++;
        else
            n += group_count(de->d_name);
    }
    closedir(d);
    return n;
}

/* Creates path and its parents, mode 0700.  0 or -1 with errno. */
static int
mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    struct stat st;
    char *s;
    int rc = -1;

    for (s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) && errno != EEXIST)
            goto out;
        *s = '/';
    }
    if (mkdir(p, 0700) && errno != EEXIST)
        goto out;
    if (stat(p, &st))
        goto out;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        goto out;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

static int
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

static unsigned long long
fnv1a64(const char *s)
{
    unsigned long long h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Looks up idem/HASH: 1 and id filled when key was used within 24 h. */
static int
idem_lookup(const queue_t *q, const char *name, const char *key, char *id)
{
    char *path = xasprintf("%s/%s", q->dirs[QDIR_IDEM], name);
    struct stat st;
    const char *text, *tab;
    buf_t b;
    int found = 0;

    if (stat(path, &st) || now_ms() - mtime_ms(&st) >= IDEM_TTL_MS)
        goto out;
    if (read_file(path, strlen(key) + QUEUE_ID_MAX + 1, &b))
        goto out;
    text = buf_str(&b);
    tab = memchr(text, '\t', b.len);
    if (tab && tab - text == JOB_ID_LEN && strcmp(tab + 1, key) == 0
        && b.len == (size_t)(tab - text) + 1 + strlen(key)) {
        memcpy(id, text, JOB_ID_LEN);
        id[JOB_ID_LEN] = '\0';
        found = id_valid(id);
    }
    buf_free(&b);
out:
    free(path);
    return found;
}

/* --- the write-ahead journal of an HTTP worker ---------------------------- */

#define CHECKPOINT_NAME "checkpoint"
#define ENTRY_HEAD 6     /* dir u8, name length u8, data length u32 */

/* Adds a file to a commit's body: dir u8 | name length u8 | data length
 * u32 (little-endian) | name | data.  BUF_OK or BUF_TOOBIG. */
static int
entry_add(buf_t *b, int dir, const char *name, const char *data, size_t dlen)
{
    size_t nlen = strlen(name), before = b->len;
    unsigned char h[ENTRY_HEAD];

    h[0] = (unsigned char)dir;
    h[1] = (unsigned char)nlen;
    for (int i = 0; i < 4; i++)
        h[2 + i] = (unsigned char)(dlen >> (8 * i));
    if (nlen > 255 || dlen > UINT32_MAX || buf_append(b, h, sizeof h) ||
        buf_append(b, name, nlen) || buf_append(b, data, dlen)) {
        b->len = before;
        return BUF_TOOBIG;
    }
    return BUF_OK;
}

/* Reads journal/checkpoint ("slot seq" lines) into cp[QUEUE_SLOTS]; what
 * is missing or malformed stays as it was. */
static void
checkpoint_load(const queue_t *q, uint64_t *cp)
{
    char *path = xasprintf("%s/%s", q->dirs[QDIR_JOURNAL], CHECKPOINT_NAME);
    const char *p;
    buf_t b;

    if (read_file(path, (size_t)QUEUE_SLOTS * 32, &b) == QUEUE_OK) {
        for (p = buf_str(&b); *p;) {
            char *end;
            long slot = strtol(p, &end, 10);
            unsigned long long seq;

            if (end == p || *end != ' ')
                break;
            p = end + 1;
            seq = strtoull(p, &end, 10);
            if (end == p || *end != '\n')
                break;
            p = end + 1;
            if (slot >= 0 && slot < QUEUE_SLOTS && seq > cp[slot])
                cp[slot] = seq;
        }
        buf_free(&b);
    }
    free(path);
}

/* Raises the shared "durable up to" of slot to seq; never lowers it. */
static void
synced_raise(int slot, uint64_t seq)
{
    uint64_t was = __atomic_load_n(&queue_sync->synced[slot], __ATOMIC_ACQUIRE);

    while (seq > was &&
           !__atomic_compare_exchange_n(&queue_sync->synced[slot], &was, seq, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
        ;
}

/* Marks commit seq as through (its files written, or given up) and moves
 * `written` over every commit that is. */
static void
wal_done(uint64_t seq)
{
    pthread_mutex_lock(&wal.mu);
    if (seq > wal.written)
        wal.done[seq % WAL_RING] = 1;
    while (wal.done[(wal.written + 1) % WAL_RING]) {
        wal.done[(wal.written + 1) % WAL_RING] = 0;
        wal.written++;
    }
    __atomic_store_n(&queue_sync->written[wal.slot], wal.written, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&wal.mu);
}

/* Before a full journal starts a new round (see journal_make_room()):
 * the commits' files are durable already when the master's last syncfs()
 * came after them, else one syncfs() here. */
typedef struct {
    queue_t *q;
    uint64_t last;
} room_t;

static int
room_ready(uint64_t last, void *arg)
{
    room_t *r = arg;

    if (__atomic_load_n(&queue_sync->synced[wal.slot], __ATOMIC_ACQUIRE) < last &&
        syncfs(r->q->sync_fd)) {
        log_error("queue: cannot sync %s: %s", r->q->root, strerror(errno));
        return -1;
    }
    r->last = last;
    return 0;
}

static int
wal_make_room(queue_t *q, size_t len)
{
    room_t r = {q, 0};

    if (journal_make_room(wal.j, len, room_ready, &r))
        return -1;
    if (r.last)
        synced_raise(wal.slot, r.last);
    return 0;
}

/* A new job on its way: what its end needs. */
typedef struct {
    queue_done_fn done;
    void *arg;
    queue_t *q;          /* whose depth.lock is held shared (slot -1) */
    int counted;         /* it holds a place in the shared count */
    int slot;            /* its HTTP worker's slot (count_enter()), or -1 */
    char id[QUEUE_ID_MAX];
} enqueue_t;

/* The end of an enqueue: its place in the count given back (and the job
 * taken off it when it failed), then the caller told. */
static void
enqueue_end(enqueue_t *e, int rc)
{
    if (rc && e->counted)
        __atomic_sub_fetch(&queue_sync->depth, 1, __ATOMIC_ACQ_REL);
    if (e->counted && e->slot >= 0)
        count_leave(e->slot);
    else if (e->counted)
        depth_lock(e->q, LOCK_UN);
    e->done(rc, rc ? NULL : e->id, 0, e->arg);
}

/* A journal_done_fn: the commit of a new job is durable (its files
 * written), or it failed. */
static void
enqueue_committed(int jrc, uint64_t seq, void *arg)
{
    enqueue_t *e = arg;

    (void)seq;
    /* JOURNAL_OK: durable, and the files are written (by whichever thread
     * wrote the group).  JOURNAL_EAPPLY: durable, but a file failed; the
     * answer is an error and the sender tries again, and the commit may
     * then come back as a second job after a crash, which the jobs'
     * idempotence makes harmless. */
    enqueue_end(e, jrc == JOURNAL_OK ? QUEUE_OK : QUEUE_EIO);
    free(e);
}

#define QUEUE_PENDING (-1)   /* internal: the journal ends it later */

/* Stores a new job (and its idempotency key) the worker's way: one
 * journal commit, whose group writes the files without fsync once it is
 * durable.  QUEUE_PENDING when submitted (enqueue_committed() ends it),
 * else the result, with nothing submitted. */
static int
journal_store(queue_t *q, const job_t *job, const char *idem_name, const char *idem_text,
              enqueue_t *e)
{
    char *data = job_serialize(job, 0);
    char name[QUEUE_ID_MAX + 8];
    buf_t b;
    int rc = QUEUE_EIO, jrc;

    if (!data) {
        log_error("queue: cannot serialise job %s", job->id);
        return QUEUE_EIO;
    }
    snprintf(name, sizeof name, "%s.job", job->id);
    buf_init(&b, journal_max_body());
    if (entry_add(&b, QDIR_QUEUE, name, data, strlen(data)) ||
        (idem_name && entry_add(&b, QDIR_IDEM, idem_name, idem_text, strlen(idem_text)))) {
        /* Too large for the journal: the slow way, fsync and all. */
        buf_free(&b);
        free(data);
        rc = job_store(q, QDIR_QUEUE, job, 0);
        if (rc == QUEUE_OK && idem_name &&
            write_durable(q, QDIR_IDEM, idem_name, idem_text, strlen(idem_text)))
            log_warn("queue: job %s: idempotency key not stored", job->id);
        return rc;
    }
    free(data);
    for (int tries = 0;; tries++) {
        jrc = journal_submit(wal.j, b.data, b.len, enqueue_committed, e);
        if (jrc != JOURNAL_EFULL || tries == 2 || wal_make_room(q, b.len))
            break;
    }
    buf_free(&b);
    return jrc == JOURNAL_OK ? QUEUE_PENDING : QUEUE_EIO;
}

/* The next file of a commit's (or group file's) entries, from *off:
 * 1 with dir, name (NUL-terminated, NAME_MAX at most) and data filled, 0 at
 * the end, -1 when malformed.  Only names a queue writes pass: ID.job in
 * queue/, a plain name in idem/. */
static int
entry_next(const char *body, size_t len, size_t *off, int *dir, char *name,
           const char **data, size_t *dlen)
{
    const unsigned char *h = (const unsigned char *)body + *off;
    size_t nlen, left = len - *off;

    if (*off == len)
        return 0;
    if (left < ENTRY_HEAD)
        return -1;
    *dir = h[0];
    nlen = h[1];
    *dlen = (size_t)h[2] | (size_t)h[3] << 8 | (size_t)h[4] << 16 | (size_t)h[5] << 24;
    if (nlen == 0 || left - ENTRY_HEAD < nlen || left - ENTRY_HEAD - nlen < *dlen)
        return -1;
    memcpy(name, h + ENTRY_HEAD, nlen);
    name[nlen] = '\0';
    if (strchr(name, '/') || name[0] == '.' || strlen(name) != nlen)
        return -1;
    if (*dir == QDIR_QUEUE) {
        char id[QUEUE_ID_MAX];

        if (nlen != JOB_ID_LEN + 4 || strcmp(name + JOB_ID_LEN, ".job") != 0)
            return -1;
        memcpy(id, name, JOB_ID_LEN);
        id[JOB_ID_LEN] = '\0';
        if (!id_valid(id))
            return -1;
    } else if (*dir != QDIR_IDEM) {
        return -1;
    }
    *data = (const char *)h + ENTRY_HEAD + nlen;
    *off += ENTRY_HEAD + nlen + *dlen;
    return 1;
}

/* 1 when job id (a valid one) is in queue/, done/ or dead/. */
static int
job_anywhere(const queue_t *q, const char *id)
{
    static const int where[] = { QDIR_QUEUE, QDIR_DONE, QDIR_DEAD };
    int found = 0;

    for (size_t i = 0; i < sizeof where / sizeof where[0] && !found; i++) {
        char *path = job_path(q, where[i], id);
        found = path_exists(path);
        free(path);
    }
    return found;
}

/* --- group files ----------------------------------------------------------
 *
 * The jobs of one journal group (two or more) go to queue/ as one file,
 * queue/ID.N.jobs (ID the first job's id, N its count), written without
 * fsync like every file the journal holds: one file to create on the ack
 * path instead of N.  Whoever reads queue/ (a runner's claim, a lookup that
 * missed, a listing, a journal's replay) first splits the group files into
 * job files, makes them durable and removes the group file.  Format:
 *
 *   "TDHGRP01" | crc u32 (over what follows) | the jobs' entries
 *
 * each entry as in a journal commit (see entry_add()). */

#define GROUP_MAGIC "TDHGRP01"
#define GROUP_HEAD 12u
#define GROUP_SUFFIX ".jobs"
#define GROUP_NAME_MAX (JOB_ID_LEN + 16)

/* The count of jobs a group file's name says, or 0 when name is not one. */
static size_t
group_count(const char *name)
{
    size_t len = strlen(name), slen = strlen(GROUP_SUFFIX);
    char id[QUEUE_ID_MAX];
    const char *p;
    char *end;
    unsigned long n;

    if (len <= JOB_ID_LEN + 1 + slen || len > GROUP_NAME_MAX || name[JOB_ID_LEN] != '.' ||
        strcmp(name + len - slen, GROUP_SUFFIX) != 0)
        return 0;
    memcpy(id, name, JOB_ID_LEN);
    id[JOB_ID_LEN] = '\0';
    p = name + JOB_ID_LEN + 1;
    if (!id_valid(id) || *p < '1' || *p > '9')
        return 0;
    n = strtoul(p, &end, 10);
    return end == name + len - slen ? n : 0;
}

/* Whether a group of one job is a group file too (the tests: with
 * TDHOOK_TEST_GROUP_FILES=1 every new job is). */
static int
group_always(void)
{
    static int always = -1;

    return testseam_flag("TDHOOK_TEST_GROUP_FILES", &always);
}

/* Adds a job's entry to the leader's group. */
static void
group_add(commit_files_t *r, const char *name, const char *data, size_t dlen)
{
    static const unsigned char head[GROUP_HEAD];

    if (r->njobs == 0) {
        /* Room for the head, filled in by group_write(). */
        buf_reset(&r->group);
        buf_append(&r->group, head, GROUP_HEAD);
    }
    /* The buffer has no cap, and the entry passed entry_next(). */
    entry_add(&r->group, QDIR_QUEUE, name, data, dlen);
    r->njobs++;
}

/* Writes the leader's group: one job as its own file, more as a group
 * file.  0 or -1 (logged). */
static int
group_write(commit_files_t *r)
{
    unsigned char *head = (unsigned char *)r->group.data;
    size_t len = r->group.len, off = GROUP_HEAD, dlen;
    const char *data;
    uint32_t crc;
    char name[256];
    int dir;

    /* The first job: its own file when alone, else its id names the group. */
    if (entry_next(r->group.data, len, &off, &dir, name, &data, &dlen) != 1)
        return -1;
    if (r->njobs == 1 && !group_always())
        return write_quick(r->q, QDIR_QUEUE, name, data, dlen);
    snprintf(name + JOB_ID_LEN, sizeof name - JOB_ID_LEN, ".%zu%s", r->njobs, GROUP_SUFFIX);
    crc = journal_crc32(0, r->group.data + GROUP_HEAD, len - GROUP_HEAD);
    memcpy(head, GROUP_MAGIC, 8);
    for (int i = 0; i < 4; i++)
        head[8 + i] = (unsigned char)(crc >> (8 * i));
    return write_quick(r->q, QDIR_QUEUE, name, r->group.data, len);
}

/* Splits one group file (open as fd, flock()ed): writes each job that is
 * nowhere yet.  Jobs written go to *written.  0, 1 when the file is not a
 * group file (it is moved to dead/ as NAME.corrupt), -1 on a write error. */
static int
group_split_one(const queue_t *q, int dfd, const char *gname, int fd, size_t *written)
{
    unsigned char *h;
    size_t off = GROUP_HEAD, dlen;
    uint32_t crc = 0;
    const char *data;
    char name[256];
    buf_t b;
    int dir, e, rc = 0;

    if (read_fd(fd, (size_t)QUEUE_SLOTS * JOURNAL_BYTES, &b))
        return -1;
    h = (unsigned char *)b.data;
    for (int i = 0; b.len >= GROUP_HEAD && i < 4; i++)
        crc |= (uint32_t)h[8 + i] << (8 * i);
    if (b.len < GROUP_HEAD || memcmp(h, GROUP_MAGIC, 8) != 0 ||
        journal_crc32(0, b.data + GROUP_HEAD, b.len - GROUP_HEAD) != crc) {
        char *to = xasprintf("%s/%s.corrupt", q->dirs[QDIR_DEAD], gname);

        if (renameat(dfd, gname, AT_FDCWD, to) == 0)
            log_error("queue: group file %s is corrupt, moved to %s", gname, to);
        free(to);
        buf_free(&b);
        return 1;
    }
    while ((e = entry_next(b.data, b.len, &off, &dir, name, &data, &dlen)) == 1) {
        char id[QUEUE_ID_MAX];

        if (dir != QDIR_QUEUE)
            continue;
        memcpy(id, name, JOB_ID_LEN);
        id[JOB_ID_LEN] = '\0';
        if (job_anywhere(q, id))
            continue;
        if (write_quick(q, QDIR_QUEUE, name, data, dlen)) {
            rc = -1;
            break;
        }
        (*written)++;
    }
    if (e < 0)
        log_warn("queue: group file %s ends in a malformed entry", gname);
    buf_free(&b);
    return rc;
}

#define GROUPS_AT_ONCE 256

/* Splits the group files in queue/ into job files, durable before the
 * group files go.  Returns how many group files were split. */
static int
groups_split(queue_t *q)
{
    char *names[GROUPS_AT_ONCE];
    int fds[GROUPS_AT_ONCE];
    size_t n = 0, i, written = 0;
    struct dirent *de;
    int split = 0, ok = 1;
    DIR *d;

    d = opendir(q->dirs[QDIR_QUEUE]);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL && n < GROUPS_AT_ONCE)
        if (group_count(de->d_name))
            names[n++] = xstrdup(de->d_name);
    if (n == 0) {
        closedir(d);
        return 0;
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (i = 0; i < n; i++)
        fds[i] = -1;
    /* Shared, like every change of queue/: a recount never sees a group's
     * jobs both in its file and as job files. */
    depth_lock(q, LOCK_SH);
    for (i = 0; i < n && ok; i++) {
        struct stat st;
        int fd, r;

        fd = openat(dirfd(d), names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
            ;
        /* Split by someone else meanwhile: gone from queue/. */
        if (fstat(fd, &st) || st.st_nlink == 0) {
            close(fd);
            continue;
        }
        r = group_split_one(q, dirfd(d), names[i], fd, &written);
        if (r == 0)
            fds[i] = fd;
        else
            close(fd);
        if (r < 0)
            ok = 0;
    }
    /* The jobs are durable before their group file goes; the locks are
     * held until then, so nobody splits a group twice. */
    if (ok && written && syncfs(dirfd(d))) {
        log_error("queue: cannot sync %s: %s", q->root, strerror(errno));
        ok = 0;
    }
    for (i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        if (ok && unlinkat(dirfd(d), names[i], 0) == 0)
            split++;
        else if (ok && errno != ENOENT)
            log_error("queue: cannot remove %s/%s: %s", q->dirs[QDIR_QUEUE], names[i],
                      strerror(errno));
        close(fds[i]);
    }
    depth_lock(q, LOCK_UN);
    for (i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return split;
}

/* Writes the files a commit holds (a journal_apply_fn).  When replaying,
 * only what the disk may have lost: a job that is nowhere (queue/, done/,
 * dead/), a key that is missing; a malformed commit is skipped.  A new
 * commit's job joins its group (written by group_end()); its key is
 * written now, and a failure there is worth a warning. */
static int
commit_files(uint64_t seq, const char *body, size_t len, void *arg)
{
    commit_files_t *r = arg;
    char id[QUEUE_ID_MAX] = "";
    char name[256];
    const char *data;
    size_t off = 0, dlen;
    int dir, e;

    if (r->replay && seq <= r->durable)
        return 0;
    while ((e = entry_next(body, len, &off, &dir, name, &data, &dlen)) == 1) {
        int found = 0;

        if (dir == QDIR_QUEUE) {
            memcpy(id, name, JOB_ID_LEN);
            id[JOB_ID_LEN] = '\0';
            if (!r->replay) {
                group_add(r, name, data, dlen);
                continue;
            }
            found = job_anywhere(r->q, id);
        } else if (r->replay) {
            char *path = xasprintf("%s/%s", r->q->dirs[QDIR_IDEM], name);
            found = path_exists(path);
            free(path);
        }
        if (found)
            continue;
        if (write_quick(r->q, dir, name, data, dlen)) {
            if (r->replay)
                return -1;
            log_warn("queue: job %s: idempotency key not stored", id);
        } else if (r->replay && dir == QDIR_QUEUE) {
            r->jobs++;
            log_info("queue: job %s restored from the journal", id);
        } else if (r->replay) {
            r->keys++;
        }
    }
    if (e < 0)
        log_warn("queue: journal commit %llu is malformed; skipped", (unsigned long long)seq);
    return 0;
}

/* What the worker's journal applies each new commit with: its key, and
 * its job joins the group. */
static int
apply_commit(uint64_t seq, const char *body, size_t len, void *arg)
{
    commit_files_t *r = arg;

    if (r->nseqs++ == 0)
        r->seq0 = seq;
    return commit_files(seq, body, len, arg);
}

/* The end of a journal group: its jobs' file, then each commit is through,
 * whether it was written or not. */
static int
group_end(void *arg)
{
    commit_files_t *r = arg;
    int rc = r->njobs ? group_write(r) : 0;

    for (size_t i = 0; i < r->nseqs; i++)
        wal_done(r->seq0 + i);
    r->nseqs = 0;
    r->njobs = 0;
    buf_reset(&r->group);
    /* A big group's buffer is not kept. */
    if (r->group.alloc > 1024 * 1024)
        buf_free(&r->group);
    return rc;
}

/* Opens the process's journal as slot and replays it (wal.mu held). */
static void
wal_open(queue_t *q, int slot)
{
    uint64_t cp[QUEUE_SLOTS] = {0};
    char *path, *errstr = NULL;
    commit_files_t r = {.q = q, .replay = 1};
    queue_t *own;
    journal_t *j;
    int n, err;

    path = xasprintf("%s/%d.wal", q->dirs[QDIR_JOURNAL], slot);
    j = journal_open(path, &err, &errstr);
    free(path);
    if (!j) {
        log_warn("%s; this worker fsyncs each job instead", errstr);
        free(errstr);
        return;
    }
    checkpoint_load(q, cp);
    r.durable = cp[slot];
    /* The jobs in group files are not lost: they are looked for where the
     * replay looks. */
    groups_split(q);
    n = journal_replay(j, commit_files, &r);
    /* What was replayed becomes durable in its files; then a new round
     * (also when there was nothing, so that seqs go on from here). */
    if (n >= 0 && ((n > 0 && syncfs(q->sync_fd)) || journal_reset(j)))
        n = -1;
    if (n < 0) {
        /* The commits stay for the next start to try again. */
        log_error("queue: cannot replay journal %d: %s; this worker fsyncs each job instead",
                  slot, strerror(errno));
        journal_close(j);
        return;
    }
    if (r.jobs || r.keys)
        log_info("queue: journal %d: %d jobs and %d idempotency keys restored", slot, r.jobs,
                 r.keys);
    own = queue_open(q->root, &q->limits, &errstr);
    if (!own) {
        log_error("%s; this worker fsyncs each job instead", errstr);
        free(errstr);
        journal_close(j);
        return;
    }
    wal.apply = (commit_files_t){.q = own};
    buf_init(&wal.apply.group, SIZE_MAX);
    journal_set_apply(j, apply_commit, group_end, &wal.apply);
    wal.j = j;
    wal.slot = slot;
    wal.written = journal_last_seq(j);
    __atomic_store_n(&queue_sync->written[slot], wal.written, __ATOMIC_RELEASE);
    __atomic_store_n(&queue_sync->synced[slot], wal.written, __ATOMIC_RELEASE);
}

int
queue_journal(queue_t *q, int slot)
{
    static int tried;

    if (!queue_sync || q->sync_fd < 0 || slot < 0 || slot >= QUEUE_SLOTS)
        return -1;
    pthread_mutex_lock(&wal.mu);
    if (!tried) {
        tried = 1;
        wal_open(q, slot);
    }
    q->journal = wal.j != NULL && wal.slot == slot;
    pthread_mutex_unlock(&wal.mu);
    return q->journal ? 0 : -1;
}

int
queue_checkpoint(queue_t *q)
{
    uint64_t snap[QUEUE_SLOTS];
    int changed = 0, rc;
    buf_t b;

    if (!queue_sync || q->sync_fd < 0)
        return 0;
    if (!q->checkpoint) {
        q->checkpoint = xcalloc(QUEUE_SLOTS, sizeof *q->checkpoint);
        checkpoint_load(q, q->checkpoint);
    }
    for (int i = 0; i < QUEUE_SLOTS; i++) {
        snap[i] = __atomic_load_n(&queue_sync->written[i], __ATOMIC_ACQUIRE);
        changed |= snap[i] > __atomic_load_n(&queue_sync->synced[i], __ATOMIC_ACQUIRE);
    }
    if (!changed)
        return 0;
    /* Every file of a commit counted in snap was written before this. */
    if (syncfs(q->sync_fd)) {
        log_error("queue: cannot sync %s: %s", q->root, strerror(errno));
        return -1;
    }
    buf_init(&b, (size_t)QUEUE_SLOTS * 32);
    for (int i = 0; i < QUEUE_SLOTS; i++) {
        /* A worker that reset its journal meanwhile may have stored more. */
        synced_raise(i, snap[i]);
        if (snap[i] > q->checkpoint[i])
            q->checkpoint[i] = snap[i];
        if (q->checkpoint[i])
            buf_printf(&b, "%d %llu\n", i, (unsigned long long)q->checkpoint[i]);
    }
    rc = write_durable(q, QDIR_JOURNAL, CHECKPOINT_NAME, buf_str(&b), b.len);
    buf_free(&b);
    return rc;
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

/* queue_enqueue() waits for its job's end here. */
typedef struct {
    int rc;
    int duplicate;
    char id[QUEUE_ID_MAX];
    uint32_t state;      /* the futex word: 1 once ended */
} enqueue_wait_t;

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

void
queue_share_sync(void)
{
    void *p;

    if (queue_sync)
        return;
    p = mmap(NULL, sizeof *queue_sync, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        queue_sync = p;
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
        if (groups_split(q) > 0)
            goto again;
    }
    return rc;
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

int
queue_foreach(queue_t *q, int (*fn)(const job_t *job, void *arg), void *arg)
{
    static const int order[] = { QDIR_QUEUE, QDIR_DEAD, QDIR_DONE };
    size_t d;
    int rc = QUEUE_OK;

    groups_split(q);
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
    groups_split(q);
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
    groups_split(q);
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

size_t
queue_depth(queue_t *q)
{
    /* Always counted afresh (the cache only spares queue_enqueue()). */
    q->depth = ids_count(q, QDIR_QUEUE);
    q->depth_ms = now_ms();
    return q->depth;
}

size_t
queue_dead_count(queue_t *q)
{
    return ids_count(q, QDIR_DEAD);
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

const char *
job_status_name(job_status_t status)
{
    switch (status) {
    case JOB_QUEUED: return "queued";
    case JOB_RUNNING: return "running";
    case JOB_DONE: return "done";
    case JOB_RETRYING: return "retrying";
    case JOB_DEAD: return "dead";
    }
    return "unknown";
}

json_object *
job_to_json(const job_t *job)
{
    json_object *o = json_object_new_object();
    time_t t = (time_t)(job->created_ms / 1000);
    struct tm tm;
    char when[32];

    json_object_object_add(o, "job", json_object_new_string(job->id));
    json_object_object_add(o, "kind", json_object_new_string(job->kind));
    json_object_object_add(o, "status", json_object_new_string(job_status_name(job->status)));
    json_object_object_add(o, "attempts", json_object_new_int(job->attempts));
    if (job->status == JOB_DONE)
        json_object_object_add(o, "result", json_object_get(job->result));
    else if (job->last_error)
        json_object_object_add(o, "error", json_object_new_string(job->last_error));
    if (gmtime_r(&t, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        json_object_object_add(o, "created", json_object_new_string(when));
    return o;
}

void
job_free(job_t *job)
{
    if (!job)
        return;
    json_object_put(job->payload);
    json_object_put(job->result);
    free(job->last_error);
    free(job);
}
