/*
 * imap_search.c: SEARCH criteria (RFC 9051 6.4.4 and 9 search-key; RFC
 * 3501 6.4.4 for NEW, OLD, RECENT; RFC 5182 "$"; RFC 7162 3.1.5 MODSEQ;
 * RFC 5032 YOUNGER/OLDER; RFC 8514 SAVED*), their evaluation against one
 * message, ESEARCH return options and result lines (RFC 4731 3.1).
 * Criteria come from authenticated clients and are bounded in depth, key
 * count, string and set size; message contents are untrusted mail. Pure:
 * any thread, no I/O, no logging, no clock.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "imap/imap_fmt.h"
#include "imap/imap_search.h"
#include "lib/banned.h"

const char imap_search_err_badcharset[] = "unsupported charset";

#define SECS_PER_DAY 86400
#define NUMBER64_MAX ((uint64_t)INT64_MAX) /* RFC 9051 9 number64 */

enum kind {
	K_ALL,
	K_NONE,
	K_FLAG,       /* flags & num set */
	K_UNFLAG,     /* flags & num clear */
	K_KEYWORD,    /* str among keywords */
	K_UNKEYWORD,
	K_SEQ,        /* seq in ranges */
	K_UID,        /* uid in ranges */
	K_LARGER,     /* size > num */
	K_SMALLER,    /* size < num */
	K_BEFORE,     /* internal date's day < num */
	K_ON,
	K_SINCE,
	K_SENTBEFORE, /* Date header's day < num */
	K_SENTON,
	K_SENTSINCE,
	K_SAVEDBEFORE,
	K_SAVEDON,
	K_SAVEDSINCE,
	K_YOUNGER,    /* received >= num */
	K_OLDER,      /* received < num */
	K_MODSEQ,     /* modseq >= num */
	K_HEADER,     /* field str contains needle */
	K_BODY,
	K_TEXT,
	K_NOT,
	K_OR,
	K_AND,
};

struct range {
	uint32_t lo, hi;
};

struct key {
	enum kind kind;
	int64_t num;
	char *str;          /* keyword or field name; owned */
	char *needle;       /* ASCII lower-cased search string; owned */
	size_t needle_len;
	struct range *ranges; /* sorted, merged; owned */
	size_t nranges;
	struct key **kids;  /* owned */
	size_t nkids;
	unsigned needs;     /* IMAP_SEARCH_NEED_* of this subtree */
};

struct imap_search {
	struct key *root;
	bool modseq;
};

struct pstate {
	struct scan *s;
	const struct imap_search_ctx *ctx;
	size_t nkeys;
	size_t nranges;
	bool modseq;
	const char **why;
};

static void
key_free(struct key *k)
{
	if (k == NULL)
		return;
	free(k->str);
	free(k->needle);
	free(k->ranges);
	for (size_t i = 0; i < k->nkids; i++)
		key_free(k->kids[i]);
	free(k->kids);
	free(k);
}

void
imap_search_free(struct imap_search *q)
{
	if (q == NULL)
		return;
	key_free(q->root);
	free(q);
}

static int
fail(struct pstate *ps, const char *why)
{
	*ps->why = why;
	return -1;
}

static struct key *
key_new(enum kind kind)
{
	struct key *k = xcalloc(1, sizeof(*k));

	k->kind = kind;
	return k;
}

static void
key_add_kid(struct key *k, struct key *kid)
{
	k->kids = xreallocarray(k->kids, k->nkids + 1, sizeof(*k->kids));
	k->kids[k->nkids++] = kid;
	k->needs |= kid->needs;
}

/* ---- lexical pieces ---- */

static bool
is_word_char(int c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')';
}

static bool
is_atom_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static bool
is_astring_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
}

