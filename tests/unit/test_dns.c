/*
 * test_dns.c: the resolver front and the mock (src/dns): name checks with
 * hostile input, the mock's answers (CNAME chains, timeouts, failures,
 * authenticity), reverse names, A+AAAA, PTR, type names, and the real
 * backend's handling of bad server addresses and unreachable servers.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/banned.h"

/* n copies of c then suffix, into b (1024 bytes). */
static char *
repeat(char *b, char c, size_t n, const char *suffix)
{
	memset(b, c, n);
	b[n] = '\0';
	snprintf(b + n, 1024 - n, "%s", suffix);
	return b;
}

static void
test_name_absolute(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
	} cases[] = {
		{ "example.org", 0, "example.org." },
		{ "Example.ORG.", 0, "example.org." },
		{ "a", 0, "a." },
		{ "foo:bar/baz.example.com", 0, "foo:bar/baz.example.com." },
		{ "with space.example", 0, "with space.example." },
		{ "", -1, NULL },
		{ ".", -1, NULL },
		{ "..", -1, NULL },
		{ "a..b", -1, NULL },
		{ ".a", -1, NULL },
		{ "a\tb", -1, NULL },
		{ "a\rb", -1, NULL },
		{ "a\nb", -1, NULL },
		{ "caf\xc3\xa9.example", -1, NULL },
		{ "a\x7f", -1, NULL },
	};
	char out[DNS_NAME_MAX + 2];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *why = NULL;
		int rc = dns_name_absolute(cases[i].in, out, sizeof(out), &why);

		if (rc != cases[i].rc || (rc == 0 && strcmp(out,
		    cases[i].out) != 0))
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].in, rc,
			    why ? why : out);
	}
	(void)state;
}

static void
test_name_limits(void **state)
{
	char out[DNS_NAME_MAX + 2];
	const char *why;
	char name[1200], tmp[1024];

	/* RFC 1035 2.3.4: 63-octet labels, 253 in text form. */
	assert_int_equal(dns_name_absolute(repeat(tmp, 'a', 63, ".x"), out,
	    sizeof(out), &why), 0);
	assert_int_equal(dns_name_absolute(repeat(tmp, 'a', 64, ".x"), out,
	    sizeof(out), &why), -1);
	name[0] = '\0';
	for (int i = 0; i < 3; i++)
		snprintf(name + strlen(name), sizeof(name) - strlen(name),
		    "%s.", repeat(tmp, 'b', 63, ""));
	/* 3 * 64 = 192; add a label to reach 253 exactly, then 254. */
	snprintf(name + strlen(name), sizeof(name) - strlen(name), "%s",
	    repeat(tmp, 'c', 61, ""));
	assert_int_equal(strlen(name), 253);
	assert_int_equal(dns_name_absolute(name, out, sizeof(out), &why), 0);
	assert_true(dns_name_valid(name));
	snprintf(name + strlen(name), sizeof(name) - strlen(name), "c");
	assert_int_equal(strlen(name), 254);
	assert_int_equal(dns_name_absolute(name, out, sizeof(out), &why), -1);
	assert_false(dns_name_valid(name));
	/* Too small an output buffer is refused, not overflowed. */
	assert_int_equal(dns_name_absolute("example.org", out, 5, &why), -1);
	(void)state;
}

static void
test_ip_reverse(void **state)
{
	static const struct {
		const char *ip;
		int rc;
		const char *out;
		bool v6;
	} cases[] = {
		{ "192.0.2.1", 0, "1.2.0.192", false },
		{ "127.0.0.2", 0, "2.0.0.127", false },
		{ "2001:db8::1", 0, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
				      "0.0.0.0.8.b.d.0.1.0.0.2", true },
		{ "", -1, NULL, false },
		{ "1.2.3", -1, NULL, false },
		{ "1.2.3.4.5", -1, NULL, false },
		{ "256.1.1.1", -1, NULL, false },
		{ "example.org", -1, NULL, false },
		{ "[::1]", -1, NULL, false },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char out[DNS_NAME_MAX + 1];
		bool v6 = !cases[i].v6;
		int rc = dns_ip_reverse(cases[i].ip, out, sizeof(out), &v6);

		if (rc != cases[i].rc || (rc == 0 && (strcmp(out,
		    cases[i].out) != 0 || v6 != cases[i].v6)))
			fail_msg("case %zu (%s): rc %d", i, cases[i].ip, rc);
	}
	(void)state;
}

