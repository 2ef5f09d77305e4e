/*
 * test_imap_fetch.c: ENVELOPE, BODY and BODYSTRUCTURE of a nested
 * message, section-spec parsing (valid and hostile), section extraction
 * for every form on nested multiparts and message/rfc822 with partials,
 * BINARY decoding and BINARY.SIZE, PREVIEW.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "message/message.h"
#include "imap/imap_fetch.h"
#include "lib/banned.h"

static const char nested[] =
    "From: \"Joe Q.\" <joe@example.org>\r\n"
    "To: friends: a@b.example, d@e.example;, x@y.example\r\n"
    "Cc: \"=?utf-8?q?Andr=C3=A9?=\" <andre@example.org>, bare\r\n"
    "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    "Message-ID: <1@x>\r\n"
    "X-Long: one\r\n"
    " two\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "Content-Language: en, de\r\n"
    "\r\n"
    "caf=C3=A9 hello\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: attachment; filename=inner.eml\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "From: in@example.org\r\n"
    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "inner text\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PGI+Ym9sZDwvYj4gJmFtcDsgPGk+aXQ8L2k+\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: x-unknown\r\n"
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    "Content-Location: http://example.org/z\r\n"
    "\r\n"
    "zzz\r\n"
    "--outer--\r\n";

static const char single[] =
    "Subject: one\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "\r\n"
    "aGVsbG8gd29ybGQ=\r\n";

static struct message_part *
parse(const char *m)
{
	struct message_part *root = NULL;
	const char *why = NULL;

	if (message_parse(m, strlen(m), &root, &why) == -1)
		fail_msg("parse: %s", why);
	return root;
}

static void
test_envelope(void **state)
{
	struct message_part *root = parse(nested);
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	imap_fetch_envelope(&b, root->envelope, false);
	assert_string_equal(b.data,
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"=?utf-8?q?caf=C3=A9?=\" "
	    "((\"Joe Q.\" NIL \"joe\" \"example.org\")) "
	    "((\"Joe Q.\" NIL \"joe\" \"example.org\")) "
	    "((\"Joe Q.\" NIL \"joe\" \"example.org\")) "
	    "((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"b.example\")"
	    "(NIL NIL \"d\" \"e.example\")(NIL NIL NIL NIL)"
	    "(NIL NIL \"x\" \"y.example\")) "
	    "((\"=?utf-8?b?QW5kcsOp?=\" NIL \"andre\" \"example.org\")"
	    "(NIL NIL \"bare\" \"MISSING_DOMAIN\")) NIL NIL \"<1@x>\")");
	buf_reset(&b);
	/* With UTF-8 enabled the decoded name goes out as it is. */
	imap_fetch_envelope(&b, root->envelope, true);
	assert_non_null(strstr(b.data, "((\"Andr\xc3\xa9\" NIL \"andre\""));
	buf_reset(&b);
	imap_fetch_envelope(&b, NULL, false);
	assert_string_equal(b.data, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_release(&b);
	message_part_free(root);
	(void)state;
}

static void
test_bodystructure(void **state)
{
	struct message_part *root = parse(nested);
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	imap_fetch_bodystructure(&b, root, true);
	assert_string_equal(b.data,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"QUOTED-PRINTABLE\" 15 0 NIL NIL (\"en\" \"de\") NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 262 "
	    "(NIL \"inner\" ((NIL NIL \"in\" \"example.org\")) "
	    "((NIL NIL \"in\" \"example.org\")) "
	    "((NIL NIL \"in\" \"example.org\")) NIL NIL NIL NIL NIL) "
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "10 0 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" "
	    "\"us-ascii\") NIL NIL \"BASE64\" 36 0 NIL NIL NIL NIL) "
	    "\"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL) 13 NIL "
	    "(\"attachment\" (\"FILENAME\" \"inner.eml\")) NIL NIL)"
	    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"x-unknown\" 3 "
	    "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" NIL NIL \"http://example.org/z\") "
	    "\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)");
	buf_reset(&b);
	imap_fetch_bodystructure(&b, root, false);
	assert_string_equal(b.data,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"QUOTED-PRINTABLE\" 15 0)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 262 "
	    "(NIL \"inner\" ((NIL NIL \"in\" \"example.org\")) "
	    "((NIL NIL \"in\" \"example.org\")) "
	    "((NIL NIL \"in\" \"example.org\")) NIL NIL NIL NIL NIL) "
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "10 0)(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL "
	    "\"BASE64\" 36 0) \"ALTERNATIVE\") 13)"
	    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"x-unknown\" 3) "
	    "\"MIXED\")");
	buf_release(&b);
	message_part_free(root);
	root = parse(single);
	buf_init(&b, BUF_NOMAX);
	imap_fetch_bodystructure(&b, root, true);
	assert_string_equal(b.data,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL "
	    "\"BASE64\" 18 1 NIL NIL NIL NIL)");
	buf_release(&b);
	message_part_free(root);
	(void)state;
}

