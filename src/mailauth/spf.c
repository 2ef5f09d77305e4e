/*
 * spf.c: Sender Policy Framework (RFC 7208). Record selection (4.5),
 * parsing (4.6, 12), check_host() with the mechanisms of section 5 and the
 * modifiers of section 6, macro expansion (7), the DNS lookup limits
 * (4.6.4), explanations (6.2) and the Received-SPF header (9.1).
 * Records and every DNS answer come from untrusted parties: all input is
 * length-bounded, non-ASCII and control bytes are refused, and recursion
 * through include/redirect is bounded by the lookup limit.
 * Thread rule: no global state; any thread. Verification blocks on DNS.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

/* Evaluation state shared across include and redirect (RFC 7208 4.6.4:
 * the limits count over the whole check_host() evaluation). */
struct ctx {
	struct dns_resolver *r;
	const struct spf_args *a;
	unsigned char ip[16];     /* client address; v4 in the first 4 */
	bool v4;
	char ipstr[INET6_ADDRSTRLEN];
	unsigned lookups;
	unsigned voids;
	bool authentic;
	const char *problem;      /* static text of the first error */
};

/* What one check_host() level hands up. */
struct eval {
	enum spf_status status;
	char *mechanism;          /* matching term, owned */
	char *exp_spec;           /* exp= of the record that failed, owned */
	char *exp_domain;         /* <domain> that record was fetched for */
};

enum match {
	MATCH_NO,
	MATCH_YES,
	MATCH_TEMPERROR,
	MATCH_PERMERROR,
};

