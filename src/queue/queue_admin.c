/*
 * queue_admin.c: operations behind `mox queue` (spec/queue.md 10, 13):
 * filters, listing, hold/unhold, schedule, transport, requiretls, fail,
 * drop, dump, hold rules, retired history and webhook administration.
 * They work on the data directory directly, with or without a running
 * server; the runner notices the changes through PRAGMA data_version.
 * Filter values come from the operator and are bound as SQL parameters.
 * Threads: any but the reactor; each call has its own sqlite3 handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/log.h"
#include "config/config.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

#define ADMIN_PARAMS_MAX 16

struct where {
	struct buf sql;
	const char *txt[ADMIN_PARAMS_MAX]; /* NULL: use num */
	int64_t num[ADMIN_PARAMS_MAX];
	int n;
};

enum table { T_MSG, T_RETIRED, T_WEBHOOK, T_WEBHOOK_RETIRED };

/* Append pre, the next parameter's placeholder, then post. */

/* One step of a listing: 1 row, 0 done, -1 error (appended to err with
 * what). An error midway must not look like the end of the list. */
static int
step_row(sqlite3 *db, sqlite3_stmt *st, const char *what, struct buf *err)
{
	int r = sqlite3_step(st);

	if (r == SQLITE_ROW)
		return 1;
	if (r == SQLITE_DONE)
		return 0;
	buf_addf(err, "%s: %s", what, sqlite3_errmsg(db));
	return -1;
}

static void
w_int(struct where *w, const char *pre, const char *post, int64_t v)
{
	w->num[w->n] = v;
	w->txt[w->n] = NULL;
	w->n++;
	buf_adds(&w->sql, pre);
	buf_addf(&w->sql, "?%d", w->n);
	buf_adds(&w->sql, post);
}

static void
w_txt(struct where *w, const char *pre, const char *post, const char *v)
{
	w->txt[w->n] = v;
	w->n++;
	buf_adds(&w->sql, pre);
	buf_addf(&w->sql, "?%d", w->n);
	buf_adds(&w->sql, post);
}

static void
build_where(const struct queue_filter *f, enum table t, struct where *w)
{
	bool msg = t == T_MSG || t == T_RETIRED;
	const char *acct = msg ? "sender_account" : "account";
	const char *sub = msg ? "queued" : "submitted";
	const char *next = t == T_MSG || t == T_WEBHOOK ? "next_attempt"
							: "last_activity";

	buf_init(&w->sql, 8192);
	w->n = 0;
	buf_adds(&w->sql, " WHERE 1");
	if (f->ids != NULL) {
		buf_adds(&w->sql, " AND id IN (");
		for (size_t i = 0; i < f->nids; i++)
			buf_addf(&w->sql, "%s%lld", i > 0 ? "," : "",
			    (long long)f->ids[i]);
		buf_adds(&w->sql, f->nids == 0 ? "NULL)" : ")");
	}
	if (f->account != NULL) {
		buf_addf(&w->sql, " AND %s", acct);
		w_txt(w, " = ", "", f->account);
	}
	if (msg && f->from != NULL)
		w_txt(w, " AND instr(sender_localpart || '@' || sender_domain, ",
		    ") > 0", f->from);
	if (msg && f->to != NULL)
		w_txt(w, " AND instr(recipient_localpart || '@' ||"
			 " recipient_domain, ", ") > 0", f->to);
	if (f->cmp_submitted != 0) {
		buf_addf(&w->sql, " AND %s %c", sub, f->cmp_submitted);
		w_int(w, " ", "", f->submitted_ns);
	}
	if (f->cmp_next != 0) {
		buf_addf(&w->sql, " AND %s %c", next, f->cmp_next);
		w_int(w, " ", "", f->next_ns);
	}
	if (msg && f->transport != NULL)
		w_txt(w, " AND transport = ", "", f->transport);
	if (t == T_MSG && f->hold >= 0)
		buf_addf(&w->sql, " AND hold = %d", f->hold);
	if (t == T_RETIRED && f->result >= 0)
		buf_addf(&w->sql, " AND success = %d", f->result);
	if (!msg && f->event != NULL)
		w_txt(w, " AND event = ", "", f->event);
}

