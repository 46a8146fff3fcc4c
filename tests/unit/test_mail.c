/* Unit tests of core/clients/mime.c and core/clients/smtp.c: MIME building checked byte by byte and parsed
 * back with Python's email package, and SMTP sending against the local sink
 * tests/fakes/smtp_sink.py (skipped when /usr/bin/python3 lacks aiosmtpd). */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "config/config.h"
#include "core/util/address.h"
#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/jobs/mailjob.h"
#include "core/queue/queue.h"
#include "core/util/xalloc.h"
#include "tests/unit/fake.h"

#define FROM "tdhook@example.com"
#define SUBJECT_NL "Tekort: Toners HP 26A \xE2\x80\x94 Belgi\xC3\xAB"

/* ---- Python's view of a message ----------------------------------------- */

/* Prints "key hex(value)" lines: the decoded subject, whether a Bcc header
 * exists, the number of parse defects, the text and HTML bodies (line ends
 * as LF) and each attachment's filename and exact bytes. */
static const char py_parse[] =
    "import sys, email\n"
    "from email import policy\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "m = email.message_from_bytes(raw, policy=policy.default)\n"
    "def out(k, v):\n"
    "    if v is None: v = ''\n"
    "    if isinstance(v, str): v = v.encode('utf-8', 'surrogateescape')\n"
    "    sys.stdout.write(k + ' ' + v.hex() + '\\n')\n"
    "out('subject', str(m['subject'] or ''))\n"
    "out('bcc', 'yes' if m['bcc'] is not None else 'no')\n"
    "out('to', str(m['to'] or ''))\n"
    "out('ctype', m.get_content_type())\n"
    "out('defects', str(sum(len(p.defects) for p in m.walk())))\n"
    "b = m.get_body(preferencelist=('plain',))\n"
    "out('text', b.get_content().replace('\\r\\n', '\\n') if b is not None else '')\n"
    "h = m.get_body(preferencelist=('html',))\n"
    "out('html', h.get_content().replace('\\r\\n', '\\n') if h is not None else '')\n"
    "for a in m.iter_attachments():\n"
    "    out('attname', a.get_filename() or '')\n"
    "    out('attdata', a.get_payload(decode=True))\n";

#define PY_MAX_ITEMS 32

typedef struct {
    size_t n;
    char *key[PY_MAX_ITEMS];
    char *val[PY_MAX_ITEMS];   /* NUL-terminated, may hold NULs: see len */
    size_t len[PY_MAX_ITEMS];
} py_view_t;

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static char *
write_temp(const char *data, size_t len)
{
    char *path = xstrdup("/tmp/tdhook-mail-XXXXXX");
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void
py_free(py_view_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->key[i]);
        free(v->val[i]);
    }
    v->n = 0;
}

static void
py_parse_message(const char *msg, py_view_t *v)
{
    char *script = write_temp(py_parse, strlen(py_parse));
    char *file = write_temp(msg, strlen(msg));
    char *cmd = xasprintf(FAKE_PYTHON " %s %s", script, file);
    char line[1 << 16];
    FILE *fp;

    memset(v, 0, sizeof *v);
    fp = popen(cmd, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) && v->n < PY_MAX_ITEMS) {
        char *sp = strchr(line, ' ');
        size_t hl;
        assert_non_null(sp);
        *sp = '\0';
        hl = strcspn(sp + 1, "\n");
        v->key[v->n] = xstrdup(line);
        v->val[v->n] = xmalloc(hl / 2 + 1);
        for (size_t i = 0; i + 1 < hl; i += 2)
            v->val[v->n][i / 2] = (char)(hexval(sp[1 + i]) * 16 + hexval(sp[2 + i]));
        v->val[v->n][hl / 2] = '\0';
        v->len[v->n] = hl / 2;
        v->n++;
    }
    assert_int_equal(pclose(fp), 0);
    unlink(script);
    unlink(file);
    free(script);
    free(file);
    free(cmd);
}

/* The nth value for key (0 = first), or NULL. */
static const char *
py_get(const py_view_t *v, const char *key, size_t nth, size_t *len)
{
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->key[i], key) == 0 && nth-- == 0) {
            if (len)
                *len = v->len[i];
            return v->val[i];
        }
    }
    return NULL;
}

/* ---- byte-level checks -------------------------------------------------- */

/* No bare CR or LF, every line at most max_line characters. */
static void
check_crlf_lines(const char *msg, size_t max_line)
{
    size_t col = 0;

    for (const char *p = msg; *p; p++) {
        if (*p == '\r') {
            assert_true(p[1] == '\n');
            assert_true(col <= max_line);
            col = 0;
            p++;
        } else {
            assert_true(*p != '\n');
            col++;
        }
    }
    /* The message ends with a line end. */
    assert_int_equal(col, 0);
}

static int
has_header(const char *msg, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = msg;

    for (;;) {
        if (strncasecmp(p, prefix, n) == 0)
            return 1;
        if (p[0] == '\r' && p[1] == '\n')
            return 0;   /* end of the header section */
        p = strstr(p, "\r\n");
        if (!p)
            return 0;
        p += 2;
    }
}

