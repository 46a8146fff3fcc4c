/* The write-ahead journal (see journal.h for the format). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util/fileio.h"
#include "core/queue/journal.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define HEAD_MAGIC "TDHJRNL1"
#define HEAD_LEN 20u                 /* magic 8, base_seq 8, crc 4 */
#define COMMIT_MAGIC 0x434a4454u     /* "TDJC" */
#define COMMIT_HEAD 24u              /* magic 4, len 4, seq 8, crc 4, pad 4 */
#define FILL_CHUNK (64u * 1024)

typedef struct journal_waiter journal_waiter_t;

struct journal {
    int fd;
    int dfd;                 /* the file again, O_DIRECT | O_DSYNC; -1: fd and fdatasync() */
    char *path;
    pthread_mutex_t mu;      /* guards what follows */
    uint64_t next_seq;       /* the seq the next commit gets */
    uint64_t off;            /* where the next commit goes */
    unsigned pending;        /* commits in this round */
    uint64_t queued;         /* bytes the waiting commits will take */
    int leading;             /* a thread leads a batch (see lead()) */
    pthread_cond_t idle;     /* signalled when nobody leads and nobody waits */
    journal_waiter_t *waiters;        /* waiting for the next batch */
    journal_waiter_t **waiters_tail;
    journal_apply_fn apply;
    journal_group_fn group_end;
    void *apply_arg;
    int reading;             /* opened on an old round: replay, then a new round */
    char *buf;               /* the leader's: a batch's pages, page-aligned */
    size_t cap;
};

/* --- encoding ------------------------------------------------------------- */

uint32_t
journal_crc32(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    static int ready;
    const unsigned char *p = data;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void
put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t
align_page(uint64_t off)
{
    return (off + JOURNAL_PAGE - 1) / JOURNAL_PAGE * JOURNAL_PAGE;
}

size_t
journal_max_body(void)
{
    return JOURNAL_BYTES - JOURNAL_PAGE - COMMIT_HEAD;
}

/* --- file I/O ------------------------------------------------------------- */

/* Writes page 0 for a round starting at base and makes it durable. */
static int
write_head(journal_t *j, uint64_t base)
{
    unsigned char page[JOURNAL_PAGE];

    memset(page, 0, sizeof page);
    memcpy(page, HEAD_MAGIC, 8);
    put64(page + 8, base);
    put32(page + 16, journal_crc32(0, page, 16));
    if (fd_pwrite_all(j->fd, page, sizeof page, 0) || fdatasync(j->fd)) {
        log_error("journal: cannot write %s: %s", j->path, strerror(errno));
        return -1;
    }
    j->next_seq = base;
    j->off = JOURNAL_PAGE;
    j->pending = 0;
    j->reading = 0;
    return 0;
}

/* The base of the round that follows one opened from disk.  Replay stops at
 * the first commit that is torn or missing, but a later one of the same
 * round may have reached the disk (a group of commits shares one sync):
 * its seq would be taken again and it would come back.  Jumping by the
 * number of pages puts the new round above every seq the old one can hold. */
static uint64_t
next_base(const journal_t *j)
{
    return j->next_seq + (j->reading ? JOURNAL_BYTES / JOURNAL_PAGE : 0);
}

/* The largest seq of any commit header left in the file (0: none). */
static uint64_t
max_seq_on_disk(const journal_t *j)
{
    unsigned char head[COMMIT_HEAD];
    uint64_t max = 0;

    for (uint64_t off = JOURNAL_PAGE; off + COMMIT_HEAD <= JOURNAL_BYTES; off += JOURNAL_PAGE)
        if (fd_pread_all(j->fd, head, sizeof head, (off_t)off) == 1 && get32(head) == COMMIT_MAGIC &&
            get64(head + 8) > max)
            max = get64(head + 8);
    return max;
}

/* A fresh start point: microseconds since 1970, larger than any seq an
 * earlier journal under this name reached (it would have needed more than
 * a commit a microsecond), so checkpoints kept for that one stay below. */
static uint64_t
fresh_base(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Makes the file JOURNAL_BYTES of zeros (written, not sparse) and durable,
 * with the directory entry. */
static int
preallocate(journal_t *j)
{
    char *zero = xcalloc(1, FILL_CHUNK), *copy, *dir;
    int rc = -1, dfd;

    if (ftruncate(j->fd, 0))
        goto out;
    for (off_t off = 0; off < (off_t)JOURNAL_BYTES; off += FILL_CHUNK)
        if (fd_pwrite_all(j->fd, zero, FILL_CHUNK, off))
            goto out;
    if (fsync(j->fd))
        goto out;
    copy = xstrdup(j->path);
    dir = dirname(copy);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        rc = fsync(dfd);
        close(dfd);
    }
    free(copy);
out:
    if (rc)
        log_error("journal: cannot preallocate %s: %s", j->path, strerror(errno));
    free(zero);
    return rc;
}

/* --- the public functions ------------------------------------------------- */

journal_t *
journal_open(const char *path, int *err, char **errstr)
{
    journal_t *j = xcalloc(1, sizeof *j);
    unsigned char head[HEAD_LEN];
    struct stat st;

    j->path = xstrdup(path);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->idle, NULL);
    j->waiters_tail = &j->waiters;
    j->dfd = -1;
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0)
        goto fail;
    if (flock(j->fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK) {
            *err = JOURNAL_EBUSY;
            *errstr = xasprintf("journal: %s is in use by another process", path);
            journal_close(j);
            return NULL;
        }
        goto fail;
    }
    if (fstat(j->fd, &st))
        goto fail;
    if (st.st_size != (off_t)JOURNAL_BYTES) {
        if (preallocate(j) || write_head(j, fresh_base()))
            goto fail;
        goto opened;
    }
    if (fd_pread_all(j->fd, head, sizeof head, 0) == 1 && memcmp(head, HEAD_MAGIC, 8) == 0 &&
        get32(head + 16) == journal_crc32(0, head, 16)) {
        j->next_seq = get64(head + 8);
        j->off = JOURNAL_PAGE;
        j->reading = 1;
        goto opened;
    }
    /* Page 0 is torn: it is written only by journal_reset(), when every
     * commit before was durable elsewhere, so nothing is lost with it.  The
     * new round starts above every seq still in the file, whatever the
     * clock says. */
    log_warn("journal: %s has no valid header; starting it afresh", path);
    {
        uint64_t base = fresh_base(), max = max_seq_on_disk(j);

        if (max + 1 + JOURNAL_BYTES / JOURNAL_PAGE > base)
            base = max + 1 + JOURNAL_BYTES / JOURNAL_PAGE;
        if (write_head(j, base))
            goto fail;
    }
