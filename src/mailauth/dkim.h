/*
 * dkim.h: DKIM signatures (RFC 6376) with rsa-sha256, rsa-sha1 (parsed and
 * reported, never accepted: RFC 8301 3.1) and ed25519-sha256 (RFC 8463):
 * signature and key record parsing, canonicalization, verification of
 * every signature of a message, and signing with PKCS#8 PEM keys.
 *
 * Parsers and canonicalization are pure. dkim_verify() looks up keys
 * through the resolver and so blocks; never call it on the reactor.
 * Any thread may call any function; a struct dkim_key may be shared by
 * threads once loaded (signing does not modify it).
 */
#ifndef MAILAUTH_DKIM_H
#define MAILAUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;
struct dns_resolver;
struct publicsuffix_list;

#define DKIM_SIGS_MAX 32         /* signatures evaluated per message */
#define DKIM_SIG_VALUE_MAX 65536 /* bytes of one DKIM-Signature value */
#define DKIM_HEADERS_MAX 1024    /* names in h= */
#define DKIM_RSA_MIN_BITS 1024   /* RFC 8301 3.2 */
#define DKIM_RSA_GEN_BITS 2048   /* keys we generate */
#define DKIM_ED25519_LEN 32      /* RFC 8463 4: raw public key */
#define DKIM_FOLD_WIDTH 78       /* RFC 5322 2.1.1 recommended line length */

