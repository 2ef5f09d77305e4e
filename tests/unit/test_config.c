/*
 * test_config.c: loading, validation errors (file:line: field), defaults,
 * lookups, writing and reloading of mox.conf and domains.conf.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "config/config.h"
#include "config/sconf.h"
#include "lib/banned.h"

static char tmpdir[256];
static char origdir[4096];

static const char *
data_dir(struct buf *b, const char *name)
{
	const char *src = getenv("MOX_SRCDIR");

	buf_reset(b);
	buf_addf(b, "%s/tests/unit/data/config/%s", src != NULL ? src : MOX_SRCDIR,
	    name);
	return b->data;
}

static void
write_file(const char *path, const char *text)
{
	struct buf err;

	buf_init(&err, 4096);
	if (io_write_file_atomic(path, text, strlen(text), 0644, &err) == -1)
		fail_msg("write %s: %s", path, err.data);
	buf_release(&err);
}

/* Set the mtime of path to a distinct value, so a change is seen even
 * within one timestamp granule. */
static void
bump_mtime(const char *path, int secs)
{
	struct timespec ts[2];

	ts[0].tv_sec = time(NULL) + secs;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (utimensat(AT_FDCWD, path, ts, 0) == -1)
		fail_msg("utimensat %s: %d", path, errno);
}

static void
copy_file(const char *from, const char *to)
{
	struct buf text, err;

	buf_init(&text, SCONF_FILE_MAX);
	buf_init(&err, 4096);
	if (io_read_file(from, &text, &err) == -1)
		fail_msg("read %s: %s", from, err.data);
	write_file(to, text.data);
	buf_release(&text);
	buf_release(&err);
}

static int
setup(void **state)
{
	/* mkdtemp() replaces the trailing six template characters. */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.%c%c%c%c%c%c", 'X',
	    'X', 'X', 'X', 'X', 'X');
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (getcwd(origdir, sizeof(origdir)) == NULL)
		return -1;
	if (chdir(tmpdir) == -1)
		return -1;
	log_init();
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	config_set_current(NULL);
	(void)unlink("mox.conf");
	(void)unlink("domains.conf");
	if (chdir(origdir) == -1)
		return -1;
	(void)rmdir(tmpdir);
	log_shutdown();
	(void)state;
	return 0;
}

static struct config *
load_ok(const char *path)
{
	struct config *c = NULL;
	struct buf err;

	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(path, &c, &err) == -1)
		fail_msg("load %s: %s", path, err.data);
	buf_release(&err);
	return c;
}

static void
test_localserve(void **state)
{
	struct config_dest_ref ref;
	struct buf p;
	struct config *c;
	const struct config_listener *l;
	char *kp;

	buf_init(&p, 4096);
	c = load_ok(data_dir(&p, "localserve/mox.conf"));
	l = config_listener_find(c, "local");
	assert_non_null(l);
	assert_int_equal(l->smtp.port, 1025);
	assert_int_equal(l->smtp.first_time_sender_delay, 15 * NS_PER_SEC);
	assert_int_equal(l->smtp_max_message_size, 104857600);
	assert_string_equal(l->admin_http.path, "/admin/");
	assert_string_equal(l->account_http.path, "/account/");
	assert_string_equal(l->tls->min_version, "TLSv1.2");
	assert_int_equal(l->pprof_http.port, 8011);
	assert_string_equal(c->st->user, "1000");
	assert_true(c->st->worker_pool_size >= 8);
	assert_string_equal(c->st->initial_mailboxes.special_use.draft,
	    "Drafts");
	kp = config_path(c, l->tls->key_certs.v[0].key_file);
	assert_non_null(strstr(kp, "data/config/localserve/localhost.key"));
	free(kp);

	assert_int_equal(config_lookup_address(c, "mox", "localhost", &ref), 0);
	assert_string_equal(ref.account_name, "mox");
	assert_string_equal(ref.mailbox, "Inbox");
	assert_false(ref.catchall);
	assert_int_equal(config_lookup_address(c, "MOX+tag", "LocalHost", &ref),
	    0);
	assert_string_equal(ref.dest_key, "mox@localhost");
	assert_int_equal(config_lookup_address(c, "other", "localhost", &ref),
	    -1);
	assert_int_equal(config_lookup_address(c, "mox", "example.com", &ref),
	    -1);
	assert_non_null(config_account_find(c, "mox"));
	assert_null(config_account_find(c, "nobody"));
	assert_int_equal(config_account_find(c, "mox")
			     ->eff.max_outgoing_messages_per_day,
	    1000);
	assert_int_equal(c->dyn.web_handlers.n, 1);
	config_put(c);
	buf_release(&p);
	(void)state;
}

