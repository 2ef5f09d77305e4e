/*
 * config_check.c: defaults and validation of mox.conf and domains.conf
 * after binding (spec/config.md section 3.1 "Validation", section 4.2
 * "Validation highlights"; smtp.md section 9 for address
 * canonicalisation). Every problem is reported as "file:line: Path: what"
 * and all of them are collected. Domain names follow RFC 5890/5891 (IDNA,
 * through libidn2); regular expressions are compiled with PCRE2 to check
 * them. Runs while loading, before a snapshot is published: no locking.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "config/config.h"
#include "config/config_int.h"
#include "lib/banned.h"

struct chk {
	const char *file; /* name in messages */
	struct buf *err;
	struct buf path;  /* dotted path of the struct being checked */
	unsigned nerr;
};

static void
chk_init(struct chk *c, const char *file, struct buf *err)
{
	c->file = file;
	c->err = err;
	c->nerr = 0;
	buf_init(&c->path, 64 * 1024);
}

/* Append a path element; returns the previous length for chk_pop(). */
static size_t PRINTF_LIKE(2, 3)
chk_push(struct chk *c, const char *fmt, ...)
{
	size_t old = c->path.len;
	va_list ap;

	if (old > 0 && fmt[0] != '[')
		buf_addc(&c->path, '.');
	va_start(ap, fmt);
	buf_vaddf(&c->path, fmt, ap);
	va_end(ap);
	return old;
}

static void
chk_pop(struct chk *c, size_t len)
{
	buf_truncate(&c->path, len);
}

static void PRINTF_LIKE(4, 0)
chk_verr(struct chk *c, unsigned line, const char *field, const char *fmt,
    va_list ap)
{
	c->nerr++;
	if (line > 0)
		buf_addf(c->err, "%s:%u: ", c->file, line);
	else
		buf_addf(c->err, "%s: ", c->file);
	if (c->path.len > 0 || field != NULL)
		buf_addf(c->err, "%s%s%s: ", c->path.data,
		    c->path.len > 0 && field != NULL ? "." : "",
		    field != NULL ? field : "");
	buf_vaddf(c->err, fmt, ap);
	buf_addc(c->err, '\n');
}

/* Error about field (NULL: the struct itself) of the struct at pos. */
static void PRINTF_LIKE(4, 5)
chk_err(struct chk *c, const struct sconf_pos *pos, const char *field,
    const char *fmt, ...)
{
	unsigned line = pos != NULL ? (field != NULL ? sconf_line(pos, field)
						     : pos->line)
				    : 0;
	va_list ap;

	va_start(ap, fmt);
	chk_verr(c, line, field, fmt, ap);
	va_end(ap);
}

/* Error about item i of list or map field of the struct at pos, at the
 * item's own line when known. */
static void PRINTF_LIKE(6, 7)
chk_erri(struct chk *c, const struct sconf_pos *pos, const char *field,
    const unsigned *lines, size_t i, const char *fmt, ...)
{
	unsigned line = lines != NULL && lines[i] != 0 ? lines[i]
						       : sconf_line(pos, field);
	va_list ap;

	va_start(ap, fmt);
	chk_verr(c, line, field, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------------
 * Value checks
 */

static bool
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static void
check_domain(struct chk *c, const struct sconf_pos *pos, const char *field,
    const char *d)
{
	const char *why = NULL;
	char *canon = config_domain_canon(d, &why);

	if (canon == NULL)
		chk_err(c, pos, field, "%s: %s", why, d != NULL ? d : "");
	free(canon);
}

/* Domain names in a list; with dot_prefix a leading "." is allowed. */
static void
check_domains(struct chk *c, const struct sconf_pos *pos, const char *field,
    const struct sconf_strlist *l, bool dot_prefix)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *d = l->v[i], *why = NULL;
		char *cd = config_domain_canon(
		    dot_prefix && d[0] == '.' ? d + 1 : d, &why);

		if (cd == NULL)
			chk_erri(c, pos, field, l->lines, i, "%s: %s", why, d);
		free(cd);
	}
}

static bool
ip_parse(const char *s, bool *v6, bool *loopback, bool *unspec)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		uint32_t h = ntohl(a4.s_addr);

		*v6 = false;
		*loopback = (h >> 24) == 127;
		*unspec = h == 0;
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		*v6 = true;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6);
		*unspec = IN6_IS_ADDR_UNSPECIFIED(&a6);
		return true;
	}
	return false;
}

static void
check_ips(struct chk *c, const struct sconf_pos *pos, const char *field,
    const struct sconf_strlist *l, bool public_only)
{
	for (size_t i = 0; i < l->n; i++) {
		bool v6, lo, un;

		if (!ip_parse(l->v[i], &v6, &lo, &un))
			chk_erri(c, pos, field, l->lines, i,
			    "invalid IP address %s", l->v[i]);
		else if (public_only && (lo || un))
			chk_erri(c, pos, field, l->lines, i,
			    "IP address %s must not be loopback or "
			    "unspecified", l->v[i]);
	}
}

/* "ip:port" or "[ip6]:port" as in DNSResolvers. */
static int
hostport_ip(const char *s, const char **why)
{
	const char *colon, *host = s;
	char ip[64];
	size_t hlen;
	uint64_t port;
	bool v6, lo, un;

	colon = strrchr(s, ':');
	if (colon == NULL) {
		*why = "expected ip:port";
		return -1;
	}
	hlen = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hlen < 2 || s[hlen - 1] != ']') {
			*why = "expected [ipv6]:port";
			return -1;
		}
		host = s + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(ip)) {
		*why = "invalid IP address";
		return -1;
	}
	memcpy(ip, host, hlen);
	ip[hlen] = '\0';
	if (!ip_parse(ip, &v6, &lo, &un) || (v6 && s[0] != '[') ||
	    (!v6 && s[0] == '[')) {
		*why = "invalid IP address (IPv6 needs brackets)";
		return -1;
	}
	if (span_u64(span_of_cstr(colon + 1), 65535, &port) == -1 ||
	    port == 0) {
		*why = "invalid port";
		return -1;
	}
	return 0;
}

static void
check_port(struct chk *c, const struct sconf_pos *pos, const char *field,
    int64_t port)
{
	if (port < 1 || port > 65535)
		chk_err(c, pos, field, "port %lld out of range 1-65535",
		    (long long)port);
}

static void
check_regexp(struct chk *c, const struct sconf_pos *pos, const char *field,
    const char *re)
{
	pcre2_code *code;
	int errcode = 0;
	PCRE2_SIZE off = 0;
	PCRE2_UCHAR msg[128];

	if (re == NULL)
		return;
	code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
	    &errcode, &off, NULL);
	if (code != NULL) {
		pcre2_code_free(code);
		return;
	}
	if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
		msg[0] = '\0';
	chk_err(c, pos, field, "invalid regular expression at offset %zu: %s",
	    (size_t)off, (const char *)msg);
}

/* http or https URL with a host; with scheme_relative, "//host" too. */
static int
url_check(const char *s, bool scheme_relative, const char **why)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;

	if (u == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (scheme_relative && strncmp(s, "//", 2) == 0) {
		struct buf t;

		buf_init(&t, 16 * 1024);
		buf_addf(&t, "https:%s", s);
		rc = buf_failed(&t) ? -1 : url_check(t.data, false, why);
		buf_release(&t);
		curl_url_cleanup(u);
		return rc;
	}
	if (curl_url_set(u, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME) !=
	    CURLUE_OK) {
		*why = "invalid URL";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		*why = "URL scheme must be http or https";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    host[0] == '\0') {
		*why = "URL without host";
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

static void
check_url(struct chk *c, const struct sconf_pos *pos, const char *field,
    const char *s, bool scheme_relative)
{
	const char *why = NULL;

	if (empty(s)) {
		chk_err(c, pos, field, "URL required");
		return;
	}
	if (url_check(s, scheme_relative, &why) == -1)
		chk_err(c, pos, field, "%s: %s", why, s);
}

static bool
str_in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

static void
check_mailbox(struct chk *c, const struct sconf_pos *pos, const char *field,
    const char *name)
{
	if (name == NULL)
		return;
	if (name[0] == '\0')
		chk_err(c, pos, field, "empty mailbox name");
	else if (name[0] == '/' || name[strlen(name) - 1] == '/' ||
	    strstr(name, "//") != NULL)
		chk_err(c, pos, field, "invalid mailbox name %s", name);
	else {
		for (const char *p = name; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				chk_err(c, pos, field,
				    "control character in mailbox name");
				break;
			}
		}
	}
}

static void
check_mailboxes(struct chk *c, const struct sconf_pos *pos, const char *field,
    const struct sconf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct sconf_pos lp = { .line = l->lines != NULL
			    ? l->lines[i]
			    : sconf_line(pos, field) };

		check_mailbox(c, &lp, field, l->v[i]);
	}
}

