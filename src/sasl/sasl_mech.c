/*
 * sasl_mech.c: the table of SASL mechanisms (RFC 4422 3.1 names) and
 * channel binding types (RFC 5056 7: RFC 5929 tls-unique, RFC 9266
 * tls-exporter). Static data only; any thread.
 */
#include <stddef.h>
#include <string.h>

#include "lib/compat.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

static const struct sasl_mech_info mechs[SASL_MECH_COUNT] = {
	{ "PLAIN", SASL_MECH_PLAIN, true, false, true },
	{ "LOGIN", SASL_MECH_LOGIN, true, false, false },
	{ "CRAM-MD5", SASL_MECH_CRAM_MD5, false, false, false },
	{ "SCRAM-SHA-1", SASL_MECH_SCRAM_SHA_1, false, false, true },
	{ "SCRAM-SHA-1-PLUS", SASL_MECH_SCRAM_SHA_1_PLUS, false, true, true },
	{ "SCRAM-SHA-256", SASL_MECH_SCRAM_SHA_256, false, false, true },
	{ "SCRAM-SHA-256-PLUS", SASL_MECH_SCRAM_SHA_256_PLUS, false, true,
	    true },
};

const struct sasl_mech_info *
sasl_mech_list(size_t *n_out)
{
	*n_out = ARRAY_LEN(mechs);
	return mechs;
}

const struct sasl_mech_info *
sasl_mech_info(enum sasl_mech m)
{
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++)
		if (mechs[i].mech == m)
			return &mechs[i];
	return &mechs[0];
}

/* RFC 4422 3.1: mechanism names are upper case; INTEROP: spec/smtp.md 5
 * allows accepting any case. */
int
sasl_mech_lookup(struct span name, enum sasl_mech *out)
{
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++) {
		if (span_eq_ci(name, mechs[i].name)) {
			*out = mechs[i].mech;
			return 0;
		}
	}
	return -1;
}

const char *
sasl_cb_name(enum sasl_cb_type t)
{
	switch (t) {
	case SASL_CB_NONE:
		return "";
	case SASL_CB_TLS_UNIQUE:
		return "tls-unique";
	case SASL_CB_TLS_EXPORTER:
		return "tls-exporter";
	}
	return "";
}

/* RFC 5056 7.1: binding type names are case-sensitive. */
int
sasl_cb_lookup(struct span name, enum sasl_cb_type *out)
{
	if (span_eq_cstr(name, "tls-unique")) {
		*out = SASL_CB_TLS_UNIQUE;
		return 0;
	}
	if (span_eq_cstr(name, "tls-exporter")) {
		*out = SASL_CB_TLS_EXPORTER;
		return 0;
	}
	return -1;
}
