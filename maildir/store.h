/*
 * store.h: the account store (spec/store.md, DESIGN.md "Data directory").
 * Each account has accounts/<name>/index.db (SQLite, the truth for flags,
 * keywords, UIDs, modseq, counts) and accounts/<name>/maildir/<mailbox-id>/
 * {cur,new,tmp}/ holding one immutable file "<message-id>:2," per message.
 *
 * Threads: a struct store and its accounts are shared by all threads.
 * Every function here may be called from any thread except the reactor: they
 * block on disk and SQLite. Writes to one account are serialised by the
 * account's write lock; concurrent deliveries are committed in groups.
 */
#ifndef MAILDIR_STORE_H
#define MAILDIR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define STORE_ACCOUNT_NAME_MAX 255   /* one path element */
#define STORE_MAILBOX_NAME_MAX 1024  /* octets of a full hierarchical name */
#define STORE_KEYWORD_MAX 128        /* octets of one custom keyword */
#define STORE_KEYWORDS_MAX 4096      /* octets of a keyword list */
#define STORE_PASSWORD_MIN 8         /* spec/store.md 10 */
#define STORE_PASSWORD_MAX 72 /* bcrypt reads only the first 72 octets */
#define STORE_SCRAM_SHA1_ITER 8192   /* spec/store.md 10 */
#define STORE_SCRAM_SHA256_ITER 4096 /* spec/store.md 10 */
#define STORE_SCRAM_SALT_LEN 12
#define STORE_IDLE_SEC 60            /* an unreferenced account stays open */

/* Message flags as stored (spec/store.md 3.1 bitmask). */
enum {
	STORE_F_SEEN = 1,
	STORE_F_ANSWERED = 2,
	STORE_F_FLAGGED = 4,
	STORE_F_FORWARDED = 8, /* $Forwarded */
	STORE_F_JUNK = 16,     /* $Junk */
	STORE_F_NOTJUNK = 32,  /* $NotJunk */
	STORE_F_DELETED = 64,
	STORE_F_DRAFT = 128,
	STORE_F_PHISHING = 256, /* $Phishing */
	STORE_F_MDNSENT = 512,  /* $MDNSent */
	STORE_F_ALL = 1023,
};

/* Special-use attributes (RFC 6154), bits. */
enum {
	STORE_SU_ARCHIVE = 1,
	STORE_SU_DRAFTS = 2,
	STORE_SU_JUNK = 4,
	STORE_SU_SENT = 8,
	STORE_SU_TRASH = 16,
	STORE_SU_ALL = 31,
};

/* Error classes a caller maps to protocol replies. */
enum store_code {
	STORE_OK = 0,
	STORE_EINTERNAL,    /* disk or database failure */
	STORE_EINVAL,       /* bad argument: name, keyword, flag */
	STORE_ENOMAILBOX,   /* IMAP NO [TRYCREATE] / [NONEXISTENT] */
	STORE_EEXISTS,      /* IMAP NO [ALREADYEXISTS] */
	STORE_EHASCHILDREN, /* RFC 9051 6.3.5: delete of a non-leaf */
	STORE_EOVERQUOTA,   /* IMAP NO [OVERQUOTA] */
	STORE_ENOMSG,       /* no such (live) message */
	STORE_ENOPASSWORD,  /* no password or derived secret stored */
	STORE_EBADPASSWORD, /* password check failed */
};

/* Error detail: caller-provided storage, filled on -1. */
struct store_err {
	enum store_code code;
	char text[256];
};

struct store;         /* a data directory; shared by all threads */
struct store_account; /* one open account; reference counted */
struct store_sub;     /* a change subscription */

/* Open the data directory (created if missing, with tmp/ and accounts/).
 * Returns NULL with err filled on failure. Same as store_open(datadir, 0). */
struct store *store_new(const char *datadir, struct store_err *err);

