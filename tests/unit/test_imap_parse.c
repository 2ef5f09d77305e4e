/*
 * test_imap_parse.c: the IMAP command parser: literal announcements,
 * tags, atoms and strings (quoted, literal, NIL), sequence sets, flag
 * lists, dates, and the APPEND literal classifier, with hostile input:
 * unbalanced parentheses, huge and malformed literals, NUL and 8-bit
 * garbage, bare CR/LF, deep nesting, limits at max-1/max/max+1, and a
 * byte-at-a-time check that prefixes never parse as more than the whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "maildir/store.h"
#include "lib/banned.h"

static void
test_literal_hdr(void **state)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t size;
		bool sync, binary;
	} cases[] = {
		{ "a LOGIN {5}", 1, 5, true, false },
		{ "a LOGIN {5+}", 1, 5, false, false },
		{ "a APPEND x ~{12}", 1, 12, true, true },
		{ "a LOGIN {}", -1, 0, false, false },
		{ "a LOGIN {99999999999}", -1, 0, false, false },
		{ "a LOGIN {4294967296}", -1, 0, false, false },
		{ "a LOGIN {4294967295}", 1, 4294967295u, true, false },
		{ "a LOGIN {5-}", 0, 0, false, false },
		{ "a LOGIN x}", 0, 0, false, false },
		{ "a LOGIN {x}", 0, 0, false, false },
		{ "", 0, 0, false, false },
		{ "}", 0, 0, false, false },
		{ "{1}", 1, 1, true, false },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct imap_literal_hdr h;
		const char *why = NULL;
		int rc = imap_parse_literal_hdr(span_of_cstr(cases[i].in), &h,
		    &why);

		if (rc != cases[i].rc ||
		    (rc == 1 && (h.size != cases[i].size ||
				    h.sync != cases[i].sync ||
				    h.binary != cases[i].binary)))
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
	}
	(void)state;
}

static void
test_strings(void **state)
{
	static const struct {
		const char *in;
		size_t len; /* 0: strlen */
		int rc;
		const char *want;
	} cases[] = {
		{ "atom", 0, 0, "atom" },
		{ "\"quoted \\\"x\\\" \\\\\"", 0, 0, "quoted \"x\" \\" },
		{ "\"\"", 0, 0, "" },
		{ "{3}\r\nabc", 0, 0, "abc" },
		{ "{3+}\r\nabc", 0, 0, "abc" },
		{ "{3}\r\nab", 0, -1, NULL },       /* short literal */
		{ "{3}abc", 0, -1, NULL },          /* no CRLF */
		{ "{3}\r\na\0c", 9, -1, NULL },     /* NUL in a string */
		{ "\"unterminated", 0, -1, NULL },
		{ "\"bare\rcr\"", 0, -1, NULL },
		{ "\"bare\nlf\"", 0, -1, NULL },
		{ "\"bad \\x escape\"", 0, -1, NULL },
		{ "\"\xff\xfe\"", 0, -1, NULL },    /* invalid UTF-8 */
		{ "\"caf\xc3\xa9\"", 0, 0, "caf\xc3\xa9" },
		{ "(", 0, -1, NULL },
		{ ")", 0, -1, NULL },
		{ "", 0, -1, NULL },
		{ "~{3}\r\nabc", 0, 0, "~" },      /* "~" is an atom */
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct imap_parser p;
		char *out = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		int rc;

		imap_parser_init(&p, span_of(cases[i].in, len));
		rc = imap_parse_astring(&p, &out, NULL);
		if (rc != cases[i].rc ||
		    (rc == 0 && strcmp(out, cases[i].want) != 0))
			fail_msg("case %zu: rc %d out %s why %s", i, rc,
			    out ? out : "", p.why ? p.why : "");
		if (rc == -1 && p.why == NULL)
			fail_msg("case %zu: no reason", i);
		imap_parser_release(&p);
	}
	(void)state;
}

