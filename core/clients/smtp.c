/* SMTP sending with libcurl: see core/clients/smtp.h. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/util/address.h"
#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/clients/transport.h"
#include "core/util/buf.h"
#include "core/util/metrics.h"
#include "core/util/xalloc.h"

#define SMTP_BUF_CAP (((size_t)-1) / 4)
/* RFC 5321: a path is at most 256 octets including the angle brackets. */
#define ADDRESS_MAX 254
#define SMTP_CONNECT_TIMEOUT_MS 15000L
#define SMTP_TOTAL_TIMEOUT_MS 120000L

/* ---- sending ----------------------------------------------------------- */

typedef struct {
    const char *data;
    size_t len;
    size_t off;
} smtp_reader_t;

static size_t
smtp_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    smtp_reader_t *r = userdata;
    size_t room = size * nmemb;
    size_t n = r->len - r->off;

    if (n > room)
        n = room;
    memcpy(ptr, r->data + r->off, n);
    r->off += n;
    return n;
}

/* What the debug callback learns from the SMTP dialogue.  It only keeps the
 * address of each RCPT command we send and the server's replies: never
 * anything else we send (AUTH lines carry the credentials). */
typedef struct {
    int in_rcpt;            /* waiting for the reply to a RCPT */
    int in_quit;            /* after QUIT: the reply tells nothing */
    char rcpt[ADDRESS_MAX + 1];
    buf_t refused;          /* "a@x (550 ...), b@y (...)" */
    size_t nrefused;
    size_t nrefused_temp;   /* of them with a 4xx */
    char last_reply[200];   /* the last final reply, but to RCPT or QUIT */
    int last_code;
} smtp_trace_t;

static void
trace_copy_line(char *dst, size_t dstlen, const char *p, size_t n)
{
    size_t k = 0;

    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    for (size_t i = 0; i < n && k + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)p[i];
        dst[k++] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
    }
    dst[k] = '\0';
}

static void
trace_reply_line(smtp_trace_t *t, const char *p, size_t n)
{
    int code;

    if (n < 3 || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
        p[2] > '9')
        return;
    if (n > 3 && p[3] == '-')
        return;   /* a continuation: the final line decides */
    code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (t->in_quit)
        return;
    if (t->in_rcpt) {
        char reply[sizeof t->last_reply];
        t->in_rcpt = 0;
        trace_copy_line(reply, sizeof reply, p, n);
        if (code >= 400) {
            buf_printf(&t->refused, "%s%s (%s)", t->nrefused ? ", " : "", t->rcpt, reply);
            t->nrefused++;
            if (code < 500)
                t->nrefused_temp++;
        }
        return;
    }
    t->last_code = code;
    trace_copy_line(t->last_reply, sizeof t->last_reply, p, n);
}

static int
smtp_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *userdata)
{
    smtp_trace_t *t = userdata;

    (void)curl;
    if (type == CURLINFO_HEADER_OUT) {
        if (size > 9 && strncasecmp(data, "RCPT TO:<", 9) == 0) {
            const char *end = memchr(data + 9, '>', size - 9);
            size_t n = end ? (size_t)(end - (data + 9)) : 0;
            if (n >= sizeof t->rcpt)
                n = sizeof t->rcpt - 1;
            trace_copy_line(t->rcpt, n + 1, data + 9, n);
            t->in_rcpt = 1;
        } else {
            t->in_rcpt = 0;
            t->in_quit = size >= 4 && strncasecmp(data, "QUIT", 4) == 0;
        }
    } else if (type == CURLINFO_HEADER_IN) {
        size_t off = 0;
        while (off < size) {
            const char *nl = memchr(data + off, '\n', size - off);
            size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
            trace_reply_line(t, data + off, n);
            off += n;
        }
    }
    return 0;
}

/* Replaces every occurrence of secret in the allocated *msg by "***". */
static void
scrub_secret(char **msg, const char *secret)
{
    size_t slen;
    buf_t b;
    const char *p, *hit;

    if (!*msg || !secret || !*secret || !strstr(*msg, secret))
        return;
    slen = strlen(secret);
    buf_init(&b, SMTP_BUF_CAP);
    p = *msg;
    while ((hit = strstr(p, secret)) != NULL) {
        buf_append(&b, p, (size_t)(hit - p));
        buf_puts(&b, "***");
        p = hit + slen;
    }
    buf_puts(&b, p);
    free(*msg);
    *msg = buf_steal(&b);
}

/* One sending: what smtp_send() gathers before and after the transfer. */
typedef struct {
    struct curl_slist *rcpts;
    size_t ngood;
    buf_t bad;              /* the invalid addresses, shown */
    char *host;             /* curl_free() */
    int creds;              /* AUTH with mail.username */
    int forced_tls;         /* starttls: auto made TLS a must for AUTH */
    long use_ssl;
    smtp_trace_t trace;
    char errbuf[CURL_ERROR_SIZE];
} smtp_send_t;