/* Text with LF line ends, as the parser hands it back. */
static char *
lf_text(const char *s)
{
    char *out = xmalloc(strlen(s) + 1);
    size_t k = 0;

    for (const char *p = s; *p; p++) {
        if (*p == '\r') {
            out[k++] = '\n';
            if (p[1] == '\n')
                p++;
        } else {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
    return out;
}

/* ---- building ----------------------------------------------------------- */

static const char csv_data[] =
    "stock;location;count;minimum;shortfall\r\n"
    "\"Toners HP 26A\";Magazijn Utrecht;1;4;3\r\n"
    "\"Kabels & adapters \xE2\x80\x94 Belgi\xC3\xAB\";;0;2;2\r\n";

static void
test_build_full(void **state)
{
    (void)state;
    char *to[] = {"inkoop@example.com", "beheer@example.org"};
    const char *text = "Stock under minimum:\n\n- Toners HP 26A: 1 of 4\n"
                       "- Kabels & adapters \xE2\x80\x94 Belgi\xC3\xAB: 0 of 2\n";
    const char *html = "<html><body>\n<h1>Tekort</h1>\r\n<p>Toners HP 26A: 1 of 4</p>\r"
                       "<p>Belgi\xC3\xAB</p></body></html>\n";
    mime_attachment_t att[2] = {
        {"stock-2024-06-01.csv", "text/csv; charset=utf-8", csv_data, sizeof csv_data - 1},
        {"Voorraad Belgi\xC3\xAB \xE2\x80\x94 juni.csv", "text/csv; charset=utf-8", "a;b\r\n", 5},
    };
    mime_msg_t m = {FROM, to, 2, SUBJECT_NL, text, html, att, 2};
    char *msg = mime_build(&m);
    py_view_t v;
    size_t len;

    assert_non_null(msg);
    check_crlf_lines(msg, 78);
    assert_true(has_header(msg, "From: " FROM "\r\n"));
    assert_true(has_header(msg, "To: inkoop@example.com, beheer@example.org\r\n"));
    assert_true(has_header(msg, "Subject: =?UTF-8?B?"));
    assert_true(has_header(msg, "Date: "));
    assert_true(has_header(msg, "Message-ID: <"));
    assert_true(has_header(msg, "MIME-Version: 1.0\r\n"));
    assert_true(has_header(msg, "Auto-Submitted: auto-generated\r\n"));
    assert_true(has_header(msg, "Content-Type: multipart/mixed;"));
    assert_non_null(strstr(msg, "@example.com>\r\n"));
    assert_non_null(strstr(msg, " +0000\r\n"));
    assert_non_null(strstr(msg, "Content-Type: multipart/alternative;"));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=utf-8\r\n"
                                "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_non_null(strstr(msg, "Content-Type: text/html; charset=utf-8\r\n"
                                "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: base64\r\n"));
    assert_non_null(strstr(msg, "Content-Disposition: attachment;\r\n"
                                " filename=\"stock-2024-06-01.csv\""));
    assert_non_null(strstr(msg, "filename*=utf-8''"));

    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "defects", 0, NULL), "0");
    assert_string_equal(py_get(&v, "ctype", 0, NULL), "multipart/mixed");
    assert_string_equal(py_get(&v, "subject", 0, NULL), SUBJECT_NL);
    assert_string_equal(py_get(&v, "bcc", 0, NULL), "no");
    assert_string_equal(py_get(&v, "text", 0, NULL), text);
    char *html_lf = lf_text(html);
    assert_string_equal(py_get(&v, "html", 0, NULL), html_lf);
    free(html_lf);
    assert_string_equal(py_get(&v, "attname", 0, NULL), "stock-2024-06-01.csv");
    const char *data = py_get(&v, "attdata", 0, &len);
    assert_int_equal(len, sizeof csv_data - 1);
    assert_memory_equal(data, csv_data, len);
    assert_string_equal(py_get(&v, "attname", 1, NULL), att[1].filename);
    assert_string_equal(py_get(&v, "attdata", 1, NULL), "a;b\r\n");
    py_free(&v);
    free(msg);
}

static void
test_build_binary_attachment(void **state)
{
    (void)state;
    char *to[] = {"a@example.com"};
    char bin[3 * 256 + 1];
    mime_attachment_t att = {"data.bin", "application/octet-stream", bin, sizeof bin};
    mime_msg_t m = {FROM, to, 1, "Binary", "see attachment", NULL, &att, 1};
    char *msg;
    py_view_t v;
    size_t len;

    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (char)(i * 7 + 3);
    msg = mime_build(&m);
    check_crlf_lines(msg, 78);
    assert_true(has_header(msg, "Content-Type: multipart/mixed;"));
    assert_null(strstr(msg, "multipart/alternative"));
    /* Full base64 lines are exactly 76 characters. */
    const char *b = strstr(msg, "filename=\"data.bin\"\r\n\r\n");
    assert_non_null(b);
    b += strlen("filename=\"data.bin\"\r\n\r\n");
    assert_int_equal(strcspn(b, "\r"), 76);

    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "defects", 0, NULL), "0");
    assert_string_equal(py_get(&v, "text", 0, NULL), "see attachment");
    const char *data = py_get(&v, "attdata", 0, &len);
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(data, bin, sizeof bin);
    py_free(&v);
    free(msg);
}

/* mail.from with a name: the From header carries it (encoded when it is
 * not ASCII), the address stays whole. */
