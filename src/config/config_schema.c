/*
 * config_schema.c: the sconf schemas of mox.conf and domains.conf
 * (spec/config.md sections 3, 3.1, 4, 4.1, 4.2 and 14), as field
 * descriptor tables over the structures of config.h. Field order here is
 * the order in which files are written and described. Immutable data; any
 * thread.
 */
#include <stddef.h>

#include "lib/compat.h"
#include "config/config.h"
#include "lib/banned.h"

#define FLD(S, m, Name, T, opt, doc) \
	{ Name, &(T), offsetof(struct S, m), opt, doc }
#define REQ false
#define OPT true
#define STRUCT_TYPE(S, fields) \
	{ SCONF_STRUCT, sizeof(struct S), fields, ARRAY_LEN(fields), \
		offsetof(struct S, pos), NULL }
#define PTR_TYPE(elem) \
	{ SCONF_PTR, sizeof(void *), NULL, 0, 0, &(elem) }
#define LIST_TYPE(elem) \
	{ SCONF_LIST, sizeof(struct sconf_strlist), NULL, 0, 0, &(elem) }
#define MAP_TYPE(elem) \
	{ SCONF_MAP, sizeof(struct sconf_strmap), NULL, 0, 0, &(elem) }

static const struct sconf_type t_strlist = LIST_TYPE(sconf_type_str);
static const struct sconf_type t_strmap = MAP_TYPE(sconf_type_str);

/* ---- mox.conf ---------------------------------------------------------- */

static const struct sconf_field f_keycert[] = {
	FLD(config_keycert, cert_file, "CertFile", sconf_type_str, REQ,
	    "Certificate chain in PEM, the leaf certificate first. Relative "
	    "to the config directory."),
	FLD(config_keycert, key_file, "KeyFile", sconf_type_str, REQ,
	    "Private key in PEM (PKCS#8, PKCS#1 or EC). Relative to the "
	    "config directory."),
};
static const struct sconf_type t_keycert = STRUCT_TYPE(config_keycert,
    f_keycert);
static const struct sconf_type t_keycert_list = LIST_TYPE(t_keycert);

static const struct sconf_field f_tls[] = {
	FLD(config_tls, acme, "ACME", sconf_type_str, OPT,
	    "Name of an ACME provider from the top-level ACME section; "
	    "certificates are requested and renewed automatically. Not "
	    "together with KeyCerts."),
	FLD(config_tls, key_certs, "KeyCerts", t_keycert_list, OPT,
	    "Certificate and key file pairs. Not together with ACME."),
	FLD(config_tls, min_version, "MinVersion", sconf_type_str, OPT,
	    "Minimum TLS version: TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3. "
	    "Default TLSv1.2."),
	FLD(config_tls, host_private_key_files, "HostPrivateKeyFiles",
	    t_strlist, OPT,
	    "Long-lived private keys (RSA 2048 bits and ECDSA P-256) used "
	    "for certificates from ACME, so DANE TLSA records stay valid "
	    "across renewals."),
	FLD(config_tls, client_auth_disabled, "ClientAuthDisabled",
	    sconf_type_bool, OPT,
	    "Do not request TLS client certificates."),
};
static const struct sconf_type t_tls = STRUCT_TYPE(config_tls, f_tls);
static const struct sconf_type t_tls_ptr = PTR_TYPE(t_tls);

#define SVC_ENABLED \
	FLD(config_service, enabled, "Enabled", sconf_type_bool, REQ, \
	    "Whether the service is started.")
#define SVC_PORT(dflt) \
	FLD(config_service, port, "Port", sconf_type_int, OPT, \
	    "Port to listen on. Default " dflt ".")
#define SVC_RATELIMIT \
	FLD(config_service, rate_limit_disabled, "RateLimitDisabled", \
	    sconf_type_bool, OPT, \
	    "Do not apply the per-request rate limit on this port.")

static const struct sconf_field f_svc_smtp[] = {
	SVC_ENABLED,
	SVC_PORT("25"),
	FLD(config_service, no_starttls, "NoSTARTTLS", sconf_type_bool, OPT,
	    "Do not offer STARTTLS; mail is received in plain text."),
	FLD(config_service, require_starttls, "RequireSTARTTLS",
	    sconf_type_bool, OPT,
	    "Refuse recipients on connections without TLS, except for TLS "
	    "report addresses."),
	FLD(config_service, no_require_tls, "NoRequireTLS", sconf_type_bool,
	    OPT, "Do not announce or accept REQUIRETLS (RFC 8689)."),
	FLD(config_service, dnsbls, "DNSBLs", t_strlist, OPT,
	    "DNS block list zones to check senders without reputation "
	    "against, e.g. sbl.spamhaus.org."),
	FLD(config_service, first_time_sender_delay, "FirstTimeSenderDelay",
	    sconf_type_dur, OPT,
	    "Delay before replying to a first-time sender, slowing down "
	    "spammers. Default 15s; 0s disables it."),
};
static const struct sconf_type t_svc_smtp = STRUCT_TYPE(config_service,
    f_svc_smtp);

static const struct sconf_field f_svc_submission[] = {
	SVC_ENABLED,
	SVC_PORT("587"),
	FLD(config_service, no_require_starttls, "NoRequireSTARTTLS",
	    sconf_type_bool, OPT,
	    "Allow authentication and submission without TLS."),
};
static const struct sconf_type t_svc_submission = STRUCT_TYPE(
    config_service, f_svc_submission);

static const struct sconf_field f_svc_submissions[] = {
	SVC_ENABLED,
	SVC_PORT("465"),
	FLD(config_service, enabled_on_https, "EnabledOnHTTPS",
	    sconf_type_bool, OPT,
	    "Also serve submission on the HTTPS port, chosen by TLS ALPN "
	    "\"smtp\"."),
};
static const struct sconf_type t_svc_submissions = STRUCT_TYPE(
    config_service, f_svc_submissions);

static const struct sconf_field f_svc_imap[] = {
	SVC_ENABLED,
	SVC_PORT("143"),
	FLD(config_service, no_require_starttls, "NoRequireSTARTTLS",
	    sconf_type_bool, OPT, "Allow login without TLS."),
};
static const struct sconf_type t_svc_imap = STRUCT_TYPE(config_service,
    f_svc_imap);

static const struct sconf_field f_svc_imaps[] = {
	SVC_ENABLED,
	SVC_PORT("993"),
	FLD(config_service, enabled_on_https, "EnabledOnHTTPS",
	    sconf_type_bool, OPT,
	    "Also serve IMAP on the HTTPS port, chosen by TLS ALPN "
	    "\"imap\"."),
};
static const struct sconf_type t_svc_imaps = STRUCT_TYPE(config_service,
    f_svc_imaps);

