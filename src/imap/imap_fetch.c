/*
 * imap_fetch.c: FETCH data items from a stored message and its MIME tree:
 * ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 7.5.2, RFC 3501 7.4.2),
 * section-spec parsing and extraction (RFC 9051 6.4.5, 9 section),
 * BINARY and BINARY.SIZE (RFC 3516 4), PREVIEW (RFC 8970). Message bytes
 * and tree are untrusted (delivered mail); the section spec comes from
 * the client. Pure: any thread, no I/O, no logging.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "imap/imap_fmt.h"
#include "imap/imap_fetch.h"
#include "lib/banned.h"

const char imap_fetch_err_unknown_cte[] =
    "unknown content-transfer-encoding";

/* RFC 9051 7.5.2 leaves a missing host to the server; NIL would read as
 * group syntax, so a placeholder is sent (INTEROP: as Dovecot does). */
#define MISSING_DOMAIN "MISSING_DOMAIN"
#define MISSING_MAILBOX "MISSING_MAILBOX" /* a name without an address */
#define PREVIEW_TEXT_MAX (256 * 1024)

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* RFC 2047 4.1: one "B" encoded word per 45 input bytes, split on UTF-8
 * character boundaries so each word decodes on its own. */
static void
add_encoded_words(struct buf *out, const char *s)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;

	while (i < n) {
		size_t e = i + 45 < n ? i + 45 : n;

		while (e < n && e > i + 1 && (p[e] & 0xc0) == 0x80)
			e--;
		if (i > 0)
			buf_addc(out, ' ');
		buf_adds(out, "=?utf-8?b?");
		for (size_t j = i; j < e; j += 3) {
			uint32_t v = (uint32_t)p[j] << 16;
			size_t k = e - j;

			if (k > 1)
				v |= (uint32_t)p[j + 1] << 8;
			if (k > 2)
				v |= p[j + 2];
			buf_addc(out, b64[(v >> 18) & 63]);
			buf_addc(out, b64[(v >> 12) & 63]);
			buf_addc(out, k > 1 ? b64[(v >> 6) & 63] : '=');
			buf_addc(out, k > 2 ? b64[v & 63] : '=');
		}
		buf_adds(out, "?=");
		i = e;
	}
}

/* A decoded header text: as it is with UTF-8 allowed or when ASCII,
 * else re-encoded as RFC 2047 words. NULL is NIL, and so is an empty
 * string unless keep_empty. */
static void
add_text(struct buf *out, const char *s, bool utf8_ok, bool keep_empty)
{
	struct buf enc;

	if (s == NULL || (s[0] == '\0' && !keep_empty)) {
		buf_adds(out, "NIL");
		return;
	}
	if (utf8_ok || is_ascii(s)) {
		imap_fmt_nstring(out, s, utf8_ok);
		return;
	}
	buf_init(&enc, BUF_NOMAX);
	add_encoded_words(&enc, s);
	imap_fmt_string(out, enc.data, enc.len, false);
	buf_release(&enc);
}

/* RFC 9051 7.5.2: an address list, or NIL when empty. Groups become a
 * start marker (NIL NIL "name" NIL) and an end marker (NIL NIL NIL NIL). */
static void
add_addrs(struct buf *out, const struct message_addr_list *l, bool utf8_ok)
{
	if (l->n == 0) {
		buf_adds(out, "NIL");
		return;
	}
	buf_addc(out, '(');
	for (size_t i = 0; i < l->n; i++) {
		const struct message_address *a = &l->v[i];

		switch (a->kind) {
		case MESSAGE_ADDR_MAILBOX:
			buf_addc(out, '(');
			add_text(out, a->name, utf8_ok, false);
			buf_addc(out, ' ');
			imap_fmt_nstring(out, a->adl, utf8_ok);
			buf_addc(out, ' ');
			imap_fmt_nstring(out, a->user != NULL ? a->user : MISSING_MAILBOX,
			    utf8_ok);
			buf_addc(out, ' ');
			imap_fmt_nstring(out,
			    a->host != NULL && a->host[0] != '\0' ? a->host :
								    MISSING_DOMAIN,
			    utf8_ok);
			buf_addc(out, ')');
			break;
		case MESSAGE_ADDR_GROUP_START:
			buf_adds(out, "(NIL NIL ");
			imap_fmt_nstring(out, a->group != NULL ? a->group : "",
			    utf8_ok);
			buf_adds(out, " NIL)");
			break;
		case MESSAGE_ADDR_GROUP_END:
			buf_adds(out, "(NIL NIL NIL NIL)");
			break;
		}
	}
	buf_addc(out, ')');
}

