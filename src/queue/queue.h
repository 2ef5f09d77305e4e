/*
 * queue.h: durable storage of the outgoing queue (spec/queue.md 1-2):
 * queue/index.db (SQLite, WAL, synchronous=FULL) with one record per
 * recipient, and the message files queue/msg/<id>. Submission adds
 * messages here before it answers 250; the delivery machinery reads them.
 *
 * Threads: a struct queue may be shared by all threads; every call opens
 * its own database connection, so a sqlite3 handle never leaves the
 * calling thread. Calls block on disk: never on the reactor.
 */
#ifndef QUEUE_QUEUE_H
#define QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

#define QUEUE_EXTRA_MAX 100        /* X-Mox-Extra-* keys per message */
#define QUEUE_MAX_ATTEMPTS_DEFAULT 8 /* spec/queue.md 4.1 */

/* RequireTLS tri-state (spec/queue.md 1.1). */
enum queue_requiretls {
	QUEUE_REQUIRETLS_UNSET,
	QUEUE_REQUIRETLS_YES, /* REQUIRETLS (RFC 8689) */
	QUEUE_REQUIRETLS_NO,  /* "TLS-Required: No" */
};

struct queue_extra {
	char *key;
	char *value;
};

/* One record (spec/queue.md 1.1). Strings are owned (NULL read as ""). */
struct queue_msg {
	int64_t id;             /* set by queue_add() */
	int64_t base_id;        /* set by queue_add() */
	int64_t queued_ns;      /* set by queue_add() */
	bool hold;              /* set by queue_add() from hold rules */
	char *sender_account;
	char *sender_localpart; /* "" with sender_domain "" for <> */
	char *sender_domain;
	char *from_id;
	char *recipient_localpart;
	char *recipient_domain;
	int64_t attempts;
	int64_t max_attempts;   /* 0: default 8 */
	int64_t next_attempt_ns; /* 0 at add: now */
	int64_t last_attempt_ns; /* 0: none */
	bool has_8bit;
	bool smtputf8;
	bool is_dmarc_report;
	bool is_tls_report;
	int64_t size;           /* prefix + file */
	char *message_id;       /* with <> */
	char *msg_prefix;       /* bytes sent before the file */
	size_t msg_prefix_len;
	char *subject;
	char *dsn_utf8;
	char *transport;
	enum queue_requiretls requiretls;
	char *future_release_request; /* "for;<n>" or "until;<t>" */
	struct queue_extra *extra;
	size_t nextra;
};

struct queue; /* opaque */

/* Open (creating) <datadir>/queue/index.db and queue/msg/. NULL with the
 * reason appended to err. */
struct queue *queue_open(const char *datadir, struct buf *err);
void queue_close(struct queue *q); /* NULL-safe */

/* Add n records for the message file at path (complete message without
 * the records' prefix; on the data directory's file system). In one
 * transaction: rows inserted (ids assigned in order; a group with the
 * same sender and prefix shares base_id = the first id when n > 1), hold
 * rules applied, the file hard-linked (copied across file systems) to
 * queue/msg/<id> for each record and the directory fsynced; then commit.
 * Durable on return 0; -1 with err and nothing added. The file at path
 * stays the caller's. */
int queue_add(struct queue *q, const char *path, struct queue_msg *msgs,
    size_t n, struct buf *err);
/* All records in id order (for tests and tools). Release with
 * queue_msg_list_free(). */
int queue_list(struct queue *q, struct queue_msg **out, size_t *n_out,
    struct buf *err);
void queue_msg_release(struct queue_msg *m);
void queue_msg_list_free(struct queue_msg *v, size_t n);
/* Remove record id and its file (after a delivery). */
int queue_remove(struct queue *q, int64_t id, struct buf *err);
/* Path of record id's message file into out. */
void queue_msg_path(const struct queue *q, int64_t id, struct buf *out);


/* ---- attempt bookkeeping (queue_store.c) ---- */

