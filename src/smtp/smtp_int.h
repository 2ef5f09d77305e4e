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
struct smtp_dnsbl;
struct store_delivery_counts;
struct store_rep_result;
struct smtp_rep_facts;
struct smtp_delay;
struct spf_result;

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

/* spec/smtp.md 9 "Aliases": an alias recipient as resolved at RCPT from
 * that moment's config snapshot. Addresses are canonical (smtp_alias.c):
 * catchall separator and case rules of the domain applied, lower-case
 * configured domain. */
struct smtp_alias_info {
	char *addr;       /* owned; the alias address */
	char **members;   /* owned; member addresses in config order */
	size_t nmembers;
	bool post_public;    /* PostPublic: anyone may send */
	bool allow_msg_from; /* AllowMsgFrom: the alias may be the From */
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
	struct smtp_alias_info *alias; /* owned; an alias recipient (no
					* account), else NULL */
};

enum smtp_state {
	SMTP_ST_CMD,
	SMTP_ST_AUTH,     /* waiting for a SASL response line */
	SMTP_ST_AUTH_ERR, /* SCRAM error sent; waiting for the client's line */
	SMTP_ST_DATA,
	SMTP_ST_TLS,      /* STARTTLS handshake running */
	SMTP_ST_WAIT,     /* paused until the protocol timer fires */
	SMTP_ST_DELAY,    /* first-time-sender delay: copies wait for the
			   * protocol timer, input watched (smtp_delay.c) */
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
	struct smtp_dnsbl *dnsbl; /* owned; SMTP.DNSBLs lookups started at
				   * accept (smtp_auth_checks.c), or NULL */
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
	/* Reputation and first-time-sender delay of the transaction;
	 * owned, freed by smtp_tx_reset(). */
	struct spf_result *spf_early; /* MAIL FROM SPF taken at the 2nd RCPT
				       * (spec/smtp.md 7 step 4), reused
				       * after DATA (smtp_mailfrom.c) */
	struct smtp_rep_facts *rep;   /* record facts (smtp_reputation.c) */
	struct smtp_delay *delay;     /* deliveries waiting (smtp_delay.c) */
	struct buf out;       /* reply being built */
};

/* Reply helpers (smtp_server.c). Errors get the received-id suffix. A
 * 421 reply also closes the connection (RFC 5321 3.8). */
void smtp_reply(struct smtp_sess *s, int code, const char *ecode,
    const char *text);
void smtp_replyf(struct smtp_sess *s, int code, const char *ecode,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
/* Answer after ms (a timer, never a sleep); close afterwards if asked
 * or when code is 421. */
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
	/* Step 8 (spec/junk.md 7): the sender's reputation in the account
	 * for the message going to mailbox. fwd_domain is set for an
	 * IsForward ruleset: the record is then analysed as it is stored
	 * (no IP, EHLO or MAIL FROM domain, without the DKIM domain
	 * fwd_domain). Returns 0 with *out, or -1 on an error. Called only
	 * when the decision gets there. NULL: no history (method none). */
	int (*reputation)(void *arg, const struct smtp_decision_in *in,
	    const char *mailbox, const char *fwd_domain,
	    struct store_rep_result *out);
	void *reputation_arg;
	/* Step 9: the message is a valid DMARC or TLS report to one of our
	 * reporting addresses (spec/auth.md 9, 10). */
	bool report;
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
	char *fwd_domain;     /* owned; IsForward: the ruleset's
			       * VerifiedDomain, else NULL */
	const char *method;   /* reputation method (static), NULL when the
			       * decision ended before step 8 */
	int rep_junk;         /* enum store_rep_junk of step 8 */
	bool rep_conclusive;
};

/* spec/smtp.md 12.2: the per-recipient analysis. Pure apart from regexp
 * compilation and the reputation and dnsbl_listed callbacks; any thread.
 * Release with smtp_decision_release(). */
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
 * the store (durable on 0). dec (may be NULL) is the decision the copy
 * was made under, for the reputation fields of the record (for a copy
 * in Rejects: is_reject, dec->mailbox the intended mailbox). */
