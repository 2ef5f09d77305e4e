/*
 * test_queue_fromid.c: fromid (spec/queue.md 12, spec/smtp.md 11 step
 * 10): new ids, splitting a localpart, uniqueness in queue_add(), DSN
 * parsing with hostile input (missing parts and fields, several
 * recipients, bad Status and Diagnostic-Code, truncation, encodings), and
 * feedback about retired messages: result, LastActivity, suppression
 * with source DSN, webhook event with DSN true, other accounts ignored.
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
#include <sqlite3.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "queue/queue.h"
#include "queue/queue_fromid.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- ids ---- */

static void
test_new(void **state)
{
	struct buf a, b;

	buf_init(&a, 256);
	buf_init(&b, 256);
	queue_fromid_new(&a);
	queue_fromid_new(&b);
	/* 16 bytes, base64url without padding. */
	assert_int_equal(a.len, 22);
	assert_int_equal(b.len, 22);
	assert_string_not_equal(a.data, b.data);
	for (size_t i = 0; i < a.len; i++) {
		char c = a.data[i];

		if (!char_is_alnum((unsigned char)c) && c != '-' && c != '_')
			fail_msg("char %zu of %s", i, a.data);
	}
	buf_release(&a);
	buf_release(&b);
	(void)state;
}

static const struct {
	const char *lp, *sep;
	bool want;
	const char *base, *id;
} split_cases[] = {
	{ "mox+abc", "+", true, "mox", "abc" },
	{ "mox", "+", false, "mox", "" },
	{ "mox+", "+", true, "mox", "" },
	{ "+abc", "+", true, "", "abc" },
	{ "a+b+c", "+", true, "a", "b+c" }, /* the first separator */
	{ "a--b-c", "--", true, "a", "b-c" },
	{ "a-b", "--", false, "a-b", "" },
	{ "a+b", "", false, "a+b", "" },
	{ "a+b", NULL, false, "a+b", "" },
	{ "", "+", false, "", "" },
};

static void
test_split(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(split_cases); i++) {
		struct span base, id;
		bool r = queue_fromid_split(split_cases[i].lp,
		    split_cases[i].sep, &base, &id);

		if (r != split_cases[i].want ||
		    !span_eq_cstr(base, split_cases[i].base) ||
		    !span_eq_cstr(id, split_cases[i].id))
			fail_msg("case %zu: %d base %.*s id %.*s", i, r,
			    (int)base.len, base.p, (int)id.len, id.p);
	}
	(void)state;
}

/* ---- delivery-status fields ---- */

#define PERMSG "Reporting-MTA: dns; mx.example.com\r\n\r\n"
#define RCPT(action, status) \
	"Final-Recipient: rfc822; bob@example.com\r\nAction: " action \
	"\r\nStatus: " status "\r\n"

