/* Idempotency keys: idem/HASH holds the job id that a key was first
 * answered with, for 24 hours. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util/xalloc.h"
#include "core/queue/queue_private.h"

unsigned long long
fnv1a64(const char *s)
{
    unsigned long long h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Looks up idem/HASH: 1 and id filled when key was used within 24 h. */
int
idem_lookup(const queue_t *q, const char *name, const char *key, char *id)
{
    char *path = xasprintf("%s/%s", q->dirs[QDIR_IDEM], name);
    struct stat st;
    const char *text, *tab;
    buf_t b;
    int found = 0;

    if (stat(path, &st) || now_ms() - mtime_ms(&st) >= IDEM_TTL_MS)
        goto out;
    if (read_file(path, strlen(key) + QUEUE_ID_MAX + 1, &b))
        goto out;
    text = buf_str(&b);
    tab = memchr(text, '\t', b.len);
    if (tab && tab - text == JOB_ID_LEN && strcmp(tab + 1, key) == 0
        && b.len == (size_t)(tab - text) + 1 + strlen(key)) {
        memcpy(id, text, JOB_ID_LEN);
        id[JOB_ID_LEN] = '\0';
        found = id_valid(id);
    }
    buf_free(&b);
out:
    free(path);
    return found;
}
