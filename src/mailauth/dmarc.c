/*
 * dmarc.c: DMARC (RFC 7489 6.3 record format, 6.6.3 policy discovery,
 * 3.1 identifier alignment, 6.6 evaluation) and the evaluation record
 * stored for aggregate reports (spec auth.md 5, 9.2).
 *
 * Records come from DNS and are untrusted: every value is validated and
 * bounded. Parsing and evaluation are pure; discovery blocks on DNS.
 * Any thread except the reactor.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/publicsuffix.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

#define DMARC_TAGS_MAX 32 /* tags in one record; more is hostile */

const char *
dmarc_status_name(enum dmarc_status s)
{
	switch (s) {
	case DMARC_NONE:
		return "none";
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_EMPTY:
		return "";
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "";
}

static int
parse_policy(struct span v, enum dmarc_policy *out)
{
	if (span_eq_ci(v, "none"))
		*out = DMARC_POLICY_NONE;
	else if (span_eq_ci(v, "quarantine"))
		*out = DMARC_POLICY_QUARANTINE;
	else if (span_eq_ci(v, "reject"))
		*out = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* RFC 7489 6.4: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ] */
static int
parse_uris(struct span v, struct dmarc_uri **out, size_t *n_out)
{
	size_t start = 0;

	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.p[i] != ',')
			continue;
		struct span u = span_trim(span_of(v.p + start, i - start));
		const char *bang = memchr(u.p, '!', u.len);
		struct dmarc_uri d = { NULL, 0, 0 };

		start = i + 1;
		if (u.len == 0)
			return -1;
		if (bang != NULL) {
			struct span sz = span_of(bang + 1,
			    u.len - (size_t)(bang - u.p) - 1);

			u.len = (size_t)(bang - u.p);
			if (sz.len > 0 && strchr("kmgtKMGT", sz.p[sz.len - 1]) !=
			    NULL) {
				d.unit = (char)(sz.p[sz.len - 1] | 0x20);
				sz.len--;
			}
			if (span_u64(sz, UINT32_MAX, &d.max_size) == -1)
				return -1;
		}
		if (u.len == 0 || *n_out == DMARC_URIS_MAX)
			return -1;
		d.address = span_dup(u);
		*out = xreallocarray(*out, *n_out + 1, sizeof(**out));
		(*out)[(*n_out)++] = d;
	}
	return 0;
}

static int
check_fo(struct span v)
{
	size_t start = 0;

	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.p[i] != ':')
			continue;
		struct span o = span_trim(span_of(v.p + start, i - start));

		start = i + 1;
		if (!span_eq_cstr(o, "0") && !span_eq_cstr(o, "1") &&
		    !span_eq_ci(o, "d") && !span_eq_ci(o, "s"))
			return -1;
	}
	return 0;
}

static char *
lower_dup(struct span v)
{
	char *s = span_dup(v);

	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

void
dmarc_record_release(struct dmarc_record *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrua; i++)
		free(r->rua[i].address);
	for (size_t i = 0; i < r->nruf; i++)
		free(r->ruf[i].address);
	free(r->rua);
	free(r->ruf);
	free(r->fo);
	free(r->rf);
	memset(r, 0, sizeof(*r));
}

