/*
 * store_message.c: messages: deliver/APPEND with group commit, import,
 * listing, flag changes with UNCHANGEDSINCE (RFC 7162 3.1.3), EXPUNGE with
 * tombstones (RFC 7162 3.2.10 VANISHED needs them), COPY (RFC 4315 UIDPLUS),
 * MOVE (RFC 6851), indexing of files dropped in new/ and the inotify watch.
 * spec/store.md 2.2 gives the file order: tmp -> fsync -> row -> link ->
 * fsync dir -> commit; removal commits first, then unlinks.
 *
 * Trust: message data and extracted fields come from SMTP peers and IMAP
 * clients; they are stored as opaque values. Files in new/ come from local
 * programs. Threads: any but the reactor; writes under the account write
 * lock; deliveries queue on the account and one thread commits a group.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "store_int.h"
#include "lib/banned.h"

#define SCAN_NEW_MAX 10000 /* files indexed from new/ per call */
#define SCAN_MSG_MAX ((size_t)1 << 31) /* octets of one file from new/,
					 * after CRLF conversion */

#define MSG_COLS \
	"id, mailbox_id, uid, modseq, createseq, expunged, flags, keywords," \
	" received, size, coalesce(trained_junk, -1)"

/* A queued delivery (store_deliver). */
struct store_deliv {
	const struct store_add *in;
	const char *const *mailboxes;
	size_t n;
	struct store_added *out;
	const char *src;     /* file to link from */
	int64_t size;
	const void *origin;
	int rc;
	bool done;           /* guarded by qlock */
	struct store_err err;
	struct store_deliv *next;
	int64_t pre_id;      /* > 0: linked ahead as pre_mbid's <pre_id>:2,
			      * (stage()), its directory fsynced */
	int64_t pre_mbid;
	pthread_cond_t cv;   /* with qlock: done, or a turn to stage */
};

void
store_msg_list_release(struct store_msg_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].keywords);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
store_flags_result_release(struct store_flags_result *r)
{
	if (r == NULL)
		return;
	free(r->changed);
	free(r->modified);
	memset(r, 0, sizeof(*r));
}

void
store_uids_release(struct store_uids *u)
{
	if (u == NULL)
		return;
	free(u->v);
	memset(u, 0, sizeof(*u));
}

void
store_uidmap_release(struct store_uidmap *m)
{
	if (m == NULL)
		return;
	free(m->src);
	free(m->dst);
	memset(m, 0, sizeof(*m));
}

void
store_msg_path(struct store_account *a, int64_t mailbox_id, int64_t id,
    struct buf *out)
{
	buf_reset(out);
	buf_addf(out, "%s/maildir/%lld/cur/%lld:2,", a->dir,
	    (long long)mailbox_id, (long long)id);
}