void
imap_fetch_envelope(struct buf *out, const struct message_envelope *env,
    bool utf8_ok)
{
	const struct message_addr_list *sender, *reply_to;

	if (env == NULL) {
		buf_adds(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
		return;
	}
	/* RFC 3501 7.4.2: absent or empty Sender and Reply-To take the
	 * value of From. */
	sender = env->sender.n > 0 ? &env->sender : &env->from;
	reply_to = env->reply_to.n > 0 ? &env->reply_to : &env->from;
	buf_addc(out, '(');
	imap_fmt_nstring(out, env->date, utf8_ok);
	buf_addc(out, ' ');
	/* RFC 9051 7.5.2: the subject as in the header; encoded words are
	 * the client's to decode (INTEROP: as Dovecot sends it). */
	imap_fmt_nstring(out, env->subject_raw, utf8_ok);
	buf_addc(out, ' ');
	add_addrs(out, &env->from, utf8_ok);
	buf_addc(out, ' ');
	add_addrs(out, sender, utf8_ok);
	buf_addc(out, ' ');
	add_addrs(out, reply_to, utf8_ok);
	buf_addc(out, ' ');
	add_addrs(out, &env->to, utf8_ok);
	buf_addc(out, ' ');
	add_addrs(out, &env->cc, utf8_ok);
	buf_addc(out, ' ');
	add_addrs(out, &env->bcc, utf8_ok);
	buf_addc(out, ' ');
	imap_fmt_nstring(out, env->in_reply_to, utf8_ok);
	buf_addc(out, ' ');
	imap_fmt_nstring(out, env->message_id, utf8_ok);
	buf_addc(out, ')');
}

/* A string upper-cased (ASCII), as a quoted string or literal; NIL for
 * NULL. spec/imap.md 7: media types, subtypes and parameter names go out
 * upper case, as mox and Dovecot send them. */
static void
add_upper(struct buf *out, const char *s)
{
	struct buf u;

	if (s == NULL) {
		buf_adds(out, "NIL");
		return;
	}
	buf_init(&u, BUF_NOMAX);
	for (; *s != '\0'; s++)
		buf_addc(&u, *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s);
	imap_fmt_string(out, u.data, u.len, false);
	buf_release(&u);
}

static int
upper_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = *a >= 'a' && *a <= 'z' ? *a - 'a' + 'A' : (unsigned char)*a;
		int cb = *b >= 'a' && *b <= 'z' ? *b - 'a' + 'A' : (unsigned char)*b;

		if (ca != cb || ca == 0)
			return ca - cb;
	}
}

static int
param_cmp(const void *a, const void *b)
{
	const struct message_param *pa = a, *pb = b;

	return upper_cmp(pa->name != NULL ? pa->name : "",
	    pb->name != NULL ? pb->name : "");
}

/* body-fld-param: ("NAME" "value" ...) sorted by name, or NIL. Text parts
 * without a charset get RFC 2045 5.2's default (INTEROP: as Dovecot
 * reports it). */