static bool
is_inbox(const char *name)
{
	return name != NULL && strcasecmp(name, "Inbox") == 0;
}

/* ---------------------------------------------------------------------
 * mox.conf
 */

static void
listener_default(struct config_service *s, int64_t port, const char *path)
{
	if (s->port == 0)
		s->port = port;
	if (path != NULL && s->path == NULL)
		s->path = xstrdup(path);
}

static void
listener_defaults(struct config_listener *l)
{
	listener_default(&l->smtp, 25, NULL);
	if (!sconf_present(&l->smtp.pos, "FirstTimeSenderDelay"))
		l->smtp.first_time_sender_delay = 15 * NS_PER_SEC;
	listener_default(&l->submission, 587, NULL);
	listener_default(&l->submissions, 465, NULL);
	listener_default(&l->imap, 143, NULL);
	listener_default(&l->imaps, 993, NULL);
	listener_default(&l->account_http, 80, "/");
	listener_default(&l->account_https, 443, "/");
	listener_default(&l->admin_http, 80, "/admin/");
	listener_default(&l->admin_https, 443, "/admin/");
	listener_default(&l->webmail_http, 80, "/webmail/");
	listener_default(&l->webmail_https, 443, "/webmail/");
	listener_default(&l->webapi_http, 80, "/webapi/");
	listener_default(&l->webapi_https, 443, "/webapi/");
	listener_default(&l->metrics_http, 8010, NULL);
	listener_default(&l->pprof_http, 8011, NULL);
	listener_default(&l->autoconfig_https, 443, NULL);
	listener_default(&l->mtasts_https, 443, NULL);
	listener_default(&l->webserver_http, 80, NULL);
	listener_default(&l->webserver_https, 443, NULL);
	if (l->smtp_max_message_size == 0)
		l->smtp_max_message_size = 104857600;
	if (l->tls != NULL && l->tls->min_version == NULL)
		l->tls->min_version = xstrdup("TLSv1.2");
}

static const struct {
	const char *name;
	size_t off;
	bool web;
} services[] = {
	{ "SMTP", offsetof(struct config_listener, smtp), false },
	{ "Submission", offsetof(struct config_listener, submission), false },
	{ "Submissions", offsetof(struct config_listener, submissions), false },
	{ "IMAP", offsetof(struct config_listener, imap), false },
	{ "IMAPS", offsetof(struct config_listener, imaps), false },
	{ "AccountHTTP", offsetof(struct config_listener, account_http), true },
	{ "AccountHTTPS", offsetof(struct config_listener, account_https),
	    true },
	{ "AdminHTTP", offsetof(struct config_listener, admin_http), true },
	{ "AdminHTTPS", offsetof(struct config_listener, admin_https), true },
	{ "WebmailHTTP", offsetof(struct config_listener, webmail_http), true },
	{ "WebmailHTTPS", offsetof(struct config_listener, webmail_https),
	    true },
	{ "WebAPIHTTP", offsetof(struct config_listener, webapi_http), true },
	{ "WebAPIHTTPS", offsetof(struct config_listener, webapi_https), true },
	{ "MetricsHTTP", offsetof(struct config_listener, metrics_http),
	    false },
	{ "PprofHTTP", offsetof(struct config_listener, pprof_http), false },
	{ "AutoconfigHTTPS", offsetof(struct config_listener, autoconfig_https),
	    false },
	{ "MTASTSHTTPS", offsetof(struct config_listener, mtasts_https),
	    false },
	{ "WebserverHTTP", offsetof(struct config_listener, webserver_http),
	    false },
	{ "WebserverHTTPS", offsetof(struct config_listener, webserver_https),
	    false },
};

/* Whether an enabled service needs the listener's TLS config. */
static bool
needs_tls(const struct config_listener *l, const char *name)
{
	if (strcmp(name, "SMTP") == 0)
		return !l->smtp.no_starttls;
	if (strcmp(name, "Submission") == 0)
		return !l->submission.no_require_starttls;
	if (strcmp(name, "Submissions") == 0 || strcmp(name, "IMAPS") == 0)
		return true;
	if (strcmp(name, "AutoconfigHTTPS") == 0)
		return !l->autoconfig_https.non_tls;
	if (strcmp(name, "MTASTSHTTPS") == 0)
		return !l->mtasts_https.non_tls;
	return strlen(name) > 5 &&
	    strcmp(name + strlen(name) - 5, "HTTPS") == 0;
}

static void
check_tls(struct chk *c, const struct config_static *st,
    const struct config_tls *t)
{
	static const char *const versions[] = { "TLSv1.0", "TLSv1.1",
		"TLSv1.2", "TLSv1.3" };
	size_t p = chk_push(c, "TLS");
	size_t i;

	if (t->acme != NULL && t->key_certs.n > 0)
		chk_err(c, &t->pos, "ACME", "ACME and KeyCerts are exclusive");
	else if (empty(t->acme) && t->key_certs.n == 0)
		chk_err(c, &t->pos, NULL, "TLS needs ACME or KeyCerts");
	if (!empty(t->acme)) {
		for (i = 0; i < st->acme.n; i++)
			if (strcmp(st->acme.keys[i], t->acme) == 0)
				break;
		if (i == st->acme.n)
			chk_err(c, &t->pos, "ACME", "unknown ACME provider %s",
			    t->acme);
	}
	for (i = 0; i < t->key_certs.n; i++) {
		const struct config_keycert *kc = &t->key_certs.v[i];
		size_t q = chk_push(c, "KeyCerts[%zu]", i);

		if (empty(kc->cert_file))
			chk_err(c, &kc->pos, "CertFile", "file name required");
		if (empty(kc->key_file))
			chk_err(c, &kc->pos, "KeyFile", "file name required");
		chk_pop(c, q);
	}
	if (t->min_version != NULL &&
	    !str_in(t->min_version, versions, ARRAY_LEN(versions)))
		chk_err(c, &t->pos, "MinVersion",
		    "unknown TLS version %s (TLSv1.0 to TLSv1.3)",
		    t->min_version);
	chk_pop(c, p);
}

static void
check_listener(struct chk *c, const struct config_static *st,
    const char *name, struct config_listener *l)
{
	size_t p = chk_push(c, "Listeners.%s", name);

	listener_defaults(l);
	if (l->ips.n == 0)
		chk_err(c, &l->pos, "IPs", "at least one IP address required");
	check_ips(c, &l->pos, "IPs", &l->ips, false);
	check_ips(c, &l->pos, "NATIPs", &l->nat_ips, true);
	if (l->ips_nated && l->nat_ips.n > 0)
		chk_err(c, &l->pos, "IPsNATed",
		    "IPsNATed and NATIPs are exclusive");
	if (l->hostname != NULL)
		check_domain(c, &l->pos, "Hostname", l->hostname);
	if (l->tls != NULL)
		check_tls(c, st, l->tls);
	if (l->smtp_max_message_size < 0)
		chk_err(c, &l->pos, "SMTPMaxMessageSize", "must be positive");
	for (size_t i = 0; i < ARRAY_LEN(services); i++) {
		const struct config_service *s =
		    (const struct config_service *)((const char *)l +
			services[i].off);
		size_t q;

		if (!s->enabled)
			continue;
		q = chk_push(c, "%s", services[i].name);
		check_port(c, &s->pos, "Port", s->port);
		if (needs_tls(l, services[i].name) && l->tls == NULL)
			chk_err(c, &s->pos, NULL,
			    "service requires TLS, but listener has no TLS "
			    "config");
		if (services[i].web && (empty(s->path) || s->path[0] != '/'))
			chk_err(c, &s->pos, "Path", "path must start with /");
		if (strcmp(services[i].name, "SMTP") == 0 &&
		    s->first_time_sender_delay < 0)
			chk_err(c, &s->pos, "FirstTimeSenderDelay",
			    "must not be negative");
		if (strcmp(services[i].name, "SMTP") == 0)
			check_domains(c, &s->pos, "DNSBLs", &s->dnsbls, false);
		chk_pop(c, q);
	}
	if (l->pprof_http.enabled) {
		for (size_t i = 0; i < ARRAY_LEN(services); i++) {
			const struct config_service *s =
			    (const struct config_service *)((const char *)l +
				services[i].off);

			if (s != &l->pprof_http && s->enabled &&
			    s->port == l->pprof_http.port)
				chk_err(c, &l->pprof_http.pos, "Port",
				    "PprofHTTP cannot share port %lld with %s",
				    (long long)s->port, services[i].name);
		}
	}
	if (l->autoconfig_https.enabled && l->mtasts_https.enabled &&
	    l->autoconfig_https.port == l->mtasts_https.port &&
	    l->autoconfig_https.non_tls != l->mtasts_https.non_tls)
		chk_err(c, &l->mtasts_https.pos, "NonTLS",
		    "AutoconfigHTTPS and MTASTSHTTPS share a port but differ "
		    "in NonTLS");
	chk_pop(c, p);
}