static int
cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* Sorted unique copy of uids. */
static size_t
uids_sorted(const uint32_t *uids, size_t n, uint32_t **out)
{
	uint32_t *v = xcalloc(n > 0 ? n : 1, sizeof(*v));
	size_t k = 0;

	if (n > 0)
		memcpy(v, uids, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*out = v;
	return k;
}

/* Write data to a new file in <datadir>/tmp and fsync it. */
static int
tmp_write(struct store_account *a, const void *data, size_t len, bool sync,
    struct buf *path, struct store_err *err)
{
	int fd = -1, rc = -1;
	unsigned long seq;

	seq = atomic_fetch_add(&a->store->tmpseq, 1) + 1;
	buf_reset(path);
	buf_addf(path, "%s/tmp/store-%ld-%lu", a->store->datadir,
	    (long)getpid(), seq);
	fd = open(path->data,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1) {
		store_errf(err, STORE_EINTERNAL, "create temp file: %s",
		    log_strerror(errno));
		return -1;
	}
	if (io_write_all(fd, data, len) == -1 || (sync && fsync(fd) == -1)) {
		store_errf(err, STORE_EINTERNAL, "write temp file: %s",
		    log_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (close(fd) == -1 && rc == 0) {
		store_errf(err, STORE_EINTERNAL, "close temp file: %s",
		    log_strerror(errno));
		rc = -1;
	}
	if (rc == -1)
		(void)unlink(path->data);
	return rc;
}

int
store_tmpfile(struct store *s, struct buf *path)
{
	unsigned long seq;
	int fd;

	buf_reset(path);
	/* Linked later through /proc (link_or_copy()). */
	fd = s->proc_fd ? open(s->msgtmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0640)
			: -1;
	if (fd >= 0)
		return fd;
	/* No unnamed files here (or no /proc): a named one in tmp/. */
	buf_addf(path, "%s/tmp", s->datadir);
	seq = atomic_fetch_add(&s->tmpseq, 1) + 1;
	buf_addf(path, "/store-%ld-%lu", (long)getpid(), seq);
	if (buf_failed(path)) {
		buf_reset(path);
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path->data,
	    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1)
		buf_reset(path);
	return fd;
}

/* A descriptor's file as a path link() can use (AT_SYMLINK_FOLLOW). */
#define PROC_FD_PREFIX "/proc/self/fd/"

/* Make the input durable and learn its size: fsync a given file, or
 * write data into a temp file (tmp gets its name; caller unlinks). An
 * unnamed file given by descriptor is linked from its /proc path, put in
 * proc. */
static int
input_prepare(struct store_account *a, const struct store_add *in, bool sync,
    struct buf *tmp, struct buf *proc, const char **src_out,
    int64_t *size_out, struct store_err *err)
{
	struct stat sb;
	int fd;

	if (in->has_fd ? in->data != NULL :
	    (in->path != NULL) == (in->data != NULL)) {
		store_errf(err, STORE_EINVAL,
		    "need exactly one of path, data, fd");
		return -1;
	}
	if (in->has_fd) {
		if (fstat(in->fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
		    (sync && fsync(in->fd) == -1)) {
			store_errf(err, STORE_EINVAL,
			    "message file not usable: %s",
			    log_strerror(errno));
			return -1;
		}
		buf_reset(proc);
		buf_addf(proc, PROC_FD_PREFIX "%d", in->fd);
		*src_out = in->path != NULL ? in->path : proc->data;
		*size_out = (int64_t)sb.st_size;
		return 0;
	}
	if (in->path == NULL) {
		if (tmp_write(a, in->data, in->len, sync, tmp, err) == -1)
			return -1;
		*src_out = tmp->data;
		*size_out = (int64_t)in->len;
		return 0;
	}
	fd = open(in->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		store_errf(err, STORE_EINVAL, "open message file: %s",
		    log_strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (sync && fsync(fd) == -1)) {
		store_errf(err, STORE_EINVAL, "message file not usable");
		(void)close(fd);
		return -1;
	}
	if (close(fd) == -1) {
		store_errf(err, STORE_EINTERNAL, "close message file");
		return -1;
	}
	*src_out = in->path;
	*size_out = (int64_t)sb.st_size;
	return 0;
}

/* Link (or, across file systems, copy) src to dst; never overwrite. A
 * src under PROC_FD_PREFIX is an open file (input_prepare()), followed. */
static int
link_or_copy(const char *src, const char *dst, bool sync)
{
	bool proc = strncmp(src, PROC_FD_PREFIX,
	    sizeof(PROC_FD_PREFIX) - 1) == 0;
	int in = -1, out = -1, rc = -1;
	char block[65536];
	ssize_t r;

	if (linkat(AT_FDCWD, src, AT_FDCWD, dst,
		proc ? AT_SYMLINK_FOLLOW : 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	in = open(src, O_RDONLY | O_CLOEXEC | (proc ? 0 : O_NOFOLLOW));
	if (in == -1)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (out == -1)
		goto out;
	for (int i = 0; i < (1 << 24); i++) {
		r = read(in, block, sizeof(block));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto out;
		if (r == 0)
			break;
		if (io_write_all(out, block, (size_t)r) == -1)
			goto out;
	}
	if (sync && fsync(out) == -1)
		goto out;
	rc = 0;
out:
	if (in != -1)
		(void)close(in);
	if (out != -1 && close(out) == -1)
		rc = -1;
	if (rc == -1 && out != -1)
		(void)unlink(dst);
	return rc;
}

/* RFC 4291/791 prefixes for reputation (spec/store.md 3.1): IPv4 /32, /26,
 * /21; IPv6 /64, /48, /32. */
static void
ip_masked(const char *ip, int level, char *out, size_t outlen)
{
	unsigned char b[16];
	static const int v4[] = { 32, 26, 21 }, v6[] = { 64, 48, 32 };
	int bits, af, len;

	out[0] = '\0';
	if (ip == NULL || ip[0] == '\0')
		return;
	if (inet_pton(AF_INET, ip, b) == 1) {
		af = AF_INET;
		len = 4;
		bits = v4[level];
	} else if (inet_pton(AF_INET6, ip, b) == 1) {
		af = AF_INET6;
		len = 16;
		bits = v6[level];
	} else
		return;
	for (int i = 0; i < len; i++) {
		int keep = bits - i * 8;

		if (keep <= 0)
			b[i] = 0;
		else if (keep < 8)
			b[i] &= (unsigned char)(0xff << (8 - keep));
	}
	if (inet_ntop(af, b, out, (socklen_t)outlen) == NULL)
		out[0] = '\0';
}

void
store_ip_masked(const char *ip, int level, char *out, size_t outlen)
{
	ip_masked(ip, level, out, outlen);
}

static void
bind_str(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s != NULL ? s : "", -1, SQLITE_TRANSIENT);
}

struct row_in {
	int64_t id;          /* 0: assign */
	int64_t mbid;
	uint32_t uid;
	int64_t modseq;
	uint32_t flags;
	const char *keywords;
	int64_t received;
	int64_t size;
	const char *maildir_name;
	const struct store_msg_fields *f;
};

static int
row_insert(struct store_txn *t, const struct row_in *r, int64_t *id_out,
    struct store_err *err)
{
	static const struct store_msg_fields none;
	const struct store_msg_fields *f = r->f != NULL ? r->f : &none;
	char m[3][INET6_ADDRSTRLEN];
	sqlite3_stmt *st = NULL;
	int rc = -1;

	for (int i = 0; i < 3; i++)
		ip_masked(f->is_forward ? NULL : f->remote_ip, i, m[i],
		    sizeof(m[i]));
	if (store_stmt_get(t,
		"INSERT INTO message(id, mailbox_id, uid, modseq, createseq,"
		" is_reject, is_forward, mailbox_orig_id, mailbox_destined_id,"
		" received, remote_ip, remote_ip_masked1, remote_ip_masked2,"
		" remote_ip_masked3, ehlo_domain, mailfrom, mailfrom_localpart,"
		" mailfrom_domain, rcptto_localpart, rcptto_domain,"
		" msgfrom_localpart, msgfrom_domain, msgfrom_orgdomain,"
		" ehlo_validated, mailfrom_validated, msgfrom_validated,"
		" ehlo_validation, mailfrom_validation, msgfrom_validation,"
		" orig_ehlo_domain, orig_dkim_domains, message_id,"
		" subject_base, message_hash, is_mailing_list, dsn,"
		" received_tls_version, received_tls_ciphersuite,"
		" received_requiretls, flags, keywords, size, parsed,"
		" maildir_name, thread_id)"
		" VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?2, ?7, ?8, ?9, ?10, ?11,"
		" ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,"
		" ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35,"
		" ?36, ?37, ?38, ?39, ?40, ?41, ?42, coalesce(?1, 0))",
		&st, err) == -1)
		return -1;
	if (r->id > 0)
		sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int64(st, 2, r->mbid);
	sqlite3_bind_int64(st, 3, r->uid);
	sqlite3_bind_int64(st, 4, r->modseq);
	sqlite3_bind_int(st, 5, f->is_reject);
	sqlite3_bind_int(st, 6, f->is_forward);
	sqlite3_bind_int64(st, 7,
	    f->mailbox_destined_id == r->mbid ? 0 : f->mailbox_destined_id);
	sqlite3_bind_int64(st, 8, r->received);
	bind_str(st, 9, f->remote_ip);
	bind_str(st, 10, m[0]);
	bind_str(st, 11, m[1]);
	bind_str(st, 12, m[2]);
	bind_str(st, 13, f->ehlo_domain);
	bind_str(st, 14, f->mailfrom);
	bind_str(st, 15, f->mailfrom_localpart);
	bind_str(st, 16, f->mailfrom_domain);
	bind_str(st, 17, f->rcptto_localpart);
	bind_str(st, 18, f->rcptto_domain);
	bind_str(st, 19, f->msgfrom_localpart);
	bind_str(st, 20, f->msgfrom_domain);
	bind_str(st, 21, f->msgfrom_orgdomain);
	sqlite3_bind_int(st, 22, f->ehlo_validated);
	sqlite3_bind_int(st, 23, f->mailfrom_validated);
	sqlite3_bind_int(st, 24, f->msgfrom_validated);
	sqlite3_bind_int(st, 25, f->ehlo_validation);
	sqlite3_bind_int(st, 26, f->mailfrom_validation);
	sqlite3_bind_int(st, 27, f->msgfrom_validation);
	bind_str(st, 28, f->orig_ehlo_domain);
	bind_str(st, 29, f->orig_dkim_domains);
	bind_str(st, 30, f->message_id);
	bind_str(st, 31, f->subject_base);
	if (f->message_hash != NULL)
		sqlite3_bind_blob(st, 32, f->message_hash,
		    (int)f->message_hash_len, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 33, f->is_mailing_list);
	sqlite3_bind_int(st, 34, f->dsn);
	sqlite3_bind_int(st, 35, f->tls_version);
	sqlite3_bind_int(st, 36, f->tls_cipher_suite);
	sqlite3_bind_int(st, 37, f->requiretls);
	sqlite3_bind_int64(st, 38, r->flags);
	bind_str(st, 39, r->keywords);
	sqlite3_bind_int64(st, 40, r->size);
	if (f->parsed != NULL)
		sqlite3_bind_blob(st, 41, f->parsed, (int)f->parsed_len,
		    SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 41);
	bind_str(st, 42, r->maildir_name);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t->db, "insert message");
		goto out;
	}
	*id_out = sqlite3_last_insert_rowid(t->db);
	/* Single statement thread id: rule 4 of spec/store.md 8 (a root).
	 * With the id given it was inserted with the row. */
	store_stmt_put(t, st);
	st = NULL;
	if (r->id <= 0) {
		if (store_stmt_get(t,
			"UPDATE message SET thread_id = id WHERE id = ?1", &st,
			err) == -1)
			goto out;
		sqlite3_bind_int64(st, 1, *id_out);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_err_db(err, t->db, "set thread");
			goto out;
		}
	}
	if (f->n_dkim_domains > 0) {
		store_stmt_put(t, st);
		st = NULL;
		if (store_stmt_get(t,
			"INSERT INTO message_dkim(message_id, domain, received)"
			" VALUES (?1, ?2, ?3)",
			&st, err) == -1)
			goto out;
	}
	for (size_t i = 0; i < f->n_dkim_domains; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, *id_out);
		bind_str(st, 2, f->dkim_domains[i]);
		sqlite3_bind_int64(st, 3, r->received);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_err_db(err, t->db, "insert dkim domain");
			goto out;
		}
	}
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

static int
recipients_insert(struct store_txn *t, int64_t id, int64_t sent,
    const struct store_msg_fields *f, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (f == NULL || f->n_rcpts == 0)
		return 0;
	if (store_stmt_get(t,
		"INSERT INTO recipient(message_id, localpart, domain, sent,"
		" orgdomain) VALUES (?1, ?2, ?3, ?4, ?5)",
		&st, err) == -1)
		return -1;
	for (size_t i = 0; i < f->n_rcpts; i++) {
		if (f->rcpt_localparts[i] == NULL ||
		    f->rcpt_localparts[i][0] == '\0')
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		bind_str(st, 2, f->rcpt_localparts[i]);
		bind_str(st, 3, f->rcpt_domains[i]);
		sqlite3_bind_int64(st, 4,
		    f->rcpt_sent_ns != 0 ? f->rcpt_sent_ns : sent);
		bind_str(st, 5, f->rcpt_orgdomains != NULL
			? f->rcpt_orgdomains[i]
			: NULL);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_err_db(err, t->db, "insert recipient");
			goto out;
		}
	}
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

/* Take the next UID of a mailbox; also returns its uidvalidity and
 * special-use bits. */
static int
uid_take(struct store_txn *t, int64_t mbid, uint32_t count, uint32_t *uid,
    uint32_t *uidvalidity, unsigned *special, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (store_stmt_get(t,
		"UPDATE mailbox SET uidnext = uidnext + ?2 WHERE id = ?1"
		" RETURNING uidnext - ?2, uidvalidity, special",
		&st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, mbid);
	sqlite3_bind_int64(st, 2, count);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		store_errf(err, STORE_ENOMAILBOX, "no such mailbox");
		goto out;
	}
	if (r != SQLITE_ROW) {
		store_err_db(err, t->db, "take uid");
		goto out;
	}
	if (sqlite3_column_int64(st, 0) + count > UINT32_MAX) {
		store_errf(err, STORE_EINTERNAL, "mailbox uids exhausted");
		goto out;
	}
	*uid = (uint32_t)sqlite3_column_int64(st, 0);
	if (uidvalidity != NULL)
		*uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
	if (special != NULL)
		*special = (unsigned)sqlite3_column_int(st, 2);
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

/* spec/store.md 9 rule 1: a Junk mailbox forces $Junk. */
static uint32_t
junk_flags(uint32_t flags, unsigned special)
{
	if (special & STORE_SU_JUNK)
		return (flags | STORE_F_JUNK) & ~(uint32_t)STORE_F_NOTJUNK;
	return flags;
}

static int
quota_check(struct store_txn *t, int64_t quota, int64_t add,
    struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (quota <= 0)
		return 0;
	if (store_stmt_get(t, "SELECT disk_usage FROM singleton WHERE id = 1",
		&st, err) == -1)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_err_db(err, t->db, "read disk usage");
		goto out;
	}
	if (sqlite3_column_int64(st, 0) + add > quota) {
		store_errf(err, STORE_EOVERQUOTA, "account over quota");
		goto out;
	}
	rc = 0;
out:
	store_stmt_put(t, st);
	return rc;
}

static void
change_add_uid(struct store_txn *t, int64_t mbid, uint32_t uid,
    int64_t modseq, uint32_t flags, const char *kw)
{
	struct store_change *c = store_txn_change(t, STORE_CHANGE_ADD_UID,
	    mbid);
	struct store_chg *h = &t->chg[t->nchg - 1];

	store_chg_set_str(h, kw, NULL);
	c->uid = uid;
	c->modseq = modseq;
	c->flags = flags;
	c->keywords = h->s1;
}

/* Add one message (already durable at src) to one mailbox inside t: as
 * message id_in when > 0 (reserved, see stage()), else the sequence's
 * next. With pre_mbid > 0 the file was linked already as that mailbox's
 * <id_in>. *linked_out (may be NULL) is set when a link was made here:
 * its directory is then for the caller to fsync before the commit. */
static int
add_one(struct store_txn *t, const struct store_add *in, const char *mbname,
    int64_t mbid_in, const char *src, int64_t size, const char *kw,
    const char *maildir_name, int64_t id_in, int64_t pre_mbid,
    bool *linked_out, struct store_added *out, struct store_err *err)
{
	struct buf canon, dst;
	const char *why = NULL;
	int64_t mbid = mbid_in, id, modseq;
	uint32_t uid, uv, flags;
	unsigned special;
	struct row_in r;
	int rc = -1;

	buf_init(&canon, STORE_MAILBOX_NAME_MAX + 8);
	buf_init(&dst, STORE_PATH_MAX);
	if (mbid == 0) {
		if (store_mailbox_name_check(mbname, &canon, &why) == -1) {
			store_errf(err, STORE_EINVAL, "%s", why);
			goto out;
		}
		if (in->create_mailbox) {
			if (store_mb_ensure_txn(t, canon.data, &mbid, err) ==
			    -1)
				goto out;
		} else if (store_mb_lookup(t->db, canon.data, &mbid, err) == -1)
			goto out;
	}
	if (pre_mbid > 0 && mbid != pre_mbid) {
		/* The name found another mailbox since stage(): that link
		 * goes, the message is linked here as any other. */
		store_msg_path(t->a, pre_mbid, id_in, &dst);
		(void)unlink(dst.data);
		pre_mbid = 0;
	}
	if (quota_check(t, in->quota, size, err) == -1 ||
	    uid_take(t, mbid, 1, &uid, &uv, &special, err) == -1 ||
	    store_txn_modseq(t, &modseq, err) == -1)
		goto out;
	flags = junk_flags(in->flags & STORE_F_ALL, special);
	memset(&r, 0, sizeof(r));
	r.id = id_in; /* 0: the sequence's next */
	r.mbid = mbid;
	r.uid = uid;
	r.modseq = modseq;
	r.flags = flags;
	r.keywords = kw;
	r.received = in->received_ns != 0 ? in->received_ns : store_now_ns();
	r.size = size;
	r.maildir_name = maildir_name;
	r.f = in->fields;
	if (row_insert(t, &r, &id, err) == -1)
		goto out;
	if ((special & STORE_SU_SENT) &&
	    recipients_insert(t, id, r.received, in->fields, err) == -1)
		goto out;
	if (store_counts_apply(t, mbid, flags, size, 1, err) == -1 ||
	    store_disk_add(t, size, err) == -1 ||
	    store_mb_kw_merge(t, mbid, kw, err) == -1)
		goto out;
	if (pre_mbid == 0) {
		store_msg_path(t->a, mbid, id, &dst);
		if (link_or_copy(src, dst.data, true) == -1) {
			store_errf(err, STORE_EINTERNAL,
			    "link message file: %s", log_strerror(errno));
			goto out;
		}
		store_txn_undo_add(t, NULL, dst.data);
		if (linked_out != NULL)
			*linked_out = true;
	}
	change_add_uid(t, mbid, uid, modseq, flags, kw);
	if (store_counts_changed(t, mbid, err) == -1)
		goto out;
	if (out != NULL) {
		out->id = id;
		out->mailbox_id = mbid;
		out->uid = uid;
		out->uidvalidity = uv;
		out->modseq = modseq;
	}
	rc = 0;
out:
	buf_release(&canon);
	buf_release(&dst);
	return rc;
}

static int
fsync_cur(struct store_account *a, int64_t mbid, struct store_err *err)
{
	struct buf p;
	int rc = 0;

	buf_init(&p, STORE_PATH_MAX);
	store_mb_dir(a, mbid, "cur", &p);
	if (io_fsync_dir(p.data) == -1) {
		store_errf(err, STORE_EINTERNAL, "fsync %s", p.data);
		rc = -1;
	}
	buf_release(&p);
	return rc;
}

static bool
id_in(const int64_t *v, size_t n, int64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* A reserved message id, or 0 (none left): deliveries not linked ahead
 * take them too, so the reservation stays above every message
 * (reserve_valid()). */
static int64_t
reserved_id(struct store_account *a)
{
	int64_t id = 0;

	lock_take(&a->qlock);
	if (a->rsv_next < a->rsv_end)
		id = a->rsv_next++;
	lock_release(&a->qlock);
	return id;
}

/* Whether message id has a row that a failed delivery did not insert:
 * a repair (verifydata -fix) indexed the file linked ahead for it while
 * it waited for its transaction. The file is that row's then. */
static bool
pre_taken(struct store_txn *t, int64_t id)
{
	sqlite3_stmt *st = NULL;
	struct store_err e;
	bool taken = true; /* when unsure, a file is kept, not removed */

	if (store_stmt_get(t, "SELECT 1 FROM message WHERE id = ?1", &st,
		&e) == -1)
		return true;
	sqlite3_bind_int64(st, 1, id);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		break;
	case SQLITE_DONE:
		taken = false;
		break;
	default:
		break;
	}
	store_stmt_put(t, st);
	return taken;
}

/* Run one delivery of a group inside t, under a savepoint so a failure
 * undoes only this delivery. Mailboxes it linked a file into go to
 * dirs (to be fsynced before the commit). */
static void
deliv_run(struct store_txn *t, struct store_deliv *d, int64_t **dirs,
    size_t *ndirs)
{
	size_t chg_mark = t->nchg, undo_mark = t->nundo;
	struct buf kw;
	const char *why = NULL;
	struct store_err ignored;
	bool linked;

	buf_init(&kw, STORE_KEYWORDS_MAX + 1);
	t->origin = d->origin;
	t->modseq = 0;
	/* Earlier deliveries' changes stay as they are: this one may be
	 * rolled back alone. */
	t->chg_floor = chg_mark;
	d->rc = -1;
	if (store_kw_norm(d->in->keywords, &kw, &why) == -1) {
		store_errf(&d->err, STORE_EINVAL, "%s", why);
		goto out;
	}
	if (store_stmt_exec(t, "SAVEPOINT deliv", &d->err) == -1)
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		bool pre = i == 0 && d->pre_id > 0;

		linked = false;
		if (add_one(t, d->in, d->mailboxes[i], 0, d->src, d->size,
			kw.data, NULL, pre ? d->pre_id : reserved_id(t->a),
			pre ? d->pre_mbid : 0, &linked, &d->out[i],
			&d->err) == -1) {
			(void)store_exec(t->db,
			    "ROLLBACK TO deliv; RELEASE deliv", &ignored);
			store_txn_undo_to(t, undo_mark);
			store_txn_chg_to(t, chg_mark);
			goto out;
		}
		if (linked && !id_in(*dirs, *ndirs, d->out[i].mailbox_id)) {
			*dirs = xreallocarray(*dirs, *ndirs + 1,
			    sizeof(**dirs));
			(*dirs)[(*ndirs)++] = d->out[i].mailbox_id;
		}
	}
	if (store_stmt_exec(t, "RELEASE deliv", &d->err) == -1) {
		(void)store_exec(t->db, "ROLLBACK TO deliv; RELEASE deliv",
		    &ignored);
		store_txn_undo_to(t, undo_mark);
		store_txn_chg_to(t, chg_mark);
		goto out;
	}
	d->rc = 0;
out:
	if (d->pre_id > 0) {
		/* The file linked ahead goes with the delivery: now if it
		 * failed, else with the transaction if that does not
		 * commit. */
		struct buf p;

		buf_init(&p, STORE_PATH_MAX);
		store_msg_path(t->a, d->pre_mbid, d->pre_id, &p);
		if (d->rc == 0)
			store_txn_undo_add(t, NULL, p.data);
		else if (!pre_taken(t, d->pre_id))
			(void)unlink(p.data);
		buf_release(&p);
	}
	buf_release(&kw);
}

/* Move up to STORE_BATCH_MAX queued deliveries to the end of *tail.
 * Needs a->qlock. */
static size_t
grab(struct store_account *a, struct store_deliv ***tail, size_t n)
{
	LOCK_ASSERT_HELD(&a->qlock);
	while (a->qhead != NULL && n < STORE_BATCH_MAX) {
		struct store_deliv *d = a->qhead;

		a->qhead = d->next;
		d->next = NULL;
		**tail = d;
		*tail = &d->next;
		n++;
	}
	if (a->qhead == NULL)
		a->qtail = NULL;
	return n;
}

/* The id of mailbox name on read connection db, or 0. */
static int64_t
stage_mailbox(struct store_account *a, sqlite3 *db, const char *name)
{
	struct buf canon;
	sqlite3_stmt *st = NULL;
	struct store_err e;
	const char *why;
	int64_t id = 0;

	buf_init(&canon, STORE_MAILBOX_NAME_MAX + 8);
	if (store_mailbox_name_check(name, &canon, &why) == 0 &&
	    store_db_stmt(a, db, "SELECT id FROM mailbox WHERE name = ?1", &st,
		&e) == 0) {
		sqlite3_bind_text(st, 1, canon.data, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		store_db_stmt_put(a, db, st);
	}
	buf_release(&canon);
	return id;
}

/* Whether the reserved ids are still above every message: a row another
 * writer inserted with a higher id (a new one of another process, or a
 * file re-indexed by a repair) ends the reservation, so ids keep growing
 * with time. */
static bool
reserve_valid(struct store_account *a, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	struct store_err e;
	int64_t max = INT64_MAX;
	bool valid;

	if (store_db_stmt(a, db, "SELECT max(id) FROM message", &st, &e) == 0) {
		if (sqlite3_step(st) == SQLITE_ROW)
			max = sqlite3_column_int64(st, 0);
		store_db_stmt_put(a, db, st);
	}
	lock_take(&a->qlock);
	if (max >= a->rsv_next)
		a->rsv_next = a->rsv_end;
	valid = a->rsv_next < a->rsv_end;
	lock_release(&a->qlock);
	return valid;
}

/*
 * Link a group's messages into their mailboxes before the group's
 * transaction, under ids the message sequence reserved (a->rsv_*, raised
 * in an earlier committed transaction, so no other writer, in this
 * process or another, takes them), and fsync those directories: this
 * overlaps the commit of the group before. The file order of DESIGN.md
 * holds for each message: its file is durable (input_prepare()), then
 * the link, then the directory, then (in group_commit()) the row's
 * commit; the row is inserted after its link instead of before, which
 * changes nothing on disk before the commit. A crash in between leaves a
 * file without a row, as a crash after the link always could. Only
 * simple deliveries are linked ahead (one existing mailbox, no quota to
 * check); the others, and any this could not do, are linked in the
 * transaction as before. No locks held; a->staging is set.
 */
static void
stage(struct store_account *a, struct store_deliv *batch)
{
	struct store_deliv *d;
	struct store_err e;
	struct buf p;
	sqlite3 *db = NULL;
	int64_t *dirs = NULL;
	size_t ndirs = 0;

	buf_init(&p, STORE_PATH_MAX);
	for (d = batch; d != NULL; d = d->next) {
		int64_t mbid, id = 0;

		d->pre_id = 0;
		if (d->n != 1 || d->in->quota > 0)
			continue;
		if (db == NULL) {
			db = store_db_get(a, &e);
			if (db == NULL || !reserve_valid(a, db))
				break;
		}
		mbid = stage_mailbox(a, db, d->mailboxes[0]);
		if (mbid == 0)
			continue;
		id = reserved_id(a);
		if (id == 0)
			break;
		store_msg_path(a, mbid, id, &p);
		if (link_or_copy(d->src, p.data, true) == -1)
			continue; /* linked in the transaction instead */
		d->pre_id = id;
		d->pre_mbid = mbid;
		if (!id_in(dirs, ndirs, mbid)) {
			dirs = xreallocarray(dirs, ndirs + 1, sizeof(*dirs));
			dirs[ndirs++] = mbid;
		}
	}
	store_db_put(a, db);
	for (size_t i = 0; i < ndirs; i++) {
		if (fsync_cur(a, dirs[i], &e) == 0)
			continue;
		for (d = batch; d != NULL; d = d->next)
			if (d->pre_id > 0 && d->pre_mbid == dirs[i]) {
				store_msg_path(a, d->pre_mbid, d->pre_id, &p);
				(void)unlink(p.data);
				d->pre_id = 0;
			}
	}
	free(dirs);
	buf_release(&p);
}

/* In t, before its commit: when few reserved ids are left, raise the
 * message sequence by STORE_RSV_IDS; *lo_out and *hi_out get the new range
 * (0 when none). Errors only mean no reservation. */
static void
reserve_ids(struct store_account *a, struct store_txn *t, int64_t *lo_out,
    int64_t *hi_out)
{
	sqlite3_stmt *st = NULL;
	struct store_err e;
	bool few;

	*lo_out = *hi_out = 0;
	lock_take(&a->qlock);
	few = a->rsv_end - a->rsv_next < STORE_BATCH_MAX;
	lock_release(&a->qlock);
	if (!few || store_stmt_get(t,
		"UPDATE sqlite_sequence SET seq = seq + ?1"
		" WHERE name = 'message' RETURNING seq",
		&st, &e) == -1)
		return;
	sqlite3_bind_int64(st, 1, STORE_RSV_IDS);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*hi_out = sqlite3_column_int64(st, 0);
		*lo_out = *hi_out - STORE_RSV_IDS + 1;
		while (sqlite3_step(st) == SQLITE_ROW)
			;
	}
	store_stmt_put(t, st);
}

/* Commit a group: every staged delivery (a->ready) once the write lock
 * is held. Called by the one committing thread, without locks held. */
static void
group_commit(struct store_account *a)
{
	struct store_deliv *batch, *d;
	struct store_txn t;
	struct store_err err;
	struct buf p;
	int64_t *dirs = NULL, lo = 0, hi = 0;
	size_t ndirs = 0;
	bool ok = false;

	if (store_txn_begin(a, &t, &err) == -1)
		goto grab;
	ok = true;
grab:
	/* Groups staged while the lock was awaited join in. */
	lock_take(&a->qlock);
	batch = a->ready;
	a->ready = a->ready_tail = NULL;
	lock_release(&a->qlock);
	if (!ok) {
		buf_init(&p, STORE_PATH_MAX);
		for (d = batch; d != NULL; d = d->next) {
			if (d->pre_id > 0) {
				store_msg_path(a, d->pre_mbid, d->pre_id, &p);
				(void)unlink(p.data);
			}
			d->rc = -1;
			d->err = err;
		}
		buf_release(&p);
		goto done;
	}
	for (d = batch; d != NULL; d = d->next)
		deliv_run(&t, d, &dirs, &ndirs);
	reserve_ids(a, &t, &lo, &hi);
	for (size_t i = 0; i < ndirs && ok; i++)
		if (fsync_cur(a, dirs[i], &err) == -1)
			ok = false;
	if (!ok)
		store_txn_abort(&t);
	else if (store_txn_commit(&t, &err) == -1)
		ok = false;
	if (ok && hi > 0) {
		lock_take(&a->qlock);
		a->rsv_next = lo;
		a->rsv_end = hi + 1;
		lock_release(&a->qlock);
	}
	if (!ok)
		for (d = batch; d != NULL; d = d->next)
			if (d->rc == 0) {
				d->rc = -1;
				d->err = err;
			}
done:
	free(dirs);
	lock_take(&a->qlock);
	for (d = batch; d != NULL; d = d->next) {
		d->done = true;
		pthread_cond_signal(&d->cv);
	}
	lock_release(&a->qlock);
}

int
store_deliver(struct store_account *a, const struct store_add *in,
    const char *const *mailboxes, size_t n, struct store_added *out,
    struct store_err *err)
{
	struct store_deliv d, *batch, **tail;
	struct buf tmp, proc;
	int rc = -1;

	buf_init(&tmp, STORE_PATH_MAX);
	buf_init(&proc, 64);
	memset(&d, 0, sizeof(d));
	if (n == 0) {
		store_errf(err, STORE_EINVAL, "no mailbox");
		goto out;
	}
	if (input_prepare(a, in, true, &tmp, &proc, &d.src, &d.size, err) ==
	    -1)
		goto out;
	d.in = in;
	d.mailboxes = mailboxes;
	d.n = n;
	d.out = out;
	d.origin = store_origin_current();
	lock_cond_init(&d.cv);
	lock_take(&a->qlock);
	if (a->qtail != NULL)
		a->qtail->next = &d;
	else
		a->qhead = &d;
	a->qtail = &d;
	/* One thread at a time takes the queued deliveries as a group and
	 * links them ahead (stage()) and puts it on the ready list; one
	 * thread at a time commits all ready groups together, while the
	 * next group is staged. Each thread waits on its own condition and
	 * is woken when its delivery is done, or when a turn to stage (its
	 * delivery is first in the queue) or to commit (first ready) is
	 * free, so a commit wakes only its own deliveries. */
	while (!d.done) {
		if (!a->committing && a->ready != NULL) {
			a->committing = true;
			lock_release(&a->qlock);
			group_commit(a);
			lock_take(&a->qlock);
			a->committing = false;
			if (a->ready != NULL)
				pthread_cond_signal(&a->ready->cv);
			if (!a->staging && a->qhead != NULL)
				pthread_cond_signal(&a->qhead->cv);
			continue;
		}
		if (!a->staging && a->qhead != NULL) {
			a->staging = true;
			batch = NULL;
			tail = &batch;
			grab(a, &tail, 0);
			lock_release(&a->qlock);
			stage(a, batch);
			lock_take(&a->qlock);
			a->staging = false;
			if (a->ready_tail != NULL)
				a->ready_tail->next = batch;
			else
				a->ready = batch;
			while (batch != NULL) {
				a->ready_tail = batch;
				batch = batch->next;
			}
			if (a->qhead != NULL)
				pthread_cond_signal(&a->qhead->cv);
			continue;
		}
		lock_wait(&a->qlock, &d.cv);
	}
	lock_release(&a->qlock);
	pthread_cond_destroy(&d.cv);
	rc = d.rc;
	if (rc == -1 && err != NULL)
		*err = d.err;
out:
	if (tmp.len > 0)
		(void)unlink(tmp.data);
	buf_release(&tmp);
	buf_release(&proc);
	return rc;
}

struct store_import {
	struct store_account *a;
	struct store_txn t;
	int64_t mbid;
	struct buf kw, tmp;
};

struct store_import *
store_import_begin(struct store_account *a, const char *mailbox, bool create,
    struct store_err *err)
{
	struct store_import *im;
	struct buf canon;
	const char *why = NULL;
	int r;

	buf_init(&canon, STORE_MAILBOX_NAME_MAX + 8);
	if (store_mailbox_name_check(mailbox, &canon, &why) == -1) {
		store_errf(err, STORE_EINVAL, "%s", why);
		buf_release(&canon);
		return NULL;
	}
	im = xcalloc(1, sizeof(*im));
	im->a = a;
	buf_init(&im->kw, STORE_KEYWORDS_MAX + 1);
	buf_init(&im->tmp, STORE_PATH_MAX);
	if (store_txn_begin(a, &im->t, err) == -1) {
		buf_release(&canon);
		buf_release(&im->kw);
		buf_release(&im->tmp);
		free(im);
		return NULL;
	}
	r = create ? store_mb_ensure_txn(&im->t, canon.data, &im->mbid, err) :
		     store_mb_lookup(im->t.db, canon.data, &im->mbid, err);
	buf_release(&canon);
	if (r == -1) {
		store_import_abort(im);
		return NULL;
	}
	return im;
}

int
store_import_add(struct store_import *im, const struct store_add *in,
    struct store_added *out, struct store_err *err)
{
	const char *why = NULL, *src;
	struct buf proc;
	int64_t size;
	int rc = -1;

	if (store_kw_norm(in->keywords, &im->kw, &why) == -1) {
		store_errf(err, STORE_EINVAL, "%s", why);
		return -1;
	}
	buf_reset(&im->tmp);
	buf_init(&proc, 64);
	/* Linked into cur/ right away; the temp file is not needed after. */
	if (input_prepare(im->a, in, false, &im->tmp, &proc, &src, &size,
		err) == 0 &&
	    add_one(&im->t, in, NULL, im->mbid, src, size, im->kw.data, NULL,
		0, 0, NULL, out, err) == 0)
		rc = 0;
	if (im->tmp.len > 0)
		(void)unlink(im->tmp.data);
	buf_release(&proc);
	return rc;
}

static void
import_free(struct store_import *im)
{
	buf_release(&im->kw);
	buf_release(&im->tmp);
	free(im);
}

int
store_import_commit(struct store_import *im, struct store_err *err)
{
	int dfd, rc = -1;

	/* One syncfs makes all new files and directory entries durable
	 * before the commit (spec/store.md 18.2: bulk import). */
	dfd = open(im->a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 || syncfs(dfd) == -1) {
		store_errf(err, STORE_EINTERNAL, "syncfs: %s",
		    log_strerror(errno));
		if (dfd != -1)
			(void)close(dfd);
		store_txn_abort(&im->t);
		goto out;
	}
	(void)close(dfd);
	if (store_txn_commit(&im->t, err) == -1)
		goto out;
	rc = 0;
out:
	import_free(im);
	return rc;
}

void
store_import_abort(struct store_import *im)
{
	if (im == NULL)
		return;
	store_txn_abort(&im->t);
	import_free(im);
}

int
store_import(struct store_account *a, const char *mailbox,
    const struct store_add *ins, size_t n, struct store_added *out,
    struct store_err *err)
{
	struct store_import *im = store_import_begin(a, mailbox, false, err);

	if (im == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (store_import_add(im, &ins[i], out != NULL ? &out[i] : NULL,
			err) == -1) {
			store_import_abort(im);
			return -1;
		}
	return store_import_commit(im, err);
}

/* ---- reading ---- */

static void
msg_from_row(sqlite3_stmt *st, struct store_msg *m)
{
	const char *kw = (const char *)sqlite3_column_text(st, 7);

	m->id = sqlite3_column_int64(st, 0);
	m->mailbox_id = sqlite3_column_int64(st, 1);
	m->uid = (uint32_t)sqlite3_column_int64(st, 2);
	m->modseq = sqlite3_column_int64(st, 3);
	m->createseq = sqlite3_column_int64(st, 4);
	m->expunged = sqlite3_column_int(st, 5) != 0;
	m->flags = (uint32_t)sqlite3_column_int64(st, 6);
	m->keywords = xstrdup(kw != NULL ? kw : "");
	m->received_ns = sqlite3_column_int64(st, 8);
	m->size = sqlite3_column_int64(st, 9);
	m->trained_junk = sqlite3_column_int64(st, 10);
}

static int
list_query(struct store_account *a, const char *sql, int64_t mbid,
    int64_t arg, struct store_msg_list *out, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc = -1, r;

	memset(out, 0, sizeof(*out));
	if (db == NULL)
		return -1;
	if (store_prepare(db, sql, &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, mbid);
	sqlite3_bind_int64(st, 2, arg);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (out->n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			out->v = xreallocarray(out->v, cap, sizeof(*out->v));
		}
		msg_from_row(st, &out->v[out->n++]);
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, db, "list messages");
		store_msg_list_release(out);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

static bool
new_has_files(struct store_account *a, int64_t mbid)
{
	struct buf p;
	DIR *d;
	struct dirent *de;
	bool any = false;

	buf_init(&p, STORE_PATH_MAX);
	store_mb_dir(a, mbid, "new", &p);
	d = opendir(p.data);
	buf_release(&p);
	if (d == NULL)
		return false;
	while (!any && (de = readdir(d)) != NULL)
		any = de->d_name[0] != '.';
	closedir(d);
	return any;
}

int
store_list(struct store_account *a, int64_t mailbox_id,
    struct store_msg_list *out, struct store_err *err)
{
	struct store_err serr;

	/* A read-only store indexes nothing; a failed scan leaves the files
	 * for the next one and the indexed messages are listed anyway. */
	if (!a->store->readonly && new_has_files(a, mailbox_id) &&
	    store_scan_new(a, mailbox_id, NULL, &serr) == -1) {
		struct log_ctx lc = log_ctx_init("store", 0);

		log_error(&lc, "indexing new/ failed",
		    LF_STR("account", a->name), LF_I64("mailbox", mailbox_id),
		    LF_ERR(serr.text));
	}
	return list_query(a,
	    "SELECT " MSG_COLS " FROM message WHERE mailbox_id = ?1"
	    " AND expunged = 0 AND ?2 = 0 ORDER BY uid",
	    mailbox_id, 0, out, err);
}

int
store_changes_since(struct store_account *a, int64_t mailbox_id,
    int64_t since, struct store_msg_list *out, struct store_err *err)
{
	return list_query(a,
	    "SELECT " MSG_COLS " FROM message WHERE mailbox_id = ?1"
	    " AND modseq > ?2 ORDER BY uid",
	    mailbox_id, since, out, err);
}

int
store_msg_get(struct store_account *a, int64_t mailbox_id, uint32_t uid,
    struct store_msg *out, struct buf *parsed, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (db == NULL)
		return -1;
	if (store_prepare(db,
		"SELECT " MSG_COLS ", parsed FROM message WHERE mailbox_id = ?1"
		" AND uid = ?2 AND expunged = 0",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		store_errf(err, STORE_ENOMSG, "no such message");
		goto out;
	}
	if (r != SQLITE_ROW) {
		store_err_db(err, db, "read message");
		goto out;
	}
	msg_from_row(st, out);
	if (parsed != NULL)
		buf_add(parsed, sqlite3_column_blob(st, 11),
		    (size_t)sqlite3_column_bytes(st, 11));
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

int
store_msg_mailfrom(struct store_account *a, int64_t id, struct buf *out,
    struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (db == NULL)
		return -1;
	if (store_prepare(db, "SELECT mailfrom FROM message WHERE id = ?1",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		store_errf(err, STORE_ENOMSG, "no such message");
		goto out;
	}
	if (r != SQLITE_ROW) {
		store_err_db(err, db, "read message");
		goto out;
	}
	buf_add(out, sqlite3_column_text(st, 0),
	    (size_t)sqlite3_column_bytes(st, 0));
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

int
store_delivery_counts(struct store_account *a, const char *remote_ip,
    int64_t since_ns, struct store_delivery_counts *out,
    struct store_err *err)
{
	/* One statement per class so each uses its (mask, received) index. */
	static const char *const q[3] = {
		"SELECT count(*), coalesce(sum(size), 0) FROM message"
		" WHERE remote_ip_masked1 = ?1 AND received >= ?2"
		" AND expunged = 0",
		"SELECT count(*), coalesce(sum(size), 0) FROM message"
		" WHERE remote_ip_masked2 = ?1 AND received >= ?2"
		" AND expunged = 0",
		"SELECT count(*), coalesce(sum(size), 0) FROM message"
		" WHERE remote_ip_masked3 = ?1 AND received >= ?2"
		" AND expunged = 0",
	};
	char m[INET6_ADDRSTRLEN];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	ip_masked(remote_ip, 0, m, sizeof(m));
	if (m[0] == '\0')
		return 0; /* never matches a stored (possibly empty) mask */
	db = store_db_get(a, err);
	if (db == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		ip_masked(remote_ip, i, m, sizeof(m));
		sqlite3_finalize(st);
		st = NULL;
		if (store_prepare(db, q[i], &st, err) == -1)
			goto out;
		bind_str(st, 1, m);
		sqlite3_bind_int64(st, 2, since_ns);
		if (sqlite3_step(st) != SQLITE_ROW) {
			store_err_db(err, db, "count deliveries");
			goto out;
		}
		out->msgs[i] = sqlite3_column_int64(st, 0);
		out->bytes[i] = sqlite3_column_int64(st, 1);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

int
store_msg_open(struct store_account *a, int64_t mailbox_id, uint32_t uid,
    int *fd_out, struct store_err *err)
{
	struct store_msg m;
	struct buf p;
	int fd;

	if (store_msg_get(a, mailbox_id, uid, &m, NULL, err) == -1)
		return -1;
	buf_init(&p, STORE_PATH_MAX);
	store_msg_path(a, mailbox_id, m.id, &p);
	free(m.keywords);
	fd = open(p.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf_release(&p);
	if (fd == -1) {
		/* RFC 9051 7.1: a client may see EXPUNGEISSUED. */
		store_errf(err, errno == ENOENT ? STORE_ENOMSG : STORE_EINTERNAL,
		    "open message file: %s", log_strerror(errno));
		return -1;
	}
	*fd_out = fd;
	return 0;
}

/* ---- header sections ---- */

#define HDR_READ 4096 /* first read; a header section is usually shorter */

/* Length of the header section at the start of p[0..len): through the
 * first empty line ("\n" or "\r\n"), else len. The same rule as
 * message_header_len() (src/message), which programs linking only the
 * store do not carry. */
static size_t
hdr_len(const char *p, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *lf = memchr(p + pos, '\n', len - pos);
		size_t end = lf != NULL ? (size_t)(lf - p) + 1 : len;

		if ((end - pos == 1 && p[pos] == '\n') ||
		    (end - pos == 2 && p[pos] == '\r' && p[pos + 1] == '\n'))
			return end;
		pos = end;
	}
	return len;
}

static struct store_hdr_slot *
hdr_slot(struct store *s, uint64_t acct, int64_t id)
{
	uint64_t h = (acct * UINT64_C(0x9e3779b97f4a7c15)) ^ (uint64_t)id;

	return &s->hcache[h % STORE_HDR_SLOTS];
}

/* Copy the cached header of id into out. */
static bool
hdr_cached(struct store_account *a, int64_t id, struct buf *out)
{
	struct store *s = a->store;
	struct store_hdr_slot *e;
	bool hit = false;

	lock_take(&s->hclock);
	if (s->hcache != NULL) {
		e = hdr_slot(s, a->serial, id);
		if (e->id == id && e->acct == a->serial) {
			buf_add(out, e->data, e->len);
			hit = true;
		}
	}
	lock_release(&s->hclock);
	return hit;
}

static void
hdr_remember(struct store_account *a, int64_t id, const char *p, size_t len)
{
	struct store *s = a->store;
	struct store_hdr_slot *e;
	char *old = NULL, *copy;

	if (len > STORE_HDR_CACHE_MAX)
		return;
	copy = xmalloc(len + 1);
	memcpy(copy, p, len);
	lock_take(&s->hclock);
	if (s->hcache == NULL)
		s->hcache = xcalloc(STORE_HDR_SLOTS, sizeof(*s->hcache));
	e = hdr_slot(s, a->serial, id);
	old = e->data;
	e->acct = a->serial;
	e->id = id;
	e->data = copy;
	e->len = len;
	lock_release(&s->hclock);
	free(old);
}

int
store_msg_header(struct store_account *a, int64_t mailbox_id, int64_t id,
    struct buf *out, struct store_err *err)
{
	struct buf path, b;
	size_t hlen = 0, want = HDR_READ;
	bool eof = false;
	int fd, rc = -1;

	if (hdr_cached(a, id, out))
		return 0;
	buf_init(&path, STORE_PATH_MAX);
	store_msg_path(a, mailbox_id, id, &path);
	fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf_release(&path);
	if (fd == -1) {
		store_errf(err, errno == ENOENT ? STORE_ENOMSG : STORE_EINTERNAL,
		    "open message file: %s", log_strerror(errno));
		return -1;
	}
	buf_init(&b, out->max);
	/* Lines end in LF (message_header.c), so an empty line found in a
	 * prefix ends the header of the whole file too. */
	while (!eof) {
		char *p = buf_reserve(&b, want);
		ssize_t r;

		if (p == NULL) {
			store_errf(err, STORE_EINTERNAL, "header too large");
			goto out;
		}
		r = pread(fd, p, want, (off_t)b.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			store_errf(err, STORE_EINTERNAL, "read message file: %s",
			    log_strerror(errno));
			goto out;
		}
		buf_commit(&b, (size_t)r);
		eof = r == 0;
		hlen = hdr_len(b.data, b.len);
		if (hlen < b.len)
			break;
		want = b.len < 65536 ? b.len : 65536;
	}
	hdr_remember(a, id, b.data, hlen);
	if (buf_add(out, b.data, hlen) == -1) {
		store_errf(err, STORE_EINTERNAL, "header too large");
		goto out;
	}
	rc = 0;
out:
	buf_release(&b);
	(void)close(fd);
	return rc;
}

/* ---- flags ---- */

static uint32_t *
push_u32(uint32_t *v, size_t *n, uint32_t x)
{
	v = xreallocarray(v, *n + 1, sizeof(*v));
	v[(*n)++] = x;
	return v;
}

int
store_flags(struct store_account *a, int64_t mailbox_id,
    const uint32_t *uids, size_t n, enum store_flag_op op, uint32_t flags,
    const char *keywords, int64_t unchangedsince,
    struct store_flags_result *res, struct store_err *err)
{
	struct store_txn t;
	struct buf kw, nk;
	sqlite3_stmt *sel = NULL, *up = NULL;
	uint32_t *v = NULL;
	size_t nv;
	const char *why = NULL;
	bool in_txn = false, any = false;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	buf_init(&kw, STORE_KEYWORDS_MAX + 1);
	buf_init(&nk, STORE_KEYWORDS_MAX + 1);
	flags &= STORE_F_ALL;
	if (store_kw_norm(keywords, &kw, &why) == -1) {
		store_errf(err, STORE_EINVAL, "%s", why);
		goto out;
	}
	nv = uids_sorted(uids, n, &v);
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (store_prepare(t.db,
		"SELECT id, flags, keywords, modseq, size FROM message"
		" WHERE mailbox_id = ?1 AND uid = ?2 AND expunged = 0",
		&sel, err) == -1 ||
	    store_prepare(t.db,
		"UPDATE message SET flags = ?2, keywords = ?3, modseq = ?4"
		" WHERE id = ?1",
		&up, err) == -1)
		goto out;
	for (size_t i = 0; i < nv; i++) {
		uint32_t old, nf = 0;
		const char *ok;
		int64_t id, ms, size, modseq;
		int r;

		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, mailbox_id);
		sqlite3_bind_int64(sel, 2, v[i]);
		r = sqlite3_step(sel);
		if (r == SQLITE_DONE)
			continue;
		if (r != SQLITE_ROW) {
			store_err_db(err, t.db, "read message");
			goto out;
		}
		id = sqlite3_column_int64(sel, 0);
		old = (uint32_t)sqlite3_column_int64(sel, 1);
		ok = (const char *)sqlite3_column_text(sel, 2);
		ms = sqlite3_column_int64(sel, 3);
		size = sqlite3_column_int64(sel, 4);
		switch (op) {
		case STORE_FLAGS_SET:
			nf = flags;
			buf_reset(&nk);
			buf_adds(&nk, kw.data);
			break;
		case STORE_FLAGS_ADD:
			nf = old | flags;
			store_kw_union(ok, kw.data, &nk);
			break;
		case STORE_FLAGS_REMOVE:
			nf = old & ~flags;
			store_kw_minus(ok, kw.data, &nk);
			break;
		}
		/* RFC 7162 3.1.3: fail when modseq > UNCHANGEDSINCE, also
		 * for a store that would change nothing (so UNCHANGEDSINCE 0
		 * fails for every existing message). */
		if (unchangedsince >= 0 && ms > unchangedsince) {
			res->modified = push_u32(res->modified,
			    &res->n_modified, v[i]);
			continue;
		}
		if (nf == old && strcmp(nk.data, ok != NULL ? ok : "") == 0)
			continue;
		if (store_txn_modseq(&t, &modseq, err) == -1)
			goto out;
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, id);
		sqlite3_bind_int64(up, 2, nf);
		sqlite3_bind_text(up, 3, nk.data, (int)nk.len,
		    SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 4, modseq);
		if (sqlite3_step(up) != SQLITE_DONE) {
			store_err_db(err, t.db, "update flags");
			goto out;
		}
		if (store_counts_apply(&t, mailbox_id, old, size, -1, err) ==
			-1 ||
		    store_counts_apply(&t, mailbox_id, nf, size, 1, err) == -1)
			goto out;
		{
			struct store_change *c = store_txn_change(&t,
			    STORE_CHANGE_FLAGS, mailbox_id);
			struct store_chg *h = &t.chg[t.nchg - 1];

			store_chg_set_str(h, nk.data, NULL);
			c->uid = v[i];
			c->modseq = modseq;
			c->flags = nf;
			c->keywords = h->s1;
		}
		res->changed = push_u32(res->changed, &res->n_changed, v[i]);
		res->modseq = modseq;
		any = true;
	}
	if (any && op != STORE_FLAGS_REMOVE &&
	    store_mb_kw_merge(&t, mailbox_id, kw.data, err) == -1)
		goto out;
	if (any && store_counts_changed(&t, mailbox_id, err) == -1)
		goto out;
	sqlite3_finalize(sel);
	sqlite3_finalize(up);
	sel = up = NULL;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(up);
	if (in_txn)
		store_txn_abort(&t);
	if (rc == -1)
		store_flags_result_release(res);
	free(v);
	buf_release(&kw);
	buf_release(&nk);
	return rc;
}

/* ---- expunge ---- */

int
store_expunge(struct store_account *a, int64_t mailbox_id,
    const uint32_t *uids, size_t n, struct store_uids *removed,
    struct store_err *err)
{
	struct store_txn t;
	sqlite3_stmt *sel = NULL, *up = NULL, *del = NULL;
	uint32_t *v = NULL, *want = NULL;
	size_t nv = 0, nwant = 0, k = 0;
	int64_t modseq = 0, total = 0;
	struct buf p;
	bool in_txn = false;
	int rc = -1, r;

	memset(removed, 0, sizeof(*removed));
	buf_init(&p, STORE_PATH_MAX);
	if (uids != NULL)
		nwant = uids_sorted(uids, n, &want);
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (store_prepare(t.db,
		"SELECT id, uid, flags, size FROM message WHERE mailbox_id = ?1"
		" AND expunged = 0 AND (flags & 64) != 0 ORDER BY uid",
		&sel, err) == -1 ||
	    store_prepare(t.db,
		"UPDATE message SET expunged = 1, modseq = ?2, flags = 0,"
		" keywords = '', size = 0, parsed = NULL, msg_prefix = NULL,"
		" trained_junk = NULL, message_hash = NULL WHERE id = ?1",
		&up, err) == -1 ||
	    store_prepare(t.db,
		"DELETE FROM recipient WHERE message_id = ?1", &del,
		err) == -1)
		goto out;
	sqlite3_bind_int64(sel, 1, mailbox_id);
	while ((r = sqlite3_step(sel)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(sel, 1);
		int64_t id = sqlite3_column_int64(sel, 0);
		int64_t size = sqlite3_column_int64(sel, 3);
		uint32_t fl = (uint32_t)sqlite3_column_int64(sel, 2);

		if (want != NULL) {
			while (k < nwant && want[k] < uid)
				k++;
			if (k == nwant || want[k] != uid)
				continue;
		}
		if (store_txn_modseq(&t, &modseq, err) == -1)
			goto out;
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, id);
		sqlite3_bind_int64(up, 2, modseq);
		if (sqlite3_step(up) != SQLITE_DONE) {
			store_err_db(err, t.db, "expunge");
			goto out;
		}
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, id);
		if (sqlite3_step(del) != SQLITE_DONE) {
			store_err_db(err, t.db, "delete recipients");
			goto out;
		}
		if (store_counts_apply(&t, mailbox_id, fl, size, -1, err) ==
		    -1)
			goto out;
		total += size;
		v = push_u32(v, &nv, uid);
		store_msg_path(a, mailbox_id, id, &p);
		store_txn_unlink_after(&t, p.data);
	}
	if (r != SQLITE_DONE) {
		store_err_db(err, t.db, "list deleted");
		goto out;
	}
	if (nv > 0) {
		struct store_change *c = store_txn_change(&t,
		    STORE_CHANGE_REMOVE_UIDS, mailbox_id);
		struct store_chg *h = &t.chg[t.nchg - 1];

		h->uids = xcalloc(nv, sizeof(*h->uids));
		memcpy(h->uids, v, nv * sizeof(*v));
		c->uids = h->uids;
		c->n_uids = nv;
		c->modseq = modseq;
		if (store_disk_add(&t, -total, err) == -1 ||
		    store_counts_changed(&t, mailbox_id, err) == -1)
			goto out;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	sel = up = del = NULL;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	removed->v = v;
	removed->n = nv;
	removed->modseq = modseq;
	v = NULL;
	rc = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	if (in_txn)
		store_txn_abort(&t);
	free(v);
	free(want);
	buf_release(&p);
	return rc;
}

/* ---- copy and move ---- */

#define COPY_COLS \
	"is_forward, received, remote_ip, remote_ip_masked1," \
	" remote_ip_masked2, remote_ip_masked3, ehlo_domain, mailfrom," \
	" mailfrom_localpart, mailfrom_domain, rcptto_localpart," \
	" rcptto_domain, msgfrom_localpart, msgfrom_domain," \
	" msgfrom_orgdomain, ehlo_validated, mailfrom_validated," \
	" msgfrom_validated, ehlo_validation, mailfrom_validation," \
	" msgfrom_validation, orig_ehlo_domain, orig_dkim_domains," \
	" message_id, subject_base, message_hash, thread_id," \
	" thread_parent_ids, thread_missing_link, thread_muted," \
	" thread_collapsed, is_mailing_list, dsn, received_tls_version," \
	" received_tls_ciphersuite, received_requiretls, keywords, size," \
	" msg_prefix, parsed"

struct src_row {
	int64_t id;
	uint32_t uid;
	uint32_t flags;
	int64_t size;
	char *keywords;
	bool is_reject;
	int64_t destined;
	int64_t orig;
};

static int
src_rows(struct store_txn *t, int64_t mbid, const uint32_t *uids, size_t n,
    struct src_row **out, size_t *nout, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	uint32_t *v = NULL;
	size_t nv = uids_sorted(uids, n, &v), k = 0;
	struct src_row *rows = xcalloc(nv > 0 ? nv : 1, sizeof(*rows));
	int rc = -1;

	if (store_prepare(t->db,
		"SELECT id, flags, size, keywords, is_reject,"
		" mailbox_destined_id, mailbox_orig_id FROM message"
		" WHERE mailbox_id = ?1 AND uid = ?2 AND expunged = 0",
		&st, err) == -1)
		goto out;
	for (size_t i = 0; i < nv; i++) {
		int r;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, mbid);
		sqlite3_bind_int64(st, 2, v[i]);
		r = sqlite3_step(st);
		if (r == SQLITE_DONE)
			continue;
		if (r != SQLITE_ROW) {
			store_err_db(err, t->db, "read message");
			goto out;
		}
		rows[k].id = sqlite3_column_int64(st, 0);
		rows[k].uid = v[i];
		rows[k].flags = (uint32_t)sqlite3_column_int64(st, 1);
		rows[k].size = sqlite3_column_int64(st, 2);
		rows[k].keywords =
		    xstrdup((const char *)sqlite3_column_text(st, 3));
		rows[k].is_reject = sqlite3_column_int(st, 4) != 0;
		rows[k].destined = sqlite3_column_int64(st, 5);
		rows[k].orig = sqlite3_column_int64(st, 6);
		k++;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	free(v);
	*out = rows;
	*nout = k;
	return rc;
}

static void
src_rows_free(struct src_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].keywords);
	free(rows);
}

static int
merge_row_keywords(struct store_txn *t, int64_t dst, struct src_row *rows,
    size_t n, struct store_err *err)
{
	struct buf all, tmp;
	int rc;

	buf_init(&all, BUF_NOMAX);
	buf_init(&tmp, BUF_NOMAX);
	for (size_t i = 0; i < n; i++) {
		store_kw_union(all.data, rows[i].keywords, &tmp);
		buf_reset(&all);
		buf_add(&all, tmp.data, tmp.len);
	}
	rc = store_mb_kw_merge(t, dst, all.data, err);
	buf_release(&all);
	buf_release(&tmp);
	return rc;
}

int
store_copy(struct store_account *a, int64_t src_mailbox_id,
    const uint32_t *uids, size_t n, int64_t dst_mailbox_id, int64_t quota,
    struct store_uidmap *out, struct store_err *err)
{
	struct store_txn t;
	struct src_row *rows = NULL;
	size_t nrows = 0;
	sqlite3_stmt *ins = NULL, *dk = NULL, *rcp = NULL;
	struct buf sp, dp;
	int64_t modseq, total = 0;
	uint32_t uid0, uv;
	unsigned special;
	bool in_txn = false;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&sp, STORE_PATH_MAX);
	buf_init(&dp, STORE_PATH_MAX);
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (src_rows(&t, src_mailbox_id, uids, n, &rows, &nrows, err) == -1)
		goto out;
	if (nrows == 0) {
		store_errf(err, STORE_ENOMSG, "no matching messages");
		goto out;
	}
	for (size_t i = 0; i < nrows; i++)
		total += rows[i].size;
	if (quota_check(&t, quota, total, err) == -1 ||
	    uid_take(&t, dst_mailbox_id, (uint32_t)nrows, &uid0, &uv,
		&special, err) == -1 ||
	    store_txn_modseq(&t, &modseq, err) == -1)
		goto out;
	if (store_prepare(t.db,
		"INSERT INTO message(mailbox_id, uid, modseq, createseq,"
		" mailbox_orig_id, flags, " COPY_COLS ")"
		" SELECT ?2, ?3, ?4, ?4, ?5, ?6, " COPY_COLS
		" FROM message WHERE id = ?1",
		&ins, err) == -1 ||
	    store_prepare(t.db,
		"INSERT INTO message_dkim(message_id, domain, received)"
		" SELECT ?2, domain, received FROM message_dkim"
		" WHERE message_id = ?1",
		&dk, err) == -1 ||
	    store_prepare(t.db,
		"INSERT INTO recipient(message_id, localpart, domain,"
		" orgdomain, sent) SELECT ?2, localpart, domain, orgdomain,"
		" sent FROM recipient WHERE message_id = ?1",
		&rcp, err) == -1)
		goto out;
	out->src = xcalloc(nrows, sizeof(*out->src));
	out->dst = xcalloc(nrows, sizeof(*out->dst));
	for (size_t i = 0; i < nrows; i++) {
		struct src_row *s = &rows[i];
		uint32_t fl = junk_flags(s->flags, special);
		int64_t orig = s->orig, nid;

		/* spec/store.md 6: leaving Rejects restores the mailbox for
		 * reputation. */
		if (s->is_reject && s->destined != 0)
			orig = s->destined;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, s->id);
		sqlite3_bind_int64(ins, 2, dst_mailbox_id);
		sqlite3_bind_int64(ins, 3, uid0 + (uint32_t)i);
		sqlite3_bind_int64(ins, 4, modseq);
		sqlite3_bind_int64(ins, 5, orig);
		sqlite3_bind_int64(ins, 6, fl);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			store_err_db(err, t.db, "copy message");
			goto out;
		}
		nid = sqlite3_last_insert_rowid(t.db);
		sqlite3_reset(dk);
		sqlite3_bind_int64(dk, 1, s->id);
		sqlite3_bind_int64(dk, 2, nid);
		sqlite3_reset(rcp);
		sqlite3_bind_int64(rcp, 1, s->id);
		sqlite3_bind_int64(rcp, 2, nid);
		if (sqlite3_step(dk) != SQLITE_DONE ||
		    sqlite3_step(rcp) != SQLITE_DONE) {
			store_err_db(err, t.db, "copy message data");
			goto out;
		}
		if (store_counts_apply(&t, dst_mailbox_id, fl, s->size, 1,
			err) == -1)
			goto out;
		store_msg_path(a, src_mailbox_id, s->id, &sp);
		store_msg_path(a, dst_mailbox_id, nid, &dp);
		if (link_or_copy(sp.data, dp.data, true) == -1) {
			store_errf(err, STORE_EINTERNAL,
			    "link message file: %s", log_strerror(errno));
			goto out;
		}
		store_txn_undo_add(&t, NULL, dp.data);
		change_add_uid(&t, dst_mailbox_id, uid0 + (uint32_t)i, modseq,
		    fl, s->keywords);
		out->src[i] = s->uid;
		out->dst[i] = uid0 + (uint32_t)i;
	}
	out->n = nrows;
	out->dst_uidvalidity = uv;
	out->modseq = modseq;
	if (store_disk_add(&t, total, err) == -1 ||
	    merge_row_keywords(&t, dst_mailbox_id, rows, nrows, err) == -1 ||
	    store_counts_changed(&t, dst_mailbox_id, err) == -1 ||
	    fsync_cur(a, dst_mailbox_id, err) == -1)
		goto out;
	sqlite3_finalize(ins);
	sqlite3_finalize(dk);
	sqlite3_finalize(rcp);
	ins = dk = rcp = NULL;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(dk);
	sqlite3_finalize(rcp);
	if (in_txn)
		store_txn_abort(&t);
	if (rc == -1)
		store_uidmap_release(out);
	src_rows_free(rows, nrows);
	buf_release(&sp);
	buf_release(&dp);
	return rc;
}

int
store_move_txn(struct store_txn *t, int64_t src, const uint32_t *uids,
    size_t n, int64_t dst, struct store_uidmap *out, struct store_err *err)
{
	struct src_row *rows = NULL;
	size_t nrows = 0;
	sqlite3_stmt *up = NULL, *tomb = NULL;
	struct buf sp, dp;
	int64_t modseq;
	uint32_t uid0, uv;
	unsigned special;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&sp, STORE_PATH_MAX);
	buf_init(&dp, STORE_PATH_MAX);
	if (src == dst) {
		store_errf(err, STORE_EINVAL, "source is destination");
		goto out;
	}
	if (src_rows(t, src, uids, n, &rows, &nrows, err) == -1)
		goto out;
	if (nrows == 0) {
		store_errf(err, STORE_ENOMSG, "no matching messages");
		goto out;
	}
	if (uid_take(t, dst, (uint32_t)nrows, &uid0, &uv, &special, err) ==
		-1 ||
	    store_txn_modseq(t, &modseq, err) == -1)
		goto out;
	if (store_prepare(t->db,
		"UPDATE message SET mailbox_id = ?2, uid = ?3, modseq = ?4,"
		" createseq = ?4, flags = ?5, is_reject = 0,"
		" mailbox_orig_id = ?6 WHERE id = ?1",
		&up, err) == -1 ||
	    store_prepare(t->db,
		"INSERT INTO message(mailbox_id, uid, modseq, createseq,"
		" expunged, received, size) VALUES (?1, ?2, ?3, ?3, 1, ?4, 0)",
		&tomb, err) == -1)
		goto out;
	out->src = xcalloc(nrows, sizeof(*out->src));
	out->dst = xcalloc(nrows, sizeof(*out->dst));
	for (size_t i = 0; i < nrows; i++) {
		struct src_row *s = &rows[i];
		uint32_t fl = junk_flags(s->flags, special);
		int64_t orig = s->orig;

		if (s->is_reject) {
			/* spec/store.md 7: a rescued message stands out. */
			fl &= ~(uint32_t)STORE_F_SEEN;
			if (s->destined != 0)
				orig = s->destined;
		}
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, s->id);
		sqlite3_bind_int64(up, 2, dst);
		sqlite3_bind_int64(up, 3, uid0 + (uint32_t)i);
		sqlite3_bind_int64(up, 4, modseq);
		sqlite3_bind_int64(up, 5, fl);
		sqlite3_bind_int64(up, 6, orig);
		sqlite3_reset(tomb);
		sqlite3_bind_int64(tomb, 1, src);
		sqlite3_bind_int64(tomb, 2, s->uid);
		sqlite3_bind_int64(tomb, 3, modseq);
		sqlite3_bind_int64(tomb, 4, store_now_ns());
		if (sqlite3_step(up) != SQLITE_DONE ||
		    sqlite3_step(tomb) != SQLITE_DONE) {
			store_err_db(err, t->db, "move message");
			goto out;
		}
		if (store_counts_apply(t, src, s->flags, s->size, -1, err) ==
			-1 ||
		    store_counts_apply(t, dst, fl, s->size, 1, err) == -1)
			goto out;
		store_msg_path(t->a, src, s->id, &sp);
		store_msg_path(t->a, dst, s->id, &dp);
		if (rename(sp.data, dp.data) == -1) {
			store_errf(err, STORE_EINTERNAL,
			    "move message file: %s", log_strerror(errno));
			goto out;
		}
		store_txn_undo_add(t, sp.data, dp.data);
		out->src[i] = s->uid;
		out->dst[i] = uid0 + (uint32_t)i;
	}
	out->n = nrows;
	out->dst_uidvalidity = uv;
	out->modseq = modseq;
	{
		struct store_change *c = store_txn_change(t,
		    STORE_CHANGE_REMOVE_UIDS, src);
		struct store_chg *h = &t->chg[t->nchg - 1];

		h->uids = xcalloc(nrows, sizeof(*h->uids));
		memcpy(h->uids, out->src, nrows * sizeof(*h->uids));
		c->uids = h->uids;
		c->n_uids = nrows;
		c->modseq = modseq;
	}
	for (size_t i = 0; i < nrows; i++)
		change_add_uid(t, dst, out->dst[i], modseq,
		    junk_flags(rows[i].flags, special) &
			~(uint32_t)(rows[i].is_reject ? STORE_F_SEEN : 0),
		    rows[i].keywords);
	if (merge_row_keywords(t, dst, rows, nrows, err) == -1 ||
	    store_counts_changed(t, src, err) == -1 ||
	    store_counts_changed(t, dst, err) == -1 ||
	    fsync_cur(t->a, dst, err) == -1 || fsync_cur(t->a, src, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(up);
	sqlite3_finalize(tomb);
	if (rc == -1)
		store_uidmap_release(out);
	src_rows_free(rows, nrows);
	buf_release(&sp);
	buf_release(&dp);
	return rc;
}

int
store_move(struct store_account *a, int64_t src_mailbox_id,
    const uint32_t *uids, size_t n, int64_t dst_mailbox_id,
    struct store_uidmap *out, struct store_err *err)
{
	struct store_txn t;

	memset(out, 0, sizeof(*out));
	if (store_txn_begin(a, &t, err) == -1)
		return -1;
	if (store_move_txn(&t, src_mailbox_id, uids, n, dst_mailbox_id, out,
		err) == -1) {
		store_txn_abort(&t);
		return -1;
	}
	if (store_txn_commit(&t, err) == -1) {
		store_uidmap_release(out);
		return -1;
	}
	return 0;
}

int
store_msg_set_trained(struct store_account *a, int64_t id, int64_t trained,
    struct store_err *err)
{
	struct store_txn t;
	sqlite3_stmt *st = NULL;

	if (store_txn_begin(a, &t, err) == -1)
		return -1;
	if (store_prepare(t.db,
		"UPDATE message SET trained_junk = ?2 WHERE id = ?1"
		" AND expunged = 0",
		&st, err) == -1)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (trained < 0)
		sqlite3_bind_null(st, 2);
	else
		sqlite3_bind_int64(st, 2, trained != 0);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "set trained");
		goto fail;
	}
	if (sqlite3_changes(t.db) == 0) {
		store_errf(err, STORE_ENOMSG, "no such message");
		goto fail;
	}
	sqlite3_finalize(st);
	return store_txn_commit(&t, err);
fail:
	sqlite3_finalize(st);
	store_txn_abort(&t);
	return -1;
}