static void
add_params(struct buf *out, const struct message_param *v, size_t n,
    bool add_charset)
{
	struct message_param *sorted;
	size_t m = 0;

	if (n == 0 && !add_charset) {
		buf_adds(out, "NIL");
		return;
	}
	sorted = xreallocarray(NULL, n + 1, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[m++] = v[i];
	if (add_charset) {
		sorted[m].name = (char *)"charset";
		sorted[m].value = (char *)"us-ascii";
		m++;
	}
	qsort(sorted, m, sizeof(*sorted), param_cmp);
	buf_addc(out, '(');
	for (size_t i = 0; i < m; i++) {
		if (i > 0)
			buf_addc(out, ' ');
		add_upper(out, sorted[i].name != NULL ? sorted[i].name : "");
		buf_addc(out, ' ');
		imap_fmt_nstring(out,
		    sorted[i].value != NULL ? sorted[i].value : "", false);
	}
	buf_addc(out, ')');
	free(sorted);
}

/* body-fld-enc: the five of RFC 9051 9 quoted upper case, others as
 * given. */
static void
add_encoding(struct buf *out, const char *cte)
{
	static const char *const known[] = { "7bit", "8bit", "binary",
		"base64", "quoted-printable" };

	if (cte == NULL || cte[0] == '\0')
		cte = "7bit";
	for (size_t i = 0; i < ARRAY_LEN(known); i++)
		if (strcasecmp(cte, known[i]) == 0) {
			add_upper(out, cte);
			return;
		}
	imap_fmt_nstring(out, cte, false);
}

/* body-fld-dsp: ("type" params) or NIL. */
static void
add_disposition(struct buf *out, const struct message_part *p)
{
	if (p->disposition == NULL || p->disposition[0] == '\0') {
		buf_adds(out, "NIL");
		return;
	}
	buf_addc(out, '(');
	imap_fmt_nstring(out, p->disposition, false);
	buf_addc(out, ' ');
	add_params(out, p->disp_params, p->ndisp_params, false);
	buf_addc(out, ')');
}

static bool
is_lang_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* body-fld-lang: the RFC 3282 language tags as a list, or NIL. */
static void
add_language(struct buf *out, const char *lang)
{
	size_t i = 0, n;
	bool any = false;

	if (lang == NULL) {
		buf_adds(out, "NIL");
		return;
	}
	n = strlen(lang);
	while (i < n) {
		size_t s;

		while (i < n && is_lang_sep(lang[i]))
			i++;
		s = i;
		while (i < n && !is_lang_sep(lang[i]))
			i++;
		if (i == s)
			break;
		buf_adds(out, any ? " " : "(");
		any = true;
		imap_fmt_string(out, lang + s, i - s, false);
	}
	buf_adds(out, any ? ")" : "NIL");
}

static void add_body(struct buf *out, const struct message_part *p,
    bool extended);

static void
add_single(struct buf *out, const struct message_part *p, bool extended)
{
	bool text = message_part_is_text(p);

	buf_addc(out, '(');
	add_upper(out, p->type);
	buf_addc(out, ' ');
	add_upper(out, p->subtype);
	buf_addc(out, ' ');
	add_params(out, p->params, p->nparams,
	    text && message_param_get(p->params, p->nparams, "charset") ==
		NULL);
	buf_addc(out, ' ');
	imap_fmt_nstring(out, p->id, false);
	buf_addc(out, ' ');
	add_text(out, p->description, false, true);
	buf_addc(out, ' ');
	add_encoding(out, p->cte);
	buf_addf(out, " %zu", p->end_off - p->body_off);
	if (message_part_is_message(p)) {
		buf_addc(out, ' ');
		if (p->message != NULL) {
			imap_fetch_envelope(out, p->message->envelope, false);
			buf_addc(out, ' ');
			add_body(out, p->message, extended);
		} else {
			imap_fetch_envelope(out, NULL, false);
			buf_adds(out, " (\"TEXT\" \"PLAIN\" NIL NIL NIL "
				      "\"7BIT\" 0 0)");
		}
		buf_addf(out, " %zu", p->body_lines);
	} else if (text) {
		buf_addf(out, " %zu", p->body_lines);
	}
	if (extended) {
		buf_addc(out, ' ');
		imap_fmt_nstring(out, p->md5, false);
		buf_addc(out, ' ');
		add_disposition(out, p);
		buf_addc(out, ' ');
		add_language(out, p->language);
		buf_addc(out, ' ');
		imap_fmt_nstring(out, p->location, false);
	}
	buf_addc(out, ')');
}

static void
add_body(struct buf *out, const struct message_part *p, bool extended)
{
	if (!message_part_is_multipart(p)) {
		add_single(out, p, extended);
		return;
	}
	buf_addc(out, '(');
	/* RFC 9051 9 body-type-mpart: 1*body, so a multipart without
	 * parts (not made by our parser) gets an empty text part. */
	if (p->nparts == 0)
		buf_adds(out, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
	for (size_t i = 0; i < p->nparts; i++)
		add_body(out, &p->parts[i], extended);
	buf_addc(out, ' ');
	add_upper(out, p->subtype);
	if (extended) {
		buf_addc(out, ' ');
		add_params(out, p->params, p->nparams, false);
		buf_addc(out, ' ');
		add_disposition(out, p);
		buf_addc(out, ' ');
		add_language(out, p->language);
		buf_addc(out, ' ');
		imap_fmt_nstring(out, p->location, false);
	}
	buf_addc(out, ')');
}

void
imap_fetch_bodystructure(struct buf *out, const struct message_part *root,
    bool extended)
{
	add_body(out, root, extended);
}

/* ---- section specs ---- */

void
imap_section_release(struct imap_section *sec)
{
	if (sec == NULL)
		return;
	for (size_t i = 0; i < sec->nfields; i++)
		free(sec->fields[i]);
	free(sec->fields);
	sec->fields = NULL;
	sec->nfields = 0;
}

static bool
is_astring_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
}

/* One astring (atom, quoted or inline literal) as a new C string. Field
 * names are printable ASCII (RFC 5322 2.2 ftext), anything else fails. */
static int
scan_field_name(struct scan *s, char **out)
{
	struct buf b;
	struct span a;
	int c = scan_peek(s);
	size_t save = s->pos;

	buf_init(&b, IMAP_SECTION_FIELD_MAX);
	if (c == '"') {
		s->pos++;
		for (;;) {
			c = scan_peek(s);
			if (c == -1)
				goto fail;
			s->pos++;
			if (c == '"')
				break;
			if (c == '\\') {
				c = scan_peek(s);
				if (c != '"' && c != '\\')
					goto fail;
				s->pos++;
			}
			buf_addc(&b, (char)c);
		}
	} else if (c == '{') {
		uint64_t n;

		s->pos++;
		if (scan_u64(s, IMAP_SECTION_FIELD_MAX, &n) == -1)
			goto fail;
		(void)scan_char(s, '+');
		if (scan_lit(s, "}\r\n") == -1 || scan_left(s) < n)
			goto fail;
		buf_add(&b, s->p + s->pos, (size_t)n);
		s->pos += (size_t)n;
	} else {
		if (scan_while(s, is_astring_char, IMAP_SECTION_FIELD_MAX,
			&a) == -1)
			goto fail;
		buf_add(&b, a.p, a.len);
	}
	if (buf_failed(&b) || b.len == 0)
		goto fail;
	for (size_t i = 0; i < b.len; i++) {
		unsigned char ch = (unsigned char)b.data[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == ':')
			goto fail;
	}
	*out = buf_take(&b);
	return 0;
fail:
	buf_release(&b);
	s->pos = save;
	return -1;
}

static int
scan_fields(struct scan *s, struct imap_section *out, const char **why)
{
	if (scan_char(s, ' ') == -1 || scan_char(s, '(') == -1) {
		*why = "expected space and ( after HEADER.FIELDS";
		return -1;
	}
	for (;;) {
		char *name;

		if (out->nfields >= IMAP_SECTION_FIELDS_MAX) {
			*why = "too many header field names";
			return -1;
		}
		if (scan_field_name(s, &name) == -1) {
			*why = "bad header field name";
			return -1;
		}
		out->fields = xreallocarray(out->fields, out->nfields + 1,
		    sizeof(*out->fields));
		out->fields[out->nfields++] = name;
		if (scan_char(s, ')') == 0)
			return 0;
		if (scan_char(s, ' ') == -1) {
			*why = "expected space or ) in header field list";
			return -1;
		}
	}
}

static int
scan_suffix(struct scan *s, struct imap_section *out, bool after_part,
    const char **why)
{
	if (scan_lit_ci(s, "HEADER.FIELDS.NOT") == 0) {
		out->kind = IMAP_SECTION_FIELDS_NOT;
		return scan_fields(s, out, why);
	}
	if (scan_lit_ci(s, "HEADER.FIELDS") == 0) {
		out->kind = IMAP_SECTION_FIELDS;
		return scan_fields(s, out, why);
	}
	if (scan_lit_ci(s, "HEADER") == 0) {
		out->kind = IMAP_SECTION_HEADER;
		return 0;
	}
	if (scan_lit_ci(s, "TEXT") == 0) {
		out->kind = IMAP_SECTION_TEXT;
		return 0;
	}
	/* RFC 9051 9 section-text: MIME only after part numbers. */
	if (after_part && scan_lit_ci(s, "MIME") == 0) {
		out->kind = IMAP_SECTION_MIME;
		return 0;
	}
	*why = "unknown section text";
	return -1;
}

static int
scan_section(struct scan *s, struct imap_section *out, const char **why)
{
	uint64_t v;

	if (scan_char(s, '[') == -1) {
		*why = "expected [";
		return -1;
	}
	while (char_is_digit(scan_peek(s))) {
		if (out->npart >= IMAP_SECTION_DEPTH_MAX) {
			*why = "section part nesting too deep";
			return -1;
		}
		if (scan_u64(s, UINT32_MAX, &v) == -1 || v == 0) {
			*why = "bad section part number";
			return -1;
		}
		out->part[out->npart++] = (uint32_t)v;
		if (scan_char(s, '.') == -1)
			break;
		if (!char_is_digit(scan_peek(s))) {
			if (scan_suffix(s, out, true, why) == -1)
				return -1;
			break;
		}
	}
	if (out->npart == 0 && scan_peek(s) != ']' &&
	    scan_suffix(s, out, false, why) == -1)
		return -1;
	if (scan_char(s, ']') == -1) {
		*why = "expected ] after section";
		return -1;
	}
	if (scan_char(s, '<') == 0) {
		uint64_t o, c;

		/* RFC 9051 9 partial: number "." nz-number, 32-bit. */
		if (scan_u64(s, UINT32_MAX, &o) == -1 ||
		    scan_char(s, '.') == -1 ||
		    scan_u64(s, UINT32_MAX, &c) == -1 || c == 0 ||
		    scan_char(s, '>') == -1) {
			*why = "bad partial";
			return -1;
		}
		out->partial = true;
		out->origin = (uint32_t)o;
		out->count = (uint32_t)c;
	}
	return 0;
}

int
imap_section_scan(struct scan *s, struct imap_section *out, const char **why)
{
	size_t save = s->pos;

	memset(out, 0, sizeof(*out));
	out->kind = IMAP_SECTION_BODY;
	if (scan_section(s, out, why) == -1) {
		s->pos = save;
		return -1;
	}
	return 0;
}

int
imap_section_parse(struct span spec, struct imap_section *out,
    const char **why)
{
	struct scan s = scan_of(spec);

	if (imap_section_scan(&s, out, why) == -1)
		return -1;
	if (!scan_eof(&s)) {
		*why = "junk after section";
		return -1;
	}
	return 0;
}

bool
imap_section_is_binary(const struct imap_section *sec)
{
	return sec->kind == IMAP_SECTION_BODY;
}

void
imap_section_name(struct buf *out, const char *item,
    const struct imap_section *sec, bool with_origin)
{
	buf_adds(out, item);
	buf_addc(out, '[');
	for (size_t i = 0; i < sec->npart; i++)
		buf_addf(out, i > 0 ? ".%u" : "%u", sec->part[i]);
	if (sec->npart > 0 && sec->kind != IMAP_SECTION_BODY)
		buf_addc(out, '.');
	switch (sec->kind) {
	case IMAP_SECTION_BODY:
		break;
	case IMAP_SECTION_HEADER:
		buf_adds(out, "HEADER");
		break;
	case IMAP_SECTION_FIELDS:
	case IMAP_SECTION_FIELDS_NOT:
		buf_adds(out, sec->kind == IMAP_SECTION_FIELDS ?
			"HEADER.FIELDS (" :
			"HEADER.FIELDS.NOT (");
		for (size_t i = 0; i < sec->nfields; i++) {
			if (i > 0)
				buf_addc(out, ' ');
			imap_fmt_astring(out, sec->fields[i], false);
		}
		buf_addc(out, ')');
		break;
	case IMAP_SECTION_TEXT:
		buf_adds(out, "TEXT");
		break;
	case IMAP_SECTION_MIME:
		buf_adds(out, "MIME");
		break;
	}
	buf_addc(out, ']');
	if (sec->partial && with_origin)
		buf_addf(out, "<%u>", sec->origin);
}

/* ---- section extraction ---- */

/* Walk the part numbers (RFC 9051 6.4.5). *part_out is the part; with
 * *entity_out the part is a message (the root, or the one inside a
 * message/rfc822 part) whose part 1 was asked for. */
static int
find_part(const struct message_part *root, const struct imap_section *sec,
    const struct message_part **part_out, const char **why)
{
	const struct message_part *p = root;
	bool entity = true;

	for (size_t i = 0; i < sec->npart; i++) {
		uint32_t n = sec->part[i];

		if (!entity && message_part_is_message(p) && p->message != NULL) {
			p = p->message;
			entity = true;
		}
		if (message_part_is_multipart(p)) {
			if (n < 1 || n > p->nparts)
				goto none;
			p = &p->parts[n - 1];
		} else if (entity) {
			/* A non-multipart message has only part 1: its
			 * body. */
			if (n != 1)
				goto none;
		} else {
			goto none;
		}
		entity = false;
	}
	*part_out = p;
	return 0;
none:
	*why = "no such message part";
	return -1;
}

static bool
field_listed(const struct imap_section *sec, struct span name)
{
	for (size_t i = 0; i < sec->nfields; i++)
		if (span_eq_ci(name, sec->fields[i]))
			return true;
	return false;
}

/* RFC 9051 6.4.5: HEADER.FIELDS and .NOT give the selected fields,
 * continuation lines included, then the empty line. */
static int
add_fields(struct span header, const struct imap_section *sec,
    struct buf *out, const char **why)
{
	struct message_header_iter it;
	struct message_field f;
	bool want = sec->kind == IMAP_SECTION_FIELDS;
	int r;

	message_header_iter_init(&it, header);
	while ((r = message_header_next(&it, &f, why)) == 1) {
		if (f.name.len == 0 || field_listed(sec, f.name) != want)
			continue;
		buf_add(out, f.field.p, f.field.len);
		if (f.field.len == 0 || f.field.p[f.field.len - 1] != '\n')
			buf_adds(out, "\r\n");
	}
	if (r == -1)
		return -1;
	buf_adds(out, "\r\n");
	return 0;
}

/* Header without Content-Transfer-Encoding fields, for BINARY[]. */
static void
add_header_without_cte(struct span header, struct buf *out)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why = NULL;
	size_t used = 0;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		used = (size_t)(f.field.p + f.field.len - header.p);
		if (span_eq_ci(f.name, "content-transfer-encoding"))
			continue;
		buf_add(out, f.field.p, f.field.len);
	}
	/* The empty line (or whatever follows the last field). */
	buf_add(out, header.p + used, header.len - used);
}