static const struct sconf_field f_svc_web[] = {
	SVC_ENABLED,
	SVC_PORT("80 for HTTP, 443 for HTTPS"),
	FLD(config_service, path, "Path", sconf_type_str, OPT,
	    "Path to serve the service on; must start and end with a "
	    "slash. Default / for account, /admin/, /webmail/, /webapi/."),
	FLD(config_service, forwarded, "Forwarded", sconf_type_bool, OPT,
	    "Trust X-Forwarded-For and X-Forwarded-Proto from a reverse "
	    "proxy in front of this port."),
	SVC_RATELIMIT,
};
static const struct sconf_type t_svc_web = STRUCT_TYPE(config_service,
    f_svc_web);

static const struct sconf_field f_svc_metrics[] = {
	SVC_ENABLED,
	SVC_PORT("8010"),
};
static const struct sconf_type t_svc_metrics = STRUCT_TYPE(config_service,
    f_svc_metrics);

static const struct sconf_field f_svc_pprof[] = {
	SVC_ENABLED,
	SVC_PORT("8011; it cannot be shared with other services"),
};
static const struct sconf_type t_svc_pprof = STRUCT_TYPE(config_service,
    f_svc_pprof);

static const struct sconf_field f_svc_nontls[] = {
	SVC_ENABLED,
	SVC_PORT("443"),
	FLD(config_service, non_tls, "NonTLS", sconf_type_bool, OPT,
	    "Serve plain HTTP on the port, for use behind a TLS-terminating "
	    "reverse proxy."),
};
static const struct sconf_type t_svc_nontls = STRUCT_TYPE(config_service,
    f_svc_nontls);

static const struct sconf_field f_svc_webserver[] = {
	SVC_ENABLED,
	SVC_PORT("80 for HTTP, 443 for HTTPS"),
	SVC_RATELIMIT,
};
static const struct sconf_type t_svc_webserver = STRUCT_TYPE(config_service,
    f_svc_webserver);

#define LSVC(m, Name, T, doc) FLD(config_listener, m, Name, T, OPT, doc)

static const struct sconf_field f_listener[] = {
	FLD(config_listener, ips, "IPs", t_strlist, REQ,
	    "IP addresses to listen on; also used as source addresses for "
	    "outgoing SMTP. 0.0.0.0 and :: are allowed, explicit addresses "
	    "are better."),
	FLD(config_listener, nat_ips, "NATIPs", t_strlist, OPT,
	    "Public IP addresses when the listener is behind NAT, for DNS "
	    "self-checks. Not loopback or unspecified."),
	FLD(config_listener, ips_nated, "IPsNATed", sconf_type_bool, OPT,
	    "Deprecated, use NATIPs: the IPs are behind NAT."),
	FLD(config_listener, hostname, "Hostname", sconf_type_str, OPT,
	    "Host name for this listener, for TLS and host matching of web "
	    "services. Default the global Hostname."),
	FLD(config_listener, tls, "TLS", t_tls_ptr, OPT,
	    "TLS configuration, required by every service that uses TLS."),
	FLD(config_listener, smtp_max_message_size, "SMTPMaxMessageSize",
	    sconf_type_int, OPT,
	    "Maximum message size in bytes for SMTP, submission, webmail "
	    "and webapi. Default 104857600 (100 MiB)."),
	FLD(config_listener, tls_session_tickets_disabled,
	    "TLSSessionTicketsDisabled", sconf_type_bool, OPT,
	    "Override whether TLS session tickets are used, for "
	    "interoperability."),
	LSVC(smtp, "SMTP", t_svc_smtp, "Incoming mail from other servers."),
	LSVC(submission, "Submission", t_svc_submission,
	    "Mail submission by clients with STARTTLS."),
	LSVC(submissions, "Submissions", t_svc_submissions,
	    "Mail submission by clients with TLS from the start."),
	LSVC(imap, "IMAP", t_svc_imap, "IMAP with STARTTLS."),
	LSVC(imaps, "IMAPS", t_svc_imaps, "IMAP with TLS from the start."),
	LSVC(account_http, "AccountHTTP", t_svc_web,
	    "Account web interface over plain HTTP."),
	LSVC(account_https, "AccountHTTPS", t_svc_web,
	    "Account web interface over HTTPS."),
	LSVC(admin_http, "AdminHTTP", t_svc_web,
	    "Admin web interface over plain HTTP."),
	LSVC(admin_https, "AdminHTTPS", t_svc_web,
	    "Admin web interface over HTTPS."),
	LSVC(webmail_http, "WebmailHTTP", t_svc_web,
	    "Webmail over plain HTTP."),
	LSVC(webmail_https, "WebmailHTTPS", t_svc_web, "Webmail over HTTPS."),
	LSVC(webapi_http, "WebAPIHTTP", t_svc_web,
	    "HTTP/JSON API over plain HTTP."),
	LSVC(webapi_https, "WebAPIHTTPS", t_svc_web,
	    "HTTP/JSON API over HTTPS."),
	LSVC(metrics_http, "MetricsHTTP", t_svc_metrics,
	    "Prometheus metrics at /metrics."),
	LSVC(pprof_http, "PprofHTTP", t_svc_pprof,
	    "Profiling endpoints; only for debugging."),
	LSVC(autoconfig_https, "AutoconfigHTTPS", t_svc_nontls,
	    "Autoconfig and autodiscover for mail clients, on "
	    "autoconfig.<domain>."),
	LSVC(mtasts_https, "MTASTSHTTPS", t_svc_nontls,
	    "MTA-STS policies on mta-sts.<domain>."),
	LSVC(webserver_http, "WebserverHTTP", t_svc_webserver,
	    "The WebHandlers of domains.conf over plain HTTP."),
	LSVC(webserver_https, "WebserverHTTPS", t_svc_webserver,
	    "The WebHandlers of domains.conf over HTTPS."),
};
static const struct sconf_type t_listener = STRUCT_TYPE(config_listener,
    f_listener);
static const struct sconf_type t_listener_map = MAP_TYPE(t_listener);

static const struct sconf_field f_acme_eab[] = {
	FLD(config_acme_eab, key_id, "KeyID", sconf_type_str, REQ,
	    "Key identifier given by the ACME provider (RFC 8555 7.3.4)."),
	FLD(config_acme_eab, key_file, "KeyFile", sconf_type_str, REQ,
	    "File with the base64url-encoded MAC key. Relative to the "
	    "config directory."),
};
static const struct sconf_type t_acme_eab = STRUCT_TYPE(config_acme_eab,
    f_acme_eab);
static const struct sconf_type t_acme_eab_ptr = PTR_TYPE(t_acme_eab);

