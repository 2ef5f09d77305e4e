/*
 * queue_deliver.c: one delivery attempt (spec/queue.md 4.5, 5, 6):
 * direct delivery (RFC 5321 5.1 MX resolution with implicit MX and CNAME
 * rules, RFC 7505 null MX, hosts in preference order, both address
 * families), smarthost transports (SMTP, Submission, Submissions with
 * RFC 4954 AUTH), and localserve delivery to the local listener.
 * REQUIRETLS (RFC 8689) and TLS-Required: No change the TLS rules; the
 * recipient domain's MTA-STS/DANE policy is applied through queue_tls.c
 * when the runner has struct queue_tls_params. A connection is reused
 * for the next due records of the destination (queue_job.next).
 *
 * Trust boundary: DNS answers and remote replies are untrusted and only
 * steer where we connect. Threads: a queue delivery thread; blocks on
 * DNS and the network with timeouts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "config/config.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "queue/queue_int.h"
#include "queue/queue_socks5.h"
#include "lib/banned.h"

#define DELIVER_CNAME_MAX 16 /* spec/queue.md 5.1 */
#define DELIVER_HOSTS_MAX 64

bool
queue_localserve_error(const char *lp, int *code, const char **ecode,
    const char **text)
{
	size_t n = strlen(lp);

	if (strncmp(lp, "queue", 5) != 0)
		return false;
	if (n >= 9 && strcmp(lp + n - 9, "temperror") == 0) {
		*code = 451;
		*ecode = "4.0.0";
		*text = "failing with temporary error";
		return true;
	}
	if (n >= 9 && strcmp(lp + n - 9, "permerror") == 0) {
		*code = 550;
		*ecode = "5.0.0";
		*text = "failing with permanent error";
		return true;
	}
	if (n >= 7 && strcmp(lp + n - 7, "timeout") == 0) {
		*code = 0;
		*ecode = "4.0.0";
		*text = "timeout";
		return true;
	}
	if (n >= 3 && lp[n - 3] >= '4' && lp[n - 3] <= '6' &&
	    lp[n - 2] >= '0' && lp[n - 2] <= '9' && lp[n - 1] >= '0' &&
	    lp[n - 1] <= '9') {
		int c = (lp[n - 3] - '0') * 100 + (lp[n - 2] - '0') * 10 +
		    (lp[n - 1] - '0');

		if (c >= 400 && c <= 600) {
			*code = c;
			*ecode = c >= 500 ? "5.0.0" : "4.0.0";
			*text = "failing with requested code";
			return true;
		}
	}
	return false;
}

static bool
is_v6(const char *ip)
{
	return strchr(ip, ':') != NULL;
}

static void
addr_of(const struct queue_msg *m, struct buf *out, bool rcpt)
{
	const char *lp = rcpt ? m->recipient_localpart : m->sender_localpart;
	const char *d = rcpt ? m->recipient_domain : m->sender_domain;

	if (lp == NULL || (lp[0] == '\0' && (d == NULL || d[0] == '\0')))
		return;
	buf_addf(out, "%s@%s", lp, d);
}

static void
fail_all(struct queue_job *j, bool permanent, int code, const char *ecode,
    const char *text)
{
	for (size_t i = 0; i < j->n; i++)
		smtp_client_result_fail(&j->res[i], permanent, code, ecode, "%s",
		    text);
}

/* IP order (spec/queue.md 5.3 step 2): after earlier attempts to host,
 * prefer the other family than the last one used; with exactly one
 * earlier IP of a family, prefer it again. */
