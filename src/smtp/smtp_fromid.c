/*
 * smtp_fromid.c: fromid in submission and incoming delivery
 * (spec/smtp.md 11 step 10 and 12.3 step 6, spec/queue.md 12). The
 * submitted MAIL FROM comes from an authenticated client; the id in an
 * incoming recipient localpart comes from anyone and is only a lookup
 * key, matched against the receiving account's own retired messages.
 *
 * Threads: the session's worker; blocks on SQLite.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "queue/queue.h"
#include "queue/queue_fromid.h"
#include "smtp/smtp_fromid.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

const char *
smtp_fromid_separator(const struct config_domain *d)
{
	if (d == NULL)
		return NULL;
	if (d->localpart_catchall_separators.n > 0)
		return d->localpart_catchall_separators.v[0];
	if (d->localpart_catchall_separator != NULL &&
	    d->localpart_catchall_separator[0] != '\0')
		return d->localpart_catchall_separator;
	return NULL;
}

/* The exact login address (localpart as written, domain in any case) is
 * listed. */
static bool
login_listed(const struct config_account *ca, const char *user)
{
	const char *at = user != NULL ? strrchr(user, '@') : NULL;

	if (ca == NULL || at == NULL)
		return false;
	for (size_t i = 0; i < ca->from_id_login_addresses.n; i++) {
		const char *a = ca->from_id_login_addresses.v[i];
		const char *aat = strrchr(a, '@');

		if (aat != NULL && aat - a == at - user &&
		    strncmp(a, user, (size_t)(at - user)) == 0 &&
		    strcasecmp(aat + 1, at + 1) == 0)
			return true;
	}
	return false;
}

int
smtp_fromid_submit(struct smtp_sess *s, const struct config *cfg,
    const char *from_dom, struct queue_msg *qm, size_t n)
{
	const struct config_account *ca = config_account_find(cfg, s->account);
	const char *sep;
	struct span base, id;
	struct buf lp, fid;

	if (n == 0 || s->mail.null_path || !login_listed(ca, s->username))
		return 0;
	sep = smtp_fromid_separator(config_domain_find(cfg, from_dom));
	if (sep == NULL) {
		/* The config check wants a separator on the login
		 * address's domain; the From domain may lack one. */
		log_info(&s->log, "no catchall separator for fromid",
		    LF_STR("domain", from_dom));
		return 0;
	}
	if (queue_fromid_split(s->mail.from.localpart, sep, &base, &id) &&
	    id.len > 0 && n > 1) {
		smtp_reply(s, 554, "5.5.3",
		    "cannot send to multiple recipients with chosen fromid");
		return -1;
	}
	buf_init(&lp, BUF_NOMAX);
	buf_init(&fid, BUF_NOMAX);
	for (size_t i = 0; i < n; i++) {
		buf_reset(&lp);
		buf_reset(&fid);
		if (id.len > 0)
			buf_add(&fid, id.p, id.len); /* the client's choice */
		else
			queue_fromid_new(&fid);
		buf_add(&lp, base.p, base.len);
		buf_addf(&lp, "%s%s", sep, fid.data);
		free(qm[i].sender_localpart);
		qm[i].sender_localpart = xstrdup(lp.data);
		free(qm[i].from_id);
		qm[i].from_id = xstrdup(fid.data);
	}
	buf_release(&lp);
	buf_release(&fid);
	return 0;
}

void
smtp_fromid_delivered(struct smtp_sess *s, const struct config *cfg,
    const char *account, const char *rcpt_lp, const char *rcpt_dom,
    struct span msg, const struct message_part *root)
{
	struct queue_fromid_feedback fb;
	struct span base, id;
	struct buf err;
	struct queue *q;
	const char *sep;
	char *ids;
	int r;

	if (cfg == NULL || rcpt_lp == NULL || rcpt_dom == NULL)
		return;
	sep = smtp_fromid_separator(config_domain_find(cfg, rcpt_dom));
	if (sep == NULL || !queue_fromid_split(rcpt_lp, sep, &base, &id) ||
	    id.len == 0)
		return;
	ids = span_dup(id);
	buf_init(&err, 4096);
	q = smtp_server_queue(s->srv, &err);
	r = q != NULL ? queue_fromid_incoming(q, cfg, account, ids, msg, root,
			    &fb, &err)
		      : -1;
	if (r == -1)
		log_error(&s->log, "processing fromid feedback",
		    LF_ERR(err.data), LF_STR("account", account),
		    LF_STR("fromid", ids));
	else if (r == 1)
		log_info(&s->log,
		    "incoming message is feedback on a sent message",
		    LF_STR("account", account), LF_STR("fromid", ids),
		    LF_STR("event", fb.event), LF_BOOL("dsn", fb.dsn),
		    LF_I64("code", fb.code));
	buf_release(&err);
	free(ids);
}
