/*
 * test_mtasts.c: MTA-STS (src/queue/mtasts.c): the TXT record and policy
 * parsers with hostile input (empty, NUL, bare CR, invalid UTF-8, size
 * limits, duplicate keys, bad patterns), every prefix of valid input,
 * MX pattern matching (RFC 8461 4.1), and the policy cache rules of
 * spec/queue.md 5.9 with the mock resolver, a temp data directory and a
 * fetch that cannot connect.
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
#include <sqlite3.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "queue/mtasts.h"
#include "lib/banned.h"

static void
test_record_parse(void **state)
{
	static const struct {
		const char *in;
		size_t len; /* 0: strlen */
		int rc;
		const char *id;
		size_t next;
	} cases[] = {
		{ "v=STSv1; id=20160831085700Z;", 0, 0, "20160831085700Z", 0 },
		{ "v=STSv1;id=abc", 0, 0, "abc", 0 },
		{ "v=STSv1 ; id=abc ; ", 0, 0, "abc", 0 },
		{ "v=STSv1;\tid=abc;\t", 0, 0, "abc", 0 },
		{ "v=STSv1; id=abc; ext=val.ue", 0, 0, "abc", 1 },
		{ "v=STSv1; ext=1; id=abc", 0, 0, "abc", 1 },
		{ "v=STSv1; id=12345678901234567890123456789012", 0, 0,
		    "12345678901234567890123456789012", 0 },
		{ "v=STSv1; id=123456789012345678901234567890123", 0, -1, NULL, 0 },
		{ "v=STSv1", 0, -1, NULL, 0 },
		{ "v=STSv1;", 0, -1, NULL, 0 },
		{ "v=STSv1; id=", 0, -1, NULL, 0 },
		{ "v=STSv1; id=a-b", 0, -1, NULL, 0 },
		{ "v=STSv1; id=a; id=b", 0, -1, NULL, 0 },
		{ "v=STSv1; ID=abc", 0, -1, NULL, 0 }, /* keys case sensitive */
		{ "v=STSv1 id=abc", 0, -1, NULL, 0 },
		{ "v=STSv1; id=abc; =x", 0, -1, NULL, 0 },
		{ "v=STSv1; id=abc; e=", 0, -1, NULL, 0 },
		{ "v=STSv1; id=abc; e=a=b", 0, -1, NULL, 0 },
		{ "v=STSv1; id=abc;;", 0, -1, NULL, 0 },
		{ "v=STSv1; id=ab\0c", 15, -1, NULL, 0 },
		{ "v=STSv1; id=abc\r\n", 0, -1, NULL, 0 },
		{ "v=STSv1; id=abc; e=\xc3\xa9", 0, -1, NULL, 0 },
		{ "v=STSv10; id=abc", 0, -1, NULL, 0 },
		{ "v=stsv1; id=abc", 0, -1, NULL, 0 },
		{ "", 0, -1, NULL, 0 },
		{ "v=spf1 -all", 0, -1, NULL, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mtasts_record r;
		const char *why = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		int rc = mtasts_record_parse(span_of(cases[i].in, len), &r, &why);

		if (rc != cases[i].rc ||
		    (rc == 0 && (strcmp(r.id, cases[i].id) != 0 ||
			r.next != cases[i].next)))
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].in, rc,
			    why ? why : "");
		if (rc == -1 && why == NULL)
			fail_msg("case %zu: no reason", i);
		mtasts_record_release(&r);
	}
	(void)state;
}

static void
test_record_too_long(void **state)
{
	struct buf b;
	struct mtasts_record r;
	const char *why = NULL;

	buf_init(&b, BUF_NOMAX);
	buf_adds(&b, "v=STSv1; id=abc; x=");
	while (b.len <= MTASTS_RECORD_MAX)
		buf_addc(&b, 'a');
	assert_int_equal(mtasts_record_parse(span_of_buf(&b), &r, &why), -1);
	buf_release(&b);
	(void)state;
}

static const char valid_policy[] =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
    "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

