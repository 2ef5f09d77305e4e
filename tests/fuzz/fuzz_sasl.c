/*
 * fuzz_sasl.c: fuzz target for the SASL state machines. The first input
 * byte picks the role (server or client), the mechanism and the channel
 * binding; the rest is a list of messages, each a 2-byte big-endian length
 * and that many bytes, fed to one exchange. The whole input also goes
 * through the strict base64 decoder, which must round-trip what it
 * accepts. Built with libFuzzer when FUZZING is defined; otherwise main()
 * feeds each file named on the command line, or with no arguments a
 * built-in set of hostile exchanges (valid ones with every byte replaced,
 * truncated, oversize, NUL-filled), and exits non-zero if a check fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "sasl/sasl.h"
#include "lib/banned.h"

#define FUZZ_INPUT_MAX (1024 * 1024)
#define FUZZ_STEPS_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t cb_bytes[32] = { 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70,
	0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x01 };

static int
store_plain(
    void *arg, const char *user, const char *password, enum sasl_err *err_out)
{
	(void)arg;
	if (strcmp(user, "user") != 0 || strcmp(password, "pencil") != 0) {
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	return 0;
}

static int
store_crammd5(void *arg, const char *user, struct sasl_crammd5_secret *out,
    enum sasl_err *err_out)
{
	(void)arg;
	if (strcmp(user, "user") != 0) {
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	sasl_crammd5_secret_derive("pencil", 6, out);
	return 0;
}

/* Few iterations: the fuzzer exercises parsing, not PBKDF2. */
static int
store_scram(void *arg, const char *user, enum sasl_hash h,
    struct sasl_scram_secret *out, enum sasl_err *err_out)
{
	const char *why;

	(void)arg;
	if (strcmp(user, "user") != 0) {
		*err_out = SASL_ERR_NO_SECRET;
		return -1;
	}
	if (sasl_scram_secret_derive(h, "pencil", 6, "salt", 4, 2, out, &why) ==
	    -1) {
		*err_out = SASL_ERR_TEMP;
		return -1;
	}
	return 0;
}

static const struct sasl_server_creds store = { store_plain, store_crammd5,
	store_scram };

static int
fixed_nonce(void *arg, struct buf *out)
{
	(void)arg;
	return buf_adds(out, "abcdefghijkl");
}

/* Split data into messages: 2-byte length then bytes; a short tail is
 * one last message. */
static size_t
next_msg(const uint8_t *data, size_t size, size_t *pos, struct span *m)
{
	size_t n;

	if (*pos >= size)
		return 0;
	if (size - *pos < 2) {
		*m = span_of((const char *)data + *pos, size - *pos);
		*pos = size;
		return 1;
	}
	n = (size_t)data[*pos] << 8 | data[*pos + 1];
	*pos += 2;
	if (n > size - *pos)
		n = size - *pos;
	*m = span_of((const char *)data + *pos, n);
	*pos += n;
	return 1;
}

static void
run_server(
    enum sasl_mech mech, enum sasl_cb_type cb, const uint8_t *data, size_t size)
{
	struct sasl_server_params p = { .hostname = "mx.example",
		.now_ns = 1,
		.cb_type = cb,
		.cb_data = span_of((const char *)cb_bytes,
		    cb != SASL_CB_NONE ? sizeof(cb_bytes) : 0),
		.plus_offered = cb != SASL_CB_NONE,
		.creds = &store,
		.nonce = fixed_nonce };
	const char *why = NULL;
	struct sasl_server *s = sasl_server_new(mech, &p, &why);
	struct buf out;
	size_t pos = 0;
	struct span m;

	if (s == NULL)
		return;
	buf_init(&out, SASL_MSG_MAX);
	for (int i = 0; i < FUZZ_STEPS_MAX && next_msg(data, size, &pos, &m);
	     i++) {
		/* An empty first message stands for "no initial response". */
		enum sasl_step rc =
		    sasl_server_step(s, m, i > 0 || m.len > 0, &out, &why);
		const char *u = sasl_server_username(s);

		if (buf_failed(&out) || why == NULL)
			abort();
		if (u != NULL && !utf8_valid(u, strlen(u)))
			abort();
		if (rc == SASL_FAIL && sasl_server_error(s) == SASL_ERR_NONE)
			abort();
		/* Success needs the store's user. */
		if (rc == SASL_OK && (u == NULL || strcmp(u, "user") != 0))
			abort();
		if (rc != SASL_CONTINUE)
			break;
	}
	sasl_server_free(s);
	buf_release(&out);
}

