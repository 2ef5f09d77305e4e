/*
 * test_authres.c: Authentication-Results formatting (RFC 8601): methods,
 * comments, quoting of hostile values, folding, and the DKIM and DMARC
 * helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "lib/banned.h"

static const struct {
	const char *in;
	bool addr;
	const char *want;
} quote_cases[] = {
	{ "example.org", false, "example.org" },
	{ "", false, "\"\"" },
	{ "a b", false, "\"a b\"" },
	{ "a;b", false, "\"a;b\"" },
	{ "x@example.org", false, "\"x@example.org\"" },
	{ "x@example.org", true, "x@example.org" },
	{ "q\"\\", false, "\"q\\\"\\\\\"" },
	{ "a\r\nX-Evil: 1", false, "\"aX-Evil: 1\"" },
	{ "\xc3\xa9", false, "\"\xc3\xa9\"" },
};

static void
test_quote(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(quote_cases) / sizeof(quote_cases[0]);
	    i++) {
		struct buf out;

		buf_init(&out, 1024);
		authres_value(&out, quote_cases[i].in, quote_cases[i].addr,
		    false);
		if (strcmp(out.data, quote_cases[i].want) != 0)
			fail_msg("quote case %zu: %s", i, out.data);
		buf_release(&out);
	}
}

static void
test_header(void **state)
{
	struct authres a;
	struct buf out;
	struct dkim_sig sig = { .domain = (char *)"example.org",
		.selector = (char *)"sel", .algorithm = (char *)"rsa-sha256",
		.b64 = (char *)"abcdefghijklmnopqrstuvwxyz" };
	struct dkim_record rec = { .keytype = DKIM_KEY_RSA, .bits = 2048 };
	struct dkim_result dk = { .status = DKIM_PASS, .sig = &sig,
		.record = &rec, .record_authentic = true };
	struct dmarc_result dr;
	struct authres_method spf = { .method = "spf", .result = "pass",
		.comment = "without dnssec", .nprops = 1,
		.props = { { "smtp", "mailfrom", "example.org", true, NULL } } };
	struct authres_method iprev = { .method = "iprev", .result = "fail",
		.comment = "with dnssec" };

	(void)state;
	memset(&dr, 0, sizeof(dr));
	dr.status = DMARC_PASS;
	buf_init(&out, AUTHRES_MAX);
	authres_init(&a, false);
	authres_add(&a, &spf);
	authres_add(&a, &iprev);
	authres_add_dkim(&a, &dk, 1);
	authres_add_dmarc(&a, &dr, "example.org");
	assert_int_equal(authres_finish(&a, "mx.example.net", &out), 0);
	assert_string_equal(out.data,
	    "Authentication-Results: mx.example.net;\r\n"
	    "\tspf=pass (without dnssec) smtp.mailfrom=example.org;\r\n"
	    "\tiprev=fail;\r\n"
	    "\tdkim=pass (2048 bit rsa, with dnssec) header.d=example.org"
	    " header.s=sel\r\n"
	    "\theader.a=rsa-sha256 header.b=abcdefghijkl;\r\n"
	    "\tdmarc=pass (without dnssec) header.from=example.org\r\n");
	authres_release(&a);

	buf_reset(&out);
	authres_init(&a, false);
	authres_add_dkim(&a, NULL, 0);
	assert_int_equal(authres_finish(&a, "mx", &out), 0);
	assert_string_equal(out.data, "Authentication-Results: mx;\r\n"
	    "\tdkim=none reason=\"no dkim signatures\"\r\n");
	authres_release(&a);

	buf_reset(&out);
	authres_init(&a, false);
	assert_int_equal(authres_finish(&a, "mx", &out), 0);
	assert_string_equal(out.data, "Authentication-Results: mx; none\r\n");
	authres_release(&a);
	buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
