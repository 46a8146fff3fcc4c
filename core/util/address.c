/* Mail addresses: see core/util/address.h. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "core/util/address.h"
#include "core/util/xalloc.h"

/* RFC 5321: a path is at most 256 octets including the angle brackets. */
#define ADDRESS_MAX 254

int
address_ok(const char *addr)
{
    const char *at;
    size_t len, local;

    if (!addr)
        return 0;
    len = strlen(addr);
    if (len < 3 || len > ADDRESS_MAX)
        return 0;
    at = strchr(addr, '@');
    if (!at || strchr(at + 1, '@'))
        return 0;
    local = (size_t)(at - addr);
    if (local == 0 || local > 64 || at[1] == '\0')
        return 0;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        /* No controls, spaces or non-ASCII, and nothing with a meaning in an
         * address list or an SMTP path. */
        if (c <= 0x20 || c >= 0x7F || strchr("<>()[]\\,;:\"", c))
            return 0;
    }
    /* Dots: not first, not last, never two in a row, in either half. */
    if (addr[0] == '.' || at[-1] == '.' || at[1] == '.' || addr[len - 1] == '.' ||
        strstr(addr, ".."))
        return 0;
    for (const char *p = at + 1; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int
address_split(const char *mailbox, char **name, char **addr)
{
    const char *lt, *gt, *end;
    char *n = NULL, *a;

    if (name)
        *name = NULL;
    *addr = NULL;
    if (!mailbox)
        return 0;
    lt = strrchr(mailbox, '<');
    if (!lt) {
        if (!address_ok(mailbox))
            return 0;
        *addr = xstrdup(mailbox);
        return 1;
    }
    gt = strchr(lt, '>');
    if (!gt || gt[1] != '\0')
        return 0;
    a = xstrndup(lt + 1, (size_t)(gt - lt - 1));
    end = lt;
    while (end > mailbox && end[-1] == ' ')
        end--;
    while (*mailbox == ' ')
        mailbox++;
    if (end > mailbox + 1 && *mailbox == '"' && end[-1] == '"') {
        mailbox++;
        end--;
    }
    if (end > mailbox)
        n = xstrndup(mailbox, (size_t)(end - mailbox));
    for (const char *p = n; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>') {
            free(n);
            free(a);
            return 0;
        }
    if (!address_ok(a)) {
        free(n);
        free(a);
        return 0;
    }
    *addr = a;
    if (name)
        *name = n;
    else
        free(n);
    return 1;
}
