/*
 * net.h: the network runtime: listeners, one epoll reactor thread with a
 * timer heap, a worker pool, and buffered non-blocking connections that
 * protocols drive as state machines (DESIGN.md "Processes and threads").
 *
 * Thread rule (STYLE.md 8): a connection and its session belong to one
 * thread at a time. While a connection waits it belongs to the runtime
 * (armed in the workers' epoll set) and holds no thread; when an event
 * arrives one worker runs the protocol's event() callback. All net_conn_*
 * functions below, unless marked otherwise, may only be called from
 * inside the protocol callbacks of that connection. Other threads use
 * net_conn_get/put/notify only.
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/compat.h"
#include "lib/log.h"
#include "lib/span.h"

struct buf;
struct tls_server;
struct tls_session;

struct net_reactor; /* opaque; the runtime */
struct net_conn;    /* opaque; one accepted connection */

/* Results of the incremental input functions (STYLE.md 4: 1/0/-1). */
#define NET_OK 1
#define NET_AGAIN 0
#define NET_TOOLONG (-1)
#define NET_EOF (-2)
#define NET_ERROR (-3)

/* Event bits delivered to struct net_proto.event(). */
#define NET_EV_READ 0x01     /* input may be available */
#define NET_EV_TIMER 0x02    /* the protocol timer fired */
#define NET_EV_IDLE 0x04     /* idle timeout; the connection closes after
			      * the handler unless it calls
			      * net_conn_set_idle_timeout() again */
#define NET_EV_NOTIFY 0x08   /* net_conn_notify() was called */
#define NET_EV_SHUTDOWN 0x10 /* the server stops: say goodbye and close */
#define NET_EV_TLS 0x20      /* a STARTTLS handshake completed */

#define NET_ADDR_MAX 46       /* INET6_ADDRSTRLEN */
#define NET_WRITE_HIGH 65536  /* buffered output that holds input back */
#define NET_OUT_MAX (64 * 1024 * 1024) /* one connection's pending output */

struct net_proto {
	const char *name; /* log package, e.g. "imapserver" */
	/* New connection (after accept, before any TLS handshake completes;
	 * output written here is sent once an implicit TLS handshake is
	 * done). Returns the session, or NULL to close at once. */
	void *(*start)(struct net_conn *c, void *arg);
	/* One or more NET_EV_* bits. Handle input until a read returns
	 * NET_AGAIN (or pause input); never sleep. */
	void (*event)(struct net_conn *c, void *sess, unsigned events);
	/* The connection is being closed: free the session. No output. */
	void (*end)(struct net_conn *c, void *sess);
};

struct net_params {
	unsigned workers;             /* pool size; 0 = 8 */
	unsigned handshake_timeout_ms; /* TLS handshake bound; 0 = 60000 */
	unsigned write_timeout_ms;    /* bound of a write making no progress,
				       * and each connection's total time
				       * blocked in net_conn_flush(); 0 =
				       * 30000 */
	size_t out_max;               /* pending output of one connection
				       * before it is closed as a slow
				       * reader; 0 = NET_OUT_MAX */
};

struct net_listen_params {
	const char *name;  /* listener name for logs and net_conn_listener() */
	const char *ip;    /* "127.0.0.1", "::1", "0.0.0.0", "::" */
	uint16_t port;     /* 0: the kernel picks, see *port_out */
	int fd;            /* > 0: a socket bound and listening already; ip and
			    * port are then ignored and the fd is owned by net */
	const struct net_proto *proto;
	void *proto_arg;   /* passed to start(); must outlive the reactor */
	struct tls_server *implicit_tls; /* non-NULL: TLS from the first byte */
	unsigned max_per_ip; /* concurrent connections per remote IP; 0 = none */
	const char *reject_msg; /* sent, best effort, when max_per_ip is hit */
};

/* Start the reactor and worker threads. Returns NULL with the reason
 * appended to err. The threads inherit the caller's signal mask: block
 * SIGTERM/SIGINT (and wait for them with sigwait()) before calling. The
 * runtime installs no signal handlers and never raises SIGPIPE. */
struct net_reactor *net_start(const struct net_params *p, struct buf *err);
/* Bind (unless lp->fd > 0) and start accepting. The port in use is
 * stored in *port_out when not NULL. Returns 0, or -1 with the reason
 * appended to err. Thread-safe; blocking only for bind(). */
int net_listen(struct net_reactor *r, const struct net_listen_params *lp,
    uint16_t *port_out, struct buf *err);
/* Stop: close the listeners, deliver NET_EV_SHUTDOWN to every connection,
 * wait up to grace_ms for them to close, close the rest (their end() is
 * still called), and join all threads. Blocks; call once, from a thread
 * that is not a worker or the reactor. Returns the number of connections
 * that had to be closed by force. */
unsigned net_stop(struct net_reactor *r, unsigned grace_ms);
/* Free everything after net_stop(). All handles from net_conn_get() must
 * have been put. NULL-safe. */