static const struct sconf_field f_acme[] = {
	FLD(config_acme, directory_url, "DirectoryURL", sconf_type_str, REQ,
	    "ACME directory URL, e.g. "
	    "https://acme-v02.api.letsencrypt.org/directory."),
	FLD(config_acme, renew_before, "RenewBefore", sconf_type_dur, OPT,
	    "How long before expiry to renew a certificate. Default 720h "
	    "(30 days)."),
	FLD(config_acme, contact_email, "ContactEmail", sconf_type_str, REQ,
	    "Email address for the ACME account, for notices from the "
	    "provider."),
	FLD(config_acme, port, "Port", sconf_type_int, OPT,
	    "Port where tls-alpn-01 validation arrives. Default 443."),
	FLD(config_acme, issuer_domain_name, "IssuerDomainName",
	    sconf_type_str, OPT,
	    "Domain of the certificate issuer, for suggested CAA records. "
	    "Default letsencrypt.org for Let's Encrypt."),
	FLD(config_acme, external_account_binding, "ExternalAccountBinding",
	    t_acme_eab_ptr, OPT,
	    "External account binding, for providers that require it."),
};
static const struct sconf_type t_acme = STRUCT_TYPE(config_acme, f_acme);
static const struct sconf_type t_acme_map = MAP_TYPE(t_acme);

static const struct sconf_field f_smtp_auth[] = {
	FLD(config_smtp_auth, username, "Username", sconf_type_str, REQ,
	    "User name for authentication."),
	FLD(config_smtp_auth, password, "Password", sconf_type_str, REQ,
	    "Password for authentication."),
	FLD(config_smtp_auth, mechanisms, "Mechanisms", t_strlist, OPT,
	    "Allowed SASL mechanisms in order of preference, from "
	    "SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, "
	    "SCRAM-SHA-1, CRAM-MD5, PLAIN. Default all but PLAIN."),
};
static const struct sconf_type t_smtp_auth = STRUCT_TYPE(config_smtp_auth,
    f_smtp_auth);
static const struct sconf_type t_smtp_auth_ptr = PTR_TYPE(t_smtp_auth);

static const struct sconf_field f_transport_smtp[] = {
	FLD(config_transport_smtp, host, "Host", sconf_type_str, REQ,
	    "Host name to connect to, also the name the TLS certificate is "
	    "verified for."),
	FLD(config_transport_smtp, port, "Port", sconf_type_int, OPT,
	    "Port to connect to. Default 465 for Submissions, 587 for "
	    "Submission, 25 for SMTP."),
	FLD(config_transport_smtp, starttls_insecure_skip_verify,
	    "STARTTLSInsecureSkipVerify", sconf_type_bool, OPT,
	    "Require STARTTLS but do not verify the certificate."),
	FLD(config_transport_smtp, no_starttls, "NoSTARTTLS", sconf_type_bool,
	    OPT, "Do not use TLS; credentials and messages go in plain "
		 "text."),
	FLD(config_transport_smtp, auth, "Auth", t_smtp_auth_ptr, OPT,
	    "Authentication to the remote server."),
};
static const struct sconf_type t_transport_smtp = STRUCT_TYPE(
    config_transport_smtp, f_transport_smtp);
static const struct sconf_type t_transport_smtp_ptr = PTR_TYPE(
    t_transport_smtp);

static const struct sconf_field f_transport_socks[] = {
	FLD(config_transport_socks, address, "Address", sconf_type_str, REQ,
	    "host:port of the SOCKS5 proxy."),
	FLD(config_transport_socks, remote_ips, "RemoteIPs", t_strlist, REQ,
	    "IP addresses the proxy connects from, for SPF records."),
	FLD(config_transport_socks, remote_hostname, "RemoteHostname",
	    sconf_type_str, REQ,
	    "Host name used in EHLO; the reverse DNS name of RemoteIPs."),
};
static const struct sconf_type t_transport_socks = STRUCT_TYPE(
    config_transport_socks, f_transport_socks);
static const struct sconf_type t_transport_socks_ptr = PTR_TYPE(
    t_transport_socks);

static const struct sconf_field f_transport_direct[] = {
	FLD(config_transport_direct, disable_ipv4, "DisableIPv4",
	    sconf_type_bool, OPT, "Do not deliver over IPv4."),
	FLD(config_transport_direct, disable_ipv6, "DisableIPv6",
	    sconf_type_bool, OPT, "Do not deliver over IPv6."),
};
static const struct sconf_type t_transport_direct = STRUCT_TYPE(
    config_transport_direct, f_transport_direct);
static const struct sconf_type t_transport_direct_ptr = PTR_TYPE(
    t_transport_direct);

static const struct sconf_field f_transport_fail[] = {
	FLD(config_transport_fail, smtp_code, "SMTPCode", sconf_type_int, OPT,
	    "SMTP code for the failure, 400 to 599. Default 554."),
	FLD(config_transport_fail, smtp_message, "SMTPMessage",
	    sconf_type_str, OPT, "Text for the failure."),
};
static const struct sconf_type t_transport_fail = STRUCT_TYPE(
    config_transport_fail, f_transport_fail);
static const struct sconf_type t_transport_fail_ptr = PTR_TYPE(
    t_transport_fail);

static const struct sconf_field f_transport[] = {
	FLD(config_transport, submissions, "Submissions",
	    t_transport_smtp_ptr, OPT,
	    "Deliver through a smarthost with submission over TLS."),
	FLD(config_transport, submission, "Submission", t_transport_smtp_ptr,
	    OPT, "Deliver through a smarthost with submission and STARTTLS."),
	FLD(config_transport, smtp, "SMTP", t_transport_smtp_ptr, OPT,
	    "Deliver through a smarthost with SMTP and STARTTLS."),
	FLD(config_transport, socks, "Socks", t_transport_socks_ptr, OPT,
	    "Deliver directly, connecting through a SOCKS5 proxy."),
	FLD(config_transport, direct, "Direct", t_transport_direct_ptr, OPT,
	    "Deliver directly, optionally over one address family only."),
	FLD(config_transport, fail, "Fail", t_transport_fail_ptr, OPT,
	    "Fail delivery attempts immediately."),
};
static const struct sconf_type t_transport = STRUCT_TYPE(config_transport,
    f_transport);
static const struct sconf_type t_transport_map = MAP_TYPE(t_transport);

static const struct sconf_field f_special_use[] = {
	FLD(config_special_use, sent, "Sent", sconf_type_str, OPT,
	    "Mailbox for sent messages."),
	FLD(config_special_use, archive, "Archive", sconf_type_str, OPT,
	    "Mailbox for archived messages."),
	FLD(config_special_use, trash, "Trash", sconf_type_str, OPT,
	    "Mailbox for deleted messages."),
	FLD(config_special_use, draft, "Draft", sconf_type_str, OPT,
	    "Mailbox for drafts."),
	FLD(config_special_use, junk, "Junk", sconf_type_str, OPT,
	    "Mailbox for junk."),
};
static const struct sconf_type t_special_use = STRUCT_TYPE(
    config_special_use, f_special_use);

static const struct sconf_field f_initial_mailboxes[] = {
	FLD(config_initial_mailboxes, special_use, "SpecialUse",
	    t_special_use, OPT,
	    "Special-use mailboxes to create for new accounts."),
	FLD(config_initial_mailboxes, regular, "Regular", t_strlist, OPT,
	    "Other mailboxes to create for new accounts."),
};
static const struct sconf_type t_initial_mailboxes = STRUCT_TYPE(
    config_initial_mailboxes, f_initial_mailboxes);

