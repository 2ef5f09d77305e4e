/*
 * test_message.c: unit tests of the message parser: header folding,
 * address lists, dates, encoded words, RFC 2231 parameters, transfer
 * decoders with hostile input, MIME limits (deep nesting, part count),
 * byte-at-a-time prefixes, serialisation round trip and hostile loads,
 * Message-ID canonicalisation and base subjects.
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
#include "lib/banned.h"

static void
test_header_fields(void **state)
{
	static const char msg[] = "From: a@b\r\n"
				  "Subject: hello\r\n"
				  " world\r\n"
				  "X-Bare: lf\n"
				  "\tfolded\n"
				  "Name : obsolete space\r\n"
				  "nocolon line\r\n"
				  "\r\n"
				  "body\r\n";
	static const struct {
		const char *name;
		const char *unfolded;
	} want[] = {
		{ "From", "a@b" },
		{ "Subject", "hello world" },
		{ "X-Bare", "lf\tfolded" },
		{ "Name", "obsolete space" },
		{ "nocolon line", "" },
	};
	struct message_header_iter it;
	struct message_field f;
	const char *why = NULL;
	size_t hl = message_header_len(span_of(msg, sizeof(msg) - 1)), i = 0;
	struct span v;

	assert_int_equal(hl, sizeof(msg) - 1 - strlen("body\r\n"));
	message_header_iter_init(&it, span_of(msg, hl));
	while (message_header_next(&it, &f, &why) == 1) {
		struct buf b;

		if (i >= ARRAY_LEN(want))
			fail_msg("too many fields");
		buf_init(&b, 1024);
		message_unfold(f.value, &b);
		if (!span_eq_cstr(f.name, want[i].name) ||
		    strcmp(b.data, want[i].unfolded) != 0)
			fail_msg("field %zu: got %.*s=%s", i, (int)f.name.len,
			    f.name.p, b.data);
		buf_release(&b);
		i++;
	}
	assert_int_equal(i, ARRAY_LEN(want));
	assert_int_equal(message_header_find(span_of(msg, hl), "SUBJECT", &v),
	    0);
	assert_int_equal(message_header_find(span_of(msg, hl), "to", &v), -1);
	/* No empty line: everything is header; empty input: no header. */
	assert_int_equal(message_header_len(span_of_cstr("A: b\r\nc")), 7);
	assert_int_equal(message_header_len(span_of_cstr("")), 0);
	assert_int_equal(message_header_len(span_of_cstr("\r\nbody")), 2);
	assert_int_equal(message_header_len(span_of_cstr("\nbody")), 1);
	(void)state;
}

static const struct {
	const char *name;
	const char *in;
	const char *want; /* entries "kind|name|adl|user|host|group;" */
} addr_cases[] = {
	{ "plain", "bob@example.org", "m|||bob|example.org|;" },
	{ "angle with name", "Bob Smith <bob@example.org>",
	    "m|Bob Smith||bob|example.org|;" },
	{ "quoted name", "\"Smith, Bob\" <bob@example.org>, c@d",
	    "m|Smith, Bob||bob|example.org|;m|||c|d|;" },
	{ "quoted localpart", "\"a b\"@example.org", "m|||a b|example.org|;" },
	{ "empty quoted localpart", "\"\"@example.org",
	    "m||||example.org|;" },
	/* INTEROP: a comment after an addr-spec without phrase is the
	 * display name (RFC 822 habit; Dovecot). */
	{ "comment name", "bbb@ddd.com (John X. Doe)",
	    "m|John X. Doe||bbb|ddd.com|;" },
	{ "comment after phrase ignored", "Bob <b@c> (x)", "m|Bob||b|c|;" },
	{ "leading comment not a name", "(x) b@c", "m|||b|c|;" },
	{ "last comment wins", "a(x)@b (y)", "m|y||a|b|;" },
	{ "encoded comment", "a@b (=?utf-8?q?J=C3=B6rg?=)",
	    "m|J\xc3\xb6rg||a|b|;" },
	{ "escaped comment", "a@b (x \\(y\\))", "m|x (y)||a|b|;" },
	{ "nested comment", "a@b (x (y))", "m|x (y)||a|b|;" },
	{ "empty comment", "a@b ( )", "m|||a|b|;" },
	{ "unterminated comment", "a@b (Name", "m|Name||a|b|;" },
	{ "comment per address", "a@b (A), c@d", "m|A||a|b|;m|||c|d|;" },
	{ "localpart with comment", "user (Name)", "m|Name||user||;" },
	/* INTEROP: a display name without an address (Dovecot keeps it). */
	{ "name only", "Someone Else", "m|Someone Else||||;" },
	{ "name with empty angle", "MAILER DAEMON <>",
	    "m|MAILER DAEMON||||;" },
	{ "name only in list", "A B, c@d", "m|A B||||;m|||c|d|;" },
	{ "name only in group", "G: A B;", "s|||||G;m|A B||||;e|||||;" },
	{ "empty quoted words", "\"\" \"\", c@d", "m|||||;m|||c|d|;" },
	{ "group", "undisclosed: a@b, c@d;, e@f",
	    "s|||||undisclosed;m|||a|b|;m|||c|d|;e|||||;m|||e|f|;" },
	{ "empty group", "Team:;", "s|||||Team;e|||||;" },
	{ "unclosed group", "Team: a@b", "s|||||Team;m|||a|b|;e|||||;" },
	{ "route", "<@r1,@r2:bob@example.org>",
	    "m||@r1,@r2|bob|example.org|;" },
	{ "encoded name", "=?utf-8?q?J=C3=B6rg?= <j@example.org>",
	    "m|J\xc3\xb6rg||j|example.org|;" },
	{ "utf8 rfc6532", "J\xc3\xb6rg <j\xc3\xb6@ex\xc3\xa4mple.org>",
	    "m|J\xc3\xb6rg||j\xc3\xb6|ex\xc3\xa4mple.org|;" },
	{ "bare localpart", "postmaster", "m|||postmaster||;" },
	{ "obsolete dotted phrase", "John Q. Public <jqp@example.org>",
	    "m|John Q. Public||jqp|example.org|;" },
	{ "empty members", ",,a@b,,", "m|||a|b|;" },
	{ "empty angle", "<>", "" },
	{ "empty", "", "" },
	{ "junk", ">>]]\\", "" },
	{ "domain literal", "a@[192.0.2.1]", "m|||a|[192.0.2.1]|;" },
	{ "unterminated quote", "\"abc <a@b>", "m|||abc <a@b>||;" },
	{ "folded", "Bob\r\n <bob@example.org>",
	    "m|Bob||bob|example.org|;" },
	{ "nul byte", "a\0b@c", "m|||a|b@c|;" },
};

