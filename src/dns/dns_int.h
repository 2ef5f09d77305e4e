/*
 * dns_int.h: what the files of src/dns share privately: the backend
 * operations behind struct dns_resolver, the answer cache and small name
 * helpers. Not for use outside src/dns (tests excepted).
 */
#ifndef DNS_DNS_INT_H
#define DNS_DNS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

struct dns_cache;

/* A backend answers one query for an absolute, lower-cased name (text with
 * the final dot). It fills *ans completely and returns ans->result; for a
 * cacheable answer it sets *ttl_out (seconds; for NOTFOUND the RFC 2308 5
 * negative TTL, 0 when unknown). Called from any thread. */
typedef enum dns_result dns_backend_query_fn(void *impl, const char *name,
    enum dns_type type, struct dns_answer *ans, uint32_t *ttl_out);
typedef void dns_backend_free_fn(void *impl);

struct dns_resolver {
	dns_backend_query_fn *query;
	dns_backend_free_fn *free;
	void *impl;               /* owned by the backend */
	struct dns_cache *cache;  /* NULL: no caching (the mock) */
	bool is_mock;
};

#define DNS_CACHE_TTL_MAX 86400u   /* positive answers, seconds */
#define DNS_CACHE_NEG_TTL_MAX 300u /* RFC 2308 5: negative, kept short */
#define DNS_CACHE_NEG_SHARE 8      /* at most max/8 negative entries */

/* A cache keyed by (name, type) with TTL expiry and LRU eviction; max
 * entries, at most max / DNS_CACHE_NEG_SHARE (and at least 1) of them
 * negative (DNS_NOTFOUND). Thread-safe: one internal leaf lock. */
struct dns_cache *dns_cache_new(size_t max);
void dns_cache_free(struct dns_cache *c);
/* If a live entry for (name, type) exists at time now (seconds, any
 * monotonic origin), fill *ans with a copy and return true. */
bool dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type,
    int64_t now, struct dns_answer *ans);
/* Store a copy of ans (DNS_OK or DNS_NOTFOUND only) valid for ttl seconds
 * from now; ttl 0 stores nothing. Replaces an existing entry. */
void dns_cache_put(struct dns_cache *c, const char *name, enum dns_type type,
    int64_t now, uint32_t ttl, const struct dns_answer *ans);
/* Number of entries held (live or not yet evicted). */
size_t dns_cache_count(struct dns_cache *c);

/* Deep copy of an answer into *dst (which is overwritten). */
void dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);
/* Set *ans to an empty answer with result r and static reason why. */
void dns_answer_init(struct dns_answer *ans, enum dns_result r,
    const char *why);
/* Append a record (fields copied; text duplicated). */
struct dns_rr *dns_answer_add(struct dns_answer *ans, enum dns_type type,
    uint32_t ttl, const char *text);
/* The same with text of len bytes (NUL bytes allowed). */
struct dns_rr *dns_answer_add_bytes(struct dns_answer *ans,
    enum dns_type type, uint32_t ttl, const char *p, size_t len);
void dns_answer_add_cname(struct dns_answer *ans, const char *name);

/* Normalize name to lower case, absolute form ("example.org."), checking
 * RFC 1035 2.3.4 lengths. Returns 0 or -1 with *why. out has room for
 * DNS_NAME_MAX + 2 bytes. */
int dns_name_absolute(const char *name, char *out, size_t outlen,
    const char **why);

#endif
