/*
 * test_smtp_client.c: the queue's SMTP client (src/smtp/smtp_client.c):
 * reply parsing (multi-line, enhanced codes, bad codes and separators,
 * inconsistent codes, control characters, a byte-at-a-time feed), EHLO
 * extension and LIMITS parsing (RFC 9422), and whole transactions against
 * a scripted peer on a socketpair: PIPELINING, per-recipient results,
 * 452 "too many recipients" retried after RSET (spec/queue.md 5.6),
 * RSET pipelined on a reused connection (spec/queue.md 7),
 * dot-stuffing, bare LF refused, HELO fallback, 5xx greeting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/span.h"
#include "smtp/smtp_client.h"
#include "lib/banned.h"

/* ---- replies ---- */

static const struct {
	const char *lines[4];
	bool ecodes;
	int want_rc;        /* of the last line fed */
	int want_code;
	const char *want_ecode;
	const char *want_text;
} reply_cases[] = {
	{ { "250 ok" }, false, 1, 250, "", "ok" },
	{ { "250" }, false, 1, 250, "", "" },
	{ { "250-first", "250-second", "250 third" }, false, 1, 250, "",
	    "first second third" },
	{ { "250-first", "250-second" }, false, 0, 250, "", "first second" },
	{ { "550 5.1.1 no such user" }, true, 1, 550, "5.1.1", "no such user" },
	/* not announced: the code stays in the text */
	{ { "550 5.1.1 no such user" }, false, 1, 550, "",
	    "5.1.1 no such user" },
	/* class digit differs from the reply's: not an enhanced code */
	{ { "550 4.1.1 odd" }, true, 1, 550, "", "4.1.1 odd" },
	{ { "451 4.7.30 x" }, true, 1, 451, "4.7.30", "x" },
	{ { "250 2.0.0" }, true, 1, 250, "2.0.0", "" },
	{ { "550 5.1234.1 long subject" }, true, 1, 550, "",
	    "5.1234.1 long subject" },
	{ { "550 5.1.1x" }, true, 1, 550, "", "5.1.1x" },
	{ { "554-5.7.1 first", "554-5.7.1 second", "554 5.7.1 third" }, true, 1,
	    554, "5.7.1", "first 5.7.1 second 5.7.1 third" },
	/* malformed */
	{ { "" }, false, -1, 0, "", "" },
	{ { "25" }, false, -1, 0, "", "" },
	{ { "abc def" }, false, -1, 0, "", "" },
	{ { "150 one hundred" }, false, -1, 0, "", "" },
	{ { "650 too high" }, false, -1, 0, "", "" },
	{ { "2x0 x" }, false, -1, 0, "", "" },
	{ { "250_ok" }, false, -1, 0, "", "" },
	{ { "250-a", "251 b" }, false, -1, 250, "", "a" },
	{ { "250-a", "550 b" }, false, -1, 250, "", "a" },
};

static void
test_reply_feed(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(reply_cases); i++) {
		struct smtp_client_reply r;
		int rc = 0;
		const char *why = NULL;

		smtp_client_reply_init(&r);
		for (size_t k = 0; k < 4 && reply_cases[i].lines[k] != NULL;
		     k++) {
			rc = smtp_client_reply_feed(&r,
			    span_of_cstr(reply_cases[i].lines[k]),
			    reply_cases[i].ecodes, &why);
			if (rc != 0)
				break;
		}
		if (rc != reply_cases[i].want_rc)
			fail_msg("case %zu: rc %d want %d (%s)", i, rc,
			    reply_cases[i].want_rc, why ? why : "");
		if (rc == -1 && why == NULL)
			fail_msg("case %zu: error without reason", i);
		if (r.code != reply_cases[i].want_code ||
		    strcmp(r.ecode, reply_cases[i].want_ecode) != 0 ||
		    strcmp(r.text.data, reply_cases[i].want_text) != 0)
			fail_msg("case %zu: code %d ecode '%s' text '%s'", i,
			    r.code, r.ecode, r.text.data);
		smtp_client_reply_release(&r);
	}
	(void)state;
}