static void
test_seqset(void **state)
{
	static const struct {
		const char *in;
		int rc;
		size_t n;
		bool dollar;
		uint32_t probe;
		bool in_set; /* probe with star = 100 */
	} cases[] = {
		{ "1", 0, 1, false, 1, true },
		{ "1:3,5", 0, 2, false, 4, false },
		{ "5:3", 0, 1, false, 4, true },
		{ "*", 0, 1, false, 100, true },
		{ "7:*", 0, 1, false, 50, true },
		{ "$", 0, 0, true, 0, false },
		{ "0", -1, 0, false, 0, false },
		{ "1:0", -1, 0, false, 0, false },
		{ "", -1, 0, false, 0, false },
		{ ",", -1, 0, false, 0, false },
		{ "1,", -1, 0, false, 0, false },
		{ "4294967296", -1, 0, false, 0, false },
		{ "4294967295", 0, 1, false, 4294967295u, true },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct imap_parser p;
		struct imap_seqset set;
		int rc;

		imap_parser_init(&p, span_of_cstr(cases[i].in));
		rc = imap_parse_seqset(&p, &set);
		if (rc == 0 && cases[i].in[0] != '$' && cases[i].rc == 0 &&
		    !imap_parse_eof(&p))
			rc = -1;
		if (rc == 0 && cases[i].rc == -1 && imap_parse_eof(&p))
			fail_msg("case %zu (%s) accepted", i, cases[i].in);
		if (cases[i].rc == 0 &&
		    (rc != 0 || set.n != cases[i].n ||
			set.dollar != cases[i].dollar ||
			(!set.dollar &&
			    imap_seqset_contains(&set, cases[i].probe, 100) !=
				cases[i].in_set)))
			fail_msg("case %zu (%s): rc %d n %zu", i, cases[i].in, rc,
			    set.n);
		if (rc == 0)
			imap_seqset_release(&set);
		imap_parser_release(&p);
	}
	(void)state;
}

