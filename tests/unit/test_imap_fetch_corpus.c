/*
 * test_imap_fetch_corpus.c: ENVELOPE and BODYSTRUCTURE of every message
 * of the shared MIME corpus (../shared/testdata/mime) against the answer
 * Dovecot 2.3 gave for it (dovecot-fetch/, see the corpus README).
 * Messages are converted to CRLF first, as the store keeps them. Both
 * answers are parsed into IMAP values and compared; these differences
 * are deliberate and normalised before comparing:
 *  - media types, subtypes, encodings and parameter names: our parser
 *    lower-cases them, Dovecot keeps the header's case (compared
 *    case-insensitively);
 *  - display names: we send decoded names (re-encoded as UTF-8 RFC 2047
 *    words when not ASCII), Dovecot the original words (compared after
 *    decoding both);
 *  - strings with 8-bit bytes: compared after decoding as above;
 *  - parameter lists: we sort them by name (spec/imap.md 7), Dovecot
 *    keeps the header's order (compared as unordered pairs).
 * Every other difference is listed in known[] with its reason (most are
 * the message parser's reading of malformed input, or Dovecot's);
 * MOX_FETCH_CORPUS_VERBOSE=1 prints where each differs. The test fails
 * on a difference not listed, or when more than a quarter differ.
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
#include "imap/imap_fetch.h"
#include "lib/banned.h"

#define CORPUS_FILE_MAX (16 * 1024 * 1024)
#define VALUE_DEPTH_MAX 200

#define R_W \
	"unfolding keeps the WSP after a fold and trims the value (RFC 5322 2.2.3); Dovecot collapses or keeps it"
#define R_P \
	"RFC 2231 parameter: we send the decoded name=value, Dovecot the raw name*=charset''value"
#define R_B \
	"RFC 2231 boundary*: we decode it and find the parts, Dovecot does not"
#define R_S \
	"\";;\" in a parameter list: we skip the empty parameter and find the boundary (as mime4j does); Dovecot's error recovery drops every parameter after it"
#define R_T \
	"invalid Content-Type: RFC 2045 5.2 default text/plain; Dovecot sends \"\" \"\""
#define R_L \
	"boundary longer than 70: accepted and compared in full (INTEROP, message.h), Dovecot compares 70 characters"
#define R_D \
	"two Date fields, the first malformed: we use the first"
#define R_Z \
	"message/rfc822 that ends in a header line or close delimiter: Dovecot counts the line end before the next delimiter into the part, RFC 2046 5.1.1 gives it to the delimiter; size 2 octets apart"
#define R_E \
	"Dovecot reports 8bit parts without 8-bit octets as 7bit; we send the header's value"

/* Messages whose answer differs from Dovecot's, and why. */
static const struct {
	const char *path;
	const char *why;
} known[] = {
	{ "cpython/msg_14.txt",
	    R_T },
	{ "cpython/msg_27.txt",
	    R_W },
	{ "cpython/msg_29.txt",
	    R_P },
	{ "cpython/msg_32.txt",
	    R_P },
	{ "cpython/msg_33.txt",
	    R_B },
	{ "mime4j/mimetools-testmsgs/attachment-filename-encoding-Latin1.msg",
	    R_P },
	{ "mime4j/mimetools-testmsgs/attachment-filename-encoding-UTF8.msg",
	    R_P },
	{ "mime4j/mimetools-testmsgs/double-semicolon.msg",
	    R_S },
	{ "mime4j/mimetools-testmsgs/frag.msg",
	    R_W },
	{ "mime4j/mimetools-testmsgs/multi-digest.msg",
	    R_T },
	{ "mime4j/testmsgs/basic-plain-with-bad-header-separator.msg",
	    R_W },
	{ "mime4j/testmsgs/obsolete.msg",
	    R_W },
	{ "mime4j/testmsgs/very-long-boundary.msg",
	    R_L },
	{ "mime4j/testmsgs/very-very-long-boundary.msg",
	    R_L },
	{ "stalwart-mail-parser/malformed/017.eml",
	    R_T },
	{ "stalwart-mail-parser/malformed/019.eml",
	    R_D },
	{ "stalwart-mail-parser/malformed/022.eml",
	    R_Z },
	{ "stalwart-mail-parser/rfc/008.eml",
	    R_Z },
	{ "stalwart-mail-parser/thirdparty/004.eml",
	    R_E },
	{ "stalwart-mail-parser/thirdparty/007.eml",
	    R_Z },
	{ "stalwart-mail-parser/thirdparty/015.eml",
	    R_Z },
};

/* An IMAP value: NIL, atom/number, string, or list. */
struct val {
	int kind; /* 0 nil, 1 atom, 2 string, 3 list */
	char *s;
	size_t n;
	struct val *kids;
	size_t nkids;
};

static void
val_release(struct val *v)
{
	free(v->s);
	for (size_t i = 0; i < v->nkids; i++)
		val_release(&v->kids[i]);
	free(v->kids);
}

