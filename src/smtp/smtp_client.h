/*
 * smtp_client.h: a blocking SMTP client for the queue (spec/queue.md 6 and
 * 7; RFC 5321; RFC 3207 STARTTLS; RFC 2920 PIPELINING; RFC 6152 8BITMIME;
 * RFC 6531 SMTPUTF8; RFC 1870 SIZE; RFC 8689 REQUIRETLS; RFC 9422 LIMITS;
 * RFC 4954 AUTH; RFC 2034/3463 enhanced status codes).
 *
 * The reply parser (smtp_client_reply_feed()) is pure and may be called
 * from any thread. A struct smtp_client is one connection owned by one
 * thread; every call blocks on the network with the timeouts below, so it
 * runs only on background (queue delivery) threads, never the reactor.
 */
#ifndef SMTP_SMTP_CLIENT_H
#define SMTP_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/span.h"
#include "sasl/sasl.h"

struct tls_session;

#define SMTP_CLIENT_LINE_MAX 2048    /* RFC 5321 4.5.3.1.5 says 512; INTEROP: long replies */
#define SMTP_CLIENT_REPLY_LINES 100  /* lines of one multi-line reply */
#define SMTP_CLIENT_REPLY_MAX 16384  /* bytes kept of one reply */
#define SMTP_CLIENT_IO_MS 30000      /* spec/queue.md 7: per line read/write */
#define SMTP_CLIENT_QUIT_MS 5000     /* spec/queue.md 7 */
#define SMTP_CLIENT_DIAL_MS 30000    /* spec/queue.md 5.3 step 6 */
#define SMTP_CLIENT_LIMIT_MAX 999999 /* RFC 9422: positive, at most 6 digits */

/* One reply (RFC 5321 4.2). */
struct smtp_client_reply {
	int code;          /* 3 digits; 0 while none */
	char ecode[16];    /* "5.1.1" when announced and consistent, else "" */
	struct buf lines;  /* all lines as received, each ending in "\n" */
	struct buf text;   /* text of all lines joined with " ", codes cut */
	size_t nlines;
};

void smtp_client_reply_init(struct smtp_client_reply *r);
void smtp_client_reply_release(struct smtp_client_reply *r);
void smtp_client_reply_reset(struct smtp_client_reply *r);

/* Feed one reply line (without CRLF). Returns 1 when the reply is
 * complete, 0 when more lines follow, -1 with *why for a malformed line
 * (no 3-digit code 200-599, bad separator, a code differing from the
 * first line's: RFC 5321 4.2.1 says the codes of a multi-line reply are
 * equal). With ecodes, an enhanced code (RFC 3463 "c.s.d", class digit
 * equal to the reply's) is taken from the first line. Pure. */
int smtp_client_reply_feed(struct smtp_client_reply *r, struct span line,
    bool ecodes, const char **why);

/* Parse an enhanced status code at the start of text: "c.sss.ddd" with
 * c in 2, 4, 5 and equal to class (the reply code's first digit). Returns
 * the length consumed (with the trailing space) and copies the code into
 * out (size >= 16), or 0 when there is none. Pure. */
size_t smtp_client_parse_ecode(struct span text, int class, char *out);

/* EHLO extensions (spec/queue.md 7). */
struct smtp_client_ext {
	bool starttls, ecodes, eightbit, pipelining, requiretls, smtputf8;
	bool size_announced;
	uint64_t size;      /* SIZE value; 0: no limit given */
	char *auth;         /* AUTH mechanisms as announced, or NULL */
	uint64_t mailmax, rcptmax, rcptdomainmax; /* LIMITS; 0: none */
};

/* Parse EHLO reply lines (lines after the first) into ext. Pure. */
void smtp_client_parse_ehlo(const struct smtp_client_reply *r,
    struct smtp_client_ext *ext);
/* Parse a LIMITS value list ("RCPTMAX=10 MAILMAX=5"): a syntax error
 * ignores the whole extension, duplicates are ignored, bad values are
 * skipped (RFC 9422 2). Pure. */
void smtp_client_parse_limits(struct span params, struct smtp_client_ext *ext);

/* How TLS is used on the connection. */
enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,          /* plaintext, never STARTTLS */
	SMTP_CLIENT_TLS_OPPORTUNISTIC, /* STARTTLS when announced */
	SMTP_CLIENT_TLS_STARTTLS,      /* STARTTLS required (sent even when
					* not announced) */
	SMTP_CLIENT_TLS_IMPLICIT,      /* TLS from the first byte */
};

