/* MIME building: CRLF throughout, quoted-printable text, base64
 * attachments, RFC 2047 / RFC 2231 for non-ASCII.  See core/clients/mime.h
 * for the contracts. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clients/mime.h"
#include "core/util/address.h"
#include "core/util/buf.h"
#include "core/util/random.h"
#include "core/util/xalloc.h"

/* Building never reads from outside, so the cap only guards against size_t
 * overflow. */
#define MAIL_BUF_CAP (((size_t)-1) / 4)
/* Lines of quoted-printable and base64 bodies (RFC 2045 section 6.7/6.8). */
#define QP_LINE_MAX 76
#define B64_LINE_MAX 76
/* RFC 2047: an encoded word is at most 75 characters. */
#define EWORD_MAX 75
/* RFC 5322: header lines SHOULD stay within 78 characters. */
#define HEADER_LINE_SOFT 78

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hex_upper[] = "0123456789ABCDEF";

/* ---- small helpers ------------------------------------------------------ */

static void
mail_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[32];

    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
    random_bytes(raw, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = "0123456789abcdef"[raw[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;   /* no UTF-16 surrogates */
        if (n < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* Copies s with every invalid UTF-8 byte replaced by U+FFFD; with
 * for_header, control characters (CR and LF among them) become spaces.
 * Allocated. */
static char *
utf8_clean(const char *s, int for_header)
{
    buf_t b;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);

    buf_init(&b, MAIL_BUF_CAP);
    buf_append(&b, "", 0);
    while (n > 0) {
        size_t k = utf8_seq_len(p, n);
        if (k == 0) {
            buf_append(&b, "\xEF\xBF\xBD", 3);
            p++;
            n--;
            continue;
        }
        if (k == 1 && for_header && (p[0] < 0x20 || p[0] == 0x7F))
            buf_append(&b, " ", 1);
        else
            buf_append(&b, p, k);
        p += k;
        n -= k;
    }
    return buf_steal(&b);
}

/* 1 when s can stand in a header as it is: printable ASCII, nothing a
 * decoder could take for an encoded word, and no word too long to fold. */
static int
header_plain_ok(const char *s)
{
    size_t run = 0;

    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7E)
            return 0;
        if (c == '=' && p[1] == '?')
            return 0;
        run = c == ' ' ? 0 : run + 1;
        if (run > HEADER_LINE_SOFT - 1)
            return 0;
    }
    return 1;
}

static void
b64_encode_into(buf_t *out, const unsigned char *p, size_t n)
{
    char quad[4];

    while (n >= 3) {
        quad[0] = b64_alphabet[p[0] >> 2];
        quad[1] = b64_alphabet[((p[0] & 3) << 4) | (p[1] >> 4)];
        quad[2] = b64_alphabet[((p[1] & 15) << 2) | (p[2] >> 6)];
        quad[3] = b64_alphabet[p[2] & 63];
        buf_append(out, quad, 4);
        p += 3;
        n -= 3;
    }
    if (n > 0) {
        quad[0] = b64_alphabet[p[0] >> 2];
        if (n == 1) {
            quad[1] = b64_alphabet[(p[0] & 3) << 4];
            quad[2] = '=';
        } else {
            quad[1] = b64_alphabet[((p[0] & 3) << 4) | (p[1] >> 4)];
            quad[2] = b64_alphabet[(p[1] & 15) << 2];
        }
        quad[3] = '=';
        buf_append(out, quad, 4);
    }
}

/* Appends RFC 2047 "B" encoded words for the (clean UTF-8) s: the first
 * word fits in first_room characters where possible, later ones follow a
 * CRLF SP fold; words never split a UTF-8 character. */
static void
header_words(buf_t *out, const char *s, size_t first_room)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t room = first_room < EWORD_MAX ? first_room : EWORD_MAX;
    int first = 1;

    /* Too little room for even one character: start on a fresh line. */
    if (room < 12 + 8) {
        buf_puts(out, "\r\n ");
        room = EWORD_MAX;
    }
    do {
        size_t max_raw = (room - 12) / 4 * 3;   /* "=?UTF-8?B?" + "?=" */
        size_t take = 0;

        while (take < n) {
            size_t k = utf8_seq_len(p + take, n - take);
            if (k == 0)
                k = 1;   /* cannot happen on clean input */
            if (take + k > max_raw)
                break;
            take += k;
        }
        if (!first)
            buf_puts(out, "\r\n ");
        buf_puts(out, "=?UTF-8?B?");
        b64_encode_into(out, p, take);
        buf_puts(out, "?=");
        p += take;
        n -= take;
        first = 0;
        room = EWORD_MAX;
    } while (n > 0);
}

