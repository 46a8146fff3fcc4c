/* The Microsoft Graph backend of core/clients/exchange.h: room calendars in
 * Exchange Online, written directly in the room mailbox (the room is the
 * organizer, no invitations), one libcurl easy handle per open backend.
 *
 * Tokens are core/clients/graph_token.c's, one call with its retries is
 * core/clients/graph_call.c's; this file is the operations.
 *
 * Graph allows 4 concurrent requests per app and mailbox.  This backend
 * never has more than one request in flight per call (each function below
 * is a plain sequence of blocking transfers, no threads), and only the few
 * job runner processes (queue.runners, 2 by default) call it, so the limit
 * is kept without any counting here; a 429 ApplicationThrottled from a
 * busier setup is retried like any other throttling answer. */
#include "autoconf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "core/clients/graph_private.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* --- events -------------------------------------------------------------- */

static json_object *
graph_time_json(time_t t)
{
    json_object *o = json_object_new_object();
    char buf[32];

    exchange_format_time(t, buf, sizeof buf);
    json_object_object_add(o, "dateTime", json_object_new_string(buf));
    json_object_object_add(o, "timeZone", json_object_new_string("UTC"));
    return o;
}

/* The JSON of a create (all fields) or a PATCH (times, subject, body);
 * allocated. */
static char *
graph_booking_json(const char *mailbox, const exchange_booking_t *b, int create)
{
    json_object *o = json_object_new_object(), *body = json_object_new_object();
    char *s;

    json_object_object_add(o, "subject", json_object_new_string(b->subject ? b->subject : ""));
    json_object_object_add(body, "contentType", json_object_new_string("Text"));
    json_object_object_add(body, "content", json_object_new_string(b->body ? b->body : ""));
    json_object_object_add(o, "body", body);
    json_object_object_add(o, "start", graph_time_json(b->start));
    json_object_object_add(o, "end", graph_time_json(b->end));
    if (create) {
        json_object *loc = json_object_new_object(), *props = json_object_new_array();
        json_object *prop = json_object_new_object();

        json_object_object_add(loc, "displayName",
                               json_object_new_string(b->room_name ? b->room_name : mailbox));
        json_object_object_add(loc, "locationEmailAddress", json_object_new_string(mailbox));
        json_object_object_add(o, "location", loc);
        json_object_object_add(o, "showAs", json_object_new_string("busy"));
        json_object_object_add(o, "isReminderOn", json_object_new_boolean(0));
        if (b->transaction_id && *b->transaction_id)
            json_object_object_add(o, "transactionId",
                                   json_object_new_string(b->transaction_id));
        json_object_object_add(prop, "id", json_object_new_string(GRAPH_PROPERTY_ID));
        json_object_object_add(prop, "value", json_object_new_string(b->reservation_id));
        json_object_array_add(props, prop);
        json_object_object_add(o, "singleValueExtendedProperties", props);
    }
    s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* One of start/end; -1 when missing or unreadable. */
static time_t
graph_event_time(graph_t *g, json_object *ev, const char *key)
{
    json_object *o;
    const char *dt, *tz;

    if (!json_object_object_get_ex(ev, key, &o) || !(dt = graph_json_str(o, "dateTime")))
        return -1;
    tz = graph_json_str(o, "timeZone");
    if (tz && strcasecmp(tz, "UTC") != 0 && !g->warned_tz) {
        /* Prefer: outlook.timezone="UTC" should make this impossible */
        char *clean = graph_clean(tz, 64);
        log_warn("graph: an event came back in time zone %s, not UTC; read as UTC", clean);
        free(clean);
        g->warned_tz = 1;
    }
    return exchange_parse_time(dt);
}

/* The fields a change feed needs besides those of graph_event_parse(). */
static void
graph_event_people(json_object *o, exchange_event_t *ev)
{
    json_object *v, *org, *addr;
    const char *s;

    ev->modified = -1;
    if ((s = graph_json_str(o, "iCalUId")) && *s)
        ev->ical_uid = xstrdup(s);
    if ((s = graph_json_str(o, "lastModifiedDateTime")))
        ev->modified = exchange_parse_time(s);
    if (json_object_object_get_ex(o, "isOrganizer", &v))
        ev->is_organizer = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "responseStatus", &v) &&
        (s = graph_json_str(v, "response")))
        ev->declined = strcmp(s, "declined") == 0;
    if ((s = graph_json_str(o, "type")))
        ev->recurring = strcmp(s, "singleInstance") != 0;
    if (json_object_object_get_ex(o, "organizer", &org) &&
        json_object_object_get_ex(org, "emailAddress", &addr)) {
        if ((s = graph_json_str(addr, "address")) && *s)
            ev->organizer = xstrdup(s);
        if ((s = graph_json_str(addr, "name")) && *s)
            ev->organizer_name = xstrdup(s);
    }
}

