#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cgi/auth.h"
#include "core/util/xalloc.h"

#define AUTH_HEADER_MAX 4096

int
auth_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* volatile keeps the compiler from turning the loop into an early exit. */
    volatile unsigned char diff = alen != blen;
    size_t i;

    for (i = 0; i < blen; i++) {
        unsigned char ca = i < alen ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

static int
auth_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *
auth_base64_decode(const char *in, size_t inlen, size_t *outlen)
{
    char *out;
    size_t n = 0, bits = 0;
    unsigned long acc = 0;

    while (inlen && in[inlen - 1] == '=')
        inlen--;
    if (inlen % 4 == 1)
        return NULL;
    out = xmalloc(inlen / 4 * 3 + 3);
    for (size_t i = 0; i < inlen; i++) {
        int v = auth_b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

/* Compares the candidate with every token, without stopping at a match. */
static int
auth_match_any(const char *cand, size_t clen, char *const *tokens, size_t ntokens)
{
    int ok = 0;

    for (size_t i = 0; i < ntokens; i++)
        ok |= auth_equal(cand, clen, tokens[i], strlen(tokens[i]));
    return ok;
}

int
auth_check(const char *authorization, char *const *tokens, size_t ntokens)
{
    const char *p;
    size_t len;

    if (!authorization || !ntokens)
        return 0;
    len = strnlen(authorization, AUTH_HEADER_MAX + 1);
    if (len > AUTH_HEADER_MAX)
        return 0;
    p = authorization;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "Bearer ", 7) == 0) {
        p += 7;
        while (*p == ' ')
            p++;
        len = strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        return len > 0 && auth_match_any(p, len, tokens, ntokens);
    }
    if (strncasecmp(p, "Basic ", 6) == 0) {
        size_t dlen;
        char *dec, *colon;
        int ok = 0;

        p += 6;
        while (*p == ' ')
            p++;
        len = strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        dec = auth_base64_decode(p, len, &dlen);
        if (!dec)
            return 0;
        colon = memchr(dec, ':', dlen);
        if (colon) {
            size_t plen = dlen - (size_t)(colon + 1 - dec);
            ok = plen > 0 && auth_match_any(colon + 1, plen, tokens, ntokens);
        }
        secret_wipe(dec, dlen);
        free(dec);
        return ok;
    }
    return 0;
}
