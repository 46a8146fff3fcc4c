/* EWS requests and answers with libxml2; see core/clients/ews_xml.h.  The element
 * order of every request follows types.xsd and messages.xsd of Exchange
 * 2013 SP1 (tests/unit/test_ews.c validates them against those files). */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "core/clients/ews_xml.h"
#include "core/util/xalloc.h"

#define EWS_TEXT_MAX 300   /* bytes of a server message kept */

/* --- text ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p that XML 1.0 allows, or 0. */
static size_t
ews_utf8_len(const unsigned char *p)
{
    unsigned c = p[0], cp;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
        return 0;
    return n;
}

/* s as text XML 1.0 can carry; keep_breaks: tab, CR and LF stay (bodies),
 * else they become one space; at most max bytes; allocated. */
static char *
ews_text(const char *s, size_t max, int keep_breaks)
{
    size_t len = s ? strlen(s) : 0, o = 0;
    char *r = xmalloc((len < max ? len : max) + 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    while (*p) {
        size_t n = ews_utf8_len(p);

        if (n == 0) {
            if (o + 1 > max)
                break;
            r[o++] = '?';
            p++;
            continue;
        }
        if (n == 1 && (*p < 0x20 || *p == 0x7f)) {
            if (*p == '\t' || *p == '\n' || *p == '\r') {
                if (keep_breaks) {
                    if (o + 1 > max)
                        break;
                    r[o++] = (char)*p;
                } else if (o && r[o - 1] != ' ') {
                    if (o + 1 > max)
                        break;
                    r[o++] = ' ';
                }
            }
            p++;
            continue;
        }
        if (o + n > max)
            break;
        memcpy(r + o, p, n);
        o += n;
        p += n;
    }
    r[o] = '\0';
    return r;
}

char *
ews_clean(const char *s, size_t max)
{
    return ews_text(s, max, 0);
}

/* --- building ------------------------------------------------------------ */

static xmlNodePtr
ews_check_node(xmlNodePtr n)
{
    if (!n)
        xalloc_die("libxml2 allocation");
    return n;
}

/* A child element with escaped text (NULL text: empty element). */
xmlNodePtr
ews_add(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    return ews_check_node(xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text));
}

/* A child element with text from outside, made XML-safe first. */
xmlNodePtr
ews_add_text(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text, int body)
{
    char *safe = ews_text(text, body ? 1024 * 1024 : 64 * 1024, body);
    xmlNodePtr n = ews_add(parent, ns, name, safe);

    free(safe);
    return n;
}

void
ews_prop(xmlNodePtr node, const char *name, const char *value)
{
    char *safe = ews_text(value, 64 * 1024, 0);

    if (!xmlNewProp(node, BAD_CAST name, BAD_CAST safe))
        xalloc_die("xmlNewProp");
    free(safe);
}

/* The request's envelope; *body is soap:Body, *t and *m the namespaces. */
xmlDocPtr
ews_envelope(const char *mailbox, xmlNodePtr *body, xmlNsPtr *t, xmlNsPtr *m)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr env, hdr, imp, sid;
    xmlNsPtr soap;

    if (!doc)
        xalloc_die("xmlNewDoc");
    env = ews_check_node(xmlNewNode(NULL, BAD_CAST "Envelope"));
    xmlDocSetRootElement(doc, env);
    soap = xmlNewNs(env, BAD_CAST EWS_NS_SOAP, BAD_CAST "soap");
    *t = xmlNewNs(env, BAD_CAST EWS_NS_TYPES, BAD_CAST "t");
    *m = xmlNewNs(env, BAD_CAST EWS_NS_MESSAGES, BAD_CAST "m");
    if (!soap || !*t || !*m)
        xalloc_die("xmlNewNs");
    xmlSetNs(env, soap);
    hdr = ews_add(env, soap, "Header", NULL);
    ews_prop(ews_add(hdr, *t, "RequestServerVersion", NULL), "Version", EWS_SERVER_VERSION);
    imp = ews_add(hdr, *t, "ExchangeImpersonation", NULL);
    sid = ews_add(imp, *t, "ConnectingSID", NULL);
    ews_add_text(sid, *t, "SmtpAddress", mailbox, 0);
    *body = ews_add(env, soap, "Body", NULL);
    return doc;
}

