/*
 * test_sconf.c: the sconf parser, binder, writer and describe
 * (spec/config.md section 1), with hostile input.
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
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "config/config.h"
#include "config/sconf.h"
#include "lib/banned.h"

/* A schema with every kind. */
struct t_sub {
	struct sconf_pos pos;
	bool on;
	char *name;
};

struct t_item {
	struct sconf_pos pos;
	char *name;
	int64_t n;
};

struct t_top {
	struct sconf_pos pos;
	char *s;
	bool b;
	int64_t i;
	double f;
	int64_t d;
	struct sconf_bytes by;
	struct t_sub sub;
	struct t_sub *ptr;
	struct sconf_strlist strs;
	SCONF_LIST_OF(struct t_item) items;
	struct sconf_strmap smap;
	SCONF_MAP_OF(struct t_sub) subs;
	char *opt;
};

static const struct sconf_field f_sub[] = {
	{ "On", &sconf_type_bool, offsetof(struct t_sub, on), false,
	    "Whether it is on." },
	{ "Name", &sconf_type_str, offsetof(struct t_sub, name), true,
	    "A name." },
};
static const struct sconf_type t_sub = { SCONF_STRUCT, sizeof(struct t_sub),
	f_sub, ARRAY_LEN(f_sub), offsetof(struct t_sub, pos), NULL };
static const struct sconf_type t_sub_ptr = { SCONF_PTR, sizeof(void *), NULL,
	0, 0, &t_sub };
static const struct sconf_type t_sub_map = { SCONF_MAP,
	sizeof(struct sconf_strmap), NULL, 0, 0, &t_sub };
static const struct sconf_field f_item[] = {
	{ "Name", &sconf_type_str, offsetof(struct t_item, name), false,
	    NULL },
	{ "N", &sconf_type_int, offsetof(struct t_item, n), true, NULL },
};
static const struct sconf_type t_item = { SCONF_STRUCT,
	sizeof(struct t_item), f_item, ARRAY_LEN(f_item),
	offsetof(struct t_item, pos), NULL };
static const struct sconf_type t_item_list = { SCONF_LIST,
	sizeof(struct sconf_strlist), NULL, 0, 0, &t_item };
static const struct sconf_type t_strlist = { SCONF_LIST,
	sizeof(struct sconf_strlist), NULL, 0, 0, &sconf_type_str };
static const struct sconf_type t_strmap = { SCONF_MAP,
	sizeof(struct sconf_strmap), NULL, 0, 0, &sconf_type_str };
static const struct sconf_field f_top[] = {
	{ "S", &sconf_type_str, offsetof(struct t_top, s), false,
	    "A string value that may contain anything, including # and "
	    "quotes, and this documentation is long enough to be wrapped "
	    "over more than one line of the describe output." },
	{ "B", &sconf_type_bool, offsetof(struct t_top, b), true, NULL },
	{ "I", &sconf_type_int, offsetof(struct t_top, i), true, NULL },
	{ "F", &sconf_type_float, offsetof(struct t_top, f), true, NULL },
	{ "D", &sconf_type_dur, offsetof(struct t_top, d), true, NULL },
	{ "By", &sconf_type_bytes, offsetof(struct t_top, by), true, NULL },
	{ "Sub", &t_sub, offsetof(struct t_top, sub), true, "Nested." },
	{ "Ptr", &t_sub_ptr, offsetof(struct t_top, ptr), true, NULL },
	{ "Strs", &t_strlist, offsetof(struct t_top, strs), true, NULL },
	{ "Items", &t_item_list, offsetof(struct t_top, items), true, NULL },
	{ "SMap", &t_strmap, offsetof(struct t_top, smap), true, NULL },
	{ "Subs", &t_sub_map, offsetof(struct t_top, subs), true, NULL },
	{ "Opt", &sconf_type_str, offsetof(struct t_top, opt), true, NULL },
};
static const struct sconf_type t_top = { SCONF_STRUCT, sizeof(struct t_top),
	f_top, ARRAY_LEN(f_top), offsetof(struct t_top, pos), NULL };

