/*
 * test_smtp_mailfrom.c: the MX check of the MAIL FROM domain on port 25
 * (smtp_mailfrom_mx() in src/smtp/smtp_mailfrom.c; spec/smtp.md 6, RFC
 * 7505 null MX, RFC 5321 5.1 implicit MX) against the mock resolver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "smtp/smtp_mailfrom.h"
#include "lib/banned.h"

static struct dns_resolver *
world(void)
{
	struct dns_resolver *r = dns_mock_new();

	/* MX with an address */
	dns_mock_add(r, "good.example", DNS_MX, "10 mx.good.example", false);
	dns_mock_add(r, "mx.good.example", DNS_A, "192.0.2.1", false);
	/* RFC 7505: null MX, even with an address */
	dns_mock_add(r, "nullmx.example", DNS_MX, "0 .", false);
	dns_mock_add(r, "nullmx.example", DNS_A, "192.0.2.2", false);
	/* no MX: the domain itself */
	dns_mock_add(r, "implicit.example", DNS_A, "192.0.2.3", false);
	dns_mock_add(r, "implicit6.example", DNS_AAAA, "2001:db8::3", false);
	/* nothing at all */
	dns_mock_add(r, "txtonly.example", DNS_TXT, "v=spf1 -all", false);
	/* MX hosts without addresses */
	dns_mock_add(r, "noaddr.example", DNS_MX, "10 mx1.noaddr.example",
	    false);
	dns_mock_add(r, "noaddr.example", DNS_MX, "20 mx2.noaddr.example",
	    false);
	/* one host fails, the other has an address */
	dns_mock_add(r, "half.example", DNS_MX, "10 broken.example", false);
	dns_mock_add(r, "half.example", DNS_MX, "20 mx.good.example", false);
	dns_mock_fail(r, "broken.example", DNS_TEMPERROR);
	/* only failing hosts */
	dns_mock_add(r, "allbroken.example", DNS_MX, "10 broken.example",
	    false);
	/* the MX lookup fails */
	dns_mock_fail(r, "servfail.example", DNS_TEMPERROR);
	dns_mock_fail(r, "refused.example", DNS_PERMERROR);
	/* a "." among real hosts is not a null MX */
	dns_mock_add(r, "mixed.example", DNS_MX, "0 .", false);
	dns_mock_add(r, "mixed.example", DNS_MX, "10 mx.good.example", false);
	return r;
}

static const struct {
	const char *domain;
	enum smtp_mx_verdict want;
} cases[] = {
	{ "good.example", SMTP_MX_OK },
	{ "nullmx.example", SMTP_MX_NONE },
	{ "implicit.example", SMTP_MX_OK },
	{ "implicit6.example", SMTP_MX_OK },
	{ "txtonly.example", SMTP_MX_NONE },
	{ "nxdomain.example", SMTP_MX_NONE },
	{ "noaddr.example", SMTP_MX_NONE },
	{ "half.example", SMTP_MX_OK },
	{ "allbroken.example", SMTP_MX_TEMP },
	{ "servfail.example", SMTP_MX_TEMP },
	{ "refused.example", SMTP_MX_TEMP },
	{ "mixed.example", SMTP_MX_OK },
};

static void
test_mx(void **state)
{
	struct dns_resolver *r = world();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *why = NULL;
		enum smtp_mx_verdict v =
		    smtp_mailfrom_mx(r, cases[i].domain, 0, &why);

		if (v != cases[i].want)
			fail_msg("case %zu %s: got %d want %d (%s)", i,
			    cases[i].domain, v, cases[i].want,
			    why != NULL ? why : "");
		if (v != SMTP_MX_OK && why == NULL)
			fail_msg("case %zu %s: no reason", i, cases[i].domain);
	}
	dns_resolver_free(r);
}

/* Past the deadline no host lookup is made: errors, so temporary. */
static void
test_mx_deadline(void **state)
{
	struct dns_resolver *r = world();
	const char *why = NULL;
	size_t before;

	(void)state;
	before = dns_mock_queries(r);
	assert_int_equal(smtp_mailfrom_mx(r, "good.example", 1, &why),
	    SMTP_MX_TEMP);
	assert_int_equal(dns_mock_queries(r) - before, 1); /* the MX only */
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx),
		cmocka_unit_test(test_mx_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
