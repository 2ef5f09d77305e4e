/*
 * test_net_conn.c: line mode of the runtime (src/net/net_conn.c) through
 * a real reactor on loopback: CRLF and bare LF, bare CR inside a line,
 * NUL, max-1/max/max+1, skipping an over-long line, partial last line at
 * EOF, empty input. Each case is fed once whole and once a byte at a
 * time; both must give the same transcript. A handler that takes one
 * line per call still gets every buffered line without new input.
 * Trickled output: a byte per interval, in order, after what was
 * buffered before; a write timeout shorter than the interval does not
 * close the connection; ending trickling sends the rest at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/log.h"
#include "net/net.h"
#include "lib/banned.h"

#define T_LINE_MAX 16
#define T_TRICKLE_MS 300
#define T_TRICKLE_WRITE_MS 100 /* write timeout below the interval */

static struct net_reactor *reactor;
static uint16_t port, port_one, port_trickle;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static bool done;
static char transcript[4096];

struct t_sess {
	struct buf log;
};

static void *
t_start(struct net_conn *c, void *arg)
{
	struct t_sess *s = calloc(1, sizeof(*s));

	buf_init(&s->log, sizeof(transcript) - 1);
	return s;
}

static void
t_event(struct net_conn *c, void *sess, unsigned events)
{
	struct t_sess *s = sess;

	for (int i = 0; i < 100; i++) {
		struct span line;
		bool bare = false;
		int rc = net_conn_read_line(c, T_LINE_MAX, &line, &bare);

		switch (rc) {
		case NET_OK:
			buf_adds(&s->log, "L:");
			for (size_t j = 0; j < line.len; j++) {
				unsigned char ch = (unsigned char)line.p[j];

				if (ch < 0x20)
					buf_addf(&s->log, "\\x%02x", ch);
				else
					buf_addc(&s->log, (char)ch);
			}
			buf_adds(&s->log, bare ? ":lf;" : ":crlf;");
			break;
		case NET_TOOLONG:
			buf_adds(&s->log, "TOOLONG;");
			net_conn_skip_line(c);
			break;
		case NET_AGAIN:
			return;
		default:
			buf_adds(&s->log, rc == NET_EOF ? "EOF;" : "ERROR;");
			net_conn_close(c);
			return;
		}
	}
}

static void
t_end(struct net_conn *c, void *sess)
{
	struct t_sess *s = sess;

	pthread_mutex_lock(&done_mu);
	snprintf(transcript, sizeof(transcript), "%s", s->log.data);
	done = true;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&done_mu);
	buf_release(&s->log);
	free(s);
}

static const struct net_proto t_proto = {
	.name = "testconn",
	.start = t_start,
	.event = t_event,
	.end = t_end,
};

/* One line per call, answered "ok": the runtime must keep calling while
 * input is buffered, however many lines came in one read. */
static void *
one_start(struct net_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	return &one_start; /* no session state */
}

static void
one_event(struct net_conn *c, void *sess, unsigned events)
{
	struct span line;
	int rc = net_conn_read_line(c, T_LINE_MAX, &line, NULL);

	if (rc == NET_OK)
		net_conn_puts(c, "ok\n");
	else if (rc != NET_AGAIN)
		net_conn_close(c);
	(void)sess;
	(void)events;
}

static void
one_end(struct net_conn *c, void *sess)
{
	(void)c;
	(void)sess;
}

static const struct net_proto one_proto = {
	.name = "testone",
	.start = one_start,
	.event = one_event,
	.end = one_end,
};

/* "fast" at full speed, then "abcde" trickled; the line "FAST" ends
 * trickling and is answered "ok". */
static void *
tr_start(struct net_conn *c, void *arg)
{
	net_conn_puts(c, "fast\n");
	net_conn_set_trickle(c, T_TRICKLE_MS);
	net_conn_set_write_timeout(c, T_TRICKLE_WRITE_MS);
	net_conn_puts(c, "abcde\n");
	(void)arg;
	return &tr_start; /* no session state */
}