/* Appends "Name: value\r\n" for a printable ASCII value, folding before a
 * space where a line would pass 78 characters. */
static void
header_fold(buf_t *out, const char *name, const char *value)
{
    size_t start = strlen(name) + 2;
    size_t col = start;
    const char *p = value;

    buf_printf(out, "%s: ", name);
    while (*p) {
        const char *q = p;
        while (*q == ' ')
            q++;
        int has_word = *q != '\0';
        while (*q && *q != ' ')
            q++;
        size_t seg = (size_t)(q - p);
        if (col + seg > HEADER_LINE_SOFT && col > start && p[0] == ' ' && has_word) {
            buf_puts(out, "\r\n");
            col = 0;
        }
        buf_append(out, p, seg);
        col += seg;
        p = q;
    }
    buf_puts(out, "\r\n");
}

/* Appends a header with free text (UTF-8 from anywhere): CR, LF and other
 * controls become spaces, then plain ASCII is folded as it is and anything
 * else becomes encoded words. */
static void
header_text(buf_t *out, const char *name, const char *value)
{
    char *clean = utf8_clean(value, 1);
    size_t prefix = strlen(name) + 2;
    size_t room = prefix < HEADER_LINE_SOFT ? HEADER_LINE_SOFT - prefix : 0;

    if (header_plain_ok(clean)) {
        header_fold(out, name, clean);
    } else {
        buf_printf(out, "%s: ", name);
        header_words(out, clean, room);
        buf_puts(out, "\r\n");
    }
    free(clean);
}

/* An address for a header: controls become spaces, so a bad address can
 * never start a header of its own.  Allocated. */
char *
mime_header_address(const char *addr)
{
    char *s = xstrdup(addr ? addr : "");

    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7F || *p == ',')
            *p = ' ';
    return s;
}

static void
header_date(buf_t *out)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    /* Names by hand: strftime's %a and %b follow the locale. */
    gmtime_r(&now, &tm);
    buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
               days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
               tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
header_message_id(buf_t *out, const char *from)
{
    char rnd[33];
    const char *at = from ? strrchr(from, '@') : NULL;
    const char *domain = at && at[1] ? at + 1 : "tdhook.invalid";

    mail_random_hex(rnd, 16);
    buf_printf(out, "Message-ID: <%s@", rnd);
    for (const char *p = domain; *p; p++) {
        unsigned char c = (unsigned char)*p;
        /* Only characters a dot-atom may carry. */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-')
            buf_append(out, p, 1);
    }
    buf_puts(out, ">\r\n");
}

/* ---- bodies ------------------------------------------------------------- */

static int
qp_needs_escape(unsigned char c, int at_start, int at_end, const char *rest)
{
    if (c == '=' || c < 0x20 || c > 0x7E)
        return !(c == '\t' && !at_end);
    if (c == ' ')
        return at_end;
    if (c == '.' && at_start)
        return 1;
    /* "From " at the start of a line gets mangled by mbox writers. */
    if (c == 'F' && at_start && strncmp(rest, "rom ", 4) == 0)
        return 1;
    return 0;
}

/* Encodes one logical line (no line end inside) as quoted-printable with
 * soft line breaks, each physical line at most 76 characters. */
static void
qp_line(buf_t *out, const char *p, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int at_end = i + 1 == n;
        int esc = qp_needs_escape(c, col == 0, at_end, p + i + 1);
        size_t tl = esc ? 3 : 1;
        size_t limit = at_end ? QP_LINE_MAX : QP_LINE_MAX - 1;

        if (col + tl > limit) {
            buf_puts(out, "=\r\n");
            col = 0;
            esc = qp_needs_escape(c, 1, at_end, p + i + 1);
            tl = esc ? 3 : 1;
        }
        if (esc) {
            char e[3] = {'=', hex_upper[c >> 4], hex_upper[c & 15]};
            buf_append(out, e, 3);
        } else {
            buf_append(out, &c, 1);
        }
        col += tl;
    }
}

/* Quoted-printable of text whose lines end in LF, CRLF or CR; every line
 * end becomes CRLF.  Allocated. */
static char *
qp_encode(const char *text)
{
    char *clean = utf8_clean(text, 0);
    const char *p = clean;
    buf_t b;

    buf_init(&b, MAIL_BUF_CAP);
    buf_append(&b, "", 0);
    while (*p) {
        size_t n = strcspn(p, "\r\n");
        qp_line(&b, p, n);
        p += n;
        if (*p == '\r' && p[1] == '\n')
            p += 2;
        else if (*p)
            p++;
        else
            break;
        buf_puts(&b, "\r\n");
    }
    free(clean);
    return buf_steal(&b);
}

