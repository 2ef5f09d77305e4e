/*
 * config.h: mox.conf (static) and domains.conf (dynamic) as typed
 * structures (spec/config.md sections 3, 3.1, 4, 4.1, 4.2, 14), loading
 * with validation, derived lookups, and reference-counted snapshots that
 * follow changes to domains.conf without a restart.
 *
 * Field names are the sconf keys in lower_snake_case. Strings are NULL
 * when not set in the file. Values are as written in the file, except in
 * mox.conf where load applies the documented defaults (ports, paths, TLS
 * MinVersion, User, SMTPMaxMessageSize, FirstTimeSenderDelay,
 * WorkerPoolSize, InitialMailboxes). domains.conf keeps what the file says
 * so it can be written back; effective values are in "eff" members.
 *
 * A struct config is immutable once loaded: any thread may read it while
 * it holds a reference (config_get()/config_put()).
 */
#ifndef CONFIG_CONFIG_H
#define CONFIG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/sconf.h"

struct buf;

/* ---- mox.conf ---------------------------------------------------------- */

struct config_keycert {
	struct sconf_pos pos;
	char *cert_file; /* CertFile: PEM chain, relative to config dir */
	char *key_file;  /* KeyFile */
};

struct config_tls {
	struct sconf_pos pos;
	char *acme;                                    /* ACME: provider name */
	SCONF_LIST_OF(struct config_keycert) key_certs; /* KeyCerts */
	char *min_version;                             /* MinVersion */
	struct sconf_strlist host_private_key_files;         /* HostPrivateKeyFiles */
	bool client_auth_disabled;                     /* ClientAuthDisabled */
};

/* Enabled/Port (+ later fields) of a service; unused members stay zero and
 * are not in the schema of services that lack them. */
struct config_service {
	struct sconf_pos pos;
	bool enabled;
	int64_t port;
	bool no_starttls;           /* SMTP.NoSTARTTLS */
	bool require_starttls;      /* SMTP.RequireSTARTTLS */
	bool no_require_tls;        /* SMTP.NoRequireTLS */
	struct sconf_strlist dnsbls;      /* SMTP.DNSBLs */
	int64_t first_time_sender_delay; /* SMTP.FirstTimeSenderDelay, ns */
	bool no_require_starttls;   /* Submission/IMAP.NoRequireSTARTTLS */
	bool enabled_on_https;      /* Submissions/IMAPS.EnabledOnHTTPS */
	char *path;                 /* web services: Path */
	bool forwarded;             /* web services: Forwarded */
	bool non_tls;               /* Autoconfig/MTA-STS: NonTLS */
	bool rate_limit_disabled;   /* HTTP services: RateLimitDisabled */
};

struct config_listener {
	struct sconf_pos pos;
	struct sconf_strlist ips;          /* IPs */
	struct sconf_strlist nat_ips;      /* NATIPs */
	bool ips_nated;              /* IPsNATed (deprecated) */
	char *hostname;              /* Hostname */
	struct config_tls *tls;      /* TLS */
	int64_t smtp_max_message_size; /* SMTPMaxMessageSize */
	bool tls_session_tickets_disabled; /* TLSSessionTicketsDisabled; see
					    * sconf_present() for unset */
	struct config_service smtp;
	struct config_service submission;
	struct config_service submissions;
	struct config_service imap;
	struct config_service imaps;
	struct config_service account_http;
	struct config_service account_https;
	struct config_service admin_http;
	struct config_service admin_https;
	struct config_service webmail_http;
	struct config_service webmail_https;
	struct config_service webapi_http;
	struct config_service webapi_https;
	struct config_service metrics_http;
	struct config_service pprof_http;
	struct config_service autoconfig_https;
	struct config_service mtasts_https;
	struct config_service webserver_http;
	struct config_service webserver_https;
};

struct config_acme_eab {
	struct sconf_pos pos;
	char *key_id;   /* KeyID */
	char *key_file; /* KeyFile: base64url key */
};

