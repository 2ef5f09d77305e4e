/*
 * smtp_parse.c: parse SMTP command lines (RFC 5321 4.1; RFC 1870 SIZE;
 * RFC 6152 8BITMIME; RFC 6531 SMTPUTF8; RFC 8689 REQUIRETLS; RFC 4865
 * FUTURERELEASE; RFC 4954 AUTH) and read DATA (RFC 5321 4.5.2). Input
 * comes from unauthenticated peers, line end removed, at most
 * SMTP_LINE_MAX bytes. Pure: any thread, no I/O, no logging.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "smtp/smtp_parse.h"
#include "lib/banned.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_VERB_HELO },
	{ "EHLO", SMTP_VERB_EHLO },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "RSET", SMTP_VERB_RSET },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
};

enum smtp_verb
smtp_parse_verb(struct span line, struct span *args_out)
{
	size_t n = 0;

	while (n < line.len && line.p[n] != ' ')
		n++;
	*args_out = n < line.len ? span_of(line.p + n + 1, line.len - n - 1)
				 : span_of(line.p + n, 0);
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (span_eq_ci(span_of(line.p, n), verbs[i].name))
			return verbs[i].verb;
	return SMTP_VERB_UNKNOWN;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "UNKNOWN";
}

static int
perr(struct smtp_perr *err, enum smtp_perr_kind k, const char *why)
{
	err->kind = k;
	err->why = why;
	err->param = span_of("", 0);
	return -1;
}

/* RFC 5322 3.2.3 atext. */
static bool
is_atext(int c)
{
	return char_is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of a valid UTF-8 sequence at p (non-ASCII), or 0. */
static size_t
utf8_seq(const char *p, size_t left)
{
	unsigned char c = (unsigned char)p[0];
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left || !utf8_valid(p, n))
		return 0;
	return n;
}

/* RFC 5321 4.1.2 Local-part; RFC 6531 3.3 adds UTF8-non-ascii. */
static int
parse_localpart(struct scan *s, const struct smtp_parse_opts *o,
    struct buf *out, bool *utf8, struct smtp_perr *err)
{
	if (scan_peek(s) == '"') {
		s->pos++;
		for (;;) {
			int c = scan_peek(s);

			if (c == -1)
				return perr(err, SMTP_PERR_SYNTAX,
				    "unterminated quoted localpart");
			if (c == '"') {
				s->pos++;
				return 0;
			}
			if (c == '\\') {
				int d;

				s->pos++;
				d = scan_peek(s);
				/* RFC 5321 4.1.2: quoted-pairSMTP %d92 %d32-126 */
				if (d < 32 || d > 126)
					return perr(err, SMTP_PERR_SYNTAX,
					    "bad quoted pair in localpart");
				buf_addc(out, (char)d);
				s->pos++;
				continue;
			}
			if (c >= 0x80) {
				size_t n = utf8_seq(s->p + s->pos, scan_left(s));

				if (n == 0)
					return perr(err, SMTP_PERR_SYNTAX,
					    "invalid utf-8 in localpart");
				*utf8 = true;
				buf_add(out, s->p + s->pos, n);
				s->pos += n;
				continue;
			}
			/* RFC 5321 4.1.2: qtextSMTP %d32-33 / %d35-91 / %d93-126 */
			if (c < 32 || c > 126)
				return perr(err, SMTP_PERR_SYNTAX,
				    "bad character in quoted localpart");
			buf_addc(out, (char)c);
			s->pos++;
		}
	}
	/* Dot-string = Atom *("." Atom) */
	for (bool need_atom = true;;) {
		int c = scan_peek(s);

		if (c == '.' && !need_atom) {
			buf_addc(out, '.');
			s->pos++;
			need_atom = true;
			continue;
		}
		if (c != -1 && c < 0x80 && is_atext(c)) {
			buf_addc(out, (char)c);
			s->pos++;
			need_atom = false;
			continue;
		}
		if (c >= 0x80) {
			size_t n = utf8_seq(s->p + s->pos, scan_left(s));

			if (n == 0)
				return perr(err, SMTP_PERR_SYNTAX,
				    "invalid utf-8 in localpart");
			*utf8 = true;
			buf_add(out, s->p + s->pos, n);
			s->pos += n;
			need_atom = false;
			continue;
		}
		if (need_atom)
			return perr(err, SMTP_PERR_SYNTAX, "bad localpart");
		return 0;
	}
}