/* RFC 9051 9 astring into out (binary safe). */
static int
scan_astring(struct pstate *ps, struct buf *out)
{
	struct scan *s = ps->s;
	int c = scan_peek(s);
	struct span a;

	if (c == '"') {
		s->pos++;
		for (;;) {
			c = scan_peek(s);
			if (c == -1 || c == '\r' || c == '\n' || c == 0)
				return fail(ps, "unterminated quoted string");
			s->pos++;
			if (c == '"')
				break;
			if (c == '\\') {
				c = scan_peek(s);
				if (c != '"' && c != '\\')
					return fail(ps, "bad escape in quoted "
							"string");
				s->pos++;
			}
			if (buf_addc(out, (char)c) == -1)
				return fail(ps, "search string too long");
		}
	} else if (c == '{') {
		uint64_t n;

		s->pos++;
		if (scan_u64(s, IMAP_SEARCH_STRING_MAX, &n) == -1)
			return fail(ps, "bad or too large literal");
		(void)scan_char(s, '+');
		if (scan_lit(s, "}\r\n") == -1)
			return fail(ps, "bad literal");
		if (scan_left(s) < n)
			return fail(ps, "literal longer than the command");
		if (buf_add(out, s->p + s->pos, (size_t)n) == -1)
			return fail(ps, "search string too long");
		s->pos += (size_t)n;
	} else {
		if (scan_while(s, is_astring_char, IMAP_SEARCH_STRING_MAX,
			&a) == -1)
			return fail(ps, "expected string");
		buf_add(out, a.p, a.len);
	}
	/* The charset is US-ASCII or UTF-8 (RFC 9051 6.4.4). */
	if (!utf8_valid(out->data, out->len))
		return fail(ps, "search string is not utf-8");
	return 0;
}

static int
need_sp(struct pstate *ps)
{
	if (scan_char(ps->s, ' ') == -1)
		return fail(ps, "expected space");
	return 0;
}