static int
decode_body(const char *msg, const struct message_part *p, struct buf *out,
    const char **why)
{
	struct span body = span_of(msg + p->body_off, p->end_off - p->body_off);
	enum message_cte cte = message_cte_of(p->cte);

	if (cte == MESSAGE_CTE_UNKNOWN) {
		*why = imap_fetch_err_unknown_cte;
		return -1;
	}
	if (message_decode_cte(cte, body, out, why) == -1) {
		*why = buf_failed(out) ? "section too large" :
					 imap_fetch_err_unknown_cte;
		return -1;
	}
	return 0;
}

static int
binary_section(const char *msg, size_t len, const struct message_part *root,
    const struct imap_section *sec, struct buf *out, const char **why)
{
	const struct message_part *p;

	if (!imap_section_is_binary(sec)) {
		*why = "BINARY takes part numbers only";
		return -1;
	}
	if (sec->npart == 0) {
		if (message_part_is_multipart(root) ||
		    message_part_is_message(root)) {
			buf_add(out, msg, len);
			return 0;
		}
		add_header_without_cte(span_of(msg + root->header_off,
		    root->body_off - root->header_off), out);
		return decode_body(msg, root, out, why);
	}
	if (find_part(root, sec, &p, why) == -1)
		return -1;
	/* RFC 3516 4.2: BINARY is for leaf parts. */
	if (message_part_is_multipart(p) || message_part_is_message(p)) {
		*why = "BINARY of a part that is not a leaf";
		return -1;
	}
	return decode_body(msg, p, out, why);
}

