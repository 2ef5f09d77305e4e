/*
 * net.c: the runtime's threads: the reactor (epoll, accept, timer heap)
 * and the worker pool, plus listeners, per-IP connection counting and
 * shutdown. Peers are untrusted: accept errors and limits are handled
 * here, what they send is handled in net_conn.c and the protocols.
 *
 * Threads: one reactor thread owns the listeners' epoll set and the
 * timers and frees connections; N workers run connections and jobs
 * (net_job.c) taken from locked FIFOs, and while there is none they wait
 * in the connections' epoll set themselves, so input wakes the worker
 * that handles it (one thread switch, not two). They find a connection
 * through the connection table by a handle (slot and generation), never
 * by a pointer an event could carry past its close. Locks: r->lock (NET)
 * < r->tlock (TIMER) < r->plock (POOL), taken in that order only;
 * r->slock is a leaf.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "net/net.h"
#include "net/net_int.h"

#include "lib/banned.h"

#define NET_EPOLL_BATCH 128
#define NET_ACCEPT_BATCH 64
#define NET_ACCEPT_PAUSE_NS (100 * NS_PER_MS)
#define NET_DEFAULT_WORKERS 8
#define NET_DEFAULT_HS_MS 60000      /* spec/imap.md 1: handshake 1 minute */
#define NET_DEFAULT_WRITE_MS 30000   /* spec/smtp.md 2: 30 s per write */
#define NET_FORCE_WAIT_NS (5 * NS_PER_SEC)
#define NET_KEEPALIVE_S 300          /* spec/imap.md 1: 5 minute period */
#define NET_REFUSED_LOG_NS NS_PER_SEC /* one "connection refused" line per
				       * listener per interval */

void
net_reactor_wake(struct net_reactor *r)
{
	uint64_t one = 1;

	/* A full counter still wakes the reactor; nothing else can fail. */
	(void)!write(r->evfd, &one, sizeof(one));
}

/* Wake a worker waiting in the connections' epoll set (edge-triggered:
 * each write wakes one). */
static void
pool_wake(struct net_reactor *r)
{
	uint64_t one = 1;

	/* A full counter still signals; nothing else can fail. */
	(void)!write(r->pevfd, &one, sizeof(one));
}

/* Needs r->plock: wake a waiting worker for queued work. */
static void
pool_kick(struct net_reactor *r)
{
	LOCK_ASSERT_HELD(&r->plock);
	if (atomic_load(&r->idle) > 0)
		pool_wake(r);
}

void
net_pool_enqueue(struct net_reactor *r, struct net_conn *c)
{
	lock_take(&r->plock);
	c->qnext = NULL;
	if (r->qtail != NULL)
		r->qtail->qnext = c;
	else
		r->qhead = c;
	r->qtail = c;
	pool_kick(r);
	lock_release(&r->plock);
}

void
net_pool_enqueue_job(struct net_reactor *r, struct net_job *j)
{
	lock_take(&r->plock);
	j->qnext = NULL;
	if (r->jtail != NULL)
		r->jtail->qnext = j;
	else
		r->jhead = j;
	r->jtail = j;
	pool_kick(r);
	lock_release(&r->plock);
}

/* Whether a worker may take a job now: within jmax, or draining at stop.
 * Needs r->plock. */
static bool
job_ready(const struct net_reactor *r)
{
	return r->jhead != NULL && (r->jrunning < r->jmax || r->pool_stop);
}

/* Run one job taken from the FIFO, then let another worker take the next
 * one it may have been held back for. */
static void
worker_job(struct net_reactor *r, struct net_job *j)
{
	net_job_run_pooled(j);
	lock_take(&r->plock);
	r->jrunning--;
	if (r->jhead != NULL)
		pool_kick(r);
	lock_release(&r->plock);
}

/* An event of the connections' epoll set: the connection its handle
 * names, if it is still open, is raised, and run here when it was
 * waiting. */
