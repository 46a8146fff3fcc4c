/* Bookings made in Outlook, on Graph: the room's calendarView/delta feed,
 * declining and tagging the room's copy of a meeting, and the change
 * notification subscriptions on /users/{room}/events.
 *
 * The feed's state is the @odata.deltaLink Graph gave last; a fresh feed
 * starts with the window [start, end).  A 410 (or SyncStateNotFound) says
 * the state is gone: EXCHANGE_EGONE, and the caller starts afresh. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clients/graph_private.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define GRAPH_FEED_MAX_PAGES 1000       /* 100,000 changes in one round is not a room */
#define GRAPH_SUB_FALLBACK_MINUTES 4200L /* older documented maximum */
#define GRAPH_BATCH_MAX 20               /* requests in one $batch, Graph's limit */

/* "2026-12-08T09:00:00Z" of t; buf of 24+ bytes. */
static void
graph_zulu(time_t t, char *buf, size_t size)
{
    exchange_format_time(t, buf, size - 1);
    strncat(buf, "Z", size - strlen(buf) - 1);
}

/* 1 when link points into the configured Graph (the token goes with it). */
static int
graph_link_ok(graph_t *g, const char *link)
{
    size_t n = strlen(g->cfg->graph.graph_url);

    return link && strncmp(link, g->cfg->graph.graph_url, n) == 0 &&
           (link[n] == '/' || link[n] == '?');
}

/* Appends one feed entry to *evs; -1 when it is not readable. */
static int
graph_feed_entry(graph_t *g, json_object *o, exchange_event_t **evs, size_t *count,
                 size_t *alloc)
{
    json_object *removed;
    exchange_event_t *ev;
    const char *id = graph_json_str(o, "id");

    if (*count == *alloc) {
        *alloc = *alloc ? 2 * *alloc : 16;
        *evs = xrealloc(*evs, *alloc * sizeof **evs);
    }
    ev = &(*evs)[*count];
    if (json_object_object_get_ex(o, "@removed", &removed)) {
        if (!id || !*id)
            return -1;
        memset(ev, 0, sizeof *ev);
        ev->id = xstrdup(id);
        ev->removed = 1;
        ev->modified = -1;
    } else if (graph_event_parse(g, o, ev) != 0) {
        return -1;
    }
    (*count)++;
    return 0;
}

int
graph_feed(void *impl, const char *mailbox, const char *state, time_t start, time_t end,
           exchange_event_t **events, size_t *n, char **new_state, char **errstr,
           long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res = {0};
    exchange_event_t *evs = NULL;
    size_t count = 0, alloc = 0;
    char *url, *shown;
    int rc = EXCHANGE_OK, page;

    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (state) {
        if (!graph_link_ok(g, state)) {
            *errstr = xasprintf("Graph: the stored delta link of %s is not under %s", mailbox,
                                g->cfg->graph.graph_url);
            return EXCHANGE_EGONE;
        }
        url = xstrdup(state);
    } else {
        char zs[32], ze[32], *es, *ee, *rest;

        graph_zulu(start, zs, sizeof zs);
        graph_zulu(end, ze, sizeof ze);
        es = graph_escape(g, zs);
        ee = graph_escape(g, ze);
        rest = xasprintf("/calendarView/delta?startDateTime=%s&endDateTime=%s", es, ee);
        url = graph_url(g, mailbox, rest);
        free(es);
        free(ee);
        free(rest);
    }
    shown = xasprintf("/users/%s/calendarView/delta", mailbox);
    for (page = 0;; page++) {
        json_object *list, *link;
        size_t len;

        if (page >= GRAPH_FEED_MAX_PAGES) {
            *errstr = xasprintf("Graph GET %s: more than %d pages", shown, page);
            rc = EXCHANGE_EFAIL;
            break;
        }
        rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, retry_after_ms);
        if (rc != EXCHANGE_OK) {
            if (res.status == 410 || strcasecmp(res.code, "SyncStateNotFound") == 0 ||
                strcasecmp(res.code, "SyncStateInvalid") == 0)
                rc = EXCHANGE_EGONE;
            break;
        }
        if (!res.json || !json_object_object_get_ex(res.json, "value", &list) ||
            !json_object_is_type(list, json_type_array)) {
            *errstr = xasprintf("Graph GET %s: the answer has no event list", shown);
            rc = EXCHANGE_EFAIL;
            break;
        }
        len = json_object_array_length(list);
        for (size_t i = 0; i < len && rc == EXCHANGE_OK; i++)
            if (graph_feed_entry(g, json_object_array_get_idx(list, i), &evs, &count, &alloc)) {
                *errstr = xasprintf("Graph GET %s: entry %zu of page %d is not readable", shown,
                                    i + 1, page + 1);
                rc = EXCHANGE_EFAIL;
            }
        if (rc != EXCHANGE_OK)
            break;
        if (json_object_object_get_ex(res.json, "@odata.deltaLink", &link) &&
            json_object_is_type(link, json_type_string)) {
            if (!graph_link_ok(g, json_object_get_string(link))) {
                *errstr = xasprintf("Graph GET %s: @odata.deltaLink is outside %s", shown,
                                    g->cfg->graph.graph_url);
                rc = EXCHANGE_EFAIL;
            } else {
                *new_state = xstrdup(json_object_get_string(link));
            }
            break;
        }
        if (!json_object_object_get_ex(res.json, "@odata.nextLink", &link) ||
            !json_object_is_type(link, json_type_string) ||
            !graph_link_ok(g, json_object_get_string(link))) {
            *errstr = xasprintf("Graph GET %s: neither a next link nor a delta link under %s",
                                shown, g->cfg->graph.graph_url);
            rc = EXCHANGE_EFAIL;
            break;
        }
        free(url);
        url = xstrdup(json_object_get_string(link));
        json_object_put(res.json);
        res.json = NULL;
    }
    if (res.json)
        json_object_put(res.json);
    if (rc == EXCHANGE_OK) {
        *events = evs;
        *n = count;
    } else {
        exchange_events_free(evs, count);
    }
    free(url);
    free(shown);
    return rc;
}

