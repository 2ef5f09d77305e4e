/*
 * serve_unavail.c: the protocol of a service whose module is not built in:
 * it answers with the protocol's standard refusal (RFC 5321 3.8: 421 for
 * SMTP; RFC 9051 7.1.5: untagged BYE for IMAP; RFC 9110 15.6.4: 503 for
 * HTTP) and closes, so a client gets a clear answer, not a hang.
 */
#include <stdlib.h>

#include "lib/xmalloc.h"
#include "net/net.h"
#include "serve_proto.h"
#include "lib/banned.h"

struct unavail {
	enum serve_unavail_kind kind;
	char *hostname;
};

static void *
unavail_start(struct net_conn *c, void *arg)
{
	const struct unavail *u = arg;

	switch (u->kind) {
	case SERVE_UNAVAIL_SMTP:
		net_conn_printf(c,
		    "421 4.3.2 %s SMTP service not available from this server "
		    "version\r\n",
		    u->hostname);
		break;
	case SERVE_UNAVAIL_IMAP:
		net_conn_puts(c, "* BYE [UNAVAILABLE] IMAP service not available "
				 "from this server version\r\n");
		break;
	case SERVE_UNAVAIL_HTTP:
		net_conn_puts(c,
		    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
		    "text/plain\r\nContent-Length: 52\r\nConnection: close\r\n"
		    "\r\nHTTP service not available from this server version\n");
		break;
	}
	net_conn_close(c);
	return xcalloc(1, 1);
}

static void
unavail_event(struct net_conn *c, void *sess, unsigned events)
{
	net_conn_close(c);
	(void)sess;
	(void)events;
}

static void
unavail_end(struct net_conn *c, void *sess)
{
	free(sess);
	(void)c;
}

static const struct net_proto unavail_protos[] = {
	[SERVE_UNAVAIL_SMTP] = { "smtpserver", unavail_start, unavail_event,
	    unavail_end },
	[SERVE_UNAVAIL_IMAP] = { "imapserver", unavail_start, unavail_event,
	    unavail_end },
	[SERVE_UNAVAIL_HTTP] = { "http", unavail_start, unavail_event,
	    unavail_end },
};

const struct net_proto *
serve_unavail_proto(enum serve_unavail_kind k, const char *hostname,
    void **arg_out)
{
	struct unavail *u = xcalloc(1, sizeof(*u));

	u->kind = k;
	u->hostname = xstrdup(hostname);
	*arg_out = u;
	return &unavail_protos[k];
}

void
serve_unavail_free(void *arg)
{
	struct unavail *u = arg;

	if (u == NULL)
		return;
	free(u->hostname);
	free(u);
}
