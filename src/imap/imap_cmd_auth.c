/*
 * imap_cmd_auth.c: commands of any state and of the not-authenticated
 * state: CAPABILITY, NOOP, LOGOUT (RFC 9051 6.1), ID (RFC 2971), ENABLE
 * (RFC 5161), NAMESPACE (RFC 2342, RFC 9051 6.3.10), STARTTLS (RFC 9051
 * 6.2.1), LOGIN (6.2.3) and AUTHENTICATE (6.2.2, RFC 4959 SASL-IR) with
 * the mechanisms of sasl.h; login by email address (spec/imap.md 4).
 *
 * Input is from unauthenticated peers. Passwords are never logged below
 * traceauth and are wiped after use. Thread rule: the session's thread;
 * the credential callbacks block on the store (SQLite), never on the
 * client.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "moxbuild.h"
#include "net/net.h"
#include "sasl/sasl.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define ID_PARAMS_MAX 30 /* RFC 2971 3.3 */

static int
expect_end(struct imap_cmd *x)
{
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		return -1;
	}
	return 0;
}

int
imap_cmd_capability(struct imap_session *s, struct imap_cmd *x)
{
	struct buf b;

	if (expect_end(x) == -1)
		return -1;
	buf_init(&b, BUF_NOMAX);
	imap_capabilities(s, &b);
	imap_reply(s, "* CAPABILITY %s", b.data);
	buf_release(&b);
	imap_tagged(s, "OK", "capability");
	return 0;
}

int
imap_cmd_noop(struct imap_session *s, struct imap_cmd *x)
{
	if (expect_end(x) == -1)
		return -1;
	imap_tagged(s, "OK", "%s done", x->name);
	return 0;
}

int
imap_cmd_logout(struct imap_session *s, struct imap_cmd *x)
{
	if (expect_end(x) == -1)
		return -1;
	imap_reply(s, "* BYE thanks");
	imap_tagged(s, "OK", "logout");
	net_conn_close(s->c);
	s->closing = true;
	return 0;
}

int
imap_cmd_id(struct imap_session *s, struct imap_cmd *x)
{
	char *keys[ID_PARAMS_MAX];
	size_t n = 0;

	if (imap_parse_sp(&x->p) == -1)
		return -1;
	if (imap_parse_kw(&x->p, "NIL") == -1) {
		if (imap_parse_char(&x->p, '(') == -1)
			return -1;
		while (imap_parse_peek(&x->p) != ')') {
			char *k, *v;

			if (n > 0 && imap_parse_sp(&x->p) == -1)
				return -1;
			if (imap_parse_string(&x->p, &k, NULL) == -1 ||
			    imap_parse_sp(&x->p) == -1 ||
			    imap_parse_nstring(&x->p, &v) == -1)
				return -1;
			if (n == ID_PARAMS_MAX) {
				x->p.why = "too many id parameters";
				return -1;
			}
			for (size_t i = 0; i < n; i++)
				if (strcasecmp(keys[i], k) == 0) {
					x->p.why = "duplicate id key";
					return -1;
				}
			keys[n++] = k;
			log_debug(&s->log, "client id", LF_STR("key", k),
			    LF_STR("value", v != NULL ? v : "NIL"));
		}
		if (imap_parse_char(&x->p, ')') == -1)
			return -1;
	}
	if (expect_end(x) == -1)
		return -1;
	imap_reply(s, "* ID (\"name\" \"mox\" \"version\" \"%s\")",
	    PACKAGE_VERSION);
	imap_tagged(s, "OK", "ID done");
	return 0;
}

