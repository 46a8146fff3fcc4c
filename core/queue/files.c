/* Job files: ids, paths, the file format, durable and quick writes, reading back. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/random.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"
#include "core/queue/queue_private.h"

const char *const qdir_names[QDIR_COUNT] = {
    "tmp", "queue", "lock", "done", "dead", "idem", "journal"
};

/* --- small helpers -------------------------------------------------------- */

long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
mtime_ms(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

unsigned long long
random_u64(void)
{
    unsigned long long v;

    random_bytes(&v, sizeof v);
    return v;
}

/* Exactly 24 characters of [0-9a-f-]: nothing that can name another path. */
int
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
void
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

char *
job_path(const queue_t *q, int dir, const char *id)
{
    return xasprintf("%s/%s.job", q->dirs[dir], id);
}

char *
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

int
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

int
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
int
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

/* Reads what is left of fd, at most cap bytes, into b.  QUEUE_OK,
 * QUEUE_EIO, LOAD_CORRUPT (too big); b is freed unless QUEUE_OK. */
int
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
int
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
char *
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
int
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

int
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
int
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

/* --- directories ---------------------------------------------------------- */

int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids of dir's ID.job files, sorted; allocated array of allocated
 * strings (free with ids_free()), NULL with *n = 0 when there are none.
 * -1 when dir cannot be read. */
int
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

void
ids_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The jobs in dir: its job files, and those group files hold. */
size_t
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
int
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