/* Base64 in lines of 76 characters, each ended by CRLF.  Allocated. */
static char *
b64_lines(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t per_line = B64_LINE_MAX / 4 * 3;
    buf_t b;

    buf_init(&b, MAIL_BUF_CAP);
    buf_append(&b, "", 0);
    while (len > 0) {
        size_t n = len < per_line ? len : per_line;
        b64_encode_into(&b, p, n);
        buf_puts(&b, "\r\n");
        p += n;
        len -= n;
    }
    return buf_steal(&b);
}

static int
rfc2231_attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* Appends the filename parameter of Content-Disposition (after
 * "attachment;"): a quoted string for short printable ASCII, RFC 2231
 * percent-encoding otherwise, split into continuations when long. */
static void
disposition_filename(buf_t *out, const char *filename)
{
    char *clean = utf8_clean(filename && *filename ? filename : "attachment", 1);
    size_t n = strlen(clean);
    int simple = n <= 60;

    for (size_t i = 0; simple && i < n; i++) {
        unsigned char c = (unsigned char)clean[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\')
            simple = 0;
    }
    if (simple) {
        buf_printf(out, "\r\n filename=\"%s\"", clean);
        free(clean);
        return;
    }

    buf_t enc;
    buf_init(&enc, MAIL_BUF_CAP);
    buf_append(&enc, "", 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)clean[i];
        if (rfc2231_attr_char(c)) {
            buf_append(&enc, &c, 1);
        } else {
            char e[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
            buf_append(&enc, e, 3);
        }
    }
    const char *e = buf_str(&enc);
    size_t elen = enc.len;
    if (elen <= 50) {
        buf_printf(out, "\r\n filename*=utf-8''%s", e);
    } else {
        /* RFC 2231 section 3: filename*0*=utf-8''...; filename*1*=... */
        size_t off = 0;
        for (unsigned idx = 0; off < elen; idx++) {
            size_t take = elen - off < 50 ? elen - off : 50;
            /* Never split a %XX triple. */
            if (off + take < elen) {
                if (take >= 1 && e[off + take - 1] == '%')
                    take -= 1;
                else if (take >= 2 && e[off + take - 2] == '%')
                    take -= 2;
            }
            buf_printf(out, "%s\r\n filename*%u*=%s%.*s", idx ? ";" : "", idx,
                       idx ? "" : "utf-8''", (int)take, e + off);
            off += take;
        }
    }
    buf_free(&enc);
    free(clean);
}

/* A content type from the caller, or application/octet-stream when it
 * carries anything that could break the header. */
static const char *
safe_content_type(const char *ct)
{
    if (!ct || !*ct || !strchr(ct, '/'))
        return "application/octet-stream";
    for (const char *p = ct; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
            return "application/octet-stream";
    return ct;
}

typedef struct {
    char *headers;   /* header lines, each ending in CRLF */
    char *body;
} mime_part_t;

static void
mime_part_free(mime_part_t *p)
{
    free(p->headers);
    free(p->body);
}

/* Picks a boundary that occurs in none of the parts. */
static void
mime_boundary(char *out, size_t outlen, const mime_part_t *parts, size_t n)
{
    for (;;) {
        char rnd[33];
        int clash = 0;

        mail_random_hex(rnd, 12);
        snprintf(out, outlen, "=_tdhook_%s", rnd);
        for (size_t i = 0; i < n && !clash; i++)
            clash = strstr(parts[i].headers, out) || strstr(parts[i].body, out);
        if (!clash)
            return;
    }
}

/* Turns parts into one multipart part of the given subtype; frees the parts'
 * contents. */
static mime_part_t
mime_multipart(const char *subtype, mime_part_t *parts, size_t n, int preamble)
{
    char boundary[64];
    mime_part_t mp;
    buf_t b;

    mime_boundary(boundary, sizeof boundary, parts, n);
    mp.headers = xasprintf("Content-Type: multipart/%s;\r\n boundary=\"%s\"\r\n",
                           subtype, boundary);
    buf_init(&b, MAIL_BUF_CAP);
    /* Only for readers that know no MIME, so only at the top. */
    buf_append(&b, "", 0);
    if (preamble)
        buf_puts(&b, "This is a multi-part message in MIME format.\r\n");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "\r\n--%s\r\n", boundary);
        buf_puts(&b, parts[i].headers);
        buf_puts(&b, "\r\n");
        buf_puts(&b, parts[i].body);
        mime_part_free(&parts[i]);
    }
    buf_printf(&b, "\r\n--%s--\r\n", boundary);
    mp.body = buf_steal(&b);
    return mp;
}

