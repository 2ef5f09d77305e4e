/*
 * store_account.c: the data directory handle, the registry of open
 * accounts, the per-account SQLite schema and connections, write
 * transactions with modseq assignment (RFC 7162 3), mailbox counts and the
 * in-process change broadcast (spec/store.md 3, 6, 11).
 *
 * Trust: account names come from configuration or the command line and are
 * validated before they become paths. Threads: any thread but the reactor;
 * the registry is guarded by store->lock, each account's writes by its
 * write lock (which also orders broadcasts), read connections by a pool.
 * An account is opened without the registry lock (a placeholder in the
 * registry makes other callers for the name wait on store->cond), and stays
 * open STORE_IDLE_SEC after its last put.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "store_int.h"
#include "lib/banned.h"

struct store_sub {
	struct store_account *a;
	store_change_fn *fn;
	void *arg;
	struct store_sub *next; /* guarded by a->hlock */
};

/* The subscriber whose changes the calling thread is making. */
static _Thread_local const void *origin_current;

/* Live messages of a mailbox in UID order without walking its tombstones
 * (store_list()); added to existing indexes when they are opened. */
#define LIVE_INDEX_SQL \
    "CREATE INDEX IF NOT EXISTS message_mb_live ON message(mailbox_id, uid)" \
    " WHERE expunged = 0;"

static const char schema_sql[] =
    "CREATE TABLE mailbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    " uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL DEFAULT 1,"
    " special INTEGER NOT NULL DEFAULT 0,"
    " keywords TEXT NOT NULL DEFAULT '',"
    " total INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,"
    " unread INTEGER NOT NULL DEFAULT 0, unseen INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE message ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " mailbox_id INTEGER NOT NULL REFERENCES mailbox(id),"
    " uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
    " createseq INTEGER NOT NULL, expunged INTEGER NOT NULL DEFAULT 0,"
    " is_reject INTEGER NOT NULL DEFAULT 0,"
    " is_forward INTEGER NOT NULL DEFAULT 0,"
    " mailbox_orig_id INTEGER NOT NULL DEFAULT 0,"
    " mailbox_destined_id INTEGER NOT NULL DEFAULT 0,"
    " received INTEGER NOT NULL,"
    " remote_ip TEXT NOT NULL DEFAULT '',"
    " remote_ip_masked1 TEXT NOT NULL DEFAULT '',"
    " remote_ip_masked2 TEXT NOT NULL DEFAULT '',"
    " remote_ip_masked3 TEXT NOT NULL DEFAULT '',"
    " ehlo_domain TEXT NOT NULL DEFAULT '',"
    " mailfrom TEXT NOT NULL DEFAULT '',"
    " mailfrom_localpart TEXT NOT NULL DEFAULT '',"
    " mailfrom_domain TEXT NOT NULL DEFAULT '',"
    " rcptto_localpart TEXT NOT NULL DEFAULT '',"
    " rcptto_domain TEXT NOT NULL DEFAULT '',"
    " msgfrom_localpart TEXT NOT NULL DEFAULT '',"
    " msgfrom_domain TEXT NOT NULL DEFAULT '',"
    " msgfrom_orgdomain TEXT NOT NULL DEFAULT '',"
    " ehlo_validated INTEGER NOT NULL DEFAULT 0,"
    " mailfrom_validated INTEGER NOT NULL DEFAULT 0,"
    " msgfrom_validated INTEGER NOT NULL DEFAULT 0,"
    " ehlo_validation INTEGER NOT NULL DEFAULT 0,"
    " mailfrom_validation INTEGER NOT NULL DEFAULT 0,"
    " msgfrom_validation INTEGER NOT NULL DEFAULT 0,"
    " orig_ehlo_domain TEXT NOT NULL DEFAULT '',"
    " orig_dkim_domains TEXT NOT NULL DEFAULT '',"
    " message_id TEXT NOT NULL DEFAULT '',"
    " subject_base TEXT NOT NULL DEFAULT '', message_hash BLOB,"
    " thread_id INTEGER NOT NULL DEFAULT 0,"
    " thread_parent_ids TEXT NOT NULL DEFAULT '',"
    " thread_missing_link INTEGER NOT NULL DEFAULT 0,"
    " thread_muted INTEGER NOT NULL DEFAULT 0,"
    " thread_collapsed INTEGER NOT NULL DEFAULT 0,"
    " is_mailing_list INTEGER NOT NULL DEFAULT 0,"
    " dsn INTEGER NOT NULL DEFAULT 0,"
    " received_tls_version INTEGER NOT NULL DEFAULT 0,"
    " received_tls_ciphersuite INTEGER NOT NULL DEFAULT 0,"
    " received_requiretls INTEGER NOT NULL DEFAULT 0,"
    " flags INTEGER NOT NULL DEFAULT 0,"
    " keywords TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL,"
    " trained_junk INTEGER, msg_prefix BLOB, parsed BLOB,"
    " maildir_name TEXT NOT NULL DEFAULT '',"
    " UNIQUE (mailbox_id, uid));"
    "CREATE INDEX message_mb_received ON message(mailbox_id, received);"
    "CREATE INDEX message_mb_modseq ON message(mailbox_id, modseq);"
    LIVE_INDEX_SQL
    "CREATE INDEX message_modseq ON message(modseq);"
    "CREATE INDEX message_createseq ON message(createseq);"
    "CREATE INDEX message_msgid ON message(message_id);"
    "CREATE INDEX message_subjbase ON message(subject_base);"
    "CREATE INDEX message_thread ON message(thread_id);"
    "CREATE INDEX message_ipm1 ON message(remote_ip_masked1, received);"
    "CREATE INDEX message_ipm2 ON message(remote_ip_masked2, received);"
    "CREATE INDEX message_ipm3 ON message(remote_ip_masked3, received);"
    "CREATE INDEX message_ehlo ON message(ehlo_domain, received);"
    "CREATE INDEX message_mailfrom ON message(mailfrom_domain, received);"
    "CREATE INDEX message_msgfrom ON message(msgfrom_domain, received);"
    "CREATE INDEX message_msgfromorg ON message(msgfrom_orgdomain, received);"
    "CREATE INDEX message_maildir_name ON message(mailbox_id, maildir_name)"
    " WHERE maildir_name != '';"
    "CREATE TABLE message_dkim ("
    " message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
    " domain TEXT NOT NULL, received INTEGER NOT NULL);"
    "CREATE INDEX message_dkim_domain ON message_dkim(domain, received);"
    "CREATE INDEX message_dkim_msg ON message_dkim(message_id);"
    "CREATE TABLE subscription (name TEXT PRIMARY KEY);"
    "CREATE TABLE singleton (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " next_uidvalidity INTEGER NOT NULL,"
    " last_modseq INTEGER NOT NULL DEFAULT 1,"
    " highest_deleted_modseq INTEGER NOT NULL DEFAULT -1,"
    " disk_usage INTEGER NOT NULL DEFAULT 0,"
    " threads_upgrade INTEGER NOT NULL DEFAULT 2);"
    "CREATE TABLE password (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " bcrypt TEXT NOT NULL, crammd5_ipad BLOB, crammd5_opad BLOB,"
    " scram_sha1_salt BLOB, scram_sha1_iter INTEGER,"
    " scram_sha1_stored BLOB, scram_sha1_server BLOB,"
    " scram_sha256_salt BLOB, scram_sha256_iter INTEGER,"
    " scram_sha256_stored BLOB, scram_sha256_server BLOB);"
    "CREATE TABLE recipient (id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
    " localpart TEXT NOT NULL, domain TEXT NOT NULL,"
    " orgdomain TEXT NOT NULL DEFAULT '', sent INTEGER NOT NULL);"
    "CREATE INDEX recipient_domain ON recipient(domain, localpart);"
    "CREATE INDEX recipient_orgdomain ON recipient(orgdomain);"
    "CREATE INDEX recipient_msg ON recipient(message_id);"
    "CREATE TABLE outgoing (id INTEGER PRIMARY KEY,"
    " recipient TEXT NOT NULL, submitted INTEGER NOT NULL);"
    "CREATE INDEX outgoing_recipient ON outgoing(recipient);"
    "CREATE TABLE subjectpass (email TEXT PRIMARY KEY, key TEXT NOT NULL);"
    "CREATE TABLE recipient_domain_tls (domain TEXT PRIMARY KEY,"
    " updated INTEGER NOT NULL, starttls INTEGER NOT NULL,"
    " requiretls INTEGER NOT NULL);"
    "CREATE TABLE login_session (id INTEGER PRIMARY KEY,"
    " created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " session_token BLOB NOT NULL, csrf_token BLOB NOT NULL,"
    " account_name TEXT NOT NULL, login_address TEXT NOT NULL);"
    "CREATE TABLE settings (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " signature TEXT NOT NULL DEFAULT '', quoting TEXT NOT NULL DEFAULT '',"
    " show_address_security INTEGER NOT NULL DEFAULT 1,"
    " show_html INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE from_address_settings (from_address TEXT PRIMARY KEY,"
    " view_mode TEXT NOT NULL);"
    "CREATE TABLE ruleset_no_listid (id INTEGER PRIMARY KEY,"
    " rcptto_address TEXT NOT NULL, listid TEXT NOT NULL,"
    " to_inbox INTEGER NOT NULL);"
    "CREATE TABLE ruleset_no_msgfrom (id INTEGER PRIMARY KEY,"
    " rcptto_address TEXT NOT NULL, msgfrom_address TEXT NOT NULL,"
    " to_inbox INTEGER NOT NULL);"
    "CREATE TABLE ruleset_no_mailbox (id INTEGER PRIMARY KEY,"
    " mailbox_id INTEGER NOT NULL, to_mailbox INTEGER NOT NULL);"
    "CREATE TABLE suppression (id INTEGER PRIMARY KEY,"
    " created INTEGER NOT NULL, base_address TEXT NOT NULL UNIQUE,"
    " original_address TEXT NOT NULL, manual INTEGER NOT NULL,"
    " reason TEXT NOT NULL);";

