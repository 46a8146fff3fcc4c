/* What the files of the reservation sync share: the sync's state for one
 * job, the JSON helpers, and what one file lends another.
 *
 *   reservation.c  one reservation (and reconcile): every room, the rooms it
 *                  left, the match key, the record of booked rooms
 *   calendar.c     one reserved room against its room calendar
 *   rooms.c        room mapping: a TOPdesk location to its room mailbox
 *   notices.c      mails to the people concerned, once per problem */
#ifndef TDHOOK_RESERVATION_PRIVATE_H
#define TDHOOK_RESERVATION_PRIVATE_H

#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "config/config.h"
#include "core/clients/exchange.h"
#include "core/clients/topdesk.h"
#include "core/jobs/reservation.h"
#include "core/queue/queue.h"

/* TOPdesk's external link type must be a non-zero integer, unique per
 * integration; this one is tdhook's. */
#define RSV_LINK_TYPE "8347"
/* ... and this one marks a reservation booked in Outlook: its id is the
 * meeting's iCalUId (Graph) or UID (EWS). */
#define RSV_OUTLOOK_LINK_TYPE "8348"
#define RSV_TEMPLATE_MAX (64 * 1024)
#define RSV_MAX_ROOMS 64

typedef struct {
    char *location_id;
    char *mailbox;       /* NULL: unmapped */
} rsv_room_cache_t;

typedef struct {
    const config_t *cfg;
    queue_t *q;
    topdesk_t *td;
    exchange_t *ex;
    int dry_run;
    rsv_room_cache_t *cache;   /* location -> mailbox, as read this job */
    size_t ncache, acache;
    json_object *notes;   /* notifications sent or skipped */
} rsv_t;

typedef struct {
    char *location_id;
    char *name;
    char *mailbox;
} rsv_mapped_t;

/* reservation.c */
int rsv_open(rsv_t *rs, const config_t *cfg, queue_t *q, int dry_run, char **errstr);
void rsv_close(rsv_t *rs);
int rsv_get_reservation(rsv_t *rs, const char *key, json_object **r, char **errstr, long *retry);
const char *rsv_link(json_object *r, const char *type);
int rsv_from_outlook(json_object *r);
/* The reservation's number, or "?"; borrowed from r. */
const char *rsv_number(json_object *r);
int rsv_code_topdesk(int rc);
json_object *rsv_get(json_object *o, const char *key);
uint64_t rsv_hash(const char *s);
json_object *rsv_path(json_object *o, const char *path);
void rsv_state_record(const config_t *cfg, const char *resid, json_object *state,
                      const char *mailbox);
const char *rsv_str(json_object *o, const char *key);

/* calendar.c */
int rsv_code_exchange(int rc);
int rsv_find(rsv_t *rs, const char *mailbox, const char *known_id, const char *resid,
             exchange_event_t **ev, char **errstr, long *retry);
int rsv_room(rsv_t *rs, json_object *r, json_object *fac, int active, json_object *state,
             json_object *rooms, char **event_id, char **errstr, long *retry);
json_object *rsv_room_result(const char *room, const char *mailbox, const char *action);

/* outlook_apply.c: a reservation booked in Outlook, changed in TOPdesk */
int outlook_from_topdesk(rsv_t *rs, json_object *r, json_object *out, char **errstr,
                         long *retry);

/* rooms.c */
int rsv_mailbox(rsv_t *rs, json_object *loc, char **mailbox, char **errstr, long *retry);
void rsv_mapped_free(rsv_mapped_t *m, size_t n);
int rsv_mapped_rooms(rsv_t *rs, rsv_mapped_t **out, size_t *n, char **errstr, long *retry);

/* notices.c: each mails one problem once (the requester, unless said
 * otherwise, and reservations.notify.to) and notes it in rs->notes. */
/* The room of loc is not mapped to a room mailbox. */
void notice_unmapped(rsv_t *rs, json_object *r, json_object *loc);
/* mailbox has what (another booking) at [start, end). */
void notice_conflict(rsv_t *rs, json_object *r, const char *mailbox, const char *room,
                     time_t start, time_t end, const char *what);
/* Exchange refused to write mailbox's calendar, for good. */
void notice_refused(rsv_t *rs, json_object *r, const char *mailbox, const char *room,
                    const char *error);
/* The requester has no e-mail address (to notify.to only). */
void notice_no_email(rsv_t *rs, json_object *r);

#endif
