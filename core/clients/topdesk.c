#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/clients/topdesk.h"
#include "core/clients/transport.h"
#include "core/util/buf.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/xalloc.h"

#define TD_MAX_BODY (32u * 1024 * 1024)  /* a response larger than this fails */
#define TD_JSON_DEPTH 64
#define TD_ATTEMPTS 4                     /* the first try and three retries */
#define TD_BACKOFF_MS 250L                /* doubled on each retry */
#define TD_RETRY_AFTER_MAX_MS 30000L      /* longer hints go back to the job queue */
#define TD_CONNECT_TIMEOUT_MS 10000L
#define TD_MSG_MAX 300                    /* bytes of TOPdesk's own error text kept */
#define TD_PATH_MAX_SHOWN 160             /* longer paths are shown without query */

typedef struct td_req {
    struct td_req *next;
    char *path;
    char *accept;
    char *method;               /* NULL: GET */
    char *payload;              /* the JSON body of a PATCH, POST or PUT */
    topdesk_done_fn fn;
    void *arg;
    struct curl_slist *headers;
    CURL *easy;                 /* while in flight */
    transport_resp_t resp;      /* this attempt's answer */
    int attempts;               /* transfers started so far */
    long retry_after_ms;        /* the last Retry-After seen, -1 when none */
    long long due_ms;           /* when a delayed request may start again */
} td_req_t;

typedef struct {
    td_req_t *head;
    td_req_t *tail;
} td_list_t;

struct topdesk {
    const config_t *cfg;
    CURLM *multi;
    CURL **idle;                /* easy handles kept for the next request */
    size_t nidle;
    size_t max_parallel;
    td_list_t pending;          /* FIFO of submitted requests */
    td_list_t delayed;          /* waiting for their backoff to pass */
    td_list_t flight;           /* transfers in the multi handle */
    size_t nflight;
    unsigned long requests;
    int running;                /* inside topdesk_run() */
    int fail_status;            /* HTTP status of the failure that ended a run */
};

/* --- small helpers ------------------------------------------------------- */

static void
td_list_push(td_list_t *l, td_req_t *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static td_req_t *
td_list_pop(td_list_t *l)
{
    td_req_t *r = l->head;

    if (r) {
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        r->next = NULL;
    }
    return r;
}

static void
td_list_remove(td_list_t *l, td_req_t *r)
{
    td_req_t *p = NULL, *c;

    for (c = l->head; c && c != r; c = c->next)
        p = c;
    if (!c)
        return;
    if (p)
        p->next = c->next;
    else
        l->head = c->next;
    if (l->tail == c)
        l->tail = p;
    c->next = NULL;
}

static void
td_req_free(td_req_t *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->accept);
    free(r->method);
    free(r->payload);
    curl_slist_free_all(r->headers);
    transport_resp_free(&r->resp);
    free(r);
}

static const char *
td_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return NULL;
    }
}

/* "503 Service Unavailable" into out. */
static void
td_status_text(int status, char *out, size_t n)
{
    const char *reason = td_reason(status);

    if (reason)
        snprintf(out, n, "%d %s", status, reason);
    else
        snprintf(out, n, "HTTP status %d", status);
}

/* The path as shown in messages: whole when short, else without its query. */
static char *
td_shown_path(const char *path)
{
    const char *q = strchr(path, '?');

    if (strlen(path) <= TD_PATH_MAX_SHOWN || !q)
        return xstrdup(path);
    return xasprintf("%.*s?...", (int)(q - path), path);
}

