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
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "config/config.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
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
	pthread_t refresher;         /* spec/queue.md 5.9, when running */
	bool have_refresher;
};

struct delivery {
	struct queue_runner *r;
	int64_t id;
	char *domain;
};

/* ---- one attempt ---- */

static int
jitter_s(void)
{
	unsigned char b = 0;

	(void)gnutls_rnd(GNUTLS_RND_NONCE, &b, 1);
	return (int)(b % 10) - 5; /* spec/queue.md 4.1: -5..+4 s */
}

static const char register_sql[] =
    "UPDATE msg SET attempts = attempts + 1, last_attempt = ?2,"
    " next_attempt = ?3, results = json_insert(CASE WHEN results = ''"
    " THEN '[]' ELSE results END, '$[#]', json_object('Start', ?2,"
    " 'Duration', 0, 'Success', json('false'), 'Code', 0, 'Secode', '',"
    " 'Error', 'delivering...')) WHERE id = ?1";

/* spec/queue.md 4.1 step 2: count the attempt, set the next one and
 * append "delivering..." in the caller's transaction. */
static int
register_attempt(struct queue_stmts *c, sqlite3 *db, int64_t id, int64_t now,
    int64_t next)
{
	sqlite3_stmt *st = queue_stmts_get(c, db, register_sql);
	int rc = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, next);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	queue_stmts_put(c, st);
	return rc;
}

static const char dest_sql[] =
    "SELECT dialed_ips, recipient_domain_str FROM msg WHERE id = ?1";

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return xstrdup(t != NULL ? (const char *)t : "");
}

/* The earlier dialed IPs and the recipient domain string of record id;
 * "" when unknown. */
static void
dest_of(struct queue_stmts *c, sqlite3 *db, int64_t id, char **dialed_out,
    char **domain_out)
{
	sqlite3_stmt *st = queue_stmts_get(c, db, dest_sql);

	*dialed_out = *domain_out = NULL;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*dialed_out = col_dup(st, 0);
			*domain_out = col_dup(st, 1);
		}
	}
	queue_stmts_put(c, st);
	if (*dialed_out == NULL)
		*dialed_out = xstrdup("");
	if (*domain_out == NULL)
		*domain_out = xstrdup("");
}

static void
attempt_result_of(const struct smtp_client_result *cr, const char *host,
    const char *ip, struct queue_attempt_result *out)
{
	memset(out, 0, sizeof(*out));
	out->success = cr->ok;
	out->permanent = cr->permanent;
	out->code = cr->code;
	if (cr->ecode[0] != '\0' && cr->ecode[1] == '.')
		snprintf(out->secode, sizeof(out->secode), "%s", cr->ecode + 2);
	out->error = cr->ok ? "" : cr->error.data;
	out->reply = cr->reply.data;
	out->remote_host = host;
	out->remote_ip = ip;
}

/* Records of one transaction: the first picked record and those
 * combined with it (spec/queue.md 4.4). */
struct batch {
	struct queue_msg *sel;
	size_t nsel;
	int64_t *prev_last;  /* nsel: LastAttempt before this attempt; 0 none */
	char *transport;     /* resolved name; "" = direct */
	char *dialed;        /* "host ip" lines of earlier attempts */
	char *domain;        /* recipient_domain_str */
	struct buf path;     /* message file of sel[0] */
	struct smtp_client_result *res; /* nsel */
	/* Set when delivered and waiting to be retired (job_ctx.done): */
	char *dialed_out;    /* "host ip" lines of this attempt, or NULL */
	char *remote_host, *remote_ip;
};

static void
batch_release(struct batch *b)
{
	if (b->res != NULL)
		for (size_t i = 0; i < b->nsel; i++)
			smtp_client_result_release(&b->res[i]);
	free(b->res);
	queue_msg_list_free(b->sel, b->nsel);
	free(b->prev_last);
	free(b->transport);
	free(b->dialed);
	free(b->domain);
	buf_release(&b->path);
	free(b->dialed_out);
	free(b->remote_host);
	free(b->remote_ip);
	memset(b, 0, sizeof(*b));
}

