/*
 * queue_fromid.c: fromid ids and incoming feedback about retired
 * messages (spec/queue.md 12, 9, 11, 14; spec/smtp.md 11 step 10 and
 * 12.3 step 6). DSNs follow RFC 3464 (delivery-status fields, RFC 3463
 * status codes) and RFC 6533 (global-delivery-status); they come from
 * anyone who can send us mail: every field is optional to us, values are
 * bounded, and a message only counts as feedback for the account whose
 * retired message carries the id.
 *
 * Threads: the id and parsing functions are pure; queue_fromid_incoming()
 * uses its own SQLite connection on the calling thread (not the
 * reactor).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/base64.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "queue/queue_fromid.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

/* queue_store.c's text for spec/queue.md 2 step 3. */
#define FROMID_DUP_ERR "fromid not unique"
#define FROMID_VALUE_MAX 4096 /* unfolded DSN field value we keep */

void
queue_fromid_new(struct buf *out)
{
	uint8_t r[QUEUE_FROMID_RANDOM];
	char enc[BASE64_ENCODE_LENGTH(QUEUE_FROMID_RANDOM) +
	    BASE64_ENCODE_FINAL_LENGTH];
	struct base64_encode_ctx ctx;
	size_t n;

	(void)gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r));
	base64url_encode_init(&ctx);
	n = base64_encode_update(&ctx, enc, sizeof(r), r);
	n += base64_encode_final(&ctx, enc + n);
	while (n > 0 && enc[n - 1] == '=')
		n--; /* RFC 4648 3.2: padding left out */
	buf_add(out, enc, n);
}

bool
queue_fromid_split(const char *localpart, const char *sep,
    struct span *base_out, struct span *id_out)
{
	const char *hit = sep != NULL && sep[0] != '\0'
	    ? strstr(localpart, sep)
	    : NULL;

	if (hit == NULL) {
		*base_out = span_of_cstr(localpart);
		*id_out = span_of("", 0);
		return false;
	}
	*base_out = span_of(localpart, (size_t)(hit - localpart));
	*id_out = span_of_cstr(hit + strlen(sep));
	return true;
}

bool
queue_fromid_is_dup_err(const char *err)
{
	return err != NULL && strstr(err, FROMID_DUP_ERR) != NULL;
}

/* ---- DSN fields (RFC 3464 2.2, 2.3) ---- */

static void
fb_init(struct queue_fromid_feedback *fb)
{
	memset(fb, 0, sizeof(*fb));
	fb->event = "unrecognized";
	snprintf(fb->error, sizeof(fb->error), "incoming message");
}

/* RFC 3463 2: class "." subject "." detail, subject and detail 1-3
 * digits, class 2, 4 or 5; trailing text (a comment) allowed after a
 * space or "(". 0 with the class and "subject.detail" in secode. */
static int
status_code(struct span v, int *class_out, char secode[16])
{
	size_t i = 0, nd;
	int class;

	if (v.len < 5 || (v.p[0] != '2' && v.p[0] != '4' && v.p[0] != '5') ||
	    v.p[1] != '.')
		return -1;
	class = v.p[0] - '0';
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (nd = 0; i < v.len && char_is_digit((unsigned char)v.p[i]);
		     i++)
			nd++;
		if (nd < 1 || nd > 3)
			return -1;
		if (part == 0) {
			if (i >= v.len || v.p[i] != '.')
				return -1;
			i++;
		}
	}
	if (i < v.len && v.p[i] != ' ' && v.p[i] != '\t' && v.p[i] != '(')
		return -1;
	memcpy(secode, v.p + 2, i - 2);
	secode[i - 2] = '\0';
	*class_out = class;
	return 0;
}

/* "smtp; 550 5.1.1 text" (RFC 3464 2.3.6, diagnostic-type smtp): the
 * reply code, and the enhanced code when one of the same class follows.
 * Our own DSNs join multi-line replies ("550-5.1.1 ..."). */
