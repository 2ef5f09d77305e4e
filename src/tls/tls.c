/*
 * tls.c: gnutls server and client sessions for mox-c. TLS 1.2 (RFC 5246)
 * and TLS 1.3 (RFC 8446) only; SNI (RFC 6066 3) selects among the
 * configured certificates; channel binding per RFC 9266 (tls-exporter)
 * and RFC 5929 3 (tls-unique); the client verifies per RFC 5280 and RFC
 * 6125 through gnutls. The peer is untrusted: everything it sends is
 * parsed by gnutls, we only compare the SNI name it asks for.
 *
 * Threads: a tls_server is read-only after creation and shared; a session
 * is used by one thread at a time.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/span.h"
#include "lib/xmalloc.h"
#include "tls/tls.h"

#include "lib/banned.h"

#define TLS_CERT_NAMES_MAX 100 /* names read from one certificate */
#define TLS_HANDSHAKE_DEFAULT_MS 60000

struct tls_cert {
	gnutls_certificate_credentials_t cred;
	char **names; /* lowercase DNS names and CN; may start with "*." */
	size_t nnames;
};

struct tls_server {
	struct tls_cert *certs;
	size_t ncerts;
	gnutls_priority_t prio;
	enum tls_sni_mode sni;
};

struct tls_session {
	gnutls_session_t g;
	struct tls_server *srv; /* NULL on the client side */
	gnutls_certificate_credentials_t client_cred; /* client side, owned */
	size_t send_pending; /* bytes given to a send that returned AGAIN */
	bool recv_wants_write; /* the last recv stopped on a full socket */
	char sni[TLS_NAME_MAX + 1];
	const char *why; /* reason of a refused SNI */
	/* tls_session_server_preread(): bytes read from the socket before
	 * the session existed, handed to gnutls before the socket. */
	int fd;
	unsigned char *pre;
	size_t pre_len, pre_off;
};

int
tls_parse_min_version(const char *s, enum tls_version *out, const char **why)
{
	if (s == NULL || s[0] == '\0' || strcmp(s, "TLSv1.2") == 0) {
		*out = TLS_VERSION_1_2;
		return 0;
	}
	if (strcmp(s, "TLSv1.3") == 0) {
		*out = TLS_VERSION_1_3;
		return 0;
	}
	if (strcmp(s, "TLSv1.0") == 0 || strcmp(s, "TLSv1.1") == 0)
		*why = "TLS.MinVersion: TLS versions before TLSv1.2 are not supported";
	else
		*why = "TLS.MinVersion: must be TLSv1.2 or TLSv1.3";
	return -1;
}

