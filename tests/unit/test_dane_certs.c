/*
 * test_dane_certs.c: certificates made at test time for test_dane and
 * test_tlspolicy: a CA, and leaves it signs (or self-signed) for given
 * names and validity. Test helper only; not part of the library.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "lib/banned.h"

struct testcert {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t der; /* DER of crt */
	gnutls_datum_t pem;
};

int testcert_make(struct testcert *tc, const char *const *names,
    size_t nnames, bool ca, const struct testcert *issuer, long from_secs,
    long until_secs);
void testcert_free(struct testcert *tc);

static unsigned char serial_counter = 1;

/* Make a certificate for names (first also CN), valid from now+from_secs
 * to now+until_secs, signed by issuer or self-signed. Returns 0 or -1. */
int
testcert_make(struct testcert *tc, const char *const *names, size_t nnames,
    bool ca, const struct testcert *issuer, long from_secs, long until_secs)
{
	time_t now = time(NULL);
	unsigned char serial[2] = { 0x11, serial_counter++ };
	int rc;

	memset(tc, 0, sizeof(*tc));
	rc = gnutls_x509_privkey_init(&tc->key);
	if (rc >= 0)
		rc = gnutls_x509_privkey_generate(tc->key, GNUTLS_PK_ECDSA,
		    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_init(&tc->crt);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(tc->crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(tc->crt, serial, sizeof(serial));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(tc->crt,
		    GNUTLS_OID_X520_COMMON_NAME, 0, names[0], strlen(names[0]));
	for (size_t i = 0; rc >= 0 && !ca && i < nnames; i++)
		rc = gnutls_x509_crt_set_subject_alt_name(tc->crt,
		    GNUTLS_SAN_DNSNAME, names[i], strlen(names[i]),
		    i == 0 ? GNUTLS_FSAN_SET : GNUTLS_FSAN_APPEND);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(tc->crt,
		    now + from_secs);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(tc->crt,
		    now + until_secs);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(tc->crt, ca ? 1 : 0,
		    -1);
	if (rc >= 0 && ca)
		rc = gnutls_x509_crt_set_key_usage(tc->crt,
		    GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key(tc->crt, tc->key);
	if (rc >= 0) {
		unsigned char kid[64];
		size_t kidlen = sizeof(kid);

		rc = gnutls_x509_crt_get_key_id(tc->crt, 0, kid, &kidlen);
		if (rc >= 0)
			rc = gnutls_x509_crt_set_subject_key_id(tc->crt, kid,
			    kidlen);
	}
	if (rc >= 0)
		rc = gnutls_x509_crt_sign2(tc->crt,
		    issuer != NULL ? issuer->crt : tc->crt,
		    issuer != NULL ? issuer->key : tc->key, GNUTLS_DIG_SHA256, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_export2(tc->crt, GNUTLS_X509_FMT_DER,
		    &tc->der);
	if (rc >= 0)
		rc = gnutls_x509_crt_export2(tc->crt, GNUTLS_X509_FMT_PEM,
		    &tc->pem);
	return rc >= 0 ? 0 : -1;
}

void
testcert_free(struct testcert *tc)
{
	if (tc->crt != NULL)
		gnutls_x509_crt_deinit(tc->crt);
	if (tc->key != NULL)
		gnutls_x509_privkey_deinit(tc->key);
	gnutls_free(tc->der.data);
	gnutls_free(tc->pem.data);
	memset(tc, 0, sizeof(*tc));
}
