/* The shared count of queue/ across the processes of one server, which keeps
 * queue.max_jobs exact: queue/ changes under a shared lock and is counted under
 * an exclusive one. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>

#include "core/util/log.h"
#include "core/util/testseam.h"
#include "core/queue/queue_private.h"

queue_sync_t *queue_sync;

/* The shared count of queue/ (servers only) is exact because queue/
 * changes under a shared lock and is counted under an exclusive one. */
void
depth_lock(const queue_t *q, int how)
{
    if (q->depth_fd >= 0)
        while (flock(q->depth_fd, how) < 0 && errno == EINTR)
            ;
}

#define RECOUNT_WAIT_MS 5000   /* a slot that does not drain by then is a dead worker's */

void
nap_us(long us)
{
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};

    nanosleep(&ts, NULL);
}

/* TDHOOK_TEST_ENQUEUE_DELAY_MS (a test seam): an enqueue of a server waits
 * this long once it holds its place in the shared count, so that a test can
 * kill a worker there.  0 in a production build. */
long
test_enqueue_delay_ms(void)
{
    static long ms = -1;

    return testseam_number("TDHOOK_TEST_ENQUEUE_DELAY_MS", 60000, 0, &ms);
}

/* An HTTP worker's enqueue (slot) enters the count: it waits while a
 * recount runs, and clears the mark of a recounting process that died. */
void
count_enter(int slot)
{
    for (int naps = 0;; naps++) {
        pid_t pid;

        __atomic_add_fetch(&queue_sync->readers[slot], 1, __ATOMIC_SEQ_CST);
        pid = __atomic_load_n(&queue_sync->recounting, __ATOMIC_SEQ_CST);
        if (!pid)
            return;
        __atomic_sub_fetch(&queue_sync->readers[slot], 1, __ATOMIC_SEQ_CST);
        nap_us(200);
        if (naps % 500 == 499 && kill(pid, 0) && errno == ESRCH)
            __atomic_compare_exchange_n(&queue_sync->recounting, &pid, 0, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
    }
}

void
count_leave(int slot)
{
    __atomic_sub_fetch(&queue_sync->readers[slot], 1, __ATOMIC_SEQ_CST);
}

/* With depth.lock held exclusive: keeps the HTTP workers' enqueues out
 * until recount_end(). */
void
recount_begin(void)
{
    long long deadline = now_ms() + RECOUNT_WAIT_MS;

    __atomic_store_n(&queue_sync->recounting, (int32_t)log_pid(), __ATOMIC_SEQ_CST);
    for (;;) {
        int64_t busy = 0;

        for (int i = 0; i < QUEUE_SLOTS; i++)
            busy += __atomic_load_n(&queue_sync->readers[i], __ATOMIC_SEQ_CST);
        if (busy == 0)
            return;
        if (now_ms() > deadline) {
            log_warn("queue: enqueues still in flight after %d ms; counting queue/ anyway",
                     RECOUNT_WAIT_MS);
            return;
        }
        nap_us(100);
    }
}

void
recount_end(void)
{
    __atomic_store_n(&queue_sync->recounting, 0, __ATOMIC_SEQ_CST);
}

void
queue_worker_gone(int slot, pid_t pid)
{
    int32_t was = (int32_t)pid;

    if (!queue_sync || slot < 0 || slot >= QUEUE_SLOTS)
        return;
    __atomic_store_n(&queue_sync->readers[slot], 0, __ATOMIC_SEQ_CST);
    __atomic_compare_exchange_n(&queue_sync->recounting, &was, 0, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
}

void
queue_share_sync(void)
{
    void *p;

    if (queue_sync)
        return;
    p = mmap(NULL, sizeof *queue_sync, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        queue_sync = p;
}

size_t
queue_depth(queue_t *q)
{
    /* Always counted afresh (the cache only spares queue_enqueue()). */
    q->depth = ids_count(q, QDIR_QUEUE);
    q->depth_ms = now_ms();
    return q->depth;
}

size_t
queue_dead_count(queue_t *q)
{
    return ids_count(q, QDIR_DEAD);
}
