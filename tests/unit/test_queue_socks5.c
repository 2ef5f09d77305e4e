/*
 * test_queue_socks5.c: the SOCKS5 client of the Socks transport
 * (queue_socks5.c, RFC 1928): greeting and CONNECT encoding, method and
 * CONNECT reply parsing with hostile replies (short, wrong version, error
 * codes, unknown address types, oversized names) fed whole and byte at a
 * time, the proxy address split, and the dial against a scripted proxy
 * on 127.0.0.43 (reply followed by relayed bytes, refusal, silence).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "queue/queue_socks5.h"
#include "lib/banned.h"

#define PROXY_IP "127.0.0.43"

static void
test_greeting(void **state)
{
	uint8_t g[QUEUE_SOCKS5_GREETING_LEN];

	assert_int_equal(queue_socks5_greeting(g), 3);
	/* RFC 1928 3: version 5, one method, no authentication. */
	assert_memory_equal(g, "\x05\x01\x00", 3);
	(void)state;
}

static void
test_parse_method(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		int want;
	} cases[] = {
		{ "", 0, 0 },
		{ "\x05", 1, 0 },
		{ "\x05\x00", 2, 1 },
		{ "\x04", 1, -1 },         /* SOCKS4 */
		{ "\x04\x00", 2, -1 },
		{ "\x00\x00", 2, -1 },
		{ "\x05\xff", 2, -1 },     /* no acceptable methods */
		{ "\x05\x02", 2, -1 },     /* username/password: not offered */
		{ "\x05\x01", 2, -1 },     /* GSSAPI: not offered */
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *why = NULL;
		int rc = queue_socks5_parse_method((const uint8_t *)cases[i].in,
		    cases[i].len, &why);

		if (rc != cases[i].want || (rc == -1 && why == NULL))
			fail_msg("case %zu: rc %d %s", i, rc, why ? why : "");
	}
	(void)state;
}

static void
test_connect_request(void **state)
{
	char name255[256], name256[257];
	static const uint8_t want_v6[] = { 5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 25 };
	struct {
		const char *host;
		uint16_t port;
		size_t outlen;
		int want_rc;
		const uint8_t *want;
		size_t want_len;
	} cases[] = {
		{ "192.0.2.1", 25, QUEUE_SOCKS5_MSG_MAX, 0,
		    (const uint8_t *)"\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x19",
		    10 },
		{ "2001:db8::1", 25, QUEUE_SOCKS5_MSG_MAX, 0, want_v6,
		    sizeof(want_v6) },
		{ "mx.example.org", 587, QUEUE_SOCKS5_MSG_MAX, 0,
		    (const uint8_t *)"\x05\x01\x00\x03\x0emx.example.org\x02\x4b",
		    21 },
		{ name255, 25, QUEUE_SOCKS5_MSG_MAX, 0, NULL, 4 + 1 + 255 + 2 },
		{ name256, 25, QUEUE_SOCKS5_MSG_MAX, -1, NULL, 0 },
		{ "", 25, QUEUE_SOCKS5_MSG_MAX, -1, NULL, 0 },
		{ "mx example", 25, QUEUE_SOCKS5_MSG_MAX, -1, NULL, 0 },
		{ "mx\r\n.example", 25, QUEUE_SOCKS5_MSG_MAX, -1, NULL, 0 },
		{ "mx.example.org", 25, 12, -1, NULL, 0 }, /* buffer too small */
		{ "192.0.2.1", 25, 8, -1, NULL, 0 },
	};

	memset(name255, 'a', 255);
	name255[255] = '\0';
	memset(name256, 'a', 256);
	name256[256] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t out[QUEUE_SOCKS5_MSG_MAX + 8];
		size_t len = 0;
		const char *why = NULL;
		int rc = queue_socks5_connect_request(cases[i].host,
		    cases[i].port, out, cases[i].outlen, &len, &why);

		if (rc != cases[i].want_rc || (rc == -1 && why == NULL))
			fail_msg("case %zu: rc %d %s", i, rc, why ? why : "");
		if (rc == 0 && len != cases[i].want_len)
			fail_msg("case %zu: len %zu", i, len);
		if (rc == 0 && cases[i].want != NULL &&
		    memcmp(out, cases[i].want, len) != 0)
			fail_msg("case %zu: bytes differ", i);
		if (rc == 0 && len > cases[i].outlen)
			fail_msg("case %zu: wrote past the buffer", i);
	}
	(void)state;
}