static void
bind_where(sqlite3_stmt *st, const struct where *w)
{
	for (int i = 0; i < w->n; i++)
		if (w->txt[i] != NULL)
			sqlite3_bind_text(st, i + 1, w->txt[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, w->num[i]);
}

static void
order_limit(const struct queue_filter *f, enum table t, struct buf *sql)
{
	bool msg = t == T_MSG || t == T_RETIRED;
	const char *col = f->sort_queued ? (msg ? "queued" : "submitted")
	    : t == T_MSG || t == T_WEBHOOK ? "next_attempt"
					   : "last_activity";

	buf_addf(sql, " ORDER BY %s %s, id %s", col, f->asc ? "ASC" : "DESC",
	    f->asc ? "ASC" : "DESC");
	if (f->max > 0)
		buf_addf(sql, " LIMIT %lld", (long long)f->max);
}

void
queue_filter_init(struct queue_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->hold = -1;
	f->result = -1;
}

static char *
cs(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return xstrdup(t != NULL ? (const char *)t : "");
}

static int
list_items(struct queue *q, const struct queue_filter *f, enum table t,
    struct queue_item **out, size_t *n_out, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct where w;
	struct buf sql;
	struct queue_item *v = NULL;
	size_t n = 0;
	int rc = -1;

	build_where(f, t, &w);
	buf_init(&sql, 16384);
	buf_addf(&sql,
	    "SELECT id, queued, %s, last_attempt, %s, sender_account,"
	    " CASE WHEN sender_localpart = '' AND sender_domain = '' THEN ''"
	    " ELSE sender_localpart || '@' || sender_domain END,"
	    " recipient_localpart || '@' || recipient_domain, transport,"
	    " ifnull(json_extract(CASE WHEN results = '' THEN '[]' ELSE"
	    " results END, '$[#-1].Error'), ''), attempts FROM %s%s",
	    t == T_MSG ? "next_attempt" : "last_activity",
	    t == T_MSG ? "hold" : "success", t == T_MSG ? "msg" : "retired",
	    w.sql.data);
	order_limit(f, t, &sql);
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		buf_addf(err, "listing: %s", sqlite3_errmsg(db));
		goto out;
	}
	bind_where(st, &w);
	for (;;) {
		struct queue_item *it;
		int sr = step_row(db, st, "listing", err);

		if (sr == -1)
			goto out;
		if (sr == 0)
			break;
		v = xreallocarray(v, n + 1, sizeof(*v));
		it = &v[n++];
		memset(it, 0, sizeof(*it));
		it->id = sqlite3_column_int64(st, 0);
		it->queued_ns = sqlite3_column_int64(st, 1);
		it->next_attempt_ns = sqlite3_column_int64(st, 2);
		it->last_attempt_ns = sqlite3_column_int64(st, 3);
		if (t == T_MSG)
			it->hold = sqlite3_column_int(st, 4) != 0;
		else
			it->success = sqlite3_column_int(st, 4) != 0;
		it->account = cs(st, 5);
		it->sender = cs(st, 6);
		it->recipient = cs(st, 7);
		it->transport = cs(st, 8);
		it->last_error = cs(st, 9);
		it->attempts = sqlite3_column_int64(st, 10);
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	queue_item_list_free(v, n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&w.sql);
	buf_release(&sql);
	return rc;
}

int
queue_admin_list(struct queue *q, const struct queue_filter *f,
    struct queue_item **out, size_t *n_out, struct buf *err)
{
	return list_items(q, f, T_MSG, out, n_out, err);
}

int
queue_retired_list(struct queue *q, const struct queue_filter *f,
    struct queue_item **out, size_t *n_out, struct buf *err)
{
	return list_items(q, f, T_RETIRED, out, n_out, err);
}

void
queue_item_list_free(struct queue_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].account);
		free(v[i].sender);
		free(v[i].recipient);
		free(v[i].transport);
		free(v[i].last_error);
	}
	free(v);
}

