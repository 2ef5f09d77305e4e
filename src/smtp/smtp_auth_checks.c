/*
 * smtp_auth_checks.c: message authentication for incoming delivery and
 * DKIM signing for submission (spec/smtp.md 10, 12.1, 18; spec/auth.md
 * 2-6, 8): iprev (RFC 8601 3), SPF (RFC 7208), DKIM (RFC 6376, RFC 8463),
 * DMARC (RFC 7489), DNSBL (RFC 5782), Authentication-Results (RFC 8601),
 * Received-SPF (RFC 7208 9.1).
 *
 * Trust: the message, EHLO and MAIL FROM come from an unauthenticated
 * peer; the mailauth parsers bound them, and header values we write are
 * quoted by authres/spf. localserve fakes: SPF pass for hosted domains
 * from loopback, DKIM keys of hosted domains from the config, d=localhost
 * accepted (spec/smtp.md 18, spec/auth.md 4.4).
 * Threads: the session's worker; blocks on DNS and disk (key files).
 * The DNSBL lookups (started at accept) and the SPF evaluation run as
 * net jobs on the worker pool; each job owns copies of what it reads
 * from the session and borrows only the server and its resolver, which
 * outlive net_stop() (and net_stop() runs every job still queued).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "config/config.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "mailauth/authres.h"
#include "mailauth/dkim_conf.h"
#include "mailauth/dnsbl.h"
#include "message/message.h"
#include "net/net.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define KEY_TXT_MAX 8192 /* one DKIM key record */

/* ---- iprev, SPF, DKIM, DMARC ---- */

void
smtp_auth_iprev(struct smtp_sess *s, struct smtp_auth_checks *a)
{
	if (s->srv->p.resolver == NULL)
		return;
	iprev_check(s->srv->p.resolver, s->remote_ip, &a->iprev);
	a->iprev_done = true;
}

static void
lower(char *p)
{
	for (; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
}

/* spec/smtp.md 18: the faked record "v=spf1 ip4:127.0.0.1/8 ip6:::1
 * ~all" of a hosted domain, evaluated for a loopback peer. */
static bool
localserve_spf(struct smtp_sess *s, const struct config *cfg,
    struct smtp_auth_checks *a)
{
	const struct spf_args *sa = &a->spf_args;
	const char *dom;
	bool helo = false;
	struct buf sender;

	if (!s->srv->p.localserve || !net_conn_is_loopback(s->c) || cfg == NULL)
		return false;
	if (sa->mailfrom_domain != NULL && sa->mailfrom_domain[0] != '\0') {
		dom = sa->mailfrom_domain;
	} else {
		dom = sa->helo;
		helo = true;
	}
	if (dom == NULL || config_domain_find(cfg, dom) == NULL)
		return false;
	buf_init(&sender, 1024);
	if (helo)
		buf_addf(&sender, "postmaster@%s", dom);
	else
		buf_addf(&sender, "%s@%s", sa->mailfrom_local != NULL &&
		    sa->mailfrom_local[0] != '\0' ? sa->mailfrom_local :
		    "postmaster", dom);
	memset(&a->spf, 0, sizeof(a->spf));
	a->spf.status = SPF_PASS;
	a->spf.identity = helo ? SPF_ID_HELO : SPF_ID_MAILFROM;
	a->spf.domain = xstrdup(dom);
	a->spf.sender = buf_take(&sender);
	a->spf.mechanism = xstrdup(strchr(s->remote_ip, ':') != NULL
		? "ip6:::1"
		: "ip4:127.0.0.1/8");
	buf_release(&sender);
	return true;
}

/* The domain of the one From address (RFC 7489 6.6.1), lower-cased. */
static char *
from_domain(struct span header)
{
	struct message_addr_list l = { 0 };
	struct span v;
	const char *why;
	char *d = NULL;
	size_t nmbox = 0, nfrom = 0;
	struct message_header_iter it;
	struct message_field f;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1)
		if (span_eq_ci(f.name, "From"))
			nfrom++;
	if (nfrom != 1 || message_header_find(header, "From", &v) == -1 ||
	    message_addr_parse(v, &l, &why) == -1)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].kind == MESSAGE_ADDR_MAILBOX)
			nmbox++;
	if (nmbox == 1 && message_addr_first(&l) != NULL &&
	    message_addr_first(&l)->host != NULL &&
	    message_addr_first(&l)->host[0] != '\0') {
		d = xstrdup(message_addr_first(&l)->host);
		lower(d);
	}
