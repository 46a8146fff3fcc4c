/* Unit tests of config/config.c: the schema, every error class, secrets,
 * ${VAR} expansion, the value parsers and config_print. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/util/buf.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* Every secret value the tests use contains one of these; none may ever
 * show up in an error message or in config_print output. */
static const char *const secret_marks[] = {
    "tok-secret", "td-secret", "graph-secret", "ews-secret", "smtp-secret",
    "env-secret", "file-secret",
};

static char tmpdir[] = "/tmp/test_config.XXXXXX";

#define MIN_HOOKS "hooks:\n  tokens: [tok-secret-1]\n"
#define MIN_TOPDESK \
    "topdesk:\n" \
    "  url: https://td.example.com/\n" \
    "  username: api\n" \
    "  application_password: td-secret-2\n"
#define MIN_MAIL "mail:\n  from: tdhook@example.com\n"
#define MIN_GRAPH \
    "graph:\n" \
    "  tenant: contoso.onmicrosoft.com\n" \
    "  client_id: cid\n" \
    "  client_secret: graph-secret-3\n"
#define MIN_YAML MIN_HOOKS MIN_TOPDESK MIN_MAIL MIN_GRAPH

static void
assert_no_secret(const char *text)
{
    for (size_t i = 0; i < sizeof secret_marks / sizeof *secret_marks; i++) {
        if (strstr(text, secret_marks[i])) {
            fprintf(stderr, "secret %s leaked in: %s\n", secret_marks[i], text);
            fail();
        }
    }
}

static config_t *
load_ok(const char *yaml)
{
    config_t *cfg = NULL;
    char *err = NULL;
    int rc = config_load_buffer("test.yaml", yaml, strlen(yaml), &cfg, &err);

    if (rc != CONFIG_OK)
        fprintf(stderr, "unexpected error: %s\n", err ? err : "(none)");
    assert_int_equal(rc, CONFIG_OK);
    assert_null(err);
    assert_non_null(cfg);
    return cfg;
}

/* Loads yaml, expects CONFIG_EINVAL with want in the message. */
static void
load_err(const char *yaml, const char *want)
{
    config_t *cfg = (config_t *)1;
    char *err = NULL;
    int rc = config_load_buffer("test.yaml", yaml, strlen(yaml), &cfg, &err);

    assert_int_equal(rc, CONFIG_EINVAL);
    assert_null(cfg);
    assert_non_null(err);
    if (!strstr(err, want)) {
        fprintf(stderr, "want \"%s\" in \"%s\"\n", want, err);
        fail();
    }
    assert_no_secret(err);
    free(err);
}

static char *
tmp_write(const char *name, const char *content, mode_t mode)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static char *
print_to_string(const config_t *cfg)
{
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);

    assert_non_null(fp);
    config_print(cfg, fp);
    fclose(fp);
    return out;
}

static void
test_minimal_defaults(void **state)
{
    config_t *cfg = load_ok(MIN_YAML);

    assert_string_equal(cfg->path, "test.yaml");
    assert_string_equal(cfg->state_dir, "/var/lib/tdhook");
    assert_int_equal(cfg->log_level, LOG_INFO);
    assert_int_equal(cfg->log_format, LOG_TEXT);
    assert_int_equal(cfg->hook_tokens.n, 1);
    assert_string_equal(cfg->hook_tokens.v[0], "tok-secret-1");
    assert_int_equal(cfg->max_body, 1024 * 1024);
    assert_int_equal(cfg->admin_mail.n, 0);
    assert_string_equal(cfg->topdesk.url, "https://td.example.com");
    assert_string_equal(cfg->topdesk.username, "api");
    assert_string_equal(cfg->topdesk.application_password, "td-secret-2");
    assert_int_equal(cfg->topdesk.timeout_ms, 30000);
    assert_int_equal(cfg->topdesk.max_parallel, 4);
    assert_string_equal(cfg->mail.smtp_url, "smtp://127.0.0.1:25");
    assert_int_equal(cfg->mail.starttls, STARTTLS_AUTO);
    assert_string_equal(cfg->mail.from, "tdhook@example.com");
    assert_null(cfg->mail.username);
    assert_null(cfg->mail.password);
    assert_string_equal(cfg->stock_check.minimum_field, "Minimale voorraad");
    assert_int_equal(cfg->stock_check.count,
                     CONFIG_COUNT_ASSETS | CONFIG_COUNT_BULK_ITEMS);
    assert_int_equal(cfg->stock_check.to.n, 0);
    assert_int_equal(cfg->stock_check.repeat, REPEAT_DAILY);
    assert_int_equal(cfg->stock_check.always_mail, 0);
    assert_int_equal(cfg->reservations.exchange, EXCHANGE_GRAPH);
    assert_string_equal(cfg->reservations.room_field, "optionalFields1.text1");
    assert_int_equal(cfg->reservations.room_static.n, 0);
    assert_string_equal(cfg->reservations.match_key, "externalLink");
    assert_string_equal(cfg->reservations.subject, "{description} ({number})");
    assert_string_equal(cfg->reservations.body,
                        "Booked in TOPdesk by {requester} for {persons} persons.");
    assert_int_equal(cfg->reservations.reconcile_days, 14);
    assert_int_equal(cfg->reservations.notify_requester, 1);
    assert_int_equal(cfg->reservations.notify_to.n, 0);
    assert_string_equal(cfg->graph.tenant, "contoso.onmicrosoft.com");
    assert_string_equal(cfg->graph.client_id, "cid");
    assert_string_equal(cfg->graph.client_secret, "graph-secret-3");
    assert_string_equal(cfg->graph.login_url, "https://login.microsoftonline.com");
    assert_string_equal(cfg->graph.graph_url, "https://graph.microsoft.com/v1.0");
    assert_null(cfg->ews.url);
    assert_null(cfg->ews.password);
    assert_int_equal(cfg->ews.auth, EWS_AUTH_NTLM);
    assert_int_equal(cfg->queue.max_jobs, 10000);
    assert_int_equal(cfg->queue.max_attempts, 12);
    assert_int_equal(cfg->queue.retry_base_ms, 10000);
    assert_int_equal(cfg->queue.retry_max_ms, 3600000);
    assert_int_equal(cfg->queue.runners, 2);
    assert_int_equal(cfg->queue.keep_done_ms, 7L * 86400000);
    config_free(cfg);
}

