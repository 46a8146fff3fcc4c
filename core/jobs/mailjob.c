/* Mail as a job: see core/jobs/mailjob.h. */
#include "autoconf.h"

#include <stdlib.h>

#include "core/util/address.h"
#include "core/clients/mime.h"
#include "core/clients/smtp.h"
#include "core/jobs/mailjob.h"
#include "core/util/xalloc.h"

int
mailjob_enqueue(queue_t *q, char *const *to, size_t nto, const char *message, char *id)
{
    char idbuf[QUEUE_ID_MAX];
    json_object *payload, *arr;
    int dup = 0, rc;

    if (!message || nto == 0)
        return QUEUE_EINVAL;
    for (size_t i = 0; i < nto; i++)
        if (!address_ok(to[i]))
            return QUEUE_EINVAL;
    payload = json_object_new_object();
    arr = json_object_new_array();
    for (size_t i = 0; i < nto; i++)
        json_object_array_add(arr, json_object_new_string(to[i]));
    json_object_object_add(payload, "to", arr);
    json_object_object_add(payload, "message", json_object_new_string(message));
    rc = queue_enqueue(q, "mail", payload, NULL, id ? id : idbuf, &dup);
    json_object_put(payload);
    return rc;
}

/* payload is borrowed.  A malformed payload is SMTP_EFAIL (retrying cannot
 * fix it); otherwise what smtp_send() returns, with its *errstr. */
int
mailjob_send(const config_t *cfg, json_object *payload, char **errstr)
{
    json_object *jto, *jmsg;
    char **to = NULL;
    size_t nto;
    int ret = SMTP_EFAIL;

    *errstr = NULL;
    if (!payload || !json_object_is_type(payload, json_type_object) ||
        !json_object_object_get_ex(payload, "to", &jto) ||
        !json_object_is_type(jto, json_type_array) ||
        !json_object_object_get_ex(payload, "message", &jmsg) ||
        !json_object_is_type(jmsg, json_type_string)) {
        *errstr = xstrdup("mail job: payload needs \"to\" (array) and \"message\" (string)");
        goto out;
    }
    nto = json_object_array_length(jto);
    if (nto == 0) {
        *errstr = xstrdup("mail job: \"to\" is empty");
        goto out;
    }
    to = xcalloc(nto, sizeof *to);
    for (size_t i = 0; i < nto; i++) {
        json_object *e = json_object_array_get_idx(jto, i);
        if (!json_object_is_type(e, json_type_string)) {
            *errstr = xstrdup("mail job: \"to\" holds a non-string");
            goto out;
        }
        /* Borrowed from the payload, which outlives the send. */
        to[i] = (char *)json_object_get_string(e);
    }
    ret = smtp_send(cfg, to, nto, json_object_get_string(jmsg), errstr);

out:
    free(to);
    return ret;
}
