/*
 * smtp_server.c: the SMTP session (RFC 5321; RFC 3207 STARTTLS; RFC 4954
 * AUTH; RFC 6409 submission; RFC 8314 implicit TLS; RFC 2920 pipelining;
 * spec/smtp.md 2-8, 17, 18): connection checks and greeting, the command
 * state machine, DATA reading into a temp file, then delivery
 * (smtp_deliver.c) or submission (smtp_submit.c).
 *
 * Trust: everything read comes from an unauthenticated peer until AUTH
 * succeeds. Lines are bounded by SMTP_LINE_MAX, messages by the
 * listener's size limit. Threads: a session runs on one worker at a time
 * (net.h); waits (auth-failure slowdown, slow mode, delayed replies) are
 * the protocol timer with input paused, never a sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "moxbuild.h"
#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "dns/dns.h"
#include "maildir/store.h"
#include "mailauth/dnsbl.h"
#include "net/net.h"
#include "queue/queue.h"
#include "sasl/sasl.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_delay.h"
#include "smtp/smtp_int.h"
#include "smtp/smtp_mailfrom.h"
#include "smtp/smtp_reputation.h"
#include "smtp/smtp_reply.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define SMTP_DBUF_MAX (4u * 1024 * 1024)
#define SMTP_TMP_MAX 4096
/* Incoming (not submitted) message data is kept in an anonymous memory
 * file up to this size, then moved to a file in <datadir>/tmp: a small
 * message costs no file creation, unlink or fsync of its own (the store
 * makes the delivered copy durable). */
#define SMTP_DATA_MEM_MAX (1024u * 1024)

/* ---- replies ---- */

void
smtp_reply(struct smtp_sess *s, int code, const char *ecode, const char *text)
{
	struct buf b;

	buf_init(&b, 64 * 1024);
	smtp_reply_format(&b, code, ecode, text, code >= 400 ? s->rid : NULL);
	net_conn_write(s->c, b.data, b.len);
	if (code >= 400)
		log_debug(&s->log, "smtp error reply", LF_I64("code", code),
		    LF_STR("ecode", ecode), LF_STR("text", text));
	buf_release(&b);
	/* RFC 5321 3.8: a 421 reply announces that the server closes the
	 * transmission channel; it does, whoever sent it. */
	if (code == 421)
		net_conn_close(s->c);
}

void
smtp_replyf(struct smtp_sess *s, int code, const char *ecode,
    const char *fmt, ...)
{
	struct buf t;
	va_list ap;

	buf_init(&t, 16 * 1024);
	va_start(ap, fmt);
	buf_vaddf(&t, fmt, ap);
	va_end(ap);
	smtp_reply(s, code, ecode, t.data);
	buf_release(&t);
}

void
smtp_reply_later(struct smtp_sess *s, unsigned ms, int code,
    const char *ecode, const char *text, bool close)
{
	buf_reset(&s->delayed);
	if (code != 0)
		smtp_reply_format(&s->delayed, code, ecode, text,
		    code >= 400 ? s->rid : NULL);
	s->close_after_delay = close || code == 421; /* RFC 5321 3.8 */
	s->state = SMTP_ST_WAIT;
	net_conn_pause_input(s->c, true);
	net_conn_set_timer(s->c, ms > 0 ? ms : 1);
}

/* ---- session state ---- */

