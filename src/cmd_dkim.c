/*
 * cmd_dkim.c: the "mox dkim" and "mox dmarc" commands (spec auth.md 4,
 * 5; RFC 6376, RFC 8463, RFC 7489). Input files and DNS answers are
 * untrusted and go through the mailauth parsers. The commands that ask
 * DNS take -resolver and fall back like cmd_dns.h says; `dkim sign`
 * signs through dkim_conf.h as submission does. Runs on the command's
 * single thread; DNS lookups block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "cli.h"
#include "cmd_dkim.h"
#include "cmd_dns.h"
#include "config/config.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_conf.h"
#include "mailauth/dmarc.h"
#include "mailauth/publicsuffix.h"
#include "mailauth/spf.h"
#include "message/message.h"
#include "lib/banned.h"

#define CMD_MSG_MAX (128 * 1024 * 1024) /* messages read by these commands */

static int
read_fd(int fd, struct buf *b)
{
	char chunk[65536];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_add(b, chunk, (size_t)n) == -1)
			return -1;
	return n < 0 ? -1 : 0;
}

static struct publicsuffix_list *
psl_load(void)
{
	const char *path = getenv("MOX_PUBLICSUFFIX");
	struct publicsuffix_list *l;
	struct buf err;

	buf_init(&err, 4096);
	l = publicsuffix_load(path, &err);
	if (l == NULL)
		cli_errorf("public suffix list: %s", err.data);
	buf_release(&err);
	return l;
}

static int
gen(enum dkim_keytype t)
{
	struct buf out, err;
	int rc = 1;

	buf_init(&out, 1 << 16);
	buf_init(&err, 4096);
	if (dkim_key_generate(t, &out, &err) == -1) {
		cli_errorf("%s", err.data);
		goto out;
	}
	if (io_write_all(1, out.data, out.len) == -1) {
		cli_errorf("writing key failed");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(out.data, out.len);
	buf_release(&out);
	buf_release(&err);
	return rc;
}

int
cmd_dkim_genrsa(int argc, char **argv)
{
	(void)argv;
	if (argc != 2)
		return cli_usage("dkim genrsa", "");
	return gen(DKIM_KEY_RSA);
}

int
cmd_dkim_gened25519(int argc, char **argv)
{
	(void)argv;
	if (argc != 2)
		return cli_usage("dkim gened25519", "");
	return gen(DKIM_KEY_ED25519);
}

int
cmd_dkim_txt(int argc, char **argv)
{
	struct dkim_key *k = NULL;
	struct buf pem, out, err;
	int rc = 1;

	(void)argv;
	if (argc != 2)
		return cli_usage("dkim txt", "< privatekey");
	buf_init(&pem, 1 << 16);
	buf_init(&out, 1 << 16);
	buf_init(&err, 4096);
	if (read_fd(0, &pem) == -1) {
		cli_errorf("reading private key failed");
		goto out;
	}
	if (dkim_key_load_pem(span_of_buf(&pem), &k, &err) == -1 ||
	    dkim_key_txt(k, &out, &err) == -1) {
		cli_errorf("%s", err.data);
		goto out;
	}
	printf("%s\n", out.data);
	rc = 0;
out:
	dkim_key_free(k);
	explicit_bzero(pem.data, pem.len);
	buf_release(&pem);
	buf_release(&out);
	buf_release(&err);
	return rc;
}

int
cmd_dkim_lookup(int argc, char **argv)
{
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	struct dkim_record *rec = NULL;
	struct dns_answer ans;
	struct buf name;
	const char *why = NULL;
	bool authentic = false;
	enum dkim_status st;
	int rc = 1;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 2)
		return cli_usage("dkim lookup",
		    "[-resolver ip[:port]] selector domain");
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	st = dkim_lookup_record(r, o.args[0], o.args[1], &rec, &authentic,
	    &why);
	if (st != DKIM_PASS) {
		cli_errorf("looking up key record: %s (%s)", why,
		    dkim_status_name(st));
		goto out;
	}
	buf_init(&name, DNS_NAME_MAX + 2);
	buf_addf(&name, "%s._domainkey.%s", o.args[0], o.args[1]);
	memset(&ans, 0, sizeof(ans));
	if (dns_lookup(r, name.data, DNS_TXT, &ans) == DNS_OK)
		for (size_t i = 0; i < ans.n; i++)
			printf("%s\n", ans.rr[i].text);
	dns_answer_release(&ans);
	buf_release(&name);
	printf("# key type %s, %u bits%s%s, %s\n",
	    rec->keytype == DKIM_KEY_RSA ? "rsa" : "ed25519", rec->bits,
	    rec->testing ? ", testing" : "", rec->revoked ? ", revoked" : "",
	    authentic ? "with dnssec" : "without dnssec");
	rc = 0;
out:
	dkim_record_free(rec);
	dns_resolver_free(r);
	return rc;
}

