/*
 * smtp_parse.h: SMTP command line parsing (RFC 5321 4.1, RFC 1870 SIZE,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 8689 REQUIRETLS, RFC 4865
 * FUTURERELEASE, RFC 4954 AUTH) and the DATA reader (RFC 5321 4.5.2
 * dot-stuffing, smuggling-safe line ends). Pure: bytes in, result out; no
 * I/O, logging, globals or clock. Any thread.
 */
#ifndef SMTP_SMTP_PARSE_H
#define SMTP_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

#define SMTP_LINE_MAX 2048      /* spec/smtp.md 2: command line buffer */
#define SMTP_PATH_MAX 256       /* RFC 5321 4.5.3.1.3 */
#define SMTP_LOCALPART_MAX 128  /* spec/smtp.md 6; pedantic: 64 */
#define SMTP_LOCALPART_STRICT 64 /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255     /* RFC 5321 4.5.3.1.2 */
#define SMTP_LABEL_MAX 63       /* RFC 1035 2.3.4 */
#define SMTP_PARAM_MAX 32       /* parameters on one MAIL command */
#define SMTP_MECH_MAX 20        /* RFC 4422 3.1: mechanism name */
#define SMTP_RCPT_MAX 1000      /* RFC 9422 LIMITS RCPTMAX */
#define SMTP_HOLD_MAX_SEC 5184000 /* RFC 4865: 60 days */
#define SMTP_HOLDUNTIL_MAX 64   /* text of a HOLDUNTIL value */

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
};

/* Which reply a parse error maps to (spec/smtp.md 2, 6, 7). */
enum smtp_perr_kind {
	SMTP_PERR_SYNTAX,      /* 501 5.5.2 bad syntax: <why> */
	SMTP_PERR_DUPLICATE,   /* 501 5.5.4 duplicate param "<p>" */
	SMTP_PERR_UNKNOWN,     /* 555 5.3.3 unrecognized parameter "<p>" */
	SMTP_PERR_BADVALUE,    /* 555 5.5.4 <why> */
	SMTP_PERR_NONASCII,    /* 550/553 5.6.7 non-ascii address ... */
	SMTP_PERR_BOTHHOLD,    /* 501 5.5.4 cannot use both ... */
	SMTP_PERR_HOLDFAR,     /* 554 5.5.4 future release interval too far */
};

/* A parse error: its class, a static explanation and, for parameter
 * errors, the parameter as sent (borrowed from the input line). */
struct smtp_perr {
	enum smtp_perr_kind kind;
	const char *why;
	struct span param;
};

struct smtp_parse_opts {
	bool smtputf8; /* RFC 6531: UTF-8 allowed in addresses */
	bool pedantic; /* spec/smtp.md: strict limits and syntax */
	bool strict_trailing; /* submission: nothing after the last argument */
};

/* An address. localpart is the value (quoting removed, may be empty for
 * ""@domain); domain is lower-cased for ASCII, or the literal with its
 * brackets ("[192.0.2.1]", "[IPv6:...]"). Owned strings. */
struct smtp_addr {
	char *localpart;
	char *domain;
	bool ip_literal;
	bool utf8; /* contains non-ASCII bytes */
};

