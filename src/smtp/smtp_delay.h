/*
 * smtp_delay.h: the first-time-sender delay (spec/junk.md 10,
 * spec/smtp.md 12.3 step 5): accepted copies of a message from a sender
 * without reputation wait, unstored, for SMTP.FirstTimeSenderDelay on
 * the protocol timer (never a sleep on a worker). When the timer fires
 * they are stored and the transaction is answered; a peer that leaves
 * during the delay leaves nothing stored, so its retry is no duplicate.
 * Once a copy of a transaction waits, the transaction's later accepted
 * copies wait with it (one delay per transaction).
 *
 * Threads: the session's worker.
 */
#ifndef SMTP_SMTP_DELAY_H
#define SMTP_SMTP_DELAY_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct config;
struct smtp_decision;
struct smtp_rcpt_ent;
struct smtp_sess;

/* A recipient none of whose waiting copies could be stored. */
struct smtp_delay_fail {
	const struct smtp_rcpt_ent *e; /* borrowed from the session */
	bool quota;                    /* only quota errors */
};

/* After the delay: the copies were stored; nok is the count of
 * recipients delivered (the caller's count less the fails). The
 * callback answers the transaction and resets it. */
typedef void smtp_delay_done_fn(struct smtp_sess *s, void *arg, size_t nok,
    const struct smtp_delay_fail *fails, size_t nfails);
typedef void smtp_delay_free_fn(void *arg);

/* Whether an accepted copy for account under dec waits: reason
 * no-bad-signals, not a forward or mailing-list message, not marked as a
 * reject, the account without NoFirstTimeSenderDelay, the listener's
 * delay above 0; or copies of the transaction wait already. */
bool smtp_delay_wanted(const struct smtp_sess *s, const struct config *cfg,
    const char *account, const struct smtp_decision *dec);
/* Keep a copy to store after the delay (all arguments copied): what
 * smtp_store_deliver() would be given for recipient e. */
void smtp_delay_add(struct smtp_sess *s, const struct smtp_rcpt_ent *e,
    const char *account, const struct smtp_decision *dec,
    const struct buf *prefix, const char *rcpt_lp, const char *rcpt_dom);
/* A copy for e was stored at once (before copies started to wait). */
void smtp_delay_stored(struct smtp_sess *s, const struct smtp_rcpt_ent *e);
/* Whether copies wait. */
bool smtp_delay_pending(const struct smtp_sess *s);
/* Start the delay: pause commands, keep watching for the peer leaving,
 * and call done(s, arg, ...) when the timer fires. nok is the count of
 * recipients counted as delivered (waiting copies included). arg is
 * freed with free_fn when the delay is dropped or done. */
void smtp_delay_start(struct smtp_sess *s, size_t nok,
    smtp_delay_done_fn *done, smtp_delay_free_fn *free_fn, void *arg);
/* The protocol timer fired in SMTP_ST_DELAY: store the copies, then
 * done(). */
void smtp_delay_fire(struct smtp_sess *s);
/* Drop the waiting copies unstored (transaction reset, connection end). */
void smtp_delay_free(struct smtp_sess *s);

#endif
