/* The stock check: every non-archived stock room in TOPdesk Asset
 * Management, what it holds, and its "Minimale voorraad".
 *
 * Requests grow with stock rooms and pages, never with assets: one field
 * lookup, the stock room list in pages of 1000, then per stock room one
 * counting request for its linked assets (fetchCount, no data) and, when
 * stock_check.count has bulk_items, its stock quantities (paged).  Memory
 * holds one record per stock room. */
#ifndef TDHOOK_STOCK_H
#define TDHOOK_STOCK_H

#include <json-c/json.h>
#include <stddef.h>
#include "config/config.h"
#include "core/queue/queue.h"

#define STOCK_OK 0
#define STOCK_ERETRY 1   /* TOPdesk failed for now */
#define STOCK_EFAIL 2    /* a preparation is missing (field, rights): the admin must act */

typedef struct {
    char *id;
    char *name;
    char *location;      /* location name or NULL */
    char *branch;        /* branch name or NULL */
    long assets;         /* individual assets linked to it */
    long bulk;           /* sum of bulk-item quantities in it */
    long count;          /* what counts: per stock_check.count */
    int has_minimum;
    long minimum;
    long shortfall;      /* minimum - count when positive, else 0 */
    int is_new;          /* short now, and was not in the last report */
    char *url;           /* the stock card in TOPdesk */
} stock_room_t;

typedef struct {
    stock_room_t *rooms;   /* all stock rooms, sorted: largest shortfall first,
                              then without minimum, then the rest; by name */
    size_t n;
    size_t nshort;         /* under their minimum */
    size_t nnominimum;     /* without a minimum */
    char *field_id;        /* the resolved "Minimale voorraad" field id */
    char *generated;       /* ISO-8601 UTC */
    unsigned long requests;/* TOPdesk requests it took */
} stock_report_t;

/* Runs the check.  *out allocated, free with stock_report_free().
 * progress, when not NULL, is called now and then with the rooms done. */
int stock_check_run(const config_t *cfg, stock_report_t **out, char **errstr,
                    long *retry_after_ms, void (*progress)(size_t done, size_t total));
void stock_report_free(stock_report_t *r);

/* For doctor: how many stock rooms there are and how many have the minimum
 * filled in, and the field's id (allocated, or NULL when it is missing).
 * Returns a TOPDESK_* code with *errstr. */
int stock_minimums(const config_t *cfg, size_t *rooms, size_t *filled, char **field_id,
                   char **errstr);

/* Renderings of the report; each allocated, free with free(). */
char *stock_report_text(const stock_report_t *r, int only_new);
char *stock_report_html(const stock_report_t *r, int only_new);
/* The CSV: UTF-8 with a byte order mark, cells separated by sep, CR LF
 * line ends, a header row in mail.language. */
char *stock_report_csv(const stock_report_t *r, int only_new, char sep);
/* Allocated, put once. */
json_object *stock_report_json(const stock_report_t *r);

/* Marks rooms that are short now but were not in the last report (state in
 * state_dir/stock-state.json), and saves the current shortfalls as save
 * says.  Returns how many are new. */
typedef enum {
    STOCK_SAVE_NOT,       /* only mark what is new */
    STOCK_SAVE,           /* and keep this report's shortfalls */
    STOCK_SAVE_MAILED     /* and that a digest went out today */
} stock_save_t;
size_t stock_mark_new(const config_t *cfg, stock_report_t *r, stock_save_t save);

/* 1 when a digest went out today (the calendar day in mail.timezone). */
int stock_mailed_today(const config_t *cfg);

/* Whether the report calls for a mail, and to whom (stock_check.to, else
 * admin_mail): borrowed from cfg, or NULL with the reason in *why.
 * repeat: daily mails at most once a calendar day (mailed_today) unless
 * something new fell short (nnew); only_new only when something did;
 * always_mail also when nothing is short. */
const config_list_t *stock_recipients(const config_t *cfg, const stock_report_t *r, size_t nnew,
                                      int mailed_today, const char **why);
/* The digest mail (text, HTML and a CSV attachment), built.  Allocated. */
char *stock_digest(const config_t *cfg, const stock_report_t *r, size_t nnew,
                   const config_list_t *to);

/* How a run of the check reports: the job queues the digest as a mail job,
 * the CLI prints the report and sends the digest at once. */
typedef struct {
    int dry_run;                 /* no mail, and the repeat state stays */
    void (*progress)(size_t done, size_t total);      /* may be NULL */
    /* Called once the report is made, before any mail; may be NULL. */
    void (*on_report)(const stock_report_t *r, int dry_run, void *arg);
    /* Delivers the built digest to `to`: STOCK_OK with *state (and *ref,
     * e.g. the mail job's id, or NULL) allocated, else STOCK_ERETRY or
     * STOCK_EFAIL with *errstr. */
    int (*deliver)(const config_list_t *to, const char *message, void *arg, char **state,
                   char **ref, char **errstr);
    void *arg;
} stock_how_t;

/* One run: the check, the report (how->on_report), the digest when the
 * report calls for one (how->deliver), the repeat state moved on once it
 * went out or was not needed.  *result: the report JSON with "mail" (what
 * became of the digest) and "mail_job" (how->deliver's *ref), put once.
 * STOCK_* codes with *errstr. */
int stock_run(const config_t *cfg, const stock_how_t *how, json_object **result, char **errstr,
              long *retry_after_ms);

/* The "stock-check" job: stock_run() with the digest queued as a mail job
 * (unless payload has "dry_run": true, or nothing is to report).  STOCK_*
 * codes. */
int stock_job(const config_t *cfg, queue_t *q, json_object *payload, json_object **result,
              char **errstr, long *retry_after_ms);

#endif
