/*
 * publicsuffix.c: the public suffix list and organizational domains (RFC
 * 7489 3.2, with erratum 6729: ICANN section only; spec auth.md section
 * 1). The list file is trusted local data but still parsed with bounds.
 * Lookups are pure and thread-safe on a loaded list.
 */
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "mailauth/publicsuffix.h"
#include "lib/banned.h"

#define ICANN_BEGIN "// ===BEGIN ICANN DOMAINS==="
#define ICANN_END "// ===END ICANN DOMAINS==="

struct publicsuffix_list {
	char **rules;      /* sorted; wildcards kept as "*.x" */
	size_t nrules;
	char **exceptions; /* sorted; without the "!" */
	size_t nexceptions;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
has_non_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static void
lower_ascii(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* The A-label form of a name (lower-case), or NULL. */
static char *
to_ascii(const char *name)
{
	char *out = NULL;

	if (!has_non_ascii(name)) {
		char *s = xstrdup(name);

		lower_ascii(s);
		return s;
	}
	if (idn2_to_ascii_8z(name, &out, IDN2_NONTRANSITIONAL) != IDN2_OK)
		return NULL;
	char *s = xstrdup(out);

	idn2_free(out);
	lower_ascii(s);
	return s;
}

static void
add_rule(struct publicsuffix_list *l, struct span tok)
{
	bool exc = false, wild = false;
	char *raw, *ascii, *full;

	if (l->nrules + l->nexceptions >= PUBLICSUFFIX_RULES_MAX)
		return;
	if (tok.len > 0 && tok.p[0] == '!') {
		exc = true;
		tok = span_of(tok.p + 1, tok.len - 1);
	} else if (tok.len > 2 && tok.p[0] == '*' && tok.p[1] == '.') {
		wild = true;
		tok = span_of(tok.p + 2, tok.len - 2);
	}
	if (tok.len == 0 || tok.len > DNS_NAME_MAX)
		return;
	raw = span_dup(tok);
	ascii = to_ascii(raw);
	free(raw);
	if (ascii == NULL)
		return;
	if (wild) {
		struct buf b;

		buf_init(&b, BUF_NOMAX);
		buf_addf(&b, "*.%s", ascii);
		free(ascii);
		full = buf_take(&b);
	} else {
		full = ascii;
	}
	if (exc) {
		l->exceptions = xreallocarray(l->exceptions, l->nexceptions + 1,
		    sizeof(char *));
		l->exceptions[l->nexceptions++] = full;
	} else {
		l->rules = xreallocarray(l->rules, l->nrules + 1,
		    sizeof(char *));
		l->rules[l->nrules++] = full;
	}
}

struct publicsuffix_list *
publicsuffix_parse(const char *text, size_t len, struct buf *err)
{
	struct publicsuffix_list *l = xcalloc(1, sizeof(*l));
	struct span all = span_of(text, len);
	bool sectioned = false, in = true;
	size_t start = 0;

	for (size_t i = 0; i + strlen(ICANN_BEGIN) <= len; i++) {
		if (memcmp(text + i, ICANN_BEGIN, strlen(ICANN_BEGIN)) == 0) {
			sectioned = true;
			break;
		}
	}
	in = !sectioned;
	while (start < all.len) {
		const char *nl = memchr(all.p + start, '\n', all.len - start);
		size_t end = nl != NULL ? (size_t)(nl - all.p) : all.len;
		struct span line = span_trim(span_of(all.p + start, end - start));

		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		start = end + 1;
		if (span_has_prefix_ci(line, ICANN_BEGIN)) {
			in = true;
			continue;
		}
		if (span_has_prefix_ci(line, ICANN_END)) {
			in = false;
			continue;
		}
		if (!in || line.len == 0 || span_has_prefix_ci(line, "//"))
			continue;
		size_t tl = 0;

		while (tl < line.len && line.p[tl] != ' ' && line.p[tl] != '\t')
			tl++;
		add_rule(l, span_of(line.p, tl));
	}
	if (l->nrules == 0) {
		buf_adds(err, "public suffix list has no rules");
		publicsuffix_free(l);
		return NULL;
	}
	qsort(l->rules, l->nrules, sizeof(char *), cmp_str);
	if (l->nexceptions > 0)
		qsort(l->exceptions, l->nexceptions, sizeof(char *), cmp_str);
	return l;
}

struct publicsuffix_list *
publicsuffix_load(const char *path, struct buf *err)
{
	struct publicsuffix_list *l;
	struct buf text;

	if (path == NULL)
		path = PUBLICSUFFIX_PATH;
	buf_init(&text, PUBLICSUFFIX_FILE_MAX);
	if (io_read_file(path, &text, err) == -1) {
		buf_release(&text);
		return NULL;
	}
	l = publicsuffix_parse(text.data, text.len, err);
	buf_release(&text);
	return l;
}

void
publicsuffix_free(struct publicsuffix_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nrules; i++)
		free(l->rules[i]);
	for (size_t i = 0; i < l->nexceptions; i++)
		free(l->exceptions[i]);
	free(l->rules);
	free(l->exceptions);
	free(l);
}

static bool
contains(char **v, size_t n, const char *s)
{
	return n > 0 && bsearch(&s, v, n, sizeof(char *), cmp_str) != NULL;
}

int
publicsuffix_org_domain(const struct publicsuffix_list *l,
    const char *domain, struct buf *out)
{
	size_t starts[DNS_NAME_MAX / 2 + 2]; /* offset of each label */
	size_t nlabels = 0, ps = 1, len;
	char *d = NULL;
	struct buf tmp;
	int rc = -1;

	buf_init(&tmp, DNS_NAME_MAX + 3);
	d = to_ascii(domain);
	if (d == NULL)
		goto out;
	len = strlen(d);
	if (len > 0 && d[len - 1] == '.')
		d[--len] = '\0';
	if (len == 0 || len > DNS_NAME_MAX)
		goto out;
	for (size_t i = 0, ls = 0; i <= len; i++) {
		if (i < len && d[i] != '.')
			continue;
		if (i == ls || i - ls > DNS_LABEL_MAX)
			goto out;
		starts[nlabels++] = ls;
		ls = i + 1;
	}
	/* k labels from the right start at starts[nlabels - k] */
	bool exception = false;

	for (size_t k = 1; k <= nlabels && !exception; k++) {
		if (contains(l->exceptions, l->nexceptions,
		    d + starts[nlabels - k])) {
			ps = k - 1;
			exception = true;
		}
	}
	for (size_t k = 1; k <= nlabels && !exception; k++) {
		if (contains(l->rules, l->nrules, d + starts[nlabels - k]) &&
		    k > ps)
			ps = k;
		if (k >= 2) {
			buf_reset(&tmp);
			buf_addf(&tmp, "*.%s", d + starts[nlabels - k + 1]);
			if (!buf_failed(&tmp) &&
			    contains(l->rules, l->nrules, tmp.data) && k > ps)
				ps = k;
		}
	}
	if (ps + 1 >= nlabels)
		buf_adds(out, d);
	else
		buf_adds(out, d + starts[nlabels - ps - 1]);
	rc = buf_failed(out) ? -1 : 0;
out:
	free(d);
	buf_release(&tmp);
	return rc;
}

bool
publicsuffix_same_org(const struct publicsuffix_list *l, const char *a,
    const char *b)
{
	struct buf oa, ob;
	bool same;

	buf_init(&oa, DNS_NAME_MAX + 1);
	buf_init(&ob, DNS_NAME_MAX + 1);
	same = publicsuffix_org_domain(l, a, &oa) == 0 &&
	    publicsuffix_org_domain(l, b, &ob) == 0 &&
	    strcmp(oa.data, ob.data) == 0;
	buf_release(&oa);
	buf_release(&ob);
	return same;
}
