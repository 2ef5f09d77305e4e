/*
 * smtp_client.c: blocking SMTP client used by the queue's delivery threads
 * (spec/queue.md 6 and 7; RFC 5321 3-4; RFC 3207; RFC 2920; RFC 6152;
 * RFC 6531; RFC 1870; RFC 8689; RFC 9422; RFC 4954; RFC 3463).
 *
 * Trust boundary: every byte read comes from a remote server; lines are
 * bounded by SMTP_CLIENT_LINE_MAX and replies by SMTP_CLIENT_REPLY_LINES
 * before they are parsed. Threads: a client belongs to the thread that
 * opened it; the reply and EHLO parsers are pure.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "sasl/sasl.h"
#include "smtp/smtp_client.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define CLIENT_RBUF 8192
#define CLIENT_WBUF_MAX (1u << 20)
#define CLIENT_CHUNK 65536
#define CLIENT_AUTH_MAX 16384

/* ---- replies (pure) ---- */

void
smtp_client_reply_init(struct smtp_client_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->lines, SMTP_CLIENT_REPLY_MAX);
	buf_init(&r->text, SMTP_CLIENT_REPLY_MAX);
}

void
smtp_client_reply_release(struct smtp_client_reply *r)
{
	buf_release(&r->lines);
	buf_release(&r->text);
}

void
smtp_client_reply_reset(struct smtp_client_reply *r)
{
	r->code = 0;
	r->ecode[0] = '\0';
	r->nlines = 0;
	buf_reset(&r->lines);
	buf_reset(&r->text);
	r->lines.failed = false;
	r->text.failed = false;
}

static size_t
scan_digits(const char *p, size_t n, size_t maxd)
{
	size_t i = 0;

	while (i < n && i < maxd + 1 && p[i] >= '0' && p[i] <= '9')
		i++;
	return i;
}

size_t
smtp_client_parse_ecode(struct span text, int class, char *out)
{
	const char *p = text.p;
	size_t n = text.len, i = 0, d;

	/* RFC 3463 2: class "." subject "." detail; subject and detail are
	 * 1-3 digits. */
	if (n < 5 || p[0] != '0' + class || (class != 2 && class != 4 &&
						class != 5) || p[1] != '.')
		return 0;
	i = 2;
	d = scan_digits(p + i, n - i, 3);
	if (d == 0 || d > 3 || i + d >= n || p[i + d] != '.')
		return 0;
	i += d + 1;
	d = scan_digits(p + i, n - i, 3);
	if (d == 0 || d > 3)
		return 0;
	i += d;
	if (i < n && p[i] != ' ')
		return 0;
	if (i >= 16)
		return 0;
	memcpy(out, p, i);
	out[i] = '\0';
	return i < n ? i + 1 : i;
}

int
smtp_client_reply_feed(struct smtp_client_reply *r, struct span line,
    bool ecodes, const char **why)
{
	int code;
	bool last;
	struct span text;

	/* RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
	 * Reply-code [ SP textstring ] CRLF; codes 2xx-5xx. */
	if (line.len < 3 || line.p[0] < '2' || line.p[0] > '5' ||
	    line.p[1] < '0' || line.p[1] > '9' || line.p[2] < '0' ||
	    line.p[2] > '9') {
		*why = "reply line without a valid 3-digit code";
		return -1;
	}
	code = (line.p[0] - '0') * 100 + (line.p[1] - '0') * 10 +
	    (line.p[2] - '0');
	if (line.len == 3)
		last = true;
	else if (line.p[3] == ' ')
		last = true;
	else if (line.p[3] == '-')
		last = false;
	else {
		*why = "reply code not followed by space or dash";
		return -1;
	}
	for (size_t i = 0; i < line.len; i++)
		if (line.p[i] == '\0' || line.p[i] == '\r' || line.p[i] == '\n') {
			*why = "control character in reply line";
			return -1;
		}
	if (r->nlines > 0 && code != r->code) {
		*why = "multi-line reply with inconsistent codes";
		return -1;
	}
	if (r->nlines >= SMTP_CLIENT_REPLY_LINES) {
		*why = "reply has too many lines";
		return -1;
	}
	text = line.len > 4 ? span_of(line.p + 4, line.len - 4)
			    : span_of("", 0);
	if (r->nlines == 0) {
		r->code = code;
		if (ecodes) {
			size_t k = smtp_client_parse_ecode(text, code / 100,
			    r->ecode);

			text.p += k;
			text.len -= k;
		}
	}
	if (r->nlines > 0)
		buf_addc(&r->text, ' ');
	buf_add(&r->text, text.p, text.len);
	buf_add(&r->lines, line.p, line.len);
	buf_addc(&r->lines, '\n');
	r->nlines++;
	return last ? 1 : 0;
}

/* ---- EHLO (pure) ---- */

