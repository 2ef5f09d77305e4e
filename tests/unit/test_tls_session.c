/*
 * test_tls_session.c: src/tls over a socketpair: MinVersion parsing,
 * self-signed generation, SNI selection in strict and fallback mode,
 * client PKIX verification failures and their reasons, TLS 1.2/1.3 and
 * channel binding (RFC 9266 tls-exporter, RFC 5929 tls-unique) equal on
 * both ends, and a non-blocking server next to a blocking client, also
 * with bytes read before the server session existed. An SNI
 * name too long to hold fails in strict mode; a verifying client without
 * a host name is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "tls/tls.h"
#include "lib/banned.h"

static char tmpdir[64];
static char cert_a[128], key_a[128], cert_b[128], key_b[128];

static int
setup(void **state)
{
	struct buf err;

	log_init();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tls_XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cert_a, sizeof(cert_a), "%s/a.crt", tmpdir);
	snprintf(key_a, sizeof(key_a), "%s/a.key", tmpdir);
	snprintf(cert_b, sizeof(cert_b), "%s/b.crt", tmpdir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", tmpdir);
	buf_init(&err, 1024);
	if (tls_selfsigned_generate("localhost", cert_a, key_a, &err) == -1 ||
	    tls_selfsigned_generate("other.example", cert_b, key_b, &err) ==
	    -1) {
		print_error("generate: %s\n", err.data);
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
	const char *files[] = { cert_a, key_a, cert_b, key_b };

	for (size_t i = 0; i < ARRAY_LEN(files); i++)
		unlink(files[i]);
	rmdir(tmpdir);
	log_shutdown();
	(void)state;
	return 0;
}

static void
test_tls_min_version(void **state)
{
	static const struct {
		const char *in;
		int rc;
		enum tls_version want;
	} cases[] = {
		{ NULL, 0, TLS_VERSION_1_2 },
		{ "", 0, TLS_VERSION_1_2 },
		{ "TLSv1.2", 0, TLS_VERSION_1_2 },
		{ "TLSv1.3", 0, TLS_VERSION_1_3 },
		{ "TLSv1.0", -1, 0 },
		{ "TLSv1.1", -1, 0 },
		{ "tlsv1.2", -1, 0 },
		{ "TLSv1.2 ", -1, 0 },
		{ "TLSv1.4", -1, 0 },
		{ "SSLv3", -1, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		enum tls_version v = TLS_VERSION_1_2;
		const char *why = NULL;
		int rc = tls_parse_min_version(cases[i].in, &v, &why);

		if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
			fail_msg("case %zu: rc %d", i, rc);
		if (rc == -1 && (why == NULL ||
		    strstr(why, "TLS.MinVersion") == NULL))
			fail_msg("case %zu: reason does not name the field", i);
	}
	(void)state;
}

struct client_run {
	int fd;
	struct tls_client_params p;
	struct tls_session *s;
	struct buf err;
};

static void *
client_main(void *arg)
{
	struct client_run *cr = arg;

	cr->s = tls_client_connect(cr->fd, &cr->p, &cr->err);
	if (cr->s == NULL)
		shutdown(cr->fd, SHUT_RDWR); /* the server sees the end */
	return NULL;
}

/* Drive the server side until done; TLS_OK or TLS_ERR. */
static int
server_handshake(struct tls_session *s, int fd, const char **why)
{
	int64_t end = time_mono_ms() + 5000;

	while (time_mono_ms() < end) {
		int rc = tls_session_handshake(s, why);
		struct pollfd pfd = { fd, 0, 0 };

		if (rc != TLS_AGAIN)
			return rc;
		pfd.events = tls_session_wants_write(s) ? POLLOUT : POLLIN;
		(void)poll(&pfd, 1, 100);
	}
	*why = "timeout";
	return TLS_ERR;
}

/* 255 bytes: longer than any DNS name (TLS_NAME_MAX), within what the
 * gnutls client sends. */
