/* Unit tests of routing, auth, body limits and JSON handling: app_serve()
 * (app_precheck() then app_handle()) and front_handle() with a real queue in
 * a temporary state_dir. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgi/app.h"
#include "cgi/front.h"
#include "core/util/log.h"
#include "core/jobs/outlook_private.h"
#include "core/util/xalloc.h"

typedef struct {
    char dir[64];
    config_t *cfg;
    app_t app;
} fixture_t;

static const char *const base_config =
    "state_dir: %s\n"
    "hooks: {tokens: [tok-one, tok-two], max_body: 1KiB}\n"
    "topdesk: {url: 'http://127.0.0.1:9', username: u, application_password: p}\n"
    "mail: {from: tdhook@example.com}\n"
    "graph: {tenant: t, client_id: c, client_secret: s}\n"
    "queue: {max_jobs: %d}\n";

static int
setup_with(void **state, int max_jobs)
{
    fixture_t *f = xcalloc(1, sizeof *f);
    char *yaml, *err = NULL;
    queue_limits_t limits;

    log_setup(LOG_ERROR, LOG_TEXT);
    snprintf(f->dir, sizeof f->dir, "/tmp/tdhook-app-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    yaml = xasprintf(base_config, f->dir, max_jobs);
    if (config_load_buffer("test.yaml", yaml, strlen(yaml), &f->cfg, &err) != CONFIG_OK)
        fail_msg("config: %s", err);
    free(yaml);
    limits = (queue_limits_t){f->cfg->queue.max_jobs, 3, 100, 1000, 60000};
    f->app.cfg = f->cfg;
    f->app.queue = queue_open(f->dir, &limits, &err);
    assert_non_null(f->app.queue);
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, 100);
}

/* The same with bookings made in Outlook synced (direction: both). */
static int
setup_outlook(void **state)
{
    fixture_t *f;
    char *err = NULL, *yaml;

    setup_with(state, 100);
    f = *state;
    config_free(f->cfg);
    {
        char *base = xasprintf(base_config, f->dir, 100);

        yaml = xasprintf("%sreservations: {direction: both, outlook: {callback_url: "
                         "'https://hooks.example.com/tdhook', fallback_requester: a@example.com, "
                         "cancellation_reason: Geannuleerd}}\n", base);
        free(base);
    }
    if (config_load_buffer("test.yaml", yaml, strlen(yaml), &f->cfg, &err) != CONFIG_OK)
        fail_msg("config: %s", err);
    free(yaml);
    f->app.cfg = f->cfg;
    return 0;
}

static int
setup_small(void **state)
{
    return setup_with(state, 1);
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    char *cmd = xasprintf("rm -rf '%s'", f->dir);

    if (f->app.queue)
        queue_close(f->app.queue);
    config_free(f->cfg);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(cmd);
    free(f);
    return 0;
}

/* Runs one request through app_serve(); returns the status. */
static int
call(fixture_t *f, const char *method, const char *path, const char *auth,
     const char *ctype, const char *body, app_response_t *res)
{
    app_request_t req = {method, path, NULL, ctype, auth, NULL, body ? body : "",
                         body ? strlen(body) : 0};

    app_response_init(res);
    app_serve(&f->app, &req, res);
    return res->status;
}

static int
status_of(fixture_t *f, const char *method, const char *path, const char *auth,
          const char *ctype, const char *body)
{
    app_response_t res;
    int st = call(f, method, path, auth, ctype, body, &res);

    if (st >= 400)
        assert_non_null(strstr(buf_str(&res.body), "{\"error\":{\"code\":"));
    app_response_free(&res);
    return st;
}

#define JSON "application/json"
#define AUTH "Bearer tok-one"
#define TOKEN "tok-one"    /* the token without its scheme */

