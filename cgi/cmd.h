/* Subcommands of the CLI.  Each returns a sysexits.h code. */
#ifndef TDHOOK_CMD_H
#define TDHOOK_CMD_H

#include <json-c/json.h>

#include "config/config.h"
#include "core/queue/queue.h"

/* tdhook queue list|show ID|retry ID|drop ID: argv[0] is "list" etc. */
int cmd_queue(const config_t *cfg, int argc, char **argv);

/* tdhook stock-check [--dry-run] [--json]: argv[0] is "stock-check". */
int cmd_stock_check(const config_t *cfg, int argc, char **argv);

/* tdhook sync-reservation ID|NUMBER [--dry-run] */
int cmd_sync_reservation(const config_t *cfg, int argc, char **argv);
/* tdhook reconcile [--days N] [--dry-run] */
int cmd_reconcile(const config_t *cfg, int argc, char **argv);

/* tdhook doctor [--no-mail]: exit 0 when nothing FAILs. */
int cmd_doctor(const config_t *cfg, int argc, char **argv);

/* The queue of state_dir for a command (mails go through it); NULL after
 * saying why on stderr. */
queue_t *cmd_open_queue(const config_t *cfg);
/* A job-like command's end: result printed as JSON (put) and EX_OK, or err
 * (freed) said and EX_TEMPFAIL for "try again", EX_UNAVAILABLE else.  rc:
 * 0 done, 1 or 3 try again (RESERVATION_* and OUTLOOK_* alike). */
int cmd_finish(int rc, json_object *result, char *err, const char *what);

/* tdhook subscriptions [list|sync] [--json] */
int cmd_subscriptions(const config_t *cfg, int argc, char **argv);
/* tdhook pull [--room MAILBOX] [--full] [--dry-run] */
int cmd_pull(const config_t *cfg, int argc, char **argv);

#endif