#define L60 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx."
#define LONG_NAME L60 L60 L60 L60 "abc.example.tst"

static const struct {
	const char *name;
	int ncerts;              /* 1: a (localhost), 2: a and b */
	enum tls_sni_mode sni;
	const char *host;
	const char *ca;          /* "a", "b" or NULL */
	bool no_verify;
	const char *max_version;
	bool want_ok;
	const char *want_err;    /* substring of the client error */
	const char *want_sni;    /* as seen by the server */
} hs_cases[] = {
	{ "verified", 1, TLS_SNI_STRICT, "localhost", "a", false, NULL, true,
	    NULL, "localhost" },
	{ "sni case", 1, TLS_SNI_STRICT, "LocalHost", "a", false, NULL, true,
	    NULL, "LocalHost" },
	{ "name mismatch", 1, TLS_SNI_FALLBACK, "example.org", "a", false,
	    NULL, false, "verification failed", NULL },
	{ "unknown issuer", 1, TLS_SNI_STRICT, "localhost", NULL, false, NULL,
	    false, "verification failed", NULL },
	{ "wrong ca", 1, TLS_SNI_STRICT, "localhost", "b", false, NULL, false,
	    "verification failed", NULL },
	{ "strict unknown sni", 1, TLS_SNI_STRICT, "unknown.example", NULL,
	    true, NULL, false, "", NULL },
	{ "fallback unknown sni", 1, TLS_SNI_FALLBACK, "unknown.example", NULL,
	    true, NULL, true, NULL, "unknown.example" },
	{ "no sni first cert", 2, TLS_SNI_STRICT, NULL, NULL, true, NULL, true,
	    NULL, "" },
	{ "sni second cert", 2, TLS_SNI_STRICT, "other.example", "b", false,
	    NULL, true, NULL, "other.example" },
	{ "sni first of two", 2, TLS_SNI_STRICT, "localhost", "a", false, NULL,
	    true, NULL, "localhost" },
	{ "tls 1.2", 1, TLS_SNI_STRICT, "localhost", "a", false, "TLSv1.2",
	    true, NULL, "localhost" },
	/* Not silently the default certificate where names must match. */
	{ "strict overlong sni", 1, TLS_SNI_STRICT, LONG_NAME, NULL, true,
	    NULL, false, "", NULL },
	{ "fallback overlong sni", 1, TLS_SNI_FALLBACK, LONG_NAME, NULL, true,
	    NULL, true, NULL, "" },
	/* RFC 6125 6: a chain verified without a name proves nothing. */
	{ "verify without host", 1, TLS_SNI_STRICT, NULL, "a", false, NULL,
	    false, "needs a host name", NULL },
	{ "verify with empty host", 1, TLS_SNI_STRICT, "", "a", false, NULL,
	    false, "needs a host name", NULL },
};

