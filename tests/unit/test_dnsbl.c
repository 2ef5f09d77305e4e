/*
 * test_dnsbl.c: DNS block lists (src/mailauth/dnsbl.c, RFC 5782) against
 * the mock resolver: listed, not listed, errors, the TXT reason and its
 * cleaning, IPv6 names, the health check and its cache.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/compat.h"
#include "mailauth/dnsbl.h"
#include "lib/banned.h"

static struct dns_resolver *
zone(void)
{
	struct dns_resolver *r = dns_mock_new();

	dns_mock_add(r, "2.0.0.127.bl.example", DNS_A, "127.0.0.2", false);
	dns_mock_add(r, "2.0.0.127.bl.example", DNS_TXT, "test\r\nentry",
	    false);
	dns_mock_add(r, "1.2.0.192.bl.example", DNS_A, "127.0.0.4", false);
	dns_mock_fail(r, "3.2.0.192.bl.example", DNS_TEMPERROR);
	dns_mock_add(r, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d."
			"0.1.0.0.2.bl.example", DNS_A, "127.0.0.2", false);
	/* A list that lists everything (unhealthy). */
	dns_mock_add(r, "2.0.0.127.all.example", DNS_A, "127.0.0.2", false);
	dns_mock_add(r, "1.0.0.127.all.example", DNS_A, "127.0.0.2", false);
	/* A list that is down. */
	dns_mock_fail(r, "2.0.0.127.down.example", DNS_TEMPERROR);
	dns_mock_fail(r, "1.0.0.127.down.example", DNS_TEMPERROR);
	return r;
}

static void
test_lookup(void **state)
{
	static const struct {
		const char *zone, *ip;
		enum dnsbl_status want;
		const char *reason;
	} cases[] = {
		{ "bl.example", "127.0.0.2", DNSBL_FAIL, "testentry" },
		{ "bl.example", "192.0.2.1", DNSBL_FAIL, NULL },
		{ "bl.example", "192.0.2.2", DNSBL_PASS, NULL },
		{ "bl.example", "192.0.2.3", DNSBL_TEMPERROR, NULL },
		{ "bl.example", "2001:db8::1", DNSBL_FAIL, NULL },
		{ "bl.example", "2001:db8::2", DNSBL_PASS, NULL },
		{ "bl.example", "not-an-ip", DNSBL_TEMPERROR, NULL },
		{ "bl.example", "", DNSBL_TEMPERROR, NULL },
		{ "bad..zone", "192.0.2.1", DNSBL_TEMPERROR, NULL },
	};
	struct dns_resolver *r = zone();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct dnsbl_result res;

		dnsbl_lookup(r, cases[i].zone, cases[i].ip, &res);
		if (res.status != cases[i].want ||
		    (cases[i].reason != NULL && (res.reason == NULL ||
		    strcmp(res.reason, cases[i].reason) != 0)) ||
		    (res.status == DNSBL_TEMPERROR) != (res.why != NULL))
			fail_msg("case %zu (%s %s): %s reason %s", i,
			    cases[i].zone, cases[i].ip,
			    dnsbl_status_name(res.status),
			    res.reason ? res.reason : "-");
		dnsbl_result_release(&res);
	}
	dnsbl_result_release(NULL);
	dns_resolver_free(r);
	(void)state;
}

static void
test_health(void **state)
{
	struct dns_resolver *r = zone();
	struct dnsbl_health *h = dnsbl_health_new();
	const char *why = NULL;
	size_t q;

	assert_int_equal(dnsbl_check_health(r, "bl.example", &why),
	    DNSBL_PASS);
	assert_int_equal(dnsbl_check_health(r, "all.example", &why),
	    DNSBL_FAIL);
	assert_non_null(why);
	assert_int_equal(dnsbl_check_health(r, "empty.example", &why),
	    DNSBL_FAIL);
	assert_int_equal(dnsbl_check_health(r, "down.example", &why),
	    DNSBL_TEMPERROR);
	/* The cache: usable zones, unhealthy skipped, temporary kept. */
	assert_true(dnsbl_health_usable(h, r, "bl.example", 1000));
	assert_false(dnsbl_health_usable(h, r, "all.example", 1000));
	assert_true(dnsbl_health_usable(h, r, "down.example", 1000));
	q = dns_mock_queries(r);
	assert_true(dnsbl_health_usable(h, r, "BL.example", 1000 + 3600));
	assert_int_equal(dns_mock_queries(r), q);
	assert_true(dnsbl_health_usable(h, r, "bl.example",
	    1000 + DNSBL_HEALTH_TTL));
	assert_true(dns_mock_queries(r) > q);
	dnsbl_health_free(h);
	dnsbl_health_free(NULL);
	assert_string_equal(dnsbl_status_name(DNSBL_TEMPERROR), "temperror");
	dns_resolver_free(r);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_health),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
