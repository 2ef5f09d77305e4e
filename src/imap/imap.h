/*
 * imap.h: the IMAP server (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1 and the
 * extensions of spec/imap.md) as a protocol of the network runtime
 * (net.h). One listener argument per configured IMAP or IMAPS service.
 */
#ifndef IMAP_IMAP_H
#define IMAP_IMAP_H

#include <stdbool.h>

struct net_proto;
struct store;
struct tls_server;

struct imap_listener_params {
	struct store *store;     /* accounts; shared, outlives the listener */
	struct tls_server *tls;  /* STARTTLS certificate (plain listener; NULL:
				  * none) or the implicit TLS one */
	bool implicit_tls;       /* IMAPS: TLS from the first byte */
	bool plain_auth_ok;      /* IMAP.NoRequireSTARTTLS: LOGIN and
				  * AUTHENTICATE PLAIN without TLS */
	bool localserve;         /* mox localserve: no auth-failure slowdown
				  * for loopback clients */
	const char *hostname;    /* copied */
};

struct imap_listener; /* opaque; immutable after creation */

/* The protocol callbacks (static). Any thread. */
const struct net_proto *imap_proto(void);
/* A listener argument for imap_proto(). Never fails. */
struct imap_listener *imap_listener_new(const struct imap_listener_params *p);
/* Free after the reactor stopped. NULL-safe. */
void imap_listener_free(struct imap_listener *l);

#endif
