/* Random bytes: see core/util/random.h. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/util/random.h"

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

/* Fills buf with n random bytes from the kernel (or the fallbacks below). */
static void
random_fill(void *buf, size_t n)
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

/* Small requests (an id, a file name) come often: each thread keeps a pool
 * filled by one getrandom() for many of them.  A forked child must not hand
 * out the bytes its parent will: the fork bumps the generation, and a pool
 * of an older one is thrown away. */
#define RANDOM_POOL 512

static unsigned random_gen;
static __thread struct {
    unsigned char b[RANDOM_POOL];
    size_t left;
    unsigned gen;
} random_pool;

static void
random_forked(void)
{
    random_gen++;
}

static void
random_atfork(void)
{
    pthread_atfork(NULL, NULL, random_forked);
}

void
random_bytes(void *buf, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    unsigned char *from;

    pthread_once(&once, random_atfork);
    if (n > RANDOM_POOL / 4) {
        random_fill(buf, n);
        return;
    }
    if (random_pool.gen != random_gen || random_pool.left < n) {
        random_fill(random_pool.b, sizeof random_pool.b);
        random_pool.left = sizeof random_pool.b;
        random_pool.gen = random_gen;
    }
    from = random_pool.b + sizeof random_pool.b - random_pool.left;
    memcpy(buf, from, n);
    memset(from, 0, n);
    random_pool.left -= n;
}
