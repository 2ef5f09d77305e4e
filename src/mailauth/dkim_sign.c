/*
 * dkim_sign.c: DKIM signing (RFC 6376 3.5, 3.7, 5; RFC 8463) with RSA and
 * ed25519 private keys from PKCS#8 PEM files, the default header list and
 * oversigning of spec auth.md section 4.3; key generation and the key
 * record text for "mox dkim".
 *
 * Input is our own submitted message and our own keys. Pure apart from
 * reading key files; any thread. Keys are wiped when freed.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_int.h"
#include "lib/banned.h"

#define KEY_FILE_MAX (64 * 1024) /* bytes of a PEM key file */

struct dkim_key {
	gnutls_privkey_t k;
	enum dkim_keytype type;
	unsigned bits;
};

const char *const dkim_default_headers[] = { "From", "To", "Cc", "Bcc",
	"Reply-To", "References", "In-Reply-To", "Subject", "Date",
	"Message-Id", "Content-Type" };
const size_t dkim_default_nheaders = ARRAY_LEN(dkim_default_headers);

int
dkim_key_load_pem(struct span pem, struct dkim_key **out, struct buf *err)
{
	gnutls_datum_t d = { (unsigned char *)pem.p, (unsigned)pem.len };
	gnutls_privkey_t k = NULL;
	unsigned bits = 0;
	int alg, e;

	if (pem.len > KEY_FILE_MAX) {
		buf_adds(err, "private key file too large");
		return -1;
	}
	if (gnutls_privkey_init(&k) < 0) {
		buf_adds(err, "cannot allocate private key");
		return -1;
	}
	e = gnutls_privkey_import_x509_raw(k, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (e < 0) {
		buf_addf(err, "parsing private key: %s", gnutls_strerror(e));
		goto bad;
	}
	alg = gnutls_privkey_get_pk_algorithm(k, &bits);
	if (alg != GNUTLS_PK_RSA && alg != GNUTLS_PK_EDDSA_ED25519) {
		buf_adds(err, "private key is neither rsa nor ed25519");
		goto bad;
	}
	if (alg == GNUTLS_PK_RSA && bits < DKIM_RSA_MIN_BITS) {
		/* RFC 8301 3.2: verifiers reject smaller keys */
		buf_addf(err, "rsa key of %u bits, need at least %u", bits,
		    DKIM_RSA_MIN_BITS);
		goto bad;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->k = k;
	(*out)->type = alg == GNUTLS_PK_RSA ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
	(*out)->bits = bits;
	return 0;
bad:
	gnutls_privkey_deinit(k);
	return -1;
}

int
dkim_key_load_file(const char *path, struct dkim_key **out, struct buf *err)
{
	struct buf pem;
	int rc = -1;

	buf_init(&pem, KEY_FILE_MAX);
	if (io_read_file(path, &pem, err) == -1)
		goto out;
	if (dkim_key_load_pem(span_of_buf(&pem), out, err) == -1) {
		buf_addf(err, " (%s)", path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(pem.data, pem.len);
	buf_release(&pem);
	return rc;
}

void
dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return;
	gnutls_privkey_deinit(k->k); /* gnutls wipes the key material */
	free(k);
}

enum dkim_keytype
dkim_key_type(const struct dkim_key *k)
{
	return k->type;
}

int
dkim_key_generate(enum dkim_keytype t, struct buf *out, struct buf *err)
{
	gnutls_x509_privkey_t k = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	int e, rc = -1;

	if (gnutls_x509_privkey_init(&k) < 0) {
		buf_adds(err, "cannot allocate private key");
		return -1;
	}
	if (t == DKIM_KEY_RSA)
		e = gnutls_x509_privkey_generate(k, GNUTLS_PK_RSA,
		    DKIM_RSA_GEN_BITS, 0);
	else
		e = gnutls_x509_privkey_generate(k, GNUTLS_PK_EDDSA_ED25519,
		    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0);
	if (e < 0) {
		buf_addf(err, "generating key: %s", gnutls_strerror(e));
		goto out;
	}
	e = gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, NULL,
	    GNUTLS_PKCS_PLAIN, &pem);
	if (e < 0) {
		buf_addf(err, "exporting key: %s", gnutls_strerror(e));
		goto out;
	}
	if (buf_add(out, pem.data, pem.size) == -1) {
		buf_adds(err, "key does not fit");
		goto out;
	}
	rc = 0;
out:
	if (pem.data != NULL) {
		explicit_bzero(pem.data, pem.size);
		gnutls_free(pem.data);
	}
	gnutls_x509_privkey_deinit(k);
	return rc;
}

/* RFC 6376 3.6.1 (rsa: SubjectPublicKeyInfo) and RFC 8463 4.2 (ed25519:
 * the raw public key). */
int
dkim_key_txt(const struct dkim_key *k, struct buf *out, struct buf *err)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t d = { NULL, 0 };
	int e, rc = -1;

	if (gnutls_pubkey_init(&pub) < 0) {
		buf_adds(err, "cannot allocate public key");
		return -1;
	}
	e = gnutls_pubkey_import_privkey(pub, k->k, 0, 0);
	if (e < 0) {
		buf_addf(err, "public key: %s", gnutls_strerror(e));
		goto out;
	}
	if (k->type == DKIM_KEY_RSA)
		e = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &d);
	else
		e = gnutls_pubkey_export_ecc_raw(pub, NULL, &d, NULL);
	if (e < 0) {
		buf_addf(err, "exporting public key: %s", gnutls_strerror(e));
		goto out;
	}
	buf_addf(out, "v=DKIM1;k=%s;p=",
	    k->type == DKIM_KEY_RSA ? "rsa" : "ed25519");
	dkim_b64_encode(d.data, d.size, out);
	rc = buf_failed(out) ? -1 : 0;
	if (rc == -1)
		buf_adds(err, "key record does not fit");
out:
	gnutls_free(d.data);
	gnutls_pubkey_deinit(pub);
	return rc;
}

