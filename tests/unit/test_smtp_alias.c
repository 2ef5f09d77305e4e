/*
 * test_smtp_alias.c: aliases as recipients and as message From
 * (src/smtp/smtp_alias.c, spec/smtp.md 9 "Aliases", 11 step 2): lookup
 * with the catchall separator and case rules, the posting rule, which
 * members get no copy, who may send as an alias; and the DSN for partly
 * failed incoming mail (src/smtp/smtp_dsn.c, spec/smtp.md 12.4).
 */
#include <stdarg.h>
#include <setjmp.h>
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
#include "message/message.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define NS 1000000000LL
#define T0 1700000000LL /* Tue, 14 Nov 2023 22:13:20 +0000 */

/* ---- the posting rule and member exclusion (pure) ---- */

static char *team_members[] = { "alice@example.org", "bob@example.org" };

static const struct {
	const char *name;
	bool post_public, allow_msg_from;
	const char *from;
	bool want;
} post_cases[] = {
	{ "member", false, false, "alice@example.org", true },
	{ "other member", false, false, "bob@example.org", true },
	{ "non-member", false, false, "eve@example.net", false },
	{ "no From", false, false, "", false },
	{ "NULL From", false, false, NULL, false },
	{ "alias itself without AllowMsgFrom", false, false,
	    "team@example.org", false },
	{ "alias itself with AllowMsgFrom", false, true, "team@example.org",
	    true },
	{ "non-member with AllowMsgFrom", false, true, "eve@example.net",
	    false },
	{ "non-member, PostPublic", true, false, "eve@example.net", true },
	{ "no From, PostPublic", true, false, "", true },
	{ "member prefix is not a member", false, false, "alice@example.or",
	    false },
};

static void
test_may_post(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(post_cases); i++) {
		struct smtp_alias_info a = {
			.addr = "team@example.org",
			.members = team_members,
			.nmembers = ARRAY_LEN(team_members),
			.post_public = post_cases[i].post_public,
			.allow_msg_from = post_cases[i].allow_msg_from,
		};

		if (smtp_alias_may_post(&a, post_cases[i].from) !=
		    post_cases[i].want)
			fail_msg("case %zu (%s): want %d", i, post_cases[i].name,
			    post_cases[i].want);
	}
	(void)state;
}

static const char *const explicit_rcpts[] = { "bob@example.org",
	"carol@example.org" };

static const struct {
	const char *name;
	const char *member, *from;
	size_t nexplicit;
	bool want;
} skip_cases[] = {
	{ "plain member", "alice@example.org", "eve@example.net", 2, false },
	{ "member is the From", "alice@example.org", "alice@example.org", 2,
	    true },
	{ "member is an explicit recipient", "bob@example.org",
	    "eve@example.net", 2, true },
	{ "second explicit recipient", "carol@example.org", "", 2, true },
	{ "no explicit recipients", "bob@example.org", "", 0, false },
	{ "NULL From", "alice@example.org", NULL, 0, false },
};

static void
test_member_skip(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(skip_cases); i++)
		if (smtp_alias_member_skip(skip_cases[i].member,
			skip_cases[i].from, explicit_rcpts,
			skip_cases[i].nexplicit) != skip_cases[i].want)
			fail_msg("case %zu (%s): want %d", i, skip_cases[i].name,
			    skip_cases[i].want);
	(void)state;
}

/* ---- with a configuration ---- */

static char tmpdir[256];
static char origdir[4096];
static struct config *cfg;

static const char moxconf[] =
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
    "\tAccount: alice\n"
    "\tMailbox: Inbox\n";

static const char domainsconf[] =
    "Domains:\n"
    "\texample.org:\n"
    "\t\tLocalpartCatchallSeparator: +\n"
    "\t\tAliases:\n"
    "\t\t\tteam:\n"
    "\t\t\t\tAddresses:\n"
    "\t\t\t\t\t- alice@example.org\n"
    "\t\t\t\t\t- Bob@example.org\n"
    "\t\t\tsendas:\n"
    "\t\t\t\tAddresses:\n"
    "\t\t\t\t\t- alice@example.org\n"
    "\t\t\t\tAllowMsgFrom: true\n"
    "\t\t\tpublic:\n"
    "\t\t\t\tAddresses:\n"
    "\t\t\t\t\t- bob@example.org\n"
    "\t\t\t\tPostPublic: true\n"
    "\t\t\tbobsend:\n"
    "\t\t\t\tAddresses:\n"
    "\t\t\t\t\t- carol@other.example\n"
    "\t\t\t\tAllowMsgFrom: true\n"
    "\tother.example:\n"
    "\t\tLocalpartCaseSensitive: true\n"
    "Accounts:\n"
    "\talice:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\talice@example.org: nil\n"
    "\t\t\t@example.org: nil\n"
    "\tbob:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\tbob@example.org: nil\n"
    "\t\t\tcarol@other.example: nil\n";