static void
test_types(void **state)
{
	static const enum dns_type all[] = { DNS_A, DNS_NS, DNS_CNAME,
		DNS_PTR, DNS_MX, DNS_TXT, DNS_AAAA, DNS_SRV, DNS_TLSA };
	enum dns_type t;

	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		assert_int_equal(dns_type_parse(dns_type_name(all[i]), &t), 0);
		assert_int_equal(t, all[i]);
	}
	assert_int_equal(dns_type_parse("mx", &t), 0);
	assert_int_equal(t, DNS_MX);
	assert_int_equal(dns_type_parse("SPF", &t), -1);
	assert_int_equal(dns_type_parse("", &t), -1);
	assert_string_equal(dns_result_name(DNS_NOTFOUND), "not found");
	(void)state;
}

static struct dns_resolver *
make_mock(void)
{
	struct dns_resolver *r = dns_mock_new();

	assert_int_equal(dns_mock_add(r, "example.org", DNS_A, "192.0.2.1",
	    true), 0);
	assert_int_equal(dns_mock_add(r, "example.org", DNS_AAAA,
	    "2001:DB8:0::1", true), 0);
	assert_int_equal(dns_mock_add(r, "Example.org.", DNS_MX,
	    "10 mx.example.org.", true), 0);
	assert_int_equal(dns_mock_add(r, "example.org", DNS_TXT,
	    "v=spf1 -all", true), 0);
	assert_int_equal(dns_mock_add(r, "www.example.org", DNS_CNAME,
	    "example.org", true), 0);
	assert_int_equal(dns_mock_add(r, "insecure.example.org", DNS_CNAME,
	    "example.org", false), 0);
	assert_int_equal(dns_mock_add(r, "loop1.example.org", DNS_CNAME,
	    "loop2.example.org", false), 0);
	assert_int_equal(dns_mock_add(r, "loop2.example.org", DNS_CNAME,
	    "loop1.example.org", false), 0);
	assert_int_equal(dns_mock_add(r, "_25._tcp.mx.example.org", DNS_TLSA,
	    "3 1 1 00ff", true), 0);
	assert_int_equal(dns_mock_add(r, "_imap._tcp.example.org", DNS_SRV,
	    "0 1 143 imap.example.org", true), 0);
	assert_int_equal(dns_mock_add(r, "1.2.0.192.in-addr.arpa", DNS_PTR,
	    "example.org.", true), 0);
	assert_int_equal(dns_mock_add(r, "slow.example.org", DNS_A,
	    "192.0.2.9", false), 0);
	assert_int_equal(dns_mock_add_timeout(r, "slow.example.org"), 0);
	assert_int_equal(dns_mock_fail(r, "broken.example.org",
	    DNS_TEMPERROR), 0);
	assert_int_equal(dns_mock_fail(r, "refused.example.org",
	    DNS_PERMERROR), 0);
	return r;
}

