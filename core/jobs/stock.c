#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/clients/topdesk.h"
#include "core/jobs/mailjob.h"
#include "core/jobs/stock.h"
#include "core/jobs/texts.h"
#include "core/util/buf.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* The link type "asset is in stock" (Assets API 1.91.1). */
#define STOCK_CAPABILITY "dad98dad-054b-41ae-a727-3e3b37342739"
#define STOCK_PAGE 1000

typedef struct {
    stock_report_t *r;
    const config_t *cfg;
    size_t alloc;
    size_t done;             /* rooms whose counts are complete */
    size_t pending_bulk;     /* not used for progress, kept simple */
    void (*progress)(size_t, size_t);
} stock_run_t;

/* Per-room context for the counting requests. */
typedef struct {
    stock_run_t *run;
    size_t index;
    int parts_left;          /* counting requests still out for this room */
    char *last_name;         /* stockQuantities seek position */
    long seen;               /* stockQuantities rows seen */
} stock_ctx_t;

void
stock_report_free(stock_report_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rooms[i].id);
        free(r->rooms[i].name);
        free(r->rooms[i].location);
        free(r->rooms[i].branch);
        free(r->rooms[i].url);
    }
    free(r->rooms);
    free(r->field_id);
    free(r->generated);
    free(r);
}

static const char *
stock_str(json_object *obj, const char *key)
{
    json_object *v;

    if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A number field's value: a JSON number or a numeric string.  0 when absent
 * or empty (then *set is 0). */
static long
stock_number(json_object *v, int *set)
{
    *set = 0;
    if (!v || json_object_is_type(v, json_type_null))
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *set = 1;
        return (long)json_object_get_int64(v);
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (d != d || d > 1e15 || d < -1e15)
            return 0;
        *set = 1;
        return (long)(d + (d >= 0 ? 0.5 : -0.5));
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        double d;

        while (*s == ' ')
            s++;
        if (!*s)
            return 0;
        errno = 0;
        d = strtod(s, &end);
        while (*end == ' ')
            end++;
        if (errno || *end || d != d || d > 1e15 || d < -1e15)
            return 0;
        *set = 1;
        return (long)(d + (d >= 0 ? 0.5 : -0.5));
    }
    return 0;
}

/* A name from TOPdesk for the report: control characters (CR, LF, tab)
 * become spaces, so no name can break a line of the text, HTML or CSV.
 * Allocated. */
static char *
stock_clean(const char *s)
{
    char *c = xstrdup(s);

    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return c;
}

/* --- the field -------------------------------------------------------- */

