/*
 * queue_retired.c: the end of delivery attempts and the retired history
 * (spec/queue.md 4.1 delayed/failed DSN moments, 8 DSN delivery into the
 * sender's account, 9 retired messages with retention). DSNs are composed
 * by queue_dsn.c and stored directly in the account (RFC 3464 DSN flag).
 *
 * Threads: delivery threads and admin callers, each with its own sqlite3
 * handle; never the reactor (disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

static void
read_header(const char *path, struct buf *out)
{
	char chunk[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n <= 0 || buf_add(out, chunk, (size_t)n) == -1)
			break;
		if (message_header_len(span_of_buf(out)) < out->len)
			break;
	}
	close(fd);
	if (buf_failed(out))
		buf_truncate(out, 0);
	buf_truncate(out, message_header_len(span_of_buf(out)));
}

/* spec/queue.md 8: compose and store a DSN in the sender's account (or
 * the postmaster's when the account is gone). */
static int
send_dsn(struct queue *q, struct store *store, const struct config *cfg,
    const struct queue_msg *m, bool delayed,
    const struct queue_attempt_result *r, struct buf *err)
{
	struct queue_dsn d = { 0 };
	struct queue_dsn_rcpt dr = { 0 };
	struct buf hdr, msg, rcpt, sender, status, path;
	struct store *own = NULL;
	struct store_account *a = NULL;
	struct store_err serr = { 0 };
	struct store_add add = { 0 };
	struct store_msg_fields mf = { 0 };
	struct store_added added;
	const char *mailbox = "Inbox";
	const char *mbs[1];
	int rc = -1;

	buf_init(&hdr, QUEUE_HEADER_MAX);
	buf_init(&msg, 4 * QUEUE_HEADER_MAX);
	buf_init(&rcpt, 1024);
	buf_init(&sender, 1024);
	buf_init(&status, 64);
	buf_init(&path, 4096);
	queue_msg_path(q, m->id, &path);
	read_header(path.data, &hdr);
	buf_addf(&rcpt, "%s@%s", m->recipient_localpart, m->recipient_domain);
	buf_addf(&sender, "%s@%s", m->sender_localpart, m->sender_domain);
	if (r->secode[0] != '\0')
		buf_addf(&status, "%c.%s", delayed ? '4' : '5', r->secode);
	else
		buf_adds(&status, delayed ? "4.0.0" : "5.0.0");
	dr.recipient = rcpt.data;
	dr.status = status.data;
	dr.error = r->error != NULL ? r->error : "";
	dr.reply = r->reply != NULL ? r->reply : "";
	dr.remote_host = r->remote_host != NULL ? r->remote_host : "";
	dr.remote_ip = r->remote_ip != NULL ? r->remote_ip : "";
	dr.last_attempt_ns = m->last_attempt_ns != 0 ? m->last_attempt_ns
						     : time_wall_ns();
	if (delayed)
		dr.will_retry_until_ns = dr.last_attempt_ns +
		    28 * 3600 * NS_PER_SEC;
	d.delayed = delayed;
	d.hostname = cfg->st->hostname;
	d.to = sender.data;
	d.message_id = m->message_id;
	d.now_ns = time_wall_ns();
	d.arrival_ns = m->queued_ns;
	d.future_release_request = m->future_release_request;
	/* spec/queue.md 8: the RFC 6533 variant for SMTPUTF8 originals. */
	d.utf8 = m->smtputf8;
	d.rcpts = &dr;
	d.nrcpts = 1;
	d.orig_header = span_of_buf(&hdr);
	buf_addf(&msg, "Return-Path: <postmaster@%s>\r\n", cfg->st->hostname);
	buf_addf(&msg, "Delivered-To: <%s>\r\n", sender.data);
	if (queue_dsn_compose(&d, &msg) == -1) {
		buf_adds(err, "dsn too large");
		goto out;
	}
	if (store == NULL) {
		own = store_new(queue_datadir(q), &serr);
		if (own == NULL) {
			buf_addf(err, "opening store: %s", serr.text);
			goto out;
		}
		store = own;
	}
	if (store_account_get(store, m->sender_account, false, &a, &serr) == -1) {
		const char *pm = cfg->st->postmaster.account;

		mailbox = cfg->st->postmaster.mailbox != NULL
		    ? cfg->st->postmaster.mailbox
		    : "Inbox";
		if (pm == NULL ||
		    store_account_get(store, pm, false, &a, &serr) == -1) {
			buf_addf(err, "dsn: no account: %s", serr.text);
			goto out;
		}
	}
	mf.dsn = true;
	mf.message_id = m->message_id;
	add.data = msg.data;
	add.len = msg.len;
	add.create_mailbox = true;
	add.fields = &mf;
	mbs[0] = mailbox;
	if (store_deliver(a, &add, mbs, 1, &added, &serr) == -1) {
		buf_addf(err, "storing dsn: %s", serr.text);
		goto out;
	}
	rc = 0;
out:
	store_account_put(a);
	store_free(own);
	buf_release(&hdr);
	buf_release(&msg);
	buf_release(&rcpt);
	buf_release(&sender);
	buf_release(&status);
	buf_release(&path);
	return rc;
}

