/*
 * message_addr.c: address lists (RFC 5322 3.4 mailbox, group, address
 * list; obsolete forms of 4.4: routes, phrases with dots, empty list
 * members, CFWS between localpart words; RFC 6532 3.2 UTF-8 in names and
 * addresses; RFC 2047 5 encoded words in display names). Input is an
 * untrusted raw field value. INTEROP: missing angle brackets, encoded
 * words inside quoted names, stray junk between addresses, unclosed
 * groups, a comment as the display name ("user@host (Name)") and a
 * display name without an address are accepted, as mail clients and
 * Dovecot do. Pure: any thread, no I/O, no logging.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "message/message_int.h"
#include "lib/banned.h"

#define COMMENT_DEPTH_MAX 32

enum tok {
	T_END,
	T_ATOM,    /* atext run (RFC 5322 3.2.3), 8-bit bytes included */
	T_QUOTED,  /* quoted-string, val is the inside, escapes kept */
	T_LITERAL, /* domain-literal, val includes the brackets */
	T_SPECIAL, /* one of < > @ , ; : . [ ] \ ) */
};

struct lex {
	const char *p;
	size_t n, i;
	struct span comment; /* inside of the last comment skipped */
};

struct token {
	enum tok t;
	struct span val;
	char c;       /* the special character */
	bool ws;      /* whitespace or a comment came before it */
};

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_special(int c)
{
	return strchr("()<>@,;:\\\".[]", c) != NULL;
}

static void
lex_skip_cfws(struct lex *lx, bool *ws)
{
	while (lx->i < lx->n) {
		char c = lx->p[lx->i];

		if (is_ws((unsigned char)c)) {
			lx->i++;
			*ws = true;
		} else if (c == '(') {
			size_t s = lx->i + 1, e = lx->n;
			int depth = 0;

			*ws = true;
			while (lx->i < lx->n) {
				char d = lx->p[lx->i++];

				if (d == '\\' && lx->i < lx->n) {
					lx->i++;
				} else if (d == '(' && depth < COMMENT_DEPTH_MAX) {
					depth++;
				} else if (d == ')' && --depth <= 0) {
					e = lx->i - 1;
					break;
				}
			}
			lx->comment = span_of(lx->p + s, e - s);
		} else {
			return;
		}
	}
}

/* Always advances unless at the end. */
static void
lex_next(struct lex *lx, struct token *t)
{
	size_t s;
	char c;

	t->ws = false;
	lex_skip_cfws(lx, &t->ws);
	if (lx->i >= lx->n) {
		t->t = T_END;
		return;
	}
	s = lx->i;
	c = lx->p[s];
	if (c == '"') {
		lx->i++;
		while (lx->i < lx->n && lx->p[lx->i] != '"') {
			if (lx->p[lx->i] == '\\' && lx->i + 1 < lx->n)
				lx->i++;
			lx->i++;
		}
		t->t = T_QUOTED;
		t->val = span_of(lx->p + s + 1, lx->i - s - 1);
		if (lx->i < lx->n)
			lx->i++; /* INTEROP: unterminated quote ends the value */
		return;
	}
	if (c == '[') {
		const char *e = memchr(lx->p + s, ']', lx->n - s);

		if (e != NULL) {
			lx->i = (size_t)(e - lx->p) + 1;
			t->t = T_LITERAL;
			t->val = span_of(lx->p + s, lx->i - s);
			return;
		}
	}
	if (is_special((unsigned char)c)) {
		lx->i++;
		t->t = T_SPECIAL;
		t->c = c;
		t->val = span_of(lx->p + s, 1);
		return;
	}
	while (lx->i < lx->n && !is_ws((unsigned char)lx->p[lx->i]) &&
	    !is_special((unsigned char)lx->p[lx->i]))
		lx->i++;
	t->t = T_ATOM;
	t->val = span_of(lx->p + s, lx->i - s);
}

static void
peek(struct lex *lx, struct token *t)
{
	size_t save = lx->i;

	lex_next(lx, t);
	lx->i = save;
}

/* Append a quoted-string's inside without escapes and line ends. */
static void
add_unquoted(struct buf *b, struct span v)
{
	for (size_t i = 0; i < v.len; i++) {
		char c = v.p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '\\' && i + 1 < v.len)
			c = v.p[++i];
		buf_addc(b, c);
	}
}