/* UPDATE <table> SET <set> for the filter's records; set may use ?1. */
static int
update(struct queue *q, const struct queue_filter *f, enum table t,
    const char *set, const char *txt, int64_t num, bool use_txt,
    int64_t *n_out, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct where w;
	struct buf sql;
	int rc = -1;

	build_where(f, t, &w);
	buf_init(&sql, 16384);
	buf_addf(&sql, "UPDATE %s SET %s WHERE id IN (SELECT id FROM %s",
	    t == T_MSG ? "msg" : "webhook", set, t == T_MSG ? "msg" : "webhook");
	buf_add(&sql, w.sql.data, w.sql.len);
	order_limit(f, t, &sql);
	buf_adds(&sql, ")");
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	/* The filter's parameters are ?1..?n; set uses ?100 (value) and
	 * ?101 (now). */
	if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		buf_addf(err, "update: %s", sqlite3_errmsg(db));
		goto out;
	}
	bind_where(st, &w);
	if (use_txt)
		sqlite3_bind_text(st, 100, txt, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 100, num);
	sqlite3_bind_int64(st, 101, time_wall_ns());
	if (sqlite3_step(st) != SQLITE_DONE) {
		buf_addf(err, "update: %s", sqlite3_errmsg(db));
		goto out;
	}
	*n_out = sqlite3_changes(db);
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&w.sql);
	buf_release(&sql);
	return rc;
}

int
queue_admin_hold(struct queue *q, const struct queue_filter *f, bool hold,
    int64_t *n_out, struct buf *err)
{
	return update(q, f, T_MSG, "hold = ?100", NULL, hold, false, n_out,
	    err);
}

int
queue_admin_schedule(struct queue *q, const struct queue_filter *f,
    bool from_now, int64_t d_ns, int64_t *n_out, struct buf *err)
{
	return update(q, f, T_MSG,
	    from_now ? "next_attempt = ?101 + ?100"
		     : "next_attempt = next_attempt + ?100",
	    NULL, d_ns, false, n_out, err);
}

int
queue_admin_transport(struct queue *q, const struct queue_filter *f,
    const char *transport, int64_t *n_out, struct buf *err)
{
	return update(q, f, T_MSG, "transport = ?100", transport, 0, true,
	    n_out, err);
}

int
queue_admin_requiretls(struct queue *q, const struct queue_filter *f,
    enum queue_requiretls v, int64_t *n_out, struct buf *err)
{
	const char *set = v == QUEUE_REQUIRETLS_YES ? "requiretls = 1 + 0 * ?100"
	    : v == QUEUE_REQUIRETLS_NO		    ? "requiretls = 0 * ?100"
						    : "requiretls = NULL + 0 * ?100";

	return update(q, f, T_MSG, set, NULL, 0, false, n_out, err);
}

int
queue_webhook_schedule(struct queue *q, const struct queue_filter *f,
    bool from_now, int64_t d_ns, int64_t *n_out, struct buf *err)
{
	return update(q, f, T_WEBHOOK,
	    from_now ? "next_attempt = ?101 + ?100"
		     : "next_attempt = next_attempt + ?100",
	    NULL, d_ns, false, n_out, err);
}

