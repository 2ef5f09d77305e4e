/*
 * test_imap_search.c: every SEARCH key against a table of synthetic
 * messages (flags, keywords, sizes, dates, headers, decoded bodies,
 * nested message/rfc822, sequence sets, "$", MODSEQ), that flag-only
 * searches never touch message contents, hostile criteria (deep nesting,
 * unbalanced parentheses, huge numbers, bad dates, 8-bit garbage,
 * truncated literals), RETURN options and ESEARCH/SEARCH lines.
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
#include "maildir/store.h"
#include "message/message.h"
#include "imap/imap_search.h"
#include "lib/banned.h"

struct tmsg {
	uint32_t uid;
	uint32_t flags;
	const char *keywords;
	int64_t modseq, size, received, savedate;
	const char *text;
	struct message_part *root; /* parsed on first use */
	int nbytes, ntree, nheader; /* accessor calls */
};

static struct tmsg msgs[] = {
	{ 1, STORE_F_SEEN | STORE_F_ANSWERED, "custom work", 5, 100,
	    1704189600 /* 2024-01-02 10:00 */, 0,
	    "From: Alice <alice@example.org>\r\n"
	    "To: bob@example.com\r\n"
	    "Subject: Hello World\r\n"
	    "Date: Tue, 02 Jan 2024 23:30:00 -0500\r\n"
	    "\r\n"
	    "The quick brown fox\r\n",
	    NULL, 0, 0, 0 },
	{ 5, STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_FORWARDED, NULL, 10,
	    2000, 1704412800 /* 2024-01-05 00:00 */,
	    1706745600 /* 2024-02-01 */,
	    "From: x@example.org\r\n"
	    "Subject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n"
	    "Cc: carol@example.net\r\n"
	    "Bcc: dave@example.net\r\n"
	    "X-Spam: yes\r\n"
	    "Content-Type: multipart/alternative; boundary=b\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "caf=C3=A9 na=C3=AFve\r\n"
	    "--b\r\n"
	    "Content-Type: text/html\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "PGI+Ym9sZDwvYj4=\r\n"
	    "--b--\r\n",
	    NULL, 0, 0, 0 },
	{ 9, STORE_F_DRAFT, "$label1", 1, 50,
	    1704067199 /* 2023-12-31 23:59:59 */, 0,
	    "From: eve@example.org\r\n"
	    "Subject: empty\r\n"
	    "Date: Sun, 31 Dec 2023 23:00:00 +0000\r\n"
	    "Content-Type: multipart/mixed; boundary=m\r\n"
	    "\r\n"
	    "--m\r\n"
	    "\r\n"
	    "nothing here\r\n"
	    "--m\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "\r\n"
	    "Subject: inner\r\n"
	    "\r\n"
	    "nested secret\r\n"
	    "--m--\r\n",
	    NULL, 0, 0, 0 },
};

static const uint32_t saved[] = { 9, 5 };

static const struct imap_search_ctx ctx = {
	3, 9, saved, 2, 1704412800 + 3600, true,
};

static int
get_bytes(void *arg, struct span *out)
{
	struct tmsg *t = arg;

	t->nbytes++;
	*out = span_of_cstr(t->text);
	return 0;
}

/* The header section alone, as the session's get_header gives it. */
static int
get_header(void *arg, struct span *out)
{
	struct tmsg *t = arg;
	struct span all = span_of_cstr(t->text);

	t->nheader++;
	*out = span_of(all.p, message_header_len(all));
	return 0;
}

static bool with_header; /* run() passes get_header */

static int
get_tree(void *arg, const struct message_part **out)
{
	struct tmsg *t = arg;
	const char *why = NULL;

	t->ntree++;
	if (t->root == NULL &&
	    message_parse(t->text, strlen(t->text), &t->root, &why) == -1)
		return -1;
	*out = t->root;
	return 0;
}

/* Run query; the UIDs that match, as "1,5". */
static int
run(const char *query, struct buf *res, const char **why)
{
	struct scan s = scan_of(span_of_cstr(query));
	struct imap_search *q = NULL;

	buf_reset(res);
	if (imap_search_parse(&s, &ctx, &q, why) == -1)
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(msgs); i++) {
		struct imap_search_msg m = {
			(uint32_t)i + 1, msgs[i].uid, msgs[i].flags,
			msgs[i].keywords, msgs[i].modseq, msgs[i].size,
			msgs[i].received, msgs[i].savedate, get_bytes,
			get_tree, &msgs[i], with_header ? get_header : NULL,
		};

		if (imap_search_match(q, &m))
			buf_addf(res, "%s%u", res->len > 0 ? "," : "",
			    msgs[i].uid);
	}
	imap_search_free(q);
	return 0;
}