static void
tr_event(struct net_conn *c, void *sess, unsigned events)
{
	for (int i = 0; i < 10; i++) {
		struct span line;
		int rc = net_conn_read_line(c, T_LINE_MAX, &line, NULL);

		if (rc == NET_AGAIN)
			return;
		if (rc != NET_OK) {
			net_conn_close(c);
			return;
		}
		if (span_eq_cstr(line, "FAST")) {
			net_conn_set_trickle(c, 0);
			net_conn_puts(c, "ok\n");
		}
	}
	(void)sess;
	(void)events;
}

static const struct net_proto tr_proto = {
	.name = "testtrickle",
	.start = tr_start,
	.event = tr_event,
	.end = one_end,
};

static int
setup(void **state)
{
	struct net_params np = { .workers = 2 };
	struct net_listen_params lp = { .name = "t", .ip = "127.0.0.1",
		.proto = &t_proto };
	struct net_listen_params lp1 = { .name = "one", .ip = "127.0.0.1",
		.proto = &one_proto };
	struct net_listen_params lpt = { .name = "trickle",
		.ip = "127.0.0.1", .proto = &tr_proto };
	struct buf err;

	log_init();
	buf_init(&err, 1024);
	reactor = net_start(&np, &err);
	if (reactor == NULL || net_listen(reactor, &lp, &port, &err) == -1 ||
	    net_listen(reactor, &lp1, &port_one, &err) == -1 ||
	    net_listen(reactor, &lpt, &port_trickle, &err) == -1) {
		print_error("net: %s\n", err.data);
		buf_release(&err);
		return -1;
	}
	buf_release(&err);
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	net_stop(reactor, 1000);
	net_free(reactor);
	log_shutdown();
	(void)state;
	return 0;
}

/* Feed in (whole or a byte at a time), half-close, wait for the session
 * to end, and return its transcript. */
static const char *
run(const char *in, size_t len, bool bytewise)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	struct timespec ts;
	int fd, one = 1;
	char sink[256];

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_mutex_lock(&done_mu);
	done = false;
	pthread_mutex_unlock(&done_mu);
	if (bytewise) {
		for (size_t i = 0; i < len; i++) {
			struct timespec d = { 0, 200000 };

			assert_int_equal(send(fd, in + i, 1, MSG_NOSIGNAL), 1);
			nanosleep(&d, NULL);
		}
	} else if (len > 0) {
		assert_int_equal(send(fd, in, len, MSG_NOSIGNAL), (ssize_t)len);
	}
	shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), 0) > 0)
		;
	close(fd);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&done_mu);
	while (!done)
		if (pthread_cond_timedwait(&done_cv, &done_mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&done_mu);
	return done ? transcript : "(no end)";
}

#define S(x) x, sizeof(x) - 1

