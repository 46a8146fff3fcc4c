/* The SOAP side of the EWS backend (core/clients/ews.c): building every request
 * tdhook sends to Exchange 2013 SP1 and later, and reading the answers,
 * with libxml2.  No transport here, so the unit tests can build each
 * request and validate it against the Exchange 2013 SP1 schemas.
 *
 * Every request is a SOAP 1.1 envelope whose header carries
 * t:RequestServerVersion Version="Exchange2013_SP1" and the impersonation
 * of the room mailbox (t:ExchangeImpersonation/t:ConnectingSID/
 * t:SmtpAddress).  Text from outside (subjects, bodies, ids) is reduced to
 * what XML 1.0 can carry: invalid UTF-8 becomes '?', control characters
 * other than tab and line breaks are dropped. */
#ifndef TDHOOK_EWS_XML_H
#define TDHOOK_EWS_XML_H

#include <stddef.h>
#include <time.h>

#include <libxml/tree.h>

#include "core/clients/exchange.h"

#define EWS_NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define EWS_NS_TYPES "http://schemas.microsoft.com/exchange/services/2006/types"
#define EWS_NS_MESSAGES "http://schemas.microsoft.com/exchange/services/2006/messages"
#define EWS_NS_ERRORS "http://schemas.microsoft.com/exchange/services/2006/errors"
#define EWS_SERVER_VERSION "Exchange2013_SP1"
#define EWS_FIND_MAX 10      /* FindItem by property: more than one is already odd */
#define EWS_VIEW_MAX 1000    /* CalendarView cannot page: the most one view returns */

/* Request builders.  Each returns the whole envelope, allocated (free with
 * xmlFreeDoc()); never NULL (allocation failures exit, as xalloc does).
 * Arguments are borrowed; NULL strings are sent as empty ones. */

/* CreateItem SendMeetingInvitations="SendToNone" of a calendar item in the
 * mailbox's own calendar, carrying the TopdeskReservationId property. */
xmlDocPtr ews_build_create(const char *mailbox, const exchange_booking_t *b);
/* FindItem of the items carrying reservation_id (IsEqualTo restriction). */
xmlDocPtr ews_build_find(const char *mailbox, const char *reservation_id);
/* FindItem with a CalendarView of [start, end), at most EWS_VIEW_MAX. */
xmlDocPtr ews_build_view(const char *mailbox, time_t start, time_t end);
/* GetItem of one item with body, property and parent folder. */
xmlDocPtr ews_build_get(const char *mailbox, const char *id);
/* GetFolder of a distinguished folder ("calendar"), ids only. */
xmlDocPtr ews_build_get_folder(const char *mailbox, const char *distinguished);
/* UpdateItem (SaveOnly, AutoResolve, SendToNone) of subject, body, start
 * and end; change_key may be NULL (then the server decides). */
xmlDocPtr ews_build_update(const char *mailbox, const char *id, const char *change_key,
                           const exchange_booking_t *b);
/* DeleteItem MoveToDeletedItems, SendMeetingCancellations="SendToNone". */
xmlDocPtr ews_build_delete(const char *mailbox, const char *id);

/* The document as UTF-8 text with its XML declaration; allocated, free
 * with free(); *len its length. */
char *ews_serialize(xmlDocPtr doc, size_t *len);

/* One answer from EWS. */
typedef struct {
    xmlDocPtr doc;          /* owned; NULL when the answer was not XML */
    xmlNodePtr message;     /* the first ...ResponseMessage, borrowed from doc; NULL with a fault */
    int fault;              /* a SOAP Fault (usually with HTTP 500) */
    int error;              /* ResponseClass="Error" or a fault */
    char code[96];          /* ResponseCode, or the fault's code without prefix; "" when none */
    char *text;             /* MessageText or faultstring, cleaned and capped; may be NULL */
    long backoff_ms;        /* BackOffMilliseconds from MessageXml, or -1 */
} ews_reply_t;

/* Reads an answer to operation op ("CreateItem").  0 when data is a SOAP
 * envelope holding op's response message or a fault (r filled; free with
 * ews_reply_free()), -1 otherwise (r empty but safe to free).  Documents
 * with a DTD are refused; nothing is fetched from the network. */
int ews_reply_parse(const char *data, size_t len, const char *op, ews_reply_t *r);
void ews_reply_free(ews_reply_t *r);

/* The calendar items of a successful reply (m:Items, or m:RootFolder/
 * t:Items for FindItem) as events; allocated array (free with
 * exchange_events_free()).  Items without an id or readable times are
 * skipped and counted in *skipped (may be NULL).  *complete is 0 when a
 * FindItem reply says IncludesLastItemInRange="false" (may be NULL). */
void ews_reply_events(const ews_reply_t *r, exchange_event_t **events, size_t *n,
                      size_t *skipped, int *complete);
/* The ParentFolderId Id of the first item, or the FolderId Id of the first
 * folder of a GetFolder reply; allocated, NULL when absent. */
char *ews_reply_parent_folder(const ews_reply_t *r);
/* The ItemId of the first item of a reply (CreateItem answers carry only
 * that): 0 with allocated *id and *change_key (NULL when absent), -1 when
 * there is no item id. */
