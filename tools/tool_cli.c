/*
 * tool_cli.c: the src/cli.h functions for the operator tools, so a tool
 * behaves like `mox <command>` (DESIGN.md "Command line") with its own name
 * in messages: "mox-backup: what went wrong", "usage: mox-backup ...".
 * Main thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "tool_cli.h"
#include "lib/banned.h"

struct cli_globals cli;

void
cli_errorf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_usage(const char *words, const char *args)
{
	(void)words;
	fprintf(stderr, "usage: %s [-config mox.conf] [-loglevel level]%s%s\n",
	    cli.prog, *args ? " " : "", args);
	return CLI_USAGE;
}

int
tool_main(const char *prog, const char *word,
    int (*fn)(int argc, char **argv), int argc, char **argv)
{
	char **args;
	int i = 1, n = 0, rc;

	cli.prog = prog;
	cli.config_path = getenv("MOXCONF");
	if (cli.config_path == NULL || *cli.config_path == '\0')
		cli.config_path = "config/mox.conf";
	log_init();
	log_set_format(LOG_FORMAT_HUMAN);
	for (; i < argc; i++) {
		const char *f = argv[i];

		if (f[0] != '-')
			break;
		if (f[1] == '-')
			f++;
		if (strcmp(f, "-config") == 0 && i + 1 < argc) {
			cli.config_path = argv[++i];
		} else if (strcmp(f, "-loglevel") == 0 && i + 1 < argc) {
			enum log_level l;

			if (log_level_parse(argv[++i], &l) == -1) {
				cli_errorf("unknown log level \"%s\"", argv[i]);
				return CLI_USAGE;
			}
			log_set_level(NULL, l);
			cli.loglevel_set = true;
		} else
			break;
	}
	/* The handler sees its command word first, as under mox. */
	args = xcalloc((size_t)(argc - i) + 2, sizeof(*args));
	args[n++] = (char *)word;
	for (; i < argc; i++)
		args[n++] = argv[i];
	rc = fn(n, args);
	free(args);
	return rc;
}
