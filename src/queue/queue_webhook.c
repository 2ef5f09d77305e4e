/*
 * queue_webhook.c: outgoing webhook events of the queue (spec/queue.md
 * 14): recorded in the webhook table with their JSON payload, keeping only
 * the newest pending hook per queue message; admin listing, scheduling,
 * cancelling and printing. Sending the HTTP requests belongs to the web
 * server. Threads: any but the reactor, own or caller's sqlite3 handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

static bool
wants(const struct config_webhook *w, const char *event)
{
	if (w == NULL || w->url == NULL || w->url[0] == '\0')
		return false;
	if (w->events.n == 0)
		return true;
	for (size_t i = 0; i < w->events.n; i++)
		if (strcmp(w->events.v[i], event) == 0)
			return true;
	return false;
}

int
queue_int_webhook_event(sqlite3 *db, const struct config *cfg,
    const struct queue_msg *m, const char *event,
    const struct queue_attempt_result *r, bool suppressing)
{
	return queue_int_webhook_event_dsn(db, cfg, m, event, r, suppressing,
	    false, NULL);
}

int
queue_int_webhook_event_dsn(sqlite3 *db, const struct config *cfg,
    const struct queue_msg *m, const char *event,
    const struct queue_attempt_result *r, bool suppressing, bool dsn,
    const char *extra_json)
{
	const struct config_account *ca =
	    config_account_find(cfg, m->sender_account);
	sqlite3_stmt *st = NULL;
	int64_t now = time_wall_ns(), keep, new_id;
	struct buf ecode;
	/* Inside the caller's transaction a savepoint, else our own. */
	bool own = sqlite3_get_autocommit(db) != 0;
	int rc = -1;

	if (ca == NULL || !wants(ca->outgoing_webhook, event))
		return 0;
	keep = ca->keep_retired_webhook_period;
	buf_init(&ecode, 64);
	if (r->secode[0] != '\0')
		buf_addf(&ecode, "%c.%s", r->code >= 500 ? '5'
					 : r->code >= 400 ? '4' : '2',
		    r->secode);
	if (sqlite3_exec(db, own ? "BEGIN IMMEDIATE" : "SAVEPOINT webhook_event",
		NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(db,
		"INSERT INTO webhook (queue_msg_id, from_id, message_id, subject,"
		" extra, account, url, authorization, event, payload, submitted,"
		" next_attempt) SELECT ?1, ?2, ?3, ?4, e.x, ?5, ?6, ?7, ?8,"
		" json_object('Version', 0, 'Event', ?8, 'DSN', json(?14),"
		" 'Suppressing', json(?9), 'QueueMsgID', ?1, 'FromID', ?2,"
		" 'MessageID', ?3, 'Subject', ?4, 'WebhookQueued',"
		" strftime('%Y-%m-%dT%H:%M:%SZ', ?10 / 1000000000, 'unixepoch'),"
		" 'SMTPCode', ?11, 'SMTPEnhancedCode', ?12, 'Error', ?13,"
		" 'Extra', json(e.x)), ?10, ?10 FROM (SELECT ifnull(?15,"
		" ifnull((SELECT json_group_object(key, value) FROM msg_extra"
		" WHERE msg_id = ?1), '{}')) AS x) e",
		-1, &st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(st, 1, m->id);
	sqlite3_bind_text(st, 2, m->from_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->sender_account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ca->outgoing_webhook->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, ca->outgoing_webhook->authorization != NULL
		? ca->outgoing_webhook->authorization
		: "",
	    -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, suppressing ? "true" : "false", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, now);
	sqlite3_bind_int(st, 11, r->code);
	sqlite3_bind_text(st, 12, ecode.data, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, r->error != NULL ? r->error : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 14, dsn ? "true" : "false", -1, SQLITE_STATIC);
	if (extra_json != NULL)
		sqlite3_bind_text(st, 15, extra_json, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	new_id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	st = NULL;
	/* Only the newest pending hook per message: older pending ones
	 * are retired, superseded by the new one (spec/queue.md 14). */
	if (sqlite3_prepare_v2(db,
		"INSERT INTO webhook_retired (id, queue_msg_id, from_id,"
		" message_id, subject, extra, account, url, authorization,"
		" is_incoming, event, payload, submitted, attempts, results,"
		" success, last_activity, keep_until, superseded_by)"
		" SELECT id, queue_msg_id, from_id, message_id, subject, extra,"
		" account, url, authorization, is_incoming, event, payload,"
		" submitted, attempts, results, 0, ?2, ?2 + ?3, ?4 FROM webhook"
		" WHERE queue_msg_id = ?1 AND id != ?4 AND ?3 > 0",
		-1, &st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(st, 1, m->id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, keep);
	sqlite3_bind_int64(st, 4, new_id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db,
		"DELETE FROM webhook WHERE queue_msg_id = ?1 AND id != ?2", -1,
		&st, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(st, 1, m->id);
	sqlite3_bind_int64(st, 2, new_id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto rollback;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(db, own ? "COMMIT" : "RELEASE webhook_event", NULL,
		NULL, NULL) != SQLITE_OK)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	sqlite3_exec(db, own ? "ROLLBACK"
			     : "ROLLBACK TO webhook_event; RELEASE webhook_event",
	    NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	buf_release(&ecode);
	return rc;
}
