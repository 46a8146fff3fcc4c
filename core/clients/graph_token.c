/* The Graph token (client credentials flow), cached until five minutes
 * before it expires, in memory and in {state_dir}/graph-token, so every job
 * runner process of one tdhook shares one token; renewal takes an exclusive
 * flock on {state_dir}/graph-token.lock, so only one process asks the token
 * endpoint at a time. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/clients/graph_private.h"
#include "core/util/fileio.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

/* --- the token ----------------------------------------------------------- */

/* Reads the shared token file; 0 with an allocated *token (secret) when it
 * holds a well-formed token, -1 otherwise. */
static int
graph_token_read(graph_t *g, char **token, time_t *expires)
{
    int fd, rc = -1;
    struct stat st;
    char *data = NULL;
    ssize_t got = 0, n;
    json_object *root = NULL, *v;
    const char *t;

    *token = NULL;
    if (!g->token_path)
        return -1;
    fd = open(g->token_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > GRAPH_TOKEN_FILE_MAX)
        goto out;
    data = xmalloc((size_t)st.st_size + 1);
    while (got < st.st_size) {
        n = read(fd, data + got, (size_t)(st.st_size - got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += n;
    }
    data[got] = '\0';
    root = graph_json_parse(data, (size_t)got);
    t = graph_json_str(root, "access_token");
    if (!t || !*t || !json_object_object_get_ex(root, "expires_at", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
        goto out;
    *token = xstrdup(t);
    *expires = (time_t)json_object_get_int64(v);
    rc = 0;
out:
    if (root) {
        /* the token's copy inside json-c: wipe before it is freed */
        if (json_object_object_get_ex(root, "access_token", &v) &&
            json_object_is_type(v, json_type_string))
            secret_wipe((void *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
        json_object_put(root);
    }
    if (data) {
        secret_wipe(data, (size_t)got);
        free(data);
    }
    close(fd);
    return rc;
}

/* Replaces the token file (written aside with mode 0600, then renamed);
 * a failure is logged once and leaves the cache in memory only. */
void
graph_token_write(graph_t *g)
{
    char *data;

    if (!g->token_path)
        return;
    data = xasprintf("{\"access_token\":\"%s\",\"expires_at\":%lld}\n", g->token,
                     (long long)g->token_expires);
    if (file_replace(g->token_path, data, strlen(data), 0) != 0) {
        if (!g->warned_cache)
            log_warn("graph: cannot write the token cache %s: %s", g->token_path,
                     strerror(errno));
        g->warned_cache = 1;
    }
    secret_free(data);
}

/* Asks the token endpoint for a new token and stores it in g. */
int
graph_token_fetch(graph_t *g, char **errstr, long *retry_after_ms)
{
    const config_t *cfg = g->cfg;
    char *tenant = graph_escape(g, cfg->graph.tenant);
    char *id = graph_escape(g, cfg->graph.client_id);
    char *secret = graph_escape(g, cfg->graph.client_secret);
    char *scope = graph_escape(g, GRAPH_SCOPE);
    char *url = xasprintf("%s/%s/oauth2/v2.0/token", cfg->graph.login_url, tenant);
    char *shown = xasprintf("/%s/oauth2/v2.0/token", cfg->graph.tenant);
    char *body = xasprintf("grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s",
                           id, secret, scope);
    graph_result_t res = {0};
    const char *t;
    json_object *v;
    int64_t ttl;
    int rc;

    rc = graph_call(g, "POST", url, shown, body, -1, &res, errstr, retry_after_ms);
    if (rc != EXCHANGE_OK)
        goto out;
    t = graph_json_str(res.json, "access_token");
    if (!t || !*t || !json_object_object_get_ex(res.json, "expires_in", &v) ||
        (ttl = json_object_get_int64(v)) <= 0) {
        *errstr = xasprintf("Graph POST %s: %ld: no access_token or expires_in in the answer",
                            shown, res.status);
        rc = EXCHANGE_EAUTH;
        goto out;
    }
    secret_free(g->token);
    g->token = xstrdup(t);
    g->token_expires = time(NULL) + (time_t)ttl;
    secret_wipe((void *)t, strlen(t));
out:
    if (res.json)
        json_object_put(res.json);
    secret_free(secret);
    secret_free(body);
    free(tenant);
    free(id);
    free(scope);
    free(url);
    free(shown);
    return rc;
}

static int
graph_token_fresh(time_t expires)
{
    return time(NULL) + GRAPH_TOKEN_MARGIN < expires;
}

/* Makes g->token usable: the one in memory, else the shared file's, else a
 * new one fetched under the lock.  rejected: the token Graph just refused
 * (forced renewal), NULL otherwise. */
int
graph_token(graph_t *g, const char *rejected, char **errstr, long *retry_after_ms)
{
    char *t = NULL;
    time_t exp = 0;
    int fd = -1, rc;

    if (!rejected && g->token && graph_token_fresh(g->token_expires))
        return EXCHANGE_OK;
    if (!rejected && graph_token_read(g, &t, &exp) == 0 && graph_token_fresh(exp))
        goto adopt;
    secret_free(t);
    t = NULL;
    if (g->lock_path) {
        fd = open(g->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (!g->warned_cache)
                log_warn("graph: cannot open %s: %s; the token is not shared", g->lock_path,
                         strerror(errno));
            g->warned_cache = 1;
        } else {
            while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
                ;
        }
    }
    /* Another process may have renewed while this one waited. */
    if (graph_token_read(g, &t, &exp) == 0 && graph_token_fresh(exp) &&
        (!rejected || strcmp(t, rejected) != 0))
        goto adopt;
    secret_free(t);
    t = NULL;
    rc = graph_token_fetch(g, errstr, retry_after_ms);
    if (rc == EXCHANGE_OK)
        graph_token_write(g);
    if (fd >= 0)
        close(fd);  /* releases the lock */
    return rc;
adopt:
    secret_free(g->token);
    g->token = t;
    g->token_expires = exp;
    if (fd >= 0)
        close(fd);
    return EXCHANGE_OK;
}
