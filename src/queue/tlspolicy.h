/*
 * tlspolicy.h: which TLS rules apply to one delivery (spec/queue.md 5.2,
 * 5.3, 5.4, 5.7, 5.8): the recipient domain's MTA-STS outcome, per host
 * whether DANE applies, the TLS mode (DANE / MTA-STS enforce /
 * opportunistic), plaintext fallback, REQUIRETLS and "TLS-Required: No";
 * then the check of an established TLS session against that decision,
 * with the result recorded for TLS reports (RFC 8460).
 *
 * Typical use by the delivery code, per attempt:
 *   mtasts_lookup() -> tlspolicy_domain_check() -> tlspolicy_domain_report()
 *   per host: tlspolicy_dane_applies() ? dane_lookup() : nothing
 *             tlspolicy_host_decide() -> connect as told ->
 *             tls_session_peer_chain() -> tlspolicy_verify() ->
 *             tlspolicy_report_tls()
 *   tlsrpt_results_store() with the domain and host results.
 *
 * Thread rule: everything here is pure except tlspolicy_trust_new()
 * (reads the system trust store); a struct tlspolicy_trust is immutable
 * and shared by all delivery threads.
 */
#ifndef QUEUE_TLSPOLICY_H
#define QUEUE_TLSPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/span.h"
#include "queue/dane.h"
#include "queue/mtasts.h"
#include "queue/tlsrpt_results.h"

struct buf;

#define TLSPOLICY_NAMES_MAX 4 /* RFC 7672 3.2.3 names we accept */

/* RFC 8689: the message's REQUIRETLS setting (spec 5.8). */
enum tlspolicy_requiretls {
	TLSPOLICY_REQUIRETLS_UNSET, /* default rules */
	TLSPOLICY_REQUIRETLS_YES,   /* MAIL FROM ... REQUIRETLS */
	TLSPOLICY_REQUIRETLS_NO,    /* header "TLS-Required: No" */
};

/* What the delivery code knows about the destination. Borrowed. */
struct tlspolicy_dest {
	const char *domain;          /* original recipient domain (ASCII) */
	const char *expanded_domain; /* after CNAMEs; NULL or = domain */
	bool have_mx;                /* MX records used, not implicit MX */
	bool mx_authentic;           /* original name's CNAME + MX lookups */
	bool chain_authentic;        /* the whole expanded chain */
	const struct mtasts_lookup *sts; /* NULL: none looked up */
	enum tlspolicy_requiretls requiretls;
	bool is_dmarc_report;        /* never falls back to plaintext */
};

/* Spec 5.2: whether the attempt may go on after the MTA-STS lookup.
 * Returns 0, or -1 with *why for a temporary failure of the whole
 * attempt (DNS error without a cached policy, unless TLS-Required: No).
 * Pure. */
int tlspolicy_domain_check(const struct tlspolicy_dest *d, const char **why);

/* Fill the domain result for TLS reports (spec 5.7): "sts" with the
 * policy text lines and mx patterns, or "no-policy-found"; a policy
 * fetch problem is counted as one failure. Release *r. Pure. */
void tlspolicy_domain_report(const struct tlspolicy_dest *d,
    struct tlsrpt_result *r);

/* Spec 5.3 step 3: DANE is considered only when the MX lookup (and the
 * expanded chain when MX records were used) and the host's address
 * lookups were authentic and the host is a name. Pure. */
bool tlspolicy_dane_applies(const struct tlspolicy_dest *d,
    bool host_addrs_authentic, bool host_is_ip);

enum tlspolicy_action {
	TLSPOLICY_CONNECT,   /* dial the host with the settings below */
	TLSPOLICY_SKIP,      /* MTA-STS enforce: host not in the policy */
	TLSPOLICY_FAIL_TEMP, /* this host fails temporarily (TLSA error) */
	TLSPOLICY_FAIL_PERM, /* 554 5.7.30: REQUIRETLS without a mechanism */
};

/* The decision for one host. Strings and the report owned; release with
 * tlspolicy_host_release(). */