static void
test_quickstart(void **state)
{
	struct config_dest_ref ref;
	struct buf p;
	struct config *c;
	const struct config_domain *d;

	buf_init(&p, 4096);
	c = load_ok(data_dir(&p, "quickstart/mox.conf"));
	assert_int_equal(c->st->worker_pool_size, 16);
	assert_int_equal(c->st->dns_resolvers.n, 2);
	assert_int_equal(c->st->acme.vals[0].port, 443);
	assert_int_equal(config_listener_find(c, "public")->imaps.port, 993);
	/* Catchall for unknown localparts of example.com. */
	assert_int_equal(config_lookup_address(c, "nobody", "example.com",
			     &ref),
	    0);
	assert_true(ref.catchall);
	assert_string_equal(ref.mailbox, "Catchall");
	/* Destination key written with capitals matches canonically. */
	assert_int_equal(config_lookup_address(c, "other", "example.com",
			     &ref),
	    0);
	assert_string_equal(ref.account_name, "other");
	assert_non_null(config_alias_find(c, "Team", "example.com"));
	assert_null(config_alias_find(c, "team", "example.org"));
	d = config_domain_find(c, "example.org");
	assert_non_null(d);
	assert_true(d->eff.reports_only);
	assert_false(config_domain_find(c, "EXAMPLE.com")->eff.reports_only);
	assert_int_equal(config_lookup_address(c, "x", "example.org", &ref),
	    -1);
	config_put(c);
	buf_release(&p);
	(void)state;
}

/* Writing domains.conf and loading the result gives the same text. */
static void
test_write_domains(void **state)
{
	static const char *const dirs[] = { "localserve", "quickstart" };

	for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
		struct buf p, name, out1, out2;
		struct config *c, *c2;

		buf_init(&p, 4096);
		buf_init(&name, 4096);
		buf_init(&out1, SCONF_FILE_MAX);
		buf_init(&out2, SCONF_FILE_MAX);
		buf_addf(&name, "%s/mox.conf", dirs[i]);
		c = load_ok(data_dir(&p, name.data));
		copy_file(p.data, "mox.conf");
		if (config_write_domains(c, &out1) == -1)
			fail_msg("%s: write: %s", dirs[i], out1.data);
		write_file("domains.conf", out1.data);
		c2 = load_ok("mox.conf");
		assert_int_equal(config_write_domains(c2, &out2), 0);
		if (strcmp(out1.data, out2.data) != 0)
			fail_msg("%s: round trip differs:\n%s\n---\n%s",
			    dirs[i], out1.data, out2.data);
		config_put(c);
		config_put(c2);
		buf_release(&name);
		buf_release(&p);
		buf_release(&out1);
		buf_release(&out2);
	}
	(void)state;
}

static const char mox_base[] =
    "DataDir: data\n"                   /* 1 */
    "LogLevel: info\n"                  /* 2 */
    "Hostname: mail.example.com\n"      /* 3 */
    "Listeners:\n"                      /* 4 */
    "\tlocal:\n"                        /* 5 */
    "\t\tIPs:\n"                        /* 6 */
    "\t\t\t- 127.0.0.1\n"               /* 7 */
    "\t\tSMTP:\n"                       /* 8 */
    "\t\t\tEnabled: true\n"             /* 9 */
    "\t\t\tNoSTARTTLS: true\n"          /* 10 */
    "Postmaster:\n"                     /* 11 */
    "\tAccount: admin\n"                /* 12 */
    "\tMailbox: Postmaster\n"           /* 13 */
    "Transports:\n"                     /* 14 */
    "\trelay:\n"                        /* 15 */
    "\t\tSMTP:\n"                       /* 16 */
    "\t\t\tHost: relay.example.net\n";  /* 17 */

static const char dom_base[] =
    "Domains:\n"                        /* 1 */
    "\texample.com:\n"                  /* 2 */
    "\t\tLocalpartCatchallSeparator: +\n" /* 3 */
    "Accounts:\n"                       /* 4 */
    "\tadmin:\n"                        /* 5 */
    "\t\tDomain: example.com\n"         /* 6 */
    "\t\tDestinations:\n"               /* 7 */
    "\t\t\tadmin@example.com: nil\n";   /* 8 */