void
smtp_tx_reset(struct smtp_sess *s)
{
	/* Copies still waiting for the first-time-sender delay are
	 * dropped unstored (spec/junk.md 10). */
	smtp_delay_free(s);
	smtp_rep_facts_free(s->rep);
	s->rep = NULL;
	smtp_mailfrom_reset(s);
	smtp_mail_release(&s->mail);
	s->have_mail = false;
	for (size_t i = 0; i < s->nrcpts; i++) {
		smtp_addr_release(&s->rcpts[i].addr);
		free(s->rcpts[i].account);
		free(s->rcpts[i].mailbox);
		free(s->rcpts[i].dest_key);
		smtp_alias_info_free(s->rcpts[i].alias);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	if (s->data_fd != -1)
		close(s->data_fd);
	s->data_fd = -1;
	if (s->data_path != NULL) {
		unlink(s->data_path);
		free(s->data_path);
		s->data_path = NULL;
	}
	buf_reset(&s->dbuf);
	buf_shrink(&s->dbuf);
	s->data_write_err = false;
	s->data_too_large = false;
	s->tx_bad_counted = false;
}

static bool
is_submission(const struct smtp_sess *s)
{
	return s->srv->p.kind != SMTP_KIND_SMTP;
}

/* spec/smtp.md 1: TLS required for AUTH and for mail on submission. */
static bool
tls_required(const struct smtp_sess *s)
{
	switch (s->srv->p.kind) {
	case SMTP_KIND_SMTP:
		return s->srv->p.require_starttls;
	case SMTP_KIND_SUBMISSION:
		return !s->srv->p.no_require_starttls;
	case SMTP_KIND_SUBMISSIONS:
		return true;
	}
	return true;
}

static void *
smtp_start(struct net_conn *c, void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_sess *s = xcalloc(1, sizeof(*s));
	enum smtp_limit_verdict v = SMTP_LIMIT_OK;

	s->srv = srv;
	s->c = c;
	s->log = *net_conn_log(c);
	s->data_fd = -1;
	snprintf(s->rid, sizeof(s->rid), "%llx",
	    (unsigned long long)net_conn_cid(c));
	snprintf(s->remote_ip, sizeof(s->remote_ip), "%s",
	    net_conn_remote_ip(c));
	buf_init(&s->dbuf, SMTP_DBUF_MAX);
	buf_init(&s->delayed, 64 * 1024);
	buf_init(&s->out, 64 * 1024);
	s->tls = srv->p.kind == SMTP_KIND_SUBMISSIONS;
	/* DESIGN.md: localserve applies no per-IP limits to loopback. */
	s->loopback_exempt = srv->p.localserve && net_conn_is_loopback(c);
	log_debug(&s->log, "new smtp connection", LF_STR("remote", s->remote_ip),
	    LF_STR("listener", srv->listener_name), LF_STR("rid", s->rid));
	/* spec/smtp.md 2: checks in order at accept. */
	if (net_conn_stopping(c)) {
		smtp_reply(s, 421, "4.3.2", "shutting down");
		net_conn_close(c);
		return s;
	}
	if (!s->loopback_exempt)
		v = smtp_limit_conn_start(s->remote_ip, is_submission(s),
		    time_wall_ns());
	switch (v) {
	case SMTP_LIMIT_OK:
		s->limit_counted = !s->loopback_exempt;
		break;
	case SMTP_LIMIT_RATE:
		smtp_reply(s, 421, "4.7.0", "connection rate from your ip or "
					    "network too high, slow down please");
		break;
	case SMTP_LIMIT_AUTH:
		smtp_reply(s, 421, "4.7.0", "too many auth failures");
		break;
	case SMTP_LIMIT_CONNS:
		smtp_reply(s, 421, "4.7.0",
		    "too many open connections from your ip or network");
		break;
	}
	if (v != SMTP_LIMIT_OK) {
		log_info(&s->log, "connection refused by limiter",
		    LF_STR("remote", s->remote_ip), LF_I64("verdict", v));
		net_conn_close(c);
		return s;
	}
	/* spec/smtp.md 12.2 step 14 uses them; they run while we talk. */
	smtp_auth_dnsbl_start(s);
	net_conn_printf(c, "220 %s ESMTP mox %s\r\n", srv->hostname,
	    PACKAGE_VERSION);
	net_conn_set_idle_timeout(c, SMTP_IDLE_MS);
	return s;
}

static void
smtp_end(struct net_conn *c, void *arg)
{
	struct smtp_sess *s = arg;

	(void)c;
	smtp_tx_reset(s);
	smtp_auth_dnsbl_end(s);
	if (s->limit_counted)
		smtp_limit_conn_end(s->remote_ip);
	sasl_server_free(s->sasl);
	free(s->hello);
	free(s->account);
	free(s->username);
	buf_release(&s->dbuf);
	buf_release(&s->delayed);
	buf_release(&s->out);
	free(s);
}

/* ---- parse error replies ---- */

static void
reply_perr(struct smtp_sess *s, const struct smtp_perr *e, bool rcpt)
{
	switch (e->kind) {
	case SMTP_PERR_SYNTAX:
		smtp_replyf(s, 501, "5.5.2", "bad syntax: %s", e->why);
		break;
	case SMTP_PERR_DUPLICATE:
		smtp_replyf(s, 501, "5.5.4", "duplicate param \"%.*s\"",
		    (int)e->param.len, e->param.p);
		break;
	case SMTP_PERR_UNKNOWN:
		if (e->param.len > 0)
			smtp_replyf(s, 555, "5.3.3",
			    "unrecognized parameter \"%.*s\"", (int)e->param.len,
			    e->param.p);
		else
			smtp_reply(s, 555, "5.3.3", "unrecognized parameter");
		break;
	case SMTP_PERR_BADVALUE:
		smtp_reply(s, 555, "5.5.4", e->why);
		break;
	case SMTP_PERR_NONASCII:
		smtp_reply(s, rcpt ? 553 : 550, "5.6.7", e->why);
		break;
	case SMTP_PERR_BOTHHOLD:
		smtp_reply(s, 501, "5.5.4", e->why);
		break;
	case SMTP_PERR_HOLDFAR:
		smtp_reply(s, 554, "5.5.4", e->why);
		break;
	}
}

static struct smtp_parse_opts
parse_opts(const struct smtp_sess *s, bool smtputf8)
{
	struct smtp_parse_opts o = { 0 };

	o.smtputf8 = smtputf8;
	o.pedantic = s->srv->p.pedantic;
	o.strict_trailing = is_submission(s);
	return o;
}

/* ---- commands ---- */

/* spec/smtp.md 3: a port 25 HELO names a domain that has an address
 * (A/AAAA). Only "not found" refuses; lookup errors are ignored.
 * localserve skips the lookup for loopback peers, like the MAIL FROM
 * checks (DESIGN.md). Blocks the worker on DNS (resolver timeouts). */
static bool
helo_resolves(struct smtp_sess *s, struct span name)
{
	struct dns_answer ans;
	enum dns_result res;
	char *host;

	if (s->srv->p.resolver == NULL ||
	    (s->srv->p.localserve && net_conn_is_loopback(s->c)))
		return true;
	host = span_dup(name);
	res = dns_lookup_ips(s->srv->p.resolver, host, &ans);
	if (res == DNS_NOTFOUND)
		log_info(&s->log, "helo domain does not resolve",
		    LF_STR("helo", host), LF_STR("remote", s->remote_ip));
	else if (res != DNS_OK)
		log_debug(&s->log, "helo domain lookup failed, ignored",
		    LF_STR("helo", host), LF_ERR(ans.why));
	dns_answer_release(&ans);
	free(host);
	return res != DNS_NOTFOUND;
}

static void
cmd_hello(struct smtp_sess *s, struct span args, bool ehlo)
{
	struct smtp_ehlo_opts eo = { 0 };
	struct span name;
	const char *why = NULL;
	struct buf b;

	if (is_submission(s) && !s->srv->p.pedantic) {
		/* spec/smtp.md 3: clients send junk; use the IP. */
		free(s->hello);
		s->hello = xstrdup(s->remote_ip);
	} else {
		if (smtp_parse_ehlo(args, ehlo, &name, &why) == -1) {
			smtp_replyf(s, 501, "5.5.2", "bad syntax: %s", why);
			return;
		}
		if (!ehlo && !is_submission(s) && !helo_resolves(s, name)) {
			smtp_reply(s, 550, "5.5.0",
			    "your ehlo domain does not resolve to an IP address");
			return;
		}
		free(s->hello);
		s->hello = span_dup(name);
	}
	smtp_tx_reset(s);
	s->hello_done = true;
	s->ehlo = ehlo;
	if (!ehlo) {
		/* RFC 5321 4.1.1.1: HELO gets a single line (spec/smtp.md 20). */
		net_conn_printf(s->c, "250 %s\r\n", s->srv->hostname);
		return;
	}
	eo.hostname = s->srv->hostname;
	eo.max_size = s->srv->max_size;
	eo.starttls = !s->tls && s->srv->p.tls != NULL &&
	    s->srv->p.kind != SMTP_KIND_SUBMISSIONS && !s->srv->p.no_starttls;
	eo.requiretls = !eo.starttls && (s->tls || s->srv->p.tls == NULL) &&
	    !(s->srv->p.kind == SMTP_KIND_SMTP && s->srv->p.no_require_tls);
	eo.submission = is_submission(s);
	eo.auth_mechs = s->tls || !tls_required(s);
	eo.now_ns = time_wall_ns();
	buf_init(&b, 4096);
	smtp_ehlo_format(&b, &eo);
	net_conn_write(s->c, b.data, b.len);
	buf_release(&b);
}

static void
cmd_starttls(struct smtp_sess *s, struct span args)
{
	if (args.len > 0) {
		smtp_reply(s, 501, "5.5.2", "bad syntax: no parameters allowed");
		return;
	}
	if (s->tls) {
		smtp_reply(s, 503, "5.5.1", "already speaking tls");
		return;
	}
	if (s->authenticated) {
		smtp_reply(s, 503, "5.5.1", "cannot starttls after authentication");
		return;
	}
	if (s->srv->p.tls == NULL || s->srv->p.no_starttls) {
		smtp_reply(s, 503, "5.5.1", "tls not available");
		return;
	}
	smtp_replyf(s, 220, "2.0.0", "go! (%s)", s->rid);
	/* spec/smtp.md 4: bytes pipelined after the command are fed to
	 * the handshake, never read as SMTP (RFC 3207 6: no plaintext
	 * command injection into the TLS session). */
	if (net_conn_starttls_pipelined(s->c, s->srv->p.tls) == -1) {
		net_conn_close(s->c);
		return;
	}
	s->state = SMTP_ST_TLS;
}

/* ---- AUTH ---- */

/* Resolve a login name (any address of the account, spec/smtp.md 5). */
static int
login_account(const char *user, char **account_out)
{
	struct config *cfg = config_get();
	struct config_dest_ref ref;
	const char *at = strrchr(user, '@');
	char *lp = NULL;
	int rc = -1;

	if (cfg == NULL || at == NULL || at == user)
		goto out;
	lp = xstrndup(user, (size_t)(at - user));
	if (config_lookup_address(cfg, lp, at + 1, &ref) == -1 ||
	    ref.catchall)
		goto out;
	if (ref.account->login_disabled != NULL &&
	    ref.account->login_disabled[0] != '\0')
		goto out;
	*account_out = xstrdup(ref.account_name);
	rc = 0;
out:
	free(lp);
	config_put(cfg);
	return rc;
}

static int
open_login(struct smtp_sess *s, const char *user,
    struct store_account **a_out)
{
	struct store_err serr;
	char *name = NULL;

	if (login_account(user, &name) == -1)
		return -1;
	if (store_account_get(s->srv->p.store, name, false, a_out, &serr) == -1) {
		log_error(&s->log, "opening account for auth", LF_ERR(serr.text),
		    LF_STR("account", name));
		free(name);
		return -1;
	}
	free(s->account);
	s->account = name;
	return 0;
}

static int
cred_plain(void *arg, const char *user, const char *password,
    enum sasl_err *err_out)
{
	struct smtp_sess *s = arg;
	struct store_account *a = NULL;
	struct store_err serr;
	int rc = -1;

	*err_out = SASL_ERR_CREDENTIALS;
	if (open_login(s, user, &a) == -1)
		return -1;
	if (store_password_check(a, password, &serr) == 0)
		rc = 0;
	else if (serr.code == STORE_EINTERNAL)
		*err_out = SASL_ERR_TEMP;
	store_account_put(a);
	return rc;
}

static int
cred_crammd5(void *arg, const char *user, struct sasl_crammd5_secret *out,
    enum sasl_err *err_out)
{
	struct smtp_sess *s = arg;
	struct store_account *a = NULL;
	struct store_crammd5 cm;
	struct store_err serr;
	int rc = -1;

	*err_out = SASL_ERR_CREDENTIALS;
	if (open_login(s, user, &a) == -1)
		return -1;
	if (store_password_crammd5(a, &cm, &serr) == 0) {
		memcpy(out->ipad, cm.ipad, sizeof(out->ipad));
		memcpy(out->opad, cm.opad, sizeof(out->opad));
		explicit_bzero(&cm, sizeof(cm));
		rc = 0;
	} else {
		*err_out = serr.code == STORE_EINTERNAL ? SASL_ERR_TEMP
							: SASL_ERR_NO_SECRET;
	}
	store_account_put(a);
	return rc;
}

static int
cred_scram(void *arg, const char *user, enum sasl_hash h,
    struct sasl_scram_secret *out, enum sasl_err *err_out)
{
	struct smtp_sess *s = arg;
	struct store_account *a = NULL;
	struct store_scram sc;
	struct store_err serr;
	int rc = -1;

	*err_out = SASL_ERR_NO_SECRET; /* spec/smtp.md 5: "scram not possible" */
	if (open_login(s, user, &a) == -1)
		return -1;
	if (store_password_scram(a,
		h == SASL_HASH_SHA1 ? STORE_SCRAM_SHA1 : STORE_SCRAM_SHA256, &sc,
		&serr) == 0) {
		memset(out, 0, sizeof(*out));
		memcpy(out->salt, sc.salt, sizeof(sc.salt));
		out->salt_len = sizeof(sc.salt);
		out->iterations = sc.iterations;
		memcpy(out->stored_key, sc.stored_key, sizeof(sc.stored_key));
		memcpy(out->server_key, sc.server_key, sizeof(sc.server_key));
		out->key_len = sc.key_len;
		explicit_bzero(&sc, sizeof(sc));
		rc = 0;
	} else if (serr.code == STORE_EINTERNAL) {
		*err_out = SASL_ERR_TEMP;
	}
	store_account_put(a);
	return rc;
}

static const struct sasl_server_creds smtp_creds = {
	.check_plain = cred_plain,
	.crammd5 = cred_crammd5,
	.scram = cred_scram,
};

static void
auth_send_challenge(struct smtp_sess *s, const struct buf *out)
{
	struct buf b;

	buf_init(&b, 2 * SASL_MSG_MAX + 16);
	buf_adds(&b, "334 ");
	sasl_b64_encode(out->data, out->len, &b);
	buf_adds(&b, "\r\n");
	net_conn_write(s->c, b.data, b.len);
	buf_release(&b);
}

/* The failure reply for the SASL error class (spec/smtp.md 5). */
static void
auth_fail(struct smtp_sess *s, enum sasl_err e, const char *why)
{
	bool counts = e == SASL_ERR_CREDENTIALS || e == SASL_ERR_AUTHZ ||
	    e == SASL_ERR_CHANNEL_BINDING;
	bool scram = s->sasl != NULL &&
	    sasl_server_mech(s->sasl) >= SASL_MECH_SCRAM_SHA_1;
	int code = 535;
	const char *ecode = "5.7.8", *text = "bad user/pass";
	unsigned delay = 0;

	switch (e) {
	case SASL_ERR_NONE:
	case SASL_ERR_CREDENTIALS:
	case SASL_ERR_CHANNEL_BINDING:
		text = scram ? "bad credentials" : "bad user/pass";
		break;
	case SASL_ERR_AUTHZ:
		text = "cannot assume other role";
		break;
	case SASL_ERR_PROTOCOL:
		code = 501;
		ecode = "5.5.4";
		text = why != NULL ? why : "malformed authentication data";
		break;
	case SASL_ERR_NO_SECRET:
		if (scram) {
			code = 454;
			ecode = "4.3.0";
			text = "scram not possible";
		}
		break;
	case SASL_ERR_TEMP:
		code = 451;
		ecode = "4.3.0";
		text = "temporary error";
		break;
	}
	sasl_server_free(s->sasl);
	s->sasl = NULL;
	free(s->account);
	s->account = NULL;
	s->state = SMTP_ST_CMD;
	log_info(&s->log, "authentication failed", LF_STR("remote", s->remote_ip),
	    LF_STR("why", why));
	if (counts) {
		s->auth_fail++;
		if (!s->loopback_exempt)
			smtp_limit_auth_failed(s->remote_ip, time_wall_ns());
		if (s->auth_fail >= SMTP_AUTH_SLOW_AFTER)
			s->slow = true;
		if (s->auth_fail > SMTP_AUTH_SLOW_AFTER)
			delay = (s->auth_fail - SMTP_AUTH_SLOW_AFTER) * 1000;
	}
	if (delay > 0)
		smtp_reply_later(s, delay, code, ecode, text, false);
	else
		smtp_reply(s, code, ecode, text);
}

static void
auth_ok(struct smtp_sess *s)
{
	const char *user = sasl_server_username(s->sasl);

	s->authenticated = true;
	free(s->username);
	s->username = xstrdup(user != NULL ? user : "");
	s->auth_fail = 0;
	s->slow = false;
	if (!s->loopback_exempt)
		smtp_limit_auth_ok(s->remote_ip);
	log_info(&s->log, "authenticated", LF_STR("user", s->username),
	    LF_STR("account", s->account),
	    LF_STR("mech", sasl_mech_info(sasl_server_mech(s->sasl))->name));
	smtp_reply(s, 235, "2.7.0",
	    sasl_server_mech(s->sasl) == SASL_MECH_LOGIN
		? "hello ancient smtp implementation"
		: "nice");
	sasl_server_free(s->sasl);
	s->sasl = NULL;
	s->state = SMTP_ST_CMD;
}

static void
auth_step(struct smtp_sess *s, struct span msg, bool have_msg)
{
	struct buf out;
	const char *why = NULL;
	enum sasl_step r;

	buf_init(&out, SASL_MSG_MAX * 2);
	r = sasl_server_step(s->sasl, msg, have_msg, &out, &why);
	switch (r) {
	case SASL_CONTINUE:
		auth_send_challenge(s, &out);
		s->state = SMTP_ST_AUTH;
		break;
	case SASL_OK:
		auth_ok(s);
		break;
	case SASL_FAIL:
		if (out.len > 0) {
			/* RFC 5802 7: server-final with e=; the client
			 * answers once more before the failure reply. */
			auth_send_challenge(s, &out);
			s->state = SMTP_ST_AUTH_ERR;
			break;
		}
		auth_fail(s, sasl_server_error(s->sasl), why);
		break;
	}
	buf_release(&out);
}

/* A client line during AUTH. */
static void
auth_line(struct smtp_sess *s, struct span line)
{
	struct buf dec;
	const char *why = NULL;

	if (s->state == SMTP_ST_AUTH_ERR) {
		auth_fail(s, sasl_server_error(s->sasl), "scram failure");
		return;
	}
	if (span_eq_cstr(line, "*")) {
		/* RFC 4954 4: the client cancels. */
		sasl_server_free(s->sasl);
		s->sasl = NULL;
		free(s->account);
		s->account = NULL;
		s->state = SMTP_ST_CMD;
		smtp_reply(s, 501, "5.5.0", "authentication aborted");
		return;
	}
	buf_init(&dec, SASL_MSG_MAX);
	if (sasl_b64_decode(line, &dec, &why) == -1) {
		sasl_server_free(s->sasl);
		s->sasl = NULL;
		s->state = SMTP_ST_CMD;
		smtp_replyf(s, 501, "5.5.2", "invalid base64: %s", why);
	} else {
		auth_step(s, span_of(dec.data, dec.len), true);
	}
	explicit_bzero(dec.data, dec.len);
	buf_release(&dec);
}

static void
cmd_auth(struct smtp_sess *s, struct span args)
{
	struct sasl_server_params sp = { 0 };
	const struct sasl_mech_info *mi;
	struct span mech, ir;
	bool have_ir;
	enum sasl_mech m;
	struct buf cb, dec;
	const char *why = NULL;

	if (!is_submission(s)) {
		smtp_reply(s, 503, "5.5.1",
		    "authentication only allowed on submission ports");
		return;
	}
	if (s->authenticated) {
		smtp_reply(s, 503, "5.5.1", "already authenticated");
		return;
	}
	if (s->have_mail) {
		smtp_reply(s, 503, "5.5.1",
		    "authentication not allowed during mail transaction");
		return;
	}
	if (smtp_parse_auth(args, s->srv->p.pedantic, &mech, &have_ir, &ir,
		&why) == -1) {
		smtp_replyf(s, 501, "5.5.2", "bad syntax: %s", why);
		return;
	}
	if (sasl_mech_lookup(mech, &m) == -1) {
		smtp_replyf(s, 504, "5.5.4", "mechanism %.*s not supported",
		    (int)mech.len, mech.p);
		return;
	}
	mi = sasl_mech_info(m);
	if (mi->clear_password && tls_required(s) && !s->tls) {
		smtp_reply(s, 538, "5.7.11", "authentication requires tls");
		return;
	}
	if (mi->plus && !s->tls) {
		smtp_reply(s, 538, "5.7.11",
		    "scram plus mechanism requires tls connection");
		return;
	}
	buf_init(&cb, SASL_CB_MAX);
	buf_init(&dec, SASL_MSG_MAX);
	sp.cb_type = SASL_CB_NONE;
	if (s->tls && net_conn_tls(s->c) != NULL) {
		struct tls_session *ts = net_conn_tls(s->c);

		/* RFC 9266 for TLS 1.3, RFC 5929 for TLS 1.2. */
		sp.cb_type = tls_session_is_tls13(ts) ? SASL_CB_TLS_EXPORTER
						      : SASL_CB_TLS_UNIQUE;
		if (tls_channel_binding(ts, sasl_cb_name(sp.cb_type), &cb,
			&why) == -1)
			sp.cb_type = SASL_CB_NONE;
		sp.cb_data = span_of(cb.data, cb.len);
	}
	sp.hostname = s->srv->hostname;
	sp.now_ns = time_wall_ns();
	sp.plus_offered = true; /* spec/smtp.md 3: -PLUS always listed */
	sp.creds = &smtp_creds;
	sp.creds_arg = s;
	s->sasl = sasl_server_new(m, &sp, &why);
	if (s->sasl == NULL) {
		smtp_replyf(s, 538, "5.7.11", "%s", why);
		goto out;
	}
	if (!have_ir) {
		auth_step(s, span_of("", 0), false);
		goto out;
	}
	if (sasl_b64_decode(ir, &dec, &why) == -1) {
		sasl_server_free(s->sasl);
		s->sasl = NULL;
		smtp_replyf(s, 501, "5.5.2", "invalid base64: %s", why);
		goto out;
	}
	auth_step(s, span_of(dec.data, dec.len), true);
out:
	explicit_bzero(dec.data, dec.len);
	buf_release(&dec);
	buf_release(&cb);
}

/* ---- MAIL, RCPT ---- */

bool
smtp_localserve_error(const char *lp, char stage, int *code,
    const char **ecode, const char **text)
{
	size_t n = strlen(lp);
	uint64_t v;

	switch (stage) {
	case 'm':
		if (strncmp(lp, "mailfrom", 8) != 0)
			return false;
		break;
	case 'r':
		if (strncmp(lp, "rcptto", 6) != 0)
			return false;
		break;
	default:
		if (strncmp(lp, "mailfrom", 8) == 0 ||
		    strncmp(lp, "rcptto", 6) == 0 || strncmp(lp, "queue", 5) == 0)
			return false;
		break;
	}
	if (n >= 9 && strcmp(lp + n - 9, "temperror") == 0) {
		*code = 451;
		*ecode = "4.0.0";
		*text = "failing with temporary error";
		return true;
	}
	if (n >= 9 && strcmp(lp + n - 9, "permerror") == 0) {
		*code = 550;
		*ecode = "5.0.0";
		*text = "failing with permanent error";
		return true;
	}
	if (n >= 7 && strcmp(lp + n - 7, "timeout") == 0) {
		*code = 0;
		*ecode = "4.0.0";
		*text = "timeout";
		return true;
	}
	if (n >= 3 && span_u64(span_of(lp + n - 3, 3), 999, &v) == 0 &&
	    v >= 400 && v <= 600) {
		*code = (int)v;
		*ecode = v < 500 ? "4.0.0" : "5.0.0";
		*text = "failing with requested code";
		return true;
	}
	return false;
}

/* Reply for a localserve failure; true when one was sent. */
static bool
localserve_fail(struct smtp_sess *s, const char *lp, char stage)
{
	int code;
	const char *ecode, *text;

	if (!s->srv->p.localserve ||
	    !smtp_localserve_error(lp, stage, &code, &ecode, &text))
		return false;
	if (code == 0) /* spec/smtp.md 18: no reply for an hour, then 451 */
		smtp_reply_later(s, 3600 * 1000, 451, "4.0.0", "timeout", false);
	else
		smtp_reply(s, code, ecode, text);
	return true;
}

static void
cmd_mail(struct smtp_sess *s, struct span args)
{
	struct smtp_parse_opts o = parse_opts(s, true);
	struct smtp_perr pe;
	int64_t now = time_wall_ns();

	if (is_submission(s) && !s->authenticated) {
		smtp_reply(s, 530, "5.7.0", "authentication required");
		return;
	}
	if (s->have_mail) {
		smtp_reply(s, 503, "5.5.1", "already have MAIL");
		return;
	}
	/* spec/smtp.md 2: bad-transaction cut-off. */
	if (s->bad_tx > SMTP_BAD_TX_MAX && s->good_tx == 0) {
		smtp_reply(s, 550, "5.1.0", "too many failures");
		net_conn_close(s->c);
		return;
	}
	if (smtp_parse_mail(args, &o, is_submission(s), &s->mail, &pe) == -1) {
		reply_perr(s, &pe, false);
		return;
	}
	if (s->mail.has_size && s->mail.size > s->srv->max_size) {
		/* RFC 1870 6 / spec/smtp.md 6 */
		smtp_reply(s, 552,
		    s->srv->max_size < SMTP_MAX_MSG_SIZE_DEFAULT ? "5.2.3"
								: "5.3.4",
		    "message too large");
		goto fail;
	}
	if (s->mail.requiretls) {
		if (!s->tls) {
			smtp_reply(s, 530, "5.7.10", "requiretls only allowed on "
						     "tls-encrypted connections");
			goto fail;
		}
		if (s->srv->p.kind == SMTP_KIND_SMTP && s->srv->p.no_require_tls) {
			smtp_reply(s, 555, "5.3.3",
			    "REQUIRETLS not allowed for this connection");
			goto fail;
		}
	}
	if (s->mail.has_holduntil) {
		if (s->mail.holduntil_ns <= now) {
			smtp_reply(s, 554, "5.5.4",
			    "requested future release time is in the past");
			goto fail;
		}
		if (s->mail.holduntil_ns >
		    now + (int64_t)SMTP_HOLD_MAX_SEC * NS_PER_SEC) {
			smtp_reply(s, 554, "5.5.4", "requested future release "
						    "time is too far in the future");
			goto fail;
		}
	}
	if (!s->mail.null_path &&
	    localserve_fail(s, s->mail.from.localpart, 'm'))
		goto fail;
	if (!s->mail.null_path && !is_submission(s) && s->mail.from.ip_literal) {
		smtp_reply(s, 550, "5.7.0", "domain name required");
		goto fail;
	}
	/* spec/smtp.md 6: the domain must be able to receive mail. */
	if (!is_submission(s) && !smtp_mailfrom_domain_ok(s))
		goto fail;
	if (!s->mail.null_path && is_submission(s)) {
		/* spec/smtp.md 6: the address must be the account's. */
		struct config *cfg = config_get();
		struct config_dest_ref ref;
		bool ok = cfg != NULL && !s->mail.from.ip_literal &&
		    config_lookup_address(cfg, s->mail.from.localpart,
			s->mail.from.domain, &ref) == 0 &&
		    s->account != NULL && strcmp(ref.account_name, s->account) == 0;

		config_put(cfg);
		if (!ok) {
			smtp_reply(s, 550, "5.7.1", "must match authenticated user");
			goto fail;
		}
	}
	s->have_mail = true;
	smtp_reply(s, 250, "2.1.0", "looking good");
	return;
fail:
	smtp_tx_reset(s);
}

static bool
is_postmaster_host(const struct smtp_sess *s, const struct config *cfg,
    const char *domain)
{
	if (domain[0] == '\0' || strcasecmp(domain, cfg->st->hostname) == 0 ||
	    strcasecmp(domain, s->srv->hostname) == 0)
		return true;
	for (size_t i = 0; i < cfg->st->listeners.n; i++) {
		const struct config_listener *l = &cfg->st->listeners.vals[i];

		if (l->smtp.enabled && l->hostname != NULL &&
		    strcasecmp(domain, l->hostname) == 0)
			return true;
	}
	return false;
}

enum report_dest {
	REPORT_NONE,
	REPORT_DMARC, /* a domain's DMARC aggregate report address */
	REPORT_TLS,   /* the host's or a domain's TLS report address */
};

/* spec/smtp.md 9 step 2: is lp@dom the host TLS-report address
 * (mox.conf HostTLSRPT, Localpart at the hostname)? Fills *account_out
 * and *mailbox_out, borrowed from cfg. The localpart is ASCII
 * (config_check.c) and compares case-insensitively. */
static bool
is_host_tlsrpt(const struct config *cfg, const char *lp, const char *dom,
    const char **account_out, const char **mailbox_out)
{
	const struct config_account_mailbox *h = &cfg->st->host_tlsrpt;

	if (h->account == NULL || h->localpart == NULL ||
	    cfg->st->hostname == NULL || strcasecmp(lp, h->localpart) != 0 ||
	    strcasecmp(dom, cfg->st->hostname) != 0)
		return false;
	*account_out = h->account;
	*mailbox_out = h->mailbox != NULL ? h->mailbox : "Inbox";
	return true;
}

/* spec/smtp.md 9 "Reporting addresses": is lp@dom a domain's DMARC or
 * TLSRPT address (Localpart at its Domain, else at the domain itself;
 * lp canonicalised by the rules of dom)? Fills *account_out and
 * *mailbox_out, borrowed from cfg. */
static enum report_dest
domain_report_dest(const struct config *cfg, const char *lp,
    const char *dom, const char **account_out, const char **mailbox_out)
{
	const struct config_domain *ad = config_domain_find(cfg, dom);
	enum report_dest kind = REPORT_NONE;
	struct buf canon;

	if (ad == NULL)
		return REPORT_NONE;
	buf_init(&canon, SMTP_PATH_MAX + 1);
	config_canonical_localpart(ad, lp, &canon);
	for (size_t i = 0; i < cfg->dyn.domains.n && kind == REPORT_NONE &&
	     !buf_failed(&canon); i++) {
		const struct config_domain *d = &cfg->dyn.domains.vals[i];
		const struct config_report_addr *ra[2] = { d->dmarc, d->tlsrpt };

		for (size_t k = 0; k < 2 && kind == REPORT_NONE; k++) {
			const char *rd;

			if (ra[k] == NULL || ra[k]->localpart == NULL ||
			    ra[k]->account == NULL)
				continue;
			rd = ra[k]->domain != NULL ? ra[k]->domain
						   : cfg->dyn.domains.keys[i];
			if (strcasecmp(canon.data, ra[k]->localpart) != 0 ||
			    strcasecmp(rd, dom) != 0)
				continue;
			*account_out = ra[k]->account;
			*mailbox_out = ra[k]->mailbox != NULL ? ra[k]->mailbox
							      : "Inbox";
			kind = k == 0 ? REPORT_DMARC : REPORT_TLS;
		}
	}
	buf_release(&canon);
	return kind;
}

/* Fill e for a reporting destination. */
static void
report_rcpt(struct smtp_rcpt_ent *e, const char *account,
    const char *mailbox)
{
	struct buf key;

	buf_init(&key, SMTP_PATH_MAX + 1);
	smtp_addr_format(&e->addr, &key);
	e->account = xstrdup(account);
	e->mailbox = xstrdup(mailbox);
	e->dest_key = buf_take(&key);
	buf_release(&key);
}

/* spec/smtp.md 7 step 1, RFC 8460 3: TLS reports must reach us even
 * where TLS is otherwise required for delivery. */
static bool
is_tlsrpt_rcpt(const struct smtp_rcpt_ent *e)
{
	struct config *cfg;
	const char *account, *mailbox;
	bool yes;

	if (e->addr.ip_literal || e->addr.domain[0] == '\0')
		return false;
	cfg = config_get();
	yes = cfg != NULL &&
	    (is_host_tlsrpt(cfg, e->addr.localpart, e->addr.domain, &account,
		 &mailbox) ||
		domain_report_dest(cfg, e->addr.localpart, e->addr.domain,
		    &account, &mailbox) == REPORT_TLS);
	config_put(cfg);
	return yes;
}

/* spec/smtp.md 9: destination lookup for a recipient. Returns 1 local
 * (fills e: an account destination, a reporting address, or e->alias),
 * 0 unknown address in a hosted domain, -1 domain not hosted. */
static int
resolve_rcpt(struct smtp_sess *s, const struct config *cfg,
    struct smtp_rcpt_ent *e)
{
	const char *account, *mailbox;
	const char *lp = e->addr.localpart, *dom = e->addr.domain;
	bool pm = strcasecmp(lp, "postmaster") == 0;
	struct config_dest_ref ref;
	const struct config_domain *d;

	if (pm && is_postmaster_host(s, cfg, dom)) {
		if (cfg->st->postmaster.account == NULL)
			return 0;
		e->account = xstrdup(cfg->st->postmaster.account);
		e->mailbox = xstrdup(cfg->st->postmaster.mailbox != NULL
			? cfg->st->postmaster.mailbox
			: "Inbox");
		e->dest_key = xstrdup("postmaster");
		return 1;
	}
	/* Step 2, whether the hostname is a hosted domain or not. */
	if (is_host_tlsrpt(cfg, lp, dom, &account, &mailbox)) {
		report_rcpt(e, account, mailbox);
		return 1;
	}
	d = config_domain_find(cfg, dom);
	if (d == NULL || d->eff.reports_only)
		return -1;
	/* spec/smtp.md 9 step 4: an alias before the domain's catchall. */
	e->alias = smtp_alias_lookup(cfg, lp, dom);
	if (e->alias != NULL)
		return 1;
	/* Reporting addresses are destinations of their own, found
	 * before the catchall. */
	if (domain_report_dest(cfg, lp, dom, &account, &mailbox) !=
	    REPORT_NONE) {
		report_rcpt(e, account, mailbox);
		return 1;
	}
	if (config_lookup_address(cfg, lp, dom, &ref) == 0) {
		e->account = xstrdup(ref.account_name);
		e->mailbox = xstrdup(ref.mailbox);
		e->dest_key = xstrdup(ref.dest_key);
		return 1;
	}
	if (pm && cfg->st->postmaster.account != NULL) {
		/* RFC 5321 4.5.1: postmaster for every domain. */
		e->account = xstrdup(cfg->st->postmaster.account);
		e->mailbox = xstrdup(cfg->st->postmaster.mailbox != NULL
			? cfg->st->postmaster.mailbox
			: "Inbox");
		e->dest_key = xstrdup("postmaster");
		return 1;
	}
	return 0;
}

/* localserve: everything unknown goes to the mox account. */
static void
localserve_catchall(struct smtp_rcpt_ent *e)
{
	e->account = xstrdup("mox");
	e->mailbox = xstrdup("Inbox");
	e->dest_key = xstrdup("mox@localhost");
	e->local = true;
	e->accept_all = true;
}

static void
cmd_rcpt(struct smtp_sess *s, struct span args)
{
	struct smtp_parse_opts o = parse_opts(s, s->mail.smtputf8);
	struct smtp_rcpt r;
	struct smtp_rcpt_ent e = { 0 };
	struct smtp_perr pe;
	struct config *cfg = NULL;
	int res;

	if (!s->have_mail) {
		smtp_reply(s, 503, "5.5.1", "missing MAIL FROM");
		return;
	}
	if (smtp_parse_rcpt(args, &o, &r, &pe) == -1) {
		reply_perr(s, &pe, true);
		return;
	}
	e.addr = r.to;
	e.postmaster = r.postmaster;
	memset(&r.to, 0, sizeof(r.to));
	if (tls_required(s) && !s->tls && !is_tlsrpt_rcpt(&e)) {
		smtp_reply(s, 530, "5.7.0", "STARTTLS required for mail delivery");
		goto out;
	}
	if (s->nrcpts >= SMTP_RCPT_MAX) {
		smtp_replyf(s, 452, "4.5.3", "max of %d recipients reached",
		    SMTP_RCPT_MAX);
		goto out;
	}
	if (!is_submission(s) && s->mail.null_path && s->nrcpts >= 1) {
		smtp_reply(s, 452, "4.5.3",
		    "only one recipient allowed with null reverse address");
		goto out;
	}
	/* spec/smtp.md 7 step 4: a 2nd recipient needs SPF pass. */
	if (!is_submission(s) && !smtp_mailfrom_rcpt_ok(s))
		goto out;
	if (localserve_fail(s, e.addr.localpart, 'r'))
		goto out;
	if (e.addr.ip_literal) {
		if (!is_submission(s)) {
			smtp_reply(s, 550, "5.1.1", "not accepting email for ip");
			goto out;
		}
		goto accept;
	}
	cfg = config_get();
	if (cfg == NULL) {
		smtp_reply(s, 451, "4.3.0", "error processing");
		goto out;
	}
	res = resolve_rcpt(s, cfg, &e);
	if (res == 1) {
		e.local = true;
	} else if (s->srv->p.localserve && !is_submission(s)) {
		/* spec/smtp.md 18: accept-all */
		localserve_catchall(&e);
	} else if (res == -1) {
		if (!is_submission(s)) {
			smtp_reply(s, 550, "5.1.1", "not accepting email for domain");
			goto out;
		}
	} else if (is_submission(s)) {
		if (!s->srv->p.localserve) {
			smtp_reply(s, 550, "5.1.1", "no such user");
			goto out;
		}
	} else {
		/* spec/smtp.md 7: pretend success; fail after DATA. */
		e.unknown = true;
	}
accept:
	s->rcpts = xreallocarray(s->rcpts, s->nrcpts + 1, sizeof(*s->rcpts));
	s->rcpts[s->nrcpts++] = e;
	memset(&e, 0, sizeof(e));
	smtp_reply(s, 250, "2.1.0", "now on the list");
out:
	config_put(cfg);
	smtp_addr_release(&e.addr);
	free(e.account);
	free(e.mailbox);
	free(e.dest_key);
	smtp_alias_info_free(e.alias);
	smtp_rcpt_release(&r);
}

/* ---- DATA ---- */

/* Create the data file in <datadir>/tmp: s->data_fd and s->data_path.
 * Returns the fd or -1 with errno set. */
static int
data_file_create(struct smtp_sess *s)
{
	struct buf path;
	int fd;

	buf_init(&path, SMTP_TMP_MAX);
	buf_addf(&path, "%s/tmp/smtp-data-XXXXXX", s->srv->datadir);
	fd = mkostemp(path.data, O_CLOEXEC);
	if (fd != -1)
		s->data_path = buf_take(&path);
	buf_release(&path);
	return fd;
}

/* Move data kept in memory (no data_path) into a file once it grows
 * past SMTP_DATA_MEM_MAX. */
static void
data_spill(struct smtp_sess *s, size_t more)
{
	char chunk[65536];
	off_t have, off = 0;
	int mfd = s->data_fd, fd;

	if (s->data_path != NULL || s->data_write_err)
		return;
	have = lseek(mfd, 0, SEEK_END);
	if (have >= 0 && (size_t)have + more <= SMTP_DATA_MEM_MAX)
		return;
	fd = data_file_create(s);
	if (have < 0 || fd == -1)
		goto fail;
	while (off < have) {
		ssize_t n = pread(mfd, chunk, sizeof(chunk), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || io_write_all(fd, chunk, (size_t)n) == -1)
			goto fail;
		off += n;
	}
	s->data_fd = fd;
	(void)close(mfd);
	return;
fail:
	s->data_write_err = true;
	s->data_errno = errno != 0 ? errno : EIO;
	if (fd != -1)
		(void)close(fd);
}

static int
data_flush(struct smtp_sess *s)
{
	if (s->dbuf.len == 0)
		return 0;
	if (!s->data_too_large)
		data_spill(s, s->dbuf.len);
	if (!s->data_write_err && !s->data_too_large &&
	    io_write_all(s->data_fd, s->dbuf.data, s->dbuf.len) == -1) {
		s->data_write_err = true;
		s->data_errno = errno;
	}
	buf_reset(&s->dbuf);
	return 0;
}

static size_t
data_stream(void *arg, struct span in, bool *done)
{
	struct smtp_sess *s = arg;
	size_t used = 0, total = 0;

	while (total < in.len) {
		struct span part = span_of(in.p + total,
		    in.len - total > SMTP_DBUF_MAX / 2 ? SMTP_DBUF_MAX / 2
						       : in.len - total);
		int r = smtp_data_feed(&s->data, part, &s->dbuf, &used);

		total += used;
		if (s->data.size > s->srv->max_size)
			s->data_too_large = true;
		if (s->data_too_large) {
			/* spec/smtp.md 8: stop reading, reply, close. */
			*done = true;
			buf_reset(&s->dbuf);
			return total;
		}
		data_flush(s);
		if (r == 1) {
			*done = true;
			return total;
		}
	}
	return total;
}

static void
cmd_data(struct smtp_sess *s, struct span args)
{
	int fd;

	if (args.len > 0) {
		smtp_reply(s, 501, "5.5.2", "bad syntax: no parameters allowed");
		return;
	}
	if (!s->have_mail) {
		smtp_reply(s, 503, "5.5.1", "missing MAIL FROM");
		return;
	}
	if (s->nrcpts == 0) {
		smtp_reply(s, 503, "5.5.1", "missing RCPT TO");
		return;
	}
	/* A submission is queued from data_path (queue_add links it);
	 * incoming data starts in memory (data_spill()). */
	fd = is_submission(s) ? data_file_create(s) :
				memfd_create("smtp-data", MFD_CLOEXEC);
	if (fd == -1) {
		log_error(&s->log, "creating data file", LF_ERRNO(errno));
		smtp_reply(s, 451, "4.3.0", "error copying data to file");
		return;
	}
	s->data_fd = fd;
	smtp_data_init(&s->data);
	/* spec/smtp.md 2: bad unless it completes with 250. */
	s->bad_tx++;
	s->tx_bad_counted = true;
	s->state = SMTP_ST_DATA;
	smtp_reply(s, 354, NULL, "see you at the bare dot");
}

/* RFC 6531 3.2: does the message need SMTPUTF8? Non-ASCII in MAIL FROM
 * or RCPT localparts or in the header section. */
static bool
needs_smtputf8(const struct smtp_sess *s, struct span header)
{
	if (!s->mail.null_path)
		for (const char *p = s->mail.from.localpart; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80)
				return true;
	for (size_t i = 0; i < s->nrcpts; i++)
		for (const char *p = s->rcpts[i].addr.localpart; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80)
				return true;
	for (size_t i = 0; i < header.len; i++)
		if ((unsigned char)header.p[i] >= 0x80)
			return true;
	return false;
}

static void
data_done(struct smtp_sess *s)
{
	s->state = SMTP_ST_CMD;
	data_flush(s);
	if (s->data_too_large) {
		smtp_reply(s, 451,
		    s->data.size < SMTP_MAX_MSG_SIZE_DEFAULT ? "4.2.3" : "4.3.4",
		    "error copying data to file");
		net_conn_close(s->c);
		return;
	}
	if (s->data.bad) {
		smtp_reply(s, 500, "5.5.2",
		    "invalid bare \\r or \\n, may be smtp smuggling");
		smtp_tx_reset(s);
		return;
	}
	/* Only a submission's data file is kept (queued): an incoming
	 * message is copied into the store, which makes that copy durable
	 * before the 250. */
	if (!s->data_write_err && is_submission(s) &&
	    fsync(s->data_fd) == -1) {
		s->data_write_err = true;
		s->data_errno = errno;
	}
	if (s->data_write_err) {
		log_error(&s->log, "writing data file", LF_ERRNO(s->data_errno));
		if (s->data_errno == ENOSPC || s->data_errno == EDQUOT)
			smtp_reply(s, 452, "4.3.1", "error copying data to file");
		else
			smtp_reply(s, 451, "4.3.0", "error copying data to file");
		smtp_tx_reset(s);
		return;
	}
	if (is_submission(s) && !s->data.header_end) {
		smtp_reply(s, 554, "5.6.0",
		    "message requires both header and body section");
		smtp_tx_reset(s);
		return;
	}
	if (is_submission(s) && s->srv->p.pedantic && s->data.has_8bit &&
	    s->mail.body != SMTP_BODY_8BITMIME) {
		smtp_reply(s, 500, "5.6.0",
		    "message with non-us-ascii requires 8bitmime extension");
		smtp_tx_reset(s);
		return;
	}
	if (is_submission(s))
		smtp_submit(s);
	else
		smtp_deliver_incoming(s);
}

bool
smtp_sess_needs_smtputf8(const struct smtp_sess *s, struct span header)
{
	return needs_smtputf8(s, header);
}

/* ---- dispatch ---- */

static void
command(struct smtp_sess *s, struct span line)
{
	struct span args;
	enum smtp_verb v = smtp_parse_verb(line, &args);
	bool first = !s->any_cmd;

	s->any_cmd = true;
	log_trace(&s->log, "smtp command", LF_STRN("line", line.p,
	    line.len > 64 ? 64 : line.len));
	if (net_conn_stopping(s->c)) {
		smtp_reply(s, 421, "4.3.2", "shutting down");
		net_conn_close(s->c);
		return;
	}
	switch (v) {
	case SMTP_VERB_UNKNOWN:
		if (first) {
			/* spec/smtp.md 2: likely another protocol. */
			smtp_reply(s, 500, "5.5.2", "please try again speaking smtp");
			net_conn_close(s->c);
		} else {
			smtp_reply(s, 500, "5.5.1", "unknown command");
		}
		return;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		cmd_hello(s, args, v == SMTP_VERB_EHLO);
		return;
	case SMTP_VERB_STARTTLS:
	case SMTP_VERB_AUTH:
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
	case SMTP_VERB_DATA:
		if (!s->hello_done) {
			smtp_reply(s, 503, "5.5.1", "no ehlo/helo yet");
			return;
		}
		break;
	case SMTP_VERB_RSET:
		if (args.len > 0) {
			smtp_reply(s, 501, "5.5.2", "bad syntax: no parameters allowed");
			return;
		}
		smtp_tx_reset(s);
		smtp_reply(s, 250, "2.0.0", "all clear");
		return;
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		if (args.len == 0) {
			smtp_reply(s, 501, "5.5.2", "bad syntax: missing argument");
			return;
		}
		smtp_reply(s, 252, "2.7.0", v == SMTP_VERB_VRFY
			? "no verify but will try delivery"
			: "no expand but will try delivery");
		return;
	case SMTP_VERB_HELP:
		smtp_reply(s, 214, "2.0.0", "see rfc 5321 (smtp)");
		return;
	case SMTP_VERB_NOOP:
		smtp_reply(s, 250, "2.0.0", "alrighty");
		return;
	case SMTP_VERB_QUIT:
		smtp_reply(s, 221, "2.0.0", "okay thanks bye");
		net_conn_close(s->c);
		return;
	}
	switch (v) {
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s, args);
		break;
	case SMTP_VERB_AUTH:
		cmd_auth(s, args);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, args);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, args);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s, args);
		break;
	case SMTP_VERB_UNKNOWN:
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
	case SMTP_VERB_RSET:
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
	case SMTP_VERB_HELP:
	case SMTP_VERB_NOOP:
	case SMTP_VERB_QUIT:
		break;
	}
}