/* Parse and bind text against t_top; err gets the messages. */
static int
load(const char *text, size_t len, struct t_top *top, struct buf *err)
{
	struct sconf_doc *doc = NULL;
	int rc;

	memset(top, 0, sizeof(*top));
	if (sconf_parse("t.conf", span_of(text, len), &doc, err) == -1)
		return -1;
	rc = sconf_bind(doc, &t_top, top, err);
	sconf_doc_free(doc);
	return rc;
}

static const char full_doc[] =
    "# a comment\n"
    "S: value # not a comment \n"
    "\n"
    "B: true\n"
    "I: -42\n"
    "F: 0.5\n"
    "D: 1h30m\n"
    "By: aGVsbG8=\n"
    "Sub:\n"
    "\tOn: true\n"
    "\t# indented comment\n"
    "    # comment after spaces\n"
    "Ptr:\n"
    "\tOn: false\n"
    "\tName: p\n"
    "Strs:\n"
    "\t- one\n"
    "\t- \n"
    "\t- two: three\n"
    "Items:\n"
    "\t-\n"
    "\t\tName: first\n"
    "\t\tN: 1\n"
    "\t-\n"
    "\t\tName: second\n"
    "SMap:\n"
    "\tb key: v\n"
    "\t@a: \n"
    "Subs:\n"
    "\tx: nil\n"
    "\ty:\n"
    "\t\tOn: true\n";

static void
test_parse_full(void **state)
{
	struct t_top top;
	struct buf err;

	buf_init(&err, 1 << 16);
	if (load(full_doc, strlen(full_doc), &top, &err) != 0)
		fail_msg("full doc: %s", err.data);
	assert_string_equal(top.s, "value # not a comment ");
	assert_true(top.b);
	assert_int_equal(top.i, -42);
	assert_true(top.f == 0.5);
	assert_int_equal(top.d, 90 * 60 * NS_PER_SEC);
	assert_int_equal(top.by.len, 5);
	assert_memory_equal(top.by.p, "hello", 5);
	assert_true(top.sub.on);
	assert_null(top.sub.name);
	assert_non_null(top.ptr);
	assert_string_equal(top.ptr->name, "p");
	assert_int_equal(top.strs.n, 3);
	assert_string_equal(top.strs.v[0], "one");
	assert_string_equal(top.strs.v[1], "");
	assert_string_equal(top.strs.v[2], "two: three");
	assert_int_equal(top.items.n, 2);
	assert_string_equal(top.items.v[0].name, "first");
	assert_int_equal(top.items.v[0].n, 1);
	assert_int_equal(top.items.v[1].pos.line, 24);
	assert_int_equal(top.smap.n, 2);
	assert_string_equal(top.smap.keys[0], "b key");
	assert_string_equal(top.smap.vals[1], "");
	assert_int_equal(top.subs.n, 2);
	assert_false(top.subs.vals[0].on);
	assert_int_equal(top.subs.vals[0].pos.line, 30);
	assert_true(top.subs.vals[1].on);
	assert_int_equal(sconf_line(&top.pos, "Ptr"), 13);
	assert_int_equal(sconf_line(&top.ptr->pos, "Name"), 15);
	assert_true(sconf_present(&top.pos, "D"));
	assert_false(sconf_present(&top.pos, "Opt"));
	assert_null(top.opt);
	sconf_release(&t_top, &top);
	buf_release(&err);
	(void)state;
}