static void
test_build_from_name(void **state)
{
    char *to[] = {"a@example.com"};
    mime_msg_t m = {"TOPdesk Voorraad <voorraad@example.com>", to, 1, "S", "x\n", NULL, NULL, 0};
    char *msg = mime_build(&m), *name = NULL, *addr = NULL;

    (void)state;
    assert_true(has_header(msg, "From: \"TOPdesk Voorraad\" <voorraad@example.com>\r\n"));
    free(msg);
    m.from = "\"Facilitair B\xc3\xbcro\" <fb@example.com>";
    msg = mime_build(&m);
    assert_true(has_header(msg, "From: =?UTF-8?"));
    assert_non_null(strstr(msg, " <fb@example.com>\r\n"));
    free(msg);
    assert_true(address_split("TOPdesk Voorraad <voorraad@example.com>", &name, &addr));
    assert_string_equal(name, "TOPdesk Voorraad");
    assert_string_equal(addr, "voorraad@example.com");
    free(name);
    free(addr);
    assert_true(address_split("plain@example.com", &name, &addr));
    assert_null(name);
    assert_string_equal(addr, "plain@example.com");
    free(addr);
    assert_false(address_split("Name <not an address>", NULL, &addr));
    assert_false(address_split("Name <a@example.com> trailing", NULL, &addr));
    assert_false(address_split("Na\nme <a@example.com>", NULL, &addr));
}

static void
test_build_text_only(void **state)
{
    (void)state;
    char *to[] = {"a@example.com"};
    mime_msg_t m = {FROM, to, 1, "Plain", "one\ntwo\n", NULL, NULL, 0};
    char *msg = mime_build(&m);
    py_view_t v;

    check_crlf_lines(msg, 78);
    assert_null(strstr(msg, "multipart"));
    assert_true(has_header(msg, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_true(has_header(msg, "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_true(has_header(msg, "Subject: Plain\r\n"));
    assert_non_null(strstr(msg, "\r\n\r\none\r\ntwo\r\n"));
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "ctype", 0, NULL), "text/plain");
    assert_string_equal(py_get(&v, "text", 0, NULL), "one\ntwo\n");
    py_free(&v);
    free(msg);
}

static void
test_build_alternative_only(void **state)
{
    (void)state;
    char *to[] = {"a@example.com"};
    mime_msg_t m = {FROM, to, 1, "Alt", "text", "<p>html</p>", NULL, 0};
    char *msg = mime_build(&m);
    py_view_t v;

    check_crlf_lines(msg, 78);
    assert_true(has_header(msg, "Content-Type: multipart/alternative;"));
    assert_null(strstr(msg, "multipart/mixed"));
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "defects", 0, NULL), "0");
    assert_string_equal(py_get(&v, "text", 0, NULL), "text");
    assert_string_equal(py_get(&v, "html", 0, NULL), "<p>html</p>");
    assert_null(py_get(&v, "attname", 0, NULL));
    py_free(&v);
    free(msg);
}

/* Quoted-printable corner cases: long lines, '=', trailing blanks, leading
 * dots, "From ", every kind of line end, a bare CR inside, invalid UTF-8. */
static void
test_build_quoted_printable(void **state)
{
    (void)state;
    char *to[] = {"a@example.com"};
    char longline[301];
    char *text;
    char *msg, *expect;
    py_view_t v;

    /* 50 times a 6-byte unit: whole UTF-8 characters, '=' and dots. */
    for (size_t i = 0; i < 300; i++)
        longline[i] = "Ab=\xC3\xAB."[i % 6];
    longline[300] = '\0';
    text = xasprintf("%s\n.starts with a dot\n..two dots\n.\nFrom here on\r\n"
                     "trailing spaces   \ntrailing tab\t\rcr only\r\n"
                     "x=y and 100%% \xE2\x82\xAC\n%s \n", longline, longline);
    mime_msg_t m = {FROM, to, 1, "QP", text, NULL, NULL, 0};
    msg = mime_build(&m);
    check_crlf_lines(msg, 76 + 2);
    /* Body lines: at most 76, none starting with a dot, no trailing blank. */
    const char *body = strstr(msg, "\r\n\r\n") + 4;
    for (const char *p = body; *p;) {
        size_t n = strcspn(p, "\r");
        assert_true(n <= 76);
        assert_true(p[0] != '.');
        assert_false(strncmp(p, "From ", 5) == 0);
        if (n > 0)
            assert_true(p[n - 1] != ' ' && p[n - 1] != '\t');
        p += n + 2;
    }
    py_parse_message(msg, &v);
    expect = lf_text(text);
    assert_string_equal(py_get(&v, "text", 0, NULL), expect);
    py_free(&v);
    free(expect);
    free(msg);
    free(text);

    /* Invalid UTF-8 in the text becomes U+FFFD.  (A single-part message
     * always ends its last line, so the text comes back with a newline.) */
    mime_msg_t bad = {FROM, to, 1, "QP", "a\xFF" "b\xC3", NULL, NULL, 0};
    msg = mime_build(&bad);
    check_crlf_lines(msg, 78);
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "text", 0, NULL), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\n");
    py_free(&v);
    free(msg);
}

static void
test_build_header_injection(void **state)
{
    (void)state;
    char *to[] = {"a@example.com", "b@example.com\r\nBcc: evil2@example.com"};
    mime_msg_t m = {FROM, to, 2, "x\r\nBcc: evil@example.com", "body", NULL, NULL, 0};
    char *msg = mime_build(&m);
    py_view_t v;

    check_crlf_lines(msg, 78);
    assert_false(has_header(msg, "Bcc:"));
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "bcc", 0, NULL), "no");
    assert_string_equal(py_get(&v, "subject", 0, NULL), "x  Bcc: evil@example.com");
    py_free(&v);
    free(msg);

    /* Nor through a non-ASCII subject or an attachment name. */
    mime_attachment_t att = {"a\r\nBcc: evil@example.com\r\n.csv", "text/csv\r\nBcc: x@y",
                             "x", 1};
    mime_msg_t m2 = {FROM, to, 1, "\xC3\xA9\nBcc: evil@example.com", "body", NULL, &att, 1};
    msg = mime_build(&m2);
    check_crlf_lines(msg, 78);
    assert_null(strstr(msg, "\nBcc"));
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "bcc", 0, NULL), "no");
    assert_string_equal(py_get(&v, "subject", 0, NULL), "\xC3\xA9 Bcc: evil@example.com");
    assert_string_equal(py_get(&v, "attname", 0, NULL), "a  Bcc: evil@example.com  .csv");
    py_free(&v);
    free(msg);
}