#define QUEUE_RUN_TX_PER_CONN 1000 /* transactions on one connection */
#define QUEUE_RUN_CLAIM_MAX 16     /* transactions claimed at a time */
#define QUEUE_RUN_CACHE_KIB "256"  /* SQLite page cache of a delivery job */

/* The runner's state of one delivery job, behind queue_job.next_arg.
 * On a reused connection (spec/queue.md 7) the next due records of the
 * destination are claimed QUEUE_RUN_CLAIM_MAX transactions at a time and
 * sent one after the other; the delivered ones are retired together in
 * the write transaction that claims the next ones, or at the end of the
 * job. A busy destination so costs one queue write transaction per
 * QUEUE_RUN_CLAIM_MAX messages instead of three per message. */
struct job_ctx {
	struct queue_runner *r;
	const struct config *cfg;
	sqlite3 *db;
	struct queue_stmts *stmts; /* of db */
	struct batch cur;
	char *transport;     /* of the job (j->transport points here) */
	char *domain;        /* recipient_domain_str of the job */
	enum queue_requiretls requiretls; /* of the job's first record */
	size_t ntx;          /* transactions claimed on this job */
	struct batch ahead[QUEUE_RUN_CLAIM_MAX]; /* claimed, not yet sent */
	size_t iahead, nahead; /* ahead[iahead..nahead) wait */
	struct batch *done;  /* delivered, not yet retired */
	size_t ndone;
};

static void
job_ctx_release(struct job_ctx *x)
{
	batch_release(&x->cur);
	for (size_t i = 0; i < QUEUE_RUN_CLAIM_MAX; i++)
		batch_release(&x->ahead[i]);
	for (size_t i = 0; i < x->ndone; i++)
		batch_release(&x->done[i]);
	free(x->done);
	free(x->transport);
	free(x->domain);
}

/* spec/queue.md 4.1, 4.3, 4.4 in the caller's write transaction: reload
 * record id (an admin may have changed it since it was picked), combine
 * recipients, register the attempt of each with its backoff. With
 * want_transport set, only when the record resolves to that transport.
 * 1 with *b filled, 0 when there is nothing to deliver (gone, held, not
 * due, another transport), -1 on a database error. */
static int
claim_tx(struct job_ctx *x, int64_t id, const char *want_transport,
    int64_t now, struct batch *b)
{
	sqlite3 *db = x->db;
	struct queue_msg *first = NULL, *group = NULL;
	size_t nfirst = 0, ngroup = 0;
	const char *transport;
	int64_t next;
	int rc = -1;

	memset(b, 0, sizeof(*b));
	buf_init(&b->path, 4096);
	if (queue_int_load_id(x->stmts, db, id, &first, &nfirst) == -1)
		goto out;
	rc = 0;
	if (nfirst == 0 || first[0].hold || first[0].next_attempt_ns > now)
		goto out;
	transport = first[0].transport[0] != '\0'
	    ? first[0].transport
	    : queue_route_transport(x->cfg, first[0].sender_account,
		  first[0].sender_domain, first[0].recipient_domain,
		  first[0].attempts);
	if (want_transport != NULL && strcmp(transport, want_transport) != 0)
		goto out;
	b->transport = xstrdup(transport);
	/* spec/queue.md 4.4: combine recipients of one message. */
	b->sel = xcalloc(1, sizeof(*b->sel));
	b->sel[0] = first[0];
	memset(&first[0], 0, sizeof(first[0]));
	b->nsel = 1;
	if (b->sel[0].base_id != 0) {
		rc = -1;
		if (queue_int_load(db, "base_id = ?1 AND hold = 0",
			b->sel[0].base_id, &group, &ngroup) == -1)
			goto out;
		rc = 0;
		for (size_t i = 0; i < ngroup; i++) {
			struct queue_msg *g = &group[i];
			const struct queue_msg *s0 = &b->sel[0];
			const char *gt;

			if (g->id == s0->id ||
			    strcmp(g->recipient_domain, s0->recipient_domain) !=
				0 ||
			    g->attempts != s0->attempts ||
			    g->next_attempt_ns > s0->next_attempt_ns ||
			    g->requiretls != s0->requiretls)
				continue;
			gt = g->transport[0] != '\0'
			    ? g->transport
			    : queue_route_transport(x->cfg, g->sender_account,
				  g->sender_domain, g->recipient_domain,
				  g->attempts);
			if (strcmp(gt, b->transport) != 0)
				continue;
			b->sel = xreallocarray(b->sel, b->nsel + 1,
			    sizeof(*b->sel));
			b->sel[b->nsel++] = *g;
			memset(g, 0, sizeof(*g));
		}
	}
	rc = -1;
	next = now + queue_backoff_ns(b->sel[0].attempts, jitter_s());
	b->prev_last = xcalloc(b->nsel, sizeof(*b->prev_last));
	for (size_t i = 0; i < b->nsel; i++) {
		if (register_attempt(x->stmts, db, b->sel[i].id, now, next) ==
		    -1)
			goto out;
		b->prev_last[i] = b->sel[i].last_attempt_ns;
		b->sel[i].attempts++;
		b->sel[i].last_attempt_ns = now;
	}
	dest_of(x->stmts, db, b->sel[0].id, &b->dialed, &b->domain);
	rc = 1;
out:
	if (rc != 1)
		batch_release(b);
	queue_msg_list_free(first, nfirst);
	queue_msg_list_free(group, ngroup);
	return rc;
}