/* Each case: input and the exact error text (or NULL when it must load). */
static const struct {
	const char *name;
	const char *in;
	const char *want;
} err_cases[] = {
	{ "minimal", "S: x\n", NULL },
	{ "no final newline", "S: x", NULL },
	{ "empty string", "S:\n", NULL },
	{ "empty file", "", "t.conf: S: missing required field\n" },
	{ "only comments", "# x\n\n#y\n", "t.conf: S: missing required field\n" },
	{ "space indent", "S: x\nSub:\n    On: true\n",
	    "t.conf:3: space in indent (mixed tab/space indenting?); indent "
	    "with tabs only\n" },
	{ "tab then space", "S: x\nSub:\n\t On: true\n",
	    "t.conf:3: space in indent (mixed tab/space indenting?); indent "
	    "with tabs only\n" },
	{ "whitespace-only line", "S: x\n\t\n",
	    "t.conf:2: line with only whitespace (perhaps stray whitespace)\n" },
	{ "space-only line", "S: x\n \n",
	    "t.conf:2: line with only whitespace (perhaps stray whitespace)\n" },
	{ "crlf", "S: x\r\n",
	    "t.conf:1: carriage return in line (files must use LF line "
	    "endings)\n" },
	{ "invalid utf8", "S: \xff\xfe\n", "t.conf:1: invalid UTF-8\n" },
	{ "overlong utf8", "S: \xc0\xaf\n", "t.conf:1: invalid UTF-8\n" },
	{ "unknown field", "S: x\nNope: 1\n", "t.conf:2: Nope: unknown field\n" },
	{ "unknown nested field", "S: x\nSub:\n\tOn: true\n\tOff: true\n",
	    "t.conf:4: Sub.Off: unknown field\n" },
	{ "case-sensitive key", "s: x\n",
	    "t.conf:1: s: unknown field\nt.conf: S: missing required "
	    "field\n" },
	{ "duplicate key", "S: x\nS: y\n",
	    "t.conf:2: S: duplicate field (first on line 1)\n" },
	{ "duplicate map key", "S: x\nSMap:\n\ta: 1\n\ta: 2\n",
	    "t.conf:4: SMap.a: duplicate key\n" },
	{ "missing nested required", "S: x\nSub:\n\tName: n\n",
	    "t.conf:2: Sub.On: missing required field\n" },
	{ "missing in list item", "S: x\nItems:\n\t-\n\t\tN: 1\n",
	    "t.conf:3: Items[0].Name: missing required field\n" },
	{ "bad bool", "S: x\nB: yes\n", "t.conf:2: B: expected true or false\n" },
	{ "bool trailing space", "S: x\nB: true \n",
	    "t.conf:2: B: expected true or false\n" },
	{ "bad int", "S: x\nI: 12a\n", "t.conf:2: I: expected integer\n" },
	{ "int overflow", "S: x\nI: 99999999999999999999\n",
	    "t.conf:2: I: expected integer\n" },
	{ "bad float", "S: x\nF: 1e\n", "t.conf:2: F: expected decimal number\n" },
	{ "nan float", "S: x\nF: nan\n",
	    "t.conf:2: F: expected decimal number\n" },
	{ "bad base64", "S: x\nBy: a\n", "t.conf:2: By: expected standard base64\n" },
	{ "day duration", "S: x\nD: 1d\n", NULL /* checked below */ },
	{ "no space after colon", "S:x\n",
	    "t.conf:1: expected one space after colon\n" },
	{ "no colon", "S x\n",
	    "t.conf:1: expected \"Key: value\", \"Key:\" or a \"- item\"\n" },
	{ "empty key", ": x\n", "t.conf:1: empty key\n" },
	{ "too much indent", "S: x\nSub:\n\t\tOn: true\n",
	    "t.conf:3: unexpected indent (too many tabs)\n" },
	{ "indent under value", "S: x\n\tOn: true\n",
	    "t.conf:2: unexpected indent: the line above already has a "
	    "value\n" },
	{ "struct without indent", "S: x\nSub:\n",
	    "t.conf:2: Sub: expected indent with fields\n" },
	{ "struct with value", "S: x\nSub: y\n",
	    "t.conf:2: Sub: expected fields on the following lines, indented "
	    "one more tab\n" },
	{ "empty list", "S: x\nStrs:\n",
	    "t.conf:2: Strs: expected indent with list items\n" },
	{ "scalar with nested lines", "S:\n\tx: y\n",
	    "t.conf:1: S: expected a value on the same line\n" },
	{ "key in list", "S: x\nStrs:\n\ta: b\n",
	    "t.conf:3: Strs[0]: expected list item \"- value\"\n" },
	{ "item in struct", "S: x\nSub:\n\t- On\n",
	    "t.conf:3: Sub: expected \"Key: value\", not a list item\n"
	    "t.conf:2: Sub.On: missing required field\n" },
	{ "bare dash for scalar", "S: x\nStrs:\n\t-\n",
	    "t.conf:3: Strs[0]: expected a value on the same line\n" },
	{ "value on struct item", "S: x\nItems:\n\t- a\n",
	    "t.conf:3: Items[0]: expected \"-\" alone on its line, then fields "
	    "indented one more tab\n" },
	{ "mixed items and keys", "S: x\nStrs:\n\t- a\n\tb: c\n",
	    "t.conf:4: list items and keys mixed at one level\n" },
	{ "nil string map value", "S: x\nSMap:\n\ta: nil\n", NULL },
	{ "nil map", "S: x\nSubs: nil\n", NULL },
	{ "nil with indent", "S: x\nSubs:\n\tx: nil\n\t\tOn: true\n",
	    "t.conf:4: unexpected indent: the line above already has a "
	    "value\n" },
	{ "two errors", "S: x\nB: 1\nI: x\n",
	    "t.conf:2: B: expected true or false\nt.conf:3: I: expected "
	    "integer\n" },
};

