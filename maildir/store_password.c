/*
 * store_password.c: derived password secrets of an account (spec/store.md
 * 10): bcrypt for PLAIN/LOGIN, HMAC-MD5 chaining values for CRAM-MD5
 * (RFC 2195, RFC 2104), and for SCRAM-SHA-1/-256 the salt, iteration count,
 * StoredKey and ServerKey (RFC 5802 3, RFC 7677). The clear password is
 * never stored or logged and is wiped after use by its owner (the caller);
 * intermediate secrets are wiped here.
 *
 * Trust: passwords come from users and administrators. Threads: any but
 * the reactor (bcrypt and PBKDF2 take tens of milliseconds).
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/blowfish.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <string.h>

#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "store_int.h"
#include "lib/banned.h"

#define BCRYPT_COST 10 /* Go's bcrypt.DefaultCost, as mox uses */

static void
md5_state_out(const struct md5_ctx *c, uint8_t out[16])
{
	for (int i = 0; i < 4; i++) {
		out[i * 4] = (uint8_t)c->state[i];
		out[i * 4 + 1] = (uint8_t)(c->state[i] >> 8);
		out[i * 4 + 2] = (uint8_t)(c->state[i] >> 16);
		out[i * 4 + 3] = (uint8_t)(c->state[i] >> 24);
	}
}

static void
md5_state_in(struct md5_ctx *c, const uint8_t in[16])
{
	md5_init(c);
	for (int i = 0; i < 4; i++)
		c->state[i] = (uint32_t)in[i * 4] |
		    (uint32_t)in[i * 4 + 1] << 8 |
		    (uint32_t)in[i * 4 + 2] << 16 |
		    (uint32_t)in[i * 4 + 3] << 24;
	c->count = 1; /* one 64-byte block absorbed */
	c->index = 0;
}

/* RFC 2104 2: K XOR ipad and K XOR opad, K hashed first if > 64 bytes. */
static void
crammd5_derive(const char *pw, size_t len, struct store_crammd5 *out)
{
	uint8_t key[MD5_BLOCK_SIZE], block[MD5_BLOCK_SIZE];
	struct md5_ctx c;

	memset(key, 0, sizeof(key));
	if (len > MD5_BLOCK_SIZE) {
		md5_init(&c);
		md5_update(&c, len, (const uint8_t *)pw);
		md5_digest(&c, MD5_DIGEST_SIZE, key);
	} else
		memcpy(key, pw, len);
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = key[i] ^ 0x36;
	md5_init(&c);
	md5_update(&c, sizeof(block), block);
	md5_state_out(&c, out->ipad);
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = key[i] ^ 0x5c;
	md5_init(&c);
	md5_update(&c, sizeof(block), block);
	md5_state_out(&c, out->opad);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(block, sizeof(block));
	explicit_bzero(&c, sizeof(c));
}

void
store_crammd5_digest(const struct store_crammd5 *c, const void *msg,
    size_t len, uint8_t out[16])
{
	struct md5_ctx m;
	uint8_t inner[MD5_DIGEST_SIZE];

	md5_state_in(&m, c->ipad);
	md5_update(&m, len, msg);
	md5_digest(&m, sizeof(inner), inner);
	md5_state_in(&m, c->opad);
	md5_update(&m, sizeof(inner), inner);
	md5_digest(&m, MD5_DIGEST_SIZE, out);
	explicit_bzero(&m, sizeof(m));
	explicit_bzero(inner, sizeof(inner));
}

/* RFC 5802 3: SaltedPassword = Hi(password, salt, i); ClientKey =
 * HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey); ServerKey
 * = HMAC(SaltedPassword, "Server Key"). */
static void
scram_derive(enum store_scram_hash h, const char *pw, size_t len,
    struct store_scram *s)
{
	uint8_t salted[SHA256_DIGEST_SIZE], ck[SHA256_DIGEST_SIZE];

