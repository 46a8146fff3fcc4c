/* Unit tests of core/queue/queue.c: each test gets its own state_dir. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgi/cmd.h"
#include "core/queue/queue.h"
#include "core/util/xalloc.h"

typedef struct {
    char root[64];        /* the mkdtemp directory */
    char *state;          /* root/state */
    queue_limits_t limits;
    queue_t *q;
} fixture_t;

static const queue_limits_t default_limits = {
    .max_jobs = 1000,
    .max_attempts = 3,
    .retry_base_ms = 50,
    .retry_max_ms = 200,
    .keep_done_ms = 3600 * 1000L,
};

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
setup(void **state)
{
    fixture_t *f = xcalloc(1, sizeof *f);
    char *err = NULL;

    snprintf(f->root, sizeof f->root, "/tmp/tdhook-queue-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    f->state = xasprintf("%s/state", f->root);
    f->limits = default_limits;
    f->q = queue_open(f->state, &f->limits, &err);
    if (!f->q) {
        fprintf(stderr, "queue_open: %s\n", err);
        free(err);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    queue_close(f->q);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f->state);
    free(f);
    return 0;
}

/* Reopens the fixture's queue with other limits. */
static void
reopen(fixture_t *f, const queue_limits_t *limits)
{
    char *err = NULL;

    queue_close(f->q);
    f->limits = *limits;
    f->q = queue_open(f->state, &f->limits, &err);
    assert_non_null(f->q);
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int
file_exists(const fixture_t *f, const char *dir, const char *id, const char *suffix)
{
    char *path = xasprintf("%s/%s/%s%s", f->state, dir, id, suffix);
    int ok = access(path, F_OK) == 0;

    free(path);
    return ok;
}

/* Sets the mtime (and atime) of a file to ago_ms in the past. */
static void
age_file(const char *path, long long ago_ms)
{
    struct timeval tv[2];
    long long t = now_ms() - ago_ms;

    tv[0].tv_sec = (time_t)(t / 1000);
    tv[0].tv_usec = (suseconds_t)(t % 1000) * 1000;
    tv[1] = tv[0];
    assert_int_equal(utimes(path, tv), 0);
}

static unsigned long long
fnv1a64(const char *s)
{
    unsigned long long h = 0xcbf29ce484222325ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void
enqueue(fixture_t *f, const char *kind, char *id)
{
    json_object *payload = json_object_new_object();
    int dup = -1;

    json_object_object_add(payload, "n", json_object_new_int(42));
    assert_int_equal(queue_enqueue(f->q, kind, payload, NULL, id, &dup), QUEUE_OK);
    assert_int_equal(dup, 0);
    json_object_put(payload);
}

static job_t *
get(fixture_t *f, const char *id, job_status_t want)
{
    job_t *job = NULL;

    assert_int_equal(queue_get(f->q, id, &job), QUEUE_OK);
    assert_non_null(job);
    assert_string_equal(job->id, id);
    assert_int_equal(job->status, want);
    return job;
}

static job_t *
claim(fixture_t *f, const char *want_id)
{
    job_t *job = NULL;
    long wait_ms = -2;

    assert_int_equal(queue_claim(f->q, &job, &wait_ms), QUEUE_OK);
    assert_non_null(job);
    if (want_id)
        assert_string_equal(job->id, want_id);
    assert_int_equal(job->status, JOB_RUNNING);
    return job;
}

static long
claim_empty(fixture_t *f)
{
    job_t *job = NULL;
    long wait_ms = -2;

    assert_int_equal(queue_claim(f->q, &job, &wait_ms), QUEUE_EMPTY);
    assert_null(job);
    return wait_ms;
}

/* --- tests ---------------------------------------------------------------- */

static void
test_enqueue_get(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    json_object *o, *v;
    job_t *job;
    size_t i;

    enqueue(f, "stock-check", id);
    assert_int_equal(strlen(id), 24);
    for (i = 0; i < 24; i++)
        assert_non_null(strchr("0123456789abcdef-", id[i]));
    assert_true(file_exists(f, "queue", id, ".job"));
    assert_int_equal(queue_depth(f->q), 1);

    job = get(f, id, JOB_QUEUED);
    assert_string_equal(job->kind, "stock-check");
    assert_int_equal(job->attempts, 0);
    assert_null(job->last_error);
    assert_true(json_object_object_get_ex(job->payload, "n", &v));
    assert_int_equal(json_object_get_int(v), 42);
    assert_true(job->created_ms > now_ms() - 10000 && job->created_ms <= now_ms());

    o = job_to_json(job);
    assert_true(json_object_object_get_ex(o, "job", &v));
    assert_string_equal(json_object_get_string(v), id);
    assert_true(json_object_object_get_ex(o, "status", &v));
    assert_string_equal(json_object_get_string(v), "queued");
    assert_true(json_object_object_get_ex(o, "attempts", &v));
    assert_int_equal(json_object_get_int(v), 0);
    assert_true(json_object_object_get_ex(o, "created", &v));
    assert_int_equal(strlen(json_object_get_string(v)), 20);
    assert_false(json_object_object_get_ex(o, "error", &v));
    json_object_put(o);
    job_free(job);

    /* ids are time-ordered */
    {
        char id2[QUEUE_ID_MAX];
        sleep_ms(2);
        enqueue(f, "mail", id2);
        assert_true(strcmp(id, id2) < 0);
    }
}

static void
test_claim_running_done(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX], *err = NULL;
    json_object *result, *o, *v;
    queue_t *q2;
    job_t *job, *seen;
    pid_t pid;
    int status;

    enqueue(f, "reservation", id);
    job = claim(f, id);
    assert_int_equal(job->attempts, 1);

    /* seen as running through this queue_t, another one, another process */
    seen = get(f, id, JOB_RUNNING);
    job_free(seen);
    q2 = queue_open(f->state, &f->limits, &err);
    assert_non_null(q2);
    assert_int_equal(queue_get(q2, id, &seen), QUEUE_OK);
    assert_int_equal(seen->status, JOB_RUNNING);
    assert_int_equal(seen->attempts, 1);
    job_free(seen);
    assert_int_equal(queue_claim(q2, &seen, NULL), QUEUE_EMPTY);
    queue_close(q2);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        queue_t *cq = queue_open(f->state, &f->limits, &err);
        job_t *cj = NULL;
        int ok = cq && queue_get(cq, id, &cj) == QUEUE_OK && cj->status == JOB_RUNNING;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    result = json_object_new_object();
    json_object_object_add(result, "mailed", json_object_new_int(3));
    assert_int_equal(queue_done(f->q, job, result), QUEUE_OK);
    json_object_put(result);

    assert_false(file_exists(f, "queue", id, ".job"));
    assert_true(file_exists(f, "done", id, ".job"));
    assert_false(file_exists(f, "lock", id, ""));
    seen = get(f, id, JOB_DONE);
    assert_int_equal(seen->attempts, 1);
    assert_true(json_object_object_get_ex(seen->result, "mailed", &v));
    assert_int_equal(json_object_get_int(v), 3);
    o = job_to_json(seen);
    assert_true(json_object_object_get_ex(o, "status", &v));
    assert_string_equal(json_object_get_string(v), "done");
    assert_true(json_object_object_get_ex(o, "result", &v));
    assert_true(json_object_object_get_ex(v, "mailed", &v));
    json_object_put(o);
    job_free(seen);

    assert_int_equal(claim_empty(f), -1);
    assert_int_equal(queue_depth(f->q), 0);
}

static void
test_retry_backoff(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_status_t st = JOB_QUEUED;
    job_t *job;
    json_object *o, *v;
    long long t0, t1;
    long wait;

    enqueue(f, "mail", id);
    job = claim(f, id);
    t0 = now_ms();
    assert_int_equal(queue_retry(f->q, job, "smtp: 451 try later", -1, &st), QUEUE_OK);
    t1 = now_ms();
    assert_int_equal(st, JOB_RETRYING);

    job = get(f, id, JOB_RETRYING);
    assert_int_equal(job->attempts, 1);
    assert_string_equal(job->last_error, "smtp: 451 try later");
    /* first backoff: retry_base with jitter, between half and all of it */
    assert_true(job->not_before_ms >= t0 + 25 && job->not_before_ms <= t1 + 50);
    o = job_to_json(job);
    assert_true(json_object_object_get_ex(o, "status", &v));
    assert_string_equal(json_object_get_string(v), "retrying");
    assert_true(json_object_object_get_ex(o, "error", &v));
    assert_string_equal(json_object_get_string(v), "smtp: 451 try later");
    json_object_put(o);
    job_free(job);

    wait = claim_empty(f);
    assert_true(wait >= 0 && wait <= 50);
    sleep_ms(wait + 5);
    job = claim(f, id);
    assert_int_equal(job->attempts, 2);
    assert_string_equal(job->last_error, "smtp: 451 try later");

    /* second backoff: base * 2 = 100, jitter in [50, 100] */
    t0 = now_ms();
    assert_int_equal(queue_retry(f->q, job, "again", -1, &st), QUEUE_OK);
    t1 = now_ms();
    assert_int_equal(st, JOB_RETRYING);
    job = get(f, id, JOB_RETRYING);
    assert_true(job->not_before_ms >= t0 + 50 && job->not_before_ms <= t1 + 100);
    job_free(job);
    wait = claim_empty(f);
    assert_true(wait >= 0 && wait <= 100);
}

static void
test_backoff_cap(void **state)
{
    fixture_t *f = *state;
    queue_limits_t l = default_limits;
    char id[QUEUE_ID_MAX];
    job_status_t st;
    job_t *job;
    int i;
    long long t0, t1;
    long wait;

    l.max_attempts = 20;
    l.retry_base_ms = 1000;
    l.retry_max_ms = 3000;
    reopen(f, &l);
    enqueue(f, "mail", id);
    for (i = 0; i < 6; i++) {
        job = claim(f, id);
        assert_int_equal(queue_retry(f->q, job, "x", 0, &st), QUEUE_OK);
    }
    job = claim(f, id);
    assert_int_equal(job->attempts, 7);
    t0 = now_ms();
    assert_int_equal(queue_retry(f->q, job, "x", -1, &st), QUEUE_OK);
    t1 = now_ms();
    job = get(f, id, JOB_RETRYING);
    /* 1000 * 2^6 capped at 3000, jitter in [1500, 3000] */
    assert_true(job->not_before_ms >= t0 + 1500 && job->not_before_ms <= t1 + 3000);
    job_free(job);
    wait = claim_empty(f);
    assert_true(wait > 0 && wait <= 3000);
}

static void
test_retry_after(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_status_t st;
    job_t *job;
    long wait;

    enqueue(f, "reservation", id);
    job = claim(f, id);
    assert_int_equal(queue_retry(f->q, job, "429", 0, &st), QUEUE_OK);
    job = claim(f, id);     /* due at once */
    assert_int_equal(job->attempts, 2);

    assert_int_equal(queue_retry(f->q, job, "429", 10000, &st), QUEUE_OK);
    wait = claim_empty(f);
    assert_true(wait > 9000 && wait <= 10000);

    /* at most a day, even when a peer asks for more */
    assert_int_equal(queue_drop(f->q, id), QUEUE_OK);
    enqueue(f, "reservation", id);
    job = claim(f, id);
    assert_int_equal(queue_retry(f->q, job, "503", 3L * 24 * 3600 * 1000, &st), QUEUE_OK);
    job = get(f, id, JOB_RETRYING);
    assert_true(job->not_before_ms <= now_ms() + 24LL * 3600 * 1000);
    assert_true(job->not_before_ms > now_ms() + 23LL * 3600 * 1000);
    job_free(job);
}

static void
test_max_attempts_dead(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_status_t st;
    job_t *job;
    json_object *o, *v;
    int i;

    enqueue(f, "stock-check", id);
    for (i = 1; i <= 3; i++) {
        job = claim(f, id);
        assert_int_equal(job->attempts, i);
        st = JOB_QUEUED;
        assert_int_equal(queue_retry(f->q, job, "topdesk: 503", 0, &st), QUEUE_OK);
        assert_int_equal(st, i < 3 ? JOB_RETRYING : JOB_DEAD);
    }
    assert_true(file_exists(f, "dead", id, ".job"));
    assert_false(file_exists(f, "queue", id, ".job"));
    job = get(f, id, JOB_DEAD);
    assert_int_equal(job->attempts, 3);
    assert_string_equal(job->last_error, "topdesk: 503");
    o = job_to_json(job);
    assert_true(json_object_object_get_ex(o, "status", &v));
    assert_string_equal(json_object_get_string(v), "dead");
    assert_true(json_object_object_get_ex(o, "error", &v));
    assert_string_equal(json_object_get_string(v), "topdesk: 503");
    json_object_put(o);
    job_free(job);
    assert_int_equal(queue_depth(f->q), 0);
    assert_int_equal(queue_dead_count(f->q), 1);
    assert_int_equal(claim_empty(f), -1);
}

static void
test_fail_dead(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_t *job;

    enqueue(f, "reservation", id);
    job = claim(f, id);
    assert_int_equal(queue_fail(f->q, job, "topdesk: 404 no such reservation"), QUEUE_OK);
    job = get(f, id, JOB_DEAD);
    assert_int_equal(job->attempts, 1);
    assert_string_equal(job->last_error, "topdesk: 404 no such reservation");
    job_free(job);
    assert_false(file_exists(f, "lock", id, ""));
}

static void
test_requeue(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX], id2[QUEUE_ID_MAX];
    job_t *job;

    enqueue(f, "mail", id);
    job = claim(f, id);
    assert_int_equal(queue_fail(f->q, job, "smtp: 550"), QUEUE_OK);
    assert_int_equal(queue_dead_count(f->q), 1);

    assert_int_equal(queue_requeue(f->q, id), QUEUE_OK);
    assert_int_equal(queue_dead_count(f->q), 0);
    assert_false(file_exists(f, "dead", id, ".job"));
    job = get(f, id, JOB_QUEUED);
    assert_int_equal(job->attempts, 0);
    assert_string_equal(job->last_error, "smtp: 550");
    assert_true(job->not_before_ms <= now_ms());
    job_free(job);

    job = claim(f, id);
    assert_int_equal(job->attempts, 1);
    /* a running job cannot be requeued (nor dropped) */
    assert_int_equal(queue_requeue(f->q, id), QUEUE_EINVAL);
    assert_int_equal(queue_drop(f->q, id), QUEUE_EINVAL);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    /* nor a finished one */
    assert_int_equal(queue_requeue(f->q, id), QUEUE_EINVAL);
    assert_int_equal(queue_requeue(f->q, "000000000000-00000000000"), QUEUE_ENOENT);

    /* a pending one is made due at once */
    enqueue(f, "mail", id2);
    job = claim(f, id2);
    assert_int_equal(queue_retry(f->q, job, "later", 60000, NULL), QUEUE_OK);
    claim_empty(f);
    assert_int_equal(queue_requeue(f->q, id2), QUEUE_OK);
    job = claim(f, id2);
    assert_int_equal(job->attempts, 1);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
}

static void
test_drop(void **state)
{
    fixture_t *f = *state;
    char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], c[QUEUE_ID_MAX];
    job_t *job;

    enqueue(f, "mail", a);
    enqueue(f, "mail", b);
    enqueue(f, "mail", c);
    job = claim(f, a);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    job = claim(f, b);
    assert_int_equal(queue_fail(f->q, job, "no"), QUEUE_OK);

    assert_int_equal(queue_drop(f->q, a), QUEUE_OK);
    assert_int_equal(queue_drop(f->q, b), QUEUE_OK);
    assert_int_equal(queue_drop(f->q, c), QUEUE_OK);
    assert_int_equal(queue_get(f->q, a, &job), QUEUE_ENOENT);
    assert_null(job);
    assert_int_equal(queue_get(f->q, b, &job), QUEUE_ENOENT);
    assert_int_equal(queue_get(f->q, c, &job), QUEUE_ENOENT);
    assert_int_equal(queue_drop(f->q, c), QUEUE_ENOENT);
    assert_false(file_exists(f, "lock", a, ""));
    assert_false(file_exists(f, "lock", c, ""));
    assert_int_equal(queue_depth(f->q), 0);
    assert_int_equal(queue_dead_count(f->q), 0);
    assert_int_equal(claim_empty(f), -1);
}