/* Backoff before the attempt after one that started with `attempts`
 * previous attempts (spec/queue.md 4.1): (7 min 30 s + jitter) << attempts,
 * jitter in [-5 s, +4 s]. For tests, the environment variable
 * MOX_TEST_QUEUE_BACKOFF_DIVISOR (a positive integer) divides the result,
 * e.g. 450 makes the first interval about 1 s. Pure but for the env. */
int64_t queue_backoff_ns(int64_t attempts, int jitter_s);
/* Divisor from MOX_TEST_QUEUE_BACKOFF_DIVISOR, 1 when unset or invalid. */
int64_t queue_backoff_divisor(void);

/* Outcome of one attempt for one record. */
struct queue_attempt_result {
	bool success;
	bool permanent;
	int code;             /* remote SMTP code, 0 when none */
	char secode[16];      /* enhanced code without class, "1.1" */
	const char *error;    /* our text; "" on success */
	const char *reply;    /* full remote reply lines, or "" */
	const char *remote_host;
	const char *remote_ip;
};

/* ---- the runner (queue_run.c) ---- */

struct store;
struct dns_resolver;
struct tls_session;
struct config;

struct mtasts_cache;
struct mtasts_fetch_params;
struct tlspolicy_trust;

/* The recipient domains' TLS policies for direct delivery
 * (spec/queue.md 5.2-5.4, 5.7-5.9; src/queue/tlspolicy.h): MTA-STS with
 * the cache in <datadir>/mtasts.db, DANE, PKIX with the WebPKI roots, and
 * TLS report results in <datadir>/tlsrptresult.db. Everything borrowed
 * and immutable while a runner uses it; build one with
 * queue_tls_params_new(). */
struct queue_tls_params {
	struct mtasts_cache *mtasts;      /* NULL: no MTA-STS */
	const struct mtasts_fetch_params *fetch; /* NULL: defaults */
	const struct tlspolicy_trust *trust; /* NULL: PKIX always fails */
	bool dane;                        /* look up TLSA records */
	bool tlsrpt;                      /* store TLS report results */
	bool refresh;                     /* run the MTA-STS refresher */
};

/* The policy setup serve uses: the MTA-STS cache in datadir, the trust
 * roots of the system plus TLS.CA of the config (cfg), DANE on, TLS
 * results unless NoOutgoingTLSReports, the refresher unless localserve.
 * Test-only environment variables (never set them in production):
 * MOX_TEST_MTASTS_CA, a PEM file the MTA-STS policy fetch trusts instead
 * of the system roots; MOX_TEST_MTASTS_CONNECT_TO, a libcurl CONNECT_TO
 * entry ("::127.0.0.20:8443") where the policy fetch connects instead of
 * mta-sts.<domain>:443; MOX_TEST_MTASTS_REFRESH_SECS, the refresher's
 * interval instead of 24 h. Returns NULL with err. Blocking (disk). */
struct queue_tls_params *queue_tls_params_new(const struct config *cfg,
    const char *datadir, bool localserve, struct buf *err);
void queue_tls_params_free(struct queue_tls_params *p); /* NULL-safe */

struct queue_runner_params {
	const char *datadir;
	struct store *store;             /* for DSNs; borrowed */
	struct dns_resolver *resolver;   /* borrowed; NULL: localserve only */
	bool localserve;                 /* deliver to the local SMTP listener */
	const struct queue_tls_params *tls; /* NULL: opportunistic only,
					     * nothing verified */
};

struct queue_runner; /* opaque; owns a scheduler thread */

/* Start the scheduler thread. NULL with err. Call once per server. */
struct queue_runner *queue_runner_start(const struct queue_runner_params *p,
    struct buf *err);
/* Wake the scheduler now (after an add or change). Any thread. */
void queue_runner_kick(struct queue_runner *r);
/* Stop picking, wait for running deliveries to end, free. NULL-safe. */
void queue_runner_stop(struct queue_runner *r);

