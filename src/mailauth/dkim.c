/*
 * dkim.c: DKIM verification (RFC 6376 3.2, 3.4, 3.5, 3.6, 6; RFC 8301;
 * RFC 8463): tag lists, DKIM-Signature and key record parsing,
 * canonicalization, key lookup and the per-signature checks of spec
 * auth.md section 4.2.
 *
 * Trust boundary: the message and the key records come from strangers;
 * every length is bounded (DKIM_* limits in dkim.h) and every tag value is
 * validated before use. Parsers and canonicalization are pure; lookups
 * block on DNS. Any thread except the reactor.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_int.h"
#include "mailauth/publicsuffix.h"
#include "message/message.h"
#include "lib/banned.h"

#define TAGS_MAX 64 /* tags in one tag list; more is hostile */

struct dkim_pubkey {
	gnutls_pubkey_t k;
};

/* One tag of a tag-list (RFC 6376 3.2). Offsets are into the input. */
struct tag {
	struct span name;
	struct span value; /* FWS around the value removed */
	size_t raw_start;  /* just after "=" */
	size_t raw_end;    /* at ";" or the end */
};

const char *
dkim_status_name(enum dkim_status s)
{
	switch (s) {
	case DKIM_NONE:
		return "none";
	case DKIM_PASS:
		return "pass";
	case DKIM_FAIL:
		return "fail";
	case DKIM_POLICY:
		return "policy";
	case DKIM_NEUTRAL:
		return "neutral";
	case DKIM_TEMPERROR:
		return "temperror";
	case DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

static bool
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static bool
is_tagname_char(int c)
{
	return char_is_alnum(c) || c == '_';
}

static struct span
trim_fws(struct span s)
{
	while (s.len > 0 && is_fws((unsigned char)s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_fws((unsigned char)s.p[s.len - 1]))
		s.len--;
	return s;
}

/* RFC 6376 3.2: tag-list = tag-spec *( ";" tag-spec ) [ ";" ]; tag names
 * are case-sensitive and may not repeat. */
static int
tags_parse(struct span in, struct tag *tags, size_t *n_out, const char **why)
{
	size_t i = 0, n = 0;

	for (;;) {
		size_t start, eq;
		struct tag t;

		while (i < in.len && is_fws((unsigned char)in.p[i]))
			i++;
		if (i == in.len)
			break;
		start = i;
		if (!char_is_alpha((unsigned char)in.p[i])) {
			*why = "tag name must start with a letter";
			return -1;
		}
		while (i < in.len && is_tagname_char((unsigned char)in.p[i]))
			i++;
		t.name = span_of(in.p + start, i - start);
		while (i < in.len && is_fws((unsigned char)in.p[i]))
			i++;
		if (i == in.len || in.p[i] != '=') {
			*why = "expected \"=\" after tag name";
			return -1;
		}
		eq = ++i;
		while (i < in.len && in.p[i] != ';')
			i++;
		t.raw_start = eq;
		t.raw_end = i;
		t.value = trim_fws(span_of(in.p + eq, i - eq));
		for (size_t j = 0; j < n; j++) {
			if (span_eq(tags[j].name, t.name)) {
				*why = "duplicate tag";
				return -1;
			}
		}
		if (n == TAGS_MAX) {
			*why = "too many tags";
			return -1;
		}
		tags[n++] = t;
		if (i < in.len)
			i++; /* the ";" */
	}
	*n_out = n;
	return 0;
}

int
dkim_b64_decode(struct span in, uint8_t **out, size_t *n_out)
{
	struct base64_decode_ctx ctx;
	uint8_t *p = xmalloc(BASE64_DECODE_LENGTH(in.len) + 1);
	size_t n = BASE64_DECODE_LENGTH(in.len) + 1;

	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, p, in.len, in.p) ||
	    !base64_decode_final(&ctx)) {
		free(p);
		return -1;
	}
	*out = p;
	*n_out = n;
	return 0;
}

int
dkim_b64_encode(const uint8_t *p, size_t n, struct buf *out)
{
	char *dst = buf_reserve(out, BASE64_ENCODE_RAW_LENGTH(n) + 1);

	if (dst == NULL)
		return -1;
	base64_encode_raw(dst, n, p);
	buf_commit(out, BASE64_ENCODE_RAW_LENGTH(n));
	return 0;
}

size_t
dkim_digest(enum dkim_hash h, const void *data, size_t len, uint8_t *dig)
{
	if (h == DKIM_HASH_SHA1) {
		struct sha1_ctx c;

		sha1_init(&c);
		sha1_update(&c, len, data);
		sha1_digest(&c, SHA1_DIGEST_SIZE, dig);
		return SHA1_DIGEST_SIZE;
	}
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, len, data);
	sha256_digest(&c, SHA256_DIGEST_SIZE, dig);
	return SHA256_DIGEST_SIZE;
}

