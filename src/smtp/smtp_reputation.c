/*
 * smtp_reputation.c: the record of an incoming message for reputation
 * (spec/smtp.md 12.1 steps 8, 10 and 12.2; spec/store.md 3.1): From
 * address and organizational domain (RFC 7489 3.2), the From validation
 * level from SPF/DKIM alignment and DMARC, SPF results of MAIL FROM and
 * EHLO, verified DKIM domains, TLS version; the IsForward changes to it;
 * the reputation step of the decision (spec/junk.md 7 through
 * store_reputation()) and the fields stored with each delivered copy.
 *
 * Trust: every name here comes from the peer (EHLO, MAIL FROM, From
 * header) but was parsed and bounded by the SMTP and message parsers;
 * it is stored and bound into SQL as data only. Threads: the session's
 * worker; the lookup and the reject's mailbox lookup block on SQLite.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "maildir/store_reputation.h"
#include "mailauth/publicsuffix.h"
#include "message/message.h"
#include "net/net.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_int.h"
#include "smtp/smtp_reputation.h"
#include "tls/tls.h"
#include "lib/banned.h"

static char *
lower_dup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = xstrdup(s);
	for (char *p = d; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return d;
}

/* The organizational domain of dom (RFC 7489 3.2); dom itself without a
 * list or for a name the list cannot place. */
static char *
org_domain(const struct publicsuffix_list *psl, const char *dom)
{
	struct buf b;
	char *r;

	if (psl == NULL)
		return xstrdup(dom);
	buf_init(&b, 512);
	if (publicsuffix_org_domain(psl, dom, &b) == -1 || buf_failed(&b) ||
	    b.len == 0) {
		buf_release(&b);
		return xstrdup(dom);
	}
	r = buf_take(&b);
	buf_release(&b);
	return r;
}

static bool
same_org(const struct publicsuffix_list *psl, const char *a, const char *b)
{
	return psl != NULL && publicsuffix_same_org(psl, a, b);
}

enum smtp_validation
smtp_rep_msgfrom_validation(const struct smtp_auth_checks *a,
    const char *dom, const struct publicsuffix_list *psl)
{
	bool strict = false, relaxed = false;

	if (dom == NULL || dom[0] == '\0')
		return SMTP_VAL_NONE;
	for (size_t i = 0; i < a->ndkim && !strict; i++) {
		const struct dkim_result *r = &a->dkim[i];

		if (r->status != DKIM_PASS || r->sig == NULL ||
		    r->sig->domain == NULL)
			continue;
		if (strcasecmp(r->sig->domain, dom) == 0)
			strict = true;
		else
			relaxed = relaxed || same_org(psl, r->sig->domain, dom);
	}
	if (!strict && a->spf_done && a->spf.status == SPF_PASS &&
	    a->spf.domain != NULL) {
		strict = strcasecmp(a->spf.domain, dom) == 0;
		relaxed = relaxed || same_org(psl, a->spf.domain, dom);
	}
	if (strict)
		return SMTP_VAL_STRICT;
	if (!relaxed)
		return SMTP_VAL_NONE;
	/* spec/smtp.md 12.1 step 8: relaxed alignment that DMARC passed. */
	if (a->dmarc_done && a->dmarc.status == DMARC_PASS)
		return SMTP_VAL_DMARC;
	return SMTP_VAL_RELAXED;
}

static enum smtp_validation
spf_validation(enum spf_status st)
{
	switch (st) {
	case SPF_NONE:
		return SMTP_VAL_NONE;
	case SPF_NEUTRAL:
		return SMTP_VAL_NEUTRAL;
	case SPF_PASS:
		return SMTP_VAL_PASS;
	case SPF_FAIL:
		return SMTP_VAL_FAIL;
	case SPF_SOFTFAIL:
		return SMTP_VAL_SOFTFAIL;
	case SPF_TEMPERROR:
		return SMTP_VAL_TEMPERROR;
	case SPF_PERMERROR:
		return SMTP_VAL_PERMERROR;
	}
	return SMTP_VAL_UNKNOWN;
}

/* spec/store.md 3.1 ReceivedTLSVersion: 1 plaintext, else the code. */
static uint16_t
tls_version(struct smtp_sess *s)
{
	static const struct {
		const char *name;
		uint16_t code;
	} v[] = {
		{ "TLS1.0", 0x0301 },
		{ "TLS1.1", 0x0302 },
		{ "TLS1.2", 0x0303 },
		{ "TLS1.3", 0x0304 },
	};
	struct tls_session *ts;
	const char *name;

	if (!s->tls)
		return 1;
	ts = net_conn_tls(s->c);
	name = ts != NULL ? tls_session_version(ts) : NULL;
	for (size_t i = 0; name != NULL && i < ARRAY_LEN(v); i++)
		if (strcmp(name, v[i].name) == 0)
			return v[i].code;
	return 0;
}

