/*
 * queue.h: durable storage of the outgoing queue (spec/queue.md 1-2):
 * queue/index.db (SQLite, WAL, synchronous=FULL) with one record per
 * recipient, and the message files queue/msg/<id>. Submission adds
 * messages here before it answers 250; the delivery machinery reads them.
 *
 * Threads: a struct queue may be shared by all threads; every call opens
 * its own database connection, so a sqlite3 handle never leaves the
 * calling thread. Calls block on disk: never on the reactor.
 */
#ifndef QUEUE_QUEUE_H
#define QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define QUEUE_EXTRA_MAX 100        /* X-Mox-Extra-* keys per message */
#define QUEUE_MAX_ATTEMPTS_DEFAULT 8 /* spec/queue.md 4.1 */

/* RequireTLS tri-state (spec/queue.md 1.1). */
enum queue_requiretls {
	QUEUE_REQUIRETLS_UNSET,
	QUEUE_REQUIRETLS_YES, /* REQUIRETLS (RFC 8689) */
	QUEUE_REQUIRETLS_NO,  /* "TLS-Required: No" */
};

struct queue_extra {
	char *key;
	char *value;
};

/* One record (spec/queue.md 1.1). Strings are owned (NULL read as ""). */
struct queue_msg {
	int64_t id;             /* set by queue_add() */
	int64_t base_id;        /* set by queue_add() */
	int64_t queued_ns;      /* set by queue_add() */
	bool hold;              /* set by queue_add() from hold rules */
	char *sender_account;
	char *sender_localpart; /* "" with sender_domain "" for <> */
	char *sender_domain;
	char *from_id;
	char *recipient_localpart;
	char *recipient_domain;
	int64_t attempts;
	int64_t max_attempts;   /* 0: default 8 */
	int64_t next_attempt_ns; /* 0 at add: now */
	int64_t last_attempt_ns; /* 0: none */
	bool has_8bit;
	bool smtputf8;
	bool is_dmarc_report;
	bool is_tls_report;
	int64_t size;           /* prefix + file */
	char *message_id;       /* with <> */
	char *msg_prefix;       /* bytes sent before the file */
	size_t msg_prefix_len;
	char *subject;
	char *dsn_utf8;
	char *transport;
	enum queue_requiretls requiretls;
	char *future_release_request; /* "for;<n>" or "until;<t>" */
	struct queue_extra *extra;
	size_t nextra;
};

struct queue; /* opaque */

/* Open (creating) <datadir>/queue/index.db and queue/msg/. NULL with the
 * reason appended to err. */
struct queue *queue_open(const char *datadir, struct buf *err);
void queue_close(struct queue *q); /* NULL-safe */

/* Add n records for the message file at path (complete message without
 * the records' prefix; on the data directory's file system). In one
 * transaction: rows inserted (ids assigned in order; a group with the
 * same sender and prefix shares base_id = the first id when n > 1), hold
 * rules applied, the file hard-linked (copied across file systems) to
 * queue/msg/<id> for each record and the directory fsynced; then commit.
 * Durable on return 0; -1 with err and nothing added. The file at path
 * stays the caller's. */
int queue_add(struct queue *q, const char *path, struct queue_msg *msgs,
    size_t n, struct buf *err);
/* All records in id order (for tests and tools). Release with
 * queue_msg_list_free(). */
int queue_list(struct queue *q, struct queue_msg **out, size_t *n_out,
    struct buf *err);
void queue_msg_release(struct queue_msg *m);
void queue_msg_list_free(struct queue_msg *v, size_t n);
/* Remove record id and its file (after a delivery). */
int queue_remove(struct queue *q, int64_t id, struct buf *err);
/* Path of record id's message file into out. */
void queue_msg_path(const struct queue *q, int64_t id, struct buf *out);

#endif
