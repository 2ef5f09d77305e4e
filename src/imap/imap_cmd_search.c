/*
 * imap_cmd_search.c: SEARCH and UID SEARCH (RFC 9051 6.4.4; RFC 4731
 * ESEARCH; RFC 5182 SEARCHRES; RFC 7162 3.1.5 MODSEQ) as spec/imap.md 10
 * describes. The program is parsed and matched by imap_search.h; this
 * file feeds it the messages of the session's view, loading contents only
 * when a key needs them.
 *
 * Thread rule: the session's thread; blocks on disk and SQLite.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "imap/imap_search.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "lib/banned.h"

struct lazy {
	struct imap_session *s;
	uint32_t uid;
	int64_t id;
	struct buf bytes;
	bool have_bytes, bytes_failed;
	struct buf header;
	bool have_header, header_failed;
	struct message_part *root;
	bool have_tree, tree_failed;
};

static int
get_bytes(void *arg, struct span *out)
{
	struct lazy *l = arg;
	struct store_err e;
	int fd;

	if (l->bytes_failed)
		return -1;
	if (!l->have_bytes) {
		buf_init(&l->bytes, IMAP_MESSAGE_MAX);
		if (store_msg_open(l->s->acct, l->s->mb_id, l->uid, &fd, &e) == -1) {
			l->bytes_failed = true;
			return -1;
		}
		for (;;) {
			char *p = buf_reserve(&l->bytes, 65536);
			ssize_t r;

			if (p == NULL)
				break;
			r = read(fd, p, 65536);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			buf_commit(&l->bytes, (size_t)r);
		}
		(void)close(fd);
		l->have_bytes = true;
	}
	*out = span_of_buf(&l->bytes);
	return 0;
}

/* Header keys read only the start of the file (or the store's cache). */
static int
get_header(void *arg, struct span *out)
{
	struct lazy *l = arg;
	struct store_err e;

	if (l->have_bytes) {
		*out = span_of(l->bytes.data,
		    message_header_len(span_of_buf(&l->bytes)));
		return 0;
	}
	if (l->header_failed)
		return -1;
	if (!l->have_header) {
		buf_init(&l->header, IMAP_MESSAGE_MAX);
		if (store_msg_header(l->s->acct, l->s->mb_id, l->id,
			&l->header, &e) == -1) {
			l->header_failed = true;
			return -1;
		}
		l->have_header = true;
	}
	*out = span_of_buf(&l->header);
	return 0;
}

static int
get_tree(void *arg, const struct message_part **out)
{
	struct lazy *l = arg;
	struct store_msg m;
	struct store_err e;
	struct buf parsed;
	const char *why;
	struct span b;

	if (l->tree_failed)
		return -1;
	if (!l->have_tree) {
		buf_init(&parsed, MESSAGE_SERIAL_MAX);
		if (store_msg_get(l->s->acct, l->s->mb_id, l->uid, &m, &parsed,
			&e) == -1) {
			buf_release(&parsed);
			l->tree_failed = true;
			return -1;
		}
		free(m.keywords);
		if (parsed.len == 0 ||
		    message_deserialise(span_of_buf(&parsed), (size_t)m.size,
			&l->root, &why) == -1) {
			if (get_bytes(l, &b) == -1 ||
			    message_parse(b.p, b.len, &l->root, &why) == -1) {
				buf_release(&parsed);
				l->tree_failed = true;
				return -1;
			}
		}
		buf_release(&parsed);
		l->have_tree = true;
	}
	*out = l->root;
	return 0;
}

static void
lazy_release(struct lazy *l)
{
	if (l->have_bytes || l->bytes_failed)
		buf_release(&l->bytes);
	if (l->have_header || l->header_failed)
		buf_release(&l->header);
	message_part_free(l->root);
}