static const struct sconf_field f_tls_ca[] = {
	FLD(config_tls_ca, additional_to_system, "AdditionalToSystem",
	    sconf_type_bool, OPT,
	    "Trust the system CA certificates as well as CertFiles."),
	FLD(config_tls_ca, cert_files, "CertFiles", t_strlist, OPT,
	    "Files with CA certificates in PEM. Relative to the config "
	    "directory."),
};
static const struct sconf_type t_tls_ca = STRUCT_TYPE(config_tls_ca,
    f_tls_ca);
static const struct sconf_type t_tls_ca_ptr = PTR_TYPE(t_tls_ca);

static const struct sconf_field f_static_tls[] = {
	FLD(config_static_tls, ca, "CA", t_tls_ca_ptr, OPT,
	    "CA certificates for verifying remote servers."),
};
static const struct sconf_type t_static_tls = STRUCT_TYPE(config_static_tls,
    f_static_tls);

static const struct sconf_field f_postmaster[] = {
	FLD(config_account_mailbox, account, "Account", sconf_type_str, REQ,
	    "Account name."),
	FLD(config_account_mailbox, mailbox, "Mailbox", sconf_type_str, REQ,
	    "Mailbox to deliver to, e.g. Postmaster."),
};
static const struct sconf_type t_postmaster = STRUCT_TYPE(
    config_account_mailbox, f_postmaster);

static const struct sconf_field f_host_tlsrpt[] = {
	FLD(config_account_mailbox, account, "Account", sconf_type_str, REQ,
	    "Account name."),
	FLD(config_account_mailbox, mailbox, "Mailbox", sconf_type_str, REQ,
	    "Mailbox to deliver reports to, e.g. TLSRPT."),
	FLD(config_account_mailbox, localpart, "Localpart", sconf_type_str,
	    REQ,
	    "Localpart at the host name reports are sent to, e.g. "
	    "tls-reports. ASCII only."),
};
static const struct sconf_type t_host_tlsrpt = STRUCT_TYPE(
    config_account_mailbox, f_host_tlsrpt);

static const struct sconf_type t_intlist = LIST_TYPE(sconf_type_int);

#define LIMITS_CLASSES \
	" Three numbers, for the IP classes IPv4 /32, /26 and /21 (IPv6 " \
	"/64, /48 and /32); a request is refused when any class is over " \
	"its number."

static const struct sconf_field f_limits[] = {
	FLD(config_limits, connections_per_minute, "ConnectionsPerMinute",
	    t_intlist, OPT,
	    "New connections per minute." LIMITS_CLASSES
	    " Default 300, 900, 2700."),
	FLD(config_limits, open_connections, "OpenConnections", t_intlist,
	    OPT,
	    "Connections open at the same time." LIMITS_CLASSES
	    " Default 30, 90, 270."),
	FLD(config_limits, auth_failures_per_minute, "AuthFailuresPerMinute",
	    t_intlist, OPT,
	    "Failed authentications per minute; over it, new submission and "
	    "IMAP connections are refused." LIMITS_CLASSES
	    " Default 10, 30, 90."),
	FLD(config_limits, auth_failures_per_day, "AuthFailuresPerDay",
	    t_intlist, OPT,
	    "Failed authentications per day; over it, new submission and "
	    "IMAP connections are refused." LIMITS_CLASSES
	    " Default 50, 150, 450."),
};
static const struct sconf_type t_limits = STRUCT_TYPE(config_limits,
    f_limits);

static const struct sconf_field f_static[] = {
	FLD(config_static, data_dir, "DataDir", sconf_type_str, REQ,
	    "Directory for all data: accounts, messages, queue, reports, "
	    "ACME state. Relative to the config directory."),
	FLD(config_static, log_level, "LogLevel", sconf_type_str, REQ,
	    "Default log level: error, info, debug, trace, traceauth or "
	    "tracedata. trace logs protocol transcripts, traceauth also "
	    "credentials, tracedata also message data."),
	FLD(config_static, package_log_levels, "PackageLogLevels", t_strmap,
	    OPT,
	    "Log levels per package, e.g. smtpserver, imapserver, queue, "
	    "smtpclient, spf, dkim, dmarc, junk, mtasts, tlsrpt, http."),
	FLD(config_static, user, "User", sconf_type_str, OPT,
	    "User to run as after binding ports. A name, or a number used "
	    "as uid and gid. Default mox."),
	FLD(config_static, no_fix_permissions, "NoFixPermissions",
	    sconf_type_bool, OPT,
	    "Do not fix ownership and permissions of the config and data "
	    "directories at startup."),
	FLD(config_static, hostname, "Hostname", sconf_type_str, REQ,
	    "Fully qualified host name of this mail server, e.g. "
	    "mail.example.com, in Unicode form for international names."),
	FLD(config_static, check_updates, "CheckUpdates", sconf_type_bool, OPT,
	    "Check daily for new releases through DNS and deliver the "
	    "changelog to the postmaster mailbox."),
	FLD(config_static, pedantic, "Pedantic", sconf_type_bool, OPT,
	    "Reject protocol violations that are common in the wild."),
	FLD(config_static, tls, "TLS", t_static_tls, OPT,
	    "Global TLS settings for outgoing connections."),
	FLD(config_static, acme, "ACME", t_acme_map, OPT,
	    "ACME providers for automatic certificates, by name; listeners "
	    "refer to them in TLS.ACME."),
	FLD(config_static, admin_password_file, "AdminPasswordFile",
	    sconf_type_str, OPT,
	    "File with the hashed admin password. Relative to the config "
	    "directory."),
	FLD(config_static, listeners, "Listeners", t_listener_map, REQ,
	    "Listeners: groups of IP addresses with the services on them. "
	    "The listener named public gets extra checks."),
	FLD(config_static, postmaster, "Postmaster", t_postmaster, REQ,
	    "Destination for postmaster mail, for the host name and for "
	    "domains without their own postmaster address."),
	FLD(config_static, host_tlsrpt, "HostTLSRPT", t_host_tlsrpt, OPT,
	    "Destination for TLS reports about the host name (DANE)."),
	FLD(config_static, initial_mailboxes, "InitialMailboxes",
	    t_initial_mailboxes, OPT,
	    "Mailboxes created for new accounts besides Inbox. Default "
	    "Sent, Archive, Trash, Drafts and Junk with special-use flags."),
	FLD(config_static, default_mailboxes, "DefaultMailboxes", t_strlist,
	    OPT, "Deprecated, use InitialMailboxes."),
	FLD(config_static, transports, "Transports", t_transport_map, OPT,
	    "Ways to deliver outgoing mail other than directly, by name; "
	    "routes in domains.conf refer to them."),
	FLD(config_static, no_outgoing_dmarc_reports,
	    "NoOutgoingDMARCReports", sconf_type_bool, OPT,
	    "Do not send DMARC aggregate reports."),
	FLD(config_static, no_outgoing_tls_reports, "NoOutgoingTLSReports",
	    sconf_type_bool, OPT, "Do not send TLS reports."),
	FLD(config_static, outgoing_tls_reports_for_all_success,
	    "OutgoingTLSReportsForAllSuccess", sconf_type_bool, OPT,
	    "Also send TLS reports when all connections succeeded."),
	FLD(config_static, quota_message_size, "QuotaMessageSize",
	    sconf_type_int, OPT,
	    "Default maximum total size of messages per account, in bytes. "
	    "0 is no limit."),
	FLD(config_static, dns_resolvers, "DNSResolvers", t_strlist, OPT,
	    "DNS resolvers to use instead of those of /etc/resolv.conf, as "
	    "ip:port, e.g. 127.0.0.1:53 or [::1]:53."),
	FLD(config_static, public_suffix_list_file, "PublicSuffixListFile",
	    sconf_type_str, OPT,
	    "Path of the public suffix list (publicsuffix.org format) used to "
	    "find organizational domains for DMARC and DKIM. Default "
	    "/usr/share/publicsuffix/public_suffix_list.dat (Debian package "
	    "publicsuffix). A relative path is relative to the config "
	    "directory."),
	FLD(config_static, worker_pool_size, "WorkerPoolSize", sconf_type_int,
	    OPT,
	    "Number of worker threads for connections. Default 4 times the "
	    "number of CPUs, at least 8."),
	FLD(config_static, limits, "Limits", t_limits, OPT,
	    "Per-IP limits of the SMTP, submission and IMAP servers, "
	    "replacing the defaults. Loopback clients of mox localserve are "
	    "exempt."),
};
const struct sconf_type config_static_type = STRUCT_TYPE(config_static,
    f_static);