static char *
take_decoded(struct buf *phrase)
{
	struct buf out;
	char *s = NULL;
	struct span t;

	buf_init(&out, MESSAGE_VALUE_MAX);
	(void)message_decode_words(span_of_buf(phrase), &out);
	t = span_trim(span_of_buf(&out));
	if (t.len > 0)
		s = xstrndup(t.p, t.len);
	buf_release(&out);
	buf_reset(phrase);
	return s;
}

/* INTEROP: "user@host (Name)", the RFC 822 habit that RFC 5322 4.4
 * keeps readable: without a phrase, the last comment of the addr-spec
 * is the display name, as Dovecot and mail clients show it. */
static char *
comment_name(struct span comment)
{
	struct buf b;
	char *s;

	if (comment.len == 0)
		return NULL;
	buf_init(&b, MESSAGE_VALUE_MAX);
	add_unquoted(&b, comment);
	s = take_decoded(&b);
	buf_release(&b);
	return s;
}

static int
emit(struct message_addr_list *l, enum message_addr_kind kind, char *name,
    char *adl, char *user, char *host, char *group, size_t *count)
{
	struct message_address *a;

	if (*count >= MESSAGE_ADDRS_MAX) {
		free(name);
		free(adl);
		free(user);
		free(host);
		free(group);
		return -1;
	}
	(*count)++;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	a = &l->v[l->n++];
	a->kind = kind;
	a->name = name;
	a->adl = adl;
	a->user = user;
	a->host = host;
	a->group = group;
	return 0;
}

/* Domain after "@": atoms, dots and literals up to a delimiter. */
static char *
read_domain(struct lex *lx)
{
	struct buf d;
	struct token t;
	char *s = NULL;

	buf_init(&d, MESSAGE_VALUE_MAX);
	for (;;) {
		peek(lx, &t);
		if (t.t == T_ATOM || t.t == T_LITERAL ||
		    (t.t == T_SPECIAL && t.c == '.')) {
			lex_next(lx, &t);
			buf_add(&d, t.val.p, t.val.len);
			continue;
		}
		break;
	}
	if (d.len > 0)
		s = msg_buf_dup(&d);
	buf_release(&d);
	return s;
}

/* Inside "<...>": [route ":"] addr-spec ">". The "<" is consumed. */
static int
read_angle(struct lex *lx, struct message_addr_list *l, char *name,
    size_t *count)
{
	struct buf lp, adl;
	struct token t;
	char *host = NULL, *adls = NULL, *user;
	bool have = false;
	int rc;

	buf_init(&lp, MESSAGE_VALUE_MAX);
	buf_init(&adl, MESSAGE_VALUE_MAX);
	peek(lx, &t);
	if (t.t == T_SPECIAL && t.c == '@') {
		/* RFC 5322 4.4: obs-route, "@a,@b:" before the addr-spec. */
		while (lx->i < lx->n) {
			lex_next(lx, &t);
			if (t.t == T_END || (t.t == T_SPECIAL &&
						(t.c == ':' || t.c == '>')))
				break;
			buf_add(&adl, t.val.p, t.val.len);
		}
		if (t.t == T_SPECIAL && t.c == '>')
			goto close;
	}
	for (;;) {
		lex_next(lx, &t);
		if (t.t == T_END)
			break;
		if (t.t == T_ATOM || t.t == T_LITERAL) {
			buf_add(&lp, t.val.p, t.val.len);
			have = true;
		} else if (t.t == T_QUOTED) {
			add_unquoted(&lp, t.val);
			have = true;
		} else if (t.c == '.') {
			buf_addc(&lp, '.');
		} else if (t.c == '@') {
			/* INTEROP: "<a@b@c>": the last domain wins. */
			free(host);
			host = read_domain(lx);
		} else if (t.c == '>') {
			break;
		}
		/* INTEROP: other junk inside the brackets is skipped. */
	}
close:
	if (!have && host == NULL && name == NULL) {
		/* "<>" alone (a null return path): nothing to report */
		buf_release(&lp);
		buf_release(&adl);
		return 0;
	}
	if (adl.len > 0)
		adls = msg_buf_dup(&adl);
	/* INTEROP: "Name <>" is a display name without an address; it is
	 * kept, with user and host NULL, as Dovecot keeps it. */
	user = have || host != NULL ? msg_buf_dup(&lp) : NULL;
	rc = emit(l, MESSAGE_ADDR_MAILBOX, name, adls, user, host, NULL,
	    count);
	buf_release(&lp);
	buf_release(&adl);
	return rc;
}

