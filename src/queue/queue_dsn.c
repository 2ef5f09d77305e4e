/*
 * queue_dsn.c: compose delivery status notifications for queued messages
 * (spec/queue.md 8; RFC 3464 delivery-status fields, RFC 6522
 * multipart/report, RFC 6533 UTF-8 DSNs, RFC 5322 header fields). The
 * input is our own queue
 * record plus the remote server's reply text, which is untrusted: it is
 * quoted line by line, control characters replaced, never interpreted.
 *
 * Pure but for the random boundary and Message-Id when the caller gives
 * none: any thread.
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/base64.h>

#include "lib/buf.h"
#include "lib/span.h"
#include "message/message.h"
#include "queue/queue.h"
#include "lib/banned.h"

#define DSN_LINE_MAX 900 /* RFC 5322 2.1.1: stay below 998 per line */

static void
random_token(struct buf *out)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[16];

	if (gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r)) != 0)
		memset(r, 0, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		buf_addc(out, alphabet[r[i] % (sizeof(alphabet) - 1)]);
}

/* Append s with control characters other than TAB replaced by spaces,
 * cut at DSN_LINE_MAX bytes. */
static void
add_clean(struct buf *out, const char *s, size_t n)
{
	if (n > DSN_LINE_MAX)
		n = DSN_LINE_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf_addc(out, c < 0x20 && c != '\t' ? ' ' : (char)c);
	}
}

static bool
is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* As add_clean(), and in a 7-bit part bytes >= 0x80 become '?'. */
static void
add_field(struct buf *out, const char *s, bool ascii)
{
	size_t start = out->len;

	add_clean(out, s, strlen(s));
	for (size_t i = start; ascii && i < out->len; i++)
		if ((unsigned char)out->data[i] >= 0x80)
			out->data[i] = '?';
}

/* RFC 6533 3: an address with non-ASCII bytes in a 7-bit
 * message/delivery-status: "utf-8;" with each such byte, control
 * character, '\\', '+' or '=' as \x{HEX}. */
static void
add_recipient(struct buf *out, const char *addr, bool utf8)
{
	size_t n = strlen(addr);

	if (utf8 || is_ascii(addr, n)) {
		buf_adds(out, utf8 ? "utf-8;" : "rfc822;");
		add_clean(out, addr, n);
		return;
	}
	buf_adds(out, "utf-8;");
	for (size_t i = 0; i < n && i < DSN_LINE_MAX; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c >= 0x80 || c < 0x21 || c == '\\' || c == '+' || c == '=')
			buf_addf(out, "\\x{%02X}", c);
		else
			buf_addc(out, (char)c);
	}
}

/* RFC 2045 6.8: base64 in lines of 76 characters. */
static void
add_base64(struct buf *out, const char *p, size_t n)
{
	while (n > 0) {
		size_t chunk = n > 57 ? 57 : n; /* 57 bytes: 76 characters */
		char enc[BASE64_ENCODE_RAW_LENGTH(57) + 1];

		base64_encode_raw(enc, chunk, (const uint8_t *)p);
		buf_add(out, enc, BASE64_ENCODE_RAW_LENGTH(chunk));
		buf_adds(out, "\r\n");
		p += chunk;
		n -= chunk;
	}
}

static void
add_date(struct buf *out, int64_t ns)
{
	message_date_format(ns / 1000000000, 0, out);
}

/* The reply's lines, each indented by a tab (human part). */
static void
add_reply_quoted(struct buf *out, const char *reply)
{
	const char *p = reply;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		buf_addc(out, '\t');
		add_clean(out, p, n);
		buf_adds(out, "\r\n");
		p += n;
		if (*p == '\n')
			p++;
	}
}

/* RFC 3464 2.3.6 with spec/queue.md 8: "smtp; <code> <text of every
 * line joined with spaces>". */
static void
add_diagnostic(struct buf *out, const char *reply)
{
	const char *p = reply;
	bool first = true;
	size_t start = out->len;

	buf_adds(out, "Diagnostic-Code: smtp; ");
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (first) {
			add_clean(out, p, n >= 3 ? 3 : n);
			if (n > 4) {
				buf_addc(out, ' ');
				add_clean(out, p + 4, n - 4);
			}
			first = false;
		} else if (n > 4) {
			buf_addc(out, ' ');
			add_clean(out, p + 4, n - 4);
		}
		p += n;
		if (*p == '\n')
			p++;
		if (out->len - start > DSN_LINE_MAX)
			break;
	}
	buf_adds(out, "\r\n");
}

