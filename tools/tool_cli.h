/*
 * tool_cli.h: what the operator tools (mox-backup, mox-verifydata) share:
 * the src/cli.h functions for a program that is not `mox`, and one main
 * that runs a `mox` command handler under the tool's own name.
 */
#ifndef TOOLS_TOOL_CLI_H
#define TOOLS_TOOL_CLI_H

/* Run fn as command word under program name prog: global flags -config
 * and -loglevel first (as for mox), then the command's own arguments.
 * Returns the exit status. */
int tool_main(const char *prog, const char *word,
    int (*fn)(int argc, char **argv), int argc, char **argv);

#endif