/* Drops a UTF-8 sequence left incomplete at the end of out (past start). */
static void
td_utf8_trim(buf_t *out, size_t start)
{
    size_t i = out->len, need;
    unsigned char lead;

    while (i > start && ((unsigned char)out->data[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == start)
        return;
    if (i == out->len) {
        if ((unsigned char)out->data[i - 1] >= 0xc0)
            out->data[--out->len] = '\0';
        return;
    }
    lead = (unsigned char)out->data[i - 1];
    need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (out->len - (i - 1) < need) {
        out->len = i - 1;
        out->data[out->len] = '\0';
    }
}

/* Appends text to out with control characters turned into spaces, runs of
 * spaces collapsed, and the total kept under TD_MSG_MAX bytes without
 * cutting a UTF-8 sequence. */
static void
td_clean_append(buf_t *out, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t start = out->len;

    for (; *s; s++) {
        unsigned char c = *s;

        if (c < 0x20 || c == 0x7f)
            c = ' ';
        if (c == ' ' && (out->len == 0 || out->data[out->len - 1] == ' '))
            continue;
        if (out->len - start >= TD_MSG_MAX || buf_append(out, &c, 1) != BUF_OK) {
            td_utf8_trim(out, start);
            buf_puts(out, "...");
            return;
        }
    }
    while (out->len > start && out->data[out->len - 1] == ' ')
        out->data[--out->len] = '\0';
}

static const char *
td_get_string(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The text of one entry of an error list, in any of TOPdesk's shapes. */
static void
td_error_entry(buf_t *out, json_object *e)
{
    const char *msg = td_get_string(e, "errorMessage");
    const char *field;

    if (!msg)
        msg = td_get_string(e, "detail");
    if (!msg)
        msg = td_get_string(e, "message");
    if (!msg)
        msg = td_get_string(e, "errorCode");
    if (!msg)
        return;
    field = td_get_string(e, "fieldTitle");
    if (!field)
        field = td_get_string(e, "fieldName");
    if (out->len)
        buf_puts(out, "; ");
    if (field && *field) {
        buf_puts(out, field);
        buf_puts(out, ": ");
    }
    buf_puts(out, msg);
}

/* TOPdesk's own error text from a response body; allocated, NULL when the
 * body says nothing usable. */
static char *
td_error_text(const buf_t *body)
{
    json_tokener *tok;
    json_object *root = NULL, *list = NULL;
    buf_t raw, out;
    const char *p;
    char *res = NULL;
    size_t i, n;

    if (!body->len)
        return NULL;
    buf_init(&raw, 16 * 1024);
    buf_init(&out, TD_MSG_MAX + 16);
    tok = json_tokener_new_ex(TD_JSON_DEPTH);
    if (tok && body->len <= INT_MAX)
        root = json_tokener_parse_ex(tok, body->data, (int)body->len);
    if (tok)
        json_tokener_free(tok);

    if (!root) {
        /* not JSON: keep plain text, skip HTML pages */
        for (p = body->data; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++)
            ;
        if (*p && *p != '<' && *p != '{' && *p != '[')
            buf_append(&raw, p, strnlen(p, TD_MSG_MAX + 8));
        goto out;
    }
    if (json_object_is_type(root, json_type_array))
        list = root;
    else if (json_object_is_type(root, json_type_object) &&
             json_object_object_get_ex(root, "errors", &list) &&
             !json_object_is_type(list, json_type_array))
        list = NULL;
    if (list) {
        n = json_object_array_length(list);
        for (i = 0; i < n && i < 10 && raw.len < TD_MSG_MAX; i++)
            td_error_entry(&raw, json_object_array_get_idx(list, i));
    } else if (json_object_is_type(root, json_type_object)) {
        td_error_entry(&raw, root);
    }
out:
    if (raw.len) {
        td_clean_append(&out, buf_str(&raw));
        if (out.len)
            res = buf_steal(&out);
    }
    if (root)
        json_object_put(root);
    buf_free(&raw);
    buf_free(&out);
    return res;
}

/* "TOPdesk METHOD <path>: <what> (<TOPdesk's text>)"; allocated. */
static char *
td_message(const td_req_t *r, const char *what, const char *detail)
{
    char *path = td_shown_path(r->path);
    char *msg;

    if (detail && *detail)
        msg = xasprintf("TOPdesk %s %s: %s (%s)", r->method ? r->method : "GET", path, what, detail);
    else
        msg = xasprintf("TOPdesk %s %s: %s", r->method ? r->method : "GET", path, what);
    free(path);
    return msg;
}

/* --- the client ---------------------------------------------------------- */

topdesk_t *
topdesk_new(const config_t *cfg)
{
    topdesk_t *td = xcalloc(1, sizeof *td);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    td->cfg = cfg;
    td->max_parallel = cfg->topdesk.max_parallel > 0 ? (size_t)cfg->topdesk.max_parallel : 1;
    td->idle = xcalloc(td->max_parallel, sizeof *td->idle);
    td->multi = curl_multi_init();
    if (!td->multi)
        xalloc_die("curl_multi_init");
    curl_multi_setopt(td->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)td->max_parallel);
    curl_multi_setopt(td->multi, CURLMOPT_MAXCONNECTS, (long)td->max_parallel);
    return td;
}

/* A new easy handle with the options every request shares. */
static CURL *
td_easy_new(topdesk_t *td)
{
    const config_t *cfg = td->cfg;
    CURL *e = curl_easy_init();
    long timeout = cfg->topdesk.timeout_ms > 0 ? cfg->topdesk.timeout_ms : 30000;

    if (!e)
        return NULL;
    transport_setup(e, "http,https", TD_CONNECT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, cfg->topdesk.username ? cfg->topdesk.username : "");
    curl_easy_setopt(e, CURLOPT_PASSWORD,
                     cfg->topdesk.application_password ? cfg->topdesk.application_password : "");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    return e;
}

static void
td_easy_release(topdesk_t *td, CURL *e)
{
    if (td->nidle < td->max_parallel)
        td->idle[td->nidle++] = e;
    else
        curl_easy_cleanup(e);
}

/* Starts one transfer; 0 or TOPDESK_EFAIL. */
static int
td_start(topdesk_t *td, td_req_t *r, char **errstr)
{
    CURL *e = td->nidle ? td->idle[--td->nidle] : td_easy_new(td);
    char *url;
    CURLMcode mc;

    if (!e) {
        *errstr = td_message(r, "cannot create a curl handle", NULL);
        return TOPDESK_EFAIL;
    }
    url = xasprintf("%s%s", td->cfg->topdesk.url ? td->cfg->topdesk.url : "", r->path);
    transport_resp_free(&r->resp);
    transport_resp_init(&r->resp, TD_MAX_BODY);
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    /* Handles are reused: set the method every time. */
    if (r->method) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->payload));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->payload);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    transport_bind(e, &r->resp);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    mc = curl_multi_add_handle(td->multi, e);
    if (mc != CURLM_OK) {
        td_easy_release(td, e);
        *errstr = td_message(r, curl_multi_strerror(mc), NULL);
        return TOPDESK_EFAIL;
    }
    r->easy = e;
    r->attempts++;
    td->requests++;
    td_list_push(&td->flight, r);
    td->nflight++;
    return TOPDESK_OK;
}

