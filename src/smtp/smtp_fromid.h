/*
 * smtp_fromid.h: fromid in the SMTP server (spec/smtp.md 11 step 10,
 * 12.3 step 6; spec/queue.md 12): a unique MAIL FROM per queued message
 * for logins listed in the account's FromIDLoginAddresses, and incoming
 * mail to such an address handed to the queue as feedback about the
 * outgoing message.
 *
 * Threads: the session's worker; blocks on SQLite (never the reactor).
 */
#ifndef SMTP_SMTP_FROMID_H
#define SMTP_SMTP_FROMID_H

#include <stddef.h>

#include "lib/span.h"

struct config;
struct config_domain;
struct message_part;
struct queue_msg;
struct smtp_sess;

/* The separator fromids use on domain d: the first of
 * LocalpartCatchallSeparators, else LocalpartCatchallSeparator; NULL when
 * none (or d is NULL). Borrowed from d. Pure. */
const char *smtp_fromid_separator(const struct config_domain *d);

/* spec/smtp.md 11 step 10, for the n records of a submission (one per
 * recipient, sender_localpart already the MAIL FROM localpart): when the
 * session's login address is one of the account's FromIDLoginAddresses,
 * each record gets a FromID and the MAIL FROM localpart base<sep><id>,
 * sep the From domain's (from_dom) separator. An id the client put in
 * its MAIL FROM localpart is kept (then a single recipient only); else a
 * random id per record. Returns 0, or -1 after replying 554 5.5.3.
 * Borrows cfg. */
int smtp_fromid_submit(struct smtp_sess *s, const struct config *cfg,
    const char *from_dom, struct queue_msg *qm, size_t n);

/* spec/smtp.md 12.3 step 6: msg (our prefix and the data; root its
 * parsed tree, or NULL) was stored for account as delivered to
 * rcpt_lp@rcpt_dom. When the localpart carries a fromid of a retired
 * message of the account, the queue processes the message as feedback
 * about it (queue_fromid_incoming()). Errors are logged; the delivery
 * stands either way. Blocks on SQLite. */
void smtp_fromid_delivered(struct smtp_sess *s, const struct config *cfg,
    const char *account, const char *rcpt_lp, const char *rcpt_dom,
    struct span msg, const struct message_part *root);

#endif
