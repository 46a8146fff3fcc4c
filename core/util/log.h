/* Log lines on stderr, as text or as JSON, one line each.  A request id set
 * with log_set_request() is added to every line until it is cleared. */
#ifndef TDHOOK_LOG_H
#define TDHOOK_LOG_H

#include <sys/types.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;
typedef enum { LOG_TEXT, LOG_JSON } log_format_t;

void log_setup(log_level_t level, log_format_t format);
/* getpid(), asked once per process (a forked child asks again). */
pid_t log_pid(void);
/* Parses "debug" "info" "warn" "error"; -1 when unknown. */
int log_level_parse(const char *s);
/* The id of the request or job being handled, or NULL; copied. */
void log_set_request(const char *id);
const char *log_request(void);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
