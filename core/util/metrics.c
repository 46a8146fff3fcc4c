#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/util/metrics.h"
#include "core/util/xalloc.h"

static const int metrics_statuses[] = {200, 202, 400, 401, 404, 405, 413, 415, 429, 500, 503};
#define NSTATUS (sizeof metrics_statuses / sizeof *metrics_statuses + 1) /* + other */

static const char *const metrics_kinds[] = {"stock-check", "reservation", "reconcile", "mail",
                                            "outlook-pull", "outlook-subscriptions",
                                            "outlook-lifecycle"};
#define NKIND (sizeof metrics_kinds / sizeof *metrics_kinds + 1) /* + other */

static const double metrics_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKET (sizeof metrics_buckets / sizeof *metrics_buckets)

/* Routes are counted by their label, as the edge names them; the labels
 * take their slot in the shared page the first time they are counted, so
 * every process of a server counts one route in one slot. */
#define NROUTE 32
#define ROUTE_LABEL_MAX 48
#define SLOT_FREE 0
#define SLOT_WRITING 1
#define SLOT_READY 2

typedef struct {
    int32_t state;                  /* SLOT_* */
    char label[ROUTE_LABEL_MAX];
    uint64_t n[NSTATUS];
} metrics_route_slot_t;
static const char *const peer_names[PEER_COUNT] = {"topdesk", "graph", "ews", "smtp"};
static const char *const outcome_names[OUTCOME_COUNT] = {"done", "retry", "dead"};
static const char *const notify_names[NOTIFY_COUNT] = {"queued", "coalesced", "forbidden",
                                                       "lifecycle", "validation", "heartbeat",
                                                       "gap", "failed"};

typedef struct {
    metrics_route_slot_t routes[NROUTE];   /* the last one is "other" when full */
    uint64_t jobs[NKIND][OUTCOME_COUNT];
    uint64_t up_bucket[PEER_COUNT][NBUCKET + 1]; /* last: +Inf */
    uint64_t up_sum_us[PEER_COUNT];
    uint64_t notify[NOTIFY_COUNT];
    int64_t sub_expiry;
} metrics_t;

static metrics_t *metrics;

void
metrics_setup(void)
{
    void *p;

    if (metrics)
        return;
    p = mmap(NULL, sizeof *metrics, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    metrics = p == MAP_FAILED ? xcalloc(1, sizeof *metrics) : p;
}

static void
metrics_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static uint64_t
metrics_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* The slot of label: found, or taken now; the last slot when all are
 * taken (it counts as "other"). */
static metrics_route_slot_t *
metrics_route_slot(const char *label)
{
    for (size_t i = 0; i < NROUTE - 1; i++) {
        metrics_route_slot_t *slot = &metrics->routes[i];
        int32_t st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE), free_state = SLOT_FREE;

        if (st == SLOT_FREE &&
            __atomic_compare_exchange_n(&slot->state, &free_state, SLOT_WRITING, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            snprintf(slot->label, sizeof slot->label, "%s", label);
            __atomic_store_n(&slot->state, SLOT_READY, __ATOMIC_RELEASE);
            return slot;
        }
        while ((st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE)) == SLOT_WRITING)
            ;   /* another process is writing this label: a few stores */
        if (strncmp(slot->label, label, sizeof slot->label - 1) == 0)
            return slot;
    }
    return &metrics->routes[NROUTE - 1];
}

void
metrics_request(const char *route, int status)
{
    size_t i;

    metrics_setup();
    for (i = 0; i < NSTATUS - 1 && metrics_statuses[i] != status; i++)
        ;
    metrics_add(&metrics_route_slot(route && *route ? route : "other")->n[i], 1);
}

void
metrics_job(const char *kind, metrics_outcome_t outcome)
{
    size_t i;

    metrics_setup();
    for (i = 0; i < NKIND - 1 && strcmp(metrics_kinds[i], kind) != 0; i++)
        ;
    if ((unsigned)outcome < OUTCOME_COUNT)
        metrics_add(&metrics->jobs[i][outcome], 1);
}

void
metrics_upstream(metrics_peer_t peer, double seconds)
{
    size_t i;

    metrics_setup();
    if ((unsigned)peer >= PEER_COUNT)
        return;
    if (seconds < 0)
        seconds = 0;
    for (i = 0; i < NBUCKET && seconds > metrics_buckets[i]; i++)
        ;
    metrics_add(&metrics->up_bucket[peer][i], 1);
    metrics_add(&metrics->up_sum_us[peer], (uint64_t)(seconds * 1e6));
}

