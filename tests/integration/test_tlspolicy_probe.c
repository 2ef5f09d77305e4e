/*
 * test_tlspolicy_probe.c: drives src/queue/{mtasts,dane,tlspolicy}.c
 * against real DNS (dnslab) and local TLS/HTTPS servers for
 * test_tlspolicy.sh. Test tool only: prints key=value lines, exit 0 when
 * the outcome is "usable" (policy found / session accepted), 1 when not,
 * 2 on usage errors.
 *
 *   probe sts -resolver ADDR -domain D -datadir DIR -ca FILE -connect-to X
 *   probe tls -resolver ADDR -domain D -host H -connect IP:PORT -ca FILE
 *             [-datadir DIR -connect-to X]   (MTA-STS too when -datadir)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/span.h"
#include "queue/tlspolicy.h"
#include "tls/tls.h"
#include "lib/banned.h"

struct opts {
	const char *resolver, *domain, *host, *connect, *ca, *datadir,
	    *connect_to;
};

static const char *
status_name(enum mtasts_status s)
{
	switch (s) {
	case MTASTS_NONE:
		return "none";
	case MTASTS_POLICY:
		return "policy";
	case MTASTS_TEMPERROR:
		return "temperror";
	}
	return "?";
}

static int
do_sts(struct dns_resolver *r, const struct opts *o, struct mtasts_lookup *l)
{
	struct mtasts_fetch_params fp = { o->ca, o->connect_to, 10000 };
	struct mtasts_cache *c;
	struct buf err;
	int rc = -1;

	memset(l, 0, sizeof(*l));
	buf_init(&err, 4096);
	c = mtasts_cache_open(o->datadir, &err);
	if (c == NULL || mtasts_lookup(c, r, o->domain, &fp, (int64_t)time(NULL),
	    l, &err) == -1) {
		fprintf(stderr, "probe: %s\n", err.data);
		goto out;
	}
	printf("sts=%s mode=%s report=%s fallback=%d why=\"%s\"\n",
	    status_name(l->status), l->status == MTASTS_POLICY ?
	    mtasts_mode_name(l->policy.mode) : "-",
	    l->report_result ? l->report_result : "-", l->fallback_cached,
	    l->why ? l->why : "");
	rc = 0;
out:
	mtasts_cache_free(c);
	buf_release(&err);
	return rc;
}

static int
dial(const char *ipport)
{
	char ip[64];
	const char *colon = strrchr(ipport, ':');
	struct sockaddr_in sa;
	int fd;

	if (colon == NULL || (size_t)(colon - ipport) >= sizeof(ip))
		return -1;
	memcpy(ip, ipport, (size_t)(colon - ipport));
	ip[colon - ipport] = '\0';
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char *
action_name(enum tlspolicy_action a)
{
	switch (a) {
	case TLSPOLICY_CONNECT:
		return "connect";
	case TLSPOLICY_SKIP:
		return "skip";
	case TLSPOLICY_FAIL_TEMP:
		return "failtemp";
	case TLSPOLICY_FAIL_PERM:
		return "failperm";
	}
	return "?";
}

static int
do_tls(struct dns_resolver *r, const struct opts *o)
{
	struct mtasts_lookup sts;
	struct dns_answer mx, addrs;
	struct dane_lookup tlsa;
	struct tlspolicy_dest d;
	struct tlspolicy_host h;
	struct tlspolicy_verdict v;
	struct tlsrpt_result dr;
	struct tlspolicy_trust *trust = NULL;
	struct tls_session *s = NULL;
	struct tls_client_params cp;
	struct span chain[16];
	size_t nchain = 0;
	struct buf err;
	bool applies;
	const char *why = NULL;
	const char *cafiles[1] = { o->ca };
	int fd = -1, rc = 1;

	memset(&sts, 0, sizeof(sts));
	memset(&h, 0, sizeof(h));
	memset(&dr, 0, sizeof(dr));
	memset(&tlsa, 0, sizeof(tlsa));
	buf_init(&err, 4096);
	dns_lookup(r, o->domain, DNS_MX, &mx);
	dns_lookup_ips(r, o->host, &addrs);
	memset(&d, 0, sizeof(d));
	d.domain = o->domain;
	d.have_mx = mx.result == DNS_OK;
	d.mx_authentic = mx.authentic;
	d.chain_authentic = mx.authentic;
	if (o->datadir != NULL) {
		if (do_sts(r, o, &sts) == -1)
			goto out;
		d.sts = &sts;
	}
	if (tlspolicy_domain_check(&d, &why) == -1) {
		printf("domain=fail why=\"%s\"\n", why);
		goto out;
	}
	tlspolicy_domain_report(&d, &dr);
	applies = tlspolicy_dane_applies(&d, addrs.authentic, false);
	if (applies)
		dane_lookup(r, o->host, NULL, &tlsa);
	tlspolicy_host_decide(&d, o->host, NULL, applies ? &tlsa : NULL,
	    addrs.ede, &dr, &h);
	printf("action=%s dane_applies=%d tls_required=%d verify_dane=%d "
	       "verify_pkix=%d fallback=%d hostreport=%s\n",
	    action_name(h.action), applies, h.tls_required, h.verify_dane,
	    h.verify_pkix, h.plaintext_fallback,
	    h.report.type == TLSRPT_POLICY_TLSA ? "tlsa" :
	    h.report.type == TLSRPT_POLICY_STS ? "sts" : "no-policy-found");
	for (size_t i = 0; i < h.report.ndetails; i++)
		printf("hostdetail=%s reason=%s\n",
		    h.report.details[i].result_type, h.report.details[i].reason);
	if (h.action != TLSPOLICY_CONNECT)
		goto out;
	trust = tlspolicy_trust_new(cafiles, o->ca != NULL ? 1 : 0, true, &err);
	if (trust == NULL) {
		fprintf(stderr, "probe: %s\n", err.data);
		goto out;
	}
	fd = dial(o->connect);
	if (fd == -1) {
		fprintf(stderr, "probe: cannot connect to %s\n", o->connect);
		goto out;
	}
	memset(&cp, 0, sizeof(cp));
	cp.host = h.sni;
	cp.no_verify = true;
	cp.timeout_ms = 10000;
	s = tls_client_connect(fd, &cp, &err);
	if (s == NULL) {
		fprintf(stderr, "probe: %s\n", err.data);
		goto out;
	}
	while (nchain < 16 && tls_session_peer_chain(s, nchain,
	    &chain[nchain]) == 0)
		nchain++;
	tlspolicy_verify(&h, trust, chain, nchain, &v);
	printf("ok=%d pkix=%d dane=%d chain=%zu result=%s reason=%s\n", v.ok,
	    v.pkix_ok, v.dane_ok, nchain, v.result_type ? v.result_type : "-",
	    v.reason[0] != '\0' ? v.reason : "-");
	rc = v.ok ? 0 : 1;
out:
	if (s != NULL)
		tls_session_free(s);
	if (fd != -1)
		close(fd);
	tlspolicy_trust_free(trust);
	tlspolicy_host_release(&h);
	tlsrpt_result_release(&dr);
	dane_lookup_release(&tlsa);
	mtasts_lookup_release(&sts);
	dns_answer_release(&mx);
	dns_answer_release(&addrs);
	buf_release(&err);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct dns_params p;
	struct dns_resolver *r;
	struct buf err;
	const char *servers[1];
	int rc;

	memset(&o, 0, sizeof(o));
	if (argc < 2)
		return 2;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "-resolver") == 0)
			o.resolver = v;
		else if (strcmp(k, "-domain") == 0)
			o.domain = v;
		else if (strcmp(k, "-host") == 0)
			o.host = v;
		else if (strcmp(k, "-connect") == 0)
			o.connect = v;
		else if (strcmp(k, "-ca") == 0)
			o.ca = v;
		else if (strcmp(k, "-datadir") == 0)
			o.datadir = v;
		else if (strcmp(k, "-connect-to") == 0)
			o.connect_to = v;
		else
			return 2;
	}
	if (o.resolver == NULL || o.domain == NULL)
		return 2;
	memset(&p, 0, sizeof(p));
	servers[0] = o.resolver;
	p.servers = servers;
	p.nservers = 1;
	p.timeout_ms = 3000;
	buf_init(&err, 1024);
	r = dns_resolver_new(&p, &err);
	if (r == NULL) {
		fprintf(stderr, "probe: %s\n", err.data);
		return 2;
	}
	if (strcmp(argv[1], "sts") == 0 && o.datadir != NULL) {
		struct mtasts_lookup l;

		rc = do_sts(r, &o, &l) == -1 ? 2 :
		    l.status == MTASTS_POLICY ? 0 : 1;
		mtasts_lookup_release(&l);
	} else if (strcmp(argv[1], "tls") == 0 && o.host != NULL &&
	    o.connect != NULL) {
		rc = do_tls(r, &o);
	} else
		rc = 2;
	dns_resolver_free(r);
	buf_release(&err);
	return rc;
}
