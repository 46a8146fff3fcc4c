/* Bookings made in Outlook, on EWS: the room calendar's change feed
 * (SyncFolderItems with a stored SyncState, then GetItem of what changed),
 * declining and tagging the room's copy of a meeting, and push
 * subscriptions.  Requests are built here with the blocks of ews_xml.c and
 * sent with ews_call(); every one validates against the Exchange 2013 SP1
 * schemas (tests/unit/test_ews.c).
 *
 * SyncFolderItems reports single items and recurring masters, never
 * occurrences; those are left to the recurring series (they come back with
 * CalendarItemType other than Single and are skipped by the pull). */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clients/ews_private.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define EWS_FEED_MAX_ROUNDS 1000   /* 512,000 changes in one read is not a room */

/* --- requests ---------------------------------------------------------------- */

xmlDocPtr
ews_build_sync(const char *mailbox, const char *state)
{
    xmlNodePtr body, op, shape;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);
    char max[16];

    op = ews_add(body, m, "SyncFolderItems", NULL);
    shape = ews_add(op, m, "ItemShape", NULL);
    ews_add(shape, t, "BaseShape", "IdOnly");
    ews_add_calendar_folder(ews_add(op, m, "SyncFolderId", NULL), t);
    if (state && *state)
        ews_add(op, m, "SyncState", state);
    snprintf(max, sizeof max, "%d", EWS_SYNC_MAX);
    ews_add(op, m, "MaxChangesReturned", max);
    ews_add(op, m, "SyncScope", "NormalItems");
    return doc;
}

xmlDocPtr
ews_build_get_many(const char *mailbox, char *const *ids, size_t n)
{
    static const char *const fields[] = {
        "item:Subject", "item:LastModifiedTime", "calendar:Start", "calendar:End",
        "calendar:IsCancelled", "calendar:CalendarItemType", "calendar:MyResponseType",
        "calendar:Organizer", "calendar:UID", NULL};
    xmlNodePtr body, op, shape, props, list;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);

    op = ews_add(body, m, "GetItem", NULL);
    shape = ews_add(op, m, "ItemShape", NULL);
    ews_add(shape, t, "BaseShape", "IdOnly");
    props = ews_add(shape, t, "AdditionalProperties", NULL);
    for (size_t i = 0; fields[i]; i++)
        ews_add_field(props, t, fields[i]);
    ews_add_property_uri(props, t);
    list = ews_add(op, m, "ItemIds", NULL);
    for (size_t i = 0; i < n; i++)
        ews_prop(ews_add(list, t, "ItemId", NULL), "Id", ids[i] ? ids[i] : "");
    return doc;
}

xmlDocPtr
ews_build_decline(const char *mailbox, const char *id, const char *change_key,
                  const char *comment)
{
    xmlNodePtr body, op, item, text, ref;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);

    op = ews_add(body, m, "CreateItem", NULL);
    ews_prop(op, "MessageDisposition", "SendAndSaveCopy");
    item = ews_add(ews_add(op, m, "Items", NULL), t, "DeclineItem", NULL);
    text = ews_add_text(item, t, "Body", comment ? comment : "", 1);
    ews_prop(text, "BodyType", "Text");
    ref = ews_add(item, t, "ReferenceItemId", NULL);
    ews_prop(ref, "Id", id ? id : "");
    if (change_key && *change_key)
        ews_prop(ref, "ChangeKey", change_key);
    return doc;
}

xmlDocPtr
ews_build_tag(const char *mailbox, const char *id, const char *change_key,
              const char *reservation_id)
{
    xmlNodePtr updates, set, ext;
    xmlNsPtr t;
    xmlDocPtr doc = ews_update_envelope(mailbox, id, change_key, "AlwaysOverwrite", &updates, &t);

    set = ews_add(updates, t, "SetItemField", NULL);
    ews_add_property_uri(set, t);
    ext = ews_add(ews_add(set, t, "CalendarItem", NULL), t, "ExtendedProperty", NULL);
    ews_add_property_uri(ext, t);
    ews_add_text(ext, t, "Value", reservation_id, 0);
    return doc;
}