/* RFC 7489 6.3, 6.4; spec auth.md 5.1. */
int
dmarc_record_parse(struct span txt, struct dmarc_record *out,
    const char **why)
{
	struct span names[DMARC_TAGS_MAX];
	struct scan s = scan_of(txt);
	bool have_p = false, bad_sp = false;
	size_t ntags = 0;

	memset(out, 0, sizeof(*out));
	scan_skip_sp(&s);
	if (scan_lit_ci(&s, "v") == -1)
		return 0;
	scan_skip_sp(&s);
	if (scan_char(&s, '=') == -1)
		return 0;
	scan_skip_sp(&s);
	if (scan_lit(&s, "DMARC1") == -1)
		return 0;
	scan_skip_sp(&s);
	if (!scan_eof(&s) && scan_char(&s, ';') == -1)
		return 0;
	out->policy = DMARC_POLICY_NONE;
	out->subdomain_policy = DMARC_POLICY_EMPTY;
	out->interval = 86400;
	out->pct = 100;
	out->fo = xstrdup("0");
	out->rf = xstrdup("afrf");

	struct span rest = scan_rest(&s);
	size_t start = 0;

	for (size_t i = 0; i <= rest.len; i++) {
		if (i < rest.len && rest.p[i] != ';')
			continue;
		struct span tag = span_trim(span_of(rest.p + start, i - start));
		const char *eq;
		struct span name, v;

		start = i + 1;
		if (tag.len == 0)
			continue;
		eq = memchr(tag.p, '=', tag.len);
		if (eq == NULL) {
			*why = "tag without value";
			goto bad;
		}
		name = span_trim(span_of(tag.p, (size_t)(eq - tag.p)));
		v = span_trim(span_of(eq + 1,
		    (size_t)(tag.p + tag.len - eq) - 1));
		for (size_t j = 0; j < ntags; j++) {
			if (names[j].len == name.len &&
			    strncasecmp(names[j].p, name.p, name.len) == 0) {
				*why = "duplicate tag";
				goto bad;
			}
		}
		if (ntags == DMARC_TAGS_MAX) {
			*why = "too many tags";
			goto bad;
		}
		names[ntags++] = name;
		if (span_eq_ci(name, "p")) {
			/* RFC 7489 6.3: p= must follow v= */
			if (ntags != 1 || parse_policy(v, &out->policy) == -1) {
				*why = "invalid p=";
				goto bad;
			}
			have_p = true;
		} else if (span_eq_ci(name, "sp")) {
			if (parse_policy(v, &out->subdomain_policy) == -1)
				bad_sp = true;
		} else if (span_eq_ci(name, "rua")) {
			if (parse_uris(v, &out->rua, &out->nrua) == -1) {
				*why = "invalid rua=";
				goto bad;
			}
		} else if (span_eq_ci(name, "ruf")) {
			if (parse_uris(v, &out->ruf, &out->nruf) == -1) {
				*why = "invalid ruf=";
				goto bad;
			}
		} else if (span_eq_ci(name, "adkim") || span_eq_ci(name, "aspf")) {
			bool strict;

			if (span_eq_ci(v, "s"))
				strict = true;
			else if (span_eq_ci(v, "r"))
				strict = false;
			else {
				*why = "invalid adkim= or aspf=";
				goto bad;
			}
			if (span_eq_ci(name, "adkim"))
				out->adkim_strict = strict;
			else
				out->aspf_strict = strict;
		} else if (span_eq_ci(name, "ri")) {
			uint64_t ri;

			if (span_u64(v, UINT32_MAX, &ri) == -1) {
				*why = "invalid ri=";
				goto bad;
			}
			out->interval = (uint32_t)ri;
		} else if (span_eq_ci(name, "fo")) {
			if (check_fo(v) == -1) {
				*why = "invalid fo=";
				goto bad;
			}
			free(out->fo);
			out->fo = lower_dup(v);
		} else if (span_eq_ci(name, "rf")) {
			free(out->rf);
			out->rf = lower_dup(v);
		} else if (span_eq_ci(name, "pct")) {
			uint64_t pct;

			if (span_u64(v, 100, &pct) == -1) {
				*why = "invalid pct=";
				goto bad;
			}
			out->pct = (unsigned)pct;
		}
		/* unknown tags are ignored (RFC 7489 6.3) */
	}
	if (!have_p || bad_sp) {
		/* RFC 7489 6.6.3: with a rua=, treat as p=none */
		if (out->nrua == 0) {
			*why = !have_p ? "missing p=" : "invalid sp=";
			goto bad;
		}
		out->policy = DMARC_POLICY_NONE;
		out->subdomain_policy = DMARC_POLICY_EMPTY;
	}
	return 1;
bad:
	dmarc_record_release(out);
	return -1;
}