static void
addr_render(const struct message_addr_list *l, struct buf *out)
{
	static const char kinds[] = { 'm', 's', 'e' };

	for (size_t i = 0; i < l->n; i++) {
		const struct message_address *a = &l->v[i];

		buf_addf(out, "%c|%s|%s|%s|%s|%s;", kinds[a->kind],
		    a->name ? a->name : "", a->adl ? a->adl : "",
		    a->user ? a->user : "", a->host ? a->host : "",
		    a->group ? a->group : "");
	}
}

static void
test_addresses(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(addr_cases); i++) {
		struct message_addr_list l = { NULL, 0 };
		const char *why = NULL;
		struct buf got;
		size_t len = strlen(addr_cases[i].in);

		if (strcmp(addr_cases[i].name, "nul byte") == 0)
			len = 5;
		buf_init(&got, 4096);
		if (message_addr_parse(span_of(addr_cases[i].in, len), &l,
			&why) == -1)
			fail_msg("case %s: error %s", addr_cases[i].name, why);
		addr_render(&l, &got);
		/* The nul-byte case only must not crash. */
		if (strcmp(addr_cases[i].name, "nul byte") != 0 &&
		    strcmp(got.data, addr_cases[i].want) != 0)
			fail_msg("case %s: got %s want %s", addr_cases[i].name,
			    got.data, addr_cases[i].want);
		message_addr_list_release(&l);
		buf_release(&got);
	}
	(void)state;
}

static void
test_address_limit(void **state)
{
	struct buf in;
	struct message_addr_list l = { NULL, 0 };
	const char *why = NULL;

	buf_init(&in, BUF_NOMAX);
	for (size_t i = 0; i < MESSAGE_ADDRS_MAX + 5; i++)
		buf_adds(&in, "a@b,");
	assert_int_equal(message_addr_parse(span_of_buf(&in), &l, &why), -1);
	assert_int_equal(l.n, MESSAGE_ADDRS_MAX);
	message_addr_list_release(&l);
	buf_release(&in);
	(void)state;
}

static const struct {
	const char *in;
	int rc;
	int64_t t;
	int off;
} date_cases[] = {
	{ "Mon, 2 Jan 2006 15:04:05 -0700", 0, 1136239445, -420 },
	{ "2 Jan 2006 15:04:05 +0000", 0, 1136214245, 0 },
	{ "Mon, 02 Jan 06 15:04 GMT", 0, 1136214240, 0 },
	{ "Mon, 2 Jan 106 15:04:05 EST", 0, 1136232245, -300 },
	{ "Mon, 2 Jan 2006 15:04:05 Z", 0, 1136214245, 0 },
	{ "Mon, 2 Jan 2006 15:04:05 CEST", 0, 1136214245, 0 },
	{ "Mon (x), 2 (y) Jan 2006 15:04:05 +0100 (CET)", 0, 1136210645, 60 },
	{ "Thu, 29 Feb 2024 00:00:00 +0000", 0, 1709164800, 0 },
	{ "Thu, 30 Feb 2024 00:00:00 +0000", -1, 0, 0 },
	{ "Mon, 2 Foo 2006 15:04:05 +0000", -1, 0, 0 },
	{ "Mon, 2 Jan 2006 25:04:05 +0000", -1, 0, 0 },
	{ "Mon, 2 Jan 2006 15:04:05 +00", -1, 0, 0 },
	{ "", -1, 0, 0 },
	{ "garbage", -1, 0, 0 },
	{ "1 2 3 4 5 6 7 8 9 10 11 12 13 14", -1, 0, 0 },
	{ "Mon, 99999999999999999999 Jan 2006 15:04:05 +0000", -1, 0, 0 },
};

