/*
 * serve.c: turn a configuration into a running server (DESIGN.md
 * "Processes and threads"): bind every listener's services on the reactor,
 * load TLS key pairs, drop root privileges, start the ctl socket, wait for
 * SIGTERM/SIGINT or "mox stop", then shut down gracefully (connections get
 * SERVE_GRACE_MS, spec/config.md section 11).
 *
 * Each protocol's wiring lives in serve_<proto>.c (serve_proto.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "moxbuild.h"
#include "cli.h"
#include "config/config.h"
#include "ctl/ctl.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "net/net.h"
#include "queue/queue.h"
#include "serve.h"
#include "serve_proto.h"
#include "mailauth/publicsuffix.h"
#include "maildir/store.h"
#include "smtp/smtp.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define SERVE_GRACE_MS 3000

enum svc_tls {
	SVC_PLAIN,    /* no TLS */
	SVC_STARTTLS, /* plaintext, upgraded by STARTTLS when TLS is configured */
	SVC_IMPLICIT, /* TLS from the first byte */
};

enum svc_proto {
	SVC_SMTP,
	SVC_IMAP,
	SVC_HTTP,
};

struct svc_def {
	const char *name;   /* config field name */
	size_t off;         /* struct config_service in struct config_listener */
	enum svc_proto proto;
	enum svc_tls tls;
	enum tls_sni_mode sni;
};

#define SVC(field, nm, p, t, s) \
	{ nm, offsetof(struct config_listener, field), p, t, s }

static const struct svc_def svc_defs[] = {
	SVC(smtp, "SMTP", SVC_SMTP, SVC_STARTTLS, TLS_SNI_FALLBACK),
	SVC(submission, "Submission", SVC_SMTP, SVC_STARTTLS, TLS_SNI_STRICT),
	SVC(submissions, "Submissions", SVC_SMTP, SVC_IMPLICIT, TLS_SNI_STRICT),
	SVC(imap, "IMAP", SVC_IMAP, SVC_STARTTLS, TLS_SNI_STRICT),
	SVC(imaps, "IMAPS", SVC_IMAP, SVC_IMPLICIT, TLS_SNI_STRICT),
	SVC(account_http, "AccountHTTP", SVC_HTTP, SVC_PLAIN, TLS_SNI_STRICT),
	SVC(account_https, "AccountHTTPS", SVC_HTTP, SVC_IMPLICIT,
	    TLS_SNI_STRICT),
	SVC(admin_http, "AdminHTTP", SVC_HTTP, SVC_PLAIN, TLS_SNI_STRICT),
	SVC(admin_https, "AdminHTTPS", SVC_HTTP, SVC_IMPLICIT, TLS_SNI_STRICT),
	SVC(webmail_http, "WebmailHTTP", SVC_HTTP, SVC_PLAIN, TLS_SNI_STRICT),
	SVC(webmail_https, "WebmailHTTPS", SVC_HTTP, SVC_IMPLICIT,
	    TLS_SNI_STRICT),
	SVC(webapi_http, "WebAPIHTTP", SVC_HTTP, SVC_PLAIN, TLS_SNI_STRICT),
	SVC(webapi_https, "WebAPIHTTPS", SVC_HTTP, SVC_IMPLICIT,
	    TLS_SNI_STRICT),
	SVC(metrics_http, "MetricsHTTP", SVC_HTTP, SVC_PLAIN, TLS_SNI_STRICT),
	SVC(pprof_http, "PprofHTTP", SVC_HTTP, SVC_PLAIN, TLS_SNI_STRICT),
	SVC(autoconfig_https, "AutoconfigHTTPS", SVC_HTTP, SVC_IMPLICIT,
	    TLS_SNI_STRICT),
	SVC(mtasts_https, "MTASTSHTTPS", SVC_HTTP, SVC_IMPLICIT, TLS_SNI_STRICT),
	SVC(webserver_http, "WebserverHTTP", SVC_HTTP, SVC_PLAIN,
	    TLS_SNI_STRICT),
	SVC(webserver_https, "WebserverHTTPS", SVC_HTTP, SVC_IMPLICIT,
	    TLS_SNI_STRICT),
};

/* One bound (ip, port): the first service configured on it decides. */
struct bound {
	char *ip;
	int64_t port;
	const char *svc;
};

struct svc_arg {
	enum svc_proto proto;
	void *arg;
};

