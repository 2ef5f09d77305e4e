/*
 * cli.h: what the `mox` command handlers share: global flags, error
 * output, usage, and the entry points of the larger commands.
 */
#ifndef CLI_H
#define CLI_H

#include <stdarg.h>
#include <stdbool.h>

#include "lib/compat.h"

#define CLI_USAGE 2 /* exit status for usage errors */

struct cli_globals {
	const char *prog;        /* "mox", or the tool name */
	const char *config_path; /* -config, $MOXCONF or config/mox.conf */
	bool loglevel_set;       /* -loglevel given: overrides the config */
	bool pedantic;
	bool check_consistency;
};

extern struct cli_globals cli;

/* A command: its words ("config test"), argument synopsis, help text and
 * handler. The handler gets argv starting at the first command word. */
struct cli_command {
	const char *words;
	const char *args;
	const char *help;
	int (*fn)(int argc, char **argv);
};

/* "mox: message" on stderr. */
void cli_errorf(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Print "usage: mox words args" on stderr; returns CLI_USAGE. */
int cli_usage(const char *words, const char *args);
/* Connect to the running server's ctl socket (data dir from the config);
 * prints the reason and returns NULL when that fails. */
struct ctl_conn *cli_ctl_dial(void);

int cmd_serve(int argc, char **argv);
int cmd_localserve(int argc, char **argv);

#endif