/* Original header with CRLF line ends, without the final empty line. */
static void
add_orig_header(struct buf *out, struct span h)
{
	size_t n = h.len;

	while (n > 0 && (h.p[n - 1] == '\n' || h.p[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++) {
		if (h.p[i] == '\n' && (i == 0 || h.p[i - 1] != '\r'))
			buf_addc(out, '\r');
		buf_addc(out, h.p[i]);
	}
	buf_adds(out, "\r\n");
}

/* spec/queue.md 8 part 1: the text for people. */
static void
human(const struct queue_dsn *d, struct buf *txt)
{
	if (d->delayed)
		buf_adds(txt, "Delivery has been delayed of your email to:\r\n\r\n");
	else
		buf_adds(txt, "Delivery has failed permanently for your email "
			      "to:\r\n\r\n");
	for (size_t i = 0; i < d->nrcpts; i++) {
		buf_addc(txt, '\t');
		add_clean(txt, d->rcpts[i].recipient,
		    strlen(d->rcpts[i].recipient));
		buf_adds(txt, "\r\n");
	}
	if (d->delayed)
		buf_adds(txt, "\r\nDelivery will be attempted again later.\r\n");
	else
		buf_adds(txt, "\r\nNo further deliveries will be attempted.\r\n");
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];

		buf_adds(txt, "\r\nError during the last delivery attempt:\r\n\r\n\t");
		add_clean(txt, r->error, strlen(r->error));
		buf_adds(txt, "\r\n");
		if (r->reply != NULL && r->reply[0] != '\0') {
			buf_adds(txt, "\r\nFull SMTP response:\r\n\r\n");
			add_reply_quoted(txt, r->reply);
		}
	}
}

