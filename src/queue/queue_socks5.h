/*
 * queue_socks5.h: the SOCKS5 client of the Socks transport (RFC 1928;
 * spec/queue.md 4 "Socks"): method negotiation offering only "no
 * authentication required", and CONNECT to an IPv4 or IPv6 address or a
 * domain name. The message encoders and reply parsers are pure (bytes
 * in, result out) for tests and fuzzing; queue_socks5_dial() does the
 * blocking exchange on a delivery thread.
 */
#ifndef QUEUE_QUEUE_SOCKS5_H
#define QUEUE_QUEUE_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define QUEUE_SOCKS5_VERSION 5
#define QUEUE_SOCKS5_DOMAIN_MAX 255 /* RFC 1928 5: one length octet */
/* RFC 1928 4 and 6: VER CMD/REP RSV ATYP, then at most a length octet
 * with a 255-octet name, then the port. */
#define QUEUE_SOCKS5_MSG_MAX (4 + 1 + QUEUE_SOCKS5_DOMAIN_MAX + 2)
#define QUEUE_SOCKS5_GREETING_LEN 3 /* RFC 1928 3: VER NMETHODS METHOD */
#define QUEUE_SOCKS5_METHOD_LEN 2   /* RFC 1928 3: VER METHOD */
/* Longest BND.ADDR text: a domain name, or an IPv6 address. */
#define QUEUE_SOCKS5_BOUND_MAX (QUEUE_SOCKS5_DOMAIN_MAX + 1)

/* RFC 1928 4/5 address types. */
enum queue_socks5_atyp {
	QUEUE_SOCKS5_ATYP_IPV4 = 1,
	QUEUE_SOCKS5_ATYP_DOMAIN = 3,
	QUEUE_SOCKS5_ATYP_IPV6 = 4,
};

/* The greeting: version 5, one method, 0x00 "no authentication
 * required". Fills out and returns QUEUE_SOCKS5_GREETING_LEN. Pure. */
size_t queue_socks5_greeting(uint8_t out[QUEUE_SOCKS5_GREETING_LEN]);

/* Parse the method selection reply (RFC 1928 3). Returns 1 when it
 * selects "no authentication required" (exactly
 * QUEUE_SOCKS5_METHOD_LEN bytes are the reply), 0 when n is too short,
 * -1 with *why (static) for another version or method. Pure. */
int queue_socks5_parse_method(const uint8_t *p, size_t n, const char **why);

/* Encode CONNECT to host:port (RFC 1928 4): an IPv4 or IPv6 address
 * text becomes ATYP 1 or 4, anything else a domain name (ATYP 3, 1 to
 * QUEUE_SOCKS5_DOMAIN_MAX octets, no control bytes). Writes at most
 * outlen bytes (QUEUE_SOCKS5_MSG_MAX always suffices) and sets *len_out.
 * Returns 0, or -1 with *why (static). Pure. */
int queue_socks5_connect_request(const char *host, uint16_t port, uint8_t *out,
    size_t outlen, size_t *len_out, const char **why);

/* A parsed CONNECT reply (RFC 1928 6). */
struct queue_socks5_reply {
	uint8_t rep;                            /* REP, 0 = succeeded */
	enum queue_socks5_atyp atyp;            /* of BND.ADDR */
	char bound[QUEUE_SOCKS5_BOUND_MAX + 1]; /* BND.ADDR as text */
	uint16_t bound_port;                    /* BND.PORT */
};

/* Parse the CONNECT reply from its first byte. Returns 1 when complete:
 * the reply is exactly *need_out bytes (bytes after it belong to the
 * relayed connection). Returns 0 when more is needed: *need_out (> n)
 * is the length known so far, read no further than that so nothing of
 * the relayed connection is consumed. Returns -1 with *why (static) for
 * a wrong version, a non-zero RSV, an unknown address type, a domain
 * BND.ADDR with bytes that cannot be in a host name, or a REP other than
 * success (decided from the first two bytes, out->rep set). Pure. */
int queue_socks5_parse_reply(const uint8_t *p, size_t n,
    struct queue_socks5_reply *out, size_t *need_out, const char **why);

/* RFC 1928 6 text of a REP code ("connection refused"); "unassigned
 * reply code" for 9-255. Pure. */
const char *queue_socks5_rep_text(uint8_t rep);

/* Split the proxy address "host:port" ("[v6]:port", "v4:port",
 * "name:port") into host (NUL-terminated, brackets removed) and port.
 * Returns 0 or -1. Pure. */
int queue_socks5_split_addr(
    const char *addr, char *host, size_t hostlen, uint16_t *port_out);

/* Connect to the proxy at proxy_addr ("host:port"; a name is resolved
 * with the system resolver), negotiate, and CONNECT to host:port, all
 * within timeout_ms. Returns a blocking socket (O_CLOEXEC, send and
 * receive timeouts as smtp_client_dial() gives them) carrying the relayed
 * connection, with BND.ADDR of the reply copied to bound_out (bound_len
 * bytes; "" when it is a name or the unspecified address); or -1 with
 * the reason appended to err, starting "socks5 proxy <proxy_addr>: ".
 * Blocks; delivery threads only. */
int queue_socks5_dial(const char *proxy_addr, const char *host, uint16_t port,
    int timeout_ms, char *bound_out, size_t bound_len, struct buf *err);

#endif
