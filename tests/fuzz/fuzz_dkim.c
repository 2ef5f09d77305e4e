/*
 * fuzz_dkim.c: feed arbitrary bytes to the DKIM signature and key record
 * parsers, the canonicalizers and the verifier (mock resolver). Built as
 * a libFuzzer target with -fsanitize=fuzzer, else as a program that runs
 * each file named on the command line once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "mailauth/dkim.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_resolver *r;
	struct span in = span_of((const char *)data, size);
	struct dkim_sig *sig = NULL;
	struct dkim_record *rec = NULL;
	struct dkim_result *res = NULL;
	struct dkim_verify_opts o;
	struct buf out;
	const char *why = NULL;
	size_t n = 0;

	if (r == NULL) {
		r = dns_mock_new();
		dns_mock_add(r, "s._domainkey.example.org", DNS_TXT,
		    "v=DKIM1; k=ed25519; "
		    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", false);
	}
	if (dkim_sig_parse(in, &sig, &why) == 0)
		dkim_sig_free(sig);
	if (dkim_record_parse(in, &rec, &why) == 0)
		dkim_record_free(rec);
	buf_init(&out, 1 << 24);
	dkim_canon_body(in, true, &out);
	buf_reset(&out);
	dkim_canon_body(in, false, &out);
	buf_reset(&out);
	dkim_canon_header(in, true, &out);
	buf_release(&out);
	memset(&o, 0, sizeof(o));
	if (dkim_verify(r, &o, in, &res, &n, &why) == 0)
		dkim_results_free(res, n);
	return 0;
}

#ifndef FUZZING_ENGINE
int
main(int argc, char **argv)
{
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
