/* One Graph call with its retries: the transfer through core/clients/transport,
 * Graph's error answers and what they are worth, and the JSON helpers. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "core/clients/graph_private.h"
#include "core/clients/transport.h"
#include "core/util/xalloc.h"

/* --- small helpers ------------------------------------------------------- */

/* s percent-encoded for a URL path segment or query value (everything but
 * ALPHA DIGIT - . _ ~); allocated. */
char *
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
char *
graph_clean(const char *s, size_t max)
{
    buf_t b;

    buf_init(&b, max + 1);
    graph_clean_append(&b, s, max);
    return b.len ? buf_steal(&b) : xstrdup("");
}

/* Parses at most GRAPH_JSON_DEPTH levels; a reference to put() or NULL. */
json_object *
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
const char *
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
        } else if (strcmp(method, "DELETE") != 0) {
            /* reauthorize: a POST without a body still says Content-Length: 0 */
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
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

/* --- one call, with retries ---------------------------------------------- */

/* The request headers of a call: the bearer token and Graph's preferences,
 * or the token request's form.  Free with transport_headers_free(). */
static struct curl_slist *
graph_headers(graph_t *g, int token_req, int json_body)
{
    struct curl_slist *h = NULL;

    if (!token_req) {
        char *auth = xasprintf("Authorization: Bearer %s", g->token);

        h = transport_header(h, auth);
        secret_free(auth);
        h = transport_header(h, "Prefer: outlook.timezone=\"UTC\"");
        h = transport_header(h, "Prefer: IdType=\"ImmutableId\"");
        /* else Graph answers the body as HTML, and a text compare fails */
        h = transport_header(h, "Prefer: outlook.body-content-type=\"text\"");
        if (json_body)
            h = transport_header(h, "Content-Type: application/json");
    } else {
        h = transport_header(h, "Content-Type: application/x-www-form-urlencoded");
    }
    h = transport_header(h, "Accept: application/json");
    return transport_header(h, "Expect:");
}

/* Sends method url (absolute) with the JSON body (or NULL) and waits out
 * throttling: 429, 503, 504 and transfer errors are retried up to three
 * times after Retry-After (at most 30 s) or a backoff of 250 ms, 500 ms,
 * 1 s.  A 401 renews the token once.  item > 0: url names one event;
 * item < 0: this is the token request (form body, no bearer, a refusal is
 * EXCHANGE_EAUTH).  shown is the path for messages.  On EXCHANGE_OK,
 * res->json holds the parsed answer (NULL when it had no body). */
int
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
        struct curl_slist *h;

        transport_resp_free(&r);
        free(msg);
        msg = NULL;
        if (!token_req) {
            rc = graph_token(g, NULL, errstr, retry_after_ms);
            if (rc != EXCHANGE_OK)
                goto out;
        }
        h = graph_headers(g, token_req, body != NULL);
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