/* t:ExtendedFieldURI of the TopdeskReservationId property. */
void
ews_add_property_uri(xmlNodePtr parent, xmlNsPtr t)
{
    xmlNodePtr u = ews_add(parent, t, "ExtendedFieldURI", NULL);

    ews_prop(u, "DistinguishedPropertySetId", "PublicStrings");
    ews_prop(u, "PropertyName", EXCHANGE_PROPERTY_NAME);
    ews_prop(u, "PropertyType", "String");
}

void
ews_add_field(xmlNodePtr parent, xmlNsPtr t, const char *uri)
{
    ews_prop(ews_add(parent, t, "FieldURI", NULL), "FieldURI", uri);
}

/* "2025-03-10T09:00:00Z" into buf (32 bytes). */
void
ews_time(time_t when, char *buf, size_t size)
{
    size_t len;

    exchange_format_time(when, buf, size - 1);
    len = strlen(buf);
    buf[len] = 'Z';
    buf[len + 1] = '\0';
}

static void
ews_add_time(xmlNodePtr parent, xmlNsPtr t, const char *name, time_t when)
{
    char buf[32];

    ews_time(when, buf, sizeof buf);
    ews_add(parent, t, name, buf);
}

void
ews_add_calendar_folder(xmlNodePtr parent, xmlNsPtr t)
{
    ews_prop(ews_add(parent, t, "DistinguishedFolderId", NULL), "Id", "calendar");
}

/* m:ItemShape: IdOnly plus what tdhook reads (with_body: GetItem). */
static void
ews_add_item_shape(xmlNodePtr op, xmlNsPtr t, xmlNsPtr m, int with_body)
{
    xmlNodePtr shape = ews_add(op, m, "ItemShape", NULL), props;

    ews_add(shape, t, "BaseShape", "IdOnly");
    if (with_body)
        ews_add(shape, t, "BodyType", "Text");
    props = ews_add(shape, t, "AdditionalProperties", NULL);
    ews_add_field(props, t, "item:Subject");
    if (with_body) {
        ews_add_field(props, t, "item:Body");
        ews_add_field(props, t, "item:ParentFolderId");
    }
    ews_add_field(props, t, "calendar:Start");
    ews_add_field(props, t, "calendar:End");
    ews_add_field(props, t, "calendar:IsCancelled");
    ews_add_property_uri(props, t);
}

static void
ews_add_body(xmlNodePtr parent, xmlNsPtr t, const char *text)
{
    xmlNodePtr body = ews_add_text(parent, t, "Body", text ? text : "", 1);

    ews_prop(body, "BodyType", "Text");
}

xmlDocPtr
ews_build_create(const char *mailbox, const exchange_booking_t *b)
{
    xmlNodePtr body, op, folder, items, item, ext;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);

    op = ews_add(body, m, "CreateItem", NULL);
    ews_prop(op, "SendMeetingInvitations", "SendToNone");
    folder = ews_add(op, m, "SavedItemFolderId", NULL);
    ews_add_calendar_folder(folder, t);
    items = ews_add(op, m, "Items", NULL);
    item = ews_add(items, t, "CalendarItem", NULL);
    /* ItemType's part first (Subject, Body, ExtendedProperty), then
     * CalendarItemType's (Start, End, LegacyFreeBusyStatus, Location) */
    ews_add_text(item, t, "Subject", b->subject, 0);
    ews_add_body(item, t, b->body);
    ext = ews_add(item, t, "ExtendedProperty", NULL);
    ews_add_property_uri(ext, t);
    ews_add_text(ext, t, "Value", b->reservation_id, 0);
    ews_add_time(item, t, "Start", b->start);
    ews_add_time(item, t, "End", b->end);
    ews_add(item, t, "LegacyFreeBusyStatus", "Busy");
    ews_add_text(item, t, "Location", b->room_name ? b->room_name : mailbox, 0);
    return doc;
}

xmlDocPtr
ews_build_find(const char *mailbox, const char *reservation_id)
{
    xmlNodePtr body, op, view, restr, eq, cst;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);
    char max[16];

    op = ews_add(body, m, "FindItem", NULL);
    ews_prop(op, "Traversal", "Shallow");
    ews_add_item_shape(op, t, m, 0);
    view = ews_add(op, m, "IndexedPageItemView", NULL);
    snprintf(max, sizeof max, "%d", EWS_FIND_MAX);
    ews_prop(view, "MaxEntriesReturned", max);
    ews_prop(view, "Offset", "0");
    ews_prop(view, "BasePoint", "Beginning");
    restr = ews_add(op, m, "Restriction", NULL);
    eq = ews_add(restr, t, "IsEqualTo", NULL);
    ews_add_property_uri(eq, t);
    cst = ews_add(ews_add(eq, t, "FieldURIOrConstant", NULL), t, "Constant", NULL);
    ews_prop(cst, "Value", reservation_id ? reservation_id : "");
    ews_add_calendar_folder(ews_add(op, m, "ParentFolderIds", NULL), t);
    return doc;
}

