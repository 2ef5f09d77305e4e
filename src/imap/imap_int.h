/*
 * imap_int.h: what the files of the IMAP server share privately: the
 * session, the command context, reply helpers, the change queue and the
 * command handlers dispatched from imap_server.c.
 *
 * Thread rule: a session belongs to the thread running its connection's
 * callbacks (net.h). Only the change queue (pend*, guarded by plock) and
 * sel_id (atomic) are touched by other threads, from the store's change
 * callback.
 */
#ifndef IMAP_IMAP_INT_H
#define IMAP_IMAP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap.h"
#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "lib/span.h"

struct net_conn;
struct sasl_server;
struct store_account;
struct store_sub;
struct store_change;

#define IMAP_TIMEOUT_NOAUTH_MS (30 * 1000)   /* spec/imap.md 2 */
#define IMAP_TIMEOUT_AUTH_MS (30 * 60 * 1000) /* spec/imap.md 2 */
#define IMAP_WRITE_NOAUTH_MS (30 * 1000)     /* spec/imap.md 2: write */
#define IMAP_WRITE_AUTH_MS (5 * 60 * 1000)   /* spec/imap.md 2: write */
#define IMAP_OUT_CHUNK 65536 /* output written between checks of the
			      * peer's reading (net_conn_is_output_full) */
#define IMAP_PENDING_MAX 10000  /* queued changes before the session ends */
#define IMAP_VANISHED_LINE 4000 /* spec/imap.md 12: lines < 4 KiB */
#define IMAP_MESSAGE_MAX ((size_t)1 << 31) /* largest file read for FETCH */

struct imap_listener {
	struct store *store;   /* shared */
	struct tls_server *tls; /* STARTTLS (plain listener) or NULL */
	bool implicit_tls;
	bool plain_auth_ok;    /* IMAP.NoRequireSTARTTLS */
	bool localserve;       /* no auth-failure slowdown for loopback */
	char *hostname;
	char *service;         /* "imap" or "imaps", for logs */
};

enum imap_state {
	IMAP_S_NOTAUTH = 1,
	IMAP_S_AUTH = 2,
	IMAP_S_SELECTED = 4,
};

enum imap_read {
	IMAP_R_LINE,       /* a command line (or its continuation) */
	IMAP_R_LITERAL,    /* bytes of a literal into the command text */
	IMAP_R_APPENDLIT,  /* an APPEND message literal into a temp file */
	IMAP_R_IDLE,       /* in IDLE, waiting for DONE */
	IMAP_R_AUTH,       /* AUTHENTICATE, waiting for a client response */
	IMAP_R_DELAY,      /* input paused until the protocol timer */
	IMAP_R_SLOW,       /* slow mode: input paused 1 s before a read */
	IMAP_R_TLS,        /* STARTTLS handshake running */
};

/* One queued change of another session (copied from the store's). */
struct imap_change {
	int type;          /* enum store_change_type */
	int64_t mailbox_id;
	uint32_t uid;
	int64_t modseq;
	uint32_t flags;
	char *keywords;    /* owned, or NULL */
	uint32_t *uids;    /* owned; REMOVE_UIDS */
	size_t n_uids;
	char *name;        /* owned; mailbox changes */
	char *old_name;    /* owned; MAILBOX_RENAME */
	unsigned special;
	bool nonexistent;
};

/* A command whose output the peer has not read yet keeps its place in
 * the session and continues when the output drained (net.h
 * net_conn_is_output_full()), so no worker waits for a slow reader.
 * The step returns 1 when the command is done (tagged reply written), 0
 * when it stopped because the output is full. The free function gets the
 * argument once, whether the command completed or the connection
 * closed. */
struct imap_session;
typedef int imap_cont_fn(struct imap_session *s, void *arg);
typedef void imap_cont_free_fn(void *arg);

/* A message literal of APPEND, streamed to a temp file. */
struct imap_append_file {
	char *path;     /* owned; under <datadir>/tmp */
	uint64_t size;  /* after bare-LF conversion */
};

struct imap_session {
	struct net_conn *c;
	const struct imap_listener *l;
	struct log_ctx log;
	unsigned state;            /* enum imap_state */
	enum imap_read rd;
	bool had_command;          /* a valid command was read */
	bool closing;

	/* Command being read: lines plus inline literals. */
	struct buf cmd;
	size_t line_bytes;         /* outside literals */
	size_t nlits;
	size_t lit_bytes;
	uint64_t lit_left;
	int append_fd;
	bool append_prev_cr;
	uint64_t append_size;
	struct imap_append_file *files; /* owned */
	size_t nfiles;
	char *tag;                 /* current command's tag; owned */
	char *cmdname;             /* upper-case, "UID FETCH"; owned */
	char *delayed_reply;       /* sent when the timer fires; owned */

