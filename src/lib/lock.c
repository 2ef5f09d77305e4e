/*
 * lock.c: ordered mutexes (lock.h). With MOX_LOCK_DEBUG each thread keeps
 * the stack of locks it holds and asserts the order on every take.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lock.h"
#include "banned.h"

#ifdef MOX_LOCK_DEBUG
#define HELD_MAX 16
static _Thread_local const struct lock *held[HELD_MAX];
static _Thread_local int nheld;
#endif

static void
check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "l=fatal m=\"%s failed\" errno=%d\n", what, rc);
		abort();
	}
}

void
lock_init(struct lock *l, enum lock_order order, const char *name)
{
	pthread_mutexattr_t a;

	check(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
#ifdef MOX_LOCK_DEBUG
	check(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK),
	    "pthread_mutexattr_settype");
#endif
	check(pthread_mutex_init(&l->m, &a), "pthread_mutex_init");
	pthread_mutexattr_destroy(&a);
	l->order = order;
	l->name = name;
}

void
lock_destroy(struct lock *l)
{
	pthread_mutex_destroy(&l->m);
}

static void
note_take(struct lock *l)
{
#ifdef MOX_LOCK_DEBUG
	for (int i = 0; i < nheld; i++)
		if (held[i]->order > l->order) {
			fprintf(stderr,
			    "l=fatal m=\"lock order violated\" taking=%s "
			    "holding=%s\n",
			    l->name, held[i]->name);
			abort();
		}
	assert(nheld < HELD_MAX);
	held[nheld++] = l;
#else
	(void)l;
#endif
}

static void
note_release(struct lock *l)
{
#ifdef MOX_LOCK_DEBUG
	for (int i = nheld - 1; i >= 0; i--)
		if (held[i] == l) {
			for (int k = i; k < nheld - 1; k++)
				held[k] = held[k + 1];
			nheld--;
			return;
		}
	assert(!"releasing a lock not held");
#else
	(void)l;
#endif
}

void
lock_take(struct lock *l)
{
	check(pthread_mutex_lock(&l->m), "pthread_mutex_lock");
	note_take(l);
}

void
lock_release(struct lock *l)
{
	note_release(l);
	check(pthread_mutex_unlock(&l->m), "pthread_mutex_unlock");
}

void
lock_wait(struct lock *l, pthread_cond_t *cv)
{
	note_release(l);
	check(pthread_cond_wait(cv, &l->m), "pthread_cond_wait");
	note_take(l);
}

int
lock_timedwait(struct lock *l, pthread_cond_t *cv, const struct timespec *abs)
{
	int rc;

	note_release(l);
	rc = pthread_cond_timedwait(cv, &l->m, abs);
	note_take(l);
	if (rc != 0 && rc != ETIMEDOUT)
		check(rc, "pthread_cond_timedwait");
	return rc;
}

void
lock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	check(pthread_condattr_init(&a), "pthread_condattr_init");
	check(pthread_condattr_setclock(&a, CLOCK_MONOTONIC),
	    "pthread_condattr_setclock");
	check(pthread_cond_init(cv, &a), "pthread_cond_init");
	pthread_condattr_destroy(&a);
}

bool
lock_is_held(const struct lock *l)
{
#ifdef MOX_LOCK_DEBUG
	for (int i = 0; i < nheld; i++)
		if (held[i] == l)
			return true;
	return false;
#else
	(void)l;
	return true;
#endif
}