/* Takes r out of the multi handle and keeps its easy handle. */
static void
td_detach(topdesk_t *td, td_req_t *r)
{
    if (!r->easy)
        return;
    curl_multi_remove_handle(td->multi, r->easy);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, NULL);
    td_easy_release(td, r->easy);
    r->easy = NULL;
    td_list_remove(&td->flight, r);
    td->nflight--;
}

/* Drops every request that is queued, delayed or in flight. */
static void
td_drop_all(topdesk_t *td)
{
    td_req_t *r;

    while (td->flight.head) {
        r = td->flight.head;
        td_detach(td, r);
        td_req_free(r);
    }
    while ((r = td_list_pop(&td->pending)))
        td_req_free(r);
    while ((r = td_list_pop(&td->delayed)))
        td_req_free(r);
}

void
topdesk_free(topdesk_t *td)
{
    size_t i;

    if (!td)
        return;
    td_drop_all(td);
    for (i = 0; i < td->nidle; i++)
        curl_easy_cleanup(td->idle[i]);
    free(td->idle);
    curl_multi_cleanup(td->multi);
    free(td);
    curl_global_cleanup();
}

void
topdesk_submit(topdesk_t *td, const char *path, const char *accept, topdesk_done_fn fn,
               void *arg)
{
    td_req_t *r = xcalloc(1, sizeof *r);
    char *h;

    r->path = xstrdup(path);
    r->accept = xstrdup(accept ? accept : TOPDESK_ACCEPT_JSON);
    r->fn = fn;
    r->arg = arg;
    r->retry_after_ms = -1;
    transport_resp_init(&r->resp, TD_MAX_BODY);
    h = xasprintf("Accept: %s", r->accept);
    r->headers = transport_header(NULL, h);
    free(h);
    td_list_push(&td->pending, r);
}

