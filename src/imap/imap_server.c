/*
 * imap_server.c: the IMAP session as a protocol of the network runtime:
 * greeting, reading commands with their literals (RFC 9051 4.3, RFC 7888
 * LITERAL+, RFC 3516 literal8) within the limits of spec/imap.md 2.1,
 * APPEND message literals streamed to temp files with bare LF made CRLF,
 * dispatch from a table with the allowed states (RFC 9051 3, 6), reply
 * helpers, timeouts, shutdown, mailbox name encoding (RFC 3501 5.1.3,
 * RFC 6855 3) and capabilities (spec/imap.md 3).
 *
 * Input is from unauthenticated peers until login. Thread rule: a session
 * runs on the thread of its connection's callback; it never waits for the
 * client (IDLE, AUTHENTICATE continuations and delays return to the
 * reactor and continue on the next event).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/io.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "net/net.h"
#include "sasl/sasl.h"
#include "smtp/smtp_int.h" /* the per-IP limiter shared with SMTP */
#include "lib/banned.h"

#define IMAP_CAPS_BASE \
	"IMAP4rev2 IMAP4rev1 ENABLE LITERAL+ IDLE SASL-IR BINARY UNSELECT " \
	"UIDPLUS ESEARCH SEARCHRES MOVE UTF8=ACCEPT LIST-EXTENDED " \
	"SPECIAL-USE LIST-STATUS AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 " \
	"AUTH=SCRAM-SHA-1-PLUS AUTH=SCRAM-SHA-1 AUTH=CRAM-MD5 ID " \
	"APPENDLIMIT=9223372036854775807 CONDSTORE QRESYNC STATUS=SIZE " \
	"QUOTA QUOTA=RES-STORAGE"
/* spec/imap.md 3 "(later) full list", the words implemented, in its
 * order; then RFC 3348 CHILDREN. */
#define IMAP_CAPS_LATER \
	" CREATE-SPECIAL-USE SAVEDATE WITHIN NAMESPACE MULTIAPPEND REPLACE " \
	"PREVIEW CHILDREN"

#define AUTH_DELAY_MAX_S 15
#define SLOW_AFTER 3        /* spec/imap.md 2.2: failures before slow mode */
#define SLOW_READ_MS 1000   /* spec/imap.md 2.2: pause before each read */
#define SLOW_WRITE_MS 1000  /* spec/imap.md 2.2: pause between bytes sent */

enum {
	CF_NOFLUSH = 1,  /* keep expunges queued (MSN FETCH/STORE/SEARCH) */
	CF_APPEND = 2,   /* message literals are in temp files */
};

struct cmd_def {
	const char *name;
	imap_cmd_fn *fn;
	unsigned states; /* enum imap_state bits */
	unsigned flags;
	bool uid;        /* "UID name" */
};

#define ANY (IMAP_S_NOTAUTH | IMAP_S_AUTH | IMAP_S_SELECTED)
#define AUTHED (IMAP_S_AUTH | IMAP_S_SELECTED)
#define SEL IMAP_S_SELECTED

