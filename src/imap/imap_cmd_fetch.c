/*
 * imap_cmd_fetch.c: FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2; RFC 3516
 * BINARY; RFC 7162 3.1.4 CHANGEDSINCE, 3.2.6 VANISHED; RFC 8970 PREVIEW;
 * RFC 8514 SAVEDATE) as spec/imap.md 7 describes. The items are parsed
 * here; their content comes from imap_fetch.h. A non-PEEK body item sets
 * \Seen on a read-write mailbox, with one modseq for the command.
 * Messages expunged by others meanwhile are skipped and the command ends
 * with NO [EXPUNGEISSUED] (RFC 2180 4.1.2).
 *
 * Thread rule: the session's thread; blocks on disk and SQLite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "imap/imap_fetch.h"
#include "imap/imap_fmt.h"
#include "imap/imap_int.h"
#include "lib/xmalloc.h"
#include "maildir/store.h"
#include "message/message.h"
#include "net/net.h"
#include "lib/banned.h"

#define FETCH_ITEMS_MAX 100
#define FETCH_SNAP_MIN 64 /* messages from which index rows are read in
			   * one query */

enum item_kind {
	IT_UID,
	IT_FLAGS,
	IT_INTERNALDATE,
	IT_SIZE,
	IT_ENVELOPE,
	IT_BODY,          /* BODY without section: non-extensible structure */
	IT_BODYSTRUCTURE,
	IT_SECTION,       /* BODY[...] / BODY.PEEK[...] */
	IT_BINARY,        /* BINARY[...] / BINARY.PEEK[...] */
	IT_BINARY_SIZE,
	IT_RFC822,
	IT_RFC822_HEADER,
	IT_RFC822_TEXT,
	IT_MODSEQ,
	IT_PREVIEW,
	IT_SAVEDATE,
};

struct item {
	enum item_kind kind;
	bool peek;
	bool has_sec;
	bool stream;      /* the whole file (or a range): sent from disk */
	bool header;      /* needs only the message's header section */
	struct imap_section sec;
};

struct fetch {
	struct item v[FETCH_ITEMS_MAX];
	size_t n;
	bool need_tree, need_bytes, sets_seen, modseq;
	bool stream;     /* some item is sent from the file in chunks */
	bool changedsince_set;
	uint64_t changedsince;
	bool vanished;
	bool uid;
};

static int
add_item(struct imap_cmd *x, struct fetch *f, enum item_kind k)
{
	if (f->n == FETCH_ITEMS_MAX) {
		x->p.why = "too many fetch items";
		return -1;
	}
	memset(&f->v[f->n], 0, sizeof(f->v[f->n]));
	f->v[f->n].kind = k;
	f->n++;
	return 0;
}

static int
section(struct imap_cmd *x, struct fetch *f, enum item_kind k, bool peek)
{
	struct item *it;
	const char *why = NULL;

	if (add_item(x, f, k) == -1)
		return -1;
	it = &f->v[f->n - 1];
	it->peek = peek;
	it->has_sec = true;
	if (imap_section_scan(&x->p.s, &it->sec, &why) == -1) {
		x->p.why = why;
		return -1;
	}
	if (k != IT_SECTION && !imap_section_is_binary(&it->sec)) {
		x->p.why = "bad binary section";
		return -1;
	}
	if (k == IT_BINARY_SIZE && it->sec.partial) {
		x->p.why = "no partial for BINARY.SIZE";
		return -1;
	}
	if (!peek && k != IT_BINARY_SIZE)
		f->sets_seen = true;
	if (k == IT_SECTION && it->sec.npart == 0 &&
	    it->sec.kind == IMAP_SECTION_BODY) {
		/* BODY[] is the file as stored: streamed, never loaded. */
		it->stream = f->stream = true;
		return 0;
	}
	if (k == IT_SECTION && it->sec.npart == 0 &&
	    (it->sec.kind == IMAP_SECTION_HEADER ||
		it->sec.kind == IMAP_SECTION_FIELDS ||
		it->sec.kind == IMAP_SECTION_FIELDS_NOT)) {
		/* The top-level header: read alone, no tree. */
		it->header = true;
		return 0;
	}
	f->need_tree = f->need_bytes = true;
	return 0;
}

