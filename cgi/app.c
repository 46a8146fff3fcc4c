#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cgi/app.h"
#include "cgi/app_private.h"
#include "cgi/auth.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/xalloc.h"

#define APP_JSON_DEPTH 16
#define APP_RESPONSE_MAX (1024 * 1024)
#define APP_IDEM_KEY_MAX 200
#define APP_FIELD_MAX 200

typedef enum { AUTH_NONE, AUTH_TOKEN } app_auth_t;

typedef struct app_route app_route_t;

/* Answers a request of route r that passed app_precheck(). */
typedef void (*app_handler_fn)(app_t *app, const app_route_t *r, const app_request_t *req,
                               app_response_t *res);

struct app_route {
    const char *path;      /* exact path, or a prefix when it ends in '/' */
    const char *method;    /* "POST" or "GET" (GET also allows HEAD) */
    app_auth_t auth;
    const char *label;     /* the route as /metrics counts it */
    const char *kind;      /* job kind for hooks; NULL: no job */
    int quiet;             /* logged at debug level when it succeeds */
    app_handler_fn handle;
    const char *shown;     /* logged as this: the path's tail is a secret; NULL: the path */
};

static void app_hook(app_t *app, const app_route_t *r, const app_request_t *req,
                     app_response_t *res);
static void app_job(app_t *app, const app_route_t *r, const app_request_t *req,
                    app_response_t *res);
static void app_healthz(app_t *app, const app_route_t *r, const app_request_t *req,
                        app_response_t *res);
static void app_metrics(app_t *app, const app_route_t *r, const app_request_t *req,
                        app_response_t *res);
static void app_graph(app_t *app, const app_route_t *r, const app_request_t *req,
                      app_response_t *res);
static void app_ews(app_t *app, const app_route_t *r, const app_request_t *req,
                    app_response_t *res);

/* The routes of DESIGN.md. */
static const app_route_t app_routes[] = {
    {"/hooks/stock-check", "POST", AUTH_TOKEN, "/hooks/stock-check", "stock-check", 0, app_hook, NULL},
    {"/hooks/reservation", "POST", AUTH_TOKEN, "/hooks/reservation", "reservation", 0, app_hook, NULL},
    {"/hooks/reconcile", "POST", AUTH_TOKEN, "/hooks/reconcile", "reconcile", 0, app_hook, NULL},
    {"/hooks/graph", "POST", AUTH_NONE, "/hooks/graph", NULL, 1, app_graph, NULL},
    {"/hooks/graph/lifecycle", "POST", AUTH_NONE, "/hooks/graph/lifecycle", NULL, 0, app_graph, NULL},
    {"/hooks/ews/", "POST", AUTH_NONE, "/hooks/ews", NULL, 1, app_ews, "/hooks/ews/<key>"},
    {"/jobs/", "GET", AUTH_TOKEN, "/jobs", NULL, 0, app_job, NULL},
    {"/healthz", "GET", AUTH_NONE, "/healthz", NULL, 1, app_healthz, NULL},
    {"/metrics", "GET", AUTH_NONE, "/metrics", NULL, 1, app_metrics, NULL},
};

void
app_response_init(app_response_t *res)
{
    memset(res, 0, sizeof *res);
    res->status = 500;
    res->content_type = "application/json";
    buf_init(&res->body, APP_RESPONSE_MAX);
}

void
app_response_free(app_response_t *res)
{
    buf_free(&res->body);
}

void
app_header(app_response_t *res, const char *line)
{
    if (res->nheaders < APP_MAX_HEADERS)
        res->headers[res->nheaders++] = line;
}

