/*
 * iprev.h: the "iprev" check of RFC 8601 3: forward-confirmed reverse DNS
 * of the client address. The result struct is what the iprev method of
 * Authentication-Results and the Received header are built from.
 *
 * Thread rule: any thread; blocks on DNS, so never on the reactor.
 */
#ifndef MAILAUTH_IPREV_H
#define MAILAUTH_IPREV_H

#include <stdbool.h>
#include <stddef.h>

struct dns_resolver;

#define IPREV_NAMES_MAX 10 /* PTR names whose addresses we look up */

/* RFC 8601 2.7.3 results. */
enum iprev_status {
	IPREV_PASS,      /* a PTR name resolves back to the address */
	IPREV_FAIL,      /* names found, none resolves back */
	IPREV_TEMPERROR, /* DNS failure; may work later */
	IPREV_PERMERROR, /* no PTR record */
};

struct iprev_result {
	enum iprev_status status;
	char *ip;          /* the client address checked (policy.iprev) */
	char *name;        /* the verified name on pass, else the first PTR
			    * name, or NULL; no final dot; owned */
	char **names;      /* all PTR names, owned */
	size_t nnames;
	bool authentic;    /* every lookup was DNSSEC authenticated */
	const char *why;   /* static reason when not pass, else NULL */
};

/* Check ip (text). Fills *res (release with iprev_result_release()) and
 * returns its status. An invalid address gives IPREV_PERMERROR. */
enum iprev_status iprev_check(struct dns_resolver *r, const char *ip,
    struct iprev_result *res);
void iprev_result_release(struct iprev_result *res);
/* "pass", "fail", "temperror", "permerror". */
const char *iprev_status_name(enum iprev_status s);

#endif