/* After the commit of claim_tx(): fail suppressed recipients at once
 * (spec/queue.md 4.2) and set up the results. true when b has records
 * left to deliver; false when not (b released). */
static bool
claim_ready(struct job_ctx *x, struct batch *b)
{
	struct queue_runner *r = x->r;
	struct buf err;

	buf_init(&err, 4096);
	for (size_t i = 0; i < b->nsel;) {
		struct queue_attempt_result ar = { 0 };
		char ebuf[1024];

		if (!queue_int_suppressed(x->db, &b->sel[i])) {
			i++;
			continue;
		}
		snprintf(ebuf, sizeof(ebuf),
		    "not delivering to recipient address %s@%s: address is on "
		    "suppression list",
		    b->sel[i].recipient_localpart, b->sel[i].recipient_domain);
		ar.permanent = true;
		ar.error = ebuf;
		ar.reply = "";
		ar.remote_host = ar.remote_ip = "";
		buf_reset(&err);
		if (queue_int_finish(r->q, x->cfg, r->p.store, x->db,
			&b->sel[i], QUEUE_OUT_SUPPRESSED, &ar, &r->log,
			&err) == -1)
			log_error(&r->log, "finishing suppressed message",
			    LF_ERR(err.data), LF_I64("queueid", b->sel[i].id));
		queue_msg_release(&b->sel[i]);
		memmove(&b->sel[i], &b->sel[i + 1],
		    (b->nsel - i - 1) * sizeof(*b->sel));
		memmove(&b->prev_last[i], &b->prev_last[i + 1],
		    (b->nsel - i - 1) * sizeof(*b->prev_last));
		b->nsel--;
	}
	buf_release(&err);
	if (b->nsel == 0) {
		batch_release(b);
		return false;
	}
	queue_msg_path(r->q, b->sel[0].id, &b->path);
	b->res = xcalloc(b->nsel, sizeof(*b->res));
	for (size_t i = 0; i < b->nsel; i++)
		smtp_client_result_init(&b->res[i]);
	return true;
}

/* spec/queue.md 4.1-4.4: claim record id picked by the scheduler in its
 * own write transaction. 1 with *b filled, 0 when nothing to deliver,
 * -1 on a database error (logged). */
static int
claim(struct job_ctx *x, int64_t id, struct batch *b)
{
	sqlite3 *db = x->db;
	int rc = -1;

	memset(b, 0, sizeof(*b));
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	rc = claim_tx(x, id, NULL, time_wall_ns(), b);
	if (rc == 1 &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		batch_release(b);
		rc = -1;
	}
	if (rc == -1)
		log_error(&x->r->log, "queue database",
		    LF_ERR(sqlite3_errmsg(db)), LF_I64("queueid", id));
	if (rc != 1)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (rc == 1 && !claim_ready(x, b))
		rc = 0;
	return rc;
dberr:
	log_error(&x->r->log, "queue database", LF_ERR(sqlite3_errmsg(db)),
	    LF_I64("queueid", id));
	return -1;
}

