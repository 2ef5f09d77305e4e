/*
 * smtp_reply.h: SMTP reply formatting (RFC 5321 4.2, RFC 3463 enhanced
 * status codes, RFC 2034 ENHANCEDSTATUSCODES) and the EHLO extension
 * list (spec/smtp.md 3). Pure: any thread.
 */
#ifndef SMTP_SMTP_REPLY_H
#define SMTP_SMTP_REPLY_H

#include <stdbool.h>
#include <stdint.h>

struct buf;

#define SMTP_REPLY_LINE_MAX 510 /* RFC 5321 4.5.3.1.5: 512 with CRLF */
#define SMTP_REPLY_WRAP_MIN 400 /* spec/smtp.md 2: wrap at a space after */

/* Append a reply: each "\n"-separated piece of text becomes a line
 * "code-ecode text" (the last "code ecode text"); a line longer than
 * SMTP_REPLY_LINE_MAX is wrapped at a space between byte
 * SMTP_REPLY_WRAP_MIN and SMTP_REPLY_LINE_MAX. ecode may be NULL. A
 * non-NULL id is appended as " (id)" to the last line (spec/smtp.md 2:
 * error replies carry the received-id). */
void smtp_reply_format(struct buf *out, int code, const char *ecode,
    const char *text, const char *id);

struct smtp_ehlo_opts {
	const char *hostname;   /* ASCII form */
	uint64_t max_size;      /* SIZE */
	bool starttls;          /* offer STARTTLS */
	bool requiretls;        /* offer REQUIRETLS (when STARTTLS is not) */
	bool submission;        /* AUTH and FUTURERELEASE lines */
	bool auth_mechs;        /* list mechanisms (else "AUTH " empty) */
	int64_t now_ns;         /* wall clock for FUTURERELEASE */
};

/* The multi-line 250 reply to EHLO (and HELO), spec/smtp.md 3. */
void smtp_ehlo_format(struct buf *out, const struct smtp_ehlo_opts *o);

#endif