/* ---- files in new/ and orphans ---- */

/* Index a file that is already at its final path cur/<id>:2, (verifydata
 * -fix of an orphan): keeps the id. */
int
store_msg_reindex_txn(struct store_txn *t, int64_t mbid, int64_t id,
    const char *path, struct store_err *err)
{
	struct stat sb;
	struct row_in r;
	int64_t nid, modseq;
	uint32_t uid;

	if (stat(path, &sb) == -1) {
		store_errf(err, STORE_EINTERNAL, "stat %s", path);
		return -1;
	}
	if (uid_take(t, mbid, 1, &uid, NULL, NULL, err) == -1 ||
	    store_txn_modseq(t, &modseq, err) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	r.id = id;
	r.mbid = mbid;
	r.uid = uid;
	r.modseq = modseq;
	r.received = (int64_t)sb.st_mtime * 1000000000;
	r.size = (int64_t)sb.st_size;
	if (row_insert(t, &r, &nid, err) == -1 ||
	    store_counts_apply(t, mbid, 0, r.size, 1, err) == -1 ||
	    store_disk_add(t, r.size, err) == -1)
		return -1;
	change_add_uid(t, mbid, uid, modseq, 0, "");
	return store_counts_changed(t, mbid, err);
}

/* Maildir info flags after ":2," (standard letters). */
static uint32_t
maildir_flags(const char *name)
{
	const char *p = strstr(name, ":2,");
	uint32_t f = 0;

	if (p == NULL)
		return 0;
	for (p += 3; *p != '\0'; p++)
		switch (*p) {
		case 'S': f |= STORE_F_SEEN; break;
		case 'R': f |= STORE_F_ANSWERED; break;
		case 'F': f |= STORE_F_FLAGGED; break;
		case 'T': f |= STORE_F_DELETED; break;
		case 'D': f |= STORE_F_DRAFT; break;
		default: break;
		}
	return f;
}

/* Copy the open file fd to a temp file converting bare LF to CRLF
 * (spec/store.md 1: stored messages use CRLF). *bad_out is set when the
 * file itself is the problem (unreadable, too large). */
static int
crlf_copy(struct store_account *a, int fd, struct buf *tmp, bool *bad_out,
    struct store_err *err)
{
	struct buf conv;
	char block[65536];
	char prev = '\0';
	int rc = -1;

	buf_init(&conv, SCAN_MSG_MAX);
	for (;;) {
		ssize_t r = read(fd, block, sizeof(block));

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			store_errf(err, STORE_EINVAL, "read: %s",
			    log_strerror(errno));
			*bad_out = true;
			goto out;
		}
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (block[i] == '\n' && prev != '\r')
				buf_addc(&conv, '\r');
			buf_addc(&conv, block[i]);
			prev = block[i];
		}
		if (buf_failed(&conv)) {
			store_errf(err, STORE_EINVAL, "message too large");
			*bad_out = true;
			goto out;
		}
	}
	rc = tmp_write(a, conv.data, conv.len, true, tmp, err);
