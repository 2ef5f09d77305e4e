/*
 * main.c: the `mox` command dispatcher (spec/config.md section 7). Global
 * flags come before the command words; words must match exactly. Usage
 * errors print to stderr and exit 2; failures exit 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moxbuild.h"
#include "cli.h"
#include "cmd_dkim.h"
#include "cmd_dns.h"
#include "cmd_sendmail.h"
#include "cmd_queue.h"
#include "cmd_store.h"
#include "config/config.h"
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "tls/tls.h"
#include "lib/banned.h"

struct cli_globals cli;

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_config_test(int argc, char **argv);
static int cmd_describe_static(int argc, char **argv);
static int cmd_describe_domains(int argc, char **argv);
static int cmd_stop(int argc, char **argv);
static int cmd_loglevels(int argc, char **argv);

static const struct cli_command main_commands[] = {
	{ "serve", "", "Run the mail server: bind the listeners as root, drop "
		"privileges to User, serve until SIGTERM or `mox stop`.",
	    cmd_serve },
	{ "localserve", "[-dir DIR] [-ip IP] [-initonly]",
	    "Run a local development server on loopback (ports 1000 + the "
	    "standard ones) with a complete config written into DIR on first "
	    "use (default $HOME/.config/mox-localserve); account mox@localhost, "
	    "password moxmoxmox. -ip replaces the listener IPs when DIR is "
	    "created; -initonly only writes DIR.",
	    cmd_localserve },
	{ "stop", "", "Stop the running server gracefully through the ctl "
		"socket.", cmd_stop },
	{ "loglevels", "[level [pkg]]",
	    "Print the log levels of the running server, or set the default "
	    "level, or the level of one package (an empty level clears it). "
	    "Levels: error, info, debug, trace, traceauth, tracedata.",
	    cmd_loglevels },
	{ "config test", "", "Parse and validate mox.conf and domains.conf, "
		"including the files they name; exit 0 when valid, 1 otherwise.",
	    cmd_config_test },
	{ "config describe-static", "", "Print an annotated mox.conf with "
		"every field.", cmd_describe_static },
	{ "config describe-domains", "", "Print an annotated domains.conf "
		"with every field.", cmd_describe_domains },
	{ "backup", "[-verbose] DESTDIR", "Back up the data directory while "
		"the server runs: SQLite online backup of every database, "
		"message files hard-linked (copied across file systems). DESTDIR "
		"must not exist or be empty.", cmd_backup },
	{ "verifydata", "[-fix] [-skip-size-check] DATADIR", "Check a data "
		"directory or backup: databases, message files and sizes, "
		"orphans, counts, queue files. -fix reindexes orphan files, moves "
		"stray files to moved/ and recomputes counts.", cmd_verifydata },
	{ "import maildir", "ACCOUNT MAILBOX PATH", "Import a Maildir (flag "
		"letters, dovecot-keywords) into MAILBOX of ACCOUNT.",
	    cmd_import },
	{ "import mbox", "ACCOUNT MAILBOX PATH", "Import an mboxrd file "
		"(Status, X-Status, X-Keywords flags) into MAILBOX of ACCOUNT.",
	    cmd_import },
	{ "export maildir", "[-single] DESTDIR ACCOUNT [MAILBOX]", "Export "
		"mailboxes as Maildirs with flag letters and dovecot-keywords. "
		"With MAILBOX: it and its children (-single: only it).",
	    cmd_export },
	{ "export mbox", "[-single] DESTDIR ACCOUNT [MAILBOX]", "Export "
		"mailboxes as mboxrd files with Status/X-Status/X-Keywords.",
	    cmd_export },
	{ "setaccountpassword", "ACCOUNT", "Set the password of ACCOUNT, read "
		"from stdin (at least 8 characters).", cmd_setaccountpassword },
	{ "gentestdata", "DIR", "Write a config and data directory with test "
		"accounts, messages and a queued message (for upgrade tests).",
	    cmd_gentestdata },
	{ "sendmail", "[-t] [-F name] [ignored flags] [rcpt ...] < message",
	    "Submit a message read from stdin to the submission server "
	    "configured in /etc/moxsubmit.conf (with authentication), for "
	    "system tools such as cron and mail(1). The envelope sender (MAIL "
	    "FROM) is always the From of moxsubmit.conf: -f and -r are "
	    "accepted for compatibility and ignored, as are other sendmail "
	    "flags. On failure the message is appended to "
	    "~/moxsubmit.failures and the exit status is 1.",
	    cmd_sendmail },
	{ "dns lookup", "[-resolver ip[:port]] TYPE NAME",
	    "Look up records of TYPE (a, aaaa, mx, txt, ptr, cname, tlsa, srv, "
	    "ns) for NAME and say whether the answer was DNSSEC-verified. For "
	    "ptr, NAME may be an IP address. DNS commands ask the -resolver "
	    "servers, else the DNSResolvers of mox.conf when it exists, else "
	    "those of /etc/resolv.conf.",
	    cmd_dns_lookup },
	{ "spf check", "[-resolver ip[:port]] DOMAIN IP", "Evaluate the SPF "
		"policy of DOMAIN for a message from IP.", cmd_spf_check },
	{ "spf lookup", "[-resolver ip[:port]] DOMAIN", "Print the SPF record "
		"of DOMAIN.", cmd_spf_lookup },
	{ "spf parse", "TXT", "Parse an SPF record and print it normalised.",
	    cmd_spf_parse },
	{ "dnsbl check", "[-resolver ip[:port]] ZONE IP", "Check whether IP "
		"is listed in the DNS block list ZONE.", cmd_dnsbl_check },
	{ "dnsbl checkhealth", "[-resolver ip[:port]] ZONE", "Check that the "
		"DNS block list ZONE answers (127.0.0.2 listed, 127.0.0.1 "
		"not).", cmd_dnsbl_checkhealth },
	{ "dkim genrsa", "", "Print a new 2048-bit RSA private key for DKIM "
		"(PKCS8 PEM).", cmd_dkim_genrsa },
	{ "dkim gened25519", "", "Print a new ed25519 private key for DKIM "
		"(PKCS8 PEM).", cmd_dkim_gened25519 },
	{ "dkim txt", "< privatekey", "Print the DNS TXT record value for a "
		"DKIM private key read from stdin.", cmd_dkim_txt },
	{ "dkim lookup", "[-resolver ip[:port]] SELECTOR DOMAIN", "Look up "
		"and print the DKIM key record of SELECTOR at DOMAIN.",
	    cmd_dkim_lookup },
	{ "dkim verify", "[-resolver ip[:port]] FILE", "Verify the DKIM "
		"signatures of the message in FILE and print a result per "
		"signature.", cmd_dkim_verify },
	{ "dkim sign", "FILE", "Sign the message in FILE with the DKIM "
		"selectors configured for its From domain, as submission "
		"does (d= the From domain, i= its canonical From address); "
		"print the signed message.", cmd_dkim_sign },
	{ "dmarc lookup", "[-resolver ip[:port]] DOMAIN", "Look up and print "
		"the DMARC policy of DOMAIN (with the organizational domain "
		"fallback).", cmd_dmarc_lookup },
	{ "dmarc verify",
	    "[-resolver ip[:port]] REMOTEIP MAILFROM EHLO < message",
	    "Evaluate SPF, DKIM and DMARC for a message read from stdin as "
	    "if it arrived from REMOTEIP.", cmd_dmarc_verify },
	{ "version", "", "Print the version.", cmd_version },
	{ "help", "[command ...]", "Print the commands, or the help of one.",
	    cmd_help },
};

/* The commands of mox: its own table, then the queue commands (which the
 * mox-queue tool shares). */
