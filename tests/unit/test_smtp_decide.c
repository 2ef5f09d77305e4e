/*
 * test_smtp_decide.c: the per-recipient delivery decision (smtp_decide()
 * in src/smtp/smtp_deliver.c, spec/smtp.md 12.2): the order of the
 * steps, their codes and reason tokens, with iprev/SPF/DKIM/DMARC
 * verdicts, DNSBL listings and rulesets (ListAllowDomain, IsForward,
 * VerifiedDomain, AcceptRejectsToMailbox) and delivery-rate counts as
 * inputs.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "lib/compat.h"
#include "maildir/store.h"
#include "maildir/store_reputation.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

enum rs_kind {
	RS_NONE,
	RS_LIST_ALLOW,  /* ListAllowDomain list.example, Mailbox Lists */
	RS_FORWARD,     /* IsForward, VerifiedDomain fwd.example */
	RS_VERIFIED,    /* VerifiedDomain example.org, Mailbox Verified */
	RS_KEEP_REJECT, /* AcceptRejectsToMailbox Junk (no conditions) */
};

static unsigned dnsbl_calls;

static bool
listed(void *arg)
{
	dnsbl_calls++;
	return *(bool *)arg;
}

static const struct {
	const char *name;
	enum rs_kind rs;
	enum smtp_auth_result spf, dmarc;
	bool dmarc_reject, dmarc_use;
	const char *spf_pass, *dkim_pass;
	bool dnsbl;
	bool junk;
	int want_kind;
	int want_code;
	const char *want_ecode, *want_reason, *want_mailbox;
	bool want_list, want_forward, want_mark_reject;
	unsigned want_dnsbl_calls;
} cases[] = {
	{ "nothing known", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_NONE, false,
	    false, NULL, NULL, false, false, SMTP_DECIDE_ACCEPT, 0, NULL,
	    "no-bad-signals", "Inbox", false, false, false, 1 },
	{ "all pass", RS_NONE, SMTP_AUTH_PASS, SMTP_AUTH_PASS, true, true,
	    "example.org", "example.org", false, false, SMTP_DECIDE_ACCEPT, 0,
	    NULL, "no-bad-signals", "Inbox", false, false, false, 1 },
	{ "dmarc reject", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_FAIL, true, true,
	    NULL, NULL, false, false, SMTP_DECIDE_REJECT_KEEP, 550, "5.7.26",
	    "dmarc-policy", "Inbox", false, false, false, 0 },
	{ "dmarc reject sampled out", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_FAIL,
	    true, false, NULL, NULL, false, false, SMTP_DECIDE_ACCEPT, 0, NULL,
	    "no-bad-signals", "Inbox", false, false, false, 1 },
	{ "dmarc fail p=none", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_FAIL, false,
	    true, NULL, NULL, false, false, SMTP_DECIDE_ACCEPT, 0, NULL,
	    "no-bad-signals", "Inbox", false, false, false, 1 },
	{ "dmarc temperror", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_TEMPERROR,
	    true, true, NULL, NULL, false, false, SMTP_DECIDE_ACCEPT, 0, NULL,
	    "no-bad-signals", "Inbox", false, false, false, 1 },
	{ "dmarc before dnsbl", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_FAIL, true,
	    true, NULL, NULL, true, false, SMTP_DECIDE_REJECT_KEEP, 550,
	    "5.7.26", "dmarc-policy", "Inbox", false, false, false, 0 },
	{ "spf fail", RS_NONE, SMTP_AUTH_FAIL, SMTP_AUTH_NONE, false, false,
	    NULL, NULL, false, false, SMTP_DECIDE_REJECT_KEEP, 451, "4.3.0",
	    "spf-policy", "Inbox", false, false, false, 0 },
	{ "spf softfail", RS_NONE, SMTP_AUTH_SOFTFAIL, SMTP_AUTH_NONE, false,
	    false, NULL, NULL, true, false, SMTP_DECIDE_REJECT_KEEP, 451,
	    "4.3.0", "spf-policy", "Inbox", false, false, false, 0 },
	{ "spf neutral", RS_NONE, SMTP_AUTH_NEUTRAL, SMTP_AUTH_NONE, false,
	    false, NULL, NULL, false, false, SMTP_DECIDE_ACCEPT, 0, NULL,
	    "no-bad-signals", "Inbox", false, false, false, 1 },
	{ "junk content", RS_NONE, SMTP_AUTH_NONE, SMTP_AUTH_NONE, false,
	    false, NULL, NULL, true, true, SMTP_DECIDE_REJECT_KEEP, 451,
	    "4.3.0", "junk-content", "Inbox", false, false, false, 0 },
	{ "dnsbl listed", RS_NONE, SMTP_AUTH_PASS, SMTP_AUTH_PASS, false,
	    true, "example.org", NULL, true, false, SMTP_DECIDE_REJECT_KEEP,
	    451, "4.3.0", "dns-blocklisted", "Inbox", false, false, false, 1 },
	{ "list allow by spf", RS_LIST_ALLOW, SMTP_AUTH_PASS, SMTP_AUTH_FAIL,
	    true, true, "list.example", NULL, true, false, SMTP_DECIDE_ACCEPT, 0,
	    NULL, "list-allow", "Lists", true, false, false, 0 },
	{ "list allow by dkim", RS_LIST_ALLOW, SMTP_AUTH_NONE, SMTP_AUTH_FAIL,
	    true, true, NULL, "list.example", false, false, SMTP_DECIDE_ACCEPT,
	    0, NULL, "list-allow", "Lists", true, false, false, 0 },
	{ "list allow needs exact domain", RS_LIST_ALLOW, SMTP_AUTH_PASS,
	    SMTP_AUTH_FAIL, true, true, "sub.list.example", NULL, false, false,
	    SMTP_DECIDE_REJECT_KEEP, 550, "5.7.26", "dmarc-policy", "Lists",
	    false, false, false, 0 },
	{ "forward disables dmarc", RS_FORWARD, SMTP_AUTH_NONE, SMTP_AUTH_FAIL,
	    true, true, NULL, "mx.fwd.example", false, false, SMTP_DECIDE_ACCEPT,
	    0, NULL, "no-bad-signals", "Inbox", false, true, false, 1 },
	{ "forward needs verified domain", RS_FORWARD, SMTP_AUTH_NONE,
	    SMTP_AUTH_FAIL, true, true, NULL, "other.example", false, false,
	    SMTP_DECIDE_REJECT_KEEP, 550, "5.7.26", "dmarc-policy", "Inbox",
	    false, false, false, 0 },
	{ "verified domain by subdomain", RS_VERIFIED, SMTP_AUTH_NONE,
	    SMTP_AUTH_NONE, false, false, NULL, "news.example.org", false,
	    false, SMTP_DECIDE_ACCEPT, 0, NULL, "no-bad-signals", "Verified",
	    false, false, false, 1 },
	{ "verified domain not a suffix match", RS_VERIFIED, SMTP_AUTH_NONE,
	    SMTP_AUTH_NONE, false, false, NULL, "badexample.org", false, false,
	    SMTP_DECIDE_ACCEPT, 0, NULL, "no-bad-signals", "Inbox", false,
	    false, false, 1 },
	{ "accept rejects to mailbox", RS_KEEP_REJECT, SMTP_AUTH_NONE,
	    SMTP_AUTH_NONE, false, false, NULL, NULL, true, false,
	    SMTP_DECIDE_ACCEPT, 451, "4.3.0", "dns-blocklisted", "Junk", false,
	    false, true, 1 },
};

