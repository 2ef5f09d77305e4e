/*
 * queue_socks5.c: SOCKS5 client for the Socks transport (RFC 1928 3
 * method negotiation with "no authentication required" only, 4 CONNECT
 * with IPv4, IPv6 or domain-name address types, 6 replies; spec/queue.md
 * 4). The proxy is configured by the admin, but its replies are read as
 * untrusted bytes: every length is known before it is read, a reply is
 * at most QUEUE_SOCKS5_MSG_MAX bytes, and nothing past a reply is read
 * (it belongs to the relayed SMTP connection). The parsers are pure; the
 * dial blocks with one deadline for connect and exchange, on a delivery
 * thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "queue/queue_socks5.h"
#include "smtp/smtp_client.h"
#include "lib/banned.h"

#define SOCKS5_METHOD_NOAUTH 0x00 /* RFC 1928 3 */
#define SOCKS5_METHOD_NONE 0xff   /* RFC 1928 3: no acceptable methods */
#define SOCKS5_CMD_CONNECT 0x01   /* RFC 1928 4 */
#define SOCKS5_PROXY_ADDRS_MAX 8  /* addresses of a proxy name we try */

size_t
queue_socks5_greeting(uint8_t out[QUEUE_SOCKS5_GREETING_LEN])
{
	out[0] = QUEUE_SOCKS5_VERSION;
	out[1] = 1;
	out[2] = SOCKS5_METHOD_NOAUTH;
	return QUEUE_SOCKS5_GREETING_LEN;
}

int
queue_socks5_parse_method(const uint8_t *p, size_t n, const char **why)
{
	if (n >= 1 && p[0] != QUEUE_SOCKS5_VERSION) {
		*why = "not a socks5 method reply (wrong version)";
		return -1;
	}
	if (n < QUEUE_SOCKS5_METHOD_LEN)
		return 0;
	if (p[1] == SOCKS5_METHOD_NONE) {
		*why = "proxy requires authentication (no acceptable method)";
		return -1;
	}
	if (p[1] != SOCKS5_METHOD_NOAUTH) {
		*why = "proxy selected a method that was not offered";
		return -1;
	}
	return 1;
}

int
queue_socks5_connect_request(const char *host, uint16_t port, uint8_t *out,
    size_t outlen, size_t *len_out, const char **why)
{
	uint8_t a[16];
	size_t n = 0, hl = strlen(host);

	if (outlen < 4 + 16 + 2) {
		*why = "request buffer too small";
		return -1;
	}
	out[n++] = QUEUE_SOCKS5_VERSION;
	out[n++] = SOCKS5_CMD_CONNECT;
	out[n++] = 0; /* RSV */
	if (inet_pton(AF_INET, host, a) == 1) {
		out[n++] = QUEUE_SOCKS5_ATYP_IPV4;
		memcpy(out + n, a, 4);
		n += 4;
	} else if (inet_pton(AF_INET6, host, a) == 1) {
		out[n++] = QUEUE_SOCKS5_ATYP_IPV6;
		memcpy(out + n, a, 16);
		n += 16;
	} else {
		/* RFC 1928 5: the name is preceded by its length octet. */
		if (hl == 0 || hl > QUEUE_SOCKS5_DOMAIN_MAX) {
			*why = hl == 0 ? "empty host name"
			               : "host name too long for socks5";
			return -1;
		}
		for (size_t i = 0; i < hl; i++) {
			unsigned char c = (unsigned char)host[i];

			if (c <= 0x20 || c == 0x7f) {
				*why = "invalid byte in host name";
				return -1;
			}
		}
		if (outlen < 4 + 1 + hl + 2) {
			*why = "request buffer too small";
			return -1;
		}
		out[n++] = QUEUE_SOCKS5_ATYP_DOMAIN;
		out[n++] = (uint8_t)hl;
		memcpy(out + n, host, hl);
		n += hl;
	}
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)(port & 0xff);
	*len_out = n;
	return 0;
}

const char *
queue_socks5_rep_text(uint8_t rep)
{
	/* RFC 1928 6 */
	static const char *const text[] = {
		"succeeded",
		"general socks server failure",
		"connection not allowed by ruleset",
		"network unreachable",
		"host unreachable",
		"connection refused",
		"ttl expired",
		"command not supported",
		"address type not supported",
	};

	if (rep >= sizeof(text) / sizeof(text[0]))
		return "unassigned reply code";
	return text[rep];
}

int
queue_socks5_parse_reply(const uint8_t *p, size_t n,
    struct queue_socks5_reply *out, size_t *need_out, const char **why)
{
	size_t addrlen, need;

