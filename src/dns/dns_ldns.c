/*
 * dns_ldns.c: the real resolver backend (dns.h dns_resolver_new): a
 * security-aware, non-validating stub (RFC 4033 4.9.1) over ldns. Queries
 * go to the configured recursive servers over UDP with TCP fallback on
 * truncation (RFC 7766 5), with the DO bit (RFC 3225) and the AD bit set
 * (RFC 6840 5.7) so a validating resolver reports authenticity. The AD
 * bit of an answer counts only from trusted servers: "options trust-ad"
 * in resolv.conf, all servers on loopback (RFC 6698 A.3), or the config's
 * flag. Extended DNS Errors (RFC 8914) are read from the OPT record.
 * Answers come from the network and are parsed by ldns; we take only
 * records of the asked type along the CNAME chain from the asked name.
 * Thread-safe: each query uses its own ldns_resolver; the configuration
 * is immutable after dns_resolver_new().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define RESOLV_CONF_MAX 65536
#define LDNS_SERVERS_MAX 8     /* servers we try per query */
#define LDNS_CNAME_MAX 10      /* CNAME chain length we follow in answers */
#define LDNS_UDP_SIZE 1232     /* EDNS buffer size, DNS flag day 2020 */
#define LDNS_TIMEOUT_MS 5000
#define LDNS_ATTEMPTS 2

struct server {
	int af;
	unsigned char addr[16];
	uint16_t port;
};

struct ldns_impl {
	struct server servers[LDNS_SERVERS_MAX];
	size_t nservers;
	unsigned timeout_ms;
	unsigned attempts;
	bool trust_ad;
};

/* "ip", "ip:port" (IPv4), "[v6]:port", "[v6]" or a bare IPv6 address. */
static int
parse_server(const char *s, struct server *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *colon;
	size_t hl;
	uint64_t p = 53;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL)
			return -1;
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hl = (size_t)(colon - s);
			port = colon + 1;
		} else {
			hl = strlen(s);
		}
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (port != NULL &&
	    (span_u64(span_of_cstr(port), 65535, &p) == -1 || p == 0))
		return -1;
	out->port = (uint16_t)p;
	if (inet_pton(AF_INET, host, out->addr) == 1)
		out->af = AF_INET;
	else if (inet_pton(AF_INET6, host, out->addr) == 1)
		out->af = AF_INET6;
	else
		return -1;
	return 0;
}

static bool
server_is_loopback(const struct server *s)
{
	static const unsigned char v6lo[16] = { [15] = 1 };

	if (s->af == AF_INET)
		return s->addr[0] == 127;
	return memcmp(s->addr, v6lo, 16) == 0;
}

static bool
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool
is_word(int c)
{
	return c > ' ' && c != '%' && c < 0x7f;
}

/* Read nameserver lines and "options trust-ad" (resolv.conf(5)). */
static int
read_resolv_conf(struct ldns_impl *im, bool *trust_ad, struct buf *err)
{
	struct buf text;
	struct scan s;
	int rc = -1;

	buf_init(&text, RESOLV_CONF_MAX);
	if (io_read_file(RESOLV_CONF, &text, err) == -1)
		goto out;
	s = scan_of(span_of_buf(&text));
	while (!scan_eof(&s)) {
		struct span line, word;
		struct scan ls;

		if (scan_until(&s, '\n', RESOLV_CONF_MAX, &line) == -1) {
			line = scan_rest(&s);
			s.pos = s.len;
		} else {
			scan_char(&s, '\n');
		}
		ls = scan_of(line);
		while (is_blank(scan_peek(&ls)))
			ls.pos++;
		if (scan_lit(&ls, "nameserver") == 0) {
			char addr[INET6_ADDRSTRLEN + 1];
			struct server sv;

			while (is_blank(scan_peek(&ls)))
				ls.pos++;
			if (scan_while(&ls, is_word, INET6_ADDRSTRLEN, &word) ==
			    -1)
				continue;
			memcpy(addr, word.p, word.len);
			addr[word.len] = '\0';
			memset(&sv, 0, sizeof(sv));
			sv.port = 53;
			if (inet_pton(AF_INET, addr, sv.addr) == 1)
				sv.af = AF_INET;
			else if (inet_pton(AF_INET6, addr, sv.addr) == 1)
				sv.af = AF_INET6;
			else
				continue;
			if (im->nservers < LDNS_SERVERS_MAX)
				im->servers[im->nservers++] = sv;
		} else if (scan_lit(&ls, "options") == 0) {
			struct span rest = scan_rest(&ls);

			for (size_t i = 0; i + 8 <= rest.len; i++)
				if (memcmp(rest.p + i, "trust-ad", 8) == 0)
					*trust_ad = true;
		}
	}
	rc = 0;
out:
	buf_release(&text);
	return rc;
}

