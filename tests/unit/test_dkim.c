/*
 * test_dkim.c: DKIM canonicalization, signature and key record parsing
 * with hostile input, and sign/verify round trips (rsa, ed25519,
 * oversigning) through the mock resolver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "mailauth/dkim.h"
#include "lib/banned.h"

static const struct {
	const char *in;
	bool relaxed;
	const char *want;
} body_cases[] = {
	{ "", false, "\r\n" },
	{ "", true, "" },
	{ "\r\n\r\n", false, "\r\n" },
	{ "\r\n\r\n", true, "" },
	{ "a \t b  \r\n\r\n", true, "a b\r\n" },
	{ "a \t b  \r\n\r\n", false, "a \t b  \r\n" },
	{ "x", false, "x\r\n" },
	{ "x", true, "x\r\n" },
	{ " \r\n", true, "" },
	{ " \r\nx\r\n \r\n", true, "\r\nx\r\n" },
	{ "a\rb\r\n", false, "a\rb\r\n" }, /* bare CR is content */
};

static void
test_canon_body(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]);
	    i++) {
		struct buf out;

		buf_init(&out, 1 << 16);
		assert_int_equal(dkim_canon_body(span_of_cstr(body_cases[i].in),
		    body_cases[i].relaxed, &out), 0);
		if (strcmp(out.data, body_cases[i].want) != 0)
			fail_msg("body case %zu: got \"%s\"", i, out.data);
		buf_release(&out);
	}
}

static const struct {
	const char *in;
	bool relaxed;
	const char *want;
} header_cases[] = {
	{ "Subject: a  b \r\n", false, "Subject: a  b \r\n" },
	{ "SubJect : a  b \r\n", true, "subject:a b\r\n" },
	{ "To: a,\r\n\tb\r\n", true, "to:a, b\r\n" },
	{ "X:\r\n", true, "x:\r\n" },
	{ "X: \t \r\n", true, "x:\r\n" },
	{ "X: v", false, "X: v\r\n" },
};

static void
test_canon_header(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]);
	    i++) {
		struct buf out;

		buf_init(&out, 1 << 16);
		assert_int_equal(dkim_canon_header(
		    span_of_cstr(header_cases[i].in), header_cases[i].relaxed,
		    &out), 0);
		if (strcmp(out.data, header_cases[i].want) != 0)
			fail_msg("header case %zu: got \"%s\"", i, out.data);
		buf_release(&out);
	}
}

#define BH "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
static const struct {
	const char *in;
	int want;
} sig_cases[] = {
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH "; b=AAAA", 0 },
	{ "v=1; a=ed25519-sha256; d=example.org; s=s; h=from:to; " BH
	  "; b=AA AA", 0 },
	{ "", -1 },
	{ ";", -1 },
	{ "v=1", -1 },
	{ "v=2; a=rsa-sha256; d=example.org; s=s; h=From; " BH "; b=AAAA", -1 },
	{ "v=1; v=1; a=rsa-sha256; d=e.org; s=s; h=From; " BH "; b=AAAA", -1 },
	{ "v=1; a=rsa-sha512; d=example.org; s=s; h=From; " BH "; b=AAAA", -1 },
	/* a sha1 signature needs a 20-byte body hash */
	{ "v=1; a=rsa-sha1; d=example.org; s=s; h=From; " BH "; b=AAAA", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; bh=AAAA; b=AAAA", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH "; b=!!", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; t=5; x=4", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; i=@other.org", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; i=x@sub.example.org", 0 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; c=relaxed/future", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; q=http", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From::To; " BH
	  "; b=AAAA", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; l=99999999999999999999999", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; 1x=y", -1 },
	{ "v=1; a=rsa-sha256; d=example.org; s=s; h=From; " BH
	  "; b=AAAA; zz=unknown", 0 },
};

static void
test_sig_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sig_cases) / sizeof(sig_cases[0]); i++) {
		struct dkim_sig *s = NULL;
		const char *why = NULL;
		int rc = dkim_sig_parse(span_of_cstr(sig_cases[i].in), &s, &why);

		if (rc != sig_cases[i].want)
			fail_msg("sig case %zu: rc %d (%s)", i, rc,
			    why != NULL ? why : "");
		dkim_sig_free(s);
	}
}

