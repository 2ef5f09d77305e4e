/*
 * queue_tls.c: the recipient TLS policy in direct delivery (spec/queue.md
 * 5.2 MTA-STS per RFC 8461, 5.3 DANE per RFC 7672, 5.4 plaintext
 * fallback, 5.7 TLS report results per RFC 8460, 5.8 REQUIRETLS and
 * TLS-Required: No per RFC 8689): glue between queue_deliver.c and
 * tlspolicy.h, mtasts.h, dane.h and tlsrpt_results.h, and the setup of
 * the policy parameters serve hands to the runner.
 *
 * Trust boundary: DNS answers, fetched policies and peer certificates are
 * untrusted; the libraries parse and check them. Threads: a delivery
 * thread (blocks on DNS, HTTPS, SQLite); the parameters are immutable and
 * shared by all delivery threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue_int.h"
#include "tls/tls.h"
#include "lib/banned.h"

/* Everything queue_tls_params_new() allocates, behind the public struct
 * (first member, so the pointer converts both ways). */
struct tls_params_all {
	struct queue_tls_params p;
	struct mtasts_fetch_params fetch;
	struct tlspolicy_trust *trust;
	char *ca_file;
	char *connect_to;
};

struct queue_tls_params *
queue_tls_params_new(const struct config *cfg, const char *datadir,
    bool localserve, struct buf *err)
{
	struct tls_params_all *t = xcalloc(1, sizeof(*t));
	const struct config_static *st = cfg->st;
	const char *ca = getenv("MOX_TEST_MTASTS_CA");
	const char *ct = getenv("MOX_TEST_MTASTS_CONNECT_TO");
	size_t nca = st->tls.ca != NULL ? st->tls.ca->cert_files.n : 0;
	char **cas = xcalloc(nca > 0 ? nca : 1, sizeof(*cas));

	t->p.mtasts = mtasts_cache_open(datadir, err);
	if (t->p.mtasts == NULL)
		goto fail;
	/* TLS.CA.CertFiles are relative to the config directory. */
	for (size_t i = 0; i < nca; i++)
		cas[i] = config_path(cfg, st->tls.ca->cert_files.v[i]);
	t->trust = tlspolicy_trust_new((const char *const *)cas, nca,
	    st->tls.ca != NULL && !st->tls.ca->additional_to_system, err);
	if (t->trust == NULL)
		goto fail;
	if (ca != NULL && ca[0] != '\0')
		t->ca_file = xstrdup(ca);
	if (ct != NULL && ct[0] != '\0')
		t->connect_to = xstrdup(ct);
	t->fetch.ca_file = t->ca_file;
	t->fetch.connect_to = t->connect_to;
	t->p.fetch = &t->fetch;
	t->p.trust = t->trust;
	t->p.dane = true;
	t->p.tlsrpt = !st->no_outgoing_tls_reports;
	t->p.refresh = !localserve;
	for (size_t i = 0; i < nca; i++)
		free(cas[i]);
	free(cas);
	return &t->p;
fail:
	for (size_t i = 0; i < nca; i++)
		free(cas[i]);
	free(cas);
	queue_tls_params_free(&t->p);
	return NULL;
}

void
queue_tls_params_free(struct queue_tls_params *p)
{
	struct tls_params_all *t = (struct tls_params_all *)p;

	if (t == NULL)
		return;
	mtasts_cache_free(t->p.mtasts);
	tlspolicy_trust_free(t->trust);
	free(t->ca_file);
	free(t->connect_to);
	free(t);
}