static void
test_route_path(void **state)
{
    char *p;

    (void)state;
    p = app_route_path("/hooks/reservation", "/tdhook/hooks/reservation", NULL, "/tdhook");
    assert_string_equal(p, "/hooks/reservation");
    free(p);
    p = app_route_path(NULL, "/tdhook/hooks/reservation", NULL, "/tdhook");
    assert_string_equal(p, "/hooks/reservation");
    free(p);
    p = app_route_path(NULL, "/tdhook/hooks/reservation", NULL, "/tdhook/");
    assert_string_equal(p, "/hooks/reservation");
    free(p);
    /* nginx's default SCRIPT_NAME equals the URI under `location /`. */
    p = app_route_path("", "/hooks/reservation", NULL, "/hooks/reservation");
    assert_string_equal(p, "/hooks/reservation");
    free(p);
    p = app_route_path(NULL, "/tdhookx/healthz", NULL, "/tdhook");
    assert_string_equal(p, "/tdhookx/healthz");
    free(p);
    p = app_route_path(NULL, NULL, "/healthz?x=1", NULL);
    assert_string_equal(p, "/healthz");
    free(p);
    p = app_route_path(NULL, NULL, NULL, NULL);
    assert_string_equal(p, "/");
    free(p);
}

static void
test_statuses(void **state)
{
    fixture_t *f = *state;
    app_response_t res;

    assert_int_equal(status_of(f, "POST", "/nope", AUTH, JSON, "{}"), 404);
    assert_int_equal(status_of(f, "POST", "/jobs/", AUTH, JSON, "{}"), 404);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", NULL, JSON, "{}"), 401);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", "Bearer nope", JSON, "{}"), 401);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{}"), 202);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", "Bearer tok-two", JSON, "{}"), 202);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, NULL, ""), 202);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, "text/plain", "{}"), 415);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, NULL, "{}"), 415);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, "Application/JSON; charset=utf-8", "{}"), 202);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, "application/jsonx", "{}"), 415);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "[]"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{} x"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{}\r\n"), 202);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{\"dry_run\":1}"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{\"dry_run\":true}"), 202);

    /* 405 names the allowed method. */
    assert_int_equal(call(f, "GET", "/hooks/reservation", NULL, NULL, NULL, &res), 405);
    assert_int_equal(res.nheaders, 1);
    assert_string_equal(res.headers[0], "Allow: POST");
    app_response_free(&res);
    assert_int_equal(call(f, "POST", "/healthz", NULL, NULL, NULL, &res), 405);
    assert_string_equal(res.headers[0], "Allow: GET, HEAD");
    app_response_free(&res);
    assert_int_equal(call(f, "POST", "/hooks/reservation", NULL, JSON, "{}", &res), 401);
    assert_string_equal(res.headers[0], "WWW-Authenticate: Bearer realm=\"tdhook\"");
    app_response_free(&res);
}

/* Graph's change notifications: the validation round, clientState, and
 * one queued pull per room however many notifications name it. */
static void
test_graph_route(void **state)
{
    fixture_t *f = *state;
    app_response_t res;
    app_request_t req = {"POST", "/hooks/graph", "validationToken=Validation%3A%20a+b%3Cc%3E",
                         "text/plain", NULL, NULL, "", 0};
#define NOTE(cs) "{\"value\":[{\"subscriptionId\":\"sub-1\",\"clientState\":\"" cs "\"," \
                 "\"changeType\":\"created\",\"resource\":\"Users/x/Events/y\"}]}"
    char *good = xstrdup(NOTE("s3cret")), *bad = xstrdup(NOTE("s3creT"));
    char *life = xstrdup("{\"value\":[{\"subscriptionId\":\"sub-1\",\"clientState\":\"s3cret\","
                         "\"lifecycleEvent\":\"missed\"}]}");
    size_t depth0;

    app_response_init(&res);
    app_serve(&f->app, &req, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(buf_str(&res.body), "Validation: a b<c>");
    assert_non_null(strstr(res.content_type, "text/plain"));
    app_response_free(&res);

    assert_int_equal(store_sub_index(f->cfg, "sub-1", "zaal1@example.com", "s3cret"), 0);
    depth0 = queue_depth(f->app.queue);
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, bad), 403);
    assert_int_equal(queue_depth(f->app.queue), depth0);
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, good), 202);
    assert_int_equal(queue_depth(f->app.queue), depth0 + 1);
    /* the room's pull is queued and has not started: the next adds nothing */
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, good), 202);
    assert_int_equal(queue_depth(f->app.queue), depth0 + 1);
    assert_int_equal(status_of(f, "POST", "/hooks/graph/lifecycle", NULL, JSON, life), 202);
    assert_int_equal(queue_depth(f->app.queue), depth0 + 2);
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, "{\"value\":["), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, "{\"value\":[]}"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, "{}"), 400);
    assert_int_equal(status_of(f, "GET", "/hooks/graph", NULL, NULL, NULL), 405);
    /* a subscription id that could be a path goes nowhere */
    free(bad);
    bad = xstrdup("{\"value\":[{\"subscriptionId\":\"../subs/x\",\"clientState\":\"s3cret\"}]}");
    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, bad), 403);
    free(good);
    free(bad);
    free(life);
}