static void
setup_account(struct config_account *a, struct config_ruleset *r,
    enum rs_kind k)
{
	static char *keys[] = { "mjl@example.com" };
	static struct config_destination dest;

	memset(a, 0, sizeof(*a));
	memset(r, 0, sizeof(*r));
	memset(&dest, 0, sizeof(dest));
	switch (k) {
	case RS_NONE:
		break;
	case RS_LIST_ALLOW:
		r->list_allow_domain = "list.example";
		r->mailbox = "Lists";
		break;
	case RS_FORWARD:
		r->is_forward = true;
		r->verified_domain = "fwd.example";
		break;
	case RS_VERIFIED:
		r->verified_domain = "example.org";
		r->mailbox = "Verified";
		break;
	case RS_KEEP_REJECT:
		r->accept_rejects_to_mailbox = "Junk";
		break;
	}
	if (k != RS_NONE) {
		dest.rulesets.v = r;
		dest.rulesets.n = 1;
	}
	a->destinations.keys = keys;
	a->destinations.vals = &dest;
	a->destinations.n = 1;
}

static void
test_decide(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct config_account acct;
		struct config_ruleset rs;
		struct smtp_decision_in in = { 0 };
		struct smtp_decision d;
		const char *dk[1];
		bool l = cases[i].dnsbl;

		setup_account(&acct, &rs, cases[i].rs);
		in.account = &acct;
		in.account_name = "mjl";
		in.dest_key = "mjl@example.com";
		in.mailfrom = "sender@example.org";
		in.msgfrom = "sender@example.org";
		in.header = span_of_cstr("Subject: hi\r\n\r\n");
		in.spf = cases[i].spf;
		in.dmarc = cases[i].dmarc;
		in.dmarc_reject_policy = cases[i].dmarc_reject;
		in.dmarc_use = cases[i].dmarc_use;
		in.spf_pass_domain = cases[i].spf_pass;
		if (cases[i].dkim_pass != NULL) {
			dk[0] = cases[i].dkim_pass;
			in.dkim_pass_domains = dk;
			in.ndkim_pass = 1;
		}
		in.junk_known = cases[i].junk;
		in.junk_prob = 0.99;
		in.dnsbl_listed = listed;
		in.dnsbl_arg = &l;
		dnsbl_calls = 0;
		smtp_decide(&in, &d);
		print_message("case %zu: %s\n", i, cases[i].name);
		assert_int_equal(d.kind, cases[i].want_kind);
		assert_string_equal(d.reason, cases[i].want_reason);
		assert_string_equal(d.mailbox, cases[i].want_mailbox);
		if (cases[i].want_code != 0) {
			assert_int_equal(d.code, cases[i].want_code);
			assert_string_equal(d.ecode, cases[i].want_ecode);
		}
		assert_int_equal(d.mailing_list, cases[i].want_list);
		assert_int_equal(d.forwarded, cases[i].want_forward);
		assert_int_equal(d.mark_reject, cases[i].want_mark_reject);
		assert_int_equal(dnsbl_calls, cases[i].want_dnsbl_calls);
		smtp_decision_release(&d);
	}
}