/* The envelope's recipients: the valid addresses of to; the others are
 * named in s->bad.  SMTP_OK, or SMTP_EFAIL with *errstr when none is valid. */
static int
smtp_recipients(smtp_send_t *s, char *const *to, size_t nto, char **errstr)
{
    for (size_t i = 0; i < nto; i++) {
        char *path;

        if (!address_ok(to[i])) {
            char *shown = mime_header_address(to[i]);

            buf_printf(&s->bad, "%s\"%.100s\"", s->bad.len ? ", " : "", shown);
            free(shown);
            continue;
        }
        path = xasprintf("<%s>", to[i]);
        s->rcpts = transport_header(s->rcpts, path);
        free(path);
        s->ngood++;
    }
    if (s->ngood)
        return SMTP_OK;
    *errstr = s->bad.len ? xasprintf("mail: no valid recipient (invalid: %s)", buf_str(&s->bad))
                         : xstrdup("mail: no recipient");
    return SMTP_EFAIL;
}

/* The server's host and whether TLS is used, from mail.smtp_url and
 * mail.starttls.  Credentials never cross a connection without TLS to
 * another host.  With starttls: auto, libcurl's CURLUSESSL_TRY would go on
 * in plain text when the server offers no STARTTLS and then send AUTH, so
 * in that case TLS is required outright: curl stops before AUTH. */
static int
smtp_tls_policy(smtp_send_t *s, const config_t *cfg, char **errstr)
{
    CURLU *url = curl_url();
    char *scheme = NULL;
    int implicit_tls, loopback, rc = SMTP_EFAIL;

    if (!url || curl_url_set(url, CURLUPART_URL, cfg->mail.smtp_url, 0) != CURLUE_OK ||
        curl_url_get(url, CURLUPART_HOST, &s->host, 0) != CURLUE_OK ||
        curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        /* The URL may carry credentials: never quote it. */
        *errstr = xstrdup("mail: mail.smtp_url is not a valid URL");
        goto out;
    }
    implicit_tls = strcasecmp(scheme, "smtps") == 0;
    if (!implicit_tls && strcasecmp(scheme, "smtp") != 0) {
        *errstr = xstrdup("mail: mail.smtp_url must be smtp:// or smtps://");
        goto out;
    }
    s->creds = cfg->mail.username && *cfg->mail.username;
    loopback = transport_host_is_loopback(s->host);
    switch (cfg->mail.starttls) {
    case STARTTLS_REQUIRED:
        s->use_ssl = CURLUSESSL_ALL;
        break;
    case STARTTLS_OFF:
        s->use_ssl = CURLUSESSL_NONE;
        if (s->creds && !loopback && !implicit_tls) {
            *errstr = xasprintf("mail: refusing to send SMTP credentials to %s without TLS "
                                "(mail.starttls is off; use auto, required or smtps://)",
                                s->host);
            goto out;
        }
        break;
    case STARTTLS_AUTO:
    default:
        s->use_ssl = CURLUSESSL_TRY;
        if (s->creds && !loopback && !implicit_tls) {
            s->use_ssl = CURLUSESSL_ALL;
            s->forced_tls = 1;
        }
        break;
    }
    rc = SMTP_OK;
out:
    curl_free(scheme);
    curl_url_cleanup(url);
    return rc;
}

/* The transfer's options: envelope, body, TLS, AUTH, the dialogue trace. */
static void
smtp_setup(CURL *curl, smtp_send_t *s, const config_t *cfg, const char *from_path,
           smtp_reader_t *reader)
{
    transport_setup(curl, "smtp,smtps", SMTP_CONNECT_TIMEOUT_MS, SMTP_TOTAL_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_URL, cfg->mail.smtp_url);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from_path);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, s->rcpts);
    /* The option's first spelling (7.69 to 8.1, Debian 12 has 7.88) had a
     * typo; 8.2 renamed it and kept the old name as an alias. */
#if LIBCURL_VERSION_NUM >= 0x080200
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#elif LIBCURL_VERSION_NUM >= 0x074500
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, smtp_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, reader);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_USE_SSL, s->use_ssl);
    if (s->creds) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->mail.username);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg->mail.password ? cfg->mail.password : "");
    }
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, s->errbuf);
    /* The debug callback sees the dialogue only while verbose is on; it
     * writes nothing anywhere. */
    curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, smtp_debug);
    curl_easy_setopt(curl, CURLOPT_DEBUGDATA, &s->trace);
    curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
}

/* What a finished transfer (rc, the last reply code) is worth, with the
 * message for *errstr. */
