/*
 * dkim_conf.h: DKIM signing as the configuration asks for it (spec
 * auth.md 4.3, smtp.md 11 step 8): the selectors listed in a domain's
 * DKIM.Sign, d= the From domain, i= the canonical From localpart at that
 * domain. Submission, DSNs and `mox dkim sign` all sign through here, so
 * their signatures have one form.
 */
#ifndef MAILAUTH_DKIM_CONF_H
#define MAILAUTH_DKIM_CONF_H

#include <stdint.h>

#include "lib/span.h"

struct buf;
struct config;

/* Sign msg (lines LF or CRLF) for the From address from_lp@from_dom with
 * every selector of from_dom's DKIM.Sign in cfg, in order, at time now
 * (unix seconds). Appends one DKIM-Signature field per selector (CRLF
 * line ends) to out; the caller prepends them to the message. Returns 1
 * when signed, 0 when from_dom is not configured or signs with nothing
 * (out unchanged), or -1 with *why (static) and, when err is not NULL,
 * the detail a person needs (selector, key file) appended to err. Reads
 * the key files (blocks on disk); any thread; cfg is only read. */
int dkim_conf_sign(const struct config *cfg, const char *from_lp,
    const char *from_dom, int64_t now, struct span msg, struct buf *out,
    const char **why, struct buf *err);

#endif
