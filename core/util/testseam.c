/* Test seams: see core/util/testseam.h. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/testseam.h"

int
testseam_enabled(void)
{
#ifdef TDHOOK_TEST_SEAMS
    return 1;
#else
    return 0;
#endif
}

const char *
testseam_str(const char *name)
{
#ifdef TDHOOK_TEST_SEAMS
    const char *v = getenv(name);

    return v && *v ? v : NULL;
#else
    (void)name;
    return NULL;
#endif
}

int
testseam_flag(const char *name, int *cache)
{
    int v = __atomic_load_n(cache, __ATOMIC_RELAXED);

    if (v < 0) {
        const char *s = testseam_str(name);

        v = s && strcmp(s, "1") == 0;
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v;
}

long
testseam_number(const char *name, long max, long dflt, long *cache)
{
    long v = __atomic_load_n(cache, __ATOMIC_RELAXED);

    if (v < 0) {
        const char *s = testseam_str(name);
        char *end;

        v = dflt;
        if (s) {
            errno = 0;
            v = strtol(s, &end, 10);
            if (errno || *end || v < 0 || v > max)
                v = dflt;
        }
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v;
}