static void
test_all_keys(void **state)
{
    config_t *cfg = load_ok(
        "state_dir: /srv/tdhook\n"
        "log: {level: debug, format: json}\n"
        "hooks:\n  tokens: [tok-secret-a, \"tok-secret-b\"]\n  max_body: 64KiB\n"
        "admin_mail: [a@example.com, b@example.com]\n"
        MIN_TOPDESK
        "  timeout: 1500ms\n  max_parallel: 64\n"
        "mail:\n  smtp_url: smtps://mx.example.com:465\n  starttls: required\n"
        "  from: x@example.com\n  username: u\n  password: smtp-secret-1\n"
        "stock_check:\n  minimum_field: Min\n  count: [bulk_items]\n"
        "  to: [inkoop@example.com]\n  repeat: only_new\n  always_mail: yes\n"
        "reservations:\n  exchange: ews\n"
        "  room_mapping:\n    topdesk_field: optionalFields2.text3\n"
        "    static: {\"Zaal 1\": zaal1@example.com, R2: r2@example.com}\n"
        "  match_key: optionalFields1.text5\n  subject: S\n  body: B\n"
        "  reconcile_days: 366\n  notify: {requester: off, to: [f@example.com]}\n"
        "ews:\n  url: https://mail.example.com/EWS/Exchange.asmx\n"
        "  username: 'EXAMPLE\\tdhook'\n  password: ews-secret-1\n  auth: basic\n"
        "queue:\n  max_jobs: 5\n  max_attempts: 3\n  retry_base: 2\n"
        "  retry_max: 5m\n  runners: 0\n  keep_done: 2h\n");

    assert_string_equal(cfg->state_dir, "/srv/tdhook");
    assert_int_equal(cfg->log_level, LOG_DEBUG);
    assert_int_equal(cfg->log_format, LOG_JSON);
    assert_int_equal(cfg->hook_tokens.n, 2);
    assert_string_equal(cfg->hook_tokens.v[1], "tok-secret-b");
    assert_int_equal(cfg->max_body, 65536);
    assert_int_equal(cfg->admin_mail.n, 2);
    assert_string_equal(cfg->admin_mail.v[1], "b@example.com");
    assert_int_equal(cfg->topdesk.timeout_ms, 1500);
    assert_int_equal(cfg->topdesk.max_parallel, 64);
    assert_string_equal(cfg->mail.smtp_url, "smtps://mx.example.com:465");
    assert_int_equal(cfg->mail.starttls, STARTTLS_REQUIRED);
    assert_string_equal(cfg->mail.username, "u");
    assert_string_equal(cfg->mail.password, "smtp-secret-1");
    assert_string_equal(cfg->stock_check.minimum_field, "Min");
    assert_int_equal(cfg->stock_check.count, CONFIG_COUNT_BULK_ITEMS);
    assert_int_equal(cfg->stock_check.repeat, REPEAT_ONLY_NEW);
    assert_int_equal(cfg->stock_check.always_mail, 1);
    assert_int_equal(cfg->reservations.exchange, EXCHANGE_EWS);
    assert_string_equal(cfg->reservations.room_field, "optionalFields2.text3");
    assert_int_equal(cfg->reservations.room_static.n, 2);
    assert_string_equal(cfg->reservations.room_static.v[0].key, "Zaal 1");
    assert_string_equal(cfg->reservations.room_static.v[0].value,
                        "zaal1@example.com");
    assert_string_equal(cfg->reservations.match_key, "optionalFields1.text5");
    assert_int_equal(cfg->reservations.reconcile_days, 366);
    assert_int_equal(cfg->reservations.notify_requester, 0);
    assert_string_equal(cfg->reservations.notify_to.v[0], "f@example.com");
    assert_null(cfg->graph.tenant);
    assert_string_equal(cfg->ews.username, "EXAMPLE\\tdhook");
    assert_string_equal(cfg->ews.password, "ews-secret-1");
    assert_int_equal(cfg->ews.auth, EWS_AUTH_BASIC);
    assert_int_equal(cfg->queue.max_jobs, 5);
    assert_int_equal(cfg->queue.max_attempts, 3);
    assert_int_equal(cfg->queue.retry_base_ms, 2000);
    assert_int_equal(cfg->queue.retry_max_ms, 300000);
    assert_int_equal(cfg->queue.runners, 0);
    assert_int_equal(cfg->queue.keep_done_ms, 7200000);
    config_free(cfg);
}

static void
test_unknown_key(void **state)
{
    load_err(MIN_YAML "bogus: 1\n", "test.yaml:13: bogus: unknown key");
    load_err("hooks:\n  tokens: [tok-secret-1]\n  tokenz: [x]\n" MIN_TOPDESK
             MIN_MAIL MIN_GRAPH, "test.yaml:3: hooks.tokenz: unknown key");
    load_err(MIN_YAML "reservations:\n  notify:\n    too: []\n",
             "test.yaml:15: reservations.notify.too: unknown key");
    /* _file exists only for secrets */
    load_err(MIN_YAML "state_dir_file: /x\n", "state_dir_file: unknown key");
}