/* Step 1, delivery rate (spec/smtp.md 13): counts of stored messages
 * per IP class and window; the size check includes the new message. */
#define MIB (1024 * 1024LL)
static const struct {
	const char *name;
	bool day;        /* counts are for the day window, minute is empty */
	int cls;         /* IP class the counts are for */
	int64_t msgs, bytes, size;
	const char *want_text; /* NULL: accepted */
} rate_cases[] = {
	{ "ip1 msgs just below", false, 0, 499, 0, 100, NULL },
	{ "ip1 msgs at limit", false, 0, 500, 0, 100,
	    "more than 500 messages in past minute from your ip/network" },
	{ "ip2 msgs just below", false, 1, 1499, 0, 100, NULL },
	{ "ip2 msgs at limit", false, 1, 1500, 0, 100,
	    "more than 1500 messages in past minute from your ip/network" },
	{ "ip3 msgs at limit", false, 2, 4500, 0, 100,
	    "more than 4500 messages in past minute from your ip/network" },
	{ "ip1 day msgs just below", true, 0, 9999, 0, 100, NULL },
	{ "ip1 day msgs at limit", true, 0, 10000, 0, 100,
	    "more than 10000 messages in past day from your ip/network" },
	{ "ip3 day msgs at limit", true, 2, 90000, 0, 100,
	    "more than 90000 messages in past day from your ip/network" },
	{ "ip1 bytes reach limit", false, 0, 1, 1000 * MIB - 100, 100, NULL },
	{ "ip1 bytes with new message over", false, 0, 1,
	    1000 * MIB - 100, 101,
	    "more than 1048576000 bytes in past minute from your ip/network" },
	{ "ip2 day bytes over", true, 1, 1, 9000 * MIB, 1,
	    "more than 9437184000 bytes in past day from your ip/network" },
	{ "ip3 day bytes just below", true, 2, 1, 27000 * MIB - 1, 1, NULL },
};