/* If the item name w (ending in "[") is next, consume it up to the "[". */
static bool
prefix_ci(struct imap_cmd *x, const char *w)
{
	size_t n = strlen(w);
	struct scan *s = &x->p.s;

	if (s->len - s->pos < n || strncasecmp(s->p + s->pos, w, n) != 0)
		return false;
	s->pos += n - 1;
	return true;
}

static int
one_att(struct imap_cmd *x, struct fetch *f)
{
	static const struct {
		const char *name;
		enum item_kind k;
		bool tree, bytes, seen;
	} simple[] = {
		{ "UID", IT_UID, false, false, false },
		{ "FLAGS", IT_FLAGS, false, false, false },
		{ "INTERNALDATE", IT_INTERNALDATE, false, false, false },
		{ "RFC822.SIZE", IT_SIZE, false, false, false },
		{ "RFC822.HEADER", IT_RFC822_HEADER, true, true, false },
		{ "RFC822.TEXT", IT_RFC822_TEXT, true, true, true },
		{ "RFC822", IT_RFC822, false, true, true },
		{ "ENVELOPE", IT_ENVELOPE, true, false, false },
		{ "BODYSTRUCTURE", IT_BODYSTRUCTURE, true, false, false },
		{ "MODSEQ", IT_MODSEQ, false, false, false },
		{ "PREVIEW", IT_PREVIEW, true, true, false },
		{ "SAVEDATE", IT_SAVEDATE, false, false, false },
	};

	if (prefix_ci(x, "BODY.PEEK["))
		return section(x, f, IT_SECTION, true);
	if (prefix_ci(x, "BODY["))
		return section(x, f, IT_SECTION, false);
	if (prefix_ci(x, "BINARY.PEEK["))
		return section(x, f, IT_BINARY, true);
	if (prefix_ci(x, "BINARY.SIZE["))
		return section(x, f, IT_BINARY_SIZE, true);
	if (prefix_ci(x, "BINARY["))
		return section(x, f, IT_BINARY, false);
	for (size_t i = 0; i < ARRAY_LEN(simple); i++)
		if (imap_parse_kw(&x->p, simple[i].name) == 0) {
			if (add_item(x, f, simple[i].k) == -1)
				return -1;
			if (simple[i].k == IT_RFC822) {
				f->v[f->n - 1].stream = f->stream = true;
				f->sets_seen = true;
				return 0;
			}
			if (simple[i].k == IT_RFC822_HEADER) {
				f->v[f->n - 1].header = true;
				f->v[f->n - 1].sec.kind = IMAP_SECTION_HEADER;
				return 0;
			}
			f->need_tree |= simple[i].tree;
			f->need_bytes |= simple[i].bytes;
			f->sets_seen |= simple[i].seen;
			if (simple[i].k == IT_MODSEQ)
				f->modseq = true;
			if (simple[i].k == IT_PREVIEW &&
			    imap_parse_peek(&x->p) == ' ' &&
			    x->p.s.pos + 2 <= x->p.s.len &&
			    x->p.s.p[x->p.s.pos + 1] == '(') {
				/* RFC 8970 3.1: (LAZY) is accepted. */
				x->p.s.pos++;
				if (imap_parse_char(&x->p, '(') == -1 ||
				    imap_parse_kw(&x->p, "LAZY") == -1 ||
				    imap_parse_char(&x->p, ')') == -1)
					return -1;
			}
			return 0;
		}
	if (imap_parse_kw(&x->p, "BODY") == 0) {
		if (add_item(x, f, IT_BODY) == -1)
			return -1;
		f->need_tree = true;
		return 0;
	}
	x->p.why = "unknown fetch item";
	return -1;
}

static int
parse_atts(struct imap_cmd *x, struct fetch *f)
{
	if (imap_parse_kw(&x->p, "ALL") == 0 || imap_parse_kw(&x->p, "FAST") == 0 ||
	    imap_parse_kw(&x->p, "FULL") == 0) {
		const char *w = x->p.s.p + x->p.s.pos;
		bool fast = strncasecmp(w - 4, "FAST", 4) == 0;
		bool full = strncasecmp(w - 4, "FULL", 4) == 0;

		/* RFC 9051 6.4.5 macros. */
		add_item(x, f, IT_FLAGS);
		add_item(x, f, IT_INTERNALDATE);
		add_item(x, f, IT_SIZE);
		if (!fast) {
			add_item(x, f, IT_ENVELOPE);
			f->need_tree = true;
		}
		if (full)
			add_item(x, f, IT_BODY);
		return 0;
	}
	if (imap_parse_peek(&x->p) != '(')
		return one_att(x, f);
	(void)imap_parse_char(&x->p, '(');
	for (;;) {
		if (one_att(x, f) == -1)
			return -1;
		if (imap_parse_peek(&x->p) != ' ')
			break;
		(void)imap_parse_sp(&x->p);
	}
	return imap_parse_char(&x->p, ')');
}

