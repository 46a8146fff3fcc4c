/* tdhook doctor: every preparation that TOPdesk, Exchange and mail need,
 * checked against the live systems, one finding per check. */
#ifndef TDHOOK_DOCTOR_H
#define TDHOOK_DOCTOR_H

#include <stddef.h>
#include "config/config.h"

typedef enum { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL } doctor_level_t;

typedef struct {
    doctor_level_t level;
    char *check;     /* short name, e.g. "topdesk.reservations" */
    char *message;   /* what was found; the fix when not OK */
} doctor_finding_t;

/* Runs every check.  *out allocated (free with doctor_free()); *n set.
 * With send_mail, a test mail goes to admin_mail to prove the SMTP server
 * takes the sender. */
void doctor_run(const config_t *cfg, int send_mail, doctor_finding_t **out, size_t *n);
void doctor_free(doctor_finding_t *f, size_t n);
const char *doctor_level_name(doctor_level_t level);

#endif
