/*
 * test_queue_deliver.c: the parts of delivery that run without a peer
 * (queue_deliver.c, queue_tls.c): localserve's "queue..." localparts that
 * fail when the queue delivers them (spec/smtp.md 18); a host's addresses
 * with its CNAMEs followed and their DNSSEC status (spec/queue.md 5.3
 * step 1) and the TLSA lookup at the CNAME-expanded name (RFC 7672
 * 2.2.2) with the mock resolver; the sending IP of a connection in the
 * stored TLS results (RFC 8460 4.3).
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

#include "dns/dns.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

#define TLSA_A "3 1 1 " \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TLSA_B "3 1 1 " \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void
test_localserve_error(void **state)
{
	static const struct {
		const char *lp;
		bool want;
		int code;
	} cases[] = {
		{ "queuetemperror", true, 451 },
		{ "queue-x-temperror", true, 451 },
		{ "queuepermerror", true, 550 },
		{ "queuetimeout", true, 0 },
		{ "queue421", true, 421 },
		{ "queue554", true, 554 },
		{ "queue600", true, 600 },
		{ "queue399", false, 0 },
		{ "queue601", false, 0 },
		{ "queue", false, 0 },
		{ "temperror", false, 0 },   /* not "queue...": submission's */
		{ "mox", false, 0 },
		{ "queuex", false, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int code = -1;
		const char *ecode = NULL, *text = NULL;
		bool got = queue_localserve_error(cases[i].lp, &code, &ecode,
		    &text);

		if (got != cases[i].want ||
		    (got && (code != cases[i].code || ecode == NULL ||
				ecode[0] != (code >= 500 ? '5' : '4') ||
				text == NULL)))
			fail_msg("case %zu (%s): got %d code %d", i,
			    cases[i].lp, got, code);
	}
	(void)state;
}

/* The DNS world of the host tests. "secure" names are authentic. */
static struct dns_resolver *
mock_world(void)
{
	struct dns_resolver *r = dns_mock_new();
	static const struct {
		const char *name;
		enum dns_type type;
		const char *text;
		bool authentic;
	} rrs[] = {
		/* no CNAME */
		{ "mx.secure.test", DNS_A, "192.0.2.1", true },
		{ "mx.secure.test", DNS_AAAA, "2001:db8::1", true },
		{ "_25._tcp.mx.secure.test", DNS_TLSA, TLSA_A, true },
		/* CNAME to a host with TLSA at both names: expanded wins */
		{ "alias.secure.test", DNS_CNAME, "real.secure.test", true },
		{ "real.secure.test", DNS_A, "192.0.2.2", true },
		{ "_25._tcp.real.secure.test", DNS_TLSA, TLSA_A, true },
		{ "_25._tcp.alias.secure.test", DNS_TLSA, TLSA_B, true },
		/* CNAME, TLSA only at the original name: fallback */
		{ "alias2.secure.test", DNS_CNAME, "plain.secure.test", true },
		{ "plain.secure.test", DNS_A, "192.0.2.3", true },
		{ "_25._tcp.alias2.secure.test", DNS_TLSA, TLSA_B, true },
		/* two steps, the second insecure: TLSA at the original only */
		{ "alias3.secure.test", DNS_CNAME, "mid.insecure.test", true },
		{ "mid.insecure.test", DNS_CNAME, "real.secure.test", false },
		{ "_25._tcp.alias3.secure.test", DNS_TLSA, TLSA_B, true },
		/* insecure first step: no DANE at all */
		{ "alias4.insecure.test", DNS_CNAME, "real.secure.test", false },
		/* loop, and a chain of 11 */
		{ "loop1.secure.test", DNS_CNAME, "loop2.secure.test", true },
		{ "loop2.secure.test", DNS_CNAME, "loop1.secure.test", true },
		{ "v4only.secure.test", DNS_A, "192.0.2.4", true },
	};

	for (size_t i = 0; i < ARRAY_LEN(rrs); i++)
		assert_int_equal(dns_mock_add(r, rrs[i].name, rrs[i].type,
		    rrs[i].text, rrs[i].authentic), 0);
	for (int i = 0; i < 11; i++) {
		char name[64], target[64];

		snprintf(name, sizeof(name), "c%d.secure.test", i);
		snprintf(target, sizeof(target), "c%d.secure.test", i + 1);
		assert_int_equal(dns_mock_add(r, name, DNS_CNAME, target, true),
		    0);
	}
	assert_int_equal(dns_mock_add(r, "c11.secure.test", DNS_A, "192.0.2.11",
	    true), 0);
	return r;
}

