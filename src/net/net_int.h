/*
 * net_int.h: what net.c (reactor, pool, listeners) and net_conn.c
 * (connection I/O and the per-connection run loop) share. Private to
 * src/net.
 */
#ifndef NET_NET_INT_H
#define NET_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "net/net.h"
#include "net/net_timer.h"

/* First member of everything registered with epoll. */
enum net_kind {
	NET_KIND_CONN = 1,
	NET_KIND_LISTENER,
	NET_KIND_WAKE,
};

/*
 * The connection's ownership word: the state in the low bits, events not
 * yet handled above them. Whoever raises an event on a WAITING connection
 * moves it to QUEUED and enqueues it; otherwise the bit is only added and
 * the running worker picks it up before it lets go (net_conn_run()).
 */
#define NET_CS_MASK 0x3u
#define NET_CS_WAITING 0u
#define NET_CS_QUEUED 1u
#define NET_CS_RUNNING 2u
#define NET_CS_CLOSED 3u
#define NET_CB_READ (1u << 4)
#define NET_CB_WRITE (1u << 5)
#define NET_CB_DEADLINE (1u << 6)
#define NET_CB_NOTIFY (1u << 7)
#define NET_CB_SHUTDOWN (1u << 8)
#define NET_CB_START (1u << 9)
#define NET_CB_FORCE (1u << 10)

#define NET_IPTAB_SIZE 1024 /* buckets of a listener's per-IP table */
#define NET_READ_CHUNK 16384 /* one socket read */

struct net_ipcount {
	struct net_ipcount *next;
	unsigned n;
	char ip[NET_ADDR_MAX];
};

struct net_listener {
	enum net_kind kind;
	int fd;
	struct net_reactor *r;
	struct net_listener *next; /* r->listeners; guarded by r->lock */
	char *name;
	const struct net_proto *proto;
	void *proto_arg;
	struct tls_server *implicit_tls;
	unsigned max_per_ip;
	char *reject_msg;
	struct net_ipcount **ips; /* NET_IPTAB_SIZE buckets; r->lock */
	int64_t refused_log_at; /* reactor thread: last refusal logged */
	uint64_t refused_quiet;  /* reactor thread: refusals since, unlogged */
};

/* An entry of the connection table (net.c): workers find the connection
 * of an epoll event through it, so an event still in flight after the
 * connection closed finds nothing instead of freed memory. */
struct net_slot {
	struct net_conn *c;     /* NULL: free */
	uint32_t gen;           /* bumped at each use; part of the handle */
	uint32_t next;          /* free list */
};

struct net_conn {
	enum net_kind kind;
	int fd;
	uint32_t slot, gen;  /* its entry in r->slots (the epoll handle) */
	_Atomic uint32_t state; /* NET_CS_* | NET_CB_* */
	_Atomic uint32_t refs;
	struct net_reactor *r;
	struct net_listener *l;
	void *sess;
	struct tls_session *tls;
	struct buf in;       /* received plaintext; freed when idle */
	size_t inpos;        /* bytes of in already returned */
	struct buf out;      /* pending output; freed when idle */
	struct tls_session *tls_next; /* STARTTLS: starts once plain_left
				       * bytes of plaintext output are sent */
	size_t plain_left;
	struct net_timer timer; /* earliest deadline; r->tlock */
	int64_t idle_at, timer_at, io_at; /* deadlines (mono ns), 0 = none */
	unsigned idle_ms;
	int64_t write_timeout_ns; /* a write without progress; 0: the
				   * runtime's (net_conn_set_write_timeout) */
	int64_t flush_left_ns; /* what net_conn_flush() may still block */
	int64_t trickle_ns;   /* > 0: output goes one byte per interval
			       * (net_conn_set_trickle) */
	int64_t trickle_at;   /* mono ns: the next trickled byte is due */
	size_t fast_left;     /* head bytes of out written before trickling
			       * began: sent at full speed */
	struct net_conn *qnext;  /* pool FIFO; r->plock */
	struct net_conn *prev, *next; /* r->conns; r->lock */
	struct log_ctx log;
	char rip[NET_ADDR_MAX], lip[NET_ADDR_MAX];
	uint16_t rport, lport;
	bool started : 1;
	bool closing : 1;    /* close once output is sent */
	bool dead : 1;       /* close now */
	bool eof : 1;
	bool paused : 1;
	bool skipping : 1;   /* dropping input up to the next LF */
	bool handshaking : 1;
	bool hs_starttls : 1;
	bool hs_kick : 1;     /* handshake input was read before TLS began */
	bool starved : 1;    /* a read hit EAGAIN during this handler call */
	bool in_epoll : 1;
	bool io_failed : 1;
	bool loopback : 1;
	bool idle_rearmed : 1;
	bool throttled : 1;  /* input held back by output over the high mark */
	bool requeue : 1;    /* handler rounds used up with input left */
};