static const struct {
	const char *in;
	int rc;
	const char *event;
	bool success;
	int code;
	const char *secode;
	const char *error; /* substring; NULL: "incoming message" exactly */
} dsn_cases[] = {
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
	    0, "failed", false, 550, "1.1", NULL },
	{ PERMSG RCPT("failed", "5.1.1"), 0, "failed", false, 500, "1.1",
	    NULL },
	{ PERMSG RCPT("delayed", "4.4.1"), 0, "delayed", false, 400, "4.1",
	    NULL },
	{ PERMSG RCPT("delivered", "2.0.0"), 0, "delivered", true, 0, "",
	    NULL },
	{ PERMSG RCPT("relayed", "2.0.0"), 0, "relayed", true, 0, "", NULL },
	{ PERMSG RCPT("expanded", "2.0.0"), 0, "expanded", true, 0, "", NULL },
	{ PERMSG RCPT("Failed", "5.2.2 (mailbox full)"), 0, "failed", false,
	    500, "2.2", NULL },
	{ PERMSG RCPT("failed (bounced)", "5.1.1"), 0, "failed", false, 500,
	    "1.1", NULL },
	{ PERMSG RCPT("weird", "5.1.1"), 0, "unrecognized", false, 500, "1.1",
	    NULL },
	/* Bad Status: no code from it. */
	{ PERMSG RCPT("failed", "5.1"), 0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", "x.1.1"), 0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", "6.1.1"), 0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", "5.1234.1"), 0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", "5..1"), 0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", "5.1.1x"), 0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", ""), 0, "failed", false, 0, "", NULL },
	{ PERMSG "Final-Recipient: rfc822; b@example.com\r\nAction: failed\r\n",
	    0, "failed", false, 0, "", NULL },
	/* Diagnostic-Code variants. */
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: smtp; 550 no such user\r\n",
	    0, "failed", false, 550, "1.1", NULL },
	{ PERMSG RCPT("failed", "5.0.0")
	  "Diagnostic-Code: smtp; 550-5.7.1 first line 550 5.7.1 second\r\n",
	    0, "failed", false, 550, "7.1", NULL },
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: smtp; 450 5.1.1 class mismatch\r\n",
	    0, "failed", false, 450, "", NULL },
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: X-Unix; 67\r\n",
	    0, "failed", false, 500, "1.1", NULL },
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: smtp; 5500 long\r\n",
	    0, "failed", false, 500, "1.1", NULL },
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: smtp; 999 out of range\r\n",
	    0, "failed", false, 500, "1.1", NULL },
	{ PERMSG RCPT("failed", "bad")
	  "Diagnostic-Code: smtp;\r\n",
	    0, "failed", false, 0, "", NULL },
	{ PERMSG RCPT("failed", "5.1.1")
	  "Diagnostic-Code: smtp;\r\n 552 5.2.2\r\n\tfolded\r\n",
	    0, "failed", false, 552, "2.2", NULL },
	/* Without the per-message group; bare LF line ends. */
	{ RCPT("failed", "5.1.1"), 0, "failed", false, 500, "1.1", NULL },
	{ "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; b@x\nAction: "
	  "delayed\nStatus: 4.0.0\n",
	    0, "delayed", false, 400, "0.0", NULL },
	/* Blank lines around and between groups. */
	{ "\r\n\r\n" PERMSG "\r\n" RCPT("failed", "5.1.1") "\r\n\r\n", 0,
	    "failed", false, 500, "1.1", NULL },
	/* Recipients: none or several. */
	{ PERMSG, -1, "unrecognized", false, 0, "", "0 recipients" },
	{ "", -1, "unrecognized", false, 0, "", "0 recipients" },
	{ PERMSG RCPT("failed", "5.1.1") "\r\n" RCPT("failed", "5.1.2"), -1,
	    "unrecognized", false, 0, "", "2 recipients" },
	{ PERMSG RCPT("delivered", "2.0.0") "\r\n" RCPT("failed", "5.1.2")
	  "\r\n" RCPT("failed", "5.1.3"),
	    -1, "unrecognized", false, 0, "", "3 recipients" },
	/* Missing Action. */
	{ PERMSG "Final-Recipient: rfc822; b@x\r\nStatus: 5.1.1\r\n", -1,
	    "unrecognized", false, 0, "", "no action" },
	{ PERMSG "Final-Recipient: rfc822; b@x\r\nAction:\r\nStatus: 5.1.1\r\n",
	    -1, "unrecognized", false, 0, "", "no action" },
	/* Junk. */
	{ "no colon here\r\nanother line\r\n", -1, "unrecognized", false, 0,
	    "", "0 recipients" },
	{ PERMSG "Action: failed\r\nStatus: 5.1.1\r\n\r\n\r\n\r\n", 0, "failed",
	    false, 500, "1.1", NULL },
};