/* Fills ev from a Graph event; -1 (ev left empty) when it has no id or no
 * readable times. */
int
graph_event_parse(graph_t *g, json_object *o, exchange_event_t *ev)
{
    json_object *v, *props;
    const char *id = graph_json_str(o, "id"), *s;
    time_t start, end;

    memset(ev, 0, sizeof *ev);
    if (!id || !*id)
        return -1;
    start = graph_event_time(g, o, "start");
    end = graph_event_time(g, o, "end");
    if (start == (time_t)-1 || end == (time_t)-1)
        return -1;
    ev->id = xstrdup(id);
    ev->start = start;
    ev->end = end;
    if ((s = graph_json_str(o, "subject")))
        ev->subject = xstrdup(s);
    if (json_object_object_get_ex(o, "body", &v) && (s = graph_json_str(v, "content")))
        ev->body = xstrdup(s);
    if (json_object_object_get_ex(o, "isCancelled", &v))
        ev->cancelled = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "singleValueExtendedProperties", &props) &&
        json_object_is_type(props, json_type_array)) {
        size_t n = json_object_array_length(props);

        for (size_t i = 0; i < n && !ev->reservation_id; i++) {
            json_object *p = json_object_array_get_idx(props, i);
            const char *pid = graph_json_str(p, "id"), *val = graph_json_str(p, "value");

            if (pid && val && strcasecmp(pid, GRAPH_PROPERTY_ID) == 0)
                ev->reservation_id = xstrdup(val);
        }
    }
    graph_event_people(o, ev);
    return 0;
}

/* The parsed answer as one event; allocated into *out. */
static int
graph_event_from(graph_t *g, json_object *json, const char *method, const char *shown,
                 exchange_event_t **out, char **errstr)
{
    exchange_event_t *ev = xcalloc(1, sizeof *ev);

    if (!json || graph_event_parse(g, json, ev) != 0) {
        free(ev);
        *errstr = xasprintf("Graph %s %s: the answer is not a readable event", method, shown);
        return EXCHANGE_EFAIL;
    }
    *out = ev;
    return EXCHANGE_OK;
}

/* "$expand=..." for the property, URL-encoded; allocated. */
static char *
graph_expand(graph_t *g)
{
    char *esc = graph_escape(g, "singleValueExtendedProperties($filter=id eq '" GRAPH_PROPERTY_ID
                                "')");
    char *s = xasprintf("$expand=%s", esc);

    free(esc);
    return s;
}

/* The URL of /users/{mailbox}{rest} (rest already encoded); allocated. */
char *
graph_url(graph_t *g, const char *mailbox, const char *rest)
{
    char *m = graph_escape(g, mailbox);
    char *url = xasprintf("%s/users/%s%s", g->cfg->graph.graph_url, m, rest);

    free(m);
    return url;
}

int
graph_bad_args(const char *what, char **errstr)
{
    *errstr = xasprintf("Graph: %s is missing", what);
    return EXCHANGE_EFAIL;
}

/* --- the operations ------------------------------------------------------ */

