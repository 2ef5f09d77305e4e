/*
 * imap_cmd_store.c: STORE and UID STORE (RFC 9051 6.4.6; RFC 7162 3.1.3
 * UNCHANGEDSINCE and MODIFIED) as spec/imap.md 9.4 describes: one modseq
 * for the messages that changed, FETCH responses for every matched
 * message unless .SILENT.
 *
 * Thread rule: the session's thread; blocks on SQLite.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "lib/banned.h"

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether x is in the ascending v (a STORE of many messages stays
 * O(n log n)). */
static bool
in_list(const uint32_t *v, size_t n, uint32_t x)
{
	return n > 0 && bsearch(&x, v, n, sizeof(*v), cmp_u32) != NULL;
}

#define STORE_SNAP_MIN 64 /* messages from which rows are read at once */

/* The row of uid in the ascending l, or NULL. */
static const struct store_msg *
snap_find(const struct store_msg_list *l, uint32_t uid)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].uid < uid)
			lo = mid + 1;
		else if (l->v[mid].uid > uid)
			hi = mid;
		else
			return &l->v[mid];
	}
	return NULL;
}

/* Append the FETCH response of uid to b, from the rows in snap when
 * not NULL (one query for many messages), else from the store. */
static void
fetch_line(struct imap_session *s, const struct store_msg_list *snap,
    struct buf *b, uint32_t uid, bool flags, bool modseq)
{
	struct store_msg m;
	struct store_err e;
	size_t msn = imap_msn_of(s, uid);

	if (msn == 0)
		return;
	if (snap != NULL) {
		const struct store_msg *sm = snap_find(snap, uid);

		if (sm == NULL)
			return;
		m = *sm;
		m.keywords = sm->keywords != NULL ? xstrdup(sm->keywords) : NULL;
	} else if (store_msg_get(s->acct, s->mb_id, uid, &m, NULL, &e) == -1) {
		return;
	}
	buf_addf(b, "* %zu FETCH (UID %u", msn, uid);
	if (flags) {
		buf_addc(b, ' ');
		imap_flags_out(b, m.flags, m.keywords);
	}
	if (modseq)
		buf_addf(b, " MODSEQ (%lld)", (long long)imap_modseq(m.modseq));
	buf_adds(b, ")\r\n");
	free(m.keywords);
}

int
imap_cmd_store(struct imap_session *s, struct imap_cmd *x)
{
	struct imap_seqset set = { 0 };
	struct imap_flags fl;
	struct store_flags_result res = { 0 };
	struct store_err e;
	enum store_flag_op op = STORE_FLAGS_SET;
	uint64_t unch = 0;
	bool has_unch = false, silent = false;
	uint32_t *uids = NULL;
	size_t n = 0;
	const char *why = NULL;
	struct buf lines;
	struct store_msg_list rows = { 0 };
	const struct store_msg_list *snap = NULL;
	int rc = -1;

	if (imap_parse_sp(&x->p) == -1 || imap_parse_seqset(&x->p, &set) == -1 ||
	    imap_parse_sp(&x->p) == -1)
		goto out;
	if (imap_parse_peek(&x->p) == '(') {
		if (imap_parse_char(&x->p, '(') == -1 ||
		    imap_parse_kw(&x->p, "UNCHANGEDSINCE") == -1 ||
		    imap_parse_sp(&x->p) == -1 ||
		    imap_parse_number64(&x->p, &unch) == -1 ||
		    imap_parse_char(&x->p, ')') == -1 ||
		    imap_parse_sp(&x->p) == -1)
			goto out;
		has_unch = true;
	}
	if (imap_parse_char(&x->p, '+') == 0)
		op = STORE_FLAGS_ADD;
	else if (imap_parse_char(&x->p, '-') == 0)
		op = STORE_FLAGS_REMOVE;
	x->p.why = NULL;
	if (imap_parse_kw(&x->p, "FLAGS.SILENT") == 0)
		silent = true;
	else if (imap_parse_kw(&x->p, "FLAGS") == -1)
		goto out;
	if (imap_parse_sp(&x->p) == -1)
		goto out;
	if (imap_parse_peek(&x->p) == '(') {
		if (imap_parse_flag_list(&x->p, &fl) == -1)
			goto out;
	} else if (imap_parse_flags_bare(&x->p, &fl) == -1) {
		goto out;
	}
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		goto out;
	}
	if (imap_seqset_uids(s, &set, x->uid, &uids, &n, &why) == -1) {
		x->p.why = why;
		goto out;
	}
	rc = 0;
	if (has_unch)
		s->condstore = true;
	if (s->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] mailbox open read-only");
		goto out;
	}
	store_sub_origin(s->sub);
	if (n > 0 && store_flags(s->acct, s->mb_id, uids, n, op, fl.flags,
			 fl.keywords, has_unch ? (int64_t)unch : -1, &res,
			 &e) == -1) {
		store_sub_origin(NULL);
		imap_store_no(s, &e, "NONEXISTENT");
		goto out;
	}
	store_sub_origin(NULL);
	/* A keyword new to the mailbox: FLAGS first (RFC 9051 7.3.5). */
	if (res.n_changed > 0 && fl.keywords[0] != '\0' &&
	    op != STORE_FLAGS_REMOVE)
		imap_keywords_check(s);
	if (res.n_changed > 1)
		qsort(res.changed, res.n_changed, sizeof(uint32_t), cmp_u32);
	if (res.n_modified > 1)
		qsort(res.modified, res.n_modified, sizeof(uint32_t), cmp_u32);
	/* Many messages: their rows in one query, and the responses are
	 * written as the peer reads. */
	if (n >= STORE_SNAP_MIN && n >= s->nuids / 8 &&
	    store_list(s->acct, s->mb_id, &rows, &e) == 0)
		snap = &rows;
	buf_init(&lines, BUF_NOMAX);
	for (size_t i = 0; i < n; i++) {
		bool modified = in_list(res.modified, res.n_modified, uids[i]);
		bool changed = in_list(res.changed, res.n_changed, uids[i]);

		if (modified)
			continue;
		if (!silent)
			fetch_line(s, snap, &lines, uids[i], true, s->condstore);
		else if (s->condstore && changed)
			fetch_line(s, snap, &lines, uids[i], false, true);
	}
	if (res.n_modified > 0) {
		/* RFC 7162 3.1.3: report the ones not stored. */
		struct buf b;
		uint32_t *set_out = xreallocarray(NULL, res.n_modified,
		    sizeof(uint32_t));
		size_t k = 0;

		for (size_t i = 0; i < res.n_modified; i++) {
			size_t msn = imap_msn_of(s, res.modified[i]);

			fetch_line(s, snap, &lines, res.modified[i], true, true);
			if (x->uid)
				set_out[k++] = res.modified[i];
			else if (msn > 0)
				set_out[k++] = (uint32_t)msn;
		}
		buf_init(&b, BUF_NOMAX);
		buf_adds(&b, "[MODIFIED ");
		imap_fmt_seqset(&b, set_out, k);
		buf_adds(&b, "] conditional store did not modify all");
		imap_finish_paced(s, &lines, false, "OK", b.data);
		buf_release(&b);
		free(set_out);
	} else {
		imap_finish_paced(s, &lines, x->uid, "OK", "store done");
	}
	buf_release(&lines);
out:
	store_msg_list_release(&rows);
	store_flags_result_release(&res);
	free(uids);
	imap_seqset_release(&set);
	return rc;
}