static const struct reply_case {
	const char *name;
	const char *in;
	size_t len;
	int want_rc;
	size_t want_need; /* complete: reply length */
	int want_rep;     /* -1: do not check */
	const char *want_bound;
	uint16_t want_port;
} reply_cases[] = {
	{ "ipv4", "\x05\x00\x00\x01\xc0\x00\x02\x09\x10\x92", 10, 1, 10, 0,
	    "192.0.2.9", 4242 },
	{ "ipv4 with relayed bytes", "\x05\x00\x00\x01\x7f\x00\x00\x2b\x00\x19"
	    "220 mx ESMTP\r\n", 24, 1, 10, 0, "127.0.0.43", 25 },
	{ "ipv6", "\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00"
	    "\x00\x00\x00\x00\x00\x02\x00\x19", 22, 1, 22, 0, "2001:db8::2", 25 },
	{ "domain", "\x05\x00\x00\x03\x0bproxy.local\x04\x38", 18, 1, 18, 0,
	    "proxy.local", 1080 },
	{ "empty domain", "\x05\x00\x00\x03\x00\x00\x00", 7, 1, 7, 0, "", 0 },
	{ "unspecified", "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10, 1, 10,
	    0, "0.0.0.0", 0 },
	/* short replies: need more, and never more than the reply */
	{ "empty", "", 0, 0, 4, -1, NULL, 0 },
	{ "short ipv4", "\x05\x00\x00\x01\xc0\x00", 6, 0, 10, 0, NULL, 0 },
	{ "short domain length", "\x05\x00\x00\x03", 4, 0, 5, 0, NULL, 0 },
	{ "short domain", "\x05\x00\x00\x03\x0bproxy", 10, 0, 18, 0, NULL, 0 },
	/* hostile */
	{ "wrong version", "\x04\x5a\x00\x00", 4, -1, 0, -1, NULL, 0 },
	{ "wrong version first byte", "\x00", 1, -1, 0, -1, NULL, 0 },
	{ "http reply", "HTTP/1.1 400 Bad", 16, -1, 0, -1, NULL, 0 },
	{ "general failure", "\x05\x01", 2, -1, 0, 1, NULL, 0 },
	{ "not allowed", "\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00", 10, -1, 0,
	    2, NULL, 0 },
	{ "network unreachable", "\x05\x03", 2, -1, 0, 3, NULL, 0 },
	{ "host unreachable", "\x05\x04", 2, -1, 0, 4, NULL, 0 },
	{ "refused", "\x05\x05\x00\x01", 4, -1, 0, 5, NULL, 0 },
	{ "ttl expired", "\x05\x06", 2, -1, 0, 6, NULL, 0 },
	{ "command not supported", "\x05\x07", 2, -1, 0, 7, NULL, 0 },
	{ "atyp not supported", "\x05\x08", 2, -1, 0, 8, NULL, 0 },
	{ "unassigned", "\x05\x09", 2, -1, 0, 9, NULL, 0 },
	{ "unassigned 255", "\x05\xff", 2, -1, 0, 255, NULL, 0 },
	{ "reserved set", "\x05\x00\x01\x01", 4, -1, 0, 0, NULL, 0 },
	{ "atyp 0", "\x05\x00\x00\x00", 4, -1, 0, 0, NULL, 0 },
	{ "atyp 2", "\x05\x00\x00\x02\x00\x00", 6, -1, 0, 0, NULL, 0 },
	{ "atyp 255", "\x05\x00\x00\xff", 4, -1, 0, 0, NULL, 0 },
	{ "domain with control byte", "\x05\x00\x00\x03\x03" "a\nb\x00\x19", 10,
	    -1, 0, 0, NULL, 0 },
	{ "domain with nul", "\x05\x00\x00\x03\x03" "a\0b\x00\x19", 10, -1, 0,
	    0, NULL, 0 },
	{ "domain with 8-bit byte", "\x05\x00\x00\x03\x03" "a\xffz\x00\x19",
	    10, -1, 0, 0, NULL, 0 },
};

