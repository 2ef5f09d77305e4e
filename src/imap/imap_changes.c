/*
 * imap_changes.c: changes made by other sessions, SMTP delivery or other
 * programs, queued from the store's change callback and written as
 * untagged responses at the moments RFC 9051 7.4.1, RFC 2180 and RFC 7162
 * 3.2.10 allow (spec/imap.md 12): EXISTS + FETCH for new messages,
 * EXPUNGE or VANISHED for removals, FETCH FLAGS for flag changes, LIST
 * for mailbox changes. Also the session's MSN map and sequence-set
 * resolution.
 *
 * Thread rule: imap_changes_cb() runs on the committing thread with the
 * account's write lock held; it only copies into the queue under plock
 * and wakes the connection. Everything else runs on the session's thread.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "net/net.h"
#include "lib/banned.h"

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
change_release(struct imap_change *c)
{
	free(c->keywords);
	free(c->uids);
	free(c->name);
	free(c->old_name);
}

void
imap_changes_cb(const struct store_change *v, size_t n, void *arg)
{
	struct imap_session *s = arg;
	int64_t sel = atomic_load(&s->sel_id);
	bool wake = false;

	lock_take(&s->plock);
	for (size_t i = 0; i < n; i++) {
		const struct store_change *c = &v[i];
		struct imap_change *q;

		switch (c->type) {
		case STORE_CHANGE_ADD_UID:
		case STORE_CHANGE_REMOVE_UIDS:
		case STORE_CHANGE_FLAGS:
		case STORE_CHANGE_MAILBOX_KEYWORDS:
			if (c->mailbox_id != sel || sel == 0)
				continue;
			break;
		case STORE_CHANGE_MAILBOX_ADD:
		case STORE_CHANGE_MAILBOX_REMOVE:
		case STORE_CHANGE_MAILBOX_RENAME:
		case STORE_CHANGE_SUBSCRIPTION_ADD:
			break;
		case STORE_CHANGE_MAILBOX_COUNTS:
		case STORE_CHANGE_MAILBOX_SPECIAL_USE:
			continue;
		}
		if (s->npend >= IMAP_PENDING_MAX) {
			s->overflow = true;
			wake = true;
			continue;
		}
		if (s->npend == s->cappend) {
			s->cappend = s->cappend ? 2 * s->cappend : 8;
			s->pend = xreallocarray(s->pend, s->cappend,
			    sizeof(*s->pend));
		}
		q = &s->pend[s->npend++];
		memset(q, 0, sizeof(*q));
		q->type = (int)c->type;
		q->mailbox_id = c->mailbox_id;
		q->uid = c->uid;
		q->modseq = c->modseq;
		q->flags = c->flags;
		q->keywords = dup_or_null(c->keywords);
		if (c->type == STORE_CHANGE_REMOVE_UIDS && c->n_uids > 0) {
			q->uids = xreallocarray(NULL, c->n_uids, sizeof(uint32_t));
			memcpy(q->uids, c->uids, c->n_uids * sizeof(uint32_t));
			q->n_uids = c->n_uids;
		}
		q->name = dup_or_null(c->name);
		q->old_name = dup_or_null(c->old_name);
		q->special = c->special;
		q->nonexistent = c->nonexistent;
		wake = true;
	}
	lock_release(&s->plock);
	if (wake)
		net_conn_notify(s->c);
}

void
imap_changes_clear(struct imap_session *s)
{
	lock_take(&s->plock);
	for (size_t i = 0; i < s->npend; i++)
		change_release(&s->pend[i]);
	free(s->pend);
	s->pend = NULL;
	s->npend = s->cappend = 0;
	lock_release(&s->plock);
}

int64_t
imap_modseq(int64_t m)
{
	return m > 0 ? m : 1;
}

size_t
imap_msn_of(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->nuids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nuids && s->uids[lo] == uid)
		return lo + 1;
	return 0;
}

bool
imap_map_add(struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->nuids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nuids && s->uids[lo] == uid)
		return false;
	if (s->nuids == s->capuids) {
		s->capuids = s->capuids ? 2 * s->capuids : 16;
		s->uids = xreallocarray(s->uids, s->capuids, sizeof(uint32_t));
	}
	memmove(&s->uids[lo + 1], &s->uids[lo],
	    (s->nuids - lo) * sizeof(uint32_t));
	s->uids[lo] = uid;
	s->nuids++;
	return true;
}

size_t
imap_map_remove(struct imap_session *s, uint32_t uid)
{
	size_t msn = imap_msn_of(s, uid);

	if (msn == 0)
		return 0;
	memmove(&s->uids[msn - 1], &s->uids[msn],
	    (s->nuids - msn) * sizeof(uint32_t));
	s->nuids--;
	return msn;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t
imap_map_remove_many(struct imap_session *s, uint32_t *uids, size_t n,
    uint32_t *gone, size_t *msns)
{
	size_t w = 0, k = 0, removed = 0;

	if (n > 1)
		qsort(uids, n, sizeof(*uids), cmp_u32);
	/* One pass over the map: a large expunge stays linear. */
	for (size_t r = 0; r < s->nuids; r++) {
		uint32_t u = s->uids[r];

		while (k < n && uids[k] < u)
			k++;
		if (k < n && uids[k] == u) {
			gone[removed] = u;
			msns[removed] = r + 1 - removed;
			removed++;
			k++;
			continue;
		}
		s->uids[w++] = u;
	}
	s->nuids = w;
	return removed;
}