static void
test_mock_answers(void **state)
{
	static const struct {
		const char *name;
		enum dns_type type;
		enum dns_result want;
		const char *text;   /* first record's text */
		bool authentic;
		size_t ncname;
	} cases[] = {
		{ "example.org", DNS_A, DNS_OK, "192.0.2.1", true, 0 },
		{ "EXAMPLE.ORG.", DNS_A, DNS_OK, "192.0.2.1", true, 0 },
		{ "example.org", DNS_AAAA, DNS_OK, "2001:db8::1", true, 0 },
		{ "example.org", DNS_MX, DNS_OK, "mx.example.org", true, 0 },
		{ "example.org", DNS_TXT, DNS_OK, "v=spf1 -all", true, 0 },
		{ "example.org", DNS_NS, DNS_NOTFOUND, NULL, true, 0 },
		{ "nx.example.org", DNS_A, DNS_NOTFOUND, NULL, true, 0 },
		{ "www.example.org", DNS_A, DNS_OK, "192.0.2.1", true, 1 },
		{ "www.example.org", DNS_CNAME, DNS_OK, "example.org", true,
		    0 },
		{ "insecure.example.org", DNS_A, DNS_OK, "192.0.2.1", false,
		    1 },
		{ "loop1.example.org", DNS_A, DNS_TEMPERROR, NULL, false, 10 },
		{ "_25._tcp.mx.example.org", DNS_TLSA, DNS_OK, "", true, 0 },
		{ "_imap._tcp.example.org", DNS_SRV, DNS_OK,
		    "imap.example.org", true, 0 },
		{ "slow.example.org", DNS_A, DNS_OK, "192.0.2.9", false, 0 },
		{ "slow.example.org", DNS_TXT, DNS_TEMPERROR, NULL, false, 0 },
		{ "broken.example.org", DNS_A, DNS_TEMPERROR, NULL, false, 0 },
		{ "refused.example.org", DNS_MX, DNS_PERMERROR, NULL, false,
		    0 },
		{ "bad..name", DNS_A, DNS_PERMERROR, NULL, false, 0 },
		{ "", DNS_A, DNS_PERMERROR, NULL, false, 0 },
	};
	struct dns_resolver *r = make_mock();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct dns_answer ans;
		enum dns_result got = dns_lookup(r, cases[i].name,
		    cases[i].type, &ans);

		if (got != cases[i].want || ans.result != got ||
		    ans.authentic != cases[i].authentic ||
		    ans.ncname != cases[i].ncname ||
		    (cases[i].text != NULL && (ans.n == 0 ||
		    strcmp(ans.rr[0].text, cases[i].text) != 0)) ||
		    (got == DNS_OK) != (ans.why == NULL))
			fail_msg("case %zu (%s %s): got %s n=%zu auth=%d "
				 "ncname=%zu", i, cases[i].name,
			    dns_type_name(cases[i].type), dns_result_name(got),
			    ans.n, ans.authentic, ans.ncname);
		dns_answer_release(&ans);
	}
	dns_resolver_free(r);
	(void)state;
}

static void
test_mock_fields(void **state)
{
	struct dns_resolver *r = make_mock();
	struct dns_answer ans;

	assert_int_equal(dns_lookup(r, "example.org", DNS_MX, &ans), DNS_OK);
	assert_int_equal(ans.rr[0].pref, 10);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup(r, "_25._tcp.mx.example.org", DNS_TLSA,
	    &ans), DNS_OK);
	assert_int_equal(ans.rr[0].usage, 3);
	assert_int_equal(ans.rr[0].selector, 1);
	assert_int_equal(ans.rr[0].mtype, 1);
	assert_int_equal(ans.rr[0].datalen, 2);
	assert_int_equal(ans.rr[0].data[1], 0xff);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup(r, "_imap._tcp.example.org", DNS_SRV,
	    &ans), DNS_OK);
	assert_int_equal(ans.rr[0].port, 143);
	assert_int_equal(ans.rr[0].weight, 1);
	dns_answer_release(&ans);
	/* Bad record text is refused by the mock. */
	assert_int_equal(dns_mock_add(r, "x.example", DNS_A, "1.2.3", false),
	    -1);
	assert_int_equal(dns_mock_add(r, "x.example", DNS_AAAA, "1.2.3.4",
	    false), -1);
	assert_int_equal(dns_mock_add(r, "x.example", DNS_MX, "mx", false),
	    -1);
	assert_int_equal(dns_mock_add(r, "x.example", DNS_TLSA, "3 1 1 0",
	    false), -1);
	assert_int_equal(dns_mock_add(r, "x.example", DNS_TLSA, "3 1 1 zz",
	    false), -1);
	assert_int_equal(dns_mock_add(r, "x..example", DNS_A, "1.2.3.4",
	    false), -1);
	assert_int_equal(dns_mock_fail(r, "x.example", DNS_OK), -1);
	/* TXT with a NUL byte keeps its length. */
	assert_int_equal(dns_mock_add_txt(r, "nul.example", "a\0b", 3, false),
	    0);
	assert_int_equal(dns_lookup(r, "nul.example", DNS_TXT, &ans), DNS_OK);
	assert_int_equal(ans.rr[0].textlen, 3);
	assert_int_equal(ans.rr[0].text[2], 'b');
	dns_answer_release(&ans);
	assert_true(dns_mock_queries(r) >= 4);
	assert_true(dns_resolver_trusts_ad(r));
	dns_resolver_free(r);
	(void)state;
}