/* ---- routes (queue_route.c) ---- */

struct config_route;
/* spec/queue.md 4.3: does route match (ASCII domains, attempts before
 * this attempt)? Pure. */
bool queue_route_match(const struct config_route *rt, const char *from_domain,
    const char *to_domain, int64_t attempts);
/* Transport name for a record: account routes, domain routes, global
 * routes, first match wins; "" = default direct. Borrowed from cfg. */
const char *queue_route_transport(const struct config *cfg,
    const char *account, const char *from_domain, const char *to_domain,
    int64_t attempts);

/* ---- DSNs (queue_dsn.c) ---- */

struct queue_dsn_rcpt {
	const char *recipient;       /* full address */
	const char *status;          /* "5.1.1" */
	const char *error;           /* our text */
	const char *reply;           /* full remote reply lines or "" */
	const char *remote_host;     /* or "" */
	const char *remote_ip;       /* or "" */
	int64_t last_attempt_ns;
	int64_t will_retry_until_ns; /* delayed only; 0: none */
};

struct queue_dsn {
	bool delayed;                /* "delayed" instead of "failed" */
	const char *hostname;        /* reporting MTA, our host name */
	const char *to;              /* sender address */
	const char *message_id;      /* original, with <>; or "" */
	const char *boundary;        /* NULL: random */
	const char *msgid_out;       /* Message-Id of the DSN; NULL: random */
	int64_t now_ns;
	int64_t arrival_ns;
	const char *future_release_request; /* or "" */
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	struct span orig_header;     /* original message header section */
	bool utf8;                   /* RFC 6533 variant: the original
				      * needed SMTPUTF8 */
	/* For DSNs of other modules (incoming delivery, spec/smtp.md
	 * 12.4); NULL: the queue's own. */
	const char *from;            /* From address; postmaster@hostname */
	const char *subject;         /* "mail delivery failed"/"delayed" */
	const char *received_from_mta; /* RFC 3464 2.2.4 "dns;<name> ([ip])";
					* NULL: no field */
	const char *text;            /* human part, CRLF lines; the queue's
				      * text about the attempts */
};

/* Compose a DSN (RFC 3464, RFC 6522 multipart/report; with d->utf8 the
 * RFC 6533 variant: text/plain utf-8 8bit, message/global-delivery-status
 * with utf-8 recipients, message/global-headers; else 7-bit parts,
 * us-ascii text when the text is ASCII, base64 for 8-bit text or
 * headers) into out. 0, or
 * -1 when out's maximum was reached. Pure but for randomness when
 * boundary/msgid_out are NULL. */
int queue_dsn_compose(const struct queue_dsn *d, struct buf *out);

/* ---- suppressions (queue_suppress.c) ---- */

/* Base address (spec/queue.md 11) of localpart@domain into out. Pure. */
void queue_suppress_base(const char *localpart, const char *domain,
    struct buf *out);
struct queue_suppression {
	int64_t id;
	int64_t created_ns;
	char *account;
	char *base_address;
	char *original_address;
	bool manual;
	char *reason;
};
void queue_suppression_list_free(struct queue_suppression *v, size_t n);
/* Is address (localpart@domain) suppressed for account (NULL or "": for
 * any account, the oldest entry)? 1 yes (fills *out when not NULL; its
 * strings are the caller's to free), 0 no, -1 error. */
int queue_suppress_lookup(struct queue *q, const char *account,
    const char *address, struct queue_suppression *out, struct buf *err);
/* Add (0; also when present: not an error), manual with reason. */
int queue_suppress_add(struct queue *q, const char *account,
    const char *address, bool manual, const char *reason, struct buf *err);
/* Remove by base address; -1 with "not present" when absent. */
int queue_suppress_remove(struct queue *q, const char *account,
    const char *address, struct buf *err);
/* List (account NULL/"": all) in id order. */
int queue_suppress_list(struct queue *q, const char *account,
    struct queue_suppression **out, size_t *n_out, struct buf *err);