/* direction: both needs its own keys, and Exchange Online for now. */
static void
test_direction_both(void **state)
{
    config_t *cfg;

    (void)state;
    load_err(MIN_YAML "reservations:\n  direction: both\n",
             "reservations.outlook.callback_url: missing required key");
    load_err(MIN_YAML "reservations:\n  direction: both\n  outlook: {notifications: false}\n",
             "reservations.outlook.fallback_requester: missing required key");
    load_err(MIN_YAML "reservations:\n  direction: sideways\n", "reservations.direction");
    load_err(MIN_YAML "reservations:\n  outlook: {resync: 5s}\n", "reservations.outlook.resync");
    load_err(MIN_YAML "reservations:\n  exchange: none\n  direction: both\n  outlook: "
             "{notifications: false, fallback_requester: a@x.nl, cancellation_reason: r}\n",
             "both needs reservations.exchange: graph or ews");
    cfg = load_ok(MIN_YAML "reservations:\n  direction: both\n  outlook:\n"
                  "    callback_url: https://h.example.com/tdhook/\n"
                  "    fallback_requester: reserveringen@example.com\n"
                  "    cancellation_reason: Geannuleerd in Outlook\n");
    assert_int_equal(cfg->reservations.direction, DIRECTION_BOTH);
    assert_string_equal(cfg->reservations.outlook.callback_url, "https://h.example.com/tdhook");
    assert_int_equal(cfg->reservations.outlook.notifications, 1);
    assert_int_equal(cfg->reservations.outlook.resync_ms, 15 * 60 * 1000);
    assert_int_equal(cfg->reservations.outlook.window_days, 180);
    assert_int_equal(cfg->reservations.outlook.when_refused, REFUSED_REPORT);
    config_free(cfg);
}

static void
test_wrong_type(void **state)
{
    load_err(MIN_HOOKS "topdesk:\n  url: {a: 1}\n" MIN_MAIL MIN_GRAPH,
             "test.yaml:4: topdesk.url: expected a string, found a mapping");
    load_err(MIN_YAML "state_dir: [a]\n", "state_dir: expected a string, found a list");
    load_err(MIN_YAML "log: debug\n", "log: expected a mapping, found a string");
    load_err(MIN_YAML "admin_mail: a@example.com\n",
             "admin_mail: expected a list, found a string");
    load_err(MIN_YAML "admin_mail: [[a]]\n", "admin_mail: item 1: expected a string");
    load_err(MIN_YAML "queue:\n  max_jobs: abc\n",
             "test.yaml:14: queue.max_jobs: expected an integer");
    load_err(MIN_YAML "queue:\n  max_jobs: 12abc\n", "queue.max_jobs: expected an integer");
    load_err(MIN_YAML "queue:\n  max_jobs: 99999999999999999999999\n",
             "queue.max_jobs: expected an integer");
    load_err(MIN_YAML "topdesk:\n  max_parallel: 65\n", "duplicate key");
    load_err(MIN_HOOKS MIN_MAIL MIN_GRAPH
             "topdesk:\n  url: https://x\n  username: u\n"
             "  application_password: td-secret-x\n  max_parallel: 65\n",
             "topdesk.max_parallel: expected an integer from 1 to 64");
    load_err(MIN_YAML "queue: {runners: -1}\n", "queue.runners: expected an integer from 0 to 16");
    load_err(MIN_YAML "reservations: {reconcile_days: 0}\n", "reservations.reconcile_days");
    load_err(MIN_YAML "stock_check: {always_mail: maybe}\n",
             "stock_check.always_mail: expected true or false");
    load_err(MIN_YAML "reservations: {room_mapping: {static: [a]}}\n",
             "reservations.room_mapping.static: expected a mapping, found a list");
    load_err(MIN_YAML "reservations: {room_mapping: {static: {a: [b]}}}\n",
             "reservations.room_mapping.static: a: expected a string");
    /* A secret of the wrong type: the message names the type only. */
    load_err(MIN_HOOKS MIN_MAIL MIN_GRAPH
             "topdesk:\n  url: https://x\n  username: u\n"
             "  application_password: {td-secret-9: td-secret-10}\n",
             "topdesk.application_password: expected a string, found a mapping");
    load_err("hooks:\n  tokens: tok-secret-1\n" MIN_TOPDESK MIN_MAIL MIN_GRAPH,
             "test.yaml:2: hooks.tokens: expected a list, found a string");
    load_err("hooks:\n  tokens: [tok-secret-1, \"\"]\n" MIN_TOPDESK MIN_MAIL MIN_GRAPH,
             "hooks.tokens: item 2 is empty");
    load_err("hooks:\n  tokens: []\n" MIN_TOPDESK MIN_MAIL MIN_GRAPH,
             "hooks.tokens: at least one is required");
    load_err(MIN_YAML "- a\n", "YAML syntax error");
    load_err("- a\n- b\n", "test.yaml:1: the top level must be a mapping");
    load_err("just a string\n", "the top level must be a mapping");
    load_err(MIN_YAML "{a: 1}: b\n", "a key must be a plain string");
    load_err(MIN_YAML "---\nx: 1\n", "only one YAML document");
}

