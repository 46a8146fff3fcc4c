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
/* What became of one change notification from Exchange. */
typedef enum {
    NOTIFY_QUEUED,      /* a pull of its room was queued */
    NOTIFY_COALESCED,   /* a pull of its room was queued already */
    NOTIFY_FORBIDDEN,   /* unknown subscription or wrong clientState */
    NOTIFY_LIFECYCLE,   /* a lifecycle event, queued */
    NOTIFY_VALIDATION,  /* a validation round answered */
    NOTIFY_HEARTBEAT,   /* an EWS status event: the subscription lives */
    NOTIFY_GAP,         /* an EWS watermark gap: a push was lost, the room is read */
    NOTIFY_FAILED,      /* could not be stored: answered 503 for a retry */
    NOTIFY_COUNT
} metrics_notify_t;

/* Shared when called before fork(); private memory otherwise.  Idempotent. */
void metrics_setup(void);
/* One HTTP answer: route is the label the edge gives the route
 * ("/hooks/reservation", "other"; at most 47 bytes are kept), status the
 * HTTP status.  The first 31 labels get a counter of their own, the rest
 * count as "other". */
void metrics_request(const char *route, int status);
void metrics_job(const char *kind, metrics_outcome_t outcome);
void metrics_upstream(metrics_peer_t peer, double seconds);
void metrics_notification(metrics_notify_t outcome, unsigned n);
/* The earliest expiry of the live subscriptions (Unix time; 0: none). */
void metrics_subscription_expiry(long long when);
/* Appends the Prometheus text exposition; the queue gauges are passed in. */
void metrics_render(buf_t *out, size_t queue_depth, size_t dead_letters);

#endif
