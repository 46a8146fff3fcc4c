/* libFuzzer target: a whole request through front_handle(), the path a
 * FastCGI or CGI request takes.  The input is CGI variables, one
 * NAME=VALUE a line, then an empty line, then the body. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi/auth.h"
#include "cgi/front.h"
#include "core/util/log.h"
#include "core/util/xalloc.h"

#define FUZZ_MAX_VARS 32

typedef struct {
    char *names[FUZZ_MAX_VARS];
    char *values[FUZZ_MAX_VARS];
    int n;
    const char *body;
    size_t pos, len;
} fuzz_io_t;

static const char *
fuzz_param(void *ctx, const char *name)
{
    fuzz_io_t *io = ctx;
    for (int i = 0; i < io->n; i++)
        if (strcmp(io->names[i], name) == 0)
            return io->values[i];
    return NULL;
}

static ssize_t
fuzz_read(void *ctx, char *buf, size_t n)
{
    fuzz_io_t *io = ctx;
    size_t left = io->len - io->pos;

    if (n > left)
        n = left;
    memcpy(buf, io->body + io->pos, n);
    io->pos += n;
    return (ssize_t)n;
}

static int
fuzz_more(void *ctx)
{
    fuzz_io_t *io = ctx;
    return io->pos < io->len;
}

static int
fuzz_write(void *ctx, const char *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    (void)n;
    return 0;
}

static app_t fuzz_app;
static char fuzz_dir[64];

static void
fuzz_init(void)
{
    static const char yaml[] =
        "state_dir: /tmp\n"
        "hooks: {tokens: [fuzz-token, other-token], max_body: 4KiB}\n"
        "topdesk: {url: 'http://127.0.0.1:9', username: u, application_password: p}\n"
        "mail: {from: tdhook@example.com}\n"
        "graph: {tenant: t, client_id: c, client_secret: s}\n";
    queue_limits_t limits = {1, 3, 100, 1000, 60000};
    config_t *cfg = NULL;
    char *err = NULL;

    log_setup(LOG_ERROR, LOG_TEXT);
    if (config_load_buffer("fuzz.yaml", yaml, sizeof yaml - 1, &cfg, &err) != CONFIG_OK) {
        fprintf(stderr, "fuzz config: %s\n", err);
        abort();
    }
    /* The queue is full from the start (max_jobs 1, one job in it), so a
     * valid hook is refused with 429 before it touches the disk: the fuzzer
     * runs fast and leaves one job behind, whatever it tries. */
    snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/tdhook-fuzz-XXXXXX");
    if (!mkdtemp(fuzz_dir))
        abort();
    fuzz_app.cfg = cfg;
    fuzz_app.queue = queue_open(fuzz_dir, &limits, &err);
    if (fuzz_app.queue) {
        json_object *p = json_object_new_object();
        char id[QUEUE_ID_MAX];
        queue_enqueue(fuzz_app.queue, "stock-check", p, NULL, id, NULL);
        json_object_put(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_io_t io;
    front_io_t fio = {fuzz_param, fuzz_read, fuzz_more, fuzz_write, &io};
    char *copy = xmalloc(size + 1);
    char *line, *next;

    if (!fuzz_app.cfg)
        fuzz_init();
    memcpy(copy, data, size);
    copy[size] = '\0';
    memset(&io, 0, sizeof io);
    io.body = "";
    for (line = copy; line < copy + size; line = next) {
        char *nl = memchr(line, '\n', (size_t)(copy + size - line));
        char *eq;

        if (!nl) {
            next = copy + size;
        } else {
            *nl = '\0';
            next = nl + 1;
        }
        if (!*line) {
            io.body = next;
            io.len = (size_t)(copy + size - next);
            break;
        }
        eq = strchr(line, '=');
        if (!eq || io.n == FUZZ_MAX_VARS)
            continue;
        *eq = '\0';
        io.names[io.n] = line;
        io.values[io.n] = eq + 1;
        io.n++;
    }
    front_handle(&fuzz_app, &fio);

    /* The auth parser on its own, with the raw input as the header. */
    {
        char *tokens[] = {"fuzz-token"};
        auth_check(copy, tokens, 1);
    }
    free(copy);
    return 0;
}
