/*
 * smtp_int.h: what the files of src/smtp share privately: the server and
 * session structures, the delivery decision, delivery into the store,
 * submission into the queue and the per-IP limiters.
 */
#ifndef SMTP_SMTP_INT_H
#define SMTP_SMTP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "smtp/smtp.h"
#include "smtp/smtp_parse.h"

struct config;
struct config_account;
struct dnsbl_health;
struct dns_resolver;
struct net_conn;
struct queue;
struct sasl_server;
struct store_delivery_counts;

#define SMTP_IDLE_MS 30000        /* spec/smtp.md 2: 30 s per read */
#define SMTP_RID_MAX 24           /* received-id text */
#define SMTP_BAD_TX_MAX 10        /* spec/smtp.md 2: bad-transaction cut-off */
#define SMTP_AUTH_SLOW_AFTER 3    /* spec/smtp.md 5 */
#define SMTP_UNKNOWN_DELAY_MS 5000 /* spec/smtp.md 12.1 step 6 */
#define SMTP_RECEIVED_MAX 100     /* spec/smtp.md 13 */
#define SMTP_PREFIX_MAX (64 * 1024)
#define SMTP_HEADER_MAX (1024 * 1024) /* header section we parse */

struct smtp_server {
	struct smtp_server_params p; /* strings below are our copies */
	char *hostname;
	char *listener_name;
	char *datadir;
	struct lock queue_lock;      /* guards the one-time queue open */
	struct queue *queue;         /* submission; opened on first use
				      * (after privileges were dropped) */
	uint64_t max_size;
	char **dnsbls;               /* our copies; p.dnsbls points here */
	struct dnsbl_health *dnsbl_health; /* RFC 5782 5, shared */
	struct dns_resolver *localserve_keys; /* localserve DKIM keys */
};

/* One accepted recipient. */
struct smtp_rcpt_ent {
	struct smtp_addr addr;     /* as given */
	bool postmaster;
	bool local;                /* resolves to an account */
	char *account;             /* owned; when local */
	char *mailbox;             /* owned; destination mailbox */
	char *dest_key;            /* owned; configured destination key */
	bool unknown;              /* hosted domain, no such user (port 25) */
	bool accept_all;           /* localserve: unknown delivered to mox */
};

enum smtp_state {
	SMTP_ST_CMD,
	SMTP_ST_AUTH,     /* waiting for a SASL response line */
	SMTP_ST_AUTH_ERR, /* SCRAM error sent; waiting for the client's line */
	SMTP_ST_DATA,
	SMTP_ST_TLS,      /* STARTTLS handshake running */
	SMTP_ST_WAIT,     /* paused until the protocol timer fires */
};

struct smtp_sess {
	struct smtp_server *srv;
	struct net_conn *c;
	struct log_ctx log;
	char rid[SMTP_RID_MAX];
	char remote_ip[64];
	enum smtp_state state;
	bool limit_counted;   /* holds an open-connection slot */
	bool loopback_exempt; /* localserve: no per-IP limits */
	bool any_cmd;         /* a command was seen */
	bool hello_done;
	bool ehlo;            /* EHLO rather than HELO */
	char *hello;          /* EHLO/HELO name, or the client IP */
	bool tls;
	bool authenticated;
	char *account;        /* authenticated account */
	char *username;       /* login name used */
	unsigned auth_fail;
	struct sasl_server *sasl;
	bool slow;
	bool slow_waited;
	unsigned good_tx, bad_tx;
	bool dnsbl_checked;   /* SMTP.DNSBLs looked up for this peer */
	bool dnsbl_listed;
	/* transaction */
	bool have_mail;
	struct smtp_mail mail;
	struct smtp_rcpt_ent *rcpts;
	size_t nrcpts;
	bool tx_bad_counted;
	/* DATA */
	struct smtp_data data;
	struct buf dbuf;      /* unstuffed bytes not yet written */
	int data_fd;
	char *data_path;
	bool data_write_err;
	int data_errno;
	bool data_too_large;
	/* delayed reply */
	struct buf delayed;
	bool close_after_delay;
	struct buf out;       /* reply being built */
};

/* Reply helpers (smtp_server.c). Errors get the received-id suffix. */
void smtp_reply(struct smtp_sess *s, int code, const char *ecode,
    const char *text);