void
imap_all_expunged(struct imap_session *s, bool output)
{
	struct buf b;

	if (!output || s->nuids == 0) {
		s->nuids = 0;
		return;
	}
	buf_init(&b, BUF_NOMAX);
	if (s->qresync) {
		imap_expunged_buf(s, s->uids, s->nuids, &b);
	} else {
		/* Each removal renumbers the rest: all are number 1. */
		for (size_t i = 0; i < s->nuids; i++)
			buf_adds(&b, "* 1 EXPUNGE\r\n");
	}
	s->nuids = 0;
	imap_write_buf(s, &b);
	buf_release(&b);
}

void
imap_flags_out(struct buf *out, uint32_t flags, const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ STORE_F_SEEN, "\\Seen" },
		{ STORE_F_ANSWERED, "\\Answered" },
		{ STORE_F_FLAGGED, "\\Flagged" },
		{ STORE_F_DELETED, "\\Deleted" },
		{ STORE_F_DRAFT, "\\Draft" },
		{ STORE_F_FORWARDED, "$Forwarded" },
		{ STORE_F_JUNK, "$Junk" },
		{ STORE_F_NOTJUNK, "$NotJunk" },
		{ STORE_F_PHISHING, "$Phishing" },
		{ STORE_F_MDNSENT, "$MDNSent" },
	};
	bool first = true;

	buf_adds(out, "FLAGS (");
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (flags & names[i].bit) {
			if (!first)
				buf_addc(out, ' ');
			buf_adds(out, names[i].name);
			first = false;
		}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			buf_addc(out, ' ');
		buf_adds(out, keywords);
	}
	buf_addc(out, ')');
}

void
imap_expunged_out(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	imap_expunged_buf(s, uids, n, &b);
	imap_write_buf(s, &b);
	buf_release(&b);
}

void
imap_expunged_buf(struct imap_session *s, const uint32_t *uids, size_t n,
    struct buf *out)
{
	size_t i = 0;

	if (!s->qresync) {
		/* RFC 9051 7.4.1: each EXPUNGE renumbers the later messages;
		 * the caller removed them from the map already, so report
		 * with the numbers computed before each removal. */
		return;
	}
	/* RFC 7162 3.2.10: VANISHED instead of EXPUNGE, lines < 4 KiB. */
	while (i < n) {
		size_t j = i, start = out->len;

		buf_adds(out, "* VANISHED ");
		while (j < n && out->len - start < IMAP_VANISHED_LINE) {
			size_t k = j;

			while (k + 1 < n && uids[k + 1] == uids[k] + 1)
				k++;
			if (j > i)
				buf_addc(out, ',');
			if (k == j)
				buf_addf(out, "%u", uids[j]);
			else
				buf_addf(out, "%u:%u", uids[j], uids[k]);
			j = k + 1;
		}
		buf_adds(out, "\r\n");
		i = j;
	}
}

static void
flags_fetch_line(struct imap_session *s, size_t msn, uint32_t uid,
    uint32_t flags, const char *kw, int64_t modseq)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	buf_addf(&b, "* %zu FETCH (UID %u ", msn, uid);
	imap_flags_out(&b, flags, kw);
	if (s->condstore)
		buf_addf(&b, " MODSEQ (%lld)", (long long)imap_modseq(modseq));
	buf_adds(&b, ")\r\n");
	imap_write_buf(s, &b);
	buf_release(&b);
}

static void
list_line(struct imap_session *s, const char *attrs, const char *name,
    const char *old)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	buf_addf(&b, "* LIST (%s) \"/\" ", attrs);
	imap_mailbox_out(s, &b, name);
	if (old != NULL && s->rev2) {
		buf_adds(&b, " (\"OLDNAME\" (");
		imap_mailbox_out(s, &b, old);
		buf_adds(&b, "))");
	}
	buf_adds(&b, "\r\n");
	imap_write_buf(s, &b);
	buf_release(&b);
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

