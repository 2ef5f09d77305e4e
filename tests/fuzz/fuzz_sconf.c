/*
 * fuzz_sconf.c: fuzz target for the sconf parser and the mox.conf and
 * domains.conf binders and writer (spec/config.md section 1). With
 * libFuzzer (-DMOX_LIBFUZZER -fsanitize=fuzzer) it is a normal fuzz
 * target; otherwise main() runs each file named on the command line once,
 * so make check can replay a corpus of hostile inputs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "config/config.h"
#include "config/sconf.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
bind_write(const struct sconf_doc *doc, const struct sconf_type *t,
    size_t size)
{
	void *obj = xcalloc(1, size);
	struct buf err, out;
	const char *why = NULL;

	buf_init(&err, 1 << 20);
	buf_init(&out, SCONF_FILE_MAX);
	if (sconf_bind(doc, t, obj, &err) == 0)
		(void)sconf_write(t, obj, &out, &why);
	sconf_release(t, obj);
	free(obj);
	buf_release(&err);
	buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sconf_doc *doc = NULL;
	struct buf err;

	buf_init(&err, 1 << 20);
	if (sconf_parse("fuzz.conf", span_of((const char *)data, size), &doc,
		&err) == 0) {
		bind_write(doc, &config_static_type,
		    sizeof(struct config_static));
		bind_write(doc, &config_dynamic_type,
		    sizeof(struct config_dynamic));
	}
	sconf_doc_free(doc);
	buf_release(&err);
	return 0;
}

#ifndef MOX_LIBFUZZER
int
main(int argc, char **argv)
{
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		struct buf in, err;

		buf_init(&in, (size_t)SCONF_FILE_MAX * 2);
		buf_init(&err, 4096);
		if (io_read_file(argv[i], &in, &err) == -1) {
			fprintf(stderr, "fuzz_sconf: %s\n", err.data);
			rc = 1;
		} else
			(void)LLVMFuzzerTestOneInput((const uint8_t *)in.data,
			    in.len);
		buf_release(&in);
		buf_release(&err);
	}
	return rc;
}
#endif
