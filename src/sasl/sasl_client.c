/*
 * sasl_client.c: client side of PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login-00), CRAM-MD5 (RFC 2195) and SCRAM-SHA-1/256
 * with -PLUS (RFC 5802, RFC 7677, RFC 5929, RFC 9266), and the choice of a
 * mechanism from a server's list (spec/queue.md 6).
 *
 * Trust: server messages come from a peer we authenticate to, possibly an
 * impostor: they are bounded and parsed strictly, the SCRAM server
 * signature is checked in constant time and the iteration count is
 * bounded. The password is kept only in this object and wiped on free.
 * Threads: one object on one thread at a time; no globals, no logging.
 * SCRAM runs PBKDF2 in sasl_client_step(): not on the reactor.
 */
#include <inttypes.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/xmalloc.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

enum cli_state {
	CLI_START,       /* nothing sent */
	CLI_LOGIN_PASS,  /* user name sent, await password prompt */
	CLI_SCRAM_FIRST, /* client-first sent */
	CLI_SCRAM_FINAL, /* client-final sent */
	CLI_DONE,        /* succeeded or failed */
};

struct sasl_client {
	enum sasl_mech mech;
	enum cli_state state;
	char *user;     /* owned */
	char *password; /* owned, normalised for SCRAM, wiped */
	size_t password_len;
	enum sasl_cb_type cb_type;
	uint8_t cb_data[SASL_CB_MAX];
	size_t cb_len;
	sasl_nonce_fn *nonce;
	void *nonce_arg;
	struct buf gs2;  /* gs2-header sent */
	struct buf bare; /* client-first-message-bare sent */
	struct buf cnonce;
	uint8_t server_sig[SASL_SCRAM_KEY_MAX]; /* expected ServerSignature */
};

static const enum sasl_mech default_prefs[] = {
	SASL_MECH_SCRAM_SHA_256_PLUS,
	SASL_MECH_SCRAM_SHA_256,
	SASL_MECH_SCRAM_SHA_1_PLUS,
	SASL_MECH_SCRAM_SHA_1,
	SASL_MECH_CRAM_MD5,
	SASL_MECH_PLAIN,
};

/* RFC 5802 7 server-error-value, as static strings for *why. */
static const char *const server_errors[] = {
	"invalid-encoding",
	"extensions-not-supported",
	"invalid-proof",
	"channel-bindings-dont-match",
	"server-does-support-channel-binding",
	"channel-binding-not-supported",
	"unsupported-channel-binding-type",
	"unknown-user",
	"invalid-username-encoding",
	"no-resources",
	"other-error",
};

static bool
offered_has(struct span offered, const char *name)
{
	size_t i = 0;

	while (i < offered.len) {
		size_t j = i;

		while (j < offered.len && offered.p[j] != ' ' &&
		       offered.p[j] != '\t')
			j++;
		if (j > i && span_eq_ci(span_of(offered.p + i, j - i), name))
			return true;
		i = j + 1;
	}
	return false;
}

static enum sasl_mech
plus_of(enum sasl_mech m)
{
	return m == SASL_MECH_SCRAM_SHA_1 ? SASL_MECH_SCRAM_SHA_1_PLUS
	                                  : SASL_MECH_SCRAM_SHA_256_PLUS;
}

/* spec/queue.md 6: walk the preferences, take the first the server
 * announced; -PLUS only with TLS binding. A plain SCRAM chosen while a
 * -PLUS variant was wanted but not announced binds with flag "y". */
int
sasl_client_select(struct span offered, const enum sasl_mech *prefs,
    size_t nprefs, enum sasl_cb_type cb, enum sasl_mech *out,
    enum sasl_cb_type *cb_out, const char **why)
{
	if (prefs == NULL) {
		prefs = default_prefs;
		nprefs = ARRAY_LEN(default_prefs);
	}
	for (size_t i = 0; i < nprefs; i++) {
		enum sasl_mech m = prefs[i];
		bool wanted_plus = false;

		if (sasl_scram_mech_plus(m) && cb == SASL_CB_NONE)
			continue;
		if (!offered_has(offered, sasl_mech_info(m)->name))
			continue;
		*out = m;
		*cb_out = SASL_CB_NONE;
		if (sasl_scram_mech_plus(m)) {
			*cb_out = cb;
		} else if (sasl_scram_mech(m) && cb != SASL_CB_NONE) {
			for (size_t j = 0; j < nprefs; j++)
				if (prefs[j] == plus_of(m))
					wanted_plus = true;
			if (wanted_plus &&
			    !offered_has(
			        offered, sasl_mech_info(plus_of(m))->name))
				*cb_out = cb;
		}
		return 0;
	}
	*why = "no matching authentication mechanisms";
	return -1;
}