static const struct {
	const char *in;
	int rc;
	const char *name; /* imap_section_name("BODY", ..., true) */
} parse_cases[] = {
	{ "[]", 0, "BODY[]" },
	{ "[HEADER]", 0, "BODY[HEADER]" },
	{ "[header]", 0, "BODY[HEADER]" },
	{ "[TEXT]", 0, "BODY[TEXT]" },
	{ "[1]", 0, "BODY[1]" },
	{ "[1.2.3]", 0, "BODY[1.2.3]" },
	{ "[1.MIME]", 0, "BODY[1.MIME]" },
	{ "[2.HEADER]", 0, "BODY[2.HEADER]" },
	{ "[2.TEXT]", 0, "BODY[2.TEXT]" },
	{ "[HEADER.FIELDS (Subject From)]", 0,
	    "BODY[HEADER.FIELDS (Subject From)]" },
	{ "[HEADER.FIELDS.NOT (\"To\" {2}\r\nCc)]", 0,
	    "BODY[HEADER.FIELDS.NOT (To Cc)]" },
	{ "[2.HEADER.FIELDS (X)]<0.10>", 0, "BODY[2.HEADER.FIELDS (X)]<0>" },
	{ "[]<5.1>", 0, "BODY[]<5>" },
	{ "[1]<4294967295.4294967295>", 0, "BODY[1]<4294967295>" },
	{ "", -1, NULL },
	{ "[", -1, NULL },
	{ "[MIME]", -1, NULL },        /* MIME needs a part */
	{ "[0]", -1, NULL },
	{ "[1.0]", -1, NULL },
	{ "[1.]", -1, NULL },
	{ "[.1]", -1, NULL },
	{ "[1..2]", -1, NULL },
	{ "[4294967296]", -1, NULL },
	{ "[HEADER.FIELDS]", -1, NULL },
	{ "[HEADER.FIELDS ()]", -1, NULL },
	{ "[HEADER.FIELDS (a]", -1, NULL },
	{ "[HEADER.FIELDS (a:b)]", -1, NULL },
	{ "[HEADER.FIELDS ({5}\r\nab)]", -1, NULL },
	{ "[HEADER.FIELDS (\"a\rb\")]", -1, NULL },
	{ "[HEADER.FIELDS (\xc3\xa9)]", -1, NULL },
	{ "[TEXT", -1, NULL },
	{ "[TEXTX]", -1, NULL },
	{ "[]<1>", -1, NULL },
	{ "[]<1.0>", -1, NULL },
	{ "[]<1.2", -1, NULL },
	{ "[]<99999999999.1>", -1, NULL },
	{ "[]x", -1, NULL },
	{ "[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24."
	  "25.26.27.28.29.30.31.32.33.34.35.36.37.38.39.40.41.42.43.44.45.46."
	  "47.48.49.50.51.52.53.54.55.56.57.58.59.60.61.62.63.64.65]",
	    -1, NULL },
};

static void
test_section_parse(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++) {
		struct imap_section sec;
		const char *why = NULL;
		int rc = imap_section_parse(span_of_cstr(parse_cases[i].in),
		    &sec, &why);

		buf_reset(&b);
		if (rc == 0)
			imap_section_name(&b, "BODY", &sec, true);
		if (rc != parse_cases[i].rc ||
		    (rc == 0 && strcmp(b.data, parse_cases[i].name) != 0) ||
		    (rc == -1 && why == NULL))
			fail_msg("case %zu (%s): rc %d %s %s", i,
			    parse_cases[i].in, rc, b.data, why ? why : "");
		imap_section_release(&sec);
	}
	buf_release(&b);
	(void)state;
}

