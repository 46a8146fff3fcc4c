/* Loads tdhook.yaml: libyaml events become a small tree of nodes, and a
 * table of every key of the schema is walked over that tree.  The table also
 * drives freeing and printing, so a key is added in one place only. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config/config.h"
#include "core/util/buf.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define CONFIG_FILE_MAX (1024 * 1024)
#define SECRET_FILE_MAX (64 * 1024)
#define STRING_MAX (1024 * 1024)   /* a string after ${VAR} expansion */
#define DEPTH_MAX 64
#define ERR_MAX 1024
#define MASK "********"

/* ---- the node tree ------------------------------------------------------ */

typedef enum { NODE_SCALAR, NODE_MAPPING, NODE_SEQUENCE } node_type_t;

typedef struct node {
    node_type_t type;
    unsigned line;
    char *str;            /* scalar text */
    int is_null;          /* a plain ~, null or empty scalar */
    struct node **kids;   /* mapping: key, value, key, value ... */
    size_t n;
    size_t alloc;
} node_t;

/* ---- the schema --------------------------------------------------------- */

typedef enum {
    F_SECTION,      /* a mapping of more fields */
    F_STR,
    F_SECRET,       /* also as name_file */
    F_LIST,         /* a sequence of strings */
    F_SECRET_LIST,  /* also as name_file, one secret a line */
    F_MAP,          /* a mapping of string -> string */
    F_BOOL,
    F_INT,
    F_SIZE,
    F_DURATION,
    F_ENUM,
    F_LOGLEVEL,
    F_FLAGS         /* a sequence of enum names, or'ed together */
} field_type_t;

#define FL_REQ 0x01u        /* required */
#define FL_REQ_GRAPH 0x02u  /* required when reservations.exchange is graph */
#define FL_REQ_EWS 0x04u    /* required when reservations.exchange is ews */
#define FL_HTTP 0x08u       /* must be an http:// or https:// URL */
#define FL_SMTP 0x10u       /* must be an smtp:// or smtps:// URL */
#define FL_STRIP 0x20u      /* trailing slashes are dropped */

/* Secrets that may come from a file; the path is kept for config_print. */
enum {
    SLOT_NONE, SLOT_TOKENS, SLOT_TOPDESK, SLOT_MAIL, SLOT_GRAPH, SLOT_EWS,
    SLOT_COUNT
};

typedef struct {
    const char *name;
    int value;
} enum_val_t;

typedef struct field field_t;
struct field {
    const char *name;
    field_type_t type;
    size_t off;             /* into config_t */
    unsigned flags;
    const field_t *sub;     /* F_SECTION */
    const enum_val_t *enums; /* F_ENUM, F_FLAGS */
    long min, max;          /* F_INT; F_SIZE and F_DURATION use min only */
    int slot;               /* F_SECRET, F_SECRET_LIST */
};

/* config_t lives at the start of this, so config_free() can find the rest. */
typedef struct {
    config_t cfg;
    char *secret_file[SLOT_COUNT];
} config_priv_t;

#define OFF(m) offsetof(config_t, m)
#define SECTION(n, t) { .name = n, .type = F_SECTION, .sub = t }
#define STR(n, m, fl) { .name = n, .type = F_STR, .off = OFF(m), .flags = fl }
#define SECRET(n, m, fl, s) \
    { .name = n, .type = F_SECRET, .off = OFF(m), .flags = fl, .slot = s }
#define LIST(n, m) { .name = n, .type = F_LIST, .off = OFF(m) }
#define INT(n, m, lo, hi) \
    { .name = n, .type = F_INT, .off = OFF(m), .min = lo, .max = hi }
#define DURATION(n, m, lo) \
    { .name = n, .type = F_DURATION, .off = OFF(m), .min = lo }
#define ENUM(n, m, e) { .name = n, .type = F_ENUM, .off = OFF(m), .enums = e }
#define BOOL(n, m) { .name = n, .type = F_BOOL, .off = OFF(m) }
#define END { .name = NULL }

static const enum_val_t log_levels[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
    {"error", LOG_ERROR}, {NULL, 0}};
static const enum_val_t log_formats[] = {
    {"text", LOG_TEXT}, {"json", LOG_JSON}, {NULL, 0}};
static const enum_val_t starttls_vals[] = {
    {"auto", STARTTLS_AUTO}, {"required", STARTTLS_REQUIRED},
    {"off", STARTTLS_OFF}, {NULL, 0}};
