/*
 * dkim_conf.c: DKIM signing with the keys and settings of domains.conf
 * (dkim_conf.h; spec auth.md 4.3; RFC 6376 3.5 for i=). Input is our own
 * message and configuration; key files are read from disk. Any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_conf.h"
#include "lib/banned.h"

static const struct config_dkim_selector *
selector_find(const struct config_domain *d, const char *name)
{
	for (size_t i = 0; i < d->dkim.selectors.n; i++)
		if (strcmp(d->dkim.selectors.keys[i], name) == 0)
			return &d->dkim.selectors.vals[i];
	return NULL;
}

/* Fill ss for selector name of d, loading its key into *key_out. */
static int
selector_load(const struct config *cfg, const struct config_domain *d,
    const char *from_dom, const char *name, struct dkim_sign_selector *ss,
    struct dkim_key **key_out, const char **why, struct buf *err)
{
	const struct config_dkim_selector *cs = selector_find(d, name);
	int64_t exp = 0;
	char *path;

	if (cs == NULL || cs->private_key_file == NULL) {
		*why = "unknown selector in DKIM.Sign";
		buf_addf(err, "selector %s of DKIM.Sign is not configured",
		    name);
		return -1;
	}
	path = config_path(cfg, cs->private_key_file);
	if (dkim_key_load_file(path, key_out, err) == -1) {
		free(path);
		*why = "loading DKIM private key";
		return -1;
	}
	free(path);
	if (cs->expiration != NULL &&
	    time_parse_duration(cs->expiration, &exp, why) == -1) {
		buf_addf(err, "selector %s expiration: %s", name, *why);
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	ss->domain = from_dom;
	ss->selector = name;
	ss->key = *key_out;
	/* config_check.c allows only "sha256" (the default) and "sha1". */
	ss->hash = cs->hash != NULL && strcmp(cs->hash, "sha1") == 0 ?
	    DKIM_HASH_SHA1 : DKIM_HASH_SHA256;
	ss->header_relaxed = cs->canonicalization.header_relaxed;
	ss->body_relaxed = cs->canonicalization.body_relaxed;
	if (cs->headers.n > 0) {
		ss->headers = (const char *const *)cs->headers.v;
		ss->nheaders = cs->headers.n;
	}
	ss->oversign = !cs->dont_seal_headers;
	ss->expiration = exp / NS_PER_SEC;
	return 0;
}

int
dkim_conf_sign(const struct config *cfg, const char *from_lp,
    const char *from_dom, int64_t now, struct span msg, struct buf *out,
    const char **why, struct buf *err)
{
	const struct config_domain *d = config_domain_find(cfg, from_dom);
	struct dkim_sign_selector *sels = NULL;
	struct dkim_key **keys = NULL;
	struct buf ident, detail;
	size_t n = 0;
	int rc = -1;

	if (d == NULL || d->dkim.sign.n == 0)
		return 0;
	buf_init(&ident, 1024);
	buf_init(&detail, 4096);
	sels = xcalloc(d->dkim.sign.n, sizeof(*sels));
	keys = xcalloc(d->dkim.sign.n, sizeof(*keys));
	for (; n < d->dkim.sign.n; n++)
		if (selector_load(cfg, d, from_dom, d->dkim.sign.v[n], &sels[n],
		    &keys[n], why, &detail) == -1)
			goto out;
	/* spec/smtp.md 11 step 8: i= is the canonical From localpart at
	 * the signing domain (RFC 6376 3.5: a subdomain of d= or d=). */
	config_canonical_localpart(d, from_lp, &ident);
	buf_addf(&ident, "@%s", from_dom);
	if (buf_failed(&ident)) {
		*why = "signing identity too long";
		goto out;
	}
	if (dkim_sign(sels, n, ident.data, now, msg, out, why) == -1)
		goto out;
	rc = 1;
out:
	if (rc == -1 && err != NULL) {
		if (detail.len == 0)
			buf_adds(&detail, *why);
		buf_add(err, detail.data, detail.len);
	}
	for (size_t i = 0; i < d->dkim.sign.n; i++)
		dkim_key_free(keys[i]);
	free(keys);
	free(sels);
	buf_release(&ident);
	buf_release(&detail);
	return rc;
}