/* Base64 text without FWS. */
static char *
b64_compact(struct span v)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	for (size_t i = 0; i < v.len; i++)
		if (!is_fws((unsigned char)v.p[i]))
			buf_addc(&b, v.p[i]);
	return buf_take(&b);
}

static char *
lower_dup(struct span v)
{
	char *s = span_dup(v);

	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 6376 2.11: dkim-quoted-printable; FWS is dropped. */
static int
qp_decode(struct span v, char **out)
{
	struct buf b;

	buf_init(&b, v.len + 1);
	for (size_t i = 0; i < v.len; i++) {
		int c = (unsigned char)v.p[i];

		if (is_fws(c))
			continue;
		if (c == '=') {
			if (i + 2 >= v.len)
				goto bad;
			int h = hexval((unsigned char)v.p[i + 1]);
			int l = hexval((unsigned char)v.p[i + 2]);

			if (h < 0 || l < 0)
				goto bad;
			c = h * 16 + l;
			i += 2;
		}
		if (c == '\0')
			goto bad;
		buf_addc(&b, (char)c);
	}
	*out = buf_take(&b);
	return 0;
bad:
	buf_release(&b);
	return -1;
}

/* Split a colon-separated list, trimming FWS of each item. Calls fn for
 * each; returns -1 when fn does or an item is empty. */
typedef int colon_fn(struct span item, void *arg);

static int
colon_walk(struct span v, colon_fn *fn, void *arg)
{
	size_t start = 0;

	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.p[i] != ':')
			continue;
		struct span item = trim_fws(span_of(v.p + start, i - start));

		if (item.len == 0 || fn(item, arg) == -1)
			return -1;
		start = i + 1;
	}
	return 0;
}

static int
add_header_name(struct span item, void *arg)
{
	struct dkim_sig *s = arg;

	if (s->nheaders == DKIM_HEADERS_MAX)
		return -1;
	for (size_t i = 0; i < item.len; i++) {
		int c = (unsigned char)item.p[i];

		/* RFC 5322 2.2: field names are printable ASCII but ":" */
		if (c < 33 || c > 126)
			return -1;
	}
	s->headers = xreallocarray(s->headers, s->nheaders + 1,
	    sizeof(*s->headers));
	s->headers[s->nheaders++] = span_dup(item);
	return 0;
}

static int
find_dns_txt(struct span item, void *arg)
{
	bool *found = arg;

	if (span_eq_ci(item, "dns/txt"))
		*found = true;
	return 0;
}

static bool
domain_is_or_under(const char *sub, const char *dom)
{
	size_t ls = strlen(sub), ld = strlen(dom);

	if (ls == ld)
		return strcasecmp(sub, dom) == 0;
	return ls > ld && sub[ls - ld - 1] == '.' &&
	    strcasecmp(sub + ls - ld, dom) == 0;
}

static int
parse_time(struct span v, int64_t *out)
{
	/* RFC 6376 3.5: t= and x= are at most 12 digits */
	if (v.len > 12)
		return -1;
	return span_i64(v, 0, INT64_MAX, out);
}

void
dkim_sig_free(struct dkim_sig *s)
{
	if (s == NULL)
		return;
	free(s->algorithm);
	free(s->b);
	free(s->b64);
	free(s->bh);
	free(s->domain);
	free(s->selector);
	for (size_t i = 0; i < s->nheaders; i++)
		free(s->headers[i]);
	free(s->headers);
	free(s->identity);
	free(s);
}