static const enum_val_t count_vals[] = {
    {"assets", CONFIG_COUNT_ASSETS}, {"bulk_items", CONFIG_COUNT_BULK_ITEMS},
    {NULL, 0}};
static const enum_val_t repeat_vals[] = {
    {"daily", REPEAT_DAILY}, {"only_new", REPEAT_ONLY_NEW}, {NULL, 0}};
static const enum_val_t exchange_vals[] = {
    {"graph", EXCHANGE_GRAPH}, {"ews", EXCHANGE_EWS}, {"none", EXCHANGE_NONE}, {NULL, 0}};
static const enum_val_t ews_auth_vals[] = {
    {"ntlm", EWS_AUTH_NTLM}, {"basic", EWS_AUTH_BASIC}, {NULL, 0}};

static const field_t log_fields[] = {
    { .name = "level", .type = F_LOGLEVEL, .off = OFF(log_level),
      .enums = log_levels },
    ENUM("format", log_format, log_formats),
    END};

static const field_t hooks_fields[] = {
    { .name = "tokens", .type = F_SECRET_LIST, .off = OFF(hook_tokens),
      .flags = FL_REQ, .slot = SLOT_TOKENS },
    { .name = "max_body", .type = F_SIZE, .off = OFF(max_body), .min = 1 },
    END};

static const field_t topdesk_fields[] = {
    STR("url", topdesk.url, FL_REQ | FL_HTTP | FL_STRIP),
    STR("username", topdesk.username, FL_REQ),
    SECRET("application_password", topdesk.application_password, FL_REQ,
           SLOT_TOPDESK),
    DURATION("timeout", topdesk.timeout_ms, 1),
    INT("max_parallel", topdesk.max_parallel, 1, 64),
    END};

static const field_t mail_fields[] = {
    STR("smtp_url", mail.smtp_url, FL_SMTP),
    ENUM("starttls", mail.starttls, starttls_vals),
    STR("from", mail.from, FL_REQ),
    STR("username", mail.username, 0),
    SECRET("password", mail.password, 0, SLOT_MAIL),
    END};

static const field_t stock_fields[] = {
    STR("minimum_field", stock_check.minimum_field, 0),
    { .name = "count", .type = F_FLAGS, .off = OFF(stock_check.count),
      .enums = count_vals },
    LIST("to", stock_check.to),
    ENUM("repeat", stock_check.repeat, repeat_vals),
    BOOL("always_mail", stock_check.always_mail),
    END};

static const field_t room_mapping_fields[] = {
    STR("topdesk_field", reservations.room_field, 0),
    { .name = "static", .type = F_MAP, .off = OFF(reservations.room_static) },
    END};

static const field_t notify_fields[] = {
    BOOL("requester", reservations.notify_requester),
    LIST("to", reservations.notify_to),
    END};

static const field_t reservations_fields[] = {
    ENUM("exchange", reservations.exchange, exchange_vals),
    SECTION("room_mapping", room_mapping_fields),
    STR("match_key", reservations.match_key, 0),
    STR("subject", reservations.subject, 0),
    STR("body", reservations.body, 0),
    INT("reconcile_days", reservations.reconcile_days, 1, 366),
    SECTION("notify", notify_fields),
    END};

static const field_t graph_fields[] = {
    STR("tenant", graph.tenant, FL_REQ_GRAPH),
    STR("client_id", graph.client_id, FL_REQ_GRAPH),
    SECRET("client_secret", graph.client_secret, FL_REQ_GRAPH, SLOT_GRAPH),
    STR("login_url", graph.login_url, FL_HTTP | FL_STRIP),
    STR("graph_url", graph.graph_url, FL_HTTP | FL_STRIP),
    END};

static const field_t ews_fields[] = {
    STR("url", ews.url, FL_REQ_EWS | FL_HTTP),
    STR("username", ews.username, FL_REQ_EWS),
    SECRET("password", ews.password, FL_REQ_EWS, SLOT_EWS),
    ENUM("auth", ews.auth, ews_auth_vals),
    END};

static const field_t queue_fields[] = {
    INT("max_jobs", queue.max_jobs, 1, 100000000),
    INT("max_attempts", queue.max_attempts, 1, 1000),
    DURATION("retry_base", queue.retry_base_ms, 1),
    DURATION("retry_max", queue.retry_max_ms, 1),
    INT("runners", queue.runners, 0, 16),
    DURATION("keep_done", queue.keep_done_ms, 0),
    END};

