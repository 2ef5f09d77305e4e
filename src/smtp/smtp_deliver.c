/*
 * smtp_deliver.c: incoming delivery after DATA on port 25 (spec/smtp.md
 * 10, 12): the delivery decision as one step (smtp_decide(), with the
 * iprev/SPF/DKIM/DMARC verdicts of smtp_auth_checks.c and the DNSBL as
 * inputs), trace and result headers (RFC 5321 4.4 Received, RFC 8601
 * Authentication-Results, RFC 7208 9.1 Received-SPF, RFC 9228
 * Delivered-To, Return-Path), the DMARC evaluations kept for aggregate
 * reports (RFC 7489 7.2, spec/auth.md 9.2) and delivery into the store,
 * durable before the reply (DESIGN.md "Data directory"). Recipients go
 * in the order account, alias (each member analysed on its own,
 * spec/smtp.md 9 "Aliases"), unknown; when some fail and others not, a
 * DSN is queued (smtp_dsn.c, spec/smtp.md 12.4).
 *
 * Trust: the message and envelope come from an unauthenticated peer;
 * header values written by us are our own text or validated addresses.
 * Threads: runs on the session's worker; blocks on disk and SQLite.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "maildir/store_reputation.h"
#include "message/message.h"
#include "net/net.h"
#include "reports/reports.h"
#include "smtp/smtp_auth_checks.h"
#include "smtp/smtp_delay.h"
#include "smtp/smtp_fromid.h"
#include "smtp/smtp_int.h"
#include "smtp/smtp_mailfrom.h"
#include "smtp/smtp_reputation.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define FOLD_WIDTH 78 /* spec/smtp.md 10 */

/* ---- the decision (spec/smtp.md 12.2) ---- */

static bool
rule_match(const char *re, const char *s)
{
	regex_t r;
	bool m;

	/* INTEROP: config regexps are RE2 syntax; POSIX ERE covers the
	 * common subset. An invalid one never matches. */
	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	m = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

/* HeadersRegexp: each (name regexp, value regexp) pair must match some
 * header field; names and values lower-cased and trimmed. */
static bool
headers_match(const struct sconf_strmap *hm, struct span header)
{
	for (size_t i = 0; i < hm->n; i++) {
		struct message_header_iter it;
		struct message_field f;
		const char *why;
		bool found = false;

		message_header_iter_init(&it, header);
		while (!found && message_header_next(&it, &f, &why) == 1) {
			struct buf n, v;

			buf_init(&n, 1024);
			buf_init(&v, 64 * 1024);
			buf_add(&n, f.name.p, f.name.len);
			message_unfold(f.value, &v);
			for (size_t k = 0; k < n.len; k++)
				if (n.data[k] >= 'A' && n.data[k] <= 'Z')
					n.data[k] += 32;
			for (size_t k = 0; k < v.len; k++)
				if (v.data[k] >= 'A' && v.data[k] <= 'Z')
					v.data[k] += 32;
			found = rule_match(hm->keys[i], n.data) &&
			    rule_match(hm->vals[i], v.data);
			buf_release(&n);
			buf_release(&v);
		}
		if (!found)
			return false;
	}
	return true;
}

/* VerifiedDomain: equal to, or a parent of, a validated domain. */
static bool
domain_under(const char *d, const char *parent)
{
	size_t n = strlen(d), pn = strlen(parent);

	if (strcasecmp(d, parent) == 0)
		return true;
	return n > pn && d[n - pn - 1] == '.' &&
	    strcasecmp(d + n - pn, parent) == 0;
}

static bool
verified(const struct smtp_decision_in *in, const char *dom)
{
	if (in->spf_pass_domain != NULL &&
	    domain_under(in->spf_pass_domain, dom))
		return true;
	if (in->ehlo_pass_domain != NULL &&
	    domain_under(in->ehlo_pass_domain, dom))
		return true;
	for (size_t i = 0; i < in->ndkim_pass; i++)
		if (domain_under(in->dkim_pass_domains[i], dom))
			return true;
	return false;
}

/* ListAllowDomain: the SPF-validated MAIL FROM domain or a passing
 * DKIM d= (exact). */
static bool
list_allowed(const struct smtp_decision_in *in, const char *dom)
{
	if (in->spf_pass_domain != NULL &&
	    strcasecmp(in->spf_pass_domain, dom) == 0)
		return true;
	for (size_t i = 0; i < in->ndkim_pass; i++)
		if (strcasecmp(in->dkim_pass_domains[i], dom) == 0)
			return true;
	return false;
}

static const struct config_ruleset *
ruleset_find(const struct smtp_decision_in *in)
{
	const struct config_destination *d = NULL;

	if (in->account == NULL || in->dest_key == NULL)
		return NULL;
	for (size_t i = 0; i < in->account->destinations.n; i++)
		if (strcmp(in->account->destinations.keys[i], in->dest_key) == 0)
			d = &in->account->destinations.vals[i];
	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < d->rulesets.n; i++) {
		const struct config_ruleset *r = &d->rulesets.v[i];

		if (r->smtp_mail_from_regexp != NULL &&
		    !rule_match(r->smtp_mail_from_regexp, in->mailfrom))
			continue;
		if (r->msg_from_regexp != NULL &&
		    !rule_match(r->msg_from_regexp, in->msgfrom))
			continue;
		if (r->verified_domain != NULL && !verified(in, r->verified_domain))
			continue;
		if (r->headers_regexp.n > 0 &&
		    !headers_match(&r->headers_regexp, in->header))
			continue;
		return r;
	}
	return NULL;
}

/* spec/smtp.md 13 "Per-account delivery rate": limits per IP class
 * (ip1, ip2, ip3) and window, with the reply texts (static, they outlive
 * the decision). */
#define MIB (1024 * 1024LL)
static const struct rate_limit {
	int64_t msgs[3];
	int64_t bytes[3];
	const char *msgs_text[3];
	const char *bytes_text[3];
} rate_limits[2] = {
	{ { 500, 1500, 4500 }, { 1000 * MIB, 3000 * MIB, 9000 * MIB },
	    { "more than 500 messages in past minute from your ip/network",
		"more than 1500 messages in past minute from your ip/network",
		"more than 4500 messages in past minute from your ip/network" },
	    { "more than 1048576000 bytes in past minute from your "
	      "ip/network",
		"more than 3145728000 bytes in past minute from your "
		"ip/network",
		"more than 9437184000 bytes in past minute from your "
		"ip/network" } },
	{ { 10000, 30000, 90000 }, { 3000 * MIB, 9000 * MIB, 27000 * MIB },
	    { "more than 10000 messages in past day from your ip/network",
		"more than 30000 messages in past day from your ip/network",
		"more than 90000 messages in past day from your ip/network" },
	    { "more than 3145728000 bytes in past day from your ip/network",
		"more than 9437184000 bytes in past day from your ip/network",
		"more than 28311552000 bytes in past day from your "
		"ip/network" } },
};

