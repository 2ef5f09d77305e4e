/*
 * smtp_readback.c: test helper for the SMTP integration tests: open the
 * store of a data directory and print, for each live message of a
 * mailbox, "uid path-of-the-message-file" so the test can compare the
 * delivered bytes. Usage: smtp_readback datadir account mailbox.
 */
#include <stdio.h>

#include "lib/buf.h"
#include "maildir/store.h"
#include "lib/banned.h"

int
main(int argc, char **argv)
{
	struct store_err err;
	struct store *st;
	struct store_account *a = NULL;
	struct store_mailbox mb = { 0 };
	struct store_msg_list l = { 0 };
	struct buf p;
	int rc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: smtp_readback datadir account mailbox\n");
		return 2;
	}
	buf_init(&p, 4096);
	st = store_new(argv[1], &err);
	if (st == NULL ||
	    store_account_get(st, argv[2], false, &a, &err) == -1 ||
	    store_mailbox_get(a, argv[3], &mb, &err) == -1 ||
	    store_list(a, mb.id, &l, &err) == -1) {
		fprintf(stderr, "smtp_readback: %s\n", err.text);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		buf_reset(&p);
		store_msg_path(a, mb.id, l.v[i].id, &p);
		printf("%u %s\n", l.v[i].uid, p.data);
	}
	rc = 0;
out:
	store_msg_list_release(&l);
	store_mailbox_release(&mb);
	store_account_put(a);
	store_free(st);
	buf_release(&p);
	return rc;
}