struct tlspolicy_host {
	enum tlspolicy_action action;
	const char *why;          /* static reason for SKIP/FAIL, or NULL */
	int code;                 /* SMTP code for FAIL_PERM (554), else 0 */
	const char *ecode;        /* enhanced code ("5.7.30"), or NULL */
	char *host;               /* the MX host name */
	bool tls_required;        /* STARTTLS even if not announced; no TLS
				   * means this host failed */
	bool verify_dane;         /* usable TLSA records: DANE must verify */
	bool verify_pkix;         /* MTA-STS enforce (no usable DANE): PKIX
				   * against host must verify */
	bool ignore_verify;       /* TLS-Required: No: record, do not fail */
	bool plaintext_fallback;  /* spec 5.4: after a TLS error, retry the
				   * host without TLS in the same attempt */
	bool requiretls;          /* MAIL FROM REQUIRETLS; the server must
				   * announce REQUIRETLS (RFC 8689 4.1) */
	bool sts_testing;         /* PKIX result recorded only */
	char *sni;                /* SNI name to send */
	char *names[TLSPOLICY_NAMES_MAX]; /* DANE-TA names, NULL-ended */
	size_t nnames;
	struct dane_lookup dane;  /* copy of the TLSA result (may be NONE) */
	struct tlsrpt_result report; /* host result for TLS reports */
};

/* Spec 5.2-5.4 for one host. tlsa is the dane_lookup() result when
 * tlspolicy_dane_applies() said yes, else NULL; ede is the DNSSEC
 * extended error of the host's lookups (-1 when none). The skip of an MX
 * mismatch is recorded as a failure in domain_report. Pure. */
void tlspolicy_host_decide(const struct tlspolicy_dest *d, const char *host,
    const char *expanded_host, const struct dane_lookup *tlsa, int ede,
    struct tlsrpt_result *domain_report, struct tlspolicy_host *out);
void tlspolicy_host_release(struct tlspolicy_host *h);

struct tlspolicy_trust; /* opaque; immutable WebPKI roots */

/* Load the system roots (unless no_system) plus PEM files. Returns NULL
 * with the reason in err. Blocking (files). Free after last use. */
struct tlspolicy_trust *tlspolicy_trust_new(const char *const *ca_files,
    size_t nca_files, bool no_system, struct buf *err);
void tlspolicy_trust_free(struct tlspolicy_trust *t);

/* The check of an established session. */
struct tlspolicy_verdict {
	bool ok;                 /* go on with this session */
	bool pkix_ok;            /* chain verifies to a root and names host */
	bool dane_ok;            /* a usable TLSA record verified */
	const char *result_type; /* TLSRPT_* of the failure that counts for
				  * the report, NULL for a success */
	char reason[64];         /* failure-reason-code, "" when none */
	const char *why;         /* static text for logs */
};

/* Verify the peer chain (DER, leaf first; from tls_session_peer_chain())
 * against the decision: DANE when records are present, PKIX (against
 * h->host) always computed with trust (NULL: PKIX fails), enforced per
 * h->verify_pkix. Pure; any thread. */
void tlspolicy_verify(const struct tlspolicy_host *h,
    const struct tlspolicy_trust *trust, const struct span *chain,
    size_t nchain, struct tlspolicy_verdict *out);

/* Where a detail came from (spec 5.7). Borrowed; NULL fields = "". */
struct tlspolicy_peer {
	const char *sending_ip;
	const char *receiving_mx;
	const char *receiving_helo;
	const char *receiving_ip;
};

/* Count one TLS negotiation in both results: a success when result_type
 * is NULL, else a failure with the detail (spec 5.7). */
void tlspolicy_report_tls(struct tlsrpt_result *domain_report,
    struct tlsrpt_result *host_report, const char *result_type,
    const char *reason, const struct tlspolicy_peer *peer);

/* Name of an RFC 8914 extended DNS error code with dashes, for the
 * "dns-extended-error-<code>-<name>" reason ("other" when unknown). */
const char *tlspolicy_ede_name(int code);

#endif