/* A hook to verify a completed handshake beyond PKIX (DANE, MTA-STS):
 * helo is the host name from the greeting (borrowed, "" when none). 0 to
 * accept, -1 with the reason appended to err. */
typedef int smtp_client_verify_fn(void *arg, struct tls_session *s,
    const char *helo, struct buf *err);

struct smtp_client_params {
	const char *ehlo;             /* our host name, ASCII */
	const char *tls_name;         /* SNI and PKIX name; NULL: none */
	enum smtp_client_tls tls;
	bool pkix;                    /* verify PKIX; else accept any cert */
	const char *const *ca_files;  /* extra trust anchors (config TLS.CA) */
	size_t nca_files;
	bool no_system_trust;
	smtp_client_verify_fn *verify; /* NULL: none */
	void *verify_arg;
	const char *auth_user;        /* NULL: no AUTH */
	const char *auth_pass;
	const enum sasl_mech *mechs;  /* preference; NULL: default order */
	size_t nmechs;
	int io_ms;                    /* 0: SMTP_CLIENT_IO_MS */
};

/* Outcome of a whole-connection step or of one recipient. */
struct smtp_client_result {
	bool ok;
	bool permanent;   /* 5xx or a permanent local decision */
	bool tls_error;   /* handshake, STARTTLS refusal or verification */
	bool conn_error;  /* the connection is unusable */
	int code;         /* remote reply code, 0 when none */
	char ecode[16];   /* enhanced code, "" when none */
	struct buf error; /* our description */
	struct buf reply; /* full remote reply lines, "" when none */
};

void smtp_client_result_init(struct smtp_client_result *r);
void smtp_client_result_release(struct smtp_client_result *r);
/* Copy src over dst (both initialised). */
void smtp_client_result_copy(struct smtp_client_result *dst,
    const struct smtp_client_result *src);
/* Set a local failure: code/ecode may be 0/NULL. */
void smtp_client_result_fail(struct smtp_client_result *r, bool permanent,
    int code, const char *ecode, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Connect to ip (text, v4 or v6) port with a timeout, optionally from a
 * local address. Returns a blocking socket (O_CLOEXEC) with send and
 * receive timeouts of io_ms, or -1 with the reason appended to err.
 * Blocks. */
int smtp_client_dial(const char *ip, uint16_t port, const char *local_ip,
    int timeout_ms, int io_ms, struct buf *err);

struct smtp_client; /* opaque; one connection, one thread */

/* Take over the connected socket fd (closed by smtp_client_close()) and
 * run greeting, EHLO (HELO fallback), TLS and AUTH per p. Returns the
 * client, or NULL with *res describing the failure (the fd is closed).
 * Strings in p must live as long as the client. */
struct smtp_client *smtp_client_open(int fd, const struct smtp_client_params *p,
    struct smtp_client_result *res);

const struct smtp_client_ext *smtp_client_ext(const struct smtp_client *c);
bool smtp_client_tls_active(const struct smtp_client *c);
/* Host name from the greeting (borrowed). */
const char *smtp_client_greeting_host(const struct smtp_client *c);

/* One transaction. */
struct smtp_client_tx {
	const char *mailfrom;          /* without <>; "" for the null path */
	const char *const *rcpts;      /* without <> */
	size_t nrcpts;
	const char *prefix;            /* sent before the file */
	size_t prefix_len;
	int msg_fd;                    /* message file, read from offset 0 */
	int64_t size;                  /* prefix + file */
	bool has_8bit, smtputf8, requiretls;
};

/* Run MAIL, RCPT (at most RCPTMAX per transaction; a 452/552 to a later
 * RCPT retries the rest in a new transaction after RSET, spec/queue.md
 * 5.6), DATA. res gets the transaction-wide result (ok when at least one
 * recipient was accepted and the data was; else the error that stopped
 * it). rcpt_res[0..nrcpts-1] (initialised by the caller) get each
 * recipient's result. Returns 0 when the connection may be reused, -1
 * when it is unusable. Blocks. */
int smtp_client_deliver(struct smtp_client *c, const struct smtp_client_tx *tx,
    struct smtp_client_result *res, struct smtp_client_result *rcpt_res);

/* QUIT (waiting SMTP_CLIENT_QUIT_MS for the reply) and close. NULL-safe. */
void smtp_client_close(struct smtp_client *c);

#endif