static void
print_results(const struct dkim_result *res, size_t n)
{
	if (n == 0)
		printf("no dkim signatures\n");
	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig *s = res[i].sig;

		printf("signature %zu: %s", i, dkim_status_name(res[i].status));
		if (s != NULL)
			printf(" d=%s s=%s a=%s", s->domain, s->selector,
			    s->algorithm);
		if (res[i].why != NULL)
			printf(" (%s)", res[i].why);
		printf("\n");
	}
}

int
cmd_dkim_verify(int argc, char **argv)
{
	struct cmd_dns_opts dopts;
	struct dkim_verify_opts o;
	struct dkim_result *res = NULL;
	struct dns_resolver *r = NULL;
	struct buf msg, err;
	const char *why = NULL;
	size_t n = 0;
	int rc = 1;

	if (cmd_dns_opts_parse(argc, argv, 2, &dopts) == -1 ||
	    dopts.nargs != 1)
		return cli_usage("dkim verify",
		    "[-resolver ip[:port]] message");
	buf_init(&msg, CMD_MSG_MAX);
	buf_init(&err, 4096);
	memset(&o, 0, sizeof(o));
	if (io_read_file(dopts.args[0], &msg, &err) == -1) {
		cli_errorf("%s", err.data);
		goto out;
	}
	r = cmd_dns_resolver_open(&dopts);
	if (r == NULL)
		goto out;
	o.now = (int64_t)time(NULL);
	o.psl = psl_load();
	if (dkim_verify(r, &o, span_of_buf(&msg), &res, &n, &why) == -1) {
		cli_errorf("verifying: %s", why);
		goto out;
	}
	print_results(res, n);
	rc = 0;
out:
	publicsuffix_free((struct publicsuffix_list *)o.psl);
	dkim_results_free(res, n);
	dns_resolver_free(r);
	buf_release(&msg);
	buf_release(&err);
	return rc;
}

