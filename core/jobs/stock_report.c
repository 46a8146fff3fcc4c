/* The renderings of a stock report: the digest's text, HTML and CSV parts
 * (every sentence from core/jobs/texts.c) and the JSON of the job result. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/clients/exchange.h"
#include "core/jobs/stock.h"
#include "core/jobs/texts.h"
#include "core/util/buf.h"
#include "core/util/xalloc.h"

#define STOCK_REPORT_MAX (64u * 1024 * 1024)

static int
stock_shown(const stock_room_t *room, int only_new)
{
    if (room->shortfall <= 0 && room->has_minimum)
        return 0;
    return !only_new || room->is_new;
}

/* Characters (not bytes) of a UTF-8 string, for column widths. */
static size_t
stock_width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void
stock_pad(buf_t *b, const char *s, size_t width)
{
    size_t w = stock_width(s);

    buf_puts(b, s);
    for (; w < width; w++)
        buf_puts(b, " ");
}

/* Right-aligned in width characters. */
static void
stock_rpad(buf_t *b, const char *s, size_t width)
{
    for (size_t w = stock_width(s); w < width; w++)
        buf_puts(b, " ");
    buf_puts(b, s);
}

static char *
stock_place(const stock_room_t *room)
{
    if (room->location && room->branch)
        return xasprintf("%s / %s", room->location, room->branch);
    if (room->location || room->branch)
        return xstrdup(room->location ? room->location : room->branch);
    return xstrdup("-");
}

static void
stock_summary(buf_t *b, const stock_report_t *r, int only_new)
{
    size_t shown_short = 0;
    char nshort[24], nrooms[24], nnew[24], nnomin[24], when[TEXT_TIME_SIZE];

    for (size_t i = 0; i < r->n; i++)
        if (stock_shown(&r->rooms[i], only_new) && r->rooms[i].shortfall > 0)
            shown_short++;
    text_append(b, r->nshort == 1 ? T_STOCK_SUMMARY_ONE : T_STOCK_SUMMARY_MANY,
                "generated", text_time(when, exchange_parse_time(r->generated)), "short", text_num(nshort, (long)r->nshort),
                "rooms", text_num(nrooms, (long)r->n), NULL);
    if (only_new)
        text_append(b, T_STOCK_SUMMARY_NEW, "new", text_num(nnew, (long)shown_short), NULL);
    else
        buf_puts(b, ".");
    if (r->nnominimum)
        text_append(b, r->nnominimum == 1 ? T_STOCK_SUMMARY_NOMIN_ONE : T_STOCK_SUMMARY_NOMIN_MANY,
                    "nominimum", text_num(nnomin, (long)r->nnominimum), NULL);
}

/* The table of the rooms under their minimum, in columns. */
static int
stock_text_short(buf_t *b, const stock_report_t *r, int only_new)
{
    size_t wname = stock_width(text_get(T_STOCK_COL_ROOM));
    size_t wplace = stock_width(text_get(T_STOCK_COL_PLACE));
    int any = 0;

    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];
        char *place;

        if (!stock_shown(room, only_new) || room->shortfall <= 0)
            continue;
        place = stock_place(room);
        if (stock_width(room->name) > wname)
            wname = stock_width(room->name);
        if (stock_width(place) > wplace)
            wplace = stock_width(place);
        free(place);
    }
    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];
        char *place;

        if (!stock_shown(room, only_new) || room->shortfall <= 0)
            continue;
        if (!any) {
            text_append(b, T_STOCK_SHORT_HEADING, NULL);
            buf_puts(b, ":\n\n");
            stock_pad(b, text_get(T_STOCK_COL_ROOM), wname + 2);
            stock_pad(b, text_get(T_STOCK_COL_PLACE), wplace + 2);
            stock_rpad(b, text_get(T_STOCK_COL_COUNT), 7);
            stock_rpad(b, text_get(T_STOCK_COL_MINIMUM), 9);
            stock_rpad(b, text_get(T_STOCK_COL_SHORT), 7);
            buf_puts(b, "\n");
            any = 1;
        }
        place = stock_place(room);
        stock_pad(b, room->name, wname + 2);
        stock_pad(b, place, wplace + 2);
        buf_printf(b, "%7ld  %7ld  %5ld\n", room->count, room->minimum, room->shortfall);
        free(place);
    }
    if (!any) {
        text_append(b, T_STOCK_NONE_SHORT, NULL);
        buf_puts(b, "\n");
    }
    return any;
}