static void
from_address(struct smtp_rep_facts *f, struct span header)
{
	struct message_addr_list l = { 0 };
	const struct message_address *first;
	struct span v;
	const char *why;

	if (message_header_find(header, "From", &v) == -1 ||
	    message_addr_parse(v, &l, &why) == -1)
		goto out;
	first = message_addr_first(&l);
	if (first != NULL && first->user != NULL && first->host != NULL &&
	    first->host[0] != '\0') {
		f->msgfrom_lp = xstrdup(first->user);
		f->msgfrom_dom = lower_dup(first->host);
	}
out:
	message_addr_list_release(&l);
}

void
smtp_rep_begin(struct smtp_sess *s, const struct smtp_auth_checks *a,
    struct span header)
{
	const struct publicsuffix_list *psl = s->srv->p.psl;
	struct smtp_rep_facts *f = xcalloc(1, sizeof(*f));

	from_address(f, header);
	if (f->msgfrom_dom != NULL) {
		f->msgfrom_org = org_domain(psl, f->msgfrom_dom);
		f->msgfrom_validation =
		    smtp_rep_msgfrom_validation(a, f->msgfrom_dom, psl);
		f->msgfrom_validated =
		    f->msgfrom_validation == SMTP_VAL_STRICT ||
		    f->msgfrom_validation == SMTP_VAL_RELAXED ||
		    f->msgfrom_validation == SMTP_VAL_DMARC;
	}
	if (!s->mail.null_path && !s->mail.from.ip_literal) {
		f->mailfrom_lp = xstrdup(s->mail.from.localpart);
		f->mailfrom_dom = lower_dup(s->mail.from.domain);
	}
	if (s->hello != NULL && s->hello[0] != '[' &&
	    strcmp(s->hello, s->remote_ip) != 0)
		f->ehlo = lower_dup(s->hello);
	if (a->spf_done && a->spf.identity == SPF_ID_MAILFROM) {
		f->mailfrom_validation = spf_validation(a->spf.status);
		f->mailfrom_validated = a->spf.status == SPF_PASS;
	} else if (a->spf_done && a->spf.identity == SPF_ID_HELO) {
		f->ehlo_validation = spf_validation(a->spf.status);
		f->ehlo_validated = a->spf.status == SPF_PASS;
	}
	f->dkim = xcalloc(a->ndkim + 1, sizeof(*f->dkim));
	for (size_t i = 0; i < a->ndkim; i++) {
		const struct dkim_result *r = &a->dkim[i];
		bool dup = false;

		if (r->status != DKIM_PASS || r->sig == NULL ||
		    r->sig->domain == NULL || r->sig->domain[0] == '\0')
			continue;
		for (size_t k = 0; k < f->ndkim && !dup; k++)
			dup = strcasecmp(f->dkim[k], r->sig->domain) == 0;
		if (!dup)
			f->dkim[f->ndkim++] = lower_dup(r->sig->domain);
	}
	f->tls_version = tls_version(s);
	smtp_rep_facts_free(s->rep);
	s->rep = f;
}

void
smtp_rep_facts_free(struct smtp_rep_facts *f)
{
	if (f == NULL)
		return;
	free(f->msgfrom_lp);
	free(f->msgfrom_dom);
	free(f->msgfrom_org);
	free(f->mailfrom_lp);
	free(f->mailfrom_dom);
	free(f->ehlo);
	for (size_t i = 0; i < f->ndkim; i++)
		free(f->dkim[i]);
	free(f->dkim);
	free(f);
}

/* The DKIM domains kept in the record: for IsForward all but the
 * ruleset's verified domain (spec/smtp.md 12.2 step 4). */
static size_t
kept_dkim(const struct smtp_rep_facts *f, const char *fwd_domain,
    const char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < f->ndkim; i++)
		if (fwd_domain == NULL || strcasecmp(f->dkim[i], fwd_domain) != 0)
			out[n++] = f->dkim[i];
	return n;
}

