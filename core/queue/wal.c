/* The glue between the queue and an HTTP worker's write-ahead journal
 * (core/queue/journal.c): a job and its key are journalled, then written as
 * files; the master's checkpoint and a worker's replay. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/log.h"
#include "core/util/xalloc.h"
#include "core/queue/queue_private.h"

queue_wal_t wal = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

/* --- the write-ahead journal of an HTTP worker ---------------------------- */

#define CHECKPOINT_NAME "checkpoint"
#define ENTRY_HEAD 6     /* dir u8, name length u8, data length u32 */

/* Adds a file to a commit's body: dir u8 | name length u8 | data length
 * u32 (little-endian) | name | data.  BUF_OK or BUF_TOOBIG. */
int
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

/* The end of an enqueue: its place in the count given back (and the job
 * taken off it when it failed), then the caller told. */
void
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

/* Stores a new job (and its idempotency key) the worker's way: one
 * journal commit, whose group writes the files without fsync once it is
 * durable.  QUEUE_PENDING when submitted (enqueue_committed() ends it),
 * else the result, with nothing submitted. */
int
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
int
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
int
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
    groups_split_all(q);
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