static void
worker_event(struct net_reactor *r, const struct epoll_event *ev)
{
	uint32_t idx = (uint32_t)ev->data.u64, gen = ev->data.u64 >> 32;
	uint32_t bits = 0;
	struct net_conn *c = NULL;

	if (ev->data.u64 == UINT64_MAX) {
		uint64_t n;

		(void)!read(r->pevfd, &n, sizeof(n)); /* queued work: loop */
		return;
	}
	lock_take(&r->slock);
	if (idx < r->nslots && r->slots[idx].c != NULL &&
	    r->slots[idx].gen == gen) {
		c = r->slots[idx].c;
		net_conn_get(c);
	}
	lock_release(&r->slock);
	if (c == NULL)
		return; /* closed since the event was queued */
	if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		bits |= NET_CB_READ;
	if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		bits |= NET_CB_WRITE;
	if (net_conn_raise_take(c, bits))
		net_conn_run(c);
	net_conn_put(c);
}

static void *
worker_main(void *arg)
{
	struct net_reactor *r = arg;
	struct net_conn *c;
	struct net_job *j;
	struct epoll_event ev;
	int n;

	for (;;) {
		lock_take(&r->plock);
		if (job_ready(r)) {
			j = r->jhead;
			r->jhead = j->qnext;
			if (r->jhead == NULL)
				r->jtail = NULL;
			r->jrunning++;
			if (r->qhead != NULL || job_ready(r))
				pool_kick(r); /* more for another worker */
			lock_release(&r->plock);
			worker_job(r, j);
			continue;
		}
		c = r->qhead;
		if (c != NULL) {
			r->qhead = c->qnext;
			if (r->qhead == NULL)
				r->qtail = NULL;
			if (r->qhead != NULL || job_ready(r))
				pool_kick(r);
			lock_release(&r->plock);
			net_conn_run(c);
			continue;
		}
		if (r->pool_stop) {
			pool_kick(r); /* the next waiting worker stops too */
			lock_release(&r->plock);
			break;
		}
		atomic_fetch_add(&r->idle, 1);
		lock_release(&r->plock);
		n = epoll_wait(r->cepfd, &ev, 1, -1);
		atomic_fetch_sub(&r->idle, 1);
		if (n == 1) {
			worker_event(r, &ev);
		} else if (n < 0 && errno != EINTR) {
			log_error(&r->log, "epoll_wait", LF_ERRNO(errno));
			(void)poll(NULL, 0, 100); /* not a busy loop */
		}
	}
	return NULL;
}

/* ---- the connection table ---- */

/* Give c an entry: its epoll handle. */
static void
slot_alloc(struct net_reactor *r, struct net_conn *c)
{
	struct net_slot *e;

	lock_take(&r->slock);
	if (r->slot_free == UINT32_MAX) {
		uint32_t n = r->nslots == 0 ? 64 : r->nslots * 2;

		assert(n > r->nslots && n < UINT32_MAX);
		r->slots = xreallocarray(r->slots, n, sizeof(*r->slots));
		for (uint32_t i = r->nslots; i < n; i++) {
			r->slots[i].c = NULL;
			r->slots[i].gen = 0;
			r->slots[i].next = i + 1 < n ? i + 1 : UINT32_MAX;
		}
		r->slot_free = r->nslots;
		r->nslots = n;
	}
	c->slot = r->slot_free;
	e = &r->slots[c->slot];
	r->slot_free = e->next;
	e->c = c;
	e->gen++;
	c->gen = e->gen;
	lock_release(&r->slock);
}

void
net_conn_slot_free(struct net_conn *c)
{
	struct net_reactor *r = c->r;
	struct net_slot *e;

	lock_take(&r->slock);
	e = &r->slots[c->slot];
	if (e->c == c) {
		e->c = NULL;
		e->next = r->slot_free;
		r->slot_free = c->slot;
	}
	lock_release(&r->slock);
}

static unsigned
ip_hash(const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *ip != '\0'; ip++) {
		h ^= (unsigned char)*ip;
		h *= 16777619u;
	}
	return h % NET_IPTAB_SIZE;
}

static struct net_ipcount **
ip_find(struct net_listener *l, const char *ip)
{
	struct net_ipcount **pp = &l->ips[ip_hash(ip)];

	while (*pp != NULL && strcmp((*pp)->ip, ip) != 0)
		pp = &(*pp)->next;
	return pp;
}