/* Without direction: both there is nothing to notify. */
static void
test_graph_off(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(status_of(f, "POST", "/hooks/graph", NULL, JSON, "{\"value\":[{}]}"), 404);
}

/* The answer's error message contains want. */
static void
error_says(fixture_t *f, const char *path, const char *auth, const char *ctype,
           const char *body, int status, const char *want)
{
    app_response_t res;

    assert_int_equal(call(f, "POST", path, auth, ctype, body, &res), status);
    if (!strstr(buf_str(&res.body), want))
        fail_msg("%d %s: \"%s\" not in %s", status, body, want, buf_str(&res.body));
    app_response_free(&res);
}

/* Mistakes are answered where they are made, naming what to fix. */
static void
test_mistakes_named(void **state)
{
    fixture_t *f = *state;
    const char *p = "/hooks/reservation";

    /* an automated action whose variable was not filled in */
    error_says(f, p, AUTH, JSON, "{\"id\":\"{{reservation.id}}\"}", 400,
               "\\\"id\\\" is \\\"{{reservation.id}}\\\": a variable of the automated "
               "action was not filled in");
    error_says(f, p, AUTH, JSON, "{\"id\":\"abc\"}", 400, "a TOPdesk reservation id");
    error_says(f, p, AUTH, JSON, "{\"number\":\"R <none>\"}", 400,
               "\\\"number\\\" must be a reservation number such as R 2406 012");
    error_says(f, p, AUTH, JSON, "{\"number\":\"Overleg\"}", 400, "a reservation number");
    /* a typo must not run a real check */
    error_says(f, "/hooks/stock-check", AUTH, JSON, "{\"dryrun\":true}", 400,
               "unknown field \\\"dryrun\\\"; this hook takes \\\"dry_run\\\"");
    error_says(f, p, AUTH, JSON,
               "{\"id\":\"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f\",\"extra\":[1]}", 400,
               "unknown field \\\"extra\\\"");
    error_says(f, "/hooks/reconcile", AUTH, JSON, "{\"day\":3}", 400, "takes \\\"days\\\"");
    /* a token without its scheme */
    error_says(f, p, TOKEN, JSON, "{}", 401, "write \\\"Authorization: Bearer <token>\\\"");
    error_says(f, p, NULL, JSON, "{}", 401, "Authorization: Bearer <token>");
    /* the Content-Type that arrived */
    error_says(f, p, AUTH, "text/plain; charset=utf-8", "{}", 415,
               "not \\\"text/plain; charset=utf-8\\\"");
}

static void
test_reservation_fields(void **state)
{
    fixture_t *f = *state;
    const char *p = "/hooks/reservation";

    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{}"), 400);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{\"id\":5}"), 400);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{\"id\":\"\"}"), 400);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{\"id\":\"a\\nb\"}"), 400);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{\"number\":\"R 2406 012\",\"event\":\"moved\"}"), 400);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{\"number\":\"R 2406 012\",\"event\":\"changed\"}"), 202);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON,
                               "{\"id\":\"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f\"}"), 202);
    assert_int_equal(status_of(f, "POST", p, AUTH, JSON, "{\"number\":\"R 2406 012\"}"), 202);
    assert_int_equal(status_of(f, "POST", "/hooks/reconcile", AUTH, JSON, "{\"days\":0}"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/reconcile", AUTH, JSON, "{\"days\":\"7\"}"), 400);
    assert_int_equal(status_of(f, "POST", "/hooks/reconcile", AUTH, JSON, "{\"days\":7}"), 202);
}

static void
test_json_depth(void **state)
{
    fixture_t *f = *state;
    char deep[200];
    size_t n = 0;

    /* 40 nested arrays: over the depth limit, refused without recursion. */
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"a\":");
    for (int i = 0; i < 40; i++)
        deep[n++] = '[';
    for (int i = 0; i < 40; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, deep), 400);
}

