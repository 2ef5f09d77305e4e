/*
 * test_spf.c: SPF parts the test suites do not pin down (src/mailauth/
 * spf.c): record parsing with hostile input, macro expansion (the RFC
 * 7208 7.4 examples and errors), identity selection, the lookup limits,
 * authenticity tracking, the explanation rules and Received-SPF.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/span.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

static void
test_parse(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out; /* normalized form */
	} cases[] = {
		{ "v=spf1", 0, "v=spf1" },
		{ "v=spf1 -all", 0, "v=spf1 -all" },
		{ "V=SPF1 +ALL", 0, "v=spf1 all" },
		{ "v=spf1  a   mx  ", 0, "v=spf1 a mx" },
		{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:DB8::/32 ~all", 0,
		    "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all" },
		{ "v=spf1 a/24 mx//64 a:x.example/24//96 ?ptr", 0,
		    "v=spf1 a/24 mx//64 a:x.example/24//96 ?ptr" },
		{ "v=spf1 include:_spf.example.com redirect=x.example", 0,
		    "v=spf1 include:_spf.example.com redirect=x.example" },
		{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", 0,
		    "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all" },
		{ "v=spf1 exp=explain.%{d} foo=bar%{d} -all", 0,
		    "v=spf1 -all exp=explain.%{d}" },
		{ "v=spf1 a:foo.example.com.", 0,
		    "v=spf1 a:foo.example.com." },
		{ "v=spf10", -1, NULL },
		{ "v=spf", -1, NULL },
		{ "", -1, NULL },
		{ "spf1 -all", -1, NULL },
		{ "v=spf1 -all\r", -1, NULL },
		{ "v=spf1 a\n-all", -1, NULL },
		{ "v=spf1\t-all", -1, NULL },
		{ "v=spf1 \xc3\xa9", -1, NULL },
		{ "v=spf1 foo", -1, NULL },
		{ "v=spf1 all:x.example", -1, NULL },
		{ "v=spf1 all/24", -1, NULL },
		{ "v=spf1 include", -1, NULL },
		{ "v=spf1 include:", -1, NULL },
		{ "v=spf1 exists", -1, NULL },
		{ "v=spf1 a:example", -1, NULL },       /* no dot: domain-end */
		{ "v=spf1 a:example.123", -1, NULL },   /* numeric toplabel */
		{ "v=spf1 a:example.-com", -1, NULL },
		{ "v=spf1 ip4:192.0.2.1/33", -1, NULL },
		{ "v=spf1 ip4:192.0.2.1/032", -1, NULL },
		{ "v=spf1 ip4:192.0.2", -1, NULL },
		{ "v=spf1 ip4:", -1, NULL },
		{ "v=spf1 ip4", -1, NULL },
		{ "v=spf1 ip4:2001:db8::1", -1, NULL },
		{ "v=spf1 ip6:192.0.2.1", -1, NULL },
		{ "v=spf1 ip6:::1/129", -1, NULL },
		{ "v=spf1 a/33", -1, NULL },
		{ "v=spf1 a//129", -1, NULL },
		{ "v=spf1 redirect=a.example redirect=b.example", -1, NULL },
		{ "v=spf1 exp=a.example exp=b.example", -1, NULL },
		{ "v=spf1 redirect=", -1, NULL },
		{ "v=spf1 exists:%{x}.example", -1, NULL },
		{ "v=spf1 exists:%{d0}.example", -1, NULL },
		{ "v=spf1 exists:%{c}.example", -1, NULL },  /* exp only */
		{ "v=spf1 exists:%{d", -1, NULL },
		{ "v=spf1 exists:%d.example", -1, NULL },
		{ "v=spf1 exists:x.example%", -1, NULL },
		{ "v=spf1 foo=%", -1, NULL },
		{ "v=spf1 =bar", -1, NULL },
		{ "v=spf1 -", -1, NULL },
		{ "v=spf1 +-all", -1, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct spf_record rec;
		const char *why = NULL;
		int rc = spf_parse(span_of_cstr(cases[i].in), &rec, &why);
		struct buf out;

		buf_init(&out, BUF_NOMAX);
		if (rc == 0)
			spf_record_format(&rec, &out);
		if (rc != cases[i].rc || (rc == 0 && strcmp(out.data,
		    cases[i].out) != 0) || (rc == -1 && why == NULL))
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].in, rc,
			    rc == 0 ? out.data : why);
		buf_release(&out);
		spf_record_release(&rec);
	}
	(void)state;
}

