/*
 * sasl_password.c: password preparation for SCRAM (RFC 5802 2.2
 * Normalize(), with PRECIS OpaqueString, RFC 8265 4.2, in place of
 * SASLprep as RFC 8265 allows) using gnutls. The password is the user's
 * secret: copies made here are wiped. Pure; any thread.
 */
#include <gnutls/gnutls.h>
#include <string.h>

#include "lib/buf.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

int
sasl_password_normalize(struct span password, struct buf *out, const char **why)
{
	gnutls_datum_t norm = { NULL, 0 };
	int rc = -1;

	if (password.len == 0 || password.len > SASL_PASSWORD_MAX) {
		*why = "password empty or too long";
		return -1;
	}
	if (!utf8_valid(password.p, password.len) ||
	    memchr(password.p, '\0', password.len) != NULL) {
		*why = "password is not valid UTF-8";
		return -1;
	}
	if (gnutls_utf8_password_normalize((const unsigned char *)password.p,
	        (unsigned)password.len, &norm, 0) != 0) {
		*why = "password has characters PRECIS OpaqueString refuses";
		return -1;
	}
	if (buf_add(out, norm.data, norm.size) == -1)
		*why = "password too long";
	else
		rc = 0;
	explicit_bzero(norm.data, norm.size);
	gnutls_free(norm.data);
	return rc;
}