out:
	buf_release(&conv);
	return rc;
}

/* Move a file of new/ that cannot be indexed to
 * <datadir>/moved/accounts/<name>/new/<mailbox>/, so it neither blocks
 * the mailbox nor is retried on every scan. */
static void
scan_move_away(struct store_account *a, int64_t mbid, const char *path,
    const char *name, const char *why)
{
	struct log_ctx lc = log_ctx_init("store", 0);
	struct buf dst;
	bool moved = false;

	buf_init(&dst, STORE_PATH_MAX);
	buf_addf(&dst, "%s/moved/accounts/%s/new/%lld", a->store->datadir,
	    a->name, (long long)mbid);
	if (!buf_failed(&dst) && io_mkdir_p(dst.data, 0750) == 0) {
		buf_addf(&dst, "/%s", name);
		moved = !buf_failed(&dst) && rename(path, dst.data) == 0;
	}
	log_error(&lc, "file in new/ not indexed", LF_STR("account", a->name),
	    LF_STR("file", path), LF_STR("reason", why),
	    LF_STR("movedto", moved ? dst.data : ""));
	buf_release(&dst);
}

static int
scan_one(struct store_txn *t, int64_t mbid, const char *dir,
    const char *name, struct buf *unlink_list, struct store_err *err)
{
	struct store_add in;
	struct buf src, tmp;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	bool bad = false;
	int fd = -1, rc = -1, r;

	buf_init(&src, STORE_PATH_MAX);
	buf_init(&tmp, STORE_PATH_MAX);
	buf_addf(&src, "%s/%s", dir, name);
	/* Already indexed before a crash removed it from new/? */
	if (store_prepare(t->db,
		"SELECT 1 FROM message WHERE mailbox_id = ?1"
		" AND maildir_name = ?2",
		&st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, mbid);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		buf_addf(unlink_list, "%s%c", src.data, '\0');
		rc = 0;
		goto out;
	}
	/* One descriptor for the checks and the read: no symlinks, and a
	 * FIFO or device opens without blocking and is refused. */
	fd = open(src.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT) { /* taken away meanwhile */
			rc = 0;
			goto out;
		}
		store_errf(err, STORE_EINVAL, "open: %s", log_strerror(errno));
		bad = true;
		goto out;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		store_errf(err, STORE_EINVAL, "not a regular file");
		bad = true;
		goto out;
	}
	if (sb.st_size > (off_t)(SCAN_MSG_MAX / 2)) {
		store_errf(err, STORE_EINVAL, "message too large");
		bad = true;
		goto out;
	}
	if (crlf_copy(t->a, fd, &tmp, &bad, err) == -1)
		goto out;
	memset(&in, 0, sizeof(in));
	in.path = tmp.data;
	in.flags = maildir_flags(name);
	in.received_ns = (int64_t)sb.st_mtime * 1000000000;
	if (stat(tmp.data, &sb) == -1) {
		store_errf(err, STORE_EINTERNAL, "stat temp file");
		goto out;
	}
	if (add_one(t, &in, NULL, mbid, tmp.data, (int64_t)sb.st_size, "",
		name, 0, 0, NULL, NULL, err) == -1)
		goto out;
	buf_addf(unlink_list, "%s%c", src.data, '\0');
	rc = 0;
