/* What the files of the durable queue (core/queue/) share and nobody else
 * sees: the layout of state_dir, the queue handle, what the processes of
 * one server share, the journal of an HTTP worker, and the helpers one file
 * of the queue lends another.  The public interface is core/queue/queue.h.
 *
 *   queue.c    opening, enqueueing, looking up, listing, requeue, drop, prune
 *   files.c    job files: ids, paths, the file format, durable and quick writes
 *   claim.c    claims (flock on lock/ID), done, dead letters, retry with backoff
 *   count.c    the shared count of queue/ that keeps max_jobs exact
 *   wal.c      the glue to an HTTP worker's write-ahead journal, checkpoints
 *   groups.c   group files: a journal group's jobs in one file, and their split
 *   idem.c     idempotency keys */
#ifndef TDHOOK_QUEUE_PRIVATE_H
#define TDHOOK_QUEUE_PRIVATE_H

#include <pthread.h>
#include <sys/stat.h>

#include "core/queue/journal.h"
#include "core/queue/queue.h"
#include "core/util/buf.h"

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

/* The names of the directories under state_dir, by QDIR_*. */
extern const char *const qdir_names[QDIR_COUNT];

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

extern queue_sync_t *queue_sync;

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

typedef struct {
    pthread_mutex_t mu;          /* guards slot, written, done */
    journal_t *j;                /* NULL: no journal in this process */
    commit_files_t apply;        /* what the journal applies commits with */
    int slot;
    uint64_t written;
    unsigned char done[WAL_RING];
} queue_wal_t;

extern queue_wal_t wal;

/* Before a full journal starts a new round (see journal_make_room()):
 * the commits' files are durable already when the master's last syncfs()
 * came after them, else one syncfs() here. */
typedef struct {
    queue_t *q;
    uint64_t last;
} room_t;

/* A new job on its way: what its end needs. */
typedef struct {
    queue_done_fn done;
    void *arg;
    queue_t *q;          /* whose depth.lock is held shared (slot -1) */
    int counted;         /* it holds a place in the shared count */
    int slot;            /* its HTTP worker's slot (count_enter()), or -1 */
    char id[QUEUE_ID_MAX];
} enqueue_t;

/* queue_enqueue() waits for its job's end here. */
typedef struct {
    int rc;
    int duplicate;
    char id[QUEUE_ID_MAX];
    uint32_t state;      /* the futex word: 1 once ended */
} enqueue_wait_t;

#define QUEUE_PENDING (-1)   /* internal: the journal ends it later */

/* claim.c */
int lock_acquire(const queue_t *q, const char *id, int *fd_out);
int lock_held(const queue_t *q, const char *id);
void lock_release(const queue_t *q, const char *id, int fd, int remove);

/* count.c */
void count_enter(int slot);
void count_leave(int slot);
void depth_lock(const queue_t *q, int how);
void nap_us(long us);
void recount_begin(void);
void recount_end(void);
long test_enqueue_delay_ms(void);

/* files.c */
void id_new(char *id);
int id_valid(const char *id);
size_t ids_count(const queue_t *q, int dir);
void ids_free(char **v, size_t n);
int ids_list(const queue_t *q, int dir, char ***out, size_t *n);
int job_load(const queue_t *q, int dir, const char *id, job_t **out);
char *job_path(const queue_t *q, int dir, const char *id);
char *job_serialize(const job_t *job, long long finished_ms);
int job_store(const queue_t *q, int dir, const job_t *job, long long finished_ms);
int job_unlink(const queue_t *q, int dir, const char *id);
char *lock_path(const queue_t *q, const char *id);
int mkdir_p(const char *path);
long long mtime_ms(const struct stat *st);
int name_cmp(const void *a, const void *b);
long long now_ms(void);
int path_exists(const char *path);
unsigned long long random_u64(void);
int read_fd(int fd, size_t cap, buf_t *b);
int read_file(const char *path, size_t cap, buf_t *b);
int write_durable(const queue_t *q, int dir, const char *name, const char *data, size_t len);
int write_quick(const queue_t *q, int dir, const char *name, const char *data, size_t len);

/* groups.c */
void group_add(commit_files_t *r, const char *name, const char *data, size_t dlen);
size_t group_count(const char *name);
int group_write(commit_files_t *r);
/* Splits up to GROUPS_AT_ONCE group files in queue/ into job files, durable
 * before the group files go; how many were split. */
int groups_split(queue_t *q);
/* Splits every group file in queue/ (in batches); how many were split. */
int groups_split_all(queue_t *q);

/* idem.c */
unsigned long long fnv1a64(const char *s);
int idem_lookup(const queue_t *q, const char *name, const char *key, char *id);

/* queue.c */
int inotify_ensure(queue_t *q);

/* wal.c */
void enqueue_end(enqueue_t *e, int rc);
int entry_add(buf_t *b, int dir, const char *name, const char *data, size_t dlen);
int entry_next(const char *body, size_t len, size_t *off, int *dir, char *name,
               const char **data, size_t *dlen);
int job_anywhere(const queue_t *q, const char *id);
int journal_store(queue_t *q, const job_t *job, const char *idem_name, const char *idem_text,
                  enqueue_t *e);

#endif
