/* Counters for /metrics, shared by every process of one `tdhook serve`.
 *
 * metrics_setup() maps one anonymous shared page set before the workers are
 * forked; every update is an atomic add, so workers and job runners count
 * into the same numbers and a scrape on any worker sees them all. */
#ifndef TDHOOK_METRICS_H
#define TDHOOK_METRICS_H

#include <stddef.h>
#include "core/util/buf.h"

typedef enum { PEER_TOPDESK, PEER_GRAPH, PEER_EWS, PEER_SMTP, PEER_COUNT } metrics_peer_t;

typedef enum { OUTCOME_DONE, OUTCOME_RETRY, OUTCOME_DEAD, OUTCOME_COUNT } metrics_outcome_t;

/* Shared when called before fork(); private memory otherwise.  Idempotent. */
void metrics_setup(void);
/* One HTTP answer: route is the label the edge gives the route
 * ("/hooks/reservation", "other"; at most 47 bytes are kept), status the
 * HTTP status.  The first 31 labels get a counter of their own, the rest
 * count as "other". */
void metrics_request(const char *route, int status);
void metrics_job(const char *kind, metrics_outcome_t outcome);
void metrics_upstream(metrics_peer_t peer, double seconds);
/* Appends the Prometheus text exposition; the queue gauges are passed in. */
void metrics_render(buf_t *out, size_t queue_depth, size_t dead_letters);

#endif
