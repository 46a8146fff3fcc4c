/* tdhook: the command line, and the switch between CGI and the commands. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "cgi/app.h"
#include "cgi/cmd.h"
#include "cgi/front.h"
#include "cgi/serve.h"
#include "config/config.h"
#include "core/jobs/texts.h"
#include "core/util/log.h"
#include "core/util/metrics.h"
#include "core/util/testseam.h"
#include "core/util/xalloc.h"

static const char usage_text[] =
    "usage: tdhook [-c FILE] COMMAND [ARGS]\n"
    "\n"
    "commands (tdhook COMMAND --help says more):\n"
    "  serve [--socket unix:PATH|tcp:HOST:PORT] [--workers N] [--threads N]\n"
    "                        run the FastCGI server (no --socket: inherited socket)\n"
    "  check-config          validate the configuration, print it with secrets masked\n"
    "  queue list            list queued, running, dead and finished jobs\n"
    "  queue show ID         print one job\n"
    "  queue retry ID        queue a dead letter again\n"
    "  queue drop ID         remove a job\n"
    "  doctor [--no-mail]    check every TOPdesk, Exchange and mail preparation\n"
    "  stock-check [--dry-run] [--json]\n"
    "  sync-reservation ID|NUMBER [--dry-run]\n"
    "  reconcile [--days N] [--dry-run]\n"
    "  subscriptions [list|sync] [--json]\n"
    "                        the room calendars' notification subscriptions\n"
    "  pull [--room MAILBOX] [--full] [--dry-run]\n"
    "                        apply bookings made in Outlook to TOPdesk now\n"
    "\n"
    "options:\n"
    "  -c, --config FILE     configuration (default $TDHOOK_CONFIG, else " SYSCONFDIR
    "/tdhook/tdhook.yaml)\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n"
    "\n"
    "Run by a web server as a CGI program (GATEWAY_INTERFACE set), tdhook\n"
    "serves one request.\n";

static int
usage(FILE *fp, int rc)
{
    fputs(usage_text, fp);
    return rc;
}

static config_t *
load_config(const char *path)
{
    config_t *cfg = NULL;
    char *err = NULL;

    struct stat st;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        log_error("configuration: %s is a directory; -c takes the configuration file, such "
                  "as %s/tdhook.yaml", path, path);
        return NULL;
    }
    if (config_load(path, &cfg, &err) != CONFIG_OK) {
        log_error("configuration: %s", err);
        free(err);
        return NULL;
    }
    log_setup((log_level_t)cfg->log_level, (log_format_t)cfg->log_format);
    text_setup(cfg->mail.language == LANGUAGE_NL ? TEXT_NL : TEXT_EN, cfg->mail.timezone);
    return cfg;
}

/* CGI: one request; a broken configuration answers 503, never a secret. */
static int
run_cgi(void)
{
    config_t *cfg = load_config(config_default_path());
    queue_limits_t limits;
    app_t app = {NULL, NULL};
    char *err = NULL;

    if (!cfg) {
        static const char msg[] =
            "Status: 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n"
            "{\"error\":{\"code\":\"config_error\",\"message\":\"tdhook is not configured; "
            "see the server log\"}}\n";
        fwrite(msg, 1, sizeof msg - 1, stdout);
        return EX_CONFIG;
    }
    limits = (queue_limits_t){cfg->queue.max_jobs, cfg->queue.max_attempts,
                              cfg->queue.retry_base_ms, cfg->queue.retry_max_ms,
                              cfg->queue.keep_done_ms};
    app.cfg = cfg;
    app.queue = queue_open(cfg->state_dir, &limits, &err);
    if (!app.queue) {
        log_error("queue: %s", err);
        free(err);
    }
    front_cgi(&app);
    if (app.queue)
        queue_close(app.queue);
    config_free(cfg);
    return EX_OK;
}

/* A number from 1 to max for a serve option into *out; 0, or -1 after
 * saying what is wrong. */
static int
serve_count(const char *option, const char *arg, long max, int *out)
{
    char *end;
    long n = strtol(arg, &end, 10);

    if (!*arg || *end || n < 1 || n > max) {
        fprintf(stderr, "tdhook: %s takes a number from 1 to %ld\n", option, max);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int
run_serve(const config_t *cfg, int argc, char **argv)
{
    serve_opts_t opts = {NULL, 2, 16};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            opts.socket = argv[++i];
        } else if (strncmp(argv[i], "--socket=", 9) == 0) {
            opts.socket = argv[i] + 9;
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            if (serve_count("--workers", argv[++i], 128, &opts.workers))
                return EX_USAGE;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            if (serve_count("--threads", argv[++i], 256, &opts.threads))
                return EX_USAGE;
        } else {
            fprintf(stderr, "tdhook: serve: unknown argument \"%s\"\n", argv[i]);
            return usage(stderr, EX_USAGE);
        }
    }
    if (opts.socket && strncmp(opts.socket, "unix:", 5) != 0 && strncmp(opts.socket, "tcp:", 4) != 0) {
        fprintf(stderr, "tdhook: --socket takes unix:PATH or tcp:HOST:PORT, not \"%s\"\n", opts.socket);
        return EX_USAGE;
    }
    return serve_run(cfg, &opts);
}