static void
check_fb(size_t i, const struct queue_fromid_feedback *fb, const char *event,
    bool success, int code, const char *secode, const char *error)
{
	if (strcmp(fb->event, event) != 0 || fb->success != success ||
	    fb->code != code || strcmp(fb->secode, secode) != 0 ||
	    (error == NULL ? strcmp(fb->error, "incoming message") != 0
			   : strstr(fb->error, error) == NULL))
		fail_msg("case %zu: event %s success %d code %d secode %s "
			 "error %s",
		    i, fb->event, fb->success, fb->code, fb->secode, fb->error);
}

static void
test_dsn_parse(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(dsn_cases); i++) {
		struct queue_fromid_feedback fb;
		int rc = queue_fromid_dsn_parse(span_of_cstr(dsn_cases[i].in),
		    &fb);

		if (rc != dsn_cases[i].rc)
			fail_msg("case %zu: rc %d (%s)", i, rc, fb.error);
		if (!fb.dsn)
			fail_msg("case %zu: not marked as dsn", i);
		check_fb(i, &fb, dsn_cases[i].event, dsn_cases[i].success,
		    dsn_cases[i].code, dsn_cases[i].secode, dsn_cases[i].error);
	}
	(void)state;
}

/* Every truncation of a DSN, and NUL, bare CR and 8-bit bytes inside,
 * give a result without crashing; the whole one parses. */
static void
test_dsn_truncated(void **state)
{
	static const char full[] = PERMSG RCPT("failed", "5.1.1")
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n";
	char mangled[sizeof(full)];

	for (size_t n = 0; n <= strlen(full); n++) {
		struct queue_fromid_feedback fb;
		int rc = queue_fromid_dsn_parse(span_of(full, n), &fb);

		if (rc != 0 && rc != -1)
			fail_msg("prefix %zu: rc %d", n, rc);
		/* A cut Action ("f") is not an action. */
		if (rc == 0 && strcmp(fb.event, "failed") != 0 &&
		    strcmp(fb.event, "unrecognized") != 0)
			fail_msg("prefix %zu: event %s", n, fb.event);
		if (n == strlen(full) &&
		    (rc != 0 || strcmp(fb.event, "failed") != 0 ||
			fb.code != 550))
			fail_msg("whole: rc %d event %s", rc, fb.event);
	}
	for (size_t i = 0; i < strlen(full); i++) {
		static const char bad[] = { '\0', '\r', '\n', '\xff' };

		for (size_t k = 0; k < sizeof(bad); k++) {
			struct queue_fromid_feedback fb;

			memcpy(mangled, full, sizeof(full));
			mangled[i] = bad[k];
			(void)queue_fromid_dsn_parse(
			    span_of(mangled, strlen(full)), &fb);
			assert_non_null(fb.event);
		}
	}
	(void)state;
}

/* ---- whole messages ---- */

#define HDR "From: <postmaster@example.com>\r\nTo: <mox+id@example.org>\r\n" \
	"Subject: failure\r\nMIME-Version: 1.0\r\n"
#define REPORT_CT "Content-Type: multipart/report; report-type=" \
	"delivery-status; boundary=b\r\n\r\n"
#define TEXTPART "--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"