struct server {
	struct config *cfg;
	struct store *store;
	struct net_reactor *net;
	struct ctl_server *ctl;
	struct queue_runner *queue; /* outgoing deliveries */
	struct queue_tls_params *queue_tls; /* the queue's TLS policy setup */
	struct tls_server **tls; /* owned, one per listener and SNI mode */
	size_t ntls;
	struct svc_arg *args;    /* protocol arguments, freed after net_stop */
	size_t nargs;
	struct bound *bound;
	size_t nbound;
	struct store_account **accounts; /* held open while serving */
	struct store_watch **watches;    /* new/ of each account (inotify) */
	size_t naccounts;
	struct log_ctx log;
	char *datadir;
	bool localserve;
	struct dns_resolver *resolver; /* shared by all services */
	struct publicsuffix_list *psl; /* NULL when the list is missing */
};

static struct tls_server *
listener_tls(struct server *s, const char *lname,
    const struct config_listener *l, enum tls_sni_mode sni, struct buf *err)
{
	struct tls_keycert *kc;
	struct tls_server_params p;
	struct tls_server *t;
	char **paths;

	if (l->tls == NULL) {
		buf_addf(err, "listener %s: a TLS service needs "
			      "Listeners.%s.TLS.KeyCerts\n",
		    lname, lname);
		return NULL;
	}
	if (l->tls->key_certs.n == 0) {
		buf_addf(err, "listener %s: TLS.ACME is not supported yet; "
			      "configure Listeners.%s.TLS.KeyCerts\n",
		    lname, lname);
		return NULL;
	}
	kc = xcalloc(l->tls->key_certs.n, sizeof(*kc));
	paths = xcalloc(2 * l->tls->key_certs.n, sizeof(*paths));
	for (size_t i = 0; i < l->tls->key_certs.n; i++) {
		paths[2 * i] = config_path(s->cfg, l->tls->key_certs.v[i].cert_file);
		paths[2 * i + 1] =
		    config_path(s->cfg, l->tls->key_certs.v[i].key_file);
		kc[i].cert_file = paths[2 * i];
		kc[i].key_file = paths[2 * i + 1];
	}
	p.keycerts = kc;
	p.nkeycerts = l->tls->key_certs.n;
	p.min_version = l->tls->min_version;
	p.sni = sni;
	t = tls_server_new(&p, err);
	for (size_t i = 0; i < 2 * l->tls->key_certs.n; i++)
		free(paths[i]);
	free(paths);
	free(kc);
	if (t == NULL) {
		buf_addf(err, " (listener %s, Listeners.%s.TLS.KeyCerts)\n", lname,
		    lname);
		return NULL;
	}
	s->tls = xreallocarray(s->tls, s->ntls + 1, sizeof(*s->tls));
	s->tls[s->ntls++] = t;
	return t;
}

static int
listen_service(struct server *s, const char *lname,
    const struct config_listener *l, const struct svc_def *d, struct buf *err)
{
	const struct config_service *svc =
	    (const struct config_service *)((const char *)l + d->off);
	struct tls_server *implicit = NULL, *starttls = NULL;
	struct serve_service ss = { 0 };
	const struct net_proto *proto = NULL;
	void *arg = NULL;

	if (!svc->enabled)
		return 0;
	if (d->tls == SVC_IMPLICIT && !(d->proto == SVC_HTTP && svc->non_tls)) {
		implicit = listener_tls(s, lname, l, d->sni, err);
		if (implicit == NULL)
			return -1;
	} else if (d->tls == SVC_STARTTLS && l->tls != NULL) {
		starttls = listener_tls(s, lname, l, d->sni, err);
		if (starttls == NULL)
			return -1;
	}
	ss.listener_name = lname;
	ss.listener = l;
	ss.service = d->name;
	ss.tls = implicit != NULL ? implicit : starttls;
	ss.implicit_tls = implicit != NULL;
	ss.hostname = l->hostname != NULL ? l->hostname : s->cfg->st->hostname;
	ss.store = s->store;
	ss.localserve = s->localserve;
	ss.resolver = s->resolver;
	ss.psl = s->psl;
	switch (d->proto) {
	case SVC_SMTP:
		proto = serve_smtp_proto(&ss, &arg, err);
		break;
	case SVC_IMAP:
		proto = serve_imap_proto(&ss, &arg, err);
		break;
	case SVC_HTTP:
		proto = serve_http_proto(&ss, &arg, err);
		break;
	}
	if (proto == NULL) {
		buf_addf(err, " (Listeners.%s.%s)\n", lname, d->name);
		return -1;
	}
	s->args = xreallocarray(s->args, s->nargs + 1, sizeof(*s->args));
	s->args[s->nargs].proto = d->proto;
	s->args[s->nargs].arg = arg;
	s->nargs++;

	for (size_t i = 0; i < l->ips.n; i++) {
		struct net_listen_params lp = { 0 };
		const char *ip = l->ips.v[i];
		bool shared = false;

		/* HTTP services share ports: bind each (ip, port) once. */
		for (size_t k = 0; k < s->nbound; k++)
			if (s->bound[k].port == svc->port &&
			    strcmp(s->bound[k].ip, ip) == 0)
				shared = true;
		if (shared)
			continue;
		lp.name = lname;
		lp.ip = ip;
		lp.port = (uint16_t)svc->port;
		lp.proto = proto;
		lp.proto_arg = arg;
		lp.implicit_tls = implicit;
		if (net_listen(s->net, &lp, NULL, err) == -1) {
			buf_addf(err, " (Listeners.%s.%s.Port %lld on %s)\n", lname,
			    d->name, (long long)svc->port, ip);
			return -1;
		}
		log_info(&s->log, "listening", LF_STR("listener", lname),
		    LF_STR("service", d->name), LF_STR("ip", ip),
		    LF_I64("port", svc->port), LF_BOOL("tls", implicit != NULL));
		s->bound = xreallocarray(s->bound, s->nbound + 1, sizeof(*s->bound));
		s->bound[s->nbound].ip = xstrdup(ip);
		s->bound[s->nbound].port = svc->port;
		s->bound[s->nbound].svc = d->name;
		s->nbound++;
	}
	return 0;
}