static void
test_job_roundtrip(void **state)
{
    fixture_t *f = *state;
    app_response_t res;
    char path[96], id[QUEUE_ID_MAX];
    json_object *obj, *v;

    assert_int_equal(call(f, "POST", "/hooks/reservation", AUTH, JSON,
                          "{\"id\":\"3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f\"}", &res), 202);
    obj = json_tokener_parse(buf_str(&res.body));
    assert_true(json_object_object_get_ex(obj, "job", &v));
    snprintf(id, sizeof id, "%s", json_object_get_string(v));
    assert_true(json_object_object_get_ex(obj, "status", &v));
    assert_string_equal(json_object_get_string(v), "queued");
    json_object_put(obj);
    app_response_free(&res);

    snprintf(path, sizeof path, "/jobs/%s", id);
    assert_int_equal(call(f, "GET", path, AUTH, NULL, NULL, &res), 200);
    obj = json_tokener_parse(buf_str(&res.body));
    assert_true(json_object_object_get_ex(obj, "kind", &v));
    assert_string_equal(json_object_get_string(v), "reservation");
    json_object_put(obj);
    app_response_free(&res);

    assert_int_equal(status_of(f, "GET", path, NULL, NULL, NULL), 401);
    assert_int_equal(status_of(f, "GET", "/jobs/000000000000-00000000000", AUTH, NULL, NULL), 404);
    assert_int_equal(status_of(f, "GET", "/jobs/..", AUTH, NULL, NULL), 404);
    assert_int_equal(status_of(f, "GET", "/jobs/a/b", AUTH, NULL, NULL), 404);
}

static void
test_idempotency(void **state)
{
    fixture_t *f = *state;
    app_request_t req = {"POST", "/hooks/stock-check", NULL, JSON, AUTH, "delivery-1", "{}", 2};
    app_response_t a, b, c;

    app_response_init(&a);
    app_response_init(&b);
    app_response_init(&c);
    app_serve(&f->app, &req, &a);
    app_serve(&f->app, &req, &b);
    assert_int_equal(a.status, 202);
    assert_int_equal(b.status, 202);
    assert_string_equal(buf_str(&a.body), buf_str(&b.body));
    assert_int_equal(queue_depth(f->app.queue), 1);
    req.idempotency_key = "bad key with spaces";
    app_serve(&f->app, &req, &c);
    assert_int_equal(c.status, 400);
    app_response_free(&a);
    app_response_free(&b);
    app_response_free(&c);
}

static void
test_queue_full(void **state)
{
    fixture_t *f = *state;
    app_response_t res;

    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{}"), 202);
    assert_int_equal(call(f, "POST", "/hooks/stock-check", AUTH, JSON, "{}", &res), 429);
    assert_string_equal(res.headers[0], "Retry-After: 30");
    app_response_free(&res);
}

static void
test_no_queue(void **state)
{
    fixture_t *f = *state;
    queue_t *q = f->app.queue;

    f->app.queue = NULL;
    assert_int_equal(status_of(f, "POST", "/hooks/stock-check", AUTH, JSON, "{}"), 503);
    assert_int_equal(status_of(f, "GET", "/healthz", NULL, NULL, NULL), 503);
    f->app.queue = q;
    assert_int_equal(status_of(f, "GET", "/healthz", NULL, NULL, NULL), 200);
    assert_int_equal(status_of(f, "HEAD", "/healthz", NULL, NULL, NULL), 200);
    assert_int_equal(status_of(f, "GET", "/metrics", NULL, NULL, NULL), 200);
}

/* --- front_handle with a scripted request -------------------------------- */

typedef struct {
    const char *const *env;   /* NAME, VALUE, ..., NULL */
    const char *body;
    size_t pos, len;
    size_t reads;
    buf_t out;
} fake_io_t;

static const char *
fake_param(void *ctx, const char *name)
{
    fake_io_t *io = ctx;
    for (const char *const *e = io->env; *e; e += 2)
        if (strcmp(*e, name) == 0)
            return e[1];
    return NULL;
}

static ssize_t
fake_read(void *ctx, char *buf, size_t n)
{
    fake_io_t *io = ctx;
    size_t left = io->len - io->pos;

    io->reads++;
    if (n > left)
        n = left;
    memcpy(buf, io->body + io->pos, n);
    io->pos += n;
    return (ssize_t)n;
}

