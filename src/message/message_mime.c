/*
 * message_mime.c: the MIME part tree of a message (RFC 2045 5 and 6,
 * RFC 2046 5.1 multipart with boundaries, 5.1.5 digest defaults, 5.2.1
 * message/rfc822; RFC 2183 Content-Disposition; RFC 3282
 * Content-Language; RFC 2557 Content-Location; RFC 1864 Content-MD5) and
 * the envelope of each message (RFC 5322 3.6). Input is an untrusted
 * complete message. Malformed structure never fails the parse: missing
 * boundaries, headers without separator line and bare LF line ends all
 * give a tree, and nesting depth and part count are bounded. Pure: any
 * thread, no I/O, no logging.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

struct pctx {
	const char *msg;
	size_t len;
	size_t nparts;  /* parts created so far */
	bool truncated; /* a limit was hit somewhere */
};

#define BOUNDARY_RFC_MAX 70 /* RFC 2046 5.1.1: 1 to 70 characters */

/* Boundaries of the open multiparts, outermost first. */
struct bstack {
	const char *b; /* borrowed from the part's parameters */
	size_t len;
};

/* Where a part stopped: the delimiter line that ended it. */
struct hit {
	size_t pos;      /* start of the delimiter line, or the limit */
	size_t line_end; /* one past its line end */
	int level;       /* index in the boundary stack; -1: none */
	int kind;        /* 1 delimiter, 2 close delimiter */
};

static void parse_part(struct pctx *c, struct message_part *p, size_t start,
    size_t limit, struct bstack *bs, int nb, int depth, bool in_digest,
    struct hit *h);

static bool
is_token_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static bool
token_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_token_char((unsigned char)s[i]))
			return false;
	return true;
}

static char *
decoded_dup(struct span raw)
{
	struct buf b, u;
	char *s;

	buf_init(&u, MESSAGE_VALUE_MAX);
	buf_init(&b, MESSAGE_VALUE_MAX);
	(void)message_unfold(raw, &u);
	(void)message_decode_words(span_of_buf(&u), &b);
	s = msg_buf_dup(&b);
	buf_release(&u);
	buf_release(&b);
	return s;
}

static void
set_content_type(struct message_part *p, struct span raw)
{
	char *v = NULL, *slash;

	msg_params_free(p->params, p->nparams);
	(void)msg_parse_params(raw, &v, &p->params, &p->nparams);
	if (v == NULL)
		return;
	slash = strchr(v, '/');
	/* RFC 2045 5.2: an invalid Content-Type means the default. */
	if (slash != NULL && token_ok(v, (size_t)(slash - v)) &&
	    token_ok(slash + 1, strlen(slash + 1))) {
		free(p->type);
		free(p->subtype);
		p->type = xstrndup(v, (size_t)(slash - v));
		p->subtype = xstrdup(slash + 1);
		p->flags |= MESSAGE_PART_HAS_CTYPE;
	}
	free(v);
}

static void
set_once(char **dst, char *v)
{
	if (*dst == NULL)
		*dst = v;
	else
		free(v);
}

/* INTEROP: a repeated address field (RFC 5322 3.6 allows one) adds to
 * the list, as if its addresses followed a comma, as Dovecot reads it:
 * no address is hidden behind the first field. The list stops growing
 * at MESSAGE_ADDRS_MAX. */
static void
parse_addrs(struct message_addr_list *l, struct span raw)
{
	const char *why = NULL;

	if (l->n >= MESSAGE_ADDRS_MAX)
		return;
	(void)message_addr_parse(raw, l, &why);
}

static struct message_envelope *
parse_envelope(struct span header)
{
	struct message_envelope *e = xcalloc(1, sizeof(*e));
	struct message_header_iter it;
	struct message_field f;
	const char *why = NULL;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		if (span_eq_ci(f.name, "date")) {
			if (e->date == NULL) {
				e->date = msg_unfold_dup(f.value);
				e->date_ok = message_date_parse(
				    span_of_cstr(e->date), &e->date_t,
				    &e->date_off, &why) == 0;
			}
		} else if (span_eq_ci(f.name, "subject")) {
			if (e->subject == NULL) {
				e->subject_raw = msg_unfold_dup(f.value);
				e->subject = decoded_dup(f.value);
			}
		} else if (span_eq_ci(f.name, "from")) {
			parse_addrs(&e->from, f.value);
		} else if (span_eq_ci(f.name, "sender")) {
			parse_addrs(&e->sender, f.value);
		} else if (span_eq_ci(f.name, "reply-to")) {
			parse_addrs(&e->reply_to, f.value);
		} else if (span_eq_ci(f.name, "to")) {
			parse_addrs(&e->to, f.value);
		} else if (span_eq_ci(f.name, "cc")) {
			parse_addrs(&e->cc, f.value);
		} else if (span_eq_ci(f.name, "bcc")) {
			parse_addrs(&e->bcc, f.value);
		} else if (span_eq_ci(f.name, "in-reply-to")) {
			set_once(&e->in_reply_to, msg_unfold_dup(f.value));
		} else if (span_eq_ci(f.name, "message-id")) {
			set_once(&e->message_id, msg_unfold_dup(f.value));
		}
	}
	return e;
}