static const char dialed_sql[] =
    "UPDATE msg SET dialed_ips = dialed_ips || ?2 WHERE id = ?1";

static int
append_dialed(struct queue_stmts *c, sqlite3 *db, int64_t id,
    const char *lines)
{
	sqlite3_stmt *st = queue_stmts_get(c, db, dialed_sql);
	int rc = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, lines, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	queue_stmts_put(c, st);
	return rc;
}

/* Record the attempt's outcome for every record of b (spec/queue.md
 * 4.1, 5.5): retire, DSNs, webhooks, or the next attempt. */
static void
finish_batch(struct job_ctx *x, struct batch *b, struct queue_job *j)
{
	struct queue_runner *r = x->r;
	struct buf err;

	buf_init(&err, 4096);
	if (j->dialed_out.len > 0) {
		for (size_t i = 0; i < b->nsel; i++)
			(void)append_dialed(x->stmts, x->db, b->sel[i].id,
			    j->dialed_out.data);
		buf_reset(&j->dialed_out);
	}
	for (size_t i = 0; i < b->nsel; i++) {
		struct queue_attempt_result ar;
		enum queue_outcome o;

		attempt_result_of(&b->res[i], j->remote_host, j->remote_ip,
		    &ar);
		o = ar.success ? QUEUE_OUT_DELIVERED
		    : ar.permanent ? QUEUE_OUT_FAILED
				   : QUEUE_OUT_TEMP;
		log_info(&r->log,
		    ar.success ? "delivered message" : "delivery attempt failed",
		    LF_I64("queueid", b->sel[i].id),
		    LF_STR("rcpt", b->sel[i].recipient_localpart),
		    LF_STR("domain", b->sel[i].recipient_domain),
		    LF_I64("attempt", b->sel[i].attempts),
		    LF_STR("host", j->remote_host), LF_I64("code", ar.code),
		    LF_BOOL("permanent", ar.permanent), LF_ERR(ar.error));
		buf_reset(&err);
		if (queue_int_finish(r->q, x->cfg, r->p.store, x->db, &b->sel[i],
			o, &ar, &r->log, &err) == -1)
			log_error(&r->log, "finishing delivery attempt",
			    LF_ERR(err.data), LF_I64("queueid", b->sel[i].id));
	}
	buf_release(&err);
}

/* Put x->cur aside after its SMTP transaction: when every recipient got
 * its 250 it waits in x->done to be retired with the job's next write
 * transaction (until then it stays in the queue: a crash delivers it
 * again rather than losing it); otherwise it is finished now. */
static void
park(struct job_ctx *x, struct queue_job *j)
{
	struct batch *b = &x->cur;

	for (size_t i = 0; i < b->nsel; i++)
		if (!b->res[i].ok) {
			finish_batch(x, b, j);
			batch_release(b);
			return;
		}
	for (size_t i = 0; i < b->nsel; i++)
		log_info(&x->r->log, "delivered message",
		    LF_I64("queueid", b->sel[i].id),
		    LF_STR("rcpt", b->sel[i].recipient_localpart),
		    LF_STR("domain", b->sel[i].recipient_domain),
		    LF_I64("attempt", b->sel[i].attempts),
		    LF_STR("host", j->remote_host),
		    LF_I64("code", b->res[i].code));
	if (j->dialed_out.len > 0) {
		b->dialed_out = xstrdup(j->dialed_out.data);
		buf_reset(&j->dialed_out);
	}
	b->remote_host = xstrdup(j->remote_host);
	b->remote_ip = xstrdup(j->remote_ip);
	x->done = xreallocarray(x->done, x->ndone + 1, sizeof(*x->done));
	x->done[x->ndone++] = *b;
	memset(b, 0, sizeof(*b));
}

/* Retire the records of x->done (spec/queue.md 4.1, 9) in the caller's
 * write transaction. -1 on a database error. */
