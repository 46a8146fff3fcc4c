#include "autoconf.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/util/metrics.h"
#include "core/util/xalloc.h"

static const int metrics_statuses[] = {200, 202, 400, 401, 404, 405, 413, 415, 429, 500, 503};
#define NSTATUS (sizeof metrics_statuses / sizeof *metrics_statuses + 1) /* + other */

static const char *const metrics_kinds[] = {"stock-check", "reservation", "reconcile", "mail"};
#define NKIND (sizeof metrics_kinds / sizeof *metrics_kinds + 1) /* + other */

static const double metrics_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKET (sizeof metrics_buckets / sizeof *metrics_buckets)

static const char *const route_names[ROUTE_COUNT] = {
    "/hooks/stock-check", "/hooks/reservation", "/hooks/reconcile", "/hooks/graph",
    "/jobs", "/healthz", "/metrics", "other",
};
static const char *const peer_names[PEER_COUNT] = {"topdesk", "graph", "ews", "smtp"};
static const char *const outcome_names[OUTCOME_COUNT] = {"done", "retry", "dead"};

typedef struct {
    uint64_t requests[ROUTE_COUNT][NSTATUS];
    uint64_t jobs[NKIND][OUTCOME_COUNT];
    uint64_t up_bucket[PEER_COUNT][NBUCKET + 1]; /* last: +Inf */
    uint64_t up_sum_us[PEER_COUNT];
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

void
metrics_request(metrics_route_t route, int status)
{
    size_t i;

    metrics_setup();
    if ((unsigned)route >= ROUTE_COUNT)
        route = ROUTE_UNKNOWN;
    for (i = 0; i < NSTATUS - 1 && metrics_statuses[i] != status; i++)
        ;
    metrics_add(&metrics->requests[route][i], 1);
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

const char *
metrics_route_name(metrics_route_t route)
{
    return (unsigned)route < ROUTE_COUNT ? route_names[route] : "other";
}

void
metrics_render(buf_t *out, size_t queue_depth, size_t dead_letters)
{
    metrics_setup();

    buf_puts(out, "# HELP tdhook_http_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE tdhook_http_requests_total counter\n");
    for (size_t r = 0; r < ROUTE_COUNT; r++)
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t n = metrics_get(&metrics->requests[r][s]);
            if (!n)
                continue;
            if (s < NSTATUS - 1)
                buf_printf(out, "tdhook_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                           route_names[r], metrics_statuses[s], (unsigned long long)n);
            else
                buf_printf(out, "tdhook_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                           route_names[r], (unsigned long long)n);
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
