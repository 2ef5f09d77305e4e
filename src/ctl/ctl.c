/*
 * ctl.c: control socket server and client (ctl.h). The peer is a local
 * process with access to the data directory (the directory's permissions
 * guard the socket), but input is still bounded: lines by CTL_LINE_MAX,
 * chunks by CTL_CHUNK_MAX. The server is one thread serving one
 * connection at a time; each wait for the peer is at most CTL_TIMEOUT_MS,
 * a connection is served at most CTL_CONN_MAX_MS in all, and every wait
 * also watches the stop request, so a slow or stuck client can neither
 * keep the thread nor delay ctl_server_stop().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/compat.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/span.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define CTL_TIMEOUT_MS 60000    /* one wait for the peer */
#define CTL_CONN_MAX_MS 120000  /* server side: one connection in all */
#define CTL_ACCEPT_PAUSE_MS 1000 /* after an accept error (EMFILE) */
#define CTL_GREETING "ctlv0"

struct ctl_conn {
	int fd;
	int wake_fd;         /* server side: the stop pipe; -1 client side */
	int64_t deadline;    /* server side: mono ns; 0 = none */
	char rbuf[4096];
	size_t rpos, rlen;
};

struct ctl_server {
	int fd;
	int wake[2]; /* pipe: stop request */
	pthread_t thread;
	char *path;
	const struct ctl_command *cmds;
	size_t ncmds;
	void *arg;
	struct log_ctx log;
	int held[4]; /* CTL_HOLD connections; closed by process exit */
	size_t nheld;
};

static struct ctl_conn *
conn_new(int fd)
{
	struct ctl_conn *c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	c->wake_fd = -1;
	return c;
}

void
ctl_close(struct ctl_conn *c)
{
	if (c == NULL)
		return;
	if (close(c->fd) == -1) {
		struct log_ctx lc = log_ctx_init("ctl", 0);

		log_debug(&lc, "close", LF_ERRNO(errno));
	}
	free(c);
}

/* Wait until the socket is ready for events. Returns 0, or -1 after
 * CTL_TIMEOUT_MS, past the connection's deadline, or (server side) once
 * a stop is requested; the stop byte stays in the pipe for server_main. */
static int
wait_io(struct ctl_conn *c, short events)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = c->fd, .events = events },
			{ .fd = c->wake_fd, .events = POLLIN } };
		int ms = CTL_TIMEOUT_MS, rc;

		if (c->deadline != 0) {
			int64_t left = c->deadline - time_mono_ns();

			if (left <= 0)
				return -1;
			if (left < (int64_t)ms * NS_PER_MS)
				ms = (int)((left + NS_PER_MS - 1) / NS_PER_MS);
		}
		rc = poll(p, c->wake_fd >= 0 ? 2 : 1, ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return -1;
		if (c->wake_fd >= 0 && p[1].revents != 0)
			return -1;
		return 0; /* ready, or an error the next call reports */
	}
}