opened:
    /* Commits go straight to the disk where the file system can: one write
     * a batch, durable when it returns, no page cache to write back. */
    j->dfd = open(path, O_WRONLY | O_DIRECT | O_DSYNC | O_CLOEXEC);
    return j;
fail:
    *err = JOURNAL_EIO;
    *errstr = xasprintf("journal: cannot open %s: %s", path, strerror(errno));
    journal_close(j);
    return NULL;
}

void
journal_close(journal_t *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    if (j->dfd >= 0)
        close(j->dfd);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->idle);
    free(j->buf);
    free(j->path);
    free(j);
}

int
journal_replay(journal_t *j, journal_apply_fn fn, void *arg)
{
    unsigned char head[COMMIT_HEAD];
    int n = 0;

    if (!j->reading)
        return 0;
    for (;;) {
        uint32_t len;
        char *body;
        int ok;

        if (j->off + COMMIT_HEAD > JOURNAL_BYTES ||
            fd_pread_all(j->fd, head, sizeof head, (off_t)j->off) != 1)
            break;
        len = get32(head + 4);
        if (get32(head) != COMMIT_MAGIC || get64(head + 8) != j->next_seq ||
            len > journal_max_body() || j->off + COMMIT_HEAD + len > JOURNAL_BYTES)
            break;
        body = xmalloc((size_t)len + 1);
        ok = fd_pread_all(j->fd, body, len, (off_t)(j->off + COMMIT_HEAD)) == 1 &&
             get32(head + 16) == journal_crc32(journal_crc32(0, head, 16), body, len);
        if (ok) {
            body[len] = '\0';
            if (fn(j->next_seq, body, len, arg)) {
                free(body);
                return -1;
            }
        }
        free(body);
        if (!ok)
            break;
        j->next_seq++;
        j->off = align_page(j->off + COMMIT_HEAD + len);
        j->pending++;
        n++;
    }
    return n;
}

/* One commit waiting for its group: a committing thread's, on its stack,
 * while it waits for its commit to be durable (and applied), state being
 * the futex word it sleeps on; or a submitted one, allocated
 * with a copy of its body, whose thread has gone on. */
enum { WAITER_WAIT, WAITER_LEAD, WAITER_DONE };

struct journal_waiter {
    struct journal_waiter *next;
    const char *body;
    size_t len;
    uint64_t seq;        /* given by the leader */
    uint64_t off;
    int rc;
    uint32_t state;
    int submitted;       /* journal_submit()'s: allocated, nobody waits */
    journal_done_fn done;
    void *done_arg;
};

static size_t
commit_size(size_t len)
{
    return (size_t)align_page(COMMIT_HEAD + len);
}

static void
waiter_sleep(journal_waiter_t *w)
{
    while (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == WAITER_WAIT)
        syscall(SYS_futex, &w->state, FUTEX_WAIT_PRIVATE, WAITER_WAIT, NULL, NULL, 0);
}