/* Each case replaces (full) or extends (extra) the base files; want holds
 * lines that must all be in the error text, nerr the number of lines. */
static const struct {
	const char *name;
	const char *mox;       /* full mox.conf, or NULL for the base */
	const char *mox_extra; /* appended to mox.conf */
	const char *dom;       /* full domains.conf, or NULL for the base */
	const char *dom_extra; /* appended to domains.conf */
	int nerr;
	const char *want[4];
} vcases[] = {
	{ "base is valid", NULL, NULL, NULL, NULL, 0, { NULL } },
	{ "log level", NULL, "PackageLogLevels:\n\tsmtpserver: loud\n", NULL,
	    NULL, 1,
	    { "mox.conf:19: PackageLogLevels.smtpserver: unknown log level "
	      "loud" } },
	{ "resolvers", NULL,
	    "DNSResolvers:\n\t- 127.0.0.1\n\t- ::1:53\n\t- [::1]:53\n"
	    "\t- 10.0.0.1:0\n",
	    NULL, NULL, 3,
	    { "mox.conf:19: DNSResolvers: expected ip:port: 127.0.0.1",
		"mox.conf:20: DNSResolvers: invalid IP address (IPv6 needs "
		"brackets): ::1:53",
		"mox.conf:22: DNSResolvers: invalid port: 10.0.0.1:0" } },
	{ "worker pool", NULL, "WorkerPoolSize: 0\n", NULL, NULL, 1,
	    { "mox.conf:18: WorkerPoolSize: must be between 1 and 4096" } },
	{ "worker pool type", NULL, "WorkerPoolSize: many\n", NULL, NULL, 1,
	    { "mox.conf:18: WorkerPoolSize: expected integer" } },
	{ "limits count and range", NULL,
	    "Limits:\n"
	    "\tConnectionsPerMinute:\n\t\t- 3\n\t\t- 9\n"
	    "\tOpenConnections:\n\t\t- 1\n\t\t- 0\n\t\t- 5\n"
	    "\tAuthFailuresPerMinute:\n\t\t- -2\n\t\t- 1\n\t\t- 1\n"
	    "\tAuthFailuresPerDay:\n\t\t- 1\n\t\t- 2\n\t\t- 3\n"
	    "\t\t- 4\n",
	    NULL, NULL, 4,
	    { "mox.conf:19: Limits.ConnectionsPerMinute: expected 3 numbers "
	      "(for IPv4 /32, /26, /21; IPv6 /64, /48, /32), found 2",
		"mox.conf:24: Limits.OpenConnections: must be between 1 and "
		"1000000000: 0",
		"mox.conf:27: Limits.AuthFailuresPerMinute: must be between 1 "
		"and 1000000000: -2",
		"mox.conf:30: Limits.AuthFailuresPerDay: expected 3 numbers "
		"(for IPv4 /32, /26, /21; IPv6 /64, /48, /32), found 4" } },
	{ "limits range high", NULL,
	    "Limits:\n\tAuthFailuresPerMinute:\n\t\t- 1\n\t\t- 1\n"
	    "\t\t- 1000000001\n",
	    NULL, NULL, 1,
	    { "mox.conf:22: Limits.AuthFailuresPerMinute: must be between 1 "
	      "and 1000000000: 1000000001" } },
	{ "limits type", NULL,
	    "Limits:\n\tAuthFailuresPerDay:\n\t\t- 1\n\t\t- many\n"
	    "\t\t- 3\n",
	    NULL, NULL, 1,
	    { "mox.conf:21: Limits.AuthFailuresPerDay[1]: expected integer" } },
	{ "limits on one line", NULL,
	    "Limits:\n\tOpenConnections: 3 9 27\n", NULL, NULL, 1,
	    { "mox.conf:19: Limits.OpenConnections: expected list items on "
	      "the following lines, indented one more tab" } },
	{ "limits unknown field", NULL,
	    "Limits:\n\tConnectionsPerHour:\n\t\t- 1\n", NULL, NULL, 1,
	    { "mox.conf:19: Limits.ConnectionsPerHour: unknown field" } },
	{ "transport two methods", NULL,
	    "\t\tDirect:\n\t\t\tDisableIPv4: true\n", NULL, NULL, 1,
	    { "mox.conf:15: Transports.relay: exactly one of Submissions, "
	      "Submission, SMTP, Socks, Direct and Fail required, found 2" } },
	{ "transport submissions", NULL,
	    "\tsmarthost:\n\t\tSubmissions:\n\t\t\tHost: smtp.example.org\n"
	    "\t\t\tNoSTARTTLS: true\n\t\t\tAuth:\n\t\t\t\tUsername: u\n"
	    "\t\t\t\tPassword: p\n\t\t\t\tMechanisms:\n"
	    "\t\t\t\t\t- PLAIN\n\t\t\t\t\t- LOGIN\n\t\t\t\t\t- PLAIN\n"
	    "\tboth:\n\t\tDirect:\n\t\t\tDisableIPv4: true\n"
	    "\t\t\tDisableIPv6: true\n",
	    NULL, NULL, 4,
	    { "mox.conf:21: Transports.smarthost.Submissions.NoSTARTTLS: not "
	      "possible with Submissions",
		"mox.conf:27: Transports.smarthost.Submissions.Auth."
		"Mechanisms: unknown mechanism LOGIN",
		"mox.conf:28: Transports.smarthost.Submissions.Auth."
		"Mechanisms: duplicate mechanism PLAIN",
		"mox.conf:32: Transports.both.Direct.DisableIPv6: cannot "
		"disable both IPv4 and IPv6" } },
	{ "postmaster account", NULL, NULL,
	    "Domains:\n\texample.com: nil\nAccounts:\n\tother:\n"
	    "\t\tDomain: example.com\n",
	    NULL, 1,
	    { "mox.conf:12: Postmaster.Account: account admin not found in "
	      "domains.conf" } },
	{ "listener checks",
	    "DataDir: data\n"
	    "LogLevel: info\n"
	    "Hostname: mail..example.com\n"
	    "ACME:\n"
	    "\tle:\n"
	    "\t\tDirectoryURL: ftp://acme.example\n"
	    "\t\tContactEmail: admin@example.com\n"
	    "Listeners:\n"
	    "\tpublic:\n"
	    "\t\tIPs:\n"
	    "\t\t\t- 192.0.2.300\n"
	    "\t\tNATIPs:\n"
	    "\t\t\t- 127.0.0.1\n"
	    "\t\tTLS:\n"
	    "\t\t\tACME: other\n"
	    "\t\t\tMinVersion: TLSv1.4\n"
	    "\t\tSubmissions:\n"
	    "\t\t\tEnabled: true\n"
	    "\t\t\tPort: 70000\n"
	    "\t\tAdminHTTP:\n"
	    "\t\t\tEnabled: true\n"
	    "\t\t\tPath: admin/\n"
	    "\tinternal:\n"
	    "\t\tIPs:\n"
	    "\t\t\t- ::1\n"
	    "\t\tIMAPS:\n"
	    "\t\t\tEnabled: true\n"
	    "Postmaster:\n"
	    "\tAccount: admin\n"
	    "\tMailbox: Postmaster\n",
	    NULL, NULL, NULL, 9,
	    { "mox.conf:3: Hostname: invalid domain name: mail..example.com",
		"mox.conf:13: Listeners.public.NATIPs: IP address 127.0.0.1 "
		"must not be loopback or unspecified",
		"mox.conf:19: Listeners.public.Submissions.Port: port 70000 "
		"out of range 1-65535",
		"mox.conf:26: Listeners.internal.IMAPS: service requires TLS, "
		"but listener has no TLS config" } },
	{ "unknown field in domains.conf", NULL, NULL, NULL,
	    "Bogus: 1\n", 1, { "domains.conf:9: Bogus: unknown field" } },
	{ "both files", NULL, "Hostnam: x\n", NULL, "Bogus: 1\n", 2,
	    { "mox.conf:18: Hostnam: unknown field",
		"domains.conf:9: Bogus: unknown field" } },
	{ "dkim sign and selector",
	    NULL, NULL,
	    "Domains:\n"
	    "\texample.com:\n"
	    "\t\tDKIM:\n"
	    "\t\t\tSelectors:\n"
	    "\t\t\t\ts1:\n"
	    "\t\t\t\t\tHash: md5\n"
	    "\t\t\t\t\tHeaders:\n"
	    "\t\t\t\t\t\t- To\n"
	    "\t\t\t\t\tExpiration: 3d\n"
	    "\t\t\t\t\tPrivateKeyFile: dkim/s1.pem\n"
	    "\t\t\tSign:\n"
	    "\t\t\t\t- s1\n"
	    "\t\t\t\t- s2\n"
	    "Accounts:\n"
	    "\tadmin:\n"
	    "\t\tDomain: example.com\n",
	    NULL, 4,
	    { "domains.conf:6: Domains.example.com.DKIM.Selectors.s1.Hash: "
	      "unknown hash md5 (sha256 or sha1)",
		"domains.conf:7: Domains.example.com.DKIM.Selectors.s1."
		"Headers: headers must include From (RFC 6376 5.4)",
		"domains.conf:9: Domains.example.com.DKIM.Selectors.s1."
		"Expiration: invalid duration 3d",
		"domains.conf:13: Domains.example.com.DKIM.Sign: unknown "
		"selector s2" } },
	{ "routes and rulesets", NULL, NULL, NULL,
	    "\t\t\tx@example.com:\n"
	    "\t\t\t\tRulesets:\n"
	    "\t\t\t\t\t-\n"
	    "\t\t\t\t\t\tMailbox: Nowhere\n"
	    "\t\t\t\t\t-\n"
	    "\t\t\t\t\t\tSMTPMailFromRegexp: (unclosed\n"
	    "\t\t\t\t\t\tIsForward: true\n"
	    "\t\t\t\t\t\tMailbox: Fwd\n"
	    "Routes:\n"
	    "\t-\n"
	    "\t\tToDomain:\n"
	    "\t\t\t- .example.net\n"
	    "\t\tTransport: nope\n",
	    4,
	    { "domains.conf:11: Accounts.admin.Destinations.x@example.com."
	      "Rulesets[0]: ruleset needs at least one condition: "
	      "SMTPMailFromRegexp, MsgFromRegexp, VerifiedDomain or "
	      "HeadersRegexp",
		"domains.conf:14: Accounts.admin.Destinations.x@example.com."
		"Rulesets[1].SMTPMailFromRegexp: invalid regular expression "
		"at offset 9: missing closing parenthesis",
		"domains.conf:15: Accounts.admin.Destinations.x@example.com."
		"Rulesets[1].IsForward: IsForward needs SMTPMailFromRegexp "
		"and VerifiedDomain",
		"domains.conf:21: Routes[0].Transport: unknown transport "
		"nope" } },
	{ "addresses", NULL, NULL, NULL,
	    "\t\t\ta+b@example.com: nil\n"
	    "\t\t\tx@unknown.example: nil\n"
	    "\tsecond:\n"
	    "\t\tDomain: example.com\n"
	    "\t\tDestinations:\n"
	    "\t\t\tAdmin@Example.COM: nil\n"
	    "\t\tFromIDLoginAddresses:\n"
	    "\t\t\t- admin@example.com\n"
	    "\t\t\t- other@example.com\n",
	    4,
	    { "domains.conf:9: Accounts.admin.Destinations.a+b@example.com: "
	      "localpart must not contain the domain's catchall separator",
		"domains.conf:10: Accounts.admin.Destinations."
		"x@unknown.example: unknown domain unknown.example",
		"domains.conf:14: address admin@example.com configured more "
		"than once (first on line 8)",
		"domains.conf:17: Accounts.second.FromIDLoginAddresses: "
		"other@example.com is not an address of this account" } },
	{ "account settings", NULL, NULL, NULL,
	    "\t\tRejectsMailbox: inbox\n"
	    "\t\tJunkFilter:\n"
	    "\t\t\tThreshold: 1.5\n"
	    "\t\t\tParams:\n"
	    "\t\t\t\tMaxPower: 0.6\n"
	    "\t\t\t\tTopWords: 10\n"
	    "\t\tOutgoingWebhook:\n"
	    "\t\t\tURL: ftp://hooks.example\n"
	    "\t\t\tEvents:\n"
	    "\t\t\t\t- bogus\n"
	    "\t\tIncomingWebhook:\n"
	    "\t\t\tURL: not a url\n",
	    6,
	    { "domains.conf:9: Accounts.admin.RejectsMailbox: cannot be Inbox",
		"domains.conf:13: Accounts.admin.JunkFilter.Params.MaxPower: "
		"must be at least 0 and below 0.5",
		"domains.conf:18: Accounts.admin.OutgoingWebhook.Events: "
		"unknown event bogus",
		"domains.conf:20: Accounts.admin.IncomingWebhook.URL: invalid "
		"URL: not a url" } },
	{ "web handlers", NULL, NULL, NULL,
	    "WebDomainRedirects:\n"
	    "\texample.org: example.org\n"
	    "WebHandlers:\n"
	    "\t-\n"
	    "\t\tDomain: example.com\n"
	    "\t\tPathRegexp: /x\n"
	    "\t\tWebStatic:\n"
	    "\t\t\tRoot: /srv\n"
	    "\t\tWebInternal:\n"
	    "\t\t\tBasePath: /admin\n"
	    "\t\t\tService: shell\n"
	    "\t-\n"
	    "\t\tDomain: example.com\n"
	    "\t\tPathRegexp: ^/r/\n"
	    "\t\tWebRedirect:\n"
	    "\t\t\tBaseURL: https://example.org/path\n"
	    "\t\t\tStatusCode: 200\n",
	    7,
	    { "domains.conf:10: WebDomainRedirects.example.org: domain cannot "
	      "redirect to itself",
		"domains.conf:14: WebHandlers[0].PathRegexp: must start with ^",
		"domains.conf:12: WebHandlers[0]: exactly one of WebStatic, "
		"WebRedirect, WebForward and WebInternal required, found 2",
		"domains.conf:24: WebHandlers[1].WebRedirect.BaseURL: BaseURL "
		"must not have a path" } },
	{ "domain features", NULL, NULL,
	    "Domains:\n"
	    "\texample.com:\n"
	    "\t\tMTASTS:\n"
	    "\t\t\tPolicyID: id-1\n"
	    "\t\t\tMode: strict\n"
	    "\t\t\tMaxAge: 24h\n"
	    "\t\tDMARC:\n"
	    "\t\t\tLocalpart: dmarc\n"
	    "\t\t\tAccount: nobody\n"
	    "\t\t\tMailbox: DMARC\n"
	    "\t\tAliases:\n"
	    "\t\t\tlist:\n"
	    "\t\t\t\tAddresses:\n"
	    "\t\t\t\t\t- stranger@example.com\n"
	    "\tbad_domain-.example: nil\n"
	    "Accounts:\n"
	    "\tadmin:\n"
	    "\t\tDomain: example.net\n",
	    NULL, 7,
	    { "domains.conf:4: Domains.example.com.MTASTS.PolicyID: 1 to 32 "
	      "letters and digits required",
		"domains.conf:3: Domains.example.com.MTASTS: MTA-STS needs a "
		"listener with MTASTSHTTPS enabled",
		"domains.conf:15: Domains.bad_domain-.example: invalid domain "
		"name",
		"domains.conf:14: Domains.example.com.Aliases.list.Addresses: "
		"stranger@example.com is not an address of a local account" } },
	{ "alias and account address", NULL, NULL,
	    "Domains:\n"
	    "\texample.com:\n"
	    "\t\tAliases:\n"
	    "\t\t\tADMIN:\n"
	    "\t\t\t\tAddresses:\n"
	    "\t\t\t\t\t- admin@example.com\n"
	    "Accounts:\n"
	    "\tadmin:\n"
	    "\t\tDomain: example.com\n"
	    "\t\tDestinations:\n"
	    "\t\t\tadmin@example.com: nil\n",
	    NULL, 1,
	    { "domains.conf:11: address admin@example.com configured more "
	      "than once (first on line 4)" } },
	{ "mailboxes", NULL,
	    "InitialMailboxes:\n\tSpecialUse:\n\t\tSent: INBOX\n"
	    "\tRegular:\n\t\t- Lists//x\n"
	    "DefaultMailboxes:\n\t- Archive\n",
	    NULL, NULL, 3,
	    { "mox.conf:23: DefaultMailboxes: DefaultMailboxes and "
	      "InitialMailboxes are exclusive",
		"mox.conf:20: InitialMailboxes.SpecialUse.Sent: Inbox is "
		"always created",
		"mox.conf:22: InitialMailboxes.Regular: invalid mailbox name "
		"Lists//x" } },
};