void smtp_replyf(struct smtp_sess *s, int code, const char *ecode,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
/* Answer after ms (a timer, never a sleep); close afterwards if asked. */
void smtp_reply_later(struct smtp_sess *s, unsigned ms, int code,
    const char *ecode, const char *text, bool close);
void smtp_tx_reset(struct smtp_sess *s);

/* RFC 6531 3.2: non-ASCII in MAIL FROM or RCPT localparts or in the
 * header section means the message needs SMTPUTF8. */
bool smtp_sess_needs_smtputf8(const struct smtp_sess *s, struct span header);

/* The queue, opened on first use; NULL with err on failure. Any worker. */
struct queue *smtp_server_queue(struct smtp_server *srv, struct buf *err);

/* ---- delivery decision (smtp_deliver.c) ---- */

/* Result of a verification as input to the decision; NONE until the
 * mailauth module provides them. */
enum smtp_auth_result {
	SMTP_AUTH_NONE,
	SMTP_AUTH_PASS,
	SMTP_AUTH_FAIL,
	SMTP_AUTH_SOFTFAIL,
	SMTP_AUTH_NEUTRAL,
	SMTP_AUTH_TEMPERROR,
	SMTP_AUTH_PERMERROR,
};

struct smtp_decision_in {
	const struct config_account *account;
	const char *account_name;
	const char *dest_key;
	const char *dest_mailbox;   /* effective destination mailbox */
	const char *mailfrom;       /* "" for <> */
	const char *msgfrom;        /* localpart@domain of From, or "" */
	struct span header;         /* message header section */
	bool tls;
	enum smtp_auth_result iprev, spf, dkim, dmarc;
	bool dmarc_reject_policy;   /* p/sp asks for reject or quarantine */
	bool dmarc_use;             /* pct= sampling applied the policy */
	/* Domains validated for this message (spec/smtp.md 12.2 step 2):
	 * EHLO domain with SPF pass, SPF-passed MAIL FROM domain, passing
	 * DKIM d= domains; lower-case. */
	const char *spf_pass_domain;      /* SPF-passed MAIL FROM domain */
	const char *ehlo_pass_domain;     /* SPF-passed EHLO domain */
	const char *const *dkim_pass_domains;
	size_t ndkim_pass;
	/* Step 1 (spec/smtp.md 13): the account's live messages from the
	 * peer's IP classes received in the past minute and day
	 * (store_delivery_counts()), and this message's size. NULL: no
	 * check (localserve loopback). */
	const struct store_delivery_counts *rate_minute, *rate_day;
	int64_t size;
	bool junk_known;            /* a content score is available */
	double junk_prob;
	/* Step 14: whether a DNSBL lists the peer; called only when the
	 * decision gets there. NULL: not listed. */
	bool (*dnsbl_listed)(void *arg);
	void *dnsbl_arg;
};

enum smtp_decision_kind {
	SMTP_DECIDE_ACCEPT,
	SMTP_DECIDE_REJECT,      /* refuse, keep nothing */
	SMTP_DECIDE_REJECT_KEEP, /* refuse, keep a copy in Rejects */
};

struct smtp_decision {
	enum smtp_decision_kind kind;
	int code;             /* reject reply */
	const char *ecode;
	const char *text;
	const char *reason;   /* X-Mox-Reason token (static) */
	char *mailbox;        /* owned; mailbox to deliver to */
	bool mark_reject;     /* AcceptRejectsToMailbox */
	bool mailing_list;    /* DMARC override "mailing_list" (step 3) */
	bool forwarded;       /* DMARC override "forwarded" (step 4) */
};

/* spec/smtp.md 12.2: the per-recipient analysis. Pure apart from regexp
 * compilation and the dnsbl_listed callback; any thread. Release with
 * smtp_decision_release(). */
void smtp_decide(const struct smtp_decision_in *in, struct smtp_decision *out);
void smtp_decision_release(struct smtp_decision *d);

/* The Received header (spec/smtp.md 10) for this session into out. rcpt
 * NULL: no for-clause. revname: the iprev name of the peer (port 25), or
 * NULL. */
void smtp_received(struct smtp_sess *s, const char *rcpt, bool utf8msg,
    const char *revname, struct buf *out);
/* Append "Name: value" folded at 78 columns with CRLF TAB. */
void smtp_header_fold(struct buf *out, const char *name, const char *value);

/* After DATA on port 25 (spec/smtp.md 12): deliver to every recipient
 * and reply. Runs on the session's worker; blocks on disk. */
void smtp_deliver_incoming(struct smtp_sess *s);
/* Deliver the message file data_path with prefix to account/mailbox in
 * the store (durable on 0). */
int smtp_store_deliver(struct smtp_sess *s, const char *account,
    const char *mailbox, const struct buf *prefix, bool is_reject,
    uint32_t flags, const char *rcpt_lp, const char *rcpt_dom,
    const char **why);

/* After DATA on submission (spec/smtp.md 11). */
void smtp_submit(struct smtp_sess *s);

/* localserve special localparts (spec/smtp.md 18): when lp asks for a
 * failure at this stage ('m' MAIL, 'r' RCPT, 'd' DATA), fill code, ecode
 * and text and return true. "timeout" returns code 0. */
bool smtp_localserve_error(const char *lp, char stage, int *code,
    const char **ecode, const char **text);

/* ---- per-IP limits (smtp_limit.c), spec/smtp.md 13 ---- */

enum smtp_limit_verdict {
	SMTP_LIMIT_OK,
	SMTP_LIMIT_RATE,  /* connection rate */
	SMTP_LIMIT_CONNS, /* open connections */
	SMTP_LIMIT_AUTH,  /* failed authentications */
};

/* At accept: check (and count) rate and open connections; for
 * submission also the auth-failure windows. Thread-safe. On
 * SMTP_LIMIT_OK an open-connection slot is held until
 * smtp_limit_conn_end(). */
enum smtp_limit_verdict smtp_limit_conn_start(const char *ip,
    bool submission, int64_t now_ns);
void smtp_limit_conn_end(const char *ip);
void smtp_limit_auth_failed(const char *ip, int64_t now_ns);
void smtp_limit_auth_ok(const char *ip);

#endif
