/*
 * config.c: loading mox.conf and domains.conf (spec/config.md sections 2
 * to 5), reference-counted snapshots, reload of domains.conf when its
 * mtime changes (section 5: checked at most once a second, the previous
 * snapshot stays on error), describe and write, and lookups.
 *
 * Threads: a published snapshot is immutable; the current-snapshot slot
 * is guarded by cur_lock (LOCK_ORDER_CONFIG). A reload reads and parses
 * domains.conf while holding cur_lock, which serialises reloads; nothing
 * else is done under it.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <idn2.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "config/config.h"
#include "config/config_int.h"
#include "config/sconf.h"
#include "lib/banned.h"

#define RELOAD_INTERVAL_MS 1000 /* spec/config.md section 5 */
#define DNS_NAME_MAX 253 /* RFC 1035 2.3.4, without the trailing dot */
#define DNS_LABEL_MAX 63 /* RFC 1035 2.3.4 */

static pthread_once_t cur_once = PTHREAD_ONCE_INIT;
static struct lock cur_lock;
static struct config *cur;          /* guarded by cur_lock */
static int64_t cur_checked_ms;      /* guarded by cur_lock */
static int64_t failed_mtime_ns = -1; /* guarded by cur_lock */
static int64_t failed_size = -1;    /* guarded by cur_lock */

static void
cur_init(void)
{
	lock_init(&cur_lock, LOCK_ORDER_CONFIG, "config");
}

/* ---------------------------------------------------------------------
 * Loading
 */

static void
shared_put(struct config_shared *sh)
{
	if (sh == NULL || atomic_fetch_sub(&sh->refs, 1) != 1)
		return;
	sconf_release(&config_static_type, &sh->st);
	free(sh->path);
	free(sh->dir);
	free(sh->domains_path);
	free(sh);
}

static struct config *
snapshot_new(struct config_shared *sh)
{
	struct config *c = xcalloc(1, sizeof(*c));

	atomic_fetch_add(&sh->refs, 1);
	c->shared_ = sh;
	c->st = &sh->st;
	c->path = sh->path;
	c->dir = sh->dir;
	c->domains_path = sh->domains_path;
	atomic_init(&c->refs_, 1);
	return c;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	sconf_release(&config_dynamic_type, &c->dyn);
	for (size_t i = 0; i < c->naddrs; i++)
		free(c->addrs[i].addr);
	free(c->addrs);
	if (c->domains_canon_ != NULL)
		for (size_t i = 0; i < c->ndomains_canon_; i++)
			free(c->domains_canon_[i]);
	free(c->domains_canon_);
	shared_put(c->shared_);
	free(c);
}

/* Read, parse and bind one file into obj. Returns 0, or -1 with errors
 * appended (obj then needs sconf_release() anyway). */
static int
load_file(const char *path, const struct sconf_type *t, void *obj,
    struct buf *err)
{
	struct sconf_doc *doc = NULL;
	struct buf text;
	int rc = -1;

	buf_init(&text, SCONF_FILE_MAX);
	if (io_read_file(path, &text, err) == -1) {
		buf_addc(err, '\n');
		goto out;
	}
	if (sconf_parse(path, span_of_buf(&text), &doc, err) == -1)
		goto out;
	rc = sconf_bind(doc, t, obj, err);
out:
	sconf_doc_free(doc);
	buf_release(&text);
	return rc;
}

static int
stat_file(const char *path, int64_t *mtime_ns, int64_t *size)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		return -1;
	*mtime_ns = (int64_t)sb.st_mtim.tv_sec * NS_PER_SEC + sb.st_mtim.tv_nsec;
	*size = (int64_t)sb.st_size;
	return 0;
}

/* Canonical domain names parallel to dyn.domains, for lookups. */
static void
canon_domains(struct config *c)
{
	const char *why = NULL;

	c->domains_canon_ = xcalloc(c->dyn.domains.n + 1, sizeof(char *));
	c->ndomains_canon_ = c->dyn.domains.n;
	for (size_t i = 0; i < c->dyn.domains.n; i++)
		c->domains_canon_[i] = config_domain_canon(c->dyn.domains.keys[i],
		    &why);
}

/* Load domains.conf into the fresh snapshot c. static_ok tells whether
 * the static part is usable for the cross checks. */
