/*
 * test_net_timer.c: the runtime's timer heap (src/net/net_timer.c): order
 * of expiry, moving and removing entries, equal deadlines, hostile
 * sequences (remove twice, remove what is not queued, extreme values),
 * and a long pseudo-random run checked against a brute-force model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/compat.h"
#include "net/net_timer.h"
#include "lib/banned.h"

#define NT 8

enum op { SET, REMOVE, POP };

struct step {
	enum op op;
	int timer;     /* index into the timers, for SET/REMOVE */
	int64_t when;  /* SET: deadline; POP: now */
	int want;      /* POP: timer expected or -1 for none */
};

static const struct {
	const char *name;
	struct step steps[12];
	size_t n;
} cases[] = {
	{ "empty pop", { { POP, 0, 100, -1 } }, 1 },
	{ "single", { { SET, 0, 10, 0 }, { POP, 0, 9, -1 }, { POP, 0, 10, 0 },
	    { POP, 0, 100, -1 } }, 4 },
	{ "order", { { SET, 0, 30, 0 }, { SET, 1, 10, 0 }, { SET, 2, 20, 0 },
	    { POP, 0, 100, 1 }, { POP, 0, 100, 2 }, { POP, 0, 100, 0 },
	    { POP, 0, 100, -1 } }, 7 },
	{ "move earlier", { { SET, 0, 30, 0 }, { SET, 1, 10, 0 },
	    { SET, 0, 5, 0 }, { POP, 0, 100, 0 }, { POP, 0, 100, 1 } }, 5 },
	{ "move later", { { SET, 0, 10, 0 }, { SET, 1, 20, 0 },
	    { SET, 0, 50, 0 }, { POP, 0, 30, 1 }, { POP, 0, 30, -1 },
	    { POP, 0, 50, 0 } }, 6 },
	{ "remove top", { { SET, 0, 10, 0 }, { SET, 1, 20, 0 },
	    { REMOVE, 0, 0, 0 }, { POP, 0, 100, 1 }, { POP, 0, 100, -1 } }, 5 },
	{ "remove twice", { { SET, 0, 10, 0 }, { REMOVE, 0, 0, 0 },
	    { REMOVE, 0, 0, 0 }, { POP, 0, 100, -1 } }, 4 },
	{ "remove unqueued", { { REMOVE, 3, 0, 0 }, { SET, 1, 5, 0 },
	    { POP, 0, 5, 1 } }, 3 },
	{ "remove last", { { SET, 0, 10, 0 }, { SET, 1, 20, 0 },
	    { SET, 2, 30, 0 }, { REMOVE, 2, 0, 0 }, { POP, 0, 100, 0 },
	    { POP, 0, 100, 1 }, { POP, 0, 100, -1 } }, 7 },
	{ "extremes", { { SET, 0, INT64_MAX, 0 }, { SET, 1, INT64_MIN, 0 },
	    { POP, 0, 0, 1 }, { POP, 0, INT64_MAX - 1, -1 },
	    { POP, 0, INT64_MAX, 0 } }, 5 },
	{ "reset same", { { SET, 0, 10, 0 }, { SET, 0, 10, 0 },
	    { POP, 0, 10, 0 }, { POP, 0, 10, -1 } }, 4 },
};

static void
test_net_timer_cases(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct net_timer t[NT];
		struct net_theap h;

		net_theap_init(&h);
		for (int j = 0; j < NT; j++)
			net_timer_init(&t[j]);
		for (size_t k = 0; k < cases[i].n; k++) {
			const struct step *s = &cases[i].steps[k];
			struct net_timer *got;
			int gi;

			switch (s->op) {
			case SET:
				net_theap_set(&h, &t[s->timer], s->when);
				break;
			case REMOVE:
				net_theap_remove(&h, &t[s->timer]);
				if (net_timer_pending(&t[s->timer]))
					fail_msg("case %s step %zu: still pending",
					    cases[i].name, k);
				break;
			case POP:
				got = net_theap_pop_due(&h, s->when);
				gi = got == NULL ? -1 : (int)(got - t);
				if (gi != s->want)
					fail_msg("case %s step %zu: got %d want %d",
					    cases[i].name, k, gi, s->want);
				break;
			}
			if (!net_theap_valid(&h))
				fail_msg("case %s step %zu: heap invalid",
				    cases[i].name, k);
		}
		net_theap_release(&h);
		for (int j = 0; j < NT; j++)
			if (net_timer_pending(&t[j]))
				fail_msg("case %s: timer %d pending after release",
				    cases[i].name, j);
	}
	(void)state;
}

static uint64_t
next_rand(uint64_t *x)
{
	*x ^= *x << 13; /* xorshift64: deterministic test sequence */
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random sets, moves, removes and pops against a brute-force model. */
static void
test_net_timer_model(void **state)
{
	enum { N = 500, STEPS = 50000 };
	struct net_timer *t = calloc(N, sizeof(*t));
	bool *in = calloc(N, sizeof(*in));
	struct net_theap h;
	uint64_t x = 88172645463325252ull;
	int64_t now = 0;

	assert_non_null(t);
	assert_non_null(in);
	net_theap_init(&h);
	for (int i = 0; i < N; i++)
		net_timer_init(&t[i]);
	for (int step = 0; step < STEPS; step++) {
		uint64_t r = next_rand(&x);
		int i = (int)(r % N);

		switch ((r >> 20) % 4) {
		case 0:
		case 1:
			net_theap_set(&h, &t[i],
			    now + (int64_t)((r >> 32) % 1000));
			in[i] = true;
			break;
		case 2:
			net_theap_remove(&h, &t[i]);
			in[i] = false;
			break;
		default: {
			struct net_timer *got;
			int64_t min = INT64_MAX;

			now += (int64_t)((r >> 32) % 50);
			for (int j = 0; j < N; j++)
				if (in[j] && t[j].when < min)
					min = t[j].when;
			got = net_theap_pop_due(&h, now);
			if (min > now) {
				assert_null(got);
				break;
			}
			if (got == NULL || got->when != min)
				fail_msg("step %d: pop wrong entry", step);
			in[got - t] = false;
			break;
		}
		}
		if (step % 997 == 0 && !net_theap_valid(&h))
			fail_msg("step %d: heap invalid", step);
		if (step % 997 == 0) {
			size_t n = 0;

			for (int j = 0; j < N; j++)
				if (in[j] != net_timer_pending(&t[j]))
					fail_msg("step %d: timer %d membership",
					    step, j);
				else
					n += in[j];
			assert_int_equal(n, h.n);
		}
	}
	net_theap_release(&h);
	free(t);
	free(in);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_timer_cases),
		cmocka_unit_test(test_net_timer_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
