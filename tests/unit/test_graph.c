/* Unit tests of core/clients/graph.c (through core/clients/exchange.h) against the fake
 * Graph (tests/fakes/graph.py), started once for the group on a free
 * loopback port.  Exits 77 (skipped) when /usr/bin/python3 or the fake is
 * missing. */
#include "autoconf.h"

#include <errno.h>
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
#include "core/clients/exchange.h"
#include "core/util/xalloc.h"
#include "tests/unit/fake.h"

#define TENANT "contoso.onmicrosoft.com"
#define SECRET "s3cret-graph"
#define ROOM "room1@contoso.onmicrosoft.com"
#define ROOM2 "room2@contoso.onmicrosoft.com"
#define STRANGER "nobody@elsewhere.example"
#define PREFER_TZ "outlook.timezone=\"UTC\""
#define PREFER_ID "IdType=\"ImmutableId\""

static char *fake_script;       /* path of tests/fakes/graph.py */
static fake_t fake;
static char *state_dir;         /* fake.dir/state: the shared token cache */
static config_t *cfg;

/* --- helpers ----------------------------------------------------------- */

static void
fake_faults(const char *rules_json)
{
    assert_int_equal(fake_set_faults(&fake, rules_json), 200);
}

static json_object *
fake_stats(void)
{
    json_object *stats = NULL;

    assert_int_equal(fake_call(&fake, "GET", "/__fake/stats", NULL, &stats), 200);
    assert_non_null(stats);
    return stats;
}

static int
fake_token_requests(void)
{
    json_object *stats = fake_stats(), *n;
    int count = -1;

    if (json_object_object_get_ex(stats, "token_requests", &n))
        count = json_object_get_int(n);
    json_object_put(stats);
    return count;
}

/* How many events the fake holds in mailbox. */
static int
fake_event_count(const char *mailbox)
{
    json_object *all = NULL, *list;
    int count = 0;

    assert_int_equal(fake_call(&fake, "GET", "/__fake/events", NULL, &all), 200);
    assert_non_null(all);
    if (json_object_object_get_ex(all, mailbox, &list))
        count = (int)json_object_array_length(list);
    json_object_put(all);
    return count;
}

/* Seeds an appointment without the property, as Outlook would make it. */
static void
fake_seed(const char *mailbox, const char *subject, time_t start, time_t end)
{
    char s[32], e[32], *body;

    exchange_format_time(start, s, sizeof s);
    exchange_format_time(end, e, sizeof e);
    body = xasprintf("{\"mailbox\":\"%s\",\"event\":{\"subject\":\"%s\","
                     "\"start\":{\"dateTime\":\"%s\",\"timeZone\":\"UTC\"},"
                     "\"end\":{\"dateTime\":\"%s\",\"timeZone\":\"UTC\"}}}",
                     mailbox, subject, s, e);
    assert_in_range(fake_call(&fake, "POST", "/__fake/events", body, NULL), 200, 201);
    free(body);
}

static config_t *
make_config(const char *secret, const char *login_url, const char *graph_url, const char *dir)
{
    return fake_config("state_dir: '%s'\n"
                       "hooks: {tokens: [t]}\n"
                       "topdesk: {url: 'http://127.0.0.1:9', username: u, "
                       "application_password: p}\n"
                       "mail: {from: a@example.com}\n"
                       "graph: {tenant: " TENANT ", client_id: cid, client_secret: '%s', "
                       "login_url: '%s', graph_url: '%s'}\n",
                       dir, secret, login_url, graph_url);
}

static config_t *
make_fake_config(const char *secret, const char *dir)
{
    char *login = xasprintf("http://127.0.0.1:%d", fake.port);
    char *graph = xasprintf("http://127.0.0.1:%d/v1.0", fake.port);
    config_t *c = make_config(secret, login, graph, dir);

    free(login);
    free(graph);
    return c;
}

