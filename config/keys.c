/* The schema: every key of tdhook.yaml in one row, with its type, limits
 * and default.  The walk (config.c), freeing and printing (print.c) are
 * driven by it, so a key is added here and nowhere else. */
#include "autoconf.h"

#include "config/config_private.h"
#include "core/util/log.h"

static const enum_val_t log_levels[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
    {"error", LOG_ERROR}, {NULL, 0}};
static const enum_val_t log_formats[] = {
    {"text", LOG_TEXT}, {"json", LOG_JSON}, {NULL, 0}};
static const enum_val_t starttls_vals[] = {
    {"auto", STARTTLS_AUTO}, {"required", STARTTLS_REQUIRED},
    {"off", STARTTLS_OFF}, {NULL, 0}};
static const enum_val_t count_vals[] = {
    {"assets", CONFIG_COUNT_ASSETS}, {"bulk_items", CONFIG_COUNT_BULK_ITEMS},
    {NULL, 0}};
static const enum_val_t repeat_vals[] = {
    {"daily", REPEAT_DAILY}, {"only_new", REPEAT_ONLY_NEW}, {NULL, 0}};
static const enum_val_t exchange_vals[] = {
    {"graph", EXCHANGE_GRAPH}, {"ews", EXCHANGE_EWS}, {"none", EXCHANGE_NONE}, {NULL, 0}};
static const enum_val_t language_vals[] = {
    {"en", LANGUAGE_EN}, {"nl", LANGUAGE_NL}, {NULL, 0}};
static const enum_val_t csv_separator_vals[] = {
    {"auto", CSV_SEPARATOR_AUTO}, {",", CSV_SEPARATOR_COMMA}, {";", CSV_SEPARATOR_SEMICOLON},
    {NULL, 0}};
static const enum_val_t direction_vals[] = {
    {"to_exchange", DIRECTION_TO_EXCHANGE}, {"both", DIRECTION_BOTH}, {NULL, 0}};
static const enum_val_t refused_vals[] = {
    {"report", REFUSED_REPORT}, {"decline", REFUSED_DECLINE}, {NULL, 0}};
static const enum_val_t ews_auth_vals[] = {
    {"ntlm", EWS_AUTH_NTLM}, {"basic", EWS_AUTH_BASIC}, {NULL, 0}};

static const field_t log_fields[] = {
    LOGLEVEL("level", log_level, log_levels, "info"),
    ENUM("format", log_format, log_formats, "text"),
    END};

static const field_t hooks_fields[] = {
    SECRET_LIST("tokens", hook_tokens, FL_REQ, SLOT_TOKENS),
    SIZE("max_body", max_body, 1, "1MiB"),
    END};

static const field_t topdesk_fields[] = {
    STR("url", topdesk.url, FL_REQ | FL_HTTP | FL_STRIP, NULL),
    STR("username", topdesk.username, FL_REQ, NULL),
    SECRET("application_password", topdesk.application_password, FL_REQ, SLOT_TOPDESK),
    DURATION("timeout", topdesk.timeout_ms, 1, "30s"),
    INT("max_parallel", topdesk.max_parallel, 1, 64, "4"),
    END};

static const field_t mail_fields[] = {
    STR("smtp_url", mail.smtp_url, FL_SMTP, "smtp://127.0.0.1:25"),
    ENUM("starttls", mail.starttls, starttls_vals, "auto"),
    STR("from", mail.from, FL_REQ | FL_MAILBOX, NULL),
    STR("username", mail.username, 0, NULL),
    SECRET("password", mail.password, 0, SLOT_MAIL),
    ENUM("language", mail.language, language_vals, "en"),
    STR("timezone", mail.timezone, FL_TZ, NULL),
    END};

static const field_t stock_fields[] = {
    STR("minimum_field", stock_check.minimum_field, 0, "Minimale voorraad"),
    FLAGS("count", stock_check.count, count_vals, "assets, bulk_items"),
    ADDRESSES("to", stock_check.to),
    ENUM("repeat", stock_check.repeat, repeat_vals, "daily"),
    BOOL("always_mail", stock_check.always_mail, "false"),
    ENUM("csv_separator", stock_check.csv_separator, csv_separator_vals, "auto"),
    END};

