/*
 * imap_cmd_mailbox.c: mailbox commands of the authenticated state: SELECT
 * and EXAMINE (RFC 9051 6.3.2, 6.3.3; RFC 7162 3.1.8 CONDSTORE, 3.2.5
 * QRESYNC), CREATE (6.3.4; RFC 6154 5.3 USE), DELETE (6.3.5), RENAME
 * (6.3.6), SUBSCRIBE/UNSUBSCRIBE (6.3.7, 6.3.8), STATUS (6.3.11; RFC 8438
 * SIZE; RFC 7162 HIGHESTMODSEQ) and GETQUOTAROOT/GETQUOTA (RFC 9208 4.3),
 * as spec/imap.md 5.1, 6, 8.2 describe.
 *
 * Thread rule: the session's thread; store calls block on SQLite.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "lib/banned.h"

enum {
	ST_MESSAGES = 1 << 0,
	ST_UIDNEXT = 1 << 1,
	ST_UIDVALIDITY = 1 << 2,
	ST_UNSEEN = 1 << 3,
	ST_DELETED = 1 << 4,
	ST_SIZE = 1 << 5,
	ST_RECENT = 1 << 6,
	ST_APPENDLIMIT = 1 << 7,
	ST_HIGHESTMODSEQ = 1 << 8,
	ST_DELETED_STORAGE = 1 << 9,
};

static const struct {
	const char *name;
	unsigned bit;
} status_names[] = {
	{ "MESSAGES", ST_MESSAGES },
	{ "UIDNEXT", ST_UIDNEXT },
	{ "UIDVALIDITY", ST_UIDVALIDITY },
	{ "UNSEEN", ST_UNSEEN },
	{ "DELETED", ST_DELETED },
	{ "SIZE", ST_SIZE },
	{ "RECENT", ST_RECENT },
	{ "APPENDLIMIT", ST_APPENDLIMIT },
	{ "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },
	{ "DELETED-STORAGE", ST_DELETED_STORAGE },
};

static int
end_of_args(struct imap_cmd *x)
{
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		return -1;
	}
	return 0;
}

static const char *const perm_flags =
    "\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded $Junk "
    "$NotJunk $Phishing $MDNSent";

/* RFC 7162 3.2.5.2: QRESYNC parameters. */
struct qresync {
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known; /* UIDs; n == 0 when absent */
	bool match;               /* sequence match data given */
	struct imap_seqset mseq, muid;
};

static void
qresync_release(struct qresync *q)
{
	imap_seqset_release(&q->known);
	imap_seqset_release(&q->mseq);
	imap_seqset_release(&q->muid);
}

/* A sequence set of the match data: strictly ascending numbers (RFC 7162
 * 3.2.5.2: "in ascending order"); star is what "*" means. The number of
 * values goes to *count. 0 or -1. */
static int
match_set_ok(const struct imap_seqset *set, uint32_t star, uint64_t *count)
{
	uint32_t prev = 0;

	*count = 0;
	if (set->dollar)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		uint32_t a = set->v[i].a == IMAP_SEQ_STAR ? star : set->v[i].a;
		uint32_t b = set->v[i].b == IMAP_SEQ_STAR ? star : set->v[i].b;

		if (a > b || a <= prev)
			return -1;
		*count += (uint64_t)b - a + 1;
		prev = b;
	}
	return 0;
}

/* Walks a checked match set in order; next() gives 0 at the end. */
struct set_iter {
	const struct imap_seqset *set;
	uint32_t star;
	size_t r;
	uint64_t at; /* next value of range r; 0 before it */
};

static uint32_t
set_next(struct set_iter *it)
{
	while (it->r < it->set->n) {
		const struct imap_range *g = &it->set->v[it->r];
		uint32_t a = g->a == IMAP_SEQ_STAR ? it->star : g->a;
		uint32_t b = g->b == IMAP_SEQ_STAR ? it->star : g->b;

		if (it->at == 0)
			it->at = a;
		if (it->at <= b)
			return (uint32_t)it->at++;
		it->r++;
		it->at = 0;
	}
	return 0;
}