static exchange_t *
open_exchange(const config_t *c)
{
    char *err = NULL;
    exchange_t *ex = exchange_open(c, &err);

    if (!ex)
        fprintf(stderr, "exchange_open: %s\n", err ? err : "?");
    free(err);
    assert_non_null(ex);
    assert_string_equal(exchange_name(ex), "graph");
    return ex;
}

static exchange_booking_t
booking(const char *rid, const char *tid, time_t start)
{
    exchange_booking_t b = {
        .reservation_id = rid,
        .transaction_id = tid,
        .subject = "Project meeting (R 2406 012)",
        .body = "Booked in TOPdesk by Ann for 6 persons.",
        .room_name = "Room 1.01",
        .start = start,
        .end = start + 3600,
    };
    return b;
}

/* Tomorrow at 09:00 UTC plus hours. */
static time_t
at(int hours)
{
    time_t t = time(NULL) + 86400;

    return t - t % 86400 + 9 * 3600 + hours * 3600;
}

static char *
token_path(const char *dir)
{
    return xasprintf("%s/graph-token", dir);
}

static void
remove_state(const char *dir)
{
    char *p = token_path(dir);

    unlink(p);
    free(p);
    p = xasprintf("%s/graph-token.lock", dir);
    unlink(p);
    free(p);
}

/* --- group and per-test fixtures ---------------------------------------- */

static int
group_setup(void **state)
{
    static const char *const args[] = {
        "--tenant", TENANT, "--client-id", "cid", "--client-secret", SECRET,
        "--token-ttl", "3599", NULL,
    };

    (void)state;
    if (fake_init(&fake, "graph") != 0)
        return -1;
    state_dir = xasprintf("%s/state", fake.dir);
    if (mkdir(state_dir, 0700) != 0 || fake_start(&fake, fake_script, args) != 0)
        return -1;
    cfg = make_fake_config(SECRET, state_dir);
    return cfg ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    fake_stop(&fake);
    config_free(cfg);
    free(state_dir);
    return 0;
}

/* Each test: no faults, no events, zeroed stats, no cached token, a fresh
 * backend. */
static int
setup(void **state)
{
    if (fake_clear(&fake) != 0)
        return -1;
    remove_state(state_dir);
    *state = open_exchange(cfg);
    return 0;
}

static int
teardown(void **state)
{
    exchange_close(*state);
    return 0;
}

/* --- tests ------------------------------------------------------------- */

/* create, find, get, update, view, delete, find: the whole life of one
 * appointment. */
