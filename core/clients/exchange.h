/* Room calendars in Exchange, behind one interface: Microsoft Graph for
 * Exchange Online (core/clients/graph.c), EWS for Exchange 2013 SP1 and later
 * (core/clients/ews.c).  reservations.exchange in the config picks one; nothing
 * outside those files knows which.
 *
 * An appointment "made by tdhook" carries the MAPI named property
 * TopdeskReservationId in PS_PUBLIC_STRINGS (Graph: the extended property
 * "String {00020329-0000-0000-C000-000000000046} Name TopdeskReservationId";
 * EWS: DistinguishedPropertySetId="PublicStrings" PropertyName=
 * "TopdeskReservationId"), whose value is the TOPdesk reservation id.  The
 * same property in both backends keeps every match across a move to
 * Exchange Online.  Times are UTC throughout. */
#ifndef TDHOOK_EXCHANGE_H
#define TDHOOK_EXCHANGE_H

#include <stddef.h>
#include <time.h>
#include "config/config.h"

#define EXCHANGE_OK 0
#define EXCHANGE_ERETRY 1    /* throttled, 5xx, network, server busy: try later */
#define EXCHANGE_EFAIL 2     /* permanent: access denied, bad request, unknown mailbox */
#define EXCHANGE_ENOTFOUND 3 /* no such appointment */
#define EXCHANGE_EAUTH 4     /* the app's credentials are refused */
#define EXCHANGE_EGONE 5     /* a change feed's state is no longer valid: start afresh */

#define EXCHANGE_PROPERTY_NAME "TopdeskReservationId"

typedef struct exchange exchange_t;

/* An appointment as read from a room calendar. */
typedef struct {
    char *id;              /* Graph immutable id or EWS ItemId */
    char *change_key;      /* EWS ChangeKey; NULL with Graph */
    char *reservation_id;  /* the TopdeskReservationId value, NULL: not made by tdhook */
    char *subject;
    char *body;            /* text, may be NULL */
    time_t start, end;
    int cancelled;
    /* read from change feeds (exchange_feed), for bookings made in Outlook */
    int removed;           /* gone from the calendar or the window: only id is set */
    char *ical_uid;        /* the meeting's id in every attendee's copy */
    char *organizer;       /* the organizer's address, NULL when unknown */
    char *organizer_name;
    int is_organizer;      /* the room itself organizes: not a person's booking */
    int declined;          /* the room's own answer is "declined" */
    int recurring;         /* an occurrence, exception or series master */
    time_t modified;       /* last change, -1 when unknown */
} exchange_event_t;

/* A notification subscription on one room calendar. */
typedef struct {
    char *id;
    time_t expires;
} exchange_sub_t;

/* What tdhook wants in a room calendar for one reserved room. */
typedef struct {
    const char *reservation_id;  /* the property value */
    const char *transaction_id;  /* idempotent create (Graph transactionId) */
    const char *subject;
    const char *body;            /* plain text */
    const char *room_name;       /* location display name */
    time_t start, end;
} exchange_booking_t;

/* Opens the backend that cfg->reservations.exchange names.  NULL with
 * *errstr on a configuration problem (e.g. libcurl without NTLM for EWS).
 * cfg is borrowed. */
exchange_t *exchange_open(const config_t *cfg, char **errstr);
void exchange_close(exchange_t *ex);
/* "graph" or "ews". */
const char *exchange_name(const exchange_t *ex);

/* Every function below returns an EXCHANGE_* code; on error *errstr is an
 * allocated message (no secret in it) and, for EXCHANGE_ERETRY,
 * *retry_after_ms is the server's hint or -1.  Events returned are
 * allocated: free with exchange_event_free() / exchange_events_free(). */

/* The appointment by id in mailbox; EXCHANGE_ENOTFOUND when gone. */
int exchange_get(exchange_t *ex, const char *mailbox, const char *id, exchange_event_t **out,
                 char **errstr, long *retry_after_ms);
/* The appointment carrying reservation_id in mailbox, or *out NULL (and
 * EXCHANGE_OK) when there is none.  With several (should not happen), the
 * first; the others are listed in the log. */
int exchange_find(exchange_t *ex, const char *mailbox, const char *reservation_id,
                  exchange_event_t **out, char **errstr, long *retry_after_ms);
/* Every appointment overlapping [start, end) in mailbox, recurrences
 * expanded, with the property read. */
int exchange_view(exchange_t *ex, const char *mailbox, time_t start, time_t end,
                  exchange_event_t **events, size_t *n, char **errstr, long *retry_after_ms);
/* Creates the appointment in the room's own calendar (no invitations). */
int exchange_create(exchange_t *ex, const char *mailbox, const exchange_booking_t *b,
                    exchange_event_t **out, char **errstr, long *retry_after_ms);
/* Sets times, subject and body of an existing appointment to b. */
int exchange_update(exchange_t *ex, const char *mailbox, const exchange_event_t *old,
                    const exchange_booking_t *b, char **errstr, long *retry_after_ms);
/* Removes it from the room calendar (EXCHANGE_OK when it was gone already). */
int exchange_delete(exchange_t *ex, const char *mailbox, const exchange_event_t *ev,
                    char **errstr, long *retry_after_ms);
/* For doctor: the login works and mailbox's calendar can be read. */
int exchange_check(exchange_t *ex, const char *mailbox, char **errstr);

/* --- bookings made in Outlook (reservations.direction: both) ------------- */

