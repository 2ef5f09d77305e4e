/*
 * net_job.c: jobs, blocking work (DNS lookups) run on the worker pool
 * beside the connections (net.h). A job is referenced by its starter
 * until net_job_put() and by the pool until a worker took it from the
 * FIFO; its argument is freed when both are gone, so a starter that
 * stops caring (its connection closed, its wait timed out) leaves
 * nothing behind and a late job touches nothing freed.
 *
 * Threads: any thread starts, waits for and puts jobs; workers run them.
 * Locks: a job's own lock (POOL order) guards its state and references
 * and is never held with r->plock, across fn or across free_fn.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "net/net.h"
#include "net/net_int.h"
#include "lib/banned.h"

static void
job_free(struct net_job *j)
{
	if (j->free_fn != NULL)
		j->free_fn(j->arg);
	pthread_cond_destroy(&j->cv);
	lock_destroy(&j->lock);
	free(j);
}

/* Drop one reference; the last one frees the job. */
static void
job_unref(struct net_job *j)
{
	bool last;

	lock_take(&j->lock);
	assert(j->refs > 0);
	last = --j->refs == 0;
	lock_release(&j->lock);
	if (last)
		job_free(j);
}

/* Run fn on this thread; the caller moved the state to RUNNING. */
static void
job_run(struct net_job *j)
{
	j->fn(j->arg);
	lock_take(&j->lock);
	j->state = NET_JOB_DONE;
	pthread_cond_broadcast(&j->cv);
	lock_release(&j->lock);
}

/* Move a queued job to RUNNING; false when it started or was cancelled. */
static bool
job_claim(struct net_job *j)
{
	bool claimed;

	lock_take(&j->lock);
	claimed = j->state == NET_JOB_QUEUED;
	if (claimed)
		j->state = NET_JOB_RUNNING;
	lock_release(&j->lock);
	return claimed;
}

struct net_job *
net_job_start(struct net_reactor *r, net_job_fn *fn, net_job_fn *free_fn,
    void *arg)
{
	struct net_job *j = xcalloc(1, sizeof(*j));

	lock_init(&j->lock, LOCK_ORDER_POOL, "net job");
	lock_cond_init(&j->cv);
	j->fn = fn;
	j->free_fn = free_fn;
	j->arg = arg;
	j->refs = 1;
	if (r == NULL) {
		j->state = NET_JOB_RUNNING;
		job_run(j);
		return j;
	}
	j->state = NET_JOB_QUEUED;
	j->refs++; /* the pool's, dropped by net_job_run_pooled() */
	net_pool_enqueue_job(r, j);
	return j;
}

void
net_job_run_pooled(struct net_job *j)
{
	if (job_claim(j))
		job_run(j);
	job_unref(j);
}

bool
net_job_is_done(struct net_job *j)
{
	bool done;

	lock_take(&j->lock);
	done = j->state == NET_JOB_DONE;
	lock_release(&j->lock);
	return done;
}

bool
net_job_wait(struct net_job *j, int64_t deadline_ns)
{
	struct timespec abs;
	bool done;

	/* No worker took it yet: all may be busy, some perhaps waiting
	 * like us, so run it here rather than depend on them. */
	if (job_claim(j)) {
		job_run(j);
		return true;
	}
	abs.tv_sec = (time_t)(deadline_ns / NS_PER_SEC);
	abs.tv_nsec = (long)(deadline_ns % NS_PER_SEC);
	lock_take(&j->lock);
	while (j->state != NET_JOB_DONE)
		if (lock_timedwait(&j->lock, &j->cv, &abs) == ETIMEDOUT)
			break;
	done = j->state == NET_JOB_DONE;
	lock_release(&j->lock);
	return done;
}

void
net_job_put(struct net_job *j)
{
	if (j == NULL)
		return;
	lock_take(&j->lock);
	if (j->state == NET_JOB_QUEUED)
		j->state = NET_JOB_DONE; /* cancelled: fn never runs */
	lock_release(&j->lock);
	job_unref(j);
}

struct net_reactor *
net_conn_reactor(const struct net_conn *c)
{
	return c->r;
}
