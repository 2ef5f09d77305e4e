/*
 * test_timeutil.c: Go duration syntax both ways (sconf durations), the
 * monotonic clock, RFC 3339 formatting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/timeutil.h"
#include "lib/banned.h"

#define S NS_PER_SEC

static void
test_duration_parse(void **state)
{
	static const struct {
		const char *in;
		int want_rc;
		int64_t want;
	} cases[] = {
		{ "0", 0, 0 },
		{ "0s", 0, 0 },
		{ "15s", 0, 15 * S },
		{ "72h", 0, 72 * 3600 * S },
		{ "1h30m", 0, 5400 * S },
		{ "1.5s", 0, 1500 * NS_PER_MS },
		{ "300ms", 0, 300 * NS_PER_MS },
		{ "2us", 0, 2000 },
		{ "2\xc2\xb5s", 0, 2000 },
		{ "7ns", 0, 7 },
		{ "-5m", 0, -300 * S },
		{ ".5s", 0, 500 * NS_PER_MS },
		{ "", -1, 0 },
		{ "5", -1, 0 },
		{ "1d", -1, 0 },
		{ "1w", -1, 0 },
		{ "h", -1, 0 },
		{ "1h 30m", -1, 0 },
		{ "9999999999999999999h", -1, 0 },
		{ "3000000h", -1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 0;
		const char *why = NULL;
		int rc = time_parse_duration(cases[i].in, &v, &why);

		if (rc != cases[i].want_rc || (rc == 0 && v != cases[i].want))
			fail_msg("case %zu (%s): rc %d v %lld", i, cases[i].in,
			    rc, (long long)v);
		if (rc == -1 && why == NULL)
			fail_msg("case %zu: no reason", i);
	}
	(void)state;
}

static void
test_duration_format(void **state)
{
	static const struct {
		int64_t in;
		const char *want;
	} cases[] = {
		{ 0, "0s" },
		{ 72 * 3600 * S, "72h0m0s" },
		{ 5400 * S, "1h30m0s" },
		{ 1500 * NS_PER_MS, "1.5s" },
		{ 12 * NS_PER_MS, "12ms" },
		{ 12500 * 1000, "12.5ms" },
		{ 1500, "1.5\xc2\xb5s" },
		{ 999, "999ns" },
		{ 123 * S + 500 * NS_PER_MS, "2m3.5s" },
		{ -15 * S, "-15s" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		int64_t back;
		const char *why;

		buf_init(&b, 64);
		time_format_duration(&b, cases[i].in);
		if (strcmp(b.data, cases[i].want) != 0)
			fail_msg("case %zu: got %s want %s", i, b.data,
			    cases[i].want);
		if (time_parse_duration(b.data, &back, &why) != 0 ||
		    back != cases[i].in)
			fail_msg("case %zu: no round trip", i);
		buf_release(&b);
	}
	(void)state;
}

static void
test_clock_and_rfc3339(void **state)
{
	int64_t a = time_mono_ns(), b = time_mono_ns();
	struct buf out;

	assert_true(b >= a);
	assert_true(time_wall_ns() > INT64_C(1600000000) * S);
	buf_init(&out, 64);
	time_format_rfc3339(&out, INT64_C(1704164645) * S);
	assert_string_equal(out.data, "2024-01-02T03:04:05Z");
	buf_release(&out);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_clock_and_rfc3339),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
