/* What the doctor's files share: the list of findings and how one is added. */
#ifndef TDHOOK_DOCTOR_PRIVATE_H
#define TDHOOK_DOCTOR_PRIVATE_H

#include "config/config.h"
#include "core/jobs/doctor.h"

#define DOCTOR_MAX 64

typedef struct {
    doctor_finding_t *f;
    size_t n;
} doctor_list_t;

void doctor_add(doctor_list_t *l, doctor_level_t level, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* doctor_outlook.c: reservations.direction: both */
void doctor_outlook(doctor_list_t *l, const config_t *cfg);

#endif
