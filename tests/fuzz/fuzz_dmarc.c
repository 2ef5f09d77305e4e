/*
 * fuzz_dmarc.c: feed arbitrary bytes to the DMARC record parser (RFC 7489
 * 6.3 tag list). Built as a libFuzzer target with -DFUZZING_ENGINE and
 * -fsanitize=fuzzer; otherwise a program that runs each file named on the
 * command line, or without arguments a built-in set of hostile records
 * (make check runs that set).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "mailauth/dmarc.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record rec;
	const char *why = NULL;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = dmarc_record_parse(span_of((const char *)data, size), &rec, &why);
	if (rc == 1)
		dmarc_record_release(&rec);
	return 0;
}

#ifndef FUZZING_ENGINE
static const char *const hostile[] = {
	"",
	"v=DMARC1",
	"v=DMARC1;",
	"v=DMARC1; p=reject",
	"v=DMARC1;p=reject;;;;;;;;",
	"v=DMARC1; p=reject; pct=100000000000000000000000",
	"v=DMARC1; p=reject; pct=-1",
	"v=DMARC1; p=reject; rua=mailto:a@b,mailto:,,,,mailto:x@y!99999999999999999999m",
	"v=DMARC1; p=reject; rua=mailto:%00@example.org",
	"v=DMARC1; p=reject; ri=99999999999999999999999",
	"v=DMARC1; p=reject; fo=0:1:d:s:x:y:z",
	"v=DMARC1; p= ; sp= ; adkim= ; aspf= ",
	"v=DMARC1; p=reject; p=none; p=quarantine",
	"v=DMARC1 p=reject",
	"V=dmarc1; P=REJECT",
	"v=DMARC1; \x00p=reject",
	"v=DMARC1; p=reject\r\n; sp=none",
	"v=DMARC1; p=\xff\xfe\xfd",
	"=;=;=;=;=;=",
	"v=DMARC1; =reject",
	"v=DMARC1; p",
};

int
main(int argc, char **argv)
{
	if (argc == 1) {
		char *big = malloc(1 << 20);

		for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
			LLVMFuzzerTestOneInput((const uint8_t *)hostile[i],
			    strlen(hostile[i]));
		/* one huge record: many tags */
		memcpy(big, "v=DMARC1; ", 10);
		for (size_t i = 10; i + 4 < (1 << 20); i += 4)
			memcpy(big + i, "a=;", 4);
		LLVMFuzzerTestOneInput((const uint8_t *)big, (1 << 20) - 4);
		free(big);
		printf("fuzz_dmarc: built-in hostile records parsed\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		struct buf b, err;

		buf_init(&b, 1 << 24);
		buf_init(&err, 1024);
		if (io_read_file(argv[i], &b, &err) == -1) {
			fprintf(stderr, "%s\n", err.data);
			return 1;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
		buf_release(&b);
		buf_release(&err);
	}
	return 0;
}
#endif
