/*
 * store_int.h: what the store_*.c files share privately: the account
 * structure, its connections and write lock, transactions, modseq, counts
 * and change collection.
 */
#ifndef MAILDIR_STORE_INT_H
#define MAILDIR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "lib/buf.h"
#include "lib/lock.h"
#include "store.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_BUSY_MS 30000 /* spec/store.md 2.2: busy timeout >= 5 s */
#define STORE_POOL_MAX 16   /* idle read connections kept per account */
#define STORE_PATH_MAX 4096
#define STORE_BATCH_MAX 256 /* deliveries in one group commit */
#define STORE_RSV_IDS 512   /* message ids reserved at a time for
			     * deliveries linked ahead of their commit */
#define STORE_HDR_SLOTS 4096    /* header cache of all accounts: direct
				 * mapped by account serial and message id */
#define STORE_HDR_CACHE_MAX 8192 /* larger header sections are not cached */
#define STORE_PWCACHE_MAX 256   /* remembered successful password checks */
#define STORE_PWCACHE_SEC 3600  /* how long one is remembered */
#define STORE_STMT_MAX 48       /* statements kept prepared on an
				 * account's write connection */

struct store {
	char *datadir;          /* absolute or as given; immutable */
	char *msgtmp;           /* where store_tmpfile() makes files:
				 * <datadir>/tmp/msg-XXXXXX or <datadir>/tmp;
				 * immutable */
	bool proc_fd;           /* /proc/self/fd works: unnamed temp
				 * files can be linked; immutable */
	bool readonly;          /* STORE_OPEN_READONLY; immutable */
	struct lock lock;       /* LOCK_ORDER_ACCOUNTS: guards accounts,
				 * scanned and the accounts' state and refs */
	pthread_cond_t cond;    /* with lock: an account finished opening */
	struct store_account *accounts; /* open accounts, linked */
	char **scanned;         /* accounts whose Maildir was scanned for
				 * ids (once per handle) */
	size_t nscanned;
	atomic_ulong tmpseq;    /* temp file names */
	atomic_ullong acctseq;  /* store_account.serial */
	struct lock hclock;     /* LOCK_ORDER_CHANGES, leaf: header cache */
	struct store_hdr_slot *hcache; /* STORE_HDR_SLOTS, allocated on use */
	struct lock pwlock;     /* LOCK_ORDER_CHANGES, leaf: pwcache */
	pthread_cond_t pwcond;  /* with pwlock: a pending check ended */
	struct store_pwcache *pwcache; /* STORE_PWCACHE_MAX entries */
	uint8_t pwkey[32];      /* random HMAC key of the pwcache */
};

/* A successful PLAIN/LOGIN check (store_password.c): the account and an
 * HMAC-SHA256 under store.pwkey of account, stored bcrypt hash and
 * password. Never the password itself. */
struct store_pwcache {
	char *account;          /* owned; NULL: free slot */
	uint8_t mac[32];
	int64_t at_ns;          /* monotonic time of the check */
	bool pending;           /* a bcrypt check for it is running: others
				 * with the same mac wait for its result */
};

/* One cached header section of a message file (the files are immutable
 * and ids never reused, so an entry never goes stale). */
struct store_hdr_slot {
	uint64_t acct;          /* store_account.serial */
	int64_t id;             /* 0: empty */
	char *data;             /* owned */
	size_t len;
};

/* Life of a registry entry (store->lock). */
enum store_acc_state {
	STORE_ACC_OPENING,      /* a thread is opening it; others wait */
	STORE_ACC_READY,
	STORE_ACC_FAILED,       /* unlinked; init_err says why */
};

struct store_deliv; /* a queued delivery (store_message.c) */

/* A statement kept prepared on a connection (store_stmt_get(),
 * store_db_stmt()). */
struct store_stmt {
	sqlite3_stmt *st;       /* its text (sqlite3_sql()) is the key */
	bool busy;              /* handed out and not yet put back */
};

/* The statements kept on one connection; used only by the thread that
 * holds the connection. */
struct store_stmts {
	struct store_stmt v[STORE_STMT_MAX];
	size_t n;
};

/* An open read connection of an account and its statements. */
struct store_rconn {
	sqlite3 *db;
	struct store_stmts stmts;   /* the holder's (store_db_get()) */
	struct store_rconn *next;   /* store_account.rconns; plock */
	bool idle;                  /* in the pool; plock */
};

