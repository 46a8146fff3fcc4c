/* Mail: building MIME messages and sending them over SMTP with libcurl.
 *
 * Messages are built with CRLF line endings throughout, multipart/alternative
 * (text + HTML) inside multipart/mixed when there are attachments, base64 or
 * quoted-printable bodies, and RFC 2047 encoded words for non-ASCII header
 * text.  Text from outside (TOPdesk names) can never add a header: CR and LF
 * in header values are replaced by spaces.  Sending goes through the queue as
 * a "mail" job, so an SMTP outage delays mail but never loses it. */
#ifndef TDHOOK_MAIL_H
#define TDHOOK_MAIL_H

#include <stddef.h>
#include <json-c/json.h>
#include "config/config.h"
#include "core/queue.h"

#define MAIL_OK 0
#define MAIL_ERETRY 1   /* connection failed, timeout, SMTP 4xx: try later */
#define MAIL_EFAIL 2    /* SMTP 5xx, TLS required but not offered, bad address */

typedef struct {
    const char *filename;      /* ASCII or UTF-8; encoded as needed */
    const char *content_type;  /* e.g. "text/csv; charset=utf-8" */
    const char *data;
    size_t len;
} mail_attachment_t;

typedef struct {
    const char *from;            /* address */
    char *const *to;             /* addresses */
    size_t nto;
    const char *subject;         /* UTF-8 */
    const char *text;            /* UTF-8, LF or CRLF line ends */
    const char *html;            /* UTF-8 or NULL */
    const mail_attachment_t *att;
    size_t natt;
} mail_msg_t;

/* The whole RFC 5322 message (headers, Date, Message-ID, MIME-Version, body)
 * with CRLF line ends.  Allocated, free with free(). */
char *mail_build(const mail_msg_t *msg);

/* Encodes s as RFC 2047 encoded words when it is not plain printable ASCII;
 * CR/LF become spaces.  Allocated. */
char *mail_encode_header(const char *s);

/* 1 when addr looks like a mail address that is safe to put in a header and
 * an SMTP envelope (no CR, LF, <, >, spaces; one @). */
int mail_address_ok(const char *addr);

/* Sends a built message to the recipients over cfg->mail (smtp:// or
 * smtps://, STARTTLS per mail.starttls, AUTH when mail.username is set; never
 * AUTH over a connection without TLS unless the server is on loopback).  A
 * recipient the server refuses is named in *errstr; with others accepted the
 * mail is still sent.  MAIL_OK, MAIL_ERETRY, MAIL_EFAIL with *errstr. */
int mail_send(const config_t *cfg, char *const *to, size_t nto, const char *message,
              char **errstr);

/* Queues a "mail" job carrying the built message: payload
 * {"to":[...],"message":"..."}.  QUEUE_* codes; id may be NULL. */
int mail_enqueue(queue_t *q, char *const *to, size_t nto, const char *message, char *id);

/* Runs a "mail" job's payload: MAIL_* codes. */
int mail_send_job(const config_t *cfg, json_object *payload, char **errstr);

#endif