static void
test_dates(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(date_cases); i++) {
		int64_t t = 0;
		int off = 0, rc;
		const char *why = NULL;

		rc = message_date_parse(span_of_cstr(date_cases[i].in), &t,
		    &off, &why);
		if (rc != date_cases[i].rc ||
		    (rc == 0 && (t != date_cases[i].t ||
				    off != date_cases[i].off)))
			fail_msg("case %zu %s: rc %d t %lld off %d", i,
			    date_cases[i].in, rc, (long long)t, off);
	}
	{
		struct buf b;

		buf_init(&b, 100);
		message_date_format(1136239445, -420, &b);
		assert_string_equal(b.data, "Mon, 2 Jan 2006 15:04:05 -0700");
		buf_release(&b);
	}
	(void)state;
}

static const struct {
	const char *in;
	const char *want;
} word_cases[] = {
	{ "plain text", "plain text" },
	{ "=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9" },
	{ "=?ISO-8859-1?Q?caf=E9?= au lait", "caf\xc3\xa9 au lait" },
	{ "=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=", "\xc3\xa9\xc3\xa9" },
	/* RFC 2047 6.2: the space between words goes, with folding too. */
	{ "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab" },
	{ "=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b" },
	{ "=?utf-8?q?a_b?=", "a b" },
	/* A character split over two words. */
	{ "=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "\xc3\xa9" },
	{ "=?x-unknown?q?abc?=", "=?x-unknown?q?abc?=" },
	{ "=?utf-8?x?abc?=", "=?utf-8?x?abc?=" },
	{ "=?utf-8?q?unterminated", "=?utf-8?q?unterminated" },
	{ "=?utf-8*en?q?lang?=", "lang" },
	{ "=?" "?q?" "?=", "=?" "?q?" "?=" },
	{ "bad \xff utf8", "bad \xef\xbf\xbd utf8" },
	{ "=?utf-8?q?=FF?=", "\xef\xbf\xbd" },
	{ "=?", "=?" },
};

static void
test_encoded_words(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(word_cases); i++) {
		struct buf b;

		buf_init(&b, 4096);
		assert_int_equal(message_decode_words(
		    span_of_cstr(word_cases[i].in), &b), 0);
		if (strcmp(b.data, word_cases[i].want) != 0)
			fail_msg("case %zu %s: got %s", i, word_cases[i].in,
			    b.data);
		buf_release(&b);
	}
	(void)state;
}

static const struct {
	const char *in;
	const char *type;
	const char *pname, *pvalue; /* pvalue NULL: pname must be absent */
} ctype_cases[] = {
	{ "Content-Type: text/plain; charset=us-ascii\r\n\r\n", "text/plain",
	    "charset", "us-ascii" },
	{ "Content-Type: TEXT/HTML; CHARSET=\"UTF-8\" (comment)\r\n\r\n",
	    "text/html", "charset", "UTF-8" },
	{ "Content-Type: image/ jpeg; name = \"a b.jpg\"\r\n\r\n",
	    "image/jpeg", "name", "a b.jpg" },
	/* RFC 2231 3: continuations. */
	{ "Content-Type: application/x-stuff;\r\n title*0=\"abc \";\r\n"
	  " title*1=def\r\n\r\n",
	    "application/x-stuff", "title", "abc def" },
	/* RFC 2231 4: charset and language, percent-encoded. */
	{ "Content-Type: application/x-stuff;\r\n"
	  " title*=iso-8859-1'en'caf%E9\r\n\r\n",
	    "application/x-stuff", "title", "caf\xc3\xa9" },
	{ "Content-Type: application/x-stuff;\r\n"
	  " title*0*=utf-8''a%C3;\r\n title*1*=%A9b\r\n\r\n",
	    "application/x-stuff", "title", "a\xc3\xa9" "b" },
	/* Sections out of order; a gap ends the value. */
	{ "Content-Type: a/b; t*1=B; t*0=A; t*3=D\r\n\r\n", "a/b", "t", "AB" },
	/* INTEROP: RFC 2047 in a parameter. */
	{ "Content-Type: a/b; name=\"=?utf-8?q?x=C3=A9?=\"\r\n\r\n", "a/b",
	    "name", "x\xc3\xa9" },
	/* RFC 2045 5.2: invalid means text/plain. */
	{ "Content-Type: garbage\r\n\r\n", "text/plain", NULL, NULL },
	{ "Content-Type: \r\n\r\n", "text/plain", NULL, NULL },
	{ "Content-Type: a/b; =x; ;;; c\r\n\r\n", "a/b", NULL, NULL },
	{ "Content-Type: a/b; q=\"unterminated\r\n\r\n", "a/b", "q",
	    "unterminated" },
	/* INTEROP: empty parameters (";;") are skipped. */
	{ "Content-Type: multipart/alternative;; boundary=\"foo\"\r\n\r\n",
	    "multipart/alternative", "boundary", "foo" },
	/* INTEROP: words after an unquoted value are kept... */
	{ "Content-Type: a/b; name=My File.pdf\r\n\r\n", "a/b", "name",
	    "My File.pdf" },
	/* ...unless they read as a parameter whose ";" is missing: then
	 * they are dropped up to the next ";" (Dovecot's reading). */
	{ "Content-Type: message/external-body; access-type=mail-server\r\n"
	  "  server=\"x@y\"; expiration=z\r\n\r\n",
	    "message/external-body", "access-type", "mail-server" },
	{ "Content-Type: message/external-body; access-type=mail-server\r\n"
	  "  server=\"x@y\"; expiration=z\r\n\r\n",
	    "message/external-body", "server", NULL },
	{ "Content-Type: message/external-body; access-type=mail-server\r\n"
	  "  server=\"x@y\"; expiration=z\r\n\r\n",
	    "message/external-body", "expiration", "z" },
	{ "Content-Type: a/b; x=1 y (c) = 2; z=3\r\n\r\n", "a/b", "x", "1" },
	{ "Content-Type: a/b; x=1 y=\"p; z=4\"; z=3\r\n\r\n", "a/b", "z",
	    "3" },
	{ "\r\nno header", "text/plain", NULL, NULL },
};

