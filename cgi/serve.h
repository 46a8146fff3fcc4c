/* `tdhook serve`: the prefork FastCGI server and its job runners. */
#ifndef TDHOOK_SERVE_H
#define TDHOOK_SERVE_H

#include "config/config.h"

typedef struct {
    const char *socket;   /* "unix:PATH", "tcp:HOST:PORT", or NULL: inherited */
    int workers;          /* FastCGI worker processes, >= 1 */
    int threads;          /* requests each worker serves at once, >= 1 */
} serve_opts_t;

/* Runs until SIGTERM or SIGINT; returns a sysexits code.  The master
 * process forks `workers` FastCGI workers of `threads` threads each and
 * cfg->queue.runners job runners, and re-spawns any that dies. */
int serve_run(const config_t *cfg, const serve_opts_t *opts);

#endif
