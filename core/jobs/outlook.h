/* Bookings made in Outlook → TOPdesk reservations (reservations.direction:
 * both).
 *
 * Notifications are hints: each says only "look at this room".  The truth
 * is the room's change feed (Graph calendarView/delta), read by one pull at
 * a time per room and applied to TOPdesk: a new meeting becomes one
 * reservation (external link type 8348 = the meeting's iCalUId), a moved
 * one is rescheduled, one in another room moves, a cancelled, declined or
 * deleted one is cancelled.  What was last applied is kept per meeting, so
 * a repeated, late or reordered notification, and tdhook's own writes
 * coming back, change nothing.  The timed resync runs the same pull. */
#ifndef TDHOOK_OUTLOOK_H
#define TDHOOK_OUTLOOK_H

#include <json-c/json.h>

#include "config/config.h"
#include "core/queue/queue.h"

/* The codes of the jobs below (the queue's verdicts in core/jobs/jobs.c). */
#define OUTLOOK_OK 0
#define OUTLOOK_ERETRY 1
#define OUTLOOK_EFAIL 2
#define OUTLOOK_ELATER 3   /* not yet: a booking is still being processed by its room */

/* Job kinds. */
#define OUTLOOK_KIND_PULL "outlook-pull"
#define OUTLOOK_KIND_SUBS "outlook-subscriptions"
#define OUTLOOK_KIND_LIFECYCLE "outlook-lifecycle"

/* 1 when cfg syncs bookings made in Outlook. */
int outlook_enabled(const config_t *cfg);

/* Reads the change feed of mailbox (NULL: every mapped room) and applies it
 * to TOPdesk.  full: start the feeds afresh (what is gone from a fresh feed
 * is cancelled).  dry_run: write nothing, say what would be done. */
int outlook_pull(const config_t *cfg, queue_t *q, const char *mailbox, int full, int dry_run,
                 json_object **result, char **errstr, long *retry_after_ms);

/* Each mapped room's subscription as stored: backend, id, expiry, last
 * notification. */
int outlook_subs_list(const config_t *cfg, json_object **result, char **errstr);
/* Creates the missing subscriptions, renews those past half their life,
 * removes those of rooms no longer mapped; queues a pull of each room
 * subscribed anew. */
int outlook_subs_sync(const config_t *cfg, queue_t *q, json_object **result, char **errstr,
                      long *retry_after_ms);
/* Acts on one lifecycle event of subscription id: reauthorizationRequired,
 * subscriptionRemoved, missed. */
int outlook_lifecycle(const config_t *cfg, queue_t *q, const char *id, const char *event,
                      json_object **result, char **errstr, long *retry_after_ms);

/* --- for the edge ----------------------------------------------------------- */

/* 1 when sub_id is a subscription tdhook made and client_state is the one
 * it issued (compared in constant time); *mailbox then names its room
 * (allocated). */
int outlook_sub_check(const config_t *cfg, const char *sub_id, const char *client_state,
                      char **mailbox);
/* EWS: remembers the watermark a push of subscription key ended with;
 * 1 when its PreviousWatermark is not the one remembered (a push was lost
 * in between: read the room). */
int outlook_push_gap(const config_t *cfg, const char *key, const char *previous,
                     const char *last);
/* Queues a pull of mailbox unless one is queued that has not started.
 * QUEUE_OK (*queued 1 when this call queued it) or the queue's error. */
int outlook_want_pull(const config_t *cfg, queue_t *q, const char *mailbox, int *queued);

/* For `tdhook serve`, every outlook.resync: queues the subscriptions'
 * upkeep (which removes them when notifications are off) and a pull of
 * every room, unless they are queued already. */
void outlook_tick(const config_t *cfg, queue_t *q);
/* The subscriptions' upkeep has started (its mark goes). */
void outlook_subs_started(const config_t *cfg);

#endif
