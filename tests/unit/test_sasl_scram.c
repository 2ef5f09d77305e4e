/*
 * test_sasl_scram.c: SCRAM-SHA-1/256 and -PLUS (RFC 5802, RFC 7677, RFC
 * 5929, RFC 9266) against the RFC examples with fixed nonces, every
 * refusal of spec/imap.md 4.1, hostile messages, and client against
 * server round trips for every mechanism.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "sasl/sasl.h"
#include "lib/banned.h"

/* Credentials the fake store holds: one user, one password. */
struct fake_store {
	const char *user;
	const char *password;
	const char *salt_b64; /* NULL: "c2FsdHNhbHQ=" */
	uint32_t iterations;  /* 0: 4096 */
	bool no_scram;        /* user has no SCRAM secrets */
	int calls;
};

static int
fake_plain(
    void *arg, const char *user, const char *password, enum sasl_err *err_out)
{
	struct fake_store *f = arg;

	f->calls++;
	if (strcmp(user, f->user) != 0 || strcmp(password, f->password) != 0) {
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	return 0;
}

static int
fake_crammd5(void *arg, const char *user, struct sasl_crammd5_secret *out,
    enum sasl_err *err_out)
{
	struct fake_store *f = arg;

	f->calls++;
	if (strcmp(user, f->user) != 0) {
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	sasl_crammd5_secret_derive(f->password, strlen(f->password), out);
	return 0;
}

static int
fake_scram(void *arg, const char *user, enum sasl_hash h,
    struct sasl_scram_secret *out, enum sasl_err *err_out)
{
	struct fake_store *f = arg;
	struct buf salt;
	const char *why;
	int rc;

	f->calls++;
	if (strcmp(user, f->user) != 0 || f->no_scram) {
		*err_out = SASL_ERR_NO_SECRET;
		return -1;
	}
	buf_init(&salt, 256);
	assert_int_equal(
	    sasl_b64_decode(span_of_cstr(f->salt_b64 != NULL ? f->salt_b64
	                                                     : "c2FsdHNhbHQ="),
	        &salt, &why),
	    0);
	rc = sasl_scram_secret_derive(h, f->password, strlen(f->password),
	    salt.data, salt.len, f->iterations != 0 ? f->iterations : 4096, out,
	    &why);
	buf_release(&salt);
	assert_int_equal(rc, 0);
	return 0;
}

static const struct sasl_server_creds fake_creds = { fake_plain, fake_crammd5,
	fake_scram };

static int
fixed_nonce(void *arg, struct buf *out)
{
	return buf_adds(out, arg);
}

static const uint8_t cb_a[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
	32 };
static const uint8_t cb_b[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
	33 };

/* RFC 5802 5 and RFC 7677 3: the whole exchange, both roles. */
static const struct {
	const char *name;
	enum sasl_mech mech;
	const char *salt_b64;
	const char *cnonce, *snonce;
	const char *client_first, *server_first, *client_final, *server_final;
} vectors[] = {
	{ "rfc5802-5", SASL_MECH_SCRAM_SHA_1, "QSXCR+Q6sek8bf92",
	    "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
	    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,"
	    "i=4096",
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
	{ "rfc7677-3", SASL_MECH_SCRAM_SHA_256, "W22ZaJ0SNY7soEsUEjb6gQ==",
	    "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
};

static void
test_scram_rfc_server(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(vectors); i++) {
		struct fake_store f = { "user", "pencil", vectors[i].salt_b64,
			4096, false, 0 };
		struct sasl_server_params p = { .hostname = "mx.example",
			.creds = &fake_creds,
			.creds_arg = &f,
			.nonce = fixed_nonce,
			.nonce_arg = (void *)vectors[i].snonce };
		const char *why = NULL;
		struct sasl_server *s =
		    sasl_server_new(vectors[i].mech, &p, &why);
		struct buf out;
		int rc;

		assert_non_null(s);
		buf_init(&out, SASL_MSG_MAX);
		rc = sasl_server_step(
		    s, span_of_cstr(vectors[i].client_first), true, &out, &why);
		if (rc != SASL_CONTINUE ||
		    strcmp(out.data, vectors[i].server_first) != 0)
			fail_msg("%s: server-first rc %d %s: %s",
			    vectors[i].name, rc, why, out.data);
		rc = sasl_server_step(
		    s, span_of_cstr(vectors[i].client_final), true, &out, &why);
		if (rc != SASL_CONTINUE ||
		    strcmp(out.data, vectors[i].server_final) != 0)
			fail_msg("%s: server-final rc %d %s: %s",
			    vectors[i].name, rc, why, out.data);
		rc = sasl_server_step(s, span_of("", 0), true, &out, &why);
		if (rc != SASL_OK || strcmp(sasl_server_username(s), "user"))
			fail_msg(
			    "%s: final rc %d %s", vectors[i].name, rc, why);
		assert_int_equal(sasl_server_error(s), SASL_ERR_NONE);
		/* Nothing after the end. */
		assert_int_equal(
		    sasl_server_step(s, span_of("", 0), true, &out, &why),
		    SASL_FAIL);
		sasl_server_free(s);
		buf_release(&out);
	}
	(void)state;
}

static void
test_scram_rfc_client(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(vectors); i++) {
		struct sasl_client_params p = { .user = "user",
			.password = "pencil",
			.nonce = fixed_nonce,
			.nonce_arg = (void *)vectors[i].cnonce };
		const char *why = NULL;
		struct sasl_client *c =
		    sasl_client_new(vectors[i].mech, &p, &why);
		struct buf out;
		int rc;

		assert_non_null(c);
		buf_init(&out, SASL_MSG_MAX);
		rc = sasl_client_step(c, span_of("", 0), false, &out, &why);
		if (rc != SASL_CONTINUE ||
		    strcmp(out.data, vectors[i].client_first) != 0)
			fail_msg("%s: client-first rc %d %s", vectors[i].name,
			    rc, out.data);
		rc = sasl_client_step(
		    c, span_of_cstr(vectors[i].server_first), true, &out, &why);
		if (rc != SASL_CONTINUE ||
		    strcmp(out.data, vectors[i].client_final) != 0)
			fail_msg("%s: client-final rc %d %s: %s",
			    vectors[i].name, rc, why, out.data);
		rc = sasl_client_step(
		    c, span_of_cstr(vectors[i].server_final), true, &out, &why);
		if (rc != SASL_OK || out.len != 0)
			fail_msg(
			    "%s: verify rc %d %s", vectors[i].name, rc, why);
		sasl_client_free(c);
		buf_release(&out);
	}
	(void)state;
}

/* spec/imap.md 4.1 step 1: refusals of the client-first message. */
static void
test_scram_client_first(void **state)
{
	static char huge[SASL_MSG_MAX + 2];
	static const struct {
		const char *name;
		const char *msg;
		size_t len; /* 0: strlen */
		enum sasl_mech mech;
		enum sasl_cb_type cb;
		bool plus_offered;
		int want_rc;
		enum sasl_err want_err;
		const char *want_why; /* NULL: any */
	} cases[] = {
		{ "plain ok", "n,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_CONTINUE,
		    SASL_ERR_NONE, NULL },
		{ "authzid equal", "n,a=user,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_CONTINUE,
		    SASL_ERR_NONE, NULL },
		{ "authzid other", "n,a=admin,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_AUTHZ, NULL },
		{ "extension ok", "n,,n=user,r=abcdefghij,x=1", 0,
		    SASL_MECH_SCRAM_SHA_1, SASL_CB_NONE, false, SASL_CONTINUE,
		    SASL_ERR_NONE, NULL },
		{ "empty", "", 0, SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false,
		    SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "bad gs2 flag", "x,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "malformed client-first-message" },
		{ "gs2 one comma", "n,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "gs2 upper N", "N,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "y while plus offered", "y,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, true, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "server-does-support-channel-binding" },
		{ "y with binding here", "y,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_TLS_EXPORTER, false,
		    SASL_FAIL, SASL_ERR_PROTOCOL,
		    "server-does-support-channel-binding" },
		{ "y without binding", "y,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_CONTINUE,
		    SASL_ERR_NONE, NULL },
		{ "y with plus mech", "y,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_EXPORTER, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "n with plus mech", "n,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_1_PLUS, SASL_CB_TLS_UNIQUE, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "unknown binding",
		    "p=tls-server-end-point,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_EXPORTER, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL,
		    "unsupported-channel-binding-type" },
		{ "unique on tls 1.3", "p=tls-unique,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_EXPORTER, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL,
		    "unsupported-channel-binding-type" },
		{ "exporter on tls 1.2", "p=tls-exporter,,n=user,r=abcdefghij",
		    0, SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_UNIQUE, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL,
		    "unsupported-channel-binding-type" },
		{ "binding without tls", "p=tls-exporter,,n=user,r=abcdefghij",
		    0, SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "unsupported-channel-binding-type" },
		{ "p with non-plus name", "p=tls-exporter,,n=user,r=abcdefghij",
		    0, SASL_MECH_SCRAM_SHA_256, SASL_CB_TLS_EXPORTER, true,
		    SASL_CONTINUE, SASL_ERR_NONE, NULL },
		{ "binding name case", "p=TLS-EXPORTER,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_EXPORTER, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "empty binding name", "p=,,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_EXPORTER, true,
		    SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "mandatory extension", "n,,m=ext,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "extensions-not-supported" },
		{ "nonce 7", "n,,n=user,r=abcdefg", 0, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_NONE, false, SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "nonce 8", "n,,n=user,r=abcdefgh", 0, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_NONE, false, SASL_CONTINUE, SASL_ERR_NONE, NULL },
		{ "nonce empty", "n,,n=user,r=", 0, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_NONE, false, SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "nonce control", "n,,n=user,r=abcdefgh\x01", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "nonce 8-bit", "n,,n=user,r=abcdefgh\xc3\xa9", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "no nonce", "n,,n=user", 0, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_NONE, false, SASL_FAIL, SASL_ERR_PROTOCOL, NULL },
		{ "attrs swapped", "n,,r=abcdefghij,n=user", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "empty user", "n,,n=,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "bad escape", "n,,n=us=2Ber,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "invalid-username-encoding" },
		{ "cut escape", "n,,n=user=3,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "invalid-username-encoding" },
		{ "escaped unknown user", "n,,n=us=3Der,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_NO_SECRET, NULL },
		{ "not nfc", "n,,n=e\xcc\x81,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "invalid-username-encoding" },
		{ "nfc unknown", "n,,n=\xc3\xa9,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_NO_SECRET, NULL },
		{ "authzid not nfc", "n,a=e\xcc\x81,n=user,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, "invalid-username-encoding" },
		{ "user control", "n,,n=us\ter,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "user bad utf-8", "n,,n=us\xc3\x28r,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "nul in user", "n,,n=us\0er,r=abcdefghij", 26,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "nul at end", "n,,n=user,r=abcdefghij\0", 23,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "trailing comma", "n,,n=user,r=abcdefghij,", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "bad extension", "n,,n=user,r=abcdefghij,1=x", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_PROTOCOL, NULL },
		{ "unknown user", "n,,n=nobody,r=abcdefghij", 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE, false, SASL_FAIL,
		    SASL_ERR_NO_SECRET, NULL },
		{ "oversize", huge, SASL_MSG_MAX + 1, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_NONE, false, SASL_FAIL, SASL_ERR_PROTOCOL,
		    "client message too long" },
	};

	memset(huge, 'a', sizeof(huge));
	memcpy(huge, "n,,n=user,r=", 12);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct fake_store f = { "user", "pencil", NULL, 4096, false,
			0 };
		struct sasl_server_params p = { .hostname = "mx.example",
			.cb_type = cases[i].cb,
			.cb_data =
			    cases[i].cb != SASL_CB_NONE
			        ? span_of((const char *)cb_a, sizeof(cb_a))
			        : span_of(NULL, 0),
			.plus_offered = cases[i].plus_offered,
			.creds = &fake_creds,
			.creds_arg = &f };
		const char *why = NULL;
		struct sasl_server *s =
		    sasl_server_new(cases[i].mech, &p, &why);
		size_t len =
		    cases[i].len != 0 ? cases[i].len : strlen(cases[i].msg);
		struct buf out;
		int rc;

		if (s == NULL)
			fail_msg("%s: new: %s", cases[i].name, why);
		buf_init(&out, SASL_MSG_MAX);
		rc = sasl_server_step(
		    s, span_of(cases[i].msg, len), true, &out, &why);
		if (rc != cases[i].want_rc ||
		    sasl_server_error(s) != cases[i].want_err ||
		    (cases[i].want_why != NULL &&
		        strcmp(why, cases[i].want_why) != 0))
			fail_msg("%s: rc %d err %d why %s", cases[i].name, rc,
			    sasl_server_error(s), why);
		/* spec/imap.md 4.1: no "e=" message at this stage. */
		if (rc == SASL_FAIL && out.len != 0)
			fail_msg("%s: unexpected message %s", cases[i].name,
			    out.data);
		sasl_server_free(s);
		buf_release(&out);
	}
	(void)state;
}

/* spec/imap.md 4.1 steps 4-5: the client-final checks, after the RFC 5802
 * client-first and server-first. */
static void
test_scram_client_final(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		size_t len;
		int want_rc;
		enum sasl_err want_err;
		const char *want_out;
	} cases[] = {
		{ "good",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_CONTINUE, SASL_ERR_NONE,
		    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
		{ "bad proof",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Tw=",
		    0, SASL_FAIL, SASL_ERR_CREDENTIALS, "e=invalid-proof" },
		{ "extension changes proof",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,x=y,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_FAIL, SASL_ERR_CREDENTIALS, "e=invalid-proof" },
		{ "short proof",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "proof bad base64",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "wrong nonce",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7k,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=other-error" },
		{ "client nonce only",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=other-error" },
		{ "binding header differs",
		    "c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_FAIL, SASL_ERR_CHANNEL_BINDING,
		    "e=channel-bindings-dont-match" },
		{ "binding bad base64",
		    "c=biw,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "no proof",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j", 0,
		    SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "after proof",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=,x=1",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "order",
		    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,c=biws,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    0, SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "nul",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j\0,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    84, SASL_FAIL, SASL_ERR_PROTOCOL, "e=invalid-encoding" },
		{ "empty", "", 0, SASL_FAIL, SASL_ERR_PROTOCOL,
		    "e=invalid-encoding" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct fake_store f = { "user", "pencil", "QSXCR+Q6sek8bf92",
			4096, false, 0 };
		struct sasl_server_params p = { .hostname = "mx.example",
			.creds = &fake_creds,
			.creds_arg = &f,
			.nonce = fixed_nonce,
			.nonce_arg = (void *)"3rfcNHYJY1ZVvWVs7j" };
		const char *why = NULL;
		struct sasl_server *s =
		    sasl_server_new(SASL_MECH_SCRAM_SHA_1, &p, &why);
		size_t len =
		    cases[i].len != 0 ? cases[i].len : strlen(cases[i].msg);
		struct buf out;
		int rc;

		buf_init(&out, SASL_MSG_MAX);
		/* Without initial response: empty challenge first. */
		assert_int_equal(
		    sasl_server_step(s, span_of(NULL, 0), false, &out, &why),
		    SASL_CONTINUE);
		assert_int_equal(out.len, 0);
		assert_int_equal(
		    sasl_server_step(s,
		        span_of_cstr("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
		        true, &out, &why),
		    SASL_CONTINUE);
		rc = sasl_server_step(
		    s, span_of(cases[i].msg, len), true, &out, &why);
		if (rc != cases[i].want_rc ||
		    sasl_server_error(s) != cases[i].want_err ||
		    strcmp(out.data, cases[i].want_out) != 0)
			fail_msg("%s: rc %d err %d why %s out %s",
			    cases[i].name, rc, sasl_server_error(s), why,
			    out.data);
		sasl_server_free(s);
		buf_release(&out);
	}
	(void)state;
}

/* RFC 5802 5: after "v=" the client's answer must be empty. */
static void
test_scram_ack(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		size_t len;
		int want_rc;
	} cases[] = {
		{ "empty", "", 0, SASL_OK },
		{ "data", "x", 1, SASL_FAIL },
		{ "nul", "\0", 1, SASL_FAIL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct fake_store f = { "user", "pencil", "QSXCR+Q6sek8bf92",
			4096, false, 0 };
		struct sasl_server_params p = { .hostname = "mx.example",
			.creds = &fake_creds,
			.creds_arg = &f,
			.nonce = fixed_nonce,
			.nonce_arg = (void *)"3rfcNHYJY1ZVvWVs7j" };
		const char *why = NULL;
		struct sasl_server *s =
		    sasl_server_new(SASL_MECH_SCRAM_SHA_1, &p, &why);
		struct buf out;

		buf_init(&out, SASL_MSG_MAX);
		assert_int_equal(
		    sasl_server_step(s, span_of_cstr(vectors[0].client_first),
		        true, &out, &why),
		    SASL_CONTINUE);
		assert_int_equal(
		    sasl_server_step(s, span_of_cstr(vectors[0].client_final),
		        true, &out, &why),
		    SASL_CONTINUE);
		if (sasl_server_step(s, span_of(cases[i].msg, cases[i].len),
		        true, &out, &why) != cases[i].want_rc)
			fail_msg("%s: %s", cases[i].name, why);
		sasl_server_free(s);
		buf_release(&out);
	}
	(void)state;
}

/* The client refuses bad server messages (spec/queue.md 6). */
static void
test_scram_client_refuses(void **state)
{
	static const struct {
		const char *name;
		const char *server_first;
		const char *server_final; /* NULL: stop after server-first */
		int want_rc;
	} cases[] = {
		{ "few iterations",
		    "r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,"
		    "i=2047",
		    NULL, SASL_FAIL },
		{ "min iterations",
		    "r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,"
		    "i=2048",
		    NULL, SASL_CONTINUE },
		{ "huge iterations",
		    "r=fyko+d2lbbFgONRv9qkxdawLxyz,"
		    "s=QSXCR+Q6sek8bf92,i=4294967295",
		    NULL, SASL_FAIL },
		{ "iteration overflow",
		    "r=fyko+d2lbbFgONRv9qkxdawLxyz,"
		    "s=QSXCR+Q6sek8bf92,i=99999999999999999999",
		    NULL, SASL_FAIL },
		{ "negative iterations",
		    "r=fyko+d2lbbFgONRv9qkxdawLxyz,"
		    "s=QSXCR+Q6sek8bf92,i=-4096",
		    NULL, SASL_FAIL },
		{ "other nonce",
		    "r=ZZZZ+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,"
		    "i=4096",
		    NULL, SASL_FAIL },
		{ "nonce not extended",
		    "r=fyko+d2lbbFgONRv9qkxdawL,"
		    "s=QSXCR+Q6sek8bf92,i=4096",
		    NULL, SASL_FAIL },
		{ "mandatory extension",
		    "m=x,r=fyko+d2lbbFgONRv9qkxdawLxyz,"
		    "s=QSXCR+Q6sek8bf92,i=4096",
		    NULL, SASL_FAIL },
		{ "salt bad base64",
		    "r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR,i=4096", NULL,
		    SASL_FAIL },
		{ "no salt", "r=fyko+d2lbbFgONRv9qkxdawLxyz,s=,i=4096", NULL,
		    SASL_FAIL },
		{ "empty", "", NULL, SASL_FAIL },
		{ "error e=", "e=unknown-user", NULL, SASL_FAIL },
		{ "server error", vectors[0].server_first, "e=invalid-proof",
		    SASL_FAIL },
		{ "bad signature", vectors[0].server_first,
		    "v=rmF9pqV8S7suAoZWja4dJRkFsKA=", SASL_FAIL },
		{ "short signature", vectors[0].server_first, "v=rmF9pqV8",
		    SASL_FAIL },
		{ "no signature", vectors[0].server_first, "", SASL_FAIL },
		{ "signature with extension", vectors[0].server_first,
		    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,x=1", SASL_OK },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct sasl_client_params p = { .user = "user",
			.password = "pencil",
			.nonce = fixed_nonce,
			.nonce_arg = (void *)"fyko+d2lbbFgONRv9qkxdawL" };
		const char *why = NULL;
		struct sasl_client *c =
		    sasl_client_new(SASL_MECH_SCRAM_SHA_1, &p, &why);
		struct buf out;
		int rc;

		buf_init(&out, SASL_MSG_MAX);
		assert_int_equal(
		    sasl_client_step(c, span_of(NULL, 0), false, &out, &why),
		    SASL_CONTINUE);
		rc = sasl_client_step(
		    c, span_of_cstr(cases[i].server_first), true, &out, &why);
		if (cases[i].server_final != NULL) {
			assert_int_equal(rc, SASL_CONTINUE);
			rc = sasl_client_step(c,
			    span_of_cstr(cases[i].server_final), true, &out,
			    &why);
		}
		if (rc != cases[i].want_rc)
			fail_msg("%s: rc %d %s", cases[i].name, rc, why);
		sasl_client_free(c);
		buf_release(&out);
	}
	(void)state;
}

/* Run a whole exchange. Returns 0 when both sides succeed, -1 when the
 * server fails (*err_out), -2 when the client fails. */
static int
exchange(enum sasl_mech m, const struct sasl_client_params *cp,
    const struct sasl_server_params *sp, enum sasl_err *err_out,
    const char **why)
{
	struct sasl_server *s = sasl_server_new(m, sp, why);
	struct sasl_client *c = sasl_client_new(m, cp, why);
	enum sasl_step cr = SASL_CONTINUE, sr;
	struct buf cout, sout;
	bool have = false;
	int rc = -2;

	assert_non_null(s);
	if (c == NULL) {
		sasl_server_free(s);
		return -2;
	}
	buf_init(&cout, SASL_MSG_MAX);
	buf_init(&sout, SASL_MSG_MAX);
	*err_out = SASL_ERR_NONE;
	if (sasl_mech_info(m)->client_first) {
		cr = sasl_client_step(c, span_of(NULL, 0), false, &cout, why);
		if (cr == SASL_FAIL)
			goto out;
		have = true;
	}
	for (int round = 0; round < 8; round++) {
		sr = sasl_server_step(s, span_of_buf(&cout), have, &sout, why);
		if (sr == SASL_FAIL) {
			*err_out = sasl_server_error(s);
			rc = -1;
			goto out;
		}
		if (sr == SASL_OK) {
			rc = cr == SASL_OK ? 0 : -2;
			goto out;
		}
		if (cr == SASL_OK && sout.len != 0)
			fail_msg("server continues after the client finished");
		cr = sasl_client_step(c, span_of_buf(&sout), true, &cout, why);
		if (cr == SASL_FAIL)
			goto out;
		have = true;
	}
	fail_msg("exchange does not end");
out:
	sasl_server_free(s);
	sasl_client_free(c);
	buf_release(&cout);
	buf_release(&sout);
	return rc;
}

static void
test_round_trip(void **state)
{
	static const struct {
		const char *name;
		enum sasl_mech mech;
		const char *user, *client_pw, *server_user, *server_pw;
		enum sasl_cb_type ccb, scb;
		const uint8_t *cdata, *sdata;
		bool plus_offered;
		int want_rc;
		enum sasl_err want_err;
	} cases[] = {
		{ "plain", SASL_MECH_PLAIN, "mjl@example.org", "moxmoxmox",
		    "mjl@example.org", "moxmoxmox", 0, 0, NULL, NULL, false, 0,
		    SASL_ERR_NONE },
		{ "plain wrong", SASL_MECH_PLAIN, "mjl@example.org", "moxmoxmo",
		    "mjl@example.org", "moxmoxmox", 0, 0, NULL, NULL, false, -1,
		    SASL_ERR_CREDENTIALS },
		{ "login", SASL_MECH_LOGIN, "mjl@example.org", "moxmoxmox",
		    "mjl@example.org", "moxmoxmox", 0, 0, NULL, NULL, false, 0,
		    SASL_ERR_NONE },
		{ "login wrong user", SASL_MECH_LOGIN, "mjl@example.com",
		    "moxmoxmox", "mjl@example.org", "moxmoxmox", 0, 0, NULL,
		    NULL, false, -1, SASL_ERR_CREDENTIALS },
		{ "cram-md5", SASL_MECH_CRAM_MD5, "mjl@example.org",
		    "moxmoxmox", "mjl@example.org", "moxmoxmox", 0, 0, NULL,
		    NULL, false, 0, SASL_ERR_NONE },
		{ "cram-md5 long password", SASL_MECH_CRAM_MD5, "mjl",
		    "0123456789012345678901234567890123456789012345678901234567"
		    "89abcdef",
		    "mjl",
		    "0123456789012345678901234567890123456789012345678901234567"
		    "89abcdef",
		    0, 0, NULL, NULL, false, 0, SASL_ERR_NONE },
		{ "cram-md5 wrong", SASL_MECH_CRAM_MD5, "mjl@example.org",
		    "moxmoxmoy", "mjl@example.org", "moxmoxmox", 0, 0, NULL,
		    NULL, false, -1, SASL_ERR_CREDENTIALS },
		{ "scram-sha-1", SASL_MECH_SCRAM_SHA_1, "mjl@example.org",
		    "moxmoxmox", "mjl@example.org", "moxmoxmox", 0, 0, NULL,
		    NULL, false, 0, SASL_ERR_NONE },
		{ "scram-sha-1 wrong", SASL_MECH_SCRAM_SHA_1, "mjl@example.org",
		    "moxmoxmo", "mjl@example.org", "moxmoxmox", 0, 0, NULL,
		    NULL, false, -1, SASL_ERR_CREDENTIALS },
		{ "scram-sha-256", SASL_MECH_SCRAM_SHA_256, "mjl@example.org",
		    "moxmoxmox", "mjl@example.org", "moxmoxmox", 0, 0, NULL,
		    NULL, false, 0, SASL_ERR_NONE },
		{ "scram-sha-256 wrong", SASL_MECH_SCRAM_SHA_256,
		    "mjl@example.org", "x", "mjl@example.org", "moxmoxmox", 0,
		    0, NULL, NULL, false, -1, SASL_ERR_CREDENTIALS },
		{ "scram escaped user", SASL_MECH_SCRAM_SHA_256, "a,b=c", "pw",
		    "a,b=c", "pw", 0, 0, NULL, NULL, false, 0, SASL_ERR_NONE },
		{ "scram unicode user", SASL_MECH_SCRAM_SHA_256,
		    "j\xc3\xb6rg@example.org", "pw", "j\xc3\xb6rg@example.org",
		    "pw", 0, 0, NULL, NULL, false, 0, SASL_ERR_NONE },
		{ "scram password normalised", SASL_MECH_SCRAM_SHA_256, "u",
		    "pen\xc2\xa0"
		    "cil",
		    "u", "pen cil", 0, 0, NULL, NULL, false, 0, SASL_ERR_NONE },
		{ "scram unknown user", SASL_MECH_SCRAM_SHA_256, "v", "pw", "u",
		    "pw", 0, 0, NULL, NULL, false, -1, SASL_ERR_NO_SECRET },
		{ "sha-1-plus exporter", SASL_MECH_SCRAM_SHA_1_PLUS, "u", "pw",
		    "u", "pw", SASL_CB_TLS_EXPORTER, SASL_CB_TLS_EXPORTER, cb_a,
		    cb_a, true, 0, SASL_ERR_NONE },
		{ "sha-256-plus exporter", SASL_MECH_SCRAM_SHA_256_PLUS, "u",
		    "pw", "u", "pw", SASL_CB_TLS_EXPORTER, SASL_CB_TLS_EXPORTER,
		    cb_a, cb_a, true, 0, SASL_ERR_NONE },
		{ "sha-256-plus unique", SASL_MECH_SCRAM_SHA_256_PLUS, "u",
		    "pw", "u", "pw", SASL_CB_TLS_UNIQUE, SASL_CB_TLS_UNIQUE,
		    cb_a, cb_a, true, 0, SASL_ERR_NONE },
		{ "plus binding mismatch", SASL_MECH_SCRAM_SHA_256_PLUS, "u",
		    "pw", "u", "pw", SASL_CB_TLS_EXPORTER, SASL_CB_TLS_EXPORTER,
		    cb_a, cb_b, true, -1, SASL_ERR_CHANNEL_BINDING },
		{ "sha-1-plus mismatch", SASL_MECH_SCRAM_SHA_1_PLUS, "u", "pw",
		    "u", "pw", SASL_CB_TLS_UNIQUE, SASL_CB_TLS_UNIQUE, cb_b,
		    cb_a, true, -1, SASL_ERR_CHANNEL_BINDING },
		{ "plus type mismatch", SASL_MECH_SCRAM_SHA_256_PLUS, "u", "pw",
		    "u", "pw", SASL_CB_TLS_EXPORTER, SASL_CB_TLS_UNIQUE, cb_a,
		    cb_a, true, -1, SASL_ERR_PROTOCOL },
		{ "plus wrong password", SASL_MECH_SCRAM_SHA_256_PLUS, "u",
		    "px", "u", "pw", SASL_CB_TLS_EXPORTER, SASL_CB_TLS_EXPORTER,
		    cb_a, cb_a, true, -1, SASL_ERR_CREDENTIALS },
		{ "y flag downgrade", SASL_MECH_SCRAM_SHA_256, "u", "pw", "u",
		    "pw", SASL_CB_TLS_EXPORTER, SASL_CB_TLS_EXPORTER, cb_a,
		    cb_a, true, -1, SASL_ERR_PROTOCOL },
		{ "y flag no server binding", SASL_MECH_SCRAM_SHA_256, "u",
		    "pw", "u", "pw", SASL_CB_TLS_EXPORTER, SASL_CB_NONE, cb_a,
		    NULL, false, 0, SASL_ERR_NONE },
		{ "n flag with server binding", SASL_MECH_SCRAM_SHA_1, "u",
		    "pw", "u", "pw", SASL_CB_NONE, SASL_CB_TLS_EXPORTER, NULL,
		    cb_a, true, 0, SASL_ERR_NONE },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct fake_store f = { cases[i].server_user,
			cases[i].server_pw, NULL, 4096, false, 0 };
		struct sasl_server_params sp = { .hostname = "mx.example",
			.now_ns = 1700000000123456789,
			.cb_type = cases[i].scb,
			.cb_data = span_of((const char *)cases[i].sdata,
			    cases[i].sdata != NULL ? 32 : 0),
			.plus_offered = cases[i].plus_offered,
			.creds = &fake_creds,
			.creds_arg = &f };
		struct sasl_client_params cp = { .user = cases[i].user,
			.password = cases[i].client_pw,
			.cb_type = cases[i].ccb,
			.cb_data = span_of((const char *)cases[i].cdata,
			    cases[i].cdata != NULL ? 32 : 0) };
		enum sasl_err err;
		const char *why = NULL;
		int rc = exchange(cases[i].mech, &cp, &sp, &err, &why);

		if (rc != cases[i].want_rc || err != cases[i].want_err)
			fail_msg("%s: rc %d err %d why %s", cases[i].name, rc,
			    err, why);
	}
	(void)state;
}

/* Parameters a server or client refuses before any message. */
static void
test_scram_new(void **state)
{
	struct fake_store f = { "u", "pw", NULL, 4096, false, 0 };
	struct sasl_server_creds none = { NULL, NULL, NULL };
	struct sasl_server_params sp = {
		.hostname = "mx.example", .creds = &fake_creds, .creds_arg = &f
	};
	struct sasl_client_params cp = { .user = "u", .password = "pw" };
	const char *why = NULL;

	/* -PLUS needs channel binding on the connection. */
	assert_null(sasl_server_new(SASL_MECH_SCRAM_SHA_256_PLUS, &sp, &why));
	assert_null(sasl_client_new(SASL_MECH_SCRAM_SHA_1_PLUS, &cp, &why));
	/* Binding type without data and the reverse. */
	sp.cb_type = SASL_CB_TLS_EXPORTER;
	assert_null(sasl_server_new(SASL_MECH_SCRAM_SHA_256_PLUS, &sp, &why));
	sp.cb_type = SASL_CB_NONE;
	sp.cb_data = span_of((const char *)cb_a, sizeof(cb_a));
	assert_null(sasl_server_new(SASL_MECH_SCRAM_SHA_256, &sp, &why));
	/* Binding data over SASL_CB_MAX. */
	sp.cb_type = SASL_CB_TLS_EXPORTER;
	sp.cb_data = span_of("0123456789012345678901234567890123456789"
	                     "012345678901234567890123456789",
	    SASL_CB_MAX + 1);
	assert_null(sasl_server_new(SASL_MECH_SCRAM_SHA_256_PLUS, &sp, &why));
	/* No SCRAM callback. */
	sp.cb_type = SASL_CB_NONE;
	sp.cb_data = span_of(NULL, 0);
	sp.creds = &none;
	assert_null(sasl_server_new(SASL_MECH_SCRAM_SHA_256, &sp, &why));
	assert_string_equal(why, "mechanism not available");
	/* Client: empty user or password, control characters, and a password
	 * PRECIS refuses. */
	cp.user = "";
	assert_null(sasl_client_new(SASL_MECH_SCRAM_SHA_256, &cp, &why));
	cp.user = "a\nb";
	assert_null(sasl_client_new(SASL_MECH_SCRAM_SHA_256, &cp, &why));
	cp.user = "u";
	cp.password = "";
	assert_null(sasl_client_new(SASL_MECH_SCRAM_SHA_256, &cp, &why));
	cp.password = "a\x01";
	assert_null(sasl_client_new(SASL_MECH_SCRAM_SHA_256, &cp, &why));
	cp.password = "\xff";
	assert_null(sasl_client_new(SASL_MECH_PLAIN, &cp, &why));
	(void)state;
}

static void
test_scram_derive(void **state)
{
	struct sasl_scram_secret s;
	const char *why = NULL;

	assert_int_equal(sasl_scram_secret_derive(
	                     SASL_HASH_SHA1, "pw", 2, "", 0, 4096, &s, &why),
	    -1);
	assert_int_equal(sasl_scram_secret_derive(
	                     SASL_HASH_SHA1, "pw", 2, "salt", 4, 0, &s, &why),
	    -1);
	assert_int_equal(sasl_scram_secret_derive(
	                     SASL_HASH_SHA256, "pw", 2, "salt", 4, 1, &s, &why),
	    0);
	assert_int_equal(s.key_len, 32);
	assert_int_equal(sasl_scram_hash_len(SASL_HASH_SHA1), 20);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scram_rfc_server),
		cmocka_unit_test(test_scram_rfc_client),
		cmocka_unit_test(test_scram_client_first),
		cmocka_unit_test(test_scram_client_final),
		cmocka_unit_test(test_scram_ack),
		cmocka_unit_test(test_scram_client_refuses),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_scram_new),
		cmocka_unit_test(test_scram_derive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
