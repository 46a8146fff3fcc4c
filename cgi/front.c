#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgi/front.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/random.h"
#include "core/util/xalloc.h"

static const char *
front_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* A request id: the caller's X-Request-Id when it is short and plain, else
 * 16 random hex digits. */
static void
front_request_id(const char *given, char *out, size_t size)
{
    unsigned char r[8];

    if (given && *given && strlen(given) < size && strlen(given) <= 64) {
        const char *p;
        for (p = given; *p; p++)
            if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
                  (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                break;
        if (!*p) {
            snprintf(out, size, "%s", given);
            return;
        }
    }
    random_bytes(r, sizeof r);
    for (size_t i = 0; i < sizeof r && 2 * i + 2 < size; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Strict CONTENT_LENGTH: digits only; -1 absent, -2 invalid. */
static long long
front_content_length(const char *s)
{
    char *end;
    long long n;

    if (!s || !*s)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -2;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || *end)
        return -2;
    return n;
}

/* Reads the body into b: exactly len bytes when len >= 0 (fewer is an error,
 * more is an error), else up to the end.  Returns 0 or an HTTP status. */
static int
front_read_body(const front_io_t *io, long long len, size_t max, buf_t *b)
{
    char chunk[16384];

    for (;;) {
        size_t want = sizeof chunk;
        ssize_t n;

        if (len >= 0) {
            if ((long long)b->len >= len)
                break;
            if ((long long)(len - (long long)b->len) < (long long)want)
                want = (size_t)(len - (long long)b->len);
        }
        n = io->read(io->ctx, chunk, want);
        if (n < 0)
            return 400;
        if (n == 0) {
            if (len >= 0)
                return 400;
            break;
        }
        if (buf_append(b, chunk, (size_t)n) || b->len > max)
            return 413;
    }
    if (len >= 0 && io->more && io->more(io->ctx))
        return 400;
    return 0;
}

static void
front_send(const front_io_t *io, const app_response_t *res, const char *rid, int head)
{
    buf_t h;

    buf_init(&h, 8192);
    buf_printf(&h, "Status: %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                   "X-Request-Id: %s\r\n",
               res->status, front_reason(res->status), res->content_type, rid);
    for (int i = 0; i < res->nheaders; i++)
        buf_printf(&h, "%s\r\n", res->headers[i]);
    buf_printf(&h, "Content-Length: %zu\r\n\r\n", res->body.len);
    if (io->write(io->ctx, buf_str(&h), h.len) == 0 && !head && res->body.len)
        io->write(io->ctx, buf_str(&res->body), res->body.len);
    buf_free(&h);
}

/* One request from its first parameter to its answer: front_begin() reads
 * it, the app fills res, front_end() sends and logs it. */
typedef struct {
    front_io_t io;
    app_request_t req;
    app_response_t res;
    buf_t body;
    char rid[72];
    char *path;
    int whole;                    /* the request was read to its end */
    void (*release)(void *ctx, int whole);   /* front_serve(): ends io.ctx */
} front_req_t;

/* Reads the request into f: 0 when the app is to answer it, else res is
 * filled. */
static int
front_begin(app_t *app, front_req_t *f)
{
    const front_io_t *io = &f->io;
    long long clen;
    int status;

    memset(&f->req, 0, sizeof f->req);
    app_response_init(&f->res);
    buf_init(&f->body, app->cfg->max_body + 1);
    front_request_id(io->param(io->ctx, "HTTP_X_REQUEST_ID"), f->rid, sizeof f->rid);
    log_set_request(f->rid);

    f->path = app_route_path(io->param(io->ctx, "PATH_INFO"), io->param(io->ctx, "DOCUMENT_URI"),
                             io->param(io->ctx, "REQUEST_URI"), io->param(io->ctx, "SCRIPT_NAME"));
    f->req.method = io->param(io->ctx, "REQUEST_METHOD");
    f->req.path = f->path;
    f->req.query = io->param(io->ctx, "QUERY_STRING");
    f->req.content_type = io->param(io->ctx, "CONTENT_TYPE");
    f->req.authorization = io->param(io->ctx, "HTTP_AUTHORIZATION");
    f->req.idempotency_key = io->param(io->ctx, "HTTP_IDEMPOTENCY_KEY");
    if (!f->req.idempotency_key)
        f->req.idempotency_key = io->param(io->ctx, "HTTP_WEBHOOK_ID");

    clen = front_content_length(io->param(io->ctx, "CONTENT_LENGTH"));
    if (clen == -2) {
        app_error(&f->res, 400, "bad_request", "CONTENT_LENGTH is not a number");
        return -1;
    }
    if (app_precheck(app, &f->req, clen, &f->res))
        return -1;
    status = front_read_body(io, clen, app->cfg->max_body, &f->body);
    if (status == 413) {
        app_error(&f->res, 413, "body_too_large", "the request body is over hooks.max_body");
        return -1;
    }
    if (status) {
        app_error(&f->res, 400, "bad_request",
                  clen >= 0 ? "the body does not match its Content-Length"
                            : "the body could not be read");
        return -1;
    }
    f->req.body = buf_str(&f->body);
    f->req.body_len = f->body.len;
    return 0;
}

/* Sends f's answer, counts and logs it, and frees what f holds; returns
 * the status. */
static int
front_end(front_req_t *f)
{
    const app_response_t *res = &f->res;
    const char *method = f->req.method, *path = app_route_shown(f->path);
    int status = res->status;

    front_send(&f->io, res, f->rid, method && strcmp(method, "HEAD") == 0);
    metrics_request(app_route_label(f->path), status);
    if (status >= 400)
        log_warn("%s %s %d %.*s", method ? method : "-", path, status,
                 (int)(res->body.len && buf_str(&res->body)[res->body.len - 1] == '\n'
                           ? res->body.len - 1 : res->body.len),
                 buf_str(&res->body));
    else if (app_route_quiet(f->path))
        log_debug("%s %s %d", method, path, status);
    else
        log_info("%s %s %d %.*s", method, path, status,
                 status == 202 ? (int)res->body.len - 1 : 0, buf_str(&res->body));
    log_set_request(NULL);
    free(f->path);
    buf_free(&f->body);
    app_response_free(&f->res);
    return status;
}

int
front_handle(app_t *app, const front_io_t *io)
{
    front_req_t f;

    f.io = *io;
    if (front_begin(app, &f) == 0)
        app_handle(app, &f.req, &f.res);
    return front_end(&f);
}

/* The end of a request of front_serve(), in whichever thread answers it:
 * that thread's own request id is kept for its own log lines. */
static void
front_answered(app_response_t *res, void *arg)
{
    front_req_t *f = arg;
    char own[72];
    const char *was = log_request();

    (void)res;
    snprintf(own, sizeof own, "%s", was ? was : "");
    log_set_request(f->rid);
    front_end(f);
    f->release(f->io.ctx, f->whole);
    free(f);
    log_set_request(own[0] ? own : NULL);
}

void
front_serve(app_t *app, const front_io_t *io, void (*release)(void *ctx, int whole))
{
    front_req_t *f = xmalloc(sizeof *f);

    f->io = *io;
    f->release = release;
    f->whole = front_begin(app, f) == 0;
    if (f->whole)
        app_handle_async(app, &f->req, &f->res, front_answered, f);
    else
        front_answered(&f->res, f);
    log_set_request(NULL);
}

/* --- CGI ---------------------------------------------------------------- */

static const char *
cgi_param(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

static ssize_t
cgi_read(void *ctx, char *buf, size_t n)
{
    ssize_t r;

    (void)ctx;
    do
        r = read(STDIN_FILENO, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

/* A CGI server need not close stdin after the body, so only look. */
static int
cgi_more(void *ctx)
{
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    char c;

    (void)ctx;
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
        return 0;
    return read(STDIN_FILENO, &c, 1) == 1;
}

static int
cgi_write(void *ctx, const char *buf, size_t n)
{
    (void)ctx;
    while (n) {
        ssize_t w = write(STDOUT_FILENO, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int
front_cgi(app_t *app)
{
    front_io_t io = {cgi_param, cgi_read, cgi_more, cgi_write, NULL};

    /* Without CONTENT_LENGTH a CGI request has no body (RFC 3875 4.2). */
    if (!getenv("CONTENT_LENGTH"))
        setenv("CONTENT_LENGTH", "0", 1);
    return front_handle(app, &io);
}
