/*
 * test_smtp_parse.c: SMTP command parsing (smtp_parse.c), the DATA reader
 * and reply formatting (smtp_reply.c): every command and parameter,
 * quoted and empty quoted localparts, SMTPUTF8 addresses, hostile input
 * (NUL, bare CR/LF, over-long values, invalid UTF-8) and byte-at-a-time
 * feeding of DATA that must equal a whole read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_reply.h"
#include "lib/banned.h"

static struct span
sp(const char *s)
{
	return span_of_cstr(s);
}

static void
test_verb(void **state)
{
	static const struct {
		const char *in;
		enum smtp_verb v;
		const char *args;
	} cases[] = {
		{ "EHLO example.org", SMTP_VERB_EHLO, "example.org" },
		{ "ehlo x", SMTP_VERB_EHLO, "x" },
		{ "HELO x", SMTP_VERB_HELO, "x" },
		{ "STARTTLS", SMTP_VERB_STARTTLS, "" },
		{ "AUTH PLAIN", SMTP_VERB_AUTH, "PLAIN" },
		{ "MAIL FROM:<a@b>", SMTP_VERB_MAIL, "FROM:<a@b>" },
		{ "rcpt TO:<a@b>", SMTP_VERB_RCPT, "TO:<a@b>" },
		{ "DATA", SMTP_VERB_DATA, "" },
		{ "RSET", SMTP_VERB_RSET, "" },
		{ "VRFY x", SMTP_VERB_VRFY, "x" },
		{ "EXPN x", SMTP_VERB_EXPN, "x" },
		{ "HELP", SMTP_VERB_HELP, "" },
		{ "NOOP", SMTP_VERB_NOOP, "" },
		{ "QUIT", SMTP_VERB_QUIT, "" },
		{ "BDAT 10 LAST", SMTP_VERB_UNKNOWN, "10 LAST" },
		{ "GET / HTTP/1.0", SMTP_VERB_UNKNOWN, "/ HTTP/1.0" },
		{ "", SMTP_VERB_UNKNOWN, "" },
		{ "QUITX", SMTP_VERB_UNKNOWN, "" },
		{ " QUIT", SMTP_VERB_UNKNOWN, "QUIT" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct span args;
		enum smtp_verb v = smtp_parse_verb(sp(cases[i].in), &args);

		if (v != cases[i].v || !span_eq_cstr(args, cases[i].args))
			fail_msg("case %zu (%s): verb %d args %.*s", i,
			    cases[i].in, v, (int)args.len, args.p);
	}
	(void)state;
}

static void
test_addr(void **state)
{
	static const struct {
		const char *in;
		bool utf8;
		int rc;
		const char *lp, *dom, *fmt;
	} cases[] = {
		{ "bob@example.org", false, 0, "bob", "example.org",
		    "bob@example.org" },
		{ "Bob.Smith@EXAMPLE.org", false, 0, "Bob.Smith", "example.org",
		    "Bob.Smith@example.org" },
		{ "\"\"@example.org", false, 0, "", "example.org",
		    "\"\"@example.org" },
		{ "\"a b\"@x.example", false, 0, "a b", "x.example",
		    "\"a b\"@x.example" },
		{ "\"a\\\"b\"@x.example", false, 0, "a\"b", "x.example",
		    "\"a\\\"b\"@x.example" },
		{ "\"bob\"@x.example", false, 0, "bob", "x.example",
		    "bob@x.example" },
		{ "a@[192.0.2.1]", false, 0, "a", "[192.0.2.1]", "a@[192.0.2.1]" },
		{ "a@[IPv6:2001:db8::1]", false, 0, "a", "[IPv6:2001:db8::1]",
		    "a@[IPv6:2001:db8::1]" },
		{ "møx@example.org", true, 0, "møx", "example.org",
		    "møx@example.org" },
		{ "mox@ëxample.org", true, 0, "mox", "ëxample.org",
		    "mox@ëxample.org" },
		{ "møx@example.org", false, -1, NULL, NULL, NULL },
		{ "a@[300.1.1.1]", false, -1, NULL, NULL, NULL },
		{ "a@[IPv6:zz]", false, -1, NULL, NULL, NULL },
		{ "a..b@x", false, -1, NULL, NULL, NULL },
		{ ".a@x", false, -1, NULL, NULL, NULL },
		{ "a.@x", false, -1, NULL, NULL, NULL },
		{ "a@-x.org", false, -1, NULL, NULL, NULL },
		{ "a@x-.org", false, -1, NULL, NULL, NULL },
		{ "a@x..org", false, -1, NULL, NULL, NULL },
		{ "a@x.org.", false, -1, NULL, NULL, NULL },
		{ "a@", false, -1, NULL, NULL, NULL },
		{ "@x", false, -1, NULL, NULL, NULL },
		{ "a", false, -1, NULL, NULL, NULL },
		{ "", false, -1, NULL, NULL, NULL },
		{ "\"a@x", false, -1, NULL, NULL, NULL },
		{ "\"a\x01\"@x", false, -1, NULL, NULL, NULL },
		{ "a\xff@x", true, -1, NULL, NULL, NULL },
		{ "a\xc3@x", true, -1, NULL, NULL, NULL },
		{ "a b@x", false, -1, NULL, NULL, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct smtp_parse_opts o = { .smtputf8 = cases[i].utf8 };
		struct smtp_addr a;
		struct smtp_perr e;
		struct buf f;
		int rc = smtp_parse_addr(sp(cases[i].in), &o, &a, &e);

		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].in, rc,
			    rc == -1 ? e.why : "");
		if (rc != 0)
			continue;
		buf_init(&f, 1024);
		smtp_addr_format(&a, &f);
		if (strcmp(a.localpart, cases[i].lp) != 0 ||
		    strcmp(a.domain, cases[i].dom) != 0 ||
		    strcmp(f.data, cases[i].fmt) != 0)
			fail_msg("case %zu: lp %s dom %s fmt %s", i, a.localpart,
			    a.domain, f.data);
		buf_release(&f);
		smtp_addr_release(&a);
	}
	(void)state;
}

static void
test_addr_limits(void **state)
{
	struct smtp_parse_opts o = { 0 }, ped = { .pedantic = true };
	struct smtp_addr a;
	struct smtp_perr e;
	struct buf b;

	/* localpart 128 ok, 129 too long; pedantic 64 / 65 */
	for (size_t n = 63; n <= 130; n++) {
		int want = n <= SMTP_LOCALPART_MAX ? 0 : -1;
		int wantp = n <= SMTP_LOCALPART_STRICT ? 0 : -1;
		int rc;

		buf_init(&b, 1024);
		for (size_t i = 0; i < n; i++)
			buf_addc(&b, 'a');
		buf_adds(&b, "@x.org");
		rc = smtp_parse_addr(span_of_buf(&b), &o, &a, &e);
		if (rc != want)
			fail_msg("localpart %zu: rc %d", n, rc);
		smtp_addr_release(&a);
		rc = smtp_parse_addr(span_of_buf(&b), &ped, &a, &e);
		if (rc != wantp)
			fail_msg("pedantic localpart %zu: rc %d", n, rc);
		smtp_addr_release(&a);
		buf_release(&b);
	}
	/* label 63 ok, 64 not */
	buf_init(&b, 1024);
	buf_adds(&b, "a@");
	for (int i = 0; i < 63; i++)
		buf_addc(&b, 'b');
	assert_int_equal(smtp_parse_addr(span_of_buf(&b), &o, &a, &e), 0);
	smtp_addr_release(&a);
	buf_addc(&b, 'b');
	assert_int_equal(smtp_parse_addr(span_of_buf(&b), &o, &a, &e), -1);
	buf_release(&b);
	/* NUL inside */
	assert_int_equal(smtp_parse_addr(span_of("a\0b@x", 5), &o, &a, &e), -1);
	(void)state;
}