const char *
spf_status_name(enum spf_status s)
{
	switch (s) {
	case SPF_NONE:
		return "none";
	case SPF_NEUTRAL:
		return "neutral";
	case SPF_PASS:
		return "pass";
	case SPF_FAIL:
		return "fail";
	case SPF_SOFTFAIL:
		return "softfail";
	case SPF_TEMPERROR:
		return "temperror";
	case SPF_PERMERROR:
		return "permerror";
	}
	return "unknown";
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_alnum(int c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* ---- macro syntax (RFC 7208 7.1) ---- */

static bool
macro_letter_ok(int c, bool exp)
{
	c = lower(c);
	if (strchr("slodiphv", c) != NULL)
		return true;
	return exp && (c == 'c' || c == 'r' || c == 't');
}

static bool
is_delim(int c)
{
	return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/* Parsed macro-expand "%{" letter transformers *delimiter "}". */
struct macro {
	char letter;
	unsigned digits;          /* 0: all */
	bool reverse;
	char delims[8];           /* NUL-terminated set; "" means "." */
};

/* Parse the macro at s (after "%{"). */
static int
macro_parse(struct scan *s, bool exp, struct macro *m, const char **why)
{
	int c = scan_peek(s);
	size_t nd = 0;

	memset(m, 0, sizeof(*m));
	if (c == -1 || !macro_letter_ok(c, exp)) {
		*why = "invalid macro letter";
		return -1;
	}
	m->letter = (char)c;
	s->pos++;
	if (char_is_digit(scan_peek(s))) {
		uint64_t v;

		if (scan_u64(s, 128, &v) == -1 || v == 0) {
			/* RFC 7208 7.3: the DIGIT transformer is nonzero. */
			*why = "invalid macro digits";
			return -1;
		}
		m->digits = (unsigned)v;
	}
	if (lower(scan_peek(s)) == 'r') {
		m->reverse = true;
		s->pos++;
	}
	while (is_delim(scan_peek(s))) {
		if (strchr(m->delims, scan_peek(s)) == NULL &&
		    nd < sizeof(m->delims) - 1)
			m->delims[nd++] = (char)scan_peek(s);
		s->pos++;
	}
	if (scan_char(s, '}') == -1) {
		*why = "invalid macro";
		return -1;
	}
	return 0;
}

/* Check macro-string (or explain-string with exp) syntax. *ends_macro is
 * set when the last element is a macro-expand (RFC 7208 7.1 domain-end). */
static int
macro_check(struct span spec, bool exp, bool *ends_macro, const char **why)
{
	struct scan s = scan_of(spec);
	struct macro m;

	*ends_macro = false;
	while (!scan_eof(&s)) {
		int c = scan_peek(&s);

		*ends_macro = false;
		if (c == '%') {
			s.pos++;
			c = scan_peek(&s);
			if (c == '%' || c == '_' || c == '-') {
				s.pos++;
			} else if (c == '{') {
				s.pos++;
				if (macro_parse(&s, exp, &m, why) == -1)
					return -1;
			} else {
				*why = "invalid macro escape";
				return -1;
			}
			*ends_macro = true;
			continue;
		}
		/* RFC 7208 7.1: macro-literal = %x21-24 / %x26-7E; SP only
		 * in explain-string. */
		if (c < 0x21 || c > 0x7e) {
			if (!(exp && c == ' ')) {
				*why = "invalid character in macro string";
				return -1;
			}
		}
		s.pos++;
	}
	return 0;
}

/* RFC 7208 7.1: toplabel = ( *alphanum ALPHA *alphanum ) /
 * ( 1*alphanum "-" *( alphanum / "-" ) alphanum ). */
static bool
toplabel_ok(struct span l)
{
	bool alpha = false, hyphen = false;

	if (l.len == 0 || !is_alnum(l.p[0]) || !is_alnum(l.p[l.len - 1]))
		return false;
	for (size_t i = 0; i < l.len; i++) {
		if (l.p[i] == '-')
			hyphen = true;
		else if (is_alpha(l.p[i]))
			alpha = true;
		else if (!is_alnum(l.p[i]))
			return false;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static int
domain_spec_check(struct span spec, const char **why)
{
	bool ends_macro;
	size_t end = spec.len, dot;

	if (spec.len == 0) {
		*why = "empty domain";
		return -1;
	}
	if (macro_check(spec, false, &ends_macro, why) == -1)
		return -1;
	if (ends_macro)
		return 0;
	if (end > 0 && spec.p[end - 1] == '.')
		end--;
	dot = end;
	while (dot > 0 && spec.p[dot - 1] != '.')
		dot--;
	if (dot == 0 || !toplabel_ok(span_of(spec.p + dot, end - dot))) {
		*why = "invalid domain";
		return -1;
	}
	return 0;
}

/* ---- record parsing (RFC 7208 4.6.1, 12) ---- */

void
spf_record_release(struct spf_record *rec)
{
	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->ndirs; i++) {
		free(rec->dirs[i].domain_spec);
		free(rec->dirs[i].text);
	}
	free(rec->dirs);
	free(rec->redirect);
	free(rec->exp);
	memset(rec, 0, sizeof(*rec));
}

static const struct {
	const char *name;
	enum spf_mech mech;
} mech_names[] = {
	{ "all", SPF_MECH_ALL },
	{ "include", SPF_MECH_INCLUDE },
	{ "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },
	{ "ptr", SPF_MECH_PTR },
	{ "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 },
	{ "exists", SPF_MECH_EXISTS },
};

static const char *
mech_name(enum spf_mech m)
{
	for (size_t i = 0; i < ARRAY_LEN(mech_names); i++)
		if (mech_names[i].mech == m)
			return mech_names[i].name;
	return "?";
}

/* Strip a trailing "/N" (no leading zeros, N <= max) from *t; -1 on a
 * malformed length, 0 with *out = -1 when there is none. */
static int
take_cidr(struct span *t, int max, int *out)
{
	size_t i = t->len;
	uint64_t v;

	*out = -1;
	while (i > 0 && char_is_digit(t->p[i - 1]))
		i--;
	if (i == t->len || i == 0 || t->p[i - 1] != '/')
		return 0;
	if (t->len - i > 1 && t->p[i] == '0')
		return -1;
	if (span_u64(span_of(t->p + i, t->len - i), (uint64_t)max, &v) == -1)
		return -1;
	*out = (int)v;
	t->len = i - 1;
	return 0;
}

static int
parse_directive(struct span term, struct spf_directive *d, const char **why)
{
	struct span t = term, name, arg = { "", 0 };
	size_t i = 0;
	bool has_arg = false;

	d->qualifier = '+';
	d->cidr4 = d->cidr6 = -1;
	if (t.len > 0 && strchr("+-~?", t.p[0]) != NULL) {
		d->qualifier = t.p[0];
		t.p++;
		t.len--;
	}
	while (i < t.len && is_alnum(t.p[i]))
		i++;
	name = span_of(t.p, i);
	for (i = 0; i < ARRAY_LEN(mech_names); i++)
		if (span_eq_ci(name, mech_names[i].name))
			break;
	if (i == ARRAY_LEN(mech_names)) {
		*why = "unknown mechanism";
		return -1;
	}
	d->mech = mech_names[i].mech;
	t.p += name.len;
	t.len -= name.len;
	if (t.len > 0 && t.p[0] == ':') {
		has_arg = true;
		arg = span_of(t.p + 1, t.len - 1);
	} else if (t.len > 0 && t.p[0] != '/') {
		*why = "invalid mechanism";
		return -1;
	}
	switch (d->mech) {
	case SPF_MECH_ALL:
		if (t.len != 0) {
			*why = "all takes no argument";
			return -1;
		}
		break;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (!has_arg || domain_spec_check(arg, why) == -1) {
			if (!has_arg)
				*why = "mechanism needs a domain";
			return -1;
		}
		d->domain_spec = span_dup(arg);
		break;
	case SPF_MECH_PTR:
		if (!has_arg && t.len != 0) {
			*why = "invalid ptr";
			return -1;
		}
		if (has_arg) {
			if (domain_spec_check(arg, why) == -1)
				return -1;
			d->domain_spec = span_dup(arg);
		}
		break;
	case SPF_MECH_A:
	case SPF_MECH_MX: {
		struct span rest = has_arg ? arg : t;
		int c6 = -1, c4 = -1;

		/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr ] */
		if (take_cidr(&rest, 128, &c6) == -1)
			goto badcidr;
		if (c6 >= 0 && rest.len > 0 && rest.p[rest.len - 1] == '/') {
			rest.len--;
		} else if (c6 >= 0) {
			if (c6 > 32)
				goto badcidr;
			c4 = c6;
			c6 = -1;
		}
		if (c4 < 0 && take_cidr(&rest, 32, &c4) == -1)
			goto badcidr;
		d->cidr4 = c4;
		d->cidr6 = c6;
		if (has_arg) {
			if (domain_spec_check(rest, why) == -1)
				return -1;
			d->domain_spec = span_dup(rest);
		} else if (rest.len != 0) {
			goto badcidr;
		}
		break;
	}
	case SPF_MECH_IP4:
	case SPF_MECH_IP6: {
		bool v4 = d->mech == SPF_MECH_IP4;
		struct span rest = arg;
		char addr[INET6_ADDRSTRLEN + 1];
		int c;

		if (!has_arg) {
			*why = "ip mechanism needs an address";
			return -1;
		}
		if (take_cidr(&rest, v4 ? 32 : 128, &c) == -1)
			goto badcidr;
		if (rest.len == 0 || rest.len >= sizeof(addr)) {
			*why = "invalid ip address";
			return -1;
		}
		memcpy(addr, rest.p, rest.len);
		addr[rest.len] = '\0';
		if (inet_pton(v4 ? AF_INET : AF_INET6, addr, d->ip) != 1) {
			*why = "invalid ip address";
			return -1;
		}
		if (v4)
			d->cidr4 = c >= 0 ? c : 32;
		else
			d->cidr6 = c >= 0 ? c : 128;
		break;
	}
	}
	d->text = span_dup(term);
	for (char *p = d->text; *p != '\0' && *p != ':' && *p != '/'; p++)
		*p = (char)lower(*p);
	return 0;
badcidr:
	*why = "invalid cidr length";
	return -1;
}

static bool
name_char(int c)
{
	return is_alnum(c) || c == '-' || c == '_' || c == '.';
}

/* A term is a modifier if it starts with name "=" (RFC 7208 12). */
static bool
is_modifier(struct span term, struct span *name, struct span *value)
{
	size_t i = 0;

	if (term.len == 0 || !is_alpha(term.p[0]))
		return false;
	while (i < term.len && name_char(term.p[i]))
		i++;
	if (i == term.len || term.p[i] != '=')
		return false;
	*name = span_of(term.p, i);
	*value = span_of(term.p + i + 1, term.len - i - 1);
	return true;
}

static int
parse_term(struct span term, struct spf_record *rec, const char **why)
{
	struct span name, value;
	bool ends;

	if (is_modifier(term, &name, &value)) {
		char **slot = NULL;

		if (span_eq_ci(name, "redirect"))
			slot = &rec->redirect;
		else if (span_eq_ci(name, "exp"))
			slot = &rec->exp;
		if (slot == NULL) {
			/* RFC 7208 6: unknown modifiers are ignored, but
			 * their value must still be a macro-string. */
			return macro_check(value, false, &ends, why);
		}
		if (*slot != NULL) {
			/* RFC 7208 6: at most one of each. */
			*why = "duplicate modifier";
			return -1;
		}
		if (domain_spec_check(value, why) == -1)
			return -1;
		*slot = span_dup(value);
		return 0;
	}
	rec->dirs = xreallocarray(rec->dirs, rec->ndirs + 1,
	    sizeof(*rec->dirs));
	memset(&rec->dirs[rec->ndirs], 0, sizeof(rec->dirs[0]));
	if (parse_directive(term, &rec->dirs[rec->ndirs], why) == -1) {
		free(rec->dirs[rec->ndirs].domain_spec);
		return -1;
	}
	rec->ndirs++;
	return 0;
}

/* RFC 7208 4.5: "v=spf1" then SP or the end. */
static bool
is_spf_record(struct span txt)
{
	return span_has_prefix_ci(txt, "v=spf1") &&
	    (txt.len == 6 || txt.p[6] == ' ');
}

int
spf_parse(struct span txt, struct spf_record *rec, const char **why)
{
	struct scan s;

	memset(rec, 0, sizeof(*rec));
	if (txt.len > SPF_RECORD_MAX) {
		*why = "record too long";
		return -1;
	}
	if (!is_spf_record(txt)) {
		*why = "not an spf record";
		return -1;
	}
	for (size_t i = 0; i < txt.len; i++) {
		unsigned char c = (unsigned char)txt.p[i];

		/* RFC 7208 3.1, 4.6.1: ASCII, terms separated by SP. */
		if (c < 0x20 || c > 0x7e) {
			*why = c >= 0x80 ? "non-ascii character in record" :
			    "control character in record";
			return -1;
		}
	}
	s = scan_of(span_of(txt.p + 6, txt.len - 6));
	while (!scan_eof(&s)) {
		struct span term;

		scan_skip_sp(&s);
		if (scan_eof(&s))
			break;
		if (scan_until(&s, ' ', SPF_RECORD_MAX, &term) == -1) {
			term = scan_rest(&s);
			s.pos = s.len;
		}
		if (parse_term(term, rec, why) == -1) {
			spf_record_release(rec);
			return -1;
		}
	}
	return 0;
}

void
spf_record_format(const struct spf_record *rec, struct buf *out)
{
	buf_adds(out, "v=spf1");
	for (size_t i = 0; i < rec->ndirs; i++) {
		const struct spf_directive *d = &rec->dirs[i];
		char addr[INET6_ADDRSTRLEN];

		buf_addc(out, ' ');
		if (d->qualifier != '+')
			buf_addc(out, d->qualifier);
		buf_adds(out, mech_name(d->mech));
		if (d->mech == SPF_MECH_IP4 || d->mech == SPF_MECH_IP6) {
			bool v4 = d->mech == SPF_MECH_IP4;

			inet_ntop(v4 ? AF_INET : AF_INET6, d->ip, addr,
			    sizeof(addr));
			buf_addf(out, ":%s", addr);
			if ((v4 && d->cidr4 != 32) || (!v4 && d->cidr6 != 128))
				buf_addf(out, "/%d", v4 ? d->cidr4 : d->cidr6);
			continue;
		}
		if (d->domain_spec != NULL)
			buf_addf(out, ":%s", d->domain_spec);
		if (d->cidr4 >= 0)
			buf_addf(out, "/%d", d->cidr4);
		if (d->cidr6 >= 0)
			buf_addf(out, "//%d", d->cidr6);
	}
	if (rec->redirect != NULL)
		buf_addf(out, " redirect=%s", rec->redirect);
	if (rec->exp != NULL)
		buf_addf(out, " exp=%s", rec->exp);
}

/* ---- record lookup (RFC 7208 4.4, 4.5) ---- */

enum spf_status
spf_lookup(struct dns_resolver *r, const char *domain, struct spf_record *rec,
    char **txt_out, bool *authentic, const char **why)
{
	struct dns_answer ans;
	const struct dns_rr *found = NULL;
	enum spf_status st = SPF_NONE;

	memset(rec, 0, sizeof(*rec));
	if (txt_out != NULL)
		*txt_out = NULL;
	dns_lookup(r, domain, DNS_TXT, &ans);
	*authentic = ans.authentic;
	switch (ans.result) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		*why = "no spf record";
		goto out;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		/* RFC 7208 4.4: any other DNS error is a temperror. */
		*why = "dns error looking up spf record";
		st = SPF_TEMPERROR;
		goto out;
	}
	for (size_t i = 0; i < ans.n; i++) {
		if (!is_spf_record(span_of(ans.rr[i].text,
		    ans.rr[i].textlen)))
			continue;
		if (found != NULL) {
			/* RFC 7208 4.5: more than one record. */
			*why = "multiple spf records";
			st = SPF_PERMERROR;
			goto out;
		}
		found = &ans.rr[i];
	}
	if (found == NULL) {
		*why = "no spf record";
		goto out;
	}
	if (spf_parse(span_of(found->text, found->textlen), rec, why) == -1) {
		st = SPF_PERMERROR;
		goto out;
	}
	if (txt_out != NULL)
		*txt_out = xstrdup(found->text);
	st = SPF_PASS;
out:
	dns_answer_release(&ans);
	return st;
}

/* ---- macro expansion (RFC 7208 7) ---- */

static void
ip_nibbles(const unsigned char *ip, struct buf *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++)
		buf_addf(out, "%s%c.%c", i == 0 ? "" : ".", hex[ip[i] >> 4],
		    hex[ip[i] & 0xf]);
}

static bool
ends_with_domain(const char *name, const char *domain)
{
	size_t nl = strlen(name), dl = strlen(domain);

	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (nl == dl)
		return strncasecmp(name, domain, nl) == 0;
	return nl > dl && name[nl - dl - 1] == '.' &&
	    strncasecmp(name + nl - dl, domain, dl) == 0;
}

static bool
ip_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

static bool
answer_has_ip(const struct dns_answer *ans, const struct ctx *c, int bits)
{
	for (size_t i = 0; i < ans->n; i++) {
		unsigned char a[16];

		if (inet_pton(c->v4 ? AF_INET : AF_INET6, ans->rr[i].text,
		    a) != 1)
			continue;
		if (ip_match(a, c->ip, bits))
			return true;
	}
	return false;
}

/* Names from the client IP's PTR records whose forward lookup contains
 * the IP (RFC 7208 5.5), at most SPF_PTR_MAX examined. Calls fn for each
 * validated name until it returns true. */
static void
validated_names(struct ctx *c, bool (*fn)(const char *, void *), void *arg)
{
	struct dns_answer ptr;

	dns_lookup_ptr(c->r, c->ipstr, &ptr);
	c->authentic = c->authentic && ptr.authentic;
	if (ptr.result == DNS_OK) {
		for (size_t i = 0; i < ptr.n && i < SPF_PTR_MAX; i++) {
			struct dns_answer fw;
			bool ok;

			dns_lookup(c->r, ptr.rr[i].text,
			    c->v4 ? DNS_A : DNS_AAAA, &fw);
			c->authentic = c->authentic && fw.authentic;
			ok = fw.result == DNS_OK &&
			    answer_has_ip(&fw, c, c->v4 ? 32 : 128);
			dns_answer_release(&fw);
			if (ok && fn(ptr.rr[i].text, arg))
				break;
		}
	}
	dns_answer_release(&ptr);
}

struct pick_p {
	const char *domain;
	char *exact, *sub, *any; /* owned */
};

static bool
pick_p_fn(const char *name, void *arg)
{
	struct pick_p *p = arg;
	size_t nl = strlen(name), dl = strlen(p->domain);

	if (nl == dl && strcasecmp(name, p->domain) == 0) {
		p->exact = xstrdup(name);
		return true;
	}
	if (p->sub == NULL && ends_with_domain(name, p->domain))
		p->sub = xstrdup(name);
	if (p->any == NULL)
		p->any = xstrdup(name);
	return false;
}

/* RFC 7208 7.3 %{p}: a validated name, preferring <domain> itself, then
 * its subdomains, then any; "unknown" without one. */
static char *
macro_p(struct ctx *c, const char *domain)
{
	struct pick_p p = { domain, NULL, NULL, NULL };
	char *out;

	if (c == NULL)
		return xstrdup("unknown");
	c->lookups++;
	validated_names(c, pick_p_fn, &p);
	out = p.exact != NULL ? p.exact : p.sub != NULL ? p.sub : p.any;
	if (out != p.exact)
		free(p.exact);
	if (out != p.sub)
		free(p.sub);
	if (out != p.any)
		free(p.any);
	return out != NULL ? out : xstrdup("unknown");
}

/* The value of a macro letter before transformation. */
static void
macro_value(struct ctx *c, const struct spf_args *a, const unsigned char *ip,
    bool v4, const char *domain, const char *sender, int letter,
    struct buf *v)
{
	const char *at = strrchr(sender, '@');
	char addr[INET6_ADDRSTRLEN];

	switch (lower(letter)) {
	case 's':
		buf_adds(v, sender);
		break;
	case 'l':
		if (at == NULL || at == sender)
			buf_adds(v, "postmaster");
		else
			buf_add(v, sender, (size_t)(at - sender));
		break;
	case 'o':
		buf_adds(v, at != NULL ? at + 1 : sender);
		break;
	case 'd':
		buf_adds(v, domain);
		break;
	case 'i':
		if (v4)
			buf_addf(v, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
		else
			ip_nibbles(ip, v);
		break;
	case 'p': {
		char *p = macro_p(c, domain);

		buf_adds(v, p);
		free(p);
		break;
	}
	case 'v':
		buf_adds(v, v4 ? "in-addr" : "ip6");
		break;
	case 'h':
		buf_adds(v, a->helo != NULL ? a->helo : "");
		break;
	case 'c':
		/* RFC 7208 7.2: c is the client IP in readable form. */
		if (inet_ntop(v4 ? AF_INET : AF_INET6, ip, addr,
		    sizeof(addr)) != NULL)
			buf_adds(v, addr);
		break;
	case 'r':
		buf_adds(v, a->local_hostname != NULL &&
		    a->local_hostname[0] != '\0' ? a->local_hostname :
		    "unknown");
		break;
	case 't':
		buf_addf(v, "%lld", (long long)(a->now != 0 ? a->now :
		    (int64_t)time(NULL)));
		break;
	}
}

/* RFC 7208 7.3: split on delimiters, reverse, keep the rightmost N,
 * join with ".". Uppercase letters URL-escape the result (RFC 3986
 * unreserved characters stay). */
static void
macro_transform(const struct macro *m, struct span v, struct buf *out)
{
	const char *delims = m->delims[0] != '\0' ? m->delims : ".";
	struct span parts[SPF_DOMAIN_MAX + 2];
	size_t n = 0, start = 0, first;
	bool escape = m->letter >= 'A' && m->letter <= 'Z';
	struct buf tmp;

	for (size_t i = 0; i <= v.len; i++) {
		if (i == v.len || strchr(delims, v.p[i]) != NULL) {
			if (n < ARRAY_LEN(parts))
				parts[n++] = span_of(v.p + start, i - start);
			start = i + 1;
		}
	}
	if (m->reverse)
		for (size_t i = 0; i < n / 2; i++) {
			struct span t = parts[i];

			parts[i] = parts[n - 1 - i];
			parts[n - 1 - i] = t;
		}
	first = m->digits != 0 && m->digits < n ? n - m->digits : 0;
	buf_init(&tmp, BUF_NOMAX);
	for (size_t i = first; i < n; i++) {
		if (i > first)
			buf_addc(&tmp, '.');
		buf_add(&tmp, parts[i].p, parts[i].len);
	}
	for (size_t i = 0; i < tmp.len; i++) {
		unsigned char c = (unsigned char)tmp.data[i];

		if (escape && !(is_alnum(c) || c == '-' || c == '.' ||
		    c == '_' || c == '~'))
			buf_addf(out, "%%%02X", c);
		else
			buf_addc(out, (char)c);
	}
	buf_release(&tmp);
}

static int
expand(struct ctx *c, const struct spf_args *a, const unsigned char *ip,
    bool v4, const char *domain, const char *sender, const char *spec,
    bool exp, struct buf *out, const char **why)
{
	struct scan s = scan_of(span_of_cstr(spec));
	bool ends;

	if (macro_check(span_of_cstr(spec), exp, &ends, why) == -1)
		return -1;
	while (!scan_eof(&s)) {
		int ch = scan_peek(&s);
		struct macro m;
		struct buf v;

		s.pos++;
		if (ch != '%') {
			buf_addc(out, (char)ch);
			continue;
		}
		ch = scan_peek(&s);
		s.pos++;
		if (ch == '%') {
			buf_addc(out, '%');
			continue;
		}
		if (ch == '_') {
			buf_addc(out, ' ');
			continue;
		}
		if (ch == '-') {
			buf_adds(out, "%20");
			continue;
		}
		if (macro_parse(&s, exp, &m, why) == -1)
			return -1;
		buf_init(&v, BUF_NOMAX);
		macro_value(c, a, ip, v4, domain, sender, m.letter, &v);
		macro_transform(&m, span_of_buf(&v), out);
		buf_release(&v);
	}
	if (buf_failed(out)) {
		*why = "expansion too long";
		return -1;
	}
	return 0;
}

int
spf_expand(struct dns_resolver *r, const struct spf_args *a,
    const char *domain, const char *sender, const char *spec, bool exp,
    struct buf *out, const char **why)
{
	struct ctx c;
	unsigned char ip[16] = { 0 };
	bool v4 = true;

	memset(&c, 0, sizeof(c));
	if (a->remote_ip != NULL) {
		if (inet_pton(AF_INET, a->remote_ip, ip) == 1)
			v4 = true;
		else if (inet_pton(AF_INET6, a->remote_ip, ip) == 1)
			v4 = false;
	}
	c.r = r;
	c.a = a;
	memcpy(c.ip, ip, 16);
	c.v4 = v4;
	if (a->remote_ip != NULL)
		snprintf(c.ipstr, sizeof(c.ipstr), "%s", a->remote_ip);
	c.authentic = true;
	return expand(r != NULL ? &c : NULL, a, ip, v4, domain, sender, spec,
	    exp, out, why);
}

/* Expand a domain-spec and cut leading labels to fit 253 octets
 * (RFC 7208 7.3). */
static int
expand_domain(struct ctx *c, const char *domain, const char *sender,
    const char *spec, struct buf *out, const char **why)
{
	const char *p;
	size_t len;

	buf_init(out, 8 * SPF_RECORD_MAX);
	if (expand(c, c->a, c->ip, c->v4, domain, sender, spec, false, out,
	    why) == -1)
		return -1;
	len = out->len;
	if (len > 0 && out->data[len - 1] == '.')
		buf_truncate(out, --len);
	p = out->data;
	while (len > SPF_DOMAIN_MAX) {
		const char *dot = memchr(p, '.', len);

		if (dot == NULL)
			break;
		len -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (p != out->data)
		buf_consume(out, (size_t)(p - out->data));
	return 0;
}

/* ---- check_host() (RFC 7208 4, 5) ---- */

static enum spf_status check_host(struct ctx *c, const char *domain,
    const char *sender, struct eval *ev, int depth);

/* RFC 7208 4.3: a domain must be a valid multi-label name. */
static bool
domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)d[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
		} else if (ch <= 0x20 || ch >= 0x7f) {
			return false;
		} else if (++label > DNS_LABEL_MAX) {
			return false;
		}
	}
	return label > 0 && labels >= 1;
}

static enum match
fail_with(struct ctx *c, enum match m, const char *why)
{
	if (c->problem == NULL)
		c->problem = why;
	return m;
}

/* RFC 7208 4.6.4: count a void lookup; the third is an error. */
static enum match
void_lookup(struct ctx *c)
{
	if (++c->voids > SPF_VOID_MAX)
		return fail_with(c, MATCH_PERMERROR, "too many void lookups");
	return MATCH_NO;
}

static enum match
dns_error(struct ctx *c, const struct dns_answer *ans)
{
	(void)ans;
	return fail_with(c, MATCH_TEMPERROR, "dns error");
}

/* Address lookup of name for the client's family; match within bits. */
static enum match
match_addrs(struct ctx *c, const char *name, const struct spf_directive *d,
    bool count_void)
{
	struct dns_answer ans;
	enum match m = MATCH_NO;
	int bits = c->v4 ? (d->cidr4 >= 0 ? d->cidr4 : 32) :
	    (d->cidr6 >= 0 ? d->cidr6 : 128);

	dns_lookup(c->r, name, c->v4 ? DNS_A : DNS_AAAA, &ans);
	c->authentic = c->authentic && ans.authentic;
	switch (ans.result) {
	case DNS_OK:
		m = answer_has_ip(&ans, c, bits) ? MATCH_YES : MATCH_NO;
		break;
	case DNS_NOTFOUND:
		m = count_void ? void_lookup(c) : MATCH_NO;
		break;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		m = dns_error(c, &ans);
		break;
	}
	dns_answer_release(&ans);
	return m;
}

static enum match
match_mx(struct ctx *c, const char *name, const struct spf_directive *d)
{
	struct dns_answer ans;
	enum match m = MATCH_NO;

	dns_lookup(c->r, name, DNS_MX, &ans);
	c->authentic = c->authentic && ans.authentic;
	switch (ans.result) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		m = void_lookup(c);
		goto out;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		m = dns_error(c, &ans);
		goto out;
	}
	if (ans.n > SPF_MX_MAX) {
		m = fail_with(c, MATCH_PERMERROR, "too many mx records");
		goto out;
	}
	for (size_t i = 0; i < ans.n && m == MATCH_NO; i++) {
		/* RFC 7505: a null MX ("." exchange) names no host. */
		if (ans.rr[i].text[0] == '\0')
			continue;
		m = match_addrs(c, ans.rr[i].text, d, false);
	}
out:
	dns_answer_release(&ans);
	return m;
}

struct ptr_target {
	const char *target;
	bool matched;
};

static bool
ptr_fn(const char *name, void *arg)
{
	struct ptr_target *t = arg;

	if (ends_with_domain(name, t->target))
		t->matched = true;
	return t->matched;
}

static enum match
match_exists(struct ctx *c, const char *name)
{
	struct dns_answer ans;
	enum match m = MATCH_NO;

	/* RFC 7208 5.7: always an A query, whatever the client family. */
	dns_lookup(c->r, name, DNS_A, &ans);
	c->authentic = c->authentic && ans.authentic;
	switch (ans.result) {
	case DNS_OK:
		m = MATCH_YES;
		break;
	case DNS_NOTFOUND:
		m = void_lookup(c);
		break;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		m = dns_error(c, &ans);
		break;
	}
	dns_answer_release(&ans);
	return m;
}

static enum match
match_include(struct ctx *c, const char *name, const char *sender, int depth)
{
	struct eval sub;
	enum spf_status st;
	enum match m = MATCH_NO;

	memset(&sub, 0, sizeof(sub));
	st = check_host(c, name, sender, &sub, depth + 1);
	/* RFC 7208 5.2 table. */
	switch (st) {
	case SPF_PASS:
		m = MATCH_YES;
		break;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		m = MATCH_NO;
		break;
	case SPF_TEMPERROR:
		m = MATCH_TEMPERROR;
		break;
	case SPF_NONE:
		m = fail_with(c, MATCH_PERMERROR,
		    "included domain has no spf record");
		break;
	case SPF_PERMERROR:
		m = MATCH_PERMERROR;
		break;
	}
	free(sub.mechanism);
	free(sub.exp_spec);
	free(sub.exp_domain);
	return m;
}

static enum match
eval_directive(struct ctx *c, const struct spf_directive *d,
    const char *domain, const char *sender, int depth)
{
	struct buf target;
	enum match m = MATCH_NO;
	const char *why = NULL;

	if (d->mech == SPF_MECH_IP4 || d->mech == SPF_MECH_IP6) {
		if ((d->mech == SPF_MECH_IP4) != c->v4)
			return MATCH_NO;
		return ip_match(c->ip, d->ip, c->v4 ? d->cidr4 : d->cidr6) ?
		    MATCH_YES : MATCH_NO;
	}
	if (d->mech == SPF_MECH_ALL)
		return MATCH_YES;
	/* RFC 7208 4.6.4: these terms query DNS and count. */
	if (++c->lookups > SPF_LOOKUP_MAX)
		return fail_with(c, MATCH_PERMERROR, "too many dns lookups");
	if (d->domain_spec != NULL) {
		if (expand_domain(c, domain, sender, d->domain_spec, &target,
		    &why) == -1) {
			buf_release(&target);
			return fail_with(c, MATCH_PERMERROR,
			    "macro expansion failed");
		}
	} else {
		buf_init(&target, BUF_NOMAX);
		buf_adds(&target, domain);
	}
	if (d->mech != SPF_MECH_INCLUDE && !dns_name_valid(target.data)) {
		/* RFC 7208 4.3, 5: a target that cannot be a DNS name
		 * (empty or over-long label) does not exist. */
		m = void_lookup(c);
		buf_release(&target);
		return m;
	}
	switch (d->mech) {
	case SPF_MECH_A:
		m = match_addrs(c, target.data, d, true);
		break;
	case SPF_MECH_MX:
		m = match_mx(c, target.data, d);
		break;
	case SPF_MECH_PTR: {
		struct ptr_target t = { target.data, false };

		validated_names(c, ptr_fn, &t);
		m = t.matched ? MATCH_YES : MATCH_NO;
		break;
	}
	case SPF_MECH_EXISTS:
		m = match_exists(c, target.data);
		break;
	case SPF_MECH_INCLUDE:
		m = match_include(c, target.data, sender, depth);
		break;
	case SPF_MECH_ALL:
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		break;
	}
	buf_release(&target);
	return m;
}

static enum spf_status
qualifier_status(char q)
{
	switch (q) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

static enum spf_status
check_host(struct ctx *c, const char *domain, const char *sender,
    struct eval *ev, int depth)
{
	struct spf_record rec;
	enum spf_status st;
	const char *why = NULL;
	bool auth = false;

	if (!domain_valid(domain)) {
		if (c->problem == NULL)
			c->problem = "invalid domain";
		return ev->status = SPF_NONE;
	}
	st = spf_lookup(c->r, domain, &rec, NULL, &auth, &why);
	c->authentic = c->authentic && auth;
	if (st != SPF_PASS) {
		if (c->problem == NULL && st != SPF_NONE)
			c->problem = why;
		return ev->status = st;
	}
	for (size_t i = 0; i < rec.ndirs; i++) {
		const struct spf_directive *d = &rec.dirs[i];
		enum match m = eval_directive(c, d, domain, sender, depth);

		if (m == MATCH_NO)
			continue;
		if (m == MATCH_TEMPERROR || m == MATCH_PERMERROR) {
			st = m == MATCH_TEMPERROR ? SPF_TEMPERROR :
			    SPF_PERMERROR;
			ev->mechanism = xstrdup(d->text);
			goto out;
		}
		st = qualifier_status(d->qualifier);
		ev->mechanism = xstrdup(d->text);
		if (st == SPF_FAIL && rec.exp != NULL) {
			ev->exp_spec = xstrdup(rec.exp);
			ev->exp_domain = xstrdup(domain);
		}
		goto out;
	}
	if (rec.redirect != NULL) {
		struct buf target;

		/* RFC 7208 4.6.4: redirect counts as a lookup. */
		if (++c->lookups > SPF_LOOKUP_MAX) {
			fail_with(c, MATCH_PERMERROR, "too many dns lookups");
			st = SPF_PERMERROR;
			goto out;
		}
		if (expand_domain(c, domain, sender, rec.redirect, &target,
		    &why) == -1) {
			buf_release(&target);
			fail_with(c, MATCH_PERMERROR, "macro expansion failed");
			st = SPF_PERMERROR;
			goto out;
		}
		/* RFC 7208 6.1: the redirected record's result, exp and
		 * all; none becomes permerror. */
		st = check_host(c, target.data, sender, ev, depth + 1);
		buf_release(&target);
		if (st == SPF_NONE) {
			fail_with(c, MATCH_PERMERROR,
			    "redirect domain has no spf record");
			st = SPF_PERMERROR;
		}
		goto out;
	}
	st = SPF_NEUTRAL; /* RFC 7208 4.7: default result */
	ev->mechanism = xstrdup("default");
out:
	spf_record_release(&rec);
	return ev->status = st;
}

/* RFC 7208 6.2: fetch and expand the explanation; any problem means no
 * explanation, never a different result. */
static char *
explanation(struct ctx *c, const struct eval *ev, const char *sender)
{
	struct buf name, text;
	struct dns_answer ans;
	const char *why;
	char *out = NULL;

	if (expand_domain(c, ev->exp_domain, sender, ev->exp_spec, &name,
	    &why) == -1) {
		buf_release(&name);
		return NULL;
	}
	dns_lookup(c->r, name.data, DNS_TXT, &ans);
	buf_release(&name);
	if (ans.result != DNS_OK || ans.n != 1)
		goto out;
	buf_init(&text, 4 * SPF_RECORD_MAX);
	if (expand(c, c->a, c->ip, c->v4, ev->exp_domain, sender,
	    ans.rr[0].text, true, &text, &why) == 0) {
		bool clean = true;

		/* Shown to people only after this check (spec/auth.md 2). */
		for (size_t i = 0; i < text.len; i++)
			if ((unsigned char)text.data[i] < 0x20 ||
			    (unsigned char)text.data[i] > 0x7e)
				clean = false;
		if (clean) {
			if (text.len > SPF_EXP_MAX)
				buf_truncate(&text, SPF_EXP_MAX);
			out = buf_take(&text);
		}
	}
	buf_release(&text);
out:
	dns_answer_release(&ans);
	return out;
}

static int
ctx_init(struct ctx *c, struct dns_resolver *r, const struct spf_args *a)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->a = a;
	c->authentic = true;
	if (a->remote_ip == NULL)
		return -1;
	if (inet_pton(AF_INET, a->remote_ip, c->ip) == 1) {
		c->v4 = true;
	} else if (inet_pton(AF_INET6, a->remote_ip, c->ip) == 1) {
		static const unsigned char mapped[12] = { [10] = 0xff,
			[11] = 0xff };

		/* RFC 7208 5: an IPv4-mapped IPv6 address is IPv4. */
		if (memcmp(c->ip, mapped, 12) == 0) {
			memmove(c->ip, c->ip + 12, 4);
			memset(c->ip + 4, 0, 12);
			c->v4 = true;
		}
	} else {
		return -1;
	}
	inet_ntop(c->v4 ? AF_INET : AF_INET6, c->ip, c->ipstr,
	    sizeof(c->ipstr));
	return 0;
}

enum spf_status
spf_check_host(struct dns_resolver *r, const struct spf_args *a,
    const char *domain, const char *sender, enum spf_identity identity,
    struct spf_result *res)
{
	struct ctx c;
	struct eval ev;

	memset(res, 0, sizeof(*res));
	memset(&ev, 0, sizeof(ev));
	res->identity = identity;
	res->domain = xstrdup(domain);
	res->sender = xstrdup(sender);
	if (ctx_init(&c, r, a) == -1) {
		res->status = SPF_PERMERROR;
		res->problem = xstrdup("invalid client ip address");
		return res->status;
	}
	res->status = check_host(&c, domain, sender, &ev, 0);
	res->mechanism = ev.mechanism;
	if (res->status == SPF_FAIL && ev.exp_spec != NULL)
		res->explanation = explanation(&c, &ev, sender);
	free(ev.exp_spec);
	free(ev.exp_domain);
	if (c.problem != NULL && res->status != SPF_PASS)
		res->problem = xstrdup(c.problem);
	res->authentic = c.authentic;
	res->lookups = c.lookups;
	res->void_lookups = c.voids;
	return res->status;
}

static bool
helo_is_ip(const char *h)
{
	unsigned char ip[16];

	if (h[0] == '[')
		return true;
	return inet_pton(AF_INET, h, ip) == 1 || inet_pton(AF_INET6, h, ip) == 1;
}

enum spf_status
spf_verify(struct dns_resolver *r, const struct spf_args *a,
    struct spf_result *res)
{
	struct buf sender;
	enum spf_status st;

	buf_init(&sender, BUF_NOMAX);
	if (a->mailfrom_domain != NULL && a->mailfrom_domain[0] != '\0') {
		/* RFC 7208 4.3: an empty localpart becomes postmaster. */
		buf_addf(&sender, "%s@%s", a->mailfrom_local != NULL &&
		    a->mailfrom_local[0] != '\0' ? a->mailfrom_local :
		    "postmaster", a->mailfrom_domain);
		st = spf_check_host(r, a, a->mailfrom_domain, sender.data,
		    SPF_ID_MAILFROM, res);
	} else if (a->helo != NULL && a->helo[0] != '\0' &&
	    !helo_is_ip(a->helo)) {
		/* RFC 7208 2.4: null sender, check HELO. */
		buf_addf(&sender, "postmaster@%s", a->helo);
		st = spf_check_host(r, a, a->helo, sender.data, SPF_ID_HELO,
		    res);
	} else {
		memset(res, 0, sizeof(*res));
		res->status = st = SPF_NONE;
		res->identity = SPF_ID_NONE;
		res->authentic = false;
		res->problem = xstrdup("no domain, ehlo is an ip literal and "
				       "mailfrom is empty");
	}
	buf_release(&sender);
	return st;
}

void
spf_result_release(struct spf_result *res)
{
	if (res == NULL)
		return;
	free(res->domain);
	free(res->sender);
	free(res->mechanism);
	free(res->explanation);
	free(res->problem);
	memset(res, 0, sizeof(*res));
}

/* ---- Received-SPF (RFC 7208 9.1) ---- */

static bool
is_dot_atom(const char *s)
{
	if (*s == '\0' || *s == '.')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		/* RFC 5322 3.2.3 atext, plus "." not doubled or last. */
		if (c == '.') {
			if (p[1] == '.' || p[1] == '\0')
				return false;
			continue;
		}
		if (!is_alnum(c) && strchr("!#$%&'*+-/=?^_`{|}~", c) == NULL)
			return false;
	}
	return true;
}