static int
apply_log_levels(const struct config *cfg, struct buf *err)
{
	const struct config_static *st = cfg->st;
	enum log_level l;

	if (!cli.loglevel_set && st->log_level != NULL) {
		if (log_level_parse(st->log_level, &l) == -1) {
			buf_addf(err, "LogLevel: unknown level \"%s\"\n",
			    st->log_level);
			return -1;
		}
		log_set_level(NULL, l);
	}
	for (size_t i = 0; i < st->package_log_levels.n; i++) {
		if (log_level_parse(st->package_log_levels.vals[i], &l) == -1) {
			buf_addf(err, "PackageLogLevels.%s: unknown level \"%s\"\n",
			    st->package_log_levels.keys[i],
			    st->package_log_levels.vals[i]);
			return -1;
		}
		log_set_level(st->package_log_levels.keys[i], l);
	}
	return 0;
}

/* ctl commands. */

static int
ctl_stop(struct ctl_conn *c, void *arg)
{
	struct server *s = arg;

	log_info(&s->log, "stop requested over ctl");
	ctl_write_line(c, "ok");
	kill(getpid(), SIGTERM);
	/* The client waits for this connection to close at exit. */
	return CTL_HOLD;
}

static int
ctl_loglevels(struct ctl_conn *c, void *arg)
{
	struct buf out;

	buf_init(&out, 1 << 16);
	log_levels_describe(&out);
	ctl_write_line(c, "ok");
	ctl_write_stream(c, out.data, out.len);
	buf_release(&out);
	(void)arg;
	return 0;
}

static int
ctl_setloglevels(struct ctl_conn *c, void *arg)
{
	struct server *s = arg;
	struct buf pkg, level;
	enum log_level l;
	int rc = -1;

	buf_init(&pkg, CTL_LINE_MAX);
	buf_init(&level, CTL_LINE_MAX);
	if (ctl_read_line(c, &pkg) == -1 || ctl_read_line(c, &level) == -1)
		goto out;
	if (level.len == 0) {
		if (pkg.len == 0) {
			ctl_write_line(c, "an empty level needs a package");
			goto out;
		}
		log_clear_level(pkg.data);
	} else if (log_level_parse(level.data, &l) == -1) {
		ctl_write_line(c, "unknown log level");
		goto out;
	} else if (log_set_level(pkg.len ? pkg.data : NULL, l) == -1) {
		ctl_write_line(c, "too many packages");
		goto out;
	}
	log_info(&s->log, "log level changed", LF_STR("pkg", pkg.data),
	    LF_STR("level", level.data));
	ctl_write_line(c, "ok");
	rc = 0;
out:
	buf_release(&pkg);
	buf_release(&level);
	return rc;
}

static const struct ctl_command ctl_cmds[] = {
	{ "stop", ctl_stop },
	{ "loglevels", ctl_loglevels },
	{ "setloglevels", ctl_setloglevels },
};