/* Text of a domain name rdf without the final dot ("" for the root). */
static char *
dname_text(const ldns_rdf *rdf)
{
	char *s = ldns_rdf2str(rdf);
	char *out;
	size_t n;

	if (s == NULL)
		return xstrdup("");
	n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	out = xstrndup(s, n);
	LDNS_FREE(s);
	return out;
}

static char *
rdf_text(const ldns_rdf *rdf)
{
	char *s = ldns_rdf2str(rdf);
	char *out = xstrdup(s != NULL ? s : "");

	LDNS_FREE(s);
	return out;
}

/* Convert one RR of the asked type into our form. Returns -1 when its
 * rdata is not what the type requires. */
static int
convert_rr(const ldns_rr *lr, enum dns_type type, struct dns_answer *ans)
{
	size_t nrd = ldns_rr_rd_count(lr);
	struct dns_rr *rr;
	char *text = NULL;
	size_t textlen = 0;
	struct buf txt;

	switch (type) {
	case DNS_A:
	case DNS_AAAA:
		if (nrd != 1)
			return -1;
		text = rdf_text(ldns_rr_rdf(lr, 0));
		break;
	case DNS_NS:
	case DNS_CNAME:
	case DNS_PTR:
		if (nrd != 1)
			return -1;
		text = dname_text(ldns_rr_rdf(lr, 0));
		break;
	case DNS_MX:
		if (nrd != 2)
			return -1;
		text = dname_text(ldns_rr_rdf(lr, 1));
		break;
	case DNS_SRV:
		if (nrd != 4)
			return -1;
		text = dname_text(ldns_rr_rdf(lr, 3));
		break;
	case DNS_TXT:
		/* RFC 7208 3.3: character-strings joined without separator. */
		buf_init(&txt, 65536);
		for (size_t i = 0; i < nrd; i++) {
			const ldns_rdf *rdf = ldns_rr_rdf(lr, i);
			const uint8_t *d = ldns_rdf_data(rdf);
			size_t sz = ldns_rdf_size(rdf);

			if (sz >= 1 && (size_t)d[0] + 1 <= sz)
				buf_add(&txt, d + 1, d[0]);
		}
		textlen = txt.len;
		text = buf_take(&txt);
		buf_release(&txt);
		break;
	case DNS_TLSA:
		if (nrd != 4)
			return -1;
		text = xstrdup("");
		break;
	}
	if (type != DNS_TXT)
		textlen = strlen(text);
	rr = dns_answer_add_bytes(ans, type, ldns_rr_ttl(lr), text, textlen);
	free(text);
	if (type == DNS_MX)
		rr->pref = ldns_rdf2native_int16(ldns_rr_rdf(lr, 0));
	if (type == DNS_SRV) {
		rr->pref = ldns_rdf2native_int16(ldns_rr_rdf(lr, 0));
		rr->weight = ldns_rdf2native_int16(ldns_rr_rdf(lr, 1));
		rr->port = ldns_rdf2native_int16(ldns_rr_rdf(lr, 2));
	}
	if (type == DNS_TLSA) {
		const ldns_rdf *d = ldns_rr_rdf(lr, 3);

		rr->usage = ldns_rdf2native_int8(ldns_rr_rdf(lr, 0));
		rr->selector = ldns_rdf2native_int8(ldns_rr_rdf(lr, 1));
		rr->mtype = ldns_rdf2native_int8(ldns_rr_rdf(lr, 2));
		rr->datalen = ldns_rdf_size(d);
		rr->data = xmalloc(rr->datalen + 1);
		memcpy(rr->data, ldns_rdf_data(d), rr->datalen);
	}
	return 0;
}

/* RFC 8914 2: INFO-CODE is the first two octets of option 15. */
static int
find_ede(ldns_pkt *pkt)
{
	ldns_edns_option_list *l = ldns_pkt_edns_get_option_list(pkt);
	size_t n = l != NULL ? ldns_edns_option_list_get_count(l) : 0;

	for (size_t i = 0; i < n; i++) {
		ldns_edns_option *o = ldns_edns_option_list_get_option(l, i);

		if (o != NULL && ldns_edns_get_code(o) == LDNS_EDNS_EDE &&
		    ldns_edns_get_size(o) >= 2) {
			const uint8_t *d = ldns_edns_get_data(o);

			return d[0] << 8 | d[1];
		}
	}
	return -1;
}

/* RFC 2308 5: the negative TTL is the smaller of the SOA's TTL and its
 * MINIMUM field. */
static uint32_t
negative_ttl(ldns_pkt *pkt)
{
	ldns_rr_list *auth = ldns_pkt_authority(pkt);

	for (size_t i = 0; i < ldns_rr_list_rr_count(auth); i++) {
		ldns_rr *rr = ldns_rr_list_rr(auth, i);

		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
		    ldns_rr_rd_count(rr) == 7) {
			uint32_t min = ldns_rdf2native_int32(ldns_rr_rdf(rr, 6));
			uint32_t ttl = ldns_rr_ttl(rr);

			return ttl < min ? ttl : min;
		}
	}
	return 0;
}

