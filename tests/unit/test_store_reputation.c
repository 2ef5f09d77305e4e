/*
 * test_store_reputation.c: the reputation analysis of spec/junk.md 7
 * (maildir/store_reputation.c) over a temp account store: classified
 * messages are delivered (and moved, expunged) with the fields SMTP
 * stores, Sent messages with their addressees; each case asserts the
 * step that decides, its junk signal and whether it is conclusive. Also:
 * the partial indexes serve the queries.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "maildir/store.h"
#include "maildir/store_reputation.h"
#include "lib/banned.h"

#define DAY (86400 * NS_PER_SEC)
#define NJ STORE_F_NOTJUNK
#define J STORE_F_JUNK

/* One stored message (count copies). */
struct msg_spec {
	const char *mailbox;   /* NULL ends the list */
	uint32_t flags;
	int count;             /* 0: 1 */
	int age_days;
	const char *from_lp, *from_dom, *from_org;
	bool validated;
	const char *dkim;
	const char *mf_lp, *mf_dom;
	bool mf_valid;
	const char *ehlo;
	bool ehlo_valid;
	const char *ip;
	const char *to_lp, *to_dom, *to_org; /* Sent: the addressee */
	bool expunge;
	bool move_archive;     /* delivered to Inbox, then moved */
	bool forward;          /* stored as an IsForward delivery */
};

struct rep_case {
	const char *name;
	struct msg_spec msgs[6];
	struct store_rep_msg m;     /* mailbox NULL: Inbox */
	enum store_rep_junk want_junk;
	bool want_conclusive;
	const char *want_method;
};

#define ALICE .from_lp = "alice", .from_dom = "example.org", \
    .from_org = "example.org"
#define MALICE .msgfrom_localpart = "alice", .msgfrom_domain = "example.org", \
    .msgfrom_orgdomain = "example.org"