void
net_conn_unlink(struct net_conn *c)
{
	struct net_reactor *r = c->r;
	struct net_listener *l = c->l;

	lock_take(&r->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	if (l->ips != NULL) {
		struct net_ipcount **pp = ip_find(l, c->rip);
		struct net_ipcount *e = *pp;

		if (e != NULL && --e->n == 0) {
			*pp = e->next;
			free(e);
		}
	}
	r->nconns--;
	pthread_cond_broadcast(&r->cv);
	lock_release(&r->lock);
}

/* Text form of an address. Returns -1 (out "") for a family or address
 * inet_ntop cannot show. */
static int
addr_text(const struct sockaddr_storage *ss, char *out, uint16_t *port,
    bool *loopback)
{
	const char *t = NULL;

	out[0] = '\0';
	*port = 0;
	*loopback = false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		t = inet_ntop(AF_INET, &sin->sin_addr, out, NET_ADDR_MAX);
		*port = ntohs(sin->sin_port);
		*loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			t = inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out,
			    NET_ADDR_MAX);
			*loopback = sin6->sin6_addr.s6_addr[12] == 127;
		} else {
			t = inet_ntop(AF_INET6, &sin6->sin6_addr, out,
			    NET_ADDR_MAX);
			*loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		}
	}
	if (t == NULL) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

