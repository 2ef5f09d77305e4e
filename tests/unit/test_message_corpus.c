/*
 * test_message_corpus.c: run the message parser over every message of
 * the shared MIME corpus (../shared/testdata/mime, listed in index.tsv):
 * no crash, tree invariants hold, serialise/deserialise round trip is
 * equal, decoded text is UTF-8; and for the messages with an expectation
 * file in tests/unit/data/message/ the part tree (types, offsets, sizes,
 * line counts, encodings, charsets) matches it. Messages are converted
 * to CRLF line ends first, as the store keeps them.
 *
 * With MESSAGE_DUMP=path in the environment, prints the tree of that
 * corpus message in expectation format instead of testing.
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
#include "lib/io.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "lib/banned.h"

#define CORPUS_FILE_MAX (16 * 1024 * 1024)

/* Messages with written expectations (path relative to the corpus). */
static const char *const expected[] = {
	"cpython/msg_02.txt",
	"cpython/msg_07.txt",
	"cpython/msg_15.txt",
	"cpython/msg_19.txt",
	"cpython/msg_35.txt",
	"cpython/msg_38.txt",
	"cpython/msg_41.txt",
	"cpython/msg_42.txt",
	"stalwart-mail-parser/rfc/001.eml",
	"stalwart-mail-parser/malformed/000.eml",
	"stalwart-mail-parser/thirdparty/003.eml",
	"mime4j/mimetools-testmsgs/multi-digest.msg",
	"mime4j/mimetools-testmsgs/multi-nested.msg",
};

static char *
corpus_dir(void)
{
	const char *src = getenv("MOX_SRCDIR");
	struct buf b;

	buf_init(&b, 4096);
	buf_addf(&b, "%s/../shared/testdata/mime", src != NULL ? src : ".");
	return buf_take(&b);
}

/* Read path into out, converting bare LF to CRLF. */
static int
read_crlf(const char *path, struct buf *out)
{
	struct buf raw;
	struct buf err;
	int rc = -1;

	buf_init(&raw, CORPUS_FILE_MAX);
	buf_init(&err, 1024);
	if (io_read_file(path, &raw, &err) == -1)
		goto out;
	for (size_t i = 0; i < raw.len; i++) {
		if (raw.data[i] == '\n' && (i == 0 || raw.data[i - 1] != '\r'))
			buf_addc(out, '\r');
		buf_addc(out, raw.data[i]);
	}
	rc = buf_failed(out) ? -1 : 0;
out:
	buf_release(&raw);
	buf_release(&err);
	return rc;
}

static void
dump_part(const struct message_part *p, int depth, bool nested,
    struct buf *out)
{
	const char *bnd = message_param_get(p->params, p->nparams, "boundary");

	for (int i = 0; i < depth; i++)
		buf_adds(out, "  ");
	buf_addf(out, "%s%s/%s %zu %zu %zu %zu %zu %s %s", nested ? "> " : "",
	    p->type, p->subtype, p->header_off, p->body_off, p->end_off,
	    p->end_off - p->body_off, p->body_lines,
	    p->cte != NULL ? p->cte : "-",
	    message_part_is_text(p) ? message_part_charset(p) : "-");
	if (bnd != NULL)
		buf_addf(out, " boundary=%s", bnd);
	if (p->flags & MESSAGE_PART_NO_END)
		buf_adds(out, " no-end");
	buf_addc(out, '\n');
	for (size_t i = 0; i < p->nparts; i++)
		dump_part(&p->parts[i], depth + 1, false, out);
	if (p->message != NULL)
		dump_part(p->message, depth + 1, true, out);
}

/* Structural invariants every parsed tree keeps. */
static void
check_tree(const struct message_part *p, size_t lo, size_t hi,
    const char *name)
{
	size_t prev = p->body_off;

	if (p->header_off < lo || p->header_off > p->body_off ||
	    p->body_off > p->end_off || p->end_off > hi)
		fail_msg("%s: part offsets %zu %zu %zu outside %zu..%zu", name,
		    p->header_off, p->body_off, p->end_off, lo, hi);
	if (p->type == NULL || p->subtype == NULL || p->type[0] == '\0')
		fail_msg("%s: part without media type", name);
	for (size_t i = 0; i < p->nparts; i++) {
		check_tree(&p->parts[i], prev, p->end_off, name);
		prev = p->parts[i].end_off;
	}
	if (p->message != NULL) {
		if (p->message->envelope == NULL)
			fail_msg("%s: nested message without envelope", name);
		check_tree(p->message, p->body_off, p->end_off, name);
	}
}

static int
text_cb(const struct message_part *p, struct span text, void *arg)
{
	const char *name = arg;

	if (!utf8_valid(text.p, text.len))
		fail_msg("%s: text of %s/%s is not UTF-8", name, p->type,
		    p->subtype);
	return 0;
}

static bool
is_expected(const char *path)
{
	for (size_t i = 0; i < ARRAY_LEN(expected); i++)
		if (strcmp(expected[i], path) == 0)
			return true;
	return false;
}

