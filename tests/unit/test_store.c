/*
 * test_store.c: unit tests of the account store (maildir/store.h): names,
 * mailboxes, deliver/append/copy/move/flags/expunge, tombstones, modseq,
 * change broadcast, passwords, new/ indexing, concurrency, verify, backup,
 * and damaged data (missing files, truncated database). Every test that
 * touches an account ends with the consistency checker.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nettle/hmac.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/log.h"
#include "maildir/store.h"
#include "lib/banned.h"

struct fx {
	char dir[64];
	struct store *s;
	struct store_account *a;
};

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
rm_rf(const char *dir)
{
	(void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_err err;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->s = store_new(fx->dir, &err);
	assert_non_null(fx->s);
	if (store_account_get(fx->s, "mjl", true, &fx->a, &err) == -1)
		fail_msg("account: %s", err.text);
	*state = fx;
	return 0;
}

static void
check_clean(struct store_account *a)
{
	struct buf rep;

	buf_init(&rep, BUF_NOMAX);
	if (store_check(a, false, &rep) == -1)
		fail_msg("consistency check: %s", rep.data);
	buf_release(&rep);
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->a != NULL) {
		check_clean(fx->a);
		store_account_put(fx->a);
	}
	store_free(fx->s);
	rm_rf(fx->dir);
	free(fx);
	return 0;
}

static int64_t
mbid(struct store_account *a, const char *name)
{
	struct store_mailbox mb;
	struct store_err err;
	int64_t id;

	if (store_mailbox_get(a, name, &mb, &err) == -1)
		fail_msg("mailbox %s: %s", name, err.text);
	id = mb.id;
	store_mailbox_release(&mb);
	return id;
}

static struct store_added
deliver(struct store_account *a, const char *mb, uint32_t flags,
    const char *kw)
{
	static const char msg[] = "Subject: hi\r\n\r\nbody\r\n";
	struct store_add in = { .data = msg, .len = sizeof(msg) - 1,
		.flags = flags, .keywords = kw };
	struct store_added out;
	struct store_err err;
	const char *mbs[] = { mb };

	if (store_deliver(a, &in, mbs, 1, &out, &err) == -1)
		fail_msg("deliver to %s: %s", mb, err.text);
	return out;
}

/* ---- names ---- */

static const struct {
	const char *in;
	int rc;
	const char *want;
} name_cases[] = {
	{ "Inbox", 0, "Inbox" },
	{ "INBOX", 0, "Inbox" },
	{ "inbox/sub", 0, "Inbox/sub" },
	{ "a/inbox", 0, "a/inbox" },
	{ "Lists/mox", 0, "Lists/mox" },
	{ "caf\xc3\xa9", 0, "caf\xc3\xa9" },
	{ "a%b*c&d#e", 0, "a%b*c&d#e" },
	{ "", -1, NULL },
	{ "/a", -1, NULL },
	{ "a/", -1, NULL },
	{ "a//b", -1, NULL },
	{ "..", -1, NULL },
	{ "a/../b", -1, NULL },
	{ "./a", -1, NULL },
	{ "#news", -1, NULL },
	{ "a\x01" "b", -1, NULL },
	{ "a\nb", -1, NULL },
	{ "a\x7f", -1, NULL },
	{ "a\xc2\x85" "b", -1, NULL },   /* U+0085 */
	{ "a\xe2\x80\xa8" "b", -1, NULL }, /* U+2028 */
	{ "\xff\xfe", -1, NULL },
	{ "\xc0\xaf", -1, NULL },       /* overlong "/" */
};

static void
test_names(void **state)
{
	struct buf out;
	char huge[STORE_MAILBOX_NAME_MAX + 2];

	buf_init(&out, BUF_NOMAX);
	for (size_t i = 0; i < ARRAY_LEN(name_cases); i++) {
		const char *why = NULL;
		int rc = store_mailbox_name_check(name_cases[i].in, &out, &why);

		if (rc != name_cases[i].rc ||
		    (rc == 0 && strcmp(out.data, name_cases[i].want) != 0))
			fail_msg("case %zu: rc %d out %s why %s", i, rc,
			    out.data, why ? why : "");
	}
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	{
		const char *why;

		assert_int_equal(store_mailbox_name_check(huge, &out, &why),
		    -1);
		huge[STORE_MAILBOX_NAME_MAX] = '\0';
		assert_int_equal(store_mailbox_name_check(huge, &out, &why), 0);
	}
	buf_release(&out);
	assert_false(store_account_name_valid(""));
	assert_false(store_account_name_valid(".."));
	assert_false(store_account_name_valid("a/b"));
	assert_false(store_account_name_valid(".hidden"));
	assert_false(store_account_name_valid("a\nb"));
	assert_true(store_account_name_valid("mjl"));
	(void)state;
}

/* ---- mailboxes ---- */

static void
test_default_mailboxes(void **state)
{
	struct fx *fx = *state;
	struct store_mailbox *mbs;
	size_t n;
	struct store_err err;
	char **subs;
	size_t nsubs;
	static const struct {
		const char *name;
		unsigned special;
	} want[] = {
		{ "Archive", STORE_SU_ARCHIVE }, { "Drafts", STORE_SU_DRAFTS },
		{ "Inbox", 0 }, { "Junk", STORE_SU_JUNK },
		{ "Sent", STORE_SU_SENT }, { "Trash", STORE_SU_TRASH },
	};

	assert_int_equal(store_mailbox_list(fx->a, &mbs, &n, &err), 0);
	assert_int_equal(n, ARRAY_LEN(want));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(mbs[i].name, want[i].name) != 0 ||
		    mbs[i].special != want[i].special || !mbs[i].subscribed ||
		    mbs[i].uidnext != 1 ||
		    mbs[i].uidvalidity != mbs[0].uidvalidity)
			fail_msg("mailbox %zu: %s special %u", i, mbs[i].name,
			    mbs[i].special);
	}
	store_mailbox_list_free(mbs, n);
	assert_int_equal(store_subscriptions(fx->a, &subs, &nsubs, &err), 0);
	assert_int_equal(nsubs, 6);
	for (size_t i = 0; i < nsubs; i++)
		free(subs[i]);
	free(subs);
	/* Special-use can be changed. */
	assert_int_equal(store_mailbox_set_special(fx->a, "Archive", 0, &err),
	    0);
}