/* mox.conf Pedantic: refuse protocol violations seen in the wild. */
static bool
pedantic(void)
{
	struct config *cfg = config_get();
	bool p = cfg != NULL && cfg->st->pedantic;

	config_put(cfg);
	return p;
}

static int
parse_modifiers(struct imap_cmd *x, struct fetch *f)
{
	if (imap_parse_char(&x->p, '(') == -1)
		return -1;
	for (;;) {
		if (imap_parse_kw(&x->p, "CHANGEDSINCE") == 0) {
			if (imap_parse_sp(&x->p) == -1 ||
			    imap_parse_number64(&x->p, &f->changedsince) == -1)
				return -1;
			/* RFC 7162 3.1.4.1: mod-sequence-value is at least
			 * 1. INTEROP: iOS Mail 16 sends 0; refused only in
			 * pedantic mode (spec/imap.md 7). */
			if (f->changedsince == 0 && pedantic()) {
				x->p.why = "CHANGEDSINCE must be at least 1";
				return -1;
			}
			f->changedsince_set = true;
		} else if (imap_parse_kw(&x->p, "VANISHED") == 0) {
			f->vanished = true;
		} else {
			x->p.why = "unknown fetch modifier";
			return -1;
		}
		if (imap_parse_peek(&x->p) != ' ')
			break;
		(void)imap_parse_sp(&x->p);
	}
	return imap_parse_char(&x->p, ')');
}

