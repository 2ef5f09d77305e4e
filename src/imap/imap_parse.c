/*
 * imap_parse.c: the IMAP command parser (RFC 9051 9 formal syntax, RFC
 * 3501 9; RFC 7888 LITERAL+; RFC 3516 literal8; RFC 5182 "$"; RFC 3502
 * MULTIAPPEND and RFC 6855 UTF8 forms of APPEND). Input comes from
 * unauthenticated peers and is bounded by the session (imap_parse.h
 * limits); every loop is bounded by the input length and those limits.
 * Pure: any thread, no I/O, no logging, no globals.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "lib/banned.h"

int
imap_parse_literal_hdr(struct span line, struct imap_literal_hdr *h,
    const char **why)
{
	size_t i, end;
	uint64_t v = 0;

	memset(h, 0, sizeof(*h));
	if (line.len < 3 || line.p[line.len - 1] != '}')
		return 0;
	end = line.len - 1;
	if (line.p[end - 1] == '+' || line.p[end - 1] == '-') {
		/* RFC 7888 4: "{n+}"; "-" is LITERAL- spelled the same way. */
		if (line.p[end - 1] == '-')
			return 0;
		end--;
	} else {
		h->sync = true;
	}
	i = end;
	while (i > 0 && char_is_digit(line.p[i - 1]))
		i--;
	if (i == 0 || line.p[i - 1] != '{')
		return 0;
	if (i == end) {
		*why = "empty literal size";
		return -1;
	}
	if (end - i > 10) {
		*why = "literal size too large";
		return -1;
	}
	for (size_t k = i; k < end; k++)
		v = v * 10 + (uint64_t)(line.p[k] - '0');
	if (v > UINT32_MAX) {
		*why = "literal size too large";
		return -1;
	}
	h->size = v;
	h->binary = i >= 2 && line.p[i - 2] == '~';
	return 1;
}

void
imap_parser_init(struct imap_parser *p, struct span cmd)
{
	memset(p, 0, sizeof(*p));
	p->s = scan_of(cmd);
}

void
imap_parser_release(struct imap_parser *p)
{
	for (size_t i = 0; i < p->nallocs; i++)
		free(p->allocs[i]);
	free(p->allocs);
	p->allocs = NULL;
	p->nallocs = p->cap = 0;
}

static char *
keep(struct imap_parser *p, char *s)
{
	if (p->nallocs == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->allocs = xreallocarray(p->allocs, p->cap, sizeof(char *));
	}
	p->allocs[p->nallocs++] = s;
	return s;
}

static int
fail(struct imap_parser *p, const char *why)
{
	p->why = why;
	return -1;
}

bool
imap_parse_eof(const struct imap_parser *p)
{
	return scan_eof(&p->s);
}

int
imap_parse_peek(const struct imap_parser *p)
{
	return scan_peek(&p->s);
}

int
imap_parse_sp(struct imap_parser *p)
{
	if (scan_char(&p->s, ' ') == -1)
		return fail(p, "expected space");
	return 0;
}

int
imap_parse_char(struct imap_parser *p, char c)
{
	static const char *const msgs[] = { "expected '('", "expected ')'",
		"expected '['", "expected ']'", "expected character" };
	const char *m = msgs[4];

	if (scan_char(&p->s, c) == 0)
		return 0;
	if (c == '(')
		m = msgs[0];
	else if (c == ')')
		m = msgs[1];
	else if (c == '[')
		m = msgs[2];
	else if (c == ']')
		m = msgs[3];
	return fail(p, m);
}

static bool
is_atom_char(int c)
{
	if (c <= 0x1f || c >= 0x7f)
		return false;
	return strchr("(){ %*\"\\]", c) == NULL;
}

static bool
is_astring_char(int c)
{
	return is_atom_char(c) || c == ']';
}

static bool
is_tag_char(int c)
{
	return is_astring_char(c) && c != '+';
}

static bool
is_list_char(int c)
{
	return is_astring_char(c) || c == '%' || c == '*';
}

int
imap_parse_kw(struct imap_parser *p, const char *kw)
{
	struct scan t = p->s;
	int c;

	if (scan_lit_ci(&t, kw) == -1)
		return fail(p, "expected keyword");
	c = scan_peek(&t);
	if (c != -1 && c != ' ' && c != ')' && c != '(' && c != '[' &&
	    c != ']')
		return fail(p, "expected keyword");
	p->s = t;
	return 0;
}

