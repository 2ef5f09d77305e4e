/*
 * serve_proto.h: how serve.c hands a configured service to its protocol
 * module. Each protocol has one wiring file (serve_smtp.c, serve_imap.c,
 * serve_http.c) that returns the struct net_proto and its per-listener
 * argument for a service.
 */
#ifndef SERVE_PROTO_H
#define SERVE_PROTO_H

#include <stdbool.h>

struct config_listener;
struct dns_resolver;
struct net_proto;
struct publicsuffix_list;
struct store;
struct tls_server;

struct serve_service {
	const char *listener_name;               /* Listeners.<name> */
	const struct config_listener *listener;  /* borrowed; static config */
	const char *service;  /* config field: "SMTP", "Submission",
			       * "Submissions", "IMAP", "IMAPS", "AccountHTTP", ... */
	struct tls_server *tls; /* STARTTLS for plain services (NULL: none
				 * configured), the session's for implicit */
	bool implicit_tls;
	const char *hostname; /* listener Hostname, else the global one */
	struct store *store;  /* accounts; shared */
	bool localserve;      /* mox localserve rules */
	/* One resolver (mox.conf DNSResolvers, else /etc/resolv.conf) and
	 * the public suffix list, shared by all services; both outlive the
	 * protocol arguments. psl may be NULL when the list is missing. */
	struct dns_resolver *resolver;
	const struct publicsuffix_list *psl;
};

/* Return the protocol for svc and set *arg_out to its listener argument
 * (released with the matching _free after the reactor stopped), or NULL
 * with the reason appended to err. Called once per service at startup. */
struct buf;
const struct net_proto *serve_smtp_proto(const struct serve_service *svc,
    void **arg_out, struct buf *err);
void serve_smtp_free(void *arg);
const struct net_proto *serve_imap_proto(const struct serve_service *svc,
    void **arg_out, struct buf *err);
void serve_imap_free(void *arg);
const struct net_proto *serve_http_proto(const struct serve_service *svc,
    void **arg_out, struct buf *err);
void serve_http_free(void *arg);

/* The "service not available" protocol for a service whose module is not
 * built yet: greets with the protocol's standard refusal and closes. */
enum serve_unavail_kind {
	SERVE_UNAVAIL_SMTP,
	SERVE_UNAVAIL_IMAP,
	SERVE_UNAVAIL_HTTP,
};
const struct net_proto *serve_unavail_proto(enum serve_unavail_kind k,
    const char *hostname, void **arg_out);
void serve_unavail_free(void *arg);

#endif
