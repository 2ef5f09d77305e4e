/*
 * cmd_sendmail.c: `mox sendmail` (spec/config.md 7): read a message on
 * stdin and submit it with SMTP (RFC 6409) and SASL authentication to the
 * server named in /etc/moxsubmit.conf ($MOXSUBMITCONF overrides the
 * path), so cron, mail(1) and other system tools can send mail. Line
 * ends are made CRLF and lines dot-stuffed (RFC 5321 4.5.2). On any
 * failure the message is appended to ~/moxsubmit.failures, the reason is
 * printed and the exit status is 1: nothing is lost silently.
 *
 * Config fields (sconf "Key: value" lines): LocalHostname, Host, Port,
 * TLS, STARTTLS, Username, Password, AuthMethod, From,
 * DefaultDestination, RequireTLS. Single-threaded; blocking I/O.
 *
 * Flags (spec/config.md 7: "[-Fname] [ignored flags] [-t]"): -F sets the
 * display name of an added From header, -t adds the To/Cc/Bcc addresses
 * as recipients. Everything else is ignored, -f/-r included: the
 * envelope sender is always the configured From, an address the
 * submission account may use.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_sendmail.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "message/message.h"
#include "sasl/sasl.h"
#include "tls/tls.h"
#include "lib/banned.h"

#define SENDMAIL_MSG_MAX (100u * 1024 * 1024)
#define SENDMAIL_CONF_MAX (64u * 1024)
#define SENDMAIL_REPLY_MAX (64u * 1024)
#define SENDMAIL_TIMEOUT_SEC 60

struct submit_conf {
	char *local_hostname, *host, *port, *username, *password;
	char *auth_method, *from, *default_destination, *requiretls;
	bool tls, starttls;
};

struct smtp_conn {
	int fd;
	struct tls_session *tls;
	struct buf in;
};

static char *
conf_field(struct submit_conf *c, const char *key, bool **flag)
{
	static const char *const names[] = { "LocalHostname", "Host", "Port",
		"Username", "Password", "AuthMethod", "From",
		"DefaultDestination", "RequireTLS" };
	char **slots[] = { &c->local_hostname, &c->host, &c->port,
		&c->username, &c->password, &c->auth_method, &c->from,
		&c->default_destination, &c->requiretls };

	*flag = NULL;
	if (strcmp(key, "TLS") == 0)
		*flag = &c->tls;
	if (strcmp(key, "STARTTLS") == 0)
		*flag = &c->starttls;
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (strcmp(key, names[i]) == 0)
			return (char *)slots[i];
	return NULL;
}

static int
conf_load(const char *path, struct submit_conf *c, struct buf *err)
{
	struct buf text;
	char *line, *save = NULL;
	unsigned n = 0;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	buf_init(&text, SENDMAIL_CONF_MAX);
	if (io_read_file(path, &text, err) == -1)
		goto out;
	for (line = strtok_r(text.data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon, *val, **slot;
		bool *flag;
		size_t vl;

		n++;
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		colon = strchr(line, ':');
		if (colon == NULL) {
			buf_addf(err, "%s:%u: expected \"Key: value\"", path, n);
			goto out;
		}
		*colon = '\0';
		val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		vl = strlen(val);
		while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\r'))
			val[--vl] = '\0';
		slot = (char **)conf_field(c, line, &flag);
		if (flag != NULL) {
			*flag = strcmp(val, "true") == 0;
		} else if (slot != NULL) {
			free(*slot);
			*slot = xstrdup(val);
		} else {
			buf_addf(err, "%s:%u: unknown field %s", path, n, line);
			goto out;
		}
	}
	if (c->host == NULL || c->port == NULL || c->from == NULL) {
		buf_addf(err, "%s: Host, Port and From are required", path);
		goto out;
	}
	rc = 0;
out:
	buf_release(&text);
	return rc;
}

static void
conf_release(struct submit_conf *c)
{
	char **v[] = { &c->local_hostname, &c->host, &c->port, &c->username,
		&c->password, &c->auth_method, &c->from, &c->default_destination,
		&c->requiretls };

	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		if (*v[i] != NULL)
			explicit_bzero(*v[i], strlen(*v[i]));
		free(*v[i]);
	}
}

/* ---- a small blocking SMTP client ---- */