/* Apply one run of changes; returns how many were consumed. */
static size_t
apply_one(struct imap_session *s, struct imap_change *v, size_t n,
    bool output)
{
	struct imap_change *c = &v[0];
	bool sel = s->state == IMAP_S_SELECTED && c->mailbox_id == s->mb_id;

	switch (c->type) {
	case STORE_CHANGE_ADD_UID: {
		size_t k = 0, first = s->nuids;

		/* One EXISTS for a run of additions (spec/imap.md 12). */
		while (k < n && v[k].type == STORE_CHANGE_ADD_UID)
			k++;
		if (!sel)
			return k;
		for (size_t i = 0; i < k; i++)
			(void)imap_map_add(s, v[i].uid);
		if (!output || s->nuids == first)
			return k;
		imap_reply(s, "* %zu EXISTS", s->nuids);
		for (size_t i = 0; i < k; i++) {
			size_t msn = imap_msn_of(s, v[i].uid);

			if (msn > first)
				flags_fetch_line(s, msn, v[i].uid, v[i].flags,
				    v[i].keywords, v[i].modseq);
		}
		return k;
	}
	case STORE_CHANGE_REMOVE_UIDS: {
		uint32_t *gone;
		size_t *msns, ngone;

		if (!sel)
			return 1;
		gone = xreallocarray(NULL, c->n_uids + 1, sizeof(uint32_t));
		msns = xreallocarray(NULL, c->n_uids + 1, sizeof(size_t));
		ngone = imap_map_remove_many(s, c->uids, c->n_uids, gone, msns);
		if (output && !s->qresync) {
			struct buf b;

			buf_init(&b, BUF_NOMAX);
			for (size_t i = 0; i < ngone; i++)
				buf_addf(&b, "* %zu EXPUNGE\r\n", msns[i]);
			imap_write_buf(s, &b);
			buf_release(&b);
		}
		if (output)
			imap_expunged_out(s, gone, ngone);
		free(gone);
		free(msns);
		return 1;
	}
	case STORE_CHANGE_FLAGS: {
		size_t msn;

		if (!sel || !output)
			return 1;
		msn = imap_msn_of(s, c->uid);
		if (msn > 0)
			flags_fetch_line(s, msn, c->uid, c->flags, c->keywords,
			    c->modseq);
		return 1;
	}
	case STORE_CHANGE_MAILBOX_ADD: {
		struct buf a;
		bool sub = false;
		size_t k = 1;

		/* spec/imap.md 5.1: a created (and subscribed) mailbox is one
		 * "* LIST (\Subscribed) ..." line. */
		if (n > 1 && v[1].type == STORE_CHANGE_SUBSCRIPTION_ADD &&
		    c->name != NULL && v[1].name != NULL &&
		    strcmp(c->name, v[1].name) == 0) {
			sub = true;
			k = 2;
		}
		if (!output || c->name == NULL)
			return k;
		buf_init(&a, BUF_NOMAX);
		if (sub)
			buf_adds(&a, "\\Subscribed");
		special_attrs(&a, c->special);
		list_line(s, a.data, c->name, NULL);
		buf_release(&a);
		return k;
	}
	case STORE_CHANGE_MAILBOX_KEYWORDS:
		/* RFC 9051 7.3.5: a new keyword in the selected mailbox is
		 * announced with FLAGS (before the FETCH that shows it). */
		if (sel && output)
			imap_keywords_changed(s, c->keywords);
		return 1;
	case STORE_CHANGE_MAILBOX_RENAME:
		if (output && c->name != NULL)
			list_line(s, "", c->name, c->old_name);
		return 1;
	case STORE_CHANGE_MAILBOX_REMOVE:
		/* The selected mailbox is gone with its messages. */
		if (sel)
			imap_all_expunged(s, output);
		/* spec/imap.md 12: rev1 clients would take it for a create. */
		if (output && s->rev2 && c->name != NULL)
			list_line(s, "\\NonExistent", c->name, NULL);
		return 1;
	case STORE_CHANGE_SUBSCRIPTION_ADD:
		if (n > 1 && v[1].type == STORE_CHANGE_MAILBOX_ADD &&
		    c->name != NULL && v[1].name != NULL &&
		    strcmp(c->name, v[1].name) == 0) {
			struct buf a;

			if (!output)
				return 2;
			buf_init(&a, BUF_NOMAX);
			buf_adds(&a, "\\Subscribed");
			special_attrs(&a, v[1].special);
			list_line(s, a.data, c->name, NULL);
			buf_release(&a);
			return 2;
		}
		if (output && c->name != NULL)
			list_line(s,
			    c->nonexistent ? "\\Subscribed \\NonExistent" :
					     "\\Subscribed",
			    c->name, NULL);
		return 1;
	default:
		return 1;
	}
}

