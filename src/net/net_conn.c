/*
 * net_conn.c: one connection: the ownership word and run loop, buffered
 * non-blocking input (lines with a maximum, bulk data, copying to a
 * file) and output, timers, STARTTLS (RFC 3207) and implicit TLS (RFC
 * 8314) through src/tls. Input comes from untrusted peers: every read is
 * bounded by the caller's maximum before a line end arrives, and nothing
 * is allocated for an idle connection beyond struct net_conn. No worker
 * ever waits on a peer's reading speed except in an explicit
 * net_conn_flush(), which has a per-connection budget: output over
 * NET_WRITE_HIGH holds input back (backpressure) and output over the
 * out_max limit closes the connection. Trickled output (slow mode, one
 * byte per interval) is paced by the reactor's timer heap, not a sleep.
 *
 * Threads: the functions for protocols run on the worker that owns the
 * connection (net.h); net_conn_raise/get/put/notify on any thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "net/net.h"
#include "net/net_int.h"
#include "tls/tls.h"

#include "lib/banned.h"

#define NET_HANDLER_ROUNDS 64 /* handler calls for buffered input per run */
#define NET_SEND_CHUNK 16384
#define NET_STREAM_HOLD_MAX (1024 * 1024) /* input a stream fn may leave */

bool
net_conn_raise_take(struct net_conn *c, uint32_t bits)
{
	uint32_t old = atomic_load(&c->state), nw;

	for (;;) {
		uint32_t st = old & NET_CS_MASK;

		if (st == NET_CS_CLOSED)
			return false;
		nw = old | bits;
		if (st == NET_CS_WAITING)
			nw = (nw & ~NET_CS_MASK) | NET_CS_QUEUED;
		if (nw == old)
			return false;
		if (atomic_compare_exchange_weak(&c->state, &old, nw))
			break;
	}
	return (old & NET_CS_MASK) == NET_CS_WAITING;
}

void
net_conn_raise(struct net_conn *c, uint32_t bits)
{
	if (net_conn_raise_take(c, bits))
		net_pool_enqueue(c->r, c);
}