static void
test_idempotency(void **state)
{
    fixture_t *f = *state;
    char id1[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], id3[QUEUE_ID_MAX], id4[QUEUE_ID_MAX];
    json_object *p = json_object_new_object();
    int dup = -1;
    char *path, *expect;
    FILE *fp;
    char line[256];

    assert_int_equal(queue_enqueue(f->q, "reservation", p, "evt-1", id1, &dup), QUEUE_OK);
    assert_int_equal(dup, 0);
    assert_int_equal(queue_enqueue(f->q, "reservation", p, "evt-1", id2, &dup), QUEUE_OK);
    assert_int_equal(dup, 1);
    assert_string_equal(id1, id2);
    assert_int_equal(queue_depth(f->q), 1);

    assert_int_equal(queue_enqueue(f->q, "reservation", p, "evt-2", id3, &dup), QUEUE_OK);
    assert_int_equal(dup, 0);
    assert_string_not_equal(id1, id3);
    assert_int_equal(queue_depth(f->q), 2);

    /* the key file idem/FNV1A64 holds "ID\tKEY"; one older than a day no
     * longer counts */
    path = xasprintf("%s/idem/%016llx", f->state, fnv1a64("evt-1"));
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    expect = xasprintf("%s\tevt-1", id1);
    assert_string_equal(line, expect);
    free(expect);
    age_file(path, 25 * 3600 * 1000LL);
    free(path);
    assert_int_equal(queue_enqueue(f->q, "reservation", p, "evt-1", id4, &dup), QUEUE_OK);
    assert_int_equal(dup, 0);
    assert_string_not_equal(id1, id4);
    assert_int_equal(queue_depth(f->q), 3);
    json_object_put(p);
}