static void
test_flags(void **state)
{
	static const struct {
		const char *in;
		int rc;
		uint32_t flags;
		const char *kw;
	} cases[] = {
		{ "()", 0, 0, "" },
		{ "(\\Seen)", 0, STORE_F_SEEN, "" },
		{ "(\\seen \\DELETED $Junk Foo bar)", 0,
		    STORE_F_SEEN | STORE_F_DELETED | STORE_F_JUNK, "foo bar" },
		{ "(\\Bogus)", -1, 0, NULL },
		{ "(\\Seen", -1, 0, NULL },
		{ "\\Seen)", -1, 0, NULL },
		{ "((\\Seen))", -1, 0, NULL },
		{ "(a\\b)", -1, 0, NULL },
		{ "(\x01)", -1, 0, NULL },
		{ "(\xc3\xa9)", -1, 0, NULL },
		{ "( )", -1, 0, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct imap_parser p;
		struct imap_flags f;
		int rc;

		imap_parser_init(&p, span_of_cstr(cases[i].in));
		rc = imap_parse_flag_list(&p, &f);
		if (rc != cases[i].rc ||
		    (rc == 0 && (f.flags != cases[i].flags ||
				    strcmp(f.keywords, cases[i].kw) != 0)))
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
		imap_parser_release(&p);
	}
	(void)state;
}

static void
test_dates(void **state)
{
	static const struct {
		const char *in;
		int rc;
		int64_t t;
	} cases[] = {
		{ "\"02-Jan-2006 15:04:05 -0700\"", 0, 1136239445 },
		{ "\" 2-Jan-2006 15:04:05 -0700\"", 0, 1136239445 },
		{ "\"2-Jan-2006 15:04:05 +0000\"", 0, 1136214245 },
		{ "\"02-Foo-2006 15:04:05 -0700\"", -1, 0 },
		{ "\"32-Jan-2006 15:04:05 -0700\"", -1, 0 },
		{ "\"02-Jan-2006 25:04:05 -0700\"", -1, 0 },
		{ "\"02-Jan-2006 15:04:05\"", -1, 0 },
		{ "02-Jan-2006 15:04:05 -0700", -1, 0 },
		{ "\"", -1, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct imap_parser p;
		int64_t t = 0;
		int rc;

		imap_parser_init(&p, span_of_cstr(cases[i].in));
		rc = imap_parse_date_time(&p, &t);
		if (rc != cases[i].rc || (rc == 0 && t != cases[i].t))
			fail_msg("case %zu (%s): rc %d t %lld", i, cases[i].in,
			    rc, (long long)t);
		imap_parser_release(&p);
	}
	(void)state;
}

static void
test_append_classify(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *mbox;
	} cases[] = {
		{ "a APPEND Inbox {10}", 1, "Inbox" },
		{ "a APPEND Inbox (\\Seen) {10+}", 1, "Inbox" },
		{ "a APPEND Inbox (\\Seen) \"02-Jan-2006 15:04:05 -0700\" ~{10}",
		    1, "Inbox" },
		{ "a APPEND Inbox UTF8 (~{10}", 1, "Inbox" },
		{ "a APPEND {5}", 0, NULL },
		{ "a APPEND {5}\r\nInbox {7}", 1, "Inbox" },
		{ "a APPEND Inbox {3}\r\n (\\Seen) {4}", 1, NULL },
		{ "a LOGIN {5}", -1, NULL },
		{ "a APPEND Inbox (\\Seen {5}", -1, NULL },
		{ "a APPEND Inbox ((((((((((((( {5}", -1, NULL },
		{ "", -1, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *mbox = NULL;
		int rc = imap_append_literal_is_msg(span_of_cstr(cases[i].in),
		    false, &mbox);

		if (rc != cases[i].rc ||
		    (cases[i].mbox != NULL &&
			(mbox == NULL || strcmp(mbox, cases[i].mbox) != 0)) ||
		    (cases[i].mbox == NULL && mbox != NULL))
			fail_msg("case %zu (%s): rc %d mbox %s", i, cases[i].in,
			    rc, mbox ? mbox : "(null)");
		free(mbox);
	}
	(void)state;
}

/* Hostile sizes and nesting: never crash, never read past the input. */
static void
test_hostile(void **state)
{
	struct buf b;
	struct imap_parser p;
	struct imap_flags f;
	char *s;

	buf_init(&b, BUF_NOMAX);
	for (int i = 0; i < 10000; i++)
		buf_addc(&b, '(');
	imap_parser_init(&p, span_of_buf(&b));
	assert_int_equal(imap_parse_flag_list(&p, &f), -1);
	assert_int_equal(imap_parse_astring(&p, &s, NULL), -1);
	imap_parser_release(&p);
	buf_reset(&b);
	/* An atom at IMAP_ATOM_MAX and one past it. */
	for (int i = 0; i < IMAP_ATOM_MAX + 1; i++)
		buf_addc(&b, 'a');
	imap_parser_init(&p, span_of(b.data, IMAP_ATOM_MAX));
	assert_int_equal(imap_parse_astring(&p, &s, NULL), 0);
	imap_parser_release(&p);
	imap_parser_init(&p, span_of_buf(&b));
	assert_int_equal(imap_parse_astring(&p, &s, NULL), -1);
	imap_parser_release(&p);
	/* A literal announcing more than is there. */
	imap_parser_init(&p, span_of_cstr("{4294967295}\r\nabc"));
	assert_int_equal(imap_parse_astring(&p, &s, NULL), -1);
	imap_parser_release(&p);
	/* Too many ranges. */
	buf_reset(&b);
	for (int i = 0; i < IMAP_SEQ_RANGES_MAX + 1; i++)
		buf_adds(&b, i ? ",1" : "1");
	{
		struct imap_seqset set;

		imap_parser_init(&p, span_of_buf(&b));
		assert_int_equal(imap_parse_seqset(&p, &set), -1);
		imap_parser_release(&p);
	}
	buf_release(&b);
	(void)state;
}

/* Every prefix of a valid command parses no further than the whole. */
static void
test_byte_at_a_time(void **state)
{
	const char *cmd = "a1 APPEND \"Inbox\" (\\Seen foo) "
			  "\" 2-Jan-2006 15:04:05 +0100\" {12}";
	size_t n = strlen(cmd);

	for (size_t i = 0; i <= n; i++) {
		char *mbox = NULL;
		int rc = imap_append_literal_is_msg(span_of(cmd, i), false, &mbox);

		if (i < n && rc == 1)
			fail_msg("prefix %zu classified as message", i);
		if (i == n && rc != 1)
			fail_msg("whole command not classified");
		free(mbox);
	}
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_hdr),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_append_classify),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_byte_at_a_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