char *
stock_report_text(const stock_report_t *r, int only_new)
{
    buf_t b;
    int any_short, any_nomin = 0;
    char count[24], requests[24];

    buf_init(&b, STOCK_REPORT_MAX);
    stock_summary(&b, r, only_new);
    buf_puts(&b, "\n\n");
    any_short = stock_text_short(&b, r, only_new);
    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];
        char *place;

        if (!stock_shown(room, only_new) || room->has_minimum)
            continue;
        if (!any_nomin) {
            buf_puts(&b, "\n");
            text_append(&b, T_STOCK_NOMIN_LINE, NULL);
            buf_puts(&b, ":\n\n");
            any_nomin = 1;
        }
        place = stock_place(room);
        buf_printf(&b, "  %s (%s): ", room->name, place);
        text_append(&b, T_STOCK_IN_STOCK, "count", text_num(count, room->count), NULL);
        buf_puts(&b, "\n");
        free(place);
    }
    if (any_short || any_nomin) {
        buf_puts(&b, "\n");
        text_append(&b, T_STOCK_CARDS_HEADING, NULL);
        buf_puts(&b, ":\n\n");
        for (size_t i = 0; i < r->n; i++)
            if (stock_shown(&r->rooms[i], only_new))
                buf_printf(&b, "  %s: %s\n", r->rooms[i].name, r->rooms[i].url);
    }
    buf_puts(&b, "\n-- \n");
    text_append(&b, T_STOCK_FOOTER, "field", r->field_id ? r->field_id : "", "requests",
                text_num(requests, (long)r->requests), NULL);
    buf_puts(&b, "\n");
    return buf_steal(&b);
}

static void
stock_html_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '&': buf_puts(b, "&amp;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\'': buf_puts(b, "&#39;"); break;
        default: buf_append(b, s, 1); break;
        }
    }
}

/* text id, escaped for HTML. */
static void
stock_html_text(buf_t *b, text_id_t id)
{
    stock_html_escape(b, text_get(id));
}

static void
stock_html_link(buf_t *b, const stock_room_t *room)
{
    buf_puts(b, "<a href=\"");
    stock_html_escape(b, room->url);
    buf_puts(b, "\">");
    stock_html_escape(b, room->name);
    buf_puts(b, "</a>");
}

static void
stock_html_short(buf_t *b, const stock_report_t *r, int only_new)
{
    static const text_id_t cols[] = {T_STOCK_COL_ROOM, T_STOCK_COL_LOCATION, T_STOCK_COL_BRANCH,
                                     T_STOCK_COL_COUNT, T_STOCK_COL_MINIMUM, T_STOCK_COL_SHORT};
    int any = 0;

    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];

        if (!stock_shown(room, only_new) || room->shortfall <= 0)
            continue;
        if (!any) {
            buf_puts(b, "<h3>");
            stock_html_text(b, T_STOCK_SHORT_HEADING);
            buf_puts(b, "</h3>\n<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr>");
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
                buf_puts(b, "<th>");
                stock_html_text(b, cols[c]);
                buf_puts(b, "</th>");
            }
            buf_puts(b, "</tr>\n");
            any = 1;
        }
        buf_puts(b, "<tr><td>");
        stock_html_link(b, room);
        buf_puts(b, "</td><td>");
        stock_html_escape(b, room->location ? room->location : "-");
        buf_puts(b, "</td><td>");
        stock_html_escape(b, room->branch ? room->branch : "-");
        buf_printf(b, "</td><td align=\"right\">%ld</td><td align=\"right\">%ld</td>"
                      "<td align=\"right\"><b>%ld</b></td></tr>\n",
                   room->count, room->minimum, room->shortfall);
    }
    if (any) {
        buf_puts(b, "</table>\n");
    } else {
        buf_puts(b, "<p>");
        stock_html_text(b, T_STOCK_NONE_SHORT);
        buf_puts(b, "</p>\n");
    }
}

char *
stock_report_html(const stock_report_t *r, int only_new)
{
    buf_t b, summary;
    int any_nomin = 0;
    char count[24];

    buf_init(&b, STOCK_REPORT_MAX);
    buf_init(&summary, 4096);
    stock_summary(&summary, r, only_new);
    buf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    stock_html_text(&b, T_STOCK_TITLE);
    buf_puts(&b, "</title></head>\n<body style=\"font-family: sans-serif\">\n<p>");
    stock_html_escape(&b, buf_str(&summary));
    buf_puts(&b, "</p>\n");
    buf_free(&summary);
    stock_html_short(&b, r, only_new);
    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];
        char *in_stock;

        if (!stock_shown(room, only_new) || room->has_minimum)
            continue;
        if (!any_nomin) {
            buf_puts(&b, "<h3>");
            stock_html_text(&b, T_STOCK_NOMIN_HEADING);
            buf_puts(&b, "</h3>\n<p>");
            stock_html_text(&b, T_STOCK_NOMIN_HINT);
            buf_puts(&b, "</p>\n<ul>\n");
            any_nomin = 1;
        }
        buf_puts(&b, "<li>");
        stock_html_link(&b, room);
        buf_puts(&b, " (");
        stock_html_escape(&b, room->location ? room->location : "-");
        buf_puts(&b, " / ");
        stock_html_escape(&b, room->branch ? room->branch : "-");
        buf_puts(&b, "): ");
        in_stock = text_format(T_STOCK_IN_STOCK, "count", text_num(count, room->count), NULL);
        stock_html_escape(&b, in_stock);
        free(in_stock);
        buf_puts(&b, "</li>\n");
    }
    if (any_nomin)
        buf_puts(&b, "</ul>\n");
    buf_puts(&b, "</body></html>\n");
    return buf_steal(&b);
}