static void
test_lifecycle(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0001", "tdhook-4f1c-0001-create", at(0));
    exchange_event_t *ev = NULL, *found = NULL, *got = NULL, *evs = NULL;
    char *err = NULL;
    long ra = 0;
    size_t n = 0, i, mine = 0;

    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_OK);
    assert_null(err);
    assert_non_null(ev);
    assert_non_null(ev->id);
    assert_true(strlen(ev->id) > 20);
    assert_string_equal(ev->reservation_id, "4f1c-0001");
    assert_string_equal(ev->subject, b.subject);
    assert_int_equal(ev->start, b.start);
    assert_int_equal(ev->end, b.end);
    assert_null(ev->change_key);
    assert_false(ev->cancelled);

    assert_int_equal(exchange_find(ex, ROOM, "4f1c-0001", &found, &err, &ra), EXCHANGE_OK);
    assert_non_null(found);
    assert_string_equal(found->id, ev->id);
    assert_string_equal(found->reservation_id, "4f1c-0001");

    assert_int_equal(exchange_get(ex, ROOM, ev->id, &got, &err, &ra), EXCHANGE_OK);
    assert_string_equal(got->id, ev->id);
    assert_string_equal(got->reservation_id, "4f1c-0001");
    assert_string_equal(got->body, b.body);
    assert_int_equal(got->start, b.start);
    exchange_event_free(got);
    got = NULL;

    /* moved an hour later, renamed */
    b.start = at(1);
    b.end = at(3);
    b.subject = "Moved meeting";
    b.body = "Now two hours";
    assert_int_equal(exchange_update(ex, ROOM, ev, &b, &err, &ra), EXCHANGE_OK);
    assert_null(err);
    assert_int_equal(exchange_get(ex, ROOM, ev->id, &got, &err, &ra), EXCHANGE_OK);
    assert_string_equal(got->subject, "Moved meeting");
    assert_string_equal(got->body, "Now two hours");
    assert_int_equal(got->start, at(1));
    assert_int_equal(got->end, at(3));
    assert_string_equal(got->reservation_id, "4f1c-0001");
    exchange_event_free(got);
    got = NULL;

    assert_int_equal(exchange_view(ex, ROOM, at(-2), at(8), &evs, &n, &err, &ra), EXCHANGE_OK);
    assert_int_equal(n, 1);
    for (i = 0; i < n; i++) {
        if (strcmp(evs[i].id, ev->id) == 0) {
            mine++;
            assert_string_equal(evs[i].reservation_id, "4f1c-0001");
            assert_int_equal(evs[i].start, at(1));
        }
    }
    assert_int_equal(mine, 1);
    exchange_events_free(evs, n);

    assert_int_equal(exchange_delete(ex, ROOM, ev, &err, &ra), EXCHANGE_OK);
    assert_null(err);
    exchange_event_free(found);
    found = NULL;
    assert_int_equal(exchange_find(ex, ROOM, "4f1c-0001", &found, &err, &ra), EXCHANGE_OK);
    assert_null(found);
    assert_int_equal(fake_event_count(ROOM), 0);

    /* gone already: still EXCHANGE_OK */
    assert_int_equal(exchange_delete(ex, ROOM, ev, &err, &ra), EXCHANGE_OK);
    assert_null(err);
    exchange_event_free(ev);
}

/* A retried create with the same transactionId leaves one appointment. */
static void
test_transaction_id(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0002", "tdhook-4f1c-0002-create", at(0));
    exchange_event_t *a = NULL, *c = NULL;
    char *err = NULL;
    long ra = 0;

    assert_int_equal(exchange_create(ex, ROOM, &b, &a, &err, &ra), EXCHANGE_OK);
    assert_int_equal(exchange_create(ex, ROOM, &b, &c, &err, &ra), EXCHANGE_OK);
    assert_string_equal(a->id, c->id);
    assert_int_equal(fake_event_count(ROOM), 1);
    exchange_event_free(a);
    exchange_event_free(c);
}

/* Tokens revoked behind tdhook's back: one 401, one renewal, success. */
static void
test_token_expired(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0003", "tdhook-4f1c-0003-create", at(0));
    exchange_event_t *ev = NULL, *found = NULL;
    char *err = NULL;
    long ra = 0;

    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_OK);
    assert_int_equal(fake_token_requests(), 1);
    assert_int_equal(fake_call(&fake, "POST", "/__fake/expire-tokens", "{}", NULL), 200);
    assert_int_equal(exchange_find(ex, ROOM, "4f1c-0003", &found, &err, &ra), EXCHANGE_OK);
    assert_null(err);
    assert_non_null(found);
    assert_string_equal(found->id, ev->id);
    assert_int_equal(fake_token_requests(), 2);
    exchange_event_free(ev);
    exchange_event_free(found);
}

