/* Loads tdhook.yaml: libyaml events become a small tree of nodes, and a
 * table of every key of the schema is walked over that tree.  The table also
 * drives freeing and printing, so a key is added in one place only. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_private.h"
#include "core/util/address.h"
#include "core/util/buf.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define MASK "********"

/* Records the first error as "NAME:LINE: KEY: message" (KEY may be NULL).
 * Control characters are replaced so a message is always one line. */

void
ctx_fail(ctx_t *c, unsigned line, const char *key, const char *fmt, ...)
{
    buf_t b;
    va_list ap;

    if (c->err)
        return;
    buf_init(&b, ERR_MAX);
    if (line)
        buf_printf(&b, "%s:%u: ", c->name, line);
    else
        buf_printf(&b, "%s: ", c->name);
    if (key)
        buf_printf(&b, "%s: ", key);
    va_start(ap, fmt);
    if (buf_vprintf(&b, fmt, ap) != BUF_OK)
        buf_puts(&b, "(message too long)");
    va_end(ap);
    c->err = buf_steal(&b);
    for (char *s = c->err; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* ---- the walk ----------------------------------------------------------- */

static char *
path_join(const char *prefix, const char *name)
{
    return prefix ? xasprintf("%s.%s", prefix, name) : xstrdup(name);
}

int
has_secret_file(const field_t *f)
{
    return f->type == F_SECRET || f->type == F_SECRET_LIST;
}

/* The field that key names, NULL if none. */
static const field_t *
field_find(const field_t *tab, const char *key)
{
    size_t kl = strlen(key);

    for (const field_t *f = tab; f->name; f++) {
        size_t nl = strlen(f->name);

        if (strcmp(f->name, key) == 0)
            return f;
        if (has_secret_file(f) && kl == nl + 5 &&
            memcmp(key, f->name, nl) == 0 && strcmp(key + nl, "_file") == 0)
            return f;
    }
    return NULL;
}

static void
list_add(config_list_t *l, char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = s;
}

void
list_clear(config_list_t *l, int secret)
{
    for (size_t i = 0; i < l->n; i++) {
        if (secret)
            secret_free(l->v[i]);
        else
            free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void
map_clear(config_map_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].value);
    }
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

static int
is_required(const ctx_t *c, const field_t *f)
{
    if (f->flags & FL_REQ)
        return 1;
    if (f->flags & FL_REQ_GRAPH)
        return c->p->cfg.reservations.exchange == EXCHANGE_GRAPH;
    if (f->flags & FL_REQ_EWS)
        return c->p->cfg.reservations.exchange == EXCHANGE_EWS;
    if (f->flags & FL_REQ_BOTH)
        return c->p->cfg.reservations.direction == DIRECTION_BOTH;
    if (f->flags & FL_REQ_NOTIFY)
        return c->p->cfg.reservations.direction == DIRECTION_BOTH &&
               c->p->cfg.reservations.outlook.notifications;
    return 0;
}

static int
has_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0 &&
           s[strlen(prefix)] != '\0';
}

/* The string checks of F_STR: URL schemes and trailing slashes. */
/* 1 when name is a time zone in the system's database ($TZDIR, else
 * /usr/share/zoneinfo): a relative path of letters, digits, "_", "-", "+"
 * and "/", naming a file there. */
static int
timezone_known(const char *name)
{
    const char *dir = getenv("TZDIR");
    struct stat st;
    char *path;
    int ok;

    if (!*name || name[0] == '/' || strstr(name, ".."))
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_-+/", *p))
            return 0;
    path = xasprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return ok;
}

static void
check_string(ctx_t *c, const field_t *f, char *s, unsigned line, const char *key)
{
    char *addr = NULL;

    if (!*s && is_required(c, f)) {
        ctx_fail(c, line, key, "must not be empty");
        return;
    }
    if ((f->flags & FL_HTTP) && !has_prefix(s, "http://") &&
        !has_prefix(s, "https://")) {
        ctx_fail(c, line, key, "must be an http:// or https:// URL");
        return;
    }
    if ((f->flags & FL_SMTP) && !has_prefix(s, "smtp://") &&
        !has_prefix(s, "smtps://")) {
        ctx_fail(c, line, key, "must be an smtp:// or smtps:// URL");
        return;
    }
    if ((f->flags & FL_MAILBOX) && *s && !address_split(s, NULL, &addr)) {
        ctx_fail(c, line, key, "\"%.100s\" is not a mail address; give one such as "
                 "tdhook@example.com, or with a name: TOPdesk Voorraad <tdhook@example.com>", s);
        return;
    }
    free(addr);
    if ((f->flags & FL_TZ) && *s && !timezone_known(s)) {
        ctx_fail(c, line, key, "\"%.64s\" is not a time zone this system knows; give an IANA "
                 "name such as Europe/Amsterdam (see /usr/share/zoneinfo)", s);
        return;
    }
    if (f->flags & FL_STRIP) {
        size_t len = strlen(s);

        while (len > 0 && s[len - 1] == '/')
            s[--len] = '\0';
        if ((f->flags & FL_HTTP) && !has_prefix(s, "http://") &&
            !has_prefix(s, "https://"))
            ctx_fail(c, line, key, "the URL has no host");
    }
}

/* A scalar's text after ${VAR} expansion, or NULL with an error; a mapping
 * or list is a type error naming only the kinds. */
char *
scalar_value(ctx_t *c, const node_t *v, const char *key, const char *want)
{
    if (v->type != NODE_SCALAR) {
        ctx_fail(c, v->line, key, "expected %s, found %s", want, node_kind(v));
        return NULL;
    }
    return expand_env(c, v->str, v->line, key);
}

/* Splits a tokens file: one token a line, blank lines and # comments
 * skipped, blanks around a token dropped. */
void
split_tokens(char *data, config_list_t *out)
{
    char *line = data;

    while (line && *line) {
        char *nl = strchr(line, '\n');
        char *end;

        if (nl)
            *nl = '\0';
        while (*line == ' ' || *line == '\t' || *line == '\r')
            line++;
        end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
                              end[-1] == '\r'))
            end--;
        if (end > line && *line != '#')
            list_add(out, xstrndup(line, (size_t)(end - line)));
        line = nl ? nl + 1 : NULL;
    }
}

