/* Unit tests of core/queue/journal.c: each test gets its own directory and
 * journal file. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/queue/journal.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define COMMIT_HEAD 24u          /* magic, len, seq, crc, pad: see journal.h */
#define COMMIT_PAGES (JOURNAL_BYTES / JOURNAL_PAGE - 1)

/* What a replay handed over. */
typedef struct {
    size_t n, cap;
    uint64_t *seq;
    char **body;
    size_t *len;
    size_t fail_at;       /* the callback fails on this call (1-based); 0: never */
} seen_t;

typedef struct {
    char root[64];        /* the mkdtemp directory */
    char *path;           /* root/journal */
    journal_t *j;
    seen_t s;             /* the last replay (freed by teardown) */
} fixture_t;

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int
collect(uint64_t seq, const char *body, size_t len, void *arg)
{
    seen_t *s = arg;

    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->seq = xrealloc(s->seq, s->cap * sizeof *s->seq);
        s->body = xrealloc(s->body, s->cap * sizeof *s->body);
        s->len = xrealloc(s->len, s->cap * sizeof *s->len);
    }
    s->seq[s->n] = seq;
    s->body[s->n] = xmalloc(len + 1);
    memcpy(s->body[s->n], body, len);
    s->body[s->n][len] = '\0';
    s->len[s->n] = len;
    s->n++;
    return s->fail_at && s->n == s->fail_at ? 1 : 0;
}

static void
seen_free(seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->body[i]);
    free(s->seq);
    free(s->body);
    free(s->len);
    memset(s, 0, sizeof *s);
}

static journal_t *
open_path(const char *path)
{
    int err = -1;
    char *errstr = NULL;
    journal_t *j = journal_open(path, &err, &errstr);

    if (!j)
        fprintf(stderr, "journal_open: %d %s\n", err, errstr ? errstr : "(null)");
    free(errstr);
    return j;
}

static int
setup(void **state)
{
    fixture_t *f = xcalloc(1, sizeof *f);

    snprintf(f->root, sizeof f->root, "/tmp/tdhook-journal-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    f->path = xasprintf("%s/journal", f->root);
    f->j = open_path(f->path);
    if (!f->j) {
        nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f->path);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    journal_close(f->j);
    seen_free(&f->s);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f->path);
    free(f);
    return 0;
}

/* Closes the fixture's journal and opens the file again. */
static void
reopen(fixture_t *f)
{
    journal_close(f->j);
    f->j = open_path(f->path);
    assert_non_null(f->j);
}

/* Replays the fixture's journal into f->s, dropping what an earlier replay
 * left there; the count journal_replay() gave. */
static int
replay(fixture_t *f)
{
    seen_free(&f->s);
    return journal_replay(f->j, collect, &f->s);
}

static uint64_t
commit_str(fixture_t *f, const char *body)
{
    uint64_t seq = 0;

    assert_int_equal(journal_commit(f->j, body, strlen(body), &seq), JOURNAL_OK);
    return seq;
}

static void
assert_preallocated(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, JOURNAL_BYTES);
    /* Written, not sparse. */
    assert_true((uint64_t)st.st_blocks * 512 >= JOURNAL_BYTES);
}

/* Flips the bits of the byte at off in the file at path. */
static void
flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    assert_int_equal(close(fd), 0);
}

/* The file offset of commit n (1-based) of a round whose commits each fit
 * in one page. */
static off_t
commit_off(unsigned n)
{
    return (off_t)JOURNAL_PAGE * n;
}

/* --- the tests ------------------------------------------------------------ */