static int
conn_write(struct smtp_conn *sc, const void *p, size_t n)
{
	const char *q = p;

	if (sc->tls == NULL)
		return io_write_all(sc->fd, p, n);
	while (n > 0) {
		size_t sent = 0;

		if (tls_session_send(sc->tls, q, n, &sent) != TLS_OK)
			return -1;
		q += sent;
		n -= sent;
	}
	return 0;
}

/* Read one reply; *code gets its code, text is the whole reply. */
static int
conn_reply(struct smtp_conn *sc, int *code, struct buf *text)
{
	buf_reset(text);
	for (;;) {
		char *nl = memchr(sc->in.data, '\n', sc->in.len);

		if (nl != NULL) {
			size_t n = (size_t)(nl - sc->in.data) + 1;
			bool last = n < 5 || sc->in.data[3] != '-';
			uint64_t v;

			if (n < 4 || span_u64(span_of(sc->in.data, 3), 999, &v) == -1)
				return -1;
			*code = (int)v;
			buf_add(text, sc->in.data, n);
			buf_consume(&sc->in, n);
			if (last)
				return buf_failed(text) ? -1 : 0;
			continue;
		}
		{
			char chunk[4096];
			size_t got = 0;
			ssize_t r;

			if (sc->tls != NULL) {
				if (tls_session_recv(sc->tls, chunk, sizeof(chunk),
					&got) != TLS_OK)
					return -1;
			} else {
				r = read(sc->fd, chunk, sizeof(chunk));
				if (r <= 0)
					return -1;
				got = (size_t)r;
			}
			if (buf_add(&sc->in, chunk, got) == -1)
				return -1;
		}
	}
}

static int
cmd(struct smtp_conn *sc, const char *line, int want, struct buf *text,
    struct buf *err)
{
	int code = 0;

	if ((line != NULL && (conn_write(sc, line, strlen(line)) == -1 ||
				 conn_write(sc, "\r\n", 2) == -1)) ||
	    conn_reply(sc, &code, text) == -1) {
		buf_addf(err, "connection failed%s%s", line != NULL ? " after " : "",
		    line != NULL && strncmp(line, "AUTH", 4) != 0 ? line : "");
		return -1;
	}
	if (want != 0 && code / 100 != want / 100) {
		buf_addf(err, "%s: %s", line != NULL ? line : "greeting",
		    text->data);
		return -1;
	}
	return code;
}

static int
dial(const char *host, const char *port, struct buf *err)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	struct timeval tv = { SENDMAIL_TIMEOUT_SEC, 0 };
	int fd = -1, r;

	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		buf_addf(err, "resolving %s: %s", host, gai_strerror(r));
		return -1;
	}
	for (struct addrinfo *a = res; a != NULL && fd == -1; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == -1) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd == -1)
		buf_addf(err, "connecting to %s:%s: %s", host, port,
		    log_strerror(errno));
	return fd;
}

static int
start_tls(struct smtp_conn *sc, const char *host, struct buf *err)
{
	struct tls_client_params tp = { 0 };

	tp.host = host;
	sc->tls = tls_client_connect(sc->fd, &tp, err);
	return sc->tls == NULL ? -1 : 0;
}

static int
authenticate(struct smtp_conn *sc, const struct submit_conf *c,
    struct span offered, struct buf *text, struct buf *err)
{
	struct sasl_client_params cp = { 0 };
	struct sasl_client *cl = NULL;
	enum sasl_mech m;
	enum sasl_cb_type cbt;
	enum sasl_mech pref;
	struct buf out, line, dec;
	const char *why = NULL;
	int code = 0, rc = -1;