static void
set_list(ctx_t *c, const field_t *f, const node_t *v, const char *key)
{
    int secret = f->type == F_SECRET_LIST;
    config_list_t *dst = FIELD(&c->p->cfg, f, config_list_t);
    config_list_t l = {NULL, 0};

    if (v->type != NODE_SEQUENCE) {
        ctx_fail(c, v->line, key, "expected a list, found %s", node_kind(v));
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const node_t *item = v->kids[i];
        char *s;

        if (item->type != NODE_SCALAR || item->is_null) {
            ctx_fail(c, item->line, key, "item %zu: expected a string, found %s",
                     i + 1, item->is_null ? "nothing" : node_kind(item));
            goto out;
        }
        s = expand_env(c, item->str, item->line, key);
        if (!s)
            goto out;
        list_add(&l, s);
        if (!*s) {
            ctx_fail(c, item->line, key, "item %zu is empty", i + 1);
            goto out;
        }
        if ((f->flags & FL_ADDRESS) && !address_ok(s)) {
            ctx_fail(c, item->line, key, "item %zu, \"%.100s\", is not a mail address "
                     "(such as inkoop@example.com)", i + 1, s);
            goto out;
        }
    }
    list_clear(dst, secret);
    *dst = l;
    l.v = NULL;
    l.n = 0;
out:
    list_clear(&l, secret);
}

typedef struct {
    const char *key;
    unsigned line;
} key_line_t;