static void
test_full(void **state)
{
    fixture_t *f = *state;
    queue_limits_t l = default_limits;
    char id[QUEUE_ID_MAX], first[QUEUE_ID_MAX];
    json_object *p = json_object_new_object();
    job_t *job;
    int dup, i;

    l.max_jobs = 3;
    reopen(f, &l);
    for (i = 0; i < 3; i++)
        enqueue(f, "mail", i == 0 ? first : id);
    assert_int_equal(queue_enqueue(f->q, "mail", p, NULL, id, &dup), QUEUE_EFULL);
    assert_int_equal(queue_depth(f->q), 3);
    /* a duplicate is still answered when full */
    job = claim(f, first);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    assert_int_equal(queue_enqueue(f->q, "mail", p, NULL, id, &dup), QUEUE_OK);
    assert_int_equal(queue_enqueue(f->q, "mail", p, NULL, id, &dup), QUEUE_EFULL);
    json_object_put(p);
}

static void
test_invalid_ids(void **state)
{
    fixture_t *f = *state;
    static const char *const bad[] = {
        "../etc", "", "../../../../../etc/passwd", "0123456789ab-0123456789ab",
        "0123456789ab-0123456789", "0123456789AB-0123456789a", "0123456789ab/0123456789a",
        "0123456789ab.0123456789a", "../queue/0123456789ab-01",
    };
    job_t *job = NULL;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(queue_get(f->q, bad[i], &job), QUEUE_EINVAL);
        assert_null(job);
        assert_int_equal(queue_requeue(f->q, bad[i]), QUEUE_EINVAL);
        assert_int_equal(queue_drop(f->q, bad[i]), QUEUE_EINVAL);
    }
    assert_int_equal(queue_get(f->q, NULL, &job), QUEUE_EINVAL);
    assert_int_equal(queue_get(f->q, "0123456789ab-0123456789a", &job), QUEUE_ENOENT);
    assert_int_equal(queue_drop(f->q, "0123456789ab-0123456789a"), QUEUE_ENOENT);
    assert_int_equal(queue_enqueue(f->q, "a-kind-name-that-is-far-too-long-to-keep",
                                   NULL, NULL, (char[QUEUE_ID_MAX]){0}, NULL), QUEUE_EINVAL);
}