/* ---- admin operations (queue_admin.c, queue_hold.c, queue_retired.c,
 * queue_webhook.c); all usable with or without a running server; a
 * running runner notices changes within a second ---- */

/* Filter (spec/queue.md 13). Zero value matches everything. */
struct queue_filter {
	const int64_t *ids;      /* NULL: any */
	size_t nids;
	int64_t max;             /* 0: unlimited */
	const char *account;     /* NULL: any */
	const char *from;        /* substring of sender address */
	const char *to;          /* substring of recipient address */
	int cmp_submitted;       /* '<', '>' or 0: compare queued with */
	int64_t submitted_ns;    /*   this absolute time */
	int cmp_next;            /* '<', '>' or 0: next attempt (or last
				  * activity for retired) with */
	int64_t next_ns;
	const char *transport;   /* NULL: any; "" default */
	int hold;                /* -1 any, 0 no, 1 yes */
	int result;              /* retired: -1 any, 0 failure, 1 success */
	const char *event;       /* webhooks: event name or NULL */
	bool sort_queued;        /* sort by queued/submitted, else next
				  * attempt (last activity for retired) */
	bool asc;
};
void queue_filter_init(struct queue_filter *f); /* hold = result = -1 */

/* One listed record, for display. */
struct queue_item {
	int64_t id;
	int64_t queued_ns;
	int64_t next_attempt_ns;  /* retired: last activity */
	int64_t last_attempt_ns;  /* 0: none */
	bool hold;
	bool success;             /* retired */
	char *account;
	char *sender;             /* address or "" */
	char *recipient;
	char *transport;
	char *last_error;
	int64_t attempts;
};
void queue_item_list_free(struct queue_item *v, size_t n);

/* List queued messages matching f, sorted per f. */
int queue_admin_list(struct queue *q, const struct queue_filter *f,
    struct queue_item **out, size_t *n_out, struct buf *err);
/* Set hold flag; *n_out gets the count. */
int queue_admin_hold(struct queue *q, const struct queue_filter *f, bool hold,
    int64_t *n_out, struct buf *err);
/* Add d to next attempt, or with from_now set it to now + d. */
int queue_admin_schedule(struct queue *q, const struct queue_filter *f,
    bool from_now, int64_t d_ns, int64_t *n_out, struct buf *err);
/* Set explicit transport ("" = routes). */
int queue_admin_transport(struct queue *q, const struct queue_filter *f,
    const char *transport, int64_t *n_out, struct buf *err);
/* Set RequireTLS tri-state. */
int queue_admin_requiretls(struct queue *q, const struct queue_filter *f,
    enum queue_requiretls v, int64_t *n_out, struct buf *err);
/* Fail (fail true) or drop the queued messages matching f (spec/queue.md
 * 10): append the result "delivery canceled by admin"; fail sends the
 * failure DSN to the sender (into its account in store; NULL: opened on
 * the data directory) and retires the message as failed (event failed);
 * drop sends no DSN and retires it as canceled; the files are removed.
 * cfg (borrowed, not the published one necessarily) gives the DSN host
 * name, postmaster, retention periods and webhooks. It may be NULL for a
 * drop: then no webhook events, and the retired copies are kept for the
 * default week. A fail without cfg returns -1 before changing anything.
 * *n_out gets the number of messages ended. A message that could not be
 * ended, or was ended but its DSN could not be delivered, adds a line
 * "message <id>: <reason>" to err (the others are still tried), and the
 * return is then -1. Blocking (SQLite, disk); any thread but the
 * reactor. */
int queue_admin_end(struct queue *q, const struct config *cfg,
    struct store *store, const struct queue_filter *f, bool fail,
    int64_t *n_out, struct buf *err);
/* queue_admin_end() with the published configuration (config_get(),
 * which may be NULL: then only drop works). */