static const struct {
	const char *msg;
	bool dsn;
	const char *event;
	int code;
	const char *error;
} msg_cases[] = {
	{ HDR REPORT_CT TEXTPART
	  "--b\r\nContent-Type: message/delivery-status\r\n\r\n" PERMSG
	  RCPT("failed", "5.1.1") "\r\n--b--\r\n",
	    true, "failed", 500, NULL },
	{ HDR REPORT_CT TEXTPART
	  "--b\r\nContent-Type: message/global-delivery-status\r\n\r\n" PERMSG
	  RCPT("delayed", "4.2.2") "\r\n--b--\r\n",
	    true, "delayed", 400, NULL },
	/* Base64 part: decoded before parsing. "Action: failed\r\nStatus:
	 * 5.1.1\r\n" */
	{ HDR REPORT_CT TEXTPART
	  "--b\r\nContent-Type: message/delivery-status\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n"
	  "QWN0aW9uOiBmYWlsZWQNClN0YXR1czogNS4xLjENCg==\r\n--b--\r\n",
	    true, "failed", 500, NULL },
	{ HDR REPORT_CT TEXTPART
	  "--b\r\nContent-Type: message/delivery-status\r\n"
	  "Content-Transfer-Encoding: x-unknown\r\n\r\n"
	  "Action: failed\r\n--b--\r\n",
	    true, "unrecognized", 0, "parsing dsn" },
	/* Second part of another type, or missing. */
	{ HDR REPORT_CT TEXTPART
	  "--b\r\nContent-Type: text/plain\r\n\r\nAction: failed\r\n--b--\r\n",
	    false, "unrecognized", 0, "not a dsn" },
	{ HDR REPORT_CT TEXTPART "--b--\r\n", false, "unrecognized", 0,
	    "not a dsn" },
	{ HDR REPORT_CT, false, "unrecognized", 0, "not a dsn" },
	/* Delivery-status first: not the second part. */
	{ HDR REPORT_CT "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
	  PERMSG RCPT("failed", "5.1.1") "\r\n--b--\r\n",
	    false, "unrecognized", 0, "not a dsn" },
	{ HDR "Content-Type: multipart/mixed; boundary=b\r\n\r\n" TEXTPART
	  "--b\r\nContent-Type: message/delivery-status\r\n\r\n" PERMSG
	  RCPT("failed", "5.1.1") "\r\n--b--\r\n",
	    false, "unrecognized", 0, "not a dsn" },
	{ HDR "\r\nan ordinary reply\r\n", false, "unrecognized", 0,
	    "not a dsn" },
	{ "", false, "unrecognized", 0, "not a dsn" },
	/* Two recipients. */
	{ HDR REPORT_CT TEXTPART
	  "--b\r\nContent-Type: message/delivery-status\r\n\r\n" PERMSG
	  RCPT("failed", "5.1.1") "\r\n" RCPT("failed", "5.1.1")
	  "\r\n--b--\r\n",
	    true, "unrecognized", 0, "2 recipients" },
};

static void
test_feedback_of(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(msg_cases); i++) {
		struct span m = span_of_cstr(msg_cases[i].msg);
		struct message_part *root = NULL;
		const char *why;

		for (int pass = 0; pass < 2; pass++) {
			struct queue_fromid_feedback fb;

			/* Parsed by us, and by the caller. */
			if (pass == 1)
				assert_int_equal(message_parse(m.p, m.len,
						     &root, &why),
				    0);
			queue_fromid_feedback_of(m, root, &fb);
			if (fb.dsn != msg_cases[i].dsn ||
			    strcmp(fb.event, msg_cases[i].event) != 0 ||
			    fb.code != msg_cases[i].code ||
			    (msg_cases[i].error == NULL
				    ? strcmp(fb.error, "incoming message") != 0
				    : strstr(fb.error, msg_cases[i].error) ==
					NULL))
				fail_msg("case %zu pass %d: dsn %d event %s "
					 "code %d error %s",
				    i, pass, fb.dsn, fb.event, fb.code,
				    fb.error);
		}
		message_part_free(root);
	}
	(void)state;
}

/* ---- the queue database ---- */

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
    "\tAccount: mox\n"
    "\tMailbox: Postmaster\n";

static const char domains_conf[] =
    "Domains:\n"
    "\texample.org:\n"
    "\t\tLocalpartCatchallSeparator: +\n"
    "Accounts:\n"
    "\tmox:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\tmox@example.org: nil\n"
    "\t\tFromIDLoginAddresses:\n"
    "\t\t\t- mox@example.org\n"
    "\t\tKeepRetiredMessagePeriod: 1h0m0s\n"
    "\t\tKeepRetiredWebhookPeriod: 2h0m0s\n"
    "\t\tOutgoingWebhook:\n"
    "\t\t\tURL: http://127.0.0.1:1/hook\n"
    "\tother:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\tother@example.org: nil\n";