/* Control characters and NUL inside a line are refused. */
static void
test_reply_hostile(void **state)
{
	static const char bad[][8] = { "250 a\rb", "250 a\nb" };
	struct smtp_client_reply r;
	const char *why = NULL;
	char nul[] = "250 a\0b";

	smtp_client_reply_init(&r);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		smtp_client_reply_reset(&r);
		if (smtp_client_reply_feed(&r, span_of_cstr(bad[i]), false,
			&why) != -1)
			fail_msg("case %zu accepted", i);
	}
	smtp_client_reply_reset(&r);
	assert_int_equal(smtp_client_reply_feed(&r, span_of(nul, 7), false,
			     &why),
	    -1);
	/* Too many lines: refused, not grown without bound. */
	smtp_client_reply_reset(&r);
	for (size_t i = 0; i < SMTP_CLIENT_REPLY_LINES; i++)
		assert_int_equal(smtp_client_reply_feed(&r,
				     span_of_cstr("250-x"), false, &why),
		    0);
	assert_int_equal(smtp_client_reply_feed(&r, span_of_cstr("250 x"),
			     false, &why),
	    -1);
	smtp_client_reply_release(&r);
	(void)state;
}

static const struct {
	const char *in;
	int class;
	size_t want_len;
	const char *want;
} ecode_cases[] = {
	{ "5.1.1 user unknown", 5, 6, "5.1.1" },
	{ "5.1.1", 5, 5, "5.1.1" },
	{ "2.0.0 ok", 2, 6, "2.0.0" },
	{ "4.999.999 x", 4, 10, "4.999.999" },
	{ "5.1.1 x", 4, 0, NULL },
	{ "3.1.1 x", 3, 0, NULL },
	{ "5.1 x", 5, 0, NULL },
	{ "5..1 x", 5, 0, NULL },
	{ "5.1.1000 x", 5, 0, NULL },
	{ "5.1.a x", 5, 0, NULL },
	{ "", 5, 0, NULL },
};

static void
test_parse_ecode(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(ecode_cases); i++) {
		char out[16] = "";
		size_t n = smtp_client_parse_ecode(span_of_cstr(ecode_cases[i].in),
		    ecode_cases[i].class, out);

		if (n != ecode_cases[i].want_len ||
		    (n > 0 && strcmp(out, ecode_cases[i].want) != 0))
			fail_msg("case %zu: len %zu out '%s'", i, n, out);
	}
	(void)state;
}

/* Feeding a reply line by line from a stream cut at every byte gives the
 * same reply as whole lines. */
static void
test_reply_bytewise(void **state)
{
	const char *stream = "250-mx.example.org hi\r\n250-PIPELINING\r\n"
			     "250-SIZE 1000\r\n250 ENHANCEDSTATUSCODES\r\n";
	struct smtp_client_reply whole, parts;
	struct buf line;
	const char *why = NULL;
	int rc = 0;

	smtp_client_reply_init(&whole);
	smtp_client_reply_init(&parts);
	buf_init(&line, 4096);
	for (const char *p = stream; *p != '\0';) {
		const char *nl = strstr(p, "\r\n");

		rc = smtp_client_reply_feed(&whole,
		    span_of(p, (size_t)(nl - p)), true, &why);
		p = nl + 2;
	}
	assert_int_equal(rc, 1);
	for (const char *p = stream; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p != '\n') {
			buf_addc(&line, *p);
			continue;
		}
		rc = smtp_client_reply_feed(&parts, span_of_buf(&line), true,
		    &why);
		buf_reset(&line);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(whole.code, parts.code);
	assert_int_equal(whole.nlines, 4);
	assert_string_equal(whole.lines.data, parts.lines.data);
	assert_string_equal(whole.text.data, parts.text.data);
	smtp_client_reply_release(&whole);
	smtp_client_reply_release(&parts);
	buf_release(&line);
	(void)state;
}