static void
test_parse_errors(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(err_cases); i++) {
		struct t_top top;
		struct buf err;
		int rc;

		buf_init(&err, 1 << 16);
		rc = load(err_cases[i].in, strlen(err_cases[i].in), &top, &err);
		if (strcmp(err_cases[i].name, "day duration") == 0) {
			if (rc != -1 || strstr(err.data, "t.conf:2: D: ") ==
				NULL)
				fail_msg("case %s: rc %d err %s",
				    err_cases[i].name, rc, err.data);
		} else if (err_cases[i].want == NULL) {
			if (rc != 0)
				fail_msg("case %s: unexpected error: %s",
				    err_cases[i].name, err.data);
		} else if (rc != -1 ||
		    strcmp(err.data, err_cases[i].want) != 0)
			fail_msg("case %s: rc %d, got \"%s\", want \"%s\"",
			    err_cases[i].name, rc, err.data,
			    err_cases[i].want);
		sconf_release(&t_top, &top);
		buf_release(&err);
	}
	(void)state;
}

static void
test_nul_byte(void **state)
{
	static const char in[] = "S: a\0b\n";
	struct t_top top;
	struct buf err;

	buf_init(&err, 1 << 16);
	assert_int_equal(load(in, sizeof(in) - 1, &top, &err), -1);
	assert_string_equal(err.data, "t.conf:1: NUL byte in line\n");
	sconf_release(&t_top, &top);
	buf_release(&err);
	(void)state;
}

/* Nesting at the limit, one past it, and far past it. */
static void
test_deep_nesting(void **state)
{
	static const struct {
		int depth;
		bool ok;
	} cases[] = {
		{ SCONF_DEPTH_MAX - 1, true },
		{ SCONF_DEPTH_MAX, false },
		{ 1000, false },
	};

	for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
		struct sconf_doc *doc = NULL;
		struct buf in, err;
		int rc;

		buf_init(&in, BUF_NOMAX);
		buf_init(&err, 1 << 16);
		for (int d = 0; d <= cases[c].depth; d++) {
			for (int t = 0; t < d; t++)
				buf_addc(&in, '\t');
			buf_adds(&in, "a:\n");
		}
		rc = sconf_parse("t.conf", span_of_buf(&in), &doc, &err);
		if ((rc == 0) != cases[c].ok)
			fail_msg("depth %d: rc %d %s", cases[c].depth, rc,
			    err.data);
		if (!cases[c].ok) {
			char want[64];

			snprintf(want, sizeof(want),
			    "t.conf:%d: nesting too deep\n",
			    SCONF_DEPTH_MAX + 1);
			assert_string_equal(err.data, want);
		}
		sconf_doc_free(doc);
		buf_release(&in);
		buf_release(&err);
	}
	(void)state;
}

