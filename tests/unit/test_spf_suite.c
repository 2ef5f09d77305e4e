/*
 * test_spf_suite.c: runs the RFC 7208 and RFC 4408 SPF test suites
 * (../shared/testdata/spf, flattened .tsv form, see its README.md)
 * through spf_verify() with each scenario's zone served by the mock
 * resolver. Every failing test is printed by name. Tests listed in
 * deviations[] are expected to differ, each with its reason.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "mailauth/spf.h"
#include "lib/banned.h"

#define TSV_MAX (4 << 20)
#define FIELDS_MAX 16

/* Tests allowed to differ, each with its reason. Empty: every test of
 * both suites passes; the RFC 4408 suite's expectations that RFC 7208
 * changed are all given there as lists that include the RFC 7208
 * result. */
static const struct {
	const char *suite;
	const char *test;
	const char *reason;
} deviations[] = {
	{ NULL, NULL, NULL },
};

static bool
is_deviation(const char *suite, const char *test)
{
	for (size_t i = 0; i < ARRAY_LEN(deviations); i++)
		if (deviations[i].suite != NULL &&
		    strcmp(deviations[i].suite, suite) == 0 &&
		    strcmp(deviations[i].test, test) == 0)
			return true;
	return false;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undo the TSV escapes (\\ \t \n \r \xHH) of one field. */
static void
unescape(struct span in, struct buf *out)
{
	for (size_t i = 0; i < in.len; i++) {
		if (in.p[i] != '\\' || i + 1 == in.len) {
			buf_addc(out, in.p[i]);
			continue;
		}
		i++;
		switch (in.p[i]) {
		case 't':
			buf_addc(out, '\t');
			break;
		case 'n':
			buf_addc(out, '\n');
			break;
		case 'r':
			buf_addc(out, '\r');
			break;
		case 'x':
			if (i + 2 < in.len && hexval(in.p[i + 1]) >= 0 &&
			    hexval(in.p[i + 2]) >= 0) {
				buf_addc(out, (char)(hexval(in.p[i + 1]) << 4 |
				    hexval(in.p[i + 2])));
				i += 2;
			}
			break;
		default:
			buf_addc(out, in.p[i]);
			break;
		}
	}
}

struct line {
	struct buf f[FIELDS_MAX];
	size_t n;
};

static void
split(struct span line, struct line *l)
{
	size_t start = 0;

	l->n = 0;
	for (size_t i = 0; i <= line.len && l->n < FIELDS_MAX; i++) {
		if (i == line.len || line.p[i] == '\t') {
			buf_init(&l->f[l->n], BUF_NOMAX);
			unescape(span_of(line.p + start, i - start),
			    &l->f[l->n]);
			l->n++;
			start = i + 1;
		}
	}
}

static void
line_release(struct line *l)
{
	for (size_t i = 0; i < l->n; i++)
		buf_release(&l->f[i]);
	l->n = 0;
}

static void
add_record(struct dns_resolver *r, const struct line *l)
{
	const char *name = l->f[2].data, *type = l->f[3].data;
	int rc = 0;

	if (strcmp(type, "SPF") == 0)
		return; /* README rule 1: the TSV already copied them as TXT */
	if (strcmp(type, "TIMEOUT") == 0) {
		rc = dns_mock_add_timeout(r, name);
	} else if (strcmp(type, "TXT") == 0) {
		struct buf t;

		buf_init(&t, BUF_NOMAX);
		for (size_t i = 4; i < l->n; i++)
			buf_add(&t, l->f[i].data, l->f[i].len);
		rc = dns_mock_add_txt(r, name, t.data, t.len, false);
		buf_release(&t);
	} else if (strcmp(type, "MX") == 0 && l->n >= 6) {
		struct buf t;

		buf_init(&t, BUF_NOMAX);
		buf_addf(&t, "%s %s", l->f[4].data, l->f[5].data);
		rc = dns_mock_add(r, name, DNS_MX, t.data, false);
		buf_release(&t);
	} else {
		enum dns_type dt;

		if (dns_type_parse(type, &dt) == -1 || l->n < 5)
			rc = -1;
		else
			rc = dns_mock_add(r, name, dt, l->f[4].data, false);
	}
	/* Names or data the mock refuses (over-long names, bad addresses)
	 * are simply absent, as they would be on the wire. */
	(void)rc;
}

static bool
result_ok(const char *want, enum spf_status got)
{
	const char *name = spf_status_name(got);
	const char *p = want;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		if (n == strlen(name) && strncmp(p, name, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

static bool
suite_case(struct dns_resolver *r, const struct line *l, const char *suite)
{
	const char *test = l->f[2].data, *helo = l->f[4].data;
	const char *ip = l->f[5].data, *from = l->f[6].data;
	const char *want = l->f[7].data, *exp = l->n > 8 ? l->f[8].data : "";
	struct spf_args a;
	struct spf_result res;
	char *local = NULL;
	const char *at = strrchr(from, '@');
	bool ok;

	memset(&a, 0, sizeof(a));
	a.remote_ip = ip;
	a.helo = helo;
	a.local_hostname = "receiver.example";
	if (at != NULL) {
		local = xstrndup(from, (size_t)(at - from));
		a.mailfrom_local = local;
		a.mailfrom_domain = at + 1;
	} else if (from[0] != '\0') {
		a.mailfrom_domain = from;
	}
	spf_verify(r, &a, &res);
	ok = result_ok(want, res.status);
	/* Explanations compare without case: the suite's IPv6 nibbles are
	 * upper case although the macro yields lower case. */
	if (ok && exp[0] != '\0' && strcmp(exp, "DEFAULT") != 0 &&
	    (res.explanation == NULL || strcasecmp(res.explanation, exp) != 0))
		ok = false;
	if (!ok && !is_deviation(suite, test))
		print_message("FAIL %s %s: want %s%s%s got %s%s%s (%s)\n", suite,
		    test, want, exp[0] ? " exp=" : "", exp,
		    spf_status_name(res.status),
		    res.explanation ? " exp=" : "",
		    res.explanation ? res.explanation : "",
		    res.problem ? res.problem : "");
	if (ok && is_deviation(suite, test))
		print_message("note %s %s: listed deviation now passes\n",
		    suite, test);
	spf_result_release(&res);
	free(local);
	return ok || is_deviation(suite, test);
}

static void
run_suite(const char *file, const char *suite)
{
	struct buf path, text, err;
	struct dns_resolver *r = NULL;
	struct scan s;
	char scenario[16] = "";
	size_t total = 0, failed = 0;

	buf_init(&path, BUF_NOMAX);
	buf_init(&text, TSV_MAX);
	buf_init(&err, BUF_NOMAX);
	buf_addf(&path, "%s/../shared/testdata/spf/%s",
	    getenv("MOX_SRCDIR") != NULL ? getenv("MOX_SRCDIR") : MOX_SRCDIR,
	    file);
	if (io_read_file(path.data, &text, &err) == -1)
		fail_msg("%s", err.data);
	s = scan_of(span_of_buf(&text));
	while (!scan_eof(&s)) {
		struct span ln;
		struct line l;

		if (scan_until(&s, '\n', TSV_MAX, &ln) == -1) {
			ln = scan_rest(&s);
			s.pos = s.len;
		} else {
			scan_char(&s, '\n');
		}
		if (ln.len == 0 || ln.p[0] == '#')
			continue;
		split(ln, &l);
		if (l.n >= 2 && strcmp(l.f[1].data, scenario) != 0) {
			dns_resolver_free(r);
			r = dns_mock_new();
			snprintf(scenario, sizeof(scenario), "%s", l.f[1].data);
		}
		if (strcmp(l.f[0].data, "R") == 0 && l.n >= 4) {
			add_record(r, &l);
		} else if (strcmp(l.f[0].data, "T") == 0 && l.n >= 8) {
			total++;
			if (!suite_case(r, &l, suite))
				failed++;
		}
		line_release(&l);
	}
	dns_resolver_free(r);
	print_message("%s: %zu tests, %zu failed\n", suite, total, failed);
	buf_release(&path);
	buf_release(&text);
	buf_release(&err);
	assert_true(total > 150);
	if (failed != 0)
		fail_msg("%s: %zu of %zu tests failed", suite, failed, total);
}

static void
test_rfc7208(void **state)
{
	(void)state;
	run_suite("rfc7208-tests.tsv", "rfc7208");
}

static void
test_rfc4408(void **state)
{
	(void)state;
	run_suite("rfc4408-tests.tsv", "rfc4408");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7208),
		cmocka_unit_test(test_rfc4408),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