static void
test_missing_required(void **state)
{
    load_err(MIN_TOPDESK MIN_MAIL MIN_GRAPH,
             "test.yaml:1: hooks.tokens: missing required key (or tokens_file)");
    load_err(MIN_HOOKS MIN_MAIL MIN_GRAPH, "topdesk.url: missing required key");
    load_err(MIN_HOOKS "topdesk:\n  username: api\n  application_password: td-secret-2\n"
             MIN_MAIL MIN_GRAPH, "test.yaml:3: topdesk.url: missing required key");
    load_err(MIN_HOOKS "topdesk:\n  url: https://x\n  application_password: td-secret-2\n"
             MIN_MAIL MIN_GRAPH, "test.yaml:3: topdesk.username: missing required key");
    load_err(MIN_HOOKS "topdesk:\n  url: https://x\n  username: api\n" MIN_MAIL MIN_GRAPH,
             "test.yaml:3: topdesk.application_password: missing required key "
             "(or application_password_file)");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH, "mail.from: missing required key");
    load_err(MIN_HOOKS MIN_TOPDESK "mail:\n  from: \"\"\n" MIN_GRAPH,
             "mail.from: must not be empty");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL, "graph.tenant: missing required key");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL "graph:\n  tenant: t\n  client_id: c\n",
             "test.yaml:9: graph.client_secret: missing required key");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL "graph:\n  tenant: t\n  client_secret: graph-secret-7\n",
             "graph.client_id: missing required key");
    /* An empty value is the same as an absent one. */
    load_err(MIN_HOOKS MIN_TOPDESK "mail:\n  from:\n" MIN_GRAPH,
             "mail.from: missing required key");
    load_err("", "test.yaml:1: hooks.tokens: missing required key");
}

static void
test_backend_rules(void **state)
{
    const char *ews =
        "ews:\n  url: https://mail.example.com/EWS/Exchange.asmx\n"
        "  username: u\n  password: ews-secret-1\n";
    char *yaml;
    config_t *cfg;

    /* exchange: ews needs ews, not graph */
    yaml = xasprintf("%s%s%s%sreservations: {exchange: ews}\n", MIN_HOOKS,
                     MIN_TOPDESK, MIN_MAIL, ews);
    cfg = load_ok(yaml);
    assert_int_equal(cfg->reservations.exchange, EXCHANGE_EWS);
    assert_string_equal(cfg->ews.password, "ews-secret-1");
    assert_null(cfg->graph.tenant);
    config_free(cfg);
    free(yaml);

    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL "reservations: {exchange: ews}\n",
             "ews.url: missing required key");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL
             "reservations: {exchange: ews}\news:\n  url: https://m\n  username: u\n",
             "ews.password: missing required key (or password_file)");
    /* the unused backend may be present, but its types are checked */
    yaml = xasprintf("%s%s", MIN_YAML, ews);
    cfg = load_ok(yaml);
    assert_int_equal(cfg->reservations.exchange, EXCHANGE_GRAPH);
    assert_string_equal(cfg->ews.url, "https://mail.example.com/EWS/Exchange.asmx");
    config_free(cfg);
    free(yaml);
    cfg = load_ok(MIN_YAML "ews: {auth: basic}\n");
    assert_int_equal(cfg->ews.auth, EWS_AUTH_BASIC);
    config_free(cfg);
    load_err(MIN_YAML "ews: {auth: kerberos}\n", "ews.auth: expected one of ntlm, basic");
    load_err(MIN_YAML "ews: {url: [x]}\n", "ews.url: expected a string, found a list");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL MIN_GRAPH "reservations: {exchange: owa}\n",
             "reservations.exchange: expected one of graph, ews, none, found \"owa\"");
}

static void
test_anchor_alias(void **state)
{
    load_err(MIN_YAML "admin_mail: &a [x@example.com]\n",
             "test.yaml:13: YAML anchors are not allowed");
    load_err("hooks:\n  tokens: [&t tok-secret-1]\n" MIN_TOPDESK MIN_MAIL MIN_GRAPH,
             "test.yaml:2: YAML anchors are not allowed");
    load_err(MIN_YAML "stock_check:\n  to: [x@example.com]\nreservations:\n"
             "  notify: {to: *a}\n", "YAML aliases are not allowed");
    load_err(MIN_YAML "queue: {<<: *q}\n", "test.yaml:13: YAML aliases are not allowed");
}

static void
test_duplicate_key(void **state)
{
    load_err(MIN_YAML "state_dir: /a\nstate_dir: /b\n",
             "test.yaml:14: state_dir: duplicate key");
    load_err(MIN_YAML "reservations: {room_mapping: {static: {a: x, b: y, a: z}}}\n",
             "reservations.room_mapping.static: duplicate key");
}

static void
test_bad_values(void **state)
{
    load_err(MIN_YAML "log: {level: loud}\n",
             "log.level: expected one of debug, info, warn, error, found \"loud\"");
    load_err(MIN_YAML "log: {format: xml}\n", "log.format: expected one of text, json");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: a@b\n  starttls: maybe\n",
             "mail.starttls: expected one of auto, required, off");
    load_err(MIN_YAML "stock_check: {repeat: weekly}\n", "stock_check.repeat");
    load_err(MIN_YAML "stock_check: {count: [assets, chairs]}\n",
             "stock_check.count: expected one of assets, bulk_items, found \"chairs\"");
    load_err(MIN_YAML "stock_check: {count: []}\n", "stock_check.count: list at least one");
    load_err("hooks:\n  tokens: [tok-secret-1]\n  max_body: 1XB\n" MIN_TOPDESK
             MIN_MAIL MIN_GRAPH, "test.yaml:3: hooks.max_body: expected a size");
    load_err("hooks:\n  tokens: [tok-secret-1]\n  max_body: 0\n" MIN_TOPDESK
             MIN_MAIL MIN_GRAPH, "hooks.max_body: expected a size");
    load_err(MIN_YAML "queue: {retry_base: 10 years}\n", "queue.retry_base: expected a duration");
    load_err(MIN_YAML "queue: {retry_max: -5s}\n", "queue.retry_max: expected a duration");
    load_err(MIN_HOOKS MIN_MAIL MIN_GRAPH
             "topdesk:\n  url: ftp://td\n  username: u\n  application_password: td-secret-2\n",
             "topdesk.url: must be an http:// or https:// URL");
    load_err(MIN_HOOKS MIN_MAIL MIN_GRAPH
             "topdesk:\n  url: https:///\n  username: u\n  application_password: td-secret-2\n",
             "topdesk.url: the URL has no host");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: a@b\n  smtp_url: http://mx\n",
             "mail.smtp_url: must be an smtp:// or smtps:// URL");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL
             "graph: {tenant: t, client_id: c, client_secret: graph-secret-1,"
             " login_url: login.example.com}\n",
             "graph.login_url: must be an http:// or https:// URL");
}

