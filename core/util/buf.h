/* A growable byte buffer with a hard cap, for everything read from outside
 * (request bodies, HTTP responses): an append past the cap fails instead of
 * growing without end.  The content is always NUL-terminated. */
#ifndef TDHOOK_BUF_H
#define TDHOOK_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data;    /* allocated, NUL-terminated; NULL until the first append */
    size_t len;
    size_t alloc;
    size_t cap;    /* the most len may reach */
} buf_t;

#define BUF_OK 0
#define BUF_TOOBIG 1

void buf_init(buf_t *b, size_t cap);
/* Appends n bytes; BUF_TOOBIG leaves the buffer as it was. */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The content (never NULL: "" when empty); borrowed, valid until the next
 * append or buf_free(). */
const char *buf_str(const buf_t *b);
/* Hands the content over; allocated, free with free().  Resets b. */
char *buf_steal(buf_t *b);
void buf_reset(buf_t *b);
void buf_free(buf_t *b);

#endif
