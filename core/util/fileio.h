/* Whole reads and writes at an offset, retried after signals. */
#ifndef TDHOOK_FILEIO_H
#define TDHOOK_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes of data at off.  0, or -1 with errno (EIO when the
 * file takes no more). */
int fd_pwrite_all(int fd, const void *data, size_t len, off_t off);

/* Reads len bytes at off.  1 when all were read, 0 at a short read (end of
 * file), -1 on error with errno. */
int fd_pread_all(int fd, void *data, size_t len, off_t off);

#endif
