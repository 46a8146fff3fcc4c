/* tdhook stock-check [--dry-run] [--json] */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "cgi/cmd.h"
#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/stock.h"
#include "core/util/xalloc.h"

static time_t stock_started;
static time_t stock_last_line;

/* A progress line once a second, from the second second on. */
static void
stock_progress(size_t done, size_t total)
{
    time_t now = time(NULL);

    if (now - stock_started < 2 || now == stock_last_line)
        return;
    stock_last_line = now;
    fprintf(stderr, "tdhook: counted %zu of %zu stock rooms\n", done, total);
}

int
cmd_stock_check(const config_t *cfg, int argc, char **argv)
{
    stock_report_t *r = NULL;
    const config_list_t *to;
    const char *why = NULL;
    char *err = NULL;
    long retry_after_ms;
    int dry_run = 0, as_json = 0, rc;
    size_t nnew;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else {
            fprintf(stderr, "tdhook: stock-check: unknown argument \"%s\"\n"
                            "usage: tdhook stock-check [--dry-run] [--json]\n", argv[i]);
            return EX_USAGE;
        }
    }
    stock_started = time(NULL);
    rc = stock_check_run(cfg, &r, &err, &retry_after_ms, stock_progress);
    if (rc != STOCK_OK) {
        fprintf(stderr, "tdhook: stock check failed: %s\n", err ? err : "unknown error");
        free(err);
        return rc == STOCK_ERETRY ? EX_TEMPFAIL : EX_UNAVAILABLE;
    }
    nnew = stock_mark_new(cfg, r, 0);
    if (as_json) {
        json_object *j = stock_report_json(r);
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    } else {
        char *text = stock_report_text(r, cfg->stock_check.repeat == REPEAT_ONLY_NEW && !dry_run);
        fputs(text, stdout);
        free(text);
    }
    fflush(stdout);   /* before the log lines on stderr that follow */
    rc = EX_OK;
    if (!dry_run) {
        to = stock_recipients(cfg, r, nnew, &why);
        if (to) {
            char *message = stock_digest(cfg, r, nnew, to);
            int mrc = smtp_send(cfg, to->v, to->n, message, &err);

            free(message);
            if (mrc != SMTP_OK) {
                fprintf(stderr, "tdhook: the digest was not sent: %s\n", err ? err : "");
                rc = mrc == SMTP_ERETRY ? EX_TEMPFAIL : EX_UNAVAILABLE;
            } else {
                fprintf(stderr, "tdhook: digest mailed to %zu recipient%s%s%s\n", to->n,
                        to->n == 1 ? "" : "s", err ? "; " : "", err ? err : "");
            }
            free(err);
            err = NULL;
        } else {
            fprintf(stderr, "tdhook: no mail: %s\n", why);
        }
        if (rc == EX_OK)
            stock_mark_new(cfg, r, 1);
    }
    stock_report_free(r);
    return rc;
}
