/*
 * testproto_server.c: a tiny line protocol on the network runtime, for
 * tests/integration/test_runtime.py and tests/bench/bench_idle.py.
 *
 *   testproto_server [-p port] [-w workers] [-i idle_ms] [-m max_per_ip]
 *       [-G grace_ms] [-o out_max] [-W write_timeout_ms]
 *       [-c cert.pem -k key.pem [-g] [-t]]
 *
 * Prints "port N" on stdout once listening on 127.0.0.1. -g first writes
 * a self-signed certificate for "localhost" to the -c/-k paths; -t makes
 * the listener implicit TLS. After STARTTLS the server sends "OK tls" over
 * the new session. -o and -W set out_max and write_timeout_ms of struct
 * net_params. "STUCK" makes the session ignore shutdown. Commands
 * (one per line, at most 1000 bytes): "ECHO x" -> "ECHO x", "STARTTLS" ->
 * "OK begin TLS" then the handshake, "TLS?" -> "TLS yes|no", "CB" -> "CB
 * <type> <hex>" (channel binding), "PAUSE ms" -> input paused, then "OK
 * resumed", "NOTIFY" -> "OK notified", "BIG n" -> n lines of 70 bytes,
 * "TRICKLE ms" -> output from then on one byte per ms (0: at full speed
 * again), starting with "OK trickle", "QUIT" -> "OK bye". Longer lines
 * get "ERR line too long"; the idle
 * timeout sends "BYE idle"; SIGTERM/SIGINT sends "BYE shutdown" to every
 * connection and exits 0. Peers are the test clients; input is bounded.
 * Threads: main waits for signals; sessions run on the runtime's workers.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/span.h"
#include "net/net.h"
#include "tls/tls.h"

#include "lib/banned.h"

#define TP_LINE_MAX 1002 /* 1000 bytes plus CRLF */

struct tp_conf {
	struct tls_server *tls;
	unsigned idle_ms;
};

struct tp_sess {
	const struct tp_conf *conf;
	bool stuck; /* ignores NET_EV_SHUTDOWN (tests the forced close) */
};

static void *
tp_start(struct net_conn *c, void *arg)
{
	struct tp_sess *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->conf = arg;
	if (s->conf->idle_ms > 0)
		net_conn_set_idle_timeout(c, s->conf->idle_ms);
	net_conn_puts(c, "OK testproto\r\n");
	return s;
}

static void
tp_channel_binding(struct net_conn *c)
{
	struct tls_session *t = net_conn_tls(c);
	const char *type, *why = NULL;
	struct buf cb;

	if (t == NULL) {
		net_conn_puts(c, "ERR no tls\r\n");
		return;
	}
	type = tls_session_is_tls13(t) ? "tls-exporter" : "tls-unique";
	buf_init(&cb, 256);
	if (tls_channel_binding(t, type, &cb, &why) == -1) {
		net_conn_printf(c, "ERR %s\r\n", why);
	} else {
		net_conn_printf(c, "CB %s ", type);
		for (size_t i = 0; i < cb.len; i++)
			net_conn_printf(c, "%02x", (unsigned char)cb.data[i]);
		net_conn_puts(c, "\r\n");
	}
	buf_release(&cb);
}

