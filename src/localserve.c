/*
 * localserve.c: `mox localserve` (spec/config.md section 9): on first use
 * write a complete configuration for loopback into a directory (TLS
 * certificate, DKIM key, admin password, mox.conf, domains.conf), then
 * serve from it. A directory that fails half way is removed again.
 */
#include <crypt.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "moxbuild.h"
#include "cli.h"
#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "localserve.h"
#include "maildir/store.h"
#include "serve.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define LOCALSERVE_ADMIN_PASSWORD "moxadmin"
#define LOCALSERVE_PASSWORD "moxmoxmox"

/* Listener ports: 1000 + the standard ones. */
static const struct {
	const char *field;
	int port;
	const char *path; /* web services */
	bool no_require_starttls;
} local_services[] = {
	{ "SMTP", 1025, NULL, false },
	{ "Submission", 1587, NULL, true },
	{ "Submissions", 1465, NULL, false },
	{ "IMAP", 1143, NULL, true },
	{ "IMAPS", 1993, NULL, false },
	{ "AccountHTTP", 1080, "/account/", false },
	{ "AccountHTTPS", 1443, "/account/", false },
	{ "AdminHTTP", 1080, "/admin/", false },
	{ "AdminHTTPS", 1443, "/admin/", false },
	{ "WebmailHTTP", 1080, "/webmail/", false },
	{ "WebmailHTTPS", 1443, "/webmail/", false },
	{ "WebAPIHTTP", 1080, "/webapi/", false },
	{ "WebAPIHTTPS", 1443, "/webapi/", false },
	{ "MetricsHTTP", 1081, NULL, false },
	{ "WebserverHTTP", 1080, NULL, false },
	{ "WebserverHTTPS", 1443, NULL, false },
};

void
localserve_write_moxconf(struct buf *out, const char *const *ips, size_t nips,
    unsigned uid)
{
	buf_adds(out,
	    "# mox.conf written by mox localserve: a server on loopback for "
	    "local\n# development and tests. See mox config describe-static "
	    "for all fields.\n");
	buf_adds(out, "DataDir: .\nLogLevel: traceauth\nUser: ");
	buf_addf(out, "%u\n", uid);
	buf_adds(out, "Hostname: localhost\nPedantic: true\n"
		      "AdminPasswordFile: adminpasswd\n"
		      "TLS:\n\tCA:\n\t\tAdditionalToSystem: true\n"
		      "\t\tCertFiles:\n\t\t\t- localhost.crt\n"
		      "Listeners:\n\tlocal:\n\t\tIPs:\n");
	for (size_t i = 0; i < nips; i++)
		buf_addf(out, "\t\t\t- %s\n", ips[i]);
	buf_adds(out, "\t\tTLS:\n\t\t\tKeyCerts:\n\t\t\t\t-\n"
		      "\t\t\t\t\tCertFile: localhost.crt\n"
		      "\t\t\t\t\tKeyFile: localhost.key\n");
	for (size_t i = 0; i < ARRAY_LEN(local_services); i++) {
		buf_addf(out, "\t\t%s:\n\t\t\tEnabled: true\n\t\t\tPort: %d\n",
		    local_services[i].field, local_services[i].port);
		if (local_services[i].path != NULL)
			buf_addf(out, "\t\t\tPath: %s\n", local_services[i].path);
		if (local_services[i].no_require_starttls)
			buf_adds(out, "\t\t\tNoRequireSTARTTLS: true\n");
	}
	buf_adds(out, "Postmaster:\n\tAccount: mox\n\tMailbox: Inbox\n");
}