static int
stock_field_match(json_object *fields, const char *want, char **id)
{
    size_t n;

    if (!fields || !json_object_is_type(fields, json_type_array))
        return 0;
    n = json_object_array_length(fields);
    /* An exact id wins over a name. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            json_object *f = json_object_array_get_idx(fields, i);
            const char *fid = stock_str(f, "id"), *name = stock_str(f, "name");
            if (!fid)
                continue;
            if ((pass == 0 && strcmp(fid, want) == 0) ||
                (pass == 1 && name && strcasecmp(name, want) == 0)) {
                const char *type = stock_str(f, "fieldType");
                if (type && strcmp(type, "numberField") != 0)
                    log_warn("field \"%s\" is a %s, not a number field; reading it as a number",
                             want, type);
                *id = xstrdup(fid);
                return 1;
            }
        }
    return 0;
}

static int
stock_resolve_field(topdesk_t *td, const char *want, char **id, char **errstr, long *retry)
{
    json_object *body = NULL, *fields;
    char *esc = topdesk_escape(want), *path;
    int rc, status, found = 0;

    for (int pass = 0; pass < 2 && !found; pass++) {
        path = pass == 0 ? xasprintf("/tas/api/assetmgmt/fields?searchTerm=%s", esc)
                         : xstrdup("/tas/api/assetmgmt/fields");
        rc = topdesk_get(td, path, TOPDESK_ACCEPT_FIELDS, &body, &status, errstr, retry);
        free(path);
        if (rc != TOPDESK_OK) {
            free(esc);
            return rc;
        }
        if (body && json_object_object_get_ex(body, "fields", &fields))
            found = stock_field_match(fields, want, id);
        else if (body && json_object_is_type(body, json_type_array))
            found = stock_field_match(body, want, id);
        json_object_put(body);
        body = NULL;
    }
    free(esc);
    if (!found) {
        *errstr = xasprintf(
            "TOPdesk has no asset field \"%s\". Create it: Asset Management > Templates > "
            "your stock room template > design mode > add a number field named \"%s\" "
            "and fill it in on every stock room; or set stock_check.minimum_field to the "
            "name or id of the field you use.",
            want, want);
        return TOPDESK_EFAIL;
    }
    return TOPDESK_OK;
}

/* --- the stock rooms ------------------------------------------------------ */

static void
stock_assignment(json_object *item, char **location, char **branch)
{
    json_object *as = NULL, *locs, *first, *o;

    if (!json_object_object_get_ex(item, "@assignments", &as) &&
        !json_object_object_get_ex(item, "assignments", &as))
        return;
    if (!json_object_object_get_ex(as, "locations", &locs) ||
        !json_object_is_type(locs, json_type_array) || json_object_array_length(locs) == 0)
        return;
    first = json_object_array_get_idx(locs, 0);
    if (json_object_object_get_ex(first, "location", &o) && stock_str(o, "name"))
        *location = stock_clean(stock_str(o, "name"));
    if (json_object_object_get_ex(first, "branch", &o) && stock_str(o, "name"))
        *branch = stock_clean(stock_str(o, "name"));
}

static char *
stock_list_path(const char *field_id, size_t start, int count)
{
    char *f = topdesk_escape(field_id);
    char *p = xasprintf("/tas/api/assetmgmt/assets?resourceCategory=stock&archived=false"
                        "&fields=name,%s&showAssignments=true&pageStart=%zu&pageSize=%d%s",
                        f, start, STOCK_PAGE, count ? "&fetchCount=true" : "");
    free(f);
    return p;
}

static int
stock_on_list(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    stock_run_t *run = arg;
    stock_report_t *r = run->r;
    json_object *data, *count;
    size_t n;

    if (!res->body || !json_object_object_get_ex(res->body, "dataSet", &data) ||
        !json_object_is_type(data, json_type_array)) {
        *errstr = xstrdup("TOPdesk's stock room list has no dataSet");
        return TOPDESK_EFAIL;
    }
    n = json_object_array_length(data);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(data, i), *v = NULL;
        const char *id = topdesk_item_id(item);
        stock_room_t *room;

        if (!id)
            continue;
        if (json_object_object_get_ex(item, "archived", &v) && json_object_get_boolean(v))
            continue;
        if (r->n == run->alloc) {
            run->alloc = run->alloc ? run->alloc * 2 : 64;
            r->rooms = xrealloc(r->rooms, run->alloc * sizeof *r->rooms);
        }
        room = &r->rooms[r->n++];
        memset(room, 0, sizeof *room);
        room->id = xstrdup(id);
        room->name = stock_clean(stock_str(item, "name") ? stock_str(item, "name") : id);
        v = NULL;
        json_object_object_get_ex(item, r->field_id, &v);
        room->minimum = stock_number(v, &room->has_minimum);
        stock_assignment(item, &room->location, &room->branch);
    }
    if (res->status == 206 && n == 0) {
        *errstr = xstrdup("TOPdesk answered 206 (more to come) with an empty page");
        return TOPDESK_EFAIL;
    }
    /* The first page tells how many there are and how many a page holds
     * (a server may give fewer than asked): ask for the rest at once. */
    if (strstr(res->path, "fetchCount=true") && res->status == 206 &&
        json_object_object_get_ex(res->body, "count", &count)) {
        long long total = json_object_get_int64(count);
        for (long long start = (long long)n; start < total; start += (long long)n) {
            char *p = stock_list_path(r->field_id, (size_t)start, 0);
            topdesk_submit(td, p, TOPDESK_ACCEPT_ASSETS, stock_on_list, run);
            free(p);
        }
    } else if (res->status == 206 && strstr(res->path, "fetchCount=true")) {
        /* No count in the answer: walk page by page. */
        const char *ps = strstr(res->path, "pageStart=");
        size_t start = ps ? (size_t)strtoul(ps + 10, NULL, 10) : 0;
        char *p = stock_list_path(r->field_id, start + n, 1);
        topdesk_submit(td, p, TOPDESK_ACCEPT_ASSETS, stock_on_list, run);
        free(p);
    }
    return TOPDESK_OK;
}