/* RFC 9051 6 and spec/imap.md 5: commands per state. */
static const struct cmd_def cmds[] = {
	{ "CAPABILITY", imap_cmd_capability, ANY, 0, false },
	{ "NOOP", imap_cmd_noop, ANY, 0, false },
	{ "LOGOUT", imap_cmd_logout, ANY, 0, false },
	{ "ID", imap_cmd_id, ANY, 0, false },
	{ "STARTTLS", imap_cmd_starttls, IMAP_S_NOTAUTH, 0, false },
	{ "AUTHENTICATE", imap_cmd_authenticate, IMAP_S_NOTAUTH, 0, false },
	{ "LOGIN", imap_cmd_login, IMAP_S_NOTAUTH, 0, false },
	{ "ENABLE", imap_cmd_enable, AUTHED, 0, false },
	{ "SELECT", imap_cmd_select, AUTHED, 0, false },
	{ "EXAMINE", imap_cmd_select, AUTHED, 0, false },
	{ "CREATE", imap_cmd_create, AUTHED, 0, false },
	{ "DELETE", imap_cmd_delete, AUTHED, 0, false },
	{ "RENAME", imap_cmd_rename, AUTHED, 0, false },
	{ "SUBSCRIBE", imap_cmd_subscribe, AUTHED, 0, false },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, AUTHED, 0, false },
	{ "LIST", imap_cmd_list, AUTHED, 0, false },
	{ "LSUB", imap_cmd_lsub, AUTHED, 0, false },
	{ "NAMESPACE", imap_cmd_namespace, AUTHED, 0, false },
	{ "STATUS", imap_cmd_status, AUTHED, 0, false },
	{ "APPEND", imap_cmd_append, AUTHED, CF_APPEND, false },
	{ "IDLE", imap_cmd_idle, AUTHED, 0, false },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, AUTHED, 0, false },
	{ "GETQUOTA", imap_cmd_getquota, AUTHED, 0, false },
	{ "CHECK", imap_cmd_check, SEL, 0, false },
	{ "CLOSE", imap_cmd_close, SEL, 0, false },
	{ "UNSELECT", imap_cmd_unselect, SEL, 0, false },
	{ "EXPUNGE", imap_cmd_expunge, SEL, 0, false },
	{ "SEARCH", imap_cmd_search, SEL, CF_NOFLUSH, false },
	{ "FETCH", imap_cmd_fetch, SEL, CF_NOFLUSH, false },
	{ "STORE", imap_cmd_store, SEL, CF_NOFLUSH, false },
	{ "COPY", imap_cmd_copy, SEL, 0, false },
	{ "MOVE", imap_cmd_copy, SEL, 0, false },
	{ "REPLACE", imap_cmd_replace, SEL, CF_APPEND, false },
	{ "EXPUNGE", imap_cmd_expunge, SEL, 0, true },
	{ "SEARCH", imap_cmd_search, SEL, 0, true },
	{ "FETCH", imap_cmd_fetch, SEL, 0, true },
	{ "STORE", imap_cmd_store, SEL, 0, true },
	{ "COPY", imap_cmd_copy, SEL, 0, true },
	{ "MOVE", imap_cmd_copy, SEL, 0, true },
	{ "REPLACE", imap_cmd_replace, SEL, CF_APPEND, true },
};

struct imap_listener *
imap_listener_new(const struct imap_listener_params *p)
{
	struct imap_listener *l = xcalloc(1, sizeof(*l));

	l->store = p->store;
	l->tls = p->tls;
	l->implicit_tls = p->implicit_tls;
	l->plain_auth_ok = p->plain_auth_ok;
	l->localserve = p->localserve;
	l->hostname = xstrdup(p->hostname != NULL ? p->hostname : "localhost");
	l->service = xstrdup(p->implicit_tls ? "imaps" : "imap");
	return l;
}

void
imap_listener_free(struct imap_listener *l)
{
	if (l == NULL)
		return;
	free(l->hostname);
	free(l->service);
	free(l);
}

bool
imap_is_tls(struct imap_session *s)
{
	return net_conn_tls_active(s->c) || s->l->implicit_tls;
}

void
imap_capabilities(struct imap_session *s, struct buf *out)
{
	buf_adds(out, IMAP_CAPS_BASE IMAP_CAPS_LATER);
	if (imap_is_tls(s)) {
		buf_adds(out, " AUTH=PLAIN");
		return;
	}
	if (s->l->tls != NULL)
		buf_adds(out, " STARTTLS");
	/* RFC 9051 6.2.1 (spec/imap.md 3): no plaintext login before TLS
	 * unless configured. */
	buf_adds(out, s->l->plain_auth_ok ? " AUTH=PLAIN" : " LOGINDISABLED");
}

void
imap_set_timeout(struct imap_session *s)
{
	bool noauth = s->state == IMAP_S_NOTAUTH;

	net_conn_set_idle_timeout(s->c, noauth ? IMAP_TIMEOUT_NOAUTH_MS :
						 IMAP_TIMEOUT_AUTH_MS);
	net_conn_set_write_timeout(s->c, noauth ? IMAP_WRITE_NOAUTH_MS :
						  IMAP_WRITE_AUTH_MS);
}

void
imap_reply(struct imap_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, BUF_NOMAX);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	buf_adds(&b, "\r\n");
	net_conn_write(s->c, b.data, b.len);
	buf_release(&b);
}

void
imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, BUF_NOMAX);
	buf_addf(&b, "%s %s ", s->tag != NULL ? s->tag : "*", status);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	buf_adds(&b, "\r\n");
	net_conn_write(s->c, b.data, b.len);
	buf_release(&b);
}

void
imap_write_buf(struct imap_session *s, const struct buf *b)
{
	net_conn_write(s->c, b->data, b->len);
}

/* ---- output paced by the peer's reading ---- */

void
imap_cont_start(struct imap_session *s, imap_cont_fn *fn,
    imap_cont_free_fn *free_fn, void *arg)
{
	assert(s->cont == NULL);
	s->cont = fn;
	s->cont_free = free_fn;
	s->cont_arg = arg;
}

