/*
 * queue_route.c: route matching for outgoing messages (spec/queue.md 4.3;
 * RFC 5321 5.1 for the default direct delivery). Input is our own config
 * and queued records. Pure: any thread.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "queue/queue.h"
#include "lib/banned.h"

/* Entries starting with "." match the domain and its subdomains. */
static bool
domain_match(const struct sconf_strlist *l, const char *d)
{
	size_t dl;

	if (l->n == 0)
		return true;
	dl = strlen(d);
	for (size_t i = 0; i < l->n; i++) {
		const char *e = l->v[i];
		size_t el = strlen(e);

		if (e[0] == '.') {
			if (strcasecmp(e + 1, d) == 0)
				return true;
			if (dl > el && strcasecmp(d + dl - el, e) == 0)
				return true;
		} else if (strcasecmp(e, d) == 0)
			return true;
	}
	return false;
}

bool
queue_route_match(const struct config_route *rt, const char *from_domain,
    const char *to_domain, int64_t attempts)
{
	return domain_match(&rt->from_domain, from_domain) &&
	    domain_match(&rt->to_domain, to_domain) &&
	    attempts >= rt->minimum_attempts;
}

static const char *
first_match(const struct config_route *v, size_t n, const char *from,
    const char *to, int64_t attempts)
{
	for (size_t i = 0; i < n; i++)
		if (queue_route_match(&v[i], from, to, attempts))
			return v[i].transport != NULL ? v[i].transport : "";
	return NULL;
}

const char *
queue_route_transport(const struct config *cfg, const char *account,
    const char *from_domain, const char *to_domain, int64_t attempts)
{
	const struct config_account *a = config_account_find(cfg, account);
	const struct config_domain *d = from_domain[0] != '\0'
	    ? config_domain_find(cfg, from_domain)
	    : NULL;
	const char *t = NULL;

	if (a != NULL)
		t = first_match(a->routes.v, a->routes.n, from_domain, to_domain,
		    attempts);
	if (t == NULL && d != NULL)
		t = first_match(d->routes.v, d->routes.n, from_domain, to_domain,
		    attempts);
	if (t == NULL)
		t = first_match(cfg->dyn.routes.v, cfg->dyn.routes.n,
		    from_domain, to_domain, attempts);
	return t != NULL ? t : "";
}
