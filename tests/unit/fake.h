/* The Python fakes (the scripts in tests/fakes/) as seen from a C unit
 * test: find the script, run it on a free loopback port in its own temp
 * dir, talk to its control endpoints (/__fake/...), stop it and remove the
 * dir.  Also the clock helpers the tests time retries with, and what a
 * test's main() and fixtures do around a group that runs against one fake.
 * Single-threaded tests only. */
#ifndef TDHOOK_TESTS_FAKE_H
#define TDHOOK_TESTS_FAKE_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "config/config.h"

#define FAKE_PYTHON "/usr/bin/python3"

typedef struct {
    char dir[64];   /* the temp dir: port, fake.log and what the test adds */
    pid_t pid;      /* the running fake, or 0 */
    int port;       /* its port once fake_start() succeeded, else 0 */
} fake_t;

/* Milliseconds on the monotonic clock. */
long long fake_now_ms(void);

/* Sleeps ms milliseconds, resuming after signals. */
void fake_sleep_ms(long ms);

/* 1 (after printing "SKIP: ..." to stderr) when FAKE_PYTHON cannot be run,
 * so that main() can exit 77; else 0. */
int fake_python_missing(void);

/* The source tree's top: $top_srcdir, else derived from where this file
 * was compiled from.  Allocated, free with free(). */
char *fake_top_srcdir(void);

/* tests/fakes/NAME (e.g. "topdesk.py") under fake_top_srcdir(), else
 * relative to argv0 (the test binary; may be NULL).  Allocated, free with
 * free(); NULL when no such file exists. */
char *fake_find(const char *name, const char *argv0);

/* For main() of a test group against one fake: the path of tests/fakes/NAME
 * (see fake_find), with curl initialised; NULL, after printing "SKIP: ..."
 * to stderr, when FAKE_PYTHON or the script is missing, so that main() can
 * exit 77.  After the group: fake_main_done(). */
char *fake_main_init(const char *name, const char *argv0);

/* Undoes fake_main_init(): cleans curl up and frees script. */
void fake_main_done(char *script);

/* The config loaded from the YAML that fmt and its arguments make, or NULL
 * after printing why it does not load to stderr.  Free with config_free(). */
config_t *fake_config(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Zeroes f and makes its temp dir /tmp/tdhook-TAG-XXXXXX.  0, or -1 with
 * errno set. */
int fake_init(fake_t *f, const char *tag);

/* Runs FAKE_PYTHON SCRIPT --port 0 --port-file DIR/port ARGS..., with ARGS
 * a NULL-terminated list (or NULL) and the fake's stdout and stderr in
 * DIR/fake.log, then waits up to 15 s for the port it writes.  0 with
 * f->pid and f->port set, or -1 when it exited or did not answer in time
 * (it is then stopped, and its log copied to stderr; f->dir stays for
 * fake_stop() to remove). */
int fake_start(fake_t *f, const char *script, const char *const *args);

/* Stops the fake (SIGTERM, then waits for it) and removes f->dir with all
 * in it.  Harmless on a zeroed fake_t and when called twice. */
void fake_stop(fake_t *f);

/* Copies DIR/fake.log to stderr, each line prefixed "fake: ". */
void fake_print_log(const fake_t *f);

/* One request to the fake at http://127.0.0.1:PORT PATH with method, and
 * body (JSON, may be NULL).  Returns the HTTP status (0 when the request
 * failed) and, when out is given, the parsed answer in *out (owned by the
 * caller, json_object_put() it; NULL when the answer is not JSON). */
long fake_call(const fake_t *f, const char *method, const char *path, const char *body,
               json_object **out);

/* Sets the fake's fault rules to rules_json (a JSON array, e.g. "[]"), in
 * place of those it had.  The HTTP status (200 when they took). */
long fake_set_faults(const fake_t *f, const char *rules_json);

/* Before a test: no fault rules, and POST /__fake/reset (zeroed stats and
 * whatever else that fake resets).  0, or -1 when the fake did not answer
 * 200 to both. */
int fake_clear(const fake_t *f);

#endif
