/*
 * test_tlspolicy.c: the per-destination TLS decision (src/queue/
 * tlspolicy.c; spec/queue.md 5.2-5.4, 5.8) as a table over MTA-STS mode,
 * MX match, TLSA outcome and the message's REQUIRETLS setting; the
 * session check with PKIX and DANE against certificates made at test
 * time; and the TLS report results merged into tlsrptresult.db (5.7).
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/xmalloc.h"
#include "queue/tlspolicy.h"
#include "lib/banned.h"

struct testcert {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t der;
	gnutls_datum_t pem;
};
int testcert_make(struct testcert *tc, const char *const *names,
    size_t nnames, bool ca, const struct testcert *issuer, long from_secs,
    long until_secs);
void testcert_free(struct testcert *tc);

enum sts { STS_NONE, STS_TESTING, STS_ENFORCE, STS_TEMP };
enum tlsa { TLSA_NA, TLSA_NONE, TLSA_USABLE, TLSA_UNUSABLE, TLSA_TEMP };
enum rt { RT_UNSET, RT_YES, RT_NO };

static void
make_sts(enum sts s, struct mtasts_lookup *l)
{
	const char *why;
	const char *text = s == STS_TESTING ?
	    "version: STSv1\nmode: testing\nmx: *.example.org\nmax_age: 86400\n" :
	    "version: STSv1\nmode: enforce\nmx: *.example.org\nmax_age: 86400\n";

	memset(l, 0, sizeof(*l));
	if (s == STS_NONE) {
		l->status = MTASTS_NONE;
		return;
	}
	if (s == STS_TEMP) {
		l->status = MTASTS_TEMPERROR;
		return;
	}
	l->status = MTASTS_POLICY;
	l->policy_text = xstrdup(text);
	assert_int_equal(mtasts_policy_parse(span_of_cstr(text), &l->policy,
	    &why), 0);
}

static void
make_tlsa(enum tlsa t, const char *host, struct dane_lookup *l)
{
	static uint8_t good[32] = { 1 };
	static uint8_t bad[3] = { 1, 2, 3 };
	struct dane_tlsa rec = { 3, 1, 1, good, sizeof(good) };

	if (t == TLSA_UNUSABLE) {
		rec.data = bad;
		rec.datalen = sizeof(bad);
	}
	if (t == TLSA_USABLE || t == TLSA_UNUSABLE) {
		dane_lookup_from_records(host, &rec, 1, l);
		return;
	}
	memset(l, 0, sizeof(*l));
	l->ede = -1;
	l->status = t == TLSA_TEMP ? DANE_TEMPERROR : DANE_NONE;
	l->base_domain = xstrdup(host);
}

static void
test_decide_table(void **state)
{
	static const struct {
		const char *name;
		enum sts sts;
		const char *host;
		enum tlsa tlsa;
		enum rt rt;
		bool dmarc;
		enum tlspolicy_action want;
		bool tls_required, dane, pkix, fallback;
	} cases[] = {
		{ "nothing", STS_NONE, "mx1.example.org", TLSA_NA, RT_UNSET, false,
		    TLSPOLICY_CONNECT, false, false, false, true },
		{ "dmarc report", STS_NONE, "mx1.example.org", TLSA_NA, RT_UNSET, true,
		    TLSPOLICY_CONNECT, false, false, false, false },
		{ "no tlsa records", STS_NONE, "mx1.example.org", TLSA_NONE, RT_UNSET,
		    false, TLSPOLICY_CONNECT, false, false, false, true },
		{ "enforce match", STS_ENFORCE, "mx1.example.org", TLSA_NA, RT_UNSET,
		    false, TLSPOLICY_CONNECT, true, false, true, false },
		{ "enforce mismatch", STS_ENFORCE, "mx.other.test", TLSA_NA, RT_UNSET,
		    false, TLSPOLICY_SKIP, false, false, false, false },
		{ "enforce two labels", STS_ENFORCE, "a.mx1.example.org", TLSA_NA,
		    RT_UNSET, false, TLSPOLICY_SKIP, false, false, false, false },
		{ "enforce mismatch tls-required no", STS_ENFORCE, "mx.other.test",
		    TLSA_NA, RT_NO, false, TLSPOLICY_CONNECT, true, false, true, true },
		{ "testing mismatch", STS_TESTING, "mx.other.test", TLSA_NA, RT_UNSET,
		    false, TLSPOLICY_CONNECT, false, false, false, true },
		{ "dane", STS_NONE, "mx1.example.org", TLSA_USABLE, RT_UNSET, false,
		    TLSPOLICY_CONNECT, true, true, false, false },
		{ "dane over enforce", STS_ENFORCE, "mx1.example.org", TLSA_USABLE,
		    RT_UNSET, false, TLSPOLICY_CONNECT, true, true, false, false },
		{ "dane unusable", STS_NONE, "mx1.example.org", TLSA_UNUSABLE,
		    RT_UNSET, false, TLSPOLICY_CONNECT, true, false, false, false },
		{ "dane unusable enforce", STS_ENFORCE, "mx1.example.org",
		    TLSA_UNUSABLE, RT_UNSET, false, TLSPOLICY_CONNECT, true, false,
		    true, false },
		{ "tlsa temp", STS_NONE, "mx1.example.org", TLSA_TEMP, RT_UNSET, false,
		    TLSPOLICY_FAIL_TEMP, false, false, false, false },
		{ "tlsa temp tls-required no", STS_NONE, "mx1.example.org", TLSA_TEMP,
		    RT_NO, false, TLSPOLICY_CONNECT, false, false, false, true },
		{ "requiretls nothing", STS_NONE, "mx1.example.org", TLSA_NA, RT_YES,
		    false, TLSPOLICY_FAIL_PERM, false, false, false, false },
		{ "requiretls testing", STS_TESTING, "mx1.example.org", TLSA_NA, RT_YES,
		    false, TLSPOLICY_FAIL_PERM, false, false, false, false },
		{ "requiretls unusable", STS_NONE, "mx1.example.org", TLSA_UNUSABLE,
		    RT_YES, false, TLSPOLICY_FAIL_PERM, false, false, false, false },
		{ "requiretls enforce", STS_ENFORCE, "mx1.example.org", TLSA_NA, RT_YES,
		    false, TLSPOLICY_CONNECT, true, false, true, false },
		{ "requiretls dane", STS_NONE, "mx1.example.org", TLSA_USABLE, RT_YES,
		    false, TLSPOLICY_CONNECT, true, true, false, false },
		{ "enforce dmarc", STS_ENFORCE, "mx1.example.org", TLSA_NA, RT_UNSET,
		    true, TLSPOLICY_CONNECT, true, false, true, false },
		{ "dane tls-required no", STS_NONE, "mx1.example.org", TLSA_USABLE,
		    RT_NO, true, TLSPOLICY_CONNECT, true, true, false, true },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mtasts_lookup sts;
		struct dane_lookup tlsa;
		struct tlsrpt_result dr;
		struct tlspolicy_host h;
		struct tlspolicy_dest d = { .domain = "example.org",
			.have_mx = true, .mx_authentic = true,
			.chain_authentic = true, .sts = &sts,
			.requiretls = cases[i].rt == RT_YES ?
			    TLSPOLICY_REQUIRETLS_YES : cases[i].rt == RT_NO ?
			    TLSPOLICY_REQUIRETLS_NO : TLSPOLICY_REQUIRETLS_UNSET,
			.is_dmarc_report = cases[i].dmarc };
		const char *why = NULL;

		make_sts(cases[i].sts, &sts);
		make_tlsa(cases[i].tlsa, cases[i].host, &tlsa);
		assert_int_equal(tlspolicy_domain_check(&d, &why), 0);
		tlspolicy_domain_report(&d, &dr);
		tlspolicy_host_decide(&d, cases[i].host, NULL,
		    cases[i].tlsa == TLSA_NA ? NULL : &tlsa, -1, &dr, &h);
		if (h.action != cases[i].want ||
		    (h.action == TLSPOLICY_CONNECT &&
			(h.tls_required != cases[i].tls_required ||
			    h.verify_dane != cases[i].dane ||
			    h.verify_pkix != cases[i].pkix ||
			    h.plaintext_fallback != cases[i].fallback)))
			fail_msg("case %s: action %d req %d dane %d pkix %d fb %d",
			    cases[i].name, h.action, h.tls_required,
			    h.verify_dane, h.verify_pkix, h.plaintext_fallback);
		if (h.action == TLSPOLICY_FAIL_PERM &&
		    (h.code != 554 || strcmp(h.ecode, "5.7.30") != 0))
			fail_msg("case %s: code %d", cases[i].name, h.code);
		if (h.action == TLSPOLICY_SKIP && dr.failure != 1)
			fail_msg("case %s: mismatch not counted", cases[i].name);
		if (h.action == TLSPOLICY_CONNECT &&
		    h.requiretls != (cases[i].rt == RT_YES))
			fail_msg("case %s: requiretls", cases[i].name);
		if (cases[i].tlsa == TLSA_USABLE &&
		    h.report.type != TLSRPT_POLICY_TLSA)
			fail_msg("case %s: host report type", cases[i].name);
		tlspolicy_host_release(&h);
		tlsrpt_result_release(&dr);
		mtasts_lookup_release(&sts);
		dane_lookup_release(&tlsa);
	}
	(void)state;
}

static void
test_domain_check(void **state)
{
	struct mtasts_lookup sts;
	struct tlspolicy_dest d = { .domain = "example.org", .sts = &sts };
	const char *why = NULL;

	make_sts(STS_TEMP, &sts);
	assert_int_equal(tlspolicy_domain_check(&d, &why), -1);
	assert_non_null(why);
	d.requiretls = TLSPOLICY_REQUIRETLS_NO;
	assert_int_equal(tlspolicy_domain_check(&d, &why), 0);
	d.sts = NULL;
	d.requiretls = TLSPOLICY_REQUIRETLS_UNSET;
	assert_int_equal(tlspolicy_domain_check(&d, &why), 0);
	(void)state;
}

/* spec 5.3 step 3 and RFC 7672 3.2.3 names. */
static void
test_dane_applies_and_names(void **state)
{
	struct tlspolicy_dest d = { .domain = "example.org",
		.expanded_domain = "example.net", .have_mx = true,
		.mx_authentic = true, .chain_authentic = true };
	struct dane_lookup tlsa;
	struct tlspolicy_host h;

	assert_true(tlspolicy_dane_applies(&d, true, false));
	assert_false(tlspolicy_dane_applies(&d, false, false));
	assert_false(tlspolicy_dane_applies(&d, true, true));
	d.chain_authentic = false;
	assert_false(tlspolicy_dane_applies(&d, true, false));
	d.have_mx = false;
	assert_true(tlspolicy_dane_applies(&d, true, false));
	d.mx_authentic = false;
	assert_false(tlspolicy_dane_applies(&d, true, false));

	d.have_mx = true;
	d.mx_authentic = d.chain_authentic = true;
	make_tlsa(TLSA_USABLE, "mx.example.com", &tlsa);
	tlspolicy_host_decide(&d, "alias.example.org", "mx.example.com", &tlsa,
	    -1, NULL, &h);
	assert_int_equal(h.nnames, 4);
	assert_string_equal(h.names[0], "mx.example.com");
	assert_string_equal(h.names[1], "alias.example.org");
	assert_string_equal(h.names[2], "example.org");
	assert_string_equal(h.names[3], "example.net");
	assert_string_equal(h.sni, "mx.example.com");
	tlspolicy_host_release(&h);

	/* DANE not applicable with a DNSSEC extended error: reported */
	tlspolicy_host_decide(&d, "mx.example.com", NULL, NULL, 6, NULL, &h);
	assert_int_equal(h.report.type, TLSRPT_POLICY_NONE);
	assert_int_equal(h.report.failure, 1);
	assert_string_equal(h.report.details[0].reason,
	    "dns-extended-error-6-dnssec-bogus");
	tlspolicy_host_release(&h);
	dane_lookup_release(&tlsa);
	(void)state;
}