static size_t
ncommands(void)
{
	return ARRAY_LEN(main_commands) + cmd_queue_ncommands;
}

static const struct cli_command *
command(size_t i)
{
	if (i < ARRAY_LEN(main_commands))
		return &main_commands[i];
	return &cmd_queue_commands[i - ARRAY_LEN(main_commands)];
}

void
cli_errorf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_usage(const char *words, const char *args)
{
	fprintf(stderr, "usage: mox %s%s%s\n", words, *args ? " " : "", args);
	return CLI_USAGE;
}

static void
print_usage_all(FILE *f, const char *prefix)
{
	for (size_t i = 0; i < ncommands(); i++) {
		if (prefix != NULL &&
		    strncmp(command(i)->words, prefix, strlen(prefix)) != 0)
			continue;
		fprintf(f, "  mox %s%s%s\n", command(i)->words,
		    *command(i)->args ? " " : "", command(i)->args);
	}
}

static void
global_usage(void)
{
	fprintf(stderr,
	    "usage: mox [-config mox.conf] [-loglevel level] [-pedantic] "
	    "[-checkconsistency] command [args]\ncommands:\n");
	print_usage_all(stderr, NULL);
}

/* Number of leading argv words that spell cmd's words, or 0. */
static int
match_words(const char *words, int argc, char **argv)
{
	const char *w = words;
	int n = 0;

	while (*w != '\0') {
		const char *sp = strchr(w, ' ');
		size_t len = sp != NULL ? (size_t)(sp - w) : strlen(w);

		if (n >= argc || strlen(argv[n]) != len ||
		    strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		if (*w == ' ')
			w++;
	}
	return n;
}

static int
cmd_help(int argc, char **argv)
{
	struct buf want;
	int found = 0;

	if (argc <= 1) {
		printf("mox: a complete mail server (SMTP, IMAP, SPF/DKIM/DMARC, "
		       "queue, web).\nusage: mox [-config mox.conf] [-loglevel "
		       "level] command [args]\ncommands:\n");
		for (size_t i = 0; i < ncommands(); i++)
			printf("  mox %s%s%s\n", command(i)->words,
			    *command(i)->args ? " " : "", command(i)->args);
		printf("See mox(1) for details.\n");
		return 0;
	}
	buf_init(&want, 1024);
	for (int i = 1; i < argc; i++)
		buf_addf(&want, "%s%s", i > 1 ? " " : "", argv[i]);
	for (size_t i = 0; i < ncommands(); i++) {
		size_t n = want.len;

		if (strncmp(command(i)->words, want.data, n) != 0 ||
		    (command(i)->words[n] != '\0' && command(i)->words[n] != ' '))
			continue;
		printf("usage: mox %s%s%s\n\n  %s\n\n", command(i)->words,
		    *command(i)->args ? " " : "", command(i)->args,
		    command(i)->help);
		found++;
	}
	if (found == 0) {
		cli_errorf("unknown command \"%s\"", want.data);
		buf_release(&want);
		return CLI_USAGE;
	}
	buf_release(&want);
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	if (argc != 1)
		return cli_usage("version", "");
	printf("%s\n", PACKAGE_VERSION);
	(void)argv;
	return 0;
}

/* Load every listener's key pairs as the server would, so a bad key or
 * certificate shows up in "config test", not at startup. */
static int
check_tls_keys(struct buf *out)
{
	struct config *cfg = NULL;
	struct buf err;
	int rc = 0;

	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(cli.config_path, &cfg, &err) == -1) {
		buf_reset(out);
		buf_add(out, err.data, err.len);
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < cfg->st->listeners.n; i++) {
		const struct config_listener *l = &cfg->st->listeners.vals[i];
		struct tls_keycert *kc;
		struct tls_server_params p = { 0 };
		struct tls_server *t;
		char **paths;
		size_t n;

		if (l->tls == NULL || l->tls->key_certs.n == 0)
			continue;
		n = l->tls->key_certs.n;
		kc = xcalloc(n, sizeof(*kc));
		paths = xcalloc(2 * n, sizeof(*paths));
		for (size_t k = 0; k < n; k++) {
			paths[2 * k] = config_path(cfg,
			    l->tls->key_certs.v[k].cert_file);
			paths[2 * k + 1] = config_path(cfg,
			    l->tls->key_certs.v[k].key_file);
			kc[k].cert_file = paths[2 * k];
			kc[k].key_file = paths[2 * k + 1];
		}
		p.keycerts = kc;
		p.nkeycerts = n;
		p.min_version = l->tls->min_version;
		p.sni = TLS_SNI_FALLBACK;
		buf_reset(&err);
		t = tls_server_new(&p, &err);
		if (t == NULL) {
			if (rc == 0)
				buf_reset(out);
			buf_addf(out, "%s: Listeners.%s.TLS.KeyCerts: %s\n",
			    cfg->path, cfg->st->listeners.keys[i], err.data);
			rc = -1;
		}
		tls_server_free(t);
		for (size_t k = 0; k < 2 * n; k++)
			free(paths[k]);
		free(paths);
		free(kc);
	}
out:
	config_free(cfg);
	buf_release(&err);
	return rc;
}

