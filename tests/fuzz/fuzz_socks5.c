/*
 * fuzz_socks5.c: fuzz target for the SOCKS5 reply parsers (src/queue/
 * queue_socks5.c, RFC 1928 3 and 6): the input is parsed as a method
 * selection reply and as a CONNECT reply, whole and as a reader that only
 * reads what the parser asks for, and both ways must agree; the input
 * also becomes a CONNECT request's host name. With libFuzzer
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
#include "queue/queue_socks5.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_socks5_reply whole, step;
	uint8_t req[QUEUE_SOCKS5_MSG_MAX];
	const char *why = NULL;
	size_t need = 0, need2 = 0, have = 0, len = 0;
	char host[QUEUE_SOCKS5_DOMAIN_MAX + 2];
	int rc, rc2;

	rc = queue_socks5_parse_method(data, size, &why);
	if (rc == -1 && why == NULL)
		abort();
	why = NULL;
	rc = queue_socks5_parse_reply(data, size, &whole, &need, &why);
	if ((rc == -1 && why == NULL) || need > QUEUE_SOCKS5_MSG_MAX ||
	    (rc == 1 && need > size) || (rc == 0 && need <= size))
		abort();
	if (rc == 1 && strlen(whole.bound) > QUEUE_SOCKS5_BOUND_MAX)
		abort();
	/* A reader that reads no further than asked. */
	for (;;) {
		rc2 = queue_socks5_parse_reply(data, have, &step, &need2, &why);
		if (rc2 != 0 || have == size)
			break;
		if (need2 <= have)
			abort();
		have = need2 < size ? need2 : size;
	}
	if (rc2 != rc || (rc == 1 && (need2 != need ||
				     strcmp(step.bound, whole.bound) != 0 ||
				     step.bound_port != whole.bound_port)))
		abort();
	len = size < sizeof(host) - 1 ? size : sizeof(host) - 1;
	memcpy(host, data, len);
	host[len] = '\0';
	if (queue_socks5_connect_request(host, 25, req, sizeof(req), &len,
		&why) == 0 && (len < 8 || len > sizeof(req)))
		abort();
	return 0;
}

#ifndef MOX_LIBFUZZER
static const struct {
	const char *p;
	size_t len;
} corpus[] = {
	{ "\x05\x00", 2 },
	{ "\x05\xff", 2 },
	{ "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38", 10 },
	{ "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38" "220 x\r\n", 17 },
	{ "\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00"
	  "\x00\x00\x00\x01\x00\x19", 22 },
	{ "\x05\x00\x00\x03\x05proxy\x00\x19", 12 },
	{ "\x05\x00\x00\x03\x00\x00\x19", 7 },
	{ "\x05\x00\x00\x03\xff", 5 },
	{ "\x05\x00\x00\x03\x03" "a\0b\x00\x19", 10 },
	{ "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10 },
	{ "\x05\x00\x01\x01", 4 },
	{ "\x05\x00\x00\x02", 4 },
	{ "\x04\x5a\x00\x00\x00\x00\x00\x00", 8 },
	{ "HTTP/1.1 400 Bad Request\r\n", 26 },
	{ "mx.example.org", 14 },
	{ "192.0.2.1", 9 },
	{ "2001:db8::1", 11 },
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
				fprintf(stderr, "fuzz_socks5: %s\n", err.data);
				return 1;
			}
			(void)LLVMFuzzerTestOneInput((const uint8_t *)b.data,
			    b.len);
			buf_release(&b);
			buf_release(&err);
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++)
		for (size_t n = 0; n <= corpus[i].len; n++)
			(void)LLVMFuzzerTestOneInput(
			    (const uint8_t *)corpus[i].p, n);
	{
		/* The longest reply and one byte more. */
		uint8_t big[QUEUE_SOCKS5_MSG_MAX + 1];

		memcpy(big, "\x05\x00\x00\x03\xff", 5);
		memset(big + 5, 'a', sizeof(big) - 5);
		for (size_t n = 0; n <= sizeof(big); n++)
			(void)LLVMFuzzerTestOneInput(big, n);
	}
	return 0;
}
#endif