/* Collect the records of type for qname following CNAMEs in the answer
 * section (RFC 1034 3.6.2). Returns the smallest TTL seen. */
static uint32_t
collect(ldns_pkt *pkt, const ldns_rdf *qname, enum dns_type type,
    struct dns_answer *ans)
{
	ldns_rr_list *an = ldns_pkt_answer(pkt);
	size_t count = ldns_rr_list_rr_count(an);
	ldns_rdf *cur = ldns_rdf_clone(qname);
	uint32_t ttl = UINT32_MAX;

	for (int depth = 0; depth <= LDNS_CNAME_MAX; depth++) {
		ldns_rdf *next = NULL;

		for (size_t i = 0; i < count; i++) {
			ldns_rr *rr = ldns_rr_list_rr(an, i);

			if (ldns_dname_compare(ldns_rr_owner(rr), cur) != 0)
				continue;
			if (ldns_rr_get_type(rr) == (ldns_rr_type)type) {
				if (convert_rr(rr, type, ans) == 0 &&
				    ldns_rr_ttl(rr) < ttl)
					ttl = ldns_rr_ttl(rr);
			} else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
			    type != DNS_CNAME && next == NULL &&
			    ldns_rr_rd_count(rr) == 1) {
				next = ldns_rdf_clone(ldns_rr_rdf(rr, 0));
				if (ldns_rr_ttl(rr) < ttl)
					ttl = ldns_rr_ttl(rr);
			}
		}
		if (ans->n > 0 || next == NULL) {
			ldns_rdf_deep_free(next);
			break;
		}
		{
			char *t = dname_text(cur);

			dns_answer_add_cname(ans, t);
			free(t);
		}
		ldns_rdf_deep_free(cur);
		cur = next;
	}
	ldns_rdf_deep_free(cur);
	return ttl == UINT32_MAX ? 0 : ttl;
}

static ldns_resolver *
make_resolver(const struct ldns_impl *im, const struct server *sv)
{
	ldns_resolver *res = ldns_resolver_new();
	ldns_rdf *addr;
	struct timeval tv;

	if (res == NULL)
		return NULL;
	addr = ldns_rdf_new_frm_data(sv->af == AF_INET ? LDNS_RDF_TYPE_A :
	    LDNS_RDF_TYPE_AAAA, sv->af == AF_INET ? 4 : 16, sv->addr);
	if (addr == NULL ||
	    ldns_resolver_push_nameserver(res, addr) != LDNS_STATUS_OK) {
		ldns_rdf_deep_free(addr);
		ldns_resolver_deep_free(res);
		return NULL;
	}
	ldns_rdf_deep_free(addr);
	ldns_resolver_set_port(res, sv->port);
	ldns_resolver_set_recursive(res, true);
	ldns_resolver_set_dnssec(res, true); /* RFC 3225: the DO bit */
	ldns_resolver_set_dnssec_cd(res, false);
	ldns_resolver_set_fallback(res, true);
	ldns_resolver_set_usevc(res, false);
	ldns_resolver_set_edns_udp_size(res, LDNS_UDP_SIZE);
	ldns_resolver_set_defnames(res, false);
	ldns_resolver_set_dnsrch(res, false);
	ldns_resolver_set_random(res, false);
	ldns_resolver_set_retry(res, (uint8_t)(im->attempts > 255 ? 255 :
	    im->attempts));
	ldns_resolver_set_retrans(res, 1);
	tv.tv_sec = im->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(im->timeout_ms % 1000) * 1000;
	ldns_resolver_set_timeout(res, tv);
	return res;
}

static void
interpret(const struct ldns_impl *im, ldns_pkt *pkt, const ldns_rdf *qname,
    enum dns_type type, struct dns_answer *ans, uint32_t *ttl_out)
{
	ldns_pkt_rcode rc = ldns_pkt_get_rcode(pkt);

