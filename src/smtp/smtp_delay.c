/*
 * smtp_delay.c: the first-time-sender delay of incoming delivery
 * (spec/junk.md 10, spec/smtp.md 12.3 step 5). Accepted copies wait in
 * the session, unstored, while the protocol timer runs; input stays
 * watched so a peer that goes away is noticed (the session ends and the
 * copies are dropped). When the timer fires the copies are stored and
 * the transaction is answered through the caller's continuation.
 *
 * Trust: nothing here is parsed; the copies are what the decision made.
 * Threads: the session's worker; the wait holds no thread (net.h timer).
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "net/net.h"
#include "smtp/smtp_delay.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

/* One copy waiting to be stored. */
struct delay_copy {
	const struct smtp_rcpt_ent *e; /* borrowed from s->rcpts */
	char *account;
	char *lp, *dom;
	struct buf prefix;
	struct smtp_decision dec;       /* owned strings */
	bool stored, quota;             /* outcome */
};

struct smtp_delay {
	struct delay_copy *v;
	size_t n;
	const struct smtp_rcpt_ent **now; /* stored at once */
	size_t nnow;
	size_t nok;
	smtp_delay_done_fn *done;
	smtp_delay_free_fn *free_fn;
	void *arg;
	int64_t started_ns;
};

static struct smtp_delay *
delay_get(struct smtp_sess *s)
{
	if (s->delay == NULL)
		s->delay = xcalloc(1, sizeof(*s->delay));
	return s->delay;
}

bool
smtp_delay_wanted(const struct smtp_sess *s, const struct config *cfg,
    const char *account, const struct smtp_decision *dec)
{
	const struct config_account *ca;

	if (s->delay != NULL && s->delay->n > 0)
		return true; /* one delay per transaction */
	if (s->srv->p.first_time_sender_delay_ns <= 0 || cfg == NULL ||
	    dec->kind != SMTP_DECIDE_ACCEPT || dec->mark_reject ||
	    dec->forwarded || dec->mailing_list ||
	    strcmp(dec->reason, "no-bad-signals") != 0)
		return false;
	ca = config_account_find(cfg, account);
	return ca != NULL && !ca->no_first_time_sender_delay;
}

void
smtp_delay_add(struct smtp_sess *s, const struct smtp_rcpt_ent *e,
    const char *account, const struct smtp_decision *dec,
    const struct buf *prefix, const char *rcpt_lp, const char *rcpt_dom)
{
	struct smtp_delay *d = delay_get(s);
	struct delay_copy *c;

	d->v = xreallocarray(d->v, d->n + 1, sizeof(*d->v));
	c = &d->v[d->n++];
	memset(c, 0, sizeof(*c));
	c->e = e;
	c->account = xstrdup(account);
	c->lp = xstrdup(rcpt_lp != NULL ? rcpt_lp : "");
	c->dom = xstrdup(rcpt_dom != NULL ? rcpt_dom : "");
	buf_init(&c->prefix, SMTP_PREFIX_MAX);
	buf_add(&c->prefix, prefix->data, prefix->len);
	c->dec = *dec;
	c->dec.mailbox = xstrdup(dec->mailbox != NULL ? dec->mailbox : "Inbox");
	c->dec.fwd_domain = dec->fwd_domain != NULL ? xstrdup(dec->fwd_domain)
						    : NULL;
}

void
smtp_delay_stored(struct smtp_sess *s, const struct smtp_rcpt_ent *e)
{
	struct smtp_delay *d = delay_get(s);

	d->now = xreallocarray(d->now, d->nnow + 1, sizeof(*d->now));
	d->now[d->nnow++] = e;
}

bool
smtp_delay_pending(const struct smtp_sess *s)
{
	return s->delay != NULL && s->delay->n > 0;
}

