#include "autoconf.h"

#include <errno.h>
#include <unistd.h>

#include "core/util/fileio.h"

int
fd_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int
fd_pread_all(int fd, void *data, size_t len, off_t off)
{
    char *p = data;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 1;
}