static void
test_parse_hostile(void **state)
{
	struct spf_record rec;
	const char *why;
	struct buf b;
	char nul[] = "v=spf1 a\0 -all";

	/* NUL inside a record. */
	assert_int_equal(spf_parse(span_of(nul, sizeof(nul) - 1), &rec, &why),
	    -1);
	/* At and past the length limit. */
	buf_init(&b, BUF_NOMAX);
	buf_adds(&b, "v=spf1");
	while (b.len + 4 <= SPF_RECORD_MAX)
		buf_adds(&b, " mx");
	while (b.len < SPF_RECORD_MAX)
		buf_addc(&b, ' ');
	assert_int_equal(spf_parse(span_of_buf(&b), &rec, &why), 0);
	spf_record_release(&rec);
	buf_addc(&b, ' ');
	assert_int_equal(spf_parse(span_of_buf(&b), &rec, &why), -1);
	buf_release(&b);
	/* Every byte value after the version. */
	for (int c = 0; c < 256; c++) {
		char in[16];
		int n = snprintf(in, sizeof(in), "v=spf1 %c", c == 0 ? 1 : c);
		int rc = spf_parse(span_of(in, (size_t)n), &rec, &why);

		if (rc == 0)
			spf_record_release(&rec);
		if (c < 0x21 || c > 0x7e)
			assert_true(rc == -1 || c == ' ');
	}
	/* Releasing twice or an empty record is harmless. */
	spf_record_release(&rec);
	spf_record_release(NULL);
	(void)state;
}

static void
test_macros(void **state)
{
	/* RFC 7208 7.4 examples, plus escapes and URL encoding. */
	static const struct {
		const char *ip;
		const char *spec;
		bool exp;
		int rc;
		const char *out;
	} cases[] = {
		{ "192.0.2.3", "%{s}", false, 0, "strong-bad@email.example.com" },
		{ "192.0.2.3", "%{o}", false, 0, "email.example.com" },
		{ "192.0.2.3", "%{d}", false, 0, "email.example.com" },
		{ "192.0.2.3", "%{d4}", false, 0, "email.example.com" },
		{ "192.0.2.3", "%{d3}", false, 0, "email.example.com" },
		{ "192.0.2.3", "%{d2}", false, 0, "example.com" },
		{ "192.0.2.3", "%{d1}", false, 0, "com" },
		{ "192.0.2.3", "%{dr}", false, 0, "com.example.email" },
		{ "192.0.2.3", "%{d2r}", false, 0, "example.email" },
		{ "192.0.2.3", "%{l}", false, 0, "strong-bad" },
		{ "192.0.2.3", "%{l-}", false, 0, "strong.bad" },
		{ "192.0.2.3", "%{lr}", false, 0, "strong-bad" },
		{ "192.0.2.3", "%{lr-}", false, 0, "bad.strong" },
		{ "192.0.2.3", "%{l1r-}", false, 0, "strong" },
		{ "192.0.2.3", "%{ir}.%{v}._spf.%{d2}", false, 0,
		    "3.2.0.192.in-addr._spf.example.com" },
		{ "192.0.2.3", "%{lr-}.lp._spf.%{d2}", false, 0,
		    "bad.strong.lp._spf.example.com" },
		{ "192.0.2.3", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false, 0,
		    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "192.0.2.3", "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false, 0,
		    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "192.0.2.3", "%{d2}.trusted-domains.example.net", false, 0,
		    "example.com.trusted-domains.example.net" },
		{ "2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}", false, 0,
		    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1"
		    ".0.0.2.ip6._spf.example.com" },
		{ "192.0.2.3", "%%%_%-", false, 0, "% %20" },
		{ "192.0.2.3", "%{S}", false, 0,
		    "strong-bad%40email.example.com" },
		{ "192.0.2.3", "%{h}", false, 0, "helo.example" },
		{ "192.0.2.3", "%{p}", false, 0, "unknown" },
		{ "192.0.2.3", "%{c} %{r} %{t}", true, 0,
		    "192.0.2.3 receiver.example 1700000000" },
		{ "192.0.2.3", "%{d}%{d}%{d}", false, 0,
		    "email.example.comemail.example.comemail.example.com" },
		{ "192.0.2.3", "%{c}", false, -1, NULL },
		{ "192.0.2.3", "a b", false, -1, NULL },
		{ "192.0.2.3", "%{d0}", false, -1, NULL },
		{ "192.0.2.3", "%{q}", false, -1, NULL },
		{ "192.0.2.3", "%{d", false, -1, NULL },
		{ "192.0.2.3", "%", false, -1, NULL },
		{ "192.0.2.3", "%x", false, -1, NULL },
		{ "192.0.2.3", "%{d2r-x}", false, -1, NULL },
		{ "192.0.2.3", "\x01", true, -1, NULL },
	};
	struct spf_args a = { .helo = "helo.example",
		.local_hostname = "receiver.example", .now = 1700000000 };

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf out;
		const char *why = NULL;
		int rc;

		a.remote_ip = cases[i].ip;
		buf_init(&out, BUF_NOMAX);
		rc = spf_expand(NULL, &a, "email.example.com",
		    "strong-bad@email.example.com", cases[i].spec,
		    cases[i].exp, &out, &why);
		if (rc != cases[i].rc || (rc == 0 && strcmp(out.data,
		    cases[i].out) != 0))
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].spec,
			    rc, rc == 0 ? out.data : why);
		buf_release(&out);
	}
	(void)state;
}