static void
test_lookup_ips_ptr(void **state)
{
	struct dns_resolver *r = make_mock();
	struct dns_answer ans;

	assert_int_equal(dns_lookup_ips(r, "example.org", &ans), DNS_OK);
	assert_int_equal(ans.n, 2);
	assert_true(ans.authentic);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup_ips(r, "slow.example.org", &ans), DNS_OK);
	assert_int_equal(ans.n, 1);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup_ips(r, "broken.example.org", &ans),
	    DNS_TEMPERROR);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup_ips(r, "nx.example.org", &ans),
	    DNS_NOTFOUND);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup_ptr(r, "192.0.2.1", &ans), DNS_OK);
	assert_string_equal(ans.rr[0].text, "example.org");
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup_ptr(r, "192.0.2.2", &ans), DNS_NOTFOUND);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup_ptr(r, "not-an-ip", &ans), DNS_PERMERROR);
	dns_answer_release(&ans);
	dns_answer_release(NULL);
	dns_resolver_free(r);
	dns_resolver_free(NULL);
	(void)state;
}

static void
test_real_params(void **state)
{
	static const char *bad[] = { "", "example.org", "1.2.3.4:0",
		"1.2.3.4:65536", "[::1", "[::1]x", "1.2.3.4:x", "300.1.1.1" };
	static const char *good[] = { "127.0.0.1", "127.0.0.1:5353",
		"[::1]:53", "::1", "[::1]" };

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct dns_params p = { .servers = &bad[i], .nservers = 1 };
		struct buf err;
		struct dns_resolver *r;

		buf_init(&err, 1024);
		r = dns_resolver_new(&p, &err);
		if (r != NULL || err.len == 0)
			fail_msg("bad server %zu (%s) accepted", i, bad[i]);
		buf_release(&err);
	}
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		struct dns_params p = { .servers = &good[i], .nservers = 1 };
		struct buf err;
		struct dns_resolver *r;

		buf_init(&err, 1024);
		r = dns_resolver_new(&p, &err);
		if (r == NULL)
			fail_msg("server %zu (%s): %s", i, good[i], err.data);
		/* RFC 6698 A.3: loopback servers are trusted for AD. */
		assert_true(dns_resolver_trusts_ad(r));
		dns_resolver_free(r);
		buf_release(&err);
	}
	(void)state;
}

static void
test_real_unreachable(void **state)
{
	/* Nothing listens on the discard port: a temporary error within
	 * the timeout, never a hang or a "not found". */
	static const char *srv[] = { "127.0.0.1:9" };
	struct dns_params p = { .servers = srv, .nservers = 1,
		.timeout_ms = 300, .attempts = 1 };
	struct dns_resolver *r;
	struct dns_answer ans;
	struct buf err;

	buf_init(&err, 1024);
	r = dns_resolver_new(&p, &err);
	assert_non_null(r);
	assert_int_equal(dns_lookup(r, "example.org", DNS_A, &ans),
	    DNS_TEMPERROR);
	assert_false(ans.authentic);
	dns_answer_release(&ans);
	assert_int_equal(dns_lookup(r, "bad..name", DNS_A, &ans),
	    DNS_PERMERROR);
	dns_answer_release(&ans);
	dns_resolver_free(r);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_absolute),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_ip_reverse),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_mock_answers),
		cmocka_unit_test(test_mock_fields),
		cmocka_unit_test(test_lookup_ips_ptr),
		cmocka_unit_test(test_real_params),
		cmocka_unit_test(test_real_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
