/*
 * mox-verifydata.c: `mox-verifydata [-fix] [-skip-size-check] DATADIR`, the
 * same as `mox verifydata` (spec/store.md 17): check a data directory or a
 * backup of one.
 */
#include "cmd_store.h"
#include "tool_cli.h"
#include "lib/banned.h"

int
main(int argc, char **argv)
{
	return tool_main("mox-verifydata", "verifydata", cmd_verifydata, argc,
	    argv);
}
