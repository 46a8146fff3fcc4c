/* The doctor's checks of bookings made in Outlook (reservations.direction:
 * both): the callback URL answers a validation round as Graph sends it,
 * every mapped room has a live subscription, the app may read the room
 * calendars' change feed, and the fallback requester and the cancellation
 * reason exist in TOPdesk. */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "core/clients/ews_xml.h"
#include "core/clients/exchange.h"
#include "core/clients/topdesk.h"
#include "core/clients/transport.h"
#include "core/jobs/doctor_private.h"
#include "core/jobs/outlook.h"
#include "core/util/xalloc.h"

static const char *
str_of(json_object *o, const char *key)
{
    json_object *v;

    return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static int
looks_like_id(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if (!isxdigit((unsigned char)*s) && *s != '-')
            return 0;
    return n == 36;
}

/* One POST of body (content type ctype) to url; the answer in *r. */
static void
doctor_post(const char *url, const char *ctype, const char *body, transport_resp_t *r)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    char *hdr = xasprintf("Content-Type: %s", ctype);

    transport_resp_init(r, 4096);
    transport_setup(e, "http,https", 10000, 10000);
    curl_easy_setopt(e, CURLOPT_URL, url);
    h = transport_header(h, hdr);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    transport_bind(e, r);
    transport_perform(e, r, PEER_GRAPH);
    transport_headers_free(h);
    curl_easy_cleanup(e);
    free(hdr);
}

/* What Exchange would send: Graph's validation round to /hooks/graph, or
 * an EWS push for a key nobody holds to /hooks/ews/ (answered
 * Unsubscribe); nginx and tdhook must answer as Exchange wants. */
