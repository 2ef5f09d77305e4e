/*
 * smtp_mailfrom.h: DNS checks of the MAIL FROM domain on port 25: can it
 * receive mail (spec/smtp.md 6, RFC 7505 null MX, RFC 5321 5.1 implicit
 * MX), and does it pass SPF before a 2nd recipient is accepted
 * (spec/smtp.md 7 step 4; the result is kept for the SPF check after
 * DATA, so SPF is evaluated once per transaction).
 *
 * Threads: the session's worker; blocks on DNS, at most
 * SMTP_MAILFROM_DNS_MS per check (never the reactor).
 */
#ifndef SMTP_SMTP_MAILFROM_H
#define SMTP_SMTP_MAILFROM_H

#include <stdbool.h>
#include <stdint.h>

struct dns_resolver;
struct smtp_auth_checks;
struct smtp_sess;

#define SMTP_MAILFROM_DNS_MS 60000 /* spec/smtp.md 2: 1 minute per class */
#define SMTP_MX_HOSTS_MAX 10       /* MX hosts tried for an address */

enum smtp_mx_verdict {
	SMTP_MX_OK,   /* some host has an address */
	SMTP_MX_NONE, /* null MX, or no host with an address: 550 5.7.27 */
	SMTP_MX_TEMP, /* lookup errors only: 451 4.4.0 */
};

/* spec/smtp.md 6: whether domain (ASCII, no final dot) can receive mail:
 * a single MX "." is a null MX; an MX lookup error other than "not found"
 * is temporary; without MX the domain itself is the host; then at least
 * one host must have an A or AAAA record, and when none has one, errors
 * make the verdict temporary. Lookups stop at deadline_ns
 * (time_mono_ns() clock; 0: none) and count as errors. *why gets a
 * static detail for the log. Blocks on DNS. */
enum smtp_mx_verdict smtp_mailfrom_mx(struct dns_resolver *r,
    const char *domain, int64_t deadline_ns, const char **why);

/* cmd_mail on port 25 after the IP-literal check: the MX check of the
 * MAIL FROM domain; on failure replies 550 5.7.27 or 451 4.4.0 and
 * returns false. Skipped for the null reverse path, without a resolver,
 * and for loopback peers in localserve (development tools send from any
 * domain, spec/smtp.md 18, DESIGN.md). */
bool smtp_mailfrom_domain_ok(struct smtp_sess *s);
/* cmd_rcpt on port 25 before a 2nd recipient is added (spec/smtp.md 7
 * step 4): the MAIL FROM domain must pass SPF, else replies 452 4.5.3
 * and returns false. Not in localserve (spec/smtp.md 18). */
bool smtp_mailfrom_rcpt_ok(struct smtp_sess *s);

/* spec/smtp.md 7 step 4: whether the MAIL FROM domain passes SPF
 * (identity mailfrom), evaluated once per transaction with a minute's
 * bound and kept in s->spf_early. Blocks on DNS. */
bool smtp_mailfrom_spf_pass(struct smtp_sess *s);
/* Move the SPF result kept by smtp_mailfrom_spf_pass() into a (spf and
 * spf_done, see smtp_auth_verify()); false when there is none. */
bool smtp_mailfrom_spf_take(struct smtp_sess *s, struct smtp_auth_checks *a);
/* Drop the kept result (transaction reset). */
void smtp_mailfrom_reset(struct smtp_sess *s);

#endif