enum smtp_body {
	SMTP_BODY_NONE,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

struct smtp_mail {
	bool null_path;       /* MAIL FROM:<> (RFC 5321 4.5.5) */
	struct smtp_addr from; /* unless null_path */
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	bool requiretls;
	bool auth;            /* AUTH= given; ignored */
	bool has_holdfor;
	uint64_t holdfor;     /* seconds, 1..SMTP_HOLD_MAX_SEC */
	bool has_holduntil;
	int64_t holduntil_ns; /* wall clock */
	char holdreq[SMTP_HOLDUNTIL_MAX + 8]; /* "for;<n>" or "until;<text>" */
};

struct smtp_rcpt {
	bool postmaster;      /* RCPT TO:<Postmaster> without domain */
	struct smtp_addr to;  /* localpart "postmaster", domain "" for it */
};

/* Split a command line into its verb (case-insensitive) and the text
 * after the verb and its single space (*args_out, possibly empty).
 * Returns the verb, SMTP_VERB_UNKNOWN for anything else. */
enum smtp_verb smtp_parse_verb(struct span line, struct span *args_out);
/* Verb name in upper case. Static. */
const char *smtp_verb_name(enum smtp_verb v);

/* Parse an address (RFC 5321 4.1.2 Mailbox, RFC 6531 3.3) of exactly the
 * span. Returns 0 and fills *out (release with smtp_addr_release()), or
 * -1 with *err. */
int smtp_parse_addr(struct span s, const struct smtp_parse_opts *o,
    struct smtp_addr *out, struct smtp_perr *err);
void smtp_addr_release(struct smtp_addr *a); /* NULL-safe, zeroes */
/* Append localpart@domain with the localpart quoted when needed
 * (RFC 5321 4.1.2 Quoted-string). */
void smtp_addr_format(const struct smtp_addr *a, struct buf *out);
void smtp_localpart_format(const char *localpart, struct buf *out);

/* The arguments of "MAIL" (starting at "FROM:"). submission enables
 * HOLDFOR/HOLDUNTIL. Returns 0 (release with smtp_mail_release()) or -1
 * with *err; *m is released on error. */
int smtp_parse_mail(struct span args, const struct smtp_parse_opts *o,
    bool submission, struct smtp_mail *m, struct smtp_perr *err);
void smtp_mail_release(struct smtp_mail *m);
/* The arguments of "RCPT" (starting at "TO:"). */
int smtp_parse_rcpt(struct span args, const struct smtp_parse_opts *o,
    struct smtp_rcpt *r, struct smtp_perr *err);
void smtp_rcpt_release(struct smtp_rcpt *r);

/* EHLO/HELO argument on port 25 (spec/smtp.md 3): a domain, or an
 * address literal optionally followed by text (EHLO only). *name_out
 * borrows the domain or literal. 0 or -1 with *why. */
int smtp_parse_ehlo(struct span args, bool ehlo, struct span *name_out,
    const char **why);

/* AUTH arguments: mechanism and optional initial response. Several
 * spaces before the response are tolerated unless pedantic. "=" is
 * reported as an empty response. 0 or -1 with *why. */
int smtp_parse_auth(struct span args, bool pedantic, struct span *mech_out,
    bool *have_ir_out, struct span *ir_out, const char **why);

/* RFC 3339 date-time in UTC with 'T' and 'Z', optional fraction
 * (RFC 4865 HOLDUNTIL). 0 with wall-clock ns, or -1. */
int smtp_parse_rfc3339(struct span s, int64_t *ns_out);

/* ---- DATA reader (RFC 5321 4.5.2, spec/smtp.md 8) ---- */

enum smtp_data_state {
	SMTP_DATA_LINE_START,
	SMTP_DATA_DOT,
	SMTP_DATA_DOT_CR,
	SMTP_DATA_MID,
	SMTP_DATA_CR,
	SMTP_DATA_DONE,
};

struct smtp_data {
	enum smtp_data_state state;
	bool prev_crlf;   /* the previous line ended in CRLF */
	bool unstuffed;   /* current line's leading dot was removed */
	bool bad;         /* bare CR or a smuggling pattern was seen */
	bool has_8bit;    /* a byte >= 0x80 was seen */
	bool header_end;  /* an empty line (header/body separator) was seen */
	uint64_t line_len; /* bytes of the current line so far */
	uint64_t size;    /* bytes produced (CRLF line ends) */
};

void smtp_data_init(struct smtp_data *d);
/* Feed input. Unstuffed message bytes with CRLF line ends are appended to
 * out (at most 2 bytes per input byte). *used_out gets the input bytes
 * consumed. Returns 1 when the terminating CRLF.CRLF was consumed (bytes
 * after it are left), 0 when more input is needed. d->bad then tells
 * whether the message must be refused as possible smuggling. -1 only
 * when out hit its maximum. */
int smtp_data_feed(struct smtp_data *d, struct span in, struct buf *out,
    size_t *used_out);

#endif