struct config_acme {
	struct sconf_pos pos;
	char *directory_url;      /* DirectoryURL */
	int64_t renew_before;     /* RenewBefore, ns */
	char *contact_email;      /* ContactEmail */
	int64_t port;             /* Port */
	char *issuer_domain_name; /* IssuerDomainName */
	struct config_acme_eab *external_account_binding;
};

struct config_smtp_auth {
	struct sconf_pos pos;
	char *username;
	char *password;
	struct sconf_strlist mechanisms;
};

struct config_transport_smtp {
	struct sconf_pos pos;
	char *host;
	int64_t port;
	bool starttls_insecure_skip_verify;
	bool no_starttls;
	struct config_smtp_auth *auth;
};

struct config_transport_socks {
	struct sconf_pos pos;
	char *address; /* host:port */
	struct sconf_strlist remote_ips;
	char *remote_hostname;
};

struct config_transport_direct {
	struct sconf_pos pos;
	bool disable_ipv4;
	bool disable_ipv6;
};

struct config_transport_fail {
	struct sconf_pos pos;
	int64_t smtp_code;
	char *smtp_message;
};

struct config_transport {
	struct sconf_pos pos;
	struct config_transport_smtp *submissions;
	struct config_transport_smtp *submission;
	struct config_transport_smtp *smtp;
	struct config_transport_socks *socks;
	struct config_transport_direct *direct;
	struct config_transport_fail *fail;
};

struct config_special_use {
	struct sconf_pos pos;
	char *sent, *archive, *trash, *draft, *junk;
};

struct config_initial_mailboxes {
	struct sconf_pos pos;
	struct config_special_use special_use;
	struct sconf_strlist regular;
};

struct config_tls_ca {
	struct sconf_pos pos;
	bool additional_to_system;
	struct sconf_strlist cert_files;
};

struct config_static_tls {
	struct sconf_pos pos;
	struct config_tls_ca *ca;
};

struct config_account_mailbox {
	struct sconf_pos pos;
	char *account;
	char *mailbox;
	char *localpart; /* HostTLSRPT only */
};

/* Limits defaults (spec/smtp.md 13), per IP class: IPv4 /32, /26, /21;
 * IPv6 /64, /48, /32. */
#define CONFIG_LIMITS_CLASSES 3
#define CONFIG_LIMITS_MAX 1000000000 /* our bound, keeps counts in range */
#define CONFIG_CONNECTIONS_PER_MINUTE { 300, 900, 2700 }
#define CONFIG_OPEN_CONNECTIONS { 30, 90, 270 }
#define CONFIG_AUTH_FAILURES_PER_MINUTE { 10, 30, 90 }
#define CONFIG_AUTH_FAILURES_PER_DAY { 50, 150, 450 }

/* Limits (our addition): per-IP limits of the SMTP and IMAP servers. Each
 * list holds one number per IP class when set; eff holds the numbers in
 * use, defaults applied at load. */
struct config_limits {
	struct sconf_pos pos;
	SCONF_LIST_OF(int64_t) connections_per_minute;
	SCONF_LIST_OF(int64_t) open_connections;
	SCONF_LIST_OF(int64_t) auth_failures_per_minute;
	SCONF_LIST_OF(int64_t) auth_failures_per_day;
	struct {
		unsigned connections_per_minute[CONFIG_LIMITS_CLASSES];
		unsigned open_connections[CONFIG_LIMITS_CLASSES];
		unsigned auth_failures_per_minute[CONFIG_LIMITS_CLASSES];
		unsigned auth_failures_per_day[CONFIG_LIMITS_CLASSES];
	} eff;
};