static void
cont_end(struct imap_session *s)
{
	imap_cont_free_fn *f = s->cont_free;
	void *arg = s->cont_arg;

	s->cont = NULL;
	s->cont_free = NULL;
	s->cont_arg = NULL;
	if (f != NULL)
		f(arg);
}

/* One step of the waiting command. Returns false when it stopped on
 * full output (the runtime calls again with NET_EV_READ once the peer
 * read enough). */
static bool
cont_run(struct imap_session *s)
{
	if (s->closing || net_conn_is_closing(s->c) ||
	    s->cont(s, s->cont_arg) == 1) {
		cont_end(s);
		return true;
	}
	return false;
}

int
imap_write_paced(struct imap_session *s, const struct buf *b, size_t *pos)
{
	while (*pos < b->len) {
		size_t n = b->len - *pos;

		if (net_conn_is_output_full(s->c))
			return 0;
		if (n > IMAP_OUT_CHUNK)
			n = IMAP_OUT_CHUNK;
		net_conn_write(s->c, b->data + *pos, n);
		*pos += n;
	}
	return 1;
}

struct paced {
	struct buf body;
	size_t pos;
	bool flush;
	char *status, *text;
};

static int
paced_step(struct imap_session *s, void *arg)
{
	struct paced *p = arg;

	if (imap_write_paced(s, &p->body, &p->pos) == 0)
		return 0;
	/* RFC 9051 7.4.1: the MSN forms leave expunges queued. */
	if (p->flush)
		imap_changes_apply(s, true, true);
	imap_tagged(s, p->status, "%s", p->text);
	return 1;
}

static void
paced_free(void *arg)
{
	struct paced *p = arg;

	buf_release(&p->body);
	free(p->status);
	free(p->text);
	free(p);
}

void
imap_finish_paced(struct imap_session *s, struct buf *body, bool flush,
    const char *status, const char *text)
{
	struct paced *p = xcalloc(1, sizeof(*p));

	p->body = *body;
	buf_init(body, BUF_NOMAX);
	p->flush = flush;
	p->status = xstrdup(status);
	p->text = xstrdup(text);
	imap_cont_start(s, paced_step, paced_free, p);
}

char *
imap_mailbox_decode(struct imap_session *s, const char *wire)
{
	struct buf b;
	const char *why;

	if (s->utf8)
		return xstrdup(wire);
	/* RFC 3501 5.1.3: mailbox names are modified UTF-7. */
	buf_init(&b, STORE_MAILBOX_NAME_MAX * 4);
	if (imap_mutf7_decode(wire, &b, &why) == -1 || buf_failed(&b)) {
		buf_release(&b);
		return NULL;
	}
	return buf_take(&b);
}

char *
imap_mailbox_arg(struct imap_session *s, const char *wire)
{
	struct buf canon;
	const char *why = "invalid modified utf-7 in mailbox name";
	char *dec = imap_mailbox_decode(s, wire);

	buf_init(&canon, STORE_MAILBOX_NAME_MAX + 1);
	if (dec != NULL && store_mailbox_name_check(dec, &canon, &why) == 0 &&
	    !buf_failed(&canon)) {
		free(dec);
		return buf_take(&canon);
	}
	free(dec);
	buf_release(&canon);
	imap_tagged(s, "NO", "[CANNOT] %s", why);
	return NULL;
}

void
imap_mailbox_out(struct imap_session *s, struct buf *out, const char *name)
{
	struct buf enc;

	if (s->utf8) {
		imap_fmt_astring(out, name, true);
		return;
	}
	buf_init(&enc, BUF_NOMAX);
	if (imap_mutf7_encode(name, &enc) == -1)
		imap_fmt_astring(out, name, false);
	else
		imap_fmt_astring(out, enc.data, false);
	buf_release(&enc);
}

void
imap_unselect(struct imap_session *s)
{
	atomic_store(&s->sel_id, 0);
	s->state = IMAP_S_AUTH;
	s->mb_id = 0;
	free(s->mb_name);
	s->mb_name = NULL;
	free(s->mb_keywords);
	s->mb_keywords = NULL;
	free(s->uids);
	s->uids = NULL;
	s->nuids = s->capuids = 0;
	free(s->saved);
	s->saved = NULL;
	s->nsaved = 0;
	s->saved_valid = false;
	s->readonly = false;
	imap_changes_clear(s);
}