/* ---- domains.conf ------------------------------------------------------ */

static const struct sconf_field f_route[] = {
	FLD(config_route, from_domain, "FromDomain", t_strlist, OPT,
	    "Match only when the MAIL FROM domain is one of these. A domain "
	    "starting with a dot also matches its subdomains."),
	FLD(config_route, to_domain, "ToDomain", t_strlist, OPT,
	    "Match only when the recipient domain is one of these. A domain "
	    "starting with a dot also matches its subdomains."),
	FLD(config_route, minimum_attempts, "MinimumAttempts", sconf_type_int,
	    OPT,
	    "Match only after at least this many delivery attempts."),
	FLD(config_route, transport, "Transport", sconf_type_str, REQ,
	    "Name of a transport in mox.conf."),
};
static const struct sconf_type t_route = STRUCT_TYPE(config_route, f_route);
static const struct sconf_type t_route_list = LIST_TYPE(t_route);

static const struct sconf_field f_dkim_canon[] = {
	FLD(config_dkim_canon, header_relaxed, "HeaderRelaxed",
	    sconf_type_bool, OPT,
	    "Relaxed canonicalization for headers (RFC 6376 3.4.2)."),
	FLD(config_dkim_canon, body_relaxed, "BodyRelaxed", sconf_type_bool,
	    OPT, "Relaxed canonicalization for the body (RFC 6376 3.4.4)."),
};
static const struct sconf_type t_dkim_canon = STRUCT_TYPE(config_dkim_canon,
    f_dkim_canon);

static const struct sconf_field f_dkim_selector[] = {
	FLD(config_dkim_selector, hash, "Hash", sconf_type_str, OPT,
	    "Hash algorithm: sha256 (default) or the deprecated sha1."),
	FLD(config_dkim_selector, canonicalization, "Canonicalization",
	    t_dkim_canon, OPT, "Canonicalization of signed data."),
	FLD(config_dkim_selector, headers, "Headers", t_strlist, OPT,
	    "Headers to sign; must include From. Default From, To, Cc, Bcc, "
	    "Reply-To, References, In-Reply-To, Subject, Date, Message-Id, "
	    "Content-Type."),
	FLD(config_dkim_selector, dont_seal_headers, "DontSealHeaders",
	    sconf_type_bool, OPT,
	    "Do not list signed headers an extra time, which would prevent "
	    "adding such headers later."),
	FLD(config_dkim_selector, expiration, "Expiration", sconf_type_str,
	    OPT, "Validity of signatures as a duration, e.g. 72h."),
	FLD(config_dkim_selector, private_key_file, "PrivateKeyFile",
	    sconf_type_str, REQ,
	    "PKCS#8 PEM private key: RSA of at least 1024 bits, or ed25519. "
	    "Relative to the config directory."),
};
static const struct sconf_type t_dkim_selector = STRUCT_TYPE(
    config_dkim_selector, f_dkim_selector);
static const struct sconf_type t_dkim_selector_map = MAP_TYPE(
    t_dkim_selector);

static const struct sconf_field f_dkim[] = {
	FLD(config_dkim, selectors, "Selectors", t_dkim_selector_map, OPT,
	    "Selectors with their keys, by selector name."),
	FLD(config_dkim, sign, "Sign", t_strlist, OPT,
	    "Selectors used to sign outgoing messages."),
};
static const struct sconf_type t_dkim = STRUCT_TYPE(config_dkim, f_dkim);

static const struct sconf_field f_dmarc[] = {
	FLD(config_report_addr, localpart, "Localpart", sconf_type_str, REQ,
	    "Localpart of the address reports arrive at, e.g. "
	    "dmarc-reports. ASCII only."),
	FLD(config_report_addr, domain, "Domain", sconf_type_str, OPT,
	    "Configured domain of the address. Default this domain."),
	FLD(config_report_addr, account, "Account", sconf_type_str, REQ,
	    "Account to deliver reports to."),
	FLD(config_report_addr, mailbox, "Mailbox", sconf_type_str, REQ,
	    "Mailbox to deliver reports to, e.g. DMARC."),
};
static const struct sconf_type t_dmarc = STRUCT_TYPE(config_report_addr,
    f_dmarc);
static const struct sconf_type t_dmarc_ptr = PTR_TYPE(t_dmarc);

static const struct sconf_field f_tlsrpt[] = {
	FLD(config_report_addr, localpart, "Localpart", sconf_type_str, REQ,
	    "Localpart of the address reports arrive at, e.g. tls-reports. "
	    "ASCII only."),
	FLD(config_report_addr, domain, "Domain", sconf_type_str, OPT,
	    "Configured domain of the address. Default this domain."),
	FLD(config_report_addr, account, "Account", sconf_type_str, REQ,
	    "Account to deliver reports to."),
	FLD(config_report_addr, mailbox, "Mailbox", sconf_type_str, REQ,
	    "Mailbox to deliver reports to, e.g. TLSRPT."),
};
static const struct sconf_type t_tlsrpt = STRUCT_TYPE(config_report_addr,
    f_tlsrpt);
static const struct sconf_type t_tlsrpt_ptr = PTR_TYPE(t_tlsrpt);