static void
test_policy_parse(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;
		enum mtasts_mode mode;
		uint64_t max_age;
		size_t nmx, next;
	} cases[] = {
		{ valid_policy, 0, 0, MTASTS_MODE_ENFORCE, 604800, 3, 0 },
		{ "version: STSv1\nmode: testing\nmx: a.b\nmax_age: 1", 0, 0,
		    MTASTS_MODE_TESTING, 1, 1, 0 },
		{ "version: STSv1\nmode: none\nmax_age: 0\n", 0, 0,
		    MTASTS_MODE_NONE, 0, 0, 0 },
		{ "mode: enforce\nmax_age: 9999999999\nmx: A.B\nversion: STSv1", 0,
		    0, MTASTS_MODE_ENFORCE, 9999999999ULL, 1, 0 },
		{ "version:STSv1\nmode:enforce\nmx:a.b\nmax_age:5\t ", 0, 0,
		    MTASTS_MODE_ENFORCE, 5, 1, 0 },
		/* duplicates: first wins, mx accumulates */
		{ "version: STSv1\nmode: testing\nmode: enforce\nmx: a.b\nmx: c.d\n"
		  "max_age: 5\nmax_age: 6\n", 0, 0, MTASTS_MODE_TESTING, 5, 2, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\nfoo: bar baz\n"
		  "x-y.z: \xc3\xa9t\xc3\xa9\n", 0, 0, MTASTS_MODE_ENFORCE, 5, 1, 2 },
		{ "", 0, -1, 0, 0, 0, 0 },
		{ "\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\n", 0, -1, 0, 0, 0, 0 },
		{ "mode: enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901\n", 0,
		    -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: \n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\n\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\n\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\rmode: enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\r\r\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a\0.b\nmax_age: 5\n", 42, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\nx: \xff\n", 0,
		    -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\nx: a\x01\n", 0,
		    -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\nx:\n", 0,
		    -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: **.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a_b.c\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b.\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ " version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "version STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
		{ "Version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 5\n", 0, -1, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mtasts_policy p;
		const char *why = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		int rc = mtasts_policy_parse(span_of(cases[i].in, len), &p, &why);

		if (rc != cases[i].rc ||
		    (rc == 0 && (p.mode != cases[i].mode ||
			p.max_age != cases[i].max_age || p.nmx != cases[i].nmx ||
			p.next != cases[i].next)))
			fail_msg("case %zu: rc %d %s", i, rc, why ? why : "");
		if (rc == -1 && why == NULL)
			fail_msg("case %zu: no reason", i);
		mtasts_policy_release(&p);
	}
	(void)state;
}

/* Every prefix of a valid policy parses or fails cleanly; a label of 63
 * and 64 bytes; the 64 KiB limit (max and max+1). */
static void
test_policy_limits(void **state)
{
	struct mtasts_policy p;
	const char *why;
	struct buf b;
	char label[70];
	/* max_age is last: a prefix is valid once it has one digit of it */
	size_t first_valid = (size_t)(strstr(valid_policy, "max_age: ") -
	    valid_policy) + strlen("max_age: 6");

	for (size_t n = 0; n <= sizeof(valid_policy) - 1; n++) {
		int rc;

		why = NULL;
		rc = mtasts_policy_parse(span_of(valid_policy, n), &p, &why);
		if ((rc == 0) != (n >= first_valid))
			fail_msg("prefix %zu: rc %d", n, rc);
		if (rc == -1)
			assert_non_null(why);
		mtasts_policy_release(&p);
	}
	memset(label, 'a', 63);
	label[63] = '\0';
	buf_init(&b, BUF_NOMAX);
	buf_addf(&b, "version: STSv1\nmode: enforce\nmx: %s.b\nmax_age: 1\n",
	    label);
	assert_int_equal(mtasts_policy_parse(span_of_buf(&b), &p, &why), 0);
	assert_string_equal(p.mx[0] + 60, "aaa.b");
	mtasts_policy_release(&p);
	buf_reset(&b);
	buf_addf(&b, "version: STSv1\nmode: enforce\nmx: %sa.b\nmax_age: 1\n",
	    label);
	assert_int_equal(mtasts_policy_parse(span_of_buf(&b), &p, &why), -1);

	buf_reset(&b);
	buf_adds(&b, "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\nx: ");
	while (b.len < MTASTS_POLICY_MAX - 1)
		buf_addc(&b, 'v');
	buf_addc(&b, '\n');
	assert_int_equal(b.len, MTASTS_POLICY_MAX);
	assert_int_equal(mtasts_policy_parse(span_of_buf(&b), &p, &why), 0);
	mtasts_policy_release(&p);
	buf_adds(&b, "\n");
	assert_int_equal(mtasts_policy_parse(span_of_buf(&b), &p, &why), -1);
	buf_release(&b);
	(void)state;
}

static void
test_match_mx(void **state)
{
	static const struct {
		const char *host;
		bool want;
	} cases[] = {
		{ "mail.example.com", true },
		{ "MAIL.Example.COM", true },
		{ "mail.example.com.", true },
		{ "backupmx.example.com", true },
		{ "a.example.net", true },
		{ "A.EXAMPLE.NET", true },
		{ "example.net", false },
		{ "a.b.example.net", false },
		{ ".example.net", false },
		{ "xmail.example.com", false },
		{ "mail.example.co", false },
		{ "", false },
		{ "example.com", false },
	};
	struct mtasts_policy p;
	const char *why;

	assert_int_equal(mtasts_policy_parse(span_of_cstr(valid_policy), &p,
	    &why), 0);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (mtasts_policy_match_mx(&p, cases[i].host) != cases[i].want)
			fail_msg("case %zu (%s)", i, cases[i].host);
	mtasts_policy_release(&p);
	(void)state;
}

static char tmpdir[64];

static int
setup_dir(void **state)
{
	/* mkdtemp() replaces the six template characters at the end */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mtasts.123456");
	memset(tmpdir + strlen(tmpdir) - 6, 'X', 6);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	(void)state;
	return 0;
}

static int
teardown_dir(void **state)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/mtasts.db", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/mtasts.db-wal", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/mtasts.db-shm", tmpdir);
	unlink(p);
	rmdir(tmpdir);
	(void)state;
	return 0;
}