static void
test_mailbox_ops(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_mailbox mb;
	int64_t id;
	uint32_t uv1;

	assert_int_equal(store_mailbox_create(fx->a, "a/b/c", 0, &id, &err), 0);
	assert_int_equal(mbid(fx->a, "a"), mbid(fx->a, "a"));
	assert_int_equal(store_mailbox_create(fx->a, "a/b", 0, NULL, &err), -1);
	assert_int_equal(err.code, STORE_EEXISTS);
	assert_int_equal(store_mailbox_create(fx->a, "x/../y", 0, NULL, &err),
	    -1);
	assert_int_equal(err.code, STORE_EINVAL);
	deliver(fx->a, "a/b", STORE_F_SEEN, NULL);

	/* Delete with children is refused (RFC 9051 6.3.5). */
	assert_int_equal(store_mailbox_delete(fx->a, "a", &err), -1);
	assert_int_equal(err.code, STORE_EHASCHILDREN);
	assert_int_equal(store_mailbox_delete(fx->a, "Inbox", &err), -1);
	assert_int_equal(store_mailbox_delete(fx->a, "nope", &err), -1);
	assert_int_equal(err.code, STORE_ENOMAILBOX);

	/* Rename renames children and gives them one new UIDVALIDITY. */
	assert_int_equal(store_mailbox_get(fx->a, "a/b", &mb, &err), 0);
	uv1 = mb.uidvalidity;
	id = mb.id;
	store_mailbox_release(&mb);
	assert_int_equal(store_mailbox_rename(fx->a, "a", "z/q", &err), 0);
	assert_int_equal(store_mailbox_get(fx->a, "z/q/b", &mb, &err), 0);
	assert_int_equal(mb.id, id);
	assert_true(mb.uidvalidity > uv1);
	assert_int_equal(mb.counts.total, 1);
	store_mailbox_release(&mb);
	assert_int_equal(store_mailbox_get(fx->a, "z/q/b/c", &mb, &err), 0);
	store_mailbox_release(&mb);
	assert_int_equal(store_mailbox_get(fx->a, "z", &mb, &err), 0);
	store_mailbox_release(&mb);
	assert_int_equal(store_mailbox_get(fx->a, "a/b", &mb, &err), -1);
	assert_int_equal(err.code, STORE_ENOMAILBOX);
	/* Rename into its own subtree recreates the vacated names. */
	assert_int_equal(store_mailbox_rename(fx->a, "z/q/b/c", "z/q/b/c/d/e",
			     &err),
	    0);
	assert_int_equal(store_mailbox_get(fx->a, "z/q/b/c/d", &mb, &err), 0);
	store_mailbox_release(&mb);
	/* Collisions and Inbox as destination. */
	assert_int_equal(store_mailbox_rename(fx->a, "z", "Sent", &err), -1);
	assert_int_equal(err.code, STORE_EEXISTS);
	assert_int_equal(store_mailbox_rename(fx->a, "z", "INBOX", &err), -1);
	assert_int_equal(store_mailbox_rename(fx->a, "missing", "m2", &err),
	    -1);
	assert_int_equal(err.code, STORE_ENOMAILBOX);

	/* Delete a leaf with a message. */
	assert_int_equal(store_mailbox_delete(fx->a, "z/q/b/c/d/e", &err), 0);
	assert_int_equal(store_mailbox_delete(fx->a, "z/q/b/c/d", &err), 0);
	assert_int_equal(store_mailbox_delete(fx->a, "z/q/b/c", &err), 0);
	assert_int_equal(store_mailbox_delete(fx->a, "z/q/b", &err), 0);
	{
		int64_t du = -1;

		assert_int_equal(store_disk_usage(fx->a, &du, &err), 0);
		assert_int_equal(du, 0);
	}
}