static void
parse_headers(struct message_part *p, struct span header)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why = NULL;
	bool ctype = false;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		if (!span_has_prefix_ci(f.name, "content-"))
			continue;
		if (span_eq_ci(f.name, "content-type")) {
			if (!ctype)
				set_content_type(p, f.value);
			ctype = true;
		} else if (span_eq_ci(f.name, "content-transfer-encoding")) {
			char *v = NULL;
			struct message_param *pp = NULL;
			size_t np = 0;

			(void)msg_parse_params(f.value, &v, &pp, &np);
			msg_params_free(pp, np);
			if (v != NULL)
				set_once(&p->cte, v);
		} else if (span_eq_ci(f.name, "content-disposition")) {
			char *v = NULL;

			if (p->disposition != NULL)
				continue;
			(void)msg_parse_params(f.value, &v, &p->disp_params,
			    &p->ndisp_params);
			p->disposition = v != NULL ? v : xstrdup("");
		} else if (span_eq_ci(f.name, "content-id")) {
			set_once(&p->id, msg_unfold_dup(f.value));
		} else if (span_eq_ci(f.name, "content-description")) {
			set_once(&p->description, decoded_dup(f.value));
		} else if (span_eq_ci(f.name, "content-language")) {
			set_once(&p->language, msg_unfold_dup(f.value));
		} else if (span_eq_ci(f.name, "content-location")) {
			set_once(&p->location, msg_unfold_dup(f.value));
		} else if (span_eq_ci(f.name, "content-md5")) {
			set_once(&p->md5, msg_unfold_dup(f.value));
		}
	}
}

/* Line ends in [s, e), and whether any is a bare LF. A last line
 * without line end is not counted (INTEROP: as Dovecot counts for IMAP
 * BODYSTRUCTURE, RFC 9051 7.5.2 "size of the body in text lines"). */
static size_t
count_lines(const char *m, size_t s, size_t e, bool *bare_lf)
{
	size_t n = 0, i = s;
	const char *lf;

	while (i < e) {
		lf = memchr(m + i, '\n', e - i);
		if (lf == NULL)
			break;
		if (lf == m + s || lf[-1] != '\r')
			*bare_lf = true;
		n++;
		i = (size_t)(lf - m) + 1;
	}
	return n;
}

static struct message_part *
add_child(struct pctx *c, struct message_part *p)
{
	if (c->nparts >= MESSAGE_PARTS_MAX) {
		c->truncated = true;
		return NULL;
	}
	c->nparts++;
	p->parts = xreallocarray(p->parts, p->nparts + 1, sizeof(*p->parts));
	memset(&p->parts[p->nparts], 0, sizeof(p->parts[0]));
	return &p->parts[p->nparts++];
}

/* RFC 2046 5.1.1: a delimiter line is "--" boundary, the close delimiter
 * has "--" after it; the boundary is compared with the beginning of the
 * line only ("An exact match of the entire candidate line is not
 * required"), so trailing padding or junk is ignored. Returns 1 for a
 * delimiter, 2 for the close delimiter, 0 otherwise. */
static int
delimiter(const char *m, size_t pos, size_t le, const char *bnd, size_t bl)
{
	size_t i;

	if (le - pos < bl + 2 || m[pos] != '-' || m[pos + 1] != '-' ||
	    memcmp(m + pos + 2, bnd, bl) != 0)
		return 0;
	i = pos + 2 + bl;
	if (i + 1 < le && m[i] == '-' && m[i + 1] == '-')
		return 2;
	return 1;
}

/* Length of a boundary when delimiter lines that match several are
 * assigned (find_delim()). */