/* The raw octets of sec as a span of msg, or the generated text in gen. */
static int
body_section(const char *msg, size_t len, const struct message_part *root,
    const struct imap_section *sec, struct span *raw, struct buf *gen,
    const char **why)
{
	const struct message_part *p = root, *m;

	if (sec->npart == 0) {
		if (sec->kind == IMAP_SECTION_BODY) {
			*raw = span_of(msg, len);
			return 0;
		}
		m = root;
	} else {
		if (find_part(root, sec, &p, why) == -1)
			return -1;
		switch (sec->kind) {
		case IMAP_SECTION_BODY:
			*raw = span_of(msg + p->body_off,
			    p->end_off - p->body_off);
			return 0;
		case IMAP_SECTION_MIME:
			*raw = span_of(msg + p->header_off,
			    p->body_off - p->header_off);
			return 0;
		case IMAP_SECTION_HEADER:
		case IMAP_SECTION_FIELDS:
		case IMAP_SECTION_FIELDS_NOT:
		case IMAP_SECTION_TEXT:
			break;
		}
		/* RFC 9051 6.4.5: HEADER and TEXT after part numbers are
		 * for message/rfc822 parts. */
		if (!message_part_is_message(p) || p->message == NULL) {
			*why = "part is not a message";
			return -1;
		}
		m = p->message;
	}
	switch (sec->kind) {
	case IMAP_SECTION_HEADER:
		*raw = span_of(msg + m->header_off, m->body_off - m->header_off);
		return 0;
	case IMAP_SECTION_TEXT:
		*raw = span_of(msg + m->body_off, m->end_off - m->body_off);
		return 0;
	case IMAP_SECTION_FIELDS:
	case IMAP_SECTION_FIELDS_NOT:
		return add_fields(span_of(msg + m->header_off,
		    m->body_off - m->header_off), sec, gen, why);
	case IMAP_SECTION_BODY:
	case IMAP_SECTION_MIME:
		break;
	}
	*why = "MIME needs part numbers";
	return -1;
}

