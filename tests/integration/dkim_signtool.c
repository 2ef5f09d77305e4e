/*
 * dkim_signtool.c: sign a message for the DKIM interop test. Usage:
 * dkim_signtool KEYFILE DOMAIN SELECTOR (simple|relaxed) < msg > signed
 * prints the signed message; dkim_signtool KEYFILE txt prints the key
 * record; dkim_signtool gen rsa|ed25519 prints a new PEM key. Test
 * helper only.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "mailauth/dkim.h"
#include "lib/banned.h"

static int
read_stdin(struct buf *b)
{
	char chunk[65536];
	ssize_t n;

	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		if (buf_add(b, chunk, (size_t)n) == -1)
			return -1;
	return n < 0 ? -1 : 0;
}

int
main(int argc, char **argv)
{
	struct buf err, msg, out;
	struct dkim_key *key = NULL;
	struct dkim_sign_selector sel;
	const char *why = NULL;
	int rc = 1;

	buf_init(&err, 4096);
	buf_init(&msg, 64 << 20);
	buf_init(&out, 64 << 20);
	if (argc < 3) {
		fprintf(stderr, "usage: dkim_signtool KEYFILE txt | KEYFILE "
		    "DOMAIN SELECTOR simple|relaxed\n");
		return 2;
	}
	if (strcmp(argv[1], "gen") == 0) {
		if (dkim_key_generate(strcmp(argv[2], "rsa") == 0 ?
		    DKIM_KEY_RSA : DKIM_KEY_ED25519, &out, &err) == -1) {
			fprintf(stderr, "dkim_signtool: %s\n", err.data);
			goto out;
		}
		fwrite(out.data, 1, out.len, stdout);
		rc = 0;
		goto out;
	}
	if (dkim_key_load_file(argv[1], &key, &err) == -1) {
		fprintf(stderr, "dkim_signtool: %s\n", err.data);
		goto out;
	}
	if (strcmp(argv[2], "txt") == 0) {
		if (dkim_key_txt(key, &out, &err) == -1) {
			fprintf(stderr, "dkim_signtool: %s\n", err.data);
			goto out;
		}
		printf("%s\n", out.data);
		rc = 0;
		goto out;
	}
	if (argc != 5 || read_stdin(&msg) == -1) {
		fprintf(stderr, "dkim_signtool: bad usage or input\n");
		goto out;
	}
	memset(&sel, 0, sizeof(sel));
	sel.domain = argv[2];
	sel.selector = argv[3];
	sel.key = key;
	sel.hash = DKIM_HASH_SHA256;
	sel.header_relaxed = sel.body_relaxed = strcmp(argv[4], "relaxed") == 0;
	sel.oversign = true;
	sel.expiration = 72 * 3600;
	if (dkim_sign(&sel, 1, NULL, (int64_t)time(NULL), span_of_buf(&msg),
	    &out, &why) == -1) {
		fprintf(stderr, "dkim_signtool: %s\n", why);
		goto out;
	}
	/* Keep the message's line ends: LF-only input gets LF headers. */
	for (size_t i = 0; i < out.len; i++)
		if (out.data[i] != '\r' || memchr(msg.data, '\r', msg.len))
			putchar(out.data[i]);
	fwrite(msg.data, 1, msg.len, stdout);
	rc = 0;
out:
	dkim_key_free(key);
	buf_release(&err);
	buf_release(&msg);
	buf_release(&out);
	return rc;
}