static const struct {
	const char *in;
	size_t len;
	const char *want;
} cases[] = {
	{ S(""), "EOF;" },
	{ S("abc\r\n"), "L:abc:crlf;EOF;" },
	{ S("abc\n"), "L:abc:lf;EOF;" },
	{ S("\r\n\n"), "L::crlf;L::lf;EOF;" },
	{ S("a\rb\r\n"), "L:a\\x0db:crlf;EOF;" },
	{ S("a\0b\r\n"), "L:a\\x00b:crlf;EOF;" },
	{ S("partial"), "EOF;" },
	{ S("one\r\npartial"), "L:one:crlf;EOF;" },
	/* max counts the terminator: 14 + CRLF and 15 + LF fit. */
	{ S("12345678901234\r\n"), "L:12345678901234:crlf;EOF;" },
	{ S("123456789012345\n"), "L:123456789012345:lf;EOF;" },
	{ S("123456789012345\r\nok\n"), "TOOLONG;L:ok:lf;EOF;" },
	{ S("1234567890123456\nok\n"), "TOOLONG;L:ok:lf;EOF;" },
	{ S("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\r\nok\r\n"),
	    "TOOLONG;L:ok:crlf;EOF;" },
	{ S("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), "TOOLONG;EOF;" },
	{ S("a\r\nb\r\nc\r\n"), "L:a:crlf;L:b:crlf;L:c:crlf;EOF;" },
	{ S("\r\r\n"), "L:\\x0d:crlf;EOF;" },
};

static void
test_net_conn_lines(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		for (int bw = 0; bw < 2; bw++) {
			const char *got = run(cases[i].in, cases[i].len, bw);

			if (strcmp(got, cases[i].want) != 0)
				fail_msg("case %zu (%s): got %s want %s", i,
				    bw ? "bytewise" : "whole", got,
				    cases[i].want);
		}
	}
	/* end() runs just before the connection leaves the books. */
	for (int i = 0; i < 100 && net_conn_count(reactor) > 0; i++) {
		struct timespec d = { 0, 10000000 };

		nanosleep(&d, NULL);
	}
	assert_int_equal(net_conn_count(reactor), 0);
	(void)state;
}

/* 500 lines in one send, then silence: every line is answered (the
 * handler rounds of one run must not strand the rest). */
static void
test_net_conn_one_per_call(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(port_one) };
	enum { NLINES = 500 };
	char in[NLINES * 4], got[NLINES * 3 + 1];
	size_t have = 0;
	int fd;

	for (size_t i = 0; i < NLINES; i++)
		memcpy(in + i * 4, "abc\n", 4);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(send(fd, in, sizeof(in), MSG_NOSIGNAL),
	    (ssize_t)sizeof(in));
	while (have < sizeof(got) - 1) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 3000) != 1)
			break;
		n = recv(fd, got + have, sizeof(got) - 1 - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (have != (size_t)NLINES * 3)
		fail_msg("got %zu replies of %d", have / 3, NLINES);
	(void)state;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read until want bytes are in got (or 5 s pass), noting when each
 * byte arrived. Returns the bytes read. */
static size_t
read_timed(int fd, char *got, int64_t *at, size_t have, size_t want)
{
	int64_t end = mono_ms() + 5000;

	while (have < want && mono_ms() < end) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 500) != 1)
			continue;
		n = recv(fd, got + have, want - have, 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			at[have + (size_t)i] = mono_ms();
		have += (size_t)n;
	}
	return have;
}

static void
test_net_conn_trickle(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(port_trickle) };
	static const char want[] = "fast\nabcde\nok\n";
	char got[sizeof(want)] = { 0 };
	int64_t at[sizeof(want)], sent;
	size_t have;
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	/* "fast\n" together, then a, b, c one interval apart. */
	have = read_timed(fd, got, at, 0, 8);
	if (have != 8 || memcmp(got, want, 8) != 0)
		fail_msg("trickle: got %zu bytes \"%.*s\"", have, (int)have,
		    got);
	if (at[4] - at[0] > T_TRICKLE_MS / 2)
		fail_msg("trickle: buffered output took %lld ms",
		    (long long)(at[4] - at[0]));
	for (size_t i = 6; i < 8; i++)
		if (at[i] - at[i - 1] < T_TRICKLE_MS * 9 / 10)
			fail_msg("trickle: byte %zu after %lld ms, want %d", i,
			    (long long)(at[i] - at[i - 1]), T_TRICKLE_MS);
	/* Ending trickling sends the rest ("de\n", then "ok\n") at once. */
	sent = mono_ms();
	assert_int_equal(send(fd, "FAST\n", 5, MSG_NOSIGNAL), 5);
	have = read_timed(fd, got, at, have, sizeof(want) - 1);
	if (have != sizeof(want) - 1 || memcmp(got, want, have) != 0)
		fail_msg("trickle: got \"%.*s\" want \"%s\"", (int)have, got,
		    want);
	if (at[have - 1] - sent > T_TRICKLE_MS * 2 / 3)
		fail_msg("trickle ended: rest took %lld ms",
		    (long long)(at[have - 1] - sent));
	close(fd);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_conn_lines),
		cmocka_unit_test(test_net_conn_one_per_call),
		cmocka_unit_test(test_net_conn_trickle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