/* --- the counts ----------------------------------------------------------- */

static void
stock_part_done(stock_ctx_t *ctx)
{
    if (--ctx->parts_left > 0)
        return;
    ctx->run->done++;
    if (ctx->run->progress && (ctx->run->done % 50 == 0 || ctx->run->done == ctx->run->r->n))
        ctx->run->progress(ctx->run->done, ctx->run->r->n);
}

static int
stock_on_assets(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    stock_ctx_t *ctx = arg;
    json_object *count;

    (void)td;
    if (!res->body || !json_object_object_get_ex(res->body, "count", &count)) {
        *errstr = xasprintf("TOPdesk did not count the assets in stock room %s",
                            ctx->run->r->rooms[ctx->index].name);
        return TOPDESK_EFAIL;
    }
    ctx->run->r->rooms[ctx->index].assets = (long)json_object_get_int64(count);
    stock_part_done(ctx);
    return TOPDESK_OK;
}

static char *
stock_bulk_path(const char *stock_id, const char *last_name)
{
    char *id = topdesk_escape(stock_id), *p;

    if (last_name) {
        char *ln = topdesk_escape(last_name);
        p = xasprintf("/tas/api/assetmgmt/stockQuantities?stockId=%s&pageSize=%d&lastSeenName=%s",
                      id, STOCK_PAGE, ln);
        free(ln);
    } else {
        p = xasprintf("/tas/api/assetmgmt/stockQuantities?stockId=%s&pageSize=%d", id, STOCK_PAGE);
    }
    free(id);
    return p;
}

static int
stock_on_bulk(topdesk_t *td, const topdesk_response_t *res, void *arg, char **errstr)
{
    stock_ctx_t *ctx = arg;
    stock_room_t *room = &ctx->run->r->rooms[ctx->index];
    json_object *data, *total = NULL;
    size_t n = 0;

    if (res->body) {
        if (!json_object_object_get_ex(res->body, "dataSet", &data) ||
            !json_object_is_type(data, json_type_array)) {
            *errstr = xasprintf("TOPdesk's stock quantities of %s have no dataSet", room->name);
            return TOPDESK_EFAIL;
        }
        n = json_object_array_length(data);
        for (size_t i = 0; i < n; i++) {
            json_object *row = json_object_array_get_idx(data, i), *v = NULL, *bi = NULL, *st;
            int set;
            long q;

            json_object_object_get_ex(row, "quantity", &v);
            q = stock_number(v, &set);
            if (set && q > 0)
                room->bulk += q;
            if (json_object_object_get_ex(row, "bulkItem", &bi) && stock_str(bi, "name")) {
                free(ctx->last_name);
                ctx->last_name = xstrdup(stock_str(bi, "name"));
            }
            /* Stock quantities name the stock's place too. */
            if (!room->location && json_object_object_get_ex(row, "stock", &st)) {
                json_object *o;
                if (json_object_object_get_ex(st, "location", &o) && stock_str(o, "name"))
                    room->location = stock_clean(stock_str(o, "name"));
                if (!room->branch && json_object_object_get_ex(st, "branch", &o) && stock_str(o, "name"))
                    room->branch = stock_clean(stock_str(o, "name"));
            }
        }
        ctx->seen += (long)n;
        json_object_object_get_ex(res->body, "total", &total);
    }
    if (n == STOCK_PAGE && ctx->last_name &&
        (!total || ctx->seen < (long)json_object_get_int64(total))) {
        char *p = stock_bulk_path(room->id, ctx->last_name);
        topdesk_submit(td, p, TOPDESK_ACCEPT_STOCK_QUANTITIES, stock_on_bulk, ctx);
        free(p);
        return TOPDESK_OK;
    }
    stock_part_done(ctx);
    return TOPDESK_OK;
}