static void
test_mail(void **state)
{
	static const struct {
		const char *in;
		bool sub, ped;
		int rc;
		enum smtp_perr_kind kind;
		const char *from; /* NULL: null path */
	} cases[] = {
		{ "FROM:<bob@example.org>", false, false, 0, 0, "bob@example.org" },
		{ "from:<bob@example.org>", false, false, 0, 0, "bob@example.org" },
		{ "FROM: <bob@example.org>", false, false, 0, 0, "bob@example.org" },
		{ "FROM: <bob@example.org>", false, true, -1, SMTP_PERR_SYNTAX,
		    NULL },
		{ "FROM:<>", false, false, 0, 0, NULL },
		{ "FROM:<@a.example,@b.example:bob@example.org>", false, false, 0,
		    0, "bob@example.org" },
		{ "FROM:<bob@example.org> SIZE=1000", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> SIZE=0", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> SIZE=123456789012345678901", false,
		    false, -1, SMTP_PERR_SYNTAX, NULL },
		{ "FROM:<bob@example.org> SIZE=x", false, false, -1,
		    SMTP_PERR_SYNTAX, NULL },
		{ "FROM:<bob@example.org> SIZE=1 SIZE=2", false, false, -1,
		    SMTP_PERR_DUPLICATE, NULL },
		{ "FROM:<bob@example.org> size=1 SIZE=2", false, false, -1,
		    SMTP_PERR_DUPLICATE, NULL },
		{ "FROM:<bob@example.org> BODY=8BITMIME", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> BODY=7bit", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> BODY=BINARYMIME", false, false, -1,
		    SMTP_PERR_BADVALUE, NULL },
		{ "FROM:<bob@example.org> AUTH=<>", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> AUTH=bob+2Bx@example.org", false, false,
		    0, 0, "bob@example.org" },
		{ "FROM:<møx@example.org> SMTPUTF8", false, false, 0, 0,
		    "møx@example.org" },
		{ "FROM:<møx@example.org>", false, false, -1, SMTP_PERR_NONASCII,
		    NULL },
		{ "FROM:<bob@example.org> REQUIRETLS", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> NOTIFY=NEVER", false, false, -1,
		    SMTP_PERR_UNKNOWN, NULL },
		{ "FROM:<bob@example.org> RET=HDRS", false, false, -1,
		    SMTP_PERR_UNKNOWN, NULL },
		{ "FROM:<bob@example.org> HOLDFOR=10", false, false, -1,
		    SMTP_PERR_UNKNOWN, NULL },
		{ "FROM:<bob@example.org> HOLDFOR=10", true, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> HOLDFOR=010", true, false, -1,
		    SMTP_PERR_SYNTAX, NULL },
		{ "FROM:<bob@example.org> HOLDFOR=5184001", true, false, -1,
		    SMTP_PERR_HOLDFAR, NULL },
		{ "FROM:<bob@example.org> HOLDFOR=1 HOLDUNTIL=2030-01-01T00:00:00Z",
		    true, false, -1, SMTP_PERR_BOTHHOLD, NULL },
		{ "FROM:<bob@example.org> HOLDUNTIL=2030-01-01T00:00:00.5Z", true,
		    false, 0, 0, "bob@example.org" },
		{ "FROM:<bob@example.org> HOLDUNTIL=2030-02-30T00:00:00Z", true,
		    false, -1, SMTP_PERR_SYNTAX, NULL },
		{ "FROM:<bob@example.org> HOLDUNTIL=2030-01-01 00:00:00Z", true,
		    false, -1, SMTP_PERR_SYNTAX, NULL },
		{ "FROM:<bob@example.org> ", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org> ", true, false, -1, SMTP_PERR_SYNTAX,
		    NULL },
		{ "FROM:<bob@example.org>\t", false, false, 0, 0,
		    "bob@example.org" },
		{ "FROM:<bob@example.org>x", false, false, -1, SMTP_PERR_SYNTAX,
		    NULL },
		{ "FROM:bob@example.org", false, false, -1, SMTP_PERR_SYNTAX, NULL },
		{ "FROM:<bob@example.org", false, false, -1, SMTP_PERR_SYNTAX,
		    NULL },
		{ "TO:<bob@example.org>", false, false, -1, SMTP_PERR_SYNTAX,
		    NULL },
		{ "FROM:<\"a>b\"@example.org>", false, false, 0, 0,
		    "\"a>b\"@example.org" },
		{ "FROM:<bob@example.org> =x", false, false, -1, SMTP_PERR_SYNTAX,
		    NULL },
		{ "", false, false, -1, SMTP_PERR_SYNTAX, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct smtp_parse_opts o = { .pedantic = cases[i].ped,
			.strict_trailing = cases[i].sub };
		struct smtp_mail m;
		struct smtp_perr e;
		int rc = smtp_parse_mail(sp(cases[i].in), &o, cases[i].sub, &m,
		    &e);

		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d %s", i, cases[i].in, rc,
			    rc == -1 ? e.why : "");
		if (rc == -1 && e.kind != cases[i].kind)
			fail_msg("case %zu (%s): kind %d want %d", i, cases[i].in,
			    e.kind, cases[i].kind);
		if (rc == 0) {
			struct buf f;

			buf_init(&f, 1024);
			if (!m.null_path)
				smtp_addr_format(&m.from, &f);
			if (m.null_path != (cases[i].from == NULL) ||
			    (cases[i].from != NULL &&
				strcmp(f.data, cases[i].from) != 0))
				fail_msg("case %zu: from %s", i, f.data);
			buf_release(&f);
		}
		smtp_mail_release(&m);
	}
	(void)state;
}