void
metrics_notification(metrics_notify_t outcome, unsigned n)
{
    metrics_setup();
    if ((unsigned)outcome < NOTIFY_COUNT)
        metrics_add(&metrics->notify[outcome], n);
}

void
metrics_subscription_expiry(long long when)
{
    metrics_setup();
    __atomic_store_n(&metrics->sub_expiry, (int64_t)when, __ATOMIC_RELAXED);
}

void
metrics_render(buf_t *out, size_t queue_depth, size_t dead_letters)
{
    metrics_setup();

    buf_puts(out, "# HELP tdhook_http_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE tdhook_http_requests_total counter\n");
    for (size_t r = 0; r < NROUTE; r++) {
        const metrics_route_slot_t *slot = &metrics->routes[r];
        const char *label = r == NROUTE - 1 ? "other" : slot->label;

        if (r < NROUTE - 1 && __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SLOT_READY)
            continue;
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t n = metrics_get(&slot->n[s]);
            if (!n)
                continue;
            if (s < NSTATUS - 1)
                buf_printf(out, "tdhook_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                           label, metrics_statuses[s], (unsigned long long)n);
            else
                buf_printf(out, "tdhook_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                           label, (unsigned long long)n);
        }
    }

    buf_puts(out, "# HELP tdhook_jobs_total Job attempts finished, by kind and outcome.\n"
                  "# TYPE tdhook_jobs_total counter\n");
    for (size_t k = 0; k < NKIND; k++)
        for (size_t o = 0; o < OUTCOME_COUNT; o++)
            buf_printf(out, "tdhook_jobs_total{kind=\"%s\",outcome=\"%s\"} %llu\n",
                       k < NKIND - 1 ? metrics_kinds[k] : "other", outcome_names[o],
                       (unsigned long long)metrics_get(&metrics->jobs[k][o]));

    buf_printf(out, "# HELP tdhook_queue_depth Jobs waiting or running.\n"
                    "# TYPE tdhook_queue_depth gauge\n"
                    "tdhook_queue_depth %zu\n"
                    "# HELP tdhook_dead_letters Jobs that failed for good and wait for an operator.\n"
                    "# TYPE tdhook_dead_letters gauge\n"
                    "tdhook_dead_letters %zu\n",
               queue_depth, dead_letters);

    buf_puts(out, "# HELP tdhook_notifications_total Change notifications from Exchange, by "
                  "outcome.\n"
                  "# TYPE tdhook_notifications_total counter\n");
    for (size_t i = 0; i < NOTIFY_COUNT; i++)
        buf_printf(out, "tdhook_notifications_total{outcome=\"%s\"} %llu\n", notify_names[i],
                   (unsigned long long)metrics_get(&metrics->notify[i]));
    buf_printf(out, "# HELP tdhook_subscription_oldest_expiry_seconds When the first room "
                    "calendar subscription lapses unless renewed (Unix time; 0: none).\n"
                    "# TYPE tdhook_subscription_oldest_expiry_seconds gauge\n"
                    "tdhook_subscription_oldest_expiry_seconds %lld\n",
               (long long)__atomic_load_n(&metrics->sub_expiry, __ATOMIC_RELAXED));

    buf_puts(out, "# HELP tdhook_upstream_request_duration_seconds Requests to TOPdesk, "
                  "Exchange and SMTP, by peer.\n"
                  "# TYPE tdhook_upstream_request_duration_seconds histogram\n");
    for (size_t p = 0; p < PEER_COUNT; p++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKET; b++) {
            cum += metrics_get(&metrics->up_bucket[p][b]);
            if (b < NBUCKET)
                buf_printf(out,
                           "tdhook_upstream_request_duration_seconds_bucket{peer=\"%s\",le=\"%g\"} %llu\n",
                           peer_names[p], metrics_buckets[b], (unsigned long long)cum);
            else
                buf_printf(out,
                           "tdhook_upstream_request_duration_seconds_bucket{peer=\"%s\",le=\"+Inf\"} %llu\n",
                           peer_names[p], (unsigned long long)cum);
        }
        buf_printf(out, "tdhook_upstream_request_duration_seconds_sum{peer=\"%s\"} %.6f\n",
                   peer_names[p], (double)metrics_get(&metrics->up_sum_us[p]) / 1e6);
        buf_printf(out, "tdhook_upstream_request_duration_seconds_count{peer=\"%s\"} %llu\n",
                   peer_names[p], (unsigned long long)cum);
    }
}