void
app_error(app_response_t *res, int status, const char *code, const char *message)
{
    json_object *root = json_object_new_object();
    json_object *err = json_object_new_object();

    json_object_object_add(err, "code", json_object_new_string(code));
    json_object_object_add(err, "message", json_object_new_string(message));
    json_object_object_add(root, "error", err);
    res->status = status;
    res->content_type = "application/json";
    buf_reset(&res->body);
    buf_puts(&res->body, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    buf_puts(&res->body, "\n");
    json_object_put(root);
}

char *
app_route_path(const char *path_info, const char *document_uri,
               const char *request_uri, const char *script_name)
{
    const char *uri;
    size_t slen;

    if (path_info && *path_info)
        return xstrdup(path_info);
    if (document_uri && *document_uri) {
        uri = document_uri;
    } else if (request_uri && *request_uri) {
        const char *q = strchr(request_uri, '?');
        char *p = q ? xstrndup(request_uri, (size_t)(q - request_uri)) : xstrdup(request_uri);
        char *r = app_route_path(NULL, p, NULL, script_name);
        free(p);
        return r;
    } else {
        return xstrdup("/");
    }
    slen = script_name ? strlen(script_name) : 0;
    while (slen && script_name[slen - 1] == '/')
        slen--;
    /* SCRIPT_NAME equal to the whole URI is nginx's default fastcgi_params
     * for `location /`: then the URI is the route. */
    if (slen && strlen(uri) > slen && strncmp(uri, script_name, slen) == 0 && uri[slen] == '/')
        return xstrdup(uri + slen);
    return xstrdup(uri);
}

static const app_route_t *
app_find(const char *path)
{
    for (size_t i = 0; i < sizeof app_routes / sizeof *app_routes; i++) {
        const app_route_t *r = &app_routes[i];
        size_t n = strlen(r->path);
        if (r->path[n - 1] == '/') {
            if (strncmp(path, r->path, n) == 0 && path[n] && !strchr(path + n, '/'))
                return r;
        } else if (strcmp(path, r->path) == 0) {
            return r;
        }
    }
    return NULL;
}

const char *
app_route_label(const char *path)
{
    const app_route_t *r = path ? app_find(path) : NULL;

    return r ? r->label : "other";
}

const char *
app_route_shown(const char *path)
{
    const app_route_t *r = path ? app_find(path) : NULL;

    return r && r->shown ? r->shown : path;
}

int
app_route_quiet(const char *path)
{
    const app_route_t *r = path ? app_find(path) : NULL;

    return r && r->quiet;
}

static int
app_method_ok(const app_route_t *r, const char *method)
{
    if (strcmp(r->method, method) == 0)
        return 1;
    return strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* What is wrong with an Authorization header that auth_check() refused. */
static const char *
app_auth_problem(const char *authorization)
{
    const char *sp;

    if (!authorization || !*authorization)
        return "an Authorization header with a token is required: "
               "\"Authorization: Bearer <token>\"";
    sp = strchr(authorization, ' ');
    if (!sp || (strncasecmp(authorization, "Bearer ", 7) != 0 &&
                strncasecmp(authorization, "Basic ", 6) != 0))
        return "the Authorization header has no scheme: write \"Authorization: Bearer <token>\" "
               "(or Basic with the token as password)";
    return "the token is not valid";
}

int
app_precheck(app_t *app, const app_request_t *req, long long content_length,
             app_response_t *res)
{
    const app_route_t *r = req->path ? app_find(req->path) : NULL;
    const char *method = req->method ? req->method : "";

    if (!r) {
        app_error(res, 404, "not_found", "no such route");
        return res->status;
    }
    if (!app_method_ok(r, method)) {
        app_header(res, strcmp(r->method, "POST") == 0 ? "Allow: POST" : "Allow: GET, HEAD");
        app_error(res, 405, "method_not_allowed",
                  strcmp(r->method, "POST") == 0 ? "use POST" : "use GET");
        return res->status;
    }
    if (r->auth == AUTH_TOKEN &&
        !auth_check(req->authorization, app->cfg->hook_tokens.v, app->cfg->hook_tokens.n)) {
        app_header(res, "WWW-Authenticate: Bearer realm=\"tdhook\"");
        app_error(res, 401, "unauthorized", app_auth_problem(req->authorization));
        return res->status;
    }
    if (content_length > 0 && (unsigned long long)content_length > app->cfg->max_body) {
        app_error(res, 413, "body_too_large", "the request body is over hooks.max_body");
        return res->status;
    }
    return 0;
}

/* s as it may be quoted in an answer: printable ASCII, at most size - 4
 * bytes, "..." after a cut. */
static void
app_shown(const char *s, char *out, size_t size)
{
    size_t i = 0;

    for (; *s && i + 4 < size; s++)
        out[i++] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f && *s != '"' ? *s : '?';
    if (*s) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* application/json, any case, with or without parameters. */
static int
app_is_json(const char *ct)
{
    size_t n = strlen("application/json");

    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Parses the body into an object; NULL with res filled on error. */
json_object *
app_parse_body(const app_request_t *req, app_response_t *res)
{
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    size_t end;
    char msg[160];

    if (req->content_type && *req->content_type && !app_is_json(req->content_type)) {
        char shown[64];

        app_shown(req->content_type, shown, sizeof shown);
        snprintf(msg, sizeof msg, "the body must be application/json, not \"%s\"", shown);
        app_error(res, 415, "unsupported_media_type", msg);
        return NULL;
    }
    if (req->body_len == 0)
        return json_object_new_object();
    if (!req->content_type || !*req->content_type) {
        app_error(res, 415, "unsupported_media_type", "Content-Type: application/json is required");
        return NULL;
    }
    if (memchr(req->body, '\0', req->body_len)) {
        app_error(res, 400, "malformed_json", "the body contains a NUL byte");
        return NULL;
    }
    tok = json_tokener_new_ex(APP_JSON_DEPTH);
    obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* Input ended inside a value; json-c wants more. */
        snprintf(msg, sizeof msg, "malformed JSON: unexpected end of input");
        goto bad;
    }
    if (jerr != json_tokener_success) {
        snprintf(msg, sizeof msg, "malformed JSON at byte %zu: %s", end,
                 json_tokener_error_desc(jerr));
        goto bad;
    }
    for (; end < req->body_len; end++)
        if (!strchr(" \t\r\n", req->body[end])) {
            snprintf(msg, sizeof msg, "malformed JSON: trailing data at byte %zu", end);
            goto bad;
        }
    json_tokener_free(tok);
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        app_error(res, 400, "invalid_body", "the body must be a JSON object");
        return NULL;
    }
    return obj;
bad:
    json_object_put(obj);
    json_tokener_free(tok);
    app_error(res, 400, "malformed_json", msg);
    return NULL;
}

/* A printable, reasonably short string field; NULL when absent. Sets *bad. */
static const char *
app_string_field(json_object *body, const char *name, int *bad, app_response_t *res)
{
    json_object *v;
    const char *s;
    char msg[96];

    if (!json_object_object_get_ex(body, name, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, json_type_string)) {
        snprintf(msg, sizeof msg, "\"%s\" must be a string", name);
        goto bad;
    }
    s = json_object_get_string(v);
    if (!*s || strlen(s) > APP_FIELD_MAX) {
        snprintf(msg, sizeof msg, "\"%s\" must be 1 to %d characters", name, APP_FIELD_MAX);
        goto bad;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) {
            snprintf(msg, sizeof msg, "\"%s\" contains a control character", name);
            goto bad;
        }
    return s;
bad:
    *bad = 1;
    app_error(res, 400, "invalid_field", msg);
    return NULL;
}

/* 1 when s is a TOPdesk id: a UUID, 8-4-4-4-12 hex digits. */
static int
app_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return s[36] == '\0';
}

/* 1 when s can be a reservation number ("R 2406 012"): letters, digits,
 * spaces, "-", "/" and ".", with a digit, at most 40 characters. */
static int
app_is_number(const char *s)
{
    int digit = 0;
    size_t n = 0;

    for (; *s; s++, n++) {
        if (isdigit((unsigned char)*s))
            digit = 1;
        else if (!isalpha((unsigned char)*s) && !strchr(" -/.", *s))
            return 0;
    }
    return digit && n <= 40;
}

/* The 400 for a field whose value cannot be what it names. */
static void
app_bad_value(app_response_t *res, const char *field, const char *value, const char *want)
{
    char shown[64], msg[400];

    app_shown(value, shown, sizeof shown);
    if (strstr(value, "{{") || strstr(value, "${"))
        snprintf(msg, sizeof msg, "\"%s\" is \"%s\": a variable of the automated action "
                 "was not filled in; it must be %s", field, shown, want);
    else
        snprintf(msg, sizeof msg, "\"%s\" must be %s, not \"%s\"", field, want, shown);
    app_error(res, 400, "invalid_field", msg);
}

/* The fields a hook's body may have, by job kind (NULL-terminated). */
static const char *const *
app_known_fields(const char *kind)
{
    static const char *const stock[] = {"dry_run", NULL};
    static const char *const reservation[] = {"id", "number", "event", NULL};
    static const char *const reconcile[] = {"days", NULL};

    if (strcmp(kind, "stock-check") == 0)
        return stock;
    if (strcmp(kind, "reservation") == 0)
        return reservation;
    return reconcile;
}

/* 0 when every top-level field of body is one the hook knows; else res
 * is a 400 naming the first that is not (a typo such as "dryrun" must not
 * run a real check). */
static int
app_unknown_fields(const char *kind, json_object *body, app_response_t *res)
{
    const char *const *known = app_known_fields(kind);

    json_object_object_foreach(body, name, value) {
        char shown[64], list[160] = "", msg[300];
        size_t i;

        (void)value;
        for (i = 0; known[i] && strcmp(known[i], name) != 0; i++)
            ;
        if (known[i])
            continue;
        for (i = 0; known[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"",
                     i ? ", " : "", known[i]);
        app_shown(name, shown, sizeof shown);
        snprintf(msg, sizeof msg, "unknown field \"%s\"; this hook takes %s", shown, list);
        app_error(res, 400, "unknown_field", msg);
        return -1;
    }
    return 0;
}

/* Validates a hook body and builds the job payload from the fields that are
 * known; NULL with res filled when a field is wrong. */
static json_object *
app_payload(const char *kind, json_object *body, app_response_t *res)
{
    json_object *payload;
    json_object *v;
    int bad = 0;

    if (app_unknown_fields(kind, body, res))
        return NULL;
    payload = json_object_new_object();
    if (strcmp(kind, "stock-check") == 0) {
        if (json_object_object_get_ex(body, "dry_run", &v)) {
            if (!json_object_is_type(v, json_type_boolean)) {
                app_error(res, 400, "invalid_field", "\"dry_run\" must be true or false");
                goto bad;
            }
            json_object_object_add(payload, "dry_run",
                                   json_object_new_boolean(json_object_get_boolean(v)));
        }
    } else if (strcmp(kind, "reservation") == 0) {
        const char *id = app_string_field(body, "id", &bad, res);
        const char *number = bad ? NULL : app_string_field(body, "number", &bad, res);
        const char *event = bad ? NULL : app_string_field(body, "event", &bad, res);
        if (bad)
            goto bad;
        if (!id && !number) {
            app_error(res, 400, "missing_field", "\"id\" or \"number\" of the reservation is required");
            goto bad;
        }
        if (id && !app_is_uuid(id)) {
            app_bad_value(res, "id", id,
                          "a TOPdesk reservation id such as 3c2b1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f");
            goto bad;
        }
        if (number && !app_is_number(number)) {
            app_bad_value(res, "number", number, "a reservation number such as R 2406 012");
            goto bad;
        }
        if (event && strcmp(event, "created") && strcmp(event, "changed") &&
            strcmp(event, "cancelled")) {
            app_error(res, 400, "invalid_field",
                      "\"event\" must be \"created\", \"changed\" or \"cancelled\"");
            goto bad;
        }
        if (id)
            json_object_object_add(payload, "id", json_object_new_string(id));
        if (number)
            json_object_object_add(payload, "number", json_object_new_string(number));
        if (event)
            json_object_object_add(payload, "event", json_object_new_string(event));
    } else if (strcmp(kind, "reconcile") == 0) {
        if (json_object_object_get_ex(body, "days", &v)) {
            int64_t days = json_object_get_int64(v);
            if (!json_object_is_type(v, json_type_int) || days < 1 || days > 366) {
                app_error(res, 400, "invalid_field", "\"days\" must be a whole number from 1 to 366");
                goto bad;
            }
            json_object_object_add(payload, "days", json_object_new_int64(days));
        }
    }
    return payload;
bad:
    json_object_put(payload);
    return NULL;
}

static int
app_idem_key_ok(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > APP_IDEM_KEY_MAX)
        return 0;
    for (; *key; key++)
        if ((unsigned char)*key < 0x21 || (unsigned char)*key > 0x7e)
            return 0;
    return 1;
}

/* A hook's job payload from its request, or NULL with res filled. */
static json_object *
app_hook_payload(app_t *app, const app_route_t *r, const app_request_t *req,
                 app_response_t *res)
{
    json_object *body, *payload;

    if (req->idempotency_key && !app_idem_key_ok(req->idempotency_key)) {
        app_error(res, 400, "invalid_header",
                  "Idempotency-Key must be 1 to 200 printable characters");
        return NULL;
    }
    body = app_parse_body(req, res);
    if (!body)
        return NULL;
    payload = app_payload(r->kind, body, res);
    json_object_put(body);
    if (!payload)
        return NULL;
    if (!app->queue) {
        json_object_put(payload);
        app_error(res, 503, "queue_unavailable", "the job queue cannot be written");
        return NULL;
    }
    return payload;
}

/* A hook's answer once its job is queued (or is not). */
void
app_hook_answer(app_response_t *res, int rc, const char *id, int duplicate)
{
    json_object *answer;

    if (rc == QUEUE_EFULL) {
        app_header(res, "Retry-After: 30");
        app_error(res, 429, "queue_full", "too many jobs are waiting; try again later");
        return;
    }
    if (rc != QUEUE_OK) {
        app_error(res, 503, "queue_unavailable", "the job queue cannot be written");
        return;
    }
    answer = json_object_new_object();
    json_object_object_add(answer, "job", json_object_new_string(id));
    json_object_object_add(answer, "status", json_object_new_string("queued"));
    res->status = 202;
    buf_puts(&res->body, json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN));
    buf_puts(&res->body, "\n");
    json_object_put(answer);
    if (duplicate)
        log_info("idempotency key seen before: answering with job %s", id);
}

