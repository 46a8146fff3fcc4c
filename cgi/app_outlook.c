/* The routes of Exchange's notifications: Graph's change notifications
 * and lifecycle events (/hooks/graph, /hooks/graph/lifecycle) and EWS's
 * push notifications (/hooks/ews/<key>).  No token: each proves itself
 * (clientState, the URL's key); each is stored as a read of its room and
 * answered at once, whatever TOPdesk and Exchange are doing. */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi/app_private.h"
#include "core/clients/ews_xml.h"
#include "core/jobs/outlook.h"
#include "core/util/metrics.h"
#include "core/util/xalloc.h"

/* The value of name in a query string, URL-decoded ("+" is a space);
 * allocated, or NULL when absent. */
static char *
app_query_param(const char *query, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            char *out = xmalloc(len - n), *o = out;

            for (const char *c = p + n + 1; c < p + len; c++) {
                if (*c == '%' && c + 2 < p + len && isxdigit((unsigned char)c[1]) &&
                    isxdigit((unsigned char)c[2])) {
                    char hex[3] = {c[1], c[2], 0};

                    *o++ = (char)strtol(hex, NULL, 16);
                    c += 2;
                } else {
                    *o++ = *c == '+' ? ' ' : *c;
                }
            }
            *o = '\0';
            return out;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The string member key of o, or NULL. */
static const char *
app_member(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

/* Queues what the accepted notifications ask for: a pull of each room, or
 * each lifecycle event.  QUEUE_OK or the first error. */
static int
app_graph_queue(app_t *app, int lifecycle, json_object *items, json_object *rooms)
{
    int rc = QUEUE_OK, queued;

    for (size_t i = 0; lifecycle && rc == QUEUE_OK && i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i), *payload = json_object_new_object();
        char id[QUEUE_ID_MAX];
        int dup;

        json_object_object_add(payload, "subscription",
                               json_object_new_string(app_member(it, "subscriptionId")));
        json_object_object_add(payload, "event", json_object_new_string(
                                                     app_member(it, "lifecycleEvent")));
        rc = queue_enqueue(app->queue, OUTLOOK_KIND_LIFECYCLE, payload, NULL, id, &dup);
        json_object_put(payload);
        if (rc == QUEUE_OK)
            metrics_notification(NOTIFY_LIFECYCLE, 1);
    }
    json_object_object_foreach(rooms, mailbox, count) {
        if (rc != QUEUE_OK)
            break;
        rc = outlook_want_pull(app->cfg, app->queue, mailbox, &queued);
        if (rc == QUEUE_OK && queued)
            metrics_notification(NOTIFY_QUEUED, 1);
        if (rc == QUEUE_OK && json_object_get_int(count) > queued)
            metrics_notification(NOTIFY_COALESCED, (unsigned)(json_object_get_int(count) - queued));
    }
    return rc;
}

/* Graph change notifications and lifecycle events: the validation round,
 * then each notification checked against the clientState tdhook issued
 * for its subscription, and stored as a pull of its room (or the event). */
void
app_graph_notify(app_t *app, const app_request_t *req, app_response_t *res)
{
    int lifecycle = strcmp(req->path, "/hooks/graph/lifecycle") == 0, rc;
    char *token = app_query_param(req->query, "validationToken"), msg[160];
    json_object *body, *value, *items, *rooms;
    unsigned refused = 0;

    if (token) {
        res->status = 200;
        res->content_type = "text/plain; charset=utf-8";
        app_header(res, "X-Content-Type-Options: nosniff");
        buf_puts(&res->body, token);
        free(token);
        metrics_notification(NOTIFY_VALIDATION, 1);
        return;
    }
    if (!outlook_enabled(app->cfg)) {
        app_error(res, 404, "not_found", "bookings made in Outlook are not synced here "
                                         "(reservations.direction is not both)");
        return;
    }
    if (!app->queue) {
        app_error(res, 503, "queue_unavailable", "the job queue cannot be written");
        return;
    }
    if (!(body = app_parse_body(req, res)))
        return;
    if (!json_object_object_get_ex(body, "value", &value) ||
        !json_object_is_type(value, json_type_array) || json_object_array_length(value) == 0) {
        json_object_put(body);
        app_error(res, 400, "invalid_body", "expected a change notification collection: "
                                            "{\"value\":[...]}");
        return;
    }
    items = json_object_new_array();
    rooms = json_object_new_object();
    for (size_t i = 0; i < json_object_array_length(value); i++) {
        json_object *it = json_object_array_get_idx(value, i), *seen;
        char *mailbox = NULL;

        if (lifecycle && !app_member(it, "lifecycleEvent")) {
            refused++;
            continue;
        }
        if (!outlook_sub_check(app->cfg, app_member(it, "subscriptionId"),
                               app_member(it, "clientState"), &mailbox)) {
            refused++;
            continue;
        }
        json_object_array_add(items, json_object_get(it));
        seen = NULL;
        json_object_object_get_ex(rooms, mailbox, &seen);
        json_object_object_add(rooms, mailbox,
                               json_object_new_int(seen ? json_object_get_int(seen) + 1 : 1));
        free(mailbox);
    }
    json_object_put(body);
    if (refused)
        metrics_notification(NOTIFY_FORBIDDEN, refused);
    if (json_object_array_length(items) == 0) {
        app_error(res, 403, "forbidden", "no notification carries a clientState tdhook issued");
    } else if ((rc = app_graph_queue(app, lifecycle, items, rooms)) != QUEUE_OK) {
        metrics_notification(NOTIFY_FAILED, (unsigned)json_object_array_length(items));
        app_hook_answer(res, rc, NULL, 0);
    } else {
        res->status = 202;
        snprintf(msg, sizeof msg, "{\"accepted\":%zu,\"refused\":%u}\n",
                 json_object_array_length(items), refused);
        buf_puts(&res->body, msg);
    }
    json_object_put(items);
    json_object_put(rooms);
}

/* EWS push notifications: the URL's key names the subscription (Exchange
 * does not authenticate its pushes); a push for a key tdhook keeps queues
 * a read of its room and is answered OK, any other is answered
 * Unsubscribe, which ends that subscription.  Not a SendNotification: a
 * SOAP fault with 400. */
void
app_ews_push(app_t *app, const app_request_t *req, app_response_t *res, const char *key)
{
    char *mailbox = NULL, *answer;
    ews_push_t push;
    int keep, gap, queued, rc = QUEUE_OK;

    res->content_type = "text/xml; charset=utf-8";
    if (ews_push_parse(req->body, req->body_len, &push) != 0) {
        answer = ews_push_fault("the body is not a SOAP SendNotification of Exchange Web Services");
        res->status = 400;
        buf_puts(&res->body, answer);
        free(answer);
        metrics_notification(NOTIFY_FAILED, 1);
        return;
    }
    keep = outlook_enabled(app->cfg) &&
           outlook_sub_check(app->cfg, key, push.subscription, &mailbox);
    gap = keep && outlook_push_gap(app->cfg, key, push.previous, push.last);
    if (gap)
        metrics_notification(NOTIFY_GAP, 1);
    if (!keep) {
        metrics_notification(NOTIFY_FORBIDDEN, 1);
    } else if (push.events > 0 || gap) {
        if (!app->queue)
            rc = QUEUE_EIO;
        else
            rc = outlook_want_pull(app->cfg, app->queue, mailbox, &queued);
        if (rc == QUEUE_OK)
            metrics_notification(queued ? NOTIFY_QUEUED : NOTIFY_COALESCED, 1);
    } else {
        metrics_notification(NOTIFY_HEARTBEAT, 1);
    }
    free(mailbox);
    if (rc != QUEUE_OK) {
        /* not stored: Exchange sends it again */
        metrics_notification(NOTIFY_FAILED, 1);
        answer = ews_push_fault("the notification could not be stored; send it again");
        res->status = 503;
        buf_puts(&res->body, answer);
        free(answer);
        return;
    }
    answer = ews_push_answer(keep);
    res->status = 200;
    buf_puts(&res->body, answer);
    free(answer);
}