out:
	if (bad) {
		scan_move_away(t->a, mbid, src.data, name, err->text);
		rc = 0;
	}
	if (fd != -1)
		(void)close(fd);
	if (tmp.len > 0)
		(void)unlink(tmp.data);
	sqlite3_finalize(st);
	buf_release(&src);
	buf_release(&tmp);
	return rc;
}

int
store_scan_new(struct store_account *a, int64_t mailbox_id, size_t *n_out,
    struct store_err *err)
{
	struct store_txn t;
	struct buf dir, gone;
	DIR *d = NULL;
	struct dirent *de;
	size_t count = 0;
	bool in_txn = false;
	int rc = -1;

	buf_init(&dir, STORE_PATH_MAX);
	buf_init(&gone, BUF_NOMAX);
	store_mb_dir(a, mailbox_id, "new", &dir);
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	d = opendir(dir.data);
	if (d == NULL) {
		store_errf(err, STORE_EINTERNAL, "open %s: %s", dir.data,
		    log_strerror(errno));
		goto out;
	}
	while (count < SCAN_NEW_MAX && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (scan_one(&t, mailbox_id, dir.data, de->d_name, &gone,
			err) == -1)
			goto out;
		count++;
	}
	if (count > 0 && fsync_cur(a, mailbox_id, err) == -1)
		goto out;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	/* The rows record each name, so a crash before these unlinks
	 * cannot index a file twice. */
	for (size_t off = 0; off < gone.len; off += strlen(gone.data + off) + 1)
		(void)unlink(gone.data + off);
	if (gone.len > 0)
		(void)io_fsync_dir(dir.data);
	if (n_out != NULL)
		*n_out = count;
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	if (in_txn)
		store_txn_abort(&t);
	buf_release(&dir);
	buf_release(&gone);
	return rc;
}