static void
test_rename_inbox(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_mailbox mb;
	struct store_msg_list l;

	deliver(fx->a, "Inbox", 0, "work");
	deliver(fx->a, "Inbox", STORE_F_SEEN, NULL);
	assert_int_equal(store_mailbox_create(fx->a, "Inbox/child", 0, NULL,
			     &err),
	    0);
	assert_int_equal(store_mailbox_rename(fx->a, "INBOX", "Old", &err), 0);
	assert_int_equal(store_mailbox_get(fx->a, "Old", &mb, &err), 0);
	assert_int_equal(mb.counts.total, 2);
	assert_int_equal(mb.counts.unseen, 1);
	assert_string_equal(mb.keywords, "work");
	store_mailbox_release(&mb);
	assert_int_equal(store_mailbox_get(fx->a, "Inbox", &mb, &err), 0);
	assert_int_equal(mb.counts.total, 0);
	assert_int_equal(mb.uidnext, 3);
	assert_int_equal(store_list(fx->a, mb.id, &l, &err), 0);
	assert_int_equal(l.n, 0);
	store_msg_list_release(&l);
	/* Tombstones remain for QRESYNC. */
	assert_int_equal(store_changes_since(fx->a, mb.id, 0, &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.v[0].expunged && l.v[1].expunged);
	store_msg_list_release(&l);
	store_mailbox_release(&mb);
	assert_int_equal(store_mailbox_get(fx->a, "Inbox/child", &mb, &err), 0);
	store_mailbox_release(&mb);
}

static void
test_subscriptions(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	char **v;
	size_t n;

	assert_int_equal(store_subscribe(fx->a, "NotThere", &err), 0);
	assert_int_equal(store_subscribe(fx->a, "NotThere", &err), 0);
	assert_int_equal(store_unsubscribe(fx->a, "NotThere", &err), 0);
	assert_int_equal(store_unsubscribe(fx->a, "NotThere", &err), -1);
	assert_int_equal(err.code, STORE_ENOMAILBOX);
	assert_int_equal(store_unsubscribe(fx->a, "Sent", &err), 0);
	assert_int_equal(store_unsubscribe(fx->a, "Sent", &err), 0);
	assert_int_equal(store_subscribe(fx->a, "a\x01", &err), -1);
	assert_int_equal(store_subscriptions(fx->a, &v, &n, &err), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_string_not_equal(v[i], "Sent");
		free(v[i]);
	}
	free(v);
}

/* ---- messages ---- */

static void
test_deliver_flags_expunge(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_added a1, a2, a3;
	struct store_msg_list l;
	struct store_flags_result fr;
	struct store_uids rm;
	struct store_mailbox mb;
	int64_t inbox = mbid(fx->a, "Inbox"), hms;
	uint32_t u12[] = { 1, 2, 99 }, u3[] = { 3 };

	a1 = deliver(fx->a, "Inbox", 0, NULL);
	a2 = deliver(fx->a, "inbox", STORE_F_SEEN, "Work $label1");
	a3 = deliver(fx->a, "Inbox", STORE_F_DELETED, NULL);
	assert_int_equal(a1.uid, 1);
	assert_int_equal(a2.uid, 2);
	assert_int_equal(a3.uid, 3);
	assert_true(a1.modseq >= 2);
	assert_true(a1.modseq < a2.modseq && a2.modseq < a3.modseq);

	assert_int_equal(store_mailbox_get(fx->a, "Inbox", &mb, &err), 0);
	assert_int_equal(mb.counts.total, 2);
	assert_int_equal(mb.counts.deleted, 1);
	assert_int_equal(mb.counts.unread, 1);
	assert_int_equal(mb.counts.unseen, 2);
	assert_string_equal(mb.keywords, "$label1 work");
	assert_int_equal(mb.highestmodseq, a3.modseq);
	store_mailbox_release(&mb);

	/* Bad keyword, well-known keyword as keyword. */
	{
		struct store_add in = { .data = "x\r\n\r\n", .len = 5,
			.keywords = "a(b" };
		const char *mbs[] = { "Inbox" };
		struct store_added o;

		assert_int_equal(store_deliver(fx->a, &in, mbs, 1, &o, &err),
		    -1);
		assert_int_equal(err.code, STORE_EINVAL);
		in.keywords = "$Junk";
		assert_int_equal(store_deliver(fx->a, &in, mbs, 1, &o, &err),
		    -1);
		in.keywords = NULL;
		mbs[0] = "NoSuch";
		assert_int_equal(store_deliver(fx->a, &in, mbs, 1, &o, &err),
		    -1);
		assert_int_equal(err.code, STORE_ENOMAILBOX);
		in.create_mailbox = true;
		mbs[0] = "Lists/new";
		assert_int_equal(store_deliver(fx->a, &in, mbs, 1, &o, &err),
		    0);
		in.create_mailbox = false;
		in.quota = 10;
		mbs[0] = "Inbox";
		assert_int_equal(store_deliver(fx->a, &in, mbs, 1, &o, &err),
		    -1);
		assert_int_equal(err.code, STORE_EOVERQUOTA);
	}

	/* Flags: no-op keeps modseq; UNCHANGEDSINCE. */
	assert_int_equal(store_flags(fx->a, inbox, u12, 3, STORE_FLAGS_ADD,
			     STORE_F_SEEN, NULL, -1, &fr, &err),
	    0);
	assert_int_equal(fr.n_changed, 1);
	assert_int_equal(fr.changed[0], 1);
	hms = fr.modseq;
	assert_true(hms > a3.modseq);
	store_flags_result_release(&fr);
	assert_int_equal(store_flags(fx->a, inbox, u12, 2, STORE_FLAGS_ADD,
			     STORE_F_FLAGGED, "x", a2.modseq, &fr, &err),
	    0);
	assert_int_equal(fr.n_changed, 1);
	assert_int_equal(fr.changed[0], 2);
	assert_int_equal(fr.n_modified, 1);
	assert_int_equal(fr.modified[0], 1);
	store_flags_result_release(&fr);
	assert_int_equal(store_flags(fx->a, inbox, u12, 2, STORE_FLAGS_REMOVE,
			     0, "WORK", -1, &fr, &err),
	    0);
	assert_int_equal(fr.n_changed, 1);
	store_flags_result_release(&fr);
	assert_int_equal(store_flags(fx->a, inbox, u12, 1, STORE_FLAGS_SET,
			     STORE_F_SEEN | STORE_F_ANSWERED, "", -1, &fr, &err),
	    0);
	store_flags_result_release(&fr);
	assert_int_equal(store_flags(fx->a, inbox, u12, 1, STORE_FLAGS_SET, 0,
			     "bad\"kw", -1, &fr, &err),
	    -1);

	/* Expunge by uid set (only \Deleted), then all. */
	assert_int_equal(store_expunge(fx->a, inbox, u12, 2, &rm, &err), 0);
	assert_int_equal(rm.n, 0);
	store_uids_release(&rm);
	assert_int_equal(store_flags(fx->a, inbox, u12, 1, STORE_FLAGS_ADD,
			     STORE_F_DELETED, NULL, -1, &fr, &err),
	    0);
	store_flags_result_release(&fr);
	assert_int_equal(store_expunge(fx->a, inbox, u3, 1, &rm, &err), 0);
	assert_int_equal(rm.n, 1);
	assert_int_equal(rm.v[0], 3);
	store_uids_release(&rm);
	assert_int_equal(store_expunge(fx->a, inbox, NULL, 0, &rm, &err), 0);
	assert_int_equal(rm.n, 1);
	assert_int_equal(rm.v[0], 1);
	hms = rm.modseq;
	store_uids_release(&rm);

	/* Listing filters tombstones; changes-since includes them. */
	assert_int_equal(store_list(fx->a, inbox, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].uid, 2);
	assert_string_equal(l.v[0].keywords, "$label1 x");
	assert_int_equal(l.v[0].flags, STORE_F_SEEN | STORE_F_FLAGGED);
	store_msg_list_release(&l);
	assert_int_equal(store_changes_since(fx->a, inbox, a3.modseq, &l,
			     &err),
	    0);
	assert_int_equal(l.n, 3);
	assert_true(l.v[0].expunged && l.v[0].modseq == hms);
	assert_false(l.v[1].expunged);
	assert_true(l.v[2].expunged);
	store_msg_list_release(&l);
	{
		struct store_msg m;
		int fd;

		assert_int_equal(store_msg_get(fx->a, inbox, 1, &m, NULL, &err),
		    -1);
		assert_int_equal(err.code, STORE_ENOMSG);
		assert_int_equal(store_msg_open(fx->a, inbox, 2, &fd, &err), 0);
		close(fd);
	}
	/* A new delivery never reuses an expunged UID. */
	a1 = deliver(fx->a, "Inbox", 0, NULL);
	assert_int_equal(a1.uid, 4);
}

static void
test_deliver_multi_fields(void **state)
{
	struct fx *fx = *state;
	const char *dk[] = { "example.org", "mail.example.org" };
	const char *lp[] = { "bob", "" }, *dom[] = { "example.org", "x" };
	struct store_msg_fields f = {
		.remote_ip = "192.0.2.77", .ehlo_domain = "mx.example.org",
		.mailfrom = "a@example.org", .message_id = "id@x",
		.dkim_domains = dk, .n_dkim_domains = 2,
		.parsed = "PARSED", .parsed_len = 6,
		.rcpt_localparts = lp, .rcpt_domains = dom, .n_rcpts = 2,
	};
	struct store_add in = { .data = "a: b\r\n\r\nx\r\n", .len = 11,
		.fields = &f };
	const char *mbs[] = { "Inbox", "Sent", "Junk" };
	struct store_added out[3];
	struct store_err err;
	struct store_msg m;
	struct buf parsed;

	assert_int_equal(store_deliver(fx->a, &in, mbs, 3, out, &err), 0);
	assert_true(out[0].id != out[1].id && out[1].id != out[2].id);
	buf_init(&parsed, BUF_NOMAX);
	assert_int_equal(store_msg_get(fx->a, out[1].mailbox_id, out[1].uid, &m,
			     &parsed, &err),
	    0);
	assert_string_equal(parsed.data, "PARSED");
	assert_int_equal(m.size, 11);
	free(m.keywords);
	/* Junk special-use forces $Junk (spec/store.md 9). */
	assert_int_equal(store_msg_get(fx->a, out[2].mailbox_id, out[2].uid, &m,
			     NULL, &err),
	    0);
	assert_int_equal(m.flags, STORE_F_JUNK);
	free(m.keywords);
	buf_release(&parsed);
	assert_int_equal(store_msg_set_trained(fx->a, out[0].id, 1, &err), 0);
	assert_int_equal(store_msg_set_trained(fx->a, 999999, 1, &err), -1);
	/* Path input that does not exist, and a directory. */
	in.data = NULL;
	in.len = 0;
	in.path = "/nonexistent/file";
	assert_int_equal(store_deliver(fx->a, &in, mbs, 1, out, &err), -1);
	in.path = "/tmp";
	assert_int_equal(store_deliver(fx->a, &in, mbs, 1, out, &err), -1);
	in.path = NULL;
	assert_int_equal(store_deliver(fx->a, &in, mbs, 1, out, &err), -1);
}

/* Delivery rate counts (spec/smtp.md 13): per IP class, within the
 * window, live messages only; forwarded ones store no masks. */
static uint32_t
deliver_from(struct store_account *a, const char *ip, int64_t received,
    uint32_t flags, bool fwd)
{
	static const char msg[] = "Subject: rate\r\n\r\nbody\r\n";
	struct store_msg_fields f = { .remote_ip = ip, .is_forward = fwd };
	struct store_add in = { .data = msg, .len = sizeof(msg) - 1,
		.flags = flags, .received_ns = received, .fields = &f };
	struct store_added out;
	struct store_err err;
	const char *mbs[] = { "Inbox" };

	if (store_deliver(a, &in, mbs, 1, &out, &err) == -1)
		fail_msg("deliver from %s: %s", ip, err.text);
	return out.uid;
}

static void
test_delivery_counts(void **state)
{
	struct fx *fx = *state;
	const int64_t len = sizeof("Subject: rate\r\n\r\nbody\r\n") - 1;
	const int64_t now = 1700000000LL * 1000000000, min = 60000000000LL;
	struct store_delivery_counts c;
	struct store_uids rm;
	struct store_err err;
	uint32_t gone;

	deliver_from(fx->a, "10.0.0.1", now - 10, 0, false);  /* ip1 */
	deliver_from(fx->a, "10.0.0.2", now - 10, 0, false);  /* /26 */
	deliver_from(fx->a, "10.0.1.1", now - 10, 0, false);  /* /21 */
	deliver_from(fx->a, "10.0.0.1", now - 120 * min, 0, false); /* old */
	deliver_from(fx->a, "10.0.8.1", now - 10, 0, false);  /* outside */
	deliver_from(fx->a, "10.0.0.1", now - 10, 0, true);   /* forward */
	deliver_from(fx->a, "2001:db8::1", now - 10, 0, false);
	gone = deliver_from(fx->a, "10.0.0.1", now - 10, STORE_F_DELETED,
	    false);
	assert_int_equal(store_expunge(fx->a, mbid(fx->a, "Inbox"), &gone, 1,
			     &rm, &err),
	    0);
	assert_int_equal(rm.n, 1);
	store_uids_release(&rm);

	assert_int_equal(store_delivery_counts(fx->a, "10.0.0.1", now - min,
			     &c, &err),
	    0);
	assert_int_equal(c.msgs[0], 1);
	assert_int_equal(c.msgs[1], 2);
	assert_int_equal(c.msgs[2], 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c.bytes[i], c.msgs[i] * len);
	assert_int_equal(store_delivery_counts(fx->a, "10.0.0.1",
			     now - 1440 * min, &c, &err),
	    0);
	assert_int_equal(c.msgs[0], 2);
	assert_int_equal(c.msgs[1], 3);
	assert_int_equal(c.msgs[2], 4);
	assert_int_equal(c.bytes[2], 4 * len);
	/* IPv6 /64 class; other address families never mix. */
	assert_int_equal(store_delivery_counts(fx->a, "2001:db8::2",
			     now - min, &c, &err),
	    0);
	assert_int_equal(c.msgs[0], 1);
	assert_int_equal(c.msgs[2], 1);
	/* No address (or a forward's cleared masks) counts nothing. */
	assert_int_equal(store_delivery_counts(fx->a, "", now - min, &c, &err),
	    0);
	assert_int_equal(c.msgs[0] + c.msgs[1] + c.msgs[2], 0);
	assert_int_equal(c.bytes[2], 0);
}

static void
test_copy_move(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_uidmap map;
	struct store_msg_list l;
	int64_t inbox = mbid(fx->a, "Inbox"), arch = mbid(fx->a, "Archive");
	int64_t junk = mbid(fx->a, "Junk");
	uint32_t uids[] = { 3, 1, 2, 1, 77 };

	deliver(fx->a, "Inbox", 0, "k1");
	deliver(fx->a, "Inbox", STORE_F_SEEN, NULL);
	deliver(fx->a, "Inbox", STORE_F_NOTJUNK, "k2");
	assert_int_equal(store_copy(fx->a, inbox, uids, 5, arch, 0, &map, &err),
	    0);
	assert_int_equal(map.n, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(map.src[i], i + 1);
		assert_int_equal(map.dst[i], i + 1);
	}
	store_uidmap_release(&map);
	assert_int_equal(store_copy(fx->a, inbox, uids, 1, arch, 1, &map, &err),
	    -1);
	assert_int_equal(err.code, STORE_EOVERQUOTA);
	assert_int_equal(store_move(fx->a, inbox, uids, 1, junk, &map, &err),
	    0);
	assert_int_equal(map.n, 1);
	assert_int_equal(map.src[0], 3);
	assert_int_equal(map.dst[0], 1);
	store_uidmap_release(&map);
	assert_int_equal(store_list(fx->a, junk, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].flags, STORE_F_JUNK);
	assert_string_equal(l.v[0].keywords, "k2");
	store_msg_list_release(&l);
	assert_int_equal(store_list(fx->a, inbox, &l, &err), 0);
	assert_int_equal(l.n, 2);
	store_msg_list_release(&l);
	assert_int_equal(store_changes_since(fx->a, inbox, 0, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_true(l.v[2].expunged);
	store_msg_list_release(&l);
	assert_int_equal(store_move(fx->a, inbox, uids, 1, inbox, &map, &err),
	    -1);
	assert_int_equal(store_move(fx->a, inbox, uids + 4, 1, arch, &map,
			     &err),
	    -1);
	assert_int_equal(err.code, STORE_ENOMSG);
	{
		struct store_mailbox mb;

		assert_int_equal(store_mailbox_get(fx->a, "Archive", &mb, &err),
		    0);
		assert_string_equal(mb.keywords, "k1 k2");
		assert_int_equal(mb.counts.total, 3);
		store_mailbox_release(&mb);
	}
}

/* ---- changes ---- */

struct rec {
	char log[4096];
	size_t len;
};

static void
record(const struct store_change *c, size_t n, void *arg)
{
	struct rec *r = arg;

	for (size_t i = 0; i < n; i++) {
		int k = snprintf(r->log + r->len, sizeof(r->log) - r->len,
		    "%d:%u:%zu;", (int)c[i].type, c[i].uid, c[i].n_uids);

		if (k > 0 && (size_t)k < sizeof(r->log) - r->len)
			r->len += (size_t)k;
	}
}

static void
test_changes(void **state)
{
	struct fx *fx = *state;
	struct rec r1, r2;
	struct store_sub *s1, *s2;
	struct store_err err;
	struct store_uids rm;
	struct store_flags_result fr;
	int64_t inbox = mbid(fx->a, "Inbox");
	uint32_t u1 = 1;
	char want[256];

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	s1 = store_sub_new(fx->a, record, &r1);
	s2 = store_sub_new(fx->a, record, &r2);
	deliver(fx->a, "Inbox", STORE_F_DELETED, NULL);
	store_sub_origin(s2); /* s2 makes the next changes itself */
	assert_int_equal(store_flags(fx->a, inbox, &u1, 1, STORE_FLAGS_ADD,
			     STORE_F_SEEN, NULL, -1, &fr, &err),
	    0);
	store_flags_result_release(&fr);
	store_sub_origin(NULL);
	assert_int_equal(store_expunge(fx->a, inbox, NULL, 0, &rm, &err), 0);
	store_uids_release(&rm);
	assert_int_equal(store_mailbox_create(fx->a, "New", 0, NULL, &err), 0);
	assert_int_equal(store_mailbox_rename(fx->a, "New", "New2", &err), 0);
	assert_int_equal(store_mailbox_delete(fx->a, "New2", &err), 0);
	assert_int_equal(store_mailbox_set_special(fx->a, "Trash", 0, &err), 0);
	assert_int_equal(store_subscribe(fx->a, "Ghost", &err), 0);
	snprintf(want, sizeof(want),
	    "%d:1:0;%d:0:0;%d:1:0;%d:0:0;%d:0:1;%d:0:0;"
	    "%d:0:0;%d:0:0;%d:0:0;%d:0:0;%d:0:0;%d:0:0;",
	    STORE_CHANGE_ADD_UID, STORE_CHANGE_MAILBOX_COUNTS,
	    STORE_CHANGE_FLAGS, STORE_CHANGE_MAILBOX_COUNTS,
	    STORE_CHANGE_REMOVE_UIDS, STORE_CHANGE_MAILBOX_COUNTS,
	    STORE_CHANGE_SUBSCRIPTION_ADD, STORE_CHANGE_MAILBOX_ADD,
	    STORE_CHANGE_MAILBOX_RENAME, STORE_CHANGE_MAILBOX_REMOVE,
	    STORE_CHANGE_MAILBOX_SPECIAL_USE, STORE_CHANGE_SUBSCRIPTION_ADD);
	assert_string_equal(r1.log, want);
	/* s2 did not get its own flag change. */
	assert_null(strstr(r2.log, "2:1:0;"));
	assert_non_null(strstr(r1.log, "2:1:0;"));
	store_sub_free(s1);
	store_sub_free(s2);
}

/* ---- passwords ---- */

static void
test_passwords(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_crammd5 cm;
	struct store_scram sc;
	uint8_t d1[16], d2[16];
	struct hmac_md5_ctx h;
	const char *pw = "correct horse battery";

	assert_int_equal(store_password_check(fx->a, pw, &err), -1);
	assert_int_equal(err.code, STORE_ENOPASSWORD);
	assert_int_equal(store_password_crammd5(fx->a, &cm, &err), -1);
	assert_int_equal(store_password_set(fx->a, "short", &err), -1);
	assert_int_equal(store_password_set(fx->a, "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
			     &err),
	    -1);
	assert_int_equal(store_password_set(fx->a, pw, &err), 0);
	assert_int_equal(store_password_check(fx->a, pw, &err), 0);
	assert_int_equal(store_password_check(fx->a, "wrong password", &err),
	    -1);
	assert_int_equal(err.code, STORE_EBADPASSWORD);
	/* CRAM-MD5 states reproduce HMAC-MD5 (RFC 2195 example challenge). */
	assert_int_equal(store_password_crammd5(fx->a, &cm, &err), 0);
	store_crammd5_digest(&cm, "<1896.697170952@postoffice.example.net>",
	    39, d1);
	hmac_md5_set_key(&h, strlen(pw), (const uint8_t *)pw);
	hmac_md5_update(&h, 39,
	    (const uint8_t *)"<1896.697170952@postoffice.example.net>");
	hmac_md5_digest(&h, 16, d2);
	assert_memory_equal(d1, d2, 16);
	assert_int_equal(store_password_scram(fx->a, STORE_SCRAM_SHA1, &sc,
			     &err),
	    0);
	assert_int_equal(sc.iterations, STORE_SCRAM_SHA1_ITER);
	assert_int_equal(sc.key_len, 20);
	assert_int_equal(store_password_scram(fx->a, STORE_SCRAM_SHA256, &sc,
			     &err),
	    0);
	assert_int_equal(sc.iterations, STORE_SCRAM_SHA256_ITER);
	assert_int_equal(sc.key_len, 32);
	/* The clear password is nowhere in the database file. */
	{
		struct buf db, e;
		char path[256];

		snprintf(path, sizeof(path), "%s/accounts/mjl/index.db",
		    fx->dir);
		buf_init(&db, BUF_NOMAX);
		buf_init(&e, 256);
		(void)io_read_file(path, &db, &e);
		assert_null(memmem(db.data, db.len, pw, strlen(pw)));
		buf_release(&db);
		buf_release(&e);
	}
}

/* Successful PLAIN/LOGIN checks are remembered; a wrong password, a
 * changed password and another account are not answered from memory. */
static void
test_password_cache(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_account *b;
	const char *pw = "correct horse battery", *pw2 = "staple horse battery";

	assert_int_equal(store_password_set(fx->a, pw, &err), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_password_check(fx->a, pw, &err), 0);
		assert_int_equal(store_password_check(fx->a,
				     "correct horse batterY", &err),
		    -1);
		assert_int_equal(err.code, STORE_EBADPASSWORD);
	}
	/* Another account with the same password: its own bcrypt. */
	if (store_account_get(fx->s, "other", true, &b, &err) == -1)
		fail_msg("account: %s", err.text);
	assert_int_equal(store_password_check(b, pw, &err), -1);
	assert_int_equal(err.code, STORE_ENOPASSWORD);
	assert_int_equal(store_password_set(b, pw2, &err), 0);
	assert_int_equal(store_password_check(b, pw, &err), -1);
	assert_int_equal(store_password_check(b, pw2, &err), 0);
	check_clean(b);
	store_account_put(b);
	/* A new password drops the remembered check of the old one. */
	assert_int_equal(store_password_set(fx->a, pw2, &err), 0);
	assert_int_equal(store_password_check(fx->a, pw, &err), -1);
	assert_int_equal(err.code, STORE_EBADPASSWORD);
	assert_int_equal(store_password_check(fx->a, pw2, &err), 0);
	assert_int_equal(store_password_check(fx->a, pw2, &err), 0);
}

/* store_msg_header(): the header section through its empty line, read
 * in pieces when long, the whole file without one; the same answer from
 * the cache; a missing file is STORE_ENOMSG. */
static void
test_msg_header(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_added o;
	struct store_add in = { 0 };
	const char *mbs[] = { "Inbox" };
	struct buf msg, want, got;
	int64_t inbox = mbid(fx->a, "Inbox");
	static const size_t fill[] = { 0, 4000, 4094, 4095, 4096, 9000,
		70000 };

	buf_init(&msg, BUF_NOMAX);
	buf_init(&want, BUF_NOMAX);
	buf_init(&got, BUF_NOMAX);
	for (size_t i = 0; i < 2 * ARRAY_LEN(fill) + 2; i++) {
		size_t k = i % (ARRAY_LEN(fill) + 1);
		bool lf = i > ARRAY_LEN(fill); /* bare LF line ends */

		buf_reset(&msg);
		buf_adds(&msg, lf ? "Subject: x\n" : "Subject: x\r\n");
		if (k < ARRAY_LEN(fill)) {
			buf_adds(&msg, "X-Fill: ");
			for (size_t j = 0; j < fill[k]; j++)
				buf_addc(&msg, 'a' + (char)(j % 26));
			buf_adds(&msg, lf ? "\n\n" : "\r\n\r\n");
			buf_reset(&want);
			buf_add(&want, msg.data, msg.len);
			buf_adds(&msg, lf ? "body\n\nmore\n" :
					    "body\r\n\r\nmore\r\n");
		} else {
			/* No empty line: all of it is header. */
			buf_adds(&msg, "X-No-Body: 1");
			buf_reset(&want);
			buf_add(&want, msg.data, msg.len);
		}
		in.data = msg.data;
		in.len = msg.len;
		if (store_deliver(fx->a, &in, mbs, 1, &o, &err) == -1)
			fail_msg("deliver: %s", err.text);
		for (int pass = 0; pass < 2; pass++) {
			buf_reset(&got);
			if (store_msg_header(fx->a, inbox, o.id, &got,
				&err) == -1)
				fail_msg("case %zu pass %d: %s", i, pass,
				    err.text);
			if (got.len != want.len ||
			    memcmp(got.data, want.data, got.len) != 0)
				fail_msg("case %zu pass %d: got %zu octets, "
					 "want %zu",
				    i, pass, got.len, want.len);
		}
	}
	buf_reset(&got);
	assert_int_equal(store_msg_header(fx->a, inbox, o.id + 1000, &got,
			     &err),
	    -1);
	assert_int_equal(err.code, STORE_ENOMSG);
	buf_release(&msg);
	buf_release(&want);
	buf_release(&got);
}

/* ---- new/ ---- */

static void
drop_new(const char *dir, int64_t mb, const char *name, const char *text)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/%lld/new/%s", dir,
	    (long long)mb, name);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
test_scan_new(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_msg_list l;
	int64_t inbox = mbid(fx->a, "Inbox");
	struct store_watch *w;

	drop_new(fx->dir, inbox, "1700000000.1.host", "A: b\n\nline\n");
	drop_new(fx->dir, inbox, "1700000000.2.host:2,SF", "A: b\r\n\r\nx\r\n");
	assert_int_equal(store_list(fx->a, inbox, &l, &err), 0);
	assert_int_equal(l.n, 2);
	/* bare LF converted: 11 bytes become 14 */
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].flags == (STORE_F_SEEN | STORE_F_FLAGGED))
			assert_int_equal(l.v[i].size, 11);
		else
			assert_int_equal(l.v[i].size, 14);
	store_msg_list_release(&l);
	w = store_watch_new(fx->a, &err);
	assert_non_null(w);
	drop_new(fx->dir, inbox, "1700000000.3.host", "A: c\r\n\r\n");
	for (int i = 0; i < 100; i++) {
		struct store_mailbox mb;

		assert_int_equal(store_mailbox_get_id(fx->a, inbox, &mb, &err),
		    0);
		store_mailbox_release(&mb);
		if (mb.counts.total == 3)
			break;
		usleep(20000);
	}
	store_watch_free(w);
	{
		struct store_mailbox mb;

		assert_int_equal(store_mailbox_get_id(fx->a, inbox, &mb, &err),
		    0);
		assert_int_equal(mb.counts.total, 3);
		store_mailbox_release(&mb);
	}
}

