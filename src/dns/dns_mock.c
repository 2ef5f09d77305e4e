/*
 * dns_mock.c: the table-driven resolver for tests (dns.h dns_mock_*).
 * Records are kept per owner name in the order added; a lookup follows
 * CNAMEs as a recursive resolver would (RFC 1034 3.6.2) and marks the
 * answer authentic only if every name visited was added as authentic.
 * Timeout markers follow the SPF test suite's rule: a marker reached
 * before any record of the asked type makes the query time out.
 * Thread-safe: one lock around the tables.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "lib/lock.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define MOCK_CNAME_MAX 10 /* chain length before the mock gives up */
#define MOCK_TTL 300

enum mock_kind {
	MOCK_RECORD,
	MOCK_TIMEOUT,
	MOCK_FAIL,
};

struct mock_entry {
	char *name;           /* absolute, lower case; owned */
	enum mock_kind kind;
	enum dns_type type;   /* MOCK_RECORD */
	struct dns_rr rr;     /* MOCK_RECORD; text and data owned */
	enum dns_result fail; /* MOCK_FAIL */
	bool authentic;
};

struct mock {
	struct lock lock;     /* guards entries, n */
	struct mock_entry *entries;
	size_t n;
	atomic_size_t queries;
};

static int
parse_u16(struct scan *s, uint16_t *out)
{
	uint64_t v;

	if (scan_u64(s, 65535, &v) == -1)
		return -1;
	*out = (uint16_t)v;
	return 0;
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

/* Fill rr from the mock's text form of type. */
static int
parse_rdata(enum dns_type type, const char *text, struct dns_rr *rr)
{
	struct scan s = scan_of(span_of_cstr(text));
	unsigned char a[16];
	char addr[INET6_ADDRSTRLEN];
	struct span host;
	uint16_t u, sel, mt;
	size_t hl;

	memset(rr, 0, sizeof(*rr));
	rr->type = type;
	rr->ttl = MOCK_TTL;
	switch (type) {
	case DNS_A:
	case DNS_AAAA: {
		int af = type == DNS_A ? AF_INET : AF_INET6;

		if (inet_pton(af, text, a) != 1 ||
		    inet_ntop(af, a, addr, sizeof(addr)) == NULL)
			return -1;
		rr->text = xstrdup(addr);
		return 0;
	}
	case DNS_MX:
		if (parse_u16(&s, &rr->pref) == -1)
			return -1;
		scan_skip_sp(&s);
		break;
	case DNS_SRV:
		if (parse_u16(&s, &rr->pref) == -1 || scan_sp(&s) == -1 ||
		    parse_u16(&s, &rr->weight) == -1 || scan_sp(&s) == -1 ||
		    parse_u16(&s, &rr->port) == -1 || scan_sp(&s) == -1)
			return -1;
		break;
	case DNS_TLSA:
		if (parse_u16(&s, &u) == -1 || scan_sp(&s) == -1 ||
		    parse_u16(&s, &sel) == -1 || scan_sp(&s) == -1 ||
		    parse_u16(&s, &mt) == -1 || scan_sp(&s) == -1 ||
		    u > 255 || sel > 255 || mt > 255)
			return -1;
		rr->usage = (uint8_t)u;
		rr->selector = (uint8_t)sel;
		rr->mtype = (uint8_t)mt;
		host = scan_rest(&s);
		if (host.len % 2 != 0)
			return -1;
		rr->data = xmalloc(host.len / 2 + 1);
		for (size_t i = 0; i < host.len; i += 2) {
			int hi = hexval(host.p[i]), lo = hexval(host.p[i + 1]);

			if (hi < 0 || lo < 0) {
				free(rr->data);
				rr->data = NULL;
				return -1;
			}
			rr->data[i / 2] = (uint8_t)(hi << 4 | lo);
		}
		rr->datalen = host.len / 2;
		rr->text = xstrdup("");
		return 0;
	case DNS_NS:
	case DNS_CNAME:
	case DNS_PTR:
	case DNS_TXT:
		rr->text = xstrdup(text);
		if (type != DNS_TXT) {
			hl = strlen(rr->text);
			if (hl > 0 && rr->text[hl - 1] == '.')
				rr->text[hl - 1] = '\0';
		}
		return 0;
	}
	if (type != DNS_MX && type != DNS_SRV)
		return -1;
	host = scan_rest(&s);
	if (host.len > 0 && host.p[host.len - 1] == '.')
		host.len--;
	rr->text = span_dup(host);
	return 0;
}

static struct mock_entry *
mock_append(struct mock *m, const char *name, enum mock_kind kind)
{
	struct mock_entry *e;

	m->entries = xreallocarray(m->entries, m->n + 1, sizeof(*m->entries));
	e = &m->entries[m->n++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	e->kind = kind;
	return e;
}

static int
mock_add_entry(struct dns_resolver *r, const char *name, enum mock_kind kind,
    enum dns_type type, const char *text, size_t textlen, bool authentic,
    enum dns_result fail)
{
	struct mock *m = r->impl;
	struct mock_entry *e;
	char abs[DNS_NAME_MAX + 2];
	struct dns_rr rr;
	const char *why;

	if (!r->is_mock || dns_name_absolute(name, abs, sizeof(abs), &why) == -1)
		return -1;
	memset(&rr, 0, sizeof(rr));
	if (kind == MOCK_RECORD && type == DNS_TXT) {
		rr.type = DNS_TXT;
		rr.ttl = MOCK_TTL;
		rr.text = xmalloc(size_add(textlen, 1));
		memcpy(rr.text, text, textlen);
		rr.text[textlen] = '\0';
		rr.textlen = textlen;
	} else if (kind == MOCK_RECORD) {
		if (parse_rdata(type, text, &rr) == -1)
			return -1;
		rr.textlen = strlen(rr.text);
	}
	lock_take(&m->lock);
	e = mock_append(m, abs, kind);
	e->type = type;
	e->rr = rr;
	e->authentic = authentic;
	e->fail = fail;
	/* The authentic flag covers the whole name. */
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->entries[i].name, abs) == 0 && authentic)
			m->entries[i].authentic = true;
	lock_release(&m->lock);
	return 0;
}

