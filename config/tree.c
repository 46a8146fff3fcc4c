/* YAML to a tree of nodes: libyaml events become node_t, with lines kept
 * for the messages. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/config_private.h"
#include "core/util/xalloc.h"

const char *
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

void
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
int
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

const node_t *
map_get(const node_t *map, const char *key)
{
    node_t *const *k = map_find(map, key);

    return k ? k[1] : NULL;
}

const node_t *
map_get_key(const node_t *map, const char *key)
{
    node_t *const *k = map_find(map, key);

    return k ? k[0] : NULL;
}
