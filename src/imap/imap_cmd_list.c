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
	const struct store_mailbox *mb; /* NULL: no such mailbox */
	bool subscribed;
	bool sub_below;   /* a subscribed name is below it */
	bool mb_below;    /* an existing mailbox is below it */
	char *owned;      /* name of a parent that is only implied */
};

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name,
	    ((const struct entry *)b)->name);
}

struct list_opts {
	bool sel_subscribed, sel_special, recursive, ret_subscribed;
	bool ret_children;
	bool extended;
	unsigned status;
	bool lsub;
	bool lsub_percent; /* LSUB pattern ending in "%" */
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static struct entry *
entry_add(struct entries *l, const char *name)
{
	struct entry *e;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->name = name;
	return e;
}

/* The entry named exactly name[0..len) among the sorted v[0..n), or
 * NULL. */
static struct entry *
entry_find(struct entry *v, size_t n, const char *name, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(v[mid].name, name, len);

		if (c == 0 && v[mid].name[len] != '\0')
			c = 1;
		if (c < 0)
			lo = mid + 1;
		else if (c > 0)
			hi = mid;
		else
			return &v[mid];
	}
	return NULL;
}

/* Add the parents of subscribed names that are neither mailboxes nor
 * subscribed (RECURSIVEMATCH and LSUB "%" report them), then sort. */
static void
add_implied(struct entries *l)
{
	size_t n = l->n, w;

	for (size_t i = 0; i < n; i++) {
		const char *name = l->v[i].name;

		if (!l->v[i].subscribed)
			continue;
		for (const char *q = strchr(name, '/'); q != NULL;
		    q = strchr(q + 1, '/')) {
			size_t len = (size_t)(q - name);
			struct entry *p;

			if (entry_find(l->v, n, name, len) != NULL)
				continue;
			p = entry_add(l, NULL);
			p->owned = xstrndup(name, len);
			p->name = p->owned;
			name = l->v[i].name; /* l->v may have moved */
			q = name + len;
		}
	}
	qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
	/* One entry per implied name. */
	w = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (w > 0 && l->v[i].owned != NULL &&
		    strcmp(l->v[w - 1].name, l->v[i].name) == 0) {
			free(l->v[i].owned);
			continue;
		}
		l->v[w++] = l->v[i];
	}
	l->n = w;
}

/* Mark each name with what is below it. */
static void
mark_parents(struct entries *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *name = l->v[i].name;
		bool sub = l->v[i].subscribed, mb = l->v[i].mb != NULL;

		if (!sub && !mb)
			continue;
		for (const char *q = strchr(name, '/'); q != NULL;
		    q = strchr(q + 1, '/')) {
			struct entry *p = entry_find(l->v, l->n, name,
			    (size_t)(q - name));

			if (p == NULL)
				continue;
			p->sub_below |= sub;
			p->mb_below |= mb;
		}
	}
}

/* RFC 9051 6.3.9: INBOX is listed when the upper-case "INBOX" matches. */
static bool
matches(char *const *pats, size_t npats, const char *name)
{
	struct buf up;
	bool m = false;

	for (size_t k = 0; k < npats && !m; k++)
		m = match(pats[k], name);
	if (m || strncmp(name, "Inbox", 5) != 0 ||
	    (name[5] != '\0' && name[5] != '/'))
		return m;
	buf_init(&up, BUF_NOMAX);
	buf_adds(&up, "INBOX");
	buf_adds(&up, name + 5);
	for (size_t k = 0; k < npats && !m; k++)
		m = match(pats[k], up.data);
	buf_release(&up);
	return m;
}

static void
attr_add(struct buf *a, const char *w)
{
	if (a->len > 0)
		buf_addc(a, ' ');
	buf_adds(a, w);
}

