/*
 * test_iprev.c: forward-confirmed reverse DNS (src/mailauth/iprev.c,
 * RFC 8601 3) against the mock resolver: every result, authenticity,
 * the verified name, and hostile addresses.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/compat.h"
#include "mailauth/iprev.h"
#include "lib/banned.h"

static struct dns_resolver *
zone(void)
{
	struct dns_resolver *r = dns_mock_new();

	/* 192.0.2.1: two names, the second confirms. */
	dns_mock_add(r, "1.2.0.192.in-addr.arpa", DNS_PTR, "other.example",
	    true);
	dns_mock_add(r, "1.2.0.192.in-addr.arpa", DNS_PTR, "mail.example",
	    true);
	dns_mock_add(r, "other.example", DNS_A, "198.51.100.1", true);
	dns_mock_add(r, "mail.example", DNS_A, "192.0.2.1", true);
	dns_mock_add(r, "mail.example", DNS_AAAA, "2001:db8::25", true);
	/* 192.0.2.2: name does not resolve back. */
	dns_mock_add(r, "2.2.0.192.in-addr.arpa", DNS_PTR, "other.example",
	    true);
	/* 192.0.2.3: the forward lookup fails. */
	dns_mock_add(r, "3.2.0.192.in-addr.arpa", DNS_PTR, "broken.example",
	    true);
	dns_mock_fail(r, "broken.example", DNS_TEMPERROR);
	/* 192.0.2.4: the PTR lookup fails. */
	dns_mock_fail(r, "4.2.0.192.in-addr.arpa", DNS_TEMPERROR);
	/* 192.0.2.6: confirmed, but not signed. */
	dns_mock_add(r, "6.2.0.192.in-addr.arpa", DNS_PTR, "plain.example",
	    false);
	dns_mock_add(r, "plain.example", DNS_A, "192.0.2.6", false);
	/* 2001:db8::25 */
	dns_mock_add(r, "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b."
			"d.0.1.0.0.2.ip6.arpa", DNS_PTR, "mail.example", true);
	return r;
}

static void
test_iprev(void **state)
{
	static const struct {
		const char *ip;
		enum iprev_status want;
		const char *name;
		bool authentic;
	} cases[] = {
		{ "192.0.2.1", IPREV_PASS, "mail.example", true },
		{ "192.0.2.2", IPREV_FAIL, "other.example", true },
		{ "192.0.2.3", IPREV_TEMPERROR, "broken.example", false },
		{ "192.0.2.4", IPREV_TEMPERROR, NULL, false },
		{ "192.0.2.5", IPREV_PERMERROR, NULL, true },
		{ "192.0.2.6", IPREV_PASS, "plain.example", false },
		{ "2001:db8::25", IPREV_PASS, "mail.example", true },
		{ "2001:db8::26", IPREV_PERMERROR, NULL, true },
		{ "", IPREV_PERMERROR, NULL, false },
		{ "192.0.2", IPREV_PERMERROR, NULL, false },
		{ "192.0.2.1\n", IPREV_PERMERROR, NULL, false },
		{ "mail.example", IPREV_PERMERROR, NULL, false },
	};
	struct dns_resolver *r = zone();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct iprev_result res;

		iprev_check(r, cases[i].ip, &res);
		if (res.status != cases[i].want ||
		    res.authentic != cases[i].authentic ||
		    (cases[i].name == NULL) != (res.name == NULL) ||
		    (cases[i].name != NULL &&
		    strcmp(cases[i].name, res.name) != 0) ||
		    strcmp(res.ip, cases[i].ip) != 0 ||
		    (res.status == IPREV_PASS) != (res.why == NULL))
			fail_msg("case %zu (%s): %s name %s auth %d", i,
			    cases[i].ip, iprev_status_name(res.status),
			    res.name ? res.name : "-", res.authentic);
		iprev_result_release(&res);
	}
	iprev_result_release(NULL);
	assert_string_equal(iprev_status_name(IPREV_PERMERROR), "permerror");
	dns_resolver_free(r);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iprev),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
