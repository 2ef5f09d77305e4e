/*
 * store_reputation.c: the reputation analysis of spec/junk.md 7 over an
 * account's index.db, and the partial indexes that keep its queries to a
 * few index seeks: they hold only classified messages (not expunged,
 * $Junk or $NotJunk), keyed by the original mailbox and the identity a
 * step looks for, with the receive time last for newest-first scans.
 *
 * Trust: the record comes from the SMTP session (peer-controlled names
 * and addresses); they are only bound as SQL parameters. Threads: any
 * but the reactor; uses one pooled read connection per call.
 */
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "store_int.h"
#include "maildir/store_reputation.h"
#include "lib/banned.h"

/* spec/store.md 3.1: $Junk and $NotJunk. A message with both counts as
 * junk (spec/junk.md 5). */
#define CLASSIFIED "expunged = 0 AND (flags & 48) != 0"
_Static_assert((STORE_F_JUNK | STORE_F_NOTJUNK) == 48,
    "CLASSIFIED names the $Junk and $NotJunk bits");

static const char rep_index_sql[] =
    "CREATE INDEX IF NOT EXISTS message_rep_from ON message(mailbox_orig_id,"
    " msgfrom_domain, msgfrom_localpart, received) WHERE " CLASSIFIED ";"
    "CREATE INDEX IF NOT EXISTS message_rep_fromorg ON"
    " message(mailbox_orig_id, msgfrom_orgdomain, received) WHERE "
    CLASSIFIED ";"
    "CREATE INDEX IF NOT EXISTS message_rep_mailfrom ON"
    " message(mailbox_orig_id, mailfrom_domain, mailfrom_localpart,"
    " received) WHERE " CLASSIFIED ";"
    "CREATE INDEX IF NOT EXISTS message_rep_ehlo ON message(mailbox_orig_id,"
    " ehlo_domain, received) WHERE " CLASSIFIED ";"
    "CREATE INDEX IF NOT EXISTS message_rep_ip1 ON message(mailbox_orig_id,"
    " remote_ip_masked1, received) WHERE " CLASSIFIED ";"
    "CREATE INDEX IF NOT EXISTS message_rep_ip2 ON message(mailbox_orig_id,"
    " remote_ip_masked2, received) WHERE " CLASSIFIED ";"
    "CREATE INDEX IF NOT EXISTS message_rep_ip3 ON message(mailbox_orig_id,"
    " remote_ip_masked3, received) WHERE " CLASSIFIED ";";

int
store_reputation_schema(sqlite3 *db, struct store_err *err)
{
	return store_exec(db, rep_index_sql, err);
}

/* "SELECT ... classified messages of mailbox ?1 received at or after ?2,
 * newest first, at most ?3" with a condition on ?4 and up. */
#define MSGQ(cond) \
    "SELECT flags, msgfrom_localpart FROM message WHERE" \
    " mailbox_orig_id = ?1 AND " CLASSIFIED " AND received >= ?2 AND " \
    cond " ORDER BY received DESC LIMIT ?3"

static const char q_fromfull[] = MSGQ("msgfrom_domain = ?4 AND"
    " msgfrom_localpart = ?5 AND msgfrom_validated = ?6");
static const char q_fromdomain[] = MSGQ("msgfrom_domain = ?4 AND"
    " msgfrom_validated = ?6");
static const char q_fromorg[] = MSGQ("msgfrom_orgdomain = ?4 AND"
    " msgfrom_validated = ?6");
static const char q_mailfromfull[] = MSGQ("mailfrom_domain = ?4 AND"
    " mailfrom_localpart = ?5");
static const char q_mailfromdomain[] = MSGQ("mailfrom_domain = ?4");
static const char q_ehlo[] = MSGQ("ehlo_domain = ?4");
static const char q_ip[3][256] = {
	MSGQ("remote_ip_masked1 = ?4"),
	MSGQ("remote_ip_masked2 = ?4"),
	MSGQ("remote_ip_masked3 = ?4"),
};
/* message_dkim(domain, received) finds the newest signed messages; the
 * message row is reached by its key. */
