/* Unit tests of what the jobs decide, without any server: what each kind's
 * codes are worth to the queue, times with zones and fractions, the
 * reservation templates, the stock digest's renderings and its repeat
 * state. */
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
#include <json-c/json.h>

#include "config/config.h"
#include "core/clients/exchange.h"
#include "core/clients/smtp.h"
#include "core/jobs/jobs.h"
#include "core/jobs/reservation.h"
#include "core/jobs/stock.h"
#include "core/jobs/texts.h"
#include "core/util/xalloc.h"

/* --- the kind table ------------------------------------------------------- */

static void
test_verdicts(void **state)
{
    (void)state;
    assert_int_equal(jobs_verdict("stock-check", STOCK_OK), JOB_RC_OK);
    assert_int_equal(jobs_verdict("stock-check", STOCK_ERETRY), JOB_RC_RETRY);
    assert_int_equal(jobs_verdict("stock-check", STOCK_EFAIL), JOB_RC_FAIL);
    assert_int_equal(jobs_verdict("reservation", RESERVATION_OK), JOB_RC_OK);
    assert_int_equal(jobs_verdict("reservation", RESERVATION_ERETRY), JOB_RC_RETRY);
    assert_int_equal(jobs_verdict("reservation", RESERVATION_EFAIL), JOB_RC_FAIL);
    assert_int_equal(jobs_verdict("reconcile", RESERVATION_ERETRY), JOB_RC_RETRY);
    assert_int_equal(jobs_verdict("reconcile", RESERVATION_EFAIL), JOB_RC_FAIL);
    assert_int_equal(jobs_verdict("mail", SMTP_OK), JOB_RC_OK);
    assert_int_equal(jobs_verdict("mail", SMTP_ERETRY), JOB_RC_RETRY);
    assert_int_equal(jobs_verdict("mail", SMTP_EFAIL), JOB_RC_FAIL);
    /* a code nobody defines, and a kind nobody knows: give up */
    assert_int_equal(jobs_verdict("reservation", 99), JOB_RC_FAIL);
    assert_int_equal(jobs_verdict("nonsense", 0), JOB_RC_FAIL);
    assert_true(jobs_kind_known("mail"));
    assert_false(jobs_kind_known("Mail"));
}

/* --- times ---------------------------------------------------------------- */

static void
test_parse_time(void **state)
{
    const time_t t = 1741597200;   /* 2025-03-10T09:00:00Z */
    char buf[32];

    (void)state;
    assert_int_equal(exchange_parse_time("2025-03-10T09:00:00Z"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T09:00:00"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T09:00:00+0000"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T10:00:00+01:00"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T10:00:00.000+0100"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T04:30:00-04:30"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T09:00:00.0000000"), t);
    assert_int_equal(exchange_parse_time("2025-03-10T09:00:00.999Z"), t);
    /* across a day and a month */
    assert_int_equal(exchange_parse_time("2025-03-01T00:30:00+01:00"),
                     exchange_parse_time("2025-02-28T23:30:00Z"));
    assert_int_equal(exchange_parse_time("2024-02-29T12:00:00Z") -
                         exchange_parse_time("2024-02-28T12:00:00Z"), 86400);
    assert_int_equal(exchange_parse_time("not a time"), -1);
    assert_int_equal(exchange_parse_time(""), -1);
    assert_int_equal(exchange_parse_time("2025-13-10T09:00:00Z"), -1);
    assert_int_equal(exchange_parse_time("2025-03-10T09:00:00+25:00"), -1);
    exchange_format_time(t, buf, sizeof buf);
    assert_string_equal(buf, "2025-03-10T09:00:00");
}

/* --- templates ------------------------------------------------------------ */

static void
test_template(void **state)
{
    json_object *r = json_tokener_parse(
        "{\"number\":\"R 2503 001\",\"briefDescription\":\"Overleg\",\"numberOfPersons\":4,"
        "\"requester\":{\"name\":\"Piet de Vries\"}}");
    char *s;

    (void)state;
    assert_non_null(r);
    s = reservation_template("{description} ({number})", r, "Vergaderzaal 1.01");
    assert_string_equal(s, "Overleg (R 2503 001)");
    free(s);
    s = reservation_template("{requester}, {persons} persons in {room}", r, "Boardroom");
    assert_string_equal(s, "Piet de Vries, 4 persons in Boardroom");
    free(s);
    s = reservation_template("{unknown} stays, {room", r, NULL);
    assert_string_equal(s, "{unknown} stays, {room");
    free(s);
    json_object_put(r);
}