static void
write_file(const char *path, const char *text)
{
	struct buf err;

	buf_init(&err, 4096);
	if (io_write_file_atomic(path, text, strlen(text), 0644, &err) == -1)
		fail_msg("write %s: %s", path, err.data);
	buf_release(&err);
}

static int
setup(void **state)
{
	struct buf err;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_smtp_alias.%c%c%c%c%c%c",
	    'X', 'X', 'X', 'X', 'X', 'X');
	if (mkdtemp(tmpdir) == NULL ||
	    getcwd(origdir, sizeof(origdir)) == NULL || chdir(tmpdir) == -1)
		return -1;
	log_init();
	write_file("mox.conf", moxconf);
	write_file("domains.conf", domainsconf);
	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load("mox.conf", &cfg, &err) == -1) {
		fprintf(stderr, "config: %s\n", err.data);
		buf_release(&err);
		return -1;
	}
	buf_release(&err);
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	config_free(cfg);
	cfg = NULL;
	(void)unlink("mox.conf");
	(void)unlink("domains.conf");
	if (chdir(origdir) == -1)
		return -1;
	(void)rmdir(tmpdir);
	log_shutdown();
	(void)state;
	return 0;
}

static const struct {
	const char *lp, *dom, *want;
} canon_cases[] = {
	{ "Bob+tag", "example.org", "bob@example.org" },
	{ "alice", "EXAMPLE.ORG", "alice@example.org" },
	{ "Carol", "other.example", "Carol@other.example" }, /* case kept */
	{ "Carol+x", "Other.Example", "Carol+x@other.example" },
	{ "Eve+x", "Example.NET", "eve+x@example.net" }, /* not hosted */
};

static void
test_canonical(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(canon_cases); i++) {
		struct buf b;

		buf_init(&b, 1024);
		smtp_alias_canonical(cfg, canon_cases[i].lp, canon_cases[i].dom,
		    &b);
		if (strcmp(b.data, canon_cases[i].want) != 0)
			fail_msg("case %zu: %s@%s gave %s, want %s", i,
			    canon_cases[i].lp, canon_cases[i].dom, b.data,
			    canon_cases[i].want);
		buf_release(&b);
	}
	(void)state;
}

static const struct {
	const char *lp, *dom;
	const char *want_addr; /* NULL: not an alias */
	size_t want_members;
	bool want_public, want_msgfrom;
} lookup_cases[] = {
	{ "team", "example.org", "team@example.org", 2, false, false },
	{ "Team+list", "Example.Org", "team@example.org", 2, false, false },
	{ "sendas", "example.org", "sendas@example.org", 1, false, true },
	{ "public", "example.org", "public@example.org", 1, true, false },
	/* spec/smtp.md 9 step 4: accounts and the catchall are not aliases */
	{ "alice", "example.org", NULL, 0, false, false },
	{ "nosuch", "example.org", NULL, 0, false, false },
	{ "team", "other.example", NULL, 0, false, false },
	{ "team", "example.net", NULL, 0, false, false },
	{ "", "example.org", NULL, 0, false, false },
};

static void
test_lookup(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(lookup_cases); i++) {
		struct smtp_alias_info *a = smtp_alias_lookup(cfg,
		    lookup_cases[i].lp, lookup_cases[i].dom);

		if (lookup_cases[i].want_addr == NULL) {
			if (a != NULL)
				fail_msg("case %zu: %s@%s is no alias", i,
				    lookup_cases[i].lp, lookup_cases[i].dom);
			continue;
		}
		if (a == NULL)
			fail_msg("case %zu: %s@%s not found", i,
			    lookup_cases[i].lp, lookup_cases[i].dom);
		if (strcmp(a->addr, lookup_cases[i].want_addr) != 0 ||
		    a->nmembers != lookup_cases[i].want_members ||
		    a->post_public != lookup_cases[i].want_public ||
		    a->allow_msg_from != lookup_cases[i].want_msgfrom)
			fail_msg("case %zu: got %s with %zu members", i, a->addr,
			    a->nmembers);
		smtp_alias_info_free(a);
	}
	(void)state;
}

/* Members are canonical, so a From or explicit recipient written
 * differently still matches. */
