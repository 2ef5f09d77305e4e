/*
 * smtp_submit.c: message submission after DATA (RFC 6409; spec/smtp.md
 * 11, 14, 15, 18): From ownership, Message-Id and Date when missing
 * (RFC 6409 8.2, 8.3), X-Mox-Extra-* headers, per-account outgoing
 * limits, DKIM signing for the From domain (RFC 6376, spec/auth.md 4.3),
 * and the hand-off to the queue, durable before the 250. The queue
 * runner delivers it (in localserve to the local SMTP listener).
 *
 * Trust: the sender is authenticated, its message is not: header values
 * are bounded and validated before use. Threads: the session's worker;
 * blocks on disk and SQLite.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sqlite3.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "net/net.h"
#include "queue/queue.h"
#include "sasl/sasl.h"
#include "queue/queue_fromid.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_fromid.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define SUBMIT_DAY (86400 * NS_PER_SEC)
#define SUBMIT_EXTRA_PREFIX "X-Mox-Extra-"

/* 16 random bytes, base64url without padding (spec/smtp.md 11 step 5). */
static void
random_id(struct buf *out)
{
	uint8_t r[16];
	struct buf b;

	buf_init(&b, 64);
	gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r));
	sasl_b64_encode(r, sizeof(r), &b);
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '+')
			b.data[i] = '-';
		else if (b.data[i] == '/')
			b.data[i] = '_';
		else if (b.data[i] == '=')
			break;
		buf_addc(out, b.data[i]);
	}
	buf_release(&b);
}

/* Canonical header-name casing: first letter and letters after '-'
 * upper case, the rest lower case. */
static void
canonical_key(struct span k, struct buf *out)
{
	bool up = true;

	for (size_t i = 0; i < k.len; i++) {
		char c = k.p[i];

		if (up && c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		else if (!up && c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		buf_addc(out, c);
		up = c == '-';
	}
}

static void
extra_free(struct queue_extra *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

/* spec/smtp.md 11 step 7. Returns 0, or -1 after replying. */
static int
collect_extra(struct smtp_sess *s, struct span header,
    struct queue_extra **out, size_t *n_out)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why;
	struct queue_extra *v = NULL;
	size_t n = 0;
	size_t plen = strlen(SUBMIT_EXTRA_PREFIX);

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		struct buf k, val;

		if (f.name.len <= plen ||
		    !span_has_prefix_ci(f.name, SUBMIT_EXTRA_PREFIX))
			continue;
		buf_init(&k, 256);
		buf_init(&val, 64 * 1024);
		canonical_key(span_of(f.name.p + plen, f.name.len - plen), &k);
		message_unfold(f.value, &val);
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].key, k.data) == 0) {
				smtp_replyf(s, 554, "5.6.0",
				    "duplicate x-mox-extra- key \"%s\"", k.data);
				buf_release(&k);
				buf_release(&val);
				extra_free(v, n);
				return -1;
			}
		if (n < QUEUE_EXTRA_MAX && !buf_failed(&k) && !buf_failed(&val)) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n].key = buf_take(&k);
			v[n].value = buf_take(&val);
			n++;
		}
		buf_release(&k);
		buf_release(&val);
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* ---- outgoing limits (spec/smtp.md 14) over the account's outgoing
 * table in accounts/<name>/index.db ---- */

static int
outgoing_open(struct smtp_sess *s, sqlite3 **db_out)
{
	struct buf p;
	sqlite3 *db = NULL;
	int rc = -1;

	buf_init(&p, 4096);
	buf_addf(&p, "%s/accounts/%s/index.db", s->srv->datadir, s->account);
	if (sqlite3_open_v2(p.data, &db, SQLITE_OPEN_READWRITE |
		SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 10000);
		rc = 0;
	}
	buf_release(&p);
	if (rc == -1) {
		sqlite3_close(db);
		return -1;
	}
	*db_out = db;
	return 0;
}