xmlDocPtr
ews_build_subscribe(const char *mailbox, const char *url, int frequency)
{
    static const char *const events[] = {"CreatedEvent", "ModifiedEvent", "DeletedEvent",
                                         "MovedEvent", NULL};
    xmlNodePtr body, req, types;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);
    char freq[16];

    req = ews_add(ews_add(body, m, "Subscribe", NULL), m, "PushSubscriptionRequest", NULL);
    ews_add_calendar_folder(ews_add(req, t, "FolderIds", NULL), t);
    types = ews_add(req, t, "EventTypes", NULL);
    for (size_t i = 0; events[i]; i++)
        ews_add(types, t, "EventType", events[i]);
    snprintf(freq, sizeof freq, "%d", frequency < 1 ? 1 : frequency > 1440 ? 1440 : frequency);
    ews_add(req, t, "StatusFrequency", freq);
    ews_add_text(req, t, "URL", url, 0);
    return doc;
}

/* --- answers ------------------------------------------------------------------- */

static void
ews_sync_push(char ***list, size_t *n, char *id)
{
    if (!id || !*id) {
        free(id);
        return;
    }
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = id;
}

int
ews_reply_sync(const ews_reply_t *r, ews_sync_t *out)
{
    xmlNodePtr changes;
    char *last;

    memset(out, 0, sizeof *out);
    if (!r->message || r->error)
        return -1;
    out->state = ews_content(ews_child(r->message, EWS_NS_MESSAGES, "SyncState"));
    last = ews_content(ews_child(r->message, EWS_NS_MESSAGES, "IncludesLastItemInRange"));
    out->last = !last || strcmp(last, "false") != 0;
    free(last);
    changes = ews_child(r->message, EWS_NS_MESSAGES, "Changes");
    for (xmlNodePtr c = changes ? changes->children : NULL; c; c = c->next) {
        xmlNodePtr item;

        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (ews_is(c, EWS_NS_TYPES, "Delete")) {
            ews_sync_push(&out->deleted, &out->ndeleted,
                          ews_attr(ews_child(c, EWS_NS_TYPES, "ItemId"), "Id"));
        } else if (ews_is(c, EWS_NS_TYPES, "Create") || ews_is(c, EWS_NS_TYPES, "Update")) {
            item = ews_first_element(c);
            ews_sync_push(&out->changed, &out->nchanged,
                          ews_attr(item ? ews_child(item, EWS_NS_TYPES, "ItemId") : NULL, "Id"));
        }
    }
    if (!out->state || !*out->state) {
        ews_sync_free(out);
        return -1;
    }
    return 0;
}

void
ews_sync_free(ews_sync_t *s)
{
    for (size_t i = 0; i < s->nchanged; i++)
        free(s->changed[i]);
    for (size_t i = 0; i < s->ndeleted; i++)
        free(s->deleted[i]);
    free(s->changed);
    free(s->deleted);
    free(s->state);
    memset(s, 0, sizeof *s);
}

char *
ews_reply_subscription(const ews_reply_t *r)
{
    if (!r->message || r->error)
        return NULL;
    return ews_content(ews_child(r->message, EWS_NS_MESSAGES, "SubscriptionId"));
}

/* --- the operations --------------------------------------------------------------- */

static exchange_event_t *
ews_feed_slot(exchange_event_t **evs, size_t *count, size_t *alloc)
{
    if (*count == *alloc) {
        *alloc = *alloc ? 2 * *alloc : 16;
        *evs = xrealloc(*evs, *alloc * sizeof **evs);
    }
    memset(&(*evs)[*count], 0, sizeof **evs);
    (*evs)[*count].modified = -1;
    return &(*evs)[(*count)++];
}

/* Frees what ev holds, keeping the slot. */
static void
ews_event_clear(exchange_event_t *ev)
{
    free(ev->id);
    free(ev->change_key);
    free(ev->reservation_id);
    free(ev->subject);
    free(ev->body);
    free(ev->ical_uid);
    free(ev->organizer);
    free(ev->organizer_name);
    memset(ev, 0, sizeof *ev);
    ev->modified = -1;
}

static void
ews_feed_removed(exchange_event_t **evs, size_t *count, size_t *alloc, const char *id)
{
    exchange_event_t *ev = ews_feed_slot(evs, count, alloc);

    ev->id = xstrdup(id);
    ev->removed = 1;
}

