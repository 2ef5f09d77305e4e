/*
 * mox-queue.c: `mox-queue [-config mox.conf] [-loglevel level] COMMAND
 * [flags] [args]`, the same as `mox queue COMMAND ...` (spec/queue.md 13):
 * list and change the outgoing queue, hold rules, retired messages,
 * suppressions and webhooks, directly on the data directory.
 */
#include "cmd_queue.h"
#include "tool_cli.h"
#include "lib/banned.h"

int
main(int argc, char **argv)
{
	return tool_main("mox-queue", "queue", cmd_queue_main, argc, argv);
}