void
imap_changes_apply(struct imap_session *s, bool output, bool expunges)
{
	struct imap_change *v;
	size_t n, i = 0;
	bool overflow;

	lock_take(&s->plock);
	v = s->pend;
	n = s->npend;
	overflow = s->overflow;
	s->pend = NULL;
	s->npend = s->cappend = 0;
	lock_release(&s->plock);
	if (overflow) {
		for (size_t k = 0; k < n; k++)
			change_release(&v[k]);
		free(v);
		imap_reply(s, "* BYE too many changes, resynchronize please");
		net_conn_close(s->c);
		s->closing = true;
		return;
	}
	while (i < n) {
		size_t k;

		if (!expunges && (v[i].type == STORE_CHANGE_REMOVE_UIDS ||
			(v[i].type == STORE_CHANGE_MAILBOX_REMOVE &&
			    s->state == IMAP_S_SELECTED &&
			    v[i].mailbox_id == s->mb_id)))
			break;
		k = apply_one(s, &v[i], n - i, output);
		for (size_t j = i; j < i + k; j++)
			change_release(&v[j]);
		i += k;
	}
	if (i < n) {
		/* Put the rest back in front of what arrived meanwhile. */
		lock_take(&s->plock);
		memmove(v, &v[i], (n - i) * sizeof(*v));
		v = xreallocarray(v, n - i + s->npend, sizeof(*v));
		if (s->npend > 0)
			memcpy(&v[n - i], s->pend, s->npend * sizeof(*v));
		free(s->pend);
		s->pend = v;
		s->npend = n - i + s->npend;
		s->cappend = s->npend;
		lock_release(&s->plock);
		return;
	}
	free(v);
}

static size_t
lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
imap_seqset_uids(struct imap_session *s, const struct imap_seqset *set,
    bool uid, uint32_t **out, size_t *n_out, const char **why)
{
	uint32_t *v = NULL;
	size_t n = 0, cap = 0, w = 0;

	*out = NULL;
	*n_out = 0;
	if (set->dollar) {
		/* RFC 5182 2.1: "$" is the saved result, still existing. */
		for (size_t i = 0; i < s->nsaved; i++)
			if (imap_msn_of(s, s->saved[i]) > 0) {
				if (n == cap) {
					cap = cap ? 2 * cap : 16;
					v = xreallocarray(v, cap, sizeof(*v));
				}
				v[n++] = s->saved[i];
			}
		*out = v;
		*n_out = n;
		return 0;
	}
	for (size_t r = 0; r < set->n; r++) {
		uint32_t a = set->v[r].a, b = set->v[r].b;
		size_t from, to;

		if (uid) {
			uint32_t star = s->nuids ? s->uids[s->nuids - 1] : 0;

			if (a == IMAP_SEQ_STAR)
				a = star;
			if (b == IMAP_SEQ_STAR)
				b = star;
			if (a > b) {
				uint32_t t = a;

				a = b;
				b = t;
			}
			/* RFC 9051 6.4.8: "*" on an empty mailbox and UIDs
			 * that do not exist match nothing. */
			if (s->nuids == 0)
				continue;
			from = lower_bound(s->uids, s->nuids, a);
			to = lower_bound(s->uids, s->nuids,
			    b == UINT32_MAX ? b : b + 1);
		} else {
			if (s->nuids == 0) {
				free(v);
				*why = "mailbox is empty";
				return -1;
			}
			if (a == IMAP_SEQ_STAR)
				a = (uint32_t)s->nuids;
			if (b == IMAP_SEQ_STAR)
				b = (uint32_t)s->nuids;
			if (a > b) {
				uint32_t t = a;

				a = b;
				b = t;
			}
			if (b > s->nuids) {
				free(v);
				*why = "message sequence number out of range";
				return -1;
			}
			from = a - 1;
			to = b;
		}
		for (size_t i = from; i < to; i++) {
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			v[n++] = s->uids[i];
		}
	}
	if (n > 1) {
		qsort(v, n, sizeof(*v), cmp_u32);
		for (size_t i = 0; i < n; i++)
			if (w == 0 || v[w - 1] != v[i])
				v[w++] = v[i];
		n = w;
	}
	*out = v;
	*n_out = n;
	return 0;
}
