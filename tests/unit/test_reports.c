/*
 * test_reports.c: reports.db (src/reports/reports.c): evaluations stored
 * and listed back field by field, in a temporary data directory.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "mailauth/dmarc.h"
#include "reports/reports.h"
#include "lib/banned.h"

static char *addrs[] = { "mailto:dmarc@example.org",
	"mailto:agg@reports.example!10m" };
static struct dmarc_eval_dkim dk[] = {
	{ "example.org", "sel1", "pass" },
	{ "mail.example.org", "sel2", "fail" },
};

static const struct {
	const char *name;
	struct dmarc_evaluation e;
} cases[] = {
	{ "full", { .policy_domain = "example.org", .evaluated = 1700000000,
	    .interval_hours = 24, .addresses = addrs, .naddresses = 2,
	    .pub_domain = "example.org", .pub_adkim_strict = true,
	    .pub_p = DMARC_POLICY_REJECT, .pub_sp = DMARC_POLICY_QUARANTINE,
	    .pub_pct = 50, .source_ip = "192.0.2.1",
	    .disposition_reject = true, .aligned_dkim_pass = false,
	    .aligned_spf_pass = true, .override_forwarded = true,
	    .override_sampled_out = true, .envelope_to = "example.com",
	    .envelope_from = "example.org", .header_from = "example.org",
	    .dkim = dk, .ndkim = 2, .spf_domain = "example.org",
	    .spf_scope_helo = false, .spf_result = "pass",
	    .optional = true } },
	{ "minimal", { .policy_domain = "x.example", .evaluated = 1,
	    .interval_hours = 1, .pub_domain = "x.example",
	    .pub_p = DMARC_POLICY_NONE, .pub_sp = DMARC_POLICY_NONE,
	    .pub_pct = 100, .source_ip = "2001:db8::1",
	    .envelope_to = "example.com", .envelope_from = "",
	    .header_from = "x.example" } },
};

static void
test_roundtrip(void **state)
{
	char dir[] = "/tmp/test_reports.XXXXXX";
	struct reports *r;
	struct dmarc_evaluation *v = NULL;
	struct buf err, p;
	size_t n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	buf_init(&err, 4096);
	buf_init(&p, 4096);
	r = reports_open(dir, &err);
	assert_non_null(r);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		assert_int_equal(reports_dmarc_eval_add(r, &cases[i].e, &err), 0);
	reports_close(r);
	r = reports_open(dir, &err); /* reopen: tables exist */
	assert_non_null(r);
	assert_int_equal(reports_dmarc_eval_list(r, &v, &n, &err), 0);
	assert_int_equal(n, ARRAY_LEN(cases));
	for (size_t i = 0; i < n; i++) {
		const struct dmarc_evaluation *w = &cases[i].e, *g = &v[i];

		print_message("case %zu: %s\n", i, cases[i].name);
		assert_string_equal(g->policy_domain, w->policy_domain);
		assert_int_equal(g->evaluated, w->evaluated);
		assert_int_equal(g->interval_hours, w->interval_hours);
		assert_int_equal(g->naddresses, w->naddresses);
		for (size_t k = 0; k < w->naddresses; k++)
			assert_string_equal(g->addresses[k], w->addresses[k]);
		assert_string_equal(g->pub_domain, w->pub_domain);
		assert_int_equal(g->pub_adkim_strict, w->pub_adkim_strict);
		assert_int_equal(g->pub_aspf_strict, w->pub_aspf_strict);
		assert_int_equal(g->pub_p, w->pub_p);
		assert_int_equal(g->pub_sp, w->pub_sp);
		assert_int_equal(g->pub_pct, w->pub_pct);
		assert_string_equal(g->source_ip, w->source_ip);
		assert_int_equal(g->disposition_reject, w->disposition_reject);
		assert_int_equal(g->aligned_dkim_pass, w->aligned_dkim_pass);
		assert_int_equal(g->aligned_spf_pass, w->aligned_spf_pass);
		assert_int_equal(g->override_mailing_list,
		    w->override_mailing_list);
		assert_int_equal(g->override_forwarded, w->override_forwarded);
		assert_int_equal(g->override_sampled_out,
		    w->override_sampled_out);
		assert_string_equal(g->envelope_to, w->envelope_to);
		assert_string_equal(g->envelope_from, w->envelope_from);
		assert_string_equal(g->header_from, w->header_from);
		assert_int_equal(g->ndkim, w->ndkim);
		for (size_t k = 0; k < w->ndkim; k++) {
			assert_string_equal(g->dkim[k].domain, w->dkim[k].domain);
			assert_string_equal(g->dkim[k].selector,
			    w->dkim[k].selector);
			assert_string_equal(g->dkim[k].result, w->dkim[k].result);
		}
		if (w->spf_domain == NULL) {
			assert_null(g->spf_domain);
		} else {
			assert_string_equal(g->spf_domain, w->spf_domain);
			assert_string_equal(g->spf_result, w->spf_result);
			assert_int_equal(g->spf_scope_helo, w->spf_scope_helo);
		}
		assert_int_equal(g->optional, w->optional);
		dmarc_evaluation_release(&v[i]);
	}
	free(v);
	reports_close(r);
	buf_addf(&p, "%s/reports.db", dir);
	unlink(p.data);
	buf_reset(&p);
	buf_addf(&p, "%s/reports.db-wal", dir);
	unlink(p.data);
	buf_reset(&p);
	buf_addf(&p, "%s/reports.db-shm", dir);
	unlink(p.data);
	rmdir(dir);
	buf_release(&err);
	buf_release(&p);
}

static void
test_open_fails(void **state)
{
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	assert_null(reports_open("/nonexistent/dir/for/reports", &err));
	assert_true(err.len > 0);
	buf_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_open_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