static void
check_transport_smtp(struct chk *c, const char *name,
    const struct config_transport_smtp *t, bool implicit_tls)
{
	static const char *const mechs[] = { "SCRAM-SHA-256-PLUS",
		"SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "CRAM-MD5",
		"PLAIN" };
	size_t p = chk_push(c, "%s", name);

	if (empty(t->host))
		chk_err(c, &t->pos, "Host", "host required");
	else
		check_domain(c, &t->pos, "Host", t->host);
	if (t->port != 0)
		check_port(c, &t->pos, "Port", t->port);
	if (implicit_tls && t->starttls_insecure_skip_verify)
		chk_err(c, &t->pos, "STARTTLSInsecureSkipVerify",
		    "not possible with Submissions");
	if (implicit_tls && t->no_starttls)
		chk_err(c, &t->pos, "NoSTARTTLS",
		    "not possible with Submissions");
	if (t->auth != NULL) {
		const struct sconf_strlist *m = &t->auth->mechanisms;
		size_t q = chk_push(c, "Auth");

		for (size_t i = 0; i < m->n; i++) {
			if (!str_in(m->v[i], mechs, ARRAY_LEN(mechs)))
				chk_erri(c, &t->auth->pos, "Mechanisms",
				    m->lines, i, "unknown mechanism %s",
				    m->v[i]);
			for (size_t j = 0; j < i; j++)
				if (strcmp(m->v[i], m->v[j]) == 0)
					chk_erri(c, &t->auth->pos,
					    "Mechanisms", m->lines, i,
					    "duplicate mechanism %s", m->v[i]);
		}
		chk_pop(c, q);
	}
	chk_pop(c, p);
}

static void
check_transport(struct chk *c, const char *name,
    const struct config_transport *t)
{
	size_t p = chk_push(c, "Transports.%s", name);
	int n = (t->submissions != NULL) + (t->submission != NULL) +
	    (t->smtp != NULL) + (t->socks != NULL) + (t->direct != NULL) +
	    (t->fail != NULL);

	if (n != 1)
		chk_err(c, &t->pos, NULL,
		    "exactly one of Submissions, Submission, SMTP, Socks, "
		    "Direct and Fail required, found %d", n);
	if (t->submissions != NULL)
		check_transport_smtp(c, "Submissions", t->submissions, true);
	if (t->submission != NULL)
		check_transport_smtp(c, "Submission", t->submission, false);
	if (t->smtp != NULL)
		check_transport_smtp(c, "SMTP", t->smtp, false);
	if (t->socks != NULL) {
		size_t q = chk_push(c, "Socks");
		const char *colon = t->socks->address != NULL
		    ? strrchr(t->socks->address, ':')
		    : NULL;
		uint64_t port;

		if (colon == NULL || colon == t->socks->address ||
		    span_u64(span_of_cstr(colon + 1), 65535, &port) == -1 ||
		    port == 0)
			chk_err(c, &t->socks->pos, "Address",
			    "expected host:port");
		check_ips(c, &t->socks->pos, "RemoteIPs", &t->socks->remote_ips,
		    false);
		if (t->socks->remote_ips.n == 0)
			chk_err(c, &t->socks->pos, "RemoteIPs",
			    "at least one IP address required");
		check_domain(c, &t->socks->pos, "RemoteHostname",
		    t->socks->remote_hostname);
		chk_pop(c, q);
	}
	if (t->direct != NULL && t->direct->disable_ipv4 &&
	    t->direct->disable_ipv6) {
		size_t q = chk_push(c, "Direct");

		chk_err(c, &t->direct->pos, "DisableIPv6",
		    "cannot disable both IPv4 and IPv6");
		chk_pop(c, q);
	}
	if (t->fail != NULL && t->fail->smtp_code != 0 &&
	    (t->fail->smtp_code < 400 || t->fail->smtp_code > 599)) {
		size_t q = chk_push(c, "Fail");

		chk_err(c, &t->fail->pos, "SMTPCode",
		    "SMTP code must be 400 to 599");
		chk_pop(c, q);
	}
	chk_pop(c, p);
}

/* One Limits field: absent gives dflt, else exactly one positive number
 * per IP class. */
static void
check_limit(struct chk *c, const struct sconf_pos *pos, const char *field,
    const int64_t *v, size_t n, const unsigned *lines,
    const unsigned dflt[CONFIG_LIMITS_CLASSES],
    unsigned eff[CONFIG_LIMITS_CLASSES])
{
	memcpy(eff, dflt, CONFIG_LIMITS_CLASSES * sizeof(eff[0]));
	if (!sconf_present(pos, field))
		return;
	if (n != CONFIG_LIMITS_CLASSES) {
		chk_err(c, pos, field, "expected 3 numbers (for IPv4 /32, /26, "
				       "/21; IPv6 /64, /48, /32), found %zu",
		    n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i] < 1 || v[i] > CONFIG_LIMITS_MAX)
			chk_erri(c, pos, field, lines, i,
			    "must be between 1 and %d: %lld", CONFIG_LIMITS_MAX,
			    (long long)v[i]);
		else
			eff[i] = (unsigned)v[i];
}

static void
check_limits(struct chk *c, struct config_limits *l)
{
	static const unsigned rate[] = CONFIG_CONNECTIONS_PER_MINUTE;
	static const unsigned conns[] = CONFIG_OPEN_CONNECTIONS;
	static const unsigned authm[] = CONFIG_AUTH_FAILURES_PER_MINUTE;
	static const unsigned authd[] = CONFIG_AUTH_FAILURES_PER_DAY;
	size_t p = chk_push(c, "Limits");

	check_limit(c, &l->pos, "ConnectionsPerMinute",
	    l->connections_per_minute.v, l->connections_per_minute.n,
	    l->connections_per_minute.lines, rate,
	    l->eff.connections_per_minute);
	check_limit(c, &l->pos, "OpenConnections", l->open_connections.v,
	    l->open_connections.n, l->open_connections.lines, conns,
	    l->eff.open_connections);
	check_limit(c, &l->pos, "AuthFailuresPerMinute",
	    l->auth_failures_per_minute.v, l->auth_failures_per_minute.n,
	    l->auth_failures_per_minute.lines, authm,
	    l->eff.auth_failures_per_minute);
	check_limit(c, &l->pos, "AuthFailuresPerDay",
	    l->auth_failures_per_day.v, l->auth_failures_per_day.n,
	    l->auth_failures_per_day.lines, authd,
	    l->eff.auth_failures_per_day);
	chk_pop(c, p);
}