static void
list_out(struct imap_session *s, struct list_opts *o, char **pats,
    size_t npats)
{
	struct store_mailbox *mbs = NULL;
	size_t nmbs = 0, nsubs = 0;
	char **subs = NULL;
	struct entries l = { 0 };
	struct store_err e;
	struct buf out;

	if (store_mailbox_list(s->acct, &mbs, &nmbs, &e) == -1 ||
	    store_subscriptions(s->acct, &subs, &nsubs, &e) == -1) {
		store_mailbox_list_free(mbs, nmbs);
		imap_store_no(s, &e, "NONEXISTENT");
		return;
	}
	for (size_t i = 0; i < nmbs; i++)
		entry_add(&l, mbs[i].name)->mb = &mbs[i];
	qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
	for (size_t i = 0, nsorted = l.n; i < nsubs; i++) {
		struct entry *x = entry_find(l.v, nsorted, subs[i],
		    strlen(subs[i]));

		/* Subscriptions without a mailbox go after the sorted
		 * mailboxes; sorted below. */
		if (x == NULL)
			x = entry_add(&l, subs[i]);
		x->subscribed = true;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
	if ((o->sel_subscribed && o->recursive) || o->lsub_percent)
		add_implied(&l);
	mark_parents(&l);
	buf_init(&out, BUF_NOMAX);
	for (size_t i = 0; i < l.n; i++) {
		const struct entry *v = &l.v[i];
		bool childinfo = false, noselect = false;
		struct buf a;

		if (!matches(pats, npats, v->name))
			continue;
		if (o->lsub) {
			/* RFC 3501 6.3.9: with "%", a parent of subscribed
			 * names that is not subscribed itself is listed as
			 * \Noselect. */
			if (!v->subscribed) {
				if (!(o->lsub_percent && v->sub_below))
					continue;
				noselect = true;
			}
		} else if (o->sel_subscribed) {
			/* RFC 5258 3.5: RECURSIVEMATCH adds CHILDINFO where
			 * a name below is subscribed, and lists such parents
			 * even when they are not subscribed themselves. */
			childinfo = o->recursive && v->sub_below;
			if (!v->subscribed && !childinfo)
				continue;
		} else if (v->mb == NULL) {
			continue;
		}
		/* RFC 6154 3: the SPECIAL-USE selection option. */
		if (o->sel_special && (v->mb == NULL || v->mb->special == 0))
			continue;
		buf_init(&a, BUF_NOMAX);
		if (o->lsub) {
			if (noselect)
				attr_add(&a, "\\Noselect");
		} else {
			if (v->subscribed &&
			    (o->sel_subscribed || o->ret_subscribed))
				attr_add(&a, "\\Subscribed");
			if (v->mb == NULL)
				attr_add(&a, "\\NonExistent");
			if (o->ret_children)
				attr_add(&a, v->mb_below ? "\\HasChildren" :
							   "\\HasNoChildren");
			if (v->mb != NULL)
				special_attrs(&a, v->mb->special);
		}
		buf_addf(&out, "* %s (%s) \"/\" ", o->lsub ? "LSUB" : "LIST",
		    a.data);
		imap_mailbox_out(s, &out, v->name);
		if (childinfo)
			buf_adds(&out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		buf_adds(&out, "\r\n");
		buf_release(&a);
		if (o->status != 0 && v->mb != NULL)
			imap_status_line_buf(s, v->mb, o->status, &out);
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].owned);
	free(l.v);
	for (size_t i = 0; i < nsubs; i++)
		free(subs[i]);
	free(subs);
	store_mailbox_list_free(mbs, nmbs);
	/* Many mailboxes: written as the peer reads them. */
	imap_finish_paced(s, &out, false, "OK",
	    o->lsub ? "lsub done" : "list done");
	buf_release(&out);
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
			/* RFC 6154 3; not a base for RECURSIVEMATCH. */
			o->sel_special = true;
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
	o.lsub_percent = lsub && raw[0][0] != '\0' &&
	    raw[0][strlen(raw[0]) - 1] == '%';
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