static void
lookup_one(struct dns_resolver *r, const char *domain, struct dmarc_lookup *l)
{
	struct dns_answer ans;
	struct buf name;
	size_t found = 0;
	const char *syntax = NULL;

	memset(&ans, 0, sizeof(ans));
	buf_init(&name, DNS_NAME_MAX + 1);
	buf_addf(&name, "_dmarc.%s", domain);
	if (buf_failed(&name)) {
		l->status = DMARC_PERMERROR;
		l->why = "domain name too long";
		goto out;
	}
	switch (dns_lookup(r, name.data, DNS_TXT, &ans)) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		l->authentic = l->authentic && ans.authentic;
		l->status = DMARC_NONE;
		l->why = "no dmarc record";
		goto out;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		l->authentic = false;
		l->status = DMARC_TEMPERROR;
		l->why = "dns error looking up dmarc record";
		goto out;
	}
	l->authentic = l->authentic && ans.authentic;
	for (size_t i = 0; i < ans.n; i++) {
		struct dmarc_record rec;
		const char *why = NULL;
		int rc = dmarc_record_parse(span_of_cstr(ans.rr[i].text), &rec,
		    &why);

		if (rc == 0)
			continue;
		if (rc == -1) {
			syntax = why;
			continue;
		}
		found++;
		if (found == 1) {
			l->record = rec;
			l->txt = xstrdup(ans.rr[i].text);
		} else {
			dmarc_record_release(&rec);
		}
	}
	if (found > 1) {
		/* RFC 7489 6.6.3: several records mean none */
		dmarc_record_release(&l->record);
		free(l->txt);
		l->txt = NULL;
		l->status = DMARC_NONE;
		l->why = "multiple dmarc records";
	} else if (found == 1) {
		l->has_record = true;
		l->status = DMARC_PASS;
		l->why = NULL;
		free(l->policy_domain);
		l->policy_domain = xstrdup(domain);
	} else if (syntax != NULL) {
		l->status = DMARC_PERMERROR;
		l->why = syntax;
	} else {
		l->status = DMARC_NONE;
		l->why = "no dmarc record";
	}
out:
	dns_answer_release(&ans);
	buf_release(&name);
}

void
dmarc_lookup(struct dns_resolver *r, const struct publicsuffix_list *psl,
    const char *from_domain, struct dmarc_lookup *out)
{
	struct buf org;

	memset(out, 0, sizeof(*out));
	out->authentic = true;
	lookup_one(r, from_domain, out);
	if (out->status != DMARC_NONE)
		return;
	buf_init(&org, DNS_NAME_MAX + 1);
	if (psl != NULL && publicsuffix_org_domain(psl, from_domain, &org) ==
	    0 && strcasecmp(org.data, from_domain) != 0)
		lookup_one(r, org.data, out);
	buf_release(&org);
}

void
dmarc_lookup_release(struct dmarc_lookup *l)
{
	if (l == NULL)
		return;
	if (l->has_record)
		dmarc_record_release(&l->record);
	free(l->policy_domain);
	free(l->txt);
	memset(l, 0, sizeof(*l));
}

static bool
aligned(const struct publicsuffix_list *psl, const char *a, const char *b,
    bool strict)
{
	if (a == NULL || b == NULL)
		return false;
	if (strcasecmp(a, b) == 0)
		return true;
	return !strict && psl != NULL && publicsuffix_same_org(psl, a, b);
}

/* Spec auth.md 5.3; RFC 7489 6.6. */
void
dmarc_evaluate(const struct publicsuffix_list *psl,
    const struct dmarc_input *in, struct dmarc_result *out)
{
	const struct dmarc_record *rec = &out->lookup.record;
	enum dmarc_policy pol;

	out->reject = false;
	out->use = false;
	out->aligned_spf_pass = out->aligned_dkim_pass = false;
	if (!out->lookup.has_record) {
		out->status = out->lookup.status == DMARC_PASS ? DMARC_NONE :
		    out->lookup.status;
		out->why = out->lookup.why;
		return;
	}
	/* RFC 7489 6.6.4: pct= sampling */
	out->use = in->random_pct < rec->pct;
	pol = rec->policy;
	if (strcasecmp(out->lookup.policy_domain, in->from_domain) != 0 &&
	    rec->subdomain_policy != DMARC_POLICY_EMPTY)
		pol = rec->subdomain_policy;
	out->reject = pol != DMARC_POLICY_NONE;
	out->status = DMARC_FAIL;
	out->why = "no aligned spf or dkim pass";
	if (in->spf != NULL && in->spf->status == SPF_TEMPERROR) {
		out->status = DMARC_TEMPERROR;
		out->reject = false;
		out->why = "spf temporary error";
	}
	/* RFC 7489 3.1.2: SPF-authenticated identifier alignment */
	if (in->spf != NULL && in->spf->status == SPF_PASS &&
	    aligned(psl, in->spf->domain, in->from_domain, rec->aspf_strict))
		out->aligned_spf_pass = true;
	for (size_t i = 0; i < in->ndkim; i++) {
		const struct dkim_result *d = &in->dkim[i];

		if (d->status == DKIM_TEMPERROR) {
			out->status = DMARC_TEMPERROR;
			out->reject = false;
			out->why = "dkim temporary error";
			continue;
		}
		/* RFC 7489 3.1.1: DKIM-authenticated identifier alignment */
		if (d->status == DKIM_PASS && d->sig != NULL &&
		    aligned(psl, d->sig->domain, in->from_domain,
		    rec->adkim_strict)) {
			out->aligned_dkim_pass = true;
			break;
		}
	}
	if (out->aligned_spf_pass || out->aligned_dkim_pass) {
		out->status = DMARC_PASS;
		out->reject = false;
		out->why = NULL;
	}
}