static void
test_roundtrip(void **state)
{
    fixture_t *f = *state;
    const char *bodies[] = { "first", "second body", "the third, with\0a NUL" };
    size_t lens[] = { 5, 11, 21 };
    uint64_t seqs[3];

    assert_preallocated(f->path);
    assert_int_equal(journal_pending(f->j), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(journal_commit(f->j, bodies[i], lens[i], &seqs[i]), JOURNAL_OK);
        if (i > 0)
            assert_true(seqs[i] == seqs[i - 1] + 1);
    }
    assert_true(journal_last_seq(f->j) == seqs[2]);
    assert_int_equal(journal_pending(f->j), 3);
    reopen(f);
    assert_preallocated(f->path);
    assert_int_equal(replay(f), 3);
    assert_int_equal(f->s.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(f->s.seq[i] == seqs[i]);
        assert_int_equal(f->s.len[i], lens[i]);
        assert_memory_equal(f->s.body[i], bodies[i], lens[i]);
    }
    assert_true(journal_last_seq(f->j) == seqs[2]);
    assert_int_equal(journal_pending(f->j), 3);
}

/* After a replay the next commit takes the next seq and goes after the
 * replayed ones. */
static void
test_commit_after_replay(void **state)
{
    fixture_t *f = *state;
    uint64_t first, next;

    first = commit_str(f, "a");
    commit_str(f, "b");
    commit_str(f, "c");
    reopen(f);
    assert_int_equal(replay(f), 3);
    assert_int_equal(journal_pending(f->j), 3);
    /* The first commit after a replay begins a new round, a round's worth
     * of pages further on: the replayed commits are gone from it. */
    next = commit_str(f, "d");
    assert_true(next == first + 3 + JOURNAL_BYTES / JOURNAL_PAGE);
    assert_int_equal(journal_pending(f->j), 1);
    reopen(f);
    assert_int_equal(replay(f), 1);
    assert_string_equal(f->s.body[0], "d");
    assert_true(f->s.seq[0] == next);
    assert_true(journal_last_seq(f->j) == next);
    /* A second replay has nothing more to give. */
    assert_int_equal(replay(f), 0);
}

/* A corrupt (torn) commit ends the replay: what follows it is dropped, and
 * the next commit begins a new round above every seq the old one held. */
static void
test_torn_commit(void **state)
{
    fixture_t *f = *state;
    uint64_t first, again;

    first = commit_str(f, "one");
    commit_str(f, "two");
    commit_str(f, "three");
    journal_close(f->j);
    f->j = NULL;
    flip_byte(f->path, commit_off(2) + COMMIT_HEAD + 1);
    f->j = open_path(f->path);
    assert_non_null(f->j);
    assert_int_equal(replay(f), 1);
    assert_string_equal(f->s.body[0], "one");
    assert_true(f->s.seq[0] == first);
    assert_true(journal_last_seq(f->j) == first);
    assert_int_equal(journal_pending(f->j), 1);
    again = commit_str(f, "two again");
    assert_true(again > first + 2);
}

/* Once a commit takes the place of a torn one, what followed the torn one
 * (never acknowledged, dropped by the replay) must not come back. */
static void
test_torn_tail_stays_dropped(void **state)
{
    fixture_t *f = *state;

    commit_str(f, "one");
    commit_str(f, "two");
    commit_str(f, "three");
    journal_close(f->j);
    f->j = NULL;
    flip_byte(f->path, commit_off(2) + COMMIT_HEAD + 1);
    f->j = open_path(f->path);
    assert_non_null(f->j);
    assert_int_equal(replay(f), 1);
    commit_str(f, "two again");
    reopen(f);
    replay(f);
    for (size_t i = 2; i < f->s.n; i++)
        print_message("replayed again: seq %llu \"%s\"\n", (unsigned long long)f->s.seq[i],
                      f->s.body[i]);
    /* The new round holds the new commit alone: "one" was replayed, and
     * "three" (behind the torn "two") never comes back. */
    assert_int_equal(f->s.n, 1);
    assert_string_equal(f->s.body[0], "two again");
}

/* A wrong magic, length, seq or crc ends the replay too; each field is
 * broken, checked and mended in turn. */
