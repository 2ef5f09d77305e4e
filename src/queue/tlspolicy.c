/*
 * tlspolicy.c: the TLS decision for one delivery (spec/queue.md 5.2
 * MTA-STS, 5.3 per-host procedure with DANE per RFC 7672, 5.4 plaintext
 * fallback per RFC 7435, 5.7 TLS report data per RFC 8460, 5.8
 * REQUIRETLS and TLS-Required: No per RFC 8689) and the check of an
 * established session: PKIX with the WebPKI roots (RFC 8461 4.2) and
 * DANE (dane.c). The inputs are DNS answers and a peer certificate chain:
 * untrusted, only compared and parsed by gnutls. Pure except
 * tlspolicy_trust_new(); any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "queue/tlspolicy.h"
#include "lib/banned.h"

#define TLSPOLICY_CHAIN_MAX 16

static bool
sts_enforce(const struct tlspolicy_dest *d)
{
	return d->sts != NULL && d->sts->status == MTASTS_POLICY &&
	    d->sts->policy.mode == MTASTS_MODE_ENFORCE;
}

static bool
sts_testing(const struct tlspolicy_dest *d)
{
	return d->sts != NULL && d->sts->status == MTASTS_POLICY &&
	    d->sts->policy.mode == MTASTS_MODE_TESTING;
}

int
tlspolicy_domain_check(const struct tlspolicy_dest *d, const char **why)
{
	/* spec 5.2: a temporary MTA-STS error fails the attempt, unless
	 * RFC 8689 TLS-Required: No. */
	if (d->sts != NULL && d->sts->status == MTASTS_TEMPERROR &&
	    d->requiretls != TLSPOLICY_REQUIRETLS_NO) {
		*why = "temporary error looking up mta-sts policy";
		return -1;
	}
	return 0;
}

void
tlspolicy_domain_report(const struct tlspolicy_dest *d,
    struct tlsrpt_result *r)
{
	const struct mtasts_lookup *l = d->sts;

	if (l == NULL || l->status != MTASTS_POLICY) {
		tlsrpt_result_init(r, TLSRPT_POLICY_NONE, d->domain, d->domain,
		    false);
	} else {
		const char *p = l->policy_text != NULL ? l->policy_text : "";

		tlsrpt_result_init(r, TLSRPT_POLICY_STS, d->domain, d->domain,
		    false);
		/* RFC 8460 4.4: policy-string is the policy, one line each. */
		while (*p != '\0') {
			size_t len = strcspn(p, "\n");
			char *line = xstrndup(p, len);
			size_t ll = strlen(line);

			if (ll > 0 && line[ll - 1] == '\r')
				line[ll - 1] = '\0';
			if (line[0] != '\0')
				tlsrpt_result_add_string(r, line);
			free(line);
			p += len;
			if (*p == '\n')
				p++;
		}
		for (size_t i = 0; i < l->policy.nmx; i++)
			tlsrpt_result_add_mx(r, l->policy.mx[i]);
	}
	if (l != NULL && l->report_result != NULL)
		tlsrpt_result_failure(r, l->report_result, l->fallback_cached ?
		    "+fallback-to-cached-policy" : "", NULL, NULL, NULL, NULL);
}

bool
tlspolicy_dane_applies(const struct tlspolicy_dest *d,
    bool host_addrs_authentic, bool host_is_ip)
{
	if (host_is_ip || !host_addrs_authentic || !d->mx_authentic)
		return false;
	return !d->have_mx || d->chain_authentic;
}

const char *
tlspolicy_ede_name(int code)
{
	/* RFC 8914 5.2, names with dashes. */
	static const char *const names[] = {
		"other", "unsupported-dnskey-algorithm",
		"unsupported-ds-digest-type", "stale-answer", "forged-answer",
		"dnssec-indeterminate", "dnssec-bogus", "signature-expired",
		"signature-not-yet-valid", "dnskey-missing", "rrsigs-missing",
		"no-zone-key-bit-set", "nsec-missing", "cached-error",
		"not-ready", "blocked", "censored", "filtered", "prohibited",
		"stale-nxdomain-answer", "not-authoritative", "not-supported",
		"no-reachable-authority", "network-error", "invalid-data",
	};

	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
		return "other";
	return names[code];
}