static int
parse_qresync(struct imap_session *s, struct imap_cmd *x, struct qresync *q)
{
	if (imap_parse_sp(&x->p) == -1 || imap_parse_char(&x->p, '(') == -1 ||
	    imap_parse_nznumber(&x->p, &q->uidvalidity) == -1 ||
	    imap_parse_sp(&x->p) == -1 ||
	    imap_parse_number64(&x->p, &q->modseq) == -1)
		return -1;
	if (q->modseq == 0) {
		x->p.why = "mod-sequence must not be 0";
		return -1;
	}
	if (imap_parse_peek(&x->p) == ' ') {
		(void)imap_parse_sp(&x->p);
		if (imap_parse_peek(&x->p) != '(' &&
		    imap_parse_seqset(&x->p, &q->known) == -1)
			return -1;
		if (q->known.dollar) {
			x->p.why = "$ not allowed in known-uids";
			return -1;
		}
		if (q->known.n > 0 && imap_parse_peek(&x->p) == ' ')
			(void)imap_parse_sp(&x->p);
		if (imap_parse_peek(&x->p) == '(') {
			uint64_t n1, n2;

			/* seq-match-data: (known-sequence-set known-uid-set) */
			if (imap_parse_char(&x->p, '(') == -1 ||
			    imap_parse_seqset(&x->p, &q->mseq) == -1 ||
			    imap_parse_sp(&x->p) == -1 ||
			    imap_parse_seqset(&x->p, &q->muid) == -1 ||
			    imap_parse_char(&x->p, ')') == -1)
				return -1;
			if (match_set_ok(&q->mseq, (uint32_t)s->nuids, &n1) ==
				-1 ||
			    match_set_ok(&q->muid, UINT32_MAX, &n2) == -1 ||
			    n1 != n2) {
				x->p.why = "sequence match data: sets must "
					   "ascend and have equal length";
				return -1;
			}
			q->match = true;
		}
	}
	return imap_parse_char(&x->p, ')');
}