int
imap_cmd_enable(struct imap_session *s, struct imap_cmd *x)
{
	struct buf en;
	bool had_cs = s->condstore;

	buf_init(&en, BUF_NOMAX);
	do {
		struct span a;

		if (imap_parse_sp(&x->p) == -1 ||
		    imap_parse_atom(&x->p, &a) == -1) {
			buf_release(&en);
			return -1;
		}
		/* RFC 5161 3.1: unknown capabilities are ignored. */
		if (span_eq_ci(a, "IMAP4rev2") && !s->rev2) {
			s->rev2 = true;
			s->utf8 = true;
			buf_adds(&en, " IMAP4rev2");
		} else if (span_eq_ci(a, "UTF8=ACCEPT") && !s->utf8) {
			s->utf8 = true;
			buf_adds(&en, " UTF8=ACCEPT");
		} else if (span_eq_ci(a, "CONDSTORE") && !s->condstore) {
			s->condstore = true;
			buf_adds(&en, " CONDSTORE");
		} else if (span_eq_ci(a, "QRESYNC") && !s->qresync) {
			s->qresync = true;
			buf_adds(&en, " QRESYNC");
			if (!s->condstore) {
				/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE. */
				s->condstore = true;
				buf_adds(&en, " CONDSTORE");
			}
		}
	} while (!imap_parse_eof(&x->p));
	imap_reply(s, "* ENABLED%s", en.data);
	buf_release(&en);
	if (!had_cs && s->condstore && s->state == IMAP_S_SELECTED) {
		struct store_mailbox mb;
		struct store_err e;

		/* RFC 7162 3.1.1 (spec/imap.md 13). */
		if (store_mailbox_get_id(s->acct, s->mb_id, &mb, &e) == 0) {
			imap_reply(s, "* OK [HIGHESTMODSEQ %lld] x",
			    (long long)imap_modseq(mb.highestmodseq));
			store_mailbox_release(&mb);
		}
	}
	imap_tagged(s, "OK", "enabled");
	return 0;
}

int
imap_cmd_namespace(struct imap_session *s, struct imap_cmd *x)
{
	if (expect_end(x) == -1)
		return -1;
	imap_reply(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, "OK", "listed namespaces");
	return 0;
}

int
imap_cmd_starttls(struct imap_session *s, struct imap_cmd *x)
{
	if (expect_end(x) == -1)
		return -1;
	if (imap_is_tls(s) || s->l->tls == NULL) {
		imap_tagged(s, "BAD", "tls not available or already active");
		return 0;
	}
	imap_tagged(s, "OK", "%s (%llx) done", x->name,
	    (unsigned long long)net_conn_cid(s->c));
	/* spec/imap.md 1: bytes pipelined after the line are TLS records
	 * and go to the handshake, never to the command parser. */
	if (net_conn_starttls_pipelined(s->c, s->l->tls) == -1) {
		net_conn_close(s->c);
		s->closing = true;
		return 0;
	}
	s->rd = IMAP_R_TLS;
	return 0;
}

/* Find the account for a login address (spec/imap.md 4). Returns 0 with
 * a reference in *out, or -1. */
static int
account_for(struct imap_session *s, const char *user,
    struct store_account **out)
{
	const char *at = strrchr(user, '@');
	struct config *cfg;
	struct config_dest_ref ref;
	struct store_err e;
	char *local, *acct = NULL;
	int rc = -1;

	*out = NULL;
	if (at == NULL || at == user || at[1] == '\0')
		return -1;
	local = xstrndup(user, (size_t)(at - user));
	cfg = config_get();
	if (cfg != NULL &&
	    config_lookup_address(cfg, local, at + 1, &ref) == 0 &&
	    !ref.catchall &&
	    (ref.account == NULL || ref.account->login_disabled == NULL))
		acct = xstrdup(ref.account_name);
	config_put(cfg);
	free(local);
	if (acct == NULL)
		return -1;
	if (store_account_get(s->l->store, acct, false, out, &e) == 0)
		rc = 0;
	else
		log_error(&s->log, "opening account", LF_STR("account", acct),
		    LF_ERR(e.text));
	free(acct);
	return rc;
}

static bool
plain_allowed(struct imap_session *s)
{
	return imap_is_tls(s) || s->l->plain_auth_ok;
}