static int
fill(struct ctl_conn *c)
{
	ssize_t n;

	if (wait_io(c, POLLIN) == -1)
		return -1;
	do
		n = read(c->fd, c->rbuf, sizeof(c->rbuf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c->rpos = 0;
	c->rlen = (size_t)n;
	return 0;
}

int
ctl_read_line(struct ctl_conn *c, struct buf *out)
{
	buf_reset(out);
	for (;;) {
		if (c->rpos == c->rlen && fill(c) == -1)
			return -1;
		while (c->rpos < c->rlen) {
			char ch = c->rbuf[c->rpos++];

			if (ch == '\n')
				return 0;
			if (out->len >= CTL_LINE_MAX || buf_addc(out, ch) == -1)
				return -1;
		}
	}
}

static int
read_exact(struct ctl_conn *c, char *p, size_t n)
{
	while (n > 0) {
		size_t k;

		if (c->rpos == c->rlen && fill(c) == -1)
			return -1;
		k = c->rlen - c->rpos < n ? c->rlen - c->rpos : n;
		memcpy(p, c->rbuf + c->rpos, k);
		c->rpos += k;
		p += k;
		n -= k;
	}
	return 0;
}

/* send() with MSG_NOSIGNAL: a peer that went away is an error return,
 * never a SIGPIPE. MSG_DONTWAIT and wait_io(): a peer that does not read
 * is bounded like one that does not write. */
static int
send_all(struct ctl_conn *c, const void *p, size_t n)
{
	const char *d = p;

	while (n > 0) {
		ssize_t k = send(c->fd, d, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_io(c, POLLOUT) == -1)
				return -1;
			continue;
		}
		if (k <= 0)
			return -1;
		d += k;
		n -= (size_t)k;
	}
	return 0;
}

int
ctl_write_line(struct ctl_conn *c, const char *line)
{
	if (strchr(line, '\n') != NULL)
		return -1;
	if (send_all(c, line, strlen(line)) == -1 ||
	    send_all(c, "\n", 1) == -1)
		return -1;
	return 0;
}

int
ctl_write_stream(struct ctl_conn *c, const void *p, size_t len)
{
	const char *d = p;
	char hdr[32];

	while (len > 0) {
		size_t n = len < CTL_CHUNK_MAX ? len : CTL_CHUNK_MAX;

		snprintf(hdr, sizeof(hdr), "%zu", n);
		if (ctl_write_line(c, hdr) == -1 || send_all(c, d, n) == -1)
			return -1;
		d += n;
		len -= n;
	}
	return ctl_write_line(c, "0");
}

int
ctl_read_stream(struct ctl_conn *c, struct buf *out)
{
	struct buf line;
	int rc = -1;

	buf_init(&line, CTL_LINE_MAX);
	for (;;) {
		uint64_t n;
		char *p;

		if (ctl_read_line(c, &line) == -1 ||
		    span_u64(span_of_buf(&line), CTL_CHUNK_MAX, &n) == -1)
			goto out;
		if (n == 0)
			break;
		p = buf_reserve(out, (size_t)n);
		if (p == NULL || read_exact(c, p, (size_t)n) == -1)
			goto out;
		buf_commit(out, (size_t)n);
	}
	rc = 0;
out:
	buf_release(&line);
	return rc;
}

static int
sock_path(const char *datadir, struct sockaddr_un *sa, struct buf *path,
    struct buf *err)
{
	io_path_join(path, datadir, CTL_SOCKET_NAME);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (buf_failed(path) || path->len >= sizeof(sa->sun_path)) {
		buf_addf(err, "%s: path too long for a unix socket", path->data);
		return -1;
	}
	memcpy(sa->sun_path, path->data, path->len + 1);
	return 0;
}

/* Returns true when the connection is held open (CTL_HOLD). */
static bool
serve_conn(struct ctl_server *s, struct ctl_conn *c)
{
	struct buf word;
	bool hold = false;

	buf_init(&word, CTL_LINE_MAX);
	if (ctl_write_line(c, CTL_GREETING) == -1)
		goto out;
	while (ctl_read_line(c, &word) == 0) {
		const struct ctl_command *cmd = NULL;

		for (size_t i = 0; i < s->ncmds; i++)
			if (strcmp(s->cmds[i].word, word.data) == 0)
				cmd = &s->cmds[i];
		log_info(&s->log, "ctl command", LF_STR("cmd", word.data));
		if (cmd == NULL) {
			ctl_write_line(c, "unknown command");
			break;
		}
		int rc = cmd->fn(c, s->arg);

		if (rc == CTL_HOLD && s->nheld < ARRAY_LEN(s->held)) {
			s->held[s->nheld++] = c->fd;
			hold = true;
			break;
		}
		if (rc != 0)
			break;
	}
out:
	buf_release(&word);
	return hold;
}

static void *
server_main(void *arg)
{
	struct ctl_server *s = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN },
			{ .fd = s->wake[0], .events = POLLIN } };
		struct ctl_conn *c;
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			break;
		fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == ECONNABORTED)
				continue;
			/* Out of descriptors or memory: the socket stays
			 * readable, so back off (still watching for stop)
			 * rather than spin. */
			log_error(&s->log, "ctl accept", LF_ERRNO(errno));
			(void)poll(&p[1], 1, CTL_ACCEPT_PAUSE_MS);
			continue;
		}
		c = conn_new(fd);
		c->wake_fd = s->wake[0];
		c->deadline = time_mono_ns() + (int64_t)CTL_CONN_MAX_MS *
		    NS_PER_MS;
		if (serve_conn(s, c))
			free(c); /* fd kept in s->held */
		else
			ctl_close(c);
	}
	return NULL;
}