	*need_out = 4;
	if (n >= 1 && p[0] != QUEUE_SOCKS5_VERSION) {
		*why = "not a socks5 reply (wrong version)";
		return -1;
	}
	if (n >= 2) {
		out->rep = p[1];
		if (p[1] != 0) {
			/* RFC 1928 6: the server ends the connection after a
			 * failure; the rest of the reply does not matter. */
			*why = queue_socks5_rep_text(p[1]);
			return -1;
		}
	}
	if (n >= 3 && p[2] != 0) {
		*why = "reserved octet of socks5 reply not zero";
		return -1;
	}
	if (n < 4)
		return 0;
	switch (p[3]) {
	case QUEUE_SOCKS5_ATYP_IPV4:
		addrlen = 4;
		break;
	case QUEUE_SOCKS5_ATYP_IPV6:
		addrlen = 16;
		break;
	case QUEUE_SOCKS5_ATYP_DOMAIN:
		if (n < 5) {
			*need_out = 5;
			return 0;
		}
		addrlen = 1 + (size_t)p[4];
		break;
	default:
		*why = "unknown address type in socks5 reply";
		return -1;
	}
	need = 4 + addrlen + 2;
	*need_out = need;
	if (n < need)
		return 0;
	out->atyp = (enum queue_socks5_atyp)p[3];
	out->bound[0] = '\0';
	if (p[3] == QUEUE_SOCKS5_ATYP_DOMAIN) {
		size_t l = p[4];

		for (size_t i = 0; i < l; i++) {
			if (p[5 + i] <= 0x20 || p[5 + i] >= 0x7f) {
				*why = "invalid byte in socks5 bound name";
				return -1;
			}
		}
		memcpy(out->bound, p + 5, l);
		out->bound[l] = '\0';
	} else if (inet_ntop(
	               p[3] == QUEUE_SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6,
	               p + 4, out->bound, sizeof(out->bound)) == NULL) {
		*why = "bound address of socks5 reply";
		return -1;
	}
	out->bound_port = (uint16_t)((p[4 + addrlen] << 8) | p[5 + addrlen]);
	return 1;
}

int
queue_socks5_split_addr(
    const char *addr, char *host, size_t hostlen, uint16_t *port_out)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hl;
	uint64_t port;

	if (colon == NULL || colon == addr ||
	    span_u64(span_of_cstr(colon + 1), 65535, &port) == -1 || port == 0)
		return -1;
	hl = (size_t)(colon - addr);
	if (h[0] == '[') {
		if (hl < 3 || h[hl - 1] != ']')
			return -1;
		h++;
		hl -= 2;
	}
	if (hl + 1 > hostlen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port_out = (uint16_t)port;
	return 0;
}

/* Wait for ev on fd until deadline (monotonic ms). 0, or -1 with err. */
static int
wait_fd(int fd, short ev, int64_t deadline, struct buf *err)
{
	struct pollfd pfd;
	int64_t left;
	int r;

	for (;;) {
		left = deadline - time_mono_ms();
		if (left <= 0) {
			buf_adds(err, "timeout");
			return -1;
		}
		pfd.fd = fd;
		pfd.events = ev;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r == -1 && errno != EINTR) {
			buf_addf(err, "poll: %s", log_strerror(errno));
			return -1;
		}
	}
}