static void
test_long_lines(void **state)
{
	static const struct {
		size_t len;
		bool ok;
	} cases[] = {
		{ SCONF_LINE_MAX - 1, true },
		{ SCONF_LINE_MAX, true },
		{ SCONF_LINE_MAX + 1, false },
		{ 1024 * 1024, false },
	};

	for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
		struct t_top top;
		struct buf in, err;
		int rc;

		buf_init(&in, BUF_NOMAX);
		buf_init(&err, 1 << 16);
		buf_adds(&in, "S: ");
		while (in.len < cases[c].len)
			buf_addc(&in, 'x');
		buf_addc(&in, '\n');
		rc = load(in.data, in.len, &top, &err);
		if ((rc == 0) != cases[c].ok)
			fail_msg("line length %zu: rc %d %s", cases[c].len, rc,
			    err.data);
		if (!cases[c].ok)
			assert_string_equal(err.data, "t.conf:1: line too long\n");
		else
			assert_int_equal(strlen(top.s), cases[c].len - 3);
		sconf_release(&t_top, &top);
		buf_release(&in);
		buf_release(&err);
	}
	(void)state;
}

static void
test_huge_file(void **state)
{
	size_t len = (size_t)SCONF_FILE_MAX + 1;
	char *p = xmalloc(len);
	struct sconf_doc *doc = NULL;
	struct buf err;

	memset(p, '\n', len);
	buf_init(&err, 1 << 16);
	assert_int_equal(sconf_parse("t.conf", span_of(p, len), &doc, &err),
	    -1);
	assert_non_null(strstr(err.data, "file too large"));
	free(p);
	buf_release(&err);
	(void)state;
}

/* Every prefix of a valid document parses or fails cleanly. */
static void
test_prefixes(void **state)
{
	size_t n = strlen(full_doc);

	for (size_t i = 0; i <= n; i++) {
		struct t_top top;
		struct buf err;

		buf_init(&err, 1 << 16);
		(void)load(full_doc, i, &top, &err);
		sconf_release(&t_top, &top);
		buf_release(&err);
	}
	(void)state;
}

static void
test_too_many_errors(void **state)
{
	struct t_top top;
	struct buf in, err;

	buf_init(&in, BUF_NOMAX);
	buf_init(&err, 1 << 20);
	buf_adds(&in, "S: x\n");
	for (int i = 0; i < 500; i++)
		buf_addf(&in, "X%d: 1\n", i);
	assert_int_equal(load(in.data, in.len, &top, &err), -1);
	assert_non_null(strstr(err.data, "t.conf: too many errors\n"));
	assert_null(strstr(err.data, "X200"));
	sconf_release(&t_top, &top);
	buf_release(&in);
	buf_release(&err);
	(void)state;
}

static void
round_trip(const char *name, const struct sconf_type *t, size_t size,
    const char *text)
{
	void *a = xcalloc(1, size), *b = xcalloc(1, size);
	struct sconf_doc *doc = NULL;
	struct buf err, out1, out2;
	const char *why = NULL;

	buf_init(&err, 1 << 16);
	buf_init(&out1, BUF_NOMAX);
	buf_init(&out2, BUF_NOMAX);
	if (sconf_parse(name, span_of_cstr(text), &doc, &err) == -1 ||
	    sconf_bind(doc, t, a, &err) == -1)
		fail_msg("%s: first load: %s", name, err.data);
	sconf_doc_free(doc);
	doc = NULL;
	if (sconf_write(t, a, &out1, &why) == -1)
		fail_msg("%s: write: %s", name, why);
	if (sconf_parse(name, span_of_buf(&out1), &doc, &err) == -1 ||
	    sconf_bind(doc, t, b, &err) == -1)
		fail_msg("%s: reload: %s\n%s", name, err.data, out1.data);
	if (sconf_write(t, b, &out2, &why) == -1)
		fail_msg("%s: write 2: %s", name, why);
	if (strcmp(out1.data, out2.data) != 0)
		fail_msg("%s: round trip differs:\n%s\n---\n%s", name,
		    out1.data, out2.data);
	sconf_doc_free(doc);
	sconf_release(t, a);
	sconf_release(t, b);
	free(a);
	free(b);
	buf_release(&err);
	buf_release(&out1);
	buf_release(&out2);
}

