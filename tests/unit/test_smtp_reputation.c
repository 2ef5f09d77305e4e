/*
 * test_smtp_reputation.c: the From validation level stored with an
 * incoming message and used by reputation (smtp_rep_msgfrom_validation()
 * in src/smtp/smtp_reputation.c; spec/smtp.md 12.1 step 8): Strict for
 * a passing DKIM d= or SPF domain equal to the From domain, Relaxed for
 * the same organizational domain, DMARC when DMARC passed on relaxed
 * alignment, None otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "mailauth/publicsuffix.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_reputation.h"
#include "lib/banned.h"

static const struct {
	const char *name;
	const char *dkim;      /* d= of one signature, or NULL */
	bool dkim_pass;
	const char *spf;       /* SPF identity domain, or NULL */
	bool spf_pass;
	bool dmarc_pass;
	bool psl;
	const char *from;
	enum smtp_validation want;
} cases[] = {
	{ "dkim exact", "example.org", true, NULL, false, false, true,
	    "example.org", SMTP_VAL_STRICT },
	{ "dkim exact, any case", "Example.ORG", true, NULL, false, false, true,
	    "example.org", SMTP_VAL_STRICT },
	{ "dkim subdomain: relaxed", "mail.example.org", true, NULL, false,
	    false, true, "example.org", SMTP_VAL_RELAXED },
	{ "dkim subdomain with dmarc pass", "mail.example.org", true, NULL,
	    false, true, true, "example.org", SMTP_VAL_DMARC },
	{ "dkim failed", "example.org", false, NULL, false, true, true,
	    "example.org", SMTP_VAL_NONE },
	{ "dkim other organization", "example.net", true, NULL, false, true,
	    true, "example.org", SMTP_VAL_NONE },
	{ "spf exact", NULL, false, "example.org", true, false, true,
	    "example.org", SMTP_VAL_STRICT },
	{ "spf subdomain", NULL, false, "bounce.example.org", true, false, true,
	    "example.org", SMTP_VAL_RELAXED },
	{ "spf not passed", NULL, false, "example.org", false, false, true,
	    "example.org", SMTP_VAL_NONE },
	{ "without a suffix list only exact", "mail.example.org", true, NULL,
	    false, true, false, "example.org", SMTP_VAL_NONE },
	{ "public suffix is no organization", "other.co.uk", true, NULL, false,
	    true, true, "example.co.uk", SMTP_VAL_NONE },
	{ "no From domain", "example.org", true, NULL, false, true, true, "",
	    SMTP_VAL_NONE },
};

static void
test_msgfrom_validation(void **state)
{
	static const char list[] = "org\nnet\nuk\nco.uk\n";
	struct publicsuffix_list *psl;
	struct buf err;

	(void)state;
	buf_init(&err, 1024);
	psl = publicsuffix_parse(list, strlen(list), &err);
	assert_non_null(psl);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct smtp_auth_checks a;
		struct dkim_sig sig;
		struct dkim_result dr;
		char dom[64], spf[64];
		enum smtp_validation v;

		memset(&a, 0, sizeof(a));
		memset(&sig, 0, sizeof(sig));
		memset(&dr, 0, sizeof(dr));
		if (cases[i].dkim != NULL) {
			snprintf(dom, sizeof(dom), "%s", cases[i].dkim);
			sig.domain = dom;
			dr.sig = &sig;
			dr.status = cases[i].dkim_pass ? DKIM_PASS : DKIM_FAIL;
			a.dkim = &dr;
			a.ndkim = 1;
		}
		if (cases[i].spf != NULL) {
			snprintf(spf, sizeof(spf), "%s", cases[i].spf);
			a.spf_done = true;
			a.spf.status = cases[i].spf_pass ? SPF_PASS : SPF_FAIL;
			a.spf.identity = SPF_ID_MAILFROM;
			a.spf.domain = spf;
		}
		a.dmarc_done = true;
		a.dmarc.status = cases[i].dmarc_pass ? DMARC_PASS : DMARC_FAIL;
		v = smtp_rep_msgfrom_validation(&a, cases[i].from,
		    cases[i].psl ? psl : NULL);
		if (v != cases[i].want)
			fail_msg("case %zu (%s): got %d want %d", i,
			    cases[i].name, v, cases[i].want);
	}
	publicsuffix_free(psl);
	buf_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgfrom_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
