/*
 * dane.c: DANE for SMTP (RFC 7672 2.2 TLSA lookup, 3.1 usages, 3.2 name
 * checks; RFC 6698 2.1 record fields; RFC 7671 5 usage semantics). TLSA
 * data and peer certificates are untrusted: every length is checked and
 * a certificate that does not parse is an evaluation error, never a
 * match. dane_lookup() blocks on DNS (delivery threads); verification is
 * pure and thread-safe (gnutls hash, X.509 parsing and trust lists).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "queue/dane.h"
#include "lib/banned.h"

#define SHA256_LEN 32
#define SHA512_LEN 64

/* RFC 8914 4: the extended errors that mean a DNSSEC failure. */
static bool
ede_is_dnssec(int ede)
{
	switch (ede) {
	case 1:  /* Unsupported DNSKEY Algorithm */
	case 2:  /* Unsupported DS Digest Type */
	case 5:  /* DNSSEC Indeterminate */
	case 6:  /* DNSSEC Bogus */
	case 7:  /* Signature Expired */
	case 8:  /* Signature Not Yet Valid */
	case 9:  /* DNSKEY Missing */
	case 10: /* RRSIGs Missing */
	case 11: /* No Zone Key Bit Set */
	case 12: /* NSEC Missing */
		return true;
	default:
		return false;
	}
}

bool
dane_tlsa_usable(const struct dane_tlsa *t)
{
	gnutls_datum_t d = { t->data, (unsigned)t->datalen };

	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP. */
	if (t->usage != DANE_USAGE_DANE_TA && t->usage != DANE_USAGE_DANE_EE)
		return false;
	if (t->selector > 1 || t->datalen > UINT32_MAX)
		return false;
	switch (t->mtype) {
	case 0:
		if (t->selector == 0) {
			gnutls_x509_crt_t crt;
			bool ok;

			if (gnutls_x509_crt_init(&crt) < 0)
				return false;
			ok = gnutls_x509_crt_import(crt, &d,
			    GNUTLS_X509_FMT_DER) >= 0;
			gnutls_x509_crt_deinit(crt);
			return ok;
		} else {
			gnutls_pubkey_t pk;
			bool ok;

			if (gnutls_pubkey_init(&pk) < 0)
				return false;
			ok = gnutls_pubkey_import(pk, &d, GNUTLS_X509_FMT_DER) >= 0;
			gnutls_pubkey_deinit(pk);
			return ok;
		}
	case 1:
		return t->datalen == SHA256_LEN;
	case 2:
		return t->datalen == SHA512_LEN;
	default:
		return false;
	}
}

void
dane_lookup_release(struct dane_lookup *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nrec; i++)
		free(l->rec[i].data);
	free(l->rec);
	for (size_t i = 0; i < l->ntext; i++)
		free(l->text[i]);
	free(l->text);
	free(l->base_domain);
	memset(l, 0, sizeof(*l));
	l->ede = -1;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
add_record(struct dane_lookup *out, const struct dane_tlsa *t)
{
	struct buf b;

	buf_init(&b, BUF_NOMAX);
	buf_addf(&b, "%u %u %u ", t->usage, t->selector, t->mtype);
	for (size_t i = 0; i < t->datalen; i++)
		buf_addf(&b, "%02x", t->data[i]);
	out->text = xreallocarray(out->text, out->ntext + 1, sizeof(char *));
	out->text[out->ntext++] = buf_take(&b);
	buf_release(&b);
	if (!dane_tlsa_usable(t)) {
		out->nunusable++;
		return;
	}
	out->rec = xreallocarray(out->rec, out->nrec + 1, sizeof(*out->rec));
	out->rec[out->nrec].usage = t->usage;
	out->rec[out->nrec].selector = t->selector;
	out->rec[out->nrec].mtype = t->mtype;
	out->rec[out->nrec].datalen = t->datalen;
	out->rec[out->nrec].data = xmalloc(t->datalen > 0 ? t->datalen : 1);
	if (t->datalen > 0)
		memcpy(out->rec[out->nrec].data, t->data, t->datalen);
	out->nrec++;
}

void
dane_lookup_from_records(const char *base_domain,
    const struct dane_tlsa *recs, size_t n, struct dane_lookup *out)
{
	memset(out, 0, sizeof(*out));
	out->ede = -1;
	out->status = DANE_RECORDS;
	out->base_domain = xstrdup(base_domain);
	for (size_t i = 0; i < n && i < DANE_RECORDS_MAX; i++)
		add_record(out, &recs[i]);
	if (out->ntext > 1)
		qsort(out->text, out->ntext, sizeof(char *), cmp_str);
}

