/* Secrets: read from the config or from a file of their own (which must
 * not be readable by others), wiped when freed. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_private.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* ---- secrets from files ------------------------------------------------- */

/* Clears memory that held a secret; volatile, so it is not optimised away
 * before the free(). */
void
wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

/* Reads the open file fd, which holds secrets (st is its fstat()): warns
 * when group or others may read path, then reads to the end but at most
 * max + 1 bytes, so that the caller can tell a file over max.  0 with *data
 * (allocated, NUL-terminated; wipe() *len bytes before free()) and *len;
 * -1 with errno set on a read error. */
int
read_private(int fd, const struct stat *st, const char *path, const char *what, size_t max,
             char **data, size_t *len)
{
    char *d = xmalloc(max + 2);
    size_t n = 0;
    int err;

    if (st->st_mode & 044)
        log_warn("%s is readable by others; chmod 600 it, it holds %s", path, what);
    for (;;) {
        ssize_t r = read(fd, d + n, max + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = errno;
            wipe(d, n);
            free(d);
            errno = err;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            break;
    }
    d[n] = '\0';
    *data = d;
    *len = n;
    return 0;
}

/* Reads a small regular file (a secret) into an allocated, NUL-terminated
 * string.  Non-blocking open, so a FIFO or device cannot hang the load. */
static char *
read_secret_file(ctx_t *c, const char *path, unsigned line, const char *key)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        ctx_fail(c, line, key, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        ctx_fail(c, line, key, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ctx_fail(c, line, key, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > SECRET_FILE_MAX) {
        ctx_fail(c, line, key, "%s is larger than 64 KiB", path);
        goto out;
    }
    if (read_private(fd, &st, path, "a secret", SECRET_FILE_MAX, &data, &len) != 0) {
        ctx_fail(c, line, key, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (len > SECRET_FILE_MAX) {
        ctx_fail(c, line, key, "%s is larger than 64 KiB", path);
        goto fail;
    }
    if (strlen(data) != len) {
        ctx_fail(c, line, key, "%s contains a NUL byte", path);
        goto fail;
    }
    goto out;
fail:
    wipe(data, len);
    free(data);
    data = NULL;
out:
    close(fd);
    return data;
}

void
set_secret(ctx_t *c, const field_t *f, const node_t *v, const node_t *vf,
           const char *key)
{
    char *val = NULL, *path = NULL;
    unsigned line;

    if (vf) {
        line = vf->line;
        path = scalar_value(c, vf, key, "a file name");
        if (!path)
            return;
        if (!*path) {
            ctx_fail(c, line, key, "the file name is empty");
            goto out;
        }
        val = read_secret_file(c, path, line, key);
        if (!val)
            goto out;
        /* One trailing newline, LF or CRLF, is not part of the secret. */
        size_t len = strlen(val);
        if (len > 0 && val[len - 1] == '\n') {
            val[--len] = '\0';
            if (len > 0 && val[len - 1] == '\r')
                val[--len] = '\0';
        }
    } else {
        line = v->line;
        val = scalar_value(c, v, key, "a string");
        if (!val)
            goto out;
    }
    if (!*val) {
        ctx_fail(c, line, key, "the secret is empty");
        goto out;
    }
    char **dst = FIELD(&c->p->cfg, f, char *);
    secret_free(*dst);
    *dst = val;
    val = NULL;
    free(c->p->secret_file[f->slot]);
    c->p->secret_file[f->slot] = path;
    path = NULL;
out:
    secret_free(val);
    free(path);
}

void
set_secret_list_file(ctx_t *c, const field_t *f, const node_t *vf,
                     const char *key)
{
    config_list_t *dst = FIELD(&c->p->cfg, f, config_list_t);
    config_list_t l = {NULL, 0};
    char *path, *data;

    path = scalar_value(c, vf, key, "a file name");
    if (!path)
        return;
    if (!*path) {
        ctx_fail(c, vf->line, key, "the file name is empty");
        free(path);
        return;
    }
    data = read_secret_file(c, path, vf->line, key);
    if (!data) {
        free(path);
        return;
    }
    size_t len = strlen(data);
    split_tokens(data, &l);
    wipe(data, len);
    free(data);
    list_clear(dst, 1);
    *dst = l;
    free(c->p->secret_file[f->slot]);
    c->p->secret_file[f->slot] = path;
}