static int
send_all(int fd, const uint8_t *p, size_t n, int64_t deadline, struct buf *err)
{
	while (n > 0) {
		ssize_t w;

		if (wait_fd(fd, POLLOUT, deadline, err) == -1)
			return -1;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			buf_addf(err, "write: %s", log_strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read into p[*have, want): at most what is asked, never beyond. */
static int
recv_upto(int fd, uint8_t *p, size_t *have, size_t want, int64_t deadline,
    struct buf *err)
{
	ssize_t r;

	if (wait_fd(fd, POLLIN, deadline, err) == -1)
		return -1;
	r = recv(fd, p + *have, want - *have, MSG_DONTWAIT);
	if (r == 0) {
		buf_adds(err, "connection closed by proxy");
		return -1;
	}
	if (r == -1) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		buf_addf(err, "read: %s", log_strerror(errno));
		return -1;
	}
	*have += (size_t)r;
	return 0;
}

/* Method negotiation and CONNECT on fd. 0, or -1 with err. */
static int
handshake(int fd, const char *host, uint16_t port, int64_t deadline,
    struct queue_socks5_reply *rep, struct buf *err)
{
	uint8_t msg[QUEUE_SOCKS5_MSG_MAX];
	size_t n, have = 0, need = QUEUE_SOCKS5_METHOD_LEN;
	const char *why = NULL;
	int r;

	n = queue_socks5_greeting(msg);
	if (send_all(fd, msg, n, deadline, err) == -1)
		return -1;
	for (;;) {
		r = queue_socks5_parse_method(msg, have, &why);
		if (r == 1)
			break;
		if (r == -1) {
			buf_adds(err, why);
			return -1;
		}
		if (recv_upto(fd, msg, &have, need, deadline, err) == -1)
			return -1;
	}
	if (queue_socks5_connect_request(
	        host, port, msg, sizeof(msg), &n, &why) == -1) {
		buf_adds(err, why);
		return -1;
	}
	if (send_all(fd, msg, n, deadline, err) == -1)
		return -1;
	have = 0;
	memset(rep, 0, sizeof(*rep));
	for (;;) {
		r = queue_socks5_parse_reply(msg, have, rep, &need, &why);
		if (r == 1)
			return 0;
		if (r == -1) {
			if (rep->rep != 0)
				buf_addf(err,
				    "connect to %s port %u: %s (reply %u)",
				    host, port, why, rep->rep);
			else
				buf_adds(err, why);
			return -1;
		}
		if (need > sizeof(msg)) {
			buf_adds(err, "socks5 reply too long");
			return -1;
		}
		if (recv_upto(fd, msg, &have, need, deadline, err) == -1)
			return -1;
	}
}

/* The addresses of the proxy host as text, at most max. */
static size_t
proxy_addrs(const char *host, char addrs[][INET6_ADDRSTRLEN], size_t max,
    struct buf *err)
{
	struct addrinfo hints, *res = NULL;
	uint8_t a[16];
	size_t n = 0;
	int r;

	if (inet_pton(AF_INET, host, a) == 1)
		return inet_ntop(AF_INET, a, addrs[0], INET6_ADDRSTRLEN) !=
		       NULL;
	if (inet_pton(AF_INET6, host, a) == 1)
		return inet_ntop(AF_INET6, a, addrs[0], INET6_ADDRSTRLEN) !=
		       NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, NULL, &hints, &res);
	if (r != 0) {
		buf_addf(err, "resolving %s: %s", host, gai_strerror(r));
		return 0;
	}
	for (struct addrinfo *ai = res; ai != NULL && n < max;
	     ai = ai->ai_next) {
		const void *src;

		if (ai->ai_family == AF_INET)
			src = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			src = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, src, addrs[n], INET6_ADDRSTRLEN) !=
		    NULL)
			n++;
	}
	freeaddrinfo(res);
	if (n == 0)
		buf_addf(err, "no addresses for %s", host);
	return n;
}

static bool
is_unspecified(const char *ip)
{
	return strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

int
queue_socks5_dial(const char *proxy_addr, const char *host, uint16_t port,
    int timeout_ms, char *bound_out, size_t bound_len, struct buf *err)
{
	char phost[QUEUE_SOCKS5_DOMAIN_MAX + 1];
	char addrs[SOCKS5_PROXY_ADDRS_MAX][INET6_ADDRSTRLEN];
	struct queue_socks5_reply rep;
	struct buf e;
	int64_t deadline = time_mono_ms() +
	                   (timeout_ms > 0 ? timeout_ms : SMTP_CLIENT_DIAL_MS);
	uint16_t pport;
	size_t naddrs;
	int fd = -1;

	if (bound_len > 0)
		bound_out[0] = '\0';
	buf_init(&e, 1024);
	if (queue_socks5_split_addr(proxy_addr, phost, sizeof(phost), &pport) ==
	    -1) {
		buf_addf(err, "socks5 proxy address %s: expected host:port",
		    proxy_addr);
		goto out;
	}
	naddrs = proxy_addrs(phost, addrs, SOCKS5_PROXY_ADDRS_MAX, &e);
	for (size_t i = 0; i < naddrs && fd == -1; i++) {
		int64_t left = deadline - time_mono_ms();

		if (left <= 0) {
			buf_reset(&e);
			buf_adds(&e, "timeout");
			break;
		}
		buf_reset(&e);
		fd = smtp_client_dial(addrs[i], pport, NULL, (int)left, 0, &e);
	}
	if (fd == -1) {
		buf_addf(err, "socks5 proxy %s: %s", proxy_addr, e.data);
		goto out;
	}
	buf_reset(&e);
	if (handshake(fd, host, port, deadline, &rep, &e) == -1) {
		buf_addf(err, "socks5 proxy %s: %s", proxy_addr, e.data);
		close(fd);
		fd = -1;
		goto out;
	}
	if (rep.atyp != QUEUE_SOCKS5_ATYP_DOMAIN &&
	    !is_unspecified(rep.bound) && bound_len > 0)
		snprintf(bound_out, bound_len, "%s", rep.bound);
out:
	buf_release(&e);
	return fd;
}