static struct dns_resolver *
zone(void)
{
	struct dns_resolver *r = dns_mock_new();

	dns_mock_add(r, "example.org", DNS_TXT, "v=spf1 ip4:192.0.2.0/24 "
	    "mx -all exp=exp.example.org", true);
	dns_mock_add(r, "example.org", DNS_MX, "10 mx.example.org", true);
	dns_mock_add(r, "mx.example.org", DNS_A, "198.51.100.1", true);
	dns_mock_add(r, "exp.example.org", DNS_TXT, "%{i} is not one of "
	    "%{d}'s servers", true);
	dns_mock_add(r, "mixed.example", DNS_TXT, "v=spf1 a:mx.example.org "
	    "a:insecure.example -all", true);
	dns_mock_add(r, "insecure.example", DNS_A, "203.0.113.1", false);
	dns_mock_add(r, "helo.example", DNS_TXT, "v=spf1 a -all", true);
	dns_mock_add(r, "helo.example", DNS_A, "192.0.2.77", true);
	dns_mock_add(r, "loop.example", DNS_TXT,
	    "v=spf1 include:loop.example -all", true);
	dns_mock_add(r, "voids.example", DNS_TXT,
	    "v=spf1 a:n1.example a:n2.example a:n3.example -all", true);
	dns_mock_add(r, "twovoids.example", DNS_TXT,
	    "v=spf1 a:n1.example a:n2.example -all", true);
	dns_mock_add(r, "badexp.example", DNS_TXT,
	    "v=spf1 -all exp=ctl.example", true);
	dns_mock_add(r, "ctl.example", DNS_TXT, "bad\x01text", true);
	dns_mock_add(r, "long.example", DNS_TXT,
	    "v=spf1 -all exp=longexp.example", true);
	{
		char big[2000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		dns_mock_add(r, "longexp.example", DNS_TXT, big, true);
	}
	return r;
}

static void
test_verify(void **state)
{
	static const struct {
		const char *ip, *local, *domain, *helo;
		enum spf_status want;
		enum spf_identity id;
		bool authentic;
		const char *mech;
	} cases[] = {
		{ "192.0.2.10", "bob", "example.org", "h.example", SPF_PASS,
		    SPF_ID_MAILFROM, true, "ip4:192.0.2.0/24" },
		{ "198.51.100.1", "bob", "example.org", "h.example", SPF_PASS,
		    SPF_ID_MAILFROM, true, "mx" },
		{ "203.0.113.9", "bob", "example.org", "h.example", SPF_FAIL,
		    SPF_ID_MAILFROM, true, "-all" },
		{ "::ffff:192.0.2.10", "bob", "example.org", "h.example",
		    SPF_PASS, SPF_ID_MAILFROM, true, "ip4:192.0.2.0/24" },
		{ "203.0.113.1", "", "mixed.example", "h.example", SPF_PASS,
		    SPF_ID_MAILFROM, false, "a:insecure.example" },
		{ "192.0.2.77", NULL, NULL, "helo.example", SPF_PASS,
		    SPF_ID_HELO, true, "a" },
		{ "192.0.2.77", NULL, "", "[192.0.2.77]", SPF_NONE,
		    SPF_ID_NONE, false, NULL },
		{ "192.0.2.77", NULL, NULL, "192.0.2.77", SPF_NONE,
		    SPF_ID_NONE, false, NULL },
		{ "192.0.2.1", "x", "nothing.example", "h", SPF_NONE,
		    SPF_ID_MAILFROM, true, NULL },
		{ "192.0.2.1", "x", "loop.example", "h", SPF_PERMERROR,
		    SPF_ID_MAILFROM, true, "include:loop.example" },
		{ "192.0.2.1", "x", "voids.example", "h", SPF_PERMERROR,
		    SPF_ID_MAILFROM, true, "a:n3.example" },
		{ "192.0.2.1", "x", "twovoids.example", "h", SPF_FAIL,
		    SPF_ID_MAILFROM, true, "-all" },
		{ "not-an-ip", "x", "example.org", "h", SPF_PERMERROR,
		    SPF_ID_MAILFROM, false, NULL },
	};
	struct dns_resolver *r = zone();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct spf_args a = { .remote_ip = cases[i].ip,
			.mailfrom_local = cases[i].local,
			.mailfrom_domain = cases[i].domain,
			.helo = cases[i].helo };
		struct spf_result res;

		spf_verify(r, &a, &res);
		if (res.status != cases[i].want ||
		    res.identity != cases[i].id ||
		    res.authentic != cases[i].authentic ||
		    (cases[i].mech == NULL) != (res.mechanism == NULL) ||
		    (cases[i].mech != NULL &&
		    strcmp(cases[i].mech, res.mechanism) != 0))
			fail_msg("case %zu: %s id %d auth %d mech %s (%s)", i,
			    spf_status_name(res.status), res.identity,
			    res.authentic, res.mechanism ? res.mechanism : "-",
			    res.problem ? res.problem : "");
		spf_result_release(&res);
	}
	dns_resolver_free(r);
	(void)state;
}

