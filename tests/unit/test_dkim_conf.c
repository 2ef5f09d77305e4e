/*
 * test_dkim_conf.c: DKIM signing from domains.conf (spec auth.md 4.3,
 * smtp.md 11 step 8): every DKIM.Sign selector with its settings, i= the
 * canonical From localpart, nothing for domains that do not sign, and
 * errors that name the key file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_conf.h"
#include "lib/banned.h"

#define NOW INT64_C(1700000000)

static char tmpdir[256];

static const char mox_conf[] =
    "DataDir: data\n"
    "LogLevel: info\n"
    "Hostname: mail.example.com\n"
    "Listeners:\n"
    "\tlocal:\n"
    "\t\tIPs:\n"
    "\t\t\t- 127.0.0.1\n"
    "\t\tSMTP:\n"
    "\t\t\tEnabled: true\n"
    "\t\t\tNoSTARTTLS: true\n"
    "Postmaster:\n"
    "\tAccount: admin\n"
    "\tMailbox: Postmaster\n";

static const char domains_conf[] =
    "Domains:\n"
    "\texample.com:\n"
    "\t\tLocalpartCatchallSeparator: +\n"
    "\t\tDKIM:\n"
    "\t\t\tSelectors:\n"
    "\t\t\t\ts1:\n"
    "\t\t\t\t\tPrivateKeyFile: s1.pem\n"
    "\t\t\t\ts2:\n"
    "\t\t\t\t\tCanonicalization:\n"
    "\t\t\t\t\t\tHeaderRelaxed: true\n"
    "\t\t\t\t\t\tBodyRelaxed: true\n"
    "\t\t\t\t\tExpiration: 72h\n"
    "\t\t\t\t\tPrivateKeyFile: s2.pem\n"
    "\t\t\tSign:\n"
    "\t\t\t\t- s1\n"
    "\t\t\t\t- s2\n"
    "\tnosign.example:\n"
    "\t\tDescription: no DKIM\n"
    "\tbroken.example:\n"
    "\t\tDKIM:\n"
    "\t\t\tSelectors:\n"
    "\t\t\t\ts3:\n"
    "\t\t\t\t\tPrivateKeyFile: missing.pem\n"
    "\t\t\tSign:\n"
    "\t\t\t\t- s3\n"
    "Accounts:\n"
    "\tadmin:\n"
    "\t\tDomain: example.com\n"
    "\t\tDestinations:\n"
    "\t\t\tadmin@example.com: nil\n";

static const char message[] =
    "From: <Alice+news@example.com>\r\n"
    "To: <bob@example.org>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "body\r\n";

static void
write_in_tmp(const char *name, const char *data, size_t len)
{
	struct buf path, err;

	buf_init(&path, 4096);
	buf_init(&err, 4096);
	buf_addf(&path, "%s/%s", tmpdir, name);
	if (io_write_file_atomic(path.data, data, len, 0600, &err) == -1)
		fail_msg("writing %s: %s", path.data, err.data);
	buf_release(&path);
	buf_release(&err);
}

/* A new ed25519 key written to name; its key record is added to the mock
 * resolver r under selector. */
static void
make_key(const char *name, const char *selector, struct dns_resolver *r)
{
	struct dkim_key *k = NULL;
	struct buf pem, txt, err, rec;

	buf_init(&pem, 1 << 16);
	buf_init(&txt, 1 << 16);
	buf_init(&err, 4096);
	buf_init(&rec, 1024);
	assert_int_equal(dkim_key_generate(DKIM_KEY_ED25519, &pem, &err), 0);
	assert_int_equal(dkim_key_load_pem(span_of_buf(&pem), &k, &err), 0);
	assert_int_equal(dkim_key_txt(k, &txt, &err), 0);
	buf_addf(&rec, "%s._domainkey.example.com", selector);
	assert_int_equal(dns_mock_add_txt(r, rec.data, txt.data, txt.len,
	    false), 0);
	write_in_tmp(name, pem.data, pem.len);
	dkim_key_free(k);
	buf_release(&pem);
	buf_release(&txt);
	buf_release(&err);
	buf_release(&rec);
}

static struct config *
load(void)
{
	struct config *c = NULL;
	struct buf path, err;

	buf_init(&path, 4096);
	buf_init(&err, CONFIG_ERR_MAX);
	buf_addf(&path, "%s/mox.conf", tmpdir);
	if (config_load(path.data, &c, &err) == -1)
		fail_msg("config: %s", err.data);
	buf_release(&path);
	buf_release(&err);
	return c;
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dkim_conf.%s", "XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	log_init();
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	static const char *const names[] = { "mox.conf", "domains.conf",
		"s1.pem", "s2.pem" };
	struct buf path;

	buf_init(&path, 4096);
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		buf_reset(&path);
		buf_addf(&path, "%s/%s", tmpdir, names[i]);
		(void)unlink(path.data);
	}
	buf_release(&path);
	(void)rmdir(tmpdir);
	log_shutdown();
	(void)state;
	return 0;
}

