/* The push notifications Exchange sends to tdhook (NotificationService.wsdl:
 * SendNotification) and tdhook's answers (SendNotificationResult with OK or
 * Unsubscribe, or a SOAP fault for a body that is not a notification).
 * Exchange does not authenticate these requests: the caller decides by the
 * URL's key whether the subscription is one it keeps. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "core/clients/ews_private.h"
#include "core/util/buf.h"
#include "core/util/xalloc.h"

#define EWS_PUSH_MAX (4u * 1024 * 1024)

/* One m:Notification: its subscription and what it holds. */
static void
ews_push_notification(xmlNodePtr n, ews_push_t *p)
{
    char *sub = ews_content(ews_child(n, EWS_NS_TYPES, "SubscriptionId"));
    char *prev = ews_content(ews_child(n, EWS_NS_TYPES, "PreviousWatermark"));

    if (sub && !p->subscription[0])
        snprintf(p->subscription, sizeof p->subscription, "%s", sub);
    if (prev && !p->previous[0])
        snprintf(p->previous, sizeof p->previous, "%s", prev);
    free(sub);
    free(prev);
    for (xmlNodePtr c = n->children; c; c = c->next) {
        size_t len;

        if (c->type != XML_ELEMENT_NODE || !c->ns || !c->ns->href ||
            strcmp((const char *)c->ns->href, EWS_NS_TYPES) != 0)
            continue;
        len = strlen((const char *)c->name);
        if (strcmp((const char *)c->name, "StatusEvent") == 0)
            p->status++;
        else if (len > 5 && strcmp((const char *)c->name + len - 5, "Event") == 0)
            p->events++;
        else
            continue;
        {
            char *wm = ews_content(ews_child(c, EWS_NS_TYPES, "Watermark"));

            if (wm)
                snprintf(p->last, sizeof p->last, "%s", wm);
            free(wm);
        }
    }
}

int
ews_push_parse(const char *data, size_t len, ews_push_t *p)
{
    xmlDocPtr doc;
    xmlNodePtr env, body, op, msgs;
    int ok = 0;

    memset(p, 0, sizeof *p);
    if (!data || !len || len > EWS_PUSH_MAX)
        return -1;
    doc = xmlReadMemory(data, (int)len, "push.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return -1;
    if (doc->intSubset || doc->extSubset)
        goto out;   /* no DTD, no entities */
    env = xmlDocGetRootElement(doc);
    if (!ews_is(env, EWS_NS_SOAP, "Envelope") || !(body = ews_child(env, EWS_NS_SOAP, "Body")))
        goto out;
    op = ews_first_element(body);
    if (!ews_is(op, EWS_NS_MESSAGES, "SendNotification") ||
        !(msgs = ews_child(op, EWS_NS_MESSAGES, "ResponseMessages")))
        goto out;
    for (xmlNodePtr m = msgs->children; m; m = m->next) {
        xmlNodePtr n;

        if (!ews_is(m, EWS_NS_MESSAGES, "SendNotificationResponseMessage"))
            continue;
        if ((n = ews_child(m, EWS_NS_MESSAGES, "Notification"))) {
            ews_push_notification(n, p);
            ok = 1;
        }
    }
    ok = ok && p->subscription[0];
out:
    xmlFreeDoc(doc);
    return ok ? 0 : -1;
}

char *
ews_push_answer(int keep)
{
    return xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                     "<soap:Envelope xmlns:soap=\"" EWS_NS_SOAP "\"><soap:Body>"
                     "<m:SendNotificationResult xmlns:m=\"" EWS_NS_MESSAGES "\">"
                     "<m:SubscriptionStatus>%s</m:SubscriptionStatus>"
                     "</m:SendNotificationResult></soap:Body></soap:Envelope>\n",
                     keep ? "OK" : "Unsubscribe");
}

char *
ews_push_heartbeat(const char *subscription)
{
    return xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                     "<soap:Envelope xmlns:soap=\"" EWS_NS_SOAP "\"><soap:Body>"
                     "<m:SendNotification xmlns:m=\"" EWS_NS_MESSAGES "\" xmlns:t=\""
                     EWS_NS_TYPES "\"><m:ResponseMessages>"
                     "<m:SendNotificationResponseMessage ResponseClass=\"Success\">"
                     "<m:ResponseCode>NoError</m:ResponseCode><m:Notification>"
                     "<t:SubscriptionId>%s</t:SubscriptionId>"
                     "<t:PreviousWatermark>AA==</t:PreviousWatermark>"
                     "<t:MoreEvents>false</t:MoreEvents><t:StatusEvent>"
                     "<t:Watermark>AA==</t:Watermark></t:StatusEvent></m:Notification>"
                     "</m:SendNotificationResponseMessage></m:ResponseMessages>"
                     "</m:SendNotification></soap:Body></soap:Envelope>\n",
                     subscription);
}

char *
ews_push_fault(const char *text)
{
    buf_t b;

    buf_init(&b, 4096);
    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                 "<soap:Envelope xmlns:soap=\"" EWS_NS_SOAP "\"><soap:Body><soap:Fault>"
                 "<faultcode>soap:Client</faultcode><faultstring>");
    for (const char *s = text ? text : ""; *s; s++) {
        if (*s == '<')
            buf_puts(&b, "&lt;");
        else if (*s == '>')
            buf_puts(&b, "&gt;");
        else if (*s == '&')
            buf_puts(&b, "&amp;");
        else if ((unsigned char)*s >= 0x20)
            buf_append(&b, s, 1);
    }
    buf_puts(&b, "</faultstring></soap:Fault></soap:Body></soap:Envelope>\n");
    return buf_steal(&b);
}