/* Step 1: the reply text of the first limit exceeded, or NULL. The count
 * limit is on stored messages; the size one includes this message. */
static const char *
rate_exceeded(const struct smtp_decision_in *in)
{
	const struct store_delivery_counts *c[2] = { in->rate_minute,
		in->rate_day };

	for (int w = 0; w < 2; w++) {
		if (c[w] == NULL)
			continue;
		for (int i = 0; i < 3; i++) {
			if (c[w]->msgs[i] >= rate_limits[w].msgs[i])
				return rate_limits[w].msgs_text[i];
			if (c[w]->bytes[i] + in->size > rate_limits[w].bytes[i])
				return rate_limits[w].bytes_text[i];
		}
	}
	return NULL;
}

static void
reject(struct smtp_decision *out, const char *reason)
{
	out->kind = SMTP_DECIDE_REJECT_KEEP;
	out->reason = reason;
}

/* Step 10, 11: methods without sender-address history. */
static bool
weak_method(const char *m)
{
	return strcmp(m, "dkimspf") == 0 || strcmp(m, "ip1") == 0 ||
	    strcmp(m, "ip2") == 0 || strcmp(m, "ip3") == 0 ||
	    strcmp(m, "none") == 0;
}

/* Steps 8-11. Returns 1 when the decision is made (accepted or
 * rejected), 0 to continue with the content checks, -1 on a reputation
 * error. */
static int
decide_reputation(const struct smtp_decision_in *in,
    struct smtp_decision *out)
{
	struct store_rep_result rep = { STORE_REP_UNKNOWN, false, "none" };

	if (in->reputation != NULL &&
	    in->reputation(in->reputation_arg, in, out->mailbox,
		out->fwd_domain, &rep) == -1)
		return -1;
	out->method = rep.method;
	out->rep_junk = rep.junk;
	out->rep_conclusive = rep.conclusive;
	if (rep.conclusive && rep.junk == STORE_REP_HAM) {
		out->reason = rep.method; /* step 8 */
		return 1;
	}
	if (rep.conclusive && rep.junk == STORE_REP_JUNK) {
		reject(out, rep.method);
		return 1;
	}
	if (in->report) {
		out->reason = "reporting"; /* step 9 */
		return 1;
	}
	if (!weak_method(rep.method))
		return 0;
	if (in->spf == SMTP_AUTH_FAIL || in->spf == SMTP_AUTH_SOFTFAIL) {
		reject(out, "spf-policy"); /* step 10 */
		return 1;
	}
	if (in->iprev != SMTP_AUTH_PASS && rep.junk == STORE_REP_JUNK) {
		reject(out, "iprev"); /* step 11: suspicious iprev, junk signal */
		return 1;
	}
	return 0;
}

void
smtp_decide(const struct smtp_decision_in *in, struct smtp_decision *out)
{
	const struct config_ruleset *rs;
	const char *rate;
	int r;

	memset(out, 0, sizeof(*out));
	out->kind = SMTP_DECIDE_ACCEPT;
	out->reason = "no-bad-signals";
	/* Step 1: delivery rate; not kept in Rejects, no ruleset applies. */
	rate = rate_exceeded(in);
	if (rate != NULL) {
		out->kind = SMTP_DECIDE_REJECT;
		out->reason = "high-rate";
		out->code = 452;
		out->ecode = "4.2.2";
		out->text = rate;
		out->mailbox = xstrdup(in->dest_mailbox != NULL
			? in->dest_mailbox
			: "Inbox");
		return;
	}
	rs = ruleset_find(in);
	out->mailbox = xstrdup(rs != NULL && rs->mailbox != NULL
		? rs->mailbox
		: in->dest_mailbox != NULL ? in->dest_mailbox : "Inbox");
	/* Step 3: a mailing list we were told to allow. */
	if (rs != NULL && rs->list_allow_domain != NULL &&
	    list_allowed(in, rs->list_allow_domain)) {
		out->reason = "list-allow";
		out->mailing_list = true;
		return;
	}
	/* Step 4: a forwarding ruleset disables DMARC rejection. */
	out->forwarded = rs != NULL && rs->is_forward;
	if (out->forwarded && rs->verified_domain != NULL)
		out->fwd_domain = xstrdup(rs->verified_domain);
	if (in->dmarc == SMTP_AUTH_FAIL && in->dmarc_reject_policy &&
	    in->dmarc_use && !out->forwarded) {
		/* Step 5: DMARC reject without an aligned pass. */
		reject(out, "dmarc-policy");
		out->code = 550;
		out->ecode = "5.7.26";
		out->text = "rejecting per dmarc policy";
		goto rejected;
	}
	r = decide_reputation(in, out);
	if (r == -1) {
		/* Not kept: the account's index just failed. */
		out->kind = SMTP_DECIDE_REJECT;
		out->reason = "reputation-error";
		out->code = 451;
		out->ecode = "4.3.0";
		out->text = "error processing";
		return;
	}
	if (r == 1 && out->kind == SMTP_DECIDE_ACCEPT)
		return;
	if (r == 0) {
		if (in->junk_known && in->junk_prob > 0.95)
			reject(out, "junk-content"); /* step 13 */
		else if (in->dnsbl_listed != NULL &&
		    in->dnsbl_listed(in->dnsbl_arg))
			reject(out, "dns-blocklisted"); /* step 14 */
	}
	if (out->kind == SMTP_DECIDE_REJECT_KEEP && out->code == 0) {
		/* spec/smtp.md 12.2: deliberately temporary and vague. */
		out->code = 451;
		out->ecode = "4.3.0";
		out->text = "error processing";
	}
rejected:
	if (out->kind != SMTP_DECIDE_ACCEPT && rs != NULL &&
	    rs->accept_rejects_to_mailbox != NULL) {
		free(out->mailbox);
		out->mailbox = xstrdup(rs->accept_rejects_to_mailbox);
		out->kind = SMTP_DECIDE_ACCEPT;
		out->mark_reject = true;
	}
}

void
smtp_decision_release(struct smtp_decision *d)
{
	if (d == NULL)
		return;
	free(d->mailbox);
	d->mailbox = NULL;
	free(d->fwd_domain);
	d->fwd_domain = NULL;
}

/* ---- headers ---- */