static const struct {
	const char *q;
	const char *want;
} match_cases[] = {
	{ "ALL", "1,5,9" },
	{ "all", "1,5,9" },
	{ "SEEN", "1" },
	{ "UNSEEN", "5,9" },
	{ "ANSWERED", "1" },
	{ "UNANSWERED", "5,9" },
	{ "DELETED", "5" },
	{ "UNDELETED", "1,9" },
	{ "DRAFT", "9" },
	{ "UNDRAFT", "1,5" },
	{ "FLAGGED", "5" },
	{ "UNFLAGGED", "1,9" },
	{ "NEW", "" },
	{ "RECENT", "" },
	{ "OLD", "1,5,9" },
	{ "KEYWORD custom", "1" },
	{ "KEYWORD CUSTOM", "1" },
	{ "KEYWORD wor", "" },
	{ "KEYWORD $Forwarded", "5" },
	{ "UNKEYWORD $forwarded", "1,9" },
	{ "KEYWORD $label1", "9" },
	{ "UNKEYWORD work", "5,9" },
	{ "KEYWORD $Junk", "" },
	{ "LARGER 100", "5" },
	{ "SMALLER 100", "9" },
	{ "LARGER 0", "1,5,9" },
	{ "SMALLER 9223372036854775807", "1,5,9" },
	{ "BEFORE 2-Jan-2024", "9" },
	{ "ON 2-Jan-2024", "1" },
	{ "ON 02-jan-2024", "1" },
	{ "SINCE 2-Jan-2024", "1,5" },
	{ "ON \"5-Jan-2024\"", "5" },
	{ "SINCE 1-Feb-2024", "" },
	{ "SENTON 2-Jan-2024", "1" },   /* the day as written, -0500 */
	{ "SENTBEFORE 1-Jan-2024", "9" },
	{ "SENTSINCE 1-Jan-2024", "1" }, /* 5 has no Date */
	{ "SENTON 29-Feb-2024", "" },
	{ "SAVEDON 1-Feb-2024", "5" },
	{ "SAVEDBEFORE 2-Jan-2024", "9" },
	{ "SAVEDSINCE 2-Jan-2024", "1,5" },
	{ "SAVEDATESUPPORTED", "1,5,9" },
	{ "YOUNGER 7200", "5" },
	{ "OLDER 7200", "1,9" },
	{ "MODSEQ 5", "1,5" },
	{ "MODSEQ \"/flags/\\\\seen\" all 6", "5" },
	{ "MODSEQ \"/flags/$x\" PRIV 1", "1,5,9" },
	{ "MODSEQ 0", "1,5,9" },
	{ "FROM alice", "1" },
	{ "FROM ALICE@EXAMPLE", "1" },
	{ "TO bob", "1" },
	{ "CC carol", "5" },
	{ "BCC dave", "5" },
	{ "SUBJECT hello", "1" },
	{ "SUBJECT \"r\xc3\xa9sum\xc3\xa9\"", "5" },
	{ "SUBJECT {5}\r\nhello", "1" },
	{ "SUBJECT {5+}\r\nHELLO", "1" },
	{ "SUBJECT {0}\r\n", "1,5,9" },
	{ "HEADER X-Spam yes", "5" },
	{ "HEADER x-spam \"\"", "5" },
	{ "HEADER Date \"\"", "1,9" },
	{ "HEADER Subject inner", "" },
	{ "BODY fox", "1" },
	{ "BODY FOX", "1" },
	{ "BODY \"na\xc3\xafve\"", "5" },
	{ "BODY bold", "5" },
	{ "BODY secret", "9" },
	{ "BODY alice", "" },
	{ "TEXT alice", "1" },
	{ "TEXT quick", "1" },
	{ "TEXT x-spam", "5" },
	{ "1", "1" },
	{ "2:3", "5,9" },
	{ "*", "9" },
	{ "2:*", "5,9" },
	{ "3:1", "1,5,9" },
	{ "1,3", "1,9" },
	{ "4", "" },
	{ "UID 5", "5" },
	{ "UID 1:5", "1,5" },
	{ "UID *", "9" },
	{ "UID 6:*", "9" },
	{ "UID 10:20", "" },
	{ "UID 4294967295", "" },
	{ "$", "5,9" },
	{ "UID $", "5,9" },
	{ "NOT SEEN", "5,9" },
	{ "NOT NOT SEEN", "1" },
	{ "OR SEEN DRAFT", "1,9" },
	{ "(SEEN ANSWERED)", "1" },
	{ "((SEEN) (ANSWERED))", "1" },
	{ "NOT (OR SEEN (DELETED))", "9" },
	{ "NOT (SEEN OR DELETED DRAFT)", "1,5,9" },
	{ "OR (SEEN) OR DELETED DRAFT", "1,5,9" },
	{ "CHARSET UTF-8 SUBJECT hello", "1" },
	{ "charset us-ascii ALL", "1,5,9" },
	{ "CHARSET \"utf-8\" ALL", "1,5,9" },
	{ "SEEN FLAGGED", "" },
	{ "UNSEEN UNDELETED", "9" },
	{ "BODY fox SEEN", "1" },
};

