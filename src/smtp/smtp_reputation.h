/*
 * smtp_reputation.h: the record an incoming message is analysed and
 * stored with (spec/smtp.md 12.1 steps 8, 10; 12.2; spec/store.md 3.1
 * reputation fields) and the reputation step of the decision
 * (spec/smtp.md 12.2 step 8, spec/junk.md 7, computed by
 * maildir/store_reputation.c).
 *
 * Threads: the session's worker; the lookup blocks on SQLite.
 */
#ifndef SMTP_SMTP_REPUTATION_H
#define SMTP_SMTP_REPUTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/span.h"

struct publicsuffix_list;
struct smtp_auth_checks;
struct smtp_decision;
struct smtp_decision_in;
struct smtp_sess;
struct store_msg_fields;
struct store_rep_result;

/* spec/store.md 3.1 validation values. */
enum smtp_validation {
	SMTP_VAL_UNKNOWN = 0,
	SMTP_VAL_STRICT = 1,
	SMTP_VAL_DMARC = 2,
	SMTP_VAL_RELAXED = 3,
	SMTP_VAL_PASS = 4,
	SMTP_VAL_NEUTRAL = 5,
	SMTP_VAL_TEMPERROR = 6,
	SMTP_VAL_PERMERROR = 7,
	SMTP_VAL_FAIL = 8,
	SMTP_VAL_SOFTFAIL = 9,
	SMTP_VAL_NONE = 10,
};

/* What all recipients of one incoming message share. Strings owned;
 * domains lower-case. */
struct smtp_rep_facts {
	char *msgfrom_lp;       /* From localpart; NULL without a From */
	char *msgfrom_dom;
	char *msgfrom_org;      /* organizational domain of msgfrom_dom */
	enum smtp_validation msgfrom_validation;
	bool msgfrom_validated; /* Strict, Relaxed or DMARC */
	char *mailfrom_lp;      /* NULL for the null reverse path */
	char *mailfrom_dom;
	enum smtp_validation mailfrom_validation, ehlo_validation;
	bool mailfrom_validated, ehlo_validated; /* SPF pass */
	char *ehlo;             /* EHLO domain; NULL for an address literal */
	char **dkim;            /* verified DKIM d= domains, unique */
	size_t ndkim;
	uint16_t tls_version;   /* 1 plaintext, else the TLS version code */
};

/* Scratch storage for smtp_rep_fields(); release after the delivery. */
struct smtp_rep_tmp {
	const char **dkim;
	struct buf orig_dkim;
};

/* From the authentication results of the session's message with header
 * section header: set s->rep (replacing an earlier one). */
void smtp_rep_begin(struct smtp_sess *s, const struct smtp_auth_checks *a,
    struct span header);
void smtp_rep_facts_free(struct smtp_rep_facts *f); /* NULL-safe */

/* The smtp_decision_in.reputation callback; arg is the session. */
int smtp_rep_lookup(void *arg, const struct smtp_decision_in *in,
    const char *mailbox, const char *fwd_domain,
    struct store_rep_result *out);

/* The reputation fields of the stored record for a delivery to account
 * under decision dec (NULL: none known; is_reject: a copy for the
 * Rejects mailbox, dec->mailbox the intended one) into mf, borrowing
 * from s->rep and tmp (initialised here; release with
 * smtp_rep_tmp_release()). Blocks on SQLite for a reject's intended
 * mailbox. */
void smtp_rep_fields(struct smtp_sess *s, const char *account,
    const struct smtp_decision *dec, bool is_reject,
    struct smtp_rep_tmp *tmp, struct store_msg_fields *mf);
void smtp_rep_tmp_release(struct smtp_rep_tmp *tmp);

/* The spec/smtp.md 12.1 step 8 validation of the From domain dom
 * (lower-case) from the results in a: Strict, Relaxed, DMARC or None.
 * psl may be NULL (then only Strict or None). Pure. */
enum smtp_validation smtp_rep_msgfrom_validation(
    const struct smtp_auth_checks *a, const char *dom,
    const struct publicsuffix_list *psl);

#endif
