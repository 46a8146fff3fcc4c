/* What the edge's files share: app.c (the route table, hooks, jobs,
 * health, metrics) and app_outlook.c (Exchange's notifications). */
#ifndef TDHOOK_APP_PRIVATE_H
#define TDHOOK_APP_PRIVATE_H

#include <json-c/json.h>

#include "cgi/app.h"

/* app.c */
/* Adds an extra header line (static text) to res. */
void app_header(app_response_t *res, const char *line);
/* The body as a JSON object; NULL with res filled (400, 415) otherwise. */
json_object *app_parse_body(const app_request_t *req, app_response_t *res);
/* A hook's answer once its job is queued (rc QUEUE_OK) or not (429, 503). */
void app_hook_answer(app_response_t *res, int rc, const char *id, int duplicate);

/* app_outlook.c */
void app_graph_notify(app_t *app, const app_request_t *req, app_response_t *res);
void app_ews_push(app_t *app, const app_request_t *req, app_response_t *res, const char *key);

#endif