static void
order_ips(const char *dialed, const char *host, char **ips, size_t n)
{
	char last[64] = "";
	size_t hl = strlen(host), count = 0;
	const char *p = dialed != NULL ? dialed : "";

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (len > hl + 1 && strncmp(p, host, hl) == 0 && p[hl] == ' ' &&
		    len - hl - 1 < sizeof(last)) {
			memcpy(last, p + hl + 1, len - hl - 1);
			last[len - hl - 1] = '\0';
			count++;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	if (count == 0 || n < 2)
		return;
	/* Stable partition: other family first. */
	{
		char **tmp = xcalloc(n, sizeof(*tmp));
		size_t k = 0;
		bool v6 = is_v6(last);

		for (size_t i = 0; i < n; i++)
			if (is_v6(ips[i]) != v6)
				tmp[k++] = ips[i];
		for (size_t i = 0; i < n; i++)
			if (is_v6(ips[i]) == v6)
				tmp[k++] = ips[i];
		memcpy(ips, tmp, n * sizeof(*ips));
		free(tmp);
	}
}

static bool all_transient(const struct queue_job *j);
static void conn_failed(struct queue_job *j,
    const struct smtp_client_result *rc);

struct conn_plan {
	const char *host;          /* remote host name (or IP) */
	const char *tls_name;      /* SNI and PKIX name; NULL: host */
	uint16_t port;
	const char *ehlo;
	enum smtp_client_tls tls;
	bool pkix;
	bool fallback_plain;       /* RFC 7435: retry without TLS */
	const char *auth_user, *auth_pass;
	enum sasl_mech mechs[SASL_MECH_COUNT];
	size_t nmechs;
	bool disable4, disable6;
	bool requiretls;
	smtp_client_verify_fn *verify;
	void *verify_arg;
	struct queue_tls_conn *tc; /* TLS policy bookkeeping, or NULL */
	/* Socks transport: connect through this proxy, or NULL. */
	const struct config_transport_socks *socks;
};

/* Our address on connected socket fd as text into out ("" if unknown). */
static void
local_ip_of(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const void *a = NULL;

	out[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET)
		a = &((struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	if (a == NULL || inet_ntop(ss.ss_family, a, out, (socklen_t)outlen) ==
	    NULL)
		out[0] = '\0';
}

/* Connect to ip through the Socks transport's proxy (spec/queue.md 4).
 * sending_out gets the address the proxy connects from: BND.ADDR of its
 * reply, else the first RemoteIPs entry of ip's family. */
static int
dial_socks(struct queue_job *j, const struct conn_plan *pl, const char *ip,
    int dial_ms, char *sending_out, size_t sending_len, struct buf *err)
{
	const struct config_transport_socks *t = pl->socks;
	int fd = queue_socks5_dial(t->address, ip, pl->port, dial_ms,
	    sending_out, sending_len, err);

	if (fd == -1)
		return -1;
	for (size_t i = 0; sending_out[0] == '\0' && i < t->remote_ips.n; i++)
		if (is_v6(t->remote_ips.v[i]) == is_v6(ip))
			snprintf(sending_out, sending_len, "%s",
			    t->remote_ips.v[i]);
	log_debug(j->log, "connected through socks5 proxy",
	    LF_STR("proxy", t->address), LF_STR("remote", ip),
	    LF_STR("sendingip", sending_out));
	return fd;
}

/* spec/queue.md 5.5: on the first attempt to a host with addresses of
 * both families, a 5xx with a policy code (5.7.x) may only mean that our
 * address of this family is blocklisted: make it transient so the next
 * attempt goes out over the other family. */
void
queue_deliver_policy_downgrade(const struct queue_job *j, bool dual,
    struct smtp_client_result *r)
{
	if (dual && j->n > 0 && j->msgs[0].attempts == 1 && !r->ok &&
	    r->permanent && strncmp(r->ecode, "5.7.", 4) == 0)
		r->permanent = false;
}

/* Try one IP: connect, session, transaction. Returns 0 when the
 * transaction ran (results per recipient in j->res), -1 when the
 * connection failed (res_conn). */
static int
try_ip(struct queue_job *j, const struct conn_plan *pl, const char *ip,
    int dial_ms, enum smtp_client_tls tls, bool dual,
    struct smtp_client_result *rc)
{
	struct smtp_client_params p = { 0 };
	struct smtp_client_tx tx = { 0 };
	struct smtp_client *c = NULL;
	const struct config_static *st = j->cfg->st;
	struct buf err, from;
	char **rcpts = NULL;
	size_t nrcpts = 0;
	char **cas = NULL;
	size_t ncas = st->tls.ca != NULL ? st->tls.ca->cert_files.n : 0;
	char sending[64] = "";
	int fd, msgfd = -1, ret = -1;

	buf_init(&err, 1024);
	buf_init(&from, 1024);
	rc->tls_error = false;
	rc->code = 0;
	snprintf(j->remote_host, sizeof(j->remote_host), "%s", pl->host);
	snprintf(j->remote_ip, sizeof(j->remote_ip), "%s", ip);
	buf_addf(&j->dialed_out, "%s %s\n", pl->host, ip);
	if (pl->socks != NULL) {
		fd = dial_socks(j, pl, ip, dial_ms, sending, sizeof(sending),
		    &err);
	} else {
		fd = smtp_client_dial(ip, pl->port, NULL, dial_ms, 0, &err);
		if (fd != -1)
			local_ip_of(fd, sending, sizeof(sending));
	}
	if (fd == -1) {
		smtp_client_result_fail(rc, false, 0, NULL, "%s", err.data);
		rc->conn_error = true;
		goto out;
	}
	p.ehlo = pl->ehlo;
	p.tls_name = pl->tls_name != NULL ? pl->tls_name : pl->host;
	p.tls = tls;
	p.pkix = pl->pkix;
	/* TLS.CA.CertFiles are relative to the config directory, not to
	 * our working directory. */
	if (ncas > 0) {
		cas = xcalloc(ncas, sizeof(*cas));
		for (size_t i = 0; i < ncas; i++)
			cas[i] = config_path(j->cfg, st->tls.ca->cert_files.v[i]);
	}
	p.ca_files = (const char *const *)cas;
	p.nca_files = ncas;
	p.no_system_trust = st->tls.ca != NULL &&
	    !st->tls.ca->additional_to_system;
	if (tls != SMTP_CLIENT_TLS_NONE) {
		p.verify = pl->verify;
		p.verify_arg = pl->verify_arg;
	}
	if (pl->tc != NULL) {
		pl->tc->ip = ip;
		pl->tc->verified = false;
		snprintf(pl->tc->sending_ip, sizeof(pl->tc->sending_ip), "%s",
		    sending);
	}
	p.auth_user = pl->auth_user;
	p.auth_pass = pl->auth_pass;
	p.mechs = pl->nmechs > 0 ? pl->mechs : NULL;
	p.nmechs = pl->nmechs;
	c = smtp_client_open(fd, &p, rc);
	if (pl->tc != NULL)
		queue_tls_conn_done(pl->tc, rc, tls != SMTP_CLIENT_TLS_NONE,
		    c != NULL && tls == SMTP_CLIENT_TLS_OPPORTUNISTIC &&
			!smtp_client_tls_active(c));
	if (c == NULL)
		goto out;
	if (pl->requiretls && !smtp_client_ext(c)->requiretls) {
		smtp_client_result_fail(rc, false, 0, "4.7.30",
		    "remote %s does not announce requiretls", pl->host);
		goto out;
	}
	msgfd = open(j->msgpath, O_RDONLY | O_CLOEXEC);
	if (msgfd == -1) {
		smtp_client_result_fail(rc, false, 0, NULL, "opening message: %s",
		    log_strerror(errno));
		goto out;
	}
	for (;;) {
		int dr;

		if (j->domain_tls != NULL && j->n > 0)
			j->domain_tls(j, smtp_client_tls_active(c),
			    smtp_client_tls_active(c) &&
				smtp_client_ext(c)->requiretls);
		buf_reset(&from);
		addr_of(&j->msgs[0], &from, false);
		rcpts = xcalloc(j->n, sizeof(*rcpts));
		nrcpts = j->n;
		for (size_t i = 0; i < j->n; i++) {
			struct buf a;

			buf_init(&a, 1024);
			addr_of(&j->msgs[i], &a, true);
			rcpts[i] = buf_take(&a);
		}
		memset(&tx, 0, sizeof(tx));
		tx.mailfrom = from.data;
		tx.rcpts = (const char *const *)rcpts;
		tx.nrcpts = j->n;
		tx.prefix = j->msgs[0].msg_prefix;
		tx.prefix_len = j->msgs[0].msg_prefix_len;
		tx.msg_fd = msgfd;
		tx.size = j->msgs[0].size;
		tx.has_8bit = j->msgs[0].has_8bit;
		tx.smtputf8 = j->msgs[0].smtputf8;
		tx.requiretls = pl->requiretls;
		dr = smtp_client_deliver(c, &tx, rc, j->res);
		for (size_t i = 0; i < j->n; i++)
			queue_deliver_policy_downgrade(j, dual, &j->res[i]);
		queue_deliver_policy_downgrade(j, dual, rc);
		for (size_t i = 0; i < nrcpts; i++)
			free(rcpts[i]);
		free(rcpts);
		rcpts = NULL;
		close(msgfd);
		msgfd = -1;
		/* spec/queue.md 7: reuse the connection for the next due
		 * records of this domain, once this outcome is final. */
		if (dr == -1 || j->next == NULL || all_transient(j) ||
		    !j->next(j))
			break;
		msgfd = open(j->msgpath, O_RDONLY | O_CLOEXEC);
		if (msgfd == -1) {
			smtp_client_result_fail(rc, false, 0, NULL,
			    "opening message: %s", log_strerror(errno));
			conn_failed(j, rc);
			break;
		}
	}
	ret = 0;
out:
	queue_deliver_policy_downgrade(j, dual, rc);
	smtp_client_close(c);
	if (msgfd != -1)
		close(msgfd);
	for (size_t i = 0; rcpts != NULL && i < nrcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	for (size_t i = 0; cas != NULL && i < ncas; i++)
		free(cas[i]);
	free(cas);
	buf_release(&err);
	buf_release(&from);
	return ret;
}

void
queue_deliver_host_ips_release(struct queue_host_ips *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->ips[i]);
	free(h->expanded);
	memset(h, 0, sizeof(*h));
	h->ede = -1;
}

/* spec/queue.md 5.3 step 1: follow the CNAMEs of out's host one lookup
 * at a time, so the final name is known for DANE (RFC 7672 2.2.2) and
 * the authenticity of the first step and of the whole chain are known
 * apart. Fills name with the final name. 0, or -1 with err. */
static int
expand_host(struct dns_resolver *r, const char *host,
    char name[DNS_NAME_MAX + 1], struct queue_host_ips *out, struct buf *err)
{
	struct dns_answer ans;
	enum dns_result res;

	snprintf(name, DNS_NAME_MAX + 1, "%s", host);
	out->authentic = out->expanded_authentic = true;
	for (size_t i = 0;; i++) {
		res = dns_lookup(r, name, DNS_CNAME, &ans);
		if (i == 0)
			out->authentic = ans.authentic;
		out->expanded_authentic = out->expanded_authentic &&
		    ans.authentic;
		if (res == DNS_NOTFOUND || (res == DNS_OK && ans.n == 0))
			break;
		if (res != DNS_OK) {
			out->ede = ans.ede;
			buf_addf(err, "looking up cname of %s: %s", name,
			    ans.why != NULL ? ans.why : dns_result_name(res));
			dns_answer_release(&ans);
			return -1;
		}
		if (strcasecmp(ans.rr[0].text, name) == 0)
			break;
		if (i >= QUEUE_HOST_CNAME_MAX ||
		    strlen(ans.rr[0].text) > DNS_NAME_MAX) {
			buf_addf(err, "%s for %s", i >= QUEUE_HOST_CNAME_MAX ?
			    "too many cname records" : "cname target too long",
			    host);
			dns_answer_release(&ans);
			return -1;
		}
		snprintf(name, DNS_NAME_MAX + 1, "%s", ans.rr[0].text);
		dns_answer_release(&ans);
	}
	dns_answer_release(&ans);
	if (strcasecmp(name, host) != 0)
		out->expanded = xstrdup(name);
	return 0;
}

int
queue_deliver_host_ips(struct dns_resolver *r, const char *host,
    bool disable4, bool disable6, struct queue_host_ips *out,
    struct buf *err)
{
	char name[DNS_NAME_MAX + 1];
	struct dns_answer ans;
	struct in6_addr tmp6;
	struct in_addr tmp4;
	enum dns_result res;

	memset(out, 0, sizeof(*out));
	out->ede = -1;
	if (inet_pton(AF_INET, host, &tmp4) == 1 ||
	    inet_pton(AF_INET6, host, &tmp6) == 1) {
		out->ips[out->n++] = xstrdup(host);
		out->is_ip = true;
		return 0;
	}
	if (r == NULL) {
		buf_adds(err, "no resolver");
		return -1;
	}
	if (expand_host(r, host, name, out, err) == -1)
		return -1;
	res = dns_lookup_ips(r, name, &ans);
	out->authentic = out->authentic && ans.authentic;
	out->expanded_authentic = out->expanded_authentic && ans.authentic;
	out->ede = ans.ede;
	if (res != DNS_OK) {
		buf_addf(err, "looking up ips of %s: %s", name,
		    ans.why != NULL ? ans.why : dns_result_name(res));
		dns_answer_release(&ans);
		return -1;
	}
	for (size_t i = 0; i < ans.n && out->n < QUEUE_HOST_IPS_MAX; i++) {
		bool v6 = ans.rr[i].type == DNS_AAAA;

		if ((v6 && disable6) || (!v6 && disable4))
			continue;
		out->ips[out->n++] = xstrdup(ans.rr[i].text);
	}
	dns_answer_release(&ans);
	if (out->n == 0) {
		buf_addf(err, "no usable ip addresses for %s", host);
		return -1;
	}
	return 0;
}

/* Resolve pl->host. 0, or -1 with rc set. */
static int
resolve_host(struct queue_job *j, const struct conn_plan *pl,
    struct queue_host_ips *out, struct smtp_client_result *rc)
{
	struct buf err;
	int ret;

	buf_init(&err, 1024);
	ret = queue_deliver_host_ips(j->resolver, pl->host, pl->disable4,
	    pl->disable6, out, &err);
	if (ret == -1)
		smtp_client_result_fail(rc, false, 0, NULL, "%s", err.data);
	buf_release(&err);
	return ret;
}

/* Dial the host's IPs in order (spec/queue.md 5.3 steps 2 and 6). 0
 * when a transaction ran; -1 with rc set when every IP failed. */
static int
dial_host(struct queue_job *j, const struct conn_plan *pl,
    struct queue_host_ips *h, struct smtp_client_result *rc)
{
	bool v4 = false, v6 = false, dual;

	for (size_t i = 0; i < h->n; i++) {
		if (strchr(h->ips[i], ':') != NULL)
			v6 = true;
		else
			v4 = true;
	}
	dual = v4 && v6;
	order_ips(j->dialed, pl->host, h->ips, h->n);
	for (size_t i = 0; i < h->n; i++) {
		int ms = SMTP_CLIENT_DIAL_MS / (int)h->n;

		if (try_ip(j, pl, h->ips[i], ms, pl->tls, dual, rc) == 0)
			return 0;
		/* spec/queue.md 5.4: plaintext fallback after TLS errors. */
		if (rc->tls_error && pl->fallback_plain &&
		    try_ip(j, pl, h->ips[i], ms, SMTP_CLIENT_TLS_NONE, dual,
			rc) == 0)
			return 0;
		if (rc->permanent)
			break;
	}
	return -1;
}

/* Deliver to one host: resolve, dial its IPs in order. 0 when a
 * transaction ran; -1 with rc set when every IP failed. */
static int
try_host(struct queue_job *j, const struct conn_plan *pl,
    struct smtp_client_result *rc)
{
	struct queue_host_ips h;
	int ret = -1;

	if (resolve_host(j, pl, &h, rc) == 0)
		ret = dial_host(j, pl, &h, rc);
	queue_deliver_host_ips_release(&h);
	return ret;
}

static bool
tls_required_no(const struct queue_job *j)
{
	return j->msgs[0].requiretls == QUEUE_REQUIRETLS_NO;
}

static bool
requiretls(const struct queue_job *j)
{
	return j->msgs[0].requiretls == QUEUE_REQUIRETLS_YES;
}

/* Copy the connection-level failure to every recipient without its own. */
static void
conn_failed(struct queue_job *j, const struct smtp_client_result *rc)
{
	for (size_t i = 0; i < j->n; i++)
		smtp_client_result_copy(&j->res[i], rc);
}

/* A transaction ran; did it end with a failure for the whole of it that
 * should move on to the next host (transient)? */
static bool
all_transient(const struct queue_job *j)
{
	if (j->n == 0)
		return false; /* all finished on a reused connection */
	for (size_t i = 0; i < j->n; i++)
		if (j->res[i].ok || j->res[i].permanent)
			return false;
	return true;
}

struct mxhost {
	char *name;
	uint16_t pref;
	unsigned rnd;
};

static int
mx_cmp(const void *a, const void *b)
{
	const struct mxhost *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->rnd < y->rnd ? -1 : x->rnd > y->rnd;
}

/* spec/queue.md 5.1: the MX hosts of the recipient domain with what the
 * TLS policy needs to know about the lookups. */
struct dest {
	struct mxhost hosts[DELIVER_HOSTS_MAX];
	size_t nhosts;
	char expanded[DNS_NAME_MAX + 1];
	bool have_mx;
	bool mx_authentic;    /* first CNAME and the MX lookup */
	bool chain_authentic; /* every CNAME and the MX lookup */
	bool literal;         /* an address literal */
};

/* Fill d for dom. 0, or -1 with every record's result set. */
static int
resolve_dest(struct queue_job *j, const char *dom, struct dest *d)
{
	struct dns_answer ans = { 0 };
	enum dns_result r;
	size_t steps = 0;

	memset(d, 0, sizeof(*d));
	if (dom[0] == '[') {
		/* RFC 5321 4.1.3: an address literal; that IP only. */
		size_t l = strlen(dom);
		const char *ip = dom + 1;

		if (strncasecmp(ip, "IPv6:", 5) == 0)
			ip += 5;
		d->hosts[0].name = xstrndup(ip, (size_t)(dom + l - 1 - ip));
		d->nhosts = 1;
		d->literal = true;
		return 0;
	}
	if (j->resolver == NULL) {
		fail_all(j, false, 0, NULL, "no dns resolver");
		return -1;
	}
	snprintf(d->expanded, sizeof(d->expanded), "%s", dom);
	d->mx_authentic = d->chain_authentic = true;
	/* spec/queue.md 5.1: follow CNAMEs explicitly, 16 steps. */
	for (;;) {
		r = dns_lookup(j->resolver, d->expanded, DNS_CNAME, &ans);
		if (steps == 0)
			d->mx_authentic = ans.authentic;
		d->chain_authentic = d->chain_authentic && ans.authentic;
		if (r != DNS_OK || ans.n == 0) {
			dns_answer_release(&ans);
			break;
		}
		if (++steps > DELIVER_CNAME_MAX ||
		    strcasecmp(ans.rr[0].text, dom) == 0) {
			dns_answer_release(&ans);
			fail_all(j, false, 0, NULL,
			    "too many cname records or cname loop");
			return -1;
		}
		snprintf(d->expanded, sizeof(d->expanded), "%s",
		    ans.rr[0].text);
		dns_answer_release(&ans);
	}
	r = dns_lookup(j->resolver, d->expanded, DNS_MX, &ans);
	d->mx_authentic = d->mx_authentic && ans.authentic;
	d->chain_authentic = d->chain_authentic && ans.authentic;
	if (r == DNS_NOTFOUND) {
		/* RFC 5321 5.1: implicit MX. */
		d->hosts[0].name = xstrdup(d->expanded);
		d->nhosts = 1;
	} else if (r != DNS_OK) {
		fail_all(j, false, 0, NULL, "looking up mx records");
		dns_answer_release(&ans);
		return -1;
	} else if (ans.n == 1 && (ans.rr[0].text[0] == '\0' ||
				     strcmp(ans.rr[0].text, ".") == 0)) {
		/* RFC 7505 3: null MX; 556 with 5.1.10 (RFC 7505 4.2). */
		fail_all(j, true, 556, "5.1.10",
		    "domain does not accept email as indicated with single dot "
		    "for mx record");
		dns_answer_release(&ans);
		return -1;
	} else {
		d->have_mx = true;
		for (size_t i = 0; i < ans.n && d->nhosts < DELIVER_HOSTS_MAX;
		     i++) {
			struct mxhost *h = &d->hosts[d->nhosts];

			if (ans.rr[i].text[0] == '\0' ||
			    strcmp(ans.rr[i].text, ".") == 0)
				continue;
			(void)gnutls_rnd(GNUTLS_RND_NONCE, &h->rnd,
			    sizeof(h->rnd));
			h->name = xstrdup(ans.rr[i].text);
			h->pref = ans.rr[i].pref;
			d->nhosts++;
		}
		qsort(d->hosts, d->nhosts, sizeof(d->hosts[0]), mx_cmp);
	}
	dns_answer_release(&ans);
	return 0;
}

/* One host without a TLS policy (queue_runner_params.tls NULL):
 * opportunistic TLS, nothing verified, REQUIRETLS impossible. */
static bool
plan_plain(struct queue_job *j, struct conn_plan *pl,
    struct smtp_client_result *rc)
{
	if (requiretls(j)) {
		/* RFC 8689 5 */
		smtp_client_result_fail(rc, true, 554, "5.7.30",
		    "missing required tls verification mechanism");
		return false;
	}
	pl->tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
	pl->fallback_plain = tls_required_no(j) ||
	    !j->msgs[0].is_dmarc_report;
	return true;
}

/* One host under the TLS policy (spec/queue.md 5.2-5.4, 5.8): false with
 * rc set when the host is not to be dialed. */
static bool
plan_policy(struct tlspolicy_host *th, struct conn_plan *pl,
    struct queue_tls_conn *tc, struct smtp_client_result *rc)
{
	switch (th->action) {
	case TLSPOLICY_CONNECT:
		break;
	case TLSPOLICY_SKIP:
		smtp_client_result_fail(rc, false, 0, NULL,
		    "mx host %s does not match mta-sts policy", th->host);
		return false;
	case TLSPOLICY_FAIL_TEMP:
		smtp_client_result_fail(rc, false, 0, "4.7.5", "%s: %s",
		    th->host, th->why);
		return false;
	case TLSPOLICY_FAIL_PERM:
		smtp_client_result_fail(rc, true, th->code, th->ecode, "%s",
		    th->why);
		return false;
	}
	pl->tls = th->tls_required ? SMTP_CLIENT_TLS_STARTTLS
				   : SMTP_CLIENT_TLS_OPPORTUNISTIC;
	/* The chain is checked by tlspolicy_verify() so that failures can
	 * be classified for TLS reports (spec/queue.md 7). */
	pl->pkix = false;
	pl->tls_name = th->sni;
	pl->fallback_plain = th->plaintext_fallback;
	pl->verify = queue_tls_verify;
	pl->verify_arg = tc;
	pl->tc = tc;
	return true;
}

/* spec/queue.md 5; with socks (the Socks transport, spec/queue.md 4)
 * every connection goes through its proxy, to the addresses resolved
 * here, so MX, MTA-STS and DANE apply as without it. */
static void
deliver_direct(struct queue_job *j, const char *ehlo, bool disable4,
    bool disable6, const struct config_transport_socks *socks)
{
	const char *dom = j->msgs[0].recipient_domain;
	struct queue_tls_attempt ta;
	struct smtp_client_result rc;
	struct dest d;
	const char *why = NULL;
	bool all_requiretls = true, tried = false, failed = true;
	bool policy = false;

	memset(&ta, 0, sizeof(ta));
	smtp_client_result_init(&rc);
	if (resolve_dest(j, dom, &d) == -1)
		goto out;
	if (j->tls != NULL && !d.literal) {
		policy = true;
		if (queue_tls_begin(&ta, j->tls, j->resolver, j->log, &j->msgs[0],
			d.expanded, d.have_mx, d.mx_authentic, d.chain_authentic,
			&why) == -1) {
			fail_all(j, false, 0, NULL, why);
			goto out;
		}
	}
	smtp_client_result_fail(&rc, false, 0, NULL, "no hosts");
	for (size_t h = 0; h < d.nhosts; h++) {
		struct tlspolicy_host th;
		struct queue_tls_conn tc = { &ta, &th, NULL, false, "" };
		struct conn_plan pl = { 0 };
		struct queue_host_ips ips;
		bool go;

		memset(&th, 0, sizeof(th));
		pl.host = d.hosts[h].name;
		pl.port = 25;
		pl.ehlo = ehlo;
		pl.disable4 = disable4;
		pl.disable6 = disable6;
		pl.requiretls = requiretls(j);
		pl.socks = socks;
		if (resolve_host(j, &pl, &ips, &rc) == -1) {
			queue_deliver_host_ips_release(&ips);
			all_requiretls = false;
			continue;
		}
		if (policy) {
			queue_tls_host(&ta, pl.host, &ips, &th);
			go = plan_policy(&th, &pl, &tc, &rc);
		} else {
			go = plan_plain(j, &pl, &rc);
		}
		if (go) {
			tried = true;
			if (dial_host(j, &pl, &ips, &rc) == 0) {
				if (!all_transient(j))
					failed = false;
				else
					smtp_client_result_copy(&rc, &j->res[0]);
			}
		}
		queue_deliver_host_ips_release(&ips);
		if (policy)
			queue_tls_host_done(&ta, &th);
		if (!failed)
			goto out;
		if (rc.permanent && strcmp(rc.ecode, "5.7.30") != 0)
			break;
		if (strcmp(rc.ecode, "4.7.30") != 0)
			all_requiretls = false;
	}
	/* spec/queue.md 5.5: every host lacked REQUIRETLS. */
	if (tried && requiretls(j) && all_requiretls &&
	    strcmp(rc.ecode, "4.7.30") == 0)
		smtp_client_result_fail(&rc, true, 554, "5.7.30",
		    "destination servers do not support requiretls");
	conn_failed(j, &rc);
out:
	if (policy)
		queue_tls_end(&ta, j->datadir, failed, j->now_ns);
	for (size_t h = 0; h < d.nhosts; h++)
		free(d.hosts[h].name);
	smtp_client_result_release(&rc);
}

/* spec/queue.md 6: smarthosts. */
static void
deliver_smtp(struct queue_job *j, const struct config_transport_smtp *t,
    enum smtp_client_tls tls, uint16_t defport)
{
	struct conn_plan pl = { 0 };
	struct smtp_client_result rc;

	smtp_client_result_init(&rc);
	pl.host = t->host != NULL ? t->host : "";
	pl.port = t->port > 0 ? (uint16_t)t->port : defport;
	pl.ehlo = j->cfg->st->hostname;
	pl.tls = tls;
	pl.pkix = true;
	if (tls != SMTP_CLIENT_TLS_IMPLICIT) {
		if (t->no_starttls)
			pl.tls = SMTP_CLIENT_TLS_NONE;
		if (t->starttls_insecure_skip_verify)
			pl.pkix = false;
	}
	pl.requiretls = requiretls(j);
	if (pl.requiretls && (pl.tls == SMTP_CLIENT_TLS_NONE || !pl.pkix)) {
		/* spec/queue.md 5.8 */
		fail_all(j, true, 554, "5.7.30",
		    "transport does not provide verified tls required by "
		    "requiretls");
		goto out;
	}
	if (t->auth != NULL) {
		pl.auth_user = t->auth->username;
		pl.auth_pass = t->auth->password;
		if (t->auth->mechanisms.n == 0) {
			/* spec/queue.md 6: default list, PLAIN only when
			 * configured. */
			static const enum sasl_mech def[] = {
				SASL_MECH_SCRAM_SHA_256_PLUS,
				SASL_MECH_SCRAM_SHA_256,
				SASL_MECH_SCRAM_SHA_1_PLUS,
				SASL_MECH_SCRAM_SHA_1,
				SASL_MECH_CRAM_MD5,
			};

			memcpy(pl.mechs, def, sizeof(def));
			pl.nmechs = sizeof(def) / sizeof(def[0]);
		}
		for (size_t i = 0; i < t->auth->mechanisms.n &&
		     pl.nmechs < SASL_MECH_COUNT;
		     i++) {
			enum sasl_mech m;

			if (sasl_mech_lookup(span_of_cstr(t->auth->mechanisms.v[i]),
				&m) == 0)
				pl.mechs[pl.nmechs++] = m;
		}
	}
	if (try_host(j, &pl, &rc) == -1)
		conn_failed(j, &rc);
out:
	smtp_client_result_release(&rc);
}

/* spec/smtp.md 18: localserve delivers to the local listener. */
static void
deliver_local(struct queue_job *j)
{
	const struct config_listener *l =
	    config_listener_find(j->cfg, "local");
	struct conn_plan pl = { 0 };
	struct smtp_client_result rc;
	char port[8];

	(void)port;
	smtp_client_result_init(&rc);
	for (size_t i = 0; i < j->n; i++) {
		int code;
		const char *ecode, *text;

		if (queue_localserve_error(j->msgs[i].recipient_localpart, &code,
			&ecode, &text)) {
			if (code == 0)
				code = 451;
			smtp_client_result_fail(&j->res[i], code >= 500, code,
			    ecode, "%d %s %s", code, ecode, text);
			buf_addf(&j->res[i].reply, "%d %s %s\n", code, ecode,
			    text);
			goto out;
		}
	}
	pl.host = l != NULL && l->ips.n > 0 ? l->ips.v[0] : "127.0.0.1";
	if (strcmp(pl.host, "0.0.0.0") == 0)
		pl.host = "127.0.0.1";
	if (strcmp(pl.host, "::") == 0)
		pl.host = "::1";
	pl.port = l != NULL && l->smtp.port > 0 ? (uint16_t)l->smtp.port : 1025;
	pl.ehlo = "localhost";
	pl.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
	pl.fallback_plain = true;
	/* REQUIRETLS is passed on to the local server over STARTTLS (its
	 * certificate is self-signed: nothing to verify against). */
	pl.requiretls = requiretls(j);
	if (pl.requiretls) {
		pl.tls = SMTP_CLIENT_TLS_STARTTLS;
		pl.fallback_plain = false;
	}
	if (try_host(j, &pl, &rc) == -1)
		conn_failed(j, &rc);
out:
	smtp_client_result_release(&rc);
}

void
queue_deliver(struct queue_job *j)
{
	const struct config_transport *t = NULL;
	const char *ehlo = j->cfg->st->hostname;

	buf_init(&j->dialed_out, 4096);
	if (j->localserve) {
		deliver_local(j);
		return;
	}
	if (j->transport != NULL && j->transport[0] != '\0') {
		for (size_t i = 0; i < j->cfg->st->transports.n; i++)
			if (strcmp(j->cfg->st->transports.keys[i],
				j->transport) == 0)
				t = &j->cfg->st->transports.vals[i];
		if (t == NULL) {
			fail_all(j, false, 0, NULL, "cannot find transport");
			return;
		}
	}
	if (t == NULL)
		deliver_direct(j, ehlo, false, false, NULL);
	else if (t->submissions != NULL)
		deliver_smtp(j, t->submissions, SMTP_CLIENT_TLS_IMPLICIT, 465);
	else if (t->submission != NULL)
		deliver_smtp(j, t->submission, SMTP_CLIENT_TLS_STARTTLS, 587);
	else if (t->smtp != NULL)
		deliver_smtp(j, t->smtp, SMTP_CLIENT_TLS_STARTTLS, 25);
	else if (t->direct != NULL)
		deliver_direct(j, ehlo, t->direct->disable_ipv4,
		    t->direct->disable_ipv6, NULL);
	else if (t->socks != NULL)
		deliver_direct(j, t->socks->remote_hostname, false, false,
		    t->socks);
	else if (t->fail != NULL)
		fail_all(j, t->fail->smtp_code >= 500,
		    (int)t->fail->smtp_code, NULL,
		    t->fail->smtp_message != NULL ? t->fail->smtp_message
						  : "failing transport");
	else
		fail_all(j, false, 0, NULL, "transport without a method");
}