struct config_static {
	struct sconf_pos pos;
	char *data_dir;
	char *log_level;
	struct sconf_strmap package_log_levels;
	char *user;
	bool no_fix_permissions;
	char *hostname;
	bool check_updates;
	bool pedantic;
	struct config_static_tls tls;
	SCONF_MAP_OF(struct config_acme) acme;
	char *admin_password_file;
	SCONF_MAP_OF(struct config_listener) listeners;
	struct config_account_mailbox postmaster;
	struct config_account_mailbox host_tlsrpt;
	struct config_initial_mailboxes initial_mailboxes;
	struct sconf_strlist default_mailboxes;
	SCONF_MAP_OF(struct config_transport) transports;
	bool no_outgoing_dmarc_reports;
	bool no_outgoing_tls_reports;
	bool outgoing_tls_reports_for_all_success;
	int64_t quota_message_size;
	/* Our additions. */
	struct sconf_strlist dns_resolvers; /* DNSResolvers: "ip:port", "[ip6]:port" */
	char *public_suffix_list_file; /* PublicSuffixListFile; NULL: the
					* Debian path (publicsuffix.h) */
	int64_t worker_pool_size;     /* WorkerPoolSize; default applied */
	struct config_limits limits;  /* Limits; eff always set */
};

/* ---- domains.conf ------------------------------------------------------ */

struct config_route {
	struct sconf_pos pos;
	struct sconf_strlist from_domain;
	struct sconf_strlist to_domain;
	int64_t minimum_attempts;
	char *transport;
};

struct config_dkim_canon {
	struct sconf_pos pos;
	bool header_relaxed;
	bool body_relaxed;
};

struct config_dkim_selector {
	struct sconf_pos pos;
	char *hash; /* sha256 (default) or sha1 */
	struct config_dkim_canon canonicalization;
	struct sconf_strlist headers;
	bool dont_seal_headers;
	char *expiration;       /* duration text */
	char *private_key_file; /* relative to config dir */
};

struct config_report_addr {
	struct sconf_pos pos;
	char *localpart;
	char *domain;
	char *account;
	char *mailbox;
};

struct config_mtasts {
	struct sconf_pos pos;
	char *policy_id;
	char *mode;       /* enforce, testing, none */
	int64_t max_age;  /* ns */
	struct sconf_strlist mx;
};

struct config_alias {
	struct sconf_pos pos;
	struct sconf_strlist addresses;
	bool post_public;
	bool list_members;
	bool allow_msg_from;
};

struct config_dkim {
	struct sconf_pos pos;
	SCONF_MAP_OF(struct config_dkim_selector) selectors;
	struct sconf_strlist sign;
};

struct config_domain {
	struct sconf_pos pos;
	bool disabled;
	char *description;
	char *client_settings_domain;
	char *localpart_catchall_separator;
	struct sconf_strlist localpart_catchall_separators;
	bool localpart_case_sensitive;
	struct config_dkim dkim;
	struct config_report_addr *dmarc;
	struct config_mtasts *mtasts;
	struct config_report_addr *tlsrpt;
	SCONF_LIST_OF(struct config_route) routes;
	SCONF_MAP_OF(struct config_alias) aliases;
	struct {
		bool reports_only; /* only hosts report addresses elsewhere */
	} eff;
};

struct config_ruleset {
	struct sconf_pos pos;
	char *smtp_mail_from_regexp;
	char *msg_from_regexp;
	char *verified_domain;
	struct sconf_strmap headers_regexp;
	bool is_forward;
	char *list_allow_domain;
	char *accept_rejects_to_mailbox;
	char *mailbox;
	char *comment;
};

struct config_destination {
	struct sconf_pos pos;
	char *mailbox;
	SCONF_LIST_OF(struct config_ruleset) rulesets;
	char *smtp_error;
	char *message_auth_required_smtp_error;
	char *full_name;
};

struct config_junk_params {
	struct sconf_pos pos;
	bool onegrams;
	bool twograms;
	bool threegrams;
	double max_power;
	int64_t top_words;
	double ignore_words;
	int64_t rare_words;
};

struct config_junk_filter {
	struct sconf_pos pos;
	double threshold;
	struct config_junk_params params;
};

struct config_subject_pass {
	struct sconf_pos pos;
	int64_t period; /* ns */
};