static void
test_match(void **state)
{
	struct buf res;

	buf_init(&res, 4096);
	/* Once from the whole message, once with header keys given only
	 * the header section: the same answers. */
	for (int h = 0; h < 2; h++) {
		with_header = h == 1;
		for (size_t i = 0; i < ARRAY_LEN(match_cases); i++) {
			const char *why = NULL;

			if (run(match_cases[i].q, &res, &why) == -1)
				fail_msg("case %zu (%s, header %d): parse: %s",
				    i, match_cases[i].q, h, why);
			if (strcmp(res.data, match_cases[i].want) != 0)
				fail_msg("case %zu (%s, header %d): got \"%s\" "
					 "want \"%s\"",
				    i, match_cases[i].q, h, res.data,
				    match_cases[i].want);
		}
	}
	with_header = false;
	buf_release(&res);
	(void)state;
}

/* With get_header, header keys never read the whole message. */
static void
test_header_only(void **state)
{
	static const char *const hdr[] = { "FROM alice", "SUBJECT nothing",
		"OR TO bob CC carol", "HEADER X-Custom value" };
	struct buf res;
	const char *why = NULL;

	buf_init(&res, 4096);
	with_header = true;
	for (size_t i = 0; i < ARRAY_LEN(hdr); i++) {
		for (size_t j = 0; j < ARRAY_LEN(msgs); j++)
			msgs[j].nbytes = msgs[j].nheader = 0;
		assert_int_equal(run(hdr[i], &res, &why), 0);
		for (size_t j = 0; j < ARRAY_LEN(msgs); j++) {
			if (msgs[j].nbytes != 0)
				fail_msg("case %zu read message %zu", i, j);
			if (msgs[j].nheader == 0)
				fail_msg("case %zu: no header of %zu", i, j);
		}
	}
	with_header = false;
	buf_release(&res);
	(void)state;
}

/* Flag, size, date and set keys never read the message. */
static void
test_lazy(void **state)
{
	static const char *const cheap[] = { "SEEN", "OR UID 1 LARGER 5",
		"NOT KEYWORD x", "SINCE 1-Jan-2020 MODSEQ 2", "1:* UNDELETED",
		"SEEN BODY fox" /* message 5 and 9 fail SEEN first */ };
	struct buf res;
	const char *why = NULL;
	struct scan s;
	struct imap_search *q;

	buf_init(&res, 4096);
	for (size_t i = 0; i < ARRAY_LEN(cheap); i++) {
		for (size_t j = 0; j < ARRAY_LEN(msgs); j++)
			msgs[j].nbytes = msgs[j].ntree = 0;
		assert_int_equal(run(cheap[i], &res, &why), 0);
		for (size_t j = 0; j < ARRAY_LEN(msgs); j++)
			if ((msgs[j].nbytes != 0 || msgs[j].ntree != 0) &&
			    !(i == 5 && j == 0))
				fail_msg("case %zu read message %zu", i, j);
	}
	s = scan_of(span_of_cstr("SEEN"));
	assert_int_equal(imap_search_parse(&s, &ctx, &q, &why), 0);
	assert_int_equal(imap_search_needs(q), 0);
	assert_false(imap_search_has_modseq(q));
	imap_search_free(q);
	s = scan_of(span_of_cstr("OR MODSEQ 1 SENTON 1-Jan-2020"));
	assert_int_equal(imap_search_parse(&s, &ctx, &q, &why), 0);
	assert_int_equal(imap_search_needs(q), IMAP_SEARCH_NEED_TREE);
	assert_true(imap_search_has_modseq(q));
	imap_search_free(q);
	s = scan_of(span_of_cstr("HEADER a b"));
	assert_int_equal(imap_search_parse(&s, &ctx, &q, &why), 0);
	assert_int_equal(imap_search_needs(q), IMAP_SEARCH_NEED_BYTES);
	imap_search_free(q);
	buf_release(&res);
	(void)state;
}