int
imap_cmd_login(struct imap_session *s, struct imap_cmd *x)
{
	struct store_account *a = NULL;
	struct store_err e;
	char *user, *pass;
	size_t plen;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &user, NULL) == -1 ||
	    imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &pass, &plen) == -1 ||
	    expect_end(x) == -1)
		return -1;
	if (!plain_allowed(s)) {
		explicit_bzero(pass, plen);
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] tls required for login");
		return 0;
	}
	log_traceauth(&s->log, "login", LF_STR("username", user),
	    LF_SECRET("password", pass));
	if (account_for(s, user, &a) == -1 ||
	    store_password_check(a, pass, &e) == -1) {
		explicit_bzero(pass, plen);
		store_account_put(a);
		log_info(&s->log, "login failed", LF_STR("username", user));
		imap_login_failed(s, "[AUTHENTICATIONFAILED] login failed");
		return 0;
	}
	explicit_bzero(pass, plen);
	imap_login_done(s, a, user);
	{
		struct buf b;

		buf_init(&b, BUF_NOMAX);
		imap_capabilities(s, &b);
		imap_tagged(s, "OK", "[CAPABILITY %s] login done", b.data);
		buf_release(&b);
	}
	return 0;
}

/* ---- AUTHENTICATE ---- */

/* During the exchange the account found by a credential callback is held
 * in s->acct while the state is still not-authenticated. */
static void
auth_found(struct imap_session *s, struct store_account *a)
{
	store_account_put(s->acct);
	s->acct = a;
}

static int
cb_plain(void *arg, const char *user, const char *password,
    enum sasl_err *err_out)
{
	struct imap_session *s = arg;
	struct store_account *a = NULL;
	struct store_err e;

	if (account_for(s, user, &a) == -1 ||
	    store_password_check(a, password, &e) == -1) {
		store_account_put(a);
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	auth_found(s, a);
	return 0;
}

static int
cb_crammd5(void *arg, const char *user, struct sasl_crammd5_secret *out,
    enum sasl_err *err_out)
{
	struct imap_session *s = arg;
	struct store_account *a = NULL;
	struct store_crammd5 c;
	struct store_err e;

	if (account_for(s, user, &a) == -1) {
		*err_out = SASL_ERR_CREDENTIALS;
		return -1;
	}
	if (store_password_crammd5(a, &c, &e) == -1) {
		store_account_put(a);
		*err_out = e.code == STORE_ENOPASSWORD ? SASL_ERR_NO_SECRET :
							  SASL_ERR_TEMP;
		return -1;
	}
	memcpy(out->ipad, c.ipad, sizeof(out->ipad));
	memcpy(out->opad, c.opad, sizeof(out->opad));
	explicit_bzero(&c, sizeof(c));
	auth_found(s, a);
	return 0;
}

static int
cb_scram(void *arg, const char *user, enum sasl_hash h,
    struct sasl_scram_secret *out, enum sasl_err *err_out)
{
	struct imap_session *s = arg;
	struct store_account *a = NULL;
	struct store_scram sc;
	struct store_err e;

	if (account_for(s, user, &a) == -1) {
		/* spec/imap.md 4.1: "scram not possible", no enumeration. */
		*err_out = SASL_ERR_NO_SECRET;
		return -1;
	}
	if (store_password_scram(a,
		h == SASL_HASH_SHA1 ? STORE_SCRAM_SHA1 : STORE_SCRAM_SHA256,
		&sc, &e) == -1) {
		store_account_put(a);
		*err_out = e.code == STORE_ENOPASSWORD ? SASL_ERR_NO_SECRET :
							  SASL_ERR_TEMP;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out->salt, sc.salt, sizeof(sc.salt));
	out->salt_len = sizeof(sc.salt);
	out->iterations = sc.iterations;
	memcpy(out->stored_key, sc.stored_key, sizeof(sc.stored_key));
	memcpy(out->server_key, sc.server_key, sizeof(sc.server_key));
	out->key_len = sc.key_len;
	explicit_bzero(&sc, sizeof(sc));
	auth_found(s, a);
	return 0;
}

static const struct sasl_server_creds auth_creds = {
	cb_plain,
	cb_crammd5,
	cb_scram,
};

static void
auth_end(struct imap_session *s)
{
	sasl_server_free(s->sasl);
	s->sasl = NULL;
	s->auth_failed_wait = false;
	if (s->state == IMAP_S_NOTAUTH) {
		store_account_put(s->acct);
		s->acct = NULL;
	}
	if (s->rd == IMAP_R_AUTH)
		s->rd = IMAP_R_LINE;
}

static void
auth_challenge(struct imap_session *s, const struct buf *out)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	buf_adds(&b, "+ ");
	sasl_b64_encode(out->data, out->len, &b);
	buf_adds(&b, "\r\n");
	imap_write_buf(s, &b);
	buf_release(&b);
}