/* store_open() flags. */
enum {
	/* Open accounts read-only: no schema, no journal mode change, no
	 * sequence repair, no indexing of new/; every write fails. For tools
	 * that only read (verifydata without -fix, backup, export). Implies
	 * STORE_OPEN_NOMKDIR. */
	STORE_OPEN_READONLY = 1,
	/* Create nothing in the data directory (no tmp/, no accounts/). */
	STORE_OPEN_NOMKDIR = 2,
};
/* Open the data directory with STORE_OPEN_* flags. NULL with err on
 * failure. */
struct store *store_open(const char *datadir, unsigned flags,
    struct store_err *err);
/* Close every account; every account must have been put. NULL-safe. */
void store_free(struct store *s);
const char *store_datadir(const struct store *s);

/* Is name acceptable as an account name (one path element, UTF-8, no
 * control characters, not starting with '.')? */
bool store_account_name_valid(const char *name);

/* Get a reference to account NAME. With create, a missing account is
 * created with the default mailboxes (spec/store.md 12); the index is built
 * under a temporary name and linked into place, so accounts/<name>/index.db
 * is either absent or complete. An existing index.db without schema (for
 * instance cut to 0 bytes) is an error, never rebuilt. Returns 0 and sets
 * *out (release with store_account_put()), or -1. Opening runs outside the
 * registry lock; concurrent callers for the same name wait for the first.
 * The message-id repair scan of the Maildir runs once per store handle and
 * account. */
int store_account_get(struct store *s, const char *name, bool create,
    struct store_account **out, struct store_err *err);
/* Drop a reference. An account without references stays open (cached)
 * for STORE_IDLE_SEC so frequent get/put pairs (one per SMTP delivery or
 * login) are cheap; idle accounts are closed by later get/put calls and by
 * store_free(). NULL-safe. */
void store_account_put(struct store_account *a);
const char *store_account_name(const struct store_account *a);

/* ---- recipient domain TLS (spec/store.md RecipientDomainTLS) ---- */

struct store_domain_tls {
	int64_t updated_ns; /* when last written (wall clock) */
	bool starttls;      /* the last connection used STARTTLS */
	bool requiretls;    /* ... and its server announced REQUIRETLS */
};

/* What was last seen for DOMAIN (case-insensitive); *found false when
 * nothing was recorded. */
int store_domain_tls_get(struct store_account *a, const char *domain,
    struct store_domain_tls *out, bool *found, struct store_err *err);
/* Record what a successful connection to DOMAIN's servers showed. An
 * unchanged record is rewritten at most once a day. */
int store_domain_tls_set(struct store_account *a, const char *domain,
    bool starttls, bool requiretls, int64_t now_ns, struct store_err *err);

/* ---- mailboxes ---- */

struct store_counts {
	int64_t total;   /* live, not \Deleted */
	int64_t deleted; /* live, \Deleted */
	int64_t unread;  /* not \Seen and not \Deleted */
	int64_t unseen;  /* not \Seen */
	int64_t size;    /* octets of live messages */
};

struct store_mailbox {
	int64_t id;           /* immutable; the Maildir directory name */
	char *name;           /* owned */
	uint32_t uidvalidity;
	uint32_t uidnext;
	unsigned special;     /* STORE_SU_* */
	char *keywords;       /* owned; sorted, space separated */
	struct store_counts counts;
	int64_t highestmodseq; /* over all rows incl. tombstones; 0 if none */
	bool subscribed;
};

/* Validate and canonicalise a mailbox name (spec/store.md 1: "/"
 * separated, INBOX in any case -> Inbox, no control characters, no empty,
 * "." or ".." element, not starting with '#'). Writes the canonical name to
 * out. Returns 0 or -1 with *why. Pure. */
int store_mailbox_name_check(const char *name, struct buf *out,
    const char **why);