void net_free(struct net_reactor *r);
/* Open connections now (any thread; a snapshot). */
unsigned net_conn_count(struct net_reactor *r);
/* Worker threads started. */
unsigned net_worker_count(struct net_reactor *r);

/* References: another thread that needs to wake a connection later takes
 * a handle while it runs on the connection's worker (or holds one given
 * to it) and puts it when done. Thread-safe. */
void net_conn_get(struct net_conn *c);
void net_conn_put(struct net_conn *c);
/* Deliver NET_EV_NOTIFY to the connection soon (coalesced). Thread-safe,
 * never blocks; a no-op once the connection closed. */
void net_conn_notify(struct net_conn *c);

/* Jobs: bounded blocking work (DNS lookups) run on the worker pool beside
 * the connections, so a protocol can start it early and collect the
 * result later without holding a worker of its own meanwhile. At most
 * half the workers (at least one) run jobs at a time, so connections
 * always find a worker; further jobs wait in a FIFO. fn runs at most
 * once. arg belongs to the job and is freed with free_fn (may be NULL)
 * when the starter has put its reference and no thread runs fn any
 * more; the starter reads results in arg only after net_job_wait() or
 * net_job_is_done() said done, and before net_job_put(). net_stop()
 * runs the jobs still queued before its workers exit, so what fn uses
 * needs to outlive net_stop() only. */
struct net_job; /* opaque */
typedef void net_job_fn(void *arg);

/* Queue fn(arg) for r's workers and return the starter's reference.
 * With r NULL (no runtime: tools, unit tests) fn runs at once on the
 * calling thread. Any thread; never blocks when r is not NULL. */
struct net_job *net_job_start(struct net_reactor *r, net_job_fn *fn,
    net_job_fn *free_fn, void *arg);
/* Whether fn returned. Thread-safe, never blocks. */
bool net_job_is_done(struct net_job *j);
/* Wait until fn returned or deadline_ns (time_mono_ns() clock) passed;
 * returns whether it returned. A job no worker has taken yet is run by
 * the caller at once, whatever the deadline: a wait never depends on a
 * pool whose workers may all be waiting too. Blocks: never on the
 * reactor. Thread-safe. */
bool net_job_wait(struct net_job *j, int64_t deadline_ns);
/* Drop the starter's reference. A job no worker has taken yet is
 * cancelled (fn never runs); a running one finishes on its own.
 * NULL-safe; thread-safe; never blocks. */
void net_job_put(struct net_job *j);
/* The runtime of c, for net_job_start(); lives while c does. */
struct net_reactor *net_conn_reactor(const struct net_conn *c);

/* Line mode. Return the next line (without its CRLF or LF) in *line_out,
 * valid until the next input call; *bare_lf_out (may be NULL) tells
 * whether it ended in a bare LF. max bounds the line including its
 * terminator. NET_OK, NET_AGAIN (no complete line yet, or output over
 * NET_WRITE_HIGH holds input back; the handler returns and is called
 * again with NET_EV_READ), NET_TOOLONG (max bytes without a
 * line end; call net_conn_skip_line() to drop the line, or close),
 * NET_EOF (peer closed; a partial last line is dropped) or NET_ERROR. */
int net_conn_read_line(struct net_conn *c, size_t max, struct span *line_out,
    bool *bare_lf_out);
/* Drop input up to and including the next LF, now and from input still
 * to come, before the next line is returned. */
void net_conn_skip_line(struct net_conn *c);

/* Bulk mode. Make buffered input available in *data_out (at most what is
 * buffered plus one socket read). NET_OK with data_out->len > 0,
 * NET_AGAIN, NET_EOF or NET_ERROR. Consume what was used with
 * net_conn_consume(). */
int net_conn_read(struct net_conn *c, struct span *data_out);
void net_conn_consume(struct net_conn *c, size_t n);
/* Copy input to fd (a temp file) until *left is 0, decrementing it; only
 * a socket read's worth is in memory at a time. NET_OK when done,
 * NET_AGAIN, NET_EOF, or NET_ERROR (also for a failed write to fd, with
 * errno kept). */
int net_conn_copy_to_fd(struct net_conn *c, int fd, uint64_t *left);
/* Stream input through fn: it gets the buffered bytes, returns how many
 * it used and sets *done to stop. NET_OK once done, NET_AGAIN, NET_EOF,
 * NET_ERROR (fn returned SIZE_MAX, or used nothing of 1 MiB). */
typedef size_t net_stream_fn(void *arg, struct span in, bool *done);
int net_conn_stream(struct net_conn *c, net_stream_fn *fn, void *arg);
/* Bytes of input already buffered (plaintext, not yet returned). */
size_t net_conn_buffered(const struct net_conn *c);

/* Output, buffered; sent when the handler returns. Never blocks: past
 * NET_WRITE_HIGH buffered bytes it sends what the socket takes now, and
 * the input functions above return NET_AGAIN until the peer has read
 * enough (backpressure; the handler is called again with NET_EV_READ once
 * output is below the mark). Output past out_max (struct net_params) closes the connection as a slow reader. A failed
 * write marks the connection for closing; later writes are dropped. */