/* Put an entry into the cache directly, as a successful fetch would. */
static void
cache_put(const char *domain, int64_t valid_end, int64_t last_update,
    int64_t last_use, const char *id, const char *text, int backoff)
{
	char path[128], *sql;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/mtasts.db", tmpdir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql = sqlite3_mprintf("INSERT OR REPLACE INTO policy VALUES (%Q, 0,"
	    " %lld, %lld, %lld, %d, %Q, %Q)", domain, (long long)valid_end,
	    (long long)last_update, (long long)last_use, backoff, id, text);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	sqlite3_close(db);
}

static int
cache_count(void)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n;

	snprintf(path, sizeof(path), "%s/mtasts.db", tmpdir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM policy",
	    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* spec 5.9 lookup rules. The fetch never reaches a server (connect-to
 * a closed loopback port), so every fetch fails quickly. */
static void
test_cache_lookup(void **state)
{
	static const struct mtasts_fetch_params fp = { NULL,
		"::127.0.0.1:1", 5000 };
	static const struct {
		const char *name, *domain;
		enum mtasts_status want;
		const char *want_report;
		bool want_fallback;
	} cases[] = {
		{ "no txt", "none.test", MTASTS_NONE, NULL, false },
		{ "two records", "two.test", MTASTS_NONE, NULL, false },
		{ "bad record", "badrec.test", MTASTS_NONE, "sts-policy-invalid", false },
		{ "dns temp error", "temp.test", MTASTS_TEMPERROR, NULL, false },
		{ "fetch fails", "fetch.test", MTASTS_NONE, "sts-policy-fetch-error", false },
		{ "backoff entry", "fetch.test", MTASTS_NONE,
		    "back-off-after-recent-fetch-error", false },
		{ "cached same id", "cached.test", MTASTS_POLICY, NULL, false },
		{ "cached, txt gone", "gone.test", MTASTS_POLICY, NULL, true },
		{ "cached, dns error", "cachedtemp.test", MTASTS_POLICY, NULL, true },
		{ "cached, new id, fetch fails", "newid.test", MTASTS_POLICY,
		    "sts-policy-fetch-error", true },
		{ "expired, fetch fails", "expired.test", MTASTS_NONE,
		    "sts-policy-fetch-error", false },
	};
	struct dns_resolver *r = dns_mock_new();
	struct mtasts_cache *c;
	struct buf err;
	int64_t now = 1700000000;

	buf_init(&err, 1024);
	c = mtasts_cache_open(tmpdir, &err);
	assert_non_null(c);
	dns_mock_add(r, "_mta-sts.none.test", DNS_TXT, "v=spf1 -all", false);
	dns_mock_add(r, "_mta-sts.two.test", DNS_TXT, "v=STSv1; id=a", false);
	dns_mock_add(r, "_mta-sts.two.test", DNS_TXT, "v=STSv1; id=b", false);
	dns_mock_add(r, "_mta-sts.badrec.test", DNS_TXT, "v=STSv1; id=a-b",
	    false);
	dns_mock_fail(r, "_mta-sts.temp.test", DNS_TEMPERROR);
	dns_mock_add(r, "_mta-sts.fetch.test", DNS_TXT, "v=STSv1; id=a", false);
	dns_mock_add(r, "_mta-sts.cached.test", DNS_TXT, "v=STSv1; id=one",
	    false);
	dns_mock_fail(r, "_mta-sts.cachedtemp.test", DNS_TEMPERROR);
	dns_mock_add(r, "_mta-sts.newid.test", DNS_TXT, "v=STSv1; id=two",
	    false);
	dns_mock_add(r, "_mta-sts.expired.test", DNS_TXT, "v=STSv1; id=one",
	    false);
	cache_put("cached.test", now + 100, now, now, "one", valid_policy, 0);
	cache_put("gone.test", now + 100, now, now, "one", valid_policy, 0);
	cache_put("cachedtemp.test", now + 100, now, now, "one", valid_policy, 0);
	cache_put("newid.test", now + 100, now, now, "one", valid_policy, 0);
	cache_put("expired.test", now - 1, now, now, "one", valid_policy, 0);

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mtasts_lookup l;

		buf_reset(&err);
		if (mtasts_lookup(c, r, cases[i].domain, &fp, now, &l, &err) == -1)
			fail_msg("case %s: %s", cases[i].name, err.data);
		if (l.status != cases[i].want ||
		    l.fallback_cached != cases[i].want_fallback ||
		    (cases[i].want_report == NULL) != (l.report_result == NULL) ||
		    (l.report_result != NULL &&
			strcmp(l.report_result, cases[i].want_report) != 0))
			fail_msg("case %s: status %d report %s fallback %d (%s)",
			    cases[i].name, l.status,
			    l.report_result ? l.report_result : "-",
			    l.fallback_cached, l.why ? l.why : "");
		if (l.status == MTASTS_POLICY) {
			assert_int_equal(l.policy.mode, MTASTS_MODE_ENFORCE);
			assert_string_equal(l.policy_text, valid_policy);
		}
		mtasts_lookup_release(&l);
	}
	/* the backoff placeholder expires after 5 minutes */
	{
		struct mtasts_lookup l;

		assert_int_equal(mtasts_lookup(c, r, "fetch.test", &fp,
		    now + MTASTS_BACKOFF_SECS + 1, &l, &err), 0);
		assert_string_equal(l.report_result, "sts-policy-fetch-error");
		mtasts_lookup_release(&l);
	}
	mtasts_cache_free(c);
	dns_resolver_free(r);
	buf_release(&err);
	(void)state;
}