static void
check_reply(size_t i, const uint8_t *in, size_t len, bool bytewise)
{
	const struct reply_case *c = &reply_cases[i];
	struct queue_socks5_reply r;
	const char *why = NULL;
	size_t need = 0;
	int rc = 0;

	memset(&r, 0xaa, sizeof(r));
	if (!bytewise) {
		rc = queue_socks5_parse_reply(in, len, &r, &need, &why);
	} else {
		/* Byte at a time, as a reader that only reads what is needed:
		 * the same outcome as one whole read. */
		size_t have = 0;

		for (;;) {
			rc = queue_socks5_parse_reply(in, have, &r, &need, &why);
			if (rc != 0)
				break;
			if (need <= have)
				fail_msg("%s: need %zu with %zu", c->name, need,
				    have);
			if (have == len)
				break;
			have++;
		}
	}
	if (rc != c->want_rc)
		fail_msg("%s%s: rc %d %s", c->name, bytewise ? " (bytewise)" : "",
		    rc, why ? why : "");
	if (rc == -1 && why == NULL)
		fail_msg("%s: no reason", c->name);
	if (rc >= 0 && need != c->want_need)
		fail_msg("%s: need %zu want %zu", c->name, need, c->want_need);
	if (c->want_rep >= 0 && rc != 0 && r.rep != c->want_rep)
		fail_msg("%s: rep %u", c->name, r.rep);
	if (rc == -1 && c->want_rep > 0 &&
	    strcmp(why, queue_socks5_rep_text((uint8_t)c->want_rep)) != 0)
		fail_msg("%s: why %s", c->name, why);
	if (rc == 1 && (strcmp(r.bound, c->want_bound) != 0 ||
			   r.bound_port != c->want_port))
		fail_msg("%s: bound %s port %u", c->name, r.bound,
		    r.bound_port);
}

static void
test_parse_reply(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(reply_cases); i++) {
		check_reply(i, (const uint8_t *)reply_cases[i].in,
		    reply_cases[i].len, false);
		check_reply(i, (const uint8_t *)reply_cases[i].in,
		    reply_cases[i].len, true);
	}
	(void)state;
}

/* The longest reply: a 255-octet bound name, QUEUE_SOCKS5_MSG_MAX bytes. */
static void
test_parse_reply_max(void **state)
{
	uint8_t in[QUEUE_SOCKS5_MSG_MAX];
	struct queue_socks5_reply r;
	const char *why = NULL;
	size_t need = 0;

	memcpy(in, "\x05\x00\x00\x03\xff", 5);
	memset(in + 5, 'b', 255);
	in[260] = 0;
	in[261] = 25;
	assert_int_equal(queue_socks5_parse_reply(in, sizeof(in), &r, &need,
	    &why), 1);
	assert_int_equal(need, QUEUE_SOCKS5_MSG_MAX);
	assert_int_equal(strlen(r.bound), 255);
	assert_int_equal(queue_socks5_parse_reply(in, sizeof(in) - 1, &r, &need,
	    &why), 0);
	assert_int_equal(need, QUEUE_SOCKS5_MSG_MAX);
	(void)state;
}

static void
test_rep_text(void **state)
{
	assert_string_equal(queue_socks5_rep_text(0), "succeeded");
	assert_string_equal(queue_socks5_rep_text(5), "connection refused");
	assert_string_equal(queue_socks5_rep_text(8),
	    "address type not supported");
	assert_string_equal(queue_socks5_rep_text(9), "unassigned reply code");
	assert_string_equal(queue_socks5_rep_text(255),
	    "unassigned reply code");
	(void)state;
}