static int
run_check_config(const config_t *cfg, int argc)
{
    if (argc > 1) {
        fprintf(stderr, "tdhook: check-config takes no arguments\n");
        return EX_USAGE;
    }
    config_print(cfg, stdout);
    fprintf(stderr, "tdhook: %s is valid\n", cfg->path);
    return EX_OK;
}

/* The commands: their usage line, what --help says, and the arguments
 * they take, checked before the configuration is read, so that a wrong
 * option is a usage error (64) with or without a configuration file. */
typedef struct {
    const char *name;
    const char *usage;
    const char *help;
    const char *const flags[4];     /* options without a value */
    const char *const valued[4];    /* options that take one */
    int min_args, max_args;         /* words that are no option */
} cmd_spec_t;

static const cmd_spec_t cmd_specs[] = {
    {"serve", "serve [--socket unix:PATH|tcp:HOST:PORT] [--workers N] [--threads N]",
     "Runs the FastCGI server that nginx sends the webhooks to, and the job\n"
     "runners.  Without --socket it uses the socket it inherits (systemd\n"
     "socket activation, spawn-fcgi).\n"
     "  --socket unix:PATH|tcp:HOST:PORT  listen here instead\n"
     "  --workers N   HTTP worker processes (1 to 128, default 2)\n"
     "  --threads N   request threads a worker (1 to 256, default 16)\n",
     {NULL}, {"--socket", "--workers", "--threads", NULL}, 0, 0},
    {"check-config", "check-config",
     "Checks the configuration and prints it as tdhook reads it, every key\n"
     "with its value or default, secrets masked.\n",
     {NULL}, {NULL}, 0, 0},
    {"queue", "queue list | show ID | retry ID | drop ID",
     "The durable queue: list the jobs (queued, running, retrying, dead,\n"
     "done), show one, queue a dead letter again, or remove a job.\n",
     {NULL}, {NULL}, 1, 2},
    {"doctor", "doctor [--no-mail]",
     "Checks every preparation in TOPdesk, Exchange and the mail server and\n"
     "prints one line a check: OK, WARN or FAIL with what to fix.\n"
     "  --no-mail   do not send the test mail to admin_mail\n",
     {"--no-mail", NULL}, {NULL}, 0, 0},
    {"stock-check", "stock-check [--dry-run] [--json]",
     "Runs the stock check now and mails the digest, as the webhook does.\n"
     "  --dry-run   print the report, mail nothing, keep the repeat state\n"
     "  --json      print the report as JSON\n",
     {"--dry-run", "--json", NULL}, {NULL}, 0, 0},
    {"sync-reservation", "sync-reservation ID|NUMBER [--dry-run]",
     "Brings one TOPdesk reservation (its id or its number, such as\n"
     "\"R 2406 012\") into the room calendars now.\n"
     "  --dry-run   say what would change, change nothing\n",
     {"--dry-run", NULL}, {NULL}, 1, 1},
    {"reconcile", "reconcile [--days N] [--dry-run]",
     "Compares the reservations of the coming days in every mapped room with\n"
     "the room calendars and repairs what drifted.\n"
     "  --days N    how many days ahead (default reservations.reconcile_days)\n"
     "  --dry-run   say what would change, change nothing\n",
     {"--dry-run", NULL}, {"--days", NULL}, 0, 0},
    {"subscriptions", "subscriptions [list|sync] [--json]",
     "The notification subscription of each mapped room's calendar\n"
     "(reservations.direction: both).  list: backend, id, expiry and last\n"
     "notification of each room; sync: create the missing, renew those past\n"
     "half their life, remove the stale.  `tdhook serve` syncs them itself.\n"
     "  --json      print JSON instead of a table\n",
     {"--json", NULL}, {NULL}, 0, 1},
    {"pull", "pull [--room MAILBOX] [--full] [--dry-run]",
     "Reads what changed in the room calendars (the bookings people made in\n"
     "Outlook) and applies it to TOPdesk now, as the timed resync does.\n"
     "  --room MAILBOX  this room only\n"
     "  --full      read the rooms' calendars afresh, not only the changes\n"
     "  --dry-run   say what would change, change nothing\n",
     {"--full", "--dry-run", NULL}, {"--room", NULL}, 0, 0},
};