void
localserve_write_domainsconf(struct buf *out)
{
	buf_adds(out,
	    "# domains.conf written by mox localserve. It is reloaded when it "
	    "changes.\n# See mox config describe-domains for all fields.\n"
	    "Domains:\n"
	    "\tlocalhost:\n"
	    "\t\tLocalpartCatchallSeparator: +\n"
	    "\t\tDKIM:\n"
	    "\t\t\tSelectors:\n"
	    "\t\t\t\tlocalserve:\n"
	    "\t\t\t\t\tExpiration: 72h0m0s\n"
	    "\t\t\t\t\tPrivateKeyFile: dkim.localserve.privatekey.pkcs8.pem\n"
	    "\t\t\tSign:\n"
	    "\t\t\t\t- localserve\n"
	    "Accounts:\n"
	    "\tmox:\n"
	    "\t\tDomain: localhost\n"
	    "\t\tDestinations:\n"
	    "\t\t\tmox@localhost: nil\n"
	    "\t\tRejectsMailbox: Rejects\n"
	    "\t\tAutomaticJunkFlags:\n"
	    "\t\t\tEnabled: true\n"
	    "\t\t\tJunkMailboxRegexp: ^(junk|spam)\n"
	    "\t\t\tNeutralMailboxRegexp: "
	    "^(inbox|neutral|postmaster|dmarc|tlsrpt|rejects)\n"
	    "\t\tJunkFilter:\n"
	    "\t\t\tThreshold: 0.950000\n"
	    "\t\t\tParams:\n"
	    "\t\t\t\tOnegrams: true\n"
	    "\t\t\t\tMaxPower: 0.010000\n"
	    "\t\t\t\tTopWords: 10\n"
	    "\t\t\t\tIgnoreWords: 0.100000\n"
	    "\t\t\t\tRareWords: 2\n"
	    "\t\tNoFirstTimeSenderDelay: true\n"
	    "\t\tKeepRetiredMessagePeriod: 72h0m0s\n"
	    "\t\tKeepRetiredWebhookPeriod: 72h0m0s\n"
	    "WebHandlers:\n"
	    "\t-\n"
	    "\t\tLogName: workdir\n"
	    "\t\tDomain: localhost\n"
	    "\t\tPathRegexp: ^/workdir/\n"
	    "\t\tDontRedirectPlainHTTP: true\n"
	    "\t\tWebStatic:\n"
	    "\t\t\tStripPrefix: /workdir/\n"
	    "\t\t\tRoot: .\n"
	    "\t\t\tListFiles: true\n");
}

static int
write_file(const char *dir, const char *name, const void *p, size_t n,
    mode_t mode, struct buf *err)
{
	struct buf path;
	int rc;

	buf_init(&path, 4096);
	io_path_join(&path, dir, name);
	rc = io_write_file_atomic(path.data, p, n, mode, err);
	buf_release(&path);
	return rc;
}

/* An ed25519 key as PKCS8 PEM, for DKIM signing (RFC 8463). */
static int
write_ed25519_key(const char *dir, const char *name, struct buf *err)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	int rc = -1, grc;

	grc = gnutls_x509_privkey_init(&key);
	if (grc == 0)
		grc = gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519,
		    256, 0);
	if (grc == 0)
		grc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM,
		    NULL, GNUTLS_PKCS_PLAIN, &pem);
	if (grc != 0) {
		buf_addf(err, "generating ed25519 key: %s", gnutls_strerror(grc));
		goto out;
	}
	rc = write_file(dir, name, pem.data, pem.size, 0600, err);
out:
	gnutls_free(pem.data);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

/* bcrypt hash of the admin password (AdminPasswordFile). */
static int
write_admin_password(const char *dir, const char *password, struct buf *err)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned char rnd[16];
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	struct buf line;
	const char *h;
	int rc = -1;

	buf_init(&line, 256);
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) != 0 ||
	    crypt_gensalt_rn("$2b$", 10, (const char *)rnd, sizeof(rnd), salt,
		sizeof(salt)) == NULL) {
		buf_adds(err, "generating bcrypt salt failed");
		goto out;
	}
	h = crypt_r(password, salt, cd);
	if (h == NULL || h[0] == '*') {
		buf_adds(err, "bcrypt hashing failed");
		goto out;
	}
	buf_addf(&line, "%s\n", h);
	rc = write_file(dir, "adminpasswd", line.data, line.len, 0660, err);
out:
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	buf_release(&line);
	return rc;
}

