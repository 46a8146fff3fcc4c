/* Group files: the jobs of one journal group in one file queue/ID.N.jobs,
 * split into job files when anyone needs one of them. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util/log.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"
#include "core/queue/queue_private.h"

/* --- group files ----------------------------------------------------------
 *
 * The jobs of one journal group (two or more) go to queue/ as one file,
 * queue/ID.N.jobs (ID the first job's id, N its count), written without
 * fsync like every file the journal holds: one file to create on the ack
 * path instead of N.  Whoever reads queue/ (a runner's claim, a lookup that
 * missed, a listing, a journal's replay) first splits the group files into
 * job files, makes them durable and removes the group file.  Format:
 *
 *   "TDHGRP01" | crc u32 (over what follows) | the jobs' entries
 *
 * each entry as in a journal commit (see entry_add()). */

#define GROUP_MAGIC "TDHGRP01"
#define GROUP_HEAD 12u
#define GROUP_SUFFIX ".jobs"
#define GROUP_NAME_MAX (JOB_ID_LEN + 16)

/* The count of jobs a group file's name says, or 0 when name is not one. */
size_t
group_count(const char *name)
{
    size_t len = strlen(name), slen = strlen(GROUP_SUFFIX);
    char id[QUEUE_ID_MAX];
    const char *p;
    char *end;
    unsigned long n;

    if (len <= JOB_ID_LEN + 1 + slen || len > GROUP_NAME_MAX || name[JOB_ID_LEN] != '.' ||
        strcmp(name + len - slen, GROUP_SUFFIX) != 0)
        return 0;
    memcpy(id, name, JOB_ID_LEN);
    id[JOB_ID_LEN] = '\0';
    p = name + JOB_ID_LEN + 1;
    if (!id_valid(id) || *p < '1' || *p > '9')
        return 0;
    n = strtoul(p, &end, 10);
    return end == name + len - slen ? n : 0;
}

/* Whether a group of one job is a group file too (the tests: with
 * TDHOOK_TEST_GROUP_FILES=1 every new job is). */
static int
group_always(void)
{
    static int always = -1;

    return testseam_flag("TDHOOK_TEST_GROUP_FILES", &always);
}

/* Adds a job's entry to the leader's group. */
void
group_add(commit_files_t *r, const char *name, const char *data, size_t dlen)
{
    static const unsigned char head[GROUP_HEAD];

    if (r->njobs == 0) {
        /* Room for the head, filled in by group_write(). */
        buf_reset(&r->group);
        buf_append(&r->group, head, GROUP_HEAD);
    }
    /* The buffer has no cap, and the entry passed entry_next(). */
    entry_add(&r->group, QDIR_QUEUE, name, data, dlen);
    r->njobs++;
}

/* Writes the leader's group: one job as its own file, more as a group
 * file.  0 or -1 (logged). */
int
group_write(commit_files_t *r)
{
    unsigned char *head = (unsigned char *)r->group.data;
    size_t len = r->group.len, off = GROUP_HEAD, dlen;
    const char *data;
    uint32_t crc;
    char name[256];
    int dir;

    /* The first job: its own file when alone, else its id names the group. */
    if (entry_next(r->group.data, len, &off, &dir, name, &data, &dlen) != 1)
        return -1;
    if (r->njobs == 1 && !group_always())
        return write_quick(r->q, QDIR_QUEUE, name, data, dlen);
    snprintf(name + JOB_ID_LEN, sizeof name - JOB_ID_LEN, ".%zu%s", r->njobs, GROUP_SUFFIX);
    crc = journal_crc32(0, r->group.data + GROUP_HEAD, len - GROUP_HEAD);
    memcpy(head, GROUP_MAGIC, 8);
    for (int i = 0; i < 4; i++)
        head[8 + i] = (unsigned char)(crc >> (8 * i));
    return write_quick(r->q, QDIR_QUEUE, name, r->group.data, len);
}

/* Splits one group file (open as fd, flock()ed): writes each job that is
 * nowhere yet.  Jobs written go to *written.  0, 1 when the file is not a
 * group file (it is moved to dead/ as NAME.corrupt), -1 on a write error. */