static void *
graph_open(const config_t *cfg, char **errstr)
{
    graph_t *g;

    if (!cfg->graph.tenant || !*cfg->graph.tenant || !cfg->graph.client_id ||
        !*cfg->graph.client_id || !cfg->graph.client_secret || !cfg->graph.login_url ||
        !cfg->graph.graph_url) {
        *errstr = xstrdup("graph: tenant, client_id and client_secret are required");
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g = xcalloc(1, sizeof *g);
    g->cfg = cfg;
    g->easy = curl_easy_init();
    if (!g->easy) {
        free(g);
        curl_global_cleanup();
        *errstr = xstrdup("graph: curl_easy_init failed");
        return NULL;
    }
    if (cfg->state_dir && *cfg->state_dir) {
        g->token_path = xasprintf("%s/graph-token", cfg->state_dir);
        g->lock_path = xasprintf("%s/graph-token.lock", cfg->state_dir);
    }
    return g;
}

static void
graph_close(void *impl)
{
    graph_t *g = impl;

    if (!g)
        return;
    curl_easy_cleanup(g->easy);
    secret_free(g->token);
    free(g->token_path);
    free(g->lock_path);
    free(g);
    curl_global_cleanup();
}

/* One request on one event: method on /users/{mailbox}/events/{id}[?query]
 * with body (or NULL).  *shown (may be NULL) gets the path for messages,
 * allocated. */
int
graph_item_call(graph_t *g, const char *method, const char *mailbox, const char *id,
                const char *query, const char *body, graph_result_t *res, char **shown,
                char **errstr, long *retry_after_ms)
{
    char *eid, *rest, *url, *path;
    int rc;

    memset(res, 0, sizeof *res);
    if (shown)
        *shown = NULL;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!id || !*id)
        return graph_bad_args("the event id", errstr);
    eid = graph_escape(g, id);
    rest = xasprintf("/events/%s%s%s", eid, query ? "?" : "", query ? query : "");
    url = graph_url(g, mailbox, rest);
    path = xasprintf("/users/%s/events/%s", mailbox, id);
    rc = graph_call(g, method, url, path, body, 1, res, errstr, retry_after_ms);
    free(eid);
    free(rest);
    free(url);
    if (shown)
        *shown = path;
    else
        free(path);
    return rc;
}

static int
graph_get(void *impl, const char *mailbox, const char *id, exchange_event_t **out, char **errstr,
          long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *expand = graph_expand(g), *shown = NULL;
    int rc;

    *out = NULL;
    rc = graph_item_call(g, "GET", mailbox, id, expand, NULL, &res, &shown, errstr,
                         retry_after_ms);
    if (rc == EXCHANGE_OK)
        rc = graph_event_from(g, res.json, "GET", shown, out, errstr);
    if (res.json)
        json_object_put(res.json);
    free(expand);
    free(shown);
    return rc;
}

static int
graph_find(void *impl, const char *mailbox, const char *reservation_id, exchange_event_t **out,
           char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    buf_t quoted;
    json_object *list;
    char *filter = NULL, *ef = NULL, *expand = NULL, *rest = NULL, *url = NULL, *shown;
    size_t n;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!reservation_id || !*reservation_id)
        return graph_bad_args("the reservation id", errstr);
    /* OData string literal: a single quote is written twice */
    buf_init(&quoted, 2 * strlen(reservation_id) + 1);
    for (const char *p = reservation_id; *p; p++) {
        buf_append(&quoted, p, 1);
        if (*p == '\'')
            buf_append(&quoted, p, 1);
    }
    filter = xasprintf("singleValueExtendedProperties/Any(ep: ep/id eq '" GRAPH_PROPERTY_ID
                       "' and ep/value eq '%s')",
                       buf_str(&quoted));
    ef = graph_escape(g, filter);
    expand = graph_expand(g);
    rest = xasprintf("/events?$filter=%s&%s", ef, expand);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/events", mailbox);
    rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, retry_after_ms);
    if (rc != EXCHANGE_OK)
        goto out;
    if (!res.json || !json_object_object_get_ex(res.json, "value", &list) ||
        !json_object_is_type(list, json_type_array)) {
        *errstr = xasprintf("Graph GET %s: the answer has no event list", shown);
        rc = EXCHANGE_EFAIL;
        goto out;
    }
    n = json_object_array_length(list);
    if (n == 0)
        goto out;
    rc = graph_event_from(g, json_object_array_get_idx(list, 0), "GET", shown, out, errstr);
    if (rc != EXCHANGE_OK)
        goto out;
    if (!(*out)->reservation_id)
        (*out)->reservation_id = xstrdup(reservation_id);
    for (size_t i = 1; i < n; i++) {
        const char *other = graph_json_str(json_object_array_get_idx(list, i), "id");
        char *clean = graph_clean(other ? other : "?", 200);

        log_warn("graph: %s has another appointment for reservation %s: %s (using %s)", mailbox,
                 reservation_id, clean, (*out)->id);
        free(clean);
    }