static int
smtp_outcome(smtp_send_t *s, CURLcode rc, long code, char **errstr)
{
    const char *why = NULL;
    smtp_trace_t *t = &s->trace;
    int ret;

    if (rc == CURLE_OK) {
        if (t->nrefused || s->bad.len) {
            buf_t m;

            buf_init(&m, SMTP_BUF_CAP);
            if (t->nrefused)
                buf_printf(&m, "refused recipients: %s", buf_str(&t->refused));
            if (s->bad.len)
                buf_printf(&m, "%sinvalid recipients: %s", m.len ? "; " : "", buf_str(&s->bad));
            *errstr = buf_steal(&m);
        }
        return SMTP_OK;
    }
    if (t->nrefused > 0 && t->nrefused == s->ngood) {
        /* Nobody got it, so a retry duplicates nothing: worth it when one
         * of the refusals was temporary. */
        *errstr = xasprintf("smtp %s: all recipients refused: %s", s->host, buf_str(&t->refused));
        return t->nrefused_temp ? SMTP_ERETRY : SMTP_EFAIL;
    }
    if (rc == CURLE_USE_SSL_FAILED) {
        if (s->forced_tls)
            *errstr = xasprintf("smtp %s: the server offers no STARTTLS; refusing to send "
                                "SMTP credentials without TLS to a server not on loopback "
                                "(use smtps:// or enable STARTTLS on the server)", s->host);
        else
            *errstr = xasprintf("smtp %s: the server offers no STARTTLS but mail.starttls "
                                "is required", s->host);
        return SMTP_EFAIL;
    }
    if (code >= 400 && code < 500)
        ret = SMTP_ERETRY;
    else if (code >= 500 && code < 600)
        ret = SMTP_EFAIL;
    else
        ret = transport_curl_verdict(rc, &why) == TRANSPORT_NEVER ? SMTP_EFAIL : SMTP_ERETRY;
    *errstr = xasprintf("smtp %s: %s%s%s%s%s%s%s%s", s->host, why ? why : "", why ? " (" : "",
                        s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc), why ? ")" : "",
                        t->last_reply[0] && code >= 400 ? "; server said: " : "",
                        t->last_reply[0] && code >= 400 ? t->last_reply : "",
                        t->nrefused ? "; refused recipients: " : "",
                        t->nrefused ? buf_str(&t->refused) : "");
    return ret;
}

/* *errstr is allocated on SMTP_ERETRY and SMTP_EFAIL, and on SMTP_OK when
 * some recipients were refused or invalid (it names them); NULL otherwise.
 * It never holds the password or the URL (which may carry credentials).
 * Invalid addresses in to are skipped like refused ones. */
int
smtp_send(const config_t *cfg, char *const *to, size_t nto, const char *message,
          char **errstr)
{
    CURL *curl = NULL;
    char *from_path = NULL, *from_addr = NULL;
    smtp_send_t s;
    smtp_reader_t reader;
    long code = 0;
    CURLcode rc;
    double t0;
    int ret = SMTP_EFAIL;

    *errstr = NULL;
    memset(&s, 0, sizeof s);
    buf_init(&s.trace.refused, 64 * 1024);
    buf_init(&s.bad, 64 * 1024);

    if (!message || !cfg || !cfg->mail.smtp_url) {
        *errstr = xstrdup("mail: no message or no mail.smtp_url");
        goto out;
    }
    if (!address_split(cfg->mail.from, NULL, &from_addr)) {
        *errstr = xstrdup("mail: mail.from is not a valid address");
        goto out;
    }
    ret = smtp_recipients(&s, to, nto, errstr);
    if (ret == SMTP_OK)
        ret = smtp_tls_policy(&s, cfg, errstr);
    if (ret != SMTP_OK)
        goto out;
    curl = curl_easy_init();
    if (!curl) {
        *errstr = xstrdup("mail: curl_easy_init failed");
        ret = SMTP_ERETRY;
        goto out;
    }
    from_path = xasprintf("<%s>", from_addr);
    reader = (smtp_reader_t){message, strlen(message), 0};
    smtp_setup(curl, &s, cfg, from_path, &reader);
    t0 = transport_now();
    rc = curl_easy_perform(curl);
    metrics_upstream(PEER_SMTP, transport_now() - t0);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 0)
        code = s.trace.last_code;
    ret = smtp_outcome(&s, rc, code, errstr);
out:
    if (*errstr && cfg)
        scrub_secret(errstr, cfg->mail.password);
    if (curl)
        curl_easy_cleanup(curl);
    /* The recipient list must outlive the transfer: freed only now. */
    curl_slist_free_all(s.rcpts);
    curl_free(s.host);
    free(from_path);
    free(from_addr);
    buf_free(&s.trace.refused);
    buf_free(&s.bad);
    return ret;
}
