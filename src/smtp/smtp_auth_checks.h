/*
 * smtp_auth_checks.h: the message authentication step of incoming
 * delivery (spec/smtp.md 12.1, spec/auth.md 2-6, 8): iprev (RFC 8601 3),
 * SPF (RFC 7208), DKIM (RFC 6376) of every signature, DMARC (RFC 7489),
 * the DNSBL lookup (RFC 5782) and the Authentication-Results (RFC 8601)
 * and Received-SPF (RFC 7208 9.1) headers built from them; the localserve
 * fakes (spec/smtp.md 18). DKIM signing for submission (spec/auth.md 4.3)
 * is here too.
 *
 * Threads: the session's worker; everything blocks on DNS (never the
 * reactor).
 */
#ifndef SMTP_SMTP_AUTH_CHECKS_H
#define SMTP_SMTP_AUTH_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/span.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/iprev.h"
#include "mailauth/spf.h"

struct buf;
struct config;
struct smtp_sess;

/* The verdicts of one incoming message. Release with
 * smtp_auth_checks_release(). */
struct smtp_auth_checks {
	bool iprev_done;
	struct iprev_result iprev;
	struct spf_args spf_args;   /* strings borrowed from the session */
	struct spf_result spf;
	bool spf_done;
	struct dkim_result *dkim;   /* every signature, header order */
	size_t ndkim;
	const char *dkim_why;       /* static: message not examinable */
	char *from_domain;          /* lower-case From domain; NULL unless
				     * exactly one From address */
	struct dmarc_input dmarc_in;
	struct dmarc_result dmarc;
	bool dmarc_done;            /* dmarc holds a result */
};

/* The iprev check of the session's peer (port 25, just after DATA). */
void smtp_auth_iprev(struct smtp_sess *s, struct smtp_auth_checks *a);
/* SPF, DKIM and DMARC for msg (the data as received) whose header
 * section is header. Needs smtp_auth_iprev() first. */
void smtp_auth_verify(struct smtp_sess *s, struct span msg,
    struct span header, struct smtp_auth_checks *a);
void smtp_auth_checks_release(struct smtp_auth_checks *a);

/* Append the Authentication-Results field (iprev, each dkim, spf, dmarc
 * with ", override <overrides>" when overrides is not empty) and the
 * Received-SPF field, both with CRLF. */
void smtp_auth_headers(const struct smtp_auth_checks *a,
    const char *hostname, bool smtputf8, const char *overrides,
    struct buf *out);

/* SMTP.DNSBLs of the listener, in order: whether a healthy zone lists the
 * peer (spec/smtp.md 12.2 step 14). Looked up once per connection. */
bool smtp_auth_dnsbl_listed(struct smtp_sess *s);

/* DKIM-sign a submitted message (spec/auth.md 4.3) with the selectors of
 * the From domain's DKIM.Sign: from_lp/from_dom are the From address,
 * msg the message as it will be sent after the prefix being built.
 * Appends the DKIM-Signature fields to out. Returns 0 (also when the
 * domain signs with nothing), or -1 with *why (the message then goes out
 * unsigned). */
int smtp_auth_sign(const struct config *cfg, const char *from_lp,
    const char *from_dom, struct span msg, struct buf *out,
    const char **why);

/* localserve: a mock resolver answering the DKIM key records of every
 * hosted domain (spec/auth.md 4.4). NULL when none could be loaded. */
struct dns_resolver *smtp_auth_localserve_keys(const struct config *cfg);

#endif
