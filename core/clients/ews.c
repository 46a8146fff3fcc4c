/* The EWS backend of core/clients/exchange.h: room calendars in on-premises
 * Exchange 2013 SP1 and later, written by impersonating the room mailbox
 * (the room is the organizer, no invitations).  The SOAP requests and
 * answers are built and read in core/clients/ews_xml.c; this file is the transport
 * (libcurl, NTLM or Basic), the retries and the operations.
 *
 * One libcurl easy handle per open backend: NTLM authenticates the
 * connection, so keeping the handle keeps the login for later requests.
 *
 * EWS has no transactionId: a create is made idempotent by the caller's
 * look-up by property before it, so a create is never retried here after
 * it may have reached the server; only answers that say it was not
 * processed (ErrorServerBusy, HTTP 503, no connection) are retried. */
#include "autoconf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "core/clients/ews_private.h"
#include "core/clients/ews_xml.h"
#include "core/clients/exchange.h"
#include "core/clients/transport.h"
#include "core/util/buf.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/xalloc.h"

#define EWS_MAX_BODY (32u * 1024 * 1024)   /* a larger answer fails */
#define EWS_ATTEMPTS 4                     /* the first try and three retries */
#define EWS_BACKOFF_MS 500L                /* doubled on each retry without a hint */
#define EWS_WAIT_MAX_MS 30000L             /* longer BackOffMilliseconds go to the queue */
#define EWS_CONNECT_TIMEOUT_MS 10000L
#define EWS_TIMEOUT_MS 60000L
#define EWS_VIEW_SPLITS 16                 /* a view halved this often: a year to ten minutes */

/* --- small helpers ------------------------------------------------------- */

int
ews_bad_args(const char *what, char **errstr)
{
    *errstr = xasprintf("EWS: %s is missing", what);
    return EXCHANGE_EFAIL;
}

/* --- one transfer -------------------------------------------------------- */

