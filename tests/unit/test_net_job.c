/*
 * test_net_job.c: jobs on the worker pool (src/net/net_job.c) through a
 * real runtime with two workers, so one job runs at a time: a job runs
 * on a worker; a wait for a job no worker took runs it on the waiter; a
 * put before it started cancels it; a wait past its deadline says so and
 * the job frees its argument once it finished after the starter left;
 * net_stop() runs queued jobs; without a runtime a job runs at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "net/net.h"
#include "lib/banned.h"

struct t_job {
	atomic_int *ran;     /* times fn ran, shared with the test */
	atomic_int *freed;   /* times free_fn ran */
	atomic_bool *gate;   /* fn waits until it is true; NULL: no wait */
	pthread_t thread;    /* where fn ran */
};

static atomic_int ran, freed;

static void
t_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
t_run(void *arg)
{
	struct t_job *j = arg;

	/* Bounded: the gate opens within the test or we give up. */
	for (int i = 0; j->gate != NULL && !atomic_load(j->gate) && i < 5000;
	     i++)
		t_sleep_ms(1);
	j->thread = pthread_self();
	atomic_fetch_add(j->ran, 1);
}

static void
t_free(void *arg)
{
	struct t_job *j = arg;

	atomic_fetch_add(j->freed, 1);
	free(j);
}

static struct t_job *
t_job(atomic_bool *gate)
{
	struct t_job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->ran = &ran;
	j->freed = &freed;
	j->gate = gate;
	return j;
}

static struct net_reactor *
t_runtime(void)
{
	struct net_params p = { .workers = 2 };
	struct buf err;
	struct net_reactor *r;

	buf_init(&err, 1024);
	r = net_start(&p, &err);
	if (r == NULL)
		fail_msg("net_start: %s", err.data);
	buf_release(&err);
	atomic_store(&ran, 0);
	atomic_store(&freed, 0);
	return r;
}

static void
t_stop(struct net_reactor *r)
{
	net_stop(r, 1000);
	net_free(r);
}

static int64_t
t_deadline(int ms)
{
	return time_mono_ns() + (int64_t)ms * NS_PER_MS;
}

/* Wait (bounded) until the counter reaches want. */
static void
t_await(atomic_int *v, int want)
{
	for (int i = 0; atomic_load(v) < want && i < 5000; i++)
		t_sleep_ms(1);
	assert_int_equal(atomic_load(v), want);
}

static void
test_job_runs_on_worker(void **state)
{
	struct net_reactor *r = t_runtime();
	struct t_job *a = t_job(NULL);
	struct net_job *j = net_job_start(r, t_run, t_free, a);

	t_await(&ran, 1);
	assert_true(net_job_wait(j, t_deadline(5000)));
	assert_true(net_job_is_done(j));
	assert_false(pthread_equal(a->thread, pthread_self()));
	assert_int_equal(atomic_load(&freed), 0); /* the starter holds it */
	net_job_put(j);
	assert_int_equal(atomic_load(&freed), 1);
	t_stop(r);
	(void)state;
}

static void
test_job_waiter_runs_queued(void **state)
{
	struct net_reactor *r = t_runtime();
	atomic_bool gate = false;
	struct t_job *busy = t_job(&gate), *b = t_job(NULL);
	struct net_job *jb = net_job_start(r, t_run, t_free, busy);
	struct net_job *j;

	/* The one job slot is taken by busy: b stays queued, and the
	 * wait runs it here at once, before any deadline matters. */
	t_sleep_ms(50);
	j = net_job_start(r, t_run, t_free, b);
	t_sleep_ms(50);
	assert_false(net_job_is_done(j));
	assert_true(net_job_wait(j, t_deadline(0)));
	assert_true(pthread_equal(b->thread, pthread_self()));
	net_job_put(j);
	atomic_store(&gate, true);
	assert_true(net_job_wait(jb, t_deadline(5000)));
	net_job_put(jb);
	t_stop(r);
	assert_int_equal(atomic_load(&ran), 2);
	assert_int_equal(atomic_load(&freed), 2);
	(void)state;
}

static void
test_job_put_cancels(void **state)
{
	struct net_reactor *r = t_runtime();
	atomic_bool gate = false;
	struct net_job *jb = net_job_start(r, t_run, t_free, t_job(&gate));
	struct net_job *j;

	t_sleep_ms(50);
	j = net_job_start(r, t_run, t_free, t_job(NULL));
	net_job_put(j); /* not taken yet: cancelled */
	atomic_store(&gate, true);
	assert_true(net_job_wait(jb, t_deadline(5000)));
	net_job_put(jb);
	t_stop(r);
	assert_int_equal(atomic_load(&ran), 1);
	assert_int_equal(atomic_load(&freed), 2);
	(void)state;
}

static void
test_job_wait_deadline(void **state)
{
	struct net_reactor *r = t_runtime();
	atomic_bool gate = false;
	struct net_job *j = net_job_start(r, t_run, t_free, t_job(&gate));
	int64_t t0;

	t_sleep_ms(50); /* a worker took it and waits at the gate */
	t0 = time_mono_ns();
	assert_false(net_job_wait(j, t_deadline(100)));
	assert_true(time_mono_ns() - t0 >= 90 * NS_PER_MS);
	assert_false(net_job_is_done(j));
	net_job_put(j); /* the starter leaves; the job goes on */
	assert_int_equal(atomic_load(&freed), 0);
	atomic_store(&gate, true);
	t_await(&freed, 1);
	assert_int_equal(atomic_load(&ran), 1);
	t_stop(r);
	(void)state;
}

static void
test_job_stop_runs_queued(void **state)
{
	struct net_reactor *r = t_runtime();
	atomic_bool gate = false;
	struct net_job *jb = net_job_start(r, t_run, t_free, t_job(&gate));
	struct net_job *j;

	t_sleep_ms(50);
	j = net_job_start(r, t_run, t_free, t_job(NULL));
	atomic_store(&gate, true);
	net_stop(r, 1000);
	assert_true(net_job_is_done(jb));
	assert_true(net_job_is_done(j));
	assert_int_equal(atomic_load(&ran), 2);
	net_job_put(j);
	net_job_put(jb);
	assert_int_equal(atomic_load(&freed), 2);
	net_free(r);
	(void)state;
}

static void
test_job_without_runtime(void **state)
{
	struct t_job *a;
	struct net_job *j;

	atomic_store(&ran, 0);
	atomic_store(&freed, 0);
	a = t_job(NULL);
	j = net_job_start(NULL, t_run, t_free, a);
	assert_int_equal(atomic_load(&ran), 1);
	assert_true(net_job_is_done(j));
	assert_true(net_job_wait(j, 0));
	assert_true(pthread_equal(a->thread, pthread_self()));
	net_job_put(j);
	net_job_put(NULL);
	assert_int_equal(atomic_load(&freed), 1);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_runs_on_worker),
		cmocka_unit_test(test_job_waiter_runs_queued),
		cmocka_unit_test(test_job_put_cancels),
		cmocka_unit_test(test_job_wait_deadline),
		cmocka_unit_test(test_job_stop_runs_queued),
		cmocka_unit_test(test_job_without_runtime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