static void
test_validation(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(vcases); i++) {
		struct buf mox, dom, err;
		struct config *c = NULL;
		int rc, lines = 0;

		buf_init(&mox, 1 << 20);
		buf_init(&dom, 1 << 20);
		buf_init(&err, CONFIG_ERR_MAX);
		buf_adds(&mox, vcases[i].mox != NULL ? vcases[i].mox : mox_base);
		if (vcases[i].mox_extra != NULL)
			buf_adds(&mox, vcases[i].mox_extra);
		buf_adds(&dom, vcases[i].dom != NULL ? vcases[i].dom : dom_base);
		if (vcases[i].dom_extra != NULL)
			buf_adds(&dom, vcases[i].dom_extra);
		write_file("mox.conf", mox.data);
		write_file("domains.conf", dom.data);
		rc = config_load("mox.conf", &c, &err);
		for (const char *p = err.data; *p != '\0'; p++)
			lines += *p == '\n';
		if (getenv("TEST_CONFIG_DUMP") != NULL) {
			printf("== %s (rc %d)\n%s", vcases[i].name, rc, err.data);
			config_free(c);
			buf_release(&mox);
			buf_release(&dom);
			buf_release(&err);
			continue;
		}
		if ((rc == 0) != (vcases[i].nerr == 0) ||
		    lines != vcases[i].nerr)
			fail_msg("case %s: rc %d, %d errors, want %d:\n%s",
			    vcases[i].name, rc, lines, vcases[i].nerr, err.data);
		for (size_t j = 0; j < ARRAY_LEN(vcases[i].want) &&
		     vcases[i].want[j] != NULL;
		     j++) {
			struct buf line;

			buf_init(&line, 4096);
			buf_addf(&line, "%s\n", vcases[i].want[j]);
			if (strstr(err.data, line.data) == NULL)
				fail_msg("case %s: missing \"%s\" in:\n%s",
				    vcases[i].name, vcases[i].want[j], err.data);
			buf_release(&line);
		}
		config_free(c);
		buf_release(&mox);
		buf_release(&dom);
		buf_release(&err);
	}
	(void)state;
}