static void
auth_fail_reply(struct imap_session *s, enum sasl_err e, const char *why)
{
	switch (e) {
	case SASL_ERR_PROTOCOL:
	case SASL_ERR_NONE:
		imap_tagged(s, "BAD", "%s", why != NULL ? why : "protocol error");
		break;
	case SASL_ERR_AUTHZ:
		imap_login_failed(s, "[AUTHORIZATIONFAILED] authorization failed");
		break;
	case SASL_ERR_CREDENTIALS:
		imap_login_failed(s, "[AUTHENTICATIONFAILED] bad credentials");
		break;
	case SASL_ERR_NO_SECRET:
		/* spec/imap.md 2.2: not a failed attempt. */
		imap_tagged(s, "NO", "scram not possible");
		break;
	case SASL_ERR_CHANNEL_BINDING:
		log_info(&s->log, "channel binding mismatch, possible mitm");
		imap_login_failed(s, "[AUTHENTICATIONFAILED] bad credentials");
		break;
	case SASL_ERR_TEMP:
		imap_tagged(s, "NO", "[UNAVAILABLE] temporary failure");
		break;
	}
}

static void
auth_step(struct imap_session *s, struct span msg, bool have)
{
	struct buf out;
	const char *why = NULL;
	enum sasl_step st;

	buf_init(&out, SASL_MSG_MAX * 2);
	st = sasl_server_step(s->sasl, msg, have, &out, &why);
	if (st == SASL_CONTINUE) {
		auth_challenge(s, &out);
		s->rd = IMAP_R_AUTH;
	} else if (st == SASL_OK) {
		struct store_account *a = s->acct;
		const char *user = sasl_server_username(s->sasl);
		char *u = xstrdup(user != NULL ? user : "");
		struct buf caps;

		s->acct = NULL;
		auth_end(s);
		imap_login_done(s, a, u);
		free(u);
		buf_init(&caps, BUF_NOMAX);
		imap_capabilities(s, &caps);
		imap_tagged(s, "OK", "[CAPABILITY %s] authentication done",
		    caps.data);
		buf_release(&caps);
	} else if (out.len > 0) {
		/* SCRAM "e=": a challenge, then the failure after the
		 * client's next line (spec/imap.md 4.1 step 5). */
		s->auth_err = (int)sasl_server_error(s->sasl);
		auth_challenge(s, &out);
		s->auth_failed_wait = true;
		s->rd = IMAP_R_AUTH;
	} else {
		enum sasl_err e = sasl_server_error(s->sasl);

		auth_end(s);
		auth_fail_reply(s, e, why);
	}
	explicit_bzero(out.data, out.len);
	buf_release(&out);
}