static void
test_mail_values(void **state)
{
	struct smtp_parse_opts o = { 0 };
	struct smtp_mail m;
	struct smtp_perr e;

	assert_int_equal(smtp_parse_mail(sp("FROM:<a@b.c> SIZE=12345 "
					    "BODY=8BITMIME SMTPUTF8 REQUIRETLS"),
			     &o, false, &m, &e),
	    0);
	assert_true(m.has_size);
	assert_int_equal(m.size, 12345);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	assert_true(m.smtputf8);
	assert_true(m.requiretls);
	smtp_mail_release(&m);
	assert_int_equal(smtp_parse_mail(sp("FROM:<a@b.c> HOLDFOR=60"), &o, true,
			     &m, &e),
	    0);
	assert_string_equal(m.holdreq, "for;60");
	smtp_mail_release(&m);
	assert_int_equal(smtp_parse_mail(sp("FROM:<a@b.c> "
					    "HOLDUNTIL=2030-01-01T00:00:00Z"),
			     &o, true, &m, &e),
	    0);
	assert_string_equal(m.holdreq, "until;2030-01-01T00:00:00Z");
	assert_int_equal(m.holduntil_ns, INT64_C(1893456000) * 1000000000);
	smtp_mail_release(&m);
	(void)state;
}

static void
test_rcpt(void **state)
{
	static const struct {
		const char *in;
		bool utf8;
		int rc;
		enum smtp_perr_kind kind;
		bool pm;
	} cases[] = {
		{ "TO:<bob@example.org>", false, 0, 0, false },
		{ "to: <bob@example.org>", false, 0, 0, false },
		{ "TO:<Postmaster>", false, 0, 0, true },
		{ "TO:<postmaster>", false, 0, 0, true },
		{ "TO:<postmaster@example.org>", false, 0, 0, false },
		{ "TO:<>", false, -1, SMTP_PERR_SYNTAX, false },
		{ "TO:<bob@example.org> NOTIFY=NEVER", false, -1,
		    SMTP_PERR_UNKNOWN, false },
		{ "TO:<bob@example.org> ORCPT=rfc822;bob@example.org", false, -1,
		    SMTP_PERR_UNKNOWN, false },
		{ "TO:<møx@example.org>", false, -1, SMTP_PERR_NONASCII, false },
		{ "TO:<møx@example.org>", true, 0, 0, false },
		{ "TO:<\"\"@example.org>", false, 0, 0, false },
		{ "TO:bob@example.org", false, -1, SMTP_PERR_SYNTAX, false },
		{ "TO:<bob@example.org>>", false, -1, SMTP_PERR_SYNTAX, false },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct smtp_parse_opts o = { .smtputf8 = cases[i].utf8 };
		struct smtp_rcpt r;
		struct smtp_perr e;
		int rc = smtp_parse_rcpt(sp(cases[i].in), &o, &r, &e);

		if (rc != cases[i].rc || (rc == -1 && e.kind != cases[i].kind) ||
		    (rc == 0 && r.postmaster != cases[i].pm))
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
		smtp_rcpt_release(&r);
	}
	(void)state;
}

