/*
 * bench_store.c: store throughput. Delivers 10,000 messages of 4 KiB from
 * 8 threads through store_deliver and prints deliveries/s beside the raw
 * limit of this disk measured in the same run (8 threads each writing a
 * 4 KiB file and fsyncing it and its directory). Then imports 100,000
 * messages into one mailbox, lists uid+flags+modseq and prints the time,
 * and prints the peak RSS. Usage: bench_store [DIR] (default /tmp).
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "maildir/store.h"
#include "lib/banned.h"

#define THREADS 8
#define DELIVERIES 10000
#define MSG_SIZE 4096
#define BIG 100000

static char msg[MSG_SIZE];
static const char *rawdir;
static struct store_account *bench_acct;

static void *
raw_main(void *arg)
{
	long *count = arg;
	int64_t end = time_mono_ns() + 2 * NS_PER_SEC;
	char p[512];

	for (long i = 0; time_mono_ns() < end && i < 1000000; i++) {
		int fd;

		snprintf(p, sizeof(p), "%s/f%lu-%ld", rawdir,
		    (unsigned long)pthread_self(), i);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
		if (fd == -1 || io_write_all(fd, msg, sizeof(msg)) == -1 ||
		    fsync(fd) == -1 || close(fd) == -1 ||
		    io_fsync_dir(rawdir) == -1) {
			perror("raw");
			exit(1);
		}
		(*count)++;
	}
	return NULL;
}

static void *
deliver_main(void *arg)
{
	int n = *(int *)arg;

	for (int i = 0; i < n; i++) {
		struct store_add in = { .data = msg, .len = sizeof(msg) };
		const char *mbs[] = { "Inbox" };
		struct store_added o;
		struct store_err err;

		if (store_deliver(bench_acct, &in, mbs, 1, &o, &err) == -1) {
			fprintf(stderr, "deliver: %s\n", err.text);
			exit(1);
		}
	}
	return NULL;
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static long
rss_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	return v;
}

int
main(int argc, char **argv)
{
	char dir[256], raw[300];
	pthread_t th[THREADS];
	long counts[THREADS];
	int per = DELIVERIES / THREADS;
	struct store_err err;
	struct store *s;
	int64_t t0;
	double rawrate, rate;
	long rawtotal = 0;

	log_init();
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : 'a';
	snprintf(dir, sizeof(dir), "%s/bench_store.XXXXXX",
	    argc > 1 ? argv[1] : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(raw, sizeof(raw), "%s/raw", dir);
	if (mkdir(raw, 0750) == -1)
		return 1;
	rawdir = raw;
	t0 = time_mono_ns();
	for (int i = 0; i < THREADS; i++) {
		counts[i] = 0;
		pthread_create(&th[i], NULL, raw_main, &counts[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		rawtotal += counts[i];
	}
	rawrate = (double)rawtotal * NS_PER_SEC / (double)(time_mono_ns() - t0);

	s = store_new(dir, &err);
	if (s == NULL || store_account_get(s, "bench", true, &bench_acct, &err) == -1) {
		fprintf(stderr, "open: %s\n", err.text);
		return 1;
	}
	t0 = time_mono_ns();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, deliver_main, &per);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	rate = (double)(per * THREADS) * NS_PER_SEC /
	    (double)(time_mono_ns() - t0);
	printf("deliver: %d messages of %d bytes, %d threads: %.0f/s; raw "
	       "fsync(file)+fsync(dir) limit %.0f/s; ratio %.2f\n",
	    per * THREADS, MSG_SIZE, THREADS, rate, rawrate, rate / rawrate);

	if (store_mailbox_create(bench_acct, "Big", 0, NULL, &err) == -1) {
		fprintf(stderr, "create: %s\n", err.text);
		return 1;
	}
	{
		static struct store_add ins[1000];
		struct store_mailbox mb;
		struct store_msg_list l;

		for (size_t i = 0; i < 1000; i++) {
			ins[i].data = msg;
			ins[i].len = 512;
			ins[i].flags = i % 3 == 0 ? 1 : 0;
		}
		t0 = time_mono_ns();
		for (int k = 0; k < BIG / 1000; k++)
			if (store_import(bench_acct, "Big", ins, 1000, NULL, &err) ==
			    -1) {
				fprintf(stderr, "import: %s\n", err.text);
				return 1;
			}
		printf("import: %d messages in %.1f s\n", BIG,
		    (double)(time_mono_ns() - t0) / NS_PER_SEC);
		if (store_mailbox_get(bench_acct, "Big", &mb, &err) == -1)
			return 1;
		for (int round = 0; round < 3; round++) {
			t0 = time_mono_ns();
			if (store_list(bench_acct, mb.id, &l, &err) == -1) {
				fprintf(stderr, "list: %s\n", err.text);
				return 1;
			}
			printf("list: %zu messages (uid, flags, modseq) in "
			       "%.1f ms\n",
			    l.n, (double)(time_mono_ns() - t0) / NS_PER_MS);
			store_msg_list_release(&l);
		}
		store_mailbox_release(&mb);
	}
	printf("rss: %ld KiB now, %ld KiB peak\n", rss_kb("VmRSS:"),
	    rss_kb("VmHWM:"));
	store_account_put(bench_acct);
	store_free(s);
	(void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