	if (h == STORE_SCRAM_SHA1) {
		struct hmac_sha1_ctx hc;
		struct sha1_ctx sc;

		s->key_len = SHA1_DIGEST_SIZE;
		pbkdf2_hmac_sha1(len, (const uint8_t *)pw, s->iterations,
		    sizeof(s->salt), s->salt, SHA1_DIGEST_SIZE, salted);
		hmac_sha1_set_key(&hc, SHA1_DIGEST_SIZE, salted);
		hmac_sha1_update(&hc, 10, (const uint8_t *)"Client Key");
		hmac_sha1_digest(&hc, SHA1_DIGEST_SIZE, ck);
		sha1_init(&sc);
		sha1_update(&sc, SHA1_DIGEST_SIZE, ck);
		sha1_digest(&sc, SHA1_DIGEST_SIZE, s->stored_key);
		hmac_sha1_set_key(&hc, SHA1_DIGEST_SIZE, salted);
		hmac_sha1_update(&hc, 10, (const uint8_t *)"Server Key");
		hmac_sha1_digest(&hc, SHA1_DIGEST_SIZE, s->server_key);
		explicit_bzero(&hc, sizeof(hc));
		explicit_bzero(&sc, sizeof(sc));
	} else {
		struct hmac_sha256_ctx hc;
		struct sha256_ctx sc;

		s->key_len = SHA256_DIGEST_SIZE;
		pbkdf2_hmac_sha256(len, (const uint8_t *)pw, s->iterations,
		    sizeof(s->salt), s->salt, SHA256_DIGEST_SIZE, salted);
		hmac_sha256_set_key(&hc, SHA256_DIGEST_SIZE, salted);
		hmac_sha256_update(&hc, 10, (const uint8_t *)"Client Key");
		hmac_sha256_digest(&hc, SHA256_DIGEST_SIZE, ck);
		sha256_init(&sc);
		sha256_update(&sc, SHA256_DIGEST_SIZE, ck);
		sha256_digest(&sc, SHA256_DIGEST_SIZE, s->stored_key);
		hmac_sha256_set_key(&hc, SHA256_DIGEST_SIZE, salted);
		hmac_sha256_update(&hc, 10, (const uint8_t *)"Server Key");
		hmac_sha256_digest(&hc, SHA256_DIGEST_SIZE, s->server_key);
		explicit_bzero(&hc, sizeof(hc));
		explicit_bzero(&sc, sizeof(sc));
	}
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(ck, sizeof(ck));
}

static void pwcache_drop(struct store *s, const char *account);

int
store_password_set(struct store_account *a, const char *password,
    struct store_err *err)
{
	uint8_t bsalt[BLOWFISH_BCRYPT_BINSALT_SIZE];
	uint8_t hash[BLOWFISH_BCRYPT_HASH_SIZE];
	struct store_crammd5 cm;
	struct store_scram s1, s256;
	struct store_txn t;
	sqlite3_stmt *st = NULL;
	size_t len = password != NULL ? strlen(password) : 0;
	bool in_txn = false;
	int rc = -1;

