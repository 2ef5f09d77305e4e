/*
 * span.c: borrowed views and the bounded cursor (span.h). Pure; any thread.
 */
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "span.h"
#include "xmalloc.h"
#include "banned.h"

struct span
span_of(const char *p, size_t len)
{
	struct span s = { p, len };

	return s;
}

struct span
span_of_cstr(const char *s)
{
	return span_of(s, strlen(s));
}

struct span
span_of_buf(const struct buf *b)
{
	return span_of(b->data, b->len);
}

bool
span_eq(struct span a, struct span b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool
span_eq_cstr(struct span a, const char *s)
{
	return span_eq(a, span_of_cstr(s));
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

bool
span_eq_ci(struct span a, const char *s)
{
	size_t n = strlen(s);

	if (n != a.len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a.p[i]) != lower((unsigned char)s[i]))
			return false;
	return true;
}

bool
span_has_prefix_ci(struct span a, const char *s)
{
	size_t n = strlen(s);

	if (n > a.len)
		return false;
	return span_eq_ci(span_of(a.p, n), s);
}

char *
span_dup(struct span a)
{
	char *s = xmalloc(size_add(a.len, 1));

	if (a.len > 0)
		memcpy(s, a.p, a.len);
	s[a.len] = '\0';
	return s;
}

struct span
span_trim(struct span a)
{
	while (a.len > 0 && (a.p[0] == ' ' || a.p[0] == '\t')) {
		a.p++;
		a.len--;
	}
	while (a.len > 0 && (a.p[a.len - 1] == ' ' || a.p[a.len - 1] == '\t'))
		a.len--;
	return a;
}

struct scan
scan_of(struct span s)
{
	struct scan c = { s.p, s.len, 0 };

	return c;
}

bool
scan_eof(const struct scan *s)
{
	return s->pos >= s->len;
}

size_t
scan_left(const struct scan *s)
{
	return s->len - s->pos;
}

struct span
scan_rest(const struct scan *s)
{
	return span_of(s->p + s->pos, s->len - s->pos);
}

int
scan_peek(const struct scan *s)
{
	if (s->pos >= s->len)
		return -1;
	return (unsigned char)s->p[s->pos];
}

int
scan_char(struct scan *s, char c)
{
	if (s->pos >= s->len || s->p[s->pos] != c)
		return -1;
	s->pos++;
	return 0;
}

int
scan_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if (scan_left(s) < n || memcmp(s->p + s->pos, lit, n) != 0)
		return -1;
	s->pos += n;
	return 0;
}

int
scan_lit_ci(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if (scan_left(s) < n || !span_eq_ci(span_of(s->p + s->pos, n), lit))
		return -1;
	s->pos += n;
	return 0;
}

void
scan_skip_sp(struct scan *s)
{
	while (s->pos < s->len && s->p[s->pos] == ' ')
		s->pos++;
}

int
scan_sp(struct scan *s)
{
	if (scan_char(s, ' ') == -1)
		return -1;
	scan_skip_sp(s);
	return 0;
}

int
scan_until(struct scan *s, char c, size_t max, struct span *out)
{
	const char *p = s->p + s->pos;
	size_t left = scan_left(s);
	size_t lim = left < max + 1 ? left : max + 1;
	const char *e = memchr(p, c, lim);

	if (e == NULL || (size_t)(e - p) > max)
		return -1;
	*out = span_of(p, (size_t)(e - p));
	s->pos += (size_t)(e - p);
	return 0;
}

int
scan_between(struct scan *s, char open, char close, size_t max,
    struct span *out)
{
	struct scan t = *s;
	struct span v;

	if (scan_char(&t, open) == -1 || scan_until(&t, close, max, &v) == -1 ||
	    scan_char(&t, close) == -1)
		return -1;
	*out = v;
	*s = t;
	return 0;
}

int
scan_while(struct scan *s, bool (*pred)(int c), size_t max, struct span *out)
{
	size_t i = s->pos;

	while (i < s->len && i - s->pos < max && pred((unsigned char)s->p[i]))
		i++;
	if (i == s->pos)
		return -1;
	if (i < s->len && i - s->pos == max && pred((unsigned char)s->p[i]))
		return -1; /* longer than max */
	*out = span_of(s->p + s->pos, i - s->pos);
	s->pos = i;
	return 0;
}

int
scan_u64(struct scan *s, uint64_t max, uint64_t *out)
{
	size_t i = s->pos;
	uint64_t v = 0;

	if (i >= s->len || !char_is_digit((unsigned char)s->p[i]))
		return -1;
	for (; i < s->len && char_is_digit((unsigned char)s->p[i]); i++) {
		uint64_t d = (uint64_t)(s->p[i] - '0');

		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	s->pos = i;
	return 0;
}

int
scan_i64(struct scan *s, int64_t min, int64_t max, int64_t *out)
{
	struct scan t = *s;
	bool neg = false;
	uint64_t u, lim;

	if (scan_char(&t, '-') == 0)
		neg = true;
	else
		(void)scan_char(&t, '+');
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (scan_u64(&t, lim, &u) == -1)
		return -1;
	int64_t v = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u)
			: (int64_t)u;
	if (v < min || v > max)
		return -1;
	*out = v;
	*s = t;
	return 0;
}

int
span_u64(struct span a, uint64_t max, uint64_t *out)
{
	struct scan s = scan_of(a);

	if (scan_u64(&s, max, out) == -1 || !scan_eof(&s))
		return -1;
	return 0;
}

int
span_i64(struct span a, int64_t min, int64_t max, int64_t *out)
{
	struct scan s = scan_of(a);

	if (scan_i64(&s, min, max, out) == -1 || !scan_eof(&s))
		return -1;
	return 0;
}

bool
char_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

bool
char_is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool
char_is_alnum(int c)
{
	return char_is_digit(c) || char_is_alpha(c);
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}
