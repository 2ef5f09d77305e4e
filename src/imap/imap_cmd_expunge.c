/*
 * imap_cmd_expunge.c: EXPUNGE and UID EXPUNGE (RFC 9051 6.4.3, RFC 4315
 * 2.1; RFC 7162 3.2.10 VANISHED), CLOSE (6.4.1), UNSELECT (RFC 3691),
 * CHECK (RFC 3501 6.4.1) and IDLE (RFC 2177; spec/imap.md 11). An idle
 * session returns to the reactor and costs no thread: changes arrive as
 * NET_EV_NOTIFY and are written then.
 *
 * Thread rule: the session's thread; store calls block on SQLite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "net/net.h"
#include "lib/banned.h"

static int
end_of_args(struct imap_cmd *x)
{
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		return -1;
	}
	return 0;
}

int
imap_cmd_check(struct imap_session *s, struct imap_cmd *x)
{
	struct store_mailbox mb;
	struct store_err e;

	if (end_of_args(x) == -1)
		return -1;
	if (store_mailbox_get_id(s->acct, s->mb_id, &mb, &e) == -1) {
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	store_mailbox_release(&mb);
	imap_tagged(s, "OK", "check done");
	return 0;
}

int
imap_cmd_unselect(struct imap_session *s, struct imap_cmd *x)
{
	if (end_of_args(x) == -1)
		return -1;
	imap_unselect(s);
	imap_tagged(s, "OK", "unselect done");
	return 0;
}

int
imap_cmd_close(struct imap_session *s, struct imap_cmd *x)
{
	struct store_uids removed = { 0 };
	struct store_err e;

	if (end_of_args(x) == -1)
		return -1;
	if (!s->readonly && s->nuids > 0) {
		/* RFC 9051 6.4.1: expunge silently. */
		store_sub_origin(s->sub);
		if (store_expunge(s->acct, s->mb_id, s->uids, s->nuids,
			&removed, &e) == -1)
			log_error(&s->log, "expunge at close", LF_ERR(e.text));
		store_sub_origin(NULL);
		store_uids_release(&removed);
	}
	imap_unselect(s);
	imap_tagged(s, "OK", "close done");
	return 0;
}

int
imap_cmd_expunge(struct imap_session *s, struct imap_cmd *x)
{
	struct store_uids removed = { 0 };
	struct store_err e;
	uint32_t *uids = NULL;
	struct buf lines;
	size_t n = 0;
	int rc;

	if (x->uid) {
		struct imap_seqset set;
		const char *why = NULL;

		if (imap_parse_sp(&x->p) == -1 ||
		    imap_parse_seqset(&x->p, &set) == -1)
			return -1;
		if (end_of_args(x) == -1 ||
		    imap_seqset_uids(s, &set, true, &uids, &n, &why) == -1) {
			imap_seqset_release(&set);
			if (why != NULL)
				x->p.why = why;
			return -1;
		}
		imap_seqset_release(&set);
	} else if (end_of_args(x) == -1) {
		return -1;
	} else {
		n = s->nuids;
		uids = xreallocarray(NULL, n + 1, sizeof(uint32_t));
		memcpy(uids, s->uids, n * sizeof(uint32_t));
	}
	if (s->readonly) {
		free(uids);
		imap_tagged(s, "NO", "[READ-ONLY] mailbox open read-only");
		return 0;
	}
	rc = 0;
	if (n > 0) {
		store_sub_origin(s->sub);
		rc = store_expunge(s->acct, s->mb_id, uids, n, &removed, &e);
		store_sub_origin(NULL);
	}
	free(uids);
	if (rc == -1) {
		imap_store_no(s, &e, "NONEXISTENT");
		return 0;
	}
	/* Changes of others committed before ours come first. */
	imap_changes_apply(s, true, true);
	/* Many messages: the responses are written as the peer reads. */
	buf_init(&lines, BUF_NOMAX);
	{
		uint32_t *gone = xreallocarray(NULL, removed.n + 1,
		    sizeof(uint32_t));
		size_t *msns = xreallocarray(NULL, removed.n + 1,
		    sizeof(size_t));
		size_t ngone = imap_map_remove_many(s, removed.v, removed.n,
		    gone, msns);

		if (!s->qresync)
			for (size_t i = 0; i < ngone; i++)
				buf_addf(&lines, "* %zu EXPUNGE\r\n", msns[i]);
		imap_expunged_buf(s, gone, ngone, &lines);
		free(gone);
		free(msns);
	}
	if (s->condstore) {
		int64_t m = removed.modseq;
		char text[64];

		if (m == 0) {
			struct store_mailbox mb;

			if (store_mailbox_get_id(s->acct, s->mb_id, &mb, &e) == 0) {
				m = mb.highestmodseq;
				store_mailbox_release(&mb);
			}
		}
		snprintf(text, sizeof(text), "[HIGHESTMODSEQ %lld] expunged",
		    (long long)imap_modseq(m));
		imap_finish_paced(s, &lines, false, "OK", text);
	} else {
		imap_finish_paced(s, &lines, false, "OK", "expunged");
	}
	buf_release(&lines);
	store_uids_release(&removed);
	return 0;
}

int
imap_cmd_idle(struct imap_session *s, struct imap_cmd *x)
{
	if (end_of_args(x) == -1)
		return -1;
	imap_reply(s, "+ waiting");
	s->rd = IMAP_R_IDLE;
	imap_changes_apply(s, true, true);
	return 0;
}

void
imap_idle_line(struct imap_session *s, struct span line)
{
	if (!span_eq_ci(line, "DONE")) {
		/* spec/imap.md 11: anything else ends the connection. */
		imap_reply(s, "* BYE expected DONE");
		net_conn_close(s->c);
		s->closing = true;
		return;
	}
	s->rd = IMAP_R_LINE;
	imap_changes_apply(s, true, true);
	imap_tagged(s, "OK", "idle done");
}
