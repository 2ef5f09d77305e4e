/*
 * authres.h: the Authentication-Results header field (RFC 8601 2.2, 2.7;
 * spec auth.md section 8), built from plain values (method, result,
 * reason, properties) with helpers for our DKIM and DMARC results.
 * Pure; any thread.
 */
#ifndef MAILAUTH_AUTHRES_H
#define MAILAUTH_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct dkim_result;
struct dmarc_result;

#define AUTHRES_MAX (64 * 1024) /* bytes of one header field */
#define AUTHRES_BPREFIX 12      /* header.b characters (RFC 6008 4) */

/* ptype.property=value [(comment)] (RFC 8601 2.3). */
struct authres_prop {
	const char *ptype;     /* "smtp", "header", "policy" */
	const char *property;  /* "mailfrom", "d", ... */
	const char *value;
	bool addr;             /* an address: "@" needs no quoting */
	const char *comment;   /* NULL for none */
};

#define AUTHRES_PROPS_MAX 8

/* method=result [(comment)] [reason="..."] [props] (RFC 8601 2.2). */
struct authres_method {
	const char *method;    /* "spf", "dkim", "dmarc", "iprev", "auth" */
	const char *result;
	const char *comment;   /* written only with a reason or properties */
	const char *reason;
	struct authres_prop props[AUTHRES_PROPS_MAX];
	size_t nprops;
};

/* Accumulates methods; one header field per struct authres. */
struct authres {
	struct buf text;       /* methods, already folded */
	bool smtputf8;         /* raw UTF-8 allowed in values */
};

void authres_init(struct authres *a, bool smtputf8);
void authres_release(struct authres *a);
/* Add one method. */
void authres_add(struct authres *a, const struct authres_method *m);
/* One dkim= method per result, or dkim=none with reason when n is 0. */
void authres_add_dkim(struct authres *a, const struct dkim_result *r,
    size_t n);
/* dmarc=... header.from=<from_domain>. */
void authres_add_dmarc(struct authres *a, const struct dmarc_result *r,
    const char *from_domain);
/* Append "Authentication-Results: <hostname>;..." with a final CRLF to
 * out. Returns 0, or -1 when out (or the field) hit its max. */
int authres_finish(struct authres *a, const char *hostname, struct buf *out);
/* Append value, quoted when RFC 8601 2.2 / RFC 2045 5.1 requires it. */
void authres_value(struct buf *out, const char *value, bool addr,
    bool smtputf8);

#endif