/* Hands a 2xx response to the request's callback. */
static int
td_deliver(topdesk_t *td, td_req_t *r, int status, char **errstr)
{
    topdesk_response_t res = {.status = status, .body = NULL, .path = r->path};
    json_tokener *tok = NULL;
    enum json_tokener_error jerr;
    char what[160];
    int rc = TOPDESK_OK;
    size_t used;

    if (status != 204) {
        tok = json_tokener_new_ex(TD_JSON_DEPTH);
        if (!tok) {
            *errstr = td_message(r, "out of memory parsing the response", NULL);
            return TOPDESK_EFAIL;
        }
        res.body = json_tokener_parse_ex(tok, buf_str(&r->resp.body), (int)r->resp.body.len);
        jerr = json_tokener_get_error(tok);
#if JSON_C_VERSION_NUM >= ((0 << 16) | (15 << 8))
        used = json_tokener_get_parse_end(tok);
#else
        used = (size_t)tok->char_offset;
#endif
        while (res.body && used < r->resp.body.len && strchr(" \t\r\n", r->resp.body.data[used]))
            used++;
        if (!res.body || jerr != json_tokener_success || used < r->resp.body.len) {
            char w[200];

            td_status_text(status, what, sizeof what);
            snprintf(w, sizeof w, "%s with a body that is not JSON", what);
            *errstr = td_message(r, w, r->resp.body.len ? json_tokener_error_desc(jerr) : "empty body");
            if (res.body)
                json_object_put(res.body);
            json_tokener_free(tok);
            td->fail_status = status;
            return TOPDESK_EFAIL;
        }
        json_tokener_free(tok);
    }
    if (r->fn) {
        rc = r->fn(td, &res, r->arg, errstr);
        if (rc != TOPDESK_OK && !*errstr)
            *errstr = td_message(r, "stopped by its caller", NULL);
    }
    if (res.body)
        json_object_put(res.body);
    return rc;
}

/* Decides on a finished transfer: deliver, retry later or fail.  r is owned
 * by the caller afterwards only when it was not queued again (*requeued). */