/* spec/queue.md 5.3 step 1. */
static void
test_host_ips(void **state)
{
	static const struct {
		const char *host;
		bool disable4, disable6;
		int want_rc;
		const char *want_expanded; /* NULL: none */
		bool want_authentic, want_expanded_authentic;
		const char *want_ips;      /* space separated */
		const char *want_err;      /* substring */
	} cases[] = {
		{ "mx.secure.test", false, false, 0, NULL, true, true,
		    "192.0.2.1 2001:db8::1", NULL },
		{ "mx.secure.test", true, false, 0, NULL, true, true,
		    "2001:db8::1", NULL },
		{ "alias.secure.test", false, false, 0, "real.secure.test", true,
		    true, "192.0.2.2", NULL },
		{ "ALIAS.secure.test", false, false, 0, "real.secure.test", true,
		    true, "192.0.2.2", NULL },
		{ "alias3.secure.test", false, false, 0, "real.secure.test", true,
		    false, "192.0.2.2", NULL },
		{ "alias4.insecure.test", false, false, 0, "real.secure.test",
		    false, false, "192.0.2.2", NULL },
		{ "192.0.2.9", false, false, 0, NULL, false, false, "192.0.2.9",
		    NULL },
		{ "2001:db8::9", false, false, 0, NULL, false, false,
		    "2001:db8::9", NULL },
		{ "c1.secure.test", false, false, 0, "c11.secure.test", true,
		    true, "192.0.2.11", NULL }, /* 10 CNAMEs */
		{ "c0.secure.test", false, false, -1, NULL, true, true, "",
		    "too many cname records" }, /* 11 */
		{ "loop1.secure.test", false, false, -1, NULL, true, true, "",
		    "too many cname records" },
		{ "v4only.secure.test", true, false, -1, NULL, true, true, "",
		    "no usable ip addresses" },
		{ "nxdomain.secure.test", false, false, -1, NULL, true, true, "",
		    "looking up ips of nxdomain.secure.test" },
	};
	struct dns_resolver *r = mock_world();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct queue_host_ips h;
		struct buf err, ips;
		int rc;

		buf_init(&err, 1024);
		buf_init(&ips, 1024);
		rc = queue_deliver_host_ips(r, cases[i].host, cases[i].disable4,
		    cases[i].disable6, &h, &err);
		for (size_t k = 0; k < h.n; k++)
			buf_addf(&ips, "%s%s", k > 0 ? " " : "", h.ips[k]);
		if (rc != cases[i].want_rc)
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].host, rc,
			    err.data);
		if (rc == 0 && (strcmp(ips.data, cases[i].want_ips) != 0 ||
				   (cases[i].want_expanded == NULL) !=
				       (h.expanded == NULL) ||
				   (h.expanded != NULL &&
				       strcmp(h.expanded,
					   cases[i].want_expanded) != 0) ||
				   h.authentic != cases[i].want_authentic ||
				   h.expanded_authentic !=
				       cases[i].want_expanded_authentic))
			fail_msg("case %zu (%s): ips %s expanded %s auth %d/%d",
			    i, cases[i].host, ips.data,
			    h.expanded ? h.expanded : "-", h.authentic,
			    h.expanded_authentic);
		if (rc == -1 && strstr(err.data, cases[i].want_err) == NULL)
			fail_msg("case %zu (%s): err %s", i, cases[i].host,
			    err.data);
		queue_deliver_host_ips_release(&h);
		buf_release(&err);
		buf_release(&ips);
	}
	dns_resolver_free(r);
	(void)state;
}

static bool
has_name(const struct tlspolicy_host *th, const char *name)
{
	for (size_t i = 0; i < th->nnames; i++)
		if (strcmp(th->names[i], name) == 0)
			return true;
	return false;
}