void
smtp_header_fold(struct buf *out, const char *name, const char *value)
{
	size_t col = strlen(name) + 1;
	const char *p = value;

	buf_adds(out, name);
	buf_addc(out, ':');
	while (*p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t n = sp != NULL ? (size_t)(sp - p) : strlen(p);

		if (col + 1 + n > FOLD_WIDTH && col > strlen(name) + 1) {
			buf_adds(out, "\r\n\t");
			col = 8;
		} else {
			buf_addc(out, ' ');
			col++;
		}
		buf_add(out, p, n);
		col += n;
		p += n;
		while (*p == ' ')
			p++;
	}
	buf_adds(out, "\r\n");
}

void
smtp_received(struct smtp_sess *s, const char *rcpt, bool utf8msg,
    const char *revname, struct buf *out)
{
	struct buf v, date;
	const char *proto = !s->ehlo ? "SMTP" : utf8msg ? "UTF8SMTP" : "ESMTP";
	struct tls_session *ts = net_conn_tls(s->c);

	buf_init(&v, 4096);
	buf_init(&date, 64);
	if (s->srv->p.kind == SMTP_KIND_SMTP && revname != NULL &&
	    (s->hello == NULL || strcasecmp(revname, s->hello) != 0))
		/* spec/smtp.md 10: the iprev name unless equal to EHLO */
		buf_addf(&v, "from %s (%s [%s])", s->hello != NULL ? s->hello : "",
		    revname, s->remote_ip);
	else if (s->srv->p.kind == SMTP_KIND_SMTP)
		buf_addf(&v, "from %s ([%s])", s->hello != NULL ? s->hello : "",
		    s->remote_ip);
	else /* spec/smtp.md 10: hide the submitter's address */
		buf_addf(&v, "from %s", s->srv->hostname);
	buf_addf(&v, " by %s ([%s]) via tcp with %s%s%s", s->srv->hostname,
	    net_conn_local_ip(s->c), proto, s->tls ? "S" : "",
	    s->authenticated ? "A" : "");
	if (s->mail.requiretls)
		buf_adds(&v, " (requiretls)");
	buf_addf(&v, " id %s", s->rid);
	if (s->tls && ts != NULL)
		buf_addf(&v, " (%s %s)", tls_session_version(ts),
		    tls_session_cipher(ts));
	if (rcpt != NULL)
		buf_addf(&v, " for <%s>", rcpt);
	message_date_format(time_wall_ns() / NS_PER_SEC, 0, &date);
	buf_addf(&v, "; %s", date.data);
	smtp_header_fold(out, "Received", v.data);
	buf_release(&v);
	buf_release(&date);
}

/* ---- store delivery ---- */

static int
copy_fd(int in, int out)
{
	char chunk[65536];

	if (lseek(in, 0, SEEK_SET) == -1)
		return -1;
	for (;;) {
		ssize_t n = read(in, chunk, sizeof(chunk));

		if (n == -1 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (io_write_all(out, chunk, (size_t)n) == -1)
			return -1;
	}
}

/* Fields of the stored message from the parsed file. */
struct msg_facts {
	struct message_part *root;
	struct buf parsed;
	struct buf msgid;
	struct buf subject;
	struct message_addr_list from;
	char *from_lp, *from_dom;
};

static void
facts_release(struct msg_facts *f)
{
	message_part_free(f->root);
	buf_release(&f->parsed);
	buf_release(&f->msgid);
	buf_release(&f->subject);
	message_addr_list_release(&f->from);
	free(f->from_lp);
	free(f->from_dom);
}

static void
facts_get(const char *msg, size_t len, struct msg_facts *f)
{
	const char *why;
	struct span hdr = span_of(msg, message_header_len(span_of(msg, len)));
	struct span v;

	memset(f, 0, sizeof(*f));
	buf_init(&f->parsed, MESSAGE_SERIAL_MAX);
	buf_init(&f->msgid, 4096);
	buf_init(&f->subject, 4096);
	if (message_parse(msg, len, &f->root, &why) == 0)
		message_serialise(f->root, &f->parsed);
	if (message_header_find(hdr, "Message-ID", &v) == 0)
		message_id_canonical(v, &f->msgid, &why);
	if (f->root != NULL && f->root->envelope != NULL &&
	    f->root->envelope->subject != NULL)
		message_subject_base(span_of_cstr(f->root->envelope->subject),
		    &f->subject, NULL);
	if (message_header_find(hdr, "From", &v) == 0 &&
	    message_addr_parse(v, &f->from, &why) == 0) {
		const struct message_address *a = message_addr_first(&f->from);

		if (a != NULL && a->user != NULL && a->host != NULL) {
			f->from_lp = xstrdup(a->user);
			f->from_dom = xstrdup(a->host);
		}
	}
}

int
smtp_store_deliver(struct smtp_sess *s, const char *account,
    const char *mailbox, const struct buf *prefix, bool is_reject,
    uint32_t flags, const char *rcpt_lp, const char *rcpt_dom,
    const struct smtp_decision *dec, const char **why)
{
	struct store_account *a = NULL;
	struct store_err serr;
	struct store_add add = { 0 };
	struct store_msg_fields mf = { 0 };
	struct store_added added;
	struct smtp_rep_tmp rtmp;
	struct msg_facts facts;
	struct buf path, mailfrom;
	struct config *cfg = config_get();
	const struct config_account *ca = cfg != NULL
	    ? config_account_find(cfg, account)
	    : NULL;
	struct stat st;
	void *map = MAP_FAILED;
	int fd = -1, rc = -1;

	memset(&facts, 0, sizeof(facts));
	memset(&rtmp, 0, sizeof(rtmp));
	buf_init(&path, 4096);
	buf_init(&mailfrom, 1024);
	/* Unnamed where possible: no directory lock, nothing to unlink. */
	fd = store_tmpfile(s->srv->p.store, &path);
	if (fd == -1) {
		*why = "creating delivery file";
		goto out;
	}
	if (io_write_all(fd, prefix->data, prefix->len) == -1 ||
	    copy_fd(s->data_fd, fd) == -1 || fstat(fd, &st) == -1) {
		*why = "writing delivery file";
		goto out;
	}
	if (st.st_size > 0)
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map != MAP_FAILED)
		facts_get(map, (size_t)st.st_size, &facts);
	if (!s->mail.null_path)
		smtp_addr_format(&s->mail.from, &mailfrom);
	mf.remote_ip = s->remote_ip;
	mf.ehlo_domain = s->hello;
	mf.mailfrom = mailfrom.data;
	mf.mailfrom_localpart = s->mail.null_path ? "" : s->mail.from.localpart;
	mf.mailfrom_domain = s->mail.null_path ? "" : s->mail.from.domain;
	mf.rcptto_localpart = rcpt_lp;
	mf.rcptto_domain = rcpt_dom;
	mf.msgfrom_localpart = facts.from_lp;
	mf.msgfrom_domain = facts.from_dom;
	mf.message_id = facts.msgid.data;
	mf.subject_base = facts.subject.data;
	mf.is_reject = is_reject;
	mf.requiretls = s->mail.requiretls;
	/* spec/store.md 3.1 reputation fields (smtp_reputation.c). */
	smtp_rep_fields(s, account, dec, is_reject, &rtmp, &mf);
	if (facts.parsed.len > 0 && !buf_failed(&facts.parsed)) {
		mf.parsed = facts.parsed.data;
		mf.parsed_len = facts.parsed.len;
	}
	add.has_fd = true;
	add.fd = fd;
	add.path = path.len > 0 ? path.data : NULL;
	add.flags = flags;
	add.create_mailbox = true;
	add.quota = ca != NULL ? ca->eff.quota_message_size : 0;
	add.fields = &mf;
	if (store_account_get(s->srv->p.store, account, true, &a, &serr) == -1 ||
	    store_deliver(a, &add, &mailbox, 1, &added, &serr) == -1) {
		log_error(&s->log, "delivering to store", LF_ERR(serr.text),
		    LF_STR("account", account), LF_STR("mailbox", mailbox));
		*why = serr.code == STORE_EOVERQUOTA ? "quota" : "store";
		goto out;
	}
	log_info(&s->log, "delivered message", LF_STR("account", account),
	    LF_STR("mailbox", mailbox), LF_I64("uid", added.uid),
	    LF_I64("size", st.st_size), LF_STR("rid", s->rid));
	/* spec/smtp.md 12.3 step 6: feedback for a fromid address. */
	if (!is_reject)
		smtp_fromid_delivered(s, cfg, account, rcpt_lp, rcpt_dom,
		    map != MAP_FAILED ? span_of(map, (size_t)st.st_size)
				      : span_of("", 0),
		    facts.root);
	rc = 0;
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	facts_release(&facts);
	smtp_rep_tmp_release(&rtmp);
	store_account_put(a);
	if (fd != -1) {
		close(fd);
		if (path.len > 0)
			unlink(path.data);
	}
	buf_release(&path);
	buf_release(&mailfrom);
	config_put(cfg);
	return rc;
}

