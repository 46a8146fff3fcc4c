/* What the files of the Outlook → TOPdesk direction share.
 *
 *   outlook.c        a pull: each room's change feed read and applied, the
 *                    meetings that left a room, the edge's helpers
 *   outlook_apply.c  one meeting from Outlook against its TOPdesk reservation
 *   outlook_topdesk.c  an operator's change in TOPdesk told back; the mails
 *   outlook_store.c  what is kept in state_dir/outlook: rooms (feed state,
 *                    subscription), meetings, the subscription index
 *   outlook_subs.c   the notification subscriptions: list, sync, lifecycle
 *
 * state_dir/outlook/
 *   rooms/<h>.json     one room: mailbox, delta link, subscription (with its
 *                      clientState, a secret), the room's events -> meeting
 *   rooms/<h>.lock     one reader of a room's feed at a time (flock)
 *   meetings/<h>.json  one meeting (its iCalUId): room, event, reservation,
 *                      what was last applied from Outlook, what TOPdesk held
 *   subs/<id>          subscription id -> mailbox and clientState, for the
 *                      notification route
 *   pending/<h>        a pull of that room is queued and has not started
 *   mapping.json       the mapped rooms, as last read from TOPdesk
 * (<h>: a 64-bit hash of the mailbox or iCalUId, in hex.) */
#ifndef TDHOOK_OUTLOOK_PRIVATE_H
#define TDHOOK_OUTLOOK_PRIVATE_H

#include <json-c/json.h>

#include "core/jobs/outlook.h"
#include "core/jobs/texts.h"
#include "core/jobs/reservation_private.h"

/* Meeting states. */
#define MEETING_ACTIVE "active"          /* a reservation holds it */
#define MEETING_LEAVING "leaving"        /* its room's copy is gone; another room may hold it */
#define MEETING_CANCELLED "cancelled"    /* cancelled in Outlook, and so in TOPdesk */
#define MEETING_REFUSED "refused"        /* TOPdesk refused it */
#define MEETING_TD_CANCELLED "td_cancelled"  /* an operator cancelled it in TOPdesk */

/* One pull's state across rooms. */
typedef struct {
    rsv_t *rs;
    rsv_mapped_t *rooms;
    size_t nrooms;
    json_object *out;       /* the result: rooms, meetings with their actions */
    json_object *leaving;   /* iCalUId -> mailbox: copies gone this pull */
    char *requester_id;     /* the fallback requester, once looked up */
    char *reason_body;      /* the cancellation reason as JSON, once made */
    time_t settle_until;    /* > 0: an event is too fresh; pull again then */
} pull_t;

/* What TOPdesk holds of a reservation, as a meeting's file keeps it. */
typedef struct {
    const char *status;
    time_t start, end;
    const char *location;
} td_state_t;

/* outlook_apply.c: a meeting's file and TOPdesk's state */
const char *meeting_str(json_object *m, const char *key);
time_t meeting_time(json_object *m, const char *key);
void meeting_set(json_object *m, const char *key, const char *v);
void meeting_set_td(json_object *m, const td_state_t *td);
void td_state_of(json_object *r, td_state_t *td);
int td_status_live(const char *status);

/* outlook_topdesk.c: queues a mail to the meeting's organizer, the texts
 * filled with the facts (name, value pairs, NULL-ended) and {when},
 * {subject}, {room} of the meeting. */
void mail_organizer(pull_t *p, json_object *m, text_id_t subject, text_id_t body, ...);

/* outlook_store.c */
char *store_path(const config_t *cfg, const char *dir, const char *key, const char *ext);
int store_lock(const config_t *cfg, const char *dir, const char *key, int wait);
json_object *store_load(const config_t *cfg, const char *dir, const char *key);
int store_save(const config_t *cfg, const char *dir, const char *key, json_object *o);
void store_remove(const config_t *cfg, const char *dir, const char *key);
int store_mapping(pull_t *p, int fresh, char **errstr, long *retry);
const rsv_mapped_t *store_room(const pull_t *p, const char *mailbox);
const rsv_mapped_t *store_room_at(const pull_t *p, const char *location_id);
int store_sub_index(const config_t *cfg, const char *sub_id, const char *mailbox,
                    const char *client_state);
int store_id_ok(const char *s);

/* outlook_apply.c */
int apply_live(pull_t *p, const rsv_mapped_t *room, const exchange_event_t *ev, char **errstr,
               long *retry);
int apply_gone(pull_t *p, const rsv_mapped_t *room, const char *ical, char **errstr,
               long *retry);
int apply_left(pull_t *p, const char *ical, const char *mailbox, char **errstr, long *retry);
void apply_note(pull_t *p, const char *ical, const char *room, const char *action);

/* outlook.c */
int pull_room(pull_t *p, const rsv_mapped_t *room, int full, char **errstr, long *retry);

#endif