static void
check_binding(size_t i, struct tls_session *srv, struct tls_session *cli)
{
	const char *good = tls_session_is_tls13(srv) ? "tls-exporter" :
	    "tls-unique";
	const char *bad = tls_session_is_tls13(srv) ? "tls-unique" :
	    "tls-exporter";
	const char *why = NULL;
	struct buf a, b;

	buf_init(&a, 1024);
	buf_init(&b, 1024);
	if (tls_channel_binding(srv, good, &a, &why) == -1 ||
	    tls_channel_binding(cli, good, &b, &why) == -1)
		fail_msg("case %zu: %s: %s", i, good, why);
	if (a.len == 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		fail_msg("case %zu: channel binding differs", i);
	if (tls_channel_binding(srv, bad, &a, &why) != -1)
		fail_msg("case %zu: %s allowed", i, bad);
	if (tls_channel_binding(srv, "tls-server-end-point-x", &a, &why) != -1)
		fail_msg("case %zu: unknown type allowed", i);
	buf_release(&a);
	buf_release(&b);
}

static void
check_data(size_t i, struct tls_session *srv, int sfd,
    struct tls_session *cli)
{
	char got[16];
	size_t n = 0, sent = 0;
	int64_t end = time_mono_ms() + 5000;
	int rc;

	if (tls_session_send(cli, "ping", 4, &sent) != TLS_OK || sent != 4)
		fail_msg("case %zu: client send", i);
	do {
		struct pollfd pfd = { sfd, POLLIN, 0 };

		rc = tls_session_recv(srv, got, sizeof(got), &n);
		if (rc == TLS_AGAIN)
			(void)poll(&pfd, 1, 100);
	} while (rc == TLS_AGAIN && time_mono_ms() < end);
	if (rc != TLS_OK || n != 4 || memcmp(got, "ping", 4) != 0)
		fail_msg("case %zu: server recv rc %d n %zu", i, rc, n);
	tls_session_bye(cli);
	do {
		struct pollfd pfd = { sfd, POLLIN, 0 };

		rc = tls_session_recv(srv, got, sizeof(got), &n);
		if (rc == TLS_AGAIN)
			(void)poll(&pfd, 1, 100);
	} while (rc == TLS_AGAIN && time_mono_ms() < end);
	if (rc != TLS_EOF)
		fail_msg("case %zu: want EOF after bye, rc %d", i, rc);
}

static void
test_tls_handshakes(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(hs_cases); i++) {
		struct tls_keycert kc[2] = { { cert_a, key_a },
			{ cert_b, key_b } };
		struct tls_server_params sp = { kc, (size_t)hs_cases[i].ncerts,
			NULL, hs_cases[i].sni };
		const char *ca = NULL, *why = NULL;
		struct client_run cr;
		struct tls_server *srv;
		struct tls_session *ss;
		struct buf err;
		pthread_t th;
		int sv[2], rc;

		buf_init(&err, 1024);
		srv = tls_server_new(&sp, &err);
		if (srv == NULL)
			fail_msg("case %s: server: %s", hs_cases[i].name, err.data);
		buf_release(&err);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0, sv), 0);
		assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
		memset(&cr, 0, sizeof(cr));
		cr.fd = sv[1];
		if (hs_cases[i].ca != NULL)
			ca = strcmp(hs_cases[i].ca, "a") == 0 ? cert_a : cert_b;
		cr.p.host = hs_cases[i].host;
		cr.p.ca_files = ca != NULL ? &ca : NULL;
		cr.p.nca_files = ca != NULL ? 1 : 0;
		cr.p.no_system_trust = true;
		cr.p.no_verify = hs_cases[i].no_verify;
		cr.p.max_version = hs_cases[i].max_version;
		cr.p.timeout_ms = 5000;
		buf_init(&cr.err, 1024);
		ss = tls_session_server(srv, sv[0], &why);
		assert_non_null(ss);
		assert_int_equal(pthread_create(&th, NULL, client_main, &cr), 0);
		rc = server_handshake(ss, sv[0], &why);
		if (rc != TLS_OK)
			shutdown(sv[0], SHUT_RDWR); /* unblock the client */
		pthread_join(th, NULL);
		if (hs_cases[i].want_ok) {
			if (rc != TLS_OK || cr.s == NULL)
				fail_msg("case %s: server rc %d (%s) client %s",
				    hs_cases[i].name, rc, why ? why : "",
				    cr.err.data);
			if (strcmp(tls_session_sni(ss), hs_cases[i].want_sni))
				fail_msg("case %s: sni %s", hs_cases[i].name,
				    tls_session_sni(ss));
			check_binding(i, ss, cr.s);
			check_data(i, ss, sv[0], cr.s);
			if (strcmp(tls_session_version(ss),
			    hs_cases[i].max_version ? "TLS1.2" : "TLS1.3"))
				fail_msg("case %s: version %s", hs_cases[i].name,
				    tls_session_version(ss));
		} else {
			if (cr.s != NULL)
				fail_msg("case %s: client succeeded",
				    hs_cases[i].name);
			if (strstr(cr.err.data, hs_cases[i].want_err) == NULL)
				fail_msg("case %s: error \"%s\"", hs_cases[i].name,
				    cr.err.data);
		}
		tls_session_free(cr.s);
		tls_session_free(ss);
		buf_release(&cr.err);
		close(sv[0]);
		close(sv[1]);
		tls_server_free(srv);
	}
	(void)state;
}

