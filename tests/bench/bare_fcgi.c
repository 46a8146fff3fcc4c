/* A bare libfcgi responder for tests/bench/front.sh: it answers every
 * request "200 ok" and does nothing else, so its rate behind nginx is the
 * limit of any FastCGI front on the machine.  Prefork like `tdhook serve`:
 * one listening unix socket, WORKERS children, each with THREADS threads
 * in FCGX_Accept_r (1: the child itself).  With CLOSE "fast" it ends a
 * connection as `tdhook serve` ends a hook's: without libfcgi's wait for
 * nginx to hang up (what is left to read is drained, then close), so the
 * front shows what that alone is worth.
 *
 *   cc -O2 -pthread -o bare_fcgi tests/bench/bare_fcgi.c -lfcgi
 *   bare_fcgi SOCKET_PATH [WORKERS [THREADS [CLOSE]]]
 *
 * SIGTERM or SIGINT to the master stops the children and removes the
 * socket.  Not installed, not part of make check. */
#include <errno.h>
#include <fcgiapp.h>
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
#include <unistd.h>

#define BARE_MAX_WORKERS 128
#define BARE_MAX_THREADS 256

static volatile sig_atomic_t bare_stop;
static int bare_fast_close;

static void
bare_on_term(int sig)
{
    (void)sig;
    bare_stop = 1;
}

static int
bare_listen(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "bare_fcgi: socket path too long\n");
        return -1;
    }
    unlink(path);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0) {
        fprintf(stderr, "bare_fcgi: cannot listen on %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    chmod(path, 0666);
    return fd;
}

static void *
bare_serve(void *arg)
{
    static const char answer[] =
        "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
    FCGX_Request req;

    FCGX_InitRequest(&req, *(int *)arg, 0);
    while (FCGX_Accept_r(&req) >= 0) {
        int keep = req.keepConnection;

        FCGX_PutStr(answer, (int)sizeof answer - 1, req.out);
        if (bare_fast_close)
            req.keepConnection = 1;
        FCGX_Finish_r(&req);
        if (bare_fast_close && !keep && req.ipcFd >= 0) {
            char trash[512];

            shutdown(req.ipcFd, SHUT_WR);
            while (recv(req.ipcFd, trash, sizeof trash, MSG_DONTWAIT) > 0)
                ;
            close(req.ipcFd);
            req.ipcFd = -1;
        }
    }
    return NULL;
}

/* A child: threads-1 more threads and itself serve until SIGTERM kills it. */
static void
bare_worker(int listen_fd, long threads)
{
    static int fd;
    pthread_t t;

    prctl(PR_SET_NAME, "bare-fcgi", 0, 0, 0);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    fd = listen_fd;
    for (long i = 1; i < threads; i++)
        if (pthread_create(&t, NULL, bare_serve, &fd) != 0)
            break;
    bare_serve(&fd);
    _exit(0);
}

/* argv[i] as a number from 1 to max into *out; 0 or -1. */
static int
bare_count(const char *arg, long max, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(arg, &end, 10);
    return errno || !*arg || *end || *out < 1 || *out > max ? -1 : 0;
}

int
main(int argc, char **argv)
{
    pid_t kids[BARE_MAX_WORKERS];
    struct sigaction sa;
    long workers = 2, threads = 1;
    int fd;

    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: bare_fcgi SOCKET_PATH [WORKERS [THREADS [CLOSE]]]\n");
        return 64;
    }
    if (argc >= 3 && bare_count(argv[2], BARE_MAX_WORKERS, &workers)) {
        fprintf(stderr, "bare_fcgi: WORKERS must be 1 to %d\n", BARE_MAX_WORKERS);
        return 64;
    }
    if (argc >= 4 && bare_count(argv[3], BARE_MAX_THREADS, &threads)) {
        fprintf(stderr, "bare_fcgi: THREADS must be 1 to %d\n", BARE_MAX_THREADS);
        return 64;
    }
    if (argc == 5 && strcmp(argv[4], "fast") != 0 && strcmp(argv[4], "libfcgi") != 0) {
        fprintf(stderr, "bare_fcgi: CLOSE must be fast or libfcgi\n");
        return 64;
    }
    bare_fast_close = argc == 5 && strcmp(argv[4], "fast") == 0;
    if (FCGX_Init() != 0)
        return 70;
    fd = bare_listen(argv[1]);
    if (fd < 0)
        return 71;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bare_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    for (long i = 0; i < workers; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            bare_worker(fd, threads);
        if (kids[i] < 0) {
            fprintf(stderr, "bare_fcgi: fork: %s\n", strerror(errno));
            workers = i;
            bare_stop = 1;
            break;
        }
    }
    while (!bare_stop)
        pause();
    for (long i = 0; i < workers; i++)
        kill(kids[i], SIGTERM);
    for (long i = 0; i < workers; i++)
        waitpid(kids[i], NULL, 0);
    unlink(argv[1]);
    close(fd);
    return 0;
}