static void
test_build_long_subjects(void **state)
{
    (void)state;
    char *to[] = {"a@example.com"};
    char ascii[400], *utf8;
    py_view_t v;

    /* Long ASCII with spaces folds at the spaces. */
    for (size_t i = 0; i < sizeof ascii - 1; i++)
        ascii[i] = i % 9 == 8 ? ' ' : (char)('a' + i % 26);
    ascii[sizeof ascii - 1] = '\0';
    mime_msg_t m = {FROM, to, 1, ascii, "b", NULL, NULL, 0};
    char *msg = mime_build(&m);
    check_crlf_lines(msg, 78);
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "subject", 0, NULL), ascii);
    py_free(&v);
    free(msg);

    /* Many recipients: To folds between addresses. */
    char *many[12];
    for (size_t i = 0; i < 12; i++)
        many[i] = xasprintf("recipient-number-%zu@example.com", i);
    mime_msg_t m3 = {FROM, many, 12, "To", "b", NULL, NULL, 0};
    msg = mime_build(&m3);
    check_crlf_lines(msg, 78);
    py_parse_message(msg, &v);
    const char *parsed_to = py_get(&v, "to", 0, NULL);
    for (size_t i = 0; i < 12; i++) {
        assert_non_null(strstr(parsed_to, many[i]));
        free(many[i]);
    }
    py_free(&v);
    free(msg);

    /* Long non-ASCII splits into encoded words on character boundaries. */
    utf8 = xstrdup("");
    for (int i = 0; i < 40; i++) {
        char *n = xasprintf("%s%s", utf8, i % 2 ? "\xE2\x80\x94 " : "Belgi\xC3\xAB \xF0\x9F\x93\xA6 ");
        free(utf8);
        utf8 = n;
    }
    mime_msg_t m2 = {FROM, to, 1, utf8, "b", NULL, NULL, 0};
    msg = mime_build(&m2);
    check_crlf_lines(msg, 78);
    py_parse_message(msg, &v);
    assert_string_equal(py_get(&v, "subject", 0, NULL), utf8);
    py_free(&v);
    free(msg);
    free(utf8);
}

/* ---- mime_encode_header ----------------------------------------------- */

static int
b64val(int c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(a, c) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Decodes a run of "=?UTF-8?B?...?=" words separated by CRLF SP; each word
 * must be at most 75 characters and decode to whole UTF-8 characters. */
static char *
decode_words(const char *s)
{
    char *out = xmalloc(strlen(s) + 1);
    size_t k = 0;
    const char *p = s;

    while (*p) {
        const char *end;
        size_t start;
        unsigned acc = 0;
        int bits = 0;

        assert_true(strncmp(p, "=?UTF-8?B?", 10) == 0);
        end = strstr(p + 10, "?=");
        assert_non_null(end);
        assert_true((size_t)(end + 2 - p) <= 75);
        start = k;
        for (const char *q = p + 10; q < end; q++) {
            if (*q == '=')
                break;
            int d = b64val(*q);
            assert_true(d >= 0);
            acc = (acc << 6) | (unsigned)d;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[k++] = (char)((acc >> bits) & 0xFF);
            }
        }
        /* Whole characters: the first byte is no continuation byte and the
         * last sequence is complete. */
        assert_true(k > start);
        assert_true(((unsigned char)out[start] & 0xC0) != 0x80);
        size_t last = k - 1;
        while (last > start && ((unsigned char)out[last] & 0xC0) == 0x80)
            last--;
        unsigned char lead = (unsigned char)out[last];
        size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        assert_int_equal(k - last, want);
        p = end + 2;
        if (*p) {
            assert_true(strncmp(p, "\r\n ", 3) == 0);
            p += 3;
        }
    }
    out[k] = '\0';
    return out;
}

static void
test_encode_header(void **state)
{
    (void)state;
    char *s, *d;

    s = mime_encode_header("Stock report 2024-06-01");
    assert_string_equal(s, "Stock report 2024-06-01");
    free(s);
    s = mime_encode_header("a\r\nBcc: x@y\tz\x01");
    assert_string_equal(s, "a  Bcc: x@y z ");
    free(s);
    s = mime_encode_header("");
    assert_string_equal(s, "");
    free(s);

    s = mime_encode_header(SUBJECT_NL);
    assert_true(strncmp(s, "=?UTF-8?B?", 10) == 0);
    d = decode_words(s);
    assert_string_equal(d, SUBJECT_NL);
    free(d);
    free(s);

    /* Looks like an encoded word: encoded, so it reads back as written. */
    s = mime_encode_header("=?UTF-8?B?ZXZpbA==?=");
    d = decode_words(s);
    assert_string_equal(d, "=?UTF-8?B?ZXZpbA==?=");
    free(d);
    free(s);

    /* Long: many words, each within 75 characters, split between
     * characters (3- and 4-byte ones at every offset). */
    for (int shift = 0; shift < 4; shift++) {
        char *in = xstrndup("xyz", (size_t)shift);
        for (int i = 0; i < 30; i++) {
            char *n = xasprintf("%s\xE2\x82\xAC\xF0\x9F\x93\xA6\xC3\xAB", in);
            free(in);
            in = n;
        }
        s = mime_encode_header(in);
        assert_non_null(strstr(s, "\r\n "));
        d = decode_words(s);
        assert_string_equal(d, in);
        free(d);
        free(s);
        free(in);
    }

    /* Invalid UTF-8 becomes U+FFFD; CR/LF become spaces. */
    s = mime_encode_header("caf\xC3\xA9\xFF\r\n\xE2\x82");
    d = decode_words(s);
    assert_string_equal(d, "caf\xC3\xA9\xEF\xBF\xBD  \xEF\xBF\xBD\xEF\xBF\xBD");
    free(d);
    free(s);
}