/* A refused secret is EXCHANGE_EAUTH with Azure's text and never the secret. */
static void
test_wrong_secret(void **state)
{
    char *dir = xasprintf("%s/wrong", fake.dir);
    config_t *c;
    exchange_t *ex;
    exchange_event_t *ev = NULL;
    exchange_booking_t b = booking("4f1c-0004", NULL, at(0));
    char *err = NULL;
    long ra = 0;

    (void)state;
    assert_int_equal(mkdir(dir, 0700), 0);
    c = make_fake_config("wrong-secret-xyz", dir);
    assert_non_null(c);
    ex = open_exchange(c);
    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_EAUTH);
    assert_null(ev);
    assert_non_null(err);
    assert_non_null(strstr(err, "AADSTS7000215"));
    assert_null(strstr(err, "wrong-secret-xyz"));
    assert_null(strstr(err, "wrong-secret"));
    free(err);
    err = NULL;
    assert_int_equal(exchange_check(ex, ROOM, &err), EXCHANGE_EAUTH);
    assert_null(strstr(err, "wrong-secret-xyz"));
    free(err);
    assert_int_equal(fake_event_count(ROOM), 0);
    exchange_close(ex);
    config_free(c);
    remove_state(dir);
    rmdir(dir);
    free(dir);
}

/* One 429 with Retry-After: 1 is waited out inside the call. */
static void
test_429_retry_after(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0005", "tdhook-4f1c-0005-create", at(0));
    exchange_event_t *ev = NULL;
    char *err = NULL;
    long ra = 0;
    long long t0, took;

    fake_faults("[{\"path\":\"/v1.0/users/" ROOM "/events\",\"method\":\"POST\",\"status\":429,"
                "\"times\":1,\"retry_after\":\"1\",\"code\":\"TooManyRequests\"}]");
    t0 = fake_now_ms();
    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_OK);
    took = fake_now_ms() - t0;
    assert_null(err);
    assert_non_null(ev);
    assert_true(took >= 950);
    assert_true(took < 5000);
    assert_int_equal(fake_event_count(ROOM), 1);
    exchange_event_free(ev);
}

/* A fractional Retry-After, as Graph sends it, is honoured too. */
static void
test_fractional_retry_after(void **state)
{
    exchange_t *ex = *state;
    exchange_event_t *ev = NULL;
    char *err = NULL;
    long ra = 0;
    long long t0, took;

    fake_faults("[{\"path\":\"/v1.0/users/" ROOM "/events\",\"method\":\"GET\",\"status\":429,"
                "\"times\":2,\"retry_after\":\"0.3\",\"code\":\"ApplicationThrottled\"}]");
    t0 = fake_now_ms();
    assert_int_equal(exchange_find(ex, ROOM, "none", &ev, &err, &ra), EXCHANGE_OK);
    took = fake_now_ms() - t0;
    assert_null(ev);
    assert_true(took >= 550);
    assert_true(took < 3000);
}

/* 503 on every try: EXCHANGE_ERETRY after three retries with backoff. */
static void
test_503_forever(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0006", "tdhook-4f1c-0006-create", at(0));
    exchange_event_t *ev = NULL;
    char *err = NULL;
    long ra = 0;
    long long t0, took;

    fake_faults("[{\"path\":\"/v1.0/users/" ROOM "/events\",\"status\":503}]");
    t0 = fake_now_ms();
    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_ERETRY);
    took = fake_now_ms() - t0;
    assert_null(ev);
    assert_non_null(err);
    assert_non_null(strstr(err, "Graph POST /users/" ROOM "/events: 503"));
    assert_int_equal(ra, -1);
    assert_true(took >= 1300); /* 250 + 500 + 1000 ms, each 75-125 % with jitter */
    assert_true(took < 8000);
    free(err);
}

/* A Retry-After beyond 30 s goes back to the queue at once, with the hint. */
static void
test_long_retry_after(void **state)
{
    exchange_t *ex = *state;
    exchange_event_t *evs = NULL;
    size_t n = 0;
    char *err = NULL;
    long ra = 0;
    long long t0;

    fake_faults("[{\"path\":\"/v1.0/users/" ROOM "/calendarView\",\"status\":429,"
                "\"retry_after\":\"120\"}]");
    t0 = fake_now_ms();
    assert_int_equal(exchange_view(ex, ROOM, at(0), at(4), &evs, &n, &err, &ra),
                     EXCHANGE_ERETRY);
    assert_true(fake_now_ms() - t0 < 2000);
    assert_int_equal(ra, 120000);
    assert_null(evs);
    assert_int_equal(n, 0);
    assert_non_null(err);
    free(err);
}

