/* What the files of the Graph backend share: the backend's state, what a
 * call ends with, and the helpers one file lends another.
 *
 *   graph.c        the operations of core/clients/exchange.h on room calendars
 *   graph_feed.c   bookings made in Outlook: the delta feed, decline, tag,
 *                  change notification subscriptions
 *   graph_call.c   one call with its retries, Graph's errors, JSON helpers
 *   graph_token.c  the client credentials token, cached in memory and in
 *                  state_dir for every process of one tdhook */
#ifndef TDHOOK_GRAPH_PRIVATE_H
#define TDHOOK_GRAPH_PRIVATE_H

#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "core/clients/exchange.h"
#include "core/util/buf.h"

#define GRAPH_PROPERTY_ID \
    "String {00020329-0000-0000-C000-000000000046} Name " EXCHANGE_PROPERTY_NAME
#define GRAPH_SCOPE "https://graph.microsoft.com/.default"
#define GRAPH_MAX_BODY (16u * 1024 * 1024)  /* a larger response fails */
#define GRAPH_JSON_DEPTH 64
#define GRAPH_ATTEMPTS 4                    /* the first try and three retries */
#define GRAPH_BACKOFF_MS 250L               /* doubled on each retry */
#define GRAPH_RETRY_AFTER_MAX_MS 30000L     /* longer hints go back to the job queue */
#define GRAPH_CONNECT_TIMEOUT_MS 10000L
#define GRAPH_TIMEOUT_MS 30000L
#define GRAPH_MSG_MAX 300                   /* bytes of Graph's own error text kept */
#define GRAPH_TOKEN_MARGIN 300              /* seconds before expiry a token is renewed */
#define GRAPH_TOKEN_FILE_MAX 65536
#define GRAPH_PAGE_SIZE 100                 /* $top of calendarView */
#define GRAPH_MAX_PAGES 100                 /* 10000 events in one window is not a room */

typedef struct {
    const config_t *cfg;
    CURL *easy;
    char *token;             /* secret; NULL until the first request */
    time_t token_expires;    /* wall clock, shared with the token file */
    char *token_path;        /* NULL without a state_dir */
    char *lock_path;
    int warned_tz;           /* a non-UTC time zone was logged */
    int warned_cache;        /* the token file could not be used */
    int login_checked;       /* check() fetched a token of its own once */
} graph_t;

/* What a call ends with, besides its code. */
typedef struct {
    long status;
    char code[64];           /* Graph's error.code, "" when none */
    json_object *json;       /* the parsed body of a 2xx answer, owned; may be NULL */
} graph_result_t;

/* graph.c */
int graph_bad_args(const char *what, char **errstr);
int graph_event_parse(graph_t *g, json_object *o, exchange_event_t *ev);
int graph_item_call(graph_t *g, const char *method, const char *mailbox, const char *id,
                    const char *query, const char *body, graph_result_t *res, char **shown,
                    char **errstr, long *retry_after_ms);
char *graph_url(graph_t *g, const char *mailbox, const char *rest);

/* graph_feed.c */
int graph_feed(void *impl, const char *mailbox, const char *state, time_t start, time_t end,
               exchange_event_t **events, size_t *n, char **new_state, char **errstr,
               long *retry_after_ms);
int graph_feed_probe(void *impl, size_t n, char *const *mailbox, char *const *state,
                     char **new_state, int *idle, char **errstr, long *retry_after_ms);
int graph_decline(void *impl, const char *mailbox, const char *id, const char *comment,
                  char **errstr, long *retry_after_ms);
int graph_tag(void *impl, const char *mailbox, const char *id, const char *reservation_id,
              char **errstr, long *retry_after_ms);
int graph_subscribe(void *impl, const char *mailbox, const char *url, const char *lifecycle_url,
                    const char *client_state, long minutes, exchange_sub_t *out, char **errstr,
                    long *retry_after_ms);
int graph_renew(void *impl, const char *id, long minutes, time_t *expires, char **errstr,
                long *retry_after_ms);
int graph_reauthorize(void *impl, const char *id, char **errstr, long *retry_after_ms);
int graph_unsubscribe(void *impl, const char *id, char **errstr, long *retry_after_ms);

/* graph_call.c */
int graph_call(graph_t *g, const char *method, const char *url, const char *shown,
               const char *body, int item, graph_result_t *res, char **errstr,
               long *retry_after_ms);
char *graph_clean(const char *s, size_t max);
char *graph_escape(graph_t *g, const char *s);
json_object *graph_json_parse(const char *s, size_t len);
const char *graph_json_str(json_object *o, const char *key);

/* graph_token.c */
int graph_token(graph_t *g, const char *rejected, char **errstr, long *retry_after_ms);
int graph_token_fetch(graph_t *g, char **errstr, long *retry_after_ms);
void graph_token_write(graph_t *g);

#endif
