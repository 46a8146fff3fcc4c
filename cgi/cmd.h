/* Subcommands of the CLI.  Each returns a sysexits.h code. */
#ifndef TDHOOK_CMD_H
#define TDHOOK_CMD_H

#include "config/config.h"

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

/* tdhook subscriptions [list|sync] [--json] */
int cmd_subscriptions(const config_t *cfg, int argc, char **argv);
/* tdhook pull [--room MAILBOX] [--full] [--dry-run] */
int cmd_pull(const config_t *cfg, int argc, char **argv);

#endif
