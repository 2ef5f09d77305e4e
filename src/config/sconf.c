/*
 * sconf.c: the sconf configuration format (spec/config.md section 1):
 * a bounded line parser producing a syntax tree, a schema-driven binder
 * that fills typed C structures and names file, line and field in every
 * error, and the writer and describe output driven by the same schema.
 * Input is a configuration file: trusted by intent but checked as if
 * hostile (limits on size, line length, nesting; UTF-8 and NUL checks).
 * Pure: no globals, no logging, no clock; any thread.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "config/sconf.h"
#include "lib/banned.h"

const struct sconf_type sconf_type_str = { SCONF_STR, sizeof(char *), NULL,
	0, 0, NULL };
const struct sconf_type sconf_type_bool = { SCONF_BOOL, sizeof(bool), NULL,
	0, 0, NULL };
const struct sconf_type sconf_type_int = { SCONF_INT, sizeof(int64_t), NULL,
	0, 0, NULL };
const struct sconf_type sconf_type_float = { SCONF_FLOAT, sizeof(double),
	NULL, 0, 0, NULL };
const struct sconf_type sconf_type_dur = { SCONF_DUR, sizeof(int64_t), NULL,
	0, 0, NULL };
const struct sconf_type sconf_type_bytes = { SCONF_BYTES,
	sizeof(struct sconf_bytes), NULL, 0, 0, NULL };

/* Generic views of SCONF_LIST_OF and SCONF_MAP_OF; same layout. */
struct list_raw {
	void *v;
	size_t n;
	unsigned *lines;
};

struct map_raw {
	char **keys;
	void *vals;
	size_t n;
	unsigned *lines;
};

/* ---------------------------------------------------------------------
 * Syntax layer
 */

static void
node_free(struct sconf_node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		node_free(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->key);
	free(n->value);
}

void
sconf_doc_free(struct sconf_doc *doc)
{
	if (doc == NULL)
		return;
	node_free(&doc->root);
	free(doc->name);
	free(doc);
}