static const struct rep_case cases[] = {
	{ "no history", { { NULL } }, { MALICE }, STORE_REP_UNKNOWN, false,
	    "none" },
	{ "msgfromfull validated ham",
	    { { "Inbox", NJ, .validated = true, ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_HAM, true,
	    "msgfromfull" },
	{ "msgfromfull unvalidated: not conclusive",
	    { { "Inbox", NJ, ALICE } }, { MALICE }, STORE_REP_HAM, false,
	    "msgfromfull" },
	{ "msgfromfull: newest junk, second not: not junk",
	    { { "Inbox", NJ, .age_days = 2, .validated = true, ALICE },
		{ "Inbox", J, .age_days = 1, .validated = true, ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_HAM, true,
	    "msgfromfull" },
	{ "msgfromfull: newest two junk",
	    { { "Inbox", NJ, .age_days = 3, .validated = true, ALICE },
		{ "Inbox", J, .count = 2, .age_days = 1, .validated = true,
		    ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_JUNK, true,
	    "msgfromfull" },
	{ "msgfromfull: validated status must match",
	    { { "Inbox", NJ, .validated = false, ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_UNKNOWN, false,
	    "none" },
	{ "unvalidated claim of a validating address",
	    { { "Inbox", NJ, .validated = true, ALICE } }, { MALICE },
	    STORE_REP_JUNK, false, "msgfromfull" },
	{ "unvalidated claim, address sent junk",
	    { { "Inbox", J, .validated = true, ALICE } }, { MALICE },
	    STORE_REP_JUNK, true, "msgfromfull" },
	{ "msgfromfull: 3 years window",
	    { { "Inbox", NJ, .age_days = 1100, .validated = true, ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_UNKNOWN, false,
	    "none" },
	{ "msgfromfull: other mailbox's history does not count",
	    { { "Lists", NJ, .validated = true, ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_UNKNOWN, false,
	    "none" },
	{ "msgfromfull: destination mailbox history",
	    { { "Lists", NJ, .validated = true, ALICE } },
	    { MALICE, .mailbox = "Lists", .msgfrom_validated = true },
	    STORE_REP_HAM, true, "msgfromfull" },
	{ "moved message keeps its original mailbox",
	    { { "Inbox", NJ, .validated = true, .move_archive = true,
		ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_HAM, true,
	    "msgfromfull" },
	{ "expunged and unclassified messages are ignored",
	    { { "Inbox", NJ, .validated = true, .expunge = true, ALICE },
		{ "Inbox", 0, .validated = true, ALICE } },
	    { MALICE, .msgfrom_validated = true }, STORE_REP_UNKNOWN, false,
	    "none" },
	{ "msgtofull: we wrote to the address",
	    { { "Sent", NJ, .to_lp = "alice", .to_dom = "example.org" } },
	    { MALICE }, STORE_REP_HAM, true, "msgtofull" },
	{ "msgtofull: 3 years window",
	    { { "Sent", NJ, .age_days = 1100, .to_lp = "alice",
		.to_dom = "example.org" } },
	    { MALICE }, STORE_REP_UNKNOWN, false, "none" },
	{ "msgfromdomain: more than 80% not junk",
	    { { "Inbox", NJ, .count = 5, .from_lp = "bob",
		.from_dom = "example.org" } },
	    { MALICE }, STORE_REP_HAM, true, "msgfromdomain" },
	{ "msgfromdomain: 80% is mixed",
	    { { "Inbox", NJ, .count = 4, .age_days = 2, .from_lp = "bob",
		  .from_dom = "example.org" },
		{ "Inbox", J, .age_days = 1, .from_lp = "carol",
		    .from_dom = "example.org" } },
	    { MALICE }, STORE_REP_UNKNOWN, false, "msgfromdomain" },
	{ "msgfromdomain: all junk from 3 localparts",
	    { { "Inbox", J, .from_lp = "bob", .from_dom = "example.org" },
		{ "Inbox", J, .from_lp = "carol", .from_dom = "example.org" },
		{ "Inbox", J, .from_lp = "dave", .from_dom = "example.org" } },
	    { MALICE }, STORE_REP_JUNK, true, "msgfromdomain" },
	{ "msgfromdomain: all junk from 2 localparts",
	    { { "Inbox", J, .count = 3, .from_lp = "bob",
		.from_dom = "example.org" },
		{ "Inbox", J, .from_lp = "carol", .from_dom = "example.org" } },
	    { MALICE }, STORE_REP_JUNK, false, "msgfromdomain" },
	{ "msgfromdomain: 2 years window",
	    { { "Inbox", NJ, .age_days = 740, .from_lp = "bob",
		.from_dom = "example.org" } },
	    { MALICE }, STORE_REP_UNKNOWN, false, "none" },
	{ "msgfromdomain: unvalidated, domain validates",
	    { { "Inbox", NJ, .validated = true, .from_lp = "bob",
		.from_dom = "example.org" } },
	    { MALICE }, STORE_REP_JUNK, false, "msgfromdomain" },
	{ "msgtodomain",
	    { { "Sent", NJ, .to_lp = "bob", .to_dom = "example.org" } },
	    { MALICE }, STORE_REP_HAM, true, "msgtodomain" },
	{ "msgfromorgdomain",
	    { { "Inbox", NJ, .count = 2, .from_lp = "bob",
		.from_dom = "a.example.org", .from_org = "example.org" } },
	    { .msgfrom_localpart = "alice",
		.msgfrom_domain = "b.example.org",
		.msgfrom_orgdomain = "example.org" },
	    STORE_REP_HAM, true, "msgfromorgdomain" },
	{ "msgtoorgdomain (recorded organizational domain)",
	    { { "Sent", NJ, .to_lp = "bob", .to_dom = "a.example.org",
		.to_org = "example.org" } },
	    { .msgfrom_localpart = "alice",
		.msgfrom_domain = "b.example.org",
		.msgfrom_orgdomain = "example.org" },
	    STORE_REP_HAM, true, "msgtoorgdomain" },
	{ "msgtoorgdomain (recorded without one: subdomain)",
	    { { "Sent", NJ, .to_lp = "bob", .to_dom = "a.example.org" } },
	    { .msgfrom_localpart = "alice",
		.msgfrom_domain = "b.example.org",
		.msgfrom_orgdomain = "example.org" },
	    STORE_REP_HAM, true, "msgtoorgdomain" },
	{ "msgtoorgdomain: other domain with the same suffix",
	    { { "Sent", NJ, .to_lp = "bob", .to_dom = "notexample.org" } },
	    { .msgfrom_localpart = "alice",
		.msgfrom_domain = "b.example.org",
		.msgfrom_orgdomain = "example.org" },
	    STORE_REP_UNKNOWN, false, "none" },
	{ "dkimspf: dkim domain ham",
	    { { "Inbox", NJ, .count = 3, .dkim = "list.example",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .dkim_domains = (const char *const[]){ "list.example" },
		.n_dkim_domains = 1 },
	    STORE_REP_HAM, true, "dkimspf" },
	{ "dkimspf: dkim domain junk, 2 messages",
	    { { "Inbox", J, .count = 2, .dkim = "spam.example",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .dkim_domains = (const char *const[]){ "spam.example" },
		.n_dkim_domains = 1 },
	    STORE_REP_JUNK, true, "dkimspf" },
	{ "dkimspf: dkim domain junk, 1 message",
	    { { "Inbox", J, .dkim = "spam.example", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .dkim_domains = (const char *const[]){ "spam.example" },
		.n_dkim_domains = 1 },
	    STORE_REP_JUNK, false, "dkimspf" },
	{ "dkimspf: 182.5 days window",
	    { { "Inbox", NJ, .age_days = 190, .dkim = "list.example",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .dkim_domains = (const char *const[]){ "list.example" },
		.n_dkim_domains = 1 },
	    STORE_REP_UNKNOWN, false, "none" },
	{ "dkimspf: ham and spam signals",
	    { { "Inbox", NJ, .dkim = "list.example", .from_lp = "x",
		  .from_dom = "other.example" },
		{ "Inbox", J, .mf_lp = "bounce", .mf_dom = "spam.example",
		    .from_lp = "y", .from_dom = "third.example" } },
	    { MALICE, .dkim_domains = (const char *const[]){ "list.example" },
		.n_dkim_domains = 1, .mailfrom_localpart = "bounce",
		.mailfrom_domain = "spam.example", .mailfrom_validated = true },
	    STORE_REP_UNKNOWN, false, "dkimspf" },
	{ "dkimspf: spf mailfrom domain",
	    { { "Inbox", NJ, .mf_lp = "other", .mf_dom = "bulk.example",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .mailfrom_localpart = "bounce",
		.mailfrom_domain = "bulk.example", .mailfrom_validated = true },
	    STORE_REP_HAM, true, "dkimspf" },
	{ "dkimspf: unvalidated mailfrom is no signal",
	    { { "Inbox", NJ, .mf_lp = "other", .mf_dom = "bulk.example",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .mailfrom_localpart = "bounce",
		.mailfrom_domain = "bulk.example" },
	    STORE_REP_UNKNOWN, false, "none" },
	{ "dkimspf: ehlo",
	    { { "Inbox", J, .count = 2, .ehlo = "mta.example",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .ehlo_domain = "mta.example", .ehlo_validated = true },
	    STORE_REP_JUNK, true, "dkimspf" },
	{ "ip1: 2 ham messages",
	    { { "Inbox", NJ, .count = 2, .ip = "192.0.2.10", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_HAM, true, "ip1" },
	{ "ip1: 1 message is not conclusive",
	    { { "Inbox", J, .ip = "192.0.2.10", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_JUNK, false,
	    "ip1" },
	{ "ip2: 5 junk messages in the /26",
	    { { "Inbox", J, .count = 5, .ip = "192.0.2.20", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_JUNK, true,
	    "ip2" },
	{ "ip2: 4 messages is not conclusive",
	    { { "Inbox", J, .count = 4, .ip = "192.0.2.20", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_JUNK, false,
	    "ip2" },
	{ "ip3: 10 messages in the /21",
	    { { "Inbox", NJ, .count = 10, .ip = "192.0.3.200", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_HAM, true,
	    "ip3" },
	{ "ip: half junk is unknown",
	    { { "Inbox", NJ, .count = 2, .ip = "192.0.2.10", .from_lp = "x",
		  .from_dom = "other.example" },
		{ "Inbox", J, .count = 2, .ip = "192.0.2.10", .from_lp = "y",
		    .from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_UNKNOWN, false,
	    "ip1" },
	{ "ip: IPv6 /64",
	    { { "Inbox", NJ, .count = 2, .ip = "2001:db8::1", .from_lp = "x",
		.from_dom = "other.example" } },
	    { MALICE, .remote_ip = "2001:db8::ffff" }, STORE_REP_HAM, true,
	    "ip1" },
	{ "ip: 91.25 days window",
	    { { "Inbox", NJ, .count = 2, .age_days = 95, .ip = "192.0.2.10",
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_UNKNOWN, false,
	    "none" },
	{ "forwarded messages give the forwarder no ip reputation",
	    { { "Inbox", J, .count = 5, .ip = "192.0.2.10", .forward = true,
		.from_lp = "x", .from_dom = "other.example" } },
	    { MALICE, .remote_ip = "192.0.2.10" }, STORE_REP_UNKNOWN, false,
	    "none" },
};

struct fx {
	char dir[64];
	struct store *s;
};

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_err err;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_store_rep.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->s = store_new(fx->dir, &err);
	assert_non_null(fx->s);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	store_free(fx->s);
	(void)nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static void
deliver(struct store_account *a, const struct msg_spec *ms, int64_t now,
    int nr, const char *tag)
{
	const char *dkim[1] = { ms->dkim };
	const char *to_lp[1] = { ms->to_lp }, *to_dom[1] = { ms->to_dom };
	const char *to_org[1] = { ms->to_org };
	const char *mb = ms->move_archive ? "Inbox" : ms->mailbox;
	struct store_msg_fields f = { 0 };
	struct store_add in = { 0 };
	struct store_added out;
	struct store_err err;
	struct buf msg;

	buf_init(&msg, 4096);
	buf_addf(&msg, "From: x@x.example\r\nSubject: %s %d\r\n"
		       "Message-Id: <%s.%d@test>\r\n\r\nbody\r\n",
	    tag, nr, tag, nr);
	f.msgfrom_localpart = ms->from_lp;
	f.msgfrom_domain = ms->from_dom;
	f.msgfrom_orgdomain = ms->from_org;
	f.msgfrom_validated = ms->validated;
	f.dkim_domains = dkim;
	f.n_dkim_domains = ms->dkim != NULL ? 1 : 0;
	f.mailfrom_localpart = ms->mf_lp;
	f.mailfrom_domain = ms->mf_dom;
	f.mailfrom_validated = ms->mf_valid;
	f.ehlo_domain = ms->ehlo;
	f.ehlo_validated = ms->ehlo_valid;
	f.remote_ip = ms->ip;
	f.is_forward = ms->forward;
	if (ms->to_lp != NULL) {
		f.rcpt_localparts = to_lp;
		f.rcpt_domains = to_dom;
		f.rcpt_orgdomains = ms->to_org != NULL ? to_org : NULL;
		f.n_rcpts = 1;
	}
	in.data = msg.data;
	in.len = msg.len;
	in.flags = ms->flags;
	in.received_ns = now - ms->age_days * DAY - nr;
	in.create_mailbox = true;
	in.fields = &f;
	if (store_deliver(a, &in, &mb, 1, &out, &err) == -1)
		fail_msg("%s: deliver: %s", tag, err.text);
	if (ms->move_archive) {
		struct store_mailbox dst;
		struct store_uidmap um = { 0 };

		assert_int_equal(store_mailbox_get(a, "Archive", &dst, &err), 0);
		if (store_move(a, out.mailbox_id, &out.uid, 1, dst.id, &um,
			&err) == -1)
			fail_msg("%s: move: %s", tag, err.text);
		store_uidmap_release(&um);
		store_mailbox_release(&dst);
	}
	if (ms->expunge) {
		struct store_flags_result fr = { 0 };
		struct store_uids rm = { 0 };

		assert_int_equal(store_flags(a, out.mailbox_id, &out.uid, 1,
				     STORE_FLAGS_ADD, STORE_F_DELETED, "", -1,
				     &fr, &err),
		    0);
		assert_int_equal(store_expunge(a, out.mailbox_id, &out.uid, 1,
				     &rm, &err),
		    0);
		store_flags_result_release(&fr);
		store_uids_release(&rm);
	}
	buf_release(&msg);
}

static void
test_reputation_steps(void **state)
{
	struct fx *fx = *state;
	int64_t now = time_wall_ns();

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct rep_case *c = &cases[i];
		struct store_rep_msg m = c->m;
		struct store_rep_result r;
		struct store_account *a = NULL;
		struct store_err err;
		char name[32];
		int nr = 0;

		snprintf(name, sizeof(name), "case%zu", i);
		if (store_account_get(fx->s, name, true, &a, &err) == -1)
			fail_msg("case %zu (%s): account: %s", i, c->name,
			    err.text);
		for (size_t k = 0; k < ARRAY_LEN(c->msgs) &&
		     c->msgs[k].mailbox != NULL;
		     k++)
			for (int n = 0; n < (c->msgs[k].count > 0 ? c->msgs[k].count
								  : 1);
			     n++)
				deliver(a, &c->msgs[k], now, ++nr, name);
		if (m.mailbox == NULL)
			m.mailbox = "Inbox";
		if (store_reputation(a, &m, now, &r, &err) == -1)
			fail_msg("case %zu (%s): %s", i, c->name, err.text);
		if (r.junk != c->want_junk ||
		    r.conclusive != c->want_conclusive ||
		    strcmp(r.method, c->want_method) != 0)
			fail_msg("case %zu (%s): got junk %d conclusive %d "
				 "method %s, want %d %d %s",
			    i, c->name, r.junk, r.conclusive, r.method,
			    c->want_junk, c->want_conclusive, c->want_method);
		store_account_put(a);
	}
}

/* A mailbox name the store refuses and one that does not exist are no
 * history, not errors. */
static void
test_reputation_mailbox(void **state)
{
	struct fx *fx = *state;
	struct store_rep_msg m = { MALICE };
	struct store_rep_result r;
	struct store_account *a = NULL;
	struct store_err err;
	const char *const names[] = { "Nope", "a//b", "" };

	assert_int_equal(store_account_get(fx->s, "mb", true, &a, &err), 0);
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		m.mailbox = names[i];
		assert_int_equal(store_reputation(a, &m, time_wall_ns(), &r, &err),
		    0);
		assert_string_equal(r.method, "none");
		assert_int_equal(r.junk, STORE_REP_UNKNOWN);
	}
	store_account_put(a);
}

/* The partial indexes are what the reputation queries use (the query
 * text here has the shape of store_reputation.c's). */
static void
test_reputation_indexes(void **state)
{
	static const struct {
		const char *sql;
		const char *index;
	} q[] = {
		{ "SELECT flags, msgfrom_localpart FROM message WHERE"
		  " mailbox_orig_id = ?1 AND expunged = 0 AND (flags & 48) != 0"
		  " AND received >= ?2 AND msgfrom_domain = ?4 AND"
		  " msgfrom_localpart = ?5 AND msgfrom_validated = ?6"
		  " ORDER BY received DESC LIMIT ?3",
		    "message_rep_from" },
		{ "SELECT flags, msgfrom_localpart FROM message WHERE"
		  " mailbox_orig_id = ?1 AND expunged = 0 AND (flags & 48) != 0"
		  " AND received >= ?2 AND remote_ip_masked2 = ?4"
		  " ORDER BY received DESC LIMIT ?3",
		    "message_rep_ip2" },
		{ "SELECT flags, msgfrom_localpart FROM message WHERE"
		  " mailbox_orig_id = ?1 AND expunged = 0 AND (flags & 48) != 0"
		  " AND received >= ?2 AND ehlo_domain = ?4"
		  " ORDER BY received DESC LIMIT ?3",
		    "message_rep_ehlo" },
	};
	struct fx *fx = *state;
	struct store_account *a = NULL;
	struct store_err err;
	struct buf path;
	sqlite3 *db = NULL;

	assert_int_equal(store_account_get(fx->s, "idx", true, &a, &err), 0);
	store_account_put(a);
	buf_init(&path, 4096);
	buf_addf(&path, "%s/accounts/idx/index.db", fx->dir);
	assert_int_equal(sqlite3_open_v2(path.data, &db, SQLITE_OPEN_READONLY,
			     NULL),
	    SQLITE_OK);
	for (size_t i = 0; i < ARRAY_LEN(q); i++) {
		sqlite3_stmt *st = NULL;
		struct buf plan;

		buf_init(&plan, 4096);
		buf_adds(&plan, "EXPLAIN QUERY PLAN ");
		buf_adds(&plan, q[i].sql);
		assert_int_equal(sqlite3_prepare_v2(db, plan.data, -1, &st, NULL),
		    SQLITE_OK);
		buf_reset(&plan);
		while (sqlite3_step(st) == SQLITE_ROW)
			buf_addf(&plan, "%s\n", sqlite3_column_text(st, 3));
		sqlite3_finalize(st);
		if (strstr(plan.data, q[i].index) == NULL)
			fail_msg("query %zu: plan does not use %s: %s", i,
			    q[i].index, plan.data);
		buf_release(&plan);
	}
	sqlite3_close(db);
	buf_release(&path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reputation_steps, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reputation_mailbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reputation_indexes, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