/* The order matters: reservations.exchange is known before graph and ews
 * are checked for required keys. */
static const field_t root_fields[] = {
    STR("state_dir", state_dir, 0),
    SECTION("log", log_fields),
    SECTION("hooks", hooks_fields),
    LIST("admin_mail", admin_mail),
    SECTION("topdesk", topdesk_fields),
    SECTION("mail", mail_fields),
    SECTION("stock_check", stock_fields),
    SECTION("reservations", reservations_fields),
    SECTION("graph", graph_fields),
    SECTION("ews", ews_fields),
    SECTION("queue", queue_fields),
    END};

#define FIELD(cfg, f, T) ((T *)(void *)((char *)(cfg) + (f)->off))

/* ---- errors ------------------------------------------------------------- */

typedef struct {
    const char *name;      /* the file, for messages */
    char *err;             /* the first error, allocated */
    config_priv_t *p;
} ctx_t;

/* Records the first error as "NAME:LINE: KEY: message" (KEY may be NULL).
 * Control characters are replaced so a message is always one line. */
static void ctx_fail(ctx_t *c, unsigned line, const char *key,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
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

static const char *
node_kind(const node_t *n)
{
    switch (n->type) {
    case NODE_MAPPING:
        return "a mapping";
    case NODE_SEQUENCE:
        return "a list";
    default:
        return "a string";
    }
}

/* ---- building the tree -------------------------------------------------- */

static node_t *
node_new(node_type_t type, unsigned line)
{
    node_t *n = xcalloc(1, sizeof *n);

    n->type = type;
    n->line = line;
    return n;
}

static void
node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static void
node_add(node_t *parent, node_t *kid)
{
    if (parent->n == parent->alloc) {
        parent->alloc = parent->alloc ? parent->alloc * 2 : 8;
        parent->kids = xrealloc(parent->kids,
                                parent->alloc * sizeof *parent->kids);
    }
    parent->kids[parent->n++] = kid;
}

static int
scalar_is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Parses the YAML text into *root (NULL for an empty stream).  Returns 0,
 * or -1 with the error in c. */
static int
tree_parse(ctx_t *c, const char *data, size_t len, node_t **root)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    node_t *stack[DEPTH_MAX];
    size_t depth = 0;
    node_t *top = NULL;
    int docs = 0, done = 0, rc = -1;

    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        ctx_fail(c, 0, NULL, "cannot initialise the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done) {
        node_t *n = NULL;
        const yaml_char_t *anchor = NULL;
        unsigned line;

        if (!yaml_parser_parse(&parser, &ev)) {
            ctx_fail(c, (unsigned)parser.problem_mark.line + 1, NULL,
                     "YAML syntax error: %s%s%s",
                     parser.problem ? parser.problem : "unknown problem",
                     parser.context ? " " : "",
                     parser.context ? parser.context : "");
            goto out;
        }
        line = (unsigned)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                ctx_fail(c, line, NULL, "only one YAML document is allowed");
            break;
        case YAML_ALIAS_EVENT:
            ctx_fail(c, line, NULL, "YAML aliases are not allowed");
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            n = node_new(NODE_SCALAR, line);
            n->str = xstrndup((const char *)ev.data.scalar.value,
                              ev.data.scalar.length);
            n->is_null = scalar_is_null(&ev);
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = ev.data.mapping_start.anchor;
            n = node_new(NODE_MAPPING, line);
            break;
        case YAML_SEQUENCE_START_EVENT:
            anchor = ev.data.sequence_start.anchor;
            n = node_new(NODE_SEQUENCE, line);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        if (n) {
            /* Attach first, so the tree owns the node from here on. */
            node_t *parent = depth ? stack[depth - 1] : NULL;

            if (!parent && top) {
                node_free(n);
                n = NULL;
                ctx_fail(c, line, NULL, "only one YAML document is allowed");
            } else if (!parent) {
                top = n;
            } else if (parent->type == NODE_MAPPING && parent->n % 2 == 0 &&
                       n->type != NODE_SCALAR) {
                node_free(n);
                n = NULL;
                ctx_fail(c, line, NULL, "a key must be a plain string");
            } else {
                node_add(parent, n);
            }
            if (anchor)
                ctx_fail(c, line, NULL, "YAML anchors are not allowed");
            if (n && n->type == NODE_SCALAR &&
                strlen(n->str) != ev.data.scalar.length)
                ctx_fail(c, line, NULL, "a string contains a NUL character");
            if (n && n->type != NODE_SCALAR && !c->err) {
                if (depth == DEPTH_MAX)
                    ctx_fail(c, line, NULL, "nested too deeply");
                else
                    stack[depth++] = n;
            }
        }
        yaml_event_delete(&ev);
        if (c->err)
            goto out;
    }
    *root = top;
    top = NULL;
    rc = 0;
out:
    node_free(top);
    yaml_parser_delete(&parser);
    return rc;
}

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
static char *
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