static void
test_crash_recovery(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_t *job;
    pid_t pid;
    int status, round;

    enqueue(f, "reservation", id);
    for (round = 0; round < 2; round++) {
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char *err = NULL;
            queue_t *cq = queue_open(f->state, &f->limits, &err);
            job_t *cj = NULL;
            if (!cq || queue_claim(cq, &cj, NULL) != QUEUE_OK)
                _exit(1);
            if (round == 0)
                _exit(0);           /* dies without finishing */
            raise(SIGKILL);         /* kill -9 */
            _exit(2);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (round == 0) {
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        } else {
            assert_true(WIFSIGNALED(status));
            assert_int_equal(WTERMSIG(status), SIGKILL);
        }
        job = get(f, id, JOB_RETRYING);
        assert_int_equal(job->attempts, round + 1);
        job_free(job);
    }
    job = claim(f, id);
    assert_int_equal(job->attempts, 3);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    job = get(f, id, JOB_DONE);
    job_free(job);
}

static void
test_concurrency(void **state)
{
    enum { JOBS = 200, CHILDREN = 4 };
    fixture_t *f = *state;
    char (*ids)[QUEUE_ID_MAX] = xcalloc(JOBS, sizeof *ids);
    char *log = xasprintf("%s/claimed", f->root);
    int seen[JOBS];
    char line[64];
    pid_t pids[CHILDREN];
    FILE *fp;
    int i, n = 0, status;

    for (i = 0; i < JOBS; i++)
        enqueue(f, "mail", ids[i]);
    for (i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char *err = NULL;
            queue_t *cq = queue_open(f->state, &f->limits, &err);
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
            job_t *cj;
            if (!cq || fd < 0)
                _exit(1);
            while (queue_claim(cq, &cj, NULL) == QUEUE_OK) {
                char buf[QUEUE_ID_MAX + 1];
                int len = snprintf(buf, sizeof buf, "%s\n", cj->id);
                if (write(fd, buf, (size_t)len) != len)
                    _exit(1);
                if (queue_done(cq, cj, NULL) != QUEUE_OK)
                    _exit(1);
            }
            close(fd);
            queue_close(cq);
            _exit(0);
        }
    }
    for (i = 0; i < CHILDREN; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    memset(seen, 0, sizeof seen);
    fp = fopen(log, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        for (i = 0; i < JOBS; i++)
            if (strcmp(ids[i], line) == 0)
                break;
        assert_true(i < JOBS);
        assert_int_equal(seen[i], 0);   /* claimed exactly once */
        seen[i] = 1;
        n++;
    }
    fclose(fp);
    assert_int_equal(n, JOBS);
    for (i = 0; i < JOBS; i++) {
        job_t *job = get(f, ids[i], JOB_DONE);
        assert_int_equal(job->attempts, 1);
        job_free(job);
    }
    assert_int_equal(queue_depth(f->q), 0);
    free(log);
    free(ids);
}