static void
date_out(struct buf *b, int64_t ns)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	/* RFC 9051 9 date-time: day space-padded. */
	buf_addf(b, "\"%2d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* Per-message content, loaded when an item needs it. */
struct msgdata {
	struct buf bytes;
	struct message_part *root;
	bool loaded;
	struct buf header;   /* the header section alone */
	bool header_loaded;
};

/* Open the file of message id (from the row just read): no second
 * lookup of the row. */
static int
open_msg(struct imap_session *s, int64_t id, int *fd_out)
{
	struct buf p;
	int fd;

	buf_init(&p, 4096);
	store_msg_path(s->acct, s->mb_id, id, &p);
	fd = open(p.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		int err = errno;

		buf_release(&p);
		errno = err;
		return -1;
	}
	buf_release(&p);
	*fd_out = fd;
	return 0;
}

static int
load(struct imap_session *s, int64_t id, const struct buf *parsed,
    struct msgdata *d, bool need_bytes)
{
	const char *why;
	int fd = -1;

	if (d->loaded)
		return 0;
	d->loaded = true;
	buf_init(&d->bytes, IMAP_MESSAGE_MAX);
	if (need_bytes || parsed->len == 0) {
		if (open_msg(s, id, &fd) == -1)
			return -1;
		for (;;) {
			char *p = buf_reserve(&d->bytes, 65536);
			ssize_t r;

			if (p == NULL)
				break;
			r = read(fd, p, 65536);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			buf_commit(&d->bytes, (size_t)r);
		}
		(void)close(fd);
	}
	if (parsed->len > 0 &&
	    message_deserialise(span_of_buf(parsed), d->bytes.len > 0 ?
		    d->bytes.len :
		    SIZE_MAX / 4,
		&d->root, &why) == 0)
		return 0;
	if (d->bytes.len == 0 && fd == -1) {
		if (open_msg(s, id, &fd) == -1)
			return -1;
		(void)close(fd);
	}
	return message_parse(d->bytes.data, d->bytes.len, &d->root, &why);
}

static void
msgdata_release(struct msgdata *d)
{
	if (d->header_loaded)
		buf_release(&d->header);
	if (!d->loaded)
		return;
	buf_release(&d->bytes);
	message_part_free(d->root);
}

/* A header-only item (top-level HEADER, HEADER.FIELDS[.NOT],
 * RFC822.HEADER) from the header section alone, through a one-part tree
 * whose body is empty. Returns 0, or -1 with *why. */
static int
header_item(struct imap_session *s, int64_t id, struct msgdata *d,
    const struct imap_section *sec, struct buf *tmp, const char **why)
{
	struct message_part root;
	struct store_err e;

	if (!d->header_loaded) {
		buf_init(&d->header, IMAP_MESSAGE_MAX);
		d->header_loaded = true;
		if (store_msg_header(s->acct, s->mb_id, id, &d->header,
			&e) == -1) {
			*why = e.code == STORE_ENOMSG ? "expunged" : "internal";
			return -1;
		}
	}
	memset(&root, 0, sizeof(root));
	root.body_off = root.end_off = d->header.len;
	return imap_section_extract(d->header.data, d->header.len, &root, sec,
	    false, tmp, why);
}

/*
 * The running command. Responses are written as the peer reads them:
 * between chunks of IMAP_OUT_CHUNK octets the output is checked, and
 * when it is full the command keeps its place here and returns to the
 * reactor (imap_cont_start), holding no worker. One message's response
 * is its text (items from the index and memory) with the streamed items
 * (BODY[]<partial>, RFC822) sent from the file at marks in the text. The
 * session reads no commands and applies no changes meanwhile, so the MSN
 * map, and with it every number written, stays as the command saw it
 * (RFC 9051 7.4.1: no EXPUNGE during FETCH).
 */
struct fetch_run {
	struct fetch *f;
	uint32_t *uids;          /* owned */
	size_t n, i;             /* next message to start */
	bool uid, expunged, failed;
	const char *fail_why;    /* static */
	/* The message being written. */
	bool in_msg;
	struct buf out;
	size_t marks[FETCH_ITEMS_MAX], nmarks, k; /* next mark */
	size_t pos;              /* octets of out written */
	size_t item;             /* next item of f->v to look at for marks */
	int fd;
	bool streaming;          /* in a streamed literal */
	uint64_t off, left;
	/* Index rows read at once for many messages (index items only),
	 * ascending by UID; with snap_changes only the rows changed since
	 * CHANGEDSINCE (the others are not reported anyway). */
	struct store_msg_list snap;
	bool have_snap, snap_changes;
};

/* The row of uid in the snapshot, or NULL. */
static const struct store_msg *
snap_find(const struct store_msg_list *l, uint32_t uid)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].uid < uid)
			lo = mid + 1;
		else if (l->v[mid].uid > uid)
			hi = mid;
		else
			return &l->v[mid];
	}
	return NULL;
}

/* Start the streamed item it (BODY[]<partial> or RFC822) of the open
 * message file: its name and literal size. */
static void
stream_begin(struct imap_session *s, struct fetch_run *r,
    const struct item *it)
{
	struct stat st;
	struct buf hdr;
	uint64_t n;

	if (fstat(r->fd, &st) == -1) {
		log_error(&s->log, "stat of message file", LF_ERRNO(errno));
		st.st_size = 0;
	}
	n = (uint64_t)st.st_size;
	r->off = 0;
	buf_init(&hdr, BUF_NOMAX);
	if (it->kind == IT_RFC822) {
		buf_adds(&hdr, "RFC822 ");
	} else {
		imap_section_name(&hdr, "BODY", &it->sec, true);
		buf_addc(&hdr, ' ');
		if (it->sec.partial) {
			/* RFC 9051 6.4.5: an origin past the end gives "". */
			r->off = it->sec.origin < n ? it->sec.origin : n;
			n -= r->off;
			if (n > it->sec.count)
				n = it->sec.count;
		}
	}
	buf_addf(&hdr, "{%llu}\r\n", (unsigned long long)n);
	imap_write_buf(s, &hdr);
	buf_release(&hdr);
	r->left = n;
	r->streaming = n > 0;
}

/* One chunk of the streamed literal from the file. A file that ends
 * early closes the connection: the literal cannot be completed. */
static void
stream_chunk(struct imap_session *s, struct fetch_run *r)
{
	char chunk[IMAP_OUT_CHUNK];
	size_t want = r->left < sizeof(chunk) ? (size_t)r->left : sizeof(chunk);
	ssize_t got;

	do
		got = pread(r->fd, chunk, want, (off_t)r->off);
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		log_error(&s->log, "message file ended early",
		    LF_ERRNO(got < 0 ? errno : 0));
		net_conn_close(s->c);
		s->closing = true;
		r->streaming = false;
		return;
	}
	net_conn_write(s->c, chunk, (size_t)got);
	r->off += (uint64_t)got;
	r->left -= (uint64_t)got;
	if (r->left == 0)
		r->streaming = false;
}