/* DataDir is the localserve directory itself. */
static int
set_account_password(const char *dir, const char *account,
    const char *password, struct buf *err)
{
	struct store_err serr;
	struct store *st = store_new(dir, &serr);
	struct store_account *a = NULL;
	int rc = -1;

	if (st == NULL ||
	    store_account_get(st, account, true, &a, &serr) == -1 ||
	    store_password_set(a, password, &serr) == -1) {
		buf_addf(err, "account %s: %s", account, serr.text);
		goto out;
	}
	rc = 0;
out:
	store_account_put(a);
	store_free(st);
	return rc;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
localserve_init_dir(const char *dir, const char *const *ips, size_t nips,
    struct buf *err)
{
	struct buf text, path1, path2;
	int rc = -1;

	buf_init(&text, 1 << 16);
	buf_init(&path1, 4096);
	buf_init(&path2, 4096);
	if (io_mkdir_p(dir, 0770) == -1) {
		buf_addf(err, "creating %s: %s", dir, log_strerror(errno));
		goto out;
	}
	io_path_join(&path1, dir, "localhost.crt");
	io_path_join(&path2, dir, "localhost.key");
	if (tls_selfsigned_generate("localhost", path1.data, path2.data, err) ==
		-1 ||
	    write_ed25519_key(dir, "dkim.localserve.privatekey.pkcs8.pem", err) ==
		-1 ||
	    write_admin_password(dir, LOCALSERVE_ADMIN_PASSWORD, err) == -1)
		goto fail;
	localserve_write_moxconf(&text, ips, nips, (unsigned)getuid());
	if (write_file(dir, "mox.conf", text.data, text.len, 0660, err) == -1)
		goto fail;
	buf_reset(&text);
	localserve_write_domainsconf(&text);
	if (write_file(dir, "domains.conf", text.data, text.len, 0660, err) ==
	    -1 ||
	    set_account_password(dir, "mox", LOCALSERVE_PASSWORD, err) == -1)
		goto fail;
	rc = 0;
	goto out;
fail:
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
out:
	buf_release(&text);
	buf_release(&path1);
	buf_release(&path2);
	return rc;
}

static void
print_intro(const char *dir, bool created)
{
	printf("mox %s, localserve: %s directory %s\n", PACKAGE_VERSION,
	    created ? "created new" : "using existing", dir);
	printf("\n"
	       "Account mox@localhost, password moxmoxmox; admin password "
	       "%s.\n"
	       "\n"
	       "  smtp://localhost:1025                              incoming "
	       "mail, any recipient\n"
	       "  smtps://mox%%40localhost:moxmoxmox@localhost:1465  submission "
	       "with TLS\n"
	       "  smtp://mox%%40localhost:moxmoxmox@localhost:1587   submission "
	       "without TLS\n"
	       "  imaps://mox%%40localhost:moxmoxmox@localhost:1993  IMAP with "
	       "TLS\n"
	       "  imap://mox%%40localhost:moxmoxmox@localhost:1143   IMAP "
	       "without TLS\n"
	       "  http://localhost:1080/account/  /webmail/  /webapi/  /admin/\n"
	       "  https://localhost:1443/account/ /webmail/  /webapi/  "
	       "/admin/\n"
	       "\n"
	       "Every recipient is accepted; unknown addresses go to "
	       "mox@localhost.\n"
	       "Recipient localparts that trigger errors, for testing: ending "
	       "in\n\"temperror\" (451), \"permerror\" (550), a code 400-600, or "
	       "\"timeout\"\n(no response); starting with \"mailfrom\" or "
	       "\"rcptto\" moves the error to\nMAIL FROM or RCPT TO, otherwise it "
	       "comes after DATA.\n\n",
	    LOCALSERVE_ADMIN_PASSWORD);
	fflush(stdout);
}

int
cmd_localserve(int argc, char **argv)
{
	const char *dir = NULL, *ip = NULL;
	const char *default_ips[] = { "127.0.0.1", "::1" };
	bool initonly = false, created = false;
	struct buf defdir, err, conf;
	struct config *cfg = NULL;
	struct serve_opts o = { .localserve = true };
	struct stat st;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];

		if (f[0] == '-' && f[1] == '-')
			f++;
		if (strcmp(f, "-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(f, "-ip") == 0 && i + 1 < argc)
			ip = argv[++i];
		else if (strcmp(f, "-initonly") == 0)
			initonly = true;
		else
			return cli_usage("localserve",
			    "[-dir DIR] [-ip IP] [-initonly]");
	}
	buf_init(&defdir, 4096);
	buf_init(&err, CONFIG_ERR_MAX);
	buf_init(&conf, 4096);
	if (dir == NULL) {
		const char *home = getenv("HOME");

		if (home == NULL || *home == '\0') {
			cli_errorf("localserve: HOME is not set; give -dir DIR");
			goto out;
		}
		buf_addf(&defdir, "%s/.config/mox-localserve", home);
		dir = defdir.data;
	}
	if (stat(dir, &st) == -1) {
		const char *one[1];
		const char *const *ips = default_ips;
		size_t nips = 2;

		if (ip != NULL) {
			one[0] = ip;
			ips = one;
			nips = 1;
		}
		if (localserve_init_dir(dir, ips, nips, &err) == -1) {
			cli_errorf("localserve: initialising %s: %s", dir, err.data);
			goto out;
		}
		created = true;
	} else if (!S_ISDIR(st.st_mode)) {
		cli_errorf("localserve: %s exists and is not a directory", dir);
		goto out;
	} else if (ip != NULL) {
		cli_errorf("localserve: -ip only applies when the directory is "
			   "created; edit %s/mox.conf instead", dir);
		goto out;
	}
	if (initonly) {
		printf("localserve: %s directory %s\n",
		    created ? "initialised" : "already present", dir);
		rc = 0;
		goto out;
	}
	io_path_join(&conf, dir, "mox.conf");
	if (config_load(conf.data, &cfg, &err) == -1) {
		cli_errorf("localserve: loading %s:\n%s", conf.data, err.data);
		goto out;
	}
	print_intro(dir, created);
	rc = serve_run(cfg, &o);
out:
	buf_release(&defdir);
	buf_release(&err);
	buf_release(&conf);
	return rc;
}
