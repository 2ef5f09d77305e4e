/*
 * smtp.h: the SMTP server for incoming mail (port 25), submission with
 * STARTTLS (587) and submission over implicit TLS (465), RFC 5321, RFC
 * 6409, RFC 8314 (spec/smtp.md). One struct smtp_server per configured
 * service; serve_smtp.c hands its protocol to the reactor.
 *
 * Threads: a struct smtp_server is immutable after smtp_server_new() and
 * shared by the workers running its sessions; a session belongs to one
 * thread at a time (net.h). Sessions block on disk and SQLite on their
 * worker, never on the reactor; waits are timers.
 */
#ifndef SMTP_SMTP_H
#define SMTP_SMTP_H

#include <stdbool.h>
#include <stdint.h>

struct buf;
struct config_limits;
struct dns_resolver;
struct net_proto;
struct publicsuffix_list;
struct store;
struct tls_server;

#define SMTP_MAX_MSG_SIZE_DEFAULT 104857600 /* spec/smtp.md 1: 100 MiB */

enum smtp_kind {
	SMTP_KIND_SMTP,        /* incoming, STARTTLS optional */
	SMTP_KIND_SUBMISSION,  /* RFC 6409, STARTTLS */
	SMTP_KIND_SUBMISSIONS, /* RFC 8314, implicit TLS */
};

struct smtp_server_params {
	enum smtp_kind kind;
	const char *listener_name;
	const char *hostname;        /* greeting, EHLO; ASCII */
	struct tls_server *tls;      /* NULL: no TLS configured */
	bool no_starttls;            /* SMTP.NoSTARTTLS */
	bool require_starttls;       /* SMTP.RequireSTARTTLS */
	bool no_require_tls;         /* SMTP.NoRequireTLS */
	bool no_require_starttls;    /* Submission.NoRequireSTARTTLS */
	uint64_t max_msg_size;       /* SMTPMaxMessageSize; 0: default */
	int64_t first_time_sender_delay_ns;
	bool pedantic;               /* global Pedantic */
	bool localserve;             /* mox localserve rules (spec 18) */
	struct store *store;         /* shared; outlives the server */
	/* Message authentication (spec/auth.md): the shared resolver (NULL:
	 * no checks, every verdict "none") and public suffix list (may be
	 * NULL); both outlive the server. */
	struct dns_resolver *resolver;
	const struct publicsuffix_list *psl;
	const char *const *dnsbls;   /* SMTP.DNSBLs zones; copied */
	size_t ndnsbls;
};

struct smtp_server; /* opaque */

/* Create the server for one service; opens the queue for submission.
 * NULL with the reason appended to err. */
struct smtp_server *smtp_server_new(const struct smtp_server_params *p,
    struct buf *err);
/* After the reactor stopped. NULL-safe. */
void smtp_server_free(struct smtp_server *srv);
/* The protocol for net_listen(); its proto_arg is the smtp_server. */
const struct net_proto *smtp_server_proto(void);

/* Use the numbers of l->eff (mox.conf Limits, defaults applied) for the
 * per-IP limits of SMTP, submission and IMAP (smtp_limit.c); until
 * called, the defaults of spec/smtp.md 13 apply. Copies l. Thread-safe;
 * counts already made are kept. */
void smtp_limit_configure(const struct config_limits *l);

#endif