/* ---- concurrency ---- */

struct worker {
	struct store_account *a;
	int64_t inbox;
	int kind; /* 0 deliver, 1 flags, 2 expunge */
	int n;
	uint32_t *uids;
	int nuids;
	int errors;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct store_err err;

	for (int i = 0; i < w->n; i++) {
		if (w->kind == 0) {
			struct store_add in = { .data = "S: x\r\n\r\nbody\r\n",
				.len = 14 };
			const char *mbs[] = { "Inbox" };
			struct store_added o;

			if (store_deliver(w->a, &in, mbs, 1, &o, &err) == -1)
				w->errors++;
			else
				w->uids[w->nuids++] = o.uid;
		} else if (w->kind == 1) {
			uint32_t u[4] = { (uint32_t)(i % 40) + 1,
				(uint32_t)(i % 13) + 1, 5, 7 };
			struct store_flags_result fr;

			if (store_flags(w->a, w->inbox, u, 4,
				i % 2 ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE,
				STORE_F_DELETED | STORE_F_SEEN, "kw", -1, &fr,
				&err) == -1)
				w->errors++;
			store_flags_result_release(&fr);
		} else {
			struct store_uids rm;

			if (store_expunge(w->a, w->inbox, NULL, 0, &rm, &err) ==
			    -1)
				w->errors++;
			store_uids_release(&rm);
		}
	}
	return NULL;
}

