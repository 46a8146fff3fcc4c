#include "autoconf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/util/log.h"

#define LOG_LINE_MAX 4096

static log_level_t log_min = LOG_INFO;
static log_format_t log_fmt = LOG_TEXT;
static __thread char log_req[64];   /* each request thread its own */
static pid_t log_pid_cached;        /* 0 until asked; a forked child resets it */

static void
log_forked(void)
{
    log_pid_cached = 0;
}

static void
log_atfork(void)
{
    pthread_atfork(NULL, NULL, log_forked);
}

pid_t
log_pid(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, log_atfork);
    if (!log_pid_cached)
        log_pid_cached = getpid();
    return log_pid_cached;
}

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void
log_setup(log_level_t level, log_format_t format)
{
    log_min = level;
    log_fmt = format;
}

int
log_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof log_names / sizeof *log_names; i++)
        if (strcmp(s, log_names[i]) == 0)
            return (int)i;
    return -1;
}

void
log_set_request(const char *id)
{
    if (!id) {
        log_req[0] = '\0';
        return;
    }
    snprintf(log_req, sizeof log_req, "%s", id);
}

const char *
log_request(void)
{
    return log_req[0] ? log_req : NULL;
}

/* Appends s to line at *pos, escaped for the format: control characters can
 * never start a new log line, whatever a peer sent. */
static void
log_escape(char *line, size_t *pos, size_t size, const char *s)
{
    for (; *s && *pos + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (log_fmt == LOG_JSON && (c == '"' || c == '\\')) {
            line[(*pos)++] = '\\';
            line[(*pos)++] = (char)c;
        } else if (c == '\n') {
            line[(*pos)++] = '\\';
            line[(*pos)++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            *pos += (size_t)snprintf(line + *pos, size - *pos,
                                     log_fmt == LOG_JSON ? "\\u%04x" : "\\x%02x", c);
        } else {
            line[(*pos)++] = (char)c;
        }
    }
    line[*pos] = '\0';
}

void
log_msg(log_level_t level, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX / 2];
    char line[LOG_LINE_MAX];
    char ts[40];
    size_t pos;
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

    if (log_fmt == LOG_JSON) {
        pos = (size_t)snprintf(line, sizeof line,
                               "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"pid\":%ld,",
                               ts, (long)tv.tv_usec / 1000, log_names[level], (long)log_pid());
        if (log_req[0])
            pos += (size_t)snprintf(line + pos, sizeof line - pos, "\"req\":\"%s\",", log_req);
        pos += (size_t)snprintf(line + pos, sizeof line - pos, "\"msg\":\"");
        log_escape(line, &pos, sizeof line - 3, msg);
        pos += (size_t)snprintf(line + pos, sizeof line - pos, "\"}\n");
    } else {
        pos = (size_t)snprintf(line, sizeof line, "%s.%03ldZ %-5s [%ld]%s%s%s ",
                               ts, (long)tv.tv_usec / 1000, log_names[level], (long)log_pid(),
                               log_req[0] ? " req=" : "", log_req, "");
        log_escape(line, &pos, sizeof line - 2, msg);
        pos += (size_t)snprintf(line + pos, sizeof line - pos, "\n");
    }
    if (pos >= sizeof line)
        pos = sizeof line - 1;
    /* One write per line, so lines of several processes never interleave. */
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}
