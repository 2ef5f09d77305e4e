/*
 * imap_cmd_copy.c: COPY, UID COPY (RFC 9051 6.4.7; RFC 4315 COPYUID),
 * MOVE and UID MOVE (RFC 6851; RFC 7162 3.2.10 VANISHED) as spec/imap.md
 * 9.2 describes, with the junk flags of the destination: a Junk
 * special-use mailbox forces $Junk, and the account's AutomaticJunkFlags
 * regular expressions set $Junk or $NotJunk (spec/store.md 9).
 *
 * Thread rule: the session's thread; blocks on disk and SQLite.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "lib/banned.h"

static bool
junk_re_match(const char *re, const char *name)
{
	regex_t r;
	bool m;

	if (re == NULL || re[0] == '\0')
		return false;
	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_ICASE) != 0)
		return false;
	m = regexec(&r, name, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

/* Junk flags for messages arriving in mb: bits to set and to clear. */
static void
junk_flags(struct imap_session *s, const struct store_mailbox *mb,
    uint32_t *set, uint32_t *clear, int64_t *quota)
{
	struct config *cfg = config_get();
	const struct config_account *ca = NULL;

	*set = *clear = 0;
	*quota = 0;
	if (cfg != NULL)
		ca = config_account_find(cfg, store_account_name(s->acct));
	if (ca != NULL) {
		const struct config_auto_junk *aj = &ca->automatic_junk_flags;

		*quota = ca->eff.quota_message_size;
		if (aj->enabled) {
			if (junk_re_match(aj->junk_mailbox_regexp, mb->name)) {
				*set = STORE_F_JUNK;
				*clear = STORE_F_NOTJUNK;
			} else if (junk_re_match(aj->neutral_mailbox_regexp, mb->name)) {
				*set = 0;
			} else if (junk_re_match(aj->not_junk_mailbox_regexp,
				       mb->name)) {
				*set = STORE_F_NOTJUNK;
				*clear = STORE_F_JUNK;
			}
		}
	}
	config_put(cfg);
	if (mb->special & STORE_SU_JUNK) {
		*set = STORE_F_JUNK;
		*clear = STORE_F_NOTJUNK;
	}
}

static void
apply_junk(struct imap_session *s, int64_t mbid, const uint32_t *uids,
    size_t n, uint32_t set, uint32_t clear)
{
	struct store_flags_result r = { 0 };
	struct store_err e;

	if (set != 0 && store_flags(s->acct, mbid, uids, n, STORE_FLAGS_ADD,
			    set, "", -1, &r, &e) == -1)
		log_error(&s->log, "setting junk flags", LF_ERR(e.text));
	store_flags_result_release(&r);
	if (clear != 0 && store_flags(s->acct, mbid, uids, n,
			      STORE_FLAGS_REMOVE, clear, "", -1, &r, &e) == -1)
		log_error(&s->log, "clearing junk flags", LF_ERR(e.text));
	store_flags_result_release(&r);
}

int
imap_cmd_copy(struct imap_session *s, struct imap_cmd *x)
{
	bool move = strcmp(x->name, "MOVE") == 0 ||
	    strcmp(x->name, "UID MOVE") == 0;
	struct imap_seqset set = { 0 };
	struct store_mailbox mb;
	struct store_uidmap map = { 0 };
	struct store_err e;
	uint32_t *uids = NULL, jset, jclear;
	size_t n = 0;
	int64_t quota;
	const char *why = NULL;
	char *wire, *name = NULL;
	struct buf src, dst;
	int rc = -1, r;

	if (imap_parse_sp(&x->p) == -1 || imap_parse_seqset(&x->p, &set) == -1 ||
	    imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1)
		goto out;
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		goto out;
	}
	if (imap_seqset_uids(s, &set, x->uid, &uids, &n, &why) == -1) {
		x->p.why = why;
		goto out;
	}
	rc = 0;
	if (move && s->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] mailbox open read-only");
		goto out;
	}
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		goto out;
	if (store_mailbox_get(s->acct, name, &mb, &e) == -1) {
		imap_store_no(s, &e, "TRYCREATE");
		goto out;
	}
	if (n == 0) {
		store_mailbox_release(&mb);
		imap_tagged(s, "NO", "no matching messages");
		goto out;
	}
	if (move && mb.id == s->mb_id) {
		store_mailbox_release(&mb);
		imap_tagged(s, "NO", "[CANNOT] cannot move to the selected "
				     "mailbox");
		goto out;
	}
	junk_flags(s, &mb, &jset, &jclear, &quota);
	store_sub_origin(s->sub);
	if (move)
		r = store_move(s->acct, s->mb_id, uids, n, mb.id, &map, &e);
	else
		r = store_copy(s->acct, s->mb_id, uids, n, mb.id, quota, &map, &e);
	if (r == 0 && map.n > 0 && (jset | jclear) != 0)
		apply_junk(s, mb.id, map.dst, map.n, jset, jclear);
	store_sub_origin(NULL);
	if (r == -1) {
		store_mailbox_release(&mb);
		imap_store_no(s, &e, "TRYCREATE");
		goto out;
	}
	buf_init(&src, BUF_NOMAX);
	buf_init(&dst, BUF_NOMAX);
	imap_fmt_seqset(&src, map.src, map.n);
	imap_fmt_seqset(&dst, map.dst, map.n);
	if (!move && mb.id == s->mb_id) {
		/* COPY into the selected mailbox: our own new messages. */
		size_t before;

		imap_changes_apply(s, true, true);
		imap_keywords_check(s);
		before = s->nuids;
		for (size_t i = 0; i < map.n; i++)
			(void)imap_map_add(s, map.dst[i]);
		if (s->nuids != before)
			imap_reply(s, "* %zu EXISTS", s->nuids);
	}
	if (!move) {
		if (map.n > 0)
			imap_tagged(s, "OK", "[COPYUID %u %s %s] copied",
			    map.dst_uidvalidity, src.data, dst.data);
		else
			imap_tagged(s, "OK", "copied");
	} else {
		uint32_t *gone = xreallocarray(NULL, map.n + 1, sizeof(uint32_t));
		uint32_t *moved = xreallocarray(NULL, map.n + 1,
		    sizeof(uint32_t));
		size_t *msns = xreallocarray(NULL, map.n + 1, sizeof(size_t));
		size_t ngone;
		struct buf lines;

		if (map.n > 0)
			imap_reply(s, "* OK [COPYUID %u %s %s] moved",
			    map.dst_uidvalidity, src.data, dst.data);
		imap_changes_apply(s, true, true);
		memcpy(moved, map.src, map.n * sizeof(uint32_t));
		ngone = imap_map_remove_many(s, moved, map.n, gone, msns);
		/* Many messages: written as the peer reads them. */
		buf_init(&lines, BUF_NOMAX);
		if (!s->qresync)
			for (size_t i = 0; i < ngone; i++)
				buf_addf(&lines, "* %zu EXPUNGE\r\n", msns[i]);
		imap_expunged_buf(s, gone, ngone, &lines);
		free(gone);
		free(moved);
		free(msns);
		if (s->qresync) {
			char text[64];

			snprintf(text, sizeof(text), "[HIGHESTMODSEQ %lld] move",
			    (long long)imap_modseq(map.modseq));
			imap_finish_paced(s, &lines, false, "OK", text);
		} else {
			imap_finish_paced(s, &lines, false, "OK", "move");
		}
		buf_release(&lines);
	}
	buf_release(&src);
	buf_release(&dst);
	store_mailbox_release(&mb);
out:
	store_uidmap_release(&map);
	free(uids);
	free(name);
	imap_seqset_release(&set);
	return rc;
}