enum tlsa_try {
	TRY_RECORDS,
	TRY_NONE,  /* not found, or not authentic: DANE not applicable here */
	TRY_ERROR,
};

static enum tlsa_try
try_tlsa(struct dns_resolver *r, const char *base, struct dane_lookup *out)
{
	char name[DNS_NAME_MAX + 16];
	struct dns_answer ans;
	enum tlsa_try res;
	int n = snprintf(name, sizeof(name), "_25._tcp.%s", base);

	if (n < 0 || (size_t)n >= sizeof(name) || !dns_name_valid(name))
		return TRY_NONE;
	switch (dns_lookup(r, name, DNS_TLSA, &ans)) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		dns_answer_release(&ans);
		return TRY_NONE;
	case DNS_TEMPERROR:
	case DNS_PERMERROR:
		out->ede = ans.ede;
		out->dnssec_error = ede_is_dnssec(ans.ede);
		out->why = "tlsa lookup failed";
		dns_answer_release(&ans);
		return TRY_ERROR;
	}
	/* RFC 7672 2.2: insecure TLSA records are ignored. */
	if (!ans.authentic || ans.ncname > DANE_CNAME_MAX) {
		res = TRY_NONE;
		goto out;
	}
	dane_lookup_from_records(base, NULL, 0, out);
	for (size_t i = 0; i < ans.n && i < DANE_RECORDS_MAX; i++) {
		struct dane_tlsa t = { ans.rr[i].usage, ans.rr[i].selector,
			ans.rr[i].mtype, ans.rr[i].data, ans.rr[i].datalen };

		if (ans.rr[i].type == DNS_TLSA)
			add_record(out, &t);
	}
	if (out->ntext > 1)
		qsort(out->text, out->ntext, sizeof(char *), cmp_str);
	res = TRY_RECORDS;
out:
	dns_answer_release(&ans);
	return res;
}

void
dane_lookup(struct dns_resolver *r, const char *host, const char *expanded,
    struct dane_lookup *out)
{
	enum tlsa_try t = TRY_NONE;

	memset(out, 0, sizeof(*out));
	out->ede = -1;
	/* RFC 7672 2.2.2: first the CNAME-expanded name, then the host. */
	if (expanded != NULL && expanded[0] != '\0' &&
	    strcasecmp(expanded, host) != 0) {
		t = try_tlsa(r, expanded, out);
		if (t == TRY_ERROR) {
			out->status = DANE_TEMPERROR;
			out->base_domain = xstrdup(expanded);
			return;
		}
	}
	if (t == TRY_NONE)
		t = try_tlsa(r, host, out);
	switch (t) {
	case TRY_RECORDS:
		out->status = DANE_RECORDS;
		return;
	case TRY_NONE:
		out->status = DANE_NONE;
		out->base_domain = xstrdup(host);
		return;
	case TRY_ERROR:
		out->status = DANE_TEMPERROR;
		out->base_domain = xstrdup(host);
		return;
	}
}

/* Selected content of a certificate (RFC 6698 2.1.2), into *sel (free
 * with gnutls_free when *allocated). */
static int
select_content(gnutls_x509_crt_t crt, const struct span *der,
    uint8_t selector, gnutls_datum_t *sel, bool *allocated)
{
	gnutls_pubkey_t pk = NULL;
	int rc = -1;

	*allocated = false;
	if (selector == 0) {
		sel->data = (unsigned char *)der->p;
		sel->size = (unsigned)der->len;
		return 0;
	}
	if (gnutls_pubkey_init(&pk) < 0)
		return -1;
	if (gnutls_pubkey_import_x509(pk, crt, 0) < 0 ||
	    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, sel) < 0)
		goto out;
	*allocated = true;
	rc = 0;
out:
	gnutls_pubkey_deinit(pk);
	return rc;
}

/* Whether the record's association data matches the certificate. */
static bool
record_matches(const struct dane_tlsa *t, gnutls_x509_crt_t crt,
    const struct span *der, bool *errors)
{
	unsigned char digest[SHA512_LEN];
	gnutls_datum_t sel;
	bool allocated, ok = false;

	if (select_content(crt, der, t->selector, &sel, &allocated) == -1) {
		*errors = true;
		return false;
	}
	switch (t->mtype) {
	case 0:
		ok = sel.size == t->datalen &&
		    memcmp(sel.data, t->data, t->datalen) == 0;
		break;
	case 1:
		ok = gnutls_hash_fast(GNUTLS_DIG_SHA256, sel.data, sel.size,
			 digest) == 0 &&
		    t->datalen == SHA256_LEN &&
		    memcmp(digest, t->data, SHA256_LEN) == 0;
		break;
	case 2:
		ok = gnutls_hash_fast(GNUTLS_DIG_SHA512, sel.data, sel.size,
			 digest) == 0 &&
		    t->datalen == SHA512_LEN &&
		    memcmp(digest, t->data, SHA512_LEN) == 0;
		break;
	default:
		break;
	}
	if (allocated)
		gnutls_free(sel.data);
	return ok;
}