static int64_t
count_query(sqlite3 *db, const char *sql, int64_t since, const char *rcpt)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	if (rcpt != NULL)
		sqlite3_bind_text(st, 2, rcpt, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Returns 0 when within limits, 1 after a limit reply, -1 on error. */
static int
outgoing_check(struct smtp_sess *s, const struct config_account *ca,
    char **rcpts, size_t n)
{
	sqlite3 *db = NULL;
	int64_t since = time_wall_ns() - SUBMIT_DAY, n24, first;
	int64_t maxmsg = ca->eff.max_outgoing_messages_per_day;
	int64_t maxfirst = ca->eff.max_first_time_recipients_per_day;
	int rc = -1;

	if (outgoing_open(s, &db) == -1)
		return -1;
	n24 = count_query(db, "SELECT count(*) FROM outgoing WHERE submitted"
			      " >= ?1", since, NULL);
	if (n24 < 0)
		goto out;
	if (n24 + (int64_t)n > maxmsg) {
		smtp_replyf(s, 451, "4.7.1",
		    "max number of messages (%lld) over past 24h reached, try "
		    "increasing per-account setting MaxOutgoingMessagesPerDay",
		    (long long)maxmsg);
		rc = 1;
		goto out;
	}
	if (n24 + (int64_t)n >= maxfirst) {
		first = count_query(db,
		    "SELECT count(DISTINCT recipient) FROM outgoing o WHERE"
		    " submitted >= ?1 AND NOT EXISTS (SELECT 1 FROM outgoing p"
		    " WHERE p.recipient = o.recipient AND p.submitted < ?1)",
		    since, NULL);
		if (first < 0)
			goto out;
		for (size_t i = 0; i < n; i++) {
			int64_t have = count_query(db,
			    "SELECT count(*) FROM outgoing WHERE ?1 >= 0 AND"
			    " recipient = ?2",
			    0, rcpts[i]);

			if (have < 0)
				goto out;
			if (have == 0)
				first++;
		}
		if (first > maxfirst) {
			smtp_replyf(s, 451, "4.7.1",
			    "max number of new/first-time recipients (%lld) over "
			    "past 24h reached, try increasing per-account setting "
			    "MaxFirstTimeRecipientsPerDay",
			    (long long)maxfirst);
			rc = 1;
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_close(db);
	return rc;
}

static void
outgoing_record(struct smtp_sess *s, char **rcpts, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (outgoing_open(s, &db) == -1)
		goto out;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO outgoing (recipient, submitted)"
				   " VALUES (?1, ?2)",
		-1, &st, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, rcpts[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, time_wall_ns());
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	ok = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
out:
	sqlite3_finalize(st);
	if (!ok) {
		log_error(&s->log, "recording outgoing recipients",
		    LF_ERR(db != NULL ? sqlite3_errmsg(db) : "open failed"));
		if (db != NULL)
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
}

/* ---- From ownership (spec/smtp.md 11 step 2) ---- */

/* The From address resolves (aliases allowed, no postmaster special
 * case) to the account, or is an alias with AllowMsgFrom of which the
 * account owns a member. spec/smtp.md 9 step 4: an alias is found before
 * the domain's catchall. */
static bool
from_allowed(const struct smtp_sess *s, const struct config *cfg,
    const char *lp, const char *dom)
{
	struct config_dest_ref ref;

	if (config_alias_find(cfg, lp, dom) != NULL)
		return smtp_alias_may_send_as(cfg, s->account, lp, dom);
	return config_lookup_address(cfg, lp, dom, &ref) == 0 &&
	    strcmp(ref.account_name, s->account) == 0;
}

/* ---- the submission ---- */

static void
header_section(struct smtp_sess *s, struct buf *out)
{
	char chunk[8192];
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(s->data_fd, chunk, sizeof(chunk), off);

		if (n <= 0 || buf_add(out, chunk, (size_t)n) == -1)
			break;
		off += n;
		if (message_header_len(span_of_buf(out)) < out->len)
			break;
	}
	if (buf_failed(out))
		buf_truncate(out, 0);
	buf_truncate(out, message_header_len(span_of_buf(out)));
}

/* spec/smtp.md 11 step 3: all TLS-Required headers say "no". */
static bool
tls_required_no(struct span header)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why;
	bool any = false, all_no = true;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		if (!span_eq_ci(f.name, "TLS-Required"))
			continue;
		any = true;
		if (!span_eq_ci(span_trim(f.value), "no"))
			all_no = false;
	}
	return any && all_no;
}

/* spec/smtp.md 11 step 8: sign what will be sent after the Received
 * header (the headers we added at prefix[added_at..], then the data) and
 * append the DKIM-Signature fields to prefix. Errors are logged; the
 * message then goes out unsigned. */
static void
sign_dkim(struct smtp_sess *s, const struct config *cfg, const char *from_lp,
    const char *from_dom, struct buf *prefix, size_t added_at)
{
	struct buf msg, sigs;
	const char *why = "reading message";
	struct stat st;
	void *map = MAP_FAILED;

	buf_init(&msg, BUF_NOMAX);
	buf_init(&sigs, SMTP_PREFIX_MAX);
	if (fstat(s->data_fd, &st) == -1)
		goto fail;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
		    s->data_fd, 0);
		if (map == MAP_FAILED)
			goto fail;
	}
	buf_add(&msg, prefix->data + added_at, prefix->len - added_at);
	if (map != MAP_FAILED)
		buf_add(&msg, map, (size_t)st.st_size);
	if (smtp_auth_sign(cfg, from_lp, from_dom, span_of_buf(&msg), &sigs,
		&why) == -1)
		goto fail;
	if (sigs.len > 0) {
		buf_add(prefix, sigs.data, sigs.len);
		log_debug(&s->log, "dkim signed message",
		    LF_STR("domain", from_dom));
	}
	goto out;