/* spec/queue.md 10: append the "delivery canceled by admin" result. */
static int
append_admin_result(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db,
		"UPDATE msg SET results = json_insert(CASE WHEN results"
		" = '' THEN '[]' ELSE results END, '$[#]', json_object("
		"'Start', ?2, 'Duration', 0, 'Success', json('false'),"
		" 'Code', 0, 'Secode', '', 'Error', '')) WHERE id = ?1",
		-1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, time_wall_ns());
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
queue_admin_end(struct queue *q, const struct config *cfg,
    struct store *store, const struct queue_filter *f, bool fail,
    int64_t *n_out, struct buf *err)
{
	struct queue_item *items = NULL;
	size_t nitems = 0;
	sqlite3 *db = NULL;
	struct log_ctx log = log_ctx_init("queue", 0);
	enum queue_outcome o = fail ? QUEUE_OUT_FAILED : QUEUE_OUT_CANCELED;
	struct buf merr;
	int64_t count = 0;
	size_t nerr = 0;
	int rc = -1;

	*n_out = 0;
	if (fail && cfg == NULL) {
		buf_adds(err, "failing messages needs the configuration (dsn "
			      "host name and postmaster)");
		return -1;
	}
	buf_init(&merr, 4096);
	if (queue_admin_list(q, f, &items, &nitems, err) == -1)
		goto out;
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	for (size_t i = 0; i < nitems; i++) {
		struct queue_msg *m = NULL;
		size_t n = 0;
		struct queue_attempt_result ar = { 0 };

		buf_reset(&merr);
		if (queue_int_load(db, "id = ?1", items[i].id, &m, &n) == -1) {
			buf_addf(&merr, "loading: %s", sqlite3_errmsg(db));
		} else if (n == 0) {
			/* Delivered or ended meanwhile: not an error. */
		} else if (append_admin_result(db, m[0].id) == -1) {
			buf_addf(&merr, "recording result: %s",
			    sqlite3_errmsg(db));
		} else {
			ar.permanent = true;
			ar.error = "delivery canceled by admin";
			ar.reply = ar.remote_host = ar.remote_ip = "";
			if (queue_int_finish(q, cfg, store, db, &m[0], o, &ar,
				&log, &merr) == 0)
				count++;
			else if (merr.len == 0)
				buf_adds(&merr, "unknown error");
		}
		if (merr.len > 0) {
			buf_addf(err, "%smessage %lld: %s", nerr > 0 ? "\n" : "",
			    (long long)items[i].id, merr.data);
			nerr++;
		}
		queue_msg_list_free(m, n);
	}
	*n_out = count;
	rc = nerr > 0 ? -1 : 0;
out:
	sqlite3_close(db);
	queue_item_list_free(items, nitems);
	buf_release(&merr);
	return rc;
}

int
queue_admin_fail(struct queue *q, struct store *store,
    const struct queue_filter *f, int64_t *n_out, struct buf *err)
{
	struct config *cfg = config_get();
	int rc = queue_admin_end(q, cfg, store, f, true, n_out, err);

	config_put(cfg);
	return rc;
}

int
queue_admin_drop(struct queue *q, const struct queue_filter *f,
    int64_t *n_out, struct buf *err)
{
	struct config *cfg = config_get();
	int rc = queue_admin_end(q, cfg, NULL, f, false, n_out, err);

	config_put(cfg);
	return rc;
}

int
queue_admin_dump(struct queue *q, int64_t id, int fd, struct buf *err)
{
	sqlite3 *db = NULL;
	struct queue_msg *m = NULL;
	size_t n = 0;
	struct buf path, data;
	int rc = -1;

	buf_init(&path, 4096);
	buf_init(&data, (size_t)1 << 30);
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (queue_int_load(db, "id = ?1", id, &m, &n) == -1 || n == 0) {
		buf_addf(err, "no message with id %lld", (long long)id);
		goto out;
	}
	queue_msg_path(q, id, &path);
	if (io_read_file(path.data, &data, err) == -1)
		goto out;
	if (io_write_all(fd, m[0].msg_prefix, m[0].msg_prefix_len) == -1 ||
	    io_write_all(fd, data.data, data.len) == -1) {
		buf_addf(err, "writing: %s", log_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	queue_msg_list_free(m, n);
	sqlite3_close(db);
	buf_release(&path);
	buf_release(&data);
	return rc;
}

/* ---- hold rules (spec/queue.md 1.4, 10) ---- */

int
queue_hold_rule_list(struct queue *q, struct queue_hold_rule **out,
    size_t *n_out, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct queue_hold_rule *v = NULL;
	size_t n = 0;
	int rc = -1;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db,
		"SELECT id, account, sender_domain, recipient_domain FROM"
		" hold_rule ORDER BY id",
		-1, &st, NULL) != SQLITE_OK) {
		buf_addf(err, "hold rules: %s", sqlite3_errmsg(db));
		goto out;
	}
	for (;;) {
		int sr = step_row(db, st, "hold rules", err);

		if (sr == -1)
			goto out;
		if (sr == 0)
			break;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].id = sqlite3_column_int64(st, 0);
		v[n].account = cs(st, 1);
		v[n].sender_domain = cs(st, 2);
		v[n].recipient_domain = cs(st, 3);
		n++;
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	queue_hold_rule_list_free(v, n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

void
queue_hold_rule_list_free(struct queue_hold_rule *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].account);
		free(v[i].sender_domain);
		free(v[i].recipient_domain);
	}
	free(v);
}