int
message_addr_parse(struct span value, struct message_addr_list *out,
    const char **why)
{
	struct lex lx = { value.p, value.len, 0, { NULL, 0 } };
	struct buf phrase, lp;
	struct token t;
	size_t count = 0;
	/* words: the current address has words so far; spaced: some are
	 * separated by whitespace, so they are a phrase, not a localpart */
	bool in_group = false, words = false, spaced = false;
	int rc = 0;

	buf_init(&phrase, MESSAGE_VALUE_MAX);
	buf_init(&lp, MESSAGE_VALUE_MAX);
	for (;;) {
		lex_next(&lx, &t);
		if (t.t == T_ATOM || t.t == T_QUOTED || t.t == T_LITERAL) {
			if (!words)
				lx.comment = span_of(NULL, 0); /* one before */
			if (t.ws && phrase.len > 0) {
				buf_addc(&phrase, ' ');
				spaced = true;
			}
			if (t.t == T_QUOTED) {
				add_unquoted(&phrase, t.val);
				add_unquoted(&lp, t.val);
			} else {
				buf_add(&phrase, t.val.p, t.val.len);
				buf_add(&lp, t.val.p, t.val.len);
			}
			words = true;
			continue;
		}
		if (t.t == T_SPECIAL && t.c == '.') {
			buf_addc(&phrase, '.');
			buf_addc(&lp, '.');
			continue;
		}
		if (t.t == T_SPECIAL && t.c == '<') {
			char *name = take_decoded(&phrase);

			buf_reset(&lp);
			words = spaced = false;
			if (read_angle(&lx, out, name, &count) == -1)
				goto limit;
			continue;
		}
		if (t.t == T_SPECIAL && t.c == '@') {
			char *host;

			if (!words)
				lx.comment = span_of(NULL, 0);
			/* read_domain() looks past the CFWS after the domain,
			 * so a trailing comment is in lx.comment. */
			host = read_domain(&lx);
			if (emit(out, MESSAGE_ADDR_MAILBOX,
				comment_name(lx.comment), NULL,
				msg_buf_dup(&lp), host, NULL, &count) == -1)
				goto limit;
			buf_reset(&phrase);
			buf_reset(&lp);
			words = spaced = false;
			continue;
		}
		if (t.t == T_SPECIAL && t.c == ':' && !in_group) {
			/* RFC 5322 3.4: group = display-name ":" [list] ";" */
			char *g = take_decoded(&phrase);

			buf_reset(&lp);
			words = spaced = false;
			if (emit(out, MESSAGE_ADDR_GROUP_START, NULL, NULL, NULL,
				NULL, g != NULL ? g : xstrdup(""), &count) == -1)
				goto limit;
			in_group = true;
			continue;
		}
		if (t.t == T_END || (t.t == T_SPECIAL &&
					(t.c == ',' || t.c == ';'))) {
			if (words && spaced) {
				/* INTEROP: "Some Name" alone is a display name
				 * without an address (user and host NULL), as
				 * Dovecot reads it. */
				char *nm = take_decoded(&phrase);

				if (nm != NULL &&
				    emit(out, MESSAGE_ADDR_MAILBOX, nm, NULL,
					NULL, NULL, NULL, &count) == -1)
					goto limit;
			} else if (words) {
				/* INTEROP: a bare localpart without domain,
				 * "user (Name)" included. */
				if (emit(out, MESSAGE_ADDR_MAILBOX,
					comment_name(lx.comment), NULL,
					msg_buf_dup(&lp), NULL, NULL,
					&count) == -1)
					goto limit;
			}
			buf_reset(&phrase);
			buf_reset(&lp);
			words = spaced = false;
			if ((t.t == T_END || t.c == ';') && in_group) {
				if (emit(out, MESSAGE_ADDR_GROUP_END, NULL, NULL,
					NULL, NULL, NULL, &count) == -1)
					goto limit;
				in_group = false;
			}
			if (t.t == T_END)
				break;
			continue;
		}
		/* INTEROP: stray ">", "]", "\\", ")" or ":" are skipped. */
	}
	goto out;
limit:
	*why = "too many addresses";
	rc = -1;
out:
	buf_release(&phrase);
	buf_release(&lp);
	return rc;
}

void
message_addr_list_release(struct message_addr_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].adl);
		free(l->v[i].user);
		free(l->v[i].host);
		free(l->v[i].group);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const struct message_address *
message_addr_first(const struct message_addr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == MESSAGE_ADDR_MAILBOX)
			return &l->v[i];
	return NULL;
}
