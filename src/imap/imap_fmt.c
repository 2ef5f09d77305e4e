/*
 * imap_fmt.c: IMAP string output (RFC 9051 4.3 string, quoted, literal;
 * RFC 9051 9 astring, nstring, sequence-set; RFC 3516 4.2 literal8) and
 * modified UTF-7 mailbox names (RFC 3501 5.1.3). Input is our own data
 * or untrusted mailbox names from clients (decoding is strict). Pure: any
 * thread, no I/O, no logging.
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/span.h"
#include "imap/imap_fmt.h"
#include "lib/banned.h"

static const char mutf7_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static bool
quotable(const char *p, size_t n, bool utf8_ok)
{
	bool high = false;

	if (n > IMAP_FMT_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == 0 || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80)
			high = true;
	}
	/* RFC 9051 4.3: quoted strings are 7-bit unless UTF-8 is enabled
	 * (RFC 9051 9 QUOTED-CHAR utf8-2..4), and then valid UTF-8. */
	if (high && (!utf8_ok || !utf8_valid(p, n)))
		return false;
	return true;
}

void
imap_fmt_literal(struct buf *out, const char *p, size_t n, bool binary)
{
	if (binary && memchr(p, '\0', n) != NULL)
		buf_addc(out, '~');
	buf_addf(out, "{%zu}\r\n", n);
	buf_add(out, p, n);
}

void
imap_fmt_string(struct buf *out, const char *p, size_t n, bool utf8_ok)
{
	if (!quotable(p, n, utf8_ok)) {
		imap_fmt_literal(out, p, n, false);
		return;
	}
	buf_addc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			buf_addc(out, '\\');
		buf_addc(out, p[i]);
	}
	buf_addc(out, '"');
}

void
imap_fmt_nstring(struct buf *out, const char *s, bool utf8_ok)
{
	if (s == NULL)
		buf_adds(out, "NIL");
	else
		imap_fmt_string(out, s, strlen(s), utf8_ok);
}

/* RFC 9051 9: ASTRING-CHAR = ATOM-CHAR / resp-specials. */
static bool
is_astring_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
}

void
imap_fmt_astring(struct buf *out, const char *s, bool utf8_ok)
{
	size_t n = strlen(s);
	bool atom = n > 0 && n <= IMAP_FMT_QUOTED_MAX &&
	    strcmp(s, "NIL") != 0 && strcmp(s, "nil") != 0;

	for (size_t i = 0; atom && i < n; i++)
		atom = is_astring_char((unsigned char)s[i]);
	if (atom)
		buf_add(out, s, n);
	else
		imap_fmt_string(out, s, n, utf8_ok);
}

void
imap_fmt_seqset(struct buf *out, const uint32_t *v, size_t n)
{
	size_t i = 0;
	bool first = true;

	while (i < n) {
		uint32_t lo = v[i], hi = v[i];

		i++;
		while (i < n && (v[i] == hi || v[i] == hi + 1)) {
			hi = v[i];
			i++;
		}
		if (!first)
			buf_addc(out, ',');
		first = false;
		if (lo == hi)
			buf_addf(out, "%u", lo);
		else
			buf_addf(out, "%u:%u", lo, hi);
	}
}

/* Decode one UTF-8 sequence of already validated input. */
static uint32_t
utf8_next(const unsigned char *p, size_t *i)
{
	uint32_t c = p[*i];

	if (c < 0x80) {
		*i += 1;
		return c;
	}
	if (c < 0xe0) {
		c = ((c & 0x1f) << 6) | (p[*i + 1] & 0x3f);
		*i += 2;
		return c;
	}
	if (c < 0xf0) {
		c = ((c & 0x0f) << 12) | ((uint32_t)(p[*i + 1] & 0x3f) << 6) |
		    (p[*i + 2] & 0x3f);
		*i += 3;
		return c;
	}
	c = ((c & 0x07) << 18) | ((uint32_t)(p[*i + 1] & 0x3f) << 12) |
	    ((uint32_t)(p[*i + 2] & 0x3f) << 6) | (p[*i + 3] & 0x3f);
	*i += 4;
	return c;
}

