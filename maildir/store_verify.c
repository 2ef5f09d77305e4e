/*
 * store_verify.c: the consistency checker and verifydata for account data
 * (spec/store.md 15, 17) and the account part of backup (spec/store.md
 * 16): SQLite online backup plus hard links of message files.
 *
 * Trust: the data directory may be damaged (truncated databases, missing
 * or stray files); every problem becomes a report line, never a crash.
 * Threads: any but the reactor; the check and the backup hold the account
 * write lock for their duration so they see one consistent state.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "store_int.h"
#include "lib/banned.h"

#define REPORT_MAX 1000 /* problem lines per account */

struct rowref {
	int64_t id;
	int64_t mbid;
	int64_t size;
	bool expunged;
};

struct check {
	struct store_account *a;
	struct store_txn t;
	struct buf *report;
	bool fix;
	size_t problems;  /* found */
	size_t remaining; /* not fixed */
	struct rowref *rows;
	size_t nrows;
	int64_t *mbids;
	size_t nmb;
};

static void PRINTF_LIKE(3, 4)
problem(struct check *c, bool fixed, const char *fmt, ...)
{
	va_list ap;

	c->problems++;
	if (!fixed)
		c->remaining++;
	if (c->problems > REPORT_MAX)
		return;
	buf_addf(c->report, "%s: ", c->a->name);
	va_start(ap, fmt);
	buf_vaddf(c->report, fmt, ap);
	va_end(ap);
	buf_adds(c->report, fixed ? " (fixed)\n" : "\n");
}