static int
group_split_one(const queue_t *q, int dfd, const char *gname, int fd, size_t *written)
{
    unsigned char *h;
    size_t off = GROUP_HEAD, dlen;
    uint32_t crc = 0;
    const char *data;
    char name[256];
    buf_t b;
    int dir, e, rc = 0;

    if (read_fd(fd, (size_t)QUEUE_SLOTS * JOURNAL_BYTES, &b))
        return -1;
    h = (unsigned char *)b.data;
    for (int i = 0; b.len >= GROUP_HEAD && i < 4; i++)
        crc |= (uint32_t)h[8 + i] << (8 * i);
    if (b.len < GROUP_HEAD || memcmp(h, GROUP_MAGIC, 8) != 0 ||
        journal_crc32(0, b.data + GROUP_HEAD, b.len - GROUP_HEAD) != crc) {
        char *to = xasprintf("%s/%s.corrupt", q->dirs[QDIR_DEAD], gname);

        if (renameat(dfd, gname, AT_FDCWD, to) == 0)
            log_error("queue: group file %s is corrupt, moved to %s", gname, to);
        free(to);
        buf_free(&b);
        return 1;
    }
    while ((e = entry_next(b.data, b.len, &off, &dir, name, &data, &dlen)) == 1) {
        char id[QUEUE_ID_MAX];

        if (dir != QDIR_QUEUE)
            continue;
        memcpy(id, name, JOB_ID_LEN);
        id[JOB_ID_LEN] = '\0';
        if (job_anywhere(q, id))
            continue;
        if (write_quick(q, QDIR_QUEUE, name, data, dlen)) {
            rc = -1;
            break;
        }
        (*written)++;
    }
    if (e < 0)
        log_warn("queue: group file %s ends in a malformed entry", gname);
    buf_free(&b);
    return rc;
}

#define GROUPS_AT_ONCE 256

/* Splits the group files in queue/ into job files, durable before the
 * group files go.  Returns how many group files were split. */
int
groups_split(queue_t *q)
{
    char *names[GROUPS_AT_ONCE];
    int fds[GROUPS_AT_ONCE];
    size_t n = 0, i, written = 0;
    struct dirent *de;
    int split = 0, ok = 1;
    DIR *d;

    d = opendir(q->dirs[QDIR_QUEUE]);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL && n < GROUPS_AT_ONCE)
        if (group_count(de->d_name))
            names[n++] = xstrdup(de->d_name);
    if (n == 0) {
        closedir(d);
        return 0;
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (i = 0; i < n; i++)
        fds[i] = -1;
    /* Shared, like every change of queue/: a recount never sees a group's
     * jobs both in its file and as job files. */
    depth_lock(q, LOCK_SH);
    for (i = 0; i < n && ok; i++) {
        struct stat st;
        int fd, r;

        fd = openat(dirfd(d), names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
            ;
        /* Split by someone else meanwhile: gone from queue/. */
        if (fstat(fd, &st) || st.st_nlink == 0) {
            close(fd);
            continue;
        }
        r = group_split_one(q, dirfd(d), names[i], fd, &written);
        if (r == 0)
            fds[i] = fd;
        else
            close(fd);
        if (r < 0)
            ok = 0;
    }
    /* The jobs are durable before their group file goes; the locks are
     * held until then, so nobody splits a group twice. */
    if (ok && written && syncfs(dirfd(d))) {
        log_error("queue: cannot sync %s: %s", q->root, strerror(errno));
        ok = 0;
    }
    for (i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        if (ok && unlinkat(dirfd(d), names[i], 0) == 0)
            split++;
        else if (ok && errno != ENOENT)
            log_error("queue: cannot remove %s/%s: %s", q->dirs[QDIR_QUEUE], names[i],
                      strerror(errno));
        close(fds[i]);
    }
    depth_lock(q, LOCK_UN);
    for (i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return split;
}

int
groups_split_all(queue_t *q)
{
    int n, total = 0;

    /* A full batch may have left more behind it; a short one was the last
     * (or stopped at a group file that cannot be split now). */
    do {
        n = groups_split(q);
        total += n;
    } while (n >= GROUPS_AT_ONCE);
    return total;
}
