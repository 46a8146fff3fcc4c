/* The Microsoft Graph backend of core/clients/exchange.h: room calendars in
 * Exchange Online, written directly in the room mailbox (the room is the
 * organizer, no invitations), one libcurl easy handle per open backend.
 *
 * Tokens come from the client credentials flow and are cached until five
 * minutes before they expire, in memory and in {state_dir}/graph-token, so
 * every job runner process of one tdhook shares one token; renewal takes an
 * exclusive flock on {state_dir}/graph-token.lock, so only one process asks
 * the token endpoint at a time.
 *
 * Graph allows 4 concurrent requests per app and mailbox.  This backend
 * never has more than one request in flight per call (each function below
 * is a plain sequence of blocking transfers, no threads), and only the few
 * job runner processes (queue.runners, 2 by default) call it, so the limit
 * is kept without any counting here; a 429 ApplicationThrottled from a
 * busier setup is retried like any other throttling answer. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "core/util/buf.h"
#include "core/clients/exchange.h"
#include "core/clients/transport.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/xalloc.h"

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

/* --- small helpers ------------------------------------------------------- */

/* s percent-encoded for a URL path segment or query value (everything but
 * ALPHA DIGIT - . _ ~); allocated. */
static char *
graph_escape(graph_t *g, const char *s)
{
    char *e = curl_easy_escape(g->easy, s, 0);
    char *r;

    if (!e)
        xalloc_die("curl_easy_escape");
    r = xstrdup(e);
    curl_free(e);
    return r;
}

/* Appends s to b without control characters (line breaks become spaces),
 * at most max bytes, never cutting a UTF-8 sequence in two. */
static void
graph_clean_append(buf_t *b, const char *s, size_t max)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        size_t seq = 1;

        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        else if (c < 0x20 || c == 0x7f)
            continue;
        if (c >= 0xf0)
            seq = 4;
        else if (c >= 0xe0)
            seq = 3;
        else if (c >= 0xc0)
            seq = 2;
        if (n + seq > max)
            break;
        if (c == ' ' && b->len && buf_str(b)[b->len - 1] == ' ')
            continue;  /* "\r\n" becomes one space */
        if (buf_append(b, &c, 1) != BUF_OK)
            break;
        n++;
    }
}

/* s without control characters; allocated. */
static char *
graph_clean(const char *s, size_t max)
{
    buf_t b;

    buf_init(&b, max + 1);
    graph_clean_append(&b, s, max);
    return b.len ? buf_steal(&b) : xstrdup("");
}

