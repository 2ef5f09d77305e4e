/*
 * fuzz_spf.c: fuzz target for SPF record parsing, formatting, macro
 * expansion and evaluation (src/mailauth/spf.c). The input is served as
 * the TXT record of the checked domain by a mock resolver. With libFuzzer
 * (-DMOX_LIBFUZZER -fsanitize=fuzzer) it is a normal fuzz target;
 * otherwise main() runs the files named on the command line, or without
 * arguments a built-in hostile corpus plus every record of the SPF test
 * suites and all their prefixes, so make check replays them.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
evaluate(struct dns_resolver *r, const char *ip)
{
	struct spf_args a = { .remote_ip = ip, .mailfrom_local = "a.b",
		.mailfrom_domain = "fuzz.example", .helo = "helo.example",
		.local_hostname = "mx.example", .now = 1 };
	struct spf_result res;
	struct buf h;

	spf_verify(r, &a, &res);
	buf_init(&h, 1 << 16);
	spf_received_header(&res, &a, "mx.example", &h);
	buf_release(&h);
	spf_result_release(&res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct span in = span_of((const char *)data, size);
	struct spf_record rec;
	const char *why = NULL;
	struct dns_resolver *r;
	char *spec;

	if (spf_parse(in, &rec, &why) == 0) {
		struct buf out;
		struct spf_record again;

		/* What we format must parse again. */
		buf_init(&out, 1 << 16);
		spf_record_format(&rec, &out);
		if (spf_parse(span_of_buf(&out), &again, &why) != 0)
			abort();
		spf_record_release(&again);
		buf_release(&out);
		spf_record_release(&rec);
	}
	spec = span_dup(in);
	for (int exp = 0; exp <= 1; exp++) {
		struct spf_args a = { .remote_ip = "2001:db8::1",
			.helo = "h.example", .now = 1 };
		struct buf out;

		buf_init(&out, 1 << 20);
		(void)spf_expand(NULL, &a, "d.example", "l@o.example", spec,
		    exp != 0, &out, &why);
		buf_release(&out);
	}
	free(spec);
	r = dns_mock_new();
	dns_mock_add_txt(r, "fuzz.example", (const char *)data, size, false);
	dns_mock_add(r, "fuzz.example", DNS_A, "192.0.2.1", false);
	dns_mock_add(r, "fuzz.example", DNS_MX, "10 fuzz.example", false);
	dns_mock_add(r, "1.2.0.192.in-addr.arpa", DNS_PTR, "fuzz.example",
	    false);
	dns_mock_add_txt(r, "inc.example", (const char *)data, size, false);
	evaluate(r, "192.0.2.1");
	evaluate(r, "2001:db8::1");
	dns_resolver_free(r);
	return 0;
}

#ifndef MOX_LIBFUZZER
static const char *const corpus[] = {
	"", "v=spf1", "v=spf1 ", "v=spf1 -all", "v=spf1 %", "v=spf1 %{",
	"v=spf1 exists:%{", "v=spf1 exists:%{d", "v=spf1 exists:%{d9999999999}",
	"v=spf1 exists:%{ir}.%{l1r+-}.%{d2}.%{p}.%{v}.%{h}.%{s}.%{o}",
	"v=spf1 exists:%{D}%{S}%{L}%{O}%{I}%{P}%{V}%{H}.example",
	"v=spf1 exists:%{d128r.-+,/_=}.example", "v=spf1 a//0 a/0 mx/0//0",
	"v=spf1 ip4:0.0.0.0/0 ip6:::/0", "v=spf1 ip6:", "v=spf1 ip4:/",
	"v=spf1 a:/", "v=spf1 a:.//", "v=spf1 a://1", "v=spf1 ////",
	"v=spf1 redirect=fuzz.example", "v=spf1 include:fuzz.example",
	"v=spf1 include:inc.example redirect=fuzz.example",
	"v=spf1 -all exp=fuzz.example", "v=spf1 ptr ptr:fuzz.example -all",
	"v=spf1 exp=%{c}%{r}%{t}", "v=spf1 foo=%{c}", "v=spf1 x=",
	"v=spf1 a:\x80.example", "v=spf1 \x01", "v=spf1 a:\xff\xfe",
	"v=spf1 +++", "v=spf1 ?", "v=spf1 exists:%%%_%-.example",
	"v=spf1 a:a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z",
};

static void
run_suite_records(const char *file)
{
	const char *src = getenv("MOX_SRCDIR") != NULL ?
	    getenv("MOX_SRCDIR") : MOX_SRCDIR;
	struct buf path, text, err;
	struct scan s;

	buf_init(&path, 4096);
	buf_init(&text, 4 << 20);
	buf_init(&err, 4096);
	buf_addf(&path, "%s/../shared/testdata/spf/%s", src, file);
	if (io_read_file(path.data, &text, &err) == -1) {
		fprintf(stderr, "fuzz_spf: %s (suite records skipped)\n",
		    err.data);
		goto out;
	}
	s = scan_of(span_of_buf(&text));
	while (!scan_eof(&s)) {
		struct span ln;
		const char *tab;

		if (scan_until(&s, '\n', 1 << 20, &ln) == -1) {
			ln = scan_rest(&s);
			s.pos = s.len;
		} else {
			scan_char(&s, '\n');
		}
		/* "R  n  name  TXT  rdata": feed the raw rdata and every
		 * prefix of it. */
		if (ln.len < 2 || ln.p[0] != 'R')
			continue;
		tab = memmem(ln.p, ln.len, "\tTXT\t", 5);
		if (tab == NULL)
			continue;
		tab += 5;
		for (size_t n = 0; n <= (size_t)(ln.p + ln.len - tab); n++)
			(void)LLVMFuzzerTestOneInput((const uint8_t *)tab, n);
	}
out:
	buf_release(&path);
	buf_release(&text);
	buf_release(&err);
}

int
main(int argc, char **argv)
{
	int rc = 0;

	if (argc == 1) {
		for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++)
			for (size_t n = 0; n <= strlen(corpus[i]); n++)
				(void)LLVMFuzzerTestOneInput(
				    (const uint8_t *)corpus[i], n);
		run_suite_records("rfc7208-tests.tsv");
		run_suite_records("rfc4408-tests.tsv");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		struct buf in, err;

		buf_init(&in, 1 << 20);
		buf_init(&err, 4096);
		if (io_read_file(argv[i], &in, &err) == -1) {
			fprintf(stderr, "fuzz_spf: %s\n", err.data);
			rc = 1;
		} else {
			(void)LLVMFuzzerTestOneInput((const uint8_t *)in.data,
			    in.len);
		}
		buf_release(&in);
		buf_release(&err);
	}
	return rc;
}
#endif