static void
msg_end(struct fetch_run *r)
{
	if (r->fd >= 0)
		(void)close(r->fd);
	r->fd = -1;
	buf_reset(&r->out);
	r->in_msg = false;
	r->streaming = false;
}

/* Write the current message on while the peer keeps up: the text up to
 * the next mark, the streamed item there, and so on. Returns 1 when the
 * message is written, 0 when the output is full. */
static int
msg_step(struct imap_session *s, struct fetch_run *r)
{
	while (!s->closing) {
		size_t end, n;

		if (net_conn_is_output_full(s->c))
			return 0;
		if (r->streaming) {
			stream_chunk(s, r);
			continue;
		}
		end = r->k < r->nmarks ? r->marks[r->k] : r->out.len;
		if (r->pos < end) {
			n = end - r->pos;
			if (n > IMAP_OUT_CHUNK)
				n = IMAP_OUT_CHUNK;
			net_conn_write(s->c, r->out.data + r->pos, n);
			r->pos += n;
			continue;
		}
		if (r->k == r->nmarks)
			break;
		/* At a mark: the next item that is streamed. */
		while (!r->f->v[r->item].stream)
			r->item++;
		r->k++;
		stream_begin(s, r, &r->f->v[r->item++]);
	}
	msg_end(r);
	return 1;
}

/* Compose one message's response in r->out, with marks where streamed
 * items go (r->marks), and open its file when there are any. Returns 0,
 * or -1 with *why (for a NO) and nothing composed. */