static void
add_name(struct tlspolicy_host *h, const char *name)
{
	if (name == NULL || name[0] == '\0' || h->nnames >= TLSPOLICY_NAMES_MAX)
		return;
	for (size_t i = 0; i < h->nnames; i++)
		if (strcasecmp(h->names[i], name) == 0)
			return;
	h->names[h->nnames++] = xstrdup(name);
}

static void
copy_dane(const struct dane_lookup *src, struct dane_lookup *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->ede = -1;
	if (src == NULL)
		return;
	if (src->status == DANE_RECORDS) {
		dane_lookup_from_records(src->base_domain, src->rec, src->nrec,
		    dst);
		/* keep the unusable ones' text for the report */
		for (size_t i = 0; i < dst->ntext; i++)
			free(dst->text[i]);
		free(dst->text);
		dst->text = xreallocarray(NULL, src->ntext > 0 ? src->ntext : 1,
		    sizeof(char *));
		for (size_t i = 0; i < src->ntext; i++)
			dst->text[i] = xstrdup(src->text[i]);
		dst->ntext = src->ntext;
		dst->nunusable = src->nunusable;
		return;
	}
	dst->status = src->status;
	dst->base_domain = src->base_domain != NULL ?
	    xstrdup(src->base_domain) : NULL;
	dst->dnssec_error = src->dnssec_error;
	dst->ede = src->ede;
	dst->why = src->why;
}

/* Spec 5.3 step 4: DANE-TA names (RFC 7672 3.2.3). */
static void
dane_names(const struct tlspolicy_dest *d, const char *host,
    const char *expanded_host, struct tlspolicy_host *h)
{
	add_name(h, h->dane.base_domain);
	if (!d->have_mx) {
		if (expanded_host != NULL)
			add_name(h, host);
		return;
	}
	add_name(h, host);
	add_name(h, d->domain);
	add_name(h, d->expanded_domain);
}

void
tlspolicy_host_decide(const struct tlspolicy_dest *d, const char *host,
    const char *expanded_host, const struct dane_lookup *tlsa, int ede,
    struct tlsrpt_result *domain_report, struct tlspolicy_host *out)
{
	bool tls_no = d->requiretls == TLSPOLICY_REQUIRETLS_NO;
	bool dane_records, dane_usable;

	memset(out, 0, sizeof(*out));
	out->action = TLSPOLICY_CONNECT;
	out->host = xstrdup(host);
	out->sni = xstrdup(host);
	out->ignore_verify = tls_no;
	out->requiretls = d->requiretls == TLSPOLICY_REQUIRETLS_YES;
	copy_dane(tlsa, &out->dane);

	/* spec 5.2: MX hosts not in an enforced policy are skipped; a
	 * testing policy only reports. */
	if ((sts_enforce(d) || sts_testing(d)) &&
	    !mtasts_policy_match_mx(&d->sts->policy, host)) {
		if (domain_report != NULL)
			tlsrpt_result_failure(domain_report,
			    TLSRPT_VALIDATION_FAILURE,
			    "mtasts-policy-mx-mismatch", NULL, host, NULL, NULL);
		if (sts_enforce(d) && !tls_no) {
			out->action = TLSPOLICY_SKIP;
			out->why = "mx host does not match mta-sts policy";
			tlsrpt_result_init(&out->report, TLSRPT_POLICY_NONE, host,
			    d->domain, true);
			return;
		}
	}
	out->sts_testing = sts_testing(d);

	/* spec 5.3 step 3/4: the host's TLS report policy. */
	if (tlsa == NULL || tlsa->status == DANE_NONE) {
		const char *base = tlsa != NULL && tlsa->base_domain != NULL ?
		    tlsa->base_domain : host;

		tlsrpt_result_init(&out->report, TLSRPT_POLICY_NONE, base,
		    d->domain, true);
		if (tlsa == NULL && ede >= 0) {
			char reason[80];

			snprintf(reason, sizeof(reason),
			    "dns-extended-error-%d-%s", ede,
			    tlspolicy_ede_name(ede));
			tlsrpt_result_failure(&out->report,
			    TLSRPT_VALIDATION_FAILURE, reason, NULL, host, NULL,
			    NULL);
		}
	} else {
		tlsrpt_result_init(&out->report, TLSRPT_POLICY_TLSA,
		    tlsa->base_domain != NULL ? tlsa->base_domain : host,
		    d->domain, true);
		for (size_t i = 0; i < tlsa->ntext; i++)
			tlsrpt_result_add_string(&out->report, tlsa->text[i]);
	}
	if (tlsa != NULL && tlsa->status == DANE_TEMPERROR) {
		tlsrpt_result_failure(&out->report, tlsa->dnssec_error ?
		    TLSRPT_DNSSEC_INVALID : TLSRPT_TLSA_INVALID, "", NULL, host,
		    NULL, NULL);
		if (!tls_no) {
			out->action = TLSPOLICY_FAIL_TEMP;
			out->why = "dane required but tlsa lookup failed";
			return;
		}
	}
	dane_records = tlsa != NULL && tlsa->status == DANE_RECORDS;
	dane_usable = dane_records && tlsa->nrec > 0;