/* Bytes read off the socket before the session existed (a ClientHello
 * pipelined after STARTTLS) are taken by the handshake first: none, a
 * part of the record header, or all that arrived; TLS 1.3 and 1.2. */
static void
test_tls_preread(void **state)
{
	static const size_t sizes[] = { 0, 3, 65536 };
	struct tls_keycert kc = { cert_a, key_a };
	struct tls_server_params sp = { &kc, 1, NULL, TLS_SNI_STRICT };
	const char *ca = cert_a;

	for (size_t i = 0; i < 2 * ARRAY_LEN(sizes); i++) {
		static char pre[65536];
		const char *why = NULL;
		struct client_run cr;
		struct tls_server *srv;
		struct tls_session *ss;
		struct pollfd pfd;
		struct buf err;
		pthread_t th;
		ssize_t n = 0;
		int sv[2], rc;

		buf_init(&err, 1024);
		srv = tls_server_new(&sp, &err);
		assert_non_null(srv);
		buf_release(&err);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0, sv), 0);
		assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
		memset(&cr, 0, sizeof(cr));
		cr.fd = sv[1];
		cr.p.host = "localhost";
		cr.p.ca_files = &ca;
		cr.p.nca_files = 1;
		cr.p.no_system_trust = true;
		cr.p.max_version = i >= ARRAY_LEN(sizes) ? "TLSv1.2" : NULL;
		cr.p.timeout_ms = 5000;
		buf_init(&cr.err, 1024);
		assert_int_equal(pthread_create(&th, NULL, client_main, &cr), 0);
		if (sizes[i % ARRAY_LEN(sizes)] > 0) {
			pfd = (struct pollfd){ sv[0], POLLIN, 0 };
			assert_int_equal(poll(&pfd, 1, 5000), 1);
			n = recv(sv[0], pre, sizes[i % ARRAY_LEN(sizes)], 0);
			assert_true(n > 0);
		}
		ss = tls_session_server_preread(srv, sv[0], pre, (size_t)n,
		    &why);
		assert_non_null(ss);
		rc = server_handshake(ss, sv[0], &why);
		if (rc != TLS_OK)
			shutdown(sv[0], SHUT_RDWR);
		pthread_join(th, NULL);
		if (rc != TLS_OK || cr.s == NULL)
			fail_msg("preread %zu: server %d (%s) client %s", i, rc,
			    why ? why : "", cr.err.data);
		check_binding(i, ss, cr.s);
		check_data(i, ss, sv[0], cr.s);
		tls_session_free(cr.s);
		tls_session_free(ss);
		buf_release(&cr.err);
		close(sv[0]);
		close(sv[1]);
		tls_server_free(srv);
	}
	(void)state;
}

/* A send that the socket refused leaves output pending in the session
 * (the runtime then waits for EPOLLOUT even with its own buffer empty);
 * once the peer read and the send completed, nothing is pending. */