static void
test_rate(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rate_cases); i++) {
		struct config_account acct;
		struct config_ruleset rs;
		struct store_delivery_counts minute = { 0 }, day = { 0 };
		struct store_delivery_counts *c =
		    rate_cases[i].day ? &day : &minute;
		struct smtp_decision_in in = { 0 };
		struct smtp_decision d;

		/* A ruleset keeping rejects must not rescue a rate reject. */
		setup_account(&acct, &rs, RS_KEEP_REJECT);
		in.account = &acct;
		in.dest_key = "mjl@example.com";
		in.mailfrom = "";
		in.msgfrom = "";
		c->msgs[rate_cases[i].cls] = rate_cases[i].msgs;
		c->bytes[rate_cases[i].cls] = rate_cases[i].bytes;
		in.rate_minute = &minute;
		in.rate_day = &day;
		in.size = rate_cases[i].size;
		smtp_decide(&in, &d);
		print_message("rate case %zu: %s\n", i, rate_cases[i].name);
		if (rate_cases[i].want_text == NULL) {
			assert_int_equal(d.kind, SMTP_DECIDE_ACCEPT);
			assert_string_equal(d.reason, "no-bad-signals");
		} else {
			assert_int_equal(d.kind, SMTP_DECIDE_REJECT);
			assert_false(d.mark_reject);
			assert_string_equal(d.reason, "high-rate");
			assert_int_equal(d.code, 452);
			assert_string_equal(d.ecode, "4.2.2");
			assert_string_equal(d.text, rate_cases[i].want_text);
		}
		smtp_decision_release(&d);
	}
}

/* No counts (localserve loopback): no rate check at all. */
static void
test_rate_skipped(void **state)
{
	struct smtp_decision_in in = { 0 };
	struct smtp_decision d;

	(void)state;
	in.mailfrom = "";
	in.msgfrom = "";
	in.size = 100000 * MIB;
	smtp_decide(&in, &d);
	assert_int_equal(d.kind, SMTP_DECIDE_ACCEPT);
	smtp_decision_release(&d);
}

/* Without a DNSBL callback nothing is listed. */
static void
test_no_dnsbl(void **state)
{
	struct smtp_decision_in in = { 0 };
	struct smtp_decision d;

	(void)state;
	in.mailfrom = "";
	in.msgfrom = "";
	smtp_decide(&in, &d);
	assert_int_equal(d.kind, SMTP_DECIDE_ACCEPT);
	assert_string_equal(d.reason, "no-bad-signals");
	assert_string_equal(d.mailbox, "Inbox");
	smtp_decision_release(&d);
}

/* Steps 8-11 (spec/smtp.md 12.2, spec/junk.md 7): what the reputation
 * callback says, and how it combines with reports, SPF, iprev, DNSBLs
 * and rulesets. */
struct rep_stub {
	int rc;                      /* -1: the analysis failed */
	struct store_rep_result res;
	unsigned calls;
	char mailbox[64];            /* as given to the callback */
	char fwd_domain[64];         /* "" for NULL */
};

static int
rep_cb(void *arg, const struct smtp_decision_in *in, const char *mailbox,
    const char *fwd_domain, struct store_rep_result *out)
{
	struct rep_stub *r = arg;

	(void)in;
	r->calls++;
	snprintf(r->mailbox, sizeof(r->mailbox), "%s", mailbox);
	snprintf(r->fwd_domain, sizeof(r->fwd_domain), "%s",
	    fwd_domain != NULL ? fwd_domain : "");
	*out = r->res;
	return r->rc;
}

#define HAM STORE_REP_HAM
#define JUNK STORE_REP_JUNK
#define UNK STORE_REP_UNKNOWN

