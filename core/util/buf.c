#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/buf.h"
#include "core/util/xalloc.h"

void
buf_init(buf_t *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

/* Makes room for n more bytes plus the NUL. */
static int
buf_grow(buf_t *b, size_t n)
{
    size_t want;

    if (n > b->cap || b->len > b->cap - n)
        return BUF_TOOBIG;
    want = b->len + n + 1;
    if (want <= b->alloc)
        return BUF_OK;
    size_t alloc = b->alloc ? b->alloc : 64;
    while (alloc < want)
        alloc = alloc > ((size_t)-1) / 2 ? want : alloc * 2;
    b->data = xrealloc(b->data, alloc);
    b->alloc = alloc;
    return BUF_OK;
}

int
buf_append(buf_t *b, const void *p, size_t n)
{
    if (buf_grow(b, n))
        return BUF_TOOBIG;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return BUF_OK;
}

int
buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return BUF_TOOBIG;
    if (buf_grow(b, (size_t)n))
        return BUF_TOOBIG;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return BUF_OK;
}

int
buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *
buf_str(const buf_t *b)
{
    return b->data ? b->data : "";
}

char *
buf_steal(buf_t *b)
{
    char *p = b->data ? b->data : xstrdup("");
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}

void
buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void
buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}
