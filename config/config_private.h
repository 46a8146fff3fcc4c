/* What the files of config/ share and nobody else sees: the node tree
 * libyaml's events become, the schema's types, the walk's context, and the
 * helpers one file lends another.  The public interface is config/config.h.
 *
 *   config.c   loading: the walk of the schema over the tree, freeing
 *   tree.c     YAML to a tree of nodes (libyaml events)
 *   keys.c     the schema: every key, its type, limits and default, in one row
 *   values.c   value parsers: booleans, integers, sizes, durations, enums, ${VAR}
 *   secrets.c  secrets and the files they may come from
 *   print.c    check-config's printing, secrets masked */
#ifndef TDHOOK_CONFIG_PRIVATE_H
#define TDHOOK_CONFIG_PRIVATE_H

#include <stddef.h>
#include <sys/stat.h>

#include "config/config.h"

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
#define FL_TZ 0x40u         /* an IANA time zone name the system knows */
#define FL_ADDRESS 0x80u    /* F_LIST: each item a mail address */
#define FL_MAILBOX 0x100u   /* a mail address, maybe with a name: Name <addr> */
#define FL_REQ_BOTH 0x200u  /* required when reservations.direction is both */
#define FL_REQ_NOTIFY 0x400u /* required with direction both and outlook.notifications */

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
    const char *dflt;       /* the default as it would be written in the file;
                             * F_FLAGS: names with ", " between; NULL: none */
};

/* config_t lives at the start of this, so config_free() can find the rest. */
typedef struct {
    config_t cfg;
    char *secret_file[SLOT_COUNT];
} config_priv_t;

#define OFF(m) offsetof(config_t, m)
/* Rows of the schema; d is the key's default, as written in the file
 * (NULL: none, the value is empty or 0 unless the file sets it). */
#define SECTION(n, t) { .name = n, .type = F_SECTION, .sub = t }
#define STR(n, m, fl, d) { .name = n, .type = F_STR, .off = OFF(m), .flags = fl, .dflt = d }
#define SECRET(n, m, fl, s) \
    { .name = n, .type = F_SECRET, .off = OFF(m), .flags = fl, .slot = s }
#define SECRET_LIST(n, m, fl, s) \
    { .name = n, .type = F_SECRET_LIST, .off = OFF(m), .flags = fl, .slot = s }
#define LIST(n, m) { .name = n, .type = F_LIST, .off = OFF(m) }
#define ADDRESSES(n, m) { .name = n, .type = F_LIST, .off = OFF(m), .flags = FL_ADDRESS }
#define MAP(n, m) { .name = n, .type = F_MAP, .off = OFF(m) }
#define INT(n, m, lo, hi, d) \
    { .name = n, .type = F_INT, .off = OFF(m), .min = lo, .max = hi, .dflt = d }
#define SIZE(n, m, lo, d) { .name = n, .type = F_SIZE, .off = OFF(m), .min = lo, .dflt = d }
#define DURATION(n, m, lo, d) \
    { .name = n, .type = F_DURATION, .off = OFF(m), .min = lo, .dflt = d }
#define ENUM(n, m, e, d) { .name = n, .type = F_ENUM, .off = OFF(m), .enums = e, .dflt = d }
#define LOGLEVEL(n, m, e, d) \
    { .name = n, .type = F_LOGLEVEL, .off = OFF(m), .enums = e, .dflt = d }
#define FLAGS(n, m, e, d) { .name = n, .type = F_FLAGS, .off = OFF(m), .enums = e, .dflt = d }
#define BOOL(n, m, d) { .name = n, .type = F_BOOL, .off = OFF(m), .dflt = d }
#define END { .name = NULL }

#define FIELD(cfg, f, T) ((T *)(void *)((char *)(cfg) + (f)->off))

/* The schema's root: every section and key (keys.c). */
extern const field_t root_fields[];

/* The walk of one load: the first error, and the config being filled. */
typedef struct {
    const char *name;      /* the file, for messages */
    char *err;             /* the first error, allocated */
    config_priv_t *p;
} ctx_t;

/* config.c */
void ctx_fail(ctx_t *c, unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int has_secret_file(const field_t *f);
void list_clear(config_list_t *l, int secret);
char *scalar_value(ctx_t *c, const node_t *v, const char *key, const char *want);
void split_tokens(char *data, config_list_t *out);

/* tree.c */
const node_t *map_get(const node_t *map, const char *key);
const node_t *map_get_key(const node_t *map, const char *key);
void node_free(node_t *n);
const char *node_kind(const node_t *n);
int tree_parse(ctx_t *c, const char *data, size_t len, node_t **root);

/* keys.c */

/* values.c */
const enum_val_t *enum_find(const enum_val_t *e, const char *s);
const char *enum_name(const enum_val_t *e, int v);
char *enum_names(const enum_val_t *e);
char *expand_env(ctx_t *c, const char *s, unsigned line, const char *key);
int parse_bool(const char *s, int *out);
int parse_long(const char *s, long *out);

/* secrets.c */
int read_private(int fd, const struct stat *st, const char *path, const char *what, size_t max,
                 char **data, size_t *len);
void set_secret(ctx_t *c, const field_t *f, const node_t *v, const node_t *vf, const char *key);
void set_secret_list_file(ctx_t *c, const field_t *f, const node_t *vf, const char *key);
void wipe(void *p, size_t n);

#endif