int
imap_parse_tag(struct imap_parser *p, struct span *out)
{
	if (scan_while(&p->s, is_tag_char, IMAP_TAG_MAX, out) == -1)
		return fail(p, "bad tag");
	return 0;
}

int
imap_parse_atom(struct imap_parser *p, struct span *out)
{
	if (scan_while(&p->s, is_atom_char, IMAP_ATOM_MAX, out) == -1)
		return fail(p, "expected atom");
	return 0;
}

static bool
is_letter(int c)
{
	return char_is_alpha(c);
}

int
imap_parse_cmdname(struct imap_parser *p, struct span *out)
{
	if (scan_while(&p->s, is_letter, 32, out) == -1)
		return fail(p, "expected command name");
	return 0;
}

/* "{" number ["+"] "}" CRLF, then (unless ext) the bytes. */
static int
literal(struct imap_parser *p, bool allow_binary, struct span *out,
    struct imap_literal_hdr *h)
{
	struct scan t = p->s;
	uint64_t n;

	memset(h, 0, sizeof(*h));
	if (scan_char(&t, '~') == 0) {
		if (!allow_binary)
			return fail(p, "literal8 not allowed here");
		h->binary = true;
	}
	if (scan_char(&t, '{') == -1)
		return fail(p, "expected literal");
	if (scan_u64(&t, UINT32_MAX, &n) == -1)
		return fail(p, "bad literal size");
	h->size = n;
	h->sync = scan_char(&t, '+') == -1;
	if (scan_lit(&t, "}\r\n") == -1)
		return fail(p, "bad literal");
	if (out != NULL) {
		if (scan_left(&t) < n)
			return fail(p, "literal shorter than announced");
		*out = span_of(t.p + t.pos, (size_t)n);
		t.pos += (size_t)n;
	}
	p->s = t;
	return 0;
}

int
imap_parse_ext_literal(struct imap_parser *p, struct imap_literal_hdr *h)
{
	return literal(p, true, NULL, h);
}

static int
quoted(struct imap_parser *p, struct buf *b)
{
	struct scan t = p->s;

	if (scan_char(&t, '"') == -1)
		return fail(p, "expected quoted string");
	for (;;) {
		int c = scan_peek(&t);

		if (c == -1 || c == '\r' || c == '\n' || c == 0)
			return fail(p, "unterminated quoted string");
		t.pos++;
		if (c == '"')
			break;
		if (c == '\\') {
			c = scan_peek(&t);
			if (c != '"' && c != '\\')
				return fail(p, "bad escape in quoted string");
			t.pos++;
		}
		buf_addc(b, (char)c);
	}
	if (buf_failed(b))
		return fail(p, "quoted string too long");
	/* RFC 9051 9 QUOTED-CHAR: 8-bit only as UTF-8 (RFC 6855 3). */
	if (!utf8_valid(b->data, b->len))
		return fail(p, "invalid utf-8 in quoted string");
	p->s = t;
	return 0;
}

int
imap_parse_string(struct imap_parser *p, char **out, size_t *len_out)
{
	struct buf b;
	int c = imap_parse_peek(p);

	buf_init(&b, IMAP_COMMAND_MAX);
	if (c == '"') {
		if (quoted(p, &b) == -1)
			goto err;
	} else if (c == '{' || c == '~') {
		struct span v;
		struct imap_literal_hdr h;

		if (literal(p, false, &v, &h) == -1)
			goto err;
		if (memchr(v.p, 0, v.len) != NULL) {
			fail(p, "NUL in string");
			goto err;
		}
		buf_add(&b, v.p, v.len);
	} else {
		fail(p, "expected string");
		goto err;
	}
	if (len_out != NULL)
		*len_out = b.len;
	*out = keep(p, buf_take(&b));
	return 0;
err:
	buf_release(&b);
	return -1;
}

int
imap_parse_astring(struct imap_parser *p, char **out, size_t *len_out)
{
	struct span a;
	int c = imap_parse_peek(p);

	if (c == '"' || c == '{')
		return imap_parse_string(p, out, len_out);
	if (scan_while(&p->s, is_astring_char, IMAP_ATOM_MAX, &a) == -1)
		return fail(p, "expected astring");
	*out = keep(p, xstrndup(a.p, a.len));
	if (len_out != NULL)
		*len_out = a.len;
	return 0;
}