static const char *
priority_string(enum tls_version min, enum tls_version max)
{
	if (min == TLS_VERSION_1_3)
		return "NORMAL:-VERS-ALL:+VERS-TLS1.3";
	if (max == TLS_VERSION_1_2)
		return "NORMAL:-VERS-ALL:+VERS-TLS1.2";
	return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

static void
add_gnutls_err(struct buf *err, const char *what, const char *file, int rc)
{
	if (file != NULL)
		buf_addf(err, "%s: %s: %s", file, what, gnutls_strerror(rc));
	else
		buf_addf(err, "%s: %s", what, gnutls_strerror(rc));
}

static void
lower_ascii(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void
cert_add_name(struct tls_cert *c, const char *name, size_t len)
{
	char *n;

	if (len == 0 || len > TLS_NAME_MAX || c->nnames >= TLS_CERT_NAMES_MAX)
		return;
	n = xstrndup(name, len);
	lower_ascii(n);
	c->names = xreallocarray(c->names, c->nnames + 1, sizeof(*c->names));
	c->names[c->nnames++] = n;
}

/* Collect the DNS SANs and the CN of the leaf certificate of c. */
static int
cert_read_names(struct tls_cert *c, const char *file, struct buf *err)
{
	gnutls_datum_t raw = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	char name[TLS_NAME_MAX + 1];
	size_t len;
	unsigned type;
	int rc, ret = -1;

	rc = gnutls_certificate_get_crt_raw(c->cred, 0, 0, &raw);
	if (rc < 0) {
		add_gnutls_err(err, "reading certificate", file, rc);
		goto out;
	}
	rc = gnutls_x509_crt_init(&crt);
	if (rc >= 0)
		rc = gnutls_x509_crt_import(crt, &raw, GNUTLS_X509_FMT_DER);
	if (rc < 0) {
		add_gnutls_err(err, "parsing certificate", file, rc);
		goto out;
	}
	for (unsigned i = 0; i < TLS_CERT_NAMES_MAX; i++) {
		len = sizeof(name) - 1;
		rc = gnutls_x509_crt_get_subject_alt_name2(crt, i, name, &len,
		    &type, NULL);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (rc < 0)
			break;
		if (type == GNUTLS_SAN_DNSNAME)
			cert_add_name(c, name, strnlen(name, len));
	}
	len = sizeof(name) - 1;
	rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    0, name, &len);
	if (rc >= 0)
		cert_add_name(c, name, strnlen(name, len));
	ret = 0;
out:
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

/* RFC 6125 6.4.3: a wildcard matches exactly one leftmost label. */
static bool
name_matches(const char *pattern, const char *name)
{
	const char *dot;

	if (strcasecmp(pattern, name) == 0)
		return true;
	if (strncmp(pattern, "*.", 2) != 0)
		return false;
	dot = strchr(name, '.');
	if (dot == NULL || dot == name)
		return false;
	return strcasecmp(pattern + 1, dot) == 0;
}

static int
post_client_hello(gnutls_session_t g)
{
	struct tls_session *s = gnutls_session_get_ptr(g);
	struct tls_server *srv = s->srv;
	size_t len = sizeof(s->sni);
	unsigned type;
	int rc;

	s->sni[0] = '\0';
	rc = gnutls_server_name_get(g, s->sni, &len, &type, 0);
	if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER ||
	    (rc >= 0 && type == GNUTLS_NAME_DNS && (len >= sizeof(s->sni) ||
	    strnlen(s->sni, len) != len))) {
		/* A name we cannot hold or compare: never silently the
		 * default certificate where names must match. */
		s->sni[0] = '\0';
		if (srv->sni == TLS_SNI_STRICT) {
			s->why = "tls: unusable server name in client hello";
			return GNUTLS_E_UNRECOGNIZED_NAME;
		}
		return 0;
	}
	if (rc < 0 || type != GNUTLS_NAME_DNS) {
		s->sni[0] = '\0';
		return 0; /* no usable name: the first credentials stay */
	}
	s->sni[len] = '\0';
	for (size_t i = 0; i < srv->ncerts; i++)
		for (size_t j = 0; j < srv->certs[i].nnames; j++)
			if (name_matches(srv->certs[i].names[j], s->sni)) {
				gnutls_credentials_set(g, GNUTLS_CRD_CERTIFICATE,
				    srv->certs[i].cred);
				return 0;
			}
	if (srv->sni == TLS_SNI_STRICT) {
		s->why = "tls: no certificate for the requested server name";
		return GNUTLS_E_UNRECOGNIZED_NAME;
	}
	return 0;
}

struct tls_server *
tls_server_new(const struct tls_server_params *p, struct buf *err)
{
	struct tls_server *srv;
	enum tls_version min;
	const char *why = NULL;
	int rc;

	if (p->nkeycerts == 0) {
		buf_adds(err, "tls: no key/certificate pairs");
		return NULL;
	}
	if (tls_parse_min_version(p->min_version, &min, &why) == -1) {
		buf_adds(err, why);
		return NULL;
	}
	srv = xcalloc(1, sizeof(*srv));
	srv->sni = p->sni;
	srv->certs = xcalloc(p->nkeycerts, sizeof(*srv->certs));
	for (size_t i = 0; i < p->nkeycerts; i++) {
		struct tls_cert *c = &srv->certs[i];

		srv->ncerts++;
		rc = gnutls_certificate_allocate_credentials(&c->cred);
		if (rc < 0) {
			add_gnutls_err(err, "allocating credentials", NULL, rc);
			goto fail;
		}
		rc = gnutls_certificate_set_x509_key_file2(c->cred,
		    p->keycerts[i].cert_file, p->keycerts[i].key_file,
		    GNUTLS_X509_FMT_PEM, NULL, 0);
		if (rc < 0) {
			buf_addf(err, "%s, %s: loading key pair: %s",
			    p->keycerts[i].cert_file, p->keycerts[i].key_file,
			    gnutls_strerror(rc));
			goto fail;
		}
		if (cert_read_names(c, p->keycerts[i].cert_file, err) == -1)
			goto fail;
	}
	rc = gnutls_priority_init2(&srv->prio,
	    priority_string(min, TLS_VERSION_1_3), NULL, 0);
	if (rc < 0) {
		add_gnutls_err(err, "tls priority", NULL, rc);
		goto fail;
	}
	return srv;
fail:
	tls_server_free(srv);
	return NULL;
}

void
tls_server_free(struct tls_server *srv)
{
	if (srv == NULL)
		return;
	for (size_t i = 0; i < srv->ncerts; i++) {
		if (srv->certs[i].cred != NULL)
			gnutls_certificate_free_credentials(srv->certs[i].cred);
		for (size_t j = 0; j < srv->certs[i].nnames; j++)
			free(srv->certs[i].names[j]);
		free(srv->certs[i].names);
	}
	free(srv->certs);
	if (srv->prio != NULL)
		gnutls_priority_deinit(srv->prio);
	free(srv);
}

struct tls_session *
tls_session_server(struct tls_server *srv, int fd, const char **why)
{
	struct tls_session *s = xcalloc(1, sizeof(*s));
	int rc;

	s->srv = srv;
	rc = gnutls_init(&s->g, GNUTLS_SERVER | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL);
	if (rc < 0) {
		*why = gnutls_strerror(rc);
		free(s);
		return NULL;
	}
	rc = gnutls_priority_set(s->g, srv->prio);
	if (rc >= 0)
		rc = gnutls_credentials_set(s->g, GNUTLS_CRD_CERTIFICATE,
		    srv->certs[0].cred);
	if (rc < 0) {
		*why = gnutls_strerror(rc);
		tls_session_free(s);
		return NULL;
	}
	gnutls_session_set_ptr(s->g, s);
	gnutls_handshake_set_post_client_hello_function(s->g,
	    post_client_hello);
	gnutls_certificate_server_set_request(s->g, GNUTLS_CERT_IGNORE);
	/* Timeouts belong to the connection runtime, not gnutls. */
	gnutls_handshake_set_timeout(s->g, 0);
	gnutls_transport_set_int(s->g, fd);
	return s;
}

/* Transport of a session with pre-read bytes: those first, then the
 * socket. errno is left as recv()/send() set it for gnutls. */
static ssize_t
pre_pull(gnutls_transport_ptr_t p, void *data, size_t n)
{
	struct tls_session *s = p;
	ssize_t r;

	if (s->pre_off < s->pre_len) {
		size_t k = s->pre_len - s->pre_off;

		if (k > n)
			k = n;
		memcpy(data, s->pre + s->pre_off, k);
		s->pre_off += k;
		if (s->pre_off == s->pre_len) {
			free(s->pre);
			s->pre = NULL;
			s->pre_len = s->pre_off = 0;
		}
		return (ssize_t)k;
	}
	do
		r = recv(s->fd, data, n, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

static int
pre_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct tls_session *s = p;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	int rc;

	if (s->pre_off < s->pre_len)
		return 1;
	do
		rc = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 :
		    (int)ms);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static ssize_t
pre_push(gnutls_transport_ptr_t p, const void *data, size_t n)
{
	struct tls_session *s = p;
	ssize_t r;

	do
		r = send(s->fd, data, n, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}

struct tls_session *
tls_session_server_preread(struct tls_server *srv, int fd, const void *pre,
    size_t npre, const char **why)
{
	struct tls_session *s = tls_session_server(srv, fd, why);

	if (s == NULL)
		return NULL;
	s->fd = fd;
	if (npre > 0) {
		s->pre = xmalloc(npre);
		memcpy(s->pre, pre, npre);
		s->pre_len = npre;
	}
	gnutls_transport_set_ptr(s->g, s);
	gnutls_transport_set_pull_function(s->g, pre_pull);
	gnutls_transport_set_pull_timeout_function(s->g, pre_pull_timeout);
	gnutls_transport_set_push_function(s->g, pre_push);
	return s;
}

int
tls_session_handshake(struct tls_session *s, const char **why)
{
	int rc;

	for (int i = 0; i < 100; i++) {
		rc = gnutls_handshake(s->g);
		if (rc == GNUTLS_E_SUCCESS)
			return TLS_OK;
		if (rc == GNUTLS_E_AGAIN)
			return TLS_AGAIN;
		if (rc == GNUTLS_E_INTERRUPTED || gnutls_error_is_fatal(rc) == 0)
			continue;
		*why = s->why != NULL ? s->why : gnutls_strerror(rc);
		return TLS_ERR;
	}
	*why = "tls: handshake makes no progress";
	return TLS_ERR;
}

bool
tls_session_wants_write(const struct tls_session *s)
{
	return gnutls_record_get_direction(s->g) == 1;
}

int
tls_session_recv(struct tls_session *s, void *p, size_t n, size_t *got)
{
	ssize_t rc;

	*got = 0;
	s->recv_wants_write = false;
	for (int i = 0; i < 16; i++) {
		rc = gnutls_record_recv(s->g, p, n);
		if (rc > 0) {
			*got = (size_t)rc;
			return TLS_OK;
		}
		if (rc == 0)
			return TLS_EOF;
		if (rc == GNUTLS_E_AGAIN) {
			s->recv_wants_write = gnutls_record_get_direction(s->g) ==
			    1;
			return TLS_AGAIN;
		}
		if (rc == GNUTLS_E_INTERRUPTED)
			continue;
		/* INTEROP: many clients close TCP without close_notify. */
		if (rc == GNUTLS_E_PREMATURE_TERMINATION)
			return TLS_EOF;
		if (gnutls_error_is_fatal((int)rc) == 0)
			continue; /* e.g. a TLS 1.3 key update or ticket */
		return TLS_ERR;
	}
	return TLS_ERR;
}

int
tls_session_send(struct tls_session *s, const void *p, size_t n, size_t *sent)
{
	ssize_t rc;

	*sent = 0;
	for (;;) {
		if (s->send_pending > 0)
			rc = gnutls_record_send(s->g, NULL, 0);
		else
			rc = gnutls_record_send(s->g, p, n);
		if (rc == GNUTLS_E_AGAIN) {
			if (s->send_pending == 0)
				s->send_pending = n;
			return TLS_AGAIN;
		}
		if (rc == GNUTLS_E_INTERRUPTED)
			continue;
		if (rc < 0)
			return TLS_ERR;
		*sent = (size_t)rc;
		s->send_pending = 0;
		return TLS_OK;
	}
}

bool
tls_session_write_pending(const struct tls_session *s)
{
	return s->send_pending > 0 || s->recv_wants_write;
}

size_t
tls_session_pending(struct tls_session *s)
{
	return gnutls_record_check_pending(s->g);
}

void
tls_session_bye(struct tls_session *s)
{
	(void)gnutls_bye(s->g, GNUTLS_SHUT_WR);
}

void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	if (s->g != NULL)
		gnutls_deinit(s->g);
	if (s->client_cred != NULL)
		gnutls_certificate_free_credentials(s->client_cred);
	free(s->pre);
	free(s);
}

int
tls_channel_binding(struct tls_session *s, const char *type, struct buf *out,
    const char **why)
{
	gnutls_channel_binding_t cbt;
	gnutls_datum_t d = { NULL, 0 };
	bool v13 = tls_session_is_tls13(s);
	int rc;

	if (strcmp(type, "tls-exporter") == 0) {
		/* RFC 9266 3: defined for TLS 1.3 only (no EMS check in 1.2). */
		if (!v13) {
			*why = "tls-exporter channel binding needs TLS 1.3";
			return -1;
		}
		cbt = GNUTLS_CB_TLS_EXPORTER;
	} else if (strcmp(type, "tls-unique") == 0) {
		/* RFC 9266 2: tls-unique is undefined for TLS 1.3. */
		if (v13) {
			*why = "tls-unique channel binding is not defined for TLS 1.3";
			return -1;
		}
		cbt = GNUTLS_CB_TLS_UNIQUE;
	} else {
		*why = "unknown channel binding type";
		return -1;
	}
	rc = gnutls_session_channel_binding(s->g, cbt, &d);
	if (rc < 0) {
		*why = gnutls_strerror(rc);
		return -1;
	}
	buf_add(out, d.data, d.size);
	gnutls_free(d.data);
	return 0;
}

const char *
tls_session_version(struct tls_session *s)
{
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s->g));

	return v != NULL ? v : "unknown";
}

