/*
 * smtp_reply.c: SMTP reply lines (RFC 5321 4.2.1 multi-line replies,
 * RFC 3463 enhanced codes) and the EHLO extension list (RFC 5321 4.1.1.1,
 * spec/smtp.md 3). Pure: any thread, no I/O.
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/timeutil.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_reply.h"
#include "lib/banned.h"

static void
one_line(struct buf *out, int code, const char *ecode, const char *p,
    size_t n, bool last, const char *id)
{
	size_t prefix = 4 + (ecode != NULL ? strlen(ecode) + 1 : 0);

	/* spec/smtp.md 2: a line longer than 510 bytes (with the code) is
	 * wrapped at a space found between byte 400 and 510. */
	while (prefix + n > SMTP_REPLY_LINE_MAX) {
		size_t cut = 0;

		for (size_t i = SMTP_REPLY_LINE_MAX - prefix;
		     i > SMTP_REPLY_WRAP_MIN - prefix && i < n; i--)
			if (p[i] == ' ') {
				cut = i;
				break;
			}
		if (cut == 0)
			break;
		buf_addf(out, "%03d-", code);
		if (ecode != NULL)
			buf_addf(out, "%s ", ecode);
		buf_add(out, p, cut);
		buf_adds(out, "\r\n");
		p += cut + 1;
		n -= cut + 1;
	}
	buf_addf(out, "%03d%c", code, last ? ' ' : '-');
	if (ecode != NULL)
		buf_addf(out, "%s ", ecode);
	buf_add(out, p, n);
	if (last && id != NULL)
		buf_addf(out, " (%s)", id);
	buf_adds(out, "\r\n");
}

void
smtp_reply_format(struct buf *out, int code, const char *ecode,
    const char *text, const char *id)
{
	const char *p = text;

	for (;;) {
		const char *nl = strchr(p, '\n');

		if (nl == NULL) {
			one_line(out, code, ecode, p, strlen(p), true, id);
			return;
		}
		one_line(out, code, ecode, p, (size_t)(nl - p), false, NULL);
		p = nl + 1;
	}
}

void
smtp_ehlo_format(struct buf *out, const struct smtp_ehlo_opts *o)
{
	buf_addf(out, "250-%s\r\n", o->hostname);
	buf_adds(out, "250-PIPELINING\r\n");
	buf_addf(out, "250-SIZE %llu\r\n", (unsigned long long)o->max_size);
	if (o->starttls)
		buf_adds(out, "250-STARTTLS\r\n");
	else if (o->requiretls)
		buf_adds(out, "250-REQUIRETLS\r\n"); /* RFC 8689 */
	if (o->submission) {
		struct buf t;

		if (o->auth_mechs)
			buf_adds(out, "250-AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 "
				      "SCRAM-SHA-1-PLUS SCRAM-SHA-1 CRAM-MD5 "
				      "PLAIN LOGIN\r\n");
		else
			buf_adds(out, "250-AUTH \r\n");
		/* RFC 4865 3: max interval and max date-time, 60 days. */
		buf_init(&t, 64);
		time_format_rfc3339(&t,
		    o->now_ns + (int64_t)SMTP_HOLD_MAX_SEC * NS_PER_SEC);
		buf_addf(out, "250-FUTURERELEASE %d %s\r\n", SMTP_HOLD_MAX_SEC,
		    t.data);
		buf_release(&t);
	}
	buf_adds(out, "250-ENHANCEDSTATUSCODES\r\n");
	buf_adds(out, "250-8BITMIME\r\n");
	buf_addf(out, "250-LIMITS RCPTMAX=%d\r\n", SMTP_RCPT_MAX);
	buf_adds(out, "250 SMTPUTF8\r\n");
}
