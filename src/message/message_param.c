/*
 * message_param.c: Content-Type and Content-Disposition values with their
 * parameters (RFC 2045 5.1, RFC 2183 2, RFC 2231 parameter continuations,
 * charsets and languages). Input is an untrusted raw field value.
 * INTEROP: comments, whitespace around "/" and "=", unquoted values with
 * spaces and RFC 2047 encoded words in values are accepted, as mail
 * clients produce them. Pure: any thread, no I/O, no logging.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

/* Raw parameters (sections included) looked at in one field. */
#define RAW_PARAMS_MAX 1000
#define COMMENT_DEPTH_MAX 32 /* RFC 5322 3.2.2: comments nest */

struct raw_param {
	struct span name;  /* base name, without "*N" and "*" */
	long section;      /* RFC 2231 3: -1 when not a continuation */
	bool ext;          /* RFC 2231 4: trailing "*": charset'lang'%XX */
	char *value;       /* raw value, quotes removed; owned */
};

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip a comment starting at s[*i] == '('. */
static void
skip_comment(const char *s, size_t n, size_t *i)
{
	int depth = 0;

	while (*i < n) {
		char c = s[*i];

		if (c == '\\' && *i + 1 < n) {
			*i += 2;
			continue;
		}
		(*i)++;
		if (c == '(') {
			if (++depth > COMMENT_DEPTH_MAX)
				depth = COMMENT_DEPTH_MAX;
		} else if (c == ')') {
			if (--depth == 0)
				return;
		}
	}
}

static void
skip_cfws(const char *s, size_t n, size_t *i)
{
	while (*i < n) {
		if (is_ws((unsigned char)s[*i]))
			(*i)++;
		else if (s[*i] == '(')
			skip_comment(s, n, i);
		else
			return;
	}
}

/* Advance to the next ";" outside quoted strings, or the end. */
static void
skip_to_semicolon(const char *s, size_t n, size_t *i)
{
	bool quoted = false;

	while (*i < n && (quoted || s[*i] != ';')) {
		if (quoted && s[*i] == '\\' && *i + 1 < n)
			(*i)++;
		else if (s[*i] == '"')
			quoted = !quoted;
		(*i)++;
	}
}

/* Whether s[j] starts, after CFWS, "attribute =": a parameter whose ";"
 * before it is missing. */
static bool
param_follows(const char *s, size_t n, size_t j)
{
	size_t t;

	skip_cfws(s, n, &j);
	t = j;
	while (j < n && s[j] > 0x20 && s[j] < 0x7f &&
	    strchr("()<>@,;:\\\"/[]?=", s[j]) == NULL)
		j++;
	if (j == t)
		return false;
	skip_cfws(s, n, &j);
	return j < n && s[j] == '=';
}

/* Read a value at s[*i]: quoted string or text up to ";" (comments
 * dropped, ends trimmed). Appends to out. RFC 2045 5.1 makes an unquoted
 * value a token; INTEROP: words after it are kept (file names with
 * spaces), but when they read as another parameter with its ";" missing,
 * the value ends at the space and the rest up to ";" is dropped, as
 * Dovecot reads it. */
static void
read_value(const char *s, size_t n, size_t *i, struct buf *out)
{
	size_t keep;

	skip_cfws(s, n, i);
	if (*i < n && s[*i] == '"') {
		(*i)++;
		while (*i < n && s[*i] != '"') {
			if (s[*i] == '\\' && *i + 1 < n)
				(*i)++;
			buf_addc(out, s[*i]);
			(*i)++;
		}
		if (*i < n)
			(*i)++; /* INTEROP: a missing end quote ends at the end */
		while (*i < n && s[*i] != ';')
			(*i)++;
		return;
	}
	keep = 0;
	while (*i < n && s[*i] != ';') {
		if (s[*i] == '(') {
			skip_comment(s, n, i);
			continue;
		}
		/* Looked at once per run of CFWS, so the scan stays linear. */
		if (is_ws((unsigned char)s[*i]) && keep > 0 &&
		    out->len == keep && param_follows(s, n, *i)) {
			skip_to_semicolon(s, n, i);
			break;
		}
		buf_addc(out, s[*i]);
		if (!is_ws((unsigned char)s[*i]))
			keep = out->len;
		(*i)++;
	}
	buf_truncate(out, keep);
}

static int
hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
pct_decode(const char *v, struct buf *out)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++) {
		if (v[i] == '%' && i + 2 < n) {
			int h1 = hexv((unsigned char)v[i + 1]);
			int h2 = hexv((unsigned char)v[i + 2]);

			if (h1 >= 0 && h2 >= 0) {
				buf_addc(out, (char)(h1 * 16 + h2));
				i += 2;
				continue;
			}
		}
		buf_addc(out, v[i]);
	}
}

/* Split "name*N*" into base name, section and extended flag. */
static void
split_name(struct span name, struct raw_param *rp)
{
	rp->section = -1;
	rp->ext = false;
	if (name.len > 0 && name.p[name.len - 1] == '*') {
		rp->ext = true;
		name.len--;
	}
	{
		const char *star = memchr(name.p, '*', name.len);
		uint64_t sec;

		if (star != NULL &&
		    span_u64(span_of(star + 1, name.len -
				      (size_t)(star + 1 - name.p)),
			MESSAGE_RFC2231_SECTIONS_MAX, &sec) == 0) {
			rp->section = (long)sec;
			name.len = (size_t)(star - name.p);
		}
	}
	rp->name = name;
}