void store_mailbox_release(struct store_mailbox *mb);
/* Look up by name (canonicalised). -1 with STORE_ENOMAILBOX if absent. */
int store_mailbox_get(struct store_account *a, const char *name,
    struct store_mailbox *out, struct store_err *err);
int store_mailbox_get_id(struct store_account *a, int64_t id,
    struct store_mailbox *out, struct store_err *err);
/* All mailboxes in name order; free with store_mailbox_list_free(). */
int store_mailbox_list(struct store_account *a, struct store_mailbox **out,
    size_t *n_out, struct store_err *err);
void store_mailbox_list_free(struct store_mailbox *mbs, size_t n);
/* Create NAME and missing parents (each with a fresh UIDVALIDITY,
 * subscribed). STORE_EEXISTS if it exists. */
int store_mailbox_create(struct store_account *a, const char *name,
    unsigned special, int64_t *id_out, struct store_err *err);
/* Rename FROM and its children to TO (spec/store.md 6). Renaming Inbox
 * moves its messages into a new mailbox TO and leaves Inbox empty. */
int store_mailbox_rename(struct store_account *a, const char *from,
    const char *to, struct store_err *err);
/* Delete a leaf mailbox and its messages; STORE_EHASCHILDREN otherwise;
 * Inbox cannot be deleted. Files are removed after the commit. */
int store_mailbox_delete(struct store_account *a, const char *name,
    struct store_err *err);
int store_mailbox_set_special(struct store_account *a, const char *name,
    unsigned special, struct store_err *err);
/* Subscriptions are independent of mailbox existence (RFC 9051 6.3.7). */
int store_subscribe(struct store_account *a, const char *name,
    struct store_err *err);
/* Error (STORE_ENOMAILBOX) only for a name neither subscribed nor existing. */
int store_unsubscribe(struct store_account *a, const char *name,
    struct store_err *err);
/* Subscribed names in order; caller frees each and the array. */
int store_subscriptions(struct store_account *a, char ***names_out,
    size_t *n_out, struct store_err *err);

/* ---- messages ---- */

/* Fields extracted by the caller at delivery (spec/store.md 3.1). All
 * strings may be NULL (stored empty). */
struct store_msg_fields {
	const char *remote_ip; /* masked variants are computed here */
	const char *ehlo_domain;
	const char *mailfrom, *mailfrom_localpart, *mailfrom_domain;
	const char *rcptto_localpart, *rcptto_domain;
	const char *msgfrom_localpart, *msgfrom_domain, *msgfrom_orgdomain;
	bool ehlo_validated, mailfrom_validated, msgfrom_validated;
	uint8_t ehlo_validation, mailfrom_validation, msgfrom_validation;
	const char *const *dkim_domains; /* verified DKIM domains */
	size_t n_dkim_domains;
	const char *orig_ehlo_domain;
	const char *orig_dkim_domains; /* space separated */
	const char *message_id;        /* canonical, without <> */
	const char *subject_base;
	const uint8_t *message_hash;
	size_t message_hash_len;
	bool is_reject, is_forward, is_mailing_list, dsn;
	int64_t mailbox_destined_id;
	uint16_t tls_version, tls_cipher_suite;
	bool requiretls;
	const void *parsed; /* opaque MIME structure blob from the parser */
	size_t parsed_len;
	/* Addressees (To, Cc, Bcc), recorded when saved to a \Sent mailbox
	 * (spec/store.md 3.3 "Recipient"; used by reputation, spec/junk.md
	 * 7). Domains in lower case. rcpt_orgdomains may be NULL (stored
	 * empty: reputation then matches the domain and its subdomains). */
	const char *const *rcpt_localparts;
	const char *const *rcpt_domains;
	const char *const *rcpt_orgdomains;
	size_t n_rcpts;
	int64_t rcpt_sent_ns; /* the Date header; 0: the received time */
};

