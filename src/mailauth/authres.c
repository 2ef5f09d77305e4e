/*
 * authres.c: Authentication-Results header fields (RFC 8601 2.2-2.7,
 * RFC 6008 for header.b, spec auth.md section 8). Values that come from
 * messages and DNS (domains, selectors, reasons) are quoted or escaped
 * here, so a hostile value cannot add a method or end the field. Pure;
 * any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "lib/banned.h"

#define FOLD_WIDTH 78 /* RFC 5322 2.1.1 */

void
authres_init(struct authres *a, bool smtputf8)
{
	buf_init(&a->text, AUTHRES_MAX);
	a->smtputf8 = smtputf8;
}

void
authres_release(struct authres *a)
{
	if (a == NULL)
		return;
	buf_release(&a->text);
}

/* RFC 2045 5.1 tspecials, whitespace and controls need a quoted-string;
 * "@" too, except in addresses (RFC 8601 2.2 pvalue). */
static bool
needs_quote(const char *v, bool addr, bool smtputf8)
{
	if (*v == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0';
	    p++) {
		if (*p <= 0x20 || *p == 0x7f || strchr("()<>,;:\\\"/[]?=", *p))
			return true;
		if (*p == '@' && !addr)
			return true;
		if (*p >= 0x80 && !smtputf8)
			return true;
	}
	return false;
}

void
authres_value(struct buf *out, const char *value, bool addr, bool smtputf8)
{
	if (!needs_quote(value, addr, smtputf8)) {
		buf_adds(out, value);
		return;
	}
	buf_addc(out, '"');
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n')
			continue; /* never break the field */
		if (*p == '"' || *p == '\\')
			buf_addc(out, '\\');
		buf_addc(out, *p);
	}
	buf_addc(out, '"');
}

static void
add_comment(struct buf *out, const char *c)
{

	buf_addc(out, '(');
	for (const char *p = c; *p != '\0'; p++) {
		/* RFC 5322 3.2.2: escape what would end or nest the comment */
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == '(' || *p == ')' || *p == '\\')
			buf_addc(out, '\\');
		buf_addc(out, *p);
	}
	buf_addc(out, ')');
}

/* Append one token, folding before it when the line would get too long. */
static void
token(struct buf *out, size_t *col, const char *t, size_t n)
{
	if (*col > 1 && *col + 1 + n > FOLD_WIDTH) {
		buf_add(out, "\r\n\t", 3);
		*col = 1;
	} else if (*col > 1) {
		buf_addc(out, ' ');
		(*col)++;
	}
	buf_add(out, t, n);
	*col += n;
}

void
authres_add(struct authres *a, const struct authres_method *m)
{
	struct buf t;
	size_t col = 1;

	buf_init(&t, AUTHRES_MAX);
	/* RFC 8601 2.2: ";" before each method, one method a line */
	buf_add(&a->text, ";\r\n\t", 4);
	buf_addf(&t, "%s=%s", m->method, m->result);
	token(&a->text, &col, t.data, t.len);
	if (m->comment != NULL && (m->reason != NULL || m->nprops > 0)) {
		buf_reset(&t);
		add_comment(&t, m->comment);
		token(&a->text, &col, t.data, t.len);
	}
	if (m->reason != NULL) {
		buf_reset(&t);
		buf_adds(&t, "reason=");
		authres_value(&t, m->reason, false, a->smtputf8);
		token(&a->text, &col, t.data, t.len);
	}
	for (size_t i = 0; i < m->nprops && i < AUTHRES_PROPS_MAX; i++) {
		const struct authres_prop *p = &m->props[i];

		buf_reset(&t);
		buf_addf(&t, "%s.%s=", p->ptype, p->property);
		authres_value(&t, p->value != NULL ? p->value : "", p->addr,
		    a->smtputf8);
		token(&a->text, &col, t.data, t.len);
		if (p->comment != NULL) {
			buf_reset(&t);
			add_comment(&t, p->comment);
			token(&a->text, &col, t.data, t.len);
		}
	}
	buf_release(&t);
}

static void
prop(struct authres_method *m, const char *ptype, const char *property,
    const char *value)
{
	if (value == NULL || m->nprops == AUTHRES_PROPS_MAX)
		return;
	m->props[m->nprops].ptype = ptype;
	m->props[m->nprops].property = property;
	m->props[m->nprops].value = value;
	m->props[m->nprops].addr = false;
	m->props[m->nprops].comment = NULL;
	m->nprops++;
}

/* Spec auth.md 8: one dkim= per signature. */
void
authres_add_dkim(struct authres *a, const struct dkim_result *r, size_t n)
{
	if (n == 0) {
		struct authres_method m = { .method = "dkim", .result = "none",
			.reason = "no dkim signatures" };

		authres_add(a, &m);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct authres_method m = { .method = "dkim" };
		struct buf c, b;

		buf_init(&c, 256);
		buf_init(&b, AUTHRES_BPREFIX + 1);
		m.result = dkim_status_name(r[i].status);
		m.reason = r[i].why;
		if (r[i].record != NULL && r[i].record->keytype == DKIM_KEY_RSA &&
		    !r[i].record->revoked)
			buf_addf(&c, "%u bit rsa, ", r[i].record->bits);
		buf_adds(&c, r[i].record_authentic ? "with dnssec" :
		    "without dnssec");
		m.comment = c.data;
		if (r[i].sig != NULL) {
			const struct dkim_sig *s = r[i].sig;

			/* RFC 6008 4: a prefix of the signature */
			buf_add(&b, s->b64, strlen(s->b64) < AUTHRES_BPREFIX ?
			    strlen(s->b64) : AUTHRES_BPREFIX);
			prop(&m, "header", "d", s->domain);
			prop(&m, "header", "s", s->selector);
			prop(&m, "header", "a", s->algorithm);
			prop(&m, "header", "b", b.data);
			prop(&m, "header", "i", s->identity);
			if (s->identity != NULL)
				m.props[m.nprops - 1].addr = true;
		}
		authres_add(a, &m);
		buf_release(&c);
		buf_release(&b);
	}
}

void
authres_add_dmarc(struct authres *a, const struct dmarc_result *r,
    const char *from_domain)
{
	struct authres_method m = { .method = "dmarc" };
	struct buf c;

	buf_init(&c, 256);
	m.result = dmarc_status_name(r->status);
	buf_adds(&c, r->lookup.authentic ? "with dnssec" : "without dnssec");
	if (r->reject && !r->use)
		buf_adds(&c, ", override sampled_out");
	m.comment = c.data;
	prop(&m, "header", "from", from_domain);
	authres_add(a, &m);
	buf_release(&c);
}

int
authres_finish(struct authres *a, const char *hostname, struct buf *out)
{
	buf_adds(out, "Authentication-Results: ");
	authres_value(out, hostname, false, a->smtputf8);
	if (a->text.len == 0)
		buf_adds(out, "; none"); /* RFC 8601 2.2: no method */
	else
		buf_add(out, a->text.data, a->text.len);
	buf_add(out, "\r\n", 2);
	return buf_failed(out) || buf_failed(&a->text) ? -1 : 0;
}