void
imap_login_done(struct imap_session *s, struct store_account *acct,
    const char *username)
{
	s->acct = acct;
	free(s->username);
	s->username = xstrdup(username);
	s->sub = store_sub_new(acct, imap_changes_cb, s);
	s->state = IMAP_S_AUTH;
	s->auth_failed = 0;
	/* spec/imap.md 2.2: a successful login ends slow mode; its reply
	 * and anything still pending go at full speed. */
	s->slow = false;
	net_conn_set_trickle(s->c, 0);
	/* spec/imap.md 2.2: a success resets the IP's failure count. */
	if (!s->limit_exempt)
		smtp_limit_auth_ok(net_conn_remote_ip(s->c));
	imap_set_timeout(s);
	log_info(&s->log, "authenticated", LF_STR("username", username));
}

void
imap_login_failed(struct imap_session *s, const char *reply)
{
	unsigned delay = 0;

	s->auth_failed++;
	/* spec/imap.md 2.2: clients that keep failing are slowed down; a
	 * failed login is answered after a timer, never a sleep. Every
	 * failure counts in the per-IP limiter shared with SMTP. */
	if (!s->limit_exempt)
		smtp_limit_auth_failed(net_conn_remote_ip(s->c), time_wall_ns());
	if (s->auth_failed >= SLOW_AFTER && !s->limit_exempt) {
		s->slow = true;
		delay = s->auth_failed - 2;
		if (delay > AUTH_DELAY_MAX_S)
			delay = AUTH_DELAY_MAX_S;
	}
	if (delay == 0) {
		imap_tagged(s, "NO", "%s", reply);
		return;
	}
	free(s->delayed_reply);
	s->delayed_reply = xstrdup(reply);
	s->rd = IMAP_R_DELAY;
	net_conn_pause_input(s->c, true);
	net_conn_set_timer(s->c, delay * 1000);
}

void
imap_store_no(struct imap_session *s, const struct store_err *e,
    const char *missing_code)
{
	switch (e->code) {
	case STORE_ENOMAILBOX:
		imap_tagged(s, "NO", "[%s] %s", missing_code, e->text);
		return;
	case STORE_EEXISTS:
		imap_tagged(s, "NO", "[ALREADYEXISTS] %s", e->text);
		return;
	case STORE_EHASCHILDREN:
		imap_tagged(s, "NO", "[HASCHILDREN] %s", e->text);
		return;
	case STORE_EINVAL:
		imap_tagged(s, "NO", "[CANNOT] %s", e->text);
		return;
	case STORE_EOVERQUOTA:
		imap_tagged(s, "NO", "[OVERQUOTA] %s", e->text);
		return;
	case STORE_ENOMSG:
		imap_tagged(s, "NO", "[EXPUNGEISSUED] %s", e->text);
		return;
	case STORE_OK:
	case STORE_EINTERNAL:
	case STORE_ENOPASSWORD:
	case STORE_EBADPASSWORD:
		break;
	}
	log_error(&s->log, "store error", LF_STR("cmd", s->cmdname),
	    LF_ERR(e->text));
	imap_tagged(s, "NO", "[SERVERBUG] internal error");
}

/* ---- command assembly ---- */

static void
files_cleanup(struct imap_session *s)
{
	for (size_t i = 0; i < s->nfiles; i++) {
		if (unlink(s->files[i].path) == -1 && errno != ENOENT)
			log_error(&s->log, "removing temp file", LF_ERRNO(errno));
		free(s->files[i].path);
	}
	free(s->files);
	s->files = NULL;
	s->nfiles = 0;
	if (s->append_fd >= 0) {
		(void)close(s->append_fd);
		s->append_fd = -1;
	}
}

static void
cmd_reset(struct imap_session *s)
{
	files_cleanup(s);
	buf_release(&s->cmd);
	buf_init(&s->cmd, IMAP_COMMAND_MAX);
	s->line_bytes = 0;
	s->nlits = 0;
	s->lit_bytes = 0;
	s->lit_left = 0;
	if (s->rd == IMAP_R_LINE || s->rd == IMAP_R_LITERAL ||
	    s->rd == IMAP_R_APPENDLIT)
		s->rd = IMAP_R_LINE;
}

/* The tag at the start of the command text, for replies before parsing. */
static void
take_tag(struct imap_session *s)
{
	struct imap_parser p;
	struct span t;

	if (s->tag != NULL)
		return;
	imap_parser_init(&p, span_of_buf(&s->cmd));
	if (imap_parse_tag(&p, &t) == 0)
		s->tag = span_dup(t);
	imap_parser_release(&p);
}