static void
test_address_ok(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        int ok;
    } cases[] = {
        {"inkoop@example.com", 1},
        {"first.last+tag@sub.example.co.uk", 1},
        {"a@b", 1},
        {"root@localhost", 1},
        {"o'brien@example.com", 1},
        {"x_y-z@ex-ample.nl", 1},
        {"", 0},
        {"@example.com", 0},
        {"user@", 0},
        {"user", 0},
        {"a@b@c", 0},
        {"a b@example.com", 0},
        {"a@example.com ", 0},
        {"a@example.com\r\nBcc: x@y", 0},
        {"a@example.com\n", 0},
        {"<a@example.com>", 0},
        {"a>@example.com", 0},
        {"a,b@example.com", 0},
        {"\"a\"@example.com", 0},
        {".a@example.com", 0},
        {"a.@example.com", 0},
        {"a..b@example.com", 0},
        {"a@example..com", 0},
        {"a@.example.com", 0},
        {"a@example.com.", 0},
        {"a@exa_mple.com", 0},
        {"j\xC3\xB6rg@example.com", 0},
        {"a\tb@example.com", 0},
        {"a@[127.0.0.1]", 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (address_ok(cases[i].addr) != cases[i].ok)
            fail_msg("address_ok(\"%s\") != %d", cases[i].addr, cases[i].ok);
    }
    assert_false(address_ok(NULL));

    /* 254 characters at most; 64 in the local part. */
    char buf[300];
    memset(buf, 'a', sizeof buf);
    memcpy(buf + 64, "@", 1);
    for (size_t i = 100; i < 254; i += 50)
        buf[i] = '.';
    buf[254] = '\0';
    buf[253] = 'z';
    assert_true(address_ok(buf));
    memset(buf, 'a', sizeof buf);
    buf[64] = '@';
    buf[255] = '\0';
    assert_false(address_ok(buf));
    memset(buf, 'a', sizeof buf);
    buf[65] = '@';
    buf[100] = '\0';
    assert_false(address_ok(buf));
}

/* ---- sending without a server ----------------------------------------- */

static config_t *
test_config(const char *smtp_url, const char *mail_extra)
{
    config_t *cfg = NULL;
    char *err = NULL;
    char *yaml = xasprintf("state_dir: /tmp/tdhook-mail-test\n"
                           "hooks: {tokens: [t]}\n"
                           "topdesk: {url: 'http://127.0.0.1:9', username: u, "
                           "application_password: p}\n"
                           "mail: {smtp_url: '%s', from: " FROM "%s}\n"
                           "graph: {tenant: t, client_id: c, client_secret: s}\n",
                           smtp_url, mail_extra ? mail_extra : ", starttls: auto");
    int rc = config_load_buffer("test.yaml", yaml, strlen(yaml), &cfg, &err);

    if (rc != CONFIG_OK)
        fail_msg("config: %s", err ? err : "?");
    free(yaml);
    return cfg;
}

static void
test_send_without_server(void **state)
{
    (void)state;
    char *bad[] = {"not an address", "x@y\r\nRCPT TO:<z@w>"};
    char *good[] = {"a@example.com"};
    char *err = NULL;
    config_t *cfg;

    /* No valid recipient: nothing to send to. */
    cfg = test_config("smtp://127.0.0.1:9", NULL);
    assert_int_equal(smtp_send(cfg, bad, 2, "x\r\n", &err), SMTP_EFAIL);
    assert_non_null(err);
    assert_non_null(strstr(err, "no valid recipient"));
    free(err);
    config_free(cfg);

    /* Credentials, starttls off, a server not on loopback: refused before
     * any connection (192.0.2.1 is TEST-NET-1 and never answers). */
    cfg = test_config("smtp://192.0.2.1:25",
                      ", starttls: off, username: tdhook, password: Secret-Pw-4711");
    time_t t0 = time(NULL);
    assert_int_equal(smtp_send(cfg, good, 1, "x\r\n", &err), SMTP_EFAIL);
    assert_true(time(NULL) - t0 < 5);
    assert_non_null(strstr(err, "without TLS"));
    assert_null(strstr(err, "Secret-Pw-4711"));
    free(err);
    config_free(cfg);
}

static void
test_send_job_payload(void **state)
{
    (void)state;
    config_t *cfg = test_config("smtp://127.0.0.1:9", NULL);
    const char *bad[] = {
        "{}",
        "{\"to\":[\"a@example.com\"]}",
        "{\"message\":\"x\"}",
        "{\"to\":\"a@example.com\",\"message\":\"x\"}",
        "{\"to\":[],\"message\":\"x\"}",
        "{\"to\":[1],\"message\":\"x\"}",
        "{\"to\":[\"a@example.com\"],\"message\":5}",
        "[]",
    };
    char *err = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object *p = json_tokener_parse(bad[i]);
        assert_non_null(p);
        assert_int_equal(mailjob_send(cfg, p, &err), SMTP_EFAIL);
        assert_non_null(err);
        free(err);
        err = NULL;
        json_object_put(p);
    }
    assert_int_equal(mailjob_send(cfg, NULL, &err), SMTP_EFAIL);
    free(err);
    config_free(cfg);
}