static void
test_bad_commit_header(void **state)
{
    fixture_t *f = *state;
    const struct {
        unsigned commit;
        off_t field;
        int left;
    } cases[] = {
        { 3, 8, 2 },      /* seq of commit 3 */
        { 2, 0, 1 },      /* magic of commit 2 */
        { 2, 4, 1 },      /* len of commit 2 (3 becomes 252) */
        { 2, 7, 1 },      /* len of commit 2 (3 becomes 0xff000003) */
        { 2, 16, 1 },     /* crc of commit 2 */
        { 1, 20, 3 },     /* the pad is not checked */
    };

    commit_str(f, "one");
    commit_str(f, "two");
    commit_str(f, "three");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        off_t off = commit_off(cases[i].commit) + cases[i].field;

        journal_close(f->j);
        f->j = NULL;
        flip_byte(f->path, off);
        f->j = open_path(f->path);
        assert_non_null(f->j);
        assert_int_equal(replay(f), cases[i].left);
        assert_string_equal(f->s.body[0], "one");
        journal_close(f->j);
        f->j = NULL;
        flip_byte(f->path, off);
        f->j = open_path(f->path);
        assert_non_null(f->j);
        assert_int_equal(replay(f), 3);
    }
}

/* A reset starts a new round: nothing to replay, and seq goes on (after a
 * reopen, a round's worth of pages further on). */
static void
test_reset(void **state)
{
    fixture_t *f = *state;
    uint64_t last, seq, d;

    commit_str(f, "a");
    commit_str(f, "b");
    last = commit_str(f, "c");
    assert_int_equal(journal_reset(f->j), JOURNAL_OK);
    assert_int_equal(journal_pending(f->j), 0);
    assert_true(journal_last_seq(f->j) == last);
    reopen(f);
    assert_int_equal(replay(f), 0);
    assert_int_equal(journal_pending(f->j), 0);
    assert_true(journal_last_seq(f->j) == last);
    d = commit_str(f, "d");
    assert_true(d == last + 1 + JOURNAL_BYTES / JOURNAL_PAGE);
    /* A reset without a reopen goes on at the next seq. */
    assert_int_equal(journal_reset(f->j), JOURNAL_OK);
    seq = commit_str(f, "e");
    assert_true(seq == d + 1);
    reopen(f);
    assert_int_equal(replay(f), 1);
    assert_string_equal(f->s.body[0], "e");
    assert_true(f->s.seq[0] == d + 1);
}

/* A round holds one commit a page; then EFULL until a reset. */
static void
test_full_round(void **state)
{
    fixture_t *f = *state;
    char body[3000];
    uint64_t seq = 0, last = 0;
    unsigned n = 0;
    int rc;

    memset(body, 'x', sizeof body);
    assert_true(journal_fits(f->j, sizeof body));
    while ((rc = journal_commit(f->j, body, sizeof body, &seq)) == JOURNAL_OK) {
        last = seq;
        n++;
        assert_true(n <= COMMIT_PAGES);
    }
    assert_int_equal(rc, JOURNAL_EFULL);
    assert_int_equal(n, COMMIT_PAGES);
    assert_int_equal(journal_pending(f->j), COMMIT_PAGES);
    assert_true(journal_last_seq(f->j) == last);
    assert_int_equal(journal_fits(f->j, sizeof body), 0);
    assert_int_equal(journal_fits(f->j, 0), 0);
    assert_int_equal(journal_commit(f->j, "", 0, &seq), JOURNAL_EFULL);
    assert_true(journal_last_seq(f->j) == last);

    assert_int_equal(journal_reset(f->j), JOURNAL_OK);
    assert_true(journal_fits(f->j, sizeof body));
    assert_true(journal_fits(f->j, journal_max_body()));
    assert_int_equal(journal_commit(f->j, body, sizeof body, &seq), JOURNAL_OK);
    assert_true(seq == last + 1);
    reopen(f);
    assert_int_equal(replay(f), 1);
    assert_true(f->s.seq[0] == last + 1);
    assert_int_equal(f->s.len[0], sizeof body);
}

/* A body larger than journal_max_body() can never fit; one of exactly
 * journal_max_body() fits an empty round. */
