/*
 * test_queue_admin.c: admin operations of the queue (spec/queue.md 10,
 * 11, 14): fail/drop with and without a published configuration, errors
 * midway through listings, suppression lookups for any account, webhook
 * cancel retention and atomicity, webhook listing and printing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue.h"
#include "lib/banned.h"

#define HOUR_NS (3600 * NS_PER_SEC)

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
    "\texample.org: nil\n"
    "Accounts:\n"
    "\tmox:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\tmox@example.org: nil\n"
    "\t\tKeepRetiredMessagePeriod: 1h0m0s\n"
    "\t\tKeepRetiredWebhookPeriod: 2h0m0s\n"
    "\t\tOutgoingWebhook:\n"
    "\t\t\tURL: http://127.0.0.1:1/hook\n"
    "\tnokeep:\n"
    "\t\tDomain: example.org\n"
    "\t\tDestinations:\n"
    "\t\t\tnokeep@example.org: nil\n";

struct env {
	char dir[64];
	struct queue *q;
	struct config *cfg;
	struct buf err;
};

static void
mkmsg(struct queue_msg *m, const char *account, const char *rcpt)
{
	memset(m, 0, sizeof(*m));
	m->sender_account = xstrdup(account);
	m->sender_localpart = xstrdup(account);
	m->sender_domain = xstrdup("example.org");
	m->recipient_localpart = xstrdup(rcpt);
	m->recipient_domain = xstrdup("example.com");
	m->message_id = xstrdup("<id@example.org>");
	m->msg_prefix = xstrdup("");
	m->size = 40;
	m->subject = xstrdup("s");
}

/* Queue one message per rcpt for account. */
static void
add(struct env *e, const char *account, const char *const *rcpts, size_t n)
{
	struct buf path;
	static const char body[] = "Subject: s\r\nFrom: <mox@example.org>\r\n\r\nx\r\n";

	buf_init(&path, 4096);
	buf_addf(&path, "%s/msgfile", e->dir);
	assert_int_equal(io_write_file_atomic(path.data, body, strlen(body),
			     0600, &e->err), 0);
	for (size_t i = 0; i < n; i++) {
		struct queue_msg m;

		mkmsg(&m, account, rcpts[i]);
		if (queue_add(e->q, path.data, &m, 1, &e->err) == -1)
			fail_msg("queue_add: %s", e->err.data);
		queue_msg_release(&m);
	}
	buf_release(&path);
}

