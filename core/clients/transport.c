/* The libcurl transport under every client: see core/clients/transport.h. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include "core/clients/transport.h"
#include "core/util/random.h"
#include "core/util/xalloc.h"

#define TRANSPORT_CAP_S (TRANSPORT_RETRY_AFTER_CAP_MS / 1000)

/* --- clock and sleep ------------------------------------------------------ */

long long
transport_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
transport_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
transport_sleep_ms(long ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long
transport_backoff_ms(long base_ms, int attempt, long cap_ms)
{
    long delay = base_ms;
    uint32_t r;

    for (int i = 1; i < attempt && delay < (1L << 40); i++)
        delay *= 2;
    if (cap_ms > 0 && delay > cap_ms)
        delay = cap_ms;
    random_bytes(&r, sizeof r);
    delay = delay * 3 / 4 + (long)(r % (uint32_t)(delay / 2 + 1));
    if (cap_ms > 0 && delay > cap_ms)
        delay = cap_ms;
    return delay;
}

/* --- one transfer --------------------------------------------------------- */

void
transport_resp_init(transport_resp_t *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body, cap);
}

void
transport_resp_free(transport_resp_t *r)
{
    buf_free(&r->body);
}

static size_t
transport_on_body(char *p, size_t size, size_t n, void *userdata)
{
    transport_resp_t *r = userdata;

    if (buf_append(&r->body, p, size * n) != BUF_OK) {
        r->toobig = 1;
        return 0;
    }
    return size * n;
}

static size_t
transport_on_header(char *line, size_t size, size_t n, void *userdata)
{
    transport_resp_t *r = userdata;
    size_t len = size * n;

    if (transport_is_status_line(line, len))
        r->retry_after[0] = '\0';   /* a 100 Continue's or a redirect's must not linger */
    else
        transport_header_match(line, len, "Retry-After", r->retry_after, sizeof r->retry_after);
    return len;
}

void
transport_setup(CURL *e, const char *protocols, long connect_ms, long total_ms)
{
    static char agent[64];

    if (!agent[0])
        snprintf(agent, sizeof agent, "tdhook/%s", PACKAGE_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols);
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                     strncmp(protocols, "smtp", 4) == 0
                         ? (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS)
                         : (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms < total_ms ? connect_ms : total_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, agent);
}

void
transport_bind(CURL *e, transport_resp_t *r)
{
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, transport_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, transport_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
}

void
transport_done(CURL *e, transport_resp_t *r, CURLcode cc, metrics_peer_t peer)
{
    curl_off_t total_us = 0;

    r->cc = cc;
    r->status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK)
        metrics_upstream(peer, (double)total_us / 1e6);
    if (cc != CURLE_OK && !r->curl_err[0])
        snprintf(r->curl_err, sizeof r->curl_err, "%s", curl_easy_strerror(cc));
    /* the buffer is r's: forget it before r goes away */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
}

void
transport_perform(CURL *e, transport_resp_t *r, metrics_peer_t peer)
{
    transport_done(e, r, curl_easy_perform(e), peer);
}

struct curl_slist *
transport_header(struct curl_slist *l, const char *h)
{
    struct curl_slist *n = curl_slist_append(l, h);

    if (!n)
        xalloc_die("curl_slist_append");
    return n;
}