	/* A command waiting for the peer to read its output. While set,
	 * no further input is read (commands run one at a time). */
	imap_cont_fn *cont;
	imap_cont_free_fn *cont_free;
	void *cont_arg;

	/* Enabled extensions (RFC 5161). */
	bool utf8, rev2, condstore, qresync;
	unsigned auth_failed;

	/* Per-IP limits (spec/imap.md 2, 2.2). */
	bool limit_exempt;         /* localserve and a loopback client */
	bool limit_counted;        /* holds an open-connection slot */
	bool slow;                 /* 3 or more failed logins: reads
				    * wait 1 s, output trickles */
	bool slow_ready;           /* the 1 s pause before a read is over */
	enum imap_read rd_before_slow; /* read state to resume after it */

	/* After login. */
	struct store_account *acct;
	char *username;            /* login address; owned */
	struct store_sub *sub;
	struct sasl_server *sasl;
	int auth_err;              /* enum sasl_err after a SCRAM "e=" */
	bool auth_failed_wait;     /* "e=" sent, awaiting the client line */

	/* Selected mailbox. */
	int64_t mb_id;
	char *mb_name;             /* owned */
	char *mb_keywords;         /* keywords in the last FLAGS sent; owned */
	bool readonly;
	uint32_t uidvalidity;
	uint32_t *uids;            /* the MSN map: live UIDs ascending */
	size_t nuids, capuids;
	uint32_t *saved;           /* SEARCHRES "$" */
	size_t nsaved;
	bool saved_valid;

	/* Change queue, filled from other threads. */
	struct lock plock;
	struct imap_change *pend;  /* guarded by plock */
	size_t npend, cappend;     /* guarded by plock */
	bool overflow;             /* guarded by plock */
	_Atomic int64_t sel_id;    /* mailbox whose message changes queue */
};

/* What a handler gets for one command. */
struct imap_cmd {
	struct imap_parser p;   /* positioned after the command name */
	const char *tag;        /* borrowed from the session */
	const char *name;       /* upper-case command name */
	bool uid;               /* "UID" prefix */
};

/* A handler replies and returns 0, or returns -1 for a syntax error with
 * x->p.why set; the caller then answers BAD. */
typedef int imap_cmd_fn(struct imap_session *s, struct imap_cmd *x);