static const struct sconf_field f_mtasts[] = {
	FLD(config_mtasts, policy_id, "PolicyID", sconf_type_str, REQ,
	    "Policy id published in the _mta-sts TXT record; change it "
	    "whenever the policy changes."),
	FLD(config_mtasts, mode, "Mode", sconf_type_str, REQ,
	    "enforce, testing or none."),
	FLD(config_mtasts, max_age, "MaxAge", sconf_type_dur, REQ,
	    "How long senders may cache the policy, e.g. 24h at first and "
	    "weeks later."),
	FLD(config_mtasts, mx, "MX", t_strlist, OPT,
	    "Allowed MX host names; a first label of * matches one label. "
	    "Default the host name."),
};
static const struct sconf_type t_mtasts = STRUCT_TYPE(config_mtasts,
    f_mtasts);
static const struct sconf_type t_mtasts_ptr = PTR_TYPE(t_mtasts);

static const struct sconf_field f_alias[] = {
	FLD(config_alias, addresses, "Addresses", t_strlist, REQ,
	    "Member addresses; each must be an address of a local account."),
	FLD(config_alias, post_public, "PostPublic", sconf_type_bool, OPT,
	    "Anyone may send to the list, not only members."),
	FLD(config_alias, list_members, "ListMembers", sconf_type_bool, OPT,
	    "Members may see the member list."),
	FLD(config_alias, allow_msg_from, "AllowMsgFrom", sconf_type_bool,
	    OPT, "Members may send with the list address as message From."),
};
static const struct sconf_type t_alias = STRUCT_TYPE(config_alias, f_alias);
static const struct sconf_type t_alias_map = MAP_TYPE(t_alias);

static const struct sconf_field f_domain[] = {
	FLD(config_domain, disabled, "Disabled", sconf_type_bool, OPT,
	    "Refuse mail and logins for the domain while keeping its "
	    "configuration."),
	FLD(config_domain, description, "Description", sconf_type_str, OPT,
	    "Free-form description."),
	FLD(config_domain, client_settings_domain, "ClientSettingsDomain",
	    sconf_type_str, OPT,
	    "Host name given to mail clients, e.g. mail.<domain>, a CNAME to "
	    "the host name."),
	FLD(config_domain, localpart_catchall_separator,
	    "LocalpartCatchallSeparator", sconf_type_str, OPT,
	    "Separator such as +: user+tag@domain is delivered to "
	    "user@domain. Configured addresses may not contain it."),
	FLD(config_domain, localpart_catchall_separators,
	    "LocalpartCatchallSeparators", t_strlist, OPT,
	    "Several separators; not together with "
	    "LocalpartCatchallSeparator."),
	FLD(config_domain, localpart_case_sensitive, "LocalpartCaseSensitive",
	    sconf_type_bool, OPT,
	    "Compare localparts case-sensitively. Default case-insensitive."),
	FLD(config_domain, dkim, "DKIM", t_dkim, OPT,
	    "DKIM signing for outgoing mail."),
	FLD(config_domain, dmarc, "DMARC", t_dmarc_ptr, OPT,
	    "Address for incoming DMARC aggregate reports."),
	FLD(config_domain, mtasts, "MTASTS", t_mtasts_ptr, OPT,
	    "MTA-STS policy; needs a listener with MTASTSHTTPS."),
	FLD(config_domain, tlsrpt, "TLSRPT", t_tlsrpt_ptr, OPT,
	    "Address for incoming TLS reports."),
	FLD(config_domain, routes, "Routes", t_route_list, OPT,
	    "Outgoing routes for mail from this domain, evaluated after the "
	    "account's routes."),
	FLD(config_domain, aliases, "Aliases", t_alias_map, OPT,
	    "Lists, by localpart."),
};
static const struct sconf_type t_domain = STRUCT_TYPE(config_domain,
    f_domain);
static const struct sconf_type t_domain_map = MAP_TYPE(t_domain);

static const struct sconf_field f_ruleset[] = {
	FLD(config_ruleset, smtp_mail_from_regexp, "SMTPMailFromRegexp",
	    sconf_type_str, OPT,
	    "Regular expression matched against the SMTP MAIL FROM "
	    "address."),
	FLD(config_ruleset, msg_from_regexp, "MsgFromRegexp", sconf_type_str,
	    OPT, "Regular expression matched against the message From "
		 "address."),
	FLD(config_ruleset, verified_domain, "VerifiedDomain", sconf_type_str,
	    OPT,
	    "Domain (or a parent) verified by EHLO, SPF or DKIM."),
	FLD(config_ruleset, headers_regexp, "HeadersRegexp", t_strmap, OPT,
	    "Header name regexp to value regexp, in lower case; every pair "
	    "must match a header."),
	FLD(config_ruleset, is_forward, "IsForward", sconf_type_bool, OPT,
	    "Messages are forwarded from another address; needs "
	    "SMTPMailFromRegexp and VerifiedDomain. Skips DMARC rejects and "
	    "keeps the forwarder out of reputation."),
	FLD(config_ruleset, list_allow_domain, "ListAllowDomain",
	    sconf_type_str, OPT,
	    "Mailing list domain: when verified, junk checks and DMARC "
	    "rejects are skipped."),
	FLD(config_ruleset, accept_rejects_to_mailbox,
	    "AcceptRejectsToMailbox", sconf_type_str, OPT,
	    "Accept messages that would be rejected into this mailbox."),
	FLD(config_ruleset, mailbox, "Mailbox", sconf_type_str, REQ,
	    "Mailbox to deliver matching messages to."),
	FLD(config_ruleset, comment, "Comment", sconf_type_str, OPT,
	    "Free-form comment."),
};
static const struct sconf_type t_ruleset = STRUCT_TYPE(config_ruleset,
    f_ruleset);
static const struct sconf_type t_ruleset_list = LIST_TYPE(t_ruleset);

static const struct sconf_field f_destination[] = {
	FLD(config_destination, mailbox, "Mailbox", sconf_type_str, OPT,
	    "Mailbox for messages no ruleset matches. Default Inbox."),
	FLD(config_destination, rulesets, "Rulesets", t_ruleset_list, OPT,
	    "Delivery rules; the first ruleset whose conditions all match "
	    "picks the mailbox."),
	FLD(config_destination, smtp_error, "SMTPError", sconf_type_str, OPT,
	    "Reject recipients with this SMTP reply, starting with 421 or "
	    "550."),
	FLD(config_destination, message_auth_required_smtp_error,
	    "MessageAuthRequiredSMTPError", sconf_type_str, OPT,
	    "Reject messages whose From is not aligned with SPF or DKIM, "
	    "with this SMTP reply."),
	FLD(config_destination, full_name, "FullName", sconf_type_str, OPT,
	    "Display name for messages sent from this address."),
};
static const struct sconf_type t_destination = STRUCT_TYPE(
    config_destination, f_destination);
static const struct sconf_type t_destination_map = MAP_TYPE(t_destination);

static const struct sconf_field f_outgoing_webhook[] = {
	FLD(config_webhook, url, "URL", sconf_type_str, REQ,
	    "http or https URL events are posted to."),
	FLD(config_webhook, authorization, "Authorization", sconf_type_str,
	    OPT, "Value for the Authorization header."),
	FLD(config_webhook, events, "Events", t_strlist, OPT,
	    "Events to post: delivered, suppressed, delayed, failed, "
	    "relayed, expanded, canceled, unrecognized. Default all."),
};
static const struct sconf_type t_outgoing_webhook = STRUCT_TYPE(
    config_webhook, f_outgoing_webhook);
