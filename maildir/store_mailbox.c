/*
 * store_mailbox.c: mailbox names, mailbox records, subscriptions and
 * keyword lists (spec/store.md 1, 3.2, 4, 6, 12; RFC 9051 6.3.4-6.3.8,
 * RFC 6154 special-use).
 *
 * Trust: mailbox names and keywords come from authenticated IMAP clients
 * and web users; they are checked here and never become paths (a mailbox's
 * directory is named by its numeric id). Threads: any but the reactor;
 * writes run under the account write lock (store_txn_begin).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/span.h"
#include "lib/xmalloc.h"
#include "store_int.h"
#include "lib/banned.h"

#define MB_COLS \
	"id, name, uidvalidity, uidnext, special, keywords, total, deleted," \
	" unread, unseen, size," \
	" (SELECT max(modseq) FROM message WHERE mailbox_id = mailbox.id)," \
	" EXISTS (SELECT 1 FROM subscription WHERE subscription.name =" \
	" mailbox.name)"

static const char *const well_known_kw[] = {
	"$forwarded", "$junk", "$notjunk", "$phishing", "$mdnsent",
};

int
store_mailbox_name_check(const char *name, struct buf *out, const char **why)
{
	size_t n, start = 0;

	buf_reset(out);
	if (name == NULL || name[0] == '\0') {
		*why = "empty mailbox name";
		return -1;
	}
	n = strlen(name);
	if (n > STORE_MAILBOX_NAME_MAX) {
		*why = "mailbox name too long";
		return -1;
	}
	if (!utf8_valid(name, n)) {
		*why = "mailbox name is not valid UTF-8";
		return -1;
	}
	if (name[0] == '#') {
		*why = "mailbox name must not start with #";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		/* spec/store.md 1: no U+0000-U+001F, U+007F-U+009F,
		 * U+2028, U+2029. */
		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < n &&
			(unsigned char)name[i + 1] >= 0x80 &&
			(unsigned char)name[i + 1] <= 0x9f) ||
		    (c == 0xe2 && i + 2 < n &&
			(unsigned char)name[i + 1] == 0x80 &&
			((unsigned char)name[i + 2] == 0xa8 ||
			    (unsigned char)name[i + 2] == 0xa9))) {
			*why = "control character in mailbox name";
			return -1;
		}
	}
	for (size_t i = 0; i <= n; i++) {
		struct span el;

		if (i < n && name[i] != '/')
			continue;
		el = span_of(name + start, i - start);
		if (el.len == 0) {
			*why = "empty element in mailbox name";
			return -1;
		}
		if (span_eq_cstr(el, ".") || span_eq_cstr(el, "..")) {
			*why = "mailbox name element . or ..";
			return -1;
		}
		/* RFC 9051 5.1: INBOX is case-insensitive; we spell it
		 * Inbox, also as the first element of a path. */
		if (start == 0 && span_eq_ci(el, "inbox"))
			buf_adds(out, "Inbox");
		else
			buf_add(out, el.p, el.len);
		if (i < n)
			buf_addc(out, '/');
		start = i + 1;
	}
	if (buf_failed(out)) {
		*why = "mailbox name too long";
		return -1;
	}
	return 0;
}

static int
canon_name(const char *name, struct buf *out, struct store_err *err)
{
	const char *why = NULL;

	buf_init(out, STORE_MAILBOX_NAME_MAX + 8);
	if (store_mailbox_name_check(name, out, &why) == -1) {
		store_errf(err, STORE_EINVAL, "%s", why);
		return -1;
	}
	return 0;
}

/* ---- keywords ---- */

static int
kw_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Split a space-separated list into sorted unique words (owned). */
static size_t
kw_split(const char *in, char ***out)
{
	char **v = NULL;
	size_t n = 0, k = 0;
	const char *p = in != NULL ? in : "";

	while (*p != '\0') {
		const char *e;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		e = strchr(p, ' ');
		if (e == NULL)
			e = p + strlen(p);
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrndup(p, (size_t)(e - p));
		p = e;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), kw_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && strcmp(v[k - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[k++] = v[i];
	}
	*out = v;
	return k;
}

static void
kw_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
kw_join(char **v, size_t n, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(out, ' ');
		buf_adds(out, v[i]);
	}
}