static const char q_dkim[] =
    "SELECT m.flags, m.msgfrom_localpart FROM message_dkim d"
    " JOIN message m ON m.id = d.message_id"
    " WHERE d.domain = ?4 AND d.received >= ?2 AND m.mailbox_orig_id = ?1"
    " AND m.expunged = 0 AND (m.flags & 48) != 0"
    " ORDER BY d.received DESC LIMIT ?3";

/* Sent recipients (spec/store.md 3.3). Rows written without an
 * organizational domain (the writer had no public suffix list) match the
 * domain itself and its subdomains. */
static const char q_sent_full[] =
    "SELECT 1 FROM recipient WHERE domain = ?1 AND localpart = ?2"
    " AND sent >= ?3 LIMIT 1";
static const char q_sent_domain[] =
    "SELECT 1 FROM recipient WHERE domain = ?1 AND sent >= ?3 LIMIT 1";
static const char q_sent_org[] =
    "SELECT 1 FROM recipient WHERE orgdomain = ?1 AND sent >= ?3 LIMIT 1";
static const char q_sent_org_unset[] =
    "SELECT 1 FROM recipient WHERE orgdomain = '' AND sent >= ?3 AND"
    " (domain = ?1 OR substr(domain, -length(?1) - 1) = '.' || ?1)"
    " LIMIT 1";

struct rep_ctx {
	struct store_account *a;
	sqlite3 *db;            /* a read connection of a: statements are
				 * prepared once per connection */
	int64_t mbid;           /* 0: the mailbox does not exist (yet), or
				 * holds no classified messages */
	bool any_sent;          /* the recipient table has rows */
	int64_t now;
	struct store_err *err;
};

/* Newest-first facts of the messages a query found. */
struct rep_rows {
	size_t n;
	size_t njunk;
	bool junk[2];            /* of the newest two */
	char lp[3][128];         /* first distinct From localparts, cut */
	size_t nlp;
};

static bool
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s != NULL ? s : "", -1, SQLITE_STATIC);
}

static void
note_lp(struct rep_rows *r, const char *lp)
{
	char cut[128];

	if (lp == NULL || r->nlp == 3)
		return;
	(void)snprintf(cut, sizeof(cut), "%s", lp);
	for (size_t i = 0; i < r->nlp; i++)
		if (strcmp(r->lp[i], cut) == 0)
			return;
	memcpy(r->lp[r->nlp++], cut, sizeof(cut));
}

/* Run sql for up to max classified messages received within window
 * (bindings ?4 a, ?5 b, ?6 v). -1 on a database error. */
static int
rows(struct rep_ctx *c, const char *sql, int64_t window, int max,
    const char *a, const char *b, int v, struct rep_rows *out)
{
	sqlite3_stmt *st = NULL;
	int r, rc = -1;

	memset(out, 0, sizeof(*out));
	if (c->mbid == 0)
		return 0;
	if (store_db_stmt(c->a, c->db, sql, &st, c->err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, c->mbid);
	sqlite3_bind_int64(st, 2, c->now - window);
	sqlite3_bind_int(st, 3, max);
	if (sqlite3_bind_parameter_count(st) >= 4)
		bind_text(st, 4, a);
	if (sqlite3_bind_parameter_count(st) >= 5)
		bind_text(st, 5, b);
	if (sqlite3_bind_parameter_count(st) >= 6)
		sqlite3_bind_int(st, 6, v);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		bool junk = (sqlite3_column_int64(st, 0) & STORE_F_JUNK) != 0;

		if (out->n < 2)
			out->junk[out->n] = junk;
		out->n++;
		out->njunk += junk;
		note_lp(out, (const char *)sqlite3_column_text(st, 1));
	}
	if (r != SQLITE_DONE) {
		store_err_db(c->err, c->db, "reputation query");
		goto out;
	}
	rc = 0;
out:
	store_db_stmt_put(c->a, c->db, st);
	return rc;
}