/* One $batch of at most GRAPH_BATCH_MAX delta rounds: idle[i] when the
 * answer is an empty page with the next delta link. */
static int
graph_probe_batch(graph_t *g, size_t n, char *const *mailbox, char *const *state,
                  char **new_state, int *idle, char **errstr, long *retry_after_ms)
{
    size_t base = strlen(g->cfg->graph.graph_url);
    json_object *req = json_object_new_object(), *list = json_object_new_array(), *resps;
    graph_result_t res;
    char *url = xasprintf("%s/$batch", g->cfg->graph.graph_url);
    int rc;

    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object(), *h = json_object_new_object();
        char id[24];

        snprintf(id, sizeof id, "%zu", i);
        json_object_object_add(r, "id", json_object_new_string(id));
        json_object_object_add(r, "method", json_object_new_string("GET"));
        json_object_object_add(r, "url", json_object_new_string(state[i] + base));
        json_object_object_add(h, "Prefer", json_object_new_string("outlook.timezone=\"UTC\""));
        json_object_object_add(r, "headers", h);
        json_object_array_add(list, r);
    }
    json_object_object_add(req, "requests", list);
    rc = graph_call(g, "POST", url, "/$batch",
                    json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE),
                    0, &res, errstr, retry_after_ms);
    json_object_put(req);
    free(url);
    if (rc != EXCHANGE_OK)
        return rc;
    if (res.json && json_object_object_get_ex(res.json, "responses", &resps) &&
        json_object_is_type(resps, json_type_array)) {
        for (size_t k = 0; k < json_object_array_length(resps); k++) {
            json_object *r = json_object_array_get_idx(resps, k), *st, *body, *value, *link;
            const char *id = graph_json_str(r, "id");
            char *end;
            unsigned long i = id ? strtoul(id, &end, 10) : n;

            if (!id || *end || i >= n || idle[i] ||
                !json_object_object_get_ex(r, "status", &st) || json_object_get_int(st) != 200 ||
                !json_object_object_get_ex(r, "body", &body) ||
                !json_object_object_get_ex(body, "value", &value) ||
                !json_object_is_type(value, json_type_array) ||
                json_object_array_length(value) != 0 ||
                !json_object_object_get_ex(body, "@odata.deltaLink", &link) ||
                !json_object_is_type(link, json_type_string) ||
                !graph_link_ok(g, json_object_get_string(link)))
                continue;   /* changes, a next page or an error: read it on its own */
            idle[i] = 1;
            new_state[i] = xstrdup(json_object_get_string(link));
        }
    }
    (void)mailbox;
    json_object_put(res.json);
    return EXCHANGE_OK;
}

