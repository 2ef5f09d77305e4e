/*
 * message_decode.c: content-transfer decoding (RFC 2045 6.7
 * quoted-printable, 6.8 base64), RFC 2047 encoded words, and charset
 * conversion to UTF-8 with iconv. Input is untrusted message data;
 * decoders are lenient (real-world mail breaks every rule) but never read
 * outside their span, and every output goes to a struct buf with a max.
 * Pure: any thread (each call opens its own iconv descriptor), no I/O, no
 * logging.
 */
#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include <nettle/base64.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

/* RFC 2978 2.3: charset names are at most 40 characters; some slack. */
#define CHARSET_NAME_MAX 64
/* RFC 2047 2: an encoded word is at most 75 characters; INTEROP: longer
 * words are common, so allow up to this size. */
#define ENCODED_WORD_MAX 4096
#define B64_CHUNK 1024

static const char utf8_replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool
is_b64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static void
b64_flush(struct base64_decode_ctx *ctx, const char *chunk, size_t n,
    struct buf *out)
{
	size_t dl = BASE64_DECODE_LENGTH(n);
	char *dst;

	if (n == 0)
		return;
	dst = buf_reserve(out, dl);
	if (dst == NULL)
		return;
	/* Only alphabet bytes reach the decoder, so it cannot fail. */
	if (base64_decode_update(ctx, &dl, (uint8_t *)dst, n, chunk) != 1)
		dl = 0;
	buf_commit(out, dl);
}

int
message_decode_base64(struct span in, struct buf *out)
{
	struct base64_decode_ctx ctx;
	char chunk[B64_CHUNK];
	size_t k = 0;

	base64_decode_init(&ctx);
	for (size_t i = 0; i < in.len && !buf_failed(out); i++) {
		int c = (unsigned char)in.p[i];

		if (c == '=') {
			/* INTEROP: concatenated base64 blocks; padding ends
			 * a block and decoding restarts after it. Leftover
			 * bits of a partial quantum are dropped. */
			b64_flush(&ctx, chunk, k, out);
			k = 0;
			base64_decode_init(&ctx);
			continue;
		}
		if (!is_b64(c))
			continue;
		chunk[k++] = (char)c;
		if (k == sizeof(chunk)) {
			b64_flush(&ctx, chunk, k, out);
			k = 0;
		}
	}
	b64_flush(&ctx, chunk, k, out);
	return buf_failed(out) ? -1 : 0;
}

int
message_decode_qp(struct span in, struct buf *out)
{
	size_t i = 0;

	while (i < in.len && !buf_failed(out)) {
		size_t end = msg_line_end(in.p, in.len, i), n = end, j;
		bool soft = false;

		/* Content of the line without its line end. */
		if (n > i && in.p[n - 1] == '\n') {
			n--;
			if (n > i && in.p[n - 1] == '\r')
				n--;
		}
		/* RFC 2045 6.7 (3): trailing WSP is padding; remove it. */
		while (n > i && (in.p[n - 1] == ' ' || in.p[n - 1] == '\t'))
			n--;
		/* RFC 2045 6.7 (5): "=" at the end is a soft line break. */
		if (n > i && in.p[n - 1] == '=') {
			n--;
			soft = true;
		}
		for (j = i; j < n; j++) {
			int h1, h2;

			if (in.p[j] == '=' && j + 2 < n) {
				h1 = hexval((unsigned char)in.p[j + 1]);
				h2 = hexval((unsigned char)in.p[j + 2]);
				if (h1 >= 0 && h2 >= 0) {
					buf_addc(out, (char)(h1 * 16 + h2));
					j += 2;
					continue;
				}
			}
			buf_addc(out, in.p[j]);
		}
		if (!soft && end > n) {
			/* Keep the line end as it was, without padding. */
			size_t k = n;

			while (k < end && in.p[k] != '\r' && in.p[k] != '\n')
				k++;
			buf_add(out, in.p + k, end - k);
		}
		i = end;
	}
	return buf_failed(out) ? -1 : 0;
}

enum message_cte
message_cte_of(const char *cte)
{
	if (cte == NULL || cte[0] == '\0')
		return MESSAGE_CTE_7BIT;
	if (strcmp(cte, "7bit") == 0)
		return MESSAGE_CTE_7BIT;
	if (strcmp(cte, "8bit") == 0)
		return MESSAGE_CTE_8BIT;
	if (strcmp(cte, "binary") == 0)
		return MESSAGE_CTE_BINARY;
	if (strcmp(cte, "quoted-printable") == 0)
		return MESSAGE_CTE_QP;
	if (strcmp(cte, "base64") == 0)
		return MESSAGE_CTE_BASE64;
	return MESSAGE_CTE_UNKNOWN;
}