	buf_init(&out, SASL_MSG_MAX);
	buf_init(&line, 2 * SASL_MSG_MAX + 64);
	buf_init(&dec, SASL_MSG_MAX);
	if (c->auth_method != NULL && c->auth_method[0] != '\0') {
		if (sasl_mech_lookup(span_of_cstr(c->auth_method), &pref) == -1) {
			buf_addf(err, "unknown AuthMethod %s", c->auth_method);
			goto out;
		}
		if (sasl_client_select(offered, &pref, 1, SASL_CB_NONE, &m, &cbt,
			&why) == -1) {
			buf_addf(err, "AuthMethod %s not offered", c->auth_method);
			goto out;
		}
	} else if (sasl_client_select(offered, NULL, 0, SASL_CB_NONE, &m, &cbt,
		       &why) == -1) {
		buf_addf(err, "no usable authentication mechanism: %s", why);
		goto out;
	}
	cp.user = c->username;
	cp.password = c->password;
	cp.cb_type = cbt;
	cl = sasl_client_new(m, &cp, &why);
	if (cl == NULL) {
		buf_addf(err, "authentication: %s", why);
		goto out;
	}
	buf_addf(&line, "AUTH %s", sasl_mech_info(m)->name);
	if (sasl_mech_info(m)->client_first) {
		if (sasl_client_step(cl, span_of("", 0), false, &out, &why) ==
		    SASL_FAIL) {
			buf_addf(err, "authentication: %s", why);
			goto out;
		}
		buf_adds(&line, " ");
		if (out.len == 0)
			buf_adds(&line, "=");
		sasl_b64_encode(out.data, out.len, &line);
	}
	for (;;) {
		enum sasl_step st;

		code = cmd(sc, line.data, 0, text, err);
		if (code == -1)
			goto out;
		if (code == 235)
			break;
		if (code != 334) {
			buf_addf(err, "authentication failed: %s", text->data);
			goto out;
		}
		buf_reset(&dec);
		if (text->len < 6 ||
		    sasl_b64_decode(span_of(text->data + 4, text->len - 6), &dec,
			&why) == -1) {
			buf_adds(&dec, "");
		}
		st = sasl_client_step(cl, span_of(dec.data, dec.len), true, &out,
		    &why);
		if (st == SASL_FAIL) {
			cmd(sc, "*", 0, text, err);
			buf_addf(err, "authentication: %s", why);
			goto out;
		}
		buf_reset(&line);
		sasl_b64_encode(out.data, out.len, &line);
	}
	rc = 0;
out:
	sasl_client_free(cl);
	explicit_bzero(line.data, line.len);
	buf_release(&out);
	buf_release(&line);
	buf_release(&dec);
	return rc;
}

/* ---- the message ---- */

static void
add_rcpts_from(struct span header, const char *name, char ***v, size_t *n)
{
	struct message_header_iter it;
	struct message_field f;
	const char *why;

	message_header_iter_init(&it, header);
	while (message_header_next(&it, &f, &why) == 1) {
		struct message_addr_list l = { 0 };

		if (!span_eq_ci(f.name, name))
			continue;
		message_addr_parse(f.value, &l, &why);
		for (size_t i = 0; i < l.n; i++) {
			struct buf a;

			if (l.v[i].kind != MESSAGE_ADDR_MAILBOX ||
			    l.v[i].user == NULL || l.v[i].host == NULL)
				continue;
			buf_init(&a, 1024);
			buf_addf(&a, "%s@%s", l.v[i].user, l.v[i].host);
			*v = xreallocarray(*v, *n + 1, sizeof(**v));
			(*v)[(*n)++] = buf_take(&a);
			buf_release(&a);
		}
		message_addr_list_release(&l);
	}
}

/* CRLF line ends, dot-stuffing, Bcc removed, From added when missing. */
static void
prepare(struct span msg, const struct submit_conf *c, const char *name,
    struct buf *out)
{
	size_t hlen = message_header_len(msg);
	struct span header = span_of(msg.p, hlen);
	struct span v;
	struct buf raw;
	bool bol = true;

	buf_init(&raw, SENDMAIL_MSG_MAX);
	if (message_header_find(header, "From", &v) == -1) {
		if (name != NULL)
			buf_addf(&raw, "From: \"%s\" <%s>\n", name, c->from);
		else
			buf_addf(&raw, "From: <%s>\n", c->from);
	}
	{
		struct message_header_iter it;
		struct message_field f;
		const char *why;

		message_header_iter_init(&it, header);
		while (message_header_next(&it, &f, &why) == 1)
			if (!span_eq_ci(f.name, "Bcc"))
				buf_add(&raw, f.field.p, f.field.len);
		if (hlen > 0 && hlen <= msg.len)
			buf_adds(&raw, "\n");
	}
	if (hlen < msg.len)
		buf_add(&raw, msg.p + hlen, msg.len - hlen);
	for (size_t i = 0; i < raw.len; i++) {
		char ch = raw.data[i];

		if (bol && ch == '.')
			buf_addc(out, '.');
		if (ch == '\n' && (i == 0 || raw.data[i - 1] != '\r'))
			buf_addc(out, '\r');
		if (ch == '\r' && (i + 1 >= raw.len || raw.data[i + 1] != '\n'))
			continue; /* bare CR: dropped */
		buf_addc(out, ch);
		bol = ch == '\n';
	}
	if (out->len > 0 && !bol)
		buf_adds(out, "\r\n");
	buf_adds(out, ".\r\n");
	buf_release(&raw);
}