static void
test_unwritable(void **state)
{
    fixture_t *f = *state;
    char *file = xasprintf("%s/plainfile", f->root);
    char *sub = xasprintf("%s/sub", file);
    char *tmp = xasprintf("%s/tmp", f->state);
    char *err = NULL;
    char id[QUEUE_ID_MAX];
    json_object *p = json_object_new_object();
    FILE *fp;
    queue_t *q;

    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    q = queue_open(sub, &f->limits, &err);
    assert_null(q);
    assert_non_null(err);
    assert_non_null(strstr(err, "plainfile"));
    free(err);
    err = NULL;
    assert_null(queue_open("", &f->limits, &err));
    assert_non_null(err);
    free(err);

    /* tmp/ replaced by a file: nothing can be written, even as root */
    assert_true(queue_writable(f->q));
    assert_int_equal(rmdir(tmp), 0);
    fp = fopen(tmp, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_true(queue_writable(f->q));   /* the last probe holds for a second */
    sleep_ms(1100);
    assert_false(queue_writable(f->q));
    assert_int_equal(queue_enqueue(f->q, "mail", p, NULL, id, NULL), QUEUE_EIO);
    assert_int_equal(queue_depth(f->q), 0);
    json_object_put(p);
    free(file);
    free(sub);
    free(tmp);
}

static void
test_io_error_paths(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    char *tmp = xasprintf("%s/tmp", f->state);
    char *tmp2 = xasprintf("%s/tmp.away", f->state);
    job_status_t st = JOB_QUEUED;
    job_t *job;

    enqueue(f, "mail", id);
    job = claim(f, id);
    /* done cannot be written: the job stays pending and is claimed again */
    assert_int_equal(rename(tmp, tmp2), 0);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_EIO);
    assert_int_equal(queue_claim(f->q, &job, NULL), QUEUE_EIO);   /* cannot count it */
    assert_null(job);
    assert_int_equal(rename(tmp2, tmp), 0);
    job = claim(f, id);
    assert_int_equal(job->attempts, 2);
    /* nor can a retry: the job stays due */
    assert_int_equal(rename(tmp, tmp2), 0);
    assert_int_equal(queue_retry(f->q, job, "x", 60000, &st), QUEUE_EIO);
    assert_int_equal(st, JOB_QUEUED);
    assert_int_equal(queue_fail(f->q, NULL, "x"), QUEUE_EINVAL);
    assert_int_equal(rename(tmp2, tmp), 0);
    job = claim(f, id);
    assert_int_equal(job->attempts, 3);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    free(tmp);
    free(tmp2);
}