/* POSTs payload for op in mailbox on e's handle; the outcome in r. */
static void
ews_perform(ews_t *e, const char *op, const char *mailbox, const char *payload, size_t len,
            transport_resp_t *r)
{
    struct curl_slist *h = NULL;
    char *anchor = xasprintf("X-AnchorMailbox: %s", mailbox);
    char *action = xasprintf("SOAPAction: \"%s/%s\"", EWS_NS_MESSAGES, op);

    transport_resp_init(r, EWS_MAX_BODY);
    h = transport_header(h, "Content-Type: text/xml; charset=utf-8");
    h = transport_header(h, "Accept: text/xml");
    h = transport_header(h, anchor);
    h = transport_header(h, action);
    h = transport_header(h, "Expect:");
    curl_easy_setopt(e->easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    transport_bind(e->easy, r);
    transport_perform(e->easy, r, PEER_EWS);
    /* everything set above is borrowed: forget it before it is freed */
    curl_easy_setopt(e->easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(h);
    free(anchor);
    free(action);
}

/* Response codes that say "later": the server is busy or broken for now. */
static int
ews_transient(const char *code)
{
    static const char *const codes[] = {
        "ErrorInternalServerError", "ErrorInternalServerTransientError",
        "ErrorTimeoutExpired", "ErrorExceededConnectionCount", "ErrorMailboxStoreUnavailable",
        "ErrorMailboxMoveInProgress", "ErrorConnectionFailed", "ErrorTooManyObjectsOpened",
        "ErrorBatchProcessingStopped", NULL};

    for (size_t i = 0; codes[i]; i++)
        if (strcmp(code, codes[i]) == 0)
            return 1;
    return 0;
}

static int
ews_conflict(const char *code)
{
    return strcmp(code, "ErrorIrresolvableConflict") == 0 ||
           strcmp(code, "ErrorChangeKeyRequiredForWriteOperations") == 0 ||
           strcmp(code, "ErrorStaleObject") == 0;
}

/* Replaces *errstr by a cleaned copy without the password, if it has one. */
static void
ews_scrub(ews_t *e, char **errstr)
{
    const char *pw = e->cfg->ews.password;
    char *clean;

    if (!*errstr)
        return;
    clean = ews_clean(*errstr, 1000);
    free(*errstr);
    *errstr = clean;
    if (pw && *pw && strstr(*errstr, pw)) {
        free(*errstr);
        *errstr = xstrdup("EWS: error message withheld (it contained the password)");
    }
}

/* Sends doc (operation op, impersonating mailbox) and waits out busy
 * answers: ErrorServerBusy after its BackOffMilliseconds (at most 30 s,
 * longer hints become EXCHANGE_ERETRY with *retry_after_ms), transient
 * codes, HTTP 5xx and transfer errors after 0.5 s, 1 s, 2 s; three retries
 * at most.  flags: EWS_ONCE.  reply is filled whenever the answer was a
 * SOAP response or fault, also on error (free with ews_reply_free());
 * EXCHANGE_OK only with ResponseClass Success or Warning. */
int
ews_call(ews_t *e, const char *op, const char *mailbox, xmlDocPtr doc, int flags,
         ews_reply_t *reply, char **errstr, long *retry_after_ms)
{
    size_t len;
    char *payload = ews_serialize(doc, &len), *msg = NULL;
    int attempt = 0, rc = EXCHANGE_OK, once = flags & EWS_ONCE;
    long hint;
    transport_resp_t r;

    memset(reply, 0, sizeof *reply);
    reply->backoff_ms = -1;
    transport_resp_init(&r, 1);
    for (;;) {
        int parsed;

        transport_resp_free(&r);
        ews_reply_free(reply);
        free(msg);
        msg = NULL;
        hint = -1;
        ews_perform(e, op, mailbox, payload, len, &r);
        if (r.cc != CURLE_OK) {
            char why[CURL_ERROR_SIZE + 160];

            if (r.toobig || transport_curl_verdict(r.cc, NULL) == TRANSPORT_NEVER) {
                *errstr = xasprintf("EWS %s for %s: %s", op, mailbox,
                                    r.toobig ? "answer larger than 32 MiB"
                                             : transport_error_text(&r, why, sizeof why));
                rc = EXCHANGE_EFAIL;
                goto out;
            }
            msg = xasprintf("EWS %s for %s: %s", op, mailbox, r.curl_err);
            if (once && !transport_curl_unsent(r.cc))
                goto later;
            goto retry;
        }
        if (r.status == 401) {
            *errstr = xasprintf("EWS refused the login of ews.username %s (HTTP 401, %s auth)",
                                e->cfg->ews.username,
                                e->cfg->ews.auth == EWS_AUTH_BASIC ? "Basic" : "NTLM");
            rc = EXCHANGE_EAUTH;
            goto out;
        }
        parsed = ews_reply_parse(buf_str(&r.body), r.body.len, op, reply) == 0;
        if (!parsed) {
            msg = xasprintf("EWS %s for %s: HTTP %ld%s", op, mailbox, r.status,
                            r.status == 200 ? " with an unreadable answer" : "");
            if (r.status == 503)
                goto retry;
            if (r.status >= 500 || r.status == 200) {
                if (once || r.status == 200)
                    goto later;
                goto retry;
            }
            rc = EXCHANGE_EFAIL;
            if (r.status == 403)
                rc = EXCHANGE_EAUTH;  /* EWS blocked for the account */
            *errstr = msg;
            msg = NULL;
            goto out;
        }
        if (!reply->error) {
            if (r.status == 200) {
                rc = EXCHANGE_OK;
                goto out;
            }
            msg = xasprintf("EWS %s for %s: HTTP %ld with a success answer", op, mailbox,
                            r.status);
            goto later;
        }
        msg = xasprintf("EWS %s for %s: %s%s%s%s", op, mailbox,
                        reply->code[0] ? reply->code : "error", reply->text ? ": " : "",
                        reply->text ? reply->text : "", reply->fault ? " (SOAP fault)" : "");
        if (strcmp(reply->code, "ErrorServerBusy") == 0) {
            hint = reply->backoff_ms;
            goto retry;
        }
        if (ews_transient(reply->code)) {
            if (once)
                goto later;
            goto retry;
        }
        rc = strcmp(reply->code, "ErrorItemNotFound") == 0 ? EXCHANGE_ENOTFOUND : EXCHANGE_EFAIL;
        *errstr = msg;
        msg = NULL;
        goto out;
    retry:
        if (hint > EWS_WAIT_MAX_MS) {
            *errstr = xasprintf("%s (BackOffMilliseconds %ld)", msg, hint);
            *retry_after_ms = hint;
            rc = EXCHANGE_ERETRY;
            goto out;
        }
        if (++attempt >= EWS_ATTEMPTS) {
            *errstr = xasprintf("%s (gave up after %d attempts)", msg, attempt);
            *retry_after_ms = hint;
            rc = EXCHANGE_ERETRY;
            goto out;
        }
        transport_sleep_ms(hint >= 0 ? hint : transport_backoff_ms(EWS_BACKOFF_MS, attempt, 0));
        continue;
    later:
        *errstr = xasprintf("%s (not retried at once: the request may have been processed)",
                            msg);
        rc = EXCHANGE_ERETRY;
        goto out;
    }
out:
    if (rc != EXCHANGE_OK)
        ews_scrub(e, errstr);
    transport_resp_free(&r);
    free(msg);
    free(payload);
    xmlFreeDoc(doc);
    return rc;
}

/* --- the operations ------------------------------------------------------ */

static void *
ews_open(const config_t *cfg, char **errstr)
{
    curl_version_info_data *info;
    ews_t *e;
    int basic = cfg->ews.auth == EWS_AUTH_BASIC;

    if (!cfg->ews.url || !*cfg->ews.url || !cfg->ews.username || !*cfg->ews.username ||
        !cfg->ews.password) {
        *errstr = xstrdup("ews: url, username and password are required");
        return NULL;
    }
    if (strncasecmp(cfg->ews.url, "https://", 8) != 0 &&
        strncasecmp(cfg->ews.url, "http://", 7) != 0) {
        *errstr = xstrdup("ews.url must start with https://");
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    info = curl_version_info(CURLVERSION_NOW);
    if (!basic && !(info->features & CURL_VERSION_NTLM)) {
        curl_global_cleanup();
        *errstr = xstrdup("ews.auth is ntlm, but this libcurl has no NTLM support; install a "
                          "libcurl built with NTLM or set ews.auth: basic over https");
        return NULL;
    }
    if (strncasecmp(cfg->ews.url, "http://", 7) == 0 && !transport_url_is_loopback(cfg->ews.url)) {
        if (basic) {
            curl_global_cleanup();
            *errstr = xstrdup("ews.auth basic would send the password in clear text: use an "
                              "https:// ews.url");
            return NULL;
        }
        log_warn("ews: %s is not https; NTLM over plain HTTP can be relayed", cfg->ews.url);
    }
    xmlInitParser();
    e = xcalloc(1, sizeof *e);
    e->cfg = cfg;
    e->easy = curl_easy_init();
    if (!e->easy) {
        free(e);
        curl_global_cleanup();
        *errstr = xstrdup("ews: curl_easy_init failed");
        return NULL;
    }
    transport_setup(e->easy, "http,https", EWS_CONNECT_TIMEOUT_MS, EWS_TIMEOUT_MS);
    curl_easy_setopt(e->easy, CURLOPT_URL, cfg->ews.url);
    curl_easy_setopt(e->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e->easy, CURLOPT_HTTPAUTH, basic ? CURLAUTH_BASIC : CURLAUTH_NTLM);
    curl_easy_setopt(e->easy, CURLOPT_USERNAME, cfg->ews.username);
    curl_easy_setopt(e->easy, CURLOPT_PASSWORD, cfg->ews.password);
    curl_easy_setopt(e->easy, CURLOPT_POST, 1L);
    return e;
}

static void
ews_close(void *impl)
{
    ews_t *e = impl;

    if (!e)
        return;
    curl_easy_cleanup(e->easy);
    free(e->cal_mailbox);
    free(e->cal_folder);
    free(e);
    curl_global_cleanup();
}

/* The id of mailbox's calendar folder, cached for the last mailbox;
 * borrowed, valid until the next call. */
int
ews_calendar_folder(ews_t *e, const char *mailbox, const char **folder, char **errstr,
                    long *retry_after_ms)
{
    ews_reply_t reply;
    char *id;
    int rc;

    if (e->cal_mailbox && strcasecmp(e->cal_mailbox, mailbox) == 0) {
        *folder = e->cal_folder;
        return EXCHANGE_OK;
    }
    rc = ews_call(e, "GetFolder", mailbox, ews_build_get_folder(mailbox, "calendar"), 0, &reply,
                  errstr, retry_after_ms);
    if (rc == EXCHANGE_ENOTFOUND)
        rc = EXCHANGE_EFAIL;  /* no calendar folder is not "no such appointment" */
    if (rc != EXCHANGE_OK)
        goto out;
    id = ews_reply_folder_id(&reply);
    if (!id) {
        *errstr = xasprintf("EWS GetFolder for %s: the answer has no FolderId", mailbox);
        rc = EXCHANGE_EFAIL;
        goto out;
    }
    free(e->cal_mailbox);
    free(e->cal_folder);
    e->cal_mailbox = xstrdup(mailbox);
    e->cal_folder = id;
    *folder = id;
out:
    ews_reply_free(&reply);
    return rc;
}

static int
ews_get(void *impl, const char *mailbox, const char *id, exchange_event_t **out, char **errstr,
        long *retry_after_ms)
{
    ews_t *e = impl;
    ews_reply_t reply;
    exchange_event_t *evs = NULL;
    const char *cal;
    char *parent = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    if (!id || !*id)
        return ews_bad_args("the item id", errstr);
    rc = ews_call(e, "GetItem", mailbox, ews_build_get(mailbox, id), 0, &reply, errstr,
                  retry_after_ms);
    if (rc != EXCHANGE_OK)
        goto out;
    ews_reply_events(&reply, &evs, &n, NULL, NULL);
    if (n != 1) {
        *errstr = xasprintf("EWS GetItem for %s: the answer is not one calendar item", mailbox);
        rc = EXCHANGE_EFAIL;
        goto out;
    }
    /* DeleteItem moves to Deleted Items, where GetItem still finds it */
    parent = ews_reply_parent_folder(&reply);
    if (parent) {
        rc = ews_calendar_folder(e, mailbox, &cal, errstr, retry_after_ms);
        if (rc != EXCHANGE_OK)
            goto out;
        if (strcmp(parent, cal) != 0) {
            *errstr = xasprintf("EWS GetItem for %s: the item is no longer in the calendar",
                                mailbox);
            rc = EXCHANGE_ENOTFOUND;
            goto out;
        }
    }
    *out = evs;
    evs = NULL;
    n = 0;
out:
    exchange_events_free(evs, n);
    free(parent);
    ews_reply_free(&reply);
    return rc;
}

static int
ews_find(void *impl, const char *mailbox, const char *reservation_id, exchange_event_t **out,
         char **errstr, long *retry_after_ms)
{
    ews_t *e = impl;
    ews_reply_t reply;
    exchange_event_t *evs = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    if (!reservation_id || !*reservation_id)
        return ews_bad_args("the reservation id", errstr);
    rc = ews_call(e, "FindItem", mailbox, ews_build_find(mailbox, reservation_id), 0, &reply,
                  errstr, retry_after_ms);
    if (rc == EXCHANGE_ENOTFOUND)
        rc = EXCHANGE_EFAIL;  /* the folder, not an appointment, is missing */
    if (rc != EXCHANGE_OK)
        goto out;
    ews_reply_events(&reply, &evs, &n, NULL, NULL);
    if (n == 0)
        goto out;
    for (size_t i = 1; i < n; i++) {
        char *clean = ews_clean(evs[i].id, 200);

        log_warn("ews: %s has another appointment for reservation %s: %s (using the first)",
                 mailbox, reservation_id, clean);
        free(clean);
    }
    *out = xmalloc(sizeof **out);
    **out = evs[0];
    if (!(*out)->reservation_id)
        (*out)->reservation_id = xstrdup(reservation_id);
    memset(&evs[0], 0, sizeof evs[0]);
out:
    exchange_events_free(evs, n);
    ews_reply_free(&reply);
    return rc;
}

/* One CalendarView of [start, end) into *evs; a view that holds more
 * than the server gives at once (EWS_VIEW_MAX, or its find limit) is split
 * in two halves, again and again: an appointment over the middle is kept
 * from the first half only. */
static int
ews_view_window(ews_t *e, const char *mailbox, time_t from, time_t start, time_t end, int depth,
                exchange_event_t **evs, size_t *count, size_t *alloc, char **errstr,
                long *retry_after_ms)
{
    ews_reply_t reply;
    exchange_event_t *got = NULL;
    size_t n = 0, skipped = 0;
    int rc, complete = 1;

    rc = ews_call(e, "FindItem", mailbox, ews_build_view(mailbox, start, end), 0, &reply, errstr,
                  retry_after_ms);
    if (rc == EXCHANGE_EFAIL && (strcmp(reply.code, "ErrorExceededFindCountLimit") == 0 ||
                                 strcmp(reply.code, "ErrorCalendarViewRangeTooBig") == 0)) {
        free(*errstr);
        *errstr = NULL;
        rc = EXCHANGE_OK;
        complete = 0;
    } else if (rc == EXCHANGE_ENOTFOUND) {
        rc = EXCHANGE_EFAIL;
    } else if (rc == EXCHANGE_OK) {
        ews_reply_events(&reply, &got, &n, &skipped, &complete);
    }
    ews_reply_free(&reply);
    if (rc != EXCHANGE_OK)
        return rc;
    if (!complete) {
        time_t mid = start + (end - start) / 2;

        exchange_events_free(got, n);
        if (depth >= EWS_VIEW_SPLITS || end - start < 120) {
            char sbuf[32], ebuf[32];

            exchange_format_time(start, sbuf, sizeof sbuf);
            exchange_format_time(end, ebuf, sizeof ebuf);
            *errstr = xasprintf("EWS FindItem for %s: more than %d appointments between %sZ and "
                                "%sZ, even split", mailbox, EWS_VIEW_MAX, sbuf, ebuf);
            return EXCHANGE_EFAIL;
        }
        rc = ews_view_window(e, mailbox, from, start, mid, depth + 1, evs, count, alloc, errstr,
                             retry_after_ms);
        if (rc == EXCHANGE_OK)
            rc = ews_view_window(e, mailbox, from, mid, end, depth + 1, evs, count, alloc, errstr,
                                 retry_after_ms);
        return rc;
    }
    if (skipped)
        log_warn("ews: %zu unreadable item(s) in the calendar of %s skipped", skipped, mailbox);
    for (size_t i = 0; i < n; i++) {
        if (start > from && got[i].start < start) {
            /* started before this half: the half before it has it */
            exchange_event_t *dup = &got[i];

            free(dup->id);
            free(dup->change_key);
            free(dup->reservation_id);
            free(dup->subject);
            free(dup->body);
            free(dup->ical_uid);
            free(dup->organizer);
            free(dup->organizer_name);
            continue;
        }
        if (*count == *alloc) {
            *alloc = *alloc ? 2 * *alloc : 64;
            *evs = xrealloc(*evs, *alloc * sizeof **evs);
        }
        (*evs)[(*count)++] = got[i];
    }
    free(got);
    return EXCHANGE_OK;
}

static int
ews_view(void *impl, const char *mailbox, time_t start, time_t end, exchange_event_t **events,
         size_t *n, char **errstr, long *retry_after_ms)
{
    exchange_event_t *evs = NULL;
    size_t count = 0, alloc = 0;
    int rc;

    *events = NULL;
    *n = 0;
    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    rc = ews_view_window(impl, mailbox, start, start, end, 0, &evs, &count, &alloc, errstr,
                         retry_after_ms);
    if (rc != EXCHANGE_OK) {
        exchange_events_free(evs, count);
        return rc;
    }
    *events = evs;
    *n = count;
    return rc;
}

static int
ews_create(void *impl, const char *mailbox, const exchange_booking_t *b, exchange_event_t **out,
           char **errstr, long *retry_after_ms)
{
    ews_t *e = impl;
    ews_reply_t reply;
    exchange_event_t *ev;
    char *id = NULL, *ck = NULL;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    if (!b || !b->reservation_id || !*b->reservation_id)
        return ews_bad_args("the reservation id", errstr);
    rc = ews_call(e, "CreateItem", mailbox, ews_build_create(mailbox, b), EWS_ONCE, &reply,
                  errstr, retry_after_ms);
    if (rc == EXCHANGE_ENOTFOUND)
        rc = EXCHANGE_EFAIL;
    if (rc != EXCHANGE_OK)
        goto out;
    if (ews_reply_item_id(&reply, &id, &ck) != 0) {
        *errstr = xasprintf("EWS CreateItem for %s: the answer has no ItemId", mailbox);
        rc = EXCHANGE_ERETRY;  /* the caller looks it up by property next time */
        goto out;
    }
    ev = xcalloc(1, sizeof *ev);
    ev->id = id;
    ev->change_key = ck;
    ev->reservation_id = xstrdup(b->reservation_id);
    ev->subject = xstrdup(b->subject ? b->subject : "");
    ev->body = b->body ? xstrdup(b->body) : NULL;
    ev->start = b->start;
    ev->end = b->end;
    *out = ev;
out:
    ews_reply_free(&reply);
    return rc;
}

/* The current ChangeKey of id; allocated into *ck. */
int
ews_change_key(ews_t *e, const char *mailbox, const char *id, char **ck, char **errstr,
               long *retry_after_ms)
{
    exchange_event_t *cur = NULL;
    int rc = ews_get(e, mailbox, id, &cur, errstr, retry_after_ms);

    *ck = NULL;
    if (rc != EXCHANGE_OK)
        return rc;
    if (!cur->change_key) {
        *errstr = xasprintf("EWS GetItem for %s: the answer has no ChangeKey", mailbox);
        exchange_event_free(cur);
        return EXCHANGE_EFAIL;
    }
    *ck = cur->change_key;
    cur->change_key = NULL;
    exchange_event_free(cur);
    return EXCHANGE_OK;
}

static int
ews_update(void *impl, const char *mailbox, const exchange_event_t *old,
           const exchange_booking_t *b, char **errstr, long *retry_after_ms)
{
    ews_t *e = impl;
    ews_reply_t reply;
    char *ck = NULL;
    int rc;

    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    if (!old || !old->id || !*old->id)
        return ews_bad_args("the item id", errstr);
    if (old->change_key && *old->change_key) {
        ck = xstrdup(old->change_key);
    } else {
        rc = ews_change_key(e, mailbox, old->id, &ck, errstr, retry_after_ms);
        if (rc != EXCHANGE_OK)
            return rc;
    }
    for (int refreshed = 0;; refreshed = 1) {
        rc = ews_call(e, "UpdateItem", mailbox, ews_build_update(mailbox, old->id, ck, b), 0,
                      &reply, errstr, retry_after_ms);
        if (rc == EXCHANGE_OK || refreshed || !ews_conflict(reply.code))
            break;
        /* changed since it was read: take the current ChangeKey, once */
        ews_reply_free(&reply);
        free(*errstr);
        *errstr = NULL;
        free(ck);
        rc = ews_change_key(e, mailbox, old->id, &ck, errstr, retry_after_ms);
        if (rc != EXCHANGE_OK)
            break;
    }
    ews_reply_free(&reply);
    free(ck);
    return rc;
}

static int
ews_delete(void *impl, const char *mailbox, const exchange_event_t *ev, char **errstr,
           long *retry_after_ms)
{
    ews_t *e = impl;
    ews_reply_t reply;
    int rc;

    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    if (!ev || !ev->id || !*ev->id)
        return ews_bad_args("the item id", errstr);
    rc = ews_call(e, "DeleteItem", mailbox, ews_build_delete(mailbox, ev->id), 0, &reply, errstr,
                  retry_after_ms);
    if (rc == EXCHANGE_ENOTFOUND) {
        free(*errstr);  /* gone already: that is what was asked */
        *errstr = NULL;
        rc = EXCHANGE_OK;
    }
    ews_reply_free(&reply);
    return rc;
}

static int
ews_check(void *impl, const char *mailbox, char **errstr)
{
    ews_t *e = impl;
    ews_reply_t reply;
    time_t now = time(NULL);
    long ra = -1;
    char *why;
    int rc;

    if (!mailbox || !*mailbox)
        return ews_bad_args("the mailbox", errstr);
    rc = ews_call(e, "FindItem", mailbox, ews_build_view(mailbox, now, now + 3600), 0, &reply,
                  errstr, &ra);
    if (rc == EXCHANGE_OK || !*errstr)
        goto out;
    why = *errstr;
    if (strcmp(reply.code, "ErrorImpersonateUserDenied") == 0 ||
        strcmp(reply.code, "ErrorAccessDenied") == 0)
        *errstr = xasprintf("%s may not impersonate %s: assign it the ApplicationImpersonation "
                            "role with a management scope that includes the room mailboxes (%s)",
                            e->cfg->ews.username, mailbox, why);
    else if (strcmp(reply.code, "ErrorNonExistentMailbox") == 0)
        *errstr = xasprintf("mailbox %s not found in Exchange; check the room mapping (%s)",
                            mailbox, why);
    else if (rc == EXCHANGE_EAUTH)
        *errstr = xasprintf("%s; check ews.username (DOMAIN\\user), the password and ews.auth",
                            why);
    else
        why = NULL;
    free(why);
    if (rc != EXCHANGE_OK && rc != EXCHANGE_EAUTH && rc != EXCHANGE_ERETRY &&
        rc != EXCHANGE_EFAIL)
        rc = EXCHANGE_EFAIL;
    ews_scrub(e, errstr);
out:
    ews_reply_free(&reply);
    return rc;
}

const exchange_ops_t exchange_ews_ops = {
    .name = "ews",
    .open = ews_open,
    .close = ews_close,
    .get = ews_get,
    .find = ews_find,
    .view = ews_view,
    .create = ews_create,
    .update = ews_update,
    .del = ews_delete,
    .check = ews_check,
    .feed = ews_feed,
    .decline = ews_decline,
    .tag = ews_tag,
    .subscribe = ews_subscribe,
    .unsubscribe = ews_unsubscribe,
};
