/*
 * imap_cmd_append.c: APPEND (RFC 9051 6.3.12; RFC 3502 MULTIAPPEND; RFC
 * 6855 4 UTF8 form; RFC 3516 literal8; RFC 4315 APPENDUID; RFC 7889
 * APPENDLIMIT) as spec/imap.md 9.1 describes, and REPLACE and UID
 * REPLACE (RFC 8508): an APPEND, then the expunge of the replaced
 * message. The message literals were streamed by the command reader into
 * temp files (bare LF made CRLF); here they are parsed for the store's
 * MIME structure and imported in one transaction, so several messages
 * are all added or none.
 *
 * Thread rule: the session's thread; blocks on disk and SQLite.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "imap/imap_int.h"
#include "imap/imap_sent_rcpts.h"
#include "lib/io.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "lib/banned.h"

#define APPEND_MSGS_MAX 1000 /* messages in one MULTIAPPEND */

struct one {
	uint32_t flags;
	const char *keywords;
	int64_t received_ns;
	size_t file;            /* index in s->files */
	struct buf parsed;      /* serialised MIME tree */
	struct imap_sent_rcpts rcpts; /* for a Sent mailbox */
};

static int64_t
account_quota(struct imap_session *s)
{
	struct config *cfg = config_get();
	const struct config_account *ca = NULL;
	int64_t q = 0;

	if (cfg != NULL)
		ca = config_account_find(cfg, store_account_name(s->acct));
	if (ca != NULL)
		q = ca->eff.quota_message_size;
	config_put(cfg);
	return q;
}

/* Parse the stored file for the MIME structure blob, and with rcpts
 * for its addressees (spec/store.md 3.3 "Recipient"). */
static void
parse_file(struct imap_session *s, const char *path, struct buf *parsed,
    struct imap_sent_rcpts *rcpts)
{
	struct buf data, err;
	struct message_part *root = NULL;
	const char *why;

	buf_init(&data, IMAP_MESSAGE_MAX);
	buf_init(&err, 1024);
	if (io_read_file(path, &data, &err) == 0 && !buf_failed(&data) &&
	    message_parse(data.data, data.len, &root, &why) == 0) {
		(void)message_serialise(root, parsed);
		if (rcpts != NULL)
			imap_sent_rcpts_get(root, rcpts);
	} else
		log_debug(&s->log, "no mime structure for appended message");
	message_part_free(root);
	buf_release(&data);
	buf_release(&err);
}

/* Parse the messages after the mailbox argument into *msgs_out. Returns
 * the count, or -1 for a syntax error with x->p.why set. */
static int
parse_msgs(struct imap_session *s, struct imap_cmd *x, size_t max,
    struct one **msgs_out)
{
	struct one *msgs = NULL;
	size_t n = 0;

	while (!imap_parse_eof(&x->p)) {
		struct imap_flags f = { 0, NULL };
		struct imap_literal_hdr h;
		int64_t t = 0;
		bool u8 = false;
		struct one *m;

		if (n == max) {
			x->p.why = "too many messages";
			goto bad;
		}
		if (imap_parse_sp(&x->p) == -1)
			goto bad;
		if (imap_parse_peek(&x->p) == '(' &&
		    (imap_parse_flag_list(&x->p, &f) == -1 ||
			imap_parse_sp(&x->p) == -1))
			goto bad;
		if (imap_parse_peek(&x->p) == '"' &&
		    (imap_parse_date_time(&x->p, &t) == -1 ||
			imap_parse_sp(&x->p) == -1))
			goto bad;
		if (imap_parse_kw(&x->p, "UTF8") == 0) {
			if (imap_parse_sp(&x->p) == -1 ||
			    imap_parse_char(&x->p, '(') == -1)
				goto bad;
			u8 = true;
		}
		if (imap_parse_ext_literal(&x->p, &h) == -1)
			goto bad;
		if (u8 && imap_parse_char(&x->p, ')') == -1)
			goto bad;
		if (n >= s->nfiles) {
			x->p.why = "message literal missing";
			goto bad;
		}
		msgs = xreallocarray(msgs, n + 1, sizeof(*msgs));
		m = &msgs[n];
		m->flags = f.flags;
		m->keywords = f.keywords;
		m->received_ns = t * 1000000000LL;
		m->file = n;
		buf_init(&m->parsed, MESSAGE_SERIAL_MAX);
		memset(&m->rcpts, 0, sizeof(m->rcpts));
		n++;
	}
	if (n == 0) {
		x->p.why = "expected message";
		goto bad;
	}
	*msgs_out = msgs;
	return (int)n;
bad:
	for (size_t i = 0; i < n; i++)
		buf_release(&msgs[i].parsed);
	free(msgs);
	return -1;
}

