#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clients/exchange.h"
#include "core/util/xalloc.h"

struct exchange {
    const exchange_ops_t *ops;
    void *impl;
};

exchange_t *
exchange_open(const config_t *cfg, char **errstr)
{
    const exchange_ops_t *ops = cfg->reservations.exchange == EXCHANGE_EWS ? &exchange_ews_ops
                                                                           : &exchange_graph_ops;
    void *impl;
    exchange_t *ex;

    if (cfg->reservations.exchange == EXCHANGE_NONE) {
        *errstr = xstrdup("room reservations are switched off (reservations.exchange: none)");
        return NULL;
    }
    impl = ops->open(cfg, errstr);
    if (!impl)
        return NULL;
    ex = xmalloc(sizeof *ex);
    ex->ops = ops;
    ex->impl = impl;
    return ex;
}

void
exchange_close(exchange_t *ex)
{
    if (!ex)
        return;
    ex->ops->close(ex->impl);
    free(ex);
}

const char *
exchange_name(const exchange_t *ex)
{
    return ex->ops->name;
}

int
exchange_get(exchange_t *ex, const char *mailbox, const char *id, exchange_event_t **out,
             char **errstr, long *retry_after_ms)
{
    *out = NULL;
    *retry_after_ms = -1;
    return ex->ops->get(ex->impl, mailbox, id, out, errstr, retry_after_ms);
}

int
exchange_find(exchange_t *ex, const char *mailbox, const char *reservation_id,
              exchange_event_t **out, char **errstr, long *retry_after_ms)
{
    *out = NULL;
    *retry_after_ms = -1;
    return ex->ops->find(ex->impl, mailbox, reservation_id, out, errstr, retry_after_ms);
}

int
exchange_view(exchange_t *ex, const char *mailbox, time_t start, time_t end,
              exchange_event_t **events, size_t *n, char **errstr, long *retry_after_ms)
{
    *events = NULL;
    *n = 0;
    *retry_after_ms = -1;
    return ex->ops->view(ex->impl, mailbox, start, end, events, n, errstr, retry_after_ms);
}

int
exchange_create(exchange_t *ex, const char *mailbox, const exchange_booking_t *b,
                exchange_event_t **out, char **errstr, long *retry_after_ms)
{
    *out = NULL;
    *retry_after_ms = -1;
    return ex->ops->create(ex->impl, mailbox, b, out, errstr, retry_after_ms);
}

int
exchange_update(exchange_t *ex, const char *mailbox, const exchange_event_t *old,
                const exchange_booking_t *b, char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    return ex->ops->update(ex->impl, mailbox, old, b, errstr, retry_after_ms);
}

int
exchange_delete(exchange_t *ex, const char *mailbox, const exchange_event_t *ev,
                char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    return ex->ops->del(ex->impl, mailbox, ev, errstr, retry_after_ms);
}

int
exchange_check(exchange_t *ex, const char *mailbox, char **errstr)
{
    return ex->ops->check(ex->impl, mailbox, errstr);
}

/* A backend without the Outlook direction says so. */
static int
exchange_missing(const exchange_t *ex, const char *what, char **errstr)
{
    *errstr = xasprintf("%s: %s is not supported by this backend yet", ex->ops->name, what);
    return EXCHANGE_EFAIL;
}

int
exchange_feed(exchange_t *ex, const char *mailbox, const char *state, time_t start, time_t end,
              exchange_event_t **events, size_t *n, char **new_state, char **errstr,
              long *retry_after_ms)
{
    *events = NULL;
    *n = 0;
    *new_state = NULL;
    *retry_after_ms = -1;
    if (!ex->ops->feed)
        return exchange_missing(ex, "reading a change feed", errstr);
    return ex->ops->feed(ex->impl, mailbox, state && *state ? state : NULL, start, end, events, n,
                         new_state, errstr, retry_after_ms);
}

int
exchange_feed_probe(exchange_t *ex, size_t n, char *const *mailbox, char *const *state,
                    char **new_state, int *idle, char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    for (size_t i = 0; i < n; i++) {
        new_state[i] = NULL;
        idle[i] = 0;
    }
    if (!ex->ops->probe || n == 0)
        return EXCHANGE_OK;
    return ex->ops->probe(ex->impl, n, mailbox, state, new_state, idle, errstr, retry_after_ms);
}