static void
bye_close(struct imap_session *s, const char *text)
{
	imap_reply(s, "* BYE %s", text);
	net_conn_close(s->c);
	s->closing = true;
}

static const struct cmd_def *
lookup(struct span name, bool uid)
{
	for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
		if (cmds[i].uid == uid && span_eq_ci(name, cmds[i].name))
			return &cmds[i];
	return NULL;
}

static void
execute(struct imap_session *s)
{
	struct imap_cmd x;
	struct span tag, name;
	const struct cmd_def *d = NULL;
	bool uid = false;
	int64_t t0 = 0;
	char *up;

	memset(&x, 0, sizeof(x));
	imap_parser_init(&x.p, span_of_buf(&s->cmd));
	x.p.utf8 = s->utf8;
	if (imap_parse_tag(&x.p, &tag) == -1)
		goto unknown;
	/* RFC 9051 7.1.5: a BAD is tagged whenever the tag is readable. */
	free(s->tag);
	s->tag = span_dup(tag);
	if (imap_parse_sp(&x.p) == -1 || imap_parse_cmdname(&x.p, &name) == -1)
		goto unknown;
	if (span_eq_ci(name, "UID")) {
		uid = true;
		if (imap_parse_sp(&x.p) == -1 ||
		    imap_parse_cmdname(&x.p, &name) == -1)
			goto unknown;
	}
	d = lookup(name, uid);
	if (d == NULL)
		goto unknown;
	s->had_command = true;
	up = xmalloc(name.len + 5);
	snprintf(up, name.len + 5, "%s%.*s", uid ? "UID " : "", (int)name.len,
	    name.p);
	for (char *q = up; *q != '\0'; q++)
		if (*q >= 'a' && *q <= 'z')
			*q = (char)(*q - 'a' + 'A');
	free(s->cmdname);
	s->cmdname = up;
	x.tag = s->tag;
	x.name = up;
	x.uid = uid;
	x.p.ext_literals = (d->flags & CF_APPEND) != 0;
	if (!(d->states & s->state)) {
		imap_tagged(s, "NO", "not allowed in this connection state");
		goto out;
	}
	if (s->state & AUTHED)
		imap_changes_apply(s, true, !(d->flags & CF_NOFLUSH));
	if (log_enabled(&s->log, LOG_DEBUG))
		t0 = time_mono_ns();
	if (d->fn(s, &x) == -1)
		imap_tagged(s, "BAD", "%s unrecognized syntax/command: %s", up,
		    x.p.why != NULL ? x.p.why : "syntax error");
	log_debug(&s->log, "command", LF_STR("cmd", up),
	    LF_DUR("duration", time_mono_ns() - t0));
	goto out;
unknown:
	if (!s->had_command) {
		/* spec/imap.md 2: a non-IMAP client gets a goodbye. */
		bye_close(s, "please try again speaking imap");
		goto out;
	}
	if (s->tag == NULL)
		imap_reply(s, "* BAD unrecognized syntax/command: %s",
		    x.p.why != NULL ? x.p.why : "bad tag");
	else
		imap_tagged(s, "BAD", "unrecognized syntax/command: unknown "
				      "command");
out:
	imap_parser_release(&x.p);
}

/* The parser of the APPEND handler needs each message literal's file. */
static int
append_open(struct imap_session *s, uint64_t size)
{
	struct buf path;
	int fd;

	buf_init(&path, BUF_NOMAX);
	buf_addf(&path, "%s/tmp/imap-append-XXXXXX", store_datadir(s->l->store));
	fd = mkostemp(path.data, O_CLOEXEC);
	if (fd == -1) {
		log_error(&s->log, "creating temp file", LF_ERRNO(errno));
		buf_release(&path);
		return -1;
	}
	s->files = xreallocarray(s->files, s->nfiles + 1, sizeof(*s->files));
	s->files[s->nfiles].path = buf_take(&path);
	s->files[s->nfiles].size = 0;
	s->nfiles++;
	s->append_fd = fd;
	s->append_prev_cr = false;
	s->append_size = 0;
	s->lit_left = size;
	return 0;
}

