/*
 * queue_run.c: the queue scheduler and its delivery threads
 * (spec/queue.md 3, 4.1-4.5). The scheduler picks due records (not on
 * hold, ordered by next attempt), at most one delivery per recipient
 * domain and QUEUE_RUN_MAX in parallel, registers each attempt with its
 * backoff before contacting anyone, combines recipients of one message
 * and domain (RFC 5321 5.1, 4.5.3.1), and hands them to queue_deliver().
 * It notices changes by other processes (mox queue, submissions) through
 * PRAGMA data_version within QUEUE_RUN_POLL_MS.
 *
 * Threads: one scheduler thread plus one thread per running delivery
 * (background jobs, DESIGN.md); each opens its own SQLite connection. The
 * runner's lock guards the busy-domain list and counters only and is
 * never held across I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "config/config.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

#define QUEUE_RUN_MAX 10       /* spec/queue.md 3 */
#define QUEUE_RUN_POLL_MS 500  /* data_version poll; DESIGN.md: < 1 s */
#define QUEUE_RUN_CLEANUP_NS (3600 * NS_PER_SEC)

struct queue_runner {
	struct queue_runner_params p;
	struct queue *q;
	pthread_t thread;
	struct lock lock;
	pthread_cond_t cv;
	bool stop;                   /* guarded by lock */
	bool kicked;                 /* guarded by lock */
	char *busy[QUEUE_RUN_MAX];   /* recipient domains; guarded by lock */
	size_t nrunning;             /* guarded by lock */
	struct log_ctx log;
};

struct delivery {
	struct queue_runner *r;
	int64_t id;
	char *domain;
};

/* ---- one attempt ---- */

static int
exec1(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t c)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, c);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

static int
jitter_s(void)
{
	unsigned char b = 0;

	(void)gnutls_rnd(GNUTLS_RND_NONCE, &b, 1);
	return (int)(b % 10) - 5; /* spec/queue.md 4.1: -5..+4 s */
}

/* spec/queue.md 4.1 step 2: count the attempt, set the next one and
 * append "delivering..." in the caller's transaction. */
static int
register_attempt(sqlite3 *db, int64_t id, int64_t now, int64_t next)
{
	return exec1(db,
	    "UPDATE msg SET attempts = attempts + 1, last_attempt = ?2,"
	    " next_attempt = ?3, results = json_insert(CASE WHEN results = ''"
	    " THEN '[]' ELSE results END, '$[#]', json_object('Start', ?2,"
	    " 'Duration', 0, 'Success', json('false'), 'Code', 0, 'Secode', '',"
	    " 'Error', 'delivering...')) WHERE id = ?1",
	    id, now, next);
}

static char *
col_text(sqlite3 *db, const char *sql, int64_t id)
{
	sqlite3_stmt *st = NULL;
	char *s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_text(st, 0) != NULL)
			s = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	return s != NULL ? s : xstrdup("");
}

static void
attempt_result_of(const struct smtp_client_result *cr,
    const struct queue_job *j, struct queue_attempt_result *out)
{
	memset(out, 0, sizeof(*out));
	out->success = cr->ok;
	out->permanent = cr->permanent;
	out->code = cr->code;
	if (cr->ecode[0] != '\0' && cr->ecode[1] == '.')
		snprintf(out->secode, sizeof(out->secode), "%s", cr->ecode + 2);
	out->error = cr->ok ? "" : cr->error.data;
	out->reply = cr->reply.data;
	out->remote_host = j->remote_host;
	out->remote_ip = j->remote_ip;
}

