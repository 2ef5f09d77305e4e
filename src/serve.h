/*
 * serve.h: run the server from a loaded configuration: listeners on the
 * reactor, TLS, privileges, the ctl socket, signals. Used by `mox serve`
 * and `mox localserve`.
 */
#ifndef SERVE_H
#define SERVE_H

#include <stdbool.h>

struct config;

struct serve_opts {
	bool localserve;   /* no privilege drop; loopback limits off */
};

/* Serve with cfg (published as the current config; the caller's
 * reference moves to the server) until SIGTERM/SIGINT or a ctl "stop".
 * Returns the exit status: 0 after a clean stop, 1 on a setup failure
 * (explained on stderr). Call from the main thread before other threads
 * exist. */
int serve_run(struct config *cfg, const struct serve_opts *o);

#endif
