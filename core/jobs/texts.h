/* Every sentence tdhook mails to a person, in one place per language, with
 * named placeholders, and the times in them as people read them, in
 * mail.timezone.  The jobs say what happened (a text id and its facts);
 * this module says it in words.
 *
 * A placeholder is {name}; its value comes from the name, value pairs that
 * follow the id in text_append() and text_format().  A text table is one
 * array per language in core/jobs/texts.c; a text missing in one falls back
 * to English.
 *
 * Two readers, two kinds of text: a requester or organizer reads plain
 * words about their booking and what to do, never a configuration key or
 * field name, nor the name tdhook (T_NOTICE_*_BODY); reservations.notify.to
 * and admin_mail, who run tdhook, get the details (T_NOTICE_*_STAFF). */
#ifndef TDHOOK_TEXTS_H
#define TDHOOK_TEXTS_H

#include <stddef.h>
#include <time.h>

#include "core/util/buf.h"

typedef enum { TEXT_EN, TEXT_NL, TEXT_LANGS } text_lang_t;

typedef enum {
    T_NONE,                       /* no text */
    /* reservation notices: {number} {room} {field} {what} {mailbox} {error}
     * {requester} {description} {when} */
    T_NOTICE_UNMAPPED_SUBJECT,
    T_NOTICE_UNMAPPED_BODY,
    T_NOTICE_UNMAPPED_STAFF_SUBJECT,
    T_NOTICE_UNMAPPED_STAFF,
    T_NOTICE_CONFLICT_SUBJECT,
    T_NOTICE_CONFLICT_BODY,
    T_NOTICE_CONFLICT_STAFF_SUBJECT,
    T_NOTICE_CONFLICT_STAFF,
    T_NOTICE_REFUSED_SUBJECT,
    T_NOTICE_REFUSED_BODY,
    T_NOTICE_REFUSED_STAFF_SUBJECT,
    T_NOTICE_REFUSED_STAFF,
    T_NOTICE_NO_EMAIL_STAFF_SUBJECT,
    T_NOTICE_NO_EMAIL_STAFF,
    T_NOTICE_FOOTER,              /* to the requester */
    T_NOTICE_STAFF_FOOTER,        /* to notify.to */
    T_NOTICE_CLASH,               /* {what}: "{subject}", {when} */
    T_NOTICE_CLASH_TOPDESK,       /* the same, when it is another TOPdesk reservation */
    T_NO_SUBJECT,
    T_UNKNOWN_PERSON,
    /* the stock digest: {generated} {short} {rooms} {new} {nominimum}
     * {name} {count} {field} {requests} */
    T_STOCK_SUBJECT_NONE,
    T_STOCK_SUBJECT_ONE,
    T_STOCK_SUBJECT_MANY,
    T_STOCK_SUBJECT_NEW_ONE,
    T_STOCK_SUBJECT_NEW_MANY,
    T_STOCK_SUMMARY_ONE,
    T_STOCK_SUMMARY_MANY,
    T_STOCK_SUMMARY_NEW,
    T_STOCK_SUMMARY_NOMIN_ONE,
    T_STOCK_SUMMARY_NOMIN_MANY,
    T_STOCK_TITLE,
    T_STOCK_SHORT_HEADING,
    T_STOCK_NONE_SHORT,
    T_STOCK_NOMIN_HEADING,
    T_STOCK_NOMIN_HINT,
    T_STOCK_NOMIN_LINE,
    T_STOCK_CARDS_HEADING,
    T_STOCK_IN_STOCK,
    T_STOCK_FOOTER,
    T_STOCK_COL_ROOM,
    T_STOCK_COL_PLACE,
    T_STOCK_COL_LOCATION,
    T_STOCK_COL_BRANCH,
    T_STOCK_COL_COUNT,
    T_STOCK_COL_MINIMUM,
    T_STOCK_COL_SHORT,
    T_STOCK_CSV_HEADER,           /* the columns, {sep} between them */
    T_STOCK_CSV_SHORT,
    T_STOCK_CSV_NOMIN,
    T_STOCK_CSV_FILE,
    /* to admin_mail: {kind} {id} {error} */
    T_DEAD_SUBJECT,
    T_DEAD_BODY,
    T_DEAD_NO_REASON,
    T_DOCTOR_SUBJECT,
    T_DOCTOR_BODY,
    /* to the organizer of a meeting booked in Outlook: {when} {subject}
     * {room} {reason} {declined} {number} {new} {error} */
    T_OUTLOOK_REFUSED_SUBJECT,
    T_OUTLOOK_REFUSED_BODY,
    T_OUTLOOK_REASON_TAKEN,
    T_OUTLOOK_REASON_OTHER,
    T_OUTLOOK_DECLINED_NOTE,
    T_OUTLOOK_TD_CANCELLED_SUBJECT,
    T_OUTLOOK_TD_CANCELLED_BODY,
    T_OUTLOOK_TD_CANCELLED_DECLINE,   /* the decline's comment, shown in Outlook */
    T_OUTLOOK_TD_MOVED_SUBJECT,
    T_OUTLOOK_TD_MOVED_BODY,
    T_OUTLOOK_FOOTER,
    T_COUNT
} text_id_t;

/* The language of the texts from now on (English until set), and the time
 * zone of the times in them (an IANA name; NULL or "": the system's). */
void text_setup(text_lang_t lang, const char *zone);

/* The language set; TEXT_EN until text_setup(). */
text_lang_t text_lang(void);

/* The text id as it stands in the table, placeholders unfilled; static. */
const char *text_get(text_id_t id);

/* Appends text id to b with its placeholders filled from the name, value
 * pairs that follow (const char *, ended by NULL).  A value NULL is "",
 * a placeholder without a pair stays as it is written. */
void text_append(buf_t *b, text_id_t id, ...) __attribute__((sentinel));

/* The same, allocated; free with free(). */
char *text_format(text_id_t id, ...) __attribute__((sentinel));

/* n as a decimal string in buf (of at least 24 bytes), for a placeholder. */
const char *text_num(char *buf, long n);

#define TEXT_TIME_SIZE 64

/* t as people read it, in the zone and language set: "di 8 dec 2026,
 * 11:30", "Tue 8 Dec 2026, 11:30".  buf of TEXT_TIME_SIZE bytes; "?" for
 * t < 0.  Returns buf. */
const char *text_time(char *buf, time_t t);

/* [start, end) the same way: "di 8 dec 2026, 11:30–12:30" on one day, else
 * both times whole with " – " between.  buf of TEXT_TIME_SIZE * 2 bytes. */
const char *text_span(char *buf, time_t start, time_t end);

#endif
