/* Running the Python fakes from C unit tests: see fake.h. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/util/buf.h"
#include "core/util/xalloc.h"
#include "tests/unit/fake.h"

#define FAKE_THIS_FILE "tests/unit/fake.c"
#define FAKE_START_MS 15000
#define FAKE_BODY_CAP (16 << 20)

long long
fake_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fake_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

int
fake_python_missing(void)
{
    if (access(FAKE_PYTHON, X_OK) == 0)
        return 0;
    fprintf(stderr, "SKIP: %s not found\n", FAKE_PYTHON);
    return 1;
}

char *
fake_top_srcdir(void)
{
    const char *env = getenv("top_srcdir");
    const char *me = __FILE__;
    const char *tail = strstr(me, FAKE_THIS_FILE);
    size_t n;

    if (env && *env)
        return xstrdup(env);
    if (!tail)
        return xstrdup("../..");
    n = (size_t)(tail - me);
    if (n == 0)
        return xstrdup(".");
    /* drop the slash before "tests/", unless it is the root */
    return xasprintf("%.*s", (int)(n > 1 ? n - 1 : n), me);
}

static int
file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *
fake_find(const char *name, const char *argv0)
{
    char *cand[3] = {NULL, NULL, NULL};
    char *found = NULL, *top, *dir, *slash;
    size_t i;

    top = fake_top_srcdir();
    cand[0] = xasprintf("%s/tests/fakes/%s", top, name);
    free(top);
    if (argv0) {
        dir = xstrdup(argv0);
        slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        cand[1] = xasprintf("%s/../../tests/fakes/%s", slash ? dir : ".", name);
        cand[2] = xasprintf("%s/../fakes/%s", slash ? dir : ".", name);
        free(dir);
    }
    for (i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        if (!found && cand[i] && file_exists(cand[i]))
            found = cand[i];
        else
            free(cand[i]);
    }
    return found;
}

char *
fake_main_init(const char *name, const char *argv0)
{
    char *script;

    if (fake_python_missing())
        return NULL;
    script = fake_find(name, argv0);
    if (!script) {
        fprintf(stderr, "SKIP: tests/fakes/%s not found\n", name);
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return script;
}

void
fake_main_done(char *script)
{
    curl_global_cleanup();
    free(script);
}

config_t *
fake_config(const char *fmt, ...)
{
    va_list ap;
    config_t *c = NULL;
    char *yaml, *err = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&yaml, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "fake_config: out of memory\n");
        return NULL;
    }
    if (config_load_buffer("test.yaml", yaml, (size_t)n, &c, &err) != CONFIG_OK) {
        fprintf(stderr, "config_load_buffer: %s\n", err ? err : "?");
        free(err);
        c = NULL;
    }
    free(yaml);
    return c;
}

int
fake_init(fake_t *f, const char *tag)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tdhook-%s-XXXXXX", tag);
    if (!mkdtemp(f->dir)) {
        f->dir[0] = '\0';
        return -1;
    }
    return 0;
}

/* The port in the file, or 0 while it is missing or incomplete (the fakes
 * write it whole by rename, but a bare number is checked anyway). */
static int
read_port(const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[32];
    int port = 0;

    if (!fp)
        return 0;
    if (fgets(line, sizeof line, fp)) {
        char *end;
        long p;

        errno = 0;
        p = strtol(line, &end, 10);
        if (!errno && end != line && (*end == '\n' || *end == '\0') && p > 0 && p < 65536)
            port = (int)p;
    }
    fclose(fp);
    return port;
}

int
fake_start(fake_t *f, const char *script, const char *const *args)
{
    char *portfile = xasprintf("%s/port", f->dir);
    char *logfile = xasprintf("%s/fake.log", f->dir);
    const char **argv;
    size_t n = 0, nargs = 0;
    long long deadline;
    int status, rc = -1;

    while (args && args[nargs])
        nargs++;
    argv = xcalloc(nargs + 7, sizeof *argv);
    argv[n++] = FAKE_PYTHON;
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    for (size_t i = 0; i < nargs; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    f->port = 0;
    f->pid = fork();
    if (f->pid < 0) {
        f->pid = 0;
        goto out;
    }
    if (f->pid == 0) {
        int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv(FAKE_PYTHON, (char *const *)argv);
        _exit(127);
    }
    deadline = fake_now_ms() + FAKE_START_MS;
    while (fake_now_ms() < deadline) {
        f->port = read_port(portfile);
        if (f->port)
            break;
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            f->pid = 0;
            break;
        }
        fake_sleep_ms(50);
    }
    if (f->port) {
        rc = 0;
    } else {
        fprintf(stderr, "fake: %s did not start\n", script);
        fake_print_log(f);
        if (f->pid > 0) {
            kill(f->pid, SIGTERM);
            waitpid(f->pid, NULL, 0);
            f->pid = 0;
        }
    }
out:
    free(argv);
    free(portfile);
    free(logfile);
    return rc;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
fake_stop(fake_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
    f->port = 0;
    if (f->dir[0])
        nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    f->dir[0] = '\0';
}

void
fake_print_log(const fake_t *f)
{
    char *path = xasprintf("%s/fake.log", f->dir);
    FILE *fp = fopen(path, "r");
    char line[512];

    if (fp) {
        while (fgets(line, sizeof line, fp))
            fprintf(stderr, "fake: %s", line);
        fclose(fp);
    }
    free(path);
}

static size_t
collect(char *p, size_t size, size_t n, void *userdata)
{
    return buf_append(userdata, p, size * n) == BUF_OK ? size * n : 0;
}

long
fake_call(const fake_t *f, const char *method, const char *path, const char *body,
          json_object **out)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char *url = xasprintf("http://127.0.0.1:%d%s", f->port, path);
    buf_t b;
    long status = 0;

    buf_init(&b, FAKE_BODY_CAP);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (out)
        *out = b.len ? json_tokener_parse(buf_str(&b)) : NULL;
    buf_free(&b);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    free(url);
    return status;
}

long
fake_set_faults(const fake_t *f, const char *rules_json)
{
    char *body = xasprintf("{\"rules\":%s}", rules_json);
    long status = fake_call(f, "POST", "/__fake/faults", body, NULL);

    free(body);
    return status;
}

int
fake_clear(const fake_t *f)
{
    if (fake_set_faults(f, "[]") != 200 || fake_call(f, "POST", "/__fake/reset", "{}", NULL) != 200)
        return -1;
    return 0;
}
