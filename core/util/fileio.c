#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/util/fileio.h"
#include "core/util/xalloc.h"

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

int
file_replace(const char *path, const void *data, size_t len, int sync)
{
    char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = -1, err;

    if (fd >= 0 && fd_pwrite_all(fd, data, len, 0) == 0 && (!sync || fsync(fd) == 0)) {
        rc = close(fd);
        fd = -1;
        if (rc == 0)
            rc = rename(tmp, path);
    }
    err = errno;
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    errno = err;
    return rc;
}