/* One message to add. Exactly one of path, data or has_fd is set: path
 * names a complete message file on the data directory's file system
 * (typically in <datadir>/tmp/; it is hard-linked, fsynced, never
 * modified, and remains the caller's to remove); data/len are written to
 * a temp file here; fd is a complete message file from store_tmpfile()
 * (fsynced, hard-linked through /proc/self/fd, or through path when
 * store_tmpfile() gave the file a name; the caller closes it). */
struct store_add {
	const char *path;
	const void *data;
	size_t len;
	bool has_fd;
	int fd;
	uint32_t flags;         /* STORE_F_* */
	const char *keywords;   /* space separated; validated, lower-cased */
	int64_t received_ns;    /* 0: now */
	int64_t quota;          /* octets; <= 0 unlimited */
	bool create_mailbox;    /* SMTP delivery: create with parents */
	const struct store_msg_fields *fields; /* NULL: none */
};

struct store_added {
	int64_t id;
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t uidvalidity;
	int64_t modseq;
};

/* A new empty file for a message, for store_add.fd: an unnamed file
 * (O_TMPFILE) in <datadir>/tmp/msg-XXXXXX (made by store_open(); its own
 * block group on ext4), so creating it takes no directory lock and a crash
 * leaves nothing behind; path is then empty. Where the file system (or
 * /proc) does not allow that, a named file in <datadir>/tmp whose name is
 * put in path, for the caller to unlink. Returns the descriptor (read and
 * write, close-on-exec), or -1 with errno set. Any thread. */
int store_tmpfile(struct store *s, struct buf *path);

/* Deliver one message into each of N mailboxes (one row and one link
 * each). All or nothing. Durable on return: tmp -> fsync -> row -> link ->
 * fsync dir -> commit (DESIGN.md). Concurrent calls for one account are
 * grouped into one commit. Fills out[0..n-1]. */
int store_deliver(struct store_account *a, const struct store_add *in,
    const char *const *mailboxes, size_t n, struct store_added *out,
    struct store_err *err);
/* Import N messages into one mailbox in one transaction with one modseq;
 * directory fsync once at the end (spec/store.md 18.2). out may be NULL. */
int store_import(struct store_account *a, const char *mailbox,
    const struct store_add *ins, size_t n, struct store_added *out,
    struct store_err *err);

/* A streaming import: one write transaction (and one modseq) for any
 * number of messages, each written into its Maildir as it is added.
 * store_import_commit() makes all files durable (one syncfs) and commits;
 * on failure, or with store_import_abort(), nothing remains: no rows, no
 * files, no created mailbox. Holds the account's write lock (and SQLite's
 * write lock, so other processes' writers wait) from begin to
 * commit/abort; one thread uses it. */
struct store_import;
/* Begin importing into MAILBOX; with create a missing mailbox (and its
 * parents) is created in the same transaction. NULL with err on failure. */
struct store_import *store_import_begin(struct store_account *a,
    const char *mailbox, bool create, struct store_err *err);
/* Add one message; out may be NULL. On -1 the import must be aborted. */
int store_import_add(struct store_import *im, const struct store_add *in,
    struct store_added *out, struct store_err *err);
/* Commit and free im (also on failure, then nothing was imported). */
int store_import_commit(struct store_import *im, struct store_err *err);
/* Roll back and free. NULL-safe. */
void store_import_abort(struct store_import *im);

struct store_msg {
	int64_t id;
	int64_t mailbox_id;
	uint32_t uid;
	int64_t modseq;
	int64_t createseq;
	bool expunged;
	uint32_t flags;
	char *keywords;       /* owned; sorted, space separated */
	int64_t received_ns;
	int64_t size;
	int64_t trained_junk; /* -1 not trained, 0 ham, 1 spam */
};

struct store_msg_list {
	struct store_msg *v;
	size_t n;
};
void store_msg_list_release(struct store_msg_list *l);

/* Live messages of a mailbox in ascending UID order (tombstones filtered).
 * Files waiting in the mailbox's new/ are indexed first. */