int
message_decode_cte(enum message_cte cte, struct span body, struct buf *out,
    const char **why)
{
	switch (cte) {
	case MESSAGE_CTE_7BIT:
	case MESSAGE_CTE_8BIT:
	case MESSAGE_CTE_BINARY:
		buf_add(out, body.p, body.len);
		break;
	case MESSAGE_CTE_QP:
		message_decode_qp(body, out);
		break;
	case MESSAGE_CTE_BASE64:
		message_decode_base64(body, out);
		break;
	case MESSAGE_CTE_UNKNOWN:
		*why = "unknown content-transfer-encoding";
		return -1;
	}
	if (buf_failed(out)) {
		*why = "decoded body too large";
		return -1;
	}
	return 0;
}

size_t
msg_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t need;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		min = 0x80;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		min = 0x800;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		min = 0x10000;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

void
msg_add_utf8(struct buf *out, struct span in)
{
	size_t i = 0;

	while (i < in.len && !buf_failed(out)) {
		size_t start = i, k;

		/* Copy the longest valid run in one append. */
		while (i < in.len) {
			k = msg_utf8_seq((const unsigned char *)in.p + i,
			    in.len - i);
			if (k == 0)
				break;
			i += k;
		}
		buf_add(out, in.p + start, i - start);
		if (i < in.len) {
			buf_adds(out, utf8_replacement);
			i++;
		}
	}
}

static bool
charset_name_ok(const char *cs)
{
	size_t n = strlen(cs);

	if (n == 0 || n > CHARSET_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)cs[i];

		if (!char_is_alnum(c) && c != '-' && c != '_' && c != '.' &&
		    c != ':' && c != '+')
			return false;
	}
	return true;
}

static bool
charset_is(const char *cs, const char *a)
{
	return strcasecmp(cs, a) == 0;
}

static int
iconv_convert(iconv_t cd, struct span in, struct buf *out)
{
	char *inp = (char *)(uintptr_t)in.p;
	size_t inleft = in.len;
	/* Each round consumes input or writes output; bound it anyway. */
	size_t rounds = size_add(size_mul(in.len, 2), 16);
	char tmp[4096];

	while (inleft > 0 && rounds-- > 0 && !buf_failed(out)) {
		char *o = tmp;
		size_t oleft = sizeof(tmp), r;

		r = iconv(cd, &inp, &inleft, &o, &oleft);
		buf_add(out, tmp, (size_t)(o - tmp));
		if (r != (size_t)-1)
			continue;
		if (errno == E2BIG)
			continue;
		/* EILSEQ, EINVAL (truncated input): replace one byte. */
		buf_adds(out, utf8_replacement);
		inp++;
		inleft--;
		(void)iconv(cd, NULL, NULL, NULL, NULL);
	}
	{
		char *o = tmp;
		size_t oleft = sizeof(tmp);

		(void)iconv(cd, NULL, NULL, &o, &oleft);
		buf_add(out, tmp, (size_t)(o - tmp));
	}
	return buf_failed(out) ? -1 : 0;
}

int
message_charset_to_utf8(const char *charset, struct span in, struct buf *out,
    const char **why)
{
	iconv_t cd;
	int rc;

	if (charset == NULL || charset[0] == '\0' ||
	    charset_is(charset, "us-ascii") || charset_is(charset, "ascii") ||
	    charset_is(charset, "utf-8") || charset_is(charset, "utf8")) {
		/* INTEROP: 8-bit bytes labelled us-ascii are mostly UTF-8. */
		msg_add_utf8(out, in);
		goto done;
	}
	if (!charset_name_ok(charset)) {
		*why = "unknown charset";
		return -1;
	}
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		*why = "unknown charset";
		return -1;
	}
	rc = iconv_convert(cd, in, out);
	if (iconv_close(cd) == -1)
		rc = -1;
	(void)rc;
done:
	if (buf_failed(out)) {
		*why = "converted text too large";
		return -1;
	}
	return 0;
}

/* An encoded word at in[i]: "=?" charset ["*" lang] "?" enc "?" text "?=".
 * On success fills the pieces and *end_out (index past "?="). */
struct eword {
	char charset[CHARSET_NAME_MAX + 1];
	int enc; /* 'B' or 'Q' */
	struct span text;
	size_t end;
};

