/*
 * test_queue_dsn.c: DSN composition (queue_dsn.c, spec/queue.md 8, RFC
 * 3464, RFC 6522): the message is parsed back with our MIME parser and
 * each part and field is checked: headers, multipart/report with three
 * parts, human text with the full SMTP reply, per-message and
 * per-recipient delivery-status fields, delayed vs failed, the original
 * header, and hostile reply text that must not inject fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/span.h"
#include "message/message.h"
#include "queue/queue.h"
#include "lib/banned.h"

#define T0 1700000000LL /* 2023-11-14T22:13:20Z */
#define NS 1000000000LL

static const char orig_header[] =
    "From: <mjl@example.org>\r\nTo: <bob@example.com>\r\n"
    "Subject: hello\r\nMessage-Id: <orig@example.org>\r\n\r\n";

/* The body of part i of root (a span into msg). */
static struct span
body_of(const struct buf *msg, const struct message_part *p)
{
	return span_of(msg->data + p->body_off, p->end_off - p->body_off);
}

static struct span
header_of(const struct buf *msg, const struct message_part *p)
{
	return span_of(msg->data + p->header_off, p->body_off - p->header_off);
}

static bool
has(struct span s, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= s.len; i++)
		if (memcmp(s.p + i, needle, n) == 0)
			return true;
	return false;
}

static void
want(struct span s, const char *needle, const char *what)
{
	if (!has(s, needle))
		fail_msg("%s: missing \"%s\" in:\n%.*s", what, needle,
		    (int)s.len, s.p);
}

static void
compose(const struct queue_dsn *d, struct buf *out, struct message_part **root)
{
	const char *why = NULL;

	assert_int_equal(queue_dsn_compose(d, out), 0);
	assert_int_equal(message_parse(out->data, out->len, root, &why), 0);
	/* Every line ends in CRLF and stays below 998 bytes (RFC 5322). */
	for (size_t i = 0, col = 0; i < out->len; i++, col++) {
		if (out->data[i] == '\n') {
			if (i == 0 || out->data[i - 1] != '\r')
				fail_msg("bare LF at %zu", i);
			col = 0;
		}
		if (out->data[i] == '\r' &&
		    (i + 1 >= out->len || out->data[i + 1] != '\n'))
			fail_msg("bare CR at %zu", i);
		if (col > 998)
			fail_msg("line too long at %zu", i);
	}
}