static void
test_missing_files(void **state)
{
	struct config *c = NULL;
	struct buf err;

	buf_init(&err, CONFIG_ERR_MAX);
	(void)unlink("mox.conf");
	(void)unlink("domains.conf");
	assert_int_equal(config_load("mox.conf", &c, &err), -1);
	assert_non_null(strstr(err.data, "mox.conf"));
	write_file("mox.conf", mox_base);
	buf_reset(&err);
	assert_int_equal(config_load("mox.conf", &c, &err), -1);
	assert_non_null(strstr(err.data, "domains.conf: "));
	buf_release(&err);
	(void)state;
}

/* Limits: absent gives the defaults of spec/smtp.md 13; a field that is
 * set replaces its three numbers only. */
static void
test_limits(void **state)
{
	static const unsigned rate_dflt[3] = { 300, 900, 2700 };
	static const unsigned conns_dflt[3] = { 30, 90, 270 };
	static const unsigned authm_dflt[3] = { 10, 30, 90 };
	static const unsigned authd_dflt[3] = { 50, 150, 450 };
	static const unsigned rate[3] = { 3, 9, 27 };
	static const unsigned authd[3] = { 5, 1, 2 }; /* any order */
	const struct config_limits *l;
	struct config *c;
	struct buf mox;

	buf_init(&mox, 1 << 20);
	write_file("mox.conf", mox_base);
	write_file("domains.conf", dom_base);
	c = load_ok("mox.conf");
	l = &c->st->limits;
	assert_memory_equal(l->eff.connections_per_minute, rate_dflt,
	    sizeof(rate_dflt));
	assert_memory_equal(l->eff.open_connections, conns_dflt,
	    sizeof(conns_dflt));
	assert_memory_equal(l->eff.auth_failures_per_minute, authm_dflt,
	    sizeof(authm_dflt));
	assert_memory_equal(l->eff.auth_failures_per_day, authd_dflt,
	    sizeof(authd_dflt));
	config_put(c);

	buf_addf(&mox, "%sLimits:\n"
		       "\tConnectionsPerMinute:\n\t\t- 3\n\t\t- 9\n\t\t- 27\n"
		       "\tAuthFailuresPerDay:\n\t\t- 5\n\t\t- 1\n\t\t- 2\n",
	    mox_base);
	write_file("mox.conf", mox.data);
	c = load_ok("mox.conf");
	l = &c->st->limits;
	assert_int_equal(l->connections_per_minute.n, 3);
	assert_int_equal(l->open_connections.n, 0);
	assert_memory_equal(l->eff.connections_per_minute, rate, sizeof(rate));
	assert_memory_equal(l->eff.open_connections, conns_dflt,
	    sizeof(conns_dflt));
	assert_memory_equal(l->eff.auth_failures_per_minute, authm_dflt,
	    sizeof(authm_dflt));
	assert_memory_equal(l->eff.auth_failures_per_day, authd,
	    sizeof(authd));
	config_put(c);
	buf_release(&mox);
	(void)state;
}