static struct testcert ca, leaf, selfsigned, expired;
static char tmpdir[64], capath[128];

static int
setup_certs(void **state)
{
	static const char *const names[] = { "mx1.example.org" };
	static const char *const canames[] = { "test ca" };
	FILE *f;

	/* mkdtemp() replaces the six template characters at the end */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tlspolicy.123456");
	memset(tmpdir + strlen(tmpdir) - 6, 'X', 6);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (testcert_make(&ca, canames, 1, true, NULL, -3600, 86400) == -1 ||
	    testcert_make(&leaf, names, 1, false, &ca, -3600, 86400) == -1 ||
	    testcert_make(&selfsigned, names, 1, false, NULL, -3600, 86400) ==
		-1 ||
	    testcert_make(&expired, names, 1, false, &ca, -7200, -3600) == -1)
		return -1;
	snprintf(capath, sizeof(capath), "%s/ca.pem", tmpdir);
	f = fopen(capath, "w");
	if (f == NULL)
		return -1;
	fwrite(ca.pem.data, 1, ca.pem.size, f);
	if (fclose(f) != 0)
		return -1;
	(void)state;
	return 0;
}

static int
teardown_certs(void **state)
{
	char p[160];
	static const char *const files[] = { "ca.pem", "tlsrptresult.db",
		"tlsrptresult.db-wal", "tlsrptresult.db-shm" };

	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
		unlink(p);
	}
	rmdir(tmpdir);
	testcert_free(&ca);
	testcert_free(&leaf);
	testcert_free(&selfsigned);
	testcert_free(&expired);
	(void)state;
	return 0;
}