static int
eword_parse(struct span in, size_t i, struct eword *w)
{
	size_t j = i + 2, cs0, k, lim;

	if (i + 2 > in.len || in.p[i] != '=' || in.p[i + 1] != '?')
		return -1;
	lim = in.len - i > ENCODED_WORD_MAX ? i + ENCODED_WORD_MAX : in.len;
	cs0 = j;
	while (j < lim && in.p[j] != '?' && in.p[j] != ' ' &&
	    in.p[j] != '\t' && in.p[j] != '\r' && in.p[j] != '\n')
		j++;
	if (j >= lim || in.p[j] != '?' || j == cs0)
		return -1;
	k = j - cs0;
	{
		/* RFC 2231 5: charset*language in encoded words. */
		const char *star = memchr(in.p + cs0, '*', k);

		if (star != NULL)
			k = (size_t)(star - (in.p + cs0));
	}
	if (k == 0 || k > CHARSET_NAME_MAX)
		return -1;
	memcpy(w->charset, in.p + cs0, k);
	w->charset[k] = '\0';
	j++;
	if (j + 1 >= lim || in.p[j + 1] != '?')
		return -1;
	if (in.p[j] == 'B' || in.p[j] == 'b')
		w->enc = 'B';
	else if (in.p[j] == 'Q' || in.p[j] == 'q')
		w->enc = 'Q';
	else
		return -1;
	j += 2;
	k = j;
	while (j + 1 < lim && !(in.p[j] == '?' && in.p[j + 1] == '=')) {
		/* RFC 2047 5: no whitespace inside an encoded word.
		 * INTEROP: some encoders put spaces in Q text; accept them
		 * but never a line end. */
		if (in.p[j] == '\r' || in.p[j] == '\n')
			return -1;
		j++;
	}
	if (j + 1 >= lim)
		return -1;
	w->text = span_of(in.p + k, j - k);
	w->end = j + 2;
	return 0;
}

static void
eword_decode(const struct eword *w, struct buf *raw)
{
	if (w->enc == 'B') {
		message_decode_base64(w->text, raw);
		return;
	}
	for (size_t i = 0; i < w->text.len; i++) {
		char c = w->text.p[i];
		int h1, h2;

		if (c == '_') {
			buf_addc(raw, ' ');
			continue;
		}
		if (c == '=' && i + 2 < w->text.len) {
			h1 = hexval((unsigned char)w->text.p[i + 1]);
			h2 = hexval((unsigned char)w->text.p[i + 2]);
			if (h1 >= 0 && h2 >= 0) {
				buf_addc(raw, (char)(h1 * 16 + h2));
				i += 2;
				continue;
			}
		}
		buf_addc(raw, c);
	}
}

/* Pending decoded bytes of adjacent encoded words with one charset: they
 * are converted together so a character split over words survives. */
struct pend {
	struct buf raw;
	char charset[CHARSET_NAME_MAX + 1];
	bool active;
};

static int
pend_flush(struct pend *pd, struct buf *out)
{
	const char *why = NULL;
	int rc = 0;

	if (!pd->active)
		return 0;
	if (message_charset_to_utf8(pd->charset, span_of_buf(&pd->raw), out,
		&why) == -1)
		rc = -1;
	buf_reset(&pd->raw);
	pd->active = false;
	return rc;
}

int
message_decode_words(struct span in, struct buf *out)
{
	struct pend pd;
	size_t i = 0, lit = 0; /* lit: start of literal text not yet copied */
	bool prev_word = false;

	buf_init(&pd.raw, MESSAGE_VALUE_MAX);
	pd.active = false;
	pd.charset[0] = '\0';
	while (i < in.len && !buf_failed(out)) {
		struct eword w;
		struct buf probe;
		const char *why = NULL;

		if (in.p[i] != '=' || eword_parse(in, i, &w) == -1) {
			i++;
			continue;
		}
		/* Check the charset is known before treating it as a word. */
		buf_init(&probe, 16);
		if (message_charset_to_utf8(w.charset, span_of("", 0), &probe,
			&why) == -1) {
			buf_release(&probe);
			i = w.end;
			continue;
		}
		buf_release(&probe);
		/* Literal text between the previous word and this one. */
		{
			struct span gap = span_of(in.p + lit, i - lit);
			bool ws_only = true;

			for (size_t k = 0; k < gap.len; k++)
				if (gap.p[k] != ' ' && gap.p[k] != '\t' &&
				    gap.p[k] != '\r' && gap.p[k] != '\n')
					ws_only = false;
			/* RFC 2047 6.2: whitespace between adjacent encoded
			 * words is not displayed. */
			if (!(prev_word && ws_only) && gap.len > 0) {
				pend_flush(&pd, out);
				msg_add_utf8(out, gap);
			}
		}
		if (pd.active && strcasecmp(pd.charset, w.charset) != 0)
			pend_flush(&pd, out);
		if (!pd.active) {
			memcpy(pd.charset, w.charset, sizeof(pd.charset));
			pd.active = true;
		}
		eword_decode(&w, &pd.raw);
		i = w.end;
		lit = i;
		prev_word = true;
	}
	pend_flush(&pd, out);
	if (lit < in.len)
		msg_add_utf8(out, span_of(in.p + lit, in.len - lit));
	buf_release(&pd.raw);
	return buf_failed(out) ? -1 : 0;
}
