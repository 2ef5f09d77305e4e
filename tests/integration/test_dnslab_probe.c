/*
 * test_dnslab_probe.c: a small stand-in for the `mox` binary that runs
 * only the DNS, SPF and DNSBL command handlers (src/cmd_dns.c), plus an
 * "iprev IP" command, so test_dnslab.sh can drive them against a real
 * resolver before they are part of `mox`. Same output and exit codes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_dns.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "mailauth/iprev.h"
#include "lib/banned.h"

struct cli_globals cli = { .prog = "mox" };

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
	fprintf(stderr, "usage: mox %s%s%s\n", words, *args ? " " : "", args);
	return CLI_USAGE;
}

/* iprev -resolver ADDR IP */
static int
cmd_iprev(int argc, char **argv)
{
	const char *servers[1];
	struct dns_params p;
	struct dns_resolver *r;
	struct iprev_result res;
	struct buf err;

	if (argc != 4 || strcmp(argv[1], "-resolver") != 0)
		return cli_usage("iprev", "-resolver ip:port IP");
	memset(&p, 0, sizeof(p));
	servers[0] = argv[2];
	p.servers = servers;
	p.nservers = 1;
	buf_init(&err, 1024);
	r = dns_resolver_new(&p, &err);
	if (r == NULL) {
		cli_errorf("%s", err.data);
		buf_release(&err);
		return 1;
	}
	buf_release(&err);
	iprev_check(r, argv[3], &res);
	printf("status: %s\n", iprev_status_name(res.status));
	if (res.name != NULL)
		printf("name: %s\n", res.name);
	printf("(%s dnssec)\n", res.authentic ? "with" : "without");
	iprev_result_release(&res);
	dns_resolver_free(r);
	return 0;
}

static const struct {
	const char *w0, *w1;
	int (*fn)(int, char **);
} cmds[] = {
	{ "dns", "lookup", cmd_dns_lookup },
	{ "spf", "check", cmd_spf_check },
	{ "spf", "lookup", cmd_spf_lookup },
	{ "spf", "parse", cmd_spf_parse },
	{ "dnsbl", "check", cmd_dnsbl_check },
	{ "dnsbl", "checkhealth", cmd_dnsbl_checkhealth },
};

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "iprev") == 0)
		return cmd_iprev(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (argc >= 3 && strcmp(argv[1], cmds[i].w0) == 0 &&
		    strcmp(argv[2], cmds[i].w1) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: test_dnslab_probe dns|spf|dnsbl|iprev ...\n");
	return CLI_USAGE;
}
