/*
 * test_publicsuffix.c: organizational domains (RFC 7489 3.2) with a
 * small list (normal, wildcard, exception and IDN rules, a private
 * section that must be ignored) and hostile names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "mailauth/publicsuffix.h"
#include "lib/banned.h"

static const char list[] =
    "// comment\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "*.ck\n"
    "!www.ck\n"
    "\xe7\xbd\x91\xe7\xbb\x9c\n" /* U+7F51 U+7EDC, xn--io0a7i */
    "// ===END ICANN DOMAINS===\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "blogspot.com\n"
    "// ===END PRIVATE DOMAINS===\n";

static const struct {
	const char *in;
	const char *want; /* NULL: error */
} cases[] = {
	{ "example.com", "example.com" },
	{ "a.b.example.com", "example.com" },
	{ "EXAMPLE.Com.", "example.com" },
	{ "com", "com" },
	{ "x.blogspot.com", "blogspot.com" }, /* private rule ignored */
	{ "a.b.example.co.uk", "example.co.uk" },
	{ "co.uk", "co.uk" },
	{ "a.b.c.ck", "b.c.ck" },
	{ "a.www.ck", "www.ck" },
	{ "a.example.test", "example.test" }, /* no rule: two labels */
	{ "a.example.xn--io0a7i", "example.xn--io0a7i" },
	{ "a.example.\xe7\xbd\x91\xe7\xbb\x9c", "example.xn--io0a7i" },
	{ "", NULL },
	{ ".", NULL },
	{ "a..com", NULL },
	{ "\xff\xfe.com", NULL },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
	  NULL }, /* 65-byte label */
};

static void
test_org_domain(void **state)
{
	struct buf err;
	struct publicsuffix_list *l;

	(void)state;
	buf_init(&err, 1024);
	l = publicsuffix_parse(list, strlen(list), &err);
	assert_non_null(l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out;
		int rc;

		buf_init(&out, 1024);
		rc = publicsuffix_org_domain(l, cases[i].in, &out);
		if (cases[i].want == NULL ? rc != -1 :
		    rc != 0 || strcmp(out.data, cases[i].want) != 0)
			fail_msg("case %zu (%s): rc %d \"%s\"", i, cases[i].in,
			    rc, out.data);
		buf_release(&out);
	}
	assert_true(publicsuffix_same_org(l, "a.example.com", "example.com"));
	assert_false(publicsuffix_same_org(l, "a.example.com", "example.org"));
	publicsuffix_free(l);
	assert_null(publicsuffix_parse("", 0, &err));
	buf_release(&err);
}

static void
test_system_list(void **state)
{
	struct buf err, out;
	struct publicsuffix_list *l;

	(void)state;
	buf_init(&err, 1024);
	buf_init(&out, 1024);
	l = publicsuffix_load(NULL, &err);
	if (l == NULL) {
		buf_release(&err);
		buf_release(&out);
		skip();
	}
	assert_int_equal(publicsuffix_org_domain(l, "mail.example.co.uk",
	    &out), 0);
	assert_string_equal(out.data, "example.co.uk");
	publicsuffix_free(l);
	assert_null(publicsuffix_load("/nonexistent/list", &err));
	buf_release(&err);
	buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_system_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
