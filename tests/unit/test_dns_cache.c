/*
 * test_dns_cache.c: the resolver's answer cache (src/dns/dns_cache.c)
 * with a clock the test sets: TTL expiry and the remaining TTL handed
 * out, LRU eviction at the bound, the separate bound and TTL cap for
 * negative answers (RFC 2308 5), what is never stored, and concurrent use
 * by several threads.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "lib/compat.h"
#include "lib/banned.h"

static void
answer_ok(struct dns_answer *a, const char *ip, uint32_t ttl)
{
	dns_answer_init(a, DNS_OK, NULL);
	dns_answer_add(a, DNS_A, ttl, ip);
	a->authentic = true;
}

static bool
get(struct dns_cache *c, const char *name, enum dns_type t, int64_t now,
    const char *want_ip)
{
	struct dns_answer a;
	bool found = dns_cache_get(c, name, t, now, &a);

	if (found && want_ip != NULL)
		assert_string_equal(a.rr[0].text, want_ip);
	if (found)
		dns_answer_release(&a);
	return found;
}

static void
test_ttl(void **state)
{
	struct dns_cache *c = dns_cache_new(100);
	struct dns_answer a, got;

	answer_ok(&a, "192.0.2.1", 60);
	dns_cache_put(c, "example.org.", DNS_A, 1000, 60, &a);
	assert_true(get(c, "example.org.", DNS_A, 1000, "192.0.2.1"));
	assert_false(get(c, "example.org.", DNS_AAAA, 1000, NULL));
	assert_false(get(c, "other.org.", DNS_A, 1000, NULL));
	/* The remaining TTL, flags and data survive the copy. */
	assert_true(dns_cache_get(c, "example.org.", DNS_A, 1050, &got));
	assert_int_equal(got.rr[0].ttl, 10);
	assert_true(got.authentic);
	dns_answer_release(&got);
	assert_true(get(c, "example.org.", DNS_A, 1059, NULL));
	assert_false(get(c, "example.org.", DNS_A, 1060, NULL));
	assert_int_equal(dns_cache_count(c), 0);
	/* TTL 0 is not cached; errors are never cached. */
	dns_cache_put(c, "zero.org.", DNS_A, 1000, 0, &a);
	assert_false(get(c, "zero.org.", DNS_A, 1000, NULL));
	dns_answer_release(&a);
	dns_answer_init(&a, DNS_TEMPERROR, "server failure");
	dns_cache_put(c, "fail.org.", DNS_A, 1000, 300, &a);
	assert_false(get(c, "fail.org.", DNS_A, 1000, NULL));
	dns_answer_init(&a, DNS_PERMERROR, "refused");
	dns_cache_put(c, "fail.org.", DNS_A, 1000, 300, &a);
	assert_false(get(c, "fail.org.", DNS_A, 1000, NULL));
	/* Huge TTLs are capped. */
	answer_ok(&a, "192.0.2.2", UINT32_MAX);
	dns_cache_put(c, "long.org.", DNS_A, 0, UINT32_MAX, &a);
	assert_true(get(c, "long.org.", DNS_A, DNS_CACHE_TTL_MAX - 1, NULL));
	assert_false(get(c, "long.org.", DNS_A, DNS_CACHE_TTL_MAX, NULL));
	dns_answer_release(&a);
	/* Replacing an entry keeps one entry. */
	answer_ok(&a, "192.0.2.3", 60);
	dns_cache_put(c, "r.org.", DNS_A, 0, 60, &a);
	dns_answer_release(&a);
	answer_ok(&a, "192.0.2.4", 60);
	dns_cache_put(c, "r.org.", DNS_A, 0, 60, &a);
	dns_answer_release(&a);
	assert_true(get(c, "r.org.", DNS_A, 1, "192.0.2.4"));
	assert_int_equal(dns_cache_count(c), 1);
	dns_cache_free(c);
	dns_cache_free(NULL);
	(void)state;
}

static void
test_lru(void **state)
{
	struct dns_cache *c = dns_cache_new(4);
	struct dns_answer a;
	char name[32];

	answer_ok(&a, "192.0.2.1", 300);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d.org.", i);
		dns_cache_put(c, name, DNS_A, 0, 300, &a);
	}
	/* Touch n0 so n1 is the least recently used. */
	assert_true(get(c, "n0.org.", DNS_A, 1, NULL));
	dns_cache_put(c, "n4.org.", DNS_A, 1, 300, &a);
	assert_int_equal(dns_cache_count(c), 4);
	assert_true(get(c, "n0.org.", DNS_A, 2, NULL));
	assert_false(get(c, "n1.org.", DNS_A, 2, NULL));
	assert_true(get(c, "n4.org.", DNS_A, 2, NULL));
	dns_answer_release(&a);
	dns_cache_free(c);
	(void)state;
}

static void
test_negative(void **state)
{
	struct dns_cache *c = dns_cache_new(16); /* 2 negative entries */
	struct dns_answer a, neg;
	char name[32];

	answer_ok(&a, "192.0.2.1", 300);
	dns_cache_put(c, "pos.org.", DNS_A, 0, 300, &a);
	dns_answer_init(&neg, DNS_NOTFOUND, "nxdomain");
	/* RFC 2308 5 negative TTLs are capped short. */
	dns_cache_put(c, "nx0.org.", DNS_A, 0, 86400, &neg);
	assert_true(get(c, "nx0.org.", DNS_A, DNS_CACHE_NEG_TTL_MAX - 1,
	    NULL));
	assert_false(get(c, "nx0.org.", DNS_A, DNS_CACHE_NEG_TTL_MAX, NULL));
	/* A flood of negative answers does not push out the positive one. */
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "nx%d.org.", i);
		dns_cache_put(c, name, DNS_A, 0, 60, &neg);
	}
	assert_int_equal(dns_cache_count(c), 3);
	assert_true(get(c, "pos.org.", DNS_A, 1, NULL));
	assert_true(get(c, "nx49.org.", DNS_A, 1, NULL));
	assert_false(get(c, "nx0.org.", DNS_A, 1, NULL));
	{
		struct dns_answer got;

		assert_true(dns_cache_get(c, "nx48.org.", DNS_A, 1, &got));
		assert_int_equal(got.result, DNS_NOTFOUND);
		assert_int_equal(got.n, 0);
		dns_answer_release(&got);
	}
	dns_answer_release(&a);
	dns_cache_free(c);
	(void)state;
}

static struct dns_cache *shared;

static void *
worker(void *arg)
{
	int id = *(int *)arg;
	char name[32];
	struct dns_answer a;

	answer_ok(&a, "192.0.2.1", 300);
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "t%d-%d.org.", id, i % 97);
		dns_cache_put(shared, name, DNS_A, i, 300, &a);
		(void)get(shared, name, DNS_A, i, NULL);
	}
	dns_answer_release(&a);
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t th[4];
	int ids[4];

	shared = dns_cache_new(64);
	for (int i = 0; i < 4; i++) {
		ids[i] = i;
		assert_int_equal(pthread_create(&th[i], NULL, worker, &ids[i]),
		    0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_true(dns_cache_count(shared) <= 64);
	dns_cache_free(shared);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
