/* Mail goes through the queue as a "mail" job, so an SMTP outage delays
 * mail but never loses it. */
#ifndef TDHOOK_MAILJOB_H
#define TDHOOK_MAILJOB_H

#include <stddef.h>
#include <json-c/json.h>
#include "config/config.h"
#include "core/queue/queue.h"

/* Queues a "mail" job carrying the built message: payload
 * {"to":[...],"message":"..."}.  QUEUE_EINVAL for no recipient, an invalid
 * address or no message; else what queue_enqueue() returns.  No
 * idempotency key: every call queues.  id (QUEUE_ID_MAX bytes) may be NULL. */
int mailjob_enqueue(queue_t *q, char *const *to, size_t nto, const char *message, char *id);

/* Runs a "mail" job's payload (borrowed): SMTP_* codes.  A malformed
 * payload is SMTP_EFAIL (retrying cannot fix it); otherwise what
 * smtp_send() returns, with its *errstr. */
int mailjob_send(const config_t *cfg, json_object *payload, char **errstr);

#endif