	/* spec 5.3 step 5, RFC 8689 5: REQUIRETLS needs a mechanism. */
	if (out->requiretls && !dane_usable && !sts_enforce(d)) {
		out->action = TLSPOLICY_FAIL_PERM;
		out->code = 554;
		out->ecode = "5.7.30";
		out->why = "missing required tls verification mechanism";
		return;
	}

	/* spec 5.3 step 7: TLS mode. RFC 8461 2: with DANE, MTA-STS
	 * failures do not influence the outcome. */
	out->tls_required = dane_records || sts_enforce(d) || out->requiretls;
	out->verify_dane = dane_usable;
	out->verify_pkix = !dane_usable && sts_enforce(d);
	if (dane_usable) {
		dane_names(d, host, expanded_host, out);
		if (out->nnames > 0) {
			free(out->sni);
			out->sni = xstrdup(out->names[0]);
		}
	}

	/* spec 5.4: plaintext only without a policy that requires TLS, not
	 * for DMARC reports; always with TLS-Required: No. */
	out->plaintext_fallback = tls_no ||
	    (!out->tls_required && !d->is_dmarc_report);
}

void
tlspolicy_host_release(struct tlspolicy_host *h)
{
	if (h == NULL)
		return;
	free(h->host);
	free(h->sni);
	for (size_t i = 0; i < h->nnames; i++)
		free(h->names[i]);
	dane_lookup_release(&h->dane);
	tlsrpt_result_release(&h->report);
	memset(h, 0, sizeof(*h));
}

struct tlspolicy_trust {
	gnutls_x509_trust_list_t tl;
};

struct tlspolicy_trust *
tlspolicy_trust_new(const char *const *ca_files, size_t nca_files,
    bool no_system, struct buf *err)
{
	struct tlspolicy_trust *t = xcalloc(1, sizeof(*t));
	int rc;

	if (gnutls_x509_trust_list_init(&t->tl, 0) < 0) {
		buf_adds(err, "tls trust: cannot initialise");
		free(t);
		return NULL;
	}
	if (!no_system) {
		rc = gnutls_x509_trust_list_add_system_trust(t->tl, 0, 0);
		if (rc < 0) {
			buf_addf(err, "tls trust: system roots: %s",
			    gnutls_strerror(rc));
			goto fail;
		}
	}
	for (size_t i = 0; i < nca_files; i++) {
		rc = gnutls_x509_trust_list_add_trust_file(t->tl, ca_files[i],
		    NULL, GNUTLS_X509_FMT_PEM, 0, 0);
		if (rc <= 0) {
			buf_addf(err, "%s: no certificates loaded", ca_files[i]);
			goto fail;
		}
	}
	return t;
fail:
	tlspolicy_trust_free(t);
	return NULL;
}

void
tlspolicy_trust_free(struct tlspolicy_trust *t)
{
	if (t == NULL)
		return;
	gnutls_x509_trust_list_deinit(t->tl, 1);
	free(t);
}

/* RFC 8461 4.2 / RFC 8460 4.3: PKIX verification with a classified
 * failure. Returns true when the chain verifies and names host. */
