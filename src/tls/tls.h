/*
 * tls.h: TLS for mox-c over gnutls (RFC 8446 TLS 1.3, RFC 5246 TLS 1.2; no
 * older versions). Server credentials from key/certificate pairs with SNI
 * selection, sessions over non-blocking sockets (STARTTLS and implicit
 * TLS), channel binding for SCRAM-PLUS (RFC 9266 tls-exporter, RFC 5929
 * tls-unique), a blocking PKIX-verifying client, and self-signed
 * certificates for localserve.
 *
 * A struct tls_server is immutable after tls_server_new() and may be used
 * by any number of threads. A struct tls_session belongs to one thread at
 * a time (the one owning its connection).
 */
#ifndef TLS_TLS_H
#define TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct span;

/* Return values of the session functions. */
#define TLS_OK 1     /* done, or some bytes moved */
#define TLS_AGAIN 0  /* the socket would block; see tls_session_wants_write() */
#define TLS_ERR (-1) /* fatal; the session is unusable */
#define TLS_EOF (-2) /* the peer closed (close_notify or TCP end) */

#define TLS_NAME_MAX 253 /* RFC 1035 2.3.4: a host name in SNI */

/* How an SNI name that matches no certificate is handled (DESIGN.md, TLS). */
enum tls_sni_mode {
	TLS_SNI_FALLBACK, /* unknown or missing name: first certificate (MX) */
	TLS_SNI_STRICT,   /* unknown name fails; missing: first certificate */
};

enum tls_version {
	TLS_VERSION_1_2,
	TLS_VERSION_1_3,
};

struct tls_keycert {
	const char *cert_file; /* PEM, leaf first, then the chain */
	const char *key_file;  /* PEM: PKCS8, PKCS1 or SEC1 EC key */
};

struct tls_server_params {
	const struct tls_keycert *keycerts; /* at least one; first = default */
	size_t nkeycerts;
	const char *min_version; /* config TLS.MinVersion; NULL or "" = TLSv1.2 */
	enum tls_sni_mode sni;
};

struct tls_server;  /* opaque; immutable, shared by threads */
struct tls_session; /* opaque; one thread at a time */

/* Parse a TLS.MinVersion value: NULL or "" mean TLSv1.2; "TLSv1.2" and
 * "TLSv1.3" are accepted. Anything else, including TLSv1.0/TLSv1.1,
 * returns -1 with *why naming TLS.MinVersion. Pure. */
int tls_parse_min_version(const char *s, enum tls_version *out,
    const char **why);

/* Load the pairs and prepare server settings. Returns the server or NULL
 * with "file: reason" appended to err. Blocking (reads files); call before
 * serving. Free with tls_server_free() (NULL-safe) after every session
 * made from it is freed. */
struct tls_server *tls_server_new(const struct tls_server_params *p,
    struct buf *err);
void tls_server_free(struct tls_server *srv);

/* Start a server session on a connected non-blocking socket (the fd stays
 * owned by the caller). Returns NULL with *why on failure. Any thread. */
struct tls_session *tls_session_server(struct tls_server *srv, int fd,
    const char **why);
/* As tls_session_server(), but the handshake first reads the npre bytes
 * at pre (copied; input that arrived on the socket before the session
 * existed, e.g. a ClientHello pipelined after STARTTLS), then the socket.
 * Returns NULL with *why on failure. Any thread. */
struct tls_session *tls_session_server_preread(struct tls_server *srv,
    int fd, const void *pre, size_t npre, const char **why);

/* Options for the client. */
struct tls_client_params {
	const char *host;        /* SNI and the name verified; NULL: no SNI,
				  * allowed only with no_verify */
	const char *const *ca_files; /* extra PEM trust anchors */
	size_t nca_files;
	bool no_system_trust;    /* only ca_files are trusted */
	bool no_verify;          /* accept any certificate (opportunistic) */
	const char *min_version; /* as tls_parse_min_version(); NULL = 1.2 */
	const char *max_version; /* NULL = 1.3; "TLSv1.2" to cap (tests) */
	int timeout_ms;          /* handshake bound; 0 = 60 s */
};