/* Offsets in the tree must lie inside the message. */
static bool
tree_ok(const struct message_part *root, size_t len)
{
	return root->header_off <= root->body_off &&
	    root->body_off <= root->end_off && root->end_off <= len;
}

int
imap_section_extract(const char *msg, size_t len,
    const struct message_part *root, const struct imap_section *sec,
    bool binary, struct buf *out, const char **why)
{
	struct buf gen;
	struct span raw = { NULL, 0 };
	int rc = -1;

	if (!tree_ok(root, len)) {
		*why = "message tree does not fit the message";
		return -1;
	}
	buf_init(&gen, out->max);
	if (binary) {
		if (binary_section(msg, len, root, sec, &gen, why) == -1)
			goto out;
		raw = span_of_buf(&gen);
	} else {
		if (body_section(msg, len, root, sec, &raw, &gen, why) == -1)
			goto out;
		if (raw.p == NULL)
			raw = span_of_buf(&gen);
	}
	if (buf_failed(&gen)) {
		*why = "section too large";
		goto out;
	}
	if (sec->partial) {
		size_t o = sec->origin, c = sec->count;

		if (o >= raw.len) {
			raw.len = 0;
		} else {
			raw.p += o;
			raw.len -= o;
			if (raw.len > c)
				raw.len = c;
		}
	}
	if (buf_add(out, raw.p, raw.len) == -1) {
		*why = "section too large";
		goto out;
	}
	rc = 0;
out:
	buf_release(&gen);
	return rc;
}