int queue_admin_fail(struct queue *q, struct store *store,
    const struct queue_filter *f, int64_t *n_out, struct buf *err);
int queue_admin_drop(struct queue *q, const struct queue_filter *f,
    int64_t *n_out, struct buf *err);
/* Write prefix + file of message id to fd. */
int queue_admin_dump(struct queue *q, int64_t id, int fd, struct buf *err);

struct queue_hold_rule {
	int64_t id;
	char *account;          /* "" any */
	char *sender_domain;    /* "" any */
	char *recipient_domain; /* "" any */
};
int queue_hold_rule_list(struct queue *q, struct queue_hold_rule **out,
    size_t *n_out, struct buf *err);
void queue_hold_rule_list_free(struct queue_hold_rule *v, size_t n);
/* Add (all empty: everything held); matching queued messages are put on
 * hold at once. *id_out gets the new id when not NULL. */
int queue_hold_rule_add(struct queue *q, const char *account,
    const char *sender_domain, const char *recipient_domain,
    int64_t *id_out, struct buf *err);
/* Remove; -1 when absent. Messages keep their hold flag. */
int queue_hold_rule_remove(struct queue *q, int64_t id, struct buf *err);

/* Retired messages (spec/queue.md 9). */
int queue_retired_list(struct queue *q, const struct queue_filter *f,
    struct queue_item **out, size_t *n_out, struct buf *err);
/* Retired record id as indented JSON into out; -1 when absent. */
int queue_retired_print(struct queue *q, int64_t id, struct buf *out,
    struct buf *err);
/* Delete retired messages and webhooks with KeepUntil < now. */
int queue_retired_cleanup(struct queue *q, int64_t now_ns, struct buf *err);

/* Webhooks (spec/queue.md 14): events are recorded here; sending comes
 * with the web server. */
struct queue_webhook_item {
	int64_t id;
	int64_t queue_msg_id;
	int64_t submitted_ns;
	int64_t next_attempt_ns;  /* retired: last activity */
	int64_t last_attempt_ns;  /* Start of the newest result; 0: none */
	bool success;             /* retired */
	char *account;
	char *event;
	char *url;
	char *last_error;
};
void queue_webhook_item_list_free(struct queue_webhook_item *v, size_t n);
int queue_webhook_list(struct queue *q, const struct queue_filter *f,
    bool retired, struct queue_webhook_item **out, size_t *n_out,
    struct buf *err);
int queue_webhook_schedule(struct queue *q, const struct queue_filter *f,
    bool from_now, int64_t d_ns, int64_t *n_out, struct buf *err);
/* Cancel matching pending hooks: each is deleted and, when its account
 * keeps retired webhooks (KeepRetiredWebhookPeriod > 0 in cfg; a week
 * when cfg or the account is unknown), retired with the result "canceled
 * by admin" and KeepUntil = now + period, in one transaction per hook.
 * *n_out gets the number canceled; a hook that failed stays pending and
 * adds a line "webhook <id>: <reason>" to err, and the return is then -1.
 * cfg borrowed, may be NULL. */
int queue_webhook_cancel_cfg(struct queue *q, const struct config *cfg,
    const struct queue_filter *f, int64_t *n_out, struct buf *err);
/* queue_webhook_cancel_cfg() with the published configuration. */
int queue_webhook_cancel(struct queue *q, const struct queue_filter *f,
    int64_t *n_out, struct buf *err);
/* Webhook (pending or retired) id as indented JSON. */
int queue_webhook_print(struct queue *q, int64_t id, bool retired,
    struct buf *out, struct buf *err);

/* ---- internal, shared by the queue files and tests ---- */

/* Open the queue database on the calling thread (caller closes with
 * sqlite3_close()). */
struct sqlite3;
int queue_db_open(const struct queue *q, struct sqlite3 **out,
    struct buf *err);
/* Data directory the queue lives in. Borrowed. */
const char *queue_datadir(const struct queue *q);

#endif