static const struct sconf_type t_outgoing_webhook_ptr = PTR_TYPE(
    t_outgoing_webhook);

static const struct sconf_field f_incoming_webhook[] = {
	FLD(config_webhook, url, "URL", sconf_type_str, REQ,
	    "http or https URL incoming messages are posted to."),
	FLD(config_webhook, authorization, "Authorization", sconf_type_str,
	    OPT, "Value for the Authorization header."),
};
static const struct sconf_type t_incoming_webhook = STRUCT_TYPE(
    config_webhook, f_incoming_webhook);
static const struct sconf_type t_incoming_webhook_ptr = PTR_TYPE(
    t_incoming_webhook);

static const struct sconf_field f_subject_pass[] = {
	FLD(config_subject_pass, period, "Period", sconf_type_dur, REQ,
	    "How long a subject pass token is valid, e.g. 12h."),
};
static const struct sconf_type t_subject_pass = STRUCT_TYPE(
    config_subject_pass, f_subject_pass);

static const struct sconf_field f_auto_junk[] = {
	FLD(config_auto_junk, enabled, "Enabled", sconf_type_bool, REQ,
	    "Set junk and not-junk flags from the mailbox a message is "
	    "delivered or moved to."),
	FLD(config_auto_junk, junk_mailbox_regexp, "JunkMailboxRegexp",
	    sconf_type_str, OPT,
	    "Mailboxes whose messages are junk, e.g. ^(junk|spam)."),
	FLD(config_auto_junk, neutral_mailbox_regexp, "NeutralMailboxRegexp",
	    sconf_type_str, OPT,
	    "Mailboxes whose messages get neither flag, e.g. "
	    "^(inbox|neutral|postmaster|dmarc|tlsrpt|rejects)."),
	FLD(config_auto_junk, not_junk_mailbox_regexp,
	    "NotJunkMailboxRegexp", sconf_type_str, OPT,
	    "Mailboxes whose messages are not junk. Empty: all others."),
};
static const struct sconf_type t_auto_junk = STRUCT_TYPE(config_auto_junk,
    f_auto_junk);

static const struct sconf_field f_junk_params[] = {
	FLD(config_junk_params, onegrams, "Onegrams", sconf_type_bool, OPT,
	    "Use single words."),
	FLD(config_junk_params, twograms, "Twograms", sconf_type_bool, OPT,
	    "Use pairs of words."),
	FLD(config_junk_params, threegrams, "Threegrams", sconf_type_bool, OPT,
	    "Use triples of words."),
	FLD(config_junk_params, max_power, "MaxPower", sconf_type_float, REQ,
	    "Clamp word probabilities to [MaxPower, 1-MaxPower]; 0 to 0.5, "
	    "e.g. 0.01."),
	FLD(config_junk_params, top_words, "TopWords", sconf_type_int, REQ,
	    "Number of strongest ham and spam words used, e.g. 10."),
	FLD(config_junk_params, ignore_words, "IgnoreWords", sconf_type_float,
	    OPT,
	    "Ignore words with a probability this close to 0.5; 0 to 0.5, "
	    "e.g. 0.1."),
	FLD(config_junk_params, rare_words, "RareWords", sconf_type_int, OPT,
	    "Words seen at most this often count less, e.g. 2."),
};
static const struct sconf_type t_junk_params = STRUCT_TYPE(
    config_junk_params, f_junk_params);

static const struct sconf_field f_junk_filter[] = {
	FLD(config_junk_filter, threshold, "Threshold", sconf_type_float, REQ,
	    "Spam probability above which messages are rejected, e.g. "
	    "0.95."),
	FLD(config_junk_filter, params, "Params", t_junk_params, REQ,
	    "Parameters of the classifier."),
};
static const struct sconf_type t_junk_filter = STRUCT_TYPE(
    config_junk_filter, f_junk_filter);
static const struct sconf_type t_junk_filter_ptr = PTR_TYPE(t_junk_filter);

static const struct sconf_field f_account[] = {
	FLD(config_account, outgoing_webhook, "OutgoingWebhook",
	    t_outgoing_webhook_ptr, OPT,
	    "Webhook for events about outgoing messages."),
	FLD(config_account, incoming_webhook, "IncomingWebhook",
	    t_incoming_webhook_ptr, OPT,
	    "Webhook for incoming messages."),
	FLD(config_account, from_id_login_addresses, "FromIDLoginAddresses",
	    t_strlist, OPT,
	    "Login addresses that make the SMTP MAIL FROM of each outgoing "
	    "message unique; the domain needs a catchall separator."),
	FLD(config_account, keep_retired_message_period,
	    "KeepRetiredMessagePeriod", sconf_type_dur, OPT,
	    "How long to keep delivered and failed messages from the queue."),
	FLD(config_account, keep_retired_webhook_period,
	    "KeepRetiredWebhookPeriod", sconf_type_dur, OPT,
	    "How long to keep finished webhooks."),
	FLD(config_account, login_disabled, "LoginDisabled", sconf_type_str,
	    OPT,
	    "Refuse all logins with this message; delivery continues."),
	FLD(config_account, domain, "Domain", sconf_type_str, REQ,
	    "Default domain of the account."),
	FLD(config_account, description, "Description", sconf_type_str, OPT,
	    "Free-form description."),
	FLD(config_account, full_name, "FullName", sconf_type_str, OPT,
	    "Display name for outgoing messages."),
	FLD(config_account, destinations, "Destinations", t_destination_map,
	    OPT,
	    "Addresses of the account, used for login and delivery. "
	    "@domain is a catchall."),
	FLD(config_account, subject_pass, "SubjectPass", t_subject_pass, OPT,
	    "Let rejected senders pass with a token in the subject."),
	FLD(config_account, quota_message_size, "QuotaMessageSize",
	    sconf_type_int, OPT,
	    "Maximum total size of messages in bytes. 0 inherits the "
	    "global default, below 0 is unlimited."),
	FLD(config_account, rejects_mailbox, "RejectsMailbox", sconf_type_str,
	    OPT,
	    "Mailbox that keeps rejected messages for a while, e.g. "
	    "Rejects."),
	FLD(config_account, keep_rejects, "KeepRejects", sconf_type_bool, OPT,
	    "Do not clean up the rejects mailbox automatically."),
	FLD(config_account, automatic_junk_flags, "AutomaticJunkFlags",
	    t_auto_junk, OPT, "Junk flags from mailbox names."),
	FLD(config_account, junk_filter, "JunkFilter", t_junk_filter_ptr, OPT,
	    "Content-based junk filter that learns from flagged messages."),
	FLD(config_account, max_outgoing_messages_per_day,
	    "MaxOutgoingMessagesPerDay", sconf_type_int, OPT,
	    "Maximum messages sent in 24 hours. Default 1000."),
	FLD(config_account, max_first_time_recipients_per_day,
	    "MaxFirstTimeRecipientsPerDay", sconf_type_int, OPT,
	    "Maximum new recipients in 24 hours. Default 200."),
	FLD(config_account, no_first_time_sender_delay,
	    "NoFirstTimeSenderDelay", sconf_type_bool, OPT,
	    "Do not delay first-time senders to this account."),
	FLD(config_account, no_custom_password, "NoCustomPassword",
	    sconf_type_bool, OPT,
	    "The user may only set generated passwords."),
	FLD(config_account, routes, "Routes", t_route_list, OPT,
	    "Outgoing routes for this account, evaluated first."),
	FLD(config_account, imap_capabilities_disabled,
	    "IMAPCapabilitiesDisabled", t_strlist, OPT,
	    "IMAP capabilities hidden after login."),
	FLD(config_account, introbox, "Introbox", sconf_type_str, OPT,
	    "Mailbox for messages from first-time senders instead of "
	    "Inbox."),
};
static const struct sconf_type t_account = STRUCT_TYPE(config_account,
    f_account);
