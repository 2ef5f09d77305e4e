/*
 * sasl_crammd5.c: CRAM-MD5 secrets (RFC 2195 2, RFC 2104 2). The store
 * keeps the MD5 chaining values after the key XOR ipad and key XOR opad
 * blocks instead of the password; HMAC-MD5(password, msg) continues MD5
 * from those states. Secrets are wiped after use. Pure; any thread.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <nettle/md5.h>
#include <string.h>

#include "lib/buf.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

static void
state_out(const struct md5_ctx *c, uint8_t out[16])
{
	for (int i = 0; i < 4; i++) {
		out[i * 4] = (uint8_t)c->state[i];
		out[i * 4 + 1] = (uint8_t)(c->state[i] >> 8);
		out[i * 4 + 2] = (uint8_t)(c->state[i] >> 16);
		out[i * 4 + 3] = (uint8_t)(c->state[i] >> 24);
	}
}

/* Resume MD5 after exactly one 64-byte block. */
static void
state_in(struct md5_ctx *c, const uint8_t in[16])
{
	md5_init(c);
	for (int i = 0; i < 4; i++)
		c->state[i] = (uint32_t)in[i * 4] |
		              (uint32_t)in[i * 4 + 1] << 8 |
		              (uint32_t)in[i * 4 + 2] << 16 |
		              (uint32_t)in[i * 4 + 3] << 24;
	c->count = 1;
	c->index = 0;
}

/* RFC 2104 2: a key longer than the block is hashed first. */
void
sasl_crammd5_secret_derive(
    const char *password, size_t len, struct sasl_crammd5_secret *out)
{
	uint8_t key[MD5_BLOCK_SIZE], block[MD5_BLOCK_SIZE];
	struct md5_ctx c;

	memset(key, 0, sizeof(key));
	if (len > MD5_BLOCK_SIZE) {
		md5_init(&c);
		md5_update(&c, len, (const uint8_t *)password);
		md5_digest(&c, MD5_DIGEST_SIZE, key);
	} else if (len > 0) {
		memcpy(key, password, len);
	}
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = key[i] ^ 0x36;
	md5_init(&c);
	md5_update(&c, sizeof(block), block);
	state_out(&c, out->ipad);
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = key[i] ^ 0x5c;
	md5_init(&c);
	md5_update(&c, sizeof(block), block);
	state_out(&c, out->opad);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(block, sizeof(block));
	explicit_bzero(&c, sizeof(c));
}

void
sasl_crammd5_digest(const struct sasl_crammd5_secret *s, const void *msg,
    size_t len, uint8_t out[16])
{
	uint8_t inner[MD5_DIGEST_SIZE];
	struct md5_ctx c;

	state_in(&c, s->ipad);
	md5_update(&c, len, msg);
	md5_digest(&c, sizeof(inner), inner);
	state_in(&c, s->opad);
	md5_update(&c, sizeof(inner), inner);
	md5_digest(&c, MD5_DIGEST_SIZE, out);
	explicit_bzero(inner, sizeof(inner));
	explicit_bzero(&c, sizeof(c));
}

int
sasl_crammd5_nonce_random(struct buf *out)
{
	uint64_t v;

	if (gnutls_rnd(GNUTLS_RND_NONCE, &v, sizeof(v)) != 0)
		return -1;
	return buf_addf(out, "%" PRIu64, v);
}
