/* Whole reads and writes at an offset, retried after signals; a file
 * replaced whole. */
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

/* Replaces path with len bytes of data (mode 0600): written whole to
 * path.PID.tmp, fsync'ed when sync, then renamed over path, so a reader
 * sees the old file or the new one, never a part.  0, or -1 with errno
 * (the temporary file is gone then). */
int file_replace(const char *path, const void *data, size_t len, int sync);

#endif