static void
save_failure(struct span msg, const char *why)
{
	const char *home = getenv("HOME");
	struct buf path, rec;
	FILE *f;

	buf_init(&path, 4096);
	buf_init(&rec, SENDMAIL_MSG_MAX + 4096);
	buf_addf(&path, "%s/moxsubmit.failures", home != NULL ? home : "/tmp");
	buf_addf(&rec, "# failed submission: %s\n", why);
	buf_add(&rec, msg.p, msg.len);
	buf_adds(&rec, "\n\n");
	f = fopen(path.data, "a");
	if (f == NULL || fwrite(rec.data, 1, rec.len, f) != rec.len ||
	    fclose(f) != 0)
		fprintf(stderr, "%s sendmail: also failed to save the message to "
				"%s\n",
		    cli.prog, path.data);
	else
		fprintf(stderr, "%s sendmail: message saved to %s\n", cli.prog,
		    path.data);
	buf_release(&path);
	buf_release(&rec);
}

static int
submit(const struct submit_conf *c, char **rcpts, size_t n,
    const struct buf *data, struct buf *err)
{
	struct smtp_conn sc = { .fd = -1 };
	struct buf text, line, ext;
	const char *helo = c->local_hostname != NULL ? c->local_hostname
						     : "localhost";
	int rc = -1;

	buf_init(&sc.in, SENDMAIL_REPLY_MAX);
	buf_init(&text, SENDMAIL_REPLY_MAX);
	buf_init(&line, 4096);
	buf_init(&ext, SENDMAIL_REPLY_MAX);
	sc.fd = dial(c->host, c->port, err);
	if (sc.fd == -1)
		goto out;
	if (c->tls && start_tls(&sc, c->host, err) == -1)
		goto out;
	if (cmd(&sc, NULL, 220, &text, err) == -1)
		goto out;
	buf_addf(&line, "EHLO %s", helo);
	if (cmd(&sc, line.data, 250, &text, err) == -1)
		goto out;
	if (c->starttls && !c->tls) {
		if (cmd(&sc, "STARTTLS", 220, &text, err) == -1 ||
		    start_tls(&sc, c->host, err) == -1 ||
		    cmd(&sc, line.data, 250, &text, err) == -1)
			goto out;
	}
	buf_add(&ext, text.data, text.len);
	if (c->username != NULL && c->username[0] != '\0') {
		char *a = strstr(ext.data, "AUTH ");
		struct span offered = span_of("", 0);

		if (a != NULL) {
			char *e = strpbrk(a, "\r\n");

			offered = span_of(a + 5, e != NULL ? (size_t)(e - a - 5)
							   : strlen(a + 5));
		}
		if (authenticate(&sc, c, offered, &text, err) == -1)
			goto out;
	}
	buf_reset(&line);
	buf_addf(&line, "MAIL FROM:<%s>", c->from);
	if (c->requiretls != NULL && strcmp(c->requiretls, "yes") == 0)
		buf_adds(&line, " REQUIRETLS");
	if (cmd(&sc, line.data, 250, &text, err) == -1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		buf_reset(&line);
		buf_addf(&line, "RCPT TO:<%s>", rcpts[i]);
		if (cmd(&sc, line.data, 250, &text, err) == -1)
			goto out;
	}
	if (cmd(&sc, "DATA", 354, &text, err) == -1)
		goto out;
	if (conn_write(&sc, data->data, data->len) == -1 ||
	    cmd(&sc, NULL, 250, &text, err) == -1) {
		if (err->len == 0)
			buf_adds(err, "sending message data failed");
		goto out;
	}
	cmd(&sc, "QUIT", 221, &text, err);
	buf_reset(err);
	rc = 0;
out:
	if (sc.tls != NULL) {
		tls_session_bye(sc.tls);
		tls_session_free(sc.tls);
	}
	if (sc.fd != -1)
		close(sc.fd);
	buf_release(&sc.in);
	buf_release(&text);
	buf_release(&line);
	buf_release(&ext);
	return rc;
}

