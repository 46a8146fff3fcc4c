/* The one libcurl transport under every client (TOPdesk, Graph, EWS, SMTP):
 * the handle options they share, the capped response body, the one table
 * of which transfer failures are worth another try, Retry-After, backoff
 * with jitter, the monotonic clock and the sleep.  The clients on top speak
 * only their protocol: what a 2xx, a SOAP fault or an SMTP reply means. */
#ifndef TDHOOK_TRANSPORT_H
#define TDHOOK_TRANSPORT_H

#include <stddef.h>

#include <curl/curl.h>

#include "core/util/buf.h"
#include "core/util/metrics.h"

/* What a failure is worth: another try later, or none until someone
 * changes something (a URL, a certificate, a password). */
typedef enum { TRANSPORT_LATER = 1, TRANSPORT_NEVER = 2 } transport_verdict_t;

/* The longest Retry-After transport_retry_after_ms() answers with: one day. */
#define TRANSPORT_RETRY_AFTER_CAP_MS 86400000L

/* Room for a header value kept by the transport (Retry-After). */
#define TRANSPORT_VALUE_SIZE 64

/* --- clock and sleep ------------------------------------------------------ */

/* Milliseconds on the monotonic clock (only differences mean anything). */
long long transport_now_ms(void);
/* Seconds on the monotonic clock, for latency figures. */
double transport_now(void);
/* Sleeps ms milliseconds, resuming after a signal. */
void transport_sleep_ms(long ms);
/* The wait before try attempt + 1 (attempt >= 1): base * 2^(attempt-1),
 * with jitter between 75 % and 125 % of it, at most cap_ms (cap_ms <= 0:
 * no cap). */
long transport_backoff_ms(long base_ms, int attempt, long cap_ms);

/* --- one transfer --------------------------------------------------------- */

/* What one transfer brought back.  Initialise with transport_resp_init()
 * before each transfer, free with transport_resp_free(). */
typedef struct {
    CURLcode cc;
    long status;                        /* 0 when there was no answer */
    buf_t body;                         /* capped at the init's cap */
    int toobig;                         /* the body went over its cap */
    char retry_after[TRANSPORT_VALUE_SIZE];   /* the last response's, "" when none */
    char curl_err[CURL_ERROR_SIZE];     /* libcurl's own text, "" until a failure */
} transport_resp_t;

void transport_resp_init(transport_resp_t *r, size_t cap);
void transport_resp_free(transport_resp_t *r);

/* Options that every client's handle has: no signals, the protocols given
 * ("http,https" or "smtp,smtps"), the timeouts (connect at most total),
 * tdhook's User-Agent. */
void transport_setup(CURL *e, const char *protocols, long connect_ms, long total_ms);

/* Points e's body, header and error callbacks at r: the body is kept up to
 * its cap, Retry-After is kept from the last response. */
void transport_bind(CURL *e, transport_resp_t *r);

/* curl_easy_perform(e) with the latency counted for peer; fills r->cc,
 * r->status and r->curl_err (libcurl's text when it left none). */
void transport_perform(CURL *e, transport_resp_t *r, metrics_peer_t peer);

/* After a transfer that ran elsewhere (curl multi): r->cc = cc, r->status,
 * r->curl_err and the latency for peer, as transport_perform() does. */
void transport_done(CURL *e, transport_resp_t *r, CURLcode cc, metrics_peer_t peer);

/* curl_slist_append() that exits on out-of-memory (xalloc's exit). */
struct curl_slist *transport_header(struct curl_slist *l, const char *h);
/* Frees a header list after wiping it: it may hold a bearer token. */
void transport_headers_free(struct curl_slist *l);

/* --- what failed, and what that is worth ---------------------------------- */

/* The verdict on a transfer that ended in cc (not CURLE_OK): a network
 * failure, a timeout or a dropped connection is LATER; a bad URL, a
 * protocol not built in, a refused login, an untrusted TLS certificate or
 * an unknown CA, a body over its cap is NEVER.  *why (may be NULL) is set
 * to a sentence for a person when the verdict needs one ("the server's TLS
 * certificate is not trusted (check the CA, or the host name)"), else NULL. */
transport_verdict_t transport_curl_verdict(CURLcode cc, const char **why);

/* 1 when cc says the request surely never reached the server (no
 * connection, no name, no TLS), so even a request that must not be sent
 * twice may be sent again. */
int transport_curl_unsent(CURLcode cc);

/* 1 when an HTTP status says "later": 429, 500, 502, 503, 504. */
int transport_status_later(long status);

/* A libcurl failure as one line: the verdict's sentence when there is one,
 * then libcurl's own text ("SSL certificate problem: ..."); borrowed from
 * r or static. */
const char *transport_error_text(const transport_resp_t *r, char *out, size_t size);

/* --- headers -------------------------------------------------------------- */

/* 1 when line (len bytes, not NUL-terminated, as libcurl's
 * CURLOPT_HEADERFUNCTION gets it) is a status line "HTTP/...", the start of
 * a new response (a redirect's, or the one after 100 Continue); else 0. */
int transport_is_status_line(const char *line, size_t len);

/* 1 when line (len bytes, not NUL-terminated) is the header called name
 * (compared without regard to case, given without the colon); its value,
 * without the white space and CR LF around it, is then copied to value
 * (size bytes, NUL-terminated, cut at size - 1; size must be > 0).  0, with
 * value untouched, for any other line. */
int transport_header_match(const char *line, size_t len, const char *name, char *value,
                           size_t size);

/* A Retry-After value as milliseconds from now: delay-seconds (fractions
 * allowed, as Graph sends "2.128"; rounded up to the next millisecond) or
 * an HTTP-date (0 when it is past), at most TRANSPORT_RETRY_AFTER_CAP_MS.
 * -1 when value is empty, negative or unreadable. */
long transport_retry_after_ms(const char *value);

/* 1 when host (a bare host name or address, IPv6 with or without
 * brackets) is the loopback interface: localhost, 127.0.0.0/8, ::1. */
int transport_host_is_loopback(const char *host);
/* 1 when url's host is the loopback interface. */
int transport_url_is_loopback(const char *url);

#endif