static void
test_tls_write_pending(void **state)
{
	struct tls_keycert kc = { cert_a, key_a };
	struct tls_server_params sp = { &kc, 1, NULL, TLS_SNI_STRICT };
	static char chunk[16384], sink[65536];
	const char *why = NULL;
	struct client_run cr;
	struct tls_server *srv;
	struct tls_session *ss;
	struct buf err;
	pthread_t th;
	size_t sent = 0, got = 0;
	int sv[2], rc, sndbuf = 4096;
	int64_t end;

	buf_init(&err, 1024);
	srv = tls_server_new(&sp, &err);
	assert_non_null(srv);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	    0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	memset(&cr, 0, sizeof(cr));
	cr.fd = sv[1];
	cr.p.host = "localhost";
	cr.p.no_verify = true;
	cr.p.timeout_ms = 5000;
	buf_init(&cr.err, 1024);
	ss = tls_session_server(srv, sv[0], &why);
	assert_non_null(ss);
	assert_int_equal(pthread_create(&th, NULL, client_main, &cr), 0);
	rc = server_handshake(ss, sv[0], &why);
	pthread_join(th, NULL);
	if (rc != TLS_OK || cr.s == NULL)
		fail_msg("handshake: %s %s", why ? why : "", cr.err.data);
	assert_false(tls_session_write_pending(ss));
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	memset(chunk, 'w', sizeof(chunk));
	for (int i = 0; i < 1000; i++) {
		rc = tls_session_send(ss, chunk, sizeof(chunk), &sent);
		if (rc != TLS_OK)
			break;
	}
	assert_int_equal(rc, TLS_AGAIN);
	assert_true(tls_session_write_pending(ss));
	/* The client reads; the server repeats the send until it is done. */
	end = time_mono_ms() + 5000;
	do {
		(void)tls_session_recv(cr.s, sink, sizeof(sink), &got);
		rc = tls_session_send(ss, chunk, sizeof(chunk), &sent);
	} while (rc == TLS_AGAIN && time_mono_ms() < end);
	assert_int_equal(rc, TLS_OK);
	assert_false(tls_session_write_pending(ss));
	tls_session_free(cr.s);
	tls_session_free(ss);
	buf_release(&cr.err);
	buf_release(&err);
	close(sv[0]);
	close(sv[1]);
	tls_server_free(srv);
	(void)state;
}

static void
test_tls_server_errors(void **state)
{
	struct tls_keycert missing = { "/nonexistent/c.pem", "/nonexistent/k.pem" };
	struct tls_keycert swapped = { key_a, cert_a };
	struct tls_keycert mixed = { cert_a, key_b };
	static const char *const versions[] = { "TLSv1.0", "TLSv1.1" };
	struct tls_server_params p = { &missing, 1, NULL, TLS_SNI_STRICT };
	struct buf err;

	buf_init(&err, 1024);
	assert_null(tls_server_new(&p, &err));
	assert_non_null(strstr(err.data, "/nonexistent/c.pem"));
	buf_reset(&err);
	p.keycerts = &swapped;
	assert_null(tls_server_new(&p, &err));
	buf_reset(&err);
	p.keycerts = &mixed;
	assert_null(tls_server_new(&p, &err));
	buf_reset(&err);
	p.nkeycerts = 0;
	assert_null(tls_server_new(&p, &err));
	p.keycerts = (struct tls_keycert[]){ { cert_a, key_a } };
	p.nkeycerts = 1;
	for (size_t i = 0; i < ARRAY_LEN(versions); i++) {
		buf_reset(&err);
		p.min_version = versions[i];
		assert_null(tls_server_new(&p, &err));
		assert_non_null(strstr(err.data, "TLS.MinVersion"));
	}
	buf_release(&err);
	tls_server_free(NULL);
	tls_session_free(NULL);
	(void)state;
}

static void
test_tls_selfsigned_bad_path(void **state)
{
	struct buf err;

	buf_init(&err, 1024);
	assert_int_equal(tls_selfsigned_generate("localhost",
	    "/nonexistent/dir/c.pem", "/nonexistent/dir/k.pem", &err), -1);
	assert_true(err.len > 0);
	buf_release(&err);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_min_version),
		cmocka_unit_test(test_tls_handshakes),
		cmocka_unit_test(test_tls_preread),
		cmocka_unit_test(test_tls_write_pending),
		cmocka_unit_test(test_tls_server_errors),
		cmocka_unit_test(test_tls_selfsigned_bad_path),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
