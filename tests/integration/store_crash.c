/*
 * store_crash.c: helper of the store crash test (store_crash.sh).
 *   store_crash deliver DATADIR   deliver to account "crash" in a loop and
 *                                 print each uid after store_deliver returned
 *   store_crash verify DATADIR UIDFILE
 *                                 verifydata -fix, then a clean check, then
 *                                 every uid in UIDFILE is live exactly once
 * Exit 0 on success, 1 on failure, 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "maildir/store.h"
#include "lib/banned.h"

#define DELIVER_MAX 100000

static int
run_deliver(const char *dir)
{
	struct store_err err;
	struct store *s = store_new(dir, &err);
	struct store_account *a;
	char body[600];

	if (s == NULL || store_account_get(s, "crash", true, &a, &err) == -1) {
		fprintf(stderr, "store_crash: %s\n", err.text);
		return 1;
	}
	for (int i = 0; i < DELIVER_MAX; i++) {
		const char *mbs[] = { "Inbox" };
		struct store_added o;
		struct store_add in = { .data = body };
		int n = snprintf(body, sizeof(body),
		    "Subject: crash %d\r\n\r\n%0500d\r\n", i, i);

		in.len = (size_t)n;
		if (store_deliver(a, &in, mbs, 1, &o, &err) == -1) {
			fprintf(stderr, "store_crash: deliver: %s\n", err.text);
			return 1;
		}
		printf("%u\n", o.uid);
		fflush(stdout);
	}
	store_account_put(a);
	store_free(s);
	return 0;
}

static int
run_verify(const char *dir, const char *uidfile)
{
	struct buf rep, text, e;
	struct store_err err;
	struct store *s;
	struct store_account *a;
	struct store_mailbox mb;
	struct store_msg_list l;
	size_t start = 0, checked = 0;
	int rc = 1;

	buf_init(&rep, BUF_NOMAX);
	buf_init(&text, BUF_NOMAX);
	buf_init(&e, 512);
	(void)store_verify_datadir(dir, true, &rep);
	if (rep.len > 0)
		fprintf(stderr, "store_crash: fixed: %s", rep.data);
	buf_reset(&rep);
	if (store_verify_datadir(dir, false, &rep) == -1) {
		fprintf(stderr, "store_crash: not clean: %s", rep.data);
		goto out;
	}
	if (io_read_file(uidfile, &text, &e) == -1) {
		fprintf(stderr, "store_crash: %s\n", e.data);
		goto out;
	}
	s = store_new(dir, &err);
	if (s != NULL && text.len == 0 &&
	    store_account_get(s, "crash", false, &a, &err) == -1 &&
	    err.code == STORE_EINVAL) {
		/* Killed before the account existed: nothing was promised. */
		printf("checked 0 uids, no account yet\n");
		store_free(s);
		rc = 0;
		goto out;
	}
	if (s == NULL || store_account_get(s, "crash", false, &a, &err) == -1 ||
	    store_mailbox_get(a, "Inbox", &mb, &err) == -1 ||
	    store_list(a, mb.id, &l, &err) == -1) {
		fprintf(stderr, "store_crash: %s\n", err.text);
		goto out;
	}
	for (size_t i = 0; i < text.len; i++) {
		uint64_t uid;
		size_t found = 0;

		if (text.data[i] != '\n')
			continue;
		if (span_u64(span_of(text.data + start, i - start), UINT32_MAX,
			&uid) == -1) {
			fprintf(stderr, "store_crash: bad line\n");
			goto out;
		}
		start = i + 1;
		for (size_t k = 0; k < l.n; k++)
			if (l.v[k].uid == uid)
				found++;
		if (found != 1) {
			fprintf(stderr, "store_crash: uid %llu found %zu times\n",
			    (unsigned long long)uid, found);
			goto out;
		}
		checked++;
	}
	printf("checked %zu uids, %zu messages\n", checked, l.n);
	store_msg_list_release(&l);
	store_mailbox_release(&mb);
	store_account_put(a);
	store_free(s);
	rc = 0;
out:
	buf_release(&rep);
	buf_release(&text);
	buf_release(&e);
	return rc;
}

int
main(int argc, char **argv)
{
	log_init();
	if (argc == 3 && strcmp(argv[1], "deliver") == 0)
		return run_deliver(argv[2]);
	if (argc == 4 && strcmp(argv[1], "verify") == 0)
		return run_verify(argv[2], argv[3]);
	fprintf(stderr, "usage: store_crash deliver|verify DATADIR [UIDFILE]\n");
	return 2;
}