int
imap_section_binary_size(const char *msg, size_t len,
    const struct message_part *root, const struct imap_section *sec,
    uint64_t *size_out, const char **why)
{
	struct imap_section whole = *sec;
	struct buf b;
	int rc;

	whole.partial = false;
	buf_init(&b, BUF_NOMAX);
	rc = imap_section_extract(msg, len, root, &whole, true, &b, why);
	if (rc == 0)
		*size_out = b.len;
	buf_release(&b);
	return rc;
}

/* ---- PREVIEW ---- */

struct preview {
	struct buf plain; /* collapsed text of the first text/plain */
	struct buf html;  /* collapsed text of the first text/html */
	bool have_plain, have_html;
};

struct collapse {
	struct buf *out;
	size_t chars;  /* characters appended */
	bool space;    /* a space is pending */
};

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\v';
}

/* Add bytes, collapsing whitespace; false once the preview is full. */
static bool
collapse_add(struct collapse *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (is_ws(ch)) {
			c->space = c->out->len > 0;
			continue;
		}
		if ((ch & 0xc0) != 0x80) {
			if (c->chars + (c->space ? 1 : 0) >= IMAP_PREVIEW_CHARS)
				return false;
			if (c->space) {
				buf_addc(c->out, ' ');
				c->chars++;
			}
			c->space = false;
			c->chars++;
		}
		buf_addc(c->out, (char)ch);
	}
	return true;
}

