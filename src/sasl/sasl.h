/*
 * sasl.h: SASL mechanisms for the IMAP server, the submission server and
 * the SMTP client of the queue: PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195), SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) with their -PLUS variants (channel
 * binding tls-unique, RFC 5929, and tls-exporter, RFC 9266).
 *
 * Pure state machines: decoded bytes in, bytes out. No sockets, logging,
 * clock or globals; the base64 framing of the protocols is the caller's
 * (sasl_b64_* help). A server or client object belongs to one thread at a
 * time; different objects may be used from any threads at once.
 */
#ifndef SASL_SASL_H
#define SASL_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

#define SASL_MSG_MAX 8192           /* decoded message, either direction */
#define SASL_USER_MAX 512           /* user name and authzid, bytes */
#define SASL_PASSWORD_MAX 1024      /* clear password, bytes */
#define SASL_NONCE_MIN 8            /* spec/imap.md 4.1: client nonce >= 8 */
#define SASL_NONCE_MAX 256          /* client and server nonce, chars */
#define SASL_SCRAM_SALT_MAX 128     /* decoded salt, bytes */
#define SASL_SCRAM_KEY_MAX 32       /* SHA-256 output */
#define SASL_SCRAM_ITER_MIN 2048    /* spec/queue.md 6: client refuses fewer */
#define SASL_SCRAM_ITER_MAX 1000000 /* client bound on a server's demand */
#define SASL_CB_MAX 64              /* channel binding data, bytes */
#define SASL_HOSTNAME_MAX 255       /* RFC 1035 2.3.4 */

enum sasl_mech {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_CRAM_MD5,
	SASL_MECH_SCRAM_SHA_1,
	SASL_MECH_SCRAM_SHA_1_PLUS,
	SASL_MECH_SCRAM_SHA_256,
	SASL_MECH_SCRAM_SHA_256_PLUS,
};
#define SASL_MECH_COUNT 7

enum sasl_hash {
	SASL_HASH_SHA1,   /* 20-byte keys */
	SASL_HASH_SHA256, /* 32-byte keys */
};

/* Channel binding types (RFC 5056 7). */
enum sasl_cb_type {
	SASL_CB_NONE,
	SASL_CB_TLS_UNIQUE,   /* RFC 5929 3; TLS 1.2 and older */
	SASL_CB_TLS_EXPORTER, /* RFC 9266 2; TLS 1.3 */
};

struct sasl_mech_info {
	const char *name; /* as announced: "SCRAM-SHA-256-PLUS" */
	enum sasl_mech mech;
	bool clear_password; /* PLAIN, LOGIN: announce only over TLS */
	bool plus;           /* needs TLS with channel binding */
	bool client_first;   /* client sends an initial response */
};

/* Result of a step. */
enum sasl_step {
	SASL_FAIL = -1,    /* failed: see sasl_server_error() */
	SASL_CONTINUE = 0, /* send out, then step again with the reply */
	SASL_OK = 1,       /* done and successful */
};

/* Why a server exchange failed, for the caller's reply. */
enum sasl_err {
	SASL_ERR_NONE,
	SASL_ERR_PROTOCOL,    /* malformed or refused message: BAD / 501 */
	SASL_ERR_AUTHZ,       /* authzid differs from user */
	SASL_ERR_CREDENTIALS, /* bad user, password or proof */
	/* Unknown user or no secret for the mechanism ("scram not
	 * possible"); not counted as a failed attempt. */
	SASL_ERR_NO_SECRET,
	SASL_ERR_CHANNEL_BINDING, /* binding data mismatch: possible MitM */
	SASL_ERR_TEMP,            /* credential store or random source failed */
};

/* ---- mechanisms (sasl_mech.c) ---- */

/* All mechanisms in enum order; *n_out gets the count. Static table. */
const struct sasl_mech_info *sasl_mech_list(size_t *n_out);
/* Static information on m. */
const struct sasl_mech_info *sasl_mech_info(enum sasl_mech m);
/* Find a mechanism by name (ASCII case-insensitive). 0 or -1. */
int sasl_mech_lookup(struct span name, enum sasl_mech *out);
/* "tls-unique", "tls-exporter", or "" for SASL_CB_NONE. Static. */
const char *sasl_cb_name(enum sasl_cb_type t);
/* Binding type by name; -1 for an unknown name. */
int sasl_cb_lookup(struct span name, enum sasl_cb_type *out);

/* ---- base64 for the protocol framing (sasl_b64.c) ---- */