static int
load_dynamic(struct config *c, bool static_ok, struct buf *err)
{
	const char *path = c->domains_path;

	if (stat_file(path, &c->domains_mtime_ns, &c->domains_size) == -1) {
		buf_addf(err, "%s: %s\n", path, log_strerror(errno));
		return -1;
	}
	if (load_file(path, &config_dynamic_type, &c->dyn, err) == -1)
		return -1;
	if (!static_ok)
		return -1;
	if (config_check_dynamic(c, c->path, path, err) > 0)
		return -1;
	canon_domains(c);
	return 0;
}

static char *
domains_path_of(const char *path, const char *dir)
{
	struct buf b;

	if (strchr(path, '/') == NULL)
		return xstrdup("domains.conf");
	buf_init(&b, BUF_NOMAX);
	io_path_join(&b, dir, "domains.conf");
	return buf_take(&b);
}

int
config_load(const char *mox_conf_path, struct config **out, struct buf *err)
{
	struct config_shared *sh = xcalloc(1, sizeof(*sh));
	struct config *c = NULL;
	struct buf dir;
	bool static_ok;
	int rc = -1;

	atomic_init(&sh->refs, 1);
	sh->path = xstrdup(mox_conf_path);
	buf_init(&dir, BUF_NOMAX);
	io_dirname(mox_conf_path, &dir);
	sh->dir = buf_take(&dir);
	sh->domains_path = domains_path_of(mox_conf_path, sh->dir);
	static_ok = load_file(sh->path, &config_static_type, &sh->st, err) ==
	    0;
	if (static_ok && config_check_static(&sh->st, sh->path, err) > 0)
		static_ok = false;
	c = snapshot_new(sh);
	if (load_dynamic(c, static_ok, err) == -1 || !static_ok)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	config_free(c);
	shared_put(sh);
	return rc;
}

int
config_test(const char *mox_conf_path, struct buf *out)
{
	struct config *c = NULL;

	if (config_load(mox_conf_path, &c, out) == -1)
		return -1;
	if (config_check_files(c, out) > 0) {
		config_free(c);
		return -1;
	}
	config_free(c);
	buf_adds(out, "config OK\n");
	return 0;
}

/* ---------------------------------------------------------------------
 * Snapshots and reload
 */

void
config_put(struct config *c)
{
	if (c != NULL && atomic_fetch_sub(&c->refs_, 1) == 1)
		config_free(c);
}

void
config_set_current(struct config *c)
{
	struct config *old;

	pthread_once(&cur_once, cur_init);
	lock_take(&cur_lock);
	old = cur;
	cur = c;
	cur_checked_ms = time_mono_ms();
	failed_mtime_ns = -1;
	failed_size = -1;
	lock_release(&cur_lock);
	config_put(old);
}

/* Reload domains.conf if it changed; cur_lock held. */
static int
reload_locked(struct buf *err_out)
{
	struct log_ctx lc = log_ctx_init("config", 0);
	struct config *c, *old = cur;
	int64_t mtime, size;
	struct buf err;
	int rc;

	LOCK_ASSERT_HELD(&cur_lock);
	if (old == NULL)
		return 0;
	if (stat_file(old->domains_path, &mtime, &size) == -1) {
		if (failed_mtime_ns != -2)
			log_error(&lc, "checking domains config",
			    LF_ERRNO(errno), LF_STR("path", old->domains_path));
		failed_mtime_ns = -2;
		if (err_out != NULL)
			buf_addf(err_out, "%s: %s\n", old->domains_path,
			    log_strerror(errno));
		return -1;
	}
	if (mtime == old->domains_mtime_ns && size == old->domains_size)
		return 0;
	if (err_out == NULL && mtime == failed_mtime_ns && size == failed_size)
		return -1; /* already reported */
	buf_init(&err, CONFIG_ERR_MAX);
	c = snapshot_new(old->shared_);
	if (load_dynamic(c, true, &err) == -1) {
		failed_mtime_ns = c->domains_mtime_ns;
		failed_size = c->domains_size;
		log_error(&lc, "domains config reload failed, keeping previous",
		    LF_ERR(err.data), LF_STR("path", old->domains_path));
		if (err_out != NULL)
			buf_add(err_out, err.data, err.len);
		config_free(c);
		rc = -1;
	} else {
		cur = c;
		failed_mtime_ns = -1;
		failed_size = -1;
		log_info(&lc, "domains config reloaded",
		    LF_STR("path", old->domains_path));
		config_put(old);
		rc = 1;
	}
	buf_release(&err);
	return rc;
}