static int
parse_select_params(struct imap_session *s, struct imap_cmd *x,
    bool *condstore, bool *qr, struct qresync *q)
{
	if (imap_parse_sp(&x->p) == -1 || imap_parse_char(&x->p, '(') == -1)
		return -1;
	for (;;) {
		if (imap_parse_kw(&x->p, "CONDSTORE") == 0) {
			*condstore = true;
		} else if (imap_parse_kw(&x->p, "QRESYNC") == 0) {
			if (!s->qresync) {
				x->p.why = "QRESYNC not enabled";
				return -1;
			}
			*qr = true;
			if (parse_qresync(s, x, q) == -1)
				return -1;
		} else {
			x->p.why = "unknown select parameter";
			return -1;
		}
		if (imap_parse_peek(&x->p) != ' ')
			break;
		(void)imap_parse_sp(&x->p);
	}
	return imap_parse_char(&x->p, ')');
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct u32s {
	uint32_t *v;
	size_t n, cap;
};

static void
u32s_add(struct u32s *l, uint32_t x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = x;
}

/* "* VANISHED (EARLIER) set" lines of < 4 KiB for the sorted, unique v,
 * appended to out. */
static void
vanished_earlier_out(struct buf *out, const uint32_t *van, size_t nvan)
{
	size_t i = 0;

	while (i < nvan) {
		size_t j = i, start = out->len;

		buf_adds(out, "* VANISHED (EARLIER) ");
		while (j < nvan && out->len - start < IMAP_VANISHED_LINE) {
			size_t k = j;

			while (k + 1 < nvan && van[k + 1] == van[k] + 1)
				k++;
			if (j > i)
				buf_addc(out, ',');
			if (k == j)
				buf_addf(out, "%u", van[j]);
			else
				buf_addf(out, "%u:%u", van[j], van[k]);
			j = k + 1;
		}
		buf_adds(out, "\r\n");
		i = j;
	}
}

/* RFC 7162 3.2.5.2 with the sequence match data: the highest UID up to
 * which the client's view of the mailbox matches ours (removals at or
 * below it need not be reported). When the first mismatch names a UID
 * that was expunged before the client's modseq, the client is
 * inconsistent: *since is lowered below that removal and 0 returned so
 * every removal is reported (spec/imap.md 6 step 5). */
static uint32_t
match_floor(struct imap_session *s, const struct store_mailbox *mb,
    const struct qresync *q, int64_t *since, struct buf *out)
{
	struct set_iter is = { &q->mseq, (uint32_t)s->nuids, 0, 0 };
	struct set_iter iu = { &q->muid, UINT32_MAX, 0, 0 };
	struct store_msg_list all = { 0 };
	struct store_err e;
	uint32_t floor = 0, msn, uid;

	for (;;) {
		msn = set_next(&is);
		uid = set_next(&iu);
		if (msn == 0 || uid == 0)
			return floor;
		if (msn <= s->nuids && s->uids[msn - 1] == uid) {
			floor = uid;
			continue;
		}
		break;
	}
	if (imap_msn_of(s, uid) != 0 ||
	    store_changes_since(s->acct, mb->id, 0, &all, &e) == -1)
		return floor;
	for (size_t i = 0; i < all.n; i++) {
		const struct store_msg *m = &all.v[i];

		if (m->uid != uid || !m->expunged ||
		    imap_modseq(m->modseq) > (int64_t)q->modseq)
			continue;
		buf_adds(out, "* OK [ALERT] Synchronization inconsistency in "
			      "client detected. Client tried to sync with a "
			      "UID that was removed at or after its MODSEQ. "
			      "The server will send all removals.\r\n");
		*since = m->modseq > 0 ? m->modseq - 1 : 0;
		floor = 0;
		break;
	}
	store_msg_list_release(&all);
	return floor;
}

/* The QRESYNC responses, appended to out. */
static void
qresync_out(struct imap_session *s, const struct store_mailbox *mb,
    const struct qresync *q, struct buf *out)
{
	struct store_msg_list ch = { 0 };
	struct store_err e;
	struct u32s van = { 0 };
	int64_t since = (int64_t)q->modseq, hdm = 0;
	uint32_t floor = 0;

	if (q->uidvalidity != mb->uidvalidity)
		return;
	/* Client modseq 1 is stored 0 (spec/imap.md 13). */
	if (since <= 1)
		since = 0;
	if (q->match)
		floor = match_floor(s, mb, q, &since, out);
	if (store_changes_since(s->acct, mb->id, since, &ch, &e) == -1)
		return;
	for (size_t i = 0; i < ch.n; i++) {
		const struct store_msg *m = &ch.v[i];

		if (q->known.n > 0 &&
		    !imap_seqset_contains(&q->known, m->uid, UINT32_MAX))
			continue;
		if (m->expunged) {
			if (m->uid > floor)
				u32s_add(&van, m->uid);
		} else {
			size_t msn = imap_msn_of(s, m->uid);

			if (msn == 0)
				continue;
			buf_addf(out, "* %zu FETCH (UID %u ", msn, m->uid);
			imap_flags_out(out, m->flags, m->keywords);
			buf_addf(out, " MODSEQ (%lld))\r\n",
			    (long long)imap_modseq(m->modseq));
		}
	}
	store_msg_list_release(&ch);
	/* RFC 7162 3.2.5.2 / spec/imap.md 6: below the highest removed
	 * modseq whose history is gone, every known UID that is not live
	 * is reported. */
	if (store_highest_deleted_modseq(s->acct, &hdm, &e) == 0 &&
	    since < hdm && mb->uidnext > 1) {
		struct imap_seqset all = { 0 };
		struct imap_range r = { 1, mb->uidnext - 1 };
		const struct imap_seqset *k = &q->known;

		if (k->n == 0) {
			all.v = &r;
			all.n = 1;
			k = &all;
		}
		for (size_t i = 0; i < k->n; i++) {
			uint32_t a = k->v[i].a == IMAP_SEQ_STAR ? mb->uidnext - 1 :
								  k->v[i].a;
			uint32_t b = k->v[i].b == IMAP_SEQ_STAR ? mb->uidnext - 1 :
								  k->v[i].b;

			if (a > b) {
				uint32_t t = a;

				a = b;
				b = t;
			}
			if (b > mb->uidnext - 1)
				b = mb->uidnext - 1;
			if (a <= floor)
				a = floor + 1;
			for (uint64_t u = a; u <= b; u++)
				if (imap_msn_of(s, (uint32_t)u) == 0)
					u32s_add(&van, (uint32_t)u);
		}
	}
	if (van.n > 0) {
		size_t w = 0;

		qsort(van.v, van.n, sizeof(*van.v), cmp_u32);
		for (size_t i = 0; i < van.n; i++)
			if (w == 0 || van.v[w - 1] != van.v[i])
				van.v[w++] = van.v[i];
		vanished_earlier_out(out, van.v, w);
	}
	free(van.v);
}

int
imap_cmd_select(struct imap_session *s, struct imap_cmd *x)
{
	bool examine = strcmp(x->name, "EXAMINE") == 0;
	bool cs = false, qr = false;
	struct qresync q;
	struct store_mailbox mb;
	struct store_msg_list ml = { 0 };
	struct store_err e;
	char *wire, *name;
	size_t unseen = 0;
	struct buf b;

	memset(&q, 0, sizeof(q));
	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1)
		return -1;
	if ((!imap_parse_eof(&x->p) &&
		parse_select_params(s, x, &cs, &qr, &q) == -1) ||
	    end_of_args(x) == -1) {
		qresync_release(&q);
		return -1;
	}
	if (s->state == IMAP_S_SELECTED) {
		/* RFC 7162 3.2.11 */
		imap_unselect(s);
		imap_reply(s, "* OK [CLOSED] x");
	}
	if (cs)
		s->condstore = true;
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		goto out;
	if (store_mailbox_get(s->acct, name, &mb, &e) == -1) {
		free(name);
		imap_store_no(s, &e, "NONEXISTENT");
		goto out;
	}
	atomic_store(&s->sel_id, mb.id);
	if (store_list(s->acct, mb.id, &ml, &e) == -1) {
		atomic_store(&s->sel_id, 0);
		store_mailbox_release(&mb);
		free(name);
		imap_store_no(s, &e, "NONEXISTENT");
		goto out;
	}
	s->mb_id = mb.id;
	s->mb_name = name;
	s->readonly = examine;
	s->uidvalidity = mb.uidvalidity;
	s->uids = xreallocarray(NULL, ml.n + 1, sizeof(uint32_t));
	s->capuids = ml.n + 1;
	s->nuids = 0;
	for (size_t i = 0; i < ml.n; i++) {
		s->uids[s->nuids++] = ml.v[i].uid;
		if (unseen == 0 && !(ml.v[i].flags & STORE_F_SEEN))
			unseen = i + 1;
	}
	store_msg_list_release(&ml);
	s->state = IMAP_S_SELECTED;
	/* spec/imap.md 6 step 3: queued changes are initial state. */
	imap_changes_apply(s, false, true);

	buf_init(&b, BUF_NOMAX);
	imap_flags_response(s, mb.keywords, &b);
	free(s->mb_keywords);
	s->mb_keywords = xstrdup(mb.keywords != NULL ? mb.keywords : "");
	if (!s->rev2)
		buf_adds(&b, "* 0 RECENT\r\n");
	buf_addf(&b, "* %zu EXISTS\r\n", s->nuids);
	if (!s->rev2 && unseen > 0)
		buf_addf(&b, "* OK [UNSEEN %zu] x\r\n", unseen);
	buf_addf(&b, "* OK [UIDVALIDITY %u] x\r\n", mb.uidvalidity);
	buf_addf(&b, "* OK [UIDNEXT %u] x\r\n", mb.uidnext);
	buf_adds(&b, "* LIST () \"/\" ");
	imap_mailbox_out(s, &b, s->mb_name);
	buf_adds(&b, "\r\n");
	if (s->condstore)
		buf_addf(&b, "* OK [HIGHESTMODSEQ %lld] x\r\n",
		    (long long)imap_modseq(mb.highestmodseq));
	if (qr)
		qresync_out(s, &mb, &q, &b);
	store_mailbox_release(&mb);
	/* A long resynchronisation is written as the peer reads it. */
	imap_finish_paced(s, &b, false, "OK",
	    examine ? "[READ-ONLY] x" : "[READ-WRITE] x");
	buf_release(&b);
out:
	qresync_release(&q);
	return 0;
}