/* Append one word, folding before it when the line would pass 78
 * characters (RFC 5322 2.1.1, 3.2.2). */
static void
add_word(struct buf *out, size_t *col, const char *w, size_t len)
{
	if (*col + 1 + len > 78) {
		buf_adds(out, "\r\n\t");
		*col = 1;
	} else {
		buf_addc(out, ' ');
		*col += 1;
	}
	buf_add(out, w, len);
	*col += len;
}

/* Append key=value; quoted-string unless a dot-atom; controls and
 * non-ASCII bytes are dropped so a peer cannot inject header lines. */
static void
add_pair(struct buf *out, size_t *col, const char *key, const char *val,
    bool last)
{
	struct buf item;

	buf_init(&item, BUF_NOMAX);
	buf_addf(&item, "%s=", key);
	if (is_dot_atom(val)) {
		buf_adds(&item, val);
	} else {
		buf_addc(&item, '"');
		for (const char *p = val; *p != '\0'; p++) {
			unsigned char c = (unsigned char)*p;

			if (c < 0x20 || c > 0x7e)
				continue;
			if (c == '"' || c == '\\')
				buf_addc(&item, '\\');
			buf_addc(&item, (char)c);
		}
		buf_addc(&item, '"');
	}
	if (!last)
		buf_addc(&item, ';');
	add_word(out, col, item.data, item.len);
	buf_release(&item);
}