static int
cmd_config_test(int argc, char **argv)
{
	struct buf out;
	int rc;

	if (argc != 2)
		return cli_usage("config test", "");
	buf_init(&out, CONFIG_ERR_MAX);
	rc = config_test(cli.config_path, &out);
	if (rc == 0 && check_tls_keys(&out) == -1)
		rc = -1;
	if (rc == 0)
		fputs(out.data, stdout);
	else
		fputs(out.data, stderr);
	buf_release(&out);
	(void)argv;
	return rc == 0 ? 0 : 1;
}

static int
cmd_describe_static(int argc, char **argv)
{
	struct buf out;

	if (argc != 2)
		return cli_usage("config describe-static", "");
	buf_init(&out, BUF_NOMAX);
	config_describe_static(&out);
	fwrite(out.data, 1, out.len, stdout);
	buf_release(&out);
	(void)argv;
	return 0;
}

static int
cmd_describe_domains(int argc, char **argv)
{
	struct buf out;

	if (argc != 2)
		return cli_usage("config describe-domains", "");
	buf_init(&out, BUF_NOMAX);
	config_describe_domains(&out);
	fwrite(out.data, 1, out.len, stdout);
	buf_release(&out);
	(void)argv;
	return 0;
}

struct ctl_conn *
cli_ctl_dial(void)
{
	struct config *cfg = NULL;
	struct ctl_conn *c = NULL;
	struct buf err;
	char *datadir = NULL;

	buf_init(&err, CONFIG_ERR_MAX);
	if (config_load(cli.config_path, &cfg, &err) == -1) {
		cli_errorf("loading config %s:\n%s", cli.config_path, err.data);
		goto out;
	}
	datadir = config_path(cfg, cfg->st->data_dir);
	c = ctl_dial(datadir, &err);
	if (c == NULL)
		cli_errorf("%s", err.data);
out:
	free(datadir);
	config_free(cfg);
	buf_release(&err);
	return c;
}