static const char complete_sql[] =
    "UPDATE msg SET results = json_set(CASE WHEN results = ''"
    " THEN '[{}]' ELSE results END,"
    " '$[#-1].Duration', ?2 - ifnull(json_extract(results,"
    " '$[#-1].Start'), ?2), '$[#-1].Success', json(?3),"
    " '$[#-1].Code', ?4, '$[#-1].Secode', ?5, '$[#-1].Error', ?6)"
    " WHERE id = ?1";

/* Complete the last attempt result of m; c (may be NULL) keeps the
 * statement. */
static int
complete_result(struct queue_stmts *c, sqlite3 *db,
    const struct queue_msg *m, const struct queue_attempt_result *r,
    int64_t now)
{
	sqlite3_stmt *st = queue_stmts_get(c, db, complete_sql);
	int rc = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, m->id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, r->success ? "true" : "false", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->code);
	sqlite3_bind_text(st, 5, r->secode, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->error != NULL ? r->error : "", -1,
	    SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	queue_stmts_put(c, st);
	return rc;
}

static const char retire_copy_sql[] =
    "INSERT OR REPLACE INTO retired (id, base_id, queued,"
    " sender_account, sender_localpart, sender_domain,"
    " from_id, recipient_localpart, recipient_domain,"
    " recipient_address, attempts, max_attempts, dialed_ips,"
    " last_attempt, results, has8bit, smtputf8,"
    " is_dmarc_report, is_tls_report, size, message_id,"
    " subject, transport, requiretls, future_release_request,"
    " extra, success, last_activity, keep_until)"
    " SELECT id, base_id, queued, sender_account,"
    " sender_localpart, sender_domain, from_id,"
    " recipient_localpart, recipient_domain,"
    " recipient_localpart || '@' || recipient_domain_str,"
    " attempts, max_attempts, dialed_ips, last_attempt,"
    " results, has8bit, smtputf8, is_dmarc_report,"
    " is_tls_report, size, message_id, subject, transport,"
    " requiretls, future_release_request,"
    " ifnull((SELECT json_group_object(key, value) FROM"
    " msg_extra WHERE msg_id = msg.id), '{}'), ?2, ?3, ?4"
    " FROM msg WHERE id = ?1";
static const char retire_delete_sql[] = "DELETE FROM msg WHERE id = ?1";

/* spec/queue.md 9: copy m into retired (when the account keeps
 * history) and delete its row, in the caller's transaction; c (may be
 * NULL) keeps the statements. */
static int
retire_rows(struct queue_stmts *c, sqlite3 *db, const struct config *cfg,
    const struct queue_msg *m, bool success, int64_t now)
{
	const struct config_account *ca = cfg != NULL ?
	    config_account_find(cfg, m->sender_account) : NULL;
	/* spec/queue.md 9: the account's period; 1 week when the account
	 * (or the whole configuration) is not known. */
	int64_t keep = ca != NULL ? ca->keep_retired_message_period
				  : QUEUE_RETIRED_DEFAULT_KEEP;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (keep > 0) {
		st = queue_stmts_get(c, db, retire_copy_sql);
		if (st == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, m->id);
		sqlite3_bind_int(st, 2, success);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, now + keep);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		queue_stmts_put(c, st);
	}
	st = queue_stmts_get(c, db, retire_delete_sql);
	if (st == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, m->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	rc = 0;
out:
	queue_stmts_put(c, st);
	return rc;
}