int
queue_tls_begin(struct queue_tls_attempt *a, const struct queue_tls_params *p,
    struct dns_resolver *r, struct log_ctx *log, const struct queue_msg *m,
    const char *expanded, bool have_mx, bool mx_authentic,
    bool chain_authentic, const char **why)
{
	memset(a, 0, sizeof(*a));
	a->p = p;
	a->resolver = r;
	a->log = log;
	a->domain = xstrdup(m->recipient_domain);
	a->expanded = xstrdup(expanded != NULL ? expanded : a->domain);
	a->dest.domain = a->domain;
	a->dest.expanded_domain = a->expanded;
	a->dest.have_mx = have_mx;
	a->dest.mx_authentic = mx_authentic;
	a->dest.chain_authentic = chain_authentic;
	a->dest.is_dmarc_report = m->is_dmarc_report;
	a->is_dmarc_report = m->is_dmarc_report;
	a->is_tls_report = m->is_tls_report;
	a->dest.requiretls = m->requiretls == QUEUE_REQUIRETLS_YES ?
	    TLSPOLICY_REQUIRETLS_YES : m->requiretls == QUEUE_REQUIRETLS_NO ?
	    TLSPOLICY_REQUIRETLS_NO : TLSPOLICY_REQUIRETLS_UNSET;
	if (p->mtasts != NULL && r != NULL) {
		struct buf err;

		buf_init(&err, 1024);
		/* spec 5.2: the original recipient domain, never a CNAME
		 * target. */
		if (mtasts_lookup(p->mtasts, r, a->domain, p->fetch,
			time_wall_ns() / NS_PER_SEC, &a->sts, &err) == -1) {
			log_error(log, "mta-sts policy cache",
			    LF_STR("domain", a->domain), LF_ERR(err.data));
			memset(&a->sts, 0, sizeof(a->sts));
			a->sts.status = MTASTS_TEMPERROR;
			a->sts.why = "mta-sts policy cache error";
		}
		buf_release(&err);
		a->have_sts = true;
		a->dest.sts = &a->sts;
		if (a->sts.why != NULL || a->sts.status == MTASTS_POLICY)
			log_debug(log, "mta-sts lookup",
			    LF_STR("domain", a->domain),
			    LF_STR("mode", a->sts.status == MTASTS_POLICY ?
				mtasts_mode_name(a->sts.policy.mode) : "none"),
			    LF_STR("detail", a->sts.why != NULL ? a->sts.why : ""));
	}
	tlspolicy_domain_report(&a->dest, &a->domain_report);
	return tlspolicy_domain_check(&a->dest, why);
}

void
queue_tls_host(struct queue_tls_attempt *a, const char *host,
    const struct queue_host_ips *ips, struct tlspolicy_host *out)
{
	struct dane_lookup tlsa;
	bool dane = a->p->dane && a->resolver != NULL &&
	    tlspolicy_dane_applies(&a->dest, ips->authentic, ips->is_ip);
	/* RFC 7672 2.2.2: a CNAME-expanded name counts only when the whole
	 * expansion was authentic. */
	const char *expanded = ips->expanded != NULL &&
		ips->expanded_authentic &&
		strcasecmp(ips->expanded, host) != 0 ?
	    ips->expanded : NULL;

	memset(&tlsa, 0, sizeof(tlsa));
	tlsa.ede = -1;
	if (dane)
		dane_lookup(a->resolver, host, expanded, &tlsa);
	tlspolicy_host_decide(&a->dest, host, expanded, dane ? &tlsa : NULL,
	    dane ? -1 : ips->ede, &a->domain_report, out);
	log_debug(a->log, "tls policy for host", LF_STR("host", host),
	    LF_STR("expanded", expanded != NULL ? expanded : ""),
	    LF_STR("tlsabase",
		tlsa.base_domain != NULL ? tlsa.base_domain : ""),
	    LF_BOOL("dane", dane), LF_I64("action", out->action),
	    LF_BOOL("tlsrequired", out->tls_required),
	    LF_BOOL("verifydane", out->verify_dane),
	    LF_BOOL("verifypkix", out->verify_pkix));
	dane_lookup_release(&tlsa);
}

void
queue_tls_host_done(struct queue_tls_attempt *a, struct tlspolicy_host *h)
{
	a->hosts = xreallocarray(a->hosts, a->nhosts + 1, sizeof(*a->hosts));
	a->hosts[a->nhosts++] = h->report;
	memset(&h->report, 0, sizeof(h->report));
	tlspolicy_host_release(h);
}

int
queue_tls_verify(void *arg, struct tls_session *s, const char *helo,
    struct buf *err)
{
	struct queue_tls_conn *c = arg;
	struct span chain[DANE_CHAIN_MAX];
	struct tlspolicy_verdict v;
	struct tlspolicy_peer peer = { c->sending_ip, c->h->host, helo, c->ip };
	size_t n = 0;

