/*
 * queue_store.c: the durable queue (spec/queue.md 1.1, 1.4, 1.5 and 2):
 * records in queue/index.db, message files in queue/msg/<id>. The
 * caller's message file is fsynced, rows are inserted in one write
 * transaction, files are linked and the directory fsynced before the
 * commit, so a committed row always has its file; a crash before the
 * commit leaves at most an unreferenced file.
 *
 * Threads: any but the reactor; each call opens its own SQLite
 * connection (STYLE.md 8: a sqlite3 handle stays in one thread).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

#define QUEUE_PATH_MAX 4096

struct queue {
	char *datadir;
	char *dir;    /* <datadir>/queue */
	char *msgdir; /* <datadir>/queue/msg */
	char *db;     /* <datadir>/queue/index.db */
};

static const char queue_schema[] =
    "CREATE TABLE IF NOT EXISTS msg ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " base_id INTEGER NOT NULL DEFAULT 0,"
    " queued INTEGER NOT NULL,"
    " hold INTEGER NOT NULL DEFAULT 0,"
    " sender_account TEXT NOT NULL,"
    " sender_localpart TEXT NOT NULL, sender_domain TEXT NOT NULL,"
    " sender_domain_str TEXT NOT NULL,"
    " from_id TEXT NOT NULL DEFAULT '',"
    " recipient_localpart TEXT NOT NULL, recipient_domain TEXT NOT NULL,"
    " recipient_domain_str TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL DEFAULT 0,"
    " dialed_ips TEXT NOT NULL DEFAULT '',"
    " next_attempt INTEGER NOT NULL,"
    " last_attempt INTEGER,"
    " results TEXT NOT NULL DEFAULT '',"
    " has8bit INTEGER NOT NULL, smtputf8 INTEGER NOT NULL,"
    " is_dmarc_report INTEGER NOT NULL DEFAULT 0,"
    " is_tls_report INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL,"
    " message_id TEXT NOT NULL DEFAULT '',"
    " msg_prefix BLOB,"
    " subject TEXT NOT NULL DEFAULT '',"
    " dsn_utf8 BLOB,"
    " transport TEXT NOT NULL DEFAULT '',"
    " requiretls INTEGER,"
    " future_release_request TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS msg_next ON msg(next_attempt);"
    "CREATE INDEX IF NOT EXISTS msg_fromid ON msg(from_id);"
    "CREATE TABLE IF NOT EXISTS msg_extra ("
    " msg_id INTEGER NOT NULL REFERENCES msg(id) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (msg_id, key));"
    "CREATE TABLE IF NOT EXISTS hold_rule ("
    " id INTEGER PRIMARY KEY,"
    " account TEXT NOT NULL DEFAULT '',"
    " sender_domain TEXT NOT NULL DEFAULT '',"
    " recipient_domain TEXT NOT NULL DEFAULT '');"
    /* spec/queue.md 1.3: retired copies; results and extra as JSON. */
    "CREATE TABLE IF NOT EXISTS retired ("
    " id INTEGER PRIMARY KEY,"
    " base_id INTEGER NOT NULL DEFAULT 0,"
    " queued INTEGER NOT NULL,"
    " sender_account TEXT NOT NULL,"
    " sender_localpart TEXT NOT NULL, sender_domain TEXT NOT NULL,"
    " from_id TEXT NOT NULL DEFAULT '',"
    " recipient_localpart TEXT NOT NULL, recipient_domain TEXT NOT NULL,"
    " recipient_address TEXT NOT NULL,"
    " attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL,"
    " dialed_ips TEXT NOT NULL DEFAULT '',"
    " last_attempt INTEGER,"
    " results TEXT NOT NULL DEFAULT '',"
    " has8bit INTEGER NOT NULL, smtputf8 INTEGER NOT NULL,"
    " is_dmarc_report INTEGER NOT NULL, is_tls_report INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " message_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " transport TEXT NOT NULL, requiretls INTEGER,"
    " future_release_request TEXT NOT NULL,"
    " extra TEXT NOT NULL DEFAULT '{}',"
    " success INTEGER NOT NULL,"
    " last_activity INTEGER NOT NULL,"
    " keep_until INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS retired_fromid ON retired(from_id);"
    "CREATE INDEX IF NOT EXISTS retired_rcpt ON retired(recipient_address,"
    " last_activity);"
    /* spec/queue.md 11 */
    "CREATE TABLE IF NOT EXISTS suppression ("
    " id INTEGER PRIMARY KEY,"
    " created INTEGER NOT NULL,"
    " account TEXT NOT NULL,"
    " base_address TEXT NOT NULL,"
    " original_address TEXT NOT NULL,"
    " manual INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " UNIQUE (account, base_address));"
    /* spec/queue.md 14: pending and retired webhooks; payload JSON. */
    "CREATE TABLE IF NOT EXISTS webhook ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue_msg_id INTEGER NOT NULL DEFAULT 0,"
    " from_id TEXT NOT NULL DEFAULT '',"
    " message_id TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '',"
    " extra TEXT NOT NULL DEFAULT '{}',"
    " account TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " authorization TEXT NOT NULL DEFAULT '',"
    " is_incoming INTEGER NOT NULL DEFAULT 0,"
    " event TEXT NOT NULL DEFAULT '',"
    " payload TEXT NOT NULL,"
    " submitted INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL,"
    " results TEXT NOT NULL DEFAULT '[]');"
    "CREATE TABLE IF NOT EXISTS webhook_retired ("
    " id INTEGER PRIMARY KEY,"
    " queue_msg_id INTEGER NOT NULL, from_id TEXT NOT NULL,"
    " message_id TEXT NOT NULL, subject TEXT NOT NULL, extra TEXT NOT NULL,"
    " account TEXT NOT NULL, url TEXT NOT NULL,"
    " authorization TEXT NOT NULL, is_incoming INTEGER NOT NULL,"
    " event TEXT NOT NULL, payload TEXT NOT NULL,"
    " submitted INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " results TEXT NOT NULL,"
    " success INTEGER NOT NULL, last_activity INTEGER NOT NULL,"
    " keep_until INTEGER NOT NULL, superseded_by INTEGER NOT NULL DEFAULT 0);"
    "PRAGMA user_version = 1;";

