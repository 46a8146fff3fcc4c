/* Random bytes for ids, MIME boundaries and retry jitter. */
#ifndef TDHOOK_RANDOM_H
#define TDHOOK_RANDOM_H

#include <stddef.h>

/* Fills buf with n random bytes and never fails or blocks: getrandom(2)
 * (without waiting for the kernel's pool at early boot), else /dev/urandom,
 * else, with no entropy source at all, a xorshift mix of the clock, the pid
 * and the previous call, which still differs between processes and calls.
 * Small requests are served from a pool each thread refills with one call
 * (a forked child starts a pool of its own).  Fine for names that must not
 * repeat; not for secrets. */
void random_bytes(void *buf, size_t n);

#endif
