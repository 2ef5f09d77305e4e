/*
 * dns.h: the resolver interface (spec/auth.md section 1). Two
 * implementations: ldns over UDP with TCP fallback to the addresses from
 * /etc/resolv.conf or the config's DNSResolvers, and a table-driven mock
 * for tests. Every answer says whether it was DNSSEC-authenticated (AD bit
 * from a trusted resolver, RFC 6840 5.7). Names are always queried in
 * absolute form. A TTL-respecting cache, bounded in size, is shared by all
 * threads of a resolver.
 *
 * Thread rule: a struct dns_resolver is shared by all threads; lookups
 * block up to the resolver timeout, so never call them on the reactor.
 */
#ifndef DNS_DNS_H
#define DNS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define DNS_NAME_MAX 253  /* RFC 1035 2.3.4, text form without final dot */
#define DNS_LABEL_MAX 63  /* RFC 1035 2.3.4 */

/* RR types we look up (RFC 1035, 3596, 6698, 2782). */
enum dns_type {
	DNS_A = 1,
	DNS_NS = 2,
	DNS_CNAME = 5,
	DNS_PTR = 12,
	DNS_MX = 15,
	DNS_TXT = 16,
	DNS_AAAA = 28,
	DNS_SRV = 33,
	DNS_TLSA = 52,
};

/* Outcome of a lookup; distinguishes "not there" from "could not ask". */
enum dns_result {
	DNS_OK,        /* records found (n > 0) */
	DNS_NOTFOUND,  /* NXDOMAIN, or the name exists without records of the
			* type (NODATA); rr empty */
	DNS_TEMPERROR, /* SERVFAIL, timeout, network error: try again later */
	DNS_PERMERROR, /* invalid name, FORMERR/REFUSED/NOTIMP, bad answer */
};

/* One record of the answer section, for the asked type only (CNAMEs that
 * led there are in dns_answer.cname_chain). */
struct dns_rr {
	enum dns_type type;
	uint32_t ttl;
	/* A/AAAA: address text ("192.0.2.1", "2001:db8::1");
	 * MX: exchange host (no final dot), pref set; NS/PTR/CNAME: host;
	 * TXT: the character-strings joined without separator (RFC 7208 3.3);
	 * SRV: target host, pref = priority, weight, port;
	 * TLSA: text unused, usage/selector/mtype and data set. */
	char *text;
	size_t textlen;         /* bytes in text: a TXT may hold NUL bytes */
	uint16_t pref;
	uint16_t weight;
	uint16_t port;
	uint8_t usage, selector, mtype; /* TLSA (RFC 6698 2.1) */
	uint8_t *data;                  /* TLSA association data */
	size_t datalen;
};

struct dns_answer {
	enum dns_result result;
	bool authentic;          /* AD bit set by a trusted resolver */
	struct dns_rr *rr;       /* owned */
	size_t n;
	char **cname_chain;      /* names followed to reach the answer */
	size_t ncname;
	int ede;                 /* RFC 8914 extended error code, or -1 */
	const char *why;         /* static text for errors, NULL on DNS_OK */
};

struct dns_resolver;

struct dns_params {
	/* "ip:port", "ip" (port 53) or "[v6]:port"; empty: /etc/resolv.conf */
	const char *const *servers;
	size_t nservers;
	unsigned timeout_ms;     /* per query attempt; 0 = 5000 */
	unsigned attempts;       /* 0 = 2 */
	size_t cache_max;        /* entries; 0 = 10000 */
	/* Trust AD bits: "options trust-ad" in resolv.conf, or all servers
	 * on loopback (RFC 6698 A.3), or forced by this flag. */
	bool trust_ad;
};

/* A resolver talking to real servers (ldns). Returns NULL with err. */
struct dns_resolver *dns_resolver_new(const struct dns_params *p,
    struct buf *err);
/* A mock resolver with no records: add records with dns_mock_add(). Every
 * name not added answers NXDOMAIN. Thread-safe. */
struct dns_resolver *dns_mock_new(void);
/* Add a record to a mock: name without final dot, any case. text as in
 * struct dns_rr; for MX "10 mx.example.org", for TLSA "3 1 1 hexdata",
 * for SRV "prio weight port target". authentic marks the whole name. */
int dns_mock_add(struct dns_resolver *r, const char *name, enum dns_type type,
    const char *text, bool authentic);
/* Add a TXT record whose text may contain any byte, NUL included. */
int dns_mock_add_txt(struct dns_resolver *r, const char *name,
    const char *data, size_t len, bool authentic);
/* Make lookups of name (any type) fail with result (TEMPERROR: SERVFAIL
 * or timeout; PERMERROR). */
int dns_mock_fail(struct dns_resolver *r, const char *name,
    enum dns_result result);
/* Add a timeout marker to a mock (the SPF test suite's TIMEOUT entry):
 * a lookup of name that reaches the marker before any record of its type
 * answers DNS_TEMPERROR; records added before it are still answered. */
int dns_mock_add_timeout(struct dns_resolver *r, const char *name);
/* Number of queries a mock has answered (0 for a real resolver). */
size_t dns_mock_queries(struct dns_resolver *r);
/* Whether the resolver believes AD bits (always true for the mock). */
bool dns_resolver_trusts_ad(const struct dns_resolver *r);
/* NULL-safe. Call only when no other thread uses r any more. */
void dns_resolver_free(struct dns_resolver *r);

/* Look up name/type. Always fills *ans (release with dns_answer_release)
 * and returns its result. Blocks up to timeout x attempts. */
enum dns_result dns_lookup(struct dns_resolver *r, const char *name,
    enum dns_type type, struct dns_answer *ans);
/* Convenience: A and AAAA of name together (both lookups authentic for
 * authentic). DNS_OK when either had records (an error of the other is
 * then dropped), else the error of either, else DNS_NOTFOUND. */
enum dns_result dns_lookup_ips(struct dns_resolver *r, const char *name,
    struct dns_answer *ans);
/* PTR of an IP address text (in-addr.arpa / ip6.arpa built here). */
enum dns_result dns_lookup_ptr(struct dns_resolver *r, const char *ip,
    struct dns_answer *ans);
void dns_answer_release(struct dns_answer *ans);
/* The reversed labels of an IP address text without zone: "4.3.2.1" for
 * 1.2.3.4, 32 nibbles for IPv6 (RFC 3596 2.5). Sets *v6_out when given.
 * Returns 0, or -1 if ip is not an address or out is too small. Pure. */
int dns_ip_reverse(const char *ip, char *out, size_t outlen, bool *v6_out);

/* Whether name (final dot optional) can be queried: RFC 1035 2.3.4
 * lengths, no empty label, no control or non-ASCII bytes. Pure. */
bool dns_name_valid(const char *name);

const char *dns_type_name(enum dns_type t);
int dns_type_parse(const char *s, enum dns_type *out);
const char *dns_result_name(enum dns_result r);

#endif
