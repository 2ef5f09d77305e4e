/*
 * queue_int.h: what the files of src/queue share privately: loading
 * records, finishing attempts (retire, DSN, suppression, webhook events)
 * and the delivery job handed from the scheduler to the transports.
 *
 * Threads: every function runs on the calling thread with the caller's
 * own sqlite3 handle; none may run on the reactor (disk, DNS, network).
 */
#ifndef QUEUE_QUEUE_INT_H
#define QUEUE_QUEUE_INT_H

#include <sqlite3.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "queue/queue.h"
#include "smtp/smtp_client.h"
#include "queue/tlspolicy.h"

struct config;

#define QUEUE_DELAYED_DSN_ATTEMPT 5 /* spec/queue.md 4.1 */
#define QUEUE_RETIRED_DEFAULT_KEEP (7 * 24 * 3600 * NS_PER_SEC)
#define QUEUE_HEADER_MAX (256u * 1024)
#define QUEUE_BUSY_MS 10000 /* wait for the database write lock */

enum queue_outcome {
	QUEUE_OUT_DELIVERED,
	QUEUE_OUT_FAILED,     /* permanent, or the last attempt */
	QUEUE_OUT_TEMP,       /* temporary; may become final */
	QUEUE_OUT_SUPPRESSED, /* on the suppression list */
	QUEUE_OUT_CANCELED,   /* admin drop */
};

/* Prepared statements of one SQLite connection, kept by a delivery job
 * for the statements it runs for every record (preparing one costs more
 * than running it). One thread, like its connection. */
struct queue_stmts;

struct queue_stmts *queue_stmts_new(sqlite3 *db);
/* Finalize the statements; before sqlite3_close(db). NULL-safe. */
void queue_stmts_free(struct queue_stmts *c);
/* The statement for sql on db: from c, prepared on first use (sql must
 * be a string constant: statements are found by its address), or, when
 * c is NULL, freshly prepared. Give it back with queue_stmts_put()
 * before the next use of the same sql. NULL on error (sqlite3_errmsg). */
sqlite3_stmt *queue_stmts_get(struct queue_stmts *c, sqlite3 *db,
    const char *sql);
/* Reset and unbind a cached statement, finalize another. NULL-safe. */
void queue_stmts_put(struct queue_stmts *c, sqlite3_stmt *st);

/* Load records matching the SQL condition where (on table msg, one
 * optional int64 parameter ?1 = arg). */
int queue_int_load(sqlite3 *db, const char *where, int64_t arg,
    struct queue_msg **out, size_t *n_out);
/* Load record id (none or one) with statements from c (may be NULL). */
int queue_int_load_id(struct queue_stmts *c, sqlite3 *db, int64_t id,
    struct queue_msg **out, size_t *n_out);

/* Finish an attempt of m (already counted in the database): complete the
 * last result, then per outcome send DSNs into the sender's account,
 * record webhook events, add suppressions, retire the record and remove
 * its file. Runs its own transactions on db. cfg (borrowed) gives the
 * DSN host name, postmaster, retention and webhooks; it may be NULL only
 * for QUEUE_OUT_CANCELED (then no webhook event, retired for the default
 * week). store may be NULL (then opened on the data directory for a
 * DSN). 0 or -1 with err. */
int queue_int_finish(struct queue *q, const struct config *cfg,
    struct store *store, sqlite3 *db, const struct queue_msg *m,
    enum queue_outcome o, const struct queue_attempt_result *r,
    struct log_ctx *log, struct buf *err);

/* queue_int_finish() of a delivered record, in the caller's write
 * transaction (so that several delivered records share one commit):
 * complete the last result, record the webhook event, retire the
 * record. The caller removes its file (queue_msg_path()) after the
 * commit. c (may be NULL) keeps the statements. 0, or -1
 * (sqlite3_errmsg(db)). */
int queue_int_retire_delivered(struct queue_stmts *c, sqlite3 *db,
    const struct config *cfg, const struct queue_msg *m,
    const struct queue_attempt_result *r, int64_t now);

