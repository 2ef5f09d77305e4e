/*
 * cmd_dns.h: command line handlers for DNS, SPF and DNSBL checks
 * (`mox dns lookup`, `mox spf check|lookup|parse`, `mox dnsbl
 * check|checkhealth`), and the resolver options all DNS-using commands
 * share. argv[0..k-1] are the command words. Each DNS-using command
 * accepts "-resolver ip[:port]" (repeatable) before its arguments to ask
 * those servers; without it the DNSResolvers of mox.conf (-config,
 * $MOXCONF or config/mox.conf) are used when that file exists and loads,
 * else the servers in /etc/resolv.conf. Exit 0 on success, 1 on failure
 * (reason on stderr), 2 on usage errors. Main thread only.
 */
#ifndef CMD_DNS_H
#define CMD_DNS_H

#include <stddef.h>

struct dns_resolver;

#define CMD_DNS_SERVERS_MAX 8 /* -resolver flags per command */

/* A command's -resolver flags and its positional arguments. */
struct cmd_dns_opts {
	const char *servers[CMD_DNS_SERVERS_MAX]; /* borrowed from argv */
	size_t nservers;
	char **args; /* positional arguments after the options, in argv */
	int nargs;
};

/* Skip nwords command words, then read "-resolver ADDR" options (also
 * "--resolver"; "--" ends them). Returns 0, or -1 on an unknown flag, a
 * missing value or too many resolvers (a usage error). */
int cmd_dns_opts_parse(int argc, char **argv, int nwords,
    struct cmd_dns_opts *o);
/* A resolver for a command: the -resolver servers of o, else mox.conf's
 * DNSResolvers (see above), else /etc/resolv.conf. Returns it (free with
 * dns_resolver_free()), or NULL after printing the reason. Blocks on
 * disk (the config). */
struct dns_resolver *cmd_dns_resolver_open(const struct cmd_dns_opts *o);

int cmd_dns_lookup(int argc, char **argv);       /* dns lookup TYPE NAME;
						  * for PTR NAME may be an
						  * IP address */
int cmd_spf_check(int argc, char **argv);        /* spf check DOMAIN IP */
int cmd_spf_lookup(int argc, char **argv);       /* spf lookup DOMAIN */
int cmd_spf_parse(int argc, char **argv);        /* spf parse TXT */
int cmd_dnsbl_check(int argc, char **argv);      /* dnsbl check ZONE IP */
int cmd_dnsbl_checkhealth(int argc, char **argv); /* dnsbl checkhealth ZONE */

#endif