struct env {
	char dir[64];
	struct queue *q;
	struct config *cfg;
	struct buf err;
};

static int
setup(void **state)
{
	struct env *e = xcalloc(1, sizeof(*e));
	struct buf p;

	snprintf(e->dir, sizeof(e->dir), "/tmp/test-queue-fromid-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	buf_init(&e->err, CONFIG_ERR_MAX);
	buf_init(&p, 4096);
	buf_addf(&p, "%s/domains.conf", e->dir);
	assert_int_equal(io_write_file_atomic(p.data, domains_conf,
			     strlen(domains_conf), 0644, &e->err), 0);
	buf_reset(&p);
	buf_addf(&p, "%s/mox.conf", e->dir);
	assert_int_equal(io_write_file_atomic(p.data, mox_conf,
			     strlen(mox_conf), 0644, &e->err), 0);
	if (config_load(p.data, &e->cfg, &e->err) == -1)
		fail_msg("config: %s", e->err.data);
	buf_reset(&p);
	buf_addf(&p, "%s/data", e->dir);
	assert_int_equal(io_mkdir_p(p.data, 0700), 0);
	e->q = queue_open(p.data, &e->err);
	assert_non_null(e->q);
	buf_release(&p);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	queue_close(e->q);
	config_free(e->cfg);
	buf_release(&e->err);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		return -1;
	free(e);
	return 0;
}

static int
add(struct env *e, const char *rcpt, const char *fromid)
{
	static const char body[] =
	    "Subject: s\r\nFrom: <mox@example.org>\r\n\r\nx\r\n";
	struct queue_msg m;
	struct buf path;
	int rc;

	buf_init(&path, 4096);
	buf_addf(&path, "%s/msgfile", e->dir);
	assert_int_equal(io_write_file_atomic(path.data, body, strlen(body),
			     0600, &e->err), 0);
	memset(&m, 0, sizeof(m));
	m.sender_account = xstrdup("mox");
	m.sender_localpart = xstrdup("mox+x");
	m.sender_domain = xstrdup("example.org");
	m.from_id = xstrdup(fromid);
	m.recipient_localpart = xstrdup(rcpt);
	m.recipient_domain = xstrdup("example.com");
	m.message_id = xstrdup("<orig@example.org>");
	m.msg_prefix = xstrdup("");
	m.subject = xstrdup("s");
	m.size = 40;
	m.extra = xcalloc(1, sizeof(*m.extra));
	m.extra[0].key = xstrdup("Campaign");
	m.extra[0].value = xstrdup("c1");
	m.nextra = 1;
	buf_reset(&e->err);
	rc = queue_add(e->q, path.data, &m, 1, &e->err);
	queue_msg_release(&m);
	buf_release(&path);
	return rc;
}

static int64_t
sql_int(struct env *e, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(queue_db_open(e->q, &db, &e->err), 0);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static char *
sql_str(struct env *e, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *v = NULL;

	assert_int_equal(queue_db_open(e->q, &db, &e->err), 0);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0) != NULL)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v != NULL ? v : xstrdup("");
}

/* Retire everything queued (drop: event canceled, kept an hour). */
static void
retire_all(struct env *e)
{
	struct queue_filter f;
	int64_t n = 0;

	queue_filter_init(&f);
	if (queue_admin_end(e->q, e->cfg, NULL, &f, false, &n, &e->err) == -1)
		fail_msg("drop: %s", e->err.data);
}