xmlDocPtr
ews_build_view(const char *mailbox, time_t start, time_t end)
{
    xmlNodePtr body, op, view;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);
    char sbuf[32], ebuf[32], max[16];

    op = ews_add(body, m, "FindItem", NULL);
    ews_prop(op, "Traversal", "Shallow");
    ews_add_item_shape(op, t, m, 0);
    /* a CalendarView takes no Restriction and cannot page by offset */
    view = ews_add(op, m, "CalendarView", NULL);
    snprintf(max, sizeof max, "%d", EWS_VIEW_MAX);
    ews_time(start, sbuf, sizeof sbuf);
    ews_time(end, ebuf, sizeof ebuf);
    ews_prop(view, "MaxEntriesReturned", max);
    ews_prop(view, "StartDate", sbuf);
    ews_prop(view, "EndDate", ebuf);
    ews_add_calendar_folder(ews_add(op, m, "ParentFolderIds", NULL), t);
    return doc;
}

xmlDocPtr
ews_build_get(const char *mailbox, const char *id)
{
    xmlNodePtr body, op, ids;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);

    op = ews_add(body, m, "GetItem", NULL);
    ews_add_item_shape(op, t, m, 1);
    ids = ews_add(op, m, "ItemIds", NULL);
    ews_prop(ews_add(ids, t, "ItemId", NULL), "Id", id ? id : "");
    return doc;
}

xmlDocPtr
ews_build_get_folder(const char *mailbox, const char *distinguished)
{
    xmlNodePtr body, op, shape, ids;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);

    op = ews_add(body, m, "GetFolder", NULL);
    shape = ews_add(op, m, "FolderShape", NULL);
    ews_add(shape, t, "BaseShape", "IdOnly");
    ids = ews_add(op, m, "FolderIds", NULL);
    ews_prop(ews_add(ids, t, "DistinguishedFolderId", NULL), "Id", distinguished);
    return doc;
}

/* One t:SetItemField of uri whose t:CalendarItem the caller fills. */
static xmlNodePtr
ews_add_set_field(xmlNodePtr updates, xmlNsPtr t, const char *uri)
{
    xmlNodePtr set = ews_add(updates, t, "SetItemField", NULL);

    ews_add_field(set, t, uri);
    return ews_add(set, t, "CalendarItem", NULL);
}

xmlDocPtr
ews_update_envelope(const char *mailbox, const char *id, const char *change_key,
                    const char *resolution, xmlNodePtr *updates, xmlNsPtr *t)
{
    xmlNodePtr body, op, change, item_id;
    xmlNsPtr m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, t, &m);

    op = ews_add(body, m, "UpdateItem", NULL);
    ews_prop(op, "MessageDisposition", "SaveOnly");
    ews_prop(op, "ConflictResolution", resolution);
    ews_prop(op, "SendMeetingInvitationsOrCancellations", "SendToNone");
    change = ews_add(ews_add(op, m, "ItemChanges", NULL), *t, "ItemChange", NULL);
    item_id = ews_add(change, *t, "ItemId", NULL);
    ews_prop(item_id, "Id", id ? id : "");
    if (change_key && *change_key)
        ews_prop(item_id, "ChangeKey", change_key);
    *updates = ews_add(change, *t, "Updates", NULL);
    return doc;
}

xmlDocPtr
ews_build_update(const char *mailbox, const char *id, const char *change_key,
                 const exchange_booking_t *b)
{
    xmlNodePtr updates;
    xmlNsPtr t;
    xmlDocPtr doc = ews_update_envelope(mailbox, id, change_key, "AutoResolve", &updates, &t);

    ews_add_text(ews_add_set_field(updates, t, "item:Subject"), t, "Subject", b->subject, 0);
    ews_add_body(ews_add_set_field(updates, t, "item:Body"), t, b->body);
    ews_add_time(ews_add_set_field(updates, t, "calendar:Start"), t, "Start", b->start);
    ews_add_time(ews_add_set_field(updates, t, "calendar:End"), t, "End", b->end);
    return doc;
}

