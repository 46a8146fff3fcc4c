/* The texts people read: see core/jobs/texts.h. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jobs/texts.h"

#define TEXT_MAX (64u * 1024 * 1024)

static const char *const texts_en[T_COUNT] = {
    [T_NOTICE_UNMAPPED_SUBJECT] = "Your reservation {number}: {room} is not in the room calendar",
    [T_NOTICE_UNMAPPED_BODY] =
        "Your reservation {number} of {room} ({when}) is in TOPdesk, but it could not be put "
        "in the room's calendar in Outlook: this room is not linked to a room calendar yet. "
        "Your reservation itself stands. Facilities have been told and will link the room.",
    [T_NOTICE_UNMAPPED_STAFF_SUBJECT] =
        "Reservation {number}: room {room} is not linked to Exchange",
    [T_NOTICE_UNMAPPED_STAFF] =
        "The room \"{room}\" is not mapped to an Exchange room mailbox, so this reservation "
        "is not in any room calendar. Ask the TOPdesk administrator to fill in the room "
        "mailbox in the location field {field} of \"{room}\" (or in room_mapping.static of "
        "tdhook).",
    [T_NOTICE_CONFLICT_SUBJECT] = "Your reservation {number}: {room} is already booked",
    [T_NOTICE_CONFLICT_BODY] =
        "Your reservation {number} of {room} ({when}) could not be put in the room's "
        "calendar: the room is already booked in Outlook at that time ({what}). Please "
        "choose another time or room in TOPdesk, or agree with whoever made the other "
        "booking.",
    [T_NOTICE_CONFLICT_STAFF_SUBJECT] = "Reservation {number}: {room} is already booked",
    [T_NOTICE_CONFLICT_STAFF] =
        "The room \"{room}\" is already booked in Exchange at that time: {what}. tdhook did "
        "not book it. Please choose another time or room in TOPdesk, or settle it with "
        "whoever made the other booking.",
    [T_NOTICE_REFUSED_SUBJECT] = "Your reservation {number}: the calendar of {room} was not "
                                 "updated",
    [T_NOTICE_REFUSED_BODY] =
        "Your reservation {number} of {room} ({when}) stands in TOPdesk, but the room's "
        "calendar in Outlook could not be updated. Facilities have been told and will look "
        "into it.",
    [T_NOTICE_REFUSED_STAFF_SUBJECT] = "Reservation {number}: room calendar of {room} not "
                                       "updated",
    [T_NOTICE_REFUSED_STAFF] =
        "Exchange refused to update the calendar of room \"{room}\" ({mailbox}): {error}. "
        "The requester has been told; the reservation itself stands in TOPdesk.",
    [T_NOTICE_NO_EMAIL_STAFF_SUBJECT] = "Reservation {number}: requester has no e-mail address",
    [T_NOTICE_NO_EMAIL_STAFF] =
        "The requester {requester} has no valid e-mail address on their TOPdesk person card, "
        "so they cannot be told about this booking or its problems. The room calendar was "
        "updated all the same. Please add their Exchange e-mail address to the person card.",
    [T_NOTICE_FOOTER] = "\n\nReservation {number} ({description}), {when}.\n\n"
                        "This message was sent automatically by TOPdesk's room booking.\n",
    [T_NOTICE_STAFF_FOOTER] = "\n\nReservation {number} ({description}), {when}.\n\n-- \n"
                              "tdhook reservation sync\n",
    [T_NOTICE_CLASH] = "\"{subject}\", {when}",
    [T_NOTICE_CLASH_TOPDESK] = "\"{subject}\", {when} (another TOPdesk reservation)",
    [T_NO_SUBJECT] = "(no subject)",
    [T_UNKNOWN_PERSON] = "(unknown)",

    [T_STOCK_SUBJECT_NONE] = "Stock check: no stock room under its minimum",
    [T_STOCK_SUBJECT_ONE] = "Stock below minimum: {name} ({short} short)",
    [T_STOCK_SUBJECT_MANY] = "Stock below minimum: {rooms} stock rooms (most short: {name}, "
                             "{short})",
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
    [T_STOCK_FOOTER] = "Sent automatically by the stock check of TOPdesk (field \"{field}\", "
                       "{requests} TOPdesk requests).",
    [T_STOCK_COL_ROOM] = "Stock room",
    [T_STOCK_COL_PLACE] = "Location / branch",
    [T_STOCK_COL_LOCATION] = "Location",
    [T_STOCK_COL_BRANCH] = "Branch",
    [T_STOCK_COL_COUNT] = "Count",
    [T_STOCK_COL_MINIMUM] = "Minimum",
    [T_STOCK_COL_SHORT] = "Short",
    [T_STOCK_CSV_HEADER] = "stock_room{sep}location{sep}branch{sep}count{sep}minimum{sep}"
                           "shortfall{sep}status{sep}url",
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
    [T_OUTLOOK_REFUSED_SUBJECT] = "Your booking of {room} on {when} is not confirmed",
    [T_OUTLOOK_REFUSED_BODY] =
        "You booked {room} in Outlook for \"{subject}\", {when}. The room could not be "
        "reserved for you: {reason}.\n\n{declined}Please choose another time or room in "
        "Outlook, or ask the facilities desk for help.",
    [T_OUTLOOK_REASON_TAKEN] = "the room is already taken at that time",
    [T_OUTLOOK_REASON_OTHER] = "the reservation system did not accept it ({error})",
    [T_OUTLOOK_DECLINED_NOTE] = "The room has therefore declined your meeting in Outlook. ",
    [T_OUTLOOK_TD_CANCELLED_SUBJECT] = "Your booking of {room} on {when} has been cancelled",
    [T_OUTLOOK_TD_CANCELLED_BODY] =
        "The facilities desk has cancelled the reservation of your Outlook meeting "
        "\"{subject}\", {when} (reservation {number}). The room has declined the meeting "
        "in Outlook, so it is no longer booked for you.\n\nIf you still need a room, please "
        "book one again or ask the facilities desk.",
    [T_OUTLOOK_TD_CANCELLED_DECLINE] = "The reservation of this room was cancelled by the "
                                       "facilities desk.",
    [T_OUTLOOK_TD_MOVED_SUBJECT] = "Your booking of {room} has been changed",
    [T_OUTLOOK_TD_MOVED_BODY] =
        "The facilities desk has changed the reservation of your Outlook meeting "
        "\"{subject}\" (reservation {number}). The room is now reserved for you {new} in "
        "{room}; your meeting in Outlook still says {when}.\n\nPlease move your meeting in "
        "Outlook to match, or ask the facilities desk if this does not suit you.",
    [T_OUTLOOK_FOOTER] = "\n\nThis message was sent automatically by TOPdesk's room booking.\n",
};

/* Dutch in the informal "je" form TOPdesk itself uses. */
static const char *const texts_nl[T_COUNT] = {
    [T_NOTICE_UNMAPPED_SUBJECT] = "Je reservering {number}: {room} staat niet in de zaalagenda",
    [T_NOTICE_UNMAPPED_BODY] =
        "Je reservering {number} van {room} ({when}) staat in TOPdesk, maar kon niet in de "
        "agenda van de zaal in Outlook worden gezet: deze ruimte is nog niet aan een "
        "zaalagenda gekoppeld. Je reservering zelf blijft gewoon staan. Facilitaire zaken is "
        "op de hoogte en koppelt de ruimte.",
    [T_NOTICE_UNMAPPED_STAFF_SUBJECT] =
        "Reservering {number}: ruimte {room} is niet aan Exchange gekoppeld",
    [T_NOTICE_UNMAPPED_STAFF] =
        "De ruimte \"{room}\" is niet gekoppeld aan een Exchange-zaalpostvak, dus deze "
        "reservering staat in geen enkele zaalagenda. Vraag de TOPdesk-beheerder om het "
        "zaalpostvak in te vullen in het locatieveld {field} van \"{room}\" (of in "
        "room_mapping.static van tdhook).",
    [T_NOTICE_CONFLICT_SUBJECT] = "Je reservering {number}: {room} is al bezet",
    [T_NOTICE_CONFLICT_BODY] =
        "Je reservering {number} van {room} ({when}) kon niet in de agenda van de zaal "
        "worden gezet: de zaal is op dat moment al geboekt in Outlook ({what}). Kies in "
        "TOPdesk een andere tijd of ruimte, of overleg met degene die de zaal al geboekt "
        "heeft.",
    [T_NOTICE_CONFLICT_STAFF_SUBJECT] = "Reservering {number}: {room} is al bezet",
    [T_NOTICE_CONFLICT_STAFF] =
        "De ruimte \"{room}\" is op dat moment al geboekt in Exchange: {what}. tdhook heeft "
        "haar niet geboekt. Kies in TOPdesk een andere tijd of ruimte, of regel het met "
        "degene die de andere boeking maakte.",
    [T_NOTICE_REFUSED_SUBJECT] = "Je reservering {number}: de agenda van {room} is niet "
                                 "bijgewerkt",
    [T_NOTICE_REFUSED_BODY] =
        "Je reservering {number} van {room} ({when}) staat in TOPdesk, maar de agenda van de "
        "zaal in Outlook kon niet worden bijgewerkt. Facilitaire zaken is op de hoogte en "
        "zoekt het uit.",
    [T_NOTICE_REFUSED_STAFF_SUBJECT] = "Reservering {number}: zaalagenda van {room} niet "
                                       "bijgewerkt",
    [T_NOTICE_REFUSED_STAFF] =
        "Exchange weigerde de agenda van ruimte \"{room}\" ({mailbox}) bij te werken: "
        "{error}. De aanvrager is op de hoogte gebracht; de reservering zelf blijft in "
        "TOPdesk staan.",
    [T_NOTICE_NO_EMAIL_STAFF_SUBJECT] = "Reservering {number}: aanvrager heeft geen "
                                        "e-mailadres",
    [T_NOTICE_NO_EMAIL_STAFF] =
        "De aanvrager {requester} heeft geen geldig e-mailadres op de persoonskaart in "
        "TOPdesk, dus we kunnen deze persoon niets laten weten over deze boeking of "
        "problemen ermee. De zaalagenda is wel bijgewerkt. Vul het Exchange-e-mailadres in "
        "op de persoonskaart.",
    [T_NOTICE_FOOTER] = "\n\nReservering {number} ({description}), {when}.\n\n"
                        "Dit bericht is automatisch verstuurd door de zaalreservering van "
                        "TOPdesk.\n",
    [T_NOTICE_STAFF_FOOTER] = "\n\nReservering {number} ({description}), {when}.\n\n-- \n"
                              "tdhook, reserveringen naar Exchange\n",
    [T_NOTICE_CLASH] = "\"{subject}\", {when}",
    [T_NOTICE_CLASH_TOPDESK] = "\"{subject}\", {when} (een andere TOPdesk-reservering)",
    [T_NO_SUBJECT] = "(geen onderwerp)",
    [T_UNKNOWN_PERSON] = "(onbekend)",

    [T_STOCK_SUBJECT_NONE] = "Voorraadcontrole: geen voorraadruimte onder het minimum",
    [T_STOCK_SUBJECT_ONE] = "Voorraad onder minimum: {name} ({short} te weinig)",
    [T_STOCK_SUBJECT_MANY] = "Voorraad onder minimum: {rooms} voorraadruimtes (grootste tekort: "
                             "{name}, {short})",
    [T_STOCK_SUBJECT_NEW_ONE] = "Voorraad onder minimum: {new} voorraadruimte nieuw te kort",
    [T_STOCK_SUBJECT_NEW_MANY] = "Voorraad onder minimum: {new} voorraadruimtes nieuw te kort",
    [T_STOCK_SUMMARY_ONE] = "Voorraadcontrole van {generated}: {short} van de {rooms} "
                            "voorraadruimtes zit onder het minimum",
    [T_STOCK_SUMMARY_MANY] = "Voorraadcontrole van {generated}: {short} van de {rooms} "
                             "voorraadruimtes zitten onder het minimum",
    [T_STOCK_SUMMARY_NEW] = "; {new} daarvan sinds het vorige overzicht.",
    [T_STOCK_SUMMARY_NOMIN_ONE] = " Bij {nominimum} is geen minimum ingevuld.",
    [T_STOCK_SUMMARY_NOMIN_MANY] = " Bij {nominimum} is geen minimum ingevuld.",
    [T_STOCK_TITLE] = "Voorraadcontrole",
    [T_STOCK_SHORT_HEADING] = "Onder het minimum, bij te bestellen",
    [T_STOCK_NONE_SHORT] = "Geen enkele voorraadruimte zit onder het minimum.",
    [T_STOCK_NOMIN_HEADING] = "Zonder minimum",
    [T_STOCK_NOMIN_HINT] = "Vul het veld in op de kaart van de voorraadruimte.",
    [T_STOCK_NOMIN_LINE] = "Zonder minimum (vul het veld in op de kaart van de voorraadruimte)",
    [T_STOCK_CARDS_HEADING] = "Voorraadkaarten in TOPdesk",
    [T_STOCK_IN_STOCK] = "{count} op voorraad",
    [T_STOCK_FOOTER] = "Automatisch verstuurd door de voorraadcontrole van TOPdesk (veld "
                       "\"{field}\", {requests} verzoeken aan TOPdesk).",
    [T_STOCK_COL_ROOM] = "Voorraadruimte",
    [T_STOCK_COL_PLACE] = "Locatie / vestiging",
    [T_STOCK_COL_LOCATION] = "Locatie",
    [T_STOCK_COL_BRANCH] = "Vestiging",
    [T_STOCK_COL_COUNT] = "Aantal",
    [T_STOCK_COL_MINIMUM] = "Minimum",
    [T_STOCK_COL_SHORT] = "Tekort",
    [T_STOCK_CSV_HEADER] = "Voorraadruimte{sep}Locatie{sep}Vestiging{sep}Aantal{sep}Minimum{sep}"
                           "Tekort{sep}Status{sep}Link",
    [T_STOCK_CSV_SHORT] = "tekort",
    [T_STOCK_CSV_NOMIN] = "geen minimum",
    [T_STOCK_CSV_FILE] = "voorraadcontrole.csv",

    [T_DEAD_SUBJECT] = "tdhook: {kind}-taak {id} mislukt",
    [T_DEAD_BODY] = "De {kind}-taak {id} is mislukt en wordt niet vanzelf opnieuw "
                    "geprobeerd.\n\nWat er misging:\n  {error}\n\n"
                    "Als de oorzaak is verholpen, start je hem opnieuw met:\n"
                    "  tdhook queue retry {id}\nof verwijder je hem met:\n"
                    "  tdhook queue drop {id}\n",
    [T_DEAD_NO_REASON] = "(geen reden vastgelegd)",
    [T_DOCTOR_SUBJECT] = "tdhook doctor: testbericht",
    [T_DOCTOR_BODY] = "Dit bericht laat zien dat tdhook mail kan versturen vanaf dit adres.\n",
    [T_OUTLOOK_REFUSED_SUBJECT] = "Je boeking van {room} op {when} is niet bevestigd",
    [T_OUTLOOK_REFUSED_BODY] =
        "Je hebt in Outlook {room} geboekt voor \"{subject}\", {when}. De ruimte kon niet "
        "voor je worden gereserveerd: {reason}.\n\n{declined}Kies in Outlook een andere tijd "
        "of ruimte, of vraag de facilitaire dienst om hulp.",
    [T_OUTLOOK_REASON_TAKEN] = "de ruimte is op dat moment al bezet",
    [T_OUTLOOK_REASON_OTHER] = "het reserveringssysteem heeft de boeking niet geaccepteerd "
                               "({error})",
    [T_OUTLOOK_DECLINED_NOTE] = "De ruimte heeft je vergadering daarom in Outlook afgewezen. ",
    [T_OUTLOOK_TD_CANCELLED_SUBJECT] = "Je boeking van {room} op {when} is geannuleerd",
    [T_OUTLOOK_TD_CANCELLED_BODY] =
        "De facilitaire dienst heeft de reservering van je Outlook-vergadering "
        "\"{subject}\", {when} geannuleerd (reservering {number}). De ruimte heeft de "
        "vergadering in Outlook afgewezen en is dus niet meer voor je geboekt.\n\nHeb je "
        "toch een ruimte nodig, boek dan opnieuw of vraag het de facilitaire dienst.",
    [T_OUTLOOK_TD_CANCELLED_DECLINE] = "De reservering van deze ruimte is geannuleerd door de "
                                       "facilitaire dienst.",
    [T_OUTLOOK_TD_MOVED_SUBJECT] = "Je boeking van {room} is gewijzigd",
    [T_OUTLOOK_TD_MOVED_BODY] =
        "De facilitaire dienst heeft de reservering van je Outlook-vergadering "
        "\"{subject}\" gewijzigd (reservering {number}). De ruimte is nu voor je "
        "gereserveerd op {new} in {room}; in Outlook staat je vergadering nog op {when}.\n\n"
        "Verplaats je vergadering in Outlook, of neem contact op met de facilitaire dienst als "
        "dit je niet uitkomt.",
    [T_OUTLOOK_FOOTER] = "\n\nDit bericht is automatisch verstuurd door de zaalreservering "
                         "van TOPdesk.\n",
};