fail:
	log_error(&s->log, "dkim signing failed, sending unsigned",
	    LF_ERR(why), LF_STR("domain", from_dom));
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	buf_release(&msg);
	buf_release(&sigs);
}

void
smtp_submit(struct smtp_sess *s)
{
	struct buf header, prefix, msgid, mailfrom, date, err, tmp;
	struct message_addr_list from = { 0 };
	const struct message_address *fa = NULL;
	struct queue_extra *extra = NULL;
	struct queue_msg *qm = NULL;
	struct queue *q = NULL;
	struct config *cfg = config_get();
	const struct config_account *ca = NULL;
	char **rcpts = NULL;
	size_t nextra = 0, n = s->nrcpts;
	struct span v;
	struct stat st;
	const char *why = "no From header";
	bool utf8msg, tlsno;
	size_t added_at;
	char *fdom = NULL;
	int r;

	buf_init(&header, SMTP_HEADER_MAX);
	buf_init(&prefix, SMTP_PREFIX_MAX);
	buf_init(&msgid, 1024);
	buf_init(&mailfrom, 1024);
	buf_init(&date, 128);
	buf_init(&err, 4096);
	buf_init(&tmp, 4096);
	if (cfg == NULL || fstat(s->data_fd, &st) == -1) {
		smtp_reply(s, 451, "4.3.0", "error processing");
		goto out;
	}
	ca = config_account_find(cfg, s->account);
	header_section(s, &header);
	utf8msg = smtp_sess_needs_smtputf8(s, span_of_buf(&header));
	if (s->srv->p.pedantic && utf8msg && !s->mail.smtputf8) {
		smtp_reply(s, 550, "5.6.0", "smtputf8 extension is required but "
					    "was not added to the MAIL command");
		goto out;
	}
	/* Step 1: exactly one From address. */
	if (message_header_find(span_of_buf(&header), "From", &v) == 0 &&
	    message_addr_parse(v, &from, &why) == 0) {
		size_t nm = 0;

		for (size_t i = 0; i < from.n; i++)
			if (from.v[i].kind == MESSAGE_ADDR_MAILBOX)
				nm++;
		fa = message_addr_first(&from);
		if (nm != 1 || fa == NULL || fa->user == NULL ||
		    fa->host == NULL || fa->host[0] == '\0') {
			fa = NULL;
			why = "need exactly one From address";
		}
	}
	if (fa == NULL) {
		smtp_replyf(s, 550, "5.6.0", "cannot parse header or From "
					     "address: %s", why);
		goto out;
	}
	/* Step 2: ownership. */
	fdom = xstrdup(fa->host);
	for (char *p = fdom; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	if (ca == NULL || !from_allowed(s, cfg, fa->user, fdom)) {
		smtp_reply(s, 550, "5.7.1",
		    "message from address must belong to authenticated user");
		goto out;
	}
	tlsno = !s->mail.requiretls && tls_required_no(span_of_buf(&header));
	/* Step 4. */
	if (s->srv->p.pedantic &&
	    message_header_find(span_of_buf(&header), "Return-Path", &v) == 0) {
		smtp_reply(s, 550, "5.6.0",
		    "message should not have Return-Path header");
		goto out;
	}
	/* localserve failure localparts, applied at DATA (spec 18). */
	for (size_t i = 0; i < n && s->srv->p.localserve; i++) {
		int code;
		const char *ecode, *text;

		if (smtp_localserve_error(s->rcpts[i].addr.localpart, 'd', &code,
			&ecode, &text)) {
			if (code == 0)
				smtp_reply_later(s, 3600 * 1000, 451, "4.0.0",
				    "timeout", false);
			else
				smtp_reply(s, code, ecode, text);
			goto out;
		}
	}
	/* Step 6: outgoing limits. */
	rcpts = xcalloc(n, sizeof(*rcpts));
	for (size_t i = 0; i < n; i++) {
		buf_reset(&tmp);
		smtp_addr_format(&s->rcpts[i].addr, &tmp);
		rcpts[i] = xstrdup(tmp.data);
	}
	r = outgoing_check(s, ca, rcpts, n);
	if (r == 1)
		goto out;
	if (r == -1) {
		log_error(&s->log, "checking outgoing limits",
		    LF_STR("account", s->account));
		smtp_reply(s, 451, "4.3.0", "error processing");
		goto out;
	}
	/* Step 7. */
	if (collect_extra(s, span_of_buf(&header), &extra, &nextra) == -1)
		goto out;
	/* Steps 5, 8 and 9: the prefix. */
	smtp_received(s, n == 1 ? rcpts[0] : NULL, utf8msg, NULL, &prefix);
	added_at = prefix.len;
	if (message_header_find(span_of_buf(&header), "Message-ID", &v) == 0) {
		buf_add(&msgid, v.p, v.len);
		buf_reset(&tmp);
		message_unfold(span_of_buf(&msgid), &tmp);
		buf_reset(&msgid);
		buf_adds(&msgid, tmp.data);
	} else {
		buf_addc(&msgid, '<');
		random_id(&msgid);
		buf_addf(&msgid, "@%s>", s->srv->hostname);
		buf_addf(&prefix, "Message-Id: %s\r\n", msgid.data);
	}
	if (message_header_find(span_of_buf(&header), "Date", &v) == -1) {
		message_date_format(time_wall_ns() / NS_PER_SEC, 0, &date);
		buf_addf(&prefix, "Date: %s\r\n", date.data);
	}
	sign_dkim(s, cfg, fa->user, fdom, &prefix, added_at);
	if (!s->mail.null_path)
		smtp_addr_format(&s->mail.from, &mailfrom);
	buf_reset(&tmp);
	buf_addf(&tmp, "%s; auth=pass smtp.mailfrom=%s", s->srv->hostname,
	    mailfrom.len > 0 ? mailfrom.data : "<>");
	smtp_header_fold(&prefix, "Authentication-Results", tmp.data);
	if (buf_failed(&prefix) || buf_failed(&msgid)) {
		smtp_reply(s, 554, "5.6.0", "message header too large");
		goto out;
	}
	/* Step 11: one record per recipient. */
	qm = xcalloc(n, sizeof(*qm));
	for (size_t i = 0; i < n; i++) {
		struct queue_msg *m = &qm[i];
		const char *subj = NULL;

		m->sender_account = xstrdup(s->account);
		m->sender_localpart = xstrdup(s->mail.null_path
			? ""
			: s->mail.from.localpart);
		m->sender_domain = xstrdup(s->mail.null_path
			? ""
			: s->mail.from.domain);
		m->recipient_localpart = xstrdup(s->rcpts[i].addr.localpart);
		m->recipient_domain = xstrdup(s->rcpts[i].addr.domain);
		m->has_8bit = s->data.has_8bit;
		m->smtputf8 = utf8msg;
		m->size = (int64_t)prefix.len + st.st_size;
		m->message_id = xstrdup(msgid.data);
		m->msg_prefix = xstrndup(prefix.data, prefix.len);
		m->msg_prefix_len = prefix.len;
		if (message_header_find(span_of_buf(&header), "Subject", &v) == 0) {
			buf_reset(&tmp);
			message_unfold(v, &tmp);
			subj = tmp.data;
		}
		m->subject = xstrdup(subj != NULL ? subj : "");
		m->requiretls = s->mail.requiretls ? QUEUE_REQUIRETLS_YES
		    : tlsno			   ? QUEUE_REQUIRETLS_NO
						   : QUEUE_REQUIRETLS_UNSET;
		if (s->mail.has_holdfor)
			m->next_attempt_ns = time_wall_ns() +
			    (int64_t)s->mail.holdfor * NS_PER_SEC;
		else if (s->mail.has_holduntil)
			m->next_attempt_ns = s->mail.holduntil_ns;
		m->future_release_request = xstrdup(s->mail.holdreq);
		m->extra = xcalloc(nextra > 0 ? nextra : 1, sizeof(*m->extra));
		for (size_t k = 0; k < nextra; k++) {
			m->extra[k].key = xstrdup(extra[k].key);
			m->extra[k].value = xstrdup(extra[k].value);
		}
		m->nextra = nextra;
	}
	/* Step 10. */
	if (smtp_fromid_submit(s, cfg, fdom, qm, n) == -1)
		goto out;
	q = smtp_server_queue(s->srv, &err);
	if (q == NULL || queue_add(q, s->data_path, qm, n, &err) == -1) {
		log_error(&s->log, "adding message to queue", LF_ERR(err.data));
		if (queue_fromid_is_dup_err(err.data))
			smtp_replyf(s, 554, "5.1.7", "bad fromid in smtp mail "
						     "from address: %s",
			    err.data);
		else if (errno == ENOSPC)
			smtp_reply(s, 452, "4.3.1", "error delivering message");
		else
			smtp_replyf(s, 451, "4.3.0", "error delivering message: %s",
			    "queue failure");
		goto out;
	}
	/* Step 12. */
	outgoing_record(s, rcpts, n);
	log_info(&s->log, "message queued", LF_STR("account", s->account),
	    LF_U64("recipients", n), LF_I64("queueid", qm[0].id),
	    LF_STR("msgid", msgid.data), LF_I64("size", qm[0].size));
	/* localserve: the queue runner delivers to the local listener. */
	s->good_tx++;
	if (s->tx_bad_counted && s->bad_tx > 0)
		s->bad_tx--;
	s->tx_bad_counted = false;
	smtp_reply(s, 250, "2.2.0", "it is done");
out:
	smtp_tx_reset(s);
	if (qm != NULL)
		queue_msg_list_free(qm, n);
	if (rcpts != NULL)
		for (size_t i = 0; i < n; i++)
			free(rcpts[i]);
	free(rcpts);
	extra_free(extra, nextra);
	message_addr_list_release(&from);
	free(fdom);
	config_put(cfg);
	buf_release(&header);
	buf_release(&prefix);
	buf_release(&msgid);
	buf_release(&mailfrom);
	buf_release(&date);
	buf_release(&err);
	buf_release(&tmp);
}