int
imap_cmd_search(struct imap_session *s, struct imap_cmd *x)
{
	struct imap_search_ctx ctx;
	struct imap_search *q = NULL;
	struct store_msg_list ml = { 0 };
	struct store_err e;
	unsigned opts = 0;
	bool esearch = false, has_modseq;
	const char *why = NULL;
	uint32_t *res = NULL, *ruids = NULL;
	size_t nres = 0;
	int64_t maxmod = 0;
	struct buf out;

	if (imap_parse_sp(&x->p) == -1)
		return -1;
	if (imap_search_return_parse(&x->p.s, &opts, &esearch, &why) == -1) {
		x->p.why = why;
		return -1;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.nmsgs = (uint32_t)s->nuids;
	ctx.max_uid = s->nuids ? s->uids[s->nuids - 1] : 0;
	ctx.saved = s->saved;
	ctx.nsaved = s->nsaved;
	ctx.now = time_wall_ns() / NS_PER_SEC;
	/* RFC 8514: the save date is the internal date (the store keeps no
	 * other; FETCH SAVEDATE reports the same). */
	ctx.savedate = true;
	if (opts & IMAP_SEARCH_RET_SAVE) {
		/* RFC 5182 2.4: empty first, so an error leaves it empty. */
		free(s->saved);
		s->saved = NULL;
		s->nsaved = 0;
	}
	if (imap_search_parse(&x->p.s, &ctx, &q, &why) == -1) {
		if (why == imap_search_err_badcharset) {
			imap_tagged(s, "NO", "[BADCHARSET (US-ASCII UTF-8)] "
					     "unsupported charset");
			return 0;
		}
		x->p.why = why;
		return -1;
	}
	has_modseq = imap_search_has_modseq(q);
	if (has_modseq)
		s->condstore = true;
	if (!esearch && s->rev2) {
		esearch = true;
		opts = IMAP_SEARCH_RET_ALL;
	}
	if (esearch && opts == 0)
		opts = IMAP_SEARCH_RET_ALL;
	if (store_list(s->acct, s->mb_id, &ml, &e) == -1) {
		imap_search_free(q);
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	res = xreallocarray(NULL, ml.n + 1, sizeof(uint32_t));
	ruids = xreallocarray(NULL, ml.n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < ml.n; i++) {
		const struct store_msg *m = &ml.v[i];
		struct imap_search_msg sm;
		struct lazy l;
		size_t msn = imap_msn_of(s, m->uid);

		if (msn == 0)
			continue;
		memset(&l, 0, sizeof(l));
		l.s = s;
		l.uid = m->uid;
		l.id = m->id;
		memset(&sm, 0, sizeof(sm));
		sm.seq = (uint32_t)msn;
		sm.uid = m->uid;
		sm.flags = m->flags;
		sm.keywords = m->keywords;
		sm.modseq = imap_modseq(m->modseq);
		sm.size = m->size;
		sm.received = m->received_ns / NS_PER_SEC;
		sm.savedate = sm.received;
		sm.get_bytes = get_bytes;
		sm.get_tree = get_tree;
		sm.get_header = get_header;
		sm.arg = &l;
		if (imap_search_match(q, &sm)) {
			res[nres] = x->uid ? m->uid : (uint32_t)msn;
			ruids[nres] = m->uid;
			nres++;
			if (sm.modseq > maxmod)
				maxmod = sm.modseq;
		}
		lazy_release(&l);
	}
	store_msg_list_release(&ml);
	imap_search_free(q);
	if ((opts & IMAP_SEARCH_RET_SAVE) &&
	    (opts & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) &&
	    !(opts & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) &&
	    nres > 0) {
		/* RFC 5182 2.4: with MIN and/or MAX alone, only those
		 * messages are saved. */
		size_t k = 0;

		if (opts & IMAP_SEARCH_RET_MIN)
			ruids[k++] = ruids[0];
		if ((opts & IMAP_SEARCH_RET_MAX) && (k == 0 || nres > 1))
			ruids[k++] = ruids[nres - 1];
		s->saved = ruids;
		s->nsaved = k;
		ruids = NULL;
	} else if (opts & IMAP_SEARCH_RET_SAVE) {
		s->saved = ruids;
		s->nsaved = nres;
		ruids = NULL;
	}
	buf_init(&out, BUF_NOMAX);
	if (esearch)
		imap_search_format_esearch(&out, s->tag, x->uid, opts, res, nres,
		    has_modseq ? maxmod : 0);
	else
		imap_search_format_search(&out, res, nres,
		    has_modseq ? maxmod : 0);
	free(res);
	free(ruids);
	/* A large result is written as the peer reads it. */
	imap_finish_paced(s, &out, x->uid, "OK", "done");
	buf_release(&out);
	return 0;
}