/* During the first-time-sender delay: input is watched, not read. A
 * peer that went away ends the session (the waiting copies are dropped
 * unstored); one that sends anyway is paused until the delay is over
 * (its bytes stay buffered for the next command). */
static void
delay_watch(struct smtp_sess *s)
{
	struct span d;
	int r = net_conn_read(s->c, &d);

	if (r == NET_EOF || r == NET_ERROR) {
		log_info(&s->log, "peer left during first-time sender delay",
		    LF_STR("remote", s->remote_ip));
		net_conn_close(s->c);
	} else if (r == NET_OK) {
		net_conn_pause_input(s->c, true);
	}
}

static void
run(struct smtp_sess *s)
{
	for (;;) {
		struct span line;
		int r;

		if (net_conn_is_closing(s->c))
			return;
		switch (s->state) {
		case SMTP_ST_WAIT:
		case SMTP_ST_TLS:
			return;
		case SMTP_ST_DELAY:
			delay_watch(s);
			return;
		case SMTP_ST_DATA:
			r = net_conn_stream(s->c, data_stream, s);
			if (r == NET_AGAIN)
				return;
			if (r != NET_OK) {
				net_conn_close(s->c);
				return;
			}
			data_done(s);
			continue;
		case SMTP_ST_CMD:
		case SMTP_ST_AUTH:
		case SMTP_ST_AUTH_ERR:
			break;
		}
		if (s->slow && !s->slow_waited) {
			/* spec/smtp.md 2: slow mode, 1 s before each read. */
			s->slow_waited = true;
			smtp_reply_later(s, 1000, 0, NULL, NULL, false);
			return;
		}
		r = net_conn_read_line(s->c, SMTP_LINE_MAX, &line, NULL);
		if (r == NET_AGAIN)
			return;
		if (r == NET_TOOLONG) {
			smtp_replyf(s, 500, "5.5.0",
			    "line too long, smtp max is 512, we reached %d",
			    SMTP_LINE_MAX);
			net_conn_close(s->c);
			return;
		}
		if (r != NET_OK) {
			net_conn_close(s->c);
			return;
		}
		s->slow_waited = false;
		if (s->state == SMTP_ST_AUTH || s->state == SMTP_ST_AUTH_ERR)
			auth_line(s, line);
		else
			command(s, line);
	}
}