static size_t
rank(const struct bstack *b)
{
	return b->len < BOUNDARY_RFC_MAX ? b->len : BOUNDARY_RFC_MAX;
}

/* Find the next delimiter line at or after pos of any open multipart
 * (RFC 2046 5.1.2: a boundary of an enclosing multipart ends the inner
 * one too). Fills *h; h->level is -1 when the input ends first.
 * RFC 2046 5.1.1 forbids a boundary that is a prefix of an enclosing
 * one, but generators do nest "ab" in "a" or "a" in "ab"; a line that
 * matches several open boundaries then belongs to the longest of them,
 * the one it spells out in full, the innermost on a tie. Past the 70
 * characters RFC 2046 5.1.1 allows, length does not count: nested
 * boundaries that differ only there are a tie. INTEROP: this is
 * Dovecot's reading (it compares at most 70 characters). */
static void
find_delim(struct pctx *c, size_t pos, size_t limit, const struct bstack *bs,
    int nb, struct hit *h)
{
	const char *m = c->msg;

	while (pos < limit) {
		size_t le = msg_line_end(m, limit, pos);

		h->level = -1;
		if (le - pos >= 2 && m[pos] == '-' && m[pos + 1] == '-') {
			for (int i = nb - 1; i >= 0; i--) {
				int k = delimiter(m, pos, le, bs[i].b, bs[i].len);

				if (k != 0 && (h->level < 0 ||
						  rank(&bs[i]) >
						      rank(&bs[h->level]))) {
					h->level = i;
					h->kind = k;
				}
			}
		}
		if (h->level >= 0) {
			h->pos = pos;
			h->line_end = le;
			return;
		}
		pos = le;
	}
	h->pos = limit;
	h->line_end = limit;
	h->level = -1;
	h->kind = 0;
}

/* End of the content before a delimiter at pos: the line end before it
 * belongs to the delimiter (RFC 2046 5.1.1). */
static size_t
before_delim(const char *m, size_t from, const struct hit *h)
{
	size_t pe = h->pos;

	if (h->level < 0)
		return pe;
	if (pe > from && m[pe - 1] == '\n') {
		pe--;
		if (pe > from && m[pe - 1] == '\r')
			pe--;
	}
	return pe;
}

/* A multipart without usable parts (no boundary, no delimiter) gets one
 * empty text/plain part at its end, so users of the tree (IMAP
 * BODYSTRUCTURE) find at least one, as RFC 2046 5.1.1 requires of the
 * sender. */
static void
add_empty_child(struct pctx *c, struct message_part *p)
{
	struct message_part *ch = add_child(c, p);

	if (ch == NULL)
		return;
	ch->header_off = ch->body_off = ch->end_off = p->end_off;
	ch->type = xstrdup("text");
	ch->subtype = xstrdup("plain");
}

static void
parse_multipart(struct pctx *c, struct message_part *p, size_t limit,
    struct bstack *bs, int nb, int depth, struct hit *h)
{
	const char *m = c->msg;
	bool digest = strcmp(p->subtype, "digest") == 0;
	int me = nb - 1;

	find_delim(c, p->body_off, limit, bs, nb, h);
	/* Preamble skipped; each delimiter of ours starts a part. */
	while (h->level == me && h->kind == 1) {
		size_t start = h->line_end;
		struct message_part *ch = add_child(c, p);

		if (ch == NULL) {
			find_delim(c, start, limit, bs, nb, h);
			continue;
		}
		parse_part(c, ch, start, limit, bs, nb, depth + 1, digest, h);
	}
	if (h->level == me) {
		/* Close delimiter: the epilogue runs to an enclosing
		 * boundary or the end. */
		find_delim(c, h->line_end, limit, bs, nb - 1, h);
	} else {
		p->flags |= MESSAGE_PART_NO_END;
	}
	p->end_off = before_delim(m, p->body_off, h);
	/* An empty last part ("--b" CRLF "--outer") starts after the line
	 * end the parent gives to the delimiter; keep it inside. */
	if (p->nparts > 0 && p->parts[p->nparts - 1].end_off > p->end_off)
		p->end_off = p->parts[p->nparts - 1].end_off;
	if (p->nparts == 0)
		add_empty_child(c, p);
}

/* Whether a header section ends in an empty line (RFC 5322 2.1), rather
 * than at the end of its input. */
