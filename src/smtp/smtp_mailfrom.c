/*
 * smtp_mailfrom.c: DNS checks of the MAIL FROM domain on port 25
 * (spec/smtp.md 6 "Checks after parsing", 7 step 4): the MX check
 * (RFC 7505 null MX, RFC 5321 5.1 implicit MX, RFC 5321 7.9) and the SPF
 * pass (RFC 7208, identity mailfrom) a 2nd recipient needs, kept for the
 * SPF check after DATA.
 *
 * Trust: the domain comes from the peer, parsed and bounded by
 * smtp_parse_mail(); it is only used as a DNS query name. Threads: the
 * session's worker; DNS blocks it, bounded by SMTP_MAILFROM_DNS_MS. The
 * SPF evaluation runs as a net job (net.h) that owns copies of its
 * arguments, so one that outlives its wait touches nothing freed.
 */
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "dns/dns.h"
#include "lib/compat.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "mailauth/spf.h"
#include "net/net.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_int.h"
#include "smtp/smtp_mailfrom.h"
#include "lib/banned.h"

static bool
null_host(const char *h)
{
	return h[0] == '\0' || strcmp(h, ".") == 0;
}

enum smtp_mx_verdict
smtp_mailfrom_mx(struct dns_resolver *r, const char *domain,
    int64_t deadline_ns, const char **why)
{
	struct dns_answer mx;
	enum dns_result res;
	const char *hosts[SMTP_MX_HOSTS_MAX];
	size_t nhosts = 0;
	bool err = false;
	enum smtp_mx_verdict v = SMTP_MX_NONE;

	res = dns_lookup(r, domain, DNS_MX, &mx);
	if (res == DNS_OK && mx.n == 1 && null_host(mx.rr[0].text)) {
		/* RFC 7505 3: the domain accepts no mail. */
		*why = "null mx";
		goto out;
	}
	if (res != DNS_OK && res != DNS_NOTFOUND) {
		*why = mx.why != NULL ? mx.why : "mx lookup failed";
		v = SMTP_MX_TEMP;
		goto out;
	}
	if (res == DNS_NOTFOUND || mx.n == 0) {
		hosts[nhosts++] = domain; /* RFC 5321 5.1: implicit MX */
	} else {
		for (size_t i = 0; i < mx.n && nhosts < SMTP_MX_HOSTS_MAX; i++)
			if (!null_host(mx.rr[i].text))
				hosts[nhosts++] = mx.rr[i].text;
	}
	*why = "no mx host with an address";
	for (size_t i = 0; i < nhosts; i++) {
		struct dns_answer ips;

		if (deadline_ns != 0 && time_mono_ns() >= deadline_ns) {
			err = true;
			break;
		}
		res = dns_lookup_ips(r, hosts[i], &ips);
		dns_answer_release(&ips);
		if (res == DNS_OK) {
			*why = NULL;
			v = SMTP_MX_OK;
			goto out;
		}
		if (res != DNS_NOTFOUND)
			err = true;
	}
	if (err) {
		*why = "address lookups of mx hosts failed";
		v = SMTP_MX_TEMP;
	}
out:
	dns_answer_release(&mx);
	return v;
}

/* The A-label form of a (SMTPUTF8) domain for DNS; NULL when it has
 * none. */