static void
test_not_claimed(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_t *job;

    enqueue(f, "mail", id);
    job = get(f, id, JOB_QUEUED);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_EINVAL);
    job = get(f, id, JOB_QUEUED);
    assert_int_equal(queue_retry(f->q, job, "x", 0, NULL), QUEUE_EINVAL);
    job = get(f, id, JOB_QUEUED);
    assert_int_equal(queue_fail(f->q, job, "x"), QUEUE_EINVAL);
    job = get(f, id, JOB_QUEUED);
    job_free(job);
}

static void
test_prune(void **state)
{
    fixture_t *f = *state;
    char old[QUEUE_ID_MAX], young[QUEUE_ID_MAX];
    char *path, *stale, *fresh;
    job_t *job;
    FILE *fp;

    enqueue(f, "mail", old);
    enqueue(f, "mail", young);
    job = claim(f, old);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    job = claim(f, young);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    path = xasprintf("%s/done/%s.job", f->state, old);
    age_file(path, 2 * 3600 * 1000LL);
    free(path);

    stale = xasprintf("%s/tmp/stale", f->state);
    fresh = xasprintf("%s/tmp/fresh", f->state);
    fp = fopen(stale, "w");
    fclose(fp);
    fp = fopen(fresh, "w");
    fclose(fp);
    age_file(stale, 2 * 3600 * 1000LL);

    queue_prune(f->q);
    assert_int_equal(queue_get(f->q, old, &job), QUEUE_ENOENT);
    job = get(f, young, JOB_DONE);
    job_free(job);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(fresh, F_OK), 0);

    /* keep_done 0: every finished job goes */
    {
        queue_limits_t l = default_limits;
        l.keep_done_ms = 0;
        reopen(f, &l);
    }
    queue_prune(f->q);
    assert_int_equal(queue_get(f->q, young, &job), QUEUE_ENOENT);
    free(stale);
    free(fresh);
}

typedef struct {
    job_status_t status[8];
    int n;
} collect_t;

static int
collect(const job_t *job, void *arg)
{
    collect_t *c = arg;

    if (c->n < 8)
        c->status[c->n++] = job->status;
    return 0;
}

static int
stop_at_first(const job_t *job, void *arg)
{
    (void)job;
    ++*(int *)arg;
    return 7;
}

static void
test_foreach(void **state)
{
    fixture_t *f = *state;
    char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], c[QUEUE_ID_MAX], d[QUEUE_ID_MAX];
    collect_t col;
    job_t *job, *running;
    int calls = 0;

    enqueue(f, "mail", a);
    enqueue(f, "mail", b);
    enqueue(f, "mail", c);
    enqueue(f, "mail", d);
    job = claim(f, a);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    job = claim(f, b);
    assert_int_equal(queue_fail(f->q, job, "x"), QUEUE_OK);
    running = claim(f, c);

    memset(&col, 0, sizeof col);
    assert_int_equal(queue_foreach(f->q, collect, &col), QUEUE_OK);
    assert_int_equal(col.n, 4);
    assert_int_equal(col.status[0], JOB_RUNNING);
    assert_int_equal(col.status[1], JOB_QUEUED);
    assert_int_equal(col.status[2], JOB_DEAD);
    assert_int_equal(col.status[3], JOB_DONE);
    assert_int_equal(queue_foreach(f->q, stop_at_first, &calls), 7);
    assert_int_equal(calls, 1);
    assert_int_equal(queue_done(f->q, running, NULL), QUEUE_OK);
}

static void
test_corrupt_file(void **state)
{
    fixture_t *f = *state;
    const char *id = "0123456789ab-0123456789a";
    char *path = xasprintf("%s/queue/%s.job", f->state, id);
    job_t *job = NULL;
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs("{\"id\": \"0123456789ab-0123456789a\", \"kind\": ", fp);
    fclose(fp);
    assert_int_equal(queue_get(f->q, id, &job), QUEUE_EIO);
    assert_null(job);
    claim_empty(f);     /* moved aside, not claimed */
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(queue_get(f->q, id, &job), QUEUE_ENOENT);
    free(path);
}