int
store_kw_norm(const char *in, struct buf *out, const char **why)
{
	char **v;
	size_t n = kw_split(in, &v);
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]);

		if (len > STORE_KEYWORD_MAX) {
			*why = "keyword too long";
			goto out;
		}
		for (size_t j = 0; j < len; j++) {
			unsigned char c = (unsigned char)v[i][j];

			if (c >= 'A' && c <= 'Z')
				v[i][j] = (char)(c - 'A' + 'a');
			else if (c < 0x21 || c > 0x7e ||
			    strchr("(){%*\"\\]", c) != NULL) {
				*why = "invalid character in keyword";
				goto out;
			}
		}
		for (size_t j = 0; j < ARRAY_LEN(well_known_kw); j++)
			if (strcmp(v[i], well_known_kw[j]) == 0) {
				*why = "well-known keyword is a flag";
				goto out;
			}
	}
	/* Lower-casing may have made duplicates: split again. */
	kw_join(v, n, out);
	kw_free(v, n);
	n = kw_split(out->data, &v);
	kw_join(v, n, out);
	if (buf_failed(out) || out->len > STORE_KEYWORDS_MAX) {
		*why = "keyword list too long";
		goto out;
	}
	rc = 0;
out:
	kw_free(v, n);
	return rc;
}

void
store_kw_union(const char *a, const char *b, struct buf *out)
{
	struct buf tmp;
	char **v;
	size_t n;

	buf_init(&tmp, BUF_NOMAX);
	buf_addf(&tmp, "%s %s", a != NULL ? a : "", b != NULL ? b : "");
	n = kw_split(tmp.data, &v);
	kw_join(v, n, out);
	kw_free(v, n);
	buf_release(&tmp);
}

void
store_kw_minus(const char *a, const char *b, struct buf *out)
{
	char **va, **vb;
	size_t na = kw_split(a, &va), nb = kw_split(b, &vb), k = 0;

	for (size_t i = 0; i < na; i++) {
		bool drop = false;

		for (size_t j = 0; j < nb && !drop; j++)
			drop = strcmp(va[i], vb[j]) == 0;
		if (drop)
			free(va[i]);
		else
			va[k++] = va[i];
	}
	kw_join(va, k, out);
	kw_free(va, k);
	kw_free(vb, nb);
}

/* Add keywords to the mailbox's list (it only grows, spec/store.md 3.2)
 * and queue a MAILBOX_KEYWORDS change when it grew. */
