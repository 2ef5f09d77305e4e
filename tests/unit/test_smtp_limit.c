/*
 * test_smtp_limit.c: the per-IP limiters of src/smtp/smtp_limit.c
 * (spec/smtp.md 13) with the numbers of mox.conf Limits: connection rate,
 * open connections and auth failures, per IP class. Each test uses its
 * own addresses, as the registry is shared by the process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "lib/timeutil.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define T0 (1700000000 * NS_PER_SEC) /* a minute boundary plus 20 s */

static void
configure(const unsigned rate[3], const unsigned conns[3],
    const unsigned authm[3], const unsigned authd[3])
{
	struct config_limits l;

	memset(&l, 0, sizeof(l));
	memcpy(l.eff.connections_per_minute, rate, sizeof(unsigned) * 3);
	memcpy(l.eff.open_connections, conns, sizeof(unsigned) * 3);
	memcpy(l.eff.auth_failures_per_minute, authm, sizeof(unsigned) * 3);
	memcpy(l.eff.auth_failures_per_day, authd, sizeof(unsigned) * 3);
	smtp_limit_configure(&l);
}

static const unsigned big[3] = { 1000, 1000, 1000 };

/* ConnectionsPerMinute 3 5 27: the 4th connection from one IP within a
 * minute is refused, the next minute allows 3 again; a /26 neighbour
 * shares the class 2 count. */
static void
test_rate(void **state)
{
	static const unsigned rate[3] = { 3, 5, 27 };

	configure(rate, big, big, big);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(smtp_limit_conn_start("192.0.2.1", false, T0),
		    SMTP_LIMIT_OK);
		smtp_limit_conn_end("192.0.2.1");
	}
	assert_int_equal(smtp_limit_conn_start("192.0.2.1", false, T0),
	    SMTP_LIMIT_RATE);
	/* Same /26: 2 more fit under the class 2 number 5. */
	assert_int_equal(smtp_limit_conn_start("192.0.2.2", false, T0),
	    SMTP_LIMIT_OK);
	assert_int_equal(smtp_limit_conn_start("192.0.2.3", false, T0),
	    SMTP_LIMIT_OK);
	assert_int_equal(smtp_limit_conn_start("192.0.2.4", false, T0),
	    SMTP_LIMIT_RATE);
	smtp_limit_conn_end("192.0.2.2");
	smtp_limit_conn_end("192.0.2.3");
	/* Another /26 in the same /21 is not affected by class 2. */
	assert_int_equal(smtp_limit_conn_start("192.0.2.65", false, T0),
	    SMTP_LIMIT_OK);
	smtp_limit_conn_end("192.0.2.65");
	assert_int_equal(smtp_limit_conn_start("192.0.2.1", false,
			     T0 + 60 * NS_PER_SEC),
	    SMTP_LIMIT_OK);
	smtp_limit_conn_end("192.0.2.1");
	(void)state;
}

/* OpenConnections 2 4 8 with an IPv6 client: the /64 holds 2. */
static void
test_conns(void **state)
{
	static const unsigned conns[3] = { 2, 4, 8 };

	configure(big, conns, big, big);
	assert_int_equal(smtp_limit_conn_start("2001:db8:1::1", false, T0),
	    SMTP_LIMIT_OK);
	assert_int_equal(smtp_limit_conn_start("2001:db8:1::2", false, T0),
	    SMTP_LIMIT_OK);
	assert_int_equal(smtp_limit_conn_start("2001:db8:1::3", false, T0),
	    SMTP_LIMIT_CONNS);
	smtp_limit_conn_end("2001:db8:1::1");
	assert_int_equal(smtp_limit_conn_start("2001:db8:1::3", false, T0),
	    SMTP_LIMIT_OK);
	smtp_limit_conn_end("2001:db8:1::2");
	smtp_limit_conn_end("2001:db8:1::3");
	(void)state;
}

/* AuthFailuresPerMinute 2 and AuthFailuresPerDay 3: submission (and
 * IMAP) connections are refused after them; port 25 is not. */
static void
test_auth(void **state)
{
	static const unsigned authm[3] = { 2, 100, 100 };
	static const unsigned authd[3] = { 3, 100, 100 };
	int64_t next = T0 + 60 * NS_PER_SEC;

	configure(big, big, authm, authd);
	smtp_limit_auth_failed("198.51.100.7", T0);
	smtp_limit_auth_failed("198.51.100.7", T0);
	assert_int_equal(smtp_limit_conn_start("198.51.100.7", true, T0),
	    SMTP_LIMIT_AUTH);
	assert_int_equal(smtp_limit_conn_start("198.51.100.7", false, T0),
	    SMTP_LIMIT_OK);
	smtp_limit_conn_end("198.51.100.7");
	/* Next minute: room per minute, then the day's 3rd failure. */
	assert_int_equal(smtp_limit_conn_start("198.51.100.7", true, next),
	    SMTP_LIMIT_OK);
	smtp_limit_conn_end("198.51.100.7");
	smtp_limit_auth_failed("198.51.100.7", next);
	assert_int_equal(smtp_limit_conn_start("198.51.100.7", true, next),
	    SMTP_LIMIT_AUTH);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_conns),
		cmocka_unit_test(test_auth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
