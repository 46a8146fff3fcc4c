/* The routes of DESIGN.md, independent of how the request arrived
 * (FastCGI, CGI, a unit test or a fuzzer).  The front reads the request and
 * its body with the limits applied; app_handle() decides the answer. */
#ifndef TDHOOK_APP_H
#define TDHOOK_APP_H

#include <stddef.h>
#include "config/config.h"
#include "core/util/buf.h"
#include "core/queue/queue.h"

typedef struct {
    const config_t *cfg;   /* borrowed */
    queue_t *queue;        /* borrowed; NULL when state_dir is unusable */
} app_t;

typedef struct {
    const char *method;          /* REQUEST_METHOD */
    const char *path;            /* the route part, see app_route_path() */
    const char *query;           /* QUERY_STRING or NULL */
    const char *content_type;    /* CONTENT_TYPE or NULL */
    const char *authorization;   /* HTTP_AUTHORIZATION or NULL */
    const char *idempotency_key; /* HTTP_IDEMPOTENCY_KEY, else HTTP_WEBHOOK_ID */
    const char *body;            /* the body as read, NUL-terminated */
    size_t body_len;
} app_request_t;

#define APP_MAX_HEADERS 4

typedef struct {
    int status;
    const char *content_type;          /* static string */
    const char *headers[APP_MAX_HEADERS]; /* extra "Name: value" lines, static or in hbuf */
    int nheaders;
    char hbuf[256];                    /* storage for one formatted header */
    buf_t body;
} app_response_t;


void app_response_init(app_response_t *res);
void app_response_free(app_response_t *res);

/* Sets res to the JSON error {"error":{"code","message"}} with status. */
void app_error(app_response_t *res, int status, const char *code, const char *message);

/* The path after the nginx location prefix: PATH_INFO when set, else
 * DOCUMENT_URI (or REQUEST_URI without its query) minus SCRIPT_NAME when
 * SCRIPT_NAME is a proper prefix of it.  Allocated. */
char *app_route_path(const char *path_info, const char *document_uri,
                     const char *request_uri, const char *script_name);

/* Checks that must happen before the body is read: route, method, auth and
 * the announced length.  Returns 0 when the request may go on (then the
 * front reads the body), else fills res and returns its status.
 * content_length is -1 when absent. */
int app_precheck(app_t *app, const app_request_t *req, long long content_length,
                 app_response_t *res);
/* Handles a request that passed app_precheck() and whose body was read;
 * fills res.  The request is not checked again. */
void app_handle(app_t *app, const app_request_t *req, app_response_t *res);

/* app_precheck() and app_handle() for a request that is whole in memory
 * (its body_len as its length): the unit tests and the fuzzer. */
void app_serve(app_t *app, const app_request_t *req, app_response_t *res);

/* What app_handle_async() calls with the filled res. */
typedef void (*app_done_fn)(app_response_t *res, void *arg);

/* As app_handle() (req passed app_precheck()), but a hook's answer, which waits until its job is
 * durable, may come without the calling thread: done(res, arg) is called
 * exactly once, maybe from another thread once the job's journal group is
 * written, maybe before this returns.  res must stay valid until then; req
 * is not used after this returns. */
void app_handle_async(app_t *app, const app_request_t *req, app_response_t *res,
                      app_done_fn done, void *arg);

/* The route of path as /metrics counts it: "/hooks/reservation", "/jobs",
 * ..., "other" for no route; static. */
const char *app_route_label(const char *path);
/* 1 when a successful request of path is logged at debug level only
 * (/healthz, /metrics: scraped often). */
int app_route_quiet(const char *path);
/* The path as a log line may show it: a route whose tail is a secret
 * (/hooks/ews/<key>) gives its pattern.  Borrowed. */
const char *app_route_shown(const char *path);

#endif