static void
test_ehlo_auth(void **state)
{
	static const struct {
		const char *in;
		bool ehlo;
		int rc;
	} cases[] = {
		{ "example.org", true, 0 },
		{ "  example.org  ", true, 0 },
		{ "[192.0.2.1]", true, 0 },
		{ "[192.0.2.1] extra text", true, 0 },
		{ "[192.0.2.1]", false, -1 },
		{ "example.org extra", true, -1 },
		{ "", true, -1 },
		{ "exa_mple.org", true, -1 },
		{ "ëxample.org", true, 0 },
	};
	struct span mech, ir, name;
	bool have;
	const char *why;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (smtp_parse_ehlo(sp(cases[i].in), cases[i].ehlo, &name, &why) !=
		    cases[i].rc)
			fail_msg("ehlo case %zu (%s)", i, cases[i].in);
	assert_int_equal(smtp_parse_auth(sp("PLAIN"), false, &mech, &have, &ir,
			     &why),
	    0);
	assert_true(span_eq_cstr(mech, "PLAIN"));
	assert_false(have);
	assert_int_equal(smtp_parse_auth(sp("PLAIN AGJvYgBwdw=="), false, &mech,
			     &have, &ir, &why),
	    0);
	assert_true(have);
	assert_true(span_eq_cstr(ir, "AGJvYgBwdw=="));
	assert_int_equal(smtp_parse_auth(sp("PLAIN   eA=="), false, &mech, &have,
			     &ir, &why),
	    0);
	assert_true(span_eq_cstr(ir, "eA=="));
	assert_int_equal(smtp_parse_auth(sp("PLAIN   eA=="), true, &mech, &have,
			     &ir, &why),
	    0);
	assert_true(span_eq_cstr(ir, "  eA=="));
	assert_int_equal(smtp_parse_auth(sp("PLAIN ="), false, &mech, &have, &ir,
			     &why),
	    0);
	assert_true(have);
	assert_int_equal(ir.len, 0);
	assert_int_equal(smtp_parse_auth(sp("PLAIN "), false, &mech, &have, &ir,
			     &why),
	    -1);
	assert_int_equal(smtp_parse_auth(sp(""), false, &mech, &have, &ir, &why),
	    -1);
	assert_int_equal(smtp_parse_auth(sp("SCRAM-SHA-256-PLUS-TOO-LONG-NAME"),
			     false, &mech, &have, &ir, &why),
	    -1);
	assert_int_equal(smtp_parse_auth(sp("PL@IN"), false, &mech, &have, &ir,
			     &why),
	    -1);
	(void)state;
}

