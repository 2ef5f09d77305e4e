/*
 * cmd_queue.h: the `mox queue` commands (spec/queue.md 13, spec/config.md
 * 7), also run as the tool `mox-queue`: listing and changing queued
 * messages, hold rules, retired messages, suppressions and webhooks.
 *
 * The handlers follow src/cli.h: argv[0..k-1] are the command words
 * ("queue", "list"), then flags and arguments. Errors go to stderr through
 * cli_errorf(); usage errors return CLI_USAGE (2), failures 1. They work
 * on the data directory of the config directly (queue/index.db), whether
 * or not a server runs; a running queue runner notices changes within a
 * second. Main thread; they block on disk and SQLite.
 */
#ifndef CMD_QUEUE_H
#define CMD_QUEUE_H

#include <stddef.h>

#include "cli.h"

int cmd_queue_holdrules_list(int argc, char **argv);
int cmd_queue_holdrules_add(int argc, char **argv);
int cmd_queue_holdrules_remove(int argc, char **argv);
int cmd_queue_list(int argc, char **argv);
int cmd_queue_hold(int argc, char **argv);
int cmd_queue_unhold(int argc, char **argv);
int cmd_queue_schedule(int argc, char **argv);
int cmd_queue_transport(int argc, char **argv);
int cmd_queue_requiretls(int argc, char **argv);
int cmd_queue_fail(int argc, char **argv);
int cmd_queue_drop(int argc, char **argv);
int cmd_queue_dump(int argc, char **argv);
int cmd_queue_retired_list(int argc, char **argv);
int cmd_queue_retired_print(int argc, char **argv);
int cmd_queue_suppress_list(int argc, char **argv);
int cmd_queue_suppress_add(int argc, char **argv);
int cmd_queue_suppress_remove(int argc, char **argv);
int cmd_queue_suppress_lookup(int argc, char **argv);
int cmd_queue_webhook_list(int argc, char **argv);
int cmd_queue_webhook_schedule(int argc, char **argv);
int cmd_queue_webhook_cancel(int argc, char **argv);
int cmd_queue_webhook_print(int argc, char **argv);
int cmd_queue_webhook_retired_list(int argc, char **argv);
int cmd_queue_webhook_retired_print(int argc, char **argv);

/* The queue commands with their words ("queue list"), synopsis and help,
 * in the order `mox help` shows them. Borrowed, static. */
extern const struct cli_command cmd_queue_commands[];
extern const size_t cmd_queue_ncommands;

/* `mox-queue`: argv[0] is "queue", then the words after "queue" and the
 * arguments; dispatches by cmd_queue_commands, prints the commands for
 * "help" or no words. Returns the exit status. */
int cmd_queue_main(int argc, char **argv);

#endif