int
imap_parse_nstring(struct imap_parser *p, char **out)
{
	if (imap_parse_kw(p, "NIL") == 0) {
		*out = NULL;
		return 0;
	}
	return imap_parse_string(p, out, NULL);
}

int
imap_parse_list_mailbox(struct imap_parser *p, char **out)
{
	struct span a;
	int c = imap_parse_peek(p);

	if (c == '"' || c == '{')
		return imap_parse_string(p, out, NULL);
	if (scan_while(&p->s, is_list_char, IMAP_ATOM_MAX, &a) == -1)
		return fail(p, "expected mailbox pattern");
	*out = keep(p, xstrndup(a.p, a.len));
	return 0;
}

int
imap_parse_number64(struct imap_parser *p, uint64_t *out)
{
	/* RFC 7162 7: mod-sequence-value is at most 2^63-1. */
	if (scan_u64(&p->s, INT64_MAX, out) == -1)
		return fail(p, "expected number");
	return 0;
}

int
imap_parse_number(struct imap_parser *p, uint32_t *out)
{
	uint64_t v;

	if (scan_u64(&p->s, UINT32_MAX, &v) == -1)
		return fail(p, "expected number");
	*out = (uint32_t)v;
	return 0;
}

int
imap_parse_nznumber(struct imap_parser *p, uint32_t *out)
{
	struct scan t = p->s;

	if (imap_parse_number(p, out) == -1)
		return -1;
	if (*out == 0) {
		p->s = t;
		return fail(p, "expected non-zero number");
	}
	return 0;
}

/* seq-number: nz-number / "*" */
static int
seqnum(struct imap_parser *p, uint32_t *out)
{
	if (scan_char(&p->s, '*') == 0) {
		*out = IMAP_SEQ_STAR;
		return 0;
	}
	return imap_parse_nznumber(p, out);
}

int
imap_parse_seqset(struct imap_parser *p, struct imap_seqset *out)
{
	memset(out, 0, sizeof(*out));
	if (scan_char(&p->s, '$') == 0) {
		out->dollar = true;
		return 0;
	}
	for (;;) {
		struct imap_range r;

		if (seqnum(p, &r.a) == -1)
			goto bad;
		r.b = r.a;
		if (scan_char(&p->s, ':') == 0 && seqnum(p, &r.b) == -1)
			goto bad;
		if (out->n == IMAP_SEQ_RANGES_MAX) {
			fail(p, "too many ranges in sequence set");
			goto bad;
		}
		out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
		out->v[out->n++] = r;
		if (scan_char(&p->s, ',') == -1)
			break;
	}
	return 0;
bad:
	if (p->why == NULL || strcmp(p->why, "expected number") == 0)
		p->why = "bad sequence set";
	imap_seqset_release(out);
	return -1;
}