static void
test_too_big(void **state)
{
    fixture_t *f = *state;
    size_t max = journal_max_body();
    char *body = xmalloc(max + 1);
    uint64_t seq = 0;

    assert_true(max == JOURNAL_BYTES - JOURNAL_PAGE - COMMIT_HEAD);
    memset(body, 'y', max + 1);
    assert_int_equal(journal_fits(f->j, max + 1), 0);
    assert_int_equal(journal_commit(f->j, body, max + 1, &seq), JOURNAL_EBIG);
    assert_int_equal(journal_pending(f->j), 0);

    assert_true(journal_fits(f->j, max));
    assert_int_equal(journal_commit(f->j, body, max, &seq), JOURNAL_OK);
    assert_int_equal(journal_fits(f->j, 0), 0);
    assert_int_equal(journal_commit(f->j, "z", 1, NULL), JOURNAL_EFULL);
    reopen(f);
    assert_int_equal(replay(f), 1);
    assert_int_equal(f->s.len[0], max);
    assert_true(f->s.seq[0] == seq);
    /* Not even a reset makes room for it. */
    assert_int_equal(journal_reset(f->j), JOURNAL_OK);
    assert_int_equal(journal_commit(f->j, body, max + 1, &seq), JOURNAL_EBIG);
    free(body);
}

/* One owner at a time: a second open (its own open file description, so
 * its own flock) is refused while the first is open. */
static void
test_busy(void **state)
{
    fixture_t *f = *state;
    int err = -1;
    char *errstr = NULL;
    journal_t *other;

    commit_str(f, "mine");
    other = journal_open(f->path, &err, &errstr);
    assert_null(other);
    assert_int_equal(err, JOURNAL_EBUSY);
    assert_non_null(errstr);
    free(errstr);
    /* The refused open left the owner's lock and file alone. */
    commit_str(f, "still mine");
    err = -1;
    errstr = NULL;
    other = journal_open(f->path, &err, &errstr);
    assert_null(other);
    assert_int_equal(err, JOURNAL_EBUSY);
    free(errstr);
    reopen(f);
    assert_int_equal(replay(f), 2);
}

/* A torn header: the journal starts afresh, with a larger seq. */
static void
test_torn_header(void **state)
{
    fixture_t *f = *state;
    unsigned char junk[JOURNAL_PAGE];
    uint64_t last, seq;
    int fd;

    commit_str(f, "a");
    commit_str(f, "b");
    last = commit_str(f, "c");
    journal_close(f->j);
    f->j = NULL;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 7 + 13);
    fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    assert_int_equal(close(fd), 0);
    f->j = open_path(f->path);
    assert_non_null(f->j);
    assert_preallocated(f->path);
    assert_int_equal(replay(f), 0);
    assert_true(journal_last_seq(f->j) > last);
    seq = commit_str(f, "d");
    assert_true(seq > last);
    reopen(f);
    assert_int_equal(replay(f), 1);
    assert_string_equal(f->s.body[0], "d");
    assert_true(f->s.seq[0] == seq);
    last = seq;

    /* One flipped byte of base_seq fails the header's crc the same way. */
    journal_close(f->j);
    f->j = NULL;
    flip_byte(f->path, 9);
    f->j = open_path(f->path);
    assert_non_null(f->j);
    assert_int_equal(replay(f), 0);
    assert_true(journal_last_seq(f->j) > last);
}

/* A file of the wrong size is made again, JOURNAL_BYTES long. */
static void
test_wrong_size(void **state)
{
    fixture_t *f = *state;
    off_t sizes[] = { 0, 100, JOURNAL_PAGE, JOURNAL_BYTES - 1, JOURNAL_BYTES + JOURNAL_PAGE };

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint64_t last = commit_str(f, "before");
        int fd;

        journal_close(f->j);
        f->j = NULL;
        fd = open(f->path, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, sizes[i]), 0);
        assert_int_equal(close(fd), 0);
        f->j = open_path(f->path);
        assert_non_null(f->j);
        assert_preallocated(f->path);
        assert_int_equal(replay(f), 0);
        assert_true(journal_last_seq(f->j) > last);
        assert_true(commit_str(f, "after") > last);
        reopen(f);
        assert_int_equal(replay(f), 1);
        assert_string_equal(f->s.body[0], "after");
    }

    /* A missing file is made too. */
    journal_close(f->j);
    f->j = NULL;
    assert_int_equal(unlink(f->path), 0);
    f->j = open_path(f->path);
    assert_non_null(f->j);
    assert_preallocated(f->path);
}

