/*
 * net_timer.h: a binary min-heap of deadlines with a per-entry index, so
 * an entry is added, moved or removed in O(log n). Entries are embedded
 * in their owners (a connection holds one). Not locked: the reactor
 * guards its heap with its timer lock.
 */
#ifndef NET_NET_TIMER_H
#define NET_NET_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_TIMER_NONE ((size_t)-1) /* index of an entry not in a heap */

struct net_timer {
	int64_t when; /* deadline, monotonic ns */
	size_t idx;   /* position in the heap or NET_TIMER_NONE */
};

struct net_theap {
	struct net_timer **v; /* v[0] is the earliest; owned array */
	size_t n, cap;
};

/* Prepare an entry (not in any heap). */
void net_timer_init(struct net_timer *t);
static inline bool
net_timer_pending(const struct net_timer *t)
{
	return t->idx != NET_TIMER_NONE;
}

void net_theap_init(struct net_theap *h);
/* Free the array (entries belong to their owners). NULL-safe. */
void net_theap_release(struct net_theap *h);
/* Insert t with deadline when, or move it there when already in h. */
void net_theap_set(struct net_theap *h, struct net_timer *t, int64_t when);
/* Remove t if it is in h. */
void net_theap_remove(struct net_theap *h, struct net_timer *t);
/* Earliest entry or NULL. */
struct net_timer *net_theap_peek(const struct net_theap *h);
/* Remove and return the earliest entry due at now (when <= now), or NULL. */
struct net_timer *net_theap_pop_due(struct net_theap *h, int64_t now);
/* Check the heap order and indexes (tests). */
bool net_theap_valid(const struct net_theap *h);

#endif
