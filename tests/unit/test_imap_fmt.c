/*
 * test_imap_fmt.c: IMAP string output (quoted vs literal, NIL, astring),
 * sequence sets, and modified UTF-7 mailbox names (RFC 3501 5.1.3),
 * valid and invalid vectors, round trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "imap/imap_fmt.h"
#include "lib/banned.h"

static const struct {
	const char *in;
	size_t len;
	bool utf8;
	const char *want;
} str_cases[] = {
	{ "abc", 3, false, "\"abc\"" },
	{ "", 0, false, "\"\"" },
	{ "a\"b\\c", 5, false, "\"a\\\"b\\\\c\"" },
	{ "a\r\nb", 4, false, "{4}\r\na\r\nb" },
	{ "a\rb", 3, false, "{3}\r\na\rb" },
	{ "a\nb", 3, false, "{3}\r\na\nb" },
	{ "a\0b", 3, false, "{3}\r\na\0b" },
	{ "caf\xc3\xa9", 5, false, "{5}\r\ncaf\xc3\xa9" },
	{ "caf\xc3\xa9", 5, true, "\"caf\xc3\xa9\"" },
	{ "caf\xe9", 4, true, "{4}\r\ncaf\xe9" }, /* invalid UTF-8 */
	{ "\xed\xa0\x80", 3, true, "{3}\r\n\xed\xa0\x80" }, /* surrogate */
};

static void
test_string(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(str_cases); i++) {
		struct buf b;
		size_t wl = strlen(str_cases[i].want);

		/* Wanted outputs with a NUL are spelled out by length. */
		if (i == 6)
			wl = 8;
		buf_init(&b, 4096);
		imap_fmt_string(&b, str_cases[i].in, str_cases[i].len,
		    str_cases[i].utf8);
		if (b.len != wl || memcmp(b.data, str_cases[i].want, wl) != 0)
			fail_msg("case %zu: got %s", i, b.data);
		buf_release(&b);
	}
	(void)state;
}

static void
test_string_long(void **state)
{
	char s[IMAP_FMT_QUOTED_MAX + 1];
	struct buf b;

	memset(s, 'x', sizeof(s));
	buf_init(&b, 8192);
	imap_fmt_string(&b, s, IMAP_FMT_QUOTED_MAX, false);
	assert_int_equal(b.data[0], '"');
	buf_reset(&b);
	imap_fmt_string(&b, s, IMAP_FMT_QUOTED_MAX + 1, false);
	assert_true(strncmp(b.data, "{1025}\r\n", 8) == 0);
	buf_release(&b);
	(void)state;
}

static const struct {
	const char *in;
	const char *want;
} astr_cases[] = {
	{ "INBOX", "INBOX" },
	{ "a]b", "a]b" },
	{ "a b", "\"a b\"" },
	{ "", "\"\"" },
	{ "NIL", "\"NIL\"" },
	{ "a*", "\"a*\"" },
	{ "a%", "\"a%\"" },
	{ "(x)", "\"(x)\"" },
	{ "{1}", "\"{1}\"" },
	{ "a\"", "\"a\\\"\"" },
};

static void
test_astring(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_LEN(astr_cases); i++) {
		buf_reset(&b);
		imap_fmt_astring(&b, astr_cases[i].in, false);
		if (strcmp(b.data, astr_cases[i].want) != 0)
			fail_msg("case %zu: got %s", i, b.data);
	}
	buf_reset(&b);
	imap_fmt_nstring(&b, NULL, false);
	assert_string_equal(b.data, "NIL");
	buf_reset(&b);
	imap_fmt_literal(&b, "a\0b", 3, true);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "~{3}\r\na\0b", 9);
	buf_reset(&b);
	imap_fmt_literal(&b, "ab", 2, true);
	assert_string_equal(b.data, "{2}\r\nab");
	buf_release(&b);
	(void)state;
}

static void
test_seqset(void **state)
{
	static const uint32_t a[] = { 1, 2, 3, 5, 7, 8, 8, 9, 4294967295u };
	struct buf b;

	buf_init(&b, 4096);
	imap_fmt_seqset(&b, a, ARRAY_LEN(a));
	assert_string_equal(b.data, "1:3,5,7:9,4294967295");
	buf_reset(&b);
	imap_fmt_seqset(&b, a, 0);
	assert_string_equal(b.data, "");
	buf_reset(&b);
	imap_fmt_seqset(&b, a + 3, 1);
	assert_string_equal(b.data, "5");
	buf_release(&b);
	(void)state;
}

/* Valid pairs: UTF-8 and its modified UTF-7 (RFC 3501 5.1.3 examples
 * and more). Both directions must hold. */