/* --- the stock digest ----------------------------------------------------- */

static stock_room_t
room(const char *id, const char *name, long count, int has_min, long min)
{
    stock_room_t x;

    memset(&x, 0, sizeof x);
    x.id = xstrdup(id);
    x.name = xstrdup(name);
    x.location = xstrdup("Zwolle");
    x.count = count;
    x.has_minimum = has_min;
    x.minimum = min;
    x.shortfall = has_min && min > count ? min - count : 0;
    x.url = xasprintf("https://td.example/stock/%s", id);
    return x;
}

static stock_report_t *
report(void)
{
    stock_report_t *r = xcalloc(1, sizeof *r);

    r->rooms = xcalloc(3, sizeof *r->rooms);
    r->rooms[0] = room("s1", "Toners HP 26A", 2, 1, 5);
    r->rooms[1] = room("s2", "Laptops", 7, 0, 0);
    r->rooms[2] = room("s3", "Muizen", 20, 1, 10);
    r->n = 3;
    r->nshort = 1;
    r->nnominimum = 1;
    r->field_id = xstrdup("f-1");
    r->generated = xstrdup("2026-12-08T09:00:00Z");
    r->requests = 7;
    return r;
}

static void
test_stock_text(void **state)
{
    stock_report_t *r = report();
    char *t = stock_report_text(r, 0);

    (void)state;
    assert_non_null(strstr(t, "Stock check of Tue 8 Dec 2026, 09:00: 1 of 3 stock rooms is "
                              "under their minimum. 1 has no minimum set.\n\n"));
    assert_non_null(strstr(t, "Under the minimum, to reorder:\n\n"
                              "Stock room     Location / branch    Count  Minimum  Short\n"
                              "Toners HP 26A  Zwolle                   2        5      3\n"));
    assert_non_null(strstr(t, "Without a minimum (fill in the field on the stock room's "
                              "card):\n\n  Laptops (Zwolle): 7 in stock\n"));
    assert_non_null(strstr(t, "  Toners HP 26A: https://td.example/stock/s1\n"));
    assert_null(strstr(t, "Muizen"));   /* over its minimum: not in the digest */
    assert_non_null(strstr(t, "-- \nSent automatically by the stock check of TOPdesk (field "
                              "\"f-1\", 7 TOPdesk requests).\n"));
    assert_null(strstr(t, "tdhook"));   /* purchasing does not run it */
    free(t);
    stock_report_free(r);
}

static void
test_stock_html_csv(void **state)
{
    stock_report_t *r = report();
    char *h, *c;

    (void)state;
    free(r->rooms[0].name);
    r->rooms[0].name = xstrdup("<Toners> & \"co\"");
    free(r->rooms[1].name);
    r->rooms[1].name = xstrdup("=cmd|' /C calc'!A0");
    h = stock_report_html(r, 0);
    assert_non_null(strstr(h, "&lt;Toners&gt; &amp; &quot;co&quot;"));
    assert_null(strstr(h, "<Toners>"));
    assert_non_null(strstr(h, "<th>Stock room</th><th>Location</th><th>Branch</th>"));
    c = stock_report_csv(r, 0, ',');
    assert_true(strncmp(c, "\xef\xbb\xbfstock_room,location,branch,count,minimum,shortfall,"
                           "status,url\r\n", 66) == 0);
    assert_non_null(strstr(c, "\"<Toners> & \"\"co\"\"\",\"Zwolle\",\"\",2,5,3,short,"));
    /* a formula is defused with a leading apostrophe */
    assert_non_null(strstr(c, "\"'=cmd|' /C calc'!A0\",\"Zwolle\",\"\",7,,,no minimum,"));
    free(h);
    free(c);
    stock_report_free(r);
}

/* Dutch, in Amsterdam's time: the digest, its CSV for a Dutch Excel, and
 * the times as people read them. */