struct ctl_server *
ctl_server_start(const char *datadir, const struct ctl_command *cmds,
    size_t ncmds, void *arg, struct buf *err)
{
	struct ctl_server *s = xcalloc(1, sizeof(*s));
	struct sockaddr_un sa;
	struct buf path;

	s->fd = -1;
	s->wake[0] = s->wake[1] = -1;
	s->cmds = cmds;
	s->ncmds = ncmds;
	s->arg = arg;
	s->log = log_ctx_init("ctl", 0);
	buf_init(&path, 4096);
	if (sock_path(datadir, &sa, &path, err) == -1)
		goto fail;
	s->path = buf_take(&path);
	if (unlink(s->path) == -1 && errno != ENOENT) {
		buf_addf(err, "%s: removing old socket: %s", s->path,
		    log_strerror(errno));
		goto fail;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    chmod(s->path, 0660) == -1 || listen(s->fd, 16) == -1) {
		buf_addf(err, "%s: %s", s->path, log_strerror(errno));
		goto fail;
	}
	if (pipe2(s->wake, O_CLOEXEC) == -1) {
		buf_addf(err, "pipe: %s", log_strerror(errno));
		goto fail;
	}
	if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
		buf_adds(err, "cannot start the ctl thread");
		goto fail;
	}
	return s;
fail:
	buf_release(&path);
	if (s->fd >= 0)
		close(s->fd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	free(s->path);
	free(s);
	return NULL;
}

void
ctl_server_stop(struct ctl_server *s)
{
	if (s == NULL)
		return;
	if (io_write_all(s->wake[1], "x", 1) == 0)
		pthread_join(s->thread, NULL);
	else
		log_error(&s->log, "ctl stop request", LF_ERRNO(errno));
	for (size_t i = 0; i < ARRAY_LEN(s->wake); i++)
		if (close(s->wake[i]) == -1)
			log_error(&s->log, "closing ctl stop pipe",
			    LF_ERRNO(errno));
	if (close(s->fd) == -1)
		log_error(&s->log, "closing ctl socket", LF_ERRNO(errno));
	if (unlink(s->path) == -1 && errno != ENOENT)
		log_error(&s->log, "removing ctl socket", LF_STR("path", s->path),
		    LF_ERRNO(errno));
	free(s->path);
	free(s);
}

struct ctl_conn *
ctl_dial(const char *datadir, struct buf *err)
{
	struct sockaddr_un sa;
	struct buf path, line;
	struct ctl_conn *c = NULL;
	int fd = -1;

	buf_init(&path, 4096);
	buf_init(&line, CTL_LINE_MAX);
	if (sock_path(datadir, &sa, &path, err) == -1)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		buf_addf(err, "%s: %s (is the server running? start it with "
			      "mox serve)",
		    path.data, log_strerror(errno));
		goto out;
	}
	c = conn_new(fd);
	fd = -1;
	if (ctl_read_line(c, &line) == -1 || strcmp(line.data, CTL_GREETING) != 0) {
		buf_addf(err, "%s: unexpected greeting from server", path.data);
		ctl_close(c);
		c = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	buf_release(&path);
	buf_release(&line);
	return c;
}

int
ctl_call(struct ctl_conn *c, const char *const *words, size_t nwords,
    struct buf *reply)
{
	for (size_t i = 0; i < nwords; i++)
		if (ctl_write_line(c, words[i]) == -1) {
			buf_reset(reply);
			buf_adds(reply, "writing to ctl socket failed");
			return -1;
		}
	if (ctl_read_line(c, reply) == -1) {
		buf_reset(reply);
		buf_adds(reply, "no reply from server over ctl socket");
		return -1;
	}
	return strcmp(reply->data, "ok") == 0 ? 0 : -1;
}
