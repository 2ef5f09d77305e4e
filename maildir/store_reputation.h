/*
 * store_reputation.h: the reputation analysis of an incoming message over
 * the account's earlier messages (spec/junk.md 7): classified messages
 * (not expunged, $Junk or $NotJunk set) originally delivered to the same
 * mailbox, and the addressees of messages saved in the Sent mailbox
 * (spec/store.md 3.3 "Recipient"). The steps run SQL over index.db, so
 * they live beside it; the SMTP server builds the record and maps the
 * result into its decision (spec/smtp.md 12.2 step 8).
 *
 * Threads: any thread but the reactor; blocks on SQLite (read-only).
 */
#ifndef MAILDIR_STORE_REPUTATION_H
#define MAILDIR_STORE_REPUTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maildir/store.h"

/* spec/junk.md 7: windows of the steps. */
#define STORE_REP_YEAR_NS (365LL * 86400 * 1000000000)
#define STORE_REP_MSGFROM_NS (3 * STORE_REP_YEAR_NS)    /* step 1, 2 */
#define STORE_REP_DOMAIN_NS (2 * STORE_REP_YEAR_NS)     /* step 3 */
#define STORE_REP_DKIMSPF_NS (STORE_REP_YEAR_NS / 2)    /* step 4 */
#define STORE_REP_IP_NS (STORE_REP_YEAR_NS / 4)         /* step 5 */
/* ... and how many of the newest messages each step looks at. */
#define STORE_REP_MSGFROM_MAX 2
#define STORE_REP_DOMAIN_MAX 20
#define STORE_REP_DKIMSPF_MAX 50
#define STORE_REP_IP_MAX 50

/* The message being analysed, as it would be stored (spec/smtp.md 12.2:
 * for an IsForward ruleset without IP, EHLO and MAIL FROM domain, and
 * without the forwarder's DKIM domain). Strings are borrowed; NULL and
 * "" mean absent. Domains in lower case, as stored at delivery. */
struct store_rep_msg {
	const char *mailbox;          /* destination mailbox name */
	const char *msgfrom_localpart;
	const char *msgfrom_domain;
	const char *msgfrom_orgdomain;
	bool msgfrom_validated;       /* Strict, Relaxed or DMARC */
	const char *const *dkim_domains; /* verified DKIM domains */
	size_t n_dkim_domains;
	const char *mailfrom_localpart;
	const char *mailfrom_domain;
	bool mailfrom_validated;      /* SPF pass for MAIL FROM */
	const char *ehlo_domain;
	bool ehlo_validated;          /* SPF pass for EHLO */
	const char *remote_ip;        /* masks as stored (store.md 3.1) */
};

enum store_rep_junk {
	STORE_REP_UNKNOWN,
	STORE_REP_HAM,
	STORE_REP_JUNK,
};

struct store_rep_result {
	enum store_rep_junk junk;
	bool conclusive;
	const char *method; /* static: "msgfromfull", "msgtofull",
			     * "msgfromdomain", "msgtodomain",
			     * "msgfromorgdomain", "msgtoorgdomain",
			     * "dkimspf", "ip1", "ip2", "ip3", "none" */
};

/* spec/junk.md 7 steps 1-6 for m at time now_ns: the first step that
 * finds matching data decides. Returns 0 with *out, or -1 with err on a
 * database failure. */
int store_reputation(struct store_account *a, const struct store_rep_msg *m,
    int64_t now_ns, struct store_rep_result *out, struct store_err *err);

#endif
