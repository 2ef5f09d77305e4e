/*
 * ctl.h: the control socket <DataDir>/ctl (spec/config.md section 6).
 * Line protocol: the server greets "ctlv0"; a client sends a command word
 * and its parameters one per line; the server answers "ok" or an error
 * line; bulk data travels as "<n>\n" + n bytes chunks ended by "0\n".
 * Several commands may follow on one connection.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define CTL_LINE_MAX 4096          /* one command word or parameter */
#define CTL_CHUNK_MAX (1024 * 1024) /* one data chunk */
#define CTL_SOCKET_NAME "ctl"

/* One connected peer (either side). Blocking I/O with a timeout. */
struct ctl_conn;

/* Read one line (without "\n") into out. Returns 0, or -1 on EOF, error,
 * or a line over CTL_LINE_MAX. */
int ctl_read_line(struct ctl_conn *c, struct buf *out);
int ctl_write_line(struct ctl_conn *c, const char *line);
/* Write data as one chunk stream (chunks, then "0"). */
int ctl_write_stream(struct ctl_conn *c, const void *p, size_t len);
/* Read a whole chunk stream into out (bounded by out's max). */
int ctl_read_stream(struct ctl_conn *c, struct buf *out);

/* A server-side command handler. It reads its parameters (the lines after
 * the command word) with ctl_read_line() and writes its replies. Return 0
 * to serve the next command, -1 to close the connection, or CTL_HOLD to
 * keep the connection open, unserved, until the process exits (so a
 * client of "stop" learns from the close that the server is gone). */
#define CTL_HOLD 1
typedef int ctl_handler_fn(struct ctl_conn *c, void *arg);

struct ctl_command {
	const char *word;
	ctl_handler_fn *fn;
};

struct ctl_server;

/* Create the socket (an existing file is removed first) and start one
 * thread that serves connections one at a time with the given command
 * table (borrowed; must outlive the server). Returns NULL with err set. */
struct ctl_server *ctl_server_start(const char *datadir,
    const struct ctl_command *cmds, size_t ncmds, void *arg,
    struct buf *err);
/* Stop the thread, close and remove the socket. NULL-safe. Prompt even
 * while a client is being served: every wait of the server thread also
 * watches for the stop, and one connection is served for at most two
 * minutes in all. */
void ctl_server_stop(struct ctl_server *s);

/* Client: connect to <datadir>/ctl and read the greeting. Returns NULL
 * with err set (naming the socket path) when no server answers. */
struct ctl_conn *ctl_dial(const char *datadir, struct buf *err);
void ctl_close(struct ctl_conn *c);
/* Send cmd and params, read the first reply line into reply. Returns 0
 * when the reply is "ok", -1 otherwise (reply holds the error). */
int ctl_call(struct ctl_conn *c, const char *const *words, size_t nwords,
    struct buf *reply);

#endif