static int
cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static void
test_concurrency(void **state)
{
	struct fx *fx = *state;
	enum { NDELIV = 6, PER = 25 };
	struct worker w[NDELIV + 3];
	pthread_t th[NDELIV + 3];
	uint32_t all[NDELIV * PER];
	size_t n = 0;

	memset(w, 0, sizeof(w));
	for (int i = 0; i < NDELIV + 3; i++) {
		w[i].a = fx->a;
		w[i].inbox = mbid(fx->a, "Inbox");
		w[i].kind = i < NDELIV ? 0 : i == NDELIV + 2 ? 2 : 1;
		w[i].n = i < NDELIV ? PER : 30;
		w[i].uids = calloc(PER, sizeof(uint32_t));
		assert_int_equal(pthread_create(&th[i], NULL, worker_main,
				     &w[i]),
		    0);
	}
	for (int i = 0; i < NDELIV + 3; i++) {
		pthread_join(th[i], NULL);
		if (w[i].errors != 0)
			fail_msg("worker %d: %d errors", i, w[i].errors);
		/* One thread's uids increase. */
		for (int k = 1; k < w[i].nuids; k++)
			assert_true(w[i].uids[k] > w[i].uids[k - 1]);
		for (int k = 0; k < w[i].nuids; k++)
			all[n++] = w[i].uids[k];
		free(w[i].uids);
	}
	assert_int_equal(n, NDELIV * PER);
	qsort(all, n, sizeof(all[0]), cmp_u32);
	for (size_t i = 1; i < n; i++)
		assert_true(all[i] != all[i - 1]);
}