/* RFC 5321 4.1.2 Domain (RFC 6531 3.3: U-labels with SMTPUTF8), or an
 * address literal (RFC 5321 4.1.3). */
static int
parse_domain(struct scan *s, struct buf *out, bool *literal, bool *utf8,
    struct smtp_perr *err)
{
	size_t start = s->pos, label = 0;
	bool hyphen_end = false;

	if (scan_peek(s) == '[') {
		struct span lit;
		char tmp[64];
		unsigned char addr[16];

		if (scan_between(s, '[', ']', 60, &lit) == -1)
			return perr(err, SMTP_PERR_SYNTAX, "bad address literal");
		if (span_has_prefix_ci(lit, "IPv6:")) {
			memcpy(tmp, lit.p + 5, lit.len - 5);
			tmp[lit.len - 5] = '\0';
			if (inet_pton(AF_INET6, tmp, addr) != 1)
				return perr(err, SMTP_PERR_SYNTAX,
				    "bad ipv6 address literal");
		} else {
			memcpy(tmp, lit.p, lit.len);
			tmp[lit.len] = '\0';
			if (inet_pton(AF_INET, tmp, addr) != 1)
				return perr(err, SMTP_PERR_SYNTAX,
				    "bad ipv4 address literal");
		}
		buf_add(out, s->p + start, s->pos - start);
		*literal = true;
		return 0;
	}
	for (;;) {
		int c = scan_peek(s);

		if (c != -1 && c < 0x80 && (char_is_alnum(c) || c == '-')) {
			if (label == 0 && c == '-')
				return perr(err, SMTP_PERR_SYNTAX,
				    "domain label starts with hyphen");
			buf_addc(out, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
			hyphen_end = c == '-';
			s->pos++;
			label++;
		} else if (c >= 0x80) {
			size_t n = utf8_seq(s->p + s->pos, scan_left(s));

			if (n == 0)
				return perr(err, SMTP_PERR_SYNTAX,
				    "invalid utf-8 in domain");
			*utf8 = true;
			buf_add(out, s->p + s->pos, n);
			s->pos += n;
			label += n;
			hyphen_end = false;
		} else if (c == '.' && label > 0 && !hyphen_end) {
			buf_addc(out, '.');
			s->pos++;
			label = 0;
		} else {
			break;
		}
		if (label > SMTP_LABEL_MAX)
			return perr(err, SMTP_PERR_SYNTAX, "domain label too long");
	}
	if (label == 0 || hyphen_end)
		return perr(err, SMTP_PERR_SYNTAX, "bad domain");
	if (s->pos - start > SMTP_DOMAIN_MAX)
		return perr(err, SMTP_PERR_SYNTAX, "domain too long");
	return 0;
}

void
smtp_addr_release(struct smtp_addr *a)
{
	if (a == NULL)
		return;
	free(a->localpart);
	free(a->domain);
	memset(a, 0, sizeof(*a));
}

static int
parse_mailbox(struct scan *s, const struct smtp_parse_opts *o,
    struct smtp_addr *out, struct smtp_perr *err)
{
	struct buf lp, dom;
	bool lp8 = false, d8 = false, lit = false;
	size_t lpstart = s->pos;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&lp, SMTP_PATH_MAX);
	buf_init(&dom, SMTP_PATH_MAX);
	if (parse_localpart(s, o, &lp, &lp8, err) == -1)
		goto out;
	if (s->pos - lpstart >
	    (o->pedantic ? SMTP_LOCALPART_STRICT : SMTP_LOCALPART_MAX)) {
		perr(err, SMTP_PERR_SYNTAX, "localpart too long");
		goto out;
	}
	if (scan_char(s, '@') == -1) {
		perr(err, SMTP_PERR_SYNTAX, "missing @ in address");
		goto out;
	}
	if (parse_domain(s, &dom, &lit, &d8, err) == -1)
		goto out;
	if ((lp8 || d8) && !o->smtputf8) {
		perr(err, SMTP_PERR_NONASCII,
		    "non-ascii address not permitted without smtputf8");
		goto out;
	}
	if (buf_failed(&lp) || buf_failed(&dom)) {
		perr(err, SMTP_PERR_SYNTAX, "address too long");
		goto out;
	}
	out->localpart = buf_take(&lp);
	out->domain = buf_take(&dom);
	out->ip_literal = lit;
	out->utf8 = lp8 || d8;
	rc = 0;
out:
	buf_release(&lp);
	buf_release(&dom);
	return rc;
}

