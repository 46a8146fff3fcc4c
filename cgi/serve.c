#include "autoconf.h"

#include <errno.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cgi/app.h"
#include "cgi/front.h"
#include "cgi/serve.h"
#include "core/jobs/outlook.h"
#include "core/clients/transport.h"
#include "core/jobs/jobs.h"
#include "core/jobs/texts.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/testseam.h"
#include "core/queue/queue.h"
#include "core/util/xalloc.h"

#define SERVE_BACKLOG 1024
#define SERVE_MAX_CHILDREN 256
#define SERVE_STOP_GRACE_S 30
#define SERVE_PRUNE_EVERY_S 60
#define SERVE_CHECKPOINT_MS 1000L
#define SERVE_THREAD_STACK (512 * 1024)   /* how often the master syncs the workers' jobs */

typedef enum { ROLE_HTTP, ROLE_RUNNER } serve_role_t;

typedef struct {
    pid_t pid;
    serve_role_t role;
    int index;
    time_t started;
    unsigned gen;            /* the configuration it started with (see serve_reload()) */
} serve_child_t;

static volatile sig_atomic_t serve_stop;

static void
serve_on_term(int sig)
{
    (void)sig;
    __atomic_store_n(&serve_stop, 1, __ATOMIC_RELEASE);   /* read by the threads */
    FCGX_ShutdownPending();
}

/* --- sockets -------------------------------------------------------------- */

static int
serve_listen_unix(const char *path, char **errstr)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        *errstr = xasprintf("socket path too long: %s", path);
        return -1;
    }
    /* A socket left by a previous run is in the way; anything else is not ours. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *errstr = xasprintf("%s exists and is not a socket", path);
            return -1;
        }
        unlink(path);
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(fd, SERVE_BACKLOG) < 0) {
        *errstr = xasprintf("cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* The web server's user must connect; every hook still needs a token, and
     * the directory holding the socket is where access is restricted. */
    chmod(path, 0666);
    return fd;
}

static int
serve_listen_tcp(const char *hostport, char **errstr)
{
    struct addrinfo hints, *res = NULL, *ai;
    const char *colon = strrchr(hostport, ':');
    char *host;
    int fd = -1, one = 1, rc;

    if (!colon || colon == hostport || !colon[1]) {
        *errstr = xasprintf("expected tcp:HOST:PORT, got tcp:%s", hostport);
        return -1;
    }
    host = xstrndup(hostport, (size_t)(colon - hostport));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc) {
        *errstr = xasprintf("cannot resolve %s: %s", hostport, gai_strerror(rc));
        free(host);
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SERVE_BACKLOG) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        *errstr = xasprintf("cannot listen on %s: %s", hostport, strerror(errno));
    freeaddrinfo(res);
    free(host);
    return fd;
}

static int
serve_is_listening(int fd)
{
    int v = 0;
    socklen_t len = sizeof v;

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

/* systemd's LISTEN_FDS (fd 3), else fd 0 as spawn-fcgi hands it over. */
static int
serve_inherited(char **errstr)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

    if (pid && fds) {
        char *end;
        long p = strtol(pid, &end, 10);
        if (!*end && p == (long)getpid() && strtol(fds, &end, 10) >= 1 && serve_is_listening(3)) {
            unsetenv("LISTEN_PID");
            unsetenv("LISTEN_FDS");
            unsetenv("LISTEN_FDNAMES");
            return 3;
        }
    }
    if (serve_is_listening(0))
        return 0;
    *errstr = xstrdup("no --socket given and no listening socket inherited "
                      "(from systemd or spawn-fcgi)");
    return -1;
}

static int
serve_open_socket(const char *spec, char **errstr)
{
    if (!spec)
        return serve_inherited(errstr);
    if (strncmp(spec, "unix:", 5) == 0)
        return serve_listen_unix(spec + 5, errstr);
    if (strncmp(spec, "tcp:", 4) == 0)
        return serve_listen_tcp(spec + 4, errstr);
    *errstr = xasprintf("--socket takes unix:PATH or tcp:HOST:PORT, not \"%s\"", spec);
    return -1;
}