/* Sets w's state and wakes it.  w may return and its frame be gone as soon
 * as the store is seen; a wake on a word that is gone is harmless, as every
 * sleeper checks its own state again. */
static void
waiter_set(journal_waiter_t *w, uint32_t state, int wake)
{
    __atomic_store_n(&w->state, state, __ATOMIC_RELEASE);
    if (wake)
        syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Writes the batch's pages [start, end) from j->buf and makes them durable:
 * one O_DIRECT | O_DSYNC write, else a write and fdatasync().  0 or errno. */
static int
write_batch(journal_t *j, uint64_t start, uint64_t end)
{
    if (j->dfd >= 0) {
        if (fd_pwrite_all(j->dfd, j->buf, end - start, (off_t)start) == 0)
            return 0;
        if (errno != EINVAL)
            return errno;
        /* The file system takes no direct I/O after all: the other way,
         * from now on. */
        close(j->dfd);
        j->dfd = -1;
    }
    if (fd_pwrite_all(j->fd, j->buf, end - start, (off_t)start) || fdatasync(j->fd))
        return errno;
    return 0;
}

/* The leader's work: numbers the commits waiting, writes them with one
 * durable write, runs the apply callback for each, hands the lead to the
 * first commit that came meanwhile and wakes every commit of the batch.
 * (The callbacks: apply for each commit, then group_end once.)
 * Nobody else numbers, writes or applies commits meanwhile, so a failed
 * write takes the batch back: the next one is written in its place, with
 * its seqs. */
static void
lead(journal_t *j, journal_waiter_t *self)
{
    journal_waiter_t *batch, *w, *next;
    uint64_t start, end, seq0;
    unsigned n;
    int e, again;

next_batch:
    n = 0;
    pthread_mutex_lock(&j->mu);
    batch = j->waiters;
    j->waiters = NULL;
    j->waiters_tail = &j->waiters;
    start = end = j->off;
    seq0 = j->next_seq;
    for (w = batch; w; w = w->next) {
        w->seq = j->next_seq++;
        w->off = end;
        end += commit_size(w->len);
        n++;
    }
    j->queued -= end - start;
    j->off = end;
    pthread_mutex_unlock(&j->mu);

    if (j->cap < end - start) {
        free(j->buf);
        j->cap = end - start;
        j->buf = xaligned(JOURNAL_PAGE, j->cap);
    }
    memset(j->buf, 0, end - start);
    for (w = batch; w; w = w->next) {
        unsigned char *p = (unsigned char *)j->buf + (w->off - start);

        put32(p, COMMIT_MAGIC);
        put32(p + 4, (uint32_t)w->len);
        put64(p + 8, w->seq);
        memcpy(p + COMMIT_HEAD, w->body, w->len);
        put32(p + 16, journal_crc32(journal_crc32(0, p, 16), w->body, w->len));
    }
    e = write_batch(j, start, end);
    if (e)
        log_error("journal: cannot write %s: %s", j->path, strerror(e));
    /* A big batch's pages are not kept. */
    if (j->cap > 64 * JOURNAL_PAGE) {
        free(j->buf);
        j->buf = NULL;
        j->cap = 0;
    }

    for (w = batch; w; w = w->next) {
        if (e)
            w->rc = JOURNAL_EIO;
        else if (j->apply && j->apply(w->seq, w->body, w->len, j->apply_arg))
            w->rc = JOURNAL_EAPPLY;
    }
    if (!e && j->group_end && j->group_end(j->apply_arg))
        for (w = batch; w; w = w->next)
            w->rc = JOURNAL_EAPPLY;
    /* The lead goes to the first commit that came meanwhile; when no
     * thread waits for that one, this thread leads once more. */
    pthread_mutex_lock(&j->mu);
    if (e) {
        j->off = start;
        j->next_seq = seq0;
    } else {
        j->pending += n;
    }
    next = j->waiters;
    again = next && next->submitted;
    if (!next) {
        j->leading = 0;
        pthread_cond_broadcast(&j->idle);
    }
    pthread_mutex_unlock(&j->mu);
    if (next && !again)
        waiter_set(next, WAITER_LEAD, 1);

    for (w = batch; w; w = next) {
        next = w->next;
        if (w->submitted) {
            if (w->done)
                w->done(w->rc, w->rc == JOURNAL_EIO ? 0 : w->seq, w->done_arg);
            free(w);
        } else {
            waiter_set(w, WAITER_DONE, w != self);
        }
    }
    if (again) {
        self = NULL;
        goto next_batch;
    }
}

/* 1 when a body of len bytes fits in the round after the waiting commits
 * (j->mu held). */
static int
room_for(const journal_t *j, size_t len)
{
    return j->off + j->queued + COMMIT_HEAD + len <= JOURNAL_BYTES;
}

/* Puts w on the list of waiters (j->mu held): 0, or JOURNAL_EFULL,
 * JOURNAL_EIO; *leads set when nobody leads, so the caller must. */
static int
waiter_add(journal_t *j, journal_waiter_t *w, int *leads)
{
    if (j->reading && write_head(j, next_base(j)))
        return JOURNAL_EIO;
    if (!room_for(j, w->len))
        return JOURNAL_EFULL;
    j->queued += commit_size(w->len);
    *j->waiters_tail = w;
    j->waiters_tail = &w->next;
    *leads = !j->leading;
    j->leading = 1;
    return 0;
}

/* Group commit: a thread puts its commit on the list of waiters.  When
 * nobody leads it leads (see lead()); else it sleeps until its batch is
 * done, or until the lead passes to it.  N threads committing at once pay
 * for about two writes, not N. */
int
journal_commit(journal_t *j, const void *body, size_t len, uint64_t *seq)
{
    journal_waiter_t me = {NULL, body, len, 0, 0, JOURNAL_OK, WAITER_WAIT, 0, NULL, NULL};
    int leads = 0, rc;

    if (seq)
        *seq = 0;
    if (len > journal_max_body())
        return JOURNAL_EBIG;
    pthread_mutex_lock(&j->mu);
    rc = waiter_add(j, &me, &leads);
    pthread_mutex_unlock(&j->mu);
    if (rc)
        return rc;
    for (;;) {
        if (leads)
            lead(j, &me);
        waiter_sleep(&me);
        if (__atomic_load_n(&me.state, __ATOMIC_ACQUIRE) == WAITER_DONE)
            break;
        __atomic_store_n(&me.state, WAITER_WAIT, __ATOMIC_RELAXED);
        leads = 1;
    }
    /* A failed write fails every commit of the batch: the sender is told
     * and tries again; should a commit be on the disk after all, replaying
     * it makes a second job, which the jobs' idempotence makes harmless. */
    if (seq && me.rc != JOURNAL_EIO)
        *seq = me.seq;
    return me.rc;
}

int
journal_submit(journal_t *j, const void *body, size_t len, journal_done_fn done, void *arg)
{
    journal_waiter_t *w;
    int leads = 0, rc;

    if (len > journal_max_body())
        return JOURNAL_EBIG;
    w = xmalloc(sizeof *w + len);
    *w = (journal_waiter_t){NULL, (char *)(w + 1), len, 0, 0, JOURNAL_OK, WAITER_WAIT, 1, done, arg};
    memcpy(w + 1, body, len);
    pthread_mutex_lock(&j->mu);
    rc = waiter_add(j, w, &leads);
    pthread_mutex_unlock(&j->mu);
    if (rc) {
        free(w);
        return rc;
    }
    if (leads)
        lead(j, NULL);
    return JOURNAL_OK;
}

int
journal_make_room(journal_t *j, size_t len, journal_room_fn ready, void *arg)
{
    int rc = JOURNAL_OK;

    pthread_mutex_lock(&j->mu);
    while (j->leading || j->waiters)
        pthread_cond_wait(&j->idle, &j->mu);
    /* Another thread may have made room meanwhile. */
    if (j->pending > 0 && !j->reading && !room_for(j, len)) {
        if ((ready && ready(j->next_seq - 1, arg)) || write_head(j, next_base(j)))
            rc = JOURNAL_EIO;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void
journal_set_apply(journal_t *j, journal_apply_fn fn, journal_group_fn group_end, void *arg)
{
    pthread_mutex_lock(&j->mu);
    j->apply = fn;
    j->group_end = group_end;
    j->apply_arg = arg;
    pthread_mutex_unlock(&j->mu);
}

int
journal_fits(journal_t *j, size_t len)
{
    int fits;

    pthread_mutex_lock(&j->mu);
    fits = len <= journal_max_body() &&
           (j->reading || room_for(j, len));
    pthread_mutex_unlock(&j->mu);
    return fits;
}

int
journal_reset(journal_t *j)
{
    int rc;

    pthread_mutex_lock(&j->mu);
    rc = write_head(j, next_base(j)) ? JOURNAL_EIO : JOURNAL_OK;
    pthread_mutex_unlock(&j->mu);
    return rc;
}

uint64_t
journal_last_seq(journal_t *j)
{
    uint64_t seq;

    pthread_mutex_lock(&j->mu);
    seq = j->next_seq - 1;
    pthread_mutex_unlock(&j->mu);
    return seq;
}

unsigned
journal_pending(journal_t *j)
{
    unsigned n;

    pthread_mutex_lock(&j->mu);
    n = j->pending;
    pthread_mutex_unlock(&j->mu);
    return n;
}