static const struct sconf_type t_account_map = MAP_TYPE(t_account);

static const struct sconf_field f_web_static[] = {
	FLD(config_web_static, strip_prefix, "StripPrefix", sconf_type_str,
	    OPT, "Path prefix removed before looking up files; starts with "
		 "/."),
	FLD(config_web_static, root, "Root", sconf_type_str, REQ,
	    "Directory with the files, relative to the working directory."),
	FLD(config_web_static, list_files, "ListFiles", sconf_type_bool, OPT,
	    "List directories without index.html."),
	FLD(config_web_static, continue_not_found, "ContinueNotFound",
	    sconf_type_bool, OPT,
	    "Try the next handler when no file is found."),
	FLD(config_web_static, response_headers, "ResponseHeaders", t_strmap,
	    OPT, "Headers added to responses."),
};
static const struct sconf_type t_web_static = STRUCT_TYPE(config_web_static,
    f_web_static);
static const struct sconf_type t_web_static_ptr = PTR_TYPE(t_web_static);

static const struct sconf_field f_web_redirect[] = {
	FLD(config_web_redirect, base_url, "BaseURL", sconf_type_str, OPT,
	    "URL without path to redirect to; //host keeps the scheme."),
	FLD(config_web_redirect, orig_path_regexp, "OrigPathRegexp",
	    sconf_type_str, OPT,
	    "Regular expression for the path; with ReplacePath."),
	FLD(config_web_redirect, replace_path, "ReplacePath", sconf_type_str,
	    OPT, "Replacement path, with $1 for groups."),
	FLD(config_web_redirect, status_code, "StatusCode", sconf_type_int,
	    OPT, "Redirect status, 300 to 399. Default 308."),
};
static const struct sconf_type t_web_redirect = STRUCT_TYPE(
    config_web_redirect, f_web_redirect);
static const struct sconf_type t_web_redirect_ptr = PTR_TYPE(t_web_redirect);

static const struct sconf_field f_web_forward[] = {
	FLD(config_web_forward, strip_path, "StripPath", sconf_type_bool, OPT,
	    "Remove the matched path prefix before forwarding."),
	FLD(config_web_forward, url, "URL", sconf_type_str, REQ,
	    "Backend URL to forward requests to."),
	FLD(config_web_forward, response_headers, "ResponseHeaders", t_strmap,
	    OPT, "Headers added to responses."),
};
static const struct sconf_type t_web_forward = STRUCT_TYPE(
    config_web_forward, f_web_forward);
static const struct sconf_type t_web_forward_ptr = PTR_TYPE(t_web_forward);

static const struct sconf_field f_web_internal[] = {
	FLD(config_web_internal, base_path, "BasePath", sconf_type_str, REQ,
	    "Path to serve the service on; starts and ends with /."),
	FLD(config_web_internal, service, "Service", sconf_type_str, REQ,
	    "admin, account, webmail or webapi."),
};
static const struct sconf_type t_web_internal = STRUCT_TYPE(
    config_web_internal, f_web_internal);
static const struct sconf_type t_web_internal_ptr = PTR_TYPE(t_web_internal);

static const struct sconf_field f_webhandler[] = {
	FLD(config_webhandler, log_name, "LogName", sconf_type_str, OPT,
	    "Name in logs and metrics. Default the handler's index."),
	FLD(config_webhandler, domain, "Domain", sconf_type_str, REQ,
	    "Host the request must be for, exactly."),
	FLD(config_webhandler, path_regexp, "PathRegexp", sconf_type_str, REQ,
	    "Regular expression for the path; must start with ^."),
	FLD(config_webhandler, dont_redirect_plain_http,
	    "DontRedirectPlainHTTP", sconf_type_bool, OPT,
	    "Serve plain HTTP requests instead of redirecting to HTTPS."),
	FLD(config_webhandler, compress, "Compress", sconf_type_bool, OPT,
	    "Compress responses with gzip when the client accepts it."),
	FLD(config_webhandler, web_static, "WebStatic", t_web_static_ptr, OPT,
	    "Serve static files."),
	FLD(config_webhandler, web_redirect, "WebRedirect",
	    t_web_redirect_ptr, OPT, "Redirect requests."),
	FLD(config_webhandler, web_forward, "WebForward", t_web_forward_ptr,
	    OPT, "Forward requests to a backend."),
	FLD(config_webhandler, web_internal, "WebInternal",
	    t_web_internal_ptr, OPT, "Serve an internal service."),
};
static const struct sconf_type t_webhandler = STRUCT_TYPE(config_webhandler,
    f_webhandler);
static const struct sconf_type t_webhandler_list = LIST_TYPE(t_webhandler);

static const struct sconf_field f_dynamic[] = {
	FLD(config_dynamic, domains, "Domains", t_domain_map, REQ,
	    "Domains mail is accepted for, by name in Unicode form."),
	FLD(config_dynamic, accounts, "Accounts", t_account_map, REQ,
	    "Accounts, by name; a name is not an address."),
	FLD(config_dynamic, web_domain_redirects, "WebDomainRedirects",
	    t_strmap, OPT,
	    "Redirect all requests for a host to https://<other host>."),
	FLD(config_dynamic, web_handlers, "WebHandlers", t_webhandler_list,
	    OPT,
	    "Web server handlers, tried in order; exactly one of WebStatic, "
	    "WebRedirect, WebForward and WebInternal each."),
	FLD(config_dynamic, routes, "Routes", t_route_list, OPT,
	    "Global outgoing routes, after account and domain routes. "
	    "Without a match mail is delivered directly."),
	FLD(config_dynamic, monitor_dnsbls, "MonitorDNSBLs", t_strlist, OPT,
	    "DNS block list zones to check our own IPs against."),
};
const struct sconf_type config_dynamic_type = STRUCT_TYPE(config_dynamic,
    f_dynamic);