struct store_account {
	struct store *store;
	char *name;
	char *dir;              /* <datadir>/accounts/<name> */
	int refs;               /* guarded by store->lock */
	struct store_account *next; /* guarded by store->lock */
	enum store_acc_state state; /* guarded by store->lock */
	struct store_err init_err;  /* STORE_ACC_FAILED: why */
	int64_t idle_since;     /* monotonic ns when refs dropped to 0 */

	struct lock wlock;      /* LOCK_ORDER_ACCOUNT: serialises writes */
	sqlite3 *wdb;           /* used only while wlock is held */
	struct store_stmts wstmts; /* of wdb; wlock */

	struct lock plock;      /* LOCK_ORDER_CHANGES, leaf: read pool */
	struct store_rconn *rconns; /* all open read connections */
	size_t nidle;           /* of them in the pool, at most
				 * STORE_POOL_MAX */

	struct lock hlock;      /* LOCK_ORDER_CHANGES, leaf: subscribers */
	struct store_sub *subs;

	struct lock qlock;      /* LOCK_ORDER_CHANGES, leaf: delivery queue */
	pthread_cond_t qcond;
	struct store_deliv *qhead, *qtail;
	bool staging;           /* a thread links a group ahead (qlock) */
	struct store_deliv *ready, *ready_tail; /* staged, to commit (qlock) */
	bool committing;        /* a thread commits a group (qlock) */
	int64_t rsv_next, rsv_end; /* message ids [next, end) reserved by a
				 * committed raise of the message sequence
				 * and not used yet (qlock) */
	uint64_t serial;        /* unique per opening: header cache key */
};

/* Changes collected during a write, broadcast after the commit. */
struct store_chg {
	struct store_change c;
	char *s1, *s2;          /* owned strings behind c pointers */
	uint32_t *uids;         /* owned */
	const void *origin;     /* subscriber that must not receive it */
};

struct store_txn {
	struct store_account *a;
	sqlite3 *db;
	struct store_chg *chg;
	size_t nchg, capchg;
	const void *origin;
	int64_t modseq;          /* assigned for this transaction, 0 before */
	size_t chg_floor;        /* changes below belong to earlier work of
				  * a group commit: never modified */
	char **unlink_after;     /* files removed after commit */
	size_t nunlink;
	struct store_undo *undo; /* file operations reverted on abort */
	size_t nundo, capundo;
};

/* A file operation to revert when the transaction does not commit: from
 * NULL means unlink(to), else rename(to, from). */
struct store_undo {
	char *from;
	char *to;
};

/* store_account.c */
void store_errf(struct store_err *err, enum store_code code, const char *fmt,
    ...) PRINTF_LIKE(3, 4);
void store_err_db(struct store_err *err, sqlite3 *db, const char *what);
sqlite3 *store_db_get(struct store_account *a, struct store_err *err);
void store_db_put(struct store_account *a, sqlite3 *db);
int store_exec(sqlite3 *db, const char *sql, struct store_err *err);
int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
    struct store_err *err);
/* A prepared statement for one SQL statement on t->db, reset and with no
 * bindings: on the account's write connection it comes from a cache
 * (STORE_STMT_MAX statements, kept until the account closes), so the text
 * is parsed once, not once per delivery. Give it back with
 * store_stmt_put() (which resets it, or finalizes one that was not
 * cached). Needs the transaction, so the write lock is held. */
int store_stmt_get(struct store_txn *t, const char *sql, sqlite3_stmt **st,
    struct store_err *err);
void store_stmt_put(struct store_txn *t, sqlite3_stmt *st);
/* Run one SQL statement without result rows through the cache. */
int store_stmt_exec(struct store_txn *t, const char *sql,
    struct store_err *err);
/* Finalize the cached statements of the write connection (before it is
 * closed). */
void store_stmts_clear(struct store_account *a);
/* As store_stmt_get()/store_stmt_put() for a read connection from
 * store_db_get() (db), held by the calling thread; sql of one statement.
 * A db not from the pool gets a statement of its own (finalized by the
 * put). */
int store_db_stmt(struct store_account *a, sqlite3 *db, const char *sql,
    sqlite3_stmt **st, struct store_err *err);
void store_db_stmt_put(struct store_account *a, sqlite3 *db,
    sqlite3_stmt *st);
/* A read transaction on db from store_db_get(): the queries between begin
 * and end share one snapshot, instead of each taking its own. end never
 * fails for the caller: a failed COMMIT is rolled back, so db goes back to
 * the pool outside a transaction. */
int store_db_read_begin(struct store_account *a, sqlite3 *db,
    struct store_err *err);