/* Parses at most GRAPH_JSON_DEPTH levels; a reference to put() or NULL. */
static json_object *
graph_json_parse(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(GRAPH_JSON_DEPTH);
    json_object *o;

    if (!tok)
        xalloc_die("json_tokener_new_ex");
    o = json_tokener_parse_ex(tok, s, (int)len);
    if (o && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* The string member key of o, or NULL; borrowed. */
static const char *
graph_json_str(json_object *o, const char *key)
{
    json_object *v;

    if (!o || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* --- one transfer -------------------------------------------------------- */

/* One HTTP request on g's handle; the outcome in r (initialised here). */
static void
graph_perform(graph_t *g, const char *method, const char *url, struct curl_slist *headers,
              const char *body, transport_resp_t *r)
{
    CURL *e = g->easy;

    transport_resp_init(r, GRAPH_MAX_BODY);
    curl_easy_reset(e);
    transport_setup(e, "http,https", GRAPH_CONNECT_TIMEOUT_MS, GRAPH_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    transport_bind(e, r);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
    }
    transport_perform(e, r, PEER_GRAPH);
    /* POSTFIELDS is borrowed: forget it before the caller wipes it */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
}

/* Graph's error.code and error.message, or the token endpoint's error and
 * error_description; message cleaned and capped (allocated, may be NULL). */
static void
graph_error_parse(const buf_t *body, char *code, size_t codesz, char **message)
{
    json_object *root = body->len ? graph_json_parse(buf_str(body), body->len) : NULL;
    json_object *err;
    const char *c = NULL, *m = NULL;

    code[0] = '\0';
    *message = NULL;
    if (root && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "error", &err)) {
        if (json_object_is_type(err, json_type_object)) {
            c = graph_json_str(err, "code");
            m = graph_json_str(err, "message");
        } else if (json_object_is_type(err, json_type_string)) {
            c = json_object_get_string(err);
            m = graph_json_str(root, "error_description");
        }
    }
    if (c) {
        char *cc = graph_clean(c, codesz - 1);
        snprintf(code, codesz, "%s", cc);
        free(cc);
    }
    if (m && *m)
        *message = graph_clean(m, GRAPH_MSG_MAX);
    if (root)
        json_object_put(root);
}

/* Throttling and busy answers that the loop below waits out. */
static int
graph_retryable(long status, const char *code)
{
    return status == 429 || status == 503 || status == 504 ||
           strcmp(code, "TooManyRequests") == 0 || strcmp(code, "ApplicationThrottled") == 0 ||
           strcmp(code, "ServiceUnavailable") == 0;
}

/* The EXCHANGE_* code of a final error answer; item: the path names one
 * event, so a plain 404 means that event is gone. */
static int
graph_classify(long status, const char *code, int item)
{
    static const char *const fail[] = {
        "ErrorAccessDenied", "ErrorInvalidUser", "MailboxNotEnabledForRESTAPI",
        "extensionError", "ErrorInvalidRequest", "BadRequest", "ErrorDuplicateTransactionId",
        "ErrorInvalidIdMalformed", NULL};

    if (strcmp(code, "ErrorItemNotFound") == 0 || strcmp(code, "itemNotFound") == 0)
        return EXCHANGE_ENOTFOUND;
    for (size_t i = 0; fail[i]; i++)
        if (strcmp(code, fail[i]) == 0)
            return EXCHANGE_EFAIL;
    if (strcmp(code, "InvalidAuthenticationToken") == 0 || status == 401)
        return EXCHANGE_EAUTH;
    if (status == 404)
        return item ? EXCHANGE_ENOTFOUND : EXCHANGE_EFAIL;
    if (status >= 500 || status == 429 || status == 408)
        return EXCHANGE_ERETRY;
    return EXCHANGE_EFAIL;
}

/* "Graph POST /users/room@x/events: 400 ErrorInvalidRequest: text", with
 * an optional suffix; control characters removed; allocated. */
static char *
graph_message(const char *method, const char *shown, long status, const char *code,
              const char *msg, const char *suffix)
{
    char *raw, *res;

    raw = xasprintf("Graph %s %s: %ld%s%s%s%s%s", method, shown, status, *code ? " " : "", code,
                    msg ? ": " : "", msg ? msg : "", suffix ? suffix : "");
    res = graph_clean(raw, strlen(raw));
    free(raw);
    return res;
}

/* --- the token ----------------------------------------------------------- */

/* Reads the shared token file; 0 with an allocated *token (secret) when it
 * holds a well-formed token, -1 otherwise. */
static int
graph_token_read(graph_t *g, char **token, time_t *expires)
{
    int fd, rc = -1;
    struct stat st;
    char *data = NULL;
    ssize_t got = 0, n;
    json_object *root = NULL, *v;
    const char *t;

    *token = NULL;
    if (!g->token_path)
        return -1;
    fd = open(g->token_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > GRAPH_TOKEN_FILE_MAX)
        goto out;
    data = xmalloc((size_t)st.st_size + 1);
    while (got < st.st_size) {
        n = read(fd, data + got, (size_t)(st.st_size - got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += n;
    }
    data[got] = '\0';
    root = graph_json_parse(data, (size_t)got);
    t = graph_json_str(root, "access_token");
    if (!t || !*t || !json_object_object_get_ex(root, "expires_at", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
        goto out;
    *token = xstrdup(t);
    *expires = (time_t)json_object_get_int64(v);
    rc = 0;
out:
    if (root) {
        /* the token's copy inside json-c: wipe before it is freed */
        if (json_object_object_get_ex(root, "access_token", &v) &&
            json_object_is_type(v, json_type_string))
            secret_wipe((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
        json_object_put(root);
    }
    if (data) {
        secret_wipe(data, (size_t)got);
        free(data);
    }
    close(fd);
    return rc;
}

/* Replaces the token file (written aside with mode 0600, then renamed);
 * a failure is logged once and leaves the cache in memory only. */
static void
graph_token_write(graph_t *g)
{
    char *tmp, *data;
    int fd;
    size_t len, off = 0;
    ssize_t n;

    if (!g->token_path)
        return;
    data = xasprintf("{\"access_token\":\"%s\",\"expires_at\":%lld}\n", g->token,
                     (long long)g->token_expires);
    len = strlen(data);
    tmp = xasprintf("%s.%ld.tmp", g->token_path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 && fchmod(fd, 0600) == 0) {
        while (off < len) {
            n = write(fd, data + off, len - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    if (fd < 0 || close(fd) != 0 || off < len || rename(tmp, g->token_path) != 0) {
        if (!g->warned_cache)
            log_warn("graph: cannot write the token cache %s: %s", g->token_path,
                     strerror(errno));
        g->warned_cache = 1;
        unlink(tmp);
    }
    secret_free(data);
    free(tmp);
}

static int graph_call(graph_t *g, const char *method, const char *url, const char *shown,
                      const char *body, int item, graph_result_t *res, char **errstr,
                      long *retry_after_ms);

/* Asks the token endpoint for a new token and stores it in g. */
static int
graph_token_fetch(graph_t *g, char **errstr, long *retry_after_ms)
{
    const config_t *cfg = g->cfg;
    char *tenant = graph_escape(g, cfg->graph.tenant);
    char *id = graph_escape(g, cfg->graph.client_id);
    char *secret = graph_escape(g, cfg->graph.client_secret);
    char *scope = graph_escape(g, GRAPH_SCOPE);
    char *url = xasprintf("%s/%s/oauth2/v2.0/token", cfg->graph.login_url, tenant);
    char *shown = xasprintf("/%s/oauth2/v2.0/token", cfg->graph.tenant);
    char *body = xasprintf("grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s",
                           id, secret, scope);
    graph_result_t res = {0};
    const char *t;
    json_object *v;
    int64_t ttl;
    int rc;

    rc = graph_call(g, "POST", url, shown, body, -1, &res, errstr, retry_after_ms);
    if (rc != EXCHANGE_OK)
        goto out;
    t = graph_json_str(res.json, "access_token");
    if (!t || !*t || !json_object_object_get_ex(res.json, "expires_in", &v) ||
        (ttl = json_object_get_int64(v)) <= 0) {
        *errstr = xasprintf("Graph POST %s: %ld: no access_token or expires_in in the answer",
                            shown, res.status);
        rc = EXCHANGE_EAUTH;
        goto out;
    }
    secret_free(g->token);
    g->token = xstrdup(t);
    g->token_expires = time(NULL) + (time_t)ttl;
    secret_wipe((void *)t, strlen(t));
out:
    if (res.json)
        json_object_put(res.json);
    secret_free(secret);
    secret_free(body);
    free(tenant);
    free(id);
    free(scope);
    free(url);
    free(shown);
    return rc;
}

static int
graph_token_fresh(time_t expires)
{
    return time(NULL) + GRAPH_TOKEN_MARGIN < expires;
}

/* Makes g->token usable: the one in memory, else the shared file's, else a
 * new one fetched under the lock.  rejected: the token Graph just refused
 * (forced renewal), NULL otherwise. */
static int
graph_token(graph_t *g, const char *rejected, char **errstr, long *retry_after_ms)
{
    char *t = NULL;
    time_t exp = 0;
    int fd = -1, rc;

    if (!rejected && g->token && graph_token_fresh(g->token_expires))
        return EXCHANGE_OK;
    if (!rejected && graph_token_read(g, &t, &exp) == 0 && graph_token_fresh(exp))
        goto adopt;
    secret_free(t);
    t = NULL;
    if (g->lock_path) {
        fd = open(g->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (!g->warned_cache)
                log_warn("graph: cannot open %s: %s; the token is not shared", g->lock_path,
                         strerror(errno));
            g->warned_cache = 1;
        } else {
            while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
                ;
        }
    }
    /* Another process may have renewed while this one waited. */
    if (graph_token_read(g, &t, &exp) == 0 && graph_token_fresh(exp) &&
        (!rejected || strcmp(t, rejected) != 0))
        goto adopt;
    secret_free(t);
    t = NULL;
    rc = graph_token_fetch(g, errstr, retry_after_ms);
    if (rc == EXCHANGE_OK)
        graph_token_write(g);
    if (fd >= 0)
        close(fd);  /* releases the lock */
    return rc;
adopt:
    secret_free(g->token);
    g->token = t;
    g->token_expires = exp;
    if (fd >= 0)
        close(fd);
    return EXCHANGE_OK;
}

/* --- one call, with retries ---------------------------------------------- */

/* Sends method url (absolute) with the JSON body (or NULL) and waits out
 * throttling: 429, 503, 504 and transfer errors are retried up to three
 * times after Retry-After (at most 30 s) or a backoff of 250 ms, 500 ms,
 * 1 s.  A 401 renews the token once.  item > 0: url names one event;
 * item < 0: this is the token request (form body, no bearer, a refusal is
 * EXCHANGE_EAUTH).  shown is the path for messages.  On EXCHANGE_OK,
 * res->json holds the parsed answer (NULL when it had no body). */
static int
graph_call(graph_t *g, const char *method, const char *url, const char *shown, const char *body,
           int item, graph_result_t *res, char **errstr, long *retry_after_ms)
{
    int token_req = item < 0, renewed = 0, attempt = 0, rc = EXCHANGE_OK;
    long hint = -1;
    char *msg = NULL, *rejected = NULL;
    transport_resp_t r;

    memset(res, 0, sizeof *res);
    transport_resp_init(&r, 1);
    for (;;) {
        struct curl_slist *h = NULL;

        transport_resp_free(&r);
        free(msg);
        msg = NULL;
        if (!token_req) {
            char *auth;

            rc = graph_token(g, NULL, errstr, retry_after_ms);
            if (rc != EXCHANGE_OK)
                goto out;
            auth = xasprintf("Authorization: Bearer %s", g->token);
            h = transport_header(h, auth);
            secret_free(auth);
            h = transport_header(h, "Prefer: outlook.timezone=\"UTC\"");
            h = transport_header(h, "Prefer: IdType=\"ImmutableId\"");
            /* else Graph answers the body as HTML, and a text compare fails */
            h = transport_header(h, "Prefer: outlook.body-content-type=\"text\"");
            if (body)
                h = transport_header(h, "Content-Type: application/json");
        } else {
            h = transport_header(h, "Content-Type: application/x-www-form-urlencoded");
        }
        h = transport_header(h, "Accept: application/json");
        h = transport_header(h, "Expect:");
        graph_perform(g, method, url, h, body, &r);
        transport_headers_free(h);

        if (r.cc != CURLE_OK) {
            char why[CURL_ERROR_SIZE + 160];

            if (r.toobig || transport_curl_verdict(r.cc, NULL) == TRANSPORT_NEVER) {
                *errstr = xasprintf("Graph %s %s: %s", method, shown,
                                    r.toobig ? "answer larger than 16 MiB"
                                             : transport_error_text(&r, why, sizeof why));
                rc = EXCHANGE_EFAIL;
                goto out;
            }
            hint = -1;
            msg = xasprintf("Graph %s %s: %s", method, shown, r.curl_err);
            goto retry;
        }
        res->status = r.status;
        if (r.status >= 200 && r.status < 300) {
            if (r.body.len) {
                res->json = graph_json_parse(buf_str(&r.body), r.body.len);
                if (!res->json || !json_object_is_type(res->json, json_type_object)) {
                    *errstr = xasprintf("Graph %s %s: %ld with an unreadable answer", method,
                                        shown, r.status);
                    rc = EXCHANGE_ERETRY;
                    goto out;
                }
            }
            rc = EXCHANGE_OK;
            goto out;
        }
        {
            char *text = NULL;

            graph_error_parse(&r.body, res->code, sizeof res->code, &text);
            if (token_req && text && g->cfg->graph.client_secret[0] &&
                strstr(text, g->cfg->graph.client_secret)) {
                free(text);  /* never echo the secret, whatever the server says */
                text = xstrdup("(description withheld)");
            }
            msg = graph_message(method, shown, r.status, res->code, text, NULL);
            free(text);
        }
        if (r.status == 401 && !token_req && !renewed && g->token) {
            /* expired or revoked early: renew once and try again */
            renewed = 1;
            rejected = xstrdup(g->token);
            rc = graph_token(g, rejected, errstr, retry_after_ms);
            if (rc != EXCHANGE_OK)
                goto out;
            continue;
        }
        if (graph_retryable(r.status, res->code)) {
            hint = transport_retry_after_ms(r.retry_after);
            goto retry;
        }
        rc = graph_classify(r.status, res->code, item > 0);
        if (token_req && r.status >= 400 && r.status < 500)
            rc = EXCHANGE_EAUTH;
        *errstr = msg;
        msg = NULL;
        goto out;
    retry:
        if (hint > GRAPH_RETRY_AFTER_MAX_MS) {
            *errstr = xasprintf("%s (Retry-After %ld ms)", msg, hint);
            *retry_after_ms = hint;
            rc = EXCHANGE_ERETRY;
            goto out;
        }
        if (++attempt >= GRAPH_ATTEMPTS) {
            *errstr = xasprintf("%s (gave up after %d attempts)", msg, attempt);
            *retry_after_ms = hint;
            rc = EXCHANGE_ERETRY;
            goto out;
        }
        transport_sleep_ms(hint >= 0 ? hint : transport_backoff_ms(GRAPH_BACKOFF_MS, attempt, 0));
    }
out:
    if (rc != EXCHANGE_OK && *errstr) {
        char *clean = graph_clean(*errstr, strlen(*errstr));

        free(*errstr);
        *errstr = clean;
    }
    if (rc != EXCHANGE_OK && res->json) {
        json_object_put(res->json);
        res->json = NULL;
    }
    if (token_req && r.body.data)
        secret_wipe(r.body.data, r.body.len);  /* the answer holds the token */
    transport_resp_free(&r);
    free(msg);
    secret_free(rejected);
    return rc;
}

/* --- events -------------------------------------------------------------- */

static json_object *
graph_time_json(time_t t)
{
    json_object *o = json_object_new_object();
    char buf[32];

    exchange_format_time(t, buf, sizeof buf);
    json_object_object_add(o, "dateTime", json_object_new_string(buf));
    json_object_object_add(o, "timeZone", json_object_new_string("UTC"));
    return o;
}

/* The JSON of a create (all fields) or a PATCH (times, subject, body);
 * allocated. */
static char *
graph_booking_json(const char *mailbox, const exchange_booking_t *b, int create)
{
    json_object *o = json_object_new_object(), *body = json_object_new_object();
    char *s;

    json_object_object_add(o, "subject", json_object_new_string(b->subject ? b->subject : ""));
    json_object_object_add(body, "contentType", json_object_new_string("Text"));
    json_object_object_add(body, "content", json_object_new_string(b->body ? b->body : ""));
    json_object_object_add(o, "body", body);
    json_object_object_add(o, "start", graph_time_json(b->start));
    json_object_object_add(o, "end", graph_time_json(b->end));
    if (create) {
        json_object *loc = json_object_new_object(), *props = json_object_new_array();
        json_object *prop = json_object_new_object();

        json_object_object_add(loc, "displayName",
                               json_object_new_string(b->room_name ? b->room_name : mailbox));
        json_object_object_add(loc, "locationEmailAddress", json_object_new_string(mailbox));
        json_object_object_add(o, "location", loc);
        json_object_object_add(o, "showAs", json_object_new_string("busy"));
        json_object_object_add(o, "isReminderOn", json_object_new_boolean(0));
        if (b->transaction_id && *b->transaction_id)
            json_object_object_add(o, "transactionId",
                                   json_object_new_string(b->transaction_id));
        json_object_object_add(prop, "id", json_object_new_string(GRAPH_PROPERTY_ID));
        json_object_object_add(prop, "value", json_object_new_string(b->reservation_id));
        json_object_array_add(props, prop);
        json_object_object_add(o, "singleValueExtendedProperties", props);
    }
    s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* One of start/end; -1 when missing or unreadable. */
static time_t
graph_event_time(graph_t *g, json_object *ev, const char *key)
{
    json_object *o;
    const char *dt, *tz;

    if (!json_object_object_get_ex(ev, key, &o) || !(dt = graph_json_str(o, "dateTime")))
        return -1;
    tz = graph_json_str(o, "timeZone");
    if (tz && strcasecmp(tz, "UTC") != 0 && !g->warned_tz) {
        /* Prefer: outlook.timezone="UTC" should make this impossible */
        char *clean = graph_clean(tz, 64);
        log_warn("graph: an event came back in time zone %s, not UTC; read as UTC", clean);
        free(clean);
        g->warned_tz = 1;
    }
    return exchange_parse_time(dt);
}

/* Fills ev from a Graph event; -1 (ev left empty) when it has no id or no
 * readable times. */
static int
graph_event_parse(graph_t *g, json_object *o, exchange_event_t *ev)
{
    json_object *v, *props;
    const char *id = graph_json_str(o, "id"), *s;
    time_t start, end;

    memset(ev, 0, sizeof *ev);
    if (!id || !*id)
        return -1;
    start = graph_event_time(g, o, "start");
    end = graph_event_time(g, o, "end");
    if (start == (time_t)-1 || end == (time_t)-1)
        return -1;
    ev->id = xstrdup(id);
    ev->start = start;
    ev->end = end;
    if ((s = graph_json_str(o, "subject")))
        ev->subject = xstrdup(s);
    if (json_object_object_get_ex(o, "body", &v) && (s = graph_json_str(v, "content")))
        ev->body = xstrdup(s);
    if (json_object_object_get_ex(o, "isCancelled", &v))
        ev->cancelled = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "singleValueExtendedProperties", &props) &&
        json_object_is_type(props, json_type_array)) {
        size_t n = json_object_array_length(props);

        for (size_t i = 0; i < n && !ev->reservation_id; i++) {
            json_object *p = json_object_array_get_idx(props, i);
            const char *pid = graph_json_str(p, "id"), *val = graph_json_str(p, "value");

            if (pid && val && strcasecmp(pid, GRAPH_PROPERTY_ID) == 0)
                ev->reservation_id = xstrdup(val);
        }
    }
    return 0;
}

/* The parsed answer as one event; allocated into *out. */
static int
graph_event_from(graph_t *g, json_object *json, const char *method, const char *shown,
                 exchange_event_t **out, char **errstr)
{
    exchange_event_t *ev = xcalloc(1, sizeof *ev);

    if (!json || graph_event_parse(g, json, ev) != 0) {
        free(ev);
        *errstr = xasprintf("Graph %s %s: the answer is not a readable event", method, shown);
        return EXCHANGE_EFAIL;
    }
    *out = ev;
    return EXCHANGE_OK;
}

/* "$expand=..." for the property, URL-encoded; allocated. */
static char *
graph_expand(graph_t *g)
{
    char *esc = graph_escape(g, "singleValueExtendedProperties($filter=id eq '" GRAPH_PROPERTY_ID
                                "')");
    char *s = xasprintf("$expand=%s", esc);

    free(esc);
    return s;
}

/* The URL of /users/{mailbox}{rest} (rest already encoded); allocated. */
static char *
graph_url(graph_t *g, const char *mailbox, const char *rest)
{
    char *m = graph_escape(g, mailbox);
    char *url = xasprintf("%s/users/%s%s", g->cfg->graph.graph_url, m, rest);

    free(m);
    return url;
}

static int
graph_bad_args(const char *what, char **errstr)
{
    *errstr = xasprintf("Graph: %s is missing", what);
    return EXCHANGE_EFAIL;
}

/* --- the operations ------------------------------------------------------ */

static void *
graph_open(const config_t *cfg, char **errstr)
{
    graph_t *g;

    if (!cfg->graph.tenant || !*cfg->graph.tenant || !cfg->graph.client_id ||
        !*cfg->graph.client_id || !cfg->graph.client_secret || !cfg->graph.login_url ||
        !cfg->graph.graph_url) {
        *errstr = xstrdup("graph: tenant, client_id and client_secret are required");
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g = xcalloc(1, sizeof *g);
    g->cfg = cfg;
    g->easy = curl_easy_init();
    if (!g->easy) {
        free(g);
        curl_global_cleanup();
        *errstr = xstrdup("graph: curl_easy_init failed");
        return NULL;
    }
    if (cfg->state_dir && *cfg->state_dir) {
        g->token_path = xasprintf("%s/graph-token", cfg->state_dir);
        g->lock_path = xasprintf("%s/graph-token.lock", cfg->state_dir);
    }
    return g;
}

static void
graph_close(void *impl)
{
    graph_t *g = impl;

    if (!g)
        return;
    curl_easy_cleanup(g->easy);
    secret_free(g->token);
    free(g->token_path);
    free(g->lock_path);
    free(g);
    curl_global_cleanup();
}

static int
graph_get(void *impl, const char *mailbox, const char *id, exchange_event_t **out, char **errstr,
          long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *eid, *expand, *rest, *url, *shown;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!id || !*id)
        return graph_bad_args("the event id", errstr);
    eid = graph_escape(g, id);
    expand = graph_expand(g);
    rest = xasprintf("/events/%s?%s", eid, expand);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/events/%s", mailbox, id);
    rc = graph_call(g, "GET", url, shown, NULL, 1, &res, errstr, retry_after_ms);
    if (rc == EXCHANGE_OK)
        rc = graph_event_from(g, res.json, "GET", shown, out, errstr);
    if (res.json)
        json_object_put(res.json);
    free(eid);
    free(expand);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_find(void *impl, const char *mailbox, const char *reservation_id, exchange_event_t **out,
           char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    buf_t quoted;
    json_object *list;
    char *filter = NULL, *ef = NULL, *expand = NULL, *rest = NULL, *url = NULL, *shown;
    size_t n;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!reservation_id || !*reservation_id)
        return graph_bad_args("the reservation id", errstr);
    /* OData string literal: a single quote is written twice */
    buf_init(&quoted, 2 * strlen(reservation_id) + 1);
    for (const char *p = reservation_id; *p; p++) {
        buf_append(&quoted, p, 1);
        if (*p == '\'')
            buf_append(&quoted, p, 1);
    }
    filter = xasprintf("singleValueExtendedProperties/Any(ep: ep/id eq '" GRAPH_PROPERTY_ID
                       "' and ep/value eq '%s')",
                       buf_str(&quoted));
    ef = graph_escape(g, filter);
    expand = graph_expand(g);
    rest = xasprintf("/events?$filter=%s&%s", ef, expand);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/events", mailbox);
    rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, retry_after_ms);
    if (rc != EXCHANGE_OK)
        goto out;
    if (!res.json || !json_object_object_get_ex(res.json, "value", &list) ||
        !json_object_is_type(list, json_type_array)) {
        *errstr = xasprintf("Graph GET %s: the answer has no event list", shown);
        rc = EXCHANGE_EFAIL;
        goto out;
    }
    n = json_object_array_length(list);
    if (n == 0)
        goto out;
    rc = graph_event_from(g, json_object_array_get_idx(list, 0), "GET", shown, out, errstr);
    if (rc != EXCHANGE_OK)
        goto out;
    if (!(*out)->reservation_id)
        (*out)->reservation_id = xstrdup(reservation_id);
    for (size_t i = 1; i < n; i++) {
        const char *other = graph_json_str(json_object_array_get_idx(list, i), "id");
        char *clean = graph_clean(other ? other : "?", 200);

        log_warn("graph: %s has another appointment for reservation %s: %s (using %s)", mailbox,
                 reservation_id, clean, (*out)->id);
        free(clean);
    }
out:
    if (res.json)
        json_object_put(res.json);
    buf_free(&quoted);
    free(filter);
    free(ef);
    free(expand);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_view(void *impl, const char *mailbox, time_t start, time_t end, exchange_event_t **events,
           size_t *n, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res = {0};
    exchange_event_t *evs = NULL;
    size_t count = 0, alloc = 0, baselen = strlen(g->cfg->graph.graph_url);
    char sbuf[32], ebuf[32], *es, *ee, *expand, *rest, *url, *shown, *zs, *ze;
    int rc = EXCHANGE_OK, page;

    *events = NULL;
    *n = 0;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    exchange_format_time(start, sbuf, sizeof sbuf);
    exchange_format_time(end, ebuf, sizeof ebuf);
    zs = xasprintf("%sZ", sbuf);
    ze = xasprintf("%sZ", ebuf);
    es = graph_escape(g, zs);
    ee = graph_escape(g, ze);
    expand = graph_expand(g);
    rest = xasprintf("/calendarView?startDateTime=%s&endDateTime=%s&$top=%d&%s", es, ee,
                     GRAPH_PAGE_SIZE, expand);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/calendarView", mailbox);
    for (page = 0;; page++) {
        json_object *list, *next;
        size_t len;

        if (page >= GRAPH_MAX_PAGES) {
            *errstr = xasprintf("Graph GET %s: more than %d events between %s and %s", shown,
                                GRAPH_MAX_PAGES * GRAPH_PAGE_SIZE, zs, ze);
            rc = EXCHANGE_EFAIL;
            break;
        }
        rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, retry_after_ms);
        if (rc != EXCHANGE_OK)
            break;
        if (!res.json || !json_object_object_get_ex(res.json, "value", &list) ||
            !json_object_is_type(list, json_type_array)) {
            *errstr = xasprintf("Graph GET %s: the answer has no event list", shown);
            rc = EXCHANGE_EFAIL;
            break;
        }
        len = json_object_array_length(list);
        for (size_t i = 0; i < len; i++) {
            if (count == alloc) {
                alloc = alloc ? 2 * alloc : 16;
                evs = xrealloc(evs, alloc * sizeof *evs);
            }
            if (graph_event_parse(g, json_object_array_get_idx(list, i), &evs[count]) != 0) {
                *errstr = xasprintf("Graph GET %s: event %zu of page %d is not readable", shown,
                                    i + 1, page + 1);
                rc = EXCHANGE_EFAIL;
                break;
            }
            count++;
        }
        if (rc != EXCHANGE_OK)
            break;
        if (!json_object_object_get_ex(res.json, "@odata.nextLink", &next) ||
            json_object_is_type(next, json_type_null))
            break;
        /* follow only links into the configured Graph: the token goes with it */
        if (!json_object_is_type(next, json_type_string) ||
            strncmp(json_object_get_string(next), g->cfg->graph.graph_url, baselen) != 0 ||
            (json_object_get_string(next)[baselen] != '/' &&
             json_object_get_string(next)[baselen] != '?')) {
            char *clean = graph_clean(json_object_get_string(next), 200);

            *errstr = xasprintf("Graph GET %s: @odata.nextLink %s is outside %s", shown, clean,
                                g->cfg->graph.graph_url);
            free(clean);
            rc = EXCHANGE_EFAIL;
            break;
        }
        free(url);
        url = xstrdup(json_object_get_string(next));
        json_object_put(res.json);
        res.json = NULL;
    }
    if (res.json)
        json_object_put(res.json);
    if (rc == EXCHANGE_OK) {
        *events = evs;
        *n = count;
    } else {
        exchange_events_free(evs, count);
    }
    free(zs);
    free(ze);
    free(es);
    free(ee);
    free(expand);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_create(void *impl, const char *mailbox, const exchange_booking_t *b,
             exchange_event_t **out, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *body, *url, *shown;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!b->reservation_id || !*b->reservation_id)
        return graph_bad_args("the reservation id", errstr);
    body = graph_booking_json(mailbox, b, 1);
    url = graph_url(g, mailbox, "/events");
    shown = xasprintf("/users/%s/events", mailbox);
    /* a retried POST is safe: transactionId makes Graph return the first event */
    rc = graph_call(g, "POST", url, shown, body, 0, &res, errstr, retry_after_ms);
    if (rc == EXCHANGE_OK)
        rc = graph_event_from(g, res.json, "POST", shown, out, errstr);
    if (rc == EXCHANGE_OK && !(*out)->reservation_id)
        (*out)->reservation_id = xstrdup(b->reservation_id);  /* Graph does not echo it */
    if (res.json)
        json_object_put(res.json);
    free(body);
    free(url);
    free(shown);
    return rc;
}

static int
graph_update(void *impl, const char *mailbox, const exchange_event_t *old,
             const exchange_booking_t *b, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *body, *eid, *rest, *url, *shown;
    int rc;

    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!old || !old->id || !*old->id)
        return graph_bad_args("the event id", errstr);
    body = graph_booking_json(mailbox, b, 0);
    eid = graph_escape(g, old->id);
    rest = xasprintf("/events/%s", eid);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/events/%s", mailbox, old->id);
    rc = graph_call(g, "PATCH", url, shown, body, 1, &res, errstr, retry_after_ms);
    if (res.json)
        json_object_put(res.json);
    free(body);
    free(eid);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_delete(void *impl, const char *mailbox, const exchange_event_t *ev, char **errstr,
             long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *eid, *rest, *url, *shown;
    int rc;

    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!ev || !ev->id || !*ev->id)
        return graph_bad_args("the event id", errstr);
    eid = graph_escape(g, ev->id);
    rest = xasprintf("/events/%s", eid);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/events/%s", mailbox, ev->id);
    rc = graph_call(g, "DELETE", url, shown, NULL, 1, &res, errstr, retry_after_ms);
    if (rc == EXCHANGE_ENOTFOUND) {
        free(*errstr);  /* gone already: that is what was asked */
        *errstr = NULL;
        rc = EXCHANGE_OK;
    }
    if (res.json)
        json_object_put(res.json);
    free(eid);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_check(void *impl, const char *mailbox, char **errstr)
{
    graph_t *g = impl;
    graph_result_t res = {0};
    char sbuf[32], ebuf[32], *zs, *ze, *es, *ee, *rest, *url = NULL, *shown = NULL, *why;
    time_t now = time(NULL);
    long ra = -1;
    int rc;

    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    /* A cached token proves nothing about the secret in the config: the
     * first check asks the token endpoint itself. */
    if (!g->login_checked) {
        rc = graph_token_fetch(g, errstr, &ra);
        if (rc == EXCHANGE_OK) {
            graph_token_write(g);
            g->login_checked = 1;
        } else if (rc == EXCHANGE_EAUTH || rc == EXCHANGE_EFAIL) {
            why = *errstr;
            *errstr = xasprintf("%s; check graph.tenant, graph.client_id and graph.client_secret "
                                "(the secret's value, not its id, and not expired)", why ? why : "");
            free(why);
            return EXCHANGE_EAUTH;
        } else {
            return rc;
        }
    }
    rc = graph_token(g, NULL, errstr, &ra);
    if (rc != EXCHANGE_OK)
        return rc;
    exchange_format_time(now, sbuf, sizeof sbuf);
    exchange_format_time(now + 3600, ebuf, sizeof ebuf);
    zs = xasprintf("%sZ", sbuf);
    ze = xasprintf("%sZ", ebuf);
    es = graph_escape(g, zs);
    ee = graph_escape(g, ze);
    rest = xasprintf("/calendarView?startDateTime=%s&endDateTime=%s&$top=1", es, ee);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/calendarView", mailbox);
    rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, &ra);
    if (rc == EXCHANGE_EFAIL &&
        (strcmp(res.code, "ErrorInvalidUser") == 0 || res.status == 404)) {
        why = *errstr;
        *errstr = xasprintf("mailbox %s not found in Exchange Online; check the room mapping (%s)",
                            mailbox, why);
        free(why);
    } else if (rc == EXCHANGE_EFAIL &&
               (strcmp(res.code, "ErrorAccessDenied") == 0 || res.status == 403)) {
        why = *errstr;
        *errstr = xasprintf("access to mailbox %s denied: give the app Calendars.ReadWrite "
                            "(application) and put the mailbox in the scope of its application "
                            "access policy or RBAC for Applications management scope (%s)",
                            mailbox, why);
        free(why);
    } else if (rc == EXCHANGE_EFAIL && strcmp(res.code, "MailboxNotEnabledForRESTAPI") == 0) {
        why = *errstr;
        *errstr = xasprintf("mailbox %s is not in Exchange Online (on-premises or inactive): "
                            "use the EWS backend for it (%s)",
                            mailbox, why);
        free(why);
    }
    if (res.json)
        json_object_put(res.json);
    free(zs);
    free(ze);
    free(es);
    free(ee);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

const exchange_ops_t exchange_graph_ops = {
    .name = "graph",
    .open = graph_open,
    .close = graph_close,
    .get = graph_get,
    .find = graph_find,
    .view = graph_view,
    .create = graph_create,
    .update = graph_update,
    .del = graph_delete,
    .check = graph_check,
};
