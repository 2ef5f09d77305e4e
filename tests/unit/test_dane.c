/*
 * test_dane.c: DANE (src/queue/dane.c): the usable-record filter, TLSA
 * matching of every usage/selector/matching type against certificates
 * made at test time, the DANE-TA chain and name checks (RFC 7672 3.2),
 * hostile chains and records, and the TLSA lookup's authenticity rules
 * with the mock resolver.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dns/dns.h"
#include "lib/compat.h"
#include "queue/dane.h"
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

static struct testcert ca, ca2, leaf, wildleaf, expired;

static int
setup(void **state)
{
	static const char *const leafnames[] = { "mail.example.org" };
	static const char *const wildnames[] = { "*.example.org" };
	static const char *const canames[] = { "test ca" };
	static const char *const ca2names[] = { "other ca" };

	if (testcert_make(&ca, canames, 1, true, NULL, -3600, 86400) == -1 ||
	    testcert_make(&ca2, ca2names, 1, true, NULL, -3600, 86400) == -1 ||
	    testcert_make(&leaf, leafnames, 1, false, &ca, -3600, 86400) ==
		-1 ||
	    testcert_make(&wildleaf, wildnames, 1, false, &ca, -3600, 86400) ==
		-1 ||
	    testcert_make(&expired, leafnames, 1, false, &ca, -7200, -3600) ==
		-1)
		return -1;
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	testcert_free(&ca);
	testcert_free(&ca2);
	testcert_free(&leaf);
	testcert_free(&wildleaf);
	testcert_free(&expired);
	(void)state;
	return 0;
}

/* The association data of cert for selector/mtype into buf. */
static size_t
assoc(const struct testcert *tc, int selector, int mtype, uint8_t *buf,
    size_t max)
{
	gnutls_datum_t sel = tc->der, spki = { NULL, 0 };
	gnutls_pubkey_t pk;
	size_t n = 0;

	if (selector == 1) {
		assert_int_equal(gnutls_pubkey_init(&pk), 0);
		assert_int_equal(gnutls_pubkey_import_x509(pk, tc->crt, 0), 0);
		assert_int_equal(gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER,
		    &spki), 0);
		gnutls_pubkey_deinit(pk);
		sel = spki;
	}
	if (mtype == 0) {
		assert_true(sel.size <= max);
		memcpy(buf, sel.data, sel.size);
		n = sel.size;
	} else {
		assert_int_equal(gnutls_hash_fast(mtype == 1 ?
		    GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA512, sel.data, sel.size,
		    buf), 0);
		n = mtype == 1 ? 32 : 64;
	}
	gnutls_free(spki.data);
	return n;
}

enum chainkind { CH_LEAF_CA, CH_LEAF_ONLY, CH_WILD_CA, CH_EXPIRED_CA,
	CH_GARBAGE, CH_EMPTY };