/* Group commit: threads commit at once; every commit is acknowledged with
 * its own seq and replays with its own body. */
enum { THREADS = 4, EACH = 200 };

typedef struct {
    journal_t *j;
    int t;
    int rc[EACH];
    uint64_t seq[EACH];
} worker_t;

static void *
worker(void *arg)
{
    worker_t *w = arg;

    for (int i = 0; i < EACH; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "t%d-%d", w->t, i);
        w->rc[i] = journal_commit(w->j, body, (size_t)n, &w->seq[i]);
    }
    return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void
test_group_commit(void **state)
{
    fixture_t *f = *state;
    worker_t *w = xcalloc(THREADS, sizeof *w);
    pthread_t tid[THREADS];
    uint64_t *all = xcalloc(THREADS * EACH, sizeof *all);
    uint64_t before = journal_last_seq(f->j);
    int seen[THREADS][EACH];

    for (int t = 0; t < THREADS; t++) {
        w[t].j = f->j;
        w[t].t = t;
        assert_int_equal(pthread_create(&tid[t], NULL, worker, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(tid[t], NULL), 0);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < EACH; i++) {
            assert_int_equal(w[t].rc[i], JOURNAL_OK);
            all[t * EACH + i] = w[t].seq[i];
            if (i > 0)  /* one thread's commits are in its order */
                assert_true(w[t].seq[i] > w[t].seq[i - 1]);
        }
    /* Distinct, and exactly the seqs after the last one before. */
    qsort(all, THREADS * EACH, sizeof *all, cmp_u64);
    for (int k = 0; k < THREADS * EACH; k++)
        assert_true(all[k] == before + 1 + (uint64_t)k);
    assert_true(journal_last_seq(f->j) == before + THREADS * EACH);
    assert_int_equal(journal_pending(f->j), THREADS * EACH);

    reopen(f);
    assert_int_equal(replay(f), THREADS * EACH);
    memset(seen, 0, sizeof seen);
    for (size_t k = 0; k < f->s.n; k++) {
        const char *b = f->s.body[k];
        char *end;
        long t, i;

        assert_true(f->s.seq[k] == before + 1 + k);
        assert_int_equal(b[0], 't');
        t = strtol(b + 1, &end, 10);
        assert_int_equal(*end, '-');
        i = strtol(end + 1, &end, 10);
        assert_int_equal((size_t)(end - b), f->s.len[k]);
        assert_true(t >= 0 && t < THREADS && i >= 0 && i < EACH);
        assert_int_equal(seen[t][i], 0);
        seen[t][i] = 1;
        /* The seq its committer was told. */
        assert_true(w[t].seq[i] == f->s.seq[k]);
    }
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < EACH; i++)
            assert_int_equal(seen[t][i], 1);
    free(all);
    free(w);
}

/* The apply callback: the thread that syncs a group applies each commit
 * of it once, in seq order, then ends the group once, before the commit's
 * own thread returns. */
typedef struct {
    uint64_t base;                 /* the seq before the first commit */
    uint64_t last;                 /* the last seq applied */
    uint64_t ended_to;             /* the last seq whose group has ended */
    int order_ok;
    int fail_seq_offset;           /* this commit (base + offset) fails; 0: none */
    int fail_group_offset;         /* the group of this commit fails at its end */
    int failed_group;              /* commits in the group that failed at its end */
    int groups;
    unsigned char applied[THREADS * EACH + 1];
    unsigned char ended[THREADS * EACH + 1];
} applied_t;

static int
record_apply(uint64_t seq, const char *body, size_t len, void *arg)
{
    applied_t *a = arg;
    uint64_t k = seq - a->base;

    (void)body;
    (void)len;
    if (seq <= a->last || k > THREADS * EACH)
        a->order_ok = 0;
    else
        __atomic_store_n(&a->applied[k], 1, __ATOMIC_RELEASE);
    a->last = seq;
    return a->fail_seq_offset && k == (uint64_t)a->fail_seq_offset;
}