/* ---- replies (imap_server.c) ---- */
void imap_reply(struct imap_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
/* "tag OK|NO|BAD text" for the current command. */
void imap_tagged(struct imap_session *s, const char *status,
    const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Answer NO for a store error; missing_code for STORE_ENOMAILBOX
 * ("NONEXISTENT" or "TRYCREATE"). Internal errors are logged. */
struct store_err;
void imap_store_no(struct imap_session *s, const struct store_err *e,
    const char *missing_code);
/* Write a buffer (a composed untagged line) to the connection. */
void imap_write_buf(struct imap_session *s, const struct buf *b);
/* Continue the current command with fn once its output drained (see
 * imap_cont_fn); arg is owned by the session from now on. The first step
 * runs right after the handler returns. */
void imap_cont_start(struct imap_session *s, imap_cont_fn *fn,
    imap_cont_free_fn *free_fn, void *arg);
/* Write b from *pos on, IMAP_OUT_CHUNK at a time, while the peer keeps
 * up. Returns 1 when all is written, 0 when the output is full (*pos
 * tells where to go on). */
int imap_write_paced(struct imap_session *s, const struct buf *b,
    size_t *pos);
/* End the current command: write body (taken, left empty) paced, then
 * with flush the pending changes (UID forms of FETCH, STORE, SEARCH; RFC
 * 9051 7.4.1) and the tagged reply "status text". */
void imap_finish_paced(struct imap_session *s, struct buf *body, bool flush,
    const char *status, const char *text);
/* The capability words for the session's connection state. */
void imap_capabilities(struct imap_session *s, struct buf *out);
/* Re-arm the read timeout for the session's state. */
void imap_set_timeout(struct imap_session *s);
/* Leave the selected state (no output). */
void imap_unselect(struct imap_session *s);
/* Log in as acct (reference taken over): subscribe to changes, state. */
void imap_login_done(struct imap_session *s, struct store_account *acct,
    const char *username);
/* Answer a failed login, after a delay when the client keeps failing. */
void imap_login_failed(struct imap_session *s, const char *reply);
/* Is the connection TLS? */
bool imap_is_tls(struct imap_session *s);

/* ---- mailbox names (imap_server.c) ---- */
/* Decode a mailbox argument (mUTF-7 unless UTF-8 is enabled) and
 * canonicalise it (store_mailbox_name_check). Returns a malloc'd name or
 * NULL after replying "NO [CANNOT]". */
char *imap_mailbox_arg(struct imap_session *s, const char *wire);
/* Decode only (for patterns); NULL on bad mUTF-7. malloc'd. */
char *imap_mailbox_decode(struct imap_session *s, const char *wire);
/* Append a mailbox name as the wire form (astring). */
void imap_mailbox_out(struct imap_session *s, struct buf *out,
    const char *name);

/* ---- changes (imap_changes.c) ---- */
void imap_changes_cb(const struct store_change *v, size_t n, void *arg);
/* Apply queued changes. With output, untagged responses are written;
 * with expunges false, removals stay queued (FETCH/STORE/SEARCH, RFC
 * 9051 7.4.1). initial: apply to the map silently (SELECT). */
void imap_changes_apply(struct imap_session *s, bool output, bool expunges);
void imap_changes_clear(struct imap_session *s);
/* The MSN (1-based) of uid, or 0. */
size_t imap_msn_of(const struct imap_session *s, uint32_t uid);
/* Add uid to the map (ascending); false when already there. */
bool imap_map_add(struct imap_session *s, uint32_t uid);
/* Remove uid from the map; returns its former MSN or 0. */
size_t imap_map_remove(struct imap_session *s, uint32_t uid);
/* Remove the uids (sorted here, in place) from the map in one pass. For
 * each that was there, in ascending order: its UID in gone[] and in
 * msns[] its MSN once the earlier ones were removed (what "* n EXPUNGE"
 * reports, RFC 9051 7.4.1). Both arrays hold n. Returns how many. */
size_t imap_map_remove_many(struct imap_session *s, uint32_t *uids, size_t n,
    uint32_t *gone, size_t *msns);
/* The selected mailbox was deleted: every message is gone (EXPUNGE or
 * VANISHED lines with output; the map is emptied either way). */
void imap_all_expunged(struct imap_session *s, bool output);
/* Append "FLAGS (...)" for flags/keywords. */
void imap_flags_out(struct buf *out, uint32_t flags, const char *keywords);
/* Client-visible modseq (RFC 7162: stored 0 is 1). */
int64_t imap_modseq(int64_t m);
/* Emit removals as EXPUNGE or VANISHED lines for uids (ascending). */
void imap_expunged_out(struct imap_session *s, const uint32_t *uids,
    size_t n);
/* The same VANISHED lines appended to out (nothing without QRESYNC: the
 * caller writes "* n EXPUNGE" as it removes each from the map). */
void imap_expunged_buf(struct imap_session *s, const uint32_t *uids,
    size_t n, struct buf *out);

/* Resolve a sequence set to UIDs (ascending, unique; malloc'd). For MSN
 * sets, an MSN beyond the map or "*" on an empty mailbox fails with
 * *why. */
int imap_seqset_uids(struct imap_session *s, const struct imap_seqset *set,
    bool uid, uint32_t **out, size_t *n_out, const char **why);

/* ---- handlers ---- */
imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
    imap_cmd_id, imap_cmd_enable, imap_cmd_starttls, imap_cmd_login,
    imap_cmd_authenticate, imap_cmd_namespace;
imap_cmd_fn imap_cmd_select, imap_cmd_create, imap_cmd_delete,
    imap_cmd_rename, imap_cmd_subscribe, imap_cmd_unsubscribe,
    imap_cmd_list, imap_cmd_lsub, imap_cmd_status, imap_cmd_getquotaroot,
    imap_cmd_getquota;
imap_cmd_fn imap_cmd_append, imap_cmd_replace;
imap_cmd_fn imap_cmd_idle, imap_cmd_check, imap_cmd_close,
    imap_cmd_unselect, imap_cmd_expunge;
imap_cmd_fn imap_cmd_fetch;
imap_cmd_fn imap_cmd_store;
imap_cmd_fn imap_cmd_search;
imap_cmd_fn imap_cmd_copy;

/* Continuations of multi-step commands (a client line arrived). */
void imap_auth_line(struct imap_session *s, struct span line);
void imap_idle_line(struct imap_session *s, struct span line);

/* Write the "* STATUS" line of one mailbox (STATUS, LIST-STATUS). */
struct store_mailbox;
void imap_status_line(struct imap_session *s, const struct store_mailbox *mb,
    unsigned items);
/* The same line appended to out. */
void imap_status_line_buf(struct imap_session *s,
    const struct store_mailbox *mb, unsigned items, struct buf *out);
/* Append "* FLAGS (...)" (and, read-write, "* OK [PERMANENTFLAGS ...]")
 * for the mailbox keywords kw (space separated, may be NULL). */
void imap_flags_response(struct imap_session *s, const char *kw,
    struct buf *out);
/* If the keywords of the selected mailbox changed since the last FLAGS
 * response (kw: the current ones), send FLAGS again (RFC 9051 7.3.5). */
void imap_keywords_changed(struct imap_session *s, const char *kw);
/* The same after this session's own STORE, APPEND or COPY: reads the
 * mailbox's keywords from the store. */
void imap_keywords_check(struct imap_session *s);
/* STATUS items parsed from "(" ... ")"; 0 or -1. */
int imap_status_items(struct imap_cmd *x, unsigned *items);

#endif