static bool
pkix_check(const struct tlspolicy_trust *t, const char *host,
    const struct span *chain, size_t nchain, const char **type,
    const char **reason)
{
	gnutls_x509_crt_t crts[TLSPOLICY_CHAIN_MAX];
	gnutls_typed_vdata_st vd;
	unsigned status = 0;
	size_t n = 0;
	bool ok = false;

	*type = TLSRPT_VALIDATION_FAILURE;
	*reason = "";
	if (t == NULL) {
		*type = TLSRPT_CERT_NOT_TRUSTED;
		*reason = "no-system-roots";
		return false;
	}
	for (size_t i = 0; i < nchain && i < TLSPOLICY_CHAIN_MAX; i++) {
		gnutls_datum_t der = { (unsigned char *)chain[i].p,
			(unsigned)chain[i].len };

		if (chain[i].len > UINT32_MAX ||
		    gnutls_x509_crt_init(&crts[n]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[n], &der,
		    GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[n]);
			break;
		}
		n++;
	}
	if (n == 0) {
		*reason = "no-certificate";
		return false;
	}
	memset(&vd, 0, sizeof(vd));
	vd.type = GNUTLS_DT_DNS_HOSTNAME;
	vd.data = (unsigned char *)host;
	vd.size = 0; /* NUL-terminated */
	if (gnutls_x509_trust_list_verify_crt2(t->tl, crts, (unsigned)n, &vd, 1,
	    0, &status, NULL) < 0) {
		*reason = "verify-error";
		goto out;
	}
	if (status == 0) {
		ok = true;
	} else if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED)) {
		*type = TLSRPT_CERT_EXPIRED;
	} else if (status & GNUTLS_CERT_SIGNER_NOT_CA) {
		*type = TLSRPT_CERT_NOT_TRUSTED;
		*reason = "not-authorized-to-sign";
	} else if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND |
	    GNUTLS_CERT_INSECURE_ALGORITHM)) {
		*type = TLSRPT_CERT_NOT_TRUSTED;
	} else if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
		*type = TLSRPT_CERT_HOST_MISMATCH;
	}
out:
	for (size_t i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return ok;
}

void
tlspolicy_verify(const struct tlspolicy_host *h,
    const struct tlspolicy_trust *trust, const struct span *chain,
    size_t nchain, struct tlspolicy_verdict *out)
{
	const char *pkix_type = NULL, *pkix_reason = "";
	struct dane_verdict dv;

	memset(out, 0, sizeof(*out));
	out->pkix_ok = pkix_check(trust, h->host, chain, nchain, &pkix_type,
	    &pkix_reason);
	if (h->verify_dane) {
		const char *const *names = (const char *const *)h->names;

		dane_verify(&h->dane, chain, nchain, names, h->nnames, &dv);
		out->dane_ok = dv.verified;
		out->ok = dv.verified;
		if (!dv.verified) {
			out->result_type = TLSRPT_VALIDATION_FAILURE;
			snprintf(out->reason, sizeof(out->reason), "%s",
			    dv.errors ? "dane-no-match+errors" : "dane-no-match");
			out->why = dv.why;
		}
	} else if (h->verify_pkix) {
		out->ok = out->pkix_ok;
		if (!out->pkix_ok) {
			out->result_type = pkix_type;
			snprintf(out->reason, sizeof(out->reason), "%s",
			    pkix_reason);
			out->why = "pkix verification failed";
		}
	} else {
		out->ok = true;
		if (h->dane.status == DANE_RECORDS && h->dane.nrec == 0) {
			/* spec 5.3 step 4: required TLS, nothing to verify. */
			out->result_type = TLSRPT_TLSA_INVALID;
			snprintf(out->reason, sizeof(out->reason),
			    "all-unusable-records+ignored");
			out->why = "all tlsa records unusable";
		} else if (h->sts_testing && !out->pkix_ok) {
			out->result_type = pkix_type;
			snprintf(out->reason, sizeof(out->reason), "%s",
			    pkix_reason);
			out->why = "pkix failed for mta-sts testing policy";
		}
	}
	if (h->ignore_verify)
		out->ok = true; /* RFC 8689 5: recorded, not enforced */
}

void
tlspolicy_report_tls(struct tlsrpt_result *domain_report,
    struct tlsrpt_result *host_report, const char *result_type,
    const char *reason, const struct tlspolicy_peer *peer)
{
	struct tlspolicy_peer none = { NULL, NULL, NULL, NULL };
	struct tlsrpt_result *rs[2] = { domain_report, host_report };

	if (peer == NULL)
		peer = &none;
	for (size_t i = 0; i < 2; i++) {
		if (rs[i] == NULL)
			continue;
		if (result_type == NULL)
			tlsrpt_result_success(rs[i]);
		else
			tlsrpt_result_failure(rs[i], result_type, reason,
			    peer->sending_ip, peer->receiving_mx,
			    peer->receiving_helo, peer->receiving_ip);
	}
}