void
net_conn_get(struct net_conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void
net_conn_put(struct net_conn *c)
{
	struct net_reactor *r;

	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	/* The reactor frees it (net.c); an epoll event still in flight finds
	 * its handle gone (net_conn_slot_free()). */
	r = c->r;
	lock_take(&r->lock);
	c->next = r->freelist;
	r->freelist = c;
	lock_release(&r->lock);
	net_reactor_wake(r);
}

void
net_conn_notify(struct net_conn *c)
{
	net_conn_raise(c, NET_CB_NOTIFY);
}

void
net_conn_destroy(struct net_conn *c)
{
	if (c->sess != NULL && c->l->proto->end != NULL)
		c->l->proto->end(c, c->sess);
	if (c->fd >= 0 && close(c->fd) == -1)
		log_debug(&c->log, "close", LF_ERRNO(errno));
	tls_session_free(c->tls);
	tls_session_free(c->tls_next);
	buf_release(&c->in);
	buf_release(&c->out);
	free(c);
}

/* ---- output ---- */

static void
fail_io(struct net_conn *c)
{
	c->io_failed = true;
	c->dead = true;
	buf_reset(&c->out);
	c->fast_left = 0;
}

/* STARTTLS: the plaintext before the switch is sent; the handshake
 * starts. */
static void
begin_tls(struct net_conn *c)
{
	c->tls = c->tls_next;
	c->tls_next = NULL;
	c->handshaking = true;
	c->hs_starttls = true;
	c->io_at = time_mono_ns() + c->r->hs_timeout_ns;
}

/* How long pending output may wait without progress before the
 * connection fails as a slow reader. */
static int64_t
write_timeout_ns(const struct net_conn *c)
{
	return c->write_timeout_ns > 0 ? c->write_timeout_ns :
	    c->r->write_timeout_ns;
}

/* Trickling with output waiting: when the next byte is due, if that is
 * after now; else 0 (not trickling, nothing to send, or due already). */
static int64_t
trickle_wait(const struct net_conn *c, int64_t now)
{
	if (c->trickle_ns == 0 || c->fast_left > 0 || c->out.len == 0 ||
	    c->trickle_at <= now)
		return 0;
	return c->trickle_at;
}

/* The write timeout's deadline for output pending now. While trickling
 * it counts from when the next byte is due: waiting for our own pace is
 * not the peer's delay (net_conn_set_trickle()). */
static int64_t
write_deadline(const struct net_conn *c, int64_t now)
{
	int64_t due = trickle_wait(c, now);

	return (due != 0 ? due : now) + write_timeout_ns(c);
}

/* Send what the socket takes now. NET_OK when all is sent, NET_AGAIN,
 * NET_ERROR. */
static int
flush_some(struct net_conn *c)
{
	for (;;) {
		size_t n = c->out.len < NET_SEND_CHUNK ? c->out.len :
		    NET_SEND_CHUNK, sent = 0;
		bool trickled = false;

		if (c->io_failed)
			return NET_ERROR;
		if (c->tls_next != NULL && c->plain_left == 0)
			begin_tls(c);
		if (c->out.len == 0)
			return NET_OK;
		if (c->handshaking)
			return NET_AGAIN;
		if (c->tls_next != NULL && n > c->plain_left)
			n = c->plain_left;
		if (c->trickle_ns > 0 && c->fast_left > 0 && n > c->fast_left) {
			n = c->fast_left;
		} else if (c->trickle_ns > 0 && c->fast_left == 0) {
			/* One byte when due; the timer heap wakes us for the
			 * next (arm()). A TLS record the socket refused is
			 * retried at once: its time had come. */
			if (c->trickle_at > time_mono_ns())
				return NET_AGAIN;
			n = 1;
			trickled = true;
		}
		if (c->tls != NULL) {
			int rc = tls_session_send(c->tls, c->out.data, n, &sent);

			if (rc == TLS_AGAIN)
				return NET_AGAIN;
			if (rc != TLS_OK) {
				fail_io(c);
				return NET_ERROR;
			}
		} else {
			ssize_t w = send(c->fd, c->out.data, n,
			    MSG_NOSIGNAL | MSG_DONTWAIT);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return NET_AGAIN;
			if (w < 0) {
				log_debug(&c->log, "write", LF_ERRNO(errno));
				fail_io(c);
				return NET_ERROR;
			}
			sent = (size_t)w;
		}
		buf_consume(&c->out, sent);
		if (c->tls_next != NULL)
			c->plain_left -= sent;
		if (c->fast_left > 0)
			c->fast_left -= sent < c->fast_left ? sent :
			    c->fast_left;
		else if (trickled)
			c->trickle_at = time_mono_ns() + c->trickle_ns;
		c->io_at = 0; /* progress: arm() starts a new bound */
	}
}

static bool
tls_wants_write(const struct net_conn *c)
{
	return c->tls != NULL && tls_session_wants_write(c->tls);
}

int
net_conn_flush(struct net_conn *c)
{
	for (;;) {
		int rc = flush_some(c), prc;
		struct pollfd pfd;
		int64_t t0;

		if (rc == NET_OK)
			return 0;
		if (rc == NET_ERROR)
			return -1;
		if (c->handshaking)
			return 0;
		/* Trickled bytes keep their pace without a waiting worker. */
		if (trickle_wait(c, time_mono_ns()) != 0)
			return 0;
		/* The budget is the connection's, not this call's: a peer
		 * that reads just enough each time still cannot hold a
		 * worker for longer than one write timeout in all. */
		if (c->flush_left_ns <= 0) {
			log_info(&c->log, "write timeout", LF_STR("remote", c->rip),
			    LF_STR("reason", "blocking flush budget used up"));
			fail_io(c);
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = c->tls != NULL && !tls_wants_write(c) ? POLLIN :
		    POLLOUT;
		pfd.revents = 0;
		t0 = time_mono_ns();
		prc = poll(&pfd, 1, (int)((c->flush_left_ns + NS_PER_MS - 1) /
		    NS_PER_MS));
		c->flush_left_ns -= time_mono_ns() - t0;
		if (prc < 0 && errno != EINTR) {
			log_debug(&c->log, "poll", LF_ERRNO(errno));
			fail_io(c);
			return -1;
		}
	}
}

/* Output past out_max: the peer does not read what it asks for. */
static void
slow_reader(struct net_conn *c)
{
	log_info(&c->log, "closing slow reader", LF_STR("remote", c->rip),
	    LF_U64("pending", c->out.len), LF_U64("max", c->r->out_max));
	fail_io(c);
}

void
net_conn_write(struct net_conn *c, const void *p, size_t n)
{
	if (c->io_failed || c->dead)
		return;
	if (n > c->r->out_max - c->out.len)
		(void)flush_some(c);
	if (c->io_failed)
		return;
	if (buf_add(&c->out, p, n) == -1) {
		slow_reader(c);
		return;
	}
	/* Never block here: send what the socket takes, keep the rest;
	 * try once per NET_WRITE_HIGH bytes added, not per small write. */
	if (c->out.len >= NET_WRITE_HIGH &&
	    c->out.len / NET_WRITE_HIGH != (c->out.len - n) / NET_WRITE_HIGH)
		(void)flush_some(c);
}

void
net_conn_puts(struct net_conn *c, const char *s)
{
	net_conn_write(c, s, strlen(s));
}

void
net_conn_printf(struct net_conn *c, const char *fmt, ...)
{
	va_list ap;
	size_t before = c->out.len;
	int rc;

	if (c->io_failed || c->dead)
		return;
	va_start(ap, fmt);
	rc = buf_vaddf(&c->out, fmt, ap);
	va_end(ap);
	if (rc == -1) {
		buf_truncate(&c->out, before);
		slow_reader(c);
		return;
	}
	if (c->out.len >= NET_WRITE_HIGH &&
	    c->out.len / NET_WRITE_HIGH != before / NET_WRITE_HIGH)
		(void)flush_some(c);
}

bool
net_conn_is_output_full(struct net_conn *c)
{
	if (c->io_failed || c->dead)
		return true; /* nothing more will be sent: stop producing */
	if (c->out.len >= NET_WRITE_HIGH)
		(void)flush_some(c);
	if (c->out.len < NET_WRITE_HIGH)
		return false;
	c->throttled = true;
	return true;
}

void
net_conn_close(struct net_conn *c)
{
	c->closing = true;
}

bool
net_conn_is_closing(const struct net_conn *c)
{
	return c->closing || c->dead;
}

/* ---- input ---- */

/* Backpressure: while the peer has not read what it was sent (or a TLS
 * switch is under way) no input is handed out; the handler gets
 * NET_EV_READ again once output is below NET_WRITE_HIGH. */
static bool
input_held(struct net_conn *c)
{
	if (c->tls_next != NULL || c->handshaking)
		return true;
	if (c->out.len < NET_WRITE_HIGH)
		return false;
	(void)flush_some(c);
	if (c->out.len < NET_WRITE_HIGH)
		return false;
	c->throttled = true;
	return true;
}

static void
touch_idle(struct net_conn *c)
{
	if (c->idle_ms > 0)
		c->idle_at = time_mono_ns() + (int64_t)c->idle_ms * NS_PER_MS;
}

/* One socket read appended to c->in. */
static int
fill(struct net_conn *c)
{
	char *p;

	if (c->io_failed)
		return NET_ERROR;
	if (c->eof)
		return NET_EOF;
	if (c->inpos > 0) {
		buf_consume(&c->in, c->inpos);
		c->inpos = 0;
	}
	p = buf_reserve(&c->in, NET_READ_CHUNK);
	if (p == NULL) {
		fail_io(c);
		return NET_ERROR;
	}
	for (;;) {
		size_t got = 0;

		if (c->tls != NULL) {
			int rc = tls_session_recv(c->tls, p, NET_READ_CHUNK,
			    &got);

			if (rc == TLS_AGAIN) {
				c->starved = true;
				return NET_AGAIN;
			}
			if (rc == TLS_EOF) {
				c->eof = true;
				return NET_EOF;
			}
			if (rc != TLS_OK) {
				log_debug(&c->log, "tls read failed");
				fail_io(c);
				return NET_ERROR;
			}
		} else {
			ssize_t n = recv(c->fd, p, NET_READ_CHUNK, MSG_DONTWAIT);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				c->starved = true;
				return NET_AGAIN;
			}
			if (n < 0) {
				log_debug(&c->log, "read", LF_ERRNO(errno));
				fail_io(c);
				return NET_ERROR;
			}
			if (n == 0) {
				c->eof = true;
				return NET_EOF;
			}
			got = (size_t)n;
		}
		buf_commit(&c->in, got);
		touch_idle(c);
		return NET_OK;
	}
}

static size_t
avail(const struct net_conn *c)
{
	return c->in.len - c->inpos;
}

size_t
net_conn_buffered(const struct net_conn *c)
{
	return avail(c);
}

void
net_conn_skip_line(struct net_conn *c)
{
	c->skipping = true;
}

int
net_conn_read_line(struct net_conn *c, size_t max, struct span *line_out,
    bool *bare_lf_out)
{
	if (input_held(c))
		return NET_AGAIN;
	for (;;) {
		const char *start = c->in.data + c->inpos, *lf;
		size_t have = avail(c);
		int rc;

		if (c->skipping) {
			lf = memchr(start, '\n', have);
			if (lf != NULL) {
				c->inpos += (size_t)(lf - start) + 1;
				c->skipping = false;
				continue;
			}
			c->inpos = c->in.len;
		} else {
			lf = memchr(start, '\n', have < max ? have : max);
			if (lf != NULL) {
				size_t len = (size_t)(lf - start);
				bool bare = len == 0 || start[len - 1] != '\r';

				c->inpos += len + 1;
				*line_out = span_of(start, bare ? len : len - 1);
				if (bare_lf_out != NULL)
					*bare_lf_out = bare;
				return NET_OK;
			}
			if (have >= max)
				return NET_TOOLONG;
		}
		rc = fill(c);
		if (rc != NET_OK)
			return rc;
	}
}

int
net_conn_read(struct net_conn *c, struct span *data_out)
{
	if (input_held(c))
		return NET_AGAIN;
	if (avail(c) == 0) {
		int rc = fill(c);

		if (rc != NET_OK)
			return rc;
	}
	*data_out = span_of(c->in.data + c->inpos, avail(c));
	return NET_OK;
}

void
net_conn_consume(struct net_conn *c, size_t n)
{
	c->inpos += n < avail(c) ? n : avail(c);
}

int
net_conn_copy_to_fd(struct net_conn *c, int fd, uint64_t *left)
{
	while (*left > 0) {
		struct span d;
		int rc = net_conn_read(c, &d);
		size_t n;

		if (rc != NET_OK)
			return rc;
		n = d.len < *left ? d.len : (size_t)*left;
		if (io_write_all(fd, d.p, n) == -1)
			return NET_ERROR;
		net_conn_consume(c, n);
		*left -= n;
	}
	return NET_OK;
}

int
net_conn_stream(struct net_conn *c, net_stream_fn *fn, void *arg)
{
	for (;;) {
		struct span d;
		bool done = false;
		size_t used;
		int rc = net_conn_read(c, &d);

		if (rc != NET_OK)
			return rc;
		used = fn(arg, d, &done);
		if (used == SIZE_MAX)
			return NET_ERROR;
		net_conn_consume(c, used);
		if (done)
			return NET_OK;
		if (used == 0 && !done) {
			/* fn needs more than is buffered: read more, bounded. */
			if (avail(c) >= NET_STREAM_HOLD_MAX)
				return NET_ERROR;
			rc = fill(c);
			if (rc != NET_OK)
				return rc;
		}
	}
}

/* ---- timers and TLS ---- */

void
net_conn_set_idle_timeout(struct net_conn *c, unsigned ms)
{
	c->idle_ms = ms;
	c->idle_at = 0;
	c->idle_rearmed = true;
	touch_idle(c);
}

void
net_conn_set_write_timeout(struct net_conn *c, unsigned ms)
{
	c->write_timeout_ns = (int64_t)ms * NS_PER_MS;
}

void
net_conn_set_trickle(struct net_conn *c, unsigned ms)
{
	if (ms == 0) {
		c->trickle_ns = 0;
		c->fast_left = 0;
		c->trickle_at = 0;
		return;
	}
	if (c->trickle_ns == 0) {
		/* What is buffered already was written at full speed. */
		c->fast_left = c->out.len;
		c->trickle_at = 0;
	}
	c->trickle_ns = (int64_t)ms * NS_PER_MS;
}

size_t
net_conn_output_pending(const struct net_conn *c)
{
	return c->out.len;
}

void
net_conn_set_timer(struct net_conn *c, unsigned ms)
{
	c->timer_at = ms > 0 ? time_mono_ns() + (int64_t)ms * NS_PER_MS : 0;
}

void
net_conn_pause_input(struct net_conn *c, bool paused)
{
	c->paused = paused;
}

int
net_conn_starttls(struct net_conn *c, struct tls_server *srv)
{
	const char *why = NULL;
	struct tls_session *s;

	/* RFC 3207 6: plaintext pipelined after STARTTLS must not be
	 * taken as commands of the TLS session. */
	if (c->tls != NULL || c->tls_next != NULL || avail(c) > 0 ||
	    srv == NULL || c->io_failed)
		return -1;
	s = tls_session_server(srv, c->fd, &why);
	if (s == NULL) {
		log_error(&c->log, "tls session", LF_ERR(why));
		return -1;
	}
	buf_release(&c->in);
	c->inpos = 0;
	/* The go-ahead goes out in plaintext from the run loop, without
	 * holding the worker; then begin_tls() switches. */
	c->tls_next = s;
	c->plain_left = c->out.len;
	(void)flush_some(c);
	return 0;
}

int
net_conn_starttls_pipelined(struct net_conn *c, struct tls_server *srv)
{
	const char *why = NULL;
	struct tls_session *s;

	if (c->tls != NULL || c->tls_next != NULL || srv == NULL ||
	    c->io_failed)
		return -1;
	s = tls_session_server_preread(srv, c->fd, c->in.data + c->inpos,
	    avail(c), &why);
	if (s == NULL) {
		log_error(&c->log, "tls session", LF_ERR(why));
		return -1;
	}
	/* The socket will not announce bytes already read: the first
	 * handshake step is started by writability (arm()). */
	c->hs_kick = avail(c) > 0;
	buf_release(&c->in);
	c->inpos = 0;
	c->tls_next = s;
	c->plain_left = c->out.len;
	(void)flush_some(c);
	return 0;
}

bool
net_conn_tls_active(const struct net_conn *c)
{
	return c->tls != NULL && !c->handshaking;
}

struct tls_session *
net_conn_tls(struct net_conn *c)
{
	return c->handshaking ? NULL : c->tls;
}

/* ---- accessors ---- */

const char *
net_conn_remote_ip(const struct net_conn *c)
{
	return c->rip;
}

uint16_t
net_conn_remote_port(const struct net_conn *c)
{
	return c->rport;
}

const char *
net_conn_local_ip(const struct net_conn *c)
{
	return c->lip;
}

uint16_t
net_conn_local_port(const struct net_conn *c)
{
	return c->lport;
}

bool
net_conn_is_loopback(const struct net_conn *c)
{
	return c->loopback;
}

uint64_t
net_conn_cid(const struct net_conn *c)
{
	return c->log.cid;
}

const struct log_ctx *
net_conn_log(const struct net_conn *c)
{
	return &c->log;
}

const char *
net_conn_listener(const struct net_conn *c)
{
	return c->l->name;
}

bool
net_conn_stopping(const struct net_conn *c)
{
	return atomic_load(&c->r->stopping);
}

/* ---- the run loop ---- */

static void
handshake_step(struct net_conn *c, unsigned *ev)
{
	const char *why = NULL;
	int rc;

	c->hs_kick = false;
	rc = tls_session_handshake(c->tls, &why);
	if (rc == TLS_AGAIN)
		return;
	if (rc != TLS_OK) {
		log_info(&c->log, "tls handshake failed", LF_ERR(why),
		    LF_STR("remote", c->rip));
		c->io_failed = true;
		c->dead = true;
		return;
	}
	c->handshaking = false;
	c->io_at = 0;
	if (log_enabled(&c->log, LOG_DEBUG))
		log_debug(&c->log, "tls handshake done",
		    LF_STR("version", tls_session_version(c->tls)),
		    LF_STR("cipher", tls_session_cipher(c->tls)),
		    LF_STR("sni", tls_session_sni(c->tls)));
	if (c->hs_starttls)
		*ev |= NET_EV_TLS;
}

static void
start(struct net_conn *c)
{
	const char *why = NULL;

	c->started = true;
	if (c->l->implicit_tls != NULL) {
		c->tls = tls_session_server(c->l->implicit_tls, c->fd, &why);
		if (c->tls == NULL) {
			log_error(&c->log, "tls session", LF_ERR(why));
			c->dead = true;
			return;
		}
		c->handshaking = true;
		c->io_at = time_mono_ns() + c->r->hs_timeout_ns;
	}
	c->sess = c->l->proto->start(c, c->l->proto_arg);
	if (c->sess == NULL)
		c->closing = true;
}

static void
deadlines(struct net_conn *c, unsigned *ev)
{
	int64_t now = time_mono_ns();

	if (c->io_at != 0 && now >= c->io_at) {
		log_info(&c->log, c->handshaking ? "tls handshake timeout" :
		    "write timeout", LF_STR("remote", c->rip));
		c->io_failed = true;
		c->dead = true;
		return;
	}
	if (c->timer_at != 0 && now >= c->timer_at) {
		c->timer_at = 0;
		*ev |= NET_EV_TIMER;
	}
	if (c->idle_at != 0 && now >= c->idle_at) {
		c->idle_at = 0;
		*ev |= NET_EV_IDLE;
	}
}

static bool
more_input(struct net_conn *c)
{
	if (c->paused || c->handshaking || c->tls_next != NULL || c->closing ||
	    c->dead || c->eof)
		return false;
	if (c->out.len >= NET_WRITE_HIGH)
		return false; /* backpressure: wait for EPOLLOUT */
	if (c->throttled)
		return true; /* output drained: input may go on */
	if (avail(c) > 0 && !c->starved)
		return true;
	return c->tls != NULL && tls_session_pending(c->tls) > 0;
}

static void
call_handler(struct net_conn *c, unsigned ev)
{
	for (int i = 0; i < NET_HANDLER_ROUNDS; i++) {
		c->starved = false;
		c->throttled = false;
		c->idle_rearmed = false;
		c->l->proto->event(c, c->sess, ev);
		if ((ev & NET_EV_IDLE) && !c->idle_rearmed)
			c->closing = true; /* the default action of idling */
		if (c->closing || c->dead)
			return;
		(void)flush_some(c);
		if (!more_input(c))
			return;
		ev = NET_EV_READ;
	}
	/* Input is left and no socket event will announce it: let the
	 * queue run, then continue (net_conn_run()). */
	c->requeue = true;
}

static void
process(struct net_conn *c, uint32_t bits)
{
	unsigned ev = 0;

	if (bits & NET_CB_FORCE) {
		c->dead = true;
		return;
	}
	if (bits & NET_CB_START)
		start(c);
	if (c->dead)
		return;
	if (bits & NET_CB_DEADLINE)
		deadlines(c, &ev);
	if (c->dead)
		return;
	if (c->handshaking && (bits & (NET_CB_READ | NET_CB_WRITE)))
		handshake_step(c, &ev);
	if (c->dead)
		return;
	if (bits & (NET_CB_WRITE | NET_CB_DEADLINE))
		(void)flush_some(c); /* a deadline may be a trickled byte's */
	/* A TLS read that stopped on a full socket continues when the
	 * socket is writable, through the next read (output that waits
	 * for its trickle time sends nothing that would continue it). */
	if ((bits & NET_CB_WRITE) && c->tls != NULL && !c->handshaking &&
	    tls_session_write_pending(c->tls) && (c->out.len == 0 ||
	    trickle_wait(c, time_mono_ns()) != 0))
		bits |= NET_CB_READ;
	if ((bits & NET_CB_READ) && !c->handshaking && !c->paused)
		ev |= NET_EV_READ;
	if ((bits & NET_CB_READ) && c->closing && !c->handshaking) {
		/* Closing: input is no longer wanted; notice a gone peer. */
		char sink[512];

		if (c->tls == NULL && recv(c->fd, sink, sizeof(sink),
		    MSG_DONTWAIT) == 0)
			c->eof = true;
	}
	if (bits & NET_CB_NOTIFY)
		ev |= NET_EV_NOTIFY;
	if (bits & NET_CB_SHUTDOWN)
		ev |= NET_EV_SHUTDOWN;
	if (!c->handshaking && more_input(c))
		ev |= NET_EV_READ;
	if (c->sess != NULL && !c->closing && ev != 0)
		call_handler(c, ev);
	if (c->eof && !c->closing)
		c->closing = true;
	if (c->closing && !c->dead) {
		/* A peer that only half-closed still gets its replies. A
		 * closing implicit-TLS connection first completes its
		 * handshake (bounded by the handshake timeout) so the
		 * goodbye written in start() reaches the peer. */
		if (c->handshaking) {
			if (c->tls == NULL)
				c->dead = true;
		} else if (flush_some(c) != NET_AGAIN) {
			c->dead = true;
		}
		else if (c->io_at == 0)
			c->io_at = write_deadline(c, time_mono_ns());
	}
}

static int64_t
earliest(const struct net_conn *c, int64_t now)
{
	int64_t t = 0;
	const int64_t all[4] = { c->idle_at, c->timer_at, c->io_at,
		trickle_wait(c, now) };

	for (size_t i = 0; i < ARRAY_LEN(all); i++)
		if (all[i] != 0 && (t == 0 || all[i] < t))
			t = all[i];
	return t;
}

/* Set the timer and epoll interest before letting go. -1: close now. */
static int
arm(struct net_conn *c)
{
	struct net_reactor *r = c->r;
	struct epoll_event ev = { 0 };
	uint32_t want = 0;
	int64_t when, now = time_mono_ns();
	bool wake = false;

	if (c->handshaking) {
		want = tls_wants_write(c) || c->hs_kick ? EPOLLOUT : EPOLLIN;
	} else {
		/* EPOLLOUT also for a record gnutls holds after a read
		 * (out empty); no EPOLLIN past the high mark: input waits
		 * until the peer reads (backpressure). Output waiting for
		 * its trickle time waits for the timer, not the socket. */
		if ((c->out.len > 0 && trickle_wait(c, now) == 0) ||
		    (c->tls != NULL && !c->paused &&
		    tls_session_write_pending(c->tls)))
			want |= EPOLLOUT;
		if (!c->closing && !c->paused && !c->eof &&
		    c->tls_next == NULL && c->out.len < NET_WRITE_HIGH)
			want |= EPOLLIN;
		if (c->closing && c->tls == NULL && !c->eof)
			want |= EPOLLIN; /* notice a peer that goes away */
		if (c->out.len == 0 && !c->closing)
			c->io_at = 0;
		else if (c->out.len > 0 && c->io_at == 0)
			c->io_at = write_deadline(c, now);
	}
	/* Nothing is held for an idle connection. */
	if (avail(c) == 0) {
		buf_release(&c->in);
		c->inpos = 0;
	}
	buf_shrink(&c->out);

	when = earliest(c, now);
	lock_take(&r->tlock);
	if (when != 0) {
		net_theap_set(&r->heap, &c->timer, when);
		wake = c->timer.idx == 0;
	} else {
		net_theap_remove(&r->heap, &c->timer);
	}
	lock_release(&r->tlock);
	if (wake)
		net_reactor_wake(r);

	if (want == 0)
		return 0;
	ev.events = want | EPOLLONESHOT;
	ev.data.u64 = (uint64_t)c->gen << 32 | c->slot; /* worker_event() */
	if (epoll_ctl(r->cepfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    c->fd, &ev) == -1) {
		log_error(&c->log, "epoll_ctl", LF_ERRNO(errno));
		return -1;
	}
	c->in_epoll = true;
	return 0;
}

static void
final_close(struct net_conn *c)
{
	struct net_reactor *r = c->r;

	if (c->tls != NULL && !c->handshaking && !c->io_failed)
		tls_session_bye(c->tls);
	if (c->sess != NULL && c->l->proto->end != NULL)
		c->l->proto->end(c, c->sess);
	c->sess = NULL;
	lock_take(&r->tlock);
	net_theap_remove(&r->heap, &c->timer);
	lock_release(&r->tlock);
	if (c->in_epoll)
		(void)epoll_ctl(r->cepfd, EPOLL_CTL_DEL, c->fd, NULL);
	/* An event taken before the DEL now finds no connection. */
	net_conn_slot_free(c);
	if (close(c->fd) == -1)
		log_debug(&c->log, "close", LF_ERRNO(errno));
	c->fd = -1;
	tls_session_free(c->tls);
	c->tls = NULL;
	tls_session_free(c->tls_next);
	c->tls_next = NULL;
	buf_release(&c->in);
	buf_release(&c->out);
	log_debug(&c->log, "connection closed", LF_STR("remote", c->rip));
	net_conn_unlink(c);
	atomic_store(&c->state, NET_CS_CLOSED);
	net_conn_put(c);
}

void
net_conn_run(struct net_conn *c)
{
	uint32_t old = atomic_load(&c->state), bits;

	/* QUEUED -> RUNNING, taking the pending bits. */
	while (!atomic_compare_exchange_weak(&c->state, &old, NET_CS_RUNNING))
		;
	bits = old & ~NET_CS_MASK;
	for (;;) {
		bool requeue;

		process(c, bits);
		if (c->dead || arm(c) == -1) {
			final_close(c);
			return;
		}
		requeue = c->requeue;
		c->requeue = false;
		old = atomic_load(&c->state);
		for (;;) {
			if (requeue) {
				/* To the back of the pool queue with READ
				 * raised: buffered input is not stranded, and
				 * one busy peer does not starve the others. */
				if (atomic_compare_exchange_weak(&c->state, &old,
				    (old & ~NET_CS_MASK) | NET_CB_READ |
				    NET_CS_QUEUED)) {
					net_pool_enqueue(c->r, c);
					return;
				}
				continue;
			}
			if ((old & ~NET_CS_MASK) != 0) {
				if (atomic_compare_exchange_weak(&c->state, &old,
				    NET_CS_RUNNING)) {
					bits = old & ~NET_CS_MASK;
					break;
				}
				continue;
			}
			if (atomic_compare_exchange_weak(&c->state, &old,
			    NET_CS_WAITING))
				return; /* c now waits for an event */
		}
	}
}
