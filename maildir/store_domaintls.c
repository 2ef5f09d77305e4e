/*
 * store_domaintls.c: the TLS capabilities last seen at a recipient domain's
 * mail servers, per sender account (spec/store.md RecipientDomainTLS,
 * spec/queue.md 5.5). The queue records them after each successful
 * connection; the account's compose page shows them as security indicators.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "store.h"
#include "store_int.h"
#include "lib/banned.h"

/* An unchanged record is rewritten at most this often, so a busy
 * destination costs one write transaction a day, not one per message. */
#define DOMAIN_TLS_REFRESH_NS (24 * 3600 * INT64_C(1000000000))

static void
domain_key(const char *domain, struct buf *out)
{
	size_t n = strlen(domain);

	/* Trailing dot of a fully qualified name is not part of the key. */
	if (n > 0 && domain[n - 1] == '.')
		n--;
	for (size_t i = 0; i < n; i++) {
		char c = domain[i];

		buf_addc(out, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
	}
}

static int
lookup(sqlite3 *db, const char *key, struct store_domain_tls *out,
    bool *found, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*found = false;
	if (store_prepare(db,
		"SELECT updated, starttls, requiretls FROM recipient_domain_tls"
		" WHERE domain = ?1",
		&st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found = true;
		out->updated_ns = sqlite3_column_int64(st, 0);
		out->starttls = sqlite3_column_int(st, 1) != 0;
		out->requiretls = sqlite3_column_int(st, 2) != 0;
	} else if (rc != SQLITE_DONE) {
		store_err_db(err, db, "reading recipient domain tls");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

int
store_domain_tls_get(struct store_account *a, const char *domain,
    struct store_domain_tls *out, bool *found, struct store_err *err)
{
	struct buf key;
	sqlite3 *db;
	int rc;

	memset(out, 0, sizeof(*out));
	*found = false;
	db = store_db_get(a, err);
	if (db == NULL)
		return -1;
	buf_init(&key, 256);
	domain_key(domain, &key);
	rc = lookup(db, key.data, out, found, err);
	buf_release(&key);
	store_db_put(a, db);
	return rc;
}

int
store_domain_tls_set(struct store_account *a, const char *domain,
    bool starttls, bool requiretls, int64_t now_ns, struct store_err *err)
{
	struct store_domain_tls cur;
	struct store_txn t;
	struct buf key;
	sqlite3_stmt *st = NULL;
	bool found;
	int rc = -1;

	buf_init(&key, 256);
	domain_key(domain, &key);
	if (key.len == 0 || buf_failed(&key)) {
		store_errf(err, STORE_EINVAL, "invalid recipient domain");
		buf_release(&key);
		return -1;
	}
	/* Cheap check on a read connection first: most deliveries find the
	 * record as it was. */
	if (store_domain_tls_get(a, key.data, &cur, &found, err) == -1)
		goto out;
	if (found && cur.starttls == starttls &&
	    cur.requiretls == requiretls &&
	    now_ns - cur.updated_ns < DOMAIN_TLS_REFRESH_NS &&
	    now_ns >= cur.updated_ns) {
		rc = 0;
		goto out;
	}
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	if (store_prepare(t.db,
		"INSERT INTO recipient_domain_tls"
		" (domain, updated, starttls, requiretls) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT(domain) DO UPDATE SET updated = excluded.updated,"
		" starttls = excluded.starttls, requiretls = excluded.requiretls",
		&st, err) == -1) {
		store_txn_abort(&t);
		goto out;
	}
	sqlite3_bind_text(st, 1, key.data, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ns);
	sqlite3_bind_int(st, 3, starttls ? 1 : 0);
	sqlite3_bind_int(st, 4, requiretls ? 1 : 0);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "writing recipient domain tls");
		sqlite3_finalize(st);
		store_txn_abort(&t);
		goto out;
	}
	sqlite3_finalize(st);
	if (store_txn_commit(&t, err) == -1)
		goto out;
	rc = 0;
out:
	buf_release(&key);
	return rc;
}
