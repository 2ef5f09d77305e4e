/*
 * test_queue_store.c: the durable queue storage (queue_store.c): records
 * and files added in one transaction, base id grouping (spec/queue.md
 * 2), hold rules, extra data, listing and removal, failure leaving
 * nothing behind, the prepared statements a delivery job keeps, and
 * the backoff schedule (spec/queue.md 4.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/xmalloc.h"
#include "queue/queue.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

static char tmpdir[] = "/tmp/test-queue-XXXXXX";

static void
mkmsg(struct queue_msg *m, const char *rcpt, const char *prefix)
{
	memset(m, 0, sizeof(*m));
	m->sender_account = xstrdup("mox");
	m->sender_localpart = xstrdup("mox");
	m->sender_domain = xstrdup("example.org");
	m->recipient_localpart = xstrdup(rcpt);
	m->recipient_domain = xstrdup("example.com");
	m->message_id = xstrdup("<id@example.org>");
	m->msg_prefix = xstrdup(prefix);
	m->msg_prefix_len = strlen(prefix);
	m->size = (int64_t)strlen(prefix) + 5;
	m->subject = xstrdup("s");
}

static void
test_queue(void **state)
{
	struct buf err, path, data;
	struct queue *q;
	struct queue_msg msgs[3], *list = NULL;
	size_t n = 0;
	sqlite3 *db;

	buf_init(&err, 4096);
	buf_init(&path, 4096);
	buf_init(&data, 4096);
	assert_non_null(mkdtemp(tmpdir));
	q = queue_open(tmpdir, &err);
	assert_non_null(q);
	buf_addf(&path, "%s/msgfile", tmpdir);
	assert_int_equal(io_write_file_atomic(path.data, "body\n", 5, 0600, &err),
	    0);

	/* Three recipients, same sender and prefix: one group. */
	for (int i = 0; i < 3; i++)
		mkmsg(&msgs[i], i == 0 ? "a" : i == 1 ? "b" : "c", "P: 1\r\n");
	msgs[1].extra = xcalloc(1, sizeof(*msgs[1].extra));
	msgs[1].extra[0].key = xstrdup("Order-Id");
	msgs[1].extra[0].value = xstrdup("123");
	msgs[1].nextra = 1;
	/* Extra data on the first record too: its extra rows are inserted
	 * before its BaseID is set. */
	msgs[0].extra = xcalloc(1, sizeof(*msgs[0].extra));
	msgs[0].extra[0].key = xstrdup("Batch");
	msgs[0].extra[0].value = xstrdup("7");
	msgs[0].nextra = 1;
	msgs[2].requiretls = QUEUE_REQUIRETLS_NO;
	assert_int_equal(queue_add(q, path.data, msgs, 3, &err), 0);
	assert_true(msgs[0].id > 0 && msgs[1].id == msgs[0].id + 1);
	assert_int_equal(msgs[0].base_id, msgs[0].id);
	assert_int_equal(msgs[2].base_id, msgs[0].id);
	for (int i = 0; i < 3; i++) {
		buf_reset(&path);
		queue_msg_path(q, msgs[i].id, &path);
		buf_reset(&data);
		assert_int_equal(io_read_file(path.data, &data, &err), 0);
		assert_string_equal(data.data, "body\n");
		queue_msg_release(&msgs[i]);
	}

	/* Different prefix: no group. A hold rule on the recipient domain. */
	db = NULL;
	buf_reset(&path);
	buf_addf(&path, "%s/queue/index.db", tmpdir);
	assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO hold_rule"
					  " (recipient_domain) VALUES"
					  " ('example.com')",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	mkmsg(&msgs[0], "d", "P: 1\r\n");
	mkmsg(&msgs[1], "e", "P: 2\r\n");
	buf_reset(&path);
	buf_addf(&path, "%s/msgfile", tmpdir);
	assert_int_equal(queue_add(q, path.data, msgs, 2, &err), 0);
	assert_int_equal(msgs[0].base_id, 0);
	assert_true(msgs[0].hold && msgs[1].hold);
	queue_msg_release(&msgs[0]);
	queue_msg_release(&msgs[1]);

	assert_int_equal(queue_list(q, &list, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_string_equal(list[0].recipient_localpart, "a");
	assert_int_equal(list[1].nextra, 1);
	/* As stored, not only as returned by queue_add(). */
	assert_int_equal(list[0].base_id, list[0].id);
	assert_int_equal(list[1].base_id, list[0].id);
	assert_string_equal(list[1].extra[0].key, "Order-Id");
	assert_string_equal(list[1].extra[0].value, "123");
	assert_int_equal(list[2].requiretls, QUEUE_REQUIRETLS_NO);
	assert_int_equal(list[0].requiretls, QUEUE_REQUIRETLS_UNSET);
	assert_int_equal(list[0].msg_prefix_len, 6);
	assert_false(list[0].hold);
	assert_true(list[3].hold);

	/* One record by id with kept statements, as a delivery job does. */
	{
		struct queue_stmts *c;
		struct queue_msg *one = NULL;
		size_t none = 0;

		buf_reset(&path);
		buf_addf(&path, "%s/queue/index.db", tmpdir);
		assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
		c = queue_stmts_new(db);
		for (int k = 0; k < 2; k++) {
			assert_int_equal(queue_int_load_id(c, db, list[1].id,
					     &one, &none),
			    0);
			assert_int_equal(none, 1);
			assert_string_equal(one[0].recipient_localpart, "b");
			assert_int_equal(one[0].nextra, 1);
			assert_string_equal(one[0].extra[0].value, "123");
			queue_msg_list_free(one, none);
		}
		assert_int_equal(queue_int_load_id(c, db, 999999, &one, &none),
		    0);
		assert_int_equal(none, 0);
		queue_msg_list_free(one, none);
		queue_stmts_free(c);
		assert_int_equal(sqlite3_close(db), SQLITE_OK);
	}

	/* Remove one: row and file gone. */
	assert_int_equal(queue_remove(q, list[0].id, &err), 0);
	buf_reset(&path);
	queue_msg_path(q, list[0].id, &path);
	assert_int_equal(access(path.data, F_OK), -1);
	queue_msg_list_free(list, n);
	assert_int_equal(queue_list(q, &list, &n, &err), 0);
	assert_int_equal(n, 4);
	queue_msg_list_free(list, n);

	/* A missing file fails and adds nothing. */
	mkmsg(&msgs[0], "f", "");
	assert_int_equal(queue_add(q, "/nonexistent/file", msgs, 1, &err), -1);
	queue_msg_release(&msgs[0]);
	assert_int_equal(queue_list(q, &list, &n, &err), 0);
	assert_int_equal(n, 4);
	queue_msg_list_free(list, n);
	assert_int_equal(queue_add(q, "/nonexistent/file", msgs, 0, &err), -1);

	queue_close(q);
	buf_reset(&path);
	buf_addf(&path, "rm -rf %s", tmpdir);
	assert_int_equal(system(path.data), 0);
	buf_release(&err);
	buf_release(&path);
	buf_release(&data);
	(void)state;
}

/* Kept statements: found by the address of their SQL, reset and unbound
 * between uses; more than fit are finalized when given back; without a
 * cache each is finalized. sqlite3_close() fails while any is left. */
static void
test_stmts(void **state)
{
	static const char *const sqls[] = {
		"SELECT 0 + ?1", "SELECT 1 + ?1", "SELECT 2 + ?1",
		"SELECT 3 + ?1", "SELECT 4 + ?1", "SELECT 5 + ?1",
		"SELECT 6 + ?1", "SELECT 7 + ?1", "SELECT 8 + ?1",
		"SELECT 9 + ?1", "SELECT 10 + ?1", "SELECT 11 + ?1",
		"SELECT 12 + ?1", "SELECT 13 + ?1", "SELECT 14 + ?1",
		"SELECT 15 + ?1", "SELECT 16 + ?1", "SELECT 17 + ?1",
		"SELECT 18 + ?1", "SELECT 19 + ?1",
	};
	struct queue_stmts *c;
	sqlite3_stmt *st, *st2;
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	c = queue_stmts_new(db);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
			st = queue_stmts_get(c, db, sqls[i]);
			assert_non_null(st);
			/* Unbound after the previous use: NULL + i. */
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			assert_int_equal(sqlite3_column_type(st, 0), SQLITE_NULL);
			sqlite3_reset(st);
			sqlite3_bind_int(st, 1, 100);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			assert_int_equal(sqlite3_column_int(st, 0), 100 + (int)i);
			queue_stmts_put(c, st);
		}
	st = queue_stmts_get(c, db, sqls[0]);
	queue_stmts_put(c, st);
	st2 = queue_stmts_get(c, db, sqls[0]);
	assert_ptr_equal(st, st2);
	queue_stmts_put(c, st2);
	assert_null(queue_stmts_get(c, db, "SELECT FROM nothing"));
	queue_stmts_free(c);
	st = queue_stmts_get(NULL, db, sqls[1]);
	assert_non_null(st);
	queue_stmts_put(NULL, st);
	queue_stmts_put(NULL, NULL);
	queue_stmts_free(NULL);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	(void)state;
}