static bool
ends_in_empty_line(struct span h)
{
	size_t n = h.len;

	if (n == 0 || h.p[n - 1] != '\n')
		return false;
	n--;
	if (n > 0 && h.p[n - 1] == '\r')
		n--;
	return n == 0 || h.p[n - 1] == '\n';
}

static void
parse_part(struct pctx *c, struct message_part *p, size_t start, size_t limit,
    struct bstack *bs, int nb, int depth, bool in_digest, struct hit *h)
{
	struct span header;
	size_t hl, hend;
	bool bare = false;

	/* The header ends at the empty line, or at a delimiter line of an
	 * open multipart (a part without body). */
	find_delim(c, start, limit, bs, nb, h);
	hend = h->pos;
	hl = message_header_len(span_of(c->msg + start, hend - start));
	header = span_of(c->msg + start, hl);
	p->header_off = start;
	p->body_off = start + hl;
	/* RFC 2045 5.2 default, RFC 2046 5.1.5 default in a digest. */
	p->type = xstrdup(in_digest ? "message" : "text");
	p->subtype = xstrdup(in_digest ? "rfc822" : "plain");
	parse_headers(p, header);
	if (h->level >= 0 && !ends_in_empty_line(header)) {
		/* The header ran into a delimiter of an enclosing multipart:
		 * the part has no body, even when it declares a boundary of
		 * its own that the same line would match (INTEROP: as
		 * Dovecot reads it). Leaves and messages find the same line
		 * below and end there too. */
		if (message_part_is_multipart(p)) {
			p->end_off = p->body_off;
			add_empty_child(c, p);
			goto count;
		}
	}
	if (message_part_is_multipart(p)) {
		const char *bnd = message_param_get(p->params, p->nparams,
		    "boundary");

		if (bnd != NULL && bnd[0] != '\0' &&
		    strlen(bnd) <= MESSAGE_BOUNDARY_MAX) {
			if (depth < MESSAGE_DEPTH_MAX && nb < MESSAGE_DEPTH_MAX) {
				bs[nb].b = bnd;
				bs[nb].len = strlen(bnd);
				parse_multipart(c, p, limit, bs, nb + 1, depth, h);
				goto count;
			}
			c->truncated = true;
			p->flags |= MESSAGE_PART_TRUNCATED;
		}
		find_delim(c, p->body_off, limit, bs, nb, h);
		p->end_off = before_delim(c->msg, p->body_off, h);
		add_empty_child(c, p);
		goto count;
	}
	find_delim(c, p->body_off, limit, bs, nb, h);
	p->end_off = before_delim(c->msg, p->body_off, h);
	if (message_part_is_message(p)) {
		enum message_cte cte = message_cte_of(p->cte);
		size_t ms = p->body_off;
		struct hit inner;

		if (depth >= MESSAGE_DEPTH_MAX ||
		    c->nparts >= MESSAGE_PARTS_MAX) {
			c->truncated = true;
			p->flags |= MESSAGE_PART_TRUNCATED;
			goto count;
		}
		/* RFC 2046 5.2.1: only identity encodings are allowed. An
		 * encoded message part gets an empty nested message at its
		 * end, so that users of the tree (IMAP BODYSTRUCTURE) always
		 * find one. */
		if (cte != MESSAGE_CTE_7BIT && cte != MESSAGE_CTE_8BIT &&
		    cte != MESSAGE_CTE_BINARY)
			ms = p->end_off;
		c->nparts++;
		p->message = xcalloc(1, sizeof(*p->message));
		/* The nested message ends where this body ends. */
		parse_part(c, p->message, ms, p->end_off, bs + nb, 0, depth + 1,
		    false, &inner);
		p->message->end_off = p->end_off;
		p->message->envelope = parse_envelope(span_of(c->msg + ms,
		    p->message->body_off - ms));
	}
count:
	p->body_lines = count_lines(c->msg, p->body_off, p->end_off, &bare);
	(void)count_lines(c->msg, start, p->body_off, &bare);
	if (bare)
		p->flags |= MESSAGE_PART_BARE_LF;
}

int
message_parse(const char *msg, size_t len, struct message_part **root_out,
    const char **why)
{
	struct pctx c = { msg, len, 1, false };
	struct bstack bs[MESSAGE_DEPTH_MAX];
	struct message_part *root;
	struct hit h;

	if (len > (size_t)INT64_MAX) {
		*why = "message too large";
		return -1;
	}
	root = xcalloc(1, sizeof(*root));
	parse_part(&c, root, 0, len, bs, 0, 0, false, &h);
	root->envelope = parse_envelope(span_of(msg, root->body_off));
	if (c.truncated)
		root->flags |= MESSAGE_PART_TRUNCATED;
	*root_out = root;
	return 0;
}