void
imap_flags_response(struct imap_session *s, const char *kw, struct buf *out)
{
	buf_addf(out, "* FLAGS (%s", perm_flags);
	if (kw != NULL && kw[0] != '\0')
		buf_addf(out, " %s", kw);
	buf_adds(out, ")\r\n");
	/* RFC 9051 7.1: the flags the client can change permanently; none
	 * in a mailbox opened read-only. */
	if (s->readonly)
		buf_adds(out, "* OK [PERMANENTFLAGS ()] x\r\n");
	else
		buf_addf(out, "* OK [PERMANENTFLAGS (%s \\*)] x\r\n",
		    perm_flags);
}

void
imap_keywords_changed(struct imap_session *s, const char *kw)
{
	struct buf b;

	if (kw == NULL)
		kw = "";
	if (s->state != IMAP_S_SELECTED ||
	    (s->mb_keywords != NULL && strcmp(s->mb_keywords, kw) == 0))
		return;
	free(s->mb_keywords);
	s->mb_keywords = xstrdup(kw);
	buf_init(&b, BUF_NOMAX);
	imap_flags_response(s, kw, &b);
	imap_write_buf(s, &b);
	buf_release(&b);
}

void
imap_keywords_check(struct imap_session *s)
{
	struct store_mailbox mb;
	struct store_err e;

	if (s->state != IMAP_S_SELECTED ||
	    store_mailbox_get_id(s->acct, s->mb_id, &mb, &e) == -1)
		return;
	imap_keywords_changed(s, mb.keywords);
	store_mailbox_release(&mb);
}