int
graph_feed_probe(void *impl, size_t n, char *const *mailbox, char *const *state,
                 char **new_state, int *idle, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    int rc = EXCHANGE_OK;

    for (size_t i = 0; i < n; i++)
        if (!state[i] || !graph_link_ok(g, state[i]))
            return graph_bad_args("a stored delta link", errstr);
    for (size_t off = 0; off < n && rc == EXCHANGE_OK; off += GRAPH_BATCH_MAX)
        rc = graph_probe_batch(g, n - off < GRAPH_BATCH_MAX ? n - off : GRAPH_BATCH_MAX,
                               mailbox + off, state + off, new_state + off, idle + off, errstr,
                               retry_after_ms);
    return rc;
}

/* POST or PATCH of body on one event, the answer dropped. */
static int
graph_item_send(graph_t *g, const char *method, const char *mailbox, const char *id,
                const char *action, json_object *body, char **errstr, long *retry_after_ms)
{
    graph_result_t res;
    const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    char *eid;
    int rc;

    if (!action) {
        rc = graph_item_call(g, method, mailbox, id, NULL, text, &res, NULL, errstr,
                             retry_after_ms);
    } else {
        /* /events/{id}/decline: graph_item_call() takes no sub-path, so build it here */
        char *rest, *url, *shown;

        if (!mailbox || !*mailbox || !id || !*id)
            return graph_bad_args(!mailbox || !*mailbox ? "the mailbox" : "the event id", errstr);
        eid = graph_escape(g, id);
        rest = xasprintf("/events/%s/%s", eid, action);
        url = graph_url(g, mailbox, rest);
        shown = xasprintf("/users/%s/events/%s/%s", mailbox, id, action);
        rc = graph_call(g, method, url, shown, text, 1, &res, errstr, retry_after_ms);
        free(eid);
        free(rest);
        free(url);
        free(shown);
    }
    if (res.json)
        json_object_put(res.json);
    return rc;
}

int
graph_decline(void *impl, const char *mailbox, const char *id, const char *comment,
              char **errstr, long *retry_after_ms)
{
    json_object *o = json_object_new_object();
    int rc;

    json_object_object_add(o, "comment", json_object_new_string(comment ? comment : ""));
    json_object_object_add(o, "sendResponse", json_object_new_boolean(1));
    rc = graph_item_send(impl, "POST", mailbox, id, "decline", o, errstr, retry_after_ms);
    json_object_put(o);
    return rc;
}

int
graph_tag(void *impl, const char *mailbox, const char *id, const char *reservation_id,
          char **errstr, long *retry_after_ms)
{
    json_object *o = json_object_new_object(), *props = json_object_new_array();
    json_object *prop = json_object_new_object();
    int rc;

    json_object_object_add(prop, "id", json_object_new_string(GRAPH_PROPERTY_ID));
    json_object_object_add(prop, "value", json_object_new_string(reservation_id));
    json_object_array_add(props, prop);
    json_object_object_add(o, "singleValueExtendedProperties", props);
    rc = graph_item_send(impl, "PATCH", mailbox, id, NULL, o, errstr, retry_after_ms);
    json_object_put(o);
    return rc;
}

/* --- subscriptions --------------------------------------------------------- */

/* One call on /subscriptions[/id[/action]]; res as graph_call() leaves it. */
static int
graph_sub_call(graph_t *g, const char *method, const char *id, const char *action,
               json_object *body, graph_result_t *res, char **errstr, long *retry_after_ms)
{
    char *eid = id ? graph_escape(g, id) : NULL, *url, *shown;
    int rc;

    url = xasprintf("%s/subscriptions%s%s%s%s", g->cfg->graph.graph_url, id ? "/" : "",
                    id ? eid : "", action ? "/" : "", action ? action : "");
    shown = xasprintf("/subscriptions%s%s%s%s", id ? "/" : "", id ? id : "", action ? "/" : "",
                      action ? action : "");
    rc = graph_call(g, method, url, shown,
                    body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE)
                         : NULL,
                    id ? 1 : 0, res, errstr, retry_after_ms);
    free(eid);
    free(url);
    free(shown);
    return rc;
}

/* The expirationDateTime of an answer; -1 when missing. */
static time_t
graph_sub_expiry(json_object *json)
{
    const char *s = json ? graph_json_str(json, "expirationDateTime") : NULL;

    return s ? exchange_parse_time(s) : (time_t)-1;
}