static void
test_env(void **state)
{
    config_t *cfg;

    setenv("TDHOOK_TEST_TOKEN", "env-secret-1", 1);
    setenv("TDHOOK_TEST_HOST", "td.example.com", 1);
    setenv("TDHOOK_TEST_N", "7", 1);
    cfg = load_ok("hooks:\n  tokens: [\"${TDHOOK_TEST_TOKEN}\", \"x${TDHOOK_TEST_TOKEN}y\"]\n"
                  "topdesk:\n  url: https://${TDHOOK_TEST_HOST}/tas/\n"
                  "  username: a$$b$c$\n  application_password: td-secret-2\n"
                  "  max_parallel: ${TDHOOK_TEST_N}\n"
                  MIN_MAIL MIN_GRAPH);
    assert_string_equal(cfg->hook_tokens.v[0], "env-secret-1");
    assert_string_equal(cfg->hook_tokens.v[1], "xenv-secret-1y");
    assert_string_equal(cfg->topdesk.url, "https://td.example.com/tas");
    assert_string_equal(cfg->topdesk.username, "a$b$c$");
    assert_int_equal(cfg->topdesk.max_parallel, 7);
    config_free(cfg);

    unsetenv("TDHOOK_TEST_UNSET");
    load_err(MIN_YAML "state_dir: /x/${TDHOOK_TEST_UNSET}/y\n",
             "test.yaml:13: state_dir: environment variable TDHOOK_TEST_UNSET is not set");
    load_err("hooks:\n  tokens: [\"${TDHOOK_TEST_UNSET}\"]\n" MIN_TOPDESK MIN_MAIL MIN_GRAPH,
             "hooks.tokens: environment variable TDHOOK_TEST_UNSET is not set");
    load_err(MIN_YAML "state_dir: /x/${bad-name}\n", "state_dir: bad ${...} reference");
    load_err(MIN_HOOKS MIN_MAIL MIN_GRAPH
             "topdesk:\n  url: https://x\n  username: u\n"
             "  application_password: td-secret-${oops\n",
             "topdesk.application_password: bad ${...} reference");
}

static void
test_secret_files(void **state)
{
    char *td = tmp_write("td.secret", "file-secret-td\n", 0600);
    char *gr = tmp_write("graph.secret", "file-secret-graph\r\n", 0600);
    char *tok = tmp_write("tokens", "# rotated 2024\n\n  file-secret-tok1  \n"
                          "file-secret-tok2\n   # old one\n", 0600);
    char *twonl = tmp_write("twonl.secret", "file-secret-2nl\n\n", 0600);
    char *empty = tmp_write("empty.secret", "\n", 0600);
    char *onlycomments = tmp_write("comments", "# none\n\n", 0600);
    char *yaml, *out;
    config_t *cfg;

    setenv("TDHOOK_TEST_DIR", tmpdir, 1);
    yaml = xasprintf("hooks:\n  tokens_file: %s\n"
                     "topdesk:\n  url: https://x\n  username: u\n"
                     "  application_password_file: ${TDHOOK_TEST_DIR}/td.secret\n"
                     MIN_MAIL
                     "graph:\n  tenant: t\n  client_id: c\n  client_secret_file: %s\n",
                     tok, gr);
    cfg = load_ok(yaml);
    assert_int_equal(cfg->hook_tokens.n, 2);
    assert_string_equal(cfg->hook_tokens.v[0], "file-secret-tok1");
    assert_string_equal(cfg->hook_tokens.v[1], "file-secret-tok2");
    assert_string_equal(cfg->topdesk.application_password, "file-secret-td");
    assert_string_equal(cfg->graph.client_secret, "file-secret-graph");
    out = print_to_string(cfg);
    assert_no_secret(out);
    assert_non_null(strstr(out, "application_password_file: \""));
    assert_non_null(strstr(out, "td.secret\"\n"));
    assert_non_null(strstr(out, "tokens_file: \""));
    assert_non_null(strstr(out, "client_secret_file: \""));
    /* it re-loads to the same secrets, since the files are still there */
    config_free(cfg);
    cfg = load_ok(out);
    assert_string_equal(cfg->topdesk.application_password, "file-secret-td");
    assert_string_equal(cfg->hook_tokens.v[1], "file-secret-tok2");
    config_free(cfg);
    free(out);
    free(yaml);

    /* only one newline is dropped */
    yaml = xasprintf(MIN_HOOKS MIN_MAIL MIN_GRAPH
                     "topdesk:\n  url: https://x\n  username: u\n"
                     "  application_password_file: %s\n", twonl);
    cfg = load_ok(yaml);
    assert_string_equal(cfg->topdesk.application_password, "file-secret-2nl\n");
    config_free(cfg);
    free(yaml);

    /* both forms */
    yaml = xasprintf(MIN_HOOKS MIN_MAIL MIN_GRAPH
                     "topdesk:\n  url: https://x\n  username: u\n"
                     "  application_password: td-secret-2\n"
                     "  application_password_file: %s\n", td);
    load_err(yaml, "test.yaml:13: topdesk.application_password: give either "
             "application_password or application_password_file, not both");
    free(yaml);
    yaml = xasprintf("hooks:\n  tokens: [tok-secret-1]\n  tokens_file: %s\n"
                     MIN_TOPDESK MIN_MAIL MIN_GRAPH, tok);
    load_err(yaml, "hooks.tokens: give either tokens or tokens_file");
    free(yaml);

    /* a missing file names the path */
    load_err(MIN_HOOKS MIN_TOPDESK MIN_MAIL
             "graph:\n  tenant: t\n  client_id: c\n"
             "  client_secret_file: /nonexistent/graph.secret\n",
             "test.yaml:12: graph.client_secret: cannot open /nonexistent/graph.secret: "
             "No such file or directory");
    load_err(MIN_YAML "mail:\n  from: a@b\n  password_file: /\n", "duplicate key");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: a@b\n  password_file: /\n",
             "mail.password: / is not a regular file");
    yaml = xasprintf(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: a@b\n  password_file: %s\n",
                     empty);
    load_err(yaml, "mail.password: the secret is empty");
    free(yaml);
    yaml = xasprintf("hooks:\n  tokens_file: %s\n" MIN_TOPDESK MIN_MAIL MIN_GRAPH,
                     onlycomments);
    load_err(yaml, "hooks.tokens: at least one is required");
    free(yaml);

    /* too big */
    {
        char *big = xmalloc(70000);
        memset(big, 'a', 69999);
        big[69999] = '\0';
        char *bigpath = tmp_write("big.secret", big, 0600);
        yaml = xasprintf(MIN_HOOKS MIN_TOPDESK MIN_GRAPH
                         "mail:\n  from: a@b\n  password_file: %s\n", bigpath);
        load_err(yaml, "is larger than 64 KiB");
        free(yaml);
        free(bigpath);
        free(big);
    }

    /* a secret file readable by others loads, with a warning */
    chmod(td, 0644);
    yaml = xasprintf(MIN_HOOKS MIN_MAIL MIN_GRAPH
                     "topdesk:\n  url: https://x\n  username: u\n"
                     "  application_password_file: %s\n", td);
    cfg = load_ok(yaml);
    config_free(cfg);
    free(yaml);

    free(td);
    free(gr);
    free(tok);
    free(twonl);
    free(empty);
    free(onlycomments);
}