int
smtp_rep_lookup(void *arg, const struct smtp_decision_in *in,
    const char *mailbox, const char *fwd_domain, struct store_rep_result *out)
{
	struct smtp_sess *s = arg;
	const struct smtp_rep_facts *f = s->rep;
	struct store_rep_msg m = { 0 };
	struct store_account *a = NULL;
	struct store_err err;
	const char **dkim = NULL;
	int rc = -1;

	*out = (struct store_rep_result){ STORE_REP_UNKNOWN, false, "none" };
	if (f == NULL || in->account_name == NULL)
		return 0;
	dkim = xcalloc(f->ndkim + 1, sizeof(*dkim));
	m.mailbox = mailbox;
	m.msgfrom_localpart = f->msgfrom_lp;
	m.msgfrom_domain = f->msgfrom_dom;
	m.msgfrom_orgdomain = f->msgfrom_org;
	m.msgfrom_validated = f->msgfrom_validated;
	m.dkim_domains = dkim;
	m.n_dkim_domains = kept_dkim(f, fwd_domain, dkim);
	m.mailfrom_localpart = f->mailfrom_lp;
	m.mailfrom_validated = f->mailfrom_validated;
	m.ehlo_validated = f->ehlo_validated;
	if (fwd_domain == NULL) {
		/* spec/smtp.md 12.2 step 4: a forwarder's identities are
		 * not the sender's. */
		m.mailfrom_domain = f->mailfrom_dom;
		m.ehlo_domain = f->ehlo;
		m.remote_ip = s->remote_ip;
	}
	if (store_account_get(s->srv->p.store, in->account_name, true, &a,
		&err) == -1 ||
	    store_reputation(a, &m, time_wall_ns(), out, &err) == -1) {
		log_error(&s->log, "reputation analysis", LF_ERR(err.text),
		    LF_STR("account", in->account_name));
		goto out;
	}
	log_debug(&s->log, "reputation", LF_STR("account", in->account_name),
	    LF_STR("mailbox", mailbox), LF_STR("method", out->method),
	    LF_I64("junk", out->junk), LF_BOOL("conclusive", out->conclusive));
	rc = 0;
out:
	store_account_put(a);
	free(dkim);
	return rc;
}

void
smtp_rep_fields(struct smtp_sess *s, const char *account,
    const struct smtp_decision *dec, bool is_reject, struct smtp_rep_tmp *tmp,
    struct store_msg_fields *mf)
{
	const struct smtp_rep_facts *f = s->rep;
	bool fwd = dec != NULL && dec->forwarded;

	tmp->dkim = NULL;
	buf_init(&tmp->orig_dkim, 64 * 1024);
	if (f == NULL)
		return;
	tmp->dkim = xcalloc(f->ndkim + 1, sizeof(*tmp->dkim));
	mf->msgfrom_localpart = f->msgfrom_lp;
	mf->msgfrom_domain = f->msgfrom_dom;
	mf->msgfrom_orgdomain = f->msgfrom_org;
	mf->msgfrom_validation = (uint8_t)f->msgfrom_validation;
	mf->msgfrom_validated = f->msgfrom_validated;
	mf->mailfrom_validation = (uint8_t)f->mailfrom_validation;
	mf->mailfrom_validated = f->mailfrom_validated;
	mf->ehlo_validation = (uint8_t)f->ehlo_validation;
	mf->ehlo_validated = f->ehlo_validated;
	mf->mailfrom_localpart = f->mailfrom_lp != NULL ? f->mailfrom_lp : "";
	mf->mailfrom_domain = f->mailfrom_dom;
	mf->ehlo_domain = f->ehlo;
	mf->tls_version = f->tls_version;
	mf->dkim_domains = tmp->dkim;
	mf->n_dkim_domains = kept_dkim(f, fwd ? dec->fwd_domain : NULL,
	    tmp->dkim);
	if (dec != NULL) {
		mf->is_mailing_list = dec->mailing_list;
		mf->is_forward = dec->forwarded;
	}
	if (fwd) {
		/* spec/smtp.md 12.2 step 4, spec/junk.md 7 last paragraph:
		 * no IP masks (the store leaves them empty), EHLO and MAIL
		 * FROM domain moved aside. */
		mf->orig_ehlo_domain = f->ehlo;
		mf->ehlo_domain = NULL;
		mf->mailfrom_domain = NULL;
		for (size_t i = 0; i < f->ndkim; i++)
			buf_addf(&tmp->orig_dkim, "%s%s", i > 0 ? " " : "",
			    f->dkim[i]);
		mf->orig_dkim_domains = tmp->orig_dkim.data;
	}
	if (is_reject && dec != NULL && dec->mailbox != NULL) {
		/* spec/junk.md 9: a rescued reject counts for the mailbox it
		 * was meant for. */
		struct store_account *a = NULL;
		struct store_mailbox mb;
		struct store_err err;

		if (store_account_get(s->srv->p.store, account, true, &a,
			&err) == 0 &&
		    store_mailbox_get(a, dec->mailbox, &mb, &err) == 0) {
			mf->mailbox_destined_id = mb.id;
			store_mailbox_release(&mb);
		}
		store_account_put(a);
	}
}

void
smtp_rep_tmp_release(struct smtp_rep_tmp *tmp)
{
	if (tmp == NULL)
		return;
	free(tmp->dkim);
	tmp->dkim = NULL;
	buf_release(&tmp->orig_dkim);
}