static int
fetch_one(struct imap_session *s, struct fetch_run *r, size_t msn,
    uint32_t uid, const char **why)
{
	struct fetch *f = r->f;
	struct buf *out = &r->out;
	struct store_msg m;
	struct store_err e;
	struct buf parsed;
	struct msgdata d = { 0 };
	bool flags_done = false;
	size_t *marks = r->marks, nmarks = 0;
	int rc = -1;

	buf_init(&parsed, MESSAGE_SERIAL_MAX);
	if (r->have_snap) {
		const struct store_msg *sm = snap_find(&r->snap, uid);

		if (sm == NULL && r->snap_changes) {
			buf_release(&parsed);
			return 0; /* unchanged since CHANGEDSINCE */
		}
		if (sm == NULL || sm->expunged) {
			*why = "expunged";
			buf_release(&parsed);
			return -1;
		}
		m = *sm;
		m.keywords = sm->keywords != NULL ? xstrdup(sm->keywords) : NULL;
	} else if (store_msg_get(s->acct, s->mb_id, uid, &m,
		       f->need_tree ? &parsed : NULL, &e) == -1) {
		*why = e.code == STORE_ENOMSG ? "expunged" : "internal";
		buf_release(&parsed);
		return -1;
	}
	if (f->changedsince_set &&
	    imap_modseq(m.modseq) <= (int64_t)f->changedsince) {
		rc = 0;
		goto out;
	}
	buf_addf(out, "* %zu FETCH (UID %u", msn, uid);
	for (size_t i = 0; i < f->n; i++) {
		struct item *it = &f->v[i];
		struct buf tmp;
		uint64_t sz;

		if (it->kind == IT_UID)
			continue;
		if (it->stream) {
			buf_addc(out, ' ');
			marks[nmarks++] = out->len;
			continue;
		}
		if (it->header) {
			buf_init(&tmp, IMAP_MESSAGE_MAX);
			if (header_item(s, m.id, &d, &it->sec, &tmp, why) == -1) {
				buf_release(&tmp);
				goto out;
			}
			buf_addc(out, ' ');
			if (it->kind == IT_RFC822_HEADER)
				buf_adds(out, "RFC822.HEADER ");
			else {
				imap_section_name(out, "BODY", &it->sec, true);
				buf_addc(out, ' ');
			}
			imap_fmt_literal(out, tmp.data, tmp.len, false);
			buf_release(&tmp);
			continue;
		}
		if ((f->need_tree || f->need_bytes) &&
		    it->kind != IT_FLAGS && it->kind != IT_INTERNALDATE &&
		    it->kind != IT_SIZE && it->kind != IT_MODSEQ &&
		    it->kind != IT_SAVEDATE &&
		    load(s, m.id, &parsed, &d, f->need_bytes) == -1) {
			*why = "expunged";
			goto out;
		}
		buf_addc(out, ' ');
		switch (it->kind) {
		case IT_UID:
			break;
		case IT_FLAGS:
			imap_flags_out(out, m.flags, m.keywords);
			flags_done = true;
			break;
		case IT_INTERNALDATE:
			buf_adds(out, "INTERNALDATE ");
			date_out(out, m.received_ns);
			break;
		case IT_SAVEDATE:
			buf_adds(out, "SAVEDATE ");
			date_out(out, m.received_ns);
			break;
		case IT_SIZE:
			buf_addf(out, "RFC822.SIZE %lld", (long long)m.size);
			break;
		case IT_MODSEQ:
			buf_addf(out, "MODSEQ (%lld)",
			    (long long)imap_modseq(m.modseq));
			break;
		case IT_ENVELOPE:
			buf_adds(out, "ENVELOPE ");
			if (d.root != NULL && d.root->envelope != NULL)
				imap_fetch_envelope(out, d.root->envelope, s->utf8);
			else
				buf_adds(out, "(NIL NIL NIL NIL NIL NIL NIL NIL "
					      "NIL NIL)");
			break;
		case IT_BODY:
		case IT_BODYSTRUCTURE:
			buf_adds(out, it->kind == IT_BODY ? "BODY " :
							    "BODYSTRUCTURE ");
			imap_fetch_bodystructure(out, d.root,
			    it->kind == IT_BODYSTRUCTURE);
			break;
		case IT_RFC822:
			buf_adds(out, "RFC822 ");
			imap_fmt_literal(out, d.bytes.data, d.bytes.len, false);
			break;
		case IT_RFC822_HEADER:
		case IT_RFC822_TEXT: {
			struct imap_section sec;

			memset(&sec, 0, sizeof(sec));
			sec.kind = it->kind == IT_RFC822_HEADER ?
			    IMAP_SECTION_HEADER :
			    IMAP_SECTION_TEXT;
			buf_init(&tmp, IMAP_MESSAGE_MAX);
			if (imap_section_extract(d.bytes.data, d.bytes.len,
				d.root, &sec, false, &tmp, why) == -1) {
				buf_release(&tmp);
				goto out;
			}
			buf_adds(out, it->kind == IT_RFC822_HEADER ?
				"RFC822.HEADER " :
				"RFC822.TEXT ");
			imap_fmt_literal(out, tmp.data, tmp.len, false);
			buf_release(&tmp);
			break;
		}
		case IT_SECTION:
		case IT_BINARY:
			buf_init(&tmp, IMAP_MESSAGE_MAX);
			if (imap_section_extract(d.bytes.data, d.bytes.len,
				d.root, &it->sec, it->kind == IT_BINARY, &tmp,
				why) == -1) {
				buf_release(&tmp);
				goto out;
			}
			imap_section_name(out,
			    it->kind == IT_BINARY ? "BINARY" : "BODY", &it->sec,
			    it->kind == IT_SECTION);
			buf_addc(out, ' ');
			imap_fmt_literal(out, tmp.data, tmp.len,
			    it->kind == IT_BINARY);
			buf_release(&tmp);
			break;
		case IT_BINARY_SIZE:
			if (imap_section_binary_size(d.bytes.data, d.bytes.len,
				d.root, &it->sec, &sz, why) == -1)
				goto out;
			imap_section_name(out, "BINARY.SIZE", &it->sec, false);
			buf_addf(out, " %llu", (unsigned long long)sz);
			break;
		case IT_PREVIEW:
			buf_init(&tmp, 64 * 1024);
			buf_adds(out, "PREVIEW ");
			if (imap_fetch_preview(d.bytes.data, d.bytes.len, d.root,
				&tmp) == 0 && tmp.len > 0)
				imap_fmt_string(out, tmp.data, tmp.len, s->utf8);
			else
				buf_adds(out, "NIL");
			buf_release(&tmp);
			break;
		}
	}
	if (f->sets_seen && !flags_done && !s->readonly) {
		buf_addc(out, ' ');
		imap_flags_out(out, m.flags, m.keywords);
	}
	if (!f->modseq && (f->changedsince_set ||
		(s->qresync && (f->sets_seen || f->uid))))
		buf_addf(out, " MODSEQ (%lld)", (long long)imap_modseq(m.modseq));
	buf_adds(out, ")\r\n");
	if (nmarks > 0 && open_msg(s, m.id, &r->fd) == -1) {
		*why = errno == ENOENT ? "expunged" : "internal";
		goto out;
	}
	r->nmarks = nmarks;
	rc = 0;
out:
	if (rc == -1)
		buf_reset(out);
	msgdata_release(&d);
	buf_release(&parsed);
	free(m.keywords);
	return rc;
}

