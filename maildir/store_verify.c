/*
 * store_verify.c: the consistency checker and verifydata for account data
 * (spec/store.md 15, 17) and the account part of backup (spec/store.md
 * 16): SQLite online backup plus hard links of message files.
 *
 * Trust: the data directory may be damaged (truncated databases, missing
 * or stray files); every problem becomes a report line, never a crash.
 * Threads: any but the reactor; the check holds the account write lock
 * (and, read-write, SQLite's) for its duration so it sees one consistent
 * state. The backup holds the write lock only for the snapshot: writers,
 * also in other processes, go on while files are linked.
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

	if (c->nrows == 0)
		return NULL;
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

/* The directory of a mailbox without row: files in new/ and tmp/ are moved
 * away too (cur/ was done by check_mb_dir), then the empty directories
 * removed. Only rmdir: a file that could not be moved stays, reported. */
static void
check_unknown_mb(struct check *c, const char *mbname, int64_t mbid)
{
	static const char *const subs[] = { "new", "tmp" };
	struct buf p, f, rel;

	buf_init(&p, STORE_PATH_MAX);
	buf_init(&f, STORE_PATH_MAX);
	buf_init(&rel, STORE_PATH_MAX);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		DIR *d;
		struct dirent *de;

		store_mb_dir(c->a, mbid, subs[i], &p);
		d = opendir(p.data);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			bool ok;

			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			buf_reset(&f);
			buf_addf(&f, "%s/%s", p.data, de->d_name);
			buf_reset(&rel);
			buf_addf(&rel, "%s/%s", mbname, subs[i]);
			ok = c->fix &&
			    move_away(c, rel.data, de->d_name, f.data) == 0;
			problem(c, ok, "file of unknown mailbox %s", f.data);
		}
		closedir(d);
	}
	if (c->fix) {
		static const char *const all[] = { "cur", "new", "tmp" };
		bool gone = true;

		for (size_t i = 0; i < ARRAY_LEN(all); i++) {
			store_mb_dir(c->a, mbid, all[i], &p);
			if (rmdir(p.data) == -1 && errno != ENOENT)
				gone = false;
		}
		store_mb_dir(c->a, mbid, NULL, &p);
		if (rmdir(p.data) == -1 && errno != ENOENT)
			gone = false;
		if (!gone)
			problem(c, false, "directory of unknown mailbox %s"
					  " not empty",
			    p.data);
	}
	buf_release(&p);
	buf_release(&f);
	buf_release(&rel);
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
		if (!mb_known(c, (int64_t)mbid))
			check_unknown_mb(c, de->d_name, (int64_t)mbid);
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
	if (fix && a->store->readonly) {
		buf_addf(report, "%s: cannot fix a read-only account\n",
		    a->name);
		return -1;
	}
	/* Read-write: BEGIN IMMEDIATE also keeps other processes' writers
	 * out, so files and rows are seen in one state. */
	if ((a->store->readonly ? store_txn_begin_read(a, &c.t, &err) :
				  store_txn_begin(a, &c.t, &err)) == -1) {
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

/* Whether accounts/<name> is a directory without any entry. */
static bool
account_dir_empty(const char *datadir, const char *name)
{
	struct buf p;
	struct dirent *de;
	DIR *d;
	bool empty = true;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/accounts/%s", datadir, name);
	d = buf_failed(&p) ? NULL : opendir(p.data);
	if (d == NULL) {
		buf_release(&p);
		return false;
	}
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	buf_release(&p);
	return empty;
}

static int
remove_empty_account_dir(const char *datadir, const char *name)
{
	struct buf p;
	int rc;

	buf_init(&p, STORE_PATH_MAX);
	buf_addf(&p, "%s/accounts/%s", datadir, name);
	rc = buf_failed(&p) ? -1 : rmdir(p.data);
	buf_release(&p);
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

	/* Nothing is created in the directory checked; without fix nothing
	 * in it is written either. */
	s = store_open(datadir, fix ? STORE_OPEN_NOMKDIR : STORE_OPEN_READONLY,
	    &err);
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
			/* An empty directory is what an account creation
			 * that did not finish leaves (the index is built
			 * elsewhere and linked in last): no account, no
			 * data, nothing lost. */
			if (account_dir_empty(datadir, de->d_name)) {
				if (fix && remove_empty_account_dir(datadir,
					       de->d_name) == 0)
					buf_addf(report, "accounts/%s: removed "
					    "empty directory of an unfinished "
					    "account creation\n",
					    de->d_name);
				continue;
			}
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

#define BACKUP_RETRIES 50    /* lookups of a message whose file moves */
#define BACKUP_RETRY_MS 10

struct backup {
	struct store_account *a;
	sqlite3 *copy;          /* the snapshot, written only to record
				 * expunges made after it */
	sqlite3 *live;          /* read connection of the live index */
	const char *dstacc;
	int64_t *gone;          /* ids expunged or deleted since the snapshot */
	size_t ngone;
	size_t failed;          /* files not backed up */
	struct store_err first; /* the first failure */
	int64_t *dirs;          /* mailbox ids whose directories to fsync */
	size_t ndirs;
};

static void PRINTF_LIKE(2, 3)
bk_fail(struct backup *b, const char *fmt, ...)
{
	va_list ap;

	if (b->failed++ > 0)
		return;
	b->first.code = STORE_EINTERNAL;
	va_start(ap, fmt);
	if (vsnprintf(b->first.text, sizeof(b->first.text), fmt, ap) < 0)
		b->first.text[0] = '\0';
	va_end(ap);
}

/* Link src to dst, copying across file systems (spec/store.md 16). An
 * existing dst counts as done. -1 with errno. */
static int
bk_link(const char *src, const char *dst)
{
	struct buf data, e;
	int fd, rc;

	if (link(src, dst) == 0 || errno == EEXIST)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	buf_init(&data, BUF_NOMAX);
	buf_init(&e, 512);
	rc = io_read_file(src, &data, &e);
	if (rc == 0) {
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		rc = fd == -1 || io_write_all(fd, data.data, data.len) == -1 ||
			fsync(fd) == -1 ?
		    -1 :
		    0;
		if (fd != -1 && close(fd) == -1)
			rc = -1;
	} else
		errno = ENOENT;
	buf_release(&data);
	buf_release(&e);
	return rc;
}

/* Where message id is now in the live index: 1 with *mb_out, 0 when it is
 * expunged or has no row (its mailbox was deleted), -1 on error. */
static int
bk_live_mailbox(struct backup *b, int64_t id, int64_t *mb_out)
{
	sqlite3_stmt *st = NULL;
	int r, rc = -1;

	if (sqlite3_prepare_v2(b->live,
		"SELECT mailbox_id, expunged FROM message WHERE id = ?1", -1,
		&st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		rc = 0;
	else if (r == SQLITE_ROW) {
		*mb_out = sqlite3_column_int64(st, 0);
		rc = sqlite3_column_int(st, 1) != 0 ? 0 : 1;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Link message id of mailbox mb (as the snapshot has it) into the backup.
 * Another process may move or expunge it meanwhile: the live index says
 * where the file went, or that it is gone. */
static void
bk_message(struct backup *b, int64_t id, int64_t mb)
{
	struct buf src, dst;
	int64_t at = mb;

	buf_init(&src, STORE_PATH_MAX);
	buf_init(&dst, STORE_PATH_MAX);
	buf_addf(&dst, "%s/maildir/%lld/cur/%lld:2,", b->dstacc, (long long)mb,
	    (long long)id);
	for (int i = 0;; i++) {
		int64_t now = 0;
		int r;

		store_msg_path(b->a, at, id, &src);
		if (bk_link(src.data, dst.data) == 0)
			break;
		if (errno != ENOENT) {
			bk_fail(b, "link %s: %s", src.data,
			    log_strerror(errno));
			break;
		}
		r = bk_live_mailbox(b, id, &now);
		if (r == -1) {
			bk_fail(b, "message %lld: look up: %s", (long long)id,
			    sqlite3_errmsg(b->live));
			break;
		}
		if (r == 0) {
			b->gone = xreallocarray(b->gone, b->ngone + 1,
			    sizeof(*b->gone));
			b->gone[b->ngone++] = id;
			break;
		}
		if (i == BACKUP_RETRIES) {
			bk_fail(b, "message %lld: file not found",
			    (long long)id);
			break;
		}
		/* A move renames before it commits: the row may still
		 * name the old place for a moment. */
		if (now == at)
			sqlite3_sleep(BACKUP_RETRY_MS);
		at = now;
	}
	buf_release(&src);
	buf_release(&dst);
}

/* Files another program dropped in new/ that are not indexed yet. */
static void
bk_new_files(struct backup *b, int64_t mb)
{
	struct buf dir, src, dst;
	DIR *d;
	struct dirent *de;

	buf_init(&dir, STORE_PATH_MAX);
	buf_init(&src, STORE_PATH_MAX);
	buf_init(&dst, STORE_PATH_MAX);
	store_mb_dir(b->a, mb, "new", &dir);
	d = opendir(dir.data);
	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		buf_reset(&src);
		buf_addf(&src, "%s/%s", dir.data, de->d_name);
		if (lstat(src.data, &sb) == -1 || !S_ISREG(sb.st_mode))
			continue;
		buf_reset(&dst);
		buf_addf(&dst, "%s/maildir/%lld/new/%s", b->dstacc,
		    (long long)mb, de->d_name);
		/* Gone meanwhile means indexed meanwhile: the snapshot is
		 * older, so it stays waiting in the backup's new/. */
		if (bk_link(src.data, dst.data) == -1 && errno != ENOENT)
			bk_fail(b, "link %s: %s", src.data,
			    log_strerror(errno));
	}
	if (d != NULL)
		closedir(d);
	buf_release(&dir);
	buf_release(&src);
	buf_release(&dst);
}

/* Record in the copy the messages expunged since the snapshot, as an
 * expunge does (spec/store.md 5), and recompute the counts. */
static int
bk_apply_gone(struct backup *b, struct store_err *err)
{
	sqlite3_stmt *st = NULL, *rcp = NULL;
	int rc = -1;

	if (b->ngone == 0)
		return 0;
	if (store_exec(b->copy,
		"BEGIN IMMEDIATE;"
		" UPDATE singleton SET last_modseq = last_modseq + 1"
		" WHERE id = 1",
		err) == -1)
		return -1;
	if (store_prepare(b->copy,
		"UPDATE message SET expunged = 1, flags = 0, keywords = '',"
		" size = 0, parsed = NULL, msg_prefix = NULL,"
		" trained_junk = NULL, message_hash = NULL,"
		" modseq = (SELECT last_modseq FROM singleton WHERE id = 1)"
		" WHERE id = ?1",
		&st, err) == -1 ||
	    store_prepare(b->copy,
		"DELETE FROM recipient WHERE message_id = ?1", &rcp,
		err) == -1)
		goto out;
	for (size_t i = 0; i < b->ngone; i++) {
		sqlite3_reset(st);
		sqlite3_reset(rcp);
		sqlite3_bind_int64(st, 1, b->gone[i]);
		sqlite3_bind_int64(rcp, 1, b->gone[i]);
		if (sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_step(rcp) != SQLITE_DONE) {
			store_err_db(err, b->copy, "record expunge");
			goto out;
		}
	}
	if (store_exec(b->copy,
		"UPDATE mailbox SET"
		" total = (SELECT count(*) FROM message m WHERE"
		"  m.mailbox_id = mailbox.id AND m.expunged = 0"
		"  AND m.flags & 64 = 0),"
		" deleted = (SELECT count(*) FROM message m WHERE"
		"  m.mailbox_id = mailbox.id AND m.expunged = 0"
		"  AND m.flags & 64 != 0),"
		" unread = (SELECT count(*) FROM message m WHERE"
		"  m.mailbox_id = mailbox.id AND m.expunged = 0"
		"  AND m.flags & 65 = 0),"
		" unseen = (SELECT count(*) FROM message m WHERE"
		"  m.mailbox_id = mailbox.id AND m.expunged = 0"
		"  AND m.flags & 1 = 0),"
		" size = (SELECT coalesce(sum(m.size), 0) FROM message m"
		"  WHERE m.mailbox_id = mailbox.id AND m.expunged = 0);"
		" UPDATE singleton SET disk_usage ="
		" (SELECT coalesce(sum(size), 0) FROM mailbox) WHERE id = 1;"
		" COMMIT",
		err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(rcp);
	if (rc == -1 && !sqlite3_get_autocommit(b->copy)) {
		struct store_err ignored;

		(void)store_exec(b->copy, "ROLLBACK", &ignored);
	}
	return rc;
}

/* Make the links durable: every directory written, then their parents. */
static void
bk_sync_dirs(struct backup *b)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	struct buf p;

	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < b->ndirs; i++) {
		for (size_t k = 0; k < ARRAY_LEN(subs); k++) {
			buf_reset(&p);
			buf_addf(&p, "%s/maildir/%lld/%s", b->dstacc,
			    (long long)b->dirs[i], subs[k]);
			if (io_fsync_dir(p.data) == -1)
				bk_fail(b, "fsync %s", p.data);
		}
		buf_reset(&p);
		buf_addf(&p, "%s/maildir/%lld", b->dstacc,
		    (long long)b->dirs[i]);
		if (io_fsync_dir(p.data) == -1)
			bk_fail(b, "fsync %s", p.data);
	}
	buf_reset(&p);
	buf_addf(&p, "%s/maildir", b->dstacc);
	if (io_fsync_dir(p.data) == -1)
		bk_fail(b, "fsync %s", p.data);
	if (io_fsync_dir(b->dstacc) == -1)
		bk_fail(b, "fsync %s", b->dstacc);
	buf_release(&p);
}

static int
backup_files(struct backup *b, struct store_err *err)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	sqlite3_stmt *st = NULL;
	struct buf dst;
	int rc = -1, r;

	buf_init(&dst, STORE_PATH_MAX);
	if (store_prepare(b->copy, "SELECT id FROM mailbox", &st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t mb = sqlite3_column_int64(st, 0);

		for (size_t k = 0; k < ARRAY_LEN(subs); k++) {
			buf_reset(&dst);
			buf_addf(&dst, "%s/maildir/%lld/%s", b->dstacc,
			    (long long)mb, subs[k]);
			if (buf_failed(&dst) ||
			    io_mkdir_p(dst.data, 0750) == -1) {
				store_errf(err, STORE_EINTERNAL,
				    "mkdir %s: %s", dst.data,
				    log_strerror(errno));
				goto out;
			}
		}
		b->dirs = xreallocarray(b->dirs, b->ndirs + 1,
		    sizeof(*b->dirs));
		b->dirs[b->ndirs++] = mb;
		bk_new_files(b, mb);
	}
	sqlite3_finalize(st);
	if (store_prepare(b->copy,
		"SELECT id, mailbox_id FROM message WHERE expunged = 0", &st,
		err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		bk_message(b, sqlite3_column_int64(st, 0),
		    sqlite3_column_int64(st, 1));
	if (r != SQLITE_DONE) {
		store_err_db(err, b->copy, "list messages");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (bk_apply_gone(b, err) == -1)
		goto out;
	bk_sync_dirs(b);
	rc = 0;
out:
	sqlite3_finalize(st);
	buf_release(&dst);
	return rc;
}

int
store_backup_account(struct store_account *a, const char *dstdir,
    struct store_err *err)
{
	struct backup b;
	struct buf acc, dbp;
	sqlite3_backup *bk;
	int fd, rc = -1, r;

	memset(&b, 0, sizeof(b));
	b.a = a;
	buf_init(&acc, STORE_PATH_MAX);
	buf_init(&dbp, STORE_PATH_MAX);
	buf_addf(&acc, "%s/accounts/%s", dstdir, a->name);
	buf_addf(&dbp, "%s/index.db", acc.data);
	b.dstacc = acc.data;
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
	if (sqlite3_open_v2(dbp.data, &b.copy,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		store_err_db(err, b.copy, "open backup index.db");
		goto out;
	}
	b.live = store_db_get(a, err);
	if (b.live == NULL)
		goto out;
	/* One step: the copy is one read snapshot. a->wdb belongs to the
	 * holder of the write lock; writers in this process pause only for
	 * the snapshot, other processes not at all. */
	lock_take(&a->wlock);
	bk = sqlite3_backup_init(b.copy, "main", a->wdb, "main");
	r = bk == NULL ? SQLITE_ERROR : sqlite3_backup_step(bk, -1);
	if (bk != NULL && sqlite3_backup_finish(bk) != SQLITE_OK)
		r = SQLITE_ERROR;
	lock_release(&a->wlock);
	if (r != SQLITE_DONE) {
		store_err_db(err, b.copy, "backup");
		goto out;
	}
	if (backup_files(&b, err) == -1)
		goto out;
	if (b.failed > 0) {
		store_errf(err, STORE_EINTERNAL,
		    "%zu message files not backed up, first: %s", b.failed,
		    b.first.text);
		goto out;
	}
	rc = 0;
out:
	store_db_put(a, b.live);
	if (b.copy != NULL && sqlite3_close(b.copy) != SQLITE_OK && rc == 0) {
		store_errf(err, STORE_EINTERNAL, "close backup index.db");
		rc = -1;
	}
	free(b.gone);
	free(b.dirs);
	buf_release(&acc);
	buf_release(&dbp);
	return rc;
}