static void
app_hook(app_t *app, const app_route_t *r, const app_request_t *req, app_response_t *res)
{
    json_object *payload = app_hook_payload(app, r, req, res);
    char id[QUEUE_ID_MAX];
    int duplicate = 0, rc;

    if (!payload)
        return;
    rc = queue_enqueue(app->queue, r->kind, payload, req->idempotency_key, id, &duplicate);
    json_object_put(payload);
    app_hook_answer(res, rc, id, duplicate);
}

/* What a hook's answer waits for in app_handle_async(). */
typedef struct {
    app_response_t *res;
    app_done_fn done;
    void *arg;
} app_later_t;

static void
app_hook_queued(int rc, const char *id, int duplicate, void *arg)
{
    app_later_t *l = arg;

    app_hook_answer(l->res, rc, id, duplicate);
    l->done(l->res, l->arg);
    free(l);
}

static void
app_job(app_t *app, const app_route_t *r, const app_request_t *req, app_response_t *res)
{
    const char *id = req->path + strlen(r->path);
    job_t *job = NULL;
    json_object *obj;

    if (!app->queue) {
        app_error(res, 503, "queue_unavailable", "the job queue cannot be read");
        return;
    }
    if (queue_get(app->queue, id, &job) != QUEUE_OK) {
        app_error(res, 404, "job_not_found", "no such job");
        return;
    }
    obj = job_to_json(job);
    res->status = 200;
    buf_puts(&res->body, json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    buf_puts(&res->body, "\n");
    json_object_put(obj);
    job_free(job);
}

static void
app_healthz(app_t *app, const app_route_t *r, const app_request_t *req, app_response_t *res)
{
    (void)r;
    (void)req;
    if (!app->queue || !queue_writable(app->queue)) {
        app_error(res, 503, "queue_unavailable", "the job queue is not writable");
        return;
    }
    res->status = 200;
    res->content_type = "text/plain; charset=utf-8";
    buf_puts(&res->body, "ok\n");
}

static void
app_metrics(app_t *app, const app_route_t *r, const app_request_t *req, app_response_t *res)
{
    (void)r;
    (void)req;
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metrics_render(&res->body, app->queue ? queue_depth(app->queue) : 0,
                   app->queue ? queue_dead_count(app->queue) : 0);
}

static void
app_graph(app_t *app, const app_route_t *r, const app_request_t *req, app_response_t *res)
{
    (void)r;
    app_graph_notify(app, req, res);
}

static void
app_ews(app_t *app, const app_route_t *r, const app_request_t *req, app_response_t *res)
{
    (void)r;
    app_ews_push(app, req, res, req->path + strlen(r->path));
}

void
app_handle(app_t *app, const app_request_t *req, app_response_t *res)
{
    const app_route_t *r = app_find(req->path);

    r->handle(app, r, req, res);
}

void
app_serve(app_t *app, const app_request_t *req, app_response_t *res)
{
    if (app_precheck(app, req, (long long)req->body_len, res) == 0)
        app_handle(app, req, res);
}

void
app_handle_async(app_t *app, const app_request_t *req, app_response_t *res, app_done_fn done,
                 void *arg)
{
    const app_route_t *r = app_find(req->path);
    json_object *payload;
    app_later_t *l;

    if (!r->kind) {
        app_handle(app, req, res);
        done(res, arg);
        return;
    }
    payload = app_hook_payload(app, r, req, res);
    if (!payload) {
        done(res, arg);
        return;
    }
    l = xmalloc(sizeof *l);
    *l = (app_later_t){res, done, arg};
    queue_enqueue_async(app->queue, r->kind, payload, req->idempotency_key, app_hook_queued, l);
    json_object_put(payload);
}
