/*
 * test_cmd_store.c: the pure format helpers of src/cmd_store.c: Maildir
 * info letters and dovecot-keywords, line end conversion, mbox From line
 * times, keyword validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "cmd_store.h"
#include "lib/buf.h"
#include "maildir/store.h"
#include "lib/banned.h"

/* The handlers' collaborators from src/cli.h. */
struct cli_globals cli = { .prog = "test" };

void
cli_errorf(const char *fmt, ...)
{
	(void)fmt;
}

int
cli_usage(const char *words, const char *args)
{
	(void)words;
	(void)args;
	return CLI_USAGE;
}

static const struct {
	const char *name;
	uint32_t want_flags;
	const char *want_kw;
} info_cases[] = {
	{ "1700000000.x.host", 0, "" },
	{ "1700000000.x.host:2,", 0, "" },
	{ "1.x:2,S", STORE_F_SEEN, "" },
	/* spec/store.md 18.2: P is ignored. */
	{ "1.x:2,DFPRST", STORE_F_DRAFT | STORE_F_FLAGGED | STORE_F_ANSWERED |
	      STORE_F_SEEN | STORE_F_DELETED, "" },
	{ "1.x:2,P", 0, "" },
	{ "1.x:2,a", STORE_F_FORWARDED, "" },
	{ "1.x:2,b", 0, "custom" },
	{ "1.x:2,bc", STORE_F_JUNK, "custom" },
	{ "1.x:2,d", 0, "" },       /* invalid keyword dropped */
	{ "1.x:2,z", 0, "" },       /* unassigned letter */
	{ "1.x:2,e", STORE_F_NOTJUNK, "" },
	{ "1.x:2,f", STORE_F_MDNSENT, "" },
	{ "1.x:2,XYZ", 0, "" },     /* unknown letters ignored */
};

static void
test_maildir_info_parse(void **state)
{
	struct cmd_store_kwmap m;
	struct buf kw;

	memset(&m, 0, sizeof(m));
	cmd_store_kwmap_parse(&m, span_of_cstr("0 $Forwarded\n1 Custom\r\n"
					       "2 junk\n3 bad(kw\n4 NonJunk\n"
					       "5 mdnsent\n99 toohigh\nnonsense\n"));
	buf_init(&kw, 4096);
	for (size_t i = 0; i < ARRAY_LEN(info_cases); i++) {
		uint32_t flags = 99;

		buf_reset(&kw);
		cmd_store_maildir_info_parse(info_cases[i].name, &m, &flags, &kw);
		if (flags != info_cases[i].want_flags ||
		    strcmp(kw.data, info_cases[i].want_kw) != 0)
			fail_msg("case %zu %s: flags %u kw \"%s\"", i,
			    info_cases[i].name, flags, kw.data);
	}
	buf_release(&kw);
	cmd_store_kwmap_release(&m);
	(void)state;
}

static void
test_maildir_info_format(void **state)
{
	struct cmd_store_kwmap m;
	struct buf out, kwf;

	memset(&m, 0, sizeof(m));
	buf_init(&out, 256);
	buf_init(&kwf, 4096);
	cmd_store_maildir_info_format(STORE_F_SEEN | STORE_F_DRAFT |
		STORE_F_FLAGGED | STORE_F_ANSWERED | STORE_F_DELETED, "", &m,
	    &out);
	assert_string_equal(out.data, ":2,DFRST");
	buf_reset(&out);
	cmd_store_maildir_info_format(STORE_F_JUNK, "zeta alpha", &m, &out);
	assert_string_equal(out.data, ":2,abc");
	buf_reset(&out);
	cmd_store_maildir_info_format(STORE_F_FORWARDED, "alpha", &m, &out);
	/* spec/store.md 18.1: no P; $Forwarded has a keyword letter. */
	assert_string_equal(out.data, ":2,cd");
	cmd_store_kwmap_format(&m, &kwf);
	assert_string_equal(kwf.data,
	    "0 $Junk\n1 zeta\n2 alpha\n3 $Forwarded\n");
	/* More keywords than letters: the rest are left out. */
	buf_reset(&out);
	for (int i = 0; i < 30; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		cmd_store_maildir_info_format(0, k, &m, &out);
	}
	assert_non_null(m.kw[25]);
	cmd_store_kwmap_release(&m);
	buf_release(&out);
	buf_release(&kwf);
	(void)state;
}

/* spec/store.md 18.1: From line with the MAIL FROM (else "mox"), $Junk
 * and $NotJunk not both. */
static const struct {
	uint32_t flags;
	const char *mailfrom;
	const char *want;
} mbox_cases[] = {
	{ 0, "bob@example.org",
	    "From bob@example.org Tue Jan  2 03:04:05 2024\nSubject: x\n\n"
	    ">From here\n\n" },
	{ STORE_F_SEEN | STORE_F_JUNK, "",
	    "From mox Tue Jan  2 03:04:05 2024\nStatus: R\n"
	    "X-Keywords: $Junk\nSubject: x\n\n>From here\n\n" },
	{ STORE_F_JUNK | STORE_F_NOTJUNK | STORE_F_PHISHING, NULL,
	    "From mox Tue Jan  2 03:04:05 2024\nX-Keywords: $Phishing\n"
	    "Subject: x\n\n>From here\n\n" },
	{ STORE_F_NOTJUNK, "bad word",
	    "From mox Tue Jan  2 03:04:05 2024\nX-Keywords: $NotJunk\n"
	    "Subject: x\n\n>From here\n\n" },
};