struct config *
config_get(void)
{
	struct config *c;
	int64_t now;

	pthread_once(&cur_once, cur_init);
	lock_take(&cur_lock);
	now = time_mono_ms();
	if (cur != NULL && now - cur_checked_ms > RELOAD_INTERVAL_MS) {
		cur_checked_ms = now;
		(void)reload_locked(NULL);
	}
	c = cur;
	if (c != NULL)
		atomic_fetch_add(&c->refs_, 1);
	lock_release(&cur_lock);
	return c;
}

int
config_reload_domains(struct buf *err)
{
	int rc;

	pthread_once(&cur_once, cur_init);
	lock_take(&cur_lock);
	cur_checked_ms = time_mono_ms();
	rc = reload_locked(err);
	lock_release(&cur_lock);
	return rc;
}

/* ---------------------------------------------------------------------
 * Describe and write
 */

static const char describe_note[] =
    "# NOTE: This file is in sconf format: indent with tabs only, one tab "
    "per\n"
    "# level. Comments are on their own lines; there are no end-of-line "
    "comments.\n"
    "# Strings are written as-is, without quoting or escaping.\n";

void
config_describe_static(struct buf *out)
{
	buf_adds(out, describe_note);
	sconf_describe(&config_static_type, out);
}

void
config_describe_domains(struct buf *out)
{
	buf_adds(out, describe_note);
	sconf_describe(&config_dynamic_type, out);
}