/* Errors by code: a 400 gives up, with Graph's code and text in errstr. */
static void
test_bad_request(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0007", "tdhook-4f1c-0007-create", at(0));
    exchange_event_t *ev = NULL;
    char *err = NULL;
    long ra = 0;

    fake_faults("[{\"path\":\"/v1.0/users/" ROOM "/events\",\"status\":400,"
                "\"code\":\"ErrorInvalidRequest\"}]");
    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_EFAIL);
    assert_non_null(err);
    assert_memory_equal(err, "Graph POST /users/" ROOM "/events: 400 ErrorInvalidRequest",
                        strlen("Graph POST /users/" ROOM "/events: 400 ErrorInvalidRequest"));
    assert_null(strchr(err, '\n'));
    free(err);
    err = NULL;

    /* a 500 is for later */
    fake_faults("[{\"path\":\"/v1.0/users/" ROOM "/events\",\"status\":500,"
                "\"code\":\"generalException\"}]");
    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_ERETRY);
    free(err);
}

/* A mailbox outside the tenant: permanent, and doctor says so. */
static void
test_unknown_mailbox(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0008", "tdhook-4f1c-0008-create", at(0));
    exchange_event_t *ev = NULL;
    char *err = NULL;
    long ra = 0;

    assert_int_equal(exchange_create(ex, STRANGER, &b, &ev, &err, &ra), EXCHANGE_EFAIL);
    assert_null(ev);
    assert_non_null(strstr(err, "ErrorInvalidUser"));
    free(err);
    err = NULL;
    assert_int_equal(exchange_check(ex, STRANGER, &err), EXCHANGE_EFAIL);
    assert_non_null(strstr(err, "mailbox " STRANGER " not found"));
    free(err);
    err = NULL;
    assert_int_equal(exchange_check(ex, ROOM, &err), EXCHANGE_OK);
    assert_null(err);
}

/* Access denied by the application access policy: doctor explains the fix. */
static void
test_access_denied(void **state)
{
    exchange_t *ex = *state;
    char *err = NULL;

    fake_faults("[{\"path\":\"/v1.0/users/" ROOM2 "/\",\"status\":403,"
                "\"code\":\"ErrorAccessDenied\"}]");
    assert_int_equal(exchange_check(ex, ROOM2, &err), EXCHANGE_EFAIL);
    assert_non_null(strstr(err, "application access policy"));
    assert_non_null(strstr(err, "ErrorAccessDenied"));
    free(err);
}

/* A stale id: EXCHANGE_ENOTFOUND from get and update. */
static void
test_not_found(void **state)
{
    exchange_t *ex = *state;
    exchange_event_t *ev = NULL, stale = {.id = "AAMkAGI2TG93AAA="};
    exchange_booking_t b = booking("4f1c-0009", NULL, at(0));
    char *err = NULL;
    long ra = 0;

    assert_int_equal(exchange_get(ex, ROOM, "AAMkAGI2TG93AAA=", &ev, &err, &ra),
                     EXCHANGE_ENOTFOUND);
    assert_null(ev);
    assert_non_null(strstr(err, "ErrorItemNotFound"));
    free(err);
    err = NULL;
    assert_int_equal(exchange_update(ex, ROOM, &stale, &b, &err, &ra), EXCHANGE_ENOTFOUND);
    free(err);
}

