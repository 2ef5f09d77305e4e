/*
 * serve_http.c: wiring of the HTTP services (serve_proto.h). The HTTP module is
 * not built in yet: its listeners answer with the refusal of
 * serve_unavail.c.
 */
#include "lib/buf.h"
#include "serve_proto.h"
#include "lib/banned.h"

const struct net_proto *
serve_http_proto(const struct serve_service *svc, void **arg_out,
    struct buf *err)
{
	(void)err;
	return serve_unavail_proto(SERVE_UNAVAIL_HTTP, svc->hostname, arg_out);
}

void
serve_http_free(void *arg)
{
	serve_unavail_free(arg);
}
