/*
 * test_sasl.c: strict base64, the mechanism table and client choice
 * (spec/queue.md 6), PLAIN (RFC 4616) with its authzid rule, LOGIN,
 * CRAM-MD5 (RFC 2195 example) and hostile messages for each server state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <nettle/hmac.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "sasl/sasl.h"
#include "lib/banned.h"

struct fake_store {
	const char *user;
	const char *password;
	int calls;
	enum sasl_err fail_with; /* SASL_ERR_NONE: answer normally */
};

static int
fake_plain(
    void *arg, const char *user, const char *password, enum sasl_err *err_out)
{
	struct fake_store *f = arg;

	f->calls++;
	if (f->fail_with != SASL_ERR_NONE) {
		*err_out = f->fail_with;
		return -1;
	}
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
	if (f->fail_with != SASL_ERR_NONE) {
		*err_out = f->fail_with;
		return -1;
	}
	if (strcmp(user, f->user) != 0) {
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	sasl_crammd5_secret_derive(f->password, strlen(f->password), out);
	return 0;
}

static const struct sasl_server_creds fake_creds = { fake_plain, fake_crammd5,
	NULL };

static int
fixed_nonce(void *arg, struct buf *out)
{
	return buf_adds(out, arg);
}

static void
test_b64(void **state)
{
	static const struct {
		const char *in;
		int want_rc;
		const char *want;
		size_t max;
		size_t want_len; /* 0: strlen(want) */
	} cases[] = {
		{ "", 0, "", 100, 0 },
		{ "Zm9v", 0, "foo", 100, 0 },
		{ "Zm8=", 0, "fo", 100, 0 },
		{ "Zg==", 0, "f", 100, 0 },
		{ "Zm9vYmFy", 0, "foobar", 100, 0 },
		{ "AGpvZQBwdw==", 0, "\0joe\0pw", 100, 7 },
		{ "Zm9v", 0, "foo", 3, 0 },
		{ "Zm9v", -1, NULL, 2, 0 },  /* out's max */
		{ "Zg=", -1, NULL, 100, 0 }, /* not padded */
		{ "Zg", -1, NULL, 100, 0 },
		{ "Zm9v\r\n", -1, NULL, 100, 0 },
		{ "Zm 9v", -1, NULL, 100, 0 },
		{ " Zm9", -1, NULL, 100, 0 },
		{ "Zh==", -1, NULL, 100, 0 }, /* non-zero unused bits */
		{ "Zm9=", -1, NULL, 100, 0 },
		{ "====", -1, NULL, 100, 0 },
		{ "Z===", -1, NULL, 100, 0 },
		{ "Zg==Zg==", -1, NULL, 100, 0 },
		{ "Zm=v", -1, NULL, 100, 0 },
		{ "Zm9v!", -1, NULL, 100, 0 },
		{ "Zm9-", -1, NULL, 100, 0 }, /* base64url is not base64 */
		{ "Zm9_", -1, NULL, 100, 0 },
		{ "*", -1, NULL, 100, 0 }, /* the abort line is the caller's */
		{ "=", -1, NULL, 100, 0 }, /* empty response is the caller's */
		{ "Zm9\xc3", -1, NULL, 100, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf out;
		const char *why = NULL;
		int rc;

		buf_init(&out, cases[i].max);
		rc = sasl_b64_decode(span_of_cstr(cases[i].in), &out, &why);
		if (rc != cases[i].want_rc ||
		    (rc == 0 &&
		        (out.len != (cases[i].want_len != 0
		                            ? cases[i].want_len
		                            : strlen(cases[i].want)) ||
		            memcmp(out.data, cases[i].want, out.len) != 0)))
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].in, rc,
			    why != NULL ? why : "");
		if (rc == 0) {
			struct buf enc;

			buf_init(&enc, 100);
			assert_int_equal(
			    sasl_b64_encode(out.data, out.len, &enc), 0);
			assert_string_equal(enc.data, cases[i].in);
			buf_release(&enc);
		}
		buf_release(&out);
	}
	(void)state;
}