int store_list(struct store_account *a, int64_t mailbox_id,
    struct store_msg_list *out, struct store_err *err);
/* Rows with modseq > since, tombstones included (QRESYNC, RFC 7162 3.2.5),
 * ascending UID. */
int store_changes_since(struct store_account *a, int64_t mailbox_id,
    int64_t since, struct store_msg_list *out, struct store_err *err);
/* One live message; the parsed blob is appended to parsed if not NULL. */
int store_msg_get(struct store_account *a, int64_t mailbox_id, uint32_t uid,
    struct store_msg *out, struct buf *parsed, struct store_err *err);
/* The SMTP MAIL FROM recorded for message ID (tombstones included) into
 * out; empty when none was recorded. -1 with STORE_ENOMSG if no row. */
int store_msg_mailfrom(struct store_account *a, int64_t id, struct buf *out,
    struct store_err *err);
/* Live (non-expunged) messages of the account received at or after
 * since_ns from the IP classes of remote_ip (masks as stored, spec/smtp.md
 * 12.1 step 10), for the delivery rate limits (spec/smtp.md 13): [0] same
 * /32 (/64), [1] /26 (/48), [2] /21 (/32). */
struct store_delivery_counts {
	int64_t msgs[3];
	int64_t bytes[3];
};
/* Fill *out (all zero for an empty or unparsable remote_ip). Uses the
 * message_ipm{1,2,3} indexes. Blocks on SQLite; any thread. */
int store_delivery_counts(struct store_account *a, const char *remote_ip,
    int64_t since_ns, struct store_delivery_counts *out,
    struct store_err *err);
/* Path of a message's file into out. */
void store_msg_path(struct store_account *a, int64_t mailbox_id, int64_t id,
    struct buf *out);
/* Append the header section of message ID's file in mailbox_id to out:
 * the octets up to and including the empty line that ends it
 * (message_header_len()), or the whole file when it has none. Reads only
 * the start of the file; sections up to 8 KiB are kept in a cache of
 * the store handle (4096 entries, shared by all accounts; message files
 * never change and ids are never reused), so a message moved away since
 * the caller's listing may still be answered.
 * -1 with STORE_ENOMSG when the file is gone. */
int store_msg_header(struct store_account *a, int64_t mailbox_id, int64_t id,
    struct buf *out, struct store_err *err);
/* Open a live message's file read-only (O_NOFOLLOW|O_CLOEXEC). */
int store_msg_open(struct store_account *a, int64_t mailbox_id, uint32_t uid,
    int *fd_out, struct store_err *err);

enum store_flag_op {
	STORE_FLAGS_SET,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};

/* Result of a flag change: uids changed (with the new modseq) and uids not
 * changed because their modseq exceeded unchangedsince (RFC 7162 3.1.3). */
struct store_flags_result {
	uint32_t *changed;
	size_t n_changed;
	uint32_t *modified;
	size_t n_modified;
	int64_t modseq; /* assigned to changed messages; 0 if none */
};
void store_flags_result_release(struct store_flags_result *r);

/* Change flags and keywords of the live messages with the given UIDs
 * (missing UIDs are skipped). One modseq for all that change; no-op
 * stores keep their modseq. unchangedsince < 0: unconditional. */
int store_flags(struct store_account *a, int64_t mailbox_id,
    const uint32_t *uids, size_t n, enum store_flag_op op, uint32_t flags,
    const char *keywords, int64_t unchangedsince,
    struct store_flags_result *res, struct store_err *err);

struct store_uids {
	uint32_t *v;
	size_t n;
	int64_t modseq; /* of the operation; 0 if nothing changed */
};
void store_uids_release(struct store_uids *u);

/* Expunge live \Deleted messages: all of them if uids is NULL, else those
 * among uids. Leaves tombstones; files are unlinked after the commit. */
int store_expunge(struct store_account *a, int64_t mailbox_id,
    const uint32_t *uids, size_t n, struct store_uids *removed,
    struct store_err *err);