/* ---- incoming ---- */

/* spec/smtp.md 12.2 step 1: the account's deliveries from the peer's IP
 * classes in the past minute and day. localserve exempts loopback
 * (DESIGN.md). -1 (logged) on a store error. */
static int
rate_counts(struct smtp_sess *s, const char *account,
    struct store_delivery_counts *minute, struct store_delivery_counts *day,
    bool *check_out)
{
	struct store_account *a = NULL;
	struct store_err serr;
	int64_t now = time_wall_ns();
	int rc = -1;

	*check_out = !s->loopback_exempt;
	if (!*check_out)
		return 0;
	if (store_account_get(s->srv->p.store, account, true, &a, &serr) == -1 ||
	    store_delivery_counts(a, s->remote_ip, now - 60 * NS_PER_SEC,
		minute, &serr) == -1 ||
	    store_delivery_counts(a, s->remote_ip, now - 86400 * NS_PER_SEC,
		day, &serr) == -1) {
		log_error(&s->log, "counting deliveries for rate limit",
		    LF_ERR(serr.text), LF_STR("account", account));
		goto out;
	}
	rc = 0;
out:
	store_account_put(a);
	return rc;
}

struct rcpt_err {
	int code;
	const char *ecode;
	const char *text;
	const struct smtp_rcpt_ent *e; /* the failed recipient */
};

static size_t
count_received(struct span header)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why;
	size_t n = 0;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1)
		if (span_eq_ci(f.name, "Received"))
			n++;
	return n;
}

/* Read the header section of the data file (bounded). */
static void
read_header(struct smtp_sess *s, struct buf *out)
{
	char chunk[8192];
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(s->data_fd, chunk, sizeof(chunk), off);

		if (n <= 0 || buf_add(out, chunk, (size_t)n) == -1)
			break;
		off += n;
		if (message_header_len(span_of_buf(out)) < out->len)
			break;
	}
	if (out->failed)
		buf_truncate(out, 0);
	buf_truncate(out, message_header_len(span_of_buf(out)));
}

/* spec/smtp.md 12.4: the transaction result. */
static void
reply_result(struct smtp_sess *s, struct rcpt_err *errs, size_t nerr,
    size_t ndelivered)
{
	struct buf t;
	bool same = true, perm = false;

	if (nerr == 0 || ndelivered > 0) {
		s->good_tx++;
		if (s->tx_bad_counted && s->bad_tx > 0)
			s->bad_tx--;
		s->tx_bad_counted = false;
		smtp_reply(s, 250, "2.2.0", "it is done");
		return;
	}
	buf_init(&t, 64 * 1024);
	for (size_t i = 1; i < nerr; i++)
		if (errs[i].code != errs[0].code ||
		    strcmp(errs[i].ecode, errs[0].ecode) != 0)
			same = false;
	if (same) {
		for (size_t i = 0; i < nerr; i++)
			buf_addf(&t, "%s%s", i > 0 ? "\n" : "", errs[i].text);
		smtp_reply(s, errs[0].code, errs[0].ecode, t.data);
	} else {
		for (size_t i = 0; i < nerr; i++) {
			buf_addf(&t, "%d %s %s\n", errs[i].code, errs[i].ecode,
			    errs[i].text);
			perm = perm || errs[i].code >= 500;
		}
		buf_adds(&t, "multiple errors");
		smtp_reply(s, perm ? 554 : 451, perm ? "5.3.0" : "4.3.0", t.data);
	}
	buf_release(&t);
}

static enum smtp_auth_result
spf_verdict(const struct smtp_auth_checks *a)
{
	if (!a->spf_done)
		return SMTP_AUTH_NONE;
	switch (a->spf.status) {
	case SPF_PASS:
		return SMTP_AUTH_PASS;
	case SPF_FAIL:
		return SMTP_AUTH_FAIL;
	case SPF_SOFTFAIL:
		return SMTP_AUTH_SOFTFAIL;
	case SPF_NEUTRAL:
		return SMTP_AUTH_NEUTRAL;
	case SPF_TEMPERROR:
		return SMTP_AUTH_TEMPERROR;
	case SPF_PERMERROR:
		return SMTP_AUTH_PERMERROR;
	case SPF_NONE:
		break;
	}
	return SMTP_AUTH_NONE;
}