static void
test_parse_size(void **state)
{
    static const struct {
        const char *s;
        int ok;
        size_t v;
    } t[] = {
        {"0", 1, 0}, {"2048", 1, 2048}, {"10B", 1, 10}, {"1KB", 1, 1000},
        {"1MB", 1, 1000000}, {"2GB", 1, 2000000000ULL}, {"1KiB", 1, 1024},
        {"512KiB", 1, 524288}, {"1MiB", 1, 1048576}, {"1GiB", 1, 1073741824},
        {"4K", 1, 4096}, {"2M", 1, 2097152}, {"1G", 1, 1073741824},
        {"1 MiB", 1, 1048576},
        {"", 0, 0}, {"MiB", 0, 0}, {"-1", 0, 0}, {"+1", 0, 0}, {" 1", 0, 0},
        {"1.5MiB", 0, 0}, {"1XB", 0, 0}, {"1mib", 0, 0}, {"1MiBx", 0, 0},
        {"99999999999999999999", 0, 0}, {"17179869184GiB", 0, 0},
        {"0x10", 0, 0},
    };

    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        size_t v = 12345;
        int rc = config_parse_size(t[i].s, &v);

        if ((rc == 0) != t[i].ok) {
            fprintf(stderr, "size \"%s\": rc %d\n", t[i].s, rc);
            fail();
        }
        if (t[i].ok)
            assert_int_equal(v, t[i].v);
        else
            assert_int_equal(v, 12345);
    }
    assert_int_equal(config_parse_size(NULL, &(size_t){0}), -1);
}

static void
test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        int ok;
        long v;
    } t[] = {
        {"0", 1, 0}, {"30", 1, 30000}, {"500ms", 1, 500}, {"30s", 1, 30000},
        {"5m", 1, 300000}, {"2h", 1, 7200000}, {"7d", 1, 604800000},
        {"10 s", 1, 10000},
        {"", 0, 0}, {"s", 0, 0}, {"-1s", 0, 0}, {"+1s", 0, 0}, {"1.5h", 0, 0},
        {"1w", 0, 0}, {"1sec", 0, 0}, {"1S", 0, 0}, {"1 s x", 0, 0},
        {"99999999999999999999", 0, 0}, {"9223372036854775807d", 0, 0},
        {"9223372036854775807s", 0, 0},
    };

    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        long v = 12345;
        int rc = config_parse_duration(t[i].s, &v);

        if ((rc == 0) != t[i].ok) {
            fprintf(stderr, "duration \"%s\": rc %d\n", t[i].s, rc);
            fail();
        }
        if (t[i].ok)
            assert_int_equal(v, t[i].v);
        else
            assert_int_equal(v, 12345);
    }
    {
        long v;
        assert_int_equal(config_parse_duration("9223372036854775807ms", &v), 0);
        assert_true(v == LONG_MAX);
    }
}

/* Addresses, the mails' language and zone, the CSV separator: a mistake
 * is caught by check-config, not by a mail that never arrives. */
