/* Random bytes: see core/random.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/random.h"

/* Bytes read from fd into p (at most n), retrying after signals. */
static size_t
random_read(int fd, unsigned char *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

void
random_bytes(void *buf, size_t n)
{
    static unsigned long long x;
    unsigned char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < n) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
            got += random_read(fd, p + got, n - got);
            close(fd);
        }
    }
    if (got < n) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        x ^= ((unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20)) *
                 0x9e3779b97f4a7c15ULL ^
             ((unsigned long long)getpid() << 40);
        if (!x)
            x = 0x9e3779b97f4a7c15ULL;
        for (; got < n; got++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[got] = (unsigned char)x;
        }
    }
}
