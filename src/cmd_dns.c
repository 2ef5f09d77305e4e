/*
 * cmd_dns.c: `mox dns lookup`, `mox spf check|lookup|parse` and `mox
 * dnsbl check|checkhealth` (cmd_dns.h): ask DNS through our resolver and
 * print answers, SPF results and block list results for people; and the
 * resolver choice every DNS-using command shares (-resolver, else
 * mox.conf DNSResolvers, else /etc/resolv.conf). DNS data is untrusted:
 * control and non-ASCII bytes are printed escaped.
 * Thread rule: runs on the command's main thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cmd_dns.h"
#include "config/config.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "mailauth/dnsbl.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

int
cmd_dns_opts_parse(int argc, char **argv, int nwords, struct cmd_dns_opts *o)
{
	int i = nwords;

	memset(o, 0, sizeof(*o));
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[1] == '-')
			a++;
		if (strcmp(a, "-resolver") != 0 || i + 1 >= argc ||
		    o->nservers == CMD_DNS_SERVERS_MAX)
			return -1;
		o->servers[o->nservers++] = argv[i + 1];
		i += 2;
	}
	o->args = argv + i;
	o->nargs = argc - i;
	return 0;
}

/* mox.conf's DNSResolvers into *p when the config file is there and
 * loads; *c_out then holds the strings until the caller frees it. A
 * missing file is not an error; one that does not load is reported and
 * the system resolvers are used. */
static void
config_resolvers(struct dns_params *p, struct config **c_out)
{
	struct stat st;
	struct buf err;
	char *nl;

	*c_out = NULL;
	if (cli.config_path == NULL || cli.config_path[0] == '\0')
		return;
	if (stat(cli.config_path, &st) == -1 && errno == ENOENT)
		return;
	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(cli.config_path, c_out, &err) == -1) {
		nl = strchr(err.data, '\n');
		if (nl != NULL)
			*nl = '\0';
		cli_errorf("not using DNSResolvers of %s (%s); using "
			   "/etc/resolv.conf", cli.config_path, err.data);
		*c_out = NULL;
	} else if ((*c_out)->st->dns_resolvers.n > 0) {
		p->servers = (const char *const *)(*c_out)->st->dns_resolvers.v;
		p->nservers = (*c_out)->st->dns_resolvers.n;
	}
	buf_release(&err);
}

struct dns_resolver *
cmd_dns_resolver_open(const struct cmd_dns_opts *o)
{
	struct config *c = NULL;
	struct dns_params p;
	struct dns_resolver *r;
	struct buf err;

	memset(&p, 0, sizeof(p));
	if (o->nservers > 0) {
		p.servers = o->servers;
		p.nservers = o->nservers;
	} else {
		config_resolvers(&p, &c);
	}
	buf_init(&err, 1024);
	r = dns_resolver_new(&p, &err);
	if (r == NULL)
		cli_errorf("dns resolver: %s%s", err.data, c != NULL ?
		    " (check DNSResolvers in mox.conf)" : "");
	buf_release(&err);
	config_free(c);
	return r;
}

/* Print s with bytes outside printable ASCII as \DDD. */
static void
print_safe(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			printf("\\%03u", c);
		else
			putchar(c);
	}
}

static void
print_dnssec(bool authentic)
{
	printf("(%s dnssec)\n", authentic ? "with" : "without");
}

static void
print_rr(const struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_MX:
		printf("%u ", rr->pref);
		break;
	case DNS_SRV:
		printf("%u %u %u ", rr->pref, rr->weight, rr->port);
		break;
	case DNS_TLSA:
		printf("%u %u %u ", rr->usage, rr->selector, rr->mtype);
		for (size_t i = 0; i < rr->datalen; i++)
			printf("%02x", rr->data[i]);
		putchar('\n');
		return;
	case DNS_TXT:
		putchar('"');
		print_safe(rr->text, rr->textlen);
		printf("\"\n");
		return;
	case DNS_A:
	case DNS_AAAA:
	case DNS_NS:
	case DNS_CNAME:
	case DNS_PTR:
		break;
	}
	if (rr->type == DNS_MX && rr->text[0] == '\0')
		printf(".");
	print_safe(rr->text, strlen(rr->text));
	putchar('\n');
}

/* The name to ask for: for PTR an IP address becomes its in-addr.arpa
 * or ip6.arpa name (RFC 1035 3.5, RFC 3596 2.5); else name as given. */
static void
lookup_name(enum dns_type t, const char *name, struct buf *out)
{
	char rev[DNS_NAME_MAX + 1];
	bool v6 = false;

	if (t == DNS_PTR && dns_ip_reverse(name, rev, sizeof(rev), &v6) == 0)
		buf_addf(out, "%s.%s", rev, v6 ? "ip6.arpa" : "in-addr.arpa");
	else
		buf_adds(out, name);
}

