/*
 * dns_cache.c: the answer cache of a resolver (dns_int.h). Entries are
 * keyed by (absolute lower-case name, type), expire after the answer's
 * TTL (RFC 1035 3.2.1; negative answers after the RFC 2308 5 negative
 * TTL, capped short), and are evicted least recently used first when the
 * bound is reached. Negative entries have their own, smaller bound so a
 * flood of names that do not exist cannot push out real answers.
 * Thread rule: shared by all threads of a resolver; one leaf lock guards
 * everything, and nothing is called while it is held.
 */
#include <stdlib.h>
#include <string.h>

#include "dns/dns_int.h"
#include "lib/lock.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

struct entry {
	struct entry *hnext;          /* hash chain */
	struct entry *prev, *next;    /* LRU list, most recent first */
	char *name;                   /* owned */
	enum dns_type type;
	int64_t expires;              /* seconds, same clock as callers */
	struct dns_answer ans;        /* owned copy */
};

struct lru {
	struct entry *head, *tail;
	size_t n, max;
};

struct dns_cache {
	struct lock lock;             /* guards all below */
	struct entry **buckets;
	size_t nbuckets;              /* power of two */
	struct lru pos;               /* DNS_OK entries */
	struct lru neg;               /* DNS_NOTFOUND entries */
};

static uint64_t
hash_key(const char *name, enum dns_type type)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const char *p = name; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ull;
	}
	h ^= (uint64_t)type;
	h *= 1099511628211ull;
	return h;
}

struct dns_cache *
dns_cache_new(size_t max)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));
	size_t nb = 16;

	if (max == 0)
		max = 1;
	while (nb < max && nb < ((size_t)1 << 24))
		nb *= 2;
	c->nbuckets = nb;
	c->buckets = xcalloc(nb, sizeof(*c->buckets));
	c->neg.max = max / DNS_CACHE_NEG_SHARE;
	if (c->neg.max == 0)
		c->neg.max = 1;
	c->pos.max = max;
	/* A leaf lock: callers hold no lock across DNS (STYLE.md 8), and the
	 * cache calls nothing while holding it. */
	lock_init(&c->lock, LOCK_ORDER_DNS, "dns cache");
	return c;
}

static void
lru_unlink(struct lru *l, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
	l->n--;
}

static void
lru_push(struct lru *l, struct entry *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head != NULL)
		l->head->prev = e;
	l->head = e;
	if (l->tail == NULL)
		l->tail = e;
	l->n++;
}

static struct lru *
lru_of(struct dns_cache *c, const struct entry *e)
{
	return e->ans.result == DNS_OK ? &c->pos : &c->neg;
}

static void
entry_free(struct entry *e)
{
	dns_answer_release(&e->ans);
	free(e->name);
	free(e);
}

/* Remove e from its chain and list and free it. */
static void
entry_remove(struct dns_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[hash_key(e->name, e->type) &
	    (c->nbuckets - 1)];

	LOCK_ASSERT_HELD(&c->lock);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(lru_of(c, e), e);
	entry_free(e);
}

static struct entry *
find(struct dns_cache *c, const char *name, enum dns_type type)
{
	struct entry *e = c->buckets[hash_key(name, type) & (c->nbuckets - 1)];

	for (; e != NULL; e = e->hnext)
		if (e->type == type && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

bool
dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type,
    int64_t now, struct dns_answer *ans)
{
	struct entry *e;
	bool found = false;

	lock_take(&c->lock);
	e = find(c, name, type);
	if (e != NULL && e->expires <= now) {
		entry_remove(c, e);
		e = NULL;
	}
	if (e != NULL) {
		struct lru *l = lru_of(c, e);

		lru_unlink(l, e);
		lru_push(l, e);
		dns_answer_copy(ans, &e->ans);
		/* RFC 1035 3.2.1: hand out the time left, not the original. */
		for (size_t i = 0; i < ans->n; i++)
			if (ans->rr[i].ttl > (uint64_t)(e->expires - now))
				ans->rr[i].ttl = (uint32_t)(e->expires - now);
		found = true;
	}
	lock_release(&c->lock);
	return found;
}

void
dns_cache_put(struct dns_cache *c, const char *name, enum dns_type type,
    int64_t now, uint32_t ttl, const struct dns_answer *ans)
{
	struct entry *e, *old;
	struct lru *l;
	size_t b;

	if (ans->result == DNS_NOTFOUND && ttl > DNS_CACHE_NEG_TTL_MAX)
		ttl = DNS_CACHE_NEG_TTL_MAX;
	if (ttl > DNS_CACHE_TTL_MAX)
		ttl = DNS_CACHE_TTL_MAX;
	if (ttl == 0 || (ans->result != DNS_OK && ans->result != DNS_NOTFOUND))
		return;
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	e->type = type;
	e->expires = now + (int64_t)ttl;
	dns_answer_copy(&e->ans, ans);

	lock_take(&c->lock);
	old = find(c, name, type);
	if (old != NULL)
		entry_remove(c, old);
	l = lru_of(c, e);
	while (l->n >= l->max && l->tail != NULL)
		entry_remove(c, l->tail);
	while (c->pos.n + c->neg.n >= c->pos.max && c->pos.tail != NULL)
		entry_remove(c, c->pos.tail);
	b = hash_key(name, type) & (c->nbuckets - 1);
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	lru_push(l, e);
	lock_release(&c->lock);
}

size_t
dns_cache_count(struct dns_cache *c)
{
	size_t n;

	lock_take(&c->lock);
	n = c->pos.n + c->neg.n;
	lock_release(&c->lock);
	return n;
}

void
dns_cache_free(struct dns_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->hnext;
			entry_free(e);
		}
	}
	free(c->buckets);
	lock_destroy(&c->lock);
	free(c);
}