static void
test_content_type(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(ctype_cases); i++) {
		struct message_part *p = NULL;
		const char *why = NULL, *v;
		char t[256];

		assert_int_equal(message_parse(ctype_cases[i].in,
		    strlen(ctype_cases[i].in), &p, &why), 0);
		snprintf(t, sizeof(t), "%s/%s", p->type, p->subtype);
		if (strcmp(t, ctype_cases[i].type) != 0)
			fail_msg("case %zu: type %s", i, t);
		if (ctype_cases[i].pname != NULL) {
			v = message_param_get(p->params, p->nparams,
			    ctype_cases[i].pname);
			if (ctype_cases[i].pvalue == NULL ? v != NULL
			    : v == NULL || strcmp(v, ctype_cases[i].pvalue) != 0)
				fail_msg("case %zu: param %s", i,
				    v != NULL ? v : "(none)");
		}
		message_part_free(p);
	}
	(void)state;
}

static const struct {
	int b64; /* 1 base64, 0 quoted-printable */
	const char *in;
	const char *want;
} dec_cases[] = {
	{ 1, "aGVsbG8=", "hello" },
	{ 1, "aGVs\r\nbG8=\r\n", "hello" },
	{ 1, "aGVsbG8", "hello" },               /* padding optional */
	{ 1, "aGVsbG", "hell" },                 /* partial quantum dropped */
	{ 1, "a GV*sb!G8=", "hello" },           /* junk skipped */
	{ 1, "aGk=aGk=", "hihi" },               /* concatenated blocks */
	{ 1, "====", "" },
	{ 1, "", "" },
	{ 1, "\xff\x80", "" },
	{ 0, "caf=C3=A9", "caf\xc3\xa9" },
	{ 0, "soft=\r\nbreak", "softbreak" },
	{ 0, "soft=\nbreak", "softbreak" },
	{ 0, "pad   \r\nnext", "pad\r\nnext" },
	{ 0, "=ZZ bad", "=ZZ bad" },
	{ 0, "end=", "end" },
	{ 0, "=", "" },
	{ 0, "=4", "=4" },
	{ 0, "lower=c3=a9", "lower\xc3\xa9" },
	{ 0, "soft=  \r\nx", "softx" },
};

static void
test_decoders(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(dec_cases); i++) {
		struct buf b;

		buf_init(&b, 4096);
		if (dec_cases[i].b64)
			message_decode_base64(span_of_cstr(dec_cases[i].in), &b);
		else
			message_decode_qp(span_of_cstr(dec_cases[i].in), &b);
		if (b.len != strlen(dec_cases[i].want) ||
		    memcmp(b.data, dec_cases[i].want, b.len) != 0)
			fail_msg("case %zu %s: got %s", i, dec_cases[i].in,
			    b.data);
		buf_release(&b);
	}
	{
		/* Output limit is an error, not an overflow. */
		struct buf b;

		buf_init(&b, 3);
		assert_int_equal(message_decode_base64(
		    span_of_cstr("aGVsbG8="), &b), -1);
		buf_release(&b);
	}
	(void)state;
}