static int
td_finish(topdesk_t *td, td_req_t *r, CURLcode cc, char **errstr, long *retry_after_ms,
          int *requeued)
{
    transport_resp_t *t = &r->resp;
    long status;
    char what[CURL_ERROR_SIZE + 200];
    char *detail = NULL;
    long delay;
    int rc;

    *requeued = 0;
    transport_done(r->easy, t, cc, PEER_TOPDESK);
    status = t->status;
    td_detach(td, r);

    if (cc == CURLE_WRITE_ERROR && t->toobig) {
        *errstr = td_message(r, "response too large", "over 32 MiB");
        return TOPDESK_EFAIL;
    }
    if (cc != CURLE_OK && transport_curl_verdict(cc, NULL) == TRANSPORT_NEVER) {
        *errstr = td_message(r, transport_error_text(t, what, sizeof what), NULL);
        return TOPDESK_EFAIL;
    }
    if (cc == CURLE_OK && status >= 200 && status < 300)
        return td_deliver(td, r, (int)status, errstr);

    td->fail_status = cc == CURLE_OK ? (int)status : 0;
    if (cc == CURLE_OK)
        td_status_text((int)status, what, sizeof what);
    else
        snprintf(what, sizeof what, "%s", t->curl_err);

    if (cc != CURLE_OK || transport_status_later(status)) {
        long ra = cc == CURLE_OK ? transport_retry_after_ms(t->retry_after) : -1;

        if (ra >= 0)
            r->retry_after_ms = ra;
        if (r->attempts < TD_ATTEMPTS && ra <= TD_RETRY_AFTER_MAX_MS) {
            delay = ra >= 0 ? ra : transport_backoff_ms(TD_BACKOFF_MS, r->attempts, 0);
            log_warn("TOPdesk %s %s: %s; retrying in %ld ms (attempt %d of %d)", r->method ? r->method : "GET", r->path, what,
                     delay, r->attempts + 1, TD_ATTEMPTS);
            r->due_ms = transport_now_ms() + delay;
            td_list_push(&td->delayed, r);
            *requeued = 1;
            return TOPDESK_OK;
        }
        detail = cc == CURLE_OK ? td_error_text(&t->body) : NULL;
        {
            char *w = xasprintf("%s after %d attempt%s", what, r->attempts,
                                r->attempts == 1 ? "" : "s");
            *errstr = td_message(r, w, detail);
            free(w);
        }
        free(detail);
        if (retry_after_ms)
            *retry_after_ms = r->retry_after_ms;
        return TOPDESK_ERETRY;
    }

    detail = td_error_text(&t->body);
    {
        char *w;

        switch (status) {
        case 401:
            w = xasprintf("%s: TOPdesk refused the login: check topdesk.username (%s) and the "
                          "application password", what,
                          td->cfg->topdesk.username ? td->cfg->topdesk.username : "");
            rc = TOPDESK_EAUTH;
            break;
        case 403:
            w = xasprintf("%s: the operator %s lacks a permission for this path", what,
                          td->cfg->topdesk.username ? td->cfg->topdesk.username : "");
            rc = TOPDESK_EPERM;
            break;
        case 404:
            w = xstrdup(what);
            rc = TOPDESK_ENOTFOUND;
            break;
        case 406:
            w = xasprintf("%s: TOPdesk does not serve Accept: %s here", what, r->accept);
            rc = TOPDESK_EFAIL;
            break;
        default:
            w = xstrdup(what);
            rc = TOPDESK_EFAIL;
            break;
        }
        *errstr = td_message(r, w, detail);
        free(w);
    }
    free(detail);
    return rc;
}

/* Moves delayed requests whose time has come to the front of the queue and
 * returns how long until the next one is due (-1: none waiting). */
static long
td_wake_delayed(topdesk_t *td)
{
    long long now = transport_now_ms(), next = -1;
    td_req_t *r = td->delayed.head, *nx;
    td_list_t due = {NULL, NULL};

    for (; r; r = nx) {
        nx = r->next;
        if (r->due_ms <= now) {
            td_list_remove(&td->delayed, r);
            td_list_push(&due, r);
        } else if (next < 0 || r->due_ms - now < next) {
            next = r->due_ms - now;
        }
    }
    /* retries go first, in the order they became due */
    if (due.head) {
        due.tail->next = td->pending.head;
        if (!td->pending.head)
            td->pending.tail = due.tail;
        td->pending.head = due.head;
    }
    return (long)next;
}

