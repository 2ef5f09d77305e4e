/*
 * test_queue_deliver.c: the pure parts of delivery (queue_deliver.c):
 * localserve's "queue..." localparts that fail when the queue delivers
 * them (spec/smtp.md 18).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/compat.h"
#include "queue/queue_int.h"
#include "lib/banned.h"

static void
test_localserve_error(void **state)
{
	static const struct {
		const char *lp;
		bool want;
		int code;
	} cases[] = {
		{ "queuetemperror", true, 451 },
		{ "queue-x-temperror", true, 451 },
		{ "queuepermerror", true, 550 },
		{ "queuetimeout", true, 0 },
		{ "queue421", true, 421 },
		{ "queue554", true, 554 },
		{ "queue600", true, 600 },
		{ "queue399", false, 0 },
		{ "queue601", false, 0 },
		{ "queue", false, 0 },
		{ "temperror", false, 0 },   /* not "queue...": submission's */
		{ "mox", false, 0 },
		{ "queuex", false, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int code = -1;
		const char *ecode = NULL, *text = NULL;
		bool got = queue_localserve_error(cases[i].lp, &code, &ecode,
		    &text);

		if (got != cases[i].want ||
		    (got && (code != cases[i].code || ecode == NULL ||
				ecode[0] != (code >= 500 ? '5' : '4') ||
				text == NULL)))
			fail_msg("case %zu (%s): got %d code %d", i,
			    cases[i].lp, got, code);
	}
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_localserve_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