static int
sig_tag(struct dkim_sig *s, const struct tag *t, const char **why)
{
	struct span v = t->value;

	if (span_eq_cstr(t->name, "v")) {
		if (!span_eq_cstr(v, "1")) {
			*why = "unsupported signature version";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "a")) {
		s->algorithm = lower_dup(v);
		if (strcmp(s->algorithm, "rsa-sha256") == 0) {
			s->keytype = DKIM_KEY_RSA;
			s->hash = DKIM_HASH_SHA256;
		} else if (strcmp(s->algorithm, "rsa-sha1") == 0) {
			s->keytype = DKIM_KEY_RSA;
			s->hash = DKIM_HASH_SHA1;
		} else if (strcmp(s->algorithm, "ed25519-sha256") == 0) {
			s->keytype = DKIM_KEY_ED25519;
			s->hash = DKIM_HASH_SHA256;
		} else {
			*why = "unsupported signature algorithm";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "b")) {
		s->b64 = b64_compact(v);
		if (dkim_b64_decode(span_of_cstr(s->b64), &s->b, &s->blen) ==
		    -1 || s->blen == 0) {
			*why = "invalid b= signature data";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "bh")) {
		if (dkim_b64_decode(v, &s->bh, &s->bhlen) == -1) {
			*why = "invalid bh= body hash";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "c")) {
		struct span h = v, b = span_of_cstr("simple");
		const char *slash = memchr(v.p, '/', v.len);

		if (slash != NULL) {
			h = span_of(v.p, (size_t)(slash - v.p));
			b = span_of(slash + 1, v.len - h.len - 1);
		}
		if ((!span_eq_ci(h, "simple") && !span_eq_ci(h, "relaxed")) ||
		    (!span_eq_ci(b, "simple") && !span_eq_ci(b, "relaxed"))) {
			*why = "unsupported canonicalization";
			return -1;
		}
		s->header_relaxed = span_eq_ci(h, "relaxed");
		s->body_relaxed = span_eq_ci(b, "relaxed");
	} else if (span_eq_cstr(t->name, "d")) {
		if (v.len == 0 || v.len > DNS_NAME_MAX) {
			*why = "invalid d= domain";
			return -1;
		}
		s->domain = lower_dup(v);
	} else if (span_eq_cstr(t->name, "h")) {
		if (colon_walk(v, add_header_name, s) == -1) {
			*why = "invalid h= header list";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "i")) {
		if (qp_decode(v, &s->identity) == -1 ||
		    strchr(s->identity, '@') == NULL) {
			*why = "invalid i= identity";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "l")) {
		uint64_t l;

		/* RFC 6376 3.5: l= is at most 76 digits; we need int64 */
		if (span_u64(v, INT64_MAX, &l) == -1) {
			*why = "invalid l= body length";
			return -1;
		}
		s->length = (int64_t)l;
	} else if (span_eq_cstr(t->name, "q")) {
		bool found = false;

		if (colon_walk(v, find_dns_txt, &found) == -1 || !found) {
			*why = "q= does not include dns/txt";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "s")) {
		if (v.len == 0 || v.len > DNS_NAME_MAX) {
			*why = "invalid s= selector";
			return -1;
		}
		s->selector = lower_dup(v);
	} else if (span_eq_cstr(t->name, "t")) {
		if (parse_time(v, &s->signed_at) == -1) {
			*why = "invalid t= timestamp";
			return -1;
		}
	} else if (span_eq_cstr(t->name, "x")) {
		if (parse_time(v, &s->expires) == -1) {
			*why = "invalid x= expiration";
			return -1;
		}
	}
	/* other tags, z= included, are ignored (RFC 6376 3.2) */
	return 0;
}

/* RFC 6376 3.5: the DKIM-Signature tags. */
int
dkim_sig_parse(struct span value, struct dkim_sig **out, const char **why)
{
	struct tag tags[TAGS_MAX];
	struct dkim_sig *s;
	bool seen_v = false;
	size_t n;

	if (value.len > DKIM_SIG_VALUE_MAX) {
		*why = "signature header too long";
		return -1;
	}
	if (tags_parse(value, tags, &n, why) == -1)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->length = -1;
	s->signed_at = -1;
	s->expires = -1;
	for (size_t i = 0; i < n; i++) {
		if (span_eq_cstr(tags[i].name, "v"))
			seen_v = true;
		if (sig_tag(s, &tags[i], why) == -1)
			goto bad;
	}
	/* RFC 6376 3.5: v, a, b, bh, d, h and s are required */
	if (!seen_v || s->algorithm == NULL || s->b == NULL || s->bh == NULL ||
	    s->domain == NULL || s->nheaders == 0 || s->selector == NULL) {
		*why = "missing required tag";
		goto bad;
	}
	if (s->bhlen != (s->hash == DKIM_HASH_SHA1 ? SHA1_DIGEST_SIZE :
	    SHA256_DIGEST_SIZE)) {
		*why = "bh= length does not match hash";
		goto bad;
	}
	if (s->signed_at >= 0 && s->expires >= 0 && s->expires < s->signed_at) {
		*why = "x= is before t=";
		goto bad;
	}
	if (s->identity != NULL &&
	    !domain_is_or_under(strchr(s->identity, '@') + 1, s->domain)) {
		/* RFC 6376 3.5: i= domain must be d= or a subdomain */
		*why = "i= domain not under d=";
		goto bad;
	}
	*out = s;
	return 0;
bad:
	dkim_sig_free(s);
	return -1;
}

void
dkim_record_free(struct dkim_record *r)
{
	if (r == NULL)
		return;
	if (r->pub != NULL) {
		gnutls_pubkey_deinit(r->pub->k);
		free(r->pub);
	}
	free(r);
}

static int
set_hash_flag(struct span item, void *arg)
{
	struct dkim_record *r = arg;

	if (span_eq_cstr(item, "sha1"))
		r->hash_sha1_ok = true;
	else if (span_eq_cstr(item, "sha256"))
		r->hash_sha256_ok = true;
	return 0; /* unknown hashes are ignored (RFC 6376 3.6.1) */
}

static int
set_service(struct span item, void *arg)
{
	struct dkim_record *r = arg;

	if (span_eq_cstr(item, "*") || span_eq_cstr(item, "email"))
		r->service_email = true;
	return 0;
}

static int
set_flag(struct span item, void *arg)
{
	struct dkim_record *r = arg;

	if (span_eq_cstr(item, "y"))
		r->testing = true;
	else if (span_eq_cstr(item, "s"))
		r->strict = true;
	return 0; /* unknown flags are ignored */
}