static const char *const bad_cases[] = {
	"",
	" ",
	"FOO",
	"(SEEN",
	"SEEN)",
	"()",
	"(",
	")",
	"NOT",
	"NOT ",
	"OR SEEN",
	"OR SEEN ",
	"SEEN ",
	"SEEN  FLAGGED",
	" SEEN",
	"LARGER",
	"LARGER x",
	"LARGER 99999999999999999999",
	"LARGER 9223372036854775808",
	"LARGER -1",
	"LARGER 1x",
	"BEFORE",
	"BEFORE 32-Jan-2024",
	"BEFORE 29-Feb-2023",
	"BEFORE 0-Jan-2024",
	"BEFORE 1-Foo-2024",
	"BEFORE 1-Jan-24",
	"BEFORE 1-Jan-20245",
	"BEFORE 123-Jan-2024",
	"ON \"1-Jan-2024",
	"ON 1-Jan-2024\"",
	"SINCE 1/1/2024",
	"0",
	"1:0",
	"1,",
	",1",
	"1:",
	"UID 0",
	"UID",
	"UID x",
	"4294967296",
	"$1",
	"$,1",
	"SUBJECT",
	"SUBJECT {10}\r\nab",
	"SUBJECT {2}\r\n",
	"SUBJECT {2}ab",
	"SUBJECT {99999999999}\r\nab",
	"SUBJECT \"ab",
	"SUBJECT \"a\\b\"",
	"SUBJECT \"a\r\nb\"",
	"SUBJECT \xff\xfe",
	"SUBJECT \"\xc3\"",
	"HEADER",
	"HEADER X",
	"HEADER \"\" x",
	"KEYWORD",
	"KEYWORD \\Seen",
	"KEYWORD (x)",
	"YOUNGER 0",
	"OLDER x",
	"MODSEQ",
	"MODSEQ \"/flags/x\" bogus 5",
	"MODSEQ \"/flags/x\" 5",
	"MODSEQ -1",
	"CHARSET",
	"CHARSET UTF-8",
	"CHARSET \xff ALL",
	"ALL\0SEEN",
	"\x80\x81\x82",
	"SEEN\r\n",
};

static void
test_bad(void **state)
{
	struct buf res;

	buf_init(&res, 4096);
	for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
		const char *why = NULL;
		struct scan s = scan_of(span_of(bad_cases[i],
		    strlen(bad_cases[i]) + (i == ARRAY_LEN(bad_cases) - 3 ?
							 5 : 0)));
		struct imap_search *q = NULL;

		if (imap_search_parse(&s, &ctx, &q, &why) != -1 ||
		    why == NULL)
			fail_msg("case %zu (%s) accepted", i, bad_cases[i]);
	}
	buf_release(&res);
	(void)state;
}

static void
test_badcharset(void **state)
{
	struct scan s = scan_of(span_of_cstr("CHARSET KOI8-R ALL"));
	struct imap_search *q = NULL;
	const char *why = NULL;

	assert_int_equal(imap_search_parse(&s, &ctx, &q, &why), -1);
	assert_ptr_equal(why, imap_search_err_badcharset);
	(void)state;
}

/* Limits: nesting, key count, set size. */
static void
test_limits(void **state)
{
	struct buf q;
	struct buf res;
	const char *why = NULL;
	int n;

	buf_init(&q, BUF_NOMAX);
	buf_init(&res, 4096);
	for (n = 0; n < IMAP_SEARCH_DEPTH_MAX - 1; n++)
		buf_addc(&q, '(');
	buf_adds(&q, "SEEN");
	for (n = 0; n < IMAP_SEARCH_DEPTH_MAX - 1; n++)
		buf_addc(&q, ')');
	assert_int_equal(run(q.data, &res, &why), 0);
	assert_string_equal(res.data, "1");
	buf_reset(&q);
	for (n = 0; n < 100000; n++)
		buf_addc(&q, '(');
	assert_int_equal(run(q.data, &res, &why), -1);
	buf_reset(&q);
	for (n = 0; n < 100000; n++)
		buf_adds(&q, "NOT ");
	buf_adds(&q, "SEEN");
	assert_int_equal(run(q.data, &res, &why), -1);
	buf_reset(&q);
	for (n = 0; n < 100000; n++)
		buf_adds(&q, "OR ");
	assert_int_equal(run(q.data, &res, &why), -1);
	buf_reset(&q);
	for (n = 0; n < IMAP_SEARCH_KEYS_MAX; n++)
		buf_adds(&q, n > 0 ? " ALL" : "ALL");
	assert_int_equal(run(q.data, &res, &why), 0);
	buf_adds(&q, " ALL");
	assert_int_equal(run(q.data, &res, &why), -1);
	buf_reset(&q);
	for (n = 0; n < IMAP_SEARCH_RANGES_MAX + 1; n++)
		buf_addf(&q, n > 0 ? ",%d" : "%d", 2 * n + 1);
	assert_int_equal(run(q.data, &res, &why), -1);
	buf_reset(&q);
	buf_adds(&q, "SUBJECT {102401}\r\n");
	for (n = 0; n < 102401; n++)
		buf_addc(&q, 'a');
	assert_int_equal(run(q.data, &res, &why), -1);
	buf_release(&q);
	buf_release(&res);
	(void)state;
}