void net_conn_write(struct net_conn *c, const void *p, size_t n);
void net_conn_puts(struct net_conn *c, const char *s);
void net_conn_printf(struct net_conn *c, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
/* True when NET_WRITE_HIGH or more bytes of output wait for the peer. A
 * handler that produces a large response in steps (many FETCH results,
 * a long listing) checks this between steps: when true it keeps its
 * place in the session and returns; it is called again with NET_EV_READ
 * once the output drained below the mark. Output then stays bounded by
 * about NET_WRITE_HIGH plus one step however slowly the peer reads. */
bool net_conn_is_output_full(struct net_conn *c);
/* Send all buffered output now, blocking the worker until it is sent.
 * The time one connection spends blocked here is bounded in total (the
 * write timeout over the connection's life, not per call); when it is
 * used up the connection fails. Returns 0 or -1 (the connection will
 * close). Prefer returning from the handler: output is sent then without
 * holding a worker. */
int net_conn_flush(struct net_conn *c);
/* Close after the handler returns (pending output is sent first, within
 * the write timeout). end() follows. */
void net_conn_close(struct net_conn *c);
bool net_conn_is_closing(const struct net_conn *c);

/* Timers. The idle timeout (0 = none) is restarted by every input and
 * fires NET_EV_IDLE; the protocol timer fires NET_EV_TIMER once after ms
 * (0 cancels). */
void net_conn_set_idle_timeout(struct net_conn *c, unsigned ms);
void net_conn_set_timer(struct net_conn *c, unsigned ms);
/* How long pending output may wait without the peer reading any of it
 * before the connection is closed as a slow reader (ms; 0: the runtime's
 * write_timeout_ms). Takes effect for the next wait. */
void net_conn_set_write_timeout(struct net_conn *c, unsigned ms);
/* Trickle (spec/imap.md 2.2 slow mode): with ms > 0, output written from
 * now on is sent one byte at a time, ms apart, paced by the reactor's
 * timer heap: no worker waits for it. Output already buffered when
 * trickling begins goes first at full speed, so order is kept. Over TLS
 * each byte is a record of its own. ms 0 ends trickling: everything
 * pending then goes at full speed. While trickling, a new ms only changes
 * the interval. Backpressure and out_max apply as to any output. The
 * write timeout bounds each byte from the moment it is due, not from the
 * byte before: a peer that reads is never closed because trickling is
 * slow (whatever ms is), one whose socket takes no due byte for the
 * write timeout is. net_conn_flush() sends what was written before
 * trickling began and never waits for a trickled byte. At shutdown a
 * trickling connection gets net_stop()'s grace like any other, then is
 * closed. */
void net_conn_set_trickle(struct net_conn *c, unsigned ms);
/* Bytes of output not yet sent. */
size_t net_conn_output_pending(const struct net_conn *c);
/* While paused the connection is not woken for input (used with the
 * protocol timer for delays such as the auth-failure slowdown). */
void net_conn_pause_input(struct net_conn *c, bool paused);

/* Start TLS on this connection (STARTTLS, RFC 3207 / RFC 9051 6.2.1):
 * pending output (the "go ahead" reply) is sent in plaintext without
 * blocking the worker, then the handshake runs in the background and
 * NET_EV_TLS arrives when it completed; output written after this call
 * goes over TLS. Input functions return NET_AGAIN until then. A failed
 * handshake closes the connection. Returns -1 (and changes nothing) when
 * TLS is already active or plaintext input is buffered after the
 * command: RFC 3207 6 / CVE-2011-0411 command injection. */
int net_conn_starttls(struct net_conn *c, struct tls_server *srv);
/* As net_conn_starttls(), for protocols where bytes pipelined after the
 * command are TLS records (IMAP, spec/imap.md 1; SMTP, spec/smtp.md 4):
 * input buffered after
 * the command is not refused but fed to the handshake first, so it can
 * never be taken as a plaintext command. Returns -1 (and changes
 * nothing) when TLS is already active or the session cannot be made. */
int net_conn_starttls_pipelined(struct net_conn *c, struct tls_server *srv);
bool net_conn_tls_active(const struct net_conn *c);
/* The TLS session (NULL without TLS), for channel binding and
 * describing; borrowed while the connection lives. */
struct tls_session *net_conn_tls(struct net_conn *c);

/* Facts of the connection; strings borrowed while it lives. */
const char *net_conn_remote_ip(const struct net_conn *c);
uint16_t net_conn_remote_port(const struct net_conn *c);
const char *net_conn_local_ip(const struct net_conn *c);
uint16_t net_conn_local_port(const struct net_conn *c);
bool net_conn_is_loopback(const struct net_conn *c);
uint64_t net_conn_cid(const struct net_conn *c);
const struct log_ctx *net_conn_log(const struct net_conn *c);
const char *net_conn_listener(const struct net_conn *c);
/* True once net_stop() began (any thread). */
bool net_conn_stopping(const struct net_conn *c);

#endif
