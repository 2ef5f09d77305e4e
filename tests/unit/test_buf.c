/*
 * test_buf.c: struct buf: growth, the hard maximum and its sticky failure,
 * formatting, consume/truncate/take.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/banned.h"

static void
test_buf_grow(void **state)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_addc(&b, (char)('a' + i % 26)), 0);
	assert_int_equal(b.len, 10000);
	assert_int_equal(b.data[10000], '\0');
	assert_int_equal(b.data[27], 'b');
	buf_release(&b);
	assert_int_equal(b.len, 0);
	buf_release(&b); /* twice is fine */
	buf_release(NULL);
	(void)state;
}

static void
test_buf_max(void **state)
{
	static const struct {
		size_t max;
		const char *add;
		int want_rc;
	} cases[] = {
		{ 0, "", 0 },
		{ 0, "x", -1 },
		{ 3, "ab", 0 },
		{ 3, "abc", 0 },
		{ 3, "abcd", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		int rc;

		buf_init(&b, cases[i].max);
		rc = buf_adds(&b, cases[i].add);
		if (rc != cases[i].want_rc)
			fail_msg("case %zu: rc %d", i, rc);
		if (rc == -1 && !buf_failed(&b))
			fail_msg("case %zu: failure not recorded", i);
		buf_release(&b);
	}
	(void)state;
}

static void
test_buf_sticky(void **state)
{
	struct buf b;

	buf_init(&b, 4);
	assert_int_equal(buf_adds(&b, "abc"), 0);
	assert_int_equal(buf_adds(&b, "de"), -1);
	assert_true(buf_failed(&b));
	/* A later append that would fit still fails: the content is broken. */
	assert_int_equal(buf_addc(&b, 'x'), -1);
	assert_string_equal(b.data, "abc");
	buf_reset(&b);
	assert_false(buf_failed(&b));
	assert_int_equal(buf_adds(&b, "abcd"), 0);
	assert_int_equal(buf_addf(&b, "%d", 5), -1);
	buf_release(&b);
	(void)state;
}

static void
test_buf_format(void **state)
{
	struct buf b;
	char big[1000];

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 4096);
	assert_int_equal(buf_addf(&b, "%s=%d;", "n", 42), 0);
	assert_int_equal(buf_addf(&b, "%s", big), 0);
	assert_int_equal(b.len, 5 + 999);
	assert_memory_equal(b.data, "n=42;zz", 7);
	assert_int_equal(buf_addf(&b, "%s%s%s%s", big, big, big, big), -1);
	buf_release(&b);
	(void)state;
}

static void
test_buf_edit(void **state)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	buf_add(&b, "hello\0world", 11);
	assert_int_equal(b.len, 11);
	buf_consume(&b, 6);
	assert_string_equal(b.data, "world");
	buf_truncate(&b, 3);
	assert_string_equal(b.data, "wor");
	buf_truncate(&b, 10); /* longer: no change */
	assert_int_equal(b.len, 3);
	buf_consume(&b, 99);
	assert_int_equal(b.len, 0);
	buf_adds(&b, "abc");
	s = buf_take(&b);
	assert_string_equal(s, "abc");
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	free(s);
	s = buf_take(&b);
	assert_string_equal(s, "");
	free(s);
	buf_adds(&b, "x");
	buf_consume(&b, 1);
	buf_shrink(&b);
	assert_int_equal(b.cap, 0);
	buf_release(&b);
	(void)state;
}

static void
test_buf_reserve(void **state)
{
	struct buf b;
	char *p;

	buf_init(&b, 10);
	p = buf_reserve(&b, 8);
	assert_non_null(p);
	memcpy(p, "12345678", 8);
	buf_commit(&b, 5);
	assert_string_equal(b.data, "12345");
	assert_null(buf_reserve(&b, 6));
	assert_true(buf_failed(&b));
	buf_release(&b);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grow),
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_buf_sticky),
		cmocka_unit_test(test_buf_format),
		cmocka_unit_test(test_buf_edit),
		cmocka_unit_test(test_buf_reserve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