static void
doctor_callback(doctor_list_t *l, const config_t *cfg)
{
    const char *base = cfg->reservations.outlook.callback_url;
    int ews = cfg->reservations.exchange == EXCHANGE_EWS;
    unsigned char raw[8];
    char token[64], *url, *body = NULL, *route;
    transport_resp_t r;
    int answered;

    if (!cfg->reservations.outlook.notifications) {
        doctor_add(l, DOCTOR_OK, "outlook.callback", "notifications are off: the room calendars "
                   "are read every %ld s instead", cfg->reservations.outlook.resync_ms / 1000);
        return;
    }
    if (getrandom(raw, sizeof raw, GRND_NONBLOCK) != (ssize_t)sizeof raw)
        memset(raw, 7, sizeof raw);
    snprintf(token, sizeof token, "tdhook doctor %02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
             raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
    if (ews) {
        route = xasprintf("%s/hooks/ews/", base);
        url = xasprintf("%sdoctor-%s", route, token + 14);
        body = ews_push_heartbeat("tdhook-doctor");
        doctor_post(url, "text/xml; charset=utf-8", body, &r);
        answered = r.cc == CURLE_OK && r.status == 200 && strstr(buf_str(&r.body), "Unsubscribe");
    } else {
        route = xasprintf("%s/hooks/graph", base);
        url = xasprintf("%s?validationToken=tdhook%%20doctor%%20%s", route, token + 14);
        doctor_post(url, "text/plain; charset=utf-8", "", &r);
        answered = r.cc == CURLE_OK && r.status == 200 && strcmp(buf_str(&r.body), token) == 0;
    }
    if (r.cc != CURLE_OK) {
        char why[CURL_ERROR_SIZE + 160];

        doctor_add(l, DOCTOR_FAIL, "outlook.callback", "%s cannot be reached: %s; "
                   "reservations.outlook.callback_url must be the address of this nginx as %s "
                   "reaches it%s", route, transport_error_text(&r, why, sizeof why),
                   ews ? "the Exchange servers" : "Microsoft",
                   ews ? "" : " (public HTTPS, with a certificate Microsoft trusts)");
    } else if (!answered) {
        doctor_add(l, DOCTOR_FAIL, "outlook.callback", "%s answered %ld, not as %s wants: the "
                   "callback URL does not lead to this tdhook (check the nginx location and "
                   "reservations.outlook.callback_url)", route, r.status,
                   ews ? "Exchange" : "Graph");
    } else if (!ews && strncasecmp(base, "https://", 8) != 0) {
        doctor_add(l, DOCTOR_WARN, "outlook.callback", "%s answers the validation round, but "
                   "Microsoft Graph sends notifications only to https:// addresses", base);
    } else {
        doctor_add(l, DOCTOR_OK, "outlook.callback", "%s answers %s", route,
                   ews ? "Exchange's push notifications" : "Graph's validation round");
    }
    transport_resp_free(&r);
    free(url);
    free(route);
    free(body);
}

/* Every mapped room has a live subscription. */
static void
doctor_subscriptions(doctor_list_t *l, const config_t *cfg)
{
    json_object *res = NULL, *list;
    char *err = NULL;
    size_t n, live = 0;
    time_t now = time(NULL), first = 0;
    buf_t missing;

    if (!cfg->reservations.outlook.notifications)
        return;
    if (outlook_subs_list(cfg, &res, &err) != OUTLOOK_OK) {
        doctor_add(l, DOCTOR_FAIL, "outlook.subscriptions", "%s", err ? err : "cannot list them");
        free(err);
        return;
    }
    buf_init(&missing, 1024);
    json_object_object_get_ex(res, "subscriptions", &list);
    n = list ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i), *exp, *ok;
        time_t t = json_object_object_get_ex(o, "expires", &exp) ? json_object_get_int64(exp) : 0;

        if (json_object_object_get_ex(o, "live", &ok) && json_object_get_boolean(ok)) {
            live++;
            if (t > now && (!first || t < first))
                first = t;
        } else {
            buf_printf(&missing, "%s%s", missing.len ? ", " : "", str_of(o, "mailbox"));
        }
    }
    if (n == 0)
        doctor_add(l, DOCTOR_WARN, "outlook.subscriptions", "no mapped room to subscribe to");
    else if (live < n)
        doctor_add(l, DOCTOR_FAIL, "outlook.subscriptions", "%zu of %zu rooms have no live "
                   "subscription (%s): is tdhook serve running? tdhook subscriptions sync "
                   "makes them now and says why one fails", n - live, n, buf_str(&missing));
    else if (!first) {
        doctor_add(l, DOCTOR_OK, "outlook.subscriptions", "all %zu rooms are subscribed and "
                   "their heartbeats arrive", n);
    } else {
        char when[32];

        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&first));
        doctor_add(l, DOCTOR_OK, "outlook.subscriptions", "all %zu rooms are subscribed; the "
                   "first would lapse at %s (tdhook serve renews at half their life)", n, when);
    }
    buf_free(&missing);
    json_object_put(res);
}

/* The change feed of one mapped room can be read: Calendars.Read. */
static void
doctor_feed(doctor_list_t *l, exchange_t *ex, const char *mailbox)
{
    exchange_event_t *evs = NULL;
    size_t n = 0;
    char *state = NULL, *err = NULL;
    long ra;
    time_t now = time(NULL);
    int rc = exchange_feed(ex, mailbox, NULL, now, now + 3600, &evs, &n, &state, &err, &ra);

    if (rc == EXCHANGE_OK)
        doctor_add(l, DOCTOR_OK, "outlook.read", "the change feed of %s can be read", mailbox);
    else
        doctor_add(l, DOCTOR_FAIL, "outlook.read", "the change feed of %s cannot be read: %s; "
                   "give the app Calendars.Read (application) besides Calendars.ReadWrite",
                   mailbox, err ? err : "failed");
    exchange_events_free(evs, n);
    free(state);
    free(err);
}