static int
setup(void **state)
{
	struct env *e = xcalloc(1, sizeof(*e));
	struct buf p, data;

	snprintf(e->dir, sizeof(e->dir), "/tmp/test-queue-admin-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	buf_init(&e->err, CONFIG_ERR_MAX);
	buf_init(&p, 4096);
	buf_init(&data, 4096);
	buf_addf(&p, "%s/domains.conf", e->dir);
	assert_int_equal(io_write_file_atomic(p.data, domains_conf,
			     strlen(domains_conf), 0644, &e->err), 0);
	buf_reset(&p);
	buf_addf(&p, "%s/mox.conf", e->dir);
	assert_int_equal(io_write_file_atomic(p.data, mox_conf,
			     strlen(mox_conf), 0644, &e->err), 0);
	if (config_load(p.data, &e->cfg, &e->err) == -1)
		fail_msg("config: %s", e->err.data);
	buf_reset(&data);
	buf_addf(&data, "%s/data", e->dir);
	assert_int_equal(io_mkdir_p(data.data, 0700), 0);
	e->q = queue_open(data.data, &e->err);
	assert_non_null(e->q);
	buf_release(&p);
	buf_release(&data);
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

static int64_t
sql_int(struct env *e, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(queue_db_open(e->q, &db, &e->err), 0);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
sql_exec(struct env *e, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(queue_db_open(e->q, &db, &e->err), 0);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Bug: drop needed a published config and reported 0 messages. */
static void
test_drop_without_config(void **state)
{
	struct env *e = *state;
	static const char *const rcpts[] = { "a", "b" };
	struct queue_filter f;
	int64_t n = -1, now = time_wall_ns(), ku;

	add(e, "mox", rcpts, 2);
	assert_null(config_get());
	queue_filter_init(&f);
	if (queue_admin_drop(e->q, &f, &n, &e->err) == -1)
		fail_msg("drop: %s", e->err.data);
	assert_int_equal(n, 2);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM msg"), 0);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM retired"), 2);
	/* spec/queue.md 9: a week when the account is not known. */
	ku = sql_int(e, "SELECT min(keep_until) FROM retired");
	assert_true(ku >= now + 7 * 24 * HOUR_NS - HOUR_NS);
	assert_true(ku <= now + 7 * 24 * HOUR_NS + HOUR_NS);
}

/* Fail without a configuration is refused before changing anything;
 * with one passed in it works and uses the account's settings. */
static void
test_fail_with_and_without_config(void **state)
{
	struct env *e = *state;
	static const char *const rcpts[] = { "c" };
	struct queue_filter f;
	int64_t n = -1, now = time_wall_ns(), ku;

	add(e, "mox", rcpts, 1);
	queue_filter_init(&f);
	assert_int_equal(queue_admin_fail(e->q, NULL, &f, &n, &e->err), -1);
	assert_non_null(strstr(e->err.data, "configuration"));
	assert_int_equal(n, 0);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM msg"), 1);

	/* The account has no store here: the message is ended, and the
	 * undelivered DSN is reported for it. */
	buf_reset(&e->err);
	assert_int_equal(queue_admin_end(e->q, e->cfg, NULL, &f, true, &n,
			     &e->err), -1);
	assert_int_equal(n, 1);
	assert_non_null(strstr(e->err.data, "message 1: dsn"));
	assert_int_equal(sql_int(e, "SELECT count(*) FROM msg"), 0);
	assert_int_equal(sql_int(e, "SELECT success FROM retired"), 0);
	ku = sql_int(e, "SELECT keep_until FROM retired");
	assert_true(ku >= now + HOUR_NS && ku <= now + HOUR_NS + 60 * NS_PER_SEC);
	/* spec/queue.md 14: the failed event for the account's webhook. */
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook WHERE"
				    " event = 'failed'"), 1);
}

/* Bug: an error midway through a listing looked like its end. */
static void
test_list_error_midway(void **state)
{
	struct env *e = *state;
	static const char *const rcpts[] = { "d", "e", "f" };
	struct queue_filter f;
	struct queue_item *items = NULL;
	struct queue_webhook_item *hooks = NULL;
	size_t n = 0;

	add(e, "mox", rcpts, 3);
	/* json_extract() fails on the second row. */
	sql_exec(e, "UPDATE msg SET results = '{not json' WHERE"
		    " recipient_localpart = 'e'");
	queue_filter_init(&f);
	f.asc = true;
	f.sort_queued = true;
	assert_int_equal(queue_admin_list(e->q, &f, &items, &n, &e->err), -1);
	assert_non_null(strstr(e->err.data, "listing"));
	sql_exec(e, "UPDATE msg SET results = '[]'");

	sql_exec(e, "INSERT INTO webhook (account, url, payload, submitted,"
		    " next_attempt, results) VALUES ('mox', 'u', '{}', 1, 1, '[]'),"
		    " ('mox', 'u', '{}', 2, 2, '{bad'), ('mox', 'u', '{}', 3, 3,"
		    " '[]')");
	buf_reset(&e->err);
	assert_int_equal(queue_webhook_list(e->q, &f, false, &hooks, &n,
			     &e->err), -1);
	assert_non_null(strstr(e->err.data, "listing webhooks"));
}