static void
diagnostic_codes(struct span v, int *code, char secode[16])
{
	struct scan s = scan_of(v);
	struct span type, rest;
	uint64_t c = 0;
	int class;

	if (scan_until(&s, ';', 64, &type) == -1 ||
	    !span_eq_ci(span_trim(type), "smtp"))
		return;
	(void)scan_char(&s, ';');
	rest = span_trim(scan_rest(&s));
	if (rest.len < 3 || !char_is_digit((unsigned char)rest.p[0]) ||
	    !char_is_digit((unsigned char)rest.p[1]) ||
	    !char_is_digit((unsigned char)rest.p[2]) ||
	    (rest.len > 3 && rest.p[3] != ' ' && rest.p[3] != '-'))
		return;
	if (span_u64(span_of(rest.p, 3), 999, &c) == -1 || c < 200 || c > 599)
		return;
	*code = (int)c;
	secode[0] = '\0';
	if (rest.len > 4 &&
	    status_code(span_of(rest.p + 4, rest.len - 4), &class, secode) ==
		0 &&
	    class != (int)(c / 100))
		secode[0] = '\0';
}

/* The fields of the first per-recipient group. */
struct dsn_rcpt {
	struct buf action, status, diag;
	bool have_action, have_status, have_diag;
};

static void
keep_field(const struct message_field *f, struct dsn_rcpt *r)
{
	struct buf *b = NULL;
	bool *have = NULL;

	if (span_eq_ci(f->name, "Action")) {
		b = &r->action;
		have = &r->have_action;
	} else if (span_eq_ci(f->name, "Status")) {
		b = &r->status;
		have = &r->have_status;
	} else if (span_eq_ci(f->name, "Diagnostic-Code")) {
		b = &r->diag;
		have = &r->have_diag;
	}
	if (b == NULL || *have)
		return; /* the first of each counts */
	*have = true;
	message_unfold(f->value, b);
	if (buf_failed(b))
		buf_truncate(b, 0);
}

static bool
is_rcpt_field(struct span name)
{
	return span_eq_ci(name, "Final-Recipient") ||
	    span_eq_ci(name, "Original-Recipient") ||
	    span_eq_ci(name, "Action");
}

/* The action word, lower-case comparison; comments after it ignored. */
static void
map_action(struct span a, struct queue_fromid_feedback *fb)
{
	static const struct {
		const char *name;
		bool success;
	} actions[] = {
		{ "failed", false },
		{ "delayed", false },
		{ "delivered", true },
		{ "relayed", true },
		{ "expanded", true },
	};
	size_t n = 0;

	while (n < a.len && a.p[n] != ' ' && a.p[n] != '\t' && a.p[n] != '(' &&
	    a.p[n] != ';')
		n++;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (span_eq_ci(span_of(a.p, n), actions[i].name)) {
			fb->event = actions[i].name;
			fb->success = actions[i].success;
			return;
		}
}