/* One delivery attempt for records of one recipient domain. */
struct queue_job {
	const struct config *cfg;
	bool localserve;
	struct dns_resolver *resolver;
	const struct queue_tls_params *tls;
	struct log_ctx *log;
	const struct queue_msg *msgs;
	size_t n;
	const char *transport;  /* resolved name; "" = direct */
	const char *msgpath;    /* message file of msgs[0] */
	const char *dialed;     /* "host ip\n" lines of earlier attempts */
	/* After a transaction whose outcome is final, on a connection that
	 * may be reused: record the results of msgs, and load the next due
	 * records of the same domain and transport into msgs, n, res,
	 * msgpath, dialed. true when there are some (then deliver them on
	 * the same connection), false when not (msgs may then be NULL).
	 * NULL: one transaction per job. */
	bool (*next)(struct queue_job *j);
	/* After a connection's greeting and EHLO (and STARTTLS), before
	 * each transaction on it: what the server of msgs[0]'s recipient
	 * domain showed (spec/queue.md 5.5, kept in the sender account for
	 * security indicators). NULL: not recorded. */
	void (*domain_tls)(struct queue_job *j, bool starttls,
	    bool requiretls);
	void *next_arg;
	int64_t now_ns;         /* start of the attempt */
	const char *datadir;    /* for TLS report results */
	/* Out: */
	struct smtp_client_result *res; /* n, initialised by the caller */
	struct buf dialed_out;  /* lines to append to dialed */
	char remote_host[256];
	char remote_ip[64];
};

/* spec/queue.md 5.5: on the first attempt (msgs[0].attempts == 1) to a
 * host with IPv4 and IPv6 addresses (dual), a permanent 5.7.x result
 * becomes transient, so the next attempt can use the other family. */
void queue_deliver_policy_downgrade(const struct queue_job *j, bool dual,
    struct smtp_client_result *r);

/* Run the attempt: direct delivery, a transport, or localserve. Fills
 * j->res for every record. Blocks up to the delivery timeouts. */
void queue_deliver(struct queue_job *j);

#define QUEUE_HOST_IPS_MAX 32
#define QUEUE_HOST_CNAME_MAX 10 /* spec/queue.md 5.3 step 1 */

/* The addresses of one host (spec/queue.md 5.3 step 1). Owned; release
 * with queue_deliver_host_ips_release(). */
struct queue_host_ips {
	char *ips[QUEUE_HOST_IPS_MAX]; /* in DNS order */
	size_t n;
	char *expanded;          /* host after CNAMEs, NULL when no CNAME */
	bool authentic;          /* the host's own CNAME lookup and the
				  * address lookups were DNSSEC-authentic */
	bool expanded_authentic; /* every CNAME of the chain and the address
				  * lookups were authentic */
	bool is_ip;              /* the host was an IP address */
	int ede;                 /* RFC 8914 code of a failed lookup, or -1 */
};

/* Resolve host: an IP address stays itself; a name has its CNAMEs
 * followed one lookup at a time (at most QUEUE_HOST_CNAME_MAX), then A
 * and AAAA at the final name, dropping a disabled family. Returns 0, or
 * -1 with the reason in err (out still released by the caller).
 * Blocks on DNS. */
int queue_deliver_host_ips(struct dns_resolver *r, const char *host,
    bool disable4, bool disable6, struct queue_host_ips *out,
    struct buf *err);
void queue_deliver_host_ips_release(struct queue_host_ips *h);

/* spec/smtp.md 18: localserve "queue..." localparts that must fail when
 * the queue delivers them. true with code (0: timeout), ecode, text.
 * Pure. */
bool queue_localserve_error(const char *lp, int *code, const char **ecode,
    const char **text);

/* Record an outgoing webhook event for m when the sender account has an
 * OutgoingWebhook for it (queue_webhook.c): in the caller's transaction
 * when one is open (as a savepoint), else in its own. */
int queue_int_webhook_event(sqlite3 *db, const struct config *cfg,
    const struct queue_msg *m, const char *event,
    const struct queue_attempt_result *r, bool suppressing);
