/* Unit tests of core/clients/topdesk.c against the fake TOPdesk (tests/fakes/topdesk.py),
 * started once for the group on a free loopback port.  Exits 77 (skipped)
 * when /usr/bin/python3 or the fake is missing. */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "config/config.h"
#include "core/util/buf.h"
#include "core/clients/topdesk.h"
#include "core/util/xalloc.h"
#include "tests/unit/fake.h"

#define FIELDS_PATH "/tas/api/assetmgmt/fields"
#define ASSETS_PATH "/tas/api/assetmgmt/assets"
#define PASSWORD "s3cret"

static char *fake_script;       /* path of tests/fakes/topdesk.py */
static fake_t fake;
static config_t *cfg;           /* the default config: timeout 5 s, 4 in parallel */

/* --- the fake and its control endpoints -------------------------------- */

static void
fake_faults(const char *rules_json)
{
    assert_int_equal(fake_set_faults(&fake, rules_json), 200);
}

/* How many requests the fake saw for path (without query) since the reset. */
static int
fake_count(const char *path)
{
    json_object *stats = NULL, *by, *n;
    int count = 0;

    assert_int_equal(fake_call(&fake, "GET", "/__fake/stats", NULL, &stats), 200);
    assert_non_null(stats);
    if (json_object_object_get_ex(stats, "by_path", &by) &&
        json_object_object_get_ex(by, path, &n))
        count = json_object_get_int(n);
    json_object_put(stats);
    return count;
}

static int
fake_max_in_flight(void)
{
    json_object *stats = NULL, *n;
    int max = -1;

    assert_int_equal(fake_call(&fake, "GET", "/__fake/stats", NULL, &stats), 200);
    if (json_object_object_get_ex(stats, "max_in_flight", &n))
        max = json_object_get_int(n);
    json_object_put(stats);
    return max;
}

static config_t *
make_config(const char *password, const char *timeout, int max_parallel, int port)
{
    return fake_config("state_dir: /tmp/x\nhooks: {tokens: [t]}\n"
                       "topdesk: {url: 'http://127.0.0.1:%d', username: tdhook-api, "
                       "application_password: %s, timeout: %s, max_parallel: %d}\n"
                       "mail: {from: a@example.com}\n"
                       "graph: {tenant: t, client_id: c, client_secret: s}\n",
                       port, password, timeout, max_parallel);
}

static int
group_setup(void **state)
{
    static const char *const args[] = {
        "--dataset", "small", "--user", "tdhook-api", "--password", PASSWORD,
        "--latency-ms", "20", NULL,
    };

    (void)state;
    if (fake_init(&fake, "topdesk") != 0 || fake_start(&fake, fake_script, args) != 0)
        return -1;
    cfg = make_config(PASSWORD, "5s", 4, fake.port);
    return cfg ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    fake_stop(&fake);
    config_free(cfg);
    return 0;
}

/* Each test: no faults, zeroed stats, a fresh client. */
static int
setup(void **state)
{
    if (fake_clear(&fake) != 0)
        return -1;
    *state = topdesk_new(cfg);
    return 0;
}

static int
teardown(void **state)
{
    topdesk_free(*state);
    return 0;
}

/* --- tests ------------------------------------------------------------- */

static void
test_get_fields(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL, *fields, *f, *v;
    char *err = NULL;
    long ra = 0;
    int status = 0, found = 0;
    size_t i;

    assert_int_equal(topdesk_get(td, FIELDS_PATH "?searchTerm=Minimale%20voorraad"
                                      "&resourceCategory=stock",
                                 TOPDESK_ACCEPT_FIELDS, &body, &status, &err, &ra),
                     TOPDESK_OK);
    assert_null(err);
    assert_int_equal(status, 200);
    assert_non_null(body);
    assert_true(json_object_object_get_ex(body, "fields", &fields));
    assert_true(json_object_is_type(fields, json_type_array));
    for (i = 0; i < json_object_array_length(fields); i++) {
        f = json_object_array_get_idx(fields, i);
        if (json_object_object_get_ex(f, "name", &v) &&
            strcmp(json_object_get_string(v), "Minimale voorraad") == 0) {
            found = 1;
            assert_non_null(topdesk_item_id(f));
        }
    }
    assert_true(found);
    json_object_put(body);
    assert_int_equal(topdesk_requests(td), 1);
}

typedef struct {
    int pages;
    int items;
    int count;          /* fetchCount's answer */
    int last_status;
    char *ids[64];
} pager_t;

