/*
 * tlsrpt_results.h: the TLS results collected per delivery attempt for
 * outgoing SMTP TLS reports (RFC 8460 4; spec/queue.md 5.7): one result
 * for the recipient domain (policy "sts" or "no-policy-found") and one per
 * host tried ("tlsa" or "no-policy-found"), with success/failure counts
 * and failure details, merged per (policy domain, UTC day, recipient
 * domain, is-host) into <datadir>/tlsrptresult.db.
 *
 * Thread rule: a struct tlsrpt_result belongs to one delivery thread;
 * store/load block on SQLite (own connection per call), never the reactor.
 */
#ifndef QUEUE_TLSRPT_RESULTS_H
#define QUEUE_TLSRPT_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* RFC 8460 4.3 result types (and mox's back-off type), as stored. */
#define TLSRPT_STARTTLS_NOT_SUPPORTED "starttls-not-supported"
#define TLSRPT_CERT_HOST_MISMATCH "certificate-host-mismatch"
#define TLSRPT_CERT_EXPIRED "certificate-expired"
#define TLSRPT_CERT_NOT_TRUSTED "certificate-not-trusted"
#define TLSRPT_VALIDATION_FAILURE "validation-failure"
#define TLSRPT_TLSA_INVALID "tlsa-invalid"
#define TLSRPT_DNSSEC_INVALID "dnssec-invalid"
#define TLSRPT_DANE_REQUIRED "dane-required"
#define TLSRPT_STS_POLICY_FETCH_ERROR "sts-policy-fetch-error"
#define TLSRPT_STS_POLICY_INVALID "sts-policy-invalid"
#define TLSRPT_STS_WEBPKI_INVALID "sts-webpki-invalid"

#define TLSRPT_DETAILS_MAX 100 /* distinct failure details per result */

enum tlsrpt_policy_type {
	TLSRPT_POLICY_STS,
	TLSRPT_POLICY_TLSA,
	TLSRPT_POLICY_NONE, /* "no-policy-found" */
};

/* One failure detail (RFC 8460 4.3); strings owned, "" when unknown. */
struct tlsrpt_detail {
	char *result_type;
	char *sending_ip;
	char *receiving_mx;    /* receiving-mx-hostname */
	char *receiving_helo;  /* receiving-mx-helo */
	char *receiving_ip;
	char *reason;          /* failure-reason-code */
	uint64_t count;
};

struct tlsrpt_result {
	char *policy_domain;     /* recipient domain, or TLSA base domain */
	char *recipient_domain;
	bool is_host;
	enum tlsrpt_policy_type type;
	char **strings;          /* policy-string: STS lines or TLSA records */
	size_t nstrings;
	char **mx;               /* STS mx patterns (mx-host) */
	size_t nmx;
	uint64_t success, failure;
	struct tlsrpt_detail *details;
	size_t ndetails;
	bool send_report;
};

/* Start a result (copies the strings). Release with
 * tlsrpt_result_release() (NULL-safe). */
void tlsrpt_result_init(struct tlsrpt_result *r, enum tlsrpt_policy_type type,
    const char *policy_domain, const char *recipient_domain, bool is_host);
void tlsrpt_result_release(struct tlsrpt_result *r);
/* Add a policy string or an mx pattern (copied). */
void tlsrpt_result_add_string(struct tlsrpt_result *r, const char *s);
void tlsrpt_result_add_mx(struct tlsrpt_result *r, const char *mx);
/* Count one successful TLS negotiation. */
void tlsrpt_result_success(struct tlsrpt_result *r);
/* Count one failed negotiation and add its detail (NULL fields = ""). */
void tlsrpt_result_failure(struct tlsrpt_result *r, const char *result_type,
    const char *reason, const char *sending_ip, const char *receiving_mx,
    const char *receiving_helo, const char *receiving_ip);
/* Add a detail without changing the counts (spec 5.7: STARTTLS not
 * announced in opportunistic mode). */
void tlsrpt_result_detail(struct tlsrpt_result *r, const char *result_type,
    const char *reason, const char *sending_ip, const char *receiving_mx,
    const char *receiving_helo, const char *receiving_ip);
/* Turn the last counted success into a failure (spec 5.7: TLS alert right
 * after the handshake), adding the detail. No-op without a success. */
void tlsrpt_result_success_to_failure(struct tlsrpt_result *r,
    const char *result_type, const char *reason, const char *sending_ip,
    const char *receiving_mx, const char *receiving_helo,
    const char *receiving_ip);

/* Merge results into <datadir>/tlsrptresult.db for the UTC day of now
 * (unix seconds). A no-policy-found domain result is skipped when a tlsa
 * result for the same policy domain is among rs (spec 5.7). Returns 0 or
 * -1 with the reason in err. Blocking (SQLite, one transaction). */
int tlsrpt_results_store(const char *datadir, const struct tlsrpt_result *rs,
    size_t n, int64_t now, struct buf *err);

/* Load the stored results of policy_domain for day ("yyyymmdd"): *out
 * gets an array of *n_out results (free with tlsrpt_results_free()).
 * Returns 0 or -1 with err. Blocking. */
int tlsrpt_results_load(const char *datadir, const char *policy_domain,
    const char *day, struct tlsrpt_result **out, size_t *n_out,
    struct buf *err);
void tlsrpt_results_free(struct tlsrpt_result *rs, size_t n);

/* The UTC day of now as "yyyymmdd" into out (9 bytes). */
void tlsrpt_day(int64_t now, char out[9]);

#endif