static const struct {
	const char *msg; /* NULL: the nested message */
	const char *spec;
	bool binary;
	int rc;
	const char *want; /* NULL: whole message */
} extract_cases[] = {
	{ NULL, "[]", false, 0, NULL },
	{ NULL, "[HEADER.FIELDS (subject FROM)]", false, 0,
	    "From: \"Joe Q.\" <joe@example.org>\r\n"
	    "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n" },
	{ NULL, "[HEADER.FIELDS (x-long)]", false, 0,
	    "X-Long: one\r\n two\r\n\r\n" },
	{ NULL, "[HEADER.FIELDS (nothere)]", false, 0, "\r\n" },
	{ NULL,
	    "[HEADER.FIELDS.NOT (From To Cc Subject Date Message-ID X-Long "
	    "MIME-Version)]",
	    false, 0,
	    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" },
	{ NULL, "[TEXT]<0.8>", false, 0, "preamble" },
	{ NULL, "[1]", false, 0, "caf=C3=A9 hello" },
	{ NULL, "[1]<0.4>", false, 0, "caf=" },
	{ NULL, "[1]<5.3>", false, 0, "3=A" },
	{ NULL, "[1]<10.100>", false, 0, "hello" },
	{ NULL, "[1]<15.1>", false, 0, "" },
	{ NULL, "[1]<100.5>", false, 0, "" },
	{ NULL, "[1.MIME]", false, 0,
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "Content-Language: en, de\r\n\r\n" },
	{ NULL, "[2.HEADER]", false, 0,
	    "Subject: inner\r\nFrom: in@example.org\r\n"
	    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n" },
	{ NULL, "[2.HEADER.FIELDS (Subject)]", false, 0,
	    "Subject: inner\r\n\r\n" },
	{ NULL, "[2.TEXT]<0.7>", false, 0, "--inner" },
	{ NULL, "[2.MIME]", false, 0,
	    "Content-Type: message/rfc822\r\n"
	    "Content-Disposition: attachment; filename=inner.eml\r\n\r\n" },
	{ NULL, "[2]<0.15>", false, 0, "Subject: inner\r" },
	{ NULL, "[2.1]", false, 0, "inner text" },
	{ NULL, "[2.2]", false, 0, "PGI+Ym9sZDwvYj4gJmFtcDsgPGk+aXQ8L2k+" },
	{ NULL, "[2.2.MIME]", false, 0,
	    "Content-Type: text/html\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n" },
	{ NULL, "[3]", false, 0, "zzz" },
	{ NULL, "[4]", false, -1, "" },
	{ NULL, "[2.3]", false, -1, "" },
	{ NULL, "[2.1.1]", false, -1, "" },
	{ NULL, "[1.HEADER]", false, -1, "" },
	{ NULL, "[1.TEXT]", false, -1, "" },
	{ NULL, "[1]", true, 0, "caf\xc3\xa9 hello" },
	{ NULL, "[1]<3.2>", true, 0, "\xc3\xa9" },
	{ NULL, "[2.2]", true, 0, "<b>bold</b> &amp; <i>it</i>" },
	{ NULL, "[2.1]", true, 0, "inner text" },
	{ NULL, "[3]", true, -1, "" },    /* UNKNOWN-CTE */
	{ NULL, "[2]", true, -1, "" },    /* not a leaf */
	{ NULL, "[2.HEADER]", true, -1, "" },
	{ NULL, "[]", true, 0, NULL },    /* multipart: as it is */
	{ single, "[1]", false, 0, "aGVsbG8gd29ybGQ=\r\n" },
	{ single, "[1]", true, 0, "hello world" },
	{ single, "[1.MIME]", false, 0,
	    "Subject: one\r\nContent-Transfer-Encoding: base64\r\n"
	    "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n" },
	{ single, "[2]", false, -1, "" },
	{ single, "[1.1]", false, -1, "" },
	{ single, "[]", true, 0,
	    "Subject: one\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	    "\r\nhello world" },
	{ single, "[TEXT]", false, 0, "aGVsbG8gd29ybGQ=\r\n" },
	{ single, "[]<0.7>", false, 0, "Subject" },
	{ single, "[1.HEADER]", false, -1, "" },
};

static void
test_section_extract(void **state)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	for (size_t i = 0; i < ARRAY_LEN(extract_cases); i++) {
		const char *m = extract_cases[i].msg ? extract_cases[i].msg :
						       nested;
		const char *want = extract_cases[i].want ? extract_cases[i].want :
							   m;
		struct message_part *root = parse(m);
		struct imap_section sec;
		const char *why = NULL;
		int rc;

		if (imap_section_parse(span_of_cstr(extract_cases[i].spec),
			&sec, &why) == -1)
			fail_msg("case %zu: parse %s", i, why);
		buf_reset(&b);
		rc = imap_section_extract(m, strlen(m), root, &sec,
		    extract_cases[i].binary, &b, &why);
		if (rc != extract_cases[i].rc ||
		    (rc == 0 && (b.len != strlen(want) ||
			memcmp(b.data, want, b.len) != 0)))
			fail_msg("case %zu (%s): rc %d why %s got [%s]", i,
			    extract_cases[i].spec, rc, why ? why : "", b.data);
		imap_section_release(&sec);
		message_part_free(root);
	}
	buf_release(&b);
	(void)state;
}

static void
test_binary(void **state)
{
	struct message_part *root = parse(nested);
	struct imap_section sec;
	const char *why = NULL;
	uint64_t size = 0;
	struct buf b;

	assert_int_equal(imap_section_parse(span_of_cstr("[1]<0.2>"), &sec,
	    &why), 0);
	assert_true(imap_section_is_binary(&sec));
	assert_int_equal(imap_section_binary_size(nested, strlen(nested), root,
	    &sec, &size, &why), 0);
	assert_int_equal(size, 11); /* partial ignored */
	buf_init(&b, 64);
	imap_section_name(&b, "BINARY", &sec, false);
	assert_string_equal(b.data, "BINARY[1]");
	buf_release(&b);
	imap_section_release(&sec);
	assert_int_equal(imap_section_parse(span_of_cstr("[3]"), &sec, &why),
	    0);
	buf_init(&b, BUF_NOMAX);
	assert_int_equal(imap_section_extract(nested, strlen(nested), root,
	    &sec, true, &b, &why), -1);
	assert_ptr_equal(why, imap_fetch_err_unknown_cte);
	buf_release(&b);
	imap_section_release(&sec);
	assert_int_equal(imap_section_parse(span_of_cstr("[HEADER]"), &sec,
	    &why), 0);
	assert_false(imap_section_is_binary(&sec));
	imap_section_release(&sec);
	/* A tree that does not fit the bytes is refused. */
	assert_int_equal(imap_section_parse(span_of_cstr("[]"), &sec, &why),
	    0);
	buf_init(&b, 64);
	assert_int_equal(imap_section_extract(nested, 10, root, &sec, false,
	    &b, &why), -1);
	/* Output limit. */
	assert_int_equal(imap_section_extract(nested, strlen(nested), root,
	    &sec, false, &b, &why), -1);
	buf_release(&b);
	imap_section_release(&sec);
	message_part_free(root);
	(void)state;
}

static const struct {
	const char *msg;
	const char *want;
} preview_cases[] = {
	{ "Subject: x\r\n\r\n  Hello\r\n\r\n\tworld  \r\n", "Hello world" },
	{ "Content-Type: text/html\r\n\r\n<html><head><style>p{}</style>"
	  "</head><body><p>Hi&amp;you</p><!-- c > d --><br>there&#33;"
	  "</body></html>",
	    "Hi&you there!" },
	{ "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	  "Content-Type: text/html\r\n\r\n<b>html</b>\r\n--b\r\n"
	  "Content-Type: text/plain\r\n\r\nplain\r\n--b--\r\n",
	    "plain" },
	{ "Content-Type: image/png\r\n\r\nxxxx", "" },
	{ "Content-Type: text/plain; charset=iso-8859-1\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n",
	    "caf\xc3\xa9" },
};

static void
test_preview(void **state)
{
	struct buf b, big;

	buf_init(&b, BUF_NOMAX);
	for (size_t i = 0; i < ARRAY_LEN(preview_cases); i++) {
		struct message_part *root = parse(preview_cases[i].msg);

		buf_reset(&b);
		assert_int_equal(imap_fetch_preview(preview_cases[i].msg,
		    strlen(preview_cases[i].msg), root, &b), 0);
		if (strcmp(b.data, preview_cases[i].want) != 0)
			fail_msg("case %zu: got [%s]", i, b.data);
		message_part_free(root);
	}
	/* At most 256 characters, not bytes. */
	buf_init(&big, BUF_NOMAX);
	buf_adds(&big, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 400; i++)
		buf_adds(&big, "\xc3\xa9");
	{
		struct message_part *root = parse(big.data);

		buf_reset(&b);
		imap_fetch_preview(big.data, big.len, root, &b);
		assert_int_equal(b.len, 512);
		message_part_free(root);
	}
	buf_release(&big);
	buf_release(&b);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_bodystructure),
		cmocka_unit_test(test_section_parse),
		cmocka_unit_test(test_section_extract),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_preview),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