int
queue_fromid_dsn_parse(struct span status, struct queue_fromid_feedback *fb)
{
	struct dsn_rcpt r;
	struct span rest = status;
	size_t nrcpt = 0;
	const char *why = NULL;
	char ssec[16];
	int rc = -1, class;

	fb_init(fb);
	fb->dsn = true;
	buf_init(&r.action, FROMID_VALUE_MAX);
	buf_init(&r.status, FROMID_VALUE_MAX);
	buf_init(&r.diag, FROMID_VALUE_MAX);
	r.have_action = r.have_status = r.have_diag = false;
	/* RFC 3464 2.1: groups of fields separated by empty lines; the
	 * per-message group first, then one group per recipient. A group
	 * with a recipient field is a recipient's (INTEROP: senders that
	 * leave out the per-message group). */
	while (rest.len > 0) {
		size_t hl = message_header_len(rest);
		struct span group = span_of(rest.p, hl);
		struct message_header_iter it;
		struct message_field f;
		bool rcpt = false;
		int n;

		rest = span_of(rest.p + hl, rest.len - hl);
		message_header_iter_init(&it, group);
		while ((n = message_header_next(&it, &f, &why)) == 1)
			if (is_rcpt_field(f.name))
				rcpt = true;
		if (n == -1)
			goto out;
		if (!rcpt)
			continue;
		if (++nrcpt > 1)
			continue;
		message_header_iter_init(&it, group);
		while (message_header_next(&it, &f, &why) == 1)
			keep_field(&f, &r);
	}
	if (nrcpt != 1) {
		snprintf(fb->error, sizeof(fb->error),
		    "incoming message: dsn has %zu recipients, expecting 1",
		    nrcpt);
		goto fail;
	}
	if (!r.have_action || r.action.len == 0) {
		why = "no action";
		goto out;
	}
	if (r.have_diag)
		diagnostic_codes(span_of_buf(&r.diag), &fb->code, fb->secode);
	/* spec/queue.md 12: without a code from Diagnostic-Code, the class
	 * of Status gives 400 or 500. */
	if (r.have_status &&
	    status_code(span_trim(span_of_buf(&r.status)), &class, ssec) == 0) {
		if (fb->code == 0 && (class == 4 || class == 5)) {
			fb->code = class * 100;
			memcpy(fb->secode, ssec, sizeof(fb->secode));
		} else if (fb->code / 100 == class && fb->secode[0] == '\0') {
			memcpy(fb->secode, ssec, sizeof(fb->secode));
		}
	}
	map_action(span_trim(span_of_buf(&r.action)), fb);
	rc = 0;
	goto done;
out:
	snprintf(fb->error, sizeof(fb->error),
	    "incoming message: parsing dsn: %s",
	    why != NULL ? why : "bad fields");
fail:
	fb->event = "unrecognized";
	fb->success = false;
	fb->code = 0;
	fb->secode[0] = '\0';
done:
	buf_release(&r.action);
	buf_release(&r.status);
	buf_release(&r.diag);
	return rc;
}

void
queue_fromid_feedback_of(struct span msg, const struct message_part *root,
    struct queue_fromid_feedback *fb)
{
	struct message_part *own = NULL;
	const struct message_part *p;
	struct buf body;
	const char *why = NULL;

	fb_init(fb);
	if (root == NULL) {
		if (message_parse(msg.p, msg.len, &own, &why) == -1)
			own = NULL;
		root = own;
	}
	/* spec/queue.md 12: multipart/report whose second part is
	 * message/delivery-status (RFC 3464 2) or its RFC 6533 variant. */
	if (root == NULL || strcmp(root->type, "multipart") != 0 ||
	    strcmp(root->subtype, "report") != 0 || root->nparts < 2 ||
	    strcmp(root->parts[1].type, "message") != 0 ||
	    (strcmp(root->parts[1].subtype, "delivery-status") != 0 &&
		strcmp(root->parts[1].subtype, "global-delivery-status") !=
		    0)) {
		snprintf(fb->error, sizeof(fb->error),
		    "incoming message not a dsn");
		goto out;
	}
	p = &root->parts[1];
	buf_init(&body, QUEUE_FROMID_DSN_MAX);
	if (p->body_off > p->end_off || p->end_off > msg.len ||
	    message_decode_cte(message_cte_of(p->cte),
		span_of(msg.p + p->body_off, p->end_off - p->body_off), &body,
		&why) == -1 ||
	    buf_failed(&body)) {
		fb->dsn = true;
		snprintf(fb->error, sizeof(fb->error),
		    "incoming message: parsing dsn: %s",
		    why != NULL ? why : "delivery-status part too large");
	} else {
		(void)queue_fromid_dsn_parse(span_of_buf(&body), fb);
	}
	buf_release(&body);
out:
	message_part_free(own);
}

/* ---- feedback into the queue database ---- */

static char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return xstrdup(t != NULL ? (const char *)t : "");
}

/* The retired message of account with FromID id into m (and its extra
 * data as JSON into *extra_out). 1 found, 0 not, -1 error. */