/* ---- EHLO ---- */

static void
ehlo_of(const char *const *lines, size_t n, struct smtp_client_ext *ext)
{
	struct smtp_client_reply r;
	const char *why = NULL;

	smtp_client_reply_init(&r);
	for (size_t i = 0; i < n; i++)
		(void)smtp_client_reply_feed(&r, span_of_cstr(lines[i]), false,
		    &why);
	smtp_client_parse_ehlo(&r, ext);
	smtp_client_reply_release(&r);
}

static void
test_parse_ehlo(void **state)
{
	static const char *const l1[] = {
		"250-mx.example.org greets you",
		"250-pipelining",
		"250-SIZE 10240000",
		"250-8BITMIME",
		"250-STARTTLS",
		"250-ENHANCEDSTATUSCODES",
		"250-SMTPUTF8 some params",
		"250-REQUIRETLS",
		"250-AUTH PLAIN SCRAM-SHA-256",
		"250-AUTH=LOGIN",
		"250 LIMITS RCPTMAX=5 MAILMAX=3 RCPTDOMAINMAX=2",
	};
	static const char *const l2[] = {
		"250-mx.example.org STARTTLS", /* first line: not an extension */
		"250 SIZE",
	};
	struct smtp_client_ext e = { 0 };

	ehlo_of(l1, ARRAY_LEN(l1), &e);
	assert_true(e.pipelining && e.size_announced && e.eightbit &&
	    e.starttls && e.ecodes && e.smtputf8 && e.requiretls);
	assert_int_equal(e.size, 10240000);
	assert_non_null(e.auth);
	assert_string_equal(e.auth, "PLAIN SCRAM-SHA-256");
	assert_int_equal(e.rcptmax, 5);
	assert_int_equal(e.mailmax, 3);
	assert_int_equal(e.rcptdomainmax, 2);
	ehlo_of(l2, ARRAY_LEN(l2), &e);
	assert_false(e.starttls || e.pipelining || e.requiretls);
	assert_true(e.size_announced);
	assert_int_equal(e.size, 0);
	assert_null(e.auth);
	free(e.auth);
	(void)state;
}

static const struct {
	const char *in;
	uint64_t mail, rcpt, rdom;
} limits_cases[] = {
	{ "RCPTMAX=10", 0, 10, 0 },
	{ "rcptmax=10 mailmax=2", 2, 10, 0 },
	{ "RCPTMAX=10 RCPTMAX=20", 0, 10, 0 },     /* duplicate ignored */
	{ "RCPTMAX=0 MAILMAX=4", 4, 0, 0 },        /* bad value skipped */
	{ "RCPTMAX=1000000 MAILMAX=4", 4, 0, 0 },  /* > 6 digits */
	{ "RCPTMAX=999999", 0, 999999, 0 },
	{ "RCPTMAX=x1 MAILMAX=4", 4, 0, 0 },
	{ "RCPTMAX MAILMAX=4", 0, 0, 0 },          /* syntax: all ignored */
	{ "RCPTMAX= MAILMAX=4", 0, 0, 0 },
	{ "=5", 0, 0, 0 },
	{ "FUTURE=1 RCPTDOMAINMAX=3", 0, 0, 3 },
	{ "", 0, 0, 0 },
};

static void
test_parse_limits(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(limits_cases); i++) {
		struct smtp_client_ext e = { 0 };

		smtp_client_parse_limits(span_of_cstr(limits_cases[i].in), &e);
		if (e.mailmax != limits_cases[i].mail ||
		    e.rcptmax != limits_cases[i].rcpt ||
		    e.rcptdomainmax != limits_cases[i].rdom)
			fail_msg("case %zu: mail %llu rcpt %llu rdom %llu", i,
			    (unsigned long long)e.mailmax,
			    (unsigned long long)e.rcptmax,
			    (unsigned long long)e.rcptdomainmax);
	}
	(void)state;
}

/* ---- transactions against a scripted peer ---- */