struct config_auto_junk {
	struct sconf_pos pos;
	bool enabled;
	char *junk_mailbox_regexp;
	char *neutral_mailbox_regexp;
	char *not_junk_mailbox_regexp;
};

struct config_webhook {
	struct sconf_pos pos;
	char *url;
	char *authorization;
	struct sconf_strlist events; /* outgoing only */
};

struct config_account {
	struct sconf_pos pos;
	struct config_webhook *outgoing_webhook;
	struct config_webhook *incoming_webhook;
	struct sconf_strlist from_id_login_addresses;
	int64_t keep_retired_message_period; /* ns */
	int64_t keep_retired_webhook_period; /* ns */
	char *login_disabled;
	char *domain;
	char *description;
	char *full_name;
	SCONF_MAP_OF(struct config_destination) destinations;
	struct config_subject_pass subject_pass;
	int64_t quota_message_size;
	char *rejects_mailbox;
	bool keep_rejects;
	struct config_auto_junk automatic_junk_flags;
	struct config_junk_filter *junk_filter;
	int64_t max_outgoing_messages_per_day;
	int64_t max_first_time_recipients_per_day;
	bool no_first_time_sender_delay;
	bool no_custom_password;
	SCONF_LIST_OF(struct config_route) routes;
	struct sconf_strlist imap_capabilities_disabled;
	char *introbox;
	struct {
		int64_t max_outgoing_messages_per_day;     /* default 1000 */
		int64_t max_first_time_recipients_per_day; /* default 200 */
		int64_t quota_message_size; /* >0 limit, 0 none (inherited) */
	} eff;
};

struct config_web_static {
	struct sconf_pos pos;
	char *strip_prefix;
	char *root; /* relative to the working directory */
	bool list_files;
	bool continue_not_found;
	struct sconf_strmap response_headers;
};

struct config_web_redirect {
	struct sconf_pos pos;
	char *base_url;
	char *orig_path_regexp;
	char *replace_path;
	int64_t status_code;
};

struct config_web_forward {
	struct sconf_pos pos;
	bool strip_path;
	char *url;
	struct sconf_strmap response_headers;
};

struct config_web_internal {
	struct sconf_pos pos;
	char *base_path;
	char *service; /* admin, account, webmail, webapi */
};

struct config_webhandler {
	struct sconf_pos pos;
	char *log_name;
	char *domain;
	char *path_regexp;
	bool dont_redirect_plain_http;
	bool compress;
	struct config_web_static *web_static;
	struct config_web_redirect *web_redirect;
	struct config_web_forward *web_forward;
	struct config_web_internal *web_internal;
};

struct config_dynamic {
	struct sconf_pos pos;
	SCONF_MAP_OF(struct config_domain) domains;
	SCONF_MAP_OF(struct config_account) accounts;
	struct sconf_strmap web_domain_redirects;
	SCONF_LIST_OF(struct config_webhandler) web_handlers;
	SCONF_LIST_OF(struct config_route) routes;
	struct sconf_strlist monitor_dnsbls;
};

/* ---- snapshot ---------------------------------------------------------- */

/* One configured address (or "@domain" catchall) after canonicalisation. */
struct config_addr {
	char *addr;    /* owned; "canonical-localpart@domain" or "@domain" */
	size_t account; /* index in dyn.accounts */
	size_t dest;    /* index in that account's destinations */
};

struct config_shared; /* the static part, shared between snapshots */

struct config {
	const struct config_static *st; /* shared; immutable */
	struct config_dynamic dyn;      /* this snapshot's domains.conf */
	const char *path;               /* mox.conf path as given */
	const char *dir;                /* directory of mox.conf */
	const char *domains_path;       /* domains.conf beside mox.conf */
	struct config_addr *addrs;      /* sorted by addr */
	size_t naddrs;
	int64_t domains_mtime_ns;       /* mtime of the loaded domains.conf */
	int64_t domains_size;
	char **domains_canon_;          /* private: parallel to dyn.domains */
	size_t ndomains_canon_;         /* private */
	struct config_shared *shared_;  /* private */
	atomic_int refs_;               /* private */
};

