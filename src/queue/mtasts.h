/*
 * mtasts.h: SMTP MTA Strict Transport Security (RFC 8461; spec/queue.md
 * 5.2 and 5.9): the _mta-sts TXT record and policy parsers (pure), the
 * policy fetch over HTTPS (libcurl), and the policy cache in
 * <datadir>/mtasts.db with the lookup used during delivery and the
 * periodic refresher.
 *
 * Thread rule: parsers are pure (any thread). Fetch, lookup and refresh
 * block (DNS, HTTPS, SQLite): delivery threads only, never the reactor.
 * A struct mtasts_cache is immutable after mtasts_cache_open() and may be
 * shared; every call opens its own SQLite connection.
 */
#ifndef QUEUE_MTASTS_H
#define QUEUE_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;
struct dns_resolver;

#define MTASTS_ID_MAX 32            /* RFC 8461 3.1: id = 1*32(ALPHA / DIGIT) */
#define MTASTS_EXT_NAME_MAX 32      /* RFC 8461 3.1: sts-ext-name */
#define MTASTS_RECORD_MAX 4096      /* TXT text we look at; longer: invalid */
#define MTASTS_POLICY_MAX 65536     /* RFC 8461 3.3: at most 64 KiB */
#define MTASTS_MAX_AGE_DIGITS 10    /* RFC 8461 3.2: max_age 1*10DIGIT */
#define MTASTS_MX_PATTERN_MAX 253   /* RFC 1035 2.3.4 */
#define MTASTS_FETCH_TIMEOUT_MS 60000 /* spec 5.9: 1 minute */
#define MTASTS_BACKOFF_SECS 300     /* RFC 8461 3.3: no refetch for 5 min */
#define MTASTS_UNUSED_DELETE_SECS (180 * 86400) /* spec 5.9 refresher */
#define MTASTS_REFRESH_AFTER_SECS (12 * 3600)   /* spec 5.9 refresher */

enum mtasts_mode {
	MTASTS_MODE_NONE,
	MTASTS_MODE_TESTING,
	MTASTS_MODE_ENFORCE,
};

/* A parsed "v=STSv1; id=...;" record (RFC 8461 3.1). */
struct mtasts_record {
	char id[MTASTS_ID_MAX + 1];
	char **ext;  /* other "name=value" fields as text, owned */
	size_t next;
};

/* A parsed policy (RFC 8461 3.2). Strings owned, lowercase mx. */
struct mtasts_policy {
	enum mtasts_mode mode;
	uint64_t max_age; /* seconds */
	char **mx;        /* patterns: "mx.example.org" or "*.example.org" */
	size_t nmx;
	char **ext;       /* unknown "key: value" lines as text */
	size_t next;
};

/* Parse one TXT record. Returns 0 for a valid STSv1 record, -1 with *why
 * (static) otherwise; *why is "not an sts record" when the text does not
 * start with v=STSv1 (the caller ignores such records). Keys are case
 * sensitive (spec 5.9). Release *out with mtasts_record_release(). Pure. */
int mtasts_record_parse(struct span txt, struct mtasts_record *out,
    const char **why);
void mtasts_record_release(struct mtasts_record *r);

/* Parse a policy body of at most MTASTS_POLICY_MAX bytes: lines "key:
 * value" ended by LF or CRLF; version, mode, max_age required, mx lines
 * required unless mode is none; for duplicate keys other than mx the
 * first wins. Returns 0 or -1 with *why (static); on success release
 * *out with mtasts_policy_release(). Pure. */
int mtasts_policy_parse(struct span text, struct mtasts_policy *out,
    const char **why);
void mtasts_policy_release(struct mtasts_policy *p);
const char *mtasts_mode_name(enum mtasts_mode m);

/* Whether host (no final dot, any case) matches one of the policy's mx
 * patterns: exact, or "*.d" matching exactly one label before d
 * (RFC 8461 4.1). Pure. */
bool mtasts_policy_match_mx(const struct mtasts_policy *p, const char *host);