/* ---- damaged data, verify, backup ---- */

static void
test_missing_file_and_orphan(void **state)
{
	struct fx *fx = *state;
	struct store_added x = deliver(fx->a, "Inbox", 0, NULL);
	struct store_added y = deliver(fx->a, "Inbox", 0, NULL);
	struct buf p, rep;
	char orphan[512];
	int fd;

	buf_init(&p, BUF_NOMAX);
	buf_init(&rep, BUF_NOMAX);
	store_msg_path(fx->a, x.mailbox_id, x.id, &p);
	assert_int_equal(unlink(p.data), 0);
	assert_int_equal(store_check(fx->a, false, &rep), -1);
	assert_non_null(strstr(rep.data, "file missing"));
	{
		struct store_err err;
		int mfd;

		assert_int_equal(store_msg_open(fx->a, x.mailbox_id, x.uid,
				     &mfd, &err),
		    -1);
		assert_int_equal(err.code, STORE_ENOMSG);
	}
	/* Remove the broken row, then make an orphan with a fresh id. */
	{
		struct store_flags_result fr;
		struct store_uids rm;
		struct store_err err;

		assert_int_equal(store_flags(fx->a, x.mailbox_id, &x.uid, 1,
				     STORE_FLAGS_ADD, STORE_F_DELETED, NULL, -1,
				     &fr, &err),
		    0);
		store_flags_result_release(&fr);
		assert_int_equal(store_expunge(fx->a, x.mailbox_id, &x.uid, 1,
				     &rm, &err),
		    0);
		store_uids_release(&rm);
	}
	snprintf(orphan, sizeof(orphan),
	    "%s/accounts/mjl/maildir/%lld/cur/%lld:2,", fx->dir,
	    (long long)y.mailbox_id, (long long)(y.id + 1000));
	fd = open(orphan, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "O: k\r\n\r\n", 8), 8);
	close(fd);
	snprintf(orphan, sizeof(orphan), "%s/accounts/mjl/maildir/%lld/cur/junk",
	    fx->dir, (long long)y.mailbox_id);
	fd = open(orphan, O_WRONLY | O_CREAT | O_EXCL, 0640);
	close(fd);
	buf_reset(&rep);
	assert_int_equal(store_check(fx->a, false, &rep), -1);
	assert_non_null(strstr(rep.data, "orphan"));
	buf_reset(&rep);
	assert_int_equal(store_check(fx->a, true, &rep), 0);
	buf_reset(&rep);
	if (store_check(fx->a, false, &rep) == -1)
		fail_msg("after fix: %s", rep.data);
	/* The re-indexed id is not handed out again. */
	{
		struct store_added z = deliver(fx->a, "Inbox", 0, NULL);

		assert_true(z.id > y.id + 1000);
	}
	buf_release(&p);
	buf_release(&rep);
}

static void
test_truncated_db(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	struct store_account *b;
	struct store *s2;
	struct buf rep;
	char path[512];

	/* A second account whose index is cut to 100 bytes, opened through
	 * a second handle (the first keeps the account cached). */
	assert_int_equal(store_account_get(fx->s, "other", true, &b, &err), 0);
	store_account_put(b);
	s2 = store_new(fx->dir, &err);
	assert_non_null(s2);
	snprintf(path, sizeof(path), "%s/accounts/other/index.db", fx->dir);
	assert_int_equal(truncate(path, 100), 0);
	snprintf(path, sizeof(path), "%s/accounts/other/index.db-wal", fx->dir);
	(void)unlink(path);
	assert_int_equal(store_account_get(s2, "other", false, &b, &err), -1);
	/* Cut to 0 bytes: an error, not a new empty account, also with
	 * create; nothing is written to the file. */
	snprintf(path, sizeof(path), "%s/accounts/other/index.db", fx->dir);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(store_account_get(s2, "other", false, &b, &err), -1);
	if (strstr(err.text, "empty") == NULL)
		fail_msg("0-byte index.db: %s", err.text);
	assert_int_equal(store_account_get(s2, "other", true, &b, &err), -1);
	assert_non_null(strstr(err.text, "empty"));
	{
		struct stat sb;

		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_size, 0);
	}
	store_free(s2);
	assert_int_equal(store_account_get(fx->s, "../etc", true, &b, &err),
	    -1);
	assert_int_equal(store_account_get(fx->s, "absent", false, &b, &err),
	    -1);
	buf_init(&rep, BUF_NOMAX);
	assert_int_equal(store_verify_datadir(fx->dir, false, &rep), -1);
	assert_non_null(strstr(rep.data, "other"));
	buf_reset(&rep);
	/* verifydata -fix does not rebuild it either. */
	assert_int_equal(store_verify_datadir(fx->dir, true, &rep), -1);
	assert_non_null(strstr(rep.data, "empty"));
	{
		struct stat sb;

		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_size, 0);
	}
	buf_release(&rep);
	snprintf(path, sizeof(path), "%s/accounts/other", fx->dir);
	rm_rf(path);
}

struct bk {
	struct store_account *a;
	volatile int *stop;
	int n;
};

static void *
bk_deliver(void *arg)
{
	struct bk *b = arg;

	for (int i = 0; i < 2000 && !*b->stop; i++) {
		struct store_add in = { .data = "S: y\r\n\r\nz\r\n", .len = 11 };
		const char *mbs[] = { i % 2 ? "Inbox" : "Archive" };
		struct store_added o;
		struct store_err err;

		if (store_deliver(b->a, &in, mbs, 1, &o, &err) == 0)
			b->n++;
	}
	return NULL;
}

static void
test_backup(void **state)
{
	struct fx *fx = *state;
	pthread_t th[4];
	struct bk b[4];
	volatile int stop = 0;
	char dst[128];
	struct store_err err;
	struct buf rep;

	for (int i = 0; i < 4; i++) {
		b[i].a = fx->a;
		b[i].stop = &stop;
		b[i].n = 0;
		assert_int_equal(pthread_create(&th[i], NULL, bk_deliver, &b[i]),
		    0);
	}
	usleep(100000);
	snprintf(dst, sizeof(dst), "%s/backup", fx->dir);
	if (store_backup_account(fx->a, dst, &err) == -1)
		fail_msg("backup: %s", err.text);
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* Never overwrite. */
	assert_int_equal(store_backup_account(fx->a, dst, &err), -1);
	buf_init(&rep, BUF_NOMAX);
	if (store_verify_datadir(dst, false, &rep) == -1)
		fail_msg("backup verify: %s", rep.data);
	buf_release(&rep);
}

