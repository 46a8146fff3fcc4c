/* check-config's printing: every key with its value, secrets masked. */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config/config_private.h"

/* ---- printing ----------------------------------------------------------- */

/* The code point of the UTF-8 sequence at s (at most left bytes), with its
 * length in *n; -1 for an invalid sequence. */
static long
utf8_decode(const unsigned char *s, size_t left, size_t *n)
{
    long cp;
    size_t len;

    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return -1;
    }
    if (len > left)
        return -1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *n = len;
    return cp;
}

/* Writes s as a YAML double-quoted string that config_load reads back as
 * s: escapes for quotes, backslashes, control and line-break characters,
 * and "$$" for "$" (loading expands ${VAR}). */
static void
print_quoted(FILE *fp, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);

    fputc('"', fp);
    while (left) {
        size_t n = 1;
        long cp = utf8_decode(p, left, &n);

        if (cp < 0)
            fprintf(fp, "\\x%02x", p[0]);
        else if (cp == '"' || cp == '\\')
            fprintf(fp, "\\%c", (int)cp);
        else if (cp == '$')
            fputs("$$", fp);
        else if (cp == '\n')
            fputs("\\n", fp);
        else if (cp == '\t')
            fputs("\\t", fp);
        else if (cp < 0x20 || cp == 0x7f)
            fprintf(fp, "\\x%02lx", cp);
        else if (cp < 0x80 || (cp >= 0xa0 && cp <= 0xd7ff && cp != 0x2028 &&
                               cp != 0x2029) ||
                 (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) ||
                 cp >= 0x10000)
            fwrite(p, 1, n, fp);
        else
            fprintf(fp, "\\u%04lx", cp);
        p += n;
        left -= n;
    }
    fputc('"', fp);
}

static void
print_duration(FILE *fp, long ms)
{
    static const struct {
        long mult;
        const char *unit;
    } units[] = {{86400000L, "d"}, {3600000L, "h"}, {60000L, "m"},
                 {1000L, "s"}};

    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (ms != 0 && ms % units[i].mult == 0) {
            fprintf(fp, "%ld%s", ms / units[i].mult, units[i].unit);
            return;
        }
    }
    fprintf(fp, ms ? "%ldms" : "%lds", ms);
}

static void
print_size(FILE *fp, size_t v)
{
    static const struct {
        size_t mult;
        const char *unit;
    } units[] = {{(size_t)1 << 30, "GiB"}, {(size_t)1 << 20, "MiB"},
                 {(size_t)1 << 10, "KiB"}};

    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (v != 0 && v % units[i].mult == 0) {
            fprintf(fp, "%zu%s", v / units[i].mult, units[i].unit);
            return;
        }
    }
    fprintf(fp, "%zu", v);
}

static void
print_fields(const config_priv_t *p, const field_t *tab, FILE *fp, int indent)
{
    const config_t *cfg = &p->cfg;

    for (const field_t *f = tab; f->name; f++) {
        const config_list_t *l = FIELD(cfg, f, const config_list_t);
        const config_map_t *m = FIELD(cfg, f, const config_map_t);
        const char *s;

        fprintf(fp, "%*s", indent, "");
        if (has_secret_file(f) && p->secret_file[f->slot]) {
            fprintf(fp, "%s_file: ", f->name);
            print_quoted(fp, p->secret_file[f->slot]);
            fputc('\n', fp);
            continue;
        }
        fprintf(fp, "%s:", f->name);
        switch (f->type) {
        case F_SECTION:
            fputc('\n', fp);
            print_fields(p, f->sub, fp, indent + 2);
            continue;
        case F_STR:
        case F_SECRET:
            s = *FIELD(cfg, f, char *const);
            fputc(' ', fp);
            if (!s)
                fputs("~", fp);
            else if (f->type == F_SECRET)
                fputs("\"" MASK "\"", fp);
            else
                print_quoted(fp, s);
            break;
        case F_LIST:
        case F_SECRET_LIST:
            fputs(" [", fp);
            for (size_t i = 0; i < l->n; i++) {
                if (i)
                    fputs(", ", fp);
                if (f->type == F_SECRET_LIST)
                    fputs("\"" MASK "\"", fp);
                else
                    print_quoted(fp, l->v[i]);
            }
            fputc(']', fp);
            break;
        case F_MAP:
            if (m->n == 0)
                fputs(" {}", fp);
            for (size_t i = 0; i < m->n; i++) {
                fprintf(fp, "\n%*s", indent + 2, "");
                print_quoted(fp, m->v[i].key);
                fputs(": ", fp);
                print_quoted(fp, m->v[i].value);
            }
            break;
        case F_BOOL:
            fputs(*FIELD(cfg, f, const int) ? " true" : " false", fp);
            break;
        case F_INT:
            fprintf(fp, " %d", *FIELD(cfg, f, const int));
            break;
        case F_SIZE:
            fputc(' ', fp);
            print_size(fp, *FIELD(cfg, f, const size_t));
            break;
        case F_DURATION:
            fputc(' ', fp);
            print_duration(fp, *FIELD(cfg, f, const long));
            break;
        case F_ENUM:
        case F_LOGLEVEL: {
            const char *name = enum_name(f->enums, *FIELD(cfg, f, const int));

            /* "," and ";" are YAML indicators: quoted, they read back */
            fprintf(fp, isalpha((unsigned char)*name) ? " %s" : " \"%s\"", name);
            break;
        }
        case F_FLAGS: {
            unsigned bits = *FIELD(cfg, f, const unsigned);
            int first = 1;

            fputs(" [", fp);
            for (const enum_val_t *e = f->enums; e->name; e++) {
                if (bits & (unsigned)e->value) {
                    fprintf(fp, "%s%s", first ? "" : ", ", e->name);
                    first = 0;
                }
            }
            fputc(']', fp);
            break;
        }
        }
        fputc('\n', fp);
    }
}

/* Prints every key as re-loadable YAML; secrets as "********", or as
 * x_file: PATH when they came from a file. */
void
config_print(const config_t *cfg, FILE *fp)
{
    fputs("# tdhook: the effective configuration, secrets masked\n", fp);
    print_fields((const config_priv_t *)(const void *)cfg, root_fields, fp, 0);
}