static int
page_done(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    pager_t *p = arg;
    json_object *data, *count;
    size_t i, n;
    char *next;

    (void)errstr;
    assert_non_null(res->body);
    assert_non_null(strstr(res->path, "pageStart="));
    assert_true(json_object_object_get_ex(res->body, "dataSet", &data));
    n = json_object_array_length(data);
    for (i = 0; i < n; i++) {
        const char *id = topdesk_item_id(json_object_array_get_idx(data, i));

        assert_non_null(id);
        assert_true(p->items < 64);
        p->ids[p->items++] = xstrdup(id);
    }
    if (json_object_object_get_ex(res->body, "count", &count))
        p->count = json_object_get_int(count);
    p->pages++;
    p->last_status = res->status;
    if (res->status == 206) {
        next = xasprintf(ASSETS_PATH "?resourceCategory=stock&pageSize=3&pageStart=%d",
                         p->items);
        topdesk_submit(td, next, TOPDESK_ACCEPT_ASSETS, page_done, p);
        free(next);
    }
    return 0;
}

static void
test_paging(void **state)
{
    topdesk_t *td = *state;
    pager_t p;
    char *err = NULL;
    long ra = 0;
    int i, j;

    memset(&p, 0, sizeof p);
    p.count = -1;
    topdesk_submit(td, ASSETS_PATH "?resourceCategory=stock&pageSize=3&pageStart=0&fetchCount=true",
                   TOPDESK_ACCEPT_ASSETS, page_done, &p);
    assert_int_equal(topdesk_run(td, &err, &ra), TOPDESK_OK);
    assert_null(err);
    assert_int_equal(p.items, 10);        /* the "small" data set has 10 stock rooms */
    assert_int_equal(p.count, 10);
    assert_int_equal(p.pages, 4);
    assert_int_equal(p.last_status, 200);
    for (i = 0; i < p.items; i++)
        for (j = i + 1; j < p.items; j++)
            assert_string_not_equal(p.ids[i], p.ids[j]);
    for (i = 0; i < p.items; i++)
        free(p.ids[i]);
    assert_int_equal(fake_count(ASSETS_PATH), 4);
}

static int
count_done(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    (void)td;
    (void)errstr;
    assert_true(res->status == 200 || res->status == 206);
    (*(int *)arg)++;
    return 0;
}

static void
test_parallel(void **state)
{
    topdesk_t *td = *state;
    char *err = NULL, *path;
    long ra = 0;
    int i, done = 0, max;

    for (i = 0; i < 100; i++) {
        path = xasprintf(ASSETS_PATH "?resourceCategory=stock&pageSize=1&pageStart=%d", i % 10);
        topdesk_submit(td, path, TOPDESK_ACCEPT_ASSETS, count_done, &done);
        free(path);
    }
    assert_int_equal(topdesk_run(td, &err, &ra), TOPDESK_OK);
    assert_null(err);
    assert_int_equal(done, 100);
    assert_int_equal(topdesk_requests(td), 100);
    assert_int_equal(fake_count(ASSETS_PATH), 100);
    max = fake_max_in_flight();
    assert_true(max > 1);
    assert_true(max <= 4);
}

static void
test_wrong_password(void **state)
{
    config_t *bad = make_config("wr0ng-Pa55w0rd", "5s", 4, fake.port);
    topdesk_t *td;
    json_object *body = (json_object *)1;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    (void)state;
    assert_non_null(bad);
    td = topdesk_new(bad);
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_EAUTH);
    assert_null(body);
    assert_int_equal(status, 401);
    assert_non_null(err);
    assert_non_null(strstr(err, "401"));
    assert_non_null(strstr(err, "topdesk.username"));
    assert_non_null(strstr(err, FIELDS_PATH));
    assert_null(strstr(err, "wr0ng-Pa55w0rd"));
    assert_null(strstr(err, PASSWORD));
    assert_int_equal(topdesk_requests(td), 1);   /* a login error is not retried */
    free(err);
    topdesk_free(td);
    config_free(bad);
}

static void
test_wrong_accept(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_ASSETS, &body, &status, &err,
                                 &ra),
                     TOPDESK_EFAIL);
    assert_null(body);
    assert_int_equal(status, 406);
    assert_non_null(strstr(err, "406"));
    assert_non_null(strstr(err, TOPDESK_ACCEPT_ASSETS));
    assert_int_equal(ra, -1);
    free(err);
}

static void
test_503_twice(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"method\":\"GET\",\"status\":503,\"times\":2}]");
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    assert_null(err);
    assert_int_equal(status, 200);
    assert_non_null(body);
    json_object_put(body);
    assert_int_equal(fake_count(FIELDS_PATH), 3);
    assert_int_equal(topdesk_requests(td), 3);
}