static enum smtp_auth_result
iprev_verdict(const struct smtp_auth_checks *a)
{
	if (!a->iprev_done)
		return SMTP_AUTH_NONE;
	switch (a->iprev.status) {
	case IPREV_PASS:
		return SMTP_AUTH_PASS;
	case IPREV_FAIL:
		return SMTP_AUTH_FAIL;
	case IPREV_TEMPERROR:
		return SMTP_AUTH_TEMPERROR;
	case IPREV_PERMERROR:
		return SMTP_AUTH_PERMERROR;
	}
	return SMTP_AUTH_NONE;
}

static enum smtp_auth_result
dmarc_verdict(const struct smtp_auth_checks *a)
{
	if (!a->dmarc_done)
		return SMTP_AUTH_NONE;
	switch (a->dmarc.status) {
	case DMARC_PASS:
		return SMTP_AUTH_PASS;
	case DMARC_FAIL:
		return SMTP_AUTH_FAIL;
	case DMARC_TEMPERROR:
		return SMTP_AUTH_TEMPERROR;
	case DMARC_PERMERROR:
		return SMTP_AUTH_PERMERROR;
	case DMARC_NONE:
		break;
	}
	return SMTP_AUTH_NONE;
}

static bool
dnsbl_cb(void *arg)
{
	return smtp_auth_dnsbl_listed(arg);
}

/* Whether lp@dom is a DMARC or TLS reporting address of ours (spec
 * auth.md 9.2: such evaluations are optional, against report loops). */
static bool
is_report_addr(const struct config *cfg, const char *lp, const char *dom)
{
	for (size_t i = 0; cfg != NULL && i < cfg->dyn.domains.n; i++) {
		const struct config_domain *d = &cfg->dyn.domains.vals[i];
		const struct config_report_addr *ra[2] = { d->dmarc, d->tlsrpt };

		for (size_t k = 0; k < 2; k++) {
			const char *rd;

			if (ra[k] == NULL || ra[k]->localpart == NULL)
				continue;
			rd = ra[k]->domain != NULL ? ra[k]->domain
						   : cfg->dyn.domains.keys[i];
			if (strcasecmp(ra[k]->localpart, lp) == 0 &&
			    strcasecmp(rd, dom) == 0)
				return true;
		}
	}
	return false;
}

/* spec/smtp.md 12.3 step 2, spec/auth.md 9.2: keep the evaluation when
 * reports are on, the record has rua addresses and the message was
 * accepted (not as a reject) or rejected for the DMARC policy. */
static void
store_evaluation(struct smtp_sess *s, const struct config *cfg,
    const struct smtp_auth_checks *a, const struct smtp_rcpt_ent *e,
    const struct smtp_decision *dec, struct reports **rep)
{
	struct dmarc_eval_facts f = { 0 };
	struct dmarc_evaluation ev;
	struct buf err;
	bool dmarc_reject = strcmp(dec->reason, "dmarc-policy") == 0;

	if (cfg == NULL || cfg->st->no_outgoing_dmarc_reports ||
	    !a->dmarc_done || !a->dmarc.lookup.has_record ||
	    a->dmarc.lookup.record.nrua == 0)
		return;
	if (!(dec->kind == SMTP_DECIDE_ACCEPT && !dec->mark_reject) &&
	    !dmarc_reject)
		return;
	f.source_ip = s->remote_ip;
	f.envelope_to = e->addr.domain;
	f.envelope_from = s->mail.null_path ? "" : s->mail.from.domain;
	f.rejected = dmarc_reject;
	f.mailing_list = dec->mailing_list;
	f.forwarded = dec->forwarded;
	/* Without sender history every organizational domain counts as
	 * unknown to the account, so DMARC rejects are always optional. */
	f.optional = dmarc_reject ||
	    is_report_addr(cfg, e->addr.localpart, e->addr.domain);
	f.now = time_wall_ns() / NS_PER_SEC;
	if (dmarc_evaluation_build(s->srv->p.psl, &a->dmarc_in, &a->dmarc, &f,
		&ev) == -1)
		return;
	buf_init(&err, 4096);
	if (*rep == NULL)
		*rep = reports_open(s->srv->datadir, &err);
	if (*rep == NULL || reports_dmarc_eval_add(*rep, &ev, &err) == -1)
		log_error(&s->log, "storing dmarc evaluation", LF_ERR(err.data),
		    LF_STR("domain", ev.policy_domain));
	dmarc_evaluation_release(&ev);
	buf_release(&err);
}

/* The message as received (data file), mapped read-only. */
static struct span
map_data(struct smtp_sess *s, void **map_out, size_t *len_out)
{
	struct stat st;

	*map_out = MAP_FAILED;
	*len_out = 0;
	if (fstat(s->data_fd, &st) == -1 || st.st_size <= 0)
		return span_of("", 0);
	*map_out = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
	    s->data_fd, 0);
	if (*map_out == MAP_FAILED)
		return span_of("", 0);
	*len_out = (size_t)st.st_size;
	return span_of(*map_out, *len_out);
}

/* What the recipients of one incoming message share. */
struct incoming {
	struct smtp_sess *s;
	struct config *cfg;         /* reference; may be NULL */
	struct smtp_auth_checks ac;
	const char **dkim_pass;     /* passing DKIM d= domains */
	size_t ndkim_pass;
	struct buf header;          /* header section as received */
	struct buf mailfrom;        /* MAIL FROM address, "" for <> */
	struct buf msgfrom;         /* localpart@domain of From, or "" */
	struct buf from_canon;      /* From in canonical form (smtp_alias.c) */
	char **explicit_rcpts;      /* canonical account recipients */
	size_t nexplicit;
	size_t size;                /* message as received */
	bool utf8msg;
	struct reports *rep;
	struct rcpt_err *errs;      /* at most one per recipient */
	size_t nerr;
};

/* A place the message goes: an account recipient, or a member of an
 * alias recipient. Strings borrowed. */
struct target {
	const struct smtp_rcpt_ent *e; /* the recipient as given */
	const char *account;
	const char *mailbox;        /* destination mailbox */
	const char *dest_key;
	const char *lp, *dom;       /* stored as the message's RCPT TO */
	const char *delivered_to;   /* RFC 9228 */
	bool evaluate;              /* keeps the DMARC evaluation */
};

static void
add_err(struct incoming *in, const struct smtp_rcpt_ent *e, int code,
    const char *ecode, const char *text)
{
	in->errs[in->nerr++] = (struct rcpt_err){ code, ecode, text, e };
}

/* spec/smtp.md 12.2 and 12.3 steps 1-2 for one target: the decision and
 * the prefix stored with the message. -1 (logged) when the account's
 * deliveries could not be counted; dec is then empty. */