void
imap_seqset_release(struct imap_seqset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

bool
imap_seqset_contains(const struct imap_seqset *s, uint32_t x, uint32_t star)
{
	for (size_t i = 0; i < s->n; i++) {
		uint32_t a = s->v[i].a == IMAP_SEQ_STAR ? star : s->v[i].a;
		uint32_t b = s->v[i].b == IMAP_SEQ_STAR ? star : s->v[i].b;

		if (a > b) {
			uint32_t t = a;

			a = b;
			b = t;
		}
		if (x >= a && x <= b)
			return true;
	}
	return false;
}

static const struct {
	const char *name;
	uint32_t bit;
} flag_names[] = {
	{ "\\Seen", STORE_F_SEEN },
	{ "\\Answered", STORE_F_ANSWERED },
	{ "\\Flagged", STORE_F_FLAGGED },
	{ "\\Deleted", STORE_F_DELETED },
	{ "\\Draft", STORE_F_DRAFT },
	{ "$Forwarded", STORE_F_FORWARDED },
	{ "$Junk", STORE_F_JUNK },
	{ "$NotJunk", STORE_F_NOTJUNK },
	{ "$Phishing", STORE_F_PHISHING },
	{ "$MDNSent", STORE_F_MDNSENT },
};

int
imap_flag_lookup(struct span word, uint32_t *bit)
{
	for (size_t i = 0; i < ARRAY_LEN(flag_names); i++)
		if (span_eq_ci(word, flag_names[i].name)) {
			*bit = flag_names[i].bit;
			return 0;
		}
	if (word.len > 0 && word.p[0] == '\\')
		return -1;
	*bit = 0;
	return 0;
}

static bool
is_flag_char(int c)
{
	return is_atom_char(c) || c == '\\';
}

static int
one_flag(struct imap_parser *p, struct imap_flags *f, struct buf *kw)
{
	struct span w;
	uint32_t bit;

	if (scan_while(&p->s, is_flag_char, STORE_KEYWORD_MAX, &w) == -1)
		return fail(p, "expected flag");
	/* RFC 9051 9: "\" only starts a flag-extension atom. */
	if (memchr(w.p + 1, '\\', w.len - 1) != NULL)
		return fail(p, "bad flag");
	if (imap_flag_lookup(w, &bit) == -1)
		return fail(p, "unknown system flag");
	if (bit != 0) {
		f->flags |= bit;
		return 0;
	}
	if (kw->len > 0)
		buf_addc(kw, ' ');
	for (size_t i = 0; i < w.len; i++) {
		char c = w.p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf_addc(kw, c);
	}
	return 0;
}

static int
flags_common(struct imap_parser *p, struct imap_flags *out, bool parens)
{
	struct buf kw;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	buf_init(&kw, STORE_KEYWORDS_MAX);
	if (parens && imap_parse_char(p, '(') == -1)
		goto err;
	if (!(parens && imap_parse_peek(p) == ')')) {
		for (;;) {
			if (++n > IMAP_KEYWORDS_MAX) {
				fail(p, "too many flags");
				goto err;
			}
			if (one_flag(p, out, &kw) == -1)
				goto err;
			if (imap_parse_peek(p) != ' ')
				break;
			if (!parens) {
				struct scan t = p->s;

				t.pos++;
				if (!is_flag_char(scan_peek(&t)))
					break;
			}
			p->s.pos++;
		}
	}
	if (parens && imap_parse_char(p, ')') == -1)
		goto err;
	if (buf_failed(&kw)) {
		fail(p, "keywords too long");
		goto err;
	}
	out->keywords = keep(p, buf_take(&kw));
	return 0;
err:
	buf_release(&kw);
	return -1;
}

int
imap_parse_flag_list(struct imap_parser *p, struct imap_flags *out)
{
	return flags_common(p, out, true);
}

int
imap_parse_flags_bare(struct imap_parser *p, struct imap_flags *out)
{
	return flags_common(p, out, false);
}

static const char *const months[] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
digits(struct scan *s, size_t n, unsigned *out)
{
	struct scan t = *s;
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		int c = scan_peek(&t);

		if (!char_is_digit(c))
			return -1;
		v = v * 10 + (unsigned)(c - '0');
		t.pos++;
	}
	*s = t;
	*out = v;
	return 0;
}

static int
date_part(struct scan *t, unsigned *d, unsigned *m, unsigned *y)
{
	struct span mon;

	if (scan_char(t, ' ') == 0) {
		if (digits(t, 1, d) == -1)
			return -1;
	} else if (digits(t, 2, d) == -1) {
		struct scan u = *t;

		if (digits(&u, 1, d) == -1)
			return -1;
		*t = u;
	}
	if (scan_char(t, '-') == -1 || scan_left(t) < 3)
		return -1;
	mon = span_of(t->p + t->pos, 3);
	t->pos += 3;
	*m = 0;
	for (unsigned i = 0; i < 12; i++)
		if (span_eq_ci(mon, months[i]))
			*m = i + 1;
	if (*m == 0 || scan_char(t, '-') == -1 || digits(t, 4, y) == -1)
		return -1;
	if (*d < 1 || *d > 31)
		return -1;
	return 0;
}