/* config test also wants the files the configuration names. */
static void
test_config_test(void **state)
{
	struct buf p, out;

	buf_init(&p, 4096);
	buf_init(&out, CONFIG_ERR_MAX);
	assert_int_equal(config_test(data_dir(&p, "localserve/mox.conf"), &out),
	    -1);
	assert_non_null(strstr(out.data, "KeyFile: cannot read "));
	assert_non_null(strstr(out.data,
	    "Domains.localhost.DKIM.Selectors.localserve.PrivateKeyFile: "
	    "cannot read "));
	write_file("mox.conf", mox_base);
	write_file("domains.conf", dom_base);
	buf_reset(&out);
	assert_int_equal(config_test("mox.conf", &out), 0);
	assert_string_equal(out.data, "config OK\n");
	buf_release(&p);
	buf_release(&out);
	(void)state;
}

static void
test_describe(void **state)
{
	struct buf out;

	buf_init(&out, SCONF_FILE_MAX);
	config_describe_static(&out);
	assert_non_null(strstr(out.data, "\nDataDir:\n"));
	assert_non_null(strstr(out.data,
	    "# (optional)\nDNSResolvers:\n\t- \n"));
	assert_non_null(strstr(out.data, "\nLimits:\n"));
	assert_non_null(strstr(out.data,
	    "(optional)\n\tConnectionsPerMinute:\n\t\t- 0\n"));
	assert_non_null(strstr(out.data, "Listeners:\n\tx:\n"));
	buf_reset(&out);
	config_describe_domains(&out);
	assert_non_null(strstr(out.data, "Domains:\n\tx:\n"));
	assert_non_null(strstr(out.data, "\t\t\t\tRulesets:\n\t\t\t\t\t-\n"));
	buf_release(&out);
	(void)state;
}

