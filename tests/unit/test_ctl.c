/*
 * test_ctl.c: the control socket: greeting, command dispatch, parameters,
 * chunked data streams both ways, unknown commands, over-long lines, a
 * dial without a server, and a client trickling bytes that must not
 * delay ctl_server_stop().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/banned.h"

static char dir[] = "/tmp/test_ctl.XXXXXX";

/* "upper": read one parameter, reply ok, then stream it upper-cased. */
static int
cmd_upper(struct ctl_conn *c, void *arg)
{
	struct buf p;

	buf_init(&p, CTL_LINE_MAX);
	if (ctl_read_line(c, &p) == -1) {
		buf_release(&p);
		return -1;
	}
	for (size_t i = 0; i < p.len; i++)
		if (p.data[i] >= 'a' && p.data[i] <= 'z')
			p.data[i] = (char)(p.data[i] - 32);
	ctl_write_line(c, "ok");
	ctl_write_stream(c, p.data, p.len);
	buf_release(&p);
	(void)arg;
	return 0;
}

/* "count": read a stream, answer with its length. */
static int
cmd_count(struct ctl_conn *c, void *arg)
{
	struct buf data;
	char line[64];

	buf_init(&data, 8 * 1024 * 1024);
	if (ctl_read_stream(c, &data) == -1) {
		ctl_write_line(c, "bad stream");
		buf_release(&data);
		return -1;
	}
	snprintf(line, sizeof(line), "%zu", data.len);
	ctl_write_line(c, "ok");
	ctl_write_line(c, line);
	buf_release(&data);
	(void)arg;
	return 0;
}

static const struct ctl_command cmds[] = {
	{ "upper", cmd_upper },
	{ "count", cmd_count },
};

static void
test_ctl_roundtrip(void **state)
{
	struct buf err, reply, out;
	struct ctl_server *s;
	struct ctl_conn *c;
	const char *w1[] = { "upper", "hello ctl" };
	const char *const w2[] = { "count" };
	char *big = malloc(3 * 1024 * 1024);

	buf_init(&err, 4096);
	buf_init(&reply, CTL_LINE_MAX);
	buf_init(&out, 1 << 20);
	s = ctl_server_start(dir, cmds, 2, NULL, &err);
	assert_non_null(s);
	c = ctl_dial(dir, &err);
	assert_non_null(c);
	assert_int_equal(ctl_call(c, w1, 2, &reply), 0);
	assert_int_equal(ctl_read_stream(c, &out), 0);
	assert_string_equal(out.data, "HELLO CTL");

	/* A stream larger than one chunk, on the same connection. */
	memset(big, 'x', 3 * 1024 * 1024);
	assert_int_equal(ctl_write_line(c, w2[0]), 0);
	assert_int_equal(ctl_write_stream(c, big, 3 * 1024 * 1024), 0);
	assert_int_equal(ctl_read_line(c, &reply), 0);
	assert_string_equal(reply.data, "ok");
	assert_int_equal(ctl_read_line(c, &reply), 0);
	assert_string_equal(reply.data, "3145728");
	ctl_close(c);

	/* Unknown command: an error line, then the server closes. */
	c = ctl_dial(dir, &err);
	assert_non_null(c);
	{
		const char *w[] = { "nosuch" };

		assert_int_equal(ctl_call(c, w, 1, &reply), -1);
		assert_string_equal(reply.data, "unknown command");
	}
	ctl_close(c);

	/* Over-long line: the server drops the connection. */
	c = ctl_dial(dir, &err);
	assert_non_null(c);
	{
		char *longline = malloc(CTL_LINE_MAX + 10);
		const char *w[1];

		memset(longline, 'a', CTL_LINE_MAX + 9);
		longline[CTL_LINE_MAX + 9] = '\0';
		w[0] = longline;
		assert_int_equal(ctl_call(c, w, 1, &reply), -1);
		free(longline);
	}
	ctl_close(c);
	ctl_server_stop(s);

	/* No server: a clear error naming the socket. */
	buf_reset(&err);
	assert_null(ctl_dial(dir, &err));
	assert_non_null(strstr(err.data, "/ctl"));
	assert_non_null(strstr(err.data, "mox serve"));
	buf_release(&err);
	buf_release(&reply);
	buf_release(&out);
	free(big);
	(void)state;
}

static atomic_bool trickle_stop;

/* Send one byte of a never-ending command word every 100 ms. */
static void *
trickle_main(void *arg)
{
	int fd = *(int *)arg;

	for (int i = 0; i < 100 && !atomic_load(&trickle_stop); i++) {
		struct timespec d = { 0, 100 * 1000 * 1000 };

		if (send(fd, "u", 1, MSG_NOSIGNAL) != 1)
			break;
		nanosleep(&d, NULL);
	}
	return NULL;
}

static void
test_ctl_stop_with_trickling_client(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_server *s;
	struct buf err;
	char greet[16];
	pthread_t th;
	int64_t t0, el;
	int fd;

	buf_init(&err, 4096);
	s = ctl_server_start(dir, cmds, 2, NULL, &err);
	assert_non_null(s);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
	    CTL_SOCKET_NAME);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(recv(fd, greet, sizeof(greet), 0) > 0);
	atomic_store(&trickle_stop, false);
	assert_int_equal(pthread_create(&th, NULL, trickle_main, &fd), 0);
	{
		struct timespec d = { 0, 300 * 1000 * 1000 };

		nanosleep(&d, NULL);
	}
	t0 = time_mono_ms();
	ctl_server_stop(s);
	el = time_mono_ms() - t0;
	atomic_store(&trickle_stop, true);
	pthread_join(th, NULL);
	close(fd);
	if (el > 1000)
		fail_msg("ctl_server_stop took %lld ms", (long long)el);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_roundtrip),
		cmocka_unit_test(test_ctl_stop_with_trickling_client),
	};
	int rc;

	log_init();
	log_set_level(NULL, LOG_ERROR);
	if (mkdtemp(dir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