int
dns_mock_add(struct dns_resolver *r, const char *name, enum dns_type type,
    const char *text, bool authentic)
{
	if (text == NULL)
		return -1;
	return mock_add_entry(r, name, MOCK_RECORD, type, text, strlen(text),
	    authentic, DNS_OK);
}

int
dns_mock_add_txt(struct dns_resolver *r, const char *name, const char *data,
    size_t len, bool authentic)
{
	return mock_add_entry(r, name, MOCK_RECORD, DNS_TXT, data, len,
	    authentic, DNS_OK);
}

int
dns_mock_add_timeout(struct dns_resolver *r, const char *name)
{
	return mock_add_entry(r, name, MOCK_TIMEOUT, DNS_A, NULL, 0, false,
	    DNS_TEMPERROR);
}

int
dns_mock_fail(struct dns_resolver *r, const char *name,
    enum dns_result result)
{
	if (result == DNS_OK)
		return -1;
	return mock_add_entry(r, name, MOCK_FAIL, DNS_A, NULL, 0, false,
	    result);
}

size_t
dns_mock_queries(struct dns_resolver *r)
{
	struct mock *m = r->impl;

	return r->is_mock ? atomic_load(&m->queries) : 0;
}

/* Answer one name, no CNAME following. Returns the CNAME target entry to
 * follow when the name has one and no record of type. */
static const struct mock_entry *
answer_name(struct mock *m, const char *name, enum dns_type type,
    struct dns_answer *ans, bool *exists, bool *authentic)
{
	const struct mock_entry *cname = NULL;
	bool found = false;

	LOCK_ASSERT_HELD(&m->lock);
	for (size_t i = 0; i < m->n; i++) {
		const struct mock_entry *e = &m->entries[i];

		if (strcmp(e->name, name) != 0)
			continue;
		*exists = true;
		*authentic = *authentic && e->authentic;
		if (e->kind == MOCK_FAIL) {
			ans->result = e->fail;
			ans->why = e->fail == DNS_TEMPERROR ? "server failure" :
			    "refused";
			return NULL;
		}
		if (e->kind == MOCK_TIMEOUT) {
			if (!found) {
				ans->result = DNS_TEMPERROR;
				ans->why = "timeout";
			}
			break;
		}
		if (e->type == type) {
			struct dns_rr *rr = dns_answer_add_bytes(ans, type,
			    e->rr.ttl, e->rr.text, e->rr.textlen);
			char *text = rr->text;
			uint8_t *data = NULL;

			if (e->rr.data != NULL) {
				data = xmalloc(e->rr.datalen + 1);
				memcpy(data, e->rr.data, e->rr.datalen);
			}
			*rr = e->rr;
			rr->text = text;
			rr->data = data;
			found = true;
		} else if (e->type == DNS_CNAME && e->kind == MOCK_RECORD &&
		    cname == NULL) {
			cname = e;
		}
	}
	if (found) {
		ans->result = DNS_OK;
		return NULL;
	}
	return ans->result == DNS_TEMPERROR || ans->result == DNS_PERMERROR ?
	    NULL : cname;
}

static enum dns_result
mock_query(void *impl, const char *name, enum dns_type type,
    struct dns_answer *ans, uint32_t *ttl_out)
{
	struct mock *m = impl;
	char cur[DNS_NAME_MAX + 2], next[DNS_NAME_MAX + 2];
	bool authentic = true;
	const char *why;

	atomic_fetch_add(&m->queries, 1);
	dns_answer_init(ans, DNS_NOTFOUND, "no such record");
	memcpy(cur, name, strlen(name) + 1);
	lock_take(&m->lock);
	for (int depth = 0;; depth++) {
		const struct mock_entry *cn;
		bool exists = false;

		ans->result = DNS_NOTFOUND;
		cn = answer_name(m, cur, type, ans, &exists, &authentic);
		if (!exists)
			ans->why = "nxdomain";
		if (cn == NULL)
			break;
		if (depth >= MOCK_CNAME_MAX) {
			ans->result = DNS_TEMPERROR;
			ans->why = "cname chain too long";
			break;
		}
		if (dns_name_absolute(cn->rr.text, next, sizeof(next), &why) ==
		    -1) {
			ans->result = DNS_PERMERROR;
			ans->why = why;
			break;
		}
		dns_answer_add_cname(ans, cur);
		memcpy(cur, next, sizeof(next));
	}
	lock_release(&m->lock);
	if (ans->result == DNS_OK)
		ans->why = NULL;
	ans->authentic = authentic &&
	    (ans->result == DNS_OK || ans->result == DNS_NOTFOUND);
	*ttl_out = MOCK_TTL;
	return ans->result;
}

static void
mock_free(void *impl)
{
	struct mock *m = impl;

	for (size_t i = 0; i < m->n; i++) {
		free(m->entries[i].name);
		free(m->entries[i].rr.text);
		free(m->entries[i].rr.data);
	}
	free(m->entries);
	lock_destroy(&m->lock);
	free(m);
}

struct dns_resolver *
dns_mock_new(void)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	struct mock *m = xcalloc(1, sizeof(*m));

	lock_init(&m->lock, LOCK_ORDER_DNS, "dns mock");
	atomic_init(&m->queries, 0);
	r->query = mock_query;
	r->free = mock_free;
	r->impl = m;
	r->is_mock = true;
	return r;
}