const char *
tls_session_cipher(struct tls_session *s)
{
	const char *c = gnutls_ciphersuite_get(s->g);

	return c != NULL ? c : "unknown";
}

void
tls_session_describe(struct tls_session *s, struct buf *out)
{
	buf_addf(out, "version=%s cipher=%s", tls_session_version(s),
	    tls_session_cipher(s));
}

const char *
tls_session_sni(const struct tls_session *s)
{
	return s->sni;
}

int
tls_session_peer_chain(struct tls_session *s, size_t i, struct span *out)
{
	const gnutls_datum_t *certs;
	unsigned n = 0;

	certs = gnutls_certificate_get_peers(s->g, &n);
	if (certs == NULL || i >= n)
		return -1;
	*out = span_of((const char *)certs[i].data, certs[i].size);
	return 0;
}

bool
tls_session_is_tls13(struct tls_session *s)
{
	return gnutls_protocol_get_version(s->g) == GNUTLS_TLS1_3;
}

static int
client_creds(const struct tls_client_params *p,
    gnutls_certificate_credentials_t *out, struct buf *err)
{
	gnutls_certificate_credentials_t cred = NULL;
	int rc;

	rc = gnutls_certificate_allocate_credentials(&cred);
	if (rc < 0) {
		add_gnutls_err(err, "allocating credentials", NULL, rc);
		return -1;
	}
	if (!p->no_system_trust && !p->no_verify) {
		rc = gnutls_certificate_set_x509_system_trust(cred);
		if (rc < 0) {
			add_gnutls_err(err, "loading system trust", NULL, rc);
			goto fail;
		}
	}
	for (size_t i = 0; i < p->nca_files; i++) {
		rc = gnutls_certificate_set_x509_trust_file(cred, p->ca_files[i],
		    GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			add_gnutls_err(err, "loading CA file", p->ca_files[i], rc);
			goto fail;
		}
	}
	*out = cred;
	return 0;
fail:
	gnutls_certificate_free_credentials(cred);
	return -1;
}

