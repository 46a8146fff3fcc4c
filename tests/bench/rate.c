/* A fixed-rate HTTP/1.1 load generator for tests/bench/front.sh (Debian's
 * wrk has no -R).  Open loop: request i is due at start + i / RATE, whether
 * or not earlier ones have been answered, and its latency is counted from
 * that due time, so a server that stalls is not flattered by a client that
 * waits for it (no coordinated omission).  CONNS keep-alive connections,
 * one request at a time on each, epoll; small enough to keep up with nginx
 * answering `return 204` on one core.
 *
 *   cc -O2 -o rate tests/bench/rate.c
 *   rate [-c CONNS] [-X METHOD] [-d BODY] [-H HEADER]... http://IP:PORT/PATH RATE SECONDS
 *
 * Prints one line:
 *   rate=R sent=N ok=N non2xx=N errors=N achieved=X/s p50_ms=A p99_ms=B max_ms=C
 * ok counts 2xx answers; latencies are over all answered requests.  An
 * answer must carry Content-Length (or be a 204/304); chunked answers count
 * as errors.  Exit 0, or 1 when more than 1 % of the requests got no
 * answer.
 * Not installed, not part of make check. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RATE_MAX_CONNS 1024
#define RATE_IN_MAX 65536
#define RATE_REQ_MAX 65536

typedef struct {
    int fd;
    int busy;            /* a request is in flight */
    double due;          /* when it was due, seconds */
    size_t out_off;      /* bytes of the request written */
    size_t in_len;
    char in[RATE_IN_MAX];
} rate_conn_t;

static struct sockaddr_in rate_addr;
static char rate_req[RATE_REQ_MAX];
static size_t rate_req_len;
static int rate_epfd;

static double
rate_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
rate_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
rate_number(const char *s, const char *what)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v <= 0) {
        fprintf(stderr, "rate: %s must be a positive number, not \"%s\"\n", what, s);
        exit(64);
    }
    return v;
}

static void
rate_usage(void)
{
    fprintf(stderr, "usage: rate [-c CONNS] [-X METHOD] [-d BODY] [-H HEADER]... "
                    "http://IP:PORT/PATH RATE SECONDS\n");
    exit(64);
}

/* Opens c->fd, connected and non-blocking, watched for input; -1 on
 * failure. */
