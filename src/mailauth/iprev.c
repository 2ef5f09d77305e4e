/*
 * iprev.c: forward-confirmed reverse DNS (RFC 8601 3; the method of
 * RFC 8601 2.7.3). PTR of the client address, then the address records
 * of each name (at most IPREV_NAMES_MAX) of the client's family; a name
 * whose addresses contain the client address passes. NXDOMAIN/no PTR is
 * a permerror, other PTR failures a temperror; failed forward lookups
 * without a match make a temperror, else fail. Names come from DNS and
 * are only compared and copied.
 * Thread rule: no state; any thread; blocks on DNS.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "lib/xmalloc.h"
#include "mailauth/iprev.h"
#include "lib/banned.h"

const char *
iprev_status_name(enum iprev_status s)
{
	switch (s) {
	case IPREV_PASS:
		return "pass";
	case IPREV_FAIL:
		return "fail";
	case IPREV_TEMPERROR:
		return "temperror";
	case IPREV_PERMERROR:
		return "permerror";
	}
	return "unknown";
}

static bool
has_address(const struct dns_answer *ans, int af, const unsigned char *ip)
{
	for (size_t i = 0; i < ans->n; i++) {
		unsigned char a[16];

		if (inet_pton(af, ans->rr[i].text, a) == 1 &&
		    memcmp(a, ip, af == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

enum iprev_status
iprev_check(struct dns_resolver *r, const char *ip, struct iprev_result *res)
{
	struct dns_answer ptr;
	unsigned char addr[16];
	int af = AF_INET;
	bool temp = false;

	memset(res, 0, sizeof(*res));
	res->ip = xstrdup(ip);
	if (inet_pton(AF_INET, ip, addr) != 1) {
		af = AF_INET6;
		if (inet_pton(AF_INET6, ip, addr) != 1) {
			res->why = "invalid ip address";
			return res->status = IPREV_PERMERROR;
		}
	}
	dns_lookup_ptr(r, ip, &ptr);
	res->authentic = ptr.authentic;
	switch (ptr.result) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		res->why = "no ptr record";
		res->status = IPREV_PERMERROR;
		goto out;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		res->why = "dns error looking up ptr";
		res->status = IPREV_TEMPERROR;
		goto out;
	}
	res->names = xcalloc(ptr.n, sizeof(*res->names));
	for (size_t i = 0; i < ptr.n; i++)
		res->names[res->nnames++] = xstrdup(ptr.rr[i].text);
	res->status = IPREV_FAIL;
	res->why = "no name resolves to the address";
	for (size_t i = 0; i < ptr.n && i < IPREV_NAMES_MAX; i++) {
		struct dns_answer fw;
		bool match;

		dns_lookup(r, ptr.rr[i].text, af == AF_INET ? DNS_A : DNS_AAAA,
		    &fw);
		res->authentic = res->authentic && fw.authentic;
		match = fw.result == DNS_OK && has_address(&fw, af, addr);
		if (fw.result == DNS_TEMPERROR || fw.result == DNS_PERMERROR)
			temp = true;
		dns_answer_release(&fw);
		if (match) {
			res->name = xstrdup(ptr.rr[i].text);
			res->status = IPREV_PASS;
			res->why = NULL;
			goto out;
		}
	}
	if (temp) {
		res->status = IPREV_TEMPERROR;
		res->why = "dns error looking up addresses of ptr names";
	}
	if (res->nnames > 0)
		res->name = xstrdup(res->names[0]);
out:
	dns_answer_release(&ptr);
	return res->status;
}

void
iprev_result_release(struct iprev_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->nnames; i++)
		free(res->names[i]);
	free(res->names);
	free(res->name);
	free(res->ip);
	memset(res, 0, sizeof(*res));
}