/* A 400 that speaks of the expiration asks for a shorter life. */
static int
graph_expiry_refused(const graph_result_t *res, const char *err)
{
    return res->status == 400 && err &&
           (strcasestr(err, "expiration") || strcasestr(err, "expiry"));
}

int
graph_subscribe(void *impl, const char *mailbox, const char *url, const char *lifecycle_url,
                const char *client_state, long minutes, exchange_sub_t *out, char **errstr,
                long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char when[32], *resource;
    int rc;

    if (!mailbox || !*mailbox || !url || !client_state)
        return graph_bad_args("the mailbox, notification URL or client state", errstr);
    resource = xasprintf("users/%s/events", mailbox);
    for (;;) {
        json_object *o = json_object_new_object();

        graph_zulu(time(NULL) + minutes * 60, when, sizeof when);
        json_object_object_add(o, "changeType", json_object_new_string("created,updated,deleted"));
        json_object_object_add(o, "notificationUrl", json_object_new_string(url));
        if (lifecycle_url)
            json_object_object_add(o, "lifecycleNotificationUrl",
                                   json_object_new_string(lifecycle_url));
        json_object_object_add(o, "resource", json_object_new_string(resource));
        json_object_object_add(o, "expirationDateTime", json_object_new_string(when));
        json_object_object_add(o, "clientState", json_object_new_string(client_state));
        rc = graph_sub_call(g, "POST", NULL, NULL, o, &res, errstr, retry_after_ms);
        json_object_put(o);
        if (rc == EXCHANGE_EFAIL && minutes > GRAPH_SUB_FALLBACK_MINUTES &&
            graph_expiry_refused(&res, *errstr)) {
            log_info("graph: a subscription of %ld minutes was refused (%s); asking for %ld",
                     minutes, *errstr, GRAPH_SUB_FALLBACK_MINUTES);
            free(*errstr);
            *errstr = NULL;
            minutes = GRAPH_SUB_FALLBACK_MINUTES;
            continue;
        }
        break;
    }
    free(resource);
    if (rc != EXCHANGE_OK)
        return rc;
    if (!graph_json_str(res.json, "id")) {
        *errstr = xstrdup("Graph POST /subscriptions: the answer has no id");
        rc = EXCHANGE_EFAIL;
    } else {
        out->id = xstrdup(graph_json_str(res.json, "id"));
        out->expires = graph_sub_expiry(res.json);
        if (out->expires == (time_t)-1)
            out->expires = time(NULL) + minutes * 60;
    }
    json_object_put(res.json);
    return rc;
}

int
graph_renew(void *impl, const char *id, long minutes, time_t *expires, char **errstr,
            long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char when[32];
    int rc;

    for (;;) {
        json_object *o = json_object_new_object();

        graph_zulu(time(NULL) + minutes * 60, when, sizeof when);
        json_object_object_add(o, "expirationDateTime", json_object_new_string(when));
        rc = graph_sub_call(g, "PATCH", id, NULL, o, &res, errstr, retry_after_ms);
        json_object_put(o);
        if (rc == EXCHANGE_EFAIL && minutes > GRAPH_SUB_FALLBACK_MINUTES &&
            graph_expiry_refused(&res, *errstr)) {
            free(*errstr);
            *errstr = NULL;
            minutes = GRAPH_SUB_FALLBACK_MINUTES;
            continue;
        }
        break;
    }
    if (rc == EXCHANGE_OK) {
        *expires = graph_sub_expiry(res.json);
        if (*expires == (time_t)-1)
            *expires = time(NULL) + minutes * 60;
    }
    if (res.json)
        json_object_put(res.json);
    return rc;
}

int
graph_reauthorize(void *impl, const char *id, char **errstr, long *retry_after_ms)
{
    graph_result_t res;
    int rc = graph_sub_call(impl, "POST", id, "reauthorize", NULL, &res, errstr, retry_after_ms);

    if (res.json)
        json_object_put(res.json);
    return rc;
}

int
graph_unsubscribe(void *impl, const char *id, char **errstr, long *retry_after_ms)
{
    graph_result_t res;
    int rc = graph_sub_call(impl, "DELETE", id, NULL, NULL, &res, errstr, retry_after_ms);

    if (rc == EXCHANGE_ENOTFOUND) {
        free(*errstr);
        *errstr = NULL;
        rc = EXCHANGE_OK;
    }
    if (res.json)
        json_object_put(res.json);
    return rc;
}