out:
	message_addr_list_release(&l);
	return d;
}

void
smtp_auth_spf_args(struct smtp_sess *s, struct spf_args *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->remote_ip = s->remote_ip;
	sa->mailfrom_local = s->mail.null_path ? NULL : s->mail.from.localpart;
	sa->mailfrom_domain = s->mail.null_path ? NULL : s->mail.from.domain;
	sa->helo = s->hello;
	sa->local_hostname = s->srv->hostname;
}

/* The SPF evaluation of one message as a pool job: copies of the
 * session's facts, the result for the session to take. */
struct spf_job {
	struct dns_resolver *r; /* borrowed: outlives net_stop() */
	char *strs[5];          /* owned copies the args point into */
	struct spf_args args;
	struct spf_result res;  /* valid once the job is done */
};

static const char *
job_str(struct spf_job *j, size_t i, const char *v)
{
	j->strs[i] = v != NULL ? xstrdup(v) : NULL;
	return j->strs[i];
}

static void
spf_job_run(void *arg)
{
	struct spf_job *j = arg;

	spf_verify(j->r, &j->args, &j->res);
}

static void
spf_job_free(void *arg)
{
	struct spf_job *j = arg;

	spf_result_release(&j->res);
	for (size_t i = 0; i < ARRAY_LEN(j->strs); i++)
		free(j->strs[i]);
	free(j);
}

static struct net_job *
spf_job_start(struct smtp_sess *s, const struct spf_args *sa,
    struct spf_job **job_out)
{
	struct spf_job *j = xcalloc(1, sizeof(*j));

	j->r = s->srv->p.resolver;
	j->args.remote_ip = job_str(j, 0, sa->remote_ip);
	j->args.mailfrom_local = job_str(j, 1, sa->mailfrom_local);
	j->args.mailfrom_domain = job_str(j, 2, sa->mailfrom_domain);
	j->args.helo = job_str(j, 3, sa->helo);
	j->args.local_hostname = job_str(j, 4, sa->local_hostname);
	j->args.now = sa->now;
	*job_out = j;
	return net_job_start(net_conn_reactor(s->c), spf_job_run,
	    spf_job_free, j);
}

/* SPF that did not finish within its minute: temperror for the identity
 * spf_verify() would have checked (RFC 7208 2.3, 2.4). */
static void
spf_timed_out(const struct spf_args *sa, struct spf_result *res)
{
	const char *dom = NULL;

	memset(res, 0, sizeof(*res));
	res->status = SPF_TEMPERROR;
	res->identity = SPF_ID_NONE;
	if (sa->mailfrom_domain != NULL && sa->mailfrom_domain[0] != '\0') {
		res->identity = SPF_ID_MAILFROM;
		dom = sa->mailfrom_domain;
	} else if (sa->helo != NULL && sa->helo[0] != '\0') {
		res->identity = SPF_ID_HELO;
		dom = sa->helo;
	}
	if (dom != NULL)
		res->domain = xstrdup(dom);
	res->problem = xstrdup("spf verification time limit reached");
}

/* Collect the SPF job's result into a, waiting until deadline_ns. */
static void
spf_job_finish(struct smtp_sess *s, struct net_job *job, struct spf_job *j,
    int64_t deadline_ns, struct smtp_auth_checks *a)
{
	if (net_job_wait(job, deadline_ns)) {
		a->spf = j->res;
		memset(&j->res, 0, sizeof(j->res)); /* moved */
	} else {
		log_info(&s->log, "spf verification time limit reached",
		    LF_STR("remote", s->remote_ip));
		spf_timed_out(&a->spf_args, &a->spf);
	}
	net_job_put(job);
	a->spf_done = true;
}

void
smtp_auth_verify(struct smtp_sess *s, struct span msg, struct span header,
    struct smtp_auth_checks *a)
{
	struct dns_resolver *r = s->srv->p.resolver;
	struct dns_resolver *dkr = r;
	struct config *cfg = config_get();
	struct dkim_verify_opts o = { 0 };
	struct spf_args *sa = &a->spf_args;
	struct net_job *spf_job = NULL;
	struct spf_job *spf_arg = NULL;
	const char *why = NULL;
	int64_t deadline;
	uint8_t rnd;