static void
smtp_event(struct net_conn *c, void *arg, unsigned ev)
{
	struct smtp_sess *s = arg;

	if (net_conn_is_closing(c))
		return;
	if (ev & NET_EV_SHUTDOWN) {
		smtp_reply(s, 421, "4.3.2", "shutting down");
		net_conn_close(c);
		return;
	}
	if ((ev & NET_EV_TIMER) && s->state == SMTP_ST_WAIT) {
		net_conn_write(c, s->delayed.data, s->delayed.len);
		buf_reset(&s->delayed);
		net_conn_pause_input(c, false);
		s->state = SMTP_ST_CMD;
		if (s->close_after_delay) {
			net_conn_close(c);
			return;
		}
	}
	if (ev & NET_EV_TLS) {
		/* RFC 3207 4.2: forget everything learned before TLS. */
		s->tls = true;
		s->hello_done = false;
		free(s->hello);
		s->hello = NULL;
		smtp_tx_reset(s);
		s->state = SMTP_ST_CMD;
	}
	if ((ev & NET_EV_TIMER) && s->state == SMTP_ST_DELAY) {
		/* spec/junk.md 10: the delay is over: store and answer. */
		s->state = SMTP_ST_CMD;
		net_conn_pause_input(c, false);
		smtp_delay_fire(s);
	}
	if ((ev & NET_EV_IDLE) && s->state != SMTP_ST_WAIT &&
	    s->state != SMTP_ST_DELAY) {
		smtp_reply(s, 421, "4.4.2", "timeout, closing connection");
		net_conn_close(c);
		return;
	}
	if (ev & NET_EV_IDLE)
		net_conn_set_idle_timeout(c, SMTP_IDLE_MS);
	run(s);
}