static const struct {
	const char *name;
	enum rs_kind rs;
	int rep_rc;
	enum store_rep_junk junk;
	bool conclusive;
	const char *method;
	enum smtp_auth_result spf, iprev, dmarc;
	bool report, dnsbl;
	int want_kind, want_code;
	const char *want_reason, *want_mailbox;
	bool want_mark_reject;
	unsigned want_rep_calls, want_dnsbl_calls;
	const char *want_fwd;
} rep_cases[] = {
	{ "conclusive ham accepts before spf and dnsbl", RS_NONE, 0, HAM, true,
	    "msgfromfull", SMTP_AUTH_FAIL, SMTP_AUTH_FAIL, SMTP_AUTH_NONE, false,
	    true, SMTP_DECIDE_ACCEPT, 0, "msgfromfull", "Inbox", false, 1, 0,
	    NULL },
	{ "conclusive junk rejects, kept", RS_NONE, 0, JUNK, true,
	    "msgfromdomain", SMTP_AUTH_PASS, SMTP_AUTH_PASS, SMTP_AUTH_PASS,
	    false, false, SMTP_DECIDE_REJECT_KEEP, 451, "msgfromdomain",
	    "Inbox", false, 1, 0, NULL },
	{ "conclusive junk into AcceptRejectsToMailbox", RS_KEEP_REJECT, 0,
	    JUNK, true, "ip1", SMTP_AUTH_PASS, SMTP_AUTH_PASS, SMTP_AUTH_NONE,
	    false, false, SMTP_DECIDE_ACCEPT, 451, "ip1", "Junk", true, 1, 0,
	    NULL },
	{ "reputation error", RS_NONE, -1, UNK, false, "none", SMTP_AUTH_PASS,
	    SMTP_AUTH_PASS, SMTP_AUTH_NONE, false, false, SMTP_DECIDE_REJECT,
	    451, "reputation-error", "Inbox", false, 1, 0, NULL },
	{ "reputation error is not rescued by a ruleset", RS_KEEP_REJECT, -1,
	    UNK, false, "none", SMTP_AUTH_PASS, SMTP_AUTH_PASS, SMTP_AUTH_NONE,
	    false, false, SMTP_DECIDE_REJECT, 451, "reputation-error", "Inbox",
	    false, 1, 0, NULL },
	{ "report with inconclusive reputation", RS_NONE, 0, UNK, false,
	    "none", SMTP_AUTH_FAIL, SMTP_AUTH_FAIL, SMTP_AUTH_NONE, true, true,
	    SMTP_DECIDE_ACCEPT, 0, "reporting", "Inbox", false, 1, 0, NULL },
	{ "report with conclusive junk", RS_NONE, 0, JUNK, true, "msgfromfull",
	    SMTP_AUTH_PASS, SMTP_AUTH_PASS, SMTP_AUTH_NONE, true, false,
	    SMTP_DECIDE_REJECT_KEEP, 451, "msgfromfull", "Inbox", false, 1, 0,
	    NULL },
	{ "address history: no spf penalty", RS_NONE, 0, HAM, false,
	    "msgfromfull", SMTP_AUTH_FAIL, SMTP_AUTH_FAIL, SMTP_AUTH_NONE,
	    false, false, SMTP_DECIDE_ACCEPT, 0, "no-bad-signals", "Inbox",
	    false, 1, 1, NULL },
	{ "dkimspf and spf softfail", RS_NONE, 0, UNK, false, "dkimspf",
	    SMTP_AUTH_SOFTFAIL, SMTP_AUTH_PASS, SMTP_AUTH_NONE, false, false,
	    SMTP_DECIDE_REJECT_KEEP, 451, "spf-policy", "Inbox", false, 1, 0,
	    NULL },
	{ "ip2 and spf fail before iprev", RS_NONE, 0, JUNK, false, "ip2",
	    SMTP_AUTH_FAIL, SMTP_AUTH_NONE, SMTP_AUTH_NONE, false, false,
	    SMTP_DECIDE_REJECT_KEEP, 451, "spf-policy", "Inbox", false, 1, 0,
	    NULL },
	{ "ip1 junk signal and iprev fail", RS_NONE, 0, JUNK, false, "ip1",
	    SMTP_AUTH_PASS, SMTP_AUTH_FAIL, SMTP_AUTH_NONE, false, false,
	    SMTP_DECIDE_REJECT_KEEP, 451, "iprev", "Inbox", false, 1, 0, NULL },
	{ "ip3 junk signal and iprev temperror", RS_NONE, 0, JUNK, false,
	    "ip3", SMTP_AUTH_NONE, SMTP_AUTH_TEMPERROR, SMTP_AUTH_NONE, false,
	    false, SMTP_DECIDE_REJECT_KEEP, 451, "iprev", "Inbox", false, 1, 0,
	    NULL },
	{ "ip1 junk signal and iprev pass", RS_NONE, 0, JUNK, false, "ip1",
	    SMTP_AUTH_PASS, SMTP_AUTH_PASS, SMTP_AUTH_NONE, false, false,
	    SMTP_DECIDE_ACCEPT, 0, "no-bad-signals", "Inbox", false, 1, 1,
	    NULL },
	{ "none and iprev fail without junk signal", RS_NONE, 0, UNK, false,
	    "none", SMTP_AUTH_NONE, SMTP_AUTH_FAIL, SMTP_AUTH_NONE, false, true,
	    SMTP_DECIDE_REJECT_KEEP, 451, "dns-blocklisted", "Inbox", false, 1,
	    1, NULL },
	{ "domain junk signal: no iprev penalty", RS_NONE, 0, JUNK, false,
	    "msgfromdomain", SMTP_AUTH_PASS, SMTP_AUTH_FAIL, SMTP_AUTH_NONE,
	    false, false, SMTP_DECIDE_ACCEPT, 0, "no-bad-signals", "Inbox",
	    false, 1, 1, NULL },
	{ "dmarc reject comes first", RS_NONE, 0, HAM, true, "msgfromfull",
	    SMTP_AUTH_NONE, SMTP_AUTH_PASS, SMTP_AUTH_FAIL, false, false,
	    SMTP_DECIDE_REJECT_KEEP, 550, "dmarc-policy", "Inbox", false, 0, 0,
	    NULL },
	{ "list allow comes first", RS_LIST_ALLOW, 0, JUNK, true, "ip1",
	    SMTP_AUTH_PASS, SMTP_AUTH_PASS, SMTP_AUTH_NONE, false, false,
	    SMTP_DECIDE_ACCEPT, 0, "list-allow", "Lists", false, 0, 0, NULL },
	{ "forward: analysed as stored", RS_FORWARD, 0, UNK, false, "none",
	    SMTP_AUTH_NONE, SMTP_AUTH_PASS, SMTP_AUTH_NONE, false, false,
	    SMTP_DECIDE_ACCEPT, 0, "no-bad-signals", "Inbox", false, 1, 1,
	    "fwd.example" },
	{ "ruleset mailbox is the reputation's", RS_VERIFIED, 0, HAM, true,
	    "dkimspf", SMTP_AUTH_NONE, SMTP_AUTH_PASS, SMTP_AUTH_NONE, false,
	    false, SMTP_DECIDE_ACCEPT, 0, "dkimspf", "Verified", false, 1, 0,
	    NULL },
};