static void
msgs_free(struct one *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_release(&msgs[i].parsed);
		imap_sent_rcpts_release(&msgs[i].rcpts);
	}
	free(msgs);
}

/* Import the messages into mailbox name; out gets n results. With the
 * selected mailbox as target, EXISTS is sent. Returns 0, or -1 after
 * replying NO. */
static int
store_msgs(struct imap_session *s, const char *name, struct one *msgs,
    size_t n, struct store_added *out)
{
	struct store_add *ins = NULL;
	struct store_msg_fields *fields = NULL;
	struct store_mailbox mb;
	struct store_err e;
	int64_t quota;
	bool sent;
	int rc = -1;

	if (store_mailbox_get(s->acct, name, &mb, &e) == -1) {
		imap_store_no(s, &e, "TRYCREATE");
		return -1;
	}
	sent = (mb.special & STORE_SU_SENT) != 0;
	store_mailbox_release(&mb);
	ins = xcalloc(n, sizeof(*ins));
	fields = xcalloc(n, sizeof(*fields));
	quota = account_quota(s);
	for (size_t i = 0; i < n; i++) {
		parse_file(s, s->files[msgs[i].file].path, &msgs[i].parsed,
		    sent ? &msgs[i].rcpts : NULL);
		fields[i].parsed = msgs[i].parsed.len > 0 ? msgs[i].parsed.data :
							     NULL;
		fields[i].parsed_len = msgs[i].parsed.len;
		fields[i].rcpt_localparts =
		    (const char *const *)msgs[i].rcpts.lp;
		fields[i].rcpt_domains = (const char *const *)msgs[i].rcpts.dom;
		fields[i].n_rcpts = msgs[i].rcpts.n;
		fields[i].rcpt_sent_ns = msgs[i].rcpts.sent_ns;
		ins[i].path = s->files[msgs[i].file].path;
		ins[i].flags = msgs[i].flags;
		ins[i].keywords = msgs[i].keywords;
		ins[i].received_ns = msgs[i].received_ns;
		ins[i].quota = quota;
		ins[i].fields = &fields[i];
	}
	store_sub_origin(s->sub);
	/* One message: a delivery (fsync of its file and the directory,
	 * grouped with concurrent deliveries' commits); several: one import
	 * (one syncfs), all or nothing (RFC 3502 MULTIAPPEND). */
	if ((n == 1 ? store_deliver(s->acct, &ins[0], &name, 1, out, &e) :
		      store_import(s->acct, name, ins, n, out, &e)) == -1) {
		store_sub_origin(NULL);
		imap_store_no(s, &e, "TRYCREATE");
		goto out;
	}
	store_sub_origin(NULL);
	rc = 0;
out:
	free(ins);
	free(fields);
	return rc;
}

/* spec/imap.md 9.1: others' new messages first, then ours. */
static void
exists_out(struct imap_session *s, const struct store_added *out, size_t n)
{
	size_t before;

	if (s->state != IMAP_S_SELECTED || out[0].mailbox_id != s->mb_id)
		return;
	imap_changes_apply(s, true, true);
	imap_keywords_check(s);
	before = s->nuids;
	for (size_t i = 0; i < n; i++)
		(void)imap_map_add(s, out[i].uid);
	if (s->nuids != before)
		imap_reply(s, "* %zu EXISTS", s->nuids);
}