static int
analyse(struct incoming *in, const struct target *t,
    struct smtp_decision *dec, struct buf *prefix)
{
	struct smtp_sess *s = in->s;
	const struct smtp_auth_checks *ac = &in->ac;
	struct smtp_decision_in din = { 0 };
	struct store_delivery_counts rate_minute, rate_day;
	struct buf over, addr;
	bool rate_check;

	memset(dec, 0, sizeof(*dec));
	if (rate_counts(s, t->account, &rate_minute, &rate_day, &rate_check) ==
	    -1)
		return -1;
	if (rate_check) {
		din.rate_minute = &rate_minute;
		din.rate_day = &rate_day;
		din.size = (int64_t)in->size;
	}
	din.account = in->cfg != NULL ? config_account_find(in->cfg, t->account)
				      : NULL;
	din.account_name = t->account;
	din.dest_key = t->dest_key;
	din.dest_mailbox = t->mailbox;
	din.mailfrom = in->mailfrom.data;
	din.msgfrom = in->msgfrom.data;
	din.header = span_of_buf(&in->header);
	din.tls = s->tls;
	din.iprev = iprev_verdict(ac);
	din.spf = spf_verdict(ac);
	din.dmarc = dmarc_verdict(ac);
	din.dmarc_reject_policy = ac->dmarc_done && ac->dmarc.reject;
	din.dmarc_use = ac->dmarc_done && ac->dmarc.use;
	if (ac->spf_done && ac->spf.status == SPF_PASS) {
		if (ac->spf.identity == SPF_ID_MAILFROM)
			din.spf_pass_domain = ac->spf.domain;
		else if (ac->spf.identity == SPF_ID_HELO)
			din.ehlo_pass_domain = ac->spf.domain;
	}
	din.dkim_pass_domains = in->dkim_pass;
	din.ndkim_pass = in->ndkim_pass;
	din.dnsbl_listed = dnsbl_cb;
	din.dnsbl_arg = s;
	din.reputation = smtp_rep_lookup;
	din.reputation_arg = s;
	smtp_decide(&din, dec);
	/* spec/smtp.md 12.3 step 1: DMARC overrides. */
	buf_init(&over, 256);
	if (dec->mailing_list)
		buf_adds(&over, "mailing_list");
	if (dec->forwarded)
		buf_adds(&over, "forwarded");
	if (ac->dmarc_done && ac->dmarc.lookup.has_record && ac->dmarc.reject &&
	    !ac->dmarc.use)
		buf_addf(&over, "%ssampled_out", over.len > 0 ? "," : "");
	if (t->evaluate)
		store_evaluation(s, in->cfg, ac, t->e, dec, &in->rep);
	/* spec/smtp.md 10: the Received for-clause has the RCPT TO as given,
	 * Delivered-To the final address (for aliases the member). */
	buf_init(&addr, 1024);
	if (t->e->postmaster && t->e->addr.domain[0] == '\0')
		buf_adds(&addr, "postmaster");
	else
		smtp_addr_format(&t->e->addr, &addr);
	buf_reset(prefix);
	buf_addf(prefix, "X-Mox-Reason: %s\r\n", dec->reason);
	buf_addf(prefix, "Delivered-To: %s\r\n", t->delivered_to);
	buf_addf(prefix, "Return-Path: <%s>\r\n", in->mailfrom.data);
	smtp_auth_headers(ac, s->srv->hostname, in->utf8msg, over.data, prefix);
	smtp_received(s, s->nrcpts == 1 ? addr.data : NULL, in->utf8msg,
	    ac->iprev_done ? ac->iprev.name : NULL, prefix);
	buf_release(&over);
	buf_release(&addr);
	return 0;
}

/* spec/smtp.md 12.3 step 3: a refused target, kept in the account's
 * Rejects mailbox when the decision says so. */
static void
keep_reject(struct incoming *in, const struct target *t,
    const struct smtp_decision *dec, const struct buf *prefix)
{
	struct smtp_sess *s = in->s;
	const struct config_account *ca = in->cfg != NULL
	    ? config_account_find(in->cfg, t->account)
	    : NULL;
	const char *why = NULL;

	if (dec->kind == SMTP_DECIDE_REJECT_KEEP && ca != NULL &&
	    ca->rejects_mailbox != NULL && ca->rejects_mailbox[0] != '\0')
		smtp_store_deliver(s, t->account, ca->rejects_mailbox, prefix,
		    true, STORE_F_SEEN, t->lp, t->dom, dec, &why);
	s->slow = true;
	log_info(&s->log, "incoming message rejected",
	    LF_STR("reason", dec->reason), LF_STR("rcpt", t->delivered_to));
}

/* spec/smtp.md 12.3 step 6: store an accepted message. 0, or -1 with
 * *quota_out set when the account's quota was the reason. */
static int
store_target(struct incoming *in, const struct target *t,
    const struct smtp_decision *dec, const struct buf *prefix,
    bool *quota_out)
{
	const char *why = NULL;

	*quota_out = false;
	/* spec/smtp.md 12.3 step 5: first-time senders wait (unstored). */
	if (smtp_delay_wanted(in->s, in->cfg, t->account, dec)) {
		smtp_delay_add(in->s, t->e, t->account, dec, prefix, t->lp,
		    t->dom);
		return 0;
	}
	if (smtp_store_deliver(in->s, t->account, dec->mailbox, prefix,
		dec->mark_reject, dec->mark_reject ? STORE_F_SEEN : 0, t->lp,
		t->dom, dec, &why) == 0) {
		smtp_delay_stored(in->s, t->e);
		return 0;
	}
	*quota_out = why != NULL && strcmp(why, "quota") == 0;
	return -1;
}

/* An account recipient. true when delivered, else an error is added. */
static bool
deliver_account(struct incoming *in, const struct smtp_rcpt_ent *e)
{
	struct smtp_decision dec;
	struct buf prefix, addr;
	struct target t;
	bool quota, ok = false;

	buf_init(&prefix, SMTP_PREFIX_MAX);
	buf_init(&addr, 1024);
	if (e->postmaster && e->addr.domain[0] == '\0')
		buf_adds(&addr, "postmaster");
	else
		smtp_addr_format(&e->addr, &addr);
	t = (struct target){ e, e->account, e->mailbox, e->dest_key,
		e->addr.localpart, e->addr.domain, addr.data, true };
	if (analyse(in, &t, &dec, &prefix) == -1) {
		add_err(in, e, 451, "4.3.0", "error processing");
	} else if (dec.kind != SMTP_DECIDE_ACCEPT) {
		keep_reject(in, &t, &dec, &prefix);
		add_err(in, e, dec.code, dec.ecode, dec.text);
	} else if (store_target(in, &t, &dec, &prefix, &quota) == 0) {
		ok = true;
	} else if (quota) {
		add_err(in, e, 452, "4.2.2", "account storage full");
	} else {
		add_err(in, e, 451, "4.3.0", "error processing");
	}
	smtp_decision_release(&dec);
	buf_release(&prefix);
	buf_release(&addr);
	return ok;
}