	memset(&s1, 0, sizeof(s1));
	memset(&s256, 0, sizeof(s256));
	memset(hash, 0, sizeof(hash));
	/* spec/store.md 10: at least 8 octets. PRECIS OpaqueString
	 * (RFC 8265) normalisation is the caller's. */
	if (len < STORE_PASSWORD_MIN || !utf8_valid(password, len)) {
		store_errf(err, STORE_EINVAL,
		    "password must be at least %d octets of UTF-8",
		    STORE_PASSWORD_MIN);
		return -1;
	}
	/* bcrypt (PLAIN, LOGIN) reads only the first 72 octets; refuse
	 * longer passwords like mox instead of checking part of them. */
	if (len > STORE_PASSWORD_MAX) {
		store_errf(err, STORE_EINVAL,
		    "password longer than %d octets (bcrypt limit)",
		    STORE_PASSWORD_MAX);
		return -1;
	}
	if (gnutls_rnd(GNUTLS_RND_RANDOM, bsalt, sizeof(bsalt)) != 0 ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, s1.salt, sizeof(s1.salt)) != 0 ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, s256.salt, sizeof(s256.salt)) != 0) {
		store_errf(err, STORE_EINTERNAL, "no random bytes");
		return -1;
	}
	if (blowfish_bcrypt_hash(hash, len, (const uint8_t *)password, 2,
		(const uint8_t *)"2b", BCRYPT_COST, bsalt) != 1) {
		store_errf(err, STORE_EINTERNAL, "bcrypt failed");
		goto out;
	}
	crammd5_derive(password, len, &cm);
	s1.iterations = STORE_SCRAM_SHA1_ITER;
	s256.iterations = STORE_SCRAM_SHA256_ITER;
	scram_derive(STORE_SCRAM_SHA1, password, len, &s1);
	scram_derive(STORE_SCRAM_SHA256, password, len, &s256);
	if (store_txn_begin(a, &t, err) == -1)
		goto out;
	in_txn = true;
	if (store_prepare(t.db,
		"INSERT OR REPLACE INTO password(id, bcrypt, crammd5_ipad,"
		" crammd5_opad, scram_sha1_salt, scram_sha1_iter,"
		" scram_sha1_stored, scram_sha1_server, scram_sha256_salt,"
		" scram_sha256_iter, scram_sha256_stored, scram_sha256_server)"
		" VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
		&st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, (const char *)hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, cm.ipad, 16, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, cm.opad, 16, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 4, s1.salt, sizeof(s1.salt), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, s1.iterations);
	sqlite3_bind_blob(st, 6, s1.stored_key, (int)s1.key_len,
	    SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 7, s1.server_key, (int)s1.key_len,
	    SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 8, s256.salt, sizeof(s256.salt),
	    SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 9, s256.iterations);
	sqlite3_bind_blob(st, 10, s256.stored_key, (int)s256.key_len,
	    SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 11, s256.server_key, (int)s256.key_len,
	    SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_err_db(err, t.db, "store password");
		goto out;
	}
	/* spec/store.md 10 step 3: a new password ends all web sessions. */
	if (store_exec(t.db, "DELETE FROM login_session", err) == -1)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	in_txn = false;
	if (store_txn_commit(&t, err) == -1)
		goto out;
	pwcache_drop(a->store, a->name);
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_txn)
		store_txn_abort(&t);
	explicit_bzero(hash, sizeof(hash));
	explicit_bzero(&cm, sizeof(cm));
	explicit_bzero(&s1, sizeof(s1));
	explicit_bzero(&s256, sizeof(s256));
	return rc;
}

/* Read the password row; column values through the callback's stmt. */
static int
pw_row(struct store_account *a, const char *sql, sqlite3 **db_out,
    sqlite3_stmt **st_out, struct store_err *err)
{
	sqlite3 *db = store_db_get(a, err);
	int r;

	*st_out = NULL;
	*db_out = db;
	if (db == NULL)
		return -1;
	if (store_prepare(db, sql, st_out, err) == -1)
		return -1;
	r = sqlite3_step(*st_out);
	if (r == SQLITE_DONE) {
		store_errf(err, STORE_ENOPASSWORD, "no password set");
		return -1;
	}
	if (r != SQLITE_ROW) {
		store_err_db(err, db, "read password");
		return -1;
	}
	for (int i = 0; i < sqlite3_column_count(*st_out); i++)
		if (sqlite3_column_type(*st_out, i) == SQLITE_NULL) {
			store_errf(err, STORE_ENOPASSWORD,
			    "no secret for this mechanism");
			return -1;
		}
	return 0;
}

/* ---- cache of successful PLAIN/LOGIN checks ----
 * bcrypt (cost 10) takes tens of milliseconds; a client that logs in
 * again with the same password within STORE_PWCACHE_SEC is answered from
 * here, as mox does. An entry holds HMAC-SHA256(pwkey, account NUL
 * stored-bcrypt NUL password): never the password, and useless without
 * the per-process random key. The stored hash is part of the MAC, so a
 * password changed by any process (new salt) misses; store_password_set()
 * also drops the account's entries. */

void
store_pwcache_init(struct store *s)
{
	lock_init(&s->pwlock, LOCK_ORDER_CHANGES, "store.pwcache");
	lock_cond_init(&s->pwcond);
	if (gnutls_rnd(GNUTLS_RND_KEY, s->pwkey, sizeof(s->pwkey)) != 0)
		return; /* no key, no cache */
	s->pwcache = xcalloc(STORE_PWCACHE_MAX, sizeof(*s->pwcache));
}