static void
test_charset(void **state)
{
	struct buf b;
	const char *why = NULL;

	buf_init(&b, 4096);
	assert_int_equal(message_charset_to_utf8("ISO-8859-1",
	    span_of_cstr("caf\xe9"), &b, &why), 0);
	assert_string_equal(b.data, "caf\xc3\xa9");
	buf_reset(&b);
	assert_int_equal(message_charset_to_utf8("x-nonsense",
	    span_of_cstr("x"), &b, &why), -1);
	assert_int_equal(message_charset_to_utf8("../../etc",
	    span_of_cstr("x"), &b, &why), -1);
	buf_reset(&b);
	/* Invalid input bytes become U+FFFD. */
	assert_int_equal(message_charset_to_utf8("utf-8",
	    span_of_cstr("a\xc3"), &b, &why), 0);
	assert_string_equal(b.data, "a\xef\xbf\xbd");
	buf_reset(&b);
	assert_int_equal(message_charset_to_utf8("shift_jis",
	    span_of_cstr("\x82\xa0\x82"), &b, &why), 0);
	assert_true(utf8_valid(b.data, b.len));
	buf_release(&b);
	(void)state;
}

/* Build a message of depth nested multiparts. */
static void
nested(struct buf *b, int depth)
{
	buf_adds(b, "Subject: deep\r\n");
	for (int i = 0; i < depth; i++)
		buf_addf(b, "Content-Type: multipart/mixed; boundary=b%d\r\n"
			    "\r\n--b%d\r\n", i, i);
	buf_adds(b, "Content-Type: text/plain\r\n\r\nleaf\r\n");
	for (int i = depth - 1; i >= 0; i--)
		buf_addf(b, "--b%d--\r\n", i);
}

static size_t
tree_depth(const struct message_part *p)
{
	size_t d = 0;

	for (size_t i = 0; i < p->nparts; i++) {
		size_t c = tree_depth(&p->parts[i]);

		if (c > d)
			d = c;
	}
	if (p->message != NULL && tree_depth(p->message) > d)
		d = tree_depth(p->message);
	return d + 1;
}