/* The fallback requester and the cancellation reason exist. */
static void
doctor_topdesk_refs(doctor_list_t *l, const config_t *cfg, topdesk_t *td)
{
    const char *fb = cfg->reservations.outlook.fallback_requester;
    const char *reason = cfg->reservations.outlook.cancellation_reason;
    json_object *body = NULL, *items;
    char *q, *eq, *path, *err = NULL;
    int status, hits = 0;
    long ra;

    q = xasprintf(looks_like_id(fb) ? "id==%s" : "email=='%s';archived==false", fb);
    eq = topdesk_escape(q);
    path = xasprintf("/tas/api/persons?query=%s&fields=id,dynamicName,email&pageSize=2", eq);
    if (topdesk_get(td, path, "application/x.topdesk-collection-person-v2+json", &body, &status,
                    &err, &ra) != TOPDESK_OK)
        doctor_add(l, DOCTOR_FAIL, "outlook.fallback-requester", "%s", err ? err : "failed");
    else if (json_object_object_get_ex(body, "item", &items) &&
             json_object_array_length(items) > 0)
        doctor_add(l, DOCTOR_OK, "outlook.fallback-requester", "%s is the TOPdesk person %s", fb,
                   str_of(json_object_array_get_idx(items, 0), "dynamicName")
                       ? str_of(json_object_array_get_idx(items, 0), "dynamicName") : "?");
    else
        doctor_add(l, DOCTOR_FAIL, "outlook.fallback-requester", "%s is no TOPdesk person the "
                   "API account can see: set reservations.outlook.fallback_requester to the "
                   "e-mail or id of the person card that books for organizers without one "
                   "(mind the operator's branch filters)", fb);
    json_object_put(body);
    body = NULL;
    free(err);
    err = NULL;
    free(q);
    free(eq);
    free(path);
    if (topdesk_get(td, "/tas/api/reservationCancellationReasons?archived=false",
                    TOPDESK_ACCEPT_JSON, &body, &status, &err, &ra) != TOPDESK_OK) {
        doctor_add(l, DOCTOR_FAIL, "outlook.cancellation-reason", "%s", err ? err : "failed");
    } else {
        json_object *list = NULL;

        json_object_object_get_ex(body, "results", &list);
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
            json_object *o = json_object_array_get_idx(list, i);

            if ((str_of(o, "id") && strcasecmp(str_of(o, "id"), reason) == 0) ||
                (str_of(o, "name") && strcmp(str_of(o, "name"), reason) == 0))
                hits++;
        }
        if (hits == 1)
            doctor_add(l, DOCTOR_OK, "outlook.cancellation-reason", "\"%s\" is a cancellation "
                       "reason in TOPdesk", reason);
        else if (hits > 1)
            doctor_add(l, DOCTOR_FAIL, "outlook.cancellation-reason", "several cancellation "
                       "reasons are called \"%s\": TOPdesk refuses an ambiguous name; set "
                       "reservations.outlook.cancellation_reason to the reason's id", reason);
        else
            doctor_add(l, DOCTOR_FAIL, "outlook.cancellation-reason", "\"%s\" is no active "
                       "cancellation reason in TOPdesk (Reservations > cancellation reasons); "
                       "set reservations.outlook.cancellation_reason to one that is", reason);
    }
    json_object_put(body);
    free(err);
}

void
doctor_outlook(doctor_list_t *l, const config_t *cfg)
{
    topdesk_t *td = topdesk_new(cfg);
    char *err = NULL;
    exchange_t *ex = exchange_open(cfg, &err);
    json_object *res = NULL, *list = NULL;

    doctor_callback(l, cfg);
    doctor_subscriptions(l, cfg);
    /* Graph needs Calendars.Read for the feed; EWS reads it with the
     * impersonation the exchange.mailboxes line checked already */
    if (ex && cfg->reservations.exchange == EXCHANGE_GRAPH &&
        outlook_subs_list(cfg, &res, &err) == OUTLOOK_OK &&
        json_object_object_get_ex(res, "subscriptions", &list) &&
        json_object_array_length(list) > 0)
        doctor_feed(l, ex, str_of(json_object_array_get_idx(list, 0), "mailbox"));
    doctor_topdesk_refs(l, cfg, td);
    json_object_put(res);
    free(err);
    exchange_close(ex);
    topdesk_free(td);
}