/* --- sorting and the run ------------------------------------------------- */

static int
stock_rank(const stock_room_t *a)
{
    if (a->shortfall > 0)
        return 0;
    return a->has_minimum ? 2 : 1;
}

static int
stock_cmp(const void *pa, const void *pb)
{
    const stock_room_t *a = pa, *b = pb;
    int ra = stock_rank(a), rb = stock_rank(b), c;

    if (ra != rb)
        return ra - rb;
    if (ra == 0 && a->shortfall != b->shortfall)
        return a->shortfall > b->shortfall ? -1 : 1;
    c = strcasecmp(a->name, b->name);
    return c ? c : strcmp(a->id, b->id);
}

static char *
stock_now_iso(void)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return xstrdup(ts);
}

static int
stock_error_code(int td_rc)
{
    return td_rc == TOPDESK_ERETRY ? STOCK_ERETRY : STOCK_EFAIL;
}

/* The field and the stock room list, without counting. */
static int
stock_list_rooms(topdesk_t *td, stock_run_t *run, char **errstr, long *retry_after_ms)
{
    char *p;
    int rc = stock_resolve_field(td, run->cfg->stock_check.minimum_field, &run->r->field_id,
                                 errstr, retry_after_ms);

    if (rc)
        return rc;
    p = stock_list_path(run->r->field_id, 0, 1);
    topdesk_submit(td, p, TOPDESK_ACCEPT_ASSETS, stock_on_list, run);
    free(p);
    return topdesk_run(td, errstr, retry_after_ms);
}

int
stock_minimums(const config_t *cfg, size_t *rooms, size_t *filled, char **field_id,
               char **errstr)
{
    topdesk_t *td = topdesk_new(cfg);
    stock_report_t *r = xcalloc(1, sizeof *r);
    stock_run_t run = {r, cfg, 0, 0, 0, NULL};
    long retry;
    int rc = stock_list_rooms(td, &run, errstr, &retry);

    *rooms = *filled = 0;
    *field_id = NULL;
    if (r->field_id)
        *field_id = xstrdup(r->field_id);
    if (rc == TOPDESK_OK) {
        *rooms = r->n;
        for (size_t i = 0; i < r->n; i++)
            *filled += r->rooms[i].has_minimum;
    }
    stock_report_free(r);
    topdesk_free(td);
    return rc;
}

