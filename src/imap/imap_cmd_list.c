/*
 * imap_cmd_list.c: LIST (RFC 9051 6.3.9; RFC 5258 LIST-EXTENDED; RFC
 * 6154 SPECIAL-USE; RFC 5819 LIST-STATUS) and LSUB (RFC 3501 6.3.9) as
 * spec/imap.md 8.1 and 5.1 describe: one personal namespace, "/" as the
 * separator, special-use attributes always sent.
 *
 * Thread rule: the session's thread; store calls block on SQLite.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "lib/banned.h"

#define LIST_PATTERNS_MAX 100
#define LIST_WILDCARDS_MAX 8 /* bounds the backtracking of match() */

/* Match name against a pattern of RFC 9051 6.3.9: "*" anything, "%"
 * anything without "/". Backtracking; callers bound the number of
 * wildcards (LIST_WILDCARDS_MAX). */
static bool
match(const char *pat, const char *name)
{
	if (*pat == '\0')
		return *name == '\0';
	if (*pat == '*') {
		for (const char *n = name;; n++) {
			if (match(pat + 1, n))
				return true;
			if (*n == '\0')
				return false;
		}
	}
	if (*pat == '%') {
		for (const char *n = name;; n++) {
			if (match(pat + 1, n))
				return true;
			if (*n == '\0' || *n == '/')
				return false;
		}
	}
	return *pat == *name && match(pat + 1, name + 1);
}

static size_t
wildcards(const char *p)
{
	size_t n = 0;

	for (; *p != '\0'; p++)
		n += *p == '*' || *p == '%';
	return n;
}

/* Reference and pattern joined, with an Inbox first element
 * normalised (spec/imap.md 8.1). NULL when it matches nothing. */
static char *
full_pattern(const char *ref, const char *pat)
{
	struct buf b;
	char *r;

	if (ref[0] == '/' || (ref[0] == '\0' && pat[0] == '/'))
		return NULL;
	buf_init(&b, BUF_NOMAX);
	buf_adds(&b, ref);
	if (ref[0] != '\0' && ref[strlen(ref) - 1] != '/' && pat[0] != '/')
		buf_addc(&b, '/');
	buf_adds(&b, pat);
	r = buf_take(&b);
	if (strncasecmp(r, "inbox", 5) == 0 && (r[5] == '\0' || r[5] == '/'))
		memcpy(r, "Inbox", 5);
	return r;
}

static void
special_attrs(struct buf *b, unsigned su)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ STORE_SU_ARCHIVE, "\\Archive" },
		{ STORE_SU_DRAFTS, "\\Drafts" },
		{ STORE_SU_JUNK, "\\Junk" },
		{ STORE_SU_SENT, "\\Sent" },
		{ STORE_SU_TRASH, "\\Trash" },
	};

	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (su & names[i].bit) {
			if (b->len > 0)
				buf_addc(b, ' ');
			buf_adds(b, names[i].name);
		}
}

struct entry {
	const char *name;
	const struct store_mailbox *mb; /* NULL: subscription only */
	bool subscribed;
};

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name,
	    ((const struct entry *)b)->name);
}

struct list_opts {
	bool sel_subscribed, recursive, ret_subscribed, ret_children;
	bool extended;
	unsigned status;
	bool lsub;
};

static bool
has_child(const struct entry *v, size_t n, const char *name, bool sub_only)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i].name, name, len) == 0 &&
		    v[i].name[len] == '/' && (!sub_only || v[i].subscribed) &&
		    (sub_only || v[i].mb != NULL))
			return true;
	return false;
}

