/* Sending a built message over SMTP with libcurl (through the transport of
 * core/clients/transport.h, which also says which failures are worth
 * another try). */
#ifndef TDHOOK_SMTP_H
#define TDHOOK_SMTP_H

#include <stddef.h>
#include "config/config.h"

#define SMTP_OK 0
#define SMTP_ERETRY 1   /* connection failed, timeout, SMTP 4xx: try later */
#define SMTP_EFAIL 2    /* SMTP 5xx, TLS required but not offered, bad address */

/* Sends a built message to the recipients over cfg->mail (smtp:// or
 * smtps://, STARTTLS per mail.starttls, AUTH when mail.username is set; never
 * AUTH over a connection without TLS unless the server is on loopback).  A
 * recipient the server refuses is named in *errstr; with others accepted the
 * mail is still sent.  SMTP_OK, SMTP_ERETRY, SMTP_EFAIL with *errstr.
 * *errstr is allocated on SMTP_ERETRY and SMTP_EFAIL, and on SMTP_OK when
 * some recipients were refused or invalid (it names them); NULL otherwise.
 * It never holds the password or the URL (which may carry credentials). */
int smtp_send(const config_t *cfg, char *const *to, size_t nto, const char *message,
              char **errstr);

#endif