int
smtp_parse_addr(struct span sp, const struct smtp_parse_opts *o,
    struct smtp_addr *out, struct smtp_perr *err)
{
	struct scan s = scan_of(sp);

	if (parse_mailbox(&s, o, out, err) == -1)
		return -1;
	if (!scan_eof(&s)) {
		smtp_addr_release(out);
		return perr(err, SMTP_PERR_SYNTAX, "trailing data after address");
	}
	return 0;
}

void
smtp_localpart_format(const char *lp, struct buf *out)
{
	bool dotatom = lp[0] != '\0' && lp[0] != '.';

	for (size_t i = 0; lp[i] != '\0' && dotatom; i++) {
		unsigned char c = (unsigned char)lp[i];

		if (c == '.')
			dotatom = lp[i + 1] != '\0' && lp[i + 1] != '.';
		else if (c < 0x80 && !is_atext(c))
			dotatom = false;
	}
	if (dotatom) {
		buf_adds(out, lp);
		return;
	}
	buf_addc(out, '"');
	for (size_t i = 0; lp[i] != '\0'; i++) {
		if (lp[i] == '"' || lp[i] == '\\')
			buf_addc(out, '\\');
		buf_addc(out, lp[i]);
	}
	buf_addc(out, '"');
}

void
smtp_addr_format(const struct smtp_addr *a, struct buf *out)
{
	smtp_localpart_format(a->localpart, out);
	buf_addc(out, '@');
	buf_adds(out, a->domain);
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 4.1.2); the source
 * route is parsed and ignored (RFC 5321 C). */
static int
parse_path(struct scan *s, const struct smtp_parse_opts *o, bool allow_null,
    bool *null_out, struct smtp_addr *out, struct smtp_perr *err)
{
	size_t start = s->pos;

	*null_out = false;
	if (scan_char(s, '<') == -1)
		return perr(err, SMTP_PERR_SYNTAX, "expected <path>");
	if (scan_char(s, '>') == 0) {
		if (!allow_null)
			return perr(err, SMTP_PERR_SYNTAX, "empty path");
		*null_out = true;
		return 0;
	}
	if (scan_peek(s) == '@') {
		struct span adl;

		if (scan_until(s, ':', SMTP_PATH_MAX, &adl) == -1 ||
		    scan_char(s, ':') == -1)
			return perr(err, SMTP_PERR_SYNTAX, "bad source route");
	}
	if (parse_mailbox(s, o, out, err) == -1)
		return -1;
	if (scan_char(s, '>') == -1) {
		smtp_addr_release(out);
		return perr(err, SMTP_PERR_SYNTAX, "expected > after address");
	}
	if (s->pos - start > SMTP_PATH_MAX) {
		smtp_addr_release(out);
		return perr(err, SMTP_PERR_SYNTAX, "path too long");
	}
	return 0;
}

/* "FROM:" / "TO:" with a tolerated space after the colon. */
static int
parse_prefix(struct scan *s, const char *lit, const struct smtp_parse_opts *o,
    struct smtp_perr *err)
{
	if (scan_lit_ci(s, lit) == -1)
		return perr(err, SMTP_PERR_SYNTAX, lit[0] == 'F'
			? "expected FROM:" : "expected TO:");
	/* INTEROP: many clients send "FROM: <x>"; pedantic refuses it. */
	if (!o->pedantic)
		scan_skip_sp(s);
	return 0;
}

static bool
is_keychar(int c)
{
	return char_is_alnum(c) || c == '-';
}

/* esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 3.3 adds UTF-8. */
static bool
is_valchar(int c)
{
	return (c >= 33 && c <= 126 && c != '=') || c >= 0x80;
}

/* One " keyword[=value]"; 1 when a parameter was read, 0 at the end, -1
 * on syntax errors. Trailing space is tolerated unless strict. */
