/*
 * net_timer.c: binary min-heap of deadlines (see net_timer.h). Pure data
 * structure: no clock, no locks; the caller serialises access.
 */
#include <assert.h>
#include <stdlib.h>

#include "lib/xmalloc.h"
#include "net/net_timer.h"

#include "lib/banned.h"

void
net_timer_init(struct net_timer *t)
{
	t->when = 0;
	t->idx = NET_TIMER_NONE;
}

void
net_theap_init(struct net_theap *h)
{
	h->v = NULL;
	h->n = 0;
	h->cap = 0;
}

void
net_theap_release(struct net_theap *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		h->v[i]->idx = NET_TIMER_NONE;
	free(h->v);
	net_theap_init(h);
}

static void
place(struct net_theap *h, size_t i, struct net_timer *t)
{
	h->v[i] = t;
	t->idx = i;
}

static void
sift_up(struct net_theap *h, size_t i)
{
	struct net_timer *t = h->v[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->v[parent]->when <= t->when)
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, t);
}

static void
sift_down(struct net_theap *h, size_t i)
{
	struct net_timer *t = h->v[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		int64_t mw = t->when;

		if (l < h->n && h->v[l]->when < mw) {
			m = l;
			mw = h->v[l]->when;
		}
		if (r < h->n && h->v[r]->when < mw)
			m = r;
		if (m == i)
			break;
		place(h, i, h->v[m]);
		i = m;
	}
	place(h, i, t);
}

void
net_theap_set(struct net_theap *h, struct net_timer *t, int64_t when)
{
	size_t i;

	if (t->idx != NET_TIMER_NONE) {
		int64_t old = t->when;

		assert(t->idx < h->n && h->v[t->idx] == t);
		t->when = when;
		if (when < old)
			sift_up(h, t->idx);
		else
			sift_down(h, t->idx);
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? size_mul(h->cap, 2) : 64;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	t->when = when;
	i = h->n++;
	place(h, i, t);
	sift_up(h, i);
}

void
net_theap_remove(struct net_theap *h, struct net_timer *t)
{
	size_t i = t->idx;
	struct net_timer *last;

	if (i == NET_TIMER_NONE)
		return;
	assert(i < h->n && h->v[i] == t);
	t->idx = NET_TIMER_NONE;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->when > last->when)
		sift_up(h, i);
	else
		sift_down(h, i);
}

struct net_timer *
net_theap_peek(const struct net_theap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

struct net_timer *
net_theap_pop_due(struct net_theap *h, int64_t now)
{
	struct net_timer *t = net_theap_peek(h);

	if (t == NULL || t->when > now)
		return NULL;
	net_theap_remove(h, t);
	return t;
}

bool
net_theap_valid(const struct net_theap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i]->idx != i)
			return false;
		if (i > 0 && h->v[(i - 1) / 2]->when > h->v[i]->when)
			return false;
	}
	return true;
}