void
transport_headers_free(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        secret_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* --- what failed ---------------------------------------------------------- */

/* The failures that no retry mends: someone has to change something. */
static const struct {
    CURLcode cc;
    const char *why;     /* NULL: libcurl's own text says enough */
} transport_never[] = {
    {CURLE_UNSUPPORTED_PROTOCOL, "the URL's scheme is not one this client speaks"},
    {CURLE_URL_MALFORMAT, "the URL is not valid"},
    {CURLE_NOT_BUILT_IN, "libcurl was built without what this needs"},
    {CURLE_FUNCTION_NOT_FOUND, "libcurl was built without what this needs"},
    {CURLE_BAD_FUNCTION_ARGUMENT, NULL},
    {CURLE_UNKNOWN_OPTION, "libcurl was built without what this needs"},
    {CURLE_OUT_OF_MEMORY, NULL},
    {CURLE_WRITE_ERROR, NULL},
    {CURLE_TOO_MANY_REDIRECTS, NULL},
    {CURLE_LOGIN_DENIED, "the server refused the login"},
    {CURLE_REMOTE_ACCESS_DENIED, "the server refused access"},
    {CURLE_USE_SSL_FAILED, "the server does not offer TLS"},
    {CURLE_PEER_FAILED_VERIFICATION,
     "the server's TLS certificate is not trusted (an unknown CA, an expired certificate or "
     "another host name): not retried"},
    {CURLE_SSL_CACERT_BADFILE, "the CA certificates cannot be read: not retried"},
    {CURLE_SSL_CERTPROBLEM, "the client certificate cannot be used: not retried"},
    {CURLE_SSL_CRL_BADFILE, "the certificate revocation list cannot be read: not retried"},
    {CURLE_SSL_ISSUER_ERROR, "the server's TLS certificate has the wrong issuer: not retried"},
    {CURLE_SSL_PINNEDPUBKEYNOTMATCH, "the server's TLS key is not the pinned one: not retried"},
    {CURLE_SSL_ENGINE_NOTFOUND, NULL},
    {CURLE_SSL_ENGINE_SETFAILED, NULL},
    {CURLE_SSL_CIPHER, "no TLS cipher in common with the server: not retried"},
    {CURLE_SSL_INVALIDCERTSTATUS, "the server's TLS certificate was revoked: not retried"},
};

transport_verdict_t
transport_curl_verdict(CURLcode cc, const char **why)
{
    if (why)
        *why = NULL;
    for (size_t i = 0; i < sizeof transport_never / sizeof transport_never[0]; i++) {
        if (transport_never[i].cc == cc) {
            if (why)
                *why = transport_never[i].why;
            return TRANSPORT_NEVER;
        }
    }
    return TRANSPORT_LATER;
}

int
transport_curl_unsent(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SSL_CONNECT_ERROR;
}

int
transport_status_later(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

const char *
transport_error_text(const transport_resp_t *r, char *out, size_t size)
{
    const char *why;
    const char *curl = r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->cc);

    transport_curl_verdict(r->cc, &why);
    if (!why)
        return curl;
    snprintf(out, size, "%s (%s)", why, curl);
    return out;
}

/* --- headers -------------------------------------------------------------- */

static int
transport_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
transport_is_status_line(const char *line, size_t len)
{
    return len >= 5 && memcmp(line, "HTTP/", 5) == 0;
}

int
transport_header_match(const char *line, size_t len, const char *name, char *value, size_t size)
{
    size_t nlen = strlen(name);

    if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
        return 0;
    line += nlen + 1;
    len -= nlen + 1;
    while (len && transport_is_space(line[0])) {
        line++;
        len--;
    }
    while (len && transport_is_space(line[len - 1]))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(value, line, len);
    value[len] = '\0';
    return 1;
}

long
transport_retry_after_ms(const char *value)
{
    const char *v = value;
    char *end;
    double secs;
    time_t when, now;

    while (transport_is_space(*v))
        v++;
    if (!*v)
        return -1;
    if (*v >= '0' && *v <= '9') {
        errno = 0;
        secs = strtod(v, &end);
        while (transport_is_space(*end))
            end++;
        if (errno || *end || !(secs >= 0))
            return -1;
        if (secs > TRANSPORT_CAP_S)
            return TRANSPORT_RETRY_AFTER_CAP_MS;
        return (long)(secs * 1000.0 + 0.999);
    }
    when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    now = time(NULL);
    if (when <= now)
        return 0;
    if (when - now > TRANSPORT_CAP_S)
        return TRANSPORT_RETRY_AFTER_CAP_MS;
    return (long)(when - now) * 1000;
}

int
transport_host_is_loopback(const char *host)
{
    char tmp[64];
    size_t n = strlen(host);
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= sizeof tmp)
        return 0;
    memcpy(tmp, host, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, tmp, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

int
transport_url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int lo = 0;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host)
        lo = transport_host_is_loopback(host);
    curl_free(host);
    curl_url_cleanup(u);
    return lo;
}