static unsigned
special_from_flag(struct span w)
{
	static const struct {
		const char *name;
		unsigned bit;
	} n[] = {
		{ "\\Archive", STORE_SU_ARCHIVE },
		{ "\\Drafts", STORE_SU_DRAFTS },
		{ "\\Junk", STORE_SU_JUNK },
		{ "\\Sent", STORE_SU_SENT },
		{ "\\Trash", STORE_SU_TRASH },
	};

	for (size_t i = 0; i < ARRAY_LEN(n); i++)
		if (span_eq_ci(w, n[i].name))
			return n[i].bit;
	return 0;
}

int
imap_cmd_create(struct imap_session *s, struct imap_cmd *x)
{
	struct store_err e;
	unsigned special = 0;
	char *wire, *name;
	int64_t id;
	size_t len;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1)
		return -1;
	if (!imap_parse_eof(&x->p)) {
		/* RFC 6154 3: CREATE ... (USE (\Drafts)) */
		if (imap_parse_sp(&x->p) == -1 ||
		    imap_parse_char(&x->p, '(') == -1 ||
		    imap_parse_kw(&x->p, "USE") == -1 ||
		    imap_parse_sp(&x->p) == -1 ||
		    imap_parse_char(&x->p, '(') == -1)
			return -1;
		while (imap_parse_peek(&x->p) == '\\') {
			struct span w;
			unsigned bit;

			x->p.s.pos++;
			if (imap_parse_atom(&x->p, &w) == -1)
				return -1;
			w.p--;
			w.len++;
			bit = special_from_flag(w);
			if (bit == 0) {
				imap_tagged(s, "NO", "[USEATTR] unknown "
						     "special-use attribute");
				return 0;
			}
			special |= bit;
			if (imap_parse_peek(&x->p) == ' ')
				(void)imap_parse_sp(&x->p);
		}
		if (imap_parse_char(&x->p, ')') == -1 ||
		    imap_parse_char(&x->p, ')') == -1)
			return -1;
	}
	if (end_of_args(x) == -1)
		return -1;
	/* RFC 9051 6.3.4: a trailing separator is stripped. */
	len = strlen(wire);
	while (len > 1 && wire[len - 1] == '/')
		wire[--len] = '\0';
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		return 0;
	if (strcmp(name, "Inbox") == 0) {
		free(name);
		imap_tagged(s, "NO", "[ALREADYEXISTS] Inbox always exists");
		return 0;
	}
	if (store_mailbox_create(s->acct, name, special, &id, &e) == -1) {
		free(name);
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	free(name);
	imap_changes_apply(s, true, true);
	imap_tagged(s, "OK", "created");
	return 0;
}