static void
test_members_canonical(void **state)
{
	struct smtp_alias_info *a = smtp_alias_lookup(cfg, "team",
	    "example.org");
	struct buf from;
	const char *expl[1];

	assert_non_null(a);
	assert_int_equal(a->nmembers, 2);
	assert_string_equal(a->members[0], "alice@example.org");
	assert_string_equal(a->members[1], "bob@example.org");
	buf_init(&from, 1024);
	smtp_alias_canonical(cfg, "Alice+news", "Example.org", &from);
	assert_true(smtp_alias_may_post(a, from.data));
	assert_true(smtp_alias_member_skip(a->members[0], from.data, NULL, 0));
	assert_false(smtp_alias_member_skip(a->members[1], from.data, NULL, 0));
	expl[0] = "bob@example.org";
	assert_true(smtp_alias_member_skip(a->members[1], "", expl, 1));
	buf_reset(&from);
	smtp_alias_canonical(cfg, "team", "example.org", &from);
	assert_false(smtp_alias_may_post(a, from.data)); /* no AllowMsgFrom */
	buf_release(&from);
	smtp_alias_info_free(a);
	smtp_alias_info_free(NULL);
	(void)state;
}

static const struct {
	const char *account, *lp, *dom;
	bool want;
} sendas_cases[] = {
	{ "alice", "sendas", "example.org", true },
	{ "alice", "SendAs+x", "example.org", true },
	{ "bob", "sendas", "example.org", false },   /* not a member */
	{ "alice", "team", "example.org", false },   /* no AllowMsgFrom */
	{ "bob", "team", "example.org", false },
	{ "bob", "bobsend", "example.org", true },   /* member in other domain */
	{ "alice", "bobsend", "example.org", false },
	{ "alice", "alice", "example.org", false },  /* an account address */
	{ "alice", "nosuch", "example.org", false }, /* catchall, no alias */
	{ NULL, "sendas", "example.org", false },
};

static void
test_may_send_as(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(sendas_cases); i++)
		if (smtp_alias_may_send_as(cfg, sendas_cases[i].account,
			sendas_cases[i].lp, sendas_cases[i].dom) !=
		    sendas_cases[i].want)
			fail_msg("case %zu: %s as %s@%s: want %d", i,
			    sendas_cases[i].account ? sendas_cases[i].account
						    : "(none)",
			    sendas_cases[i].lp, sendas_cases[i].dom,
			    sendas_cases[i].want);
	(void)state;
}

/* ---- the DSN (spec/smtp.md 12.4) ---- */

static void
want_has(const struct buf *b, const char *needle, const char *what)
{
	if (strstr(b->data, needle) == NULL)
		fail_msg("%s: missing \"%s\" in:\n%s", what, needle, b->data);
}

static const char orig_header[] =
    "From: Eve <eve@example.net>\r\n"
    "To: team@example.org, bob@example.org\r\n"
    "Subject: hello\r\n"
    "Message-ID: <m1@example.net>\r\n"
    "\r\n";

static const struct smtp_rcpt_fail fails[] = {
	{ "team@example.org", 550, "5.7.2", "not allowed to send to destination" },
	{ "nobody@example.org", 550, "5.1.1", "no such user" },
	{ "carol@example.org", 452, "4.2.2", "account storage full" },
};

static void
compose(const struct smtp_dsn_in *in, struct buf *out,
    struct message_part **root)
{
	const char *why = NULL;

	assert_int_equal(smtp_dsn_compose(in, out), 0);
	assert_int_equal(message_parse(out->data, out->len, root, &why), 0);
	for (size_t i = 0; i < out->len; i++)
		if (out->data[i] == '\n' && (i == 0 || out->data[i - 1] != '\r'))
			fail_msg("bare LF at %zu", i);
}