static const struct {
	const char *in;
	int rc;
	bool bad;
	const char *out;
} data_cases[] = {
	{ "a\r\nb\r\n.\r\n", 1, false, "a\r\nb\r\n" },
	{ ".\r\n", 1, false, "" },
	{ "..x\r\n.\r\n", 1, false, ".x\r\n" },
	{ "a\nb\r\n.\r\n", 1, false, "a\r\nb\r\n" },
	{ "a\r\n\r\nbody\r\n.\r\n", 1, false, "a\r\n\r\nbody\r\n" },
	{ "a\rb\r\n.\r\n", 1, true, "a\rb\r\n" },
	{ "a\r\n.\nb\r\n.\r\n", 1, true, NULL },
	{ "a\n.\r\nb\r\n.\r\n", 1, true, NULL },
	{ "a\n.\nb\r\n.\r\n", 1, true, NULL },
	{ "a\r\n.\rx\r\n.\r\n", 1, true, NULL },
	{ "a\r\n.", 0, false, NULL },
	{ "a\r\n.\r", 0, false, NULL },
	{ "abc", 0, false, NULL },
	{ "caf\xc3\xa9\r\n.\r\n", 1, false, "caf\xc3\xa9\r\n" },
	{ "x\r\n.\r\nMAIL FROM:<a@b>\r\n", 1, false, "x\r\n" },
};

static void
test_data(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(data_cases); i++) {
		struct smtp_data d, d1;
		struct buf out, out1;
		struct span in = sp(data_cases[i].in);
		size_t used, used1 = 0;
		int rc, rc1 = 0;

		buf_init(&out, 1 << 20);
		buf_init(&out1, 1 << 20);
		smtp_data_init(&d);
		rc = smtp_data_feed(&d, in, &out, &used);
		/* byte at a time must give the same */
		smtp_data_init(&d1);
		for (size_t k = 0; k < in.len && rc1 == 0; k++) {
			size_t u;

			rc1 = smtp_data_feed(&d1, span_of(in.p + k, 1), &out1, &u);
			used1 += u;
		}
		if (rc != data_cases[i].rc || d.bad != data_cases[i].bad)
			fail_msg("case %zu: rc %d bad %d", i, rc, d.bad);
		if (data_cases[i].out != NULL &&
		    strcmp(out.data, data_cases[i].out) != 0)
			fail_msg("case %zu: out %s", i, out.data);
		if (rc != rc1 || used != used1 || d.bad != d1.bad ||
		    strcmp(out.data, out1.data) != 0 || d.size != out.len)
			fail_msg("case %zu: byte-at-a-time differs", i);
		buf_release(&out);
		buf_release(&out1);
	}
	(void)state;
}