static int
record_group_end(void *arg)
{
    applied_t *a = arg;
    uint64_t from = a->ended_to + 1 - a->base, to = a->last - a->base;
    int fail = from <= (uint64_t)a->fail_group_offset && (uint64_t)a->fail_group_offset <= to;

    if (a->last <= a->ended_to)
        a->order_ok = 0;    /* a group with no commit */
    for (uint64_t k = from; k <= to && k <= THREADS * EACH; k++)
        __atomic_store_n(&a->ended[k], 1, __ATOMIC_RELEASE);
    if (fail)
        a->failed_group = (int)(to - from + 1);
    a->ended_to = a->last;
    a->groups++;
    return fail;
}

typedef struct {
    journal_t *j;
    applied_t *a;
    int t;
    int missing;       /* commits that returned before they were applied */
    int eapply;        /* commits that returned JOURNAL_EAPPLY */
    int other;         /* any other result */
} apply_worker_t;

static void *
apply_worker(void *arg)
{
    apply_worker_t *w = arg;

    for (int i = 0; i < EACH; i++) {
        char body[32];
        uint64_t seq = 0;
        int n = snprintf(body, sizeof body, "t%d-%d", w->t, i);
        int rc = journal_commit(w->j, body, (size_t)n, &seq);

        if (rc == JOURNAL_EAPPLY)
            w->eapply++;
        else if (rc != JOURNAL_OK)
            w->other++;
        if (!seq || !__atomic_load_n(&w->a->applied[seq - w->a->base], __ATOMIC_ACQUIRE) ||
            !__atomic_load_n(&w->a->ended[seq - w->a->base], __ATOMIC_ACQUIRE))
            w->missing++;
    }
    return NULL;
}

static void
test_apply(void **state)
{
    fixture_t *f = *state;
    applied_t *a = xcalloc(1, sizeof *a);
    apply_worker_t w[THREADS];
    pthread_t tid[THREADS];
    int eapply = 0;

    a->base = a->last = a->ended_to = journal_last_seq(f->j);
    a->order_ok = 1;
    a->fail_seq_offset = 17;
    a->fail_group_offset = 100;
    journal_set_apply(f->j, record_apply, record_group_end, a);
    for (int t = 0; t < THREADS; t++) {
        w[t] = (apply_worker_t){f->j, a, t, 0, 0, 0};
        assert_int_equal(pthread_create(&tid[t], NULL, apply_worker, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(tid[t], NULL), 0);
        assert_int_equal(w[t].missing, 0);
        assert_int_equal(w[t].other, 0);
        eapply += w[t].eapply;
    }
    assert_true(a->order_ok);
    /* Commit 17 failed alone; every commit of 100's group failed at its
     * end (the groups are at most THREADS long, so 17 is not in it). */
    assert_true(a->failed_group >= 1 && a->failed_group <= THREADS);
    assert_int_equal(eapply, 1 + a->failed_group);
    assert_true(a->groups >= THREADS * EACH / THREADS && a->groups <= THREADS * EACH);
    for (int k = 1; k <= THREADS * EACH; k++)
        assert_int_equal(a->applied[k], 1);
    /* A commit whose apply failed is durable all the same. */
    journal_set_apply(f->j, NULL, NULL, NULL);
    reopen(f);
    assert_int_equal(replay(f), THREADS * EACH);
    free(a);
}

/* Submitted commits: the calling thread goes on, and each commit's done
 * is called exactly once, after its apply, with its seq; threads that
 * submit and threads that wait in journal_commit() share the groups.  By
 * the time every thread has returned, every done has been called. */
typedef struct {
    applied_t *a;
    int calls[THREADS * EACH];     /* done calls, by commit (t * EACH + i) */
    uint64_t seq[THREADS * EACH];
    int bad;                       /* a done before its apply, or not OK */
} submitted_t;

typedef struct {
    submitted_t *sub;
    int index;
} submit_ctx_t;

static void
record_done(int rc, uint64_t seq, void *arg)
{
    submit_ctx_t *c = arg;
    submitted_t *sub = c->sub;

    if (rc != JOURNAL_OK || !seq ||
        !__atomic_load_n(&sub->a->applied[seq - sub->a->base], __ATOMIC_ACQUIRE) ||
        !__atomic_load_n(&sub->a->ended[seq - sub->a->base], __ATOMIC_ACQUIRE))
        __atomic_store_n(&sub->bad, 1, __ATOMIC_RELAXED);
    sub->seq[c->index] = seq;
    __atomic_add_fetch(&sub->calls[c->index], 1, __ATOMIC_ACQ_REL);
    free(c);
}

typedef struct {
    journal_t *j;
    submitted_t *sub;
    int t;
    int other;         /* a result that is not JOURNAL_OK */
} submit_worker_t;

static void *
submit_worker(void *arg)
{
    submit_worker_t *w = arg;

    for (int i = 0; i < EACH; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "t%d-%d", w->t, i);
        int rc;

        if (w->t % 2 == 0) {
            submit_ctx_t *c = xmalloc(sizeof *c);

            *c = (submit_ctx_t){w->sub, w->t * EACH + i};
            rc = journal_submit(w->j, body, (size_t)n, record_done, c);
        } else {
            uint64_t seq = 0;

            rc = journal_commit(w->j, body, (size_t)n, &seq);
            w->sub->seq[w->t * EACH + i] = seq;
            __atomic_add_fetch(&w->sub->calls[w->t * EACH + i], 1, __ATOMIC_ACQ_REL);
        }
        if (rc != JOURNAL_OK)
            w->other++;
    }
    return NULL;
}