static void
test_reload(void **state)
{
	struct config *c0, *c1, *c2;
	struct buf dom, err;

	buf_init(&dom, 1 << 20);
	buf_init(&err, CONFIG_ERR_MAX);
	write_file("mox.conf", mox_base);
	write_file("domains.conf", dom_base);
	bump_mtime("domains.conf", -100);
	config_set_current(load_ok("mox.conf"));
	c0 = config_get();
	assert_non_null(c0);
	assert_int_equal(config_reload_domains(&err), 0);

	/* A valid change becomes a new snapshot sharing the static part. */
	buf_addf(&dom, "%s\tbob:\n\t\tDomain: example.com\n", dom_base);
	write_file("domains.conf", dom.data);
	bump_mtime("domains.conf", -50);
	assert_int_equal(config_reload_domains(&err), 1);
	c1 = config_get();
	assert_ptr_not_equal(c0, c1);
	assert_ptr_equal(c0->st, c1->st);
	assert_non_null(config_account_find(c1, "bob"));
	assert_null(config_account_find(c0, "bob"));

	/* An invalid change keeps the previous snapshot. */
	write_file("domains.conf", "Domains:\n\tbroken\n");
	bump_mtime("domains.conf", -20);
	assert_int_equal(config_reload_domains(&err), -1);
	assert_non_null(strstr(err.data, "domains.conf:2: "));
	c2 = config_get();
	assert_ptr_equal(c1, c2);
	config_put(c2);

	/* Without forcing: seen by config_get() after the 1 s interval. */
	write_file("domains.conf", dom_base);
	bump_mtime("domains.conf", -10);
	c2 = config_get();
	assert_ptr_equal(c1, c2);
	config_put(c2);
	usleep(1100 * 1000);
	c2 = config_get();
	assert_ptr_not_equal(c1, c2);
	assert_null(config_account_find(c2, "bob"));
	config_put(c2);

	/* Old references stay usable after the swap. */
	assert_string_equal(c0->dyn.accounts.keys[0], "admin");
	config_put(c0);
	config_put(c1);
	config_set_current(NULL);
	assert_null(config_get());
	buf_release(&dom);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_localserve),
		cmocka_unit_test(test_quickstart),
		cmocka_unit_test(test_write_domains),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_config_test),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