static void
check_expectation(const char *path, const struct message_part *root)
{
	const char *src = getenv("MOX_SRCDIR");
	struct buf fn, want, got, err;
	size_t i;

	buf_init(&fn, 4096);
	buf_init(&want, CORPUS_FILE_MAX);
	buf_init(&got, CORPUS_FILE_MAX);
	buf_init(&err, 1024);
	buf_addf(&fn, "%s/tests/unit/data/message/", src != NULL ? src : ".");
	for (i = 0; path[i] != '\0'; i++)
		buf_addc(&fn, path[i] == '/' ? '_' : path[i]);
	buf_adds(&fn, ".tree");
	if (io_read_file(fn.data, &want, &err) == -1)
		fail_msg("%s: no expectation file %s: %s", path, fn.data,
		    err.data);
	dump_part(root, 0, false, &got);
	if (strcmp(want.data, got.data) != 0)
		fail_msg("%s: tree differs\nwant:\n%s\ngot:\n%s", path,
		    want.data, got.data);
	buf_release(&fn);
	buf_release(&want);
	buf_release(&got);
	buf_release(&err);
}

static size_t nexpect_checked;

static void
run_one(const char *dir, const char *path)
{
	struct buf full, msg, ser;
	struct message_part *root = NULL, *back = NULL;
	const char *why = NULL;

	buf_init(&full, 4096);
	buf_init(&msg, CORPUS_FILE_MAX);
	buf_init(&ser, MESSAGE_SERIAL_MAX);
	buf_addf(&full, "%s/%s", dir, path);
	if (read_crlf(full.data, &msg) == -1)
		fail_msg("%s: cannot read", full.data);
	if (message_parse(msg.data, msg.len, &root, &why) == -1)
		fail_msg("%s: parse failed: %s", path, why);
	check_tree(root, 0, msg.len, path);
	if (root->envelope == NULL)
		fail_msg("%s: no envelope", path);
	if (message_serialise(root, &ser) == -1)
		fail_msg("%s: serialise failed", path);
	if (message_deserialise(span_of_buf(&ser), msg.len, &back, &why) == -1)
		fail_msg("%s: deserialise failed: %s", path, why);
	if (!message_part_equal(root, back))
		fail_msg("%s: round trip differs", path);
	/* A shorter message must refuse the same tree when it reaches the end. */
	if (msg.len > 0 && root->end_off == msg.len) {
		struct message_part *t = NULL;

		if (message_deserialise(span_of_buf(&ser), msg.len - 1, &t,
			&why) == 0)
			fail_msg("%s: deserialise accepted a short message",
			    path);
	}
	(void)message_text_walk(msg.data, msg.len, root, 1024 * 1024, text_cb,
	    (void *)path);
	if (is_expected(path)) {
		check_expectation(path, root);
		nexpect_checked++;
	}
	message_part_free(root);
	message_part_free(back);
	buf_release(&full);
	buf_release(&msg);
	buf_release(&ser);
}

static void
test_corpus(void **state)
{
	char *dir = corpus_dir();
	struct buf idx, err, fn;
	size_t n = 0, pos = 0;

	buf_init(&idx, CORPUS_FILE_MAX);
	buf_init(&err, 1024);
	buf_init(&fn, 4096);
	buf_addf(&fn, "%s/index.tsv", dir);
	if (io_read_file(fn.data, &idx, &err) == -1)
		fail_msg("cannot read corpus index: %s", err.data);
	while (pos < idx.len) {
		char *nl = memchr(idx.data + pos, '\n', idx.len - pos);
		size_t end = nl != NULL ? (size_t)(nl - idx.data) : idx.len;
		char *tab = memchr(idx.data + pos, '\t', end - pos);

		if (idx.data[pos] != '#' && tab != NULL) {
			char *path = xstrndup(idx.data + pos,
			    (size_t)(tab - (idx.data + pos)));

			run_one(dir, path);
			free(path);
			n++;
		}
		pos = end + 1;
	}
	if (n < 150)
		fail_msg("only %zu corpus messages found", n);
	if (nexpect_checked != ARRAY_LEN(expected))
		fail_msg("%zu of %zu expectations checked", nexpect_checked,
		    ARRAY_LEN(expected));
	buf_release(&idx);
	buf_release(&err);
	buf_release(&fn);
	free(dir);
	(void)state;
}

static int
dump(const char *path)
{
	char *dir = corpus_dir();
	struct buf full, msg, out;
	struct message_part *root = NULL;
	const char *why = NULL;

	buf_init(&full, 4096);
	buf_init(&msg, CORPUS_FILE_MAX);
	buf_init(&out, CORPUS_FILE_MAX);
	buf_addf(&full, "%s/%s", dir, path);
	if (read_crlf(full.data, &msg) == -1 ||
	    message_parse(msg.data, msg.len, &root, &why) == -1) {
		fprintf(stderr, "cannot parse %s\n", full.data);
		return 1;
	}
	dump_part(root, 0, false, &out);
	fputs(out.data, stdout);
	message_part_free(root);
	buf_release(&full);
	buf_release(&msg);
	buf_release(&out);
	free(dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
	};
	const char *d = getenv("MESSAGE_DUMP");

	if (d != NULL)
		return dump(d);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
