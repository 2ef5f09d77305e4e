/*
 * fuzz_mtasts.c: fuzz target for the MTA-STS parsers (src/queue/
 * mtasts.c): the input is parsed as a _mta-sts TXT record and as a
 * policy, and every mx pattern of a parsed policy is matched against a
 * few hosts and against the input itself. With libFuzzer
 * (-DMOX_LIBFUZZER -fsanitize=fuzzer) it is a normal fuzz target;
 * otherwise main() runs the files named on the command line, or without
 * arguments a built-in hostile corpus and all prefixes of each entry, so
 * make check replays them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "queue/mtasts.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = { "mx.example.org",
		"a.example.org", "example.org", "", "." };
	struct span in = span_of((const char *)data, size);
	struct mtasts_record rec;
	struct mtasts_policy pol;
	const char *why = NULL;

	if (mtasts_record_parse(in, &rec, &why) == 0) {
		if (strlen(rec.id) == 0 || strlen(rec.id) > MTASTS_ID_MAX)
			abort();
		mtasts_record_release(&rec);
	} else if (why == NULL)
		abort();
	why = NULL;
	if (mtasts_policy_parse(in, &pol, &why) == 0) {
		char *s;

		if (pol.mode != MTASTS_MODE_NONE && pol.nmx == 0)
			abort();
		for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
			(void)mtasts_policy_match_mx(&pol, hosts[i]);
		s = span_dup(in);
		(void)mtasts_policy_match_mx(&pol, s);
		free(s);
		mtasts_policy_release(&pol);
	} else if (why == NULL)
		abort();
	return 0;
}

#ifndef MOX_LIBFUZZER
static const char *const corpus[] = {
	"", "v=STSv1", "v=STSv1;", "v=STSv1; id=1", "v=STSv1; id=1;",
	"v=STSv1;id=abc;ext=v;", "v=STSv1; id=a;;", "v=STSv1; id=\x80",
	"v=STSv1; e=\x01; id=1", "v=STSv1 ;\t id=ABC ;\t",
	"version: STSv1\nmode: enforce\nmx: *.example.org\nmax_age: 1\n",
	"version: STSv1\r\nmode: testing\r\nmx: a.b\r\nmax_age: 86400\r\n",
	"version: STSv1\nmode: none\nmax_age: 0", "version:\n", ":\n", "\n\n",
	"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
	"version: STSv1\nmode: enforce\nmx: *.*.a\nmax_age: 99999999999\n",
	"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\nx: \xc3\n",
	"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\nx: \xf4\x90\x80\x80\n",
	"version: STSv1\rmode: enforce\r\rmx: a.b\nmax_age: 1\n",
	"mx: a.b\nmx: *.a.b\nmx: A.B\nversion: STSv1\nmode: enforce\nmax_age: 1",
};

int
main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			struct buf b, err;

			buf_init(&b, 1 << 20);
			buf_init(&err, 4096);
			if (io_read_file(argv[i], &b, &err) == -1) {
				fprintf(stderr, "fuzz_mtasts: %s\n", err.data);
				return 1;
			}
			(void)LLVMFuzzerTestOneInput((const uint8_t *)b.data,
			    b.len);
			buf_release(&b);
			buf_release(&err);
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		size_t len = strlen(corpus[i]);

		for (size_t n = 0; n <= len; n++)
			(void)LLVMFuzzerTestOneInput(
			    (const uint8_t *)corpus[i], n);
	}
	return 0;
}
#endif