void
smtp_delay_start(struct smtp_sess *s, size_t nok, smtp_delay_done_fn *done,
    smtp_delay_free_fn *free_fn, void *arg)
{
	struct smtp_delay *d = delay_get(s);
	int64_t ms = s->srv->p.first_time_sender_delay_ns / NS_PER_MS;

	d->nok = nok;
	d->done = done;
	d->free_fn = free_fn;
	d->arg = arg;
	d->started_ns = time_mono_ns();
	if (ms < 1)
		ms = 1;
	if (ms > (int64_t)UINT32_MAX - SMTP_IDLE_MS)
		ms = (int64_t)UINT32_MAX - SMTP_IDLE_MS;
	log_info(&s->log, "first-time sender, delaying delivery",
	    LF_DUR("delay", ms * NS_PER_MS), LF_U64("copies", d->n));
	/* Input is not paused: a peer that leaves is seen (run()). */
	s->state = SMTP_ST_DELAY;
	net_conn_set_idle_timeout(s->c, (unsigned)ms + SMTP_IDLE_MS);
	net_conn_set_timer(s->c, (unsigned)ms);
}

static void
copy_release(struct delay_copy *c)
{
	free(c->account);
	free(c->lp);
	free(c->dom);
	buf_release(&c->prefix);
	smtp_decision_release(&c->dec);
}

static void
delay_release(struct smtp_delay *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++)
		copy_release(&d->v[i]);
	free(d->v);
	free(d->now);
	if (d->free_fn != NULL)
		d->free_fn(d->arg);
	free(d);
}

static bool
stored_now(const struct smtp_delay *d, const struct smtp_rcpt_ent *e)
{
	for (size_t i = 0; i < d->nnow; i++)
		if (d->now[i] == e)
			return true;
	return false;
}

void
smtp_delay_fire(struct smtp_sess *s)
{
	struct smtp_delay *d = s->delay;
	struct smtp_delay_fail *fails;
	size_t nfails = 0, nok;

	if (d == NULL)
		return;
	s->delay = NULL; /* done() resets the transaction */
	net_conn_set_idle_timeout(s->c, SMTP_IDLE_MS);
	for (size_t i = 0; i < d->n; i++) {
		struct delay_copy *c = &d->v[i];
		const char *why = NULL;

		c->stored = smtp_store_deliver(s, c->account, c->dec.mailbox,
		    &c->prefix, c->dec.mark_reject,
		    c->dec.mark_reject ? STORE_F_SEEN : 0, c->lp, c->dom, &c->dec,
		    &why) == 0;
		c->quota = !c->stored && why != NULL && strcmp(why, "quota") == 0;
	}
	/* A recipient fails when none of its copies was stored. */
	fails = xcalloc(d->n + 1, sizeof(*fails));
	nok = d->nok;
	for (size_t i = 0; i < d->n; i++) {
		const struct smtp_rcpt_ent *e = d->v[i].e;
		bool seen = false, any = stored_now(d, e), quota = true;

		for (size_t k = 0; k < i && !seen; k++)
			seen = d->v[k].e == e;
		if (seen)
			continue;
		for (size_t k = i; k < d->n; k++) {
			if (d->v[k].e != e)
				continue;
			any = any || d->v[k].stored;
			quota = quota && d->v[k].quota;
		}
		if (any)
			continue;
		fails[nfails++] = (struct smtp_delay_fail){ e, quota };
		if (nok > 0)
			nok--;
	}
	log_debug(&s->log, "first-time sender delay done",
	    LF_DUR("delta", time_mono_ns() - d->started_ns),
	    LF_U64("copies", d->n), LF_U64("failed", nfails));
	if (d->done != NULL)
		d->done(s, d->arg, nok, fails, nfails);
	free(fails);
	delay_release(d);
}

void
smtp_delay_free(struct smtp_sess *s)
{
	if (s->delay != NULL && s->delay->n > 0 && s->delay->done != NULL)
		log_info(&s->log, "delayed message dropped, nothing stored",
		    LF_U64("copies", s->delay->n));
	delay_release(s->delay);
	s->delay = NULL;
}