static char *
ascii_domain(const char *d)
{
	char *a = NULL, *r;

	for (const char *p = d; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			goto idn;
	return xstrdup(d);
idn:
	if (idn2_to_ascii_8z(d, &a, IDN2_NONTRANSITIONAL) != IDN2_OK)
		return NULL;
	r = xstrdup(a); /* idn2 allocates with malloc */
	idn2_free(a);
	return r;
}

bool
smtp_mailfrom_domain_ok(struct smtp_sess *s)
{
	const char *why = "invalid international domain name";
	enum smtp_mx_verdict v = SMTP_MX_NONE;
	char *dom;

	if (s->mail.null_path || s->srv->p.resolver == NULL ||
	    (s->srv->p.localserve && net_conn_is_loopback(s->c)))
		return true;
	dom = ascii_domain(s->mail.from.domain);
	if (dom != NULL)
		v = smtp_mailfrom_mx(s->srv->p.resolver, dom,
		    time_mono_ns() + (int64_t)SMTP_MAILFROM_DNS_MS * NS_PER_MS,
		    &why);
	free(dom);
	switch (v) {
	case SMTP_MX_OK:
		return true;
	case SMTP_MX_NONE:
		log_info(&s->log, "mailfrom domain does not accept mail",
		    LF_STR("domain", s->mail.from.domain), LF_STR("why", why));
		smtp_reply(s, 550, "5.7.27", "mailfrom domain not configured for "
					     "mail");
		return false;
	case SMTP_MX_TEMP:
		log_info(&s->log, "mx check of mailfrom domain failed",
		    LF_STR("domain", s->mail.from.domain), LF_ERR(why));
		smtp_reply(s, 451, "4.4.0", "cannot verify mx records for "
					    "mailfrom domain");
		return false;
	}
	return false;
}

bool
smtp_mailfrom_rcpt_ok(struct smtp_sess *s)
{
	if (s->nrcpts != 1 || s->srv->p.localserve)
		return true;
	if (smtp_mailfrom_spf_pass(s))
		return true;
	smtp_reply(s, 452, "4.5.3", "only one recipient allowed without spf "
				    "pass");
	return false;
}

/* ---- SPF for the 2nd recipient ---- */

/* The evaluation as a pool job: copies of the session's facts. */
struct spf_early_job {
	struct dns_resolver *r; /* borrowed: outlives net_stop() */
	char *strs[5];          /* owned copies the args point into */
	struct spf_args args;
	struct spf_result res;  /* valid once the job is done */
};

static const char *
job_str(struct spf_early_job *j, size_t i, const char *v)
{
	j->strs[i] = v != NULL ? xstrdup(v) : NULL;
	return j->strs[i];
}

static void
job_run(void *arg)
{
	struct spf_early_job *j = arg;

	spf_verify(j->r, &j->args, &j->res);
}

static void
job_free(void *arg)
{
	struct spf_early_job *j = arg;

	spf_result_release(&j->res);
	for (size_t i = 0; i < ARRAY_LEN(j->strs); i++)
		free(j->strs[i]);
	free(j);
}

bool
smtp_mailfrom_spf_pass(struct smtp_sess *s)
{
	struct spf_early_job *j;
	struct net_job *job;
	struct spf_args sa;

	if (s->spf_early != NULL)
		goto out;
	if (s->srv->p.resolver == NULL || s->mail.null_path)
		return false;
	smtp_auth_spf_args(s, &sa);
	j = xcalloc(1, sizeof(*j));
	j->r = s->srv->p.resolver;
	j->args.remote_ip = job_str(j, 0, sa.remote_ip);
	j->args.mailfrom_local = job_str(j, 1, sa.mailfrom_local);
	j->args.mailfrom_domain = job_str(j, 2, sa.mailfrom_domain);
	j->args.helo = job_str(j, 3, sa.helo);
	j->args.local_hostname = job_str(j, 4, sa.local_hostname);
	job = net_job_start(net_conn_reactor(s->c), job_run, job_free, j);
	if (net_job_wait(job, time_mono_ns() +
		(int64_t)SMTP_MAILFROM_DNS_MS * NS_PER_MS)) {
		s->spf_early = xcalloc(1, sizeof(*s->spf_early));
		*s->spf_early = j->res;
		memset(&j->res, 0, sizeof(j->res)); /* moved */
	} else {
		/* Not kept: the check after DATA tries again. */
		log_info(&s->log, "spf for second recipient timed out",
		    LF_STR("mailfrom", s->mail.from.domain));
	}
	net_job_put(job);
	if (s->spf_early == NULL)
		return false;
out:
	log_debug(&s->log, "spf for second recipient",
	    LF_STR("spf", spf_status_name(s->spf_early->status)),
	    LF_STR("mailfrom", s->mail.from.domain));
	return s->spf_early->status == SPF_PASS &&
	    s->spf_early->identity == SPF_ID_MAILFROM;
}

bool
smtp_mailfrom_spf_take(struct smtp_sess *s, struct smtp_auth_checks *a)
{
	if (s->spf_early == NULL)
		return false;
	spf_result_release(&a->spf);
	a->spf = *s->spf_early;
	a->spf_done = true;
	free(s->spf_early);
	s->spf_early = NULL;
	return true;
}

void
smtp_mailfrom_reset(struct smtp_sess *s)
{
	if (s->spf_early == NULL)
		return;
	spf_result_release(s->spf_early);
	free(s->spf_early);
	s->spf_early = NULL;
}