/* The room's change feed: what changed in mailbox's calendar since *state
 * (NULL or "": everything in [start, end), the window a fresh feed covers).
 * On EXCHANGE_OK, *events (removed ones flagged) and *new_state (allocated)
 * are set; EXCHANGE_EGONE: state has expired, call again with NULL. */
int exchange_feed(exchange_t *ex, const char *mailbox, const char *state, time_t start,
                  time_t end, exchange_event_t **events, size_t *n, char **new_state,
                  char **errstr, long *retry_after_ms);
/* Many rooms' feeds at once, for a timed resync: for each mailbox[i] with
 * its state[i], idle[i] is set to 1 and new_state[i] (allocated) to the
 * next state when nothing changed there; idle[i] 0 means "read it with
 * exchange_feed()".  Graph asks in $batch requests of 20; a backend
 * without batches leaves every idle[i] 0. */
int exchange_feed_probe(exchange_t *ex, size_t n, char *const *mailbox, char *const *state,
                        char **new_state, int *idle, char **errstr, long *retry_after_ms);
/* Declines the room's copy of a meeting with comment, answering the organizer. */
int exchange_decline(exchange_t *ex, const char *mailbox, const char *id, const char *comment,
                     char **errstr, long *retry_after_ms);
/* Tags the room's copy of a meeting with the reservation id (the property). */
int exchange_tag(exchange_t *ex, const char *mailbox, const char *id, const char *reservation_id,
                 char **errstr, long *retry_after_ms);
/* A subscription on mailbox's calendar that posts to url and lifecycle_url
 * with client_state; out->id allocated.  minutes: the lifetime asked for. */
int exchange_subscribe(exchange_t *ex, const char *mailbox, const char *url,
                       const char *lifecycle_url, const char *client_state, long minutes,
                       exchange_sub_t *out, char **errstr, long *retry_after_ms);
/* Extends it to now + minutes; *expires as the server granted. */
int exchange_renew(exchange_t *ex, const char *id, long minutes, time_t *expires, char **errstr,
                   long *retry_after_ms);
int exchange_reauthorize(exchange_t *ex, const char *id, char **errstr, long *retry_after_ms);
/* EXCHANGE_OK also when it was gone already. */
int exchange_unsubscribe(exchange_t *ex, const char *id, char **errstr, long *retry_after_ms);

void exchange_event_free(exchange_event_t *ev);
void exchange_events_free(exchange_event_t *events, size_t n);

/* --- for the backends --------------------------------------------------- */

typedef struct {
    const char *name;
    void *(*open)(const config_t *cfg, char **errstr);
    void (*close)(void *impl);
    int (*get)(void *impl, const char *mailbox, const char *id, exchange_event_t **out,
               char **errstr, long *retry_after_ms);
    int (*find)(void *impl, const char *mailbox, const char *reservation_id,
                exchange_event_t **out, char **errstr, long *retry_after_ms);
    int (*view)(void *impl, const char *mailbox, time_t start, time_t end,
                exchange_event_t **events, size_t *n, char **errstr, long *retry_after_ms);
    int (*create)(void *impl, const char *mailbox, const exchange_booking_t *b,
                  exchange_event_t **out, char **errstr, long *retry_after_ms);
    int (*update)(void *impl, const char *mailbox, const exchange_event_t *old,
                  const exchange_booking_t *b, char **errstr, long *retry_after_ms);
    int (*del)(void *impl, const char *mailbox, const exchange_event_t *ev, char **errstr,
               long *retry_after_ms);
    int (*check)(void *impl, const char *mailbox, char **errstr);
    /* the Outlook direction; NULL where a backend has none yet */
    int (*feed)(void *impl, const char *mailbox, const char *state, time_t start, time_t end,
                exchange_event_t **events, size_t *n, char **new_state, char **errstr,
                long *retry_after_ms);
    int (*probe)(void *impl, size_t n, char *const *mailbox, char *const *state,
                 char **new_state, int *idle, char **errstr, long *retry_after_ms);
    int (*decline)(void *impl, const char *mailbox, const char *id, const char *comment,
                   char **errstr, long *retry_after_ms);
    int (*tag)(void *impl, const char *mailbox, const char *id, const char *reservation_id,
               char **errstr, long *retry_after_ms);
    int (*subscribe)(void *impl, const char *mailbox, const char *url, const char *lifecycle_url,
                     const char *client_state, long minutes, exchange_sub_t *out, char **errstr,
                     long *retry_after_ms);
    int (*renew)(void *impl, const char *id, long minutes, time_t *expires, char **errstr,
                 long *retry_after_ms);
    int (*reauthorize)(void *impl, const char *id, char **errstr, long *retry_after_ms);
    int (*unsubscribe)(void *impl, const char *id, char **errstr, long *retry_after_ms);
} exchange_ops_t;

extern const exchange_ops_t exchange_graph_ops;   /* core/clients/graph.c */
extern const exchange_ops_t exchange_ews_ops;     /* core/clients/ews.c */

/* Shared helpers: "2025-03-10T09:00:00", "...Z", "...+0000", "...+01:00",
 * with or without fractions, to time_t (UTC); -1 when invalid. */
time_t exchange_parse_time(const char *s);
/* time_t to "2025-03-10T09:00:00" (UTC, no zone); buf of 20+ bytes. */
void exchange_format_time(time_t t, char *buf, size_t size);

#endif