/* retire_rows() in its own transaction, then remove the file. */
static int
retire(struct queue *q, sqlite3 *db, const struct config *cfg,
    const struct queue_msg *m, bool success, int64_t now)
{
	struct buf path;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (retire_rows(NULL, db, cfg, m, success, now) == -1 ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	buf_init(&path, 4096);
	queue_msg_path(q, m->id, &path);
	(void)unlink(path.data);
	buf_release(&path);
	return 0;
}

int
queue_int_retire_delivered(struct queue_stmts *c, sqlite3 *db,
    const struct config *cfg, const struct queue_msg *m,
    const struct queue_attempt_result *r, int64_t now)
{
	if (complete_result(c, db, m, r, now) == -1)
		return -1;
	if (cfg != NULL)
		(void)queue_int_webhook_event(db, cfg, m, "delivered", r,
		    false);
	return retire_rows(c, db, cfg, m, true, now);
}

int
queue_int_finish(struct queue *q, const struct config *cfg,
    struct store *store, sqlite3 *db, const struct queue_msg *m,
    enum queue_outcome o, const struct queue_attempt_result *r,
    struct log_ctx *log, struct buf *err)
{
	int64_t now = time_wall_ns();
	int64_t max = m->max_attempts > 0 ? m->max_attempts
					  : QUEUE_MAX_ATTEMPTS_DEFAULT;
	bool null_sender = m->sender_localpart[0] == '\0' &&
	    m->sender_domain[0] == '\0';
	const char *event = NULL;
	int suppressing = 0, rc = -1;

	if (cfg == NULL && o != QUEUE_OUT_CANCELED) {
		/* DSNs need the host name and postmaster. */
		buf_adds(err, "no configuration");
		return -1;
	}
	if (complete_result(NULL, db, m, r, now) == -1) {
		buf_addf(err, "recording result: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (o == QUEUE_OUT_TEMP && m->attempts >= max)
		o = QUEUE_OUT_FAILED; /* spec/queue.md 4.1: final attempt */
	switch (o) {
	case QUEUE_OUT_TEMP:
		/* spec/queue.md 4.1: delayed DSN after the 5th attempt when
		 * more follow (records that end at the 5th, as reports,
		 * get none). */
		if (m->attempts == QUEUE_DELAYED_DSN_ATTEMPT &&
		    max > QUEUE_DELAYED_DSN_ATTEMPT && !m->is_dmarc_report &&
		    !null_sender && send_dsn(q, store, cfg, m, true, r, err) == -1)
			log_error(log, "delivering delayed dsn", LF_ERR(err->data),
			    LF_I64("queueid", m->id));
		(void)queue_int_webhook_event(db, cfg, m, "delayed", r, false);
		rc = 0;
		goto out;
	case QUEUE_OUT_DELIVERED:
		event = "delivered";
		break;
	case QUEUE_OUT_FAILED:
		event = "failed";
		suppressing = queue_int_suppress_auto(db, m, r);
		break;
	case QUEUE_OUT_SUPPRESSED:
		event = "suppressed";
		break;
	case QUEUE_OUT_CANCELED:
		event = "canceled";
		break;
	}
	if ((o == QUEUE_OUT_FAILED || o == QUEUE_OUT_SUPPRESSED) &&
	    !null_sender && send_dsn(q, store, cfg, m, false, r, err) == -1)
		log_error(log, "delivering failure dsn", LF_ERR(err->data),
		    LF_I64("queueid", m->id));
	if (cfg != NULL)
		(void)queue_int_webhook_event(db, cfg, m, event, r,
		    suppressing == 1);
	if (retire(q, db, cfg, m, o == QUEUE_OUT_DELIVERED, now) == -1) {
		buf_addf(err, "retiring: %s", sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
queue_retired_cleanup(struct queue *q, int64_t now_ns, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db,
		"DELETE FROM retired WHERE keep_until < ?1;", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now_ns);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db,
		"DELETE FROM webhook_retired WHERE keep_until < ?1;", -1, &st,
		NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now_ns);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	rc = 0;
	goto out;
fail:
	buf_addf(err, "retired cleanup: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
