/*
 * serve_imap.c: wiring of the IMAP services (serve_proto.h): "IMAP"
 * (plaintext with STARTTLS when the listener has TLS, RFC 9051 6.2.1) and
 * "IMAPS" (TLS from the first byte, RFC 8314) get the IMAP server of
 * src/imap with a listener argument built from the service.
 */
#include <string.h>

#include "config/config.h"
#include "imap/imap.h"
#include "lib/buf.h"
#include "serve_proto.h"
#include "lib/banned.h"

const struct net_proto *
serve_imap_proto(const struct serve_service *svc, void **arg_out,
    struct buf *err)
{
	struct imap_listener_params p;

	(void)err;
	memset(&p, 0, sizeof(p));
	p.store = svc->store;
	p.tls = svc->tls;
	p.implicit_tls = svc->implicit_tls;
	/* spec/imap.md 1: IMAP.NoRequireSTARTTLS allows plaintext login. */
	p.plain_auth_ok = !svc->implicit_tls && svc->listener != NULL &&
	    svc->listener->imap.no_require_starttls;
	p.localserve = svc->localserve;
	p.hostname = svc->hostname;
	*arg_out = imap_listener_new(&p);
	return imap_proto();
}

void
serve_imap_free(void *arg)
{
	imap_listener_free(arg);
}