static void
test_limits(void **state)
{
	static const struct {
		int depth;
		bool truncated;
	} cases[] = {
		{ 1, false },
		{ MESSAGE_DEPTH_MAX - 1, false },
		{ MESSAGE_DEPTH_MAX, false },
		{ MESSAGE_DEPTH_MAX + 1, true },
		{ 5000, true },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b;
		struct message_part *p = NULL;
		const char *why = NULL;

		buf_init(&b, BUF_NOMAX);
		nested(&b, cases[i].depth);
		assert_int_equal(message_parse(b.data, b.len, &p, &why), 0);
		if (((p->flags & MESSAGE_PART_TRUNCATED) != 0) !=
		    cases[i].truncated)
			fail_msg("depth %d: flags %x", cases[i].depth, p->flags);
		/* Levels 0..MESSAGE_DEPTH_MAX, plus the empty part a cut
		 * multipart gets. */
		if (tree_depth(p) > MESSAGE_DEPTH_MAX + 2)
			fail_msg("depth %d: tree depth %zu", cases[i].depth,
			    tree_depth(p));
		{
			struct buf ser;
			struct message_part *q = NULL;

			buf_init(&ser, MESSAGE_SERIAL_MAX);
			assert_int_equal(message_serialise(p, &ser), 0);
			if (message_deserialise(span_of_buf(&ser), b.len, &q,
				&why) == -1 || !message_part_equal(p, q))
				fail_msg("depth %d: round trip: %s",
				    cases[i].depth, why);
			message_part_free(q);
			buf_release(&ser);
		}
		message_part_free(p);
		buf_release(&b);
	}
	{
		/* Part count: more parts than allowed. */
		struct buf b;
		struct message_part *p = NULL;
		const char *why = NULL;

		buf_init(&b, BUF_NOMAX);
		buf_adds(&b, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
		for (size_t i = 0; i < MESSAGE_PARTS_MAX + 10; i++)
			buf_adds(&b, "--x\r\n\r\np\r\n");
		buf_adds(&b, "--x--\r\n");
		assert_int_equal(message_parse(b.data, b.len, &p, &why), 0);
		assert_true(p->flags & MESSAGE_PART_TRUNCATED);
		assert_true(message_part_count(p) <= MESSAGE_PARTS_MAX);
		message_part_free(p);
		buf_release(&b);
	}
	{
		/* Nested message/rfc822 without end. */
		struct buf b;
		struct message_part *p = NULL;
		const char *why = NULL;

		buf_init(&b, BUF_NOMAX);
		for (int i = 0; i < 200; i++)
			buf_adds(&b, "Content-Type: message/rfc822\r\n\r\n");
		assert_int_equal(message_parse(b.data, b.len, &p, &why), 0);
		assert_true(p->flags & MESSAGE_PART_TRUNCATED);
		message_part_free(p);
		buf_release(&b);
	}
	(void)state;
}

static const char mime_msg[] =
    "From: \"A\" <a@example.org>\r\n"
    "To: b@example.org, Team: c@example.org;\r\n"
    "Subject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n"
    "Date: Mon, 2 Jan 2006 15:04:05 -0700\r\n"
    "Message-ID: <ID@Example.org>\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer  \r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "caf=E9\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: attachment; filename=m.eml\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "inner body\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "aGVsbG8=\r\n"
    "--outer--\r\n"
    "epilogue\r\n";

static int
collect(const struct message_part *p, struct span text, void *arg)
{
	struct buf *b = arg;

	buf_add(b, text.p, text.len);
	buf_addc(b, '|');
	(void)p;
	return 0;
}

static void
test_mime_tree(void **state)
{
	struct message_part *p = NULL;
	const char *why = NULL;
	size_t len = sizeof(mime_msg) - 1;
	const struct message_part *t, *m, *o;
	struct buf b;

	assert_int_equal(message_parse(mime_msg, len, &p, &why), 0);
	assert_string_equal(p->type, "multipart");
	assert_int_equal(p->nparts, 3);
	assert_string_equal(p->envelope->subject, "R\xc3\xa9sum\xc3\xa9");
	assert_true(p->envelope->date_ok);
	assert_int_equal(p->envelope->to.n, 4);
	assert_string_equal(message_addr_first(&p->envelope->from)->user, "a");
	t = &p->parts[0];
	assert_string_equal(t->cte, "quoted-printable");
	assert_int_equal(t->end_off - t->body_off, strlen("caf=E9"));
	assert_int_equal(t->body_lines, 0);
	assert_memory_equal(mime_msg + t->body_off, "caf=E9", 6);
	m = &p->parts[1];
	assert_true(message_part_is_message(m));
	assert_non_null(m->message);
	assert_string_equal(m->message->envelope->subject, "inner");
	assert_string_equal(m->disposition, "attachment");
	assert_string_equal(message_param_get(m->disp_params,
	    m->ndisp_params, "filename"), "m.eml");
	assert_memory_equal(mime_msg + m->message->body_off, "inner body",
	    10);
	o = &p->parts[2];
	buf_init(&b, 4096);
	assert_int_equal(message_decode_cte(message_cte_of(o->cte),
	    span_of(mime_msg + o->body_off, o->end_off - o->body_off), &b,
	    &why), 0);
	assert_string_equal(b.data, "hello");
	buf_reset(&b);
	assert_int_equal(message_text_walk(mime_msg, len, p, 4096, collect,
	    &b), 0);
	assert_string_equal(b.data, "caf\xc3\xa9|inner body|");
	buf_release(&b);
	message_part_free(p);
	(void)state;
}

/* "type/subtype" with "(children)" of a multipart or "[body size]" of
 * a leaf. */
static void
tree_render(const struct message_part *p, struct buf *out)
{
	buf_addf(out, "%s/%s", p->type, p->subtype);
	if (p->nparts == 0) {
		buf_addf(out, "[%zu]", p->end_off - p->body_off);
		return;
	}
	buf_addc(out, '(');
	for (size_t i = 0; i < p->nparts; i++)
		tree_render(&p->parts[i], out);
	buf_addc(out, ')');
}

#define B70 "0123456789012345678901234567890123456789012345678901234567890123456789"

/* RFC 2046 5.1.1 forbids nesting a boundary that is a prefix of
 * another; when it happens, a line goes to the longest boundary it
 * matches (counting at most 70 characters), and a header that runs into
 * a delimiter line ends the part there. */
static const struct {
	const char *name;
	const char *in;
	const char *want;
} boundary_cases[] = {
	{ "inner prefix of outer",
	    "Content-Type: multipart/mixed; boundary=\"ab\"\r\n\r\n"
	    "--ab\r\n"
	    "Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n"
	    "--ab\r\n"
	    "Content-Type: text/plain\r\n\r\n"
	    "--a\r\n\r\n",
	    "multipart/mixed(multipart/mixed(text/plain[0])text/plain[7])" },
	{ "outer line ends inner part",
	    "Content-Type: multipart/mixed; boundary=\"ab\"\r\n\r\n"
	    "--ab\r\n"
	    "Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n"
	    "--a\r\n"
	    "Content-Type: text/plain\r\n\r\n"
	    "body\r\n"
	    "--ab\r\n"
	    "Content-Type: text/html\r\n\r\n"
	    "body2\r\n",
	    "multipart/mixed(multipart/mixed(text/plain[4])text/html[7])" },
	{ "outer prefix of inner",
	    "Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n"
	    "--a\r\n"
	    "Content-Type: multipart/mixed; boundary=\"ab\"\r\n\r\n"
	    "--ab\r\n\r\n"
	    "x\r\n"
	    "--ab--\r\n"
	    "--a--\r\n",
	    "multipart/mixed(multipart/mixed(text/plain[1]))" },
	{ "header runs into a delimiter",
	    "Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n"
	    "--a\r\n"
	    "Content-Type: multipart/mixed; boundary=\"ab\"\r\n"
	    "--ab\r\n"
	    "Content-Type: text/plain\r\n\r\n"
	    "--ab--\r\n"
	    "--a--\r\n",
	    "multipart/mixed(multipart/mixed(text/plain[0])text/plain[0]"
	    "text/plain[0])" },
	{ "beyond 70 characters is a tie",
	    "Content-Type: multipart/mixed; boundary=\"" B70 "xy\"\r\n\r\n"
	    "--" B70 "xy\r\n"
	    "Content-Type: multipart/mixed; boundary=\"" B70 "x\"\r\n\r\n"
	    "--" B70 "xy\r\n\r\n"
	    "1\r\n"
	    "--" B70 "xy\r\n\r\n"
	    "22\r\n",
	    "multipart/mixed(multipart/mixed(text/plain[1]text/plain[4]))" },
};

static void
test_boundary_prefix(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(boundary_cases); i++) {
		struct message_part *p = NULL;
		const char *why = NULL;
		struct buf got;

		buf_init(&got, 4096);
		assert_int_equal(message_parse(boundary_cases[i].in,
		    strlen(boundary_cases[i].in), &p, &why), 0);
		tree_render(p, &got);
		if (strcmp(got.data, boundary_cases[i].want) != 0)
			fail_msg("case %s: got %s want %s",
			    boundary_cases[i].name, got.data,
			    boundary_cases[i].want);
		message_part_free(p);
		buf_release(&got);
	}
	(void)state;
}