	ans->ede = find_ede(pkt);
	switch (rc) {
	case LDNS_RCODE_NOERROR:
		*ttl_out = collect(pkt, qname, type, ans);
		if (ans->n > 0) {
			ans->result = DNS_OK;
			ans->why = NULL;
		} else {
			ans->result = DNS_NOTFOUND;
			ans->why = "no records of this type";
			*ttl_out = negative_ttl(pkt);
		}
		break;
	case LDNS_RCODE_NXDOMAIN:
		collect(pkt, qname, type, ans);
		ans->result = DNS_NOTFOUND;
		ans->why = "nxdomain";
		*ttl_out = negative_ttl(pkt);
		break;
	case LDNS_RCODE_SERVFAIL:
		ans->result = DNS_TEMPERROR;
		ans->why = "server failure";
		break;
	case LDNS_RCODE_REFUSED:
		ans->result = DNS_TEMPERROR;
		ans->why = "refused";
		break;
	default:
		ans->result = DNS_PERMERROR;
		ans->why = "error response";
		break;
	}
	/* RFC 6840 5.7 with spec/auth.md 1: trusted, AD, NOERROR/NXDOMAIN. */
	ans->authentic = im->trust_ad && ldns_pkt_ad(pkt) &&
	    (rc == LDNS_RCODE_NOERROR || rc == LDNS_RCODE_NXDOMAIN);
}

/* Wire form of an absolute text name (dns_name_absolute() checked it),
 * so that bytes the presentation format would treat specially (space,
 * backslash, parentheses) go out as they are. */
static ldns_rdf *
name_rdf(const char *name)
{
	uint8_t wire[DNS_NAME_MAX + 3];
	size_t w = 0, start = 0, len = strlen(name);

	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.')
			continue;
		if (i - start > DNS_LABEL_MAX || w + 1 + (i - start) + 1 >
		    sizeof(wire))
			return NULL;
		wire[w++] = (uint8_t)(i - start);
		memcpy(wire + w, name + start, i - start);
		w += i - start;
		start = i + 1;
	}
	wire[w++] = 0;
	return ldns_dname_new_frm_data((uint16_t)w, wire);
}

static enum dns_result
ldns_query(void *impl, const char *name, enum dns_type type,
    struct dns_answer *ans, uint32_t *ttl_out)
{
	const struct ldns_impl *im = impl;
	ldns_rdf *qname = name_rdf(name);

	dns_answer_init(ans, DNS_TEMPERROR, "no server answered");
	*ttl_out = 0;
	if (qname == NULL) {
		ans->result = DNS_PERMERROR;
		ans->why = "invalid name";
		return ans->result;
	}
	for (size_t i = 0; i < im->nservers; i++) {
		ldns_resolver *res = make_resolver(im, &im->servers[i]);
		ldns_pkt *pkt = NULL;
		ldns_status st;

		if (res == NULL)
			continue;
		st = ldns_resolver_send(&pkt, res, qname, (ldns_rr_type)type,
		    LDNS_RR_CLASS_IN, LDNS_RD | LDNS_AD);
		ldns_resolver_deep_free(res);
		if (st != LDNS_STATUS_OK || pkt == NULL) {
			ldns_pkt_free(pkt);
			ans->why = st == LDNS_STATUS_NETWORK_ERR ?
			    "network error or timeout" : "query failed";
			continue;
		}
		interpret(im, pkt, qname, type, ans, ttl_out);
		ldns_pkt_free(pkt);
		break;
	}
	ldns_rdf_deep_free(qname);
	return ans->result;
}

static void
ldns_impl_free(void *impl)
{
	free(impl);
}

struct dns_resolver *
dns_resolver_new(const struct dns_params *p, struct buf *err)
{
	struct ldns_impl *im = xcalloc(1, sizeof(*im));
	struct dns_resolver *r;
	bool trust_conf = false, all_lo = true;

	im->timeout_ms = p->timeout_ms != 0 ? p->timeout_ms : LDNS_TIMEOUT_MS;
	im->attempts = p->attempts != 0 ? p->attempts : LDNS_ATTEMPTS;
	if (p->nservers > 0) {
		for (size_t i = 0; i < p->nservers; i++) {
			if (im->nservers == LDNS_SERVERS_MAX)
				break;
			if (parse_server(p->servers[i],
			    &im->servers[im->nservers]) == -1) {
				buf_addf(err, "invalid dns server address %s",
				    p->servers[i]);
				goto fail;
			}
			im->nservers++;
		}
	} else {
		if (read_resolv_conf(im, &trust_conf, err) == -1)
			goto fail;
		if (im->nservers == 0) {
			/* resolv.conf(5): no nameserver line means the
			 * local machine. */
			parse_server("127.0.0.1", &im->servers[0]);
			im->nservers = 1;
		}
	}
	for (size_t i = 0; i < im->nservers; i++)
		if (!server_is_loopback(&im->servers[i]))
			all_lo = false;
	im->trust_ad = p->trust_ad || trust_conf || all_lo;
	r = xcalloc(1, sizeof(*r));
	r->query = ldns_query;
	r->free = ldns_impl_free;
	r->impl = im;
	r->cache = dns_cache_new(p->cache_max != 0 ? p->cache_max : 10000);
	return r;
fail:
	free(im);
	return NULL;
}

bool
dns_resolver_trusts_ad(const struct dns_resolver *r)
{
	const struct ldns_impl *im = r->impl;

	return r->is_mock || im->trust_ad;
}
