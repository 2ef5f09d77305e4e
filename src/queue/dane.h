/*
 * dane.h: DANE for SMTP (RFC 7672; TLSA records RFC 6698, RFC 7671):
 * TLSA lookups that only count DNSSEC-authenticated answers, the usable
 * record filter (DANE-TA(2) and DANE-EE(3); selectors Cert(0) and SPKI(1);
 * matching types Full(0), SHA2-256(1), SHA2-512(2)), and verification of
 * a peer certificate chain against the records with the RFC 7672 3.2
 * name checks for DANE-TA.
 *
 * Thread rule: dane_lookup() blocks on DNS (delivery threads only); the
 * rest is pure and may run on any thread.
 */
#ifndef QUEUE_DANE_H
#define QUEUE_DANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct dns_resolver;

#define DANE_CNAME_MAX 10     /* spec/queue.md 5.3: CNAMEs of the TLSA name */
#define DANE_CHAIN_MAX 16     /* certificates of a peer chain we look at */
#define DANE_RECORDS_MAX 64   /* TLSA records of one RRset we keep */

enum dane_usage {
	DANE_USAGE_PKIX_TA = 0, /* unusable for SMTP, RFC 7672 3.1.3 */
	DANE_USAGE_PKIX_EE = 1, /* unusable for SMTP, RFC 7672 3.1.3 */
	DANE_USAGE_DANE_TA = 2,
	DANE_USAGE_DANE_EE = 3,
};

/* One TLSA record (RFC 6698 2.1). */
struct dane_tlsa {
	uint8_t usage, selector, mtype;
	uint8_t *data; /* owned */
	size_t datalen;
};

enum dane_status {
	DANE_NONE,      /* DANE does not apply: no records, or not authentic */
	DANE_RECORDS,   /* authentic records: STARTTLS required (usable may
			 * be 0: then the certificate is not verified) */
	DANE_TEMPERROR, /* the lookup failed: DANE required but unknown */
};

struct dane_lookup {
	enum dane_status status;
	char *base_domain;      /* TLSA base domain (no final dot), owned */
	struct dane_tlsa *rec;  /* usable records, owned */
	size_t nrec;
	size_t nunusable;       /* records dropped as unusable */
	char **text;            /* every record "u s m hex", sorted (TLS
				 * report policy strings), owned */
	size_t ntext;
	bool dnssec_error;      /* TEMPERROR caused by a DNSSEC problem */
	int ede;                /* RFC 8914 code of the failed lookup, or -1 */
	const char *why;        /* static detail, or NULL */
};

/* Whether a record can be used for SMTP (spec 5.3 step 4): usage 2 or 3,
 * selector 0 or 1, matching type 0 with data that parses as certificate
 * or SubjectPublicKeyInfo, 1 with 32 bytes, 2 with 64 bytes. Pure. */
bool dane_tlsa_usable(const struct dane_tlsa *t);

/* Look up TLSA at _25._tcp.<expanded> when expanded (the host's
 * authentic CNAME expansion, else NULL) is set and differs from host,
 * falling back to _25._tcp.<host> (RFC 7672 2.2.2). Only authentic
 * answers count, with at most DANE_CNAME_MAX CNAMEs. Call only when the
 * MX and address lookups were authentic (spec 5.3 step 3). Always fills
 * *out (release with dane_lookup_release()). Blocks on DNS. */
void dane_lookup(struct dns_resolver *r, const char *host,
    const char *expanded, struct dane_lookup *out);
void dane_lookup_release(struct dane_lookup *l);

/* Build a lookup result from records (tests, and callers that looked the
 * records up themselves): keeps the usable ones, status DANE_RECORDS. */
void dane_lookup_from_records(const char *base_domain,
    const struct dane_tlsa *recs, size_t n, struct dane_lookup *out);

struct dane_verdict {
	bool verified;       /* some usable record matched (and for DANE-TA
			      * the chain and a name verified) */
	int matched_usage;   /* usage of the matching record, or -1 */
	bool errors;         /* a certificate did not parse, or a DANE-TA
			      * chain failed: report "dane-no-match+errors" */
	const char *why;     /* static reason when not verified */
};

/* Verify a peer chain (DER, leaf first, borrowed) against the usable
 * records of d. DANE-EE (RFC 7672 3.1.1): the leaf matches, no name or
 * expiry check. DANE-TA (RFC 7672 3.1.2, 3.2.3): a certificate of the
 * chain matches, the chain up to it verifies with it as the trust anchor,
 * and the leaf carries one of names (wildcards in the first label
 * allowed). Pure; any thread. */
void dane_verify(const struct dane_lookup *d, const struct span *chain,
    size_t nchain, const char *const *names, size_t nnames,
    struct dane_verdict *out);

#endif