/* Both selectors sign, in order, with i= the canonical localpart, and
 * each signature verifies with its settings. */
static void
test_sign(void **state)
{
	struct dns_resolver *r = dns_mock_new();
	struct dkim_verify_opts o = { .now = NOW };
	struct dkim_result *res = NULL;
	struct config *c;
	struct buf sigs, signed_msg, err;
	const char *why = NULL;
	size_t n = 0;

	make_key("s1.pem", "s1", r);
	make_key("s2.pem", "s2", r);
	write_in_tmp("mox.conf", mox_conf, strlen(mox_conf));
	write_in_tmp("domains.conf", domains_conf, strlen(domains_conf));
	c = load();
	buf_init(&sigs, 1 << 16);
	buf_init(&signed_msg, 1 << 16);
	buf_init(&err, 4096);
	assert_int_equal(dkim_conf_sign(c, "Alice+news", "example.com", NOW,
	    span_of_cstr(message), &sigs, &why, &err), 1);
	buf_add(&signed_msg, sigs.data, sigs.len);
	buf_adds(&signed_msg, message);
	assert_int_equal(dkim_verify(r, &o, span_of_buf(&signed_msg), &res,
	    &n, &why), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (res[i].status != DKIM_PASS)
			fail_msg("signature %zu: %s (%s)", i,
			    dkim_status_name(res[i].status),
			    res[i].why != NULL ? res[i].why : "");
		assert_string_equal(res[i].sig->domain, "example.com");
		/* spec/smtp.md 11 step 8: the catchall separator and case
		 * are gone from i=. */
		assert_non_null(res[i].sig->identity);
		assert_string_equal(res[i].sig->identity, "alice@example.com");
	}
	assert_string_equal(res[0].sig->selector, "s1");
	assert_false(res[0].sig->header_relaxed);
	assert_int_equal(res[0].sig->expires, -1);
	assert_string_equal(res[1].sig->selector, "s2");
	assert_true(res[1].sig->header_relaxed);
	assert_true(res[1].sig->body_relaxed);
	assert_int_equal(res[1].sig->expires, NOW + 72 * 3600);
	dkim_results_free(res, n);
	config_free(c);
	dns_resolver_free(r);
	buf_release(&sigs);
	buf_release(&signed_msg);
	buf_release(&err);
	(void)state;
}

/* Domains that sign with nothing leave out alone; a missing key file is
 * an error that names it. */
static void
test_nothing_and_errors(void **state)
{
	static const struct {
		const char *domain;
		int want;
		const char *want_err; /* substring of err, or NULL */
	} cases[] = {
		{ "nosign.example", 0, NULL },
		{ "unknown.example", 0, NULL },
		{ "broken.example", -1, "missing.pem" },
	};
	struct dns_resolver *r = dns_mock_new();
	struct config *c;

	make_key("s1.pem", "s1", r);
	make_key("s2.pem", "s2", r);
	write_in_tmp("mox.conf", mox_conf, strlen(mox_conf));
	write_in_tmp("domains.conf", domains_conf, strlen(domains_conf));
	c = load();
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf out, err;
		const char *why = NULL;
		int rc;

		buf_init(&out, 1 << 16);
		buf_init(&err, 4096);
		rc = dkim_conf_sign(c, "alice", cases[i].domain, NOW,
		    span_of_cstr(message), &out, &why, &err);
		if (rc != cases[i].want || (rc != 1 && out.len != 0) ||
		    (rc == -1 && why == NULL) ||
		    (cases[i].want_err != NULL &&
			strstr(err.data, cases[i].want_err) == NULL))
			fail_msg("case %zu: rc %d why %s err %s", i, rc,
			    why != NULL ? why : "-", err.data);
		buf_release(&out);
		buf_release(&err);
	}
	/* err is optional. */
	{
		struct buf out;
		const char *why = NULL;

		buf_init(&out, 1 << 16);
		assert_int_equal(dkim_conf_sign(c, "alice", "broken.example",
		    NOW, span_of_cstr(message), &out, &why, NULL), -1);
		assert_non_null(why);
		buf_release(&out);
	}
	config_free(c);
	dns_resolver_free(r);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_nothing_and_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
