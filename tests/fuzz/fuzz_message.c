/*
 * fuzz_message.c: fuzz target for the message parser. Parses the input as
 * a message, walks its text parts, serialises and reloads the tree, and
 * runs the field parsers (addresses, dates, encoded words, Message-ID,
 * base subject, decoders) over the input. Built with libFuzzer when
 * FUZZING is defined; otherwise main() feeds each file named on the
 * command line (and exits non-zero if a check fails).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "message/message.h"
#include "lib/banned.h"

#define FUZZ_INPUT_MAX (64 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
count_text(const struct message_part *p, struct span text, void *arg)
{
	size_t *n = arg;

	*n += text.len;
	(void)p;
	return 0;
}

static int
ref_cb(struct span id, void *arg)
{
	size_t *n = arg;

	*n += id.len;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data, *why = NULL;
	struct message_part *root = NULL, *back = NULL;
	struct message_addr_list al = { NULL, 0 };
	struct span in = span_of(msg, size);
	struct buf b;
	size_t n = 0;
	int64_t t;
	int off;
	bool resp;

	if (message_parse(msg, size, &root, &why) == -1)
		return 0;
	(void)message_text_walk(msg, size, root, 1024 * 1024, count_text, &n);
	buf_init(&b, MESSAGE_SERIAL_MAX);
	if (message_serialise(root, &b) == 0) {
		if (message_deserialise(span_of_buf(&b), size, &back, &why) ==
		    -1 || !message_part_equal(root, back))
			abort();
	}
	/* Whatever the input, loading it as a tree must not crash. */
	message_part_free(back);
	back = NULL;
	if (message_deserialise(in, size, &back, &why) == 0)
		message_part_free(back);
	buf_reset(&b);
	(void)message_addr_parse(in, &al, &why);
	message_addr_list_release(&al);
	(void)message_date_parse(in, &t, &off, &why);
	(void)message_decode_words(in, &b);
	buf_reset(&b);
	(void)message_decode_qp(in, &b);
	buf_reset(&b);
	(void)message_decode_base64(in, &b);
	buf_reset(&b);
	(void)message_id_canonical(in, &b, &why);
	buf_reset(&b);
	(void)message_subject_base(in, &b, &resp);
	(void)message_refs_walk(in, ref_cb, &n);
	buf_release(&b);
	message_part_free(root);
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
			fprintf(stderr, "fuzz_message: %s: %s\n", argv[i],
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
