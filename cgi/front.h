/* The front: reads one request from FastCGI or CGI with the limits applied,
 * hands it to app_handle() and writes the answer. */
#ifndef TDHOOK_FRONT_H
#define TDHOOK_FRONT_H

#include <stddef.h>
#include <sys/types.h>
#include "cgi/app.h"

typedef struct {
    /* A request parameter (CGI variable) or NULL. */
    const char *(*param)(void *ctx, const char *name);
    /* Reads up to n bytes; 0 at the end of the body, -1 on error. */
    ssize_t (*read)(void *ctx, char *buf, size_t n);
    /* 1 when more body bytes than announced are waiting (never blocks). */
    int (*more)(void *ctx);
    /* Writes all of buf; -1 on error. */
    int (*write)(void *ctx, const char *buf, size_t n);
    void *ctx;
} front_io_t;

/* Serves one request; returns the HTTP status sent. */
int front_handle(app_t *app, const front_io_t *io);

/* Serves one request, whose answer may be sent later by another thread
 * (see app_handle_async()); then release(io->ctx, whole) ends it, whole
 * being 1 when the request was read to its end.  io is copied; io->ctx
 * must stay valid until release. */
void front_serve(app_t *app, const front_io_t *io, void (*release)(void *ctx, int whole));

/* Serves exactly one CGI request on stdin/stdout (GATEWAY_INTERFACE set). */
int front_cgi(app_t *app);

#endif