static void
utf8_put(struct buf *out, uint32_t c)
{
	if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		c = 0xfffd;
	if (c < 0x80) {
		buf_addc(out, (char)c);
	} else if (c < 0x800) {
		buf_addc(out, (char)(0xc0 | (c >> 6)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	} else if (c < 0x10000) {
		buf_addc(out, (char)(0xe0 | (c >> 12)));
		buf_addc(out, (char)(0x80 | ((c >> 6) & 0x3f)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	} else {
		buf_addc(out, (char)(0xf0 | (c >> 18)));
		buf_addc(out, (char)(0x80 | ((c >> 12) & 0x3f)));
		buf_addc(out, (char)(0x80 | ((c >> 6) & 0x3f)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	}
}

/* Decode the entity at t[*i] ("&...;"), or copy the "&". */
static void
html_entity(struct span t, size_t *i, struct buf *tmp)
{
	static const struct {
		const char *name;
		uint32_t c;
	} names[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		{ "quot;", '"' }, { "apos;", '\'' }, { "nbsp;", ' ' },
	};
	size_t j = *i + 1;
	uint32_t v = 0;

	for (size_t k = 0; k < ARRAY_LEN(names); k++) {
		size_t n = strlen(names[k].name);

		if (t.len - j >= n && memcmp(t.p + j, names[k].name, n) == 0) {
			utf8_put(tmp, names[k].c);
			*i = j + n;
			return;
		}
	}
	if (j < t.len && t.p[j] == '#') {
		bool hex = j + 1 < t.len && (t.p[j + 1] == 'x' ||
		    t.p[j + 1] == 'X');
		size_t d = j + (hex ? 2 : 1), e = d;

		for (; e < t.len && e - d < 7; e++) {
			int ch = (unsigned char)t.p[e];
			int dv = char_is_digit(ch) ? ch - '0' :
			    hex && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
			    hex && ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;

			if (dv < 0)
				break;
			v = v * (hex ? 16 : 10) + (uint32_t)dv;
		}
		if (e > d && e < t.len && t.p[e] == ';') {
			utf8_put(tmp, v);
			*i = e + 1;
			return;
		}
	}
	buf_addc(tmp, '&');
	*i += 1;
}

static bool
has_prefix_ci(struct span t, size_t i, const char *s)
{
	return span_has_prefix_ci(span_of(t.p + i, t.len - i), s);
}

/* Text of HTML: tags and comments removed, script and style content
 * dropped, entities decoded; block tags leave a space. */
static void
html_to_text(struct span t, struct buf *tmp)
{
	size_t i = 0;

	while (i < t.len) {
		const char *end = NULL;

		if (t.p[i] == '&') {
			html_entity(t, &i, tmp);
			continue;
		}
		if (t.p[i] != '<') {
			buf_addc(tmp, t.p[i++]);
			continue;
		}
		if (has_prefix_ci(t, i, "<!--"))
			end = "-->";
		else if (has_prefix_ci(t, i, "<script"))
			end = "</script";
		else if (has_prefix_ci(t, i, "<style"))
			end = "</style";
		if (end != NULL) {
			size_t n = strlen(end);

			while (i < t.len && !has_prefix_ci(t, i, end))
				i++;
			i += i < t.len ? n : 0;
		}
		while (i < t.len && t.p[i] != '>')
			i++;
		if (i < t.len)
			i++;
		buf_addc(tmp, ' ');
	}
}

static int
preview_part(const struct message_part *p, struct span text, void *arg)
{
	struct preview *pv = arg;
	bool html = strcmp(p->subtype, "html") == 0;
	struct collapse c;
	struct buf tmp;

	if (strcmp(p->subtype, "plain") != 0 && !html)
		return 0;
	if (html && pv->have_html)
		return 0;
	c.out = html ? &pv->html : &pv->plain;
	c.chars = 0;
	c.space = false;
	if (html) {
		buf_init(&tmp, BUF_NOMAX);
		html_to_text(text, &tmp);
		(void)collapse_add(&c, tmp.data, tmp.len);
		buf_release(&tmp);
		pv->have_html = c.out->len > 0;
		return 0;
	}
	(void)collapse_add(&c, text.p, text.len);
	if (c.out->len == 0)
		return 0;
	pv->have_plain = true;
	return 1;
}

int
imap_fetch_preview(const char *msg, size_t len,
    const struct message_part *root, struct buf *out)
{
	struct preview pv;
	int rc;

	buf_init(&pv.plain, BUF_NOMAX);
	buf_init(&pv.html, BUF_NOMAX);
	pv.have_plain = pv.have_html = false;
	if (tree_ok(root, len))
		(void)message_text_walk(msg, len, root, PREVIEW_TEXT_MAX,
		    preview_part, &pv);
	if (pv.have_plain)
		rc = buf_add(out, pv.plain.data, pv.plain.len);
	else
		rc = buf_add(out, pv.html.data, pv.html.len);
	buf_release(&pv.plain);
	buf_release(&pv.html);
	return rc;
}