static void
envelope_free(struct message_envelope *e)
{
	if (e == NULL)
		return;
	free(e->date);
	free(e->subject);
	free(e->subject_raw);
	message_addr_list_release(&e->from);
	message_addr_list_release(&e->sender);
	message_addr_list_release(&e->reply_to);
	message_addr_list_release(&e->to);
	message_addr_list_release(&e->cc);
	message_addr_list_release(&e->bcc);
	free(e->in_reply_to);
	free(e->message_id);
	free(e);
}

static void
part_release(struct message_part *p)
{
	free(p->type);
	free(p->subtype);
	msg_params_free(p->params, p->nparams);
	free(p->id);
	free(p->description);
	free(p->cte);
	free(p->disposition);
	msg_params_free(p->disp_params, p->ndisp_params);
	free(p->language);
	free(p->location);
	free(p->md5);
	envelope_free(p->envelope);
	for (size_t i = 0; i < p->nparts; i++)
		part_release(&p->parts[i]);
	free(p->parts);
	message_part_free(p->message);
}

void
message_part_free(struct message_part *p)
{
	if (p == NULL)
		return;
	part_release(p);
	free(p);
}

const char *
message_part_charset(const struct message_part *p)
{
	const char *cs = message_param_get(p->params, p->nparams, "charset");

	return cs != NULL && cs[0] != '\0' ? cs : "us-ascii";
}

bool
message_part_is_multipart(const struct message_part *p)
{
	return strcmp(p->type, "multipart") == 0;
}

bool
message_part_is_message(const struct message_part *p)
{
	return strcmp(p->type, "message") == 0 &&
	    (strcmp(p->subtype, "rfc822") == 0 ||
		strcmp(p->subtype, "global") == 0);
}

bool
message_part_is_text(const struct message_part *p)
{
	return strcmp(p->type, "text") == 0;
}

size_t
message_part_count(const struct message_part *p)
{
	size_t n = 1;

	for (size_t i = 0; i < p->nparts; i++)
		n += message_part_count(&p->parts[i]);
	if (p->message != NULL)
		n += message_part_count(p->message);
	return n;
}

int
message_part_text(const char *msg, size_t len, const struct message_part *p,
    struct buf *out, const char **why)
{
	struct span body;
	struct buf dec;
	int rc = 0;

	if (p->end_off > len || p->body_off > p->end_off) {
		*why = "part outside message";
		return -1;
	}
	body = span_of(msg + p->body_off, p->end_off - p->body_off);
	buf_init(&dec, out->max);
	if (message_decode_cte(message_cte_of(p->cte), body, &dec, why) ==
	    -1) {
		buf_reset(&dec);
		buf_add(&dec, body.p, body.len);
		rc = -1;
	}
	if (message_charset_to_utf8(message_part_charset(p),
		span_of_buf(&dec), out, why) == -1) {
		if (buf_failed(out)) {
			rc = -1;
			goto out;
		}
		msg_add_utf8(out, span_of_buf(&dec));
		rc = -1;
	}
	if (buf_failed(out)) {
		*why = "text too large";
		rc = -1;
	}
out:
	buf_release(&dec);
	return rc;
}

static int
walk(const char *msg, size_t len, const struct message_part *p,
    size_t text_max, message_text_fn *fn, void *arg)
{
	int rc = 0;

	if (p->nparts > 0) {
		for (size_t i = 0; i < p->nparts && rc == 0; i++)
			rc = walk(msg, len, &p->parts[i], text_max, fn, arg);
		return rc;
	}
	if (p->message != NULL)
		return walk(msg, len, p->message, text_max, fn, arg);
	if (message_part_is_text(p)) {
		struct buf t;
		const char *why = NULL;

		buf_init(&t, text_max);
		(void)message_part_text(msg, len, p, &t, &why);
		/* A text cut at text_max is still searched as far as it
		 * goes. */
		rc = fn(p, span_of_buf(&t), arg);
		buf_release(&t);
	}
	return rc;
}

int
message_text_walk(const char *msg, size_t len,
    const struct message_part *root, size_t text_max, message_text_fn *fn,
    void *arg)
{
	return walk(msg, len, root, text_max, fn, arg);
}
