/*
 * sasl_server.c: server side of PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login-00), CRAM-MD5 (RFC 2195), SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) and their -PLUS variants (RFC 5802 6
 * with RFC 5929 tls-unique and RFC 9266 tls-exporter), with the rules of
 * spec/imap.md 4 and 4.1 and spec/smtp.md 5.
 *
 * Trust: every message comes from an unauthenticated peer, already base64
 * decoded, at most SASL_MSG_MAX bytes. Passwords and derived secrets are
 * wiped when done; proofs and digests are compared in constant time.
 * Threads: one object on one thread at a time; no globals, no logging.
 * Blocks only inside the caller's credential callbacks.
 */
#include <inttypes.h>
#include <nettle/memops.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

#define CRAM_DIGEST_HEX 32 /* RFC 2195 2: 16 bytes as lower-case hex */

enum srv_state {
	SRV_START,       /* nothing received */
	SRV_PLAIN,       /* PLAIN without initial response: await message */
	SRV_LOGIN_USER,  /* "Username:" sent */
	SRV_LOGIN_PASS,  /* "Password:" sent */
	SRV_CRAM,        /* challenge sent */
	SRV_SCRAM_FIRST, /* empty challenge sent, await client-first */
	SRV_SCRAM_FINAL, /* server-first sent */
	SRV_SCRAM_ACK,   /* server-final "v=" sent, await empty response */
	SRV_DONE,        /* succeeded or failed */
};

struct sasl_server {
	enum sasl_mech mech;
	enum srv_state state;
	enum sasl_err err;
	char *hostname; /* owned */
	int64_t now_ns;
	enum sasl_cb_type cb_type;
	uint8_t cb_data[SASL_CB_MAX];
	size_t cb_len;
	bool plus_offered;
	const struct sasl_server_creds *creds; /* borrowed */
	void *creds_arg;
	sasl_nonce_fn *nonce;
	void *nonce_arg;
	char *user;            /* authentication identity, owned */
	struct buf challenge;  /* CRAM-MD5 challenge */
	struct buf gs2;        /* SCRAM gs2-header as received */
	bool gs2_bind;         /* gs2 flag was "p=" */
	struct buf nonce_full; /* client nonce + server nonce */
	struct buf auth;       /* AuthMessage so far (RFC 5802 3) */
	struct sasl_scram_secret secret;
};

static enum sasl_step
fail(struct sasl_server *s, enum sasl_err e, const char *msg, const char **why)
{
	s->state = SRV_DONE;
	s->err = e;
	*why = msg;
	return SASL_FAIL;
}

/* A SCRAM failure after client-first: the server-final "e=" message (RFC
 * 5802 7 server-error) goes to the client before the failure reply. */
static enum sasl_step
fail_e(struct sasl_server *s, struct buf *out, enum sasl_err e,
    const char *value, const char *msg, const char **why)
{
	buf_reset(out);
	buf_adds(out, "e=");
	buf_adds(out, value);
	return fail(s, e, msg, why);
}

static enum sasl_step
fail_lookup(struct sasl_server *s, enum sasl_err e, const char **why)
{
	switch (e) {
	case SASL_ERR_CREDENTIALS:
		return fail(s, e, "bad user or password", why);
	case SASL_ERR_NO_SECRET:
		return fail(s, e, "no secret for this mechanism", why);
	case SASL_ERR_NONE:
	case SASL_ERR_PROTOCOL:
	case SASL_ERR_AUTHZ:
	case SASL_ERR_CHANNEL_BINDING:
	case SASL_ERR_TEMP:
		break;
	}
	return fail(s, SASL_ERR_TEMP, "credential lookup failed", why);
}

struct sasl_server *
sasl_server_new(
    enum sasl_mech m, const struct sasl_server_params *p, const char **why)
{
	const struct sasl_server_creds *c = p->creds;
	struct sasl_server *s;
	bool have_cb = false;