/* One CSV cell (RFC 4180); a cell that a spreadsheet would run as a
 * formula gets a leading apostrophe. */
static void
stock_csv_cell(buf_t *b, const char *s)
{
    buf_puts(b, "\"");
    if (strchr("=+-@\t\r", *s) && *s)
        buf_puts(b, "'");
    for (; *s; s++) {
        if (*s == '"')
            buf_puts(b, "\"\"");
        else
            buf_append(b, s, 1);
    }
    buf_puts(b, "\"");
}

char *
stock_report_csv(const stock_report_t *r, int only_new, char sep)
{
    const char s[2] = {sep, '\0'};
    buf_t b;

    buf_init(&b, STOCK_REPORT_MAX);
    /* the byte order mark makes Excel read the file as UTF-8 */
    buf_puts(&b, "\xef\xbb\xbf");
    text_append(&b, T_STOCK_CSV_HEADER, "sep", s, NULL);
    buf_puts(&b, "\r\n");
    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];

        if (!stock_shown(room, only_new))
            continue;
        stock_csv_cell(&b, room->name);
        buf_puts(&b, s);
        stock_csv_cell(&b, room->location ? room->location : "");
        buf_puts(&b, s);
        stock_csv_cell(&b, room->branch ? room->branch : "");
        if (room->has_minimum)
            buf_printf(&b, "%c%ld%c%ld%c%ld%c", sep, room->count, sep, room->minimum, sep,
                       room->shortfall, sep);
        else
            buf_printf(&b, "%c%ld%c%c%c", sep, room->count, sep, sep, sep);
        text_append(&b, room->has_minimum ? T_STOCK_CSV_SHORT : T_STOCK_CSV_NOMIN, NULL);
        buf_puts(&b, s);
        stock_csv_cell(&b, room->url);
        buf_puts(&b, "\r\n");
    }
    return buf_steal(&b);
}

static json_object *
stock_json_str(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

json_object *
stock_report_json(const stock_report_t *r)
{
    json_object *root = json_object_new_object(), *rooms = json_object_new_array();

    json_object_object_add(root, "generated", json_object_new_string(r->generated));
    json_object_object_add(root, "field", stock_json_str(r->field_id));
    json_object_object_add(root, "stock_rooms", json_object_new_int64((int64_t)r->n));
    json_object_object_add(root, "short", json_object_new_int64((int64_t)r->nshort));
    json_object_object_add(root, "without_minimum", json_object_new_int64((int64_t)r->nnominimum));
    json_object_object_add(root, "requests", json_object_new_int64((int64_t)r->requests));
    for (size_t i = 0; i < r->n; i++) {
        const stock_room_t *room = &r->rooms[i];
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(room->id));
        json_object_object_add(o, "name", json_object_new_string(room->name));
        json_object_object_add(o, "location", stock_json_str(room->location));
        json_object_object_add(o, "branch", stock_json_str(room->branch));
        json_object_object_add(o, "assets", json_object_new_int64(room->assets));
        json_object_object_add(o, "bulk_items", json_object_new_int64(room->bulk));
        json_object_object_add(o, "count", json_object_new_int64(room->count));
        json_object_object_add(o, "minimum",
                               room->has_minimum ? json_object_new_int64(room->minimum) : NULL);
        json_object_object_add(o, "shortfall", json_object_new_int64(room->shortfall));
        json_object_object_add(o, "status",
                               json_object_new_string(room->shortfall > 0 ? "short"
                                                      : room->has_minimum ? "ok" : "no minimum"));
        json_object_object_add(o, "new", json_object_new_boolean(room->is_new));
        json_object_object_add(o, "url", json_object_new_string(room->url ? room->url : ""));
        json_object_array_add(rooms, o);
    }
    json_object_object_add(root, "rooms", rooms);
    return root;
}
