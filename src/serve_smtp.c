/*
 * serve_smtp.c: wiring of the SMTP services (serve_proto.h): each
 * configured SMTP, Submission or Submissions service gets an smtp_server
 * (src/smtp) with the listener's settings (spec/smtp.md 1). Called at
 * startup from the main thread. The services share serve.c's resolver
 * and public suffix list (spec/auth.md 1).
 */
#include <string.h>

#include "config/config.h"
#include "lib/buf.h"
#include "serve_proto.h"
#include "smtp/smtp.h"
#include "lib/banned.h"

const struct net_proto *
serve_smtp_proto(const struct serve_service *svc, void **arg_out,
    struct buf *err)
{
	const struct config_listener *l = svc->listener;
	struct smtp_server_params p = { 0 };
	struct config *cfg = config_get();
	struct smtp_server *srv;

	if (strcmp(svc->service, "SMTP") == 0) {
		p.kind = SMTP_KIND_SMTP;
		p.no_starttls = l->smtp.no_starttls;
		p.require_starttls = l->smtp.require_starttls;
		p.no_require_tls = l->smtp.no_require_tls;
		p.first_time_sender_delay_ns = l->smtp.first_time_sender_delay;
		p.dnsbls = (const char *const *)l->smtp.dnsbls.v;
		p.ndnsbls = l->smtp.dnsbls.n;
	} else if (strcmp(svc->service, "Submission") == 0) {
		p.kind = SMTP_KIND_SUBMISSION;
		p.no_require_starttls = l->submission.no_require_starttls;
	} else {
		p.kind = SMTP_KIND_SUBMISSIONS;
	}
	p.listener_name = svc->listener_name;
	p.hostname = svc->hostname;
	p.tls = svc->tls;
	p.max_msg_size = l->smtp_max_message_size > 0
	    ? (uint64_t)l->smtp_max_message_size
	    : 0;
	p.pedantic = cfg != NULL && cfg->st->pedantic;
	p.localserve = svc->localserve;
	p.store = svc->store;
	p.resolver = svc->resolver;
	p.psl = svc->psl;
	config_put(cfg);
	srv = smtp_server_new(&p, err);
	if (srv == NULL)
		return NULL;
	*arg_out = srv;
	return smtp_server_proto();
}

void
serve_smtp_free(void *arg)
{
	smtp_server_free(arg);
}