/* Both Prefer headers on every Graph request. */
static void
test_prefer_headers(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("4f1c-0010", "tdhook-4f1c-0010-create", at(0));
    exchange_event_t *ev = NULL, *found = NULL, *evs = NULL;
    json_object *stats, *prefer, *v;
    char *err = NULL;
    long ra = 0;
    size_t n = 0;
    int tz = -1, id = -1;

    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_OK);
    assert_int_equal(exchange_find(ex, ROOM, "4f1c-0010", &found, &err, &ra), EXCHANGE_OK);
    assert_int_equal(exchange_view(ex, ROOM, at(-1), at(2), &evs, &n, &err, &ra), EXCHANGE_OK);
    assert_int_equal(exchange_delete(ex, ROOM, ev, &err, &ra), EXCHANGE_OK);
    stats = fake_stats();
    assert_true(json_object_object_get_ex(stats, "prefer", &prefer));
    if (json_object_object_get_ex(prefer, PREFER_TZ, &v))
        tz = json_object_get_int(v);
    if (json_object_object_get_ex(prefer, PREFER_ID, &v))
        id = json_object_get_int(v);
    assert_true(json_object_object_get_ex(stats, "requests", &v));
    /* create, find, view, delete: each one request, each with both */
    assert_int_equal(json_object_get_int(v) - fake_token_requests(), 4);
    assert_int_equal(tz, 4);
    assert_int_equal(id, 4);
    json_object_put(stats);
    exchange_event_free(ev);
    exchange_event_free(found);
    exchange_events_free(evs, n);
}

/* 105 appointments, pages of 100: the view follows @odata.nextLink; those
 * not made by tdhook come back without a reservation id. */
static void
test_view_paging(void **state)
{
    exchange_t *ex = *state, *other;
    exchange_booking_t b = booking("4f1c-0011", "tdhook-4f1c-0011-create", at(0));
    exchange_event_t *ev = NULL, *evs = NULL;
    json_object *stats, *by, *v;
    config_t *c;
    char *err = NULL, *login, *graph;
    long ra = 0;
    size_t n = 0, i, mine = 0, foreign = 0;
    time_t t0 = at(0);

    for (i = 0; i < 104; i++)
        fake_seed(ROOM, "Outlook booking", t0 + (time_t)i * 60, t0 + (time_t)i * 60 + 1800);
    fake_seed(ROOM, "Outside the window", at(30), at(31));
    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_OK);
    assert_int_equal(exchange_view(ex, ROOM, at(-1), at(5), &evs, &n, &err, &ra), EXCHANGE_OK);
    assert_null(err);
    assert_int_equal(n, 105);
    for (i = 0; i < n; i++) {
        if (evs[i].reservation_id) {
            mine++;
            assert_string_equal(evs[i].reservation_id, "4f1c-0011");
            assert_string_equal(evs[i].id, ev->id);
        } else {
            foreign++;
            assert_string_equal(evs[i].subject, "Outlook booking");
        }
    }
    assert_int_equal(mine, 1);
    assert_int_equal(foreign, 104);
    stats = fake_stats();
    assert_true(json_object_object_get_ex(stats, "by_path", &by));
    assert_true(json_object_object_get_ex(by, "/v1.0/users/" ROOM "/calendarView", &v));
    assert_int_equal(json_object_get_int(v), 2);
    json_object_put(stats);
    exchange_events_free(evs, n);
    exchange_event_free(ev);

    /* graph_url spelt 127.1: the fake's link says 127.0.0.1, and the
     * bearer token is never sent to a host that graph_url does not name */
    login = xasprintf("http://127.0.0.1:%d", fake.port);
    graph = xasprintf("http://127.1:%d/v1.0", fake.port);
    c = make_config(SECRET, login, graph, state_dir);
    assert_non_null(c);
    other = open_exchange(c);
    assert_int_equal(exchange_view(other, ROOM, at(-1), at(5), &evs, &n, &err, &ra),
                     EXCHANGE_EFAIL);
    assert_null(evs);
    assert_non_null(strstr(err, "nextLink"));
    free(err);
    exchange_close(other);
    config_free(c);
    free(login);
    free(graph);
}