int
imap_parse_date_time(struct imap_parser *p, int64_t *t_out)
{
	struct scan t = p->s;
	unsigned d, m, y, hh, mm, ss, zh, zm;
	int sign;

	if (scan_char(&t, '"') == -1 || date_part(&t, &d, &m, &y) == -1 ||
	    scan_char(&t, ' ') == -1 || digits(&t, 2, &hh) == -1 ||
	    scan_char(&t, ':') == -1 || digits(&t, 2, &mm) == -1 ||
	    scan_char(&t, ':') == -1 || digits(&t, 2, &ss) == -1 ||
	    scan_char(&t, ' ') == -1)
		return fail(p, "bad date-time");
	if (scan_char(&t, '+') == 0)
		sign = 1;
	else if (scan_char(&t, '-') == 0)
		sign = -1;
	else
		return fail(p, "bad date-time zone");
	if (digits(&t, 2, &zh) == -1 || digits(&t, 2, &zm) == -1 ||
	    scan_char(&t, '"') == -1)
		return fail(p, "bad date-time zone");
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return fail(p, "bad date-time");
	*t_out = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss -
	    sign * (int64_t)(zh * 3600 + zm * 60);
	p->s = t;
	return 0;
}

int
imap_parse_date(struct imap_parser *p, int64_t *t_out)
{
	struct scan t = p->s;
	unsigned d, m, y;
	bool q = scan_char(&t, '"') == 0;

	if (date_part(&t, &d, &m, &y) == -1 || (q && scan_char(&t, '"') == -1))
		return fail(p, "bad date");
	*t_out = days_from_civil(y, m, d) * 86400;
	p->s = t;
	return 0;
}

/* At the end of text is a literal announcement (no CRLF yet). */
static bool
at_final_literal(const struct imap_parser *p)
{
	struct imap_literal_hdr h;
	const char *why;
	struct span rest = scan_rest(&p->s);
	size_t i = 0;

	if (rest.len > 0 && rest.p[0] == '~')
		i = 1;
	if (rest.len <= i || rest.p[i] != '{')
		return false;
	return imap_parse_literal_hdr(rest, &h, &why) == 1 &&
	    memchr(rest.p, '\r', rest.len) == NULL;
}

int
imap_append_literal_is_msg(struct span text, bool utf8, char **mailbox_out)
{
	struct imap_parser p;
	struct span tag, name;
	char *mbox = NULL;
	bool first = true, replace = false;
	int rc = -1;

	imap_parser_init(&p, text);
	p.utf8 = utf8;
	p.ext_literals = true;
	*mailbox_out = NULL;
	if (imap_parse_tag(&p, &tag) == -1 || imap_parse_sp(&p) == -1 ||
	    imap_parse_cmdname(&p, &name) == -1)
		goto out;
	if (span_eq_ci(name, "UID") && (imap_parse_sp(&p) == -1 ||
					   imap_parse_cmdname(&p, &name) == -1 ||
					   !span_eq_ci(name, "REPLACE")))
		goto out;
	if (span_eq_ci(name, "REPLACE")) {
		/* RFC 8508 3.3: REPLACE seq-number mailbox append-message. */
		struct span num;

		replace = true;
		if (imap_parse_sp(&p) == -1 || imap_parse_atom(&p, &num) == -1)
			goto out;
	} else if (!span_eq_ci(name, "APPEND")) {
		goto out;
	}
	if (imap_parse_sp(&p) == -1)
		goto out;
	if (at_final_literal(&p)) {
		rc = 0; /* the mailbox name */
		goto out;
	}
	if (imap_parse_astring(&p, &mbox, NULL) == -1)
		goto out;
	for (;;) {
		struct imap_literal_hdr h;
		bool u8 = false;

		if (imap_parse_sp(&p) == -1)
			goto out;
		if (imap_parse_peek(&p) == '(') {
			struct imap_flags f;

			if (imap_parse_flag_list(&p, &f) == -1 ||
			    imap_parse_sp(&p) == -1)
				goto out;
		}
		if (imap_parse_peek(&p) == '"') {
			int64_t t;

			if (imap_parse_date_time(&p, &t) == -1 ||
			    imap_parse_sp(&p) == -1)
				goto out;
		}
		if (imap_parse_kw(&p, "UTF8") == 0) {
			if (imap_parse_sp(&p) == -1 ||
			    imap_parse_char(&p, '(') == -1)
				goto out;
			u8 = true;
		}
		if (at_final_literal(&p)) {
			rc = 1;
			if (first)
				*mailbox_out = xstrdup(mbox);
			goto out;
		}
		if (imap_parse_ext_literal(&p, &h) == -1)
			goto out;
		if (u8 && imap_parse_char(&p, ')') == -1)
			goto out;
		first = false;
		if (imap_parse_eof(&p) || replace)
			goto out;
	}
out:
	imap_parser_release(&p);
	return rc;
}