static int
next_param(struct scan *s, const struct smtp_parse_opts *o, struct span *key,
    struct span *val, bool *has_val, struct smtp_perr *err)
{
	size_t save = s->pos;

	if (scan_eof(s))
		return 0;
	if (scan_sp(s) == -1) {
		if (!o->strict_trailing && scan_peek(s) == '\t') {
			while (scan_peek(s) == '\t' || scan_peek(s) == ' ')
				s->pos++;
			if (scan_eof(s))
				return 0;
		}
		return perr(err, SMTP_PERR_SYNTAX, "expected space");
	}
	while (scan_peek(s) == '\t' && !o->strict_trailing)
		s->pos++;
	if (scan_eof(s)) {
		if (o->strict_trailing) {
			s->pos = save;
			return perr(err, SMTP_PERR_SYNTAX,
			    "trailing space after argument");
		}
		return 0;
	}
	if (scan_while(s, is_keychar, 64, key) == -1)
		return perr(err, SMTP_PERR_SYNTAX, "bad parameter keyword");
	*has_val = false;
	*val = span_of("", 0);
	if (scan_char(s, '=') == 0) {
		if (scan_while(s, is_valchar, SMTP_LINE_MAX, val) == -1)
			return perr(err, SMTP_PERR_SYNTAX, "bad parameter value");
		if (!utf8_valid(val->p, val->len))
			return perr(err, SMTP_PERR_SYNTAX,
			    "invalid utf-8 in parameter value");
		*has_val = true;
	}
	return 1;
}

void
smtp_mail_release(struct smtp_mail *m)
{
	if (m == NULL)
		return;
	smtp_addr_release(&m->from);
	memset(m, 0, sizeof(*m));
}

/* RFC 5321 4.1.3 / RFC 5321 4.1.2: days-in-month aware date check. */
int
smtp_parse_rfc3339(struct span sp, int64_t *ns_out)
{
	struct scan s = scan_of(sp);
	uint64_t y, mo, d, h, mi, sec, frac = 0;
	struct tm tm = { 0 };
	time_t t;
	size_t fd = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };

	if (sp.len < 20 || sp.len > SMTP_HOLDUNTIL_MAX)
		return -1;
	if (span_u64(span_of(sp.p, 4), 9999, &y) == -1 ||
	    sp.p[4] != '-' || span_u64(span_of(sp.p + 5, 2), 12, &mo) == -1 ||
	    sp.p[7] != '-' || span_u64(span_of(sp.p + 8, 2), 31, &d) == -1 ||
	    sp.p[10] != 'T' || span_u64(span_of(sp.p + 11, 2), 23, &h) == -1 ||
	    sp.p[13] != ':' || span_u64(span_of(sp.p + 14, 2), 59, &mi) == -1 ||
	    sp.p[16] != ':' || span_u64(span_of(sp.p + 17, 2), 60, &sec) == -1)
		return -1;
	if (mo == 0 || d == 0 || d > (uint64_t)mdays[mo - 1] || y < 1970)
		return -1;
	s.pos = 19;
	if (scan_char(&s, '.') == 0) {
		while (char_is_digit(scan_peek(&s))) {
			if (fd < 9) {
				frac = frac * 10 + (uint64_t)(scan_peek(&s) - '0');
				fd++;
			}
			s.pos++;
		}
		if (s.pos == 20)
			return -1;
	}
	if (scan_char(&s, 'Z') == -1 || !scan_eof(&s))
		return -1;
	while (fd < 9) {
		frac *= 10;
		fd++;
	}
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)mo - 1;
	tm.tm_mday = (int)d;
	tm.tm_hour = (int)h;
	tm.tm_min = (int)mi;
	tm.tm_sec = (int)sec;
	t = timegm(&tm);
	if (t == (time_t)-1 || t > INT64_MAX / 1000000000 - 1)
		return -1;
	*ns_out = (int64_t)t * 1000000000 + (int64_t)frac;
	return 0;
}

