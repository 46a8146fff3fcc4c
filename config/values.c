/* Value parsers: ${VAR} expansion, booleans, integers, sizes, durations,
 * enum names. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_private.h"
#include "core/util/buf.h"
#include "core/util/xalloc.h"

/* ---- scalar values ------------------------------------------------------ */

static int
is_name_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '_';
}

/* Replaces ${VAR} by the environment variable and $$ by $.  Returns the
 * allocated string, or NULL with the error in c.  The value never appears
 * in a message. */
char *
expand_env(ctx_t *c, const char *s, unsigned line, const char *key)
{
    buf_t b;
    int toobig = 0;

    buf_init(&b, STRING_MAX);
    while (*s) {
        const char *d = strchr(s, '$');
        const char *name;
        size_t nl = 0;

        if (!d) {
            toobig |= buf_puts(&b, s);
            break;
        }
        toobig |= buf_append(&b, s, (size_t)(d - s));
        if (d[1] != '{') {
            /* "$$" is one "$"; a "$" before anything else is itself. */
            toobig |= buf_append(&b, "$", 1);
            s = d[1] == '$' ? d + 2 : d + 1;
            continue;
        }
        name = d + 2;
        while (is_name_char(name[nl]))
            nl++;
        if (nl == 0 || name[nl] != '}') {
            ctx_fail(c, line, key, "bad ${...} reference: write ${NAME}, "
                     "or $$ for a literal $");
            goto fail;
        }
        char *var = xstrndup(name, nl);
        const char *val = getenv(var);
        if (!val) {
            ctx_fail(c, line, key, "environment variable %s is not set", var);
            free(var);
            goto fail;
        }
        free(var);
        toobig |= buf_puts(&b, val);
        s = name + nl + 1;
    }
    if (toobig) {
        ctx_fail(c, line, key, "the value is longer than %d bytes", STRING_MAX);
        goto fail;
    }
    return buf_steal(&b);
fail:
    secret_free(buf_steal(&b));
    return NULL;
}

const enum_val_t *
enum_find(const enum_val_t *e, const char *s)
{
    for (; e->name; e++)
        if (strcmp(e->name, s) == 0)
            return e;
    return NULL;
}

const char *
enum_name(const enum_val_t *e, int v)
{
    for (; e->name; e++)
        if (e->value == v)
            return e->name;
    return "?";
}

char *
enum_names(const enum_val_t *e)
{
    buf_t b;

    buf_init(&b, ERR_MAX);
    for (const enum_val_t *p = e; p->name; p++)  /* "," and ";" quoted, as they are written */
        buf_printf(&b, isalpha((unsigned char)*p->name) ? "%s%s" : "%s\"%s\"",
                   p == e ? "" : ", ", p->name);
    return buf_steal(&b);
}

int
parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int
parse_long(const char *s, long *out)
{
    char *end;
    long v;

    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* Reads the leading decimal digits of s (no sign, no blanks) into *v and
 * points *rest past them and any blanks.  -1 on no digits or overflow. */
static int
parse_count(const char *s, unsigned long long *v, const char **rest)
{
    char *end;

    if (!(*s >= '0' && *s <= '9'))
        return -1;
    errno = 0;
    *v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    *rest = end;
    return 0;
}

typedef struct {
    const char *unit;
    unsigned long long mult;
} unit_t;

/* A count with a unit (as parse_count() reads it) times the unit's
 * multiplier, from units (n of them), into *out.  -1 on garbage, an unknown
 * unit or a product over max; *out is untouched then. */
static int
parse_scaled(const char *s, const unit_t *units, size_t n, unsigned long long max,
             unsigned long long *out)
{
    unsigned long long v;
    const char *unit;

    if (!s || parse_count(s, &v, &unit) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(unit, units[i].unit) != 0)
            continue;
        if (v > max / units[i].mult)
            return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

/* Sizes: digits, an optional blank, then no unit or B, KB, MB, GB (1000),
 * K, KiB, M, MiB, G, GiB (1024).  -1 on garbage, a sign or overflow; *out
 * is untouched then. */
int
config_parse_size(const char *s, size_t *out)
{
    static const unit_t units[] = {
        {"", 1}, {"B", 1},
        {"KB", 1000ULL}, {"MB", 1000ULL * 1000}, {"GB", 1000ULL * 1000 * 1000},
        {"K", 1ULL << 10}, {"KiB", 1ULL << 10},
        {"M", 1ULL << 20}, {"MiB", 1ULL << 20},
        {"G", 1ULL << 30}, {"GiB", 1ULL << 30},
    };
    unsigned long long v;

    if (parse_scaled(s, units, sizeof units / sizeof *units, SIZE_MAX, &v) < 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* Durations: digits, an optional blank, then ms, s, m, h, d, or nothing for
 * seconds.  -1 on garbage, a sign or overflow of long milliseconds; *out_ms
 * is untouched then. */
int
config_parse_duration(const char *s, long *out_ms)
{
    static const unit_t units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60ULL * 1000},
        {"h", 3600ULL * 1000}, {"d", 86400ULL * 1000},
    };
    unsigned long long v;

    if (parse_scaled(s, units, sizeof units / sizeof *units, LONG_MAX, &v) < 0)
        return -1;
    *out_ms = (long)v;
    return 0;
}
