/*
 * sasl_name.c: user names in SASL messages: RFC 4616 2 (UTF-8, no NUL),
 * RFC 5802 5.1 (saslname escaping, names prepared before use) and
 * spec/imap.md 4.1 (user and authzid must already be NFC). Normal form is
 * checked with PRECIS OpaqueString (RFC 8265 4.2) from gnutls, which maps
 * non-ASCII spaces, applies NFC and refuses unassigned and control code
 * points: a name that changes under it is refused. Input is from
 * unauthenticated peers. Pure; any thread.
 */
#include <gnutls/gnutls.h>
#include <string.h>

#include "lib/buf.h"
#include "sasl/sasl_int.h"
#include "lib/banned.h"

static bool
has_control(struct span s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (c < 0x20 || c == 0x7f)
			return true;
		/* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8. */
		if (c == 0xc2 && i + 1 < s.len &&
		    (unsigned char)s.p[i + 1] >= 0x80 &&
		    (unsigned char)s.p[i + 1] <= 0x9f)
			return true;
	}
	return false;
}

static bool
is_ascii(struct span s)
{
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] >= 0x80)
			return false;
	return true;
}

bool
sasl_name_valid(struct span name, bool need_normal)
{
	gnutls_datum_t norm = { NULL, 0 };
	bool ok;

	if (name.len == 0 || name.len > SASL_USER_MAX ||
	    !utf8_valid(name.p, name.len) || has_control(name))
		return false;
	/* Printable ASCII is invariant under OpaqueString. */
	if (!need_normal || is_ascii(name))
		return true;
	if (gnutls_utf8_password_normalize((const unsigned char *)name.p,
	        (unsigned)name.len, &norm, 0) != 0)
		return false;
	ok = norm.size == name.len && memcmp(norm.data, name.p, name.len) == 0;
	gnutls_free(norm.data);
	return ok;
}

void
sasl_name_escape(struct span name, struct buf *out)
{
	for (size_t i = 0; i < name.len; i++) {
		if (name.p[i] == ',')
			buf_adds(out, "=2C");
		else if (name.p[i] == '=')
			buf_adds(out, "=3D");
		else
			buf_addc(out, name.p[i]);
	}
}

/* RFC 5802 7: saslname = 1*(value-safe-char / "=2C" / "=3D"); "=" followed
 * by anything else is invalid-username-encoding. */
int
sasl_name_unescape(struct span in, struct buf *out)
{
	for (size_t i = 0; i < in.len; i++) {
		if (in.p[i] == ',' || in.p[i] == '\0')
			return -1;
		if (in.p[i] != '=') {
			buf_addc(out, in.p[i]);
			continue;
		}
		if (in.len - i < 3)
			return -1;
		if (in.p[i + 1] == '2' && in.p[i + 2] == 'C')
			buf_addc(out, ',');
		else if (in.p[i + 1] == '3' && in.p[i + 2] == 'D')
			buf_addc(out, '=');
		else
			return -1;
		i += 2;
	}
	return buf_failed(out) ? -1 : 0;
}
