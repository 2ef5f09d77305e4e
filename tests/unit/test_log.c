/*
 * test_log.c: logfmt lines: quoting that no value can break out of, field
 * order (err first, pkg, cid last in hex), masking of secrets and data by
 * level, per-package levels, human format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/banned.h"

static struct buf captured;

static void
capture(const char *line, size_t len, void *arg)
{
	buf_add(&captured, line, len);
	(void)arg;
}

static int
setup(void **state)
{
	log_init();
	buf_init(&captured, 1 << 20);
	log_set_sink(capture, NULL);
	log_set_format(LOG_FORMAT_LOGFMT);
	log_set_level(NULL, LOG_INFO);
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	log_set_sink(NULL, NULL);
	buf_release(&captured);
	(void)state;
	return 0;
}

static void
test_log_format(void **state)
{
	static const struct {
		const char *val;
		const char *want;
	} cases[] = {
		{ "plain", "v=plain" },
		{ "", "v=\"\"" },
		{ "two words", "v=\"two words\"" },
		{ "a=b", "v=\"a=b\"" },
		{ "quote\"d", "v=\"quote\\\"d\"" },
		{ "back\\slash", "v=\"back\\\\slash\"" },
		/* A hostile value cannot start a new line or forge fields. */
		{ "x\nl=error m=\"forged\"", "v=\"x\\nl=error m=\\\"forged\\\"\"" },
		{ "nul\x01", "v=\"nul\\x01\"" },
		{ "caf\xc3\xa9", "v=\"caf\\xc3\\xa9\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out;

		buf_init(&out, 4096);
		log_format_line(&out, LOG_FORMAT_LOGFMT, LOG_INFO, NULL, 0,
		    "msg",
		    (const struct log_field[]){ LF_STR("v", cases[i].val),
			LF_END },
		    LOG_INFO);
		if (strstr(out.data, cases[i].want) == NULL ||
		    strchr(out.data, '\n') != out.data + out.len - 1)
			fail_msg("case %zu: got %s", i, out.data);
		buf_release(&out);
	}
	(void)state;
}

static void
test_log_order(void **state)
{
	struct log_ctx c = log_ctx_init("smtpserver", 0x4f1c2);

	buf_reset(&captured);
	log_info(&c, "delivered message", LF_STR("rcpt", "bob@example.org"),
	    LF_U64("size", 5120), LF_ERR("some error"),
	    LF_DUR("delta", 12 * 1000000));
	assert_string_equal(captured.data,
	    "l=info m=\"delivered message\" err=\"some error\" pkg=smtpserver "
	    "rcpt=bob@example.org size=5120 delta=12ms cid=4f1c2\n");
	(void)state;
}

static void
test_log_levels(void **state)
{
	struct log_ctx a = log_ctx_init("imapserver", 1);
	struct log_ctx b = log_ctx_init("queue", 2);

	log_set_level(NULL, LOG_INFO);
	buf_reset(&captured);
	log_debug(&a, "hidden");
	assert_int_equal(captured.len, 0);
	log_set_level("imapserver", LOG_DEBUG);
	log_debug(&a, "shown");
	log_debug(&b, "hidden too");
	assert_non_null(strstr(captured.data, "m=\"shown\""));
	assert_null(strstr(captured.data, "hidden"));
	assert_int_equal(log_get_level("imapserver"), LOG_DEBUG);
	assert_int_equal(log_get_level("queue"), LOG_INFO);
	log_clear_level("imapserver");
	assert_int_equal(log_get_level("imapserver"), LOG_INFO);

	/* Secrets masked at trace, shown at traceauth; data at tracedata. */
	log_set_level("imapserver", LOG_TRACE);
	buf_reset(&captured);
	log_traceauth(&a, "auth", LF_SECRET("pass", "hunter2"));
	log_tracedata(&a, "data", LF_DATA("body", "Subject: x", 10));
	assert_null(strstr(captured.data, "hunter2"));
	assert_non_null(strstr(captured.data, "pass=********"));
	assert_non_null(strstr(captured.data, "body=..."));
	log_set_level("imapserver", LOG_TRACEAUTH);
	buf_reset(&captured);
	log_traceauth(&a, "auth", LF_SECRET("pass", "hunter2"));
	log_tracedata(&a, "data", LF_DATA("body", "Subject: x", 10));
	assert_non_null(strstr(captured.data, "pass=hunter2"));
	assert_non_null(strstr(captured.data, "body=..."));
	log_set_level("imapserver", LOG_TRACEDATA);
	buf_reset(&captured);
	log_tracedata(&a, "data", LF_DATA("body", "Subject: x", 10));
	assert_non_null(strstr(captured.data, "body=\"Subject: x\""));
	log_clear_level("imapserver");
	(void)state;
}

static void
test_log_parse_names(void **state)
{
	static const char *const names[] = { "error", "info", "debug", "trace",
		"traceauth", "tracedata", "warn", "fatal", "print" };
	enum log_level l;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(log_level_parse(names[i], &l), 0);
		assert_string_equal(log_level_name(l), names[i]);
	}
	assert_int_equal(log_level_parse("verbose", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(log_level_parse("INFO", &l), -1);
	(void)state;
}

static void
test_log_human(void **state)
{
	struct buf out;

	buf_init(&out, 4096);
	log_format_line(&out, LOG_FORMAT_HUMAN, LOG_ERROR, "queue", 0,
	    "cannot open queue",
	    (const struct log_field[]){ LF_ERR("no such file"),
		LF_STR("path", "/x y"), LF_END },
	    LOG_INFO);
	assert_string_equal(out.data,
	    "error: cannot open queue: no such file; path=\"/x y\"\n");
	buf_release(&out);
	(void)state;
}

static void
test_log_long_value(void **state)
{
	struct buf out;
	char *big = malloc(10000);

	memset(big, 'a', 9999);
	big[9999] = '\0';
	buf_init(&out, 1 << 20);
	log_format_line(&out, LOG_FORMAT_LOGFMT, LOG_INFO, NULL, 0, "m",
	    (const struct log_field[]){ LF_STR("v", big), LF_END }, LOG_INFO);
	assert_true(out.len < LOG_VALUE_MAX + 100);
	assert_non_null(strstr(out.data, "...\""));
	buf_release(&out);
	free(big);
	(void)state;
}

static void
test_log_cid_unique(void **state)
{
	uint64_t a = log_new_cid(), b = log_new_cid();

	assert_true(a != 0 && b != 0 && a != b);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_format),
		cmocka_unit_test(test_log_order),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_log_parse_names),
		cmocka_unit_test(test_log_human),
		cmocka_unit_test(test_log_long_value),
		cmocka_unit_test(test_log_cid_unique),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