static void
describe_verify_failure(struct tls_session *s, struct buf *err)
{
	gnutls_datum_t txt = { NULL, 0 };
	unsigned status = gnutls_session_get_verify_cert_status(s->g);

	if (status != 0 && gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &txt, 0) >= 0) {
		buf_addf(err, "tls: certificate verification failed: %.*s",
		    (int)txt.size, (const char *)txt.data);
		gnutls_free(txt.data);
		return;
	}
	buf_adds(err, "tls: certificate verification failed");
}

struct tls_session *
tls_client_connect(int fd, const struct tls_client_params *p, struct buf *err)
{
	struct tls_session *s = xcalloc(1, sizeof(*s));
	enum tls_version min, max = TLS_VERSION_1_3;
	const char *why = NULL;
	int rc, ms = p->timeout_ms > 0 ? p->timeout_ms : TLS_HANDSHAKE_DEFAULT_MS;

	if (tls_parse_min_version(p->min_version, &min, &why) == -1) {
		buf_adds(err, why);
		goto fail;
	}
	if (p->max_version != NULL && strcmp(p->max_version, "TLSv1.2") == 0)
		max = TLS_VERSION_1_2;
	/* RFC 6125 6: a verified chain proves nothing without the name it
	 * must be for; gnutls would check the chain alone. */
	if (!p->no_verify && (p->host == NULL || p->host[0] == '\0')) {
		buf_adds(err, "tls: certificate verification needs a host name");
		goto fail;
	}
	if (client_creds(p, &s->client_cred, err) == -1)
		goto fail;
	rc = gnutls_init(&s->g, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL);
	if (rc >= 0)
		rc = gnutls_priority_set_direct(s->g, priority_string(min, max),
		    NULL);
	if (rc >= 0)
		rc = gnutls_credentials_set(s->g, GNUTLS_CRD_CERTIFICATE,
		    s->client_cred);
	if (rc >= 0 && p->host != NULL && p->host[0] != '\0')
		rc = gnutls_server_name_set(s->g, GNUTLS_NAME_DNS, p->host,
		    strlen(p->host));
	if (rc < 0) {
		add_gnutls_err(err, "tls client setup", NULL, rc);
		goto fail;
	}
	if (!p->no_verify)
		gnutls_session_set_verify_cert(s->g, p->host, 0);
	gnutls_handshake_set_timeout(s->g, (unsigned)ms);
	gnutls_transport_set_int(s->g, fd);
	do {
		rc = gnutls_handshake(s->g);
	} while (rc < 0 && gnutls_error_is_fatal(rc) == 0 &&
	    rc != GNUTLS_E_AGAIN);
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		describe_verify_failure(s, err);
		goto fail;
	}
	if (rc < 0) {
		add_gnutls_err(err, "tls handshake", NULL, rc);
		goto fail;
	}
	return s;