void
store_errf(struct store_err *err, enum store_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	va_start(ap, fmt);
	if (vsnprintf(err->text, sizeof(err->text), fmt, ap) < 0)
		err->text[0] = '\0';
	va_end(ap);
}

void
store_err_db(struct store_err *err, sqlite3 *db, const char *what)
{
	store_errf(err, STORE_EINTERNAL, "%s: %s", what,
	    db != NULL ? sqlite3_errmsg(db) : "no database");
}

int64_t
store_now_ns(void)
{
	return time_wall_ns();
}

int
store_exec(sqlite3 *db, const char *sql, struct store_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_errf(err, STORE_EINTERNAL, "sql: %s",
		    msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
    struct store_err *err)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		store_err_db(err, db, "prepare");
		*st = NULL;
		return -1;
	}
	return 0;
}

/* A statement for sql from cache c of connection db (see
 * store_stmt_get()). */
static int
stmts_get(struct store_stmts *c, sqlite3 *db, const char *sql,
    sqlite3_stmt **st, struct store_err *err)
{
	struct store_stmt *free_slot = NULL;

	for (size_t i = 0; i < c->n; i++) {
		struct store_stmt *e = &c->v[i];

		if (strcmp(sqlite3_sql(e->st), sql) != 0)
			continue;
		if (e->busy)
			break; /* in use further up: a second one, uncached */
		e->busy = true;
		*st = e->st;
		return 0;
	}
	if (c->n < STORE_STMT_MAX)
		free_slot = &c->v[c->n];
	if (store_prepare(db, sql, st, err) == -1)
		return -1;
	if (free_slot != NULL) {
		free_slot->st = *st;
		free_slot->busy = true;
		c->n++;
	}
	return 0;
}

static void
stmts_put(struct store_stmts *c, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; c != NULL && i < c->n; i++)
		if (c->v[i].st == st) {
			/* The step's outcome was read already. */
			(void)sqlite3_reset(st);
			(void)sqlite3_clear_bindings(st);
			c->v[i].busy = false;
			return;
		}
	sqlite3_finalize(st);
}