/* ---- review findings ---- */

/* DELETE of a non-ASCII parent sees its children (bytes, not characters). */
static void
test_delete_nonascii_parent(void **state)
{
	struct fx *fx = *state;
	struct store_err err;

	assert_int_equal(store_mailbox_create(fx->a, "\xc3\x84rger/b", 0, NULL,
			     &err),
	    0);
	assert_int_equal(store_mailbox_delete(fx->a, "\xc3\x84rger", &err), -1);
	assert_int_equal(err.code, STORE_EHASCHILDREN);
	assert_int_equal(store_mailbox_delete(fx->a, "\xc3\x84rger/b", &err),
	    0);
	assert_int_equal(store_mailbox_delete(fx->a, "\xc3\x84rger", &err), 0);
}

/* Every broadcast of Inbox counts matches the additions broadcast so far,
 * also when a delivery of a group commit fails after counting. */
struct gc {
	int64_t inbox;
	int64_t adds;
	int bad;
	int groups;
};

static void
gc_fn(const struct store_change *c, size_t n, void *arg)
{
	struct gc *g = arg;
	int64_t total = -1;

	for (size_t i = 0; i < n; i++) {
		if (c[i].mailbox_id != g->inbox)
			continue;
		if (c[i].type == STORE_CHANGE_ADD_UID)
			g->adds++;
		if (c[i].type == STORE_CHANGE_MAILBOX_COUNTS)
			total = c[i].counts.total;
	}
	if (total != -1 && total != g->adds)
		g->bad++;
	g->groups++;
}

static void *
gc_main(void *arg)
{
	struct store_account *a = arg;

	for (int i = 0; i < 30; i++) {
		struct store_add in = { .data = "S: g\r\n\r\nx\r\n", .len = 11 };
		const char *good[] = { "Inbox" }, *bad[] = { "Inbox", "Nope" };
		struct store_added o[2];
		struct store_err err;

		(void)store_deliver(a, &in, i % 2 ? bad : good, i % 2 ? 2 : 1, o,
		    &err);
	}
	return NULL;
}

static void
test_group_commit_counts(void **state)
{
	struct fx *fx = *state;
	struct gc g = { .inbox = mbid(fx->a, "Inbox") };
	struct store_sub *sub = store_sub_new(fx->a, gc_fn, &g);
	pthread_t th[8];
	struct store_mailbox mb;
	struct store_err err;

	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, gc_main, fx->a),
		    0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	store_sub_free(sub);
	if (g.bad != 0)
		fail_msg("%d of %d broadcasts with wrong counts", g.bad,
		    g.groups);
	assert_int_equal(store_mailbox_get_id(fx->a, g.inbox, &mb, &err), 0);
	assert_int_equal(mb.counts.total, 8 * 15);
	assert_int_equal(g.adds, 8 * 15);
	store_mailbox_release(&mb);
}

/* Deliveries are linked ahead under ids an earlier commit reserved
 * (doc/DESIGN.md "Group commit"): ids stay unique, and a message another
 * writer adds with a higher id (an import takes the sequence's next) ends
 * the reservation, so later deliveries get higher ids again. */
static void
test_reserved_ids(void **state)
{
	struct fx *fx = *state;
	struct store_added first, second, imp, later;
	struct store_add in = { .data = "S: i\r\n\r\nx\r\n", .len = 11 };
	struct store_err err;

	first = deliver(fx->a, "Inbox", 0, NULL); /* commits a reservation */
	second = deliver(fx->a, "Inbox", 0, NULL); /* linked ahead */
	assert_true(second.id != first.id);
	assert_int_equal(store_import(fx->a, "Inbox", &in, 1, &imp, &err), 0);
	assert_true(imp.id > second.id);
	later = deliver(fx->a, "Inbox", 0, NULL);
	if (later.id <= imp.id)
		fail_msg("id %lld after imported %lld", (long long)later.id,
		    (long long)imp.id);
	assert_true(later.uid > imp.uid);
}

/* RFC 7162 3.1.3: UNCHANGEDSINCE is tested before the no-op shortcut. */
static void
test_unchangedsince_noop(void **state)
{
	struct fx *fx = *state;
	struct store_added x = deliver(fx->a, "Inbox", STORE_F_SEEN, NULL);
	struct store_flags_result fr;
	struct store_err err;

	assert_int_equal(store_flags(fx->a, x.mailbox_id, &x.uid, 1,
			     STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, &fr, &err),
	    0);
	assert_int_equal(fr.n_modified, 1);
	assert_int_equal(fr.n_changed, 0);
	store_flags_result_release(&fr);
	/* Unchanged since its own modseq: passes, and stays a no-op. */
	assert_int_equal(store_flags(fx->a, x.mailbox_id, &x.uid, 1,
			     STORE_FLAGS_ADD, STORE_F_SEEN, NULL, x.modseq, &fr,
			     &err),
	    0);
	assert_int_equal(fr.n_modified, 0);
	assert_int_equal(fr.n_changed, 0);
	store_flags_result_release(&fr);
}

/* bcrypt checks 72 octets: longer passwords are refused. */
static void
test_password_max(void **state)
{
	struct fx *fx = *state;
	struct store_err err;
	char pw[80];

	memset(pw, 'p', sizeof(pw));
	pw[73] = '\0';
	assert_int_equal(store_password_set(fx->a, pw, &err), -1);
	assert_int_equal(err.code, STORE_EINVAL);
	assert_non_null(strstr(err.text, "72"));
	pw[72] = '\0';
	assert_int_equal(store_password_set(fx->a, pw, &err), 0);
	assert_int_equal(store_password_check(fx->a, pw, &err), 0);
	pw[72] = 'x';
	pw[73] = '\0';
	assert_int_equal(store_password_check(fx->a, pw, &err), -1);
	assert_int_equal(err.code, STORE_EBADPASSWORD);
}

/* A file in new/ that cannot be indexed does not block the mailbox: it is
 * moved away; a FIFO does not block the scan. */
static void
test_scan_new_bad_file(void **state)
{
	struct fx *fx = *state;
	int64_t inbox = mbid(fx->a, "Inbox");
	struct store_msg_list l;
	struct store_err err;
	char p[512];
	struct stat sb;
	int fd;

	drop_new(fx->dir, inbox, "1700000000.1.good", "A: b\r\n\r\nx\r\n");
	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/%lld/new/big", fx->dir,
	    (long long)inbox);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, ((off_t)1 << 31) + 1), 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/%lld/new/fifo", fx->dir,
	    (long long)inbox);
	assert_int_equal(mkfifo(p, 0640), 0);
	if (store_list(fx->a, inbox, &l, &err) == -1)
		fail_msg("list: %s", err.text);
	assert_int_equal(l.n, 1);
	store_msg_list_release(&l);
	snprintf(p, sizeof(p), "%s/moved/accounts/mjl/new/%lld/big", fx->dir,
	    (long long)inbox);
	assert_int_equal(stat(p, &sb), 0);
	snprintf(p, sizeof(p), "%s/moved/accounts/mjl/new/%lld/fifo", fx->dir,
	    (long long)inbox);
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISFIFO(sb.st_mode));
}

/* Accounts stay open after the last put; concurrent first opens of one
 * name wait for one opener. */
struct ag {
	struct store *s;
	struct store_account *got;
	int rc;
};

static void *
ag_main(void *arg)
{
	struct ag *g = arg;
	struct store_err err;

	g->rc = store_account_get(g->s, "conc", true, &g->got, &err);
	return NULL;
}

