/* What the files of the EWS backend share.
 *
 *   ews.c          the transport, the retries, the calendar operations
 *   ews_xml.c      building the requests and reading the answers
 *   ews_feed.c     bookings made in Outlook: SyncFolderItems and GetItem,
 *                  DeclineItem, the tag, push subscriptions
 *   ews_push.c     the push requests Exchange sends to tdhook, and their
 *                  answers (SendNotification, SendNotificationResult) */
#ifndef TDHOOK_EWS_PRIVATE_H
#define TDHOOK_EWS_PRIVATE_H

#include <curl/curl.h>
#include <libxml/tree.h>

#include "core/clients/ews_xml.h"
#include "core/clients/exchange.h"

/* Flags of one call. */
#define EWS_ONCE 1      /* not idempotent (CreateItem): retry only what was surely not done */

typedef struct {
    const config_t *cfg;
    CURL *easy;
    char *cal_mailbox;      /* the mailbox whose calendar folder id is cached */
    char *cal_folder;
} ews_t;

/* ews.c */
int ews_bad_args(const char *what, char **errstr);
/* Sends doc (consumed) as operation op for mailbox, with the retries of
 * EWS; reply filled (free with ews_reply_free()) whatever the outcome. */
int ews_call(ews_t *e, const char *op, const char *mailbox, xmlDocPtr doc, int flags,
             ews_reply_t *reply, char **errstr, long *retry_after_ms);
/* The current ChangeKey of item id; *ck allocated. */
int ews_change_key(ews_t *e, const char *mailbox, const char *id, char **ck, char **errstr,
                   long *retry_after_ms);
int ews_calendar_folder(ews_t *e, const char *mailbox, const char **folder, char **errstr,
                        long *retry_after_ms);

/* ews_feed.c: the operations of the Outlook direction */
int ews_feed(void *impl, const char *mailbox, const char *state, time_t start, time_t end,
             exchange_event_t **events, size_t *n, char **new_state, char **errstr,
             long *retry_after_ms);
int ews_decline(void *impl, const char *mailbox, const char *id, const char *comment,
                char **errstr, long *retry_after_ms);
int ews_tag(void *impl, const char *mailbox, const char *id, const char *reservation_id,
            char **errstr, long *retry_after_ms);
int ews_subscribe(void *impl, const char *mailbox, const char *url, const char *lifecycle_url,
                  const char *client_state, long minutes, exchange_sub_t *out, char **errstr,
                  long *retry_after_ms);
int ews_unsubscribe(void *impl, const char *id, char **errstr, long *retry_after_ms);

#endif