/* Appends text to a field being folded at DKIM_FOLD_WIDTH. */
struct folder {
	struct buf *out;
	size_t col;
};

/* Add token; before it a space, or a fold when it would pass the width. */
static void
fold_add(struct folder *f, const char *tok, size_t n, bool space)
{
	if (f->col > 1 && f->col + n + (space ? 1 : 0) > DKIM_FOLD_WIDTH) {
		buf_add(f->out, "\r\n\t", 3);
		f->col = 1;
	} else if (space) {
		buf_addc(f->out, ' ');
		f->col++;
	}
	buf_add(f->out, tok, n);
	f->col += n;
}

static void
fold_tag(struct folder *f, const char *fmt_name, const char *value)
{
	struct buf t;

	buf_init(&t, BUF_NOMAX);
	buf_addf(&t, "%s=%s;", fmt_name, value);
	fold_add(f, t.data, t.len, true);
	buf_release(&t);
}

/* Wrap text anywhere (b= and bh= values, where whitespace is ignored). */
static void
fold_wrap(struct folder *f, const char *p, size_t n)
{
	while (n > 0) {
		size_t room = f->col < DKIM_FOLD_WIDTH ?
		    DKIM_FOLD_WIDTH - f->col : 0;

		if (room == 0) {
			buf_add(f->out, "\r\n\t", 3);
			f->col = 1;
			continue;
		}
		if (room > n)
			room = n;
		buf_add(f->out, p, room);
		f->col += room;
		p += room;
		n -= room;
	}
}

static size_t
count_fields(const struct dkim_hlist *hl, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < hl->n; i++)
		if (span_eq_ci(hl->v[i].name, name))
			n++;
	return n;
}

static int
sign_digest(const struct dkim_sign_selector *sel, const uint8_t *dig,
    size_t diglen, gnutls_datum_t *sig)
{
	gnutls_datum_t h = { (unsigned char *)dig, (unsigned)diglen };

	if (sel->key->type == DKIM_KEY_ED25519)
		/* RFC 8463 3: pure ed25519 over the SHA-256 digest */
		return gnutls_privkey_sign_data2(sel->key->k,
		    GNUTLS_SIGN_EDDSA_ED25519, 0, &h, sig);
	return gnutls_privkey_sign_hash2(sel->key->k,
	    sel->hash == DKIM_HASH_SHA1 ? GNUTLS_SIGN_RSA_SHA1 :
	    GNUTLS_SIGN_RSA_SHA256, 0, &h, sig);
}

