/*
 * sasl_b64.c: strict base64 (RFC 4648 4) for SASL framing (RFC 4422 3,
 * RFC 4954 4, RFC 9051 6.2.2) and SCRAM attributes (RFC 5802 7). Input is
 * from unauthenticated peers; anything but canonical, padded base64 is an
 * error. Pure; any thread.
 */
#include <nettle/base64.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sasl/sasl.h"
#include "lib/banned.h"

int
sasl_b64_encode(const void *p, size_t n, struct buf *out)
{
	size_t need = BASE64_ENCODE_RAW_LENGTH(n);
	char *dst;

	if (need / 4 * 3 < n) /* overflow of the length macro */
		return -1;
	dst = buf_reserve(out, need);
	if (dst == NULL)
		return -1;
	base64_encode_raw(dst, n, p);
	buf_commit(out, need);
	return 0;
}

static bool
b64_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* RFC 4648 3.3, 3.5: no characters outside the alphabet (nettle skips
 * white space, we do not), padding only at the end, canonical bits. */
int
sasl_b64_decode(struct span in, struct buf *out, const char **why)
{
	struct base64_decode_ctx ctx;
	size_t pad = 0, n;
	char *dst = NULL, *check = NULL;
	int rc = -1;

	*why = "invalid base64";
	if (in.len % 4 != 0 || in.len > SIZE_MAX / 8)
		goto out;
	if (in.len > 0 && in.p[in.len - 1] == '=') {
		pad++;
		if (in.p[in.len - 2] == '=')
			pad++;
	}
	for (size_t i = 0; i < in.len - pad; i++)
		if (!b64_char((unsigned char)in.p[i]))
			goto out;
	/* nettle wants room for BASE64_DECODE_LENGTH, which exceeds the
	 * exact size; decode aside so out's max is exact. */
	dst = xmalloc(BASE64_DECODE_LENGTH(in.len) + 1);
	n = 0;
	base64_decode_init(&ctx);
	if (base64_decode_update(&ctx, &n, (uint8_t *)dst, in.len, in.p) != 1 ||
	    base64_decode_final(&ctx) != 1)
		goto out;
	/* Canonical: the unused bits of the last group are zero. */
	check = xmalloc(BASE64_ENCODE_RAW_LENGTH(n) + 1);
	base64_encode_raw(check, n, (const uint8_t *)dst);
	if (memcmp(check, in.p, in.len) != 0)
		goto out;
	if (buf_add(out, dst, n) == -1) {
		*why = "decoded message too long";
		goto out;
	}
	rc = 0;
out:
	if (dst != NULL)
		explicit_bzero(dst, BASE64_DECODE_LENGTH(in.len));
	free(dst);
	free(check);
	return rc;
}