/* The comment, "(domain D[, from ehlo because mailfrom is empty])", with
 * the bytes that could end it or the header dropped, folded between
 * words. No comment without a domain. */
static void
add_comment(struct buf *out, size_t *col, const struct spf_result *res)
{
	struct buf text, clean;
	size_t w = 0;

	if (res->identity == SPF_ID_NONE || res->domain == NULL)
		return;
	buf_init(&text, BUF_NOMAX);
	buf_init(&clean, BUF_NOMAX);
	buf_addf(&text, "(domain %s%s)", res->domain,
	    res->identity == SPF_ID_HELO ?
	    ", from ehlo because mailfrom is empty" : "");
	buf_addc(&clean, '(');
	for (size_t i = 1; i + 1 < text.len; i++) {
		unsigned char c = (unsigned char)text.data[i];

		if (c >= 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\')
			buf_addc(&clean, (char)c);
	}
	buf_addc(&clean, ')');
	for (size_t i = 0; i <= clean.len; i++) {
		if (i < clean.len && clean.data[i] != ' ')
			continue;
		if (i > w)
			add_word(out, col, clean.data + w, i - w);
		w = i + 1;
	}
	buf_release(&clean);
	buf_release(&text);
}

/* RFC 7208 9.1 envelope-from: the <sender> of check_host(), also when the
 * check did not run to the end (a time limit): the MAIL FROM address with
 * postmaster for an empty localpart, else postmaster@<helo>. */
static void
envelope_from(const struct spf_result *res, const struct spf_args *a,
    struct buf *out)
{
	if (res->sender != NULL)
		buf_adds(out, res->sender);
	else if (a->mailfrom_domain != NULL && a->mailfrom_domain[0] != '\0')
		buf_addf(out, "%s@%s", a->mailfrom_local != NULL &&
		    a->mailfrom_local[0] != '\0' ? a->mailfrom_local :
		    "postmaster", a->mailfrom_domain);
	else if (a->helo != NULL && a->helo[0] != '\0')
		buf_addf(out, "postmaster@%s", a->helo);
}

/* spec/smtp.md 10: "Received-SPF: <result> (domain <d>[, from ehlo
 * because mailfrom is empty]) client-ip=<ip>; envelope-from=<sender>;
 * helo=<helo>; [problem=<err>;] [mechanism=<m>;] receiver=<hostname>;
 * identity=<mailfrom|helo>". */
void
spf_received_header(const struct spf_result *res, const struct spf_args *a,
    const char *receiver, struct buf *out)
{
	struct buf from;
	size_t start = out->len, col;
	char problem[SPF_PROBLEM_MAX + 1];

	buf_addf(out, "Received-SPF: %s", spf_status_name(res->status));
	col = out->len - start;
	add_comment(out, &col, res);
	add_pair(out, &col, "client-ip", a->remote_ip, false);
	buf_init(&from, BUF_NOMAX);
	envelope_from(res, a, &from);
	add_pair(out, &col, "envelope-from", from.data, false);
	buf_release(&from);
	add_pair(out, &col, "helo", a->helo != NULL ? a->helo : "", false);
	if (res->problem != NULL) {
		/* Truncated to SPF_PROBLEM_MAX bytes, so that
		 * "problem=...;" fits one folded line. */
		snprintf(problem, sizeof(problem), "%s", res->problem);
		add_pair(out, &col, "problem", problem, false);
	}
	if (res->mechanism != NULL)
		add_pair(out, &col, "mechanism", res->mechanism, false);
	add_pair(out, &col, "receiver", receiver, false);
	/* RFC 7208 2.4: with a null reverse-path (SPF_ID_NONE: the HELO
	 * is an IP literal) the MAIL FROM identity is postmaster@<helo>. */
	add_pair(out, &col, "identity", res->identity == SPF_ID_HELO ?
	    "helo" : "mailfrom", true);
}