static void
list_out(struct imap_session *s, struct list_opts *o, char **pats,
    size_t npats)
{
	struct store_mailbox *mbs = NULL;
	size_t nmbs = 0, nsubs = 0, n = 0;
	char **subs = NULL;
	struct entry *v;
	struct store_err e;

	if (store_mailbox_list(s->acct, &mbs, &nmbs, &e) == -1 ||
	    store_subscriptions(s->acct, &subs, &nsubs, &e) == -1) {
		store_mailbox_list_free(mbs, nmbs);
		imap_store_no(s, &e, "NONEXISTENT");
		return;
	}
	v = xcalloc(nmbs + nsubs + 1, sizeof(*v));
	for (size_t i = 0; i < nmbs; i++) {
		v[n].name = mbs[i].name;
		v[n].mb = &mbs[i];
		n++;
	}
	for (size_t i = 0; i < nsubs; i++) {
		bool found = false;

		for (size_t k = 0; k < nmbs; k++)
			if (strcmp(v[k].name, subs[i]) == 0) {
				v[k].subscribed = true;
				found = true;
			}
		if (!found) {
			v[n].name = subs[i];
			v[n].subscribed = true;
			n++;
		}
	}
	qsort(v, n, sizeof(*v), cmp_entry);
	for (size_t i = 0; i < n; i++) {
		bool matched = false, childinfo = false;
		struct buf a, line;

		for (size_t k = 0; k < npats && !matched; k++)
			matched = match(pats[k], v[i].name);
		if (!matched)
			continue;
		if ((o->sel_subscribed || o->lsub) && !v[i].subscribed) {
			/* RFC 5258 3.5: RECURSIVEMATCH lists parents of
			 * subscribed children with CHILDINFO. */
			if (!(o->recursive && has_child(v, n, v[i].name, true)))
				continue;
			childinfo = true;
		}
		if (!o->sel_subscribed && !o->lsub && v[i].mb == NULL)
			continue;
		buf_init(&a, BUF_NOMAX);
		if (!o->lsub) {
			if (v[i].subscribed &&
			    (o->sel_subscribed || o->ret_subscribed))
				buf_adds(&a, "\\Subscribed");
			if (v[i].mb == NULL) {
				if (a.len > 0)
					buf_addc(&a, ' ');
				buf_adds(&a, "\\NonExistent");
			}
			if (o->ret_children) {
				if (a.len > 0)
					buf_addc(&a, ' ');
				buf_adds(&a, has_child(v, n, v[i].name, false) ?
					"\\HasChildren" :
					"\\HasNoChildren");
			}
			if (v[i].mb != NULL)
				special_attrs(&a, v[i].mb->special);
		}
		buf_init(&line, BUF_NOMAX);
		buf_addf(&line, "* %s (%s) \"/\" ", o->lsub ? "LSUB" : "LIST",
		    a.data);
		imap_mailbox_out(s, &line, v[i].name);
		if (childinfo && !o->lsub)
			buf_adds(&line, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		buf_adds(&line, "\r\n");
		imap_write_buf(s, &line);
		buf_release(&line);
		buf_release(&a);
		if (o->status != 0 && v[i].mb != NULL)
			imap_status_line(s, v[i].mb, o->status);
	}
	free(v);
	for (size_t i = 0; i < nsubs; i++)
		free(subs[i]);
	free(subs);
	store_mailbox_list_free(mbs, nmbs);
	imap_tagged(s, "OK", "%s done", o->lsub ? "lsub" : "list");
}

static int
sel_opts(struct imap_cmd *x, struct list_opts *o)
{
	bool base = false;

	if (imap_parse_char(&x->p, '(') == -1)
		return -1;
	while (imap_parse_peek(&x->p) != ')') {
		struct span a;

		if (imap_parse_atom(&x->p, &a) == -1)
			return -1;
		if (span_eq_ci(a, "SUBSCRIBED")) {
			o->sel_subscribed = true;
			base = true;
		} else if (span_eq_ci(a, "RECURSIVEMATCH")) {
			o->recursive = true;
		} else if (span_eq_ci(a, "REMOTE")) {
			base = true;
		} else if (span_eq_ci(a, "SPECIAL-USE")) {
			base = true;
		} else {
			x->p.why = "unknown list selection option";
			return -1;
		}
		if (imap_parse_peek(&x->p) == ' ')
			(void)imap_parse_sp(&x->p);
	}
	if (o->recursive && !base) {
		/* RFC 5258 3.1: RECURSIVEMATCH needs a base option. */
		x->p.why = "RECURSIVEMATCH without a base option";
		return -1;
	}
	o->extended = true;
	return imap_parse_char(&x->p, ')');
}

static int
ret_opts(struct imap_cmd *x, struct list_opts *o)
{
	if (imap_parse_char(&x->p, '(') == -1)
		return -1;
	while (imap_parse_peek(&x->p) != ')') {
		struct span a;

		if (imap_parse_atom(&x->p, &a) == -1)
			return -1;
		if (span_eq_ci(a, "SUBSCRIBED")) {
			o->ret_subscribed = true;
		} else if (span_eq_ci(a, "CHILDREN")) {
			o->ret_children = true;
		} else if (span_eq_ci(a, "SPECIAL-USE")) {
			/* always sent */
		} else if (span_eq_ci(a, "STATUS")) {
			if (imap_parse_sp(&x->p) == -1 ||
			    imap_status_items(x, &o->status) == -1)
				return -1;
		} else {
			x->p.why = "unknown list return option";
			return -1;
		}
		if (imap_parse_peek(&x->p) == ' ')
			(void)imap_parse_sp(&x->p);
	}
	o->extended = true;
	return imap_parse_char(&x->p, ')');
}

static int
list_common(struct imap_session *s, struct imap_cmd *x, bool lsub)
{
	struct list_opts o;
	char *ref, *pats[LIST_PATTERNS_MAX], *raw[LIST_PATTERNS_MAX];
	size_t npats = 0, nraw = 0;
	int rc = 0;

	memset(&o, 0, sizeof(o));
	o.lsub = lsub;
	if (imap_parse_sp(&x->p) == -1)
		return -1;
	if (!lsub && imap_parse_peek(&x->p) == '(' &&
	    (sel_opts(x, &o) == -1 || imap_parse_sp(&x->p) == -1))
		return -1;
	if (imap_parse_astring(&x->p, &ref, NULL) == -1 ||
	    imap_parse_sp(&x->p) == -1)
		return -1;
	if (!lsub && imap_parse_peek(&x->p) == '(') {
		o.extended = true;
		(void)imap_parse_char(&x->p, '(');
		for (;;) {
			if (nraw == LIST_PATTERNS_MAX) {
				x->p.why = "too many patterns";
				return -1;
			}
			if (imap_parse_list_mailbox(&x->p, &raw[nraw]) == -1)
				return -1;
			nraw++;
			if (imap_parse_peek(&x->p) != ' ')
				break;
			(void)imap_parse_sp(&x->p);
		}
		if (imap_parse_char(&x->p, ')') == -1)
			return -1;
	} else {
		if (imap_parse_list_mailbox(&x->p, &raw[0]) == -1)
			return -1;
		nraw = 1;
	}
	if (!lsub && !imap_parse_eof(&x->p)) {
		if (imap_parse_sp(&x->p) == -1 ||
		    imap_parse_kw(&x->p, "RETURN") == -1 ||
		    imap_parse_sp(&x->p) == -1 || ret_opts(x, &o) == -1)
			return -1;
	}
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		return -1;
	}
	if (!lsub && !o.extended && nraw == 1 && raw[0][0] == '\0') {
		/* RFC 9051 6.3.9: the delimiter query. */
		imap_reply(s, "* LIST () \"/\" \"\"");
		imap_tagged(s, "OK", "list done");
		return 0;
	}
	{
		char *dref = imap_mailbox_decode(s, ref);

		if (dref == NULL) {
			imap_tagged(s, "NO", "[CANNOT] bad reference name");
			return 0;
		}
		for (size_t i = 0; i < nraw; i++) {
			char *d = imap_mailbox_decode(s, raw[i]);
			char *fp;

			/* RFC 5258 3: extended LIST ignores empty patterns. */
			if (d == NULL || d[0] == '\0') {
				free(d);
				continue;
			}
			fp = full_pattern(dref, d);
			free(d);
			if (fp != NULL && wildcards(fp) > LIST_WILDCARDS_MAX) {
				free(fp);
				fp = NULL;
			}
			if (fp != NULL)
				pats[npats++] = fp;
		}
		free(dref);
	}
	if (o.status & (1u << 8))
		s->condstore = true;
	/* RFC 3348 3 (CHILDREN is announced): a basic LIST tells whether
	 * each mailbox has children; extended LIST only with RETURN
	 * (CHILDREN), spec/imap.md 8.1. */
	if (!lsub && !o.extended)
		o.ret_children = true;
	list_out(s, &o, pats, npats);
	for (size_t i = 0; i < npats; i++)
		free(pats[i]);
	return rc;
}

int
imap_cmd_list(struct imap_session *s, struct imap_cmd *x)
{
	return list_common(s, x, false);
}

int
imap_cmd_lsub(struct imap_session *s, struct imap_cmd *x)
{
	return list_common(s, x, true);
}