static bool
word_eq(struct span w, const char *s)
{
	return span_eq_ci(w, s);
}

void
smtp_client_parse_limits(struct span params, struct smtp_client_ext *ext)
{
	struct scan s = scan_of(params);
	uint64_t mail = 0, rcpt = 0, rdom = 0;
	bool smail = false, srcpt = false, srdom = false;

	while (!scan_eof(&s)) {
		struct span kv, k, v;
		const char *eq;
		uint64_t val;

		scan_skip_sp(&s);
		if (scan_eof(&s))
			break;
		if (scan_until(&s, ' ', 256, &kv) == -1) {
			kv = scan_rest(&s);
			s = scan_of(span_of(kv.p + kv.len, 0));
		}
		eq = memchr(kv.p, '=', kv.len);
		if (eq == NULL || eq == kv.p || eq == kv.p + kv.len - 1)
			return; /* RFC 9422 2: syntax error, ignore all */
		k = span_of(kv.p, (size_t)(eq - kv.p));
		v = span_of(eq + 1, kv.len - k.len - 1);
		if (v.len > 6 || span_u64(v, SMTP_CLIENT_LIMIT_MAX, &val) == -1 ||
		    val == 0)
			continue; /* per-value error: ignore this value */
		if (word_eq(k, "MAILMAX")) {
			if (smail)
				continue;
			smail = true;
			mail = val;
		} else if (word_eq(k, "RCPTMAX")) {
			if (srcpt)
				continue;
			srcpt = true;
			rcpt = val;
		} else if (word_eq(k, "RCPTDOMAINMAX")) {
			if (srdom)
				continue;
			srdom = true;
			rdom = val;
		}
	}
	ext->mailmax = mail;
	ext->rcptmax = rcpt;
	ext->rcptdomainmax = rdom;
}

void
smtp_client_parse_ehlo(const struct smtp_client_reply *r,
    struct smtp_client_ext *ext)
{
	const char *p = r->lines.data, *end = p + r->lines.len;
	bool first = true;

	free(ext->auth);
	memset(ext, 0, sizeof(*ext));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct span line, kw, rest;
		const char *sp;

		if (nl == NULL)
			nl = end;
		line = span_of(p, (size_t)(nl - p));
		p = nl + 1;
		if (first) {
			first = false;
			continue;
		}
		if (line.len <= 4)
			continue;
		line = span_of(line.p + 4, line.len - 4);
		sp = memchr(line.p, ' ', line.len);
		kw = span_of(line.p, sp != NULL ? (size_t)(sp - line.p) : line.len);
		rest = sp != NULL ? span_trim(span_of(sp + 1,
					(size_t)(line.p + line.len - sp - 1)))
				  : span_of("", 0);
		if (word_eq(kw, "STARTTLS"))
			ext->starttls = true;
		else if (word_eq(kw, "ENHANCEDSTATUSCODES"))
			ext->ecodes = true;
		else if (word_eq(kw, "8BITMIME"))
			ext->eightbit = true;
		else if (word_eq(kw, "PIPELINING"))
			ext->pipelining = true;
		else if (word_eq(kw, "REQUIRETLS"))
			ext->requiretls = true;
		else if (word_eq(kw, "SMTPUTF8"))
			ext->smtputf8 = true;
		else if (word_eq(kw, "SIZE")) {
			uint64_t v = 0;

			ext->size_announced = true;
			if (rest.len > 0 &&
			    span_u64(rest, UINT64_MAX / 2, &v) == 0)
				ext->size = v;
		} else if (word_eq(kw, "AUTH")) {
			if (ext->auth == NULL)
				ext->auth = span_dup(rest);
		} else if (word_eq(kw, "LIMITS"))
			smtp_client_parse_limits(rest, ext);
	}
}

/* ---- results ---- */

void
smtp_client_result_init(struct smtp_client_result *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->error, 4096);
	buf_init(&r->reply, SMTP_CLIENT_REPLY_MAX);
}

void
smtp_client_result_release(struct smtp_client_result *r)
{
	buf_release(&r->error);
	buf_release(&r->reply);
}

static void
result_clear(struct smtp_client_result *r)
{
	r->ok = r->permanent = r->tls_error = r->conn_error = false;
	r->code = 0;
	r->ecode[0] = '\0';
	buf_reset(&r->error);
	buf_reset(&r->reply);
	r->error.failed = r->reply.failed = false;
}

void
smtp_client_result_copy(struct smtp_client_result *dst,
    const struct smtp_client_result *src)
{
	result_clear(dst);
	dst->ok = src->ok;
	dst->permanent = src->permanent;
	dst->tls_error = src->tls_error;
	dst->conn_error = src->conn_error;
	dst->code = src->code;
	memcpy(dst->ecode, src->ecode, sizeof(dst->ecode));
	buf_add(&dst->error, src->error.data, src->error.len);
	buf_add(&dst->reply, src->reply.data, src->reply.len);
}

