/*
 * test_store_tools_deliver.c: test helper for test_store_tools.py. Delivers
 * messages into one account from 4 threads through the store API for the
 * given number of seconds, so mox-backup can run while deliveries go on.
 * Prints "delivering" once the first message is in and "delivered N" at the
 * end. Usage: test_store_tools_deliver DATADIR ACCOUNT SECONDS
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "maildir/store.h"
#include "lib/banned.h"

#define THREADS 4

struct ctx {
	struct store_account *a;
	int64_t until_ns;
	atomic_long delivered;
	atomic_int failed;
};

static void *
deliver_loop(void *arg)
{
	struct ctx *c = arg;
	struct buf msg;
	long n = 0;

	buf_init(&msg, 64 * 1024);
	while (time_mono_ns() < c->until_ns && atomic_load(&c->failed) == 0) {
		const char *mb = n % 3 == 0 ? "Archive" : "Inbox";
		struct store_add in;
		struct store_added out;
		struct store_err err;

		buf_reset(&msg);
		buf_addf(&msg,
		    "From: <sender@remote.example>\r\nTo: <rcpt@mox.example>\r\n"
		    "Subject: concurrent %lu/%ld\r\n"
		    "Message-ID: <c%lu.%ld@remote.example>\r\n\r\n"
		    "body %ld\r\n",
		    (unsigned long)pthread_self(), n,
		    (unsigned long)pthread_self(), n, n);
		memset(&in, 0, sizeof(in));
		in.data = msg.data;
		in.len = msg.len;
		in.flags = n % 2 == 0 ? STORE_F_SEEN : 0;
		in.keywords = n % 5 == 0 ? "concurrent" : NULL;
		in.create_mailbox = true;
		if (store_deliver(c->a, &in, &mb, 1, &out, &err) == -1) {
			fprintf(stderr, "deliver: %s\n", err.text);
			atomic_store(&c->failed, 1);
			break;
		}
		if (atomic_fetch_add(&c->delivered, 1) == 0) {
			printf("delivering\n");
			fflush(stdout);
		}
		n++;
	}
	buf_release(&msg);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct store *s;
	struct store_err err;
	struct ctx c;
	pthread_t t[THREADS];
	uint64_t secs;

	if (argc != 4 || span_u64(span_of_cstr(argv[3]), 3600, &secs) == -1) {
		fprintf(stderr, "usage: %s DATADIR ACCOUNT SECONDS\n", argv[0]);
		return 2;
	}
	memset(&c, 0, sizeof(c));
	s = store_new(argv[1], &err);
	if (s == NULL || store_account_get(s, argv[2], true, &c.a, &err) == -1) {
		fprintf(stderr, "open: %s\n", err.text);
		return 1;
	}
	c.until_ns = time_mono_ns() + (int64_t)secs * NS_PER_SEC;
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, deliver_loop, &c) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("delivered %ld\n", atomic_load(&c.delivered));
	store_account_put(c.a);
	store_free(s);
	return atomic_load(&c.failed) ? 1 : 0;
}
