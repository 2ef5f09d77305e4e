/*
 * spf.h: Sender Policy Framework verification (RFC 7208): record parsing,
 * check_host() with all mechanisms, modifiers and macros, the lookup
 * limits, identity selection and the Received-SPF header (RFC 7208 9.1).
 * The result struct is what Authentication-Results (RFC 8601 2.7.2) and
 * DMARC (RFC 7489 4.1) are built from.
 *
 * Thread rule: all functions may be called from any thread; verification
 * blocks on DNS, so never on the reactor.
 */
#ifndef MAILAUTH_SPF_H
#define MAILAUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;
struct dns_resolver;

#define SPF_LOOKUP_MAX 10      /* RFC 7208 4.6.4: DNS-querying terms */
#define SPF_VOID_MAX 2         /* RFC 7208 4.6.4: void lookups */
#define SPF_MX_MAX 10          /* RFC 7208 4.6.4: MX names per mx */
#define SPF_PTR_MAX 10         /* RFC 7208 4.6.4: PTR names per ptr */
#define SPF_RECORD_MAX 4096    /* longest TXT we evaluate */
#define SPF_EXP_MAX 800        /* explanation kept, in bytes */
#define SPF_PROBLEM_MAX 67     /* Received-SPF problem= text */
#define SPF_DOMAIN_MAX 253     /* RFC 7208 7.3: expanded names cut */

/* RFC 7208 2.6 results. */
enum spf_status {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* Which identity was checked (RFC 7208 2.3, 2.4). */
enum spf_identity {
	SPF_ID_NONE,     /* nothing to check (null sender, IP HELO) */
	SPF_ID_MAILFROM,
	SPF_ID_HELO,
};

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

/* One directive of a record (RFC 7208 4.6.1, 5). */
struct spf_directive {
	char qualifier;          /* '+', '-', '~' or '?' */
	enum spf_mech mech;
	char *domain_spec;       /* owned; NULL when absent */
	unsigned char ip[16];    /* ip4 (first 4 bytes) / ip6 */
	int cidr4, cidr6;        /* prefix lengths; -1 when not given */
	char *text;              /* the term as written, lower-case name */
};

/* A parsed record (RFC 7208 4.5, 4.6). */
struct spf_record {
	struct spf_directive *dirs; /* owned */
	size_t ndirs;
	char *redirect;          /* domain-spec of redirect=, NULL if none */
	char *exp;               /* domain-spec of exp=, NULL if none */
};

/* The connection facts check_host() needs. Strings are borrowed for the
 * duration of the call. */
struct spf_args {
	const char *remote_ip;       /* client IP text, v4 or v6 */
	const char *mailfrom_local;  /* MAIL FROM localpart; may be NULL */
	const char *mailfrom_domain; /* MAIL FROM domain; NULL/"" null path */
	const char *helo;            /* EHLO/HELO: domain or IP literal */
	const char *local_hostname;  /* our name, for %{r}; may be NULL */
	int64_t now;                 /* unix seconds for %{t}; 0: clock */
};

/* Outcome of spf_verify(). Strings owned; release with
 * spf_result_release(). */
struct spf_result {
	enum spf_status status;
	enum spf_identity identity;
	char *domain;            /* the identity's domain checked (ASCII,
				  * as given); NULL with SPF_ID_NONE */
	char *sender;            /* <sender> of check_host(): the MAIL FROM
				  * address, or postmaster@<helo> */
	char *mechanism;         /* the matching term ("ip4:192.0.2.0/24",
				  * "default" when none matched), or NULL */
	char *explanation;       /* on fail: the exp= text, or NULL */
	char *problem;           /* reason for temperror/permerror/none */
	bool authentic;          /* every DNS answer used was DNSSEC
				  * authenticated */
	unsigned lookups;        /* DNS-querying terms evaluated */
	unsigned void_lookups;
};

/* Name of a status as written in headers: "pass", "fail", ... */
const char *spf_status_name(enum spf_status s);

/* Parse a record (the TXT text, starting "v=spf1"). Returns 0 and fills
 * *rec (release with spf_record_release()), or -1 with *why. Pure. */
int spf_parse(struct span txt, struct spf_record *rec, const char **why);
void spf_record_release(struct spf_record *rec);
/* Write the record back in normalized text form. */
void spf_record_format(const struct spf_record *rec, struct buf *out);

/* Find and parse the SPF record of domain (RFC 7208 4.4, 4.5). Returns
 * SPF_PASS with *rec and, when txt_out is not NULL, the record text
 * (caller frees); otherwise SPF_NONE (no record), SPF_TEMPERROR or
 * SPF_PERMERROR with *why. *authentic says whether the TXT answer was. */
enum spf_status spf_lookup(struct dns_resolver *r, const char *domain,
    struct spf_record *rec, char **txt_out, bool *authentic,
    const char **why);

/* check_host() of RFC 7208 4 for one domain and sender ("local@domain").
 * Fills *res (release with spf_result_release()) and returns its status;
 * identity is what res->identity is set to. */
enum spf_status spf_check_host(struct dns_resolver *r,
    const struct spf_args *a, const char *domain, const char *sender,
    enum spf_identity identity, struct spf_result *res);

/* Select the identity (MAIL FROM, else HELO; RFC 7208 2.3, 2.4) and run
 * check_host(). Fills *res and returns its status. */
enum spf_status spf_verify(struct dns_resolver *r, const struct spf_args *a,
    struct spf_result *res);

void spf_result_release(struct spf_result *res);

/* Append "Received-SPF: ..." (RFC 7208 9.1, spec/smtp.md 10) without
 * the final CRLF, folded at 78 columns; receiver is our hostname. The
 * comment is "(domain D)", with ", from ehlo because mailfrom is empty"
 * for the HELO identity, none when nothing was checked; values are bare
 * dot-atoms or quoted strings; problem= is cut to SPF_PROBLEM_MAX. */
void spf_received_header(const struct spf_result *res,
    const struct spf_args *a, const char *receiver, struct buf *out);

/* Expand a macro-string (RFC 7208 7) for the given context. exp selects
 * explain-string rules (c, r, t allowed; spaces kept). domain is <domain>
 * (%{d}), sender <sender>. Returns 0 or -1 with *why. Does no DNS unless
 * the string has %{p} and r is not NULL. */
int spf_expand(struct dns_resolver *r, const struct spf_args *a,
    const char *domain, const char *sender, const char *spec, bool exp,
    struct buf *out, const char **why);

#endif
