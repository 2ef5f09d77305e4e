/*
 * smtp_alias.c: aliases (lists) of domains.conf as recipients and as
 * message From (spec/smtp.md 9 "Aliases", 11 step 2): finding an alias
 * with its domain's catchall separator and case rules, who may post to
 * it, which members get no copy, and who may send as it. Delivery to the
 * members is smtp_deliver.c's.
 *
 * Trust: the config snapshot is trusted; the From address comes from the
 * peer's message and is only compared. Pure but for lookups in the
 * borrowed config: any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "smtp/smtp_int.h"
#include "lib/banned.h"

#define ALIAS_ADDR_MAX 1024 /* canonical address; paths are <= 256 */

static void
add_lower(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++)
		buf_addc(out, *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s);
}

void
smtp_alias_canonical(const struct config *cfg, const char *lp,
    const char *dom, struct buf *out)
{
	const struct config_domain *d = config_domain_find(cfg, dom);

	config_canonical_localpart(d, lp, out);
	buf_addc(out, '@');
	if (d != NULL)
		add_lower(out,
		    cfg->dyn.domains.keys[d - cfg->dyn.domains.vals]);
	else
		add_lower(out, dom);
}

/* Canonical form of a configured "localpart@domain" address, or NULL. */
static char *
canonical_of(const struct config *cfg, const char *addr)
{
	const char *at = strrchr(addr, '@');
	struct buf b;
	char *lp, *r = NULL;

	if (at == NULL)
		return NULL;
	lp = xstrndup(addr, (size_t)(at - addr));
	buf_init(&b, ALIAS_ADDR_MAX);
	smtp_alias_canonical(cfg, lp, at + 1, &b);
	if (!buf_failed(&b))
		r = buf_take(&b);
	buf_release(&b);
	free(lp);
	return r;
}

struct smtp_alias_info *
smtp_alias_lookup(const struct config *cfg, const char *lp, const char *dom)
{
	const struct config_alias *al = config_alias_find(cfg, lp, dom);
	struct smtp_alias_info *a;
	struct buf b;

	if (al == NULL)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	buf_init(&b, ALIAS_ADDR_MAX);
	smtp_alias_canonical(cfg, lp, dom, &b);
	a->addr = buf_failed(&b) ? xstrdup("") : buf_take(&b);
	buf_release(&b);
	a->members = xcalloc(al->addresses.n > 0 ? al->addresses.n : 1,
	    sizeof(*a->members));
	for (size_t i = 0; i < al->addresses.n; i++) {
		char *m = canonical_of(cfg, al->addresses.v[i]);

		if (m != NULL)
			a->members[a->nmembers++] = m;
	}
	a->post_public = al->post_public;
	a->allow_msg_from = al->allow_msg_from;
	return a;
}

void
smtp_alias_info_free(struct smtp_alias_info *a)
{
	if (a == NULL)
		return;
	free(a->addr);
	for (size_t i = 0; i < a->nmembers; i++)
		free(a->members[i]);
	free(a->members);
	free(a);
}

bool
smtp_alias_may_post(const struct smtp_alias_info *a, const char *from)
{
	if (a->post_public)
		return true;
	if (from == NULL || from[0] == '\0')
		return false;
	if (a->allow_msg_from && strcmp(from, a->addr) == 0)
		return true;
	for (size_t i = 0; i < a->nmembers; i++)
		if (strcmp(from, a->members[i]) == 0)
			return true;
	return false;
}

bool
smtp_alias_member_skip(const char *member, const char *from,
    const char *const *explicit_rcpts, size_t n)
{
	if (from != NULL && strcmp(member, from) == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcmp(member, explicit_rcpts[i]) == 0)
			return true;
	return false;
}

bool
smtp_alias_may_send_as(const struct config *cfg, const char *account,
    const char *lp, const char *dom)
{
	const struct config_alias *al = config_alias_find(cfg, lp, dom);

	if (al == NULL || !al->allow_msg_from || account == NULL)
		return false;
	for (size_t i = 0; i < al->addresses.n; i++) {
		const char *m = al->addresses.v[i], *at = strrchr(m, '@');
		struct config_dest_ref ref;
		char *mlp;
		bool own;

		if (at == NULL)
			continue;
		mlp = xstrndup(m, (size_t)(at - m));
		own = config_lookup_address(cfg, mlp, at + 1, &ref) == 0 &&
		    !ref.catchall && strcmp(ref.account_name, account) == 0;
		free(mlp);
		if (own)
			return true;
	}
	return false;
}