/* GetItem of ids[0..n): each answer message in order; an item that is gone
 * meanwhile, or outside [start, end), counts as removed. */
static int
ews_feed_get(ews_t *e, const char *mailbox, char *const *ids, size_t n, time_t start,
             time_t end, exchange_event_t **evs, size_t *count, size_t *alloc, char **errstr,
             long *retry_after_ms)
{
    ews_reply_t reply;
    xmlNodePtr msg;
    size_t k = 0;
    int rc = ews_call(e, "GetItem", mailbox, ews_build_get_many(mailbox, ids, n), 0, &reply,
                      errstr, retry_after_ms);

    if (rc == EXCHANGE_ENOTFOUND && n > 1) {
        /* the first is gone: the others one by one */
        free(*errstr);
        *errstr = NULL;
        ews_reply_free(&reply);
        for (size_t i = 0; i < n && rc != EXCHANGE_ERETRY; i++) {
            rc = ews_feed_get(e, mailbox, ids + i, 1, start, end, evs, count, alloc, errstr,
                              retry_after_ms);
            if (rc == EXCHANGE_OK)
                continue;
            if (rc == EXCHANGE_ERETRY || rc == EXCHANGE_EAUTH)
                return rc;
            free(*errstr);
            *errstr = NULL;
        }
        return rc == EXCHANGE_ERETRY ? rc : EXCHANGE_OK;
    }
    if (rc == EXCHANGE_ENOTFOUND) {
        free(*errstr);
        *errstr = NULL;
        ews_feed_removed(evs, count, alloc, ids[0]);
        ews_reply_free(&reply);
        return EXCHANGE_OK;
    }
    for (msg = rc == EXCHANGE_OK ? reply.message : NULL; msg && k < n; msg = msg->next) {
        char *cls;
        xmlNodePtr item;
        exchange_event_t *ev;

        if (msg->type != XML_ELEMENT_NODE)
            continue;
        cls = ews_attr(msg, "ResponseClass");
        item = ews_first_element(ews_child(msg, EWS_NS_MESSAGES, "Items"));
        if (!cls || strcmp(cls, "Success") != 0 || !item) {
            ews_feed_removed(evs, count, alloc, ids[k]);   /* gone meanwhile */
        } else if (ews_is(item, EWS_NS_TYPES, "CalendarItem")) {
            ev = ews_feed_slot(evs, count, alloc);
            if (ews_item_parse(item, ev) != 0) {
                (*count)--;
            } else if (ev->end <= start || ev->start >= end) {
                /* out of the window: removed, as Graph's delta says it */
                char *id = ev->id;

                ev->id = NULL;
                ews_event_clear(ev);
                ev->id = id;
                ev->removed = 1;
            }
        }
        free(cls);
        k++;
    }
    ews_reply_free(&reply);
    return rc;
}