/* spec/queue.md 4.1: 7.5 min doubling; attempt 8 comes 8 h after 7;
 * about 15 h 52 min from the first to the last attempt; jitter -5..+4 s
 * scaled like the base; the test divisor divides. */
static void
test_backoff(void **state)
{
	static const struct {
		int64_t attempts;
		int jitter;
		int64_t want_s;
	} cases[] = {
		{ 0, 0, 450 },        /* before attempt 2: 7.5 min */
		{ 1, 0, 900 },        /* 15 min */
		{ 2, 0, 1800 },       /* 30 min */
		{ 3, 0, 3600 },       /* 1 h: the 5th attempt */
		{ 4, 0, 7200 },
		{ 5, 0, 14400 },
		{ 6, 0, 28800 },      /* 8 h: the 8th, last attempt */
		{ 0, -5, 445 },
		{ 0, 4, 454 },
		{ 2, -5, 1780 },
		{ -1, 0, 450 },       /* clamped */
	};
	int64_t total = 0;

	assert_int_equal(unsetenv("MOX_TEST_QUEUE_BACKOFF_DIVISOR"), 0);
	assert_int_equal(queue_backoff_divisor(), 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = queue_backoff_ns(cases[i].attempts,
		    cases[i].jitter);

		if (got != cases[i].want_s * 1000000000LL)
			fail_msg("case %zu: %lld ns, want %lld s", i,
			    (long long)got, (long long)cases[i].want_s);
	}
	for (int64_t a = 0; a < QUEUE_MAX_ATTEMPTS_DEFAULT - 1; a++)
		total += queue_backoff_ns(a, 0);
	assert_int_equal(total, (15 * 3600 + 52 * 60 + 30) * 1000000000LL);
	/* Growth stops: no overflow for absurd counts. */
	assert_true(queue_backoff_ns(1000, 4) > 0);

	assert_int_equal(setenv("MOX_TEST_QUEUE_BACKOFF_DIVISOR", "450", 1), 0);
	assert_int_equal(queue_backoff_divisor(), 450);
	assert_int_equal(queue_backoff_ns(0, 0), 1000000000LL);
	assert_int_equal(queue_backoff_ns(3, 0), 8000000000LL);
	static const char *const bad[] = { "0", "-3", "x", "", "99999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setenv("MOX_TEST_QUEUE_BACKOFF_DIVISOR", bad[i],
				     1),
		    0);
		if (queue_backoff_divisor() != 1)
			fail_msg("divisor '%s' accepted", bad[i]);
	}
	assert_int_equal(unsetenv("MOX_TEST_QUEUE_BACKOFF_DIVISOR"), 0);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_stmts),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