static void
spki_sha256(const struct testcert *tc, uint8_t out[32])
{
	gnutls_pubkey_t pk;
	gnutls_datum_t spki;

	assert_int_equal(gnutls_pubkey_init(&pk), 0);
	assert_int_equal(gnutls_pubkey_import_x509(pk, tc->crt, 0), 0);
	assert_int_equal(gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &spki),
	    0);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data,
	    spki.size, out), 0);
	gnutls_free(spki.data);
	gnutls_pubkey_deinit(pk);
}

enum chain { CHAIN_GOOD, CHAIN_SELF, CHAIN_EXPIRED };
enum dane { DANE_NO, DANE_MATCH, DANE_NOMATCH, DANE_UNUSABLE };

static void
test_verify_table(void **state)
{
	static const struct {
		const char *name;
		enum sts sts;
		enum dane dane;
		enum rt rt;
		const char *host;
		enum chain chain;
		bool no_trust;
		bool ok, pkix_ok, dane_ok;
		const char *type, *reason;
	} cases[] = {
		{ "pkix good", STS_ENFORCE, DANE_NO, RT_UNSET, "mx1.example.org",
		    CHAIN_GOOD, false, true, true, false, NULL, "" },
		{ "pkix host mismatch", STS_ENFORCE, DANE_NO, RT_UNSET,
		    "mx2.example.org", CHAIN_GOOD, false, false, false, false,
		    TLSRPT_CERT_HOST_MISMATCH, "" },
		{ "pkix untrusted", STS_ENFORCE, DANE_NO, RT_UNSET, "mx1.example.org",
		    CHAIN_SELF, false, false, false, false, TLSRPT_CERT_NOT_TRUSTED,
		    "" },
		{ "pkix expired", STS_ENFORCE, DANE_NO, RT_UNSET, "mx1.example.org",
		    CHAIN_EXPIRED, false, false, false, false, TLSRPT_CERT_EXPIRED,
		    "" },
		{ "pkix no roots", STS_ENFORCE, DANE_NO, RT_UNSET, "mx1.example.org",
		    CHAIN_GOOD, true, false, false, false, TLSRPT_CERT_NOT_TRUSTED,
		    "no-system-roots" },
		{ "pkix ignored tls-required no", STS_ENFORCE, DANE_NO, RT_NO,
		    "mx1.example.org", CHAIN_SELF, false, true, false, false,
		    TLSRPT_CERT_NOT_TRUSTED, "" },
		{ "opportunistic self-signed", STS_NONE, DANE_NO, RT_UNSET,
		    "mx1.example.org", CHAIN_SELF, false, true, false, false, NULL,
		    "" },
		{ "testing reports pkix", STS_TESTING, DANE_NO, RT_UNSET,
		    "mx1.example.org", CHAIN_SELF, false, true, false, false,
		    TLSRPT_CERT_NOT_TRUSTED, "" },
		{ "dane match self-signed", STS_NONE, DANE_MATCH, RT_UNSET,
		    "mx1.example.org", CHAIN_SELF, false, true, false, true, NULL, "" },
		{ "dane beats enforce", STS_ENFORCE, DANE_MATCH, RT_UNSET,
		    "mx1.example.org", CHAIN_SELF, false, true, false, true, NULL, "" },
		{ "dane no match", STS_NONE, DANE_NOMATCH, RT_UNSET,
		    "mx1.example.org", CHAIN_GOOD, false, false, true, false,
		    TLSRPT_VALIDATION_FAILURE, "dane-no-match" },
		{ "dane no match tls-required no", STS_NONE, DANE_NOMATCH, RT_NO,
		    "mx1.example.org", CHAIN_SELF, false, true, false, false,
		    TLSRPT_VALIDATION_FAILURE, "dane-no-match" },
		{ "dane unusable", STS_NONE, DANE_UNUSABLE, RT_UNSET,
		    "mx1.example.org", CHAIN_SELF, false, true, false, false,
		    TLSRPT_TLSA_INVALID, "all-unusable-records+ignored" },
	};
	struct buf err;
	const char *cafiles[1] = { capath };
	struct tlspolicy_trust *trust;

	buf_init(&err, 1024);
	trust = tlspolicy_trust_new(cafiles, 1, true, &err);
	if (trust == NULL)
		fail_msg("trust: %s", err.data);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mtasts_lookup sts;
		struct dane_lookup tlsa;
		struct tlspolicy_host h;
		struct tlspolicy_verdict v;
		struct tlspolicy_dest d = { .domain = "example.org",
			.have_mx = true, .mx_authentic = true,
			.chain_authentic = true, .sts = &sts,
			.requiretls = cases[i].rt == RT_NO ?
			    TLSPOLICY_REQUIRETLS_NO : TLSPOLICY_REQUIRETLS_UNSET };
		const struct testcert *lc = cases[i].chain == CHAIN_GOOD ? &leaf :
		    cases[i].chain == CHAIN_SELF ? &selfsigned : &expired;
		struct span chain[2] = {
			span_of((const char *)lc->der.data, lc->der.size),
			span_of((const char *)ca.der.data, ca.der.size) };
		uint8_t hash[32];
		struct dane_tlsa rec = { 3, 1, 1, hash, sizeof(hash) };

		make_sts(cases[i].sts, &sts);
		spki_sha256(cases[i].dane == DANE_MATCH ? &selfsigned : &ca, hash);
		if (cases[i].dane == DANE_UNUSABLE)
			rec.datalen = 31;
		if (cases[i].dane != DANE_NO)
			dane_lookup_from_records(cases[i].host, &rec, 1, &tlsa);
		tlspolicy_host_decide(&d, cases[i].host, NULL,
		    cases[i].dane == DANE_NO ? NULL : &tlsa, -1, NULL, &h);
		assert_int_equal(h.action, TLSPOLICY_CONNECT);
		tlspolicy_verify(&h, cases[i].no_trust ? NULL : trust, chain,
		    cases[i].chain == CHAIN_SELF ? 1 : 2, &v);
		if (v.ok != cases[i].ok || v.pkix_ok != cases[i].pkix_ok ||
		    v.dane_ok != cases[i].dane_ok ||
		    (cases[i].type == NULL) != (v.result_type == NULL) ||
		    (v.result_type != NULL &&
			strcmp(v.result_type, cases[i].type) != 0) ||
		    strcmp(v.reason, cases[i].reason) != 0)
			fail_msg("case %s: ok %d pkix %d dane %d type %s reason %s",
			    cases[i].name, v.ok, v.pkix_ok, v.dane_ok,
			    v.result_type ? v.result_type : "-", v.reason);
		tlspolicy_host_release(&h);
		mtasts_lookup_release(&sts);
		if (cases[i].dane != DANE_NO)
			dane_lookup_release(&tlsa);
	}
	tlspolicy_trust_free(trust);
	buf_release(&err);
	(void)state;
}