static int
cmd_stop(int argc, char **argv)
{
	static const char *const words[] = { "stop" };
	struct ctl_conn *c;
	struct buf reply;
	int rc = 1;

	if (argc != 1)
		return cli_usage("stop", "");
	c = cli_ctl_dial();
	if (c == NULL)
		return 1;
	buf_init(&reply, CTL_LINE_MAX);
	if (ctl_call(c, words, 1, &reply) == -1) {
		cli_errorf("stop: %s", reply.data);
		goto out;
	}
	/* The server closes the socket when it exits. */
	while (ctl_read_line(c, &reply) == 0)
		;
	printf("mox stopped\n");
	rc = 0;
out:
	buf_release(&reply);
	ctl_close(c);
	(void)argv;
	return rc;
}

static int
cmd_loglevels(int argc, char **argv)
{
	struct ctl_conn *c;
	struct buf reply, out;
	enum log_level l;
	int rc = 1;

	if (argc > 3)
		return cli_usage("loglevels", "[level [pkg]]");
	if (argc >= 2 && argv[1][0] != '\0' && log_level_parse(argv[1], &l) == -1) {
		cli_errorf("unknown log level \"%s\" (use error, info, debug, "
			   "trace, traceauth or tracedata)",
		    argv[1]);
		return CLI_USAGE;
	}
	if (argc == 2 && argv[1][0] == '\0') {
		cli_errorf("an empty level only clears a package level: mox "
			   "loglevels \"\" pkg");
		return CLI_USAGE;
	}
	c = cli_ctl_dial();
	if (c == NULL)
		return 1;
	buf_init(&reply, CTL_LINE_MAX);
	buf_init(&out, 1 << 20);
	if (argc == 1) {
		static const char *const words[] = { "loglevels" };

		if (ctl_call(c, words, 1, &reply) == -1 ||
		    ctl_read_stream(c, &out) == -1) {
			cli_errorf("loglevels: %s", reply.data);
			goto out;
		}
		fwrite(out.data, 1, out.len, stdout);
	} else {
		const char *words[] = { "setloglevels", argc == 3 ? argv[2] : "",
			argv[1] };

		if (ctl_call(c, words, 3, &reply) == -1) {
			cli_errorf("setloglevels: %s", reply.data);
			goto out;
		}
	}
	rc = 0;
out:
	buf_release(&reply);
	buf_release(&out);
	ctl_close(c);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *slash = strrchr(argv[0], '/');
	int i = 1;

	cli.prog = "mox";
	cli.config_path = getenv("MOXCONF");
	if (cli.config_path == NULL || *cli.config_path == '\0')
		cli.config_path = "config/mox.conf";
	log_init();
	log_set_format(LOG_FORMAT_HUMAN);
	/* Installed as "sendmail": behave as `mox sendmail`. */
	if (strcmp(slash != NULL ? slash + 1 : argv[0], "sendmail") == 0) {
		argv[0] = (char *)"sendmail";
		return cmd_sendmail(argc, argv);
	}

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *f = argv[i];

		if (strcmp(f, "--") == 0) {
			i++;
			break;
		}
		if (f[1] == '-')
			f++;
		if (strcmp(f, "-config") == 0 && i + 1 < argc) {
			cli.config_path = argv[++i];
		} else if (strcmp(f, "-loglevel") == 0 && i + 1 < argc) {
			enum log_level l;

			if (log_level_parse(argv[++i], &l) == -1) {
				cli_errorf("unknown log level \"%s\"", argv[i]);
				return CLI_USAGE;
			}
			log_set_level(NULL, l);
			cli.loglevel_set = true;
		} else if (strcmp(f, "-pedantic") == 0) {
			cli.pedantic = true;
		} else if (strcmp(f, "-checkconsistency") == 0) {
			cli.check_consistency = true;
		} else if (strcmp(f, "-help") == 0 || strcmp(f, "-h") == 0) {
			return cmd_help(1, argv);
		} else {
			cli_errorf("unknown flag %s", argv[i]);
			global_usage();
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		global_usage();
		return CLI_USAGE;
	}
	argc -= i;
	argv += i;
	for (size_t k = 0; k < ncommands(); k++) {
		int n = match_words(command(k)->words, argc, argv);

		if (n == 0)
			continue;
		/* Handlers see their command words in argv[0..n-1] and
		 * check argc against their word count. */
		return command(k)->fn(argc, argv);
	}
	/* Leading words of commands: show their usage. */
	{
		int shown = 0;

		for (size_t k = 0; k < ncommands(); k++)
			if (strncmp(command(k)->words, argv[0], strlen(argv[0])) ==
				0 &&
			    command(k)->words[strlen(argv[0])] == ' ') {
				if (shown++ == 0)
					fprintf(stderr, "usage:\n");
				fprintf(stderr, "  mox %s%s%s\n", command(k)->words,
				    *command(k)->args ? " " : "",
				    command(k)->args);
			}
		if (shown == 0) {
			cli_errorf("unknown command \"%s\"", argv[0]);
			global_usage();
		}
	}
	return CLI_USAGE;
}