int
queue_hold_rule_add(struct queue *q, const char *account,
    const char *sender_domain, const char *recipient_domain,
    int64_t *id_out, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *a = account != NULL ? account : "";
	const char *sd = sender_domain != NULL ? sender_domain : "";
	const char *rd = recipient_domain != NULL ? recipient_domain : "";
	int rc = -1;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(db,
		"INSERT INTO hold_rule (account, sender_domain,"
		" recipient_domain) VALUES (?1, ?2, ?3)",
		-1, &st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rd, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	if (id_out != NULL)
		*id_out = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	st = NULL;
	/* spec/queue.md 10: matching messages are held at once (AND). */
	if (sqlite3_prepare_v2(db,
		"UPDATE msg SET hold = 1 WHERE (?1 = '' OR sender_account = ?1)"
		" AND (?2 = '' OR sender_domain = ?2) AND (?3 = '' OR"
		" recipient_domain = ?3)",
		-1, &st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rd, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	buf_addf(err, "adding hold rule: %s", sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	goto out;
fail:
	buf_addf(err, "adding hold rule: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int
queue_hold_rule_remove(struct queue *q, int64_t id, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db, "DELETE FROM hold_rule WHERE id = ?1", -1,
		&st, NULL) != SQLITE_OK) {
		buf_addf(err, "removing hold rule: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) == 0) {
		buf_addf(err, "no hold rule with id %lld", (long long)id);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* ---- printing as JSON ---- */

static int
print_json(struct queue *q, const char *sql, int64_t id, struct buf *out,
    struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		buf_addf(err, "print: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		buf_addf(err, "no record with id %lld", (long long)id);
		goto out;
	}
	buf_adds(out, (const char *)sqlite3_column_text(st, 0));
	buf_addc(out, '\n');
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int
queue_retired_print(struct queue *q, int64_t id, struct buf *out,
    struct buf *err)
{
	return print_json(q,
	    "SELECT json_object('ID', id, 'BaseID', base_id, 'Queued',"
	    " strftime('%Y-%m-%dT%H:%M:%SZ', queued / 1000000000, 'unixepoch'),"
	    " 'SenderAccount', sender_account, 'SenderLocalpart',"
	    " sender_localpart, 'SenderDomain', sender_domain, 'FromID',"
	    " from_id, 'RecipientLocalpart', recipient_localpart,"
	    " 'RecipientDomain', recipient_domain, 'RecipientAddress',"
	    " recipient_address, 'Attempts', attempts, 'MaxAttempts',"
	    " max_attempts, 'DialedIPs', dialed_ips, 'LastAttempt',"
	    " strftime('%Y-%m-%dT%H:%M:%SZ', last_attempt / 1000000000,"
	    " 'unixepoch'), 'Results', json(CASE WHEN results = '' THEN '[]'"
	    " ELSE results END), 'Has8bit', json(CASE has8bit WHEN 1 THEN"
	    " 'true' ELSE 'false' END), 'SMTPUTF8', json(CASE smtputf8 WHEN 1"
	    " THEN 'true' ELSE 'false' END), 'Size', size, 'MessageID',"
	    " message_id, 'Subject', subject, 'Transport', transport,"
	    " 'RequireTLS', requiretls, 'FutureReleaseRequest',"
	    " future_release_request, 'Extra', json(extra), 'Success',"
	    " json(CASE success WHEN 1 THEN 'true' ELSE 'false' END),"
	    " 'LastActivity', strftime('%Y-%m-%dT%H:%M:%SZ', last_activity /"
	    " 1000000000, 'unixepoch'), 'KeepUntil',"
	    " strftime('%Y-%m-%dT%H:%M:%SZ', keep_until / 1000000000,"
	    " 'unixepoch')) FROM retired WHERE id = ?1",
	    id, out, err);
}

/* SQL for an integer nanosecond column as RFC 3339 UTC text. */
#define RFC3339(col) \
	"strftime('%Y-%m-%dT%H:%M:%SZ', " col " / 1000000000, 'unixepoch')"

int
queue_webhook_print(struct queue *q, int64_t id, bool retired,
    struct buf *out, struct buf *err)
{
	return print_json(q,
	    /* As queue_retired_print(): booleans, RFC 3339 times. */
	    retired ? "SELECT json_object('ID', id, 'QueueMsgID', queue_msg_id,"
		      " 'Account', account, 'URL', url, 'Event', event,"
		      " 'Payload', json(payload), 'Submitted', " RFC3339("submitted")
		      ", 'Attempts', attempts,"
		      " 'Results', json(results), 'Success', json(CASE success"
		      " WHEN 1 THEN 'true' ELSE 'false' END),"
		      " 'LastActivity', " RFC3339("last_activity") ","
		      " 'KeepUntil', " RFC3339("keep_until") ")"
		      " FROM webhook_retired WHERE id = ?1"
		    : "SELECT json_object('ID', id, 'QueueMsgID', queue_msg_id,"
		      " 'Account', account, 'URL', url, 'Event', event,"
		      " 'Payload', json(payload), 'Submitted', " RFC3339("submitted")
		      ", 'Attempts', attempts,"
		      " 'NextAttempt', " RFC3339("next_attempt") ","
		      " 'Results', json(results))"
		      " FROM webhook WHERE id = ?1",
	    id, out, err);
}

int
queue_webhook_list(struct queue *q, const struct queue_filter *f,
    bool retired, struct queue_webhook_item **out, size_t *n_out,
    struct buf *err)
{
	enum table t = retired ? T_WEBHOOK_RETIRED : T_WEBHOOK;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct where w;
	struct buf sql;
	struct queue_webhook_item *v = NULL;
	size_t n = 0;
	int rc = -1;

	build_where(f, t, &w);
	buf_init(&sql, 16384);
	buf_addf(&sql,
	    "SELECT id, queue_msg_id, submitted, %s, %s, account, event, url,"
	    " ifnull(json_extract(results, '$[#-1].Error'), ''),"
	    " ifnull(json_extract(results, '$[#-1].Start'), 0) FROM %s%s",
	    retired ? "last_activity" : "next_attempt",
	    retired ? "success" : "0", retired ? "webhook_retired" : "webhook",
	    w.sql.data);
	order_limit(f, t, &sql);
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		buf_addf(err, "listing webhooks: %s", sqlite3_errmsg(db));
		goto out;
	}
	bind_where(st, &w);
	for (;;) {
		struct queue_webhook_item *it;
		int sr = step_row(db, st, "listing webhooks", err);

		if (sr == -1)
			goto out;
		if (sr == 0)
			break;
		v = xreallocarray(v, n + 1, sizeof(*v));
		it = &v[n++];
		memset(it, 0, sizeof(*it));
		it->id = sqlite3_column_int64(st, 0);
		it->queue_msg_id = sqlite3_column_int64(st, 1);
		it->submitted_ns = sqlite3_column_int64(st, 2);
		it->next_attempt_ns = sqlite3_column_int64(st, 3);
		it->success = sqlite3_column_int(st, 4) != 0;
		it->account = cs(st, 5);
		it->event = cs(st, 6);
		it->url = cs(st, 7);
		it->last_error = cs(st, 8);
		/* The Start of the newest attempt result (ns). */
		it->last_attempt_ns = sqlite3_column_int64(st, 9);
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	queue_webhook_item_list_free(v, n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&w.sql);
	buf_release(&sql);
	return rc;
}

void
queue_webhook_item_list_free(struct queue_webhook_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].account);
		free(v[i].event);
		free(v[i].url);
		free(v[i].last_error);
	}
	free(v);
}

/* Retire one pending webhook as canceled, in one transaction. */
static int
cancel_one(sqlite3 *db, const struct config *cfg,
    const struct queue_webhook_item *it, bool *done_out)
{
	const struct config_account *ca = cfg != NULL ?
	    config_account_find(cfg, it->account) : NULL;
	/* spec/queue.md 14: kept only when the account keeps webhooks, for
	 * its period; as for messages (9), a week when the account is not
	 * known. */
	int64_t keep = ca != NULL ? ca->keep_retired_webhook_period
				  : QUEUE_RETIRED_DEFAULT_KEEP;
	int64_t now = time_wall_ns();
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*done_out = false;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (keep > 0) {
		if (sqlite3_prepare_v2(db,
			"INSERT INTO webhook_retired (id, queue_msg_id, from_id,"
			" message_id, subject, extra, account, url,"
			" authorization, is_incoming, event, payload, submitted,"
			" attempts, results, success, last_activity, keep_until)"
			" SELECT id, queue_msg_id, from_id, message_id, subject,"
			" extra, account, url, authorization, is_incoming, event,"
			" payload, submitted, attempts, json_insert(results,"
			" '$[#]', json_object('Start', ?2, 'Duration', 0,"
			" 'Success', json('false'), 'Code', 0,"
			" 'Error', 'canceled by admin')), 0, ?2, ?3"
			" FROM webhook WHERE id = ?1",
			-1, &st, NULL) != SQLITE_OK)
			goto rollback;
		sqlite3_bind_int64(st, 1, it->id);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, now + keep);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto rollback;
		sqlite3_finalize(st);
		st = NULL;
	}
	if (sqlite3_prepare_v2(db, "DELETE FROM webhook WHERE id = ?1", -1, &st,
		NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(st, 1, it->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	*done_out = sqlite3_changes(db) > 0;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	return 0;
rollback:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	*done_out = false;
	return rc;
}

int
queue_webhook_cancel_cfg(struct queue *q, const struct config *cfg,
    const struct queue_filter *f, int64_t *n_out, struct buf *err)
{
	struct queue_webhook_item *v = NULL;
	size_t n = 0, nerr = 0;
	sqlite3 *db = NULL;
	int64_t count = 0;
	int rc = -1;

	*n_out = 0;
	if (queue_webhook_list(q, f, false, &v, &n, err) == -1)
		return -1;
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		bool done = false;

		if (cancel_one(db, cfg, &v[i], &done) == -1) {
			buf_addf(err, "%swebhook %lld: %s", nerr > 0 ? "\n" : "",
			    (long long)v[i].id, sqlite3_errmsg(db));
			nerr++;
		} else if (done) {
			count++;
		}
	}
	*n_out = count;
	rc = nerr > 0 ? -1 : 0;
out:
	sqlite3_close(db);
	queue_webhook_item_list_free(v, n);
	return rc;
}

int
queue_webhook_cancel(struct queue *q, const struct queue_filter *f,
    int64_t *n_out, struct buf *err)
{
	struct config *cfg = config_get();
	int rc = queue_webhook_cancel_cfg(q, cfg, f, n_out, err);

	config_put(cfg);
	return rc;
}