int
stock_check_run(const config_t *cfg, stock_report_t **out, char **errstr,
                long *retry_after_ms, void (*progress)(size_t done, size_t total))
{
    topdesk_t *td = topdesk_new(cfg);
    stock_report_t *r = xcalloc(1, sizeof *r);
    stock_run_t run = {r, cfg, 0, 0, 0, progress};
    stock_ctx_t *ctx = NULL;
    char *p;
    int rc;

    *out = NULL;
    *retry_after_ms = -1;
    r->generated = stock_now_iso();
    rc = stock_list_rooms(td, &run, errstr, retry_after_ms);
    if (rc)
        goto out;
    log_info("stock check: %zu stock rooms; counting what each holds", r->n);

    ctx = xcalloc(r->n ? r->n : 1, sizeof *ctx);
    for (size_t i = 0; i < r->n; i++) {
        stock_room_t *room = &r->rooms[i];
        char *id = topdesk_escape(room->id);

        ctx[i].run = &run;
        ctx[i].index = i;
        if (cfg->stock_check.count & CONFIG_COUNT_ASSETS) {
            ctx[i].parts_left++;
            p = xasprintf("/tas/api/assetmgmt/assets?resourceCategory=asset&archived=false"
                          "&linkedToAsset=%s&linkedWithDirection=any&linkedWithCapability=%s"
                          "&fetchCount=true&fetchData=false&pageSize=1",
                          id, STOCK_CAPABILITY);
            topdesk_submit(td, p, TOPDESK_ACCEPT_ASSETS, stock_on_assets, &ctx[i]);
            free(p);
        }
        if (cfg->stock_check.count & CONFIG_COUNT_BULK_ITEMS) {
            ctx[i].parts_left++;
            p = stock_bulk_path(room->id, NULL);
            topdesk_submit(td, p, TOPDESK_ACCEPT_STOCK_QUANTITIES, stock_on_bulk, &ctx[i]);
            free(p);
        }
        free(id);
    }
    rc = topdesk_run(td, errstr, retry_after_ms);
    if (rc)
        goto out;

    for (size_t i = 0; i < r->n; i++) {
        stock_room_t *room = &r->rooms[i];
        char *id = topdesk_escape(room->id);

        room->count = ((cfg->stock_check.count & CONFIG_COUNT_ASSETS) ? room->assets : 0) +
                      ((cfg->stock_check.count & CONFIG_COUNT_BULK_ITEMS) ? room->bulk : 0);
        room->shortfall = room->has_minimum && room->minimum > room->count
                              ? room->minimum - room->count : 0;
        room->url = xasprintf("%s/tas/secure/assetmgmt/card.html?unid=%s", cfg->topdesk.url, id);
        free(id);
        if (room->shortfall > 0)
            r->nshort++;
        else if (!room->has_minimum)
            r->nnominimum++;
    }
    qsort(r->rooms, r->n, sizeof *r->rooms, stock_cmp);

out:
    r->requests = topdesk_requests(td);
    if (ctx) {
        for (size_t i = 0; i < r->n; i++)
            free(ctx[i].last_name);
        free(ctx);
    }
    topdesk_free(td);
    if (rc) {
        stock_report_free(r);
        return stock_error_code(rc);
    }
    *out = r;
    return STOCK_OK;
}

/* --- the job ------------------------------------------------------------ */

/* stock_check.csv_separator; auto: ";" for Dutch (a Dutch Excel reads
 * ";" as its list separator), "," for English. */
static char
stock_csv_separator(const config_t *cfg)
{
    switch (cfg->stock_check.csv_separator) {
    case CSV_SEPARATOR_COMMA:
        return ',';
    case CSV_SEPARATOR_SEMICOLON:
        return ';';
    case CSV_SEPARATOR_AUTO:
    default:
        return cfg->mail.language == LANGUAGE_NL ? ';' : ',';
    }
}

static char *
stock_subject(const stock_report_t *r, int only_new, size_t nnew)
{
    const stock_room_t *top = r->n && r->rooms[0].shortfall > 0 ? &r->rooms[0] : NULL;
    size_t n = only_new ? nnew : r->nshort;
    char num[24], shortfall[24];

    text_num(num, (long)n);
    if (!n)
        return text_format(T_STOCK_SUBJECT_NONE, NULL);
    if (top && !only_new)
        return text_format(n == 1 ? T_STOCK_SUBJECT_ONE : T_STOCK_SUBJECT_MANY, "rooms", num,
                           "name", top->name, "short", text_num(shortfall, top->shortfall), NULL);
    return text_format(n == 1 ? T_STOCK_SUBJECT_NEW_ONE : T_STOCK_SUBJECT_NEW_MANY, "new", num,
                       NULL);
}

const config_list_t *
stock_recipients(const config_t *cfg, const stock_report_t *r, size_t nnew, int mailed_today,
                 const char **why)
{
    int only_new = cfg->stock_check.repeat == REPEAT_ONLY_NEW;

    if (!cfg->stock_check.always_mail && (only_new ? nnew == 0 : r->nshort == 0)) {
        *why = only_new ? "not needed: no stock room fell short since the last report"
                        : "not needed: no stock room is under its minimum";
        return NULL;
    }
    if (!only_new && mailed_today && nnew == 0) {
        *why = "not needed: today's digest went out already, and nothing new fell short";
        return NULL;
    }
    if (cfg->stock_check.to.n)
        return &cfg->stock_check.to;
    if (cfg->admin_mail.n)
        return &cfg->admin_mail;
    *why = "not sent: stock_check.to and admin_mail are empty";
    return NULL;
}