static void
test_mail_keys(void **state)
{
    config_t *cfg;

    (void)state;
    load_err(MIN_YAML "admin_mail: [it-beheer]\n",
             "test.yaml:13: admin_mail: item 1, \"it-beheer\", is not a mail address");
    load_err(MIN_YAML "stock_check: {to: [inkoop@example.com, \"inkoop@\"]}\n",
             "stock_check.to: item 2, \"inkoop@\", is not a mail address");
    load_err(MIN_YAML "reservations: {notify: {to: [\"a b@example.com\"]}}\n",
             "reservations.notify.to: item 1");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: TOPdesk Voorraad\n",
             "mail.from: \"TOPdesk Voorraad\" is not a mail address; give one such as "
             "tdhook@example.com, or with a name");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: x@example.com\n"
             "  timezone: Europe/Atlantis\n",
             "mail.timezone: \"Europe/Atlantis\" is not a time zone this system knows");
    load_err(MIN_HOOKS MIN_TOPDESK MIN_GRAPH "mail:\n  from: x@example.com\n  language: de\n",
             "mail.language: expected one of en, nl");
    load_err(MIN_YAML "stock_check: {csv_separator: tab}\n",
             "stock_check.csv_separator: expected one of auto, \",\", \";\", found \"tab\"");
    cfg = load_ok(MIN_HOOKS MIN_TOPDESK MIN_GRAPH
                  "mail:\n  from: \"TOPdesk Voorraad <voorraad@example.com>\"\n"
                  "  language: nl\n  timezone: Europe/Amsterdam\n"
                  "stock_check: {csv_separator: \";\"}\n");
    assert_string_equal(cfg->mail.from, "TOPdesk Voorraad <voorraad@example.com>");
    assert_int_equal(cfg->mail.language, LANGUAGE_NL);
    assert_string_equal(cfg->mail.timezone, "Europe/Amsterdam");
    assert_int_equal(cfg->stock_check.csv_separator, CSV_SEPARATOR_SEMICOLON);
    config_free(cfg);
}

static void
test_print_masks_and_reloads(void **state)
{
    config_t *cfg, *again;
    char *out, *out2;

    cfg = load_ok(
        "hooks:\n  tokens: [tok-secret-1, tok-secret-2]\n  max_body: 100KiB\n"
        MIN_TOPDESK "  timeout: 1500ms\n"
        "mail:\n  from: \"Tdhook <tdhook@example.com>\"\n  username: u\n"
        "  password: smtp-secret-1\n"
        "admin_mail: [a@example.com]\n"
        "state_dir: \"  /spaced/dir  \"\n"
        "reservations:\n  room_mapping:\n    static: {\"Zaal: 1\": \"z1@example.com\","
        " \"{x}\": \"[y]\", k0: \"quote\\\"back\\\\slash\", k1: \"tab\\tnl\\n\","
        " k2: \"dollar $$HOME\", k3: \"\\u00e9t\\u00e9 \\u2028 ok\", k4: \"yes\", k5: \"~\","
        " k6: \"#x\", k7: \"- a: b\"}\n"
        "stock_check: {count: [assets], always_mail: true}\n"
        "queue: {keep_done: 0, retry_base: 90s}\n"
        MIN_GRAPH
        "ews:\n  url: https://m/EWS/Exchange.asmx\n  username: u\n"
        "  password: ews-secret-1\n");
    out = print_to_string(cfg);
    assert_no_secret(out);
    assert_non_null(strstr(out, "tokens: [\"********\", \"********\"]"));
    assert_non_null(strstr(out, "application_password: \"********\""));
    assert_non_null(strstr(out, "client_secret: \"********\""));
    assert_non_null(strstr(out, "  password: \"********\""));
    /* every key is printed, defaults too */
    assert_non_null(strstr(out, "minimum_field: \"Minimale voorraad\""));
    assert_non_null(strstr(out, "keep_done: 0s"));
    assert_non_null(strstr(out, "retry_max: 1h"));
    assert_non_null(strstr(out, "retry_base: 90s"));
    assert_non_null(strstr(out, "timeout: 1500ms"));
    assert_non_null(strstr(out, "always_mail: true"));

    again = load_ok(out);
    out2 = print_to_string(again);
    assert_string_equal(out, out2);
    assert_string_equal(again->reservations.room_static.v[2].value, "quote\"back\\slash");
    assert_string_equal(again->reservations.room_static.v[3].value, "tab\tnl\n");
    assert_string_equal(again->reservations.room_static.v[4].value, "dollar $HOME");
    assert_string_equal(again->reservations.room_static.v[5].value,
                        "\xc3\xa9t\xc3\xa9 \xe2\x80\xa8 ok");
    assert_string_equal(again->reservations.room_static.v[6].value, "yes");
    assert_string_equal(again->reservations.room_static.v[7].value, "~");
    assert_string_equal(again->admin_mail.v[0], "a@example.com");
    assert_string_equal(again->state_dir, "  /spaced/dir  ");
    assert_string_equal(again->mail.from, "Tdhook <tdhook@example.com>");
    assert_string_equal(again->reservations.room_static.v[0].key, "Zaal: 1");
    assert_string_equal(again->reservations.room_static.v[1].value, "[y]");
    assert_int_equal(again->max_body, 102400);
    assert_int_equal(again->stock_check.count, CONFIG_COUNT_ASSETS);
    assert_int_equal(again->queue.keep_done_ms, 0);
    assert_int_equal(again->topdesk.timeout_ms, 1500);
    /* masked secrets come back as the mask, nothing else */
    assert_string_equal(again->topdesk.application_password, "********");
    assert_int_equal(again->hook_tokens.n, 2);
    config_free(again);
    free(out2);
    free(out);
    config_free(cfg);

    /* defaults only: also re-loadable */
    cfg = load_ok(MIN_YAML);
    out = print_to_string(cfg);
    assert_no_secret(out);
    assert_non_null(strstr(out, "username: ~"));
    again = load_ok(out);
    assert_null(again->mail.username);
    assert_null(again->mail.password);
    assert_null(again->ews.url);
    config_free(again);
    free(out);
    config_free(cfg);
}

