/*
 * queue_suppress.c: per-account suppression list (spec/queue.md 11):
 * base addresses, automatic additions after permanent failures with
 * certain SMTP codes (RFC 5321 4.2.3, RFC 3463), lookups at delivery and
 * submission time, and manual management. Each call uses its own or the
 * caller's sqlite3 handle on the calling thread; never the reactor.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

void
queue_suppress_base(const char *localpart, const char *domain,
    struct buf *out)
{
	size_t n = strcspn(localpart, "+");

	if (strcspn(localpart, "-") < n)
		n = strcspn(localpart, "-");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)localpart[i];

		if (c == '.')
			continue;
		buf_addc(out, (char)tolower(c));
	}
	buf_addf(out, "@%s", domain);
}

static int
split(const char *address, struct buf *base)
{
	const char *at = strrchr(address, '@');
	char *lp;

	if (at == NULL || at == address || at[1] == '\0')
		return -1;
	lp = xstrndup(address, (size_t)(at - address));
	queue_suppress_base(lp, at + 1, base);
	free(lp);
	return 0;
}

static char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return xstrdup(t != NULL ? (const char *)t : "");
}

static void
row(sqlite3_stmt *st, struct queue_suppression *s)
{
	s->id = sqlite3_column_int64(st, 0);
	s->created_ns = sqlite3_column_int64(st, 1);
	s->account = col(st, 2);
	s->base_address = col(st, 3);
	s->original_address = col(st, 4);
	s->manual = sqlite3_column_int(st, 5) != 0;
	s->reason = col(st, 6);
}

#define SUPP_COLS \
	"id, created, account, base_address, original_address, manual, reason"

static int
lookup_db(sqlite3 *db, const char *account, const char *base,
    struct queue_suppression *out)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (sqlite3_prepare_v2(db,
		"SELECT " SUPP_COLS " FROM suppression WHERE (?1 = '' OR"
		" account = ?1) AND base_address = ?2 ORDER BY id LIMIT 1",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	/* spec/queue.md 11, as mox: account "" matches any account. */
	sqlite3_bind_text(st, 1, account != NULL ? account : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 2, base, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		if (out != NULL)
			row(st, out);
		rc = 1;
	} else if (r == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

static int
add_db(sqlite3 *db, const char *account, const char *base,
    const char *orig, bool manual, const char *reason)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db,
		"INSERT OR IGNORE INTO suppression (created, account,"
		" base_address, original_address, manual, reason) VALUES (?1,"
		" ?2, ?3, ?4, ?5, ?6)",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, time_wall_ns());
	sqlite3_bind_text(st, 2, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, base, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, orig, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, manual);
	sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(db) > 0 ? 1 : 0;
	sqlite3_finalize(st);
	return rc;
}

bool
queue_int_suppressed(sqlite3 *db, const struct queue_msg *m)
{
	struct buf base;
	bool r;

	buf_init(&base, 1024);
	queue_suppress_base(m->recipient_localpart, m->recipient_domain, &base);
	r = lookup_db(db, m->sender_account, base.data, NULL) == 1;
	buf_release(&base);
	return r;
}

int
queue_int_suppress_auto(sqlite3 *db, const struct queue_msg *m,
    const struct queue_attempt_result *r)
{
	return queue_int_suppress_auto_src(db, m, r, "queue");
}