/* Whether a Sent recipient matches (?1 a, ?2 b) since now - window. */
static int
sent(struct rep_ctx *c, const char *sql, int64_t window, const char *a,
    const char *b, bool *found)
{
	sqlite3_stmt *st = NULL;
	int r, rc = -1;

	*found = false;
	if (!c->any_sent)
		return 0;
	if (store_db_stmt(c->a, c->db, sql, &st, c->err) == -1)
		return -1;
	bind_text(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		bind_text(st, 2, b);
	sqlite3_bind_int64(st, 3, c->now - window);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*found = true;
	else if (r != SQLITE_DONE) {
		store_err_db(c->err, c->db, "reputation recipient query");
		goto out;
	}
	rc = 0;
out:
	store_db_stmt_put(c->a, c->db, st);
	return rc;
}

/* spec/junk.md 7 step 1: junk when the newest is junk and, if there is
 * a second, that one too. */
static bool
newest_junk(const struct rep_rows *r)
{
	return r->junk[0] && (r->n == 1 || r->junk[1]);
}

static void
result(struct store_rep_result *out, enum store_rep_junk junk,
    bool conclusive, const char *method)
{
	out->junk = junk;
	out->conclusive = conclusive;
	out->method = method;
}

/* Step 3 for the domain (org false) or organizational domain. 1 when it
 * decided, 0 when nothing matched, -1 on error. */
static int
step_domain(struct rep_ctx *c, const struct store_rep_msg *m, bool org,
    struct store_rep_result *out)
{
	const char *dom = org ? m->msgfrom_orgdomain : m->msgfrom_domain;
	const char *from = org ? "msgfromorgdomain" : "msgfromdomain";
	const char *to = org ? "msgtoorgdomain" : "msgtodomain";
	struct rep_rows r;
	bool found;

	if (empty(dom))
		return 0;
	if (rows(c, org ? q_fromorg : q_fromdomain, STORE_REP_DOMAIN_NS,
		STORE_REP_DOMAIN_MAX, dom, NULL, m->msgfrom_validated, &r) == -1)
		return -1;
	if (r.n > 0) {
		size_t ham = r.n - r.njunk;

		if (ham * 100 > r.n * 80)
			result(out, STORE_REP_HAM, true, from);
		else if (ham == 0)
			/* Conclusive only from several senders. */
			result(out, STORE_REP_JUNK, r.nlp >= 3, from);
		else
			result(out, STORE_REP_UNKNOWN, false, from);
		return 1;
	}
	if (!m->msgfrom_validated) {
		/* An unvalidated message from a domain that validates. */
		if (rows(c, org ? q_fromorg : q_fromdomain, STORE_REP_DOMAIN_NS,
			STORE_REP_MSGFROM_MAX, dom, NULL, 1, &r) == -1)
			return -1;
		if (r.n > 0) {
			result(out, STORE_REP_JUNK, newest_junk(&r), from);
			return 1;
		}
	}
	if (sent(c, org ? q_sent_org : q_sent_domain, STORE_REP_DOMAIN_NS, dom,
		NULL, &found) == -1)
		return -1;
	if (!found && org &&
	    sent(c, q_sent_org_unset, STORE_REP_DOMAIN_NS, dom, NULL, &found) ==
		-1)
		return -1;
	if (found) {
		result(out, STORE_REP_HAM, true, to);
		return 1;
	}
	return 0;
}

/* Steps 1-3: the From address. */
static int
step_msgfrom(struct rep_ctx *c, const struct store_rep_msg *m,
    struct store_rep_result *out)
{
	struct rep_rows r;
	bool found;
	int d;

	if (empty(m->msgfrom_domain))
		return 0;
	if (rows(c, q_fromfull, STORE_REP_MSGFROM_NS, STORE_REP_MSGFROM_MAX,
		m->msgfrom_domain, m->msgfrom_localpart, m->msgfrom_validated,
		&r) == -1)
		return -1;
	if (r.n > 0) {
		result(out, newest_junk(&r) ? STORE_REP_JUNK : STORE_REP_HAM,
		    m->msgfrom_validated, "msgfromfull");
		return 1;
	}
	if (!m->msgfrom_validated) {
		/* Claiming an address that normally validates. */
		if (rows(c, q_fromfull, STORE_REP_MSGFROM_NS,
			STORE_REP_MSGFROM_MAX, m->msgfrom_domain,
			m->msgfrom_localpart, 1, &r) == -1)
			return -1;
		if (r.n > 0) {
			result(out, STORE_REP_JUNK, newest_junk(&r),
			    "msgfromfull");
			return 1;
		}
	}
	if (sent(c, q_sent_full, STORE_REP_MSGFROM_NS, m->msgfrom_domain,
		m->msgfrom_localpart, &found) == -1)
		return -1;
	if (found) {
		result(out, STORE_REP_HAM, true, "msgtofull");
		return 1;
	}
	d = step_domain(c, m, false, out);
	if (d != 0)
		return d;
	return step_domain(c, m, true, out);
}

/* Step 4: verified DKIM domains and the SPF-validated MAIL FROM or EHLO
 * identity, each a spam fraction. */
static int
step_dkimspf(struct rep_ctx *c, const struct store_rep_msg *m,
    struct store_rep_result *out)
{
	size_t nham = 0, nspam = 0, nsignals = 0, largest = 0;
	struct rep_rows r;

	for (size_t i = 0; i <= m->n_dkim_domains; i++) {
		memset(&r, 0, sizeof(r));
		if (i < m->n_dkim_domains) {
			if (empty(m->dkim_domains[i]))
				continue;
			if (rows(c, q_dkim, STORE_REP_DKIMSPF_NS,
				STORE_REP_DKIMSPF_MAX, m->dkim_domains[i], NULL,
				0, &r) == -1)
				return -1;
		} else {
			if (m->mailfrom_validated && !empty(m->mailfrom_domain)) {
				if (rows(c, q_mailfromfull, STORE_REP_DKIMSPF_NS,
					STORE_REP_DKIMSPF_MAX, m->mailfrom_domain,
					m->mailfrom_localpart, 0, &r) == -1)
					return -1;
				if (r.n == 0 &&
				    rows(c, q_mailfromdomain,
					STORE_REP_DKIMSPF_NS,
					STORE_REP_DKIMSPF_MAX,
					m->mailfrom_domain, NULL, 0, &r) == -1)
					return -1;
			}
			if (r.n == 0 && m->ehlo_validated &&
			    !empty(m->ehlo_domain) &&
			    rows(c, q_ehlo, STORE_REP_DKIMSPF_NS,
				STORE_REP_DKIMSPF_MAX, m->ehlo_domain, NULL, 0,
				&r) == -1)
				return -1;
		}
		if (r.n == 0)
			continue;
		nsignals++;
		if (r.n > largest)
			largest = r.n;
		/* spam fraction < 0.1 is a ham signal, > 0.9 a spam one */
		if (r.njunk * 10 < r.n)
			nham++;
		else if (r.njunk * 10 > r.n * 9)
			nspam++;
	}
	if (nsignals == 0)
		return 0;
	if (nham > 0 && nspam == 0)
		result(out, STORE_REP_HAM, true, "dkimspf");
	else if (nspam > 0 && nham == 0)
		result(out, STORE_REP_JUNK, largest > 1, "dkimspf");
	else
		result(out, STORE_REP_UNKNOWN, false, "dkimspf");
	return 1;
}

/* Step 5: the /32, /26, /21 (IPv6 /64, /48, /32) ranges; wider ranges
 * need more messages to be conclusive. */
static int
step_ip(struct rep_ctx *c, const struct store_rep_msg *m,
    struct store_rep_result *out)
{
	static const size_t need[3] = { 2, 5, 10 };
	static const char *const method[3] = { "ip1", "ip2", "ip3" };
	char mask[64];
	struct rep_rows r;

	for (int i = 0; i < 3; i++) {
		store_ip_masked(m->remote_ip, i, mask, sizeof(mask));
		if (mask[0] == '\0')
			return 0;
		if (rows(c, q_ip[i], STORE_REP_IP_NS, STORE_REP_IP_MAX, mask,
			NULL, 0, &r) == -1)
			return -1;
		if (r.n == 0)
			continue;
		/* fraction < 0.25 ham, > 0.75 junk; conclusive at <= 0.1
		 * or >= 0.9 with enough messages */
		if (r.njunk * 4 < r.n)
			out->junk = STORE_REP_HAM;
		else if (r.njunk * 4 > r.n * 3)
			out->junk = STORE_REP_JUNK;
		else
			out->junk = STORE_REP_UNKNOWN;
		out->conclusive = r.n >= need[i] &&
		    (r.njunk * 10 <= r.n || r.njunk * 10 >= r.n * 9);
		out->method = method[i];
		return 1;
	}
	return 0;
}

/* Whether sql (no parameters but ?1 = id) returns a row. */
static int
exists(struct rep_ctx *c, const char *sql, int64_t id, bool *out)
{
	sqlite3_stmt *st = NULL;
	int r;

	*out = false;
	if (store_db_stmt(c->a, c->db, sql, &st, c->err) == -1)
		return -1;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	*out = r == SQLITE_ROW;
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		store_err_db(c->err, c->db, "reputation query");
	store_db_stmt_put(c->a, c->db, st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : -1;
}

/* The id of mailbox canon into *id, 0 when there is none. */
static int
mailbox_id(struct rep_ctx *c, const char *canon, int64_t *id)
{
	sqlite3_stmt *st = NULL;
	int r;

	*id = 0;
	if (store_db_stmt(c->a, c->db, "SELECT id FROM mailbox WHERE name = ?1",
		&st, c->err) == -1)
		return -1;
	bind_text(st, 1, canon);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else if (r != SQLITE_DONE)
		store_err_db(c->err, c->db, "look up mailbox");
	store_db_stmt_put(c->a, c->db, st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : -1;
}

/* The id of the destination mailbox, 0 when it does not exist or has no
 * classified messages (most deliveries of a new account: then no
 * message query runs), and whether any Sent recipient is known. */
static int
prepare_ctx(struct rep_ctx *c, const char *name)
{
	struct buf canon;
	const char *why;
	bool any = false;
	int rc = -1;

	c->mbid = 0;
	buf_init(&canon, STORE_MAILBOX_NAME_MAX + 8);
	if (!empty(name) && store_mailbox_name_check(name, &canon, &why) == 0 &&
	    mailbox_id(c, canon.data, &c->mbid) == -1)
		goto out;
	if (c->mbid != 0 &&
	    exists(c, "SELECT 1 FROM message WHERE mailbox_orig_id = ?1 AND "
		      CLASSIFIED " LIMIT 1", c->mbid, &any) == -1)
		goto out;
	if (!any)
		c->mbid = 0;
	if (exists(c, "SELECT 1 FROM recipient LIMIT 1", 0, &c->any_sent) == -1)
		goto out;
	rc = 0;
out:
	buf_release(&canon);
	return rc;
}

int
store_reputation(struct store_account *a, const struct store_rep_msg *m,
    int64_t now_ns, struct store_rep_result *out, struct store_err *err)
{
	struct rep_ctx c = { 0 };
	int r = -1;

	result(out, STORE_REP_UNKNOWN, false, "none");
	c.now = now_ns;
	c.err = err;
	c.a = a;
	c.db = store_db_get(a, err);
	if (c.db == NULL)
		return -1;
	/* One snapshot for all the queries below, not one each. */
	if (store_db_read_begin(a, c.db, err) == -1 ||
	    prepare_ctx(&c, m->mailbox) == -1)
		goto out;
	r = step_msgfrom(&c, m, out);
	if (r == 0)
		r = step_dkimspf(&c, m, out);
	if (r == 0)
		r = step_ip(&c, m, out);
	if (r == 0)
		result(out, STORE_REP_UNKNOWN, false, "none");
out:
	store_db_read_end(a, c.db);
	store_db_put(a, c.db);
	return r == -1 ? -1 : 0;
}