/* Run a blocking client handshake on a connected blocking socket (the fd
 * stays owned by the caller). Returns the session or NULL with the
 * reason appended to err (for a failed verification, gnutls' description
 * of the failure, e.g. a name mismatch or an unknown issuer; verifying
 * without a host name is refused before connecting). Blocks up to
 * timeout_ms; never call on the reactor. */
struct tls_session *tls_client_connect(int fd, const struct tls_client_params *p,
    struct buf *err);

/* Advance the handshake. TLS_OK when complete, TLS_AGAIN when the socket
 * would block, TLS_ERR with *why (static or session-owned until the next
 * call) on failure, including SNI refusal in strict mode. */
int tls_session_handshake(struct tls_session *s, const char **why);
/* After TLS_AGAIN: true when the session waits to write, false to read. */
bool tls_session_wants_write(const struct tls_session *s);
/* Receive up to n decrypted bytes into p. TLS_OK with *got > 0, TLS_AGAIN,
 * TLS_EOF or TLS_ERR. */
int tls_session_recv(struct tls_session *s, void *p, size_t n, size_t *got);
/* Send up to n bytes of p. TLS_OK with *sent > 0, TLS_AGAIN (the caller
 * must call again later with at least the same first bytes), TLS_ERR. */
int tls_session_send(struct tls_session *s, const void *p, size_t n,
    size_t *sent);
/* True when the session holds output the socket did not take: a send
 * that returned TLS_AGAIN, or a recv that stopped on a full socket (then
 * calling recv again once the socket is writable continues it). */
bool tls_session_write_pending(const struct tls_session *s);
/* Decrypted bytes held inside the session that the socket will not
 * announce again. */
size_t tls_session_pending(struct tls_session *s);
/* Send close_notify, best effort, without blocking on a non-blocking fd. */
void tls_session_bye(struct tls_session *s);
/* Free the session (the fd is not closed). NULL-safe. */
void tls_session_free(struct tls_session *s);

/* Channel binding data (RFC 9266 "tls-exporter", only with TLS 1.3;
 * RFC 5929 "tls-unique", only with TLS 1.2). Appends the bytes to out and
 * returns 0, or -1 with *why. After a completed handshake. */
int tls_channel_binding(struct tls_session *s, const char *type,
    struct buf *out, const char **why);

/* Protocol version ("TLS1.3"), cipher suite name ("TLS_AES_128_GCM_SHA256")
 * of a completed handshake: static strings. */
const char *tls_session_version(struct tls_session *s);
const char *tls_session_cipher(struct tls_session *s);
/* Append "version=TLS1.3 cipher=TLS_AES_..." style text for logs. */
void tls_session_describe(struct tls_session *s, struct buf *out);
/* The SNI name the client sent, or "" (server side). Borrowed until the
 * session is freed. */
const char *tls_session_sni(const struct tls_session *s);
bool tls_session_is_tls13(struct tls_session *s);
/* Certificate i (0 = leaf) of the chain the peer sent, as DER bytes
 * borrowed until the session is freed. Returns 0, or -1 when the peer
 * sent fewer certificates. After a completed handshake. */
int tls_session_peer_chain(struct tls_session *s, size_t i, struct span *out);

/* Write a new ECDSA P-256 key (PKCS8 PEM, mode 0600) to key_path and a
 * self-signed certificate for hostname (CN and DNS SAN, O "mox
 * localserve", valid from 1 hour ago for 4 years) to cert_path. Returns 0
 * or -1 with the reason appended to err. Blocking (disk). */
int tls_selfsigned_generate(const char *hostname, const char *cert_path,
    const char *key_path, struct buf *err);

#endif