int
topdesk_run(topdesk_t *td, char **errstr, long *retry_after_ms)
{
    int rc = TOPDESK_OK, still, msgs, requeued, progressed;
    CURLMsg *msg;
    CURLMcode mc;
    td_req_t *r;
    char *priv;
    long wait;

    *errstr = NULL;
    if (retry_after_ms)
        *retry_after_ms = -1;
    td->fail_status = 0;
    if (td->running) {
        *errstr = xstrdup("TOPdesk: topdesk_run() called from inside a callback");
        return TOPDESK_EFAIL;
    }
    td->running = 1;
    for (;;) {
        wait = td_wake_delayed(td);
        while (td->nflight < td->max_parallel && (r = td_list_pop(&td->pending))) {
            rc = td_start(td, r, errstr);
            if (rc != TOPDESK_OK) {
                td_req_free(r);
                goto out;
            }
        }
        if (!td->nflight && !td->pending.head && !td->delayed.head)
            break;

        mc = curl_multi_perform(td->multi, &still);
        if (mc != CURLM_OK) {
            *errstr = xasprintf("TOPdesk: curl: %s", curl_multi_strerror(mc));
            rc = TOPDESK_EFAIL;
            goto out;
        }
        progressed = 0;
        while ((msg = curl_multi_info_read(td->multi, &msgs))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            if (!priv)
                continue;
            r = (td_req_t *)(void *)priv;
            progressed = 1;
            rc = td_finish(td, r, msg->data.result, errstr, retry_after_ms, &requeued);
            if (!requeued)
                td_req_free(r);
            if (rc != TOPDESK_OK)
                goto out;
        }
        if (progressed)
            continue;    /* start what the callbacks queued before waiting */
        if (td->nflight < td->max_parallel && td->pending.head)
            continue;
        if (wait < 0 || wait > 1000)
            wait = 1000;
        mc = curl_multi_poll(td->multi, NULL, 0, (int)wait, NULL);
        if (mc != CURLM_OK) {
            *errstr = xasprintf("TOPdesk: curl: %s", curl_multi_strerror(mc));
            rc = TOPDESK_EFAIL;
            goto out;
        }
    }
out:
    if (rc != TOPDESK_OK)
        td_drop_all(td);
    td->running = 0;
    return rc;
}

typedef struct {
    json_object *body;
    int status;
} td_get_t;

static int
td_get_done(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    td_get_t *g = arg;

    (void)td;
    (void)errstr;
    g->status = res->status;
    if (g->body)
        json_object_put(g->body);
    g->body = res->body ? json_object_get(res->body) : NULL;
    return TOPDESK_OK;
}

/* One request, run at once: method NULL is a GET; body (may be NULL) is the
 * JSON of any other method.  From inside a callback it runs on a client of
 * its own. */
static int
td_one(topdesk_t *td, const char *method, const char *path, const char *accept,
       json_object *body, json_object **out, int *status, char **errstr, long *retry_after_ms)
{
    td_get_t g = {NULL, 0};
    topdesk_t *run = td->running ? topdesk_new(td->cfg) : td;
    int rc;

    *out = NULL;
    if (status)
        *status = 0;
    topdesk_submit(run, path, accept, td_get_done, &g);
    if (method) {
        td_req_t *r = run->pending.tail;

        r->method = xstrdup(method);
        r->payload = xstrdup(body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)
                                  : "");
        r->headers = transport_header(r->headers, "Content-Type: application/json");
    }
    rc = topdesk_run(run, errstr, retry_after_ms);
    if (status)
        *status = rc == TOPDESK_OK ? g.status : run->fail_status;
    if (run != td) {
        td->requests += run->requests;
        topdesk_free(run);
    }
    if (rc != TOPDESK_OK) {
        json_object_put(g.body);
        return rc;
    }
    *out = g.body;
    return TOPDESK_OK;
}

int
topdesk_get(topdesk_t *td, const char *path, const char *accept, json_object **out,
            int *status, char **errstr, long *retry_after_ms)
{
    return td_one(td, NULL, path, accept, NULL, out, status, errstr, retry_after_ms);
}

int
topdesk_send(topdesk_t *td, const char *method, const char *path, const char *accept,
             json_object *body, json_object **out, int *status, char **errstr,
             long *retry_after_ms)
{
    return td_one(td, method, path, accept, body, out, status, errstr, retry_after_ms);
}

unsigned long
topdesk_requests(const topdesk_t *td)
{
    return td->requests;
}

char *
topdesk_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), i, o = 0;
    char *out = xmalloc(n * 3 + 1);

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

const char *
topdesk_item_id(json_object *obj)
{
    const char *id = td_get_string(obj, "id");

    return id ? id : td_get_string(obj, "unid");
}