static void
tune_socket(int fd)
{
	int one = 1, idle = NET_KEEPALIVE_S;

	/* Output is coalesced in our buffer; Nagle would only add delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
}

/* Returns false when the per-IP limit refuses the connection. */
static bool
conn_register(struct net_reactor *r, struct net_conn *c)
{
	struct net_listener *l = c->l;
	bool ok = true;

	lock_take(&r->lock);
	if (atomic_load(&r->stopping)) {
		ok = false;
	} else if (l->ips != NULL) {
		struct net_ipcount **pp = ip_find(l, c->rip);

		if (*pp != NULL && (*pp)->n >= l->max_per_ip) {
			ok = false;
		} else {
			if (*pp == NULL) {
				*pp = xcalloc(1, sizeof(**pp));
				memcpy((*pp)->ip, c->rip, sizeof(c->rip));
			}
			(*pp)->n++;
		}
	}
	if (ok) {
		c->next = r->conns;
		if (r->conns != NULL)
			r->conns->prev = c;
		r->conns = c;
		r->nconns++;
	}
	lock_release(&r->lock);
	return ok;
}

/* A flood of refused connections must not flood the log: at most one
 * line per listener per NET_REFUSED_LOG_NS, counting the quiet ones.
 * Reactor thread only (the fields are its own). */
static void
log_refused(struct net_reactor *r, struct net_listener *l,
    const struct net_conn *c)
{
	int64_t now = time_mono_ns();

	if (l->refused_log_at != 0 && now - l->refused_log_at <
	    NET_REFUSED_LOG_NS) {
		l->refused_quiet++;
		return;
	}
	log_info(&c->log, "connection refused", LF_STR("listener", l->name),
	    LF_STR("remote", c->rip),
	    LF_STR("reason", atomic_load(&r->stopping) ? "shutdown" :
	    "too many connections from ip"),
	    LF_U64("suppressed", l->refused_quiet));
	l->refused_log_at = now;
	l->refused_quiet = 0;
}

static void
conn_accepted(struct net_reactor *r, struct net_listener *l, int fd,
    const struct sockaddr_storage *ss)
{
	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);
	struct net_conn *c = xcalloc(1, sizeof(*c));
	bool lo;

	c->kind = NET_KIND_CONN;
	c->fd = fd;
	c->r = r;
	c->l = l;
	slot_alloc(r, c);
	atomic_init(&c->state, NET_CS_WAITING);
	atomic_init(&c->refs, 1); /* the open connection's own reference */
	buf_init(&c->in, BUF_NOMAX);
	buf_init(&c->out, r->out_max);
	net_timer_init(&c->timer);
	c->flush_left_ns = r->write_timeout_ns;
	c->log = log_ctx_init(l->proto->name, log_new_cid());
	if (addr_text(ss, c->rip, &c->rport, &lo) == -1)
		log_debug(&c->log, "remote address not shown",
		    LF_U64("family", ss->ss_family));
	c->loopback = lo;
	if (getsockname(fd, (struct sockaddr *)&local, &sl) == -1)
		log_debug(&c->log, "getsockname", LF_ERRNO(errno));
	else if (addr_text(&local, c->lip, &c->lport, &lo) == -1)
		log_debug(&c->log, "local address not shown",
		    LF_U64("family", local.ss_family));
	tune_socket(fd);
	if (!conn_register(r, c)) {
		if (l->reject_msg != NULL && !atomic_load(&r->stopping))
			(void)!send(fd, l->reject_msg, strlen(l->reject_msg),
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		log_refused(r, l, c);
		if (close(fd) == -1)
			log_debug(&c->log, "close", LF_ERRNO(errno));
		net_conn_slot_free(c);
		free(c);
		return;
	}
	log_debug(&c->log, "new connection", LF_STR("listener", l->name),
	    LF_STR("remote", c->rip), LF_U64("rport", c->rport),
	    LF_STR("local", c->lip), LF_U64("lport", c->lport));
	net_conn_raise(c, NET_CB_START);
}

static void
listeners_set_events(struct net_reactor *r, uint32_t events)
{
	lock_take(&r->lock);
	for (struct net_listener *l = r->listeners; l != NULL; l = l->next) {
		struct epoll_event ev = { .events = events, .data.ptr = l };

		if (l->fd >= 0)
			(void)epoll_ctl(r->epfd, EPOLL_CTL_MOD, l->fd, &ev);
	}
	lock_release(&r->lock);
}

static void
accept_some(struct net_reactor *r, struct net_listener *l)
{
	for (int i = 0; i < NET_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_accepted(r, l, fd, &ss);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		/* Out of descriptors or memory: stop accepting briefly rather
		 * than spin on a listener that stays readable. */
		log_error(&r->log, "accept", LF_ERRNO(errno),
		    LF_STR("listener", l->name));
		r->accept_paused_until = time_mono_ns() + NET_ACCEPT_PAUSE_NS;
		listeners_set_events(r, 0);
		return;
	}
}

static void
close_listeners(struct net_reactor *r)
{
	lock_take(&r->lock);
	for (struct net_listener *l = r->listeners; l != NULL; l = l->next) {
		if (l->fd < 0)
			continue;
		(void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, l->fd, NULL);
		if (close(l->fd) == -1)
			log_error(&r->log, "closing listener", LF_ERRNO(errno),
			    LF_STR("listener", l->name));
		l->fd = -1;
	}
	r->listeners_closed = true;
	pthread_cond_broadcast(&r->cv);
	lock_release(&r->lock);
}

static int
reactor_timeout(struct net_reactor *r)
{
	struct net_timer *t;
	int64_t now = time_mono_ns(), when = -1, ms;

	lock_take(&r->tlock);
	t = net_theap_peek(&r->heap);
	if (t != NULL)
		when = t->when;
	lock_release(&r->tlock);
	if (r->accept_paused_until != 0 &&
	    (when < 0 || r->accept_paused_until < when))
		when = r->accept_paused_until;
	if (when < 0)
		return -1;
	if (when <= now)
		return 0;
	ms = (when - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > 60000 ? 60000 : (int)ms;
}

static void
fire_timers(struct net_reactor *r)
{
	int64_t now = time_mono_ns();
	struct net_timer *t;

	lock_take(&r->tlock);
	while ((t = net_theap_pop_due(&r->heap, now)) != NULL) {
		struct net_conn *c = (struct net_conn *)((char *)t -
		    offsetof(struct net_conn, timer));

		net_conn_raise(c, NET_CB_DEADLINE);
	}
	lock_release(&r->tlock);
}

static void
drain_freelist(struct net_reactor *r)
{
	struct net_conn *c;

	lock_take(&r->lock);
	c = r->freelist;
	r->freelist = NULL;
	lock_release(&r->lock);
	while (c != NULL) {
		struct net_conn *next = c->next;

		net_conn_destroy(c);
		c = next;
	}
}

static void
dispatch(struct net_reactor *r, const struct epoll_event *ev)
{
	enum net_kind *kind = ev->data.ptr;

	switch (*kind) {
	case NET_KIND_WAKE: {
		uint64_t n;

		(void)!read(r->evfd, &n, sizeof(n));
		break;
	}
	case NET_KIND_LISTENER: {
		struct net_listener *l = ev->data.ptr;

		if (l->fd >= 0 && !atomic_load(&r->stopping))
			accept_some(r, l);
		break;
	}
	case NET_KIND_CONN: /* in the workers' set (worker_event()) */
		break;
	}
}

static void *
reactor_main(void *arg)
{
	struct net_reactor *r = arg;
	struct epoll_event evs[NET_EPOLL_BATCH];
	bool want_close;

	while (!atomic_load(&r->reactor_stop)) {
		int n = epoll_wait(r->epfd, evs, NET_EPOLL_BATCH,
		    reactor_timeout(r));

		if (n < 0 && errno != EINTR) {
			log_error(&r->log, "epoll_wait", LF_ERRNO(errno));
			n = 0;
		}
		for (int i = 0; i < n; i++)
			dispatch(r, &evs[i]);
		fire_timers(r);
		if (r->accept_paused_until != 0 &&
		    time_mono_ns() >= r->accept_paused_until) {
			r->accept_paused_until = 0;
			listeners_set_events(r, EPOLLIN);
		}
		lock_take(&r->lock);
		want_close = r->close_listeners && !r->listeners_closed;
		lock_release(&r->lock);
		if (want_close)
			close_listeners(r);
		/* Only now: no event of this batch refers to a freed conn. */
		drain_freelist(r);
	}
	return NULL;
}

struct net_reactor *
net_start(const struct net_params *p, struct buf *err)
{
	struct net_reactor *r = xcalloc(1, sizeof(*r));
	struct epoll_event ev = { .events = EPOLLIN };
	int rc;

	r->kind = NET_KIND_WAKE;
	r->workers_n = p->workers > 0 ? p->workers : NET_DEFAULT_WORKERS;
	r->jmax = r->workers_n / 2 > 0 ? r->workers_n / 2 : 1;
	r->hs_timeout_ns = (int64_t)(p->handshake_timeout_ms > 0 ?
	    p->handshake_timeout_ms : NET_DEFAULT_HS_MS) * NS_PER_MS;
	r->write_timeout_ns = (int64_t)(p->write_timeout_ms > 0 ?
	    p->write_timeout_ms : NET_DEFAULT_WRITE_MS) * NS_PER_MS;
	r->out_max = p->out_max > 0 ? p->out_max : NET_OUT_MAX;
	r->log = log_ctx_init("net", 0);
	lock_init(&r->lock, LOCK_ORDER_NET, "net");
	lock_init(&r->tlock, LOCK_ORDER_TIMER, "net timers");
	lock_init(&r->plock, LOCK_ORDER_POOL, "net pool");
	lock_init(&r->slock, LOCK_ORDER_POOL, "net slots");
	lock_cond_init(&r->cv);
	net_theap_init(&r->heap);
	atomic_init(&r->stopping, false);
	atomic_init(&r->reactor_stop, false);
	atomic_init(&r->idle, 0);
	r->slot_free = UINT32_MAX;
	r->evfd = r->cepfd = r->pevfd = -1;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		buf_addf(err, "epoll_create1: %s", log_strerror(errno));
		goto fail;
	}
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->evfd < 0) {
		buf_addf(err, "eventfd: %s", log_strerror(errno));
		goto fail;
	}
	ev.data.ptr = r;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) == -1) {
		buf_addf(err, "epoll_ctl: %s", log_strerror(errno));
		goto fail;
	}
	r->cepfd = epoll_create1(EPOLL_CLOEXEC);
	r->pevfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->cepfd < 0 || r->pevfd < 0) {
		buf_addf(err, "epoll_create1/eventfd: %s", log_strerror(errno));
		goto fail;
	}
	/* Edge-triggered: one write wakes one waiting worker. */
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = UINT64_MAX; /* never a connection handle */
	if (epoll_ctl(r->cepfd, EPOLL_CTL_ADD, r->pevfd, &ev) == -1) {
		buf_addf(err, "epoll_ctl: %s", log_strerror(errno));
		goto fail;
	}
	r->workers = xcalloc(r->workers_n, sizeof(*r->workers));
	for (unsigned i = 0; i < r->workers_n; i++) {
		rc = pthread_create(&r->workers[i], NULL, worker_main, r);
		if (rc != 0) {
			buf_addf(err, "starting worker: %s", log_strerror(rc));
			goto fail;
		}
		r->workers_started++;
	}
	rc = pthread_create(&r->reactor_thread, NULL, reactor_main, r);
	if (rc != 0) {
		buf_addf(err, "starting reactor: %s", log_strerror(rc));
		goto fail;
	}
	r->reactor_started = true;
	return r;