/* spec/queue.md 2 step 3: unique over queued and retired messages. */
static void
test_unique(void **state)
{
	struct env *e = *state;

	assert_int_equal(add(e, "a", "id1"), 0);
	assert_int_equal(add(e, "b", "id1"), -1);
	assert_true(queue_fromid_is_dup_err(e->err.data));
	retire_all(e);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM retired WHERE"
				    " from_id = 'id1'"),
	    1);
	assert_int_equal(add(e, "c", "id1"), -1);
	assert_true(queue_fromid_is_dup_err(e->err.data));
	assert_int_equal(add(e, "d", "id2"), 0);
	assert_int_equal(add(e, "e", ""), 0); /* no fromid: no check */
	assert_int_equal(add(e, "f", ""), 0);
	assert_false(queue_fromid_is_dup_err("queue begin: busy"));
	assert_false(queue_fromid_is_dup_err(NULL));
}

static const char dsn_failed[] =
    HDR REPORT_CT TEXTPART
    "--b\r\nContent-Type: message/delivery-status\r\n\r\n" PERMSG
    RCPT("failed", "5.1.1")
    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n";

static void
test_incoming_dsn(void **state)
{
	struct env *e = *state;
	struct queue_fromid_feedback fb;
	int64_t before, after;
	char *s;

	assert_int_equal(add(e, "bob", "fid1"), 0);
	retire_all(e);
	before = sql_int(e, "SELECT last_activity FROM retired WHERE"
			    " from_id = 'fid1'");
	/* Unknown id, another account's id: ordinary mail. */
	buf_reset(&e->err);
	assert_int_equal(queue_fromid_incoming(e->q, e->cfg, "mox", "nope",
			     span_of_cstr(dsn_failed), NULL, &fb, &e->err),
	    0);
	assert_int_equal(queue_fromid_incoming(e->q, e->cfg, "other", "fid1",
			     span_of_cstr(dsn_failed), NULL, &fb, &e->err),
	    0);
	assert_int_equal(queue_fromid_incoming(e->q, e->cfg, "mox", "",
			     span_of_cstr(dsn_failed), NULL, &fb, &e->err),
	    0);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook WHERE"
				    " event = 'failed'"),
	    0);
	/* The DSN for our message. */
	if (queue_fromid_incoming(e->q, e->cfg, "mox", "fid1",
		span_of_cstr(dsn_failed), NULL, &fb, &e->err) != 1)
		fail_msg("incoming: %s", e->err.data);
	assert_string_equal(fb.event, "failed");
	assert_true(fb.dsn);
	assert_int_equal(fb.code, 550);
	after = sql_int(e, "SELECT last_activity FROM retired WHERE"
			   " from_id = 'fid1'");
	assert_true(after >= before);
	s = sql_str(e, "SELECT json_extract(results, '$[#-1].Error') || ' ' ||"
		       " json_extract(results, '$[#-1].Code') || ' ' ||"
		       " json_extract(results, '$[#-1].Secode') FROM retired"
		       " WHERE from_id = 'fid1'");
	assert_string_equal(s, "incoming message 550 1.1");
	free(s);
	/* spec/queue.md 11: suppressed at once for 5.1.1, source DSN. */
	s = sql_str(e, "SELECT account || ' ' || base_address || ' ' || reason"
		       " FROM suppression");
	assert_string_equal(s, "mox bob@example.com delivery failure from DSN "
			       "with smtp code 550, enhanced code \"1.1\"");
	free(s);
	/* spec/queue.md 14: the event, with DSN and Suppressing true. */
	s = sql_str(e, "SELECT json_extract(payload, '$.Event') || ' ' ||"
		       " json_extract(payload, '$.DSN') || ' ' ||"
		       " json_extract(payload, '$.Suppressing') || ' ' ||"
		       " json_extract(payload, '$.SMTPCode') || ' ' ||"
		       " json_extract(payload, '$.SMTPEnhancedCode') || ' ' ||"
		       " json_extract(payload, '$.FromID') || ' ' ||"
		       " json_extract(payload, '$.MessageID') || ' ' ||"
		       " json_extract(payload, '$.Extra.Campaign') || ' ' ||"
		       " (queue_msg_id = (SELECT id FROM retired WHERE"
		       " from_id = 'fid1')) FROM webhook WHERE"
		       " event = 'failed'");
	assert_string_equal(s, "failed 1 1 550 5.1.1 fid1 <orig@example.org> "
			       "c1 1");
	free(s);
}