/* One scripted exchange: a command starting with cmd gets reply (lines
 * separated by "\n"). Entries are used once, in any order, first unused
 * match wins. "." answers the end of the data. */
struct step {
	const char *cmd;
	const char *reply;
	bool used;
};

struct peer {
	int fd;
	const char *greeting;
	struct step *script;
	size_t nscript;
	struct buf log;  /* commands received, one per line; "~" where the
			  * peer waited for more commands */
	struct buf data; /* message data as on the wire, without "." */
};

static void
peer_send(int fd, const char *reply)
{
	struct buf b;

	buf_init(&b, 65536);
	for (const char *p = reply; *p != '\0'; p++) {
		if (*p == '\n')
			buf_adds(&b, "\r\n");
		else
			buf_addc(&b, *p);
	}
	buf_adds(&b, "\r\n");
	if (write(fd, b.data, b.len) != (ssize_t)b.len)
		fail_msg("peer write");
	buf_release(&b);
}

static const char *
peer_reply(struct peer *p, const char *line)
{
	for (size_t i = 0; i < p->nscript; i++)
		if (!p->script[i].used &&
		    strncasecmp(line, p->script[i].cmd,
			strlen(p->script[i].cmd)) == 0) {
			p->script[i].used = true;
			return p->script[i].reply;
		}
	return "500 5.5.1 unexpected command";
}

static void *
peer_main(void *arg)
{
	struct peer *p = arg;
	static __thread char rbuf[65536];
	size_t rlen = 0;
	bool in_data = false;

	if (p->greeting != NULL)
		peer_send(p->fd, p->greeting);
	for (;;) {
		char *nl;
		ssize_t n;

		while ((nl = memchr(rbuf, '\n', rlen)) != NULL) {
			size_t len = (size_t)(nl - rbuf) + 1;
			const char *reply;
			char line[4096];
			size_t ll = len < sizeof(line) ? len : sizeof(line) - 1;

			memcpy(line, rbuf, ll);
			line[ll] = '\0';
			memmove(rbuf, rbuf + len, rlen - len);
			rlen -= len;
			if (in_data && strcmp(line, ".\r\n") != 0) {
				buf_adds(&p->data, line);
				continue;
			}
			in_data = false;
			line[strcspn(line, "\r\n")] = '\0';
			if (strncasecmp(line, "DATA", 4) == 0)
				buf_reset(&p->data);
			buf_addf(&p->log, "%s\n", line);
			reply = peer_reply(p, line);
			if (strncasecmp(line, "DATA", 4) == 0 &&
			    strncmp(reply, "354", 3) == 0)
				in_data = true;
			peer_send(p->fd, reply);
			if (strncasecmp(line, "QUIT", 4) == 0)
				return NULL;
		}
		if (!in_data)
			buf_adds(&p->log, "~\n");
		n = read(p->fd, rbuf + rlen, sizeof(rbuf) - rlen);
		if (n <= 0)
			return NULL;
		rlen += (size_t)n;
	}
}

struct run {
	struct peer peer;
	pthread_t t;
	struct smtp_client *c;
	struct smtp_client_result res, rr[4];
	int rc;
};