	smtp_auth_spf_args(s, sa);
	a->from_domain = from_domain(header);
	if (r == NULL)
		goto out;
	/* spec/smtp.md 12.1 step 5: SPF on the pool while DKIM verifies
	 * here, a minute each. */
	deadline = time_mono_ns() + SMTP_AUTH_VERIFY_MS * NS_PER_MS;
	if (a->spf_done)
		log_debug(&s->log, "spf result of the transaction reused",
		    LF_STR("spf", spf_status_name(a->spf.status)));
	else if (localserve_spf(s, cfg, a))
		a->spf_done = true;
	else
		spf_job = spf_job_start(s, sa, &spf_arg);
	/* spec/auth.md 4.4: hosted domains' keys from the config. */
	if (s->srv->localserve_keys != NULL && a->from_domain != NULL &&
	    cfg != NULL && config_domain_find(cfg, a->from_domain) != NULL)
		dkr = s->srv->localserve_keys;
	o.now = time_wall_ns() / NS_PER_SEC;
	o.psl = s->srv->p.psl;
	o.allow_localhost = s->srv->p.localserve;
	o.deadline_ns = deadline;
	if (dkim_verify(dkr, &o, msg, &a->dkim, &a->ndkim, &why) == -1) {
		a->dkim = NULL;
		a->ndkim = 0;
		a->dkim_why = why;
	}
	if (spf_job != NULL)
		spf_job_finish(s, spf_job, spf_arg, deadline, a);
	if (a->spf.explanation != NULL)
		/* spec/auth.md 2: logged only, never echoed. */
		log_debug(&s->log, "spf explanation",
		    LF_STR("exp", a->spf.explanation));
	if (a->from_domain == NULL)
		goto out; /* spec/auth.md 5.3: DMARC none */
	gnutls_rnd(GNUTLS_RND_NONCE, &rnd, 1);
	a->dmarc_in.from_domain = a->from_domain;
	a->dmarc_in.dkim = a->dkim;
	a->dmarc_in.ndkim = a->ndkim;
	a->dmarc_in.spf = &a->spf;
	a->dmarc_in.random_pct = rnd % 100;
	dmarc_verify(r, s->srv->p.psl, &a->dmarc_in, &a->dmarc);
	a->dmarc_done = true;
out:
	log_debug(&s->log, "message authentication",
	    LF_STR("iprev", a->iprev_done ? iprev_status_name(a->iprev.status)
					  : "none"),
	    LF_STR("spf", a->spf_done ? spf_status_name(a->spf.status) : "none"),
	    LF_U64("dkim", a->ndkim),
	    LF_STR("dmarc", a->dmarc_done ? dmarc_status_name(a->dmarc.status)
					  : "none"));
	config_put(cfg);
}

void
smtp_auth_checks_release(struct smtp_auth_checks *a)
{
	if (a == NULL)
		return;
	if (a->iprev_done)
		iprev_result_release(&a->iprev);
	spf_result_release(&a->spf);
	dkim_results_free(a->dkim, a->ndkim);
	if (a->dmarc_done)
		dmarc_result_release(&a->dmarc);
	free(a->from_domain);
	memset(a, 0, sizeof(*a));
}

/* ---- headers (spec/auth.md 8, spec/smtp.md 10) ---- */