	c->verified = true;
	while (n < DANE_CHAIN_MAX && tls_session_peer_chain(s, n, &chain[n]) ==
	    0)
		n++;
	tlspolicy_verify(c->h, c->a->p->trust, chain, n, &v);
	tlspolicy_report_tls(&c->a->domain_report, &c->h->report,
	    v.result_type, v.reason, &peer);
	if (v.result_type != NULL)
		log_info(c->a->log, "tls verification failure",
		    LF_STR("host", c->h->host), LF_STR("ip", c->ip),
		    LF_STR("result", v.result_type), LF_STR("reason", v.reason),
		    LF_BOOL("enforced", !v.ok));
	if (v.ok)
		return 0;
	buf_addf(err, "%s (%s%s%s)", v.why != NULL ? v.why : "not verified",
	    v.result_type != NULL ? v.result_type : "",
	    v.reason[0] != '\0' ? " " : "", v.reason);
	return -1;
}

/* Spec 5.7: the failure-reason-code of a handshake that did not finish. */
static const char *
handshake_reason(const char *e)
{
	if (strstr(e, "timed out") != NULL || strstr(e, "timeout") != NULL)
		return "io-timeout-during-handshake";
	if (strstr(e, "closed") != NULL || strstr(e, "terminated") != NULL ||
	    strstr(e, "EOF") != NULL || strstr(e, "reset") != NULL)
		return "connection-closed-during-handshake";
	return "tls-local-handshake-failure";
}

void
queue_tls_conn_done(struct queue_tls_conn *c,
    const struct smtp_client_result *rc, bool tls_tried, bool no_starttls)
{
	struct tlspolicy_peer peer = { c->sending_ip, c->h->host, NULL, c->ip };

	if (no_starttls) {
		/* spec 5.7: opportunistic and not announced: a detail only. */
		tlsrpt_result_detail(&c->a->domain_report,
		    TLSRPT_STARTTLS_NOT_SUPPORTED, "", c->sending_ip,
		    c->h->host, NULL, c->ip);
		tlsrpt_result_detail(&c->h->report,
		    TLSRPT_STARTTLS_NOT_SUPPORTED, "", c->sending_ip,
		    c->h->host, NULL, c->ip);
		return;
	}
	if (c->verified || !tls_tried || !rc->tls_error)
		return;
	if (rc->code != 0) {
		char reason[64];

		snprintf(reason, sizeof(reason), "smtp-starttls-reply-code-%d",
		    rc->code);
		tlspolicy_report_tls(&c->a->domain_report, &c->h->report,
		    TLSRPT_STARTTLS_NOT_SUPPORTED, reason, &peer);
		return;
	}
	tlspolicy_report_tls(&c->a->domain_report, &c->h->report,
	    TLSRPT_VALIDATION_FAILURE, handshake_reason(rc->error.data), &peer);
}

void
queue_tls_end(struct queue_tls_attempt *a, const char *datadir, bool failed,
    int64_t now_ns)
{
	if (a->p == NULL)
		return;
	/* spec 5.7: not for IP literals; no reports about report
	 * deliveries (TLS reports never, DMARC reports only on failure). */
	if (a->p->tlsrpt && datadir != NULL && a->domain[0] != '[') {
		size_t n = a->nhosts + 1;
		struct tlsrpt_result *rs = xcalloc(n, sizeof(*rs));
		bool send = !a->is_tls_report && (!a->is_dmarc_report || failed);
		struct buf err;

		rs[0] = a->domain_report;
		for (size_t i = 0; i < a->nhosts; i++)
			rs[i + 1] = a->hosts[i];
		for (size_t i = 0; i < n; i++)
			rs[i].send_report = send;
		buf_init(&err, 1024);
		if (tlsrpt_results_store(datadir, rs, n, now_ns / NS_PER_SEC,
			&err) == -1)
			log_error(a->log, "storing tls report results",
			    LF_STR("domain", a->domain), LF_ERR(err.data));
		buf_release(&err);
		free(rs);
	}
	tlsrpt_result_release(&a->domain_report);
	for (size_t i = 0; i < a->nhosts; i++)
		tlsrpt_result_release(&a->hosts[i]);
	free(a->hosts);
	if (a->have_sts)
		mtasts_lookup_release(&a->sts);
	free(a->domain);
	free(a->expanded);
	memset(a, 0, sizeof(*a));
}