/* A port on loopback that nothing listens on. */
static int
closed_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void
test_send_nothing_listening(void **state)
{
    (void)state;
    char *to[] = {"a@example.com"};
    char *url = xasprintf("smtp://127.0.0.1:%d", closed_port());
    config_t *cfg = test_config(url, NULL);
    char *err = NULL;

    assert_int_equal(smtp_send(cfg, to, 1, "Subject: x\r\n\r\nx\r\n", &err), SMTP_ERETRY);
    assert_non_null(err);
    free(err);
    config_free(cfg);
    free(url);
}

/* A local IPv4 address that is not loopback, or 0 when there is none. */
static int
local_ipv4(char *out, size_t outlen)
{
    struct ifaddrs *ifs, *i;
    int found = 0;

    if (getifaddrs(&ifs) != 0)
        return 0;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
            (i->ifa_flags & IFF_LOOPBACK))
            continue;
        struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;
        found = inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outlen) != NULL;
    }
    freeifaddrs(ifs);
    return found;
}

/* starttls: auto with credentials against a server that is not on loopback
 * and offers AUTH but no STARTTLS: the credentials must not be sent.  A
 * one-shot fake server (a child process) exits 1 if it ever sees AUTH. */
static void
test_send_auto_refuses_plaintext_auth(void **state)
{
    (void)state;
    char ip[INET_ADDRSTRLEN], *url, *err = NULL;
    char *to[] = {"a@example.com"};
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int lfd, status;
    pid_t pid;
    config_t *cfg;

    if (!local_ipv4(ip, sizeof ip))
        skip();
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static const char hello[] = "220 fake ESMTP\r\n";
        static const char ehlo[] = "250-fake\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000000\r\n";
        char line[1024];
        int cfd;
        FILE *in;

        alarm(30);
        cfd = accept(lfd, NULL, NULL);
        if (cfd < 0)
            _exit(2);
        in = fdopen(cfd, "r");
        if (write(cfd, hello, sizeof hello - 1) < 0)
            _exit(2);
        while (fgets(line, sizeof line, in)) {
            const char *reply = "502 5.5.2 not here\r\n";
            if (strncasecmp(line, "AUTH", 4) == 0)
                _exit(1);
            if (strncasecmp(line, "EHLO", 4) == 0)
                reply = ehlo;
            else if (strncasecmp(line, "QUIT", 4) == 0)
                reply = "221 bye\r\n";
            if (write(cfd, reply, strlen(reply)) < 0)
                break;
        }
        _exit(0);
    }
    close(lfd);
    url = xasprintf("smtp://%s:%d", ip, ntohs(sa.sin_port));
    cfg = test_config(url, ", starttls: auto, username: tdhook, password: Secret-Pw-4711");
    assert_int_equal(smtp_send(cfg, to, 1, "Subject: x\r\n\r\nx\r\n", &err), SMTP_EFAIL);
    assert_non_null(err);
    assert_non_null(strstr(err, "refusing to send SMTP credentials"));
    assert_null(strstr(err, "Secret-Pw-4711"));
    free(err);
    /* smtp_send closed the connection, so the child ends on EOF (or its
     * alarm); it must not have seen AUTH. */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    config_free(cfg);
    free(url);
}

/* ---- sending to the sink -------------------------------------------- */

static int sink_usable;
static char *sink_script;

typedef struct {
    fake_t fake;       /* the sink: its pid, port and temp dir */
    char *maildir;     /* fake.dir/mail */
    config_t *cfg;
} sink_t;

static int
group_setup(void **state)
{
    (void)state;
    sink_script = fake_find("smtp_sink.py", NULL);
    sink_usable = sink_script &&
                  system(FAKE_PYTHON " -c 'import aiosmtpd' >/dev/null 2>&1") == 0;
    if (!sink_usable)
        fprintf(stderr, "note: %s or aiosmtpd missing: SMTP tests skipped\n",
                sink_script ? sink_script : "tests/fakes/smtp_sink.py");
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    free(sink_script);
    return 0;
}

static void
sink_stop(sink_t *s)
{
    fake_stop(&s->fake);
    config_free(s->cfg);
    s->cfg = NULL;
    free(s->maildir);
    s->maildir = NULL;
}

/* Starts the sink with the extra arguments (NULL-terminated) and a config
 * pointing at it, with mail_extra appended to the mail section. */
static void
sink_start(sink_t *s, const char *const *extra, const char *mail_extra)
{
    const char *args[32];
    size_t n = 0;

    if (!sink_usable)
        skip();
    memset(s, 0, sizeof *s);
    assert_int_equal(fake_init(&s->fake, "sink"), 0);
    s->maildir = xasprintf("%s/mail", s->fake.dir);
    assert_int_equal(mkdir(s->maildir, 0700), 0);
    args[n++] = "--maildir";
    args[n++] = s->maildir;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    if (fake_start(&s->fake, sink_script, args) != 0)
        fail_msg("smtp sink did not start");
    char *url = xasprintf("smtp://127.0.0.1:%d", s->fake.port);
    s->cfg = test_config(url, mail_extra);
    free(url);
}