static void
test_write(void **state)
{
	static const char want[] =
	    "S: value # not a comment \n"
	    "B: true\n"
	    "I: -42\n"
	    "F: 0.500000\n"
	    "D: 1h30m0s\n"
	    "By: aGVsbG8=\n"
	    "Sub:\n"
	    "\tOn: true\n"
	    "Ptr:\n"
	    "\tOn: false\n"
	    "\tName: p\n"
	    "Strs:\n"
	    "\t- one\n"
	    "\t- \n"
	    "\t- two: three\n"
	    "Items:\n"
	    "\t-\n"
	    "\t\tName: first\n"
	    "\t\tN: 1\n"
	    "\t-\n"
	    "\t\tName: second\n"
	    "SMap:\n"
	    "\t@a:\n"
	    "\tb key: v\n"
	    "Subs:\n"
	    "\tx: nil\n"
	    "\ty:\n"
	    "\t\tOn: true\n";
	struct t_top top;
	struct buf err, out;
	const char *why = NULL;

	buf_init(&err, 1 << 16);
	buf_init(&out, BUF_NOMAX);
	assert_int_equal(load(full_doc, strlen(full_doc), &top, &err), 0);
	assert_int_equal(sconf_write(&t_top, &top, &out, &why), 0);
	assert_string_equal(out.data, want);
	round_trip("full", &t_top, sizeof(struct t_top), full_doc);

	/* A value that cannot be written. */
	free(top.opt);
	top.opt = xstrdup("a\nb");
	buf_reset(&out);
	assert_int_equal(sconf_write(&t_top, &top, &out, &why), -1);
	sconf_release(&t_top, &top);
	buf_release(&err);
	buf_release(&out);
	(void)state;
}

static void
describe_binds(const char *name, const struct sconf_type *t, size_t size)
{
	void *obj = xcalloc(1, size);
	struct sconf_doc *doc = NULL;
	struct buf out, err;

	buf_init(&out, BUF_NOMAX);
	buf_init(&err, 1 << 16);
	sconf_describe(t, &out);
	if (sconf_parse(name, span_of_buf(&out), &doc, &err) == -1 ||
	    sconf_bind(doc, t, obj, &err) == -1)
		fail_msg("%s: describe output does not load: %s\n%s", name,
		    err.data, out.data);
	/* Comment lines fit in 80 columns (a tab counts as 8). */
	for (const char *p = out.data; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t col = 0;
		bool comment = false;

		for (const char *q = p; q < nl; q++) {
			if (*q == '#')
				comment = true;
			col += *q == '\t' ? 8 : 1;
		}
		if (comment && col > 80 && strchr(p, ' ') < nl) {
			const char *sp = p;
			size_t words = 0;

			for (; sp < nl; sp++)
				words += *sp == ' ';
			if (words > 1)
				fail_msg("%s: comment line longer than 80: "
					 "%.*s",
				    name, (int)(nl - p), p);
		}
		p = nl + 1;
	}
	sconf_doc_free(doc);
	sconf_release(t, obj);
	free(obj);
	buf_release(&out);
	buf_release(&err);
}

static void
test_describe(void **state)
{
	struct buf out;

	describe_binds("t.conf", &t_top, sizeof(struct t_top));
	describe_binds("mox.conf", &config_static_type,
	    sizeof(struct config_static));
	describe_binds("domains.conf", &config_dynamic_type,
	    sizeof(struct config_dynamic));
	buf_init(&out, BUF_NOMAX);
	sconf_describe(&t_top, &out);
	assert_non_null(strstr(out.data,
	    "# A string value that may contain anything, including # and "
	    "quotes, and this\n"));
	assert_non_null(strstr(out.data, "Subs:\n\tx:\n\t\t# Whether it is "
					 "on.\n\t\tOn: false\n"));
	assert_non_null(strstr(out.data, "# (optional)\nStrs:\n\t- \n"));
	assert_non_null(strstr(out.data, "Items:\n\t-\n\t\tName:\n"));
	buf_release(&out);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_huge_file),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_too_many_errors),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