void
store_pwcache_release(struct store *s)
{
	if (s->pwcache != NULL) {
		for (size_t i = 0; i < STORE_PWCACHE_MAX; i++)
			free(s->pwcache[i].account);
		explicit_bzero(s->pwcache,
		    STORE_PWCACHE_MAX * sizeof(*s->pwcache));
		free(s->pwcache);
		s->pwcache = NULL;
	}
	explicit_bzero(s->pwkey, sizeof(s->pwkey));
	pthread_cond_destroy(&s->pwcond);
	lock_destroy(&s->pwlock);
}

static void
pwcache_mac(const struct store *s, const char *account, const uint8_t *hash,
    size_t hash_len, const char *password, uint8_t mac[32])
{
	struct hmac_sha256_ctx c;

	hmac_sha256_set_key(&c, sizeof(s->pwkey), s->pwkey);
	hmac_sha256_update(&c, strlen(account) + 1, (const uint8_t *)account);
	hmac_sha256_update(&c, hash_len, hash);
	hmac_sha256_update(&c, 1, (const uint8_t *)"");
	hmac_sha256_update(&c, strlen(password), (const uint8_t *)password);
	hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, mac);
	explicit_bzero(&c, sizeof(c));
}

static struct store_pwcache *
pwcache_find(struct store *s, const char *account, const uint8_t mac[32],
    bool pending)
{
	LOCK_ASSERT_HELD(&s->pwlock);
	for (size_t i = 0; i < STORE_PWCACHE_MAX; i++) {
		struct store_pwcache *e = &s->pwcache[i];

		if (e->account != NULL && e->pending == pending &&
		    memeql_sec(e->mac, mac, 32) &&
		    strcmp(e->account, account) == 0)
			return e;
	}
	return NULL;
}

/* An expired, free or the oldest settled slot, or NULL if all are
 * pending. */
static struct store_pwcache *
pwcache_slot(struct store *s, int64_t now)
{
	struct store_pwcache *v = NULL;

	LOCK_ASSERT_HELD(&s->pwlock);
	for (size_t i = 0; i < STORE_PWCACHE_MAX; i++) {
		struct store_pwcache *e = &s->pwcache[i];

		if (e->account == NULL)
			return e;
		if (e->pending)
			continue;
		if (now - e->at_ns > (int64_t)STORE_PWCACHE_SEC * NS_PER_SEC)
			return e;
		if (v == NULL || e->at_ns < v->at_ns)
			v = e;
	}
	return v;
}

/* Look up account+mac. Returns 1 for a fresh remembered success. Else
 * returns 0 and, when *claimed_out is set, a pending slot now stands for
 * the caller's check (finish it with pwcache_settle()). Concurrent checks
 * of the same password wait for the first one instead of each running
 * bcrypt. */
static int
pwcache_begin(struct store *s, const char *account, const uint8_t mac[32],
    bool *claimed_out)
{
	struct store_pwcache *e;
	int64_t now;
	int rc = 0;

	*claimed_out = false;
	if (s->pwcache == NULL)
		return 0;
	lock_take(&s->pwlock);
	while (pwcache_find(s, account, mac, true) != NULL)
		lock_wait(&s->pwlock, &s->pwcond);
	now = time_mono_ns();
	e = pwcache_find(s, account, mac, false);
	if (e != NULL &&
	    now - e->at_ns <= (int64_t)STORE_PWCACHE_SEC * NS_PER_SEC) {
		rc = 1;
		goto out;
	}
	if (e == NULL)
		e = pwcache_slot(s, now);
	if (e != NULL) {
		free(e->account);
		e->account = xstrdup(account);
		memcpy(e->mac, mac, 32);
		e->at_ns = now;
		e->pending = true;
		*claimed_out = true;
	}
out:
	lock_release(&s->pwlock);
	return rc;
}

/* End the caller's pending check: remembered on success, dropped else. */
static void
pwcache_settle(struct store *s, const char *account, const uint8_t mac[32],
    bool ok)
{
	struct store_pwcache *e;

	lock_take(&s->pwlock);
	e = pwcache_find(s, account, mac, true);
	if (e != NULL) {
		e->pending = false;
		e->at_ns = time_mono_ns();
		if (!ok) {
			free(e->account);
			memset(e, 0, sizeof(*e));
		}
	}
	pthread_cond_broadcast(&s->pwcond);
	lock_release(&s->pwlock);
}