int
config_write_domains(const struct config *c, struct buf *out)
{
	const char *why = NULL;

	if (sconf_write(&config_dynamic_type, &c->dyn, out, &why) == -1) {
		buf_reset(out);
		buf_adds(out, why != NULL ? why : "cannot write");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Names and lookups
 */

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

char *
config_domain_canon(const char *domain, const char **why)
{
	char *a = NULL;
	size_t len, lab = 0;
	int rc;

	if (domain == NULL || domain[0] == '\0') {
		*why = "empty domain name";
		return NULL;
	}
	len = strlen(domain);
	if (len > DNS_NAME_MAX || domain[len - 1] == '.') {
		*why = "invalid domain name (too long or trailing dot)";
		return NULL;
	}
	if (is_ascii(domain))
		a = xstrdup(domain);
	else {
		rc = idn2_to_ascii_8z(domain, &a, IDN2_NONTRANSITIONAL);
		if (rc != IDN2_OK) {
			*why = "invalid international domain name";
			return NULL;
		}
		/* idn2 allocates with malloc; move to our allocator. */
		char *t = xstrdup(a);
		idn2_free(a);
		a = t;
	}
	len = strlen(a);
	if (len == 0 || len > DNS_NAME_MAX)
		goto bad;
	for (size_t i = 0; i <= len; i++) {
		char ch = a[i];

		if (ch == '.' || ch == '\0') {
			if (lab == 0 || lab > DNS_LABEL_MAX || a[i - 1] == '-')
				goto bad;
			lab = 0;
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			a[i] = (char)(ch + 32);
		else if (!(char_is_alnum(ch) || ch == '-' || ch == '_'))
			goto bad;
		if (lab == 0 && ch == '-')
			goto bad;
		lab++;
	}
	return a;
bad:
	free(a);
	*why = "invalid domain name";
	return NULL;
}

const char *
config_separator(const struct config_domain *d, size_t i)
{
	if (d->localpart_catchall_separators.n > 0)
		return i < d->localpart_catchall_separators.n
		    ? d->localpart_catchall_separators.v[i]
		    : NULL;
	return i == 0 && d->localpart_catchall_separator != NULL &&
	    d->localpart_catchall_separator[0] != '\0'
	    ? d->localpart_catchall_separator
	    : NULL;
}

void
config_canonical_localpart(const struct config_domain *d,
    const char *localpart, struct buf *out)
{
	size_t n = strlen(localpart);
	const char *sep;

	for (size_t i = 0; d != NULL && (sep = config_separator(d, i)) != NULL;
	     i++) {
		const char *hit = strstr(localpart, sep);

		if (hit != NULL && (size_t)(hit - localpart) < n)
			n = (size_t)(hit - localpart);
	}
	for (size_t i = 0; i < n; i++) {
		char ch = localpart[i];

		if (ch >= 'A' && ch <= 'Z' &&
		    (d == NULL || !d->localpart_case_sensitive))
			ch = (char)(ch + 32);
		buf_addc(out, ch);
	}
}


char *
config_path(const struct config *c, const char *p)
{
	struct buf b;

	if (p[0] == '/')
		return xstrdup(p);
	buf_init(&b, BUF_NOMAX);
	io_path_join(&b, c->dir, p);
	return buf_take(&b);
}

const struct config_account *
config_account_find(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->dyn.accounts.n; i++)
		if (strcmp(c->dyn.accounts.keys[i], name) == 0)
			return &c->dyn.accounts.vals[i];
	return NULL;
}

static ssize_t
domain_index(const struct config *c, const char *domain)
{
	const char *why = NULL;
	char *cd = config_domain_canon(domain, &why);
	ssize_t r = -1;

	for (size_t i = 0; cd != NULL && i < c->ndomains_canon_; i++)
		if (c->domains_canon_[i] != NULL &&
		    strcmp(c->domains_canon_[i], cd) == 0)
			r = (ssize_t)i;
	free(cd);
	return r;
}

const struct config_domain *
config_domain_find(const struct config *c, const char *domain)
{
	ssize_t i = domain_index(c, domain);

	return i >= 0 ? &c->dyn.domains.vals[i] : NULL;
}

static int
cmp_addr(const void *key, const void *elem)
{
	const struct config_addr *a = elem;

	return strcmp(key, a->addr);
}

static const struct config_addr *
addr_find(const struct config *c, const char *addr)
{
	if (c->naddrs == 0)
		return NULL;
	return bsearch(addr, c->addrs, c->naddrs, sizeof(c->addrs[0]),
	    cmp_addr);
}

int
config_lookup_address(const struct config *c, const char *localpart,
    const char *domain, struct config_dest_ref *out)
{
	const struct config_addr *a;
	struct buf key;
	ssize_t di = domain_index(c, domain);
	size_t at;
	int rc = -1;

	if (di < 0)
		return -1;
	buf_init(&key, 4096);
	config_canonical_localpart(&c->dyn.domains.vals[di], localpart, &key);
	at = key.len;
	buf_addf(&key, "@%s", c->domains_canon_[di]);
	if (buf_failed(&key))
		goto out;
	a = addr_find(c, key.data);
	if (a == NULL)
		a = addr_find(c, key.data + at);
	if (a == NULL)
		goto out;
	out->account_name = c->dyn.accounts.keys[a->account];
	out->account = &c->dyn.accounts.vals[a->account];
	out->dest_key = out->account->destinations.keys[a->dest];
	out->dest = &out->account->destinations.vals[a->dest];
	out->mailbox = out->dest->mailbox != NULL && out->dest->mailbox[0] !=
		'\0'
	    ? out->dest->mailbox
	    : "Inbox";
	out->catchall = a->addr[0] == '@';
	rc = 0;
out:
	buf_release(&key);
	return rc;
}

const struct config_alias *
config_alias_find(const struct config *c, const char *localpart,
    const char *domain)
{
	const struct config_domain *d;
	const struct config_alias *r = NULL;
	struct buf want, have;
	ssize_t di = domain_index(c, domain);

	if (di < 0)
		return NULL;
	d = &c->dyn.domains.vals[di];
	buf_init(&want, 4096);
	buf_init(&have, 4096);
	config_canonical_localpart(d, localpart, &want);
	for (size_t i = 0; i < d->aliases.n && r == NULL; i++) {
		buf_reset(&have);
		config_canonical_localpart(d, d->aliases.keys[i], &have);
		if (!buf_failed(&want) && !buf_failed(&have) &&
		    strcmp(want.data, have.data) == 0)
			r = &d->aliases.vals[i];
	}
	buf_release(&want);
	buf_release(&have);
	return r;
}

const struct config_listener *
config_listener_find(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->st->listeners.n; i++)
		if (strcmp(c->st->listeners.keys[i], name) == 0)
			return &c->st->listeners.vals[i];
	return NULL;
}