/* Returns false when reading must stop for now. */
static bool
tp_command(struct net_conn *c, struct tp_sess *s, struct span line)
{
	struct scan sc = scan_of(line);
	uint64_t n;

	if (scan_lit_ci(&sc, "ECHO ") == 0) {
		struct span rest = scan_rest(&sc);

		net_conn_puts(c, "ECHO ");
		net_conn_write(c, rest.p, rest.len);
		net_conn_puts(c, "\r\n");
	} else if (span_eq_ci(line, "STARTTLS")) {
		if (s->conf->tls == NULL || net_conn_tls_active(c)) {
			net_conn_puts(c, "ERR no starttls\r\n");
			return true;
		}
		net_conn_puts(c, "OK begin TLS\r\n");
		if (net_conn_starttls(c, s->conf->tls) == -1) {
			net_conn_puts(c, "ERR starttls refused\r\n");
			net_conn_close(c);
		}
		return false;
	} else if (span_eq_ci(line, "TLS?")) {
		net_conn_puts(c, net_conn_tls_active(c) ? "TLS yes\r\n" :
		    "TLS no\r\n");
	} else if (span_eq_ci(line, "CB")) {
		tp_channel_binding(c);
	} else if (scan_lit_ci(&sc, "PAUSE ") == 0 &&
	    scan_u64(&sc, 60000, &n) == 0 && scan_eof(&sc)) {
		net_conn_pause_input(c, true);
		net_conn_set_timer(c, (unsigned)n);
		return false;
	} else if (span_eq_ci(line, "STUCK")) {
		s->stuck = true;
		net_conn_puts(c, "OK stuck\r\n");
	} else if (span_eq_ci(line, "NOTIFY")) {
		net_conn_notify(c);
	} else if (scan_lit_ci(&sc, "BIG ") == 0 &&
	    scan_u64(&sc, 1000000, &n) == 0 && scan_eof(&sc)) {
		for (uint64_t i = 0; i < n; i++)
			net_conn_puts(c, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
		net_conn_puts(c, "OK big\r\n");
	} else if (scan_lit_ci(&sc, "TRICKLE ") == 0 &&
	    scan_u64(&sc, 60000, &n) == 0 && scan_eof(&sc)) {
		net_conn_set_trickle(c, (unsigned)n);
		net_conn_puts(c, "OK trickle\r\n");
	} else if (span_eq_ci(line, "QUIT")) {
		net_conn_puts(c, "OK bye\r\n");
		net_conn_close(c);
		return false;
	} else {
		net_conn_puts(c, "ERR unknown\r\n");
	}
	return true;
}

static void
tp_event(struct net_conn *c, void *sess, unsigned events)
{
	struct tp_sess *s = sess;

	if ((events & NET_EV_SHUTDOWN) && !s->stuck) {
		net_conn_puts(c, "BYE shutdown\r\n");
		net_conn_close(c);
		return;
	}
	if (events & NET_EV_IDLE) {
		net_conn_puts(c, "BYE idle\r\n");
		net_conn_close(c);
		return;
	}
	if (events & NET_EV_NOTIFY)
		net_conn_puts(c, "OK notified\r\n");
	if (events & NET_EV_TLS)
		net_conn_puts(c, "OK tls\r\n");
	if (events & NET_EV_TIMER) {
		net_conn_pause_input(c, false);
		net_conn_puts(c, "OK resumed\r\n");
	}
	for (int i = 0; i < 1000; i++) {
		struct span line;
		int rc = net_conn_read_line(c, TP_LINE_MAX, &line, NULL);

		if (rc == NET_AGAIN)
			return;
		if (rc == NET_TOOLONG) {
			net_conn_puts(c, "ERR line too long\r\n");
			net_conn_skip_line(c);
			continue;
		}
		if (rc != NET_OK) {
			net_conn_close(c);
			return;
		}
		if (!tp_command(c, s, line))
			return;
	}
}

static void
tp_end(struct net_conn *c, void *sess)
{
	free(sess);
}

static const struct net_proto tp_proto = {
	.name = "testproto",
	.start = tp_start,
	.event = tp_event,
	.end = tp_end,
};

static int
num_arg(const char *s, uint64_t max, unsigned *out)
{
	uint64_t v;

	if (span_u64(span_of_cstr(s), max, &v) == -1)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: testproto_server [-p port] [-w workers] "
	    "[-i idle_ms] [-m max_per_ip] [-G grace_ms] [-o out_max] "
	    "[-W write_timeout_ms] "
	    "[-c cert -k key [-g] [-t]]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	unsigned port = 0, workers = 4, grace = 3000, max_per_ip = 0;
	unsigned out_max = 0, write_ms = 0;
	const char *cert = NULL, *key = NULL;
	bool gen = false, implicit = false;
	struct tp_conf conf = { NULL, 0 };
	struct net_reactor *r = NULL;
	struct buf err;
	sigset_t set;
	uint16_t bound = 0;
	int opt, sig = 0, rc = 1;

	while ((opt = getopt(argc, argv, "p:w:i:m:G:o:W:c:k:gt")) != -1) {
		switch (opt) {
		case 'p':
			if (num_arg(optarg, 65535, &port) == -1)
				usage();
			break;
		case 'w':
			if (num_arg(optarg, 1024, &workers) == -1)
				usage();
			break;
		case 'i':
			if (num_arg(optarg, 86400000, &conf.idle_ms) == -1)
				usage();
			break;
		case 'm':
			if (num_arg(optarg, 1000000, &max_per_ip) == -1)
				usage();
			break;
		case 'G':
			if (num_arg(optarg, 600000, &grace) == -1)
				usage();
			break;
		case 'o':
			if (num_arg(optarg, 1U << 30, &out_max) == -1)
				usage();
			break;
		case 'W':
			if (num_arg(optarg, 600000, &write_ms) == -1)
				usage();
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'g':
			gen = true;
			break;
		case 't':
			implicit = true;
			break;
		default:
			usage();
		}
	}
	if ((cert == NULL) != (key == NULL) || ((gen || implicit) &&
	    cert == NULL))
		usage();

	log_init();
	buf_init(&err, 4096);
	/* Threads inherit the mask: only main sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (gen && tls_selfsigned_generate("localhost", cert, key, &err) == -1)
		goto out;
	if (cert != NULL) {
		struct tls_keycert kc = { cert, key };
		struct tls_server_params tp = { &kc, 1, NULL, TLS_SNI_STRICT };

		conf.tls = tls_server_new(&tp, &err);
		if (conf.tls == NULL)
			goto out;
	}
	{
		struct net_params np = { .workers = workers,
			.write_timeout_ms = write_ms, .out_max = out_max };
		struct net_listen_params lp = {
			.name = "test",
			.ip = "127.0.0.1",
			.port = (uint16_t)port,
			.proto = &tp_proto,
			.proto_arg = &conf,
			.max_per_ip = max_per_ip,
			.implicit_tls = implicit ? conf.tls : NULL,
			.reject_msg = "BYE too many connections\r\n",
		};

		r = net_start(&np, &err);
		if (r == NULL || net_listen(r, &lp, &bound, &err) == -1)
			goto out;
	}
	printf("port %u\n", (unsigned)bound);
	fflush(stdout);
	if (sigwait(&set, &sig) != 0)
		goto out;
	net_stop(r, grace);
	rc = 0;
out:
	if (buf_failed(&err) || err.len > 0)
		fprintf(stderr, "testproto_server: %s\n", err.data);
	if (r != NULL) {
		net_stop(r, 0);
		net_free(r);
	}
	tls_server_free(conf.tls);
	buf_release(&err);
	log_shutdown();
	return rc;
}