/* Source and destination UIDs in ascending source order (RFC 4315). */
struct store_uidmap {
	uint32_t *src;
	uint32_t *dst;
	size_t n;
	uint32_t dst_uidvalidity;
	int64_t modseq;
};
void store_uidmap_release(struct store_uidmap *m);

/* Copy live messages (new IDs, hard-linked files, consecutive new UIDs). */
int store_copy(struct store_account *a, int64_t src_mailbox_id,
    const uint32_t *uids, size_t n, int64_t dst_mailbox_id, int64_t quota,
    struct store_uidmap *out, struct store_err *err);
/* Move live messages (same IDs, files renamed, tombstones in the source). */
int store_move(struct store_account *a, int64_t src_mailbox_id,
    const uint32_t *uids, size_t n, int64_t dst_mailbox_id,
    struct store_uidmap *out, struct store_err *err);

/* Record junk-filter training state of message ID (-1, 0, 1). */
int store_msg_set_trained(struct store_account *a, int64_t id,
    int64_t trained, struct store_err *err);

/* Account-wide values. */
int store_disk_usage(struct store_account *a, int64_t *out,
    struct store_err *err);
int store_highest_deleted_modseq(struct store_account *a, int64_t *out,
    struct store_err *err);

/* Index files another program dropped in the mailbox's new/ and move them
 * to cur/ under their new names. *n_out (may be NULL) gets the count. */
int store_scan_new(struct store_account *a, int64_t mailbox_id,
    size_t *n_out, struct store_err *err);

/* Watch new/ of every mailbox with inotify in a thread of its own, and
 * index arriving files. Returns NULL on error. */
struct store_watch;
struct store_watch *store_watch_new(struct store_account *a,
    struct store_err *err);
/* Stop the thread and free. NULL-safe. */
void store_watch_free(struct store_watch *w);

/* ---- change broadcast (spec/store.md 11) ---- */

enum store_change_type {
	STORE_CHANGE_ADD_UID,
	STORE_CHANGE_REMOVE_UIDS,
	STORE_CHANGE_FLAGS,
	STORE_CHANGE_MAILBOX_ADD,
	STORE_CHANGE_MAILBOX_REMOVE,
	STORE_CHANGE_MAILBOX_RENAME,
	STORE_CHANGE_SUBSCRIPTION_ADD,
	STORE_CHANGE_MAILBOX_COUNTS,
	STORE_CHANGE_MAILBOX_SPECIAL_USE,
	STORE_CHANGE_MAILBOX_KEYWORDS,
};

/* One change. Pointers are borrowed for the duration of the callback. */
struct store_change {
	enum store_change_type type;
	int64_t mailbox_id;
	uint32_t uid;          /* ADD_UID, FLAGS */
	const uint32_t *uids;  /* REMOVE_UIDS, ascending */
	size_t n_uids;
	int64_t modseq;
	uint32_t flags;        /* ADD_UID, FLAGS */
	const char *keywords;  /* ADD_UID, FLAGS, MAILBOX_KEYWORDS */
	const char *name;      /* mailbox changes: current name */
	const char *old_name;  /* MAILBOX_RENAME */
	unsigned special;      /* MAILBOX_ADD, MAILBOX_SPECIAL_USE */
	bool nonexistent;      /* SUBSCRIPTION_ADD */
	struct store_counts counts; /* MAILBOX_COUNTS */
};

/* Called after each commit with the committed changes, in commit order,
 * while the account write lock is held: it must not block and must not
 * call into the store; copy what is needed and wake the session. */
typedef void store_change_fn(const struct store_change *changes, size_t n,
    void *arg);

/* Register fn for the account's changes. NULL-free. */
struct store_sub *store_sub_new(struct store_account *a, store_change_fn *fn,
    void *arg);