static void
node_add(struct sconf_node *parent, struct sconf_node *kid)
{
	if (parent->nkids == parent->kcap) {
		parent->kcap = parent->kcap == 0 ? 4 : size_mul(parent->kcap, 2);
		parent->kids = xreallocarray(parent->kids, parent->kcap,
		    sizeof(parent->kids[0]));
	}
	parent->kids[parent->nkids++] = kid;
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* Check one raw line (without its LF) for bytes the format never allows. */
static const char *
line_bad_bytes(const char *p, size_t len)
{
	if (len > SCONF_LINE_MAX)
		return "line too long";
	if (memchr(p, '\0', len) != NULL)
		return "NUL byte in line";
	if (memchr(p, '\r', len) != NULL)
		return "carriage return in line (files must use LF line endings)";
	if (!utf8_valid(p, len))
		return "invalid UTF-8";
	return NULL;
}

/* Parse the content of a line after its indent into a new node. */
static struct sconf_node *
line_node(const char *c, size_t len, unsigned lineno, const char **why)
{
	struct sconf_node *n;
	const char *colon;
	size_t klen;

	n = xcalloc(1, sizeof(*n));
	n->line = lineno;
	if (len == 1 && c[0] == '-') {
		n->item = true;
		return n;
	}
	if (len >= 2 && c[0] == '-' && c[1] == ' ') {
		n->item = true;
		n->value = xstrndup(c + 2, len - 2);
		return n;
	}
	colon = memchr(c, ':', len);
	if (colon == NULL) {
		*why = "expected \"Key: value\", \"Key:\" or a \"- item\"";
		goto fail;
	}
	klen = (size_t)(colon - c);
	if (klen == 0) {
		*why = "empty key";
		goto fail;
	}
	if (klen + 1 < len && colon[1] != ' ') {
		*why = "expected one space after colon";
		goto fail;
	}
	n->key = xstrndup(c, klen);
	if (klen + 1 < len)
		n->value = xstrndup(colon + 2, len - klen - 2);
	else
		n->value = xstrdup("");
	return n;
fail:
	free(n);
	return NULL;
}

int
sconf_parse(const char *name, struct span text, struct sconf_doc **out,
    struct buf *err)
{
	struct sconf_node *level[SCONF_DEPTH_MAX];
	struct sconf_doc *doc;
	size_t nlevels = 0, pos = 0, nnodes = 0;
	unsigned lineno = 0;
	const char *why = NULL;
	int rc = -1;

	doc = xcalloc(1, sizeof(*doc));
	doc->name = xstrdup(name);
	if (text.len > SCONF_FILE_MAX) {
		buf_addf(err, "%s: file too large (more than %u bytes)\n", name,
		    SCONF_FILE_MAX);
		goto out;
	}
	while (pos < text.len) {
		const char *p = text.p + pos, *nl;
		size_t len, ws, d;
		struct sconf_node *n, *parent;

		nl = memchr(p, '\n', text.len - pos);
		len = nl != NULL ? (size_t)(nl - p) : text.len - pos;
		pos += len + (nl != NULL ? 1 : 0);
		lineno++;
		why = line_bad_bytes(p, len);
		if (why != NULL)
			goto fail;
		if (len == 0)
			continue; /* empty lines are ignored anywhere */
		for (ws = 0; ws < len && is_ws(p[ws]); ws++)
			;
		if (ws == len) {
			why = "line with only whitespace (perhaps stray "
			      "whitespace)";
			goto fail;
		}
		if (p[ws] == '#')
			continue;
		for (d = 0; d < ws; d++) {
			if (p[d] != '\t') {
				why = "space in indent (mixed tab/space "
				      "indenting?); indent with tabs only";
				goto fail;
			}
		}
		if (d >= SCONF_DEPTH_MAX) {
			why = "nesting too deep";
			goto fail;
		}
		if (d > nlevels) {
			why = "unexpected indent (too many tabs)";
			goto fail;
		}
		parent = d == 0 ? &doc->root : level[d - 1];
		if (parent->value != NULL && parent->value[0] != '\0') {
			why = "unexpected indent: the line above already has a "
			      "value";
			goto fail;
		}
		if (++nnodes > SCONF_NODES_MAX) {
			why = "too many lines";
			goto fail;
		}
		n = line_node(p + d, len - d, lineno, &why);
		if (n == NULL)
			goto fail;
		if (parent->nkids > 0 && parent->kids[0]->item != n->item) {
			node_free(n);
			free(n);
			why = "list items and keys mixed at one level";
			goto fail;
		}
		node_add(parent, n);
		level[d] = n;
		nlevels = d + 1;
	}
	*out = doc;
	doc = NULL;
	rc = 0;
	goto out;
fail:
	buf_addf(err, "%s:%u: %s\n", name, lineno, why);
out:
	sconf_doc_free(doc);
	return rc;
}

/* ---------------------------------------------------------------------
 * Base64 (RFC 4648 section 4, standard alphabet with padding); the
 * shared library has none yet.
 */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64val(char c)
{
	const char *p = c != '\0' ? strchr(b64chars, c) : NULL;

	return p != NULL ? (int)(p - b64chars) : -1;
}

static int
b64_decode(const char *s, struct sconf_bytes *out)
{
	size_t len = strlen(s), i, o = 0;
	unsigned char *p;

	if (len % 4 != 0)
		return -1;
	p = xmalloc(len / 4 * 3 + 1);
	for (i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;

		for (int j = 0; j < 4; j++) {
			if (s[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				goto bad;
			v[j] = b64val(s[i + j]);
			if (v[j] < 0)
				goto bad;
		}
		if (pad == 1 && s[i + 3] != '=')
			goto bad;
		p[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			p[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			p[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	out->p = p;
	out->len = o;
	return 0;
bad:
	free(p);
	return -1;
}

static void
b64_encode(struct buf *out, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		buf_addc(out, b64chars[v >> 18 & 63]);
		buf_addc(out, b64chars[v >> 12 & 63]);
		buf_addc(out, i + 1 < len ? b64chars[v >> 6 & 63] : '=');
		buf_addc(out, i + 2 < len ? b64chars[v & 63] : '=');
	}
}

/* ---------------------------------------------------------------------
 * Binder
 */

struct bind {
	const char *name; /* file name for messages */
	struct buf *err;
	struct buf path;  /* dotted field path of the value being bound */
	unsigned nerr;
};

static void PRINTF_LIKE(3, 4)
bind_err(struct bind *b, unsigned line, const char *fmt, ...)
{
	va_list ap;

	b->nerr++;
	if (b->nerr > SCONF_ERRORS_MAX)
		return;
	if (b->nerr == SCONF_ERRORS_MAX) {
		buf_addf(b->err, "%s: too many errors\n", b->name);
		return;
	}
	if (line > 0)
		buf_addf(b->err, "%s:%u: ", b->name, line);
	else
		buf_addf(b->err, "%s: ", b->name);
	if (b->path.len > 0)
		buf_addf(b->err, "%s: ", b->path.data);
	va_start(ap, fmt);
	buf_vaddf(b->err, fmt, ap);
	va_end(ap);
	buf_addc(b->err, '\n');
}

static bool
kind_is_scalar(enum sconf_kind k)
{
	switch (k) {
	case SCONF_STR:
	case SCONF_BOOL:
	case SCONF_INT:
	case SCONF_FLOAT:
	case SCONF_DUR:
	case SCONF_BYTES:
		return true;
	case SCONF_STRUCT:
	case SCONF_PTR:
	case SCONF_LIST:
	case SCONF_MAP:
		return false;
	}
	return false;
}

static int
parse_float(const char *s, double *out)
{
	char *end = NULL;
	double d;

	if (!(char_is_digit(s[0]) || s[0] == '-' || s[0] == '+' ||
		s[0] == '.'))
		return -1;
	if (strpbrk(s, "xXpP") != NULL)
		return -1;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

static void bind_struct(struct bind *b, const struct sconf_type *t,
    void *obj, const struct sconf_node *n);

static void
bind_scalar(struct bind *b, const struct sconf_type *t, void *v,
    const struct sconf_node *n)
{
	const char *s = n->value, *why = NULL;
	int64_t i;
	double d;

	if (s == NULL || n->nkids > 0) {
		bind_err(b, n->line, "expected a value on the same line");
		return;
	}
	switch (t->kind) {
	case SCONF_STR:
		*(char **)v = xstrdup(s);
		return;
	case SCONF_BOOL:
		if (strcmp(s, "true") == 0)
			*(bool *)v = true;
		else if (strcmp(s, "false") == 0)
			*(bool *)v = false;
		else
			bind_err(b, n->line, "expected true or false");
		return;
	case SCONF_INT:
		if (span_i64(span_of_cstr(s), INT64_MIN, INT64_MAX, &i) == -1)
			bind_err(b, n->line, "expected integer");
		else
			*(int64_t *)v = i;
		return;
	case SCONF_FLOAT:
		if (parse_float(s, &d) == -1)
			bind_err(b, n->line, "expected decimal number");
		else
			*(double *)v = d;
		return;
	case SCONF_DUR:
		if (time_parse_duration(s, &i, &why) == -1)
			bind_err(b, n->line,
			    "expected duration like 72h, 1h30m or 15s: %s",
			    why != NULL ? why : "invalid");
		else
			*(int64_t *)v = i;
		return;
	case SCONF_BYTES:
		if (b64_decode(s, (struct sconf_bytes *)v) == -1)
			bind_err(b, n->line, "expected standard base64");
		return;
	case SCONF_STRUCT:
	case SCONF_PTR:
	case SCONF_LIST:
	case SCONF_MAP:
		break;
	}
}

/* Whether n introduces nested lines (empty value, at least one child). */
static bool
nested(struct bind *b, const struct sconf_node *n, const char *what)
{
	if (n->value != NULL && n->value[0] != '\0') {
		bind_err(b, n->line, "expected %s on the following lines, "
				     "indented one more tab", what);
		return false;
	}
	if (n->nkids == 0) {
		bind_err(b, n->line, "expected indent with %s", what);
		return false;
	}
	return true;
}

static void bind_value(struct bind *b, const struct sconf_type *t, void *v,
    const struct sconf_node *n);

static void
pos_init(struct sconf_pos *pos, const struct sconf_type *t, unsigned line)
{
	pos->line = line;
	pos->type = t;
	pos->lines = xcalloc(t->nfields > 0 ? t->nfields : 1, sizeof(unsigned));
}

static void
bind_list(struct bind *b, const struct sconf_type *t, void *v,
    const struct sconf_node *n)
{
	const struct sconf_type *et = t->elem;
	struct list_raw l;
	size_t plen = b->path.len;

	if (!nested(b, n, "list items"))
		return;
	l.n = n->nkids;
	l.v = xcalloc(l.n, et->size);
	l.lines = xcalloc(l.n, sizeof(unsigned));
	memcpy(v, &l, sizeof(l));
	for (size_t i = 0; i < n->nkids; i++) {
		const struct sconf_node *k = n->kids[i];
		void *ev = (char *)l.v + i * et->size;

		l.lines[i] = k->line;

		buf_addf(&b->path, "[%zu]", i);
		if (!k->item)
			bind_err(b, k->line, "expected list item \"- value\"");
		else if (kind_is_scalar(et->kind))
			bind_value(b, et, ev, k);
		else if (k->value != NULL)
			bind_err(b, k->line,
			    "expected \"-\" alone on its line, then fields "
			    "indented one more tab");
		else
			bind_value(b, et, ev, k);
		buf_truncate(&b->path, plen);
	}
}

static void
bind_map(struct bind *b, const struct sconf_type *t, void *v,
    const struct sconf_node *n)
{
	const struct sconf_type *et = t->elem;
	struct map_raw m;
	size_t plen = b->path.len;

	if (n->value != NULL && strcmp(n->value, "nil") == 0 && n->nkids == 0)
		return; /* an empty map */
	if (!nested(b, n, "map entries"))
		return;
	m.n = 0;
	m.keys = xcalloc(n->nkids, sizeof(char *));
	m.vals = xcalloc(n->nkids, et->size);
	m.lines = xcalloc(n->nkids, sizeof(unsigned));
	for (size_t i = 0; i < n->nkids; i++) {
		const struct sconf_node *k = n->kids[i];
		void *ev = (char *)m.vals + m.n * et->size;
		size_t j;

		if (k->item) {
			bind_err(b, k->line, "expected \"key: value\", not a "
					     "list item");
			continue;
		}
		for (j = 0; j < m.n; j++)
			if (strcmp(m.keys[j], k->key) == 0)
				break;
		buf_addf(&b->path, "%s%s", plen > 0 ? "." : "", k->key);
		if (j >= m.n)
			m.lines[m.n] = k->line;
		if (j < m.n)
			bind_err(b, k->line, "duplicate key");
		else if (!kind_is_scalar(et->kind) &&
		    strcmp(k->value, "nil") == 0 && k->nkids == 0) {
			m.keys[m.n++] = xstrdup(k->key); /* zero value */
			if (et->kind == SCONF_STRUCT)
				pos_init((struct sconf_pos *)((char *)ev +
					     et->pos_offset),
				    et, k->line);
		} else {
			m.keys[m.n++] = xstrdup(k->key);
			bind_value(b, et, ev, k);
		}
		buf_truncate(&b->path, plen);
	}
	memcpy(v, &m, sizeof(m));
}

static void
bind_value(struct bind *b, const struct sconf_type *t, void *v,
    const struct sconf_node *n)
{
	void *p;

	switch (t->kind) {
	case SCONF_STR:
	case SCONF_BOOL:
	case SCONF_INT:
	case SCONF_FLOAT:
	case SCONF_DUR:
	case SCONF_BYTES:
		bind_scalar(b, t, v, n);
		return;
	case SCONF_STRUCT:
		if (nested(b, n, "fields"))
			bind_struct(b, t, v, n);
		return;
	case SCONF_PTR:
		if (!nested(b, n, "fields"))
			return;
		p = xcalloc(1, t->elem->size);
		*(void **)v = p;
		bind_struct(b, t->elem, p, n);
		return;
	case SCONF_LIST:
		bind_list(b, t, v, n);
		return;
	case SCONF_MAP:
		bind_map(b, t, v, n);
		return;
	}
}

static void
bind_struct(struct bind *b, const struct sconf_type *t, void *obj,
    const struct sconf_node *n)
{
	struct sconf_pos *pos = (struct sconf_pos *)((char *)obj + t->pos_offset);
	size_t plen = b->path.len;

	pos_init(pos, t, n->line);
	for (size_t i = 0; i < n->nkids; i++) {
		const struct sconf_node *k = n->kids[i];
		size_t f;

		if (k->item) {
			bind_err(b, k->line, "expected \"Key: value\", not a "
					     "list item");
			continue;
		}
		for (f = 0; f < t->nfields; f++)
			if (strcmp(t->fields[f].name, k->key) == 0)
				break;
		buf_addf(&b->path, "%s%s", plen > 0 ? "." : "", k->key);
		if (f == t->nfields)
			bind_err(b, k->line, "unknown field");
		else if (pos->lines[f] != 0)
			bind_err(b, k->line, "duplicate field (first on line %u)",
			    pos->lines[f]);
		else {
			pos->lines[f] = k->line;
			bind_value(b, t->fields[f].type,
			    (char *)obj + t->fields[f].offset, k);
		}
		buf_truncate(&b->path, plen);
	}
	for (size_t f = 0; f < t->nfields; f++) {
		if (t->fields[f].optional || pos->lines[f] != 0)
			continue;
		buf_addf(&b->path, "%s%s", plen > 0 ? "." : "",
		    t->fields[f].name);
		bind_err(b, n->line, "missing required field");
		buf_truncate(&b->path, plen);
	}
}

int
sconf_bind(const struct sconf_doc *doc, const struct sconf_type *t,
    void *obj, struct buf *err)
{
	struct bind b = { .name = doc->name, .err = err };

	buf_init(&b.path, 64 * 1024);
	bind_struct(&b, t, obj, &doc->root);
	buf_release(&b.path);
	return b.nerr > 0 ? -1 : 0;
}

static void
release_value(const struct sconf_type *t, void *v)
{
	struct list_raw l;
	struct map_raw m;
	void *p;

	switch (t->kind) {
	case SCONF_STR:
		free(*(char **)v);
		*(char **)v = NULL;
		return;
	case SCONF_BOOL:
	case SCONF_INT:
	case SCONF_FLOAT:
	case SCONF_DUR:
		return;
	case SCONF_BYTES:
		free(((struct sconf_bytes *)v)->p);
		((struct sconf_bytes *)v)->p = NULL;
		return;
	case SCONF_STRUCT:
		sconf_release(t, v);
		return;
	case SCONF_PTR:
		p = *(void **)v;
		if (p != NULL) {
			sconf_release(t->elem, p);
			free(p);
		}
		*(void **)v = NULL;
		return;
	case SCONF_LIST:
		memcpy(&l, v, sizeof(l));
		for (size_t i = 0; i < l.n; i++)
			release_value(t->elem, (char *)l.v + i * t->elem->size);
		free(l.v);
		free(l.lines);
		memset(v, 0, sizeof(l));
		return;
	case SCONF_MAP:
		memcpy(&m, v, sizeof(m));
		for (size_t i = 0; i < m.n; i++) {
			free(m.keys[i]);
			release_value(t->elem,
			    (char *)m.vals + i * t->elem->size);
		}
		free(m.keys);
		free(m.vals);
		free(m.lines);
		memset(v, 0, sizeof(m));
		return;
	}
}

void
sconf_release(const struct sconf_type *t, void *obj)
{
	struct sconf_pos *pos;

	if (obj == NULL)
		return;
	for (size_t f = 0; f < t->nfields; f++)
		release_value(t->fields[f].type,
		    (char *)obj + t->fields[f].offset);
	pos = (struct sconf_pos *)((char *)obj + t->pos_offset);
	free(pos->lines);
	pos->lines = NULL;
}

static size_t
field_index(const struct sconf_pos *pos, const char *name)
{
	const struct sconf_type *t = pos->type;

	if (t == NULL || pos->lines == NULL)
		return SIZE_MAX;
	for (size_t f = 0; f < t->nfields; f++)
		if (strcmp(t->fields[f].name, name) == 0)
			return f;
	return SIZE_MAX;
}

unsigned
sconf_line(const struct sconf_pos *pos, const char *name)
{
	size_t f = field_index(pos, name);

	if (f != SIZE_MAX && pos->lines[f] != 0)
		return pos->lines[f];
	return pos->line;
}

bool
sconf_present(const struct sconf_pos *pos, const char *name)
{
	size_t f = field_index(pos, name);

	return f != SIZE_MAX && pos->lines[f] != 0;
}

/* ---------------------------------------------------------------------
 * Writer and describe
 */

static bool
is_zero(const struct sconf_type *t, const void *v)
{
	const char *s;
	struct list_raw l;
	struct map_raw m;

	switch (t->kind) {
	case SCONF_STR:
		s = *(char *const *)v;
		return s == NULL || s[0] == '\0';
	case SCONF_BOOL:
		return !*(const bool *)v;
	case SCONF_INT:
	case SCONF_DUR:
		return *(const int64_t *)v == 0;
	case SCONF_FLOAT:
		return *(const double *)v == 0;
	case SCONF_BYTES:
		return ((const struct sconf_bytes *)v)->len == 0;
	case SCONF_STRUCT:
		for (size_t f = 0; f < t->nfields; f++)
			if (!is_zero(t->fields[f].type,
				(const char *)v + t->fields[f].offset))
				return false;
		return true;
	case SCONF_PTR:
		return *(void *const *)v == NULL;
	case SCONF_LIST:
		memcpy(&l, v, sizeof(l));
		return l.n == 0;
	case SCONF_MAP:
		memcpy(&m, v, sizeof(m));
		return m.n == 0;
	}
	return true;
}

static void
tabs(struct buf *out, int indent)
{
	for (int i = 0; i < indent; i++)
		buf_addc(out, '\t');
}

/* Scalar value text; -1 when it cannot be written on one line. */
static int
scalar_text(const struct sconf_type *t, const void *v, struct buf *out,
    const char **why)
{
	const char *s;

	switch (t->kind) {
	case SCONF_STR:
		s = *(char *const *)v;
		if (s == NULL)
			return 0;
		if (strchr(s, '\n') != NULL) {
			*why = "string value with a newline";
			return -1;
		}
		buf_adds(out, s);
		return 0;
	case SCONF_BOOL:
		buf_adds(out, *(const bool *)v ? "true" : "false");
		return 0;
	case SCONF_INT:
		buf_addf(out, "%lld", (long long)*(const int64_t *)v);
		return 0;
	case SCONF_FLOAT:
		buf_addf(out, "%.6f", *(const double *)v);
		return 0;
	case SCONF_DUR:
		time_format_duration(out, *(const int64_t *)v);
		return 0;
	case SCONF_BYTES:
		b64_encode(out, ((const struct sconf_bytes *)v)->p,
		    ((const struct sconf_bytes *)v)->len);
		return 0;
	case SCONF_STRUCT:
	case SCONF_PTR:
	case SCONF_LIST:
	case SCONF_MAP:
		break;
	}
	*why = "not a scalar";
	return -1;
}

static int write_struct(const struct sconf_type *t, const void *obj,
    int indent, struct buf *out, const char **why);

/* "Key:" plus " value" when the value is not empty. */
static int
write_scalar_line(struct buf *out, int indent, const char *prefix,
    const struct sconf_type *t, const void *v, const char **why)
{
	size_t mark;

	tabs(out, indent);
	buf_adds(out, prefix);
	mark = out->len;
	buf_addc(out, ' ');
	if (scalar_text(t, v, out, why) == -1)
		return -1;
	if (out->len == mark + 1 && strcmp(prefix, "-") != 0)
		buf_truncate(out, mark); /* "Key:" for an empty value */
	buf_addc(out, '\n');
	return 0;
}

struct sorted_key {
	const char *key;
	size_t idx;
};

static int
cmp_sorted_keys(const void *a, const void *b)
{
	const struct sorted_key *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static int
write_key(struct buf *out, const char *key, const char **why)
{
	if (key[0] == '\0' || strchr(key, ':') != NULL ||
	    strchr(key, '\n') != NULL || key[0] == '#' || key[0] == ' ' ||
	    key[0] == '\t' || (key[0] == '-' && key[1] == ' ')) {
		*why = "map key that cannot be written";
		return -1;
	}
	buf_adds(out, key);
	buf_addc(out, ':');
	return 0;
}

static int write_value(const char *key, const struct sconf_type *t,
    const void *v, int indent, struct buf *out, const char **why);

static int
write_list(const char *key, const struct sconf_type *t, const void *v,
    int indent, struct buf *out, const char **why)
{
	const struct sconf_type *et = t->elem;
	struct list_raw l;

	memcpy(&l, v, sizeof(l));
	if (l.n == 0) {
		*why = "empty list cannot be written";
		return -1;
	}
	tabs(out, indent);
	if (write_key(out, key, why) == -1)
		return -1;
	buf_addc(out, '\n');
	for (size_t i = 0; i < l.n; i++) {
		const void *ev = (const char *)l.v + i * et->size;

		if (kind_is_scalar(et->kind)) {
			if (write_scalar_line(out, indent + 1, "-", et, ev,
				why) == -1)
				return -1;
			continue;
		}
		if (et->kind == SCONF_PTR)
			ev = *(void *const *)ev;
		if (ev == NULL ||
		    (et->kind != SCONF_STRUCT && et->kind != SCONF_PTR)) {
			*why = "list element that cannot be written";
			return -1;
		}
		tabs(out, indent + 1);
		buf_adds(out, "-\n");
		if (write_struct(et->kind == SCONF_PTR ? et->elem : et, ev,
			indent + 2, out, why) == -1)
			return -1;
	}
	return 0;
}

static int
write_map(const char *key, const struct sconf_type *t, const void *v,
    int indent, struct buf *out, const char **why)
{
	const struct sconf_type *et = t->elem;
	struct sorted_key *sorted;
	struct map_raw m;
	int rc = 0;

	memcpy(&m, v, sizeof(m));
	tabs(out, indent);
	if (write_key(out, key, why) == -1)
		return -1;
	if (m.n == 0) {
		buf_adds(out, " nil\n");
		return 0;
	}
	buf_addc(out, '\n');
	sorted = xcalloc(m.n, sizeof(*sorted));
	for (size_t i = 0; i < m.n; i++)
		sorted[i] = (struct sorted_key){ m.keys[i], i };
	qsort(sorted, m.n, sizeof(*sorted), cmp_sorted_keys);
	for (size_t i = 0; i < m.n && rc == 0; i++) {
		const void *ev = (const char *)m.vals + sorted[i].idx * et->size;

		if (!kind_is_scalar(et->kind) && is_zero(et, ev)) {
			tabs(out, indent + 1);
			rc = write_key(out, sorted[i].key, why);
			buf_adds(out, " nil\n");
		} else
			rc = write_value(sorted[i].key, et, ev, indent + 1, out,
			    why);
	}
	free(sorted);
	return rc;
}

static int
write_value(const char *key, const struct sconf_type *t, const void *v,
    int indent, struct buf *out, const char **why)
{
	switch (t->kind) {
	case SCONF_STR:
	case SCONF_BOOL:
	case SCONF_INT:
	case SCONF_FLOAT:
	case SCONF_DUR:
	case SCONF_BYTES:
		tabs(out, indent);
		if (write_key(out, key, why) == -1)
			return -1;
		return write_scalar_line(out, 0, "", t, v, why);
	case SCONF_STRUCT:
		tabs(out, indent);
		if (write_key(out, key, why) == -1)
			return -1;
		buf_addc(out, '\n');
		return write_struct(t, v, indent + 1, out, why);
	case SCONF_PTR:
		if (*(void *const *)v == NULL)
			return 0;
		return write_value(key, t->elem, *(void *const *)v, indent, out,
		    why);
	case SCONF_LIST:
		return write_list(key, t, v, indent, out, why);
	case SCONF_MAP:
		return write_map(key, t, v, indent, out, why);
	}
	return 0;
}

static int
write_struct(const struct sconf_type *t, const void *obj, int indent,
    struct buf *out, const char **why)
{
	for (size_t f = 0; f < t->nfields; f++) {
		const struct sconf_field *fd = &t->fields[f];
		const void *v = (const char *)obj + fd->offset;

		if (is_zero(fd->type, v) &&
		    (fd->optional || fd->type->kind == SCONF_PTR ||
			fd->type->kind == SCONF_LIST))
			continue;
		if (write_value(fd->name, fd->type, v, indent, out, why) == -1)
			return -1;
	}
	return 0;
}

int
sconf_write(const struct sconf_type *t, const void *obj, struct buf *out,
    const char **why)
{
	if (write_struct(t, obj, 0, out, why) == -1)
		return -1;
	if (buf_failed(out)) {
		*why = "output too large";
		return -1;
	}
	return 0;
}

/* Doc text as "# " lines wrapped at 80 columns (a tab counts as 8). */
static void
describe_doc(struct buf *out, int indent, const char *doc, bool optional)
{
	int width = 80 - 8 * indent - 2;
	const char *p = doc != NULL ? doc : "";

	if (width < 30)
		width = 30;
	while (*p != '\0') {
		size_t n = 0, brk = 0;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		while (p[n] != '\0' && p[n] != '\n') {
			if (p[n] == ' ')
				brk = n;
			if ((int)n >= width && brk > 0)
				break;
			n++;
		}
		if (p[n] != '\0' && p[n] != '\n' && brk > 0)
			n = brk;
		tabs(out, indent);
		buf_adds(out, "# ");
		buf_add(out, p, n);
		buf_addc(out, '\n');
		p += n;
		if (*p == '\n')
			p++;
	}
	if (optional) {
		tabs(out, indent);
		buf_adds(out, "# (optional)\n");
	}
}

static void describe_struct(const struct sconf_type *t, int indent,
    struct buf *out);

static void
describe_value(const char *key, const struct sconf_type *t, int indent,
    struct buf *out)
{
	const struct sconf_type *et = t->elem;
	unsigned char zero[64] = { 0 };
	const char *why = NULL;

	tabs(out, indent);
	if (key != NULL) {
		buf_adds(out, key);
		buf_addc(out, ':');
	} else
		buf_addc(out, '-');
	if (kind_is_scalar(t->kind)) {
		size_t mark = out->len;

		buf_addc(out, ' ');
		(void)scalar_text(t, zero, out, &why);
		if (out->len == mark + 1 && key != NULL)
			buf_truncate(out, mark);
		buf_addc(out, '\n');
		return;
	}
	buf_addc(out, '\n');
	switch (t->kind) {
	case SCONF_STRUCT:
		describe_struct(t, indent + 1, out);
		return;
	case SCONF_PTR:
		describe_struct(et, indent + 1, out);
		return;
	case SCONF_LIST:
		if (kind_is_scalar(et->kind)) {
			describe_value(NULL, et, indent + 1, out);
			return;
		}
		tabs(out, indent + 1);
		buf_adds(out, "-\n");
		describe_struct(et->kind == SCONF_PTR ? et->elem : et,
		    indent + 2, out);
		return;
	case SCONF_MAP:
		describe_value("x", et, indent + 1, out);
		return;
	case SCONF_STR:
	case SCONF_BOOL:
	case SCONF_INT:
	case SCONF_FLOAT:
	case SCONF_DUR:
	case SCONF_BYTES:
		break;
	}
}

static void
describe_struct(const struct sconf_type *t, int indent, struct buf *out)
{
	for (size_t f = 0; f < t->nfields; f++) {
		const struct sconf_field *fd = &t->fields[f];

		if (f > 0 || (indent == 0 && out->len > 0))
			buf_addc(out, '\n');
		describe_doc(out, indent, fd->doc, fd->optional);
		describe_value(fd->name, fd->type, indent, out);
	}
}

void
sconf_describe(const struct sconf_type *t, struct buf *out)
{
	describe_struct(t, 0, out);
}