int
imap_cmd_append(struct imap_session *s, struct imap_cmd *x)
{
	struct one *msgs = NULL;
	struct store_added *out = NULL;
	char *wire, *name = NULL;
	int n;

	if (imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1)
		return -1;
	n = parse_msgs(s, x, APPEND_MSGS_MAX, &msgs);
	if (n == -1)
		return -1;
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		goto out;
	out = xcalloc((size_t)n, sizeof(*out));
	if (store_msgs(s, name, msgs, (size_t)n, out) == -1)
		goto out;
	exists_out(s, out, (size_t)n);
	if (n == 1)
		imap_tagged(s, "OK", "[APPENDUID %u %u] appended",
		    out[0].uidvalidity, out[0].uid);
	else
		imap_tagged(s, "OK", "[APPENDUID %u %u:%u] appended",
		    out[0].uidvalidity, out[0].uid, out[n - 1].uid);
out:
	msgs_free(msgs, n > 0 ? (size_t)n : 0);
	free(out);
	free(name);
	return 0;
}

/* RFC 8508 3.3: remove the replaced message uid of the selected mailbox
 * and report it as EXPUNGE or VANISHED. */
static void
replace_remove(struct imap_session *s, uint32_t uid)
{
	struct store_flags_result fr = { 0 };
	struct store_uids removed = { 0 };
	struct store_err e;
	int rc;

	store_sub_origin(s->sub);
	rc = store_flags(s->acct, s->mb_id, &uid, 1, STORE_FLAGS_ADD,
	    STORE_F_DELETED, "", -1, &fr, &e);
	if (rc == 0)
		rc = store_expunge(s->acct, s->mb_id, &uid, 1, &removed, &e);
	store_sub_origin(NULL);
	store_flags_result_release(&fr);
	if (rc == -1)
		log_error(&s->log, "expunging replaced message", LF_ERR(e.text));
	imap_changes_apply(s, true, true);
	for (size_t i = 0; i < removed.n; i++) {
		size_t msn = imap_map_remove(s, removed.v[i]);

		if (msn == 0)
			continue;
		if (s->qresync)
			imap_expunged_out(s, &removed.v[i], 1);
		else
			imap_reply(s, "* %zu EXPUNGE", msn);
	}
	store_uids_release(&removed);
}

int
imap_cmd_replace(struct imap_session *s, struct imap_cmd *x)
{
	struct one *msgs = NULL;
	struct store_added out;
	char *wire, *name = NULL;
	uint32_t num, uid = 0;
	int n;

	if (imap_parse_sp(&x->p) == -1 || imap_parse_nznumber(&x->p, &num) == -1 ||
	    imap_parse_sp(&x->p) == -1 ||
	    imap_parse_astring(&x->p, &wire, NULL) == -1)
		return -1;
	n = parse_msgs(s, x, 1, &msgs);
	if (n == -1)
		return -1;
	if (!x->uid && num > s->nuids) {
		/* RFC 8508 3.3: an invalid message sequence number is BAD. */
		msgs_free(msgs, (size_t)n);
		x->p.why = "no such message";
		return -1;
	}
	if (x->uid && imap_msn_of(s, num) == 0) {
		imap_tagged(s, "NO", "[NONEXISTENT] no such message");
		goto out;
	}
	uid = x->uid ? num : s->uids[num - 1];
	if (s->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] mailbox open read-only");
		goto out;
	}
	name = imap_mailbox_arg(s, wire);
	if (name == NULL)
		goto out;
	if (store_msgs(s, name, msgs, 1, &out) == -1)
		goto out;
	imap_reply(s, "* OK [APPENDUID %u %u] replacement message ready",
	    out.uidvalidity, out.uid);
	exists_out(s, &out, 1);
	replace_remove(s, uid);
	imap_tagged(s, "OK", "replaced");
out:
	msgs_free(msgs, (size_t)n);
	free(name);
	return 0;
}
