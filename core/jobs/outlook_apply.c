/* One meeting booked in Outlook against its TOPdesk reservation.
 *
 * A meeting's file (state_dir/outlook/meetings) says what tdhook last
 * applied from Outlook ("applied": a hash of room, times, description and
 * organizer) and what TOPdesk held after tdhook's last write or read
 * ("td": status, times, location).  A change from either side is applied
 * only when it differs from that record, so tdhook's own writes coming
 * back, as a TOPdesk webhook or as an Exchange notification, write
 * nothing, and TOPdesk's own change stands until the meeting changes in
 * Outlook again. */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/clients/mime.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/outlook_private.h"
#include "core/jobs/texts.h"
#include "core/util/address.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define DESCRIPTION_MAX 100   /* TOPdesk's briefDescription */

/* --- small helpers ---------------------------------------------------------- */

static void
iso(time_t t, char *buf, size_t size)
{
    exchange_format_time(t, buf, size);
    strncat(buf, "Z", size - strlen(buf) - 1);
}

static int
is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (!s[i] || (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])))
            return 0;
    }
    return s[36] == '\0';
}

int
td_status_live(const char *status)
{
    return status && (strcmp(status, "planned") == 0 || strcmp(status, "conflictingPlanned") == 0 ||
                      strcmp(status, "request") == 0 || strcmp(status, "conflictingRequest") == 0);
}

void
apply_note(pull_t *p, const char *ical, const char *room, const char *action)
{
    json_object *o = json_object_new_object(), *list = rsv_get(p->out, "meetings");

    if (!list) {
        list = json_object_new_array();
        json_object_object_add(p->out, "meetings", list);
    }
    json_object_object_add(o, "meeting", json_object_new_string(ical ? ical : ""));
    json_object_object_add(o, "room", json_object_new_string(room ? room : ""));
    json_object_object_add(o, "action", json_object_new_string(action));
    json_object_array_add(list, o);
    if (ical)
        log_info("outlook: meeting %s in %s: %s", ical, room ? room : "?", action);
    else
        log_info("outlook: %s: %s", room ? room : "?", action);
}

/* The TOPdesk description of a meeting: its subject as the room shows it;
 * a subject that the room replaced by the organizer's name (or removed)
 * becomes "Outlook: <organizer's name>".  At most 100 bytes, whole UTF-8
 * characters.  Allocated. */
static char *
describe(const exchange_event_t *ev)
{
    const char *subj = ev->subject ? ev->subject : "";
    const char *name = ev->organizer_name ? ev->organizer_name
                       : ev->organizer ? ev->organizer : "?";
    char *d;
    size_t n;

    while (isspace((unsigned char)*subj))
        subj++;
    if (!*subj || strcasecmp(subj, name) == 0)
        d = xasprintf("Outlook: %s", name);
    else
        d = xstrdup(subj);
    n = strlen(d);
    if (n > DESCRIPTION_MAX) {
        n = DESCRIPTION_MAX;
        while (n > 0 && ((unsigned char)d[n] & 0xc0) == 0x80)
            n--;
        d[n] = '\0';
    }
    return d;
}

/* The hash of what Outlook says of a meeting in room, as a string. */
static char *
outlook_hash(const char *room, const exchange_event_t *ev, const char *desc)
{
    char *s = xasprintf("%s|%lld|%lld|%s|%s", room, (long long)ev->start, (long long)ev->end, desc,
                        ev->organizer ? ev->organizer : "");
    char *h = xasprintf("%016llx", (unsigned long long)rsv_hash(s));

    free(s);
    return h;
}