struct sasl_client *
sasl_client_new(
    enum sasl_mech m, const struct sasl_client_params *p, const char **why)
{
	struct sasl_client *c;
	struct span pw;
	struct buf norm;

	if (p->user == NULL || !sasl_name_valid(span_of_cstr(p->user), false)) {
		*why = "invalid user name";
		return NULL;
	}
	if (p->password == NULL) {
		*why = "no password";
		return NULL;
	}
	pw = span_of_cstr(p->password);
	if (pw.len == 0 || pw.len > SASL_PASSWORD_MAX ||
	    !utf8_valid(pw.p, pw.len)) {
		*why = "password empty, too long or not UTF-8";
		return NULL;
	}
	if (p->cb_data.len > SASL_CB_MAX ||
	    (p->cb_type != SASL_CB_NONE) != (p->cb_data.len > 0)) {
		*why = "bad channel binding parameters";
		return NULL;
	}
	if (sasl_scram_mech_plus(m) && p->cb_type == SASL_CB_NONE) {
		*why = "channel binding not available on this connection";
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->mech = m;
	c->state = CLI_START;
	c->user = xstrdup(p->user);
	if (sasl_scram_mech(m)) {
		/* RFC 5802 2.2 Normalize(): PRECIS OpaqueString. */
		buf_init(&norm, SASL_PASSWORD_MAX * 4);
		if (sasl_password_normalize(pw, &norm, why) == -1) {
			buf_release(&norm);
			sasl_client_free(c);
			return NULL;
		}
		c->password_len = norm.len;
		c->password = buf_take(&norm);
	} else {
		c->password_len = pw.len;
		c->password = xstrdup(p->password);
	}
	if (sasl_scram_mech(m)) {
		c->cb_type = p->cb_type;
		if (p->cb_data.len > 0)
			memcpy(c->cb_data, p->cb_data.p, p->cb_data.len);
		c->cb_len = p->cb_data.len;
	}
	c->nonce = p->nonce;
	c->nonce_arg = p->nonce_arg;
	buf_init(&c->gs2, SASL_MSG_MAX);
	buf_init(&c->bare, SASL_MSG_MAX);
	buf_init(&c->cnonce, SASL_NONCE_MAX);
	return c;
}

void
sasl_client_free(struct sasl_client *c)
{
	if (c == NULL)
		return;
	if (c->password != NULL)
		explicit_bzero(c->password, c->password_len);
	free(c->password);
	free(c->user);
	buf_release(&c->gs2);
	buf_release(&c->bare);
	buf_release(&c->cnonce);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

static enum sasl_step
cfail(struct sasl_client *c, const char *msg, const char **why)
{
	c->state = CLI_DONE;
	*why = msg;
	return SASL_FAIL;
}

/* RFC 2195 2: user SP hex(HMAC-MD5(password, challenge)). */
static enum sasl_step
cram_respond(
    struct sasl_client *c, struct span msg, struct buf *out, const char **why)
{
	struct hmac_md5_ctx h;
	uint8_t d[MD5_DIGEST_SIZE];

	if (msg.len == 0)
		return cfail(c, "empty CRAM-MD5 challenge", why);
	hmac_md5_set_key(&h, c->password_len, (const uint8_t *)c->password);
	hmac_md5_update(&h, msg.len, (const uint8_t *)msg.p);
	hmac_md5_digest(&h, sizeof(d), d);
	explicit_bzero(&h, sizeof(h));
	buf_adds(out, c->user);
	buf_addc(out, ' ');
	for (size_t i = 0; i < sizeof(d); i++)
		buf_addf(out, "%02x", d[i]);
	explicit_bzero(d, sizeof(d));
	c->state = CLI_DONE;
	return SASL_OK;
}

/* RFC 5802 7 client-first-message = gs2-header client-first-message-bare.
 * RFC 5802 6: "p=" for -PLUS, "y" when we could bind but the server did
 * not offer it, else "n". No authzid. */
static enum sasl_step
scram_first(struct sasl_client *c, struct buf *out, const char **why)
{
	int rc;

	if (sasl_scram_mech_plus(c->mech)) {
		buf_adds(&c->gs2, "p=");
		buf_adds(&c->gs2, sasl_cb_name(c->cb_type));
		buf_adds(&c->gs2, ",,");
	} else if (c->cb_type != SASL_CB_NONE) {
		buf_adds(&c->gs2, "y,,");
	} else {
		buf_adds(&c->gs2, "n,,");
	}
	if (c->nonce != NULL)
		rc = c->nonce(c->nonce_arg, &c->cnonce);
	else
		rc = sasl_scram_nonce_random(&c->cnonce);
	if (rc != 0 || buf_failed(&c->cnonce) ||
	    c->cnonce.len < SASL_NONCE_MIN ||
	    !sasl_scram_nonce_valid(span_of_buf(&c->cnonce), SASL_NONCE_MAX))
		return cfail(c, "no client nonce", why);
	buf_adds(&c->bare, "n=");
	sasl_name_escape(span_of_cstr(c->user), &c->bare);
	buf_adds(&c->bare, ",r=");
	buf_add(&c->bare, c->cnonce.data, c->cnonce.len);
	if (buf_failed(&c->bare))
		return cfail(c, "user name too long", why);
	buf_add(out, c->gs2.data, c->gs2.len);
	buf_add(out, c->bare.data, c->bare.len);
	c->state = CLI_SCRAM_FIRST;
	return SASL_CONTINUE;
}

/* RFC 5802 7 server-first-message = [reserved-mext ","] nonce "," salt
 * "," iteration-count ["," extensions]; answer with client-final. */
static enum sasl_step
scram_final(
    struct sasl_client *c, struct span msg, struct buf *out, const char **why)
{
	uint8_t ck[SASL_SCRAM_KEY_MAX], sk[SASL_SCRAM_KEY_MAX],
	    stored[SASL_SCRAM_KEY_MAX], csig[SASL_SCRAM_KEY_MAX];
	enum sasl_hash h = sasl_scram_mech_hash(c->mech);
	size_t kl = sasl_scram_hash_len(h), wp_start;
	struct span r, s64, i64, v;
	struct scan sc = scan_of(msg);
	struct buf salt, cbind, auth;
	enum sasl_step rc;
	uint64_t iter;
	const char *dwhy;

	buf_init(&salt, SASL_SCRAM_SALT_MAX);
	buf_init(&cbind, SASL_MSG_MAX);
	buf_init(&auth, 3 * SASL_MSG_MAX);
	if (scan_left(&sc) >= 2 && msg.p[0] == 'm' && msg.p[1] == '=') {
		rc = cfail(c, "server demands an unknown extension", why);
		goto out;
	}
	if (memchr(msg.p, '\0', msg.len) != NULL ||
	    sasl_scram_attr(&sc, 'r', false, &r) == -1 ||
	    scan_char(&sc, ',') == -1 ||
	    sasl_scram_attr(&sc, 's', false, &s64) == -1 ||
	    scan_char(&sc, ',') == -1 ||
	    sasl_scram_attr(&sc, 'i', false, &i64) == -1)
		goto syntax;
	while (!scan_eof(&sc)) {
		if (scan_char(&sc, ',') == -1 ||
		    !char_is_alpha(scan_peek(&sc)) ||
		    sasl_scram_attr(&sc, (char)scan_peek(&sc), false, &v) == -1)
			goto syntax;
	}
	/* RFC 5802 5.1: the nonce starts with ours and adds the server's. */
	if (r.len <= c->cnonce.len ||
	    !sasl_scram_nonce_valid(r, 2 * SASL_NONCE_MAX) ||
	    memcmp(r.p, c->cnonce.data, c->cnonce.len) != 0) {
		rc = cfail(c, "server nonce does not extend ours", why);
		goto out;
	}
	if (sasl_b64_decode(s64, &salt, &dwhy) == -1 || salt.len == 0)
		goto syntax;
	if (span_u64(i64, UINT32_MAX, &iter) == -1)
		goto syntax;
	/* spec/queue.md 6: fewer than 2048 iterations is refused. */
	if (iter < SASL_SCRAM_ITER_MIN || iter > SASL_SCRAM_ITER_MAX) {
		rc = cfail(c, "server iteration count out of range", why);
		goto out;
	}
	sasl_scram_keys(h, c->password, c->password_len, salt.data, salt.len,
	    (uint32_t)iter, ck, sk);
	sasl_scram_h(h, ck, kl, stored);
	/* client-final-message-without-proof = channel-binding "," nonce */
	buf_add(&cbind, c->gs2.data, c->gs2.len);
	if (sasl_scram_mech_plus(c->mech))
		buf_add(&cbind, c->cb_data, c->cb_len);
	buf_add(&auth, c->bare.data, c->bare.len);
	buf_addc(&auth, ',');
	buf_add(&auth, msg.p, msg.len);
	buf_addc(&auth, ',');
	wp_start = auth.len;
	buf_adds(&auth, "c=");
	sasl_b64_encode(cbind.data, cbind.len, &auth);
	buf_adds(&auth, ",r=");
	buf_add(&auth, r.p, r.len);
	if (buf_failed(&auth)) {
		rc = cfail(c, "server-first-message too long", why);
		goto wipe;
	}
	/* ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage);
	 * ServerSignature = HMAC(ServerKey, AuthMessage). */
	sasl_scram_hmac(h, stored, kl, auth.data, auth.len, csig);
	for (size_t i = 0; i < kl; i++)
		csig[i] ^= ck[i];
	sasl_scram_hmac(h, sk, kl, auth.data, auth.len, c->server_sig);
	buf_add(out, auth.data + wp_start, auth.len - wp_start);
	buf_adds(out, ",p=");
	sasl_b64_encode(csig, kl, out);
	c->state = CLI_SCRAM_FINAL;
	rc = SASL_CONTINUE;
wipe:
	explicit_bzero(ck, sizeof(ck));
	explicit_bzero(sk, sizeof(sk));
	explicit_bzero(stored, sizeof(stored));
	explicit_bzero(csig, sizeof(csig));
	goto out;
syntax:
	rc = cfail(c, "malformed server-first-message", why);
out:
	buf_release(&salt);
	buf_release(&cbind);
	buf_release(&auth);
	return rc;
}

/* RFC 5802 7 server-final-message = (server-error / verifier) [","
 * extensions]. */
static enum sasl_step
scram_verify(struct sasl_client *c, struct span msg, const char **why)
{
	size_t kl = sasl_scram_hash_len(sasl_scram_mech_hash(c->mech));
	struct scan sc = scan_of(msg);
	struct span v;
	struct buf sig;
	const char *dwhy;
	bool ok;

	if (memchr(msg.p, '\0', msg.len) != NULL)
		return cfail(c, "malformed server-final-message", why);
	if (sasl_scram_attr(&sc, 'e', false, &v) == 0) {
		for (size_t i = 0; i < ARRAY_LEN(server_errors); i++)
			if (span_eq_cstr(v, server_errors[i]))
				return cfail(c, server_errors[i], why);
		return cfail(c, "server reported an unknown error", why);
	}
	if (sasl_scram_attr(&sc, 'v', false, &v) == -1)
		return cfail(c, "malformed server-final-message", why);
	buf_init(&sig, SASL_SCRAM_KEY_MAX);
	ok = sasl_b64_decode(v, &sig, &dwhy) == 0 && sig.len == kl &&
	     memeql_sec(sig.data, c->server_sig, kl);
	buf_release(&sig);
	if (!ok)
		return cfail(c, "server signature does not match", why);
	c->state = CLI_DONE;
	return SASL_OK;
}

static enum sasl_step
start(struct sasl_client *c, struct span msg, bool have_msg, struct buf *out,
    const char **why)
{
	switch (c->mech) {
	case SASL_MECH_PLAIN:
		/* RFC 4616 2: empty authzid, authcid, password. */
		buf_addc(out, '\0');
		buf_adds(out, c->user);
		buf_addc(out, '\0');
		buf_add(out, c->password, c->password_len);
		c->state = CLI_DONE;
		return SASL_OK;
	case SASL_MECH_LOGIN:
		if (!have_msg)
			return cfail(
			    c, "LOGIN waits for the server's prompt", why);
		buf_adds(out, c->user);
		c->state = CLI_LOGIN_PASS;
		return SASL_CONTINUE;
	case SASL_MECH_CRAM_MD5:
		if (!have_msg)
			return cfail(
			    c, "CRAM-MD5 waits for the challenge", why);
		return cram_respond(c, msg, out, why);
	case SASL_MECH_SCRAM_SHA_1:
	case SASL_MECH_SCRAM_SHA_1_PLUS:
	case SASL_MECH_SCRAM_SHA_256:
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		if (have_msg && msg.len != 0)
			return cfail(c,
			    "unexpected server data before "
			    "client-first-message",
			    why);
		return scram_first(c, out, why);
	}
	return cfail(c, "unknown mechanism", why);
}

enum sasl_step
sasl_client_step(struct sasl_client *c, struct span msg, bool have_msg,
    struct buf *out, const char **why)
{
	enum sasl_step rc = SASL_FAIL;

	buf_reset(out);
	*why = "";
	if (!have_msg)
		msg = span_of("", 0);
	if (msg.len > SASL_MSG_MAX)
		return cfail(c, "server message too long", why);
	if (!have_msg && c->state != CLI_START)
		return cfail(c, "missing server message", why);
	switch (c->state) {
	case CLI_START:
		rc = start(c, msg, have_msg, out, why);
		break;
	case CLI_LOGIN_PASS:
		buf_add(out, c->password, c->password_len);
		c->state = CLI_DONE;
		rc = SASL_OK;
		break;
	case CLI_SCRAM_FIRST:
		rc = scram_final(c, msg, out, why);
		break;
	case CLI_SCRAM_FINAL:
		rc = scram_verify(c, msg, why);
		break;
	case CLI_DONE:
		return cfail(c, "exchange already finished", why);
	}
	if (rc != SASL_FAIL && buf_failed(out))
		return cfail(c, "output buffer too small", why);
	return rc;
}