/* Unregister; after return fn is not running and will not run. NULL-safe. */
void store_sub_free(struct store_sub *sub);
/* Changes made by the calling thread until store_sub_origin(NULL) are not
 * delivered to sub (the originating session updates itself, RFC 7162 and
 * spec/store.md 11). */
void store_sub_origin(struct store_sub *sub);

/* ---- passwords (spec/store.md 10) ---- */

/* Store secrets derived from a clear-text password: bcrypt for PLAIN and
 * LOGIN, HMAC-MD5 states for CRAM-MD5, salt/iterations/StoredKey/ServerKey
 * for SCRAM-SHA-1 and -256. The password itself is never stored. A
 * password must be STORE_PASSWORD_MIN to STORE_PASSWORD_MAX octets of
 * UTF-8: bcrypt ignores octets after the 72nd, so a longer one is refused
 * (as mox does) rather than half checked. */
int store_password_set(struct store_account *a, const char *password,
    struct store_err *err);
/* 0 if password matches, -1 with STORE_EBADPASSWORD/STORE_ENOPASSWORD. */
int store_password_check(struct store_account *a, const char *password,
    struct store_err *err);

/* HMAC-MD5 chaining values after the ipad and opad blocks (RFC 2104). */
struct store_crammd5 {
	uint8_t ipad[16];
	uint8_t opad[16];
};
int store_password_crammd5(struct store_account *a, struct store_crammd5 *out,
    struct store_err *err);
/* Compute HMAC-MD5(password, msg) from the saved states (RFC 2195). */
void store_crammd5_digest(const struct store_crammd5 *c, const void *msg,
    size_t len, uint8_t out[16]);

enum store_scram_hash {
	STORE_SCRAM_SHA1,
	STORE_SCRAM_SHA256,
};
/* RFC 5802 3: StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword,
 * "Server Key"). */
struct store_scram {
	uint8_t salt[STORE_SCRAM_SALT_LEN];
	uint32_t iterations;
	uint8_t stored_key[32]; /* 20 bytes used for SHA-1 */
	uint8_t server_key[32];
	size_t key_len;         /* 20 or 32 */
};
int store_password_scram(struct store_account *a, enum store_scram_hash h,
    struct store_scram *out, struct store_err *err);

/* ---- consistency, verifydata, backup ---- */

/* Check the account (spec/store.md 15 and 17): integrity_check, counts,
 * disk usage, UID/UIDVALIDITY/modseq rules, every live row has its file
 * with the recorded size, no orphan files. Problems are appended to report
 * (one line each). With fix: orphan files are indexed (or moved to
 * <datadir>/moved/ when their row is a tombstone), misplaced files
 * relocated, and counts recomputed. Returns 0 when clean (after fixing),
 * -1 when problems remain or the check could not run. */
int store_check(struct store_account *a, bool fix, struct buf *report);

/* Check every account directory under <datadir>/accounts (for
 * mox-verifydata). Without fix the accounts are opened read-only; nothing
 * is created in datadir either way. Appends problems to report. Returns 0
 * when all clean. */
int store_verify_datadir(const char *datadir, bool fix, struct buf *report);

/* Back up the account into <dstdir>/accounts/<name>/: the index through the
 * SQLite online backup API (one read snapshot) and every live message file
 * of the snapshot hard-linked (copied across file systems), plus files
 * waiting in new/. Writers may keep running, in this process or another
 * (spec/store.md 16): a file that moved since the snapshot is linked from
 * its current mailbox into the place the snapshot expects; a message
 * expunged (or whose mailbox was deleted) since the snapshot is recorded as
 * expunged in the copy, so the backup stays consistent. Per-file failures
 * do not stop the backup: the others are still linked, and -1 reports the
 * count and the first failure. Directories written are fsynced. Existing
 * files are never overwritten (STORE_EEXISTS when index.db exists). */
int store_backup_account(struct store_account *a, const char *dstdir,
    struct store_err *err);

#endif
