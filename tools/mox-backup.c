/*
 * mox-backup.c: `mox-backup [-config mox.conf] [-verbose] DESTDIR`, the same
 * as `mox backup` (spec/store.md 16): a consistent copy of the data
 * directory while the server runs.
 */
#include "cmd_store.h"
#include "tool_cli.h"
#include "lib/banned.h"

int
main(int argc, char **argv)
{
	return tool_main("mox-backup", "backup", cmd_backup, argc, argv);
}
