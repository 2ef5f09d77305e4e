/*
 * test_span.c: the bounded cursor: each scan_* advances only on success and
 * respects its maximum; numbers never overflow; UTF-8 validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/span.h"
#include "lib/banned.h"

static void
test_scan_u64(void **state)
{
	static const struct {
		const char *in;
		uint64_t max;
		int want_rc;
		uint64_t want;
		size_t want_pos;
	} cases[] = {
		{ "0", 10, 0, 0, 1 },
		{ "123abc", 1000, 0, 123, 3 },
		{ "", 10, -1, 0, 0 },
		{ "abc", 10, -1, 0, 0 },
		{ "11", 10, -1, 0, 0 },
		{ "10", 10, 0, 10, 2 },
		{ "18446744073709551615", UINT64_MAX, 0, UINT64_MAX, 20 },
		{ "18446744073709551616", UINT64_MAX, -1, 0, 0 },
		{ "99999999999999999999999", UINT64_MAX, -1, 0, 0 },
		{ "-1", 10, -1, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct scan s = scan_of(span_of_cstr(cases[i].in));
		uint64_t v = 0;
		int rc = scan_u64(&s, cases[i].max, &v);

		if (rc != cases[i].want_rc || s.pos != cases[i].want_pos ||
		    (rc == 0 && v != cases[i].want))
			fail_msg("case %zu (%s): rc %d v %llu pos %zu", i,
			    cases[i].in, rc, (unsigned long long)v, s.pos);
	}
	(void)state;
}

static void
test_scan_i64(void **state)
{
	int64_t v;

	assert_int_equal(span_i64(span_of_cstr("-5"), -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(span_i64(span_of_cstr("+7"), -10, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(span_i64(span_of_cstr("-11"), -10, 10, &v), -1);
	assert_int_equal(span_i64(span_of_cstr("-9223372036854775808"),
			     INT64_MIN, INT64_MAX, &v),
	    0);
	assert_true(v == INT64_MIN);
	assert_int_equal(span_i64(span_of_cstr("9223372036854775808"),
			     INT64_MIN, INT64_MAX, &v),
	    -1);
	assert_int_equal(span_i64(span_of_cstr("1x"), -10, 10, &v), -1);
	assert_int_equal(span_i64(span_of_cstr("-"), -10, 10, &v), -1);
	(void)state;
}

static void
test_scan_chain(void **state)
{
	/* The style guide's example: MAIL FROM:<path> with a bounded path. */
	static const struct {
		const char *in;
		size_t max;
		int want_rc;
		const char *want;
	} cases[] = {
		{ "MAIL FROM:<bob@example.org>", 256, 0, "bob@example.org" },
		{ "mail from:<>", 256, 0, "" },
		{ "MAIL FROM: <a@b>", 256, 0, "a@b" },
		{ "MAIL FROM:<abcdef>", 5, -1, NULL },
		{ "MAIL FROM:<abcde>", 5, 0, "abcde" },
		{ "MAIL FROM:<abc", 256, -1, NULL },
		{ "MAIL FROM:abc>", 256, -1, NULL },
		{ "MAIL", 256, -1, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct scan s = scan_of(span_of_cstr(cases[i].in));
		struct span path = { NULL, 0 };
		int rc;

		rc = scan_lit_ci(&s, "MAIL FROM:");
		if (rc == 0) {
			scan_skip_sp(&s);
			rc = scan_between(&s, '<', '>', cases[i].max, &path);
		}
		if (rc != cases[i].want_rc ||
		    (rc == 0 && !span_eq_cstr(path, cases[i].want)))
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
	}
	(void)state;
}

static void
test_scan_no_advance_on_failure(void **state)
{
	struct scan s = scan_of(span_of_cstr("abc def"));
	struct span w;

	assert_int_equal(scan_lit(&s, "abd"), -1);
	assert_int_equal(s.pos, 0);
	assert_int_equal(scan_until(&s, ' ', 2, &w), -1);
	assert_int_equal(s.pos, 0);
	assert_int_equal(scan_until(&s, ' ', 3, &w), 0);
	assert_true(span_eq_cstr(w, "abc"));
	assert_int_equal(scan_sp(&s), 0);
	assert_int_equal(scan_while(&s, char_is_alpha, 2, &w), -1);
	assert_int_equal(s.pos, 4);
	assert_int_equal(scan_while(&s, char_is_alpha, 3, &w), 0);
	assert_true(scan_eof(&s));
	assert_int_equal(scan_peek(&s), -1);
	assert_int_equal(scan_char(&s, 'x'), -1);
	(void)state;
}

static void
test_span_misc(void **state)
{
	char *d;

	assert_true(span_eq_ci(span_of_cstr("HeLLo"), "hello"));
	assert_false(span_eq_ci(span_of_cstr("Hell"), "hello"));
	assert_true(span_has_prefix_ci(span_of_cstr("STARTTLS now"), "starttls"));
	assert_true(span_eq_cstr(span_trim(span_of_cstr(" \t x y \t")), "x y"));
	assert_true(span_eq_cstr(span_trim(span_of_cstr("   ")), ""));
	d = span_dup(span_of("ab\0cd", 5));
	assert_memory_equal(d, "ab\0cd", 6);
	free(d);
	(void)state;
}

static void
test_utf8(void **state)
{
	static const struct {
		const char *in;
		bool want;
	} cases[] = {
		{ "plain ascii", true },
		{ "caf\xc3\xa9", true },
		{ "\xe2\x82\xac", true },           /* euro sign */
		{ "\xf0\x9f\x98\x80", true },       /* emoji */
		{ "\xc3", false },                  /* truncated */
		{ "\xc0\xaf", false },              /* overlong slash */
		{ "\xe0\x80\xaf", false },          /* overlong */
		{ "\xed\xa0\x80", false },          /* surrogate */
		{ "\xf4\x90\x80\x80", false },      /* above U+10FFFF */
		{ "\xff", false },
		{ "a\x80" "b", false },             /* lone continuation */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (utf8_valid(cases[i].in, strlen(cases[i].in)) != cases[i].want)
			fail_msg("case %zu", i);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_u64),
		cmocka_unit_test(test_scan_i64),
		cmocka_unit_test(test_scan_chain),
		cmocka_unit_test(test_scan_no_advance_on_failure),
		cmocka_unit_test(test_span_misc),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