static void
check_initial_mailboxes(struct chk *c, struct config_static *st)
{
	struct config_initial_mailboxes *im = &st->initial_mailboxes;
	struct config_special_use *su = &im->special_use;
	const char *names[] = { su->sent, su->archive, su->trash, su->draft,
		su->junk };
	const char *fields[] = { "Sent", "Archive", "Trash", "Draft", "Junk" };
	size_t p;

	if (sconf_present(&st->pos, "InitialMailboxes") &&
	    st->default_mailboxes.n > 0)
		chk_err(c, &st->pos, "DefaultMailboxes",
		    "DefaultMailboxes and InitialMailboxes are exclusive");
	p = chk_push(c, "InitialMailboxes.SpecialUse");
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		check_mailbox(c, &su->pos, fields[i], names[i]);
		if (is_inbox(names[i]))
			chk_err(c, &su->pos, fields[i],
			    "Inbox is always created");
	}
	chk_pop(c, p);
	p = chk_push(c, "InitialMailboxes");
	check_mailboxes(c, &im->pos, "Regular", &im->regular);
	for (size_t i = 0; i < im->regular.n; i++)
		if (is_inbox(im->regular.v[i]))
			chk_erri(c, &im->pos, "Regular", im->regular.lines, i,
			    "Inbox is always created");
	chk_pop(c, p);
	check_mailboxes(c, &st->pos, "DefaultMailboxes",
	    &st->default_mailboxes);
	/* store.md section 12: default when nothing was configured. */
	if (st->default_mailboxes.n == 0 && im->regular.n == 0 &&
	    empty(su->sent) && empty(su->archive) && empty(su->trash) &&
	    empty(su->draft) && empty(su->junk)) {
		free(su->sent);
		free(su->archive);
		free(su->trash);
		free(su->draft);
		free(su->junk);
		su->sent = xstrdup("Sent");
		su->archive = xstrdup("Archive");
		su->trash = xstrdup("Trash");
		su->draft = xstrdup("Drafts");
		su->junk = xstrdup("Junk");
	}
}

static void
check_acme(struct chk *c, struct config_static *st, size_t i)
{
	struct config_acme *a = &st->acme.vals[i];
	size_t p = chk_push(c, "ACME.%s", st->acme.keys[i]);

	check_url(c, &a->pos, "DirectoryURL", a->directory_url, false);
	if (empty(a->contact_email) ||
	    strchr(a->contact_email, '@') == NULL)
		chk_err(c, &a->pos, "ContactEmail",
		    "email address required");
	if (a->renew_before < 0)
		chk_err(c, &a->pos, "RenewBefore",
		    "must not be negative");
	if (a->renew_before == 0)
		a->renew_before = 30 * 24 * 3600 * NS_PER_SEC;
	if (a->port == 0)
		a->port = 443;
	check_port(c, &a->pos, "Port", a->port);
	if (a->issuer_domain_name != NULL)
		check_domain(c, &a->pos, "IssuerDomainName",
		    a->issuer_domain_name);
	else if (a->directory_url != NULL &&
	    strstr(a->directory_url, "letsencrypt.org") != NULL)
		a->issuer_domain_name = xstrdup("letsencrypt.org");
	if (a->external_account_binding != NULL) {
		struct config_acme_eab *e = a->external_account_binding;
		size_t q = chk_push(c, "ExternalAccountBinding");

		if (empty(e->key_id))
			chk_err(c, &e->pos, "KeyID", "required");
		if (empty(e->key_file))
			chk_err(c, &e->pos, "KeyFile", "required");
		chk_pop(c, q);
	}
	chk_pop(c, p);
}

unsigned
config_check_static(struct config_static *st, const char *file,
    struct buf *err)
{
	struct chk c;
	enum log_level lvl;
	const char *why = NULL;
	long ncpu;

	chk_init(&c, file, err);
	if (empty(st->data_dir))
		chk_err(&c, &st->pos, "DataDir", "data directory required");
	if (st->log_level == NULL || log_level_parse(st->log_level, &lvl) == -1)
		chk_err(&c, &st->pos, "LogLevel", "unknown log level %s",
		    st->log_level != NULL ? st->log_level : "");
	for (size_t i = 0; i < st->package_log_levels.n; i++) {
		if (log_level_parse(st->package_log_levels.vals[i], &lvl) ==
		    -1) {
			size_t p = chk_push(&c, "PackageLogLevels");

			chk_erri(&c, &st->pos, st->package_log_levels.keys[i],
			    st->package_log_levels.lines, i,
			    "unknown log level %s",
			    st->package_log_levels.vals[i]);
			chk_pop(&c, p);
		}
	}
	if (st->user == NULL)
		st->user = xstrdup("mox");
	else if (st->user[0] == '\0')
		chk_err(&c, &st->pos, "User", "empty user");
	if (empty(st->hostname))
		chk_err(&c, &st->pos, "Hostname", "host name required");
	else
		check_domain(&c, &st->pos, "Hostname", st->hostname);
	if (st->tls.ca != NULL && st->tls.ca->cert_files.n == 0 &&
	    !st->tls.ca->additional_to_system) {
		size_t p = chk_push(&c, "TLS");

		chk_err(&c, &st->tls.pos, "CA", "CA without CertFiles");
		chk_pop(&c, p);
	}
	for (size_t i = 0; i < st->acme.n; i++)
		check_acme(&c, st, i);
	if (st->listeners.n == 0)
		chk_err(&c, &st->pos, "Listeners",
		    "at least one listener required");
	for (size_t i = 0; i < st->listeners.n; i++)
		check_listener(&c, st, st->listeners.keys[i],
		    &st->listeners.vals[i]);
	{
		size_t p = chk_push(&c, "Postmaster");

		if (empty(st->postmaster.account))
			chk_err(&c, &st->postmaster.pos, "Account",
			    "account required");
		if (empty(st->postmaster.mailbox))
			chk_err(&c, &st->postmaster.pos, "Mailbox",
			    "mailbox required");
		else
			check_mailbox(&c, &st->postmaster.pos, "Mailbox",
			    st->postmaster.mailbox);
		chk_pop(&c, p);
	}
	if (sconf_present(&st->pos, "HostTLSRPT")) {
		struct config_account_mailbox *h = &st->host_tlsrpt;
		size_t p = chk_push(&c, "HostTLSRPT");

		if (empty(h->localpart) || !is_ascii(h->localpart) ||
		    strchr(h->localpart, '@') != NULL)
			chk_err(&c, &h->pos, "Localpart",
			    "ASCII localpart required");
		if (empty(h->account))
			chk_err(&c, &h->pos, "Account", "account required");
		check_mailbox(&c, &h->pos, "Mailbox", h->mailbox);
		chk_pop(&c, p);
	}
	check_initial_mailboxes(&c, st);
	for (size_t i = 0; i < st->transports.n; i++)
		check_transport(&c, st->transports.keys[i],
		    &st->transports.vals[i]);
	if (st->quota_message_size < 0)
		chk_err(&c, &st->pos, "QuotaMessageSize",
		    "must not be negative");
	for (size_t i = 0; i < st->dns_resolvers.n; i++)
		if (hostport_ip(st->dns_resolvers.v[i], &why) == -1)
			chk_erri(&c, &st->pos, "DNSResolvers",
			    st->dns_resolvers.lines, i, "%s: %s", why,
			    st->dns_resolvers.v[i]);
	if (sconf_present(&st->pos, "WorkerPoolSize") &&
	    (st->worker_pool_size < 1 || st->worker_pool_size > 4096))
		chk_err(&c, &st->pos, "WorkerPoolSize",
		    "must be between 1 and 4096");
	check_limits(&c, &st->limits);
	if (st->worker_pool_size == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		st->worker_pool_size = ncpu > 0 ? 4 * (int64_t)ncpu : 8;
		if (st->worker_pool_size < 8)
			st->worker_pool_size = 8;
	}
	buf_release(&c.path);
	return c.nerr;
}

/* ---------------------------------------------------------------------
 * domains.conf
 */

static ssize_t
find_key(char *const *keys, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return (ssize_t)i;
	return -1;
}

/* Index of the configured domain equal to d after canonicalisation. */
static ssize_t
find_domain(const struct config_dynamic *dyn, const char *d)
{
	const char *why = NULL;
	char *want = config_domain_canon(d, &why);
	ssize_t r = -1;

	if (want == NULL)
		return -1;
	for (size_t i = 0; i < dyn->domains.n && r < 0; i++) {
		char *have = config_domain_canon(dyn->domains.keys[i], &why);

		if (have != NULL && strcmp(have, want) == 0)
			r = (ssize_t)i;
		free(have);
	}
	free(want);
	return r;
}

static void
check_routes(struct chk *c, const struct config_static *st,
    const struct config_route *r, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		size_t p = chk_push(c, "%s[%zu]", what, i);

		check_domains(c, &r[i].pos, "FromDomain", &r[i].from_domain,
		    true);
		check_domains(c, &r[i].pos, "ToDomain", &r[i].to_domain, true);
		if (r[i].minimum_attempts < 0)
			chk_err(c, &r[i].pos, "MinimumAttempts",
			    "must not be negative");
		if (r[i].transport == NULL ||
		    find_key(st->transports.keys, st->transports.n,
			r[i].transport) < 0)
			chk_err(c, &r[i].pos, "Transport",
			    "unknown transport %s",
			    r[i].transport != NULL ? r[i].transport : "");
		chk_pop(c, p);
	}
}