fail:
	tls_session_free(s);
	return NULL;
}

static int
write_pem_file(const char *path, const gnutls_datum_t *d, mode_t mode,
    struct buf *err)
{
	return io_write_file_atomic(path, d->data, d->size, mode, err);
}

int
tls_selfsigned_generate(const char *hostname, const char *cert_path,
    const char *key_path, struct buf *err)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t keypem = { NULL, 0 }, crtpem = { NULL, 0 };
	unsigned char serial[16];
	time_t now = time(NULL);
	int rc, ret = -1;

	rc = gnutls_x509_privkey_init(&key);
	if (rc >= 0)
		rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
		    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (rc >= 0)
		rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM,
		    NULL, GNUTLS_PKCS_PLAIN, &keypem);
	if (rc < 0) {
		add_gnutls_err(err, "generating key", NULL, rc);
		goto out;
	}
	rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	if (rc < 0) {
		add_gnutls_err(err, "random serial", NULL, rc);
		goto out;
	}
	serial[0] &= 0x7f; /* RFC 5280 4.1.2.2: a positive integer */
	rc = gnutls_x509_crt_init(&crt);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(crt,
		    GNUTLS_OID_X520_COMMON_NAME, 0, hostname, strlen(hostname));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(crt,
		    GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "mox localserve",
		    strlen("mox localserve"));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_DNSNAME, hostname, strlen(hostname),
		    GNUTLS_FSAN_SET);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt, now - 3600);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(crt,
		    now + (time_t)4 * 365 * 24 * 3600);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt,
		    GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt,
		    GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key(crt, key);
	if (rc >= 0)
		rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crtpem);
	if (rc < 0) {
		add_gnutls_err(err, "making certificate", NULL, rc);
		goto out;
	}
	if (write_pem_file(key_path, &keypem, 0600, err) == -1 ||
	    write_pem_file(cert_path, &crtpem, 0644, err) == -1)
		goto out;
	ret = 0;
out:
	if (keypem.data != NULL) {
		explicit_bzero(keypem.data, keypem.size);
		gnutls_free(keypem.data);
	}
	gnutls_free(crtpem.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret;
}