static void
test_dsn(void **state)
{
	struct smtp_dsn_in in = {
		.hostname = "mail.example.org",
		.from_domain = "example.org",
		.to = "eve@example.net",
		.ehlo = "mx.example.net",
		.remote_ip = "192.0.2.9",
		.message_id = "<m1@example.net>",
		.msgid_out = "<dsn1@mail.example.org>",
		.boundary = "BOUNDARY",
		.now_ns = T0 * NS,
		.orig_header = { orig_header, sizeof(orig_header) - 1 },
		.fails = fails,
		.nfails = ARRAY_LEN(fails),
	};
	struct message_part *root = NULL;
	struct buf out, part;

	buf_init(&out, 1024 * 1024);
	buf_init(&part, 1024 * 1024);
	compose(&in, &out, &root);
	want_has(&out, "From: <postmaster@example.org>\r\n", "From");
	want_has(&out, "To: <eve@example.net>\r\n", "To");
	want_has(&out, "Subject: mail delivery failure\r\n", "Subject");
	want_has(&out, "Message-Id: <dsn1@mail.example.org>\r\n", "Message-Id");
	want_has(&out, "References: <m1@example.net>\r\n", "References");
	want_has(&out, "Content-Type: multipart/report; "
		       "report-type=\"delivery-status\"", "report type");
	/* The three parts: text, delivery status, original header. */
	assert_string_equal(root->type, "multipart");
	assert_string_equal(root->subtype, "report");
	assert_int_equal(root->nparts, 3);
	assert_string_equal(root->parts[0].subtype, "plain");
	assert_string_equal(root->parts[1].type, "message");
	assert_string_equal(root->parts[1].subtype, "delivery-status");
	assert_string_equal(root->parts[2].subtype, "rfc822-headers");
	buf_add(&part, out.data + root->parts[1].body_off,
	    root->parts[1].end_off - root->parts[1].body_off);
	want_has(&part, "Reporting-MTA: dns; mail.example.org\r\n", "MTA");
	want_has(&part, "Received-From-MTA: dns;mx.example.net ([192.0.2.9])"
			"\r\n", "Received-From-MTA");
	want_has(&part, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
	    "Arrival-Date");
	want_has(&part, "\r\nFinal-Recipient: rfc822;team@example.org\r\n"
			"Action: failed\r\nStatus: 5.7.2\r\n"
			"Diagnostic-Code: smtp; 550 5.7.2 not allowed to send to "
			"destination\r\n"
			"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
	    "first recipient block");
	want_has(&part, "Final-Recipient: rfc822;nobody@example.org\r\n"
			"Action: failed\r\nStatus: 5.1.1\r\n", "second block");
	want_has(&part, "Final-Recipient: rfc822;carol@example.org\r\n"
			"Action: failed\r\nStatus: 4.2.2\r\n", "third block");
	buf_reset(&part);
	buf_add(&part, out.data + root->parts[0].body_off,
	    root->parts[0].end_off - root->parts[0].body_off);
	want_has(&part, "Multiple delivery failures occurred.", "text intro");
	want_has(&part, "Permanent delivery failure to:\r\n\r\n"
			"\tteam@example.org\r\n\r\nError:\r\n\r\n"
			"\t550 5.7.2 not allowed to send to destination\r\n",
	    "text for the first failure");
	want_has(&part, "Transient delivery failure to:\r\n\r\n"
			"\tcarol@example.org\r\n", "text for a 4xx failure");
	buf_reset(&part);
	buf_add(&part, out.data + root->parts[2].body_off,
	    root->parts[2].end_off - root->parts[2].body_off);
	want_has(&part, "Subject: hello\r\nMessage-ID: <m1@example.net>\r\n",
	    "original header");
	message_part_free(root);
	root = NULL;

	/* One failure: no "multiple" line. A hostile EHLO name stays on
	 * its line. */
	in.nfails = 1;
	in.ehlo = "evil\r\nInjected: yes";
	buf_reset(&out);
	compose(&in, &out, &root);
	if (strstr(out.data, "Multiple") != NULL ||
	    strstr(out.data, "\r\nInjected: yes") != NULL)
		fail_msg("single failure DSN:\n%s", out.data);
	want_has(&out, "Received-From-MTA: dns;evil  Injected: yes ([192.0.2.9])",
	    "cleaned EHLO");
	message_part_free(root);
	root = NULL;

	/* RFC 6533 variant. */
	in.utf8 = true;
	in.to = "\xc3\xa9ve@example.net";
	buf_reset(&out);
	compose(&in, &out, &root);
	assert_string_equal(root->parts[1].subtype, "global-delivery-status");
	assert_string_equal(root->parts[2].subtype, "global-headers");
	want_has(&out, "Final-Recipient: utf-8;team@example.org\r\n", "utf8");
	message_part_free(root);

	/* Too large for the buffer: -1. */
	{
		struct buf small;

		buf_init(&small, 200);
		assert_int_equal(smtp_dsn_compose(&in, &small), -1);
		buf_release(&small);
	}
	buf_release(&out);
	buf_release(&part);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_may_post),
		cmocka_unit_test(test_member_skip),
		cmocka_unit_test(test_dsn),
	};
	const struct CMUnitTest withcfg[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_members_canonical),
		cmocka_unit_test(test_may_send_as),
	};
	int rc = cmocka_run_group_tests(pure, NULL, NULL);

	return rc | cmocka_run_group_tests(withcfg, setup, teardown);
}