static const struct {
	const char *utf8;
	const char *mutf7;
} mutf7_ok[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "&", "&-" },
	{ "a&b", "a&-b" },
	{ "&&", "&-&-" },
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8"
	  "\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	{ "Entw\xc3\xbc" "rfe", "Entw&APw-rfe" },
	{ "\xc3\xa4\xc3\xb6\xc3\xbc", "&AOQA9gD8-" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" }, /* U+1F600 surrogate pair */
	{ "a\tb", "a&AAk-b" },           /* control character */
	{ "\xc3\xa4&", "&AOQ-&-" },
	{ "\xc3\xa4 \xc3\xa4", "&AOQ- &AOQ-" },
};

static void
test_mutf7_ok(void **state)
{
	struct buf b;
	const char *why = NULL;

	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_LEN(mutf7_ok); i++) {
		buf_reset(&b);
		if (imap_mutf7_encode(mutf7_ok[i].utf8, &b) != 0 ||
		    strcmp(b.data, mutf7_ok[i].mutf7) != 0)
			fail_msg("encode case %zu: got %s", i, b.data);
		buf_reset(&b);
		if (imap_mutf7_decode(mutf7_ok[i].mutf7, &b, &why) != 0 ||
		    strcmp(b.data, mutf7_ok[i].utf8) != 0)
			fail_msg("decode case %zu: %s", i, why ? why : b.data);
	}
	buf_release(&b);
	(void)state;
}

static const char *const mutf7_bad[] = {
	"&",            /* unterminated */
	"&AOQ",         /* unterminated */
	"&AOQ-&AOQ-",   /* superfluous unshift and shift */
	"&AGE-",        /* encoded printable ASCII "a" */
	"&ACY-",        /* encoded "&" */
	"&AOQ=-",       /* invalid base64 character */
	"&AO/-",        /* "/" is not in the modified alphabet */
	"&AOR-",        /* nonzero leftover bits */
	"&AOQA-",       /* extra character: 6 leftover bits */
	"&2D0-",        /* lone high surrogate */
	"&3gA-",        /* lone low surrogate */
	"&2D3YPQ-",     /* high surrogate followed by high */
	"caf\xc3\xa9",  /* raw 8-bit */
	"a\tb",         /* raw control character */
	"a\x7f",        /* DEL */
	"&AOQ",         /* unterminated at end */
	"&AA-",         /* 12 bits, no full unit */
};

static void
test_mutf7_bad(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_LEN(mutf7_bad); i++) {
		const char *why = NULL;

		buf_reset(&b);
		if (imap_mutf7_decode(mutf7_bad[i], &b, &why) != -1 ||
		    why == NULL)
			fail_msg("case %zu (%s) accepted: %s", i, mutf7_bad[i],
			    b.data);
	}
	buf_reset(&b);
	assert_int_equal(imap_mutf7_encode("caf\xe9", &b), -1);
	buf_release(&b);
	(void)state;
}

/* Every BMP character encodes and decodes back. */
static void
test_mutf7_roundtrip(void **state)
{
	struct buf in, enc, dec;
	const char *why = NULL;

	buf_init(&in, BUF_NOMAX);
	buf_init(&enc, BUF_NOMAX);
	buf_init(&dec, BUF_NOMAX);
	for (uint32_t c = 1; c < 0x10000; c += 7) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		buf_reset(&in);
		if (c < 0x80) {
			buf_addc(&in, (char)c);
		} else if (c < 0x800) {
			buf_addc(&in, (char)(0xc0 | (c >> 6)));
			buf_addc(&in, (char)(0x80 | (c & 0x3f)));
		} else {
			buf_addc(&in, (char)(0xe0 | (c >> 12)));
			buf_addc(&in, (char)(0x80 | ((c >> 6) & 0x3f)));
			buf_addc(&in, (char)(0x80 | (c & 0x3f)));
		}
		buf_adds(&in, "x");
		buf_reset(&enc);
		buf_reset(&dec);
		if (imap_mutf7_encode(in.data, &enc) != 0 ||
		    imap_mutf7_decode(enc.data, &dec, &why) != 0 ||
		    strcmp(dec.data, in.data) != 0)
			fail_msg("U+%04x: %s -> %s", c, enc.data,
			    why ? why : dec.data);
	}
	buf_release(&in);
	buf_release(&enc);
	buf_release(&dec);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_string_long),
		cmocka_unit_test(test_astring),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_mutf7_ok),
		cmocka_unit_test(test_mutf7_bad),
		cmocka_unit_test(test_mutf7_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