static void
test_b64_nul(void **state)
{
	struct buf out;
	const char *why;

	buf_init(&out, 100);
	/* A NUL inside the base64 text is not base64. */
	assert_int_equal(sasl_b64_decode(span_of("Zm\0v", 4), &out, &why), -1);
	buf_reset(&out);
	assert_int_equal(sasl_b64_encode("a", 1, &out), 0);
	assert_string_equal(out.data, "YQ==");
	buf_release(&out);
	buf_init(&out, 3);
	assert_int_equal(sasl_b64_encode("a", 1, &out), -1);
	buf_release(&out);
	(void)state;
}

static void
test_mech(void **state)
{
	static const struct {
		const char *name;
		int want_rc;
		enum sasl_mech want;
	} cases[] = {
		{ "PLAIN", 0, SASL_MECH_PLAIN },
		{ "plain", 0, SASL_MECH_PLAIN },
		{ "LOGIN", 0, SASL_MECH_LOGIN },
		{ "CRAM-MD5", 0, SASL_MECH_CRAM_MD5 },
		{ "SCRAM-SHA-1", 0, SASL_MECH_SCRAM_SHA_1 },
		{ "SCRAM-SHA-1-PLUS", 0, SASL_MECH_SCRAM_SHA_1_PLUS },
		{ "SCRAM-SHA-256", 0, SASL_MECH_SCRAM_SHA_256 },
		{ "Scram-Sha-256-Plus", 0, SASL_MECH_SCRAM_SHA_256_PLUS },
		{ "SCRAM-SHA-512", -1, 0 },
		{ "", -1, 0 },
		{ "PLAIN ", -1, 0 },
		{ "GSSAPI", -1, 0 },
	};
	size_t n;
	const struct sasl_mech_info *l = sasl_mech_list(&n);
	enum sasl_cb_type t;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		enum sasl_mech m = 0;
		int rc = sasl_mech_lookup(span_of_cstr(cases[i].name), &m);

		if (rc != cases[i].want_rc || (rc == 0 && m != cases[i].want))
			fail_msg("case %s: rc %d", cases[i].name, rc);
	}
	assert_int_equal(n, SASL_MECH_COUNT);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(sasl_mech_info(l[i].mech), &l[i]);
		assert_int_equal(l[i].plus, strstr(l[i].name, "-PLUS") != NULL);
	}
	assert_true(sasl_mech_info(SASL_MECH_PLAIN)->clear_password);
	assert_false(sasl_mech_info(SASL_MECH_CRAM_MD5)->client_first);
	assert_int_equal(sasl_cb_lookup(span_of_cstr("tls-exporter"), &t), 0);
	assert_int_equal(t, SASL_CB_TLS_EXPORTER);
	assert_string_equal(sasl_cb_name(SASL_CB_TLS_UNIQUE), "tls-unique");
	assert_int_equal(
	    sasl_cb_lookup(span_of_cstr("tls-server-end-point"), &t), -1);
	(void)state;
}