fail:
	net_stop(r, 0);
	net_free(r);
	return NULL;
}

static int
bind_listener(const struct net_listen_params *lp, struct buf *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (lp->ip != NULL && strchr(lp->ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(lp->port);
		sl = sizeof(*s6);
		if (inet_pton(AF_INET6, lp->ip, &s6->sin6_addr) != 1)
			goto badip;
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(lp->port);
		sl = sizeof(*s4);
		if (lp->ip == NULL ||
		    inet_pton(AF_INET, lp->ip, &s4->sin_addr) != 1)
			goto badip;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		buf_addf(err, "socket: %s", log_strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		buf_addf(err, "listen on %s port %u: %s", lp->ip,
		    (unsigned)lp->port, log_strerror(errno));
		(void)close(fd); /* unused socket; the bind error is reported */
		return -1;
	}
	return fd;
badip:
	buf_addf(err, "listener %s: bad ip address \"%s\"",
	    lp->name != NULL ? lp->name : "", lp->ip != NULL ? lp->ip : "");
	return -1;
}

static uint16_t
socket_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void
listener_free(struct net_listener *l)
{
	if (l->fd >= 0 && close(l->fd) == -1)
		log_error(&l->r->log, "closing listener", LF_ERRNO(errno),
		    LF_STR("listener", l->name));
	if (l->ips != NULL) {
		for (size_t i = 0; i < NET_IPTAB_SIZE; i++)
			while (l->ips[i] != NULL) {
				struct net_ipcount *e = l->ips[i];

				l->ips[i] = e->next;
				free(e);
			}
		free(l->ips);
	}
	free(l->name);
	free(l->reject_msg);
	free(l);
}

int
net_listen(struct net_reactor *r, const struct net_listen_params *lp,
    uint16_t *port_out, struct buf *err)
{
	struct net_listener *l;
	struct epoll_event ev = { .events = EPOLLIN };
	int fd = lp->fd > 0 ? lp->fd : bind_listener(lp, err);

	if (fd < 0)
		return -1;
	l = xcalloc(1, sizeof(*l));
	l->kind = NET_KIND_LISTENER;
	l->fd = fd;
	l->r = r;
	l->name = xstrdup(lp->name != NULL ? lp->name : "");
	l->proto = lp->proto;
	l->proto_arg = lp->proto_arg;
	l->implicit_tls = lp->implicit_tls;
	l->max_per_ip = lp->max_per_ip;
	if (lp->reject_msg != NULL)
		l->reject_msg = xstrdup(lp->reject_msg);
	if (l->max_per_ip > 0)
		l->ips = xcalloc(NET_IPTAB_SIZE, sizeof(*l->ips));
	if (port_out != NULL)
		*port_out = socket_port(fd);
	lock_take(&r->lock);
	if (atomic_load(&r->stopping)) {
		lock_release(&r->lock);
		buf_adds(err, "listen: the server is stopping");
		listener_free(l);
		return -1;
	}
	l->next = r->listeners;
	r->listeners = l;
	ev.data.ptr = l;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		r->listeners = l->next;
		lock_release(&r->lock);
		buf_addf(err, "epoll_ctl: %s", log_strerror(errno));
		listener_free(l);
		return -1;
	}
	lock_release(&r->lock);
	return 0;
}

static void
raise_all(struct net_reactor *r, uint32_t bits)
{
	LOCK_ASSERT_HELD(&r->lock);
	for (struct net_conn *c = r->conns; c != NULL; c = c->next)
		net_conn_raise(c, bits);
}

static void
abs_after(struct timespec *ts, int64_t ns)
{
	int64_t t = time_mono_ns() + ns;

	ts->tv_sec = (time_t)(t / NS_PER_SEC);
	ts->tv_nsec = (long)(t % NS_PER_SEC);
}

/* Wait (holding r->lock) until no connection is left or ns passed. */
static void
wait_conns(struct net_reactor *r, int64_t ns)
{
	struct timespec ts;

	LOCK_ASSERT_HELD(&r->lock);
	abs_after(&ts, ns);
	while (r->nconns > 0)
		if (lock_timedwait(&r->lock, &r->cv, &ts) != 0)
			break;
}

unsigned
net_stop(struct net_reactor *r, unsigned grace_ms)
{
	unsigned forced = 0;
	bool was;

	lock_take(&r->lock);
	was = atomic_exchange(&r->stopping, true);
	if (was) {
		lock_release(&r->lock);
		return 0;
	}
	if (r->reactor_started) {
		r->close_listeners = true;
		net_reactor_wake(r);
		while (!r->listeners_closed)
			lock_wait(&r->lock, &r->cv);
	}
	raise_all(r, NET_CB_SHUTDOWN);
	wait_conns(r, (int64_t)grace_ms * NS_PER_MS);
	if (r->nconns > 0) {
		forced = r->nconns;
		log_info(&r->log, "closing connections after shutdown grace",
		    LF_U64("count", forced));
		raise_all(r, NET_CB_FORCE);
		wait_conns(r, r->write_timeout_ns + NET_FORCE_WAIT_NS);
	}
	lock_release(&r->lock);

	lock_take(&r->plock);
	r->pool_stop = true;
	if (r->pevfd >= 0)
		pool_wake(r); /* each worker that stops wakes the next */
	lock_release(&r->plock);
	for (unsigned i = 0; i < r->workers_started; i++)
		pthread_join(r->workers[i], NULL);
	r->workers_started = 0;
	if (r->reactor_started) {
		atomic_store(&r->reactor_stop, true);
		net_reactor_wake(r);
		pthread_join(r->reactor_thread, NULL);
		r->reactor_started = false;
	}
	return forced;
}

void
net_free(struct net_reactor *r)
{
	if (r == NULL)
		return;
	/* Connections still listed had workers that never finished them;
	 * after net_stop() no thread runs them any more. */
	while (r->conns != NULL) {
		struct net_conn *c = r->conns;

		net_conn_unlink(c);
		net_conn_put(c);
	}
	drain_freelist(r);
	/* The workers ran every queued job before net_stop() joined them. */
	assert(r->jhead == NULL);
	while (r->listeners != NULL) {
		struct net_listener *l = r->listeners;

		r->listeners = l->next;
		listener_free(l);
	}
	net_theap_release(&r->heap);
	if (r->evfd >= 0 && close(r->evfd) == -1)
		log_error(&r->log, "closing eventfd", LF_ERRNO(errno));
	if (r->epfd >= 0 && close(r->epfd) == -1)
		log_error(&r->log, "closing epoll", LF_ERRNO(errno));
	if (r->pevfd >= 0 && close(r->pevfd) == -1)
		log_error(&r->log, "closing eventfd", LF_ERRNO(errno));
	if (r->cepfd >= 0 && close(r->cepfd) == -1)
		log_error(&r->log, "closing epoll", LF_ERRNO(errno));
	pthread_cond_destroy(&r->cv);
	lock_destroy(&r->lock);
	lock_destroy(&r->tlock);
	lock_destroy(&r->plock);
	lock_destroy(&r->slock);
	free(r->slots);
	free(r->workers);
	free(r);
}

unsigned
net_conn_count(struct net_reactor *r)
{
	unsigned n;

	lock_take(&r->lock);
	n = r->nconns;
	lock_release(&r->lock);
	return n;
}

unsigned
net_worker_count(struct net_reactor *r)
{
	return r->workers_n;
}
