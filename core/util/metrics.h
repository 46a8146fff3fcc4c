/* Counters for /metrics, shared by every process of one `tdhook serve`.
 *
 * metrics_setup() maps one anonymous shared page set before the workers are
 * forked; every update is an atomic add, so workers and job runners count
 * into the same numbers and a scrape on any worker sees them all. */
#ifndef TDHOOK_METRICS_H
#define TDHOOK_METRICS_H

#include <stddef.h>
#include "core/util/buf.h"

typedef enum {
    ROUTE_HOOK_STOCK,
    ROUTE_HOOK_RESERVATION,
    ROUTE_HOOK_RECONCILE,
    ROUTE_HOOK_GRAPH,
    ROUTE_JOBS,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_UNKNOWN,
    ROUTE_COUNT
} metrics_route_t;

typedef enum { PEER_TOPDESK, PEER_GRAPH, PEER_EWS, PEER_SMTP, PEER_COUNT } metrics_peer_t;

typedef enum { OUTCOME_DONE, OUTCOME_RETRY, OUTCOME_DEAD, OUTCOME_COUNT } metrics_outcome_t;

/* Shared when called before fork(); private memory otherwise.  Idempotent. */
void metrics_setup(void);
void metrics_request(metrics_route_t route, int status);
void metrics_job(const char *kind, metrics_outcome_t outcome);
void metrics_upstream(metrics_peer_t peer, double seconds);
/* Appends the Prometheus text exposition; the queue gauges are passed in. */
void metrics_render(buf_t *out, size_t queue_depth, size_t dead_letters);
const char *metrics_route_name(metrics_route_t route);

#endif
