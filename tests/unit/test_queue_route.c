/*
 * test_queue_route.c: route matching (queue_route.c, spec/queue.md 4.3):
 * FromDomain/ToDomain with exact and ".suffix" entries, MinimumAttempts,
 * and the order account routes, then the MAIL FROM domain's routes, then
 * global routes, first match wins, loaded from real config files.
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
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/log.h"
#include "queue/queue.h"
#include "lib/banned.h"

static char *from_v[] = { "example.org", ".sub.example.net" };
static char *to_v[] = { "Example.COM", ".example.nl" };

static const struct {
	bool from, to;      /* lists set */
	int64_t minimum;
	const char *from_domain, *to_domain;
	int64_t attempts;
	bool want;
} match_cases[] = {
	{ false, false, 0, "a.example", "b.example", 0, true }, /* empty: all */
	{ true, false, 0, "example.org", "x.example", 0, true },
	{ true, false, 0, "EXAMPLE.ORG", "x.example", 0, true },
	{ true, false, 0, "sub.example.org", "x.example", 0, false },
	{ true, false, 0, "sub.example.net", "x", 0, true },  /* .suffix: itself */
	{ true, false, 0, "a.sub.example.net", "x", 0, true },
	{ true, false, 0, "xsub.example.net", "x", 0, false }, /* label edge */
	{ true, false, 0, "example.net", "x", 0, false },
	{ false, true, 0, "x", "example.com", 0, true },
	{ false, true, 0, "x", "mail.example.nl", 0, true },
	{ false, true, 0, "x", "example.de", 0, false },
	{ true, true, 0, "example.org", "example.com", 0, true },
	{ true, true, 0, "example.org", "example.de", 0, false },
	/* MinimumAttempts 3: from the 4th attempt (3 before it) on */
	{ false, false, 3, "x", "y", 2, false },
	{ false, false, 3, "x", "y", 3, true },
	{ false, false, 3, "x", "y", 7, true },
};

static void
test_route_match(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(match_cases); i++) {
		struct config_route rt;
		bool got;

		memset(&rt, 0, sizeof(rt));
		if (match_cases[i].from) {
			rt.from_domain.v = from_v;
			rt.from_domain.n = ARRAY_LEN(from_v);
		}
		if (match_cases[i].to) {
			rt.to_domain.v = to_v;
			rt.to_domain.n = ARRAY_LEN(to_v);
		}
		rt.minimum_attempts = match_cases[i].minimum;
		got = queue_route_match(&rt, match_cases[i].from_domain,
		    match_cases[i].to_domain, match_cases[i].attempts);
		if (got != match_cases[i].want)
			fail_msg("case %zu: %s -> %s attempts %lld: got %d", i,
			    match_cases[i].from_domain, match_cases[i].to_domain,
			    (long long)match_cases[i].attempts, got);
	}
	(void)state;
}

static const char mox_conf[] =
    "DataDir: data\n"
    "LogLevel: info\n"
    "Hostname: mail.example.org\n"
    "Listeners:\n"
    "\tlocal:\n"
    "\t\tIPs:\n"
    "\t\t\t- 127.0.0.1\n"
    "\t\tSMTP:\n"
    "\t\t\tEnabled: true\n"
    "\t\t\tNoSTARTTLS: true\n"
    "Postmaster:\n"
    "\tAccount: mjl\n"
    "\tMailbox: Postmaster\n"
    "Transports:\n"
    "\tacct:\n\t\tSMTP:\n\t\t\tHost: acct.example\n"
    "\tdom:\n\t\tSMTP:\n\t\t\tHost: dom.example\n"
    "\tglobal:\n\t\tSMTP:\n\t\t\tHost: global.example\n"
    "\tfallback:\n\t\tSMTP:\n\t\t\tHost: fallback.example\n";

static const char domains_conf[] =
    "Domains:\n"
    "\texample.org:\n"
    "\t\tRoutes:\n"
    "\t\t\t-\n"
    "\t\t\t\tToDomain:\n\t\t\t\t\t- .dom.test\n"
    "\t\t\t\tTransport: dom\n"
    "\texample.net: nil\n"
    "Accounts:\n"
    "\tmjl:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\tmjl@example.org: nil\n"
    "\t\tRoutes:\n"
    "\t\t\t-\n"
    "\t\t\t\tToDomain:\n\t\t\t\t\t- acct.test\n"
    "\t\t\t\t\t- dom.test\n"
    "\t\t\t\tTransport: acct\n"
    "\tother:\n"
    "\t\tDomain: example.net\n"
    "\t\tDestinations:\n"
    "\t\t\tother@example.net: nil\n"
    "Routes:\n"
    "\t-\n"
    "\t\tFromDomain:\n\t\t\t- example.net\n"
    "\t\tToDomain:\n\t\t\t- global.test\n"
    "\t\tTransport: global\n"
    "\t-\n"
    "\t\tMinimumAttempts: 3\n"
    "\t\tTransport: fallback\n";

static void
test_route_transport(void **state)
{
	static const struct {
		const char *account, *from, *to;
		int64_t attempts;
		const char *want;
	} cases[] = {
		{ "mjl", "example.org", "acct.test", 0, "acct" },
		/* account routes come before the domain's */
		{ "mjl", "example.org", "dom.test", 0, "acct" },
		{ "mjl", "example.org", "x.dom.test", 0, "dom" },
		{ "mjl", "example.org", "other.test", 0, "" },
		/* the domain's routes belong to the MAIL FROM domain */
		{ "other", "example.net", "x.dom.test", 0, "" },
		{ "other", "example.net", "global.test", 0, "global" },
		{ "other", "example.org", "global.test", 0, "" },
		{ "other", "example.net", "other.test", 2, "" },
		{ "other", "example.net", "other.test", 3, "fallback" },
		{ "mjl", "example.org", "x.dom.test", 5, "dom" },
		/* null sender, unknown account */
		{ "gone", "", "other.test", 3, "fallback" },
		{ "gone", "", "acct.test", 0, "" },
	};
	char dir[] = "/tmp/test-queue-route-XXXXXX";
	struct buf p, err;
	struct config *c = NULL;

	assert_non_null(mkdtemp(dir));
	buf_init(&p, 4096);
	buf_init(&err, CONFIG_ERR_MAX);
	buf_addf(&p, "%s/domains.conf", dir);
	assert_int_equal(io_write_file_atomic(p.data, domains_conf,
			     strlen(domains_conf), 0644, &err),
	    0);
	buf_reset(&p);
	buf_addf(&p, "%s/mox.conf", dir);
	assert_int_equal(io_write_file_atomic(p.data, mox_conf,
			     strlen(mox_conf), 0644, &err),
	    0);
	if (config_load(p.data, &c, &err) == -1)
		fail_msg("config: %s", err.data);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *got = queue_route_transport(c, cases[i].account,
		    cases[i].from, cases[i].to, cases[i].attempts);

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, got,
			    cases[i].want);
	}
	config_free(c);
	unlink(p.data);
	buf_reset(&p);
	buf_addf(&p, "%s/domains.conf", dir);
	unlink(p.data);
	rmdir(dir);
	buf_release(&p);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_match),
		cmocka_unit_test(test_route_transport),
	};

	log_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