static int
val_parse(const char *p, size_t len, size_t *i, struct val *v, int depth)
{
	memset(v, 0, sizeof(*v));
	if (depth > VALUE_DEPTH_MAX || *i >= len)
		return -1;
	if (p[*i] == '(') {
		(*i)++;
		v->kind = 3;
		while (*i < len && p[*i] != ')') {
			if (p[*i] == ' ') {
				(*i)++;
				continue;
			}
			v->kids = xreallocarray(v->kids, v->nkids + 1,
			    sizeof(*v->kids));
			if (val_parse(p, len, i, &v->kids[v->nkids++],
				depth + 1) == -1)
				return -1;
		}
		if (*i >= len)
			return -1;
		(*i)++;
		return 0;
	}
	if (p[*i] == '"') {
		struct buf b;

		buf_init(&b, BUF_NOMAX);
		for ((*i)++; *i < len && p[*i] != '"'; (*i)++) {
			if (p[*i] == '\\')
				(*i)++;
			if (*i < len)
				buf_addc(&b, p[*i]);
		}
		(*i)++;
		v->kind = 2;
		v->n = b.len;
		v->s = buf_take(&b);
		return 0;
	}
	if (p[*i] == '{') {
		size_t n = 0;

		for ((*i)++; *i < len && p[*i] >= '0' && p[*i] <= '9'; (*i)++)
			n = n * 10 + (size_t)(p[*i] - '0');
		*i += 3; /* "}\r\n" */
		if (*i + n > len)
			return -1;
		v->kind = 2;
		v->s = xstrndup(p + *i, n);
		v->n = n;
		*i += n;
		return 0;
	}
	{
		size_t s = *i;

		while (*i < len && p[*i] != ' ' && p[*i] != ')' &&
		    p[*i] != '(')
			(*i)++;
		v->s = xstrndup(p + s, *i - s);
		v->n = *i - s;
		v->kind = strcmp(v->s, "NIL") == 0 ? 0 : 1;
		return *i > s ? 0 : -1;
	}
}

static bool val_similar(const struct val *a, const struct val *b);
static bool val_similar_(const struct val *a, const struct val *b);

static bool
str_similar(const struct val *a, const struct val *b)
{
	struct buf da, db;
	bool eq;

	if (a->n == b->n && strncasecmp(a->s, b->s, a->n) == 0)
		return true;
	buf_init(&da, BUF_NOMAX);
	buf_init(&db, BUF_NOMAX);
	(void)message_decode_words(span_of(a->s, a->n), &da);
	(void)message_decode_words(span_of(b->s, b->n), &db);
	eq = da.len == db.len && memcmp(da.data, db.data, da.len) == 0;
	buf_release(&da);
	buf_release(&db);
	return eq;
}

static void
val_print(const struct val *v, struct buf *out)
{
	switch (v->kind) {
	case 0:
		buf_adds(out, "NIL");
		break;
	case 1:
		buf_adds(out, v->s);
		break;
	case 2:
		buf_addf(out, "\"%s\"", v->s);
		break;
	default:
		buf_addc(out, '(');
		for (size_t i = 0; i < v->nkids; i++) {
			if (i > 0)
				buf_addc(out, ' ');
			val_print(&v->kids[i], out);
		}
		buf_addc(out, ')');
	}
}

/* Where two values first differ, for the verbose listing. */
static struct buf *diff_out;

static bool
val_similar(const struct val *a, const struct val *b)
{
	bool eq = val_similar_(a, b);

	if (!eq && diff_out != NULL && diff_out->len == 0) {
		buf_adds(diff_out, "ours ");
		val_print(b, diff_out);
		buf_adds(diff_out, " dovecot ");
		val_print(a, diff_out);
	}
	return eq;
}

/* A list of name/value string pairs (body-fld-param). */
static bool
is_param_list(const struct val *v)
{
	if (v->nkids == 0 || v->nkids % 2 != 0)
		return false;
	for (size_t i = 0; i < v->nkids; i++)
		if (v->kids[i].kind != 2)
			return false;
	return true;
}

/* Parameters compared as unordered pairs: we sort them by name. */
static bool
params_similar(const struct val *a, const struct val *b)
{
	for (size_t i = 0; i < a->nkids; i += 2) {
		bool found = false;

		for (size_t k = 0; k < b->nkids && !found; k += 2)
			found = str_similar(&a->kids[i], &b->kids[k]) &&
			    str_similar(&a->kids[i + 1], &b->kids[k + 1]);
		if (!found)
			return false;
	}
	return true;
}

static bool
val_similar_(const struct val *a, const struct val *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case 0:
		return true;
	case 1:
		return strcmp(a->s, b->s) == 0;
	case 2:
		return str_similar(a, b);
	default:
		if (a->nkids != b->nkids)
			return false;
		if (is_param_list(a) && is_param_list(b))
			return params_similar(a, b);
		for (size_t i = 0; i < a->nkids; i++)
			if (!val_similar(&a->kids[i], &b->kids[i]))
				return false;
		return true;
	}
}

