/*
 * smtp_dsn.c: the delivery status notification for an incoming message
 * of which some recipients failed while others got it (spec/smtp.md
 * 12.4): composed by the queue's DSN code (RFC 3464 fields, RFC 6522
 * multipart/report, RFC 6533 UTF-8 variant), from the postmaster of the
 * first failed recipient's domain, DKIM-signed (RFC 6376) for that
 * domain or its nearest hosted parent, and queued to the MAIL FROM
 * address with a null reverse path (RFC 5321 4.5.5).
 *
 * Trust: the EHLO name, the addresses and the original header come from
 * the peer; queue_dsn_compose() cleans what it copies. Threads: the
 * session's worker; blocks on disk and SQLite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "queue/queue.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define DSN_MAX (4 * SMTP_HEADER_MAX) /* header copy, base64, parts */
#define DSN_TEXT_MAX 900              /* per line, RFC 5322 2.1.1 */

/* Append s with control characters replaced by spaces. */
static void
add_line(struct buf *out, const char *s)
{
	size_t n = strlen(s);

	if (n > DSN_TEXT_MAX)
		n = DSN_TEXT_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf_addc(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
}

/* The human part. */
static void
human_text(const struct smtp_dsn_in *in, struct buf *out)
{
	if (in->nfails > 1)
		buf_adds(out, "Multiple delivery failures occurred.\r\n\r\n");
	for (size_t i = 0; i < in->nfails; i++) {
		const struct smtp_rcpt_fail *f = &in->fails[i];

		buf_addf(out, "%s delivery failure to:\r\n\r\n\t",
		    f->code >= 500 ? "Permanent" : "Transient");
		add_line(out, f->rcpt);
		buf_addf(out, "\r\n\r\nError:\r\n\r\n\t%d %s ", f->code,
		    f->ecode != NULL ? f->ecode : "");
		add_line(out, f->text != NULL ? f->text : "");
		buf_adds(out, "\r\n\r\n");
	}
}

int
smtp_dsn_compose(const struct smtp_dsn_in *in, struct buf *out)
{
	struct queue_dsn d = { 0 };
	struct queue_dsn_rcpt *r = xcalloc(in->nfails > 0 ? in->nfails : 1,
	    sizeof(*r));
	struct buf *replies = xcalloc(in->nfails > 0 ? in->nfails : 1,
	    sizeof(*replies));
	struct buf text, from, rfm;
	int rc;

	buf_init(&text, 64 * 1024);
	buf_init(&from, 1024);
	buf_init(&rfm, 1024);
	human_text(in, &text);
	buf_addf(&from, "postmaster@%s", in->from_domain);
	buf_addf(&rfm, "dns;%s ([%s])", in->ehlo, in->remote_ip);
	for (size_t i = 0; i < in->nfails; i++) {
		const struct smtp_rcpt_fail *f = &in->fails[i];

		buf_init(&replies[i], 2048);
		buf_addf(&replies[i], "%d %s %s", f->code,
		    f->ecode != NULL ? f->ecode : "",
		    f->text != NULL ? f->text : "");
		r[i].recipient = f->rcpt;
		r[i].status = f->ecode != NULL ? f->ecode
		    : f->code >= 500		  ? "5.0.0"
						  : "4.0.0";
		r[i].error = "";
		r[i].reply = replies[i].data;
		r[i].remote_host = "";
		r[i].remote_ip = "";
		r[i].last_attempt_ns = in->now_ns;
	}
	d.hostname = in->hostname;
	d.to = in->to;
	d.message_id = in->message_id;
	d.boundary = in->boundary;
	d.msgid_out = in->msgid_out;
	d.now_ns = in->now_ns;
	d.arrival_ns = in->now_ns;
	d.future_release_request = "";
	d.rcpts = r;
	d.nrcpts = in->nfails;
	d.orig_header = in->orig_header;
	d.utf8 = in->utf8;
	d.from = from.data;
	d.subject = "mail delivery failure";
	d.received_from_mta = rfm.data;
	d.text = text.data;
	rc = buf_failed(&text) ? -1 : queue_dsn_compose(&d, out);
	for (size_t i = 0; i < in->nfails; i++)
		buf_release(&replies[i]);
	free(replies);
	free(r);
	buf_release(&text);
	buf_release(&from);
	buf_release(&rfm);
	return rc;
}

/* 16 random bytes as hex. */
static void
random_hex(struct buf *out)
{
	unsigned char r[16];

	if (gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r)) != 0)
		memset(r, 0, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		buf_addf(out, "%02x", r[i]);
}

static bool
has_8bit(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] >= 0x80)
			return true;
	return false;
}

/* RFC 6376: sign msg for the postmaster of the nearest hosted domain at
 * or above dom; the signature fields are put in front of msg. Errors are
 * logged and the DSN goes out unsigned. */
static void
sign(struct smtp_sess *s, const struct config *cfg, const char *dom,
    struct buf *msg)
{
	struct buf sigs, signed_msg;
	const char *d = dom, *why = "message too large";

