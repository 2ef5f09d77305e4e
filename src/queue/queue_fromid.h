/*
 * queue_fromid.h: fromid (spec/queue.md 12, spec/smtp.md 11 step 10):
 * a unique id in the MAIL FROM localpart of an outgoing message
 * (`base<sep><id>@domain`), and incoming messages to such an address as
 * feedback (a DSN, or anything else) about the retired message with that
 * id: its record is updated, a failure may add a suppression, and an
 * outgoing webhook event is recorded.
 *
 * The id and DSN functions are pure (any thread, no I/O). The
 * feedback function blocks on SQLite: never on the reactor.
 */
#ifndef QUEUE_QUEUE_FROMID_H
#define QUEUE_QUEUE_FROMID_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/span.h"

struct buf;
struct config;
struct message_part;
struct queue;

#define QUEUE_FROMID_RANDOM 16 /* spec/queue.md 12: random bytes of an id */
/* Decoded message/delivery-status part we read; a DSN's is a few KiB. */
#define QUEUE_FROMID_DSN_MAX (1024 * 1024)

/* Append a new id: QUEUE_FROMID_RANDOM random bytes (gnutls_rnd), base64url
 * without padding (RFC 4648 5), so 22 characters. */
void queue_fromid_new(struct buf *out);

/* Split localpart at the first occurrence of sep (non-empty). true with
 * the part before it in *base_out and the rest in *id_out (spans into
 * localpart; the id may be empty), false when sep does not occur (then
 * *base_out is all of localpart and *id_out empty). Pure. */
bool queue_fromid_split(const char *localpart, const char *sep,
    struct span *base_out, struct span *id_out);

/* Whether err (as filled by a failed queue_add()) says a FromID was
 * already used by a queued or retired message (spec/queue.md 2 step 3). */
bool queue_fromid_is_dup_err(const char *err);

/* What an incoming message says about an outgoing one. */
struct queue_fromid_feedback {
	bool dsn;           /* multipart/report with a (global-)delivery-status
			     * second part */
	const char *event;  /* static: "failed", "delayed", "delivered",
			     * "relayed", "expanded" or "unrecognized" */
	bool success;       /* delivered, relayed, expanded */
	int code;           /* SMTP code, 0 when none */
	char secode[16];    /* enhanced code without its class ("1.1"), or "" */
	char error[160];    /* for the retired record's result */
};

/* Parse the (decoded) body of a message/delivery-status or
 * message/global-delivery-status part (RFC 3464 2, RFC 6533 3) into fb:
 * exactly one per-recipient group is needed; its Action gives the event,
 * Diagnostic-Code ("smtp; 550 5.1.1 ...") or else Status (4.x.y: 400,
 * 5.x.y: 500) the codes. Returns 0, or -1 with fb->event "unrecognized"
 * and fb->error saying why. Pure. */
int queue_fromid_dsn_parse(struct span status,
    struct queue_fromid_feedback *fb);

/* Classify the whole message msg (parsed tree root; NULL: parsed here)
 * as feedback (spec/queue.md 12): a DSN as queue_fromid_dsn_parse(),
 * anything else "unrecognized" with dsn false. Pure. */
void queue_fromid_feedback_of(struct span msg, const struct message_part *root,
    struct queue_fromid_feedback *fb);

/* An incoming message msg (root as above) was delivered to account at an
 * address carrying fromid id. When a retired message of that account has
 * that FromID, the message is feedback about it: the retired record gets
 * a result (Error "incoming message...", code, success) and its
 * LastActivity; a failed DSN with a code is processed for the suppression
 * list (spec/queue.md 11, source "DSN"); an outgoing webhook event is
 * recorded when the account wants it (DSN true for DSNs); all in one
 * transaction. Returns 1 with *fb_out (may be NULL) filled, 0 when no
 * such retired message exists, -1 with err. cfg borrowed. Blocking
 * (SQLite). */
int queue_fromid_incoming(struct queue *q, const struct config *cfg,
    const char *account, const char *id, struct span msg,
    const struct message_part *root, struct queue_fromid_feedback *fb_out,
    struct buf *err);

#endif
