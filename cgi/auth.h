/* Hook authentication: "Authorization: Bearer TOKEN", or Basic auth whose
 * password is the token.  Several tokens may be valid at once (rotation).
 * Every configured token is compared, in time that depends only on the
 * lengths, whatever matches. */
#ifndef TDHOOK_AUTH_H
#define TDHOOK_AUTH_H

#include <stddef.h>

/* 1 when the Authorization header value carries one of the tokens, else 0
 * (also for NULL, an unknown scheme or broken base64). */
int auth_check(const char *authorization, char *const *tokens, size_t ntokens);
/* 1 when a and b are equal; time depends on the lengths only. */
int auth_equal(const char *a, size_t alen, const char *b, size_t blen);
/* Decodes standard base64 (padding optional).  Allocated, NUL-terminated,
 * *outlen set; NULL on invalid input. */
char *auth_base64_decode(const char *in, size_t inlen, size_t *outlen);

#endif