/* Reads the nth (0-based, by name) stored message and its envelope. */
static int
sink_message(const sink_t *s, size_t nth, char **raw, size_t *rawlen, json_object **env)
{
    struct dirent **names = NULL;
    int n = scandir(s->maildir, &names, NULL, alphasort);
    size_t seen = 0;
    int found = 0;

    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (!found && len > 4 && strcmp(names[i]->d_name + len - 4, ".eml") == 0 &&
            seen++ == nth) {
            char *path = xasprintf("%s/%s", s->maildir, names[i]->d_name);
            FILE *fp = fopen(path, "rb");
            assert_non_null(fp);
            fseek(fp, 0, SEEK_END);
            long sz = ftell(fp);
            fseek(fp, 0, SEEK_SET);
            *raw = xmalloc((size_t)sz + 1);
            assert_int_equal(fread(*raw, 1, (size_t)sz, fp), (size_t)sz);
            (*raw)[sz] = '\0';
            *rawlen = (size_t)sz;
            fclose(fp);
            char *jpath = xasprintf("%.*s.json", (int)(strlen(path) - 4), path);
            *env = json_object_from_file(jpath);
            assert_non_null(*env);
            free(jpath);
            free(path);
            found = 1;
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return found;
}

static size_t
sink_count(const sink_t *s)
{
    DIR *d = opendir(s->maildir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".eml") == 0;
    }
    closedir(d);
    return n;
}

static const char *
env_str(json_object *env, const char *key)
{
    json_object *v;
    assert_true(json_object_object_get_ex(env, key, &v));
    return json_object_get_string(v);
}

static char *
sample_message(char *const *to, size_t nto)
{
    mime_attachment_t att = {"report.csv", "text/csv; charset=utf-8", csv_data,
                             sizeof csv_data - 1};
    mime_msg_t m = {FROM, to, nto, SUBJECT_NL, "Hello\n.\n..\nbye\n", "<p>Hello</p>\n",
                    &att, 1};
    return mime_build(&m);
}