/* A literal announced at the end of the line just read. */
static void
literal_start(struct imap_session *s, const struct imap_literal_hdr *h)
{
	char *mbox = NULL;
	int is_msg;

	take_tag(s);
	is_msg = imap_append_literal_is_msg(span_of_buf(&s->cmd), s->utf8,
	    &mbox);
	if (is_msg == 1 && (s->state & AUTHED)) {
		if (mbox != NULL && h->sync) {
			/* spec/imap.md 9.1: TRYCREATE before the continuation. */
			char *name = imap_mailbox_decode(s, mbox);
			struct store_mailbox mb;
			struct store_err e;
			struct buf canon;
			const char *why;
			int rc;

			buf_init(&canon, STORE_MAILBOX_NAME_MAX + 1);
			rc = name == NULL ||
			    store_mailbox_name_check(name, &canon, &why) == -1 ||
			    store_mailbox_get(s->acct, canon.data, &mb, &e) == -1;
			if (!rc)
				store_mailbox_release(&mb);
			buf_release(&canon);
			free(name);
			if (rc) {
				imap_tagged(s, "NO", "[TRYCREATE] mailbox does not "
						     "exist");
				free(mbox);
				cmd_reset(s);
				return;
			}
		}
		free(mbox);
		if (append_open(s, h->size) == -1) {
			bye_close(s, "internal error");
			return;
		}
		buf_adds(&s->cmd, "\r\n");
		s->rd = IMAP_R_APPENDLIT;
		if (h->sync)
			imap_reply(s, "+ Ready for literal data");
		return;
	}
	free(mbox);
	/* spec/imap.md 2.1: limits of ordinary literals. */
	if (h->size > IMAP_LITERAL_MAX || s->nlits + 1 > IMAP_LITERALS_MAX ||
	    s->lit_bytes + h->size > IMAP_LITERAL_TOTAL_MAX) {
		if (h->sync) {
			imap_tagged(s, "BAD", "[TOOBIG] literal too big");
			cmd_reset(s);
		} else {
			bye_close(s, "[ALERT] literal too big");
		}
		return;
	}
	s->nlits++;
	s->lit_bytes += (size_t)h->size;
	s->lit_left = h->size;
	buf_adds(&s->cmd, "\r\n");
	s->rd = IMAP_R_LITERAL;
	/* RFC 9051 7.5: "+" then a space (spec/imap.md 2.1). */
	if (h->sync)
		imap_reply(s, "+ ");
}

static void
got_line(struct imap_session *s, struct span line)
{
	struct imap_literal_hdr h;
	const char *why = NULL;
	int rc;

	if (log_enabled(&s->log, LOG_TRACE)) {
		/* Lines of LOGIN and AUTHENTICATE hold secrets: traceauth. */
		if (s->cmd.len == 0 && line.len < 64 &&
		    (memmem(line.p, line.len, " LOGIN ", 7) != NULL ||
			memmem(line.p, line.len, " login ", 7) != NULL))
			log_traceauth(&s->log, "C: (login)",
			    LF_STRN("line", line.p, line.len));
		else
			log_trace(&s->log, "C:", LF_STRN("line", line.p, line.len));
	}
	if (s->cmd.len == 0) {
		free(s->tag);
		s->tag = NULL;
	}
	s->line_bytes += line.len + 2;
	buf_add(&s->cmd, line.p, line.len);
	rc = imap_parse_literal_hdr(line, &h, &why);
	if (rc == -1) {
		take_tag(s);
		if (!s->had_command) {
			bye_close(s, "please try again speaking imap");
			return;
		}
		imap_tagged(s, "BAD", "unrecognized syntax/command: %s", why);
		cmd_reset(s);
		/* spec/imap.md 2: the data of a bad non-synchronising
		 * literal follows at once and cannot be skipped reliably. */
		if (line.len >= 2 && line.p[line.len - 2] == '+' &&
		    line.p[line.len - 1] == '}') {
			net_conn_close(s->c);
			s->closing = true;
		}
		return;
	}
	if (rc == 1) {
		if (!s->had_command && s->cmd.len == line.len &&
		    memchr(line.p, ' ', line.len) == NULL) {
			bye_close(s, "please try again speaking imap");
			return;
		}
		literal_start(s, &h);
		return;
	}
	execute(s);
	cmd_reset(s);
}

static size_t
append_stream(void *arg, struct span in, bool *done)
{
	struct imap_session *s = arg;
	char out[8192];
	size_t used = 0, o = 0;

	while (used < in.len && s->lit_left > 0 && o + 2 <= sizeof(out)) {
		char ch = in.p[used++];

		s->lit_left--;
		/* spec/imap.md 9.1: bare LF becomes CRLF. */
		if (ch == '\n' && !s->append_prev_cr)
			out[o++] = '\r';
		out[o++] = ch;
		s->append_prev_cr = ch == '\r';
	}
	if (o > 0 && io_write_all(s->append_fd, out, o) == -1)
		return SIZE_MAX;
	s->append_size += o;
	*done = s->lit_left == 0;
	return used;
}