static const char *
known_why(const char *path)
{
	for (size_t i = 0; i < ARRAY_LEN(known); i++)
		if (strcmp(known[i].path, path) == 0)
			return known[i].why;
	return NULL;
}

static char *
corpus_dir(void)
{
	const char *src = getenv("MOX_SRCDIR");
	struct buf b;

	buf_init(&b, 4096);
	buf_addf(&b, "%s/../shared/testdata/mime", src != NULL ? src : ".");
	return buf_take(&b);
}

static int
read_crlf(const char *path, struct buf *out)
{
	struct buf raw, err;
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

/* Find "NAME " in the Dovecot line and parse the value after it. */
static int
dovecot_item(const struct buf *line, const char *name, struct val *v)
{
	const char *p = strstr(line->data, name);
	size_t i;

	if (p == NULL)
		return -1;
	i = (size_t)(p - line->data) + strlen(name) + 1;
	return val_parse(line->data, line->len, &i, v, 0);
}

static int
ours_item(const char *s, size_t n, struct val *v)
{
	size_t i = 0;

	return val_parse(s, n, &i, v, 0);
}

/* Compare one message; returns 0 equal, 1 different. */
static int
check_one(const char *dir, const char *rel, bool verbose)
{
	struct buf path, msg, line, env, bs, err, where;
	struct message_part *root = NULL;
	struct val dv = { 0 }, ov = { 0 }, db = { 0 }, ob = { 0 };
	const char *why = NULL;
	int rc = 1;

	buf_init(&path, 4096);
	buf_init(&msg, CORPUS_FILE_MAX);
	buf_init(&line, CORPUS_FILE_MAX);
	buf_init(&env, BUF_NOMAX);
	buf_init(&bs, BUF_NOMAX);
	buf_init(&err, 1024);
	buf_addf(&path, "%s/%s", dir, rel);
	if (read_crlf(path.data, &msg) == -1)
		fail_msg("%s: cannot read", rel);
	buf_reset(&path);
	buf_addf(&path, "%s/dovecot-fetch/%s.fetch", dir, rel);
	if (io_read_file(path.data, &line, &err) == -1)
		fail_msg("%s: cannot read fetch: %s", rel, err.data);
	if (message_parse(msg.data, msg.len, &root, &why) == -1)
		fail_msg("%s: parse: %s", rel, why);
	imap_fetch_envelope(&env, root->envelope, false);
	imap_fetch_bodystructure(&bs, root, true);
	if (ours_item(env.data, env.len, &ov) == -1 ||
	    ours_item(bs.data, bs.len, &ob) == -1)
		fail_msg("%s: our output does not parse: %s %s", rel, env.data,
		    bs.data);
	if (dovecot_item(&line, "ENVELOPE", &dv) == -1 ||
	    dovecot_item(&line, "BODYSTRUCTURE", &db) == -1)
		fail_msg("%s: dovecot line does not parse", rel);
	buf_init(&where, BUF_NOMAX);
	diff_out = &where;
	if (val_similar(&dv, &ov) && val_similar(&db, &ob))
		rc = 0;
	else if (verbose)
		fprintf(stderr, "DIFF %s: %s\n", rel, where.data);
	diff_out = NULL;
	buf_release(&where);
	val_release(&dv);
	val_release(&ov);
	val_release(&db);
	val_release(&ob);
	message_part_free(root);
	buf_release(&path);
	buf_release(&msg);
	buf_release(&line);
	buf_release(&env);
	buf_release(&bs);
	buf_release(&err);
	return rc;
}

static void
test_corpus(void **state)
{
	char *dir = corpus_dir();
	struct buf path, index, err;
	bool verbose = getenv("MOX_FETCH_CORPUS_VERBOSE") != NULL;
	size_t total = 0, differ = 0, differ_strict = 0;
	char *line, *save = NULL;

	buf_init(&path, 4096);
	buf_init(&index, CORPUS_FILE_MAX);
	buf_init(&err, 1024);
	buf_addf(&path, "%s/index.tsv", dir);
	if (io_read_file(path.data, &index, &err) == -1)
		fail_msg("index.tsv: %s", err.data);
	for (line = strtok_r(index.data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');

		if (tab == NULL || line[0] == '#')
			continue;
		*tab = '\0';
		total++;
		if (check_one(dir, line, verbose) != 0) {
			differ++;
			if (known_why(line) == NULL) {
				fprintf(stderr, "unexpected difference: %s\n",
				    line);
				differ_strict++;
			}
		}
	}
	fprintf(stderr, "fetch corpus: %zu messages, %zu differ (%zu not "
			"listed as known)\n",
	    total, differ, differ_strict);
	assert_true(total >= 150);
	assert_true(differ * 4 <= total);
	assert_int_equal(differ_strict, 0);
	buf_release(&path);
	buf_release(&index);
	buf_release(&err);
	free(dir);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