	while (d != NULL && config_domain_find(cfg, d) == NULL) {
		d = strchr(d, '.');
		if (d != NULL)
			d++;
	}
	if (d == NULL || d[0] == '\0')
		return;
	buf_init(&sigs, SMTP_PREFIX_MAX);
	buf_init(&signed_msg, DSN_MAX + SMTP_PREFIX_MAX);
	if (smtp_auth_sign(cfg, "postmaster", d, span_of_buf(msg), &sigs,
		&why) == -1 ||
	    buf_failed(&sigs)) {
		log_error(&s->log, "dkim signing dsn failed, sending unsigned",
		    LF_ERR(why), LF_STR("domain", d));
	} else if (sigs.len > 0) {
		buf_add(&signed_msg, sigs.data, sigs.len);
		buf_add(&signed_msg, msg->data, msg->len);
		if (!buf_failed(&signed_msg)) {
			buf_reset(msg);
			buf_add(msg, signed_msg.data, signed_msg.len);
		}
	}
	buf_release(&sigs);
	buf_release(&signed_msg);
}

/* Write msg to a new file in <datadir>/tmp; its path into path. */
static int
write_tmp(struct smtp_sess *s, const struct buf *msg, struct buf *path)
{
	int fd;

	buf_addf(path, "%s/tmp/smtp-dsn-XXXXXX", s->srv->datadir);
	fd = mkostemp(path->data, O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (io_write_all(fd, msg->data, msg->len) == -1) {
		close(fd);
		unlink(path->data);
		return -1;
	}
	if (close(fd) == -1) {
		unlink(path->data);
		return -1;
	}
	return 0;
}

void
smtp_dsn_queue(struct smtp_sess *s, const struct config *cfg,
    struct span header, const struct smtp_rcpt_fail *fails, size_t n)
{
	struct smtp_dsn_in in = { 0 };
	struct queue_msg m = { 0 };
	struct buf to, msgid, omsgid, msg, msg8, path, err, tmp;
	struct queue *q;
	const char *at, *fdom;
	struct span v;
	bool have_file = false;

	buf_init(&to, 1024);
	buf_init(&msgid, 1024);
	buf_init(&omsgid, 4096);
	buf_init(&msg, DSN_MAX);
	buf_init(&msg8, DSN_MAX);
	buf_init(&path, 4096);
	buf_init(&err, 4096);
	buf_init(&tmp, 4096);
	smtp_addr_format(&s->mail.from, &to);
	/* spec/smtp.md 12.4: from the first failed recipient's domain. */
	at = strrchr(fails[0].rcpt, '@');
	fdom = at != NULL && at[1] != '\0' ? at + 1 : s->srv->hostname;
	buf_addc(&msgid, '<');
	random_hex(&msgid);
	buf_addf(&msgid, "@%s>", s->srv->hostname);
	if (message_header_find(header, "Message-ID", &v) == 0) {
		message_unfold(v, &tmp);
		v = span_trim(span_of_buf(&tmp));
		buf_add(&omsgid, v.p, v.len);
	}
	in.hostname = s->srv->hostname;
	in.from_domain = fdom;
	in.to = to.data;
	in.ehlo = s->hello != NULL ? s->hello : "";
	in.remote_ip = s->remote_ip;
	in.message_id = buf_failed(&omsgid) ? "" : omsgid.data;
	in.msgid_out = msgid.data;
	in.now_ns = time_wall_ns();
	in.orig_header = header;
	in.fails = fails;
	in.nfails = n;
	if (smtp_dsn_compose(&in, &msg) == -1) {
		log_error(&s->log, "composing dsn failed", LF_ERR("too large"));
		goto out;
	}
	sign(s, cfg, fdom, &msg);
	if (s->mail.smtputf8) {
		/* spec/smtp.md 12.4: the UTF-8 variant, kept beside. */
		in.utf8 = true;
		if (smtp_dsn_compose(&in, &msg8) == 0)
			sign(s, cfg, fdom, &msg8);
		else
			buf_reset(&msg8);
	}
	if (write_tmp(s, &msg, &path) == -1) {
		log_error(&s->log, "writing dsn file", LF_ERRNO(errno));
		goto out;
	}
	have_file = true;
	m.sender_account = xstrdup(cfg->st->postmaster.account != NULL
		? cfg->st->postmaster.account
		: "");
	m.sender_localpart = xstrdup("");
	m.sender_domain = xstrdup("");
	m.recipient_localpart = xstrdup(s->mail.from.localpart);
	m.recipient_domain = xstrdup(s->mail.from.domain);
	m.has_8bit = has_8bit(&msg);
	m.smtputf8 = s->mail.from.utf8;
	m.size = (int64_t)msg.len;
	m.message_id = xstrdup(msgid.data);
	m.subject = xstrdup("mail delivery failure");
	if (msg8.len > 0)
		m.dsn_utf8 = xstrndup(msg8.data, msg8.len);
	m.requiretls = s->mail.requiretls ? QUEUE_REQUIRETLS_YES
					  : QUEUE_REQUIRETLS_UNSET;
	q = smtp_server_queue(s->srv, &err);
	if (q == NULL || queue_add(q, path.data, &m, 1, &err) == -1) {
		log_error(&s->log, "queueing dsn failed", LF_ERR(err.data));
		goto out;
	}
	log_info(&s->log, "queued dsn for failed recipients",
	    LF_STR("to", to.data), LF_I64("queueid", m.id),
	    LF_U64("failed", n), LF_STR("msgid", msgid.data));
out:
	if (have_file)
		unlink(path.data);
	queue_msg_release(&m);
	buf_release(&to);
	buf_release(&msgid);
	buf_release(&omsgid);
	buf_release(&msg);
	buf_release(&msg8);
	buf_release(&path);
	buf_release(&err);
	buf_release(&tmp);
}