/* Bug: account "" did not match any account. */
static void
test_suppress_any_account(void **state)
{
	struct env *e = *state;
	static const struct {
		const char *account;
		const char *address;
		int want;
	} cases[] = {
		{ "mox", "John.Doe+x@example.com", 1 },
		{ "", "johndoe-y@example.com", 1 },
		{ NULL, "johndoe@example.com", 1 },
		{ "other", "johndoe@example.com", 0 },
		{ "", "someone@example.com", 0 },
	};

	if (queue_suppress_add(e->q, "mox", "john.doe@example.com", true, "t",
		&e->err) == -1)
		fail_msg("add: %s", e->err.data);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct queue_suppression s;
		int got;

		memset(&s, 0, sizeof(s));
		got = queue_suppress_lookup(e->q, cases[i].account,
		    cases[i].address, &s, &e->err);
		if (got != cases[i].want)
			fail_msg("case %zu: got %d want %d (%s)", i, got,
			    cases[i].want, e->err.data);
		if (got == 1 && strcmp(s.account, "mox") != 0)
			fail_msg("case %zu: account %s", i, s.account);
		free(s.account);
		free(s.base_address);
		free(s.original_address);
		free(s.reason);
	}
}

/* Bugs: cancel lost a hook when the retired insert failed, ignored the
 * account's period, and list/print lacked last attempt, booleans and
 * RFC 3339 times. */
static void
test_webhook_cancel(void **state)
{
	struct env *e = *state;
	struct queue_filter f;
	struct queue_webhook_item *v = NULL;
	struct buf out;
	size_t n = 0;
	int64_t count = -1, now = time_wall_ns(), ku;

	buf_init(&out, 65536);
	sql_exec(e, "INSERT INTO webhook (id, account, url, event, payload,"
		    " submitted, next_attempt) VALUES (10, 'mox', 'u', 'failed',"
		    " '{}', 1700000000000000000, 1700000000000000000),"
		    " (11, 'nokeep', 'u', 'failed', '{}', 1, 1),"
		    " (12, 'mox', 'u', 'failed', '{}', 1, 1)");
	/* A retired hook with id 12 makes its insert fail. */
	sql_exec(e, "INSERT INTO webhook_retired (id, queue_msg_id, from_id,"
		    " message_id, subject, extra, account, url, authorization,"
		    " is_incoming, event, payload, submitted, attempts, results,"
		    " success, last_activity, keep_until) VALUES (12, 0, '', '',"
		    " '', '{}', 'mox', 'u', '', 0, '', '{}', 1, 0, '[]', 0, 1, 1)");
	queue_filter_init(&f);
	assert_int_equal(queue_webhook_list(e->q, &f, false, &v, &n, &e->err), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].last_attempt_ns, 0);
	queue_webhook_item_list_free(v, n);

	assert_int_equal(queue_webhook_print(e->q, 10, false, &out, &e->err), 0);
	assert_non_null(strstr(out.data, "\"NextAttempt\":\"2023-11-14T22:13:20Z\""));

	assert_int_equal(queue_webhook_cancel_cfg(e->q, e->cfg, &f, &count,
			     &e->err), -1);
	assert_int_equal(count, 2);
	assert_non_null(strstr(e->err.data, "webhook 12:"));
	/* 12 stays pending; 10 kept 2 h; 11's account keeps nothing. */
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook"), 1);
	assert_int_equal(sql_int(e, "SELECT id FROM webhook"), 12);
	assert_int_equal(sql_int(e, "SELECT count(*) FROM webhook_retired"
				    " WHERE id = 11"), 0);
	ku = sql_int(e, "SELECT keep_until FROM webhook_retired WHERE id = 10");
	assert_true(ku >= now + 2 * HOUR_NS &&
	    ku <= now + 2 * HOUR_NS + 60 * NS_PER_SEC);

	assert_int_equal(queue_webhook_list(e->q, &f, true, &v, &n, &e->err), 0);
	for (size_t i = 0; i < n; i++)
		if (v[i].id == 10)
			assert_true(v[i].last_attempt_ns >= now);
	queue_webhook_item_list_free(v, n);

	buf_reset(&out);
	assert_int_equal(queue_webhook_print(e->q, 10, true, &out, &e->err), 0);
	assert_non_null(strstr(out.data, "\"Success\":false"));
	assert_non_null(strstr(out.data, "\"Submitted\":\"2023-11-14T22:13:20Z\""));
	assert_null(strstr(out.data, "\"KeepUntil\":1"));
	buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_drop_without_config, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fail_with_and_without_config,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_error_midway, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_suppress_any_account, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_webhook_cancel, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