int
cmd_dns_lookup(int argc, char **argv)
{
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	struct dns_answer ans;
	struct buf name;
	enum dns_type t;
	int rc = 1;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 2)
		return cli_usage("dns lookup",
		    "[-resolver ip[:port]] TYPE NAME");
	if (dns_type_parse(o.args[0], &t) == -1) {
		cli_errorf("unknown record type %s (known: A AAAA MX TXT PTR "
			   "CNAME TLSA SRV NS)", o.args[0]);
		return CLI_USAGE;
	}
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	buf_init(&name, BUF_NOMAX);
	lookup_name(t, o.args[1], &name);
	dns_lookup(r, name.data, t, &ans);
	for (size_t i = 0; i < ans.ncname; i++)
		printf("cname %s\n", ans.cname_chain[i]);
	switch (ans.result) {
	case DNS_OK:
		for (size_t i = 0; i < ans.n; i++)
			print_rr(&ans.rr[i]);
		print_dnssec(ans.authentic);
		rc = 0;
		break;
	case DNS_NOTFOUND:
		printf("no records\n");
		print_dnssec(ans.authentic);
		cli_errorf("%s %s: not found (%s)", name.data, dns_type_name(t),
		    ans.why != NULL ? ans.why : "");
		break;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		cli_errorf("%s %s: %s (%s%s)", name.data, dns_type_name(t),
		    dns_result_name(ans.result), ans.why != NULL ? ans.why : "",
		    ans.ede >= 0 ? ", extended dns error" : "");
		if (ans.ede >= 0)
			fprintf(stderr, "extended dns error code %d\n", ans.ede);
		break;
	}
	dns_answer_release(&ans);
	buf_release(&name);
	dns_resolver_free(r);
	return rc;
}

int
cmd_spf_check(int argc, char **argv)
{
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	struct spf_args a;
	struct spf_result res;
	struct buf hdr;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 2)
		return cli_usage("spf check",
		    "[-resolver ip[:port]] DOMAIN IP");
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	memset(&a, 0, sizeof(a));
	a.remote_ip = o.args[1];
	a.mailfrom_local = "postmaster";
	a.mailfrom_domain = o.args[0];
	a.helo = o.args[0];
	spf_verify(r, &a, &res);
	printf("status: %s\n", spf_status_name(res.status));
	if (res.mechanism != NULL)
		printf("mechanism: %s\n", res.mechanism);
	if (res.explanation != NULL)
		printf("explanation: %s\n", res.explanation);
	if (res.problem != NULL)
		printf("problem: %s\n", res.problem);
	printf("lookups: %u (void %u)\n", res.lookups, res.void_lookups);
	print_dnssec(res.authentic);
	buf_init(&hdr, BUF_NOMAX);
	spf_received_header(&res, &a, "localhost", &hdr);
	printf("%s\n", hdr.data);
	buf_release(&hdr);
	spf_result_release(&res);
	dns_resolver_free(r);
	return 0;
}

int
cmd_spf_lookup(int argc, char **argv)
{
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	struct spf_record rec;
	char *txt = NULL;
	const char *why = NULL;
	bool authentic = false;
	enum spf_status st;
	int rc = 1;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 1)
		return cli_usage("spf lookup", "[-resolver ip[:port]] DOMAIN");
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	st = spf_lookup(r, o.args[0], &rec, &txt, &authentic, &why);
	if (st == SPF_PASS) {
		print_safe(txt, strlen(txt));
		putchar('\n');
		print_dnssec(authentic);
		rc = 0;
	} else {
		cli_errorf("%s: %s: %s", o.args[0], spf_status_name(st), why);
	}
	free(txt);
	spf_record_release(&rec);
	dns_resolver_free(r);
	return rc;
}

int
cmd_spf_parse(int argc, char **argv)
{
	struct spf_record rec;
	const char *why = NULL;
	struct buf out;

	if (argc != 3)
		return cli_usage("spf parse", "TXT");
	if (spf_parse(span_of_cstr(argv[2]), &rec, &why) == -1) {
		cli_errorf("invalid spf record: %s", why);
		return 1;
	}
	buf_init(&out, BUF_NOMAX);
	spf_record_format(&rec, &out);
	printf("%s\n", out.data);
	buf_release(&out);
	spf_record_release(&rec);
	return 0;
}

int
cmd_dnsbl_check(int argc, char **argv)
{
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	struct dnsbl_result res;
	int rc;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 2)
		return cli_usage("dnsbl check",
		    "[-resolver ip[:port]] ZONE IP");
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	dnsbl_lookup(r, o.args[0], o.args[1], &res);
	printf("status: %s\n", dnsbl_status_name(res.status));
	if (res.reason != NULL)
		printf("reason: %s\n", res.reason);
	rc = res.status == DNSBL_TEMPERROR ? 1 : 0;
	if (rc != 0)
		cli_errorf("%s: %s", res.name != NULL ? res.name : o.args[1],
		    res.why != NULL ? res.why : "temporary error");
	dnsbl_result_release(&res);
	dns_resolver_free(r);
	return rc;
}

int
cmd_dnsbl_checkhealth(int argc, char **argv)
{
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	const char *why = NULL;
	enum dnsbl_status st;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 1)
		return cli_usage("dnsbl checkhealth",
		    "[-resolver ip[:port]] ZONE");
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	st = dnsbl_check_health(r, o.args[0], &why);
	dns_resolver_free(r);
	if (st == DNSBL_PASS) {
		printf("zone %s is healthy\n", o.args[0]);
		return 0;
	}
	cli_errorf("zone %s is %s: %s", o.args[0],
	    st == DNSBL_FAIL ? "unhealthy" : "not checked", why);
	return 1;
}