static void
test_submit(void **state)
{
    fixture_t *f = *state;
    applied_t *a = xcalloc(1, sizeof *a);
    submitted_t *sub = xcalloc(1, sizeof *sub);
    submit_worker_t w[THREADS];
    pthread_t tid[THREADS];

    a->base = a->last = a->ended_to = journal_last_seq(f->j);
    a->order_ok = 1;
    sub->a = a;
    journal_set_apply(f->j, record_apply, record_group_end, a);
    for (int t = 0; t < THREADS; t++) {
        w[t] = (submit_worker_t){f->j, sub, t, 0};
        assert_int_equal(pthread_create(&tid[t], NULL, submit_worker, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(tid[t], NULL), 0);
        assert_int_equal(w[t].other, 0);
    }
    assert_true(a->order_ok);
    assert_int_equal(sub->bad, 0);
    for (int k = 0; k < THREADS * EACH; k++)
        assert_int_equal(sub->calls[k], 1);
    /* Every commit has a seq of its own, one after the other. */
    qsort(sub->seq, THREADS * EACH, sizeof *sub->seq, cmp_u64);
    for (int k = 0; k < THREADS * EACH; k++)
        assert_true(sub->seq[k] == a->base + 1 + (uint64_t)k);
    journal_set_apply(f->j, NULL, NULL, NULL);
    reopen(f);
    assert_int_equal(replay(f), THREADS * EACH);
    free(sub);
    free(a);
}

/* journal_make_room(): a full round gets a new one, with ready told the
 * last seq first; a round with room is left as it is. */
typedef struct {
    int calls;
    uint64_t last;
    int fail;
} room_seen_t;

static int
record_room(uint64_t last, void *arg)
{
    room_seen_t *r = arg;

    r->calls++;
    r->last = last;
    return r->fail;
}

static void
test_make_room(void **state)
{
    fixture_t *f = *state;
    room_seen_t r = {0, 0, 0};
    uint64_t last, seq;
    int n = 0;

    assert_int_equal(journal_make_room(f->j, 10, record_room, &r), JOURNAL_OK);
    assert_int_equal(r.calls, 0);
    while (journal_commit(f->j, "x", 1, &seq) == JOURNAL_OK)
        n++;
    assert_int_equal(n, COMMIT_PAGES);
    last = journal_last_seq(f->j);
    assert_int_equal(journal_submit(f->j, "y", 1, NULL, NULL), JOURNAL_EFULL);
    r.fail = 1;
    assert_int_equal(journal_make_room(f->j, 1, record_room, &r), JOURNAL_EIO);
    assert_int_equal(r.calls, 1);
    assert_int_equal(journal_submit(f->j, "y", 1, NULL, NULL), JOURNAL_EFULL);
    r.fail = 0;
    assert_int_equal(journal_make_room(f->j, 1, record_room, &r), JOURNAL_OK);
    assert_int_equal(r.calls, 2);
    assert_true(r.last == last);
    assert_int_equal(journal_commit(f->j, "z", 1, &seq), JOURNAL_OK);
    assert_true(seq == last + 1);
    reopen(f);
    assert_int_equal(replay(f), 1);
    assert_string_equal(f->s.body[0], "z");
}

/* The descriptors this process has open on path. */
static int
fds_on(const char *path, int *fds, int max)
{
    char want[PATH_MAX], link[PATH_MAX], name[64];
    int n = 0;

    if (!realpath(path, want))
        return 0;
    for (int fd = 0; fd < 1024 && n < max; fd++) {
        ssize_t len;

        snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
        len = readlink(name, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strcmp(link, want) == 0)
            fds[n++] = fd;
    }
    return n;
}

/* A write that fails fails the whole batch and gives its place and seqs
 * to the next commit, so the file never has a gap a replay stops at. */
static void
test_failed_write(void **state)
{
    fixture_t *f = *state;
    int fds[4], saved[4], n, ro;
    uint64_t a, seq = 99;

    a = commit_str(f, "a");
    n = fds_on(f->path, fds, 4);
    assert_true(n >= 1);
    ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    for (int i = 0; i < n; i++) {
        saved[i] = dup(fds[i]);
        assert_true(saved[i] >= 0);
        assert_true(dup2(ro, fds[i]) == fds[i]);
    }
    assert_int_equal(journal_commit(f->j, "b", 1, &seq), JOURNAL_EIO);
    assert_true(seq == 0);
    for (int i = 0; i < n; i++) {
        assert_true(dup2(saved[i], fds[i]) == fds[i]);
        close(saved[i]);
    }
    close(ro);
    assert_true(commit_str(f, "c") == a + 1);
    reopen(f);
    assert_int_equal(replay(f), 2);
    assert_string_equal(f->s.body[0], "a");
    assert_string_equal(f->s.body[1], "c");
    assert_true(f->s.seq[1] == a + 1);
}

/* A callback's failure stops the replay with -1. */
static void
test_replay_fails(void **state)
{
    fixture_t *f = *state;

    commit_str(f, "a");
    commit_str(f, "b");
    commit_str(f, "c");
    reopen(f);
    seen_free(&f->s);
    f->s.fail_at = 2;
    assert_int_equal(journal_replay(f->j, collect, &f->s), -1);
    assert_int_equal(f->s.n, 2);
    assert_string_equal(f->s.body[0], "a");
    assert_string_equal(f->s.body[1], "b");
}

static void
test_crc32(void **state)
{
    (void)state;
    assert_true(journal_crc32(0, "123456789", 9) == 0xCBF43926u);
    /* Continued from a part, as zlib's crc32(). */
    assert_true(journal_crc32(journal_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    assert_true(journal_crc32(0, "", 0) == 0);
    assert_true(journal_crc32(0, "a", 1) == 0xE8B7BE43u);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_roundtrip),
        T(test_commit_after_replay),
        T(test_torn_commit),
        T(test_torn_tail_stays_dropped),
        T(test_bad_commit_header),
        T(test_reset),
        T(test_full_round),
        T(test_too_big),
        T(test_busy),
        T(test_torn_header),
        T(test_wrong_size),
        T(test_group_commit),
        T(test_replay_fails),
        T(test_apply),
        T(test_failed_write),
        T(test_submit),
        T(test_make_room),
        cmocka_unit_test(test_crc32),
    };

    log_setup(LOG_ERROR, LOG_TEXT);
    return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