int
queue_int_suppress_auto_src(sqlite3 *db, const struct queue_msg *m,
    const struct queue_attempt_result *r, const char *source)
{
	static const char *const ecodes[] = { "1.1", "1.2", "1.3", "1.6",
		"2.1", "7.1" };
	struct buf base, orig, reason;
	bool add = false;
	int rc = 0;

	if (r->code < 500 || r->code > 599)
		return 0; /* only failures with a remote SMTP code */
	buf_init(&base, 1024);
	buf_init(&orig, 1024);
	buf_init(&reason, 1024);
	if (r->code == 521 || r->code == 550 || r->code == 551 ||
	    r->code == 553 || r->code == 556)
		add = true;
	for (size_t i = 0; i < sizeof(ecodes) / sizeof(ecodes[0]); i++)
		if (strcmp(r->secode, ecodes[i]) == 0)
			add = true;
	if (add)
		buf_addf(&reason, "delivery failure from %s with smtp code "
				  "%d, enhanced code \"%s\"",
		    source, r->code, r->secode);
	else {
		/* Two most recent other retired messages to the same
		 * address both failed. */
		sqlite3_stmt *st = NULL;
		int failed = 0, n = 0;

		if (sqlite3_prepare_v2(db,
			"SELECT success FROM retired WHERE recipient_address ="
			" ?1 || '@' || ?2 AND id != ?3 ORDER BY last_activity"
			" DESC LIMIT 2",
			-1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, m->recipient_localpart, -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(st, 2, m->recipient_domain, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, m->id);
			while (sqlite3_step(st) == SQLITE_ROW) {
				n++;
				if (sqlite3_column_int(st, 0) == 0)
					failed++;
			}
		}
		sqlite3_finalize(st);
		if (n == 2 && failed == 2) {
			add = true;
			buf_addf(&reason, "delivery failure from %s and three "
					  "consecutive failures",
			    source);
		}
	}
	if (add) {
		queue_suppress_base(m->recipient_localpart, m->recipient_domain,
		    &base);
		buf_addf(&orig, "%s@%s", m->recipient_localpart,
		    m->recipient_domain);
		rc = add_db(db, m->sender_account, base.data, orig.data, false,
		    reason.data);
	}
	buf_release(&base);
	buf_release(&orig);
	buf_release(&reason);
	return rc;
}

int
queue_suppress_lookup(struct queue *q, const char *account,
    const char *address, struct queue_suppression *out, struct buf *err)
{
	sqlite3 *db = NULL;
	struct buf base;
	int rc = -1;

	buf_init(&base, 1024);
	if (split(address, &base) == -1) {
		buf_addf(err, "bad address %s", address);
		goto out;
	}
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	rc = lookup_db(db, account, base.data, out);
	if (rc == -1)
		buf_addf(err, "suppression lookup: %s", sqlite3_errmsg(db));
out:
	sqlite3_close(db);
	buf_release(&base);
	return rc;
}

int
queue_suppress_add(struct queue *q, const char *account,
    const char *address, bool manual, const char *reason, struct buf *err)
{
	sqlite3 *db = NULL;
	struct buf base;
	int rc = -1;

	buf_init(&base, 1024);
	if (split(address, &base) == -1) {
		buf_addf(err, "bad address %s", address);
		goto out;
	}
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (add_db(db, account, base.data, address, manual, reason) == -1) {
		buf_addf(err, "adding suppression: %s", sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_close(db);
	buf_release(&base);
	return rc;
}

int
queue_suppress_remove(struct queue *q, const char *account,
    const char *address, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct buf base;
	int rc = -1;

	buf_init(&base, 1024);
	if (split(address, &base) == -1) {
		buf_addf(err, "bad address %s", address);
		goto out;
	}
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (sqlite3_prepare_v2(db,
		"DELETE FROM suppression WHERE account = ?1 AND base_address = ?2",
		-1, &st, NULL) != SQLITE_OK ||
	    (sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC),
		sqlite3_bind_text(st, 2, base.data, -1, SQLITE_STATIC),
		sqlite3_step(st)) != SQLITE_DONE) {
		buf_addf(err, "removing suppression: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_changes(db) == 0) {
		buf_adds(err, "not present");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&base);
	return rc;
}

int
queue_suppress_list(struct queue *q, const char *account,
    struct queue_suppression **out, size_t *n_out, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct queue_suppression *v = NULL;
	size_t n = 0;
	int rc = -1;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db,
		"SELECT " SUPP_COLS " FROM suppression WHERE ?1 = '' OR"
		" account = ?1 ORDER BY id",
		-1, &st, NULL) != SQLITE_OK) {
		buf_addf(err, "listing suppressions: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, account != NULL ? account : "", -1,
	    SQLITE_STATIC);
	for (;;) {
		int r = sqlite3_step(st);

		if (r == SQLITE_DONE)
			break;
		if (r != SQLITE_ROW) {
			/* An error midway is not the end of the list. */
			buf_addf(err, "listing suppressions: %s",
			    sqlite3_errmsg(db));
			goto out;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		row(st, &v[n++]);
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	queue_suppression_list_free(v, n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

void
queue_suppression_list_free(struct queue_suppression *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].account);
		free(v[i].base_address);
		free(v[i].original_address);
		free(v[i].reason);
	}
	free(v);
}