/* Read and handle input until it would block. */
static void
process(struct imap_session *s)
{
	while (!s->closing && !net_conn_is_closing(s->c)) {
		struct span line, d;
		int rc;

		/* A command still writing its output: no input is read
		 * until it is done. */
		if (s->cont != NULL) {
			if (!cont_run(s))
				return;
			continue;
		}
		switch (s->rd) {
		case IMAP_R_LINE:
		case IMAP_R_IDLE:
		case IMAP_R_AUTH: {
			size_t max = IMAP_LINE_MAX;

			if (s->slow && !s->slow_ready) {
				/* spec/imap.md 2.2: 1 s before each read, and
				 * output from the next command on is sent a
				 * byte a second by the runtime (the reply to
				 * the failure that began slow mode, buffered
				 * already, is not). */
				net_conn_set_trickle(s->c, SLOW_WRITE_MS);
				s->rd_before_slow = s->rd;
				s->rd = IMAP_R_SLOW;
				net_conn_pause_input(s->c, true);
				net_conn_set_timer(s->c, SLOW_READ_MS);
				return;
			}

			if (s->rd == IMAP_R_LINE)
				max = s->line_bytes < IMAP_LINE_MAX - 3 ?
				    IMAP_LINE_MAX - s->line_bytes :
				    3;
			rc = net_conn_read_line(s->c, max, &line, NULL);
			if (rc == NET_AGAIN)
				return;
			if (rc == NET_TOOLONG) {
				bye_close(s, "[TOOBIG] line too long");
				return;
			}
			if (rc != NET_OK) {
				net_conn_close(s->c);
				s->closing = true;
				return;
			}
			s->slow_ready = false;
			if (s->rd == IMAP_R_IDLE)
				imap_idle_line(s, line);
			else if (s->rd == IMAP_R_AUTH)
				imap_auth_line(s, line);
			else
				got_line(s, line);
			break;
		}
		case IMAP_R_LITERAL: {
			size_t n;

			rc = net_conn_read(s->c, &d);
			if (rc == NET_AGAIN)
				return;
			if (rc != NET_OK) {
				net_conn_close(s->c);
				s->closing = true;
				return;
			}
			n = d.len < s->lit_left ? d.len : (size_t)s->lit_left;
			buf_add(&s->cmd, d.p, n);
			net_conn_consume(s->c, n);
			s->lit_left -= n;
			if (s->lit_left == 0)
				s->rd = IMAP_R_LINE;
			break;
		}
		case IMAP_R_APPENDLIT:
			if (s->lit_left > 0) {
				rc = net_conn_stream(s->c, append_stream, s);
				if (rc == NET_AGAIN)
					return;
				if (rc != NET_OK) {
					if (rc == NET_ERROR)
						log_error(&s->log,
						    "writing append data",
						    LF_ERRNO(errno));
					net_conn_close(s->c);
					s->closing = true;
					return;
				}
			}
			s->files[s->nfiles - 1].size = s->append_size;
			if (close(s->append_fd) == -1) {
				s->append_fd = -1;
				bye_close(s, "internal error");
				return;
			}
			s->append_fd = -1;
			s->rd = IMAP_R_LINE;
			break;
		case IMAP_R_DELAY:
		case IMAP_R_SLOW:
		case IMAP_R_TLS:
			return;
		}
	}
}

/* spec/imap.md 2 steps 2 to 4: connection rate, failed authentications
 * and open connections per IP class, counted together with SMTP's. */
static bool
limit_refused(struct imap_session *s)
{
	const char *ip = net_conn_remote_ip(s->c);
	const char *why = NULL;

	switch (smtp_limit_conn_start(ip, true, time_wall_ns())) {
	case SMTP_LIMIT_OK:
		s->limit_counted = true;
		return false;
	case SMTP_LIMIT_RATE:
		why = "connection rate from your ip or network too high, slow "
		      "down please";
		break;
	case SMTP_LIMIT_AUTH:
		why = "too many auth failures";
		break;
	case SMTP_LIMIT_CONNS:
		why = "too many open connections from your ip or network";
		break;
	}
	log_info(&s->log, "connection refused by limiter", LF_STR("remote", ip),
	    LF_STR("reason", why));
	net_conn_printf(s->c, "* BYE %s\r\n", why);
	net_conn_close(s->c);
	s->closing = true;
	return true;
}