static void
test_split_addr(void **state)
{
	static const struct {
		const char *in;
		int want_rc;
		const char *host;
		uint16_t port;
	} cases[] = {
		{ "127.0.0.1:1080", 0, "127.0.0.1", 1080 },
		{ "[::1]:9050", 0, "::1", 9050 },
		{ "::1:9050", 0, "::1", 9050 },
		{ "proxy.example:1", 0, "proxy.example", 1 },
		{ "proxy.example:65535", 0, "proxy.example", 65535 },
		{ "proxy.example:65536", -1, NULL, 0 },
		{ "proxy.example:0", -1, NULL, 0 },
		{ "proxy.example:", -1, NULL, 0 },
		{ "proxy.example", -1, NULL, 0 },
		{ ":1080", -1, NULL, 0 },
		{ "[::1:1080", -1, NULL, 0 },
		{ "[]:1080", -1, NULL, 0 },
		{ "proxy.example:10x", -1, NULL, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char host[64];
		uint16_t port = 0;
		int rc = queue_socks5_split_addr(cases[i].in, host,
		    sizeof(host), &port);

		if (rc != cases[i].want_rc ||
		    (rc == 0 && (strcmp(host, cases[i].host) != 0 ||
				    port != cases[i].port)))
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
	}
	(void)state;
}

/* ---- the dial against a scripted proxy ---- */

enum proxy_mode {
	PROXY_OK,      /* success reply, then a greeting from the "server" */
	PROXY_REFUSE,  /* REP 5 */
	PROXY_SILENT,  /* accepts and never answers */
	PROXY_AUTH,    /* wants username/password */
};

struct proxy {
	int lfd;
	uint16_t port;
	enum proxy_mode mode;
	uint8_t request[QUEUE_SOCKS5_MSG_MAX];
	size_t request_len;
	pthread_t thread;
};

static void
read_n(int fd, uint8_t *p, size_t n)
{
	size_t have = 0;

	while (have < n) {
		ssize_t r = read(fd, p + have, n - have);

		if (r <= 0)
			return;
		have += (size_t)r;
	}
}

static void
write_n(int fd, const void *p, size_t n)
{
	ssize_t w = write(fd, p, n);

	(void)w; /* the client sees what arrived */
}

static void *
proxy_run(void *arg)
{
	struct proxy *px = arg;
	uint8_t g[3];
	int fd = accept(px->lfd, NULL, NULL);

	if (fd == -1)
		return NULL;
	read_n(fd, g, 3);
	if (px->mode == PROXY_SILENT) {
		uint8_t b;
		ssize_t r = read(fd, &b, 1); /* until the client gives up */

		(void)r;
		close(fd);
		return NULL;
	}
	if (px->mode == PROXY_AUTH) {
		write_n(fd, "\x05\xff", 2);
		close(fd);
		return NULL;
	}
	write_n(fd, "\x05\x00", 2);
	/* CONNECT with an IPv4 address: 10 bytes. */
	read_n(fd, px->request, 10);
	px->request_len = 10;
	if (px->mode == PROXY_REFUSE) {
		write_n(fd, "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10);
	} else {
		/* The reply and the relayed greeting in one segment. */
		static const char r[] = "\x05\x00\x00\x01\x7f\x00\x00\x2b\x9c\x40"
					"220 relayed ESMTP\r\n";

		write_n(fd, r, sizeof(r) - 1);
	}
	usleep(100000);
	close(fd);
	return NULL;
}

static void
proxy_start(struct proxy *px, enum proxy_mode mode)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(px, 0, sizeof(*px));
	px->mode = mode;
	px->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(px->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, PROXY_IP, &sa.sin_addr), 1);
	assert_int_equal(bind(px->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(px->lfd, 4), 0);
	assert_int_equal(getsockname(px->lfd, (struct sockaddr *)&sa, &sl), 0);
	px->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&px->thread, NULL, proxy_run, px), 0);
}

