/* tdhook stock-check [--dry-run] [--json]: the stock-check job's own run
 * (stock_run()), with the report printed and the digest sent at once
 * instead of through the queue. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "cgi/cmd.h"
#include "core/clients/smtp.h"
#include "core/jobs/stock.h"
#include "core/util/xalloc.h"

typedef struct {
    const config_t *cfg;
    int as_json;
    int smtp_rc;            /* SMTP_* of the digest, when one was sent */
    time_t started;
    time_t last_line;
} cmd_stock_t;

static cmd_stock_t *cmd_stock;   /* for the progress callback */

/* A progress line once a second, from the second second on. */
static void
stock_progress(size_t done, size_t total)
{
    time_t now = time(NULL);

    if (now - cmd_stock->started < 2 || now == cmd_stock->last_line)
        return;
    cmd_stock->last_line = now;
    fprintf(stderr, "tdhook: counted %zu of %zu stock rooms\n", done, total);
}

static void
stock_print(const stock_report_t *r, int dry_run, void *arg)
{
    cmd_stock_t *c = arg;

    if (c->as_json) {
        json_object *j = stock_report_json(r);

        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    } else {
        char *text = stock_report_text(r, c->cfg->stock_check.repeat == REPEAT_ONLY_NEW && !dry_run);

        fputs(text, stdout);
        free(text);
    }
    fflush(stdout);   /* before the log lines on stderr that follow */
}

/* The digest, sent now over SMTP. */
static int
stock_send(const config_list_t *to, const char *message, void *arg, char **state, char **ref,
           char **errstr)
{
    cmd_stock_t *c = arg;
    char *note = NULL;

    (void)ref;
    c->smtp_rc = smtp_send(c->cfg, to->v, to->n, message, &note);
    if (c->smtp_rc != SMTP_OK) {
        *errstr = xasprintf("the digest was not sent: %s", note ? note : "");
        free(note);
        return c->smtp_rc == SMTP_ERETRY ? STOCK_ERETRY : STOCK_EFAIL;
    }
    *state = xasprintf("mailed to %zu recipient%s%s%s", to->n, to->n == 1 ? "" : "s",
                       note ? "; " : "", note ? note : "");
    free(note);
    return STOCK_OK;
}

int
cmd_stock_check(const config_t *cfg, int argc, char **argv)
{
    cmd_stock_t c = {.cfg = cfg, .smtp_rc = -1, .started = time(NULL)};
    stock_how_t how = {.progress = stock_progress, .on_report = stock_print,
                       .deliver = stock_send, .arg = &c};
    json_object *result = NULL, *mail;
    char *err = NULL;
    long retry_after_ms;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            how.dry_run = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            c.as_json = 1;
        } else {
            fprintf(stderr, "tdhook: stock-check: unknown argument \"%s\"\n"
                            "usage: tdhook stock-check [--dry-run] [--json]\n", argv[i]);
            return EX_USAGE;
        }
    }
    cmd_stock = &c;
    rc = stock_run(cfg, &how, &result, &err, &retry_after_ms);
    if (rc != STOCK_OK) {
        if (c.smtp_rc >= 0)
            fprintf(stderr, "tdhook: %s\n", err ? err : "the digest was not sent");
        else
            fprintf(stderr, "tdhook: stock check failed: %s\n", err ? err : "unknown error");
        free(err);
        return rc == STOCK_ERETRY ? EX_TEMPFAIL : EX_UNAVAILABLE;
    }
    if (!how.dry_run && json_object_object_get_ex(result, "mail", &mail))
        fprintf(stderr, "tdhook: %s%s\n", c.smtp_rc == SMTP_OK ? "digest " : "no mail: ",
                json_object_get_string(mail));
    json_object_put(result);
    return EX_OK;
}