static int
key_line_cmp(const void *a, const void *b)
{
    const key_line_t *x = a, *y = b;
    int r = strcmp(x->key, y->key);

    if (r)
        return r;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void
set_map(ctx_t *c, const field_t *f, const node_t *v, const char *key)
{
    config_map_t *dst = FIELD(&c->p->cfg, f, config_map_t);
    config_map_t m = {NULL, 0};
    key_line_t *kl = NULL;
    unsigned dup = 0;

    if (v->type != NODE_MAPPING) {
        ctx_fail(c, v->line, key, "expected a mapping, found %s", node_kind(v));
        return;
    }
    size_t n = v->n / 2;
    if (n)
        m.v = xcalloc(n, sizeof *m.v);
    for (size_t i = 0; i < n; i++) {
        const node_t *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
        char *ks, *vs;

        if (val->type != NODE_SCALAR || val->is_null) {
            ctx_fail(c, val->line, key, "%s: expected a string, found %s",
                     k->str, val->is_null ? "nothing" : node_kind(val));
            goto out;
        }
        ks = expand_env(c, k->str, k->line, key);
        if (!ks)
            goto out;
        vs = expand_env(c, val->str, val->line, key);
        if (!vs) {
            free(ks);
            goto out;
        }
        m.v[m.n].key = ks;
        m.v[m.n].value = vs;
        m.n++;
    }
    if (n) {
        kl = xcalloc(n, sizeof *kl);
        for (size_t i = 0; i < n; i++) {
            kl[i].key = m.v[i].key;
            kl[i].line = v->kids[2 * i]->line;
        }
        qsort(kl, n, sizeof *kl, key_line_cmp);
        for (size_t i = 1; i < n; i++)
            if (strcmp(kl[i - 1].key, kl[i].key) == 0 &&
                (!dup || kl[i].line < dup))
                dup = kl[i].line;
        if (dup) {
            ctx_fail(c, dup, key, "duplicate key");
            goto out;
        }
    }
    map_clear(dst);
    *dst = m;
    m.v = NULL;
    m.n = 0;
out:
    free(kl);
    map_clear(&m);
}

static void
set_flags(ctx_t *c, const field_t *f, const node_t *v, const char *key)
{
    unsigned bits = 0;
    char *names = NULL;

    if (v->type != NODE_SEQUENCE) {
        ctx_fail(c, v->line, key, "expected a list, found %s", node_kind(v));
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const node_t *item = v->kids[i];
        const enum_val_t *e;
        char *s;

        if (item->type != NODE_SCALAR) {
            ctx_fail(c, item->line, key, "item %zu: expected a string, found %s",
                     i + 1, node_kind(item));
            return;
        }
        s = expand_env(c, item->str, item->line, key);
        if (!s)
            return;
        e = enum_find(f->enums, s);
        if (!e) {
            names = enum_names(f->enums);
            ctx_fail(c, item->line, key, "expected one of %s, found \"%.64s\"",
                     names, s);
            free(names);
            free(s);
            return;
        }
        free(s);
        bits |= (unsigned)e->value;
    }
    if (!bits) {
        names = enum_names(f->enums);
        ctx_fail(c, v->line, key, "list at least one of %s", names);
        free(names);
        return;
    }
    *FIELD(&c->p->cfg, f, unsigned) = bits;
}

/* The plain scalar kinds: string, bool, int, size, duration, enum. */
static void
set_scalar(ctx_t *c, const field_t *f, const node_t *v, const char *key)
{
    char *s, *names;
    long l;
    size_t sz;
    int b;
    const enum_val_t *e;

    s = scalar_value(c, v, key, f->type == F_STR ? "a string" : "a value");
    if (!s)
        return;
    switch (f->type) {
    case F_STR:
        check_string(c, f, s, v->line, key);
        if (c->err)
            break;
        free(*FIELD(&c->p->cfg, f, char *));
        *FIELD(&c->p->cfg, f, char *) = s;
        return;
    case F_BOOL:
        if (parse_bool(s, &b) < 0)
            ctx_fail(c, v->line, key, "expected true or false, found \"%.64s\"", s);
        else
            *FIELD(&c->p->cfg, f, int) = b;
        break;
    case F_INT:
        if (parse_long(s, &l) < 0 || l < f->min || l > f->max)
            ctx_fail(c, v->line, key,
                     "expected an integer from %ld to %ld, found \"%.64s\"",
                     f->min, f->max, s);
        else
            *FIELD(&c->p->cfg, f, int) = (int)l;
        break;
    case F_SIZE:
        if (config_parse_size(s, &sz) < 0 || sz < (size_t)f->min)
            ctx_fail(c, v->line, key, "expected a size such as 4096, 512KiB "
                     "or 1MiB, found \"%.64s\"", s);
        else
            *FIELD(&c->p->cfg, f, size_t) = sz;
        break;
    case F_DURATION:
        if (config_parse_duration(s, &l) < 0 || l < f->min)
            ctx_fail(c, v->line, key, "expected a duration such as 500ms, "
                     "30s, 5m, 2h or 7d, found \"%.64s\"", s);
        else
            *FIELD(&c->p->cfg, f, long) = l;
        break;
    case F_ENUM:
    case F_LOGLEVEL:
        if (f->type == F_LOGLEVEL) {
            b = log_level_parse(s);
            e = b < 0 ? NULL : f->enums;
        } else {
            e = enum_find(f->enums, s);
            b = e ? e->value : -1;
        }
        if (!e) {
            names = enum_names(f->enums);
            ctx_fail(c, v->line, key, "expected one of %s, found \"%.64s\"",
                     names, s);
            free(names);
        } else {
            *FIELD(&c->p->cfg, f, int) = b;
        }
        break;
    default:
        break;
    }
    free(s);
}

static void walk_section(ctx_t *c, const field_t *tab, const node_t *map,
                         unsigned line, const char *prefix);

static void
walk_field(ctx_t *c, const field_t *f, const node_t *map, unsigned line,
           const char *key)
{
    const node_t *v = map_get(map, f->name);
    const node_t *vf = NULL;

    if (v && v->is_null)
        v = NULL;
    if (has_secret_file(f)) {
        char *fname = xasprintf("%s_file", f->name);

        vf = map_get(map, fname);
        if (vf && vf->is_null)
            vf = NULL;
        if (v && vf) {
            ctx_fail(c, map_get_key(map, fname)->line, key,
                     "give either %s or %s, not both", f->name, fname);
            free(fname);
            return;
        }
        free(fname);
    }
    if (f->type == F_SECTION) {
        if (v && v->type != NODE_MAPPING) {
            ctx_fail(c, v->line, key, "expected a mapping, found %s",
                     node_kind(v));
            return;
        }
        const node_t *k = map_get_key(map, f->name);

        walk_section(c, f->sub, v, k ? k->line : line, key);
        return;
    }
    if (!v && !vf) {
        if (is_required(c, f))
            ctx_fail(c, line, key, "missing required key%s%s%s",
                     has_secret_file(f) ? " (or " : "",
                     has_secret_file(f) ? f->name : "",
                     has_secret_file(f) ? "_file)" : "");
        return;
    }
    switch (f->type) {
    case F_SECRET:
        set_secret(c, f, v, vf, key);
        break;
    case F_SECRET_LIST:
        if (vf)
            set_secret_list_file(c, f, vf, key);
        else
            set_list(c, f, v, key);
        if (!c->err && FIELD(&c->p->cfg, f, config_list_t)->n == 0 &&
            is_required(c, f))
            ctx_fail(c, (vf ? vf : v)->line, key, "at least one is required");
        break;
    case F_LIST:
        set_list(c, f, v, key);
        break;
    case F_MAP:
        set_map(c, f, v, key);
        break;
    case F_FLAGS:
        set_flags(c, f, v, key);
        break;
    default:
        set_scalar(c, f, v, key);
        break;
    }
}

/* Checks map (NULL when the section is absent; line is then where it would
 * be) against tab: unknown and duplicate keys first, then every field. */
static void
walk_section(ctx_t *c, const field_t *tab, const node_t *map, unsigned line,
             const char *prefix)
{
    for (size_t i = 0; map && i + 1 < map->n; i += 2) {
        const node_t *k = map->kids[i];

        if (!field_find(tab, k->str)) {
            char *key = path_join(prefix, k->str);

            ctx_fail(c, k->line, key, "unknown key");
            free(key);
            return;
        }
        for (size_t j = 0; j < i; j += 2) {
            if (strcmp(map->kids[j]->str, k->str) == 0) {
                char *key = path_join(prefix, k->str);

                ctx_fail(c, k->line, key, "duplicate key");
                free(key);
                return;
            }
        }
    }
    for (const field_t *f = tab; f->name && !c->err; f++) {
        char *key = path_join(prefix, f->name);

        walk_field(c, f, map, line, key);
        free(key);
    }
}

/* Sets every key of tab that has a default to it, through the same
 * parsers a value in the file goes through. */
static void
config_defaults(ctx_t *c, const field_t *tab)
{
    for (const field_t *f = tab; f->name && !c->err; f++) {
        node_t v = {.type = NODE_SCALAR};

        if (f->type == F_SECTION) {
            config_defaults(c, f->sub);
            continue;
        }
        if (!f->dflt)
            continue;
        if (f->type == F_FLAGS) {
            node_t items[8], *kids[8];
            char *names = xstrdup(f->dflt), *w = names;

            v.type = NODE_SEQUENCE;
            v.kids = kids;
            while (*w && v.n < 8) {
                size_t len = strcspn(w, ", ");

                items[v.n] = (node_t){.type = NODE_SCALAR, .str = w};
                kids[v.n] = &items[v.n];
                v.n++;
                w += len;
                while (*w == ',' || *w == ' ')
                    *w++ = '\0';
            }
            set_flags(c, f, &v, f->name);
            free(names);
            continue;
        }
        v.str = (char *)f->dflt;
        set_scalar(c, f, &v, f->name);
    }
}

/* ---- public ------------------------------------------------------------- */

/* Parses and validates len bytes of YAML.  *out is allocated on CONFIG_OK
 * (config_free()); on CONFIG_EINVAL *errstr (if errstr is not NULL) is an
 * allocated "NAME:LINE: KEY: message" without any secret value. */
int
config_load_buffer(const char *name, const char *data, size_t len,
                   config_t **out, char **errstr)
{
    ctx_t c = {name ? name : "(config)", NULL, NULL};
    node_t *root = NULL;
    unsigned line = 1;
    int rc = CONFIG_EINVAL;

    *out = NULL;
    if (errstr)
        *errstr = NULL;
    if (len > CONFIG_FILE_MAX) {
        ctx_fail(&c, 0, NULL, "the file is larger than 1 MiB");
        goto out;
    }
    if (tree_parse(&c, data ? data : "", data ? len : 0, &root) < 0)
        goto out;
    if (root && root->type == NODE_SCALAR && !root->is_null) {
        ctx_fail(&c, root->line, NULL, "the top level must be a mapping");
        goto out;
    }
    if (root && root->type == NODE_SEQUENCE) {
        ctx_fail(&c, root->line, NULL, "the top level must be a mapping");
        goto out;
    }
    if (root && root->type == NODE_MAPPING)
        line = root->line;
    c.p = xcalloc(1, sizeof *c.p);
    c.p->cfg.path = xstrdup(c.name);
    config_defaults(&c, root_fields);
    walk_section(&c, root_fields, root && root->type == NODE_MAPPING ? root : NULL,
                 line, NULL);
    if (!c.err && c.p->cfg.reservations.direction == DIRECTION_BOTH &&
        c.p->cfg.reservations.exchange == EXCHANGE_NONE)
        ctx_fail(&c, line, "reservations.direction",
                 "both needs reservations.exchange: graph or ews");
    if (c.err)
        goto out;
    *out = &c.p->cfg;
    c.p = NULL;
    rc = CONFIG_OK;
out:
    node_free(root);
    if (c.p)
        config_free(&c.p->cfg);
    if (c.err && errstr)
        *errstr = c.err;
    else
        free(c.err);
    return rc;
}

/* Reads path (at most 1 MiB) and hands it to config_load_buffer().
 * CONFIG_ENOENT with "PATH: strerror" in *errstr when it cannot be opened or
 * read.  A file readable by group or others is loaded with a warning. */
int
config_load(const char *path, config_t **out, char **errstr)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int fd, rc;

    *out = NULL;
    if (errstr)
        *errstr = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errstr)
            *errstr = xasprintf("%s: %s", path, strerror(errno));
        return CONFIG_ENOENT;
    }
    if (fstat(fd, &st) < 0) {
        if (errstr)
            *errstr = xasprintf("%s: %s", path, strerror(errno));
        close(fd);
        return CONFIG_ENOENT;
    }
    if (read_private(fd, &st, path, "secrets", CONFIG_FILE_MAX, &data, &len) != 0) {
        if (errstr)
            *errstr = xasprintf("%s: %s", path, strerror(errno));
        rc = CONFIG_ENOENT;
        goto out;
    }
    rc = config_load_buffer(path, data, len, out, errstr);