static void
utf8_put(struct buf *out, uint32_t c)
{
	if (c < 0x80) {
		buf_addc(out, (char)c);
	} else if (c < 0x800) {
		buf_addc(out, (char)(0xc0 | (c >> 6)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	} else if (c < 0x10000) {
		buf_addc(out, (char)(0xe0 | (c >> 12)));
		buf_addc(out, (char)(0x80 | ((c >> 6) & 0x3f)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	} else {
		buf_addc(out, (char)(0xf0 | (c >> 18)));
		buf_addc(out, (char)(0x80 | ((c >> 12) & 0x3f)));
		buf_addc(out, (char)(0x80 | ((c >> 6) & 0x3f)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	}
}

struct b64w {
	uint32_t acc;  /* pending bits, low nbits of them */
	unsigned nbits;
	bool open;     /* inside "&...-" */
};

static void
b64w_unit(struct buf *out, struct b64w *w, uint32_t u)
{
	w->acc = (w->acc << 16) | u;
	w->nbits += 16;
	while (w->nbits >= 6) {
		w->nbits -= 6;
		buf_addc(out, mutf7_alpha[(w->acc >> w->nbits) & 0x3f]);
	}
	w->acc &= (1u << w->nbits) - 1;
}

static void
b64w_close(struct buf *out, struct b64w *w)
{
	if (!w->open)
		return;
	if (w->nbits > 0)
		buf_addc(out, mutf7_alpha[(w->acc << (6 - w->nbits)) & 0x3f]);
	buf_addc(out, '-');
	w->acc = 0;
	w->nbits = 0;
	w->open = false;
}

int
imap_mutf7_encode(const char *utf8, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)utf8;
	size_t n = strlen(utf8), i = 0;
	struct b64w w = { 0, 0, false };

	if (!utf8_valid(utf8, n))
		return -1;
	while (i < n) {
		uint32_t c = utf8_next(p, &i);

		/* RFC 3501 5.1.3: printable US-ASCII represents itself,
		 * "&" is "&-", everything else is base64 of UTF-16. */
		if (c >= 0x20 && c <= 0x7e) {
			b64w_close(out, &w);
			if (c == '&')
				buf_adds(out, "&-");
			else
				buf_addc(out, (char)c);
			continue;
		}
		if (!w.open) {
			buf_addc(out, '&');
			w.open = true;
		}
		if (c >= 0x10000) {
			c -= 0x10000;
			b64w_unit(out, &w, 0xd800 | (c >> 10));
			b64w_unit(out, &w, 0xdc00 | (c & 0x3ff));
		} else {
			b64w_unit(out, &w, c);
		}
	}
	b64w_close(out, &w);
	return buf_failed(out) ? -1 : 0;
}

/* Decode the base64 run s[*i..] up to "-"; *i ends after the "-". */
static int
mutf7_run(const char *s, size_t *i, struct buf *out, const char **why)
{
	uint32_t acc = 0, hi = 0;
	unsigned nbits = 0;
	size_t nchars = 0;

	for (;; (*i)++) {
		const char *pos;
		uint32_t u;

		if (s[*i] == '\0') {
			*why = "unterminated shift in mailbox name";
			return -1;
		}
		if (s[*i] == '-')
			break;
		pos = strchr(mutf7_alpha, s[*i]);
		if (pos == NULL) {
			*why = "invalid base64 in mailbox name";
			return -1;
		}
		nchars++;
		acc = (acc << 6) | (uint32_t)(pos - mutf7_alpha);
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		u = (acc >> nbits) & 0xffff;
		acc &= (1u << nbits) - 1;
		if (hi != 0) {
			if (u < 0xdc00 || u > 0xdfff) {
				*why = "unpaired surrogate in mailbox name";
				return -1;
			}
			utf8_put(out, 0x10000 + ((hi - 0xd800) << 10) +
			    (u - 0xdc00));
			hi = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			hi = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			*why = "unpaired surrogate in mailbox name";
			return -1;
		} else if (u >= 0x20 && u <= 0x7e) {
			*why = "needlessly encoded ascii in mailbox name";
			return -1;
		} else {
			utf8_put(out, u);
		}
	}
	(*i)++;
	if (hi != 0) {
		*why = "unpaired surrogate in mailbox name";
		return -1;
	}
	/* Shortest form: fewer than 6 bits left over, and zero. */
	if (nbits >= 6 || acc != 0) {
		*why = "bad base64 padding in mailbox name";
		return -1;
	}
	if (nchars == 0) {
		*why = "empty shift in mailbox name";
		return -1;
	}
	return 0;
}

int
imap_mutf7_decode(const char *mutf7, struct buf *out, const char **why)
{
	size_t i = 0;
	bool after_run = false;

	while (mutf7[i] != '\0') {
		unsigned char c = (unsigned char)mutf7[i];

		if (c < 0x20 || c > 0x7e) {
			*why = "non-ascii byte in modified utf-7 mailbox name";
			return -1;
		}
		if (c != '&') {
			buf_addc(out, (char)c);
			i++;
			after_run = false;
			continue;
		}
		if (mutf7[i + 1] == '-') {
			buf_addc(out, '&');
			i += 2;
			after_run = false;
			continue;
		}
		if (after_run) {
			*why = "superfluous unshift and shift in mailbox name";
			return -1;
		}
		i++;
		if (mutf7_run(mutf7, &i, out, why) == -1)
			return -1;
		after_run = true;
	}
	if (buf_failed(out)) {
		*why = "mailbox name too long";
		return -1;
	}
	return 0;
}