/* Root only to bind and read keys (STYLE.md 11): then become User.
 * Unless NoFixPermissions, the data directory tree is first given to the
 * user (spec/config.md 11: owner user, group root, directories 2750,
 * files 0640) so files root created (tmp/, accounts/) stay usable. */
static uid_t fix_uid;
static int fix_failures;

/* Give one entry to the user. Runs as root over a tree the user may
 * control, so: never follow a symlink (O_NOFOLLOW, and the entry must be
 * the one nftw saw), and leave alone a foreign file with other hard links
 * (it could be a link to a file outside the data directory). */
static int
fix_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct stat fst;
	int fd, oflags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	mode_t want;

	(void)ftw;
	if (flag == FTW_SL || flag == FTW_NS || flag == FTW_DNR)
		return 0;
	if (S_ISDIR(st->st_mode)) {
		oflags |= O_DIRECTORY;
		want = 02750;
	} else if (S_ISREG(st->st_mode)) {
		want = st->st_mode & 0640;
	} else {
		return 0; /* sockets and the like are recreated at start */
	}
	if (st->st_uid == fix_uid && (st->st_mode & 07777) == want)
		return 0;
	if (S_ISREG(st->st_mode) && st->st_uid != fix_uid && st->st_nlink > 1) {
		fix_failures++;
		return 0;
	}
	fd = open(path, oflags);
	if (fd < 0) {
		fix_failures++;
		return 0;
	}
	if (fstat(fd, &fst) == -1 || fst.st_dev != st->st_dev ||
	    fst.st_ino != st->st_ino ||
	    (fst.st_uid != fix_uid && fchown(fd, fix_uid, 0) == -1) ||
	    ((fst.st_mode & 07777) != want && fchmod(fd, want) == -1))
		fix_failures++;
	if (close(fd) == -1)
		fix_failures++;
	return 0;
}

static int
drop_privileges(struct server *s, struct buf *err)
{
	const char *user = s->cfg->st->user != NULL ? s->cfg->st->user : "mox";
	struct passwd pw, *res = NULL;
	char pwbuf[4096];
	uid_t uid;
	gid_t gid;

	if (getpwnam_r(user, &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
	    res != NULL) {
		uid = pw.pw_uid;
		gid = pw.pw_gid;
	} else {
		uint64_t n;

		if (span_u64(span_of_cstr(user), UINT32_MAX - 1, &n) == -1) {
			buf_addf(err, "User: no such user \"%s\" (create it, or "
				      "set User in mox.conf)\n",
			    user);
			return -1;
		}
		uid = (uid_t)n;
		gid = (gid_t)n;
	}
	if (uid == 0) {
		buf_adds(err, "User: refusing to run as root (set User in "
			      "mox.conf to an unprivileged user)\n");
		return -1;
	}
	if (!s->cfg->st->no_fix_permissions) {
		fix_uid = uid;
		fix_failures = 0;
		if (nftw(s->datadir, fix_entry, 32, FTW_PHYS) == -1)
			fix_failures++;
		if (fix_failures > 0)
			log_error(&s->log, "fixing data directory permissions",
			    LF_STR("path", s->datadir),
			    LF_I64("failures", fix_failures));
	}
	/* Worker threads exist already: glibc applies set*id to every
	 * thread of the process (POSIX semantics via its setxid broadcast). */
	if (setgroups(1, &gid) == -1 || setgid(gid) == -1 || setuid(uid) == -1) {
		buf_addf(err, "dropping privileges to %s: %s\n", user,
		    log_strerror(errno));
		return -1;
	}
	if (setuid(0) != -1) {
		buf_adds(err, "privileges could be regained after the drop\n");
		return -1;
	}
	log_info(&s->log, "starting as unprivileged user",
	    LF_STR("user", user), LF_U64("uid", uid), LF_U64("gid", gid));
	return 0;
}

static int
ensure_receivedid_key(struct server *s, struct buf *err)
{
	struct buf path;
	unsigned char key[24];
	int rc = 0;

	buf_init(&path, 4096);
	io_path_join(&path, s->datadir, "receivedid.key");
	if (access(path.data, F_OK) != 0) {
		if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof(key)) != 0 ||
		    io_write_file_atomic(path.data, key, sizeof(key), 0640, err) ==
			-1) {
			buf_addf(err, "creating %s\n", path.data);
			rc = -1;
		}
		explicit_bzero(key, sizeof(key));
	}
	buf_release(&path);
	return rc;
}