/* ---- inotify watch ---- */

struct store_watch {
	struct store_account *a;
	pthread_t thread;
	int ifd;
	int stop[2];             /* pipe: write to stop the thread */
	int64_t *wd_mb;          /* watch descriptor -> mailbox id */
	size_t nwd;
	struct log_ctx log;
};

static void
watch_sync(struct store_watch *w)
{
	struct store_mailbox *mbs = NULL;
	size_t n = 0;
	struct store_err err;
	struct buf p;

	if (store_mailbox_list(w->a, &mbs, &n, &err) == -1)
		return;
	buf_init(&p, STORE_PATH_MAX);
	for (size_t i = 0; i < n; i++) {
		int wd;

		store_mb_dir(w->a, mbs[i].id, "new", &p);
		wd = inotify_add_watch(w->ifd, p.data,
		    IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
		if (wd < 0)
			continue;
		if ((size_t)wd >= w->nwd) {
			size_t nn = (size_t)wd + 16;

			w->wd_mb = xreallocarray(w->wd_mb, nn,
			    sizeof(*w->wd_mb));
			for (size_t k = w->nwd; k < nn; k++)
				w->wd_mb[k] = 0;
			w->nwd = nn;
		}
		if (w->wd_mb[wd] == 0) {
			size_t cnt = 0;

			w->wd_mb[wd] = mbs[i].id;
			if (store_scan_new(w->a, mbs[i].id, &cnt, &err) == -1)
				log_error(&w->log, "indexing new/ failed",
				    LF_ERR(err.text));
		}
	}
	buf_release(&p);
	store_mailbox_list_free(mbs, n);
}

static void *
watch_main(void *arg)
{
	struct store_watch *w = arg;
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	watch_sync(w);
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = w->ifd, .events = POLLIN },
			{ .fd = w->stop[0], .events = POLLIN },
		};
		int r = poll(pfd, 2, 1000);
		ssize_t len;

		if (r == -1 && errno != EINTR)
			break;
		if (pfd[1].revents != 0)
			break;
		if (r <= 0 || (pfd[0].revents & POLLIN) == 0) {
			watch_sync(w); /* pick up new mailboxes */
			continue;
		}
		len = read(w->ifd, ev, sizeof(ev));
		if (len <= 0)
			continue;
		for (ssize_t off = 0; off < len;) {
			const struct inotify_event *e =
			    (const struct inotify_event *)(ev + off);
			struct store_err err;

			if (e->wd >= 0 && (size_t)e->wd < w->nwd &&
			    w->wd_mb[e->wd] != 0 &&
			    (e->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) &&
			    store_scan_new(w->a, w->wd_mb[e->wd], NULL, &err) ==
				-1)
				log_error(&w->log, "indexing new/ failed",
				    LF_ERR(err.text));
			if (e->mask & IN_IGNORED && e->wd >= 0 &&
			    (size_t)e->wd < w->nwd)
				w->wd_mb[e->wd] = 0;
			off += (ssize_t)(sizeof(*e) + e->len);
		}
	}
	return NULL;
}

struct store_watch *
store_watch_new(struct store_account *a, struct store_err *err)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));

	w->a = a;
	w->log = log_ctx_init("store", 0);
	w->stop[0] = w->stop[1] = -1;
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd == -1 || pipe2(w->stop, O_CLOEXEC) == -1) {
		store_errf(err, STORE_EINTERNAL, "inotify: %s",
		    log_strerror(errno));
		goto fail;
	}
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		store_errf(err, STORE_EINTERNAL, "thread create failed");
		goto fail;
	}
	return w;
fail:
	if (w->ifd != -1)
		(void)close(w->ifd);
	if (w->stop[0] != -1) {
		(void)close(w->stop[0]);
		(void)close(w->stop[1]);
	}
	free(w);
	return NULL;
}

void
store_watch_free(struct store_watch *w)
{
	if (w == NULL)
		return;
	(void)io_write_all(w->stop[1], "x", 1);
	pthread_join(w->thread, NULL);
	(void)close(w->ifd);
	(void)close(w->stop[0]);
	(void)close(w->stop[1]);
	free(w->wd_mb);
	free(w);
}
