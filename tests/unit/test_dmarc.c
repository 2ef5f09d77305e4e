/*
 * test_dmarc.c: DMARC record parsing (valid, hostile), discovery with
 * the organizational domain fallback, alignment, pct and sp, and the
 * evaluation record for aggregate reports; DNS from the mock resolver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/span.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/publicsuffix.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

static const struct {
	const char *in;
	int want;
} rec_cases[] = {
	{ "v=DMARC1; p=reject", 1 },
	{ "V = DMARC1 ; P=Quarantine; sp=none; pct=50; adkim=s; aspf=r", 1 },
	{ "v=DMARC1; p=none; rua=mailto:a@example.org!10m,mailto:b@x.org", 1 },
	{ "v=DMARC1; rua=mailto:a@example.org", 1 }, /* no p=, has rua */
	{ "v=DMARC1; p=reject; sp=bogus; rua=mailto:a@example.org", 1 },
	{ "v=DMARC1; p=none; unknown=x", 1 },
	{ "v=DMARC1", -1 },
	{ "v=DMARC1; p=bogus", -1 },
	{ "v=DMARC1; sp=none; p=none", -1 },  /* p= not first */
	{ "v=DMARC1; p=none; pct=101", -1 },
	{ "v=DMARC1; p=none; p=none", -1 },
	{ "v=DMARC1; p=none; rua=mailto:a@b!x", -1 },
	{ "v=DMARC1; p=none; fo=2", -1 },
	{ "v=DMARC1; p=none; adkim=x", -1 },
	{ "v=DMARC1; p=none; junk", -1 },
	{ "v=spf1 -all", 0 },
	{ "v=DMARC1.1; p=none", 0 },
	{ "", 0 },
};

static void
test_record(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		struct dmarc_record r;
		const char *why = NULL;
		int rc = dmarc_record_parse(span_of_cstr(rec_cases[i].in), &r,
		    &why);

		if (rc != rec_cases[i].want)
			fail_msg("record case %zu: rc %d (%s)", i, rc,
			    why != NULL ? why : "");
		if (rc == 1)
			dmarc_record_release(&r);
	}
}

static struct dkim_sig sig_org = { .domain = (char *)"mail.example.org",
	.selector = (char *)"s" };

static const struct {
	const char *from;
	enum dkim_status dkim;
	enum spf_status spf;
	const char *spf_domain;
	unsigned rnd;
	enum dmarc_status want;
	bool reject, use;
} eval_cases[] = {
	/* relaxed DKIM alignment via the org domain */
	{ "example.org", DKIM_PASS, SPF_FAIL, "x.net", 0, DMARC_PASS, false,
	  true },
	/* strict policy at sub: adkim=s there */
	{ "strict.example.org", DKIM_PASS, SPF_FAIL, "x.net", 0, DMARC_FAIL,
	  true, true },
	{ "example.org", DKIM_FAIL, SPF_PASS, "bounce.example.org", 0,
	  DMARC_PASS, false, true },
	{ "example.org", DKIM_FAIL, SPF_FAIL, "example.org", 0, DMARC_FAIL,
	  true, true },
	{ "example.org", DKIM_TEMPERROR, SPF_FAIL, "example.org", 0,
	  DMARC_TEMPERROR, false, true },
	{ "example.org", DKIM_FAIL, SPF_TEMPERROR, "example.org", 0,
	  DMARC_TEMPERROR, false, true },
	/* sub.example.org has no record: sp=none of the org applies */
	{ "sub.example.org", DKIM_FAIL, SPF_FAIL, "x.net", 0, DMARC_FAIL,
	  false, true },
	/* pct=50 at pct.example.net: 70 samples out */
	{ "pct.example.net", DKIM_FAIL, SPF_FAIL, "x.net", 70, DMARC_FAIL,
	  true, false },
	{ "none.example.com", DKIM_FAIL, SPF_FAIL, "x.net", 0, DMARC_NONE,
	  false, false },
	{ "temp.example.com", DKIM_FAIL, SPF_FAIL, "x.net", 0,
	  DMARC_TEMPERROR, false, false },
};

static void
test_evaluate(void **state)
{
	struct dns_resolver *r = dns_mock_new();
	struct publicsuffix_list *psl;
	static const char list[] = "com\norg\nnet\n";
	struct buf err;

	(void)state;
	buf_init(&err, 1024);
	psl = publicsuffix_parse(list, strlen(list), &err);
	assert_non_null(psl);
	dns_mock_add(r, "_dmarc.example.org", DNS_TXT,
	    "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.org", true);
	dns_mock_add(r, "_dmarc.strict.example.org", DNS_TXT,
	    "v=DMARC1; p=reject; adkim=s", true);
	dns_mock_add(r, "_dmarc.pct.example.net", DNS_TXT,
	    "v=DMARC1; p=quarantine; pct=50", false);
	dns_mock_fail(r, "_dmarc.temp.example.com", DNS_TEMPERROR);
	for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]);
	    i++) {
		struct dkim_result dk = { .status = eval_cases[i].dkim,
			.sig = &sig_org };
		struct spf_result spf = { .status = eval_cases[i].spf,
			.identity = SPF_ID_MAILFROM,
			.domain = (char *)eval_cases[i].spf_domain };
		struct dmarc_input in = { .from_domain = eval_cases[i].from,
			.dkim = &dk, .ndkim = 1, .spf = &spf,
			.random_pct = eval_cases[i].rnd };
		struct dmarc_result res;

		dmarc_verify(r, psl, &in, &res);
		if (res.status != eval_cases[i].want ||
		    res.reject != eval_cases[i].reject ||
		    res.use != eval_cases[i].use)
			fail_msg("eval case %zu: %s reject %d use %d (%s)", i,
			    dmarc_status_name(res.status), res.reject, res.use,
			    res.why != NULL ? res.why : "");
		if (i == 0) {
			struct dmarc_eval_facts f = { .source_ip = "192.0.2.1",
				.envelope_to = "example.net",
				.envelope_from = "x.net", .now = 1700000000 };
			struct dmarc_evaluation ev;

			assert_true(res.lookup.authentic);
			assert_int_equal(dmarc_evaluation_build(psl, &in, &res,
			    &f, &ev), 0);
			assert_string_equal(ev.policy_domain, "example.org");
			assert_int_equal(ev.naddresses, 1);
			assert_int_equal(ev.ndkim, 1);
			assert_int_equal(ev.pub_sp, DMARC_POLICY_NONE);
			assert_int_equal(ev.interval_hours, 24);
			assert_true(ev.aligned_dkim_pass);
			assert_string_equal(ev.spf_result, "fail");
			dmarc_evaluation_release(&ev);
		}
		dmarc_result_release(&res);
	}
	publicsuffix_free(psl);
	dns_resolver_free(r);
	buf_release(&err);
}

static void
test_interval(void **state)
{
	static const struct {
		uint32_t ri;
		unsigned want;
	} c[] = { { 86400, 24 }, { 0, 1 }, { 3601, 2 }, { 5 * 3600, 4 },
		{ 100 * 3600, 24 }, { 7 * 3600, 6 } };

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (dmarc_interval_hours(c[i].ri) != c[i].want)
			fail_msg("interval case %zu", i);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