/* INTEROP: repeated address fields are joined, in header order. */
static const struct {
	const char *name;
	const char *in;
	const char *want_from, *want_to;
} join_cases[] = {
	{ "two To",
	    "From: a@b\r\nTo: <c@d>\r\nTo: e@f, g@h\r\n\r\n",
	    "m|||a|b|;", "m|||c|d|;m|||e|f|;m|||g|h|;" },
	{ "two From, one name only",
	    "From: MAILER DAEMON <>\r\nSubject: x\r\nFrom: x@y (X)\r\n\r\n",
	    "m|MAILER DAEMON||||;m|X||x|y|;", "" },
	{ "group across fields",
	    "To: G: a@b\r\nTo: c@d\r\n\r\n", "",
	    "s|||||G;m|||a|b|;e|||||;m|||c|d|;" },
};

static void
test_envelope_join(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(join_cases); i++) {
		struct message_part *p = NULL, *q = NULL;
		const char *why = NULL, *in = join_cases[i].in;
		struct buf from, to, ser;

		buf_init(&from, 4096);
		buf_init(&to, 4096);
		buf_init(&ser, MESSAGE_SERIAL_MAX);
		assert_int_equal(message_parse(in, strlen(in), &p, &why), 0);
		addr_render(&p->envelope->from, &from);
		addr_render(&p->envelope->to, &to);
		if (strcmp(from.data, join_cases[i].want_from) != 0 ||
		    strcmp(to.data, join_cases[i].want_to) != 0)
			fail_msg("case %s: from %s to %s", join_cases[i].name,
			    from.data, to.data);
		/* A name without an address survives the store. */
		assert_int_equal(message_serialise(p, &ser), 0);
		if (message_deserialise(span_of_buf(&ser), strlen(in), &q,
			&why) == -1 || !message_part_equal(p, q))
			fail_msg("case %s: serial %s", join_cases[i].name,
			    why != NULL ? why : "differs");
		message_part_free(p);
		message_part_free(q);
		buf_release(&from);
		buf_release(&to);
		buf_release(&ser);
	}
	(void)state;
}

/* Every prefix of a message parses, with offsets inside the prefix. */
static void
check_offsets(const struct message_part *p, size_t len)
{
	if (p->header_off > p->body_off || p->body_off > p->end_off ||
	    p->end_off > len)
		fail_msg("offsets %zu %zu %zu len %zu", p->header_off,
		    p->body_off, p->end_off, len);
	for (size_t i = 0; i < p->nparts; i++)
		check_offsets(&p->parts[i], len);
	if (p->message != NULL)
		check_offsets(p->message, len);
}

static void
test_prefixes(void **state)
{
	size_t len = sizeof(mime_msg) - 1;

	for (size_t n = 0; n <= len; n++) {
		struct message_part *p = NULL;
		const char *why = NULL;
		char *copy = malloc(n + 1);

		/* An exact-size copy lets the sanitizers see overreads. */
		memcpy(copy, mime_msg, n);
		assert_int_equal(message_parse(copy, n, &p, &why), 0);
		check_offsets(p, n);
		message_part_free(p);
		free(copy);
	}
	(void)state;
}

