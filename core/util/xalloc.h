/* Allocation helpers that never return NULL: on exhaustion they print one
 * line and exit with EX_OSERR, so callers need no NULL checks. */
#ifndef TDHOOK_XALLOC_H
#define TDHOOK_XALLOC_H

#include <stddef.h>

/* The one out-of-memory exit: one line on stderr ("tdhook: out of memory",
 * with what failed when what is not NULL), then exit(EX_OSERR).  Also for
 * libraries' allocations (libcurl, json-c, libxml2) that fail. */
void xalloc_die(const char *what) __attribute__((noreturn));

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* size bytes at a multiple of align (a power of two); free with free(). */
void *xaligned(size_t align, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formatted string; allocated, free with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe a secret string before it is freed; NULL is allowed. */
void secret_free(char *s);
/* Wipe n bytes in a way the compiler keeps. */
void secret_wipe(void *p, size_t n);

#endif