out:
    if (res.json)
        json_object_put(res.json);
    buf_free(&quoted);
    free(filter);
    free(ef);
    free(expand);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_view(void *impl, const char *mailbox, time_t start, time_t end, exchange_event_t **events,
           size_t *n, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res = {0};
    exchange_event_t *evs = NULL;
    size_t count = 0, alloc = 0, baselen = strlen(g->cfg->graph.graph_url);
    char sbuf[32], ebuf[32], *es, *ee, *expand, *rest, *url, *shown, *zs, *ze;
    int rc = EXCHANGE_OK, page;

    *events = NULL;
    *n = 0;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    exchange_format_time(start, sbuf, sizeof sbuf);
    exchange_format_time(end, ebuf, sizeof ebuf);
    zs = xasprintf("%sZ", sbuf);
    ze = xasprintf("%sZ", ebuf);
    es = graph_escape(g, zs);
    ee = graph_escape(g, ze);
    expand = graph_expand(g);
    rest = xasprintf("/calendarView?startDateTime=%s&endDateTime=%s&$top=%d&%s", es, ee,
                     GRAPH_PAGE_SIZE, expand);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/calendarView", mailbox);
    for (page = 0;; page++) {
        json_object *list, *next;
        size_t len;

        if (page >= GRAPH_MAX_PAGES) {
            *errstr = xasprintf("Graph GET %s: more than %d events between %s and %s", shown,
                                GRAPH_MAX_PAGES * GRAPH_PAGE_SIZE, zs, ze);
            rc = EXCHANGE_EFAIL;
            break;
        }
        rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, retry_after_ms);
        if (rc != EXCHANGE_OK)
            break;
        if (!res.json || !json_object_object_get_ex(res.json, "value", &list) ||
            !json_object_is_type(list, json_type_array)) {
            *errstr = xasprintf("Graph GET %s: the answer has no event list", shown);
            rc = EXCHANGE_EFAIL;
            break;
        }
        len = json_object_array_length(list);
        for (size_t i = 0; i < len; i++) {
            if (count == alloc) {
                alloc = alloc ? 2 * alloc : 16;
                evs = xrealloc(evs, alloc * sizeof *evs);
            }
            if (graph_event_parse(g, json_object_array_get_idx(list, i), &evs[count]) != 0) {
                *errstr = xasprintf("Graph GET %s: event %zu of page %d is not readable", shown,
                                    i + 1, page + 1);
                rc = EXCHANGE_EFAIL;
                break;
            }
            count++;
        }
        if (rc != EXCHANGE_OK)
            break;
        if (!json_object_object_get_ex(res.json, "@odata.nextLink", &next) ||
            json_object_is_type(next, json_type_null))
            break;
        /* follow only links into the configured Graph: the token goes with it */
        if (!json_object_is_type(next, json_type_string) ||
            strncmp(json_object_get_string(next), g->cfg->graph.graph_url, baselen) != 0 ||
            (json_object_get_string(next)[baselen] != '/' &&
             json_object_get_string(next)[baselen] != '?')) {
            char *clean = graph_clean(json_object_get_string(next), 200);

            *errstr = xasprintf("Graph GET %s: @odata.nextLink %s is outside %s", shown, clean,
                                g->cfg->graph.graph_url);
            free(clean);
            rc = EXCHANGE_EFAIL;
            break;
        }
        free(url);
        url = xstrdup(json_object_get_string(next));
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
    free(zs);
    free(ze);
    free(es);
    free(ee);
    free(expand);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

static int
graph_create(void *impl, const char *mailbox, const exchange_booking_t *b,
             exchange_event_t **out, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *body, *url, *shown;
    int rc;

    *out = NULL;
    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    if (!b->reservation_id || !*b->reservation_id)
        return graph_bad_args("the reservation id", errstr);
    body = graph_booking_json(mailbox, b, 1);
    url = graph_url(g, mailbox, "/events");
    shown = xasprintf("/users/%s/events", mailbox);
    /* a retried POST is safe: transactionId makes Graph return the first event */
    rc = graph_call(g, "POST", url, shown, body, 0, &res, errstr, retry_after_ms);
    if (rc == EXCHANGE_OK)
        rc = graph_event_from(g, res.json, "POST", shown, out, errstr);
    if (rc == EXCHANGE_OK && !(*out)->reservation_id)
        (*out)->reservation_id = xstrdup(b->reservation_id);  /* Graph does not echo it */
    if (res.json)
        json_object_put(res.json);
    free(body);
    free(url);
    free(shown);
    return rc;
}

static int
graph_update(void *impl, const char *mailbox, const exchange_event_t *old,
             const exchange_booking_t *b, char **errstr, long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    char *body = graph_booking_json(mailbox ? mailbox : "", b, 0);
    int rc = graph_item_call(g, "PATCH", mailbox, old ? old->id : NULL, NULL, body, &res, NULL,
                             errstr, retry_after_ms);

    if (res.json)
        json_object_put(res.json);
    free(body);
    return rc;
}

static int
graph_delete(void *impl, const char *mailbox, const exchange_event_t *ev, char **errstr,
             long *retry_after_ms)
{
    graph_t *g = impl;
    graph_result_t res;
    int rc = graph_item_call(g, "DELETE", mailbox, ev ? ev->id : NULL, NULL, NULL, &res, NULL,
                             errstr, retry_after_ms);

    if (rc == EXCHANGE_ENOTFOUND) {
        free(*errstr);  /* gone already: that is what was asked */
        *errstr = NULL;
        rc = EXCHANGE_OK;
    }
    if (res.json)
        json_object_put(res.json);
    return rc;
}

static int
graph_check(void *impl, const char *mailbox, char **errstr)
{
    graph_t *g = impl;
    graph_result_t res = {0};
    char sbuf[32], ebuf[32], *zs, *ze, *es, *ee, *rest, *url = NULL, *shown = NULL, *why;
    time_t now = time(NULL);
    long ra = -1;
    int rc;

    if (!mailbox || !*mailbox)
        return graph_bad_args("the mailbox", errstr);
    /* A cached token proves nothing about the secret in the config: the
     * first check asks the token endpoint itself. */
    if (!g->login_checked) {
        rc = graph_token_fetch(g, errstr, &ra);
        if (rc == EXCHANGE_OK) {
            graph_token_write(g);
            g->login_checked = 1;
        } else if (rc == EXCHANGE_EAUTH || rc == EXCHANGE_EFAIL) {
            why = *errstr;
            *errstr = xasprintf("%s; check graph.tenant, graph.client_id and graph.client_secret "
                                "(the secret's value, not its id, and not expired)", why ? why : "");
            free(why);
            return EXCHANGE_EAUTH;
        } else {
            return rc;
        }
    }
    rc = graph_token(g, NULL, errstr, &ra);
    if (rc != EXCHANGE_OK)
        return rc;
    exchange_format_time(now, sbuf, sizeof sbuf);
    exchange_format_time(now + 3600, ebuf, sizeof ebuf);
    zs = xasprintf("%sZ", sbuf);
    ze = xasprintf("%sZ", ebuf);
    es = graph_escape(g, zs);
    ee = graph_escape(g, ze);
    rest = xasprintf("/calendarView?startDateTime=%s&endDateTime=%s&$top=1", es, ee);
    url = graph_url(g, mailbox, rest);
    shown = xasprintf("/users/%s/calendarView", mailbox);
    rc = graph_call(g, "GET", url, shown, NULL, 0, &res, errstr, &ra);
    if (rc == EXCHANGE_EFAIL &&
        (strcmp(res.code, "ErrorInvalidUser") == 0 || res.status == 404)) {
        why = *errstr;
        *errstr = xasprintf("mailbox %s not found in Exchange Online; check the room mapping (%s)",
                            mailbox, why);
        free(why);
    } else if (rc == EXCHANGE_EFAIL &&
               (strcmp(res.code, "ErrorAccessDenied") == 0 || res.status == 403)) {
        why = *errstr;
        *errstr = xasprintf("access to mailbox %s denied: give the app Calendars.ReadWrite "
                            "(application) and put the mailbox in the scope of its application "
                            "access policy or RBAC for Applications management scope (%s)",
                            mailbox, why);
        free(why);
    } else if (rc == EXCHANGE_EFAIL && strcmp(res.code, "MailboxNotEnabledForRESTAPI") == 0) {
        why = *errstr;
        *errstr = xasprintf("mailbox %s is not in Exchange Online (on-premises or inactive): "
                            "use the EWS backend for it (%s)",
                            mailbox, why);
        free(why);
    }
    if (res.json)
        json_object_put(res.json);
    free(zs);
    free(ze);
    free(es);
    free(ee);
    free(rest);
    free(url);
    free(shown);
    return rc;
}

const exchange_ops_t exchange_graph_ops = {
    .name = "graph",
    .open = graph_open,
    .close = graph_close,
    .get = graph_get,
    .find = graph_find,
    .view = graph_view,
    .create = graph_create,
    .update = graph_update,
    .del = graph_delete,
    .check = graph_check,
    .feed = graph_feed,
    .probe = graph_feed_probe,
    .decline = graph_decline,
    .tag = graph_tag,
    .subscribe = graph_subscribe,
    .renew = graph_renew,
    .reauthorize = graph_reauthorize,
    .unsubscribe = graph_unsubscribe,
};