xmlDocPtr
ews_build_delete(const char *mailbox, const char *id)
{
    xmlNodePtr body, op, ids;
    xmlNsPtr t, m;
    xmlDocPtr doc = ews_envelope(mailbox, &body, &t, &m);

    op = ews_add(body, m, "DeleteItem", NULL);
    ews_prop(op, "DeleteType", "MoveToDeletedItems");
    ews_prop(op, "SendMeetingCancellations", "SendToNone");
    ids = ews_add(op, m, "ItemIds", NULL);
    /* no ChangeKey: a delete must not fail because the item was touched */
    ews_prop(ews_add(ids, t, "ItemId", NULL), "Id", id ? id : "");
    return doc;
}

char *
ews_serialize(xmlDocPtr doc, size_t *len)
{
    xmlChar *mem = NULL;
    int n = 0;
    char *s;

    xmlDocDumpMemoryEnc(doc, &mem, &n, "UTF-8");
    if (!mem || n < 0)
        xalloc_die("xmlDocDumpMemoryEnc");
    s = xmalloc((size_t)n + 1);
    memcpy(s, mem, (size_t)n);
    s[n] = '\0';
    xmlFree(mem);
    *len = (size_t)n;
    return s;
}

/* --- reading ------------------------------------------------------------- */

int
ews_is(xmlNodePtr n, const char *ns, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, ns) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

/* The first element child named name in ns (ns NULL: any or none). */
xmlNodePtr
ews_child(xmlNodePtr parent, const char *ns, const char *name)
{
    if (!parent)
        return NULL;
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (ns ? ews_is(c, ns, name) : strcmp((const char *)c->name, name) == 0)
            return c;
    }
    return NULL;
}

xmlNodePtr
ews_first_element(xmlNodePtr parent)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

/* The text of n; allocated, NULL when n is NULL. */
char *
ews_content(xmlNodePtr n)
{
    xmlChar *c;
    char *s;

    if (!n)
        return NULL;
    c = xmlNodeGetContent(n);
    s = xstrdup(c ? (const char *)c : "");
    xmlFree(c);
    return s;
}

/* The attribute name of n; allocated, NULL when absent. */
char *
ews_attr(xmlNodePtr n, const char *name)
{
    xmlChar *v;
    char *s;

    if (!n)
        return NULL;
    v = xmlGetProp(n, BAD_CAST name);
    if (!v)
        return NULL;
    s = xstrdup((const char *)v);
    xmlFree(v);
    return s;
}

/* BackOffMilliseconds in any t:MessageXml below n; -1 when absent. */
static long
ews_backoff(xmlNodePtr n)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
        long v;

        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "Value") == 0) {
            char *name = ews_attr(c, "Name"), *text, *end;

            if (name && strcmp(name, "BackOffMilliseconds") == 0 && (text = ews_content(c))) {
                errno = 0;
                v = strtol(text, &end, 10);
                if (!errno && end != text && *end == '\0' && v >= 0) {
                    free(text);
                    free(name);
                    return v > 86400000L ? 86400000L : v;
                }
                free(text);
            }
            free(name);
            continue;
        }
        if ((v = ews_backoff(c)) >= 0)
            return v;
    }
    return -1;
}

/* code (without a "prefix:") into r->code, cleaned. */
static void
ews_set_code(ews_reply_t *r, const char *code)
{
    const char *colon = strrchr(code, ':');
    char *clean = ews_clean(colon ? colon + 1 : code, sizeof r->code - 1);

    snprintf(r->code, sizeof r->code, "%s", clean);
    free(clean);
}

static void
ews_set_text(ews_reply_t *r, xmlNodePtr n)
{
    char *raw = ews_content(n);

    if (raw && *raw)
        r->text = ews_clean(raw, EWS_TEXT_MAX);
    free(raw);
}

