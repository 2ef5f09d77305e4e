/*
 * imap_sent_rcpts.h: the addressees of a message saved into a Sent
 * mailbox (spec/store.md 3.3 "Recipient": To, Cc and Bcc, sent time from
 * the Date header), stored with it so that reputation knows whom the
 * account wrote to (spec/junk.md 7).
 *
 * Threads: any; pure (no I/O).
 */
#ifndef IMAP_IMAP_SENT_RCPTS_H
#define IMAP_IMAP_SENT_RCPTS_H

#include <stddef.h>
#include <stdint.h>

struct message_part;

#define IMAP_SENT_RCPTS_MAX 1000 /* addressees kept per message */

struct imap_sent_rcpts {
	char **lp;        /* owned; localparts as written */
	char **dom;       /* owned; lower-case domains */
	size_t n;
	int64_t sent_ns;  /* Date header, 0 without a valid one */
};

/* Collect the mailbox addresses (with a localpart and a domain) of the
 * To, Cc and Bcc fields of root's envelope into out (empty without an
 * envelope). Release with imap_sent_rcpts_release(). */
void imap_sent_rcpts_get(const struct message_part *root,
    struct imap_sent_rcpts *out);
void imap_sent_rcpts_release(struct imap_sent_rcpts *r); /* NULL-safe */

#endif