static void
test_mbox_message(void **state)
{
	static const char msg[] = "Subject: x\r\nStatus: O\r\n\r\nFrom here\r\n";
	struct buf out;

	buf_init(&out, 4096);
	for (size_t i = 0; i < ARRAY_LEN(mbox_cases); i++) {
		struct store_msg m;

		memset(&m, 0, sizeof(m));
		m.flags = mbox_cases[i].flags;
		m.keywords = (char *)"";
		m.received_ns = INT64_C(1704164645) * 1000000000;
		buf_reset(&out);
		cmd_store_mbox_message(&m, mbox_cases[i].mailfrom,
		    span_of_cstr(msg), &out);
		if (strcmp(out.data, mbox_cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\"", i, out.data);
	}
	buf_release(&out);
	(void)state;
}

static const struct {
	const char *in, *crlf, *lf;
} eol_cases[] = {
	{ "", "", "" },
	{ "a\nb\n", "a\r\nb\r\n", "a\nb\n" },
	{ "a\r\nb\r\n", "a\r\nb\r\n", "a\nb\n" },
	{ "\n\n", "\r\n\r\n", "\n\n" },
	{ "a\rb\n", "a\rb\r\n", "a\rb\n" },
	{ "x\r", "x\r", "x\r" },
	{ "mixed\r\nbare\nend", "mixed\r\nbare\r\nend", "mixed\nbare\nend" },
};

static void
test_line_ends(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_LEN(eol_cases); i++) {
		buf_reset(&b);
		cmd_store_to_crlf(span_of_cstr(eol_cases[i].in), &b);
		if (strcmp(b.data, eol_cases[i].crlf) != 0)
			fail_msg("case %zu: crlf", i);
		buf_reset(&b);
		cmd_store_to_lf(span_of_cstr(eol_cases[i].in), &b);
		if (strcmp(b.data, eol_cases[i].lf) != 0)
			fail_msg("case %zu: lf", i);
	}
	buf_release(&b);
	(void)state;
}

static const struct {
	const char *line;
	int want_rc;
	int64_t want_t;
} from_cases[] = {
	{ "From a@b  Thu Aug 22 12:36:23 2002\n", 0, 1030019783 },
	{ "From a@b Thu Aug 22 12:36:23 2002", 0, 1030019783 },
	{ "From MAILER-DAEMON Mon Jan  2 15:04:05 2006\n", 0, 1136214245 },
	{ "From a@b Mon Jan 2 15:04:05 MST 2006\n", 0, 1136214245 },
	{ "From a@b Mon Jan 02 15:04:05 -0700 2006\n", 0, 1136239445 },
	{ "From a@b Mon Jan  2 15:04 2006\n", 0, 1136214240 },
	{ "From a@b Mon Jan  2 15:04:05 2006 +0100\n", 0, 1136210645 },
	{ "From a@b\n", -1, 0 },
	{ "From \n", -1, 0 },
	{ "From a@b Mon Foo  2 15:04:05 2006\n", -1, 0 },
	{ "From a@b Mon Jan 32 15:04:05 2006\n", -1, 0 },
	{ "From a@b Mon Jan  2 25:04:05 2006\n", -1, 0 },
	{ "From a@b Mon Jan  2 15:04:05\n", -1, 0 },
	{ "From a@b Mon Jan  2 15:04:05 1969\n", -1, 0 },
};

static void
test_mbox_from_time(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(from_cases); i++) {
		int64_t t = 0;
		int rc = cmd_store_mbox_from_time(
		    span_of_cstr(from_cases[i].line), &t);

		if (rc != from_cases[i].want_rc ||
		    (rc == 0 && t != from_cases[i].want_t))
			fail_msg("case %zu: rc %d t %lld", i, rc, (long long)t);
	}
	(void)state;
}

static void
test_asctime(void **state)
{
	struct buf b;
	int64_t t = 0;

	buf_init(&b, 64);
	cmd_store_asctime(1136214245, &b);
	assert_string_equal(b.data, "Mon Jan  2 15:04:05 2006");
	/* What we write, we read back. */
	buf_reset(&b);
	buf_adds(&b, "From mox ");
	cmd_store_asctime(1030019783, &b);
	assert_int_equal(cmd_store_mbox_from_time(span_of_buf(&b), &t), 0);
	assert_int_equal(t, 1030019783);
	buf_release(&b);
	(void)state;
}

static const struct {
	const char *kw;
	bool valid;
} kw_cases[] = {
	{ "custom", true },
	{ "$label1", true },
	{ "", false },
	{ "a b", false },
	{ "a(b", false },
	{ "\\Seen", false },
	{ "a]", false },
	{ "caf\xc3\xa9", false },
	{ "$Junk", false }, /* a flag, not a keyword */
	{ "notjunk", false },
};

static void
test_keyword_valid(void **state)
{
	char longkw[STORE_KEYWORD_MAX + 2];

	for (size_t i = 0; i < ARRAY_LEN(kw_cases); i++)
		if (cmd_store_keyword_valid(span_of_cstr(kw_cases[i].kw)) !=
		    kw_cases[i].valid)
			fail_msg("case %zu: %s", i, kw_cases[i].kw);
	memset(longkw, 'k', sizeof(longkw) - 1);
	longkw[sizeof(longkw) - 1] = '\0';
	assert_false(cmd_store_keyword_valid(span_of_cstr(longkw)));
	longkw[STORE_KEYWORD_MAX] = '\0';
	assert_true(cmd_store_keyword_valid(span_of_cstr(longkw)));
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maildir_info_parse),
		cmocka_unit_test(test_maildir_info_format),
		cmocka_unit_test(test_mbox_message),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_mbox_from_time),
		cmocka_unit_test(test_asctime),
		cmocka_unit_test(test_keyword_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