int
exchange_decline(exchange_t *ex, const char *mailbox, const char *id, const char *comment,
                 char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    if (!ex->ops->decline)
        return exchange_missing(ex, "declining a meeting", errstr);
    return ex->ops->decline(ex->impl, mailbox, id, comment, errstr, retry_after_ms);
}

int
exchange_tag(exchange_t *ex, const char *mailbox, const char *id, const char *reservation_id,
             char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    if (!ex->ops->tag)
        return exchange_missing(ex, "tagging a meeting", errstr);
    return ex->ops->tag(ex->impl, mailbox, id, reservation_id, errstr, retry_after_ms);
}

int
exchange_subscribe(exchange_t *ex, const char *mailbox, const char *url, const char *lifecycle_url,
                   const char *client_state, long minutes, exchange_sub_t *out, char **errstr,
                   long *retry_after_ms)
{
    memset(out, 0, sizeof *out);
    *retry_after_ms = -1;
    if (!ex->ops->subscribe)
        return exchange_missing(ex, "subscribing to a calendar", errstr);
    return ex->ops->subscribe(ex->impl, mailbox, url, lifecycle_url, client_state, minutes, out,
                              errstr, retry_after_ms);
}

int
exchange_renew(exchange_t *ex, const char *id, long minutes, time_t *expires, char **errstr,
               long *retry_after_ms)
{
    *retry_after_ms = -1;
    if (!ex->ops->renew)
        return exchange_missing(ex, "renewing a subscription", errstr);
    return ex->ops->renew(ex->impl, id, minutes, expires, errstr, retry_after_ms);
}

int
exchange_reauthorize(exchange_t *ex, const char *id, char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    if (!ex->ops->reauthorize)
        return exchange_missing(ex, "reauthorizing a subscription", errstr);
    return ex->ops->reauthorize(ex->impl, id, errstr, retry_after_ms);
}

int
exchange_unsubscribe(exchange_t *ex, const char *id, char **errstr, long *retry_after_ms)
{
    *retry_after_ms = -1;
    if (!ex->ops->unsubscribe)
        return exchange_missing(ex, "removing a subscription", errstr);
    return ex->ops->unsubscribe(ex->impl, id, errstr, retry_after_ms);
}

void
exchange_event_free(exchange_event_t *ev)
{
    if (!ev)
        return;
    exchange_events_free(ev, 1);
}

void
exchange_events_free(exchange_event_t *events, size_t n)
{
    if (!events)
        return;
    for (size_t i = 0; i < n; i++) {
        free(events[i].id);
        free(events[i].change_key);
        free(events[i].reservation_id);
        free(events[i].subject);
        free(events[i].body);
        free(events[i].ical_uid);
        free(events[i].organizer);
        free(events[i].organizer_name);
    }
    free(events);
}

/* Reads exactly n digits; -1 when they are not there. */
static int
exchange_digits(const char **p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

time_t
exchange_parse_time(const char *s)
{
    struct tm tm;
    const char *p = s;
    int y, mo, d, h, mi, sec = 0, off = 0;
    time_t t;

    if (!s)
        return -1;
    memset(&tm, 0, sizeof tm);
    if ((y = exchange_digits(&p, 4)) < 0 || *p++ != '-' || (mo = exchange_digits(&p, 2)) < 0 ||
        *p++ != '-' || (d = exchange_digits(&p, 2)) < 0 || (*p != 'T' && *p != ' '))
        return -1;
    p++;
    if ((h = exchange_digits(&p, 2)) < 0 || *p++ != ':' || (mi = exchange_digits(&p, 2)) < 0)
        return -1;
    if (*p == ':') {
        p++;
        if ((sec = exchange_digits(&p, 2)) < 0)
            return -1;
        if (*p == '.' || *p == ',')
            for (p++; isdigit((unsigned char)*p); p++)
                ;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if ((oh = exchange_digits(&p, 2)) < 0)
            return -1;
        if (*p == ':')
            p++;
        if (*p) {
            if ((om = exchange_digits(&p, 2)) < 0)
                return -1;
        }
        if (oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    return t == (time_t)-1 ? -1 : t - off;
}

void
exchange_format_time(time_t t, char *buf, size_t size)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
}