static void
test_reputation(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rep_cases); i++) {
		struct config_account acct;
		struct config_ruleset rs;
		struct smtp_decision_in in = { 0 };
		struct smtp_decision d;
		struct rep_stub stub = { 0 };
		const char *dk[1] = { "news.example.org" };
		bool l = rep_cases[i].dnsbl;

		print_message("reputation case %zu: %s\n", i, rep_cases[i].name);
		setup_account(&acct, &rs, rep_cases[i].rs);
		in.account = &acct;
		in.account_name = "mjl";
		in.dest_key = "mjl@example.com";
		in.mailfrom = "sender@example.org";
		in.msgfrom = "sender@example.org";
		in.header = span_of_cstr("Subject: hi\r\n\r\n");
		in.spf = rep_cases[i].spf;
		in.iprev = rep_cases[i].iprev;
		in.dmarc = rep_cases[i].dmarc;
		in.dmarc_reject_policy = true;
		in.dmarc_use = true;
		/* passes the ListAllowDomain, IsForward and VerifiedDomain
		 * rulesets */
		in.spf_pass_domain = "list.example";
		dk[0] = rep_cases[i].rs == RS_FORWARD ? "mx.fwd.example"
						    : "news.example.org";
		in.dkim_pass_domains = dk;
		in.ndkim_pass = 1;
		in.report = rep_cases[i].report;
		in.dnsbl_listed = listed;
		in.dnsbl_arg = &l;
		stub.rc = rep_cases[i].rep_rc;
		stub.res.junk = rep_cases[i].junk;
		stub.res.conclusive = rep_cases[i].conclusive;
		stub.res.method = rep_cases[i].method;
		in.reputation = rep_cb;
		in.reputation_arg = &stub;
		dnsbl_calls = 0;
		smtp_decide(&in, &d);
		assert_int_equal(d.kind, rep_cases[i].want_kind);
		assert_string_equal(d.reason, rep_cases[i].want_reason);
		assert_string_equal(d.mailbox, rep_cases[i].want_mailbox);
		if (rep_cases[i].want_code != 0) {
			assert_int_equal(d.code, rep_cases[i].want_code);
			assert_string_equal(d.ecode,
			    rep_cases[i].want_code == 550 ? "5.7.26" : "4.3.0");
		}
		assert_int_equal(d.mark_reject, rep_cases[i].want_mark_reject);
		assert_int_equal(stub.calls, rep_cases[i].want_rep_calls);
		assert_int_equal(dnsbl_calls, rep_cases[i].want_dnsbl_calls);
		if (stub.calls > 0) {
			assert_string_equal(stub.mailbox,
			    rep_cases[i].rs == RS_VERIFIED ? "Verified" : "Inbox");
			assert_string_equal(stub.fwd_domain,
			    rep_cases[i].want_fwd != NULL ? rep_cases[i].want_fwd
							  : "");
			if (rep_cases[i].rep_rc == 0)
				assert_string_equal(d.method,
				    rep_cases[i].method);
		}
		smtp_decision_release(&d);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_reputation),
		cmocka_unit_test(test_no_dnsbl),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_rate_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