void store_db_read_end(struct store_account *a, sqlite3 *db);
/* Take the write lock and BEGIN IMMEDIATE. */
int store_txn_begin(struct store_account *a, struct store_txn *t,
    struct store_err *err);
/* Take the write lock and BEGIN a read transaction (its snapshot starts
 * with the first read); for read-only stores. */
int store_txn_begin_read(struct store_account *a, struct store_txn *t,
    struct store_err *err);
/* COMMIT, broadcast, unlink, release. On failure rolls back. */
int store_txn_commit(struct store_txn *t, struct store_err *err);
/* ROLLBACK and release (drops collected changes). */
void store_txn_abort(struct store_txn *t);
/* The transaction's modseq, assigned on first use. */
int store_txn_modseq(struct store_txn *t, int64_t *out,
    struct store_err *err);
struct store_change *store_txn_change(struct store_txn *t,
    enum store_change_type type, int64_t mailbox_id);
void store_chg_set_str(struct store_chg *c, const char *s1, const char *s2);
void store_txn_unlink_after(struct store_txn *t, const char *path);
void store_txn_undo_add(struct store_txn *t, const char *from,
    const char *to);
/* Revert file operations recorded after mark (an earlier t->nundo). */
void store_txn_undo_to(struct store_txn *t, size_t mark);
/* Drop changes recorded after mark (an earlier t->nchg). */
void store_txn_chg_to(struct store_txn *t, size_t mark);
void store_txn_broadcast(struct store_txn *t);
const void *store_origin_current(void);
/* Adjust a mailbox's counts by the contribution of one message. */
int store_counts_apply(struct store_txn *t, int64_t mbid, uint32_t flags,
    int64_t size, int sign, struct store_err *err);
/* Queue a MAILBOX_COUNTS change with the counts now in the transaction;
 * an entry at or above t->chg_floor for the mailbox is refreshed, else a
 * new one is appended (the last per mailbox is the current one). */
int store_counts_changed(struct store_txn *t, int64_t mbid,
    struct store_err *err);
int store_disk_add(struct store_txn *t, int64_t delta, struct store_err *err);
void store_mb_dir(struct store_account *a, int64_t mbid, const char *sub,
    struct buf *out);
int store_mb_dirs_create(struct store_account *a, int64_t mbid,
    struct store_err *err);
int store_rmtree_mb(struct store_account *a, int64_t mbid);
int store_fsync_path(const char *path);
int64_t store_now_ns(void);

/* store_mailbox.c */
int store_mb_lookup(sqlite3 *db, const char *canon, int64_t *id_out,
    struct store_err *err);
int store_mb_create_txn(struct store_txn *t, const char *canon,
    unsigned special, int64_t *id_out, struct store_err *err);
int store_mb_ensure_txn(struct store_txn *t, const char *canon,
    int64_t *id_out, struct store_err *err);
int store_mb_read(sqlite3 *db, int64_t id, struct store_mailbox *out,
    struct store_err *err);
int store_uidvalidity_next(struct store_txn *t, uint32_t *out,
    struct store_err *err);
int store_create_default_mailboxes(struct store_txn *t,
    struct store_err *err);

/* store_keywords (in store_mailbox.c) */
/* Validate and normalise a space-separated keyword list into out (sorted,
 * unique, lower case). */
int store_kw_norm(const char *in, struct buf *out, const char **why);
/* out = a union b (both normalised). */
void store_kw_union(const char *a, const char *b, struct buf *out);
/* out = a minus b. */
void store_kw_minus(const char *a, const char *b, struct buf *out);
int store_mb_kw_merge(struct store_txn *t, int64_t mbid, const char *kw,
    struct store_err *err);

/* store_password.c */
/* Set up and tear down s->pwcache, s->pwlock and s->pwkey. */
void store_pwcache_init(struct store *s);
void store_pwcache_release(struct store *s);

/* store_message.c */
int store_msg_reindex_txn(struct store_txn *t, int64_t mbid, int64_t id,
    const char *path, struct store_err *err);
int store_move_txn(struct store_txn *t, int64_t src, const uint32_t *uids,
    size_t n, int64_t dst, struct store_uidmap *out, struct store_err *err);
/* The prefix of ip kept for reputation (spec/store.md 3.1): level 0, 1, 2
 * is IPv4 /32, /26, /21, IPv6 /64, /48, /32; "" for no address. */
void store_ip_masked(const char *ip, int level, char *out, size_t outlen);

/* store_reputation.c: create its indexes (existing accounts get them
 * when opened for writing). */
int store_reputation_schema(sqlite3 *db, struct store_err *err);

#endif
