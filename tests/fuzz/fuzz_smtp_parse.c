/*
 * fuzz_smtp_parse.c: fuzz target for the SMTP command parser and the DATA
 * reader (smtp_parse.c). Each input is split into lines; every line is
 * parsed as a command with every option combination, and the whole input
 * is fed to the DATA reader at once and byte by byte (the results must
 * agree). Built with libFuzzer when FUZZING is defined; otherwise main()
 * feeds each file named on the command line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "smtp/smtp_parse.h"
#include "lib/banned.h"

#define FUZZ_INPUT_MAX (16 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
one_line(struct span line)
{
	for (int f = 0; f < 8; f++) {
		struct smtp_parse_opts o = { .smtputf8 = f & 1,
			.pedantic = (f & 2) != 0, .strict_trailing = (f & 4) != 0 };
		struct smtp_mail m;
		struct smtp_rcpt r;
		struct smtp_addr a;
		struct smtp_perr e;
		struct span args, name, mech, ir;
		bool have;
		const char *why;

		smtp_parse_verb(line, &args);
		if (smtp_parse_mail(args, &o, f & 1, &m, &e) == 0) {
			struct buf b;

			buf_init(&b, 4096);
			if (!m.null_path)
				smtp_addr_format(&m.from, &b);
			buf_release(&b);
		}
		smtp_mail_release(&m);
		smtp_parse_rcpt(args, &o, &r, &e);
		smtp_rcpt_release(&r);
		if (smtp_parse_addr(line, &o, &a, &e) == 0)
			smtp_addr_release(&a);
		smtp_parse_ehlo(args, f & 1, &name, &why);
		smtp_parse_auth(args, f & 2, &mech, &have, &ir, &why);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t start = 0;
	struct smtp_data d1, d2;
	struct buf o1, o2;
	size_t u1 = 0, u2 = 0;
	int r1, r2 = 0;

	for (size_t i = 0; i <= size; i++)
		if (i == size || p[i] == '\n') {
			size_t n = i - start;

			if (n > 0 && p[start + n - 1] == '\r')
				n--;
			if (n <= SMTP_LINE_MAX)
				one_line(span_of(p + start, n));
			start = i + 1;
		}
	buf_init(&o1, 2 * size + 16);
	buf_init(&o2, 2 * size + 16);
	smtp_data_init(&d1);
	smtp_data_init(&d2);
	r1 = smtp_data_feed(&d1, span_of(p, size), &o1, &u1);
	for (size_t i = 0; i < size && r2 == 0; i++) {
		size_t u;

		r2 = smtp_data_feed(&d2, span_of(p + i, 1), &o2, &u);
		u2 += u;
	}
	if (r1 != r2 || u1 != u2 || d1.bad != d2.bad || o1.len != o2.len ||
	    memcmp(o1.data, o2.data, o1.len) != 0 || d1.size != o1.len)
		abort();
	buf_release(&o1);
	buf_release(&o2);
	return 0;
}

#ifndef FUZZING
int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct buf in, err;

		buf_init(&in, FUZZ_INPUT_MAX);
		buf_init(&err, 4096);
		if (io_read_file(argv[i], &in, &err) == -1) {
			fprintf(stderr, "fuzz_smtp_parse: %s\n", err.data);
			return 1;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)in.data, in.len);
		buf_release(&in);
		buf_release(&err);
	}
	return 0;
}
#endif