static void
test_incoming_not_dsn(void **state)
{
	struct env *e = *state;
	struct queue_fromid_feedback fb;
	static const char reply[] = "From: <bob@example.com>\r\n"
				    "Subject: Re: s\r\n\r\nthanks\r\n";
	char *s;

	assert_int_equal(add(e, "carol", "fid2"), 0);
	retire_all(e);
	if (queue_fromid_incoming(e->q, e->cfg, "mox", "fid2",
		span_of_cstr(reply), NULL, &fb, &e->err) != 1)
		fail_msg("incoming: %s", e->err.data);
	assert_string_equal(fb.event, "unrecognized");
	assert_false(fb.dsn);
	s = sql_str(e, "SELECT json_extract(payload, '$.Event') || ' ' ||"
		       " json_extract(payload, '$.DSN') || ' ' ||"
		       " json_extract(payload, '$.Suppressing') FROM webhook"
		       " WHERE event = 'unrecognized'");
	assert_string_equal(s, "unrecognized 0 0");
	free(s);
	s = sql_str(e, "SELECT json_extract(results, '$[#-1].Error') FROM"
		       " retired WHERE from_id = 'fid2'");
	assert_string_equal(s, "incoming message not a dsn");
	free(s);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM suppression"), 0);
	/* A second message about the same one supersedes the pending hook
	 * (spec/queue.md 14). */
	assert_int_equal(queue_fromid_incoming(e->q, e->cfg, "mox", "fid2",
			     span_of_cstr(reply), NULL, &fb, &e->err),
	    1);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook WHERE"
				    " event = 'unrecognized'"),
	    1);
	/* The retired one names the hook that superseded it. */
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook_retired r"
				    " JOIN webhook w ON w.id = r.superseded_by"
				    " WHERE w.event = 'unrecognized'"
				    " AND r.event = 'unrecognized'"),
	    1);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook_retired"
				    " WHERE superseded_by = -1"),
	    0);
	assert_int_equal(sql_int(e, "SELECT json_array_length(results) FROM"
				    " retired WHERE from_id = 'fid2'"),
	    3);
	/* Without a configuration: the record, no webhook. */
	assert_int_equal(queue_fromid_incoming(e->q, NULL, "mox", "fid2",
			     span_of_cstr(dsn_failed), NULL, &fb, &e->err),
	    1);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook WHERE"
				    " event = 'failed'"),
	    0);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM suppression"), 1);
}

/* Bug: an event recorded inside the caller's transaction (the runner
 * retiring delivered messages in one commit) failed to begin its own
 * and was lost. */
static void
test_webhook_in_tx(void **state)
{
	struct env *e = *state;
	struct queue_attempt_result r = { 0 };
	struct queue_msg *v = NULL;
	size_t n = 0;
	sqlite3 *db = NULL;

	assert_int_equal(add(e, "dave", "fid3"), 0);
	assert_int_equal(queue_list(e->q, &v, &n, &e->err), 0);
	assert_int_equal(n, 1);
	r.success = true;
	r.error = "";
	assert_int_equal(queue_db_open(e->q, &db, &e->err), 0);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(queue_int_webhook_event(db, e->cfg, &v[0], "delivered",
			     &r, false),
	    0);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook WHERE"
				    " event = 'delivered'"),
	    1);
	queue_msg_list_free(v, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_dsn_parse),
		cmocka_unit_test(test_dsn_truncated),
		cmocka_unit_test(test_feedback_of),
		cmocka_unit_test_setup_teardown(test_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incoming_dsn, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_incoming_not_dsn, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_webhook_in_tx, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