static void
test_explanation(void **state)
{
	struct dns_resolver *r = zone();
	struct spf_args a = { .remote_ip = "203.0.113.9",
		.mailfrom_local = "", .mailfrom_domain = "example.org",
		.helo = "h.example" };
	struct spf_result res;

	assert_int_equal(spf_verify(r, &a, &res), SPF_FAIL);
	assert_string_equal(res.sender, "postmaster@example.org");
	assert_string_equal(res.explanation,
	    "203.0.113.9 is not one of example.org's servers");
	spf_result_release(&res);
	/* Control bytes: dropped. Over-long: cut. */
	a.mailfrom_domain = "badexp.example";
	assert_int_equal(spf_verify(r, &a, &res), SPF_FAIL);
	assert_null(res.explanation);
	spf_result_release(&res);
	a.mailfrom_domain = "long.example";
	assert_int_equal(spf_verify(r, &a, &res), SPF_FAIL);
	assert_int_equal(strlen(res.explanation), SPF_EXP_MAX);
	spf_result_release(&res);
	spf_result_release(NULL);
	dns_resolver_free(r);
	(void)state;
}

static void
test_lookup_limit(void **state)
{
	struct dns_resolver *r = dns_mock_new();
	struct spf_args a = { .remote_ip = "192.0.2.1",
		.mailfrom_local = "x", .helo = "h" };
	struct spf_result res;
	struct buf rec;

	dns_mock_add(r, "h.example", DNS_A, "198.51.100.7", false);
	dns_mock_add(r, "ok.example", DNS_A, "192.0.2.1", false);
	/* RFC 7208 4.6.4: 10 DNS terms pass, the 11th is a permerror. */
	for (int n = 10; n <= 11; n++) {
		char name[32];

		snprintf(name, sizeof(name), "n%d.example", n);
		buf_init(&rec, BUF_NOMAX);
		buf_adds(&rec, "v=spf1");
		for (int i = 0; i < n - 1; i++)
			buf_adds(&rec, " a:h.example");
		buf_adds(&rec, " a:ok.example -all");
		dns_mock_add(r, name, DNS_TXT, rec.data, false);
		buf_release(&rec);
		a.mailfrom_domain = name;
		spf_verify(r, &a, &res);
		if (res.status != (n == 10 ? SPF_PASS : SPF_PERMERROR))
			fail_msg("%d lookups: %s (%u)", n,
			    spf_status_name(res.status), res.lookups);
		spf_result_release(&res);
	}
	dns_resolver_free(r);
	(void)state;
}

