/*
 * message_header.c: header section and field iteration (RFC 5322 2.2,
 * 2.2.3 folding, 4.5 obsolete header syntax). Input is untrusted message
 * data; lines end in LF with an optional CR before it (INTEROP: bare LF
 * from files and local submitters). Pure: any thread, no I/O, no logging.
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

/* End of the line starting at pos: index one past its LF, or len. */
size_t
msg_line_end(const char *p, size_t len, size_t pos)
{
	const char *lf;

	if (pos >= len)
		return len;
	lf = memchr(p + pos, '\n', len - pos);
	if (lf == NULL)
		return len;
	return (size_t)(lf - p) + 1;
}

/* Whether the line [pos, end) is empty: only a line end. */
static bool
line_is_empty(const char *p, size_t pos, size_t end)
{
	size_t n = end - pos;

	return (n == 1 && p[pos] == '\n') ||
	    (n == 2 && p[pos] == '\r' && p[pos + 1] == '\n');
}

/* Length of [pos, end) without its line end. */
static size_t
line_content_len(const char *p, size_t pos, size_t end)
{
	size_t n = end - pos;

	if (n > 0 && p[pos + n - 1] == '\n') {
		n--;
		if (n > 0 && p[pos + n - 1] == '\r')
			n--;
	}
	return n;
}

size_t
message_header_len(struct span msg)
{
	size_t pos = 0;

	while (pos < msg.len) {
		size_t end = msg_line_end(msg.p, msg.len, pos);

		if (line_is_empty(msg.p, pos, end))
			return end;
		pos = end;
	}
	return msg.len;
}

void
message_header_iter_init(struct message_header_iter *it, struct span header)
{
	it->s = scan_of(header);
	it->nfields = 0;
}

int
message_header_next(struct message_header_iter *it, struct message_field *f,
    const char **why)
{
	const char *p = it->s.p;
	size_t len = it->s.len, start = it->s.pos, end, first_end, n, colon;
	const char *c;

	if (start >= len)
		return 0;
	first_end = msg_line_end(p, len, start);
	if (line_is_empty(p, start, first_end)) {
		it->s.pos = first_end;
		return 0;
	}
	if (it->nfields >= MESSAGE_HEADER_FIELDS_MAX) {
		*why = "too many header fields";
		return -1;
	}
	it->nfields++;
	/* RFC 5322 2.2.3: a line starting with WSP continues the field. */
	end = first_end;
	while (end < len && (p[end] == ' ' || p[end] == '\t'))
		end = msg_line_end(p, len, end);
	n = line_content_len(p, start, first_end);
	c = memchr(p + start, ':', n);
	if (c == NULL) {
		f->name = span_of(p + start, n);
		f->value = span_of(p + first_end, 0);
	} else {
		colon = (size_t)(c - p);
		f->name = span_of(p + start, colon - start);
		/* RFC 5322 4.5.3: obsolete WSP between name and colon. */
		while (f->name.len > 0 &&
		    (f->name.p[f->name.len - 1] == ' ' ||
			f->name.p[f->name.len - 1] == '\t'))
			f->name.len--;
		f->value = span_of(p + colon + 1,
		    start + line_content_len(p, start, end) - (colon + 1));
	}
	f->field = span_of(p + start, end - start);
	it->s.pos = end;
	return 1;
}

int
message_header_find(struct span header, const char *name,
    struct span *value_out)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why = NULL;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		if (span_eq_ci(f.name, name)) {
			*value_out = f.value;
			return 0;
		}
	}
	return -1;
}

int
message_unfold(struct span value, struct buf *out)
{
	size_t i = 0, n = value.len;

	while (i < n && (value.p[i] == ' ' || value.p[i] == '\t' ||
			    value.p[i] == '\r' || value.p[i] == '\n'))
		i++;
	while (n > i && (value.p[n - 1] == ' ' || value.p[n - 1] == '\t' ||
			    value.p[n - 1] == '\r' || value.p[n - 1] == '\n'))
		n--;
	for (; i < n; i++) {
		char ch = value.p[i];

		if (ch == '\n')
			continue;
		if (ch == '\r' && i + 1 < n && value.p[i + 1] == '\n')
			continue;
		buf_addc(out, ch);
	}
	return buf_failed(out) ? -1 : 0;
}

char *
msg_unfold_dup(struct span value)
{
	struct buf b;
	char *s;

	/* An oversized value keeps what fit. */
	buf_init(&b, MESSAGE_VALUE_MAX);
	(void)message_unfold(value, &b);
	s = msg_buf_dup(&b);
	buf_release(&b);
	return s;
}

char *
msg_buf_dup(const struct buf *b)
{
	return xstrndup(b->data, b->len);
}

void
msg_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}