static int
sign_one(const struct dkim_sign_selector *sel, const char *identity,
    int64_t now, struct dkim_hlist *hl, struct span body, struct buf *out,
    const char **why)
{
	const char *const *names = sel->headers != NULL ? sel->headers :
	    dkim_default_headers;
	size_t nnames = sel->headers != NULL ? sel->nheaders :
	    dkim_default_nheaders;
	char **hnames = NULL;
	size_t nh = 0, diglen, start = out->len;
	uint8_t dig[32];
	struct buf canon, hh, tmp;
	struct folder f = { out, 0 };
	gnutls_datum_t sig = { NULL, 0 };
	int rc = -1;

	buf_init(&canon, DKIM_MSG_MAX);
	buf_init(&hh, DKIM_MSG_MAX);
	buf_init(&tmp, BUF_NOMAX);
	if (sel->key->type == DKIM_KEY_ED25519 && sel->hash != DKIM_HASH_SHA256) {
		*why = "ed25519 signs with sha256 only";
		goto out;
	}
	/* Spec 4.3: each name once per occurrence, plus once more when
	 * oversigning, so adding such a field later breaks the signature. */
	for (size_t i = 0; i < nnames; i++) {
		size_t c = count_fields(hl, names[i]) + (sel->oversign ? 1 : 0);

		for (size_t j = 0; j < c; j++) {
			hnames = xreallocarray(hnames, nh + 1, sizeof(char *));
			hnames[nh++] = (char *)names[i];
		}
	}
	if (dkim_canon_body(body, sel->body_relaxed, &canon) == -1) {
		*why = "message too large";
		goto out;
	}
	diglen = dkim_digest(sel->hash, canon.data, canon.len, dig);

	buf_adds(out, "DKIM-Signature:");
	f.col = out->len - start;
	fold_tag(&f, "v", "1");
	fold_tag(&f, "d", sel->domain);
	fold_tag(&f, "s", sel->selector);
	if (identity != NULL)
		fold_tag(&f, "i", identity);
	fold_tag(&f, "a", sel->key->type == DKIM_KEY_ED25519 ?
	    "ed25519-sha256" : sel->hash == DKIM_HASH_SHA1 ? "rsa-sha1" :
	    "rsa-sha256");
	if (sel->header_relaxed || sel->body_relaxed) {
		buf_addf(&tmp, "%s/%s", sel->header_relaxed ? "relaxed" :
		    "simple", sel->body_relaxed ? "relaxed" : "simple");
		fold_tag(&f, "c", tmp.data);
	}
	buf_reset(&tmp);
	buf_addf(&tmp, "%lld", (long long)now);
	fold_tag(&f, "t", tmp.data);
	if (sel->expiration > 0) {
		buf_reset(&tmp);
		buf_addf(&tmp, "%lld", (long long)(now + sel->expiration));
		fold_tag(&f, "x", tmp.data);
	}
	for (size_t i = 0; i < nh; i++) {
		buf_reset(&tmp);
		buf_addf(&tmp, "%s%s%s", i == 0 ? "h=" : "", hnames[i],
		    i + 1 == nh ? ";" : ":");
		fold_add(&f, tmp.data, tmp.len, i == 0);
	}
	buf_reset(&tmp);
	dkim_b64_encode(dig, diglen, &tmp);
	fold_add(&f, "bh=", 3, true);
	fold_wrap(&f, tmp.data, tmp.len);
	fold_add(&f, ";", 1, false);
	fold_add(&f, "b=", 2, true);
	if (buf_failed(out)) {
		*why = "signature header does not fit";
		goto out;
	}

	/* RFC 6376 3.7: the signed fields, then this field with empty b= */
	if (dkim_hash_headers(hl, hnames, nh, sel->header_relaxed, &hh) ==
	    -1) {
		*why = "message too large";
		goto out;
	}
	buf_reset(&tmp);
	buf_add(&tmp, out->data + start, out->len - start);
	buf_add(&tmp, "\r\n", 2);
	dkim_canon_header(span_of_buf(&tmp), sel->header_relaxed, &hh);
	buf_truncate(&hh, hh.len - 2);
	diglen = dkim_digest(sel->hash, hh.data, hh.len, dig);
	if (sign_digest(sel, dig, diglen, &sig) < 0) {
		*why = "signing failed";
		goto out;
	}
	buf_reset(&tmp);
	dkim_b64_encode(sig.data, sig.size, &tmp);
	fold_wrap(&f, tmp.data, tmp.len);
	buf_add(out, "\r\n", 2);
	if (buf_failed(out) || buf_failed(&hh)) {
		*why = "signature header does not fit";
		goto out;
	}
	rc = 0;
out:
	if (rc == -1 && !buf_failed(out))
		buf_truncate(out, start);
	gnutls_free(sig.data);
	free(hnames);
	buf_release(&canon);
	buf_release(&hh);
	buf_release(&tmp);
	return rc;
}

int
dkim_sign(const struct dkim_sign_selector *sels, size_t n,
    const char *identity, int64_t now, struct span msg, struct buf *out,
    const char **why)
{
	struct dkim_hlist hl = { NULL, 0 };
	struct span body;
	struct buf m;
	int rc = -1;

	buf_init(&m, DKIM_MSG_MAX);
	if (dkim_crlf(msg, &m) == -1) {
		*why = "message too large";
		goto out;
	}
	if (dkim_hlist_parse(span_of_buf(&m), &hl, &body, why) == -1)
		goto out;
	/* RFC 6376 5.4.1 and spec 4.3: exactly one From */
	if (count_fields(&hl, "From") != 1) {
		*why = "message must have exactly one from header";
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (sign_one(&sels[i], identity, now, &hl, body, out, why) == -1)
			goto out;
	rc = 0;
out:
	dkim_hlist_release(&hl);
	buf_release(&m);
	return rc;
}