/* Header text with folding (CRLF TAB) turned into one space. */
static void
unfold(const struct buf *h, struct buf *u)
{
	buf_init(u, BUF_NOMAX);
	for (size_t i = 0; i < h->len; i++) {
		if (h->data[i] == '\r' && i + 2 < h->len &&
		    h->data[i + 1] == '\n' && h->data[i + 2] == '\t') {
			buf_addc(u, ' ');
			i += 2;
			continue;
		}
		buf_addc(u, h->data[i]);
	}
}

/* Folded lines stay within 78 columns and carry no bare CR or LF. */
static void
assert_folded(const struct buf *h, size_t i)
{
	for (const char *p = h->data, *nl; p != NULL;
	     p = nl != NULL ? nl + 2 : NULL) {
		size_t len;

		nl = strstr(p, "\r\n");
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > 78 || memchr(p, '\n', len) != NULL ||
		    memchr(p, '\r', len) != NULL)
			fail_msg("case %zu: bad line: %.*s", i, (int)len, p);
		if (nl != NULL && nl[2] != '\t')
			fail_msg("case %zu: continuation without tab", i);
	}
}

/* spec/smtp.md 10: the exact Received-SPF form, from real evaluations. */
static void
test_received_spf(void **state)
{
	static const struct {
		const char *ip, *local, *domain, *helo;
		const char *want;
	} cases[] = {
		{ "192.0.2.10", "bob", "example.org", "h.example",
		    "Received-SPF: pass (domain example.org) "
		    "client-ip=192.0.2.10; envelope-from=\"bob@example.org\"; "
		    "helo=h.example; mechanism=\"ip4:192.0.2.0/24\"; "
		    "receiver=mx.receiver.example; identity=mailfrom" },
		/* RFC 7208 4.3: empty localpart is postmaster. */
		{ "2001:db8::1", "", "example.org", "h.example",
		    "Received-SPF: fail (domain example.org) "
		    "client-ip=\"2001:db8::1\"; "
		    "envelope-from=\"postmaster@example.org\"; helo=h.example; "
		    "mechanism=-all; receiver=mx.receiver.example; "
		    "identity=mailfrom" },
		/* RFC 7208 2.4: null reverse-path, HELO checked. */
		{ "192.0.2.77", NULL, "", "helo.example",
		    "Received-SPF: pass (domain helo.example, from ehlo "
		    "because mailfrom is empty) client-ip=192.0.2.77; "
		    "envelope-from=\"postmaster@helo.example\"; "
		    "helo=helo.example; mechanism=a; "
		    "receiver=mx.receiver.example; identity=helo" },
		/* Nothing to check: no comment, the reason in problem=. */
		{ "192.0.2.77", NULL, NULL, "[192.0.2.77]",
		    "Received-SPF: none client-ip=192.0.2.77; "
		    "envelope-from=\"postmaster@[192.0.2.77]\"; "
		    "helo=\"[192.0.2.77]\"; problem=\"no domain, ehlo is an ip "
		    "literal and mailfrom is empty\"; "
		    "receiver=mx.receiver.example; identity=mailfrom" },
		{ "192.0.2.10", "bob", "voids.example", "h.example",
		    "Received-SPF: permerror (domain voids.example) "
		    "client-ip=192.0.2.10; "
		    "envelope-from=\"bob@voids.example\"; "
		    "helo=h.example; problem=\"too many void lookups\"; "
		    "mechanism=\"a:n3.example\"; "
		    "receiver=mx.receiver.example; identity=mailfrom" },
		/* A hostile HELO cannot add a header line. */
		{ "192.0.2.10", "bob", "example.org", "h\r\nX-Evil: 1",
		    "Received-SPF: pass (domain example.org) "
		    "client-ip=192.0.2.10; envelope-from=\"bob@example.org\"; "
		    "helo=\"hX-Evil: 1\"; mechanism=\"ip4:192.0.2.0/24\"; "
		    "receiver=mx.receiver.example; identity=mailfrom" },
	};
	struct dns_resolver *r = zone();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct spf_args a = { .remote_ip = cases[i].ip,
			.mailfrom_local = cases[i].local,
			.mailfrom_domain = cases[i].domain,
			.helo = cases[i].helo };
		struct spf_result res;
		struct buf h, u;

		spf_verify(r, &a, &res);
		buf_init(&h, BUF_NOMAX);
		spf_received_header(&res, &a, "mx.receiver.example", &h);
		unfold(&h, &u);
		if (strcmp(u.data, cases[i].want) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, u.data,
			    cases[i].want);
		assert_folded(&h, i);
		buf_release(&h);
		buf_release(&u);
		spf_result_release(&res);
	}
	dns_resolver_free(r);
	assert_string_equal(spf_status_name(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_status_name(SPF_TEMPERROR), "temperror");
	(void)state;
}

