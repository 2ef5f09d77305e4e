/*
 * imap_sent_rcpts.c: addressees of a message saved into a Sent mailbox
 * (spec/store.md 3.3 "Recipient", spec/junk.md 7 "Sent recipients"),
 * from the parsed envelope (RFC 5322 3.6.3 To, Cc, Bcc; 3.6.1 Date).
 *
 * Trust: the message comes from the authenticated user's client; the
 * address parser bounded it. Threads: any; pure.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_sent_rcpts.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "lib/banned.h"

static void
add_list(const struct message_addr_list *l, struct imap_sent_rcpts *out)
{
	for (size_t i = 0; i < l->n && out->n < IMAP_SENT_RCPTS_MAX; i++) {
		const struct message_address *a = &l->v[i];
		char *d;

		if (a->kind != MESSAGE_ADDR_MAILBOX || a->user == NULL ||
		    a->user[0] == '\0' || a->host == NULL || a->host[0] == '\0')
			continue;
		d = xstrdup(a->host);
		for (char *p = d; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		out->lp = xreallocarray(out->lp, out->n + 1, sizeof(*out->lp));
		out->dom = xreallocarray(out->dom, out->n + 1, sizeof(*out->dom));
		out->lp[out->n] = xstrdup(a->user);
		out->dom[out->n] = d;
		out->n++;
	}
}

void
imap_sent_rcpts_get(const struct message_part *root,
    struct imap_sent_rcpts *out)
{
	const struct message_envelope *env;

	memset(out, 0, sizeof(*out));
	if (root == NULL || root->envelope == NULL)
		return;
	env = root->envelope;
	add_list(&env->to, out);
	add_list(&env->cc, out);
	add_list(&env->bcc, out);
	if (env->date_ok && env->date_t > 0)
		out->sent_ns = env->date_t * NS_PER_SEC;
}

void
imap_sent_rcpts_release(struct imap_sent_rcpts *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->lp[i]);
		free(r->dom[i]);
	}
	free(r->lp);
	free(r->dom);
	memset(r, 0, sizeof(*r));
}