void
smtp_auth_headers(const struct smtp_auth_checks *a, const char *hostname,
    bool smtputf8, const char *overrides, struct buf *out)
{
	struct authres ar;
	struct buf c;

	authres_init(&ar, smtputf8);
	buf_init(&c, 1024);
	if (a->iprev_done) {
		struct authres_method m = { .method = "iprev" };

		m.result = iprev_status_name(a->iprev.status);
		m.comment = a->iprev.authentic ? "with dnssec" : "without dnssec";
		m.props[m.nprops++] = (struct authres_prop){ "policy", "iprev",
			a->iprev.ip != NULL ? a->iprev.ip : "", false, NULL };
		authres_add(&ar, &m);
	}
	if (a->ndkim == 0 && a->dkim_why != NULL) {
		struct authres_method m = { .method = "dkim", .result = "none",
			.reason = a->dkim_why };

		authres_add(&ar, &m);
	} else {
		authres_add_dkim(&ar, a->dkim, a->ndkim);
	}
	if (a->spf_done) {
		struct authres_method m = { .method = "spf" };

		m.result = spf_status_name(a->spf.status);
		m.comment = a->spf.authentic ? "with dnssec" : "without dnssec";
		if (a->spf.identity == SPF_ID_MAILFROM && a->spf.domain != NULL)
			m.props[m.nprops++] = (struct authres_prop){ "smtp",
				"mailfrom", a->spf.domain, false, NULL };
		else if (a->spf.identity == SPF_ID_HELO && a->spf.domain != NULL)
			m.props[m.nprops++] = (struct authres_prop){ "smtp",
				"helo", a->spf.domain, false, NULL };
		authres_add(&ar, &m);
	}
	if (a->dmarc_done) {
		struct authres_method m = { .method = "dmarc" };

		m.result = dmarc_status_name(a->dmarc.status);
		buf_adds(&c, a->dmarc.lookup.authentic ? "with dnssec"
						       : "without dnssec");
		if (overrides != NULL && overrides[0] != '\0')
			buf_addf(&c, ", override %s", overrides);
		m.comment = c.data;
		m.props[m.nprops++] = (struct authres_prop){ "header", "from",
			a->from_domain, false, NULL };
		authres_add(&ar, &m);
	} else {
		struct authres_method m = { .method = "dmarc", .result = "none" };

		authres_add(&ar, &m);
	}
	authres_finish(&ar, hostname, out);
	if (a->spf_done) {
		spf_received_header(&a->spf, &a->spf_args, hostname, out);
		buf_adds(out, "\r\n");
	}
	authres_release(&ar);
	buf_release(&c);
}

/* ---- DNSBL (spec/auth.md 6) ---- */

/* One zone's lookup for one connection: a pool job's argument. */
struct dnsbl_job {
	struct smtp_server *srv; /* borrowed: outlives net_stop() */
	const char *zone;        /* borrowed from srv */
	char ip[64];
	struct log_ctx log;      /* the connection's */
	bool usable;             /* the zone is not known to be unhealthy */
	struct dnsbl_result res; /* when usable; valid once the job is done */
};

/* The session's lookups, in the listener's zone order. */
struct smtp_dnsbl {
	size_t n;
	struct net_job **jobs;
	struct dnsbl_job **args; /* borrowed from jobs[i] while held */
	bool decided;            /* listed is known */
	bool listed;
};

static void
dnsbl_job_run(void *arg)
{
	struct dnsbl_job *d = arg;
	struct smtp_server *srv = d->srv;
	int64_t t0 = time_mono_ns();

	d->usable = dnsbl_health_usable(srv->dnsbl_health, srv->p.resolver,
	    d->zone, time_wall_ns() / NS_PER_SEC);
	if (!d->usable) {
		log_debug(&d->log, "dnsbl zone unhealthy, skipped",
		    LF_STR("zone", d->zone));
		return;
	}
	dnsbl_lookup(srv->p.resolver, d->zone, d->ip, &d->res);
	switch (d->res.status) {
	case DNSBL_FAIL:
		log_info(&d->log, "peer listed in dnsbl",
		    LF_STR("zone", d->zone), LF_STR("remote", d->ip),
		    LF_STR("explanation", d->res.reason),
		    LF_DUR("delta", time_mono_ns() - t0));
		break;
	case DNSBL_PASS:
		log_debug(&d->log, "peer not listed in dnsbl",
		    LF_STR("zone", d->zone), LF_STR("remote", d->ip),
		    LF_DUR("delta", time_mono_ns() - t0));
		break;
	case DNSBL_TEMPERROR:
		log_info(&d->log, "dnsbl lookup failed",
		    LF_STR("zone", d->zone), LF_STR("remote", d->ip),
		    LF_ERR(d->res.why));
		break;
	}
}

static void
dnsbl_job_free(void *arg)
{
	struct dnsbl_job *d = arg;

	dnsbl_result_release(&d->res);
	free(d);
}