/* Forget every entry of account (its password changed). */
static void
pwcache_drop(struct store *s, const char *account)
{
	if (s->pwcache == NULL)
		return;
	lock_take(&s->pwlock);
	for (size_t i = 0; i < STORE_PWCACHE_MAX; i++) {
		struct store_pwcache *e = &s->pwcache[i];

		/* A pending check settles into a dropped slot. */
		if (e->account != NULL && !e->pending &&
		    strcmp(e->account, account) == 0) {
			free(e->account);
			memset(e, 0, sizeof(*e));
		}
	}
	lock_release(&s->pwlock);
}

int
store_password_check(struct store_account *a, const char *password,
    struct store_err *err)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	uint8_t mac[32];
	bool claimed = false;
	int rc = -1;

	if (pw_row(a, "SELECT bcrypt FROM password WHERE id = 1", &db, &st,
		err) == -1)
		goto out;
	/* No stored password is longer than STORE_PASSWORD_MAX, and bcrypt
	 * would compare only a prefix of a longer one. */
	if (password == NULL || strlen(password) > STORE_PASSWORD_MAX) {
		store_errf(err, STORE_EBADPASSWORD, "bad password");
		goto out;
	}
	pwcache_mac(a->store, a->name, sqlite3_column_text(st, 0),
	    (size_t)sqlite3_column_bytes(st, 0), password, mac);
	if (pwcache_begin(a->store, a->name, mac, &claimed) == 1) {
		rc = 0;
		goto out;
	}
	if (blowfish_bcrypt_verify(strlen(password),
		(const uint8_t *)password, (size_t)sqlite3_column_bytes(st, 0),
		sqlite3_column_text(st, 0)) != 1) {
		store_errf(err, STORE_EBADPASSWORD, "bad password");
		goto out;
	}
	rc = 0;
out:
	if (claimed)
		pwcache_settle(a->store, a->name, mac, rc == 0);
	explicit_bzero(mac, sizeof(mac));
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

int
store_password_crammd5(struct store_account *a, struct store_crammd5 *out,
    struct store_err *err)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int rc = -1;

	if (pw_row(a,
		"SELECT crammd5_ipad, crammd5_opad FROM password WHERE id = 1",
		&db, &st, err) == -1)
		goto out;
	if (sqlite3_column_bytes(st, 0) != 16 ||
	    sqlite3_column_bytes(st, 1) != 16) {
		store_errf(err, STORE_ENOPASSWORD, "bad CRAM-MD5 secret");
		goto out;
	}
	memcpy(out->ipad, sqlite3_column_blob(st, 0), 16);
	memcpy(out->opad, sqlite3_column_blob(st, 1), 16);
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}

int
store_password_scram(struct store_account *a, enum store_scram_hash h,
    struct store_scram *out, struct store_err *err)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t klen = h == STORE_SCRAM_SHA1 ? SHA1_DIGEST_SIZE :
					      SHA256_DIGEST_SIZE;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (pw_row(a,
		h == STORE_SCRAM_SHA1 ?
		    "SELECT scram_sha1_salt, scram_sha1_iter,"
		    " scram_sha1_stored, scram_sha1_server FROM password"
		    " WHERE id = 1" :
		    "SELECT scram_sha256_salt, scram_sha256_iter,"
		    " scram_sha256_stored, scram_sha256_server FROM password"
		    " WHERE id = 1",
		&db, &st, err) == -1)
		goto out;
	if (sqlite3_column_bytes(st, 0) != STORE_SCRAM_SALT_LEN ||
	    (size_t)sqlite3_column_bytes(st, 2) != klen ||
	    (size_t)sqlite3_column_bytes(st, 3) != klen ||
	    sqlite3_column_int64(st, 1) <= 0 ||
	    sqlite3_column_int64(st, 1) > UINT32_MAX) {
		store_errf(err, STORE_ENOPASSWORD, "bad SCRAM secret");
		goto out;
	}
	memcpy(out->salt, sqlite3_column_blob(st, 0), STORE_SCRAM_SALT_LEN);
	out->iterations = (uint32_t)sqlite3_column_int64(st, 1);
	memcpy(out->stored_key, sqlite3_column_blob(st, 2), klen);
	memcpy(out->server_key, sqlite3_column_blob(st, 3), klen);
	out->key_len = klen;
	rc = 0;
out:
	sqlite3_finalize(st);
	store_db_put(a, db);
	return rc;
}