int
ews_feed(void *impl, const char *mailbox, const char *state, time_t start, time_t end,
         exchange_event_t **events, size_t *n, char **new_state, char **errstr,
         long *retry_after_ms)
{
    ews_t *e = impl;
    exchange_event_t *evs = NULL;
    size_t count = 0, alloc = 0;
    char *cur = state ? xstrdup(state) : NULL;
    int rc = EXCHANGE_OK;

    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    for (int round = 0; rc == EXCHANGE_OK; round++) {
        ews_reply_t reply;
        ews_sync_t sync;

        if (round >= EWS_FEED_MAX_ROUNDS) {
            *errstr = xasprintf("EWS SyncFolderItems for %s: more than %d rounds", mailbox, round);
            rc = EXCHANGE_EFAIL;
            break;
        }
        rc = ews_call(e, "SyncFolderItems", mailbox, ews_build_sync(mailbox, cur), 0, &reply,
                      errstr, retry_after_ms);
        if (rc != EXCHANGE_OK) {
            if (strcmp(reply.code, "ErrorInvalidSyncStateData") == 0 ||
                strcmp(reply.code, "ErrorInvalidSyncState") == 0)
                rc = EXCHANGE_EGONE;
            ews_reply_free(&reply);
            break;
        }
        if (ews_reply_sync(&reply, &sync) != 0) {
            *errstr = xasprintf("EWS SyncFolderItems for %s: the answer has no SyncState",
                                mailbox);
            rc = EXCHANGE_EFAIL;
            ews_reply_free(&reply);
            break;
        }
        ews_reply_free(&reply);
        for (size_t i = 0; i < sync.ndeleted; i++)
            ews_feed_removed(&evs, &count, &alloc, sync.deleted[i]);
        for (size_t i = 0; i < sync.nchanged && rc == EXCHANGE_OK; i += EWS_GET_MAX)
            rc = ews_feed_get(e, mailbox, sync.changed + i,
                              sync.nchanged - i < EWS_GET_MAX ? sync.nchanged - i : EWS_GET_MAX,
                              start, end, &evs, &count, &alloc, errstr, retry_after_ms);
        free(cur);
        cur = sync.state;
        sync.state = NULL;
        if (rc == EXCHANGE_OK && sync.last) {
            ews_sync_free(&sync);
            break;
        }
        ews_sync_free(&sync);
    }
    if (rc == EXCHANGE_OK) {
        *events = evs;
        *n = count;
        *new_state = cur;
    } else {
        exchange_events_free(evs, count);
        free(cur);
    }
    return rc;
}

int
ews_decline(void *impl, const char *mailbox, const char *id, const char *comment,
            char **errstr, long *retry_after_ms)
{
    ews_reply_t reply;
    int rc;

    if (!mailbox || !*mailbox || !id || !*id)
        return ews_bad_args("the mailbox or item id", errstr);
    rc = ews_call(impl, "CreateItem", mailbox, ews_build_decline(mailbox, id, NULL, comment),
                  EWS_ONCE, &reply, errstr, retry_after_ms);
    ews_reply_free(&reply);
    return rc;
}

int
ews_tag(void *impl, const char *mailbox, const char *id, const char *reservation_id,
        char **errstr, long *retry_after_ms)
{
    ews_reply_t reply;
    char *ck = NULL;
    int rc;

    if (!mailbox || !*mailbox || !id || !*id)
        return ews_bad_args("the mailbox or item id", errstr);
    rc = ews_change_key(impl, mailbox, id, &ck, errstr, retry_after_ms);
    if (rc != EXCHANGE_OK)
        return rc;
    rc = ews_call(impl, "UpdateItem", mailbox, ews_build_tag(mailbox, id, ck, reservation_id), 0,
                  &reply, errstr, retry_after_ms);
    ews_reply_free(&reply);
    free(ck);
    return rc;
}

/* A push subscription: url is where Exchange posts, minutes the status
 * heartbeat; lifecycle_url and client_state have no EWS counterpart. */
int
ews_subscribe(void *impl, const char *mailbox, const char *url, const char *lifecycle_url,
              const char *client_state, long minutes, exchange_sub_t *out, char **errstr,
              long *retry_after_ms)
{
    ews_reply_t reply;
    int rc;

    (void)lifecycle_url;
    (void)client_state;
    if (!mailbox || !*mailbox || !url)
        return ews_bad_args("the mailbox or push URL", errstr);
    rc = ews_call(impl, "Subscribe", mailbox, ews_build_subscribe(mailbox, url, (int)minutes), 0,
                  &reply, errstr, retry_after_ms);
    if (rc == EXCHANGE_OK && !(out->id = ews_reply_subscription(&reply))) {
        *errstr = xasprintf("EWS Subscribe for %s: the answer has no SubscriptionId", mailbox);
        rc = EXCHANGE_EFAIL;
    }
    out->expires = 0;   /* push subscriptions do not expire; their heartbeat tells */
    ews_reply_free(&reply);
    return rc;
}

/* A push subscription ends when tdhook answers its next notification with
 * Unsubscribe (the Unsubscribe operation is for pull and streaming ones);
 * forgetting its key is all there is to do here. */
int
ews_unsubscribe(void *impl, const char *id, char **errstr, long *retry_after_ms)
{
    (void)impl;
    (void)id;
    (void)errstr;
    (void)retry_after_ms;
    return EXCHANGE_OK;
}