static const enum_val_t *
enum_find(const enum_val_t *e, const char *s)
{
    for (; e->name; e++)
        if (strcmp(e->name, s) == 0)
            return e;
    return NULL;
}

static const char *
enum_name(const enum_val_t *e, int v)
{
    for (; e->name; e++)
        if (e->value == v)
            return e->name;
    return "?";
}

static char *
enum_names(const enum_val_t *e)
{
    buf_t b;

    buf_init(&b, ERR_MAX);
    for (const enum_val_t *p = e; p->name; p++)
        buf_printf(&b, "%s%s", p == e ? "" : ", ", p->name);
    return buf_steal(&b);
}

static int
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

static int
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

/* ---- secrets from files ------------------------------------------------- */

/* Clears memory that held a secret; volatile, so it is not optimised away
 * before the free(). */
static void
wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

/* Reads the open file fd, which holds secrets (st is its fstat()): warns
 * when group or others may read path, then reads to the end but at most
 * max + 1 bytes, so that the caller can tell a file over max.  0 with *data
 * (allocated, NUL-terminated; wipe() *len bytes before free()) and *len;
 * -1 with errno set on a read error. */
static int
read_private(int fd, const struct stat *st, const char *path, const char *what, size_t max,
             char **data, size_t *len)
{
    char *d = xmalloc(max + 2);
    size_t n = 0;
    int err;

    if (st->st_mode & 044)
        log_warn("%s is readable by others; chmod 600 it, it holds %s", path, what);
    for (;;) {
        ssize_t r = read(fd, d + n, max + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = errno;
            wipe(d, n);
            free(d);
            errno = err;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            break;
    }
    d[n] = '\0';
    *data = d;
    *len = n;
    return 0;
}

/* Reads a small regular file (a secret) into an allocated, NUL-terminated
 * string.  Non-blocking open, so a FIFO or device cannot hang the load. */
static char *
read_secret_file(ctx_t *c, const char *path, unsigned line, const char *key)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        ctx_fail(c, line, key, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        ctx_fail(c, line, key, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ctx_fail(c, line, key, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > SECRET_FILE_MAX) {
        ctx_fail(c, line, key, "%s is larger than 64 KiB", path);
        goto out;
    }
    if (read_private(fd, &st, path, "a secret", SECRET_FILE_MAX, &data, &len) != 0) {
        ctx_fail(c, line, key, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (len > SECRET_FILE_MAX) {
        ctx_fail(c, line, key, "%s is larger than 64 KiB", path);
        goto fail;
    }
    if (strlen(data) != len) {
        ctx_fail(c, line, key, "%s contains a NUL byte", path);
        goto fail;
    }
    goto out;
fail:
    wipe(data, len);
    free(data);
    data = NULL;
out:
    close(fd);
    return data;
}

/* ---- the walk ----------------------------------------------------------- */

static char *
path_join(const char *prefix, const char *name)
{
    return prefix ? xasprintf("%s.%s", prefix, name) : xstrdup(name);
}

/* The slot of key's key node in map->kids (its value follows), or NULL when
 * map is NULL or has no such key. */
static node_t *const *
map_find(const node_t *map, const char *key)
{
    if (!map)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (strcmp(map->kids[i]->str, key) == 0)
            return &map->kids[i];
    return NULL;
}

static const node_t *
map_get(const node_t *map, const char *key)
{
    node_t *const *k = map_find(map, key);

    return k ? k[1] : NULL;
}

static const node_t *
map_get_key(const node_t *map, const char *key)
{
    node_t *const *k = map_find(map, key);

    return k ? k[0] : NULL;
}

static int
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

static void
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
    return 0;
}

static int
has_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0 &&
           s[strlen(prefix)] != '\0';
}

/* The string checks of F_STR: URL schemes and trailing slashes. */
static void
check_string(ctx_t *c, const field_t *f, char *s, unsigned line, const char *key)
{
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
static char *
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
static void
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
set_secret(ctx_t *c, const field_t *f, const node_t *v, const node_t *vf,
           const char *key)
{
    char *val = NULL, *path = NULL;
    unsigned line;

    if (vf) {
        line = vf->line;
        path = scalar_value(c, vf, key, "a file name");
        if (!path)
            return;
        if (!*path) {
            ctx_fail(c, line, key, "the file name is empty");
            goto out;
        }
        val = read_secret_file(c, path, line, key);
        if (!val)
            goto out;
        /* One trailing newline, LF or CRLF, is not part of the secret. */
        size_t len = strlen(val);
        if (len > 0 && val[len - 1] == '\n') {
            val[--len] = '\0';
            if (len > 0 && val[len - 1] == '\r')
                val[--len] = '\0';
        }
    } else {
        line = v->line;
        val = scalar_value(c, v, key, "a string");
        if (!val)
            goto out;
    }
    if (!*val) {
        ctx_fail(c, line, key, "the secret is empty");
        goto out;
    }
    char **dst = FIELD(&c->p->cfg, f, char *);
    secret_free(*dst);
    *dst = val;
    val = NULL;
    free(c->p->secret_file[f->slot]);
    c->p->secret_file[f->slot] = path;
    path = NULL;
out:
    secret_free(val);
    free(path);
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
    }
    list_clear(dst, secret);
    *dst = l;
    l.v = NULL;
    l.n = 0;
out:
    list_clear(&l, secret);
}

static void
set_secret_list_file(ctx_t *c, const field_t *f, const node_t *vf,
                     const char *key)
{
    config_list_t *dst = FIELD(&c->p->cfg, f, config_list_t);
    config_list_t l = {NULL, 0};
    char *path, *data;

    path = scalar_value(c, vf, key, "a file name");
    if (!path)
        return;
    if (!*path) {
        ctx_fail(c, vf->line, key, "the file name is empty");
        free(path);
        return;
    }
    data = read_secret_file(c, path, vf->line, key);
    if (!data) {
        free(path);
        return;
    }
    size_t len = strlen(data);
    split_tokens(data, &l);
    wipe(data, len);
    free(data);
    list_clear(dst, 1);
    *dst = l;
    free(c->p->secret_file[f->slot]);
    c->p->secret_file[f->slot] = path;
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

static void
config_defaults(config_t *cfg)
{
    cfg->state_dir = xstrdup("/var/lib/tdhook");
    cfg->log_level = LOG_INFO;
    cfg->log_format = LOG_TEXT;
    cfg->max_body = 1024 * 1024;
    cfg->topdesk.timeout_ms = 30 * 1000L;
    cfg->topdesk.max_parallel = 4;
    cfg->mail.smtp_url = xstrdup("smtp://127.0.0.1:25");
    cfg->mail.starttls = STARTTLS_AUTO;
    cfg->stock_check.minimum_field = xstrdup("Minimale voorraad");
    cfg->stock_check.count = CONFIG_COUNT_ASSETS | CONFIG_COUNT_BULK_ITEMS;
    cfg->stock_check.repeat = REPEAT_DAILY;
    cfg->stock_check.always_mail = 0;
    cfg->reservations.exchange = EXCHANGE_GRAPH;
    cfg->reservations.room_field = xstrdup("optionalFields1.text1");
    cfg->reservations.match_key = xstrdup("externalLink");
    cfg->reservations.subject = xstrdup("{description} ({number})");
    cfg->reservations.body =
        xstrdup("Booked in TOPdesk by {requester} for {persons} persons.");
    cfg->reservations.reconcile_days = 14;
    cfg->reservations.notify_requester = 1;
    cfg->graph.login_url = xstrdup("https://login.microsoftonline.com");
    cfg->graph.graph_url = xstrdup("https://graph.microsoft.com/v1.0");
    cfg->ews.auth = EWS_AUTH_NTLM;
    cfg->queue.max_jobs = 10000;
    cfg->queue.max_attempts = 12;
    cfg->queue.retry_base_ms = 10 * 1000L;
    cfg->queue.retry_max_ms = 3600 * 1000L;
    cfg->queue.runners = 2;
    cfg->queue.keep_done_ms = 7 * 86400 * 1000L;
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
    config_defaults(&c.p->cfg);
    walk_section(&c, root_fields, root && root->type == NODE_MAPPING ? root : NULL,
                 line, NULL);
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
        case F_LOGLEVEL:
            fprintf(fp, " %s", enum_name(f->enums, *FIELD(cfg, f, const int)));
            break;
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