/* spec 5.9 refresher: unused entries deleted, same id extended, mode
 * none with the TXT gone deleted. */
static void
test_cache_refresh(void **state)
{
	static const struct mtasts_fetch_params fp = { NULL,
		"::127.0.0.1:1", 5000 };
	static const char none_policy[] = "version: STSv1\nmode: none\n"
	    "max_age: 100\n";
	struct dns_resolver *r = dns_mock_new();
	struct mtasts_cache *c;
	struct buf err;
	int64_t now = 1800000000;
	size_t n = 0;
	struct mtasts_lookup l;

	buf_init(&err, 1024);
	c = mtasts_cache_open(tmpdir, &err);
	assert_non_null(c);
	/* start from an empty cache */
	assert_int_equal(mtasts_refresh(c, r, &fp, now + 400 * 86400, 100, &n,
	    &err), 0);
	assert_int_equal(cache_count(), 0);
	dns_mock_add(r, "_mta-sts.same.test", DNS_TXT, "v=STSv1; id=one",
	    false);
	cache_put("old.test", now + 100, now - 200 * 86400, now - 181 * 86400,
	    "one", valid_policy, 0);
	cache_put("same.test", now - 10, now - 13 * 3600, now, "one",
	    valid_policy, 0);
	cache_put("nonegone.test", now + 10, now - 13 * 3600, now, "one",
	    none_policy, 0);
	cache_put("fresh.test", now + 10, now - 3600, now, "one",
	    valid_policy, 0);
	assert_int_equal(mtasts_refresh(c, r, &fp, now, 100, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cache_count(), 2);
	/* same.test was extended by max_age and is served from the cache */
	assert_int_equal(mtasts_lookup(c, r, "same.test", &fp, now + 1000, &l,
	    &err), 0);
	assert_int_equal(l.status, MTASTS_POLICY);
	assert_false(l.fallback_cached);
	mtasts_lookup_release(&l);
	mtasts_cache_free(c);
	dns_resolver_free(r);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_record_too_long),
		cmocka_unit_test(test_policy_parse),
		cmocka_unit_test(test_policy_limits),
		cmocka_unit_test(test_match_mx),
		cmocka_unit_test_setup_teardown(test_cache_lookup, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_cache_refresh, setup_dir,
		    teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