static void
run_client(
    enum sasl_mech mech, enum sasl_cb_type cb, const uint8_t *data, size_t size)
{
	struct sasl_client_params p = { .user = "user",
		.password = "pencil",
		.cb_type = cb,
		.cb_data = span_of((const char *)cb_bytes,
		    cb != SASL_CB_NONE ? sizeof(cb_bytes) : 0),
		.nonce = fixed_nonce };
	const char *why = NULL;
	struct sasl_client *c = sasl_client_new(mech, &p, &why);
	struct buf out;
	size_t pos = 0;
	struct span m;

	if (c == NULL)
		return;
	buf_init(&out, SASL_MSG_MAX);
	if (sasl_mech_info(mech)->client_first &&
	    sasl_client_step(c, span_of(NULL, 0), false, &out, &why) ==
	        SASL_FAIL)
		goto out;
	for (int i = 0; i < FUZZ_STEPS_MAX && next_msg(data, size, &pos, &m);
	     i++) {
		enum sasl_step rc = sasl_client_step(c, m, true, &out, &why);

		if (buf_failed(&out) || why == NULL)
			abort();
		if (rc != SASL_CONTINUE)
			break;
	}
out:
	sasl_client_free(c);
	buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum sasl_cb_type cbs[] = { SASL_CB_NONE,
		SASL_CB_TLS_EXPORTER, SASL_CB_TLS_UNIQUE, SASL_CB_NONE };
	struct buf b, e;
	const char *why;
	enum sasl_mech mech;
	enum sasl_cb_type cb;

	buf_init(&b, SASL_MSG_MAX);
	if (sasl_b64_decode(span_of((const char *)data, size), &b, &why) == 0) {
		buf_init(&e, 2 * SASL_MSG_MAX);
		if (sasl_b64_encode(b.data, b.len, &e) == -1 || e.len != size ||
		    memcmp(e.data, data, size) != 0)
			abort();
		buf_release(&e);
	}
	buf_release(&b);
	if (size == 0)
		return 0;
	mech = (enum sasl_mech)((data[0] & 0x0f) % SASL_MECH_COUNT);
	cb = cbs[(data[0] >> 4) & 3];
	if (data[0] & 0x80)
		run_client(mech, cb, data + 1, size - 1);
	else
		run_server(mech, cb, data + 1, size - 1);
	return 0;
}

#ifndef FUZZING
static void
add_msg(struct buf *in, const char *p, size_t n)
{
	buf_addc(in, (char)(n >> 8));
	buf_addc(in, (char)(n & 0xff));
	buf_add(in, p, n);
}

/* One exchange: config byte, then messages; message k is replaced by
 * mutant when k == which. */
static void
feed(uint8_t config, const char *const *msgs, size_t n, size_t which,
    struct span mutant)
{
	struct buf in;

	buf_init(&in, FUZZ_INPUT_MAX);
	buf_addc(&in, (char)config);
	for (size_t k = 0; k < n; k++) {
		if (k == which)
			add_msg(&in, mutant.p, mutant.len);
		else
			add_msg(&in, msgs[k], strlen(msgs[k]));
	}
	if (buf_failed(&in))
		abort();
	LLVMFuzzerTestOneInput((const uint8_t *)in.data, in.len);
	buf_release(&in);
}