static void
test_429_retry_after(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;
    long long t0;

    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"status\":429,\"times\":1,"
                "\"retry_after\":\"1\"}]");
    t0 = fake_now_ms();
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    assert_true(fake_now_ms() - t0 >= 900);
    assert_true(fake_now_ms() - t0 < 4000);
    json_object_put(body);
    assert_int_equal(fake_count(FIELDS_PATH), 2);
}

static void
test_retry_after_date(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL, *rules;
    long ra = 0;
    int status = 0;
    long long t0;
    char date[64];
    time_t when = time(NULL) + 2;
    struct tm tm;

    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    rules = xasprintf("[{\"path\":\"" FIELDS_PATH "\",\"status\":503,\"times\":1,"
                      "\"retry_after\":\"%s\"}]", date);
    fake_faults(rules);
    free(rules);
    t0 = fake_now_ms();
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    assert_true(fake_now_ms() - t0 >= 500);     /* one to two seconds, by the clock */
    assert_true(fake_now_ms() - t0 < 4000);
    json_object_put(body);
}

static void
test_503_forever(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;
    long long t0 = fake_now_ms();

    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"status\":503}]");
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_ERETRY);
    assert_null(body);
    assert_int_equal(status, 503);
    assert_int_equal(ra, -1);
    assert_non_null(strstr(err, "503 Service Unavailable after 4 attempts"));
    assert_non_null(strstr(err, "TOPdesk GET " FIELDS_PATH));
    assert_int_equal(fake_count(FIELDS_PATH), 4);
    /* 250 + 500 + 1000 ms of backoff, each with +-25 % jitter */
    assert_true(fake_now_ms() - t0 >= 1300);
    free(err);
}

static void
test_long_retry_after(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    /* a hint beyond 30 s goes straight back to the job queue */
    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"status\":429,\"retry_after\":\"120\"}]");
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_ERETRY);
    assert_int_equal(ra, 120000);
    assert_non_null(strstr(err, "429 Too Many Requests after 1 attempt"));
    assert_int_equal(fake_count(FIELDS_PATH), 1);
    free(err);
}

static void
test_drop_then_ok(void **state)
{
    topdesk_t *td = *state;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"drop\":true,\"times\":1}]");
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    assert_null(err);
    assert_non_null(body);
    json_object_put(body);
    assert_int_equal(fake_count(FIELDS_PATH), 2);
}

static void
test_timeout_retried(void **state)
{
    config_t *fast = make_config(PASSWORD, "1s", 2, fake.port);
    topdesk_t *td;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;
    long long t0;

    (void)state;
    assert_non_null(fast);
    td = topdesk_new(fast);
    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"delay_ms\":2500,\"times\":1}]");
    t0 = fake_now_ms();
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    assert_null(err);
    assert_int_equal(status, 200);
    assert_true(fake_now_ms() - t0 >= 1000);
    json_object_put(body);
    assert_int_equal(topdesk_requests(td), 2);
    topdesk_free(td);
    config_free(fast);
}

static void
test_unreachable(void **state)
{
    config_t *off;
    topdesk_t *td;
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    (void)state;
    off = make_config(PASSWORD, "2s", 2, 1);   /* nothing listens on port 1 */
    assert_non_null(off);
    td = topdesk_new(off);
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_ERETRY);
    assert_int_equal(ra, -1);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "after 4 attempts"));
    assert_null(strstr(err, PASSWORD));
    assert_int_equal(topdesk_requests(td), 4);
    free(err);
    topdesk_free(td);
    config_free(off);
}

/* A fault answering status with body (a JSON value or NULL for the fake's
 * default); returns the client's code and *err. */
static int
error_with_body(topdesk_t *td, int status, const char *body, char **err)
{
    char *rules = xasprintf("[{\"path\":\"" FIELDS_PATH "\",\"status\":%d,\"body\":%s}]", status,
                            body ? body : "null");
    json_object *out = NULL;
    long ra = 0;
    int st = 0, rc;

    fake_faults(rules);
    free(rules);
    *err = NULL;
    rc = topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &out, &st, err, &ra);
    assert_null(out);
    assert_int_equal(st, status);
    assert_non_null(*err);
    return rc;
}