static void
test_dsn_failed(void **state)
{
	struct queue_dsn_rcpt r = {
		.recipient = "bob@example.com",
		.status = "5.1.1",
		.error = "rcpt to: 550 5.1.1 no such user",
		.reply = "550-5.1.1 no such user\n550 5.1.1 see "
			 "https://example.com/help\n",
		.remote_host = "mx.example.com",
		.remote_ip = "127.0.0.9",
		.last_attempt_ns = (T0 + 60) * NS,
	};
	struct queue_dsn d = {
		.hostname = "mail.example.org",
		.to = "mjl@example.org",
		.message_id = "<orig@example.org>",
		.boundary = "BOUNDARY",
		.msgid_out = "<dsn1@mail.example.org>",
		.now_ns = (T0 + 120) * NS,
		.arrival_ns = T0 * NS,
		.future_release_request = "for;3600",
		.rcpts = &r,
		.nrcpts = 1,
		.orig_header = span_of(orig_header, sizeof(orig_header) - 1),
	};
	struct buf out;
	struct message_part *root = NULL;
	struct span h, b;

	buf_init(&out, 1 << 20);
	compose(&d, &out, &root);
	h = header_of(&out, root);
	want(h, "From: <postmaster@mail.example.org>\r\n", "header");
	want(h, "To: <mjl@example.org>\r\n", "header");
	want(h, "Subject: mail delivery failed\r\n", "header");
	want(h, "Message-Id: <dsn1@mail.example.org>\r\n", "header");
	want(h, "References: <orig@example.org>\r\n", "header");
	want(h, "Date: Tue, 14 Nov 2023 22:15:20 +0000\r\n", "header");
	want(h, "MIME-Version: 1.0\r\n", "header");
	assert_string_equal(root->type, "multipart");
	assert_string_equal(root->subtype, "report");
	assert_string_equal(message_param_get(root->params, root->nparams,
				"report-type"),
	    "delivery-status");
	assert_string_equal(message_param_get(root->params, root->nparams,
				"boundary"),
	    "BOUNDARY");
	assert_int_equal(root->nparts, 3);

	/* 1: human text naming the recipient, finality, error, full reply */
	assert_string_equal(root->parts[0].type, "text");
	assert_string_equal(root->parts[0].subtype, "plain");
	b = body_of(&out, &root->parts[0]);
	want(b, "bob@example.com", "text");
	want(b, "No further deliveries will be attempted", "text");
	want(b, "rcpt to: 550 5.1.1 no such user", "text");
	want(b, "550-5.1.1 no such user\r\n", "text");
	want(b, "550 5.1.1 see https://example.com/help\r\n", "text");

	/* 2: RFC 3464 fields */
	assert_string_equal(root->parts[1].type, "message");
	assert_string_equal(root->parts[1].subtype, "delivery-status");
	b = body_of(&out, &root->parts[1]);
	want(b, "Reporting-MTA: dns; mail.example.org\r\n", "status");
	want(b, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n", "status");
	want(b, "Future-Release-Request: for;3600\r\n", "status");
	want(b, "\r\n\r\nFinal-Recipient: rfc822;bob@example.com\r\n",
	    "status (blank line before recipient fields)");
	want(b, "Action: failed\r\n", "status");
	want(b, "Status: 5.1.1 (rcpt to: 550 5.1.1 no such user)\r\n",
	    "status");
	want(b, "Remote-MTA: dns;mx.example.com ([127.0.0.9])\r\n", "status");
	want(b, "Diagnostic-Code: smtp; 550 5.1.1 no such user 5.1.1 see "
		"https://example.com/help\r\n",
	    "status");
	want(b, "Last-Attempt-Date: Tue, 14 Nov 2023 22:14:20 +0000\r\n",
	    "status");
	if (has(b, "Will-Retry-Until"))
		fail_msg("Will-Retry-Until in a failed DSN");

	/* 3: original header only */
	assert_string_equal(root->parts[2].type, "text");
	assert_string_equal(root->parts[2].subtype, "rfc822-headers");
	b = body_of(&out, &root->parts[2]);
	want(b, "Subject: hello\r\n", "headers");
	want(b, "Message-Id: <orig@example.org>", "headers");
	message_part_free(root);
	buf_release(&out);
	(void)state;
}

static void
test_dsn_delayed(void **state)
{
	struct queue_dsn_rcpt r = {
		.recipient = "bob@example.com",
		.status = "4.0.0",
		.error = "dial tcp: connection refused",
		.reply = "",
		.remote_host = "",
		.remote_ip = "",
		.last_attempt_ns = T0 * NS,
		.will_retry_until_ns = (T0 + 28 * 3600) * NS,
	};
	struct queue_dsn d = {
		.delayed = true,
		.hostname = "mail.example.org",
		.to = "mjl@example.org",
		.message_id = "",
		.now_ns = T0 * NS,
		.arrival_ns = T0 * NS,
		.rcpts = &r,
		.nrcpts = 1,
		.orig_header = span_of_cstr("Subject: x\n\n"),
	};
	struct buf out, out2;
	struct message_part *root = NULL, *root2 = NULL;
	struct span h, b;

	buf_init(&out, 1 << 20);
	buf_init(&out2, 1 << 20);
	compose(&d, &out, &root);
	h = header_of(&out, root);
	want(h, "Subject: mail delivery delayed\r\n", "header");
	if (has(h, "References:"))
		fail_msg("References without an original Message-ID");
	want(h, "@mail.example.org>\r\n", "random Message-Id");
	assert_int_equal(root->nparts, 3);
	b = body_of(&out, &root->parts[0]);
	want(b, "attempted again", "text");
	if (has(b, "Full SMTP response"))
		fail_msg("reply section without a reply");
	b = body_of(&out, &root->parts[1]);
	want(b, "Action: delayed\r\n", "status");
	want(b, "Status: 4.0.0 (dial tcp: connection refused)\r\n", "status");
	want(b, "Will-Retry-Until: Thu, 16 Nov 2023 02:13:20 +0000\r\n",
	    "status");
	if (has(b, "Remote-MTA") || has(b, "Diagnostic-Code") ||
	    has(b, "Future-Release-Request"))
		fail_msg("fields without data:\n%.*s", (int)b.len, b.p);
	/* bare-LF original header comes out with CRLF */
	b = body_of(&out, &root->parts[2]);
	want(b, "Subject: x\r\n", "headers");
	/* Random boundary and Message-Id differ between DSNs. */
	compose(&d, &out2, &root2);
	assert_string_not_equal(message_param_get(root->params, root->nparams,
				    "boundary"),
	    message_param_get(root2->params, root2->nparams, "boundary"));
	message_part_free(root);
	message_part_free(root2);
	buf_release(&out);
	buf_release(&out2);
	(void)state;
}

/* Remote text is untrusted: CR, LF and other controls cannot start a new
 * header field or part, and a huge reply is cut. */
static void
test_dsn_hostile(void **state)
{
	struct buf big;
	struct queue_dsn_rcpt r = {
		.recipient = "bob@example.com",
		.status = "5.0.0",
		.error = "x\r\nX-Injected: 1",
		.remote_host = "mx\r\nX-Injected: 2",
		.remote_ip = "",
		.last_attempt_ns = T0 * NS,
	};
	struct queue_dsn d = {
		.hostname = "mail.example.org",
		.to = "mjl@example.org",
		.message_id = "<a@b>\r\nX-Injected: 3",
		.boundary = "B",
		.msgid_out = "<m@x>",
		.now_ns = T0 * NS,
		.arrival_ns = T0 * NS,
		.rcpts = &r,
		.nrcpts = 1,
		.orig_header = span_of_cstr("Subject: x\r\n\r\n"),
	};
	struct buf out;
	struct message_part *root = NULL;

	buf_init(&big, 1 << 20);
	buf_adds(&big, "550-");
	for (int i = 0; i < 5000; i++)
		buf_addc(&big, 'a');
	buf_adds(&big, "\n550 \x01\x7f\r--B\n");
	r.reply = big.data;
	buf_init(&out, 1 << 20);
	compose(&d, &out, &root);
	assert_int_equal(root->nparts, 3);
	if (strstr(out.data, "\r\nX-Injected") != NULL)
		fail_msg("injected field:\n%s", out.data);
	if (strstr(out.data, "\r\n--B\r\n\r\n") != NULL)
		fail_msg("injected boundary");
	message_part_free(root);
	buf_release(&out);
	buf_release(&big);
	(void)state;
}

/* Several recipients: one recipient block each. */
static void
test_dsn_multi(void **state)
{
	struct queue_dsn_rcpt r[2] = {
		{ .recipient = "a@example.com", .status = "5.1.1", .error = "e1",
		    .reply = "550 5.1.1 a\n", .remote_host = "mx",
		    .remote_ip = "127.0.0.8", .last_attempt_ns = T0 * NS },
		{ .recipient = "b@example.com", .status = "5.2.2", .error = "e2",
		    .reply = "552 5.2.2 b\n", .remote_host = "mx",
		    .remote_ip = "127.0.0.8", .last_attempt_ns = T0 * NS },
	};
	struct queue_dsn d = {
		.hostname = "h",
		.to = "s@h",
		.boundary = "B",
		.msgid_out = "<m@h>",
		.now_ns = T0 * NS,
		.arrival_ns = T0 * NS,
		.rcpts = r,
		.nrcpts = 2,
		.orig_header = span_of_cstr("Subject: x\r\n\r\n"),
	};
	struct buf out;
	struct message_part *root = NULL;
	struct span b;

	buf_init(&out, 1 << 20);
	compose(&d, &out, &root);
	b = body_of(&out, &root->parts[1]);
	want(b, "Final-Recipient: rfc822;a@example.com\r\nAction: failed\r\n"
		"Status: 5.1.1 (e1)\r\n",
	    "first");
	want(b, "\r\n\r\nFinal-Recipient: rfc822;b@example.com\r\n", "second");
	want(b, "Diagnostic-Code: smtp; 552 5.2.2 b\r\n", "second");
	message_part_free(root);
	buf_release(&out);
	(void)state;
}

/* spec/queue.md 8: an ASCII DSN is 7-bit throughout (us-ascii text,
 * 8-bit details base64 or replaced); the RFC 6533 variant for SMTPUTF8
 * originals is UTF-8 with the global types. */
static void
test_dsn_utf8(void **state)
{
	static const struct {
		bool utf8;
		const char *recipient, *reply, *hdr;
		const char *text_type, *text_cte, *status_type, *hdr_type;
		const char *hdr_cte, *final_rcpt, *diag;
	} cases[] = {
		{ false, "bob@example.com", "550 5.1.1 no\n",
		    "Subject: x\r\n\r\n", "us-ascii", "7bit",
		    "delivery-status", "rfc822-headers", "7bit",
		    "Final-Recipient: rfc822;bob@example.com\r\n",
		    "Diagnostic-Code: smtp; 550 5.1.1 no\r\n" },
		/* 8-bit reply text in an ASCII DSN */
		{ false, "bob@example.com", "550 5.1.1 n\xc3\xa9" "e\n",
		    "Subject: x\r\n\r\n", "utf-8", "base64",
		    "delivery-status", "rfc822-headers", "7bit",
		    "Final-Recipient: rfc822;bob@example.com\r\n",
		    "Diagnostic-Code: smtp; 550 5.1.1 n??e\r\n" },
		/* UTF-8 original header and recipient, ASCII DSN */
		{ false, "b\xc3\xb6" "b@example.com", "",
		    "Subject: gr\xc3\xbc\xc3\x9f" "\r\n\r\n", "utf-8", "base64",
		    "delivery-status", "rfc822-headers", "base64",
		    "Final-Recipient: utf-8;b\\x{C3}\\x{B6}b@example.com\r\n",
		    NULL },
		/* RFC 6533 variant */
		{ true, "b\xc3\xb6" "b@example.com", "550 5.1.1 n\xc3\xa9" "e\n",
		    "Subject: gr\xc3\xbc\xc3\x9f" "\r\n\r\n", "utf-8", "8bit",
		    "global-delivery-status", "global-headers", "8bit",
		    "Final-Recipient: utf-8;b\xc3\xb6" "b@example.com\r\n",
		    "Diagnostic-Code: smtp; 550 5.1.1 n\xc3\xa9" "e\r\n" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct queue_dsn_rcpt r = {
			.recipient = cases[i].recipient, .status = "5.1.1",
			.error = "failed", .reply = cases[i].reply,
			.remote_host = "mx", .remote_ip = "127.0.0.8",
			.last_attempt_ns = T0 * NS,
		};
		struct queue_dsn d = {
			.hostname = "h", .to = "s@h", .boundary = "B",
			.msgid_out = "<m@h>", .now_ns = T0 * NS,
			.arrival_ns = T0 * NS, .rcpts = &r, .nrcpts = 1,
			.orig_header = span_of_cstr(cases[i].hdr),
			.utf8 = cases[i].utf8,
		};
		struct buf out;
		struct message_part *root = NULL;
		const struct message_part *p;
		char cte[64];
		struct span b;

		buf_init(&out, 1 << 20);
		compose(&d, &out, &root);
		if (root->nparts != 3)
			fail_msg("case %zu: %zu parts", i, root->nparts);
		p = &root->parts[0];
		if (strcmp(p->subtype, "plain") != 0 ||
		    strcmp(message_param_get(p->params, p->nparams, "charset"),
			cases[i].text_type) != 0)
			fail_msg("case %zu: text part %s", i, p->subtype);
		snprintf(cte, sizeof(cte), "Content-Transfer-Encoding: %s\r\n",
		    cases[i].text_cte);
		want(header_of(&out, p), cte, "text cte");
		p = &root->parts[1];
		if (strcmp(p->subtype, cases[i].status_type) != 0)
			fail_msg("case %zu: status part %s", i, p->subtype);
		b = body_of(&out, p);
		want(b, cases[i].final_rcpt, "final recipient");
		if (cases[i].diag != NULL)
			want(b, cases[i].diag, "diagnostic");
		if (!cases[i].utf8)
			for (size_t k = 0; k < out.len; k++)
				if ((unsigned char)out.data[k] >= 0x80)
					fail_msg("case %zu: 8-bit byte at %zu", i,
					    k);
		p = &root->parts[2];
		if (strcmp(p->subtype, cases[i].hdr_type) != 0)
			fail_msg("case %zu: header part %s", i, p->subtype);
		snprintf(cte, sizeof(cte), "Content-Transfer-Encoding: %s\r\n",
		    cases[i].hdr_cte);
		want(header_of(&out, p), cte, "header cte");
		message_part_free(root);
		buf_release(&out);
	}
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn_failed),
		cmocka_unit_test(test_dsn_delayed),
		cmocka_unit_test(test_dsn_hostile),
		cmocka_unit_test(test_dsn_multi),
		cmocka_unit_test(test_dsn_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
