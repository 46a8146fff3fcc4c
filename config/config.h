/* tdhook's configuration: the YAML schema of DESIGN.md, loaded with libyaml.
 *
 * Every key of the schema is known here, with its type and default.  Unknown
 * keys, wrong types and missing required keys are errors naming the file,
 * line and key.  Any string may contain ${ENV_VAR}; any secret `x` may be
 * given as `x_file` instead (the file's content, one trailing newline
 * dropped).  YAML anchors and aliases are rejected; the file may be at most
 * 1 MiB. */
#ifndef TDHOOK_CONFIG_H
#define TDHOOK_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    char **v;    /* allocated strings */
    size_t n;
} config_list_t;

typedef struct {
    char *key;
    char *value;
} config_pair_t;

typedef struct {
    config_pair_t *v;
    size_t n;
} config_map_t;

typedef enum { STARTTLS_AUTO, STARTTLS_REQUIRED, STARTTLS_OFF } config_starttls_t;
typedef enum { REPEAT_DAILY, REPEAT_ONLY_NEW } config_repeat_t;
typedef enum { EXCHANGE_GRAPH, EXCHANGE_EWS, EXCHANGE_NONE } config_exchange_t;
typedef enum { DIRECTION_TO_EXCHANGE, DIRECTION_BOTH } config_direction_t;
typedef enum { REFUSED_REPORT, REFUSED_DECLINE } config_refused_t;
typedef enum { EWS_AUTH_NTLM, EWS_AUTH_BASIC } config_ews_auth_t;
typedef enum { LANGUAGE_EN, LANGUAGE_NL } config_language_t;
typedef enum { CSV_SEPARATOR_AUTO, CSV_SEPARATOR_COMMA, CSV_SEPARATOR_SEMICOLON } config_csv_separator_t;

#define CONFIG_COUNT_ASSETS 1u
#define CONFIG_COUNT_BULK_ITEMS 2u

typedef struct {
    char *path;              /* the file it was loaded from */

    char *state_dir;         /* /var/lib/tdhook */
    int log_level;           /* log_level_t, LOG_INFO */
    int log_format;          /* log_format_t, LOG_TEXT */

    config_list_t hook_tokens;    /* secret; at least one, none empty */
    size_t max_body;              /* bytes, 1 MiB */

    config_list_t admin_mail;

    struct {
        char *url;                 /* required, no trailing slash */
        char *username;            /* required */
        char *application_password; /* secret, required */
        long timeout_ms;           /* 30 s */
        int max_parallel;          /* 4, 1..64 */
    } topdesk;

    struct {
        char *smtp_url;            /* smtp://127.0.0.1:25 */
        config_starttls_t starttls;
        char *from;                /* required */
        char *username;            /* optional: SMTP AUTH */
        char *password;            /* secret, optional */
        config_language_t language;   /* en: every mail tdhook sends */
        char *timezone;            /* IANA name for times in mails; NULL: the system's */
    } mail;

    struct {
        char *minimum_field;       /* "Minimale voorraad" */
        unsigned count;            /* CONFIG_COUNT_* bits, both */
        config_list_t to;
        config_repeat_t repeat;
        int always_mail;           /* mail even when nothing is short; 0 */
        config_csv_separator_t csv_separator;   /* auto: ";" for nl, "," for en */
    } stock_check;

    struct {
        config_exchange_t exchange;
        config_direction_t direction;   /* to_exchange; both: Outlook bookings too */
        struct {
            int notifications;         /* 1: subscriptions; 0: the timed resync alone */
            char *callback_url;        /* how Graph/Exchange reach tdhook, no trailing slash */
            long resync_ms;            /* 15 min, at least 10 s */
            int window_days;           /* 180 */
            char *fallback_requester;  /* TOPdesk person (e-mail or id) */
            char *cancellation_reason; /* name or id */
            config_refused_t when_refused;
        } outlook;
        char *room_field;          /* room_mapping.topdesk_field, optionalFields1.text1 */
        config_map_t room_static;  /* room_mapping.static */
        char *match_key;           /* externalLink */
        char *subject;
        char *body;
        int reconcile_days;        /* 14 */
        int notify_requester;      /* 1 */
        config_list_t notify_to;
    } reservations;

    struct {
        char *tenant;
        char *client_id;
        char *client_secret;       /* secret */
        char *login_url;
        char *graph_url;
    } graph;

    struct {
        char *url;
        char *username;
        char *password;            /* secret */
        config_ews_auth_t auth;
        long status_frequency_ms;  /* 5 min: a push subscription's heartbeat (1 min to 1 day) */
    } ews;

    struct {
        int max_jobs;              /* 10000: a full queue answers 429 */
        int max_attempts;          /* 12, then the job is a dead letter */
        long retry_base_ms;        /* 10 s, doubled each attempt, with jitter */
        long retry_max_ms;         /* 1 h */
        int runners;               /* 2 job runner processes under serve */
        long keep_done_ms;         /* 7 d: finished jobs stay visible at /jobs/<id> */
    } queue;
} config_t;

#define CONFIG_OK 0
#define CONFIG_ENOENT 1     /* the file cannot be opened */
#define CONFIG_EINVAL 2     /* syntax, schema or value error */

/* Loads and validates the file at path.  On success *out is allocated (free
 * with config_free()).  On failure *errstr is an allocated message
 * "FILE:LINE: KEY: what is wrong" that never contains a secret.  Warnings
 * (a file readable by others) go to the log. */
int config_load(const char *path, config_t **out, char **errstr);
/* The same from a buffer; name stands for the file in messages. */
int config_load_buffer(const char *name, const char *data, size_t len,
                       config_t **out, char **errstr);
void config_free(config_t *cfg);
/* Writes the effective configuration as YAML with every secret masked. */
void config_print(const config_t *cfg, FILE *fp);
/* The path to use: -c FILE, else $TDHOOK_CONFIG, else the sysconfdir default. */
const char *config_default_path(void);

/* Value parsers shared with the CLI.  Each returns 0 on success, -1 on an
 * invalid value.  Sizes: "1MiB" "512KiB" "1MB" "2048"; durations: "30s"
 * "500ms" "5m" "2h" "7d" or a plain number of seconds. */
int config_parse_size(const char *s, size_t *out);
int config_parse_duration(const char *s, long *out_ms);

#endif