static void
test_verify_table(void **state)
{
	static const struct {
		const char *name;
		int usage, selector, mtype;
		int from;          /* 0 leaf, 1 ca, 2 other ca, 3 wildleaf */
		int datalen;       /* -1: the real length */
		enum chainkind chain;
		const char *host;  /* DANE-TA name to accept */
		bool usable, verified;
	} cases[] = {
		{ "ee spki sha256", 3, 1, 1, 0, -1, CH_LEAF_CA, "x.test", true, true },
		{ "ee cert sha256", 3, 0, 1, 0, -1, CH_LEAF_CA, "x.test", true, true },
		{ "ee cert full", 3, 0, 0, 0, -1, CH_LEAF_CA, "x.test", true, true },
		{ "ee spki full", 3, 1, 0, 0, -1, CH_LEAF_CA, "x.test", true, true },
		{ "ee spki sha512", 3, 1, 2, 0, -1, CH_LEAF_CA, "x.test", true, true },
		{ "ee leaf only", 3, 1, 1, 0, -1, CH_LEAF_ONLY, NULL, true, true },
		/* RFC 7672 3.1.1: no expiry check for DANE-EE */
		{ "ee expired ok", 3, 1, 1, 4, -1, CH_EXPIRED_CA, NULL, true, true },
		{ "ee matches ca", 3, 1, 1, 1, -1, CH_LEAF_CA, "x.test", true, false },
		{ "ta spki sha256", 2, 1, 1, 1, -1, CH_LEAF_CA, "mail.example.org", true, true },
		{ "ta cert sha512", 2, 0, 2, 1, -1, CH_LEAF_CA, "MAIL.example.org", true, true },
		{ "ta name mismatch", 2, 1, 1, 1, -1, CH_LEAF_CA, "other.example.org", true, false },
		{ "ta no names", 2, 1, 1, 1, -1, CH_LEAF_CA, NULL, true, false },
		{ "ta wildcard", 2, 1, 1, 1, -1, CH_WILD_CA, "mx.example.org", true, true },
		{ "ta wildcard two labels", 2, 1, 1, 1, -1, CH_WILD_CA, "a.b.example.org", true, false },
		{ "ta other ca", 2, 1, 1, 2, -1, CH_LEAF_CA, "mail.example.org", true, false },
		{ "ta ca not sent", 2, 1, 1, 1, -1, CH_LEAF_ONLY, "mail.example.org", true, false },
		{ "ta expired leaf", 2, 1, 1, 1, -1, CH_EXPIRED_CA, "mail.example.org", true, false },
		{ "pkix-ee unusable", 1, 1, 1, 0, -1, CH_LEAF_CA, NULL, false, false },
		{ "pkix-ta unusable", 0, 1, 1, 1, -1, CH_LEAF_CA, "mail.example.org", false, false },
		{ "sha256 short", 3, 1, 1, 0, 31, CH_LEAF_CA, NULL, false, false },
		{ "sha256 long", 3, 1, 1, 0, 33, CH_LEAF_CA, NULL, false, false },
		{ "sha512 short", 3, 1, 2, 0, 63, CH_LEAF_CA, NULL, false, false },
		{ "full truncated", 3, 0, 0, 0, 20, CH_LEAF_CA, NULL, false, false },
		{ "selector 2", 3, 2, 1, 0, -1, CH_LEAF_CA, NULL, false, false },
		{ "mtype 3", 3, 1, 3, 0, 32, CH_LEAF_CA, NULL, false, false },
		{ "usage 4", 4, 1, 1, 0, -1, CH_LEAF_CA, NULL, false, false },
		{ "garbage chain", 3, 1, 1, 0, -1, CH_GARBAGE, NULL, true, false },
		{ "empty chain", 3, 1, 1, 0, -1, CH_EMPTY, NULL, true, false },
	};
	static const struct testcert *const from[] = { &leaf, &ca, &ca2,
		&wildleaf, &expired };

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t data[1024];
		struct dane_tlsa t;
		struct dane_lookup l;
		struct dane_verdict v;
		struct span chain[2];
		size_t nchain = 0, n;
		const char *names[1] = { cases[i].host };
		static const char garbage[] = "\x30\x82\xff\xff not a cert";

		memset(data, 0xab, sizeof(data));
		n = assoc(from[cases[i].from], cases[i].selector == 2 ? 1 :
		    cases[i].selector, cases[i].mtype > 2 ? 1 : cases[i].mtype,
		    data, sizeof(data));
		if (cases[i].datalen >= 0)
			n = (size_t)cases[i].datalen;
		t = (struct dane_tlsa){ (uint8_t)cases[i].usage,
			(uint8_t)cases[i].selector, (uint8_t)cases[i].mtype,
			data, n };
		if (dane_tlsa_usable(&t) != cases[i].usable)
			fail_msg("case %s: usable %d", cases[i].name,
			    !cases[i].usable);
		switch (cases[i].chain) {
		case CH_LEAF_CA:
		case CH_WILD_CA:
		case CH_EXPIRED_CA: {
			const struct testcert *lc = cases[i].chain == CH_LEAF_CA ?
			    &leaf : cases[i].chain == CH_WILD_CA ? &wildleaf :
			    &expired;

			chain[0] = span_of((const char *)lc->der.data,
			    lc->der.size);
			chain[1] = span_of((const char *)ca.der.data,
			    ca.der.size);
			nchain = 2;
			break;
		}
		case CH_LEAF_ONLY:
			chain[0] = span_of((const char *)leaf.der.data,
			    leaf.der.size);
			nchain = 1;
			break;
		case CH_GARBAGE:
			chain[0] = span_of(garbage, sizeof(garbage) - 1);
			nchain = 1;
			break;
		case CH_EMPTY:
			nchain = 0;
			break;
		}
		dane_lookup_from_records("mail.example.org", &t, 1, &l);
		assert_int_equal(l.ntext, 1);
		dane_verify(&l, chain, nchain, names, cases[i].host ? 1 : 0, &v);
		if (v.verified != cases[i].verified)
			fail_msg("case %s: verified %d (%s)", cases[i].name,
			    v.verified, v.why ? v.why : "");
		if (v.verified && v.matched_usage != cases[i].usage)
			fail_msg("case %s: matched usage %d", cases[i].name,
			    v.matched_usage);
		dane_lookup_release(&l);
	}
	(void)state;
}