static void
test_load_file(void **state)
{
    char *path = tmp_write("open.yaml", MIN_YAML, 0644);
    config_t *cfg = NULL;
    char *err = NULL;

    /* readable by others: a warning only */
    assert_int_equal(config_load(path, &cfg, &err), CONFIG_OK);
    assert_null(err);
    assert_string_equal(cfg->path, path);
    config_free(cfg);
    free(path);

    path = tmp_write("bad.yaml", MIN_YAML "oops: 1\n", 0600);
    assert_int_equal(config_load(path, &cfg, &err), CONFIG_EINVAL);
    assert_null(cfg);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":13: oops: unknown key"));
    free(err);
    free(path);

    path = xasprintf("%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(config_load(path, &cfg, &err), CONFIG_ENOENT);
    assert_null(cfg);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    free(err);
    free(path);

    /* over 1 MiB */
    {
        size_t n = 1024 * 1024 + 10;
        char *big = xmalloc(n + 1);

        memset(big, '#', n);
        big[n] = '\0';
        assert_int_equal(config_load_buffer("big.yaml", big, n, &cfg, &err),
                         CONFIG_EINVAL);
        assert_non_null(strstr(err, "larger than 1 MiB"));
        free(err);
        path = tmp_write("big.yaml", big, 0600);
        assert_int_equal(config_load(path, &cfg, &err), CONFIG_EINVAL);
        assert_non_null(strstr(err, "larger than 1 MiB"));
        free(err);
        free(path);
        free(big);
    }
}

/* Replaces every "from" in s by "to"; allocated. */
static char *
replace_all(const char *s, const char *from, const char *to)
{
    buf_t b;
    const char *p;

    buf_init(&b, 1 << 22);
    while ((p = strstr(s, from))) {
        buf_append(&b, s, (size_t)(p - s));
        buf_puts(&b, to);
        s = p + strlen(from);
    }
    buf_puts(&b, s);
    return buf_steal(&b);
}

static void
test_example_file(void **state)
{
    const char *src = getenv("top_srcdir");
    char *path = xasprintf("%s/config/tdhook.yaml.example", src && *src ? src : ".");
    char *data = NULL, *copy, *dir, *copypath, *err = NULL;
    size_t len = 0;
    FILE *fp = fopen(path, "r");
    config_t *cfg = NULL;

    if (!fp) {
        free(path);
        path = xstrdup("../config/tdhook.yaml.example");
        fp = fopen(path, "r");
    }
    assert_non_null(fp);
    data = xmalloc(1 << 20);
    len = fread(data, 1, (1 << 20) - 1, fp);
    data[len] = '\0';
    fclose(fp);

    dir = xasprintf("%s/", tmpdir);
    copy = replace_all(data, "/etc/tdhook/", dir);
    free(tmp_write("topdesk.secret", "file-secret-topdesk\n", 0600));
    free(tmp_write("graph.secret", "file-secret-graph\n", 0600));
    free(tmp_write("ews.secret", "file-secret-ews\n", 0600));
    copypath = tmp_write("example.yaml", copy, 0600);
    setenv("TDHOOK_TOKEN", "env-secret-token", 1);

    if (config_load(copypath, &cfg, &err) != CONFIG_OK) {
        fprintf(stderr, "example: %s\n", err);
        fail();
    }
    assert_string_equal(cfg->hook_tokens.v[0], "env-secret-token");
    assert_string_equal(cfg->topdesk.url, "https://example.topdesk.net");
    assert_string_equal(cfg->topdesk.application_password, "file-secret-topdesk");
    assert_string_equal(cfg->graph.client_secret, "file-secret-graph");
    assert_string_equal(cfg->ews.password, "file-secret-ews");
    assert_string_equal(cfg->ews.username, "EXAMPLE\\tdhook");
    assert_string_equal(cfg->reservations.subject, "{description} ({number})");
    assert_string_equal(cfg->stock_check.to.v[0], "inkoop@example.com");
    assert_int_equal(cfg->queue.max_jobs, 10000);
    {
        char *out = print_to_string(cfg);
        config_t *again;

        assert_no_secret(out);
        again = load_ok(out);
        config_free(again);
        free(out);
    }
    config_free(cfg);

    /* without the token the error names the variable, not a value */
    unsetenv("TDHOOK_TOKEN");
    assert_int_equal(config_load(copypath, &cfg, &err), CONFIG_EINVAL);
    assert_non_null(strstr(err, "hooks.tokens: environment variable TDHOOK_TOKEN is not set"));
    free(err);

    free(copypath);
    free(copy);
    free(dir);
    free(data);
    free(path);
}

static void
test_default_path(void **state)
{
    setenv("TDHOOK_CONFIG", "/srv/x.yaml", 1);
    assert_string_equal(config_default_path(), "/srv/x.yaml");
    setenv("TDHOOK_CONFIG", "", 1);
    assert_non_null(strstr(config_default_path(), "/tdhook/tdhook.yaml"));
    unsetenv("TDHOOK_CONFIG");
    assert_non_null(strstr(config_default_path(), "/tdhook/tdhook.yaml"));
    config_free(NULL);
}

static void
test_nesting_and_nul(void **state)
{
    char deep[400];
    size_t n = 0;

    n += (size_t)snprintf(deep + n, sizeof deep - n, "a: ");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    load_err(deep, "nested too deeply");
    load_err(MIN_YAML "state_dir: \"a\\0b\"\n", "a string contains a NUL character");
}

static int
cleanup(void)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);

    free(cmd);
    return rc;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_backend_rules),
        cmocka_unit_test(test_anchor_alias),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_mail_keys),
        cmocka_unit_test(test_print_masks_and_reloads),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_direction_both),
        cmocka_unit_test(test_nesting_and_nul),
    };
    int rc;

    log_setup(LOG_ERROR, LOG_TEXT);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    cleanup();
    return rc;
}
