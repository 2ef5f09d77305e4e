/*
 * test_store_domaintls.c: the recipient domain TLS record of an account
 * (maildir/store_domaintls.c): absent, set, case-insensitive lookup,
 * changes overwrite, unchanged records are not rewritten within a day.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "maildir/store.h"
#include "lib/banned.h"

#define SEC INT64_C(1000000000)

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
test_domain_tls(void **state)
{
	char dir[64];
	struct store *s;
	struct store_account *a;
	struct store_err err;
	struct store_domain_tls dt;
	bool found = true;
	int64_t t0 = 1700000000 * SEC;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_domaintls.XXXXXX");
	assert_non_null(mkdtemp(dir));
	s = store_new(dir, &err);
	assert_non_null(s);
	if (store_account_get(s, "mjl", true, &a, &err) == -1)
		fail_msg("account: %s", err.text);

	assert_int_equal(store_domain_tls_get(a, "example.org", &dt, &found,
			     &err), 0);
	assert_false(found);

	assert_int_equal(store_domain_tls_set(a, "Example.ORG.", true, false,
			     t0, &err), 0);
	assert_int_equal(store_domain_tls_get(a, "example.org", &dt, &found,
			     &err), 0);
	assert_true(found);
	assert_true(dt.starttls);
	assert_false(dt.requiretls);
	assert_true(dt.updated_ns == t0);

	/* Unchanged within a day: the record keeps its time. */
	assert_int_equal(store_domain_tls_set(a, "example.org", true, false,
			     t0 + 3600 * SEC, &err), 0);
	assert_int_equal(store_domain_tls_get(a, "EXAMPLE.org", &dt, &found,
			     &err), 0);
	assert_true(dt.updated_ns == t0);

	/* Unchanged after a day: refreshed. */
	assert_int_equal(store_domain_tls_set(a, "example.org", true, false,
			     t0 + 25 * 3600 * SEC, &err), 0);
	assert_int_equal(store_domain_tls_get(a, "example.org", &dt, &found,
			     &err), 0);
	assert_true(dt.updated_ns == t0 + 25 * 3600 * SEC);

	/* A change is written at once. */
	assert_int_equal(store_domain_tls_set(a, "example.org", true, true,
			     t0 + 26 * 3600 * SEC, &err), 0);
	assert_int_equal(store_domain_tls_get(a, "example.org", &dt, &found,
			     &err), 0);
	assert_true(dt.starttls && dt.requiretls);
	assert_true(dt.updated_ns == t0 + 26 * 3600 * SEC);

	/* Other domains are separate; an empty name is refused. */
	assert_int_equal(store_domain_tls_get(a, "example.net", &dt, &found,
			     &err), 0);
	assert_false(found);
	assert_int_equal(store_domain_tls_set(a, ".", true, true, t0, &err),
	    -1);

	store_account_put(a);
	store_free(s);
	(void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_tls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