static int
mail_param(struct smtp_mail *m, struct span key, struct span val, bool hv,
    bool submission, struct smtp_perr *err)
{
	if (span_eq_ci(key, "SIZE")) {
		/* spec/smtp.md 6: at most 20 digits, 0 allowed */
		if (!hv || val.len > 20 ||
		    span_u64(val, UINT64_MAX, &m->size) == -1)
			return perr(err, SMTP_PERR_SYNTAX, "bad SIZE value");
		m->has_size = true;
	} else if (span_eq_ci(key, "BODY")) {
		if (hv && span_eq_ci(val, "7BIT"))
			m->body = SMTP_BODY_7BIT;
		else if (hv && span_eq_ci(val, "8BITMIME"))
			m->body = SMTP_BODY_8BITMIME;
		else
			return perr(err, SMTP_PERR_BADVALUE,
			    "unrecognized parameter value for BODY");
	} else if (span_eq_ci(key, "AUTH")) {
		if (!hv)
			return perr(err, SMTP_PERR_SYNTAX, "missing AUTH value");
		m->auth = true; /* spec/smtp.md 6: accepted and ignored */
	} else if (span_eq_ci(key, "SMTPUTF8") && !hv) {
		m->smtputf8 = true;
	} else if (span_eq_ci(key, "REQUIRETLS") && !hv) {
		m->requiretls = true;
	} else if (submission && span_eq_ci(key, "HOLDFOR")) {
		/* RFC 4865 4: 1-9 digits, no leading zero */
		if (m->has_holduntil)
			return perr(err, SMTP_PERR_BOTHHOLD,
			    "cannot use both HOLDUNTIL and HOLFOR");
		if (!hv || val.len > 9 || val.p[0] == '0' ||
		    span_u64(val, 999999999, &m->holdfor) == -1)
			return perr(err, SMTP_PERR_SYNTAX, "bad HOLDFOR value");
		if (m->holdfor > SMTP_HOLD_MAX_SEC)
			return perr(err, SMTP_PERR_HOLDFAR,
			    "future release interval too far in the future");
		m->has_holdfor = true;
		snprintf(m->holdreq, sizeof(m->holdreq), "for;%llu",
		    (unsigned long long)m->holdfor);
	} else if (submission && span_eq_ci(key, "HOLDUNTIL")) {
		if (m->has_holdfor)
			return perr(err, SMTP_PERR_BOTHHOLD,
			    "cannot use both HOLDUNTIL and HOLFOR");
		if (!hv || smtp_parse_rfc3339(val, &m->holduntil_ns) == -1)
			return perr(err, SMTP_PERR_SYNTAX, "bad HOLDUNTIL value");
		m->has_holduntil = true;
		snprintf(m->holdreq, sizeof(m->holdreq), "until;%.*s",
		    (int)val.len, val.p);
	} else {
		return perr(err, SMTP_PERR_UNKNOWN, "unrecognized parameter");
	}
	return 0;
}

int
smtp_parse_mail(struct span args, const struct smtp_parse_opts *o,
    bool submission, struct smtp_mail *m, struct smtp_perr *err)
{
	struct scan s = scan_of(args);
	struct smtp_parse_opts po = *o;
	struct span keys[SMTP_PARAM_MAX];
	size_t nkeys = 0;
	size_t pathpos;
	int r;

	memset(m, 0, sizeof(*m));
	if (parse_prefix(&s, "FROM:", o, err) == -1)
		return -1;
	/* Parameters first: SMTPUTF8 decides how the path is parsed. */
	pathpos = s.pos;
	if (scan_peek(&s) != '<')
		return perr(err, SMTP_PERR_SYNTAX, "expected <path>");
	{
		/* Skip the path to reach the parameters: a '>' outside quotes. */
		bool q = false, esc = false;

		for (; !scan_eof(&s); s.pos++) {
			char c = s.p[s.pos];

			if (esc)
				esc = false;
			else if (q && c == '\\')
				esc = true;
			else if (c == '"')
				q = !q;
			else if (c == '>' && !q)
				break;
		}
		if (scan_char(&s, '>') == -1)
			return perr(err, SMTP_PERR_SYNTAX, "expected > after path");
	}
	for (;;) {
		struct span key, val;
		bool hv;

		r = next_param(&s, o, &key, &val, &hv, err);
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		for (size_t i = 0; i < nkeys; i++)
			if (key.len == keys[i].len &&
			    strncasecmp(key.p, keys[i].p, key.len) == 0) {
				perr(err, SMTP_PERR_DUPLICATE, "duplicate param");
				err->param = key;
				goto fail;
			}
		if (nkeys == SMTP_PARAM_MAX) {
			perr(err, SMTP_PERR_SYNTAX, "too many parameters");
			goto fail;
		}
		keys[nkeys++] = key;
		if (mail_param(m, key, val, hv, submission, err) == -1) {
			err->param = key;
			goto fail;
		}
	}
	po.smtputf8 = m->smtputf8;
	s.pos = pathpos;
	if (parse_path(&s, &po, true, &m->null_path, &m->from, err) == -1)
		goto fail;
	return 0;
fail:
	smtp_mail_release(m);
	return -1;
}