static int
rate_connect(rate_conn_t *c, int index)
{
    struct epoll_event ev;
    int one = 1;

    c->in_len = 0;
    c->out_off = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&rate_addr, sizeof rate_addr) < 0)
        goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0)
        goto fail;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = (unsigned)index;
    if (epoll_ctl(rate_epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        goto fail;
    return 0;
fail:
    close(c->fd);
    c->fd = -1;
    return -1;
}

static void
rate_close(rate_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->busy = 0;
}

/* Writes what is left of the request; EPOLLOUT is watched while some is.
 * 0, or -1 when the connection failed. */
static int
rate_flush(rate_conn_t *c, int index)
{
    struct epoll_event ev;

    while (c->out_off < rate_req_len) {
        ssize_t n = write(c->fd, rate_req + c->out_off, rate_req_len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return -1;
        c->out_off += (size_t)n;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (c->out_off < rate_req_len ? EPOLLOUT : 0);
    ev.data.u32 = (unsigned)index;
    return epoll_ctl(rate_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Looks for a whole answer in c->in: 1 with *status set, 0 when more is
 * needed, -1 when it cannot be framed (no Content-Length). */
static int
rate_parse(rate_conn_t *c, int *status)
{
    char *end, *p;
    size_t head, body = 0;
    long v;

    if (c->in_len < 12)
        return 0;
    c->in[c->in_len < RATE_IN_MAX ? c->in_len : RATE_IN_MAX - 1] = '\0';
    end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return c->in_len >= RATE_IN_MAX - 1 ? -1 : 0;
    head = (size_t)(end - c->in) + 4;
    if (strncmp(c->in, "HTTP/1.", 7) != 0)
        return -1;
    v = strtol(c->in + 9, NULL, 10);
    if (v < 100 || v > 599)
        return -1;
    *status = (int)v;
    if (v != 204 && v != 304) {
        int found = 0;
        for (p = c->in; p < end; p++) {
            if (*p == '\n' && strncasecmp(p + 1, "Content-Length:", 15) == 0) {
                char *q;
                long long n = strtoll(p + 16, &q, 10);
                if (n < 0 || n > RATE_IN_MAX)
                    return -1;
                body = (size_t)n;
                found = 1;
                break;
            }
        }
        if (!found)
            return -1;
    }
    if (c->in_len < head + body)
        return 0;
    if (c->in_len > head + body)
        return -1;   /* nothing was pipelined: more is garbage */
    c->in_len = 0;
    return 1;
}

int
main(int argc, char **argv)
{
    const char *method = "GET", *body = NULL, *url, *hostport, *path;
    const char *headers[32];
    rate_conn_t *conns;
    int *idle, nidle = 0;
    double rate, secs, start, *lat, deadline;
    long nconns = 32, nheaders = 0, sent = 0, ok = 0, non2xx = 0, errors = 0, answered = 0;
    long total, i;
    char host[64], portbuf[8];
    int argi = 1, off;

    while (argi < argc && argv[argi][0] == '-') {
        const char *opt = argv[argi];
        if (argi + 1 >= argc)
            rate_usage();
        if (strcmp(opt, "-c") == 0) {
            nconns = (long)rate_number(argv[argi + 1], "CONNS");
            if (nconns > RATE_MAX_CONNS)
                nconns = RATE_MAX_CONNS;
        } else if (strcmp(opt, "-X") == 0) {
            method = argv[argi + 1];
        } else if (strcmp(opt, "-d") == 0) {
            body = argv[argi + 1];
        } else if (strcmp(opt, "-H") == 0 && nheaders < 32) {
            headers[nheaders++] = argv[argi + 1];
        } else {
            rate_usage();
        }
        argi += 2;
    }
    if (argc - argi != 3)
        rate_usage();
    url = argv[argi];
    rate = rate_number(argv[argi + 1], "RATE");
    secs = rate_number(argv[argi + 2], "SECONDS");
    total = (long)(rate * secs);
    if (total < 1)
        total = 1;

    /* http://IP:PORT/PATH */
    if (strncmp(url, "http://", 7) != 0)
        rate_usage();
    hostport = url + 7;
    path = strchr(hostport, '/');
    {
        const char *colon = memchr(hostport, ':', path ? (size_t)(path - hostport) : strlen(hostport));
        size_t hl = colon ? (size_t)(colon - hostport) : 0;
        size_t pl = colon ? (size_t)((path ? path : colon + strlen(colon)) - colon - 1) : 0;
        if (!colon || hl == 0 || hl >= sizeof host || pl == 0 || pl >= sizeof portbuf)
            rate_usage();
        memcpy(host, hostport, hl);
        host[hl] = '\0';
        memcpy(portbuf, colon + 1, pl);
        portbuf[pl] = '\0';
    }
    if (!path)
        path = "/";
    memset(&rate_addr, 0, sizeof rate_addr);
    rate_addr.sin_family = AF_INET;
    rate_addr.sin_port = htons((unsigned short)rate_number(portbuf, "PORT"));
    if (inet_pton(AF_INET, host, &rate_addr.sin_addr) != 1)
        rate_usage();

    off = snprintf(rate_req, sizeof rate_req, "%s %s HTTP/1.1\r\nHost: %s:%s\r\n", method, path,
                   host, portbuf);
    for (i = 0; i < nheaders && off > 0 && (size_t)off < sizeof rate_req; i++)
        off += snprintf(rate_req + off, sizeof rate_req - (size_t)off, "%s\r\n", headers[i]);
    if (off > 0 && (size_t)off < sizeof rate_req)
        off += snprintf(rate_req + off, sizeof rate_req - (size_t)off,
                        "Content-Length: %zu\r\n\r\n%s", body ? strlen(body) : 0,
                        body ? body : "");
    if (off <= 0 || (size_t)off >= sizeof rate_req) {
        fprintf(stderr, "rate: the request is too big\n");
        return 64;
    }
    rate_req_len = (size_t)off;

    rate_epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)nconns, sizeof *conns);
    idle = calloc((size_t)nconns, sizeof *idle);
    lat = calloc((size_t)total, sizeof *lat);
    if (rate_epfd < 0 || !conns || !idle || !lat)
        return 70;
    for (i = 0; i < nconns; i++) {
        if (rate_connect(&conns[i], (int)i) < 0) {
            fprintf(stderr, "rate: cannot connect to %s: %s\n", url, strerror(errno));
            return 69;
        }
        idle[nidle++] = (int)i;
    }

    start = rate_now();
    deadline = start + secs + 30;
    while (answered + errors < total) {
        struct epoll_event evs[256];
        double now = rate_now();
        int n, timeout;

        if (now > deadline)
            break;
        /* Start every request that is due while a connection is free; one
         * that waits for a connection keeps its due time. */
        while (sent < total && nidle > 0 && start + (double)sent / rate <= now) {
            int k = idle[--nidle];
            rate_conn_t *c = &conns[k];

            if (c->fd < 0 && rate_connect(c, k) < 0) {
                errors++;
                sent++;
                idle[nidle++] = k;
                continue;
            }
            c->busy = 1;
            c->due = start + (double)sent / rate;
            c->out_off = 0;
            c->in_len = 0;
            sent++;
            if (rate_flush(c, k) < 0) {
                errors++;
                rate_close(c);
                idle[nidle++] = k;
            }
        }
        if (sent < total && nidle > 0) {
            double wait = start + (double)sent / rate - rate_now();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000.0);
        } else {
            timeout = 10;
        }
        n = epoll_wait(rate_epfd, evs, 256, timeout);
        for (int e = 0; e < n; e++) {
            int k = (int)evs[e].data.u32, status = 0, rc = 0;
            rate_conn_t *c = &conns[k];

            if (c->fd < 0)
                continue;
            if (evs[e].events & EPOLLOUT && rate_flush(c, k) < 0)
                rc = -1;
            while (rc == 0 && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t got = read(c->fd, c->in + c->in_len, RATE_IN_MAX - 1 - c->in_len);
                if (got < 0 && errno == EINTR)
                    continue;
                if (got < 0 && errno == EAGAIN)
                    break;
                if (got <= 0 || !c->busy) {
                    rc = -1;
                    break;
                }
                c->in_len += (size_t)got;
                rc = rate_parse(c, &status);
                if (rc == 1)
                    break;
            }
            if (rc == 1) {
                lat[answered++] = rate_now() - c->due;
                if (status >= 200 && status < 300)
                    ok++;
                else
                    non2xx++;
                c->busy = 0;
                idle[nidle++] = k;
            } else if (rc < 0) {
                /* an idle connection the server closed is in idle[] already:
                 * it reconnects when next used; listing it twice would send
                 * two requests on it (and overrun idle[]) */
                int was_busy = c->busy;

                if (was_busy)
                    errors++;
                rate_close(c);
                if (was_busy)
                    idle[nidle++] = k;
            }
        }
    }

    qsort(lat, (size_t)answered, sizeof *lat, rate_cmp);
    {
        double took = rate_now() - start;
        double p50 = answered ? lat[(long)((double)(answered - 1) * 0.50)] : 0;
        double p99 = answered ? lat[(long)((double)(answered - 1) * 0.99)] : 0;
        double max = answered ? lat[answered - 1] : 0;
        printf("rate=%.0f sent=%ld ok=%ld non2xx=%ld errors=%ld achieved=%.0f/s "
               "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
               rate, sent, ok, non2xx, errors, (double)answered / (took > secs ? took : secs),
               p50 * 1e3, p99 * 1e3, max * 1e3);
    }
    for (i = 0; i < nconns; i++)
        rate_close(&conns[i]);
    close(rate_epfd);
    free(conns);
    free(idle);
    free(lat);
    return (total - answered) * 100 > total ? 1 : 0;
}