static int
cmp_row(const void *x, const void *y)
{
	const struct rowref *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static struct rowref *
row_find(struct check *c, int64_t id)
{
	struct rowref key = { .id = id };

	return bsearch(&key, c->rows, c->nrows, sizeof(*c->rows), cmp_row);
}

static bool
mb_known(struct check *c, int64_t id)
{
	for (size_t i = 0; i < c->nmb; i++)
		if (c->mbids[i] == id)
			return true;
	return false;
}

static int
load(struct check *c, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r, rc = -1;

	if (store_prepare(c->t.db,
		"SELECT id, mailbox_id, size, expunged FROM message ORDER BY id",
		&st, err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (c->nrows == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			c->rows = xreallocarray(c->rows, cap, sizeof(*c->rows));
		}
		c->rows[c->nrows].id = sqlite3_column_int64(st, 0);
		c->rows[c->nrows].mbid = sqlite3_column_int64(st, 1);
		c->rows[c->nrows].size = sqlite3_column_int64(st, 2);
		c->rows[c->nrows].expunged = sqlite3_column_int(st, 3) != 0;
		c->nrows++;
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, c->t.db, "read messages");
		goto out;
	}
	sqlite3_finalize(st);
	if (store_prepare(c->t.db, "SELECT id FROM mailbox", &st, err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		c->mbids = xreallocarray(c->mbids, c->nmb + 1,
		    sizeof(*c->mbids));
		c->mbids[c->nmb++] = sqlite3_column_int64(st, 0);
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, c->t.db, "read mailboxes");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static void
check_integrity(struct check *c)
{
	sqlite3_stmt *st = NULL;
	struct store_err err;
	int r;

	if (store_prepare(c->t.db, "PRAGMA integrity_check", &st, &err) == -1) {
		problem(c, false, "integrity check: %s", err.text);
		return;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (s != NULL && strcmp(s, "ok") != 0)
			problem(c, false, "integrity check: %s", s);
	}
	if (r != SQLITE_DONE)
		problem(c, false, "integrity check: %s",
		    sqlite3_errmsg(c->t.db));
	sqlite3_finalize(st);
}

/* Find a live row's file in another mailbox directory (a MOVE whose
 * commit was lost, spec/store.md 2.2 rule 2). */
static bool
relocate(struct check *c, const struct rowref *r, const char *want)
{
	struct buf p;
	bool found = false;

	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < c->nmb && !found; i++) {
		struct stat sb;

		if (c->mbids[i] == r->mbid)
			continue;
		store_msg_path(c->a, c->mbids[i], r->id, &p);
		if (stat(p.data, &sb) == -1)
			continue;
		found = true;
		if (c->fix && rename(p.data, want) == 0)
			problem(c, true, "message %lld: file in mailbox %lld",
			    (long long)r->id, (long long)c->mbids[i]);
		else
			problem(c, false, "message %lld: file in mailbox %lld",
			    (long long)r->id, (long long)c->mbids[i]);
	}
	buf_release(&p);
	return found;
}

static void
check_files(struct check *c)
{
	struct buf p;

	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < c->nrows; i++) {
		const struct rowref *r = &c->rows[i];
		struct stat sb;

		if (r->expunged)
			continue;
		store_msg_path(c->a, r->mbid, r->id, &p);
		if (stat(p.data, &sb) == -1) {
			if (!relocate(c, r, p.data))
				problem(c, false,
				    "message %lld: file missing: %s",
				    (long long)r->id, p.data);
			continue;
		}
		if ((int64_t)sb.st_size != r->size)
			problem(c, false,
			    "message %lld: size %lld, file has %lld",
			    (long long)r->id, (long long)r->size,
			    (long long)sb.st_size);
	}
	buf_release(&p);
}

/* Move a stray file to <datadir>/moved/accounts/<name>/<mb>/<file>. */
static int
move_away(struct check *c, const char *mbdir, const char *name,
    const char *path)
{
	struct buf dst;
	int rc = -1;

	buf_init(&dst, STORE_PATH_MAX);
	buf_addf(&dst, "%s/moved/accounts/%s/%s", c->a->store->datadir,
	    c->a->name, mbdir);
	if (buf_failed(&dst) || io_mkdir_p(dst.data, 0750) == -1)
		goto out;
	buf_addf(&dst, "/%s", name);
	if (link(path, dst.data) == -1 || unlink(path) == -1)
		goto out;
	rc = 0;
out:
	buf_release(&dst);
	return rc;
}

static void
check_mb_dir(struct check *c, const char *mbname, int64_t mbid)
{
	struct buf p, f;
	DIR *d;
	struct dirent *de;
	bool known = mb_known(c, mbid);

	buf_init(&p, STORE_PATH_MAX);
	buf_init(&f, STORE_PATH_MAX);
	store_mb_dir(c->a, mbid, "cur", &p);
	d = opendir(p.data);
	if (d == NULL) {
		if (known)
			problem(c, false, "mailbox %lld: no cur directory",
			    (long long)mbid);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct scan s = scan_of(span_of_cstr(de->d_name));
		uint64_t id;
		struct rowref *r;
		struct store_err err;
		bool ok;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		buf_reset(&f);
		buf_addf(&f, "%s/%s", p.data, de->d_name);
		if (scan_u64(&s, INT64_MAX, &id) == -1 ||
		    scan_lit(&s, ":2,") == -1 || !scan_eof(&s)) {
			ok = c->fix && move_away(c, mbname, de->d_name,
					   f.data) == 0;
			problem(c, ok, "unrecognised file %s", f.data);
			continue;
		}
		r = row_find(c, (int64_t)id);
		if (r != NULL && r->mbid == (int64_t)mbid && !r->expunged)
			continue;
		if (r == NULL && known) {
			/* DESIGN.md: a crash after the link leaves a file
			 * without a row; -fix indexes it. */
			ok = c->fix &&
			    store_msg_reindex_txn(&c->t, mbid, (int64_t)id,
				f.data, &err) == 0;
			problem(c, ok, "orphan message file %s", f.data);
			continue;
		}
		ok = c->fix && move_away(c, mbname, de->d_name, f.data) == 0;
		problem(c, ok, "unreferenced message file %s", f.data);
	}
	closedir(d);
out:
	buf_release(&p);
	buf_release(&f);
}

static void
check_orphans(struct check *c)
{
	struct buf p;
	DIR *d;
	struct dirent *de;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/maildir", c->a->dir);
	d = opendir(p.data);
	if (d == NULL) {
		problem(c, false, "no maildir directory");
		buf_release(&p);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t mbid;

		if (de->d_name[0] == '.')
			continue;
		if (span_u64(span_of_cstr(de->d_name), INT64_MAX, &mbid) ==
		    -1) {
			problem(c, false, "unrecognised entry maildir/%s",
			    de->d_name);
			continue;
		}
		check_mb_dir(c, de->d_name, (int64_t)mbid);
		if (!mb_known(c, (int64_t)mbid) && c->fix)
			(void)store_rmtree_mb(c->a, (int64_t)mbid);
	}
	closedir(d);
	buf_release(&p);
}

static void
check_counts(struct check *c)
{
	sqlite3_stmt *st = NULL;
	struct store_err err;
	int r;

	if (store_prepare(c->t.db,
		"SELECT b.id, b.name, b.total, b.deleted, b.unread, b.unseen,"
		" b.size,"
		" coalesce(sum(m.flags & 64 = 0), 0),"
		" coalesce(sum(m.flags & 64 != 0), 0),"
		" coalesce(sum(m.flags & 1 = 0 AND m.flags & 64 = 0), 0),"
		" coalesce(sum(m.flags & 1 = 0), 0),"
		" coalesce(sum(m.size), 0)"
		" FROM mailbox b LEFT JOIN message m ON m.mailbox_id = b.id"
		" AND m.expunged = 0 GROUP BY b.id",
		&st, &err) == -1) {
		problem(c, false, "counts: %s", err.text);
		return;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		bool same = true, ok = false;

		for (int i = 0; i < 5; i++)
			same = same && sqlite3_column_int64(st, 2 + i) ==
			    sqlite3_column_int64(st, 7 + i);
		if (same)
			continue;
		if (c->fix) {
			sqlite3_stmt *up = NULL;

			if (store_prepare(c->t.db,
				"UPDATE mailbox SET total = ?2, deleted = ?3,"
				" unread = ?4, unseen = ?5, size = ?6"
				" WHERE id = ?1",
				&up, &err) == 0) {
				sqlite3_bind_int64(up, 1,
				    sqlite3_column_int64(st, 0));
				for (int i = 0; i < 5; i++)
					sqlite3_bind_int64(up, 2 + i,
					    sqlite3_column_int64(st, 7 + i));
				ok = sqlite3_step(up) == SQLITE_DONE;
			}
			sqlite3_finalize(up);
			if (ok)
				(void)store_counts_changed(&c->t,
				    sqlite3_column_int64(st, 0), &err);
		}
		problem(c, ok,
		    "mailbox %s: counts %lld/%lld/%lld/%lld/%lld, recomputed"
		    " %lld/%lld/%lld/%lld/%lld",
		    (const char *)sqlite3_column_text(st, 1),
		    (long long)sqlite3_column_int64(st, 2),
		    (long long)sqlite3_column_int64(st, 3),
		    (long long)sqlite3_column_int64(st, 4),
		    (long long)sqlite3_column_int64(st, 5),
		    (long long)sqlite3_column_int64(st, 6),
		    (long long)sqlite3_column_int64(st, 7),
		    (long long)sqlite3_column_int64(st, 8),
		    (long long)sqlite3_column_int64(st, 9),
		    (long long)sqlite3_column_int64(st, 10),
		    (long long)sqlite3_column_int64(st, 11));
	}
	sqlite3_finalize(st);
}

/* A query returning one count of violations; fix_sql repairs them. */
static void
check_rule(struct check *c, const char *what, const char *sql,
    const char *fix_sql)
{
	sqlite3_stmt *st = NULL;
	struct store_err err;
	int64_t n = 0;
	bool ok = false;

	if (store_prepare(c->t.db, sql, &st, &err) == -1) {
		problem(c, false, "%s: %s", what, err.text);
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else {
		problem(c, false, "%s: %s", what, sqlite3_errmsg(c->t.db));
		sqlite3_finalize(st);
		return;
	}
	sqlite3_finalize(st);
	if (n == 0)
		return;
	if (c->fix && fix_sql != NULL)
		ok = store_exec(c->t.db, fix_sql, &err) == 0;
	problem(c, ok, "%s: %lld", what, (long long)n);
}

static void
check_rules(struct check *c)
{
	check_rule(c, "disk usage differs from sum of mailbox sizes",
	    "SELECT (SELECT disk_usage FROM singleton WHERE id = 1) !="
	    " (SELECT coalesce(sum(size), 0) FROM mailbox)",
	    "UPDATE singleton SET disk_usage ="
	    " (SELECT coalesce(sum(size), 0) FROM mailbox) WHERE id = 1");
	check_rule(c, "messages with uid >= uidnext",
	    "SELECT count(*) FROM message m JOIN mailbox b"
	    " ON m.mailbox_id = b.id WHERE m.uid >= b.uidnext OR m.uid < 1",
	    NULL);
	check_rule(c, "mailboxes with uidvalidity >= next uidvalidity",
	    "SELECT count(*) FROM mailbox WHERE uidvalidity >="
	    " (SELECT next_uidvalidity FROM singleton WHERE id = 1)",
	    NULL);
	check_rule(c, "messages with bad modseq or createseq",
	    "SELECT count(*) FROM message WHERE modseq <= 0 OR createseq <= 0"
	    " OR createseq > modseq OR modseq >"
	    " (SELECT last_modseq FROM singleton WHERE id = 1)",
	    NULL);
	check_rule(c, "messages in unknown mailboxes",
	    "SELECT count(*) FROM message WHERE mailbox_id NOT IN"
	    " (SELECT id FROM mailbox)",
	    NULL);
}

int
store_check(struct store_account *a, bool fix, struct buf *report)
{
	struct check c;
	struct store_err err;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	c.a = a;
	c.report = report;
	c.fix = fix;
	if (store_txn_begin(a, &c.t, &err) == -1) {
		buf_addf(report, "%s: %s\n", a->name, err.text);
		return -1;
	}
	check_integrity(&c);
	if (load(&c, &err) == -1) {
		problem(&c, false, "%s", err.text);
		goto out;
	}
	check_files(&c);
	check_orphans(&c);
	check_counts(&c);
	check_rules(&c);
	if (c.problems > REPORT_MAX)
		buf_addf(report, "%s: %zu more problems\n", a->name,
		    c.problems - REPORT_MAX);
out:
	if (fix && c.t.db != NULL) {
		if (store_txn_commit(&c.t, &err) == -1) {
			buf_addf(report, "%s: commit fixes: %s\n", a->name,
			    err.text);
			c.remaining++;
		}
	} else
		store_txn_abort(&c.t);
	rc = c.remaining == 0 ? 0 : -1;
	free(c.rows);
	free(c.mbids);
	return rc;
}

int
store_verify_datadir(const char *datadir, bool fix, struct buf *report)
{
	struct store *s;
	struct store_err err;
	struct buf p;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	s = store_new(datadir, &err);
	if (s == NULL) {
		buf_addf(report, "%s: %s\n", datadir, err.text);
		return -1;
	}
	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/accounts", datadir);
	d = opendir(p.data);
	if (d == NULL) {
		buf_addf(report, "%s: %s\n", p.data, log_strerror(errno));
		rc = -1;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct store_account *a;

		if (de->d_name[0] == '.')
			continue;
		if (!store_account_name_valid(de->d_name)) {
			buf_addf(report, "accounts/%s: invalid account name\n",
			    de->d_name);
			rc = -1;
			continue;
		}
		if (store_account_get(s, de->d_name, false, &a, &err) == -1) {
			buf_addf(report, "%s: %s\n", de->d_name, err.text);
			rc = -1;
			continue;
		}
		if (store_check(a, fix, report) == -1)
			rc = -1;
		store_account_put(a);
	}
	closedir(d);
out:
	buf_release(&p);
	store_free(s);
	return rc;
}

/* ---- backup ---- */

static int
backup_files(struct store_account *a, sqlite3 *copy, const char *dstacc,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	struct buf src, dst;
	int rc = -1, r;

	buf_init(&src, STORE_PATH_MAX);
	buf_init(&dst, STORE_PATH_MAX);
	if (store_prepare(copy, "SELECT id FROM mailbox", &st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		buf_reset(&dst);
		buf_addf(&dst, "%s/maildir/%lld/cur", dstacc,
		    (long long)sqlite3_column_int64(st, 0));
		if (buf_failed(&dst) || io_mkdir_p(dst.data, 0750) == -1) {
			store_errf(err, STORE_EINTERNAL, "mkdir %s: %s",
			    dst.data, log_strerror(errno));
			goto out;
		}
	}
	sqlite3_finalize(st);
	if (store_prepare(copy,
		"SELECT id, mailbox_id FROM message WHERE expunged = 0", &st,
		err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int64_t mb = sqlite3_column_int64(st, 1);

		store_msg_path(a, mb, id, &src);
		buf_reset(&dst);
		buf_addf(&dst, "%s/maildir/%lld/cur/%lld:2,", dstacc,
		    (long long)mb, (long long)id);
		if (link(src.data, dst.data) == 0)
			continue;
		/* spec/store.md 16: copy across file systems. */
		if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
			store_errf(err, STORE_EINTERNAL, "link %s: %s",
			    src.data, log_strerror(errno));
			goto out;
		}
		{
			struct buf data, e;
			int wrc;

			buf_init(&data, BUF_NOMAX);
			buf_init(&e, 512);
			wrc = io_read_file(src.data, &data, &e);
			if (wrc == 0) {
				int fd = open(dst.data,
				    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				    0640);

				wrc = fd == -1 ||
					io_write_all(fd, data.data, data.len) ==
					    -1 ||
					fsync(fd) == -1 ?
				    -1 :
				    0;
				if (fd != -1 && close(fd) == -1)
					wrc = -1;
			}
			buf_release(&data);
			buf_release(&e);
			if (wrc == -1) {
				store_errf(err, STORE_EINTERNAL,
				    "copy %s failed", src.data);
				goto out;
			}
		}
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, copy, "list messages");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	buf_release(&src);
	buf_release(&dst);
	return rc;
}

int
store_backup_account(struct store_account *a, const char *dstdir,
    struct store_err *err)
{
	struct buf acc, dbp;
	sqlite3 *copy = NULL;
	sqlite3_backup *bk;
	int fd, rc = -1;
	bool locked = false;

	buf_init(&acc, STORE_PATH_MAX);
	buf_init(&dbp, STORE_PATH_MAX);
	buf_addf(&acc, "%s/accounts/%s", dstdir, a->name);
	buf_addf(&dbp, "%s/index.db", acc.data);
	if (buf_failed(&dbp) || io_mkdir_p(acc.data, 0750) == -1) {
		store_errf(err, STORE_EINTERNAL, "mkdir %s: %s", acc.data,
		    log_strerror(errno));
		goto out;
	}
	/* spec/store.md 16: never overwrite. */
	fd = open(dbp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1 || close(fd) == -1) {
		store_errf(err, STORE_EEXISTS, "create %s: %s", dbp.data,
		    log_strerror(errno));
		goto out;
	}
	if (sqlite3_open_v2(dbp.data, &copy,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		store_err_db(err, copy, "open backup index.db");
		goto out;
	}
	lock_take(&a->wlock);
	locked = true;
	bk = sqlite3_backup_init(copy, "main", a->wdb, "main");
	if (bk == NULL) {
		store_err_db(err, copy, "backup init");
		goto out;
	}
	if (sqlite3_backup_step(bk, -1) != SQLITE_DONE) {
		(void)sqlite3_backup_finish(bk);
		store_err_db(err, copy, "backup");
		goto out;
	}
	if (sqlite3_backup_finish(bk) != SQLITE_OK) {
		store_err_db(err, copy, "backup finish");
		goto out;
	}
	if (backup_files(a, copy, acc.data, err) == -1)
		goto out;
	rc = 0;
out:
	if (locked)
		lock_release(&a->wlock);
	if (copy != NULL && sqlite3_close(copy) != SQLITE_OK && rc == 0) {
		store_errf(err, STORE_EINTERNAL, "close backup index.db");
		rc = -1;
	}
	buf_release(&acc);
	buf_release(&dbp);
	return rc;
}