void
smtp_client_result_fail(struct smtp_client_result *r, bool permanent,
    int code, const char *ecode, const char *fmt, ...)
{
	va_list ap;

	result_clear(r);
	r->permanent = permanent;
	r->code = code;
	if (ecode != NULL)
		snprintf(r->ecode, sizeof(r->ecode), "%s", ecode);
	va_start(ap, fmt);
	buf_vaddf(&r->error, fmt, ap);
	va_end(ap);
}

/* The remote answered with reply rp where it should not have. */
static void
result_reply(struct smtp_client_result *r, const struct smtp_client_reply *rp,
    const char *what)
{
	result_clear(r);
	r->code = rp->code;
	memcpy(r->ecode, rp->ecode, sizeof(r->ecode));
	r->permanent = rp->code >= 500;
	buf_addf(&r->error, "%s: %d %s%s%s", what, rp->code, rp->ecode,
	    rp->ecode[0] != '\0' ? " " : "", rp->text.data);
	buf_add(&r->reply, rp->lines.data, rp->lines.len);
}

/* ---- the connection ---- */

struct smtp_client {
	int fd;
	struct tls_session *tls;
	const struct smtp_client_params *p;
	struct smtp_client_ext ext;
	char greeting_host[256];
	char rbuf[CLIENT_RBUF];
	size_t roff, rlen;
	struct buf w;          /* pending output */
	struct smtp_client_reply rp;
	bool broken;           /* connection unusable */
	bool used;             /* a transaction ran: RSET before the next */
	int read_ms;           /* receive timeout set on fd */
};