int
queue_dsn_compose(const struct queue_dsn *d, struct buf *out)
{
	struct buf bnd, mid, txt;
	bool ascii = !d->utf8;
	int rc;

	buf_init(&txt, out->max);
	buf_init(&bnd, 128);
	buf_init(&mid, 512);
	if (d->boundary != NULL)
		buf_adds(&bnd, d->boundary);
	else {
		buf_adds(&bnd, "dsn-");
		random_token(&bnd);
	}
	if (d->msgid_out != NULL)
		buf_adds(&mid, d->msgid_out);
	else {
		buf_addc(&mid, '<');
		random_token(&mid);
		buf_addf(&mid, "@%s>", d->hostname);
	}
	if (d->from != NULL)
		buf_addf(out, "From: <%s>\r\n", d->from);
	else
		buf_addf(out, "From: <postmaster@%s>\r\n", d->hostname);
	buf_addf(out, "To: <%s>\r\n", d->to);
	buf_addf(out, "Subject: %s\r\n", d->subject != NULL ? d->subject
	    : d->delayed ? "mail delivery delayed"
			 : "mail delivery failed");
	buf_addf(out, "Message-Id: %s\r\n", mid.data);
	if (d->message_id != NULL && d->message_id[0] != '\0') {
		/* Threads with the original (RFC 5322 3.6.4). */
		buf_adds(out, "References: ");
		add_clean(out, d->message_id, strlen(d->message_id));
		buf_adds(out, "\r\nIn-Reply-To: ");
		add_clean(out, d->message_id, strlen(d->message_id));
		buf_adds(out, "\r\n");
	}
	buf_adds(out, "Date: ");
	add_date(out, d->now_ns);
	buf_adds(out, "\r\nMIME-Version: 1.0\r\n");
	buf_addf(out, "Content-Type: multipart/report;"
		      " report-type=\"delivery-status\";\r\n\tboundary=\"%s\"\r\n",
	    bnd.data);
	buf_adds(out, "\r\nThis is a MIME-formatted message.\r\n");

	/* Part 1: human text, composed first to choose its encoding. */
	if (d->text != NULL)
		buf_adds(&txt, d->text);
	else
		human(d, &txt);
	buf_addf(out, "\r\n--%s\r\n", bnd.data);
	if (d->utf8) {
		buf_adds(out, "Content-Type: text/plain; charset=utf-8\r\n"
			      "Content-Transfer-Encoding: 8bit\r\n\r\n");
		buf_add(out, txt.data, txt.len);
	} else if (is_ascii(txt.data, txt.len)) {
		buf_adds(out, "Content-Type: text/plain; charset=us-ascii\r\n"
			      "Content-Transfer-Encoding: 7bit\r\n\r\n");
		buf_add(out, txt.data, txt.len);
	} else {
		/* A remote reply with 8-bit text in an ASCII DSN. */
		buf_adds(out, "Content-Type: text/plain; charset=utf-8\r\n"
			      "Content-Transfer-Encoding: base64\r\n\r\n");
		add_base64(out, txt.data, txt.len);
	}

	/* Part 2: RFC 3464 2.1 per-message and per-recipient fields. */
	buf_addf(out, "\r\n--%s\r\n", bnd.data);
	/* RFC 6533 6.2: message/global-delivery-status is 8-bit UTF-8. */
	buf_adds(out, d->utf8 ? "Content-Type: message/global-delivery-status"
				"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
			      : "Content-Type: message/delivery-status\r\n"
				"Content-Transfer-Encoding: 7bit\r\n\r\n");
	buf_addf(out, "Reporting-MTA: dns; %s\r\n", d->hostname);
	if (d->received_from_mta != NULL) {
		buf_adds(out, "Received-From-MTA: ");
		add_field(out, d->received_from_mta, ascii);
		buf_adds(out, "\r\n");
	}
	buf_adds(out, "Arrival-Date: ");
	add_date(out, d->arrival_ns);
	buf_adds(out, "\r\n");
	if (d->future_release_request != NULL &&
	    d->future_release_request[0] != '\0') {
		/* RFC 4865 */
		buf_adds(out, "Future-Release-Request: ");
		add_clean(out, d->future_release_request,
		    strlen(d->future_release_request));
		buf_adds(out, "\r\n");
	}
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];

		buf_adds(out, "\r\nFinal-Recipient: ");
		add_recipient(out, r->recipient, d->utf8);
		buf_addf(out, "\r\nAction: %s\r\n",
		    d->delayed ? "delayed" : "failed");
		buf_adds(out, "Status: ");
		add_field(out, r->status, ascii);
		if (r->error != NULL && r->error[0] != '\0') {
			buf_adds(out, " (");
			add_field(out, r->error, ascii);
			buf_addc(out, ')');
		}
		buf_adds(out, "\r\n");
		if (r->remote_host != NULL && r->remote_host[0] != '\0') {
			buf_adds(out, "Remote-MTA: dns;");
			add_field(out, r->remote_host, ascii);
			if (r->remote_ip != NULL && r->remote_ip[0] != '\0') {
				buf_adds(out, " ([");
				add_clean(out, r->remote_ip,
				    strlen(r->remote_ip));
				buf_adds(out, "])");
			}
			buf_adds(out, "\r\n");
		}
		if (r->reply != NULL && r->reply[0] != '\0') {
			size_t start = out->len;

			add_diagnostic(out, r->reply);
			for (size_t k = start; ascii && k < out->len; k++)
				if ((unsigned char)out->data[k] >= 0x80)
					out->data[k] = '?';
		}
		buf_adds(out, "Last-Attempt-Date: ");
		add_date(out, r->last_attempt_ns);
		buf_adds(out, "\r\n");
		if (d->delayed && r->will_retry_until_ns > 0) {
			buf_adds(out, "Will-Retry-Until: ");
			add_date(out, r->will_retry_until_ns);
			buf_adds(out, "\r\n");
		}
	}

	/* Part 3: the original header (RFC 6522 3: text/rfc822-headers). */
	buf_addf(out, "\r\n--%s\r\n", bnd.data);
	if (d->utf8) {
		/* RFC 6533 6.3 */
		buf_adds(out, "Content-Type: message/global-headers\r\n"
			      "Content-Transfer-Encoding: 8bit\r\n\r\n");
		add_orig_header(out, d->orig_header);
	} else if (is_ascii(d->orig_header.p, d->orig_header.len)) {
		buf_adds(out, "Content-Type: text/rfc822-headers\r\n"
			      "Content-Transfer-Encoding: 7bit\r\n\r\n");
		add_orig_header(out, d->orig_header);
	} else {
		/* spec/queue.md 8: a UTF-8 original in an ASCII DSN. */
		struct buf h;

		buf_init(&h, d->orig_header.len * 2 + 16);
		add_orig_header(&h, d->orig_header);
		buf_adds(out, "Content-Type: text/rfc822-headers; charset=utf-8"
			      "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
		add_base64(out, h.data, h.len);
		buf_release(&h);
	}
	buf_addf(out, "\r\n--%s--\r\n", bnd.data);
	rc = buf_failed(out) ? -1 : 0;
	if (buf_failed(&txt))
		rc = -1;
	buf_release(&txt);
	buf_release(&bnd);
	buf_release(&mid);
	return rc;
}