int smtp_store_deliver(struct smtp_sess *s, const char *account,
    const char *mailbox, const struct buf *prefix, bool is_reject,
    uint32_t flags, const char *rcpt_lp, const char *rcpt_dom,
    const struct smtp_decision *dec, const char **why);

/* After DATA on submission (spec/smtp.md 11). */
void smtp_submit(struct smtp_sess *s);

/* localserve special localparts (spec/smtp.md 18): when lp asks for a
 * failure at this stage ('m' MAIL, 'r' RCPT, 'd' DATA), fill code, ecode
 * and text and return true. "timeout" returns code 0. */
bool smtp_localserve_error(const char *lp, char stage, int *code,
    const char **ecode, const char **text);

/* ---- aliases (smtp_alias.c), spec/smtp.md 9 "Aliases", 11 step 2 ---- */

/* The canonical form of lp@dom into out: for a hosted domain the
 * localpart up to its catchall separator, lower-cased unless the domain
 * is case sensitive, and the configured domain name in lower case; for
 * another domain the lower-cased address. Borrows cfg. */
void smtp_alias_canonical(const struct config *cfg, const char *lp,
    const char *dom, struct buf *out);
/* The alias lp@dom (catchall separator and case rules applied), or NULL.
 * Release with smtp_alias_info_free(). */
struct smtp_alias_info *smtp_alias_lookup(const struct config *cfg,
    const char *lp, const char *dom);
void smtp_alias_info_free(struct smtp_alias_info *a); /* NULL-safe */
/* Whether a message with the canonical From address from ("" without
 * one) may go to the alias: from is a member, or from is the alias
 * itself and AllowMsgFrom is set, or PostPublic. Pure. */
bool smtp_alias_may_post(const struct smtp_alias_info *a, const char *from);
/* Whether member (canonical) gets no copy of the alias's message: it is
 * the From address or one of the n explicit account recipients of the
 * transaction (canonical). Pure. */
bool smtp_alias_member_skip(const char *member, const char *from,
    const char *const *explicit_rcpts, size_t n);
/* Submission From check for an alias address: lp@dom is an alias with
 * AllowMsgFrom and account owns one of its members. Borrows cfg. */
bool smtp_alias_may_send_as(const struct config *cfg, const char *account,
    const char *lp, const char *dom);

/* ---- DSN for partly failed incoming mail (smtp_dsn.c), spec/smtp.md
 * 12.4 ---- */

/* A recipient that failed while others were delivered. */
struct smtp_rcpt_fail {
	const char *rcpt;  /* address as given in RCPT TO */
	int code;
	const char *ecode; /* "5.7.2" */
	const char *text;
};

/* The facts of the DSN; strings borrowed. */
struct smtp_dsn_in {
	const char *hostname;     /* Reporting-MTA */
	const char *from_domain;  /* From: postmaster@<from_domain> */
	const char *to;           /* the MAIL FROM address */
	const char *ehlo;         /* EHLO/HELO name of the peer */
	const char *remote_ip;
	const char *message_id;   /* of the original, with <>; or "" */
	const char *msgid_out;    /* Message-Id of the DSN, with <> */
	const char *boundary;     /* NULL: random */
	int64_t now_ns;           /* arrival and last attempt */
	struct span orig_header;  /* header section of the original */
	const struct smtp_rcpt_fail *fails;
	size_t nfails;
	bool utf8;                /* the RFC 6533 variant */
};

/* Compose the DSN (RFC 3464 through queue_dsn_compose()) into out. 0, or
 * -1 when out's maximum was reached. Pure but for randomness without a
 * boundary. */
int smtp_dsn_compose(const struct smtp_dsn_in *in, struct buf *out);
/* Queue the DSN for the session's transaction (non-null MAIL FROM) to
 * the MAIL FROM address: DKIM-signed for the From domain or its nearest
 * hosted parent, null reverse path, sender account the postmaster's,
 * REQUIRETLS when the transaction used it, the UTF-8 variant kept when
 * SMTPUTF8 was used. header is the original's header section. Errors are
 * logged; the transaction's reply does not depend on them. Blocks on
 * disk. */
void smtp_dsn_queue(struct smtp_sess *s, const struct config *cfg,
    struct span header, const struct smtp_rcpt_fail *fails, size_t n);

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
