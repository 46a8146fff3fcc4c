/* The TOPdesk REST client (libcurl).
 *
 * Basic auth with the operator's application password; the vendor Accept
 * media type of each endpoint family; at most topdesk.max_parallel requests
 * in flight (curl multi); connect and total timeouts from topdesk.timeout.
 * A request that fails for now (connection error, timeout, 429, 5xx) is
 * retried inside topdesk_run() a few times with exponential backoff, honouring
 * Retry-After; when it still fails, topdesk_run() returns TOPDESK_ERETRY with
 * a retry-after hint for the job queue.  Every request's latency is counted
 * in the metrics (peer "topdesk").  No secret ever reaches an error text. */
#ifndef TDHOOK_TOPDESK_H
#define TDHOOK_TOPDESK_H

#include <json-c/json.h>
#include "config/config.h"

#define TOPDESK_OK 0
#define TOPDESK_ERETRY 1    /* try the job again later */
#define TOPDESK_EAUTH 2     /* 401: login or application password wrong */
#define TOPDESK_EPERM 3     /* 403: the operator lacks a right */
#define TOPDESK_ENOTFOUND 4 /* 404 */
#define TOPDESK_EFAIL 5     /* another 4xx, 406, a body that is not what the API documents */

/* Accept media types. */
#define TOPDESK_ACCEPT_JSON "application/json"
#define TOPDESK_ACCEPT_ASSETS "application/x.topdesk-am-assets-v2+json"
#define TOPDESK_ACCEPT_FIELDS "application/x.topdesk-am-fields-v2+json"
#define TOPDESK_ACCEPT_STOCK_QUANTITIES "application/x.topdesk-am-stock-quantities-v0+json"
#define TOPDESK_ACCEPT_ASSIGNMENTS "application/x.topdesk-am-assignments-v1+json"

typedef struct topdesk topdesk_t;

typedef struct {
    int status;           /* HTTP status (200, 206, 204, ...) */
    json_object *body;    /* parsed JSON, borrowed: valid during the callback; NULL for 204 */
    const char *path;     /* the request path as submitted */
} topdesk_response_t;

/* Called once per request that succeeded (2xx).  Return 0 to go on, or a
 * TOPDESK_E* code (with *errstr allocated) to stop the run with it.  A
 * callback may submit more requests (the next page). */
typedef int (*topdesk_done_fn)(topdesk_t *td, const topdesk_response_t *res, void *arg,
                               char **errstr);

/* Allocated, free with topdesk_free().  cfg is borrowed and must outlive it. */
topdesk_t *topdesk_new(const config_t *cfg);
void topdesk_free(topdesk_t *td);

/* Queues a GET of path (starting with "/tas/api/", query included, already
 * URL-encoded) to run in topdesk_run().  path is copied. */
void topdesk_submit(topdesk_t *td, const char *path, const char *accept,
                    topdesk_done_fn fn, void *arg);
/* Runs every submitted request (and those the callbacks submit) with at most
 * max_parallel in flight.  On the first error it stops and drops what is left;
 * *errstr (allocated) says what failed, naming the path and TOPdesk's own
 * error message from any of its three error body shapes; *retry_after_ms is
 * set for TOPDESK_ERETRY (-1 when TOPdesk gave no hint). */
int topdesk_run(topdesk_t *td, char **errstr, long *retry_after_ms);

/* One GET, run at once: *out is allocated (put once) or NULL for 204. */
int topdesk_get(topdesk_t *td, const char *path, const char *accept, json_object **out,
                int *status, char **errstr, long *retry_after_ms);

/* One request with a JSON body (method "PATCH", "POST" or "PUT"; body
 * borrowed, may be NULL), run at once, with the same retries and error
 * classes as GET.  *out is allocated (put once) or NULL for an empty answer. */
int topdesk_send(topdesk_t *td, const char *method, const char *path, const char *accept,
                 json_object *body, json_object **out, int *status, char **errstr,
                 long *retry_after_ms);

/* Requests sent so far (each retry counts), for progress lines and benchmarks. */
unsigned long topdesk_requests(const topdesk_t *td);

/* Appends s to buf percent-encoded for a query value (RFC 3986 unreserved
 * kept).  Allocated, free with free(). */
char *topdesk_escape(const char *s);

/* The id of a list item: "id", else "unid"; borrowed from obj or NULL. */
const char *topdesk_item_id(json_object *obj);

#endif