/* Append the base64 of p (RFC 4648 4, padded). 0, or -1 when out's max is
 * reached. */
int sasl_b64_encode(const void *p, size_t n, struct buf *out);
/* Strictly decode in (RFC 4648 4: alphabet only, no white space, padded
 * to a multiple of 4, canonical) and append to out. 0, or -1 with *why
 * (invalid base64, or out's max reached). */
int sasl_b64_decode(struct span in, struct buf *out, const char **why);

/* ---- derived secrets (sasl_crammd5.c, sasl_scram.c) ---- */

/* HMAC-MD5 chaining values after the ipad and opad key blocks (RFC 2104
 * 2), each the four MD5 state words as little-endian bytes (the layout of
 * an MD5 digest), as the store keeps them. */
struct sasl_crammd5_secret {
	uint8_t ipad[16];
	uint8_t opad[16];
};

struct sasl_scram_secret {
	uint8_t salt[SASL_SCRAM_SALT_MAX];
	size_t salt_len;                        /* 1..SASL_SCRAM_SALT_MAX */
	uint32_t iterations;                    /* >= 1 */
	uint8_t stored_key[SASL_SCRAM_KEY_MAX]; /* RFC 5802 3 StoredKey */
	uint8_t server_key[SASL_SCRAM_KEY_MAX]; /* RFC 5802 3 ServerKey */
	size_t key_len;                         /* 20 (SHA-1) or 32 */
};

/* Derive the CRAM-MD5 states from a password. Wipe *out after use. */
void sasl_crammd5_secret_derive(
    const char *password, size_t len, struct sasl_crammd5_secret *out);
/* HMAC-MD5(password, msg) continued from the states (RFC 2195 2). */
void sasl_crammd5_digest(const struct sasl_crammd5_secret *s, const void *msg,
    size_t len, uint8_t out[16]);

/* Hash output length: 20 or 32. */
size_t sasl_scram_hash_len(enum sasl_hash h);
/* RFC 5802 3: SaltedPassword = Hi(password, salt, iterations), then
 * StoredKey and ServerKey. The password must already be normalised
 * (sasl_password_normalize). Returns 0, or -1 with *why for an empty salt,
 * a salt over SASL_SCRAM_SALT_MAX or zero iterations. Takes time in
 * proportion to iterations: not on the reactor. */
int sasl_scram_secret_derive(enum sasl_hash h, const char *password, size_t len,
    const void *salt, size_t salt_len, uint32_t iterations,
    struct sasl_scram_secret *out, const char **why);
/* PRECIS OpaqueString (RFC 8265 4.2) of a password, as SCRAM clients and
 * the store need it: appends to out. 0, or -1 with *why. */
int sasl_password_normalize(
    struct span password, struct buf *out, const char **why);

/* ---- server (sasl_server.c) ---- */

/* Credential callbacks, implemented by the caller over the store. Each
 * returns 0, or -1 with *err_out set to SASL_ERR_CREDENTIALS (unknown user
 * or wrong password), SASL_ERR_NO_SECRET or SASL_ERR_TEMP. user is the
 * authentication identity as sent (valid UTF-8, no control characters),
 * borrowed for the call. Called on the stepping thread; may block. */
typedef int sasl_check_plain_fn(
    void *arg, const char *user, const char *password, enum sasl_err *err_out);
typedef int sasl_crammd5_fn(void *arg, const char *user,
    struct sasl_crammd5_secret *out, enum sasl_err *err_out);
typedef int sasl_scram_fn(void *arg, const char *user, enum sasl_hash h,
    struct sasl_scram_secret *out, enum sasl_err *err_out);

/* Append a nonce to out: for SCRAM printable ASCII without ',' (RFC 5802
 * 7 "printable"), for CRAM-MD5 the decimal number that starts the
 * challenge. 0 or -1. Tests inject fixed ones; NULL means random
 * (gnutls_rnd: 12 bytes as base64 for SCRAM, a uint64 for CRAM-MD5). */
typedef int sasl_nonce_fn(void *arg, struct buf *out);

struct sasl_server_creds {
	sasl_check_plain_fn *check_plain; /* PLAIN, LOGIN; NULL: refused */
	sasl_crammd5_fn *crammd5;         /* CRAM-MD5; NULL: refused */
	sasl_scram_fn *scram;             /* SCRAM-*; NULL: refused */
};