static const char *const *const text_tables[TEXT_LANGS] = {
    [TEXT_EN] = texts_en,
    [TEXT_NL] = texts_nl,
};

static const char *const text_days[TEXT_LANGS][7] = {
    [TEXT_EN] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
    [TEXT_NL] = {"zo", "ma", "di", "wo", "do", "vr", "za"},
};

static const char *const text_months[TEXT_LANGS][12] = {
    [TEXT_EN] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec"},
    [TEXT_NL] = {"jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov",
                 "dec"},
};

static text_lang_t text_current = TEXT_EN;

void
text_setup(text_lang_t lang, const char *zone)
{
    text_current = lang < TEXT_LANGS ? lang : TEXT_EN;
    /* localtime_r() reads TZ; nothing in tdhook reads the local time
     * otherwise (the log is in UTC) */
    if (zone && *zone)
        setenv("TZ", zone, 1);
    tzset();
}

text_lang_t
text_lang(void)
{
    return text_current;
}

const char *
text_get(text_id_t id)
{
    const char *s;

    if ((unsigned)id >= T_COUNT)
        return "";
    s = text_tables[text_current][id];
    return s ? s : texts_en[id] ? texts_en[id] : "";
}

/* The value of placeholder name (len bytes) among the pairs of ap; *found
 * says whether there was one. */
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

