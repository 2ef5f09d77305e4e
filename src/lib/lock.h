/*
 * lock.h: mutexes with a global order (STYLE.md section 8). Locks are taken
 * in increasing enum lock_order; builds with MOX_LOCK_DEBUG check it and
 * LOCK_ASSERT_HELD() per thread.
 */
#ifndef LIB_LOCK_H
#define LIB_LOCK_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>

enum lock_order {
	LOCK_ORDER_CONFIG = 1,
	LOCK_ORDER_NET,     /* listener/ip registries, connection list */
	LOCK_ORDER_TIMER,   /* reactor timer heap */
	LOCK_ORDER_ACCOUNTS,
	LOCK_ORDER_ACCOUNT,
	LOCK_ORDER_CHANGES,
	LOCK_ORDER_POOL, /* worker pool queue: a leaf, so a change callback
			  * under the account lock may wake a connection */
	LOCK_ORDER_DNS, /* resolver cache and mock: leaf locks */
	LOCK_ORDER_LOG,
};

struct lock {
	pthread_mutex_t m;
	enum lock_order order;
	const char *name;
};

void lock_init(struct lock *l, enum lock_order order, const char *name);
void lock_destroy(struct lock *l);
void lock_take(struct lock *l);
void lock_release(struct lock *l);
/* Wait on cv, releasing l meanwhile. */
void lock_wait(struct lock *l, pthread_cond_t *cv);
/* Wait until abs (CLOCK_MONOTONIC; cv must use it). Returns 0 or ETIMEDOUT. */
int lock_timedwait(struct lock *l, pthread_cond_t *cv,
    const struct timespec *abs);
/* Initialise a condition variable on CLOCK_MONOTONIC. */
void lock_cond_init(pthread_cond_t *cv);
bool lock_is_held(const struct lock *l);

#define LOCK_ASSERT_HELD(l) assert(lock_is_held(l))

#endif
