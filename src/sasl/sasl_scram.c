/*
 * sasl_scram.c: the SCRAM pieces both sides use (RFC 5802 2.2, 3, 7; RFC
 * 7677 for SHA-256): Hi() through nettle's PBKDF2, HMAC and H, secret
 * derivation, nonces and attribute parsing. Intermediate secrets are
 * wiped. Pure; any thread.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/hmac.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <string.h>

#include "lib/buf.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

#define SCRAM_NONCE_BYTES 12 /* spec/imap.md 4.1: 12 random bytes */

bool
sasl_scram_mech(enum sasl_mech m)
{
	switch (m) {
	case SASL_MECH_PLAIN:
	case SASL_MECH_LOGIN:
	case SASL_MECH_CRAM_MD5:
		return false;
	case SASL_MECH_SCRAM_SHA_1:
	case SASL_MECH_SCRAM_SHA_1_PLUS:
	case SASL_MECH_SCRAM_SHA_256:
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		return true;
	}
	return false;
}

enum sasl_hash
sasl_scram_mech_hash(enum sasl_mech m)
{
	if (m == SASL_MECH_SCRAM_SHA_1 || m == SASL_MECH_SCRAM_SHA_1_PLUS)
		return SASL_HASH_SHA1;
	return SASL_HASH_SHA256;
}

bool
sasl_scram_mech_plus(enum sasl_mech m)
{
	return m == SASL_MECH_SCRAM_SHA_1_PLUS ||
	       m == SASL_MECH_SCRAM_SHA_256_PLUS;
}

size_t
sasl_scram_hash_len(enum sasl_hash h)
{
	switch (h) {
	case SASL_HASH_SHA1:
		return SHA1_DIGEST_SIZE;
	case SASL_HASH_SHA256:
		return SHA256_DIGEST_SIZE;
	}
	return SHA256_DIGEST_SIZE;
}

void
sasl_scram_hmac(enum sasl_hash h, const uint8_t *key, size_t klen,
    const void *msg, size_t mlen, uint8_t *out)
{
	switch (h) {
	case SASL_HASH_SHA1: {
		struct hmac_sha1_ctx c;

		hmac_sha1_set_key(&c, klen, key);
		hmac_sha1_update(&c, mlen, msg);
		hmac_sha1_digest(&c, SHA1_DIGEST_SIZE, out);
		explicit_bzero(&c, sizeof(c));
		break;
	}
	case SASL_HASH_SHA256: {
		struct hmac_sha256_ctx c;

		hmac_sha256_set_key(&c, klen, key);
		hmac_sha256_update(&c, mlen, msg);
		hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, out);
		explicit_bzero(&c, sizeof(c));
		break;
	}
	}
}

void
sasl_scram_h(enum sasl_hash h, const void *msg, size_t len, uint8_t *out)
{
	switch (h) {
	case SASL_HASH_SHA1: {
		struct sha1_ctx c;

		sha1_init(&c);
		sha1_update(&c, len, msg);
		sha1_digest(&c, SHA1_DIGEST_SIZE, out);
		explicit_bzero(&c, sizeof(c));
		break;
	}
	case SASL_HASH_SHA256: {
		struct sha256_ctx c;

		sha256_init(&c);
		sha256_update(&c, len, msg);
		sha256_digest(&c, SHA256_DIGEST_SIZE, out);
		explicit_bzero(&c, sizeof(c));
		break;
	}
	}
}

/* RFC 5802 3: SaltedPassword := Hi(Normalize(password), salt, i);
 * ClientKey := HMAC(SaltedPassword, "Client Key"); ServerKey :=
 * HMAC(SaltedPassword, "Server Key"). Hi() is PBKDF2 (RFC 5802 2.2). */
void
sasl_scram_keys(enum sasl_hash h, const char *password, size_t len,
    const void *salt, size_t salt_len, uint32_t iterations, uint8_t *client_key,
    uint8_t *server_key)
{
	uint8_t salted[SASL_SCRAM_KEY_MAX];
	size_t kl = sasl_scram_hash_len(h);

	if (h == SASL_HASH_SHA1)
		pbkdf2_hmac_sha1(len, (const uint8_t *)password, iterations,
		    salt_len, salt, kl, salted);
	else
		pbkdf2_hmac_sha256(len, (const uint8_t *)password, iterations,
		    salt_len, salt, kl, salted);
	sasl_scram_hmac(h, salted, kl, "Client Key", 10, client_key);
	sasl_scram_hmac(h, salted, kl, "Server Key", 10, server_key);
	explicit_bzero(salted, sizeof(salted));
}

/* RFC 5802 3: StoredKey := H(ClientKey). */
int
sasl_scram_secret_derive(enum sasl_hash h, const char *password, size_t len,
    const void *salt, size_t salt_len, uint32_t iterations,
    struct sasl_scram_secret *out, const char **why)
{
	uint8_t ck[SASL_SCRAM_KEY_MAX];
	size_t kl = sasl_scram_hash_len(h);

	if (salt_len == 0 || salt_len > SASL_SCRAM_SALT_MAX ||
	    iterations == 0) {
		*why = "salt empty or too long, or zero iterations";
		return -1;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	out->iterations = iterations;
	out->key_len = kl;
	sasl_scram_keys(
	    h, password, len, salt, salt_len, iterations, ck, out->server_key);
	sasl_scram_h(h, ck, kl, out->stored_key);
	explicit_bzero(ck, sizeof(ck));
	return 0;
}

int
sasl_scram_nonce_random(struct buf *out)
{
	uint8_t b[SCRAM_NONCE_BYTES];

	if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof(b)) != 0)
		return -1;
	return sasl_b64_encode(b, sizeof(b), out);
}

bool
sasl_scram_nonce_valid(struct span n, size_t max)
{
	if (n.len == 0 || n.len > max)
		return false;
	for (size_t i = 0; i < n.len; i++) {
		unsigned char c = (unsigned char)n.p[i];

		if (c < 0x21 || c > 0x7e || c == ',')
			return false;
	}
	return true;
}

/* RFC 5802 7: attr-val = ALPHA "=" value; value = 1*value-char, and
 * value-char is any UTF-8 character except NUL and ",". */
int
sasl_scram_attr(struct scan *s, char attr, bool allow_empty, struct span *val)
{
	struct scan t = *s;
	size_t start;

	if (scan_char(&t, attr) == -1 || scan_char(&t, '=') == -1)
		return -1;
	start = t.pos;
	while (!scan_eof(&t) && scan_peek(&t) != ',') {
		if (scan_peek(&t) == '\0')
			return -1;
		t.pos++;
	}
	*val = span_of(t.p + start, t.pos - start);
	if (val->len == 0 && !allow_empty)
		return -1;
	*s = t;
	return 0;
}