static void
test_wait(void **state)
{
    fixture_t *f = *state;
    long long t0;
    pid_t pid;
    int status;

    t0 = now_ms();
    queue_wait(f->q, 60);
    assert_true(now_ms() - t0 >= 50);

    claim_empty(f);     /* sets up the watch */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *err = NULL;
        char id[QUEUE_ID_MAX];
        queue_t *cq;
        sleep_ms(100);
        cq = queue_open(f->state, &f->limits, &err);
        if (!cq || queue_enqueue(cq, "mail", NULL, NULL, id, NULL) != QUEUE_OK)
            _exit(1);
        _exit(0);
    }
    t0 = now_ms();
    queue_wait(f->q, 10000);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(queue_depth(f->q), 1);
}

/* Runs tdhook queue ARGS... with stdout and stderr captured into *out
 * (allocated, free with free()); returns its exit code. */
static int
run_cmd(fixture_t *f, char **out, int argc, ...)
{
    char *argv[4] = { NULL, NULL, NULL, NULL };
    char *path = xasprintf("%s/cmd.out", f->root);
    config_t cfg;
    va_list ap;
    int fd, saved_out, saved_err, rc, i;
    FILE *fp;
    long len;

    va_start(ap, argc);
    for (i = 0; i < argc && i < 3; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    memset(&cfg, 0, sizeof cfg);
    cfg.state_dir = f->state;
    cfg.queue.max_jobs = f->limits.max_jobs;
    cfg.queue.max_attempts = f->limits.max_attempts;
    cfg.queue.retry_base_ms = f->limits.retry_base_ms;
    cfg.queue.retry_max_ms = f->limits.retry_max_ms;
    cfg.queue.keep_done_ms = f->limits.keep_done_ms;

    fflush(stdout);
    fflush(stderr);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_out = dup(1);
    saved_err = dup(2);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    rc = cmd_queue(&cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);

    fp = fopen(path, "r");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    rewind(fp);
    *out = xcalloc(1, (size_t)len + 1);
    assert_int_equal(fread(*out, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    free(path);
    return rc;
}

static void
test_cmd_queue(void **state)
{
    fixture_t *f = *state;
    char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], c[QUEUE_ID_MAX];
    char *out = NULL;
    job_t *job;
    json_object *o, *v;

    enqueue(f, "stock-check", a);
    enqueue(f, "reservation", b);
    enqueue(f, "mail", c);
    job = claim(f, a);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);
    job = claim(f, b);
    assert_int_equal(queue_fail(f->q, job,
                                "topdesk: 404: this message is much longer than sixty "
                                "characters and is cut in the list"), QUEUE_OK);

    assert_int_equal(run_cmd(f, &out, 1, "list"), EX_OK);
    assert_non_null(strstr(out, "ID"));
    assert_non_null(strstr(out, "STATUS"));
    assert_non_null(strstr(out, b));
    assert_non_null(strstr(out, "topdesk: 404: this message"));
    assert_null(strstr(out, "cut in the list"));
    assert_non_null(strstr(out, "1 queued, 0 running, 0 retrying, 1 dead, 1 done\n"));
    free(out);

    assert_int_equal(run_cmd(f, &out, 2, "show", c), EX_OK);
    o = json_tokener_parse(out);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "status", &v));
    assert_string_equal(json_object_get_string(v), "queued");
    assert_true(json_object_object_get_ex(o, "payload", &v));
    assert_true(json_object_object_get_ex(v, "n", &v));
    json_object_put(o);
    free(out);

    assert_int_equal(run_cmd(f, &out, 2, "retry", b), EX_OK);
    assert_non_null(strstr(out, "queued again"));
    free(out);
    job = get(f, b, JOB_QUEUED);
    job_free(job);
    assert_int_equal(run_cmd(f, &out, 2, "retry", a), EX_DATAERR);
    free(out);

    assert_int_equal(run_cmd(f, &out, 2, "drop", a), EX_OK);
    assert_non_null(strstr(out, "dropped"));
    free(out);
    assert_int_equal(run_cmd(f, &out, 2, "drop", a), EX_DATAERR);
    assert_non_null(strstr(out, "tdhook: no job"));
    free(out);
    assert_int_equal(run_cmd(f, &out, 2, "show", "../../etc/passwd"), EX_DATAERR);
    free(out);
    assert_int_equal(run_cmd(f, &out, 2, "show", "0123456789ab-0123456789a"), EX_DATAERR);
    free(out);

    /* a running job is neither requeued nor dropped */
    job = claim(f, b);
    assert_int_equal(run_cmd(f, &out, 2, "drop", b), EX_TEMPFAIL);
    free(out);
    assert_int_equal(run_cmd(f, &out, 2, "retry", b), EX_TEMPFAIL);
    free(out);
    assert_int_equal(run_cmd(f, &out, 1, "list"), EX_OK);
    assert_non_null(strstr(out, "1 queued, 1 running, 0 retrying, 0 dead, 0 done\n"));
    free(out);
    assert_int_equal(queue_done(f->q, job, NULL), QUEUE_OK);

    assert_int_equal(run_cmd(f, &out, 0), EX_USAGE);
    assert_non_null(strstr(out, "usage:"));
    free(out);
    assert_int_equal(run_cmd(f, &out, 1, "bogus"), EX_USAGE);
    free(out);
    assert_int_equal(run_cmd(f, &out, 1, "show"), EX_USAGE);
    free(out);
    assert_int_equal(run_cmd(f, &out, 2, "list", "x"), EX_USAGE);
    free(out);

    /* a state_dir that cannot exist */
    {
        char *file = xasprintf("%s/plainfile", f->root);
        char *saved = f->state;
        FILE *fp = fopen(file, "w");
        fclose(fp);
        f->state = xasprintf("%s/sub", file);
        assert_int_equal(run_cmd(f, &out, 1, "list"), EX_CANTCREAT);
        assert_non_null(strstr(out, "tdhook: "));
        free(out);
        free(f->state);
        f->state = saved;
        free(file);
    }
}