static int
retire_done_tx(struct job_ctx *x, int64_t now)
{
	for (size_t k = 0; k < x->ndone; k++) {
		struct batch *b = &x->done[k];

		for (size_t i = 0; i < b->nsel; i++) {
			struct queue_attempt_result ar;

			if (b->dialed_out != NULL &&
			    append_dialed(x->stmts, x->db, b->sel[i].id,
				b->dialed_out) == -1)
				return -1;
			attempt_result_of(&b->res[i], b->remote_host,
			    b->remote_ip, &ar);
			if (queue_int_retire_delivered(x->stmts, x->db, x->cfg,
				&b->sel[i], &ar, now) == -1)
				return -1;
		}
	}
	return 0;
}

/* After retire_done_tx(): when committed, remove the message files
 * (spec/queue.md 1.5: only after the commit); when not, finish each
 * record on its own. Then empty x->done. */
static void
done_clear(struct job_ctx *x, bool committed)
{
	struct queue_runner *r = x->r;
	struct buf p;

	buf_init(&p, 4096);
	for (size_t k = 0; k < x->ndone; k++) {
		struct batch *b = &x->done[k];

		for (size_t i = 0; i < b->nsel; i++) {
			struct queue_attempt_result ar;

			if (committed) {
				buf_reset(&p);
				queue_msg_path(r->q, b->sel[i].id, &p);
				(void)unlink(p.data);
				continue;
			}
			attempt_result_of(&b->res[i], b->remote_host,
			    b->remote_ip, &ar);
			buf_reset(&p);
			if (queue_int_finish(r->q, x->cfg, r->p.store, x->db,
				&b->sel[i], QUEUE_OUT_DELIVERED, &ar, &r->log,
				&p) == -1)
				log_error(&r->log, "finishing delivery attempt",
				    LF_ERR(p.data),
				    LF_I64("queueid", b->sel[i].id));
		}
		batch_release(b);
	}
	x->ndone = 0;
	buf_release(&p);
}

/* spec/queue.md 4.1: only attempts that were made count. Undo the
 * registration of the records claimed ahead but never sent, in the
 * caller's write transaction, unless an admin changed them since. */