/* Result of one signature, named as RFC 8601 2.7.1 names them. */
enum dkim_status {
	DKIM_NONE,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_POLICY,
	DKIM_NEUTRAL,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

enum dkim_keytype {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

enum dkim_hash {
	DKIM_HASH_SHA1,
	DKIM_HASH_SHA256,
};

/* A parsed DKIM-Signature (RFC 6376 3.5). Strings are owned, NUL
 * terminated; domain and selector are lower-cased. */
struct dkim_sig {
	char *algorithm;         /* a= as written, lower-cased */
	enum dkim_keytype keytype;
	enum dkim_hash hash;
	uint8_t *b;              /* decoded signature */
	size_t blen;
	char *b64;               /* b= without whitespace (for header.b) */
	uint8_t *bh;             /* decoded body hash */
	size_t bhlen;
	bool header_relaxed;     /* c= header part */
	bool body_relaxed;       /* c= body part */
	char *domain;            /* d= */
	char *selector;          /* s= */
	char **headers;          /* h=, as written; nheaders entries */
	size_t nheaders;
	char *identity;          /* i=, quoted-printable decoded; NULL if absent */
	int64_t length;          /* l=, or -1 */
	int64_t signed_at;       /* t=, unix seconds, or -1 */
	int64_t expires;         /* x=, unix seconds, or -1 */
};

struct dkim_pubkey; /* opaque: an imported public key */

/* A parsed key record (RFC 6376 3.6.1). */
struct dkim_record {
	enum dkim_keytype keytype;  /* k=, default rsa */
	bool hash_sha1_ok;          /* h= allows sha1 (default: all) */
	bool hash_sha256_ok;        /* h= allows sha256 */
	bool service_email;         /* s= includes "*" or "email" */
	bool testing;               /* t=y */
	bool strict;                /* t=s: i= domain must equal d= */
	bool revoked;               /* p= empty */
	unsigned bits;              /* RSA modulus size; 256 for ed25519 */
	struct dkim_pubkey *pub;    /* NULL when revoked */
};

/* Result of one signature of a message. */
struct dkim_result {
	enum dkim_status status;
	struct dkim_sig *sig;        /* NULL when the signature did not parse */
	struct dkim_record *record;  /* NULL when no usable record was found */
	bool record_authentic;       /* key lookup answered with DNSSEC */
	const char *why;             /* static reason; NULL on pass */
};

struct dkim_verify_opts {
	int64_t now;          /* unix seconds, for x= */
	/* Public suffix list for the d= check of RFC 6376 6.1.1 and
	 * spec section 4.2 step 4; NULL skips it. */
	const struct publicsuffix_list *psl;
	bool allow_length;    /* accept l= (the default policy does not) */
	bool allow_unsigned_subject; /* default policy requires Subject */
	bool allow_localhost; /* d=localhost (development mode) */
	/* time_mono_ns() after which signatures whose key was not looked
	 * up yet get temperror instead of a lookup; 0: no limit. */
	int64_t deadline_ns;
};

/* Status as RFC 8601 writes it ("pass", "permerror", ...). Static. */
const char *dkim_status_name(enum dkim_status s);

/* Parse the value of a DKIM-Signature field (folding kept). Returns 0 with
 * a new *out (dkim_sig_free()), or -1 with *why (static). */
int dkim_sig_parse(struct span value, struct dkim_sig **out, const char **why);
void dkim_sig_free(struct dkim_sig *s); /* NULL-safe */

/* Parse a key record TXT value. Returns 0 with a new *out
 * (dkim_record_free()), or -1 with *why. */
int dkim_record_parse(struct span txt, struct dkim_record **out,
    const char **why);
void dkim_record_free(struct dkim_record *r); /* NULL-safe */

/* Look up and parse the key record at <selector>._domainkey.<domain>
 * (spec section 4.1). Returns DKIM_PASS with a new *out, or
 * DKIM_PERMERROR/DKIM_TEMPERROR with *why. *authentic tells whether the
 * answer was DNSSEC-authenticated. Blocks on DNS. */
enum dkim_status dkim_lookup_record(struct dns_resolver *r,
    const char *selector, const char *domain, struct dkim_record **out,
    bool *authentic, const char **why);

/* Canonicalize a message body (RFC 6376 3.4.3, 3.4.4); input lines end in
 * CRLF. Appends to out; -1 when out hits its max. */
int dkim_canon_body(struct span body, bool relaxed, struct buf *out);
/* Canonicalize one header field (name, colon, value, final CRLF) (RFC
 * 6376 3.4.1, 3.4.2). Appends to out; -1 when out hits its max. */
int dkim_canon_header(struct span field, bool relaxed, struct buf *out);

/* Verify every DKIM-Signature of msg (at most DKIM_SIGS_MAX, top first).
 * Lines may end in LF or CRLF. Returns 0 with *results_out (free with
 * dkim_results_free()) holding *n_out results in header order (0 when
 * the message has no signature), or -1 with *why when the message
 * cannot be examined at all. Blocks on DNS. */
int dkim_verify(struct dns_resolver *r, const struct dkim_verify_opts *o,
    struct span msg, struct dkim_result **results_out, size_t *n_out,
    const char **why);
void dkim_results_free(struct dkim_result *res, size_t n); /* NULL-safe */

/* ---- signing (dkim_sign.c) ---- */

struct dkim_key; /* opaque private key */

/* Load a PKCS#8 (or PKCS#1 RSA) PEM private key. RSA keys below
 * DKIM_RSA_MIN_BITS are refused. Returns 0 with *out, or -1 with err. */
int dkim_key_load_pem(struct span pem, struct dkim_key **out,
    struct buf *err);
int dkim_key_load_file(const char *path, struct dkim_key **out,
    struct buf *err);
void dkim_key_free(struct dkim_key *k); /* NULL-safe; wipes the key */
enum dkim_keytype dkim_key_type(const struct dkim_key *k);
/* Generate a key (RSA DKIM_RSA_GEN_BITS or ed25519) and append it as a
 * PKCS#8 PEM to out. Returns 0, or -1 with err. */
int dkim_key_generate(enum dkim_keytype t, struct buf *out, struct buf *err);
/* Append the key record for k ("v=DKIM1;k=ed25519;p=...") to out. */
int dkim_key_txt(const struct dkim_key *k, struct buf *out, struct buf *err);

/* The header names signed by default (spec section 4.3). */
extern const char *const dkim_default_headers[];
extern const size_t dkim_default_nheaders;

/* One selector to sign with. */
struct dkim_sign_selector {
	const char *domain;        /* d=, ASCII */
	const char *selector;      /* s=, ASCII */
	const struct dkim_key *key;
	enum dkim_hash hash;       /* sha1 only with RSA */
	bool header_relaxed;
	bool body_relaxed;
	const char *const *headers; /* NULL: dkim_default_headers */
	size_t nheaders;
	bool oversign;             /* list each name once more than present */
	int64_t expiration;        /* seconds after t= for x=; 0: no x= */
};

/* Sign msg (lines LF or CRLF) with each selector in order, appending one
 * complete DKIM-Signature field per selector (folded, CRLF line ends) to
 * out; the caller prepends out to the message. identity (i=) may be
 * NULL. Requires exactly one From field. Returns 0, or -1 with *why. */
int dkim_sign(const struct dkim_sign_selector *sels, size_t n,
    const char *identity, int64_t now, struct span msg, struct buf *out,
    const char **why);

#endif
