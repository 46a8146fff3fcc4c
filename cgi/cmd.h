/* Subcommands of the CLI.  Each returns a sysexits.h code. */
#ifndef TDHOOK_CMD_H
#define TDHOOK_CMD_H

#include "config/config.h"

/* tdhook queue list|show ID|retry ID|drop ID: argv[0] is "list" etc. */
int cmd_queue(const config_t *cfg, int argc, char **argv);

#endif