static const field_t room_mapping_fields[] = {
    STR("topdesk_field", reservations.room_field, 0, "optionalFields1.text1"),
    MAP("static", reservations.room_static),
    END};

static const field_t notify_fields[] = {
    BOOL("requester", reservations.notify_requester, "true"),
    ADDRESSES("to", reservations.notify_to),
    END};

/* notifications comes before the keys it decides on. */
static const field_t outlook_fields[] = {
    BOOL("notifications", reservations.outlook.notifications, "true"),
    STR("callback_url", reservations.outlook.callback_url, FL_REQ_NOTIFY | FL_HTTP | FL_STRIP,
        NULL),
    DURATION("resync", reservations.outlook.resync_ms, 10000, "15m"),
    INT("window_days", reservations.outlook.window_days, 1, 1080, "180"),
    STR("fallback_requester", reservations.outlook.fallback_requester, FL_REQ_BOTH, NULL),
    STR("cancellation_reason", reservations.outlook.cancellation_reason, FL_REQ_BOTH, NULL),
    ENUM("when_refused", reservations.outlook.when_refused, refused_vals, "report"),
    END};

static const field_t reservations_fields[] = {
    ENUM("exchange", reservations.exchange, exchange_vals, "graph"),
    ENUM("direction", reservations.direction, direction_vals, "to_exchange"),
    SECTION("outlook", outlook_fields),
    SECTION("room_mapping", room_mapping_fields),
    STR("match_key", reservations.match_key, 0, "externalLink"),
    STR("subject", reservations.subject, 0, "{description} ({number})"),
    STR("body", reservations.body, 0, "Booked in TOPdesk by {requester} for {persons} persons."),
    INT("reconcile_days", reservations.reconcile_days, 1, 366, "14"),
    SECTION("notify", notify_fields),
    END};

static const field_t graph_fields[] = {
    STR("tenant", graph.tenant, FL_REQ_GRAPH, NULL),
    STR("client_id", graph.client_id, FL_REQ_GRAPH, NULL),
    SECRET("client_secret", graph.client_secret, FL_REQ_GRAPH, SLOT_GRAPH),
    STR("login_url", graph.login_url, FL_HTTP | FL_STRIP, "https://login.microsoftonline.com"),
    STR("graph_url", graph.graph_url, FL_HTTP | FL_STRIP, "https://graph.microsoft.com/v1.0"),
    END};

static const field_t ews_fields[] = {
    STR("url", ews.url, FL_REQ_EWS | FL_HTTP, NULL),
    STR("username", ews.username, FL_REQ_EWS, NULL),
    SECRET("password", ews.password, FL_REQ_EWS, SLOT_EWS),
    ENUM("auth", ews.auth, ews_auth_vals, "ntlm"),
    DURATION("status_frequency", ews.status_frequency_ms, 60000, "5m"),
    END};

static const field_t queue_fields[] = {
    INT("max_jobs", queue.max_jobs, 1, 100000000, "10000"),
    INT("max_attempts", queue.max_attempts, 1, 1000, "12"),
    DURATION("retry_base", queue.retry_base_ms, 1, "10s"),
    DURATION("retry_max", queue.retry_max_ms, 1, "1h"),
    INT("runners", queue.runners, 0, 16, "2"),
    DURATION("keep_done", queue.keep_done_ms, 0, "7d"),
    END};

/* The order matters: reservations.exchange is known before graph and ews
 * are checked for required keys. */
const field_t root_fields[] = {
    STR("state_dir", state_dir, 0, "/var/lib/tdhook"),
    SECTION("log", log_fields),
    SECTION("hooks", hooks_fields),
    ADDRESSES("admin_mail", admin_mail),
    SECTION("topdesk", topdesk_fields),
    SECTION("mail", mail_fields),
    SECTION("stock_check", stock_fields),
    SECTION("reservations", reservations_fields),
    SECTION("graph", graph_fields),
    SECTION("ews", ews_fields),
    SECTION("queue", queue_fields),
    END};