int
ews_reply_parse(const char *data, size_t len, const char *op, ews_reply_t *r)
{
    xmlNodePtr env, body, first, msgs;
    char name[64];

    memset(r, 0, sizeof *r);
    r->backoff_ms = -1;
    if (!data || !len || len > (size_t)1 << 30)
        return -1;
    r->doc = xmlReadMemory(data, (int)len, "ews.xml", NULL,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!r->doc)
        return -1;
    if (r->doc->intSubset || r->doc->extSubset)
        goto bad;  /* EWS never sends a DTD: refuse entities altogether */
    env = xmlDocGetRootElement(r->doc);
    if (!ews_is(env, EWS_NS_SOAP, "Envelope") || !(body = ews_child(env, EWS_NS_SOAP, "Body")))
        goto bad;
    first = ews_first_element(body);
    if (ews_is(first, EWS_NS_SOAP, "Fault")) {
        xmlNodePtr detail = ews_child(first, NULL, "detail"), rc;
        char *code;

        r->fault = r->error = 1;
        rc = detail ? ews_child(detail, EWS_NS_ERRORS, "ResponseCode") : NULL;
        code = ews_content(rc ? rc : ews_child(first, NULL, "faultcode"));
        ews_set_code(r, code ? code : "");
        free(code);
        ews_set_text(r, ews_child(first, NULL, "faultstring"));
        r->backoff_ms = ews_backoff(detail);
        return 0;
    }
    snprintf(name, sizeof name, "%sResponse", op);
    if (!ews_is(first, EWS_NS_MESSAGES, name) ||
        !(msgs = ews_child(first, EWS_NS_MESSAGES, "ResponseMessages")) ||
        !(r->message = ews_first_element(msgs)))
        goto bad;
    {
        char *cls = ews_attr(r->message, "ResponseClass");
        char *code = ews_content(ews_child(r->message, EWS_NS_MESSAGES, "ResponseCode"));

        r->error = !cls || strcmp(cls, "Error") == 0;
        ews_set_code(r, code ? code : (r->error ? "" : "NoError"));
        free(cls);
        free(code);
    }
    ews_set_text(r, ews_child(r->message, EWS_NS_MESSAGES, "MessageText"));
    r->backoff_ms = ews_backoff(ews_child(r->message, EWS_NS_MESSAGES, "MessageXml"));
    return 0;
bad:
    ews_reply_free(r);
    return -1;
}

void
ews_reply_free(ews_reply_t *r)
{
    if (r->doc)
        xmlFreeDoc(r->doc);
    free(r->text);
    memset(r, 0, sizeof *r);
    r->backoff_ms = -1;
}

/* The t:Items (or m:Items) holding the reply's items, or NULL. */
static xmlNodePtr
ews_items(const ews_reply_t *r, int *complete)
{
    xmlNodePtr root;

    if (complete)
        *complete = 1;
    if (!r->message || r->error)
        return NULL;
    if ((root = ews_child(r->message, EWS_NS_MESSAGES, "RootFolder"))) {
        char *last = ews_attr(root, "IncludesLastItemInRange");

        if (complete && last && strcmp(last, "false") == 0)
            *complete = 0;
        free(last);
        return ews_child(root, EWS_NS_TYPES, "Items");
    }
    return ews_child(r->message, EWS_NS_MESSAGES, "Items");
}

/* The TopdeskReservationId value among item's extended properties. */
static char *
ews_item_property(xmlNodePtr item)
{
    for (xmlNodePtr c = item->children; c; c = c->next) {
        xmlNodePtr uri;
        char *set, *guid, *pname, *v = NULL;
        int ours;

        if (!ews_is(c, EWS_NS_TYPES, "ExtendedProperty") ||
            !(uri = ews_child(c, EWS_NS_TYPES, "ExtendedFieldURI")))
            continue;
        set = ews_attr(uri, "DistinguishedPropertySetId");
        guid = ews_attr(uri, "PropertySetId");
        pname = ews_attr(uri, "PropertyName");
        ours = pname && strcmp(pname, EXCHANGE_PROPERTY_NAME) == 0 &&
               ((set && strcmp(set, "PublicStrings") == 0) ||
                (guid && strcasecmp(guid, "00020329-0000-0000-C000-000000000046") == 0));
        if (ours)
            v = ews_content(ews_child(c, EWS_NS_TYPES, "Value"));
        free(set);
        free(guid);
        free(pname);
        if (v)
            return v;
    }
    return NULL;
}

/* What a booking made in Outlook needs besides times and subject: UID,
 * organizer, the room's own answer, the item's kind and last change. */