/* RFC 7162 3.2.6: "* VANISHED (EARLIER)" for the requested UIDs removed
 * after since; below the highest removed modseq whose history is gone,
 * every requested UID that is not live (spec/imap.md 7). */
static void
vanished_earlier(struct imap_session *s, const struct imap_seqset *set,
    uint64_t since)
{
	struct store_msg_list ch = { 0 };
	struct store_mailbox mb;
	struct store_err e;
	uint32_t *v;
	size_t n = 0, cap;
	int64_t hdm = 0;
	struct buf b;

	if (store_changes_since(s->acct, s->mb_id, (int64_t)since, &ch, &e) == -1)
		return;
	cap = ch.n + 1;
	v = xreallocarray(NULL, cap, sizeof(uint32_t));
	for (size_t i = 0; i < ch.n; i++)
		if (ch.v[i].expunged &&
		    imap_seqset_contains(set, ch.v[i].uid, UINT32_MAX))
			v[n++] = ch.v[i].uid;
	store_msg_list_release(&ch);
	if (store_highest_deleted_modseq(s->acct, &hdm, &e) == 0 &&
	    (int64_t)since < hdm &&
	    store_mailbox_get_id(s->acct, s->mb_id, &mb, &e) == 0) {
		n = 0;
		for (uint32_t u = 1; u < mb.uidnext; u++) {
			if (!imap_seqset_contains(set, u, mb.uidnext - 1) ||
			    imap_msn_of(s, u) != 0)
				continue;
			if (n == cap) {
				cap *= 2;
				v = xreallocarray(v, cap, sizeof(uint32_t));
			}
			v[n++] = u;
		}
		store_mailbox_release(&mb);
	}
	if (n > 0) {
		buf_init(&b, BUF_NOMAX);
		buf_adds(&b, "* VANISHED (EARLIER) ");
		imap_fmt_seqset(&b, v, n);
		buf_adds(&b, "\r\n");
		imap_write_buf(s, &b);
		buf_release(&b);
	}
	free(v);
}

/* Whether every item comes from the index row (the common "FETCH 1:*
 * (UID FLAGS)" of a client synchronising). */
static bool
index_only(const struct fetch *f)
{
	for (size_t i = 0; i < f->n; i++)
		switch (f->v[i].kind) {
		case IT_UID:
		case IT_FLAGS:
		case IT_INTERNALDATE:
		case IT_SIZE:
		case IT_MODSEQ:
		case IT_SAVEDATE:
			break;
		default:
			return false;
		}
	return true;
}

/* One query for the rows of many messages instead of one per message,
 * after \Seen was set. On failure the rows are read one by one. */
static void
take_snapshot(struct imap_session *s, struct fetch_run *r)
{
	struct store_err e;
	int rc;

	if (r->f->changedsince_set) {
		/* Stored modseq 0 is 1 for the client (RFC 7162 3.1.1). */
		int64_t since = r->f->changedsince == 0 ? -1 :
		    (int64_t)r->f->changedsince;

		rc = store_changes_since(s->acct, s->mb_id, since, &r->snap, &e);
		r->snap_changes = true;
	} else {
		rc = store_list(s->acct, s->mb_id, &r->snap, &e);
	}
	r->have_snap = rc == 0;
	if (rc == -1) {
		store_msg_list_release(&r->snap);
		r->snap_changes = false;
	}
}

static void
run_free(void *arg)
{
	struct fetch_run *r = arg;

	msg_end(r);
	buf_release(&r->out);
	store_msg_list_release(&r->snap);
	for (size_t i = 0; i < r->f->n; i++)
		if (r->f->v[i].has_sec)
			imap_section_release(&r->f->v[i].sec);
	free(r->f);
	free(r->uids);
	free(r);
}

