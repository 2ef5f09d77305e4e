/*
 * dnsbl.c: DNS block list lookups (RFC 5782 2.1 IPv4, 2.4 IPv6: the
 * reversed address as labels under the zone, an A query; any address
 * means listed, with a TXT at the same name as the reason) and the health
 * check of RFC 5782 5. Addresses and TXT text come from the list operator
 * and are treated as untrusted: the reason is stripped of control and
 * non-ASCII bytes and bounded.
 * Thread rule: lookups are stateless; the health cache is shared and
 * guarded by its own leaf lock, never held across DNS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/lock.h"
#include "lib/xmalloc.h"
#include "mailauth/dnsbl.h"
#include "lib/banned.h"

const char *
dnsbl_status_name(enum dnsbl_status s)
{
	switch (s) {
	case DNSBL_PASS:
		return "pass";
	case DNSBL_FAIL:
		return "fail";
	case DNSBL_TEMPERROR:
		return "temperror";
	}
	return "unknown";
}

static char *
clean_reason(const struct dns_answer *txt)
{
	struct buf b;

	buf_init(&b, DNSBL_REASON_MAX);
	for (size_t i = 0; i < txt->n; i++) {
		if (i > 0)
			buf_adds(&b, "; ");
		for (const char *p = txt->rr[i].text; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x20 &&
			    (unsigned char)*p < 0x7f)
				buf_addc(&b, *p);
	}
	return buf_take(&b);
}

enum dnsbl_status
dnsbl_lookup(struct dns_resolver *r, const char *zone, const char *ip,
    struct dnsbl_result *res)
{
	char rev[DNS_NAME_MAX + 1];
	struct dns_answer ans, txt;
	struct buf name;

	memset(res, 0, sizeof(*res));
	if (dns_ip_reverse(ip, rev, sizeof(rev), NULL) == -1) {
		res->why = "invalid ip address";
		return res->status = DNSBL_TEMPERROR;
	}
	buf_init(&name, DNS_NAME_MAX + 1);
	buf_addf(&name, "%s.%s", rev, zone);
	if (buf_failed(&name)) {
		buf_release(&name);
		res->why = "name too long";
		return res->status = DNSBL_TEMPERROR;
	}
	res->name = buf_take(&name);
	buf_release(&name);
	dns_lookup(r, res->name, DNS_A, &ans);
	switch (ans.result) {
	case DNS_OK:
		res->status = DNSBL_FAIL;
		/* RFC 5782 2.1: the TXT is only an explanation; its errors
		 * do not change the result. */
		if (dns_lookup(r, res->name, DNS_TXT, &txt) == DNS_OK)
			res->reason = clean_reason(&txt);
		dns_answer_release(&txt);
		break;
	case DNS_NOTFOUND:
		res->status = DNSBL_PASS;
		break;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		res->status = DNSBL_TEMPERROR;
		res->why = ans.why != NULL ? ans.why : "dns error";
		break;
	}
	dns_answer_release(&ans);
	return res->status;
}

void
dnsbl_result_release(struct dnsbl_result *res)
{
	if (res == NULL)
		return;
	free(res->name);
	free(res->reason);
	memset(res, 0, sizeof(*res));
}

enum dnsbl_status
dnsbl_check_health(struct dns_resolver *r, const char *zone,
    const char **why)
{
	struct dnsbl_result a, b;
	enum dnsbl_status st;

	dnsbl_lookup(r, zone, "127.0.0.2", &a);
	dnsbl_lookup(r, zone, "127.0.0.1", &b);
	if (a.status == DNSBL_PASS) {
		*why = "test address 127.0.0.2 is not listed";
		st = DNSBL_FAIL;
	} else if (b.status == DNSBL_FAIL) {
		*why = "test address 127.0.0.1 is listed";
		st = DNSBL_FAIL;
	} else if (a.status == DNSBL_TEMPERROR ||
	    b.status == DNSBL_TEMPERROR) {
		*why = "dns error during health check";
		st = DNSBL_TEMPERROR;
	} else {
		*why = NULL;
		st = DNSBL_PASS;
	}
	dnsbl_result_release(&a);
	dnsbl_result_release(&b);
	return st;
}

struct health_entry {
	char *zone;            /* owned */
	enum dnsbl_status st;
	int64_t checked;       /* unix seconds */
};

struct dnsbl_health {
	struct lock lock;      /* guards entries, n */
	struct health_entry entries[DNSBL_HEALTH_ZONES_MAX];
	size_t n;
};

struct dnsbl_health *
dnsbl_health_new(void)
{
	struct dnsbl_health *h = xcalloc(1, sizeof(*h));

	lock_init(&h->lock, LOCK_ORDER_DNS, "dnsbl health");
	return h;
}

void
dnsbl_health_free(struct dnsbl_health *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->entries[i].zone);
	lock_destroy(&h->lock);
	free(h);
}

bool
dnsbl_health_usable(struct dnsbl_health *h, struct dns_resolver *r,
    const char *zone, int64_t now)
{
	enum dnsbl_status st = DNSBL_TEMPERROR;
	const char *why;
	bool cached = false;
	size_t i, oldest = 0;

	lock_take(&h->lock);
	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->entries[i].zone, zone) == 0 &&
		    now - h->entries[i].checked < DNSBL_HEALTH_TTL) {
			st = h->entries[i].st;
			cached = true;
			break;
		}
	}
	lock_release(&h->lock);
	if (cached)
		return st != DNSBL_FAIL;
	st = dnsbl_check_health(r, zone, &why);
	lock_take(&h->lock);
	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->entries[i].zone, zone) == 0)
			break;
		if (h->entries[i].checked < h->entries[oldest].checked)
			oldest = i;
	}
	if (i == h->n) {
		if (h->n < DNSBL_HEALTH_ZONES_MAX) {
			h->n++;
		} else {
			i = oldest;
			free(h->entries[i].zone);
		}
		h->entries[i].zone = xstrdup(zone);
	}
	h->entries[i].st = st;
	h->entries[i].checked = now;
	lock_release(&h->lock);
	return st != DNSBL_FAIL;
}