static int
scan_number(struct pstate *ps, uint64_t max, uint64_t *out)
{
	if (scan_u64(ps->s, max, out) == -1)
		return fail(ps, "bad number");
	if (!scan_eof(ps->s) && is_word_char(scan_peek(ps->s)))
		return fail(ps, "bad number");
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t
day_of(int64_t t)
{
	return t >= 0 ? t / SECS_PER_DAY : -((-t + SECS_PER_DAY - 1) /
	    SECS_PER_DAY);
}

/* RFC 9051 9: date = date-text / DQUOTE date-text DQUOTE;
 * date-text = date-day "-" date-month "-" date-year. */
static int
scan_date(struct pstate *ps, int64_t *day_out)
{
	static const char *const months[] = { "jan", "feb", "mar", "apr",
		"may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	struct scan *s = ps->s;
	bool quoted = scan_char(s, '"') == 0;
	size_t start = s->pos;
	uint64_t d, y;
	int m = -1;

	if (scan_u64(s, 99, &d) == -1 || s->pos - start > 2 ||
	    scan_char(s, '-') == -1)
		return fail(ps, "bad date");
	for (int i = 0; i < 12; i++) {
		if (scan_lit_ci(s, months[i]) == 0) {
			m = i;
			break;
		}
	}
	start = s->pos + 1;
	if (m < 0 || scan_char(s, '-') == -1 ||
	    scan_u64(s, 9999, &y) == -1 || s->pos - start != 4)
		return fail(ps, "bad date");
	if (quoted && scan_char(s, '"') == -1)
		return fail(ps, "bad date");
	if (d < 1 || (int)d > mdays[m] ||
	    (m == 1 && d == 29 &&
		!(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return fail(ps, "bad date");
	*day_out = days_from_civil((int64_t)y, m + 1, (int64_t)d);
	return 0;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void
ranges_normalise(struct key *k)
{
	size_t n = 0;

	if (k->nranges == 0)
		return;
	qsort(k->ranges, k->nranges, sizeof(*k->ranges), cmp_range);
	for (size_t i = 1; i < k->nranges; i++) {
		if (k->ranges[i].lo <= k->ranges[n].hi ||
		    k->ranges[i].lo - 1 == k->ranges[n].hi) {
			if (k->ranges[i].hi > k->ranges[n].hi)
				k->ranges[n].hi = k->ranges[i].hi;
		} else {
			k->ranges[++n] = k->ranges[i];
		}
	}
	k->nranges = n + 1;
}

static int
add_range(struct pstate *ps, struct key *k, uint32_t a, uint32_t b)
{
	if (ps->nranges >= IMAP_SEARCH_RANGES_MAX)
		return fail(ps, "sequence set too large");
	ps->nranges++;
	k->ranges = xreallocarray(k->ranges, k->nranges + 1,
	    sizeof(*k->ranges));
	k->ranges[k->nranges].lo = a < b ? a : b;
	k->ranges[k->nranges].hi = a < b ? b : a;
	k->nranges++;
	return 0;
}

/* seq-number = nz-number / "*" (RFC 9051 9). */
static int
scan_seq_number(struct pstate *ps, uint32_t star, uint32_t *out)
{
	uint64_t v;

	if (scan_char(ps->s, '*') == 0) {
		*out = star;
		return 0;
	}
	if (scan_u64(ps->s, UINT32_MAX, &v) == -1 || v == 0)
		return fail(ps, "bad sequence number");
	*out = (uint32_t)v;
	return 0;
}

/* sequence-set, or "$" (RFC 5182 2.1) which is always UIDs. */
static struct key *
parse_set(struct pstate *ps, bool uid)
{
	uint32_t star = uid ? ps->ctx->max_uid : ps->ctx->nmsgs;
	struct key *k = key_new(uid ? K_UID : K_SEQ);

	if (scan_char(ps->s, '$') == 0) {
		k->kind = K_UID;
		for (size_t i = 0; i < ps->ctx->nsaved; i++)
			if (add_range(ps, k, ps->ctx->saved[i],
				ps->ctx->saved[i]) == -1)
				goto bad;
	} else {
		do {
			uint32_t a, b;

			if (scan_seq_number(ps, star, &a) == -1)
				goto bad;
			b = a;
			if (scan_char(ps->s, ':') == 0 &&
			    scan_seq_number(ps, star, &b) == -1)
				goto bad;
			if (add_range(ps, k, a, b) == -1)
				goto bad;
		} while (scan_char(ps->s, ',') == 0);
	}
	if (!scan_eof(ps->s) && is_word_char(scan_peek(ps->s))) {
		fail(ps, "bad sequence set");
		goto bad;
	}
	ranges_normalise(k);
	return k;
bad:
	key_free(k);
	return NULL;
}

/* A string key: lower-cased needle for case-insensitive matching. */
static int
set_needle(struct pstate *ps, struct key *k)
{
	struct buf b;

	buf_init(&b, IMAP_SEARCH_STRING_MAX);
	if (scan_astring(ps, &b) == -1) {
		buf_release(&b);
		return -1;
	}
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] >= 'A' && b.data[i] <= 'Z')
			b.data[i] = (char)(b.data[i] - 'A' + 'a');
	k->needle_len = b.len;
	k->needle = buf_take(&b);
	return 0;
}

/* flag-keyword (RFC 9051 9): an atom. The store keeps the well-known
 * keywords as flag bits. */
static int
set_keyword(struct pstate *ps, struct key *k)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} bits[] = {
		{ "$forwarded", STORE_F_FORWARDED },
		{ "$junk", STORE_F_JUNK },
		{ "$notjunk", STORE_F_NOTJUNK },
		{ "$phishing", STORE_F_PHISHING },
		{ "$mdnsent", STORE_F_MDNSENT },
	};
	struct span a;

	if (scan_while(ps->s, is_atom_char, STORE_KEYWORD_MAX, &a) == -1)
		return fail(ps, "bad keyword");
	for (size_t i = 0; i < ARRAY_LEN(bits); i++) {
		if (span_eq_ci(a, bits[i].name)) {
			k->kind = k->kind == K_KEYWORD ? K_FLAG : K_UNFLAG;
			k->num = bits[i].bit;
			return 0;
		}
	}
	k->str = span_dup(a);
	for (char *p = k->str; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

static struct key *parse_key(struct pstate *ps, int depth);

/* "(" search-key *(SP search-key) ")" */
static struct key *
parse_list(struct pstate *ps, int depth)
{
	struct key *k = key_new(K_AND);

	do {
		struct key *kid = parse_key(ps, depth + 1);

		if (kid == NULL)
			goto bad;
		key_add_kid(k, kid);
	} while (scan_char(ps->s, ' ') == 0);
	if (scan_char(ps->s, ')') == -1) {
		fail(ps, "expected )");
		goto bad;
	}
	return k;
bad:
	key_free(k);
	return NULL;
}

static const struct {
	const char *name;
	enum kind kind;
	int64_t bit;
} flag_keys[] = {
	{ "ALL", K_ALL, 0 },
	{ "ANSWERED", K_FLAG, STORE_F_ANSWERED },
	{ "DELETED", K_FLAG, STORE_F_DELETED },
	{ "DRAFT", K_FLAG, STORE_F_DRAFT },
	{ "FLAGGED", K_FLAG, STORE_F_FLAGGED },
	{ "SEEN", K_FLAG, STORE_F_SEEN },
	{ "UNANSWERED", K_UNFLAG, STORE_F_ANSWERED },
	{ "UNDELETED", K_UNFLAG, STORE_F_DELETED },
	{ "UNDRAFT", K_UNFLAG, STORE_F_DRAFT },
	{ "UNFLAGGED", K_UNFLAG, STORE_F_FLAGGED },
	{ "UNSEEN", K_UNFLAG, STORE_F_SEEN },
	/* RFC 3501 6.4.4: NEW is RECENT UNSEEN; no message is \Recent
	 * here (spec imap.md 10), so NEW and RECENT never match and OLD
	 * always does. */
	{ "NEW", K_NONE, 0 },
	{ "RECENT", K_NONE, 0 },
	{ "OLD", K_ALL, 0 },
};

static const struct {
	const char *name;
	enum kind kind;
} date_keys[] = {
	{ "BEFORE", K_BEFORE }, { "ON", K_ON }, { "SINCE", K_SINCE },
	{ "SENTBEFORE", K_SENTBEFORE }, { "SENTON", K_SENTON },
	{ "SENTSINCE", K_SENTSINCE }, { "SAVEDBEFORE", K_SAVEDBEFORE },
	{ "SAVEDON", K_SAVEDON }, { "SAVEDSINCE", K_SAVEDSINCE },
};

static const struct {
	const char *name;
	const char *field; /* NULL: BODY or TEXT */
	enum kind kind;
} string_keys[] = {
	{ "BCC", "bcc", K_HEADER }, { "CC", "cc", K_HEADER },
	{ "FROM", "from", K_HEADER }, { "SUBJECT", "subject", K_HEADER },
	{ "TO", "to", K_HEADER }, { "BODY", NULL, K_BODY },
	{ "TEXT", NULL, K_TEXT },
};

static struct key *
parse_modseq(struct pstate *ps)
{
	struct key *k = key_new(K_MODSEQ);
	uint64_t v;

	/* RFC 7162 3.1.5: MODSEQ [entry-name SP entry-type-req SP]
	 * mod-sequence-valzer; the entry is parsed and ignored (spec
	 * imap.md 10). */
	if (scan_peek(ps->s) == '"') {
		struct buf name;
		struct span t;
		int rc;

		buf_init(&name, IMAP_SEARCH_STRING_MAX);
		rc = scan_astring(ps, &name);
		buf_release(&name);
		if (rc == -1 || need_sp(ps) == -1)
			goto bad;
		if (scan_while(ps->s, is_word_char, 16, &t) == -1 ||
		    (!span_eq_ci(t, "priv") && !span_eq_ci(t, "shared") &&
			!span_eq_ci(t, "all"))) {
			fail(ps, "bad MODSEQ entry type");
			goto bad;
		}
		if (need_sp(ps) == -1)
			goto bad;
	}
	if (scan_number(ps, NUMBER64_MAX, &v) == -1)
		goto bad;
	k->num = (int64_t)v;
	ps->modseq = true;
	return k;
bad:
	key_free(k);
	return NULL;
}

/* The key named w, its arguments after one space. */
static struct key *
parse_named(struct pstate *ps, struct span w, int depth)
{
	struct key *k = NULL;
	uint64_t v;

	for (size_t i = 0; i < ARRAY_LEN(flag_keys); i++) {
		if (span_eq_ci(w, flag_keys[i].name)) {
			k = key_new(flag_keys[i].kind);
			k->num = flag_keys[i].bit;
			return k;
		}
	}
	if (span_eq_ci(w, "SAVEDATESUPPORTED"))
		return key_new(ps->ctx->savedate ? K_ALL : K_NONE);
	if (need_sp(ps) == -1)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(date_keys); i++) {
		if (span_eq_ci(w, date_keys[i].name)) {
			k = key_new(date_keys[i].kind);
			if (scan_date(ps, &k->num) == -1)
				goto bad;
			if (k->kind == K_SENTBEFORE || k->kind == K_SENTON ||
			    k->kind == K_SENTSINCE)
				k->needs = IMAP_SEARCH_NEED_TREE;
			return k;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(string_keys); i++) {
		if (span_eq_ci(w, string_keys[i].name)) {
			k = key_new(string_keys[i].kind);
			if (string_keys[i].field != NULL)
				k->str = xstrdup(string_keys[i].field);
			k->needs = IMAP_SEARCH_NEED_BYTES;
			if (k->kind != K_HEADER)
				k->needs |= IMAP_SEARCH_NEED_TREE;
			if (set_needle(ps, k) == -1)
				goto bad;
			return k;
		}
	}
	if (span_eq_ci(w, "HEADER")) {
		struct buf name;

		k = key_new(K_HEADER);
		k->needs = IMAP_SEARCH_NEED_BYTES;
		buf_init(&name, IMAP_SEARCH_STRING_MAX);
		if (scan_astring(ps, &name) == -1 || need_sp(ps) == -1) {
			buf_release(&name);
			goto bad;
		}
		if (name.len == 0 || memchr(name.data, '\0', name.len)) {
			buf_release(&name);
			fail(ps, "bad header field name");
			goto bad;
		}
		k->str = buf_take(&name);
		if (set_needle(ps, k) == -1)
			goto bad;
		return k;
	}
	if (span_eq_ci(w, "KEYWORD") || span_eq_ci(w, "UNKEYWORD")) {
		k = key_new(span_eq_ci(w, "KEYWORD") ? K_KEYWORD : K_UNKEYWORD);
		if (set_keyword(ps, k) == -1)
			goto bad;
		return k;
	}
	if (span_eq_ci(w, "LARGER") || span_eq_ci(w, "SMALLER")) {
		k = key_new(span_eq_ci(w, "LARGER") ? K_LARGER : K_SMALLER);
		if (scan_number(ps, NUMBER64_MAX, &v) == -1)
			goto bad;
		k->num = (int64_t)v;
		return k;
	}
	if (span_eq_ci(w, "YOUNGER") || span_eq_ci(w, "OLDER")) {
		/* RFC 5032 3: interval in seconds, nz-number. */
		k = key_new(span_eq_ci(w, "YOUNGER") ? K_YOUNGER : K_OLDER);
		if (scan_number(ps, UINT32_MAX, &v) == -1 || v == 0) {
			fail(ps, "bad interval");
			goto bad;
		}
		k->num = ps->ctx->now - (int64_t)v;
		return k;
	}
	if (span_eq_ci(w, "UID"))
		return parse_set(ps, true);
	if (span_eq_ci(w, "MODSEQ"))
		return parse_modseq(ps);
	if (span_eq_ci(w, "NOT")) {
		struct key *kid = parse_key(ps, depth + 1);

		if (kid == NULL)
			return NULL;
		k = key_new(K_NOT);
		key_add_kid(k, kid);
		return k;
	}
	if (span_eq_ci(w, "OR")) {
		struct key *a, *b;

		a = parse_key(ps, depth + 1);
		if (a == NULL)
			return NULL;
		k = key_new(K_OR);
		key_add_kid(k, a);
		if (need_sp(ps) == -1)
			goto bad;
		b = parse_key(ps, depth + 1);
		if (b == NULL)
			goto bad;
		key_add_kid(k, b);
		return k;
	}
	fail(ps, "unknown search key");
	return NULL;
bad:
	key_free(k);
	return NULL;
}

static struct key *
parse_key(struct pstate *ps, int depth)
{
	struct span w;
	int c = scan_peek(ps->s);

	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		fail(ps, "search nested too deep");
		return NULL;
	}
	if (++ps->nkeys > IMAP_SEARCH_KEYS_MAX) {
		fail(ps, "too many search keys");
		return NULL;
	}
	if (c == '(') {
		ps->s->pos++;
		return parse_list(ps, depth);
	}
	if (char_is_digit(c) || c == '*' || c == '$')
		return parse_set(ps, false);
	if (scan_while(ps->s, is_word_char, 32, &w) == -1) {
		fail(ps, "expected search key");
		return NULL;
	}
	return parse_named(ps, w, depth);
}

/* Content keys last in an AND, so cheap keys decide first. */
static void
order_and(struct key *k)
{
	size_t j = 0;
	struct key **v;

	for (size_t i = 0; i < k->nkids; i++)
		if (k->kids[i]->kind == K_AND)
			order_and(k->kids[i]);
	if (k->kind != K_AND)
		return;
	v = xcalloc(k->nkids, sizeof(*v));
	for (size_t i = 0; i < k->nkids; i++)
		if (k->kids[i]->needs == 0)
			v[j++] = k->kids[i];
	for (size_t i = 0; i < k->nkids; i++)
		if (k->kids[i]->needs != 0)
			v[j++] = k->kids[i];
	free(k->kids);
	k->kids = v;
}

static int
parse_charset(struct pstate *ps)
{
	size_t save = ps->s->pos;
	struct buf cs;
	int rc = -1;

	if (scan_lit_ci(ps->s, "CHARSET ") == -1)
		return 0;
	buf_init(&cs, 64);
	if (scan_astring(ps, &cs) == -1 || need_sp(ps) == -1)
		goto out;
	if (!span_eq_ci(span_of_buf(&cs), "UTF-8") &&
	    !span_eq_ci(span_of_buf(&cs), "US-ASCII")) {
		fail(ps, imap_search_err_badcharset);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1 && *ps->why == NULL)
		ps->s->pos = save;
	buf_release(&cs);
	return rc;
}

int
imap_search_parse(struct scan *s, const struct imap_search_ctx *ctx,
    struct imap_search **out, const char **why)
{
	struct pstate ps = { s, ctx, 0, 0, false, why };
	struct key *root = key_new(K_AND);

	*why = NULL;
	if (parse_charset(&ps) == -1)
		goto bad;
	do {
		struct key *k = parse_key(&ps, 1);

		if (k == NULL)
			goto bad;
		key_add_kid(root, k);
	} while (scan_char(s, ' ') == 0);
	if (!scan_eof(s)) {
		fail(&ps, scan_peek(s) == ')' ? "unbalanced )" :
						"junk after search keys");
		goto bad;
	}
	order_and(root);
	*out = xcalloc(1, sizeof(**out));
	(*out)->root = root;
	(*out)->modseq = ps.modseq;
	return 0;
bad:
	if (*why == NULL)
		*why = "bad search";
	key_free(root);
	return -1;
}

unsigned
imap_search_needs(const struct imap_search *q)
{
	return q->root->needs;
}

bool
imap_search_has_modseq(const struct imap_search *q)
{
	return q->modseq;
}

/* ---- evaluation ---- */

static bool
in_ranges(const struct key *k, uint32_t v)
{
	size_t lo = 0, hi = k->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v < k->ranges[mid].lo)
			hi = mid;
		else if (v > k->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static bool
has_keyword(const char *list, const char *kw)
{
	size_t n = strlen(kw);

	while (list != NULL && *list != '\0') {
		const char *e = strchr(list, ' ');
		size_t l = e != NULL ? (size_t)(e - list) : strlen(list);

		if (l == n && span_eq_ci(span_of(list, l), kw))
			return true;
		list = e != NULL ? e + 1 : NULL;
	}
	return false;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive (ASCII) substring; needle is lower-case. */
static bool
contains(struct span hay, const char *needle, size_t n)
{
	if (n == 0)
		return true;
	if (hay.len < n)
		return false;
	for (size_t i = 0; i + n <= hay.len; i++) {
		size_t j = 0;

		if (lower((unsigned char)hay.p[i]) != (unsigned char)needle[0])
			continue;
		for (j = 1; j < n; j++)
			if (lower((unsigned char)hay.p[i + j]) !=
			    (unsigned char)needle[j])
				break;
		if (j == n)
			return true;
	}
	return false;
}

/* A field value as text: unfolded, RFC 2047 words decoded. */
static bool
value_contains(struct span value, const struct key *k)
{
	struct buf u, d;
	bool hit;

	if (contains(value, k->needle, k->needle_len))
		return true;
	buf_init(&u, MESSAGE_VALUE_MAX);
	buf_init(&d, MESSAGE_VALUE_MAX);
	(void)message_unfold(value, &u);
	(void)message_decode_words(span_of_buf(&u), &d);
	hit = contains(span_of_buf(&d), k->needle, k->needle_len);
	buf_release(&u);
	buf_release(&d);
	return hit;
}

/* Header fields of the message (any name when name is NULL). */
static bool
header_match(struct span msg, const char *name, const struct key *k)
{
	struct span header = span_of(msg.p, message_header_len(msg));
	struct message_header_iter it;
	struct message_field f;
	const char *why = NULL;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		if (name != NULL && !span_eq_ci(f.name, name))
			continue;
		/* RFC 9051 6.4.4: HEADER with an empty string matches
		 * every message that has the field. */
		if (name != NULL && k->needle_len == 0)
			return true;
		if (name == NULL && contains(f.name, k->needle, k->needle_len))
			return true;
		if (value_contains(f.value, k))
			return true;
	}
	return false;
}

static int
text_hit(const struct message_part *p, struct span text, void *arg)
{
	const struct key *k = arg;

	(void)p;
	return contains(text, k->needle, k->needle_len) ? 1 : 0;
}

static bool
body_match(const struct key *k, const struct imap_search_msg *m)
{
	const struct message_part *root;
	struct span msg;

	if (m->get_bytes == NULL || m->get_bytes(m->arg, &msg) == -1)
		return false;
	if (k->kind == K_TEXT && header_match(msg, NULL, k))
		return true;
	if (m->get_tree == NULL || m->get_tree(m->arg, &root) == -1 ||
	    root->end_off > msg.len)
		return false;
	return message_text_walk(msg.p, msg.len, root, IMAP_SEARCH_TEXT_MAX,
	    text_hit, (void *)k) == 1;
}

/* RFC 9051 6.4.4: SENT* compare the Date header's date, disregarding
 * time and timezone: the calendar day as written. */
static bool
sent_day(const struct imap_search_msg *m, int64_t *day)
{
	const struct message_part *root;

	if (m->get_tree == NULL || m->get_tree(m->arg, &root) == -1 ||
	    root->envelope == NULL || !root->envelope->date_ok)
		return false;
	*day = day_of(root->envelope->date_t +
	    (int64_t)root->envelope->date_off * 60);
	return true;
}

static bool
match(const struct key *k, const struct imap_search_msg *m)
{
	int64_t day;

	switch (k->kind) {
	case K_ALL:
		return true;
	case K_NONE:
		return false;
	case K_FLAG:
		return (m->flags & (uint32_t)k->num) != 0;
	case K_UNFLAG:
		return (m->flags & (uint32_t)k->num) == 0;
	case K_KEYWORD:
		return has_keyword(m->keywords, k->str);
	case K_UNKEYWORD:
		return !has_keyword(m->keywords, k->str);
	case K_SEQ:
		return in_ranges(k, m->seq);
	case K_UID:
		return in_ranges(k, m->uid);
	case K_LARGER:
		return m->size > k->num;
	case K_SMALLER:
		return m->size < k->num;
	case K_BEFORE:
		return day_of(m->received) < k->num;
	case K_ON:
		return day_of(m->received) == k->num;
	case K_SINCE:
		return day_of(m->received) >= k->num;
	case K_SENTBEFORE:
		return sent_day(m, &day) && day < k->num;
	case K_SENTON:
		return sent_day(m, &day) && day == k->num;
	case K_SENTSINCE:
		return sent_day(m, &day) && day >= k->num;
	case K_SAVEDBEFORE:
	case K_SAVEDON:
	case K_SAVEDSINCE:
		/* RFC 8514 4: without a save date, the internal date. */
		day = day_of(m->savedate != 0 ? m->savedate : m->received);
		return k->kind == K_SAVEDBEFORE ? day < k->num :
		    k->kind == K_SAVEDON	? day == k->num :
						  day >= k->num;
	case K_YOUNGER:
		return m->received >= k->num;
	case K_OLDER:
		return m->received < k->num;
	case K_MODSEQ:
		return m->modseq >= k->num;
	case K_HEADER: {
		struct span msg;

		if (m->get_header != NULL) {
			if (m->get_header(m->arg, &msg) == -1)
				return false;
		} else if (m->get_bytes == NULL ||
		    m->get_bytes(m->arg, &msg) == -1) {
			return false;
		}
		return header_match(msg, k->str, k);
	}
	case K_BODY:
	case K_TEXT:
		return body_match(k, m);
	case K_NOT:
		return !match(k->kids[0], m);
	case K_OR:
		return match(k->kids[0], m) || match(k->kids[1], m);
	case K_AND:
		for (size_t i = 0; i < k->nkids; i++)
			if (!match(k->kids[i], m))
				return false;
		return true;
	}
	return false;
}

bool
imap_search_match(const struct imap_search *q, const struct imap_search_msg *m)
{
	return match(q->root, m);
}

/* ---- RETURN options and result lines ---- */

int
imap_search_return_parse(struct scan *s, unsigned *opts_out,
    bool *present_out, const char **why)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", IMAP_SEARCH_RET_MIN }, { "MAX", IMAP_SEARCH_RET_MAX },
		{ "ALL", IMAP_SEARCH_RET_ALL },
		{ "COUNT", IMAP_SEARCH_RET_COUNT },
		{ "SAVE", IMAP_SEARCH_RET_SAVE },
	};
	size_t save = s->pos;
	unsigned v = 0;

	*present_out = false;
	*opts_out = 0;
	if (scan_lit_ci(s, "RETURN ") == -1)
		return 0;
	if (scan_char(s, '(') == -1)
		goto bad;
	if (scan_char(s, ')') == -1) {
		do {
			struct span w;
			size_t i;

			if (scan_while(s, is_atom_char, 16, &w) == -1)
				goto bad;
			for (i = 0; i < ARRAY_LEN(opts); i++)
				if (span_eq_ci(w, opts[i].name))
					break;
			if (i == ARRAY_LEN(opts)) {
				*why = "unknown search return option";
				s->pos = save;
				return -1;
			}
			v |= opts[i].bit;
		} while (scan_char(s, ' ') == 0);
		if (scan_char(s, ')') == -1)
			goto bad;
	}
	/* RFC 4731 3.1: an empty list means ALL. */
	if (v == 0)
		v = IMAP_SEARCH_RET_ALL;
	(void)scan_char(s, ' ');
	*opts_out = v;
	*present_out = true;
	return 0;
bad:
	*why = "bad search return options";
	s->pos = save;
	return -1;
}

void
imap_search_format_esearch(struct buf *out, const char *tag, bool uid,
    unsigned opts, const uint32_t *v, size_t n, int64_t modseq)
{
	if (opts == IMAP_SEARCH_RET_SAVE)
		return;
	if (opts == 0)
		opts = IMAP_SEARCH_RET_ALL;
	buf_adds(out, "* ESEARCH (TAG ");
	imap_fmt_string(out, tag, strlen(tag), false);
	buf_addc(out, ')');
	if (uid)
		buf_adds(out, " UID");
	if (n > 0 && (opts & IMAP_SEARCH_RET_MIN))
		buf_addf(out, " MIN %u", v[0]);
	if (n > 0 && (opts & IMAP_SEARCH_RET_MAX))
		buf_addf(out, " MAX %u", v[n - 1]);
	if (n > 0 && (opts & IMAP_SEARCH_RET_ALL)) {
		buf_adds(out, " ALL ");
		imap_fmt_seqset(out, v, n);
	}
	if (opts & IMAP_SEARCH_RET_COUNT)
		buf_addf(out, " COUNT %zu", n);
	if (n > 0 && modseq > 0)
		buf_addf(out, " MODSEQ %lld", (long long)modseq);
	buf_adds(out, "\r\n");
}

void
imap_search_format_search(struct buf *out, const uint32_t *v, size_t n,
    int64_t modseq)
{
	size_t i = 0;

	do {
		buf_adds(out, "* SEARCH");
		for (size_t j = 0; j < IMAP_SEARCH_ESEARCH_LINE && i < n;
		     j++, i++)
			buf_addf(out, " %u", v[i]);
		if (modseq > 0 && n > 0)
			buf_addf(out, " (MODSEQ %lld)", (long long)modseq);
		buf_adds(out, "\r\n");
	} while (i < n);
}
