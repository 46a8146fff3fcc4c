/* Small HTTP helpers shared by the REST clients (core/topdesk.c,
 * core/graph.c): picking a header out of what libcurl's header callback
 * hands over, and reading Retry-After. */
#ifndef TDHOOK_HTTP_H
#define TDHOOK_HTTP_H

#include <stddef.h>

/* The longest Retry-After http_retry_after_ms() answers with: one day. */
#define HTTP_RETRY_AFTER_CAP_MS 86400000L

/* 1 when line (len bytes, not NUL-terminated, as libcurl's
 * CURLOPT_HEADERFUNCTION gets it) is a status line "HTTP/...", the start of
 * a new response (a redirect's, or the one after 100 Continue); else 0. */
int http_is_status_line(const char *line, size_t len);

/* 1 when line (len bytes, not NUL-terminated) is the header called name
 * (compared without regard to case, given without the colon); its value,
 * without the white space and CR LF around it, is then copied to value
 * (size bytes, NUL-terminated, cut at size - 1; size must be > 0).  0, with
 * value untouched, for any other line. */
int http_header_match(const char *line, size_t len, const char *name, char *value, size_t size);

/* Room for the value http_keep_retry_after() keeps. */
#define HTTP_VALUE_SIZE 64

/* A CURLOPT_HEADERFUNCTION that keeps the Retry-After value of the last
 * response in the char[HTTP_VALUE_SIZE] given as CURLOPT_HEADERDATA, as
 * http_header_match() copies it: "" when that response has none (it is
 * emptied at each status line, so that a 100 Continue's or a redirect's
 * does not linger).  Never fails the transfer. */
size_t http_keep_retry_after(char *line, size_t size, size_t n, void *value);

/* A Retry-After value as milliseconds from now: delay-seconds (fractions
 * allowed, as Graph sends "2.128"; rounded up to the next millisecond) or
 * an HTTP-date (0 when it is past), at most HTTP_RETRY_AFTER_CAP_MS.  -1
 * when value is empty, negative or unreadable. */
long http_retry_after_ms(const char *value);

#endif