static void
test_smtp_deliver(void **state)
{
    (void)state;
    sink_t s;
    char *to[] = {"inkoop@example.com", "beheer@example.org"};
    char *msg, *raw = NULL, *err = NULL;
    size_t rawlen = 0;
    json_object *env = NULL, *rcpts;

    sink_start(&s, NULL, NULL);
    msg = sample_message(to, 2);
    assert_int_equal(smtp_send(s.cfg, to, 2, msg, &err), SMTP_OK);
    assert_null(err);
    assert_true(sink_message(&s, 0, &raw, &rawlen, &env));
    assert_int_equal(rawlen, strlen(msg));
    assert_memory_equal(raw, msg, rawlen);
    assert_string_equal(env_str(env, "mail_from"), FROM);
    assert_true(json_object_object_get_ex(env, "rcpt_tos", &rcpts));
    assert_int_equal(json_object_array_length(rcpts), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(rcpts, 0)), to[0]);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(rcpts, 1)), to[1]);
    json_object *bare;
    if (json_object_object_get_ex(env, "bare_lf", &bare))
        assert_false(json_object_get_boolean(bare));
    json_object_put(env);
    free(raw);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_refused_recipient(void **state)
{
    (void)state;
    sink_t s;
    const char *args[] = {"--refuse-rcpt", "nobody@example.com", NULL};
    char *to[] = {"inkoop@example.com", "nobody@example.com", "beheer@example.org"};
    char *msg, *raw = NULL, *err = NULL;
    size_t rawlen;
    json_object *env = NULL, *rcpts;

    sink_start(&s, args, NULL);
    msg = sample_message(to, 3);
    assert_int_equal(smtp_send(s.cfg, to, 3, msg, &err), SMTP_OK);
    assert_non_null(err);
    assert_non_null(strstr(err, "refused recipients: nobody@example.com (550"));
    assert_null(strstr(err, "inkoop"));
    free(err);
    assert_true(sink_message(&s, 0, &raw, &rawlen, &env));
    assert_true(json_object_object_get_ex(env, "rcpt_tos", &rcpts));
    assert_int_equal(json_object_array_length(rcpts), 2);
    json_object_put(env);
    free(raw);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_all_refused(void **state)
{
    (void)state;
    sink_t s;
    const char *args[] = {"--refuse-rcpt", "x@example.com", "--refuse-rcpt", "y@example.com",
                          NULL};
    char *to[] = {"x@example.com", "y@example.com"};
    char *msg, *err = NULL;

    sink_start(&s, args, NULL);
    msg = sample_message(to, 2);
    assert_int_equal(smtp_send(s.cfg, to, 2, msg, &err), SMTP_EFAIL);
    assert_non_null(err);
    assert_non_null(strstr(err, "x@example.com"));
    assert_non_null(strstr(err, "y@example.com"));
    free(err);
    assert_int_equal(sink_count(&s), 0);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_refused_sender(void **state)
{
    (void)state;
    sink_t s;
    const char *args[] = {"--refuse-sender", FROM, NULL};
    char *to[] = {"inkoop@example.com"};
    char *msg, *err = NULL;

    sink_start(&s, args, NULL);
    msg = sample_message(to, 1);
    assert_int_equal(smtp_send(s.cfg, to, 1, msg, &err), SMTP_EFAIL);
    assert_non_null(err);
    assert_non_null(strstr(err, "550"));
    free(err);
    assert_int_equal(sink_count(&s), 0);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_tempfail(void **state)
{
    (void)state;
    sink_t s;
    const char *args[] = {"--tempfail-first", "1", NULL};
    char *to[] = {"inkoop@example.com"};
    char *msg, *err = NULL;

    sink_start(&s, args, NULL);
    msg = sample_message(to, 1);
    assert_int_equal(smtp_send(s.cfg, to, 1, msg, &err), SMTP_ERETRY);
    assert_non_null(err);
    assert_non_null(strstr(err, "451"));
    free(err);
    err = NULL;
    /* The retry goes through. */
    assert_int_equal(smtp_send(s.cfg, to, 1, msg, &err), SMTP_OK);
    assert_null(err);
    assert_int_equal(sink_count(&s), 1);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_auth(void **state)
{
    (void)state;
    sink_t s;
    const char *args[] = {"--auth", "tdhook:Right-Pw-0815", "--require-auth", NULL};
    char *to[] = {"inkoop@example.com"};
    char *msg, *err = NULL;

    /* Right credentials on loopback without TLS: allowed. */
    sink_start(&s, args, ", starttls: auto, username: tdhook, password: Right-Pw-0815");
    msg = sample_message(to, 1);
    assert_int_equal(smtp_send(s.cfg, to, 1, msg, &err), SMTP_OK);
    assert_null(err);
    assert_int_equal(sink_count(&s), 1);
    config_free(s.cfg);

    /* Wrong ones: a permanent failure whose message never holds the
     * password, plain or base64 (AUTH PLAIN of "\0tdhook\0Wrong-Pw-..."). */
    char *url = xasprintf("smtp://127.0.0.1:%d", s.fake.port);
    s.cfg = test_config(url, ", starttls: auto, username: tdhook, password: Wrong-Pw-4242");
    int rc = smtp_send(s.cfg, to, 1, msg, &err);
    assert_int_equal(rc, SMTP_EFAIL);
    assert_non_null(err);
    assert_null(strstr(err, "Wrong-Pw-4242"));
    assert_null(strstr(err, "V3JvbmctUHctNDI0Mg"));
    assert_null(strstr(err, "AHRkaG9vawBXcm9uZy1Qdy00MjQy"));
    free(err);
    err = NULL;
    config_free(s.cfg);

    /* No credentials against a server that wants them: 530, permanent. */
    s.cfg = test_config(url, NULL);
    assert_int_equal(smtp_send(s.cfg, to, 1, msg, &err), SMTP_EFAIL);
    assert_non_null(err);
    free(err);
    assert_int_equal(sink_count(&s), 1);
    free(url);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_starttls_required(void **state)
{
    (void)state;
    sink_t s;
    char *to[] = {"inkoop@example.com"};
    char *msg, *err = NULL;

    /* The sink offers no STARTTLS.  SMTP_EFAIL, not SMTP_ERETRY: the server
     * answered and plainly lacks TLS; retrying changes nothing until the
     * operator fixes the server or the config, and a dead letter says so
     * at once instead of after a day of backoff. */
    sink_start(&s, NULL, ", starttls: required");
    msg = sample_message(to, 1);
    assert_int_equal(smtp_send(s.cfg, to, 1, msg, &err), SMTP_EFAIL);
    assert_non_null(err);
    assert_non_null(strstr(err, "STARTTLS"));
    free(err);
    assert_int_equal(sink_count(&s), 0);
    free(msg);
    sink_stop(&s);
}

static void
test_smtp_queue_job(void **state)
{
    (void)state;
    sink_t s;
    char *to[] = {"inkoop@example.com", "beheer@example.org"};
    char *bad_to[] = {"inkoop@example.com", "no\r\naddress"};
    char *msg, *err = NULL, *raw = NULL;
    char id[QUEUE_ID_MAX];
    size_t rawlen;
    json_object *env = NULL;
    queue_limits_t limits = {100, 3, 50, 200, 3600 * 1000L};
    queue_t *q;
    job_t *job = NULL;

    sink_start(&s, NULL, NULL);
    char *state_dir = xasprintf("%s/state", s.fake.dir);
    q = queue_open(state_dir, &limits, &err);
    if (!q)
        fail_msg("queue_open: %s", err ? err : "?");
    msg = sample_message(to, 2);
    assert_int_equal(mailjob_enqueue(q, bad_to, 2, msg, id), QUEUE_EINVAL);
    assert_int_equal(mailjob_enqueue(q, to, 2, msg, id), QUEUE_OK);
    assert_int_equal(queue_claim(q, &job, NULL), QUEUE_OK);
    assert_string_equal(job->kind, "mail");
    assert_string_equal(job->id, id);
    assert_int_equal(mailjob_send(s.cfg, job->payload, &err), SMTP_OK);
    assert_null(err);
    assert_int_equal(queue_done(q, job, NULL), QUEUE_OK);
    assert_true(sink_message(&s, 0, &raw, &rawlen, &env));
    assert_memory_equal(raw, msg, strlen(msg));
    json_object_put(env);
    free(raw);
    free(msg);
    queue_close(q);
    free(state_dir);
    sink_stop(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_ok),
        cmocka_unit_test(test_encode_header),
        cmocka_unit_test(test_build_full),
        cmocka_unit_test(test_build_binary_attachment),
        cmocka_unit_test(test_build_text_only),
        cmocka_unit_test(test_build_from_name),
        cmocka_unit_test(test_build_alternative_only),
        cmocka_unit_test(test_build_quoted_printable),
        cmocka_unit_test(test_build_header_injection),
        cmocka_unit_test(test_build_long_subjects),
        cmocka_unit_test(test_send_without_server),
        cmocka_unit_test(test_send_job_payload),
        cmocka_unit_test(test_send_nothing_listening),
        cmocka_unit_test(test_send_auto_refuses_plaintext_auth),
        cmocka_unit_test(test_smtp_deliver),
        cmocka_unit_test(test_smtp_refused_recipient),
        cmocka_unit_test(test_smtp_all_refused),
        cmocka_unit_test(test_smtp_refused_sender),
        cmocka_unit_test(test_smtp_tempfail),
        cmocka_unit_test(test_smtp_auth),
        cmocka_unit_test(test_smtp_starttls_required),
        cmocka_unit_test(test_smtp_queue_job),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