/* RFC 7672 3.1.2: the chain below the matching certificate (index ta)
 * verifies with it as the trust anchor. */
static bool
verify_to_anchor(gnutls_x509_crt_t *crts, size_t ta)
{
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_x509_crt_t anchor = NULL;
	gnutls_datum_t der = { NULL, 0 };
	unsigned status = 1;
	bool ok = false;

	/* The trust list takes ownership of its anchor: give it a copy. */
	if (gnutls_x509_crt_export2(crts[ta], GNUTLS_X509_FMT_DER, &der) < 0 ||
	    gnutls_x509_crt_init(&anchor) < 0)
		goto out;
	if (gnutls_x509_crt_import(anchor, &der, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	if (gnutls_x509_trust_list_init(&tl, 0) < 0)
		goto out;
	if (gnutls_x509_trust_list_add_cas(tl, &anchor, 1, 0) != 1)
		goto out;
	anchor = NULL;
	if (ta == 0) {
		/* A self-issued leaf named as its own trust anchor. */
		ok = true;
		goto out;
	}
	if (gnutls_x509_trust_list_verify_crt2(tl, crts, (unsigned)ta, NULL, 0,
	    0, &status, NULL) < 0)
		goto out;
	ok = status == 0;
out:
	if (anchor != NULL)
		gnutls_x509_crt_deinit(anchor);
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	gnutls_free(der.data);
	return ok;
}

/* RFC 7672 3.2.3: the leaf must carry one of the names. */
static bool
names_match(gnutls_x509_crt_t leaf, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && names[i][0] != '\0' &&
		    gnutls_x509_crt_check_hostname2(leaf, names[i], 0) != 0)
			return true;
	return false;
}

void
dane_verify(const struct dane_lookup *d, const struct span *chain,
    size_t nchain, const char *const *names, size_t nnames,
    struct dane_verdict *out)
{
	gnutls_x509_crt_t crts[DANE_CHAIN_MAX];
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	out->matched_usage = -1;
	out->why = "no tlsa record matched";
	if (d->status != DANE_RECORDS || d->nrec == 0) {
		out->why = "no usable tlsa records";
		return;
	}
	if (nchain == 0) {
		out->why = "no peer certificate";
		return;
	}
	for (size_t i = 0; i < nchain && i < DANE_CHAIN_MAX; i++) {
		gnutls_datum_t der = { (unsigned char *)chain[i].p,
			(unsigned)chain[i].len };

		if (chain[i].len > UINT32_MAX ||
		    gnutls_x509_crt_init(&crts[n]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[n], &der,
		    GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[n]);
			out->errors = true;
			break;
		}
		n++;
	}
	if (n == 0) {
		out->why = "peer certificate does not parse";
		return;
	}
	/* RFC 7672 3.1.1: DANE-EE matches the leaf; names and dates are
	 * not checked. */
	for (size_t r = 0; r < d->nrec && !out->verified; r++) {
		if (d->rec[r].usage != DANE_USAGE_DANE_EE)
			continue;
		if (record_matches(&d->rec[r], crts[0], &chain[0], &out->errors)) {
			out->verified = true;
			out->matched_usage = DANE_USAGE_DANE_EE;
		}
	}
	for (size_t r = 0; r < d->nrec && !out->verified; r++) {
		if (d->rec[r].usage != DANE_USAGE_DANE_TA)
			continue;
		for (size_t i = 0; i < n && !out->verified; i++) {
			if (!record_matches(&d->rec[r], crts[i], &chain[i],
			    &out->errors))
				continue;
			if (!verify_to_anchor(crts, i)) {
				out->errors = true;
				out->why = "chain does not verify to the tlsa "
					   "trust anchor";
				continue;
			}
			if (!names_match(crts[0], names, nnames)) {
				out->why = "certificate name does not match";
				continue;
			}
			out->verified = true;
			out->matched_usage = DANE_USAGE_DANE_TA;
		}
	}
	if (out->verified)
		out->why = NULL;
	for (size_t i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
}