/* Every prefix of each message and every byte replaced by a hostile one. */
static void
mutate_all(uint8_t config, const char *const *msgs, size_t n)
{
	static const char hostile[] = { '\0', ',', '=', 'p', 'y', 'm', '\xff',
		'\xc3', ' ', '\n' };

	for (size_t k = 0; k < n; k++) {
		size_t len = strlen(msgs[k]);
		char *m = malloc(len + 1);

		if (m == NULL)
			abort();
		for (size_t cut = 0; cut <= len; cut++)
			feed(config, msgs, n, k, span_of(msgs[k], cut));
		for (size_t i = 0; i < len; i++) {
			for (size_t h = 0; h < sizeof(hostile); h++) {
				memcpy(m, msgs[k], len);
				m[i] = hostile[h];
				feed(config, msgs, n, k, span_of(m, len));
			}
		}
		free(m);
	}
}

static void
builtin(void)
{
	static const char *const plain[] = { "\0user\0pencil" };
	static const char *const login[] = { "", "user", "pencil" };
	static const char *const cram[] = { "",
		"user 0123456789abcdef0123456789abcdef" };
	static const char *const scram[] = { "n,,n=user,r=0123456789",
		"c=biws,r=0123456789abcdefghijkl,p="
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"" };
	static const char *const scram_client[] = {
		"r=abcdefghijklXYZ,s=c2FsdA==,i=2048",
		"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	};
	static const char *const cram_client[] = { "<1.2@mx.example>" };
	static const char *const login_client[] = { "Username:", "Password:" };
	static char big[SASL_MSG_MAX + 2];
	const char *bigs[2] = { big, big };
	const char *scram_plus[2] = { "p=tls-exporter,,n=user,r=0123456789",
		NULL };
	struct buf cbind, final;

	/* A client-final with the right binding data and a wrong proof. */
	buf_init(&cbind, 256);
	buf_init(&final, 512);
	buf_adds(&cbind, "p=tls-exporter,,");
	buf_add(&cbind, cb_bytes, sizeof(cb_bytes));
	buf_adds(&final, "c=");
	sasl_b64_encode(cbind.data, cbind.len, &final);
	buf_adds(&final, ",r=0123456789abcdefghijkl,p="
	                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	scram_plus[1] = final.data;

	memset(big, 'A', sizeof(big) - 1);
	mutate_all(SASL_MECH_PLAIN, plain, 1);
	mutate_all(SASL_MECH_LOGIN, login, 3);
	mutate_all(SASL_MECH_CRAM_MD5, cram, 2);
	mutate_all(SASL_MECH_SCRAM_SHA_256, scram, 3);
	mutate_all(SASL_MECH_SCRAM_SHA_1, scram, 3);
	mutate_all(SASL_MECH_SCRAM_SHA_256_PLUS | 0x10, scram_plus, 2);
	mutate_all(SASL_MECH_SCRAM_SHA_256 | 0x80, scram_client, 2);
	mutate_all(SASL_MECH_CRAM_MD5 | 0x80, cram_client, 1);
	mutate_all(SASL_MECH_LOGIN | 0x80, login_client, 2);
	/* Oversize and NUL-filled messages for every mechanism and role. */
	for (uint8_t m = 0; m < SASL_MECH_COUNT; m++) {
		for (int role = 0; role < 2; role++) {
			uint8_t config =
			    (uint8_t)(m | (role ? 0x80 : 0) | 0x10);

			feed(config, bigs, 2, SIZE_MAX, span_of(NULL, 0));
			memset(big, '\0', 64);
			feed(config, bigs, 1, 0, span_of(big, 64));
			feed(config, bigs, 1, 0, span_of(big, 0));
			memset(big, 'A', 64);
		}
	}
	buf_release(&cbind);
	buf_release(&final);
}

int
main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2) {
		builtin();
		printf("fuzz_sasl: built-in hostile inputs passed\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		struct buf in, err;

		buf_init(&in, FUZZ_INPUT_MAX);
		buf_init(&err, 1024);
		if (io_read_file(argv[i], &in, &err) == -1) {
			fprintf(
			    stderr, "fuzz_sasl: %s: %s\n", argv[i], err.data);
			rc = 1;
		} else {
			LLVMFuzzerTestOneInput(
			    (const uint8_t *)in.data, in.len);
		}
		buf_release(&in);
		buf_release(&err);
	}
	return rc;
}
#endif
