/* Room reservations → Exchange room calendars.
 *
 * A job re-reads the reservation from TOPdesk and acts on its current state,
 * so repeats and out-of-order webhooks are harmless: for each reserved room
 * that is mapped to a room mailbox (the location field
 * reservations.room_mapping.topdesk_field, else room_mapping.static) the
 * appointment is created, moved or removed; the match key is written back
 * to the reservation; and the people concerned are mailed, once per
 * problem, when something cannot be synchronised. */
#ifndef TDHOOK_RESERVATION_H
#define TDHOOK_RESERVATION_H

#include <json-c/json.h>
#include "config/config.h"
#include "core/queue/queue.h"

#define RESERVATION_OK 0
#define RESERVATION_ERETRY 1   /* TOPdesk or Exchange failed for now */
#define RESERVATION_EFAIL 2    /* permanent: no such reservation, access denied */

/* Synchronises one reservation (key: its id or number).  q receives the
 * notification mails; with dry_run nothing is written anywhere and the
 * result says what would happen.  *result (allocated, put once) lists each
 * room with its action.  RESERVATION_* codes with *errstr. */
int reservation_sync(const config_t *cfg, queue_t *q, const char *key, int dry_run,
                     json_object **result, char **errstr, long *retry_after_ms);

/* Compares the reservations of the next `days` days in mapped rooms with
 * the room calendars and repairs the drift: missing appointments are made,
 * moved ones fixed, and appointments made by tdhook whose reservation no
 * longer holds that room are removed.  Appointments not made by tdhook are
 * never touched. */
int reservation_reconcile(const config_t *cfg, queue_t *q, int days, int dry_run,
                          json_object **result, char **errstr, long *retry_after_ms);

/* Fills a subject or body template: {number} {description} {requester}
 * {persons} {room} {services}.  Unknown placeholders stay as they are.
 * Allocated. */
char *reservation_template(const char *tmpl, json_object *reservation, const char *room);

#endif
