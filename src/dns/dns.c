/*
 * dns.c: the resolver front shared by both backends (dns.h): name
 * normalization to absolute form (RFC 1035 2.3.4 limits), the cache in
 * front of the backend, answers, type and result names, and the
 * convenience lookups (A+AAAA, PTR with in-addr.arpa / ip6.arpa names of
 * RFC 1035 3.5 and RFC 3596 2.5). Names come from the network and from
 * messages; they are checked here before any backend sees them.
 * Thread-safe: no state besides the resolver's locked cache.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

static const struct {
	enum dns_type t;
	const char *name;
} type_names[] = {
	{ DNS_A, "A" },
	{ DNS_NS, "NS" },
	{ DNS_CNAME, "CNAME" },
	{ DNS_PTR, "PTR" },
	{ DNS_MX, "MX" },
	{ DNS_TXT, "TXT" },
	{ DNS_AAAA, "AAAA" },
	{ DNS_SRV, "SRV" },
	{ DNS_TLSA, "TLSA" },
};

const char *
dns_type_name(enum dns_type t)
{
	for (size_t i = 0; i < ARRAY_LEN(type_names); i++)
		if (type_names[i].t == t)
			return type_names[i].name;
	return "unknown";
}

int
dns_type_parse(const char *s, enum dns_type *out)
{
	for (size_t i = 0; i < ARRAY_LEN(type_names); i++) {
		if (strcasecmp(s, type_names[i].name) == 0) {
			*out = type_names[i].t;
			return 0;
		}
	}
	return -1;
}

const char *
dns_result_name(enum dns_result r)
{
	switch (r) {
	case DNS_OK:
		return "ok";
	case DNS_NOTFOUND:
		return "not found";
	case DNS_TEMPERROR:
		return "temporary error";
	case DNS_PERMERROR:
		return "permanent error";
	}
	return "unknown";
}

void
dns_answer_init(struct dns_answer *ans, enum dns_result r, const char *why)
{
	memset(ans, 0, sizeof(*ans));
	ans->result = r;
	ans->ede = -1;
	ans->why = why;
}

void
dns_answer_release(struct dns_answer *ans)
{
	if (ans == NULL)
		return;
	for (size_t i = 0; i < ans->n; i++) {
		free(ans->rr[i].text);
		free(ans->rr[i].data);
	}
	free(ans->rr);
	for (size_t i = 0; i < ans->ncname; i++)
		free(ans->cname_chain[i]);
	free(ans->cname_chain);
	ans->rr = NULL;
	ans->n = 0;
	ans->cname_chain = NULL;
	ans->ncname = 0;
}

struct dns_rr *
dns_answer_add_bytes(struct dns_answer *ans, enum dns_type type,
    uint32_t ttl, const char *p, size_t len)
{
	struct dns_rr *rr;

	ans->rr = xreallocarray(ans->rr, ans->n + 1, sizeof(*ans->rr));
	rr = &ans->rr[ans->n++];
	memset(rr, 0, sizeof(*rr));
	rr->type = type;
	rr->ttl = ttl;
	rr->text = xmalloc(size_add(len, 1));
	if (len > 0)
		memcpy(rr->text, p, len);
	rr->text[len] = '\0';
	rr->textlen = len;
	return rr;
}

struct dns_rr *
dns_answer_add(struct dns_answer *ans, enum dns_type type, uint32_t ttl,
    const char *text)
{
	if (text == NULL)
		text = "";
	return dns_answer_add_bytes(ans, type, ttl, text, strlen(text));
}

void
dns_answer_add_cname(struct dns_answer *ans, const char *name)
{
	ans->cname_chain = xreallocarray(ans->cname_chain, ans->ncname + 1,
	    sizeof(*ans->cname_chain));
	ans->cname_chain[ans->ncname++] = xstrdup(name);
}

void
dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
	*dst = *src;
	dst->rr = NULL;
	dst->n = 0;
	dst->cname_chain = NULL;
	dst->ncname = 0;
	for (size_t i = 0; i < src->n; i++) {
		struct dns_rr *rr = dns_answer_add_bytes(dst, src->rr[i].type,
		    src->rr[i].ttl, src->rr[i].text, src->rr[i].textlen);
		char *text = rr->text;

		*rr = src->rr[i];
		rr->text = text;
		rr->data = NULL;
		if (src->rr[i].data != NULL) {
			rr->data = xmalloc(src->rr[i].datalen + 1);
			memcpy(rr->data, src->rr[i].data, src->rr[i].datalen);
		}
	}
	for (size_t i = 0; i < src->ncname; i++)
		dns_answer_add_cname(dst, src->cname_chain[i]);
}

/* RFC 1035 2.3.4: labels of 1..63 octets, 255 octets on the wire, so 253
 * in text form without the final dot. RFC 2181 11 allows any octet in a
 * label; we refuse controls and non-ASCII (IDNs are queried in their
 * A-label form), and the text form here has no escapes: a "." always
 * separates labels. */