void
smtp_auth_dnsbl_start(struct smtp_sess *s)
{
	struct smtp_server *srv = s->srv;
	struct net_reactor *r;
	struct smtp_dnsbl *b;

	if (srv->p.resolver == NULL || srv->p.ndnsbls == 0 || s->dnsbl != NULL)
		return;
	r = net_conn_reactor(s->c);
	b = xcalloc(1, sizeof(*b));
	b->n = srv->p.ndnsbls;
	b->jobs = xcalloc(b->n, sizeof(*b->jobs));
	b->args = xcalloc(b->n, sizeof(*b->args));
	for (size_t i = 0; i < b->n; i++) {
		struct dnsbl_job *d = xcalloc(1, sizeof(*d));

		d->srv = srv;
		d->zone = srv->p.dnsbls[i];
		snprintf(d->ip, sizeof(d->ip), "%s", s->remote_ip);
		d->log = s->log;
		b->args[i] = d;
		b->jobs[i] = net_job_start(r, dnsbl_job_run, dnsbl_job_free, d);
	}
	s->dnsbl = b;
	log_debug(&s->log, "dnsbl lookups started",
	    LF_STR("remote", s->remote_ip), LF_U64("zones", b->n));
}

bool
smtp_auth_dnsbl_listed(struct smtp_sess *s)
{
	struct smtp_dnsbl *b = s->dnsbl;
	int64_t deadline;

	if (b == NULL)
		return false;
	if (b->decided)
		return b->listed;
	b->decided = true;
	deadline = time_mono_ns() + SMTP_DNSBL_WAIT_MS * NS_PER_MS;
	for (size_t i = 0; i < b->n && !b->listed; i++) {
		const struct dnsbl_job *d = b->args[i];

		if (!net_job_wait(b->jobs[i], deadline)) {
			log_info(&s->log, "dnsbl lookup not done in time, zone "
					  "skipped",
			    LF_STR("zone", d->zone));
			continue;
		}
		/* spec/smtp.md 12.2 step 14: only healthy zones count. */
		b->listed = d->usable && d->res.status == DNSBL_FAIL;
		if (b->listed)
			log_debug(&s->log, "dnsbl listing applies",
			    LF_STR("zone", d->zone));
	}
	return b->listed;
}

void
smtp_auth_dnsbl_end(struct smtp_sess *s)
{
	struct smtp_dnsbl *b = s->dnsbl;

	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		net_job_put(b->jobs[i]);
	free(b->jobs);
	free(b->args);
	free(b);
	s->dnsbl = NULL;
}

/* ---- DKIM signing (spec/auth.md 4.3) ---- */

int
smtp_auth_sign(const struct config *cfg, const char *from_lp,
    const char *from_dom, struct span msg, struct buf *out, const char **why)
{
	return dkim_conf_sign(cfg, from_lp, from_dom,
		   time_wall_ns() / NS_PER_SEC, msg, out, why, NULL) == -1
	    ? -1
	    : 0;
}

struct dns_resolver *
smtp_auth_localserve_keys(const struct config *cfg)
{
	struct dns_resolver *m = dns_mock_new();
	struct buf txt, err, name;

	buf_init(&txt, KEY_TXT_MAX);
	buf_init(&err, 4096);
	buf_init(&name, 1024);
	for (size_t i = 0; i < cfg->dyn.domains.n; i++) {
		const struct config_domain *d = &cfg->dyn.domains.vals[i];

		for (size_t k = 0; k < d->dkim.selectors.n; k++) {
			const struct config_dkim_selector *cs =
			    &d->dkim.selectors.vals[k];
			struct dkim_key *key = NULL;
			char *path;

			if (cs->private_key_file == NULL)
				continue;
			path = config_path(cfg, cs->private_key_file);
			buf_reset(&txt);
			buf_reset(&name);
			buf_addf(&name, "%s._domainkey.%s",
			    d->dkim.selectors.keys[k], cfg->dyn.domains.keys[i]);
			if (dkim_key_load_file(path, &key, &err) == 0 &&
			    dkim_key_txt(key, &txt, &err) == 0)
				dns_mock_add_txt(m, name.data, txt.data, txt.len,
				    false);
			dkim_key_free(key);
			free(path);
		}
	}
	buf_release(&txt);
	buf_release(&err);
	buf_release(&name);
	return m;
}