/* RFC 7672 2.2.2 and 3.2.3; spec/queue.md 5.3 step 4: TLSA first at the
 * CNAME-expanded host when the expansion is authentic, then at the host;
 * both names are accepted for DANE-TA. */
static void
test_tlsa_at_cname(void **state)
{
	static const struct {
		const char *host;
		bool have_mx;
		bool want_dane;        /* usable records: verify */
		const char *want_base; /* TLSA base domain */
		const char *want_rec;  /* the record used */
		const char *want_sni;
		const char *want_names[4];
	} cases[] = {
		{ "mx.secure.test", true, true, "mx.secure.test", TLSA_A,
		    "mx.secure.test", { "mx.secure.test", "example.org" } },
		{ "alias.secure.test", true, true, "real.secure.test", TLSA_A,
		    "real.secure.test", { "real.secure.test",
		    "alias.secure.test", "example.org", "mx.example.org" } },
		{ "alias.secure.test", false, true, "real.secure.test", TLSA_A,
		    "real.secure.test", { "real.secure.test",
		    "alias.secure.test" } },
		{ "alias2.secure.test", true, true, "alias2.secure.test", TLSA_B,
		    "alias2.secure.test", { "alias2.secure.test",
		    "example.org" } },
		{ "alias3.secure.test", true, true, "alias3.secure.test", TLSA_B,
		    "alias3.secure.test", { "alias3.secure.test" } },
		{ "alias4.insecure.test", true, false, "alias4.insecure.test",
		    NULL, "alias4.insecure.test", { NULL } },
	};
	struct dns_resolver *r = mock_world();
	struct queue_tls_params p = { .dane = true };
	struct log_ctx log = log_ctx_init("queue", 1);

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct queue_msg m = { .recipient_domain = "example.org" };
		struct queue_tls_attempt a;
		struct tlspolicy_host th;
		struct queue_host_ips h;
		const char *why = NULL;
		struct buf err;

		buf_init(&err, 1024);
		assert_int_equal(queue_deliver_host_ips(r, cases[i].host, false,
		    false, &h, &err), 0);
		/* The recipient domain example.org, a CNAME of
		 * mx.example.org per have_mx (the MX lookup was there). */
		assert_int_equal(queue_tls_begin(&a, &p, r, &log, &m,
		    cases[i].have_mx ? "mx.example.org" : "example.org",
		    cases[i].have_mx, true, true, &why), 0);
		queue_tls_host(&a, cases[i].host, &h, &th);
		if (th.action != TLSPOLICY_CONNECT ||
		    th.verify_dane != cases[i].want_dane ||
		    strcmp(th.report.policy_domain, cases[i].want_base) != 0 ||
		    strcmp(th.sni, cases[i].want_sni) != 0)
			fail_msg("case %zu (%s): action %d dane %d base %s sni %s",
			    i, cases[i].host, th.action, th.verify_dane,
			    th.report.policy_domain, th.sni);
		if (cases[i].want_rec != NULL &&
		    (th.report.nstrings != 1 ||
			strcmp(th.report.strings[0], cases[i].want_rec) != 0))
			fail_msg("case %zu: tlsa record not from %s", i,
			    cases[i].want_base);
		for (size_t k = 0; k < 4 && cases[i].want_names[k] != NULL; k++)
			if (!has_name(&th, cases[i].want_names[k]))
				fail_msg("case %zu: name %s missing", i,
				    cases[i].want_names[k]);
		if (cases[i].want_dane &&
		    strcmp(th.names[0], cases[i].want_base) != 0)
			fail_msg("case %zu: first name %s", i, th.names[0]);
		queue_tls_host_done(&a, &th);
		queue_tls_end(&a, NULL, false, 0);
		queue_deliver_host_ips_release(&h);
		buf_release(&err);
	}
	dns_resolver_free(r);
	(void)state;
}

/* RFC 8460 4.3: the sending-mta-ip of a failed negotiation is the local
 * address the delivery recorded for the connection, and it is stored. */