/* The token file is private and shared: a second backend (another job
 * runner) uses it without asking for a token. */
static void
test_token_cache(void **state)
{
    exchange_t *ex = *state, *other;
    exchange_event_t *ev = NULL;
    char *path = token_path(state_dir), *err = NULL;
    struct stat st;
    long ra = 0;

    assert_int_equal(exchange_find(ex, ROOM, "4f1c-0012", &ev, &err, &ra), EXCHANGE_OK);
    assert_int_equal(fake_token_requests(), 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    other = open_exchange(cfg);
    assert_int_equal(exchange_find(other, ROOM, "4f1c-0012", &ev, &err, &ra), EXCHANGE_OK);
    assert_int_equal(fake_token_requests(), 1);
    /* doctor's check proves the configured secret: it asks for a token of
     * its own once, whatever the cache holds. */
    assert_int_equal(exchange_check(other, ROOM, &err), EXCHANGE_OK);
    assert_int_equal(exchange_check(other, ROOM, &err), EXCHANGE_OK);
    assert_int_equal(fake_token_requests(), 2);
    exchange_close(other);
    free(path);
}

/* A reservation id with a quote in it survives the OData literal. */
static void
test_find_quoted(void **state)
{
    exchange_t *ex = *state;
    exchange_booking_t b = booking("O'Brien 42/7", "tdhook-obrien", at(0));
    exchange_event_t *ev = NULL, *found = NULL;
    char *err = NULL;
    long ra = 0;

    assert_int_equal(exchange_create(ex, ROOM, &b, &ev, &err, &ra), EXCHANGE_OK);
    assert_int_equal(exchange_find(ex, ROOM, "O'Brien 42/7", &found, &err, &ra), EXCHANGE_OK);
    assert_non_null(found);
    assert_string_equal(found->id, ev->id);
    assert_string_equal(found->reservation_id, "O'Brien 42/7");
    exchange_event_free(ev);
    exchange_event_free(found);
}

/* Nobody listening: retried, then EXCHANGE_ERETRY. */
static void
test_unreachable(void **state)
{
    config_t *c;
    exchange_t *ex;
    exchange_event_t *ev = NULL;
    char *dir = xasprintf("%s/unreachable", fake.dir), *err = NULL;
    long ra = 0;
    long long t0;

    (void)state;
    assert_int_equal(mkdir(dir, 0700), 0);
    c = make_config(SECRET, "http://127.0.0.1:9", "http://127.0.0.1:9/v1.0", dir);
    assert_non_null(c);
    ex = open_exchange(c);
    t0 = fake_now_ms();
    assert_int_equal(exchange_find(ex, ROOM, "x", &ev, &err, &ra), EXCHANGE_ERETRY);
    assert_true(fake_now_ms() - t0 >= 1300); /* 1750 ms less jitter */
    assert_non_null(err);
    assert_null(strstr(err, SECRET));
    free(err);
    exchange_close(ex);
    config_free(c);
    remove_state(dir);
    rmdir(dir);
    free(dir);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_lifecycle),
        T(test_transaction_id),
        T(test_token_expired),
        T(test_wrong_secret),
        T(test_429_retry_after),
        T(test_fractional_retry_after),
        T(test_503_forever),
        T(test_long_retry_after),
        T(test_bad_request),
        T(test_unknown_mailbox),
        T(test_access_denied),
        T(test_not_found),
        T(test_prefer_headers),
        T(test_view_paging),
        T(test_token_cache),
        T(test_find_quoted),
        T(test_unreachable),
    };
    int rc;

    (void)argc;
    fake_script = fake_main_init("graph.py", argv[0]);
    if (!fake_script)
        return 77;
    rc = cmocka_run_group_tests_name("graph", tests, group_setup, group_teardown);
    fake_main_done(fake_script);
    return rc;
}