static const struct {
	const char *in;
	int want;
} rec_cases[] = {
	{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
	  0 },
	{ "v=DKIM1; p=", 0 },               /* revoked */
	{ "", -1 },
	{ "v=DKIM2; p=", -1 },
	{ "k=rsa; v=DKIM1; p=", -1 },      /* v= not first */
	{ "v=DKIM1; k=foo; p=", -1 },
	{ "v=DKIM1; k=ed25519; p=AAAA", -1 }, /* wrong length */
	{ "v=DKIM1; k=rsa; p=AAAA", -1 },     /* not a key */
	{ "v=DKIM1; t", -1 },
	{ "v=DKIM1", -1 },                  /* no p= */
	{ "v=DKIM1; p=; p=", -1 },
};

static void
test_record_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		struct dkim_record *r = NULL;
		const char *why = NULL;
		int rc = dkim_record_parse(span_of_cstr(rec_cases[i].in), &r,
		    &why);

		if (rc != rec_cases[i].want)
			fail_msg("record case %zu: rc %d (%s)", i, rc,
			    why != NULL ? why : "");
		dkim_record_free(r);
	}
}

static const char msg_crlf[] =
    "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
    "Subject: hi\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\n\r\n"
    "Hello  there \r\n\r\n";

static void
roundtrip(enum dkim_keytype kt, bool relaxed)
{
	struct dns_resolver *r = dns_mock_new();
	struct dkim_key *key = NULL;
	struct buf pem, err, txt, sig, signedmsg;
	struct dkim_sign_selector sel;
	struct dkim_verify_opts o;
	struct dkim_result *res = NULL;
	size_t n = 0;
	const char *why = NULL;

	buf_init(&pem, 1 << 16);
	buf_init(&err, 4096);
	buf_init(&txt, 1 << 16);
	buf_init(&sig, 1 << 16);
	buf_init(&signedmsg, 1 << 16);
	assert_int_equal(dkim_key_generate(kt, &pem, &err), 0);
	assert_int_equal(dkim_key_load_pem(span_of_buf(&pem), &key, &err), 0);
	assert_int_equal(dkim_key_txt(key, &txt, &err), 0);
	assert_int_equal(dns_mock_add(r, "sel._domainkey.example.org", DNS_TXT,
	    txt.data, true), 0);
	memset(&sel, 0, sizeof(sel));
	sel.domain = "example.org";
	sel.selector = "sel";
	sel.key = key;
	sel.hash = DKIM_HASH_SHA256;
	sel.header_relaxed = sel.body_relaxed = relaxed;
	sel.oversign = true;
	sel.expiration = 3600;
	assert_int_equal(dkim_sign(&sel, 1, "alice@example.org", 1700000000,
	    span_of_cstr(msg_crlf), &sig, &why), 0);
	/* oversigning: From present once is listed twice, Cc once */
	assert_non_null(strstr(sig.data, "From:From:"));
	buf_add(&signedmsg, sig.data, sig.len);
	buf_adds(&signedmsg, msg_crlf);
	memset(&o, 0, sizeof(o));
	o.now = 1700000100;
	assert_int_equal(dkim_verify(r, &o, span_of_buf(&signedmsg), &res, &n,
	    &why), 0);
	assert_int_equal(n, 1);
	if (res[0].status != DKIM_PASS)
		fail_msg("roundtrip %d/%d: %s (%s)", kt, relaxed,
		    dkim_status_name(res[0].status), res[0].why);
	assert_true(res[0].record_authentic);
	dkim_results_free(res, n);

	/* past the time limit: no key lookup, temperror (the d= and
	 * selector stay known for the results header) */
	o.deadline_ns = 1;
	assert_int_equal(dkim_verify(r, &o, span_of_buf(&signedmsg), &res, &n,
	    &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(res[0].status, DKIM_TEMPERROR);
	assert_non_null(res[0].sig);
	assert_string_equal(res[0].sig->domain, "example.org");
	dkim_results_free(res, n);
	o.deadline_ns = time_mono_ns() + 60 * NS_PER_SEC;
	assert_int_equal(dkim_verify(r, &o, span_of_buf(&signedmsg), &res, &n,
	    &why), 0);
	assert_int_equal(res[0].status, DKIM_PASS);
	dkim_results_free(res, n);
	o.deadline_ns = 0;

	/* expired */
	o.now = 1700000000 + 3601;
	assert_int_equal(dkim_verify(r, &o, span_of_buf(&signedmsg), &res, &n,
	    &why), 0);
	assert_int_equal(res[0].status, DKIM_PERMERROR);
	dkim_results_free(res, n);

	/* a second From added after signing breaks the oversigned sig */
	o.now = 1700000100;
	buf_reset(&signedmsg);
	buf_add(&signedmsg, sig.data, sig.len);
	buf_adds(&signedmsg, "From: mallory@example.org\r\n");
	buf_adds(&signedmsg, msg_crlf);
	assert_int_equal(dkim_verify(r, &o, span_of_buf(&signedmsg), &res, &n,
	    &why), 0);
	assert_int_equal(res[0].status, DKIM_FAIL);
	dkim_results_free(res, n);

	dkim_key_free(key);
	dns_resolver_free(r);
	buf_release(&pem);
	buf_release(&err);
	buf_release(&txt);
	buf_release(&sig);
	buf_release(&signedmsg);
}

static void
test_roundtrip(void **state)
{
	(void)state;
	roundtrip(DKIM_KEY_ED25519, false);
	roundtrip(DKIM_KEY_ED25519, true);
	roundtrip(DKIM_KEY_RSA, true);
}

static void
test_sign_needs_one_from(void **state)
{
	struct buf pem, err, out;
	struct dkim_key *key = NULL;
	struct dkim_sign_selector sel;
	const char *why = NULL;

	(void)state;
	buf_init(&pem, 1 << 16);
	buf_init(&err, 4096);
	buf_init(&out, 1 << 16);
	assert_int_equal(dkim_key_generate(DKIM_KEY_ED25519, &pem, &err), 0);
	assert_int_equal(dkim_key_load_pem(span_of_buf(&pem), &key, &err), 0);
	memset(&sel, 0, sizeof(sel));
	sel.domain = "example.org";
	sel.selector = "s";
	sel.key = key;
	sel.hash = DKIM_HASH_SHA256;
	assert_int_equal(dkim_sign(&sel, 1, NULL, 0,
	    span_of_cstr("To: x@y\r\n\r\nbody\r\n"), &out, &why), -1);
	assert_int_equal(dkim_sign(&sel, 1, NULL, 0,
	    span_of_cstr("From: a@b\r\nFrom: c@d\r\n\r\n"), &out, &why), -1);
	assert_int_equal(dkim_key_load_pem(span_of_cstr("garbage"), &key, &err),
	    -1);
	dkim_key_free(key);
	buf_release(&pem);
	buf_release(&err);
	buf_release(&out);
}

static void
test_verify_hostile(void **state)
{
	static const char *msgs[] = {
		"",
		"\r\n",
		"DKIM-Signature:\r\n\r\n",
		"DKIM-Signature: v=1; b=\r\nFrom: a\r\n\r\n",
		"DKIM-Signature: v=1\n\n",
		"DKIM-Signature: ;;;;;\r\n",
	};
	struct dns_resolver *r = dns_mock_new();
	struct dkim_verify_opts o;

	(void)state;
	memset(&o, 0, sizeof(o));
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct dkim_result *res = NULL;
		size_t n = 0;
		const char *why = NULL;

		assert_int_equal(dkim_verify(r, &o, span_of_cstr(msgs[i]), &res,
		    &n, &why), 0);
		for (size_t j = 0; j < n; j++)
			if (res[j].status != DKIM_PERMERROR)
				fail_msg("hostile %zu: %s", i,
				    dkim_status_name(res[j].status));
		dkim_results_free(res, n);
	}
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canon_body),
		cmocka_unit_test(test_canon_header),
		cmocka_unit_test(test_sig_parse),
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_sign_needs_one_from),
		cmocka_unit_test(test_verify_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
