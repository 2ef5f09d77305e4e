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
 * reactor). Work that runs beside the session goes to the worker pool as
 * net jobs (net.h): the DNSBL lookups, started when the connection is
 * accepted, and the SPF evaluation, run while DKIM verifies on the
 * session's worker. Their arguments are copies owned by the job, so a
 * job that outlives its session touches nothing freed.
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

#define SMTP_AUTH_VERIFY_MS 60000 /* spec/smtp.md 12.1 step 5: SPF, and
				   * DKIM of all signatures, 1 minute each */
#define SMTP_DNSBL_WAIT_MS 20000  /* the decision waits this long for
				   * DNSBL lookups still running */

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
/* The SPF facts of the session's transaction (peer IP, MAIL FROM, EHLO,
 * our hostname) into *sa; strings borrowed from the session until the
 * transaction is reset. */
void smtp_auth_spf_args(struct smtp_sess *s, struct spf_args *sa);
/* SPF, DKIM and DMARC for msg (the data as received) whose header
 * section is header. Needs smtp_auth_iprev() first. SPF runs as a job
 * on the worker pool while DKIM verifies here (spec/smtp.md 12.1 step
 * 5); each gets SMTP_AUTH_VERIFY_MS: SPF still running then counts as
 * temperror, DKIM signatures whose key was not fetched by then as
 * temperror. When a->spf_done is already set, a->spf holds the SPF
 * result computed earlier in the transaction (for the same
 * smtp_auth_spf_args()) and is used as it is. */
void smtp_auth_verify(struct smtp_sess *s, struct span msg,
    struct span header, struct smtp_auth_checks *a);
void smtp_auth_checks_release(struct smtp_auth_checks *a);

/* Append the Authentication-Results field (iprev, each dkim, spf, dmarc
 * with ", override <overrides>" when overrides is not empty) and the
 * Received-SPF field, both with CRLF. */
void smtp_auth_headers(const struct smtp_auth_checks *a,
    const char *hostname, bool smtputf8, const char *overrides,
    struct buf *out);

/* Start looking up the peer in the listener's SMTP.DNSBLs, one pool job
 * per zone, each checking the zone's health first (RFC 5782 5); the
 * results stay with the session. Called once the connection is
 * accepted; never blocks. Nothing happens without zones or a resolver. */
void smtp_auth_dnsbl_start(struct smtp_sess *s);
/* Whether a healthy zone of SMTP.DNSBLs lists the peer, zones in order
 * (spec/smtp.md 12.2 step 14), from the lookups started at connect:
 * waits up to SMTP_DNSBL_WAIT_MS for those still running (a zone whose
 * lookup is not done by then does not list the peer); a lookup no
 * worker has taken yet runs here. The answer is kept for the rest of
 * the connection. Blocks: the session's worker. */
bool smtp_auth_dnsbl_listed(struct smtp_sess *s);
/* Drop the session's hold on its DNSBL lookups (the connection ends):
 * lookups not started yet are cancelled, running ones finish and free
 * themselves. Never blocks. */
void smtp_auth_dnsbl_end(struct smtp_sess *s);

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