static void
test_select(void **state)
{
	static const enum sasl_mech only256[] = { SASL_MECH_SCRAM_SHA_256 };
	static const enum sasl_mech cram_plain[] = { SASL_MECH_CRAM_MD5,
		SASL_MECH_PLAIN };
	static const enum sasl_mech login[] = { SASL_MECH_LOGIN };
	static const struct {
		const char *name;
		const char *offered;
		const enum sasl_mech *prefs;
		size_t nprefs;
		enum sasl_cb_type cb;
		int want_rc;
		enum sasl_mech want;
		enum sasl_cb_type want_cb;
	} cases[] = {
		{ "plus with binding",
		    "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 "
		    "SCRAM-SHA-256 SCRAM-SHA-256-PLUS",
		    NULL, 0, SASL_CB_TLS_EXPORTER, 0,
		    SASL_MECH_SCRAM_SHA_256_PLUS, SASL_CB_TLS_EXPORTER },
		{ "plus without binding",
		    "PLAIN SCRAM-SHA-256 "
		    "SCRAM-SHA-256-PLUS",
		    NULL, 0, SASL_CB_NONE, 0, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_NONE },
		{ "plus not offered: y", "SCRAM-SHA-1 SCRAM-SHA-256", NULL, 0,
		    SASL_CB_TLS_UNIQUE, 0, SASL_MECH_SCRAM_SHA_256,
		    SASL_CB_TLS_UNIQUE },
		{ "plus not wanted: n", "SCRAM-SHA-256 SCRAM-SHA-256-PLUS",
		    only256, ARRAY_LEN(only256), SASL_CB_TLS_EXPORTER, 0,
		    SASL_MECH_SCRAM_SHA_256, SASL_CB_NONE },
		{ "sha-1-plus", "SCRAM-SHA-1-PLUS SCRAM-SHA-1", NULL, 0,
		    SASL_CB_TLS_EXPORTER, 0, SASL_MECH_SCRAM_SHA_1_PLUS,
		    SASL_CB_TLS_EXPORTER },
		{ "lower case", "scram-sha-1 cram-md5", NULL, 0, SASL_CB_NONE,
		    0, SASL_MECH_SCRAM_SHA_1, SASL_CB_NONE },
		{ "cram before plain", "PLAIN CRAM-MD5", NULL, 0, SASL_CB_NONE,
		    0, SASL_MECH_CRAM_MD5, SASL_CB_NONE },
		{ "plain last", "LOGIN PLAIN", NULL, 0, SASL_CB_NONE, 0,
		    SASL_MECH_PLAIN, SASL_CB_NONE },
		{ "login not by default", "LOGIN", NULL, 0, SASL_CB_NONE, -1, 0,
		    0 },
		{ "login when asked", "LOGIN", login, 1, SASL_CB_NONE, 0,
		    SASL_MECH_LOGIN, SASL_CB_NONE },
		{ "prefs order", "PLAIN CRAM-MD5 SCRAM-SHA-256", cram_plain,
		    ARRAY_LEN(cram_plain), SASL_CB_NONE, 0, SASL_MECH_CRAM_MD5,
		    SASL_CB_NONE },
		{ "nothing offered", "", NULL, 0, SASL_CB_NONE, -1, 0, 0 },
		{ "prefix is not a name", "SCRAM-SHA-256-PLUSX SCRAM-SHA", NULL,
		    0, SASL_CB_TLS_EXPORTER, -1, 0, 0 },
		{ "extra spaces", "  GSSAPI\tSCRAM-SHA-1  ", NULL, 0,
		    SASL_CB_NONE, 0, SASL_MECH_SCRAM_SHA_1, SASL_CB_NONE },
		{ "no common", "GSSAPI XOAUTH2", NULL, 0, SASL_CB_TLS_EXPORTER,
		    -1, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		enum sasl_mech m = 0;
		enum sasl_cb_type cb = 0;
		const char *why = NULL;
		int rc = sasl_client_select(span_of_cstr(cases[i].offered),
		    cases[i].prefs, cases[i].nprefs, cases[i].cb, &m, &cb,
		    &why);

		if (rc != cases[i].want_rc ||
		    (rc == 0 && (m != cases[i].want || cb != cases[i].want_cb)))
			fail_msg("%s: rc %d mech %d cb %d", cases[i].name, rc,
			    m, cb);
	}
	(void)state;
}

/* Run one server exchange over msgs (have_msg false for the first when
 * first_absent), expecting each reply's rc and the end state. */
struct srv_case {
	const char *name;
	enum sasl_mech mech;
	bool first_absent;
	const char *msgs[4];
	size_t lens[4]; /* 0: strlen */
	const char *want_out[4];
	int want_rc[4];
	enum sasl_err want_err;
	const char *want_user; /* NULL: none */
};

static void
run_server_cases(
    const struct srv_case *cases, size_t n, struct fake_store *store_proto)
{
	for (size_t i = 0; i < n; i++) {
		struct fake_store f = *store_proto;
		struct sasl_server_params p = { .hostname =
			                            "postoffice.reston.mci.net",
			.now_ns = 697170952,
			.creds = &fake_creds,
			.creds_arg = &f,
			.nonce = fixed_nonce,
			.nonce_arg = (void *)"1896" };
		const char *why = NULL;
		struct sasl_server *s =
		    sasl_server_new(cases[i].mech, &p, &why);
		struct buf out;
		int rc = SASL_CONTINUE;

		if (s == NULL)
			fail_msg("%s: new: %s", cases[i].name, why);
		buf_init(&out, SASL_MSG_MAX);
		for (size_t j = 0; j < 4 && cases[i].msgs[j] != NULL; j++) {
			bool absent = j == 0 && cases[i].first_absent;
			size_t len = cases[i].lens[j] != 0
			                 ? cases[i].lens[j]
			                 : strlen(cases[i].msgs[j]);

			rc = sasl_server_step(s, span_of(cases[i].msgs[j], len),
			    !absent, &out, &why);
			if (rc != cases[i].want_rc[j])
				fail_msg("%s: step %zu rc %d %s", cases[i].name,
				    j, rc, why);
			if (cases[i].want_out[j] != NULL &&
			    strcmp(out.data, cases[i].want_out[j]) != 0)
				fail_msg("%s: step %zu out %s", cases[i].name,
				    j, out.data);
		}
		if (sasl_server_error(s) != cases[i].want_err)
			fail_msg("%s: err %d %s", cases[i].name,
			    sasl_server_error(s), why);
		if ((cases[i].want_user == NULL) !=
		        (sasl_server_username(s) == NULL) ||
		    (cases[i].want_user != NULL &&
		        strcmp(cases[i].want_user, sasl_server_username(s)) !=
		            0))
			fail_msg("%s: user %s", cases[i].name,
			    sasl_server_username(s));
		sasl_server_free(s);
		buf_release(&out);
	}
}

#define OK1                                                                    \
	{                                                                      \
		SASL_OK                                                        \
	}
#define FAIL1                                                                  \
	{                                                                      \
		SASL_FAIL                                                      \
	}

/* RFC 4616 2 and spec/imap.md 4: PLAIN. */
static void
test_plain(void **state)
{
	static const struct srv_case cases[] = {
		{ "no authzid", SASL_MECH_PLAIN, false, { "\0user\0pencil" },
		    { 12 }, { "" }, OK1, SASL_ERR_NONE, "user" },
		{ "authzid same", SASL_MECH_PLAIN, false,
		    { "user\0user\0pencil" }, { 16 }, { "" }, OK1,
		    SASL_ERR_NONE, "user" },
		{ "authzid other", SASL_MECH_PLAIN, false,
		    { "admin\0user\0pencil" }, { 17 }, { "" }, FAIL1,
		    SASL_ERR_AUTHZ, "user" },
		{ "wrong password", SASL_MECH_PLAIN, false,
		    { "\0user\0pencil2" }, { 13 }, { "" }, FAIL1,
		    SASL_ERR_CREDENTIALS, "user" },
		{ "unknown user", SASL_MECH_PLAIN, false,
		    { "\0nobody\0pencil" }, { 14 }, { "" }, FAIL1,
		    SASL_ERR_CREDENTIALS, "nobody" },
		{ "no initial response", SASL_MECH_PLAIN, true,
		    { "", "\0user\0pencil" }, { 0, 12 }, { "", "" },
		    { SASL_CONTINUE, SASL_OK }, SASL_ERR_NONE, "user" },
		{ "two fields", SASL_MECH_PLAIN, false, { "\0user" }, { 5 },
		    { "" }, FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "four fields", SASL_MECH_PLAIN, false, { "\0user\0pencil\0" },
		    { 13 }, { "" }, FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "empty", SASL_MECH_PLAIN, false, { "" }, { 0 }, { "" }, FAIL1,
		    SASL_ERR_PROTOCOL, NULL },
		{ "only nuls", SASL_MECH_PLAIN, false, { "\0\0" }, { 2 },
		    { "" }, FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "empty authcid", SASL_MECH_PLAIN, false, { "\0\0pencil" },
		    { 8 }, { "" }, FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "empty password", SASL_MECH_PLAIN, false, { "\0user\0" },
		    { 6 }, { "" }, FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "control in user", SASL_MECH_PLAIN, false,
		    { "\0us\r\ner\0pencil" }, { 14 }, { "" }, FAIL1,
		    SASL_ERR_PROTOCOL, NULL },
		{ "bad utf-8 user", SASL_MECH_PLAIN, false,
		    { "\0us\xc3\x28\0pencil" }, { 12 }, { "" }, FAIL1,
		    SASL_ERR_PROTOCOL, NULL },
		{ "bad utf-8 password", SASL_MECH_PLAIN, false,
		    { "\0user\0\xff\xfe" }, { 8 }, { "" }, FAIL1,
		    SASL_ERR_PROTOCOL, NULL },
		{ "bad utf-8 authzid", SASL_MECH_PLAIN, false,
		    { "\xc0\x80\0user\0pencil" }, { 14 }, { "" }, FAIL1,
		    SASL_ERR_PROTOCOL, NULL },
		{ "missing after challenge", SASL_MECH_PLAIN, true, { "", "" },
		    { 0, 0 }, { "", "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "after end", SASL_MECH_PLAIN, false,
		    { "\0user\0pencil", "\0user\0pencil" }, { 12, 12 },
		    { "", "" }, { SASL_OK, SASL_FAIL }, SASL_ERR_PROTOCOL,
		    "user" },
	};
	struct fake_store f = { "user", "pencil", 0, SASL_ERR_NONE };

	run_server_cases(cases, ARRAY_LEN(cases), &f);
	(void)state;
}

/* draft-murchison-sasl-login-00: prompts, then user, then password. */
static void
test_login(void **state)
{
	static const struct srv_case cases[] = {
		{ "prompts", SASL_MECH_LOGIN, true, { "", "user", "pencil" },
		    { 0 }, { "Username:", "Password:", "" },
		    { SASL_CONTINUE, SASL_CONTINUE, SASL_OK }, SASL_ERR_NONE,
		    "user" },
		{ "initial response", SASL_MECH_LOGIN, false,
		    { "user", "pencil" }, { 0 }, { "Password:", "" },
		    { SASL_CONTINUE, SASL_OK }, SASL_ERR_NONE, "user" },
		{ "wrong password", SASL_MECH_LOGIN, false, { "user", "pencl" },
		    { 0 }, { "Password:", "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_CREDENTIALS, "user" },
		{ "empty user", SASL_MECH_LOGIN, true, { "", "" }, { 0 },
		    { "Username:", "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "empty password", SASL_MECH_LOGIN, false, { "user", "" },
		    { 0 }, { "Password:", "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_CREDENTIALS, "user" },
		{ "nul in user", SASL_MECH_LOGIN, false, { "us\0er" }, { 5 },
		    { "" }, FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "nul in password", SASL_MECH_LOGIN, false,
		    { "user", "pen\0cil" }, { 4, 7 }, { "Password:", "" },
		    { SASL_CONTINUE, SASL_FAIL }, SASL_ERR_PROTOCOL, "user" },
	};
	struct fake_store f = { "user", "pencil", 0, SASL_ERR_NONE };

	run_server_cases(cases, ARRAY_LEN(cases), &f);
	(void)state;
}

/* RFC 2195 2: the example exchange, and malformed responses. */
static void
test_cram_md5(void **state)
{
	static const char chal[] = "<1896.697170952@postoffice.reston.mci.net>";
	static const struct srv_case cases[] = {
		{ "rfc2195", SASL_MECH_CRAM_MD5, true,
		    { "", "tim b913a602c7eda7a495b4e6e7334d3890" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_OK }, SASL_ERR_NONE,
		    "tim" },
		{ "upper-case hex", SASL_MECH_CRAM_MD5, true,
		    { "", "tim B913A602C7EDA7A495B4E6E7334D3890" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_OK }, SASL_ERR_NONE,
		    "tim" },
		{ "wrong digest", SASL_MECH_CRAM_MD5, true,
		    { "", "tim b913a602c7eda7a495b4e6e7334d3891" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_CREDENTIALS, "tim" },
		{ "wrong user", SASL_MECH_CRAM_MD5, true,
		    { "", "tom b913a602c7eda7a495b4e6e7334d3890" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_CREDENTIALS, "tom" },
		{ "initial response", SASL_MECH_CRAM_MD5, false,
		    { "tim b913a602c7eda7a495b4e6e7334d3890" }, { 0 }, { "" },
		    FAIL1, SASL_ERR_PROTOCOL, NULL },
		{ "no digest", SASL_MECH_CRAM_MD5, true, { "", "tim" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "short digest", SASL_MECH_CRAM_MD5, true,
		    { "", "tim b913a602c7eda7a495b4e6e7334d389" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "long digest", SASL_MECH_CRAM_MD5, true,
		    { "", "tim b913a602c7eda7a495b4e6e7334d38900" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "not hex", SASL_MECH_CRAM_MD5, true,
		    { "", "tim g913a602c7eda7a495b4e6e7334d3890" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "empty user", SASL_MECH_CRAM_MD5, true,
		    { "", " b913a602c7eda7a495b4e6e7334d3890" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "empty", SASL_MECH_CRAM_MD5, true, { "", "" }, { 0 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
		{ "nul in user", SASL_MECH_CRAM_MD5, true,
		    { "", "t\0m b913a602c7eda7a495b4e6e7334d3890" }, { 0, 36 },
		    { chal, "" }, { SASL_CONTINUE, SASL_FAIL },
		    SASL_ERR_PROTOCOL, NULL },
	};
	struct fake_store f = { "tim", "tanstaaftanstaaf", 0, SASL_ERR_NONE };
	struct sasl_client_params cp = { .user = "tim",
		.password = "tanstaaftanstaaf" };
	struct sasl_client *c;
	struct buf out;
	const char *why;

	run_server_cases(cases, ARRAY_LEN(cases), &f);
	/* The client computes the RFC's response. */
	c = sasl_client_new(SASL_MECH_CRAM_MD5, &cp, &why);
	buf_init(&out, SASL_MSG_MAX);
	assert_int_equal(
	    sasl_client_step(c, span_of(NULL, 0), false, &out, &why),
	    SASL_FAIL);
	sasl_client_free(c);
	c = sasl_client_new(SASL_MECH_CRAM_MD5, &cp, &why);
	assert_int_equal(
	    sasl_client_step(c, span_of_cstr(chal), true, &out, &why), SASL_OK);
	assert_string_equal(out.data, "tim b913a602c7eda7a495b4e6e7334d3890");
	sasl_client_free(c);
	buf_release(&out);
	(void)state;
}

/* The stored chaining values give plain HMAC-MD5, short and long keys. */
static void
test_cram_secret(void **state)
{
	static const char *const pws[] = { "", "a", "tanstaaftanstaaf",
		"01234567890123456789012345678901234567890123456789012345678901"
		"23",
		"01234567890123456789012345678901234567890123456789012345678901"
		"23"
		"4" };

	for (size_t i = 0; i < ARRAY_LEN(pws); i++) {
		struct sasl_crammd5_secret s;
		struct hmac_md5_ctx h;
		uint8_t want[16], got[16];

		sasl_crammd5_secret_derive(pws[i], strlen(pws[i]), &s);
		sasl_crammd5_digest(&s, "<x@y>", 5, got);
		hmac_md5_set_key(&h, strlen(pws[i]), (const uint8_t *)pws[i]);
		hmac_md5_update(&h, 5, (const uint8_t *)"<x@y>");
		hmac_md5_digest(&h, sizeof(want), want);
		if (memcmp(got, want, sizeof(want)) != 0)
			fail_msg("password %zu", i);
	}
	(void)state;
}

/* Callback results map to the failure classes. */
static void
test_callback_errors(void **state)
{
	static const enum sasl_err errs[] = { SASL_ERR_CREDENTIALS,
		SASL_ERR_NO_SECRET, SASL_ERR_TEMP };

	for (size_t i = 0; i < ARRAY_LEN(errs); i++) {
		struct srv_case c[] = {
			{ "plain", SASL_MECH_PLAIN, false, { "\0user\0pencil" },
			    { 12 }, { "" }, FAIL1, errs[i], "user" },
			{ "cram", SASL_MECH_CRAM_MD5, true,
			    { "", "tim b913a602c7eda7a495b4e6e7334d3890" },
			    { 0 }, { NULL, "" }, { SASL_CONTINUE, SASL_FAIL },
			    errs[i], "tim" },
		};
		struct fake_store f = { "user", "pencil", 0, errs[i] };

		run_server_cases(c, ARRAY_LEN(c), &f);
	}
	(void)state;
}

/* Oversize and missing messages in every server state, refused
 * parameters. */
static void
test_hostile(void **state)
{
	static const enum sasl_mech mechs[] = { SASL_MECH_PLAIN,
		SASL_MECH_LOGIN, SASL_MECH_CRAM_MD5 };
	static char huge[SASL_MSG_MAX + 1];
	struct fake_store f = { "user", "pencil", 0, SASL_ERR_NONE };
	struct sasl_server_params p = {
		.hostname = "mx.example", .creds = &fake_creds, .creds_arg = &f
	};
	struct buf out;
	const char *why;

	memset(huge, 'a', sizeof(huge));
	huge[1] = '\0';
	huge[100] = '\0';
	buf_init(&out, SASL_MSG_MAX);
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++) {
		struct sasl_server *s;

		/* Oversize as the first message after the challenge. */
		s = sasl_server_new(mechs[i], &p, &why);
		assert_int_equal(
		    sasl_server_step(s, span_of(NULL, 0), false, &out, &why),
		    SASL_CONTINUE);
		assert_int_equal(
		    sasl_server_step(
		        s, span_of(huge, sizeof(huge)), true, &out, &why),
		    SASL_FAIL);
		assert_int_equal(sasl_server_error(s), SASL_ERR_PROTOCOL);
		sasl_server_free(s);
		/* Exactly the maximum is parsed (and refused as content). */
		s = sasl_server_new(mechs[i], &p, &why);
		assert_int_equal(
		    sasl_server_step(s, span_of(NULL, 0), false, &out, &why),
		    SASL_CONTINUE);
		assert_int_equal(
		    sasl_server_step(
		        s, span_of(huge, SASL_MSG_MAX), true, &out, &why),
		    SASL_FAIL);
		sasl_server_free(s);
	}
	/* CRAM-MD5 needs a sane host name for its challenge. */
	p.hostname = "bad host";
	assert_null(sasl_server_new(SASL_MECH_CRAM_MD5, &p, &why));
	p.hostname = NULL;
	assert_null(sasl_server_new(SASL_MECH_CRAM_MD5, &p, &why));
	p.hostname = "mx.example";
	p.creds = NULL;
	assert_null(sasl_server_new(SASL_MECH_PLAIN, &p, &why));
	/* Random challenge when no nonce source is given. */
	p.creds = &fake_creds;
	{
		struct sasl_server *s =
		    sasl_server_new(SASL_MECH_CRAM_MD5, &p, &why);

		assert_int_equal(
		    sasl_server_step(s, span_of(NULL, 0), false, &out, &why),
		    SASL_CONTINUE);
		assert_true(out.len > 10 && out.data[0] == '<' &&
		            strstr(out.data, "@mx.example>") != NULL);
		sasl_server_free(s);
	}
	sasl_server_free(NULL);
	sasl_client_free(NULL);
	buf_release(&out);
	(void)state;
}

/* The client: PLAIN and LOGIN messages, refusals. */
static void
test_client_plain_login(void **state)
{
	struct sasl_client_params cp = { .user = "user", .password = "pencil" };
	struct sasl_client *c;
	struct buf out;
	const char *why;

	buf_init(&out, SASL_MSG_MAX);
	c = sasl_client_new(SASL_MECH_PLAIN, &cp, &why);
	assert_int_equal(
	    sasl_client_step(c, span_of(NULL, 0), false, &out, &why), SASL_OK);
	assert_int_equal(out.len, 12);
	assert_memory_equal(out.data, "\0user\0pencil", 12);
	assert_int_equal(
	    sasl_client_step(c, span_of(NULL, 0), true, &out, &why), SASL_FAIL);
	sasl_client_free(c);
	c = sasl_client_new(SASL_MECH_LOGIN, &cp, &why);
	assert_int_equal(
	    sasl_client_step(c, span_of(NULL, 0), false, &out, &why),
	    SASL_FAIL);
	sasl_client_free(c);
	c = sasl_client_new(SASL_MECH_LOGIN, &cp, &why);
	assert_int_equal(
	    sasl_client_step(c, span_of_cstr("User Name"), true, &out, &why),
	    SASL_CONTINUE);
	assert_string_equal(out.data, "user");
	assert_int_equal(
	    sasl_client_step(c, span_of_cstr("Password"), true, &out, &why),
	    SASL_OK);
	assert_string_equal(out.data, "pencil");
	sasl_client_free(c);
	c = sasl_client_new(SASL_MECH_CRAM_MD5, &cp, &why);
	assert_int_equal(
	    sasl_client_step(c, span_of("", 0), true, &out, &why), SASL_FAIL);
	sasl_client_free(c);
	buf_release(&out);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_b64_nul),
		cmocka_unit_test(test_mech),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_cram_md5),
		cmocka_unit_test(test_cram_secret),
		cmocka_unit_test(test_callback_errors),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_client_plain_login),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