static void
check_report_addr(struct chk *c, const struct config_dynamic *dyn,
    const struct config_report_addr *r, const char *what)
{
	size_t p = chk_push(c, "%s", what);

	if (empty(r->localpart) || !is_ascii(r->localpart) ||
	    strchr(r->localpart, '@') != NULL)
		chk_err(c, &r->pos, "Localpart", "ASCII localpart required");
	if (r->domain != NULL && find_domain(dyn, r->domain) < 0)
		chk_err(c, &r->pos, "Domain", "unknown domain %s", r->domain);
	if (r->account == NULL ||
	    find_key(dyn->accounts.keys, dyn->accounts.n, r->account) < 0)
		chk_err(c, &r->pos, "Account", "unknown account %s",
		    r->account != NULL ? r->account : "");
	if (empty(r->mailbox))
		chk_err(c, &r->pos, "Mailbox", "mailbox required");
	else
		check_mailbox(c, &r->pos, "Mailbox", r->mailbox);
	chk_pop(c, p);
}

static bool
any_mtasts_listener(const struct config_static *st)
{
	for (size_t i = 0; i < st->listeners.n; i++)
		if (st->listeners.vals[i].mtasts_https.enabled)
			return true;
	return false;
}

static void
check_dkim(struct chk *c, struct config_dkim *dk)
{
	static const char *const hashes[] = { "sha256", "sha1" };
	size_t p = chk_push(c, "DKIM");

	for (size_t i = 0; i < dk->selectors.n; i++) {
		struct config_dkim_selector *s = &dk->selectors.vals[i];
		const char *sel = dk->selectors.keys[i], *why = NULL;
		size_t q = chk_push(c, "Selectors.%s", sel);
		char *canon = config_domain_canon(sel, &why);
		int64_t ns;
		bool from = false;

		if (canon == NULL)
			chk_err(c, &s->pos, NULL, "invalid selector name");
		free(canon);
		if (s->hash != NULL &&
		    !str_in(s->hash, hashes, ARRAY_LEN(hashes)))
			chk_err(c, &s->pos, "Hash",
			    "unknown hash %s (sha256 or sha1)", s->hash);
		for (size_t j = 0; j < s->headers.n; j++)
			if (strcasecmp(s->headers.v[j], "From") == 0)
				from = true;
		if (s->headers.n > 0 && !from)
			chk_err(c, &s->pos, "Headers",
			    "headers must include From (RFC 6376 5.4)");
		if (s->expiration != NULL &&
		    (time_parse_duration(s->expiration, &ns, &why) == -1 ||
			ns <= 0))
			chk_err(c, &s->pos, "Expiration",
			    "invalid duration %s", s->expiration);
		if (empty(s->private_key_file))
			chk_err(c, &s->pos, "PrivateKeyFile",
			    "file name required");
		chk_pop(c, q);
	}
	for (size_t i = 0; i < dk->sign.n; i++)
		if (find_key(dk->selectors.keys, dk->selectors.n,
			dk->sign.v[i]) < 0)
			chk_erri(c, &dk->pos, "Sign", dk->sign.lines, i,
			    "unknown selector %s", dk->sign.v[i]);
	chk_pop(c, p);
}

static void
check_domain_conf(struct chk *c, const struct config_static *st,
    const struct config_dynamic *dyn, size_t di)
{
	struct config_domain *d = &dyn->domains.vals[di];
	const char *name = dyn->domains.keys[di], *why = NULL;
	size_t p = chk_push(c, "Domains.%s", name);
	char *canon = config_domain_canon(name, &why);

	if (canon == NULL)
		chk_err(c, &d->pos, NULL, "%s", why);
	else if (find_domain(dyn, name) != (ssize_t)di)
		chk_err(c, &d->pos, NULL, "domain configured more than once");
	free(canon);
	if (d->client_settings_domain != NULL)
		check_domain(c, &d->pos, "ClientSettingsDomain",
		    d->client_settings_domain);
	if (d->localpart_catchall_separator != NULL &&
	    d->localpart_catchall_separators.n > 0)
		chk_err(c, &d->pos, "LocalpartCatchallSeparators",
		    "exclusive with LocalpartCatchallSeparator");
	if (d->localpart_catchall_separator != NULL &&
	    d->localpart_catchall_separator[0] == '\0')
		chk_err(c, &d->pos, "LocalpartCatchallSeparator",
		    "empty separator");
	for (size_t i = 0; i < d->localpart_catchall_separators.n; i++)
		if (d->localpart_catchall_separators.v[i][0] == '\0')
			chk_err(c, &d->pos, "LocalpartCatchallSeparators",
			    "empty separator");
	check_dkim(c, &d->dkim);
	if (d->dmarc != NULL)
		check_report_addr(c, dyn, d->dmarc, "DMARC");
	if (d->tlsrpt != NULL)
		check_report_addr(c, dyn, d->tlsrpt, "TLSRPT");
	if (d->mtasts != NULL) {
		static const char *const modes[] = { "enforce", "testing",
			"none" };
		struct config_mtasts *m = d->mtasts;
		size_t q = chk_push(c, "MTASTS");
		bool idok = !empty(m->policy_id) && strlen(m->policy_id) <= 32;

		/* RFC 8461 3.1: id = 1*32(ALPHA / DIGIT) */
		for (const char *s = m->policy_id; idok && *s != '\0'; s++)
			idok = char_is_alnum(*s);
		if (!idok)
			chk_err(c, &m->pos, "PolicyID",
			    "1 to 32 letters and digits required");
		if (m->mode == NULL ||
		    !str_in(m->mode, modes, ARRAY_LEN(modes)))
			chk_err(c, &m->pos, "Mode",
			    "mode must be enforce, testing or none");
		if (m->max_age <= 0)
			chk_err(c, &m->pos, "MaxAge", "must be positive");
		for (size_t i = 0; i < m->mx.n; i++) {
			const char *mx = m->mx.v[i], *mwhy = NULL;
			char *cd = config_domain_canon(
			    strncmp(mx, "*.", 2) == 0 ? mx + 2 : mx, &mwhy);

			if (cd == NULL)
				chk_erri(c, &m->pos, "MX", m->mx.lines, i,
				    "%s: %s", mwhy, mx);
			free(cd);
		}
		if (!any_mtasts_listener(st))
			chk_err(c, &m->pos, NULL,
			    "MTA-STS needs a listener with MTASTSHTTPS "
			    "enabled");
		chk_pop(c, q);
	}
	check_routes(c, st, d->routes.v, d->routes.n, "Routes");
	chk_pop(c, p);
}

static void
check_ruleset(struct chk *c, const struct config_ruleset *r)
{
	size_t nh = r->headers_regexp.n;

	if (empty(r->smtp_mail_from_regexp) && empty(r->msg_from_regexp) &&
	    empty(r->verified_domain) && nh == 0)
		chk_err(c, &r->pos, NULL,
		    "ruleset needs at least one condition: "
		    "SMTPMailFromRegexp, MsgFromRegexp, VerifiedDomain or "
		    "HeadersRegexp");
	check_regexp(c, &r->pos, "SMTPMailFromRegexp",
	    r->smtp_mail_from_regexp);
	check_regexp(c, &r->pos, "MsgFromRegexp", r->msg_from_regexp);
	if (!empty(r->verified_domain))
		check_domain(c, &r->pos, "VerifiedDomain", r->verified_domain);
	for (size_t i = 0; i < nh; i++) {
		const char *k = r->headers_regexp.keys[i];
		const char *v = r->headers_regexp.vals[i];
		size_t p = chk_push(c, "HeadersRegexp");

		unsigned line = r->headers_regexp.lines != NULL
		    ? r->headers_regexp.lines[i]
		    : sconf_line(&r->pos, "HeadersRegexp");
		struct sconf_pos lp = { .line = line };

		for (const char *s = k; *s != '\0'; s++)
			if (*s >= 'A' && *s <= 'Z') {
				chk_err(c, &lp, k,
				    "header regexp must be lower case");
				break;
			}
		check_regexp(c, &lp, k, k);
		check_regexp(c, &lp, k, v);
		chk_pop(c, p);
	}
	if (r->is_forward && (empty(r->smtp_mail_from_regexp) ||
				 empty(r->verified_domain)))
		chk_err(c, &r->pos, "IsForward",
		    "IsForward needs SMTPMailFromRegexp and VerifiedDomain");
	if (r->is_forward && !empty(r->list_allow_domain))
		chk_err(c, &r->pos, "ListAllowDomain",
		    "ListAllowDomain and IsForward are exclusive");
	if (!empty(r->list_allow_domain))
		check_domain(c, &r->pos, "ListAllowDomain",
		    r->list_allow_domain);
	if (empty(r->mailbox))
		chk_err(c, &r->pos, "Mailbox", "mailbox required");
	else
		check_mailbox(c, &r->pos, "Mailbox", r->mailbox);
	check_mailbox(c, &r->pos, "AcceptRejectsToMailbox",
	    r->accept_rejects_to_mailbox);
	if (is_inbox(r->accept_rejects_to_mailbox))
		chk_err(c, &r->pos, "AcceptRejectsToMailbox",
		    "cannot be Inbox");
}

