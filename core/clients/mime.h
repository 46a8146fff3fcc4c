/* MIME building: the whole RFC 5322 message tdhook mails.
 *
 * Messages are built with CRLF line endings throughout, multipart/alternative
 * (text + HTML) inside multipart/mixed when there are attachments, base64 or
 * quoted-printable bodies, and RFC 2047 encoded words for non-ASCII header
 * text.  Text from outside (TOPdesk names) can never add a header: CR and LF
 * in header values are replaced by spaces.  Sending is core/clients/smtp.h;
 * queueing a mail is core/jobs/mailjob.h. */
#ifndef TDHOOK_MIME_H
#define TDHOOK_MIME_H

#include <stddef.h>

typedef struct {
    const char *filename;      /* ASCII or UTF-8; encoded as needed */
    const char *content_type;  /* e.g. "text/csv; charset=utf-8" */
    const char *data;
    size_t len;
} mime_attachment_t;

typedef struct {
    const char *from;            /* address */
    char *const *to;             /* addresses */
    size_t nto;
    const char *subject;         /* UTF-8 */
    const char *text;            /* UTF-8, LF or CRLF line ends */
    const char *html;            /* UTF-8 or NULL */
    const mime_attachment_t *att;
    size_t natt;
} mime_msg_t;

/* The whole RFC 5322 message (headers, Date, Message-ID, MIME-Version, body)
 * with CRLF line ends.  Allocated, free with free(). */
char *mime_build(const mime_msg_t *msg);

/* Encodes s as RFC 2047 encoded words when it is not plain printable ASCII;
 * CR/LF become spaces.  Allocated. */
char *mime_encode_header(const char *s);


/* An address as it may be shown in a header or a message: controls and
 * commas become spaces, so a bad address can never start a header of its
 * own.  Allocated. */
char *mime_header_address(const char *addr);

#endif