static void
deliver_id(struct queue_runner *r, int64_t id)
{
	struct queue_msg *first = NULL, *group = NULL;
	size_t nfirst = 0, ngroup = 0, nsel = 0;
	struct queue_msg *sel = NULL;
	struct queue_job j;
	struct config *cfg = config_get();
	sqlite3 *db = NULL;
	struct buf err, path;
	char *dialed = NULL;
	const char *transport;
	int64_t now = time_wall_ns(), next;
	bool in_tx = false;

	memset(&j, 0, sizeof(j));
	buf_init(&err, 4096);
	buf_init(&path, 4096);
	if (cfg == NULL || queue_db_open(r->q, &db, &err) == -1)
		goto out;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	in_tx = true;
	/* Reload: an admin may have changed it since it was picked. */
	if (queue_int_load(db, "id = ?1", id, &first, &nfirst) == -1)
		goto dberr;
	if (nfirst == 0 || first[0].hold || first[0].next_attempt_ns > now)
		goto out;
	transport = first[0].transport[0] != '\0'
	    ? first[0].transport
	    : queue_route_transport(cfg, first[0].sender_account,
		  first[0].sender_domain, first[0].recipient_domain,
		  first[0].attempts);
	/* spec/queue.md 4.4: combine recipients of one message. */
	sel = xcalloc(1, sizeof(*sel));
	sel[0] = first[0];
	memset(&first[0], 0, sizeof(first[0]));
	nsel = 1;
	if (sel[0].base_id != 0) {
		if (queue_int_load(db, "base_id = ?1 AND hold = 0", sel[0].base_id,
			&group, &ngroup) == -1)
			goto dberr;
		for (size_t i = 0; i < ngroup; i++) {
			struct queue_msg *g = &group[i];
			const char *gt;

			if (g->id == sel[0].id ||
			    strcmp(g->recipient_domain, sel[0].recipient_domain) !=
				0 ||
			    g->attempts != sel[0].attempts ||
			    g->next_attempt_ns > sel[0].next_attempt_ns ||
			    g->requiretls != sel[0].requiretls)
				continue;
			gt = g->transport[0] != '\0'
			    ? g->transport
			    : queue_route_transport(cfg, g->sender_account,
				  g->sender_domain, g->recipient_domain,
				  g->attempts);
			if (strcmp(gt, transport) != 0)
				continue;
			sel = xreallocarray(sel, nsel + 1, sizeof(*sel));
			sel[nsel++] = *g;
			memset(g, 0, sizeof(*g));
		}
	}
	next = now + queue_backoff_ns(sel[0].attempts, jitter_s());
	for (size_t i = 0; i < nsel; i++) {
		if (register_attempt(db, sel[i].id, now, next) == -1)
			goto dberr;
		sel[i].attempts++;
		sel[i].last_attempt_ns = now;
	}
	dialed = col_text(db, "SELECT dialed_ips FROM msg WHERE id = ?1",
	    sel[0].id);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	in_tx = false;

	/* spec/queue.md 4.2: suppressed recipients fail at once. */
	for (size_t i = 0; i < nsel;) {
		struct queue_attempt_result ar = { 0 };
		char ebuf[1024];

		if (!queue_int_suppressed(db, &sel[i])) {
			i++;
			continue;
		}
		snprintf(ebuf, sizeof(ebuf),
		    "not delivering to recipient address %s@%s: address is on "
		    "suppression list",
		    sel[i].recipient_localpart, sel[i].recipient_domain);
		ar.permanent = true;
		ar.error = ebuf;
		ar.reply = "";
		ar.remote_host = ar.remote_ip = "";
		buf_reset(&err);
		if (queue_int_finish(r->q, r->p.store, db, &sel[i],
			QUEUE_OUT_SUPPRESSED, &ar, &r->log, &err) == -1)
			log_error(&r->log, "finishing suppressed message",
			    LF_ERR(err.data), LF_I64("queueid", sel[i].id));
		queue_msg_release(&sel[i]);
		memmove(&sel[i], &sel[i + 1], (nsel - i - 1) * sizeof(*sel));
		nsel--;
	}
	if (nsel == 0)
		goto out;

	queue_msg_path(r->q, sel[0].id, &path);
	j.cfg = cfg;
	j.localserve = r->p.localserve;
	j.resolver = r->p.resolver;
	j.tls = r->p.tls;
	j.log = &r->log;
	j.msgs = sel;
	j.n = nsel;
	j.transport = transport;
	j.msgpath = path.data;
	j.dialed = dialed;
	j.res = xcalloc(nsel, sizeof(*j.res));
	for (size_t i = 0; i < nsel; i++)
		smtp_client_result_init(&j.res[i]);
	log_debug(&r->log, "delivering", LF_I64("queueid", sel[0].id),
	    LF_U64("recipients", nsel), LF_STR("domain", sel[0].recipient_domain),
	    LF_STR("transport", transport), LF_I64("attempt", sel[0].attempts));
	queue_deliver(&j);

	if (j.dialed_out.len > 0)
		for (size_t i = 0; i < nsel; i++) {
			sqlite3_stmt *st = NULL;

			if (sqlite3_prepare_v2(db,
				"UPDATE msg SET dialed_ips = dialed_ips || ?2"
				" WHERE id = ?1",
				-1, &st, NULL) == SQLITE_OK) {
				sqlite3_bind_int64(st, 1, sel[i].id);
				sqlite3_bind_text(st, 2, j.dialed_out.data, -1,
				    SQLITE_STATIC);
				(void)sqlite3_step(st);
			}
			sqlite3_finalize(st);
		}
	for (size_t i = 0; i < nsel; i++) {
		struct queue_attempt_result ar;
		enum queue_outcome o;

		attempt_result_of(&j.res[i], &j, &ar);
		o = ar.success ? QUEUE_OUT_DELIVERED
		    : ar.permanent ? QUEUE_OUT_FAILED
				   : QUEUE_OUT_TEMP;
		log_info(&r->log,
		    ar.success ? "delivered message" : "delivery attempt failed",
		    LF_I64("queueid", sel[i].id),
		    LF_STR("rcpt", sel[i].recipient_localpart),
		    LF_STR("domain", sel[i].recipient_domain),
		    LF_I64("attempt", sel[i].attempts),
		    LF_STR("host", j.remote_host), LF_I64("code", ar.code),
		    LF_BOOL("permanent", ar.permanent), LF_ERR(ar.error));
		buf_reset(&err);
		if (queue_int_finish(r->q, r->p.store, db, &sel[i], o, &ar,
			&r->log, &err) == -1)
			log_error(&r->log, "finishing delivery attempt",
			    LF_ERR(err.data), LF_I64("queueid", sel[i].id));
	}
	goto out;
dberr:
	log_error(&r->log, "queue database", LF_ERR(db != NULL
		? sqlite3_errmsg(db)
		: err.data), LF_I64("queueid", id));
out:
	if (in_tx)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (j.res != NULL) {
		for (size_t i = 0; i < nsel; i++)
			smtp_client_result_release(&j.res[i]);
		free(j.res);
		buf_release(&j.dialed_out);
	}
	queue_msg_list_free(first, nfirst);
	queue_msg_list_free(group, ngroup);
	queue_msg_list_free(sel, nsel);
	free(dialed);
	sqlite3_close(db);
	config_put(cfg);
	buf_release(&err);
	buf_release(&path);
}