static mime_part_t
mime_text(const char *subtype, const char *text)
{
    mime_part_t p;

    p.headers = xasprintf("Content-Type: text/%s; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: quoted-printable\r\n", subtype);
    p.body = qp_encode(text);
    return p;
}

static mime_part_t
mime_attachment(const mime_attachment_t *att)
{
    mime_part_t p;
    buf_t h;

    buf_init(&h, MAIL_BUF_CAP);
    buf_printf(&h, "Content-Type: %s\r\n", safe_content_type(att->content_type));
    buf_puts(&h, "Content-Transfer-Encoding: base64\r\n");
    buf_puts(&h, "Content-Disposition: attachment;");
    disposition_filename(&h, att->filename);
    buf_puts(&h, "\r\n");
    p.headers = buf_steal(&h);
    p.body = b64_lines(att->data ? att->data : "", att->data ? att->len : 0);
    return p;
}

/* ---- public: building ----------------------------------------------------- */

/* Allocated, never NULL.  Plain ASCII comes back as it is unless it holds
 * "=?" or a word too long to fold (78 characters), which are encoded too. */
char *
mime_encode_header(const char *s)
{
    char *clean = utf8_clean(s, 1);
    buf_t b;

    if (header_plain_ok(clean))
        return clean;
    buf_init(&b, MAIL_BUF_CAP);
    buf_append(&b, "", 0);
    header_words(&b, clean, EWORD_MAX);
    free(clean);
    return buf_steal(&b);
}


/* Allocated (NULL only for a NULL msg).  Bad input never fails the build:
 * controls in header values become spaces, invalid UTF-8 becomes U+FFFD,
 * an unusable content type becomes application/octet-stream. */
/* The From header: "Name <addr>" with the name encoded when it is not
 * plain ASCII (quoted when it is), or the address alone. */
static void
mime_from(buf_t *b, const char *from)
{
    char *name = NULL, *addr = NULL, *shown;

    if (address_split(from, &name, &addr) && name) {
        char *enc = mime_encode_header(name);

        if (strcmp(enc, name) == 0 && !strstr(name, "=?"))
            buf_printf(b, "From: \"%s\" <%s>\r\n", name, addr);
        else
            buf_printf(b, "From: %s <%s>\r\n", enc, addr);
        free(enc);
    } else {
        shown = mime_header_address(addr ? addr : from);
        buf_printf(b, "From: %s\r\n", shown);
        free(shown);
    }
    free(name);
    free(addr);
}

char *
mime_build(const mime_msg_t *msg)
{
    buf_t b;
    mime_part_t top;
    char *addr;

    if (!msg)
        return NULL;
    buf_init(&b, MAIL_BUF_CAP);

    mime_from(&b, msg->from);

    buf_t to;
    buf_init(&to, MAIL_BUF_CAP);
    buf_append(&to, "", 0);
    for (size_t i = 0; i < msg->nto; i++) {
        addr = mime_header_address(msg->to[i]);
        buf_printf(&to, "%s%s", to.len ? ", " : "", addr);
        free(addr);
    }
    header_fold(&b, "To", buf_str(&to));
    buf_free(&to);

    header_text(&b, "Subject", msg->subject ? msg->subject : "");
    header_date(&b);
    header_message_id(&b, msg->from);
    buf_puts(&b, "MIME-Version: 1.0\r\n");
    buf_puts(&b, "Auto-Submitted: auto-generated\r\n");

    mime_part_t text = mime_text("plain", msg->text ? msg->text : "");
    if (msg->html || msg->natt > 0) {
        mime_part_t *mixed = xcalloc(1 + msg->natt, sizeof *mixed);
        size_t nmixed = 0;

        if (msg->html) {
            mime_part_t alt[2] = {text, mime_text("html", msg->html)};
            mixed[nmixed++] = mime_multipart("alternative", alt, 2, msg->natt == 0);
        } else {
            mixed[nmixed++] = text;
        }
        for (size_t i = 0; i < msg->natt; i++)
            mixed[nmixed++] = mime_attachment(&msg->att[i]);
        top = nmixed == 1 ? mixed[0] : mime_multipart("mixed", mixed, nmixed, 1);
        free(mixed);
    } else {
        top = text;
    }
    buf_puts(&b, top.headers);
    buf_puts(&b, "\r\n");
    buf_puts(&b, top.body);
    /* A single part may end mid-line; SMTP wants the last line ended. */
    if (b.len < 2 || memcmp(b.data + b.len - 2, "\r\n", 2) != 0)
        buf_puts(&b, "\r\n");
    mime_part_free(&top);
    return buf_steal(&b);
}