static void
test_sending_ip_stored(void **state)
{
	struct queue_tls_params p = { .dane = true, .tlsrpt = true };
	struct log_ctx log = log_ctx_init("queue", 1);
	struct queue_msg m = { .recipient_domain = "example.org" };
	struct dns_resolver *r = mock_world();
	struct smtp_client_result rc;
	struct queue_tls_attempt a;
	struct tlspolicy_host th;
	struct queue_host_ips h;
	struct tlsrpt_result *got = NULL;
	struct queue_tls_conn c;
	char dir[64], day[9], path[128];
	int64_t now = time_wall_ns();
	const char *why = NULL;
	struct buf err;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "/tmp/test_queue_deliver.XXXXXX");
	assert_non_null(mkdtemp(dir));
	buf_init(&err, 1024);
	assert_int_equal(queue_deliver_host_ips(r, "mx.secure.test", false,
	    false, &h, &err), 0);
	assert_int_equal(queue_tls_begin(&a, &p, r, &log, &m, "example.org",
	    true, true, true, &why), 0);
	queue_tls_host(&a, "mx.secure.test", &h, &th);
	memset(&c, 0, sizeof(c));
	c.a = &a;
	c.h = &th;
	c.ip = "192.0.2.1";
	snprintf(c.sending_ip, sizeof(c.sending_ip), "198.51.100.7");
	/* A handshake that the peer closed. */
	smtp_client_result_init(&rc);
	smtp_client_result_fail(&rc, false, 0, NULL, "tls handshake: closed");
	rc.tls_error = true;
	queue_tls_conn_done(&c, &rc, true, false);
	smtp_client_result_release(&rc);
	queue_tls_host_done(&a, &th);
	queue_tls_end(&a, dir, true, now);

	tlsrpt_day(now / NS_PER_SEC, day);
	assert_int_equal(tlsrpt_results_load(dir, "mx.secure.test", day, &got,
	    &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].failure, 1);
	assert_int_equal(got[0].ndetails, 1);
	assert_string_equal(got[0].details[0].sending_ip, "198.51.100.7");
	assert_string_equal(got[0].details[0].receiving_ip, "192.0.2.1");
	assert_string_equal(got[0].details[0].reason,
	    "connection-closed-during-handshake");
	tlsrpt_results_free(got, n);
	assert_int_equal(tlsrpt_results_load(dir, "example.org", day, &got, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].ndetails, 1);
	assert_string_equal(got[0].details[0].sending_ip, "198.51.100.7");
	tlsrpt_results_free(got, n);

	queue_deliver_host_ips_release(&h);
	dns_resolver_free(r);
	buf_release(&err);
	for (size_t i = 0; i < 3; i++) {
		static const char *const f[] = { "tlsrptresult.db",
			"tlsrptresult.db-wal", "tlsrptresult.db-shm" };

		snprintf(path, sizeof(path), "%s/%s", dir, f[i]);
		unlink(path);
	}
	rmdir(dir);
	(void)state;
}

/* spec/queue.md 5.5: 5.7.x on the first attempt to a dual-stack host is
 * retried (over the other family); not on later attempts, not for other
 * codes, not for single-family hosts. */
static void
test_policy_downgrade(void **state)
{
	struct queue_msg m;
	struct queue_job j;
	struct smtp_client_result r;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(&j, 0, sizeof(j));
	j.msgs = &m;
	j.n = 1;
	m.attempts = 1;

	smtp_client_result_init(&r);
	smtp_client_result_fail(&r, true, 550, "5.7.1", "blocked");
	queue_deliver_policy_downgrade(&j, true, &r);
	assert_false(r.permanent);
	assert_int_equal(r.code, 550);

	smtp_client_result_fail(&r, true, 550, "5.7.1", "blocked");
	queue_deliver_policy_downgrade(&j, false, &r);
	assert_true(r.permanent);

	smtp_client_result_fail(&r, true, 550, "5.1.1", "no such user");
	queue_deliver_policy_downgrade(&j, true, &r);
	assert_true(r.permanent);

	m.attempts = 2;
	smtp_client_result_fail(&r, true, 554, "5.7.1", "blocked");
	queue_deliver_policy_downgrade(&j, true, &r);
	assert_true(r.permanent);
	smtp_client_result_release(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_localserve_error),
		cmocka_unit_test(test_host_ips),
		cmocka_unit_test(test_tlsa_at_cname),
		cmocka_unit_test(test_sending_ip_stored),
		cmocka_unit_test(test_policy_downgrade),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