static int
retired_find(sqlite3 *db, const char *account, const char *id,
    struct queue_msg *m, char **extra_out)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (sqlite3_prepare_v2(db,
		"SELECT id, sender_account, sender_localpart, sender_domain,"
		" from_id, recipient_localpart, recipient_domain, message_id,"
		" subject, extra FROM retired WHERE from_id = ?1 AND"
		" sender_account = ?2 ORDER BY id LIMIT 1",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, account, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		rc = 0;
	} else if (r == SQLITE_ROW) {
		m->id = sqlite3_column_int64(st, 0);
		m->sender_account = col(st, 1);
		m->sender_localpart = col(st, 2);
		m->sender_domain = col(st, 3);
		m->from_id = col(st, 4);
		m->recipient_localpart = col(st, 5);
		m->recipient_domain = col(st, 6);
		m->message_id = col(st, 7);
		m->subject = col(st, 8);
		*extra_out = col(st, 9);
		rc = 1;
	}
	sqlite3_finalize(st);
	return rc;
}

/* spec/queue.md 9: the result "incoming message" and LastActivity. 1
 * updated, 0 the record is gone, -1 error. */
static int
retired_note(sqlite3 *db, int64_t id, int64_t now,
    const struct queue_fromid_feedback *fb)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db,
		"UPDATE retired SET last_activity = ?2, results ="
		" json_insert(CASE WHEN results = '' THEN '[]' ELSE"
		" results END, '$[#]', json_object('Start', ?2, 'Duration',"
		" 0, 'Success', json(?3), 'Code', ?4, 'Secode', ?5, 'Error',"
		" ?6))"
		" WHERE id = ?1",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, fb->success ? "true" : "false", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 4, fb->code);
	sqlite3_bind_text(st, 5, fb->secode, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, fb->error, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(db) > 0 ? 1 : 0;
	sqlite3_finalize(st);
	return rc;
}

int
queue_fromid_incoming(struct queue *q, const struct config *cfg,
    const char *account, const char *id, struct span msg,
    const struct message_part *root, struct queue_fromid_feedback *fb_out,
    struct buf *err)
{
	struct queue_fromid_feedback fb;
	struct queue_attempt_result r = { 0 };
	struct queue_msg m = { 0 };
	sqlite3 *db = NULL;
	char *extra = NULL;
	int rc = -1, found, suppressing = 0;
	bool in_tx = false;

	if (id == NULL || id[0] == '\0' || account == NULL)
		return 0;
	if (queue_db_open(q, &db, err) == -1)
		return -1;
	/* Looked up before parsing, so ordinary mail to a catchall address
	 * costs one indexed read. */
	found = retired_find(db, account, id, &m, &extra);
	if (found != 1) {
		rc = found;
		if (rc == -1)
			buf_addf(err, "looking up fromid: %s",
			    sqlite3_errmsg(db));
		goto out;
	}
	queue_fromid_feedback_of(msg, root, &fb);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		buf_addf(err, "fromid begin: %s", sqlite3_errmsg(db));
		goto out;
	}
	in_tx = true;
	found = retired_note(db, m.id, time_wall_ns(), &fb);
	if (found != 1) {
		rc = found; /* 0: removed by the cleanup meanwhile */
		if (rc == -1)
			buf_addf(err, "updating retired message: %s",
			    sqlite3_errmsg(db));
		goto out;
	}
	r.success = fb.success;
	r.permanent = strcmp(fb.event, "failed") == 0;
	r.code = fb.code;
	memcpy(r.secode, fb.secode, sizeof(r.secode));
	r.error = "";
	/* spec/queue.md 11: a failure with a code from the DSN. */
	if (r.permanent && fb.code != 0) {
		suppressing = queue_int_suppress_auto_src(db, &m, &r, "DSN");
		if (suppressing == -1) {
			buf_addf(err, "suppression list: %s",
			    sqlite3_errmsg(db));
			goto out;
		}
	}
	if (cfg != NULL &&
	    queue_int_webhook_event_dsn(db, cfg, &m, fb.event, &r,
		suppressing == 1, fb.dsn, extra) == -1) {
		buf_addf(err, "recording webhook event: %s",
		    sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		buf_addf(err, "fromid commit: %s", sqlite3_errmsg(db));
		goto out;
	}
	in_tx = false;
	if (fb_out != NULL)
		*fb_out = fb;
	rc = 1;
out:
	if (in_tx)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	queue_msg_release(&m);
	free(extra);
	sqlite3_close(db);
	return rc;
}