void
meeting_set(json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

const char *
meeting_str(json_object *o, const char *key)
{
    return rsv_str(o, key);
}

time_t
meeting_time(json_object *o, const char *key)
{
    json_object *v = rsv_get(o, key);

    return v ? (time_t)json_object_get_int64(v) : (time_t)-1;
}

void
meeting_set_td(json_object *m, const td_state_t *td)
{
    json_object *o = json_object_new_object();

    meeting_set(o, "status", td->status);
    json_object_object_add(o, "start", json_object_new_int64(td->start));
    json_object_object_add(o, "end", json_object_new_int64(td->end));
    meeting_set(o, "location", td->location);
    json_object_object_add(m, "td", o);
}

/* What TOPdesk holds of reservation r. */
void
td_state_of(json_object *r, td_state_t *td)
{
    json_object *facs = rsv_get(r, "reservedFacilities");

    td->status = rsv_str(r, "status");
    td->start = exchange_parse_time(rsv_str(r, "plannedStartDate") ? rsv_str(r, "plannedStartDate") : "");
    td->end = exchange_parse_time(rsv_str(r, "plannedEndDate") ? rsv_str(r, "plannedEndDate") : "");
    td->location = NULL;
    for (size_t i = 0; facs && json_object_is_type(facs, json_type_array) &&
                       i < json_object_array_length(facs) && !td->location; i++)
        td->location = rsv_str(rsv_get(json_object_array_get_idx(facs, i), "location"), "id");
}

/* --- TOPdesk writes ----------------------------------------------------------- */

/* One write; *out (may be NULL) gets the answer.  TOPDESK_* codes.  In a
 * dry run nothing is sent and the write counts as done. */
static int
td_write(pull_t *p, const char *method, const char *path, json_object *body, json_object **out,
         char **errstr, long *retry)
{
    json_object *ans = NULL;
    int status, rc;

    if (out)
        *out = NULL;
    if (p->rs->dry_run)
        return TOPDESK_OK;
    rc = topdesk_send(p->rs->td, method, path, TOPDESK_ACCEPT_JSON, body, &ans, &status, errstr,
                      retry);
    if (out)
        *out = ans;
    else
        json_object_put(ans);
    return rc;
}

/* /tas/api/reservations/<id><rest>; allocated. */
static char *
rsv_path_of(const char *id, const char *rest)
{
    char *e = topdesk_escape(id), *path = xasprintf("/tas/api/reservations/%s%s", e, rest);

    free(e);
    return path;
}

/* One write on reservation resid: method on /tas/api/reservations/<id><rest>
 * with body, which it puts.  TOPDESK_* codes. */
static int
td_action(pull_t *p, const char *method, const char *resid, const char *rest, json_object *body,
          char **errstr, long *retry)
{
    char *path = rsv_path_of(resid, rest);
    int rc = td_write(p, method, path, body, NULL, errstr, retry);

    json_object_put(body);
    free(path);
    return rc;
}

/* The id of the TOPdesk person whose e-mail is address (exact, then lower
 * case), or NULL.  TOPDESK_* codes. */
static int
person_by_email(pull_t *p, const char *address, char **id, char **errstr, long *retry)
{
    *id = NULL;
    for (int pass = 0; pass < 2 && !*id; pass++) {
        char *addr = xstrdup(address), *q, *eq, *path;
        json_object *body = NULL, *items;
        int status, rc;

        if (pass == 1)
            for (char *c = addr; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        if (pass == 1 && strcmp(addr, address) == 0) {
            free(addr);
            break;
        }
        if (strchr(addr, '\'')) {
            free(addr);
            return TOPDESK_OK;   /* no FIQL quoting for a quote: not an address to match */
        }
        q = xasprintf("email=='%s';archived==false", addr);
        eq = topdesk_escape(q);
        path = xasprintf("/tas/api/persons?query=%s&fields=id,email&pageSize=2", eq);
        rc = topdesk_get(p->rs->td, path, "application/x.topdesk-collection-person-v2+json", &body,
                         &status, errstr, retry);
        free(addr);
        free(q);
        free(eq);
        free(path);
        if (rc != TOPDESK_OK) {
            json_object_put(body);
            return rc;
        }
        items = rsv_get(body, "item");
        if (items && json_object_is_type(items, json_type_array) &&
            json_object_array_length(items) > 0)
            *id = rsv_str(json_object_array_get_idx(items, 0), "id")
                      ? xstrdup(rsv_str(json_object_array_get_idx(items, 0), "id")) : NULL;
        json_object_put(body);
    }
    return TOPDESK_OK;
}

/* The requester of a meeting: the organizer's person, else the fallback. */
static int
requester_for(pull_t *p, const exchange_event_t *ev, char **id, int *fallback, char **errstr,
              long *retry)
{
    const char *fb = p->rs->cfg->reservations.outlook.fallback_requester;
    int rc;

    *fallback = 0;
    if (ev->organizer && address_ok(ev->organizer)) {
        rc = person_by_email(p, ev->organizer, id, errstr, retry);
        if (rc != TOPDESK_OK || *id)
            return rc;
    }
    *fallback = 1;
    if (!p->requester_id) {
        if (fb && is_uuid(fb)) {
            p->requester_id = xstrdup(fb);
        } else {
            rc = person_by_email(p, fb ? fb : "", &p->requester_id, errstr, retry);
            if (rc != TOPDESK_OK)
                return rc;
            if (!p->requester_id) {
                *errstr = xasprintf("reservations.outlook.fallback_requester \"%s\" is no TOPdesk "
                                    "person the API account can see", fb ? fb : "");
                return TOPDESK_EFAIL;
            }
        }
    }
    *id = xstrdup(p->requester_id);
    return TOPDESK_OK;
}

/* The reservation that already carries the meeting's link and is not
 * cancelled (a create that was not recorded: a kill after the POST). */
static int
find_linked(pull_t *p, const char *ical, json_object **r, char **errstr, long *retry)
{
    char *q, *eq, *path;
    json_object *body = NULL, *results;
    int status, rc;

    *r = NULL;
    if (strchr(ical, '\''))
        return TOPDESK_OK;
    q = xasprintf("externalLinks.id=='%s';externalLinks.type==" RSV_OUTLOOK_LINK_TYPE, ical);
    eq = topdesk_escape(q);
    path = xasprintf("/tas/api/reservations?query=%s&$top=10", eq);
    rc = topdesk_get(p->rs->td, path, TOPDESK_ACCEPT_JSON, &body, &status, errstr, retry);
    results = rsv_get(body, "results");
    for (size_t i = 0; rc == TOPDESK_OK && results &&
                       json_object_is_type(results, json_type_array) &&
                       i < json_object_array_length(results) && !*r; i++) {
        json_object *o = json_object_array_get_idx(results, i);

        if (td_status_live(rsv_str(o, "status")))
            *r = json_object_get(o);
    }
    json_object_put(body);
    free(q);
    free(eq);
    free(path);
    return rc;
}

static json_object *
reason_body(pull_t *p)
{
    const char *reason = p->rs->cfg->reservations.outlook.cancellation_reason;
    json_object *o = json_object_new_object();

    if (reason && *reason)
        json_object_object_add(o, is_uuid(reason) ? "id" : "name", json_object_new_string(reason));
    return o;
}

static int
td_cancel(pull_t *p, const char *resid, char **errstr, long *retry)
{
    return td_action(p, "POST", resid, "/cancel", reason_body(p), errstr, retry);
}

/* --- refusals ----------------------------------------------------------------- */

/* 1 when another live reservation holds location over [start, end): what
 * a refusal most often means, told to the organizer in plain words. */
static int
room_taken(pull_t *p, const char *location, time_t start, time_t end, const char *except)
{
    char s[32], e[32], *q, *eq, *path, *err = NULL;
    json_object *body = NULL, *results;
    int status, taken = 0;
    long ra;

    if (!location || start < 0 || end < 0)
        return 0;
    iso(start, s, sizeof s);
    iso(end, e, sizeof e);
    q = xasprintf("reservedFacilities.location.id==%s;plannedStartDate=lt=%s;"
                  "plannedEndDate=gt=%s", location, e, s);
    eq = topdesk_escape(q);
    path = xasprintf("/tas/api/reservations?query=%s&$top=20", eq);
    if (topdesk_get(p->rs->td, path, TOPDESK_ACCEPT_JSON, &body, &status, &err, &ra) ==
        TOPDESK_OK) {
        results = rsv_get(body, "results");
        for (size_t i = 0; results && json_object_is_type(results, json_type_array) &&
                           i < json_object_array_length(results) && !taken; i++) {
            json_object *o = json_object_array_get_idx(results, i);

            taken = td_status_live(rsv_str(o, "status")) &&
                    (!except || !rsv_str(o, "id") || strcmp(rsv_str(o, "id"), except) != 0);
        }
    }
    json_object_put(body);
    free(err);
    free(q);
    free(eq);
    free(path);
    return taken;
}

/* TOPdesk's own words in a client error "... 400 Bad Request (WORDS)":
 * WORDS, or all of it; allocated. */
static char *
td_words(const char *err)
{
    const char *open = err ? strchr(err, '(') : NULL, *close = err ? strrchr(err, ')') : NULL;

    if (open && close && close > open + 1)
        return xstrndup(open + 1, (size_t)(close - open - 1));
    return xstrdup(err ? err : "");
}

/* TOPdesk refused the meeting (or booked it as a conflict): the organizer
 * is told why and, with when_refused: decline, the room's copy is declined
 * and a reservation that exists for it is cancelled. */
static int
refused(pull_t *p, json_object *m, const rsv_mapped_t *room, const char *why, int conflict,
        char **errstr, long *retry)
{
    int decline = p->rs->cfg->reservations.outlook.when_refused == REFUSED_DECLINE;
    const char *resid = meeting_str(m, "reservation");
    char *words = td_words(why);
    char *reason = conflict || room_taken(p, room->location_id, meeting_time(m, "start"),
                                          meeting_time(m, "end"), resid)
                       ? text_format(T_OUTLOOK_REASON_TAKEN, NULL)
                       : text_format(T_OUTLOOK_REASON_OTHER, "error", words, NULL);
    char *declined = decline ? text_format(T_OUTLOOK_DECLINED_NOTE, NULL) : xstrdup("");
    int rc = EXCHANGE_OK;

    free(words);
    json_object_object_add(m, "state", json_object_new_string(MEETING_REFUSED));
    meeting_set(m, "error", why);
    if (decline && resid && td_status_live(meeting_str(rsv_get(m, "td"), "status"))) {
        int trc = td_cancel(p, resid, errstr, retry);

        if (trc == TOPDESK_ERETRY) {
            free(reason);
            free(declined);
            return OUTLOOK_ERETRY;
        }
        if (trc == TOPDESK_OK) {
            td_state_t td = {"cancelled", meeting_time(rsv_get(m, "td"), "start"),
                             meeting_time(rsv_get(m, "td"), "end"),
                             meeting_str(rsv_get(m, "td"), "location")};
            meeting_set_td(m, &td);
        }
        free(*errstr);
        *errstr = NULL;
    }
    if (decline && !p->rs->dry_run) {
        rc = exchange_decline(p->rs->ex, room->mailbox, meeting_str(m, "event"), reason, errstr, retry);
        if (rc == EXCHANGE_ERETRY) {
            free(reason);
            free(declined);
            return OUTLOOK_ERETRY;
        }
        if (rc != EXCHANGE_OK) {
            log_warn("outlook: could not decline %s in %s: %s", meeting_str(m, "ical"), room->mailbox,
                     *errstr ? *errstr : "");
            free(*errstr);
            *errstr = NULL;
        }
    }
    mail_organizer(p, m, T_OUTLOOK_REFUSED_SUBJECT, T_OUTLOOK_REFUSED_BODY, "room", room->name,
                   "reason", reason, "declined", declined, NULL);
    apply_note(p, meeting_str(m, "ical"), room->mailbox, decline ? "refused by TOPdesk: declined"
                                                             : "refused by TOPdesk: reported");
    free(reason);
    free(declined);
    return OUTLOOK_OK;
}

/* --- Outlook → TOPdesk -------------------------------------------------------- */

/* A TOPdesk write's refusal (a 4xx) is the meeting's problem, not the job's. */
static int
write_failed(int rc)
{
    return rc == TOPDESK_EFAIL || rc == TOPDESK_ENOTFOUND;
}

static int
create(pull_t *p, json_object *m, const rsv_mapped_t *room, const exchange_event_t *ev,
       char **errstr, long *retry)
{
    json_object *r = NULL, *body, *facs, *fac, *loc, *link, *req;
    char s[32], e[32], *requester = NULL;
    int fallback, rc;
    td_state_t td;

    rc = find_linked(p, meeting_str(m, "ical"), &r, errstr, retry);
    if (rc != TOPDESK_OK)
        return rsv_code_topdesk(rc);
    if (r) {
        apply_note(p, meeting_str(m, "ical"), room->mailbox, "found its reservation in TOPdesk");
    } else {
        rc = requester_for(p, ev, &requester, &fallback, errstr, retry);
        if (rc != TOPDESK_OK)
            return rsv_code_topdesk(rc);
        body = json_object_new_object();
        req = json_object_new_object();
        json_object_object_add(req, "id", json_object_new_string(requester));
        json_object_object_add(body, "requester", req);
        iso(ev->start, s, sizeof s);
        iso(ev->end, e, sizeof e);
        json_object_object_add(body, "plannedStartDate", json_object_new_string(s));
        json_object_object_add(body, "plannedEndDate", json_object_new_string(e));
        facs = json_object_new_array();
        fac = json_object_new_object();
        loc = json_object_new_object();
        json_object_object_add(loc, "id", json_object_new_string(room->location_id));
        json_object_object_add(fac, "location", loc);
        json_object_array_add(facs, fac);
        json_object_object_add(body, "reservedFacilities", facs);
        json_object_object_add(body, "briefDescription",
                               json_object_new_string(meeting_str(m, "subject")));
        json_object_object_add(body, "status", json_object_new_string("planned"));
        link = json_object_new_object();
        json_object_object_add(link, "id", json_object_new_string(meeting_str(m, "ical")));
        json_object_object_add(link, "type", json_object_new_string(RSV_OUTLOOK_LINK_TYPE));
        json_object_object_add(body, "externalLink", link);
        rc = td_write(p, "POST", "/tas/api/reservations", body, &r, errstr, retry);
        json_object_put(body);
        free(requester);
        if (write_failed(rc)) {
            char *why = *errstr;

            *errstr = NULL;
            rc = refused(p, m, room, why ? why : "", 0, errstr, retry);
            free(why);
            return rc;
        }
        if (rc != TOPDESK_OK)
            return rsv_code_topdesk(rc);
        apply_note(p, meeting_str(m, "ical"), room->mailbox,
                   fallback ? "reservation created (fallback requester)" : "reservation created");
    }
    json_object_object_add(m, "state", json_object_new_string(MEETING_ACTIVE));
    json_object_object_del(m, "error");
    if (r) {
        meeting_set(m, "reservation", rsv_str(r, "id"));
        meeting_set(m, "number", rsv_str(r, "number"));
        td_state_of(r, &td);
    } else {
        td = (td_state_t){"planned", ev->start, ev->end, room->location_id};
    }
    if (!td.location)
        td.location = room->location_id;
    meeting_set_td(m, &td);
    if (r && rsv_str(r, "id") && !p->rs->dry_run) {
        /* the room's copy says which reservation holds it; a failure here
         * costs nothing but the tag */
        if (exchange_tag(p->rs->ex, room->mailbox, ev->id, rsv_str(r, "id"), errstr, retry) !=
            EXCHANGE_OK) {
            log_warn("outlook: could not tag %s in %s: %s", ev->id, room->mailbox,
                     *errstr ? *errstr : "");
            free(*errstr);
            *errstr = NULL;
        }
    }
    rc = OUTLOOK_OK;
    if (r && rsv_str(r, "status") && strcmp(rsv_str(r, "status"), "conflictingPlanned") == 0)
        rc = refused(p, m, room, "conflictingPlanned", 1, errstr, retry);
    json_object_put(r);
    return rc;
}

/* The meeting moved (another room, other times, another subject) and a
 * reservation holds it: the changes, one write each. */
static int
update(pull_t *p, json_object *m, const rsv_mapped_t *room, const exchange_event_t *ev,
       const char *old_subject, char **errstr, long *retry)
{
    json_object *tdo = rsv_get(m, "td");
    const char *resid = meeting_str(m, "reservation"), *from = meeting_str(tdo, "location");
    td_state_t td = {meeting_str(tdo, "status"), meeting_time(tdo, "start"), meeting_time(tdo, "end"), from};
    int rc;

    if (from && strcmp(from, room->location_id) != 0) {
        json_object *body = json_object_new_object(), *f = json_object_new_object();
        json_object *t = json_object_new_object(), *fl = json_object_new_object();
        json_object *tl = json_object_new_object();

        json_object_object_add(fl, "id", json_object_new_string(from));
        json_object_object_add(f, "location", fl);
        json_object_object_add(tl, "id", json_object_new_string(room->location_id));
        json_object_object_add(t, "location", tl);
        json_object_object_add(body, "from", f);
        json_object_object_add(body, "to", t);
        rc = td_action(p, "POST", resid, "/reservedFacilities/move", body, errstr, retry);
        if (write_failed(rc))
            goto refused;
        if (rc != TOPDESK_OK)
            return rsv_code_topdesk(rc);
        td.location = room->location_id;
        apply_note(p, meeting_str(m, "ical"), room->mailbox, "reservation moved to this room");
    }
    if (td.start != ev->start || td.end != ev->end) {
        json_object *body = json_object_new_object();
        char s[32], e[32];

        iso(ev->start, s, sizeof s);
        iso(ev->end, e, sizeof e);
        json_object_object_add(body, "plannedStartDate", json_object_new_string(s));
        json_object_object_add(body, "plannedEndDate", json_object_new_string(e));
        rc = td_action(p, "POST", resid, "/reschedule", body, errstr, retry);
        if (write_failed(rc))
            goto refused;
        if (rc != TOPDESK_OK)
            return rsv_code_topdesk(rc);
        td.start = ev->start;
        td.end = ev->end;
        apply_note(p, meeting_str(m, "ical"), room->mailbox, "reservation rescheduled");
    }
    if (old_subject && strcmp(old_subject, meeting_str(m, "subject")) != 0) {
        json_object *body = json_object_new_object();

        json_object_object_add(body, "briefDescription",
                               json_object_new_string(meeting_str(m, "subject")));
        rc = td_action(p, "PATCH", resid, "", body, errstr, retry);
        if (rc == TOPDESK_ERETRY)
            return OUTLOOK_ERETRY;
        if (rc != TOPDESK_OK) {
            log_warn("outlook: could not change the description of %s: %s", resid,
                     *errstr ? *errstr : "");
            free(*errstr);
            *errstr = NULL;
        }
    }
    json_object_object_add(m, "state", json_object_new_string(MEETING_ACTIVE));
    json_object_object_del(m, "error");
    meeting_set_td(m, &td);
    return OUTLOOK_OK;
refused:
    meeting_set_td(m, &td);   /* what was written before the refusal stands */
    {
        char *why = *errstr;

        *errstr = NULL;
        rc = refused(p, m, room, why ? why : "", 0, errstr, retry);
        free(why);
    }
    return rc;
}

int
apply_live(pull_t *p, const rsv_mapped_t *room, const exchange_event_t *ev, char **errstr,
           long *retry)
{
    const char *ical = ev->ical_uid;
    char *desc = describe(ev), *hash = outlook_hash(room->mailbox, ev, desc), *old_subject;
    json_object *m;
    const char *state;
    int lock = store_lock(p->rs->cfg, "meetings", ical, 1), rc = OUTLOOK_OK;

    m = store_load(p->rs->cfg, "meetings", ical);
    if (!m) {
        m = json_object_new_object();
        meeting_set(m, "ical", ical);
    }
    state = meeting_str(m, "state");
    if (meeting_str(m, "applied") && strcmp(meeting_str(m, "applied"), hash) == 0 && state) {
        if (strcmp(state, MEETING_LEAVING) == 0) {
            json_object_object_add(m, "state", json_object_new_string(MEETING_ACTIVE));
            if (!p->rs->dry_run)
                store_save(p->rs->cfg, "meetings", ical, m);
        }
        apply_note(p, ical, room->mailbox, "unchanged");
        goto out;
    }
    old_subject = meeting_str(m, "subject") ? xstrdup(meeting_str(m, "subject")) : NULL;
    meeting_set(m, "room", room->mailbox);
    meeting_set(m, "room_name", room->name);
    meeting_set(m, "event", ev->id);
    meeting_set(m, "subject", desc);
    meeting_set(m, "organizer", ev->organizer);
    meeting_set(m, "organizer_name", ev->organizer_name);
    json_object_object_add(m, "start", json_object_new_int64(ev->start));
    json_object_object_add(m, "end", json_object_new_int64(ev->end));
    if (meeting_str(m, "reservation") && td_status_live(meeting_str(rsv_get(m, "td"), "status")) &&
        (!state || strcmp(state, MEETING_TD_CANCELLED) != 0))
        rc = update(p, m, room, ev, old_subject, errstr, retry);
    else
        rc = create(p, m, room, ev, errstr, retry);
    free(old_subject);
    if (rc == OUTLOOK_OK) {
        meeting_set(m, "applied", hash);
        if (!p->rs->dry_run)
            store_save(p->rs->cfg, "meetings", ical, m);
    }
out:
    json_object_put(m);
    if (lock >= 0)
        close(lock);
    free(desc);
    free(hash);
    return rc;
}

int
apply_gone(pull_t *p, const rsv_mapped_t *room, const char *ical, char **errstr, long *retry)
{
    json_object *m;
    int lock = store_lock(p->rs->cfg, "meetings", ical, 1);
    const char *state;

    (void)errstr;
    (void)retry;
    m = store_load(p->rs->cfg, "meetings", ical);
    state = m ? meeting_str(m, "state") : NULL;
    if (!m || !state || !meeting_str(m, "room") ||
        strcasecmp(meeting_str(m, "room"), room->mailbox) != 0) {
        apply_note(p, ical, room->mailbox, "gone here; held elsewhere or never booked");
    } else if (meeting_str(m, "reservation") &&
               td_status_live(meeting_str(rsv_get(m, "td"), "status")) &&
               strcmp(state, MEETING_TD_CANCELLED) != 0) {
        /* a reservation holds it (active, or refused yet held: a conflicting
         * one, a refused move); another room may hold the meeting now (the
         * organizer changed the room): decided once the other rooms are read */
        json_object_object_add(m, "state", json_object_new_string(MEETING_LEAVING));
        json_object_object_add(p->leaving, ical, json_object_new_string(room->mailbox));
        if (!p->rs->dry_run)
            store_save(p->rs->cfg, "meetings", ical, m);
        apply_note(p, ical, room->mailbox, "gone from this room");
    } else {
        /* refused or cancelled in TOPdesk: nothing in TOPdesk to cancel */
        json_object_object_add(m, "state", json_object_new_string(MEETING_CANCELLED));
        meeting_set(m, "applied", "gone");
        if (!p->rs->dry_run)
            store_save(p->rs->cfg, "meetings", ical, m);
        apply_note(p, ical, room->mailbox, "gone; nothing to cancel");
    }
    json_object_put(m);
    if (lock >= 0)
        close(lock);
    return OUTLOOK_OK;
}

int
apply_left(pull_t *p, const char *ical, const char *mailbox, char **errstr, long *retry)
{
    json_object *m;
    int lock = store_lock(p->rs->cfg, "meetings", ical, 1), rc = OUTLOOK_OK;
    const char *state;

    m = store_load(p->rs->cfg, "meetings", ical);
    state = m ? meeting_str(m, "state") : NULL;
    if (state && strcmp(state, MEETING_LEAVING) == 0 && meeting_str(m, "room") &&
        strcasecmp(meeting_str(m, "room"), mailbox) == 0) {
        const char *resid = meeting_str(m, "reservation");
        int trc = resid ? td_cancel(p, resid, errstr, retry) : TOPDESK_OK;

        if (trc == TOPDESK_ERETRY) {
            rc = OUTLOOK_ERETRY;
        } else {
            json_object *tdo = rsv_get(m, "td");
            td_state_t td = {"cancelled", meeting_time(tdo, "start"), meeting_time(tdo, "end"),
                             meeting_str(tdo, "location")};

            if (trc != TOPDESK_OK) {
                /* TOPdesk will not cancel it (cancelled already, a facility issued) */
                log_warn("outlook: TOPdesk did not cancel reservation %s: %s", resid,
                         *errstr ? *errstr : "");
                free(*errstr);
                *errstr = NULL;
                td.status = meeting_str(tdo, "status");
            }
            meeting_set_td(m, &td);
            json_object_object_add(m, "state", json_object_new_string(MEETING_CANCELLED));
            meeting_set(m, "applied", "gone");
            if (!p->rs->dry_run)
                store_save(p->rs->cfg, "meetings", ical, m);
            apply_note(p, ical, mailbox, trc == TOPDESK_OK ? "reservation cancelled"
                                                           : "cancel refused by TOPdesk");
        }
    }
    json_object_put(m);
    if (lock >= 0)
        close(lock);
    return rc;
}