int
cmd_sendmail(int argc, char **argv)
{
	const char *path = getenv("MOXSUBMITCONF");
	const char *name = NULL;
	struct submit_conf c;
	struct buf msg, data, err;
	char **rcpts = NULL;
	size_t n = 0;
	bool from_header = false;
	int rc = 1;

	if (path == NULL || path[0] == '\0')
		path = "/etc/moxsubmit.conf";
	buf_init(&msg, SENDMAIL_MSG_MAX);
	buf_init(&data, SENDMAIL_MSG_MAX * 2);
	buf_init(&err, 64 * 1024);
	memset(&c, 0, sizeof(c));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || strcmp(a, "-") == 0) {
			rcpts = xreallocarray(rcpts, n + 1, sizeof(*rcpts));
			rcpts[n++] = xstrdup(a);
		} else if (strcmp(a, "-t") == 0) {
			from_header = true;
		} else if (strncmp(a, "-F", 2) == 0) {
			name = a[2] != '\0' ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
		} else if (strncmp(a, "-f", 2) == 0 || strncmp(a, "-o", 2) == 0 ||
			   strncmp(a, "-B", 2) == 0 || strncmp(a, "-N", 2) == 0 ||
			   strncmp(a, "-R", 2) == 0 || strncmp(a, "-V", 2) == 0 ||
			   strncmp(a, "-X", 2) == 0 || strncmp(a, "-O", 2) == 0 ||
			   strncmp(a, "-L", 2) == 0 || strncmp(a, "-p", 2) == 0 ||
			   strncmp(a, "-q", 2) == 0 || strncmp(a, "-r", 2) == 0) {
			/* sendmail flags with a value: ignored, the value
			 * too (-f/-r: the envelope sender is the configured
			 * From, never taken from the command line). */
			if (a[2] == '\0' && i + 1 < argc)
				i++;
		}
		/* Other flags (-i, -oi, -odb, -v, ...): ignored. */
	}
	{
		char chunk[65536];
		ssize_t r;

		while ((r = read(0, chunk, sizeof(chunk))) != 0) {
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1 || buf_add(&msg, chunk, (size_t)r) == -1) {
				fprintf(stderr, "%s sendmail: reading message: %s\n",
				    cli.prog, r == -1 ? log_strerror(errno)
						      : "message too large");
				goto out;
			}
		}
	}
	if (conf_load(path, &c, &err) == -1) {
		fprintf(stderr, "%s sendmail: %s\n", cli.prog, err.data);
		save_failure(span_of_buf(&msg), err.data);
		goto out;
	}
	if (from_header) {
		struct span h = span_of(msg.data,
		    message_header_len(span_of_buf(&msg)));

		add_rcpts_from(h, "To", &rcpts, &n);
		add_rcpts_from(h, "Cc", &rcpts, &n);
		add_rcpts_from(h, "Bcc", &rcpts, &n);
	}
	/* Local names (root, www-data) go to DefaultDestination. */
	for (size_t i = 0; i < n; i++)
		if (strchr(rcpts[i], '@') == NULL && c.default_destination != NULL &&
		    c.default_destination[0] != '\0') {
			free(rcpts[i]);
			rcpts[i] = xstrdup(c.default_destination);
		}
	if (n == 0 && c.default_destination != NULL &&
	    c.default_destination[0] != '\0') {
		rcpts = xreallocarray(rcpts, 1, sizeof(*rcpts));
		rcpts[n++] = xstrdup(c.default_destination);
	}
	if (n == 0) {
		fprintf(stderr, "%s sendmail: no recipients\n", cli.prog);
		save_failure(span_of_buf(&msg), "no recipients");
		goto out;
	}
	prepare(span_of_buf(&msg), &c, name, &data);
	if (submit(&c, rcpts, n, &data, &err) == -1) {
		fprintf(stderr, "%s sendmail: submitting: %s\n", cli.prog,
		    err.data);
		save_failure(span_of_buf(&msg), err.data);
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
	conf_release(&c);
	buf_release(&msg);
	buf_release(&data);
	buf_release(&err);
	return rc;
}