int
imap_cmd_delete(struct imap_session *s, struct imap_cmd *x)
{
	struct store_err e;
	char *wire, *name;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1 ||
	    end_of_args(x) == -1)
		return -1;
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		return 0;
	if (strcmp(name, "Inbox") == 0) {
		free(name);
		imap_tagged(s, "NO", "[CANNOT] cannot delete Inbox");
		return 0;
	}
	if (store_mailbox_delete(s->acct, name, &e) == -1) {
		free(name);
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	imap_changes_apply(s, true, true);
	/* The selected mailbox: its messages are gone for this session
	 * too (others learn it from the change). */
	if (s->state == IMAP_S_SELECTED && s->mb_name != NULL &&
	    strcmp(s->mb_name, name) == 0)
		imap_all_expunged(s, true);
	free(name);
	imap_tagged(s, "OK", "deleted");
	return 0;
}

int
imap_cmd_rename(struct imap_session *s, struct imap_cmd *x)
{
	struct store_err e;
	char *w1, *w2, *from = NULL, *to = NULL;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &w1, NULL) == -1 ||
	    imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &w2, NULL) == -1 ||
	    end_of_args(x) == -1)
		return -1;
	from = imap_mailbox_arg(s, w1);
	if (from == NULL)
		return 0;
	to = imap_mailbox_arg(s, w2);
	if (to == NULL)
		goto out;
	if (strcmp(to, "Inbox") == 0) {
		imap_tagged(s, "NO", "[ALREADYEXISTS] cannot rename to Inbox");
		goto out;
	}
	if (store_mailbox_rename(s->acct, from, to, &e) == -1) {
		imap_store_no(s, &e, "NONEXISTENT");
		goto out;
	}
	imap_changes_apply(s, true, true);
	imap_tagged(s, "OK", "renamed");
out:
	free(from);
	free(to);
	return 0;
}

static int
subscribe_common(struct imap_session *s, struct imap_cmd *x, bool sub)
{
	struct store_err e;
	char *wire, *name;
	int rc;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1 ||
	    end_of_args(x) == -1)
		return -1;
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		return 0;
	rc = sub ? store_subscribe(s->acct, name, &e) :
		   store_unsubscribe(s->acct, name, &e);
	free(name);
	if (rc == -1) {
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	imap_changes_apply(s, true, true);
	imap_tagged(s, "OK", "%s done", sub ? "subscribe" : "unsubscribe");
	return 0;
}

int
imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *x)
{
	return subscribe_common(s, x, true);
}

int
imap_cmd_unsubscribe(struct imap_session *s, struct imap_cmd *x)
{
	return subscribe_common(s, x, false);
}

int
imap_status_items(struct imap_cmd *x, unsigned *items)
{
	*items = 0;
	if (imap_parse_char(&x->p, '(') == -1)
		return -1;
	for (;;) {
		struct span a;
		bool found = false;

		if (imap_parse_atom(&x->p, &a) == -1)
			return -1;
		for (size_t i = 0; i < ARRAY_LEN(status_names); i++)
			if (span_eq_ci(a, status_names[i].name)) {
				*items |= status_names[i].bit;
				found = true;
			}
		if (!found) {
			x->p.why = "unknown status item";
			return -1;
		}
		if (imap_parse_peek(&x->p) != ' ')
			break;
		(void)imap_parse_sp(&x->p);
	}
	return imap_parse_char(&x->p, ')');
}

void
imap_status_line(struct imap_session *s, const struct store_mailbox *mb,
    unsigned items)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	imap_status_line_buf(s, mb, items, &b);
	imap_write_buf(s, &b);
	buf_release(&b);
}

