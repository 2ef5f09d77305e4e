/*
 * message_thread.c: values the store derives for threading: canonical
 * Message-ID (RFC 5322 3.6.4; spec store.md 3.1), Message-ID lists of
 * References and In-Reply-To, and the base subject (RFC 5256 2.1; spec
 * store.md 8). Input is untrusted header data. Pure: any thread, no I/O,
 * no logging.
 */
#include <string.h>

#include "lib/buf.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

static bool
is_atext(int c)
{
	return char_is_alnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
	    c >= 0x80;
}

/* RFC 5322 3.2.3: dot-atom-text. */
static bool
is_dot_atom(struct span s)
{
	if (s.len == 0 || s.p[0] == '.' || s.p[s.len - 1] == '.')
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '.') {
			if (s.p[i - 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s.p[i])) {
			return false;
		}
	}
	return true;
}

int
message_id_canonical(struct span value, struct buf *out, const char **why)
{
	struct span s = span_trim(value), id;
	const char *gt;
	size_t start = out->len;

	while (s.len > 0 && (s.p[0] == '\r' || s.p[0] == '\n' ||
				s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	if (s.len == 0 || s.p[0] != '<') {
		*why = "message-id without <";
		return -1;
	}
	gt = memchr(s.p, '>', s.len);
	if (gt == NULL) {
		*why = "message-id without >";
		return -1;
	}
	/* INTEROP: "<id> (added by postmaster)": text after a space. */
	if ((size_t)(gt - s.p) + 1 < s.len && gt[1] != ' ' && gt[1] != '\t' &&
	    gt[1] != '\r' && gt[1] != '\n') {
		*why = "junk after message-id";
		return -1;
	}
	id = span_of(s.p + 1, (size_t)(gt - s.p) - 1);
	if (id.len == 0) {
		*why = "empty message-id";
		return -1;
	}
	/* A quoted localpart that needs no quotes loses them. */
	if (id.p[0] == '"') {
		const char *q = memchr(id.p + 1, '"', id.len - 1);

		if (q != NULL && q + 1 < id.p + id.len && q[1] == '@' &&
		    memchr(q + 2, '@', (size_t)(id.p + id.len - (q + 2))) ==
			NULL &&
		    is_dot_atom(span_of(id.p + 1, (size_t)(q - id.p) - 1))) {
			buf_add(out, id.p + 1, (size_t)(q - id.p) - 1);
			id = span_of(q + 1, (size_t)(id.p + id.len - (q + 1)));
		}
	}
	buf_add(out, id.p, id.len);
	if (buf_failed(out)) {
		*why = "message-id too long";
		return -1;
	}
	msg_lower(out->data + start);
	return 0;
}

int
message_refs_walk(struct span value, message_ref_fn *fn, void *arg)
{
	size_t i = 0, n = 0;

	while (i < value.len && n < MESSAGE_ADDRS_MAX) {
		const char *lt = memchr(value.p + i, '<', value.len - i), *gt;
		int rc;

		if (lt == NULL)
			break;
		i = (size_t)(lt - value.p) + 1;
		gt = memchr(value.p + i, '>', value.len - i);
		if (gt == NULL)
			break;
		/* A "<" inside means the previous one was junk. */
		lt = memchr(value.p + i, '<', (size_t)(gt - (value.p + i)));
		if (lt != NULL) {
			i = (size_t)(lt - value.p);
			continue;
		}
		rc = fn(span_of(value.p + i, (size_t)(gt - (value.p + i))),
		    arg);
		if (rc != 0)
			return rc;
		n++;
		i = (size_t)(gt - value.p) + 1;
	}
	return 0;
}

static bool
has_prefix(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);

	return n >= k && memcmp(s, pre, k) == 0;
}

/* RFC 5256 2.1 (3): subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob]
 * ":"; returns the bytes it covers, or 0. */
static size_t
refwd_len(const char *s, size_t n)
{
	size_t i;

	if (has_prefix(s, n, "re"))
		i = 2;
	else if (has_prefix(s, n, "fwd"))
		i = 3;
	else if (has_prefix(s, n, "fw"))
		i = 2;
	else
		return 0;
	while (i < n && s[i] == ' ')
		i++;
	if (i < n && s[i] == '[') {
		const char *e = memchr(s + i, ']', n - i);

		if (e == NULL || memchr(s + i + 1, '[', (size_t)(e - (s + i + 1))))
			return 0;
		i = (size_t)(e - s) + 1;
		while (i < n && s[i] == ' ')
			i++;
	}
	if (i < n && s[i] == ':')
		return i + 1;
	return 0;
}

/* A leading subj-blob "[...]" and following spaces; 0 if none. */
static size_t
blob_len(const char *s, size_t n)
{
	const char *e;
	size_t i;

	if (n == 0 || s[0] != '[')
		return 0;
	e = memchr(s, ']', n);
	if (e == NULL || memchr(s + 1, '[', (size_t)(e - (s + 1))) != NULL)
		return 0;
	i = (size_t)(e - s) + 1;
	while (i < n && s[i] == ' ')
		i++;
	return i;
}

int
message_subject_base(struct span subject, struct buf *out,
    bool *is_response_out)
{
	struct buf b;
	const char *s;
	size_t n, rounds = 0;
	bool resp = false, space = false;
	int rc;

	/* RFC 5256 2.1 (1): whitespace runs become one space. */
	buf_init(&b, MESSAGE_VALUE_MAX);
	for (size_t i = 0; i < subject.len; i++) {
		char c = subject.p[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = true;
			continue;
		}
		if (space && b.len > 0)
			buf_addc(&b, ' ');
		space = false;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf_addc(&b, c);
	}
	s = b.data;
	n = b.len;
	/* Each round removes something or ends; bounded by n. */
	while (rounds++ <= b.len + 1) {
		size_t k;
		bool changed = false;

		/* (2): trailing "(fwd)" and whitespace. */
		for (;;) {
			while (n > 0 && s[n - 1] == ' ')
				n--;
			if (n >= 5 && memcmp(s + n - 5, "(fwd)", 5) == 0) {
				n -= 5;
				resp = true;
				continue;
			}
			break;
		}
		/* (3) and (4): leading re:/fw:/fwd: and [blob]s. */
		for (;;) {
			while (n > 0 && s[0] == ' ') {
				s++;
				n--;
			}
			k = refwd_len(s, n);
			if (k > 0) {
				s += k;
				n -= k;
				resp = true;
				changed = true;
				continue;
			}
			k = blob_len(s, n);
			if (k > 0 && k < n) {
				s += k;
				n -= k;
				changed = true;
				continue;
			}
			break;
		}
		/* (5): "[fwd:" ... "]" around the subject. */
		if (n >= 6 && has_prefix(s, n, "[fwd:") && s[n - 1] == ']') {
			s += 5;
			n -= 6;
			resp = true;
			continue;
		}
		if (!changed)
			break;
	}
	rc = buf_add(out, s, n);
	buf_release(&b);
	if (is_response_out != NULL)
		*is_response_out = resp;
	return rc;
}