int
smtp_client_dial(const char *ip, uint16_t port, const char *local_ip,
    int timeout_ms, int io_ms, struct buf *err)
{
	struct sockaddr_storage ss, ls;
	socklen_t sl, lsl = 0;
	struct timeval tv;
	struct pollfd pfd;
	int fd = -1, fl, soerr = 0, r;
	socklen_t elen = sizeof(soerr);

	memset(&ss, 0, sizeof(ss));
	memset(&ls, 0, sizeof(ls));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, ip,
		       &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		buf_addf(err, "not an ip address: %s", ip);
		return -1;
	}
	if (local_ip != NULL && local_ip[0] != '\0') {
		if (ss.ss_family == AF_INET &&
		    inet_pton(AF_INET, local_ip,
			&((struct sockaddr_in *)&ls)->sin_addr) == 1) {
			ls.ss_family = AF_INET;
			lsl = sizeof(struct sockaddr_in);
		} else if (ss.ss_family == AF_INET6 &&
		    inet_pton(AF_INET6, local_ip,
			&((struct sockaddr_in6 *)&ls)->sin6_addr) == 1) {
			ls.ss_family = AF_INET6;
			lsl = sizeof(struct sockaddr_in6);
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		buf_addf(err, "socket: %s", log_strerror(errno));
		return -1;
	}
	if (lsl > 0 && bind(fd, (struct sockaddr *)&ls, lsl) == -1) {
		buf_addf(err, "bind %s: %s", local_ip, log_strerror(errno));
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
		if (errno != EINPROGRESS) {
			buf_addf(err, "dial %s port %u: %s", ip, port,
			    log_strerror(errno));
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms
							 : SMTP_CLIENT_DIAL_MS);
		while (r == -1 && errno == EINTR);
		if (r == 0) {
			buf_addf(err, "dial %s port %u: timeout", ip, port);
			goto fail;
		}
		if (r == -1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) == -1 ||
		    soerr != 0) {
			buf_addf(err, "dial %s port %u: %s", ip, port,
			    log_strerror(soerr != 0 ? soerr : errno));
			goto fail;
		}
	}
	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		buf_addf(err, "fcntl: %s", log_strerror(errno));
		goto fail;
	}
	if (io_ms <= 0)
		io_ms = SMTP_CLIENT_IO_MS;
	tv.tv_sec = io_ms / 1000;
	tv.tv_usec = (io_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		buf_addf(err, "setsockopt: %s", log_strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static void
set_io_timeout(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Write all pending output. 0 or -1 (connection broken, res set). */
static int
flush_out(struct smtp_client *c, struct smtp_client_result *res)
{
	size_t off = 0;

	while (off < c->w.len) {
		if (c->tls != NULL) {
			size_t sent = 0;
			int r = tls_session_send(c->tls, c->w.data + off,
			    c->w.len - off, &sent);

			if (r != TLS_OK) {
				smtp_client_result_fail(res, false, 0, NULL,
				    "writing to remote: %s",
				    r == TLS_AGAIN ? "timeout" : "tls error");
				goto fail;
			}
			off += sent;
		} else {
			ssize_t n = send(c->fd, c->w.data + off, c->w.len - off,
			    MSG_NOSIGNAL);

			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				smtp_client_result_fail(res, false, 0, NULL,
				    "writing to remote: %s",
				    n == -1 && (errno == EAGAIN ||
						   errno == EWOULDBLOCK)
					? "timeout"
					: log_strerror(errno));
				goto fail;
			}
			off += (size_t)n;
		}
	}
	buf_reset(&c->w);
	return 0;
fail:
	res->conn_error = true;
	c->broken = true;
	buf_reset(&c->w);
	return -1;
}

/* Fill the read buffer. 0, or -1 with res set. */
static int
fill(struct smtp_client *c, struct smtp_client_result *res)
{
	int64_t deadline = time_mono_ms() + c->read_ms;

	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	for (;;) {
		if (c->tls != NULL) {
			size_t got = 0;
			int r = tls_session_recv(c->tls, c->rbuf + c->rlen,
			    sizeof(c->rbuf) - c->rlen, &got);

			if (r == TLS_OK) {
				c->rlen += got;
				return 0;
			}
			/* INTEROP: OpenSSL servers (Postfix) send TLS 1.3
			 * session tickets after the handshake; gnutls
			 * handles them and returns E_AGAIN even on our
			 * blocking socket. Only a blocked read that ran
			 * into the receive timeout is a timeout. */
			if (r == TLS_AGAIN && time_mono_ms() < deadline)
				continue;
			smtp_client_result_fail(res, false, 0, NULL,
			    "reading from remote: %s",
			    r == TLS_AGAIN ? "timeout"
			    : r == TLS_EOF ? "connection closed"
					   : "tls error");
		} else {
			ssize_t n = recv(c->fd, c->rbuf + c->rlen,
			    sizeof(c->rbuf) - c->rlen, 0);

			if (n == -1 && errno == EINTR)
				continue;
			if (n > 0) {
				c->rlen += (size_t)n;
				return 0;
			}
			smtp_client_result_fail(res, false, 0, NULL,
			    "reading from remote: %s",
			    n == 0 ? "connection closed"
			    : errno == EAGAIN || errno == EWOULDBLOCK
				? "timeout"
				: log_strerror(errno));
		}
		res->conn_error = true;
		c->broken = true;
		return -1;
	}
}

/* Read one reply into c->rp. 0, or -1 with res set (connection broken). */
static int
read_reply(struct smtp_client *c, struct smtp_client_result *res)
{
	const char *why = NULL;
	int r;

	smtp_client_reply_reset(&c->rp);
	if (c->broken) {
		smtp_client_result_fail(res, false, 0, NULL,
		    "connection unusable");
		res->conn_error = true;
		return -1;
	}
	for (;;) {
		char *nl = memchr(c->rbuf + c->roff, '\n', c->rlen - c->roff);
		size_t len;

		if (nl == NULL) {
			if (c->rlen - c->roff >= SMTP_CLIENT_LINE_MAX) {
				smtp_client_result_fail(res, false, 0, NULL,
				    "reply line too long");
				goto broken;
			}
			if (fill(c, res) == -1)
				return -1;
			continue;
		}
		len = (size_t)(nl - (c->rbuf + c->roff));
		if (len > 0 && c->rbuf[c->roff + len - 1] == '\r')
			len--;
		r = smtp_client_reply_feed(&c->rp,
		    span_of(c->rbuf + c->roff, len), c->ext.ecodes, &why);
		c->roff = (size_t)(nl - c->rbuf) + 1;
		if (r == 1)
			return 0;
		if (r == -1) {
			smtp_client_result_fail(res, false, 0, NULL,
			    "protocol error: %s", why);
			goto broken;
		}
	}
broken:
	res->conn_error = true;
	c->broken = true;
	return -1;
}

static int
command(struct smtp_client *c, struct smtp_client_result *res,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Send one command line and read its reply into c->rp. */
static int
command(struct smtp_client *c, struct smtp_client_result *res,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&c->w, fmt, ap);
	va_end(ap);
	buf_adds(&c->w, "\r\n");
	if (flush_out(c, res) == -1)
		return -1;
	return read_reply(c, res);
}

static int
ehlo(struct smtp_client *c, struct smtp_client_result *res, bool tls)
{
	if (command(c, res, "EHLO %s", c->p->ehlo) == -1)
		return -1;
	if (c->rp.code == 250) {
		smtp_client_parse_ehlo(&c->rp, &c->ext);
		return 0;
	}
	/* spec/queue.md 7: HELO fallback only before TLS. */
	if (!tls && c->rp.code >= 500 && c->rp.code <= 504) {
		if (command(c, res, "HELO %s", c->p->ehlo) == -1)
			return -1;
		if (c->rp.code == 250) {
			free(c->ext.auth);
			memset(&c->ext, 0, sizeof(c->ext));
			return 0;
		}
	}
	result_reply(res, &c->rp, "ehlo");
	return -1;
}

static int
start_tls(struct smtp_client *c, struct smtp_client_result *res)
{
	struct tls_client_params tp = { 0 };
	struct buf err;
	int rc = -1;

	buf_init(&err, 2048);
	tp.host = c->p->tls_name;
	tp.ca_files = c->p->ca_files;
	tp.nca_files = c->p->nca_files;
	tp.no_system_trust = c->p->no_system_trust;
	tp.no_verify = !c->p->pkix;
	tp.timeout_ms = c->p->io_ms > 0 ? c->p->io_ms : SMTP_CLIENT_IO_MS;
	c->tls = tls_client_connect(c->fd, &tp, &err);
	if (c->tls == NULL) {
		smtp_client_result_fail(res, false, 0, NULL,
		    "tls handshake: %s", err.data);
		res->tls_error = true;
		res->conn_error = true;
		c->broken = true;
		goto out;
	}
	if (c->p->verify != NULL) {
		buf_reset(&err);
		if (c->p->verify(c->p->verify_arg, c->tls, c->greeting_host,
			&err) == -1) {
			smtp_client_result_fail(res, false, 0, NULL,
			    "tls verification: %s", err.data);
			res->tls_error = true;
			res->conn_error = true;
			c->broken = true;
			goto out;
		}
	}
	rc = 0;
out:
	buf_release(&err);
	return rc;
}

static int
auth(struct smtp_client *c, struct smtp_client_result *res)
{
	struct sasl_client_params sp = { 0 };
	struct sasl_client *sc = NULL;
	struct buf cb, out, enc, dec;
	enum sasl_cb_type cbt = SASL_CB_NONE, cb_use = SASL_CB_NONE;
	enum sasl_mech mech;
	const struct sasl_mech_info *info;
	const char *why = NULL;
	bool first = true;
	int rc = -1;

	buf_init(&cb, 1024);
	buf_init(&out, CLIENT_AUTH_MAX);
	buf_init(&enc, CLIENT_AUTH_MAX * 2);
	buf_init(&dec, CLIENT_AUTH_MAX);
	if (c->tls != NULL) {
		cbt = tls_session_is_tls13(c->tls) ? SASL_CB_TLS_EXPORTER
						   : SASL_CB_TLS_UNIQUE;
		if (tls_channel_binding(c->tls, sasl_cb_name(cbt), &cb, &why) == -1)
			cbt = SASL_CB_NONE;
	}
	/* spec/queue.md 6: first configured mechanism the server offers. */
	if (sasl_client_select(span_of_cstr(c->ext.auth != NULL ? c->ext.auth
								: ""),
		c->p->mechs, c->p->nmechs, cbt, &mech, &cb_use, &why) == -1) {
		smtp_client_result_fail(res, true, 0, NULL,
		    "no matching authentication mechanisms (%s)", why);
		goto out;
	}
	sp.user = c->p->auth_user;
	sp.password = c->p->auth_pass;
	sp.cb_type = cb_use;
	sp.cb_data = span_of_buf(&cb);
	sc = sasl_client_new(mech, &sp, &why);
	if (sc == NULL) {
		smtp_client_result_fail(res, true, 0, NULL, "auth: %s", why);
		goto out;
	}
	info = sasl_mech_info(mech);
	if (info->client_first) {
		if (sasl_client_step(sc, span_of("", 0), false, &out, &why) ==
		    SASL_FAIL) {
			smtp_client_result_fail(res, true, 0, NULL, "auth: %s",
			    why);
			goto out;
		}
		if (out.len == 0)
			buf_adds(&enc, "=");
		else
			sasl_b64_encode(out.data, out.len, &enc);
		if (command(c, res, "AUTH %s %s", info->name, enc.data) == -1)
			goto out;
		first = false;
	} else if (command(c, res, "AUTH %s", info->name) == -1)
		goto out;
	(void)first;
	for (;;) {
		enum sasl_step st;

		if (c->rp.code == 235) {
			rc = 0;
			goto out;
		}
		if (c->rp.code != 334) {
			result_reply(res, &c->rp, "auth");
			goto out;
		}
		buf_reset(&dec);
		buf_reset(&out);
		buf_reset(&enc);
		if (sasl_b64_decode(span_of_buf(&c->rp.text), &dec, &why) == -1) {
			buf_adds(&c->w, "*\r\n");
			(void)flush_out(c, res);
			smtp_client_result_fail(res, false, 0, NULL,
			    "auth: bad challenge: %s", why);
			goto out;
		}
		st = sasl_client_step(sc, span_of_buf(&dec), true, &out, &why);
		if (st == SASL_FAIL) {
			if (command(c, res, "*") == 0)
				smtp_client_result_fail(res, true, 0, NULL,
				    "auth: %s", why);
			goto out;
		}
		sasl_b64_encode(out.data, out.len, &enc);
		if (command(c, res, "%s", enc.data) == -1)
			goto out;
	}
out:
	sasl_client_free(sc);
	explicit_bzero(out.data, out.len);
	buf_release(&cb);
	buf_release(&out);
	buf_release(&enc);
	buf_release(&dec);
	return rc;
}

static void
client_free(struct smtp_client *c)
{
	if (c->tls != NULL) {
		tls_session_bye(c->tls);
		tls_session_free(c->tls);
	}
	if (c->fd != -1)
		close(c->fd);
	free(c->ext.auth);
	buf_release(&c->w);
	smtp_client_reply_release(&c->rp);
	free(c);
}

struct smtp_client *
smtp_client_open(int fd, const struct smtp_client_params *p,
    struct smtp_client_result *res)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	c->p = p;
	c->read_ms = p->io_ms > 0 ? p->io_ms : SMTP_CLIENT_IO_MS;
	set_io_timeout(fd, c->read_ms);
	buf_init(&c->w, CLIENT_WBUF_MAX);
	smtp_client_reply_init(&c->rp);
	if (p->tls == SMTP_CLIENT_TLS_IMPLICIT && start_tls(c, res) == -1)
		goto fail;
	/* spec/queue.md 7: greeting must be 220. */
	if (read_reply(c, res) == -1)
		goto fail;
	if (c->rp.code != 220) {
		result_reply(res, &c->rp, "greeting");
		goto fail;
	}
	{
		const char *t = c->rp.text.data;
		size_t n = strcspn(t, " ");

		if (n >= sizeof(c->greeting_host))
			n = sizeof(c->greeting_host) - 1;
		memcpy(c->greeting_host, t, n);
		c->greeting_host[n] = '\0';
	}
	if (ehlo(c, res, p->tls == SMTP_CLIENT_TLS_IMPLICIT) == -1)
		goto fail;
	if (p->tls == SMTP_CLIENT_TLS_STARTTLS ||
	    (p->tls == SMTP_CLIENT_TLS_OPPORTUNISTIC && c->ext.starttls)) {
		if (command(c, res, "STARTTLS") == -1)
			goto fail;
		if (c->rp.code != 220) {
			result_reply(res, &c->rp, "starttls");
			res->tls_error = true;
			goto fail;
		}
		if (start_tls(c, res) == -1 || ehlo(c, res, true) == -1)
			goto fail;
	}
	if (p->auth_user != NULL && auth(c, res) == -1)
		goto fail;
	return c;
fail:
	client_free(c);
	return NULL;
}

const struct smtp_client_ext *
smtp_client_ext(const struct smtp_client *c)
{
	return &c->ext;
}

bool
smtp_client_tls_active(const struct smtp_client *c)
{
	return c->tls != NULL;
}

const char *
smtp_client_greeting_host(const struct smtp_client *c)
{
	return c->greeting_host;
}

/* ---- transactions ---- */

static bool
accepted(int code)
{
	return code == 250 || code == 251;
}

/* Send the dot-stuffed message (RFC 5321 4.5.2) and the final ".".
 * Returns 0, 1 for a bad message (res set, nothing more sent), -1 for a
 * broken connection. */
static int
send_data(struct smtp_client *c, const struct smtp_client_tx *tx,
    struct smtp_client_result *res)
{
	char chunk[CLIENT_CHUNK];
	bool bol = true, cr = false;
	off_t off = 0;
	int src = 0;

	for (;;) {
		const char *p;
		size_t n, start;

		if (src == 0) {
			p = tx->prefix != NULL ? tx->prefix : "";
			n = tx->prefix_len;
			src = 1;
		} else {
			ssize_t r = pread(tx->msg_fd, chunk, sizeof(chunk), off);

			if (r == -1 && errno == EINTR)
				continue;
			if (r < 0) {
				smtp_client_result_fail(res, false, 0, NULL,
				    "reading message file: %s",
				    log_strerror(errno));
				return 1;
			}
			if (r == 0)
				break;
			off += r;
			p = chunk;
			n = (size_t)r;
		}
		/* Bytes are copied in runs; a run ends before a dot that
		 * needs stuffing. */
		start = 0;
		for (size_t i = 0; i < n; i++) {
			char ch = p[i];

			if (cr && ch != '\n') {
				smtp_client_result_fail(res, true, 554, "5.6.2",
				    "message contains bare carriage return");
				return 1;
			}
			if (ch == '\n' && !cr) {
				smtp_client_result_fail(res, true, 554, "5.6.2",
				    "message contains bare newline");
				return 1;
			}
			if (bol && ch == '.') {
				buf_add(&c->w, p + start, i - start);
				buf_addc(&c->w, '.');
				start = i;
			}
			cr = ch == '\r';
			bol = ch == '\n';
		}
		buf_add(&c->w, p + start, n - start);
		if (c->w.len >= CLIENT_CHUNK && flush_out(c, res) == -1)
			return -1;
	}
	if (cr) {
		smtp_client_result_fail(res, true, 554, "5.6.2",
		    "message contains bare carriage return");
		return 1;
	}
	if (!bol)
		buf_adds(&c->w, "\r\n");
	buf_adds(&c->w, ".\r\n");
	return flush_out(c, res);
}

/* One transaction for rcpts idx[0..n-1]. retry[i] is set for recipients
 * that got 452/552 after the first (spec/queue.md 5.6). */
static int
transaction(struct smtp_client *c, const struct smtp_client_tx *tx,
    const size_t *idx, size_t n, bool *retry, struct smtp_client_result *res,
    struct smtp_client_result *rr)
{
	const struct smtp_client_ext *e = &c->ext;
	size_t nok = 0, sent = 0;
	bool stop = false, rset = false;
	int r;

	/* spec/queue.md 7: RSET before a follow-up transaction; RFC 2920
	 * 3.1: with PIPELINING it goes in the same group as MAIL. */
	if (c->used && !e->pipelining) {
		if (command(c, res, "RSET") == -1)
			return -1;
		if (c->rp.code != 250) {
			result_reply(res, &c->rp, "rset");
			return -1;
		}
	} else if (c->used) {
		buf_adds(&c->w, "RSET\r\n");
		rset = true;
	}
	c->used = true;
	buf_addf(&c->w, "MAIL FROM:<%s>", tx->mailfrom);
	if (e->size_announced)
		buf_addf(&c->w, " SIZE=%lld", (long long)tx->size);
	if (e->eightbit)
		buf_adds(&c->w, tx->has_8bit ? " BODY=8BITMIME" : " BODY=7BIT");
	if (tx->smtputf8)
		buf_adds(&c->w, " SMTPUTF8");
	if (tx->requiretls)
		buf_adds(&c->w, " REQUIRETLS");
	buf_adds(&c->w, "\r\n");
	if (e->pipelining) {
		/* RFC 2920 3.1: MAIL, RCPTs and DATA in one go. */
		for (size_t i = 0; i < n; i++)
			buf_addf(&c->w, "RCPT TO:<%s>\r\n", tx->rcpts[idx[i]]);
		buf_adds(&c->w, "DATA\r\n");
	}
	if (flush_out(c, res) == -1 || read_reply(c, res) == -1)
		return -1;
	if (rset) {
		if (c->rp.code != 250) {
			/* The replies to the rest of the group are unread. */
			result_reply(res, &c->rp, "rset");
			c->broken = true;
			return -1;
		}
		if (read_reply(c, res) == -1)
			return -1;
	}
	if (c->rp.code != 250) {
		/* spec/queue.md 7: MAIL's error even if the server then
		 * drops the connection. */
		result_reply(res, &c->rp, "mail from");
		for (size_t i = 0; i < n; i++)
			smtp_client_result_copy(&rr[idx[i]], res);
		if (e->pipelining)
			c->broken = true;
		return e->pipelining ? -1 : 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct smtp_client_result *x = &rr[idx[i]];

		if (!e->pipelining) {
			if (stop) {
				retry[i] = true;
				continue;
			}
			buf_addf(&c->w, "RCPT TO:<%s>\r\n", tx->rcpts[idx[i]]);
			if (flush_out(c, res) == -1)
				return -1;
		}
		if (read_reply(c, res) == -1)
			return -1;
		sent++;
		if (accepted(c->rp.code)) {
			result_clear(x);
			x->ok = true;
			x->code = c->rp.code;
			nok++;
			continue;
		}
		result_reply(x, &c->rp, "rcpt to");
		/* RFC 5321 4.5.3.1.10: 452 (552 historically) after the
		 * first recipient means too many recipients. */
		if (i > 0 && (c->rp.code == 452 || c->rp.code == 552)) {
			retry[i] = true;
			if (!e->pipelining)
				stop = true;
		}
	}
	(void)sent;
	if (!e->pipelining && nok > 0) {
		if (command(c, res, "DATA") == -1)
			return -1;
	} else if (e->pipelining) {
		if (read_reply(c, res) == -1)
			return -1;
	}
	if (nok == 0) {
		/* RFC 2920 3.1: end a DATA the server accepted anyway. */
		if (e->pipelining && c->rp.code == 354) {
			buf_adds(&c->w, ".\r\n");
			if (flush_out(c, res) == -1 || read_reply(c, res) == -1)
				return -1;
		}
		smtp_client_result_copy(res, &rr[idx[0]]);
		res->ok = false;
		return 0;
	}
	if (c->rp.code != 354) {
		result_reply(res, &c->rp, "data");
		for (size_t i = 0; i < n; i++)
			if (rr[idx[i]].ok)
				smtp_client_result_copy(&rr[idx[i]], res);
		return 0;
	}
	r = send_data(c, tx, res);
	if (r == -1)
		return -1;
	if (r == 1) {
		/* The message is bad: we cannot end DATA cleanly. */
		for (size_t i = 0; i < n; i++)
			if (rr[idx[i]].ok)
				smtp_client_result_copy(&rr[idx[i]], res);
		c->broken = true;
		return -1;
	}
	if (read_reply(c, res) == -1) {
		for (size_t i = 0; i < n; i++)
			if (rr[idx[i]].ok)
				smtp_client_result_copy(&rr[idx[i]], res);
		return -1;
	}
	if (c->rp.code != 250) {
		result_reply(res, &c->rp, "end of data");
		for (size_t i = 0; i < n; i++)
			if (rr[idx[i]].ok)
				smtp_client_result_copy(&rr[idx[i]], res);
		return 0;
	}
	result_clear(res);
	res->ok = true;
	res->code = 250;
	memcpy(res->ecode, c->rp.ecode, sizeof(res->ecode));
	buf_add(&res->reply, c->rp.lines.data, c->rp.lines.len);
	return 0;
}

int
smtp_client_deliver(struct smtp_client *c, const struct smtp_client_tx *tx,
    struct smtp_client_result *res, struct smtp_client_result *rcpt_res)
{
	const struct smtp_client_ext *e = &c->ext;
	size_t *pending = xcalloc(tx->nrcpts + 1, sizeof(*pending));
	size_t *batch = xcalloc(tx->nrcpts + 1, sizeof(*batch));
	bool *retry = xcalloc(tx->nrcpts + 1, sizeof(*retry));
	size_t npending = tx->nrcpts;
	bool any_ok = false;
	int rc = 0;

	for (size_t i = 0; i < tx->nrcpts; i++)
		pending[i] = i;
	/* spec/queue.md 7: checks before sending. */
	if (tx->has_8bit && !e->eightbit)
		smtp_client_result_fail(res, false, 0, NULL,
		    "message has 8-bit data but remote does not support "
		    "8bitmime");
	else if (tx->smtputf8 && !e->smtputf8)
		smtp_client_result_fail(res, false, 0, NULL,
		    "message needs smtputf8 but remote does not support it");
	else if (tx->requiretls && !e->requiretls)
		smtp_client_result_fail(res, false, 0, "4.7.30",
		    "remote does not support requiretls");
	else if (e->size_announced && e->size > 0 &&
	    (uint64_t)tx->size > e->size)
		smtp_client_result_fail(res, true, 554, "5.3.4",
		    "message too large for remote (size %lld > %llu)",
		    (long long)tx->size, (unsigned long long)e->size);
	else
		goto go;
	for (size_t i = 0; i < tx->nrcpts; i++)
		smtp_client_result_copy(&rcpt_res[i], res);
	goto out;
go:
	while (npending > 0) {
		size_t n = npending, nretry = 0, nok = 0;

		if (e->rcptmax > 0 && n > e->rcptmax)
			n = (size_t)e->rcptmax;
		memcpy(batch, pending, n * sizeof(*batch));
		memset(retry, 0, n * sizeof(*retry));
		if (transaction(c, tx, batch, n, retry, res, rcpt_res) == -1) {
			for (size_t i = 0; i < n; i++)
				if (rcpt_res[batch[i]].ok ||
				    rcpt_res[batch[i]].code == 0 || retry[i])
					smtp_client_result_copy(
					    &rcpt_res[batch[i]], res);
			for (size_t i = n; i < npending; i++)
				smtp_client_result_copy(&rcpt_res[pending[i]],
				    res);
			rc = -1;
			break;
		}
		for (size_t i = 0; i < n; i++)
			if (rcpt_res[batch[i]].ok)
				nok++;
		if (res->ok)
			any_ok = true;
		/* The retried ones go first in a new transaction; if
		 * nothing got through there is no progress to make. */
		for (size_t i = 0; i < n; i++)
			if (retry[i] && nok > 0)
				pending[nretry++] = batch[i];
		memmove(pending + nretry, pending + n,
		    (npending - n) * sizeof(*pending));
		npending = nretry + (npending - n);
	}
	if (any_ok) {
		result_clear(res);
		res->ok = true;
		res->code = 250;
	}
out:
	free(pending);
	free(batch);
	free(retry);
	return c->broken ? -1 : rc;
}

void
smtp_client_close(struct smtp_client *c)
{
	struct smtp_client_result r;

	if (c == NULL)
		return;
	if (!c->broken) {
		smtp_client_result_init(&r);
		c->read_ms = SMTP_CLIENT_QUIT_MS;
		set_io_timeout(c->fd, c->read_ms);
		(void)command(c, &r, "QUIT");
		smtp_client_result_release(&r);
	}
	client_free(c);
}