/* Address being collected for the derived map, with where it came from. */
struct addr_src {
	char *addr;
	size_t account, dest;
	unsigned line;
	bool alias;
};

static bool
has_separator(const struct config_domain *d, const char *localpart)
{
	const char *sep;

	for (size_t i = 0; (sep = config_separator(d, i)) != NULL; i++)
		if (strstr(localpart, sep) != NULL)
			return true;
	return false;
}

/* Canonical "localpart@domain" (or "@domain") for a configured address;
 * NULL with an error reported. */
static char *
canon_address(struct chk *c, const struct config_dynamic *dyn,
    const struct sconf_pos *pos, const char *field, const char *addr,
    const char *default_domain)
{
	const char *at = strrchr(addr, '@'), *dom, *why = NULL;
	struct buf lp, out;
	char *cd, *r = NULL;
	ssize_t di;

	dom = at != NULL ? at + 1 : default_domain;
	buf_init(&lp, 1024);
	buf_init(&out, 2048);
	if (at != NULL)
		buf_add(&lp, addr, (size_t)(at - addr));
	else
		buf_adds(&lp, addr);
	if (dom == NULL) {
		chk_err(c, pos, field, "address without domain");
		goto out;
	}
	di = find_domain(dyn, dom);
	if (di < 0) {
		chk_err(c, pos, field, "unknown domain %s", dom);
		goto out;
	}
	cd = config_domain_canon(dom, &why);
	if (cd == NULL) {
		chk_err(c, pos, field, "%s", why);
		goto out;
	}
	if (buf_failed(&lp) || (at == NULL && lp.len == 0)) {
		chk_err(c, pos, field, "invalid address");
		free(cd);
		goto out;
	}
	if (has_separator(&dyn->domains.vals[di], lp.data))
		chk_err(c, pos, field,
		    "localpart must not contain the domain's catchall "
		    "separator");
	config_canonical_localpart(&dyn->domains.vals[di], lp.data, &out);
	buf_addf(&out, "@%s", cd);
	free(cd);
	if (!buf_failed(&out))
		r = buf_take(&out);
out:
	buf_release(&lp);
	buf_release(&out);
	return r;
}

static void
addr_add(struct addr_src **v, size_t *n, char *addr, size_t account,
    size_t dest, unsigned line, bool alias)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n] = (struct addr_src){ addr, account, dest, line, alias };
	(*n)++;
}