static const struct net_proto smtp_proto = {
	.name = "smtpserver",
	.start = smtp_start,
	.event = smtp_event,
	.end = smtp_end,
};

const struct net_proto *
smtp_server_proto(void)
{
	return &smtp_proto;
}

struct smtp_server *
smtp_server_new(const struct smtp_server_params *p, struct buf *err)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));

	srv->p = *p;
	srv->hostname = xstrdup(p->hostname);
	srv->listener_name = xstrdup(p->listener_name != NULL ? p->listener_name
							      : "");
	srv->p.hostname = srv->hostname;
	srv->p.listener_name = srv->listener_name;
	srv->datadir = xstrdup(store_datadir(p->store));
	srv->max_size = p->max_msg_size > 0 ? p->max_msg_size
					    : SMTP_MAX_MSG_SIZE_DEFAULT;
	lock_init(&srv->queue_lock, LOCK_ORDER_ACCOUNTS, "smtp queue open");
	srv->dnsbls = xcalloc(p->ndnsbls + 1, sizeof(char *));
	for (size_t i = 0; i < p->ndnsbls; i++)
		srv->dnsbls[i] = xstrdup(p->dnsbls[i]);
	srv->p.dnsbls = (const char *const *)srv->dnsbls;
	srv->dnsbl_health = dnsbl_health_new();
	if (p->localserve && p->resolver != NULL) {
		struct config *cfg = config_get();

		if (cfg != NULL)
			srv->localserve_keys = smtp_auth_localserve_keys(cfg);
		config_put(cfg);
	}
	(void)err;
	return srv;
}

struct queue *
smtp_server_queue(struct smtp_server *srv, struct buf *err)
{
	struct queue *q;

	/* The lock exists to serialise this one-time open (STYLE.md 8). */
	lock_take(&srv->queue_lock);
	if (srv->queue == NULL)
		srv->queue = queue_open(srv->datadir, err);
	q = srv->queue;
	lock_release(&srv->queue_lock);
	return q;
}

void
smtp_server_free(struct smtp_server *srv)
{
	if (srv == NULL)
		return;
	queue_close(srv->queue);
	lock_destroy(&srv->queue_lock);
	for (size_t i = 0; i < srv->p.ndnsbls; i++)
		free(srv->dnsbls[i]);
	free(srv->dnsbls);
	dnsbl_health_free(srv->dnsbl_health);
	dns_resolver_free(srv->localserve_keys);
	free(srv->hostname);
	free(srv->listener_name);
	free(srv->datadir);
	free(srv);
}