char *
stock_digest(const config_t *cfg, const stock_report_t *r, size_t nnew, const config_list_t *to)
{
    int only_new = cfg->stock_check.repeat == REPEAT_ONLY_NEW;
    char *text = stock_report_text(r, only_new), *html = stock_report_html(r, only_new);
    char *csv = stock_report_csv(r, only_new, stock_csv_separator(cfg)), *subject = stock_subject(r, only_new, nnew);
    mime_attachment_t att = {text_get(T_STOCK_CSV_FILE), "text/csv; charset=utf-8", csv,
                             strlen(csv)};
    mime_msg_t msg = {cfg->mail.from, to->v, to->n, subject, text, html, &att, 1};
    char *message = mime_build(&msg);

    free(text);
    free(html);
    free(csv);
    free(subject);
    return message;
}

int
stock_run(const config_t *cfg, const stock_how_t *how, json_object **result, char **errstr,
          long *retry_after_ms)
{
    stock_report_t *r = NULL;
    const config_list_t *to = NULL;
    const char *why = NULL;
    char *mail_state = NULL, *mail_job = NULL;
    size_t nnew;
    int rc, mailed_today;

    *result = NULL;
    rc = stock_check_run(cfg, &r, errstr, retry_after_ms, how->progress);
    if (rc)
        return rc;
    mailed_today = stock_mailed_today(cfg);
    nnew = stock_mark_new(cfg, r, STOCK_SAVE_NOT);
    if (how->on_report)
        how->on_report(r, how->dry_run, how->arg);
    if (how->dry_run)
        why = "dry run: not sent";
    else
        to = stock_recipients(cfg, r, nnew, mailed_today, &why);
    if (to) {
        char *message = stock_digest(cfg, r, nnew, to);

        rc = how->deliver(to, message, how->arg, &mail_state, &mail_job, errstr);
        free(message);
        if (rc != STOCK_OK) {
            stock_report_free(r);
            free(mail_state);
            free(mail_job);
            return rc;
        }
    }
    /* Only a report that went out (or was not needed) moves the state on. */
    if (!how->dry_run)
        stock_mark_new(cfg, r, to ? STOCK_SAVE_MAILED : STOCK_SAVE);
    *result = stock_report_json(r);
    json_object_object_add(*result, "mail", json_object_new_string(mail_state ? mail_state : why));
    if (mail_job)
        json_object_object_add(*result, "mail_job", json_object_new_string(mail_job));
    log_info("stock check: %zu stock rooms, %zu under their minimum, %zu without; mail %s",
             r->n, r->nshort, r->nnominimum, mail_state ? mail_state : why);
    free(mail_state);
    free(mail_job);
    stock_report_free(r);
    return STOCK_OK;
}

/* The hook's way out for the digest: a mail job. */
static int
stock_queue_digest(const config_list_t *to, const char *message, void *arg, char **state,
                   char **ref, char **errstr)
{
    char mail_id[QUEUE_ID_MAX] = "";

    if (mailjob_enqueue(arg, to->v, to->n, message, mail_id) != QUEUE_OK) {
        *errstr = xstrdup("could not queue the digest mail");
        return STOCK_ERETRY;
    }
    *state = xstrdup("queued");
    *ref = xstrdup(mail_id);
    return STOCK_OK;
}

int
stock_job(const config_t *cfg, queue_t *q, json_object *payload, json_object **result,
          char **errstr, long *retry_after_ms)
{
    stock_how_t how = {.deliver = stock_queue_digest, .arg = q};
    json_object *v;

    if (payload && json_object_object_get_ex(payload, "dry_run", &v))
        how.dry_run = json_object_get_boolean(v);
    return stock_run(cfg, &how, result, errstr, retry_after_ms);
}