int
queue_db_open(const struct queue *q, sqlite3 **out, struct buf *err)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(q->db, &db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		buf_addf(err, "opening %s: %s", q->db,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, QUEUE_BUSY_MS);
	if (sqlite3_exec(db,
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		" PRAGMA foreign_keys=ON;",
		NULL, NULL, NULL) != SQLITE_OK) {
		buf_addf(err, "%s: %s", q->db, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

#define QUEUE_STMTS_MAX 16

struct queue_stmts {
	sqlite3 *db;
	struct {
		const char *sql; /* the caller's constant; the key */
		sqlite3_stmt *st;
	} v[QUEUE_STMTS_MAX];
	size_t n;
};

struct queue_stmts *
queue_stmts_new(sqlite3 *db)
{
	struct queue_stmts *c = xcalloc(1, sizeof(*c));

	c->db = db;
	return c;
}

void
queue_stmts_free(struct queue_stmts *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		sqlite3_finalize(c->v[i].st);
	free(c);
}

sqlite3_stmt *
queue_stmts_get(struct queue_stmts *c, sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (c != NULL) {
		assert(c->db == db);
		for (size_t i = 0; i < c->n; i++)
			if (c->v[i].sql == sql)
				return c->v[i].st;
	}
	if (sqlite3_prepare_v3(db, sql, -1,
		c != NULL ? SQLITE_PREPARE_PERSISTENT : 0, &st,
		NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	if (c != NULL && c->n < QUEUE_STMTS_MAX) {
		c->v[c->n].sql = sql;
		c->v[c->n].st = st;
		c->n++;
	}
	return st;
}

void
queue_stmts_put(struct queue_stmts *c, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; c != NULL && i < c->n; i++)
		if (c->v[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

const char *
queue_datadir(const struct queue *q)
{
	return q->datadir;
}

int64_t
queue_backoff_divisor(void)
{
	const char *v = getenv("MOX_TEST_QUEUE_BACKOFF_DIVISOR");
	uint64_t d;

	if (v == NULL || span_u64(span_of_cstr(v), 1000000, &d) == -1 ||
	    d == 0)
		return 1;
	return (int64_t)d;
}

int64_t
queue_backoff_ns(int64_t attempts, int jitter_s)
{
	int64_t base = (7 * 60 + 30 + jitter_s) * NS_PER_SEC;

	if (attempts < 0)
		attempts = 0;
	if (attempts > 16)
		attempts = 16;
	return (base << attempts) / queue_backoff_divisor();
}

void
queue_msg_path(const struct queue *q, int64_t id, struct buf *out)
{
	buf_addf(out, "%s/%lld", q->msgdir, (long long)id);
}

struct queue *
queue_open(const char *datadir, struct buf *err)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	struct buf b;
	sqlite3 *db = NULL;

	buf_init(&b, QUEUE_PATH_MAX);
	q->datadir = xstrdup(datadir);
	io_path_join(&b, datadir, "queue");
	q->dir = buf_take(&b);
	buf_addf(&b, "%s/msg", q->dir);
	q->msgdir = buf_take(&b);
	buf_addf(&b, "%s/index.db", q->dir);
	q->db = buf_take(&b);
	buf_release(&b);
	if (io_mkdir_p(q->msgdir, 0770) == -1) {
		buf_addf(err, "creating %s: %s", q->msgdir, log_strerror(errno));
		goto fail;
	}
	if (queue_db_open(q, &db, err) == -1)
		goto fail;
	if (sqlite3_exec(db, queue_schema, NULL, NULL, NULL) != SQLITE_OK) {
		buf_addf(err, "%s: schema: %s", q->db, sqlite3_errmsg(db));
		sqlite3_close(db);
		goto fail;
	}
	sqlite3_close(db);
	return q;
fail:
	queue_close(q);
	return NULL;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	free(q->datadir);
	free(q->dir);
	free(q->msgdir);
	free(q->db);
	free(q);
}

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

/* Hard link, or copy when the files are on different file systems. */
static int
link_or_copy(const char *src, const char *dst)
{
	char chunk[65536];
	int in = -1, out = -1, rc = -1;

	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM)
		return -1;
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	if (in == -1 || out == -1)
		goto out;
	for (;;) {
		ssize_t n = read(in, chunk, sizeof(chunk));

		if (n == -1 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (io_write_all(out, chunk, (size_t)n) == -1)
			goto out;
	}
	if (fsync(out) == -1)
		goto out;
	rc = 0;
out:
	if (in != -1)
		close(in);
	if (out != -1 && close(out) == -1)
		rc = -1;
	if (rc == -1 && out != -1)
		unlink(dst);
	return rc;
}

static int
fsync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd == -1)
		return -1;
	rc = fsync(fd);
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

static bool
fromid_exists(sqlite3 *db, const char *id)
{
	sqlite3_stmt *st = NULL;
	bool found = true;

	if (sqlite3_prepare_v2(db,
		"SELECT 1 FROM msg WHERE from_id = ?1 UNION ALL"
		" SELECT 1 FROM retired WHERE from_id = ?1 LIMIT 1",
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		found = sqlite3_step(st) != SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return found;
}

/* spec/queue.md 1.4: a rule matches when each non-empty field matches. */
static int
apply_hold(sqlite3 *db, struct queue_msg *m)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (sqlite3_prepare_v2(db,
		"SELECT 1 FROM hold_rule WHERE"
		" (account = '' OR account = ?1) AND"
		" (sender_domain = '' OR sender_domain = ?2) AND"
		" (recipient_domain = '' OR recipient_domain = ?3) LIMIT 1",
		-1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, nz(m->sender_account), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, nz(m->sender_domain), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, nz(m->recipient_domain), -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		goto out;
	m->hold = r == SQLITE_ROW;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
insert_msg(sqlite3 *db, struct queue_msg *m, struct buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db,
		"INSERT INTO msg (base_id, queued, hold, sender_account,"
		" sender_localpart, sender_domain, sender_domain_str, from_id,"
		" recipient_localpart, recipient_domain, recipient_domain_str,"
		" attempts, max_attempts, next_attempt, last_attempt, has8bit,"
		" smtputf8, is_dmarc_report, is_tls_report, size, message_id,"
		" msg_prefix, subject, dsn_utf8, transport, requiretls,"
		" future_release_request) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6,"
		" ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
		" ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
		-1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, m->base_id);
	sqlite3_bind_int64(st, 2, m->queued_ns);
	sqlite3_bind_int(st, 3, m->hold);
	sqlite3_bind_text(st, 4, nz(m->sender_account), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, nz(m->sender_localpart), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, nz(m->sender_domain), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, nz(m->from_id), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, nz(m->recipient_localpart), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, nz(m->recipient_domain), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, m->attempts);
	sqlite3_bind_int64(st, 11, m->max_attempts);
	sqlite3_bind_int64(st, 12, m->next_attempt_ns);
	if (m->last_attempt_ns != 0)
		sqlite3_bind_int64(st, 13, m->last_attempt_ns);
	sqlite3_bind_int(st, 14, m->has_8bit);
	sqlite3_bind_int(st, 15, m->smtputf8);
	sqlite3_bind_int(st, 16, m->is_dmarc_report);
	sqlite3_bind_int(st, 17, m->is_tls_report);
	sqlite3_bind_int64(st, 18, m->size);
	sqlite3_bind_text(st, 19, nz(m->message_id), -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 20, m->msg_prefix != NULL ? m->msg_prefix : "",
	    (int)m->msg_prefix_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 21, nz(m->subject), -1, SQLITE_STATIC);
	if (m->dsn_utf8 != NULL)
		sqlite3_bind_blob(st, 22, m->dsn_utf8, (int)strlen(m->dsn_utf8),
		    SQLITE_STATIC);
	sqlite3_bind_text(st, 23, nz(m->transport), -1, SQLITE_STATIC);
	if (m->requiretls != QUEUE_REQUIRETLS_UNSET)
		sqlite3_bind_int(st, 24, m->requiretls == QUEUE_REQUIRETLS_YES);
	sqlite3_bind_text(st, 25, nz(m->future_release_request), -1,
	    SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	m->id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	st = NULL;
	for (size_t i = 0; i < m->nextra; i++) {
		if (sqlite3_prepare_v2(db,
			"INSERT INTO msg_extra (msg_id, key, value)"
			" VALUES (?1, ?2, ?3)",
			-1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, m->id);
		sqlite3_bind_text(st, 2, m->extra[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, m->extra[i].value, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
	}
	rc = 0;
	return rc;
fail:
	buf_addf(err, "queue insert: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return -1;
}

/* spec/queue.md 2 step 2: one group when all share sender and prefix. */
static bool
same_group(const struct queue_msg *msgs, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(nz(msgs[i].sender_localpart),
			nz(msgs[0].sender_localpart)) != 0 ||
		    strcmp(nz(msgs[i].sender_domain),
			nz(msgs[0].sender_domain)) != 0 ||
		    msgs[i].msg_prefix_len != msgs[0].msg_prefix_len ||
		    (msgs[i].msg_prefix_len > 0 &&
			memcmp(msgs[i].msg_prefix, msgs[0].msg_prefix,
			    msgs[0].msg_prefix_len) != 0))
			return false;
	return true;
}

int
queue_add(struct queue *q, const char *path, struct queue_msg *msgs,
    size_t n, struct buf *err)
{
	sqlite3 *db = NULL;
	struct buf p;
	size_t linked = 0;
	int64_t now = time_wall_ns();
	bool group = n > 1 && same_group(msgs, n), in_tx = false;
	int rc = -1;

	buf_init(&p, QUEUE_PATH_MAX);
	if (n == 0) {
		buf_adds(err, "no recipients");
		goto out;
	}
	if (fsync_file(path) == -1) {
		buf_addf(err, "fsync %s: %s", path, log_strerror(errno));
		goto out;
	}
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		buf_addf(err, "queue begin: %s", sqlite3_errmsg(db));
		goto out;
	}
	in_tx = true;
	for (size_t i = 0; i < n; i++) {
		struct queue_msg *m = &msgs[i];

		m->queued_ns = now;
		if (m->next_attempt_ns == 0)
			m->next_attempt_ns = now;
		m->base_id = group && i > 0 ? msgs[0].id : 0;
		if (m->from_id != NULL && m->from_id[0] != '\0' &&
		    fromid_exists(db, m->from_id)) {
			/* spec/queue.md 2 step 3 */
			buf_adds(err, "fromid not unique");
			goto out;
		}
		if (apply_hold(db, m) == -1) {
			buf_addf(err, "queue hold rules: %s", sqlite3_errmsg(db));
			goto out;
		}
		if (insert_msg(db, m, err) == -1)
			goto out;
		if (group && i == 0) {
			/* spec/queue.md 1.1: the first record carries its own
			 * id as BaseID too. */
			char sql[96];

			/* By id: insert_msg() also inserted extra-data rows,
			 * so last_insert_rowid() is not this record. */
			m->base_id = m->id;
			snprintf(sql, sizeof(sql),
			    "UPDATE msg SET base_id = id WHERE id = %" PRId64,
			    m->id);
			if (sqlite3_exec(db, sql, NULL, NULL, NULL) !=
			    SQLITE_OK) {
				buf_addf(err, "queue update: %s",
				    sqlite3_errmsg(db));
				goto out;
			}
		}
	}
	for (; linked < n; linked++) {
		buf_reset(&p);
		queue_msg_path(q, msgs[linked].id, &p);
		if (link_or_copy(path, p.data) == -1) {
			buf_addf(err, "linking %s: %s", p.data,
			    log_strerror(errno));
			goto out;
		}
	}
	if (io_fsync_dir(q->msgdir) == -1) {
		buf_addf(err, "fsync %s: %s", q->msgdir, log_strerror(errno));
		goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		buf_addf(err, "queue commit: %s", sqlite3_errmsg(db));
		goto out;
	}
	in_tx = false;
	rc = 0;
out:
	if (in_tx) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		for (size_t i = 0; i < linked; i++) {
			buf_reset(&p);
			queue_msg_path(q, msgs[i].id, &p);
			unlink(p.data);
		}
	}
	sqlite3_close(db);
	buf_release(&p);
	return rc;
}

static char *
col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return xstrdup(t != NULL ? (const char *)t : "");
}

#define LOAD_SQL \
	"SELECT id, base_id, queued, hold, sender_account," \
	" sender_localpart, sender_domain, from_id, recipient_localpart," \
	" recipient_domain, attempts, max_attempts, next_attempt," \
	" last_attempt, has8bit, smtputf8, is_dmarc_report," \
	" is_tls_report, size, message_id, msg_prefix, subject," \
	" transport, requiretls, future_release_request FROM msg"

static const char load_id_sql[] = LOAD_SQL " WHERE id = ?1";
static const char load_extra_sql[] =
    "SELECT key, value FROM msg_extra WHERE msg_id = ?1 ORDER BY key";

/* Read the rows of st (LOAD_SQL, bound) with their extra (ex). */
static int
load_rows(sqlite3_stmt *st, sqlite3_stmt *ex, struct queue_msg **out,
    size_t *n_out)
{
	struct queue_msg *v = NULL;
	size_t n = 0;
	int r;

	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct queue_msg *m;
		const void *pfx;

		v = xreallocarray(v, n + 1, sizeof(*v));
		m = &v[n++];
		memset(m, 0, sizeof(*m));
		m->id = sqlite3_column_int64(st, 0);
		m->base_id = sqlite3_column_int64(st, 1);
		m->queued_ns = sqlite3_column_int64(st, 2);
		m->hold = sqlite3_column_int(st, 3) != 0;
		m->sender_account = col_str(st, 4);
		m->sender_localpart = col_str(st, 5);
		m->sender_domain = col_str(st, 6);
		m->from_id = col_str(st, 7);
		m->recipient_localpart = col_str(st, 8);
		m->recipient_domain = col_str(st, 9);
		m->attempts = sqlite3_column_int64(st, 10);
		m->max_attempts = sqlite3_column_int64(st, 11);
		m->next_attempt_ns = sqlite3_column_int64(st, 12);
		m->last_attempt_ns = sqlite3_column_int64(st, 13);
		m->has_8bit = sqlite3_column_int(st, 14) != 0;
		m->smtputf8 = sqlite3_column_int(st, 15) != 0;
		m->is_dmarc_report = sqlite3_column_int(st, 16) != 0;
		m->is_tls_report = sqlite3_column_int(st, 17) != 0;
		m->size = sqlite3_column_int64(st, 18);
		m->message_id = col_str(st, 19);
		pfx = sqlite3_column_blob(st, 20);
		m->msg_prefix_len = (size_t)sqlite3_column_bytes(st, 20);
		m->msg_prefix = xstrndup(pfx != NULL ? pfx : "",
		    m->msg_prefix_len);
		m->subject = col_str(st, 21);
		m->transport = col_str(st, 22);
		m->requiretls = sqlite3_column_type(st, 23) == SQLITE_NULL
		    ? QUEUE_REQUIRETLS_UNSET
		    : sqlite3_column_int(st, 23) != 0 ? QUEUE_REQUIRETLS_YES
						      : QUEUE_REQUIRETLS_NO;
		m->future_release_request = col_str(st, 24);
		sqlite3_reset(ex);
		sqlite3_bind_int64(ex, 1, m->id);
		while (sqlite3_step(ex) == SQLITE_ROW) {
			m->extra = xreallocarray(m->extra, m->nextra + 1,
			    sizeof(*m->extra));
			m->extra[m->nextra].key = col_str(ex, 0);
			m->extra[m->nextra].value = col_str(ex, 1);
			m->nextra++;
		}
	}
	sqlite3_reset(ex);
	if (r != SQLITE_DONE) {
		queue_msg_list_free(v, n);
		return -1;
	}
	*out = v;
	*n_out = n;
	return 0;
}

int
queue_int_load(sqlite3 *db, const char *where, int64_t arg,
    struct queue_msg **out, size_t *n_out)
{
	sqlite3_stmt *st = NULL, *ex = NULL;
	struct buf sql;
	int rc = -1;

	buf_init(&sql, 4096);
	buf_addf(&sql, LOAD_SQL " WHERE %s ORDER BY id", where);
	if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, load_extra_sql, -1, &ex, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, arg);
	rc = load_rows(st, ex, out, n_out);
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ex);
	buf_release(&sql);
	return rc;
}

int
queue_int_load_id(struct queue_stmts *c, sqlite3 *db, int64_t id,
    struct queue_msg **out, size_t *n_out)
{
	sqlite3_stmt *st = queue_stmts_get(c, db, load_id_sql);
	sqlite3_stmt *ex = queue_stmts_get(c, db, load_extra_sql);
	int rc = -1;

	if (st != NULL && ex != NULL) {
		sqlite3_bind_int64(st, 1, id);
		rc = load_rows(st, ex, out, n_out);
	}
	queue_stmts_put(c, st);
	queue_stmts_put(c, ex);
	return rc;
}

int
queue_list(struct queue *q, struct queue_msg **out, size_t *n_out,
    struct buf *err)
{
	sqlite3 *db = NULL;
	int rc;

	if (queue_db_open(q, &db, err) == -1)
		return -1;
	rc = queue_int_load(db, "1", 0, out, n_out);
	if (rc == -1)
		buf_addf(err, "queue list: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

void
queue_msg_release(struct queue_msg *m)
{
	if (m == NULL)
		return;
	free(m->sender_account);
	free(m->sender_localpart);
	free(m->sender_domain);
	free(m->from_id);
	free(m->recipient_localpart);
	free(m->recipient_domain);
	free(m->message_id);
	free(m->msg_prefix);
	free(m->subject);
	free(m->dsn_utf8);
	free(m->transport);
	free(m->future_release_request);
	for (size_t i = 0; i < m->nextra; i++) {
		free(m->extra[i].key);
		free(m->extra[i].value);
	}
	free(m->extra);
	memset(m, 0, sizeof(*m));
}

void
queue_msg_list_free(struct queue_msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		queue_msg_release(&v[i]);
	free(v);
}

int
queue_remove(struct queue *q, int64_t id, struct buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct buf p;
	int rc = -1;

	buf_init(&p, QUEUE_PATH_MAX);
	if (queue_db_open(q, &db, err) == -1)
		goto out;
	if (sqlite3_prepare_v2(db, "DELETE FROM msg WHERE id = ?1", -1, &st,
		NULL) != SQLITE_OK) {
		buf_addf(err, "queue remove: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		buf_addf(err, "queue remove: %s", sqlite3_errmsg(db));
		goto out;
	}
	queue_msg_path(q, id, &p);
	if (unlink(p.data) == -1 && errno != ENOENT) {
		buf_addf(err, "removing %s: %s", p.data, log_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_release(&p);
	return rc;
}