static void
test_data_flags(void **state)
{
	struct smtp_data d;
	struct buf out;
	size_t used;

	buf_init(&out, 1 << 16);
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, sp("Subject: x\r\n\r\nb\xc3\xa9\r\n."
					       "\r\n"),
			     &out, &used),
	    1);
	assert_true(d.header_end);
	assert_true(d.has_8bit);
	buf_release(&out);
	buf_init(&out, 1 << 16);
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, sp("Subject: x\r\n.\r\n"), &out,
			     &used),
	    1);
	assert_false(d.header_end);
	assert_false(d.has_8bit);
	buf_release(&out);
	/* output limit reached */
	buf_init(&out, 4);
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, sp("abcdefgh\r\n.\r\n"), &out,
			     &used),
	    -1);
	buf_release(&out);
	(void)state;
}

static void
test_reply(void **state)
{
	struct buf b;
	char long_text[1200];

	buf_init(&b, 1 << 16);
	smtp_reply_format(&b, 250, "2.0.0", "alrighty", NULL);
	assert_string_equal(b.data, "250 2.0.0 alrighty\r\n");
	buf_reset(&b);
	smtp_reply_format(&b, 501, "5.5.2", "bad syntax: x", "abc");
	assert_string_equal(b.data, "501 5.5.2 bad syntax: x (abc)\r\n");
	buf_reset(&b);
	smtp_reply_format(&b, 451, "4.3.0", "one\ntwo", "id");
	assert_string_equal(b.data, "451-4.3.0 one\r\n451 4.3.0 two (id)\r\n");
	buf_reset(&b);
	smtp_reply_format(&b, 354, NULL, "see you at the bare dot", NULL);
	assert_string_equal(b.data, "354 see you at the bare dot\r\n");
	buf_reset(&b);
	for (size_t i = 0; i < sizeof(long_text) - 1; i++)
		long_text[i] = i % 10 == 9 ? ' ' : 'x';
	long_text[sizeof(long_text) - 1] = '\0';
	smtp_reply_format(&b, 550, "5.0.0", long_text, NULL);
	for (char *p = b.data, *nl; (nl = strstr(p, "\r\n")) != NULL;
	     p = nl + 2)
		if (nl - p > 510)
			fail_msg("reply line of %td bytes", nl - p);
	assert_non_null(strstr(b.data, "550-5.0.0 "));
	buf_release(&b);
	(void)state;
}

static void
test_ehlo_list(void **state)
{
	struct smtp_ehlo_opts o = { .hostname = "mx.example", .max_size = 104857600,
		.starttls = true, .requiretls = false };
	struct buf b;

	buf_init(&b, 4096);
	smtp_ehlo_format(&b, &o);
	assert_string_equal(b.data,
	    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n"
	    "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	    "250-LIMITS RCPTMAX=1000\r\n250 SMTPUTF8\r\n");
	buf_reset(&b);
	o.starttls = false;
	o.requiretls = true;
	o.submission = true;
	o.auth_mechs = true;
	o.now_ns = 0;
	smtp_ehlo_format(&b, &o);
	assert_string_equal(b.data,
	    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n"
	    "250-REQUIRETLS\r\n250-AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 "
	    "SCRAM-SHA-1-PLUS SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN\r\n"
	    "250-FUTURERELEASE 5184000 1970-03-02T00:00:00Z\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	    "250-LIMITS RCPTMAX=1000\r\n250 SMTPUTF8\r\n");
	buf_reset(&b);
	o.auth_mechs = false;
	smtp_ehlo_format(&b, &o);
	assert_non_null(strstr(b.data, "250-AUTH \r\n"));
	buf_release(&b);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verb),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_addr_limits),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_mail_values),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_ehlo_auth),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_data_flags),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_ehlo_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
