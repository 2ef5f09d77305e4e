/*
 * fuzz_fromid_dsn.c: fuzz target for the fromid feedback parsers
 * (src/queue/queue_fromid.c; RFC 3464 delivery-status fields, RFC 3463
 * status codes): the input is parsed as a delivery-status body and as a
 * whole message; results must be one of the known events, with codes in
 * range and a secode that fits. With libFuzzer (-DMOX_LIBFUZZER
 * -fsanitize=fuzzer) it is a normal fuzz target; otherwise main() runs
 * the files named on the command line, or without arguments a built-in
 * hostile corpus and all prefixes of each entry, so make check replays
 * them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "queue/queue_fromid.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct queue_fromid_feedback *fb)
{
	static const char *const events[] = { "failed", "delayed", "delivered",
		"relayed", "expanded", "unrecognized" };
	bool known = false;

	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (fb->event != NULL && strcmp(fb->event, events[i]) == 0)
			known = true;
	if (!known || (fb->code != 0 && (fb->code < 200 || fb->code > 599)) ||
	    strlen(fb->secode) > 7 ||
	    strnlen(fb->error, sizeof(fb->error)) == sizeof(fb->error) ||
	    strncmp(fb->error, "incoming message", 16) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_fromid_feedback fb;
	struct span in = span_of((const char *)data, size);
	int rc = queue_fromid_dsn_parse(in, &fb);

	if ((rc != 0 && rc != -1) || !fb.dsn ||
	    (rc == -1 && strcmp(fb.event, "unrecognized") != 0))
		abort();
	check(&fb);
	queue_fromid_feedback_of(in, NULL, &fb);
	check(&fb);
	return 0;
}

#ifndef MOX_LIBFUZZER
static const char *const corpus[] = {
	"Reporting-MTA: dns; mx.example.com\r\n\r\n"
	"Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\n"
	"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
	"Final-Recipient: rfc822; b@x\nAction: delayed\nStatus: 4.4.1\n",
	"Action: delivered\r\nStatus: 2.0.0 (ok)\r\n",
	"Action: failed\r\nStatus: 5.999.999\r\nDiagnostic-Code: smtp;"
	" 599-5.999.999 a\r\n\t599 5.999.999 b\r\n",
	"Action: failed\r\nStatus: 5.1234.1\r\nDiagnostic-Code: smtp; 5\r\n",
	"Action: failed\r\n\r\nAction: failed\r\n",
	"Action:\r\n",
	"\r\n\r\n\r\n",
	"\n\n:\n:\n",
	"Action: failed\rStatus: 5.1.1\r",
	"From: <a@example.com>\r\nContent-Type: multipart/report;"
	" boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\nContent-Type:"
	" message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n"
	"\r\n--b--\r\n",
	"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\n--b\r\n"
	"Content-Type: message/global-delivery-status\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\nQWN0aW9uOiBmYWlsZWQNCg==\r\n"
	"--b--\r\n",
	"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\n--b\r\n"
	"Content-Type: message/delivery-status\r\n"
	"Content-Transfer-Encoding: x-bad\r\n\r\nAction: failed\r\n--b--\r\n",
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
				fprintf(stderr, "fuzz_fromid_dsn: %s\n",
				    err.data);
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
		for (size_t n = 0; n <= strlen(corpus[i]); n++)
			(void)LLVMFuzzerTestOneInput(
			    (const uint8_t *)corpus[i], n);
	{
		/* Many recipient groups, and one long folded field. */
		struct buf big;

		buf_init(&big, BUF_NOMAX);
		for (int i = 0; i < 5000; i++)
			buf_adds(&big, "Action: failed\r\n\r\n");
		(void)LLVMFuzzerTestOneInput((const uint8_t *)big.data,
		    big.len);
		buf_reset(&big);
		buf_adds(&big, "Action: failed\r\nDiagnostic-Code: smtp;");
		for (int i = 0; i < 20000; i++)
			buf_adds(&big, "\r\n 550");
		(void)LLVMFuzzerTestOneInput((const uint8_t *)big.data,
		    big.len);
		buf_release(&big);
	}
	printf("fuzz_fromid_dsn: corpus ok\n");
	return 0;
}
#endif
