/*
 * fuzz_imap_parse.c: fuzz target for the IMAP command parser. The input
 * is taken as one whole command (literals inline) and run through the
 * literal-announcement check, the APPEND literal classifier and every
 * argument parser from the start of the arguments. Built with libFuzzer
 * when FUZZING is defined; otherwise main() feeds each file named on the
 * command line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/banned.h"

#define FUZZ_INPUT_MAX (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
run_parsers(struct span in, bool utf8)
{
	struct imap_parser p;
	struct span tag, name, atom;
	struct imap_seqset set;
	struct imap_flags fl;
	struct imap_literal_hdr h;
	char *str;
	int64_t t;
	uint32_t u;
	uint64_t u64;

	imap_parser_init(&p, in);
	p.utf8 = utf8;
	if (imap_parse_tag(&p, &tag) == 0 && imap_parse_sp(&p) == 0 &&
	    imap_parse_cmdname(&p, &name) == 0)
		(void)imap_parse_sp(&p);
	/* Try each parser from the same place; each advances only on
	 * success, so the rest see the same input. */
	for (int round = 0; round < 64 && !imap_parse_eof(&p); round++) {
		size_t pos = p.s.pos;

		if (imap_parse_seqset(&p, &set) == 0)
			imap_seqset_release(&set);
		(void)imap_parse_flag_list(&p, &fl);
		(void)imap_parse_flags_bare(&p, &fl);
		(void)imap_parse_date_time(&p, &t);
		(void)imap_parse_date(&p, &t);
		(void)imap_parse_astring(&p, &str, NULL);
		(void)imap_parse_nstring(&p, &str);
		(void)imap_parse_list_mailbox(&p, &str);
		(void)imap_parse_number(&p, &u);
		(void)imap_parse_number64(&p, &u64);
		(void)imap_parse_atom(&p, &atom);
		(void)imap_parse_ext_literal(&p, &h);
		(void)imap_parse_sp(&p);
		if (p.s.pos == pos)
			p.s.pos++;
		if (p.s.pos > p.s.len)
			abort();
	}
	imap_parser_release(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct span in = span_of((const char *)data, size);
	struct imap_literal_hdr h;
	const char *why;
	char *mbox = NULL;

	(void)imap_parse_literal_hdr(in, &h, &why);
	if (imap_append_literal_is_msg(in, false, &mbox) == 1)
		free(mbox);
	run_parsers(in, false);
	run_parsers(in, true);
	return 0;
}

#ifndef FUZZING
int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct buf b, err;

		buf_init(&b, FUZZ_INPUT_MAX);
		buf_init(&err, 1024);
		if (io_read_file(argv[i], &b, &err) == -1) {
			fprintf(stderr, "fuzz_imap_parse: %s\n", err.data);
			return 1;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
		buf_release(&b);
		buf_release(&err);
	}
	return 0;
}
#endif