/* A record set with an unusable and a usable record: the usable wins;
 * report text keeps both, sorted. */
static void
test_mixed_records(void **state)
{
	uint8_t good[32], bad[5] = { 1, 2, 3, 4, 5 };
	struct dane_tlsa recs[2];
	struct dane_lookup l;
	struct dane_verdict v;
	struct span chain[1] = { span_of((const char *)leaf.der.data,
		leaf.der.size) };

	assoc(&leaf, 1, 1, good, sizeof(good));
	recs[0] = (struct dane_tlsa){ 3, 1, 1, bad, sizeof(bad) };
	recs[1] = (struct dane_tlsa){ 3, 1, 1, good, sizeof(good) };
	dane_lookup_from_records("mx.example.org", recs, 2, &l);
	assert_int_equal(l.nrec, 1);
	assert_int_equal(l.nunusable, 1);
	assert_int_equal(l.ntext, 2);
	assert_true(strcmp(l.text[0], l.text[1]) < 0);
	assert_string_equal(l.text[0], "3 1 1 0102030405");
	dane_verify(&l, chain, 1, NULL, 0, &v);
	assert_true(v.verified);
	dane_lookup_release(&l);
	(void)state;
}

static void
hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* RFC 7672 2.2: authenticity and the CNAME-expanded name first. */
static void
test_lookup_mock(void **state)
{
	static const struct {
		const char *name;
		const char *host, *expanded;
		enum dane_status want;
		const char *want_base;
		size_t want_nrec;
	} cases[] = {
		{ "authentic", "mx.secure.test", NULL, DANE_RECORDS, "mx.secure.test", 1 },
		{ "insecure zone", "mx.insecure.test", NULL, DANE_NONE, "mx.insecure.test", 0 },
		{ "no records", "nodane.secure.test", NULL, DANE_NONE, "nodane.secure.test", 0 },
		{ "servfail", "mx.fail.test", NULL, DANE_TEMPERROR, "mx.fail.test", 0 },
		{ "expanded first", "alias.secure.test", "mx.secure.test", DANE_RECORDS, "mx.secure.test", 1 },
		{ "expanded none, host", "mx.secure.test", "nodane.secure.test", DANE_RECORDS, "mx.secure.test", 1 },
		{ "expanded fails", "mx.secure.test", "mx.fail.test", DANE_TEMPERROR, "mx.fail.test", 0 },
		{ "unusable only", "bad.secure.test", NULL, DANE_RECORDS, "bad.secure.test", 0 },
		{ "hostile name", "a..b", NULL, DANE_NONE, "a..b", 0 },
	};
	struct dns_resolver *r = dns_mock_new();
	char text[200], h[80];
	uint8_t d[32];

	assoc(&leaf, 1, 1, d, sizeof(d));
	hex(h, d, 32);
	snprintf(text, sizeof(text), "3 1 1 %s", h);
	assert_int_equal(dns_mock_add(r, "_25._tcp.mx.secure.test", DNS_TLSA,
	    text, true), 0);
	assert_int_equal(dns_mock_add(r, "_25._tcp.mx.insecure.test", DNS_TLSA,
	    text, false), 0);
	assert_int_equal(dns_mock_add(r, "_25._tcp.bad.secure.test", DNS_TLSA,
	    "1 1 1 00", true), 0);
	assert_int_equal(dns_mock_fail(r, "_25._tcp.mx.fail.test",
	    DNS_TEMPERROR), 0);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct dane_lookup l;

		dane_lookup(r, cases[i].host, cases[i].expanded, &l);
		if (l.status != cases[i].want || l.nrec != cases[i].want_nrec ||
		    l.base_domain == NULL ||
		    strcmp(l.base_domain, cases[i].want_base) != 0)
			fail_msg("case %s: status %d nrec %zu base %s",
			    cases[i].name, l.status, l.nrec,
			    l.base_domain ? l.base_domain : "(null)");
		dane_lookup_release(&l);
	}
	dns_resolver_free(r);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_table),
		cmocka_unit_test(test_mixed_records),
		cmocka_unit_test(test_lookup_mock),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