static void *
delivery_main(void *arg)
{
	struct delivery *d = arg;
	struct queue_runner *r = d->r;

	deliver_id(r, d->id);
	lock_take(&r->lock);
	for (size_t i = 0; i < QUEUE_RUN_MAX; i++)
		if (r->busy[i] != NULL && strcmp(r->busy[i], d->domain) == 0) {
			free(r->busy[i]);
			r->busy[i] = NULL;
			break;
		}
	r->nrunning--;
	r->kicked = true;
	pthread_cond_broadcast(&r->cv);
	lock_release(&r->lock);
	free(d->domain);
	free(d);
	return NULL;
}

/* ---- the scheduler ---- */

static bool
domain_busy(struct queue_runner *r, const char *d)
{
	LOCK_ASSERT_HELD(&r->lock);
	for (size_t i = 0; i < QUEUE_RUN_MAX; i++)
		if (r->busy[i] != NULL && strcmp(r->busy[i], d) == 0)
			return true;
	return false;
}

/* spec/queue.md 3: start deliveries for due records. Returns the
 * earliest next attempt of waiting records, or 0 when none. */
static int64_t
pick(struct queue_runner *r, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t now = time_wall_ns(), earliest = 0;

	if (sqlite3_prepare_v2(db,
		"SELECT id, recipient_domain_str, next_attempt FROM msg"
		" WHERE hold = 0 ORDER BY next_attempt, id LIMIT 100",
		-1, &st, NULL) != SQLITE_OK) {
		log_error(&r->log, "queue pick", LF_ERR(sqlite3_errmsg(db)));
		return now + 60 * NS_PER_SEC;
	}
	lock_take(&r->lock);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *dom = (const char *)sqlite3_column_text(st, 1);
		int64_t na = sqlite3_column_int64(st, 2);
		struct delivery *d;

		if (dom == NULL)
			dom = "";
		if (domain_busy(r, dom))
			continue;
		if (na > now) {
			if (earliest == 0 || na < earliest)
				earliest = na;
			continue;
		}
		if (r->nrunning >= QUEUE_RUN_MAX || r->stop)
			continue;
		d = xcalloc(1, sizeof(*d));
		d->r = r;
		d->id = id;
		d->domain = xstrdup(dom);
		for (size_t i = 0; i < QUEUE_RUN_MAX; i++)
			if (r->busy[i] == NULL) {
				r->busy[i] = xstrdup(dom);
				break;
			}
		r->nrunning++;
		{
			pthread_t t;
			pthread_attr_t at;

			pthread_attr_init(&at);
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			if (pthread_create(&t, &at, delivery_main, d) != 0) {
				r->nrunning--;
				for (size_t i = 0; i < QUEUE_RUN_MAX; i++)
					if (r->busy[i] != NULL &&
					    strcmp(r->busy[i], dom) == 0) {
						free(r->busy[i]);
						r->busy[i] = NULL;
						break;
					}
				free(d->domain);
				free(d);
			}
			pthread_attr_destroy(&at);
		}
	}
	lock_release(&r->lock);
	sqlite3_finalize(st);
	return earliest;
}