static void
proxy_stop(struct proxy *px)
{
	pthread_join(px->thread, NULL);
	close(px->lfd);
}

static int
dial(const struct proxy *px, int timeout_ms, char *bound, size_t bl,
    struct buf *err)
{
	char addr[64];

	snprintf(addr, sizeof(addr), "%s:%u", PROXY_IP, px->port);
	return queue_socks5_dial(addr, "192.0.2.25", 25, timeout_ms, bound, bl,
	    err);
}

static void
test_dial_ok(void **state)
{
	struct proxy px;
	struct buf err;
	char bound[64], line[64];
	ssize_t n;
	int fd;

	buf_init(&err, 1024);
	proxy_start(&px, PROXY_OK);
	fd = dial(&px, 5000, bound, sizeof(bound), &err);
	if (fd == -1)
		fail_msg("dial: %s", err.data);
	/* The relayed greeting was not consumed by the handshake. */
	n = read(fd, line, sizeof(line) - 1);
	assert_true(n > 0);
	line[n] = '\0';
	assert_string_equal(line, "220 relayed ESMTP\r\n");
	assert_string_equal(bound, "127.0.0.43");
	close(fd);
	proxy_stop(&px);
	assert_int_equal(px.request_len, 10);
	assert_memory_equal(px.request,
	    "\x05\x01\x00\x01\xc0\x00\x02\x19\x00\x19", 10);
	buf_release(&err);
	(void)state;
}

static void
test_dial_errors(void **state)
{
	static const struct {
		enum proxy_mode mode;
		int timeout_ms;
		const char *want;
	} cases[] = {
		{ PROXY_REFUSE, 5000, "connect to 192.0.2.25 port 25: "
				      "connection refused (reply 5)" },
		{ PROXY_AUTH, 5000, "requires authentication" },
		{ PROXY_SILENT, 300, "timeout" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct proxy px;
		struct buf err;
		char bound[64] = "x";
		int64_t t0 = time_mono_ms();
		int fd;

		buf_init(&err, 1024);
		proxy_start(&px, cases[i].mode);
		fd = dial(&px, cases[i].timeout_ms, bound, sizeof(bound), &err);
		if (fd != -1 || strstr(err.data, cases[i].want) == NULL ||
		    strncmp(err.data, "socks5 proxy 127.0.0.43:", 24) != 0 ||
		    bound[0] != '\0')
			fail_msg("case %zu: fd %d err %s", i, fd, err.data);
		if (time_mono_ms() - t0 > cases[i].timeout_ms + 2000)
			fail_msg("case %zu: took too long", i);
		/* Let a silent proxy's read end. */
		if (cases[i].mode == PROXY_SILENT)
			shutdown(px.lfd, SHUT_RDWR);
		proxy_stop(&px);
		buf_release(&err);
	}
	(void)state;
}

static void
test_dial_no_proxy(void **state)
{
	struct buf err;
	char bound[64];
	int fd;

	buf_init(&err, 1024);
	/* Nothing listens on port 1 of the test address. */
	fd = queue_socks5_dial(PROXY_IP ":1", "192.0.2.25", 25, 2000, bound,
	    sizeof(bound), &err);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err.data, "socks5 proxy 127.0.0.43:1: "));
	buf_reset(&err);
	fd = queue_socks5_dial("no-port", "192.0.2.25", 25, 2000, bound,
	    sizeof(bound), &err);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err.data, "expected host:port"));
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_parse_method),
		cmocka_unit_test(test_connect_request),
		cmocka_unit_test(test_parse_reply),
		cmocka_unit_test(test_parse_reply_max),
		cmocka_unit_test(test_rep_text),
		cmocka_unit_test(test_split_addr),
		cmocka_unit_test(test_dial_ok),
		cmocka_unit_test(test_dial_errors),
		cmocka_unit_test(test_dial_no_proxy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