out:
    close(fd);
    wipe(data, len);
    free(data);
    return rc;
}

/* Frees every field the table names, wiping secrets. */
static void
free_fields(config_t *cfg, const field_t *tab)
{
    for (const field_t *f = tab; f->name; f++) {
        switch (f->type) {
        case F_SECTION:
            free_fields(cfg, f->sub);
            break;
        case F_STR:
            free(*FIELD(cfg, f, char *));
            break;
        case F_SECRET:
            secret_free(*FIELD(cfg, f, char *));
            break;
        case F_LIST:
        case F_SECRET_LIST:
            list_clear(FIELD(cfg, f, config_list_t), f->type == F_SECRET_LIST);
            break;
        case F_MAP:
            map_clear(FIELD(cfg, f, config_map_t));
            break;
        default:
            break;
        }
    }
}

/* Frees cfg and everything in it, wiping secrets first; NULL is allowed.
 * cfg must come from config_load() or config_load_buffer(). */
void
config_free(config_t *cfg)
{
    config_priv_t *p = (config_priv_t *)(void *)cfg;

    if (!cfg)
        return;
    free_fields(cfg, root_fields);
    for (int i = 0; i < SLOT_COUNT; i++)
        free(p->secret_file[i]);
    free(cfg->path);
    free(p);
}

/* $TDHOOK_CONFIG when set and not empty, else SYSCONFDIR/tdhook/tdhook.yaml;
 * borrowed, valid while the environment is unchanged. */
const char *
config_default_path(void)
{
    const char *env = getenv("TDHOOK_CONFIG");

    if (env && *env)
        return env;
    return SYSCONFDIR "/tdhook/tdhook.yaml";
}