/* DER prefix that wraps a PKCS#1 RSAPublicKey of n bytes into a
 * SubjectPublicKeyInfo (RFC 3279 2.3.1, RFC 5280 4.1). */
static int
wrap_pkcs1(const uint8_t *key, size_t n, struct buf *out)
{
	static const uint8_t algid[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86,
		0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00 };
	size_t bitlen = n + 1, seqlen;
	uint8_t hdr[8];

	if (n > 0xfff0)
		return -1;
	seqlen = sizeof(algid) + 4 + bitlen;
	hdr[0] = 0x30;
	hdr[1] = 0x82;
	hdr[2] = (uint8_t)(seqlen >> 8);
	hdr[3] = (uint8_t)seqlen;
	buf_add(out, hdr, 4);
	buf_add(out, algid, sizeof(algid));
	hdr[0] = 0x03;
	hdr[1] = 0x82;
	hdr[2] = (uint8_t)(bitlen >> 8);
	hdr[3] = (uint8_t)bitlen;
	hdr[4] = 0; /* unused bits */
	buf_add(out, hdr, 5);
	buf_add(out, key, n);
	return buf_failed(out) ? -1 : 0;
}

static int
import_key(struct dkim_record *r, const uint8_t *key, size_t n,
    const char **why)
{
	gnutls_pubkey_t k = NULL;
	gnutls_datum_t d = { (unsigned char *)key, (unsigned)n };
	unsigned bits = 0;
	struct buf wrapped;
	int rc = -1;

	buf_init(&wrapped, 1 << 16);
	if (gnutls_pubkey_init(&k) < 0) {
		*why = "cannot allocate public key";
		goto out;
	}
	if (r->keytype == DKIM_KEY_ED25519) {
		/* RFC 8463 4.2: p= is the raw 32-byte public key */
		if (n != DKIM_ED25519_LEN) {
			*why = "ed25519 public key has invalid length";
			goto out;
		}
		if (gnutls_pubkey_import_ecc_raw(k, GNUTLS_ECC_CURVE_ED25519,
		    &d, NULL) < 0) {
			*why = "invalid ed25519 public key";
			goto out;
		}
		r->bits = 256;
	} else {
		/* RFC 6376 3.6.1 names RSAPublicKey but signers publish
		 * SubjectPublicKeyInfo; both are accepted. */
		if (gnutls_pubkey_import(k, &d, GNUTLS_X509_FMT_DER) < 0) {
			gnutls_datum_t w;

			if (wrap_pkcs1(key, n, &wrapped) == -1)
				goto bad;
			w.data = (unsigned char *)wrapped.data;
			w.size = (unsigned)wrapped.len;
			if (gnutls_pubkey_import(k, &w, GNUTLS_X509_FMT_DER) <
			    0)
				goto bad;
		}
		if (gnutls_pubkey_get_pk_algorithm(k, &bits) != GNUTLS_PK_RSA)
			goto bad;
		r->bits = bits;
	}
	r->pub = xcalloc(1, sizeof(*r->pub));
	r->pub->k = k;
	k = NULL;
	rc = 0;
	goto out;
bad:
	*why = "invalid rsa public key";
out:
	if (k != NULL)
		gnutls_pubkey_deinit(k);
	buf_release(&wrapped);
	return rc;
}

/* RFC 6376 3.6.1: the key record tags. */
int
dkim_record_parse(struct span txt, struct dkim_record **out, const char **why)
{
	struct tag tags[TAGS_MAX];
	struct dkim_record *r;
	const struct tag *p = NULL;
	uint8_t *key = NULL;
	size_t n, keylen = 0;

	if (tags_parse(txt, tags, &n, why) == -1)
		return -1;
	r = xcalloc(1, sizeof(*r));
	r->keytype = DKIM_KEY_RSA;
	r->hash_sha1_ok = r->hash_sha256_ok = true;
	r->service_email = true;
	for (size_t i = 0; i < n; i++) {
		struct span name = tags[i].name, v = tags[i].value;

		if (span_eq_cstr(name, "v")) {
			/* RFC 6376 3.6.1: if present, first and "DKIM1" */
			if (i != 0 || !span_eq_cstr(v, "DKIM1")) {
				*why = "unsupported key record version";
				goto bad;
			}
		} else if (span_eq_cstr(name, "h")) {
			r->hash_sha1_ok = r->hash_sha256_ok = false;
			if (colon_walk(v, set_hash_flag, r) == -1) {
				*why = "invalid h= in key record";
				goto bad;
			}
		} else if (span_eq_cstr(name, "k")) {
			if (span_eq_cstr(v, "rsa"))
				r->keytype = DKIM_KEY_RSA;
			else if (span_eq_cstr(v, "ed25519"))
				r->keytype = DKIM_KEY_ED25519;
			else {
				*why = "unsupported key type";
				goto bad;
			}
		} else if (span_eq_cstr(name, "p")) {
			p = &tags[i];
		} else if (span_eq_cstr(name, "s")) {
			r->service_email = false;
			if (colon_walk(v, set_service, r) == -1) {
				*why = "invalid s= in key record";
				goto bad;
			}
		} else if (span_eq_cstr(name, "t")) {
			if (colon_walk(v, set_flag, r) == -1) {
				*why = "invalid t= in key record";
				goto bad;
			}
		}
	}
	if (p == NULL) {
		*why = "key record without p=";
		goto bad;
	}
	if (dkim_b64_decode(p->value, &key, &keylen) == -1) {
		*why = "invalid base64 in p=";
		goto bad;
	}
	if (keylen == 0)
		r->revoked = true; /* RFC 6376 3.6.1: empty p= */
	else if (import_key(r, key, keylen, why) == -1)
		goto bad;
	free(key);
	*out = r;
	return 0;
bad:
	free(key);
	dkim_record_free(r);
	return -1;
}