static void
test_dutch(void **state)
{
    stock_report_t *r = report();
    char *t, *c, buf[TEXT_TIME_SIZE * 2];

    (void)state;
    text_setup(TEXT_NL, "Europe/Amsterdam");
    assert_string_equal(text_time(buf, exchange_parse_time("2026-12-08T10:30:00Z")),
                        "di 8 dec 2026, 11:30");
    assert_string_equal(text_span(buf, exchange_parse_time("2026-12-08T10:30:00Z"),
                                  exchange_parse_time("2026-12-08T11:30:00Z")),
                        "di 8 dec 2026, 11:30\u201312:30");
    assert_string_equal(text_span(buf, exchange_parse_time("2026-12-08T22:30:00Z"),
                                  exchange_parse_time("2026-12-09T08:00:00Z")),
                        "di 8 dec 2026, 23:30 \u2013 wo 9 dec 2026, 09:00");
    /* summer time */
    assert_string_equal(text_time(buf, exchange_parse_time("2026-07-01T08:00:00Z")),
                        "wo 1 jul 2026, 10:00");
    t = stock_report_text(r, 0);
    assert_non_null(strstr(t, "Voorraadcontrole van di 8 dec 2026, 10:00: 1 van de 3 "
                              "voorraadruimtes zit onder het minimum."));
    assert_non_null(strstr(t, "Onder het minimum, bij te bestellen:\n"));
    assert_non_null(strstr(t, "Laptops (Zwolle): 7 op voorraad"));
    assert_null(strstr(t, "tdhook"));
    c = stock_report_csv(r, 0, ';');
    assert_true(strncmp(c, "\xef\xbb\xbfVoorraadruimte;Locatie;Vestiging;Aantal;Minimum;Tekort;"
                           "Status;Link\r\n", 70) == 0);
    assert_non_null(strstr(c, "\"Toners HP 26A\";\"Zwolle\";\"\";2;5;3;tekort;"));
    assert_non_null(strstr(c, "\"Laptops\";\"Zwolle\";\"\";7;;;geen minimum;"));
    free(t);
    free(c);
    stock_report_free(r);
    text_setup(TEXT_EN, "UTC");
}

static void
test_stock_repeat_state(void **state)
{
    char dir[] = "/tmp/tdhook-test-jobs.XXXXXX";
    config_t *cfg = NULL;
    stock_report_t *r;
    char *yaml, *err = NULL, *text;
    const char *why = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    yaml = xasprintf("state_dir: %s\nhooks: {tokens: [t]}\n"
                     "topdesk: {url: 'https://x.topdesk.net', username: u, application_password: p}\n"
                     "mail: {from: a@example.com}\n"
                     "stock_check: {to: [inkoop@example.com]}\n"
                     "graph: {tenant: t, client_id: c, client_secret: s}\n", dir);
    assert_int_equal(config_load_buffer("t.yaml", yaml, strlen(yaml), &cfg, &err), 0);
    /* the first report: everything short is new; nothing saved yet */
    r = report();
    assert_int_equal(stock_mark_new(cfg, r, STOCK_SAVE_NOT), 1);
    assert_int_equal(stock_mark_new(cfg, r, STOCK_SAVE), 1);
    stock_report_free(r);
    /* the same shortfall again: nothing new, and only_new shows nothing */
    r = report();
    assert_int_equal(stock_mark_new(cfg, r, STOCK_SAVE), 0);
    assert_false(r->rooms[0].is_new);
    text = stock_report_text(r, 1);
    assert_non_null(strstr(text, "; 0 fell short since the last report."));
    assert_null(strstr(text, "Toners"));
    free(text);
    stock_report_free(r);
    /* Muizen falls short: it alone is new */
    r = report();
    r->rooms[2].count = 3;
    r->rooms[2].shortfall = 7;
    r->nshort = 2;
    assert_int_equal(stock_mark_new(cfg, r, STOCK_SAVE), 1);
    assert_true(r->rooms[2].is_new);
    assert_false(r->rooms[0].is_new);
    stock_report_free(r);
    /* daily: at most one digest a calendar day, unless something new */
    r = report();
    assert_false(stock_mailed_today(cfg));
    assert_non_null(stock_recipients(cfg, r, 0, 0, &why));
    stock_mark_new(cfg, r, STOCK_SAVE_MAILED);
    assert_true(stock_mailed_today(cfg));
    assert_null(stock_recipients(cfg, r, 0, 1, &why));
    assert_non_null(strstr(why, "today's digest went out already"));
    assert_non_null(stock_recipients(cfg, r, 1, 1, &why));
    /* a save without a mail keeps the day */
    stock_mark_new(cfg, r, STOCK_SAVE);
    assert_true(stock_mailed_today(cfg));
    stock_report_free(r);
    config_free(cfg);
    free(yaml);
    free(err);
    {
        char *path = xasprintf("%s/stock-state.json", dir);

        unlink(path);
        free(path);
    }
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_stock_text),
        cmocka_unit_test(test_stock_html_csv),
        cmocka_unit_test(test_dutch),
        cmocka_unit_test(test_stock_repeat_state),
    };

    text_setup(TEXT_EN, "UTC");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