static void
test_account_cache(void **state)
{
	struct fx *fx = *state;
	struct store_account *b, *c;
	struct store_err err;
	struct store_added y;
	struct ag g[8];
	pthread_t th[8];
	char p[512];
	int fd;

	for (int i = 0; i < 8; i++) {
		g[i].s = fx->s;
		g[i].got = NULL;
		assert_int_equal(pthread_create(&th[i], NULL, ag_main, &g[i]),
		    0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(g[i].rc, 0);
		assert_ptr_equal(g[i].got, g[0].got);
	}
	for (int i = 0; i < 8; i++)
		store_account_put(g[i].got);
	/* The index was built under a temporary name, now gone. */
	{
		char t[512];
		DIR *d;
		struct dirent *de;

		snprintf(t, sizeof(t), "%s/tmp", fx->dir);
		d = opendir(t);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "index-", 6) == 0)
				fail_msg("left in tmp/: %s", de->d_name);
		closedir(d);
	}
	/* Cached: the id repair scan does not run again for this handle, so
	 * the get that follows a put is cheap. */
	assert_int_equal(store_account_get(fx->s, "conc", false, &b, &err), 0);
	snprintf(p, sizeof(p), "%s/accounts/conc/maildir/1/cur/5000:2,",
	    fx->dir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	store_account_put(b);
	assert_int_equal(store_account_get(fx->s, "conc", false, &c, &err), 0);
	assert_ptr_equal(b, c);
	y = deliver(c, "Inbox", 0, NULL);
	assert_true(y.id < 5000);
	assert_int_equal(unlink(p), 0);
	check_clean(c);
	store_account_put(c);
}

/* A maildir/<id> directory left by a create whose commit was lost is not
 * reused; -fix never deletes files it could not move away. */
static void
test_mailbox_dirs(void **state)
{
	struct fx *fx = *state;
	struct store *s2;
	struct store_account *b;
	struct store_err err;
	struct buf rep;
	char p[512];
	int64_t id;
	int fd;

	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/40/cur", fx->dir);
	assert_int_equal(io_mkdir_p(p, 0750), 0);
	s2 = store_new(fx->dir, &err);
	assert_non_null(s2);
	assert_int_equal(store_account_get(s2, "mjl", false, &b, &err), 0);
	assert_int_equal(store_mailbox_create(b, "Fresh", 0, &id, &err), 0);
	assert_true(id > 40);
	store_account_put(b);
	store_free(s2);
	/* A file in the unknown mailbox 40, and moved/ unusable. */
	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/40/cur/7:2,", fx->dir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	{
		char m[512];

		snprintf(m, sizeof(m), "%s/moved", fx->dir);
		fd = open(m, O_WRONLY | O_CREAT | O_EXCL, 0640);
		assert_true(fd >= 0);
		close(fd);
		buf_init(&rep, BUF_NOMAX);
		assert_int_equal(store_check(fx->a, true, &rep), -1);
		assert_int_equal(access(p, F_OK), 0);
		assert_int_equal(unlink(m), 0);
	}
	buf_reset(&rep);
	if (store_check(fx->a, true, &rep) == -1)
		fail_msg("fix: %s", rep.data);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/moved/accounts/mjl/40/7:2,", fx->dir);
	assert_int_equal(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/40", fx->dir);
	assert_int_equal(access(p, F_OK), -1);
	buf_release(&rep);
}

/* A streaming import is one transaction: abort leaves nothing. */
static void
test_import_stream(void **state)
{
	struct fx *fx = *state;
	struct store_import *im;
	struct store_add in = { .data = "S: i\r\n\r\nx\r\n", .len = 11 };
	struct store_added o[3];
	struct store_mailbox mb;
	struct store_err err;
	char p[512];

	im = store_import_begin(fx->a, "Imported/Sub", true, &err);
	assert_non_null(im);
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_import_add(im, &in, &o[i], &err), 0);
	assert_int_equal(o[0].modseq, o[2].modseq);
	store_import_abort(im);
	assert_int_equal(store_mailbox_get(fx->a, "Imported", &mb, &err), -1);
	snprintf(p, sizeof(p), "%s/accounts/mjl/maildir/%lld/cur/%lld:2,",
	    fx->dir, (long long)o[0].mailbox_id, (long long)o[0].id);
	assert_int_equal(access(p, F_OK), -1);
	im = store_import_begin(fx->a, "Imported/Sub", true, &err);
	assert_non_null(im);
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_import_add(im, &in, &o[i], &err), 0);
	assert_int_equal(store_import_commit(im, &err), 0);
	assert_int_equal(store_mailbox_get(fx->a, "Imported/Sub", &mb, &err),
	    0);
	assert_int_equal(mb.counts.total, 3);
	store_mailbox_release(&mb);
}

/* Backup through a second handle (as mox backup, another process) while
 * the first moves and expunges: the backup is complete and verifies clean;
 * files waiting in new/ are included. */
struct mv {
	struct store_account *a;
	volatile int *stop;
	int rounds;
};

static void *
mv_main(void *arg)
{
	struct mv *m = arg;
	int64_t inbox = mbid(m->a, "Inbox"), arch = mbid(m->a, "Archive");

	while (!*m->stop) {
		struct store_msg_list l;
		struct store_uidmap map;
		struct store_flags_result fr;
		struct store_uids rm;
		struct store_err err;
		uint32_t u[8];
		size_t n = 0;

		if (store_list(m->a, inbox, &l, &err) == -1)
			break;
		for (size_t i = 0; i < l.n && n < 8; i += 3)
			u[n++] = l.v[i].uid;
		store_msg_list_release(&l);
		if (n == 0)
			break;
		if (store_move(m->a, inbox, u, n, arch, &map, &err) == 0) {
			if (store_flags(m->a, arch, map.dst, map.n / 2 + 1,
				STORE_FLAGS_ADD, STORE_F_DELETED, NULL, -1, &fr,
				&err) == 0)
				store_flags_result_release(&fr);
			if (store_expunge(m->a, arch, NULL, 0, &rm, &err) == 0)
				store_uids_release(&rm);
			store_uidmap_release(&map);
		}
		for (int i = 0; i < 4; i++)
			deliver(m->a, "Inbox", 0, NULL);
		m->rounds++;
	}
	return NULL;
}

static void
test_backup_other_process(void **state)
{
	struct fx *fx = *state;
	volatile int stop = 0;
	struct mv m = { .a = fx->a, .stop = &stop };
	struct store *s2;
	struct store_account *b;
	struct store_err err;
	struct buf rep;
	pthread_t th;
	char dst[256], p[512];

	for (int i = 0; i < 300; i++)
		deliver(fx->a, "Inbox", 0, NULL);
	drop_new(fx->dir, mbid(fx->a, "Archive"), "1700000000.9.waiting",
	    "A: w\r\n\r\n");
	s2 = store_open(fx->dir, STORE_OPEN_READONLY, &err);
	assert_non_null(s2);
	assert_int_equal(store_account_get(s2, "mjl", false, &b, &err), 0);
	assert_int_equal(pthread_create(&th, NULL, mv_main, &m), 0);
	buf_init(&rep, BUF_NOMAX);
	for (int i = 0; i < 6; i++) {
		snprintf(dst, sizeof(dst), "%s/backup%d", fx->dir, i);
		if (store_backup_account(b, dst, &err) == -1)
			fail_msg("backup %d: %s", i, err.text);
		buf_reset(&rep);
		if (store_verify_datadir(dst, false, &rep) == -1)
			fail_msg("backup %d verify: %s", i, rep.data);
		/* Verifying creates nothing in the directory. */
		snprintf(p, sizeof(p), "%s/tmp", dst);
		assert_int_equal(access(p, F_OK), -1);
	}
	stop = 1;
	pthread_join(th, NULL);
	assert_true(m.rounds > 0);
	snprintf(p, sizeof(p), "%s/backup0/accounts/mjl/maildir/%lld/new/"
			       "1700000000.9.waiting",
	    fx->dir, (long long)mbid(fx->a, "Archive"));
	assert_int_equal(access(p, F_OK), 0);
	buf_release(&rep);
	store_account_put(b);
	store_free(s2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_default_mailboxes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_ops, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subscriptions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deliver_flags_expunge,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_multi_fields,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_counts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_copy_move, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passwords, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_password_cache, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_msg_header, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_new, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_concurrency, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_file_and_orphan,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_db, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_nonascii_parent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_counts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reserved_ids, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unchangedsince_noop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_password_max, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_new_bad_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_account_cache, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_dirs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_import_stream, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backup_other_process,
		    setup, teardown),
	};

	log_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