/* Whether an invalid TXT at the key name still looks like a key record:
 * empty, starts with v=, or has a p= tag. */
static bool
looks_like_key(struct span txt)
{
	struct span t = trim_fws(txt);

	if (t.len == 0 || span_has_prefix_ci(t, "v="))
		return true;
	for (size_t i = 0; i + 1 < t.len; i++) {
		if (t.p[i] == 'p' && (i == 0 || t.p[i - 1] == ';' ||
		    is_fws((unsigned char)t.p[i - 1]))) {
			size_t j = i + 1;

			while (j < t.len && is_fws((unsigned char)t.p[j]))
				j++;
			if (j < t.len && t.p[j] == '=')
				return true;
		}
	}
	return false;
}

/* Spec auth.md 4.1 and RFC 6376 6.1.2. */
enum dkim_status
dkim_lookup_record(struct dns_resolver *res, const char *selector,
    const char *domain, struct dkim_record **out, bool *authentic,
    const char **why)
{
	struct dns_answer ans;
	struct dkim_record *found = NULL;
	enum dkim_status st = DKIM_TEMPERROR;
	const char *bad = NULL;
	struct buf name;

	*authentic = false;
	buf_init(&name, DNS_NAME_MAX + 1);
	buf_addf(&name, "%s._domainkey.%s", selector, domain);
	if (buf_failed(&name)) {
		buf_release(&name);
		*why = "key record name too long";
		return DKIM_PERMERROR;
	}
	memset(&ans, 0, sizeof(ans));
	switch (dns_lookup(res, name.data, DNS_TXT, &ans)) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		/* RFC 6376 6.1.2: no key record is a permanent failure */
		*authentic = ans.authentic;
		*why = "no key record";
		st = DKIM_PERMERROR;
		goto out;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		*why = "dns error looking up key record";
		st = DKIM_TEMPERROR;
		goto out;
	}
	*authentic = ans.authentic;
	for (size_t i = 0; i < ans.n; i++) {
		struct span txt = span_of_cstr(ans.rr[i].text);
		struct dkim_record *r = NULL;
		const char *w = NULL;

		if (dkim_record_parse(txt, &r, &w) == -1) {
			if (looks_like_key(txt))
				bad = w != NULL ? w : "invalid key record";
			continue;
		}
		if (found != NULL) {
			dkim_record_free(r);
			dkim_record_free(found);
			found = NULL;
			*why = "multiple key records";
			st = DKIM_TEMPERROR;
			goto out;
		}
		found = r;
	}
	if (found != NULL) {
		*out = found;
		found = NULL;
		st = DKIM_PASS;
	} else if (bad != NULL) {
		*why = bad; /* a record claiming to be a key but invalid */
		st = DKIM_PERMERROR;
	} else {
		*why = "no dkim key record among txt records";
		st = DKIM_TEMPERROR;
	}
out:
	dns_answer_release(&ans);
	buf_release(&name);
	return st;
}

int
dkim_crlf(struct span msg, struct buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < msg.len; i++) {
		if (msg.p[i] != '\n' || (i > 0 && msg.p[i - 1] == '\r'))
			continue;
		buf_add(out, msg.p + start, i - start);
		buf_add(out, "\r\n", 2);
		start = i + 1;
	}
	buf_add(out, msg.p + start, msg.len - start);
	return buf_failed(out) ? -1 : 0;
}

int
dkim_hlist_parse(struct span msg, struct dkim_hlist *out,
    struct span *body_out, const char **why)
{
	size_t hlen = message_header_len(msg);
	struct message_header_iter it;
	struct message_field f;
	int rc;