static void
test_error_shapes(void **state)
{
    topdesk_t *td = *state;
    char *err;

    assert_int_equal(error_with_body(td, 400,
                                     "{\"errors\":[{\"errorCode\":\"value_too_small\","
                                     "\"appliesTo\":[\"pageSize\"],"
                                     "\"errorMessage\":\"pageSize is too small\"}]}",
                                     &err),
                     TOPDESK_EFAIL);
    assert_non_null(strstr(err, "400 Bad Request (pageSize is too small)"));
    free(err);

    assert_int_equal(error_with_body(td, 400,
                                     "{\"errors\":[{\"errorCode\":\"bad\","
                                     "\"detail\":\"the import failed\"}]}",
                                     &err),
                     TOPDESK_EFAIL);
    assert_non_null(strstr(err, "the import failed"));
    free(err);

    assert_int_equal(error_with_body(td, 400,
                                     "{\"errors\":[{\"fieldName\":\"name\","
                                     "\"fieldTitle\":\"Name\",\"message\":\"is required\"}]}",
                                     &err),
                     TOPDESK_EFAIL);
    assert_non_null(strstr(err, "Name: is required"));
    free(err);

    assert_int_equal(error_with_body(td, 403,
                                     "[{\"message\":\"No permission to access the data\"}]",
                                     &err),
                     TOPDESK_EPERM);
    assert_non_null(strstr(err, "No permission to access the data"));
    assert_non_null(strstr(err, "lacks a permission"));
    assert_non_null(strstr(err, FIELDS_PATH));
    free(err);

    assert_int_equal(error_with_body(td, 404, "\"\"", &err), TOPDESK_ENOTFOUND);
    assert_non_null(strstr(err, "404 Not Found"));
    free(err);

    /* a body that is not JSON: plain text is kept, HTML is not */
    assert_int_equal(error_with_body(td, 400, "\"the proxy said no\"", &err), TOPDESK_EFAIL);
    assert_non_null(strstr(err, "(the proxy said no)"));
    free(err);
    assert_int_equal(error_with_body(td, 400, "\"<html><body>x</body></html>\"", &err),
                     TOPDESK_EFAIL);
    assert_null(strstr(err, "html"));
    free(err);

    /* the fake's own default error body */
    assert_int_equal(error_with_body(td, 409, NULL, &err), TOPDESK_EFAIL);
    assert_non_null(strstr(err, "409"));
    free(err);
}

static void
test_error_text_cleaned(void **state)
{
    topdesk_t *td = *state;
    buf_t b;
    char *err, *p;
    int i;

    /* 2000 characters with control characters and multi-byte UTF-8 */
    buf_init(&b, 1 << 20);
    buf_puts(&b, "[{\"message\":\"line one\\nline two\\t\\u0007");
    for (i = 0; i < 500; i++)
        buf_puts(&b, "\\u00e9x");
    buf_puts(&b, "\"}]");
    assert_int_equal(error_with_body(td, 400, buf_str(&b), &err), TOPDESK_EFAIL);
    buf_free(&b);
    assert_non_null(strstr(err, "line one line two"));
    assert_true(strlen(err) < 500);
    for (p = err; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    free(err);
}

static void
test_no_content_and_bad_json(void **state)
{
    topdesk_t *td = *state;
    json_object *body = (json_object *)1;
    char *err = NULL;
    long ra = 0;
    int status = 0;

    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"status\":204,\"times\":1}]");
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    assert_null(body);
    assert_int_equal(status, 204);

    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"status\":200,\"times\":1,"
                "\"body\":\"{\\\"fields\\\": [1,\"}]");
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_EFAIL);
    assert_null(body);
    assert_non_null(strstr(err, "200 OK with a body that is not JSON"));
    free(err);
}

typedef struct {
    char order[16];
    size_t n;
} order_t;

static int
order_done(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    order_t *o = arg;

    (void)td;
    (void)errstr;
    if (o->n < sizeof o->order - 1)
        o->order[o->n++] = strstr(res->path, "fields") ? 'F' : 'a';
    return 0;
}

/* A request waiting for its backoff does not hold up the others. */
static void
test_backoff_does_not_block(void **state)
{
    topdesk_t *td = *state;
    order_t o;
    char *err = NULL;
    long ra;
    int i;

    memset(&o, 0, sizeof o);
    fake_faults("[{\"path\":\"" FIELDS_PATH "\",\"status\":502,\"times\":1}]");
    topdesk_submit(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, order_done, &o);
    for (i = 0; i < 6; i++)
        topdesk_submit(td, ASSETS_PATH "?resourceCategory=stock&pageSize=1",
                       TOPDESK_ACCEPT_ASSETS, order_done, &o);
    assert_int_equal(topdesk_run(td, &err, &ra), TOPDESK_OK);
    assert_string_equal(o.order, "aaaaaaF");
    assert_int_equal(topdesk_requests(td), 8);
}

