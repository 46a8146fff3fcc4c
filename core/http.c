/* HTTP helpers: see core/http.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "core/http.h"

#define HTTP_CAP_S (HTTP_RETRY_AFTER_CAP_MS / 1000)

static int
http_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
http_is_status_line(const char *line, size_t len)
{
    return len >= 5 && memcmp(line, "HTTP/", 5) == 0;
}

int
http_header_match(const char *line, size_t len, const char *name, char *value, size_t size)
{
    size_t nlen = strlen(name);

    if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
        return 0;
    line += nlen + 1;
    len -= nlen + 1;
    while (len && http_is_space(line[0])) {
        line++;
        len--;
    }
    while (len && http_is_space(line[len - 1]))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(value, line, len);
    value[len] = '\0';
    return 1;
}

size_t
http_keep_retry_after(char *line, size_t size, size_t n, void *value)
{
    size_t len = size * n;

    if (http_is_status_line(line, len))
        *(char *)value = '\0';
    else
        http_header_match(line, len, "Retry-After", value, HTTP_VALUE_SIZE);
    return len;
}

long
http_retry_after_ms(const char *value)
{
    const char *v = value;
    char *end;
    double secs;
    time_t when, now;

    while (http_is_space(*v))
        v++;
    if (!*v)
        return -1;
    if (*v >= '0' && *v <= '9') {
        errno = 0;
        secs = strtod(v, &end);
        while (http_is_space(*end))
            end++;
        if (errno || *end || !(secs >= 0))
            return -1;
        if (secs > HTTP_CAP_S)
            return HTTP_RETRY_AFTER_CAP_MS;
        return (long)(secs * 1000.0 + 0.999);
    }
    when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    now = time(NULL);
    if (when <= now)
        return 0;
    if (when - now > HTTP_CAP_S)
        return HTTP_RETRY_AFTER_CAP_MS;
    return (long)(when - now) * 1000;
}