	out->v = NULL;
	out->n = 0;
	message_header_iter_init(&it, span_of(msg.p, hlen));
	while ((rc = message_header_next(&it, &f, why)) == 1) {
		struct span name = f.name;

		if (f.field.len == 0 || memchr(f.field.p, ':',
		    f.field.len) == NULL)
			continue;
		while (name.len > 0 && is_wsp((unsigned char)name.p[name.len - 1]))
			name.len--;
		out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
		out->v[out->n].name = name;
		out->v[out->n].field = f.field;
		out->v[out->n].used = false;
		out->n++;
	}
	if (rc == -1) {
		dkim_hlist_release(out);
		return -1;
	}
	*body_out = span_of(msg.p + hlen, msg.len - hlen);
	return 0;
}

void
dkim_hlist_release(struct dkim_hlist *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* RFC 6376 3.4.2: relaxed header canonicalization. */
int
dkim_canon_header(struct span field, bool relaxed, struct buf *out)
{
	const char *colon;
	struct span name, value;
	bool sp = false, any = false;

	if (!relaxed) {
		buf_add(out, field.p, field.len);
		if (field.len < 2 || field.p[field.len - 2] != '\r' ||
		    field.p[field.len - 1] != '\n')
			buf_add(out, "\r\n", 2);
		return buf_failed(out) ? -1 : 0;
	}
	colon = memchr(field.p, ':', field.len);
	if (colon == NULL)
		colon = field.p + field.len;
	name = span_of(field.p, (size_t)(colon - field.p));
	while (name.len > 0 && is_fws((unsigned char)name.p[name.len - 1]))
		name.len--;
	for (size_t i = 0; i < name.len; i++) {
		char c = name.p[i];

		buf_addc(out, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
	}
	buf_addc(out, ':');
	value = span_of("", 0);
	if (colon < field.p + field.len)
		value = span_of(colon + 1,
		    (size_t)(field.p + field.len - colon) - 1);
	for (size_t i = 0; i < value.len; i++) {
		int c = (unsigned char)value.p[i];

		if (c == '\r' || c == '\n')
			continue; /* unfold */
		if (is_wsp(c)) {
			sp = true;
			continue;
		}
		if (sp && any)
			buf_addc(out, ' ');
		sp = false;
		any = true;
		buf_addc(out, (char)c);
	}
	buf_add(out, "\r\n", 2);
	return buf_failed(out) ? -1 : 0;
}

/* RFC 6376 3.4.3 (simple) and 3.4.4 (relaxed). Input lines end in CRLF;
 * a last line without one is treated as if it had it. */
int
dkim_canon_body(struct span body, bool relaxed, struct buf *out)
{
	size_t pending = 0, start = 0, outlen0 = out->len;

	while (start < body.len) {
		size_t end = start, next;

		while (end < body.len && !(body.p[end] == '\r' &&
		    end + 1 < body.len && body.p[end + 1] == '\n'))
			end++;
		next = end < body.len ? end + 2 : end;
		struct span line = span_of(body.p + start, end - start);

		if (relaxed) {
			struct buf l;
			bool sp = false;

			buf_init(&l, BUF_NOMAX);
			for (size_t i = 0; i < line.len; i++) {
				int c = (unsigned char)line.p[i];

				if (is_wsp(c)) {
					sp = true;
					continue;
				}
				if (sp)
					buf_addc(&l, ' ');
				sp = false;
				buf_addc(&l, (char)c);
			}
			if (l.len == 0) {
				pending++;
			} else {
				for (; pending > 0; pending--)
					buf_add(out, "\r\n", 2);
				buf_add(out, l.data, l.len);
				buf_add(out, "\r\n", 2);
			}
			buf_release(&l);
		} else if (line.len == 0) {
			pending++;
		} else {
			for (; pending > 0; pending--)
				buf_add(out, "\r\n", 2);
			buf_add(out, line.p, line.len);
			buf_add(out, "\r\n", 2);
		}
		start = next;
	}
	/* RFC 6376 3.4.3: an empty body is a single CRLF under simple */
	if (!relaxed && out->len == outlen0)
		buf_add(out, "\r\n", 2);
	return buf_failed(out) ? -1 : 0;
}

int
dkim_hash_headers(struct dkim_hlist *l, char *const *names, size_t n,
    bool relaxed, struct buf *out)
{
	for (size_t i = 0; i < l->n; i++)
		l->v[i].used = false;
	for (size_t i = 0; i < n; i++) {
		/* RFC 6376 5.4.2: the next unused instance from the bottom;
		 * a missing instance contributes nothing */
		for (size_t j = l->n; j > 0; j--) {
			struct dkim_hfield *f = &l->v[j - 1];

			if (f->used || !span_eq_ci(f->name, names[i]))
				continue;
			f->used = true;
			if (dkim_canon_header(f->field, relaxed, out) == -1)
				return -1;
			break;
		}
	}
	return 0;
}

/* The signature's own field with the b= value removed (RFC 6376 3.7),
 * canonicalized, without the final CRLF. */
static int
sig_field_for_hash(struct span field, bool relaxed, struct buf *out,
    const char **why)
{
	const char *colon = memchr(field.p, ':', field.len);
	struct tag tags[TAGS_MAX];
	struct span value;
	struct buf f;
	size_t n, off;
	int rc = -1;

	buf_init(&f, BUF_NOMAX);
	off = (size_t)(colon - field.p) + 1;
	value = span_of(field.p + off, field.len - off);
	if (tags_parse(value, tags, &n, why) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!span_eq_cstr(tags[i].name, "b"))
			continue;
		buf_add(&f, field.p, off + tags[i].raw_start);
		buf_add(&f, field.p + off + tags[i].raw_end,
		    field.len - off - tags[i].raw_end);
		break;
	}
	if (dkim_canon_header(span_of_buf(&f), relaxed, out) == -1)
		goto out;
	buf_truncate(out, out->len - 2);
	rc = 0;
out:
	buf_release(&f);
	return rc;
}

static bool
verify_crypto(const struct dkim_record *rec, const struct dkim_sig *sig,
    const uint8_t *dig, size_t diglen)
{
	gnutls_datum_t h = { (unsigned char *)dig, (unsigned)diglen };
	gnutls_datum_t s = { sig->b, (unsigned)sig->blen };

	if (sig->keytype == DKIM_KEY_ED25519)
		/* RFC 8463 3: ed25519 over the SHA-256 digest */
		return gnutls_pubkey_verify_data2(rec->pub->k,
		    GNUTLS_SIGN_EDDSA_ED25519, 0, &h, &s) >= 0;
	return gnutls_pubkey_verify_hash2(rec->pub->k,
	    sig->hash == DKIM_HASH_SHA1 ? GNUTLS_SIGN_RSA_SHA1 :
	    GNUTLS_SIGN_RSA_SHA256, 0, &h, &s) >= 0;
}

struct bodies {
	struct span body;
	struct buf canon[2]; /* simple, relaxed; computed on first use */
	bool done[2];
};

static const char *
check_sig(const struct dkim_verify_opts *o, const struct dkim_sig *sig,
    enum dkim_status *st)
{
	bool from = false, subject = false;

	*st = DKIM_PERMERROR;
	for (size_t i = 0; i < sig->nheaders; i++) {
		if (strcasecmp(sig->headers[i], "from") == 0)
			from = true;
		if (strcasecmp(sig->headers[i], "subject") == 0)
			subject = true;
	}
	/* RFC 6376 5.4.1: From must be signed */
	if (!from)
		return "from header not signed";
	/* RFC 6376 6.1.1: expired signatures are not valid */
	if (sig->expires >= 0 && sig->expires < o->now)
		return "signature expired";
	if (strcmp(sig->domain, "localhost") == 0) {
		if (!o->allow_localhost)
			return "signing domain is localhost";
	} else if (o->psl != NULL) {
		struct buf probe, org;
		bool bad;

		buf_init(&probe, DNS_NAME_MAX + 3);
		buf_init(&org, DNS_NAME_MAX + 3);
		buf_addf(&probe, "x.%s", sig->domain);
		bad = publicsuffix_org_domain(o->psl, probe.data, &org) == 0 &&
		    strcasecmp(org.data, probe.data) == 0;
		buf_release(&probe);
		buf_release(&org);
		if (bad)
			return "signing domain is a public suffix";
	}
	/* RFC 8301 3.1: rsa-sha1 must not be considered valid */
	if (sig->hash == DKIM_HASH_SHA1)
		return "rsa-sha1 signatures are not accepted (rfc 8301)";
	*st = DKIM_POLICY;
	if (sig->length >= 0 && !o->allow_length)
		return "l= body length not accepted by policy";
	if (!subject && !o->allow_unsigned_subject)
		return "subject header not signed";
	*st = DKIM_PASS;
	return NULL;
}

static const char *
check_record(const struct dkim_record *rec, const struct dkim_sig *sig)
{
	if (sig->hash == DKIM_HASH_SHA256 ? !rec->hash_sha256_ok :
	    !rec->hash_sha1_ok)
		return "key record does not allow the hash algorithm";
	if (rec->keytype != sig->keytype)
		return "key type does not match signature algorithm";
	if (rec->revoked)
		return "key revoked";
	if (rec->keytype == DKIM_KEY_RSA && rec->bits < DKIM_RSA_MIN_BITS)
		return "rsa key too small (rfc 8301)";
	if (!rec->service_email)
		return "key record does not allow email service";
	if (rec->strict) {
		const char *idom = sig->identity != NULL ?
		    strchr(sig->identity, '@') + 1 : sig->domain;

		/* RFC 6376 3.6.1: t=s, the i= domain must equal d= */
		if (strcasecmp(idom, sig->domain) != 0)
			return "key record requires i= domain equal to d=";
	}
	return NULL;
}

static void
verify_one(struct dns_resolver *res, const struct dkim_verify_opts *o,
    struct dkim_hlist *hl, size_t fi, struct bodies *bodies,
    struct dkim_result *r)
{
	struct span field = hl->v[fi].field;
	const char *colon = memchr(field.p, ':', field.len);
	struct span value;
	struct buf hh;
	uint8_t dig[SHA256_DIGEST_SIZE];
	size_t diglen, off = (size_t)(colon - field.p) + 1;
	struct dkim_sig *sig;
	enum dkim_status st;

	buf_init(&hh, BUF_NOMAX);
	value = span_of(field.p + off, field.len - off);
	if (value.len >= 2 && value.p[value.len - 1] == '\n')
		value.len -= 2;
	r->status = DKIM_PERMERROR;
	if (dkim_sig_parse(value, &r->sig, &r->why) == -1)
		goto out;
	sig = r->sig;
	r->why = check_sig(o, sig, &st);
	if (r->why != NULL) {
		r->status = st;
		goto out;
	}
	if (o->deadline_ns > 0 && time_mono_ns() >= o->deadline_ns) {
		r->status = DKIM_TEMPERROR;
		r->why = "verification time limit reached";
		goto out;
	}
	st = dkim_lookup_record(res, sig->selector, sig->domain, &r->record,
	    &r->record_authentic, &r->why);
	if (st != DKIM_PASS) {
		r->status = st;
		goto out;
	}
	r->why = check_record(r->record, sig);
	if (r->why != NULL)
		goto out;
	if (dkim_hash_headers(hl, sig->headers, sig->nheaders,
	    sig->header_relaxed, &hh) == -1 ||
	    sig_field_for_hash(field, sig->header_relaxed, &hh, &r->why) ==
	    -1) {
		r->why = r->why != NULL ? r->why : "cannot hash headers";
		goto out;
	}
	diglen = dkim_digest(sig->hash, hh.data, hh.len, dig);
	if (!verify_crypto(r->record, sig, dig, diglen)) {
		r->status = DKIM_FAIL;
		r->why = "signature does not verify";
		goto testing;
	}
	/* The body hash is checked after the header signature verified. */
	int k = sig->body_relaxed ? 1 : 0;

	if (!bodies->done[k]) {
		if (dkim_canon_body(bodies->body, sig->body_relaxed,
		    &bodies->canon[k]) == -1) {
			r->why = "body too large";
			goto out;
		}
		bodies->done[k] = true;
	}
	size_t blen = bodies->canon[k].len;

	if (sig->length >= 0) {
		/* RFC 6376 3.5 l=: a body shorter than l= cannot verify */
		if ((uint64_t)sig->length > blen) {
			r->status = DKIM_FAIL;
			r->why = "body shorter than l=";
			goto testing;
		}
		blen = (size_t)sig->length;
	}
	diglen = dkim_digest(sig->hash, bodies->canon[k].data, blen, dig);
	if (diglen != sig->bhlen || memcmp(dig, sig->bh, diglen) != 0) {
		r->status = DKIM_FAIL;
		r->why = "body hash does not match";
		goto testing;
	}
	r->status = DKIM_PASS;
	r->why = NULL;
	goto out;
testing:
	/* RFC 6376 3.6.1 t=y: failures of a key in testing are not held
	 * against the message */
	if (r->record->testing)
		r->status = DKIM_NONE;
out:
	buf_release(&hh);
}

int
dkim_verify(struct dns_resolver *res, const struct dkim_verify_opts *o,
    struct span msg, struct dkim_result **results_out, size_t *n_out,
    const char **why)
{
	struct dkim_result *results = NULL;
	struct dkim_hlist hl = { NULL, 0 };
	struct bodies bodies;
	struct buf m;
	size_t n = 0;
	int rc = -1;

	buf_init(&m, DKIM_MSG_MAX);
	buf_init(&bodies.canon[0], DKIM_MSG_MAX);
	buf_init(&bodies.canon[1], DKIM_MSG_MAX);
	bodies.done[0] = bodies.done[1] = false;
	if (dkim_crlf(msg, &m) == -1) {
		*why = "message too large";
		goto out;
	}
	if (dkim_hlist_parse(span_of_buf(&m), &hl, &bodies.body, why) == -1)
		goto out;
	for (size_t i = 0; i < hl.n && n < DKIM_SIGS_MAX; i++)
		if (span_eq_ci(hl.v[i].name, "DKIM-Signature"))
			n++;
	results = n > 0 ? xcalloc(n, sizeof(*results)) : NULL;
	for (size_t i = 0, k = 0; i < hl.n && k < n; i++) {
		if (!span_eq_ci(hl.v[i].name, "DKIM-Signature"))
			continue;
		verify_one(res, o, &hl, i, &bodies, &results[k]);
		k++;
	}
	*results_out = results;
	*n_out = n;
	results = NULL;
	rc = 0;
out:
	dkim_results_free(results, n);
	dkim_hlist_release(&hl);
	buf_release(&bodies.canon[0]);
	buf_release(&bodies.canon[1]);
	buf_release(&m);
	return rc;
}

void
dkim_results_free(struct dkim_result *res, size_t n)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		dkim_sig_free(res[i].sig);
		dkim_record_free(res[i].record);
	}
	free(res);
}