/* spec 5.7: results merged per (policy domain, day, recipient domain,
 * is-host); no-policy-found domain result dropped when a tlsa result for
 * the same domain exists; hostile strings stored as data. */
static void
test_tlsrpt_store(void **state)
{
	struct tlsrpt_result rs[3], *got = NULL;
	struct tlspolicy_peer peer = { "192.0.2.1", "mx1.example.org",
		"helo \"evil\"\n'; DROP TABLE result; --", "192.0.2.2" };
	struct buf err;
	size_t n = 0;
	char day[9];
	int64_t now = 1700000000;

	buf_init(&err, 1024);
	tlsrpt_day(now, day);
	assert_string_equal(day, "20231114");
	for (int round = 0; round < 2; round++) {
		tlsrpt_result_init(&rs[0], TLSRPT_POLICY_STS, "example.org",
		    "example.org", false);
		tlsrpt_result_add_string(&rs[0], "version: STSv1");
		tlsrpt_result_add_string(&rs[0], "mode: enforce");
		tlsrpt_result_add_mx(&rs[0], "*.example.org");
		tlsrpt_result_init(&rs[1], TLSRPT_POLICY_TLSA, "mx1.example.org",
		    "example.org", true);
		tlsrpt_result_add_string(&rs[1], "3 1 1 abcd");
		tlsrpt_result_init(&rs[2], TLSRPT_POLICY_NONE, "mx1.example.org",
		    "example.org", false);
		tlspolicy_report_tls(&rs[0], &rs[1], NULL, NULL, &peer);
		tlspolicy_report_tls(&rs[0], &rs[1], TLSRPT_VALIDATION_FAILURE,
		    "dane-no-match", &peer);
		tlsrpt_result_success_to_failure(&rs[1],
		    TLSRPT_VALIDATION_FAILURE, "tls-remote-bad-certificate",
		    NULL, NULL, NULL, NULL);
		if (tlsrpt_results_store(tmpdir, rs, 3, now, &err) == -1)
			fail_msg("store: %s", err.data);
		for (size_t i = 0; i < 3; i++)
			tlsrpt_result_release(&rs[i]);
	}
	assert_int_equal(tlsrpt_results_load(tmpdir, "example.org", day, &got,
	    &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].type, TLSRPT_POLICY_STS);
	assert_int_equal(got[0].success, 2);
	assert_int_equal(got[0].failure, 2);
	assert_int_equal(got[0].nstrings, 2);
	assert_string_equal(got[0].mx[0], "*.example.org");
	assert_int_equal(got[0].ndetails, 1);
	assert_int_equal(got[0].details[0].count, 2);
	assert_string_equal(got[0].details[0].receiving_helo,
	    peer.receiving_helo);
	tlsrpt_results_free(got, n);

	assert_int_equal(tlsrpt_results_load(tmpdir, "mx1.example.org", day,
	    &got, &n, &err), 0);
	assert_int_equal(n, 1); /* the no-policy-found domain one skipped */
	assert_true(got[0].is_host);
	assert_int_equal(got[0].success, 0);
	assert_int_equal(got[0].failure, 4);
	assert_int_equal(got[0].ndetails, 2);
	tlsrpt_results_free(got, n);

	assert_int_equal(tlsrpt_results_load(tmpdir, "example.org", "20231115",
	    &got, &n, &err), 0);
	assert_int_equal(n, 0);
	tlsrpt_results_free(got, n);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_domain_check),
		cmocka_unit_test(test_dane_applies_and_names),
		cmocka_unit_test(test_verify_table),
		cmocka_unit_test(test_tlsrpt_store),
	};

	return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