typedef struct {
    int calls;
    int stop_at;
} stopper_t;

static int
stop_done(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    stopper_t *s = arg;

    (void)td;
    (void)res;
    if (++s->calls == s->stop_at) {
        *errstr = xstrdup("stopped on purpose");
        return TOPDESK_EFAIL;
    }
    return 0;
}

static void
test_callback_stops(void **state)
{
    topdesk_t *td = *state;
    stopper_t s = {0, 3};
    json_object *body = NULL;
    char *err = NULL;
    long ra = 0;
    int i, status = 0;

    for (i = 0; i < 20; i++)
        topdesk_submit(td, ASSETS_PATH "?resourceCategory=stock&pageSize=2",
                       TOPDESK_ACCEPT_ASSETS, stop_done, &s);
    assert_int_equal(topdesk_run(td, &err, &ra), TOPDESK_EFAIL);
    assert_string_equal(err, "stopped on purpose");
    assert_int_equal(s.calls, 3);
    assert_true(topdesk_requests(td) < 20);
    free(err);

    /* the client works again after an aborted run */
    err = NULL;
    assert_int_equal(topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, &err,
                                 &ra),
                     TOPDESK_OK);
    json_object_put(body);

    /* and can be freed in the middle of an aborted run's leftovers */
    for (i = 0; i < 5; i++)
        topdesk_submit(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, stop_done, &s);
}

static int
nested_done(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    json_object *body = NULL;
    long ra;
    int status;
    int rc;

    (void)res;
    rc = topdesk_get(td, FIELDS_PATH, TOPDESK_ACCEPT_FIELDS, &body, &status, errstr, &ra);
    if (rc == TOPDESK_OK) {
        *(int *)arg = status;
        json_object_put(body);
    }
    return rc;
}

static void
test_get_inside_callback(void **state)
{
    topdesk_t *td = *state;
    char *err = NULL;
    long ra;
    int status = 0;

    topdesk_submit(td, ASSETS_PATH "?resourceCategory=stock&pageSize=1", TOPDESK_ACCEPT_ASSETS,
                   nested_done, &status);
    assert_int_equal(topdesk_run(td, &err, &ra), TOPDESK_OK);
    assert_int_equal(status, 200);
    assert_int_equal(topdesk_requests(td), 2);
}

static void
test_escape(void **state)
{
    char *s;

    (void)state;
    s = topdesk_escape("Minimale voorraad");
    assert_string_equal(s, "Minimale%20voorraad");
    free(s);
    s = topdesk_escape("a-b.c_d~e/f?g&h=i+j'k");
    assert_string_equal(s, "a-b.c_d~e%2Ff%3Fg%26h%3Di%2Bj%27k");
    free(s);
    s = topdesk_escape("Überwachung — België");
    assert_string_equal(s, "%C3%9Cberwachung%20%E2%80%94%20Belgi%C3%AB");
    free(s);
    s = topdesk_escape("");
    assert_string_equal(s, "");
    free(s);
}

static void
test_item_id(void **state)
{
    json_object *o;

    (void)state;
    o = json_tokener_parse("{\"id\":\"a\",\"unid\":\"b\"}");
    assert_string_equal(topdesk_item_id(o), "a");
    json_object_put(o);
    o = json_tokener_parse("{\"unid\":\"b\"}");
    assert_string_equal(topdesk_item_id(o), "b");
    json_object_put(o);
    o = json_tokener_parse("{\"id\":5,\"name\":\"x\"}");
    assert_null(topdesk_item_id(o));
    json_object_put(o);
    o = json_tokener_parse("[1]");
    assert_null(topdesk_item_id(o));
    json_object_put(o);
    assert_null(topdesk_item_id(NULL));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_get_fields),
        T(test_paging),
        T(test_parallel),
        T(test_wrong_password),
        T(test_wrong_accept),
        T(test_503_twice),
        T(test_429_retry_after),
        T(test_retry_after_date),
        T(test_503_forever),
        T(test_long_retry_after),
        T(test_drop_then_ok),
        T(test_timeout_retried),
        T(test_unreachable),
        T(test_error_shapes),
        T(test_error_text_cleaned),
        T(test_no_content_and_bad_json),
        T(test_backoff_does_not_block),
        T(test_callback_stops),
        T(test_get_inside_callback),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_item_id),
    };
    int rc;

    (void)argc;
    fake_script = fake_main_init("topdesk.py", argv[0]);
    if (!fake_script)
        return 77;
    rc = cmocka_run_group_tests_name("topdesk", tests, group_setup, group_teardown);
    fake_main_done(fake_script);
    return rc;
}