static int
cmp_addr_src(const void *a, const void *b)
{
	const struct addr_src *x = a, *y = b;
	int r = strcmp(x->addr, y->addr);

	if (r != 0)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void
check_junk(struct chk *c, struct config_account *a)
{
	{
		size_t q = chk_push(c, "AutomaticJunkFlags");
		struct config_auto_junk *j = &a->automatic_junk_flags;

		check_regexp(c, &j->pos, "JunkMailboxRegexp",
		    j->junk_mailbox_regexp);
		check_regexp(c, &j->pos, "NeutralMailboxRegexp",
		    j->neutral_mailbox_regexp);
		check_regexp(c, &j->pos, "NotJunkMailboxRegexp",
		    j->not_junk_mailbox_regexp);
		chk_pop(c, q);
	}
	if (a->junk_filter != NULL) {
		struct config_junk_filter *j = a->junk_filter;
		struct config_junk_params *jp = &j->params;
		size_t q = chk_push(c, "JunkFilter");

		if (!(j->threshold >= 0 && j->threshold <= 1))
			chk_err(c, &j->pos, "Threshold",
			    "must be between 0 and 1");
		chk_push(c, "Params");
		if (!(jp->max_power >= 0 && jp->max_power < 0.5))
			chk_err(c, &jp->pos, "MaxPower",
			    "must be at least 0 and below 0.5");
		if (!(jp->ignore_words >= 0 && jp->ignore_words < 0.5))
			chk_err(c, &jp->pos, "IgnoreWords",
			    "must be at least 0 and below 0.5");
		if (jp->top_words < 0)
			chk_err(c, &jp->pos, "TopWords",
			    "must not be negative");
		if (jp->rare_words < 0)
			chk_err(c, &jp->pos, "RareWords",
			    "must not be negative");
		chk_pop(c, q);
	}
}

static void
check_webhooks(struct chk *c, struct config_account *a)
{
	static const char *const events[] = { "delivered", "suppressed",
		"delayed", "failed", "relayed", "expanded", "canceled",
		"unrecognized" };

	if (a->outgoing_webhook != NULL) {
		struct config_webhook *w = a->outgoing_webhook;
		size_t q = chk_push(c, "OutgoingWebhook");

		check_url(c, &w->pos, "URL", w->url, false);
		for (size_t i = 0; i < w->events.n; i++)
			if (!str_in(w->events.v[i], events, ARRAY_LEN(events)))
				chk_erri(c, &w->pos, "Events", w->events.lines,
				    i, "unknown event %s", w->events.v[i]);
		chk_pop(c, q);
	}
	if (a->incoming_webhook != NULL) {
		size_t q = chk_push(c, "IncomingWebhook");

		check_url(c, &a->incoming_webhook->pos, "URL",
		    a->incoming_webhook->url, false);
		chk_pop(c, q);
	}
}

/* Destination i of account ai; adds its canonical address to addrs. */
static void
check_destination(struct chk *c, struct config_dynamic *dyn, size_t ai,
    size_t i, struct addr_src **addrs, size_t *naddrs)
{
	struct config_account *a = &dyn->accounts.vals[ai];
	const char *key = a->destinations.keys[i];
	struct config_destination *d = &a->destinations.vals[i];
	size_t q = chk_push(c, "Destinations.%s", key);
	const char *why = NULL;
	char *addr;

	if (key[0] == '@') {
		char *cd = config_domain_canon(key + 1, &why);

		if (find_domain(dyn, key + 1) < 0)
			chk_err(c, &d->pos, NULL,
			    "catchall for unknown domain");
		else if (cd != NULL) {
			struct buf t;

			buf_init(&t, 1024);
			buf_addf(&t, "@%s", cd);
			addr_add(addrs, naddrs, buf_take(&t), ai, i,
			    d->pos.line, false);
			buf_release(&t);
		}
		free(cd);
	} else {
		addr = canon_address(c, dyn, &d->pos, NULL, key,
		    strchr(key, '@') == NULL ? a->domain : NULL);
		if (addr != NULL)
			addr_add(addrs, naddrs, addr, ai, i,
			    d->pos.line, false);
	}
	check_mailbox(c, &d->pos, "Mailbox", d->mailbox);
	for (size_t j = 0; j < d->rulesets.n; j++) {
		size_t r = chk_push(c, "Rulesets[%zu]", j);

		check_ruleset(c, &d->rulesets.v[j]);
		chk_pop(c, r);
	}
	if (d->smtp_error != NULL &&
	    strncmp(d->smtp_error, "421 ", 4) != 0 &&
	    strncmp(d->smtp_error, "550 ", 4) != 0)
		chk_err(c, &d->pos, "SMTPError",
		    "must start with \"421 \" or \"550 \"");
	chk_pop(c, q);
}

static void
check_account(struct chk *c, const struct config_static *st,
    struct config_dynamic *dyn, size_t ai, struct addr_src **addrs,
    size_t *naddrs)
{
	struct config_account *a = &dyn->accounts.vals[ai];
	size_t p = chk_push(c, "Accounts.%s", dyn->accounts.keys[ai]);

	if (dyn->accounts.keys[ai][0] == '\0' ||
	    strchr(dyn->accounts.keys[ai], '/') != NULL ||
	    strcmp(dyn->accounts.keys[ai], ".") == 0 ||
	    strcmp(dyn->accounts.keys[ai], "..") == 0)
		chk_err(c, &a->pos, NULL,
		    "invalid account name (used as a directory name)");
	if (a->domain == NULL || find_domain(dyn, a->domain) < 0)
		chk_err(c, &a->pos, "Domain", "unknown domain %s",
		    a->domain != NULL ? a->domain : "");
	for (size_t i = 0; i < a->destinations.n; i++)
		check_destination(c, dyn, ai, i, addrs, naddrs);
	if (sconf_present(&a->pos, "SubjectPass") && a->subject_pass.period <= 0)
		chk_err(c, &a->subject_pass.pos, "Period", "must be positive");
	if (a->quota_message_size < 0)
		a->eff.quota_message_size = 0;
	else if (a->quota_message_size > 0)
		a->eff.quota_message_size = a->quota_message_size;
	else
		a->eff.quota_message_size = st->quota_message_size;
	check_mailbox(c, &a->pos, "RejectsMailbox", a->rejects_mailbox);
	if (is_inbox(a->rejects_mailbox))
		chk_err(c, &a->pos, "RejectsMailbox", "cannot be Inbox");
	check_mailbox(c, &a->pos, "Introbox", a->introbox);
	check_junk(c, a);
	if (a->max_outgoing_messages_per_day < 0)
		chk_err(c, &a->pos, "MaxOutgoingMessagesPerDay",
		    "must not be negative");
	if (a->max_first_time_recipients_per_day < 0)
		chk_err(c, &a->pos, "MaxFirstTimeRecipientsPerDay",
		    "must not be negative");
	a->eff.max_outgoing_messages_per_day =
	    a->max_outgoing_messages_per_day > 0
	    ? a->max_outgoing_messages_per_day
	    : 1000;
	a->eff.max_first_time_recipients_per_day =
	    a->max_first_time_recipients_per_day > 0
	    ? a->max_first_time_recipients_per_day
	    : 200;
	check_routes(c, st, a->routes.v, a->routes.n, "Routes");
	check_webhooks(c, a);
	if (a->keep_retired_message_period < 0)
		chk_err(c, &a->pos, "KeepRetiredMessagePeriod",
		    "must not be negative");
	if (a->keep_retired_webhook_period < 0)
		chk_err(c, &a->pos, "KeepRetiredWebhookPeriod",
		    "must not be negative");
	chk_pop(c, p);
}

/* FromIDLoginAddresses need the address map: each must be an address of
 * this account, on a domain with a catchall separator. */
static void
check_fromid(struct chk *c, struct config_dynamic *dyn, size_t ai,
    const struct addr_src *addrs, size_t naddrs)
{
	struct config_account *a = &dyn->accounts.vals[ai];
	size_t p = chk_push(c, "Accounts.%s", dyn->accounts.keys[ai]);

	for (size_t i = 0; i < a->from_id_login_addresses.n; i++) {
		const char *s = a->from_id_login_addresses.v[i];
		struct sconf_pos lp = { .line = sconf_line(&a->pos,
					    "FromIDLoginAddresses") };
		char *addr;

		if (a->from_id_login_addresses.lines != NULL)
			lp.line = a->from_id_login_addresses.lines[i];
		addr = canon_address(c, dyn, &lp, "FromIDLoginAddresses", s,
		    NULL);
		const char *at = strrchr(s, '@');
		bool found = false;
		ssize_t di;

		if (addr == NULL)
			continue;
		for (size_t j = 0; j < naddrs; j++)
			if (!addrs[j].alias && addrs[j].account == ai &&
			    strcmp(addrs[j].addr, addr) == 0)
				found = true;
		if (!found)
			chk_err(c, &lp, "FromIDLoginAddresses",
			    "%s is not an address of this account", s);
		di = at != NULL ? find_domain(dyn, at + 1) : -1;
		if (di >= 0 && config_separator(&dyn->domains.vals[di], 0) == NULL)
			chk_err(c, &lp, "FromIDLoginAddresses",
			    "domain of %s has no catchall separator", s);
		free(addr);
	}
	chk_pop(c, p);
}

static void
check_aliases(struct chk *c, struct config_dynamic *dyn, size_t di,
    struct addr_src **addrs, size_t *naddrs, size_t nacct_addrs)
{
	struct config_domain *d = &dyn->domains.vals[di];
	const char *dname = dyn->domains.keys[di];

	for (size_t i = 0; i < d->aliases.n; i++) {
		struct config_alias *al = &d->aliases.vals[i];
		const char *lp = d->aliases.keys[i];
		size_t p = chk_push(c, "Domains.%s.Aliases.%s", dname, lp);
		struct buf full;
		char *addr;

		buf_init(&full, 2048);
		buf_addf(&full, "%s@%s", lp, dname);
		if (strchr(lp, '@') != NULL)
			chk_err(c, &al->pos, NULL, "alias localpart with @");
		addr = canon_address(c, dyn, &al->pos, NULL, full.data, NULL);
		if (addr != NULL)
			addr_add(addrs, naddrs, addr, i, di, al->pos.line, true);
		if (al->addresses.n == 0)
			chk_err(c, &al->pos, "Addresses",
			    "at least one address required");
		for (size_t j = 0; j < al->addresses.n; j++) {
			struct sconf_pos mp = { .line = al->addresses.lines
				    ? al->addresses.lines[j]
				    : sconf_line(&al->pos, "Addresses") };
			char *m = canon_address(c, dyn, &mp, "Addresses",
			    al->addresses.v[j], NULL);
			bool found = false;

			for (size_t k = 0; m != NULL && k < nacct_addrs; k++)
				if (strcmp((*addrs)[k].addr, m) == 0 &&
				    (*addrs)[k].addr[0] != '@')
					found = true;
			if (m != NULL && !found)
				chk_err(c, &mp, "Addresses",
				    "%s is not an address of a local account",
				    al->addresses.v[j]);
			free(m);
		}
		buf_release(&full);
		chk_pop(c, p);
	}
}

static void
check_webhandler(struct chk *c, const struct config_webhandler *h)
{
	static const char *const svcs[] = { "admin", "account", "webmail",
		"webapi" };
	int n = (h->web_static != NULL) + (h->web_redirect != NULL) +
	    (h->web_forward != NULL) + (h->web_internal != NULL);

	check_domain(c, &h->pos, "Domain", h->domain);
	if (h->path_regexp == NULL || h->path_regexp[0] != '^')
		chk_err(c, &h->pos, "PathRegexp", "must start with ^");
	check_regexp(c, &h->pos, "PathRegexp", h->path_regexp);
	if (n != 1)
		chk_err(c, &h->pos, NULL,
		    "exactly one of WebStatic, WebRedirect, WebForward and "
		    "WebInternal required, found %d", n);
	if (h->web_static != NULL) {
		size_t p = chk_push(c, "WebStatic");

		if (h->web_static->strip_prefix != NULL &&
		    h->web_static->strip_prefix[0] != '/')
			chk_err(c, &h->web_static->pos, "StripPrefix",
			    "must start with /");
		if (empty(h->web_static->root))
			chk_err(c, &h->web_static->pos, "Root",
			    "directory required");
		chk_pop(c, p);
	}
	if (h->web_redirect != NULL) {
		const struct config_web_redirect *r = h->web_redirect;
		size_t p = chk_push(c, "WebRedirect");

		if (r->base_url != NULL) {
			const char *host = strstr(r->base_url, "//");

			check_url(c, &r->pos, "BaseURL", r->base_url, true);
			if (host != NULL && strchr(host + 2, '/') != NULL)
				chk_err(c, &r->pos, "BaseURL",
				    "BaseURL must not have a path");
		}
		if ((r->orig_path_regexp == NULL) != (r->replace_path == NULL))
			chk_err(c, &r->pos, "OrigPathRegexp",
			    "OrigPathRegexp and ReplacePath go together");
		check_regexp(c, &r->pos, "OrigPathRegexp", r->orig_path_regexp);
		if (r->status_code != 0 &&
		    (r->status_code < 300 || r->status_code > 399))
			chk_err(c, &r->pos, "StatusCode",
			    "status must be 300 to 399");
		if (r->base_url == NULL && r->orig_path_regexp == NULL)
			chk_err(c, &r->pos, NULL,
			    "BaseURL or OrigPathRegexp required");
		chk_pop(c, p);
	}
	if (h->web_forward != NULL) {
		size_t p = chk_push(c, "WebForward");

		check_url(c, &h->web_forward->pos, "URL", h->web_forward->url,
		    false);
		chk_pop(c, p);
	}
	if (h->web_internal != NULL) {
		const struct config_web_internal *w = h->web_internal;
		size_t p = chk_push(c, "WebInternal");
		size_t len = w->base_path != NULL ? strlen(w->base_path) : 0;

		if (len == 0 || w->base_path[0] != '/' ||
		    w->base_path[len - 1] != '/')
			chk_err(c, &w->pos, "BasePath",
			    "must start and end with /");
		if (w->service == NULL ||
		    !str_in(w->service, svcs, ARRAY_LEN(svcs)))
			chk_err(c, &w->pos, "Service",
			    "service must be admin, account, webmail or "
			    "webapi");
		chk_pop(c, p);
	}
}

static void
build_addrs(struct chk *c, struct config *cfg, struct addr_src *v, size_t n)
{
	size_t i, out = 0;

	if (n > 0)
		qsort(v, n, sizeof(v[0]), cmp_addr_src);
	for (i = 1; i < n; i++)
		if (strcmp(v[i].addr, v[i - 1].addr) == 0) {
			const struct sconf_pos pos = { .line = v[i].line };

			chk_err(c, &pos, NULL,
			    "address %s configured more than once (first on "
			    "line %u)", v[i].addr, v[i - 1].line);
		}
	cfg->addrs = xcalloc(n > 0 ? n : 1, sizeof(cfg->addrs[0]));
	for (i = 0; i < n; i++) {
		if (v[i].alias || (out > 0 &&
				      strcmp(cfg->addrs[out - 1].addr,
					  v[i].addr) == 0)) {
			free(v[i].addr);
			continue;
		}
		cfg->addrs[out].addr = v[i].addr;
		cfg->addrs[out].account = v[i].account;
		cfg->addrs[out].dest = v[i].dest;
		out++;
	}
	cfg->naddrs = out;
}

unsigned
config_check_dynamic(struct config *cfg, const char *static_file,
    const char *file, struct buf *err)
{
	const struct config_static *st = cfg->st;
	struct config_dynamic *dyn = &cfg->dyn;
	struct addr_src *addrs = NULL;
	size_t naddrs = 0, nacct;
	struct chk c;

	chk_init(&c, file, err);
	for (size_t i = 0; i < dyn->domains.n; i++)
		check_domain_conf(&c, st, dyn, i);
	for (size_t i = 0; i < dyn->accounts.n; i++)
		check_account(&c, st, dyn, i, &addrs, &naddrs);
	nacct = naddrs;
	for (size_t i = 0; i < dyn->domains.n; i++)
		check_aliases(&c, dyn, i, &addrs, &naddrs, nacct);
	for (size_t i = 0; i < dyn->accounts.n; i++)
		check_fromid(&c, dyn, i, addrs, nacct);
	/* A domain without own addresses whose report addresses live
	 * elsewhere is reports-only (config.md 4.1). */
	for (size_t i = 0; i < dyn->domains.n; i++) {
		struct config_domain *d = &dyn->domains.vals[i];
		const char *why = NULL;
		char *cd = config_domain_canon(dyn->domains.keys[i], &why);
		bool own = false;

		for (size_t j = 0; cd != NULL && j < naddrs; j++) {
			const char *at = strrchr(addrs[j].addr, '@');

			if (at != NULL && strcmp(at + 1, cd) == 0)
				own = true;
		}
		d->eff.reports_only = !own && ((d->dmarc != NULL &&
						   d->dmarc->domain != NULL) ||
						  (d->tlsrpt != NULL &&
						      d->tlsrpt->domain != NULL));
		free(cd);
	}
	for (size_t i = 0; i < dyn->web_domain_redirects.n; i++) {
		const char *from = dyn->web_domain_redirects.keys[i];
		const char *to = dyn->web_domain_redirects.vals[i];
		const unsigned *lines = dyn->web_domain_redirects.lines;
		struct sconf_pos lp = { .line = lines != NULL ? lines[i] : 0 };
		size_t p = chk_push(&c, "WebDomainRedirects");

		check_domain(&c, &lp, from, from);
		check_domain(&c, &lp, from, to);
		if (strcasecmp(from, to) == 0)
			chk_err(&c, &lp, from,
			    "domain cannot redirect to itself");
		chk_pop(&c, p);
	}
	for (size_t i = 0; i < dyn->web_handlers.n; i++) {
		size_t p = chk_push(&c, "WebHandlers[%zu]", i);

		check_webhandler(&c, &dyn->web_handlers.v[i]);
		chk_pop(&c, p);
	}
	check_routes(&c, st, dyn->routes.v, dyn->routes.n, "Routes");
	check_domains(&c, &dyn->pos, "MonitorDNSBLs", &dyn->monitor_dnsbls,
	    false);
	build_addrs(&c, cfg, addrs, naddrs);
	free(addrs);

	/* References from mox.conf into domains.conf. */
	c.file = static_file;
	if (st->postmaster.account != NULL &&
	    find_key(dyn->accounts.keys, dyn->accounts.n,
		st->postmaster.account) < 0) {
		size_t p = chk_push(&c, "Postmaster");

		chk_err(&c, &st->postmaster.pos, "Account",
		    "account %s not found in domains.conf",
		    st->postmaster.account);
		chk_pop(&c, p);
	}
	if (st->host_tlsrpt.account != NULL &&
	    find_key(dyn->accounts.keys, dyn->accounts.n,
		st->host_tlsrpt.account) < 0) {
		size_t p = chk_push(&c, "HostTLSRPT");

		chk_err(&c, &st->host_tlsrpt.pos, "Account",
		    "account %s not found in domains.conf",
		    st->host_tlsrpt.account);
		chk_pop(&c, p);
	}
	buf_release(&c.path);
	return c.nerr;
}

/* ---------------------------------------------------------------------
 * Files (config test)
 */

static void
check_file(struct chk *c, const struct config *cfg,
    const struct sconf_pos *pos, const char *field, const char *path)
{
	char *full;

	if (empty(path))
		return;
	full = config_path(cfg, path);
	if (access(full, R_OK) != 0)
		chk_err(c, pos, field, "cannot read %s: %s", full,
		    log_strerror(errno));
	free(full);
}

unsigned
config_check_files(const struct config *cfg, struct buf *err)
{
	const struct config_static *st = cfg->st;
	struct chk c;

	chk_init(&c, cfg->path, err);
	check_file(&c, cfg, &st->pos, "AdminPasswordFile",
	    st->admin_password_file);
	check_file(&c, cfg, &st->pos, "PublicSuffixListFile",
	    st->public_suffix_list_file);
	for (size_t i = 0; i < st->listeners.n; i++) {
		const struct config_tls *t = st->listeners.vals[i].tls;
		size_t p = chk_push(&c, "Listeners.%s.TLS", st->listeners.keys[i]);

		for (size_t j = 0; t != NULL && j < t->key_certs.n; j++) {
			size_t q = chk_push(&c, "KeyCerts[%zu]", j);

			check_file(&c, cfg, &t->key_certs.v[j].pos, "CertFile",
			    t->key_certs.v[j].cert_file);
			check_file(&c, cfg, &t->key_certs.v[j].pos, "KeyFile",
			    t->key_certs.v[j].key_file);
			chk_pop(&c, q);
		}
		chk_pop(&c, p);
	}
	c.file = cfg->domains_path;
	for (size_t i = 0; i < cfg->dyn.domains.n; i++) {
		const struct config_dkim *dk = &cfg->dyn.domains.vals[i].dkim;

		for (size_t j = 0; j < dk->selectors.n; j++) {
			size_t p = chk_push(&c, "Domains.%s.DKIM.Selectors.%s",
			    cfg->dyn.domains.keys[i], dk->selectors.keys[j]);

			check_file(&c, cfg, &dk->selectors.vals[j].pos,
			    "PrivateKeyFile",
			    dk->selectors.vals[j].private_key_file);
			chk_pop(&c, p);
		}
	}
	buf_release(&c.path);
	return c.nerr;
}