static void
stmts_clear(struct store_stmts *c)
{
	for (size_t i = 0; i < c->n; i++) {
		assert(!c->v[i].busy);
		sqlite3_finalize(c->v[i].st);
	}
	c->n = 0;
}

int
store_stmt_get(struct store_txn *t, const char *sql, sqlite3_stmt **st,
    struct store_err *err)
{
	if (t->db != t->a->wdb)
		return store_prepare(t->db, sql, st, err);
	LOCK_ASSERT_HELD(&t->a->wlock);
	return stmts_get(&t->a->wstmts, t->db, sql, st, err);
}

void
store_stmt_put(struct store_txn *t, sqlite3_stmt *st)
{
	stmts_put(t->db == t->a->wdb ? &t->a->wstmts : NULL, st);
}

int
store_stmt_exec(struct store_txn *t, const char *sql, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (store_stmt_get(t, sql, &st, err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (r != SQLITE_DONE)
		store_errf(err, STORE_EINTERNAL, "sql: %s",
		    sqlite3_errmsg(t->db));
	store_stmt_put(t, st);
	return r == SQLITE_DONE ? 0 : -1;
}

void
store_stmts_clear(struct store_account *a)
{
	stmts_clear(&a->wstmts);
}

/* The pool's record of db, or NULL. */
static struct store_rconn *
rconn_find(struct store_account *a, sqlite3 *db)
{
	struct store_rconn *rc;

	lock_take(&a->plock);
	for (rc = a->rconns; rc != NULL; rc = rc->next)
		if (rc->db == db)
			break;
	lock_release(&a->plock);
	return rc;
}

int
store_db_stmt(struct store_account *a, sqlite3 *db, const char *sql,
    sqlite3_stmt **st, struct store_err *err)
{
	struct store_rconn *rc = rconn_find(a, db);

	if (rc == NULL)
		return store_prepare(db, sql, st, err);
	return stmts_get(&rc->stmts, db, sql, st, err);
}

void
store_db_stmt_put(struct store_account *a, sqlite3 *db, sqlite3_stmt *st)
{
	struct store_rconn *rc;

	if (st == NULL)
		return;
	rc = rconn_find(a, db);
	stmts_put(rc != NULL ? &rc->stmts : NULL, st);
}

bool
store_account_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_ACCOUNT_NAME_MAX || name[0] == '.')
		return false;
	if (!utf8_valid(name, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}

const char *
store_datadir(const struct store *s)
{
	return s->datadir;
}

struct store *
store_new(const char *datadir, struct store_err *err)
{
	return store_open(datadir, 0, err);
}

/*
 * The directory for the files of messages being received
 * (store_tmpfile()): <datadir>/tmp/msg-XXXXXX, made once with
 * FS_TOPDIR_FL set on tmp/ so that ext4's Orlov allocator places it in a
 * block group of its own (an empty one, picked from a start the name
 * hashes to: a name of its own keeps data directories on one file system
 * out of each other's groups) instead of next to its parent, and the
 * inodes of message files come from there. Without a journal, ext4
 * passes over every inode freed in the last minute (or longer, while its
 * table block is unwritten) when it allocates one, checking them one by
 * one, so in a group where others create and delete many files each
 * create cost milliseconds of CPU (tests/bench/README.md). Best effort:
 * <datadir>/tmp when no such directory can be made, and on other file
 * systems the flag is refused and nothing else changes. Returns the path
 * (owned).
 */
static char *
msgtmp_dir(const char *datadir)
{
	struct buf p;
	struct dirent *de;
	DIR *d;
	int fd, fl;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/tmp", datadir);
	fd = open(p.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return buf_take(&p);
	if (ioctl(fd, FS_IOC_GETFLAGS, &fl) == 0 && (fl & FS_TOPDIR_FL) == 0) {
		fl |= FS_TOPDIR_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &fl); /* a hint */
	}
	d = fdopendir(fd);
	if (d == NULL) {
		(void)close(fd);
		return buf_take(&p);
	}
	while ((de = readdir(d)) != NULL) {
		struct stat sb;

		if (strncmp(de->d_name, "msg-", 4) != 0)
			continue;
		if (de->d_type == DT_DIR ||
		    (de->d_type == DT_UNKNOWN &&
			fstatat(dirfd(d), de->d_name, &sb,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
			S_ISDIR(sb.st_mode)))
			break;
	}
	if (de != NULL)
		buf_addf(&p, "/%s", de->d_name);
	closedir(d);
	if (de == NULL) {
		buf_adds(&p, "/msg-XXXXXX");
		if (buf_failed(&p) || mkdtemp(p.data) == NULL)
			buf_truncate(&p, strlen(datadir) + 4);
	}
	return buf_take(&p);
}

struct store *
store_open(const char *datadir, unsigned flags, struct store_err *err)
{
	static const char *const subs[] = { "tmp", "accounts" };
	struct store *s;
	struct buf p;

	if (datadir == NULL || datadir[0] == '\0') {
		store_errf(err, STORE_EINVAL, "empty data directory");
		return NULL;
	}
	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < ARRAY_LEN(subs) &&
	     (flags & (STORE_OPEN_READONLY | STORE_OPEN_NOMKDIR)) == 0;
	     i++) {
		buf_reset(&p);
		buf_addf(&p, "%s/%s", datadir, subs[i]);
		if (buf_failed(&p) || io_mkdir_p(p.data, 0750) == -1) {
			store_errf(err, STORE_EINTERNAL, "mkdir %s: %s", p.data,
			    log_strerror(errno));
			buf_release(&p);
			return NULL;
		}
	}
	buf_release(&p);
	s = xcalloc(1, sizeof(*s));
	s->datadir = xstrdup(datadir);
	s->readonly = (flags & STORE_OPEN_READONLY) != 0;
	if ((flags & (STORE_OPEN_READONLY | STORE_OPEN_NOMKDIR)) == 0)
		s->msgtmp = msgtmp_dir(datadir);
	else
		s->msgtmp = xstrdup(datadir); /* unused: no temp files */
	s->proc_fd = access("/proc/self/fd", X_OK) == 0;
	lock_init(&s->lock, LOCK_ORDER_ACCOUNTS, "store.accounts");
	lock_cond_init(&s->cond);
	lock_init(&s->hclock, LOCK_ORDER_CHANGES, "store.hdrcache");
	store_pwcache_init(s);
	return s;
}

static void account_free(struct store_account *a);

/* Unlink accounts without references that were idle long enough (all of
 * them with force) onto *dead, to be freed after the lock is released. */
static void
reap_idle(struct store *s, bool force, struct store_account **dead)
{
	int64_t now = time_mono_ns();

	LOCK_ASSERT_HELD(&s->lock);
	for (struct store_account **pp = &s->accounts; *pp != NULL;) {
		struct store_account *a = *pp;

		if (a->refs == 0 && a->state == STORE_ACC_READY &&
		    (force ||
			now - a->idle_since >= STORE_IDLE_SEC * NS_PER_SEC)) {
			*pp = a->next;
			a->next = *dead;
			*dead = a;
			continue;
		}
		pp = &a->next;
	}
}

static void
free_dead(struct store_account *dead)
{
	while (dead != NULL) {
		struct store_account *next = dead->next;

		account_free(dead);
		dead = next;
	}
}

void
store_free(struct store *s)
{
	struct store_account *dead = NULL;

	if (s == NULL)
		return;
	lock_take(&s->lock);
	reap_idle(s, true, &dead);
	assert(s->accounts == NULL);
	lock_release(&s->lock);
	free_dead(dead);
	for (size_t i = 0; i < s->nscanned; i++)
		free(s->scanned[i]);
	free(s->scanned);
	pthread_cond_destroy(&s->cond);
	lock_destroy(&s->lock);
	store_pwcache_release(s);
	if (s->hcache != NULL)
		for (size_t i = 0; i < STORE_HDR_SLOTS; i++)
			free(s->hcache[i].data);
	free(s->hcache);
	lock_destroy(&s->hclock);
	free(s->datadir);
	free(s->msgtmp);
	free(s);
}

static int
db_configure(sqlite3 *db, struct store_err *err)
{
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	return store_exec(db,
	    "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	    " PRAGMA temp_store=MEMORY;",
	    err);
}

static sqlite3 *
db_open(struct store_account *a, struct store_err *err)
{
	sqlite3 *db = NULL;
	struct buf p;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/index.db", a->dir);
	if (sqlite3_open_v2(p.data, &db,
		(a->store->readonly ? SQLITE_OPEN_READONLY :
				      SQLITE_OPEN_READWRITE) |
		    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
		NULL) != SQLITE_OK) {
		store_err_db(err, db, "open index.db");
		sqlite3_close(db);
		db = NULL;
		goto out;
	}
	if (db_configure(db, err) == -1) {
		sqlite3_close(db);
		db = NULL;
	}
out:
	buf_release(&p);
	return db;
}

/* Run one statement without result rows on read connection db. */
static int
db_stmt_exec(struct store_account *a, sqlite3 *db, const char *sql,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (store_db_stmt(a, db, sql, &st, err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (r != SQLITE_DONE)
		store_errf(err, STORE_EINTERNAL, "sql: %s", sqlite3_errmsg(db));
	store_db_stmt_put(a, db, st);
	return r == SQLITE_DONE ? 0 : -1;
}

int
store_db_read_begin(struct store_account *a, sqlite3 *db,
    struct store_err *err)
{
	return db_stmt_exec(a, db, "BEGIN", err);
}

void
store_db_read_end(struct store_account *a, sqlite3 *db)
{
	struct store_err ignored;

	if (sqlite3_get_autocommit(db))
		return;
	if (db_stmt_exec(a, db, "COMMIT", &ignored) == -1 &&
	    !sqlite3_get_autocommit(db))
		(void)store_exec(db, "ROLLBACK", &ignored);
}

sqlite3 *
store_db_get(struct store_account *a, struct store_err *err)
{
	struct store_rconn *rc;
	sqlite3 *db;

	lock_take(&a->plock);
	for (rc = a->rconns; rc != NULL; rc = rc->next)
		if (rc->idle) {
			rc->idle = false;
			a->nidle--;
			break;
		}
	lock_release(&a->plock);
	if (rc != NULL)
		return rc->db;
	db = db_open(a, err);
	if (db == NULL)
		return NULL;
	rc = xcalloc(1, sizeof(*rc));
	rc->db = db;
	lock_take(&a->plock);
	rc->next = a->rconns;
	a->rconns = rc;
	lock_release(&a->plock);
	return db;
}

/* Close a read connection (its statements first). NULL-safe. */
static void
rconn_close(struct store_rconn *rc)
{
	if (rc == NULL)
		return;
	stmts_clear(&rc->stmts);
	sqlite3_close(rc->db);
	free(rc);
}

void
store_db_put(struct store_account *a, sqlite3 *db)
{
	struct store_rconn **pp, *drop = NULL;

	if (db == NULL)
		return;
	lock_take(&a->plock);
	for (pp = &a->rconns; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->db == db)
			break;
	if (*pp == NULL) {
		lock_release(&a->plock);
		sqlite3_close(db); /* not one of the pool's */
		return;
	}
	if (a->nidle < STORE_POOL_MAX) {
		(*pp)->idle = true;
		a->nidle++;
	} else {
		drop = *pp;
		*pp = drop->next;
	}
	lock_release(&a->plock);
	rconn_close(drop);
}

void
store_mb_dir(struct store_account *a, int64_t mbid, const char *sub,
    struct buf *out)
{
	buf_reset(out);
	if (sub != NULL)
		buf_addf(out, "%s/maildir/%lld/%s", a->dir, (long long)mbid,
		    sub);
	else
		buf_addf(out, "%s/maildir/%lld", a->dir, (long long)mbid);
}

int
store_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = 0;

	if (fd == -1)
		return -1;
	if (fsync(fd) == -1)
		rc = -1;
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

int
store_mb_dirs_create(struct store_account *a, int64_t mbid,
    struct store_err *err)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	struct buf p;
	int rc = -1;

	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		store_mb_dir(a, mbid, subs[i], &p);
		if (buf_failed(&p) || io_mkdir_p(p.data, 0750) == -1) {
			store_errf(err, STORE_EINTERNAL, "mkdir %s: %s",
			    p.data, log_strerror(errno));
			goto out;
		}
	}
	/* The entries cur, new and tmp live in maildir/<id>/; <id> in
	 * maildir/. */
	store_mb_dir(a, mbid, NULL, &p);
	if (io_fsync_dir(p.data) == -1) {
		store_errf(err, STORE_EINTERNAL, "fsync %s", p.data);
		goto out;
	}
	buf_reset(&p);
	buf_addf(&p, "%s/maildir", a->dir);
	if (io_fsync_dir(p.data) == -1) {
		store_errf(err, STORE_EINTERNAL, "fsync %s", p.data);
		goto out;
	}
	rc = 0;
out:
	buf_release(&p);
	return rc;
}

static int
rm_dir_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int dfd, rc = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dfd, de->d_name, 0) == -1 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	if (rmdir(dir) == -1 && errno != ENOENT)
		rc = -1;
	return rc;
}