enum dmarc_status
dmarc_verify(struct dns_resolver *r, const struct publicsuffix_list *psl,
    const struct dmarc_input *in, struct dmarc_result *out)
{
	memset(out, 0, sizeof(*out));
	dmarc_lookup(r, psl, in->from_domain, &out->lookup);
	dmarc_evaluate(psl, in, out);
	return out->status;
}

void
dmarc_result_release(struct dmarc_result *r)
{
	if (r == NULL)
		return;
	dmarc_lookup_release(&r->lookup);
}

unsigned
dmarc_interval_hours(uint32_t ri)
{
	static const unsigned opts[] = { 24, 12, 8, 6, 4, 3, 2 };
	uint64_t h = ((uint64_t)ri + 3599) / 3600;

	for (size_t i = 0; i < ARRAY_LEN(opts); i++)
		if (h >= opts[i])
			return opts[i];
	return 1;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

int
dmarc_evaluation_build(const struct publicsuffix_list *psl,
    const struct dmarc_input *in, const struct dmarc_result *res,
    const struct dmarc_eval_facts *f, struct dmarc_evaluation *out)
{
	const struct dmarc_record *rec = &res->lookup.record;

	memset(out, 0, sizeof(*out));
	if (!res->lookup.has_record)
		return -1;
	out->policy_domain = xstrdup(res->lookup.policy_domain);
	out->evaluated = f->now;
	out->interval_hours = dmarc_interval_hours(rec->interval);
	out->addresses = xcalloc(rec->nrua + 1, sizeof(char *));
	for (size_t i = 0; i < rec->nrua; i++)
		out->addresses[out->naddresses++] = xstrdup(rec->rua[i].address);
	out->pub_domain = xstrdup(res->lookup.policy_domain);
	out->pub_adkim_strict = rec->adkim_strict;
	out->pub_aspf_strict = rec->aspf_strict;
	out->pub_p = rec->policy;
	out->pub_sp = rec->subdomain_policy != DMARC_POLICY_EMPTY ?
	    rec->subdomain_policy : rec->policy;
	out->pub_pct = rec->pct;
	out->source_ip = dup_or_null(f->source_ip);
	out->disposition_reject = f->rejected;
	out->aligned_dkim_pass = res->aligned_dkim_pass;
	out->aligned_spf_pass = res->aligned_spf_pass;
	out->override_mailing_list = f->mailing_list;
	out->override_forwarded = f->forwarded;
	out->override_sampled_out = res->reject && !res->use;
	out->envelope_to = dup_or_null(f->envelope_to);
	out->envelope_from = dup_or_null(f->envelope_from);
	out->header_from = xstrdup(in->from_domain);
	for (size_t i = 0; i < in->ndkim; i++) {
		const struct dkim_result *d = &in->dkim[i];

		if (d->sig == NULL || psl == NULL ||
		    !publicsuffix_same_org(psl, d->sig->domain, in->from_domain))
			continue;
		out->dkim = xreallocarray(out->dkim, out->ndkim + 1,
		    sizeof(*out->dkim));
		out->dkim[out->ndkim].domain = xstrdup(d->sig->domain);
		out->dkim[out->ndkim].selector = xstrdup(d->sig->selector);
		out->dkim[out->ndkim].result = dkim_status_name(d->status);
		out->ndkim++;
	}
	if (in->spf != NULL && in->spf->domain != NULL) {
		out->spf_domain = xstrdup(in->spf->domain);
		out->spf_scope_helo = in->spf->identity == SPF_ID_HELO;
		out->spf_result = spf_status_name(in->spf->status);
	}
	out->optional = f->optional;
	return 0;
}

void
dmarc_evaluation_release(struct dmarc_evaluation *e)
{
	if (e == NULL)
		return;
	free(e->policy_domain);
	for (size_t i = 0; i < e->naddresses; i++)
		free(e->addresses[i]);
	free(e->addresses);
	free(e->pub_domain);
	free(e->source_ip);
	free(e->envelope_to);
	free(e->envelope_from);
	free(e->header_from);
	for (size_t i = 0; i < e->ndkim; i++) {
		free(e->dkim[i].domain);
		free(e->dkim[i].selector);
	}
	free(e->dkim);
	free(e->spf_domain);
	memset(e, 0, sizeof(*e));
}
