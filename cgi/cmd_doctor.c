/* tdhook doctor [--no-mail] */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cgi/cmd.h"
#include "core/jobs/doctor.h"

int
cmd_doctor(const config_t *cfg, int argc, char **argv)
{
    doctor_finding_t *f = NULL;
    size_t n = 0, fails = 0, warns = 0;
    int send_mail = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-mail") == 0) {
            send_mail = 0;
        } else {
            fprintf(stderr, "usage: tdhook doctor [--no-mail]\n");
            return EX_USAGE;
        }
    }
    doctor_run(cfg, send_mail, &f, &n);
    for (size_t i = 0; i < n; i++) {
        printf("%-4s  %-28s  %s\n", doctor_level_name(f[i].level), f[i].check, f[i].message);
        fails += f[i].level == DOCTOR_FAIL;
        warns += f[i].level == DOCTOR_WARN;
    }
    printf("\n%zu checks: %zu OK, %zu WARN, %zu FAIL\n", n, n - fails - warns, warns, fails);
    doctor_free(f, n);
    return fails ? EX_UNAVAILABLE : EX_OK;
}