/* Result of an address lookup; pointers borrowed from the snapshot. */
struct config_dest_ref {
	const char *account_name;
	const struct config_account *account;
	const char *dest_key;                  /* configured key */
	const struct config_destination *dest; /* zero-valued for "nil" */
	const char *mailbox;                   /* effective: Inbox default */
	bool catchall;
};

#define CONFIG_MOXCONF_MAX SCONF_FILE_MAX
#define CONFIG_ERR_MAX (256u * 1024) /* error text collected by a load */

/* Schemas, for tools and tests. */
extern const struct sconf_type config_static_type;
extern const struct sconf_type config_dynamic_type;

/* Load mox.conf and domains.conf beside it, apply defaults, validate and
 * build the derived maps. Returns 0 with *out (one reference; release
 * with config_put() or config_free()), or -1 with every problem appended
 * to err as a line "file:line: Field.Path: what". Blocking (disk). */
int config_load(const char *mox_conf_path, struct config **out,
    struct buf *err);
/* Free a snapshot regardless of references (for a config that was never
 * published). NULL-safe. */
void config_free(struct config *c);

/* Like config_load() and then also check that files named in the config
 * (TLS key/cert, DKIM keys, admin password file) can be read; for "mox
 * config test". Appends "config OK\n" or the errors to out. Returns 0/-1. */
int config_test(const char *mox_conf_path, struct buf *out);

/* Publish c as the current configuration (takes over the caller's
 * reference); the previous one is released. NULL clears it. Any thread. */
void config_set_current(struct config *c);
/* A reference to the current configuration, or NULL if none was set.
 * When more than 1 s passed since the last check, stats domains.conf and
 * on an mtime or size change reloads it: a valid file becomes the new
 * snapshot (sharing the static part) and "domains config reloaded" is
 * logged; an invalid one is logged and the previous snapshot stays. Any
 * thread; may block on disk for the reload. */
struct config *config_get(void);
/* Release a reference. NULL-safe. */
void config_put(struct config *c);
/* Check domains.conf now, regardless of the 1 s interval. Returns 1 when
 * a new snapshot was installed, 0 when unchanged, -1 when the changed file
 * was invalid (errors appended to err when not NULL). */
int config_reload_domains(struct buf *err);

/* Annotated empty mox.conf / domains.conf for "mox config describe-*". */
void config_describe_static(struct buf *out);
void config_describe_domains(struct buf *out);
/* Serialise the domains.conf part of c. Returns 0/-1 (reason in out). */
int config_write_domains(const struct config *c, struct buf *out);

/* Path p from the config resolved against the config directory (absolute
 * paths unchanged). Returns a new string (caller frees). */
char *config_path(const struct config *c, const char *p);

/* Lookups; results borrowed from c while the caller holds it. */
const struct config_account *config_account_find(const struct config *c,
    const char *name);
const struct config_domain *config_domain_find(const struct config *c,
    const char *domain);
/* Find the destination for localpart@domain: the canonical address
 * (catchall separator stripped, lower-cased unless the domain is case
 * sensitive), else the domain's "@domain" catchall. Postmaster and
 * reporting addresses are the caller's rule (smtp.md section 9).
 * Returns 0 and fills *out, or -1 when not configured. */
int config_lookup_address(const struct config *c, const char *localpart,
    const char *domain, struct config_dest_ref *out);
/* Canonical localpart for domain d (NULL: no domain rules) into out. */
void config_canonical_localpart(const struct config_domain *d,
    const char *localpart, struct buf *out);
/* Alias localpart@domain, or NULL. */
const struct config_alias *config_alias_find(const struct config *c,
    const char *localpart, const char *domain);
/* Listener by name, or NULL. */
const struct config_listener *config_listener_find(const struct config *c,
    const char *name);

#endif