static int64_t
data_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) ==
		SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void *
runner_main(void *arg)
{
	struct queue_runner *r = arg;
	sqlite3 *db = NULL;
	struct buf err;
	int64_t version = -1, earliest = 0;
	int64_t cleanup_at = time_wall_ns() + 3 * NS_PER_SEC;
	bool run = true;

	buf_init(&err, 4096);
	if (queue_db_open(r->q, &db, &err) == -1) {
		log_error(&r->log, "opening queue database", LF_ERR(err.data));
		goto out;
	}
	for (;;) {
		struct timespec ts;
		int64_t v, now;

		lock_take(&r->lock);
		if (r->stop) {
			lock_release(&r->lock);
			break;
		}
		if (!r->kicked) {
			/* Wake for the earliest due record rather than at
			 * the next poll (spec/queue.md 3). */
			int64_t wait_ns = QUEUE_RUN_POLL_MS * 1000000LL;
			int64_t due = earliest - time_wall_ns();

			if (earliest != 0 && due < wait_ns)
				wait_ns = due > 0 ? due : 0;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (long)wait_ns;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			(void)lock_timedwait(&r->lock, &r->cv, &ts);
		}
		if (r->kicked)
			run = true;
		r->kicked = false;
		if (r->stop) {
			lock_release(&r->lock);
			break;
		}
		lock_release(&r->lock);
		v = data_version(db);
		now = time_wall_ns();
		if (v != version)
			run = true;
		version = v;
		if (earliest != 0 && now >= earliest)
			run = true;
		if (run) {
			earliest = pick(r, db);
			run = false;
		}
		if (now >= cleanup_at) {
			buf_reset(&err);
			if (queue_retired_cleanup(r->q, now, &err) == -1)
				log_error(&r->log, "cleaning retired messages",
				    LF_ERR(err.data));
			cleanup_at = now + QUEUE_RUN_CLEANUP_NS;
		}
	}
out:
	/* spec/queue.md 3: wait for running deliveries. */
	lock_take(&r->lock);
	while (r->nrunning > 0)
		lock_wait(&r->lock, &r->cv);
	lock_release(&r->lock);
	sqlite3_close(db);
	buf_release(&err);
	return NULL;
}

struct queue_runner *
queue_runner_start(const struct queue_runner_params *p, struct buf *err)
{
	struct queue_runner *r = xcalloc(1, sizeof(*r));

	r->p = *p;
	r->log = log_ctx_init("queue", 0);
	r->q = queue_open(p->datadir, err);
	if (r->q == NULL) {
		free(r);
		return NULL;
	}
	lock_init(&r->lock, LOCK_ORDER_POOL, "queue runner");
	lock_cond_init(&r->cv);
	if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
		buf_adds(err, "starting queue runner thread");
		lock_destroy(&r->lock);
		pthread_cond_destroy(&r->cv);
		queue_close(r->q);
		free(r);
		return NULL;
	}
	log_info(&r->log, "queue runner started",
	    LF_BOOL("localserve", p->localserve),
	    LF_I64("backoffdivisor", queue_backoff_divisor()));
	return r;
}

void
queue_runner_kick(struct queue_runner *r)
{
	if (r == NULL)
		return;
	lock_take(&r->lock);
	r->kicked = true;
	pthread_cond_broadcast(&r->cv);
	lock_release(&r->lock);
}

void
queue_runner_stop(struct queue_runner *r)
{
	if (r == NULL)
		return;
	lock_take(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	lock_release(&r->lock);
	pthread_join(r->thread, NULL);
	for (size_t i = 0; i < QUEUE_RUN_MAX; i++)
		free(r->busy[i]);
	lock_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	queue_close(r->q);
	free(r);
}