/* The same with the payload's DSN flag, and extra_json (a JSON object;
 * NULL: m's rows in msg_extra) as Extra, for feedback about retired
 * messages (queue_fromid.c). */
int queue_int_webhook_event_dsn(sqlite3 *db, const struct config *cfg,
    const struct queue_msg *m, const char *event,
    const struct queue_attempt_result *r, bool suppressing, bool dsn,
    const char *extra_json);
/* spec/queue.md 11: add the recipient to the sender account's list when
 * the failure asks for it. Returns 1 when added, 0 not, -1 error. */
int queue_int_suppress_auto(sqlite3 *db, const struct queue_msg *m,
    const struct queue_attempt_result *r);
/* The same with the source named in the reason ("queue", "DSN"). */
int queue_int_suppress_auto_src(sqlite3 *db, const struct queue_msg *m,
    const struct queue_attempt_result *r, const char *source);
/* spec/queue.md 4.2: is m's recipient suppressed for its account? */
bool queue_int_suppressed(sqlite3 *db, const struct queue_msg *m);

/* ---- TLS policy of one direct delivery attempt (queue_tls.c) ---- */

/* What the attempt knows; fields owned, released by queue_tls_end(). */
struct queue_tls_attempt {
	const struct queue_tls_params *p;
	struct dns_resolver *resolver;
	struct log_ctx *log;
	struct mtasts_lookup sts;
	bool have_sts;
	struct tlspolicy_dest dest;
	char *domain;
	char *expanded;
	struct tlsrpt_result domain_report;
	struct tlsrpt_result *hosts;   /* host results, owned */
	size_t nhosts;
	bool is_dmarc_report, is_tls_report; /* of the first record */
};

/* Spec 5.2: start the attempt for m's recipient domain (expanded: after
 * CNAMEs), look up the MTA-STS policy. Returns 0, or -1 with *why for a
 * temporary failure of the whole attempt; either way call
 * queue_tls_end(). Blocks (DNS, HTTPS, SQLite). */
int queue_tls_begin(struct queue_tls_attempt *a,
    const struct queue_tls_params *p, struct dns_resolver *r,
    struct log_ctx *log, const struct queue_msg *m, const char *expanded,
    bool have_mx, bool mx_authentic, bool chain_authentic, const char **why);

/* Spec 5.3 steps 3-5 for one host with its addresses (ips): DANE
 * applicability, the TLSA lookup (RFC 7672 2.2.2: at the CNAME-expanded
 * name first when the expansion was authentic, then at host), the
 * decision. Release out with queue_tls_host_done(). Blocks (DNS). */
void queue_tls_host(struct queue_tls_attempt *a, const char *host,
    const struct queue_host_ips *ips, struct tlspolicy_host *out);
/* Keep the host's TLS report result and release h. */
void queue_tls_host_done(struct queue_tls_attempt *a, struct tlspolicy_host *h);

/* One connection to a host: the verify hook's argument. */
struct queue_tls_conn {
	struct queue_tls_attempt *a;
	struct tlspolicy_host *h;
	const char *ip;
	bool verified;           /* the hook ran (handshake completed) */
	/* RFC 8460 4.3 sending-mta-ip: our address on the connection, or
	 * the proxy's for the Socks transport; "" when unknown. */
	char sending_ip[64];
};

/* smtp_client_verify_fn: tlspolicy_verify() and the report (spec 5.7). */
int queue_tls_verify(void *arg, struct tls_session *s, const char *helo,
    struct buf *err);
/* After a connection: count what the hook did not see (STARTTLS refused,
 * handshake failed, STARTTLS not announced in opportunistic mode). */
void queue_tls_conn_done(struct queue_tls_conn *c,
    const struct smtp_client_result *rc, bool tls_tried, bool no_starttls);

/* Spec 5.7: store the results (unless disabled or the recipient is an IP
 * literal) and release everything. NULL-safe on a zeroed attempt. */
void queue_tls_end(struct queue_tls_attempt *a, const char *datadir,
    bool failed, int64_t now_ns);

#endif
