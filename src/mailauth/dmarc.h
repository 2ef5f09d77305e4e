/*
 * dmarc.h: DMARC (RFC 7489): record parsing, policy discovery with the
 * organizational domain fallback, identifier alignment of SPF and DKIM,
 * p/sp/pct, and the evaluation record aggregate reports are built from
 * (spec auth.md sections 5 and 9.2).
 *
 * Parsing and evaluation are pure; discovery blocks on DNS, so never on
 * the reactor. Any thread.
 */
#ifndef MAILAUTH_DMARC_H
#define MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;
struct dns_resolver;
struct dkim_result;
struct publicsuffix_list;
struct spf_result;

#define DMARC_URIS_MAX 32 /* rua/ruf addresses kept per record */

enum dmarc_policy {
	DMARC_POLICY_EMPTY, /* sp= absent */
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* RFC 7489 6.3 "rua"/"ruf" URI with optional size limit. */
struct dmarc_uri {
	char *address;     /* "mailto:..." as written */
	uint64_t max_size; /* 0 when no limit */
	char unit;         /* 'k', 'm', 'g', 't' or 0 */
};

/* A parsed record (RFC 7489 6.3). */
struct dmarc_record {
	enum dmarc_policy policy;     /* p= */
	enum dmarc_policy subdomain_policy; /* sp=, EMPTY when absent */
	struct dmarc_uri *rua;        /* owned */
	size_t nrua;
	struct dmarc_uri *ruf;        /* owned */
	size_t nruf;
	bool adkim_strict;            /* adkim=s */
	bool aspf_strict;             /* aspf=s */
	uint32_t interval;            /* ri=, seconds */
	char *fo;                     /* fo=, default "0" */
	char *rf;                     /* rf=, default "afrf" */
	unsigned pct;                 /* 0..100 */
};

enum dmarc_status {
	DMARC_NONE,
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,
};

const char *dmarc_status_name(enum dmarc_status s);
const char *dmarc_policy_name(enum dmarc_policy p);

/* Parse a TXT value. Returns 1 with *out filled (release with
 * dmarc_record_release()), 0 when txt is not a DMARC record (does not
 * start with v=DMARC1), or -1 with *why for a DMARC record with a
 * syntax error. */
int dmarc_record_parse(struct span txt, struct dmarc_record *out,
    const char **why);
void dmarc_record_release(struct dmarc_record *r); /* NULL-safe */

/* Outcome of record discovery. */
struct dmarc_lookup {
	enum dmarc_status status;   /* NONE (no record), PASS (found),
				     * TEMPERROR, PERMERROR */
	char *policy_domain;        /* where the record was found; owned */
	bool has_record;
	struct dmarc_record record; /* valid when has_record */
	char *txt;                  /* the record text; owned */
	bool authentic;             /* every lookup was DNSSEC-authentic */
	const char *why;            /* static */
};

/* RFC 7489 6.6.3: TXT at _dmarc.<from_domain>, else at the
 * organizational domain. Fills *out (release with
 * dmarc_lookup_release()). Blocks on DNS. */
void dmarc_lookup(struct dns_resolver *r, const struct publicsuffix_list *psl,
    const char *from_domain, struct dmarc_lookup *out);
void dmarc_lookup_release(struct dmarc_lookup *l);

/* What an evaluation needs. Borrowed for the call. */
struct dmarc_input {
	const char *from_domain;            /* From header domain */
	const struct dkim_result *dkim;     /* all signatures */
	size_t ndkim;
	const struct spf_result *spf;       /* NULL when not evaluated */
	/* 0..99, decides pct= sampling; the caller draws it with
	 * gnutls_rnd() so tests can fix it */
	unsigned random_pct;
};

/* The result of one message's evaluation (RFC 7489 6.6). */
struct dmarc_result {
	enum dmarc_status status;
	bool reject;            /* the policy asks for reject or quarantine */
	bool use;               /* pct= sampling applies the policy */
	bool aligned_spf_pass;
	bool aligned_dkim_pass;
	const char *why;        /* static */
	struct dmarc_lookup lookup;
};

/* Discover and evaluate (spec auth.md 5.2, 5.3). Fills *out (release
 * with dmarc_result_release()) and returns its status. Blocks on DNS. */
enum dmarc_status dmarc_verify(struct dns_resolver *r,
    const struct publicsuffix_list *psl, const struct dmarc_input *in,
    struct dmarc_result *out);
/* The evaluation step alone, on a finished lookup (pure). */
void dmarc_evaluate(const struct publicsuffix_list *psl,
    const struct dmarc_input *in, struct dmarc_result *out);
void dmarc_result_release(struct dmarc_result *r);

/* ---- evaluation record for aggregate reports (spec 9.2) ---- */

struct dmarc_eval_dkim {
	char *domain;
	char *selector;
	const char *result; /* static RFC 8601 name */
};

struct dmarc_evaluation {
	char *policy_domain;
	int64_t evaluated;          /* unix seconds */
	unsigned interval_hours;    /* from ri=, see dmarc_interval_hours() */
	char **addresses;           /* rua URIs; owned */
	size_t naddresses;
	/* policy_published */
	char *pub_domain;
	bool pub_adkim_strict, pub_aspf_strict;
	enum dmarc_policy pub_p, pub_sp; /* sp = p when absent */
	unsigned pub_pct;
	char *source_ip;
	bool disposition_reject;    /* "reject" when rejected, else "none" */
	bool aligned_dkim_pass;
	bool aligned_spf_pass;
	bool override_mailing_list, override_forwarded, override_sampled_out;
	char *envelope_to;          /* recipient domain */
	char *envelope_from;        /* MAIL FROM domain */
	char *header_from;          /* From domain */
	struct dmarc_eval_dkim *dkim; /* signatures in the From org domain */
	size_t ndkim;
	char *spf_domain;           /* NULL when no SPF result */
	bool spf_scope_helo;        /* scope "helo", else "mfrom" */
	const char *spf_result;     /* static */
	bool optional;              /* never the reason to send a report */
};

/* Facts about the delivery that the result does not hold. */
struct dmarc_eval_facts {
	const char *source_ip;
	const char *envelope_to;
	const char *envelope_from;
	bool rejected;          /* the message was rejected for DMARC */
	bool mailing_list;      /* ListAllowDomain ruleset applied */
	bool forwarded;         /* IsForward ruleset applied */
	bool optional;
	int64_t now;
};

/* Fill *out from a result with a record. Returns 0, or -1 when the
 * result has no record (nothing to report). Release with
 * dmarc_evaluation_release(). */
int dmarc_evaluation_build(const struct publicsuffix_list *psl,
    const struct dmarc_input *in, const struct dmarc_result *res,
    const struct dmarc_eval_facts *f, struct dmarc_evaluation *out);
void dmarc_evaluation_release(struct dmarc_evaluation *e);
/* ri= rounded up to hours, then the largest of 24, 12, 8, 6, 4, 3, 2 not
 * above it, else 1 (spec 9.2). */
unsigned dmarc_interval_hours(uint32_t ri_seconds);

#endif