/* spec/smtp.md 9 "Aliases": an alias recipient. The From must be allowed
 * to post; every member but the From and the explicit recipients is
 * analysed on its own; when any accepts, all of them get the message.
 * true when the recipient counts as delivered, else an error is added. */
static bool
deliver_alias(struct incoming *in, const struct smtp_rcpt_ent *e)
{
	const struct smtp_alias_info *al = e->alias;
	size_t n = al->nmembers > 0 ? al->nmembers : 1;
	struct target *t = xcalloc(n, sizeof(*t));
	struct smtp_decision *dec = xcalloc(n, sizeof(*dec));
	struct buf *prefix = xcalloc(n, sizeof(*prefix));
	char **mlp = xcalloc(n, sizeof(*mlp));
	bool *analysed = xcalloc(n, sizeof(*analysed));
	size_t nanalysed = 0, nerrored = 0, ndelivered = 0, nfailed = 0;
	size_t first_reject = SIZE_MAX;
	bool accept = false, ok = false, quota;

	for (size_t i = 0; i < n; i++)
		buf_init(&prefix[i], SMTP_PREFIX_MAX);
	if (in->cfg == NULL) {
		add_err(in, e, 451, "4.3.0", "error processing");
		goto out;
	}
	if (!smtp_alias_may_post(al, in->from_canon.data)) {
		add_err(in, e, 550, "5.7.2", "not allowed to send to destination");
		log_info(&in->s->log, "message refused for alias",
		    LF_STR("alias", al->addr),
		    LF_STR("msgfrom", in->msgfrom.data));
		goto out;
	}
	for (size_t i = 0; i < al->nmembers; i++) {
		const char *m = al->members[i], *at = strrchr(m, '@');
		struct config_dest_ref ref;

		if (at == NULL ||
		    smtp_alias_member_skip(m, in->from_canon.data,
			(const char *const *)in->explicit_rcpts, in->nexplicit))
			continue;
		mlp[i] = xstrndup(m, (size_t)(at - m));
		if (config_lookup_address(in->cfg, mlp[i], at + 1, &ref) == -1) {
			/* The config changed since RCPT. */
			log_error(&in->s->log, "alias member has no account",
			    LF_STR("alias", al->addr), LF_STR("member", m));
			nerrored++;
			continue;
		}
		t[i] = (struct target){ e, ref.account_name, ref.mailbox,
			ref.dest_key, mlp[i], at + 1, m, nanalysed == 0 };
		if (analyse(in, &t[i], &dec[i], &prefix[i]) == -1) {
			nerrored++;
			continue;
		}
		analysed[i] = true;
		nanalysed++;
		if (dec[i].kind == SMTP_DECIDE_ACCEPT)
			accept = true;
		else if (first_reject == SIZE_MAX)
			first_reject = i;
	}
	if (!accept) {
		for (size_t i = 0; i < n; i++)
			if (analysed[i])
				keep_reject(in, &t[i], &dec[i], &prefix[i]);
		if (first_reject != SIZE_MAX)
			add_err(in, e, dec[first_reject].code,
			    dec[first_reject].ecode, dec[first_reject].text);
		else if (nerrored > 0)
			add_err(in, e, 451, "4.3.0", "error processing");
		else
			ok = true; /* every member excluded: nothing to do */
		goto out;
	}
	/* Quota errors of one member do not stop the others. */
	for (size_t i = 0; i < n; i++) {
		if (!analysed[i])
			continue;
		if (store_target(in, &t[i], &dec[i], &prefix[i], &quota) == 0)
			ndelivered++;
		else if (!quota)
			nfailed++;
	}
	if (ndelivered > 0)
		ok = true;
	else if (nfailed == 0 && nerrored == 0)
		add_err(in, e, 452, "4.2.2", "account storage full");
	else
		add_err(in, e, 451, "4.3.0", "error processing");
out:
	for (size_t i = 0; i < n; i++) {
		smtp_decision_release(&dec[i]);
		buf_release(&prefix[i]);
		free(mlp[i]);
	}
	free(t);
	free(dec);
	free(prefix);
	free(mlp);
	free(analysed);
	return ok;
}

/* spec/smtp.md 12.4: some recipients failed, others got the message. */
static void
queue_partial_dsn(struct incoming *in)
{
	struct smtp_rcpt_fail *f = xcalloc(in->nerr, sizeof(*f));
	struct buf *addr = xcalloc(in->nerr, sizeof(*addr));

	for (size_t i = 0; i < in->nerr; i++) {
		const struct smtp_rcpt_ent *e = in->errs[i].e;

		buf_init(&addr[i], 1024);
		if (e->postmaster && e->addr.domain[0] == '\0')
			buf_adds(&addr[i], "postmaster");
		else
			smtp_addr_format(&e->addr, &addr[i]);
		f[i] = (struct smtp_rcpt_fail){ addr[i].data, in->errs[i].code,
			in->errs[i].ecode, in->errs[i].text };
	}
	smtp_dsn_queue(in->s, in->cfg, span_of_buf(&in->header), f, in->nerr);
	for (size_t i = 0; i < in->nerr; i++)
		buf_release(&addr[i]);
	free(addr);
	free(f);
}

/* The From address (exactly the first one) in plain and canonical form. */
static void
from_address(struct incoming *in)
{
	struct span v;
	struct message_addr_list l = { 0 };
	const char *why;

	if (message_header_find(span_of_buf(&in->header), "From", &v) == 0 &&
	    message_addr_parse(v, &l, &why) == 0) {
		const struct message_address *a = message_addr_first(&l);

		if (a != NULL && a->user != NULL && a->host != NULL) {
			buf_addf(&in->msgfrom, "%s@%s", a->user, a->host);
			if (in->cfg != NULL)
				smtp_alias_canonical(in->cfg, a->user, a->host,
				    &in->from_canon);
		}
	}
	message_addr_list_release(&l);
	if (buf_failed(&in->from_canon))
		buf_truncate(&in->from_canon, 0);
}

/* Canonical addresses of the account recipients: alias members among
 * them get no second copy. */