static void
test_serial(void **state)
{
	struct message_part *p = NULL, *q = NULL;
	const char *why = NULL;
	size_t len = sizeof(mime_msg) - 1;
	struct buf b;
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"v\":1}",
		"{\"v\":2,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,0,0,0],\"env\":{}}",
		"{\"v\":1,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,5,3,0],\"env\":{}}",
		"{\"v\":1,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,0,99999,0],\"env\":{}}",
		"{\"v\":1,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,0,-1,0],\"env\":{}}",
		"{\"v\":1,\"t\":\"\",\"s\":\"plain\",\"o\":[0,0,0,0],\"env\":{}}",
		"{\"v\":1,\"t\":1,\"s\":\"plain\",\"o\":[0,0,0,0],\"env\":{}}",
		"{\"v\":1,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,0,0,0],\"env\":{\"from\":[[0,null,null,null,null,null]]}}",
		"{\"v\":1,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,0,0,0],\"env\":{\"from\":[[7,null,null,\"a\",null,null]]}}",
		"{\"v\":1,\"t\":\"multipart\",\"s\":\"mixed\",\"o\":[0,0,10,0],\"env\":{},\"parts\":[{\"t\":\"a\",\"s\":\"b\",\"o\":[5,5,11,0]}]}",
		"{\"v\":1,\"t\":\"multipart\",\"s\":\"mixed\",\"o\":[0,0,10,0],\"env\":{},\"parts\":[{\"t\":\"a\",\"s\":\"b\",\"o\":[5,5,8,0]},{\"t\":\"a\",\"s\":\"b\",\"o\":[6,6,8,0]}]}",
		"{\"v\":1,\"t\":\"text\",\"s\":\"plain\",\"o\":[0,0,0,0],\"env\":{}} x",
	};

	assert_int_equal(message_parse(mime_msg, len, &p, &why), 0);
	buf_init(&b, MESSAGE_SERIAL_MAX);
	assert_int_equal(message_serialise(p, &b), 0);
	assert_int_equal(message_deserialise(span_of_buf(&b), len, &q, &why),
	    0);
	assert_true(message_part_equal(p, q));
	message_part_free(q);
	q = NULL;
	assert_int_equal(message_deserialise(span_of_buf(&b), len - 1, &q,
	    &why), -1);
	message_part_free(p);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		q = NULL;
		if (message_deserialise(span_of_cstr(bad[i]), 100, &q, &why) !=
		    -1)
			fail_msg("bad case %zu accepted", i);
	}
	{
		/* Deep JSON nesting is refused, not recursed into. */
		struct buf d;

		buf_init(&d, BUF_NOMAX);
		for (int i = 0; i < 100000; i++)
			buf_adds(&d, "[");
		q = NULL;
		assert_int_equal(message_deserialise(span_of_buf(&d), 100, &q,
		    &why), -1);
		buf_release(&d);
	}
	buf_release(&b);
	(void)state;
}

static const struct {
	const char *in;
	int rc;
	const char *want;
} msgid_cases[] = {
	{ "<ABC@Example.ORG>", 0, "abc@example.org" },
	{ "  <a@b> (added by postmaster)", 0, "a@b" },
	{ "<\"abc\"@b>", 0, "abc@b" },
	{ "<\"a b\"@b>", 0, "\"a b\"@b" },
	{ "<no-at-sign>", 0, "no-at-sign" },
	{ "abc@b", -1, NULL },
	{ "<abc@b", -1, NULL },
	{ "<>", -1, NULL },
	{ "<a@b>junk", -1, NULL },
	{ "", -1, NULL },
};

static const struct {
	const char *in;
	const char *want;
	bool resp;
} subj_cases[] = {
	{ "Hello", "hello", false },
	{ "Re: Hello", "hello", true },
	{ "RE: re: Fwd:  Hello   World ", "hello world", true },
	{ "[list] Re: [other] hello", "hello", true },
	{ "[list]", "[list]", false },
	{ "Hello (fwd)", "hello", true },
	{ "[Fwd: Re: hello]", "hello", true },
	{ "Re [2]: hello", "hello", true },
	{ "", "", false },
	{ "re:", "", true },
	{ "[[[", "[[[", false },
};

static int
ref_cb(struct span id, void *arg)
{
	struct buf *b = arg;

	buf_add(b, id.p, id.len);
	buf_addc(b, ' ');
	return 0;
}

static void
test_thread_helpers(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_LEN(msgid_cases); i++) {
		const char *why = NULL;
		int rc;

		buf_reset(&b);
		rc = message_id_canonical(span_of_cstr(msgid_cases[i].in), &b,
		    &why);
		if (rc != msgid_cases[i].rc ||
		    (rc == 0 && strcmp(b.data, msgid_cases[i].want) != 0))
			fail_msg("msgid case %zu: rc %d %s", i, rc, b.data);
	}
	for (size_t i = 0; i < ARRAY_LEN(subj_cases); i++) {
		bool resp = false;

		buf_reset(&b);
		assert_int_equal(message_subject_base(
		    span_of_cstr(subj_cases[i].in), &b, &resp), 0);
		if (strcmp(b.data, subj_cases[i].want) != 0 ||
		    resp != subj_cases[i].resp)
			fail_msg("subject case %zu: got '%s' resp %d", i,
			    b.data, resp);
	}
	buf_reset(&b);
	message_refs_walk(span_of_cstr("<a@b> junk <c@d>\r\n <e<f@g>"),
	    ref_cb, &b);
	assert_string_equal(b.data, "a@b c@d f@g ");
	buf_release(&b);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_address_limit),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_content_type),
		cmocka_unit_test(test_decoders),
		cmocka_unit_test(test_charset),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_mime_tree),
		cmocka_unit_test(test_boundary_prefix),
		cmocka_unit_test(test_envelope_join),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_thread_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