static int
unclaim_tx(struct job_ctx *x)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (x->iahead == x->nahead)
		return 0;
	if (sqlite3_prepare_v2(x->db,
		"UPDATE msg SET attempts = attempts - 1,"
		" last_attempt = nullif(?2, 0), next_attempt = ?3,"
		" results = CASE WHEN json_array_length(results) <= 1 THEN ''"
		" ELSE json_remove(results, '$[#-1]') END"
		" WHERE id = ?1 AND attempts = ?4 AND last_attempt = ?5",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	for (size_t k = x->iahead; k < x->nahead; k++) {
		const struct batch *b = &x->ahead[k];

		for (size_t i = 0; i < b->nsel; i++) {
			const struct queue_msg *m = &b->sel[i];

			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, m->id);
			sqlite3_bind_int64(st, 2, b->prev_last[i]);
			sqlite3_bind_int64(st, 3, m->next_attempt_ns);
			sqlite3_bind_int64(st, 4, m->attempts);
			sqlite3_bind_int64(st, 5, m->last_attempt_ns);
			if (sqlite3_step(st) != SQLITE_DONE)
				goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static void
ahead_release(struct job_ctx *x)
{
	for (size_t k = 0; k < QUEUE_RUN_CLAIM_MAX; k++)
		batch_release(&x->ahead[k]);
	x->iahead = x->nahead = 0;
}

static const char due_sql[] =
    "SELECT id FROM msg WHERE recipient_domain_str = ?1 AND hold = 0"
    " AND next_attempt <= ?2 AND requiretls IS ?3"
    " ORDER BY next_attempt, id LIMIT ?4";

/* Retire x->done and claim the next due records of the job's
 * destination (recipient domain, transport, RequireTLS setting: the
 * connection's TLS was set up for it) into x->ahead, in one write
 * transaction. true when some are ready to be sent. */
static bool
refill(struct job_ctx *x)
{
	sqlite3 *db = x->db;
	sqlite3_stmt *st = NULL;
	int64_t ids[QUEUE_RUN_CLAIM_MAX];
	int64_t now = time_wall_ns();
	size_t nids = 0, want = QUEUE_RUN_CLAIM_MAX, n;

	ahead_release(x);
	if (x->ntx >= QUEUE_RUN_TX_PER_CONN)
		want = 0;
	else if (QUEUE_RUN_TX_PER_CONN - x->ntx < want)
		want = QUEUE_RUN_TX_PER_CONN - x->ntx;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (retire_done_tx(x, now) == -1)
		goto rollback;
	if (want > 0) {
		st = queue_stmts_get(x->stmts, db, due_sql);
		if (st == NULL)
			goto rollback;
		sqlite3_bind_text(st, 1, x->domain, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		if (x->requiretls != QUEUE_REQUIRETLS_UNSET)
			sqlite3_bind_int(st, 3,
			    x->requiretls == QUEUE_REQUIRETLS_YES);
		sqlite3_bind_int64(st, 4, (int64_t)want);
		while (nids < want && sqlite3_step(st) == SQLITE_ROW)
			ids[nids++] = sqlite3_column_int64(st, 0);
		queue_stmts_put(x->stmts, st);
		st = NULL;
	}
	for (size_t k = 0; k < nids; k++) {
		int r = claim_tx(x, ids[k], x->transport, now,
		    &x->ahead[x->nahead]);

		if (r == -1)
			goto rollback;
		if (r == 1)
			x->nahead++;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	done_clear(x, true);
	x->ntx += x->nahead;
	/* Drop the batches that claim_ready() emptied. */
	n = 0;
	for (size_t k = 0; k < x->nahead; k++)
		if (claim_ready(x, &x->ahead[k])) {
			struct batch tmp = x->ahead[k];

			x->ahead[k] = x->ahead[n];
			x->ahead[n++] = tmp;
		}
	x->nahead = n;
	return n > 0;
rollback:
	queue_stmts_put(x->stmts, st);
	log_error(&x->r->log, "queue database", LF_ERR(sqlite3_errmsg(db)),
	    LF_STR("domain", x->domain));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	ahead_release(x);
	done_clear(x, false);
	return false;
dberr:
	log_error(&x->r->log, "queue database", LF_ERR(sqlite3_errmsg(db)),
	    LF_STR("domain", x->domain));
	done_clear(x, false);
	return false;
}

/* End of the job: retire x->done and give back what was claimed ahead
 * but not sent, in one write transaction. */
static void
job_end(struct job_ctx *x)
{
	sqlite3 *db = x->db;

	if (x->ndone == 0 && x->iahead == x->nahead)
		return;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (retire_done_tx(x, time_wall_ns()) == -1 || unclaim_tx(x) == -1 ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_error(&x->r->log, "queue database",
		    LF_ERR(sqlite3_errmsg(db)), LF_STR("domain", x->domain));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		done_clear(x, false);
		ahead_release(x);
		return;
	}
	done_clear(x, true);
	ahead_release(x);
	return;
dberr:
	/* The records claimed ahead keep their registered attempt and are
	 * retried after its backoff. */
	log_error(&x->r->log, "queue database", LF_ERR(sqlite3_errmsg(db)),
	    LF_STR("domain", x->domain));
	done_clear(x, false);
	ahead_release(x);
}

static void
job_set(struct queue_job *j, struct batch *b)
{
	j->msgs = b->sel;
	j->n = b->nsel;
	j->res = b->res;
	j->msgpath = b->path.data;
	j->dialed = b->dialed;
}

/* queue_job.next: spec/queue.md 7, a connection is reused for the next
 * due records of the same recipient domain and transport. */
/* spec/queue.md 5.5: the recipient domain's TLS support as last seen,
 * in the sender account (store_domain_tls_set() skips unchanged
 * records). Failures are logged only: delivery goes on. */
static void
job_domain_tls(struct queue_job *j, bool starttls, bool requiretls)
{
	struct job_ctx *x = j->next_arg;
	const struct queue_msg *m = &j->msgs[0];
	struct store_account *a = NULL;
	struct store_err serr = { 0 };

	if (x->r->p.store == NULL || m->sender_account == NULL ||
	    m->sender_account[0] == '\0' || m->recipient_domain[0] == '\0')
		return;
	if (store_account_get(x->r->p.store, m->sender_account, false, &a,
		&serr) == -1 ||
	    store_domain_tls_set(a, m->recipient_domain, starttls, requiretls,
		time_wall_ns(), &serr) == -1)
		log_info(&x->r->log, "recording recipient domain tls",
		    LF_ERR(serr.text), LF_STR("account", m->sender_account),
		    LF_STR("domain", m->recipient_domain));
	store_account_put(a);
}

static bool
job_next(struct queue_job *j)
{
	struct job_ctx *x = j->next_arg;

	park(x, j);
	/* Nothing of the parked batch may stay reachable from the job. */
	j->msgs = NULL;
	j->n = 0;
	j->res = NULL;
	j->msgpath = NULL;
	j->dialed = NULL;
	if (x->iahead == x->nahead && !refill(x))
		return false;
	x->cur = x->ahead[x->iahead];
	memset(&x->ahead[x->iahead], 0, sizeof(x->ahead[x->iahead]));
	x->iahead++;
	job_set(j, &x->cur);
	j->now_ns = time_wall_ns();
	log_debug(&x->r->log, "reusing connection",
	    LF_I64("queueid", x->cur.sel[0].id), LF_STR("domain", x->domain));
	return true;
}

#define BUSY_WAIT_US 200 /* between tries for the database write lock */

/* SQLite busy handler for delivery threads: the default one sleeps up to
 * 100 ms between tries, which, with ten delivery threads writing short
 * transactions, mostly leaves the database idle. Try every BUSY_WAIT_US
 * for up to QUEUE_BUSY_MS. */
static int
busy_short(void *arg, int n)
{
	(void)arg;
	if ((int64_t)n * BUSY_WAIT_US >= (int64_t)QUEUE_BUSY_MS * 1000)
		return 0;
	(void)usleep(BUSY_WAIT_US);
	return 1;
}

static void
deliver_id(struct queue_runner *r, int64_t id)
{
	struct config *cfg = config_get();
	struct job_ctx x;
	struct queue_job j;
	struct buf err;

	memset(&x, 0, sizeof(x));
	memset(&j, 0, sizeof(j));
	buf_init(&err, 4096);
	x.r = r;
	x.cfg = cfg;
	if (cfg == NULL || queue_db_open(r->q, &x.db, &err) == -1) {
		if (cfg != NULL)
			log_error(&r->log, "queue database", LF_ERR(err.data),
			    LF_I64("queueid", id));
		goto out;
	}
	/* Delivery bookkeeping commits without waiting for the disk: a
	 * process crash loses nothing (WAL), a power loss at worst repeats
	 * an attempt or a delivery (at least once, as Postfix, which does
	 * not fsync when it removes a delivered queue file). Accepting a
	 * message (queue_add()) stays fully synchronous. */
	if (sqlite3_exec(x.db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) !=
	    SQLITE_OK)
		log_error(&r->log, "queue database", LF_ERR(sqlite3_errmsg(x.db)));
	/* The other delivery threads' commits empty this connection's page
	 * cache before nearly every transaction: a small one does as well
	 * and keeps ten of them from holding 2 MiB each. */
	(void)sqlite3_exec(x.db, "PRAGMA cache_size=-" QUEUE_RUN_CACHE_KIB,
	    NULL, NULL, NULL);
	sqlite3_busy_handler(x.db, busy_short, NULL);
	x.stmts = queue_stmts_new(x.db);
	if (claim(&x, id, &x.cur) != 1)
		goto out;
	x.ntx = 1;
	x.transport = xstrdup(x.cur.transport);
	x.domain = xstrdup(x.cur.domain);
	x.requiretls = x.cur.sel[0].requiretls;
	j.cfg = cfg;
	j.localserve = r->p.localserve;
	j.resolver = r->p.resolver;
	j.tls = r->p.tls;
	j.datadir = r->p.datadir;
	j.now_ns = time_wall_ns();
	j.log = &r->log;
	j.transport = x.transport;
	j.next = job_next;
	j.domain_tls = job_domain_tls;
	j.next_arg = &x;
	job_set(&j, &x.cur);
	log_debug(&r->log, "delivering", LF_I64("queueid", x.cur.sel[0].id),
	    LF_U64("recipients", x.cur.nsel),
	    LF_STR("domain", x.cur.sel[0].recipient_domain),
	    LF_STR("transport", x.cur.transport),
	    LF_I64("attempt", x.cur.sel[0].attempts));
	queue_deliver(&j);
	/* A job_next() that found nothing left no current records. */
	if (j.msgs != NULL)
		park(&x, &j);
	job_end(&x);
	buf_release(&j.dialed_out);
out:
	job_ctx_release(&x);
	queue_stmts_free(x.stmts);
	sqlite3_close(x.db);
	config_put(cfg);
	buf_release(&err);
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

/* ---- the MTA-STS refresher (spec/queue.md 5.9) ---- */

#define REFRESH_INTERVAL_S (24 * 3600)
#define REFRESH_FIRST_S 600       /* first pass after start */
#define REFRESH_SPREAD_S (3 * 3600) /* one pass is spread over this */
#define REFRESH_GAP_MAX_S 120     /* random wait between two policies */

/* Wait up to secs on the runner's condition; true when stopping. */
static bool
refresher_wait(struct queue_runner *r, int64_t secs)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)secs;
	lock_take(&r->lock);
	while (!r->stop && lock_timedwait(&r->lock, &r->cv, &ts) == 0)
		;
	stop = r->stop;
	lock_release(&r->lock);
	return stop;
}

static int64_t
refresh_interval(void)
{
	const char *v = getenv("MOX_TEST_MTASTS_REFRESH_SECS");
	char *end = NULL;
	long long n;

	if (v == NULL || v[0] == '\0')
		return REFRESH_INTERVAL_S;
	n = strtoll(v, &end, 10);
	if (end == NULL || *end != '\0' || n <= 0)
		return REFRESH_INTERVAL_S;
	return n;
}

/* Every interval: one refresher pass, one policy at a time with random
 * gaps so the fetches spread (at most REFRESH_SPREAD_S per pass). */
static void *
refresher_main(void *arg)
{
	struct queue_runner *r = arg;
	int64_t interval = refresh_interval();
	struct buf err;

	buf_init(&err, 4096);
	if (refresher_wait(r, interval < REFRESH_FIRST_S ? interval
							 : REFRESH_FIRST_S))
		goto out;
	for (;;) {
		int64_t start = time_wall_ns() / NS_PER_SEC, total = 0;

		for (;;) {
			size_t n = 0;
			unsigned char b = 0;

			buf_reset(&err);
			if (mtasts_refresh(r->p.tls->mtasts, r->p.resolver,
				r->p.tls->fetch, time_wall_ns() / NS_PER_SEC, 1,
				&n, &err) == -1) {
				log_error(&r->log, "mta-sts refresher",
				    LF_ERR(err.data));
				break;
			}
			if (n == 0)
				break;
			total += (int64_t)n;
			if (time_wall_ns() / NS_PER_SEC - start >
			    REFRESH_SPREAD_S)
				break;
			(void)gnutls_rnd(GNUTLS_RND_NONCE, &b, 1);
			if (refresher_wait(r, interval < REFRESH_GAP_MAX_S ? 0 :
				1 + b % REFRESH_GAP_MAX_S))
				goto out;
		}
		log_info(&r->log, "mta-sts policies refreshed",
		    LF_I64("count", total));
		if (refresher_wait(r, interval))
			goto out;
	}
out:
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
	/* spec/queue.md 5.9: the refresher runs with the server, not in
	 * localserve. */
	if (p->tls != NULL && p->tls->refresh && p->tls->mtasts != NULL &&
	    p->resolver != NULL && !p->localserve) {
		if (pthread_create(&r->refresher, NULL, refresher_main, r) == 0)
			r->have_refresher = true;
		else
			log_error(&r->log, "starting mta-sts refresher thread");
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
	if (r->have_refresher)
		pthread_join(r->refresher, NULL);
	for (size_t i = 0; i < QUEUE_RUN_MAX; i++)
		free(r->busy[i]);
	lock_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	queue_close(r->q);
	free(r);
}