/* Domain of the single From address of msg, lower-cased; NULL if none. */
static char *
from_domain(struct span msg, char **localpart_out)
{
	struct message_addr_list l = { NULL, 0 };
	const struct message_address *a;
	struct span v;
	const char *why = NULL;
	char *d = NULL;

	if (message_header_find(span_of(msg.p, message_header_len(msg)),
	    "From", &v) == -1)
		return NULL;
	if (message_addr_parse(v, &l, &why) == 0 &&
	    (a = message_addr_first(&l)) != NULL && a->host != NULL) {
		d = xstrdup(a->host);
		for (char *p = d; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (localpart_out != NULL)
			*localpart_out = xstrdup(a->user != NULL ? a->user
							       : "");
	}
	message_addr_list_release(&l);
	return d;
}

int
cmd_dkim_sign(int argc, char **argv)
{
	struct config *c = NULL;
	const struct config_domain *dom;
	struct buf msg, err, out;
	char *domain = NULL, *local = NULL;
	const char *why = NULL;
	int rc = 1;

	if (argc != 3)
		return cli_usage("dkim sign", "message");
	buf_init(&msg, CMD_MSG_MAX);
	buf_init(&out, CMD_MSG_MAX);
	buf_init(&err, 4096);
	if (io_read_file(argv[2], &msg, &err) == -1) {
		cli_errorf("%s", err.data);
		goto out;
	}
	if (config_load(cli.config_path, &c, &err) == -1) {
		cli_errorf("loading config: %s", err.data);
		goto out;
	}
	/* Spec 4.3: the From header domain selects the keys, not MAIL FROM */
	domain = from_domain(span_of_buf(&msg), &local);
	if (domain == NULL) {
		cli_errorf("message has no from address with a domain");
		goto out;
	}
	dom = config_domain_find(c, domain);
	if (dom == NULL) {
		cli_errorf("domain %s not configured", domain);
		goto out;
	}
	if (dom->dkim.sign.n == 0) {
		cli_errorf("domain %s has no dkim selectors to sign with",
		    domain);
		goto out;
	}
	/* The same signatures submission adds (d=, i=, selectors). */
	if (dkim_conf_sign(c, local, domain, (int64_t)time(NULL),
	    span_of_buf(&msg), &out, &why, &err) != 1) {
		cli_errorf("signing: %s", err.len > 0 ? err.data : why);
		goto out;
	}
	/* Keep the message's line ends: LF-only input gets LF headers. */
	if (memchr(msg.data, '\r', msg.len) == NULL) {
		size_t j = 0;

		for (size_t i = 0; i < out.len; i++)
			if (out.data[i] != '\r')
				out.data[j++] = out.data[i];
		buf_truncate(&out, j);
	}
	if (io_write_all(1, out.data, out.len) == -1 ||
	    io_write_all(1, msg.data, msg.len) == -1) {
		cli_errorf("writing message failed");
		goto out;
	}
	rc = 0;
out:
	free(domain);
	free(local);
	config_free(c);
	buf_release(&msg);
	buf_release(&out);
	buf_release(&err);
	return rc;
}

static void
print_record(const struct dmarc_lookup *l)
{
	printf("%s\n", l->txt);
	printf("# policy domain %s, %s\n", l->policy_domain,
	    l->authentic ? "with dnssec" : "without dnssec");
}

int
cmd_dmarc_lookup(int argc, char **argv)
{
	struct publicsuffix_list *psl = NULL;
	struct cmd_dns_opts o;
	struct dns_resolver *r;
	struct dmarc_lookup l;
	int rc = 1;

	if (cmd_dns_opts_parse(argc, argv, 2, &o) == -1 || o.nargs != 1)
		return cli_usage("dmarc lookup",
		    "[-resolver ip[:port]] domain");
	r = cmd_dns_resolver_open(&o);
	if (r == NULL)
		return 1;
	psl = psl_load();
	dmarc_lookup(r, psl, o.args[0], &l);
	if (!l.has_record) {
		cli_errorf("no dmarc record: %s (%s)",
		    l.why != NULL ? l.why : "", dmarc_status_name(l.status));
		goto out;
	}
	print_record(&l);
	rc = 0;
out:
	dmarc_lookup_release(&l);
	publicsuffix_free(psl);
	dns_resolver_free(r);
	return rc;
}

int
cmd_dmarc_verify(int argc, char **argv)
{
	struct publicsuffix_list *psl = NULL;
	struct cmd_dns_opts dopts;
	struct dns_resolver *r = NULL;
	struct dkim_result *dk = NULL;
	struct dkim_verify_opts o;
	struct spf_args sa;
	struct spf_result spf;
	struct dmarc_input in;
	struct dmarc_result dr;
	struct authres ar;
	struct buf msg, hdr;
	char *domain = NULL, *mf_local = NULL, *mf_domain = NULL;
	const char *why = NULL, *at;
	size_t ndk = 0;
	uint16_t rnd = 0;
	int rc = 1;

	if (cmd_dns_opts_parse(argc, argv, 2, &dopts) == -1 ||
	    dopts.nargs != 3)
		return cli_usage("dmarc verify",
		    "[-resolver ip[:port]] remoteip mailfrom ehlo < message");
	buf_init(&msg, CMD_MSG_MAX);
	buf_init(&hdr, AUTHRES_MAX);
	memset(&spf, 0, sizeof(spf));
	memset(&dr, 0, sizeof(dr));
	authres_init(&ar, false);
	if (read_fd(0, &msg) == -1) {
		cli_errorf("reading message failed");
		goto out;
	}
	r = cmd_dns_resolver_open(&dopts);
	if (r == NULL)
		goto out;
	psl = psl_load();
	memset(&sa, 0, sizeof(sa));
	at = strrchr(dopts.args[1], '@');
	if (at != NULL) {
		mf_local = xstrndup(dopts.args[1],
		    (size_t)(at - dopts.args[1]));
		mf_domain = xstrdup(at + 1);
	}
	sa.remote_ip = dopts.args[0];
	sa.mailfrom_local = mf_local;
	sa.mailfrom_domain = mf_domain;
	sa.helo = dopts.args[2];
	spf_verify(r, &sa, &spf);
	memset(&o, 0, sizeof(o));
	o.now = (int64_t)time(NULL);
	o.psl = psl;
	if (dkim_verify(r, &o, span_of_buf(&msg), &dk, &ndk, &why) == -1) {
		cli_errorf("dkim: %s", why);
		goto out;
	}
	domain = from_domain(span_of_buf(&msg), NULL);
	if (domain == NULL) {
		cli_errorf("message has no from address with a domain");
		goto out;
	}
	memset(&in, 0, sizeof(in));
	in.from_domain = domain;
	in.dkim = dk;
	in.ndkim = ndk;
	in.spf = &spf;
	/* RFC 7489 6.6.4: pct= sampling */
	if (gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd)) < 0) {
		cli_errorf("no random data");
		goto out;
	}
	in.random_pct = rnd % 100u;
	dmarc_verify(r, psl, &in, &dr);
	{
		struct authres_method m = { .method = "spf" };

		m.result = spf_status_name(spf.status);
		m.comment = spf.authentic ? "with dnssec" : "without dnssec";
		if (spf.identity == SPF_ID_MAILFROM && spf.domain != NULL) {
			m.props[0] = (struct authres_prop){ "smtp", "mailfrom",
				spf.domain, true, NULL };
			m.nprops = 1;
		} else if (spf.identity == SPF_ID_HELO && spf.domain != NULL) {
			m.props[0] = (struct authres_prop){ "smtp", "helo",
				spf.domain, false, NULL };
			m.nprops = 1;
		}
		authres_add(&ar, &m);
	}
	authres_add_dkim(&ar, dk, ndk);
	authres_add_dmarc(&ar, &dr, domain);
	if (authres_finish(&ar, "localhost", &hdr) == -1) {
		cli_errorf("header too long");
		goto out;
	}
	fwrite(hdr.data, 1, hdr.len, stdout);
	printf("dmarc %s, policy %s%s\n", dmarc_status_name(dr.status),
	    dr.reject ? "reject" : "accept", dr.reject && !dr.use ?
	    " (sampled out)" : "");
	if (dr.why != NULL)
		printf("reason: %s\n", dr.why);
	rc = 0;
out:
	authres_release(&ar);
	dmarc_result_release(&dr);
	spf_result_release(&spf);
	dkim_results_free(dk, ndk);
	publicsuffix_free(psl);
	dns_resolver_free(r);
	free(domain);
	free(mf_local);
	free(mf_domain);
	buf_release(&msg);
	buf_release(&hdr);
	return rc;
}