/* Start a peer with script, open a client on the other end. */
static void
run_open(struct run *r, const char *greeting, struct step *script,
    size_t nscript)
{
	int sv[2];
	static const struct smtp_client_params params = {
		.ehlo = "client.example.org",
		.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC,
		.io_ms = 5000,
	};

	memset(r, 0, sizeof(*r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	    0);
	r->peer.fd = sv[1];
	r->peer.greeting = greeting;
	r->peer.script = script;
	r->peer.nscript = nscript;
	buf_init(&r->peer.log, 1 << 20);
	buf_init(&r->peer.data, 1 << 20);
	smtp_client_result_init(&r->res);
	for (size_t i = 0; i < ARRAY_LEN(r->rr); i++)
		smtp_client_result_init(&r->rr[i]);
	assert_int_equal(pthread_create(&r->t, NULL, peer_main, &r->peer), 0);
	r->c = smtp_client_open(sv[0], &params, &r->res);
}

static void
run_deliver(struct run *r, const char *const *rcpts, size_t n,
    const char *msg, bool has_8bit)
{
	char path[] = "/tmp/test-smtp-client-XXXXXX";
	int fd = mkstemp(path);
	struct smtp_client_tx tx = { 0 };

	assert_true(fd != -1);
	unlink(path);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	tx.mailfrom = "sender@example.org";
	tx.rcpts = rcpts;
	tx.nrcpts = n;
	tx.prefix = "X-Prefix: 1\r\n";
	tx.prefix_len = strlen(tx.prefix);
	tx.msg_fd = fd;
	tx.size = (int64_t)(strlen(msg) + tx.prefix_len);
	tx.has_8bit = has_8bit;
	r->rc = smtp_client_deliver(r->c, &tx, &r->res, r->rr);
	close(fd);
}

static void
run_close(struct run *r)
{
	smtp_client_close(r->c);
	pthread_join(r->t, NULL);
	close(r->peer.fd);
	smtp_client_result_release(&r->res);
	for (size_t i = 0; i < ARRAY_LEN(r->rr); i++)
		smtp_client_result_release(&r->rr[i]);
}

/* After the checks on what the peer saw. */
static void
run_free(struct run *r)
{
	buf_release(&r->peer.log);
	buf_release(&r->peer.data);
}

#define EHLO_PIPE "250-mx.example.org\n250-PIPELINING\n250-8BITMIME\n" \
	"250-ENHANCEDSTATUSCODES\n250 SIZE 100000"

/* PIPELINING: MAIL, RCPTs and DATA in one go; one recipient refused, one
 * accepted; dot-stuffing on the wire. */
static void
test_tx_pipelining(void **state)
{
	struct step s[] = {
		{ "EHLO client.example.org", EHLO_PIPE, false },
		{ "MAIL FROM:<sender@example.org> SIZE=", "250 2.1.0 ok", false },
		{ "RCPT TO:<a@", "250 2.1.5 ok", false },
		{ "RCPT TO:<b@", "550-5.1.1 no such user\n550 5.1.1 really",
		    false },
		{ "DATA", "354 go", false },
		{ ".", "250 2.0.0 queued", false },
		{ "QUIT", "221 bye", false },
	};
	const char *rcpts[] = { "a@example.com", "b@example.com" };
	struct run r;

	run_open(&r, "220 mx.example.org ESMTP", s, ARRAY_LEN(s));
	assert_non_null(r.c);
	assert_string_equal(smtp_client_greeting_host(r.c), "mx.example.org");
	assert_true(smtp_client_ext(r.c)->pipelining);
	run_deliver(&r, rcpts, 2, ".leading dot\r\nline\r\n..two\r\n", true);
	assert_int_equal(r.rc, 0);
	assert_true(r.res.ok);
	assert_true(r.rr[0].ok);
	assert_false(r.rr[1].ok);
	assert_true(r.rr[1].permanent);
	assert_int_equal(r.rr[1].code, 550);
	assert_string_equal(r.rr[1].ecode, "5.1.1");
	assert_string_equal(r.rr[1].reply.data,
	    "550-5.1.1 no such user\n550 5.1.1 really\n");
	run_close(&r);
	assert_non_null(strstr(r.peer.log.data, " BODY=8BITMIME"));
	assert_string_equal(r.peer.data.data,
	    "X-Prefix: 1\r\n..leading dot\r\nline\r\n...two\r\n");
	run_free(&r);
	(void)state;
}

/* spec/queue.md 5.6: 452 to a later RCPT: those recipients go in a new
 * transaction after RSET, on the same connection (no PIPELINING here). */
static void
test_tx_452_retry(void **state)
{
	struct step s[] = {
		{ "EHLO", "250-mx.example.org\n250 ENHANCEDSTATUSCODES", false },
		{ "MAIL FROM:", "250 ok", false },
		{ "RCPT TO:<a@", "250 ok", false },
		{ "RCPT TO:<b@", "452 4.5.3 too many recipients", false },
		{ "DATA", "354 go", false },
		{ ".", "250 2.0.0 first", false },
		{ "RSET", "250 ok", false },
		{ "MAIL FROM:", "250 ok", false },
		{ "RCPT TO:<b@", "250 ok", false },
		{ "RCPT TO:<c@", "250 ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 2.0.0 second", false },
		{ "QUIT", "221 bye", false },
	};
	const char *rcpts[] = { "a@example.com", "b@example.com",
		"c@example.com" };
	struct run r;

	run_open(&r, "220 mx.example.org", s, ARRAY_LEN(s));
	assert_non_null(r.c);
	run_deliver(&r, rcpts, 3, "Subject: x\r\n\r\nbody\r\n", false);
	assert_int_equal(r.rc, 0);
	if (!r.rr[0].ok || !r.rr[1].ok || !r.rr[2].ok)
		fail_msg("results %d %d %d: %s / %s / %s; log:\n%s",
		    r.rr[0].ok, r.rr[1].ok, r.rr[2].ok, r.rr[0].error.data,
		    r.rr[1].error.data, r.rr[2].error.data, r.peer.log.data);
	run_close(&r);
	assert_non_null(strstr(r.peer.log.data, "RSET\n"));
	run_free(&r);
	(void)state;
}

/* spec/queue.md 7: a follow-up transaction on the connection starts with
 * RSET; with PIPELINING the RSET goes in one group with MAIL, RCPT and
 * DATA (RFC 2920 3.1), so reusing the connection costs no round trip. */
static void
test_tx_reuse(void **state)
{
	struct step s[] = {
		{ "EHLO client.example.org", EHLO_PIPE, false },
		{ "MAIL FROM:", "250 2.1.0 ok", false },
		{ "RCPT TO:<a@", "250 2.1.5 ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 2.0.0 first", false },
		{ "RSET", "250 2.0.0 ok", false },
		{ "MAIL FROM:", "250 2.1.0 ok", false },
		{ "RCPT TO:<b@", "250 2.1.5 ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 2.0.0 second", false },
		{ "QUIT", "221 bye", false },
	};
	const char *a[] = { "a@example.com" }, *b[] = { "b@example.com" };
	struct run r;

	run_open(&r, "220 mx.example.org ESMTP", s, ARRAY_LEN(s));
	assert_non_null(r.c);
	run_deliver(&r, a, 1, "Subject: one\r\n\r\nbody\r\n", false);
	assert_int_equal(r.rc, 0);
	assert_true(r.rr[0].ok);
	run_deliver(&r, b, 1, "Subject: two\r\n\r\n.body\r\n", false);
	assert_int_equal(r.rc, 0);
	if (!r.rr[0].ok)
		fail_msg("second transaction: %s; peer saw:\n%s",
		    r.rr[0].error.data, r.peer.log.data);
	run_close(&r);
	if (strstr(r.peer.log.data,
		"~\nRSET\nMAIL FROM:<sender@example.org> SIZE=") == NULL ||
	    strstr(r.peer.log.data, "RCPT TO:<b@example.com>\nDATA\n.\n") ==
		NULL)
		fail_msg("RSET not in one group with the next transaction; "
			 "peer saw:\n%s",
		    r.peer.log.data);
	assert_string_equal(r.peer.data.data,
	    "X-Prefix: 1\r\nSubject: two\r\n\r\n..body\r\n");
	run_free(&r);
	(void)state;
}

/* Transaction-wide failures: MAIL refused; DATA end refused with 4xx;
 * a bare LF in the stored message is refused before it is sent. */
static void
test_tx_failures(void **state)
{
	const char *rcpts[] = { "a@example.com" };
	struct run r;
	{
		struct step s[] = {
			{ "EHLO", "250 mx", false },
			{ "MAIL FROM:", "553 sender refused", false },
			{ "QUIT", "221 bye", false },
		};

		run_open(&r, "220 mx", s, ARRAY_LEN(s));
		run_deliver(&r, rcpts, 1, "a\r\n", false);
		assert_false(r.res.ok);
		assert_true(r.rr[0].permanent);
		assert_int_equal(r.rr[0].code, 553);
		run_close(&r);
		run_free(&r);
	}
	{
		struct step s[] = {
			{ "EHLO", "250 mx", false },
			{ "MAIL FROM:", "250 ok", false },
			{ "RCPT TO:", "250 ok", false },
			{ "DATA", "354 go", false },
			{ ".", "451 try later", false },
			{ "QUIT", "221 bye", false },
		};

		run_open(&r, "220 mx", s, ARRAY_LEN(s));
		run_deliver(&r, rcpts, 1, "a\r\n", false);
		assert_false(r.rr[0].ok);
		assert_false(r.rr[0].permanent);
		assert_int_equal(r.rr[0].code, 451);
		run_close(&r);
		run_free(&r);
	}
	{
		struct step s[] = {
			{ "EHLO", "250 mx", false },
			{ "MAIL FROM:", "250 ok", false },
			{ "RCPT TO:", "250 ok", false },
			{ "DATA", "354 go", false },
		};

		run_open(&r, "220 mx", s, ARRAY_LEN(s));
		run_deliver(&r, rcpts, 1, "bare\nlf\r\n", false);
		assert_false(r.rr[0].ok);
		assert_true(r.rr[0].permanent);
		assert_non_null(strstr(r.rr[0].error.data, "bare newline"));
		run_close(&r);
		run_free(&r);
	}
	{
		/* 8-bit message, no 8BITMIME: temporary, nothing sent. */
		struct step s[] = {
			{ "EHLO", "250 mx", false },
			{ "QUIT", "221 bye", false },
		};

		run_open(&r, "220 mx", s, ARRAY_LEN(s));
		run_deliver(&r, rcpts, 1, "caf\xc3\xa9\r\n", true);
		assert_false(r.rr[0].ok);
		assert_false(r.rr[0].permanent);
		run_close(&r);
		assert_null(strstr(r.peer.log.data, "MAIL"));
		run_free(&r);
	}
	(void)state;
}

/* Greeting and EHLO: 554 greeting is a permanent failure; EHLO refused
 * with 502 falls back to HELO; inconsistent multi-line codes break the
 * connection. */
static void
test_open(void **state)
{
	struct run r;
	{
		struct step s[] = { { "QUIT", "221 bye", false } };

		run_open(&r, "554 5.7.1 go away", s, ARRAY_LEN(s));
		assert_null(r.c);
		assert_true(r.res.permanent);
		assert_int_equal(r.res.code, 554);
		run_close(&r);
		run_free(&r);
	}
	{
		struct step s[] = {
			{ "EHLO", "502 no ehlo", false },
			{ "HELO client.example.org", "250 hi", false },
			{ "QUIT", "221 bye", false },
		};

		run_open(&r, "220 mx", s, ARRAY_LEN(s));
		assert_non_null(r.c);
		assert_false(smtp_client_ext(r.c)->pipelining);
		run_close(&r);
		run_free(&r);
	}
	{
		struct step s[] = {
			{ "EHLO", "250-mx\n251 odd", false },
			{ "QUIT", "221 bye", false },
		};

		run_open(&r, "220 mx", s, ARRAY_LEN(s));
		assert_null(r.c);
		assert_true(r.res.conn_error);
		assert_non_null(strstr(r.res.error.data, "inconsistent"));
		run_close(&r);
		run_free(&r);
	}
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_feed),
		cmocka_unit_test(test_reply_hostile),
		cmocka_unit_test(test_parse_ecode),
		cmocka_unit_test(test_reply_bytewise),
		cmocka_unit_test(test_parse_ehlo),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_tx_pipelining),
		cmocka_unit_test(test_tx_452_retry),
		cmocka_unit_test(test_tx_reuse),
		cmocka_unit_test(test_tx_failures),
		cmocka_unit_test(test_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