int
store_rmtree_mb(struct store_account *a, int64_t mbid)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	struct buf p;
	int rc = 0;

	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		store_mb_dir(a, mbid, subs[i], &p);
		if (rm_dir_files(p.data) == -1)
			rc = -1;
	}
	store_mb_dir(a, mbid, NULL, &p);
	if (rmdir(p.data) == -1 && errno != ENOENT)
		rc = -1;
	buf_release(&p);
	return rc;
}

/* Raise sqlite_sequence of table to at least v. */
static int
seq_raise(sqlite3 *db, const char *table, int64_t v, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (store_prepare(db,
		"INSERT INTO sqlite_sequence(name, seq) SELECT ?1, ?2"
		" WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence"
		" WHERE name = ?1)",
		&st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, db, "set sequence");
		goto out;
	}
	sqlite3_finalize(st);
	if (store_prepare(db,
		"UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
		&st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, db, "raise sequence");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Raise the message id sequence above every id found in a Maildir file
 * name, so an id whose row was lost in a crash (its file linked, the
 * commit not done) is never handed out again; likewise the mailbox id
 * sequence above every maildir/<id> directory (a create whose commit was
 * lost must not hand its directory, with what it holds, to a new mailbox). */
static int
seq_above_files(struct store_account *a, sqlite3 *db, struct store_err *err)
{
	struct buf p;
	DIR *md = NULL;
	struct dirent *de;
	uint64_t maxid = 0, maxmb = 0;
	int rc = -1;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/maildir", a->dir);
	md = opendir(p.data);
	if (md == NULL) {
		rc = 0;
		goto out;
	}
	while ((de = readdir(md)) != NULL) {
		uint64_t mbid;
		DIR *cd;
		struct dirent *fe;

		if (span_u64(span_of_cstr(de->d_name), INT64_MAX, &mbid) == -1)
			continue;
		if (mbid > maxmb)
			maxmb = mbid;
		store_mb_dir(a, (int64_t)mbid, "cur", &p);
		cd = opendir(p.data);
		if (cd == NULL)
			continue;
		while ((fe = readdir(cd)) != NULL) {
			struct scan s = scan_of(span_of_cstr(fe->d_name));
			uint64_t id;

			if (scan_u64(&s, INT64_MAX, &id) == 0 && id > maxid)
				maxid = id;
		}
		closedir(cd);
	}
	if ((maxid > 0 &&
		seq_raise(db, "message", (int64_t)maxid, err) == -1) ||
	    (maxmb > 0 &&
		seq_raise(db, "mailbox", (int64_t)maxmb, err) == -1))
		goto out;
	rc = 0;
out:
	if (md != NULL)
		closedir(md);
	buf_release(&p);
	return rc;
}

/* Open index.db of a and check it holds our schema. */
static sqlite3 *
db_open_checked(struct store_account *a, const char *path,
    struct store_err *err)
{
	bool ro = a->store->readonly;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int version = -1;

	if (sqlite3_open_v2(path, &db,
		(ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
		NULL) != SQLITE_OK) {
		store_err_db(err, db, "open index.db");
		goto fail;
	}
	if (db_configure(db, err) == -1 ||
	    store_prepare(db, "PRAGMA user_version", &st, err) == -1)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 0) {
		store_err_db(err, db, "read schema version");
		goto fail;
	}
	/* Only the call that creates the file builds the schema: an
	 * existing file without one is damage to report, not to paper
	 * over with an empty account. */
	if (version == 0) {
		store_errf(err, STORE_EINTERNAL,
		    "index.db is empty or not an account database");
		goto fail;
	}
	if (version > STORE_SCHEMA_VERSION) {
		store_errf(err, STORE_EINTERNAL,
		    "index.db schema %d is newer than this program (%d)",
		    version, STORE_SCHEMA_VERSION);
		goto fail;
	}
	if (!ro && (store_exec(db, "PRAGMA journal_mode=WAL", err) == -1 ||
		store_exec(db, LIVE_INDEX_SQL, err) == -1 ||
		store_reputation_schema(db, err) == -1))
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

/* Build a new index under a temporary name in <datadir>/tmp and link it to
 * path, so index.db never exists half made. Losing a race to another
 * creator is fine: its index is used. */
static int
db_create(struct store_account *a, const char *path, struct store_err *err)
{
	struct buf tmp;
	sqlite3 *db = NULL;
	struct store_txn t;
	int rc = -1;

	buf_init(&tmp, STORE_PATH_MAX);
	buf_addf(&tmp, "%s/tmp", a->store->datadir);
	if (io_mkdir_p(a->dir, 0750) == -1 ||
	    io_mkdir_p(tmp.data, 0750) == -1) {
		store_errf(err, STORE_EINTERNAL, "mkdir %s: %s", a->dir,
		    log_strerror(errno));
		goto out;
	}
	buf_addf(&tmp, "/index-%ld-%lu.db", (long)getpid(),
	    atomic_fetch_add(&a->store->tmpseq, 1) + 1);
	if (buf_failed(&tmp) ||
	    sqlite3_open_v2(tmp.data, &db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
		NULL) != SQLITE_OK) {
		store_err_db(err, db, "create index.db");
		goto out;
	}
	if (db_configure(db, err) == -1 ||
	    store_exec(db, "PRAGMA journal_mode=WAL", err) == -1)
		goto out;
	a->wdb = db;
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	if (store_exec(t.db, schema_sql, err) == -1 ||
	    store_exec(t.db, "PRAGMA user_version = 1", err) == -1 ||
	    store_create_default_mailboxes(&t, err) == -1) {
		store_txn_abort(&t);
		goto out;
	}
	if (store_txn_commit(&t, err) == -1)
		goto out;
	store_stmts_clear(a);
	a->wdb = NULL;
	/* The last connection checkpoints the WAL into the file (synced,
	 * synchronous=FULL) and removes it. */
	if (sqlite3_close(db) != SQLITE_OK) {
		store_errf(err, STORE_EINTERNAL, "close new index.db");
		db = NULL;
		goto out;
	}
	db = NULL;
	if (link(tmp.data, path) == -1 && errno != EEXIST) {
		store_errf(err, STORE_EINTERNAL, "link %s: %s", path,
		    log_strerror(errno));
		goto out;
	}
	(void)unlink(tmp.data);
	buf_reset(&tmp);
	buf_addf(&tmp, "%s/accounts", a->store->datadir);
	rc = io_fsync_dir(a->dir) == -1 || io_fsync_dir(tmp.data) == -1 ?
	    -1 :
	    0;
	if (rc == -1)
		store_errf(err, STORE_EINTERNAL, "fsync %s", a->dir);
	buf_reset(&tmp);
out:
	store_stmts_clear(a);
	a->wdb = NULL;
	sqlite3_close(db);
	if (tmp.len > 0)
		(void)unlink(tmp.data);
	buf_release(&tmp);
	return rc;
}

/* Has the Maildir of account NAME been scanned by this handle? Marks it. */
static bool
scan_once(struct store *s, const char *name)
{
	bool first = true;

	lock_take(&s->lock);
	for (size_t i = 0; i < s->nscanned && first; i++)
		first = strcmp(s->scanned[i], name) != 0;
	if (first) {
		s->scanned = xreallocarray(s->scanned, s->nscanned + 1,
		    sizeof(*s->scanned));
		s->scanned[s->nscanned++] = xstrdup(name);
	}
	lock_release(&s->lock);
	return first;
}

/* Open (or with create, make) the account's index. Runs without the
 * registry lock; a is not yet visible to other threads as ready. */
static int
account_init_db(struct store_account *a, bool create, struct store_err *err)
{
	struct buf p;
	struct stat sb;
	int rc = -1;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/index.db", a->dir);
	if (stat(p.data, &sb) == -1) {
		if (errno != ENOENT) {
			store_errf(err, STORE_EINTERNAL, "stat %s: %s", p.data,
			    log_strerror(errno));
			goto out;
		}
		if (!create || a->store->readonly) {
			store_errf(err, STORE_EINVAL,
			    "account %s does not exist", a->name);
			goto out;
		}
		if (db_create(a, p.data, err) == -1)
			goto out;
	}
	a->wdb = db_open_checked(a, p.data, err);
	if (a->wdb == NULL)
		goto out;
	rc = 0;
	if (!a->store->readonly && scan_once(a->store, a->name)) {
		lock_take(&a->wlock);
		rc = seq_above_files(a, a->wdb, err);
		lock_release(&a->wlock);
	}
out:
	buf_release(&p);
	return rc;
}

static void
account_free(struct store_account *a)
{
	if (a == NULL)
		return;
	while (a->rconns != NULL) {
		struct store_rconn *rc = a->rconns;

		a->rconns = rc->next;
		rconn_close(rc);
	}
	store_stmts_clear(a);
	sqlite3_close(a->wdb);
	assert(a->subs == NULL);
	lock_destroy(&a->wlock);
	lock_destroy(&a->plock);
	lock_destroy(&a->hlock);
	lock_destroy(&a->qlock);
	pthread_cond_destroy(&a->qcond);
	free(a->name);
	free(a->dir);
	free(a);
}

static struct store_account *
account_new(struct store *s, const char *name)
{
	struct store_account *a = xcalloc(1, sizeof(*a));
	struct buf p;

	a->store = s;
	a->name = xstrdup(name);
	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/accounts/%s", s->datadir, name);
	a->dir = buf_take(&p);
	a->refs = 1;
	a->state = STORE_ACC_OPENING;
	lock_init(&a->wlock, LOCK_ORDER_ACCOUNT, "store.account");
	lock_init(&a->plock, LOCK_ORDER_CHANGES, "store.pool");
	lock_init(&a->hlock, LOCK_ORDER_CHANGES, "store.hub");
	lock_init(&a->qlock, LOCK_ORDER_CHANGES, "store.queue");
	lock_cond_init(&a->qcond);
	a->serial = atomic_fetch_add(&s->acctseq, 1) + 1;
	return a;
}

int
store_account_get(struct store *s, const char *name, bool create,
    struct store_account **out, struct store_err *err)
{
	struct store_account *a, *dead = NULL;
	struct store_err e;
	int rc = -1;

	if (!store_account_name_valid(name)) {
		store_errf(err, STORE_EINVAL, "invalid account name");
		return -1;
	}
	lock_take(&s->lock);
	reap_idle(s, false, &dead);
	for (a = s->accounts; a != NULL; a = a->next)
		if (strcmp(a->name, name) == 0)
			break;
	if (a != NULL) {
		a->refs++;
		while (a->state == STORE_ACC_OPENING)
			lock_wait(&s->lock, &s->cond);
		if (a->state == STORE_ACC_FAILED) {
			if (err != NULL)
				*err = a->init_err;
			if (--a->refs == 0) {
				a->next = dead;
				dead = a;
			}
		} else {
			*out = a;
			rc = 0;
		}
		lock_release(&s->lock);
		free_dead(dead);
		return rc;
	}
	/* A placeholder: later callers for the name wait on s->cond while
	 * this thread opens the databases without the registry lock. */
	a = account_new(s, name);
	a->next = s->accounts;
	s->accounts = a;
	lock_release(&s->lock);
	free_dead(dead);
	dead = NULL;
	memset(&e, 0, sizeof(e));
	rc = account_init_db(a, create, &e);
	lock_take(&s->lock);
	if (rc == -1) {
		a->state = STORE_ACC_FAILED;
		a->init_err = e;
		for (struct store_account **pp = &s->accounts; *pp != NULL;
		     pp = &(*pp)->next)
			if (*pp == a) {
				*pp = a->next;
				break;
			}
		if (--a->refs == 0)
			dead = a;
		if (err != NULL)
			*err = e;
	} else {
		a->state = STORE_ACC_READY;
		*out = a;
	}
	pthread_cond_broadcast(&s->cond);
	lock_release(&s->lock);
	if (dead != NULL) {
		dead->next = NULL;
		account_free(dead);
	}
	return rc;
}

void
store_account_put(struct store_account *a)
{
	struct store *s;
	struct store_account *dead = NULL;

	if (a == NULL)
		return;
	s = a->store;
	lock_take(&s->lock);
	if (--a->refs == 0)
		a->idle_since = time_mono_ns();
	reap_idle(s, false, &dead);
	lock_release(&s->lock);
	free_dead(dead);
}

const char *
store_account_name(const struct store_account *a)
{
	return a->name;
}

/* ---- transactions ---- */

const void *
store_origin_current(void)
{
	return origin_current;
}

int
store_txn_begin(struct store_account *a, struct store_txn *t,
    struct store_err *err)
{
	memset(t, 0, sizeof(*t));
	t->a = a;
	t->origin = origin_current;
	lock_take(&a->wlock);
	t->db = a->wdb;
	if (store_stmt_exec(t, "BEGIN IMMEDIATE", err) == -1) {
		lock_release(&a->wlock);
		return -1;
	}
	return 0;
}

int
store_txn_begin_read(struct store_account *a, struct store_txn *t,
    struct store_err *err)
{
	memset(t, 0, sizeof(*t));
	t->a = a;
	t->origin = origin_current;
	lock_take(&a->wlock);
	t->db = a->wdb;
	if (store_exec(t->db, "BEGIN", err) == -1) {
		lock_release(&a->wlock);
		return -1;
	}
	return 0;
}

static void
txn_clear(struct store_txn *t)
{
	for (size_t i = 0; i < t->nchg; i++) {
		free(t->chg[i].s1);
		free(t->chg[i].s2);
		free(t->chg[i].uids);
	}
	free(t->chg);
	t->chg = NULL;
	t->nchg = t->capchg = 0;
	for (size_t i = 0; i < t->nunlink; i++)
		free(t->unlink_after[i]);
	free(t->unlink_after);
	t->unlink_after = NULL;
	t->nunlink = 0;
}

void
store_txn_undo_add(struct store_txn *t, const char *from, const char *to)
{
	if (t->nundo == t->capundo) {
		t->capundo = t->capundo == 0 ? 16 : t->capundo * 2;
		t->undo = xreallocarray(t->undo, t->capundo, sizeof(*t->undo));
	}
	t->undo[t->nundo].from = from != NULL ? xstrdup(from) : NULL;
	t->undo[t->nundo].to = xstrdup(to);
	t->nundo++;
}

void
store_txn_undo_to(struct store_txn *t, size_t mark)
{
	while (t->nundo > mark) {
		struct store_undo *u = &t->undo[--t->nundo];

		if (u->from == NULL)
			(void)unlink(u->to);
		else
			(void)rename(u->to, u->from);
		free(u->from);
		free(u->to);
	}
}

void
store_txn_chg_to(struct store_txn *t, size_t mark)
{
	while (t->nchg > mark) {
		struct store_chg *c = &t->chg[--t->nchg];

		free(c->s1);
		free(c->s2);
		free(c->uids);
	}
}

static void
undo_forget(struct store_txn *t)
{
	for (size_t i = 0; i < t->nundo; i++) {
		free(t->undo[i].from);
		free(t->undo[i].to);
	}
	free(t->undo);
	t->undo = NULL;
	t->nundo = t->capundo = 0;
}

void
store_txn_abort(struct store_txn *t)
{
	struct store_err ignored;

	if (t->db == NULL)
		return;
	if (!sqlite3_get_autocommit(t->db))
		(void)store_exec(t->db, "ROLLBACK", &ignored);
	store_txn_undo_to(t, 0);
	undo_forget(t);
	txn_clear(t);
	t->db = NULL;
	lock_release(&t->a->wlock);
}

void
store_txn_broadcast(struct store_txn *t)
{
	struct store_account *a = t->a;
	struct store_change *v;

	LOCK_ASSERT_HELD(&a->wlock);
	if (t->nchg == 0)
		return;
	v = xcalloc(t->nchg, sizeof(*v));
	lock_take(&a->hlock);
	for (struct store_sub *s = a->subs; s != NULL; s = s->next) {
		size_t n = 0;

		for (size_t i = 0; i < t->nchg; i++)
			if (t->chg[i].origin != s)
				v[n++] = t->chg[i].c;
		if (n > 0)
			s->fn(v, n, s->arg);
	}
	lock_release(&a->hlock);
	free(v);
}

int
store_txn_commit(struct store_txn *t, struct store_err *err)
{
	if (store_stmt_exec(t, "COMMIT", err) == -1) {
		store_txn_abort(t);
		return -1;
	}
	undo_forget(t);
	store_txn_broadcast(t);
	t->db = NULL;
	/* Files of committed removals are unlinked outside the write lock:
	 * their ids are never reused, so no later writer needs them gone. */
	lock_release(&t->a->wlock);
	for (size_t i = 0; i < t->nunlink; i++)
		(void)unlink(t->unlink_after[i]);
	txn_clear(t);
	return 0;
}

int
store_txn_modseq(struct store_txn *t, int64_t *out, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (t->modseq != 0) {
		*out = t->modseq;
		return 0;
	}
	if (store_stmt_get(t,
		"UPDATE singleton SET last_modseq = last_modseq + 1"
		" WHERE id = 1 RETURNING last_modseq",
		&st, err) == -1)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_err_db(err, t->db, "next modseq");
		goto out;
	}
	t->modseq = sqlite3_column_int64(st, 0);
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	*out = t->modseq;
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

struct store_change *
store_txn_change(struct store_txn *t, enum store_change_type type,
    int64_t mailbox_id)
{
	struct store_chg *c;

	if (t->nchg == t->capchg) {
		t->capchg = t->capchg == 0 ? 8 : t->capchg * 2;
		t->chg = xreallocarray(t->chg, t->capchg, sizeof(*t->chg));
	}
	c = &t->chg[t->nchg++];
	memset(c, 0, sizeof(*c));
	c->origin = t->origin;
	c->c.type = type;
	c->c.mailbox_id = mailbox_id;
	return &c->c;
}

void
store_chg_set_str(struct store_chg *c, const char *s1, const char *s2)
{
	free(c->s1);
	free(c->s2);
	c->s1 = s1 != NULL ? xstrdup(s1) : NULL;
	c->s2 = s2 != NULL ? xstrdup(s2) : NULL;
}

void
store_txn_unlink_after(struct store_txn *t, const char *path)
{
	t->unlink_after = xreallocarray(t->unlink_after, t->nunlink + 1,
	    sizeof(*t->unlink_after));
	t->unlink_after[t->nunlink++] = xstrdup(path);
}

int
store_counts_apply(struct store_txn *t, int64_t mbid, uint32_t flags,
    int64_t size, int sign, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	bool del = (flags & STORE_F_DELETED) != 0;
	bool seen = (flags & STORE_F_SEEN) != 0;
	int rc = -1;

	if (store_stmt_get(t,
		"UPDATE mailbox SET total = total + ?2, deleted = deleted + ?3,"
		" unread = unread + ?4, unseen = unseen + ?5,"
		" size = size + ?6 WHERE id = ?1",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, mbid);
	sqlite3_bind_int(st, 2, del ? 0 : sign);
	sqlite3_bind_int(st, 3, del ? sign : 0);
	sqlite3_bind_int(st, 4, (!seen && !del) ? sign : 0);
	sqlite3_bind_int(st, 5, !seen ? sign : 0);
	sqlite3_bind_int64(st, 6, size * sign);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "update counts");
		goto out;
	}
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

/* Queue a MAILBOX_COUNTS change with the counts as they are now in the
 * transaction. Entries below t->chg_floor belong to deliveries of a group
 * commit that may be rolled back separately, so they are never changed:
 * an own entry is refreshed, else one is appended (store_int.h). */
int
store_counts_changed(struct store_txn *t, int64_t mbid, struct store_err *err)
{
	struct store_change *c = NULL;
	struct store_chg *holder = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (store_stmt_get(t,
		"SELECT name, total, deleted, unread, unseen, size"
		" FROM mailbox WHERE id = ?1",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, mbid);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW) {
		if (r == SQLITE_DONE)
			store_errf(err, STORE_ENOMAILBOX, "no such mailbox");
		else
			store_err_db(err, t->db, "read mailbox counts");
		goto out;
	}
	for (size_t i = t->chg_floor; i < t->nchg; i++)
		if (t->chg[i].c.type == STORE_CHANGE_MAILBOX_COUNTS &&
		    t->chg[i].c.mailbox_id == mbid) {
			holder = &t->chg[i];
			c = &holder->c;
		}
	if (c == NULL) {
		c = store_txn_change(t, STORE_CHANGE_MAILBOX_COUNTS, mbid);
		holder = &t->chg[t->nchg - 1];
		store_chg_set_str(holder,
		    (const char *)sqlite3_column_text(st, 0), NULL);
		c->name = holder->s1;
	}
	c->counts.total = sqlite3_column_int64(st, 1);
	c->counts.deleted = sqlite3_column_int64(st, 2);
	c->counts.unread = sqlite3_column_int64(st, 3);
	c->counts.unseen = sqlite3_column_int64(st, 4);
	c->counts.size = sqlite3_column_int64(st, 5);
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

int
store_disk_add(struct store_txn *t, int64_t delta, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (delta == 0)
		return 0;
	if (store_stmt_get(t,
		"UPDATE singleton SET disk_usage = disk_usage + ?1"
		" WHERE id = 1",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, delta);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "update disk usage");
		goto out;
	}
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

/* ---- subscriptions to changes ---- */

struct store_sub *
store_sub_new(struct store_account *a, store_change_fn *fn, void *arg)
{
	struct store_sub *s = xcalloc(1, sizeof(*s));

	s->a = a;
	s->fn = fn;
	s->arg = arg;
	lock_take(&a->hlock);
	s->next = a->subs;
	a->subs = s;
	lock_release(&a->hlock);
	return s;
}

void
store_sub_free(struct store_sub *sub)
{
	struct store_account *a;

	if (sub == NULL)
		return;
	a = sub->a;
	lock_take(&a->hlock);
	for (struct store_sub **pp = &a->subs; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			break;
		}
	lock_release(&a->hlock);
	if (origin_current == sub)
		origin_current = NULL;
	free(sub);
}

void
store_sub_origin(struct store_sub *sub)
{
	origin_current = sub;
}

int
store_disk_usage(struct store_account *a, int64_t *out, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (db == NULL)
		return -1;
	if (store_prepare(db, "SELECT disk_usage FROM singleton WHERE id = 1",
		&st, err) == -1)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_err_db(err, db, "read disk usage");
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

int
store_highest_deleted_modseq(struct store_account *a, int64_t *out,
    struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (db == NULL)
		return -1;
	if (store_prepare(db,
		"SELECT highest_deleted_modseq FROM singleton WHERE id = 1",
		&st, err) == -1)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_err_db(err, db, "read sync state");
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}
