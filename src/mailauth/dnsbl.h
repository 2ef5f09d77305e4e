/*
 * dnsbl.h: DNS-based block lists (RFC 5782): lookups of an address in a
 * zone, the zone health check of RFC 5782 5, and a per-zone cache of the
 * health results.
 *
 * Thread rule: lookups from any thread, blocking on DNS (never on the
 * reactor). A struct dnsbl_health is shared by all threads (locked).
 */
#ifndef MAILAUTH_DNSBL_H
#define MAILAUTH_DNSBL_H

#include <stdbool.h>
#include <stdint.h>

struct dns_resolver;

#define DNSBL_HEALTH_TTL 14400 /* seconds a health result is kept */
#define DNSBL_HEALTH_ZONES_MAX 64
#define DNSBL_REASON_MAX 512   /* TXT reason kept, in bytes */

enum dnsbl_status {
	DNSBL_PASS,      /* not listed */
	DNSBL_FAIL,      /* listed */
	DNSBL_TEMPERROR, /* could not tell */
};

struct dnsbl_result {
	enum dnsbl_status status;
	char *name;        /* the name queried, owned; NULL if none */
	char *reason;      /* TXT text when listed (controls removed), or
			    * NULL; owned */
	const char *why;   /* static text on temperror, else NULL */
};

/* Look up ip (text, v4 or v6) in zone (RFC 5782 2.1, 2.4). Fills *res
 * (release with dnsbl_result_release()) and returns its status. */
enum dnsbl_status dnsbl_lookup(struct dns_resolver *r, const char *zone,
    const char *ip, struct dnsbl_result *res);
void dnsbl_result_release(struct dnsbl_result *res);
/* "pass", "fail", "temperror". */
const char *dnsbl_status_name(enum dnsbl_status s);

/* RFC 5782 5: 127.0.0.2 must be listed and 127.0.0.1 not. Returns
 * DNSBL_PASS (healthy), DNSBL_FAIL (unhealthy, *why says how) or
 * DNSBL_TEMPERROR (only temporary errors seen). */
enum dnsbl_status dnsbl_check_health(struct dns_resolver *r,
    const char *zone, const char **why);

struct dnsbl_health;
struct dnsbl_health *dnsbl_health_new(void);
void dnsbl_health_free(struct dnsbl_health *h);
/* Whether zone may be used: the cached health (DNSBL_HEALTH_TTL seconds
 * from now, unix seconds) or a fresh check. Temporary errors leave the
 * zone usable. Thread-safe; blocks on DNS when the cache has no entry. */
bool dnsbl_health_usable(struct dnsbl_health *h, struct dns_resolver *r,
    const char *zone, int64_t now);

#endif