struct sasl_server_params {
	const char *hostname;      /* in the CRAM-MD5 challenge */
	int64_t now_ns;            /* wall clock, in the CRAM-MD5 challenge */
	enum sasl_cb_type cb_type; /* binding this connection offers, or NONE */
	struct span cb_data; /* its bytes (tls_channel_binding()); copied */
	bool plus_offered;   /* -PLUS mechanisms were announced */
	const struct sasl_server_creds *creds; /* borrowed for the lifetime */
	void *creds_arg;
	sasl_nonce_fn *nonce; /* NULL: random */
	void *nonce_arg;
};

struct sasl_server; /* opaque; one exchange */

/* Start a server exchange for mechanism m. Returns the object (free with
 * sasl_server_free()), or NULL with *why: no callback for m, a -PLUS
 * mechanism without channel binding, or bad parameters. */
struct sasl_server *sasl_server_new(
    enum sasl_mech m, const struct sasl_server_params *p, const char **why);
/* Feed one decoded client message (have_msg false only on the first call,
 * when the client gave no initial response). out is reset and filled:
 *  SASL_CONTINUE: send out as a challenge (maybe empty), step again with
 *    the client's reply;
 *  SASL_OK: authenticated as sasl_server_username();
 *  SASL_FAIL: *why says what (static), sasl_server_error() the class; if
 *    out is not empty (a SCRAM "e=" message) send it as a challenge and
 *    read one more client line before the failure reply.
 * Messages over SASL_MSG_MAX fail. May block in the credential callbacks;
 * SCRAM and CRAM-MD5 verification is cheap (no PBKDF2 on the server). */
enum sasl_step sasl_server_step(struct sasl_server *s, struct span msg,
    bool have_msg, struct buf *out, const char **why);
/* Failure class after SASL_FAIL, SASL_ERR_NONE otherwise. */
enum sasl_err sasl_server_error(const struct sasl_server *s);
/* The authentication identity once the client sent it, else NULL.
 * Borrowed until sasl_server_free(). */
const char *sasl_server_username(const struct sasl_server *s);
enum sasl_mech sasl_server_mech(const struct sasl_server *s);
/* Wipe and free. NULL-safe. */
void sasl_server_free(struct sasl_server *s);

/* ---- client (sasl_client.c) ---- */

struct sasl_client_params {
	const char *user;     /* authentication identity */
	const char *password; /* clear; SCRAM normalises it (RFC 8265) */
	/* For -PLUS: the connection's binding. For plain SCRAM: pass the
	 * binding only when this client could bind but the server did not
	 * offer -PLUS (gs2 flag "y", RFC 5802 6); else SASL_CB_NONE ("n").
	 * sasl_client_select() tells which. */
	enum sasl_cb_type cb_type;
	struct span cb_data;  /* copied */
	sasl_nonce_fn *nonce; /* NULL: random */
	void *nonce_arg;
};

struct sasl_client; /* opaque; one exchange */

/* Choose a mechanism from offered (the server's names separated by
 * spaces, any case) in the order of prefs (NULL: SCRAM-SHA-256-PLUS,
 * SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1, CRAM-MD5, PLAIN). -PLUS
 * only when cb is not SASL_CB_NONE. *cb_out gets the binding type to pass
 * to sasl_client_new(). 0, or -1 with *why. Pure. */
int sasl_client_select(struct span offered, const enum sasl_mech *prefs,
    size_t nprefs, enum sasl_cb_type cb, enum sasl_mech *out,
    enum sasl_cb_type *cb_out, const char **why);
/* Start a client exchange. NULL with *why for a user or password that is
 * empty, too long or invalid, or a -PLUS mechanism without binding. */
struct sasl_client *sasl_client_new(
    enum sasl_mech m, const struct sasl_client_params *p, const char **why);
/* First call: for mechanisms with client_first, have_msg false gives the
 * initial response; otherwise pass the server's first challenge. out is
 * reset and filled with the response to send:
 *  SASL_CONTINUE: send out, step again with the next challenge;
 *  SASL_OK: send out (maybe empty); nothing is left to verify on our side
 *    (for SCRAM: the server signature matched);
 *  SASL_FAIL: *why (static); send "*" to abort if the server waits.
 * SCRAM runs PBKDF2 here: not on the reactor. */
enum sasl_step sasl_client_step(struct sasl_client *c, struct span msg,
    bool have_msg, struct buf *out, const char **why);
/* Wipe and free. NULL-safe. */
void sasl_client_free(struct sasl_client *c);

#endif
