/*
 * fuzz_imap_search.c: fuzz target for the IMAP SEARCH parser and the
 * other parsers of client input in src/imap (RETURN options, section
 * specs, modified UTF-7 names). A parsed program is matched against two
 * fixed messages, and a parsed section is extracted from one. Built with
 * libFuzzer when FUZZING is defined; otherwise main() feeds each file
 * named on the command line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "imap/imap_fetch.h"
#include "imap/imap_fmt.h"
#include "imap/imap_search.h"
#include "lib/banned.h"

#define FUZZ_INPUT_MAX (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed[] =
    "From: Alice <alice@example.org>\r\n"
    "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    "Date: Tue, 02 Jan 2024 23:30:00 -0500\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "caf=C3=A9 fox\r\n"
    "--b\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "nested\r\n"
    "--b--\r\n";

struct fmsg {
	struct message_part *root;
};

static int
get_bytes(void *arg, struct span *out)
{
	(void)arg;
	*out = span_of(fixed, sizeof(fixed) - 1);
	return 0;
}

static int
get_tree(void *arg, const struct message_part **out)
{
	struct fmsg *f = arg;

	*out = f->root;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t saved[] = { 3, 1, 7 };
	struct span in = span_of((const char *)data, size);
	struct imap_search_ctx ctx = { 5, 9, saved, 3, 1704412800, true };
	struct imap_search *q = NULL;
	struct imap_section sec;
	struct fmsg f = { NULL };
	const char *why = NULL;
	struct scan s;
	unsigned opts;
	bool present;
	struct buf b;
	char *z;

	if (message_parse(fixed, sizeof(fixed) - 1, &f.root, &why) == -1)
		abort();
	s = scan_of(in);
	if (imap_search_return_parse(&s, &opts, &present, &why) == -1)
		s = scan_of(in);
	if (imap_search_parse(&s, &ctx, &q, &why) == 0) {
		for (uint32_t i = 1; i <= 5; i++) {
			struct imap_search_msg m = { i, i * 2 - 1,
				i * 37u & STORE_F_ALL, i & 1 ? "a $x" : NULL,
				(int64_t)i, (int64_t)i * 100,
				1704189600 + (int64_t)i * 86400, 0, get_bytes,
				get_tree, &f, NULL };

			(void)imap_search_match(q, &m);
		}
		(void)imap_search_needs(q);
		imap_search_free(q);
	} else if (why == NULL) {
		abort();
	}
	buf_init(&b, 1024 * 1024);
	if (imap_section_parse(in, &sec, &why) == 0) {
		imap_section_name(&b, "BODY", &sec, true);
		buf_reset(&b);
		(void)imap_section_extract(fixed, sizeof(fixed) - 1, f.root,
		    &sec, false, &b, &why);
		buf_reset(&b);
		(void)imap_section_extract(fixed, sizeof(fixed) - 1, f.root,
		    &sec, true, &b, &why);
	}
	imap_section_release(&sec);
	z = xstrndup(in.p, in.len);
	buf_reset(&b);
	if (imap_mutf7_decode(z, &b, &why) == 0) {
		struct buf back;

		buf_init(&back, 1024 * 1024);
		/* What decodes encodes back to the same bytes. */
		if (imap_mutf7_encode(b.data, &back) == 0 &&
		    strcmp(back.data, z) != 0 && memchr(b.data, 0, b.len) ==
		    NULL && strlen(z) == in.len)
			abort();
		buf_release(&back);
	}
	buf_reset(&b);
	imap_fmt_string(&b, in.p, in.len, size & 1);
	free(z);
	buf_release(&b);
	message_part_free(f.root);
	return 0;
}

#ifndef FUZZING
int
main(int argc, char **argv)
{
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		struct buf in, err;

		buf_init(&in, FUZZ_INPUT_MAX);
		buf_init(&err, 1024);
		if (io_read_file(argv[i], &in, &err) == -1) {
			fprintf(stderr, "fuzz_imap_search: %s: %s\n", argv[i],
			    err.data);
			rc = 1;
		} else {
			LLVMFuzzerTestOneInput((const uint8_t *)in.data,
			    in.len);
		}
		buf_release(&in);
		buf_release(&err);
	}
	return rc;
}
#endif