static const cmd_spec_t *
cmd_spec(const char *name)
{
    for (size_t i = 0; i < sizeof cmd_specs / sizeof cmd_specs[0]; i++)
        if (strcmp(cmd_specs[i].name, name) == 0)
            return &cmd_specs[i];
    return NULL;
}

static int
cmd_listed(const char *const *list, const char *arg, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(*list, arg, len) == 0)
            return 1;
    return 0;
}

/* Checks args[1..n) against spec: 0, 1 when --help was asked for (its text
 * is printed), or EX_USAGE after saying what is wrong. */
static int
cmd_check_args(const cmd_spec_t *spec, int n, char **args)
{
    int words = 0;

    for (int i = 1; i < n; i++) {
        const char *a = args[i], *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: tdhook [-c FILE] %s\n\n%s", spec->usage, spec->help);
            return 1;
        }
        if (a[0] != '-' || !a[1]) {
            words++;
        } else if (cmd_listed(spec->flags, a, strlen(a))) {
            continue;
        } else if (cmd_listed(spec->valued, a, len)) {
            if (!eq && ++i >= n) {
                fprintf(stderr, "tdhook: %s: %s needs a value\nusage: tdhook %s\n", spec->name,
                        a, spec->usage);
                return EX_USAGE;
            }
        } else {
            fprintf(stderr, "tdhook: %s: unknown option \"%s\"\nusage: tdhook %s\n",
                    spec->name, a, spec->usage);
            return EX_USAGE;
        }
    }
    if (words < spec->min_args || words > spec->max_args) {
        fprintf(stderr, "tdhook: %s: %s\nusage: tdhook %s\n", spec->name,
                words < spec->min_args ? "an argument is missing" : "too many arguments",
                spec->usage);
        return EX_USAGE;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *config_path = NULL;
    char **args;
    int nargs = 0, rc;
    config_t *cfg;

    log_setup(LOG_INFO, LOG_TEXT);
    if (getenv("GATEWAY_INTERFACE") && argc == 1)
        return run_cgi();

    /* -c may stand before or after the command name. */
    args = xcalloc((size_t)argc + 1, sizeof *args);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tdhook: %s needs a file name\n", argv[i]);
                free(args);
                return EX_USAGE;
            }
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else if ((strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) &&
                   nargs == 0) {
            free(args);
            return usage(stdout, EX_OK);
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            free(args);
            printf("tdhook %s%s\n", PACKAGE_VERSION,
                   testseam_enabled() ? " (a test build: TDHOOK_TEST_* seams compiled in)" : "");
            return EX_OK;
        } else {
            args[nargs++] = argv[i];
        }
    }
    if (nargs == 0) {
        free(args);
        return usage(stderr, EX_USAGE);
    }
    if (!cmd_spec(args[0])) {
        fprintf(stderr, "tdhook: unknown command \"%s\"\n", args[0]);
        free(args);
        return usage(stderr, EX_USAGE);
    }
    rc = cmd_check_args(cmd_spec(args[0]), nargs, args);
    if (rc) {
        free(args);
        return rc == 1 ? EX_OK : rc;
    }
    if (!config_path)
        config_path = config_default_path();
    cfg = load_config(config_path);
    if (!cfg) {
        free(args);
        return EX_CONFIG;
    }

    if (strcmp(args[0], "serve") == 0) {
        rc = run_serve(cfg, nargs, args);
    } else if (strcmp(args[0], "check-config") == 0) {
        rc = run_check_config(cfg, nargs);
    } else if (strcmp(args[0], "queue") == 0) {
        rc = nargs < 2 ? usage(stderr, EX_USAGE) : cmd_queue(cfg, nargs - 1, args + 1);
    } else if (strcmp(args[0], "stock-check") == 0) {
        rc = cmd_stock_check(cfg, nargs, args);
    } else if (strcmp(args[0], "sync-reservation") == 0) {
        rc = cmd_sync_reservation(cfg, nargs, args);
    } else if (strcmp(args[0], "reconcile") == 0) {
        rc = cmd_reconcile(cfg, nargs, args);
    } else if (strcmp(args[0], "doctor") == 0) {
        rc = cmd_doctor(cfg, nargs, args);
    } else if (strcmp(args[0], "subscriptions") == 0) {
        rc = cmd_subscriptions(cfg, nargs, args);
    } else if (strcmp(args[0], "pull") == 0) {
        rc = cmd_pull(cfg, nargs, args);
    } else {
        fprintf(stderr, "tdhook: %s is not available in this version yet\n", args[0]);
        rc = EX_UNAVAILABLE;
    }
    config_free(cfg);
    free(args);
    return rc;
}
