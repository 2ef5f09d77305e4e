/*
 * test_dkim_vectors.c: verify every signature of the shared DKIM test
 * corpus (testdata/dkim: manifest.tsv, dns.tsv) with key records served
 * by the mock resolver, and compare each result with the manifest.
 * Failing cases are printed by file and signature index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "mailauth/dkim.h"
#include "mailauth/publicsuffix.h"
#include "lib/banned.h"

/* Manifest entries where the spec's default policy (auth.md 4.2 step 6)
 * decides instead of the cryptographic result: l= is not accepted. With
 * allow_length the manifest's own expectation is checked too. */
static const struct {
	const char *file;
	const char *want;
} policy_cases[] = {
	{ "generated/length-appended.eml", "policy" },
	{ "generated/length-truncated.eml", "policy" },
};

static char dir[4096];

static int
setup(void **state)
{
	const char *env = getenv("MOX_DKIM_TESTDATA");
	const char *src = getenv("MOX_SRCDIR");

	if (env != NULL)
		snprintf(dir, sizeof(dir), "%s", env);
	else
		snprintf(dir, sizeof(dir), "%s/../shared/testdata/dkim",
		    src != NULL ? src : MOX_SRCDIR);
	(void)state;
	return 0;
}

static struct dns_resolver *
load_dns(void)
{
	struct dns_resolver *r = dns_mock_new();
	struct buf path, text, err;
	size_t start = 0;

	buf_init(&path, 8192);
	buf_init(&text, 1 << 20);
	buf_init(&err, 4096);
	buf_addf(&path, "%s/dns.tsv", dir);
	if (io_read_file(path.data, &text, &err) == -1)
		fail_msg("%s", err.data);
	while (start < text.len) {
		char *line = text.data + start;
		char *nl = memchr(line, '\n', text.len - start);
		char *tab;

		if (nl != NULL)
			*nl = '\0';
		start += strlen(line) + 1;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		tab = strchr(line, '\t');
		assert_non_null(tab);
		*tab = '\0';
		if (strcmp(tab + 1, "!NXDOMAIN") == 0)
			continue;
		if (strcmp(tab + 1, "!TIMEOUT") == 0 ||
		    strcmp(tab + 1, "!SERVFAIL") == 0)
			assert_int_equal(dns_mock_fail(r, line, DNS_TEMPERROR), 0);
		else
			assert_int_equal(dns_mock_add(r, line, DNS_TXT, tab + 1,
			    false), 0);
	}
	buf_release(&path);
	buf_release(&text);
	buf_release(&err);
	return r;
}

static const char *
overall(const struct dkim_result *res, size_t n)
{
	enum dkim_status best = DKIM_NONE;

	/* A message passes DKIM if one signature passes; otherwise the
	 * most specific failure: fail, then permerror, then temperror. */
	for (size_t i = 0; i < n; i++)
		if (res[i].status == DKIM_PASS)
			return "pass";
	for (size_t i = 0; i < n; i++) {
		if (res[i].status == DKIM_FAIL)
			best = DKIM_FAIL;
		else if (res[i].status == DKIM_PERMERROR && best != DKIM_FAIL)
			best = DKIM_PERMERROR;
		else if (res[i].status == DKIM_TEMPERROR && best == DKIM_NONE)
			best = DKIM_TEMPERROR;
	}
	return dkim_status_name(best);
}

static int
run(struct dns_resolver *r, const struct publicsuffix_list *psl,
    bool allow_length, int *checked)
{
	struct buf path, text, err, msg;
	struct dkim_verify_opts o;
	size_t start = 0;
	int failures = 0;

	memset(&o, 0, sizeof(o));
	o.now = (int64_t)time(NULL);
	o.psl = psl;
	o.allow_length = allow_length;
	buf_init(&path, 8192);
	buf_init(&text, 1 << 20);
	buf_init(&err, 4096);
	buf_init(&msg, 16 << 20);
	buf_addf(&path, "%s/manifest.tsv", dir);
	if (io_read_file(path.data, &text, &err) == -1)
		fail_msg("%s", err.data);
	while (start < text.len) {
		char *line = text.data + start;
		char *nl = memchr(line, '\n', text.len - start);
		char *col[8] = { NULL };
		size_t ncol = 0;

		if (nl != NULL)
			*nl = '\0';
		start += strlen(line) + 1;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (char *p = line; ncol < 8;) {
			char *t = strchr(p, '\t');

			col[ncol++] = p;
			if (t == NULL)
				break;
			*t = '\0';
			p = t + 1;
		}
		assert_true(ncol >= 6);
		const char *file = col[0], *sig = col[1], *want = col[5];

		if (!allow_length) {
			for (size_t i = 0; i < ARRAY_LEN(policy_cases); i++)
				if (strcmp(policy_cases[i].file, file) == 0)
					want = policy_cases[i].want;
		}
		buf_reset(&path);
		buf_addf(&path, "%s/%s", dir, file);
		buf_reset(&msg);
		buf_reset(&err);
		if (io_read_file(path.data, &msg, &err) == -1)
			fail_msg("%s", err.data);

		struct dkim_result *res = NULL;
		size_t n = 0;
		const char *why = NULL, *got;

		if (dkim_verify(r, &o, span_of_buf(&msg), &res, &n, &why) ==
		    -1) {
			printf("FAIL %s: verify error %s\n", file, why);
			failures++;
			continue;
		}
		if (strcmp(sig, "*") == 0) {
			got = overall(res, n);
		} else {
			size_t idx = (size_t)strtoul(sig, NULL, 10);

			got = idx < n ? dkim_status_name(res[idx].status) :
			    "missing";
			why = idx < n ? res[idx].why : NULL;
		}
		(*checked)++;
		if (strcmp(got, want) != 0) {
			printf("FAIL %s sig %s: got %s (%s), want %s\n", file,
			    sig, got, why != NULL ? why : "", want);
			failures++;
		}
		dkim_results_free(res, n);
	}
	buf_release(&path);
	buf_release(&text);
	buf_release(&err);
	buf_release(&msg);
	return failures;
}

static void
test_vectors(void **state)
{
	struct buf path, err;
	struct dns_resolver *r;
	struct publicsuffix_list *psl;
	int checked = 0, failures;

	(void)state;
	buf_init(&path, 8192);
	buf_init(&err, 4096);
	buf_addf(&path, "%s/manifest.tsv", dir);
	if (access(path.data, R_OK) != 0) {
		buf_release(&path);
		buf_release(&err);
		skip();
	}
	psl = publicsuffix_load(NULL, &err);
	r = load_dns();
	failures = run(r, psl, false, &checked);
	failures += run(r, psl, true, &checked);
	printf("checked %d manifest lines, %d failures\n", checked, failures);
	dns_resolver_free(r);
	publicsuffix_free(psl);
	buf_release(&path);
	buf_release(&err);
	if (failures > 0)
		fail_msg("%d manifest cases failed", failures);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