/* Every configured account has its index and Maildir before serving
 * (spec/store.md 12: new accounts get the default mailboxes). */
static int
open_accounts(struct server *s, struct buf *err)
{
	const struct config_dynamic *dyn = &s->cfg->dyn;
	struct store_err serr;

	for (size_t i = 0; i < dyn->accounts.n; i++) {
		struct store_account *a = NULL;

		struct store_watch *w;

		if (store_account_get(s->store, dyn->accounts.keys[i], true, &a,
			&serr) == -1) {
			buf_addf(err, "opening account %s: %s (Accounts.%s in "
				      "domains.conf)\n",
			    dyn->accounts.keys[i], serr.text,
			    dyn->accounts.keys[i]);
			return -1;
		}
		/* Files another program drops into a mailbox's new/ are
		 * indexed as they arrive, so IDLE sessions see them. */
		w = store_watch_new(a, &serr);
		if (w == NULL)
			log_error(&s->log, "watching new/ of account",
			    LF_STR("account", dyn->accounts.keys[i]),
			    LF_ERR(serr.text));
		s->accounts = xreallocarray(s->accounts, s->naccounts + 1,
		    sizeof(*s->accounts));
		s->watches = xreallocarray(s->watches, s->naccounts + 1,
		    sizeof(*s->watches));
		s->accounts[s->naccounts] = a;
		s->watches[s->naccounts] = w;
		s->naccounts++;
	}
	return 0;
}

/* The shared resolver from DNSResolvers (empty: /etc/resolv.conf) and
 * the public suffix list (spec/auth.md 1). A missing list is logged and
 * left NULL: DMARC then aligns only exact domains. */
static int
open_dns(struct server *s, struct buf *err)
{
	const struct config_static *st = s->cfg->st;
	struct dns_params p = { 0 };
	struct buf perr;
	char *path;

	p.servers = (const char *const *)st->dns_resolvers.v;
	p.nservers = st->dns_resolvers.n;
	s->resolver = dns_resolver_new(&p, err);
	if (s->resolver == NULL) {
		buf_adds(err, " (check DNSResolvers in mox.conf)\n");
		return -1;
	}
	path = st->public_suffix_list_file != NULL
	    ? config_path(s->cfg, st->public_suffix_list_file)
	    : xstrdup(PUBLICSUFFIX_PATH);
	buf_init(&perr, 4096);
	s->psl = publicsuffix_load(path, &perr);
	if (s->psl == NULL)
		log_error(&s->log, "loading public suffix list", LF_ERR(perr.data),
		    LF_STR("path", path));
	buf_release(&perr);
	free(path);
	return 0;
}

static void
server_free(struct server *s)
{
	net_free(s->net);
	for (size_t i = 0; i < s->ntls; i++)
		tls_server_free(s->tls[i]);
	free(s->tls);
	for (size_t i = 0; i < s->nargs; i++) {
		switch (s->args[i].proto) {
		case SVC_SMTP:
			serve_smtp_free(s->args[i].arg);
			break;
		case SVC_IMAP:
			serve_imap_free(s->args[i].arg);
			break;
		case SVC_HTTP:
			serve_http_free(s->args[i].arg);
			break;
		}
	}
	free(s->args);
	for (size_t i = 0; i < s->naccounts; i++) {
		store_watch_free(s->watches[i]);
		store_account_put(s->accounts[i]);
	}
	free(s->watches);
	free(s->accounts);
	store_free(s->store);
	dns_resolver_free(s->resolver);
	publicsuffix_free(s->psl);
	for (size_t i = 0; i < s->nbound; i++)
		free(s->bound[i].ip);
	free(s->bound);
	free(s->datadir);
}

