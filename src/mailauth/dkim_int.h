/*
 * dkim_int.h: what dkim.c and dkim_sign.c share privately.
 */
#ifndef MAILAUTH_DKIM_INT_H
#define MAILAUTH_DKIM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"
#include "mailauth/dkim.h"

struct buf;

#define DKIM_MSG_MAX ((size_t)1 << 31) /* messages we handle in memory */

/* One header field of a message, CRLF line ends. */
struct dkim_hfield {
	struct span name;  /* without trailing WSP */
	struct span field; /* whole field including its final CRLF */
	bool used;         /* taken by the h= walk already */
};

struct dkim_hlist {
	struct dkim_hfield *v; /* owned */
	size_t n;
};

/* Copy msg into out with every bare LF turned into CRLF. */
int dkim_crlf(struct span msg, struct buf *out);
/* Collect the header fields of msg (CRLF form); *body_out is what
 * follows the empty line. Returns 0, or -1 with *why. */
int dkim_hlist_parse(struct span msg, struct dkim_hlist *out,
    struct span *body_out, const char **why);
void dkim_hlist_release(struct dkim_hlist *l);
/* Hash input for h=: for each name, the next unused field from the
 * bottom, canonicalized (RFC 6376 5.4.2). Clears the used flags first. */
int dkim_hash_headers(struct dkim_hlist *l, char *const *names, size_t n,
    bool relaxed, struct buf *out);
/* Digest of data with hash into dig (20 or 32 bytes); returns length. */
size_t dkim_digest(enum dkim_hash h, const void *data, size_t len,
    uint8_t *dig);
/* Base64 without line breaks, appended. */
int dkim_b64_encode(const uint8_t *p, size_t n, struct buf *out);
/* Decode base64, whitespace ignored; returns 0 with a new *out, -1 on
 * invalid input. */
int dkim_b64_decode(struct span in, uint8_t **out, size_t *n_out);

#endif