void
imap_status_line_buf(struct imap_session *s, const struct store_mailbox *mb,
    unsigned items, struct buf *out)
{
	struct buf *b = out;
	bool first = true;

	buf_adds(b, "* STATUS ");
	imap_mailbox_out(s, b, mb->name);
	buf_adds(b, " (");
	for (size_t i = 0; i < ARRAY_LEN(status_names); i++) {
		unsigned bit = status_names[i].bit;

		if (!(items & bit))
			continue;
		if (!first)
			buf_addc(b, ' ');
		first = false;
		buf_addf(b, "%s ", status_names[i].name);
		switch (bit) {
		case ST_MESSAGES:
			buf_addf(b, "%lld",
			    (long long)(mb->counts.total + mb->counts.deleted));
			break;
		case ST_UIDNEXT:
			buf_addf(b, "%u", mb->uidnext);
			break;
		case ST_UIDVALIDITY:
			buf_addf(b, "%u", mb->uidvalidity);
			break;
		case ST_UNSEEN:
			buf_addf(b, "%lld", (long long)mb->counts.unseen);
			break;
		case ST_DELETED:
			buf_addf(b, "%lld", (long long)mb->counts.deleted);
			break;
		case ST_SIZE:
			buf_addf(b, "%lld", (long long)mb->counts.size);
			break;
		case ST_RECENT:
		case ST_DELETED_STORAGE:
			buf_adds(b, "0");
			break;
		case ST_APPENDLIMIT:
			buf_adds(b, "NIL");
			break;
		case ST_HIGHESTMODSEQ:
			buf_addf(b, "%lld",
			    (long long)imap_modseq(mb->highestmodseq));
			break;
		default:
			break;
		}
	}
	buf_adds(b, ")\r\n");
}

int
imap_cmd_status(struct imap_session *s, struct imap_cmd *x)
{
	struct store_mailbox mb;
	struct store_err e;
	unsigned items;
	char *wire, *name;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1 ||
	    imap_parse_sp(&x->p) == -1 || imap_status_items(x, &items) == -1 ||
	    end_of_args(x) == -1)
		return -1;
	if (items & ST_HIGHESTMODSEQ)
		s->condstore = true;
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		return 0;
	if (store_mailbox_get(s->acct, name, &mb, &e) == -1) {
		free(name);
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	free(name);
	imap_status_line(s, &mb, items);
	store_mailbox_release(&mb);
	imap_tagged(s, "OK", "status done");
	return 0;
}

static void
quota_line(struct imap_session *s)
{
	struct config *cfg = config_get();
	const struct config_account *ca = NULL;
	int64_t limit = 0, used = 0;
	struct store_err e;

	if (cfg != NULL)
		ca = config_account_find(cfg, store_account_name(s->acct));
	if (ca != NULL)
		limit = ca->eff.quota_message_size;
	config_put(cfg);
	/* RFC 9208 5.1: reported only when a limit is configured. */
	if (limit <= 0 || store_disk_usage(s->acct, &used, &e) == -1)
		return;
	imap_reply(s, "* QUOTA \"\" (STORAGE %lld %lld)",
	    (long long)((used + 1023) / 1024), (long long)((limit + 1023) / 1024));
}

int
imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *x)
{
	struct buf b;
	char *wire;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1 ||
	    end_of_args(x) == -1)
		return -1;
	buf_init(&b, BUF_NOMAX);
	buf_adds(&b, "* QUOTAROOT ");
	imap_fmt_astring(&b, wire, s->utf8);
	buf_adds(&b, " \"\"\r\n");
	imap_write_buf(s, &b);
	buf_release(&b);
	quota_line(s);
	imap_tagged(s, "OK", "getquotaroot done");
	return 0;
}

int
imap_cmd_getquota(struct imap_session *s, struct imap_cmd *x)
{
	char *root;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &root, NULL) == -1 ||
	    end_of_args(x) == -1)
		return -1;
	if (root[0] != '\0') {
		imap_tagged(s, "NO", "unknown quota root");
		return 0;
	}
	quota_line(s);
	imap_tagged(s, "OK", "getquota done");
	return 0;
}