	if (c == NULL) {
		*why = "no credential callbacks";
		return NULL;
	}
	if (p->cb_data.len > SASL_CB_MAX ||
	    (p->cb_type != SASL_CB_NONE) != (p->cb_data.len > 0)) {
		*why = "bad channel binding parameters";
		return NULL;
	}
	switch (m) {
	case SASL_MECH_PLAIN:
	case SASL_MECH_LOGIN:
		have_cb = c->check_plain != NULL;
		break;
	case SASL_MECH_CRAM_MD5:
		have_cb = c->crammd5 != NULL;
		if (p->hostname == NULL || p->hostname[0] == '\0' ||
		    strlen(p->hostname) > SASL_HOSTNAME_MAX ||
		    strpbrk(p->hostname, "<>\r\n ") != NULL) {
			*why = "bad host name for CRAM-MD5 challenge";
			return NULL;
		}
		break;
	case SASL_MECH_SCRAM_SHA_1:
	case SASL_MECH_SCRAM_SHA_1_PLUS:
	case SASL_MECH_SCRAM_SHA_256:
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		have_cb = c->scram != NULL;
		break;
	}
	if (!have_cb) {
		*why = "mechanism not available";
		return NULL;
	}
	if (sasl_scram_mech_plus(m) && p->cb_type == SASL_CB_NONE) {
		*why = "channel binding not available on this connection";
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->mech = m;
	s->state = SRV_START;
	s->err = SASL_ERR_NONE;
	s->hostname = xstrdup(p->hostname != NULL ? p->hostname : "");
	s->now_ns = p->now_ns;
	s->cb_type = p->cb_type;
	if (p->cb_data.len > 0)
		memcpy(s->cb_data, p->cb_data.p, p->cb_data.len);
	s->cb_len = p->cb_data.len;
	s->plus_offered = p->plus_offered;
	s->creds = c;
	s->creds_arg = p->creds_arg;
	s->nonce = p->nonce;
	s->nonce_arg = p->nonce_arg;
	buf_init(&s->challenge, SASL_MSG_MAX);
	buf_init(&s->gs2, SASL_MSG_MAX);
	buf_init(&s->nonce_full, 2 * SASL_NONCE_MAX);
	buf_init(&s->auth, 3 * SASL_MSG_MAX);
	return s;
}

void
sasl_server_free(struct sasl_server *s)
{
	if (s == NULL)
		return;
	free(s->hostname);
	free(s->user);
	buf_release(&s->challenge);
	buf_release(&s->gs2);
	buf_release(&s->nonce_full);
	buf_release(&s->auth);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

enum sasl_err
sasl_server_error(const struct sasl_server *s)
{
	return s->err;
}

const char *
sasl_server_username(const struct sasl_server *s)
{
	return s->user;
}

enum sasl_mech
sasl_server_mech(const struct sasl_server *s)
{
	return s->mech;
}

/* PLAIN and LOGIN: hand the clear password to the caller's check, from a
 * NUL-terminated copy that is wiped afterwards. */
static enum sasl_step
check_password(struct sasl_server *s, struct span pw, const char **why)
{
	enum sasl_err e = SASL_ERR_TEMP;
	char *p = span_dup(pw);
	int rc;

	rc = s->creds->check_plain(s->creds_arg, s->user, p, &e);
	explicit_bzero(p, pw.len);
	free(p);
	if (rc != 0)
		return fail_lookup(s, e, why);
	s->state = SRV_DONE;
	return SASL_OK;
}

/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
static enum sasl_step
plain_step(struct sasl_server *s, struct span msg, const char **why)
{
	const char *z1, *z2, *end = msg.p + msg.len;
	struct span authz, authc, pw;

	z1 = memchr(msg.p, '\0', msg.len);
	if (z1 == NULL)
		goto syntax;
	z2 = memchr(z1 + 1, '\0', (size_t)(end - z1 - 1));
	if (z2 == NULL || memchr(z2 + 1, '\0', (size_t)(end - z2 - 1)) != NULL)
		goto syntax;
	authz = span_of(msg.p, (size_t)(z1 - msg.p));
	authc = span_of(z1 + 1, (size_t)(z2 - z1 - 1));
	pw = span_of(z2 + 1, (size_t)(end - z2 - 1));
	if (!sasl_name_valid(authc, false))
		return fail(s, SASL_ERR_PROTOCOL, "invalid user name", why);
	if (authz.len > 0 && !sasl_name_valid(authz, false))
		return fail(s, SASL_ERR_PROTOCOL,
		    "invalid authorization identity", why);
	/* RFC 4616 2: passwd = 1*SAFE, UTF-8. */
	if (pw.len == 0 || pw.len > SASL_PASSWORD_MAX ||
	    !utf8_valid(pw.p, pw.len))
		return fail(s, SASL_ERR_PROTOCOL, "invalid password", why);
	s->user = span_dup(authc);
	/* RFC 4616 2 leaves authorization to the server; spec/imap.md 4: an
	 * authzid must be empty or equal the authcid. */
	if (authz.len > 0 && !span_eq(authz, authc))
		return fail(s, SASL_ERR_AUTHZ,
		    "authorization identity differs from user", why);
	return check_password(s, pw, why);
syntax:
	return fail(s, SASL_ERR_PROTOCOL,
	    "expected authzid NUL authcid NUL password", why);
}

static enum sasl_step
login_user(
    struct sasl_server *s, struct span msg, struct buf *out, const char **why)
{
	if (!sasl_name_valid(msg, false))
		return fail(s, SASL_ERR_PROTOCOL, "invalid user name", why);
	s->user = span_dup(msg);
	buf_adds(out, "Password:");
	s->state = SRV_LOGIN_PASS;
	return SASL_CONTINUE;
}

static enum sasl_step
login_pass(struct sasl_server *s, struct span msg, const char **why)
{
	if (msg.len > SASL_PASSWORD_MAX || !utf8_valid(msg.p, msg.len) ||
	    memchr(msg.p, '\0', msg.len) != NULL)
		return fail(s, SASL_ERR_PROTOCOL, "invalid password", why);
	if (msg.len == 0)
		return fail(s, SASL_ERR_CREDENTIALS, "empty password", why);
	return check_password(s, msg, why);
}

/* spec/imap.md 4: "<" random-uint64 "." unix-nanos "@" hostname ">", the
 * form of RFC 2195 2's msg-id challenge. */
static enum sasl_step
cram_start(struct sasl_server *s, struct buf *out, const char **why)
{
	struct buf n;
	int rc;

	buf_init(&n, SASL_NONCE_MAX);
	if (s->nonce != NULL)
		rc = s->nonce(s->nonce_arg, &n);
	else
		rc = sasl_crammd5_nonce_random(&n);
	if (rc != 0 || buf_failed(&n) || n.len == 0 ||
	    !sasl_scram_nonce_valid(span_of_buf(&n), SASL_NONCE_MAX)) {
		buf_release(&n);
		return fail(s, SASL_ERR_TEMP, "no random challenge", why);
	}
	buf_addf(&s->challenge, "<%s.%" PRId64 "@%s>", n.data, s->now_ns,
	    s->hostname);
	buf_release(&n);
	buf_add(out, s->challenge.data, s->challenge.len);
	s->state = SRV_CRAM;
	return SASL_CONTINUE;
}

static int
hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') /* INTEROP: RFC 2195 says lower case */
		return c - 'A' + 10;
	return -1;
}

/* RFC 2195 2: response = user SP digest, digest 32 hex digits. The user
 * name may hold spaces, so split at the last one. */
static enum sasl_step
cram_step(struct sasl_server *s, struct span msg, const char **why)
{
	struct sasl_crammd5_secret sec;
	enum sasl_err e = SASL_ERR_TEMP;
	uint8_t got[16], want[16];
	const char *sp;
	struct span user;
	bool ok;

	sp = msg.len > 0 ? memrchr(msg.p, ' ', msg.len) : NULL;
	if (sp == NULL || (size_t)(msg.p + msg.len - sp - 1) != CRAM_DIGEST_HEX)
		return fail(
		    s, SASL_ERR_PROTOCOL, "expected user SP digest", why);
	for (size_t i = 0; i < sizeof(got); i++) {
		int hi = hex_val((unsigned char)sp[1 + 2 * i]);
		int lo = hex_val((unsigned char)sp[2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return fail(s, SASL_ERR_PROTOCOL,
			    "expected user SP digest", why);
		got[i] = (uint8_t)(hi << 4 | lo);
	}
	user = span_of(msg.p, (size_t)(sp - msg.p));
	if (!sasl_name_valid(user, false))
		return fail(s, SASL_ERR_PROTOCOL, "invalid user name", why);
	s->user = span_dup(user);
	memset(&sec, 0, sizeof(sec));
	if (s->creds->crammd5(s->creds_arg, s->user, &sec, &e) != 0) {
		explicit_bzero(&sec, sizeof(sec));
		return fail_lookup(s, e, why);
	}
	sasl_crammd5_digest(&sec, s->challenge.data, s->challenge.len, want);
	ok = memeql_sec(got, want, sizeof(want)) != 0;
	explicit_bzero(&sec, sizeof(sec));
	explicit_bzero(want, sizeof(want));
	if (!ok)
		return fail(
		    s, SASL_ERR_CREDENTIALS, "bad user or password", why);
	s->state = SRV_DONE;
	return SASL_OK;
}

/* RFC 5802 7 gs2-header and client-first-message-bare, with the checks of
 * spec/imap.md 4.1 step 1. Errors here carry no "e=" message. */
static enum sasl_step
scram_first(
    struct sasl_server *s, struct span msg, struct buf *out, const char **why)
{
	struct span cbname = { NULL, 0 }, authz = { NULL, 0 }, user_enc, cnonce,
	            v;
	bool plus = sasl_scram_mech_plus(s->mech), has_authz = false;
	struct scan sc = scan_of(msg);
	enum sasl_err e = SASL_ERR_TEMP;
	enum sasl_cb_type t;
	struct buf user, zid, snonce;
	enum sasl_step rc;
	size_t bare;
	char flag;

	buf_init(&user, SASL_USER_MAX);
	buf_init(&zid, SASL_USER_MAX);
	buf_init(&snonce, SASL_NONCE_MAX);
	if (memchr(msg.p, '\0', msg.len) != NULL)
		goto syntax;
	/* gs2-cbind-flag = ("p=" cb-name) / "n" / "y" */
	flag = (char)scan_peek(&sc);
	if (flag == 'p') {
		if (sasl_scram_attr(&sc, 'p', false, &cbname) == -1)
			goto syntax;
	} else if (flag != 'n' && flag != 'y') {
		goto syntax;
	} else {
		sc.pos++;
	}
	if (scan_char(&sc, ',') == -1)
		goto syntax;
	if (scan_peek(&sc) == 'a') {
		if (sasl_scram_attr(&sc, 'a', false, &authz) == -1)
			goto syntax;
		has_authz = true;
	}
	if (scan_char(&sc, ',') == -1)
		goto syntax;
	bare = sc.pos;
	/* RFC 5802 5.1: "m=" announces a mandatory extension; we know none. */
	if (scan_left(&sc) >= 2 && sc.p[sc.pos] == 'm' &&
	    sc.p[sc.pos + 1] == '=') {
		rc =
		    fail(s, SASL_ERR_PROTOCOL, "extensions-not-supported", why);
		goto out;
	}
	if (sasl_scram_attr(&sc, 'n', false, &user_enc) == -1 ||
	    scan_char(&sc, ',') == -1 ||
	    sasl_scram_attr(&sc, 'r', false, &cnonce) == -1)
		goto syntax;
	while (!scan_eof(&sc)) {
		if (scan_char(&sc, ',') == -1 ||
		    !char_is_alpha(scan_peek(&sc)) ||
		    sasl_scram_attr(&sc, (char)scan_peek(&sc), false, &v) == -1)
			goto syntax;
	}

	switch (flag) {
	case 'n':
		/* RFC 5802 6: -PLUS means binding; "n" would drop it. */
		if (plus) {
			rc = fail(s, SASL_ERR_PROTOCOL,
			    "channel binding required with -PLUS mechanism",
			    why);
			goto out;
		}
		break;
	case 'y':
		/* RFC 5802 6: "y" says the client thinks the server cannot
		 * bind; we can (or announced we can), so this is a
		 * downgrade. "y" with a -PLUS name is a contradiction. */
		if (plus || s->cb_type != SASL_CB_NONE || s->plus_offered) {
			rc = fail(s, SASL_ERR_PROTOCOL,
			    "server-does-support-channel-binding", why);
			goto out;
		}
		break;
	default:
		/* INTEROP: some cyrus-sasl clients send "p=" with the
		 * non-PLUS name; the binding is still checked. spec/imap.md
		 * 4.1: only the type this TLS version supports. */
		if (sasl_cb_lookup(cbname, &t) == -1 || t != s->cb_type) {
			rc = fail(s, SASL_ERR_PROTOCOL,
			    "unsupported-channel-binding-type", why);
			goto out;
		}
		break;
	}
	if (sasl_name_unescape(user_enc, &user) == -1 ||
	    !sasl_name_valid(span_of_buf(&user), true) ||
	    (has_authz && (sasl_name_unescape(authz, &zid) == -1 ||
	                      !sasl_name_valid(span_of_buf(&zid), true)))) {
		rc = fail(
		    s, SASL_ERR_PROTOCOL, "invalid-username-encoding", why);
		goto out;
	}
	if (cnonce.len < SASL_NONCE_MIN ||
	    !sasl_scram_nonce_valid(cnonce, SASL_NONCE_MAX)) {
		rc = fail(s, SASL_ERR_PROTOCOL,
		    "client nonce too short or invalid", why);
		goto out;
	}
	s->user = buf_take(&user);
	/* spec/imap.md 4.1: authzid, if present, must equal the user. */
	if (has_authz && strcmp(zid.data, s->user) != 0) {
		rc = fail(s, SASL_ERR_AUTHZ,
		    "authorization identity differs from user", why);
		goto out;
	}
	if (s->creds->scram(s->creds_arg, s->user,
	        sasl_scram_mech_hash(s->mech), &s->secret, &e) != 0) {
		rc = fail_lookup(s, e, why);
		goto out;
	}
	if (s->secret.key_len !=
	        sasl_scram_hash_len(sasl_scram_mech_hash(s->mech)) ||
	    s->secret.salt_len == 0 ||
	    s->secret.salt_len > SASL_SCRAM_SALT_MAX ||
	    s->secret.iterations == 0) {
		rc = fail(s, SASL_ERR_TEMP, "invalid scram secret", why);
		goto out;
	}
	if ((s->nonce != NULL ? s->nonce(s->nonce_arg, &snonce)
	                      : sasl_scram_nonce_random(&snonce)) != 0 ||
	    buf_failed(&snonce) ||
	    !sasl_scram_nonce_valid(span_of_buf(&snonce), SASL_NONCE_MAX)) {
		rc = fail(s, SASL_ERR_TEMP, "no server nonce", why);
		goto out;
	}
	buf_add(&s->gs2, msg.p, bare);
	s->gs2_bind = flag == 'p';
	buf_add(&s->nonce_full, cnonce.p, cnonce.len);
	buf_add(&s->nonce_full, snonce.data, snonce.len);
	/* server-first-message = nonce "," salt "," iteration-count */
	buf_adds(out, "r=");
	buf_add(out, s->nonce_full.data, s->nonce_full.len);
	buf_adds(out, ",s=");
	sasl_b64_encode(s->secret.salt, s->secret.salt_len, out);
	buf_addf(out, ",i=%" PRIu32, s->secret.iterations);
	/* AuthMessage = client-first-message-bare "," server-first-message
	 * "," client-final-message-without-proof */
	buf_add(&s->auth, msg.p + bare, msg.len - bare);
	buf_addc(&s->auth, ',');
	buf_add(&s->auth, out->data, out->len);
	s->state = SRV_SCRAM_FINAL;
	rc = SASL_CONTINUE;
	goto out;
syntax:
	rc = fail(s, SASL_ERR_PROTOCOL, "malformed client-first-message", why);
out:
	buf_release(&user);
	buf_release(&zid);
	buf_release(&snonce);
	return rc;
}

/* RFC 5802 7 client-final-message = channel-binding "," nonce [","
 * extensions] "," proof; verification as in RFC 5802 3 and spec/imap.md
 * 4.1 steps 4-5. */
static enum sasl_step
scram_final(
    struct sasl_server *s, struct span msg, struct buf *out, const char **why)
{
	uint8_t csig[SASL_SCRAM_KEY_MAX], ckey[SASL_SCRAM_KEY_MAX],
	    stored[SASL_SCRAM_KEY_MAX], ssig[SASL_SCRAM_KEY_MAX];
	enum sasl_hash h = sasl_scram_mech_hash(s->mech);
	size_t kl = s->secret.key_len, proof_at;
	struct span c, r, p, v;
	struct scan sc = scan_of(msg);
	struct buf cb, proof;
	enum sasl_step rc;
	bool ok;
	const char *dwhy;

	buf_init(&cb, SASL_MSG_MAX);
	buf_init(&proof, SASL_SCRAM_KEY_MAX);
	if (memchr(msg.p, '\0', msg.len) != NULL ||
	    sasl_scram_attr(&sc, 'c', false, &c) == -1 ||
	    scan_char(&sc, ',') == -1 ||
	    sasl_scram_attr(&sc, 'r', false, &r) == -1)
		goto bad_encoding;
	for (;;) {
		proof_at = sc.pos;
		if (scan_char(&sc, ',') == -1)
			goto bad_encoding;
		if (scan_peek(&sc) == 'p') {
			if (sasl_scram_attr(&sc, 'p', false, &p) == -1)
				goto bad_encoding;
			break;
		}
		if (!char_is_alpha(scan_peek(&sc)) ||
		    sasl_scram_attr(&sc, (char)scan_peek(&sc), false, &v) == -1)
			goto bad_encoding;
	}
	if (!scan_eof(&sc) || sasl_b64_decode(c, &cb, &dwhy) == -1 ||
	    sasl_b64_decode(p, &proof, &dwhy) == -1 || proof.len != kl)
		goto bad_encoding;
	/* RFC 5802 6: c= is the gs2-header, then the binding data when the
	 * flag was "p". */
	ok = cb.len == s->gs2.len + (s->gs2_bind ? s->cb_len : 0) &&
	     memeql_sec(cb.data, s->gs2.data, s->gs2.len) &&
	     (!s->gs2_bind ||
	         memeql_sec(cb.data + s->gs2.len, s->cb_data, s->cb_len));
	if (!ok) {
		rc = fail_e(s, out, SASL_ERR_CHANNEL_BINDING,
		    "channel-bindings-dont-match",
		    "channel-bindings-dont-match", why);
		goto out;
	}
	if (!span_eq(r, span_of_buf(&s->nonce_full))) {
		rc = fail_e(s, out, SASL_ERR_PROTOCOL, "other-error",
		    "nonce does not match", why);
		goto out;
	}
	buf_addc(&s->auth, ',');
	buf_add(&s->auth, msg.p, proof_at);
	if (buf_failed(&s->auth)) {
		rc = fail_e(s, out, SASL_ERR_PROTOCOL, "other-error",
		    "messages too long", why);
		goto out;
	}
	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof
	 * holds when H(ClientKey) equals StoredKey. */
	sasl_scram_hmac(
	    h, s->secret.stored_key, kl, s->auth.data, s->auth.len, csig);
	for (size_t i = 0; i < kl; i++)
		ckey[i] = (uint8_t)proof.data[i] ^ csig[i];
	sasl_scram_h(h, ckey, kl, stored);
	ok = memeql_sec(stored, s->secret.stored_key, kl) != 0;
	explicit_bzero(ckey, sizeof(ckey));
	explicit_bzero(csig, sizeof(csig));
	if (!ok) {
		rc = fail_e(s, out, SASL_ERR_CREDENTIALS, "invalid-proof",
		    "invalid-proof", why);
		goto out;
	}
	sasl_scram_hmac(
	    h, s->secret.server_key, kl, s->auth.data, s->auth.len, ssig);
	buf_adds(out, "v=");
	sasl_b64_encode(ssig, kl, out);
	s->state = SRV_SCRAM_ACK;
	rc = SASL_CONTINUE;
	goto out;
bad_encoding:
	rc = fail_e(s, out, SASL_ERR_PROTOCOL, "invalid-encoding",
	    "malformed client-final-message", why);
out:
	explicit_bzero(&s->secret, sizeof(s->secret));
	buf_release(&cb);
	buf_release(&proof);
	return rc;
}

static enum sasl_step
start(struct sasl_server *s, struct span msg, bool have_msg, struct buf *out,
    const char **why)
{
	switch (s->mech) {
	case SASL_MECH_PLAIN:
		if (have_msg)
			return plain_step(s, msg, why);
		s->state = SRV_PLAIN;
		return SASL_CONTINUE;
	case SASL_MECH_LOGIN:
		/* INTEROP: an initial response is taken as the user name. */
		if (have_msg)
			return login_user(s, msg, out, why);
		buf_adds(out, "Username:");
		s->state = SRV_LOGIN_USER;
		return SASL_CONTINUE;
	case SASL_MECH_CRAM_MD5:
		/* spec/imap.md 4: the server speaks first. */
		if (have_msg)
			return fail(s, SASL_ERR_PROTOCOL,
			    "no initial response allowed with CRAM-MD5", why);
		return cram_start(s, out, why);
	case SASL_MECH_SCRAM_SHA_1:
	case SASL_MECH_SCRAM_SHA_1_PLUS:
	case SASL_MECH_SCRAM_SHA_256:
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		if (have_msg)
			return scram_first(s, msg, out, why);
		s->state = SRV_SCRAM_FIRST;
		return SASL_CONTINUE;
	}
	return fail(s, SASL_ERR_PROTOCOL, "unknown mechanism", why);
}

enum sasl_step
sasl_server_step(struct sasl_server *s, struct span msg, bool have_msg,
    struct buf *out, const char **why)
{
	enum sasl_step rc = SASL_FAIL;

	buf_reset(out);
	*why = "";
	if (s->state == SRV_DONE)
		return fail(
		    s, SASL_ERR_PROTOCOL, "exchange already finished", why);
	if (!have_msg && s->state != SRV_START)
		return fail(
		    s, SASL_ERR_PROTOCOL, "missing client response", why);
	if (!have_msg)
		msg = span_of("", 0);
	if (msg.len > SASL_MSG_MAX)
		return fail(
		    s, SASL_ERR_PROTOCOL, "client message too long", why);
	switch (s->state) {
	case SRV_START:
		rc = start(s, msg, have_msg, out, why);
		break;
	case SRV_PLAIN:
		rc = plain_step(s, msg, why);
		break;
	case SRV_LOGIN_USER:
		rc = login_user(s, msg, out, why);
		break;
	case SRV_LOGIN_PASS:
		rc = login_pass(s, msg, why);
		break;
	case SRV_CRAM:
		rc = cram_step(s, msg, why);
		break;
	case SRV_SCRAM_FIRST:
		rc = scram_first(s, msg, out, why);
		break;
	case SRV_SCRAM_FINAL:
		rc = scram_final(s, msg, out, why);
		break;
	case SRV_SCRAM_ACK:
		/* RFC 5802 5: after server-final the client's answer is
		 * empty. */
		if (msg.len != 0)
			return fail(s, SASL_ERR_PROTOCOL,
			    "expected empty response to server-final-message",
			    why);
		s->state = SRV_DONE;
		rc = SASL_OK;
		break;
	case SRV_DONE:
		break;
	}
	if (rc != SASL_FAIL && buf_failed(out))
		return fail(s, SASL_ERR_TEMP, "output buffer too small", why);
	return rc;
}