static void
test_status_names(void **state)
{
    (void)state;
    assert_string_equal(job_status_name(JOB_QUEUED), "queued");
    assert_string_equal(job_status_name(JOB_RUNNING), "running");
    assert_string_equal(job_status_name(JOB_DONE), "done");
    assert_string_equal(job_status_name(JOB_RETRYING), "retrying");
    assert_string_equal(job_status_name(JOB_DEAD), "dead");
}

/* Group commit: four processes enqueue at once through one shared sync;
 * every job is there, each once, and the shared counters add up.  (That
 * the sync makes them durable is the kernel's part: syncfs().) */
static void
test_group_commit(void **state)
{
    fixture_t *f = *state;
    enum { KIDS = 4, EACH = 50 };
    pid_t kids[KIDS];
    size_t depth;

    queue_share_sync();
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char *err = NULL;
            queue_t *q = queue_open(f->state, &f->limits, &err);
            int bad = !q;
            for (int i = 0; q && i < EACH; i++) {
                json_object *p = json_object_new_object();
                char id[QUEUE_ID_MAX], key[32];
                int dup = 0;
                snprintf(key, sizeof key, "k%d-%d", k, i);
                json_object_object_add(p, "i", json_object_new_int(i));
                bad |= queue_enqueue(q, "mail", p, i % 2 ? key : NULL, id, &dup) != QUEUE_OK;
                json_object_put(p);
            }
            queue_close(q);
            _exit(bad);
        }
    }
    for (int k = 0; k < KIDS; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    /* This process shares the sync too now. */
    reopen(f, &f->limits);
    {
        json_object *p = json_object_new_object();
        char id[QUEUE_ID_MAX];
        int dup = 0;
        assert_int_equal(queue_enqueue(f->q, "mail", p, NULL, id, &dup), QUEUE_OK);
        json_object_put(p);
    }
    depth = queue_depth(f->q);
    assert_int_equal(depth, KIDS * EACH + 1);
}

/* A job retried for a lifetime outlives max_attempts, and dies once it is
 * older than its lifetime. */
static void
test_retry_for(void **state)
{
    fixture_t *f = *state;
    char id[QUEUE_ID_MAX];
    job_status_t st;
    job_t *job;
    int i;

    enqueue(f, "mail", id);
    for (i = 1; i <= 5; i++) {
        job = claim(f, id);
        st = JOB_QUEUED;
        assert_int_equal(queue_retry_for(f->q, job, "smtp: 451", 0, 3600 * 1000LL, &st), QUEUE_OK);
        assert_int_equal(st, JOB_RETRYING);
    }
    job = claim(f, id);
    assert_int_equal(job->attempts, 6);
    st = JOB_QUEUED;
    assert_int_equal(queue_retry_for(f->q, job, "smtp: 451", 0, -1, &st), QUEUE_OK);
    assert_int_equal(st, JOB_DEAD);
    assert_true(file_exists(f, "dead", id, ".job"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_enqueue_get),
        T(test_claim_running_done),
        T(test_retry_backoff),
        T(test_backoff_cap),
        T(test_retry_after),
        T(test_max_attempts_dead),
        T(test_retry_for),
        T(test_fail_dead),
        T(test_requeue),
        T(test_drop),
        T(test_idempotency),
        T(test_full),
        T(test_invalid_ids),
        T(test_crash_recovery),
        T(test_concurrency),
        T(test_unwritable),
        T(test_io_error_paths),
        T(test_not_claimed),
        T(test_prune),
        T(test_foreach),
        T(test_corrupt_file),
        T(test_wait),
        T(test_cmd_queue),
        T(test_group_commit),
        cmocka_unit_test(test_status_names),
    };

    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