int ews_reply_item_id(const ews_reply_t *r, char **id, char **change_key);
char *ews_reply_folder_id(const ews_reply_t *r);

/* --- the building blocks, for ews_feed.c and ews_push.c ---------------------- */

/* A request's envelope for mailbox (impersonated); *body is soap:Body. */
xmlDocPtr ews_envelope(const char *mailbox, xmlNodePtr *body, xmlNsPtr *t, xmlNsPtr *m);
/* A child element name in ns with text (or NULL); body: keep line breaks. */
xmlNodePtr ews_add(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text);
xmlNodePtr ews_add_text(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text,
                        int body);
void ews_prop(xmlNodePtr node, const char *name, const char *value);
void ews_add_field(xmlNodePtr parent, xmlNsPtr t, const char *uri);
void ews_add_property_uri(xmlNodePtr parent, xmlNsPtr t);
void ews_add_calendar_folder(xmlNodePtr parent, xmlNsPtr t);
/* "2025-03-10T09:00:00Z" into buf (32 bytes). */
void ews_time(time_t when, char *buf, size_t size);
int ews_is(xmlNodePtr n, const char *ns, const char *name);
xmlNodePtr ews_child(xmlNodePtr parent, const char *ns, const char *name);
xmlNodePtr ews_first_element(xmlNodePtr parent);
/* Text content / attribute, allocated or NULL. */
char *ews_content(xmlNodePtr n);
char *ews_attr(xmlNodePtr n, const char *name);
/* An UpdateItem (SaveOnly, SendToNone, ConflictResolution resolution) of
 * id; *updates is its t:Updates, to fill. */
xmlDocPtr ews_update_envelope(const char *mailbox, const char *id, const char *change_key,
                              const char *resolution, xmlNodePtr *updates, xmlNsPtr *t);
/* Fills ev from a t:CalendarItem; -1 (ev empty) without an id or times. */
int ews_item_parse(xmlNodePtr item, exchange_event_t *ev);

/* --- bookings made in Outlook (ews_feed.c) ------------------------------------ */

#define EWS_SYNC_MAX 512       /* MaxChangesReturned: the schema's most */
#define EWS_GET_MAX 10         /* items in one GetItem */

/* SyncFolderItems of mailbox's calendar from state (NULL: the start),
 * ids only. */
xmlDocPtr ews_build_sync(const char *mailbox, const char *state);
/* GetItem of ids[0..n) with what a booking made in Outlook needs: subject,
 * times, organizer, UID, the room's answer, kind, last change, the tag. */
xmlDocPtr ews_build_get_many(const char *mailbox, char *const *ids, size_t n);
/* CreateItem of a t:DeclineItem of id with comment, sent to the organizer. */
xmlDocPtr ews_build_decline(const char *mailbox, const char *id, const char *change_key,
                            const char *comment);
/* UpdateItem setting the TopdeskReservationId property of id. */
xmlDocPtr ews_build_tag(const char *mailbox, const char *id, const char *change_key,
                        const char *reservation_id);
/* Subscribe: push notifications of mailbox's calendar to url, a status
 * heartbeat every frequency minutes (1 to 1440). */
xmlDocPtr ews_build_subscribe(const char *mailbox, const char *url, int frequency);

/* One SyncFolderItems answer: the new state, whether it was the last page,
 * and the changed items: created or updated ids (to read with GetItem)
 * and deleted ids.  Allocated; free with ews_sync_free(). */
typedef struct {
    char *state;
    int last;
    char **changed;
    size_t nchanged;
    char **deleted;
    size_t ndeleted;
} ews_sync_t;
int ews_reply_sync(const ews_reply_t *r, ews_sync_t *out);
void ews_sync_free(ews_sync_t *s);
/* The SubscriptionId of a Subscribe answer; allocated or NULL. */
char *ews_reply_subscription(const ews_reply_t *r);

/* --- push notifications Exchange sends to tdhook (ews_push.c) ----------------- */

/* What one SendNotification says. */
typedef struct {
    char subscription[256];  /* the SubscriptionId, "" when none */
    char previous[256];      /* the first notification's PreviousWatermark */
    char last[256];          /* the Watermark of its last event */
    int events;              /* item events (created, modified, ...) */
    int status;              /* StatusEvents (heartbeats) */
} ews_push_t;
/* 0 when data is a SOAP SendNotification (p filled), -1 otherwise.
 * Documents with a DTD are refused; nothing is fetched. */
int ews_push_parse(const char *data, size_t len, ews_push_t *p);
/* The SOAP answer: SendNotificationResult with OK or Unsubscribe;
 * allocated text. */
char *ews_push_answer(int keep);
/* A heartbeat (StatusEvent) of subscription as Exchange sends it, for
 * doctor's look at the push route; allocated. */
char *ews_push_heartbeat(const char *subscription);
/* A SOAP 1.1 fault (soap:Client) with text; allocated. */
char *ews_push_fault(const char *text);

/* s with control characters removed (line breaks and tabs become one
 * space), invalid UTF-8 as '?', at most max bytes; allocated. */
char *ews_clean(const char *s, size_t max);

#endif