void
smtp_rcpt_release(struct smtp_rcpt *r)
{
	if (r == NULL)
		return;
	smtp_addr_release(&r->to);
	memset(r, 0, sizeof(*r));
}

int
smtp_parse_rcpt(struct span args, const struct smtp_parse_opts *o,
    struct smtp_rcpt *r, struct smtp_perr *err)
{
	struct scan s = scan_of(args);
	struct span key, val;
	bool hv, null = false;
	int n;

	memset(r, 0, sizeof(*r));
	if (parse_prefix(&s, "TO:", o, err) == -1)
		return -1;
	/* RFC 5321 4.1.1.3: "<Postmaster>" without domain. */
	if (scan_lit_ci(&s, "<postmaster>") == 0) {
		r->postmaster = true;
		r->to.localpart = xstrdup("postmaster");
		r->to.domain = xstrdup("");
	} else if (parse_path(&s, o, false, &null, &r->to, err) == -1) {
		return -1;
	}
	n = next_param(&s, o, &key, &val, &hv, err);
	if (n == 1) {
		/* spec/smtp.md 7: no RCPT parameters (DSN is not offered) */
		perr(err, SMTP_PERR_UNKNOWN, "unrecognized parameter");
		err->param = key;
	}
	if (n != 0) {
		smtp_rcpt_release(r);
		return -1;
	}
	return 0;
}

int
smtp_parse_ehlo(struct span args, bool ehlo, struct span *name_out,
    const char **why)
{
	struct scan s = scan_of(span_trim(args));
	struct smtp_perr err;
	struct buf tmp;
	bool lit = false, u8 = false;
	size_t start = s.pos;
	int rc = -1;

	buf_init(&tmp, SMTP_PATH_MAX);
	if (scan_eof(&s)) {
		*why = "missing domain";
		goto out;
	}
	if (parse_domain(&s, &tmp, &lit, &u8, &err) == -1) {
		*why = err.why;
		goto out;
	}
	*name_out = span_of(s.p + start, s.pos - start);
	/* spec/smtp.md 3: text after an address literal is tolerated. */
	if (!scan_eof(&s) && !(lit && ehlo && scan_peek(&s) == ' ')) {
		*why = "unexpected text after domain";
		goto out;
	}
	if (!ehlo && lit) {
		*why = "HELO requires a domain";
		goto out;
	}
	rc = 0;
out:
	buf_release(&tmp);
	return rc;
}

static bool
is_mechchar(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    char_is_digit(c) || c == '-' || c == '_';
}

int
smtp_parse_auth(struct span args, bool pedantic, struct span *mech_out,
    bool *have_ir_out, struct span *ir_out, const char **why)
{
	struct scan s = scan_of(args);

	*have_ir_out = false;
	*ir_out = span_of("", 0);
	/* RFC 4422 3.1: up to 20 characters of A-Z 0-9 - _ */
	if (scan_while(&s, is_mechchar, SMTP_MECH_MAX, mech_out) == -1 ||
	    (!scan_eof(&s) && scan_peek(&s) != ' ')) {
		*why = "bad mechanism name";
		return -1;
	}
	if (scan_eof(&s))
		return 0;
	s.pos++;
	/* INTEROP: Windows Mail sends several spaces. */
	if (!pedantic)
		scan_skip_sp(&s);
	if (scan_eof(&s)) {
		*why = "missing initial response";
		return -1;
	}
	*have_ir_out = true;
	*ir_out = scan_rest(&s);
	if (span_eq_cstr(*ir_out, "="))
		*ir_out = span_of(ir_out->p, 0); /* RFC 4954 4: empty */
	return 0;
}

/* ---- DATA ---- */

void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DATA_LINE_START;
	d->prev_crlf = true; /* the DATA command ended in CRLF */
}