static struct raw_param *
find_raw(struct raw_param *raw, size_t nraw, struct span name, long section,
    int ext)
{
	for (size_t i = 0; i < nraw; i++) {
		if (raw[i].name.len != name.len ||
		    strncasecmp(raw[i].name.p, name.p, name.len) != 0)
			continue;
		if (raw[i].section != section)
			continue;
		if (ext >= 0 && raw[i].ext != (ext == 1))
			continue;
		return &raw[i];
	}
	return NULL;
}

/* Combine the raw pieces of parameter name into one UTF-8 value. */
static char *
combine(struct raw_param *raw, size_t nraw, struct span name)
{
	struct buf bytes, out;
	char charset[65] = "";
	const char *why = NULL;
	struct raw_param *rp;
	char *res;
	bool ext_any = false;

	buf_init(&bytes, MESSAGE_VALUE_MAX);
	buf_init(&out, MESSAGE_VALUE_MAX);
	rp = find_raw(raw, nraw, name, -1, 1);
	if (rp != NULL || find_raw(raw, nraw, name, 0, -1) != NULL) {
		/* RFC 2231 3 and 4: sections 0, 1, ... up to the first gap;
		 * charset'language' prefixes the first extended section. */
		for (long sec = rp != NULL ? -1 : 0;
		     sec < MESSAGE_RFC2231_SECTIONS_MAX; sec++) {
			struct raw_param *r = sec == -1
			    ? rp
			    : find_raw(raw, nraw, name, sec, -1);
			const char *v;

			if (r == NULL)
				break;
			v = r->value;
			if (r->ext && !ext_any) {
				const char *q1 = strchr(v, '\''), *q2;

				q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
				if (q2 != NULL) {
					size_t cl = (size_t)(q1 - v);

					if (cl < sizeof(charset)) {
						memcpy(charset, v, cl);
						charset[cl] = '\0';
					}
					v = q2 + 1;
				}
				ext_any = true;
			}
			if (r->ext)
				pct_decode(v, &bytes);
			else
				buf_adds(&bytes, v);
			if (sec == -1)
				break;
		}
		if (message_charset_to_utf8(charset, span_of_buf(&bytes), &out,
			&why) == -1) {
			buf_reset(&out);
			msg_add_utf8(&out, span_of_buf(&bytes));
		}
	} else {
		rp = find_raw(raw, nraw, name, -1, 0);
		if (rp != NULL) /* INTEROP: RFC 2047 words in parameters */
			message_decode_words(span_of_cstr(rp->value), &out);
	}
	res = msg_buf_dup(&out);
	buf_release(&bytes);
	buf_release(&out);
	return res;
}

int
msg_parse_params(struct span rawv, char **value_out,
    struct message_param **params_out, size_t *n_out)
{
	struct buf u, v;
	struct raw_param *raw = NULL;
	struct message_param *params = NULL;
	size_t nraw = 0, np = 0, i = 0, n;
	const char *s;

	*value_out = NULL;
	*params_out = NULL;
	*n_out = 0;
	buf_init(&u, MESSAGE_VALUE_MAX);
	buf_init(&v, MESSAGE_VALUE_MAX);
	(void)message_unfold(rawv, &u);
	s = u.data;
	n = u.len;
	/* The value: whitespace and comments dropped (INTEROP: "image/ jpeg"). */
	while (i < n && s[i] != ';') {
		if (s[i] == '(') {
			skip_comment(s, n, &i);
			continue;
		}
		if (!is_ws((unsigned char)s[i]) && s[i] != '"')
			buf_addc(&v, s[i]);
		i++;
	}
	if (v.len > 0) {
		*value_out = msg_buf_dup(&v);
		msg_lower(*value_out);
	}
	while (i < n && nraw < RAW_PARAMS_MAX) {
		size_t ns, ne;

		while (i < n && (s[i] == ';' || is_ws((unsigned char)s[i])))
			i++;
		skip_cfws(s, n, &i);
		ns = i;
		while (i < n && s[i] != '=' && s[i] != ';' && s[i] != '(' &&
		    !is_ws((unsigned char)s[i]))
			i++;
		ne = i;
		skip_cfws(s, n, &i);
		if (i >= n || s[i] != '=' || ne == ns) {
			while (i < n && s[i] != ';')
				i++;
			continue;
		}
		i++;
		buf_reset(&v);
		read_value(s, n, &i, &v);
		raw = xreallocarray(raw, nraw + 1, sizeof(*raw));
		split_name(span_of(s + ns, ne - ns), &raw[nraw]);
		raw[nraw].value = msg_buf_dup(&v);
		nraw++;
	}
	for (size_t k = 0; k < nraw && np < MESSAGE_PARAMS_MAX; k++) {
		bool seen = false;

		for (size_t j = 0; j < np; j++)
			if (strlen(params[j].name) == raw[k].name.len &&
			    strncasecmp(params[j].name, raw[k].name.p,
				raw[k].name.len) == 0)
				seen = true;
		if (seen || raw[k].name.len == 0)
			continue;
		params = xreallocarray(params, np + 1, sizeof(*params));
		params[np].name = xstrndup(raw[k].name.p, raw[k].name.len);
		msg_lower(params[np].name);
		params[np].value = combine(raw, nraw, raw[k].name);
		np++;
	}
	for (size_t k = 0; k < nraw; k++)
		free(raw[k].value);
	free(raw);
	buf_release(&u);
	buf_release(&v);
	*params_out = params;
	*n_out = np;
	return 0;
}

void
msg_params_free(struct message_param *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

const char *
message_param_get(const struct message_param *params, size_t n,
    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(params[i].name, name) == 0)
			return params[i].value;
	return NULL;
}