static void *
imap_start(struct net_conn *c, void *arg)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct buf caps;

	s->c = c;
	s->l = arg;
	s->log = log_ctx_init("imapserver", net_conn_cid(c));
	s->state = IMAP_S_NOTAUTH;
	s->rd = IMAP_R_LINE;
	s->append_fd = -1;
	lock_init(&s->plock, LOCK_ORDER_CHANGES, "imap.pending");
	buf_init(&s->cmd, IMAP_COMMAND_MAX);
	if (net_conn_stopping(c)) {
		net_conn_puts(c, "* BYE mox shutting down\r\n");
		net_conn_close(c);
		return s;
	}
	/* DESIGN.md: localserve applies no per-IP limits to loopback. */
	s->limit_exempt = s->l->localserve && net_conn_is_loopback(c);
	if (!s->limit_exempt && limit_refused(s))
		return s;
	buf_init(&caps, BUF_NOMAX);
	imap_capabilities(s, &caps);
	imap_reply(s, "* OK [CAPABILITY %s] mox imap", caps.data);
	buf_release(&caps);
	imap_set_timeout(s);
	log_debug(&s->log, "new connection", LF_STR("service", s->l->service),
	    LF_STR("remote", net_conn_remote_ip(c)));
	return s;
}

static void
imap_event(struct net_conn *c, void *sess, unsigned ev)
{
	struct imap_session *s = sess;

	if (s->closing || net_conn_is_closing(c))
		return;
	/* No more guessing after this: what a slow connection is owed
	 * goes at full speed, within the shutdown grace. */
	if (ev & NET_EV_SHUTDOWN)
		net_conn_set_trickle(c, 0);
	if ((ev & NET_EV_SHUTDOWN) && s->cont != NULL) {
		/* In the middle of a response (a literal, perhaps): no BYE
		 * can be inserted; close after what is written. */
		cont_end(s);
		net_conn_close(c);
		s->closing = true;
		return;
	}
	if (ev & NET_EV_SHUTDOWN) {
		bye_close(s, "shutting down");
		return;
	}
	if ((ev & NET_EV_IDLE) && (s->cont != NULL ||
	    (s->slow && net_conn_output_pending(c) > 0))) {
		/* Not idle: a response is being read (or trickled in slow
		 * mode, spec/imap.md 2.2), which the write timeout bounds
		 * byte by byte. */
		imap_set_timeout(s);
		ev &= ~(unsigned)NET_EV_IDLE;
	}
	if (ev & NET_EV_IDLE) {
		/* spec/imap.md 2: command-read deadline. */
		bye_close(s, "inactive");
		return;
	}
	if ((ev & NET_EV_TIMER) && s->rd == IMAP_R_DELAY) {
		imap_tagged(s, "NO", "%s",
		    s->delayed_reply != NULL ? s->delayed_reply : "failed");
		free(s->delayed_reply);
		s->delayed_reply = NULL;
		s->rd = IMAP_R_LINE;
		cmd_reset(s);
		net_conn_pause_input(c, false);
	}
	if ((ev & NET_EV_TIMER) && s->rd == IMAP_R_SLOW) {
		s->rd = s->rd_before_slow;
		s->slow_ready = true;
		net_conn_pause_input(c, false);
	}
	if ((ev & NET_EV_TLS) && s->rd == IMAP_R_TLS)
		s->rd = IMAP_R_LINE;
	if ((ev & NET_EV_NOTIFY) && s->rd == IMAP_R_IDLE && s->cont == NULL) {
		/* Written when the handler returns, without holding the
		 * worker; a peer that reads nothing is closed by the write
		 * timeout. */
		imap_changes_apply(s, true, true);
	}
	process(s);
	if (s->rd == IMAP_R_LINE && s->cmd.len == 0)
		buf_shrink(&s->cmd);
}

static void
imap_end(struct net_conn *c, void *sess)
{
	struct imap_session *s = sess;

	if (s->cont != NULL)
		cont_end(s);
	if (s->limit_counted)
		smtp_limit_conn_end(net_conn_remote_ip(c));
	store_sub_free(s->sub);
	s->sub = NULL;
	files_cleanup(s);
	imap_unselect(s);
	sasl_server_free(s->sasl);
	store_account_put(s->acct);
	buf_release(&s->cmd);
	free(s->tag);
	free(s->cmdname);
	free(s->username);
	free(s->delayed_reply);
	lock_destroy(&s->plock);
	free(s);
}

static const struct net_proto imap_net_proto = {
	"imapserver",
	imap_start,
	imap_event,
	imap_end,
};

const struct net_proto *
imap_proto(void)
{
	return &imap_net_proto;
}