int
dns_name_absolute(const char *name, char *out, size_t outlen,
    const char **why)
{
	size_t len = strlen(name), label = 0, o = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0) {
		*why = "empty name";
		return -1;
	}
	if (len > DNS_NAME_MAX || len + 2 > outlen) {
		*why = "name too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c >= 0x7f) {
			*why = "invalid character in name";
			return -1;
		}
		if (c == '.') {
			if (label == 0) {
				*why = "empty label in name";
				return -1;
			}
			label = 0;
		} else if (++label > DNS_LABEL_MAX) {
			*why = "label too long";
			return -1;
		}
		out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[o++] = '.';
	out[o] = '\0';
	return 0;
}

bool
dns_name_valid(const char *name)
{
	char abs[DNS_NAME_MAX + 2];
	const char *why;

	return dns_name_absolute(name, abs, sizeof(abs), &why) == 0;
}

enum dns_result
dns_lookup(struct dns_resolver *r, const char *name, enum dns_type type,
    struct dns_answer *ans)
{
	char abs[DNS_NAME_MAX + 2];
	const char *why = NULL;
	uint32_t ttl = 0;
	int64_t now;

	if (dns_name_absolute(name, abs, sizeof(abs), &why) == -1) {
		dns_answer_init(ans, DNS_PERMERROR, why);
		return ans->result;
	}
	now = time_mono_ms() / 1000;
	if (r->cache != NULL && dns_cache_get(r->cache, abs, type, now, ans))
		return ans->result;
	dns_answer_init(ans, DNS_TEMPERROR, "no answer");
	r->query(r->impl, abs, type, ans, &ttl);
	if (r->cache != NULL &&
	    (ans->result == DNS_OK || ans->result == DNS_NOTFOUND))
		dns_cache_put(r->cache, abs, type, now, ttl, ans);
	return ans->result;
}

/* Move the records of src to the end of dst. */
static void
answer_append(struct dns_answer *dst, struct dns_answer *src)
{
	for (size_t i = 0; i < src->n; i++) {
		struct dns_rr *rr = dns_answer_add_bytes(dst, src->rr[i].type,
		    src->rr[i].ttl, src->rr[i].text, src->rr[i].textlen);

		rr->pref = src->rr[i].pref;
	}
	for (size_t i = 0; i < src->ncname; i++)
		dns_answer_add_cname(dst, src->cname_chain[i]);
}

enum dns_result
dns_lookup_ips(struct dns_resolver *r, const char *name,
    struct dns_answer *ans)
{
	struct dns_answer a6;

	dns_lookup(r, name, DNS_A, ans);
	dns_lookup(r, name, DNS_AAAA, &a6);
	ans->authentic = ans->authentic && a6.authentic;
	if (a6.result == DNS_OK) {
		answer_append(ans, &a6);
		if (ans->result != DNS_OK) {
			ans->result = DNS_OK;
			ans->why = NULL;
			ans->ede = -1;
		}
	} else if (ans->result == DNS_NOTFOUND && a6.result != DNS_NOTFOUND) {
		ans->result = a6.result;
		ans->why = a6.why;
		ans->ede = a6.ede;
	}
	dns_answer_release(&a6);
	return ans->result;
}

int
dns_ip_reverse(const char *ip, char *out, size_t outlen, bool *v6_out)
{
	unsigned char a[16];
	struct buf b;
	int rc = -1;

	buf_init(&b, DNS_NAME_MAX);
	if (inet_pton(AF_INET, ip, a) == 1) {
		buf_addf(&b, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
		if (v6_out != NULL)
			*v6_out = false;
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		static const char hex[] = "0123456789abcdef";

		for (int i = 15; i >= 0; i--)
			buf_addf(&b, "%s%c.%c", i == 15 ? "" : ".",
			    hex[a[i] & 0xf], hex[a[i] >> 4]);
		if (v6_out != NULL)
			*v6_out = true;
	} else {
		goto out;
	}
	if (buf_failed(&b) || b.len + 1 > outlen)
		goto out;
	memcpy(out, b.data, b.len + 1);
	rc = 0;
out:
	buf_release(&b);
	return rc;
}

enum dns_result
dns_lookup_ptr(struct dns_resolver *r, const char *ip, struct dns_answer *ans)
{
	char rev[DNS_NAME_MAX + 1], name[DNS_NAME_MAX + 2];
	bool v6 = false;
	int n;

	if (dns_ip_reverse(ip, rev, sizeof(rev), &v6) == -1) {
		dns_answer_init(ans, DNS_PERMERROR, "invalid ip address");
		return ans->result;
	}
	n = snprintf(name, sizeof(name), "%s.%s", rev,
	    v6 ? "ip6.arpa" : "in-addr.arpa");
	if (n < 0 || (size_t)n >= sizeof(name)) {
		dns_answer_init(ans, DNS_PERMERROR, "invalid ip address");
		return ans->result;
	}
	return dns_lookup(r, name, DNS_PTR, ans);
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	if (r->free != NULL)
		r->free(r->impl);
	dns_cache_free(r->cache);
	free(r);
}