/* How the HTTPS fetch is done. Tests point the policy host elsewhere. */
struct mtasts_fetch_params {
	const char *ca_file;    /* PEM roots instead of the system's (tests) */
	/* CURLOPT_CONNECT_TO entry "HOST:PORT:ADDR:PORT" (empty HOST/PORT
	 * match any), e.g. "::127.0.0.16:8443"; NULL: connect normally. */
	const char *connect_to;
	unsigned timeout_ms;    /* 0 = MTASTS_FETCH_TIMEOUT_MS */
};

enum mtasts_fetch_result {
	MTASTS_FETCH_OK,       /* body holds a syntactically valid policy */
	MTASTS_FETCH_NOPOLICY, /* 404, or the host does not resolve */
	MTASTS_FETCH_ERROR,    /* network, status, type, size, timeout */
	MTASTS_FETCH_WEBPKI,   /* certificate verification failed */
	MTASTS_FETCH_INVALID,  /* policy syntax error */
};

/* Fetch https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 3.3):
 * WebPKI-verified, no redirects, content type text/plain, status 200, at
 * most MTASTS_POLICY_MAX bytes. On OK the body is appended to body_out
 * and *pol (release it) filled. *why gets a static reason for other
 * results. Blocks up to the timeout. */
enum mtasts_fetch_result mtasts_fetch(const char *domain,
    const struct mtasts_fetch_params *fp, struct buf *body_out,
    struct mtasts_policy *pol, const char **why);

struct mtasts_cache; /* opaque; the path of <datadir>/mtasts.db */

/* Open (create) <datadir>/mtasts.db. Returns NULL with the reason in err.
 * Blocking (disk). Free with mtasts_cache_free() (NULL-safe). */
struct mtasts_cache *mtasts_cache_open(const char *datadir, struct buf *err);
void mtasts_cache_free(struct mtasts_cache *c);

enum mtasts_status {
	MTASTS_NONE,      /* no policy applies (none found, or backoff) */
	MTASTS_POLICY,    /* policy is set */
	MTASTS_TEMPERROR, /* DNS temporary error without a cached policy */
};

/* The outcome of mtasts_lookup(), with what TLS reports need. */
struct mtasts_lookup {
	enum mtasts_status status;
	struct mtasts_policy policy; /* MTASTS_POLICY only */
	char *policy_text;           /* raw policy, MTASTS_POLICY only */
	/* TLS report failure (spec 5.7) or NULL: "sts-policy-fetch-error",
	 * "sts-policy-invalid", "sts-webpki-invalid",
	 * "back-off-after-recent-fetch-error". */
	const char *report_result;
	bool fallback_cached;        /* a cached policy was used after an
				      * error: append +fallback-to-cached-policy */
	const char *why;             /* static detail for logs, or NULL */
};

/* Find the policy for the original recipient domain (ASCII, no final
 * dot) per spec 5.9, at time now (unix seconds): cached entry checked
 * against the TXT id, else TXT lookup and fetch; stores what it fetched
 * and 5-minute backoff placeholders. Returns 0 with *out filled (release
 * with mtasts_lookup_release()), or -1 with err set when the cache
 * database fails. Blocks (DNS, HTTPS, SQLite). */
int mtasts_lookup(struct mtasts_cache *c, struct dns_resolver *r,
    const char *domain, const struct mtasts_fetch_params *fp, int64_t now,
    struct mtasts_lookup *out, struct buf *err);
void mtasts_lookup_release(struct mtasts_lookup *l);

/* One refresher pass (spec 5.9): delete entries unused for 180 days;
 * refresh at most max entries not updated for 12 hours, in random order.
 * The caller runs it every 24 h (spreading calls over hours if it wants
 * the jitter) and sets *nrefreshed_out. Returns 0 or -1 with err. */
int mtasts_refresh(struct mtasts_cache *c, struct dns_resolver *r,
    const struct mtasts_fetch_params *fp, int64_t now, size_t max,
    size_t *nrefreshed_out, struct buf *err);

#endif
