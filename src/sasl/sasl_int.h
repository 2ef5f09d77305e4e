/*
 * sasl_int.h: what the files of src/sasl share privately: SCRAM hashing
 * and attribute parsing, user name checks, default nonces. Pure; any
 * thread.
 */
#ifndef SASL_SASL_INT_H
#define SASL_SASL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl/sasl.h"

struct buf;

/* sasl_name.c */

/* RFC 4616 2 / RFC 5802 5.1: a user name or authzid is non-empty, at most
 * SASL_USER_MAX bytes of valid UTF-8 without control characters, and is
 * already in normal form (PRECIS OpaqueString, which includes NFC). */
bool sasl_name_valid(struct span name, bool need_normal);
/* RFC 5802 5.1 saslname: "," as "=2C", "=" as "=3D". Appends. */
void sasl_name_escape(struct span name, struct buf *out);
/* Reverse of sasl_name_escape; any other "=" is an error. Appends. 0/-1. */
int sasl_name_unescape(struct span in, struct buf *out);

/* sasl_scram.c */

enum sasl_hash sasl_scram_mech_hash(enum sasl_mech m);
bool sasl_scram_mech_plus(enum sasl_mech m);
bool sasl_scram_mech(enum sasl_mech m);
/* HMAC and H of RFC 5802 2.2, output sasl_scram_hash_len(h) bytes. */
void sasl_scram_hmac(enum sasl_hash h, const uint8_t *key, size_t klen,
    const void *msg, size_t mlen, uint8_t *out);
void sasl_scram_h(enum sasl_hash h, const void *msg, size_t len, uint8_t *out);
/* ClientKey and ServerKey from a normalised password (RFC 5802 3), each
 * sasl_scram_hash_len(h) bytes. The caller wipes them. */
void sasl_scram_keys(enum sasl_hash h, const char *password, size_t len,
    const void *salt, size_t salt_len, uint32_t iterations, uint8_t *client_key,
    uint8_t *server_key);
/* Random server or client nonce: 12 bytes as base64. 0/-1. */
int sasl_scram_nonce_random(struct buf *out);
/* RFC 5802 7 printable: %x21-2B / %x2D-7E. */
bool sasl_scram_nonce_valid(struct span n, size_t max);
/* Read "X=" then a value up to the next "," or end (RFC 5802 7 attr-val).
 * The value may be empty only when allow_empty. 0/-1. */
int sasl_scram_attr(
    struct scan *s, char attr, bool allow_empty, struct span *val);

/* sasl_crammd5.c */

/* Random challenge prefix: a uint64 in decimal. 0/-1. */
int sasl_crammd5_nonce_random(struct buf *out);

#endif