struct net_reactor {
	enum net_kind kind; /* NET_KIND_WAKE: the eventfd's epoll tag */
	int epfd;           /* the reactor's: listeners and evfd */
	int evfd;
	int cepfd;          /* the workers': connections and pevfd */
	int pevfd;          /* wakes a worker waiting in cepfd */
	unsigned workers_n;
	int64_t hs_timeout_ns, write_timeout_ns;
	size_t out_max;       /* pending output per connection */
	pthread_t reactor_thread;
	bool reactor_started;
	pthread_t *workers;
	unsigned workers_started;
	struct log_ctx log;

	struct lock lock;     /* LOCK_ORDER_NET: the fields below */
	pthread_cond_t cv;    /* conns closing, listeners closed */
	struct net_listener *listeners;
	struct net_conn *conns;
	unsigned nconns;
	struct net_conn *freelist; /* refs 0, freed by the reactor */
	bool close_listeners;  /* request to the reactor */
	bool listeners_closed;

	struct lock tlock;    /* LOCK_ORDER_TIMER */
	struct net_theap heap;

	struct lock plock;    /* LOCK_ORDER_POOL */
	struct net_conn *qhead, *qtail;
	atomic_uint idle;     /* workers waiting in cepfd; raised under
			       * plock, lowered without it */
	struct net_job *jhead, *jtail; /* jobs not yet taken (FIFO) */
	unsigned jrunning;    /* workers running a job now */
	unsigned jmax;        /* at most this many (half the pool) */
	bool pool_stop;

	struct lock slock;    /* LOCK_ORDER_POOL, leaf: the table below */
	struct net_slot *slots;
	uint32_t nslots;
	uint32_t slot_free;   /* first free entry, or UINT32_MAX */

	atomic_bool stopping;
	atomic_bool reactor_stop;
	int64_t accept_paused_until; /* reactor thread only */
};

enum net_job_state {
	NET_JOB_QUEUED,  /* in the FIFO, not yet taken */
	NET_JOB_RUNNING, /* fn runs on a worker or a waiter */
	NET_JOB_DONE,    /* fn returned, or cancelled before it started */
};

/* A job (net.h; net_job.c). */
struct net_job {
	struct lock lock;        /* LOCK_ORDER_POOL: state, refs; never
				  * held with r->plock */
	pthread_cond_t cv;       /* state became NET_JOB_DONE */
	enum net_job_state state;
	unsigned refs;           /* starter's, and the pool's until taken */
	net_job_fn *fn;
	net_job_fn *free_fn;     /* frees arg with the last reference */
	void *arg;
	struct net_job *qnext;   /* r->jhead FIFO; r->plock */
};

/* Hand a job to the pool (any thread); the pool holds a reference. */
void net_pool_enqueue_job(struct net_reactor *r, struct net_job *j);
/* Worker: run a job taken from the FIFO unless it already started or
 * was cancelled, then drop the pool's reference. */
void net_job_run_pooled(struct net_job *j);

/* Raise event bits on c (any thread). */
void net_conn_raise(struct net_conn *c, uint32_t bits);
/* As net_conn_raise(), but when c was waiting the caller (a worker) now
 * owns it as QUEUED and must run it: returns true then. */
bool net_conn_raise_take(struct net_conn *c, uint32_t bits);
/* Take c's entry out of the connection table (its handle then finds
 * nothing). */
void net_conn_slot_free(struct net_conn *c);
/* Worker: run c after taking it from the queue. */
void net_conn_run(struct net_conn *c);
/* Wake the reactor (any thread). */
void net_reactor_wake(struct net_reactor *r);
/* Hand a QUEUED connection to the pool (any thread). */
void net_pool_enqueue(struct net_reactor *r, struct net_conn *c);
/* Unlink c from the reactor's books (list, per-IP count). */
void net_conn_unlink(struct net_conn *c);
/* Free a connection whose references are gone (reactor or net_free). */
void net_conn_destroy(struct net_conn *c);

#endif