static const struct {
	const char *in;
	int rc;
	bool present;
	unsigned opts;
	const char *rest;
} ret_cases[] = {
	{ "ALL", 0, false, 0, "ALL" },
	{ "RETURN () ALL", 0, true, IMAP_SEARCH_RET_ALL, "ALL" },
	{ "RETURN (MIN MAX) ALL", 0, true,
	    IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX, "ALL" },
	{ "return (count save all) 1", 0, true,
	    IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_SAVE | IMAP_SEARCH_RET_ALL,
	    "1" },
	{ "RETURN (SAVE) SEEN", 0, true, IMAP_SEARCH_RET_SAVE, "SEEN" },
	{ "RETURN (PARTIAL 1:5) ALL", -1, false, 0, NULL },
	{ "RETURN (MIN", -1, false, 0, NULL },
	{ "RETURN MIN ALL", -1, false, 0, NULL },
	{ "RETURN (MIN  MAX) ALL", -1, false, 0, NULL },
};

static void
test_return(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(ret_cases); i++) {
		struct scan s = scan_of(span_of_cstr(ret_cases[i].in));
		unsigned opts = 99;
		bool present = true;
		const char *why = NULL;
		int rc = imap_search_return_parse(&s, &opts, &present, &why);

		if (rc != ret_cases[i].rc ||
		    (rc == 0 && (present != ret_cases[i].present ||
			opts != ret_cases[i].opts ||
			!span_eq_cstr(scan_rest(&s), ret_cases[i].rest))))
			fail_msg("case %zu: rc %d opts %u", i, rc, opts);
	}
	(void)state;
}

static void
test_format(void **state)
{
	static const uint32_t v[] = { 1, 2, 3, 5, 9 };
	uint32_t many[250];
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	imap_search_format_esearch(&b, "x", true,
	    IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX | IMAP_SEARCH_RET_ALL |
		IMAP_SEARCH_RET_COUNT,
	    v, ARRAY_LEN(v), 0);
	assert_string_equal(b.data,
	    "* ESEARCH (TAG \"x\") UID MIN 1 MAX 9 ALL 1:3,5,9 COUNT 5\r\n");
	buf_reset(&b);
	imap_search_format_esearch(&b, "A\"1", false,
	    IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_COUNT, v, 0, 7);
	assert_string_equal(b.data,
	    "* ESEARCH (TAG \"A\\\"1\") COUNT 0\r\n");
	buf_reset(&b);
	imap_search_format_esearch(&b, "t", false, IMAP_SEARCH_RET_ALL, v, 2,
	    42);
	assert_string_equal(b.data,
	    "* ESEARCH (TAG \"t\") ALL 1:2 MODSEQ 42\r\n");
	buf_reset(&b);
	imap_search_format_esearch(&b, "t", false, IMAP_SEARCH_RET_SAVE, v, 2,
	    0);
	assert_string_equal(b.data, "");
	imap_search_format_search(&b, v, 0, 0);
	assert_string_equal(b.data, "* SEARCH\r\n");
	buf_reset(&b);
	imap_search_format_search(&b, v, 3, 12);
	assert_string_equal(b.data, "* SEARCH 1 2 3 (MODSEQ 12)\r\n");
	buf_reset(&b);
	for (size_t i = 0; i < ARRAY_LEN(many); i++)
		many[i] = (uint32_t)i + 1;
	imap_search_format_search(&b, many, ARRAY_LEN(many), 0);
	{
		size_t lines = 0;

		for (size_t i = 0; i < b.len; i++)
			lines += b.data[i] == '\n';
		assert_int_equal(lines, 3);
	}
	buf_release(&b);
	(void)state;
}

static int
teardown(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(msgs); i++) {
		message_part_free(msgs[i].root);
		msgs[i].root = NULL;
	}
	(void)state;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_lazy),
		cmocka_unit_test(test_header_only),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_badcharset),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_return),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