/* --- children ------------------------------------------------------------- */

static void
serve_child_signals(void)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = serve_on_term;   /* no SA_RESTART: accept() must return */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static const char *
fcgx_param(void *ctx, const char *name)
{
    return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);
}

static ssize_t
fcgx_read(void *ctx, char *buf, size_t n)
{
    FCGX_Request *r = ctx;
    int got = FCGX_GetStr(buf, n > 65536 ? 65536 : (int)n, r->in);

    if (got < 0 || FCGX_GetError(r->in))
        return -1;
    return got;
}

static int
fcgx_more(void *ctx)
{
    FCGX_Request *r = ctx;
    char c;

    return FCGX_GetStr(&c, 1, r->in) == 1;
}

static int
fcgx_write(void *ctx, const char *buf, size_t n)
{
    FCGX_Request *r = ctx;

    while (n) {
        int chunk = n > 65536 ? 65536 : (int)n;
        if (FCGX_PutStr(buf, chunk, r->out) != chunk)
            return -1;
        buf += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

static queue_limits_t
serve_limits(const config_t *cfg)
{
    queue_limits_t l = {cfg->queue.max_jobs, cfg->queue.max_attempts, cfg->queue.retry_base_ms,
                        cfg->queue.retry_max_ms, cfg->queue.keep_done_ms};
    return l;
}

static queue_t *
serve_queue(const config_t *cfg)
{
    queue_limits_t limits = serve_limits(cfg);
    char *err = NULL;
    queue_t *q = queue_open(cfg->state_dir, &limits, &err);

    if (!q) {
        log_error("queue: %s", err);
        free(err);
    }
    return q;
}

/* How often the master checkpoints: SERVE_CHECKPOINT_MS, or for the tests
 * of the journal the seam TDHOOK_TEST_CHECKPOINT_MS (0: never, so that what
 * a worker stored is left to its journal alone). */
static long long
serve_checkpoint_ms(void)
{
    static long ms = -1;

    return testseam_number("TDHOOK_TEST_CHECKPOINT_MS", 86400000L, SERVE_CHECKPOINT_MS, &ms);
}

/* The queue of HTTP worker `slot`, with its journal when it can have one. */
static queue_t *
serve_worker_queue(const config_t *cfg, int slot)
{
    queue_t *q = serve_queue(cfg);

    if (q)
        queue_journal(q, slot);
    return q;
}

typedef struct {
    const config_t *cfg;
    int listen_fd;
    int slot;
    pthread_t tid;
    int finished;            /* set (atomically) when the thread is through */
    unsigned accepting;      /* see serve_http_thread() */
} serve_thread_t;

/* The signal that wakes a thread blocked in accept() when the worker stops
 * (a realtime one: nobody sends it by chance), and the count of those a
 * thread has taken. */
#define SERVE_WAKE_SIG (SIGRTMIN + 2)
static __thread volatile sig_atomic_t serve_woken;

static void
serve_on_wake(int sig)
{
    (void)sig;
    serve_woken = serve_woken + 1;
}

/* A request of its own for each accept(): the one before may still wait
 * for its answer (see front_serve()). */
static FCGX_Request *
serve_request_new(int listen_fd)
{
    FCGX_Request *req = xmalloc(sizeof *req);

    FCGX_InitRequest(req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
    return req;
}

/* Ends an answered request: the answer flushed, the connection closed.
 * libfcgi's own close shuts the sending side and then waits (up to 2 s)
 * for nginx to hang up, so that no unread byte turns the close into a TCP
 * reset.  When the whole request was read that wait is not needed: what is
 * left to read (the end of the body's stream) is here already and is
 * drained; and a journal group's writer, which ends the requests of its
 * whole group, must not wait on nginx once for each. */
static void
serve_request_end(void *ctx, int whole)
{
    FCGX_Request *req = ctx;
    int keep = req->keepConnection;

    if (whole && !keep)
        req->keepConnection = 1;     /* this close is done here */
    FCGX_Finish_r(req);
    if (whole && !keep && req->ipcFd >= 0) {
        char trash[512];

        shutdown(req->ipcFd, SHUT_WR);
        while (recv(req->ipcFd, trash, sizeof trash, MSG_DONTWAIT) > 0)
            ;
        close(req->ipcFd);
        req->ipcFd = -1;
    }
    if (req->ipcFd >= 0)
        FCGX_Free(req, 1);    /* a kept connection: this request object goes */
    free(req);
}

/* One thread of an HTTP worker: its own app and queue handle (the journal
 * behind them is the process's).  A hook's answer waits until its job is
 * durable, but the thread does not: whichever thread writes the job's
 * journal group sends the answer, and this one accepts the next request.
 * SIGTERM stays blocked; to stop, the worker's main thread sends
 * SERVE_WAKE_SIG, but only while the thread is in accept(), so that no read
 * of a request is ever interrupted: `accepting` is 1 in accept() and
 * counts, from bit 2 up, the signals sent there; leaving accept() the
 * thread sets it to 0 and waits for every one of them to land before it
 * serves anything.  A thread ends only once every answer it was to write
 * is written (a journal group's writer finishes its group). */
static void *
serve_http_thread(void *arg)
{
    serve_thread_t *t = arg;
    FCGX_Request *req = serve_request_new(t->listen_fd);
    app_t app = {t->cfg, NULL};
    front_io_t io = {fcgx_param, fcgx_read, fcgx_more, fcgx_write, NULL};

    app.queue = serve_worker_queue(t->cfg, t->slot);
    for (;;) {
        unsigned sent;
        int rc = -EINTR;

        __atomic_store_n(&t->accepting, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&serve_stop, __ATOMIC_SEQ_CST))
            rc = FCGX_Accept_r(req);
        sent = __atomic_exchange_n(&t->accepting, 0, __ATOMIC_SEQ_CST) >> 2;
        while ((unsigned)serve_woken < sent) {
            struct timespec nap = {0, 50 * 1000L};

            nanosleep(&nap, NULL);   /* a syscall: where a signal lands */
        }
        serve_woken = 0;
        if (rc < 0) {
            if (__atomic_load_n(&serve_stop, __ATOMIC_ACQUIRE))
                break;
            if (rc == -EINTR)
                continue;
            log_warn("accept failed: %s", strerror(-rc > 0 ? -rc : EIO));
            usleep(100000);
            continue;
        }
        if (!app.queue)
            app.queue = serve_worker_queue(t->cfg, t->slot);
        io.ctx = req;
        front_serve(&app, &io, serve_request_end);
        req = serve_request_new(t->listen_fd);
    }
    FCGX_Free(req, 1);
    free(req);
    if (app.queue)
        queue_close(app.queue);
    __atomic_store_n(&t->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* An HTTP worker: `threads` threads serve requests; this one waits for the
 * end and then wakes the threads still blocked in accept() until all are
 * through. */
static void
serve_http_worker(const config_t *cfg, int listen_fd, int slot, int threads)
{
    serve_thread_t *ts = xcalloc((size_t)threads, sizeof *ts);
    struct sigaction wake;
    pthread_attr_t attr;
    sigset_t term;
    int started = 0;

    prctl(PR_SET_NAME, "tdhook-http", 0, 0, 0);
    /* One malloc arena for the threads: a request is allocated by the
     * thread that reads it and freed by the one that answers it, and with
     * an arena a thread the worker's memory kept growing (to 11 MB after
     * 280,000 requests; with one it stays under 6 MB). */
    mallopt(M_ARENA_MAX, 1);
    serve_child_signals();
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    pthread_sigmask(SIG_BLOCK, &term, NULL);   /* the threads inherit it */
    memset(&wake, 0, sizeof wake);
    wake.sa_handler = serve_on_wake;           /* no SA_RESTART: accept() must return */
    sigaction(SERVE_WAKE_SIG, &wake, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SERVE_THREAD_STACK);
    for (int i = 0; i < threads; i++) {
        ts[i] = (serve_thread_t){cfg, listen_fd, slot, 0, 0, 0};
        if (pthread_create(&ts[i].tid, &attr, serve_http_thread, &ts[i]) != 0) {
            log_error("worker %d: cannot start thread %d: %s", slot, i, strerror(errno));
            break;
        }
        started++;
    }
    pthread_attr_destroy(&attr);
    while (!__atomic_load_n(&serve_stop, __ATOMIC_ACQUIRE) && started > 0) {
        struct timespec ts_wait = {0, 200 * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(&term, &info, &ts_wait);

        if (sig == SIGTERM || sig == SIGINT)
            __atomic_store_n(&serve_stop, 1, __ATOMIC_RELEASE);
    }
    FCGX_ShutdownPending();
    for (int done = 0; !done;) {
        struct timespec nap = {0, 50 * 1000000L};

        done = 1;
        for (int i = 0; i < started; i++) {
            unsigned cur;

            if (__atomic_load_n(&ts[i].finished, __ATOMIC_ACQUIRE))
                continue;
            done = 0;
            /* Again each round: a thread may wait for libfcgi's accept lock,
             * which a signal does not always break. */
            cur = __atomic_load_n(&ts[i].accepting, __ATOMIC_SEQ_CST);
            while ((cur & 3) == 1 &&
                   !__atomic_compare_exchange_n(&ts[i].accepting, &cur, cur + 4, 0,
                                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                ;
            if ((cur & 3) == 1)
                pthread_kill(ts[i].tid, SERVE_WAKE_SIG);
        }
        if (!done)
            nanosleep(&nap, NULL);
    }
    for (int i = 0; i < started; i++)
        pthread_join(ts[i].tid, NULL);
    free(ts);
    _exit(0);
}

static void
serve_runner(const config_t *cfg, int index)
{
    queue_t *q;
    time_t last_prune = 0, last_outlook = 0;

    prctl(PR_SET_NAME, "tdhook-runner", 0, 0, 0);
    serve_child_signals();
    q = serve_queue(cfg);
    if (!q) {
        sleep(5);   /* the master re-spawns us: don't spin */
        _exit(EX_CANTCREAT);
    }
    while (!serve_stop) {
        long wait_ms = -1;
        int rc = jobs_run_next(cfg, q, &wait_ms);

        if (index == 0 && time(NULL) - last_prune >= SERVE_PRUNE_EVERY_S) {
            queue_prune(q);
            last_prune = time(NULL);
        }
        if (index == 0 && outlook_enabled(cfg) &&
            time(NULL) - last_outlook >= cfg->reservations.outlook.resync_ms / 1000) {
            outlook_tick(cfg, q);   /* the subscriptions' upkeep and the timed resync */
            last_outlook = time(NULL);
        }
        if (rc == 1)
            continue;
        if (rc < 0)
            wait_ms = 1000;
        if (wait_ms < 0 || wait_ms > 1000)
            wait_ms = 1000;
        if (!serve_stop)
            queue_wait(q, wait_ms);
    }
    queue_close(q);
    _exit(0);
}

static pid_t
serve_spawn(const config_t *cfg, int listen_fd, int threads, serve_child_t *c)
{
    pid_t pid = fork();

    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (c->role == ROLE_HTTP)
            serve_http_worker(cfg, listen_fd, c->index, threads);
        close(listen_fd);
        serve_runner(cfg, c->index);
    }
    c->pid = pid;
    c->started = time(NULL);
    return pid;
}

/* SIGHUP: loads cfg->path again.  The new configuration (allocated) when
 * it loads and can take over without a restart, else NULL after saying why
 * the old one stays. */
static config_t *
serve_reload(const config_t *cfg)
{
    config_t *next = NULL;
    char *err = NULL;

    if (config_load(cfg->path, &next, &err) != CONFIG_OK) {
        log_error("SIGHUP: %s was not loaded, the running configuration stays: %s", cfg->path,
                  err ? err : "unknown error");
        free(err);
        return NULL;
    }
    if (strcmp(next->state_dir, cfg->state_dir) != 0 ||
        next->queue.runners != cfg->queue.runners) {
        log_error("SIGHUP: state_dir and queue.runners change only with a restart; the running "
                  "configuration stays");
        config_free(next);
        return NULL;
    }
    log_setup((log_level_t)next->log_level, (log_format_t)next->log_format);
    text_setup(next->mail.language == LANGUAGE_NL ? TEXT_NL : TEXT_EN, next->mail.timezone);
    log_info("SIGHUP: %s loaded; the workers and runners take it over one at a time",
             next->path);
    return next;
}

/* After a reload: one child a time of an older generation is asked to stop
 * (a worker answers its requests in flight first); the loop of serve_run()
 * starts its successor with the new configuration, and the next goes only
 * when that one runs, so there is always a worker to accept. */
static void
serve_roll(serve_child_t *kids, int n, unsigned gen)
{
    for (int i = 0; i < n; i++)
        if (kids[i].pid == 0)
            return;   /* a successor is still to start */
    for (int i = 0; i < n; i++) {
        if (kids[i].gen != gen) {
            kill(kids[i].pid, SIGTERM);   /* again each round until it is gone */
            return;
        }
    }
}

static void
serve_signal_all(serve_child_t *kids, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (kids[i].pid > 0)
            kill(kids[i].pid, sig);
}

static int
serve_alive(const serve_child_t *kids, int n)
{
    int alive = 0;

    for (int i = 0; i < n; i++)
        alive += kids[i].pid > 0;
    return alive;
}

/* Reaps what has died; returns how many. */
static int
serve_reap(serve_child_t *kids, int n)
{
    int status, reaped = 0;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < n; i++) {
            if (kids[i].pid != pid)
                continue;
            kids[i].pid = 0;
            reaped++;
            if (kids[i].role == ROLE_HTTP)
                queue_worker_gone(kids[i].index, pid);
            if (serve_stop)
                break;
            if (WIFSIGNALED(status))
                log_warn("%s %d (pid %ld) killed by signal %d; starting another",
                         kids[i].role == ROLE_HTTP ? "worker" : "runner", kids[i].index,
                         (long)pid, WTERMSIG(status));
            else if (WEXITSTATUS(status) == 0)   /* stopped for a reload (SIGHUP) */
                log_info("%s %d (pid %ld) stopped; starting another",
                         kids[i].role == ROLE_HTTP ? "worker" : "runner", kids[i].index,
                         (long)pid);
            else
                log_warn("%s %d (pid %ld) exited with %d; starting another",
                         kids[i].role == ROLE_HTTP ? "worker" : "runner", kids[i].index,
                         (long)pid, WEXITSTATUS(status));
        }
    }
    return reaped;
}

/* Stops every child: SIGTERM, then SIGKILL for those still running after
 * SERVE_STOP_GRACE_S.  EX_OK, or EX_SOFTWARE when some had to be killed. */
static int
serve_stop_children(serve_child_t *kids, int nkids, const sigset_t *set)
{
    int rc = EX_OK;

    log_info("stopping: waiting for requests and jobs in flight");
    serve_signal_all(kids, nkids, SIGTERM);
    for (int tick = 0; serve_alive(kids, nkids); tick++) {
        struct timespec ts = {0, 200 * 1000000L};
        siginfo_t info;

        if (tick >= SERVE_STOP_GRACE_S * 5) {
            log_warn("children still running after %d s; killing them", SERVE_STOP_GRACE_S);
            serve_signal_all(kids, nkids, SIGKILL);
            rc = EX_SOFTWARE;
        }
        sigtimedwait(set, &info, &ts);
        serve_reap(kids, nkids);
        /* A worker may have been between its check and accept() when the
         * first signal came; another one wakes it.  Workers in a request
         * have SIGTERM blocked, so they finish first. */
        for (int i = 0; i < nkids; i++)
            if (kids[i].pid > 0 && kids[i].role == ROLE_HTTP)
                kill(kids[i].pid, SIGTERM);
    }
    return rc;
}

int
serve_run(const config_t *cfg, const serve_opts_t *opts)
{
    serve_child_t kids[SERVE_MAX_CHILDREN];
    config_t *loaded = NULL;   /* the newest reloaded configuration, owned here */
    unsigned gen = 0;
    int nkids = 0, listen_fd, rc = EX_OK;
    long long checkpoint_ms, last_checkpoint;
    char *err = NULL;
    sigset_t set;
    struct sigaction sa;
    queue_t *q;

    if (opts->workers < 1 || opts->workers + cfg->queue.runners > SERVE_MAX_CHILDREN) {
        fprintf(stderr, "tdhook: --workers must be 1 to %d\n", SERVE_MAX_CHILDREN - cfg->queue.runners);
        return EX_USAGE;
    }
    /* Fail early and clearly when state_dir cannot hold the queue. */
    q = serve_queue(cfg);
    if (!q)
        return EX_CANTCREAT;
    queue_close(q);

    listen_fd = serve_open_socket(opts->socket, &err);
    if (listen_fd < 0) {
        log_error("%s", err);
        free(err);
        return EX_OSERR;
    }
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return EX_SOFTWARE;
    }
    metrics_setup();
    queue_share_sync();
    /* The master's own queue, for the checkpoints of the workers' journals. */
    q = serve_queue(cfg);
    checkpoint_ms = serve_checkpoint_ms();
    last_checkpoint = transport_now_ms();

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (int i = 0; i < opts->workers; i++)
        kids[nkids++] = (serve_child_t){0, ROLE_HTTP, i, 0, 0};
    for (int i = 0; i < cfg->queue.runners; i++)
        kids[nkids++] = (serve_child_t){0, ROLE_RUNNER, i, 0, 0};
    for (int i = 0; i < nkids; i++)
        serve_spawn(cfg, listen_fd, opts->threads, &kids[i]);
    log_info("serving on %s with %d workers and %d job runners (pid %ld)",
             opts->socket ? opts->socket : "the inherited socket", opts->workers,
             cfg->queue.runners, (long)getpid());

    while (!serve_stop) {
        struct timespec ts = {1, 0};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);
        long long now = transport_now_ms();

        if (q && checkpoint_ms > 0 && now - last_checkpoint >= checkpoint_ms) {
            queue_checkpoint(q);
            last_checkpoint = now;
        }

        if (sig == SIGTERM || sig == SIGINT) {
            serve_stop = 1;
        } else if (sig == SIGHUP) {
            config_t *next = serve_reload(loaded ? loaded : cfg);

            if (next) {
                /* the children have their own copies: the old one can go */
                config_free(loaded);
                loaded = next;
                gen++;
            }
        }
        serve_reap(kids, nkids);
        if (serve_stop)
            break;
        for (int i = 0; i < nkids; i++) {
            /* A child that keeps dying right after its start is re-spawned
             * at most once a second. */
            if (kids[i].pid == 0 && time(NULL) - kids[i].started >= 1) {
                kids[i].gen = gen;
                serve_spawn(loaded ? loaded : cfg, listen_fd, opts->threads, &kids[i]);
            }
        }
        serve_roll(kids, nkids, gen);
    }

    rc = serve_stop_children(kids, nkids, &set);
    /* Every worker is gone: what they stored becomes durable in its files,
     * so the next start has nothing to replay. */
    if (q) {
        if (checkpoint_ms > 0)
            queue_checkpoint(q);
        queue_close(q);
    }
    if (opts->socket && strncmp(opts->socket, "unix:", 5) == 0)
        unlink(opts->socket + 5);
    close(listen_fd);
    config_free(loaded);
    log_info("stopped");
    return rc;
}