int
serve_run(struct config *cfg, const struct serve_opts *o)
{
	struct server s = { 0 };
	struct net_params np = { 0 };
	struct buf err, tmpdir;
	struct store_err serr;
	sigset_t sigs;
	int sig = 0, rc = 1;
	unsigned forced;

	buf_init(&err, 1 << 16);
	buf_init(&tmpdir, 4096);
	s.cfg = cfg;
	s.localserve = o->localserve;
	s.log = log_ctx_init("serve", 0);
	log_set_format(LOG_FORMAT_LOGFMT);
	config_set_current(cfg);
	if (apply_log_levels(cfg, &err) == -1)
		goto out;
	s.datadir = config_path(cfg, cfg->st->data_dir);
	io_path_join(&tmpdir, s.datadir, "tmp");
	if (io_mkdir_p(tmpdir.data, 0770) == -1) {
		buf_addf(&err, "creating %s: %s (check DataDir in mox.conf)\n",
		    tmpdir.data, log_strerror(errno));
		goto out;
	}
	s.store = store_new(s.datadir, &serr);
	if (s.store == NULL) {
		buf_addf(&err, "opening data directory %s: %s (check DataDir in "
			       "mox.conf)\n",
		    s.datadir, serr.text);
		goto out;
	}
	log_info(&s.log, "starting", LF_STR("version", PACKAGE_VERSION),
	    LF_I64("pid", getpid()), LF_STR("config", cfg->path));

	/* Block the stop signals in every thread; main waits for them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (open_dns(&s, &err) == -1)
		goto out;
	np.workers = (unsigned)cfg->st->worker_pool_size;
	smtp_limit_configure(&cfg->st->limits); /* before any connection */
	s.net = net_start(&np, &err);
	if (s.net == NULL)
		goto out;
	for (size_t i = 0; i < cfg->st->listeners.n; i++) {
		const char *lname = cfg->st->listeners.keys[i];
		const struct config_listener *l = &cfg->st->listeners.vals[i];

		for (size_t k = 0; k < ARRAY_LEN(svc_defs); k++)
			if (listen_service(&s, lname, l, &svc_defs[k], &err) == -1)
				goto stop;
	}
	if (!o->localserve && getuid() == 0 && drop_privileges(&s, &err) == -1)
		goto stop;
	if (!o->localserve && getuid() == 0) {
		buf_adds(&err, "refusing to serve as root\n");
		goto stop;
	}
	if (ensure_receivedid_key(&s, &err) == -1 ||
	    open_accounts(&s, &err) == -1)
		goto stop;
	{
		struct queue_runner_params qp = { 0 };

		qp.datadir = s.datadir;
		qp.store = s.store;
		qp.resolver = s.resolver;
		qp.localserve = o->localserve;
		/* spec/queue.md 5.2-5.9: MTA-STS cache, DANE and TLS report
		 * results for direct delivery (localserve delivers locally). */
		if (!o->localserve) {
			s.queue_tls = queue_tls_params_new(cfg, s.datadir, false,
			    &err);
			if (s.queue_tls == NULL)
				goto stop;
			qp.tls = s.queue_tls;
		}
		s.queue = queue_runner_start(&qp, &err);
		if (s.queue == NULL)
			goto stop;
	}
	s.ctl = ctl_server_start(s.datadir, ctl_cmds, ARRAY_LEN(ctl_cmds), &s,
	    &err);
	if (s.ctl == NULL)
		goto stop;
	log_info(&s.log, "ready to serve", LF_U64("workers",
	    net_worker_count(s.net)));
	/* Wait for a stop signal; meanwhile look at domains.conf every
	 * second so a change is loaded (and logged) even when no session
	 * asks for the configuration. */
	for (;;) {
		struct timespec ts = { 1, 0 };

		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		config_put(config_get());
	}
	log_info(&s.log, "shutting down", LF_STR("signal",
	    sig == SIGINT ? "SIGINT" : "SIGTERM"));
	rc = 0;
stop:
	queue_runner_stop(s.queue);
	queue_tls_params_free(s.queue_tls);
	forced = net_stop(s.net, SERVE_GRACE_MS);
	if (forced > 0)
		log_info(&s.log, "closed connections at shutdown",
		    LF_U64("forced", forced));
	ctl_server_stop(s.ctl);
	if (rc == 0)
		log_info(&s.log, "stopped");
out:
	if (err.len > 0)
		fprintf(stderr, "%s: %s", cli.prog, err.data);
	server_free(&s);
	config_set_current(NULL);
	buf_release(&err);
	buf_release(&tmpdir);
	return rc;
}

int
cmd_serve(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct serve_opts o = { 0 };
	struct buf err;

	if (argc != 1)
		return cli_usage("serve", "");
	if (getuid() != 0) {
		cli_errorf("serve must be started as root: it binds the ports "
			   "and reads the keys, then runs as User from mox.conf "
			   "(for a development server as yourself, use mox "
			   "localserve)");
		return 1;
	}
	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(cli.config_path, &cfg, &err) == -1) {
		cli_errorf("loading config %s:\n%s", cli.config_path, err.data);
		buf_release(&err);
		return 1;
	}
	buf_release(&err);
	(void)argv;
	return serve_run(cfg, &o);
}