/* The messages from r->i on, then the tagged reply. */
static int
run_step(struct imap_session *s, void *arg)
{
	struct fetch_run *r = arg;

	for (;;) {
		const char *why = NULL;
		uint32_t uid;

		if (s->closing)
			return 1;
		if (r->in_msg && msg_step(s, r) == 0)
			return 0;
		if (s->closing)
			return 1;
		if (r->i == r->n)
			break;
		if (net_conn_is_output_full(s->c))
			return 0;
		uid = r->uids[r->i++];
		r->nmarks = r->k = r->pos = r->item = 0;
		if (fetch_one(s, r, imap_msn_of(s, uid), uid, &why) == -1) {
			if (why != NULL && strcmp(why, "expunged") == 0) {
				r->expunged = true;
			} else {
				r->failed = true;
				r->fail_why = why;
			}
			continue;
		}
		r->in_msg = r->out.len > 0;
	}
	/* RFC 9051 7.4.1: the UID form may report expunges. */
	if (r->uid)
		imap_changes_apply(s, true, true);
	if (r->failed && r->fail_why == imap_fetch_err_unknown_cte)
		imap_tagged(s, "NO", "[UNKNOWN-CTE] unknown content-transfer-"
				     "encoding");
	else if (r->failed)
		imap_tagged(s, "NO", "fetch failed: %s",
		    r->fail_why != NULL ? r->fail_why : "error");
	else if (r->expunged)
		imap_tagged(s, "NO", "[EXPUNGEISSUED] at least one message was "
				     "expunged");
	else
		imap_tagged(s, "OK", "fetch done");
	return 1;
}

int
imap_cmd_fetch(struct imap_session *s, struct imap_cmd *x)
{
	struct fetch *f = xcalloc(1, sizeof(*f));
	struct imap_seqset set = { 0 };
	struct fetch_run *r;
	uint32_t *uids = NULL;
	size_t n = 0;
	const char *why = NULL;
	int rc = -1;

	if (imap_parse_sp(&x->p) == -1 || imap_parse_seqset(&x->p, &set) == -1 ||
	    imap_parse_sp(&x->p) == -1 || parse_atts(x, f) == -1)
		goto bad;
	if (!imap_parse_eof(&x->p) &&
	    (imap_parse_sp(&x->p) == -1 || parse_modifiers(x, f) == -1))
		goto bad;
	if (!imap_parse_eof(&x->p)) {
		x->p.why = "unexpected arguments";
		goto bad;
	}
	if (f->vanished && (!x->uid || !s->qresync || !f->changedsince_set)) {
		/* RFC 7162 3.2.6 */
		x->p.why = "VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE";
		goto bad;
	}
	if (imap_seqset_uids(s, &set, x->uid, &uids, &n, &why) == -1) {
		x->p.why = why;
		goto bad;
	}
	rc = 0;
	f->uid = x->uid;
	if (f->modseq || f->changedsince_set)
		s->condstore = true;
	if (f->vanished)
		vanished_earlier(s, &set, f->changedsince);
	if (f->sets_seen && !s->readonly && n > 0) {
		struct store_flags_result res = { 0 };
		struct store_err e;

		/* RFC 9051 6.4.5: BODY[] sets \Seen; one modseq. */
		store_sub_origin(s->sub);
		if (store_flags(s->acct, s->mb_id, uids, n, STORE_FLAGS_ADD,
			STORE_F_SEEN, "", -1, &res, &e) == -1)
			log_error(&s->log, "setting seen", LF_ERR(e.text));
		store_sub_origin(NULL);
		store_flags_result_release(&res);
	}
	imap_seqset_release(&set);
	r = xcalloc(1, sizeof(*r));
	r->f = f;
	r->uids = uids;
	r->n = n;
	r->uid = x->uid;
	r->fd = -1;
	buf_init(&r->out, BUF_NOMAX);
	if (index_only(f) && (f->changedsince_set ||
		(n >= FETCH_SNAP_MIN && n >= s->nuids / 8)))
		take_snapshot(s, r);
	imap_cont_start(s, run_step, run_free, r);
	return 0;
bad:
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].has_sec)
			imap_section_release(&f->v[i].sec);
	free(f);
	free(uids);
	imap_seqset_release(&set);
	return rc;
}