static int
fake_more(void *ctx)
{
    fake_io_t *io = ctx;
    return io->pos < io->len;
}

static int
fake_write(void *ctx, const char *buf, size_t n)
{
    fake_io_t *io = ctx;
    return buf_append(&io->out, buf, n) ? -1 : 0;
}

static int
front_call(fixture_t *f, const char *const *env, const char *body, fake_io_t *io)
{
    front_io_t fio = {fake_param, fake_read, fake_more, fake_write, io};

    memset(io, 0, sizeof *io);
    io->env = env;
    io->body = body;
    io->len = strlen(body);
    buf_init(&io->out, 1 << 20);
    return front_handle(&f->app, &fio);
}

static void
test_front_lengths(void **state)
{
    fixture_t *f = *state;
    fake_io_t io;
    const char *ok[] = {"REQUEST_METHOD", "POST", "DOCUMENT_URI", "/hooks/stock-check",
                        "CONTENT_TYPE", JSON, "CONTENT_LENGTH", "2",
                        "HTTP_AUTHORIZATION", AUTH, NULL};
    const char *shorter[] = {"REQUEST_METHOD", "POST", "DOCUMENT_URI", "/hooks/stock-check",
                             "CONTENT_TYPE", JSON, "CONTENT_LENGTH", "10",
                             "HTTP_AUTHORIZATION", AUTH, NULL};
    const char *huge[] = {"REQUEST_METHOD", "POST", "DOCUMENT_URI", "/hooks/stock-check",
                          "CONTENT_TYPE", JSON, "CONTENT_LENGTH", "2097152",
                          "HTTP_AUTHORIZATION", AUTH, NULL};
    const char *junk[] = {"REQUEST_METHOD", "POST", "DOCUMENT_URI", "/hooks/stock-check",
                          "CONTENT_TYPE", JSON, "CONTENT_LENGTH", "2x",
                          "HTTP_AUTHORIZATION", AUTH, NULL};
    const char *chunked[] = {"REQUEST_METHOD", "POST", "DOCUMENT_URI", "/hooks/stock-check",
                             "CONTENT_TYPE", JSON, "HTTP_AUTHORIZATION", AUTH, NULL};
    char big[1100];

    assert_int_equal(front_call(f, ok, "{}", &io), 202);
    assert_non_null(strstr(buf_str(&io.out), "Status: 202 Accepted\r\n"));
    assert_non_null(strstr(buf_str(&io.out), "X-Request-Id: "));
    buf_free(&io.out);
    /* More than announced. */
    assert_int_equal(front_call(f, ok, "{}{}", &io), 400);
    buf_free(&io.out);
    /* Less than announced: an error, not a wait. */
    assert_int_equal(front_call(f, shorter, "{}", &io), 400);
    buf_free(&io.out);
    /* Over max_body: refused before a byte is read. */
    assert_int_equal(front_call(f, huge, "{}", &io), 413);
    assert_int_equal(io.reads, 0);
    assert_non_null(strstr(buf_str(&io.out), "body_too_large"));
    buf_free(&io.out);
    assert_int_equal(front_call(f, junk, "{}", &io), 400);
    buf_free(&io.out);
    /* No CONTENT_LENGTH: read to the end, still capped. */
    assert_int_equal(front_call(f, chunked, "{}", &io), 202);
    buf_free(&io.out);
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    assert_int_equal(front_call(f, chunked, big, &io), 413);
    buf_free(&io.out);
}

static void
test_front_head(void **state)
{
    fixture_t *f = *state;
    fake_io_t io;
    const char *env[] = {"REQUEST_METHOD", "HEAD", "REQUEST_URI", "/healthz", NULL};

    assert_int_equal(front_call(f, env, "", &io), 200);
    assert_non_null(strstr(buf_str(&io.out), "Content-Length: 3\r\n\r\n"));
    assert_null(strstr(buf_str(&io.out), "ok\n"));
    buf_free(&io.out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_path),
        cmocka_unit_test_setup_teardown(test_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mistakes_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservation_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_no_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_front_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_front_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_route, setup_outlook, teardown),
        cmocka_unit_test_setup_teardown(test_graph_off, setup, teardown),
    };
    return cmocka_run_group_tests_name("app", tests, NULL, NULL);
}