void
imap_auth_line(struct imap_session *s, struct span line)
{
	struct buf dec;
	const char *why = NULL;

	if (s->auth_failed_wait) {
		enum sasl_err e = (enum sasl_err)s->auth_err;

		auth_end(s);
		auth_fail_reply(s, e, "authentication failed");
		return;
	}
	if (span_eq_cstr(line, "*")) {
		/* RFC 9051 6.2.2: "*" cancels. */
		auth_end(s);
		imap_tagged(s, "BAD", "authentication aborted");
		return;
	}
	buf_init(&dec, SASL_MSG_MAX);
	if (sasl_b64_decode(line, &dec, &why) == -1) {
		buf_release(&dec);
		auth_end(s);
		imap_tagged(s, "BAD", "invalid base64");
		return;
	}
	log_traceauth(&s->log, "sasl response",
	    LF_SECRET("data", dec.data));
	auth_step(s, span_of_buf(&dec), true);
	explicit_bzero(dec.data, dec.len);
	buf_release(&dec);
}

int
imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *x)
{
	struct sasl_server_params sp;
	const struct sasl_mech_info *mi;
	struct span mech;
	enum sasl_mech m;
	struct buf cb, ir;
	const char *why = NULL;
	bool have_ir = false;
	char *irs = NULL;

	if (imap_parse_sp(&x->p) == -1 || imap_parse_atom(&x->p, &mech) == -1)
		return -1;
	if (!imap_parse_eof(&x->p)) {
		/* RFC 4959 (SASL-IR): initial response, "=" for empty. */
		struct span a;

		if (imap_parse_sp(&x->p) == -1)
			return -1;
		if (imap_parse_char(&x->p, '=') == 0) {
			irs = NULL;
		} else if (imap_parse_atom(&x->p, &a) == -1) {
			return -1;
		} else {
			irs = span_dup(a);
		}
		have_ir = true;
		if (expect_end(x) == -1) {
			free(irs);
			return -1;
		}
	}
	if (sasl_mech_lookup(mech, &m) == -1 || m == SASL_MECH_LOGIN) {
		free(irs);
		imap_tagged(s, "NO", "[CANNOT] unsupported mechanism");
		return 0;
	}
	mi = sasl_mech_info(m);
	if (mi->clear_password && !plain_allowed(s)) {
		free(irs);
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] tls required");
		return 0;
	}
	if (m == SASL_MECH_CRAM_MD5 && have_ir) {
		free(irs);
		imap_tagged(s, "BAD", "no initial response allowed for cram-md5");
		return 0;
	}
	memset(&sp, 0, sizeof(sp));
	buf_init(&cb, SASL_CB_MAX);
	if (net_conn_tls(s->c) != NULL) {
		struct tls_session *t = net_conn_tls(s->c);
		bool v13 = tls_session_is_tls13(t);

		if (tls_channel_binding(t, v13 ? "tls-exporter" : "tls-unique",
			&cb, &why) == 0 && !buf_failed(&cb)) {
			sp.cb_type = v13 ? SASL_CB_TLS_EXPORTER :
					   SASL_CB_TLS_UNIQUE;
			sp.cb_data = span_of_buf(&cb);
		}
	}
	sp.hostname = s->l->hostname;
	sp.now_ns = time_wall_ns();
	sp.plus_offered = true;
	sp.creds = &auth_creds;
	sp.creds_arg = s;
	s->sasl = sasl_server_new(m, &sp, &why);
	buf_release(&cb);
	if (s->sasl == NULL) {
		free(irs);
		imap_tagged(s, "NO", "%s", why != NULL ? why : "mechanism not "
							     "available");
		return 0;
	}
	if (!have_ir) {
		if (mi->client_first) {
			/* RFC 9051 6.2.2: an empty challenge asks for it. */
			imap_reply(s, "+ ");
			s->rd = IMAP_R_AUTH;
		} else {
			auth_step(s, span_of(NULL, 0), false);
		}
		return 0;
	}
	buf_init(&ir, SASL_MSG_MAX);
	if (irs != NULL && sasl_b64_decode(span_of_cstr(irs), &ir, &why) == -1) {
		free(irs);
		buf_release(&ir);
		auth_end(s);
		imap_tagged(s, "BAD", "invalid base64 in initial response");
		return 0;
	}
	free(irs);
	auth_step(s, span_of_buf(&ir), true);
	explicit_bzero(ir.data, ir.len);
	buf_release(&ir);
	return 0;
}