static void
emit(struct smtp_data *d, struct buf *out, const char *p, size_t n)
{
	buf_add(out, p, n);
	d->size += n;
}

static void
line_end(struct smtp_data *d, struct buf *out, bool crlf)
{
	emit(d, out, "\r\n", 2);
	if (d->line_len == 0 && !d->unstuffed)
		d->header_end = true;
	d->line_len = 0;
	d->unstuffed = false;
	d->prev_crlf = crlf;
	d->state = SMTP_DATA_LINE_START;
}

static void
mid_byte(struct smtp_data *d, struct buf *out, char c)
{
	if (c == '\r') {
		d->state = SMTP_DATA_CR;
		return;
	}
	if (c == '\n') {
		line_end(d, out, false); /* bare LF: stored as CRLF */
		return;
	}
	if ((unsigned char)c >= 0x80)
		d->has_8bit = true;
	emit(d, out, &c, 1);
	d->line_len++;
	d->state = SMTP_DATA_MID;
}

/* Length of the run at p without CR or LF; notes 8-bit octets. */
static size_t
plain_run(const char *p, size_t len, bool *has_8bit)
{
	unsigned char any = 0;
	size_t n = 0;

	while (n < len && p[n] != '\r' && p[n] != '\n')
		any |= (unsigned char)p[n++];
	if (any & 0x80)
		*has_8bit = true;
	return n;
}

int
smtp_data_feed(struct smtp_data *d, struct span in, struct buf *out,
    size_t *used_out)
{
	size_t i;

	for (i = 0; i < in.len && d->state != SMTP_DATA_DONE; i++) {
		char c = in.p[i];

		if (d->state == SMTP_DATA_MID) {
			/* The middle of a line is copied in one piece, as
			 * mid_byte() would copy it octet by octet. */
			size_t n = plain_run(in.p + i, in.len - i,
			    &d->has_8bit);

			if (n > 0) {
				emit(d, out, in.p + i, n);
				d->line_len += n;
				i += n - 1;
				continue;
			}
		}
		switch (d->state) {
		case SMTP_DATA_LINE_START:
			if (c == '.')
				d->state = SMTP_DATA_DOT;
			else
				mid_byte(d, out, c);
			break;
		case SMTP_DATA_DOT:
			if (c == '\r') {
				d->state = SMTP_DATA_DOT_CR;
			} else if (c == '\n') {
				/* RFC 5321 4.1.1.4: only CRLF.CRLF ends
				 * DATA; "\n.\n" and "\r\n.\n" are
				 * smuggling patterns (spec/smtp.md 8). */
				d->bad = true;
				emit(d, out, ".", 1);
				d->line_len++;
				line_end(d, out, false);
			} else {
				/* RFC 5321 4.5.2: remove a leading dot. */
				if (!d->prev_crlf) {
					emit(d, out, ".", 1);
					d->line_len++;
				} else {
					d->unstuffed = true;
				}
				mid_byte(d, out, c);
			}
			break;
		case SMTP_DATA_DOT_CR:
			if (c == '\n' && d->prev_crlf) {
				d->state = SMTP_DATA_DONE;
				break;
			}
			if (c == '\n') {
				/* "<non-CR>\n.\r\n" (spec/smtp.md 8) */
				d->bad = true;
				emit(d, out, ".", 1);
				d->line_len++;
				line_end(d, out, true);
				break;
			}
			/* bare CR after a leading dot */
			d->bad = true;
			if (!d->prev_crlf)
				emit(d, out, ".", 1);
			emit(d, out, "\r", 1);
			d->line_len += 2;
			d->state = SMTP_DATA_MID;
			mid_byte(d, out, c);
			break;
		case SMTP_DATA_MID:
			mid_byte(d, out, c);
			break;
		case SMTP_DATA_CR:
			if (c == '\n') {
				line_end(d, out, true);
			} else {
				d->bad = true; /* bare CR */
				emit(d, out, "\r", 1);
				d->line_len++;
				d->state = SMTP_DATA_MID;
				mid_byte(d, out, c);
			}
			break;
		case SMTP_DATA_DONE:
			break;
		}
	}
	*used_out = i;
	if (buf_failed(out))
		return -1;
	return d->state == SMTP_DATA_DONE ? 1 : 0;
}