/* Results not from spf_verify(): a cut problem text, a domain with
 * comment delimiters, a time limit that left no sender. */
static void
test_received_spf_edges(void **state)
{
	char problem[200];
	struct spf_args a = { .remote_ip = "192.0.2.1",
		.mailfrom_local = NULL, .mailfrom_domain = "",
		.helo = "x.example" };
	struct spf_result res;
	struct buf h, u;

	/* problem= is cut to 67 characters (SPF_PROBLEM_MAX). */
	for (size_t i = 0; i < sizeof(problem) - 1; i++)
		problem[i] = (char)('a' + i % 26);
	problem[sizeof(problem) - 1] = '\0';
	memset(&res, 0, sizeof(res));
	res.status = SPF_TEMPERROR;
	res.identity = SPF_ID_HELO;
	res.domain = (char *)"a(b)c\\d.example";
	res.problem = problem;
	buf_init(&h, BUF_NOMAX);
	spf_received_header(&res, &a, "mx.example", &h);
	unfold(&h, &u);
	assert_string_equal(u.data,
	    "Received-SPF: temperror (domain abcd.example, from ehlo because "
	    "mailfrom is empty) client-ip=192.0.2.1; "
	    "envelope-from=\"postmaster@x.example\"; helo=x.example; "
	    "problem=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
	    "abcdefghijklmno; receiver=mx.example; identity=helo");
	assert_folded(&h, 0);
	buf_release(&h);
	buf_release(&u);
	/* A timed-out MAIL FROM check: envelope-from from the arguments. */
	a.mailfrom_local = "alice";
	a.mailfrom_domain = "example.org";
	memset(&res, 0, sizeof(res));
	res.status = SPF_TEMPERROR;
	res.identity = SPF_ID_MAILFROM;
	res.domain = (char *)"example.org";
	res.problem = (char *)"spf verification time limit reached";
	buf_init(&h, BUF_NOMAX);
	spf_received_header(&res, &a, "mx.example", &h);
	unfold(&h, &u);
	assert_string_equal(u.data,
	    "Received-SPF: temperror (domain example.org) client-ip=192.0.2.1; "
	    "envelope-from=\"alice@example.org\"; helo=x.example; "
	    "problem=\"spf verification time limit reached\"; "
	    "receiver=mx.example; identity=mailfrom");
	assert_folded(&h, 1);
	buf_release(&h);
	buf_release(&u);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_explanation),
		cmocka_unit_test(test_lookup_limit),
		cmocka_unit_test(test_received_spf),
		cmocka_unit_test(test_received_spf_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