int
store_mb_kw_merge(struct store_txn *t, int64_t mbid, const char *kw,
    struct store_err *err)
{
	struct store_mailbox mb;
	struct buf u;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (kw == NULL || kw[0] == '\0')
		return 0;
	if (store_mb_read(t->db, mbid, &mb, err) == -1)
		return -1;
	buf_init(&u, BUF_NOMAX);
	store_kw_union(mb.keywords, kw, &u);
	if (strcmp(u.data, mb.keywords) == 0) {
		rc = 0;
		goto out;
	}
	if (store_prepare(t->db, "UPDATE mailbox SET keywords = ?2 WHERE id = ?1",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, mbid);
	sqlite3_bind_text(st, 2, u.data, (int)u.len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "update mailbox keywords");
		goto out;
	}
	{
		struct store_change *c = store_txn_change(t,
		    STORE_CHANGE_MAILBOX_KEYWORDS, mbid);
		struct store_chg *h = &t->chg[t->nchg - 1];

		store_chg_set_str(h, mb.name, u.data);
		c->name = h->s1;
		c->keywords = h->s2;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	buf_release(&u);
	store_mailbox_release(&mb);
	return rc;
}

/* ---- records ---- */

void
store_mailbox_release(struct store_mailbox *mb)
{
	if (mb == NULL)
		return;
	free(mb->name);
	free(mb->keywords);
	mb->name = mb->keywords = NULL;
}

static void
mb_from_row(sqlite3_stmt *st, struct store_mailbox *mb)
{
	const char *kw = (const char *)sqlite3_column_text(st, 5);

	memset(mb, 0, sizeof(*mb));
	mb->id = sqlite3_column_int64(st, 0);
	mb->name = xstrdup((const char *)sqlite3_column_text(st, 1));
	mb->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	mb->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
	mb->special = (unsigned)sqlite3_column_int(st, 4);
	mb->keywords = xstrdup(kw != NULL ? kw : "");
	mb->counts.total = sqlite3_column_int64(st, 6);
	mb->counts.deleted = sqlite3_column_int64(st, 7);
	mb->counts.unread = sqlite3_column_int64(st, 8);
	mb->counts.unseen = sqlite3_column_int64(st, 9);
	mb->counts.size = sqlite3_column_int64(st, 10);
	mb->highestmodseq = sqlite3_column_int64(st, 11);
	mb->subscribed = sqlite3_column_int(st, 12) != 0;
}

int
store_mb_read(sqlite3 *db, int64_t id, struct store_mailbox *out,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (store_prepare(db, "SELECT " MB_COLS " FROM mailbox WHERE id = ?1",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		mb_from_row(st, out);
		rc = 0;
	} else if (r == SQLITE_DONE)
		store_errf(err, STORE_ENOMAILBOX, "no such mailbox");
	else
		store_err_db(err, db, "read mailbox");
	sqlite3_finalize(st);
	return rc;
}

int
store_mb_lookup(sqlite3 *db, const char *canon, int64_t *id_out,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (store_prepare(db, "SELECT id FROM mailbox WHERE name = ?1", &st,
		err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*id_out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (r == SQLITE_DONE)
		store_errf(err, STORE_ENOMAILBOX, "no such mailbox");
	else
		store_err_db(err, db, "look up mailbox");
	sqlite3_finalize(st);
	return rc;
}

int
store_mailbox_get(struct store_account *a, const char *name,
    struct store_mailbox *out, struct store_err *err)
{
	struct buf canon;
	sqlite3 *db = NULL;
	int64_t id;
	int rc = -1;

	if (canon_name(name, &canon, err) == -1)
		goto out;
	db = store_db_get(a, err);
	if (db == NULL)
		goto out;
	if (store_mb_lookup(db, canon.data, &id, err) == -1 ||
	    store_mb_read(db, id, out, err) == -1)
		goto out;
	rc = 0;
out:
	store_db_put(a, db);
	buf_release(&canon);
	return rc;
}

int
store_mailbox_get_id(struct store_account *a, int64_t id,
    struct store_mailbox *out, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	int rc;

	if (db == NULL)
		return -1;
	rc = store_mb_read(db, id, out, err);
	store_db_put(a, db);
	return rc;
}

void
store_mailbox_list_free(struct store_mailbox *mbs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_mailbox_release(&mbs[i]);
	free(mbs);
}

int
store_mailbox_list(struct store_account *a, struct store_mailbox **out,
    size_t *n_out, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	struct store_mailbox *v = NULL;
	size_t n = 0;
	int rc = -1, r;

	if (db == NULL)
		return -1;
	if (store_prepare(db, "SELECT " MB_COLS " FROM mailbox ORDER BY name",
		&st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		mb_from_row(st, &v[n++]);
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, db, "list mailboxes");
		goto out;
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	store_mailbox_list_free(v, n);
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

/* ---- writes ---- */

int
store_uidvalidity_next(struct store_txn *t, uint32_t *out,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (store_prepare(t->db,
		"UPDATE singleton SET next_uidvalidity = next_uidvalidity + 1"
		" WHERE id = 1 RETURNING next_uidvalidity - 1",
		&st, err) == -1)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_err_db(err, t->db, "next uidvalidity");
		goto out;
	}
	*out = (uint32_t)sqlite3_column_int64(st, 0);
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
subscribe_txn(struct store_txn *t, const char *canon, bool nonexistent,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (store_prepare(t->db,
		"INSERT OR IGNORE INTO subscription(name) VALUES (?1)", &st,
		err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "subscribe");
		goto out;
	}
	if (sqlite3_changes(t->db) > 0) {
		struct store_change *c = store_txn_change(t,
		    STORE_CHANGE_SUBSCRIPTION_ADD, 0);
		struct store_chg *h = &t->chg[t->nchg - 1];

		store_chg_set_str(h, canon, NULL);
		c->name = h->s1;
		c->nonexistent = nonexistent;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
mb_insert(struct store_txn *t, const char *canon, uint32_t uidvalidity,
    unsigned special, int64_t *id_out, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (store_prepare(t->db,
		"INSERT INTO mailbox(name, uidvalidity, special)"
		" VALUES (?1, ?2, ?3)",
		&st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int(st, 3, (int)(special & STORE_SU_ALL));
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "insert mailbox");
		goto out;
	}
	*id_out = sqlite3_last_insert_rowid(t->db);
	if (store_mb_dirs_create(t->a, *id_out, err) == -1 ||
	    subscribe_txn(t, canon, false, err) == -1)
		goto out;
	{
		struct store_change *c = store_txn_change(t,
		    STORE_CHANGE_MAILBOX_ADD, *id_out);
		struct store_chg *h = &t->chg[t->nchg - 1];

		store_chg_set_str(h, canon, NULL);
		c->name = h->s1;
		c->special = special & STORE_SU_ALL;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Create missing parents of canon (not canon itself). */
static int
mb_parents_txn(struct store_txn *t, const char *canon, struct store_err *err)
{
	struct buf p;
	int rc = -1;

	buf_init(&p, STORE_MAILBOX_NAME_MAX + 8);
	for (const char *s = strchr(canon, '/'); s != NULL;
	     s = strchr(s + 1, '/')) {
		int64_t id;
		struct store_err e2;
		uint32_t uv;

		buf_reset(&p);
		buf_add(&p, canon, (size_t)(s - canon));
		if (store_mb_lookup(t->db, p.data, &id, &e2) == 0)
			continue;
		if (e2.code != STORE_ENOMAILBOX) {
			*err = e2;
			goto out;
		}
		if (store_uidvalidity_next(t, &uv, err) == -1 ||
		    mb_insert(t, p.data, uv, 0, &id, err) == -1)
			goto out;
	}
	rc = 0;
out:
	buf_release(&p);
	return rc;
}

int
store_mb_create_txn(struct store_txn *t, const char *canon, unsigned special,
    int64_t *id_out, struct store_err *err)
{
	int64_t id;
	struct store_err e2;
	uint32_t uv;

	if (store_mb_lookup(t->db, canon, &id, &e2) == 0) {
		store_errf(err, STORE_EEXISTS, "mailbox already exists");
		return -1;
	}
	if (e2.code != STORE_ENOMAILBOX) {
		*err = e2;
		return -1;
	}
	if (mb_parents_txn(t, canon, err) == -1 ||
	    store_uidvalidity_next(t, &uv, err) == -1)
		return -1;
	return mb_insert(t, canon, uv, special, id_out, err);
}

int
store_mb_ensure_txn(struct store_txn *t, const char *canon, int64_t *id_out,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	/* Once per delivery: through the statement cache. */
	if (store_stmt_get(t, "SELECT id FROM mailbox WHERE name = ?1", &st,
		err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*id_out = sqlite3_column_int64(st, 0);
	else if (r != SQLITE_DONE)
		store_err_db(err, t->db, "look up mailbox");
	store_stmt_put(t, st);
	if (r == SQLITE_ROW)
		return 0;
	if (r != SQLITE_DONE)
		return -1;
	return store_mb_create_txn(t, canon, 0, id_out, err);
}

int
store_create_default_mailboxes(struct store_txn *t, struct store_err *err)
{
	/* spec/store.md 12: Inbox, Archive, Draft, Junk, Sent, Trash, all
	 * with one initial UIDVALIDITY = unix time >> 1. */
	static const struct {
		const char *name;
		unsigned special;
	} defs[] = {
		{ "Inbox", 0 },
		{ "Archive", STORE_SU_ARCHIVE },
		{ "Drafts", STORE_SU_DRAFTS },
		{ "Junk", STORE_SU_JUNK },
		{ "Sent", STORE_SU_SENT },
		{ "Trash", STORE_SU_TRASH },
	};
	uint32_t uv = (uint32_t)((uint64_t)time(NULL) >> 1);
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (uv == 0)
		uv = 1;
	if (store_prepare(t->db,
		"INSERT INTO singleton(id, next_uidvalidity) VALUES (1, ?1)",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)uv + 1);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "insert singleton");
		goto out;
	}
	for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
		int64_t id;

		if (mb_insert(t, defs[i].name, uv, defs[i].special, &id,
			err) == -1)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
store_mailbox_create(struct store_account *a, const char *name,
    unsigned special, int64_t *id_out, struct store_err *err)
{
	struct buf canon;
	struct store_txn t;
	int64_t id;
	int rc = -1;

	if (canon_name(name, &canon, err) == -1)
		goto out;
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	if (store_mb_create_txn(&t, canon.data, special, &id, err) == -1) {
		store_txn_abort(&t);
		goto out;
	}
	if (store_txn_commit(&t, err) == -1)
		goto out;
	if (id_out != NULL)
		*id_out = id;
	rc = 0;
out:
	buf_release(&canon);
	return rc;
}

static bool
is_below(const char *name, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(name, parent, n) == 0 && name[n] == '/';
}

/* RFC 9051 6.3.6: renaming INBOX moves its messages to a new mailbox and
 * leaves INBOX empty; its children stay. */
static int
rename_inbox(struct store_txn *t, int64_t inbox, const char *to,
    struct store_err *err)
{
	struct store_mailbox mb;
	sqlite3_stmt *st = NULL;
	uint32_t *uids = NULL;
	size_t n = 0;
	int64_t dst;
	struct store_uidmap map;
	int rc = -1, r;

	memset(&map, 0, sizeof(map));
	if (store_mb_create_txn(t, to, 0, &dst, err) == -1)
		return -1;
	if (store_mb_read(t->db, inbox, &mb, err) == -1)
		return -1;
	r = store_mb_kw_merge(t, dst, mb.keywords, err);
	store_mailbox_release(&mb);
	if (r == -1)
		return -1;
	if (store_prepare(t->db,
		"SELECT uid FROM message WHERE mailbox_id = ?1"
		" AND expunged = 0 ORDER BY uid",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, inbox);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		uids = xreallocarray(uids, n + 1, sizeof(*uids));
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, t->db, "list inbox");
		goto out;
	}
	if (n > 0 && store_move_txn(t, inbox, uids, n, dst, &map, err) == -1)
		goto out;
	rc = 0;
out:
	store_uidmap_release(&map);
	free(uids);
	sqlite3_finalize(st);
	return rc;
}

static int
rename_tree(struct store_txn *t, const char *from, const char *to,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL, *up = NULL;
	int64_t *ids = NULL;
	char **olds = NULL;
	size_t n = 0, fromlen = strlen(from);
	uint32_t uv;
	struct buf nn;
	int rc = -1, r;

	buf_init(&nn, STORE_MAILBOX_NAME_MAX + 8);
	if (store_prepare(t->db, "SELECT id, name FROM mailbox ORDER BY name",
		&st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);

		if (strcmp(name, from) != 0 && !is_below(name, from))
			continue;
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		olds = xreallocarray(olds, n + 1, sizeof(*olds));
		ids[n] = sqlite3_column_int64(st, 0);
		olds[n++] = xstrdup(name);
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, t->db, "list mailboxes");
		goto out;
	}
	/* Check every new name first: too long or already taken by a
	 * mailbox outside the renamed tree. */
	for (size_t i = 0; i < n; i++) {
		int64_t other;
		struct store_err e2;

		buf_reset(&nn);
		buf_addf(&nn, "%s%s", to, olds[i] + fromlen);
		if (buf_failed(&nn) || nn.len > STORE_MAILBOX_NAME_MAX) {
			store_errf(err, STORE_EINVAL, "new name too long");
			goto out;
		}
		if (store_mb_lookup(t->db, nn.data, &other, &e2) == 0) {
			bool inside = false;

			for (size_t j = 0; j < n && !inside; j++)
				inside = ids[j] == other;
			if (!inside) {
				store_errf(err, STORE_EEXISTS,
				    "mailbox already exists");
				goto out;
			}
		} else if (e2.code != STORE_ENOMAILBOX) {
			*err = e2;
			goto out;
		}
	}
	if (store_uidvalidity_next(t, &uv, err) == -1)
		goto out;
	/* Two passes through names no valid mailbox can have, so the
	 * UNIQUE constraint never sees a transient clash. */
	if (store_prepare(t->db,
		"UPDATE mailbox SET name = ?2, uidvalidity = ?3 WHERE id = ?1",
		&up, err) == -1)
		goto out;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			buf_reset(&nn);
			if (pass == 0)
				buf_addf(&nn, "\x01rename %lld",
				    (long long)ids[i]);
			else
				buf_addf(&nn, "%s%s", to, olds[i] + fromlen);
			sqlite3_reset(up);
			sqlite3_bind_int64(up, 1, ids[i]);
			sqlite3_bind_text(up, 2, nn.data, (int)nn.len,
			    SQLITE_TRANSIENT);
			sqlite3_bind_int64(up, 3, uv);
			if (sqlite3_step(up) != SQLITE_DONE) {
				store_err_db(err, t->db, "rename mailbox");
				goto out;
			}
			if (pass == 1) {
				struct store_change *c = store_txn_change(t,
				    STORE_CHANGE_MAILBOX_RENAME, ids[i]);
				struct store_chg *h = &t->chg[t->nchg - 1];

				store_chg_set_str(h, nn.data, olds[i]);
				c->name = h->s1;
				c->old_name = h->s2;
			}
		}
	/* Missing parents of the destination, and names vacated when the
	 * destination is below the source. */
	if (mb_parents_txn(t, to, err) == -1)
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(olds[i]);
	free(olds);
	free(ids);
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	buf_release(&nn);
	return rc;
}

int
store_mailbox_rename(struct store_account *a, const char *from,
    const char *to, struct store_err *err)
{
	struct buf cf, ct;
	struct store_txn t;
	int64_t src, dst;
	struct store_err e2;
	int rc = -1;

	buf_init(&ct, 8);
	if (canon_name(from, &cf, err) == -1 || canon_name(to, &ct, err) == -1)
		goto out;
	if (strcmp(ct.data, "Inbox") == 0) {
		store_errf(err, STORE_EINVAL, "cannot rename to Inbox");
		goto out;
	}
	if (strcmp(cf.data, ct.data) == 0) {
		store_errf(err, STORE_EEXISTS, "mailbox already exists");
		goto out;
	}
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	if (store_mb_lookup(t.db, cf.data, &src, err) == -1)
		goto fail;
	if (store_mb_lookup(t.db, ct.data, &dst, &e2) == 0) {
		store_errf(err, STORE_EEXISTS, "mailbox already exists");
		goto fail;
	}
	if (e2.code != STORE_ENOMAILBOX) {
		*err = e2;
		goto fail;
	}
	if (strcmp(cf.data, "Inbox") == 0) {
		if (rename_inbox(&t, src, ct.data, err) == -1)
			goto fail;
	} else if (rename_tree(&t, cf.data, ct.data, err) == -1)
		goto fail;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
	goto out;
fail:
	store_txn_abort(&t);
out:
	buf_release(&cf);
	buf_release(&ct);
	return rc;
}

int
store_mailbox_delete(struct store_account *a, const char *name,
    struct store_err *err)
{
	struct buf canon;
	struct store_txn t;
	sqlite3_stmt *st = NULL;
	int64_t id, live = 0;
	bool in_txn = false;
	int rc = -1, r;

	if (canon_name(name, &canon, err) == -1)
		goto out;
	if (strcmp(canon.data, "Inbox") == 0) {
		store_errf(err, STORE_EINVAL, "cannot delete Inbox");
		goto out;
	}
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (store_mb_lookup(t.db, canon.data, &id, err) == -1)
		goto out;
	/* Compared as bytes: substr() of TEXT counts characters, which
	 * misses the children of a non-ASCII name. */
	if (store_prepare(t.db,
		"SELECT count(*) FROM mailbox"
		" WHERE substr(CAST(name AS BLOB), 1, ?2) = ?1",
		&st, err) == -1)
		goto out;
	{
		struct buf pre;

		buf_init(&pre, BUF_NOMAX);
		buf_addf(&pre, "%s/", canon.data);
		sqlite3_bind_blob(st, 1, pre.data, (int)pre.len,
		    SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (int64_t)pre.len);
		buf_release(&pre);
	}
	r = sqlite3_step(st);
	if (r != SQLITE_ROW) {
		store_err_db(err, t.db, "count children");
		goto out;
	}
	if (sqlite3_column_int64(st, 0) > 0) {
		/* RFC 9051 6.3.5: we refuse rather than keep a \Noselect
		 * parent. */
		store_errf(err, STORE_EHASCHILDREN, "mailbox has children");
		goto out;
	}
	sqlite3_finalize(st);
	if (store_prepare(t.db,
		"SELECT coalesce(sum(size), 0) FROM message"
		" WHERE mailbox_id = ?1 AND expunged = 0",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_err_db(err, t.db, "sum sizes");
		goto out;
	}
	live = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (store_disk_add(&t, -live, err) == -1)
		goto out;
	if (store_prepare(t.db, "DELETE FROM message WHERE mailbox_id = ?1",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "delete messages");
		goto out;
	}
	sqlite3_finalize(st);
	if (store_prepare(t.db, "DELETE FROM mailbox WHERE id = ?1", &st,
		err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "delete mailbox");
		goto out;
	}
	{
		struct store_change *c = store_txn_change(&t,
		    STORE_CHANGE_MAILBOX_REMOVE, id);
		struct store_chg *h = &t.chg[t.nchg - 1];

		store_chg_set_str(h, canon.data, NULL);
		c->name = h->s1;
	}
	sqlite3_finalize(st);
	st = NULL;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	/* spec/store.md 2.2 rule 4: files go after the commit; the id is
	 * never reused, so a leftover directory only wastes space. */
	(void)store_rmtree_mb(a, id);
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_txn)
		store_txn_abort(&t);
	buf_release(&canon);
	return rc;
}

int
store_mailbox_set_special(struct store_account *a, const char *name,
    unsigned special, struct store_err *err)
{
	struct buf canon;
	struct store_txn t;
	sqlite3_stmt *st = NULL;
	int64_t id;
	bool in_txn = false;
	int rc = -1;

	if (canon_name(name, &canon, err) == -1)
		goto out;
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (store_mb_lookup(t.db, canon.data, &id, err) == -1)
		goto out;
	if (store_prepare(t.db, "UPDATE mailbox SET special = ?2 WHERE id = ?1",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, (int)(special & STORE_SU_ALL));
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "set special-use");
		goto out;
	}
	{
		struct store_change *c = store_txn_change(&t,
		    STORE_CHANGE_MAILBOX_SPECIAL_USE, id);
		struct store_chg *h = &t.chg[t.nchg - 1];

		store_chg_set_str(h, canon.data, NULL);
		c->name = h->s1;
		c->special = special & STORE_SU_ALL;
	}
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_txn)
		store_txn_abort(&t);
	buf_release(&canon);
	return rc;
}

int
store_subscribe(struct store_account *a, const char *name,
    struct store_err *err)
{
	struct buf canon;
	struct store_txn t;
	struct store_err e2;
	int64_t id = 0;
	bool missing = false;
	int rc = -1;

	if (canon_name(name, &canon, err) == -1)
		goto out;
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	if (store_mb_lookup(t.db, canon.data, &id, &e2) == -1) {
		if (e2.code != STORE_ENOMAILBOX) {
			*err = e2;
			store_txn_abort(&t);
			goto out;
		}
		missing = true;
	}
	if (subscribe_txn(&t, canon.data, missing, err) == -1) {
		store_txn_abort(&t);
		goto out;
	}
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
out:
	buf_release(&canon);
	return rc;
}

int
store_unsubscribe(struct store_account *a, const char *name,
    struct store_err *err)
{
	struct buf canon;
	struct store_txn t;
	sqlite3_stmt *st = NULL;
	bool in_txn = false;
	int64_t id;
	int rc = -1;

	if (canon_name(name, &canon, err) == -1)
		goto out;
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (store_prepare(t.db, "DELETE FROM subscription WHERE name = ?1",
		&st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, canon.data, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "unsubscribe");
		goto out;
	}
	if (sqlite3_changes(t.db) == 0 &&
	    store_mb_lookup(t.db, canon.data, &id, err) == -1)
		goto out;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_txn)
		store_txn_abort(&t);
	buf_release(&canon);
	return rc;
}

int
store_subscriptions(struct store_account *a, char ***names_out,
    size_t *n_out, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t n = 0;
	int rc = -1, r;

	if (db == NULL)
		return -1;
	if (store_prepare(db, "SELECT name FROM subscription ORDER BY name",
		&st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, db, "list subscriptions");
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		goto out;
	}
	*names_out = v;
	*n_out = n;
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}