static void
ews_item_people(xmlNodePtr item, exchange_event_t *ev)
{
    xmlNodePtr org = ews_child(ews_child(item, EWS_NS_TYPES, "Organizer"), EWS_NS_TYPES, "Mailbox");
    char *s;

    ev->modified = -1;
    ev->ical_uid = ews_content(ews_child(item, EWS_NS_TYPES, "UID"));
    if (org) {
        char *routing = ews_content(ews_child(org, EWS_NS_TYPES, "RoutingType"));

        ev->organizer_name = ews_content(ews_child(org, EWS_NS_TYPES, "Name"));
        ev->organizer = ews_content(ews_child(org, EWS_NS_TYPES, "EmailAddress"));
        if (routing && strcasecmp(routing, "SMTP") != 0 && ev->organizer &&
            !strchr(ev->organizer, '@')) {
            free(ev->organizer);   /* an X.500 address (EX): no e-mail to match */
            ev->organizer = NULL;
        }
        free(routing);
    }
    if ((s = ews_content(ews_child(item, EWS_NS_TYPES, "MyResponseType")))) {
        ev->is_organizer = strcmp(s, "Organizer") == 0;
        ev->declined = strcmp(s, "Decline") == 0;
        free(s);
    }
    if ((s = ews_content(ews_child(item, EWS_NS_TYPES, "CalendarItemType")))) {
        ev->recurring = strcmp(s, "Single") != 0;
        free(s);
    }
    if ((s = ews_content(ews_child(item, EWS_NS_TYPES, "LastModifiedTime")))) {
        ev->modified = exchange_parse_time(s);
        free(s);
    }
}

/* Fills ev from a t:CalendarItem; -1 (ev empty) without an id or times. */
int
ews_item_parse(xmlNodePtr item, exchange_event_t *ev)
{
    xmlNodePtr idn = ews_child(item, EWS_NS_TYPES, "ItemId");
    char *s, *e, *c;
    time_t start, end;

    memset(ev, 0, sizeof *ev);
    s = ews_content(ews_child(item, EWS_NS_TYPES, "Start"));
    e = ews_content(ews_child(item, EWS_NS_TYPES, "End"));
    start = exchange_parse_time(s);
    end = exchange_parse_time(e);
    free(s);
    free(e);
    if (!idn || start == (time_t)-1 || end == (time_t)-1)
        return -1;
    ev->id = ews_attr(idn, "Id");
    if (!ev->id || !*ev->id) {
        free(ev->id);
        ev->id = NULL;
        return -1;
    }
    ev->change_key = ews_attr(idn, "ChangeKey");
    ev->start = start;
    ev->end = end;
    ev->subject = ews_content(ews_child(item, EWS_NS_TYPES, "Subject"));
    ev->body = ews_content(ews_child(item, EWS_NS_TYPES, "Body"));
    ev->reservation_id = ews_item_property(item);
    c = ews_content(ews_child(item, EWS_NS_TYPES, "IsCancelled"));
    ev->cancelled = c && (strcmp(c, "true") == 0 || strcmp(c, "1") == 0);
    free(c);
    ews_item_people(item, ev);
    return 0;
}

void
ews_reply_events(const ews_reply_t *r, exchange_event_t **events, size_t *n, size_t *skipped,
                 int *complete)
{
    xmlNodePtr items = ews_items(r, complete);
    exchange_event_t *evs = NULL;
    size_t count = 0, alloc = 0, bad = 0;

    for (xmlNodePtr c = items ? items->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!ews_is(c, EWS_NS_TYPES, "CalendarItem")) {
            bad++;  /* a meeting message or another item type: not an appointment */
            continue;
        }
        if (count == alloc) {
            alloc = alloc ? 2 * alloc : 8;
            evs = xrealloc(evs, alloc * sizeof *evs);
        }
        if (ews_item_parse(c, &evs[count]) != 0) {
            bad++;
            continue;
        }
        count++;
    }
    if (!count) {
        free(evs);
        evs = NULL;
    }
    *events = evs;
    *n = count;
    if (skipped)
        *skipped = bad;
}

char *
ews_reply_parent_folder(const ews_reply_t *r)
{
    xmlNodePtr items = ews_items(r, NULL), item = ews_first_element(items);

    return ews_attr(item ? ews_child(item, EWS_NS_TYPES, "ParentFolderId") : NULL, "Id");
}

int
ews_reply_item_id(const ews_reply_t *r, char **id, char **change_key)
{
    xmlNodePtr items = ews_items(r, NULL), item = ews_first_element(items);
    xmlNodePtr idn = item ? ews_child(item, EWS_NS_TYPES, "ItemId") : NULL;

    *id = ews_attr(idn, "Id");
    *change_key = NULL;
    if (!*id || !**id) {
        free(*id);
        *id = NULL;
        return -1;
    }
    *change_key = ews_attr(idn, "ChangeKey");
    return 0;
}

char *
ews_reply_folder_id(const ews_reply_t *r)
{
    xmlNodePtr folders, folder;

    if (!r->message || r->error)
        return NULL;
    folders = ews_child(r->message, EWS_NS_MESSAGES, "Folders");
    folder = ews_first_element(folders);
    return ews_attr(folder ? ews_child(folder, EWS_NS_TYPES, "FolderId") : NULL, "Id");
}
