/* The texts people read: see core/jobs/texts.h. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/jobs/texts.h"

#define TEXT_MAX (64u * 1024 * 1024)

static const char *const texts_en[T_COUNT] = {
    [T_NOTICE_UNMAPPED_SUBJECT] = "Reservation {number}: room {room} is not linked to Exchange",
    [T_NOTICE_UNMAPPED_BODY] =
        "The room \"{room}\" is not mapped to an Exchange room mailbox, so this reservation "
        "is not in any room calendar. Ask the TOPdesk administrator to fill in the room "
        "mailbox in the location field {field} of \"{room}\" (or in room_mapping.static of "
        "tdhook).",
    [T_NOTICE_CONFLICT_SUBJECT] = "Reservation {number}: {room} is already booked",
    [T_NOTICE_CONFLICT_BODY] =
        "The room \"{room}\" is already booked in Exchange at that time: {what}. tdhook did "
        "not book it. Please choose another time or room in TOPdesk, or settle it with "
        "whoever made the other booking.",
    [T_NOTICE_REFUSED_SUBJECT] = "Reservation {number}: room calendar of {room} not updated",
    [T_NOTICE_REFUSED_BODY] =
        "Exchange refused to update the calendar of room \"{room}\" ({mailbox}): {error}. "
        "The TOPdesk administrator has been told; the reservation itself stands in TOPdesk.",
    [T_NOTICE_NO_EMAIL_SUBJECT] = "Reservation {number}: requester has no e-mail address",
    [T_NOTICE_NO_EMAIL_BODY] =
        "The requester {requester} has no valid e-mail address on their TOPdesk person card, "
        "so they cannot be told about this booking or its problems. The room calendar was "
        "updated all the same. Please add their Exchange e-mail address to the person card.",
    [T_NOTICE_FOOTER] =
        "\n\nReservation {number} ({description}), {start} to {end}.\n\n-- \n"
        "tdhook reservation sync\n",

    [T_STOCK_SUBJECT_NONE] = "Stock check: no stock room under its minimum",
    [T_STOCK_SUBJECT_ONE] = "Stock below minimum: {name} ({short} short)",
    [T_STOCK_SUBJECT_MANY] = "Stock below minimum: {rooms} stock rooms (most short: {name}, {short})",
    [T_STOCK_SUBJECT_NEW_ONE] = "Stock below minimum: {new} stock room newly short",
    [T_STOCK_SUBJECT_NEW_MANY] = "Stock below minimum: {new} stock rooms newly short",
    [T_STOCK_SUMMARY_ONE] = "Stock check of {generated}: {short} of {rooms} stock rooms is under "
                            "their minimum",
    [T_STOCK_SUMMARY_MANY] = "Stock check of {generated}: {short} of {rooms} stock rooms are "
                             "under their minimum",
    [T_STOCK_SUMMARY_NEW] = "; {new} fell short since the last report.",
    [T_STOCK_SUMMARY_NOMIN_ONE] = " {nominimum} has no minimum set.",
    [T_STOCK_SUMMARY_NOMIN_MANY] = " {nominimum} have no minimum set.",
    [T_STOCK_TITLE] = "Stock check",
    [T_STOCK_SHORT_HEADING] = "Under the minimum, to reorder",
    [T_STOCK_NONE_SHORT] = "No stock room is under its minimum.",
    [T_STOCK_NOMIN_HEADING] = "Without a minimum",
    [T_STOCK_NOMIN_HINT] = "Fill in the field on the stock room's card.",
    [T_STOCK_NOMIN_LINE] = "Without a minimum (fill in the field on the stock room's card)",
    [T_STOCK_CARDS_HEADING] = "Stock cards in TOPdesk",
    [T_STOCK_IN_STOCK] = "{count} in stock",
    [T_STOCK_FOOTER] = "tdhook stock check, field \"{field}\", {requests} TOPdesk requests",
    [T_STOCK_COL_ROOM] = "Stock room",
    [T_STOCK_COL_PLACE] = "Location / branch",
    [T_STOCK_COL_LOCATION] = "Location",
    [T_STOCK_COL_BRANCH] = "Branch",
    [T_STOCK_COL_COUNT] = "Count",
    [T_STOCK_COL_MINIMUM] = "Minimum",
    [T_STOCK_COL_SHORT] = "Short",
    [T_STOCK_CSV_HEADER] = "stock_room,location,branch,count,minimum,shortfall,status,url",
    [T_STOCK_CSV_SHORT] = "short",
    [T_STOCK_CSV_NOMIN] = "no minimum",
    [T_STOCK_CSV_FILE] = "stock-check.csv",

    [T_DEAD_SUBJECT] = "tdhook: {kind} job {id} failed",
    [T_DEAD_BODY] = "The {kind} job {id} failed and will not be tried again by itself.\n\n"
                    "What went wrong:\n  {error}\n\n"
                    "When the cause is fixed, run it again with:\n  tdhook queue retry {id}\n"
                    "or remove it with:\n  tdhook queue drop {id}\n",
    [T_DEAD_NO_REASON] = "(no reason recorded)",
    [T_DOCTOR_SUBJECT] = "tdhook doctor: test mail",
    [T_DOCTOR_BODY] = "This mail shows that tdhook can send mail from this address.\n",
};

static const char *const *const text_tables[TEXT_LANGS] = {
    [TEXT_EN] = texts_en,
};

static text_lang_t text_lang = TEXT_EN;

void
text_language(text_lang_t lang)
{
    text_lang = lang < TEXT_LANGS ? lang : TEXT_EN;
}

const char *
text_get(text_id_t id)
{
    const char *s;

    if ((unsigned)id >= T_COUNT)
        return "";
    s = text_tables[text_lang][id];
    return s ? s : texts_en[id] ? texts_en[id] : "";
}

/* The value of placeholder name (len bytes) among the pairs of ap, or NULL
 * when none is given. */
static const char *
text_value(const char *name, size_t len, va_list ap, int *found)
{
    const char *n, *v;
    va_list aq;

    *found = 0;
    va_copy(aq, ap);
    while ((n = va_arg(aq, const char *)) != NULL) {
        v = va_arg(aq, const char *);
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            *found = 1;
            va_end(aq);
            return v ? v : "";
        }
    }
    va_end(aq);
    return NULL;
}

static void
text_vappend(buf_t *b, text_id_t id, va_list ap)
{
    const char *s = text_get(id), *open, *close, *v;
    int found;

    while ((open = strchr(s, '{')) != NULL) {
        close = strchr(open + 1, '}');
        if (!close)
            break;
        buf_append(b, s, (size_t)(open - s));
        v = text_value(open + 1, (size_t)(close - open - 1), ap, &found);
        if (found)
            buf_puts(b, v);
        else
            buf_append(b, open, (size_t)(close - open + 1));
        s = close + 1;
    }
    buf_puts(b, s);
}

void
text_append(buf_t *b, text_id_t id, ...)
{
    va_list ap;

    va_start(ap, id);
    text_vappend(b, id, ap);
    va_end(ap);
}

char *
text_format(text_id_t id, ...)
{
    buf_t b;
    va_list ap;

    buf_init(&b, TEXT_MAX);
    va_start(ap, id);
    text_vappend(&b, id, ap);
    va_end(ap);
    return buf_steal(&b);
}

const char *
text_num(char *buf, long n)
{
    snprintf(buf, 24, "%ld", n);
    return buf;
}