static void
explicit_rcpts(struct incoming *in)
{
	struct smtp_sess *s = in->s;

	in->explicit_rcpts = xcalloc(s->nrcpts, sizeof(*in->explicit_rcpts));
	for (size_t i = 0; i < s->nrcpts && in->cfg != NULL; i++) {
		const struct smtp_rcpt_ent *e = &s->rcpts[i];
		struct buf b;

		if (e->unknown || e->alias != NULL || e->account == NULL)
			continue;
		buf_init(&b, 1024);
		smtp_alias_canonical(in->cfg, e->addr.localpart, e->addr.domain,
		    &b);
		if (!buf_failed(&b))
			in->explicit_rcpts[in->nexplicit++] = buf_take(&b);
		buf_release(&b);
	}
}

/* spec/smtp.md 12.4: the transaction's reply, and the DSN for a
 * partial failure. */
static void
incoming_finish(struct incoming *in, size_t nok, bool timeout)
{
	struct smtp_sess *s = in->s;

	if (timeout && nok == 0) {
		smtp_reply_later(s, 3600 * 1000, 451, "4.0.0", "timeout", false);
	} else {
		/* spec/smtp.md 12.4, 18: no DSN to <> or in localserve. */
		if (in->nerr > 0 && nok > 0 && !s->mail.null_path &&
		    !s->srv->p.localserve && in->cfg != NULL)
			queue_partial_dsn(in);
		reply_result(s, in->errs, in->nerr, nok);
	}
}

static void
incoming_release(struct incoming *in)
{
	smtp_auth_checks_release(&in->ac);
	reports_close(in->rep);
	free(in->dkim_pass);
	for (size_t i = 0; i < in->nexplicit; i++)
		free(in->explicit_rcpts[i]);
	free(in->explicit_rcpts);
	free(in->errs);
	config_put(in->cfg);
	buf_release(&in->header);
	buf_release(&in->mailfrom);
	buf_release(&in->msgfrom);
	buf_release(&in->from_canon);
}

/* After the first-time-sender delay (smtp_delay.c): recipients none of
 * whose copies could be stored fail as in deliver_alias(). */
static void
incoming_resume(struct smtp_sess *s, void *arg, size_t nok,
    const struct smtp_delay_fail *fails, size_t nfails)
{
	struct incoming *in = arg;

	for (size_t i = 0; i < nfails; i++) {
		if (fails[i].quota)
			add_err(in, fails[i].e, 452, "4.2.2",
			    "account storage full");
		else
			add_err(in, fails[i].e, 451, "4.3.0", "error processing");
	}
	incoming_finish(in, nok, false);
	smtp_tx_reset(s);
}

static void
incoming_free(void *arg)
{
	incoming_release(arg);
	free(arg);
}

void
smtp_deliver_incoming(struct smtp_sess *s)
{
	struct incoming in;
	size_t nok = 0, nunknown = 0;
	bool timeout = false;
	void *map = MAP_FAILED;
	size_t maplen = 0;

	memset(&in, 0, sizeof(in));
	in.s = s;
	in.cfg = config_get();
	in.errs = xcalloc(s->nrcpts > 0 ? s->nrcpts : 1, sizeof(*in.errs));
	buf_init(&in.header, SMTP_HEADER_MAX);
	buf_init(&in.mailfrom, 1024);
	buf_init(&in.msgfrom, 1024);
	buf_init(&in.from_canon, 1024);
	read_header(s, &in.header);
	in.utf8msg = smtp_sess_needs_smtputf8(s, span_of_buf(&in.header));
	if (s->srv->p.pedantic && in.utf8msg && !s->mail.smtputf8) {
		smtp_reply(s, 550, "5.6.0", "smtputf8 extension is required but "
					    "was not added to the MAIL command");
		goto out;
	}
	if (count_received(span_of_buf(&in.header)) > SMTP_RECEIVED_MAX) {
		smtp_reply(s, 550, "5.4.6",
		    "loop detected, more than 100 Received headers");
		goto out;
	}
	for (size_t i = 0; i < s->nrcpts; i++)
		if (s->rcpts[i].unknown)
			nunknown++;
	if (nunknown == s->nrcpts) {
		/* spec/smtp.md 12.1 step 6: make probing slow. */
		smtp_reply_later(s, SMTP_UNKNOWN_DELAY_MS, 550, "5.1.1",
		    "no such user(s)", false);
		goto out;
	}
	/* spec/smtp.md 12.1 steps 4, 5, 9; SPF once per transaction (an
	 * earlier result from the 2nd RCPT is reused). */
	smtp_auth_iprev(s, &in.ac);
	smtp_mailfrom_spf_take(s, &in.ac);
	smtp_auth_verify(s, map_data(s, &map, &maplen),
	    span_of_buf(&in.header), &in.ac);
	smtp_rep_begin(s, &in.ac, span_of_buf(&in.header));
	in.size = maplen;
	in.dkim_pass = xcalloc(in.ac.ndkim + 1, sizeof(*in.dkim_pass));
	for (size_t i = 0; i < in.ac.ndkim; i++)
		if (in.ac.dkim[i].status == DKIM_PASS && in.ac.dkim[i].sig != NULL)
			in.dkim_pass[in.ndkim_pass++] = in.ac.dkim[i].sig->domain;
	if (!s->mail.null_path)
		smtp_addr_format(&s->mail.from, &in.mailfrom);
	from_address(&in);
	explicit_rcpts(&in);
	/* spec/smtp.md 9: account recipients, then aliases, then unknown. */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < s->nrcpts; i++) {
			struct smtp_rcpt_ent *e = &s->rcpts[i];
			int kind = e->unknown ? 2 : e->alias != NULL ? 1 : 0;
			int code;
			const char *ecode, *text;

			if (kind != pass)
				continue;
			if (e->unknown) {
				add_err(&in, e, 550, "5.1.1", "no such user");
				continue;
			}
			if (s->srv->p.localserve &&
			    smtp_localserve_error(e->addr.localpart, 'd', &code,
				&ecode, &text)) {
				if (code == 0) {
					timeout = true;
					code = 451;
				}
				add_err(&in, e, code, ecode, text);
				continue;
			}
			if (e->alias != NULL ? deliver_alias(&in, e)
					     : deliver_account(&in, e))
				nok++;
		}
	}
	if (smtp_delay_pending(s)) {
		/* spec/junk.md 10: the copies and the reply wait for the
		 * timer; the transaction stays open until then. */
		struct incoming *p = xmalloc(sizeof(*p));

		if (map != MAP_FAILED)
			munmap(map, maplen);
		*p = in;
		smtp_delay_start(s, nok, incoming_resume, incoming_free, p);
		return;
	}
	incoming_finish(&in, nok, timeout);
out:
	if (map != MAP_FAILED)
		munmap(map, maplen);
	smtp_tx_reset(s);
	incoming_release(&in);
}