const char *
text_time(char *buf, time_t t)
{
    struct tm tm;

    if (t < 0 || !localtime_r(&t, &tm)) {
        snprintf(buf, TEXT_TIME_SIZE, "?");
        return buf;
    }
    snprintf(buf, TEXT_TIME_SIZE, "%s %d %s %d, %02d:%02d", text_days[text_current][tm.tm_wday],
             tm.tm_mday, text_months[text_current][tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min);
    return buf;
}

const char *
text_span(char *buf, time_t start, time_t end)
{
    char a[TEXT_TIME_SIZE], b[TEXT_TIME_SIZE];
    struct tm ts, te;

    text_time(a, start);
    if (end < 0) {
        snprintf(buf, TEXT_TIME_SIZE * 2, "%s", a);
        return buf;
    }
    if (start >= 0 && localtime_r(&start, &ts) && localtime_r(&end, &te) &&
        ts.tm_year == te.tm_year && ts.tm_yday == te.tm_yday) {
        /* one day: the end's clock time after an en dash */
        snprintf(buf, TEXT_TIME_SIZE * 2, "%s\u2013%02d:%02d", a, te.tm_hour, te.tm_min);
        return buf;
    }
    snprintf(buf, TEXT_TIME_SIZE * 2, "%s \u2013 %s", a, text_time(b, end));
    return buf;
}
